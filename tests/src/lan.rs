//! One topology builder for the end-to-end tests: hosts in namespaces of
//! their own, each with one veth into a bridge in a switch namespace, all
//! removed when the [`Lan`] drops (also when the test panics).
//!
//! ```no_run
//! use vipdrift_tests::lan::Lan;
//! let lan = Lan::builder()
//!     .host("client", "c0", "02:00:00:00:00:0a", "198.51.100.10/24")
//!     .host("a", "a0", "02:00:00:00:00:02", "198.51.100.2/24")
//!     .build();
//! lan.host("client").ns.exec_ok(&["ping", "-c1", "198.51.100.2"]);
//! ```

use crate::{unique_tag, NetNs, Proc, Veth};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// One host on the LAN.
pub struct Host {
    /// Its role, as the test names it ("client", "lb1", …).
    pub role: String,
    /// Its namespace.
    pub ns: NetNs,
    /// Its interface.
    pub iface: String,
    /// The interface's MAC.
    pub mac: String,
    /// Its address, without the prefix length (empty if none).
    pub address: String,
    /// Its port on the bridge, in the switch namespace.
    pub port: String,
}

/// Hosts on a bridge.
pub struct Lan {
    /// The switch's namespace, with bridge `br0`.
    pub switch: NetNs,
    hosts: Vec<Host>,
    /// A directory for the test's files, removed on drop.
    pub dir: PathBuf,
    _links: Vec<Veth>,
}

struct Planned {
    role: String,
    iface: String,
    mac: String,
    address: String,
    ipv6: bool,
}

/// What [`Lan::builder`] makes.
#[derive(Default)]
pub struct LanBuilder {
    hosts: Vec<Planned>,
}

impl LanBuilder {
    /// A host `role` with interface `iface` (at most 15 characters with the
    /// test's tag left out: it is the name inside its own namespace), `mac`
    /// and `address` ("ADDRESS/PREFIX", or empty for none); IPv6 off.
    pub fn host(mut self, role: &str, iface: &str, mac: &str, address: &str) -> LanBuilder {
        self.hosts.push(Planned {
            role: role.into(),
            iface: iface.into(),
            mac: mac.into(),
            address: address.into(),
            ipv6: false,
        });
        self
    }

    /// The last host added gets IPv6 (link-local, and what the test adds).
    pub fn with_ipv6(mut self) -> LanBuilder {
        if let Some(last) = self.hosts.last_mut() {
            last.ipv6 = true;
        }
        self
    }

    /// Creates the namespaces, the bridge and the links.
    pub fn build(self) -> Lan {
        let tag = unique_tag();
        let dir = std::env::temp_dir().join(format!("vd-lan-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let switch = NetNs::new("sw", &tag);
        switch.exec_ok(&["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0"]);
        switch.exec_ok(&["ip", "link", "set", "br0", "up"]);
        // A switch forwards frames without reading their IP headers. Where
        // br_netfilter is loaded, a bridge would check and drop malformed
        // IPv4 itself (a truncated datagram never reached the hosts), so
        // the tests' switch turns that off; the sysctls exist only then.
        for family in ["iptables", "ip6tables", "arptables"] {
            let _ = switch.exec(&["sysctl", "-qw", &format!("net.bridge.bridge-nf-call-{family}=0")]);
        }
        let mut hosts = Vec::new();
        let mut links = Vec::new();
        for (i, plan) in self.hosts.into_iter().enumerate() {
            let ns = NetNs::new(&plan.role, &tag);
            if plan.ipv6 {
                ns.set_ipv6(true);
            }
            let port = format!("p{i}");
            links.push(Veth::new(&ns, &plan.iface, &plan.mac, &switch, &port, &format!("02:00:00:ff:00:{i:02x}")));
            switch.exec_ok(&["ip", "link", "set", &port, "master", "br0"]);
            let address = match plan.address.split_once('/') {
                Some((address, _)) => {
                    ns.exec_ok(&["ip", "addr", "add", &plan.address, "dev", &plan.iface]);
                    address.to_owned()
                }
                None => String::new(),
            };
            hosts.push(Host { role: plan.role, ns, iface: plan.iface, mac: plan.mac, address, port });
        }
        Lan { switch, hosts, dir, _links: links }
    }
}

impl Lan {
    /// Plans a LAN.
    pub fn builder() -> LanBuilder {
        LanBuilder::default()
    }

    /// The host named `role`.
    pub fn host(&self, role: &str) -> &Host {
        self.hosts.iter().find(|h| h.role == role).unwrap_or_else(|| panic!("no host {role} on this LAN"))
    }

    /// Every host.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Takes the host's switch port down (or up): its link goes, as when a
    /// cable is pulled at the switch.
    pub fn set_port(&self, role: &str, up: bool) {
        let port = &self.host(role).port;
        self.switch.exec_ok(&["ip", "link", "set", port, if up { "up" } else { "down" }]);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process inside a namespace that the test talks to on its standard
/// input and reads line by line; killed on drop.
pub struct Interactive {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Interactive {
    /// Starts `args` in `ns` with piped stdin and stdout (stderr inherited,
    /// so it shows in the test's output).
    pub fn spawn(ns: &NetNs, args: &[&str]) -> Interactive {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?} in {}: {e}", ns.name()));
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Interactive { child, stdin, lines }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line to its standard input.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the process");
        stdin.flush().expect("flush");
    }

    /// The next line it prints, waiting up to `timeout`.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Sends `line` and parses the next line printed as JSON.
    pub fn ask(&mut self, line: &str) -> serde_json::Value {
        self.send(line);
        let reply = self.line(Duration::from_secs(5)).unwrap_or_else(|| panic!("no answer to {line:?}"));
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("answer {reply:?} to {line:?} is not JSON: {e}"))
    }

    /// Sends a signal.
    pub fn signal(&self, signal: i32) {
        Proc::signal_pid(self.child.id(), signal);
    }

    /// Waits up to `timeout` for it to exit; its last line printed, parsed as JSON.
    pub fn wait_summary(mut self, timeout: Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(matches!(self.child.try_wait(), Ok(Some(s)) if s.success()), "did not exit cleanly in time");
        let mut last = None;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            last = Some(line);
        }
        let last = last.expect("a summary line");
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("summary {last:?} is not JSON: {e}"))
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
