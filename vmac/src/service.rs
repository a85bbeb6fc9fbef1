//! The virtual-MAC service: which VIPs live on which MAC, whether this node
//! owns them now, and the one call a worker makes per frame.

use crate::arp::{ArpError, ArpPacket, OP_REQUEST};
use crate::icmp::{answer_echo4, answer_echo6, echo4_destination, echo6_destination, EchoError};
use crate::ndp::{answer_ns, parse_ns, NdpError};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use vipdrift_wire::MacAddr;

/// How a group's VIPs move between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum AddressMode {
    /// A virtual MAC moves with the VIPs (VRRP's 00:00:5e:00:01:{VRID}, or
    /// any configured locally administered MAC): clients never relearn.
    #[default]
    Vmac,
    /// The interface's own MAC: the VIPs move, the MAC does not, and a
    /// takeover's gratuitous ARPs teach clients the new owner's MAC.
    OwnMac,
}

impl AddressMode {
    /// The name the configuration and the admin API use: `vmac`, `own_mac`.
    pub fn name(self) -> &'static str {
        match self {
            AddressMode::Vmac => "vmac",
            AddressMode::OwnMac => "own_mac",
        }
    }
}

/// VRRP's IPv4 virtual MAC for `vrid` (RFC 9568 §7.3): 00:00:5e:00:01:{VRID}.
pub fn vrrp_mac_v4(vrid: u8) -> MacAddr {
    MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, vrid])
}

/// VRRP's IPv6 virtual MAC for `vrid` (RFC 9568 §7.3): 00:00:5e:00:02:{VRID}.
pub fn vrrp_mac_v6(vrid: u8) -> MacAddr {
    MacAddr([0x00, 0x00, 0x5e, 0x00, 0x02, vrid])
}

/// VRRP's virtual MAC for `vrid` in `family` (RFC 9568 §7.3).
pub fn vrrp_mac(family: vipdrift_wire::Family, vrid: u8) -> MacAddr {
    match family {
        vipdrift_wire::Family::Ipv4 => vrrp_mac_v4(vrid),
        vipdrift_wire::Family::Ipv6 => vrrp_mac_v6(vrid),
    }
}

/// A group of VIPs answered from one MAC and owned (or not) together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The embedder's identifier (a VRID, a pool number).
    pub id: u32,
    /// The MAC replies carry: a virtual MAC, or the interface's own.
    pub mac: MacAddr,
    /// The VIPs.
    pub vips: Vec<IpAddr>,
    /// Whether this node answers for them now.
    pub owned: bool,
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The frame was rewritten in place into a reply of this length: send it.
    Reply(usize),
    /// Not for an owned VIP (another address, another protocol, a VIP this
    /// node does not own now): not ours to answer.
    NotOurs,
    /// Malformed: drop it and count the reason.
    Rejected(Reject),
}

/// Why a frame was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// A malformed ARP frame.
    #[error(transparent)]
    Arp(#[from] ArpError),
    /// A malformed neighbor solicitation.
    #[error(transparent)]
    Ndp(#[from] NdpError),
    /// A malformed echo request.
    #[error(transparent)]
    Echo(#[from] EchoError),
}

vipdrift_wire::counter_set! {
    /// What the service did, for stats: its `reply` counters are what it
    /// answered, its `rejected` ones what it dropped or only counted.
    pub struct ServiceCounters {
        /// ARP requests answered.
        arp_replies: reply => "arp",
        /// Neighbor solicitations answered.
        na_replies: reply => "na",
        /// ICMP and ICMPv6 echo requests answered.
        echo_replies: reply => "echo",
        /// Frames for a VIP this node does not own now.
        not_owned: rejected => "not_owned",
        /// Malformed ARP frames.
        bad_arp: rejected => "bad_arp",
        /// Malformed neighbor solicitations.
        bad_ndp: rejected => "bad_ndp",
        /// Malformed echo requests.
        bad_echo: rejected => "bad_echo",
        /// Gratuitous ARPs heard (sender IP = target IP): announcements, never answered.
        announcements_heard: rejected => "announcement",
    }
}

/// The endpoint table and responders. Updates may allocate; `handle` does not.
#[derive(Debug, Default)]
pub struct VmacService {
    groups: Vec<Group>,
    v4: HashMap<Ipv4Addr, usize>,
    v6: HashMap<Ipv6Addr, usize>,
    /// Groups handing over: owned until the successor's announcement arrives.
    handing_over: Vec<u32>,
    /// Groups whose hand-over an announcement ended since the last
    /// [`VmacService::take_handed_over`].
    handed_over: Vec<u32>,
    /// Leave echo requests for owned VIPs to the caller instead of answering them.
    leave_echo: bool,
    counters: ServiceCounters,
}

impl VmacService {
    /// An empty service.
    pub fn new() -> VmacService {
        VmacService::default()
    }

    /// Adds or replaces the group with `group.id`.
    pub fn set_group(&mut self, group: Group) {
        match self.groups.iter().position(|g| g.id == group.id) {
            Some(i) => self.groups[i] = group,
            None => self.groups.push(group),
        }
        self.reindex();
    }

    /// Removes a group; true if it was there.
    pub fn remove_group(&mut self, id: u32) -> bool {
        let before = self.groups.len();
        self.groups.retain(|g| g.id != id);
        self.reindex();
        self.groups.len() != before
    }

    /// Keeps answering for an owned group's VIPs only until an announcement
    /// (gratuitous ARP) for one of them arrives: the successor's, which the
    /// switch has just learned. Stopping right there, in the data path,
    /// leaves no window in which a reply from here would teach the switch
    /// this port again. [`VmacService::set_owned`] ends it either way.
    pub fn hand_over(&mut self, id: u32) {
        if !self.handing_over.contains(&id) {
            self.handing_over.push(id);
        }
    }

    /// Takes or gives up ownership of a group's VIPs; false if no such group.
    pub fn set_owned(&mut self, id: u32, owned: bool) -> bool {
        self.handing_over.retain(|&h| h != id);
        match self.groups.iter_mut().find(|g| g.id == id) {
            Some(g) => {
                g.owned = owned;
                true
            }
            None => false,
        }
    }

    /// The groups whose hand-over a successor's announcement ended (in
    /// [`VmacService::handle`]) since the last call.
    pub fn take_handed_over(&mut self) -> impl Iterator<Item = u32> + '_ {
        self.handed_over.drain(..)
    }

    /// Leaves echo requests for owned VIPs to the caller (`Outcome::NotOurs`)
    /// instead of answering them; echo for a VIP this node does not own is
    /// still counted as `not_owned`.
    pub fn leave_echo_to_caller(&mut self, leave: bool) {
        self.leave_echo = leave;
    }

    /// Counts a frame for a VIP this node does not own that the caller
    /// dropped (traffic the service itself does not answer).
    pub fn count_not_owned(&mut self) {
        self.counters.not_owned += 1;
    }

    /// The groups.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group holding `vip`, if any (owned or not).
    #[inline]
    pub fn group_of(&self, vip: IpAddr) -> Option<&Group> {
        let index = match vip {
            IpAddr::V4(a) => self.v4.get(&a),
            IpAddr::V6(a) => self.v6.get(&a),
        }?;
        self.groups.get(*index)
    }

    /// The counters so far.
    pub fn counters(&self) -> ServiceCounters {
        self.counters
    }

    fn reindex(&mut self) {
        self.v4.clear();
        self.v6.clear();
        for (i, g) in self.groups.iter().enumerate() {
            for vip in &g.vips {
                match vip {
                    IpAddr::V4(a) => self.v4.insert(*a, i),
                    IpAddr::V6(a) => self.v6.insert(*a, i),
                };
            }
        }
    }

    /// The answering MAC for `ip` if an owned group holds it; counts a miss
    /// on a known but unowned VIP.
    fn owner_mac(&mut self, ip: IpAddr) -> Option<MacAddr> {
        let index = match ip {
            IpAddr::V4(a) => self.v4.get(&a),
            IpAddr::V6(a) => self.v6.get(&a),
        }?;
        let group = &self.groups[*index];
        if group.owned {
            Some(group.mac)
        } else {
            self.counters.not_owned += 1;
            None
        }
    }

    /// Answers ARP requests, neighbor solicitations and echo requests for
    /// owned VIPs by rewriting `buf[..len]` in place (`buf` is the whole frame
    /// buffer: an NA may be longer than the NS it answers).
    pub fn handle(&mut self, buf: &mut [u8], len: usize) -> Outcome {
        let len = len.min(buf.len());
        match ArpPacket::parse(&mut buf[..len]) {
            Ok(Some(mut arp)) => {
                if arp.operation() != OP_REQUEST {
                    return Outcome::NotOurs;
                }
                let vip = arp.target_ip();
                if arp.sender_ip() == vip {
                    // A gratuitous ARP (RFC 5227 §2.3 announcement): another
                    // node taking the VIP over says where it is now. It asks
                    // nothing; a reply from our MAC would teach the switch our
                    // port again and pull the VIP's traffic back to us.
                    self.counters.announcements_heard += 1;
                    if let Some(&i) = self.v4.get(&vip) {
                        let id = self.groups[i].id;
                        if self.handing_over.contains(&id) {
                            self.set_owned(id, false);
                            self.handed_over.push(id);
                        }
                    }
                    return Outcome::NotOurs;
                }
                return match self.owner_mac(IpAddr::V4(vip)) {
                    Some(mac) => {
                        self.counters.arp_replies += 1;
                        Outcome::Reply(arp.make_reply(mac, vip))
                    }
                    None => Outcome::NotOurs,
                };
            }
            Ok(None) => {}
            Err(e) => {
                self.counters.bad_arp += 1;
                return Outcome::Rejected(e.into());
            }
        }
        match parse_ns(&buf[..len]) {
            Ok(Some(ns)) => {
                return match self.owner_mac(IpAddr::V6(ns.target)) {
                    Some(mac) => match answer_ns(buf, &ns, mac, false) {
                        Some(n) => {
                            self.counters.na_replies += 1;
                            Outcome::Reply(n)
                        }
                        // A buffer too small for the NA: treat as truncated.
                        None => Outcome::Rejected(Reject::Ndp(NdpError::Truncated)),
                    },
                    None => Outcome::NotOurs,
                };
            }
            Ok(None) => {}
            Err(e) => {
                self.counters.bad_ndp += 1;
                return Outcome::Rejected(e.into());
            }
        }
        match echo4_destination(&buf[..len]) {
            Ok(Some(dst)) => return self.echo(IpAddr::V4(dst), &mut buf[..len]),
            Ok(None) => {}
            Err(e) => {
                self.counters.bad_echo += 1;
                return Outcome::Rejected(e.into());
            }
        }
        match echo6_destination(&buf[..len]) {
            Ok(Some(dst)) => self.echo(IpAddr::V6(dst), &mut buf[..len]),
            Ok(None) => Outcome::NotOurs,
            Err(e) => {
                self.counters.bad_echo += 1;
                Outcome::Rejected(e.into())
            }
        }
    }

    fn echo(&mut self, dst: IpAddr, frame: &mut [u8]) -> Outcome {
        if self.leave_echo && self.group_of(dst).is_some_and(|g| g.owned) {
            return Outcome::NotOurs;
        }
        match self.owner_mac(dst) {
            Some(mac) => {
                self.counters.echo_replies += 1;
                Outcome::Reply(match dst {
                    IpAddr::V4(_) => answer_echo4(frame, mac),
                    IpAddr::V6(_) => answer_echo6(frame, mac),
                })
            }
            None => Outcome::NotOurs,
        }
    }
}

impl std::fmt::Display for AddressMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arp::write_request;

    const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);

    fn service(owned: bool) -> VmacService {
        let mut s = VmacService::new();
        s.set_group(Group {
            id: 51,
            mac: vrrp_mac_v4(51),
            vips: vec!["198.51.100.100".parse().unwrap(), "2001:db8::100".parse().unwrap()],
            owned,
        });
        s
    }

    fn arp_request(target: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        write_request(&mut f, CLIENT, Ipv4Addr::new(198, 51, 100, 10), target, None).unwrap();
        f
    }

    #[test]
    fn a_gratuitous_arp_for_an_owned_vip_is_not_answered() {
        // The new master's announcement reaching the old one during a
        // handover: a reply would pull the VIP's traffic back to the old one.
        let mut s = service(true);
        let vip: Ipv4Addr = "198.51.100.100".parse().unwrap();
        let mut garp = vec![0u8; 60];
        crate::arp::write_garp(&mut garp, crate::arp::GarpForm::Request, vrrp_mac_v4(51), vip, None).unwrap();
        assert_eq!(s.handle(&mut garp, 60), Outcome::NotOurs);
        assert_eq!((s.counters().announcements_heard, s.counters().arp_replies), (1, 0));
    }

    #[test]
    fn a_group_handing_over_stops_answering_at_its_successor_s_announcement() {
        let vip: Ipv4Addr = "198.51.100.100".parse().unwrap();
        let mut garp = vec![0u8; 60];
        crate::arp::write_garp(&mut garp, crate::arp::GarpForm::Request, vrrp_mac_v4(51), vip, None).unwrap();
        let mut s = service(true);
        s.hand_over(51);
        let mut f = arp_request(vip);
        assert_eq!(s.handle(&mut f, 60), Outcome::Reply(60), "still answering until the successor speaks");
        assert_eq!(s.handle(&mut garp.clone(), 60), Outcome::NotOurs);
        let mut f = arp_request(vip);
        assert_eq!(s.handle(&mut f, 60), Outcome::NotOurs, "the announcement ended it");
        assert!(!s.groups()[0].owned);
        assert_eq!(s.take_handed_over().collect::<Vec<_>>(), [51], "and says so once");
        assert_eq!(s.take_handed_over().count(), 0);

        // Taking ownership again ends a handover: a later announcement changes nothing.
        let mut s = service(true);
        s.hand_over(51);
        s.set_owned(51, true);
        assert_eq!(s.handle(&mut garp.clone(), 60), Outcome::NotOurs);
        let mut f = arp_request(vip);
        assert_eq!(s.handle(&mut f, 60), Outcome::Reply(60));
        // Without a handover an announcement never gives a VIP up.
        let mut s = service(true);
        assert_eq!(s.handle(&mut garp, 60), Outcome::NotOurs);
        assert!(s.groups()[0].owned);
    }

    #[test]
    fn an_owned_vip_is_answered_and_an_unowned_one_is_not() {
        let mut s = service(true);
        let mut f = arp_request("198.51.100.100".parse().unwrap());
        assert_eq!(s.handle(&mut f, 60), Outcome::Reply(60));
        assert_eq!(&f[6..12], &vrrp_mac_v4(51));
        let mut other = arp_request("198.51.100.7".parse().unwrap());
        assert_eq!(s.handle(&mut other, 60), Outcome::NotOurs);
        s.set_owned(51, false);
        let mut again = arp_request("198.51.100.100".parse().unwrap());
        assert_eq!(s.handle(&mut again, 60), Outcome::NotOurs, "no answering for a VIP we do not own");
        let c = s.counters();
        assert_eq!((c.arp_replies, c.not_owned), (1, 1));
    }

    #[test]
    fn echo_for_an_owned_vip_can_be_left_to_the_caller() {
        let mut s = service(true);
        s.leave_echo_to_caller(true);
        let mut ping = Vec::new();
        etherparse::PacketBuilder::ethernet2(CLIENT.0, vrrp_mac_v4(51).0)
            .ipv4([198, 51, 100, 10], [198, 51, 100, 100], 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut ping, b"x")
            .unwrap();
        let len = ping.len();
        assert_eq!(s.handle(&mut ping.clone(), len), Outcome::NotOurs);
        assert_eq!(s.counters().echo_replies, 0);
        s.set_owned(51, false);
        assert_eq!(s.handle(&mut ping.clone(), len), Outcome::NotOurs);
        assert_eq!(s.counters().not_owned, 1, "a backup still counts it");
        s.leave_echo_to_caller(false);
        s.set_owned(51, true);
        assert!(matches!(s.handle(&mut ping, len), Outcome::Reply(_)));
    }

    #[test]
    fn own_mac_mode_answers_with_the_interface_mac() {
        let mut s = VmacService::new();
        let own = [2, 0, 0, 0, 0, 0x02];
        s.set_group(Group { id: 1, mac: MacAddr(own), vips: vec!["198.51.100.100".parse().unwrap()], owned: true });
        let mut f = arp_request("198.51.100.100".parse().unwrap());
        assert_eq!(s.handle(&mut f, 60), Outcome::Reply(60));
        assert_eq!(&f[6..12], &own);
    }

    #[test]
    fn malformed_arp_is_rejected_and_counted() {
        let mut s = service(true);
        let mut f = arp_request("198.51.100.100".parse().unwrap());
        f[14 + 4] = 7;
        assert_eq!(s.handle(&mut f, 60), Outcome::Rejected(Reject::Arp(ArpError::BadHardware)));
        assert_eq!(s.counters().bad_arp, 1);
        assert_eq!(s.handle(&mut [0u8; 10], 10), Outcome::NotOurs);
    }

    #[test]
    fn groups_are_replaced_and_removed_by_id() {
        let mut s = service(true);
        s.set_group(Group { id: 51, mac: vrrp_mac_v4(51), vips: vec![], owned: true });
        let mut f = arp_request("198.51.100.100".parse().unwrap());
        assert_eq!(s.handle(&mut f, 60), Outcome::NotOurs);
        assert!(s.remove_group(51));
        assert!(!s.remove_group(51));
        assert!(!s.set_owned(51, true));
    }
}
