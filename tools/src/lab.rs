//! `vipdrift lab demo | up | down`: the failover lab of the test suite, for
//! people. A client and two nodes, A and B, hang off a bridge; each node runs
//! `vipdrift run` with one VRRPv3 group that owns the VIP 198.51.100.100 on
//! the virtual MAC 00:00:5e:00:01:33.
//!
//! Everything lives in four network namespaces named after `--prefix`
//! (`PREFIX-sw`, `PREFIX-client`, `PREFIX-a`, `PREFIX-b`) and one state
//! directory (`/run/vipdrift-lab/PREFIX/`: configurations, notify hooks,
//! transition files, logs, pid files, admin sockets). Nothing outside them is
//! touched. Addresses: 198.51.100.0/24 and 2001:db8::/32 only.
//!
//! `demo` builds the lab, fails A over to B and back while the client pings
//! the VIP, explains each step and removes everything, also on Ctrl-C,
//! SIGTERM or a panic. `up` leaves the lab running; `down` removes it,
//! signalling only processes whose command line is `vipdrift run --config`
//! with one of that lab's configurations.

use crate::lab_template::LabNode;
use crate::report;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where every lab keeps its state, one directory per prefix.
const STATE_ROOT: &str = "/run/vipdrift-lab";
/// The VIP the two nodes share.
const VIP: &str = "198.51.100.100";
/// VRRP's virtual MAC for IPv4 VRID 51.
const VMAC: &str = "00:00:5e:00:01:33";
const VRID: u8 = 51;
const CLIENT_IP: &str = "198.51.100.10";
const CLIENT_IP6: &str = "2001:db8::a";
const CLIENT_MAC: &str = "02:00:00:00:00:0a";
const ADVERT_INTERVAL_MS: u32 = 10;
/// The port of the HTTP service each node runs behind the VIP.
const HTTP_PORT: u16 = 8080;
/// `vipdrift probe` spacing: the outage resolution.
const PROBE_INTERVAL_MS: u32 = 2;
/// Milliseconds between the TCP probe's connections to the HTTP service.
const TCP_PROBE_INTERVAL_MS: u32 = 5;
/// How often a traffic line is printed while the client pings.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How often every wait looks at its condition and the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait for a node to reach a state.
const STATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a daemon to exit after SIGTERM, before SIGKILL.
const TERM_TIMEOUT: Duration = Duration::from_secs(5);
const INTERRUPTED: &str = "interrupted (SIGINT or SIGTERM); the lab was removed";
const OUTPUT_GONE: &str = "standard output was closed; the lab was removed";

/// Set when standard output is gone (a closed pipe): the demo then stops
/// and removes the lab instead of panicking in `println!`.
static OUTPUT_LOST: AtomicBool = AtomicBool::new(false);

/// `println!` that never panics; a failed write sets [`OUTPUT_LOST`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            OUTPUT_LOST.store(true, Ordering::Relaxed);
        }
    }};
}

#[derive(Args, Debug)]
pub(crate) struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Subcommand, Debug)]
enum LabCommand {
    /// Build the lab, fail node A over to B and back while a client pings the
    /// VIP, explain every step, then remove everything (about 20 s; root).
    Demo(PrefixArg),
    /// Build the lab and leave both daemons running in the background to
    /// explore; `vipdrift lab down` removes it (root).
    Up(PrefixArg),
    /// Stop the lab's daemons, delete its namespaces and its state directory;
    /// safe to repeat (root).
    Down(PrefixArg),
}

#[derive(Args, Debug)]
struct PrefixArg {
    /// Names the lab: namespaces PREFIX-sw, PREFIX-client, PREFIX-a and
    /// PREFIX-b, state in /run/vipdrift-lab/PREFIX/ (1-32 letters, digits,
    /// '-' or '_', starting with a letter).
    #[arg(long, default_value = "vdlab")]
    prefix: String,
}

pub(crate) fn run(args: LabArgs) -> Result<(), String> {
    match args.command {
        LabCommand::Demo(p) => demo(Names::new(&p.prefix)?),
        LabCommand::Up(p) => up(Names::new(&p.prefix)?),
        LabCommand::Down(p) => down(Names::new(&p.prefix)?),
    }
}

// ---------------------------------------------------------------------------
// Names: the lab's namespaces and files, all derived from the prefix.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    A,
    B,
}

/// What a lab node is: its names, addresses and priority.
struct NodeFacts {
    label: &'static str,
    /// Its namespace suffix and file name stem.
    stem: &'static str,
    iface: &'static str,
    /// Its port on the bridge.
    port: &'static str,
    mac: &'static str,
    port_mac: &'static str,
    address: &'static str,
    address6: &'static str,
    priority: u8,
}

const NODE_A: NodeFacts = NodeFacts {
    label: "A",
    stem: "a",
    iface: "a0",
    port: "pa",
    mac: "02:00:00:00:00:02",
    port_mac: "02:00:00:00:01:02",
    address: "198.51.100.2",
    address6: "fe80::2",
    priority: 200,
};

const NODE_B: NodeFacts = NodeFacts {
    label: "B",
    stem: "b",
    iface: "b0",
    port: "pb",
    mac: "02:00:00:00:00:03",
    port_mac: "02:00:00:00:01:03",
    address: "198.51.100.3",
    address6: "fe80::3",
    priority: 100,
};

impl Node {
    const BOTH: [Node; 2] = [Node::A, Node::B];

    fn facts(self) -> &'static NodeFacts {
        match self {
            Node::A => &NODE_A,
            Node::B => &NODE_B,
        }
    }

    fn label(self) -> &'static str {
        self.facts().label
    }

    fn stem(self) -> &'static str {
        self.facts().stem
    }

    fn iface(self) -> &'static str {
        self.facts().iface
    }

    fn port(self) -> &'static str {
        self.facts().port
    }

    fn mac(self) -> &'static str {
        self.facts().mac
    }

    fn port_mac(self) -> &'static str {
        self.facts().port_mac
    }

    fn address(self) -> &'static str {
        self.facts().address
    }

    fn address6(self) -> &'static str {
        self.facts().address6
    }

    fn priority(self) -> u8 {
        self.facts().priority
    }
}

struct Names {
    prefix: String,
    /// The state directory.
    dir: PathBuf,
}

impl Names {
    fn new(prefix: &str) -> Result<Names, String> {
        let valid = (1..=32).contains(&prefix.len())
            && prefix.starts_with(|c: char| c.is_ascii_alphabetic())
            && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(format!(
                "--prefix `{prefix}`: use 1 to 32 letters, digits, '-' or '_', starting with a letter (like vdlab)"
            ));
        }
        Ok(Names { prefix: prefix.to_owned(), dir: Path::new(STATE_ROOT).join(prefix) })
    }

    fn switch(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    fn client(&self) -> String {
        format!("{}-client", self.prefix)
    }

    fn node(&self, node: Node) -> String {
        format!("{}-{}", self.prefix, node.stem())
    }

    /// Every namespace the lab creates, in the order they are made.
    fn namespaces(&self) -> [String; 4] {
        [self.switch(), self.client(), self.node(Node::A), self.node(Node::B)]
    }

    fn file(&self, node: Node, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", node.stem()))
    }

    fn config(&self, node: Node) -> PathBuf {
        self.file(node, "toml")
    }

    fn pid_file(&self, node: Node) -> PathBuf {
        self.file(node, "pid")
    }

    fn log(&self, node: Node) -> PathBuf {
        self.file(node, "log")
    }

    /// Where the notify hook appends "GROUP FROM TO REASON" lines.
    fn transitions(&self, node: Node) -> PathBuf {
        self.file(node, "transitions")
    }

    fn hook(&self, node: Node) -> PathBuf {
        self.file(node, "notify.sh")
    }

    /// The directory a node's HTTP service serves.
    fn www(&self, node: Node) -> PathBuf {
        self.dir.join(format!("{}.www", node.stem()))
    }

    fn socket(&self, node: Node) -> PathBuf {
        self.file(node, "sock")
    }

    /// The lab's namespaces that exist now.
    fn existing_namespaces(&self) -> Result<Vec<String>, String> {
        let listed = command("ip", &["netns", "list"])?;
        let present: Vec<&str> = listed.lines().filter_map(|l| l.split_whitespace().next()).collect();
        Ok(self.namespaces().into_iter().filter(|ns| present.contains(&ns.as_str())).collect())
    }

    /// Refuses when any part of the lab is already there.
    fn refuse_if_present(&self) -> Result<(), String> {
        let namespaces = self.existing_namespaces()?;
        if !namespaces.is_empty() || self.dir.exists() {
            let mut what = namespaces.join(", ");
            if self.dir.exists() {
                if !what.is_empty() {
                    what.push_str(" and ");
                }
                what.push_str(&self.dir.display().to_string());
            }
            let flag = if self.prefix == "vdlab" { String::new() } else { format!(" --prefix {}", self.prefix) };
            return Err(format!(
                "a lab named `{}` already exists ({what}); remove it with `vipdrift lab down{flag}`, or pick another --prefix",
                self.prefix
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Running commands.

/// Runs `program args`; returns its stdout, or an error naming the command and its stderr.
fn command(program: &str, args: &[&str]) -> Result<String, String> {
    // Its own process group: a Ctrl-C at the terminal is for vipdrift lab alone.
    let out = Command::new(program).args(args).stdin(Stdio::null()).process_group(0).output().map_err(|e| {
        format!("cannot run `{program}`: {e} (install iproute2 and procps: sudo bash tools/scripts/install-deps.sh)")
    })?;
    if !out.status.success() {
        return Err(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `args` inside namespace `ns`.
fn in_ns(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    command("ip", &full)
}

/// `ip netns exec NS args...`, in its own process group so that a Ctrl-C
/// at the terminal reaches only `vipdrift lab`, which stops what it started.
fn ns_command<S: AsRef<OsStr>>(ns: &str, program: &OsStr, args: impl IntoIterator<Item = S>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program).args(args).stdin(Stdio::null()).process_group(0);
    cmd
}

fn require_root() -> Result<(), String> {
    // The effective UID is the second field of "Uid:" in /proc/self/status.
    let status = fs::read_to_string("/proc/self/status").map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .ok_or("cannot find the effective UID in /proc/self/status")?;
    if euid != "0" {
        return Err("lab needs root: it creates network namespaces and attaches XDP programs \
                    (run it with sudo)"
            .into());
    }
    Ok(())
}

/// `vipdrift status` against a lab node's admin socket: its table, or why not.
fn admin_status(socket: &Path) -> String {
    let output = current_exe().and_then(|exe| {
        Command::new(exe)
            .args(["status", "--socket"])
            .arg(socket)
            .output()
            .map_err(|e| format!("cannot run vipdrift status: {e}"))
    });
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => format!("GROUP (vipdrift status failed: {})", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("GROUP ({e})"),
    }
}

fn current_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the vipdrift binary to run the daemons: {e}"))
}

/// How to print the vipdrift binary in a command to copy: `vipdrift` when
/// that is what PATH finds, else its full path.
fn shown_exe(exe: &Path) -> String {
    let in_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("vipdrift") == exe))
        .unwrap_or(false);
    if in_path {
        "vipdrift".into()
    } else {
        exe.display().to_string()
    }
}

// ---------------------------------------------------------------------------
// Processes: only ours, recognised by their command line.

/// True when `pid` is `vipdrift run --config CONFIG` (a zombie or a gone
/// process has no command line, so it is not).
fn is_lab_daemon(pid: u32, config: &Path) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let mut args: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    if args.last().is_some_and(|a| a.is_empty()) {
        args.pop();
    }
    let [exe, run, flag, file] = args.as_slice() else { return false };
    Path::new(OsStr::from_bytes(exe)).file_name() == Some(OsStr::new("vipdrift"))
        && *run == b"run"
        && *flag == b"--config"
        && *file == config.as_os_str().as_bytes()
}

/// True when `pid` is a node's HTTP service, `python3 -m http.server ...
/// --directory ROOT`, serving `root`.
fn is_lab_service(pid: u32, root: &Path) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = raw.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
    let python = args
        .first()
        .and_then(|exe| Path::new(OsStr::from_bytes(exe)).file_name())
        .is_some_and(|name| name.as_bytes().starts_with(b"python3"));
    python
        && args.windows(2).any(|w| w == [b"-m".as_slice(), b"http.server".as_slice()])
        && args.windows(2).any(|w| w[0] == b"--directory" && w[1] == root.as_os_str().as_bytes())
}

/// Sends `signal` to the single process `pid`; false if it could not.
fn send_signal(pid: u32, signal: i32) -> bool {
    // Never 0, -1 or a negative number: those would signal groups or everyone.
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid <= 1 {
        return false;
    }
    // pid names one process (> 1), which the callers checked is a lab
    // daemon (our own unreaped child, or its command line matched); signal 0
    // only asks whether it is alive.
    let signal = match signal {
        0 => None,
        n => match nix::sys::signal::Signal::try_from(n) {
            Ok(signal) => Some(signal),
            Err(_) => return false,
        },
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).is_ok()
}

/// A daemon to stop: our own child, or one found through a pid file or in a
/// node's namespace, whose command line names that node's configuration.
enum Daemon {
    Own(Node, Child),
    Found(Node, u32, PathBuf),
}

impl Daemon {
    fn node(&self) -> Node {
        match self {
            Daemon::Own(node, _) | Daemon::Found(node, _, _) => *node,
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Daemon::Own(_, child) => child.id(),
            Daemon::Found(_, pid, _) => *pid,
        }
    }

    fn alive(&mut self) -> bool {
        match self {
            Daemon::Own(_, child) => matches!(child.try_wait(), Ok(None)),
            Daemon::Found(_, pid, config) => is_lab_daemon(*pid, config),
        }
    }

    /// Signals it if it is still running (an unreaped child's PID is still ours).
    fn signal(&mut self, signal: i32) {
        if self.alive() {
            send_signal(self.pid(), signal);
        }
    }
}

/// Stops the lab's daemons (ours in `own`, and any recorded in its pid
/// files or running in its node namespaces with its configurations),
/// deletes its namespaces and its state directory. Returns one line per
/// thing removed, and the errors.
fn teardown(names: &Names, own: Vec<(Node, Child)>) -> (Vec<String>, Vec<String>) {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    let mut daemons: Vec<Daemon> = own.into_iter().map(|(node, child)| Daemon::Own(node, child)).collect();
    let namespaces = names.existing_namespaces().unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    for node in Node::BOTH {
        let config = names.config(node);
        let mut candidates: Vec<u32> = Vec::new();
        if let Ok(text) = fs::read_to_string(names.pid_file(node)) {
            candidates.extend(text.trim().parse::<u32>().ok());
        }
        if namespaces.contains(&names.node(node)) {
            if let Ok(pids) = command("ip", &["netns", "pids", &names.node(node)]) {
                candidates.extend(pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
        for pid in candidates {
            let known = daemons.iter().any(|d| d.pid() == pid);
            if !known && is_lab_daemon(pid, &config) {
                daemons.push(Daemon::Found(node, pid, config.clone()));
            }
        }
    }
    // The HTTP services, found in the node namespaces by what they serve.
    for node in Node::BOTH.into_iter().filter(|node| namespaces.contains(&names.node(*node))) {
        let root = names.www(node);
        let pids = command("ip", &["netns", "pids", &names.node(node)]).unwrap_or_default();
        for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            if is_lab_service(pid, &root) && send_signal(pid, libc::SIGTERM) {
                removed.push(format!("stopped the HTTP service on {} (pid {pid})", node.label()));
            }
        }
    }
    // SIGTERM lets a master say goodbye (priority 0) and detach its XDP program.
    daemons.retain_mut(Daemon::alive);
    for daemon in &mut daemons {
        daemon.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + TERM_TIMEOUT;
    while daemons.iter_mut().any(Daemon::alive) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    for mut daemon in daemons {
        let (node, pid) = (daemon.node(), daemon.pid());
        let how = if daemon.alive() {
            daemon.signal(libc::SIGKILL);
            "SIGKILL: it ignored SIGTERM for 5 s"
        } else {
            "SIGTERM"
        };
        match &mut daemon {
            Daemon::Own(_, child) => {
                let _ = child.wait();
            }
            Daemon::Found(_, pid, config) => {
                let deadline = Instant::now() + Duration::from_secs(1);
                while is_lab_daemon(*pid, config) && Instant::now() < deadline {
                    std::thread::sleep(POLL);
                }
            }
        }
        removed.push(format!("stopped vipdrift on {} (pid {pid}, {how})", node.label()));
    }
    for ns in namespaces {
        match command("ip", &["netns", "del", &ns]) {
            Ok(_) => removed.push(format!("deleted namespace {ns}")),
            Err(e) => errors.push(e),
        }
    }
    if names.dir.exists() {
        match fs::remove_dir_all(&names.dir) {
            Ok(()) => removed.push(format!("removed {}", names.dir.display())),
            Err(e) => errors.push(format!("cannot remove {}: {e}", names.dir.display())),
        }
    }
    (removed, errors)
}

// ---------------------------------------------------------------------------
// The lab: built, watched, torn down (on drop too, unless kept).

/// One line of a notify hook's file.
struct Transition {
    from: String,
    to: String,
    reason: String,
}

/// The client's `ping -i 0.1`, its output counted as it streams.
struct Ping {
    child: Child,
    answered: Arc<AtomicU64>,
    unanswered: Arc<AtomicU64>,
    /// Counts at the last progress line.
    shown: (u64, u64),
    next_line: Instant,
}

struct Lab {
    names: Names,
    exe: PathBuf,
    stop: Arc<AtomicBool>,
    started: Instant,
    /// The daemons we started and have not reaped.
    daemons: Vec<(Node, Child)>,
    ping: Option<Ping>,
    probe: Option<Child>,
    /// `vipdrift probe --tcp` against the VIP's HTTP service.
    tcp_probe: Option<Child>,
    /// The nodes' HTTP services we started.
    services: Vec<Child>,
    /// `lab up`: leave everything running when done.
    keep: bool,
    torn_down: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep && !self.torn_down {
            self.tear_down();
        }
    }
}

impl Lab {
    /// Checks what the lab needs, refuses if it exists, and claims its
    /// state directory (made here, so that of two labs started at once with
    /// one prefix, only one goes on); builds nothing yet.
    fn new(names: Names) -> Result<Lab, String> {
        preflight(&names)?;
        let stop = report::stop_on_signals()?;
        let exe = current_exe()?;
        fs::create_dir_all(STATE_ROOT).map_err(|e| format!("cannot create {STATE_ROOT}: {e}"))?;
        fs::create_dir(&names.dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("a lab named `{}` is being made by another vipdrift lab right now", names.prefix)
            }
            _ => format!("cannot create {}: {e}", names.dir.display()),
        })?;
        Ok(Lab {
            names,
            exe,
            stop,
            started: Instant::now(),
            daemons: Vec::new(),
            ping: None,
            probe: None,
            tcp_probe: None,
            services: Vec::new(),
            keep: false,
            torn_down: false,
        })
    }

    /// Builds the lab and runs `steps` on it. On an error (or SIGINT or
    /// SIGTERM, which make every wait fail) the lab is removed first.
    fn run(mut self, steps: impl FnOnce(&mut Lab) -> Result<(), String>) -> Result<(), String> {
        let result = self.build().and_then(|()| steps(&mut self));
        result.map_err(|e| {
            let interrupted = self.stop.load(Ordering::Relaxed);
            if !self.keep && !self.torn_down {
                self.tear_down();
            }
            if interrupted {
                INTERRUPTED.into()
            } else {
                e
            }
        })
    }

    fn build(&mut self) -> Result<(), String> {
        let n = &self.names;
        let (sw, client) = (n.switch(), n.client());
        for ns in n.namespaces() {
            command("ip", &["netns", "add", &ns])?;
            in_ns(&ns, &["ip", "link", "set", "lo", "up"])?;
            // IPv6 on for the hosts, off on the switch (no MLD or router
            // solicitations of its own).
            let ipv6_off = if ns == sw { "1" } else { "0" };
            for scope in ["all", "default"] {
                in_ns(&ns, &["sysctl", "-qw", &format!("net.ipv6.conf.{scope}.disable_ipv6={ipv6_off}")])?;
            }
        }
        command("ip", &["-n", &sw, "link", "add", "br0", "type", "bridge", "stp_state", "0"])?;
        command("ip", &["-n", &sw, "link", "set", "br0", "up"])?;
        let mut links = vec![(client.clone(), "c0", CLIENT_MAC, "pc", "02:00:00:00:01:0a")];
        for node in Node::BOTH {
            links.push((n.node(node), node.iface(), node.mac(), node.port(), node.port_mac()));
        }
        for (ns, iface, mac, port, port_mac) in &links {
            #[rustfmt::skip]
            command("ip", &[
                "link", "add", iface, "netns", ns, "address", mac,
                "type", "veth", "peer", "name", port, "netns", &sw, "address", port_mac,
            ])?;
            command("ip", &["-n", ns, "link", "set", iface, "up"])?;
            command("ip", &["-n", &sw, "link", "set", port, "master", "br0"])?;
            command("ip", &["-n", &sw, "link", "set", port, "up"])?;
        }
        command("ip", &["-n", &client, "addr", "add", &format!("{CLIENT_IP}/24"), "dev", "c0"])?;
        command("ip", &["-n", &client, "addr", "add", &format!("{CLIENT_IP6}/64"), "dev", "c0", "nodad"])?;
        for node in Node::BOTH {
            let address = format!("{}/24", node.address());
            command("ip", &["-n", &n.node(node), "addr", "add", &address, "dev", node.iface()])?;
            self.configure(node)?;
        }
        for node in Node::BOTH {
            self.serve_http(node)?;
        }
        Ok(())
    }

    /// Starts a node's HTTP service on port 8080, every address (the VIP on
    /// `lo` among them), with a page that names the node; waits until it answers.
    fn serve_http(&mut self, node: Node) -> Result<(), String> {
        let n = &self.names;
        let root = n.www(node);
        fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let page = format!("served by {} ({}, {})\n", node.label(), node.iface(), node.address());
        fs::write(root.join("index.html"), page).map_err(|e| format!("cannot write {}: {e}", root.display()))?;
        let log_path = n.file(node, "http.log");
        let log = File::create(&log_path).map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let err = log.try_clone().map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
        let port = HTTP_PORT.to_string();
        let args = [OsStr::new("-m"), OsStr::new("http.server"), OsStr::new(&port), OsStr::new("--bind")];
        let args = args.into_iter().chain([OsStr::new("::"), OsStr::new("--directory"), root.as_os_str()]);
        let child = ns_command(&n.node(node), OsStr::new("python3"), args)
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start the HTTP service on {} (install python3): {e}", node.label()))?;
        self.services.push(child);
        let (ns, own) = (n.node(node), format!("http://{}:{HTTP_PORT}/", node.address()));
        let answered = self.wait_for(STATE_TIMEOUT, |_| in_ns(&ns, &["curl", "-s", "-m", "1", &own]).is_ok())?;
        if !answered {
            return Err(format!("the HTTP service on {} never answered; {}", node.label(), log_tail(&log_path)));
        }
        Ok(())
    }

    /// The client's `curl http://VIP:8080/`: the page, or why there was none.
    fn fetch(&self) -> String {
        let url = format!("http://{VIP}:{HTTP_PORT}/");
        match in_ns(&self.names.client(), &["curl", "-s", "-m", "1", &url]) {
            Ok(page) => format!("\"{}\"", page.trim()),
            Err(_) => "no answer within 1 s".into(),
        }
    }

    /// Writes a node's notify hook and configuration.
    fn configure(&self, node: Node) -> Result<(), String> {
        let n = &self.names;
        let hook = n.hook(node);
        let script = format!(
            "#!/bin/sh\n# vipdrift lab {}: node {}'s notify hook, run as HOOK GROUP FROM TO.\n\
             echo \"$1 $2 $3 $VIPDRIFT_REASON\" >> {}\n",
            n.prefix,
            node.label(),
            n.transitions(node).display()
        );
        let write = |path: &Path, text: &str| {
            fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        write(&hook, &script)?;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", hook.display()))?;
        let header = format!(
            "vipdrift lab {}: node {}. Written by `vipdrift lab`, removed by `vipdrift lab down`.",
            n.prefix,
            node.label()
        );
        let vip = format!("{VIP}/24");
        let config = LabNode {
            header: &header,
            iface: node.iface(),
            address: node.address(),
            address6: node.address6(),
            vrid: VRID,
            priority: node.priority(),
            advert_interval_ms: ADVERT_INTERVAL_MS,
            preempt: true,
            mode: "vmac",
            vips: &[&vip],
            hook: &hook.display().to_string(),
            socket: &n.socket(node).display().to_string(),
        }
        .config();
        write(&n.config(node), &config)
    }

    /// Starts `vipdrift run` on a node (stdin null, stdout and stderr
    /// appended to its log, its PID in its pid file), after clearing its
    /// transition file.
    fn start(&mut self, node: Node) -> Result<(), String> {
        let n = &self.names;
        let _ = fs::remove_file(n.transitions(node));
        let log_path = n.log(node);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let err = log.try_clone().map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
        let config = n.config(node);
        let child = ns_command(
            &n.node(node),
            self.exe.as_os_str(),
            [OsStr::new("run"), OsStr::new("--config"), config.as_os_str()],
        )
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start vipdrift on {}: {e}", node.label()))?;
        let pid = child.id();
        self.daemons.push((node, child));
        fs::write(n.pid_file(node), format!("{pid}\n"))
            .map_err(|e| format!("cannot write {}: {e}", n.pid_file(node).display()))?;
        Ok(())
    }

    /// SIGKILL to a node's daemon (our child), reaped at once.
    fn kill(&mut self, node: Node) -> Result<u32, String> {
        let index =
            self.daemons.iter().position(|(n, _)| *n == node).ok_or(format!("{} is not running", node.label()))?;
        let (_, mut child) = self.daemons.remove(index);
        let pid = child.id();
        child.kill().map_err(|e| format!("cannot kill {} (pid {pid}): {e}", node.label()))?;
        let _ = child.wait();
        let _ = fs::remove_file(self.names.pid_file(node));
        Ok(pid)
    }

    fn pid(&self, node: Node) -> u32 {
        self.daemons.iter().find(|(n, _)| *n == node).map_or(0, |(_, c)| c.id())
    }

    fn transitions(&self, node: Node) -> Vec<Transition> {
        let text = fs::read_to_string(self.names.transitions(node)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace().skip(1);
                let (from, to) = (words.next()?, words.next()?);
                Some(Transition { from: from.into(), to: to.into(), reason: words.next().unwrap_or("?").into() })
            })
            .collect()
    }

    fn state(&self, node: Node) -> String {
        self.transitions(node).pop().map(|t| t.to).unwrap_or_default()
    }

    /// "initialize → backup (startup), backup → master (master_down)".
    fn history(&self, node: Node) -> String {
        let steps: Vec<String> =
            self.transitions(node).iter().map(|t| format!("{} → {} ({})", t.from, t.to, t.reason)).collect();
        steps.join(", ")
    }

    /// Has a daemon we started exited by itself?
    fn check_daemons(&mut self) -> Result<(), String> {
        for (node, child) in &mut self.daemons {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "vipdrift on {} exited unexpectedly ({status}); {}",
                    node.label(),
                    log_tail(&self.names.log(*node))
                ));
            }
        }
        Ok(())
    }

    /// Waits until `ready` holds (true) or `timeout` passes (false),
    /// printing a traffic line every 500 ms while the client pings; an
    /// error on SIGINT/SIGTERM or when a daemon dies.
    fn wait_for(&mut self, timeout: Duration, mut ready: impl FnMut(&mut Lab) -> bool) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(INTERRUPTED.into());
            }
            if OUTPUT_LOST.load(Ordering::Relaxed) {
                return Err(OUTPUT_GONE.into());
            }
            self.check_daemons()?;
            self.progress();
            if ready(self) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }

    fn pause(&mut self, time: Duration) -> Result<(), String> {
        self.wait_for(time, |_| false).map(|_| ())
    }

    /// Waits for `node` to reach `state`, or fails naming its log.
    fn wait_state(&mut self, node: Node, state: &str) -> Result<(), String> {
        if self.wait_for(STATE_TIMEOUT, |lab| lab.state(node) == state)? {
            return Ok(());
        }
        Err(format!(
            "{} did not become {state} within {} s (transitions so far: {}); {}",
            node.label(),
            STATE_TIMEOUT.as_secs(),
            if self.history(node).is_empty() { "none".into() } else { self.history(node) },
            log_tail(&self.names.log(node))
        ))
    }

    fn say(&self, first: &str, more: &[&str]) {
        out!("[{:5.1} s] {first}", self.started.elapsed().as_secs_f64());
        for line in more {
            out!("          {line}");
        }
    }

    /// The bridge's line for the virtual MAC ("00:00:5e:00:01:33 dev pa master br0").
    fn fdb_line(&self) -> Option<String> {
        let fdb = command("bridge", &["-n", &self.names.switch(), "fdb", "show", "br", "br0"]).ok()?;
        fdb.lines().find(|l| l.starts_with(VMAC)).map(|l| l.trim().to_owned())
    }

    /// The bridge port the virtual MAC was last seen on, with its node.
    fn vmac_port(&self) -> String {
        let port = self.fdb_line().and_then(|l| {
            let mut words = l.split_whitespace().skip_while(|w| *w != "dev");
            words.nth(1).map(str::to_owned)
        });
        match port.as_deref() {
            Some(p) => match Node::BOTH.into_iter().find(|n| n.port() == p) {
                Some(node) => format!("{p} ({})", node.label()),
                None => p.to_owned(),
            },
            None => "not learned yet".into(),
        }
    }

    fn neighbour(&self) -> String {
        command("ip", &["-n", &self.names.client(), "neigh", "show", VIP, "dev", "c0"])
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "(no entry)".into())
    }

    /// A traffic line if one is due.
    fn progress(&mut self) {
        let Some(ping) = &mut self.ping else { return };
        if Instant::now() < ping.next_line {
            return;
        }
        ping.next_line += PROGRESS_EVERY;
        let now = (ping.answered.load(Ordering::Relaxed), ping.unanswered.load(Ordering::Relaxed));
        let (answered, unanswered) = (now.0 - ping.shown.0, now.1 - ping.shown.1);
        ping.shown = now;
        let port = self.vmac_port();
        let counts = format!("{answered} of {} answered", answered + unanswered);
        self.say(&format!("  client ping: {counts:<16}  switch: virtual MAC behind port {port}"), &[]);
    }

    /// Starts the client's traffic for `seconds`: `vipdrift probe` every
    /// 2 ms (the measurement) and `ping -i 0.1` (to watch).
    fn start_traffic(&mut self, seconds: u32) -> Result<(), String> {
        let client = self.names.client();
        let duration = seconds.to_string();
        let interval = PROBE_INTERVAL_MS.to_string();
        let probe_args = ["probe", "--target", VIP, "--interval-ms", &interval, "--duration", &duration, "--json"];
        let probe = ns_command(&client, self.exe.as_os_str(), probe_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start vipdrift probe: {e}"))?;
        self.probe = Some(probe);
        let port = HTTP_PORT.to_string();
        let interval = TCP_PROBE_INTERVAL_MS.to_string();
        let tcp_args = ["probe", "--target", VIP, "--tcp", &port, "--interval-ms", &interval, "--duration", &duration];
        let tcp_probe = ns_command(&client, self.exe.as_os_str(), tcp_args.into_iter().chain(["--json"]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start vipdrift probe --tcp: {e}"))?;
        self.tcp_probe = Some(tcp_probe);
        // Bounded by count and by deadline; -O reports each missing reply.
        let count = (seconds * 10).to_string();
        let deadline = (seconds + 1).to_string();
        let ping_args = ["-n", "-O", "-i", "0.1", "-W", "1", "-c", &count, "-w", &deadline, VIP];
        let mut child = ns_command(&client, OsStr::new("ping"), ping_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start ping (install iputils-ping): {e}"))?;
        let answered = Arc::new(AtomicU64::new(0));
        let unanswered = Arc::new(AtomicU64::new(0));
        if let Some(stdout) = child.stdout.take() {
            let (yes, no) = (answered.clone(), unanswered.clone());
            // Ends when ping does (end of its output).
            std::thread::Builder::new()
                .name("vd-lab-ping".into())
                .spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        if line.contains(" bytes from ") {
                            yes.fetch_add(1, Ordering::Relaxed);
                        } else if line.starts_with("no answer yet") {
                            no.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .map_err(|e| format!("cannot start a thread to read ping: {e}"))?;
        }
        self.ping =
            Some(Ping { child, answered, unanswered, shown: (0, 0), next_line: Instant::now() + PROGRESS_EVERY });
        Ok(())
    }

    /// Waits for the probes to finish (printing traffic lines), stops ping,
    /// and returns the echo probe's and the TCP probe's JSON summaries.
    fn finish_traffic(&mut self, seconds: u32) -> Result<(Value, Value), String> {
        let limit = Duration::from_secs(u64::from(seconds) + 10);
        let running = |p: &mut Option<Child>| p.as_mut().is_some_and(|p| matches!(p.try_wait(), Ok(None)));
        let done = self.wait_for(limit, |lab| !running(&mut lab.probe) && !running(&mut lab.tcp_probe))?;
        if let Some(mut ping) = self.ping.take() {
            let _ = ping.child.kill();
            let _ = ping.child.wait();
        }
        let echo = summary_of(self.probe.take(), done, "vipdrift probe")?;
        let tcp = summary_of(self.tcp_probe.take(), done, "vipdrift probe --tcp")?;
        Ok((echo, tcp))
    }

    /// Stops and removes everything, printing what went.
    fn tear_down(&mut self) {
        self.torn_down = true;
        if let Some(mut ping) = self.ping.take() {
            let _ = ping.child.kill();
            let _ = ping.child.wait();
        }
        for mut probe in [self.probe.take(), self.tcp_probe.take()].into_iter().flatten() {
            let _ = probe.kill();
            let _ = probe.wait();
        }
        let (mut removed, errors) = teardown(&self.names, std::mem::take(&mut self.daemons));
        for mut service in std::mem::take(&mut self.services) {
            // Ours, and usually stopped by teardown already: reap it.
            if matches!(service.try_wait(), Ok(None)) {
                let _ = service.kill();
                removed.push(format!("stopped an HTTP service (pid {})", service.id()));
            }
            let _ = service.wait();
        }
        self.say(
            "Removing the lab: stopping the daemons, deleting the namespaces (their interfaces and the bridge",
            &["go with them) and the state directory."],
        );
        for line in removed {
            out!("          {line}");
        }
        for error in errors {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "vipdrift: lab teardown: {error}");
        }
    }
}

/// The JSON summary a finished probe printed (`done`: it finished; else it is killed).
fn summary_of(probe: Option<Child>, done: bool, what: &str) -> Result<Value, String> {
    let Some(mut probe) = probe else { return Err(format!("no {what} was running")) };
    if !done {
        let _ = probe.kill();
    }
    let out = probe.wait_with_output().map_err(|e| format!("cannot read {what}'s output: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{what} printed `{line}`, not its JSON summary: {e}"))
}

/// What `vipdrift probe --tcp` saw of the service: a headline and the gaps.
fn service_outage(summary: &Value) -> Vec<String> {
    let number = |key: &str| summary.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let mut lines = vec![format!(
        "{failed} of {attempted} connections to the service failed (one opened every {TCP_PROBE_INTERVAL_MS} ms); \
         longest wait between two that succeeded: {gap:.1} ms.",
        failed = number("connects_failed"),
        attempted = number("connects_attempted"),
        gap = number("longest_gap_ms"),
    )];
    for g in summary.get("gaps").and_then(Value::as_array).into_iter().flatten().take(3) {
        let field = |key: &str| g.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        lines.push(format!(
            "  gap {:.3} s into the probe: {:.1} ms, {} connections failed",
            field("start_s"),
            field("ms"),
            g.get("lost").and_then(Value::as_u64).unwrap_or(0)
        ));
    }
    lines
}

/// "the end of its log (PATH): LINES", for errors about a daemon.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("\n  ");
    format!("the end of its log ({}):\n  {tail}", path.display())
}

/// What must hold before a lab is built: root, and no lab of that name.
fn preflight(names: &Names) -> Result<(), String> {
    require_root()?;
    names.refuse_if_present()
}

/// Why a transition happened, for a newcomer.
fn explain(reason: &str) -> &'static str {
    match reason {
        "startup" => "it starts as a backup and listens for a master",
        "master_down" => "no advertisement from a master for three intervals (plus a skew), so it took the VIP",
        "preempted" => "a router with a higher priority took over (preemption)",
        "shutdown" => "its master said goodbye with a priority-0 advertisement",
        "link_down" => "its link went down",
        "link_up" => "its link came back",
        "owner_startup" => "it owns the VIP's address",
        _ => "see its log",
    }
}

/// The outage in a probe's JSON summary: a headline ("17 of 3500 echoes
/// lost ... = 34 ms without service") and detail lines (the longest wait
/// between replies, then the gaps).
fn outage(summary: &Value) -> (String, Vec<String>) {
    let number = |key: &str| summary.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let line = format!(
        "{lost} of {sent} echoes lost (one sent every {PROBE_INTERVAL_MS} ms): {lost} × {PROBE_INTERVAL_MS} ms = \
         {outage:.0} ms without service.",
        lost = number("lost"),
        sent = number("sent"),
        outage = number("outage_ms"),
    );
    let mut details = vec![format!("Longest wait between two replies: {:.1} ms.", number("longest_gap_ms"))];
    let gaps = summary.get("gaps").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let field = |g: &Value, key: &str| g.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let (lossy, late): (Vec<&Value>, Vec<&Value>) =
        gaps.iter().partition(|g| g.get("lost").and_then(Value::as_u64).unwrap_or(0) > 0);
    for g in lossy.iter().take(3) {
        details.push(format!(
            "  gap {:.3} s into the probe: {:.1} ms, {} echoes lost",
            field(g, "start_s"),
            field(g, "ms"),
            g.get("lost").and_then(Value::as_u64).unwrap_or(0)
        ));
    }
    if lossy.len() > 3 {
        details.push(format!("  and {} more gaps with losses", lossy.len() - 3));
    }
    if !late.is_empty() {
        let longest = late.iter().map(|g| field(g, "ms")).fold(0.0, f64::max);
        let pauses = match late.len() {
            1 => format!("1 pause of {longest:.1} ms"),
            n => format!("{n} pauses of up to {longest:.1} ms"),
        };
        let plus = if lossy.is_empty() { "" } else { "plus " };
        details.push(format!("  {plus}{pauses} where replies came late but none were lost"));
    }
    (line, details)
}

// ---------------------------------------------------------------------------
// The subcommands.

fn demo(names: Names) -> Result<(), String> {
    let lab = Lab::new(names)?;
    out!("vipdrift lab demo: two servers share one IP address; one dies and the other takes over in milliseconds.");
    out!("Everything runs in network namespaces named {}-*, removed at the end (also on Ctrl-C).", lab.names.prefix);
    out!();
    lab.run(demo_steps)
}

fn demo_steps(lab: &mut Lab) -> Result<(), String> {
    let n = &lab.names;
    let (client, a, b) = (n.client(), n.node(Node::A), n.node(Node::B));
    lab.say(
        &format!("Built the lab: a switch (namespace {}, bridge br0) with three machines plugged in:", n.switch()),
        &[
            &format!("a client ({client}, {CLIENT_IP}) and two servers, A ({a}, .2) and B ({b}, .3)."),
            &format!("The client uses {VIP}, a virtual IP (VIP): the service's address, not one server's."),
        ],
    );

    lab.start(Node::A)?;
    lab.say(
        &format!("Starting vipdrift on A (pid {}), priority 200.", lab.pid(Node::A)),
        &[
            "It speaks VRRP (Virtual Router Redundancy Protocol): the servers of a group elect one master,",
            "which answers for the VIP, while the others stand by as backups.",
        ],
    );
    lab.wait_state(Node::A, "master")?;
    lab.say(
        &format!("A is master: {}.", lab.history(Node::A)),
        &[
            &format!("It answers for {VIP} with the virtual MAC {VMAC} (VRRP's MAC for group {VRID}),"),
            &format!("and multicasts an advertisement every {ADVERT_INTERVAL_MS} ms: \"I am master, priority 200\"."),
        ],
    );

    lab.start(Node::B)?;
    lab.say(
        &format!("Starting vipdrift on B (pid {}), priority 100.", lab.pid(Node::B)),
        &["It hears A's advertisements; A's priority is higher, so B stays backup, ready to take over."],
    );
    lab.wait_state(Node::B, "backup")?;
    lab.say(&format!("B is backup: {}.", lab.history(Node::B)), &[]);
    lab.pause(Duration::from_millis(500))?;

    // Failover: A dies, B takes over.
    const FAILOVER_S: u32 = 9;
    lab.start_traffic(FAILOVER_S)?;
    lab.say(
        &format!("The client pings {VIP} ten times a second; every 0.5 s a line shows what came back"),
        &[
            "and the switch port the virtual MAC is behind (from the bridge's forwarding table).",
            &format!("Meanwhile `vipdrift probe` sends an echo every {PROBE_INTERVAL_MS} ms to measure any outage precisely."),
        ],
    );
    lab.pause(Duration::from_millis(2800))?;
    lab.say(
        "The client found the VIP's MAC through ARP, as for any address. Its neighbour entry:",
        &[&lab.neighbour(), &format!("The switch: {}", lab.fdb_line().unwrap_or_default())],
    );
    lab.say(
        &format!("Each server runs a web service on port {HTTP_PORT} (python3's http.server). The client fetches"),
        &[
            &format!("http://{VIP}:{HTTP_PORT}/: {}", lab.fetch()),
            "vipdrift answers ARP for the VIP and lets the master's own kernel serve its TCP: the VIP sits on",
            "A's loopback, and A's steering program passes the VIP's traffic to the kernel only while A is master",
            "and its workers keep renewing a lease. `vipdrift probe --tcp` now opens a connection every 5 ms.",
        ],
    );
    lab.pause(Duration::from_millis(200))?;
    let killed = Instant::now();
    let pid = lab.kill(Node::A)?;
    lab.say(
        &format!("Killing A with SIGKILL (pid {pid}): no goodbye message, as if it lost power."),
        &["B notices when three advertisements in a row are missing."],
    );
    lab.wait_state(Node::B, "master")?;
    let after_kill = killed.elapsed().as_secs_f64() * 1e3;
    let takeover = lab.transitions(Node::B).pop().map(|t| (t.from, t.reason)).unwrap_or_default();
    lab.say(
        &format!("B took over: {} → master, reason {} ({after_kill:.0} ms after the kill).", takeover.0, takeover.1),
        &[
            &format!("Why: {}.", explain(&takeover.1)),
            "B now answers for the VIP from the same virtual MAC; its frames teach the switch the new port.",
        ],
    );
    lab.say(&format!("The client fetches the page again: {}", lab.fetch()), &[]);
    lab.pause(Duration::from_millis(1500))?;
    lab.say(
        "The client's neighbour entry did not change: same virtual MAC, nothing to relearn.",
        &[&lab.neighbour(), &format!("Only the switch port moved (pa → pb): {}", lab.fdb_line().unwrap_or_default())],
    );
    let (first, first_tcp) = lab.finish_traffic(FAILOVER_S)?;
    let (line, mut details) = outage(&first);
    details.insert(0, line);
    details.extend(service_outage(&first_tcp));
    let details: Vec<&str> = details.iter().map(String::as_str).collect();
    lab.say("The failover as vipdrift probe measured it (echo, then the web service):", &details);
    let status = admin_status(&lab.names.socket(Node::B));
    let status: Vec<&str> = status.lines().skip_while(|l| !l.starts_with("GROUP")).collect();
    lab.say(
        &format!("What B's daemon reports (`vipdrift status --socket {}`):", lab.names.socket(Node::B).display()),
        &status,
    );

    // Preemption: A returns and takes the VIP back.
    const RETURN_S: u32 = 6;
    lab.start_traffic(RETURN_S)?;
    lab.pause(Duration::from_millis(1500))?;
    lab.start(Node::A)?;
    lab.say(
        &format!("Restarting A (pid {}). It has the higher priority and preempt = true:", lab.pid(Node::A)),
        &[
            "it ignores B's lower-priority advertisements, takes over after three intervals,",
            "and B, hearing A's higher priority, steps down to backup.",
        ],
    );
    lab.wait_state(Node::A, "master")?;
    lab.wait_state(Node::B, "backup")?;
    let stepped_down = lab.transitions(Node::B).pop().map(|t| t.reason).unwrap_or_default();
    lab.say(
        &format!("A is master again: {}.", lab.history(Node::A)),
        &[&format!("B: master → backup, reason {stepped_down}: {}.", explain(&stepped_down))],
    );
    lab.pause(Duration::from_millis(1000))?;
    lab.say(
        "The switch port moved back (pb → pa); the client's entry is still the virtual MAC:",
        &[&lab.fdb_line().unwrap_or_default(), &lab.neighbour()],
    );
    lab.say(&format!("The client fetches the page: {}", lab.fetch()), &[]);
    let (second, second_tcp) = lab.finish_traffic(RETURN_S)?;
    let (line, mut details) = outage(&second);
    details.insert(0, line);
    details.extend(service_outage(&second_tcp));
    let details: Vec<&str> = details.iter().map(String::as_str).collect();
    lab.say("The hand-back as vipdrift probe measured it (echo, then the web service):", &details);

    lab.tear_down();
    let total = lab.started.elapsed().as_secs_f64();
    let ms = |v: &Value| v.get("outage_ms").and_then(Value::as_f64).unwrap_or(0.0);
    out!();
    out!(
        "Done in {total:.0} s. Failover: about {:.0} ms without service; hand-back: about {:.0} ms.",
        ms(&first),
        ms(&second)
    );
    out!("The client changed nothing: the VIP kept its MAC, and the switch learned the new port.");
    out!("To explore the same lab yourself: sudo {} lab up", shown_exe(&lab.exe));
    Ok(())
}

fn up(names: Names) -> Result<(), String> {
    Lab::new(names)?.run(up_steps)
}

fn up_steps(lab: &mut Lab) -> Result<(), String> {
    lab.start(Node::A)?;
    lab.wait_state(Node::A, "master")?;
    lab.start(Node::B)?;
    lab.wait_state(Node::B, "backup")?;
    // From here on the daemons outlive us: drop our handles without waiting.
    lab.keep = true;
    let pids: Vec<String> = Node::BOTH.iter().map(|n| format!("{} pid {}", n.label(), lab.pid(*n))).collect();
    lab.daemons.clear();
    let n = &lab.names;
    let exe = shown_exe(&lab.exe);
    let flag = if n.prefix == "vdlab" { String::new() } else { format!(" --prefix {}", n.prefix) };
    let dir = n.dir.display();
    out!("vipdrift lab `{}` is up: A is master of {VIP}, B is backup ({}).", n.prefix, pids.join(", "));
    out!("Namespaces:");
    out!("  {:<24} bridge br0, ports pc, pa, pb", n.switch());
    out!("  {:<24} c0 {CLIENT_IP}/24, {CLIENT_IP6}/64", n.client());
    out!("  {:<24} a0 {}/24, vipdrift priority 200, web service on :{HTTP_PORT}", n.node(Node::A), Node::A.address());
    out!("  {:<24} b0 {}/24, vipdrift priority 100, web service on :{HTTP_PORT}", n.node(Node::B), Node::B.address());
    out!("Try:");
    out!("  sudo ip netns exec {} ping {VIP}", n.client());
    out!("  sudo ip netns exec {} curl http://{VIP}:{HTTP_PORT}/     # served by A's kernel", n.client());
    out!(
        "  sudo ip netns exec {} {exe} probe --target {VIP} --interval-ms {PROBE_INTERVAL_MS} --duration 10",
        n.client()
    );
    out!("  sudo kill -9 $(cat {dir}/a.pid)        # fail over to B; restart A with:");
    out!("  sudo ip netns exec {} {exe} run --config {dir}/a.toml", n.node(Node::A));
    out!("  sudo bridge -n {} fdb show br br0 | grep {VMAC}", n.switch());
    out!("  sudo ip -n {} neigh show {VIP} dev c0", n.client());
    out!("  sudo {exe} status --socket {}", n.socket(Node::A).display());
    out!("  sudo {exe} status --socket {}", n.socket(Node::B).display());
    out!("Files in {dir}/: a.toml b.toml (configurations), a.log b.log (the daemons' logs),");
    out!("  a.transitions b.transitions (state changes, from the notify hooks), a.pid b.pid,");
    out!("  a.www b.www and a.http.log b.http.log (the web services' pages and logs).");
    out!("Remove it all: sudo {exe} lab down{flag}");
    Ok(())
}

fn down(names: Names) -> Result<(), String> {
    let (removed, errors) = teardown(&names, Vec::new());
    if removed.is_empty() && errors.is_empty() {
        out!(
            "vipdrift lab down: nothing to remove for `{}` (no namespaces {}, no {}).",
            names.prefix,
            names.namespaces().join(", "),
            names.dir.display()
        );
        return Ok(());
    }
    if !removed.is_empty() {
        out!("vipdrift lab down `{}`:", names.prefix);
        for line in removed {
            out!("  {line}");
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("lab down `{}`: {}", names.prefix, errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefixes_are_checked() {
        assert!(Names::new("vdlab").is_ok());
        assert!(Names::new("vdt1234x0").is_ok());
        assert!(Names::new("a_b-c").is_ok());
        for bad in ["", "1lab", "-lab", "lab/../x", "lab space", "ab.c", &"x".repeat(33)] {
            let err = Names::new(bad).err().unwrap_or_default();
            assert!(err.contains("--prefix"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn names_follow_the_prefix() {
        let n = Names::new("vdlab").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.namespaces(), ["vdlab-sw", "vdlab-client", "vdlab-a", "vdlab-b"]);
        assert_eq!(n.config(Node::B), Path::new("/run/vipdrift-lab/vdlab/b.toml"));
        assert_eq!(n.socket(Node::A), Path::new("/run/vipdrift-lab/vdlab/a.sock"));
    }

    #[test]
    fn only_our_daemons_match() {
        // This test binary is not `vipdrift run --config ...`.
        assert!(!is_lab_daemon(std::process::id(), Path::new("/run/vipdrift-lab/vdlab/a.toml")));
        assert!(!is_lab_daemon(u32::MAX, Path::new("/run/vipdrift-lab/vdlab/a.toml")));
        assert!(!is_lab_service(std::process::id(), Path::new("/run/vipdrift-lab/vdlab/a.www")));
        assert!(!send_signal(0, 0) && !send_signal(1, 0) && !send_signal(u32::MAX, 0));
    }

    #[test]
    fn outage_reads_the_probe_summary() {
        let summary = json!({
            "sent": 3500, "received": 3483, "lost": 17, "longest_gap_ms": 36.25, "outage_ms": 34.0,
            "gaps": [{ "start_s": 3.0123, "ms": 36.25, "lost": 17 }],
        });
        let (line, details) = outage(&summary);
        assert_eq!(line, "17 of 3500 echoes lost (one sent every 2 ms): 17 × 2 ms = 34 ms without service.");
        assert_eq!(
            details,
            ["Longest wait between two replies: 36.2 ms.", "  gap 3.012 s into the probe: 36.2 ms, 17 echoes lost"]
        );
        let late =
            json!({ "gaps": [{ "start_s": 0.5, "ms": 9.0, "lost": 0 }, { "start_s": 0.9, "ms": 7.5, "lost": 0 }] });
        let (line, details) = outage(&late);
        assert!(line.starts_with("0 of 0 echoes lost"), "{line}");
        assert_eq!(details[1], "  2 pauses of up to 9.0 ms where replies came late but none were lost");
    }
}
