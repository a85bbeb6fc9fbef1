//! Interop: one `vipdrift run` node (A, priority 200) and one keepalived
//! node (B, priority 100, Debian's keepalived speaking VRRPv3) in the same
//! VRID on a bridge, with a client probing the VIP. Ownership moves both
//! ways: vipdrift preempts keepalived, keepalived takes over from a killed
//! vipdrift and from one that stops gracefully (priority 0). keepalived must
//! accept every advert vipdrift sends, and vipdrift must accept keepalived's.

use std::time::Duration;
use vipdrift_tests::keepalived::Keepalived;
use vipdrift_tests::lab::{finish_probe, lab, neighbour_mac, probe, Lab, VIP4};

/// Lines in which keepalived complains about a packet it received.
fn complaints(log: &str) -> Vec<&str> {
    const WORDS: [&str; 9] =
        ["invalid", "bogus", "checksum", "ttl", "mismatch", "not present", "discard", "wrong", "malformed"];
    log.lines().filter(|l| WORDS.iter().any(|w| l.to_ascii_lowercase().contains(w))).collect()
}

fn start_a(lab: &mut Lab) {
    lab.a.start();
    assert!(
        lab.a.wait_state("master", Duration::from_secs(10)),
        "vipdrift never became master: {:?}",
        lab.a.transitions()
    );
}

#[test]
fn vipdrift_and_keepalived_hand_the_vip_to_each_other_in_both_directions() {
    let mut lab = lab();
    lab.a.configure(200, true, "own_mac", &[&format!("{VIP4}/24")]);
    let mut keepalived = Keepalived::start(&lab.b.ns, &lab.b.dir, "b0", 100, &[&format!("{VIP4}/24")]);
    assert!(keepalived.wait_state("MASTER"), "keepalived alone became master: {:?}", keepalived.state());

    // keepalived -> vipdrift: the higher priority preempts.
    start_a(&mut lab);
    assert!(keepalived.wait_state("BACKUP"), "keepalived yielded to vipdrift: {}", keepalived.state());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.a.state(), "master", "{:?}", lab.a.transitions());
    assert_eq!(keepalived.state(), "BACKUP", "keepalived stays backup under vipdrift's adverts");
    let steady = finish_probe(probe(&lab, VIP4, 0.5), "interop: vipdrift master");
    assert_eq!(steady.lost, 0);
    assert_eq!(neighbour_mac(&lab, VIP4), lab.a.mac);

    // vipdrift -> keepalived: kill -9.
    let running = probe(&lab, VIP4, 2.0);
    std::thread::sleep(Duration::from_millis(700));
    lab.a.kill();
    assert!(keepalived.wait_state("MASTER"), "keepalived took over from a killed vipdrift");
    let outage = finish_probe(running, "interop: kill -9 vipdrift, keepalived takes over");
    assert!(
        outage.lost * 2 < outage.sent,
        "traffic resumed through keepalived: lost {} of {}",
        outage.lost,
        outage.sent
    );
    assert_eq!(neighbour_mac(&lab, VIP4), lab.b.mac, "keepalived's GARP moved the client");

    // keepalived -> vipdrift again, then a graceful stop: keepalived honours priority 0.
    start_a(&mut lab);
    assert!(keepalived.wait_state("BACKUP"), "keepalived yielded again");
    std::thread::sleep(Duration::from_millis(300));
    let running = probe(&lab, VIP4, 2.0);
    std::thread::sleep(Duration::from_millis(700));
    let (summary, _) = lab.a.stop();
    assert!(keepalived.wait_state("MASTER"), "keepalived took over after vipdrift's priority-0 advert");
    let outage = finish_probe(running, "interop: vipdrift stops gracefully, keepalived takes over");
    assert!(outage.lost * 2 < outage.sent, "lost {} of {}", outage.lost, outage.sent);

    let group = &summary["groups"][0];
    assert_eq!(group["malformed"], 0, "vipdrift accepted every keepalived advert: {summary}");
    assert!(group["adverts_received"].as_u64().unwrap() > 0, "{summary}");
    assert!(
        group["pseudo_header_checksums"].as_u64().unwrap() > 0,
        "keepalived sends the pseudo-header form: {summary}"
    );
    let log = keepalived.stop();
    let complaints = complaints(&log);
    assert!(complaints.is_empty(), "keepalived complained about received packets:\n{}", complaints.join("\n"));
    assert!(log.contains("Entering MASTER STATE"), "the log is keepalived's: {log}");
}
