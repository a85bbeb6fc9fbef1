//! `maglev-lb --config FILE`: the load balancer. vipdrift runs the VRRP
//! failover and the workers; every worker's balancer sends the VIP's TCP
//! and UDP flows to backends by Maglev hashing. Backends are changed on
//! standard input, one command a line, applied by every worker between
//! bursts:
//!
//! ```text
//! drain 198.51.100.22      # no new flows; the flows it has stay
//! remove 198.51.100.22     # no flows at all: they move to the others
//! activate 198.51.100.22   # back in the table
//! stats                    # one JSON line: the balancers' counters and the pool
//! ```
//!
//! SIGTERM or SIGINT stops gracefully (the VRRP master hands over first)
//! and prints a JSON summary on standard output.

use serde_json::{json, Value};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vipdrift_control::{Daemon, DaemonHandle, WorkerInfo};
use vipdrift_example_lb::balancer::{Balancer, BalancerCounters};
use vipdrift_example_lb::config;
use vipdrift_example_lb::pool::{BackendState, Pool};
use vipdrift_wire::{CounterSet, PublishedCounters};

fn usage() -> String {
    "usage: maglev-lb --config FILE".into()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("maglev-lb: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--config"), Some(path), None) => PathBuf::from(path),
        _ => return Err(usage()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let lb = config::load(&path).map_err(|e| e.to_string())?;
    let mut pool = Arc::new(Pool::new(&lb.backends, lb.table_size).map_err(|e| e.to_string())?);
    let mut published: Vec<Arc<PublishedCounters<BalancerCounters>>> = Vec::new();
    let daemon = Daemon::builder(lb.daemon.clone())
        .config_file(&path)
        .vip_handler(|worker: &WorkerInfo| {
            let balancer = Balancer::new(pool.clone(), lb.flows);
            published.push(balancer.published());
            eprintln!("maglev-lb: balancer on {} queue {}", worker.interface, worker.queue);
            balancer
        })
        .start()
        .map_err(|e| e.to_string())?;
    eprintln!("maglev-lb: {} backends, table of {} slots", lb.backends.len(), lb.table_size);

    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    while !stop.load(Ordering::Relaxed) {
        match lines.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => match command(&line, &pool) {
                Ok(Some(next)) => {
                    pool = Arc::new(next);
                    daemon.handle().command_vip_handlers(pool.clone());
                    println!("{}", json!({ "ok": true, "pool": pool_json(&pool) }));
                }
                Ok(None) => {
                    let mut stats = stats_json(&published, &pool);
                    stats["queues"] = queues_json(daemon.handle());
                    println!("{stats}");
                }
                Err(error) => println!("{}", json!({ "ok": false, "error": error })),
            },
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            // Standard input closed: keep running until a signal.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let report = daemon.stop();
    let mut summary = stats_json(&published, &pool);
    summary["inject_failures"] = json!(report.inject_failures);
    summary["groups"] = report.groups.iter().map(|g| json!({ "group": g.name, "state": g.state.name() })).collect();
    println!("{summary}");
    Ok(())
}

/// A pool change (`Some`), a stats request (`None`), or why the line is wrong.
fn command(line: &str, pool: &Pool) -> Result<Option<Pool>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let state = match words.as_slice() {
        ["stats"] => return Ok(None),
        ["drain", _] => BackendState::Draining,
        ["remove", _] => BackendState::Removed,
        ["activate", _] => BackendState::Active,
        _ => return Err(format!("{line:?}: expected drain ADDRESS, remove ADDRESS, activate ADDRESS or stats")),
    };
    let address = words[1].parse().map_err(|_| format!("{:?} is not an IP address", words[1]))?;
    pool.with_state(address, state).map(Some).map_err(|e| e.to_string())
}

fn pool_json(pool: &Pool) -> Value {
    let shares = pool.table().shares(pool.backends().len());
    pool.backends()
        .iter()
        .zip(shares)
        .map(|((b, state), slots)| {
            json!({ "address": b.address.to_string(), "mac": b.mac.to_string(), "weight": b.weight,
                    "state": state.name(), "slots": slots })
        })
        .collect()
}

/// The engine's counters of every queue: what came in and went out.
fn queues_json(handle: &DaemonHandle<Arc<Pool>>) -> Value {
    match handle.stats() {
        Ok(stats) => stats
            .queues
            .iter()
            .map(|q| {
                json!({ "port": q.port, "queue": q.queue, "rx_packets": q.rx_packets, "tx_packets": q.tx_packets,
                        "drops": q.drops })
            })
            .collect(),
        Err(error) => json!({ "error": error }),
    }
}

fn stats_json(published: &[Arc<PublishedCounters<BalancerCounters>>], pool: &Pool) -> Value {
    let mut total = BalancerCounters::default();
    for counters in published {
        total.add(&counters.read());
    }
    json!({ "tool": "maglev-lb", "counters": total.named(), "pool": pool_json(pool) })
}
