//! The VRRPv3 virtual router state machine (RFC 9568 §6), sans-IO: fed
//! `(now, event)`, it appends actions and says when it next needs the clock
//! ([`VirtualRouter::poll_timeout`]). Times are microseconds; the wire's
//! centiseconds are converted at the edge, so a 10 ms interval still gives
//! each priority its own skew.

use std::net::IpAddr;
use std::time::Duration;
use vipdrift_wire::Time;

/// RFC 9568 §6.4 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum State {
    /// Not participating (before startup, after shutdown).
    #[default]
    Initialize,
    /// Watching the master.
    Backup,
    /// Owning the addresses and advertising.
    Master,
    /// The interface's link is down: silent, owning nothing, until it returns
    /// (not in the RFC; keepalived's FAULT).
    Fault,
}

impl State {
    /// The number keepalived gives the state (and `vipdrift_group_state`
    /// shows): initialize 0, backup 1, master 2, fault 3.
    pub fn number(self) -> u8 {
        match self {
            State::Initialize => 0,
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
        }
    }

    /// Lower-case name, as logs, notify hooks and JSON use it.
    pub fn name(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
    }
}

/// Why a transition happened (for logs and notify hooks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Reason {
    /// Startup as the address owner (priority 255).
    OwnerStartup,
    /// Startup as a backup.
    #[default]
    Startup,
    /// The master-down timer fired: no advert heard for Master_Down_Interval.
    MasterDown,
    /// A higher-priority advert (or an equal one from a higher address) was heard.
    Preempted,
    /// Shut down (priority-0 advert sent if master).
    Shutdown,
    /// The interface lost its carrier.
    LinkDown,
    /// The interface's carrier returned.
    LinkUp,
    /// An operator put the group in maintenance: a master hands over.
    Maintenance,
    /// The node's worker was held up (its process stopped and continued)
    /// long enough that a backup may have taken over: a master steps down
    /// without a word and the election decides again.
    Stalled,
    /// Another program replaced the node's steering program on the
    /// interface: the node is deaf there, so it stops advertising and owns
    /// nothing until it is restarted.
    ProgramReplaced,
}

impl Reason {
    /// Snake-case name, as logs and JSON use it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::OwnerStartup => "owner_startup",
            Reason::Startup => "startup",
            Reason::MasterDown => "master_down",
            Reason::Preempted => "preempted",
            Reason::Shutdown => "shutdown",
            Reason::LinkDown => "link_down",
            Reason::LinkUp => "link_up",
            Reason::Maintenance => "maintenance",
            Reason::Stalled => "stalled",
            Reason::ProgramReplaced => "program_replaced",
        }
    }
}

/// What the I/O shell must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0 when resigning).
    SendAdvert {
        /// The priority to advertise.
        priority: u8,
    },
    /// The state changed: on `to == Master` own the addresses and send the
    /// gratuitous ARP / unsolicited NA burst; otherwise stop answering at once.
    Transition {
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
}

/// An advert as the state machine needs it (the codec's `ReceivedAdvert`
/// after the per-router acceptance checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeardAdvert {
    /// Advertised priority.
    pub priority: u8,
    /// Advertised Max_Adver_Int, centiseconds.
    pub max_adver_int_cs: u16,
    /// Sender's primary address.
    pub source: IpAddr,
}

/// Inputs other than time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// RFC 9568 §6.4.1 Startup.
    Startup,
    /// RFC 9568 Shutdown.
    Shutdown,
    /// An accepted advertisement for this VRID.
    Advert(HeardAdvert),
    /// The interface lost its carrier: stop advertising, own nothing.
    LinkDown,
    /// The carrier returned: start again as at startup.
    LinkUp,
    /// The node was held up long enough that a backup may have taken over
    /// (see [`Reason::Stalled`]).
    Stalled,
    /// The node's steering program was replaced (see [`Reason::ProgramReplaced`]).
    ProgramReplaced,
}

/// A virtual router's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// 1..=255; 255 = address owner.
    pub priority: u8,
    /// Advertisement_Interval (sent on the wire in centiseconds).
    pub advert_interval: Duration,
    /// Preempt_Mode.
    pub preempt: bool,
    /// Not in the RFC (keepalived's preempt_delay, RFC 8347's hold-time):
    /// once a lower-priority master is actually heard, keep following it this
    /// long before preempting.
    pub preempt_delay: Duration,
    /// This router's primary address (the IP source of its adverts), for the
    /// equal-priority tie-break.
    pub primary: IpAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    MasterDown = 0,
    Adver = 1,
}

/// One virtual router.
#[derive(Clone, Debug)]
pub struct VirtualRouter {
    config: RouterConfig,
    state: State,
    master_adver_interval: Duration,
    timers: [Option<Time>; 2],
    /// Set when a lower-priority master is first heard while a preempt delay
    /// applies: preemption waits until then.
    preempt_at: Option<Time>,
    /// In maintenance: never master, the master-down timer never runs.
    maintenance: bool,
}

/// Centiseconds on the wire → a duration.
pub(crate) fn from_centiseconds(cs: u16) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

/// A duration → the wire's centiseconds (12 bits, at least 1).
pub(crate) fn to_centiseconds(d: Duration) -> u16 {
    (d.as_millis() / 10).clamp(1, 4095) as u16
}

impl VirtualRouter {
    /// A router in Initialize.
    pub fn new(config: RouterConfig) -> VirtualRouter {
        let interval = config.advert_interval;
        VirtualRouter {
            config,
            state: State::Initialize,
            master_adver_interval: interval,
            timers: [None; 2],
            preempt_at: None,
            maintenance: false,
        }
    }

    /// In maintenance (see [`VirtualRouter::set_maintenance`]).
    pub fn maintenance(&self) -> bool {
        self.maintenance
    }

    /// Maintenance on: a master resigns as at shutdown (a priority-0 advert,
    /// so a backup takes over after its skew time) but stays a backup, and no
    /// backup in maintenance ever takes over. Off: a backup starts its
    /// master-down timer again and the election proceeds as usual (with
    /// preempt, a higher priority takes the group back).
    pub fn set_maintenance(&mut self, now: Time, on: bool, actions: &mut Vec<Action>) {
        if self.maintenance == on {
            return;
        }
        self.maintenance = on;
        match (self.state, on) {
            (State::Master, true) => {
                actions.push(Action::SendAdvert { priority: 0 });
                self.become_backup(now, Reason::Maintenance, actions);
            }
            (State::Backup, true) => self.set(Timer::MasterDown, None),
            (State::Backup, false) => self.set(Timer::MasterDown, Some(now.after(self.master_down_interval()))),
            _ => {}
        }
    }

    /// Replaces the configuration of a running router (a reload, or a new
    /// priority), keeping its state. A master advertises the new values at
    /// once, so backups weigh a changed priority without waiting an interval.
    /// An address owner (255) keeps that role; changing it takes a restart of the group.
    pub fn reconfigure(&mut self, now: Time, config: RouterConfig, actions: &mut Vec<Action>) {
        if config == self.config {
            return;
        }
        self.config = config;
        self.preempt_at = None;
        if self.state == State::Master {
            actions.push(Action::SendAdvert { priority: self.config.priority });
            self.set(Timer::Adver, Some(now.after(self.config.advert_interval)));
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// RFC 9568 §6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
    pub fn skew_time(&self) -> Duration {
        let micros = (256 - u64::from(self.config.priority)) * self.master_adver_interval.as_micros() as u64 / 256;
        Duration::from_micros(micros)
    }

    /// RFC 9568 §6.1: Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        3 * self.master_adver_interval + self.skew_time()
    }

    /// When the router next needs [`VirtualRouter::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.iter().flatten().min().copied()
    }

    fn set(&mut self, timer: Timer, at: Option<Time>) {
        self.timers[timer as usize] = at;
    }

    fn transition(&mut self, to: State, reason: Reason, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        actions.push(Action::Transition { from, to, reason });
    }

    fn become_master(&mut self, now: Time, reason: Reason, actions: &mut Vec<Action>) {
        // RFC 9568 §6.4.2: "Send an ADVERTISEMENT ... Broadcast a gratuitous
        // ARP ... Set the Adver_Timer to Advertisement_Interval ... Transition
        // to the Active state".
        actions.push(Action::SendAdvert { priority: self.config.priority });
        self.set(Timer::MasterDown, None);
        self.set(Timer::Adver, Some(now.after(self.config.advert_interval)));
        self.preempt_at = None;
        self.transition(State::Master, reason, actions);
    }

    fn become_backup(&mut self, now: Time, reason: Reason, actions: &mut Vec<Action>) {
        self.set(Timer::Adver, None);
        let master_down = (!self.maintenance).then(|| now.after(self.master_down_interval()));
        self.set(Timer::MasterDown, master_down);
        self.transition(State::Backup, reason, actions);
    }

    /// Feeds an event at `now`.
    pub fn handle(&mut self, now: Time, event: Event, actions: &mut Vec<Action>) {
        match (self.state, event) {
            (State::Initialize, Event::Startup) => self.start(now, Reason::OwnerStartup, Reason::Startup, actions),
            (State::Fault, Event::LinkUp) => self.start(now, Reason::LinkUp, Reason::LinkUp, actions),
            (State::Initialize, _) => {}
            (_, Event::Startup | Event::LinkUp) => {}
            // No priority-0 advert: a backup that took over meanwhile needs
            // none, and one that did not should not be hurried; the
            // master-down timer decides between them.
            (State::Master, Event::Stalled) => self.become_backup(now, Reason::Stalled, actions),
            (State::Backup | State::Fault, Event::Stalled) => {}
            (State::Fault, Event::ProgramReplaced) => {}
            (State::Backup | State::Master, Event::ProgramReplaced) => {
                // Deaf: an advert sent now would claim a VIP whose frames
                // no longer reach us.
                self.timers = [None; 2];
                self.transition(State::Fault, Reason::ProgramReplaced, actions);
            }
            (State::Fault, Event::Advert(_) | Event::LinkDown) => {}
            (State::Fault, Event::Shutdown) => self.transition(State::Initialize, Reason::Shutdown, actions),
            (State::Backup | State::Master, Event::LinkDown) => {
                // Nothing can be sent on a dead link; a backup on the other
                // side takes over when our adverts stop.
                self.timers = [None; 2];
                self.transition(State::Fault, Reason::LinkDown, actions);
            }
            (State::Backup, Event::Shutdown) => {
                self.timers = [None; 2];
                self.transition(State::Initialize, Reason::Shutdown, actions);
            }
            (State::Master, Event::Shutdown) => {
                // RFC 9568 §6.4.3: "Send an ADVERTISEMENT with Priority = 0".
                self.timers = [None; 2];
                actions.push(Action::SendAdvert { priority: 0 });
                self.transition(State::Initialize, Reason::Shutdown, actions);
            }
            (State::Backup, Event::Advert(advert)) => self.backup_heard(now, advert),
            (State::Master, Event::Advert(advert)) => self.master_heard(now, advert, actions),
        }
    }

    fn start(&mut self, now: Time, as_owner: Reason, as_backup: Reason, actions: &mut Vec<Action>) {
        if self.config.priority == 255 && !self.maintenance {
            self.become_master(now, as_owner, actions);
        } else {
            // RFC 9568 §6.4.1: "Set Master_Adver_Interval to Advertisement_Interval".
            self.master_adver_interval = self.config.advert_interval;
            self.become_backup(now, as_backup, actions);
        }
    }

    fn backup_heard(&mut self, now: Time, advert: HeardAdvert) {
        if self.maintenance {
            // Whatever the master says, this router does not take over.
            return;
        }
        // RFC 9568 §6.4.2: "If the Priority in the ADVERTISEMENT is zero,
        // then: Set the Master_Down_Timer to Skew_Time".
        if advert.priority == 0 {
            self.set(Timer::MasterDown, Some(now.after(self.skew_time())));
            return;
        }
        let lower = advert.priority < self.config.priority;
        let mut follow = !self.config.preempt || !lower;
        if !follow && !self.config.preempt_delay.is_zero() {
            // Preempt delay: counted from the first lower-priority advert heard.
            let at = *self.preempt_at.get_or_insert(now.after(self.config.preempt_delay));
            follow = now < at;
        }
        if follow {
            // "Set Master_Adver_Interval to Adver Interval contained in the
            // ADVERTISEMENT, Recompute the Skew_Time, Recompute the
            // Master_Down_Interval, Reset the Master_Down_Timer".
            self.master_adver_interval = from_centiseconds(advert.max_adver_int_cs);
            self.set(Timer::MasterDown, Some(now.after(self.master_down_interval())));
        }
        // Otherwise: "discard the ADVERTISEMENT" and let the timer run out.
    }

    /// True when `advert` wins the election against this router: a higher
    /// priority, or an equal one from a higher primary address (RFC 9568 §6.4.3).
    pub fn outranked_by(&self, advert: &HeardAdvert) -> bool {
        advert.priority > self.config.priority
            || (advert.priority == self.config.priority && advert.source > self.config.primary)
    }

    fn master_heard(&mut self, now: Time, advert: HeardAdvert, actions: &mut Vec<Action>) {
        // RFC 9568 §6.4.3: "If the Priority in the ADVERTISEMENT is zero,
        // then: Send an ADVERTISEMENT, Reset the Adver_Timer".
        if advert.priority == 0 {
            actions.push(Action::SendAdvert { priority: self.config.priority });
            self.set(Timer::Adver, Some(now.after(self.config.advert_interval)));
            return;
        }
        if self.outranked_by(&advert) {
            // "Cancel Adver_Timer, Set Master_Adver_Interval to Adver Interval
            // contained in the ADVERTISEMENT, Recompute the Skew_Time,
            // Recompute the Master_Down_Interval, Set Master_Down_Timer to
            // Master_Down_Interval, Transition to the Backup state".
            self.master_adver_interval = from_centiseconds(advert.max_adver_int_cs);
            self.become_backup(now, Reason::Preempted, actions);
        } else {
            // RFC 9568 §6.4.3 (changed from RFC 5798): a lower-priority
            // advert is answered with an advert at once, so a healed split
            // brain converges without waiting for the timer.
            actions.push(Action::SendAdvert { priority: self.config.priority });
            self.set(Timer::Adver, Some(now.after(self.config.advert_interval)));
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Time, actions: &mut Vec<Action>) {
        if self.timers[Timer::MasterDown as usize].is_some_and(|t| t <= now) && self.state == State::Backup {
            self.become_master(now, Reason::MasterDown, actions);
        }
        if self.timers[Timer::Adver as usize].is_some_and(|t| t <= now) && self.state == State::Master {
            actions.push(Action::SendAdvert { priority: self.config.priority });
            self.set(Timer::Adver, Some(now.after(self.config.advert_interval)));
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    fn config(priority: u8, interval_ms: u64) -> RouterConfig {
        RouterConfig {
            priority,
            advert_interval: Duration::from_millis(interval_ms),
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary: "198.51.100.2".parse().unwrap(),
        }
    }

    fn heard(priority: u8, source: &str) -> Event {
        Event::Advert(HeardAdvert { priority, max_adver_int_cs: 100, source: source.parse().unwrap() })
    }

    /// A router of priority 100 brought to `state` at time 0.
    fn router_in(state: State) -> VirtualRouter {
        let mut r = VirtualRouter::new(config(100, 1000));
        let mut sink = Vec::new();
        match state {
            State::Initialize => {}
            State::Backup => r.handle(Time(0), Event::Startup, &mut sink),
            State::Master => {
                r.handle(Time(0), Event::Startup, &mut sink);
                r.handle_timeout(Time(4000 * MS), &mut sink);
            }
            State::Fault => {
                r.handle(Time(0), Event::Startup, &mut sink);
                r.handle(Time(0), Event::LinkDown, &mut sink);
            }
        }
        assert_eq!(r.state(), state);
        r
    }

    /// Every (state, event) pair: the actions and the resulting state.
    #[test]
    fn every_state_and_event_pair_does_what_rfc_9568_section_6_4_says() {
        use Action::*;
        use State::*;
        let up = |from, to, reason| Transition { from, to, reason };
        let events: [(&str, Event); 11] = [
            ("startup", Event::Startup),
            ("program replaced", Event::ProgramReplaced),
            ("stalled", Event::Stalled),
            ("link down", Event::LinkDown),
            ("link up", Event::LinkUp),
            ("shutdown", Event::Shutdown),
            ("higher", heard(150, "198.51.100.3")),
            ("lower", heard(50, "198.51.100.3")),
            ("equal, higher address", heard(100, "198.51.100.9")),
            ("equal, lower address", heard(100, "198.51.100.1")),
            ("priority 0", heard(0, "198.51.100.3")),
        ];
        #[rustfmt::skip]
        let expected: [(State, &str, Vec<Action>, State); 44] = [
            (Initialize, "startup", vec![up(Initialize, Backup, Reason::Startup)], Backup),
            (Initialize, "shutdown", vec![], Initialize),
            (Initialize, "link down", vec![], Initialize),
            (Initialize, "link up", vec![], Initialize),
            (Initialize, "higher", vec![], Initialize),
            (Initialize, "lower", vec![], Initialize),
            (Initialize, "equal, higher address", vec![], Initialize),
            (Initialize, "equal, lower address", vec![], Initialize),
            (Initialize, "priority 0", vec![], Initialize),
            (Initialize, "stalled", vec![], Initialize),
            (Initialize, "program replaced", vec![], Initialize),
            (Backup, "startup", vec![], Backup),
            (Backup, "shutdown", vec![up(Backup, Initialize, Reason::Shutdown)], Initialize),
            (Backup, "link down", vec![up(Backup, Fault, Reason::LinkDown)], Fault),
            (Backup, "link up", vec![], Backup),
            (Backup, "higher", vec![], Backup),
            (Backup, "lower", vec![], Backup),
            (Backup, "equal, higher address", vec![], Backup),
            (Backup, "equal, lower address", vec![], Backup),
            (Backup, "priority 0", vec![], Backup),
            (Backup, "stalled", vec![], Backup),
            (Backup, "program replaced", vec![up(Backup, Fault, Reason::ProgramReplaced)], Fault),
            (Master, "startup", vec![], Master),
            (Master, "shutdown", vec![SendAdvert { priority: 0 }, up(Master, Initialize, Reason::Shutdown)], Initialize),
            (Master, "link down", vec![up(Master, Fault, Reason::LinkDown)], Fault),
            (Master, "link up", vec![], Master),
            (Master, "higher", vec![up(Master, Backup, Reason::Preempted)], Backup),
            (Master, "lower", vec![SendAdvert { priority: 100 }], Master),
            (Master, "equal, higher address", vec![up(Master, Backup, Reason::Preempted)], Backup),
            (Master, "equal, lower address", vec![SendAdvert { priority: 100 }], Master),
            (Master, "priority 0", vec![SendAdvert { priority: 100 }], Master),
            (Master, "stalled", vec![up(Master, Backup, Reason::Stalled)], Backup),
            (Master, "program replaced", vec![up(Master, Fault, Reason::ProgramReplaced)], Fault),
            (Fault, "startup", vec![], Fault),
            (Fault, "shutdown", vec![up(Fault, Initialize, Reason::Shutdown)], Initialize),
            (Fault, "link down", vec![], Fault),
            (Fault, "link up", vec![up(Fault, Backup, Reason::LinkUp)], Backup),
            (Fault, "higher", vec![], Fault),
            (Fault, "lower", vec![], Fault),
            (Fault, "equal, higher address", vec![], Fault),
            (Fault, "equal, lower address", vec![], Fault),
            (Fault, "priority 0", vec![], Fault),
            (Fault, "stalled", vec![], Fault),
            (Fault, "program replaced", vec![], Fault),
        ];
        for (state, name, actions, after) in expected {
            let event = events.iter().find(|(n, _)| *n == name).unwrap().1;
            let mut r = router_in(state);
            let mut got = Vec::new();
            r.handle(Time(5000 * MS), event, &mut got);
            assert_eq!((got, r.state()), (actions, after), "{state:?} + {name}");
        }
    }

    #[test]
    fn a_backup_takes_over_after_the_master_down_interval_with_microsecond_skew() {
        // 10 ms interval: integer centiseconds would make every skew 0.
        for (priority, down_us) in [(254u8, 30_078u64), (200, 32_187), (100, 36_093), (1, 39_960)] {
            let mut r = VirtualRouter::new(config(priority, 10));
            let mut actions = Vec::new();
            r.handle(Time(0), Event::Startup, &mut actions);
            assert_eq!(r.poll_timeout(), Some(Time(down_us)), "priority {priority}");
            actions.clear();
            r.handle_timeout(Time(down_us - 1), &mut actions);
            assert!(actions.is_empty(), "not before the interval");
            r.handle_timeout(Time(down_us), &mut actions);
            assert_eq!(actions[0], Action::SendAdvert { priority });
            assert_eq!(r.state(), State::Master);
            assert_eq!(r.poll_timeout(), Some(Time(down_us + 10_000)), "next advert one interval later");
        }
    }

    #[test]
    fn adverts_keep_a_backup_backup_and_teach_it_the_master_s_interval() {
        let mut r = VirtualRouter::new(config(100, 1000));
        let mut actions = Vec::new();
        r.handle(Time(0), Event::Startup, &mut actions);
        // The master advertises every 100 ms (10 cs): the backup learns it.
        let fast =
            Event::Advert(HeardAdvert { priority: 200, max_adver_int_cs: 10, source: "198.51.100.3".parse().unwrap() });
        r.handle(Time(50 * MS), fast, &mut actions);
        assert_eq!(r.master_down_interval(), Duration::from_micros(300_000 + 60_937));
        assert_eq!(r.poll_timeout(), Some(Time(50 * MS + 360_937)));
    }

    #[test]
    fn in_maintenance_a_master_resigns_and_nothing_makes_it_master_until_off() {
        use Action::*;
        let mut r = router_in(State::Master);
        let mut actions = Vec::new();
        r.set_maintenance(Time(0), true, &mut actions);
        assert_eq!(
            actions,
            vec![
                SendAdvert { priority: 0 },
                Transition { from: State::Master, to: State::Backup, reason: Reason::Maintenance }
            ]
        );
        assert_eq!(r.poll_timeout(), None, "no master-down timer in maintenance");
        actions.clear();
        // Silence, a resigning master, a lower one, link flaps: still backup.
        r.handle(Time(10 * MS), heard(0, "198.51.100.3"), &mut actions);
        r.handle(Time(20 * MS), heard(1, "198.51.100.3"), &mut actions);
        r.handle_timeout(Time(60_000 * MS), &mut actions);
        r.handle(Time(60_001 * MS), Event::LinkDown, &mut actions);
        r.handle(Time(60_002 * MS), Event::LinkUp, &mut actions);
        assert_eq!(r.state(), State::Backup);
        assert_eq!(r.poll_timeout(), None);
        assert!(!actions.iter().any(|a| matches!(a, SendAdvert { .. })), "{actions:?}");
        // Off: the master-down timer runs again, and with nobody heard it takes over.
        actions.clear();
        r.set_maintenance(Time(70_000 * MS), false, &mut actions);
        assert!(actions.is_empty());
        let due = r.poll_timeout().expect("master-down timer");
        assert_eq!(due, Time(70_000 * MS).after(r.master_down_interval()));
        r.handle_timeout(due, &mut actions);
        assert_eq!(r.state(), State::Master);
    }

    #[test]
    fn the_owner_in_maintenance_starts_as_backup() {
        let mut r = VirtualRouter::new(config(255, 1000));
        let mut actions = Vec::new();
        r.set_maintenance(Time(0), true, &mut actions);
        r.handle(Time(0), Event::Startup, &mut actions);
        assert_eq!(r.state(), State::Backup);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_master_advertises_a_new_priority_at_once_and_a_backup_weighs_it_next_advert() {
        let mut r = router_in(State::Master);
        let mut actions = Vec::new();
        r.reconfigure(Time(5 * MS), RouterConfig { priority: 50, ..r.config().clone() }, &mut actions);
        assert_eq!(actions, vec![Action::SendAdvert { priority: 50 }]);
        assert_eq!(r.poll_timeout(), Some(Time(5 * MS).after(r.config().advert_interval)));
        actions.clear();
        r.reconfigure(Time(6 * MS), r.config().clone(), &mut actions);
        assert!(actions.is_empty(), "the same configuration changes nothing");
        // Now outranked by a priority-100 master from a lower address.
        r.handle(Time(7 * MS), heard(100, "198.51.100.1"), &mut actions);
        assert_eq!(r.state(), State::Backup);

        // A backup raised above the master stops following it (preempt) and takes over.
        let mut b = router_in(State::Backup);
        b.reconfigure(Time(0), RouterConfig { priority: 250, ..b.config().clone() }, &mut actions);
        let mut t = 0;
        while b.state() == State::Backup && t < 500 {
            t += 1;
            b.handle(Time(t * 10 * MS), heard(200, "198.51.100.3"), &mut actions);
            b.handle_timeout(Time(t * 10 * MS), &mut actions);
        }
        assert_eq!(b.state(), State::Master, "preempted the lower master");
    }

    #[test]
    fn a_resigning_master_is_replaced_after_skew_time() {
        let mut r = VirtualRouter::new(config(200, 1000));
        let mut actions = Vec::new();
        r.handle(Time(0), Event::Startup, &mut actions);
        r.handle(Time(100 * MS), heard(0, "198.51.100.3"), &mut actions);
        assert_eq!(r.poll_timeout(), Some(Time(100 * MS + 218_750)), "Skew_Time at priority 200, 1 s");
    }

    /// Starts a priority-200 router beside a priority-100 master advertising
    /// every second; returns the second at which it became master, if within 20 s.
    fn second_it_takes_over(config: RouterConfig) -> Option<u64> {
        let mut r = VirtualRouter::new(config);
        let mut actions = Vec::new();
        r.handle(Time(0), Event::Startup, &mut actions);
        (1..=20u64).find(|t| {
            r.handle(Time(t * 1000 * MS), heard(100, "198.51.100.3"), &mut actions);
            r.handle_timeout(Time(t * 1000 * MS), &mut actions);
            r.state() == State::Master
        })
    }

    #[test]
    fn without_preempt_a_higher_priority_backup_follows_a_lower_master() {
        assert_eq!(second_it_takes_over(RouterConfig { preempt: false, ..config(200, 1000) }), None);
    }

    #[test]
    fn with_preempt_a_higher_priority_backup_takes_over_once_the_lower_master_s_adverts_are_discarded() {
        // The first master-down interval (3.22 s) after startup runs out.
        assert_eq!(second_it_takes_over(config(200, 1000)), Some(4));
    }

    #[test]
    fn preempt_delay_starts_when_a_lower_master_is_heard() {
        // First heard at 1 s: followed until 6 s, then discarded; the timer
        // reset at 5 s runs out 3.22 s later, at the 9 s check.
        let delayed = RouterConfig { preempt_delay: Duration::from_secs(5), ..config(200, 1000) };
        assert_eq!(second_it_takes_over(delayed), Some(9));
    }

    #[test]
    fn the_address_owner_starts_as_master_and_centiseconds_convert_both_ways() {
        let mut r = VirtualRouter::new(config(255, 10));
        let mut actions = Vec::new();
        r.handle(Time(0), Event::Startup, &mut actions);
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert { priority: 255 },
                Action::Transition { from: State::Initialize, to: State::Master, reason: Reason::OwnerStartup }
            ]
        );
        assert_eq!(to_centiseconds(Duration::from_millis(10)), 1);
        assert_eq!(to_centiseconds(Duration::from_secs(100)), 4095);
        assert_eq!(from_centiseconds(100), Duration::from_secs(1));
    }
}
