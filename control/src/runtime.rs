//! The daemon: the engine's workers on every configured queue, serving the
//! groups' VIPs, and the control thread that runs the VRRP groups.
//!
//! The control thread is a thin shell around [`VrrpGroup`]: a mio `Poll`
//! whose `Waker` the workers ring when they hand it an advert, and whose
//! timeout is the next deadline (a group's timer or a link check). What the
//! groups decide goes back to the workers through their command queues:
//! adverts and GARP bursts are injected into a worker's TX ring (they leave
//! through AF_XDP, never through a kernel socket), ownership changes are
//! applied to every worker's responder between bursts.
//!
//! The steering maps and the NIC filters hold everything configured from the
//! start (every vMAC, VIP and the VRRP groups), so a backup's share of VIP
//! traffic reaches its responder and is dropped and counted there rather
//! than leaking to the kernel, and a takeover costs no syscall before the
//! first GARP: ownership is one flag per worker.
//!
//! The same poll serves the admin API's Unix socket and the metrics endpoint
//! (see [`crate::admin`]); requests are answered between timer and frame
//! work, never while a client is waited on. A reload (SIGHUP or the admin
//! API) changes groups in place: unchanged groups are not touched, changed
//! ones keep their state, added ones start as backups, removed ones resign.

use crate::admin::{self, Applied, Reply, Request};
use crate::bond::Bond;
use crate::config::{self, Config, ConfigError, GroupSpec, Idle, InterfaceConfig};
use crate::endpoint::{Endpoints, Incoming};
use crate::notify::Notifier;
use crate::{Responder, ResponderCommand, ResponderStats};
use crossbeam_channel::Receiver;
use mio::{Events, Poll, Token, Waker};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vipdrift_engine::{
    AfXdpConfig, AfXdpPort, BoundMode, ControlFrame, ControlSender, Counters, DropReason, IdlePolicy, MacAddr,
    NicFilter, Port, Rates, StatsSnapshot, Steering, SteeringConfig, Worker, WorkerCommand, WorkerConfig, WorkerHandle,
    XdpAttachMode,
};
use vipdrift_vmac::{AddressMode, Group};
use vipdrift_vrrp::advert::{GROUP_MAC_V4, GROUP_MAC_V6};
use vipdrift_vrrp::group::{GroupCounters, Output, VrrpGroup};
use vipdrift_vrrp::router::{Reason, State};
use vipdrift_wire::{Family, Time};

const WAKER: Token = Token(0);
/// Frames a worker may queue for the control thread before it drops them.
const CONTROL_CHANNEL_DEPTH: usize = 1024;
/// Longest the control thread sleeps, so a stop request is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(10);
/// Time given to the workers to put the parting adverts on the wire.
const DRAIN_ON_STOP: Duration = Duration::from_millis(30);
/// Beyond the master-down interval, how long a stopping master waits to hear its successor.
const HANDOVER_MARGIN: Duration = Duration::from_millis(20);
/// The longest a stopping master waits for its successor (long advert intervals).
const MAX_HANDOVER: Duration = Duration::from_secs(3);
/// How often queue rates are sampled (and idle admin connections expired).
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An interface could not be prepared.
    #[error("interface `{iface}`: {message}")]
    Interface {
        /// The interface.
        iface: String,
        /// What failed.
        message: String,
    },
    /// A thread or the poller could not be created.
    #[error("{0}")]
    Io(String),
    /// The configuration file is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The admin socket or the metrics endpoint could not be opened.
    #[error("{0}")]
    Endpoint(String),
}

pub(crate) fn iface_error(iface: &str, message: impl ToString) -> RuntimeError {
    RuntimeError::Interface { iface: iface.to_owned(), message: message.to_string() }
}

/// A state change, as the daemon reports it (one JSON line on stderr, the
/// notify hook, status).
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionEvent {
    /// Wall-clock time of the transition.
    pub at: SystemTime,
    /// The group's name.
    pub group: String,
    /// Its VRID.
    pub vrid: u8,
    /// The group's address family.
    pub family: Family,
    /// Old state.
    pub from: State,
    /// New state.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// Time since the triggering event: for `master_down`, since the last
    /// advert heard (or since startup); for link changes, since the last check
    /// that still saw the old link state; otherwise 0 (acted on receipt).
    pub elapsed: Duration,
}

impl TransitionEvent {
    fn status(&self) -> admin::TransitionStatus {
        admin::TransitionStatus {
            from: self.from.name().to_owned(),
            to: self.to.name().to_owned(),
            reason: self.reason.name().to_owned(),
            time: unix_seconds(self.at),
            elapsed_ms: self.elapsed.as_secs_f64() * 1e3,
        }
    }

    fn family(&self) -> &'static str {
        self.family.name()
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// Something the daemon reports while it runs (each is also logged).
#[derive(Clone, Debug, PartialEq)]
pub enum DaemonEvent {
    /// A group changed state.
    Transition(TransitionEvent),
    /// An interface's link changed.
    Link {
        /// The interface.
        iface: String,
        /// Up (carrier) or down.
        up: bool,
    },
    /// A notify hook could not be started.
    NotifyFailed {
        /// The group.
        group: String,
        /// The program.
        program: PathBuf,
        /// Why.
        error: String,
    },
    /// The configuration was re-read.
    Reloaded {
        /// What changed, one line per change.
        changes: Vec<String>,
    },
    /// A new configuration was refused; the running one stays.
    ReloadRefused {
        /// Why.
        error: String,
    },
    /// A bond moved traffic after one of its NICs' links changed.
    Bond {
        /// The bond.
        bond: String,
        /// What moved.
        change: String,
        /// From the last time the link was seen in its old state to the move.
        elapsed: Duration,
    },
}

impl DaemonEvent {
    /// Logs the event through `tracing`, with its facts as fields.
    fn log(&self) {
        match self {
            DaemonEvent::Transition(t) => tracing::info!(
                event = "transition",
                group = %t.group,
                vrid = t.vrid,
                family = t.family(),
                from = t.from.name(),
                to = t.to.name(),
                reason = t.reason.name(),
                elapsed_ms = t.elapsed.as_secs_f64() * 1e3,
                "{} ({}) {} -> {}: {}",
                t.group,
                t.family(),
                t.from.name(),
                t.to.name(),
                t.reason.name()
            ),
            DaemonEvent::Link { iface, up: true } => {
                tracing::info!(event = "link", iface = %iface, up = true, "{iface}: link up")
            }
            DaemonEvent::Link { iface, up: false } => {
                tracing::warn!(event = "link", iface = %iface, up = false, "{iface}: link down")
            }
            DaemonEvent::NotifyFailed { group, program, error } => tracing::warn!(
                event = "notify_failed",
                group = %group,
                program = %program.display(),
                error = %error,
                "notify hook for {group} could not run: {error}"
            ),
            DaemonEvent::Reloaded { changes } => {
                tracing::info!(event = "reload", ok = true, changes = %changes.join("; "), "configuration reloaded")
            }
            DaemonEvent::Bond { bond, change, elapsed } => tracing::info!(
                event = "bond",
                bond = %bond,
                change = %change,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "bond {bond}: {change}"
            ),
            DaemonEvent::ReloadRefused { error } => tracing::error!(
                event = "reload",
                ok = false,
                error = %error,
                "new configuration refused, the running one stays: {error}"
            ),
        }
    }
}

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
    /// Frames the worker could not hand to the control thread (channel full).
    pub frames_held: u32,
    /// What the responder answered and rejected.
    pub answered: vipdrift_vmac::ServiceCounters,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Per group.
    pub groups: Vec<GroupReport>,
    /// Per queue.
    pub queues: Vec<QueueReport>,
    /// Adverts the control thread could not inject (a worker's queue full).
    pub inject_failures: u64,
}

/// What another thread (a signal handler) asks of a running daemon.
#[derive(Debug, Default)]
pub struct RunControl {
    /// Stop gracefully.
    pub stop: Arc<AtomicBool>,
    /// Re-read the configuration file (cleared when seen).
    pub reload: Arc<AtomicBool>,
}

/// A worker thread; stopped and joined when dropped. It owns one queue of
/// one interface, or (a bond's worker) the same queue of each of the bond's
/// NICs; its per-port statistics are in port order.
pub(crate) struct RunningWorker {
    pub(crate) queue: u32,
    pub(crate) bound: BoundMode,
    pub(crate) handle: WorkerHandle<ResponderCommand>,
    pub(crate) answers: Arc<ResponderStats>,
    thread: Option<JoinHandle<Worker<AfXdpPort, Responder>>>,
    last_sample: Vec<StatsSnapshot>,
    pub(crate) rates: Vec<Rates>,
}

impl RunningWorker {
    /// Waits for the worker (its stop flag already set); returns the frames each port still held.
    pub(crate) fn join(&mut self) -> Option<Vec<u32>> {
        let thread = self.thread.take()?;
        let ports = self.handle.stats.len();
        Some(
            thread
                .join()
                .map(|mut w| w.ports_mut().iter().map(|p| p.frames_held()).collect())
                .unwrap_or_else(|_| vec![0; ports]),
        )
    }

    pub(crate) fn command(&self, command: ResponderCommand) {
        // Group changes must not be lost: wait for room rather than drop them.
        let _ = self.handle.commands.send(WorkerCommand::Handler(command));
    }

    /// Queues a frame to leave through port `port`; false (and nothing
    /// sent) when the worker's queue is full.
    pub(crate) fn inject(&self, port: u8, bytes: &[u8]) -> bool {
        let Some(frame) = ControlFrame::new(port, bytes) else { return false };
        self.handle.commands.try_send(WorkerCommand::Inject(Box::new(frame))).is_ok()
    }

    pub(crate) fn sample_rates(&mut self) {
        for (i, stats) in self.handle.stats.iter().enumerate() {
            let sample = stats.snapshot();
            self.rates[i] = sample.rates_since(&self.last_sample[i]);
            self.last_sample[i] = sample;
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.handle.stop.store(true, Ordering::Relaxed);
        self.join();
    }
}

/// A NIC's carrier (IFF_UP and IFF_RUNNING), checked every `link_check_ms`
/// like bonding's miimon; shared by interfaces and bond NICs.
pub(crate) struct LinkWatch {
    pub(crate) up: bool,
    next_check: Time,
    last_seen_unchanged: Time,
    /// When the link was last seen in its old state, before its latest change.
    pub(crate) changed_since: Time,
    /// Transitions seen.
    pub(crate) changes: u64,
}

impl LinkWatch {
    pub(crate) fn new(filter: &NicFilter) -> LinkWatch {
        LinkWatch {
            up: filter.link_up().unwrap_or(false),
            next_check: Time(0),
            last_seen_unchanged: Time(0),
            changed_since: Time(0),
            changes: 0,
        }
    }

    pub(crate) fn next_check(&self) -> Time {
        self.next_check
    }

    /// Reads the carrier if a check is due at `now`; the new state if it changed.
    pub(crate) fn check(&mut self, now: Time, interval: Duration, filter: &NicFilter) -> Option<bool> {
        if self.next_check > now {
            return None;
        }
        self.next_check = now.after(interval);
        // A NIC that cannot be queried (renamed, removed) is down.
        let up = filter.link_up().unwrap_or(false);
        let changed = up != self.up;
        if changed {
            self.up = up;
            self.changes += 1;
            self.changed_since = self.last_seen_unchanged;
        }
        self.last_seen_unchanged = now;
        changed.then_some(up)
    }
}

/// One interface. Fields drop in order: the workers stop, then the program
/// is detached, then the NIC filters go.
struct Interface {
    workers: Vec<RunningWorker>,
    steering: Steering,
    filter: NicFilter,
    config: InterfaceConfig,
    mac: MacAddr,
    inbox: Vec<Receiver<ControlFrame>>,
    link: LinkWatch,
}

impl Interface {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn error(&self, message: impl ToString) -> RuntimeError {
        iface_error(self.name(), message)
    }

    /// Prepares the steering map and NIC filters for a group and builds it:
    /// its state machine and the responder's view of it.
    fn install(&mut self, spec: &GroupSpec, id: u32) -> Result<(VrrpGroup, Group), RuntimeError> {
        let Some(primary) = self.config.primary(spec.family) else {
            return Err(self.error(format!("group `{}` needs the interface's {} address", spec.name, spec.family)));
        };
        let group = VrrpGroup::new(spec.group_config(primary, self.mac));
        let mac = group.config().mac();
        if spec.mode == AddressMode::Vmac {
            let vmac = mac;
            self.filter.add_unicast(vmac).map_err(|e| self.error(e))?;
            self.steering.add_vmac(vmac).map_err(|e| self.error(e))?;
        }
        self.steer_vips(spec.vips.iter().map(|(ip, _)| *ip))?;
        let multicast = if spec.family.is_ipv4() { GROUP_MAC_V4 } else { GROUP_MAC_V6 };
        self.filter.add_multicast(multicast).map_err(|e| self.error(e))?;
        let vips = spec.vips.iter().map(|(ip, _)| *ip).collect();
        Ok((group, Group { id, mac, vips, owned: false }))
    }

    fn steer_vips(&mut self, vips: impl IntoIterator<Item = IpAddr>) -> Result<(), RuntimeError> {
        for vip in vips {
            self.steering.add_vip(vip).map_err(|e| self.error(e))?;
            if let Some(solicited) = solicited_node_mac(vip) {
                // Neighbour solicitations go to the VIP's solicited-node
                // group; no kernel socket joins it for us.
                self.filter.add_multicast(solicited).map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }

    /// Takes back what [`Interface::steer_vips`] did for `vips`, which a
    /// group no longer has. The filter memberships are counted per add, so
    /// each group drops its own; a steering entry stays while another group
    /// of the interface (in `others`) still has the VIP.
    fn unsteer_vips(&mut self, vips: &[IpAddr], others: &[IpAddr]) -> Result<(), RuntimeError> {
        for &vip in vips {
            if let Some(solicited) = solicited_node_mac(vip) {
                self.filter.remove_multicast(solicited).map_err(|e| self.error(e))?;
            }
            if !others.contains(&vip) {
                self.steering.remove_vip(vip).map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }

    /// Takes back everything [`Interface::install`] did for a removed group.
    fn uninstall(&mut self, member: &Member, others: &[&Member]) -> Result<(), RuntimeError> {
        let still_used: Vec<IpAddr> = others.iter().flat_map(|o| o.vips()).collect();
        self.unsteer_vips(&member.vips(), &still_used)?;
        if let Some(vmac) = member.vmac() {
            self.filter.remove_unicast(vmac).map_err(|e| self.error(e))?;
            if !others.iter().any(|o| o.vmac() == Some(vmac)) {
                self.steering.remove_vmac(vmac).map_err(|e| self.error(e))?;
            }
        }
        let multicast = if member.spec.family.is_ipv4() { GROUP_MAC_V4 } else { GROUP_MAC_V6 };
        self.filter.remove_multicast(multicast).map_err(|e| self.error(e))
    }

    fn command_all(&self, command: ResponderCommand) {
        for worker in &self.workers {
            worker.command(command.clone());
        }
    }
}

/// A stepped-down master that keeps answering for its VIPs until its
/// successor speaks, so clients lose nothing while the backup waits out its
/// skew time.
#[derive(Clone, Copy, Debug)]
struct HandOver {
    since: Time,
    deadline: Time,
}

struct Member {
    spec: GroupSpec,
    iface: usize,
    id: u32,
    group: VrrpGroup,
    started: Time,
    owned: bool,
    state_since: Time,
    last_transition: Option<TransitionEvent>,
    handing_over: Option<HandOver>,
}

impl Member {
    fn new(spec: GroupSpec, iface: usize, id: u32, group: VrrpGroup) -> Member {
        Member {
            spec,
            iface,
            id,
            group,
            started: Time(0),
            owned: false,
            state_since: Time(0),
            last_transition: None,
            handing_over: None,
        }
    }

    fn key(&self) -> (&str, Family) {
        (&self.spec.name, self.spec.family)
    }

    fn label(&self) -> String {
        format!("{} ({})", self.spec.name, self.spec.family.name())
    }

    fn vmac(&self) -> Option<MacAddr> {
        (self.spec.mode == AddressMode::Vmac).then(|| self.group.config().mac())
    }

    fn vips(&self) -> Vec<IpAddr> {
        self.spec.vips.iter().map(|(ip, _)| *ip).collect()
    }

    fn service_group(&self) -> Group {
        Group { id: self.id, mac: self.group.config().mac(), vips: self.vips(), owned: self.owned }
    }
}

/// The daemon, with its interfaces prepared and its workers running.
pub struct Daemon {
    interfaces: Vec<Interface>,
    bonds: Vec<Bond>,
    members: Vec<Member>,
    poll: Poll,
    origin: Instant,
    notifier: Notifier,
    inject_failures: u64,
    config: Config,
    config_path: Option<PathBuf>,
    endpoints: Endpoints,
    next_group_id: u32,
    next_sample: Time,
    reloads: u64,
    reload_failures: u64,
    last_reload_error: Option<String>,
}

fn idle_policy(idle: Idle) -> IdlePolicy {
    match idle {
        Idle::Spin => IdlePolicy::Spin,
        Idle::Yield => IdlePolicy::SpinThenYield { spins: 1000 },
        Idle::Sleep => IdlePolicy::SpinThenSleep { spins: 1000, sleep: Duration::from_micros(50) },
    }
}

impl Daemon {
    /// Loads the configuration file and starts from it; a reload re-reads it.
    pub fn start_from_file(path: &Path) -> Result<Daemon, RuntimeError> {
        let config = config::load(path)?;
        let mut daemon = Daemon::start(&config)?;
        daemon.config_path = Some(path.to_owned());
        Ok(daemon)
    }

    /// Opens the admin socket (and the metrics endpoint), prepares every
    /// interface (steering program, NIC filters, AF_XDP sockets), starts the
    /// workers and the groups. On any error everything already prepared is
    /// undone and nothing runs. Without a configuration file to re-read
    /// (see [`Daemon::start_from_file`]) a reload is refused.
    pub fn start(config: &Config) -> Result<Daemon, RuntimeError> {
        let poll = Poll::new().map_err(|e| RuntimeError::Io(format!("cannot create the poller: {e}")))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER)
                .map_err(|e| RuntimeError::Io(format!("cannot create the waker: {e}")))?,
        );
        let endpoints =
            Endpoints::open(poll.registry(), &config.admin_socket, config.metrics).map_err(RuntimeError::Endpoint)?;
        let origin = Instant::now();
        let notifier =
            Notifier::start().map_err(|e| RuntimeError::Io(format!("cannot start the notify hook runner: {e}")))?;
        let mut daemon = Daemon {
            interfaces: Vec::new(),
            bonds: Vec::new(),
            members: Vec::new(),
            poll,
            origin,
            notifier,
            inject_failures: 0,
            config: config.clone(),
            config_path: None,
            endpoints,
            next_group_id: 0,
            next_sample: Time(0),
            reloads: 0,
            reload_failures: 0,
            last_reload_error: None,
        };
        // A bond's NICs belong to the bond's workers, not to interface workers.
        for interface in config.interfaces.iter().filter(|i| config.bond_of(&i.name).is_none()) {
            let index = daemon.interfaces.len();
            let groups: Vec<&GroupSpec> = config.groups.iter().filter(|g| g.interface == interface.name).collect();
            // On error, dropping the daemon stops what was started.
            let (iface, members) = open_interface(interface, &groups, index, &mut daemon.next_group_id, &waker)?;
            daemon.interfaces.push(iface);
            daemon.members.extend(members);
        }
        for spec in &config.bonds {
            let nics: Vec<InterfaceConfig> =
                spec.interfaces.iter().filter_map(|name| config.interface(name).cloned()).collect();
            daemon.bonds.push(Bond::open(spec, &nics, &waker)?);
        }
        Ok(daemon)
    }

    fn now(&self) -> Time {
        Time(self.origin.elapsed().as_micros() as u64)
    }

    /// The admin socket's path.
    pub fn admin_socket(&self) -> &Path {
        self.endpoints.admin_path()
    }

    /// Where the metrics endpoint listens, if it does.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.endpoints.metrics_address()
    }

    /// Runs the control loop until `control.stop` is set, then stops
    /// gracefully: every master sends a priority-0 advert and keeps its VIPs
    /// until its successor speaks, the workers drain and stop, the XDP
    /// program is detached and the NIC filters dropped. Every event is
    /// logged through `tracing` and passed to `report`.
    pub fn run(mut self, control: &RunControl, mut report: impl FnMut(&DaemonEvent)) -> RunReport {
        let mut report = |event: &DaemonEvent| {
            event.log();
            report(event);
        };
        let mut out = Vec::new();
        let now = self.now();
        self.next_sample = now.after(RATE_WINDOW);
        for m in 0..self.members.len() {
            self.start_member(m, now, &mut out, &mut report);
        }
        for bond in &mut self.bonds {
            bond.start(now);
        }
        let mut events = Events::with_capacity(64);
        let mut incoming = Vec::new();
        while !control.stop.load(Ordering::Relaxed) {
            let now = self.now();
            let deadline = self.next_deadline();
            let mut sleep = Duration::from_micros(deadline.0.saturating_sub(now.0)).min(MAX_SLEEP);
            if self.endpoints.has_unread() {
                sleep = Duration::ZERO;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(sleep)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            self.endpoints.resume(self.poll.registry(), &mut incoming);
            for event in events.iter().filter(|e| e.token() != WAKER) {
                self.endpoints.handle(self.poll.registry(), event, &mut incoming);
            }
            let now = self.now();
            self.receive(now, &mut out, &mut report);
            self.check_links(now, &mut out, &mut report);
            for bond in &mut self.bonds {
                bond.poll(now, &mut report);
            }
            for m in 0..self.members.len() {
                if self.members[m].group.poll_timeout().is_some_and(|t| t <= now) {
                    self.members[m].group.handle_timeout(now, &mut out);
                    self.dispatch(m, now, &mut out, &mut report);
                }
            }
            self.finish_handovers(now);
            if control.reload.swap(false, Ordering::Relaxed) {
                // The outcome is logged and reported; nobody waits for a reply.
                let _ = self.reload(now, &mut out, &mut report);
            }
            for (token, request) in incoming.drain(..) {
                self.answer(token, request, now, &mut out, &mut report);
            }
            if now >= self.next_sample {
                self.next_sample = now.after(RATE_WINDOW);
                self.sample_rates();
                self.endpoints.expire(self.poll.registry(), Instant::now());
            }
        }
        let final_states: Vec<State> = self.members.iter().map(|m| m.group.state()).collect();
        self.hand_over(&mut out, &mut report);
        std::thread::sleep(DRAIN_ON_STOP);
        let groups = self
            .members
            .iter()
            .zip(final_states)
            .map(|(m, state)| GroupReport {
                name: m.spec.name.clone(),
                vrid: m.spec.vrid,
                family: m.spec.family,
                state,
                counters: m.group.counters(),
            })
            .collect();
        let queues = self.stop_workers();
        self.notifier.finish();
        for failure in self.notifier.failures() {
            report(&failure);
        }
        RunReport { groups, queues, inject_failures: self.inject_failures }
    }

    fn start_member(&mut self, m: usize, now: Time, out: &mut Vec<Output>, report: &mut impl FnMut(&DaemonEvent)) {
        self.members[m].started = now;
        self.members[m].state_since = now;
        self.members[m].group.start(now, out);
        self.dispatch(m, now, out, report);
        if !self.interfaces[self.members[m].iface].link.up {
            self.members[m].group.link_down(now, out);
            self.dispatch(m, now, out, report);
        }
    }

    /// Graceful stop: every group shuts down (a master sends its priority-0
    /// advert) and every master hands over (see [`HandOver`]).
    fn hand_over(&mut self, out: &mut Vec<Output>, report: &mut impl FnMut(&DaemonEvent)) {
        let stopped_at = self.now();
        for m in 0..self.members.len() {
            let was_master = self.members[m].group.state() == State::Master;
            self.members[m].group.shutdown(stopped_at, out);
            if was_master {
                self.keep_until_taken_over(m, stopped_at, out);
            }
            self.dispatch(m, stopped_at, out, report);
        }
        let mut events = Events::with_capacity(16);
        while self.members.iter().any(|m| m.handing_over.is_some()) {
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(1)));
            let now = self.now();
            self.receive(now, out, report);
            self.finish_handovers(now);
        }
    }

    /// A master just stepped down (its outputs in `out`): it keeps its VIPs
    /// until its successor's first advert, or a master-down interval and a
    /// margin if none speaks.
    fn keep_until_taken_over(&mut self, m: usize, now: Time, out: &mut Vec<Output>) {
        out.retain(|o| *o != Output::Own(false));
        let interval = self.members[m].group.config().advert_interval;
        let patience = (4 * interval + HANDOVER_MARGIN).min(MAX_HANDOVER);
        self.members[m].handing_over = Some(HandOver { since: now, deadline: now.after(patience) });
        // The workers stop on their own when the successor's GARP arrives,
        // before this thread has even heard its advert.
        let member = &self.members[m];
        self.interfaces[member.iface].command_all(ResponderCommand::HandOver(member.id));
    }

    fn finish_handovers(&mut self, now: Time) {
        for m in 0..self.members.len() {
            let Some(hand_over) = self.members[m].handing_over else { continue };
            let taken_over = self.members[m].group.last_advert_heard().is_some_and(|t| t > hand_over.since);
            if taken_over || now >= hand_over.deadline {
                self.members[m].handing_over = None;
                self.set_owned(m, false);
            }
        }
    }

    fn set_owned(&mut self, m: usize, owned: bool) {
        let member = &mut self.members[m];
        member.owned = owned;
        self.interfaces[member.iface].command_all(ResponderCommand::SetOwned(member.id, owned));
    }

    fn next_deadline(&self) -> Time {
        let groups = self.members.iter().filter_map(|m| m.group.poll_timeout());
        let handovers = self.members.iter().filter_map(|m| m.handing_over.map(|h| h.deadline));
        let links = self.interfaces.iter().map(|i| i.link.next_check());
        let bonds = self.bonds.iter().map(Bond::next_deadline);
        groups.chain(handovers).chain(links).chain(bonds).chain([self.next_sample]).min().unwrap_or(Time(u64::MAX))
    }

    fn receive(&mut self, now: Time, out: &mut Vec<Output>, report: &mut impl FnMut(&DaemonEvent)) {
        for i in 0..self.interfaces.len() {
            for w in 0..self.interfaces[i].inbox.len() {
                // Bounded per wake-up so a flood cannot starve the timers.
                for _ in 0..CONTROL_CHANNEL_DEPTH {
                    let Ok(frame) = self.interfaces[i].inbox[w].try_recv() else { break };
                    for m in 0..self.members.len() {
                        if self.members[m].iface == i {
                            self.members[m].group.handle_frame(now, frame.bytes(), out);
                            self.dispatch(m, now, out, report);
                        }
                    }
                }
            }
        }
    }

    fn check_links(&mut self, now: Time, out: &mut Vec<Output>, report: &mut impl FnMut(&DaemonEvent)) {
        for i in 0..self.interfaces.len() {
            let iface = &mut self.interfaces[i];
            let Some(up) = iface.link.check(now, iface.config.link_check, &iface.filter) else { continue };
            report(&DaemonEvent::Link { iface: iface.name().to_owned(), up });
            for m in 0..self.members.len() {
                if self.members[m].iface == i {
                    if up {
                        self.members[m].group.link_up(now, out);
                    } else {
                        self.members[m].group.link_down(now, out);
                    }
                    self.dispatch(m, now, out, report);
                }
            }
        }
    }

    /// Carries out a group's outputs: frames and ownership first, in order,
    /// then the reports, so nothing slow sits between a takeover's advert,
    /// its ownership change and its GARPs.
    fn dispatch(&mut self, m: usize, now: Time, out: &mut Vec<Output>, report: &mut impl FnMut(&DaemonEvent)) {
        let iface = self.members[m].iface;
        let mut transitions = Vec::new();
        for output in out.drain(..) {
            match output {
                Output::Frame(bytes) => {
                    // Any worker of the interface can send; the first is as good as any.
                    let Some(worker) = self.interfaces[iface].workers.first() else { continue };
                    if !worker.inject(0, &bytes) {
                        self.inject_failures += 1;
                    }
                }
                Output::Own(owned) => {
                    self.members[m].handing_over = None;
                    self.set_owned(m, owned);
                }
                Output::Transition { from, to, reason } => transitions.push((from, to, reason)),
            }
        }
        for (from, to, reason) in transitions {
            let member = &self.members[m];
            let since = match reason {
                Reason::MasterDown => member.group.last_advert_heard().unwrap_or(member.started),
                Reason::LinkDown | Reason::LinkUp => self.interfaces[iface].link.changed_since,
                _ => now,
            };
            let event = TransitionEvent {
                at: SystemTime::now(),
                group: member.spec.name.clone(),
                vrid: member.spec.vrid,
                family: member.spec.family,
                from,
                to,
                reason,
                elapsed: Duration::from_micros(now.0.saturating_sub(since.0)),
            };
            if let Some(program) = member.spec.notify.clone() {
                self.notifier.submit(program, event.clone());
            }
            report(&DaemonEvent::Transition(event.clone()));
            let member = &mut self.members[m];
            member.state_since = now;
            member.last_transition = Some(event);
        }
        for failure in self.notifier.failures() {
            report(&failure);
        }
    }

    // --- the admin API ------------------------------------------------------

    fn answer(
        &mut self,
        token: Token,
        request: Incoming,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) {
        let registry = self.poll.registry();
        let reply = match request {
            Incoming::Scrape { head_only } => {
                let body = crate::metrics::render(&self.status(), &self.stats());
                self.endpoints.reply_metrics(registry, token, &body, head_only);
                return;
            }
            Incoming::Admin(Request::Status) => Reply::success(&self.status()),
            Incoming::Admin(Request::Stats) => Reply::success(&self.stats()),
            Incoming::Admin(Request::Maintenance { group, on }) => {
                into_reply(self.set_maintenance(&group, on, now, out, report))
            }
            Incoming::Admin(Request::Priority { group, priority }) => {
                into_reply(self.set_priority(&group, priority, now, out, report))
            }
            Incoming::Admin(Request::Reload) => into_reply(self.reload(now, out, report)),
        };
        self.endpoints.reply(self.poll.registry(), token, &reply);
    }

    fn members_named(&self, name: &str) -> Result<Vec<usize>, String> {
        let found: Vec<usize> = (0..self.members.len()).filter(|&m| self.members[m].spec.name == name).collect();
        if found.is_empty() {
            let mut names: Vec<&str> = self.members.iter().map(|m| m.spec.name.as_str()).collect();
            names.dedup();
            return Err(format!("no group named {name:?}; the groups are: {}", names.join(", ")));
        }
        Ok(found)
    }

    fn set_maintenance(
        &mut self,
        name: &str,
        on: bool,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) -> Result<Applied, String> {
        let mut changes = Vec::new();
        for m in self.members_named(name)? {
            let label = self.members[m].label();
            if self.members[m].group.maintenance() == on {
                changes.push(format!("{label}: maintenance already {}", if on { "on" } else { "off" }));
                continue;
            }
            let was_master = self.members[m].group.state() == State::Master;
            self.members[m].group.set_maintenance(now, on, out);
            if was_master && on {
                self.keep_until_taken_over(m, now, out);
                changes.push(format!("{label}: maintenance on; was master, handing over (priority-0 advert sent)"));
            } else if on {
                changes.push(format!("{label}: maintenance on; stays backup"));
            } else {
                changes.push(format!("{label}: maintenance off; back in the election"));
            }
            self.dispatch(m, now, out, report);
        }
        tracing::info!(event = "ctl", changes = %changes.join("; "), "maintenance {}", if on { "on" } else { "off" });
        Ok(Applied { changes })
    }

    fn set_priority(
        &mut self,
        name: &str,
        priority: u8,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) -> Result<Applied, String> {
        if !(1..=254).contains(&priority) {
            return Err(format!("priority {priority} is out of range; expected 1..=254 (255 is the address owner's)"));
        }
        let found = self.members_named(name)?;
        if let Some(&m) = found.iter().find(|&&m| self.members[m].spec.priority == 255) {
            return Err(format!(
                "{} is the address owner (priority 255 in the configuration); its priority is fixed",
                self.members[m].label()
            ));
        }
        let mut changes = Vec::new();
        for m in found {
            let old = self.members[m].group.config().priority;
            self.members[m].group.set_priority(now, priority, out);
            changes.push(format!("{}: priority {old} -> {priority}", self.members[m].label()));
            self.dispatch(m, now, out, report);
        }
        tracing::info!(event = "ctl", changes = %changes.join("; "), "priority set");
        Ok(Applied { changes })
    }

    /// Re-reads the configuration file and applies what changed; see the
    /// module documentation. A file that does not load, or changes an
    /// interface, is refused and nothing changes.
    fn reload(
        &mut self,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) -> Result<Applied, String> {
        let result = self.try_reload(now, out, report);
        match &result {
            Ok(applied) => {
                self.reloads += 1;
                self.last_reload_error = None;
                report(&DaemonEvent::Reloaded { changes: applied.changes.clone() });
            }
            Err(error) => {
                self.reload_failures += 1;
                self.last_reload_error = Some(error.clone());
                report(&DaemonEvent::ReloadRefused { error: error.clone() });
            }
        }
        result
    }

    fn try_reload(
        &mut self,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) -> Result<Applied, String> {
        let Some(path) = &self.config_path else {
            return Err("this daemon was started without a configuration file to re-read".into());
        };
        let mut new = config::load(path).map_err(|e| e.to_string())?;
        if new.interfaces != self.config.interfaces {
            let changed: Vec<&str> = new
                .interfaces
                .iter()
                .filter(|i| !self.config.interfaces.contains(i))
                .map(|i| i.name.as_str())
                .chain(
                    self.config.interfaces.iter().filter(|i| new.interface(&i.name).is_none()).map(|i| i.name.as_str()),
                )
                .collect();
            return Err(format!(
                "{}: [[interface]] changed ({}); interface changes take a restart, the running configuration stays",
                path.display(),
                changed.join(", ")
            ));
        }
        if new.bonds != self.config.bonds {
            return Err(format!(
                "{}: [[bond]] changed; bond changes take a restart (its workers own the NICs), the running configuration stays",
                path.display()
            ));
        }
        let mut changes = Vec::new();
        if new.admin_socket != self.config.admin_socket || new.metrics != self.config.metrics {
            changes.push("[admin] / [metrics] changed: takes effect at the next restart".to_owned());
            new.admin_socket = self.config.admin_socket.clone();
            new.metrics = self.config.metrics;
        }
        let mut failures = Vec::new();

        // Removed, or changed beyond what a running group can take: resign and go.
        let mut m = 0;
        while m < self.members.len() {
            let member = &self.members[m];
            let keep = new.groups.iter().find(|g| (g.name.as_str(), g.family) == member.key()).is_some_and(|g| {
                g.interface == member.spec.interface && g.vrid == member.spec.vrid && g.mode == member.spec.mode
            });
            if keep {
                m += 1;
                continue;
            }
            changes.push(format!("removed {} (vrid {})", member.label(), member.spec.vrid));
            if let Err(e) = self.remove_member(m, now, out, report) {
                failures.push(e.to_string());
            }
        }
        // Changed in place.
        for m in 0..self.members.len() {
            let Some(spec) = new.groups.iter().find(|g| (g.name.as_str(), g.family) == self.members[m].key()) else {
                continue;
            };
            if *spec == self.members[m].spec {
                continue;
            }
            let what = self.members[m].spec.describe_change(spec);
            changes.push(format!("changed {}: {what}", self.members[m].label()));
            if let Err(e) = self.change_member(m, spec.clone(), now, out, report) {
                failures.push(e.to_string());
            }
        }
        // Added.
        for spec in &new.groups {
            if self.members.iter().any(|m| m.key() == (spec.name.as_str(), spec.family)) {
                continue;
            }
            changes.push(format!("added {} ({}, vrid {})", spec.name, spec.family.name(), spec.vrid));
            if let Err(e) = self.add_member(spec.clone(), now, out, report) {
                failures.push(e.to_string());
            }
        }
        if changes.is_empty() {
            changes.push("nothing changed".to_owned());
        }
        self.config = new;
        if failures.is_empty() {
            Ok(Applied { changes })
        } else {
            Err(format!("reload applied in part: {}; failed: {}", changes.join("; "), failures.join("; ")))
        }
    }

    fn remove_member(
        &mut self,
        m: usize,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) -> Result<(), RuntimeError> {
        // A removed group resigns (priority 0: the backup takes over after
        // its skew time) and stops answering at once: it has no future here.
        self.members[m].group.shutdown(now, out);
        self.dispatch(m, now, out, report);
        if self.members[m].owned {
            self.set_owned(m, false);
        }
        let member = self.members.remove(m);
        let iface = &mut self.interfaces[member.iface];
        iface.command_all(ResponderCommand::RemoveGroup(member.id));
        let others: Vec<&Member> = self.members.iter().filter(|o| o.iface == member.iface).collect();
        iface.uninstall(&member, &others)
    }

    fn change_member(
        &mut self,
        m: usize,
        spec: GroupSpec,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) -> Result<(), RuntimeError> {
        let i = self.members[m].iface;
        let old_vips = self.members[m].vips();
        let new_vips: Vec<IpAddr> = spec.vips.iter().map(|(ip, _)| *ip).collect();
        let group_config = spec.group_config(self.members[m].group.config().primary, self.interfaces[i].mac);
        self.interfaces[i].steer_vips(new_vips.iter().copied().filter(|ip| !old_vips.contains(ip)))?;
        self.members[m].spec = spec;
        // The responder learns the new VIPs before the master announces them.
        self.interfaces[i].command_all(ResponderCommand::SetGroup(self.members[m].service_group()));
        self.members[m].group.reconfigure(now, group_config, out);
        self.dispatch(m, now, out, report);
        let id = self.members[m].id;
        let others: Vec<IpAddr> =
            self.members.iter().filter(|o| o.iface == i && o.id != id).flat_map(Member::vips).collect();
        let dropped: Vec<IpAddr> = old_vips.into_iter().filter(|ip| !new_vips.contains(ip)).collect();
        self.interfaces[i].unsteer_vips(&dropped, &others)
    }

    fn add_member(
        &mut self,
        spec: GroupSpec,
        now: Time,
        out: &mut Vec<Output>,
        report: &mut impl FnMut(&DaemonEvent),
    ) -> Result<(), RuntimeError> {
        let Some(i) = self.interfaces.iter().position(|i| i.config.name == spec.interface) else {
            return Err(iface_error(&spec.interface, "is not one of the daemon's interfaces"));
        };
        let id = self.next_group_id;
        self.next_group_id += 1;
        let (group, service) = self.interfaces[i].install(&spec, id)?;
        self.interfaces[i].command_all(ResponderCommand::SetGroup(service));
        self.members.push(Member::new(spec, i, id, group));
        self.start_member(self.members.len() - 1, now, out, report);
        Ok(())
    }

    fn sample_rates(&mut self) {
        for worker in self.interfaces.iter_mut().flat_map(|i| i.workers.iter_mut()) {
            worker.sample_rates();
        }
        for worker in self.bonds.iter_mut().flat_map(|b| b.workers.iter_mut()) {
            worker.sample_rates();
        }
    }

    /// What `status` answers.
    pub fn status(&self) -> admin::Status {
        let now = self.now();
        let daemon = admin::DaemonStatus {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config: self.config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            uptime_s: self.origin.elapsed().as_secs_f64(),
            reloads: self.reloads,
            reload_failures: self.reload_failures,
            last_reload_error: self.last_reload_error.clone(),
        };
        let interfaces = self
            .interfaces
            .iter()
            .map(|i| admin::InterfaceStatus {
                name: i.name().to_owned(),
                mac: i.mac.to_string(),
                link_up: i.link.up,
                queues: i
                    .workers
                    .iter()
                    .map(|w| admin::QueueBinding { queue: w.queue, bind_mode: w.bound.name().to_owned() })
                    .collect(),
            })
            .collect();
        let groups = self
            .members
            .iter()
            .map(|m| {
                let config = m.group.config();
                admin::GroupStatus {
                    name: m.spec.name.clone(),
                    family: m.spec.family.name().to_owned(),
                    interface: m.spec.interface.clone(),
                    vrid: m.spec.vrid,
                    state: m.group.state().name().to_owned(),
                    priority: m.spec.priority,
                    effective_priority: config.priority,
                    maintenance: m.group.maintenance(),
                    preempt: config.preempt,
                    advert_interval_ms: config.advert_interval.as_millis() as u64,
                    master: m.group.master().map(|(ip, priority, is_self)| admin::MasterStatus {
                        address: ip.to_string(),
                        priority,
                        is_self,
                    }),
                    vips: config::prefixed(&m.spec.vips),
                    mode: m.spec.mode.name().to_owned(),
                    mac: config.mac().to_string(),
                    owned: m.owned,
                    in_state_s: Duration::from_micros(now.0.saturating_sub(m.state_since.0)).as_secs_f64(),
                    last_transition: m.last_transition.as_ref().map(TransitionEvent::status),
                }
            })
            .collect();
        let bonds = self.bonds.iter().map(Bond::status).collect();
        admin::Status { daemon, interfaces, groups, bonds }
    }

    /// What `stats` answers.
    pub fn stats(&self) -> admin::Stats {
        let mut queues = Vec::new();
        for iface in &self.interfaces {
            for w in &iface.workers {
                let a = w.answers.read();
                queues.push(queue_stats(
                    iface.name(),
                    w,
                    0,
                    named(&[("arp", a.arp_replies), ("na", a.na_replies), ("echo", a.echo_replies)]),
                    named(&[
                        ("not_owned", a.not_owned),
                        ("bad_arp", a.bad_arp),
                        ("bad_ndp", a.bad_ndp),
                        ("bad_echo", a.bad_echo),
                        ("announcement", a.announcements_heard),
                    ]),
                ));
            }
        }
        for bond in &self.bonds {
            for w in &bond.workers {
                // A bond worker's answers are the bond's (see its counters), not one port's.
                for (port, nic) in bond.nic_names().enumerate() {
                    queues.push(queue_stats(nic, w, port, BTreeMap::new(), BTreeMap::new()));
                }
            }
        }
        let window = self
            .interfaces
            .iter()
            .flat_map(|i| &i.workers)
            .chain(self.bonds.iter().flat_map(|b| &b.workers))
            .flat_map(|w| w.rates.iter().map(|r| r.seconds))
            .fold(0.0f64, f64::max);
        let groups = self
            .members
            .iter()
            .map(|m| {
                let c = m.group.counters();
                admin::GroupStats {
                    name: m.spec.name.clone(),
                    family: m.spec.family.name().to_owned(),
                    vrid: m.spec.vrid,
                    state: m.group.state().name().to_owned(),
                    adverts_sent: c.adverts_sent,
                    adverts_received: c.adverts_received,
                    adverts_rejected: named(&[
                        ("malformed", c.malformed),
                        ("own_advert", c.own_adverts),
                        ("not_a_peer", c.not_a_peer),
                        ("other_vrid", c.other_vrid),
                        ("while_owner", c.while_owner),
                    ]),
                    checksum_forms: named(&[
                        ("pseudo_header", c.pseudo_header_checksums),
                        ("message_only", c.message_only_checksums),
                    ]),
                    garps_sent: c.garps_sent,
                    transitions: c.transitions,
                    split_brains: c.split_brains,
                }
            })
            .collect();
        let e = self.endpoints.counters;
        let control = admin::ControlStats {
            inject_failures: self.inject_failures,
            admin_requests: e.admin_requests,
            admin_errors: e.admin_errors,
            scrapes: e.scrapes,
            reloads: self.reloads,
            reload_failures: self.reload_failures,
        };
        let bonds = self.bonds.iter().map(Bond::stats).collect();
        admin::Stats { rate_window_s: window, queues, groups, bonds, control }
    }

    /// Stops every worker (all at once, then joins them) and reports on each queue.
    fn stop_workers(&mut self) -> Vec<QueueReport> {
        let mut reports = Vec::new();
        let workers = self.interfaces.iter().flat_map(|i| &i.workers).chain(self.bonds.iter().flat_map(|b| &b.workers));
        for worker in workers {
            worker.handle.stop.store(true, Ordering::Relaxed);
        }
        for iface in &mut self.interfaces {
            for worker in &mut iface.workers {
                let Some(frames_held) = worker.join() else { continue };
                reports.push(QueueReport {
                    iface: iface.config.name.clone(),
                    queue: worker.queue,
                    bound: worker.bound,
                    stats: worker.handle.stats[0].read(),
                    frames_held: frames_held[0],
                    answered: worker.answers.read(),
                });
            }
        }
        for bond in &mut self.bonds {
            let names: Vec<String> = bond.nic_names().map(str::to_owned).collect();
            for worker in &mut bond.workers {
                let Some(frames_held) = worker.join() else { continue };
                for (port, name) in names.iter().enumerate() {
                    reports.push(QueueReport {
                        iface: name.clone(),
                        queue: worker.queue,
                        bound: worker.bound,
                        stats: worker.handle.stats[port].read(),
                        frames_held: frames_held[port],
                        answered: vipdrift_vmac::ServiceCounters::default(),
                    });
                }
            }
        }
        reports
    }

    /// The bind mode each queue got, as (interface, queue, mode).
    pub fn bound_modes(&self) -> Vec<(String, u32, BoundMode)> {
        self.interfaces
            .iter()
            .flat_map(|i| i.workers.iter().map(|w| (i.config.name.clone(), w.queue, w.bound)))
            .collect()
    }
}

/// One port of a worker as the admin API shows it.
fn queue_stats(
    port_name: &str,
    w: &RunningWorker,
    port: usize,
    replies: BTreeMap<String, u64>,
    rejected: BTreeMap<String, u64>,
) -> admin::QueueStats {
    let c = w.handle.stats[port].read();
    let rates = w.rates[port];
    admin::QueueStats {
        port: port_name.to_owned(),
        queue: w.queue,
        bind_mode: w.bound.name().to_owned(),
        rx_packets: c.rx_packets,
        rx_bytes: c.rx_bytes,
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        to_control: c.to_control,
        rx_pps: rates.rx_pps,
        tx_pps: rates.tx_pps,
        rx_bps: rates.rx_bps,
        tx_bps: rates.tx_bps,
        drops: DropReason::ALL.iter().map(|r| (r.name().to_owned(), c.drops_for(*r))).collect(),
        replies,
        rejected,
    }
}

/// Counters by name, as the admin API lists reasons and kinds.
pub(crate) fn named(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// The solicited-node multicast MAC of an IPv6 address (33:33:ff + its last 24 bits).
fn solicited_node_mac(ip: IpAddr) -> Option<MacAddr> {
    let IpAddr::V6(v6) = ip else { return None };
    let o = v6.octets();
    Some(MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]]))
}

fn into_reply(result: Result<Applied, String>) -> Reply {
    match result {
        Ok(applied) => Reply::success(&applied),
        Err(error) => Reply::failure(error),
    }
}

/// Opens an interface's NIC filter, reads its MAC and attaches the steering program.
pub(crate) fn open_nic(config: &InterfaceConfig) -> Result<(NicFilter, MacAddr, Steering), RuntimeError> {
    let name = config.name.as_str();
    let filter = NicFilter::open(name).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => iface_error(name, "does not exist in this network namespace (see `ip link`)"),
        _ => iface_error(name, e),
    })?;
    let mac = filter.mac().map_err(|e| iface_error(name, format!("cannot read its MAC address: {e}")))?;
    let mode = XdpAttachMode::for_bind(config.bind);
    let steering_config = SteeringConfig { iface: name.to_owned(), mode, whole_nic: config.whole_nic };
    let steering = Steering::attach(&steering_config).map_err(|e| iface_error(name, e))?;
    Ok((filter, mac, steering))
}

/// Opens the AF_XDP socket of one queue and puts it in the steering program's map.
pub(crate) fn open_port(
    config: &InterfaceConfig,
    queue: u32,
    steering: &mut Steering,
) -> Result<AfXdpPort, RuntimeError> {
    let name = config.name.as_str();
    let mut port_config = AfXdpConfig::new(name, queue);
    port_config.load_default_program = false;
    port_config.bind = config.bind;
    let port = AfXdpPort::open(&port_config).map_err(|e| iface_error(name, format!("queue {queue}: {e}")))?;
    steering.add_socket(queue, port.raw_fd()).map_err(|e| iface_error(name, e))?;
    Ok(port)
}

/// Starts a worker over `ports` (one queue each) running `responder`; its
/// frames for the control thread arrive on the returned receiver, and it
/// rings `waker` when it sends some.
pub(crate) fn start_worker(
    ports: Vec<AfXdpPort>,
    responder: Responder,
    config: &InterfaceConfig,
    queue: u32,
    core: Option<usize>,
    thread_name: String,
    waker: &Arc<Waker>,
) -> Result<(RunningWorker, Receiver<ControlFrame>), RuntimeError> {
    let bound = ports.first().map(|p| p.bound_mode()).unwrap_or(BoundMode::Copy);
    let (tx, rx) = crossbeam_channel::bounded(CONTROL_CHANNEL_DEPTH);
    let waker = waker.clone();
    let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let _ = waker.wake();
    });
    let answers = responder.stats();
    let worker_config = WorkerConfig { idle: idle_policy(config.idle), ..WorkerConfig::default() };
    let (worker, handle) = Worker::new(ports, responder, worker_config, Some(ControlSender::new(tx, Some(notify))));
    let thread = worker
        .spawn(core, thread_name)
        .map_err(|e| iface_error(&config.name, format!("cannot start the worker for queue {queue}: {e}")))?;
    let last_sample = handle.stats.iter().map(|s| s.snapshot()).collect();
    let rates = vec![Rates::default(); handle.stats.len()];
    Ok((RunningWorker { queue, bound, handle, answers, thread: Some(thread), last_sample, rates }, rx))
}

/// Prepares one interface for its groups and starts its workers.
fn open_interface(
    config: &InterfaceConfig,
    groups: &[&GroupSpec],
    iface_index: usize,
    next_group_id: &mut u32,
    waker: &Arc<Waker>,
) -> Result<(Interface, Vec<Member>), RuntimeError> {
    let name = config.name.as_str();
    let (filter, mac, steering) = open_nic(config)?;
    let link = LinkWatch::new(&filter);
    let mut iface =
        Interface { workers: Vec::new(), steering, filter, config: config.clone(), mac, inbox: Vec::new(), link };

    let mut members = Vec::new();
    let mut service_groups = Vec::new();
    for &spec in groups {
        let id = *next_group_id;
        *next_group_id += 1;
        let (group, service) = iface.install(spec, id)?;
        service_groups.push(service);
        members.push(Member::new(spec.clone(), iface_index, id, group));
    }

    for (i, &queue) in config.queues.iter().enumerate() {
        let port = open_port(config, queue, &mut iface.steering)?;
        let responder = Responder::with_groups(service_groups.iter().cloned());
        let core = config.cores.get(i).copied();
        let (worker, rx) =
            start_worker(vec![port], responder, config, queue, core, format!("vd-{name}-q{queue}"), waker)?;
        iface.workers.push(worker);
        iface.inbox.push(rx);
    }
    Ok((iface, members))
}
