//! keepalived as a peer and as the reference: Debian's keepalived speaking
//! VRRPv3 at 10 ms adverts in a lab node's namespace, its VIPs on the
//! node's interface (keepalived's usual kernel VIP), with its own pid files
//! and a notify hook that appends "INSTANCE NAME STATE PRIO".

use crate::{wait_until, write_script, NetNs, Proc};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A running keepalived (VRRP only); stopped on drop.
pub struct Keepalived {
    proc: Option<Proc>,
    log: PathBuf,
}

impl Keepalived {
    /// keepalived in `ns` on `iface`, VRID 51 at `priority`, holding `vips`
    /// ("ADDRESS/PREFIX"); its files go to `dir`, named after `iface`.
    pub fn start(ns: &NetNs, dir: &Path, iface: &str, priority: u8, vips: &[&str]) -> Keepalived {
        let log = dir.join(format!("keepalived-{iface}.transitions"));
        let hook = dir.join(format!("keepalived-{iface}.notify.sh"));
        write_script(&hook, &format!("echo \"$@\" >> {}", log.display()));
        let config = dir.join(format!("keepalived-{iface}.conf"));
        let vips: String = vips.iter().map(|v| format!("        {v}\n")).collect();
        std::fs::write(
            &config,
            format!(
                r#"global_defs {{
    router_id vd-{iface}
    script_user root
    vrrp_version 3
}}
vrrp_instance VI_51 {{
    state BACKUP
    interface {iface}
    virtual_router_id 51
    priority {priority}
    advert_int 0.01
    virtual_ipaddress {{
{vips}    }}
    notify "{hook}"
}}
"#,
                hook = hook.display()
            ),
        )
        .unwrap();
        let pid = |name: &str| dir.join(format!("keepalived-{iface}{name}")).to_string_lossy().into_owned();
        let (main_pid, vrrp_pid, checkers_pid) = (pid(".pid"), pid("-vrrp.pid"), pid("-check.pid"));
        let proc = ns.spawn(&[
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--vrrp",
            "--use-file",
            config.to_str().unwrap(),
            "--pid",
            &main_pid,
            "--vrrp_pid",
            &vrrp_pid,
            "--checkers_pid",
            &checkers_pid,
        ]);
        Keepalived { proc: Some(proc), log }
    }

    /// The state of the last notify line (MASTER, BACKUP, FAULT, STOP).
    pub fn state(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().last().and_then(|l| l.split_whitespace().nth(2).map(str::to_owned)).unwrap_or_default()
    }

    pub fn wait_state(&self, state: &str) -> bool {
        wait_until(Duration::from_secs(5), || self.state() == state)
    }

    /// The PIDs of its processes: the parent and its VRRP child (the one
    /// that runs the protocol).
    pub fn pids(&self) -> Vec<u32> {
        let Some(parent) = self.proc.as_ref().map(Proc::pid) else { return Vec::new() };
        let out = std::process::Command::new("pgrep").args(["-P", &parent.to_string()]).output();
        let children: Vec<u32> = out
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default();
        std::iter::once(parent).chain(children).collect()
    }

    /// Sends `signal` to each of its processes (as `kill -9 $(pidof
    /// keepalived)` would), the VRRP child first: a parent that goes first
    /// would have its child told to shut down gracefully.
    pub fn signal_all(&self, signal: i32) {
        for pid in self.pids().into_iter().rev() {
            Proc::signal_pid(pid, signal);
        }
    }

    /// Sends `signal` to the parent alone (SIGTERM: the graceful stop).
    pub fn signal(&self, signal: i32) {
        if let Some(proc) = &self.proc {
            proc.signal(signal);
        }
    }

    /// SIGTERM; returns everything it logged.
    pub fn stop(&mut self) -> String {
        let proc = self.proc.take().expect("running");
        proc.signal(libc::SIGTERM);
        let out = proc.wait(Duration::from_secs(10));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Keepalived {
    /// Every process it started goes, its VRRP child included (killing the
    /// parent alone would leave the child running).
    fn drop(&mut self) {
        self.signal_all(libc::SIGCONT);
        self.signal_all(libc::SIGKILL);
    }
}
