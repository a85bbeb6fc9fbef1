//! One VRRP group on one interface, sans-IO: frames and `(now)` in, frames to
//! send and ownership changes out. It joins the codec, the per-router
//! acceptance checks, the state machine and the GARP schedule, and counts
//! everything. The control thread is a thin shell around it.

use crate::accept::{AcceptError, AcceptRules};
use crate::advert::{
    parse_advert, write_advert, Advert, AdvertError, AdvertHeader, ChecksumForm, ReceivedAdvert, GROUP_V4, GROUP_V6,
};
use crate::garp::{GarpScheduler, GarpSettings};
use crate::router::{Action, Event, Reason, RouterConfig, State, VirtualRouter};
use std::net::IpAddr;
use std::time::Duration;
use vipdrift_vmac::arp::{write_garp, GarpForm};
use vipdrift_vmac::ndp::write_unsolicited_na;
use vipdrift_vmac::{vrrp_mac, AddressMode};
use vipdrift_wire::{Family, MacAddr, Time};

/// A group's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// VRID, 1..=255.
    pub vrid: u8,
    /// 1..=255 (255: address owner).
    pub priority: u8,
    /// Advertisement interval (multiple of 10 ms on the wire).
    pub advert_interval: Duration,
    /// Preempt a lower-priority master.
    pub preempt: bool,
    /// Follow a lower-priority master this long once heard, before preempting.
    pub preempt_delay: Duration,
    /// The VIPs, one family.
    pub vips: Vec<IpAddr>,
    /// This node's address on the interface (IPv4 primary, or IPv6 link-local): advert source.
    pub primary: IpAddr,
    /// The interface's own MAC.
    pub interface_mac: MacAddr,
    /// Answer and advertise with the VRRP virtual MAC (vmac), or the interface's (own_mac).
    pub mode: AddressMode,
    /// Unicast peers and their MACs; empty: the multicast group.
    pub unicast_peers: Vec<(IpAddr, MacAddr)>,
    /// IPv4 checksum form to send.
    pub checksum_form: ChecksumForm,
    /// GARP / unsolicited NA schedule.
    pub garp: GarpSettings,
}

impl GroupConfig {
    /// The group's address family (its primary address's).
    pub fn family(&self) -> Family {
        Family::of(self.primary)
    }

    fn ipv4(&self) -> bool {
        self.primary.is_ipv4()
    }

    /// Same VRID, family, address mode and interface MAC: the same group on
    /// the wire, which a running [`VrrpGroup`] can be reconfigured into.
    pub fn same_identity(&self, other: &GroupConfig) -> bool {
        self.vrid == other.vrid
            && self.ipv4() == other.ipv4()
            && self.mode == other.mode
            && self.interface_mac == other.interface_mac
            && self.primary == other.primary
    }

    fn router_config(&self) -> RouterConfig {
        RouterConfig {
            priority: self.priority,
            advert_interval: self.advert_interval,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            primary: self.primary,
        }
    }

    fn accept_rules(&self) -> AcceptRules {
        AcceptRules {
            vrid: self.vrid,
            priority: self.priority,
            own_addresses: vec![self.primary],
            unicast_peers: self.unicast_peers.iter().map(|(ip, _)| *ip).collect(),
            ipv4: self.ipv4(),
        }
    }

    /// The MAC the group's VIPs live on and its adverts leave from.
    pub fn mac(&self) -> MacAddr {
        match self.mode {
            AddressMode::OwnMac => self.interface_mac,
            AddressMode::Vmac => vrrp_mac(self.family(), self.vrid),
        }
    }

    /// A small IPv4 vmac-mode group at 1 s adverts, for examples and tests:
    /// VRID `vrid`, this node 198.51.100.2, VIP 198.51.100.100.
    pub fn example(vrid: u8, priority: u8) -> GroupConfig {
        GroupConfig {
            vrid,
            priority,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            vips: vec![IpAddr::from([198, 51, 100, 100])],
            primary: IpAddr::from([198, 51, 100, 2]),
            interface_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            mode: AddressMode::Vmac,
            unicast_peers: Vec::new(),
            checksum_form: ChecksumForm::PseudoHeader,
            garp: GarpSettings::default(),
        }
    }
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Transmit this frame.
    Frame(Vec<u8>),
    /// Start (true) or stop (false) answering for the VIPs, at once.
    Own(bool),
    /// A state change, for logs, notify hooks and status.
    Transition {
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
}

vipdrift_wire::counter_set! {
    /// A group's counters.
    pub struct GroupCounters {
        /// Adverts sent.
        adverts_sent: advert => "adverts_sent",
        /// Adverts accepted.
        adverts_received: advert => "adverts_received",
        /// Adverts with the RFC 5798 (pseudo-header) IPv4 checksum.
        pseudo_header_checksums: checksum => "pseudo_header",
        /// Adverts with the RFC 9568 (message-only) IPv4 checksum.
        message_only_checksums: checksum => "message_only",
        /// Rejected by the codec: TTL, version, type, checksum, count, interval, IP header, truncated.
        malformed: rejected => "malformed",
        /// Rejected: our own adverts.
        own_adverts: rejected => "own_advert",
        /// Rejected: not a configured unicast peer.
        not_a_peer: rejected => "not_a_peer",
        /// Adverts for other VRIDs (or the other family).
        other_vrid: rejected => "other_vrid",
        /// Rejected because this node is the address owner.
        while_owner: rejected => "while_owner",
        /// GARP / unsolicited NA frames sent.
        garps_sent: announce => "garps_sent",
        /// State transitions.
        transitions: state => "transitions",
        /// Two masters met (a healed partition, or a preemption): counted by the
        /// winner when it hears the loser (it then announces again) and by the
        /// loser when it yields.
        split_brains: state => "split_brains",
    }
}

/// One VRRP group.
#[derive(Clone, Debug)]
pub struct VrrpGroup {
    config: GroupConfig,
    router: VirtualRouter,
    rules: AcceptRules,
    garp: GarpScheduler,
    counters: GroupCounters,
    ip_id: u16,
    /// When this master last heard a lower master, so one episode (several
    /// adverts crossing) counts and re-announces once.
    last_split_brain: Option<Time>,
    last_heard: Option<Time>,
    /// The source and priority of the last accepted advert from a master.
    master_heard: Option<(IpAddr, u8)>,
}

impl VrrpGroup {
    /// A group in Initialize.
    pub fn new(config: GroupConfig) -> VrrpGroup {
        VrrpGroup {
            router: VirtualRouter::new(config.router_config()),
            rules: config.accept_rules(),
            garp: GarpScheduler::new(config.garp),
            config,
            counters: GroupCounters::default(),
            ip_id: 0,
            last_split_brain: None,
            last_heard: None,
            master_heard: None,
        }
    }

    /// Who is master: this node (`true`) with its priority, or the sender of
    /// the adverts this backup follows; `None` when unknown (a master just
    /// resigned, nothing heard yet, or not running).
    pub fn master(&self) -> Option<(IpAddr, u8, bool)> {
        match self.router.state() {
            State::Master => Some((self.config.primary, self.config.priority, true)),
            State::Backup => self.master_heard.map(|(ip, priority)| (ip, priority, false)),
            State::Initialize | State::Fault => None,
        }
    }

    /// In maintenance.
    pub fn maintenance(&self) -> bool {
        self.router.maintenance()
    }

    /// Maintenance on: a master resigns (a priority-0 advert, so the best
    /// backup takes over after its skew time) and the group stays backup
    /// until maintenance is off. The caller decides when to stop answering
    /// for the VIPs: [`Output::Own`]`(false)` comes at once, as for any
    /// master that steps down.
    pub fn set_maintenance(&mut self, now: Time, on: bool, out: &mut Vec<Output>) {
        let mut actions = Vec::new();
        self.router.set_maintenance(now, on, &mut actions);
        self.apply(now, actions, out);
    }

    /// Applies a new configuration to the running group, keeping its state.
    /// The group's identity must not change (VRID, family, address mode and
    /// MACs: such a change is a different group). A master advertises new
    /// values at once and announces its VIPs again when they changed.
    pub fn reconfigure(&mut self, now: Time, config: GroupConfig, out: &mut Vec<Output>) {
        debug_assert!(self.config.same_identity(&config), "a reconfigured group keeps its identity");
        let vips_changed = config.vips != self.config.vips;
        if config.garp != self.config.garp {
            self.garp = GarpScheduler::new(config.garp);
        }
        self.rules = config.accept_rules();
        let router_config = config.router_config();
        self.config = config;
        let mut actions = Vec::new();
        self.router.reconfigure(now, router_config, &mut actions);
        let advertised = actions.iter().any(|a| matches!(a, Action::SendAdvert { .. }));
        self.apply(now, actions, out);
        if vips_changed && self.router.state() == State::Master {
            if !advertised {
                self.advertise(self.config.priority, out);
            }
            self.garp.start(now);
            if self.garp.handle_timeout(now) {
                self.announce(out);
            }
        }
    }

    /// Sets the priority (1..=254) until the next reconfiguration; see [`VrrpGroup::reconfigure`].
    pub fn set_priority(&mut self, now: Time, priority: u8, out: &mut Vec<Output>) {
        let config = GroupConfig { priority, ..self.config.clone() };
        self.reconfigure(now, config, out);
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.router.state()
    }

    /// Counters so far.
    pub fn counters(&self) -> GroupCounters {
        self.counters
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Starts the group (RFC 9568 Startup).
    pub fn start(&mut self, now: Time, out: &mut Vec<Output>) {
        self.feed(now, Event::Startup, out);
    }

    /// The interface lost its carrier: fault state, silent, owning nothing.
    pub fn link_down(&mut self, now: Time, out: &mut Vec<Output>) {
        self.feed(now, Event::LinkDown, out);
    }

    /// The carrier returned: backup again (master at once if the address owner).
    pub fn link_up(&mut self, now: Time, out: &mut Vec<Output>) {
        self.feed(now, Event::LinkUp, out);
    }

    /// The node was held up long enough that a backup may have taken over:
    /// a master becomes a backup (see [`Reason::Stalled`](crate::router::Reason::Stalled)).
    pub fn stalled(&mut self, now: Time, out: &mut Vec<Output>) {
        self.feed(now, Event::Stalled, out);
    }

    /// Another program replaced the node's steering program: fault (see
    /// [`Reason::ProgramReplaced`](crate::router::Reason::ProgramReplaced)).
    pub fn program_replaced(&mut self, now: Time, out: &mut Vec<Output>) {
        self.feed(now, Event::ProgramReplaced, out);
    }

    /// When the last advert was accepted (the start of a failover's dark time).
    pub fn last_advert_heard(&self) -> Option<Time> {
        self.last_heard
    }

    /// Stops the group: a master sends priority 0 so a backup takes over after skew time.
    pub fn shutdown(&mut self, now: Time, out: &mut Vec<Output>) {
        self.feed(now, Event::Shutdown, out);
    }

    /// When the group next needs [`VrrpGroup::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        match (self.router.poll_timeout(), self.garp.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Time, out: &mut Vec<Output>) {
        let mut actions = Vec::new();
        self.router.handle_timeout(now, &mut actions);
        self.apply(now, actions, out);
        if self.garp.handle_timeout(now) {
            self.announce(out);
        }
    }

    /// Handles a received frame (the worker passed it to the control thread).
    pub fn handle_frame(&mut self, now: Time, frame: &[u8], out: &mut Vec<Output>) {
        self.handle_advert(now, &parse_advert(frame), out);
    }

    /// Handles a frame already parsed with [`parse_advert`] (a node parses
    /// each frame once for all the groups of its interface).
    pub fn handle_advert(
        &mut self,
        now: Time,
        parsed: &Result<Option<ReceivedAdvert>, AdvertError>,
        out: &mut Vec<Output>,
    ) {
        let received = match parsed {
            Ok(Some(received)) => received,
            Ok(None) => return,
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        let heard = match self.rules.accept(received) {
            Ok(heard) => heard,
            Err(reason) => {
                let c = &mut self.counters;
                match reason {
                    AcceptError::OtherVrid | AcceptError::OtherFamily => c.other_vrid += 1,
                    AcceptError::OwnAdvert => c.own_adverts += 1,
                    AcceptError::NotAPeer => c.not_a_peer += 1,
                    AcceptError::WeAreOwner => c.while_owner += 1,
                }
                return;
            }
        };
        self.counters.adverts_received += 1;
        self.last_heard = Some(now);
        self.master_heard = (heard.priority != 0).then_some((heard.source, heard.priority));
        match received.checksum_form {
            ChecksumForm::PseudoHeader => self.counters.pseudo_header_checksums += 1,
            ChecksumForm::MessageOnly => self.counters.message_only_checksums += 1,
        }
        if self.router.state() == State::Master && heard.priority != 0 && !self.router.outranked_by(&heard) {
            // Two masters: a partition healed. We win; make every neighbour
            // relearn our MAC, since the loser may have taught them its own.
            let quiet = 3 * self.config.advert_interval;
            if self.last_split_brain.is_none_or(|t| now > t.after(quiet)) {
                self.counters.split_brains += 1;
                self.garp.start(now);
            }
            self.last_split_brain = Some(now);
        }
        self.feed(now, Event::Advert(heard), out);
    }

    fn feed(&mut self, now: Time, event: Event, out: &mut Vec<Output>) {
        let mut actions = Vec::new();
        self.router.handle(now, event, &mut actions);
        self.apply(now, actions, out);
    }

    fn apply(&mut self, now: Time, actions: Vec<Action>, out: &mut Vec<Output>) {
        for action in actions {
            match action {
                Action::SendAdvert { priority } => self.advertise(priority, out),
                Action::Transition { from, to, reason } => {
                    self.counters.transitions += 1;
                    out.push(Output::Transition { from, to, reason });
                    if to == State::Master {
                        out.push(Output::Own(true));
                        self.garp.start(now);
                        // The first announcement goes with the first advert.
                        if self.garp.handle_timeout(now) {
                            self.announce(out);
                        }
                    } else if from == State::Master {
                        if reason == Reason::Preempted {
                            // We were master and a better one spoke: the
                            // other side of a split brain (or a preemption).
                            // One last advert tells the winner that two
                            // masters met, so it re-announces: neighbours
                            // may have learned our MAC for the VIPs. Without
                            // it the winner never hears us when its advert
                            // reached us first.
                            self.counters.split_brains += 1;
                            self.advertise(self.config.priority, out);
                        }
                        out.push(Output::Own(false));
                        self.garp.stop();
                    }
                }
            }
        }
    }

    fn advertise(&mut self, priority: u8, out: &mut Vec<Output>) {
        let advert = Advert {
            vrid: self.config.vrid,
            priority,
            max_adver_int_cs: crate::router::to_centiseconds(self.config.advert_interval),
            addresses: self.config.vips.clone(),
        };
        let group: IpAddr = if self.config.ipv4() { GROUP_V4.into() } else { GROUP_V6.into() };
        let destinations: Vec<(IpAddr, MacAddr)> = if self.config.unicast_peers.is_empty() {
            vec![(group, MacAddr([0; 6]))]
        } else {
            self.config.unicast_peers.clone()
        };
        for (destination, peer_mac) in destinations {
            self.ip_id = self.ip_id.wrapping_add(1);
            let header = AdvertHeader {
                source_mac: self.config.mac(),
                source: self.config.primary,
                destination,
                peer_mac,
                ip_id: self.ip_id,
                form: self.config.checksum_form,
            };
            let mut buf = vec![0u8; 14 + 40 + 8 + 16 * self.config.vips.len()];
            if let Some(len) = write_advert(&mut buf, &header, &advert) {
                buf.truncate(len);
                self.counters.adverts_sent += 1;
                out.push(Output::Frame(buf));
            }
        }
    }

    /// One gratuitous ARP (request form, SPA = TPA) per IPv4 VIP and one
    /// unsolicited NA (Target LL, S=0, O=1) per IPv6 VIP.
    fn announce(&mut self, out: &mut Vec<Output>) {
        let mac = self.config.mac();
        for vip in &self.config.vips {
            let mut buf = vec![0u8; 128];
            let len = match vip {
                IpAddr::V4(a) => write_garp(&mut buf, GarpForm::Request, mac, *a, None),
                IpAddr::V6(a) => write_unsolicited_na(&mut buf, mac, *a, false, None),
            };
            if let Some(len) = len {
                buf.truncate(len);
                self.counters.garps_sent += 1;
                out.push(Output::Frame(buf));
            }
        }
    }
}
