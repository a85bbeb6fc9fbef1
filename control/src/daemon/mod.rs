//! The daemon: the engine's workers on every configured queue, serving the
//! groups' VIPs, and the control thread that runs the node's VRRP groups.
//!
//! [`Daemon::builder`] takes a configuration (a value, or a file that a
//! reload re-reads) and, optionally, a [`VipHandler`] factory called once
//! per worker, whose handler gets the VIPs' other traffic on the pinned
//! workers. [`DaemonBuilder::start`] prepares every interface on the calling
//! thread (so a failure comes back as an error, with nothing left behind),
//! then runs the control thread and returns a [`Daemon`]: its
//! [`DaemonHandle`] works from any thread while it runs.
//!
//! ```no_run
//! use vipdrift_control::{config, Daemon, DaemonEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = config::load("/etc/vipdrift/vipdrift.toml".as_ref())?;
//! let daemon = Daemon::builder(config).admin_socket(None).start()?;
//! let events = daemon.handle().events();
//! std::thread::spawn(move || {
//!     for event in events {
//!         if let DaemonEvent::Transition(t) = event {
//!             println!("{} is now {} ({})", t.group, t.to.name(), t.reason.name());
//!         }
//!     }
//! });
//! println!("{:?}", daemon.handle().status()?.groups);
//! let report = daemon.stop(); // graceful: masters hand over first
//! println!("{} adverts sent", report.groups.iter().map(|g| g.counters.adverts_sent).sum::<u64>());
//! # Ok(())
//! # }
//! ```
//!
//! The control thread is a thin shell around the sans-IO [`Node`]: a mio
//! `Poll` whose `Waker` the workers ring when they hand it an advert (and
//! the handle rings when it asks something), whose timeout is the next
//! deadline (a group's timer, a link check). What the node decides goes
//! back to the workers through their command queues: adverts and GARP
//! bursts are injected into a worker's TX ring (they leave through AF_XDP,
//! never through a kernel socket), ownership changes are applied to every
//! worker's responder between bursts.
//!
//! The same poll serves the admin API's Unix socket and the metrics
//! endpoint (see [`crate::admin`]); requests are answered between timer and
//! frame work, never while a client is waited on. A reload (SIGHUP, the
//! admin API, the handle) changes groups in place: unchanged groups are not
//! touched, changed ones keep their state, added ones start as backups,
//! removed ones resign.
//!
//! [`Node`]: vipdrift_vrrp::node::Node

mod operations;
mod reload;
mod report;
mod running;
mod shell;

use crate::admin::{self, Applied, Request};
use crate::config::{self, Config};
use crate::event::DaemonEvent;
use crate::responder::{Unserved, VipCommand, VipHandler};
use crate::workers::WorkerInfo;
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use vipdrift_engine::{BoundMode, Counters};
use vipdrift_vrrp::group::GroupCounters;
use vipdrift_vrrp::router::State;
use vipdrift_wire::Family;

pub(crate) use shell::Answer;

pub use crate::error::RuntimeError;

/// One group's report at the end of a run.
#[derive(Clone, Debug)]
pub struct GroupReport {
    /// Name.
    pub name: String,
    /// VRID.
    pub vrid: u8,
    /// Its address family.
    pub family: Family,
    /// Final state (before the shutdown).
    pub state: State,
    /// Counters.
    pub counters: GroupCounters,
}

/// One queue's report at the end of a run.
#[derive(Clone, Debug)]
pub struct QueueReport {
    /// Interface.
    pub iface: String,
    /// Queue.
    pub queue: u32,
    /// The bind mode the socket got.
    pub bound: BoundMode,
    /// Engine counters.
    pub stats: Counters,
    /// UMEM frames neither free nor with the kernel when the worker stopped
    /// (a leak check: 0 when every frame came back).
    pub frames_held: u32,
    /// What the responder answered and rejected.
    pub answered: vipdrift_vmac::ServiceCounters,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// Per group.
    pub groups: Vec<GroupReport>,
    /// Per queue.
    pub queues: Vec<QueueReport>,
    /// Adverts the control thread could not inject (a worker's queue full).
    pub inject_failures: u64,
}

/// The builder's factory until [`DaemonBuilder::vip_handler`] names one:
/// every worker gets [`Unserved`].
pub type NoVipHandler = fn(&WorkerInfo) -> Unserved;

/// The running daemon (its control thread and workers), as the program
/// that started it holds it. Dropping it stops the daemon as
/// [`Daemon::stop`] does.
pub struct Daemon<C: Send + Sync + 'static = ()> {
    handle: DaemonHandle<C>,
    thread: Option<JoinHandle<RunReport>>,
    admin_socket: Option<PathBuf>,
    metrics: Option<SocketAddr>,
    queues: Vec<(String, u32, BoundMode)>,
}

impl Daemon {
    /// Starts building a daemon from a configuration value; without
    /// [`DaemonBuilder::config_file`] a reload is refused.
    pub fn builder(config: Config) -> DaemonBuilder<NoVipHandler> {
        DaemonBuilder {
            admin_socket: Some(config.admin_socket.clone()),
            config,
            config_file: None,
            make_handler: |_: &WorkerInfo| Unserved,
            leave_echo: false,
            has_handler: false,
        }
    }

    /// Starts building a daemon from a configuration file, which a reload re-reads.
    pub fn from_file(path: &Path) -> Result<DaemonBuilder<NoVipHandler>, RuntimeError> {
        Ok(Daemon::builder(config::load(path)?).config_file(path))
    }
}

impl<C: Send + Sync + 'static> Daemon<C> {
    /// A handle for asking and steering the daemon from any thread.
    pub fn handle(&self) -> &DaemonHandle<C> {
        &self.handle
    }

    /// The admin socket's path, if there is one.
    pub fn admin_socket(&self) -> Option<&Path> {
        self.admin_socket.as_deref()
    }

    /// Where the metrics endpoint listens, if it does.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The bind mode each queue got, as (interface, queue, mode).
    pub fn bound_modes(&self) -> &[(String, u32, BoundMode)] {
        &self.queues
    }

    /// Stops gracefully and waits: every master sends a priority-0 advert
    /// and keeps its VIPs until its successor speaks, the workers drain and
    /// stop, the XDP programs are detached and the NIC filters dropped.
    pub fn stop(mut self) -> RunReport {
        self.finish()
    }

    /// Waits until the daemon stops (someone called
    /// [`DaemonHandle::request_stop`]) and returns its report.
    pub fn wait(mut self) -> RunReport {
        self.thread.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default()
    }

    fn finish(&mut self) -> RunReport {
        self.handle.request_stop();
        self.thread.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl<C: Send + Sync + 'static> Drop for Daemon<C> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

/// How a daemon is started; see [`Daemon::builder`].
pub struct DaemonBuilder<F> {
    config: Config,
    config_file: Option<PathBuf>,
    admin_socket: Option<PathBuf>,
    make_handler: F,
    leave_echo: bool,
    has_handler: bool,
}

impl<F> DaemonBuilder<F> {
    /// The file a reload re-reads (SIGHUP, `ctl reload`, [`DaemonHandle::reload`]).
    pub fn config_file(mut self, path: &Path) -> Self {
        self.config_file = Some(path.to_owned());
        self
    }

    /// The admin socket's path, or `None` for no admin socket (an embedder
    /// that steers the daemon through its handle). The default is the
    /// configuration's `[admin] socket`.
    pub fn admin_socket(mut self, path: Option<PathBuf>) -> Self {
        self.admin_socket = path;
        self
    }

    /// The factory of the workers' VIP handlers: called once per worker, on
    /// the starting thread, before the worker runs.
    pub fn vip_handler<V, G>(self, make_handler: G) -> DaemonBuilder<G>
    where
        V: VipHandler,
        G: FnMut(&WorkerInfo) -> V,
    {
        DaemonBuilder {
            config: self.config,
            config_file: self.config_file,
            admin_socket: self.admin_socket,
            make_handler,
            leave_echo: self.leave_echo,
            has_handler: true,
        }
    }

    /// Echo requests for owned VIPs go to the VIP handler instead of being
    /// answered by vipdrift (ARP, NS and VRRP always stay with vipdrift).
    pub fn vip_handler_answers_echo(mut self, yes: bool) -> Self {
        self.leave_echo = yes;
        self
    }

    /// Opens the admin socket and the metrics endpoint, prepares every
    /// interface (steering program, NIC filters, AF_XDP sockets), starts the
    /// workers and the control thread. On any error everything already
    /// prepared is undone and nothing runs.
    pub fn start<V>(mut self) -> Result<Daemon<V::Command>, RuntimeError>
    where
        V: VipHandler,
        F: FnMut(&WorkerInfo) -> V,
    {
        self.config.resolve_delivery(self.has_handler).map_err(RuntimeError::Delivery)?;
        let (commands_tx, commands) = crossbeam_channel::unbounded();
        let shell = shell::Shell::open(
            &self.config,
            self.config_file.clone(),
            self.admin_socket.as_deref(),
            &mut self.make_handler,
            self.leave_echo,
            self.has_handler,
            commands,
        )?;
        let handle = DaemonHandle { commands: commands_tx, waker: shell.waker(), command_type: PhantomData };
        let admin_socket = shell.admin_socket();
        let metrics = shell.metrics_address();
        let queues = shell.bound_modes();
        let thread = std::thread::Builder::new()
            .name("vd-control".into())
            .spawn(move || shell.run())
            .map_err(|e| RuntimeError::Io(format!("cannot start the control thread: {e}")))?;
        Ok(Daemon { handle, thread: Some(thread), admin_socket, metrics, queues })
    }
}

/// What the handle asks of the control thread.
pub(crate) enum Command {
    /// An admin request, answered on the channel.
    Request(Request, Sender<Answer>),
    /// A new subscriber to the daemon's events.
    Subscribe(Sender<DaemonEvent>),
    /// A command for every interface worker's VIP handler.
    Vip(VipCommand),
    /// Stop gracefully.
    Stop,
}

/// Events a subscriber may fall behind by before the daemon drops them
/// (it never waits on a subscriber).
pub const EVENT_QUEUE: usize = 1024;

/// Asks and steers a running daemon from any thread; cheap to clone. Each
/// call is carried out by the control thread between its frame and timer
/// work, as an admin request would be.
pub struct DaemonHandle<C = ()> {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    command_type: PhantomData<fn(C)>,
}

impl<C> Clone for DaemonHandle<C> {
    fn clone(&self) -> Self {
        DaemonHandle { commands: self.commands.clone(), waker: self.waker.clone(), command_type: PhantomData }
    }
}

const STOPPED: &str = "the daemon has stopped";

impl<C: Send + Sync + 'static> DaemonHandle<C> {
    /// Sends `command` to every interface worker's VIP handler, which
    /// applies it between bursts ([`VipHandler::command`]); false once the
    /// daemon has stopped. The command is shared, not copied, so build
    /// anything large (a new table) before sending it.
    pub fn command_vip_handlers(&self, command: C) -> bool {
        self.send(Command::Vip(VipCommand(Arc::new(command))))
    }

    fn send(&self, command: Command) -> bool {
        let sent = self.commands.send(command).is_ok();
        let _ = self.waker.wake();
        sent
    }

    fn ask(&self, request: Request) -> Result<Answer, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !self.send(Command::Request(request, tx)) {
            return Err(STOPPED.into());
        }
        rx.recv().map_err(|_| STOPPED.to_owned())
    }

    fn applied(&self, request: Request) -> Result<Applied, String> {
        match self.ask(request)? {
            Answer::Applied(result) => result,
            _ => Err("unexpected answer".into()),
        }
    }

    /// The groups, their states and masters, the interfaces and bonds.
    pub fn status(&self) -> Result<admin::Status, String> {
        match self.ask(Request::Status)? {
            Answer::Status(status) => Ok(*status),
            _ => Err("unexpected answer".into()),
        }
    }

    /// Counters and rates of every queue, group and bond.
    pub fn stats(&self) -> Result<admin::Stats, String> {
        match self.ask(Request::Stats)? {
            Answer::Stats(stats) => Ok(*stats),
            _ => Err("unexpected answer".into()),
        }
    }

    /// Sets a group's priority (1..=254) until the next reload.
    pub fn set_priority(&self, group: &str, priority: u8) -> Result<Applied, String> {
        self.applied(Request::Priority { group: group.to_owned(), priority })
    }

    /// Maintenance on (a master hands over; the group stays backup) or off.
    pub fn set_maintenance(&self, group: &str, on: bool) -> Result<Applied, String> {
        self.applied(Request::Maintenance { group: group.to_owned(), on })
    }

    /// Re-reads the configuration file and applies what changed.
    pub fn reload(&self) -> Result<Applied, String> {
        self.applied(Request::Reload)
    }

    /// A new subscription to the daemon's events (transitions, link changes,
    /// reloads, bond moves), from now on. The daemon never waits on a
    /// subscriber: one [`EVENT_QUEUE`] events behind loses the newest.
    /// The iterator ends when the daemon stops.
    pub fn events(&self) -> Receiver<DaemonEvent> {
        let (tx, rx) = crossbeam_channel::bounded(EVENT_QUEUE);
        self.send(Command::Subscribe(tx));
        rx
    }

    /// Asks the daemon to stop gracefully, without waiting (see [`Daemon::stop`]).
    pub fn request_stop(&self) {
        self.send(Command::Stop);
    }
}
