//! `vipdrift gen`: a packet generator.

use crate::port_args::{counters_json, iface_stat, PortArgs};
use crate::report::{self, RateLog};
use crate::udp_frame::{arp_request_frame, udp_frame, UDP_SRC_PORT_OFFSET};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vipdrift_engine::{Generator, GeneratorConfig, MacAddr, Port, QueueStats, XdpLiveConfig, XdpLiveGenerator};

/// How frames leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Via {
    /// Through the engine's AF_XDP TX ring.
    Afxdp,
    /// BPF_PROG_RUN live frames (XDP_TX in a loop in the kernel): a line-rate source for benchmarks.
    XdpLive,
}

#[derive(Args, Debug)]
pub(crate) struct GenArgs {
    /// Interface to transmit on.
    #[arg(long)]
    iface: String,
    /// Core to pin the transmit loop to.
    #[arg(long)]
    core: Option<usize>,
    /// Frame size in bytes, Ethernet header included, no FCS.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Frames to send (default: until --duration or Ctrl-C).
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Seconds to send for.
    #[arg(long)]
    duration: Option<f64>,
    /// Packets per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<u64>,
    /// Source MAC.
    #[arg(long, default_value = "02:00:00:00:00:01")]
    src_mac: MacAddr,
    /// Destination MAC.
    #[arg(long, default_value = "02:00:00:00:00:02")]
    dst_mac: MacAddr,
    /// Source IPv4 address.
    #[arg(long, default_value = "198.51.100.1")]
    src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    #[arg(long, default_value = "198.51.100.2")]
    dst_ip: Ipv4Addr,
    /// How frames leave.
    #[arg(long, value_enum, default_value_t = Via::Afxdp)]
    via: Via,
    #[command(flatten)]
    port: PortArgs,
    /// Milliseconds to keep counting returned frames after the last one is sent.
    #[arg(long, default_value_t = 500)]
    drain_ms: u64,
    /// Vary the UDP source port per packet (spreads flows over RSS queues).
    #[arg(long)]
    vary_port: bool,
    /// Send ARP requests for this IPv4 address (from --src-mac/--src-ip,
    /// broadcast) instead of UDP: load for an ARP responder.
    #[arg(long, value_name = "IPV4")]
    arp_for: Option<Ipv4Addr>,
    /// Overwrite the EtherType (hex like 0x05dc or decimal): malformed-traffic tests.
    #[arg(long, value_parser = parse_u16)]
    ethertype: Option<u16>,
    /// Send only the first BYTES bytes of each frame (runts): malformed-traffic tests.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    truncate: Option<u16>,
    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_u16(s: &str) -> Result<u16, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("`{s}` is not a 16-bit number (like 0x0800 or 2048)"))
}

pub(crate) fn run(args: GenArgs) -> Result<(), String> {
    let mut frame = match args.arp_for {
        Some(target) => arp_request_frame(args.size, args.src_mac, args.src_ip, target)?,
        None => udp_frame(args.size, args.src_mac, args.dst_mac, args.src_ip, args.dst_ip)?,
    };
    if let Some(ethertype) = args.ethertype {
        frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
    }
    if let Some(len) = args.truncate {
        frame.truncate(len as usize);
    }
    let stop = report::stop_on_signals()?;
    match args.via {
        Via::Afxdp => run_afxdp(&args, frame, stop),
        Via::XdpLive => run_xdp_live(&args, frame, stop),
    }
}

pub(crate) fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("warning: could not pin to core {id}");
        }
    }
}

fn run_afxdp(args: &GenArgs, frame: Vec<u8>, stop: Arc<AtomicBool>) -> Result<(), String> {
    let (port, _lock) = args.port.open(&args.iface)?;
    let mode = port.bound_mode();
    if frame.len() > port.frame_capacity() {
        return Err(format!("--size {} exceeds the frame capacity {}", frame.len(), port.frame_capacity()));
    }
    eprintln!("gen: {} queue {} bound in {} mode", args.iface, args.port.queue, mode.name());
    let stats = Arc::new(QueueStats::default());
    let generator_config = GeneratorConfig {
        template: frame.clone(),
        burst: args.port.burst,
        count: args.count,
        duration: args.duration.map(Duration::from_secs_f64),
        rate: args.rate,
        drain: Duration::from_millis(args.drain_ms),
        vary_u16_at: args.vary_port.then_some(UDP_SRC_PORT_OFFSET),
    };
    let tx_dropped_before = iface_stat(&args.iface, "tx_dropped");
    let mut generator = Generator::new(port, generator_config, stats.clone(), stop.clone());
    let core = args.core;
    let done = Arc::new(AtomicBool::new(false));
    let done_flag = done.clone();
    let thread = std::thread::Builder::new()
        .name("vipdrift-gen".into())
        .spawn(move || {
            pin(core);
            let result = generator.run();
            done_flag.store(true, Ordering::Relaxed);
            let leaked = generator.port().frames_held();
            (result, leaked)
        })
        .map_err(|e| format!("cannot start the generator thread: {e}"))?;
    let mut log = RateLog::new(format!("gen {} q{}", args.iface, args.port.queue), vec![stats.clone()], args.json);
    loop {
        let started = Instant::now();
        let full = RateLog::wait_second(started, &stop, &|| done.load(Ordering::Relaxed));
        if !full {
            break;
        }
        log.sample();
    }
    let ((counters, seconds), leaked) = thread.join().map_err(|_| "the generator thread panicked".to_string())?;
    let (_, median_tx) = log.medians();
    // What left: frames the kernel completed and did not drop, not frames
    // queued on the TX ring.
    let sent = counters.tx_sent_by_kernel();
    let bytes = sent * frame.len() as u64;
    let tx_dropped = tx_dropped_before.zip(iface_stat(&args.iface, "tx_dropped")).map(|(a, b)| b.saturating_sub(a));
    let mut summary = json!({
        "tool": "gen",
        "via": "afxdp",
        "iface": args.iface,
        "queue": args.port.queue,
        "bind_mode": mode.name(),
        "size": frame.len(),
        "packets": sent,
        "bytes": bytes,
        "queued": counters.tx_packets,
        "iface_tx_dropped": tx_dropped,
        "seconds": seconds,
        "mpps": report::mpps(sent, seconds),
        "gbps": report::gbps(bytes, seconds),
        "median_mpps": median_tx / 1e6,
    });
    if let Value::Object(map) = &mut summary {
        map.extend(counters_json(&counters, counters.tx_packets, leaked));
    }
    report::print_summary(&summary, args.json);
    Ok(())
}

fn run_xdp_live(args: &GenArgs, frame: Vec<u8>, stop: Arc<AtomicBool>) -> Result<(), String> {
    let config = XdpLiveConfig {
        iface: args.iface.clone(),
        frame: frame.clone(),
        count: args.count,
        duration: args.duration.map(Duration::from_secs_f64),
        rate: args.rate,
        batch: args.port.burst.clamp(1, 256) as u32,
    };
    let mut generator = XdpLiveGenerator::open(config).map_err(|e| e.to_string())?;
    eprintln!("gen: {} via BPF_PROG_RUN live frames (XDP_TX)", args.iface);
    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (core, progress_in, stop_in, done_in) = (args.core, progress.clone(), stop.clone(), done.clone());
    let thread = std::thread::Builder::new()
        .name("vipdrift-gen".into())
        .spawn(move || {
            pin(core);
            let result = generator.run(&progress_in, &stop_in);
            done_in.store(true, Ordering::Relaxed);
            result
        })
        .map_err(|e| format!("cannot start the generator thread: {e}"))?;
    let mut samples = Vec::new();
    let mut last = (Instant::now(), 0u64);
    loop {
        let started = Instant::now();
        if !RateLog::wait_second(started, &stop, &|| done.load(Ordering::Relaxed)) {
            break;
        }
        let (now, sent) = (Instant::now(), progress.load(Ordering::Relaxed));
        let pps = (sent - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, sent);
        samples.push(pps);
        if !args.json {
            eprintln!(
                "gen {:<18} tx {:>8.3} Mpps {:>7.3} Gbps",
                args.iface,
                pps / 1e6,
                pps * frame.len() as f64 * 8.0 / 1e9
            );
        }
    }
    let summary = thread.join().map_err(|_| "the generator thread panicked".to_string())?.map_err(|e| e.to_string())?;
    let bytes = summary.packets * frame.len() as u64;
    let mut sorted = samples.clone();
    if sorted.len() > 2 {
        sorted = sorted[1..sorted.len() - 1].to_vec();
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let out = json!({
        "tool": "gen",
        "via": "xdp-live",
        "iface": args.iface,
        "bind_mode": "xdp-live",
        "size": frame.len(),
        "packets": summary.packets,
        "bytes": bytes,
        "seconds": summary.seconds,
        "mpps": report::mpps(summary.packets, summary.seconds),
        "gbps": report::gbps(bytes, summary.seconds),
        "median_mpps": median / 1e6,
    });
    report::print_summary(&out, args.json);
    Ok(())
}
