//! `vipdrift lab demo | up | down` end to end: the demo runs and leaves
//! nothing behind, `up` leaves a lab a client can ping and `down` removes it
//! (twice is fine), and SIGINT to a running demo removes everything quickly.
//!
//! Each test uses its own prefix (`vdt<pid>x<n>`), so they run in parallel
//! with each other and the rest of the suite, and a guard runs
//! `vipdrift lab down` for it even when the test fails.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use vipdrift_tests::{require_root, unique_tag, vipdrift_bin, wait_until, Proc};

/// A lab prefix of this test's own; `vipdrift lab down` for it on drop.
struct LabPrefix(String);

impl LabPrefix {
    fn new() -> LabPrefix {
        require_root();
        LabPrefix(format!("vdt{}", unique_tag()))
    }

    fn dir(&self) -> PathBuf {
        PathBuf::from("/run/vipdrift-lab").join(&self.0)
    }

    /// `vipdrift lab COMMAND --prefix P`, within `timeout`.
    fn lab(&self, command: &str, timeout: Duration) -> Output {
        let out = self.spawn(command).wait(timeout);
        println!("--- vipdrift lab {command} --prefix {}: {}", self.0, out.status);
        println!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn spawn(&self, command: &str) -> Proc {
        Proc::spawn(Command::new(vipdrift_bin()).args(["lab", command, "--prefix", &self.0]))
    }

    /// The lab's namespaces that exist (`ip netns list`).
    fn namespaces(&self) -> Vec<String> {
        let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
        let ours = format!("{}-", self.0);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| name.starts_with(&ours))
            .map(str::to_owned)
            .collect()
    }

    /// Live (not zombie) processes whose command line mentions the lab's state directory.
    fn processes(&self) -> Vec<String> {
        let needle = format!("{}/", self.dir().display());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(&needle) && alive(pid) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
        found
    }

    /// Nothing of the lab is left: namespaces, processes, state directory.
    fn assert_gone(&self) {
        assert_eq!(self.namespaces(), Vec::<String>::new(), "namespaces left behind");
        assert_eq!(self.processes(), Vec::<String>::new(), "processes left behind");
        assert!(!self.dir().exists(), "{} left behind", self.dir().display());
    }
}

impl Drop for LabPrefix {
    fn drop(&mut self) {
        let _ = Command::new(vipdrift_bin()).args(["lab", "down", "--prefix", &self.0]).output();
    }
}

/// Running or sleeping, not gone and not a zombie (an exited daemon whose
/// parent, after `lab up` exited, is an init that has not reaped it yet).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_demo_fails_over_and_back_and_leaves_nothing_behind() {
    let lab = LabPrefix::new();
    let out = lab.lab("demo", Duration::from_secs(120));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "lab demo failed: {}", text(&out.stderr));
    assert!(stdout.contains("B took over: backup → master, reason master_down"), "names B's takeover: {stdout}");
    assert!(stdout.contains("ms without service"), "an outage figure: {stdout}");
    assert!(stdout.contains("Longest wait between two replies"), "the longest gap: {stdout}");
    assert!(stdout.contains("00:00:5e:00:01:33 dev pb"), "the virtual MAC moved to B's port: {stdout}");
    assert!(stdout.contains("lladdr 00:00:5e:00:01:33"), "the client's entry holds the virtual MAC: {stdout}");
    assert!(stdout.contains("A is master again"), "A preempted back: {stdout}");
    // The web service behind the VIP, fetched before, during and after the failover.
    let pages: Vec<&str> = stdout.lines().filter_map(|l| l.split("\"served by ").nth(1)).collect();
    assert!(pages.len() >= 3, "three fetches: {stdout}");
    assert!(pages[0].starts_with('A') && pages[1].starts_with('B') && pages[2].starts_with('A'), "{pages:?}");
    assert!(stdout.contains("connections to the service failed"), "the service's dark time: {stdout}");
    lab.assert_gone();
}

#[test]
fn up_leaves_a_lab_to_ping_and_down_removes_it_twice() {
    let lab = LabPrefix::new();
    let out = lab.lab("up", Duration::from_secs(60));
    assert!(out.status.success(), "lab up failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("ip netns exec {}-client ping 198.51.100.100", lab.0)), "{stdout}");
    assert!(stdout.contains(&format!("status --socket {}/a.sock", lab.dir().display())), "{stdout}");
    let pid = |node: &str| -> u32 {
        let path = lab.dir().join(format!("{node}.pid"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.trim().parse().unwrap_or_else(|e| panic!("{}: `{text}`: {e}", path.display()))
    };
    let pids = [pid("a"), pid("b")];
    // The daemons outlived `vipdrift lab up`.
    for pid in pids {
        assert!(alive(pid), "daemon {pid} is not running after lab up");
    }

    let client = format!("{}-client", lab.0);
    let ping = Command::new("ip")
        .args(["netns", "exec", &client, "ping", "-c", "3", "-W", "1", "198.51.100.100"])
        .output()
        .expect("run ping");
    assert!(ping.status.success(), "the client cannot ping the VIP: {}{}", text(&ping.stdout), text(&ping.stderr));

    let out = lab.lab("down", Duration::from_secs(30));
    assert!(out.status.success(), "lab down failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("stopped vipdrift on A (pid {}", pids[0])), "{stdout}");
    assert!(stdout.contains(&format!("stopped vipdrift on B (pid {}", pids[1])), "{stdout}");
    assert!(stdout.contains(&format!("deleted namespace {client}")), "{stdout}");
    for pid in pids {
        assert!(!alive(pid), "daemon {pid} still runs after lab down");
    }
    lab.assert_gone();

    let again = lab.lab("down", Duration::from_secs(30));
    assert!(again.status.success(), "a second lab down failed: {}", text(&again.stderr));
    assert!(text(&again.stdout).contains("nothing to remove"), "{}", text(&again.stdout));
}

#[test]
fn sigint_stops_the_demo_and_removes_the_lab() {
    let lab = LabPrefix::new();
    let demo = lab.spawn("demo");
    // A few seconds in: both daemons up and the client's traffic running.
    let transitions = |node: &str| std::fs::read_to_string(lab.dir().join(format!("{node}.transitions")));
    let ready = wait_until(Duration::from_secs(30), || {
        transitions("a").is_ok_and(|t| t.contains(" master ")) && transitions("b").is_ok_and(|t| t.contains(" backup "))
    });
    std::thread::sleep(Duration::from_millis(2500));
    demo.signal(libc::SIGINT);
    let interrupted = Instant::now();
    let out = demo.wait(Duration::from_secs(15));
    let took = interrupted.elapsed();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    println!("{stdout}\n{stderr}\nexited {:.2} s after SIGINT: {}", took.as_secs_f64(), out.status);
    assert!(ready, "the demo never had A master and B backup: {stdout}{stderr}");
    // Documented: an interrupted demo exits 1 after removing the lab.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stdout.contains("Removing the lab"), "{stdout}");
    assert!(took < Duration::from_secs(8), "took {took:?} to stop");
    lab.assert_gone();
}
