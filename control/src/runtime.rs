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

use crate::config::{Config, GroupSpec, Idle, InterfaceConfig};
use crate::group::{GroupCounters, Output, VrrpGroup};
use crate::notify::Notifier;
use crate::router::{Reason, State, Time};
use crate::{Responder, ResponderCommand, ResponderStats};
use crossbeam_channel::{Receiver, TrySendError};
use mio::{Events, Poll, Token, Waker};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vipdrift_engine::{
    AfXdpConfig, AfXdpPort, BoundMode, ControlFrame, ControlSender, Counters, IdlePolicy, MacAddr, NicFilter, Port,
    Steering, SteeringConfig, Worker, WorkerCommand, WorkerConfig, WorkerHandle, XdpAttachMode, VRRP_V4_GROUP_MAC,
    VRRP_V6_GROUP_MAC,
};
use vipdrift_vmac::{AddressMode, Group};

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
}

fn iface_error(iface: &str, message: impl ToString) -> RuntimeError {
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
    /// IPv4 or IPv6 group.
    pub ipv4: bool,
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
    /// The event as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let at = self.at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        serde_json::json!({
            "event": "transition",
            "time": at,
            "group": self.group,
            "vrid": self.vrid,
            "family": if self.ipv4 { "ipv4" } else { "ipv6" },
            "from": self.from.name(),
            "to": self.to.name(),
            "reason": self.reason.name(),
            "elapsed_ms": self.elapsed.as_secs_f64() * 1e3,
        })
    }
}

/// Something the daemon reports while it runs.
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
}

impl DaemonEvent {
    /// The event as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            DaemonEvent::Transition(t) => t.to_json(),
            DaemonEvent::Link { iface, up } => serde_json::json!({
                "event": "link",
                "time": SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64(),
                "iface": iface,
                "up": up,
            }),
            DaemonEvent::NotifyFailed { group, program, error } => serde_json::json!({
                "event": "notify_failed",
                "group": group,
                "program": program.display().to_string(),
                "error": error,
            }),
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
    /// IPv4 or IPv6.
    pub ipv4: bool,
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

/// A worker thread; stopped and joined when dropped.
struct RunningWorker {
    queue: u32,
    bound: BoundMode,
    handle: WorkerHandle<ResponderCommand>,
    answers: Arc<ResponderStats>,
    thread: Option<JoinHandle<Worker<AfXdpPort, Responder>>>,
}

impl RunningWorker {
    /// Waits for the worker (its stop flag already set); returns the frames its port still held.
    fn join(&mut self) -> Option<u32> {
        let thread = self.thread.take()?;
        Some(thread.join().map(|mut w| w.ports_mut()[0].frames_held()).unwrap_or(0))
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.handle.stop.store(true, Ordering::Relaxed);
        self.join();
    }
}

/// One interface. Fields drop in order: the workers stop, then the program
/// is detached, then the NIC filters go.
struct Interface {
    workers: Vec<RunningWorker>,
    _steering: Steering,
    filter: NicFilter,
    name: String,
    inbox: Vec<Receiver<ControlFrame>>,
    link_check: Duration,
    next_link_check: Time,
    link_up: bool,
    /// When the link was last seen in its current state... before it changed.
    last_seen_unchanged: Time,
}

struct Member {
    spec: GroupSpec,
    iface: usize,
    id: u32,
    group: VrrpGroup,
    started: Time,
}

/// The daemon, with its interfaces prepared and its workers running.
pub struct Daemon {
    interfaces: Vec<Interface>,
    members: Vec<Member>,
    poll: Poll,
    origin: Instant,
    notifier: Notifier,
    inject_failures: u64,
}

fn idle_policy(idle: Idle) -> IdlePolicy {
    match idle {
        Idle::Spin => IdlePolicy::Spin,
        Idle::Yield => IdlePolicy::SpinThenYield { spins: 1000 },
        Idle::Sleep => IdlePolicy::SpinThenSleep { spins: 1000, sleep: Duration::from_micros(50) },
    }
}

impl Daemon {
    /// Prepares every interface (steering program, NIC filters, AF_XDP
    /// sockets), starts the workers and the groups. On any error everything
    /// already prepared is undone and nothing runs.
    pub fn start(config: &Config) -> Result<Daemon, RuntimeError> {
        let poll = Poll::new().map_err(|e| RuntimeError::Io(format!("cannot create the poller: {e}")))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER)
                .map_err(|e| RuntimeError::Io(format!("cannot create the waker: {e}")))?,
        );
        let origin = Instant::now();
        let notifier =
            Notifier::start().map_err(|e| RuntimeError::Io(format!("cannot start the notify hook runner: {e}")))?;
        let mut daemon =
            Daemon { interfaces: Vec::new(), members: Vec::new(), poll, origin, notifier, inject_failures: 0 };
        for (index, interface) in config.interfaces.iter().enumerate() {
            let groups: Vec<(u32, &GroupSpec)> =
                (0..).zip(&config.groups).filter(|(_, g)| g.interface == interface.name).collect();
            match open_interface(interface, &groups, index, &waker) {
                Ok((iface, members)) => {
                    daemon.interfaces.push(iface);
                    daemon.members.extend(members);
                }
                // Dropping the daemon stops what was started.
                Err(e) => return Err(e),
            }
        }
        Ok(daemon)
    }

    fn now(&self) -> Time {
        Time(self.origin.elapsed().as_micros() as u64)
    }

    /// Runs the control loop until `stop` is set, then stops gracefully:
    /// every master sends a priority-0 advert, the workers drain and stop,
    /// the XDP program is detached and the NIC filters dropped.
    pub fn run(mut self, stop: &AtomicBool, mut report: impl FnMut(&DaemonEvent)) -> RunReport {
        let mut out = Vec::new();
        let now = self.now();
        for m in 0..self.members.len() {
            self.members[m].started = now;
            self.members[m].group.start(now, &mut out);
            self.dispatch(m, now, &mut out, &mut report);
            if !self.interfaces[self.members[m].iface].link_up {
                self.members[m].group.link_down(now, &mut out);
                self.dispatch(m, now, &mut out, &mut report);
            }
        }
        let mut events = Events::with_capacity(16);
        while !stop.load(Ordering::Relaxed) {
            let now = self.now();
            let deadline = self.next_deadline();
            let sleep = Duration::from_micros(deadline.0.saturating_sub(now.0)).min(MAX_SLEEP);
            if let Err(e) = self.poll.poll(&mut events, Some(sleep)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let now = self.now();
            self.receive(now, &mut out, &mut report);
            self.check_links(now, &mut out, &mut report);
            for m in 0..self.members.len() {
                if self.members[m].group.poll_timeout().is_some_and(|t| t <= now) {
                    self.members[m].group.handle_timeout(now, &mut out);
                    self.dispatch(m, now, &mut out, &mut report);
                }
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
                ipv4: m.spec.ipv4,
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

    /// Graceful stop: every group shuts down (a master sends its priority-0
    /// advert), but a master keeps answering for its VIPs until the new
    /// master speaks (or a master-down interval passes, if none does), so
    /// clients lose nothing while the backup waits out its skew time.
    fn hand_over(&mut self, out: &mut Vec<Output>, report: &mut impl FnMut(&DaemonEvent)) {
        let stopped_at = self.now();
        let mut handing_over = Vec::new();
        let mut deadline = stopped_at;
        for m in 0..self.members.len() {
            let was_master = self.members[m].group.state() == State::Master;
            self.members[m].group.shutdown(stopped_at, out);
            if was_master {
                out.retain(|o| *o != Output::Own(false));
                handing_over.push(m);
                let config = self.members[m].group.config();
                let patience = 4 * config.advert_interval + HANDOVER_MARGIN;
                deadline = deadline.max(stopped_at.after(patience.min(MAX_HANDOVER)));
            }
            self.dispatch(m, stopped_at, out, report);
        }
        let mut events = Events::with_capacity(16);
        while !handing_over.is_empty() {
            let now = self.now();
            if now >= deadline {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(1)));
            let now = self.now();
            self.receive(now, out, report);
            handing_over.retain(|&m| {
                let taken_over = self.members[m].group.last_advert_heard().is_some_and(|t| t > stopped_at);
                if taken_over {
                    self.set_owned(m, false);
                }
                !taken_over
            });
        }
        for m in handing_over {
            self.set_owned(m, false);
        }
    }

    fn set_owned(&self, m: usize, owned: bool) {
        let id = self.members[m].id;
        for worker in &self.interfaces[self.members[m].iface].workers {
            // Ownership must not be lost: wait for room rather than drop it.
            let _ = worker.handle.commands.send(WorkerCommand::Handler(ResponderCommand::SetOwned(id, owned)));
        }
    }

    fn next_deadline(&self) -> Time {
        let groups = self.members.iter().filter_map(|m| m.group.poll_timeout());
        let links = self.interfaces.iter().map(|i| i.next_link_check);
        groups.chain(links).min().unwrap_or(Time(u64::MAX))
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
            if iface.next_link_check > now {
                continue;
            }
            iface.next_link_check = now.after(iface.link_check);
            // An interface that cannot be queried (renamed, removed) is down.
            let up = iface.filter.link_up().unwrap_or(false);
            if up == iface.link_up {
                iface.last_seen_unchanged = now;
                continue;
            }
            iface.link_up = up;
            report(&DaemonEvent::Link { iface: iface.name.clone(), up });
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
            self.interfaces[i].last_seen_unchanged = now;
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
                    let Some(frame) = ControlFrame::new(0, &bytes) else { continue };
                    match worker.handle.commands.try_send(WorkerCommand::Inject(Box::new(frame))) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.inject_failures += 1,
                    }
                }
                Output::Own(owned) => self.set_owned(m, owned),
                Output::Transition { from, to, reason } => transitions.push((from, to, reason)),
            }
        }
        for (from, to, reason) in transitions {
            let member = &self.members[m];
            let since = match reason {
                Reason::MasterDown => member.group.last_advert_heard().unwrap_or(member.started),
                Reason::LinkDown | Reason::LinkUp => self.interfaces[iface].last_seen_unchanged,
                _ => now,
            };
            let event = TransitionEvent {
                at: SystemTime::now(),
                group: member.spec.name.clone(),
                vrid: member.spec.vrid,
                ipv4: member.spec.ipv4,
                from,
                to,
                reason,
                elapsed: Duration::from_micros(now.0.saturating_sub(since.0)),
            };
            if let Some(program) = member.spec.notify.clone() {
                self.notifier.submit(program, event.clone());
            }
            report(&DaemonEvent::Transition(event));
        }
        for failure in self.notifier.failures() {
            report(&failure);
        }
    }

    /// Stops every worker (all at once, then joins them) and reports on each queue.
    fn stop_workers(&mut self) -> Vec<QueueReport> {
        let mut reports = Vec::new();
        for worker in self.interfaces.iter().flat_map(|i| &i.workers) {
            worker.handle.stop.store(true, Ordering::Relaxed);
        }
        for iface in &mut self.interfaces {
            for worker in &mut iface.workers {
                let Some(frames_held) = worker.join() else { continue };
                reports.push(QueueReport {
                    iface: iface.name.clone(),
                    queue: worker.queue,
                    bound: worker.bound,
                    stats: worker.handle.stats[0].read(),
                    frames_held,
                    answered: worker.answers.read(),
                });
            }
        }
        reports
    }

    /// The bind mode each queue got, as (interface, queue, mode).
    pub fn bound_modes(&self) -> Vec<(String, u32, BoundMode)> {
        self.interfaces.iter().flat_map(|i| i.workers.iter().map(|w| (i.name.clone(), w.queue, w.bound))).collect()
    }
}

/// Prepares one interface for its groups and starts its workers.
fn open_interface(
    config: &InterfaceConfig,
    groups: &[(u32, &GroupSpec)],
    iface_index: usize,
    waker: &Arc<Waker>,
) -> Result<(Interface, Vec<Member>), RuntimeError> {
    let name = config.name.as_str();
    let filter = NicFilter::open(name).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => iface_error(name, "does not exist in this network namespace (see `ip link`)"),
        _ => iface_error(name, e),
    })?;
    let mac = filter.mac().map_err(|e| iface_error(name, format!("cannot read its MAC address: {e}")))?;
    let mode = XdpAttachMode::for_bind(config.bind);
    let steering_config = SteeringConfig { iface: name.to_owned(), mode, whole_nic: config.whole_nic };
    let mut steering = Steering::attach(&steering_config).map_err(|e| iface_error(name, e))?;

    let mut members = Vec::new();
    let mut service_groups = Vec::new();
    for &(id, spec) in groups {
        let Some(primary) = config.primary(spec.family) else {
            return Err(iface_error(
                name,
                format!("group `{}` needs the interface's {} address", spec.name, spec.family),
            ));
        };
        let group = VrrpGroup::new(spec.group_config(primary, mac.0));
        let mode = if spec.virtual_mac { AddressMode::Vmac(group.config().mac()) } else { AddressMode::OwnMac(mac.0) };
        if spec.virtual_mac {
            let vmac = MacAddr(mode.mac());
            filter.add_unicast(vmac).map_err(|e| iface_error(name, e))?;
            steering.add_vmac(vmac).map_err(|e| iface_error(name, e))?;
        }
        for (vip, _) in &spec.vips {
            steering.add_vip(*vip).map_err(|e| iface_error(name, e))?;
            if let IpAddr::V6(v6) = vip {
                // Neighbour solicitations go to the VIP's solicited-node
                // group; no kernel socket joins it for us.
                let o = v6.octets();
                let solicited = MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]]);
                filter.add_multicast(solicited).map_err(|e| iface_error(name, e))?;
            }
        }
        let vips: Vec<IpAddr> = spec.vips.iter().map(|(ip, _)| *ip).collect();
        service_groups.push(Group { id, mode, vips, owned: false });
        members.push(Member { spec: spec.clone(), iface: iface_index, id, group, started: Time(0) });
    }
    if groups.iter().any(|(_, g)| g.ipv4) {
        filter.add_multicast(VRRP_V4_GROUP_MAC).map_err(|e| iface_error(name, e))?;
    }
    if groups.iter().any(|(_, g)| !g.ipv4) {
        filter.add_multicast(VRRP_V6_GROUP_MAC).map_err(|e| iface_error(name, e))?;
    }

    let mut workers = Vec::new();
    let mut inbox = Vec::new();
    for (i, &queue) in config.queues.iter().enumerate() {
        let mut port_config = AfXdpConfig::new(name, queue);
        port_config.load_default_program = false;
        port_config.bind = config.bind;
        let port = match AfXdpPort::open(&port_config) {
            Ok(port) => port,
            Err(e) => {
                return Err(iface_error(name, format!("queue {queue}: {e}")));
            }
        };
        let bound = port.bound_mode();
        if let Err(e) = steering.add_socket(queue, port.raw_fd()) {
            return Err(iface_error(name, e));
        }
        let (tx, rx) = crossbeam_channel::bounded(CONTROL_CHANNEL_DEPTH);
        let waker = waker.clone();
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = waker.wake();
        });
        let responder = Responder::with_groups(service_groups.iter().cloned());
        let answers = responder.stats();
        let worker_config = WorkerConfig { idle: idle_policy(config.idle), ..WorkerConfig::default() };
        let (worker, handle) =
            Worker::new(vec![port], responder, worker_config, Some(ControlSender::new(tx, Some(notify))));
        let core = config.cores.get(i).copied();
        let thread = match worker.spawn(core, format!("vd-{name}-q{queue}")) {
            Ok(thread) => thread,
            Err(e) => {
                return Err(iface_error(name, format!("cannot start the worker for queue {queue}: {e}")));
            }
        };
        workers.push(RunningWorker { queue, bound, handle, answers, thread: Some(thread) });
        inbox.push(rx);
    }
    let link_up = filter.link_up().unwrap_or(false);
    let iface = Interface {
        workers,
        _steering: steering,
        filter,
        name: name.to_owned(),
        inbox,
        link_check: config.link_check,
        next_link_check: Time(0),
        link_up,
        last_seen_unchanged: Time(0),
    };
    Ok((iface, members))
}
