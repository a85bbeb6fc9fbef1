//! The engine handler that serves the virtual-MAC service on a worker:
//! ARP, NS and echo for owned VIPs are answered in place and leave through
//! the same queue's TX ring; VRRP goes to the control thread; any other
//! frame for an owned VIP goes to the worker's [`VipHandler`] (by default
//! [`Unserved`], which drops it as `no_endpoint`); the rest is dropped and
//! counted.

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;
use vipdrift_engine::{DropReason, Handler, Packet, Verdict};
use vipdrift_vmac::{BondCounters, BondOutcome, BondService, BondView, Group, Outcome, ServiceCounters, VmacService};
use vipdrift_vrrp::advert::PROTO_VRRP;
use vipdrift_wire::{MacAddr, PublishedCounters};

/// The responder's counters, published for other threads (live output,
/// stats): written by the worker only, with plain relaxed stores.
#[derive(Debug, Default)]
pub struct ResponderStats {
    service: PublishedCounters<ServiceCounters>,
    bond: PublishedCounters<BondCounters>,
}

impl ResponderStats {
    /// A bond worker's counters as last published (zero on other workers).
    pub fn read_bond(&self) -> BondCounters {
        self.bond.read()
    }

    /// The counters as last published.
    pub fn read(&self) -> ServiceCounters {
        self.service.read()
    }
}

/// What a [`VipHandler`] is told about a frame for one of the node's VIPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipFrame {
    /// The group holding the VIP (the id the daemon's status shows).
    pub group: u32,
    /// The VIP the frame is addressed to.
    pub vip: IpAddr,
    /// Whether this node owns the group now: always true, since a backup's
    /// share of the VIP's traffic never reaches the handler (it is dropped
    /// and counted `not_owned`).
    pub owned: bool,
    /// The MAC the group's VIPs are answered with (its virtual MAC, or the
    /// interface's own): the source for frames sent on the VIP's behalf.
    pub mac: MacAddr,
    /// The worker's port the frame arrived on.
    pub port: u8,
    /// The NIC queue of the worker.
    pub queue: u32,
}

/// An embedder's data path behind the VIPs, one per worker.
///
/// [`VipHandler::handle`] is called on the pinned worker, per frame, for
/// traffic to an owned VIP that vipdrift does not answer itself (anything
/// but ARP, NS, VRRP and, unless the daemon was built to leave it, echo). It
/// must not block, allocate or lock. Everything else is called between
/// bursts, never in the middle of one.
pub trait VipHandler: Send + 'static {
    /// What [`crate::DaemonHandle::command_vip_handlers`] sends every worker's
    /// handler (use `()` if nothing).
    type Command: Send + Sync + 'static;

    /// Decides about one frame; may rewrite it in place.
    fn handle(&mut self, packet: &mut Packet<'_>, frame: &VipFrame) -> Verdict;

    /// This node took (`true`) or gave up a group's VIPs.
    fn ownership_changed(&mut self, _group: u32, _owned: bool) {}

    /// A command from the daemon's handle.
    fn command(&mut self, _command: &Self::Command) {}

    /// A burst is done (publish counters here).
    fn after_burst(&mut self) {}
}

/// No data path behind the VIPs: their other traffic is dropped and counted
/// as `no_endpoint`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unserved;

impl VipHandler for Unserved {
    type Command = ();

    #[inline]
    fn handle(&mut self, _packet: &mut Packet<'_>, _frame: &VipFrame) -> Verdict {
        Verdict::Drop(DropReason::NoEndpoint)
    }
}

/// A change to one worker's copy of the service, applied between bursts.
#[derive(Debug, Clone)]
pub enum ResponderCommand {
    /// Add or replace a group.
    SetGroup(Group),
    /// Remove a group by id.
    RemoveGroup(u32),
    /// Take or give up a group's VIPs.
    SetOwned(u32, bool),
    /// Keep a group's VIPs until a successor's announcement is heard.
    HandOver(u32),
    /// Serve a bond (this worker owns one queue of each of its NICs, in
    /// NIC order) with these NIC states; replaces the previous ones.
    SetBond(BondView),
    /// A command for the VIP handler.
    Vip(VipCommand),
}

/// A command for every worker's [`VipHandler`], shared by all of them: its
/// `Command` type, or anything else, which the handler never sees.
#[derive(Clone)]
pub struct VipCommand(pub(crate) Arc<dyn Any + Send + Sync>);

impl std::fmt::Debug for VipCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VipCommand")
    }
}

/// One worker's responder: its own [`VmacService`] (or, on a bond's
/// worker, its own [`BondService`]) and its own [`VipHandler`], no shared
/// state.
#[derive(Debug, Default)]
pub struct Responder<V = Unserved> {
    service: VmacService,
    bond: Option<BondService>,
    stats: Arc<ResponderStats>,
    vips: V,
    queue: u32,
}

impl Responder {
    /// A responder with no groups.
    pub fn new() -> Responder {
        Responder::default()
    }

    /// A responder serving `groups`.
    pub fn with_groups(groups: impl IntoIterator<Item = Group>) -> Responder {
        Responder::with_handler(groups, Unserved)
    }

    /// A responder for a bond's worker, whose port `i` is the bond's NIC `i`.
    pub fn for_bond(view: BondView) -> Responder {
        let mut bond = BondService::new();
        bond.set_view(view);
        Responder { bond: Some(bond), ..Responder::default() }
    }
}

impl<V: VipHandler> Responder<V> {
    /// A responder serving `groups`, with `vips` behind the owned VIPs.
    pub fn with_handler(groups: impl IntoIterator<Item = Group>, vips: V) -> Responder<V> {
        let mut service = VmacService::new();
        for group in groups {
            service.set_group(group);
        }
        Responder { service, bond: None, stats: Arc::default(), vips, queue: 0 }
    }

    /// The NIC queue this responder's worker owns (what [`VipFrame::queue`] says).
    pub fn on_queue(mut self, queue: u32) -> Responder<V> {
        self.queue = queue;
        self
    }

    /// Leaves echo requests for owned VIPs to the VIP handler instead of
    /// answering them.
    pub fn leave_echo_to_handler(mut self, leave: bool) -> Responder<V> {
        self.service.leave_echo_to_caller(leave);
        self
    }

    /// The VIP handler.
    pub fn vip_handler(&self) -> &V {
        &self.vips
    }

    /// What the service has answered and rejected so far.
    pub fn counters(&self) -> ServiceCounters {
        self.service.counters()
    }

    /// The published counters, for another thread to read while the worker runs.
    pub fn stats(&self) -> Arc<ResponderStats> {
        self.stats.clone()
    }
}

/// True for IPv4 protocol 112 or IPv6 next header 112 (behind at most one tag).
fn is_vrrp(frame: &[u8]) -> bool {
    if let Some(at) = vipdrift_vmac::icmp::ipv4_offset(frame) {
        return frame.get(at + 9) == Some(&PROTO_VRRP);
    }
    if let Some(at) = vipdrift_vmac::ndp::ipv6_offset(frame) {
        return frame.get(at + 6) == Some(&PROTO_VRRP);
    }
    false
}

impl<V: VipHandler> Responder<V> {
    /// A frame the service does not answer: VRRP to the control thread,
    /// traffic for an owned VIP to the VIP handler, the rest dropped.
    #[inline]
    fn not_ours(&mut self, packet: &mut Packet<'_>) -> Verdict {
        if is_vrrp(packet.data()) {
            return Verdict::ToControl;
        }
        let Some(vip) = vipdrift_vmac::ether::ip_destination(packet.data()) else {
            return Verdict::Drop(DropReason::NoEndpoint);
        };
        match self.service.group_of(vip) {
            Some(group) if group.owned => {
                let frame = VipFrame {
                    group: group.id,
                    vip,
                    owned: true,
                    mac: group.mac,
                    port: packet.port(),
                    queue: self.queue,
                };
                self.vips.handle(packet, &frame)
            }
            Some(_) => {
                // A backup's share of the VIP's traffic: never delivered.
                self.service.count_not_owned();
                self.stats.service.publish(&self.service.counters());
                Verdict::Drop(DropReason::NotOwned)
            }
            None => Verdict::Drop(DropReason::NoEndpoint),
        }
    }
}

impl<V: VipHandler> Handler for Responder<V> {
    type Command = ResponderCommand;

    fn after_burst(&mut self) {
        for id in self.service.take_handed_over() {
            self.vips.ownership_changed(id, false);
        }
        self.vips.after_burst();
    }

    #[inline]
    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
        let len = packet.data().len();
        if let Some(bond) = &mut self.bond {
            let nic = usize::from(packet.port());
            let verdict = match bond.handle(nic, packet.buffer_mut(), len) {
                BondOutcome::Reply(reply_len) => {
                    packet.set_len(reply_len);
                    Verdict::Transmit
                }
                BondOutcome::ReplyVia(out, reply_len) => {
                    packet.set_len(reply_len);
                    Verdict::Forward(out as u8)
                }
                BondOutcome::ToControl => Verdict::ToControl,
                BondOutcome::Rejected(_) => Verdict::Drop(DropReason::Handler),
                BondOutcome::NotOurs => return Verdict::Drop(DropReason::NoEndpoint),
            };
            self.stats.bond.publish(&bond.counters());
            return verdict;
        }
        match self.service.handle(packet.buffer_mut(), len) {
            Outcome::Reply(reply_len) => {
                packet.set_len(reply_len);
                self.stats.service.publish(&self.service.counters());
                Verdict::Transmit
            }
            Outcome::Rejected(_) => {
                self.stats.service.publish(&self.service.counters());
                Verdict::Drop(DropReason::Handler)
            }
            Outcome::NotOurs => self.not_ours(packet),
        }
    }

    fn command(&mut self, command: ResponderCommand) {
        match command {
            ResponderCommand::SetGroup(group) => self.service.set_group(group),
            ResponderCommand::RemoveGroup(id) => {
                self.service.remove_group(id);
            }
            ResponderCommand::SetOwned(id, owned) => {
                let was = self.service.groups().iter().any(|g| g.id == id && g.owned);
                if self.service.set_owned(id, owned) && was != owned {
                    self.vips.ownership_changed(id, owned);
                }
            }
            ResponderCommand::Vip(command) => {
                if let Some(command) = command.0.downcast_ref::<V::Command>() {
                    self.vips.command(command);
                }
            }
            ResponderCommand::HandOver(id) => self.service.hand_over(id),
            ResponderCommand::SetBond(view) => self.bond.get_or_insert_with(BondService::new).set_view(view),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vipdrift_engine::{MemPort, MemPortConfig, Worker, WorkerCommand, WorkerConfig};
    use vipdrift_vmac::arp::write_request;
    use vipdrift_vmac::vrrp_mac_v4;
    use vipdrift_wire::MacAddr;

    fn arp_request_for_the_vip() -> [u8; 60] {
        let mut request = [0u8; 60];
        write_request(
            &mut request,
            MacAddr([2, 0, 0, 0, 0, 10]),
            [198, 51, 100, 10].into(),
            [198, 51, 100, 100].into(),
            None,
        )
        .unwrap();
        request
    }

    #[test]
    fn an_arp_request_through_a_worker_comes_back_as_a_reply_and_ownership_follows_commands() {
        let (port, mut client) = MemPort::pair(MemPortConfig::default());
        let group = Group { id: 51, mac: vrrp_mac_v4(51), vips: vec!["198.51.100.100".parse().unwrap()], owned: true };
        let responder = Responder::with_groups([group]);
        let published = responder.stats();
        let (mut worker, handle) = Worker::new(vec![port], responder, WorkerConfig::default(), None);
        let request = arp_request_for_the_vip();
        assert!(client.send_bytes(&request));
        worker.poll_once();
        let reply = client.recv_bytes().expect("a reply");
        assert_eq!(&reply[6..12], &vrrp_mac_v4(51));
        assert_eq!(u16::from_be_bytes([reply[20], reply[21]]), 2, "an ARP reply");
        assert_eq!(published.read().arp_replies, 1, "published for other threads");

        handle.commands.send(WorkerCommand::Handler(ResponderCommand::SetOwned(51, false))).unwrap();
        assert!(client.send_bytes(&request));
        worker.poll_once();
        assert_eq!(client.recv_bytes(), None, "not answered once ownership is dropped");
        assert_eq!(worker.counters(0).drops_for(DropReason::NoEndpoint), 1);
    }

    #[test]
    fn under_seeded_faults_every_arp_request_is_answered_or_counted() {
        use vipdrift_engine::{FaultConfig, FaultyPort};
        let (port, mut client) = MemPort::pair(MemPortConfig::default());
        let faults = FaultConfig {
            seed: 5,
            drop_rx_percent: 10,
            drop_tx_percent: 10,
            corrupt_rx_percent: 20,
            delay_rx_percent: 10,
        };
        let group = Group { id: 51, mac: vrrp_mac_v4(51), vips: vec!["198.51.100.100".parse().unwrap()], owned: true };
        let (mut worker, _handle) = Worker::new(
            vec![FaultyPort::new(port, faults)],
            Responder::with_groups([group]),
            WorkerConfig::default(),
            None,
        );
        let request = arp_request_for_the_vip();
        let mut replies = 0u64;
        for round in 0..12 {
            for _ in 0..if round < 10 { 30 } else { 0 } {
                assert!(client.send_bytes(&request));
            }
            worker.poll_once();
            while let Some(reply) = client.recv_bytes() {
                assert_eq!(&reply[6..12], &vrrp_mac_v4(51), "every reply comes from the virtual MAC");
                replies += 1;
            }
        }
        let injected = worker.ports_mut()[0].faults();
        let counters = worker.counters(0);
        let dropped: u64 = counters.drops.iter().sum();
        assert!(injected.rx_corrupted > 0 && injected.rx_dropped > 0 && injected.tx_dropped > 0, "{injected:?}");
        assert_eq!(counters.rx_packets + injected.rx_dropped, 300, "received or lost on the wire");
        assert_eq!(
            counters.rx_packets,
            counters.tx_packets + dropped,
            "answered or dropped with a reason: {counters:?}"
        );
        assert_eq!(replies + injected.tx_dropped, counters.tx_packets);
    }
}
