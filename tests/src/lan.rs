//! The one topology builder of the end-to-end tests: hosts in namespaces
//! of their own, each NIC either plugged into a bridge in a switch
//! namespace or cabled straight to another host's NIC, all removed when the
//! [`Lan`] drops (also when the test panics).
//!
//! ```no_run
//! use vipdrift_tests::lan::Lan;
//! // Two hosts on a switch.
//! let lan = Lan::builder()
//!     .host("client", "c0", "02:00:00:00:00:0a", "198.51.100.10/24")
//!     .host("a", "a0", "02:00:00:00:00:02", "198.51.100.2/24")
//!     .build();
//! lan.host("client").ns.exec_ok(&["ping", "-c1", "198.51.100.2"]);
//! // Two hosts back to back, IPv6 on, no switch.
//! let pair = Lan::builder()
//!     .host("prober", "p0", "02:00:00:00:00:0a", "198.51.100.1/24").address("2001:db8::1/64").with_ipv6()
//!     .host("target", "t0", "02:00:00:00:00:0b", "198.51.100.2/24").with_ipv6()
//!     .cable(("prober", "p0"), ("target", "t0"))
//!     .build();
//! ```

use crate::{unique_tag, NetNs, Proc, Veth};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// One NIC of a host.
pub struct Nic {
    /// Its name inside the host's namespace.
    pub name: String,
    /// Its MAC.
    pub mac: String,
    /// Its port on the bridge, in the switch namespace; `None` when it is
    /// cabled to another host.
    pub port: Option<String>,
}

/// One host on the LAN.
pub struct Host {
    /// Its role, as the test names it ("client", "lb1", …).
    pub role: String,
    /// Its namespace.
    pub ns: NetNs,
    /// Its NICs, in the order the test added them.
    pub nics: Vec<Nic>,
    /// Its first NIC's first address, without the prefix length (empty if none).
    pub address: String,
}

impl Host {
    /// Its first NIC's name.
    pub fn iface(&self) -> &str {
        &self.nics[0].name
    }

    /// Its first NIC's MAC.
    pub fn mac(&self) -> &str {
        &self.nics[0].mac
    }

    /// The NIC named `name`.
    pub fn nic(&self, name: &str) -> &Nic {
        self.nics.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("{} has no NIC {name}", self.role))
    }

    /// The switch port of the NIC named `name`.
    pub fn port(&self, name: &str) -> &str {
        self.nic(name).port.as_deref().unwrap_or_else(|| panic!("{}'s {name} is cabled, not on the switch", self.role))
    }
}

/// Hosts on a bridge, or cabled to each other.
pub struct Lan {
    /// The switch's namespace, with bridge `br0`, if any NIC is on it.
    switch: Option<NetNs>,
    hosts: Vec<Host>,
    /// A directory for the test's files, removed on drop.
    pub dir: PathBuf,
    _links: Vec<Veth>,
}

struct PlannedNic {
    name: String,
    mac: String,
    addresses: Vec<String>,
    port: Option<String>,
    cabled: bool,
}

struct PlannedHost {
    role: String,
    nics: Vec<PlannedNic>,
    ipv6: bool,
}

/// What [`Lan::builder`] makes.
#[derive(Default)]
pub struct LanBuilder {
    hosts: Vec<PlannedHost>,
    cables: Vec<((String, String), (String, String))>,
}

impl LanBuilder {
    /// A host `role` with a NIC `iface` (at most 15 characters with the
    /// test's tag left out: it is the name inside its own namespace), `mac`
    /// and `address` ("ADDRESS/PREFIX", or empty for none); IPv6 off.
    pub fn host(mut self, role: &str, iface: &str, mac: &str, address: &str) -> LanBuilder {
        self.hosts.push(PlannedHost { role: role.into(), nics: Vec::new(), ipv6: false });
        self.nic(iface, mac, address)
    }

    /// Another NIC on the last host added, on the switch unless cabled.
    pub fn nic(mut self, iface: &str, mac: &str, address: &str) -> LanBuilder {
        let host = self.hosts.last_mut().expect("a host first");
        let addresses = if address.is_empty() { Vec::new() } else { vec![address.to_owned()] };
        host.nics.push(PlannedNic { name: iface.into(), mac: mac.into(), addresses, port: None, cabled: false });
        self
    }

    /// Another address on the last NIC added (IPv6 ones without DAD, so they
    /// are usable at once).
    pub fn address(mut self, address: &str) -> LanBuilder {
        self.last_nic().addresses.push(address.to_owned());
        self
    }

    /// Names the last NIC's port on the bridge (else `p<N>`, N counting every
    /// port made so far).
    pub fn port(mut self, name: &str) -> LanBuilder {
        self.last_nic().port = Some(name.to_owned());
        self
    }

    /// The last host added gets IPv6 (link-local, and what the test adds).
    pub fn with_ipv6(mut self) -> LanBuilder {
        if let Some(last) = self.hosts.last_mut() {
            last.ipv6 = true;
        }
        self
    }

    /// Joins two hosts' NICs, given as (role, NIC), with one veth and no
    /// switch between them.
    pub fn cable(mut self, one: (&str, &str), other: (&str, &str)) -> LanBuilder {
        for (role, nic) in [one, other] {
            let host = self.hosts.iter_mut().find(|h| h.role == role).unwrap_or_else(|| panic!("no host {role}"));
            let nic = host.nics.iter_mut().find(|n| n.name == nic).unwrap_or_else(|| panic!("{role} has no NIC {nic}"));
            assert!(!nic.cabled, "{role}'s {} is cabled twice", nic.name);
            nic.cabled = true;
        }
        self.cables.push(((one.0.into(), one.1.into()), (other.0.into(), other.1.into())));
        self
    }

    fn last_nic(&mut self) -> &mut PlannedNic {
        self.hosts.last_mut().and_then(|h| h.nics.last_mut()).expect("a host first")
    }

    /// Creates the namespaces, the bridge (if any NIC is on it) and the links.
    pub fn build(self) -> Lan {
        let tag = unique_tag();
        let dir = std::env::temp_dir().join(format!("vd-lan-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let switched = self.hosts.iter().flat_map(|h| &h.nics).any(|n| !n.cabled);
        let switch = switched.then(|| {
            let switch = NetNs::new("sw", &tag);
            switch.exec_ok(&["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0"]);
            switch.exec_ok(&["ip", "link", "set", "br0", "up"]);
            // A switch forwards frames without reading their IP headers.
            // Where br_netfilter is loaded, a bridge would check and drop
            // malformed IPv4 itself (a truncated datagram never reached the
            // hosts), so the tests' switch turns that off; the sysctls exist
            // only then.
            for family in ["iptables", "ip6tables", "arptables"] {
                let _ = switch.exec(&["sysctl", "-qw", &format!("net.bridge.bridge-nf-call-{family}=0")]);
            }
            switch
        });
        let mut hosts = Vec::new();
        let mut links = Vec::new();
        let mut ports = 0;
        for plan in &self.hosts {
            let ns = NetNs::new(&plan.role, &tag);
            if plan.ipv6 {
                ns.set_ipv6(true);
            }
            let mut nics = Vec::new();
            for nic in &plan.nics {
                let port = match (&switch, nic.cabled) {
                    (Some(switch), false) => {
                        let port = nic.port.clone().unwrap_or_else(|| format!("p{ports}"));
                        let port_mac = format!("02:00:00:ff:00:{ports:02x}");
                        ports += 1;
                        links.push(Veth::new(&ns, &nic.name, &nic.mac, switch, &port, &port_mac));
                        switch.exec_ok(&["ip", "link", "set", &port, "master", "br0"]);
                        Some(port)
                    }
                    _ => None,
                };
                nics.push(Nic { name: nic.name.clone(), mac: nic.mac.clone(), port });
            }
            hosts.push(Host { role: plan.role.clone(), ns, nics, address: String::new() });
        }
        for ((role_a, nic_a), (role_b, nic_b)) in &self.cables {
            let find = |role: &str| hosts.iter().find(|h| h.role == role).expect("planned");
            let (a, b) = (find(role_a), find(role_b));
            links.push(Veth::new(&a.ns, nic_a, &a.nic(nic_a).mac, &b.ns, nic_b, &b.nic(nic_b).mac));
        }
        // Addresses last: every NIC exists and is up by now.
        for (host, plan) in hosts.iter_mut().zip(&self.hosts) {
            for nic in &plan.nics {
                for address in &nic.addresses {
                    let mut args = vec!["ip", "addr", "add", address, "dev", &nic.name];
                    if address.contains(':') {
                        args.push("nodad");
                    }
                    host.ns.exec_ok(&args);
                }
            }
            let first = plan.nics.first().and_then(|n| n.addresses.first());
            host.address = first.and_then(|a| a.split_once('/')).map(|(a, _)| a.to_owned()).unwrap_or_default();
        }
        Lan { switch, hosts, dir, _links: links }
    }
}

impl Lan {
    /// Plans a LAN.
    pub fn builder() -> LanBuilder {
        LanBuilder::default()
    }

    /// The switch's namespace (bridge `br0`); panics when every NIC is cabled.
    pub fn switch(&self) -> &NetNs {
        self.switch.as_ref().expect("this LAN has no switch: every NIC is cabled")
    }

    /// The host named `role`.
    pub fn host(&self, role: &str) -> &Host {
        self.hosts.iter().find(|h| h.role == role).unwrap_or_else(|| panic!("no host {role} on this LAN"))
    }

    /// Every host.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Takes the host named `role` out of the LAN, for a fixture that owns
    /// its namespace (the links stay; its namespace goes when it drops).
    pub fn take(&mut self, role: &str) -> Host {
        let at = self.hosts.iter().position(|h| h.role == role).unwrap_or_else(|| panic!("no host {role} on this LAN"));
        self.hosts.remove(at)
    }

    /// Takes the host's first NIC's switch port down (or up): its link goes,
    /// as when a cable is pulled at the switch.
    pub fn set_port(&self, role: &str, up: bool) {
        let host = self.host(role);
        let port = host.port(host.iface());
        self.switch().exec_ok(&["ip", "link", "set", port, if up { "up" } else { "down" }]);
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
