//! Runs the failover daemon inside another program (the README's example):
//! start it from a configuration file, watch its events on another thread,
//! ask its status, and stop it gracefully a minute later.

use std::time::Duration;
use vipdrift_control::{Daemon, DaemonEvent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let daemon = Daemon::from_file("/etc/vipdrift/vipdrift.toml".as_ref())?.start()?; // workers running
    let events = daemon.handle().events();
    std::thread::spawn(move || {
        for event in events {
            if let DaemonEvent::Transition(t) = event {
                println!("{} is now {} ({})", t.group, t.to.name(), t.reason.name());
            }
        }
    });
    std::thread::sleep(Duration::from_secs(60));
    for group in daemon.handle().status()?.groups {
        println!("{} ({}): {}", group.name, group.family.name(), group.state.name());
    }
    let report = daemon.stop(); // masters hand over first
    println!("{} adverts sent", report.groups.iter().map(|g| g.counters.adverts_sent).sum::<u64>());
    Ok(())
}
