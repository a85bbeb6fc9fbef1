//! `vipdrift serve`: a client namespace using the kernel's own stack
//! resolves and pings VIPs that only vipdrift answers, while the node's own
//! address keeps working through the kernel on the same interface.

use std::time::Duration;
use vipdrift_tests::lan::Lan;
use vipdrift_tests::{json_summary, vipdrift_bin, wait_until, NetNs, Proc};

const CLIENT_MAC: &str = "02:00:00:00:00:0a";
const NODE_MAC: &str = "02:00:00:00:00:02";
const VIP4: &str = "198.51.100.100";
const VIP6: &str = "2001:db8::100";

/// Client c0 198.51.100.10/24, 2001:db8::a/64 — node n0 198.51.100.2/24;
/// IPv6 on for both: the VIPs include one.
fn lab() -> Lan {
    Lan::builder()
        .host("client", "c0", CLIENT_MAC, "198.51.100.10/24")
        .address("2001:db8::a/64")
        .with_ipv6()
        .host("node", "n0", NODE_MAC, "198.51.100.2/24")
        .with_ipv6()
        .cable(("client", "c0"), ("node", "n0"))
        .build()
}

fn serve(lab: &Lan, extra: &[&str]) -> Proc {
    let bin = vipdrift_bin();
    let mut args = vec![bin.as_str(), "serve", "--iface", "n0", "--json"];
    args.extend_from_slice(extra);
    let proc = lab.host("node").ns.spawn(&args);
    assert!(
        wait_until(Duration::from_secs(10), || {
            String::from_utf8_lossy(&lab.host("node").ns.exec_ok(&["ip", "-d", "link", "show", "n0"]).stdout)
                .contains("xdp")
        }),
        "serve did not attach its program"
    );
    std::thread::sleep(Duration::from_millis(300));
    proc
}

fn stop(proc: Proc) -> serde_json::Value {
    proc.signal(libc::SIGTERM);
    let out = proc.wait(Duration::from_secs(10));
    assert!(out.status.success(), "serve failed: {}", String::from_utf8_lossy(&out.stderr));
    json_summary(&out)
}

fn pings(ns: &NetNs, target: &str) -> bool {
    let family = if target.contains(':') { "-6" } else { "-4" };
    ns.exec(&["ping", family, "-c", "3", "-i", "0.2", "-W", "1", target]).status.success()
}

fn neighbour_mac(ns: &NetNs, ip: &str) -> String {
    ns.neighbour_mac(ip, "c0")
}

/// A TCP connection from the client to a listener in the node's namespace.
fn tcp_connects(lab: &Lan) -> bool {
    let listener = lab.host("node").ns.spawn(&[
        "python3",
        "-c",
        "import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
         s.bind(('198.51.100.2', 8080)); s.listen(1); s.settimeout(5); c,_=s.accept(); c.sendall(b'hello'); c.close()",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let out = lab.host("client").ns.exec(&[
        "python3",
        "-c",
        "import socket; c=socket.create_connection(('198.51.100.2', 8080), timeout=2); print(c.recv(5).decode())",
    ]);
    drop(listener);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hello")
}

/// Sends raw frames (hex) from the client's c0.
fn send_raw(lab: &Lan, frame_hex: &str, count: u32) {
    let script = format!(
        "import socket; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('c0', 0)); \
         f=bytes.fromhex('{frame_hex}'); [s.send(f) for _ in range({count})]"
    );
    lab.host("client").ns.exec_ok(&["python3", "-c", &script]);
}

#[test]
fn vips_answer_ping_and_resolve_to_the_virtual_mac_while_the_node_keeps_its_own_traffic() {
    let lab = lab();
    let server = serve(&lab, &["--vip", "198.51.100.100/24", "--vip", "2001:db8::100/64", "--vrid", "51"]);
    assert!(pings(&lab.host("client").ns, VIP4), "IPv4 VIP answers ping");
    assert!(pings(&lab.host("client").ns, VIP6), "IPv6 VIP answers ping");
    assert_eq!(neighbour_mac(&lab.host("client").ns, VIP4), "00:00:5e:00:01:33");
    assert_eq!(neighbour_mac(&lab.host("client").ns, VIP6), "00:00:5e:00:01:33");
    assert!(pings(&lab.host("client").ns, "198.51.100.2"), "the node's own address still answers through the kernel");
    assert!(tcp_connects(&lab), "a TCP connection to the node still works");
    assert!(!pings(&lab.host("client").ns, "198.51.100.101"), "an address nobody serves is not answered");
    let s = stop(server);
    assert!(s["arp_replies"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["na_replies"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["echo_replies"].as_u64().unwrap() >= 6, "{s}");
    assert_eq!(s["frames_leaked"], 0, "{s}");
    let link =
        String::from_utf8_lossy(&lab.host("node").ns.exec_ok(&["ip", "-d", "link", "show", "n0"]).stdout).into_owned();
    assert!(!link.contains("xdp"), "the program is detached on exit: {link}");
}

#[test]
fn own_mac_mode_answers_with_the_interface_mac() {
    let lab = lab();
    let server = serve(&lab, &["--vip", "198.51.100.100/24", "--own-mac"]);
    assert!(pings(&lab.host("client").ns, VIP4));
    assert_eq!(neighbour_mac(&lab.host("client").ns, VIP4), NODE_MAC);
    stop(server);
}

#[test]
fn whole_nic_mode_takes_the_node_address_away_from_the_kernel() {
    let lab = lab();
    let server = serve(&lab, &["--vip", "198.51.100.100/24", "--whole-nic"]);
    assert!(pings(&lab.host("client").ns, VIP4), "the VIP still answers");
    lab.host("client").ns.exec(&["ip", "neigh", "flush", "dev", "c0"]);
    assert!(!pings(&lab.host("client").ns, "198.51.100.2"), "the kernel sees nothing in whole-NIC mode");
    let s = stop(server);
    assert!(s["drops"]["no_endpoint"].as_u64().unwrap() >= 1, "the node's traffic was dropped and counted: {s}");
    assert!(pings(&lab.host("client").ns, "198.51.100.2"), "and gets it back once vipdrift exits");
}

#[test]
fn malformed_arp_and_ndp_are_counted_and_the_service_keeps_answering() {
    let lab = lab();
    let server = serve(&lab, &["--vip", "198.51.100.100/24", "--vip", "2001:db8::100/64"]);
    // An ARP packet for the VIP with opcode 9 (RFC 826: 1 request, 2 reply).
    let bad_arp = "ffffffffffff02000000000a0806000108000604000902000000000ac633640a000000000000c6336464\
                   000000000000000000000000000000000000";
    // Neighbor solicitation for the VIP with hop limit 64 (RFC 4861 §7.1.1 requires 255).
    let bad_ns = "3333ff00010002000000000a86dd6000000000203a4020010db800000000000000000000000aff02000000000000\
                  00000001ff00010087001a190000000020010db8000000000000000000000100010102000000000a";
    send_raw(&lab, bad_arp, 20);
    send_raw(&lab, bad_ns, 20);
    assert!(pings(&lab.host("client").ns, VIP4), "still answering after the malformed frames");
    let s = stop(server);
    assert_eq!(s["bad_arp"], 20, "{s}");
    assert_eq!(s["bad_ndp"], 20, "{s}");
    assert_eq!(s["drops"]["handler"], 40, "{s}");
}

/// The unicast addresses the kernel holds for `n0` (its filter), as `bridge fdb` lists them.
fn unicast_filter(lab: &Lan) -> String {
    String::from_utf8_lossy(&lab.host("node").ns.exec_ok(&["bridge", "fdb", "show", "dev", "n0"]).stdout).into_owned()
}

#[test]
fn the_nic_accepts_the_virtual_mac_only_while_serving_and_a_killed_server_restarts_cleanly() {
    let lab = lab();
    assert!(!unicast_filter(&lab).contains("00:00:5e:00:01:33"));
    let server = serve(&lab, &["--vip", "198.51.100.100/24", "--vrid", "51"]);
    assert!(unicast_filter(&lab).contains("00:00:5e:00:01:33"), "vMAC in the filter: {}", unicast_filter(&lab));
    // kill -9: no chance to clean up. The kernel drops the filter entry with
    // the socket; the XDP program stays behind, stale.
    server.signal(libc::SIGKILL);
    let _ = server.wait(Duration::from_secs(5));
    assert!(!unicast_filter(&lab).contains("00:00:5e:00:01:33"), "the filter is restored after kill -9");
    // A new start replaces the stale program and serves again.
    let again = serve(&lab, &["--vip", "198.51.100.100/24", "--vrid", "51"]);
    assert!(pings(&lab.host("client").ns, VIP4), "serving again after a crash");
    let s = stop(again);
    assert!(s["echo_replies"].as_u64().unwrap() >= 3, "{s}");
    assert!(!unicast_filter(&lab).contains("00:00:5e:00:01:33"));
}

#[test]
fn a_vip_held_in_standby_is_not_answered_but_counted() {
    let lab = lab();
    let server = serve(&lab, &["--vip", "198.51.100.100/24", "--standby"]);
    assert!(!pings(&lab.host("client").ns, VIP4), "a VIP this node does not own is not answered");
    assert_eq!(neighbour_mac(&lab.host("client").ns, VIP4), "", "nor resolved");
    let s = stop(server);
    assert_eq!(s["arp_replies"], 0, "{s}");
    assert!(s["not_owned"].as_u64().unwrap() >= 1, "{s}");
}
