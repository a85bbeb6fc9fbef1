//! `vipdrift serve`: serve VIPs as their static owner (no heartbeats):
//! ARP, NDP and ping answered by the engine on a virtual MAC (or the
//! interface's own), everything else left to the kernel.

use crate::port_args::counters_json;
use crate::report;
use clap::Args;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Instant;
use vipdrift_control::{Nic, Responder};
use vipdrift_engine::{BindMode, MacAddr, Port, VipDelivery, Worker, WorkerConfig, XdpAttachMode};
use vipdrift_vmac::{vrrp_mac_v4, Group};

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Interface to serve on.
    #[arg(long)]
    iface: String,
    /// A VIP with its prefix length, e.g. 198.51.100.100/24 or 2001:db8::100/64 (repeatable).
    #[arg(long = "vip", required = true, value_parser = parse_vip)]
    vips: Vec<IpAddr>,
    /// Answer with this MAC (default: VRRP's 00:00:5e:00:01:{VRID}).
    #[arg(long, conflicts_with = "own_mac")]
    mac: Option<MacAddr>,
    /// Answer with the interface's own MAC: the VIPs move, the MAC does not.
    #[arg(long)]
    own_mac: bool,
    /// VRID of the default virtual MAC.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    vrid: u8,
    /// NIC queue.
    #[arg(long, default_value_t = 0)]
    queue: u32,
    /// Core to pin the worker to.
    #[arg(long)]
    core: Option<usize>,
    /// Hold the VIPs as a backup does: steered to vipdrift and counted
    /// (`not_owned`), never answered.
    #[arg(long)]
    standby: bool,
    /// Redirect every frame to vipdrift (dedicated NICs); the kernel then sees none.
    #[arg(long)]
    whole_nic: bool,
    /// AF_XDP bind mode: auto, zero-copy, copy, skb (skb also attaches the program in generic mode).
    #[arg(long, default_value = "auto")]
    bind: BindMode,
    /// Seconds to serve (default: until SIGINT or SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_vip(s: &str) -> Result<IpAddr, String> {
    let (addr, prefix) =
        s.split_once('/').ok_or_else(|| format!("`{s}` needs a prefix length, like 198.51.100.100/24"))?;
    let ip: IpAddr = addr.parse().map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok(ip),
        _ => Err(format!("`{prefix}` is not a prefix length for {ip} (0 to {max})")),
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<(), String> {
    let stop = report::stop_on_signals()?;
    // The one recipe the daemon uses too: the NIC accepts the virtual MAC
    // (the kernel takes the membership back when the filter socket closes,
    // however we exit), each VIP is steered and each IPv6 VIP's
    // solicited-node group joined.
    let mut nic = Nic::open(&args.iface, args.bind, args.whole_nic).map_err(|e| e.to_string())?;
    let answer_mac = if args.own_mac { nic.mac() } else { args.mac.unwrap_or_else(|| vrrp_mac_v4(args.vrid)) };
    let port = nic.open_port(args.queue).map_err(|e| e.to_string())?;
    let bound = port.bound_mode();
    if !args.own_mac {
        nic.add_vmac(answer_mac).map_err(|e| e.to_string())?;
    }
    nic.steer_vips(args.vips.iter().copied(), VipDelivery::Engine).map_err(|e| e.to_string())?;
    let attach_mode = nic.attach_mode();

    let vip_list: Vec<String> = args.vips.iter().map(|v| v.to_string()).collect();
    eprintln!(
        "serve: {} queue {} bound in {} mode, program in {} mode{}; {} {} with {}",
        args.iface,
        args.queue,
        bound.name(),
        if attach_mode == XdpAttachMode::Native { "native" } else { "skb" },
        if args.whole_nic { ", whole NIC" } else { "" },
        if args.standby { "standing by for" } else { "answering" },
        vip_list.join(" "),
        answer_mac
    );
    let group = Group { id: u32::from(args.vrid), mac: answer_mac, vips: args.vips.clone(), owned: !args.standby };
    let responder = Responder::with_groups([group]);
    let answers = responder.stats();
    let (worker, handle) = Worker::new(vec![port], responder, WorkerConfig::default(), None);
    let started = Instant::now();
    let run = report::LiveRun {
        core: args.core,
        label: format!("serve {} q{}", args.iface, args.queue),
        quiet: args.json,
        stop: &stop,
        duration: args.duration,
    };
    let (mut worker, log) = report::run_with_live_log(worker, &handle, run, |_| {
        if !args.json {
            let a = answers.read();
            eprintln!(
                "{:<24} answered arp {} ns {} echo {}   rejected arp {} ns {} echo {}   unowned {}",
                "", a.arp_replies, a.na_replies, a.echo_replies, a.bad_arp, a.bad_ndp, a.bad_echo, a.not_owned
            );
        }
    })?;
    let (answered, leaked) = (worker.handler().counters(), worker.ports_mut()[0].frames_held());
    drop(nic);
    let total = handle.stats[0].read();
    let mut summary = json!({
        "tool": "serve",
        "iface": args.iface,
        "queue": args.queue,
        "bind_mode": bound.name(),
        "mac": answer_mac.to_string(),
        "vips": vip_list,
        "seconds": started.elapsed().as_secs_f64(),
        "median_rx_mpps": log.medians().0 / 1e6,
        "median_mpps": log.medians().1 / 1e6,
        "arp_replies": answered.arp_replies,
        "na_replies": answered.na_replies,
        "echo_replies": answered.echo_replies,
        "not_owned": answered.not_owned,
        "bad_arp": answered.bad_arp,
        "bad_ndp": answered.bad_ndp,
        "bad_echo": answered.bad_echo,
    });
    if let Value::Object(map) = &mut summary {
        map.extend(counters_json(&total, total.rx_packets, leaked));
    }
    report::print_summary(&summary, args.json);
    Ok(())
}
