//! Interop: one `vipdrift run` node (A, priority 200) and one keepalived
//! node (B, priority 100, Debian's keepalived speaking VRRPv3) in the same
//! VRID on a bridge, with a client probing the VIP. Ownership moves both
//! ways: vipdrift preempts keepalived, keepalived takes over from a killed
//! vipdrift and from one that stops gracefully (priority 0). keepalived must
//! accept every advert vipdrift sends, and vipdrift must accept keepalived's.

use std::path::PathBuf;
use std::time::Duration;
use vipdrift_tests::lab::{finish_probe, lab, neighbour_mac, probe, Lab, VIP4};
use vipdrift_tests::{wait_until, write_script, NetNs, Proc};

/// keepalived in node B's namespace, logging to the console, with its own
/// pid files, and a notify hook that appends "INSTANCE NAME STATE PRIO".
struct Keepalived {
    proc: Option<Proc>,
    log: PathBuf,
}

impl Keepalived {
    fn start(ns: &NetNs, dir: &std::path::Path) -> Keepalived {
        let log = dir.join("keepalived.transitions");
        let hook = dir.join("keepalived.notify.sh");
        write_script(&hook, &format!("echo \"$@\" >> {}", log.display()));
        let config = dir.join("keepalived.conf");
        std::fs::write(
            &config,
            format!(
                r#"global_defs {{
    router_id vd-b
    script_user root
    vrrp_version 3
}}
vrrp_instance VI_51 {{
    state BACKUP
    interface b0
    virtual_router_id 51
    priority 100
    advert_int 0.01
    virtual_ipaddress {{
        {VIP4}/24
    }}
    notify "{hook}"
}}
"#,
                hook = hook.display()
            ),
        )
        .unwrap();
        let pid = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let (main_pid, vrrp_pid, checkers_pid) = (pid("k.pid"), pid("k-vrrp.pid"), pid("k-check.pid"));
        let proc = ns.spawn(&[
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--vrrp",
            "--use-file",
            config.to_str().unwrap(),
            "--pid",
            &main_pid,
            "--vrrp_pid",
            &vrrp_pid,
            "--checkers_pid",
            &checkers_pid,
        ]);
        Keepalived { proc: Some(proc), log }
    }

    /// The state of the last notify line (MASTER, BACKUP, FAULT, STOP).
    fn state(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().last().and_then(|l| l.split_whitespace().nth(2).map(str::to_owned)).unwrap_or_default()
    }

    fn wait_state(&self, state: &str) -> bool {
        wait_until(Duration::from_secs(5), || self.state() == state)
    }

    /// SIGTERM; returns everything it logged.
    fn stop(&mut self) -> String {
        let proc = self.proc.take().expect("running");
        proc.signal(libc::SIGTERM);
        let out = proc.wait(Duration::from_secs(10));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

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
    let mut keepalived = Keepalived::start(&lab.b.ns, &lab.b.dir);
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
