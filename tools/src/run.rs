//! `vipdrift run --config FILE`: the daemon. Workers on every configured
//! queue serve the groups' VIPs; the control thread runs VRRPv3, moves
//! ownership and serves the admin socket (and metrics). Events are logged
//! (see `logging`); SIGHUP re-reads the configuration; SIGTERM or SIGINT
//! stops gracefully. The summary at the end goes to stdout as JSON.

use crate::logging::{self, LogArgs};
use crate::port_args::counters_json;
use crate::report;
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use vipdrift_control::runtime::{Daemon, RunControl, RunReport};

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Configuration file (TOML; see README, "Configuration"). SIGHUP re-reads it.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

pub(crate) fn run(args: RunArgs) -> Result<(), String> {
    let _flush_on_exit = logging::init(&args.log)?;
    let stop = report::stop_on_signals()?;
    let reload = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let daemon = Daemon::start_from_file(&args.config).map_err(|e| e.to_string())?;
    let queues: Vec<String> = daemon
        .bound_modes()
        .into_iter()
        .map(|(iface, queue, bound)| format!("{iface}/{queue}:{}", bound.name()))
        .collect();
    let metrics = daemon.metrics_address().map(|a| format!("http://{a}/metrics")).unwrap_or_else(|| "off".into());
    tracing::info!(
        event = "started",
        pid = std::process::id(),
        config = %args.config.display(),
        admin_socket = %daemon.admin_socket().display(),
        metrics = %metrics,
        queues = %queues.join(" "),
        "vipdrift {} started",
        env!("CARGO_PKG_VERSION")
    );
    let run_report = daemon.run(&RunControl { stop, reload }, |_| {});
    tracing::info!(event = "stopped", "vipdrift stopped");
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
                "family": g.family.name(),
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
