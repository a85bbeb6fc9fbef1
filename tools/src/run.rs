//! `vipdrift run --config FILE`: the daemon. Workers on every configured
//! queue serve the groups' VIPs; the control thread runs VRRPv3 and moves
//! ownership. Every event is one JSON line on stderr; the summary at the end
//! goes to stdout.

use crate::port_args::counters_json;
use crate::report;
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use vipdrift_control::config;
use vipdrift_control::runtime::{Daemon, RunReport};

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Configuration file (TOML; see README, "Configuration").
    #[arg(long)]
    config: PathBuf,
}

pub(crate) fn run(args: RunArgs) -> Result<(), String> {
    let config = config::load(&args.config).map_err(|e| e.to_string())?;
    let stop = report::stop_on_signals()?;
    let daemon = Daemon::start(&config).map_err(|e| e.to_string())?;
    let queues: Vec<Value> = daemon
        .bound_modes()
        .into_iter()
        .map(|(iface, queue, bound)| json!({ "iface": iface, "queue": queue, "bind_mode": bound.name() }))
        .collect();
    eprintln!("{}", json!({ "event": "started", "pid": std::process::id(), "queues": queues }));
    let run_report = daemon.run(&stop, |event| eprintln!("{}", event.to_json()));
    println!("{}", summary(&run_report));
    Ok(())
}

fn summary(run: &RunReport) -> Value {
    let groups: Vec<Value> = run
        .groups
        .iter()
        .map(|g| {
            let c = &g.counters;
            json!({
                "group": g.name,
                "vrid": g.vrid,
                "family": if g.ipv4 { "ipv4" } else { "ipv6" },
                "state": g.state.name(),
                "adverts_sent": c.adverts_sent,
                "adverts_received": c.adverts_received,
                "pseudo_header_checksums": c.pseudo_header_checksums,
                "message_only_checksums": c.message_only_checksums,
                "malformed": c.malformed,
                "own_adverts": c.own_adverts,
                "not_a_peer": c.not_a_peer,
                "other_vrid": c.other_vrid,
                "while_owner": c.while_owner,
                "garps_sent": c.garps_sent,
                "transitions": c.transitions,
                "split_brains": c.split_brains,
            })
        })
        .collect();
    let queues: Vec<Value> = run
        .queues
        .iter()
        .map(|q| {
            let a = &q.answered;
            let mut value = json!({
                "iface": q.iface,
                "queue": q.queue,
                "bind_mode": q.bound.name(),
                "arp_replies": a.arp_replies,
                "na_replies": a.na_replies,
                "echo_replies": a.echo_replies,
                "not_owned": a.not_owned,
            });
            if let Value::Object(map) = &mut value {
                map.extend(counters_json(&q.stats, q.stats.rx_packets, q.frames_held));
            }
            value
        })
        .collect();
    json!({ "tool": "run", "groups": groups, "queues": queues, "inject_failures": run.inject_failures })
}
