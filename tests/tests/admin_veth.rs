//! The operator's interface against running daemons in the failover lab: the
//! admin socket (status, stats, maintenance, priority, reload), SIGHUP, the
//! metrics endpoint, and what a misbehaving admin client gets.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use vipdrift_tests::lab::{assert_resumed, finish_probe, lab, neighbour_mac, probe, start_pair, Lab, Node, VIP4};
use vipdrift_tests::{vipdrift_bin, wait_until};

const STATUS: &str = r#"{"v":1,"cmd":"status"}"#;
const STATS: &str = r#"{"v":1,"cmd":"stats"}"#;
const RELOAD: &str = r#"{"v":1,"cmd":"reload"}"#;
const VIP_API: &str = "198.51.100.101";
const VIP6_API: &str = "2001:db8::101";

fn vip4() -> String {
    format!("{VIP4}/24")
}

fn ok(reply: Value) -> Value {
    assert_eq!(reply["v"], 1, "{reply}");
    assert_eq!(reply["ok"], true, "refused: {reply}");
    reply["result"].clone()
}

/// The IPv4 group named `name` in a node's status.
fn group(node: &Node, name: &str) -> Value {
    let status = ok(node.admin(STATUS));
    status["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["name"] == name && g["family"] == "ipv4").cloned())
        .unwrap_or_else(|| panic!("no group {name} in {status}"))
}

fn wait_group_state(node: &Node, name: &str, state: &str) -> bool {
    wait_until(Duration::from_secs(10), || group(node, name)["state"] == state)
}

/// The node's configuration plus a second group, `api` (VRID 52, an IPv4
/// and an IPv6 VIP: two virtual routers).
fn with_api_group(node: &Node, priority: u8) -> String {
    let base = node.config_text(priority, true, "vmac", &[&vip4()]);
    format!(
        "{base}\n[[group]]\nname = \"api\"\ninterface = \"{}\"\nvrid = 52\npriority = {priority}\nadvert_interval_ms = 10\nvips = [\"{VIP_API}/24\", \"{VIP6_API}/64\"]\n",
        node.name
    )
}

#[test]
fn status_shows_the_master_on_both_nodes_and_follows_a_failover() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&vip4()]);
    let a = group(&lab.a, "web");
    assert_eq!(a["state"], "master", "{a}");
    assert_eq!(a["master"]["self"], true, "{a}");
    assert_eq!(a["master"]["address"], "198.51.100.2", "{a}");
    assert_eq!((a["priority"].as_u64(), a["effective_priority"].as_u64()), (Some(200), Some(200)), "{a}");
    assert_eq!(a["vips"][0], vip4(), "{a}");
    assert_eq!((a["mode"].as_str(), a["mac"].as_str()), (Some("vmac"), Some("00:00:5e:00:01:33")), "{a}");
    assert_eq!(a["owned"], true, "{a}");
    let b = group(&lab.b, "web");
    assert_eq!(b["state"], "backup", "{b}");
    assert_eq!(b["master"]["address"], "198.51.100.2", "B knows who the master is: {b}");
    assert_eq!(b["master"]["priority"], 200, "{b}");
    assert_eq!(b["master"]["self"], false, "{b}");
    assert_eq!(b["owned"], false, "{b}");
    let status = ok(lab.b.admin(STATUS));
    assert_eq!(status["interfaces"][0]["name"], "b0", "{status}");
    assert_eq!(status["interfaces"][0]["link_up"], true, "{status}");
    assert_eq!(status["daemon"]["pid"], lab.b.daemon.as_ref().unwrap().pid(), "{status}");

    lab.a.kill();
    assert!(wait_group_state(&lab.b, "web", "master"), "B never reported master");
    let b = group(&lab.b, "web");
    assert_eq!(b["master"]["self"], true, "{b}");
    assert_eq!(b["master"]["address"], "198.51.100.3", "{b}");
    assert_eq!(b["owned"], true, "{b}");
    let last = &b["last_transition"];
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("backup"), Some("master")), "{b}");
    assert_eq!(last["reason"], "master_down", "{b}");
    let elapsed = last["elapsed_ms"].as_f64().unwrap();
    assert!((20.0..200.0).contains(&elapsed), "took over {elapsed} ms after the last advert: {b}");
    assert!(b["in_state_s"].as_f64().unwrap() < 10.0, "{b}");

    // The same through the command line, as a table and as JSON.
    let table = lab.b.cli_ok(&["status"]);
    let row = table.lines().find(|l| l.starts_with("web ")).unwrap_or_else(|| panic!("no web row: {table}"));
    for column in ["ipv4", "b0", "51", "master", "100/100", "self", "198.51.100.100/24", "vmac", "master_down"] {
        assert!(row.split_whitespace().any(|c| c.contains(column)), "{column} missing from {row:?}\n{table}");
    }
    let json: Value = serde_json::from_str(&lab.b.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(json["groups"][0]["state"], "master", "{json}");
}

#[test]
fn a_reload_adds_a_group_whose_vip_answers_while_the_running_group_loses_nothing() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&vip4()]);
    let traffic = probe(&lab, VIP4, 3.0);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(lab.a.config_path(), with_api_group(&lab.a, 200)).unwrap();
    std::fs::write(lab.b.config_path(), with_api_group(&lab.b, 100)).unwrap();
    // A by signal, as an init system would; B through the API.
    lab.a.daemon.as_ref().unwrap().signal(libc::SIGHUP);
    let applied = lab.b.cli_ok(&["ctl", "reload"]);
    assert!(
        applied.contains("added api (ipv4, vrid 52)") && applied.contains("added api (ipv6, vrid 52)"),
        "{applied}"
    );
    assert!(!applied.contains("web"), "the unchanged group is not touched: {applied}");

    assert!(wait_group_state(&lab.a, "api", "master"), "A's new group never became master");
    assert!(wait_group_state(&lab.b, "api", "backup"), "B's new group is backup");
    lab.client.exec_ok(&["ping", "-c", "3", "-i", "0.2", "-W", "1", VIP_API]);
    assert!(wait_until(Duration::from_secs(10), || lab
        .client
        .exec(&["ping", "-6", "-c", "1", "-W", "1", VIP6_API])
        .status
        .success()));
    let solicited = "33:33:ff:00:01:01";
    let joined = |lab: &Lab| {
        String::from_utf8_lossy(&lab.a.ns.exec_ok(&["ip", "maddr", "show", "dev", "a0"]).stdout).contains(solicited)
    };
    assert!(joined(&lab), "the IPv6 VIP's solicited-node group is joined");
    assert_eq!(neighbour_mac(&lab, VIP_API), "00:00:5e:00:01:34", "the new group's virtual MAC");
    let nic_filter = |lab: &Lab| {
        String::from_utf8_lossy(&lab.a.ns.exec_ok(&["bridge", "fdb", "show", "dev", "a0"]).stdout).into_owned()
    };
    assert!(
        nic_filter(&lab).contains("00:00:5e:00:01:34"),
        "the NIC accepts the new virtual MAC: {}",
        nic_filter(&lab)
    );
    let status = ok(lab.a.admin(STATUS));
    assert_eq!(status["daemon"]["reloads"], 1, "{status}");

    let outage = finish_probe(traffic, "web's VIP across both reloads");
    assert_eq!(outage.lost, 0, "the running group lost traffic during the reload");
    let web: Vec<String> = lab.a.transitions().into_iter().filter(|t| t.starts_with("web ")).collect();
    assert_eq!(web.len(), 2, "web went to backup, then master, and nothing since: {web:?}");

    // Removing the group again: its VIP stops answering, web stays.
    lab.a.configure(200, true, "vmac", &[&vip4()]);
    lab.b.configure(100, true, "vmac", &[&vip4()]);
    let removed = ok(lab.a.admin(RELOAD))["changes"].to_string();
    assert!(removed.contains("removed api (ipv4)") && removed.contains("removed api (ipv6)"), "{removed}");
    ok(lab.b.admin(RELOAD));
    let status = ok(lab.a.admin(STATUS));
    assert_eq!(status["groups"].as_array().unwrap().len(), 1, "{status}");
    let gone = lab.client.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", VIP_API]);
    assert!(!gone.status.success(), "the removed group's VIP still answers");
    assert_eq!(group(&lab.a, "web")["state"], "master");
    let filter = nic_filter(&lab);
    assert!(!filter.contains("00:00:5e:00:01:34") && filter.contains("00:00:5e:00:01:33"), "{filter}");
    assert!(!joined(&lab), "the removed VIP's solicited-node group is left");
}

#[test]
fn a_bad_reload_is_refused_with_its_line_and_the_running_configuration_stays() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&vip4()]);
    let traffic = probe(&lab, VIP4, 2.0);
    std::thread::sleep(Duration::from_millis(300));
    let good = lab.a.config_text(200, true, "vmac", &[&vip4()]);
    let bad = good.replace("vrid = 51", "vrid = 300");
    std::fs::write(lab.a.config_path(), &bad).unwrap();
    let reply = lab.a.admin(RELOAD);
    assert_eq!(reply["ok"], false, "{reply}");
    let error = reply["error"].as_str().unwrap();
    let line = bad.lines().position(|l| l.contains("vrid = 300")).unwrap() + 1;
    assert!(error.contains(&format!("a0.toml:{line}: group[0].vrid")) && error.contains("1..=255"), "{error}");
    // check-config says the same without a daemon, and the CLI passes the refusal on.
    let config = lab.a.config_path();
    let check = std::process::Command::new(vipdrift_bin())
        .args(["check-config", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stderr).contains(error), "{check:?}");
    let refused = lab.a.cli(&["ctl", "reload"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("group[0].vrid"), "{refused:?}");

    // The same file by SIGHUP, and an interface change, are refused too.
    lab.a.daemon.as_ref().unwrap().signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || ok(lab.a.admin(STATUS))["daemon"]["reload_failures"] == 3));
    std::fs::write(lab.a.config_path(), good.replace("link_check_ms = 5", "link_check_ms = 6")).unwrap();
    let reply = lab.a.admin(RELOAD);
    assert!(reply["error"].as_str().unwrap().contains("interface changes take a restart"), "{reply}");

    let status = ok(lab.a.admin(STATUS));
    assert_eq!(status["daemon"]["reload_failures"], 4, "{status}");
    assert!(status["daemon"]["last_reload_error"].as_str().unwrap().contains("interface"), "{status}");
    let web = group(&lab.a, "web");
    assert_eq!((web["state"].as_str(), web["vrid"].as_u64()), (Some("master"), Some(51)), "{web}");
    let outage = finish_probe(traffic, "web's VIP across refused reloads");
    assert_eq!(outage.lost, 0, "a refused reload disturbed traffic");
}

#[test]
fn maintenance_hands_over_without_loss_and_a_priority_change_moves_the_master() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&vip4()]);
    let traffic = probe(&lab, VIP4, 1.5);
    std::thread::sleep(Duration::from_millis(300));
    let applied = lab.a.cli_ok(&["ctl", "maintenance", "web", "on"]);
    assert!(applied.contains("handing over"), "{applied}");
    assert!(wait_group_state(&lab.b, "web", "master"), "B never took over");
    std::thread::sleep(Duration::from_millis(500));
    let a = group(&lab.a, "web");
    assert_eq!((a["state"].as_str(), a["maintenance"].as_bool()), (Some("backup"), Some(true)), "{a}");
    assert_eq!(a["last_transition"]["reason"], "maintenance", "{a}");
    assert_eq!(a["master"]["address"], "198.51.100.3", "{a}");
    let outage = finish_probe(traffic, "maintenance on: A hands over to B");
    assert_eq!(outage.lost, 0, "the handover lost traffic");

    let traffic = probe(&lab, VIP4, 1.5);
    std::thread::sleep(Duration::from_millis(300));
    lab.a.cli_ok(&["ctl", "maintenance", "web", "off"]);
    assert!(wait_group_state(&lab.a, "web", "master"), "A (priority 200, preempt) never took the group back");
    let outage = finish_probe(traffic, "maintenance off: A preempts back");
    assert_resumed(&outage, "after A took the group back");

    let applied = lab.a.cli_ok(&["ctl", "priority", "web", "50"]);
    assert!(applied.contains("web (ipv4): priority 200 -> 50"), "{applied}");
    assert!(wait_group_state(&lab.b, "web", "master"), "B (100) never preempted A (50)");
    let a = group(&lab.a, "web");
    assert_eq!((a["priority"].as_u64(), a["effective_priority"].as_u64()), (Some(200), Some(50)), "{a}");

    for (request, fragment) in [
        (r#"{"v":1,"cmd":"priority","group":"web","priority":255}"#, "1..=254"),
        (r#"{"v":1,"cmd":"priority","group":"nope","priority":10}"#, "no group named \"nope\""),
        (r#"{"v":1,"cmd":"maintenance","group":"nope","on":true}"#, "the groups are: web"),
    ] {
        let reply = lab.a.admin(request);
        assert_eq!(reply["ok"], false, "{reply}");
        assert!(reply["error"].as_str().unwrap().contains(fragment), "{request}: {reply}");
    }
}

/// Everything the daemon sends on one connection until it closes it (or 5 s pass).
fn exchange(lab: &Lab, sent: &[u8]) -> String {
    let mut stream = UnixStream::connect(lab.a.socket_path()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(sent).unwrap();
    let mut received = String::new();
    stream.read_to_string(&mut received).expect("the daemon closes the connection");
    received
}

#[test]
fn malformed_admin_requests_are_refused_and_the_daemon_keeps_serving() {
    let mut lab = lab();
    start_pair(&mut lab, true, "vmac", &[&vip4()]);
    // A client that connects and says nothing must not hold anyone up.
    let _silent = UnixStream::connect(lab.a.socket_path()).unwrap();
    let mut refused = 0;
    for bad in
        ["hello\n", "[]\n", "{\"cmd\":\"status\"}\n", "{\"v\":9,\"cmd\":\"status\"}\n", "{\"v\":1,\"cmd\":\"rm\"}\n"]
    {
        let received = exchange(&lab, bad.as_bytes());
        assert_eq!(received.lines().count(), 1, "{bad:?} got one reply, then the connection closed: {received:?}");
        let reply: Value = serde_json::from_str(&received).unwrap();
        assert_eq!(reply["ok"], false, "{bad:?}: {reply}");
        assert!(!reply["error"].as_str().unwrap().is_empty());
        refused += 1;
    }
    let received = exchange(&lab, &[b'x'; 10_000]);
    assert!(received.contains("longer than 4096 bytes"), "{received:?}");
    refused += 1;
    // Invalid UTF-8 and a NUL are only bad JSON.
    let received = exchange(&lab, b"\xff\xfe\x00{\n");
    assert!(received.contains("\"ok\":false"), "{received:?}");
    refused += 1;

    // Two requests on one connection, and one a client closes before reading.
    let mut stream = UnixStream::connect(lab.a.socket_path()).unwrap();
    stream.write_all(format!("{STATUS}\n{STATS}\n").as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut received = String::new();
    stream.read_to_string(&mut received).unwrap();
    assert_eq!(received.lines().filter(|l| l.contains("\"ok\":true")).count(), 2, "{received}");
    drop(UnixStream::connect(lab.a.socket_path()).unwrap().write_all(format!("{STATUS}\n").as_bytes()));
    // A client that writes 2000 requests at once gets 2000 replies.
    let mut stream = UnixStream::connect(lab.a.socket_path()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let batch = format!("{STATUS}\n").repeat(2000);
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            stream.write_all(batch.as_bytes()).and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        })
    };
    let mut received = String::new();
    stream.read_to_string(&mut received).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(received.lines().filter(|l| l.starts_with("{\"v\":1,\"ok\":true")).count(), 2000);
    // More connections than the daemon keeps: the ones beyond the limit are told why.
    let crowd: Vec<UnixStream> = (0..40).filter_map(|_| UnixStream::connect(lab.a.socket_path()).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut told = 0;
    for mut member in &crowd {
        member.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut got = String::new();
        let _ = member.read_to_string(&mut got);
        told += usize::from(got.contains("too many connections (at most 32)"));
    }
    // 40 on top of the silent one: at least 8 over the limit of 32.
    assert!((8..=10).contains(&told), "{told} of 40 were told the daemon is full");
    drop(crowd);
    // The daemon notices the crowd has gone within a poll round or two.
    std::thread::sleep(Duration::from_millis(200));

    let stats = ok(lab.a.admin(STATS));
    assert!(stats["control"]["admin_errors"].as_u64().unwrap() >= refused, "{stats}");
    assert_eq!(group(&lab.a, "web")["state"], "master");
    let probe_after = finish_probe(probe(&lab, VIP4, 0.5), "after the malformed requests");
    assert_eq!(probe_after.lost, 0);

    // A second daemon pointed at the same socket refuses to start and touches nothing.
    let config = lab.a.config_path();
    let out = lab.a.ns.exec(&[&vipdrift_bin(), "run", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(group(&lab.a, "web")["state"], "master", "the first daemon still answers");
}

/// `name{label="value",…} value` lines of a Prometheus text page, keyed by
/// name and sorted labels.
fn parse_metrics(page: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut metrics = BTreeMap::new();
    for line in page.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        metrics.insert((name.to_owned(), labels), value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")));
    }
    metrics
}

fn metric(metrics: &BTreeMap<(String, BTreeMap<String, String>), f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    *metrics.get(&(name.to_owned(), labels.clone())).unwrap_or_else(|| panic!("no {name}{labels:?}"))
}

/// An HTTP/1.0 request from inside the node's namespace, with bash's /dev/tcp.
fn http_get(lab: &Lab, path: &str) -> String {
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/9650 && printf 'GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3 && timeout 5 cat <&3"
    );
    String::from_utf8_lossy(&lab.a.ns.exec_ok(&["bash", "-c", &script]).stdout).into_owned()
}

#[test]
fn the_metrics_endpoint_matches_the_admin_api() {
    let mut lab = lab();
    let config = lab.a.config_text(200, true, "vmac", &[&vip4()]);
    lab.b.configure(100, true, "vmac", &[&vip4()]);
    std::fs::write(lab.a.config_path(), format!("{config}\n[metrics]\nlisten = \"127.0.0.1:9650\"\n")).unwrap();
    lab.a.start();
    assert!(lab.a.wait_state("master", Duration::from_secs(10)));
    lab.b.start();
    assert!(lab.b.wait_state("backup", Duration::from_secs(10)));
    lab.client.exec_ok(&["ping", "-c", "5", "-i", "0.05", "-W", "1", VIP4]);
    std::thread::sleep(Duration::from_millis(1200));

    let before = ok(lab.a.admin(STATS));
    let response = http_get(&lab, "/metrics");
    let after = ok(lab.a.admin(STATS));
    let (head, page) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let metrics = parse_metrics(page);
    let web = [("group", "web"), ("family", "ipv4"), ("vrid", "51")];
    assert_eq!(metric(&metrics, "vipdrift_group_state", &web), 2.0, "master is 2");
    assert_eq!(metric(&metrics, "vipdrift_group_priority", &web), 200.0);
    assert_eq!(metric(&metrics, "vipdrift_group_owned", &web), 1.0);
    assert_eq!(metric(&metrics, "vipdrift_interface_up", &[("port", "a0")]), 1.0);

    let between = |name: &str, labels: &[(&str, &str)], json: fn(&Value) -> u64| {
        let value = metric(&metrics, name, labels) as u64;
        let (low, high) = (json(&before), json(&after));
        assert!(low <= value && value <= high, "{name}: {low} <= {value} <= {high}");
    };
    let queue = [("port", "a0"), ("queue", "0")];
    between("vipdrift_rx_packets_total", &queue, |s| s["queues"][0]["rx_packets"].as_u64().unwrap());
    between("vipdrift_tx_packets_total", &queue, |s| s["queues"][0]["tx_packets"].as_u64().unwrap());
    between("vipdrift_group_adverts_sent_total", &web, |s| s["groups"][0]["adverts_sent"].as_u64().unwrap());
    // The VIP is kernel-delivered: A's steering program passed the pings to A's kernel.
    let to_kernel = [("port", "a0"), ("outcome", "to_kernel")];
    between("vipdrift_steering_total", &to_kernel, |s| s["interfaces"][0]["steering"]["to_kernel"].as_u64().unwrap());
    assert!(metric(&metrics, "vipdrift_steering_total", &to_kernel) >= 5.0, "the pings were passed to the kernel");
    let malformed = [("group", "web"), ("family", "ipv4"), ("vrid", "51"), ("reason", "malformed")];
    assert_eq!(metric(&metrics, "vipdrift_group_adverts_rejected_total", &malformed), 0.0);
    let tx_pps = before["queues"][0]["tx_pps"].as_f64().unwrap();
    assert!((50.0..1000.0).contains(&tx_pps), "A's adverts leave at about 100/s: {tx_pps}");

    let watched = lab.a.cli_ok(&["stats", "--json", "--count", "2"]);
    let samples: Vec<Value> = watched.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(samples.len(), 2, "{watched}");
    assert!(samples[1]["groups"][0]["adverts_sent"].as_u64() > samples[0]["groups"][0]["adverts_sent"].as_u64());
    let table = lab.a.cli_ok(&["stats"]);
    assert!(table.lines().any(|l| l.starts_with("a0 ") && l.contains("copy")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("web ") && l.contains("master")), "{table}");

    let missing = http_get(&lab, "/other");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let stats = ok(lab.a.admin(STATS));
    assert_eq!(stats["control"]["scrapes"], 1, "{stats}");
}
