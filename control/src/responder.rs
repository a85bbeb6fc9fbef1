//! The engine handler that serves the virtual-MAC service on a worker:
//! ARP, NS and echo for owned VIPs are answered in place and leave through
//! the same queue's TX ring; VRRP goes to the control thread; the rest is
//! dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vipdrift_engine::{DropReason, Handler, Packet, Verdict};
use vipdrift_vmac::{BondCounters, BondOutcome, BondService, BondView, Group, Outcome, ServiceCounters, VmacService};

/// The responder's counters, published for other threads (live output,
/// stats): written by the worker only, with plain relaxed stores.
#[derive(Debug, Default)]
pub struct ResponderStats {
    slots: [AtomicU64; 8],
    bond: [AtomicU64; BondCounters::LEN],
}

impl ResponderStats {
    fn publish(&self, c: &ServiceCounters) {
        let values = [
            c.arp_replies,
            c.na_replies,
            c.echo_replies,
            c.not_owned,
            c.bad_arp,
            c.bad_ndp,
            c.bad_echo,
            c.announcements_heard,
        ];
        for (slot, value) in self.slots.iter().zip(values) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    fn publish_bond(&self, c: &BondCounters) {
        for (slot, value) in self.bond.iter().zip(c.to_array()) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    /// A bond worker's counters as last published (zero on other workers).
    pub fn read_bond(&self) -> BondCounters {
        BondCounters::from_array(std::array::from_fn(|i| self.bond[i].load(Ordering::Relaxed)))
    }

    /// The counters as last published.
    pub fn read(&self) -> ServiceCounters {
        let v: [u64; 8] = std::array::from_fn(|i| self.slots[i].load(Ordering::Relaxed));
        ServiceCounters {
            arp_replies: v[0],
            na_replies: v[1],
            echo_replies: v[2],
            not_owned: v[3],
            bad_arp: v[4],
            bad_ndp: v[5],
            bad_echo: v[6],
            announcements_heard: v[7],
        }
    }
}

use vipdrift_vrrp::advert::PROTO_VRRP;

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
}

/// One worker's responder: its own [`VmacService`] (or, on a bond's
/// worker, its own [`BondService`]), no shared state.
#[derive(Debug, Default)]
pub struct Responder {
    service: VmacService,
    bond: Option<BondService>,
    stats: Arc<ResponderStats>,
}

impl Responder {
    /// A responder with no groups.
    pub fn new() -> Responder {
        Responder::default()
    }

    /// A responder serving `groups`.
    pub fn with_groups(groups: impl IntoIterator<Item = Group>) -> Responder {
        let mut responder = Responder::new();
        for group in groups {
            responder.service.set_group(group);
        }
        responder
    }

    /// A responder for a bond's worker, whose port `i` is the bond's NIC `i`.
    pub fn for_bond(view: BondView) -> Responder {
        let mut bond = BondService::new();
        bond.set_view(view);
        Responder { bond: Some(bond), ..Responder::default() }
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

impl Handler for Responder {
    type Command = ResponderCommand;

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
            self.stats.publish_bond(&bond.counters());
            return verdict;
        }
        match self.service.handle(packet.buffer_mut(), len) {
            Outcome::Reply(reply_len) => {
                packet.set_len(reply_len);
                self.stats.publish(&self.service.counters());
                Verdict::Transmit
            }
            Outcome::Rejected(_) => {
                self.stats.publish(&self.service.counters());
                Verdict::Drop(DropReason::Handler)
            }
            Outcome::NotOurs if is_vrrp(packet.data()) => Verdict::ToControl,
            Outcome::NotOurs => Verdict::Drop(DropReason::NoEndpoint),
        }
    }

    fn command(&mut self, command: ResponderCommand) {
        match command {
            ResponderCommand::SetGroup(group) => self.service.set_group(group),
            ResponderCommand::RemoveGroup(id) => {
                self.service.remove_group(id);
            }
            ResponderCommand::SetOwned(id, owned) => {
                self.service.set_owned(id, owned);
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

    #[test]
    fn an_arp_request_through_a_worker_comes_back_as_a_reply_and_ownership_follows_commands() {
        let (port, mut client) = MemPort::pair(MemPortConfig::default());
        let group = Group { id: 51, mac: vrrp_mac_v4(51), vips: vec!["198.51.100.100".parse().unwrap()], owned: true };
        let responder = Responder::with_groups([group]);
        let published = responder.stats();
        let (mut worker, handle) = Worker::new(vec![port], responder, WorkerConfig::default(), None);
        let mut request = [0u8; 60];
        write_request(
            &mut request,
            MacAddr([2, 0, 0, 0, 0, 10]),
            [198, 51, 100, 10].into(),
            [198, 51, 100, 100].into(),
            None,
        )
        .unwrap();
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
}
