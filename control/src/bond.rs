//! A bond on the control thread: one node's NICs on one LAN sharing IPv4
//! VIPs (the bonding driver's balance-tlb and balance-alb), the thin shell
//! around [`TlbPlan`] and [`Assignments`].
//!
//! Each of the bond's workers owns the same queue of every NIC (port `i` is
//! NIC `i`), so a reply can leave through any NIC. The control thread
//! watches each NIC's carrier, decides (tlb: where the primary MAC lives;
//! alb: which NIC each client uses) and tells the workers with one
//! [`BondView`]; the frames it sends (announcements, alb's ARP answers and
//! client moves) are injected into the first worker's TX ring on the port of
//! the NIC they must leave through, so the switch learns each MAC on its
//! NIC's port.
//!
//! alb's ARP requests reach this thread from the primary NIC's workers (a
//! broadcast request is heard by every NIC; one answers) and from the NIC a
//! client's cache probe is addressed to. Each answer is a unicast reply from
//! the client's NIC. A client moved to another NIC (link loss, rebalance, or
//! after this node's own broadcast announcement taught every client the
//! primary's MAC) gets a directed gratuitous ARP reply per VIP, which Linux
//! applies even inside its 1 s locktime.

use crate::admin;
use crate::config::{prefixed, BondSpec, InterfaceConfig};
use crate::error::RuntimeError;
use crate::event::DaemonEvent;
use crate::link::LinkWatch;
use crate::nic::Nic;
use crate::responder::{Responder, ResponderCommand};
use crate::workers::{start_worker, RunningWorker, WorkerInfo, WorkerPlan};
use crossbeam_channel::Receiver;
use mio::Waker;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use vipdrift_engine::{ControlFrame, MacAddr, VipDelivery, CONTROL_FRAME_MAX};
use vipdrift_vmac::alb::{Assignments, Update};
use vipdrift_vmac::arp::{write_directed_garp, write_garp, ArpPacket, GarpForm, OP_REQUEST};
use vipdrift_vmac::{BondCounters, BondMode, BondView, TlbPlan};
use vipdrift_wire::CounterSet;
use vipdrift_wire::Time;

/// Frames a bond takes from one worker's channel per wake-up, so a flood of
/// ARP requests cannot starve the timers.
const MAX_FRAMES_PER_ROUND: usize = 1024;
/// After this node's own broadcast announcement, how long before the
/// clients it misled are told their NIC again: after the announcement has
/// reached them.
const CORRECTION_DELAY: Duration = Duration::from_millis(10);
/// Client corrections handed out per control-loop round (the rest wait).
const CORRECTIONS_PER_ROUND: usize = 256;
/// How often quiet alb clients are aged out.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

struct BondNic {
    config: InterfaceConfig,
    nic: Nic,
    hardware_mac: MacAddr,
    link: LinkWatch,
}

struct Alb {
    table: Assignments,
    /// The NIC that takes broadcast ARP requests: the first with its link.
    primary: usize,
    /// Client moves not yet sent (the worker's queue was full).
    pending: VecDeque<Update>,
    next_rebalance: Time,
    next_expire: Time,
    /// When announcement corrections may fall due.
    corrections_from: Option<Time>,
}

impl Alb {
    /// A table for NICs with `macs` whose links are `up` now.
    fn new(macs: &[MacAddr], up: &[bool], clients: usize) -> Alb {
        let mut table = Assignments::new(macs, clients);
        for (nic, &link) in up.iter().enumerate() {
            if !link {
                table.nic_down(nic);
            }
        }
        Alb {
            table,
            primary: up.iter().position(|&u| u).unwrap_or(0),
            pending: VecDeque::new(),
            next_rebalance: Time::ZERO,
            next_expire: Time::ZERO,
            corrections_from: None,
        }
    }

    fn next_deadline(&self) -> Time {
        if !self.pending.is_empty() {
            return Time::ZERO;
        }
        self.next_rebalance.min(self.next_expire).min(self.corrections_from.unwrap_or(Time::NEVER))
    }

    /// Rebalancing, ageing and announcement corrections due at `now`; the
    /// client moves they make wait in `pending`.
    fn tick(&mut self, now: Time, spec: &BondSpec) {
        if self.next_rebalance <= now {
            self.next_rebalance = now.after(spec.rebalance_interval);
            let moves = self.table.rebalance(spec.rebalance_burst);
            self.pending.extend(moves);
        }
        if self.next_expire <= now {
            self.next_expire = now.after(EXPIRE_EVERY);
            self.table.expire(now, spec.client_timeout);
        }
        if self.corrections_from.is_some_and(|t| t <= now) {
            let due = self.table.due_updates(now, CORRECTIONS_PER_ROUND);
            if due.is_empty() {
                self.corrections_from = None;
            }
            self.pending.extend(due);
        }
    }
}

enum Balance {
    Tlb(TlbPlan),
    Alb(Alb),
}

vipdrift_wire::counter_set! {
    /// What the control thread did for a bond.
    struct Events {
        /// alb: ARP requests answered from the client's NIC.
        arp_answered: event => "arp_answered",
        /// alb: frames handed over that were not an ARP request for a VIP.
        arp_malformed: event => "arp_malformed",
        /// alb: clients told their new NIC (directed gratuitous replies).
        client_updates: event => "client_updates",
        /// tlb: the primary MAC moved to another NIC.
        takeovers: event => "takeovers",
        /// Gratuitous ARPs broadcast for the VIPs.
        announcements: event => "announcements",
        /// Frames a worker's full queue refused.
        inject_failures: event => "inject_failures",
    }
}

/// A running bond. Fields drop in order: the workers stop before the NICs'
/// steering programs are detached.
pub(crate) struct Bond {
    pub(crate) workers: Vec<RunningWorker>,
    inbox: Vec<Receiver<ControlFrame>>,
    nics: Vec<BondNic>,
    spec: BondSpec,
    vips: Vec<Ipv4Addr>,
    balance: Balance,
    next_announce: Option<Time>,
    events: Events,
}

impl Bond {
    /// Prepares every NIC of the bond (steering for its VIPs, the other
    /// NICs' MACs in its unicast filter so a MAC can move to it) and starts
    /// one worker per queue, owning that queue of every NIC.
    pub(crate) fn open(
        spec: &BondSpec,
        interfaces: &[InterfaceConfig],
        waker: &Arc<Waker>,
    ) -> Result<Bond, RuntimeError> {
        let vips: Vec<Ipv4Addr> = spec.vips.iter().map(|(ip, _)| *ip).collect();
        let mut nics = Vec::new();
        for config in interfaces {
            let mut nic = Nic::open(&config.name, config.bind, config.whole_nic)?;
            nic.steer_vips(vips.iter().map(|&vip| vip.into()), VipDelivery::Engine)?;
            let link = LinkWatch::new(nic.filter());
            nics.push(BondNic { config: config.clone(), hardware_mac: nic.mac(), nic, link });
        }
        for i in 0..nics.len() {
            for j in 0..nics.len() {
                if i != j {
                    nics[i].nic.accept_unicast(nics[j].hardware_mac)?;
                }
            }
        }
        let macs: Vec<MacAddr> = nics.iter().map(|n| n.hardware_mac).collect();
        let up: Vec<bool> = nics.iter().map(|n| n.link.up).collect();
        let balance = match spec.mode {
            BondMode::Tlb => Balance::Tlb(TlbPlan::new(&macs, &up)),
            BondMode::Alb => Balance::Alb(Alb::new(&macs, &up, spec.clients)),
        };
        let mut bond = Bond {
            workers: Vec::new(),
            inbox: Vec::new(),
            nics,
            spec: spec.clone(),
            vips,
            balance,
            next_announce: None,
            events: Events::default(),
        };
        let first = bond.nics[0].config.clone();
        for (q, &queue) in first.queues.iter().enumerate() {
            let mut ports = Vec::new();
            for nic in &mut bond.nics {
                ports.push(nic.nic.open_port(queue)?);
            }
            let responder = Responder::for_bond(bond.view());
            let plan = WorkerPlan {
                info: WorkerInfo { interface: spec.name.clone(), queue, core: first.cores.get(q).copied() },
                idle: first.idle,
                thread_name: format!("vd-{}-q{queue}", spec.name),
                // A bond's VIPs are the engine's: nothing to gate.
                lease: None,
            };
            let (worker, rx) = start_worker(ports, responder, plan, waker)?;
            bond.workers.push(worker);
            bond.inbox.push(rx);
        }
        Ok(bond)
    }

    pub(crate) fn nic_names(&self) -> impl Iterator<Item = &str> {
        self.nics.iter().map(|n| n.config.name.as_str())
    }

    fn view(&self) -> BondView {
        match &self.balance {
            Balance::Tlb(plan) => plan.view(&self.vips),
            Balance::Alb(alb) => BondView {
                mode: BondMode::Alb,
                vips: self.vips.clone(),
                macs: self.nics.iter().map(|n| n.hardware_mac).collect(),
                up: (0..self.nics.len()).map(|i| alb.table.is_up(i)).collect(),
                primary: alb.primary,
            },
        }
    }

    fn publish_view(&self) {
        let view = self.view();
        for worker in &self.workers {
            worker.command(ResponderCommand::SetBond(view.clone()));
        }
    }

    /// Announces the VIPs once at start, as a bonding master does.
    pub(crate) fn start(&mut self, now: Time) {
        self.announce(now);
    }

    /// The earliest time [`Bond::poll`] has work.
    pub(crate) fn next_deadline(&self) -> Time {
        let links = self.nics.iter().map(|n| n.link.next_check());
        let alb = match &self.balance {
            Balance::Alb(alb) => Some(alb.next_deadline()),
            Balance::Tlb(_) => None,
        };
        links.chain(alb).chain(self.next_announce).min().unwrap_or(Time::NEVER)
    }

    /// Frames from the workers, link checks and timers due at `now`.
    pub(crate) fn poll(&mut self, now: Time, report: &mut Vec<DaemonEvent>) {
        self.receive(now);
        self.check_links(now, report);
        if self.next_announce.is_some_and(|t| t <= now) {
            self.announce(now);
        }
        let Balance::Alb(alb) = &mut self.balance else { return };
        alb.tick(now, &self.spec);
        self.send_pending();
    }

    fn receive(&mut self, now: Time) {
        let mut frame = [0u8; CONTROL_FRAME_MAX];
        for w in 0..self.inbox.len() {
            for _ in 0..MAX_FRAMES_PER_ROUND {
                let Ok(incoming) = self.inbox[w].try_recv() else { break };
                let bytes = incoming.bytes();
                frame[..bytes.len()].copy_from_slice(bytes);
                self.answer_arp(now, &mut frame[..bytes.len()]);
            }
        }
    }

    /// Answers an alb client's ARP request (handed over by a worker) from
    /// the client's NIC.
    fn answer_arp(&mut self, now: Time, frame: &mut [u8]) {
        let Balance::Alb(alb) = &mut self.balance else { return };
        let mut arp = match ArpPacket::parse(&mut *frame) {
            Ok(Some(arp)) if arp.operation() == OP_REQUEST && self.vips.contains(&arp.target_ip()) => arp,
            _ => {
                self.events.arp_malformed += 1;
                return;
            }
        };
        let vip = arp.target_ip();
        let client = arp.sender_ip();
        let (nic, mac) = if client.is_unspecified() {
            // An address probe (RFC 5227): say the VIP is taken, remember nothing.
            (alb.primary, self.nics[alb.primary].hardware_mac)
        } else {
            match alb.table.answer(now, client, arp.sender_mac()) {
                Some(choice) => choice,
                None => return,
            }
        };
        let len = arp.make_reply(mac, vip);
        if self.workers[0].inject(nic as u8, &frame[..len]) {
            self.events.arp_answered += 1;
        } else {
            self.events.inject_failures += 1;
        }
    }

    fn check_links(&mut self, now: Time, report: &mut Vec<DaemonEvent>) {
        for i in 0..self.nics.len() {
            let nic = &mut self.nics[i];
            let Some(up) = nic.link.check(now, nic.config.link_check, nic.nic.filter()) else { continue };
            report.push(DaemonEvent::Link { iface: nic.config.name.clone(), up });
            let elapsed = Duration::from_micros(now.0.saturating_sub(nic.link.changed_since.0));
            if let Some(change) = self.link_changed(i, up) {
                report.push(DaemonEvent::Bond { bond: self.spec.name.clone(), change, elapsed });
            }
        }
    }

    /// Acts on NIC `i`'s new link state; returns what moved, if anything.
    fn link_changed(&mut self, i: usize, up: bool) -> Option<String> {
        let name = self.nics[i].config.name.clone();
        match &mut self.balance {
            Balance::Tlb(plan) => {
                let from = plan.holder();
                let moved = plan.link(i, up);
                // The workers learn the new roles before the announcement leaves.
                self.publish_view();
                let to = moved?;
                self.events.takeovers += 1;
                self.announce_through(to);
                Some(format!(
                    "primary MAC {} moved from {} to {}",
                    self.primary_mac(),
                    self.nics[from].config.name,
                    self.nics[to].config.name
                ))
            }
            Balance::Alb(alb) => {
                if up {
                    alb.table.nic_up(i);
                    if !alb.table.is_up(alb.primary) {
                        alb.primary = i;
                    }
                    self.publish_view();
                    return Some(format!("{name} is back: new clients go to it first, others move back gradually"));
                }
                let moves = alb.table.nic_down(i);
                let moved = moves.len();
                alb.pending.extend(moves);
                if alb.primary == i {
                    alb.primary = (0..self.nics.len()).find(|&n| alb.table.is_up(n)).unwrap_or(i);
                }
                self.publish_view();
                self.send_pending();
                Some(format!("{moved} clients moved off {name}"))
            }
        }
    }

    fn primary_mac(&self) -> MacAddr {
        self.nics[0].hardware_mac
    }

    /// Broadcasts a gratuitous ARP for every VIP from the NIC that speaks
    /// for the bond; in alb, the clients this misleads are corrected after it.
    fn announce(&mut self, now: Time) {
        self.next_announce = self.spec.announce_every.map(|every| now.after(every));
        let through = match &mut self.balance {
            Balance::Tlb(plan) => plan.holder(),
            Balance::Alb(alb) => {
                let mac = self.nics[alb.primary].hardware_mac;
                alb.table.refresh_all(now.after(CORRECTION_DELAY), mac);
                alb.corrections_from = Some(now.after(CORRECTION_DELAY));
                alb.primary
            }
        };
        self.announce_through(through);
    }

    fn announce_through(&mut self, nic: usize) {
        let mac = self.view().macs[nic];
        let mut buf = [0u8; 64];
        for &vip in &self.vips {
            let Some(len) = write_garp(&mut buf, GarpForm::Request, mac, vip, None) else { continue };
            if self.workers[0].inject(nic as u8, &buf[..len]) {
                self.events.announcements += 1;
            } else {
                self.events.inject_failures += 1;
            }
        }
    }

    /// Sends queued client moves until the worker's queue is full.
    fn send_pending(&mut self) {
        let Balance::Alb(alb) = &mut self.balance else { return };
        let mut buf = [0u8; 64];
        while let Some(update) = alb.pending.pop_front() {
            for &vip in &self.vips {
                let Some(len) = write_directed_garp(&mut buf, update.client_mac, update.mac, vip, None) else {
                    continue;
                };
                if !self.workers[0].inject(update.nic as u8, &buf[..len]) {
                    self.events.inject_failures += 1;
                    alb.pending.push_front(update);
                    return;
                }
            }
            self.events.client_updates += 1;
        }
    }
}

/// A bond as `status` shows it.
pub(crate) fn status(bond: &Bond) -> admin::BondStatus {
    let view = bond.view();
    let (per_nic, clients, capacity) = match &bond.balance {
        Balance::Tlb(_) => (vec![0; bond.nics.len()], 0, 0),
        Balance::Alb(alb) => (alb.table.clients_per_nic(), alb.table.len() as u64, bond.spec.clients as u64),
    };
    admin::BondStatus {
        name: bond.spec.name.clone(),
        mode: bond.spec.mode,
        vips: prefixed(&bond.spec.vips),
        primary_mac: bond.primary_mac().to_string(),
        nics: bond
            .nics
            .iter()
            .enumerate()
            .map(|(i, nic)| admin::BondNicStatus {
                name: nic.config.name.clone(),
                hardware_mac: nic.hardware_mac.to_string(),
                mac: view.macs[i].to_string(),
                link_up: nic.link.up,
                primary: view.primary == i,
                clients: per_nic[i] as u64,
                link_changes: nic.link.changes,
                queues: bond
                    .workers
                    .iter()
                    .map(|w| admin::QueueBinding { queue: w.queue, bind_mode: w.bound })
                    .collect(),
            })
            .collect(),
        clients,
        client_capacity: capacity,
    }
}

/// A bond's counters as `stats` shows them.
pub(crate) fn stats(bond: &Bond) -> admin::BondStats {
    let mut served = BondCounters::default();
    for worker in &bond.workers {
        served.add(&worker.answers.read_bond());
    }
    let mut counters = served.named();
    counters.extend(bond.events.named());
    if let Balance::Alb(alb) = &bond.balance {
        counters.extend(alb.table.counters().named());
    }
    admin::BondStats { name: bond.spec.name.clone(), mode: bond.spec.mode, counters }
}
