//! The operator commands: `vipdrift status`, `stats` and `ctl` talk to a
//! running daemon over its admin socket (newline-delimited JSON, see
//! `vipdrift_control::admin`); `vipdrift check-config` checks a
//! configuration file without touching interfaces or sockets.
//!
//! Human output is aligned tables; `--json` prints the daemon's `result`
//! object as one line, as it came (fields this vipdrift does not know
//! included).

use crate::report;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use vipdrift_control::admin::{
    Applied, BondStats, BondStatus, Envelope, GroupStats, GroupStatus, InterfaceStats, QueueBinding, QueueStats, Reply,
    Request, Stats, Status, API_VERSION, DEFAULT_SOCKET, MAX_REQUEST,
};
use vipdrift_control::config::{self, Config};
use vipdrift_vmac::BondMode;

/// How long a send to or a reply from the daemon may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest reply line accepted.
const MAX_REPLY: usize = 16 << 20;
/// `stats --watch` refreshes this often.
const WATCH_PERIOD: Duration = Duration::from_secs(1);
/// Cursor home, clear screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Where the daemon is and how to print its answer.
#[derive(Args, Debug)]
pub(crate) struct Connection {
    /// The daemon's admin socket (`[admin] socket` in its configuration).
    #[arg(long, value_name = "PATH", env = "VIPDRIFT_SOCKET", default_value = DEFAULT_SOCKET, global = true)]
    socket: PathBuf,
    /// Print the daemon's result as one JSON line.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    conn: Connection,
}

#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    conn: Connection,
    /// Refresh once a second until Ctrl-C (in place on a terminal).
    #[arg(long)]
    watch: bool,
    /// Stop after N refreshes (implies --watch).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
}

#[derive(Args, Debug)]
pub(crate) struct CtlArgs {
    #[command(subcommand)]
    command: CtlCommand,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// Hand GROUP over gracefully and stay backup (on), or return it to the election (off).
    Maintenance {
        /// Group name (both families of a mixed-family group).
        group: String,
        /// on or off.
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Set GROUP's priority until the next reload or restart.
    Priority {
        /// Group name.
        group: String,
        /// New priority, 1..=254 (255 is for the address owner, set in the configuration).
        #[arg(value_parser = clap::value_parser!(u8).range(1..=254))]
        priority: u8,
    },
    /// Re-read the daemon's configuration file (as SIGHUP does).
    Reload,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
pub(crate) struct CheckConfigArgs {
    /// Configuration file to check (TOML; see README, "Configuration").
    #[arg(long)]
    config: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn status(args: StatusArgs) -> Result<(), String> {
    let value = Client::connect(&args.conn.socket)?.call(Request::Status)?;
    if args.conn.json {
        return emit(&json_line(&value)).map(drop);
    }
    let status: Status = decode(value, "status")?;
    emit(&format_status(&status)).map(drop)
}

pub(crate) fn stats(args: StatsArgs) -> Result<(), String> {
    let mut client = Client::connect(&args.conn.socket)?;
    let json = args.conn.json;
    if !args.watch && args.count.is_none() {
        let value = client.call(Request::Stats)?;
        return emit(&stats_text(value, json)?).map(drop);
    }
    let stop = report::stop_on_signals()?;
    let terminal = std::io::stdout().is_terminal();
    let mut next = Instant::now();
    let mut refreshes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let text = stats_text(client.call(Request::Stats)?, json)?;
        let frame = match (json, terminal, refreshes) {
            (true, _, _) => text,
            (false, true, _) => format!(
                "{CLEAR}vipdrift stats: {}, every {} s, Ctrl-C to stop\n\n{text}",
                args.conn.socket.display(),
                WATCH_PERIOD.as_secs()
            ),
            (false, false, 0) => text,
            (false, false, _) => format!("\n{text}"),
        };
        if !emit(&frame)? {
            break;
        }
        refreshes += 1;
        if args.count.is_some_and(|count| refreshes >= count) {
            break;
        }
        next += WATCH_PERIOD;
        let now = Instant::now();
        if next < now {
            next = now; // fell behind (a slow reply): no burst to catch up
        }
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
    }
    Ok(())
}

fn stats_text(value: Value, json: bool) -> Result<String, String> {
    if json {
        return Ok(json_line(&value));
    }
    Ok(format_stats(&decode(value, "stats")?))
}

pub(crate) fn ctl(args: CtlArgs) -> Result<(), String> {
    let request = match args.command {
        CtlCommand::Maintenance { group, state } => Request::Maintenance { group, on: state == OnOff::On },
        CtlCommand::Priority { group, priority } => Request::Priority { group, priority },
        CtlCommand::Reload => Request::Reload,
    };
    let value = Client::connect(&args.conn.socket)?.call(request)?;
    if args.conn.json {
        return emit(&json_line(&value)).map(drop);
    }
    let applied: Applied = decode(value, "ctl")?;
    emit(&format_applied(&applied)).map(drop)
}

pub(crate) fn check_config(args: CheckConfigArgs) -> Result<(), String> {
    match config::load(&args.config) {
        Ok(config) => {
            let file = args.config.display().to_string();
            let text =
                if args.json { json_line(&config_json(&file, &config)) } else { format_config_summary(&file, &config) };
            emit(&text).map(drop)
        }
        Err(e) => {
            if args.json {
                let value = json!({
                    "ok": false,
                    "error": e.to_string(),
                    "file": e.file,
                    "line": e.line,
                    "key": e.key,
                    "message": e.message,
                });
                emit(&json_line(&value))?;
            }
            Err(e.to_string())
        }
    }
}

/// Writes `text` to stdout; `Ok(false)` if the reader has gone (a closed pipe).
fn emit(text: &str) -> Result<bool, String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

fn json_line(value: &Value) -> String {
    let mut line = value.to_string();
    line.push('\n');
    line
}

fn decode<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(value)
        .map_err(|e| format!("the daemon's {what} result is not understood: {e}; --json prints it as it came"))
}

// --- the client ----------------------------------------------------------

/// A connection to the daemon's admin socket, carrying requests in turn.
pub(crate) struct Client {
    path: PathBuf,
    stream: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the socket at `path`, with [`IO_TIMEOUT`] on sends and replies.
    pub(crate) fn connect(path: &Path) -> Result<Client, String> {
        let stream = UnixStream::connect(path).map_err(|e| connect_error(path, &e))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("cannot set a timeout on {}: {e}", path.display()))?;
        Ok(Client { path: path.to_owned(), stream: BufReader::new(stream) })
    }

    /// Sends `request` and returns the daemon's `result`, or its error.
    pub(crate) fn call(&mut self, request: Request) -> Result<Value, String> {
        let mut line = serde_json::to_string(&Envelope { v: API_VERSION, request })
            .map_err(|e| format!("cannot encode the request: {e}"))?;
        line.push('\n');
        if line.len() > MAX_REQUEST {
            return Err(format!("the request is longer than the {MAX_REQUEST} bytes the daemon reads"));
        }
        self.stream.get_mut().write_all(line.as_bytes()).map_err(|e| self.io_error("send to", &e))?;
        let reply = read_line(&mut self.stream, MAX_REPLY).map_err(|e| match e {
            ReadError::Io(e) => self.io_error("read the reply from", &e),
            ReadError::Closed => {
                format!("the daemon at {} closed the connection without replying", self.path.display())
            }
            ReadError::TooLong => format!("the daemon's reply is longer than {} MiB", MAX_REPLY >> 20),
        })?;
        decode_reply(&reply)
    }

    fn io_error(&self, what: &str, e: &std::io::Error) -> String {
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                format!("no answer from the daemon at {} within {} s", self.path.display(), IO_TIMEOUT.as_secs())
            }
            _ => format!("cannot {what} the daemon at {}: {e}", self.path.display()),
        }
    }
}

/// Why no reply line was read.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    /// End of stream before any byte.
    Closed,
    /// More than the limit without a newline.
    TooLong,
}

/// Reads one line of at most `max` bytes (its newline not counted) and
/// returns it without the line end. A last line without a newline is
/// returned as it is.
fn read_line(reader: &mut impl BufRead, max: usize) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut line).map_err(ReadError::Io)?;
    if n == 0 {
        return Err(ReadError::Closed);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if line.len() > max {
        return Err(ReadError::TooLong);
    }
    Ok(line)
}

/// The `result` of a reply line, or what the daemon said was wrong.
fn decode_reply(line: &[u8]) -> Result<Value, String> {
    let reply: Reply = serde_json::from_slice(line).map_err(|e| {
        let start = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        format!("the daemon's reply is not understood ({e}); it begins {start:?}")
    })?;
    if !reply.ok {
        let error = reply.error.unwrap_or_else(|| "no reason given".to_owned());
        return Err(format!("refused by the daemon: {error}"));
    }
    if reply.v != API_VERSION {
        return Err(format!("the daemon speaks admin API version {}; this vipdrift speaks {API_VERSION}", reply.v));
    }
    reply.result.ok_or_else(|| "the daemon's reply says ok but carries no result".to_owned())
}

/// What to say when the socket cannot be reached.
fn connect_error(path: &Path, e: &std::io::Error) -> String {
    let path = path.display();
    let hint = format!(
        "is `vipdrift run` running? The socket is set by `[admin] socket` in its configuration \
         (default {DEFAULT_SOCKET}); give it here with --socket or VIPDRIFT_SOCKET"
    );
    match e.kind() {
        ErrorKind::NotFound => format!("cannot connect to {path}: {e}; {hint}"),
        ErrorKind::ConnectionRefused => format!("cannot connect to {path}: {e} (nothing listens there); {hint}"),
        ErrorKind::PermissionDenied => format!(
            "cannot connect to {path}: {e}; the socket is mode 0600 and owned by the user the daemon runs as: \
             run this as that user or as root"
        ),
        _ => format!("cannot connect to {path}: {e}"),
    }
}

// --- human output --------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// An aligned text table: columns two spaces apart, no trailing spaces.
struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[(&'static str, Align)]) -> Table {
        Table { columns: columns.to_vec(), rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// The table, header first (left out when every header is empty).
    fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let header: Vec<String> = self.columns.iter().map(|(h, _)| (*h).to_owned()).collect();
        let show_header = self.columns.iter().any(|(h, _)| !h.is_empty());
        let mut out = String::new();
        for row in show_header.then_some(&header).into_iter().chain(&self.rows) {
            let mut line = String::new();
            for (i, ((cell, w), (_, align))) in row.iter().zip(&widths).zip(&self.columns).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(w.saturating_sub(width(cell)));
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

use Align::{Left, Right};

/// A duration for people: `3.2s`, `4m02s`, `1h03m`, `2d05h`.
fn format_duration(seconds: f64) -> String {
    if seconds.is_nan() {
        return "-".into();
    }
    let seconds = seconds.max(0.0);
    let tenths = (seconds * 10.0).round();
    if tenths < 600.0 {
        return format!("{:.1}s", tenths / 10.0);
    }
    // Saturates for absurd values; never panics.
    let s = seconds.round() as u64;
    match s {
        0..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86400, s / 3600 % 24),
    }
}

/// Milliseconds for people: `34.1ms` below a second, else as [`format_duration`].
fn format_ms(ms: f64) -> String {
    if ms.is_nan() {
        "-".into()
    } else if ms < 999.95 {
        format!("{:.1}ms", ms.max(0.0))
    } else {
        format_duration(ms / 1000.0)
    }
}

/// `0`, or the total and the non-zero reasons: `12 (no_endpoint=2, tx_ring_full=10)`.
/// A queue's drops: the engine's by reason, then the kernel's frame losses
/// on its socket (`kernel_*`, from XDP_STATISTICS) and its copy-mode TX drops.
fn all_drops(q: &QueueStats) -> Vec<(String, u64)> {
    let mut drops: Vec<(String, u64)> = q.drops.iter().map(|(reason, &n)| (reason.clone(), n)).collect();
    for reason in ["rx_dropped", "rx_invalid_descs", "rx_ring_full", "tx_invalid_descs"] {
        drops.push((format!("kernel_{reason}"), q.kernel.get(reason).copied().unwrap_or(0)));
    }
    drops.push(("kernel_tx_dropped".into(), q.tx_kernel_dropped));
    drops
}

fn total_with_reasons<'a>(counts: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    let mut total = 0u64;
    let mut reasons = Vec::new();
    for (reason, &n) in counts {
        total = total.saturating_add(n);
        if n > 0 {
            reasons.push(format!("{reason}={n}"));
        }
    }
    if reasons.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", reasons.join(", "))
    }
}

fn yes(s: &str) -> String {
    s.to_owned()
}

/// The human form of a `status` result.
fn format_status(status: &Status) -> String {
    let d = &status.daemon;
    let mut out = format!(
        "daemon: pid {}, version {}, up {}, config {}, reloads {} ok, {} refused\n",
        d.pid,
        d.version,
        format_duration(d.uptime_s),
        if d.config.is_empty() { "(none)" } else { d.config.as_str() },
        d.reloads,
        d.reload_failures
    );
    if let Some(error) = &d.last_reload_error {
        let _ = writeln!(out, "last reload refused: {error}");
    }

    let mut interfaces = Table::new(&[("INTERFACE", Left), ("MAC", Left), ("LINK", Left), ("QUEUES", Left)]);
    for i in &status.interfaces {
        interfaces.row(vec![
            i.name.clone(),
            i.mac.clone(),
            yes(if i.link_up { "up" } else { "down" }),
            queue_list(&i.queues),
        ]);
    }
    out.push('\n');
    out.push_str(&interfaces.render());

    let mut groups = Table::new(&[
        ("GROUP", Left),
        ("FAMILY", Left),
        ("IFACE", Left),
        ("VRID", Right),
        ("STATE", Left),
        ("PRIO", Right),
        ("MASTER", Left),
        ("VIPS", Left),
        ("MODE", Left),
        ("IN STATE", Right),
        ("LAST TRANSITION", Left),
    ]);
    for g in &status.groups {
        groups.row(group_status_row(g));
    }
    out.push('\n');
    out.push_str(&groups.render());
    for b in &status.bonds {
        out.push('\n');
        out.push_str(&format_bond_status(b));
    }
    out
}

/// `0:zero-copy, 1:zero-copy`, or `-` without queues.
fn queue_list(queues: &[QueueBinding]) -> String {
    if queues.is_empty() {
        return yes("-");
    }
    queues.iter().map(|q| format!("{}:{}", q.queue, q.bind_mode)).collect::<Vec<_>>().join(", ")
}

/// A bond: a header line, then its NICs, indented. In `alb` the header
/// gives the client table's fill and each NIC its clients; in `tlb` the
/// header gives the MAC clients know.
fn format_bond_status(b: &BondStatus) -> String {
    let alb = b.mode == BondMode::Alb;
    let vips = if b.vips.is_empty() { yes("-") } else { b.vips.join(",") };
    let last = if alb {
        format!("clients {}/{}", b.clients, b.client_capacity)
    } else {
        format!("primary mac {}", if b.primary_mac.is_empty() { "-" } else { b.primary_mac.as_str() })
    };
    let mut out = format!("bond {} ({})  vips {vips}  {last}\n", b.name, b.mode);
    let mut columns = vec![("  NIC", Left), ("LINK", Left), ("PRIMARY", Left), ("MAC", Left), ("HARDWARE MAC", Left)];
    if alb {
        columns.push(("CLIENTS", Right));
    }
    columns.extend([("LINK CHANGES", Right), ("QUEUES", Left)]);
    let mut nics = Table::new(&columns);
    for n in &b.nics {
        let mut row = vec![
            format!("  {}", n.name),
            yes(if n.link_up { "up" } else { "down" }),
            yes(if n.primary { "yes" } else { "no" }),
            n.mac.clone(),
            n.hardware_mac.clone(),
        ];
        if alb {
            row.push(n.clients.to_string());
        }
        row.extend([n.link_changes.to_string(), queue_list(&n.queues)]);
        nics.row(row);
    }
    out.push_str(&nics.render());
    out
}

fn group_status_row(g: &GroupStatus) -> Vec<String> {
    let state = if g.maintenance { format!("{} (maint)", g.state) } else { g.state.to_string() };
    let master = match &g.master {
        None => yes("-"),
        Some(m) if m.is_self => format!("self ({})", m.priority),
        Some(m) => format!("{} ({})", m.address, m.priority),
    };
    let last = match &g.last_transition {
        None => yes("-"),
        Some(t) => format!("{}→{} {} after {}", t.from, t.to, t.reason, format_ms(t.elapsed_ms)),
    };
    vec![
        g.name.clone(),
        g.family.name().to_owned(),
        g.interface.clone(),
        g.vrid.to_string(),
        state,
        format!("{}/{}", g.priority, g.effective_priority),
        master,
        if g.vips.is_empty() { yes("-") } else { g.vips.join(",") },
        g.mode.to_string(),
        format_duration(g.in_state_s),
        last,
    ]
}

/// The human form of a `stats` result.
fn format_stats(stats: &Stats) -> String {
    let mut queues = Table::new(&[
        ("PORT", Left),
        ("Q", Right),
        ("BIND", Left),
        ("RX pps", Right),
        ("TX pps", Right),
        ("RX Mpps", Right),
        ("RX Gbps", Right),
        ("TX Mpps", Right),
        ("TX Gbps", Right),
        ("RX pkts", Right),
        ("TX pkts", Right),
        ("DROPS", Left),
        ("REPLIES arp/na/echo", Left),
    ]);
    for q in &stats.queues {
        queues.row(queue_stats_row(q));
    }
    let mut groups = Table::new(&[
        ("GROUP", Left),
        ("FAMILY", Left),
        ("VRID", Right),
        ("STATE", Left),
        ("ADV SENT", Right),
        ("ADV RCVD", Right),
        ("REJECTED", Left),
        ("GARPS", Right),
        ("TRANSITIONS", Right),
        ("SPLIT BRAINS", Right),
    ]);
    for g in &stats.groups {
        groups.row(group_stats_row(g));
    }
    let bonds: String = stats.bonds.iter().map(bond_stats_line).collect();
    let steering: String = stats.interfaces.iter().map(steering_line).collect();
    let c = &stats.control;
    format!(
        "{}\n{}\n{bonds}{steering}control: stalls {}, inject failures {}, admin requests {} ({} malformed), scrapes {}, \
         reloads {} ok, {} refused; rates over {}\n",
        queues.render(),
        groups.render(),
        c.control_stalls,
        c.inject_failures,
        c.admin_requests,
        c.admin_errors,
        c.scrapes,
        c.reloads,
        c.reload_failures,
        format_duration(stats.rate_window_s)
    )
}

/// One interface's kernel delivery: what its steering program passed and
/// dropped, and its workers' stalls.
fn steering_line(i: &InterfaceStats) -> String {
    let count = |outcome: &str| i.steering.get(outcome).map_or_else(|| "?".to_owned(), u64::to_string);
    format!(
        "steering {}: to kernel {}, dropped not owned {}, dropped lease expired {}; worker stalls {}\n",
        i.port,
        count("to_kernel"),
        count("not_owned"),
        count("lease_expired"),
        i.lease_stalls
    )
}

fn queue_stats_row(q: &QueueStats) -> Vec<String> {
    let reply = |kind: &str| q.replies.get(kind).copied().unwrap_or(0);
    vec![
        q.port.clone(),
        q.queue.to_string(),
        q.bind_mode.to_string(),
        format!("{:.0}", q.rx_pps),
        format!("{:.0}", q.tx_pps),
        format!("{:.3}", q.rx_pps / 1e6),
        format!("{:.3}", q.rx_bps / 1e9),
        format!("{:.3}", q.tx_pps / 1e6),
        format!("{:.3}", q.tx_bps / 1e9),
        q.rx_packets.to_string(),
        q.tx_packets.to_string(),
        total_with_reasons(all_drops(q).iter().map(|(reason, n)| (reason, n))),
        format!("{}/{}/{}", reply("arp"), reply("na"), reply("echo")),
    ]
}

fn group_stats_row(g: &GroupStats) -> Vec<String> {
    vec![
        g.name.clone(),
        g.family.name().to_owned(),
        g.vrid.to_string(),
        g.state.to_string(),
        g.adverts_sent.to_string(),
        g.adverts_received.to_string(),
        total_with_reasons(&g.adverts_rejected),
        g.garps_sent.to_string(),
        g.transitions.to_string(),
        g.split_brains.to_string(),
    ]
}

/// `bond lb (alb): arp_answered 12, assigned 8, moved 4`: every counter,
/// zeros included, in name order; `-` without any.
fn bond_stats_line(b: &BondStats) -> String {
    let counters: Vec<String> = b.counters.iter().map(|(name, n)| format!("{name} {n}")).collect();
    let counters = if counters.is_empty() { yes("-") } else { counters.join(", ") };
    format!("bond {} ({}): {counters}\n", b.name, b.mode)
}

/// The human form of a `ctl` result: one line per change.
fn format_applied(applied: &Applied) -> String {
    if applied.changes.is_empty() {
        return "no change\n".into();
    }
    applied.changes.iter().map(|c| format!("{c}\n")).collect()
}

// --- check-config ---------------------------------------------------------

/// `FILE: ok: N interface(s), M group(s)`, one line per group, and where
/// the admin socket and the metrics endpoint will be.
fn format_config_summary(file: &str, config: &Config) -> String {
    let mut out = format!("{file}: ok: {} interface(s), {} group(s)", config.interfaces.len(), config.groups.len());
    if !config.bonds.is_empty() {
        let _ = write!(out, ", {} bond(s)", config.bonds.len());
    }
    out.push('\n');
    let mut groups = Table::new(&[("", Left); 7]);
    for g in &config.groups {
        groups.row(vec![
            format!("  {}", g.name),
            g.family.name().to_owned(),
            g.interface.clone(),
            format!("vrid {}", g.vrid),
            format!("priority {}", g.priority),
            yes(g.mode.name()),
            config::prefixed(&g.vips).join(","),
        ]);
    }
    out.push_str(&groups.render());
    if !config.bonds.is_empty() {
        let mut bonds = Table::new(&[("", Left); 4]);
        for b in &config.bonds {
            bonds.row(vec![
                format!("  bond {}", b.name),
                b.mode.name().to_owned(),
                b.interfaces.join(","),
                config::prefixed(&b.vips).join(","),
            ]);
        }
        out.push_str(&bonds.render());
    }
    let _ = write!(out, "admin socket {}; ", config.admin_socket.display());
    match config.metrics {
        Some(listen) => {
            let _ = writeln!(out, "metrics on http://{listen}/metrics");
        }
        None => out.push_str("no metrics endpoint\n"),
    }
    out
}

fn config_json(file: &str, config: &Config) -> Value {
    let interfaces: Vec<Value> =
        config.interfaces.iter().map(|i| json!({ "name": i.name, "queues": i.queues })).collect();
    let groups: Vec<Value> = config
        .groups
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "family": g.family.name(),
                "interface": g.interface,
                "vrid": g.vrid,
                "priority": g.priority,
                "mode": g.mode.name(),
                "vips": config::prefixed(&g.vips),
            })
        })
        .collect();
    let bonds: Vec<Value> = config
        .bonds
        .iter()
        .map(|b| json!({ "name": b.name, "mode": b.mode.name(), "interfaces": b.interfaces, "vips": config::prefixed(&b.vips) }))
        .collect();
    json!({
        "ok": true,
        "file": file,
        "interfaces": interfaces,
        "groups": groups,
        "bonds": bonds,
        "admin_socket": config.admin_socket.display().to_string(),
        "metrics": config.metrics.map(|listen| listen.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::BTreeMap;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::AtomicUsize;
    use vipdrift_control::admin::{
        BondNicStatus, ControlStats, DaemonStatus, InterfaceStatus, MasterStatus, TransitionStatus,
    };
    use vipdrift_control::config::Family;
    use vipdrift_engine::BoundMode;
    use vipdrift_vmac::AddressMode;
    use vipdrift_vrrp::router::{Reason, State};

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
    }

    fn sample_status() -> Status {
        let zc = |queue| QueueBinding { queue, bind_mode: BoundMode::ZeroCopy };
        Status {
            daemon: DaemonStatus {
                pid: 4242,
                version: "0.1.0".into(),
                config: "/etc/vipdrift.toml".into(),
                uptime_s: 3780.4,
                reloads: 2,
                reload_failures: 1,
                last_reload_error: Some(
                    "/etc/vipdrift.toml:14: group[0].vrid: 300 is out of range; expected an integer 1..=255".into(),
                ),
            },
            interfaces: vec![
                InterfaceStatus {
                    name: "eth0".into(),
                    mac: "02:00:00:00:00:02".into(),
                    link_up: true,
                    queues: vec![zc(0), zc(1)],
                },
                InterfaceStatus {
                    name: "eth1".into(),
                    mac: "02:00:00:00:01:02".into(),
                    link_up: false,
                    queues: vec![QueueBinding { queue: 0, bind_mode: BoundMode::Skb }],
                },
            ],
            groups: vec![
                GroupStatus {
                    name: "web".into(),
                    family: Family::Ipv4,
                    interface: "eth0".into(),
                    vrid: 51,
                    state: State::Master,
                    priority: 200,
                    effective_priority: 200,
                    preempt: true,
                    advert_interval_ms: 10,
                    master: Some(MasterStatus { address: "198.51.100.2".into(), priority: 200, is_self: true }),
                    vips: vec!["198.51.100.100/24".into(), "198.51.100.101/24".into()],
                    mode: AddressMode::Vmac,
                    mac: "00:00:5e:00:01:33".into(),
                    owned: true,
                    in_state_s: 242.0,
                    last_transition: Some(TransitionStatus {
                        from: State::Backup,
                        to: State::Master,
                        reason: Reason::MasterDown,
                        time: 1_795_435_383.99,
                        elapsed_ms: 36.4,
                    }),
                    ..GroupStatus::default()
                },
                GroupStatus {
                    name: "web".into(),
                    family: Family::Ipv6,
                    interface: "eth0".into(),
                    vrid: 51,
                    state: State::Backup,
                    priority: 200,
                    effective_priority: 150,
                    maintenance: true,
                    master: Some(MasterStatus { address: "fe80::3".into(), priority: 100, is_self: false }),
                    vips: vec!["2001:db8::100/64".into()],
                    mode: AddressMode::Vmac,
                    in_state_s: 3.24,
                    last_transition: Some(TransitionStatus {
                        from: State::Master,
                        to: State::Backup,
                        reason: Reason::Maintenance,
                        time: 1_795_435_622.5,
                        elapsed_ms: 0.08,
                    }),
                    ..GroupStatus::default()
                },
                GroupStatus {
                    name: "db".into(),
                    family: Family::Ipv4,
                    interface: "eth1".into(),
                    vrid: 7,
                    state: State::Fault,
                    priority: 100,
                    effective_priority: 100,
                    vips: vec!["203.0.113.100/24".into()],
                    mode: AddressMode::OwnMac,
                    in_state_s: 3780.0,
                    ..GroupStatus::default()
                },
            ],
            bonds: vec![
                BondStatus {
                    name: "lb".into(),
                    mode: BondMode::Alb,
                    vips: vec!["198.51.100.200/24".into()],
                    primary_mac: "02:00:00:00:20:01".into(),
                    nics: vec![
                        BondNicStatus {
                            name: "b0".into(),
                            hardware_mac: "02:00:00:00:20:01".into(),
                            mac: "02:00:00:00:20:01".into(),
                            link_up: true,
                            primary: true,
                            clients: 8,
                            link_changes: 0,
                            queues: vec![zc(0), zc(1)],
                        },
                        BondNicStatus {
                            name: "b1".into(),
                            hardware_mac: "02:00:00:00:20:02".into(),
                            mac: "02:00:00:00:20:02".into(),
                            link_up: false,
                            primary: false,
                            clients: 0,
                            link_changes: 2,
                            queues: vec![zc(0)],
                        },
                    ],
                    clients: 8,
                    client_capacity: 4096,
                },
                BondStatus {
                    name: "uplink".into(),
                    mode: BondMode::Tlb,
                    vips: vec!["203.0.113.10/24".into(), "203.0.113.11/24".into()],
                    primary_mac: "02:00:00:00:30:01".into(),
                    nics: vec![
                        // u0 lost its link; u1 took the primary MAC, u0 holds u1's.
                        BondNicStatus {
                            name: "u0".into(),
                            hardware_mac: "02:00:00:00:30:01".into(),
                            mac: "02:00:00:00:30:02".into(),
                            link_up: false,
                            primary: false,
                            link_changes: 1,
                            queues: vec![QueueBinding { queue: 0, bind_mode: BoundMode::Copy }],
                            ..BondNicStatus::default()
                        },
                        BondNicStatus {
                            name: "u1".into(),
                            hardware_mac: "02:00:00:00:30:02".into(),
                            mac: "02:00:00:00:30:01".into(),
                            link_up: true,
                            primary: true,
                            link_changes: 0,
                            queues: vec![QueueBinding { queue: 0, bind_mode: BoundMode::Copy }],
                            ..BondNicStatus::default()
                        },
                    ],
                    ..BondStatus::default()
                },
            ],
        }
    }

    fn sample_stats() -> Stats {
        let drops = |tx_ring_full, no_endpoint| {
            counts(&[("bad_ethertype", 0), ("no_endpoint", no_endpoint), ("runt", 0), ("tx_ring_full", tx_ring_full)])
        };
        Stats {
            rate_window_s: 1.0,
            queues: vec![
                QueueStats {
                    port: "eth0".into(),
                    queue: 0,
                    bind_mode: BoundMode::ZeroCopy,
                    rx_packets: 1_234_567_890,
                    rx_bytes: 79_012_345_000,
                    tx_packets: 1_234_560_000,
                    tx_bytes: 79_011_840_000,
                    to_control: 36_000,
                    rx_pps: 14_200_000.0,
                    tx_pps: 14_199_000.0,
                    rx_bps: 7_270_400_000.0,
                    tx_bps: 7_269_888_000.0,
                    drops: drops(12, 3),
                    replies: counts(&[("arp", 3), ("echo", 5), ("na", 0)]),
                    rejected: counts(&[("not_owned", 0)]),
                    kernel: counts(&[("rx_fill_ring_empty_descs", 9), ("rx_ring_full", 4)]),
                    tx_kernel_dropped: 1,
                },
                QueueStats {
                    port: "eth0".into(),
                    queue: 1,
                    bind_mode: BoundMode::ZeroCopy,
                    rx_packets: 98,
                    tx_packets: 97,
                    drops: drops(0, 0),
                    replies: counts(&[("arp", 97), ("echo", 0), ("na", 0)]),
                    ..QueueStats::default()
                },
            ],
            groups: vec![
                GroupStats {
                    name: "web".into(),
                    family: Family::Ipv4,
                    vrid: 51,
                    state: State::Master,
                    adverts_sent: 24_200,
                    adverts_received: 8_031,
                    adverts_rejected: counts(&[("malformed", 1), ("not_a_peer", 0), ("own_advert", 0)]),
                    garps_sent: 10,
                    transitions: 2,
                    split_brains: 0,
                    ..GroupStats::default()
                },
                GroupStats {
                    name: "db".into(),
                    family: Family::Ipv4,
                    vrid: 7,
                    state: State::Fault,
                    adverts_rejected: counts(&[("malformed", 0)]),
                    transitions: 1,
                    ..GroupStats::default()
                },
            ],
            bonds: vec![
                BondStats {
                    name: "lb".into(),
                    mode: BondMode::Alb,
                    counters: counts(&[
                        ("announcements", 3),
                        ("arp_answered", 12),
                        ("arp_dropped", 0),
                        ("assigned", 8),
                        ("client_updates", 10),
                        ("evicted", 0),
                        ("moved", 4),
                        ("no_nic_up", 0),
                    ]),
                },
                BondStats {
                    name: "uplink".into(),
                    mode: BondMode::Tlb,
                    counters: counts(&[("announcements", 2), ("arp_answered", 31), ("takeovers", 1)]),
                },
            ],
            control: ControlStats {
                inject_failures: 0,
                admin_requests: 17,
                admin_errors: 1,
                scrapes: 3,
                reloads: 2,
                reload_failures: 1,
                control_stalls: 0,
            },
            interfaces: vec![InterfaceStats {
                port: "eth0".into(),
                steering: counts(&[("lease_expired", 2), ("not_owned", 0), ("to_kernel", 120)]),
                lease_stalls: 1,
            }],
        }
    }

    /// Each column starts at the same character in every line of a table.
    fn column_starts(text: &str, headers: &[&str]) -> Vec<usize> {
        let header = text.lines().next().unwrap();
        headers.iter().map(|h| header.find(h).unwrap_or_else(|| panic!("{h} in {header}"))).collect()
    }

    #[test]
    fn tables_align_left_and_right() {
        let mut t = Table::new(&[("NAME", Left), ("N", Right), ("NOTE", Left)]);
        t.row(vec!["a".into(), "1234".into(), "x".into()]);
        t.row(vec!["longer→".into(), "5".into(), String::new()]);
        assert_eq!(t.render(), "NAME        N  NOTE\na        1234  x\nlonger→     5\n");
        let mut plain = Table::new(&[("", Left); 2]);
        plain.row(vec!["a".into(), "b".into()]);
        assert_eq!(plain.render(), "a  b\n", "no header line when every header is empty");
    }

    #[test]
    fn status_tables_line_up() {
        let text = format_status(&sample_status());
        let groups = &text[text.find("GROUP").unwrap()..];
        let lines: Vec<&str> = groups.lines().take_while(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 4, "{groups}");
        let heads = ["GROUP", "FAMILY", "IFACE", "STATE", "MASTER", "VIPS", "MODE", "LAST TRANSITION"];
        let starts = column_starts(groups, &heads);
        for line in &lines[1..] {
            let chars: Vec<char> = line.chars().collect();
            for (&start, head) in starts.iter().zip(heads) {
                assert!(start == 0 || chars[start - 1] == ' ', "{head} starts a cell in {line}");
                assert_ne!(chars[start], ' ', "{head} is left-aligned in {line}");
            }
        }
        // Right-aligned columns end where their header ends.
        let vrid_end = lines[0].find("VRID").unwrap() + 4;
        for line in &lines[1..] {
            let chars: Vec<char> = line.chars().collect();
            assert!(chars[vrid_end - 1].is_ascii_digit() && chars[vrid_end] == ' ', "{line}");
        }
    }

    #[test]
    fn status_shows_maintenance_masters_and_transitions() {
        let text = format_status(&sample_status());
        let row = |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap().to_owned();
        let v6 = row("ipv6");
        assert!(v6.contains("backup (maint)") && v6.contains("200/150") && v6.contains("fe80::3 (100)"), "{v6}");
        assert!(v6.contains("master→backup maintenance after 0.1ms") && v6.contains("3.2s"), "{v6}");
        let v4 = row("198.51.100.100/24");
        assert!(v4.contains("self (200)") && !v4.contains("(maint)") && v4.contains("4m02s"), "{v4}");
        assert!(v4.contains("198.51.100.100/24,198.51.100.101/24"), "{v4}");
        assert!(v4.contains("backup→master master_down after 36.4ms"), "{v4}");
        let db = row("own_mac");
        assert!(db.contains("fault") && db.contains("1h03m") && db.trim_end().ends_with('-'), "{db}");
        assert!(text.starts_with(
            "daemon: pid 4242, version 0.1.0, up 1h03m, config /etc/vipdrift.toml, reloads 2 ok, 1 refused\n"
        ));
        assert!(text.contains("last reload refused: /etc/vipdrift.toml:14: group[0].vrid"));
        assert!(row("eth1  ").contains("down  0:skb"));
        assert!(row("eth0  ").contains("up    0:zero-copy, 1:zero-copy"));
    }

    #[test]
    fn status_shows_bonds_after_the_groups() {
        let text = format_status(&sample_status());
        let bonds = &text[text.find("\nbond ").unwrap() + 1..];
        assert!(text[..text.len() - bonds.len()].contains("LAST TRANSITION"), "bonds come after the groups");
        assert_eq!(
            bonds,
            "\
bond lb (alb)  vips 198.51.100.200/24  clients 8/4096
  NIC  LINK  PRIMARY  MAC                HARDWARE MAC       CLIENTS  LINK CHANGES  QUEUES
  b0   up    yes      02:00:00:00:20:01  02:00:00:00:20:01        8             0  0:zero-copy, 1:zero-copy
  b1   down  no       02:00:00:00:20:02  02:00:00:00:20:02        0             2  0:zero-copy

bond uplink (tlb)  vips 203.0.113.10/24,203.0.113.11/24  primary mac 02:00:00:00:30:01
  NIC  LINK  PRIMARY  MAC                HARDWARE MAC       LINK CHANGES  QUEUES
  u0   down  no       02:00:00:00:30:02  02:00:00:00:30:01             1  0:copy
  u1   up    yes      02:00:00:00:30:01  02:00:00:00:30:02             0  0:copy
"
        );
        // Without bonds (or from an older daemon) there is no bond section.
        let plain = Status { bonds: Vec::new(), ..sample_status() };
        assert!(!format_status(&plain).contains("bond"));
        let empty = BondStatus { name: "x".into(), mode: BondMode::Tlb, ..BondStatus::default() };
        assert_eq!(
            format_bond_status(&empty),
            "bond x (tlb)  vips -  primary mac -\n  NIC  LINK  PRIMARY  MAC  HARDWARE MAC  LINK CHANGES  QUEUES\n"
        );
    }

    #[test]
    fn stats_show_bond_counters_and_steering_before_control() {
        let text = format_stats(&sample_stats());
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        assert_eq!(
            tail,
            [
                "control: stalls 0, inject failures 0, admin requests 17 (1 malformed), scrapes 3, reloads 2 ok, \
                 1 refused; rates over 1.0s",
                "steering eth0: to kernel 120, dropped not owned 0, dropped lease expired 2; worker stalls 1",
                "bond uplink (tlb): announcements 2, arp_answered 31, takeovers 1",
                "bond lb (alb): announcements 3, arp_answered 12, arp_dropped 0, assigned 8, client_updates 10, \
                 evicted 0, moved 4, no_nic_up 0",
                "",
            ]
        );
        let none = BondStats { name: "x".into(), mode: BondMode::Alb, ..BondStats::default() };
        assert_eq!(bond_stats_line(&none), "bond x (alb): -\n");
        let plain = Stats { bonds: Vec::new(), ..sample_stats() };
        assert!(!format_stats(&plain).contains("bond"));
    }

    #[test]
    fn durations() {
        let cases = [
            (0.0, "0.0s"),
            (-1.0, "0.0s"),
            (3.24, "3.2s"),
            (59.94, "59.9s"),
            (59.96, "1m00s"),
            (242.0, "4m02s"),
            (3599.4, "59m59s"),
            (3599.6, "1h00m"),
            (3780.4, "1h03m"),
            (86_399.0, "23h59m"),
            (190_800.0, "2d05h"),
            (1e300, "213503982334601d07h"),
            (f64::NAN, "-"),
        ];
        for (seconds, text) in cases {
            assert_eq!(format_duration(seconds), text, "{seconds}");
        }
        assert_eq!(format_ms(34.12), "34.1ms");
        assert_eq!(format_ms(999.9), "999.9ms");
        assert_eq!(format_ms(999.96), "1.0s");
        assert_eq!(format_ms(1500.0), "1.5s");
        assert_eq!(format_ms(f64::NAN), "-");
    }

    #[test]
    fn zero_reasons_are_left_out() {
        assert_eq!(total_with_reasons(&counts(&[])), "0");
        assert_eq!(total_with_reasons(&counts(&[("a", 0), ("b", 0)])), "0");
        assert_eq!(total_with_reasons(&counts(&[("a", 0), ("b", 3), ("c", 9)])), "12 (b=3, c=9)");
        assert_eq!(
            total_with_reasons(&counts(&[("a", u64::MAX), ("b", 1)])),
            format!("{} (a={}, b=1)", u64::MAX, u64::MAX)
        );
        let text = format_stats(&sample_stats());
        let q0 = text.lines().find(|l| l.starts_with("eth0  0")).unwrap();
        // The kernel's frame losses count with ours; its fill-ring-empty events are not frames.
        let both = "20 (no_endpoint=3, tx_ring_full=12, kernel_rx_ring_full=4, kernel_tx_dropped=1)";
        assert!(q0.contains(both) && !q0.contains("runt") && !q0.contains("fill_ring"), "{q0}");
        assert!(q0.contains("14.200") && q0.contains("7.270") && q0.ends_with("3/0/5"), "{q0}");
        let q1 = text.lines().find(|l| l.starts_with("eth0  1")).unwrap();
        assert!(q1.contains("  0  ") && q1.ends_with("97/0/0"), "{q1}");
        let web = text.lines().find(|l| l.starts_with("web")).unwrap();
        assert!(web.contains("1 (malformed=1)") && !web.contains("own_advert"), "{web}");
        assert!(text.ends_with(
            "control: stalls 0, inject failures 0, admin requests 17 (1 malformed), scrapes 3, reloads 2 ok, 1 refused; \
             rates over 1.0s\n"
        ));
    }

    #[test]
    fn stats_tables_line_up() {
        let text = format_stats(&sample_stats());
        let queues: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
        assert_eq!(queues.len(), 3, "{text}");
        for head in ["RX Mpps", "TX Gbps", "RX pkts", "TX pkts"] {
            let end = queues[0].find(head).unwrap() + head.len();
            for line in &queues[1..] {
                let b = line.as_bytes();
                assert!(b[end - 1].is_ascii_digit() && b[end] == b' ', "{head} right-aligned in {line}");
            }
        }
    }

    #[test]
    fn ctl_output() {
        assert_eq!(format_applied(&Applied::default()), "no change\n");
        let applied =
            Applied { changes: vec!["web/ipv4: priority 200 -> 150".into(), "web/ipv6: priority 200 -> 150".into()] };
        assert_eq!(format_applied(&applied), "web/ipv4: priority 200 -> 150\nweb/ipv6: priority 200 -> 150\n");
    }

    /// The sample output quoted in the README (`cargo test -p vipdrift-tools
    /// sample_output -- --nocapture`).
    #[test]
    fn sample_output() {
        let status = format_status(&sample_status());
        let stats = format_stats(&sample_stats());
        println!("$ vipdrift status\n{status}\n$ vipdrift stats\n{stats}");
        assert!(status.lines().chain(stats.lines()).all(|l| l == l.trim_end()), "no trailing spaces");
    }

    // --- the client against a fake daemon ------------------------------

    fn socket_path() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("vipdrift-cli-test-{}-{n}.sock", std::process::id()))
    }

    /// A daemon that answers each request line with the next of `replies`
    /// (raw bytes), then closes; returns the requests it read.
    fn fake_daemon(replies: Vec<Vec<u8>>) -> (PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let path = socket_path();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut requests = Vec::new();
            for reply in replies {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                requests.push(line);
                reader.get_mut().write_all(&reply).unwrap();
            }
            requests
        });
        (path, handle)
    }

    #[test]
    fn client_sends_an_envelope_and_reads_the_result() {
        let status = Reply::success(&sample_status()).to_line();
        let applied = Reply::success(&Applied { changes: vec!["web: maintenance on".into()] }).to_line();
        let (path, daemon) = fake_daemon(vec![status.into_bytes(), applied.into_bytes()]);
        let mut client = Client::connect(&path).unwrap();
        let value = client.call(Request::Status).unwrap();
        assert_eq!(decode::<Status>(value, "status").unwrap(), sample_status());
        let value = client.call(Request::Maintenance { group: "web".into(), on: true }).unwrap();
        assert_eq!(format_applied(&decode(value, "ctl").unwrap()), "web: maintenance on\n");
        let requests = daemon.join().unwrap();
        assert_eq!(requests[0], "{\"v\":1,\"cmd\":\"status\"}\n");
        assert_eq!(requests[1], "{\"v\":1,\"cmd\":\"maintenance\",\"group\":\"web\",\"on\":true}\n");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn client_reports_what_went_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (b"{\"v\":1,\"ok\":false,\"error\":\"no group \\\"x\\\"\"}\n", "refused by the daemon: no group \"x\""),
            (b"{\"v\":1,\"ok\":false}\n", "refused by the daemon: no reason given"),
            (b"{\"v\":2,\"ok\":true,\"result\":{}}\n", "admin API version 2"),
            (b"{\"v\":1,\"ok\":true}\n", "carries no result"),
            (b"hello\n", "not understood"),
            (b"", "closed the connection without replying"),
        ];
        for (reply, fragment) in cases {
            let (path, daemon) = fake_daemon(vec![reply.to_vec()]);
            let error = Client::connect(&path).unwrap().call(Request::Stats).unwrap_err();
            assert!(error.contains(fragment), "{}: {error}", String::from_utf8_lossy(reply));
            daemon.join().unwrap();
            let _ = std::fs::remove_file(&path);
        }
        // A result of the wrong shape says so and points at --json.
        let error = decode::<Stats>(json!({"queues": 3}), "stats").unwrap_err();
        assert!(error.contains("stats result is not understood") && error.contains("--json"), "{error}");
    }

    #[test]
    fn reply_lines_are_bounded() {
        let mut reader = BufReader::new(&b"0123456789\nrest"[..]);
        assert!(matches!(read_line(&mut reader, 9), Err(ReadError::TooLong)));
        let mut reader = BufReader::new(&b"0123456789\r\nrest"[..]);
        assert_eq!(read_line(&mut reader, 11).unwrap(), b"0123456789");
        assert_eq!(read_line(&mut reader, 11).unwrap(), b"rest", "a last line without newline");
        assert!(matches!(read_line(&mut reader, 11), Err(ReadError::Closed)));
    }

    #[test]
    fn connection_errors_help() {
        let missing = socket_path();
        let error = Client::connect(&missing).err().unwrap();
        assert!(error.starts_with(&format!("cannot connect to {}: ", missing.display())), "{error}");
        assert!(error.contains("is `vipdrift run` running?") && error.contains("[admin] socket"), "{error}");
        assert!(error.contains(DEFAULT_SOCKET), "{error}");
        // A socket file nobody listens on.
        let stale = socket_path();
        drop(UnixListener::bind(&stale).unwrap());
        let error = Client::connect(&stale).err().unwrap();
        assert!(error.contains("nothing listens there") && error.contains("vipdrift run"), "{error}");
        let _ = std::fs::remove_file(&stale);
        let denied = connect_error(Path::new("/run/vipdrift/vipdrift.sock"), &ErrorKind::PermissionDenied.into());
        assert!(denied.contains("mode 0600") && denied.contains("as that user or as root"), "{denied}");
    }

    // --- the command line -----------------------------------------------

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(Subcommand, Debug)]
    enum TestCommand {
        Status(StatusArgs),
        Stats(StatsArgs),
        Ctl(CtlArgs),
        CheckConfig(CheckConfigArgs),
    }

    fn parse(args: &str) -> Result<TestCommand, String> {
        Cli::try_parse_from(std::iter::once("vipdrift").chain(args.split(' ')))
            .map(|c| c.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn command_lines() {
        match parse("ctl priority web 254 --socket /tmp/a.sock").unwrap() {
            TestCommand::Ctl(CtlArgs { command: CtlCommand::Priority { group, priority: 254 }, conn }) => {
                assert_eq!((group.as_str(), conn.socket.to_str()), ("web", Some("/tmp/a.sock")));
            }
            other => panic!("{other:?}"),
        }
        match parse("ctl --json maintenance db off").unwrap() {
            TestCommand::Ctl(CtlArgs { command: CtlCommand::Maintenance { state: OnOff::Off, .. }, conn }) => {
                assert!(conn.json);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("ctl reload").unwrap(), TestCommand::Ctl(CtlArgs { command: CtlCommand::Reload, .. })));
        for bad in [
            "ctl priority web 0",
            "ctl priority web 255",
            "ctl priority web x",
            "ctl maintenance web yes",
            "stats --count 0",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        match parse("stats --count 3").unwrap() {
            TestCommand::Stats(s) => assert_eq!((s.watch, s.count), (false, Some(3))),
            other => panic!("{other:?}"),
        }
        match parse("check-config --config x.toml --json").unwrap() {
            TestCommand::CheckConfig(c) => assert!(c.json && c.config == Path::new("x.toml")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn check_config_lists_bonds() {
        let text = "[[interface]]\nname = \"b0\"\n[[interface]]\nname = \"b1\"\n\n[[bond]]\nname = \"lb\"\nmode = \"alb\"\ninterfaces = [\"b0\", \"b1\"]\nvips = [\"198.51.100.100/24\"]\n";
        let config = config::parse(text, "bond.toml").unwrap();
        let summary = format_config_summary("bond.toml", &config);
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines[0], "bond.toml: ok: 2 interface(s), 0 group(s), 1 bond(s)");
        assert!(lines[1].starts_with("  bond lb  alb  b0,b1  198.51.100.100/24"), "{summary}");
        let value = config_json("bond.toml", &config);
        assert_eq!(value["bonds"][0]["mode"], "alb");
        assert_eq!(value["bonds"][0]["interfaces"][1], "b1");
    }

    #[test]
    fn check_config_summary_and_json() {
        let text = include_str!("../../examples/vipdrift.toml");
        let config = config::parse(text, "vipdrift.toml").unwrap();
        let summary = format_config_summary("vipdrift.toml", &config);
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(
            lines[0],
            format!("vipdrift.toml: ok: {} interface(s), {} group(s)", config.interfaces.len(), config.groups.len())
        );
        assert_eq!(lines.len(), config.groups.len() + 2, "{summary}");
        assert!(lines[1].starts_with("  web  ipv4  eth0  vrid 51  priority 200  vmac"), "{summary}");
        assert!(lines[1].ends_with("198.51.100.100/24,198.51.100.101/24"), "{summary}");
        assert!(lines[2].contains("ipv6") && lines[2].ends_with("2001:db8::100/64"), "{summary}");
        assert!(lines.last().unwrap().starts_with("admin socket /run/vipdrift/vipdrift.sock; metrics on http://"));
        let value = config_json("vipdrift.toml", &config);
        assert_eq!(value["ok"], true);
        assert_eq!(value["groups"][0]["vips"][1], "198.51.100.101/24");
        assert_eq!(value["groups"][1]["family"], "ipv6");
    }
}
