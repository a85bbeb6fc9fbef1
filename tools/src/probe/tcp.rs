//! `vipdrift probe --tcp PORT`: a fixed-rate TCP connect prober, the dark
//! time a service's clients see. Each probe is one connection: the
//! handshake, then a close. A connect that is refused, unreachable or not
//! established within `--connect-timeout-ms` failed; the gaps are the
//! pauses between successful connects longer than three intervals, from the
//! same accounting as the echo probe ([`ProbeLog`]).
//!
//! The schedule never slows down while connects fail; connections in
//! flight are capped ([`MAX_IN_FLIGHT`]), and a probe due while the cap is
//! reached fails at once and is counted.

use super::{summary_json, Limit, Method, ProbeArgs, ProbeLog, Schedule, GAP_INTERVALS, MAX_SLEEP};
use crate::report;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Connections in flight at most (each holds a file descriptor).
const MAX_IN_FLIGHT: usize = 512;

/// The counters a TCP run adds to the summary, in the order they print.
pub(super) const COUNTS: [&str; 8] = [
    "connects_attempted",
    "connects_succeeded",
    "connects_failed",
    "refused",
    "timed_out",
    "unreachable",
    "other_errors",
    "in_flight_cap",
];

/// Why connects failed.
#[derive(Default)]
struct Failures {
    /// Answered with a reset: something owns the address, nothing listens.
    refused: u64,
    /// No answer within the connect timeout (dropped, or lost on the way).
    timed_out: u64,
    /// An ICMP unreachable, or no route.
    unreachable: u64,
    other_errors: u64,
    /// Due while [`MAX_IN_FLIGHT`] connects were still open.
    in_flight_cap: u64,
    /// Attempts made a whole interval or more after their time.
    late_sends: u64,
}

impl Failures {
    fn count(&mut self, error: &std::io::Error) {
        match error.kind() {
            ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => self.refused += 1,
            ErrorKind::TimedOut => self.timed_out += 1,
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => self.unreachable += 1,
            _ => self.other_errors += 1,
        }
    }
}

/// One connect in flight.
struct Attempt {
    stream: TcpStream,
    deadline: Instant,
}

/// What one readiness event on an attempt says.
enum Outcome {
    Connected,
    Failed(std::io::Error),
    /// Not yet (a spurious wake-up).
    Pending,
}

fn outcome(stream: &TcpStream) -> Outcome {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Outcome::Failed(e),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Outcome::Connected,
        Err(e) if e.kind() == ErrorKind::NotConnected => Outcome::Pending,
        Err(e) => Outcome::Failed(e),
    }
}

/// The prober's state between events.
struct Prober {
    poll: Poll,
    target: SocketAddr,
    timeout: Duration,
    started: Instant,
    log: ProbeLog,
    failures: Failures,
    in_flight: HashMap<u64, Attempt>,
}

impl Prober {
    /// Starts connect `seq`.
    fn attempt(&mut self, seq: u64, now: Instant) -> Result<(), String> {
        self.log.on_send(seq, now - self.started);
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.failures.in_flight_cap += 1;
            return Ok(());
        }
        let mut stream = match TcpStream::connect(self.target) {
            Ok(stream) => stream,
            Err(e) if e.kind() == ErrorKind::PermissionDenied || seq == 0 && is_local_error(&e) => {
                return Err(format!("cannot connect to {}: {e}", self.target))
            }
            Err(e) => {
                self.failures.count(&e);
                return Ok(());
            }
        };
        let token = Token(usize::try_from(seq).map_err(|_| "too many probes for this platform".to_owned())?);
        self.poll
            .registry()
            .register(&mut stream, token, Interest::WRITABLE)
            .map_err(|e| format!("cannot watch a connection: {e}"))?;
        self.in_flight.insert(seq, Attempt { stream, deadline: now + self.timeout });
        Ok(())
    }

    /// Waits up to `wait` for connects to finish, then fails those past their deadline.
    fn wait(&mut self, events: &mut Events, wait: Duration) -> Result<(), String> {
        if let Err(e) = self.poll.poll(events, Some(wait)) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(format!("cannot wait for connections: {e}"));
            }
        }
        let at = Instant::now();
        for event in events.iter() {
            let seq = event.token().0 as u64;
            let Some(attempt) = self.in_flight.get(&seq) else { continue };
            match outcome(&attempt.stream) {
                Outcome::Pending => continue,
                Outcome::Connected => {
                    self.log.on_reply(seq, at - self.started);
                }
                Outcome::Failed(e) => self.failures.count(&e),
            }
            self.close(seq);
        }
        let expired: Vec<u64> = self.in_flight.iter().filter(|(_, a)| a.deadline <= at).map(|(&seq, _)| seq).collect();
        for seq in expired {
            self.failures.timed_out += 1;
            self.close(seq);
        }
        Ok(())
    }

    fn close(&mut self, seq: u64) {
        if let Some(mut attempt) = self.in_flight.remove(&seq) {
            // Dropping the stream closes it; deregistering first keeps the
            // poller from reporting a reused descriptor under an old token.
            let _ = self.poll.registry().deregister(&mut attempt.stream);
        }
    }

    /// The earliest deadline of a connect in flight.
    fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.values().map(|a| a.deadline).min()
    }
}

/// An error from `connect` itself that says the probe cannot work at all
/// (no address of that family, say) rather than that the target is dark.
fn is_local_error(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::AddrNotAvailable | ErrorKind::InvalidInput | ErrorKind::Unsupported)
}

/// Probes `target` with TCP connects every `interval`, and prints the summary.
pub(super) fn run(args: &ProbeArgs, target: SocketAddr, interval: Duration, limit: Limit) -> Result<(), String> {
    if target.port() == 0 {
        return Err("--tcp 0 is not a port".into());
    }
    if args.connect_timeout_ms == 0 {
        return Err("--connect-timeout-ms must be at least 1".into());
    }
    let stop = report::stop_on_signals()?;
    let poll = Poll::new().map_err(|e| format!("cannot create the poller: {e}"))?;
    let timeout = Duration::from_millis(args.connect_timeout_ms);
    let schedule = Schedule::new(interval, limit);
    let started = schedule.started;
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut prober = Prober {
        poll,
        target,
        timeout,
        started,
        log: ProbeLog::new(interval),
        failures: Failures::default(),
        in_flight: HashMap::new(),
    };
    let mut events = Events::with_capacity(256);
    let mut seq: u64 = 0;
    while let Some(due) = schedule.due(seq, &stop) {
        let now = Instant::now();
        if now >= due {
            if schedule.is_late(due, now) {
                prober.failures.late_sends += 1;
            }
            prober.attempt(seq, now)?;
            seq += 1;
            continue;
        }
        let wake = prober.next_deadline().map_or(due, |deadline| deadline.min(due));
        prober.wait(&mut events, wake.saturating_duration_since(now).min(MAX_SLEEP))?;
    }
    let end_of_sending = prober.log.sent_at(seq.saturating_sub(1)).map_or(Duration::ZERO, |t| t + interval);
    // Connects still in flight get their whole timeout (a short one after a signal).
    let interrupted = stop.load(Ordering::Relaxed);
    let linger = if interrupted { interval * GAP_INTERVALS as u32 } else { timeout };
    let deadline = Instant::now() + linger;
    while !prober.in_flight.is_empty() && Instant::now() < deadline {
        prober.wait(&mut events, deadline.saturating_duration_since(Instant::now()).min(MAX_SLEEP))?;
    }
    let unfinished = prober.in_flight.len() as u64;
    prober.failures.timed_out += unfinished;
    let summary = prober.log.finish(end_of_sending);
    let f = &prober.failures;
    let counts = [
        ("connects_attempted", summary.sent),
        ("connects_succeeded", summary.received),
        ("connects_failed", summary.lost),
        ("refused", f.refused),
        ("timed_out", f.timed_out),
        ("unreachable", f.unreachable),
        ("other_errors", f.other_errors),
        ("in_flight_cap", f.in_flight_cap),
        ("late_sends", f.late_sends),
    ];
    let method = Method { name: "tcp", port: Some(target.port()), size: None };
    let report = summary_json(args, target.ip(), &method, interval, &summary, &counts, started_unix, end_of_sending);
    if args.json {
        println!("{report}");
    } else {
        super::print_human(&report);
    }
    Ok(())
}
