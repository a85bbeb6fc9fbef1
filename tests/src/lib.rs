//! End-to-end test support: network namespaces and veth pairs made by the
//! test itself (unique names, removed on drop even when the test panics),
//! and the `vipdrift` binary run inside them.
//!
//! Addresses used: 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 only,
//! and only inside namespaces made here.
#![forbid(unsafe_code)]

pub mod keepalived;
pub mod lab;
pub mod lan;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Fails the test (never skips it) when not root: these tests need
/// CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF, and CI runs them as root.
pub fn require_root() {
    let euid = nix::unistd::geteuid().as_raw();
    assert_eq!(euid, 0, "end-to-end tests need root (network namespaces, AF_XDP); run them as root");
}

/// A unique short tag for this test's names: pid and a counter.
pub fn unique_tag() -> String {
    format!("{}x{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// Runs a command and returns its output; panics with the command line and
/// stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is it installed?)"));
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A network namespace, deleted on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `vd-<role>-<tag>` with loopback up and IPv6 off (so the kernel
    /// sends no router solicitations or MLD reports that would add frames to
    /// the counts the tests check).
    pub fn new(role: &str, tag: &str) -> NetNs {
        require_root();
        let name = format!("vd-{role}-{tag}");
        run("ip", &["netns", "add", &name]);
        let ns = NetNs { name };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns.set_ipv6(false);
        ns
    }

    /// Turns IPv6 on (for interfaces made from now on too) or off.
    pub fn set_ipv6(&self, on: bool) {
        let disable = if on { "0" } else { "1" };
        for scope in ["all", "default"] {
            self.exec_ok(&["sysctl", "-qw", &format!("net.ipv6.conf.{scope}.disable_ipv6={disable}")]);
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Runs a command inside and returns its output, whatever its status.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name))
    }

    /// Runs a command inside; panics if it fails.
    pub fn exec_ok(&self, args: &[&str]) -> Output {
        let out = self.exec(args);
        assert!(out.status.success(), "{:?} in {} failed: {}", args, self.name, String::from_utf8_lossy(&out.stderr));
        out
    }

    /// The MAC of `ip` in this namespace's neighbour table on `dev` (empty if none).
    pub fn neighbour_mac(&self, ip: &str, dev: &str) -> String {
        let out = self.exec_ok(&["ip", "neigh", "show", ip, "dev", dev]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).unwrap_or_default().to_owned()
    }

    /// Moves the calling thread into this namespace until the guard drops
    /// (setns changes only the calling thread).
    pub fn enter(&self) -> InNetns {
        let original = File::open("/proc/thread-self/ns/net").expect("open this thread's network namespace");
        let target = File::open(format!("/run/netns/{}", self.name)).expect("open the test's network namespace");
        // setns changes only this thread's namespace.
        if let Err(err) = nix::sched::setns(&target, nix::sched::CloneFlags::CLONE_NEWNET) {
            panic!("setns into {}: {err}", self.name);
        }
        InNetns { original }
    }

    /// Starts a command inside, stdout and stderr piped; killed on drop.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?} in {}: {e}", self.name));
        Proc { child: Some(child) }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// The calling thread inside a network namespace; back in its original one on drop.
pub struct InNetns {
    original: File,
}

impl Drop for InNetns {
    fn drop(&mut self) {
        let back = nix::sched::setns(&self.original, nix::sched::CloneFlags::CLONE_NEWNET);
        if let Err(err) = back {
            if !std::thread::panicking() {
                panic!("setns back: {err}");
            }
        }
    }
}

/// A veth pair with one end in each namespace, both up, with fixed MACs.
pub struct Veth {
    /// Name of the end in the first namespace.
    pub a: String,
    /// Name of the end in the second namespace.
    pub b: String,
}

impl Veth {
    /// Creates `a` in `ns_a` (MAC `mac_a`) and `b` in `ns_b` (MAC `mac_b`).
    pub fn new(ns_a: &NetNs, a: &str, mac_a: &str, ns_b: &NetNs, b: &str, mac_b: &str) -> Veth {
        run(
            "ip",
            &[
                "link",
                "add",
                a,
                "netns",
                ns_a.name(),
                "address",
                mac_a,
                "type",
                "veth",
                "peer",
                "name",
                b,
                "netns",
                ns_b.name(),
                "address",
                mac_b,
            ],
        );
        ns_a.exec_ok(&["ip", "link", "set", a, "up"]);
        ns_b.exec_ok(&["ip", "link", "set", b, "up"]);
        Veth { a: a.to_owned(), b: b.to_owned() }
    }
}

/// A process started by a test; killed (by its PID) on drop if still running.
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    /// Starts `command` with stdin null and stdout and stderr piped; killed on drop.
    pub fn spawn(command: &mut Command) -> Proc {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Proc { child: Some(child) }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal to it.
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            Proc::signal_pid(child.id(), signal);
        }
    }

    /// Sends a signal to a process this test started, by its PID.
    pub fn signal_pid(pid: u32, signal: i32) {
        // The PID is of a child this test started; one that already exited is no error.
        if let (Ok(pid), Ok(signal)) = (i32::try_from(pid), nix::sys::signal::Signal::try_from(signal)) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// Waits up to `timeout` for it to exit; returns its output, or kills it
    /// and panics if it does not exit in time.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("process already waited for");
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return child.wait_with_output().expect("collect output"),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let out = child.wait_with_output().expect("collect output");
                    panic!("process did not exit within {timeout:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `vipdrift` binary: `$VIPDRIFT_BIN`, else target/release/vipdrift,
/// else target/debug/vipdrift (whichever is newer). Panics with what to run
/// when none is built.
pub fn vipdrift_bin() -> String {
    workspace_bin("vipdrift", "VIPDRIFT_BIN", "cargo build --release -p vipdrift-tools")
}

/// A binary of the workspace: `$env`, else the newer of target/release and
/// target/debug; panics saying `build` when there is none.
pub fn workspace_bin(name: &str, env: &str, build: &str) -> String {
    if let Ok(path) = std::env::var(env) {
        return path;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let candidates = [target.join("release").join(name), target.join("debug").join(name)];
    let newest = candidates
        .iter()
        .filter_map(|p| p.metadata().and_then(|m| m.modified()).ok().map(|t| (t, p)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p.clone());
    match newest {
        Some(path) => path.to_string_lossy().into_owned(),
        None => panic!("no {name} binary: run `{build}` first, or set {env}"),
    }
}

/// Parses the last line of `output`'s stdout as the JSON summary.
pub fn json_summary(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary on stdout; stderr: {}", String::from_utf8_lossy(&output.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary `{line}` is not JSON: {e}"))
}

/// Polls `ready` every 50 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// True when an XDP program is attached to `iface` in `ns`.
pub fn has_xdp_program(ns: &NetNs, iface: &str) -> bool {
    let out = ns.exec_ok(&["ip", "-d", "link", "show", "dev", iface]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("prog/xdp") || text.contains(" xdp")
}

/// Writes an executable shell script (a notify hook) to `path`.
pub fn write_script(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("make the script executable");
}
