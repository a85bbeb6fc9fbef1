//! The failover lab: a client and two nodes on a bridge, in namespaces made
//! for one test, with helpers to start `vipdrift run` on a node, follow its
//! transitions (through its notify hook) and probe the VIP from the client.

#[path = "../../tools/src/lab_template.rs"]
mod template;

use crate::lan::Lan;
use crate::{json_summary, vipdrift_bin, wait_until, write_script, NetNs, Proc};
use std::path::PathBuf;
use std::time::Duration;
use template::LabNode;

pub const CLIENT_MAC: &str = "02:00:00:00:00:0a";
pub const VIP4: &str = "198.51.100.100";
pub const VIP6: &str = "2001:db8::100";
pub const VMAC4: &str = "00:00:5e:00:01:33";
pub const VMAC6: &str = "00:00:5e:00:02:33";
/// The port of the HTTP service [`Node::serve_http`] starts.
pub const HTTP_PORT: u16 = 8080;

pub struct Node {
    /// Its namespace.
    pub ns: NetNs,
    /// Its interface (a0 or b0).
    pub name: &'static str,
    /// The interface's MAC.
    pub mac: &'static str,
    /// Its IPv4 address.
    pub address: &'static str,
    /// Where its configuration and transition log live.
    pub dir: PathBuf,
    /// The running `vipdrift run`, if any.
    pub daemon: Option<Proc>,
}

impl Node {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(format!("{}.toml", self.name))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.transitions", self.name))
    }

    /// The admin API's socket.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join(format!("{}.sock", self.name))
    }

    /// Sends one admin request line over the socket and returns the parsed reply.
    pub fn admin(&self, request: &str) -> serde_json::Value {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(self.socket_path())
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.socket_path().display()));
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(format!("{request}\n").as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?} is not JSON: {e}"))
    }

    /// Runs `vipdrift ARGS --socket <this node's socket>` (the admin CLI) and
    /// returns its output, whatever its exit status.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let socket = self.socket_path();
        std::process::Command::new(vipdrift_bin())
            .args(args)
            .args(["--socket", socket.to_str().unwrap()])
            .output()
            .expect("run vipdrift")
    }

    /// [`Node::cli`], which must succeed; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "vipdrift {} failed: {stderr}", args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes this node's configuration: one group (VRID 51) with `vips`.
    pub fn configure(&self, priority: u8, preempt: bool, mode: &str, vips: &[&str]) {
        std::fs::write(self.config_path(), self.config_text(priority, preempt, mode, vips)).unwrap();
    }

    /// The configuration [`Node::configure`] writes, for tests that add to
    /// it: the same as `vipdrift lab` writes for its nodes.
    pub fn config_text(&self, priority: u8, preempt: bool, mode: &str, vips: &[&str]) -> String {
        let hook = self.dir.join(format!("{}.notify.sh", self.name));
        write_script(&hook, &format!("echo \"$1 $2 $3 $VIPDRIFT_REASON\" >> {}", self.log_path().display()));
        let last = &self.address[self.address.rfind('.').unwrap() + 1..];
        LabNode {
            header: &format!("vipdrift-tests lab: node {}", self.name),
            iface: self.name,
            address: self.address,
            address6: &format!("fe80::{last}"),
            vrid: 51,
            priority,
            advert_interval_ms: 10,
            preempt,
            mode,
            vips,
            hook: &hook.display().to_string(),
            socket: &self.socket_path().display().to_string(),
        }
        .config()
    }

    pub fn start(&mut self) {
        let _ = std::fs::remove_file(self.log_path());
        let bin = vipdrift_bin();
        let config = self.config_path();
        let args = [bin.as_str(), "run", "--config", config.to_str().unwrap(), "--log-format", "json"];
        self.daemon = Some(self.ns.spawn(&args));
    }

    /// Transitions so far, as "GROUP FROM TO REASON" lines from the notify hook.
    pub fn transitions(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path()).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// The state the last transition of the IPv4 group (the first listed) went to.
    pub fn state(&self) -> String {
        self.transitions().last().and_then(|l| l.split_whitespace().nth(2).map(str::to_owned)).unwrap_or_default()
    }

    pub fn wait_state(&self, state: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.state() == state)
    }

    pub fn kill(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.signal(libc::SIGKILL);
            let _ = daemon.wait(Duration::from_secs(5));
        }
    }

    /// Starts an HTTP service on port [`HTTP_PORT`], all addresses (the VIP
    /// on `lo` among them), whose page names this node; stopped on drop.
    pub fn serve_http(&self) -> Proc {
        let root = self.dir.join(format!("www-{}", self.name));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), format!("served by {}\n", self.name)).unwrap();
        let port = HTTP_PORT.to_string();
        let server = self.ns.spawn(&[
            "python3",
            "-m",
            "http.server",
            &port,
            "--bind",
            "::",
            "--directory",
            root.to_str().unwrap(),
        ]);
        let own = format!("http://{}:{HTTP_PORT}/", self.address);
        let ready =
            wait_until(Duration::from_secs(10), || self.ns.exec(&["curl", "-s", "-m", "1", &own]).status.success());
        assert!(ready, "the HTTP service on {} never answered", self.name);
        server
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Proc::pid)
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, signal: i32) {
        if let Some(daemon) = &self.daemon {
            daemon.signal(signal);
        }
    }

    /// The addresses on the node's `lo` other than the loopback ones.
    pub fn loopback_addresses(&self) -> Vec<String> {
        let out = self.ns.exec_ok(&["ip", "-o", "addr", "show", "dev", "lo"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .filter(|a| a != "127.0.0.1/8" && a != "::1/128")
            .collect()
    }

    /// SIGTERM; returns the daemon's JSON summary and its stderr.
    pub fn stop(&mut self) -> (serde_json::Value, String) {
        let daemon = self.daemon.take().expect("running");
        daemon.signal(libc::SIGTERM);
        let out = daemon.wait(Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{} failed: {stderr}", self.name);
        (json_summary(&out), stderr)
    }
}

pub struct Lab {
    /// The client's namespace (c0).
    pub client: NetNs,
    /// Node A (a0).
    pub a: Node,
    /// Node B (b0).
    pub b: Node,
    lan: Lan,
}

impl Lab {
    /// The bridge's namespace (br0, ports pc, pa, pb).
    pub fn switch(&self) -> &NetNs {
        self.lan.switch()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.a.kill();
        self.b.kill();
    }
}

/// Client 198.51.100.10 (c0), node A 198.51.100.2 (a0), node B 198.51.100.3
/// (b0), all on bridge br0 in the switch namespace (ports pc, pa, pb).
pub fn lab() -> Lab {
    // (role, interface, MAC, address, IPv6 address, switch port) of A and B.
    // The IPv6 address puts the client's prefix on the node, so its kernel
    // can answer the client from a kernel-delivered IPv6 VIP.
    const NODES: [(&str, &str, &str, &str, &str, &str); 2] = [
        ("a", "a0", "02:00:00:00:00:02", "198.51.100.2", "2001:db8::2/64", "pa"),
        ("b", "b0", "02:00:00:00:00:03", "198.51.100.3", "2001:db8::3/64", "pb"),
    ];
    let mut builder = Lan::builder()
        .host("cli", "c0", CLIENT_MAC, "198.51.100.10/24")
        .address("2001:db8::a/64")
        .port("pc")
        .with_ipv6();
    for (role, iface, mac, address, address6, port) in NODES {
        builder = builder.host(role, iface, mac, &format!("{address}/24")).address(address6).port(port).with_ipv6();
    }
    let mut lan = builder.build();
    let dir = lan.dir.clone();
    let [a, b] = NODES.map(|(role, name, mac, address, _, _)| Node {
        ns: lan.take(role).ns,
        name,
        mac,
        address,
        dir: dir.clone(),
        daemon: None,
    });
    let client = lan.take("cli").ns;
    Lab { client, a, b, lan }
}

/// Starts A (priority 200) then B (priority 100) and waits for A master, B backup.
pub fn start_pair(lab: &mut Lab, preempt_a: bool, mode: &str, vips: &[&str]) {
    lab.a.configure(200, preempt_a, mode, vips);
    lab.b.configure(100, true, mode, vips);
    lab.a.start();
    assert!(lab.a.wait_state("master", Duration::from_secs(10)), "A never became master: {:?}", lab.a.transitions());
    lab.b.start();
    assert!(lab.b.wait_state("backup", Duration::from_secs(10)), "B never became backup: {:?}", lab.b.transitions());
    // Let B hear a few adverts, and the client resolve the VIP through A.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.a.state(), "master", "A stays master with B running: {:?}", lab.a.transitions());
    assert_eq!(lab.b.state(), "backup", "B stays backup: {:?}", lab.b.transitions());
}

/// `vipdrift probe` from the client against `target`, every 2 ms.
pub fn probe(lab: &Lab, target: &str, seconds: f64) -> Proc {
    let bin = vipdrift_bin();
    let seconds = seconds.to_string();
    lab.client.spawn(&[&bin, "probe", "--target", target, "--interval-ms", "2", "--duration", &seconds, "--json"])
}

pub struct Outage {
    /// Probes sent.
    pub sent: u64,
    /// Probes never answered.
    pub lost: u64,
    /// Longest gap between replies.
    pub longest_gap_ms: f64,
}

pub fn finish_probe(probe: Proc, what: &str) -> Outage {
    let out = probe.wait(Duration::from_secs(30));
    assert!(out.status.success(), "probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let summary = json_summary(&out);
    let outage = Outage {
        sent: summary["sent"].as_u64().unwrap(),
        lost: summary["lost"].as_u64().unwrap(),
        longest_gap_ms: summary["longest_gap_ms"].as_f64().unwrap(),
    };
    println!(
        "{what}: sent {} lost {} (outage {:.1} ms at 2 ms spacing), longest gap between replies {:.1} ms",
        outage.sent,
        outage.lost,
        outage.lost as f64 * 2.0,
        outage.longest_gap_ms
    );
    for gap in summary["gaps"].as_array().into_iter().flatten() {
        println!("  gap at {:.3} s: {:.1} ms, {} lost", gap["start_s"].as_f64().unwrap_or(0.0), gap["ms"], gap["lost"]);
    }
    outage
}

pub fn neighbour_mac(lab: &Lab, ip: &str) -> String {
    lab.client.neighbour_mac(ip, "c0")
}

/// The probe's replies resumed: most of what was sent came back.
pub fn assert_resumed(outage: &Outage, what: &str) {
    assert!(
        outage.sent > 0 && outage.lost * 2 < outage.sent,
        "{what}: traffic did not resume: lost {} of {}",
        outage.lost,
        outage.sent
    );
}
