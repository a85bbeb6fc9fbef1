//! The load balancer's own costs, in memory: the per-packet path (flow
//! lookup, Maglev pick, MAC rewrite) at burst 64 beside a plain MAC swap of
//! the same frames, and building the table for M = 65537.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use vipdrift_control::{VipFrame, VipHandler};
use vipdrift_engine::{Dest, Packet};
use vipdrift_example_lb::balancer::Balancer;
use vipdrift_example_lb::flow::flow_of;
use vipdrift_example_lb::maglev::DEFAULT_SIZE;
use vipdrift_example_lb::pool::{Backend, Pool};
use vipdrift_wire::MacAddr;

const BURST: usize = 64;

fn backends(n: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend {
            address: IpAddr::from([198, 51, 100, 20 + i as u8]),
            mac: MacAddr([2, 0, 0, 0, 1, i as u8]),
            weight: 1,
        })
        .collect()
}

/// A burst of TCP SYN-sized frames from `BURST` clients to the VIP.
fn frames(offset: u32) -> Vec<[u8; 64]> {
    (0..BURST as u32)
        .map(|i| {
            let mut f = [0u8; 64];
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[14] = 0x45;
            f[16..18].copy_from_slice(&40u16.to_be_bytes());
            f[23] = 6;
            f[26..30].copy_from_slice(&(0xcb00_7100 + offset + i).to_be_bytes());
            f[30..34].copy_from_slice(&[198, 51, 100, 100]);
            f[34..36].copy_from_slice(&(40_000 + i as u16).to_be_bytes());
            f[36..38].copy_from_slice(&80u16.to_be_bytes());
            f
        })
        .collect()
}

fn vip_frame() -> VipFrame {
    VipFrame {
        group: 0,
        vip: IpAddr::from([198, 51, 100, 100]),
        owned: true,
        mac: MacAddr([0, 0, 0x5e, 0, 1, 51]),
        port: 0,
        queue: 0,
    }
}

fn per_packet(c: &mut Criterion) {
    let mut group = c.benchmark_group("maglev_lookup_and_rewrite_per_packet");
    group.throughput(Throughput::Elements(BURST as u64));
    let pool = Arc::new(Pool::new(&backends(10), DEFAULT_SIZE).unwrap());
    let vip = vip_frame();

    // Known flows: the worker's flow table hits (the steady state of a connection).
    let mut balancer = Balancer::new(pool.clone(), 1 << 16);
    let mut burst = frames(0);
    group.bench_function(BenchmarkId::new("known_flows", BURST), |b| {
        b.iter(|| {
            for f in burst.iter_mut() {
                let mut packet = Packet::new(f, 64, Dest::Unknown, 0);
                black_box(balancer.handle(&mut packet, &vip));
            }
        })
    });

    // New flows every burst: the Maglev pick and a flow-table insert each time.
    let mut balancer = Balancer::new(pool.clone(), 1 << 16);
    let mut round = 0u32;
    let mut bursts: Vec<Vec<[u8; 64]>> = (0..256).map(|r| frames(r * BURST as u32)).collect();
    group.bench_function(BenchmarkId::new("new_flows", BURST), |b| {
        b.iter(|| {
            round = (round + 1) % bursts.len() as u32;
            for f in bursts[round as usize].iter_mut() {
                let mut packet = Packet::new(f, 64, Dest::Unknown, 0);
                black_box(balancer.handle(&mut packet, &vip));
            }
            // A new source port for this burst's next turn, 256 bursts on,
            // so its flows are new to the table again then.
            for f in bursts[round as usize].iter_mut() {
                f[34] = f[34].wrapping_add(1);
            }
        })
    });

    // Maglev alone, as a stateless balancer would run it: parse, hash, pick, rewrite.
    let mut round = 0u32;
    group.bench_function(BenchmarkId::new("maglev_pick_only", BURST), |b| {
        b.iter(|| {
            round = (round + 1) % bursts.len() as u32;
            for f in bursts[round as usize].iter_mut() {
                let key = flow_of(f).unwrap();
                let backend = pool.pick(key.hash()).unwrap();
                let to = pool.serving(backend).unwrap();
                f[..6].copy_from_slice(&to.mac.0);
                f[6..12].copy_from_slice(&vip.mac.0);
                black_box(&f);
            }
        })
    });

    let mut burst = frames(0);
    group.bench_function(BenchmarkId::new("reference_mac_swap", BURST), |b| {
        b.iter(|| {
            for f in burst.iter_mut() {
                let mut packet = Packet::new(f, 64, Dest::Unknown, 0);
                packet.swap_macs();
                black_box(&packet);
            }
        })
    });
    group.finish();
}

fn table(c: &mut Criterion) {
    let mut group = c.benchmark_group("maglev_table_generation_65537");
    group.sample_size(20);
    for n in [10, 100] {
        let backends = backends(n);
        group.bench_function(BenchmarkId::new("backends", n), |b| {
            b.iter(|| black_box(Pool::new(&backends, DEFAULT_SIZE).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, per_packet, table);
criterion_main!(benches);
