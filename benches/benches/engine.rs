//! Per-packet cost of the worker on the in-memory port: receive a burst,
//! classify by destination MAC, run the handler, rewrite in place, transmit.
//! Reported per packet (Throughput::Elements = frames per burst), next to a
//! reference: the bare MAC swap over the same frames in a plain array.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use vipdrift_engine::{
    Dest, DropReason, EndpointId, Handler, MacAddr, MemPort, MemPortConfig, Packet, Verdict, Worker, WorkerCommand,
    WorkerConfig,
};

const FRAME_LEN: usize = 64;

struct MacSwap;
impl Handler for MacSwap {
    type Command = ();
    #[inline]
    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
        match packet.dest() {
            Dest::Endpoint(_) => {
                packet.swap_macs();
                Verdict::Transmit
            }
            _ => Verdict::Drop(DropReason::NoEndpoint),
        }
    }
}

fn udp_frame(dst: MacAddr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

/// A worker on a loopback port primed with one burst of frames: every
/// `poll_once` receives the burst, swaps MACs, and transmits it back into
/// its own receive ring, so the next poll finds it again.
fn primed_worker(burst: usize) -> Worker<MemPort, MacSwap> {
    let vmac = MacAddr([0, 0, 0x5e, 0, 1, 51]);
    let mut port = MemPort::loopback(MemPortConfig { frame_count: 1024, frame_size: 2048, ring_size: 512 });
    for _ in 0..burst {
        assert!(port.send_bytes(&udp_frame(vmac)));
    }
    let config = WorkerConfig { burst, ..WorkerConfig::default() };
    let (mut worker, handle) = Worker::new(vec![port], MacSwap, config, None);
    // Both MACs are endpoints: the swapped frame is for the other one, so it
    // is served again on the next poll instead of being dropped.
    handle.commands.send(WorkerCommand::AddEndpoint(vmac, EndpointId(51))).unwrap();
    handle.commands.send(WorkerCommand::AddEndpoint(MacAddr([2, 0, 0, 0, 0, 1]), EndpointId(52))).unwrap();
    // A few hundred other endpoints so the lookup is not a one-entry table.
    for i in 0..200u8 {
        handle.commands.send(WorkerCommand::AddEndpoint(MacAddr([2, 0, 0, 1, 0, i]), EndpointId(i as u32))).unwrap();
    }
    for _ in 0..4 {
        assert_eq!(worker.poll_once(), burst, "the primed burst circulates");
    }
    worker
}

fn classify_and_macswap(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify_macswap_per_packet");
    for burst in [32usize, 64] {
        group.throughput(Throughput::Elements(burst as u64));
        let mut worker = primed_worker(burst);
        group.bench_with_input(BenchmarkId::new("worker_memport", burst), &burst, |b, _| {
            b.iter(|| black_box(worker.poll_once()))
        });
        assert_eq!(worker.poll_once(), burst, "still circulating after the run");
        // Reference: only the MAC swap, over an array of frames, no ports.
        let mut frames = vec![udp_frame(MacAddr([0, 0, 0x5e, 0, 1, 51])); burst];
        group.bench_with_input(BenchmarkId::new("reference_bare_swap", burst), &burst, |b, _| {
            b.iter(|| {
                for f in frames.iter_mut() {
                    let (dst, src) = f[..12].split_at_mut(6);
                    dst.swap_with_slice(src);
                }
                black_box(&frames);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, classify_and_macswap);
criterion_main!(benches);
