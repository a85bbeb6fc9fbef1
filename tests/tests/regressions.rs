//! One test per bug found in vipdrift so far, each named for what must stay
//! true and commented with what went wrong. Most also have a unit test
//! beside the code; these pin the behaviour at the public surface, where an
//! embedder or an operator would meet the bug again.

use std::net::Ipv4Addr;
use std::time::Duration;
use vipdrift_engine::{Desc, MemPort, MemPortConfig, Port};
use vipdrift_tests::lan::Lan;
use vipdrift_tests::{require_root, vipdrift_bin, wait_until};
use vipdrift_vmac::arp::{write_garp, write_request, GarpForm};
use vipdrift_vmac::{vrrp_mac_v4, Group, Outcome, VmacService};

/// `Port::release` took `&[Desc]` and `Desc` was `Copy`: releasing the same
/// descriptors twice put one frame in the free pool twice, and the next two
/// allocations handed that frame to two holders, who then wrote over each
/// other's packet. Now a release empties the slots it takes.
#[test]
fn a_second_release_of_the_same_frames_releases_nothing() {
    let mut port = MemPort::loopback(MemPortConfig { frame_count: 4, frame_size: 256, ring_size: 8 });
    let mut held: [Desc; 4] = std::array::from_fn(|_| Desc::default());
    assert_eq!(port.alloc(&mut held), 4);
    port.release(&mut held[..2]);
    port.release(&mut held[..2]);
    assert_eq!(port.free_frames(), 2, "each released frame back once, the two still held not among them");
    let mut again: [Desc; 2] = std::array::from_fn(|_| Desc::default());
    assert_eq!(port.alloc(&mut again), 2);
    let mut addrs: Vec<u64> = again.iter().chain(&held[2..]).map(Desc::addr).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 4, "four frames in use, four distinct frames");
    let mut none = [Desc::default()];
    assert_eq!(port.alloc(&mut none), 0, "and no fifth");
}

/// A descriptor is tied to its port's memory: one from another port gets no
/// bytes there and cannot be released into that port's pool (which would
/// give a frame the other port's user still writes to a second holder).
#[test]
fn a_descriptor_of_another_port_gets_no_memory_and_is_not_taken_back() {
    let mut ours = MemPort::loopback(MemPortConfig { frame_count: 4, frame_size: 256, ring_size: 8 });
    let mut theirs = MemPort::loopback(MemPortConfig { frame_count: 4, frame_size: 256, ring_size: 8 });
    let mut foreign = [Desc::default()];
    assert_eq!(theirs.alloc(&mut foreign), 1);
    assert!(ours.frame_mut(&foreign[0]).is_empty());
    let mut all: [Desc; 4] = std::array::from_fn(|_| Desc::default());
    assert_eq!(ours.alloc(&mut all), 4);
    ours.release(&mut foreign);
    assert_eq!(ours.free_frames(), 0, "the foreign frame did not join our pool");
}

fn group_51(owned: bool) -> VmacService {
    let mut service = VmacService::new();
    service.set_group(Group { id: 51, mac: vrrp_mac_v4(51), vips: vec!["198.51.100.100".parse().unwrap()], owned });
    service
}

fn announcement() -> Vec<u8> {
    let mut garp = vec![0u8; 60];
    write_garp(&mut garp, GarpForm::Request, vrrp_mac_v4(51), Ipv4Addr::new(198, 51, 100, 100), None).unwrap();
    garp
}

/// The old master answered the new master's gratuitous ARP for the VIP (an
/// ARP request with SPA = TPA = VIP), pulling the VIP's traffic back to a
/// node about to give it up.
#[test]
fn a_gratuitous_arp_for_an_owned_vip_is_not_answered() {
    let mut service = group_51(true);
    let mut garp = announcement();
    assert_eq!(service.handle(&mut garp, 60), Outcome::NotOurs);
    assert_eq!(service.counters().arp_replies, 0);
    assert_eq!(service.counters().announcements_heard, 1);
}

/// A master handing over (stop, maintenance) kept answering ARP until the
/// control thread's release, after its successor had already announced:
/// clients flapped between the two for a few milliseconds.
#[test]
fn a_master_handing_over_stops_answering_at_its_successors_announcement() {
    let mut service = group_51(true);
    service.hand_over(51);
    service.handle(&mut announcement(), 60);
    let mut request = vec![0u8; 60];
    write_request(
        &mut request,
        [2, 0, 0, 0, 0, 10].into(),
        Ipv4Addr::new(198, 51, 100, 10),
        Ipv4Addr::new(198, 51, 100, 100),
        None,
    )
    .unwrap();
    assert_eq!(service.handle(&mut request, 60), Outcome::NotOurs);
    assert_eq!(service.take_handed_over().collect::<Vec<_>>(), [51]);
}

/// `vipdrift serve` steered an IPv6 VIP's neighbour solicitations but never
/// joined its solicited-node group, so on a NIC that filters multicast the
/// solicitations never arrived (veth accepts them anyway, which hid it).
/// serve now prepares the NIC with the daemon's recipe.
#[test]
fn serve_joins_an_ipv6_vips_solicited_node_group() {
    require_root();
    let lan = Lan::builder()
        .host("client", "c0", "02:00:00:00:00:0a", "")
        .with_ipv6()
        .host("node", "n0", "02:00:00:00:00:02", "")
        .with_ipv6()
        .cable(("client", "c0"), ("node", "n0"))
        .build();
    let node = &lan.host("node").ns;
    let bin = vipdrift_bin();
    let maddr = || String::from_utf8_lossy(&node.exec_ok(&["ip", "maddr", "show", "dev", "n0"]).stdout).into_owned();
    // 2001:db8::100's solicited-node group ff02::1:ff00:100 is 33:33:ff:00:01:00.
    assert!(!maddr().contains("33:33:ff:00:01:00"), "not joined before serve: {}", maddr());
    let server = node.spawn(&[&bin, "serve", "--iface", "n0", "--vip", "2001:db8::100/64", "--json"]);
    let joined = wait_until(Duration::from_secs(10), || maddr().contains("33:33:ff:00:01:00"));
    server.signal(libc::SIGTERM);
    let out = server.wait(Duration::from_secs(10));
    assert!(joined, "serve joins the VIP's solicited-node group: {}", maddr());
    assert!(out.status.success(), "serve failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!maddr().contains("33:33:ff:00:01:00"), "and leaves it at exit: {}", maddr());
}
