//! `vipdrift probe`: the fixed-rate prober between two namespaces over a
//! veth pair, without and with a cut in the link.

use std::time::Duration;
use vipdrift_tests::lan::Lan;
use vipdrift_tests::{json_summary, require_root, vipdrift_bin};

const PROBER_MAC: &str = "02:00:00:00:00:0a";
const TARGET_MAC: &str = "02:00:00:00:00:0b";
const TARGET4: &str = "198.51.100.2";
const TARGET6: &str = "2001:db8::2";

/// Prober p0 198.51.100.1/24, 2001:db8::1/64 — target t0 198.51.100.2/24, 2001:db8::2/64.
fn lab() -> Lan {
    require_root();
    Lan::builder()
        .host("prober", "p0", PROBER_MAC, "198.51.100.1/24")
        .address("2001:db8::1/64")
        .with_ipv6()
        .host("target", "t0", TARGET_MAC, "198.51.100.2/24")
        .address("2001:db8::2/64")
        .with_ipv6()
        .cable(("prober", "p0"), ("target", "t0"))
        .build()
}

/// Runs `vipdrift probe ARGS --json` in the prober's namespace; returns its summary.
fn probe(lab: &Lan, args: &[&str]) -> serde_json::Value {
    let bin = vipdrift_bin();
    let mut argv = vec![bin.as_str(), "probe", "--json"];
    argv.extend_from_slice(args);
    let out = lab.host("prober").ns.exec(&argv);
    assert!(out.status.success(), "probe failed: {}", String::from_utf8_lossy(&out.stderr));
    json_summary(&out)
}

fn u(s: &serde_json::Value, key: &str) -> u64 {
    s[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not a count: {s}"))
}

fn f(s: &serde_json::Value, key: &str) -> f64 {
    s[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number: {s}"))
}

fn assert_no_loss(s: &serde_json::Value, count: u64) {
    assert_eq!(s["tool"], "probe", "{s}");
    assert_eq!(u(s, "sent"), count, "{s}");
    assert_eq!(u(s, "received"), count, "{s}");
    assert_eq!(u(s, "lost"), 0, "{s}");
    assert_eq!(u(s, "duplicates"), 0, "{s}");
    assert_eq!(f(s, "outage_ms"), 0.0, "{s}");
    // No gaps; except that on a loaded machine (two cores, CI) the prober
    // itself can be descheduled for a few ms: a short gap in which nothing
    // was lost, its sends late or its replies stamped late. Never a loss.
    let gaps = s["gaps"].as_array().expect("gaps");
    assert!(
        gaps.iter().all(|g| g["lost"] == 0 && g["ms"].as_f64().unwrap() < 50.0),
        "no gaps beyond a short stall of the prober: {s}"
    );
    let rtt = &s["rtt_us"];
    let (min, median, max) =
        (rtt["min"].as_f64().unwrap(), rtt["median"].as_f64().unwrap(), rtt["max"].as_f64().unwrap());
    assert!(0.0 < min && min <= median && median <= max, "{s}");
}

#[test]
fn ipv4_at_1_ms_loses_nothing() {
    let lab = lab();
    let s = probe(&lab, &["--target", TARGET4, "--interval-ms", "1", "--count", "500"]);
    assert_no_loss(&s, 500);
    assert_eq!(s["target"], TARGET4, "{s}");
    assert_eq!(f(&s, "interval_ms"), 1.0, "{s}");
}

#[test]
fn a_300_ms_cut_in_the_link_is_one_gap_with_its_losses() {
    let lab = lab();
    // The prober's ARP entry for the target is static: losing carrier
    // flushes a learned one, and re-resolving it waits for the ARP
    // retransmit timer (1 s), which would set the dark time instead of the cut.
    lab.host("prober").ns.exec_ok(&[
        "ip",
        "neigh",
        "replace",
        TARGET4,
        "lladdr",
        TARGET_MAC,
        "dev",
        "p0",
        "nud",
        "permanent",
    ]);
    let bin = vipdrift_bin();
    let running = lab.host("prober").ns.spawn(&[
        &bin,
        "probe",
        "--target",
        TARGET4,
        "--duration",
        "2",
        "--interval-ms",
        "2",
        "--json",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    lab.host("target").ns.exec_ok(&["ip", "link", "set", "t0", "down"]);
    std::thread::sleep(Duration::from_millis(300));
    lab.host("target").ns.exec_ok(&["ip", "link", "set", "t0", "up"]);
    let out = running.wait(Duration::from_secs(15));
    assert!(out.status.success(), "probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let s = json_summary(&out);

    let (sent, received, lost) = (u(&s, "sent"), u(&s, "received"), u(&s, "lost"));
    assert_eq!(sent, 1000, "2 s at 2 ms: {s}");
    assert_eq!(received + lost, sent, "{s}");
    assert!(lost > 100, "the cut lost probes: {s}");
    assert!((f(&s, "outage_ms") - lost as f64 * 2.0).abs() < 1e-6, "outage_ms = lost × interval: {s}");

    let gaps = s["gaps"].as_array().expect("gaps");
    let long: Vec<_> = gaps.iter().filter(|g| g["ms"].as_f64().unwrap() >= 250.0).collect();
    assert_eq!(long.len(), 1, "exactly one long gap: {s}");
    let gap = long[0];
    let ms = gap["ms"].as_f64().unwrap();
    assert!((250.0..=1000.0).contains(&ms), "the gap lasts about the cut: {s}");
    assert_eq!(f(&s, "longest_gap_ms"), ms, "{s}");
    assert!(gap["lost"].as_u64().unwrap() > 100, "{s}");
    assert!(gap["lost"].as_u64().unwrap() <= lost, "{s}");
    let start = gap["start_s"].as_f64().unwrap();
    assert!((0.5..1.2).contains(&start), "the gap starts at the cut, ~0.7 s in: {s}");
    assert!(gap["start_unix"].as_f64().unwrap() > 1.6e9, "{s}");
}

#[test]
fn ipv6_at_1_ms_loses_nothing() {
    let lab = lab();
    let s = probe(&lab, &["--target", TARGET6, "--interval-ms", "1", "--count", "200"]);
    assert_no_loss(&s, 200);
    assert_eq!(s["target"], TARGET6, "{s}");
}

#[test]
fn udp_to_an_echo_server_loses_nothing() {
    let lab = lab();
    let _echo = lab.host("target").ns.spawn(&[
        "python3",
        "-c",
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.51.100.2', 7007)); s.settimeout(20)\n\
         while True:\n    d, a = s.recvfrom(65536); s.sendto(d, a)",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let s = probe(&lab, &["--target", TARGET4, "--udp", "7007", "--interval-ms", "2", "--count", "200"]);
    assert_no_loss(&s, 200);
    assert_eq!(s["mode"], "udp", "{s}");
}

#[test]
fn a_bad_target_is_an_error_not_a_panic() {
    let lab = lab();
    let bin = vipdrift_bin();
    for args in [
        vec!["--target", "not-an-address"],
        vec!["--target", TARGET4, "--interval-ms", "0.01"],
        vec!["--target", TARGET4, "--size", "4"],
    ] {
        let mut argv = vec![bin.as_str(), "probe", "--count", "3"];
        argv.extend_from_slice(&args);
        let out = lab.host("prober").ns.exec(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("vipdrift: "), "{args:?}: one clear line: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // An address with no route: the first send fails, the same way.
    let out = lab.host("prober").ns.exec(&[&bin, "probe", "--count", "3", "--target", "203.0.113.9"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
}
