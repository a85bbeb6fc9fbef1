//! ARP request → reply through a worker on the in-memory port: a client end
//! sends a burst of requests for an owned VIP, the worker answers them in
//! place, the client takes the replies. Reported per request, next to a
//! reference run of the same loop whose handler only sends frames back, so
//! the difference is the responder's own cost.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use vipdrift_control::Responder;
use vipdrift_engine::{Handler, MemPort, MemPortConfig, Packet, Verdict, Worker, WorkerConfig};
use vipdrift_vmac::arp::write_request;
use vipdrift_vmac::{vrrp_mac_v4, Group};
use vipdrift_wire::MacAddr;

struct Echo;
impl Handler for Echo {
    type Command = ();
    fn handle(&mut self, _packet: &mut Packet<'_>) -> Verdict {
        Verdict::Transmit
    }
}

fn request() -> [u8; 60] {
    let mut f = [0u8; 60];
    write_request(&mut f, MacAddr([2, 0, 0, 0, 0, 10]), [198, 51, 100, 10].into(), [198, 51, 100, 100].into(), None)
        .unwrap();
    f
}

fn round_trip<H: Handler>(worker: &mut Worker<MemPort, H>, client: &mut MemPort, frame: &[u8], burst: usize) -> usize {
    for _ in 0..burst {
        client.send_bytes(frame);
    }
    worker.poll_once();
    let mut back = 0;
    while client.recv_bytes_into(&mut |_| back += 1) {}
    back
}

fn arp(c: &mut Criterion) {
    let burst = 64;
    let frame = request();
    let mut group = c.benchmark_group("arp_request_to_reply_per_request");
    group.throughput(Throughput::Elements(burst as u64));

    let (port, mut client) = MemPort::pair(MemPortConfig::default());
    let groups = (0..50u8).map(|i| Group {
        id: u32::from(i),
        mac: vrrp_mac_v4(i),
        vips: vec![format!("198.51.100.{}", 100 + i).parse().unwrap()],
        owned: true,
    });
    let (mut worker, _h) = Worker::new(vec![port], Responder::with_groups(groups), WorkerConfig::default(), None);
    assert_eq!(round_trip(&mut worker, &mut client, &frame, burst), burst, "every request answered");
    group.bench_function(BenchmarkId::new("responder_memport", burst), |b| {
        b.iter(|| black_box(round_trip(&mut worker, &mut client, &frame, burst)))
    });

    let (port, mut client) = MemPort::pair(MemPortConfig::default());
    let (mut worker, _h) = Worker::new(vec![port], Echo, WorkerConfig::default(), None);
    assert_eq!(round_trip(&mut worker, &mut client, &frame, burst), burst);
    group.bench_function(BenchmarkId::new("reference_send_back_memport", burst), |b| {
        b.iter(|| black_box(round_trip(&mut worker, &mut client, &frame, burst)))
    });
    group.finish();
}

criterion_group!(benches, arp);
criterion_main!(benches);
