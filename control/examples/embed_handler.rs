//! The README's embedding example: vipdrift runs the failover and the
//! workers; every TCP and UDP frame for a VIP this node owns reaches the
//! handler on the worker that received it, which sends it on to one backend
//! (direct server return: the backend holds the VIP on `lo` and answers
//! the client itself).

use vipdrift_control::{config, Daemon, DaemonEvent, VipFrame, VipHandler, WorkerInfo};
use vipdrift_engine::{Packet, Verdict};
use vipdrift_wire::MacAddr;

/// One backend for every flow (see examples/maglev-lb for a real pool).
struct ToBackend(MacAddr);

impl VipHandler for ToBackend {
    type Command = MacAddr; // a new backend, applied between bursts

    fn handle(&mut self, packet: &mut Packet<'_>, frame: &VipFrame) -> Verdict {
        let data = packet.data_mut();
        data[..6].copy_from_slice(&self.0 .0); // to the backend
        data[6..12].copy_from_slice(&frame.mac.0); // from the VIP's MAC
        Verdict::Transmit
    }

    fn command(&mut self, backend: &MacAddr) {
        self.0 = *backend;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend: MacAddr = "02:00:00:00:00:21".parse()?;
    let config = config::load("/etc/vipdrift/vipdrift.toml".as_ref())?;
    let daemon = Daemon::builder(config).vip_handler(|_: &WorkerInfo| ToBackend(backend)).start()?;
    for event in daemon.handle().events().iter().take(10) {
        if let DaemonEvent::Transition(t) = event {
            println!("{} is now {} ({})", t.group, t.to, t.reason);
        }
    }
    daemon.handle().command_vip_handlers("02:00:00:00:00:22".parse()?); // every worker, between bursts
    daemon.stop(); // a master hands over first
    Ok(())
}
