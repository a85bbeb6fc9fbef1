//! The worker's per-packet rules, on the in-memory port (no privileges).

use crossbeam_channel::bounded;
use vipdrift_engine::{
    ControlFrame, ControlSender, Dest, DropReason, EndpointId, Handler, MacAddr, MemPort, MemPortConfig, Packet, Port,
    Verdict, Worker, WorkerCommand, WorkerConfig,
};

const VMAC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 51]);
const CLIENT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);

fn frame(dst: MacAddr, ethertype: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&CLIENT.0);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f
}

/// Replies to frames for known endpoints, sends multicast to control, drops the rest.
#[derive(Default)]
struct EndpointReflector {
    seen: Vec<Dest>,
    tag: u8,
}

impl Handler for EndpointReflector {
    type Command = u8;

    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
        self.seen.push(packet.dest());
        match packet.dest() {
            Dest::Endpoint(_) => {
                packet.swap_macs();
                let tag = self.tag;
                packet.data_mut()[14] = tag;
                Verdict::Transmit
            }
            Dest::Multicast => Verdict::ToControl,
            Dest::Broadcast => Verdict::Consume,
            Dest::Unknown => Verdict::Drop(DropReason::NoEndpoint),
        }
    }

    fn command(&mut self, tag: u8) {
        self.tag = tag;
    }
}

fn worker_with_client(
    config: WorkerConfig,
) -> (Worker<MemPort, EndpointReflector>, vipdrift_engine::WorkerHandle<u8>, MemPort) {
    let (port, client) = MemPort::pair(MemPortConfig { frame_count: 512, frame_size: 2048, ring_size: 256 });
    let (worker, handle) = Worker::new(vec![port], EndpointReflector::default(), config, None);
    (worker, handle, client)
}

#[test]
fn frames_for_a_registered_endpoint_are_rewritten_in_place_and_sent_back() {
    let (mut worker, handle, mut client) = worker_with_client(WorkerConfig::default());
    handle.commands.send(WorkerCommand::AddEndpoint(VMAC, EndpointId(51))).unwrap();
    handle.commands.send(WorkerCommand::Handler(0xab)).unwrap();
    assert!(client.send_bytes(&frame(VMAC, 0x0800, 60)));
    worker.poll_once();
    let reply = client.recv_bytes().expect("a reply");
    assert_eq!(&reply[..6], &CLIENT.0);
    assert_eq!(&reply[6..12], &VMAC.0);
    assert_eq!(reply[14], 0xab, "the handler's command was applied before the burst");
    assert_eq!(worker.handler().seen, vec![Dest::Endpoint(EndpointId(51))]);
    let c = worker.counters(0);
    assert_eq!((c.rx_packets, c.tx_packets, c.total_drops()), (1, 1, 0));
}

#[test]
fn unregistered_endpoints_are_dropped_and_counted_as_no_endpoint() {
    let (mut worker, handle, mut client) = worker_with_client(WorkerConfig::default());
    handle.commands.send(WorkerCommand::AddEndpoint(VMAC, EndpointId(51))).unwrap();
    handle.commands.send(WorkerCommand::RemoveEndpoint(VMAC)).unwrap();
    assert!(client.send_bytes(&frame(VMAC, 0x0800, 60)));
    worker.poll_once();
    assert_eq!(client.recv_bytes(), None);
    assert_eq!(worker.counters(0).drops_for(DropReason::NoEndpoint), 1);
}

#[test]
fn runts_oversize_and_8023_length_frames_are_dropped_by_reason_without_reaching_the_handler() {
    let config = WorkerConfig { max_frame_len: 1518, ..WorkerConfig::default() };
    let (mut worker, _handle, mut client) = worker_with_client(config);
    for len in [0, 1, 13] {
        assert!(client.send_bytes(&vec![0xffu8; len]));
    }
    assert!(client.send_bytes(&frame(VMAC, 0x0800, 1519)));
    assert!(client.send_bytes(&frame(VMAC, 0x0800, 2048)));
    assert!(client.send_bytes(&frame(VMAC, 0x05dc, 60)), "an 802.3 length, not an EtherType");
    assert!(client.send_bytes(&frame(VMAC, 0x0000, 60)));
    worker.poll_once();
    let c = worker.counters(0);
    assert_eq!(c.drops_for(DropReason::Runt), 3);
    assert_eq!(c.drops_for(DropReason::Oversize), 2);
    assert_eq!(c.drops_for(DropReason::BadEthertype), 2);
    assert_eq!(c.rx_packets, 7);
    assert!(worker.handler().seen.is_empty());
    assert_eq!(client.free_frames(), 512, "every dropped frame went back to the pool");
}

#[test]
fn group_frames_go_to_the_control_channel_and_a_full_channel_drops_and_counts() {
    let (port, mut client) = MemPort::pair(MemPortConfig::default());
    let (frames_tx, frames_rx) = bounded::<ControlFrame>(2);
    let rings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rings_in = rings.clone();
    let notify: std::sync::Arc<dyn Fn() + Send + Sync> = std::sync::Arc::new(move || {
        rings_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let control = ControlSender::new(frames_tx, Some(notify));
    let (mut worker, _h) =
        Worker::new(vec![port], EndpointReflector::default(), WorkerConfig::default(), Some(control));
    let vrrp_group = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
    for _ in 0..3 {
        assert!(client.send_bytes(&frame(vrrp_group, 0x0800, 60)));
    }
    worker.poll_once();
    assert_eq!(frames_rx.len(), 2);
    assert_eq!(frames_rx.recv().unwrap().bytes()[..6], vrrp_group.0);
    let c = worker.counters(0);
    assert_eq!(c.to_control, 2);
    assert_eq!(c.drops_for(DropReason::ControlChannelFull), 1);
    assert_eq!(rings.load(std::sync::atomic::Ordering::Relaxed), 1, "one wakeup per burst, not per frame");
}

#[test]
fn injected_frames_leave_between_bursts() {
    let (mut worker, handle, mut client) = worker_with_client(WorkerConfig::default());
    let garp = frame(MacAddr::BROADCAST, 0x0806, 42);
    handle.commands.send(WorkerCommand::Inject(Box::new(ControlFrame::new(0, &garp).unwrap()))).unwrap();
    worker.poll_once();
    assert_eq!(client.recv_bytes().as_deref(), Some(&garp[..]));
    assert_eq!(worker.counters(0).tx_packets, 1);
}

#[test]
fn a_full_tx_ring_drops_the_excess_and_counts_it() {
    let (port, mut client) = MemPort::pair(MemPortConfig { frame_count: 512, frame_size: 2048, ring_size: 16 });
    let (mut worker, handle) = Worker::new(vec![port], EndpointReflector::default(), WorkerConfig::default(), None);
    handle.commands.send(WorkerCommand::AddEndpoint(VMAC, EndpointId(1))).unwrap();
    for _ in 0..16 {
        assert!(client.send_bytes(&frame(VMAC, 0x0800, 60)));
    }
    worker.poll_once();
    for _ in 0..16 {
        assert!(client.send_bytes(&frame(VMAC, 0x0800, 60)));
    }
    worker.poll_once();
    let c = worker.counters(0);
    assert_eq!(c.tx_packets, 16, "the client never drained its ring");
    assert_eq!(c.drops_for(DropReason::TxRingFull), 16);
}

/// Forwards everything from port 0 to port 1.
struct Io;
impl Handler for Io {
    type Command = ();
    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
        if packet.port() == 0 {
            Verdict::Forward(1)
        } else {
            Verdict::Consume
        }
    }
}

#[test]
fn forward_copies_into_the_other_port_and_recycles_the_original() {
    let (in_port, mut sender) = MemPort::pair(MemPortConfig::default());
    let (out_port, mut receiver) = MemPort::pair(MemPortConfig::default());
    let (mut worker, _h) = Worker::new(vec![in_port, out_port], Io, WorkerConfig::default(), None);
    let f = frame(CLIENT, 0x0800, 100);
    assert!(sender.send_bytes(&f));
    worker.poll_once();
    assert_eq!(receiver.recv_bytes().as_deref(), Some(&f[..]));
    assert_eq!(sender.free_frames(), MemPortConfig::default().frame_count as usize);
    assert_eq!(worker.counters(1).tx_packets, 1);
}

#[test]
fn a_worker_thread_stops_on_its_flag_and_publishes_final_counters() {
    let (port, mut client) = MemPort::pair(MemPortConfig::default());
    let (worker, handle) = Worker::new(vec![port], EndpointReflector::default(), WorkerConfig::default(), None);
    let thread = worker.spawn(None, "test-worker".into()).unwrap();
    for _ in 0..100 {
        assert!(client.send_bytes(&frame(MacAddr::BROADCAST, 0x0806, 60)));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while handle.stats[0].read().rx_packets < 100 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    handle.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worker = thread.join().unwrap();
    assert_eq!(handle.stats[0].read().rx_packets, 100);
    assert_eq!(worker.counters(0).rx_packets, 100);
}

#[test]
fn packet_set_len_is_clamped_to_the_buffer() {
    let mut buf = [0u8; 64];
    let mut p = Packet::new(&mut buf, 60, Dest::Unknown, 0);
    p.set_len(1000);
    assert_eq!(p.data().len(), 64);
    let _ = Port::frame_capacity(&MemPort::loopback(MemPortConfig::default()));
}

#[test]
fn under_seeded_faults_every_frame_is_answered_or_counted_and_none_leaks() {
    use vipdrift_engine::{FaultConfig, FaultyPort};
    let (port, mut client) = MemPort::pair(MemPortConfig { frame_count: 512, frame_size: 2048, ring_size: 256 });
    let faults = FaultConfig {
        seed: 12,
        drop_rx_percent: 10,
        drop_tx_percent: 10,
        corrupt_rx_percent: 15,
        delay_rx_percent: 10,
    };
    let (mut worker, handle) =
        Worker::new(vec![FaultyPort::new(port, faults)], EndpointReflector::default(), WorkerConfig::default(), None);
    handle.commands.send(WorkerCommand::AddEndpoint(VMAC, EndpointId(1))).unwrap();
    let mut replies = 0u64;
    for _ in 0..10 {
        for _ in 0..40 {
            assert!(client.send_bytes(&frame(VMAC, 0x0800, 64)));
        }
        worker.poll_once();
        while client.recv_bytes().is_some() {
            replies += 1;
        }
    }
    // Frames held back come out on later polls.
    for _ in 0..4 {
        worker.poll_once();
        while client.recv_bytes().is_some() {
            replies += 1;
        }
    }
    let port = &worker.ports_mut()[0];
    let injected = port.faults();
    assert_eq!(port.held(), 0);
    assert!(injected.rx_dropped > 0 && injected.tx_dropped > 0 && injected.rx_corrupted > 0 && injected.rx_delayed > 0);
    let counters = worker.counters(0);
    let dropped: u64 = counters.drops.iter().sum();
    assert_eq!(counters.rx_packets + injected.rx_dropped, 400, "received by the worker or lost on the wire");
    assert_eq!(counters.rx_packets, counters.tx_packets + dropped, "answered or dropped with a reason: {counters:?}");
    assert_eq!(replies + injected.tx_dropped, counters.tx_packets, "every answer arrived or was lost on the wire");
    drop(worker);
    assert_eq!(client.free_frames(), 512, "no frame leaked");
}
