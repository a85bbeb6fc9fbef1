//! `vipdrift run --config FILE`: the daemon. Workers on every configured
//! queue serve the groups' VIPs; the control thread runs VRRPv3, moves
//! ownership and serves the admin socket (and metrics). Events are logged
//! (see `logging`); SIGHUP re-reads the configuration; SIGTERM or SIGINT
//! stops gracefully. The summary at the end goes to stdout as JSON.

use crate::logging::{self, LogArgs};
use crate::port_args::counters_json;
use clap::Args;
use serde_json::{json, Value};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::path::PathBuf;
use vipdrift_control::{Daemon, RunReport};
use vipdrift_wire::CounterSet;

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
    let mut signals =
        Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(|e| format!("cannot handle SIGHUP, SIGINT, SIGTERM: {e}"))?;
    let daemon = Daemon::from_file(&args.config).and_then(|b| b.start()).map_err(|e| e.to_string())?;
    let queues: Vec<String> =
        daemon.bound_modes().iter().map(|(iface, queue, bound)| format!("{iface}/{queue}:{}", bound.name())).collect();
    let metrics = daemon.metrics_address().map(|a| format!("http://{a}/metrics")).unwrap_or_else(|| "off".into());
    let admin_socket = daemon.admin_socket().map(|p| p.display().to_string()).unwrap_or_else(|| "off".into());
    tracing::info!(
        event = "started",
        pid = std::process::id(),
        config = %args.config.display(),
        admin_socket = %admin_socket,
        metrics = %metrics,
        queues = %queues.join(" "),
        "vipdrift {} started",
        env!("CARGO_PKG_VERSION")
    );
    for signal in signals.forever() {
        if signal != SIGHUP {
            break;
        }
        // The outcome is logged and reported; nobody waits for a reply.
        let _ = daemon.handle().reload();
    }
    let run_report = daemon.stop();
    tracing::info!(event = "stopped", "vipdrift stopped");
    println!("{}", summary(&run_report));
    Ok(())
}

fn summary(run: &RunReport) -> Value {
    let groups: Vec<Value> = run
        .groups
        .iter()
        .map(|g| {
            let mut value = json!({
                "group": g.name,
                "vrid": g.vrid,
                "family": g.family.name(),
                "state": g.state.name(),
            });
            if let Value::Object(map) = &mut value {
                map.extend(g.counters.by_field().into_iter().map(|(k, v)| (k, json!(v))));
            }
            value
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
