//! Failover end to end: a client and two `vipdrift run` nodes on a bridge,
//! the client probing the VIP every 2 ms with `vipdrift probe`. The master
//! is killed, loses its link, stops gracefully, or is cut off from its peer
//! (split brain); the backup takes over and the client's traffic resumes
//! without the client doing anything. Outages are printed (figures for the
//! notes, never asserted against a time budget).

use std::time::{Duration, Instant};
use vipdrift_tests::lab::{
    assert_resumed, finish_probe, lab, neighbour_mac, probe, start_pair, VIP4, VIP6, VMAC4, VMAC6,
};
use vipdrift_tests::{has_xdp_program, vipdrift_bin, wait_until};

#[test]
fn a_killed_master_is_replaced_and_clients_follow_the_virtual_mac() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&format!("{VIP4}/24"), &format!("{VIP6}/64")]);
    let probe4 = probe(&lab, VIP4, 3.0);
    let probe6 = probe(&lab, VIP6, 3.0);
    std::thread::sleep(Duration::from_millis(1000));
    let killed = Instant::now();
    lab.a.kill();
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "B did not take over: {:?}", lab.b.transitions());
    println!("kill -9: B master {:.1} ms after the kill (as seen by polling)", killed.elapsed().as_secs_f64() * 1e3);
    let v4 = finish_probe(probe4, "kill -9, IPv4, vmac");
    let v6 = finish_probe(probe6, "kill -9, IPv6, vmac");
    assert_resumed(&v4, "IPv4");
    assert_resumed(&v6, "IPv6");
    assert!(lab.b.transitions().iter().any(|l| l.ends_with("backup master master_down")), "{:?}", lab.b.transitions());
    assert_eq!(neighbour_mac(&lab, VIP4), VMAC4, "the client's entry holds the IPv4 virtual MAC");
    assert_eq!(neighbour_mac(&lab, VIP6), VMAC6, "and the IPv6 one");
    // The bridge learned the vMAC on B's port from B's GARP / adverts.
    let fdb = lab.switch().exec_ok(&["bridge", "fdb", "show", "br", "br0"]);
    let fdb = String::from_utf8_lossy(&fdb.stdout);
    assert!(fdb.lines().any(|l| l.starts_with(VMAC4) && l.contains("dev pb")), "bridge fdb: {fdb}");

    // The VIP is kernel-delivered (`vipdrift run`'s default): B's kernel
    // answered the probes, passed by B's steering program.
    let stats = lab.b.admin(r#"{"v":1,"cmd":"stats"}"#);
    let to_kernel = stats["result"]["interfaces"][0]["steering"]["to_kernel"].as_u64().unwrap();
    assert!(to_kernel > 0, "B's kernel answered the probes: {stats}");
    let (summary, _) = lab.b.stop();
    let group = &summary["groups"][0];
    assert!(group["garps_sent"].as_u64().unwrap() >= 5, "a GARP burst: {summary}");
    assert_eq!(summary["queues"][0]["frames_leaked"], 0, "{summary}");
}

#[test]
fn a_master_that_loses_its_link_faults_and_with_preempt_takes_back_over_when_it_returns() {
    let mut lab = lab();
    start_pair(&mut lab, true, "own_mac", &[&format!("{VIP4}/24")]);
    let probe4 = probe(&lab, VIP4, 4.0);
    std::thread::sleep(Duration::from_millis(800));
    lab.switch().exec_ok(&["ip", "link", "set", "pa", "down"]);
    assert!(lab.a.wait_state("fault", Duration::from_secs(5)), "A did not fault: {:?}", lab.a.transitions());
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "B did not take over: {:?}", lab.b.transitions());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(neighbour_mac(&lab, VIP4), lab.b.mac, "own_mac: the client learned B's MAC from its GARP");
    lab.switch().exec_ok(&["ip", "link", "set", "pa", "up"]);
    assert!(lab.a.wait_state("master", Duration::from_secs(5)), "A did not preempt: {:?}", lab.a.transitions());
    assert!(lab.b.wait_state("backup", Duration::from_secs(5)), "B did not yield: {:?}", lab.b.transitions());
    let outage = finish_probe(probe4, "link down then back, own_mac, preempt");
    assert_resumed(&outage, "link");
    assert_eq!(neighbour_mac(&lab, VIP4), lab.a.mac, "A's GARP moved the client back");
    let a = lab.a.transitions();
    assert!(a.iter().any(|l| l.ends_with("master fault link_down")), "{a:?}");
    assert!(a.iter().any(|l| l.ends_with("fault backup link_up")), "{a:?}");
}

#[test]
fn without_preempt_a_returning_master_stays_backup() {
    let mut lab = lab();
    start_pair(&mut lab, false, "vmac", &[&format!("{VIP4}/24")]);
    lab.switch().exec_ok(&["ip", "link", "set", "pa", "down"]);
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "B did not take over: {:?}", lab.b.transitions());
    lab.switch().exec_ok(&["ip", "link", "set", "pa", "up"]);
    assert!(lab.a.wait_state("backup", Duration::from_secs(5)), "A did not come back: {:?}", lab.a.transitions());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.a.state(), "backup", "nopreempt: A stays backup: {:?}", lab.a.transitions());
    assert_eq!(lab.b.state(), "master", "{:?}", lab.b.transitions());
    let probe4 = probe(&lab, VIP4, 0.5);
    assert_eq!(finish_probe(probe4, "after nopreempt return").lost, 0, "B serves the VIP");
}

#[test]
fn a_graceful_stop_hands_over_after_skew_time() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&format!("{VIP4}/24")]);
    let probe4 = probe(&lab, VIP4, 2.0);
    std::thread::sleep(Duration::from_millis(800));
    let (summary, stderr) = lab.a.stop();
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "B did not take over: {:?}", lab.b.transitions());
    let outage = finish_probe(probe4, "graceful stop (priority 0), vmac");
    // A keeps answering until B's first advert as master, and B's GARP is
    // not answered (that would pull the traffic back to A): nothing is lost
    // but a request caught in flight at the very switch-over.
    assert!(outage.lost <= 1, "a graceful handover loses nothing: lost {} of {}", outage.lost, outage.sent);
    assert!(stderr.contains("\"to\":\"initialize\""), "A logged its shutdown: {stderr}");
    assert_eq!(summary["queues"][0]["frames_leaked"], 0, "{summary}");
    assert!(!has_xdp_program(&lab.a.ns, "a0"), "A detached its program on exit");
    // B's takeover line says how long after the priority-0 advert it came:
    // the skew time for priority 100 at 10 ms (6.1 ms), not the 36 ms
    // master-down interval.
    let (_, b_stderr) = lab.b.stop();
    let takeover: serde_json::Value = b_stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "transition" && v["to"] == "master")
        .expect("B logged its takeover as JSON");
    let elapsed = takeover["elapsed_ms"].as_f64().unwrap();
    println!("graceful stop: B master {elapsed:.1} ms after the last (priority-0) advert");
    assert!(elapsed < 30.0, "taken over on the priority-0 advert, not the master-down timer: {takeover}");
}

#[test]
fn a_healed_split_brain_leaves_one_master_which_announces_again() {
    let mut lab = lab();
    start_pair(&mut lab, true, "own_mac", &[&format!("{VIP4}/24")]);
    // Isolated bridge ports cannot talk to each other, only to the client's.
    for port in ["pa", "pb"] {
        lab.switch().exec_ok(&["bridge", "link", "set", "dev", port, "isolated", "on"]);
    }
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "B never saw A go quiet: {:?}", lab.b.transitions());
    assert_eq!(lab.a.state(), "master", "both are master while partitioned");
    std::thread::sleep(Duration::from_millis(300));
    // Both GARPed; the client holds whichever it heard last. Make it B's so
    // the heal has something to correct.
    lab.client.exec_ok(&["ip", "neigh", "replace", VIP4, "lladdr", lab.b.mac, "dev", "c0", "nud", "reachable"]);
    for port in ["pa", "pb"] {
        lab.switch().exec_ok(&["bridge", "link", "set", "dev", port, "isolated", "off"]);
    }
    assert!(lab.b.wait_state("backup", Duration::from_secs(5)), "B did not yield: {:?}", lab.b.transitions());
    assert!(
        wait_until(Duration::from_secs(3), || neighbour_mac(&lab, VIP4) == lab.a.mac),
        "the winner announced again and the client follows it: {}",
        neighbour_mac(&lab, VIP4)
    );
    assert_eq!(lab.a.state(), "master");
    let (a, _) = lab.a.stop();
    let (b, _) = lab.b.stop();
    assert!(a["groups"][0]["split_brains"].as_u64().unwrap() >= 1, "the winner counted it: {a}");
    assert!(b["groups"][0]["split_brains"].as_u64().unwrap() >= 1, "the loser counted it: {b}");
}

#[test]
fn a_bad_configuration_is_refused_with_its_file_line_and_key_and_nothing_starts() {
    let lab = lab();
    lab.a.configure(200, true, "vmac", &[&format!("{VIP4}/24")]);
    let path = lab.a.config_path();
    let text = std::fs::read_to_string(&path).unwrap().replace("vrid = 51", "vrid = 300");
    std::fs::write(&path, text).unwrap();
    let out = lab.a.ns.exec(&[&vipdrift_bin(), "run", "--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = format!("{}:13: group[0].vrid: 300 is out of range", path.display());
    assert!(stderr.contains(&expected) && stderr.contains("1..=255"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!has_xdp_program(&lab.a.ns, "a0"), "nothing was attached");
}
