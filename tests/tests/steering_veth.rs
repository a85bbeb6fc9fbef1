//! The XDP steering program on a veth pair between two network namespaces
//! made by the test itself (unique names with the process id, removed on
//! drop even when a test panics). Needs root: the tests fail, never skip,
//! without it.
//!
//! The test thread enters the first namespace (setns affects only the
//! calling thread), attaches [`Steering`] and opens an [`AfXdpPort`] there;
//! frames are sent from the second namespace with a raw AF_PACKET socket
//! (`python3` under `ip netns exec`). Addresses: 198.51.100.0/24 and
//! 2001:db8::/32, only inside these namespaces.

use std::net::IpAddr;
use std::time::{Duration, Instant};
use vipdrift_engine::{
    monotonic_ns, AfXdpConfig, AfXdpPort, BindMode, BoundMode, Desc, MacAddr, PacketSocket, Port, Steering,
    SteeringConfig, VipDelivery, XdpAttachMode, XdpCounts,
};
use vipdrift_tests::lan::Lan;
use vipdrift_tests::{InNetns, NetNs};

const VMAC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 0x33]);
const OTHER_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x0a, 0x99]);
const MAC_A: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]);
const MAC_B: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x0b, 0x01]);
const VIP4: [u8; 4] = [198, 51, 100, 100];
const NOT_VIP4: [u8; 4] = [198, 51, 100, 7];
const PEER4: [u8; 4] = [198, 51, 100, 2];
/// 2001:db8::100 and 2001:db8::7.
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
const NOT_VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07];
/// How long a frame that should reach the socket may take.
const ARRIVAL: Duration = Duration::from_secs(1);

const SENDER: &str = "import socket,sys\n\
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
s.bind((sys.argv[1],0))\n\
for h in sys.argv[2:]:\n    s.send(bytes.fromhex(h))\n";

/// Two namespaces joined by a veth pair (one queue each way): `a` is where
/// the engine runs, `b` sends.
struct Lab {
    lan: Lan,
    a: String,
    b: String,
}

impl Lab {
    fn new() -> Lab {
        let lan = Lan::builder()
            .host("steer-a", "vsa", &MAC_A.to_string(), "")
            .host("steer-b", "vsb", &MAC_B.to_string(), "")
            .cable(("steer-a", "vsa"), ("steer-b", "vsb"))
            .build();
        Lab { lan, a: "vsa".into(), b: "vsb".into() }
    }

    fn ns_a(&self) -> &NetNs {
        &self.lan.host("steer-a").ns
    }

    fn ns_b(&self) -> &NetNs {
        &self.lan.host("steer-b").ns
    }

    /// Sends `frames`, in order, from `b`.
    fn send(&self, frames: &[&[u8]]) {
        let hex: Vec<String> = frames.iter().map(|f| f.iter().map(|b| format!("{b:02x}")).collect()).collect();
        let mut args = vec!["python3", "-c", SENDER, &self.b];
        args.extend(hex.iter().map(String::as_str));
        self.ns_b().exec_ok(&args);
    }

    /// The kernel's RX packet counter of `a`.
    fn rx_packets(&self) -> u64 {
        let path = format!("/sys/class/net/{}/statistics/rx_packets", self.a);
        let out = self.ns_a().exec_ok(&["cat", &path]);
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("rx_packets is a number")
    }

    /// `ip -d link show a`.
    fn link_details(&self) -> String {
        let out = self.ns_a().exec_ok(&["ip", "-d", "link", "show", &self.a]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Enters `a`'s namespace on this thread until the guard drops.
    fn enter_a(&self) -> InNetns {
        self.ns_a().enter()
    }
}

fn eth(dst: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&MAC_B.octets());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

fn ipv4(proto: u8, dst: [u8; 4], marker: u8) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, proto, 0, 0];
    h.extend_from_slice(&PEER4);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&[marker; 8]);
    h
}

/// A UDP-ish IPv4 frame to `dst` (`marker` tells frames apart).
fn ip_frame(dst: MacAddr, marker: u8) -> Vec<u8> {
    eth(dst, 0x0800, &ipv4(17, [198, 51, 100, 1], marker))
}

fn arp_body(target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    a.extend_from_slice(&MAC_B.octets());
    a.extend_from_slice(&PEER4);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target);
    a
}

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    eth(MacAddr::BROADCAST, 0x0806, &arp_body(target))
}

fn vlan_arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x00, 0x64, 0x08, 0x06]; // VLAN 100, then ARP
    p.extend_from_slice(&arp_body(target));
    eth(MacAddr::BROADCAST, 0x8100, &p)
}

fn ipv6(next: u8, dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 255]);
    let mut src = VIP6;
    src[15] = 2;
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// A Neighbor Solicitation for `target`, to its solicited-node address.
fn neighbor_solicitation(target: [u8; 16]) -> Vec<u8> {
    let mut dst = [0u8; 16];
    dst[..2].copy_from_slice(&[0xff, 0x02]);
    dst[11] = 1;
    dst[12] = 0xff;
    dst[13..].copy_from_slice(&target[13..]);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target);
    let mac = MacAddr([0x33, 0x33, 0xff, target[13], target[14], target[15]]);
    eth(mac, 0x86dd, &ipv6(58, dst, &icmp))
}

fn vrrp4() -> Vec<u8> {
    eth(MacAddr([0x01, 0x00, 0x5e, 0, 0, 0x12]), 0x0800, &ipv4(112, [224, 0, 0, 18], 0x44))
}

fn vrrp6() -> Vec<u8> {
    let mut dst = [0u8; 16];
    dst[..2].copy_from_slice(&[0xff, 0x02]);
    dst[15] = 0x12;
    eth(MacAddr([0x33, 0x33, 0, 0, 0, 0x12]), 0x86dd, &ipv6(112, dst, &[0x31, 1, 100, 0, 0, 100, 0, 0]))
}

/// An AF_PACKET socket on `a` that sees what the kernel's stack receives:
/// frames an XDP program redirects never reach it (native XDP runs in the
/// driver, generic XDP before the packet taps), unlike veth's `rx_packets`,
/// which counts redirected frames too.
struct Sniffer {
    socket: PacketSocket,
}

impl Sniffer {
    /// Opens the sniffer on `iface` of the calling thread's namespace.
    fn open(iface: &str) -> Sniffer {
        let socket = PacketSocket::open(iface).unwrap_or_else(|e| panic!("AF_PACKET socket on {iface}: {e}"));
        Sniffer { socket }
    }

    /// Incoming frames queued now (outgoing ones skipped).
    fn drain(&self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..10_000 {
            let Ok(Some(got)) = self.socket.recv(&mut buf) else { break };
            if !got.outgoing {
                frames.push(buf[..got.len].to_vec());
            }
        }
        frames
    }
}

/// Whether `seen` (by the sniffer) is `sent`, allowing for the kernel
/// having moved an 802.1Q tag out of the frame into metadata.
fn same_frame(seen: &[u8], sent: &[u8]) -> bool {
    if seen == sent {
        return true;
    }
    sent.len() > 16 && sent[12..14] == [0x81, 0x00] && seen[..12] == sent[..12] && seen[12..] == sent[16..]
}

/// Everything the socket receives within `wait` (returned as soon as
/// `expect` frames are in), frames released back to the port.
fn receive(port: &mut AfXdpPort, expect: usize, wait: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut descs: [Desc; 64] = std::array::from_fn(|_| Desc::default());
    let deadline = Instant::now() + wait;
    // Bounded in time by the deadline and in count by the iteration cap.
    for _ in 0..1_000_000 {
        port.service();
        let n = port.rx_burst(&mut descs);
        for desc in &descs[..n] {
            let frame = port.frame_mut(desc);
            got.push(frame[..(desc.len() as usize).min(frame.len())].to_vec());
        }
        port.release(&mut descs[..n]);
        if got.len() >= expect || Instant::now() >= deadline {
            break;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

/// Sends `to_kernel` then `to_socket` (in that order, so once the last
/// socket frame is in, the kernel frames were already steered) and checks
/// that exactly `to_socket` reached the socket and that the kernel's RX
/// counter of `a` grew by at least `to_kernel.len()`.
fn check(lab: &Lab, port: &mut AfXdpPort, sniffer: &Sniffer, what: &str, to_socket: &[Vec<u8>], to_kernel: &[Vec<u8>]) {
    let _ = sniffer.drain();
    let before = lab.rx_packets();
    let frames: Vec<&[u8]> = to_kernel.iter().chain(to_socket).map(Vec::as_slice).collect();
    lab.send(&frames);
    let mut got = receive(port, to_socket.len(), ARRIVAL);
    // Anything straggling in after the last expected frame is wrong too.
    got.extend(receive(port, usize::MAX, Duration::from_millis(50)));
    assert_eq!(
        got.len(),
        to_socket.len(),
        "{what}: {} frames reached the socket, expected {}",
        got.len(),
        to_socket.len()
    );
    for (i, (got, want)) in got.iter().zip(to_socket).enumerate() {
        assert_eq!(got, want, "{what}: frame {i} at the socket is not the one sent");
    }
    let deadline = Instant::now() + ARRIVAL;
    let mut delta = 0;
    for _ in 0..1000 {
        delta = lab.rx_packets() - before;
        if delta >= to_kernel.len() as u64 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + ARRIVAL;
    for _ in 0..1000 {
        seen.extend(sniffer.drain());
        if seen.len() >= to_kernel.len() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
    seen.extend(sniffer.drain());
    assert_eq!(
        seen.len(),
        to_kernel.len(),
        "{what}: the kernel's stack saw {} frames, expected {}",
        seen.len(),
        to_kernel.len()
    );
    for (i, (seen, sent)) in seen.iter().zip(to_kernel).enumerate() {
        assert!(same_frame(seen, sent), "{what}: frame {i} the kernel saw is not the one sent");
    }
    eprintln!("{what}: {} to the socket, {} to the kernel, rx_packets +{delta}", to_socket.len(), to_kernel.len());
    assert!(
        delta >= to_kernel.len() as u64,
        "{what}: rx_packets grew by {delta}, expected at least {}",
        to_kernel.len()
    );
}

fn open_port(iface: &str, bind: BindMode) -> AfXdpPort {
    let mut config = AfXdpConfig::new(iface, 0);
    config.frame_count = 512;
    config.fill_ring = 128;
    config.comp_ring = 128;
    config.rx_ring = 128;
    config.tx_ring = 128;
    config.bind = bind;
    config.load_default_program = false;
    AfXdpPort::open(&config).unwrap_or_else(|e| panic!("open AF_XDP on {iface} ({bind:?}): {e}"))
}

fn assert_no_xdp(lab: &Lab) {
    let details = lab.link_details();
    assert!(!details.contains("xdp"), "an XDP program is still attached to {}:\n{details}", lab.a);
}

#[test]
fn native_mode_steers_only_the_engines_frames() {
    let lab = Lab::new();
    let _inside = lab.enter_a();
    let sniffer = Sniffer::open(&lab.a);
    let config = SteeringConfig { iface: lab.a.clone(), mode: XdpAttachMode::Native, whole_nic: false };
    let mut steering = Steering::attach(&config).expect("attach the steering program in native mode");
    assert!(lab.link_details().contains("xdp"), "no XDP program on {}:\n{}", lab.a, lab.link_details());
    let mut port = open_port(&lab.a, BindMode::Copy);
    assert_eq!(port.bound_mode(), BoundMode::Copy);
    steering.add_socket(0, port.raw_fd()).expect("socket into xsks");
    steering.add_vmac(VMAC).expect("add vMAC");
    steering.add_vip(IpAddr::from(VIP4), VipDelivery::Engine).expect("add IPv4 VIP");
    steering.add_vip(IpAddr::from(VIP6), VipDelivery::Engine).expect("add IPv6 VIP");
    // Our program, not some other.
    assert_eq!(steering.attached_prog_id().unwrap(), steering.prog_id().unwrap());

    check(
        &lab,
        &mut port,
        &sniffer,
        "vMAC vs other MAC",
        &[ip_frame(VMAC, 1)],
        &[ip_frame(OTHER_MAC, 2), ip_frame(MAC_A, 3)],
    );
    check(&lab, &mut port, &sniffer, "ARP for the VIP vs another IP", &[arp_request(VIP4)], &[arp_request(NOT_VIP4)]);
    check(&lab, &mut port, &sniffer, "802.1Q-tagged ARP", &[vlan_arp_request(VIP4)], &[vlan_arp_request(NOT_VIP4)]);
    check(
        &lab,
        &mut port,
        &sniffer,
        "NS for the IPv6 VIP vs another",
        &[neighbor_solicitation(VIP6)],
        &[neighbor_solicitation(NOT_VIP6)],
    );
    check(&lab, &mut port, &sniffer, "VRRP over IPv4 and IPv6", &[vrrp4(), vrrp6()], &[]);
    // Truncated frames pass to the kernel (and the verifier accepted the bounds checks).
    let runt_arp = {
        let mut f = arp_request(VIP4);
        f.truncate(14 + 20);
        f
    };
    check(&lab, &mut port, &sniffer, "truncated ARP", &[], &[runt_arp]);

    steering.set_whole_nic(true).expect("whole_nic on");
    check(
        &lab,
        &mut port,
        &sniffer,
        "whole_nic",
        &[ip_frame(OTHER_MAC, 4), arp_request(NOT_VIP4), ip_frame(MAC_A, 5), ip_frame(VMAC, 6)],
        &[],
    );
    steering.set_whole_nic(false).expect("whole_nic off");

    steering.remove_vmac(VMAC).expect("remove vMAC");
    steering.remove_vip(IpAddr::from(VIP4)).expect("remove VIP");
    check(&lab, &mut port, &sniffer, "after removal", &[vrrp4()], &[ip_frame(VMAC, 7), arp_request(VIP4)]);
    // Removing what is absent is fine.
    steering.remove_vmac(VMAC).expect("remove an absent vMAC");

    drop(steering);
    assert_no_xdp(&lab);
    // With no program, nothing reaches the socket.
    check(&lab, &mut port, &sniffer, "after detach", &[], &[ip_frame(VMAC, 8), vrrp4()]);
}

/// IPv4 to `daddr`, sent to `dst`.
fn ip_to(dst: MacAddr, daddr: [u8; 4], marker: u8) -> Vec<u8> {
    eth(dst, 0x0800, &ipv4(17, daddr, marker))
}

/// Sends `frames` and returns what the kernel's stack then saw on `a`
/// (the socket must see nothing).
fn kernel_sees(lab: &Lab, port: &mut AfXdpPort, sniffer: &Sniffer, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let _ = sniffer.drain();
    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    lab.send(&frames);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        receive(port, usize::MAX, Duration::from_millis(50)).is_empty(),
        "IP to a kernel-delivered VIP reached the socket"
    );
    sniffer.drain()
}

/// Kernel delivery: IP to the VIP reaches the kernel only while its group
/// is owned and the queue's lease runs, with a frame sent to the virtual
/// MAC readdressed to the NIC's own MAC; otherwise the program drops it and
/// counts why. ARP for the VIP stays with the engine throughout.
#[test]
fn kernel_delivery_passes_a_vips_traffic_only_while_owned_and_leased() {
    let lab = Lab::new();
    let _inside = lab.enter_a();
    let sniffer = Sniffer::open(&lab.a);
    let config = SteeringConfig { iface: lab.a.clone(), mode: XdpAttachMode::Native, whole_nic: false };
    let mut steering = Steering::attach(&config).expect("attach the steering program");
    let mut port = open_port(&lab.a, BindMode::Copy);
    steering.add_socket(0, port.raw_fd()).expect("socket into xsks");
    steering.add_vmac(VMAC).expect("add vMAC");
    steering.add_vip(IpAddr::from(VIP4), VipDelivery::Kernel { group: 3 }).expect("add a kernel-delivered VIP");
    let gate = steering.delivery_gate();
    let to_vip = || vec![ip_to(VMAC, VIP4, 1), ip_to(MAC_A, VIP4, 2)];

    assert!(kernel_sees(&lab, &mut port, &sniffer, &to_vip()).is_empty(), "not owned: nothing reaches the kernel");
    assert_eq!(steering.counts().unwrap(), XdpCounts { not_owned: 2, lease_expired: 0, to_kernel: 0 });

    gate.set_owned(3, true);
    assert!(gate.is_owned(3) && !gate.is_owned(2));
    assert!(kernel_sees(&lab, &mut port, &sniffer, &to_vip()).is_empty(), "owned, never leased: nothing either");
    assert_eq!(steering.counts().unwrap(), XdpCounts { not_owned: 2, lease_expired: 2, to_kernel: 0 });

    gate.renew(0, monotonic_ns() + 10_000_000_000);
    let seen = kernel_sees(&lab, &mut port, &sniffer, &to_vip());
    assert_eq!(seen.len(), 2, "owned and leased: both reach the kernel");
    assert_eq!(&seen[0][..6], &MAC_A.octets(), "the frame sent to the virtual MAC is readdressed to the NIC's");
    assert_eq!(&seen[0][6..], &to_vip()[0][6..], "and otherwise unchanged");
    assert_eq!(seen[1], to_vip()[1]);
    assert_eq!(steering.counts().unwrap(), XdpCounts { not_owned: 2, lease_expired: 2, to_kernel: 2 });
    check(&lab, &mut port, &sniffer, "ARP for a kernel-delivered VIP", &[arp_request(VIP4)], &[]);

    // The worker stopped vouching: its last deadline passed.
    gate.renew(0, monotonic_ns());
    assert!(kernel_sees(&lab, &mut port, &sniffer, &to_vip()).is_empty(), "a lapsed lease delivers nothing");
    assert_eq!(steering.counts().unwrap(), XdpCounts { not_owned: 2, lease_expired: 4, to_kernel: 2 });

    // The gate is shared memory that outlives the steering's handle on it.
    drop(steering);
    gate.set_owned(3, false);
    assert!(!gate.is_owned(3));
}

#[test]
fn skb_mode_binds_and_steers() {
    let lab = Lab::new();
    let _inside = lab.enter_a();
    let sniffer = Sniffer::open(&lab.a);
    let config = SteeringConfig { iface: lab.a.clone(), mode: XdpAttachMode::Skb, whole_nic: false };
    let mut steering = Steering::attach(&config).expect("attach the steering program in skb mode");
    assert!(lab.link_details().contains("xdpgeneric"), "no generic XDP program:\n{}", lab.link_details());
    let mut port = open_port(&lab.a, BindMode::Skb);
    assert_eq!(port.bound_mode(), BoundMode::Skb);
    steering.add_socket(0, port.raw_fd()).expect("socket into xsks");
    steering.add_vmac(VMAC).expect("add vMAC");
    steering.add_vip(IpAddr::from(VIP4), VipDelivery::Engine).expect("add IPv4 VIP");
    check(&lab, &mut port, &sniffer, "skb: vMAC vs other MAC", &[ip_frame(VMAC, 1)], &[ip_frame(OTHER_MAC, 2)]);
    check(&lab, &mut port, &sniffer, "skb: ARP", &[arp_request(VIP4)], &[arp_request(NOT_VIP4)]);
    drop(steering);
    assert_no_xdp(&lab);
}

#[test]
fn a_stale_program_is_replaced() {
    let lab = Lab::new();
    let _inside = lab.enter_a();
    let sniffer = Sniffer::open(&lab.a);
    let native = SteeringConfig { iface: lab.a.clone(), mode: XdpAttachMode::Native, whole_nic: false };
    let skb = SteeringConfig { mode: XdpAttachMode::Skb, ..native.clone() };

    // A crashed run in the same mode: its program stays attached.
    let stale = Steering::attach(&native).expect("first attach");
    let stale_id = stale.prog_id().unwrap();
    std::mem::forget(stale);
    let mut steering = Steering::attach(&native).expect("attach over a stale program");
    let id = steering.prog_id().unwrap();
    assert_ne!(id, stale_id);
    assert_eq!(steering.attached_prog_id().unwrap(), id, "the new program did not replace the stale one");

    let mut port = open_port(&lab.a, BindMode::Copy);
    steering.add_socket(0, port.raw_fd()).expect("socket into xsks");
    steering.add_vmac(VMAC).expect("add vMAC");
    check(&lab, &mut port, &sniffer, "after replacing", &[ip_frame(VMAC, 1)], &[ip_frame(OTHER_MAC, 2)]);
    drop(steering);
    assert_no_xdp(&lab);

    // A crashed run in the other mode: the kernel refuses native while a
    // generic program runs, so attach detaches that one first.
    let stale = Steering::attach(&skb).expect("attach in skb mode");
    std::mem::forget(stale);
    assert!(lab.link_details().contains("xdpgeneric"));
    let steering = Steering::attach(&native).expect("attach native over a stale generic program");
    let details = lab.link_details();
    assert!(!details.contains("xdpgeneric"), "the generic program is still there:\n{details}");
    assert_eq!(steering.attached_prog_id().unwrap(), steering.prog_id().unwrap());
    drop(steering);
    assert_no_xdp(&lab);

    // A drop that finds another program in place leaves it alone.
    let first = Steering::attach(&native).expect("attach");
    let second = Steering::attach(&native).expect("attach again");
    drop(first);
    assert_eq!(
        second.attached_prog_id().unwrap(),
        second.prog_id().unwrap(),
        "dropping a replaced steering detached its successor"
    );
    drop(second);
    assert_no_xdp(&lab);
    drop(port);
}
