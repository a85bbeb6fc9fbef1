//! Bonds end to end: one `vipdrift run` node with two veths (b0, b1) into
//! one bridge, and ten client namespaces on the same bridge, each with its
//! own neighbour table. The node's NICs lose and regain their carrier (the
//! bridge-side port goes down, as when a cable is pulled); the clients are
//! real kernel clients (ping, `vipdrift probe`, `ip neigh`). Outages are
//! printed (figures for the notes, never asserted against a time budget).

use std::time::{Duration, Instant};
use vipdrift_engine::PacketSocket;
use vipdrift_tests::lan::Lan;
use vipdrift_tests::{json_summary, vipdrift_bin, wait_until, NetNs, Proc};

const VIP: &str = "198.51.100.100";
const NIC_MACS: [&str; 2] = ["02:00:00:00:b0:00", "02:00:00:00:b1:00"];
const CLIENTS: usize = 10;

struct BondLab {
    node: NetNs,
    clients: Vec<NetNs>,
    daemon: Option<Proc>,
    lan: Lan,
}

impl Drop for BondLab {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.signal(libc::SIGKILL);
            let _ = daemon.wait(Duration::from_secs(5));
        }
    }
}

fn client_ip(i: usize) -> String {
    format!("198.51.100.{}", 10 + i)
}

/// Node NICs b0/b1 on bridge ports n0/n1; client i (namespace bc{i},
/// interface eth0, 198.51.100.{10+i}) on port p{i}.
fn bond_lab() -> BondLab {
    let mut builder = Lan::builder();
    for i in 0..CLIENTS {
        let mac = format!("02:00:00:00:0c:{i:02x}");
        builder = builder.host(&format!("bc{i}"), "eth0", &mac, &format!("{}/24", client_ip(i))).port(&format!("p{i}"));
    }
    builder = builder.host("bnode", "b0", NIC_MACS[0], "").port("n0").nic("b1", NIC_MACS[1], "").port("n1");
    let mut lan = builder.build();
    let node = lan.take("bnode").ns;
    let clients = (0..CLIENTS).map(|i| lan.take(&format!("bc{i}")).ns).collect();
    BondLab { node, clients, daemon: None, lan }
}

impl BondLab {
    /// The bridge's namespace (br0, ports n0, n1 and p0…p9).
    fn switch(&self) -> &NetNs {
        self.lan.switch()
    }

    fn socket(&self) -> String {
        self.lan.dir.join("node.sock").display().to_string()
    }

    fn start(&mut self, bond: &str) {
        let config = format!(
            r#"
[[interface]]
name = "b0"
bind = "copy"
idle = "sleep"
link_check_ms = 5

[[interface]]
name = "b1"
bind = "copy"
idle = "sleep"
link_check_ms = 5

[[bond]]
name = "lb"
interfaces = ["b0", "b1"]
vips = ["{VIP}/24"]
{bond}

[admin]
socket = "{socket}"
"#,
            socket = self.socket()
        );
        let path = self.lan.dir.join("node.toml");
        std::fs::write(&path, config).unwrap();
        let bin = vipdrift_bin();
        self.daemon = Some(self.node.spawn(&[&bin, "run", "--config", path.to_str().unwrap(), "--log-format", "json"]));
        assert!(wait_until(Duration::from_secs(10), || self.try_status().is_some()), "the daemon did not come up");
    }

    fn admin(&self, cmd: &str) -> Option<serde_json::Value> {
        let bin = vipdrift_bin();
        let out = self.node.exec(&[&bin, cmd, "--json", "--socket", &self.socket()]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    fn try_status(&self) -> Option<serde_json::Value> {
        self.admin("status")
    }

    fn bond_status(&self) -> serde_json::Value {
        self.try_status().expect("status")["bonds"][0].clone()
    }

    fn bond_counter(&self, name: &str) -> u64 {
        self.admin("stats").expect("stats")["bonds"][0]["counters"][name].as_u64().unwrap_or(0)
    }

    /// The NIC (by name) the bond's status calls primary.
    fn primary(&self) -> String {
        let status = self.bond_status();
        status["nics"].as_array().unwrap().iter().find(|n| n["primary"] == true).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Client `i` pings the VIP once and returns the MAC its neighbour table then holds for it.
    fn resolve(&self, i: usize) -> String {
        let out = self.clients[i].exec(&["ping", "-c", "1", "-W", "2", VIP]);
        assert!(out.status.success(), "client {i} cannot ping the VIP: {}", String::from_utf8_lossy(&out.stdout));
        self.clients[i].neighbour_mac(VIP, "eth0")
    }

    fn forget(&self, i: usize) {
        let _ = self.clients[i].exec(&["ip", "neigh", "flush", "dev", "eth0"]);
    }

    /// The carrier of the node's NIC `nic` (the bridge-side end goes down or up).
    fn cable(&self, nic: usize, up: bool) {
        self.switch().exec_ok(&["ip", "link", "set", &format!("n{nic}"), if up { "up" } else { "down" }]);
    }

    fn wait_link(&self, nic: usize, up: bool) {
        let name = format!("b{nic}");
        let seen = wait_until(Duration::from_secs(5), || {
            self.bond_status()["nics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == name.as_str() && n["link_up"] == up)
        });
        assert!(seen, "the daemon never saw {name} {}", if up { "up" } else { "down" });
    }

    fn probe(&self, i: usize, seconds: f64) -> Proc {
        let bin = vipdrift_bin();
        let seconds = seconds.to_string();
        self.clients[i].spawn(&[&bin, "probe", "--target", VIP, "--interval-ms", "2", "--duration", &seconds, "--json"])
    }

    fn stop(&mut self) -> String {
        let daemon = self.daemon.take().expect("running");
        daemon.signal(libc::SIGTERM);
        let out = daemon.wait(Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "the daemon failed: {stderr}");
        let summary = json_summary(&out);
        for queue in summary["queues"].as_array().unwrap() {
            assert_eq!(queue["frames_leaked"], 0, "{summary}");
        }
        stderr
    }
}

/// (lost probes, longest gap in ms) of a finished probe.
fn outage(probe: Proc, what: &str) -> (u64, f64) {
    let out = probe.wait(Duration::from_secs(30));
    assert!(out.status.success(), "probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let summary = json_summary(&out);
    let (sent, lost) = (summary["sent"].as_u64().unwrap(), summary["lost"].as_u64().unwrap());
    let gap = summary["longest_gap_ms"].as_f64().unwrap();
    println!(
        "{what}: sent {sent} lost {lost} (outage {:.1} ms at 2 ms spacing), longest gap between replies {gap:.1} ms",
        lost as f64 * 2.0
    );
    assert!(sent > 0 && lost * 2 < sent, "{what}: traffic did not resume: lost {lost} of {sent}");
    (lost, gap)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[test]
fn alb_splits_clients_across_the_nics_moves_them_on_link_loss_and_rebalances_on_return() {
    let mut lab = bond_lab();
    lab.start("mode = \"alb\"\nrebalance_ms = 500\nrebalance_burst = 2");
    let first = 8;
    let macs: Vec<String> = (0..first).map(|i| lab.resolve(i)).collect();
    println!("alb: the first {first} clients resolved the VIP to {macs:?}");
    let per_nic: Vec<usize> = NIC_MACS.iter().map(|m| macs.iter().filter(|x| x == m).count()).collect();
    assert_eq!(per_nic.iter().sum::<usize>(), first, "every client got one of the NICs' MACs: {macs:?}");
    let ceiling = first.div_ceil(2) + 1;
    assert!(per_nic.iter().all(|&n| n <= ceiling && n > 0), "split {per_nic:?}, at most {ceiling} per NIC");
    for (i, mac) in macs.iter().enumerate().take(2) {
        lab.forget(i);
        assert_eq!(&lab.resolve(i), mac, "client {i} asking again gets the same MAC");
    }
    let status = lab.bond_status();
    assert_eq!(status["mode"], "alb");
    assert_eq!(status["clients"], first as u64, "{status}");
    assert_eq!(status["nics"][0]["clients"].as_u64().unwrap() as usize, per_nic[0], "{status}");

    // b1 loses its carrier: its clients are moved to b0 with directed replies.
    let on_b1: Vec<usize> = (0..first).filter(|&i| macs[i] == NIC_MACS[1]).collect();
    let probes: Vec<(usize, Proc)> = (0..first).map(|i| (i, lab.probe(i, 2.0))).collect();
    std::thread::sleep(Duration::from_millis(600));
    lab.cable(1, false);
    lab.wait_link(1, false);
    std::thread::sleep(Duration::from_millis(300));
    for &i in &on_b1 {
        assert_eq!(lab.clients[i].neighbour_mac(VIP, "eth0"), NIC_MACS[0], "client {i} moved to b0's MAC");
    }
    let mut moved_gaps = Vec::new();
    for (i, probe) in probes {
        if on_b1.contains(&i) {
            moved_gaps.push(outage(probe, "alb NIC loss, a client moved off the lost NIC").1);
        } else {
            outage(probe, "alb NIC loss, a client of the surviving NIC");
        }
    }
    let worst = moved_gaps.iter().cloned().fold(0.0, f64::max);
    println!("alb NIC loss: {} clients moved; longest gap of a moved client {worst:.1} ms", on_b1.len());
    assert!(lab.bond_counter("client_updates") >= on_b1.len() as u64);
    assert_eq!(lab.bond_status()["nics"][1]["clients"], 0);

    // b1 returns: the two clients that never asked go to it, and the others
    // move back a few at a time.
    lab.cable(1, true);
    lab.wait_link(1, true);
    for i in first..CLIENTS {
        assert_eq!(lab.resolve(i), NIC_MACS[1], "new client {i} goes to the returning NIC");
    }
    let balanced = wait_until(Duration::from_secs(5), || {
        let s = lab.bond_status();
        let (a, b) = (s["nics"][0]["clients"].as_u64().unwrap(), s["nics"][1]["clients"].as_u64().unwrap());
        a.abs_diff(b) <= 1
    });
    assert!(balanced, "rebalanced after the NIC returned: {}", lab.bond_status());
    std::thread::sleep(Duration::from_millis(100));
    let now: Vec<String> = (0..CLIENTS).map(|i| lab.resolve(i)).collect();
    let back = NIC_MACS.iter().map(|m| now.iter().filter(|x| x == m).count()).collect::<Vec<_>>();
    println!("alb after b1 returned: clients per NIC {back:?}");
    assert!(back.iter().all(|&n| n.abs_diff(CLIENTS / 2) <= 1), "{now:?}");
    let stderr = lab.stop();
    assert!(stderr.contains("clients moved off b1"), "the move is logged: {stderr}");
}

#[test]
fn tlb_link_loss_moves_the_primary_mac_to_the_surviving_port_and_clients_keep_their_entry() {
    let mut lab = bond_lab();
    lab.start("mode = \"tlb\"");
    for i in 0..CLIENTS {
        assert_eq!(lab.resolve(i), NIC_MACS[0], "client {i} knows the primary MAC");
    }
    // Replies are spread: both NICs transmit, each with its own MAC.
    for _ in 0..3 {
        for i in 0..CLIENTS {
            lab.resolve(i);
        }
    }
    let stats = lab.admin("stats").unwrap();
    let tx: Vec<u64> = ["b0", "b1"]
        .iter()
        .map(|nic| {
            stats["queues"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|q| q["port"] == *nic)
                .map(|q| q["tx_packets"].as_u64().unwrap())
                .sum()
        })
        .collect();
    println!("tlb: echo replies and ARP answers transmitted per NIC {tx:?}");
    assert!(tx[0] > 0 && tx[1] > 0, "both NICs carry replies: {tx:?}");
    assert!(lab.bond_counter("echo_spread") > 0);

    // Fail whichever NIC holds the primary MAC, three times.
    let mut outages = Vec::new();
    for round in 0..3 {
        let holder = lab.primary();
        let (failing, surviving) = if holder == "b0" { (0, 1) } else { (1, 0) };
        let probe = lab.probe(0, 1.5);
        std::thread::sleep(Duration::from_millis(500));
        let cut = Instant::now();
        lab.cable(failing, false);
        lab.wait_link(failing, false);
        let seen = cut.elapsed().as_secs_f64() * 1e3;
        let (lost, _) = outage(probe, "tlb link loss of the NIC holding the primary MAC");
        println!("  round {round}: b{failing} cut; status showed it down {seen:.1} ms later (polled every 50 ms)");
        outages.push(lost as f64 * 2.0);
        assert_eq!(lab.clients[0].neighbour_mac(VIP, "eth0"), NIC_MACS[0], "the client's entry is unchanged");
        let fdb = lab.switch().exec_ok(&["bridge", "fdb", "show", "br", "br0"]);
        let fdb = String::from_utf8_lossy(&fdb.stdout);
        assert!(
            fdb.lines().any(|l| l.starts_with(NIC_MACS[0]) && l.contains(&format!("dev n{surviving}"))),
            "the bridge learned the primary MAC on the surviving port n{surviving}: {fdb}"
        );
        let status = lab.bond_status();
        let nic = &status["nics"][surviving];
        assert_eq!((nic["primary"].clone(), nic["mac"].clone()), (true.into(), NIC_MACS[0].into()), "{status}");
        // The failed NIC returns as a secondary, with the MAC it was swapped.
        lab.cable(failing, true);
        lab.wait_link(failing, true);
        assert_eq!(lab.primary(), format!("b{surviving}"), "the returning NIC does not take the primary MAC back");
        let returned = &lab.bond_status()["nics"][failing];
        assert_ne!(returned["mac"], NIC_MACS[0], "one MAC on one port: {returned}");
        for i in 0..CLIENTS {
            assert_eq!(lab.resolve(i), NIC_MACS[0]);
        }
    }
    println!("tlb primary link loss: client outage {outages:?} ms, median {:.1} ms", median(&mut outages));
    let stderr = lab.stop();
    assert!(stderr.contains("primary MAC 02:00:00:00:b0:00 moved"), "the move is logged: {stderr}");
}

/// Sends `count` ARP requests for the VIP from `spoofed` distinct sender
/// addresses (203.0.113.0/24 and 198.51.100.128/25, random MACs) out of
/// `iface` in `ns`, as fast as a raw socket takes them; returns how many left.
fn flood_arp(ns: &NetNs, iface: &str, count: usize, spoofed: u32) -> usize {
    let _inside = ns.enter();
    let socket =
        PacketSocket::open(iface).unwrap_or_else(|e| panic!("AF_PACKET socket on {iface} in {}: {e}", ns.name()));
    let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut frame = [0u8; 60];
    for n in 0..count {
        if Instant::now() > deadline {
            break;
        }
        let k = n as u32 % spoofed;
        let sender = if k < 254 {
            std::net::Ipv4Addr::new(203, 0, 113, 1 + k as u8)
        } else {
            std::net::Ipv4Addr::new(198, 51, 100, 128 + (k - 254) as u8 % 127)
        };
        let mac = [0x02, 0xee, 0, (k >> 8) as u8, k as u8, n as u8];
        vipdrift_vmac::arp::write_request(&mut frame, mac.into(), sender, vip, None).unwrap();
        if socket.send(&frame).is_ok_and(|n| n == frame.len()) {
            sent += 1;
        }
    }
    sent
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_arp_flood_from_spoofed_clients_stays_within_the_table_and_real_clients_are_still_answered() {
    let mut lab = bond_lab();
    lab.start("mode = \"alb\"\nclients = 64");
    for i in 0..4 {
        lab.resolve(i);
    }
    let pid = lab.daemon.as_ref().unwrap().pid();
    // Warm up: one flood, so allocations that happen once are behind us.
    flood_arp(&lab.clients[9], "eth0", 20_000, 380);
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = rss_kib(pid);
    let flooder = std::thread::scope(|scope| {
        let lab = &lab;
        let flooder = scope.spawn(move || flood_arp(&lab.clients[9], "eth0", 200_000, 380));
        // Meanwhile real clients that forgot the VIP ask again and are answered.
        std::thread::sleep(Duration::from_millis(20));
        for i in 4..8 {
            lab.forget(i);
            let mac = lab.resolve(i);
            assert!(NIC_MACS.contains(&mac.as_str()), "client {i} answered during the flood: {mac}");
        }
        flooder.join().unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let rss_after = rss_kib(pid);
    let status = lab.bond_status();
    let stats = lab.admin("stats").unwrap();
    let counters = &stats["bonds"][0]["counters"];
    let dropped: u64 = stats["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["drops"]["control_channel_full"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "ARP flood: {flooder} requests from 380 spoofed clients; table {}/{}, evicted {}, answered {}, \
         dropped at the control channel {dropped}; RSS {rss_before} KiB -> {rss_after} KiB",
        status["clients"], status["client_capacity"], counters["evicted"], counters["arp_answered"]
    );
    assert!(flooder > 100_000, "the flood went out: {flooder}");
    assert!(status["clients"].as_u64().unwrap() <= 64, "the table stays bounded: {status}");
    assert!(counters["evicted"].as_u64().unwrap() > 0, "{counters}");
    assert!(rss_after <= rss_before + 2048, "memory stays bounded: {rss_before} KiB -> {rss_after} KiB");
    for i in 0..8 {
        lab.forget(i);
        lab.resolve(i);
    }
    lab.stop();
}
