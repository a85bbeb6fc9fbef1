//! Runs the failover daemon inside another program (the README's example).

use std::sync::atomic::Ordering;
use vipdrift_control::runtime::{Daemon, DaemonEvent, RunControl};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let daemon = Daemon::start_from_file("/etc/vipdrift.toml".as_ref())?; // workers running, groups ready
    let control = RunControl::default(); // set .stop to stop gracefully, .reload to re-read the file
    let stop = control.stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
    });
    let report = daemon.run(&control, |event| {
        if let DaemonEvent::Transition(t) = event {
            println!("{} is now {} ({})", t.group, t.to.name(), t.reason.name());
        }
    });
    println!("{} adverts sent", report.groups.iter().map(|g| g.counters.adverts_sent).sum::<u64>());
    Ok(())
}
