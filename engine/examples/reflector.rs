//! The README's embedding example: a reflector for one virtual MAC.
//! Run as root: `cargo run --release -p vipdrift-engine --example reflector`
//! (it opens eth0 queue 0).

use vipdrift_engine::{
    AfXdpConfig, AfXdpPort, Dest, DropReason, EndpointId, Handler, MacAddr, Packet, Verdict, Worker, WorkerCommand,
    WorkerConfig,
};

/// A toy L2 load balancer front: answers frames for its virtual MAC by
/// reflecting them, hands multicast to the control thread, drops the rest.
struct Reflector;

impl Handler for Reflector {
    type Command = (); // handler-specific updates, applied between bursts

    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
        match packet.dest() {
            Dest::Endpoint(EndpointId(_backend)) => {
                packet.swap_macs(); // rewritten in place in the RX frame
                Verdict::Transmit
            }
            Dest::Multicast => Verdict::ToControl,
            _ => Verdict::Drop(DropReason::NoEndpoint),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = AfXdpPort::open(&AfXdpConfig::new("eth0", 0))?;
    let (worker, handle) = Worker::new(vec![port], Reflector, WorkerConfig::default(), None);
    let vmac: MacAddr = "00:00:5e:00:01:33".parse()?;
    handle.commands.send(WorkerCommand::AddEndpoint(vmac, EndpointId(1)))?;
    let thread = worker.spawn(Some(1), "worker-1".into())?; // pinned to core 1
    std::thread::sleep(std::time::Duration::from_secs(10));
    println!("{:?}", handle.stats[0].read());
    handle.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().unwrap();
    Ok(())
}
