//! A real service behind the VIP, failed over by vipdrift (`deliver =
//! "kernel"`, vmac mode) and by keepalived (its VIP on the interface), in the
//! same lab and the same run, at 10 ms adverts: python3's http.server on
//! both nodes, the client measuring new-connection dark time with `vipdrift
//! probe --tcp` (a connect every 2 ms) and reachability with the 2 ms echo
//! probe. The failures: A's link down, A's switch port down, kill -9 of every
//! daemon process, SIGSTOP for 5 s then SIGCONT, and a graceful stop.
//!
//! An observer on the switch (an address on the bridge, so the client's
//! neighbour table is never touched) asks who answers ARP for the VIP after
//! a kill -9 and during a freeze, and sends a SYN to A's own MAC.
//!
//!   sudo REPS=5 cargo bench -p vipdrift-tests --bench service_failover
//!
//! Needs root, keepalived, python3, curl and arping (`VIPDRIFT_BENCH_DEPS=1
//! bash tools/scripts/install-deps.sh`).

use std::collections::BTreeMap;
use std::time::Duration;
use vipdrift_tests::keepalived::Keepalived;
use vipdrift_tests::lab::{lab, probe, start_pair, Lab, HTTP_PORT, VIP4};
use vipdrift_tests::{json_summary, vipdrift_bin, Proc};

/// The observer's address on the switch's bridge.
const OBSERVER: &str = "198.51.100.250";
const PROBE_INTERVAL_MS: &str = "2";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    LinkDown,
    PortDown,
    Kill,
    Freeze,
    Graceful,
}

impl Failure {
    const ALL: [Failure; 5] = [Failure::LinkDown, Failure::PortDown, Failure::Kill, Failure::Freeze, Failure::Graceful];

    fn name(self) -> &'static str {
        match self {
            Failure::LinkDown => "A's link down",
            Failure::PortDown => "A's switch port down",
            Failure::Kill => "kill -9",
            Failure::Freeze => "SIGSTOP 5 s, SIGCONT",
            Failure::Graceful => "graceful stop",
        }
    }

    /// How long the probes run: one second before the failure, then long
    /// enough to see the service come back (or not).
    fn probe_seconds(self) -> f64 {
        match self {
            Failure::Freeze => 12.0,
            _ => 4.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Vipdrift,
    Keepalived,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Vipdrift => "vipdrift",
            Kind::Keepalived => "keepalived",
        }
    }
}

/// One run's figures.
#[derive(Clone, Debug, Default)]
struct Run {
    connects_failed: f64,
    /// Longest wait between two successful connects.
    tcp_gap_ms: f64,
    /// Echoes lost × 2 ms.
    echo_outage_ms: f64,
    /// Whether the last connects succeeded (the service came back within the probe).
    recovered: bool,
    /// Who answered ARP for the VIP (after a kill -9, during a freeze).
    arp_answers: Vec<String>,
    /// Whether a SYN to A's own MAC got an answer (after a kill -9, during a freeze).
    syn_to_a_answered: Option<bool>,
}

/// The lab with both services, and keepalived when it is the one failing over.
/// Fields drop in order: keepalived and the services stop before the lab's
/// namespaces go.
struct Pair {
    keepalived: Option<(Keepalived, Keepalived)>,
    _services: [Proc; 2],
    lab: Lab,
}

fn pair(kind: Kind) -> Pair {
    let mut lab = lab();
    let services = [lab.a.serve_http(), lab.b.serve_http()];
    let vip = format!("{VIP4}/24");
    let keepalived = match kind {
        Kind::Vipdrift => {
            start_pair(&mut lab, true, "vmac", &[&vip]);
            None
        }
        Kind::Keepalived => {
            let a = Keepalived::start(&lab.a.ns, &lab.a.dir, "a0", 200, &[&vip]);
            assert!(a.wait_state("MASTER"), "keepalived A became master: {}", a.state());
            let b = Keepalived::start(&lab.b.ns, &lab.b.dir, "b0", 100, &[&vip]);
            assert!(b.wait_state("BACKUP"), "keepalived B became backup: {}", b.state());
            std::thread::sleep(Duration::from_millis(300));
            Some((a, b))
        }
    };
    let switch = lab.switch();
    switch.exec_ok(&["ip", "addr", "add", &format!("{OBSERVER}/24"), "dev", "br0"]);
    Pair { lab, keepalived, _services: services }
}

impl Pair {
    fn fail(&mut self, failure: Failure) {
        let lab = &mut self.lab;
        match (failure, &self.keepalived) {
            (Failure::LinkDown, _) => {
                lab.a.ns.exec_ok(&["ip", "link", "set", "a0", "down"]);
            }
            (Failure::PortDown, _) => {
                lab.switch().exec_ok(&["ip", "link", "set", "pa", "down"]);
            }
            (Failure::Kill, None) => lab.a.kill(),
            (Failure::Kill, Some((a, _))) => a.signal_all(libc::SIGKILL),
            (Failure::Freeze, None) => lab.a.signal(libc::SIGSTOP),
            (Failure::Freeze, Some((a, _))) => a.signal_all(libc::SIGSTOP),
            (Failure::Graceful, None) => lab.a.signal(libc::SIGTERM),
            (Failure::Graceful, Some((a, _))) => a.signal(libc::SIGTERM),
        }
    }

    fn thaw(&self) {
        match &self.keepalived {
            None => self.lab.a.signal(libc::SIGCONT),
            Some((a, _)) => a.signal_all(libc::SIGCONT),
        }
    }

    /// The MACs that answer ARP for the VIP, as the observer sees them, named.
    fn arp_answers(&self) -> Vec<String> {
        let switch = self.lab.switch();
        let out = switch.exec(&["arping", "-c", "3", "-w", "2", "-I", "br0", "-s", OBSERVER, VIP4]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut macs: Vec<String> = text
            .lines()
            .filter_map(|l| Some(l.split('[').nth(1)?.split(']').next()?.to_ascii_lowercase()))
            .map(|mac| self.name_of(&mac))
            .collect();
        macs.sort();
        macs.dedup();
        macs
    }

    fn name_of(&self, mac: &str) -> String {
        if mac == self.lab.a.mac {
            "A".into()
        } else if mac == self.lab.b.mac {
            "B".into()
        } else {
            format!("{mac} (vMAC)")
        }
    }

    /// Whether a SYN to the VIP sent to A's own MAC is answered (the observer connects).
    fn syn_to_a_answered(&self) -> bool {
        let switch = self.lab.switch();
        switch.exec_ok(&["ip", "neigh", "replace", VIP4, "lladdr", self.lab.a.mac, "dev", "br0", "nud", "permanent"]);
        let url = format!("http://{VIP4}:{HTTP_PORT}/");
        let answered = switch.exec(&["curl", "-s", "-m", "1", "--interface", OBSERVER, &url]).status.success();
        switch.exec_ok(&["ip", "neigh", "del", VIP4, "dev", "br0"]);
        answered
    }
}

fn tcp_probe(lab: &Lab, seconds: f64) -> Proc {
    let bin = vipdrift_bin();
    let (port, seconds) = (HTTP_PORT.to_string(), seconds.to_string());
    let args = ["probe", "--target", VIP4, "--tcp", &port, "--interval-ms", PROBE_INTERVAL_MS, "--duration", &seconds];
    lab.client.spawn(&[&[bin.as_str()][..], &args[..], &["--json"][..]].concat())
}

fn number(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn measure(kind: Kind, failure: Failure) -> Run {
    let mut pair = pair(kind);
    let seconds = failure.probe_seconds();
    let echo = probe(&pair.lab, VIP4, seconds);
    let tcp = tcp_probe(&pair.lab, seconds);
    std::thread::sleep(Duration::from_secs(1));
    pair.fail(failure);
    let mut run = Run::default();
    if failure == Failure::Freeze {
        let frozen = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(2000));
        run.arp_answers = pair.arp_answers();
        run.syn_to_a_answered = Some(pair.syn_to_a_answered());
        std::thread::sleep(Duration::from_secs(5).saturating_sub(frozen.elapsed()));
        pair.thaw();
    }
    let out = tcp.wait(Duration::from_secs(60));
    let tcp = json_summary(&out);
    let out = echo.wait(Duration::from_secs(60));
    let echo = json_summary(&out);
    if failure == Failure::Kill {
        run.arp_answers = pair.arp_answers();
        run.syn_to_a_answered = Some(pair.syn_to_a_answered());
    }
    run.connects_failed = number(&tcp, "connects_failed");
    run.tcp_gap_ms = number(&tcp, "longest_gap_ms");
    run.echo_outage_ms = number(&echo, "outage_ms");
    // Recovered: no gap runs to the end of the probe.
    let end_ms = number(&tcp, "seconds") * 1e3;
    let gaps = tcp["gaps"].as_array().cloned().unwrap_or_default();
    run.recovered = !gaps.iter().any(|g| number(g, "start_s") * 1e3 + number(g, "ms") >= end_ms - 3.0 * 2.0 - 1.0);
    // The lab and keepalived (every process of it) go on drop.
    run
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes --bench; a filter names failures to run.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let reps: usize = std::env::var("REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    vipdrift_tests::require_root();
    let failures: Vec<Failure> = Failure::ALL
        .into_iter()
        .filter(|f| filter.is_empty() || filter.iter().any(|x| f.name().contains(x.as_str())))
        .collect();
    let mut runs: BTreeMap<(Failure, Kind), Vec<Run>> = BTreeMap::new();
    for rep in 0..reps {
        for &failure in &failures {
            // Alternate which goes first, so neither always runs on a warmer machine.
            let kinds =
                if rep % 2 == 0 { [Kind::Vipdrift, Kind::Keepalived] } else { [Kind::Keepalived, Kind::Vipdrift] };
            for kind in kinds {
                let run = measure(kind, failure);
                eprintln!(
                    "run {}/{reps} {:<22} {:<10} connects failed {:>4}, longest gap {:>8.1} ms, echo outage {:>8.1} ms{}{}",
                    rep + 1,
                    failure.name(),
                    kind.name(),
                    run.connects_failed,
                    run.tcp_gap_ms,
                    run.echo_outage_ms,
                    if run.recovered { "" } else { ", NOT recovered by the end" },
                    match run.syn_to_a_answered {
                        Some(answered) => format!(
                            "; ARP for the VIP answered by {:?}; SYN to A's MAC {}",
                            run.arp_answers,
                            if answered { "answered" } else { "unanswered" }
                        ),
                        None => String::new(),
                    }
                );
                runs.entry((failure, kind)).or_default().push(run);
            }
        }
    }
    println!(
        "\nMedians of {reps} runs (new-connection dark time: longest wait between successful connects, one every 2 ms;"
    );
    println!("echo: replies lost x 2 ms):\n");
    println!("| failure | vipdrift: TCP gap ms | keepalived: TCP gap ms | ratio | vipdrift: echo ms | keepalived: echo ms | ratio | recovered (vd/ka) |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for &failure in &failures {
        let get = |kind| runs.get(&(failure, kind)).cloned().unwrap_or_default();
        let (ours, theirs) = (get(Kind::Vipdrift), get(Kind::Keepalived));
        let tcp = |runs: &[Run]| median(runs.iter().map(|r| r.tcp_gap_ms).collect());
        let echo = |runs: &[Run]| median(runs.iter().map(|r| r.echo_outage_ms).collect());
        let recovered = |runs: &[Run]| runs.iter().filter(|r| r.recovered).count();
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} | {}/{} of {} |",
            failure.name(),
            tcp(&ours),
            tcp(&theirs),
            tcp(&ours) / tcp(&theirs),
            echo(&ours),
            echo(&theirs),
            echo(&ours) / echo(&theirs),
            recovered(&ours),
            recovered(&theirs),
            ours.len()
        );
    }
    println!();
    for &failure in &[Failure::Kill, Failure::Freeze] {
        for kind in [Kind::Vipdrift, Kind::Keepalived] {
            let Some(runs) = runs.get(&(failure, kind)) else { continue };
            let answers: Vec<String> = runs.iter().map(|r| format!("{:?}", r.arp_answers)).collect();
            let syns = runs.iter().filter(|r| r.syn_to_a_answered == Some(true)).count();
            println!(
                "{} / {}: ARP for the VIP answered by {}; a SYN to A's own MAC answered in {syns} of {} runs",
                failure.name(),
                kind.name(),
                answers.join(", "),
                runs.len()
            );
        }
    }
}
