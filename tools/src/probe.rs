//! `vipdrift probe`: a client-side prober that measures a failover's dark
//! time. It sends ICMP echo requests (or UDP datagrams to an echo server) on
//! a fixed schedule that never slows down while replies are missing (ping
//! backs off to one per 10 ms then), and reports every gap in the replies
//! longer than three intervals. With `--tcp` it opens TCP connections
//! instead, on the same schedule (see [`tcp`]).
//!
//! Only the given target is ever sent to.

mod tcp;

use crate::report;
use clap::Args;
use serde_json::{json, Value};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vipdrift_vmac::checksum::checksum;

/// Shortest interval between probes, in ms.
const MIN_INTERVAL_MS: f64 = 0.1;
/// Longest interval between probes, in ms.
const MAX_INTERVAL_MS: f64 = 60_000.0;
/// Seconds to probe for when neither --count nor --duration is given.
const DEFAULT_DURATION_S: f64 = 10.0;
/// Payload bytes carrying the u64 sequence number and the u64 send time.
const MIN_SIZE: usize = 16;
/// Largest payload (fits an IPv4 or IPv6 datagram with its headers).
const MAX_SIZE: usize = 65_000;
/// A pause between replies longer than this many intervals is a gap.
const GAP_INTERVALS: u64 = 3;
/// Shortest wait for stragglers after the last send.
const MIN_STRAGGLER_WAIT: Duration = Duration::from_millis(200);
/// The last stretch before a send deadline is spun, not slept (sleep overshoots).
const SPIN: Duration = Duration::from_micros(50);
/// Longest single sleep, so that signals are noticed at large intervals.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// How often the receiver thread looks at its stop flag.
const RECV_TIMEOUT: Duration = Duration::from_millis(20);
/// A send blocked this long (full socket buffer) counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_millis(50);

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_TIME_EXCEEDED: u8 = 3;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
/// ICMP echo header: type, code, checksum, identifier, sequence.
const ECHO_HEADER: usize = 8;
const IPV6_HEADER: usize = 40;

#[derive(Args, Debug)]
pub(crate) struct ProbeArgs {
    /// Address to probe: IPv4 or IPv6 (a literal, not a name).
    #[arg(long)]
    target: String,
    /// Milliseconds between probes, a fixed schedule (fractions allowed, at least 0.1).
    #[arg(long, default_value_t = 1.0)]
    interval_ms: f64,
    /// Seconds to probe for (default 10 when --count is not given).
    #[arg(long, conflicts_with = "count")]
    duration: Option<f64>,
    /// Probes to send.
    #[arg(long)]
    count: Option<u64>,
    /// Send UDP datagrams to this port instead of ICMP echo; an echo server
    /// there must send each one back.
    #[arg(long, value_name = "PORT")]
    udp: Option<u16>,
    /// Open a TCP connection to this port instead (the handshake only, then
    /// closed): the service-level dark time. Reports connects attempted and
    /// failed, and the gaps between successful connects.
    #[arg(long, value_name = "PORT", conflicts_with = "udp")]
    tcp: Option<u16>,
    /// With --tcp: a connect not established after this many ms failed.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    connect_timeout_ms: u64,
    /// Payload bytes per probe (at least 16: sequence number and send time).
    #[arg(long, default_value_t = 56)]
    size: usize,
    /// Print the final summary as one JSON object on stdout (and no live lines).
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------------------
// Accounting: pure, driven by times since the probe started.

/// What a reply meant to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The first reply for a sequence number.
    New,
    /// A sequence number already answered.
    Duplicate,
    /// A sequence number never sent.
    Unknown,
}

/// A gap as first seen; its losses are counted at the end, once late
/// replies had their chance.
#[derive(Clone, Debug)]
struct OpenGap {
    start_ns: u64,
    len_ns: u64,
    /// Highest sequence number answered before the gap (none: the gap opens the run).
    after: Option<u64>,
}

/// A pause in the replies longer than three intervals.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Gap {
    /// When it began (the reply before it, or the first send), since the probe started.
    pub(crate) start: Duration,
    pub(crate) length: Duration,
    /// Sequence numbers never answered that were sent after the highest one
    /// answered before the gap and before the gap ended (and not already
    /// counted in an earlier gap).
    pub(crate) lost: u64,
}

/// The end result of a [`ProbeLog`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProbeSummary {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    /// Round-trip times: min, median, max (none without replies).
    pub(crate) rtt: Option<(Duration, Duration, Duration)>,
    /// Longest time without a reply: between consecutive replies, from the
    /// first send to the first reply, and from the last reply to the end of
    /// sending.
    pub(crate) longest_gap: Duration,
    pub(crate) gaps: Vec<Gap>,
}

/// Sends, replies, round-trip times and gaps of one probe run.
pub(crate) struct ProbeLog {
    interval_ns: u64,
    /// Send time of each sequence number (the index).
    sent_ns: Vec<u64>,
    replied: Vec<bool>,
    received: u64,
    duplicates: u64,
    rtts_ns: Vec<u64>,
    last_arrival_ns: Option<u64>,
    highest_replied: Option<u64>,
    longest_gap_ns: u64,
    gaps: Vec<OpenGap>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ProbeLog {
    pub(crate) fn new(interval: Duration) -> ProbeLog {
        ProbeLog {
            interval_ns: nanos(interval).max(1),
            sent_ns: Vec::new(),
            replied: Vec::new(),
            received: 0,
            duplicates: 0,
            rtts_ns: Vec::new(),
            last_arrival_ns: None,
            highest_replied: None,
            longest_gap_ns: 0,
            gaps: Vec::new(),
        }
    }

    /// Records sequence number `seq` sent at `t`; sequence numbers come in
    /// order from 0 (returns false, recording nothing, for any other).
    pub(crate) fn on_send(&mut self, seq: u64, t: Duration) -> bool {
        if seq != self.sent_ns.len() as u64 {
            return false;
        }
        self.sent_ns.push(nanos(t));
        self.replied.push(false);
        true
    }

    /// Records a reply for `seq` arriving at `t`.
    pub(crate) fn on_reply(&mut self, seq: u64, t: Duration) -> Reply {
        let Some(index) = self.index(seq) else {
            return Reply::Unknown;
        };
        if self.replied[index] {
            self.duplicates += 1;
            return Reply::Duplicate;
        }
        self.replied[index] = true;
        self.received += 1;
        let t = nanos(t);
        self.rtts_ns.push(t.saturating_sub(self.sent_ns[index]));
        let previous = self.last_arrival_ns.unwrap_or(self.sent_ns[0]);
        let (len_ns, gap) = self.pause(previous, t);
        self.longest_gap_ns = self.longest_gap_ns.max(len_ns);
        self.gaps.extend(gap);
        self.last_arrival_ns = Some(previous.max(t));
        self.highest_replied = Some(self.highest_replied.map_or(seq, |h| h.max(seq)));
        Reply::New
    }

    /// The send time of `seq`, if sent.
    pub(crate) fn sent_at(&self, seq: u64) -> Option<Duration> {
        self.index(seq).map(|i| Duration::from_nanos(self.sent_ns[i]))
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent_ns.len() as u64
    }

    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    fn index(&self, seq: u64) -> Option<usize> {
        usize::try_from(seq).ok().filter(|i| *i < self.sent_ns.len())
    }

    /// The pause from `from` to `to`: its length, and the gap it is when
    /// longer than three intervals.
    fn pause(&self, from: u64, to: u64) -> (u64, Option<OpenGap>) {
        let len_ns = to.saturating_sub(from);
        let gap = (len_ns > GAP_INTERVALS.saturating_mul(self.interval_ns)).then_some(OpenGap {
            start_ns: from,
            len_ns,
            after: self.highest_replied,
        });
        (len_ns, gap)
    }

    /// The summary, sending having ended at `end_of_sending` (one interval
    /// after the last send, when the next would have gone).
    pub(crate) fn finish(&self, end_of_sending: Duration) -> ProbeSummary {
        let mut longest_gap_ns = self.longest_gap_ns;
        let mut open = self.gaps.clone();
        if let Some(first) = self.sent_ns.first() {
            let (len_ns, gap) = self.pause(self.last_arrival_ns.unwrap_or(*first), nanos(end_of_sending));
            longest_gap_ns = longest_gap_ns.max(len_ns);
            open.extend(gap);
        }
        // A gap's losses: unanswered probes sent after the highest one
        // answered before it, up to its end. Not just up to the reply that
        // ended it: after a dark spell that reply can be an old probe
        // released from a queue (an ARP queue, say) while newer ones were dropped.
        let mut counted = 0;
        let gaps = open
            .iter()
            .map(|g| {
                let from = g.after.map_or(0, |a| a as usize + 1).max(counted);
                let to = self.sent_ns.partition_point(|t| *t < g.start_ns.saturating_add(g.len_ns)).max(from);
                counted = to;
                let lost = self.replied[from..to].iter().filter(|r| !**r).count() as u64;
                Gap { start: Duration::from_nanos(g.start_ns), length: Duration::from_nanos(g.len_ns), lost }
            })
            .collect();
        let sent = self.sent();
        let rtt = (!self.rtts_ns.is_empty()).then(|| {
            let mut sorted = self.rtts_ns.clone();
            sorted.sort_unstable();
            let n = sorted.len();
            let median = if n % 2 == 1 { sorted[n / 2] } else { sorted[n / 2 - 1] / 2 + sorted[n / 2] / 2 };
            (Duration::from_nanos(sorted[0]), Duration::from_nanos(median), Duration::from_nanos(sorted[n - 1]))
        });
        ProbeSummary {
            sent,
            received: self.received,
            lost: sent - self.received,
            duplicates: self.duplicates,
            rtt,
            longest_gap: Duration::from_nanos(longest_gap_ns),
            gaps,
        }
    }
}

// ---------------------------------------------------------------------------
// Wire formats.

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

/// How probes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Icmp,
    Udp(u16),
}

/// What the receiver thread saw.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// A reply carrying a sequence number and the send time it was sent with.
    Reply { seq: u64, sent_ns: u64, at: Instant },
    /// An ICMP error (unreachable, time exceeded) quoting one of our echo requests.
    IcmpError,
}

/// Builds probes and recognises their replies.
#[derive(Clone, Copy, Debug)]
struct Wire {
    target: IpAddr,
    mode: Mode,
    ident: u16,
    size: usize,
}

impl Wire {
    /// Writes probe `seq`, sent at `sent_ns`, into `buf`.
    fn probe(&self, buf: &mut Vec<u8>, seq: u64, sent_ns: u64) {
        buf.clear();
        if self.mode == Mode::Icmp {
            let kind = if self.target.is_ipv4() { ICMP_ECHO_REQUEST } else { ICMPV6_ECHO_REQUEST };
            buf.extend_from_slice(&[kind, 0, 0, 0]);
            buf.extend_from_slice(&self.ident.to_be_bytes());
            buf.extend_from_slice(&(seq as u16).to_be_bytes());
        }
        let payload_at = buf.len();
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&sent_ns.to_be_bytes());
        buf.extend((MIN_SIZE..self.size).map(|i| i as u8));
        debug_assert_eq!(buf.len() - payload_at, self.size);
        // The kernel fills ICMPv6 checksums on raw ICMPv6 sockets; ICMPv4's is ours.
        if self.mode == Mode::Icmp && self.target.is_ipv4() {
            let sum = checksum(buf);
            buf[2..4].copy_from_slice(&sum.to_be_bytes());
        }
    }

    /// Recognises a datagram from `from`, as the socket returned it (raw
    /// ICMPv4 sockets include the IPv4 header; raw ICMPv6 ones do not).
    fn parse(&self, data: &[u8], from: IpAddr, at: Instant) -> Option<Event> {
        match (self.mode, self.target) {
            (Mode::Udp(_), target) => {
                if from != target {
                    return None;
                }
                Some(Event::Reply { seq: be_u64(data)?, sent_ns: be_u64(data.get(8..)?)?, at })
            }
            (Mode::Icmp, IpAddr::V4(target)) => {
                let ihl = ipv4_header_len(data)?;
                let source = Ipv4Addr::from(<[u8; 4]>::try_from(data.get(12..16)?).ok()?);
                let icmp = data.get(ihl..)?;
                match *icmp.first()? {
                    ICMP_ECHO_REPLY if source == target && checksum(icmp) == 0 => self.echo(icmp, at),
                    ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED if self.quotes_ours_v4(icmp.get(ECHO_HEADER..)?, target) => {
                        Some(Event::IcmpError)
                    }
                    _ => None,
                }
            }
            (Mode::Icmp, IpAddr::V6(target)) => match *data.first()? {
                ICMPV6_ECHO_REPLY if from == IpAddr::V6(target) => self.echo(data, at),
                ICMPV6_DEST_UNREACH | ICMPV6_TIME_EXCEEDED if self.quotes_ours_v6(data.get(ECHO_HEADER..)?, target) => {
                    Some(Event::IcmpError)
                }
                _ => None,
            },
        }
    }

    /// An echo reply (ICMPv4 or ICMPv6, from its type on) with our identifier.
    fn echo(&self, icmp: &[u8], at: Instant) -> Option<Event> {
        let ident = u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]);
        let seq16 = u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]);
        let payload = icmp.get(ECHO_HEADER..)?;
        let seq = be_u64(payload)?;
        let sent_ns = be_u64(payload.get(8..)?)?;
        (icmp[1] == 0 && ident == self.ident && seq16 == seq as u16).then_some(Event::Reply { seq, sent_ns, at })
    }

    /// An ICMPv4 error's quoted datagram is one of our echo requests to the target.
    fn quotes_ours_v4(&self, quoted: &[u8], target: Ipv4Addr) -> bool {
        let Some(ihl) = ipv4_header_len(quoted) else { return false };
        let dst = quoted.get(16..20).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(Ipv4Addr::from);
        let inner = quoted.get(ihl..ihl + ECHO_HEADER);
        quoted.get(9) == Some(&IPPROTO_ICMP)
            && dst == Some(target)
            && inner.is_some_and(|i| i[0] == ICMP_ECHO_REQUEST && i[4..6] == self.ident.to_be_bytes())
    }

    /// An ICMPv6 error's quoted datagram is one of our echo requests to the target.
    fn quotes_ours_v6(&self, quoted: &[u8], target: Ipv6Addr) -> bool {
        let dst = quoted.get(24..40).and_then(|b| <[u8; 16]>::try_from(b).ok()).map(Ipv6Addr::from);
        let inner = quoted.get(IPV6_HEADER..IPV6_HEADER + ECHO_HEADER);
        quoted.first().is_some_and(|b| b >> 4 == 6)
            && quoted.get(6) == Some(&IPPROTO_ICMPV6)
            && dst == Some(target)
            && inner.is_some_and(|i| i[0] == ICMPV6_ECHO_REQUEST && i[4..6] == self.ident.to_be_bytes())
    }
}

/// The IPv4 header length, checked against the data.
fn ipv4_header_len(data: &[u8]) -> Option<usize> {
    let first = *data.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    (first >> 4 == 4 && ihl >= 20 && data.len() >= ihl).then_some(ihl)
}

// ---------------------------------------------------------------------------
// Arguments.

fn parse_target(s: &str) -> Result<IpAddr, String> {
    let trimmed = s.trim();
    let bare = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(trimmed);
    let ip: IpAddr =
        bare.parse().map_err(|_| format!("--target `{s}` is not an IPv4 or IPv6 address (names are not resolved)"))?;
    let ip = ip.to_canonical();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(format!("--target {ip} is not a unicast address"));
    }
    Ok(ip)
}

fn check_interval(ms: f64) -> Result<Duration, String> {
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
        return Err(format!("--interval-ms {ms} is out of range ({MIN_INTERVAL_MS} to {MAX_INTERVAL_MS})"));
    }
    Duration::try_from_secs_f64(ms / 1e3).map_err(|e| format!("--interval-ms {ms}: {e}"))
}

/// How long the probe runs.
#[derive(Clone, Copy, Debug)]
enum Limit {
    Count(u64),
    For(Duration),
}

/// The fixed schedule of a run: when each probe is due, and when sending ends.
struct Schedule {
    started: Instant,
    interval: Duration,
    limit: Limit,
}

impl Schedule {
    fn new(interval: Duration, limit: Limit) -> Schedule {
        Schedule { started: Instant::now(), interval, limit }
    }

    /// When probe `seq` is due; `None` once the run is over (its count
    /// sent, its duration passed, or `stop` set).
    fn due(&self, seq: u64, stop: &AtomicBool) -> Option<Instant> {
        if stop.load(Ordering::Relaxed) || matches!(self.limit, Limit::Count(n) if seq >= n) {
            return None;
        }
        let due = self.started.checked_add(Duration::from_nanos(nanos(self.interval).saturating_mul(seq)))?;
        match self.limit {
            Limit::For(d) if due >= self.started.checked_add(d)? => None,
            _ => Some(due),
        }
    }

    /// Whether a probe due at `due` and sent at `now` went a whole interval late.
    fn is_late(&self, due: Instant, now: Instant) -> bool {
        now - due >= self.interval
    }
}

fn limit(args: &ProbeArgs) -> Result<Limit, String> {
    match (args.count, args.duration) {
        (Some(0), _) => Err("--count must be at least 1".into()),
        (Some(n), _) => Ok(Limit::Count(n)),
        (None, seconds) => {
            let seconds = seconds.unwrap_or(DEFAULT_DURATION_S);
            if seconds.is_nan() || seconds <= 0.0 {
                return Err(format!("--duration {seconds} must be a positive number of seconds"));
            }
            Duration::try_from_secs_f64(seconds).map(Limit::For).map_err(|e| format!("--duration {seconds}: {e}"))
        }
    }
}

// ---------------------------------------------------------------------------
// The run.

fn open_socket(wire: &Wire) -> Result<UdpSocket, String> {
    let domain = if wire.target.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = match wire.mode {
        Mode::Icmp => {
            let protocol = if wire.target.is_ipv4() { Protocol::ICMPV4 } else { Protocol::ICMPV6 };
            let family = if wire.target.is_ipv4() { "ICMP" } else { "ICMPv6" };
            Socket::new(domain, Type::RAW, Some(protocol)).map_err(|e| match e.kind() {
                ErrorKind::PermissionDenied => {
                    format!("cannot open a raw {family} socket: permission denied (run as root or with CAP_NET_RAW)")
                }
                _ => format!("cannot open a raw {family} socket: {e}"),
            })?
        }
        Mode::Udp(_) => {
            let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
                .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
            let any: IpAddr =
                if wire.target.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
            socket.bind(&SocketAddr::new(any, 0).into()).map_err(|e| format!("cannot bind a UDP socket: {e}"))?;
            socket
        }
    };
    // Best effort: room for bursts of replies at short intervals.
    let _ = socket.set_recv_buffer_size(1 << 20);
    // A raw or UDP socket is a datagram socket: std's UdpSocket does the
    // sendto/recvfrom calls on it without unsafe code.
    let socket = UdpSocket::from(socket);
    socket.set_read_timeout(Some(RECV_TIMEOUT)).map_err(|e| format!("cannot set a receive timeout: {e}"))?;
    socket.set_write_timeout(Some(SEND_TIMEOUT)).map_err(|e| format!("cannot set a send timeout: {e}"))?;
    Ok(socket)
}

/// The receiver thread: stamps each recognised datagram as it arrives.
fn receive(socket: UdpSocket, wire: Wire, events: Sender<Event>, done: Arc<AtomicBool>, ready: Arc<Barrier>) {
    let mut buf = vec![0u8; 65_536];
    ready.wait();
    while !done.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let at = Instant::now();
                if let Some(event) = wire.parse(&buf[..n], from.ip(), at) {
                    if events.send(event).is_err() {
                        return;
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            // Reported errors (unreachable and the like) are transient: keep listening.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Counts kept beside the log.
#[derive(Default)]
struct Tally {
    /// Probes sent a whole interval or more after their time (the process
    /// fell behind; they went at once, none skipped).
    late_sends: u64,
    /// Sends the kernel refused (counted as sent, and lost unless answered).
    send_errors: u64,
    /// ICMP errors (unreachable, time exceeded) quoting our echo requests.
    icmp_errors: u64,
}

fn handle(event: Event, log: &mut ProbeLog, started: Instant, tally: &mut Tally) {
    match event {
        Event::Reply { seq, sent_ns, at } => {
            // The payload's send time must be the one recorded: no aliasing
            // with other probes' or earlier runs' packets.
            if log.sent_at(seq).map(nanos) == Some(sent_ns) {
                log.on_reply(seq, at.saturating_duration_since(started));
            }
        }
        Event::IcmpError => tally.icmp_errors += 1,
    }
}

/// Sleeps until `wake` (at most [`MAX_SLEEP`]), spinning the last stretch.
fn wait_until(wake: Instant) {
    let now = Instant::now();
    if wake > now + SPIN + MAX_SLEEP {
        std::thread::sleep(MAX_SLEEP);
        return;
    }
    if wake > now + SPIN {
        std::thread::sleep(wake - now - SPIN);
    }
    while Instant::now() < wake {
        std::hint::spin_loop();
    }
}

/// The once-a-second line on stderr.
struct Progress {
    next: Instant,
    sent: u64,
    received: u64,
}

impl Progress {
    fn print(&mut self, target: IpAddr, started: Instant, log: &ProbeLog) {
        let (sent, received) = (log.sent(), log.received());
        eprintln!(
            "probe {target:<24} {:>5.0} s   sent {sent:>9}   received {received:>9}   missing {:>7}   last second {}/{}",
            started.elapsed().as_secs_f64(),
            sent - received,
            received - self.received,
            sent - self.sent,
        );
        self.sent = sent;
        self.received = received;
        self.next += Duration::from_secs(1);
    }
}

pub(crate) fn run(args: ProbeArgs) -> Result<(), String> {
    let target = parse_target(&args.target)?;
    let interval = check_interval(args.interval_ms)?;
    let limit = limit(&args)?;
    if let Some(port) = args.tcp {
        return tcp::run(&args, SocketAddr::new(target, port), interval, limit);
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&args.size) {
        return Err(format!("--size {} is out of range ({MIN_SIZE} to {MAX_SIZE} payload bytes)", args.size));
    }
    let mode = match args.udp {
        Some(0) => return Err("--udp 0 is not a port".into()),
        Some(port) => Mode::Udp(port),
        None => Mode::Icmp,
    };
    let wire = Wire { target, mode, ident: (std::process::id() & 0xffff) as u16, size: args.size };
    let dest = SocketAddr::new(target, if let Mode::Udp(port) = mode { port } else { 0 });
    let stop = report::stop_on_signals()?;
    let socket = open_socket(&wire)?;
    let listener = socket.try_clone().map_err(|e| format!("cannot share the socket with the receiver: {e}"))?;
    let (events_in, events) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let done_in = done.clone();
    // Sending starts once the receiver is listening, so that the first
    // replies are stamped when they arrive.
    let ready = Arc::new(Barrier::new(2));
    let ready_in = ready.clone();
    let receiver = std::thread::Builder::new()
        .name("vipdrift-probe-rx".into())
        .spawn(move || receive(listener, wire, events_in, done_in, ready_in))
        .map_err(|e| format!("cannot start the receiver thread: {e}"))?;
    ready.wait();
    let result = probe(&args, &wire, &socket, dest, interval, limit, &stop, &events);
    done.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    let (log, tally, started_unix, end_of_sending) = result?;
    let summary = log.finish(end_of_sending);
    let counts =
        [("late_sends", tally.late_sends), ("send_errors", tally.send_errors), ("icmp_errors", tally.icmp_errors)];
    let report =
        summary_json(&args, target, &Method::of(&wire), interval, &summary, &counts, started_unix, end_of_sending);
    if args.json {
        println!("{report}");
    } else {
        print_human(&report);
    }
    Ok(())
}

/// Sends on schedule and collects replies; returns the log, the tally, the
/// start as unix time and the end of sending (since the start).
#[allow(clippy::too_many_arguments)]
fn probe(
    args: &ProbeArgs,
    wire: &Wire,
    socket: &UdpSocket,
    dest: SocketAddr,
    interval: Duration,
    limit: Limit,
    stop: &AtomicBool,
    events: &Receiver<Event>,
) -> Result<(ProbeLog, Tally, f64, Duration), String> {
    let mut log = ProbeLog::new(interval);
    let mut tally = Tally::default();
    let mut buf = Vec::with_capacity(ECHO_HEADER + wire.size);
    let schedule = Schedule::new(interval, limit);
    let started = schedule.started;
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut progress = Progress { next: started + Duration::from_secs(1), sent: 0, received: 0 };
    let mut seq: u64 = 0;
    loop {
        while let Ok(event) = events.try_recv() {
            handle(event, &mut log, started, &mut tally);
        }
        let Some(due) = schedule.due(seq, stop) else { break };
        let now = Instant::now();
        if now >= due {
            // Behind schedule: send at once, never skip, and count it.
            if schedule.is_late(due, now) {
                tally.late_sends += 1;
            }
            let t = now - started;
            log.on_send(seq, t);
            wire.probe(&mut buf, seq, nanos(t));
            if let Err(e) = socket.send_to(&buf, dest) {
                if seq == 0 {
                    return Err(format!("cannot send to {}: {e}", wire.target));
                }
                tally.send_errors += 1;
            }
            seq += 1;
            continue;
        }
        if !args.json && now >= progress.next {
            progress.print(wire.target, started, &log);
            continue;
        }
        wait_until(if args.json { due } else { due.min(progress.next) });
    }
    let end_of_sending = log.sent_at(seq.saturating_sub(1)).map_or(Duration::ZERO, |t| t + interval);
    // Stragglers: until every probe is answered, the wait is over, or a
    // (new) signal. After a signal, the wait is the shortest one.
    let interrupted = stop.load(Ordering::Relaxed);
    let wait = if interrupted { MIN_STRAGGLER_WAIT } else { (interval * GAP_INTERVALS as u32).max(MIN_STRAGGLER_WAIT) };
    let deadline = Instant::now() + wait;
    while log.received() < log.sent() && (interrupted || !stop.load(Ordering::Relaxed)) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match events.recv_timeout((deadline - now).min(MAX_SLEEP)) {
            Ok(event) => handle(event, &mut log, started, &mut tally),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok((log, tally, started_unix, end_of_sending))
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1e6)
}

/// How a run probed, for its summary.
struct Method {
    /// `icmp`, `udp` or `tcp`.
    name: &'static str,
    port: Option<u16>,
    /// Payload bytes per probe (none for TCP connects).
    size: Option<usize>,
}

impl Method {
    fn of(wire: &Wire) -> Method {
        match wire.mode {
            Mode::Icmp => Method { name: "icmp", port: None, size: Some(wire.size) },
            Mode::Udp(port) => Method { name: "udp", port: Some(port), size: Some(wire.size) },
        }
    }
}

/// The summary object: what every method reports, then `counts`, the
/// method's own counters.
#[allow(clippy::too_many_arguments)]
fn summary_json(
    args: &ProbeArgs,
    target: IpAddr,
    method: &Method,
    interval: Duration,
    summary: &ProbeSummary,
    counts: &[(&str, u64)],
    started_unix: f64,
    end_of_sending: Duration,
) -> Value {
    let gaps: Vec<Value> = summary
        .gaps
        .iter()
        .map(|g| {
            json!({
                "start_s": (g.start.as_secs_f64() * 1e6).round() / 1e6,
                "start_unix": ((started_unix + g.start.as_secs_f64()) * 1e6).round() / 1e6,
                "ms": ms(g.length),
                "lost": g.lost,
            })
        })
        .collect();
    let rtt = match summary.rtt {
        Some((min, median, max)) => json!({ "min": us(min), "median": us(median), "max": us(max) }),
        None => json!({ "min": null, "median": null, "max": null }),
    };
    let mut report = json!({
        "tool": "probe",
        "target": target.to_string(),
        "mode": method.name,
        "port": method.port,
        "interval_ms": args.interval_ms,
        "size": method.size,
        "seconds": round3(end_of_sending.as_secs_f64()),
        "sent": summary.sent,
        "received": summary.received,
        "lost": summary.lost,
        "duplicates": summary.duplicates,
    });
    for &(key, n) in counts {
        report[key] = json!(n);
    }
    let rest = json!({
        "rtt_us": rtt,
        "longest_gap_ms": ms(summary.longest_gap),
        "outage_ms": round3(summary.lost as f64 * interval.as_secs_f64() * 1e3),
        "gaps": gaps,
    });
    if let (Some(report), Value::Object(rest)) = (report.as_object_mut(), rest) {
        report.extend(rest);
    }
    report
}

/// The summary block and one line per gap, on stderr.
fn print_human(report: &Value) {
    let field = |key: &str| report.get(key).cloned().unwrap_or(Value::Null);
    let mode = match (field("mode").as_str(), field("port")) {
        (Some(mode), Value::Null) => mode.to_owned(),
        (Some(mode), port) => format!("{mode} port {port}"),
        (None, _) => "?".to_owned(),
    };
    let size = match field("size") {
        Value::Null => String::new(),
        size => format!(", {size} payload bytes"),
    };
    eprintln!(
        "probe {} ({mode}, every {} ms{size}) for {} s",
        report["target"].as_str().unwrap_or("?"),
        field("interval_ms"),
        field("seconds")
    );
    let keys = ["sent", "received", "lost", "duplicates", "late_sends", "send_errors", "icmp_errors"];
    for key in keys.into_iter().chain(tcp::COUNTS).filter(|key| report.get(key).is_some()) {
        eprintln!("  {key:<18} {}", field(key));
    }
    let rtt = field("rtt_us");
    if rtt["min"].is_null() {
        eprintln!("  {:<18} no replies", "rtt_us");
    } else {
        eprintln!("  {:<18} min {}  median {}  max {}", "rtt_us", rtt["min"], rtt["median"], rtt["max"]);
    }
    eprintln!("  {:<18} {}", "longest_gap_ms", field("longest_gap_ms"));
    eprintln!("  {:<18} {}", "outage_ms", field("outage_ms"));
    let gaps = report["gaps"].as_array().cloned().unwrap_or_default();
    eprintln!("  {:<18} {}", "gaps", gaps.len());
    for gap in gaps {
        eprintln!(
            "  gap at {:>10.3} s (unix {:.6}): {:>10.3} ms, {} lost",
            gap["start_s"].as_f64().unwrap_or(0.0),
            gap["start_unix"].as_f64().unwrap_or(0.0),
            gap["ms"].as_f64().unwrap_or(0.0),
            gap["lost"]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const RTT: Duration = Duration::from_micros(100);

    /// `n` sends at 1 ms; replies after 100 µs for those `answered` keeps.
    fn run_log(n: u64, answered: impl Fn(u64) -> bool) -> ProbeLog {
        let mut log = ProbeLog::new(MS);
        for seq in 0..n {
            assert!(log.on_send(seq, MS * seq as u32));
            if answered(seq) {
                assert_eq!(log.on_reply(seq, MS * seq as u32 + RTT), Reply::New);
            }
        }
        log
    }

    fn end(n: u64) -> Duration {
        MS * n as u32
    }

    #[test]
    fn no_loss_no_gaps() {
        let s = run_log(1000, |_| true).finish(end(1000));
        assert_eq!((s.sent, s.received, s.lost, s.duplicates), (1000, 1000, 0, 0));
        assert!(s.gaps.is_empty(), "{:?}", s.gaps);
        assert_eq!(s.longest_gap, MS);
        assert_eq!(s.rtt, Some((RTT, RTT, RTT)));
    }

    #[test]
    fn a_burst_of_50_lost_is_one_gap_of_51_ms() {
        let s = run_log(200, |seq| !(100..150).contains(&seq)).finish(end(200));
        assert_eq!((s.sent, s.received, s.lost), (200, 150, 50));
        assert_eq!(s.gaps, vec![Gap { start: MS * 99 + RTT, length: MS * 51, lost: 50 }]);
        assert_eq!(s.longest_gap, MS * 51);
    }

    #[test]
    fn three_intervals_is_not_yet_a_gap() {
        let s = run_log(100, |seq| !(10..12).contains(&seq)).finish(end(100));
        assert_eq!(s.lost, 2);
        assert!(s.gaps.is_empty());
        assert_eq!(s.longest_gap, MS * 3);
        let s = run_log(100, |seq| !(10..13).contains(&seq)).finish(end(100));
        assert_eq!(s.gaps.len(), 1);
        assert_eq!(s.gaps[0].lost, 3);
    }

    #[test]
    fn duplicates_are_counted_once_and_do_not_close_gaps() {
        let mut log = run_log(10, |seq| seq < 5);
        assert_eq!(log.on_reply(4, MS * 6), Reply::Duplicate);
        assert_eq!(log.on_reply(4, MS * 7), Reply::Duplicate);
        assert_eq!(log.on_reply(99, MS * 7), Reply::Unknown);
        let s = log.finish(end(10));
        assert_eq!((s.received, s.lost, s.duplicates), (5, 5, 2));
        assert_eq!(s.gaps, vec![Gap { start: MS * 4 + RTT, length: MS * 10 - (MS * 4 + RTT), lost: 5 }]);
    }

    #[test]
    fn out_of_order_replies_are_neither_lost_nor_gaps() {
        let mut log = ProbeLog::new(MS);
        for seq in 0..10 {
            log.on_send(seq, MS * seq as u32);
        }
        for (i, seq) in [1, 0, 3, 2, 5, 4, 7, 6, 9, 8].into_iter().enumerate() {
            assert_eq!(log.on_reply(seq, MS * (i as u32 + 1)), Reply::New);
        }
        let s = log.finish(end(10));
        assert_eq!((s.received, s.lost, s.duplicates), (10, 0, 0));
        assert!(s.gaps.is_empty());
        assert_eq!(s.rtt.map(|r| (r.0, r.2)), Some((Duration::ZERO, MS * 2)));
    }

    #[test]
    fn replies_stopping_at_the_end_are_a_gap_to_the_end_of_sending() {
        let s = run_log(200, |seq| seq < 150).finish(end(200));
        assert_eq!(s.lost, 50);
        assert_eq!(s.gaps, vec![Gap { start: MS * 149 + RTT, length: MS * 51 - RTT, lost: 50 }]);
        assert_eq!(s.longest_gap, MS * 51 - RTT);
    }

    #[test]
    fn losses_at_the_start_are_a_gap_from_the_first_send() {
        let s = run_log(100, |seq| seq >= 10).finish(end(100));
        assert_eq!(s.gaps, vec![Gap { start: Duration::ZERO, length: MS * 10 + RTT, lost: 10 }]);
    }

    #[test]
    fn no_replies_at_all_is_one_gap_over_everything() {
        let s = run_log(100, |_| false).finish(end(100));
        assert_eq!((s.received, s.lost, s.rtt), (0, 100, None));
        assert_eq!(s.gaps, vec![Gap { start: Duration::ZERO, length: MS * 100, lost: 100 }]);
        let empty = ProbeLog::new(MS).finish(Duration::ZERO);
        assert_eq!((empty.sent, empty.longest_gap, empty.gaps.len()), (0, Duration::ZERO, 0));
    }

    #[test]
    fn a_late_reply_inside_a_gap_is_not_lost() {
        // 20..40 unanswered in time; 25 answered only after the gap closed.
        let mut log = run_log(100, |seq| !(20..40).contains(&seq));
        log.on_reply(25, MS * 100);
        let s = log.finish(end(100));
        assert_eq!(s.lost, 19);
        assert_eq!(s.gaps.len(), 1);
        assert_eq!(s.gaps[0].lost, 19);
    }

    #[test]
    fn probes_dropped_behind_the_one_that_ends_a_gap_are_its_losses() {
        // Dark from 100 on; at 260 ms the queued 200..260 are released at
        // once, 200 first, but 220..240 had been dropped from the queue.
        let release = MS * 260;
        let mut log = ProbeLog::new(MS);
        for seq in 0..300u64 {
            log.on_send(seq, MS * seq as u32);
            if seq == 260 {
                for queued in (200..260).filter(|s| !(220..240).contains(s)) {
                    assert_eq!(log.on_reply(queued, release), Reply::New);
                }
            }
            if !(100..260).contains(&seq) {
                log.on_reply(seq, MS * seq as u32 + RTT);
            }
        }
        let s = log.finish(end(300));
        assert_eq!(s.lost, 120);
        assert_eq!(s.gaps, vec![Gap { start: MS * 99 + RTT, length: release - (MS * 99 + RTT), lost: 120 }]);
    }

    #[test]
    fn sends_must_come_in_order() {
        let mut log = ProbeLog::new(MS);
        assert!(!log.on_send(1, MS));
        assert!(log.on_send(0, MS));
        assert!(!log.on_send(0, MS));
        assert_eq!(log.sent(), 1);
    }

    #[test]
    fn median_of_an_even_count_is_the_middle_mean() {
        let mut log = ProbeLog::new(MS);
        for (seq, rtt_us) in [10u64, 40, 20, 30].into_iter().enumerate() {
            log.on_send(seq as u64, MS * seq as u32);
            log.on_reply(seq as u64, MS * seq as u32 + Duration::from_micros(rtt_us));
        }
        let (min, median, max) = log.finish(end(4)).rtt.unwrap();
        assert_eq!((us(min), us(median), us(max)), (10.0, 25.0, 40.0));
    }

    fn wire(target: &str, mode: Mode) -> Wire {
        Wire { target: target.parse().unwrap(), mode, ident: 0x1234, size: 24 }
    }

    /// An ICMPv4 echo reply to `request`, from `src`, with an IPv4 header.
    fn reply_v4(request: &[u8], src: [u8; 4]) -> Vec<u8> {
        let mut icmp = request.to_vec();
        icmp[0] = ICMP_ECHO_REPLY;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, IPPROTO_ICMP, 0, 0];
        packet.extend_from_slice(&src);
        packet.extend_from_slice(&[198, 51, 100, 1]);
        packet.extend_from_slice(&icmp);
        packet
    }

    #[test]
    fn icmpv4_probes_carry_a_valid_checksum_and_their_replies_parse() {
        let w = wire("198.51.100.2", Mode::Icmp);
        let mut buf = Vec::new();
        w.probe(&mut buf, 0x1_0005, 777);
        assert_eq!(buf.len(), ECHO_HEADER + 24);
        assert_eq!(checksum(&buf), 0);
        assert_eq!(&buf[4..8], &[0x12, 0x34, 0x00, 0x05]);
        let at = Instant::now();
        let from: IpAddr = "198.51.100.2".parse().unwrap();
        let event = w.parse(&reply_v4(&buf, [198, 51, 100, 2]), from, at);
        assert_eq!(event, Some(Event::Reply { seq: 0x1_0005, sent_ns: 777, at }));
        // From elsewhere, our own request, another identifier, a bad checksum: ignored.
        assert_eq!(w.parse(&reply_v4(&buf, [198, 51, 100, 3]), from, at), None);
        let mut request = reply_v4(&buf, [198, 51, 100, 2]);
        request[20] = ICMP_ECHO_REQUEST;
        assert_eq!(w.parse(&request, from, at), None);
        let other = Wire { ident: 0x4321, ..w };
        assert_eq!(other.parse(&reply_v4(&buf, [198, 51, 100, 2]), from, at), None);
        let mut corrupt = reply_v4(&buf, [198, 51, 100, 2]);
        corrupt[30] ^= 1;
        assert_eq!(w.parse(&corrupt, from, at), None);
        assert_eq!(w.parse(&corrupt[..25], from, at), None);
    }

    #[test]
    fn icmpv4_unreachable_quoting_our_request_is_counted() {
        let w = wire("198.51.100.2", Mode::Icmp);
        let mut request = Vec::new();
        w.probe(&mut request, 3, 0);
        let mut quoted = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, IPPROTO_ICMP, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2];
        quoted.extend_from_slice(&request[..8]);
        let mut icmp = vec![ICMP_DEST_UNREACH, 1, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted);
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, IPPROTO_ICMP, 0, 0, 198, 51, 100, 1, 198, 51, 100, 1];
        packet.extend_from_slice(&icmp);
        let router: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(w.parse(&packet, router, Instant::now()), Some(Event::IcmpError));
        packet[20 + 8 + 19] = 9; // quoted destination elsewhere
        assert_eq!(w.parse(&packet, router, Instant::now()), None);
    }

    #[test]
    fn icmpv6_and_udp_replies_parse() {
        let w = wire("2001:db8::2", Mode::Icmp);
        let mut buf = Vec::new();
        w.probe(&mut buf, 42, 9);
        assert_eq!(buf[0], ICMPV6_ECHO_REQUEST);
        buf[0] = ICMPV6_ECHO_REPLY;
        let at = Instant::now();
        assert_eq!(w.parse(&buf, w.target, at), Some(Event::Reply { seq: 42, sent_ns: 9, at }));
        assert_eq!(w.parse(&buf, "2001:db8::3".parse().unwrap(), at), None);

        let u = wire("198.51.100.2", Mode::Udp(7));
        u.probe(&mut buf, 5, 6);
        assert_eq!(buf.len(), 24);
        assert_eq!(u.parse(&buf, u.target, at), Some(Event::Reply { seq: 5, sent_ns: 6, at }));
        assert_eq!(u.parse(&buf[..15], u.target, at), None);
        assert_eq!(u.parse(&buf, "198.51.100.9".parse().unwrap(), at), None);
    }

    #[test]
    fn targets_are_unicast_literals() {
        assert_eq!(parse_target("198.51.100.2"), Ok("198.51.100.2".parse().unwrap()));
        assert_eq!(parse_target("[2001:db8::2]"), Ok("2001:db8::2".parse().unwrap()));
        assert_eq!(parse_target("::ffff:198.51.100.2"), Ok("198.51.100.2".parse().unwrap()));
        for bad in ["not-an-address", "", "198.51.100.256", "0.0.0.0", "::", "224.0.0.1", "255.255.255.255"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(check_interval(0.5), Ok(Duration::from_micros(500)));
        assert_eq!(check_interval(0.1), Ok(Duration::from_micros(100)));
        for bad in [0.05, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            assert!(check_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksum_matches_rfc_1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (before complement).
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        assert_eq!(checksum(&[0xff]), !0xff00);
    }
}
