//! The control thread's sockets: the admin API's Unix socket and the
//! optional metrics endpoint, served through the control thread's mio poll.
//!
//! Everything here is non-blocking and bounded: a request line longer than
//! [`MAX_REQUEST`], a client that stops reading its replies, or one that
//! idles past [`IDLE_TIMEOUT`] is disconnected; connections beyond
//! [`MAX_CONNECTIONS`] are closed as they arrive. The control thread never
//! waits on a client. What a request means is decided by the daemon: this
//! module hands it the requests and writes back its replies.

use crate::admin::{parse_request, Reply, Request, MAX_REQUEST};
use crate::http::{http_answer, http_response, parse_http_request, reason_phrase, HttpRequest};
use crate::metrics::{CONTENT_TYPE, METRICS_PATH};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The admin socket's listener.
pub(crate) const ADMIN: Token = Token(1);
/// The metrics listener.
pub(crate) const METRICS: Token = Token(2);
const FIRST_CONNECTION: usize = 16;
/// Open connections at most; more are closed at once.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// A connection that sends nothing for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Replies a client has not read, at most; beyond this it is disconnected.
const MAX_PENDING_OUTPUT: usize = 8 << 20;
/// Bytes read from one client per round of the control loop.
const READ_BUDGET: usize = 64 << 10;

/// What a client asked.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// An admin request (parsed), to be answered with [`Listeners::reply`].
    Admin(Request),
    /// A metrics scrape (`head_only` for HEAD), to be answered with [`Listeners::reply_metrics`].
    Scrape {
        /// HEAD rather than GET.
        head_only: bool,
    },
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
}

struct Connection {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Close once the output is written (an error was replied, or HTTP).
    closing: bool,
    /// Requests handed to the daemon and not answered yet.
    pending: u32,
    last_active: Instant,
    writable_interest: bool,
}

impl Connection {
    /// Hands over every complete request line; a malformed or oversized one
    /// gets an error reply and the connection closes.
    fn take_admin_requests(
        &mut self,
        token: Token,
        counters: &mut ListenerCounters,
        incoming: &mut Vec<(Token, Incoming)>,
    ) {
        while !self.closing {
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                if self.input.len() >= MAX_REQUEST {
                    counters.admin_errors += 1;
                    let reply = Reply::failure(format!(
                        "request longer than {MAX_REQUEST} bytes without a newline; expected one JSON object per line"
                    ));
                    self.output.extend_from_slice(reply.to_line().as_bytes());
                    self.closing = true;
                    self.input.clear();
                }
                return;
            };
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line.len() >= MAX_REQUEST {
                counters.admin_errors += 1;
                let reply = Reply::failure(format!("request longer than {MAX_REQUEST} bytes"));
                self.output.extend_from_slice(reply.to_line().as_bytes());
                self.closing = true;
                return;
            }
            match parse_request(line) {
                Ok(request) => {
                    counters.admin_requests += 1;
                    self.pending += 1;
                    incoming.push((token, Incoming::Admin(request)));
                }
                Err(error) => {
                    counters.admin_errors += 1;
                    tracing::debug!(%error, "admin request refused");
                    self.output.extend_from_slice(Reply::failure(error).to_line().as_bytes());
                    self.closing = true;
                    self.input.clear();
                }
            }
        }
    }

    /// Hands over a complete scrape; any other request is answered here.
    fn take_http_request(&mut self, token: Token, incoming: &mut Vec<(Token, Incoming)>) {
        if self.closing || self.pending > 0 {
            return;
        }
        let request = parse_http_request(&self.input);
        match &request {
            HttpRequest::Incomplete => {}
            HttpRequest::Get { path, head_only } if path == METRICS_PATH => {
                self.closing = true;
                self.pending += 1;
                incoming.push((token, Incoming::Scrape { head_only: *head_only }));
            }
            _ => {
                self.closing = true;
                self.output.extend(http_answer(&request, String::new).unwrap_or_default());
            }
        }
    }

    /// Writes as much pending output as the socket takes; true if the
    /// connection failed.
    fn write_out(&mut self) -> bool {
        let mut written = 0;
        let mut failed = false;
        while written < self.output.len() {
            match self.stream.write(&self.output[written..]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        self.output.drain(..written);
        failed
    }
}

/// Counters of the listeners.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ListenerCounters {
    /// Admin requests parsed.
    pub(crate) admin_requests: u64,
    /// Admin requests refused (malformed, oversized).
    pub(crate) admin_errors: u64,
    /// Scrapes answered.
    pub(crate) scrapes: u64,
}

/// The listeners and their connections.
pub(crate) struct Listeners {
    /// The admin socket and its path, unless the embedder turned it off.
    admin: Option<(UnixListener, PathBuf)>,
    metrics: Option<TcpListener>,
    connections: HashMap<Token, Connection>,
    next_token: usize,
    /// Connections with input left over from the last round.
    unread: Vec<Token>,
    pub(crate) counters: ListenerCounters,
}

/// Why an endpoint could not be opened.
fn socket_error(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("admin socket {}: {what}: {e}", path.display())
}

/// Binds the admin socket at `path` with mode 0600: its directory is
/// created if missing; a stale socket left by a dead daemon is replaced, a
/// live one (another daemon answers) is not.
fn bind_admin(path: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| socket_error(path, "cannot create its directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(socket_error(
                    path,
                    "in use",
                    "another vipdrift answers on it; give this one its own `[admin] socket`",
                ));
            }
            std::fs::remove_file(path).map_err(|e| socket_error(path, "cannot remove the stale socket", e))?;
        }
        Ok(_) => return Err(socket_error(path, "exists", "it is not a socket; expected a free path")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(socket_error(path, "cannot inspect it", e)),
    }
    // Bound inside a fresh private directory, given mode 0600, then moved
    // into place: no other user can connect to it at any moment.
    let dir = path.parent().unwrap_or(Path::new("/"));
    let private = dir.join(format!(".vipdrift-{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| socket_error(path, "cannot create a private directory beside it", e))?;
    let staged = private.join("admin.sock");
    let result = UnixListener::bind(&staged).map_err(|e| socket_error(path, "cannot bind", e)).and_then(|listener| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| socket_error(path, "cannot set mode 0600", e))?;
        std::fs::rename(&staged, path).map_err(|e| socket_error(path, "cannot move it into place", e))?;
        Ok(listener)
    });
    let _ = std::fs::remove_dir_all(&private);
    let listener = result?;
    Ok(listener)
}

impl Listeners {
    /// Opens the admin socket (if any) and the metrics listener (if asked),
    /// and registers them with `registry`.
    pub(crate) fn open(
        registry: &Registry,
        admin: Option<&Path>,
        metrics: Option<SocketAddr>,
    ) -> Result<Listeners, String> {
        let admin = match admin {
            None => None,
            Some(path) => {
                let mut listener = bind_admin(path)?;
                registry
                    .register(&mut listener, ADMIN, Interest::READABLE)
                    .map_err(|e| socket_error(path, "cannot register", e))?;
                Some((listener, path.to_owned()))
            }
        };
        let mut listeners = Listeners {
            admin,
            metrics: None,
            connections: HashMap::new(),
            next_token: FIRST_CONNECTION,
            unread: Vec::new(),
            counters: ListenerCounters::default(),
        };
        if let Some(address) = metrics {
            let mut listener = TcpListener::bind(address)
                .map_err(|e| format!("metrics endpoint {address}: cannot listen: {e}; check `[metrics] listen`"))?;
            registry
                .register(&mut listener, METRICS, Interest::READABLE)
                .map_err(|e| format!("metrics endpoint {address}: cannot register: {e}"))?;
            listeners.metrics = Some(listener);
        }
        Ok(listeners)
    }

    /// The admin socket's path, if there is one.
    pub(crate) fn admin_path(&self) -> Option<&Path> {
        self.admin.as_ref().map(|(_, path)| path.as_path())
    }

    /// Where the metrics endpoint listens.
    pub(crate) fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Handles one poll event; pushes what clients asked to `incoming`.
    pub(crate) fn handle(&mut self, registry: &Registry, event: &Event, incoming: &mut Vec<(Token, Incoming)>) {
        match event.token() {
            ADMIN => self.accept(registry, true),
            METRICS => self.accept(registry, false),
            token => {
                if event.is_readable() || event.is_read_closed() {
                    self.read(registry, token, incoming);
                }
                if event.is_writable() {
                    self.flush(registry, token);
                }
            }
        }
    }

    fn accept(&mut self, registry: &Registry, admin: bool) {
        // Bounded: a connect storm cannot keep the control thread here.
        for _ in 0..64 {
            let accepted = if admin {
                let Some((listener, _)) = &self.admin else { return };
                listener.accept().map(|(s, _)| Stream::Unix(s))
            } else if let Some(listener) = &self.metrics {
                listener.accept().map(|(s, _)| Stream::Tcp(s))
            } else {
                return;
            };
            let mut stream = match accepted {
                Ok(stream) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    return;
                }
            };
            if self.connections.len() >= MAX_CONNECTIONS {
                tracing::warn!(limit = MAX_CONNECTIONS, "too many admin/metrics connections; closing a new one");
                // One short line fits any fresh socket buffer: the client learns why.
                let refusal = if admin {
                    Reply::failure(format!("too many connections (at most {MAX_CONNECTIONS}); try again"))
                        .to_line()
                        .into_bytes()
                } else {
                    http_response(503, reason_phrase(503), "text/plain", "busy\n", false)
                };
                let _ = stream.write(&refusal);
                continue;
            }
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(FIRST_CONNECTION);
            if registry.register(stream.source(), token, Interest::READABLE).is_err() {
                continue;
            }
            let connection = Connection {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                closing: false,
                pending: 0,
                last_active: Instant::now(),
                writable_interest: false,
            };
            self.connections.insert(token, connection);
        }
    }

    /// Reads what the client sent, handing complete requests over as they
    /// arrive. At most [`READ_BUDGET`] bytes per call: a client that keeps
    /// writing is put on the `unread` list and read again in the next round
    /// (the poll is edge-triggered and would not report it again).
    fn read(&mut self, registry: &Registry, token: Token, incoming: &mut Vec<(Token, Incoming)>) {
        let mut buf = [0u8; 4096];
        let mut budget = READ_BUDGET;
        let mut eof = false;
        loop {
            let Some(conn) = self.connections.get_mut(&token) else { return };
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    conn.last_active = Instant::now();
                    if !conn.closing {
                        conn.input.extend_from_slice(&buf[..n]);
                    }
                    if matches!(conn.stream, Stream::Unix(_)) {
                        conn.take_admin_requests(token, &mut self.counters, incoming);
                    } else {
                        conn.take_http_request(token, incoming);
                    }
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.unread.push(token);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let Some(conn) = self.connections.get_mut(&token) else { return };
        if eof && conn.output.is_empty() && conn.pending == 0 {
            self.close(registry, token);
            return;
        }
        if eof {
            conn.closing = true;
        }
        self.flush(registry, token);
    }

    /// Reads again from clients that had more to say than one round's budget.
    pub(crate) fn resume(&mut self, registry: &Registry, incoming: &mut Vec<(Token, Incoming)>) {
        for token in std::mem::take(&mut self.unread) {
            self.read(registry, token, incoming);
        }
    }

    /// Some client still has unread input (the next poll must not sleep).
    pub(crate) fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    /// Queues a reply to an admin request.
    pub(crate) fn reply(&mut self, registry: &Registry, token: Token, reply: &Reply) {
        let Some(conn) = self.connections.get_mut(&token) else { return };
        conn.pending = conn.pending.saturating_sub(1);
        conn.output.extend_from_slice(reply.to_line().as_bytes());
        self.flush(registry, token);
    }

    /// Answers a scrape with `body` (Prometheus text format).
    pub(crate) fn reply_metrics(&mut self, registry: &Registry, token: Token, body: &str, head_only: bool) {
        let Some(conn) = self.connections.get_mut(&token) else { return };
        self.counters.scrapes += 1;
        conn.pending = conn.pending.saturating_sub(1);
        conn.output.extend(http_response(200, reason_phrase(200), CONTENT_TYPE, body, head_only));
        self.flush(registry, token);
    }

    fn flush(&mut self, registry: &Registry, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else { return };
        let failed = conn.write_out();
        if failed
            || conn.output.len() > MAX_PENDING_OUTPUT
            || (conn.closing && conn.output.is_empty() && conn.pending == 0)
        {
            self.close(registry, token);
            return;
        }
        let want_writable = !conn.output.is_empty();
        if want_writable != conn.writable_interest {
            let interest = if want_writable { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            if registry.reregister(conn.stream.source(), token, interest).is_ok() {
                conn.writable_interest = want_writable;
            }
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut conn) = self.connections.remove(&token) {
            let _ = registry.deregister(conn.stream.source());
        }
    }

    /// Closes connections idle past [`IDLE_TIMEOUT`].
    pub(crate) fn expire(&mut self, registry: &Registry, now: Instant) {
        let idle: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| now.duration_since(c.last_active) > IDLE_TIMEOUT)
            .map(|(t, _)| *t)
            .collect();
        for token in idle {
            self.close(registry, token);
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.admin {
            let _ = std::fs::remove_file(path);
        }
    }
}
