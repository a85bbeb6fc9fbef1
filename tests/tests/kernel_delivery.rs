//! Kernel delivery end to end: a real HTTP service in each node's kernel
//! behind the VIP, real curl from the client, `vipdrift run` with its
//! default `deliver = "kernel"`, and the failures that must not leave a
//! stale owner: kill -9 and SIGSTOP, checked with frames sent to the old
//! master's own MAC and with captures on the switch. Also who owns the
//! NIC: a second vipdrift on it refuses, and a daemon whose steering
//! program was replaced goes to fault instead of advertising deaf.

use std::time::{Duration, Instant};
use vipdrift_tests::lab::{lab, start_pair, Lab, Node, HTTP_PORT, VIP4, VIP6, VMAC4, VMAC6};
use vipdrift_tests::{has_xdp_program, json_summary, vipdrift_bin, NetNs, Proc};

const STATS: &str = r#"{"v":1,"cmd":"stats"}"#;

fn url(ip: &str) -> String {
    if ip.contains(':') {
        format!("http://[{ip}]:{HTTP_PORT}/")
    } else {
        format!("http://{ip}:{HTTP_PORT}/")
    }
}

/// curl from the client; the page, or `None` when no answer came within `seconds`.
fn fetch(lab: &Lab, ip: &str, seconds: f64) -> Option<String> {
    let timeout = seconds.to_string();
    let out = lab.client.exec(&["curl", "-s", "-g", "-m", &timeout, &url(ip)]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Makes the client send to `ip` at `mac`, whatever ARP or NDP say.
fn pin_neighbour(lab: &Lab, ip: &str, mac: &str) {
    lab.client.exec_ok(&["ip", "neigh", "replace", ip, "lladdr", mac, "dev", "c0", "nud", "permanent"]);
}

/// Lets the client resolve `ip` again.
fn unpin_neighbour(lab: &Lab, ip: &str) {
    lab.client.exec_ok(&["ip", "neigh", "del", ip, "dev", "c0"]);
}

/// A node's steering counts: (to_kernel, not_owned, lease_expired).
fn steering(node: &Node) -> (u64, u64, u64) {
    let stats = node.admin(STATS);
    let counts = &stats["result"]["interfaces"][0]["steering"];
    let n = |key: &str| counts[key].as_u64().unwrap_or_else(|| panic!("no {key} in {stats}"));
    (n("to_kernel"), n("not_owned"), n("lease_expired"))
}

/// tcpdump on a switch port, printing one line per frame with its time.
struct Capture {
    tcpdump: Proc,
}

impl Capture {
    fn start(switch: &NetNs, port: &str, filter: &str) -> Capture {
        let tcpdump = switch.spawn(&["tcpdump", "-i", port, "-n", "-e", "-tt", "-l", "--immediate-mode", filter]);
        // tcpdump needs a moment to open its socket.
        std::thread::sleep(Duration::from_millis(500));
        Capture { tcpdump }
    }

    /// Stops the capture; its lines, each with the capture time first.
    fn finish(self) -> Vec<(f64, String)> {
        self.tcpdump.signal(libc::SIGINT);
        let out = self.tcpdump.wait(Duration::from_secs(10));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok().map(|t| (t, l.to_owned())))
            .collect()
    }
}

/// A capture filter for the SYN-ACKs a kernel sends from `vip`: its answers to new connections.
fn syn_acks_from(vip: &str) -> String {
    format!("tcp and src host {vip} and tcp[tcpflags] & tcp-syn != 0")
}

/// The time of each connection's first SYN-ACK (a kernel retransmits its
/// SYN-ACKs on its own, frozen daemon or not: those are not new deliveries).
fn first_answers(lines: Vec<(f64, String)>) -> Vec<f64> {
    let mut seen = std::collections::HashSet::new();
    lines
        .into_iter()
        .filter(|(_, line)| {
            // "TIME SRC_MAC > DST_MAC, ...: VIP.8080 > CLIENT.PORT: Flags [S.], ..."
            let client = line.rsplit(" > ").next().and_then(|rest| rest.split(':').next()).unwrap_or_default();
            seen.insert(client.to_owned())
        })
        .map(|(t, _)| t)
        .collect()
}

/// The TCP prober from the client against the VIP's service.
fn tcp_probe(lab: &Lab, seconds: f64) -> Proc {
    let bin = vipdrift_bin();
    let port = HTTP_PORT.to_string();
    let seconds = seconds.to_string();
    let args = ["--target", VIP4, "--tcp", &port, "--interval-ms", "5", "--duration", &seconds, "--json"];
    lab.client.spawn(&[&[bin.as_str(), "probe"][..], &args[..]].concat())
}

fn finish_tcp_probe(probe: Proc, what: &str) -> serde_json::Value {
    let out = probe.wait(Duration::from_secs(30));
    assert!(out.status.success(), "probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let s = json_summary(&out);
    println!(
        "{what}: connects attempted {} failed {} (refused {}, timed out {}), longest gap between connects {} ms",
        s["connects_attempted"], s["connects_failed"], s["refused"], s["timed_out"], s["longest_gap_ms"]
    );
    for gap in s["gaps"].as_array().into_iter().flatten() {
        println!("  gap at {} s: {} ms, {} failed", gap["start_s"], gap["ms"], gap["lost"]);
    }
    s
}

/// A alone, master of VIP4 in vmac mode, with its HTTP service.
fn a_alone_serving(lab: &mut Lab) -> Proc {
    lab.a.configure(200, true, "vmac", &[&format!("{VIP4}/24")]);
    lab.a.start();
    assert!(lab.a.wait_state("master", Duration::from_secs(10)), "{:?}", lab.a.transitions());
    lab.a.serve_http()
}

/// The master's kernel serves the VIP in `mode` for both families; the
/// backup's never does; after a takeover the new master's service answers.
fn served_by_the_master_then_by_the_new_master(mode: &str) {
    let mut lab = lab();
    start_pair(&mut lab, true, mode, &[&format!("{VIP4}/24"), &format!("{VIP6}/64")]);
    let _a_http = lab.a.serve_http();
    let _b_http = lab.b.serve_http();
    for vip in [VIP4, VIP6] {
        assert_eq!(fetch(&lab, vip, 2.0).as_deref(), Some("served by a0"), "{mode}: the master's kernel serves {vip}");
    }
    assert!(lab.a.loopback_addresses().contains(&format!("{VIP4}/32")), "{:?}", lab.a.loopback_addresses());
    assert!(lab.a.loopback_addresses().contains(&format!("{VIP6}/128")), "{:?}", lab.a.loopback_addresses());

    // What the kernel's replies carry, and what the client and the switch learn from them.
    let capture = Capture::start(lab.switch(), "pa", &format!("tcp and src host {VIP4}"));
    for _ in 0..5 {
        assert!(fetch(&lab, VIP4, 2.0).is_some());
    }
    let replies = capture.finish();
    assert!(!replies.is_empty(), "the capture saw A's replies");
    assert!(
        replies.iter().all(|(_, l)| l.contains(&format!("{} >", lab.a.mac))),
        "the kernel's replies leave from the NIC's own MAC: {replies:?}"
    );
    let expected = if mode == "vmac" { VMAC4 } else { lab.a.mac };
    assert_eq!(lab.client.neighbour_mac(VIP4, "c0"), expected, "{mode}: the client's entry stays put under traffic");
    if mode == "vmac" {
        assert_eq!(lab.client.neighbour_mac(VIP6, "c0"), VMAC6);
        let fdb = lab.switch().exec_ok(&["bridge", "fdb", "show", "br", "br0"]);
        let fdb = String::from_utf8_lossy(&fdb.stdout);
        assert!(fdb.lines().any(|l| l.starts_with(VMAC4) && l.contains("dev pa")), "vMAC on A's port: {fdb}");
        assert!(fdb.lines().any(|l| l.starts_with(lab.a.mac) && l.contains("dev pa")), "A's MAC too: {fdb}");
    }

    // The node's own address still goes to its kernel.
    let own = lab.client.exec(&["curl", "-s", "-m", "2", &url(lab.a.address)]);
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), "served by a0", "the node's own address");

    // A frame for the VIP sent straight to the backup is dropped and counted, never served.
    let (_, not_owned_before, _) = steering(&lab.b);
    pin_neighbour(&lab, VIP4, lab.b.mac);
    assert_eq!(fetch(&lab, VIP4, 1.0), None, "{mode}: the backup's kernel never answers for the VIP");
    unpin_neighbour(&lab, VIP4);
    let (b_to_kernel, not_owned_after, _) = steering(&lab.b);
    assert_eq!(b_to_kernel, 0, "nothing for the VIP reached B's kernel");
    assert!(
        not_owned_after > not_owned_before,
        "B counted the SYNs not_owned: {not_owned_before} -> {not_owned_after}"
    );
    let (a_to_kernel, _, _) = steering(&lab.a);
    assert!(a_to_kernel > 0, "A passed the VIP's traffic to its kernel");

    lab.a.kill();
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "{:?}", lab.b.transitions());
    for vip in [VIP4, VIP6] {
        let served = vipdrift_tests::wait_until(Duration::from_secs(5), || {
            fetch(&lab, vip, 1.0).as_deref() == Some("served by b0")
        });
        assert!(served, "{mode}: after the takeover B's kernel serves {vip}");
    }
    lab.b.stop();
    assert_eq!(lab.b.loopback_addresses(), Vec::<String>::new(), "a clean stop leaves nothing on lo");
}

#[test]
fn in_vmac_mode_the_masters_kernel_serves_the_vip_then_the_new_masters() {
    served_by_the_master_then_by_the_new_master("vmac");
}

#[test]
fn in_own_mac_mode_the_masters_kernel_serves_the_vip_then_the_new_masters() {
    served_by_the_master_then_by_the_new_master("own_mac");
}

#[test]
fn a_killed_master_stops_accepting_the_vip_within_its_lease_and_a_restart_reconciles_lo() {
    let mut lab = lab();
    let _a_http = a_alone_serving(&mut lab);
    assert_eq!(fetch(&lab, VIP4, 2.0).as_deref(), Some("served by a0"));

    let capture = Capture::start(lab.switch(), "pa", &syn_acks_from(VIP4));
    let killed = Instant::now();
    lab.a.kill();
    let killed_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // What kill -9 leaves: the VIP on lo and the program on the NIC; the lease is what shuts the door.
    assert_eq!(lab.a.loopback_addresses(), vec![format!("{VIP4}/32")]);
    assert!(has_xdp_program(&lab.a.ns, lab.a.name), "the steering program stays attached");
    std::thread::sleep(Duration::from_millis(100).saturating_sub(killed.elapsed()));
    assert_eq!(fetch(&lab, VIP4, 1.0), None, "sent to the virtual MAC, the SYN gets no answer");
    pin_neighbour(&lab, VIP4, lab.a.mac);
    assert_eq!(fetch(&lab, VIP4, 1.0), None, "sent to A's own MAC, no answer either");
    unpin_neighbour(&lab, VIP4);
    let late: Vec<_> = capture.finish().into_iter().filter(|(t, _)| *t > killed_unix).collect();
    assert!(late.is_empty(), "A's kernel answered for the VIP after the kill: {late:?}");

    // The restart finds the VIP on lo and keeps it: no duplicate.
    lab.a.start();
    assert!(lab.a.wait_state("master", Duration::from_secs(10)), "{:?}", lab.a.transitions());
    assert_eq!(lab.a.loopback_addresses(), vec![format!("{VIP4}/32")], "exactly one VIP on lo after the restart");
    assert_eq!(fetch(&lab, VIP4, 2.0).as_deref(), Some("served by a0"), "served again");
    let (_, stderr) = lab.a.stop();
    let kept = stderr.lines().any(|l| l.contains("kept") && l.contains("[198.51.100.100]") && l.contains("on lo"));
    assert!(kept, "the restart kept the VIP it found: {stderr}");
    assert_eq!(lab.a.loopback_addresses(), Vec::<String>::new(), "nothing left on lo after the clean stop");
    assert!(!has_xdp_program(&lab.a.ns, lab.a.name), "and no program on the NIC");
    assert_eq!(fetch(&lab, VIP4, 1.0), None, "nobody serves the VIP now");
}

#[test]
fn a_frozen_master_stops_delivering_and_after_sigcont_the_two_never_deliver_at_once() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&format!("{VIP4}/24")]);
    let _a_http = lab.a.serve_http();
    let _b_http = lab.b.serve_http();
    let filter = syn_acks_from(VIP4);
    let on_a = Capture::start(lab.switch(), "pa", &filter);
    let on_b = Capture::start(lab.switch(), "pb", &filter);

    let probe = tcp_probe(&lab, 2.0);
    std::thread::sleep(Duration::from_millis(500));
    lab.a.signal(libc::SIGSTOP);
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "{:?}", lab.b.transitions());
    let frozen = finish_tcp_probe(probe, "SIGSTOP of the master");
    assert!(frozen["connects_succeeded"].as_u64().unwrap() > 100, "served before and after: {frozen}");

    // Still frozen: its kernel takes nothing for the VIP, whatever MAC the SYN carries.
    pin_neighbour(&lab, VIP4, lab.a.mac);
    assert_eq!(fetch(&lab, VIP4, 1.0), None, "a frozen master's kernel never answers for the VIP");
    unpin_neighbour(&lab, VIP4);
    assert_eq!(fetch(&lab, VIP4, 2.0).as_deref(), Some("served by b0"), "B serves meanwhile");

    let probe = tcp_probe(&lab, 2.0);
    std::thread::sleep(Duration::from_millis(300));
    lab.a.signal(libc::SIGCONT);
    let resumed = finish_tcp_probe(probe, "SIGCONT, A takes back over (preempt)");
    assert!(lab.a.wait_state("master", Duration::from_secs(5)), "{:?}", lab.a.transitions());
    assert!(
        lab.a.transitions().iter().any(|l| l.ends_with("master backup stalled")),
        "A stepped down when it woke: {:?}",
        lab.a.transitions()
    );
    let stats = lab.a.admin(STATS);
    let stalls = stats["result"]["control"]["control_stalls"].as_u64().unwrap()
        + stats["result"]["interfaces"][0]["lease_stalls"].as_u64().unwrap();
    assert!(stalls >= 1, "A counted its stall: {stats}");
    assert!(resumed["connects_succeeded"].as_u64().unwrap() > 100, "{resumed}");

    // The capture: the VIP's answers to new connections left through A's
    // port, then B's, then A's again; never both in turn.
    let mut replies: Vec<(f64, char)> = first_answers(on_a.finish()).into_iter().map(|t| (t, 'A')).collect();
    replies.extend(first_answers(on_b.finish()).into_iter().map(|t| (t, 'B')));
    replies.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut runs: Vec<(char, f64, f64, usize)> = Vec::new();
    for (t, node) in replies {
        match runs.last_mut() {
            Some(run) if run.0 == node => {
                run.2 = t;
                run.3 += 1;
            }
            _ => runs.push((node, t, t, 1)),
        }
    }
    for (node, first, last, n) in &runs {
        println!("capture: {n} replies from {node} between {first:.6} and {last:.6}");
    }
    let order: String = runs.iter().map(|r| r.0).collect();
    assert_eq!(order, "ABA", "one node delivered at a time: {runs:?}");
}

fn prog_id(node: &Node) -> String {
    let out = node.ns.exec_ok(&["ip", "-d", "link", "show", "dev", node.name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().skip_while(|w| *w != "id").nth(1).unwrap_or_default().to_owned()
}

/// `Steering::attach` replaced whatever program the NIC ran, so even a
/// second `vipdrift serve` that then failed detached a live daemon's program
/// while the daemon went on advertising, deaf. Now each NIC is locked by its
/// first owner and a second one refuses before touching anything.
#[test]
fn a_second_vipdrift_on_a_daemons_nic_refuses_and_touches_nothing() {
    let mut lab = lab();
    let _a_http = a_alone_serving(&mut lab);
    let before = prog_id(&lab.a);
    let bin = vipdrift_bin();
    let out = lab.a.ns.exec(&[&bin, "serve", "--iface", "a0", "--vip", "198.51.100.100/24", "--duration", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in use by another vipdrift (pid"), "names the owner: {stderr}");
    // fwd and gen bring libxdp's program: they refuse too.
    let out = lab.a.ns.exec(&[&bin, "fwd", "--iface", "a0", "--mode", "drop", "--duration", "1"]);
    let fwd_stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{fwd_stderr}");
    assert!(fwd_stderr.contains("in use by another vipdrift (pid"), "{fwd_stderr}");
    assert_eq!(prog_id(&lab.a), before, "the daemon's program is still the one attached");
    assert_eq!(lab.a.state(), "master");
    assert_eq!(fetch(&lab, VIP4, 2.0).as_deref(), Some("served by a0"), "and it still serves");
    let (_, stderr) = lab.a.stop();
    assert!(!stderr.contains("program_replaced"), "{stderr}");
}

/// A daemon whose program another tool replaced kept advertising while it
/// heard nothing. Now the group goes to fault (`program_replaced`) at the
/// next link check and the backup takes over.
#[test]
fn a_daemon_whose_program_was_replaced_faults_and_the_backup_takes_over() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&format!("{VIP4}/24")]);
    let _a_http = lab.a.serve_http();
    let _b_http = lab.b.serve_http();
    for mode in ["xdp", "xdpgeneric"] {
        lab.a.ns.exec(&["ip", "link", "set", "dev", "a0", mode, "off"]);
    }
    assert!(lab.a.wait_state("fault", Duration::from_secs(5)), "{:?}", lab.a.transitions());
    assert!(
        lab.a.transitions().last().is_some_and(|l| l.ends_with("master fault program_replaced")),
        "{:?}",
        lab.a.transitions()
    );
    assert!(lab.b.wait_state("master", Duration::from_secs(5)), "{:?}", lab.b.transitions());
    let served = vipdrift_tests::wait_until(Duration::from_secs(5), || {
        fetch(&lab, VIP4, 1.0).as_deref() == Some("served by b0")
    });
    assert!(served, "B serves the VIP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.a.state(), "fault", "A stays deaf and silent");
}
