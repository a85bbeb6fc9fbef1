//! maglev-lb end to end: a client, two load balancer nodes (VRRP
//! priorities 200 and 100, 10 ms adverts) and three backends, each serving
//! HTTP, a TCP line echo and UDP that name the backend, all on one bridge.
//! The backends hold the VIP on `lo` with `arp_ignore=1` and
//! `arp_announce=2` (IPVS-DR) and answer the client directly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use vipdrift_tests::lan::{Interactive, Lan};
use vipdrift_tests::{vipdrift_bin, wait_until, workspace_bin};

const VIP: &str = "198.51.100.100";
const VMAC: &str = "00:00:5e:00:01:33";
const CLIENT_MAC: &str = "02:00:00:00:00:0a";
const BACKENDS: [(&str, &str, &str); 3] = [
    ("be1", "198.51.100.21", "02:00:00:00:00:21"),
    ("be2", "198.51.100.22", "02:00:00:00:00:22"),
    ("be3", "198.51.100.23", "02:00:00:00:00:23"),
];
const PEER: &str = include_str!("../py/lb_peer.py");

struct LbLab {
    lan: Lan,
    lb1: Option<Interactive>,
    lb2: Option<Interactive>,
    _backends: Vec<Interactive>,
}

fn lb_bin() -> String {
    workspace_bin("maglev-lb", "MAGLEV_LB_BIN", "cargo build --release -p vipdrift-example-lb")
}

impl LbLab {
    fn new() -> LbLab {
        let mut builder = Lan::builder()
            .host("client", "c0", CLIENT_MAC, "198.51.100.10/24")
            .host("lb1", "l1", "02:00:00:00:00:02", "198.51.100.2/24")
            .host("lb2", "l2", "02:00:00:00:00:03", "198.51.100.3/24");
        for (name, address, mac) in BACKENDS {
            builder = builder.host(name, "e0", mac, &format!("{address}/24"));
        }
        let lan = builder.build();
        // veth leaves a locally sent segment's checksum for the NIC to fill
        // in; a frame that a load balancer forwards through AF_XDP never
        // meets one, so the client computes it itself, as a real NIC would.
        lan.host("client").ns.exec_ok(&["ethtool", "-K", "c0", "tx", "off"]);
        std::fs::write(lan.dir.join("lb_peer.py"), PEER).unwrap();
        let mut backends = Vec::new();
        for (name, ..) in BACKENDS {
            let ns = &lan.host(name).ns;
            ns.exec_ok(&["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            for key in ["all", "e0"] {
                ns.exec_ok(&["sysctl", "-qw", &format!("net.ipv4.conf.{key}.arp_ignore=1")]);
                ns.exec_ok(&["sysctl", "-qw", &format!("net.ipv4.conf.{key}.arp_announce=2")]);
            }
            let script = lan.dir.join("lb_peer.py");
            let server = Interactive::spawn(ns, &["python3", script.to_str().unwrap(), "backend", name]);
            assert_eq!(server.line(Duration::from_secs(10)).as_deref(), Some("ready"), "{name} serves");
            backends.push(server);
        }
        for (role, iface, priority) in [("lb1", "l1", 200), ("lb2", "l2", 100)] {
            std::fs::write(lan.dir.join(format!("{role}.toml")), lb_config(&lan, role, iface, priority)).unwrap();
        }
        let mut lab = LbLab { lan, lb1: None, lb2: None, _backends: backends };
        lab.start("lb1");
        assert!(wait_until(Duration::from_secs(10), || lab.state("lb1") == "master"), "lb1 never became master");
        lab.start("lb2");
        assert!(wait_until(Duration::from_secs(10), || lab.state("lb2") == "backup"), "lb2 never became backup");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!((lab.state("lb1"), lab.state("lb2")), ("master".into(), "backup".into()));
        lab
    }

    fn start(&mut self, role: &str) {
        let config = self.lan.dir.join(format!("{role}.toml"));
        let lb = Interactive::spawn(&self.lan.host(role).ns, &[&lb_bin(), "--config", config.to_str().unwrap()]);
        match role {
            "lb1" => self.lb1 = Some(lb),
            _ => self.lb2 = Some(lb),
        }
    }

    fn lb(&mut self, role: &str) -> &mut Interactive {
        let lb = if role == "lb1" { &mut self.lb1 } else { &mut self.lb2 };
        lb.as_mut().unwrap_or_else(|| panic!("{role} is not running"))
    }

    /// The VRRP state of an LB node's group, from its admin socket.
    fn state(&self, role: &str) -> String {
        let socket = self.lan.dir.join(format!("{role}.sock"));
        let out = std::process::Command::new(vipdrift_bin())
            .args(["status", "--json", "--socket", socket.to_str().unwrap()])
            .output()
            .expect("run vipdrift status");
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        status["groups"][0]["state"].as_str().unwrap_or_default().to_owned()
    }

    /// Runs the peer script in the client's namespace and parses its JSON.
    fn client(&self, args: &[&str]) -> serde_json::Value {
        let script = self.lan.dir.join("lb_peer.py");
        let mut command = vec!["python3", script.to_str().unwrap()];
        command.extend_from_slice(args);
        let out = self.lan.host("client").ns.exec_ok(&command);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON: {e}"))
    }

    fn http(&self, n: usize) -> (BTreeMap<String, u64>, u64) {
        let r = self.client(&["http", VIP, &n.to_string()]);
        let counts = r["counts"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
        (counts, r["failures"].as_u64().unwrap())
    }

    /// Per UDP flow (source port 20000 + i), the backends it was answered by.
    fn udp(&self, flows: usize, rounds: usize) -> Vec<Vec<String>> {
        let r = self.client(&["udp", VIP, &flows.to_string(), &rounds.to_string()]);
        r["flows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_owned()).collect())
            .collect()
    }

    /// Sends `line` to both LB nodes (the pool must match on both).
    fn both(&mut self, line: &str) {
        for role in ["lb1", "lb2"] {
            let reply = self.lb(role).ask(line);
            assert_eq!(reply["ok"], true, "{role}: {line}: {reply}");
        }
    }
}

fn lb_config(lan: &Lan, role: &str, iface: &str, priority: u8) -> String {
    let host = lan.host(role);
    let mut text = format!(
        r#"[[interface]]
name = "{iface}"
address = "{address}/24"
bind = "copy"
idle = "sleep"
link_check_ms = 5

[[group]]
name = "web"
interface = "{iface}"
vrid = 51
priority = {priority}
advert_interval_ms = 10
vips = ["{VIP}/24"]

[admin]
socket = "{socket}"

[maglev]
flows = 65536
"#,
        address = host.address,
        socket = lan.dir.join(format!("{role}.sock")).display(),
    );
    for (_, address, mac) in BACKENDS {
        text.push_str(&format!("\n[[backend]]\naddress = \"{address}\"\nmac = \"{mac}\"\n"));
    }
    text
}

fn assert_even(counts: &BTreeMap<String, u64>, total: u64, what: &str) {
    println!("{what}: {counts:?}");
    assert_eq!(counts.len(), 3, "{what}: every backend serves: {counts:?}");
    let even = total as f64 / 3.0;
    for (backend, &n) in counts {
        assert!((n as f64 - even).abs() <= 0.2 * even, "{what}: {backend} got {n} of {total} (±20 % of {even:.0})");
    }
}

#[test]
fn new_connections_spread_over_every_backend_and_a_flow_keeps_its_backend() {
    let lab = LbLab::new();
    let (counts, failures) = lab.http(300);
    assert_eq!(failures, 0, "every request answered");
    assert_even(&counts, 300, "300 HTTP requests on new connections");

    let flows = lab.udp(300, 1);
    let mut udp: BTreeMap<String, u64> = BTreeMap::new();
    for f in &flows {
        assert_eq!(f.len(), 1, "every UDP flow answered");
        *udp.entry(f[0].clone()).or_default() += 1;
    }
    assert_even(&udp, 300, "300 UDP flows");

    for (i, seen) in lab.udp(40, 5).iter().enumerate() {
        let backends: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(backends.len(), 1, "flow {i} (one 5-tuple) always lands on one backend: {seen:?}");
    }
}

/// A line every 2 ms over one TCP connection while `fail` hits the master;
/// the connection must survive on the same backend.
fn stream_across(what: &str, fail: impl FnOnce(&mut LbLab)) {
    let mut lab = LbLab::new();
    let script = lab.lan.dir.join("lb_peer.py");
    let stream =
        Interactive::spawn(&lab.lan.host("client").ns, &["python3", script.to_str().unwrap(), "stream", VIP, "4"]);
    std::thread::sleep(Duration::from_millis(1500));
    fail(&mut lab);
    assert!(wait_until(Duration::from_secs(5), || lab.state("lb2") == "master"), "{what}: lb2 took over");
    let line = stream.line(Duration::from_secs(15)).expect("the stream's result");
    let result: serde_json::Value = serde_json::from_str(&line).unwrap();
    println!("{what}: {result}");
    println!("{what}: longest gap between answers {:.1} ms", result["longest_gap_ms"].as_f64().unwrap());
    assert_eq!(result["broke"], serde_json::Value::Null, "{what}: no reset, no close");
    assert_eq!(result["backends"].as_array().unwrap().len(), 1, "{what}: the same backend throughout");
    let (sent, answered) = (result["sent"].as_u64().unwrap(), result["answered"].as_u64().unwrap());
    assert!(answered + 5 >= sent && sent > 1000, "{what}: every line answered in the end: {answered} of {sent}");
}

#[test]
fn a_long_lived_connection_survives_kill_9_of_the_master() {
    stream_across("kill -9 of the LB master", |lab| lab.lb("lb1").signal(libc::SIGKILL));
}

#[test]
fn a_long_lived_connection_survives_the_masters_link_going_down() {
    stream_across("the LB master's switch port down", |lab| lab.lan.set_port("lb1", false));
}

#[test]
fn a_long_lived_connection_survives_a_graceful_stop_of_the_master() {
    stream_across("graceful stop of the LB master", |lab| lab.lb("lb1").signal(libc::SIGTERM));
}

#[test]
fn removing_a_backend_moves_only_its_flows_and_draining_keeps_them() {
    let mut lab = LbLab::new();
    let before: Vec<String> = lab.udp(1000, 1).into_iter().map(|f| f[0].clone()).collect();

    lab.both("remove 198.51.100.22");
    let after: Vec<String> = lab.udp(1000, 1).into_iter().map(|f| f[0].clone()).collect();
    let on_removed = before.iter().filter(|b| *b == "be2").count();
    let moved_others = before.iter().zip(&after).filter(|(b, a)| *b != "be2" && b != a).count();
    println!("remove be2: {on_removed} of 1000 flows were on it; {moved_others} flows on other backends moved");
    assert!(on_removed > 0 && after.iter().all(|b| b != "be2"), "no flow stays on a removed backend");
    assert_eq!(moved_others, 0, "flows on the other backends stay where they are");
    let (counts, failures) = lab.http(60);
    assert!(failures == 0 && !counts.contains_key("be2"), "new connections avoid it: {counts:?}");

    lab.both("drain 198.51.100.21");
    let drained: Vec<String> = lab.udp(1000, 1).into_iter().map(|f| f[0].clone()).collect();
    let kept = after.iter().zip(&drained).filter(|(a, d)| *a == "be1" && *d == "be1").count();
    println!("drain be1: {kept} of its {} flows stay on it", after.iter().filter(|a| *a == "be1").count());
    assert!(after.iter().zip(&drained).all(|(a, d)| a == d), "draining moves no existing flow");
    let (counts, _) = lab.http(60);
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["be3"], "new connections go to the only active backend");

    let stats = lab.lb("lb1").ask("stats");
    let pool = stats["pool"].as_array().unwrap();
    let states: Vec<&str> = pool.iter().map(|b| b["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["draining", "removed", "active"]);
}

#[test]
fn malformed_traffic_to_the_vip_is_counted_by_reason_and_the_lb_keeps_serving() {
    let mut lab = LbLab::new();
    let sent = lab.client(&["junk", "c0", VMAC, CLIENT_MAC, "198.51.100.10", VIP, "50"]);
    assert_eq!(sent["sent"], 200);
    fn counted(lab: &mut LbLab) -> serde_json::Value {
        lab.lb("lb1").ask("stats")["counters"].clone()
    }
    assert!(
        wait_until(Duration::from_secs(5), || {
            let c = counted(&mut lab);
            c["fragment"].as_u64() >= Some(100) && c["truncated"].as_u64() >= Some(50)
        }),
        "dropped and counted: {}",
        counted(&mut lab)
    );
    let c = counted(&mut lab);
    println!("malformed frames to the VIP: {c}");
    assert_eq!(c["unknown_protocol"], 50, "GRE to the VIP");
    let (counts, failures) = lab.http(30);
    assert_eq!((failures, counts.values().sum::<u64>()), (0, 30), "still serving: {counts:?}");
}
