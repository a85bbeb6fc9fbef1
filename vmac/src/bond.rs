//! One node's NICs on one LAN sharing IPv4 VIPs: the bonding driver's
//! balance-tlb and balance-alb, sans-IO.
//!
//! A bond's workers each own one queue of every NIC (port `i` of a worker is
//! NIC `i`), so a frame received on one NIC can leave through another. Every
//! worker holds a [`BondService`] with the same [`BondView`]: which MAC each
//! NIC sends with, which NICs have their link, and which NIC is primary. The
//! control thread computes the view ([`TlbPlan`] for tlb, the link states for
//! alb) and sends it to every worker when it changes.
//!
//! Rules that keep one MAC on one switch port and each client on one MAC:
//! - a NIC answers only frames addressed to the MAC it sends with (or
//!   broadcast ARP), so a frame the switch floods to every port while it
//!   relearns is answered once;
//! - only the primary NIC acts on a broadcast ARP request (every NIC of the
//!   bond hears it; two answers with different MACs would leave the client
//!   with whichever came last);
//! - tlb: the primary answers ARP with the primary MAC; echo replies leave
//!   through a NIC chosen by a hash of the client's address among the NICs
//!   that have their link, each with its own MAC;
//! - alb: ARP requests go to the control thread, which owns the client table
//!   ([`crate::alb::Assignments`]) and answers through the client's NIC; echo
//!   replies leave through the NIC they came in on.

use crate::arp::{ArpPacket, OP_REQUEST};
use crate::icmp::{answer_echo4, echo4_destination};
use crate::service::Reject;
use std::net::Ipv4Addr;
use vipdrift_wire::MacAddr;

/// Most NICs in one bond.
pub const MAX_NICS: usize = 8;

/// How a bond spreads traffic over its NICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum BondMode {
    /// Clients know one MAC, the primary's; replies leave through every NIC.
    #[default]
    Tlb,
    /// Each client is told one NIC's MAC, chosen by the control thread.
    Alb,
}

impl BondMode {
    /// `"tlb"` or `"alb"`, as configured.
    pub fn name(self) -> &'static str {
        match self {
            BondMode::Tlb => "tlb",
            BondMode::Alb => "alb",
        }
    }
}

/// What every worker of a bond is told: the state of its NICs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondView {
    /// tlb or alb.
    pub mode: BondMode,
    /// The VIPs.
    pub vips: Vec<Ipv4Addr>,
    /// The MAC each NIC sends with, by NIC index (= port index).
    pub macs: Vec<MacAddr>,
    /// Whether each NIC has its link.
    pub up: Vec<bool>,
    /// tlb: the NIC holding the primary MAC; alb: the NIC that takes
    /// broadcast ARP requests.
    pub primary: usize,
}

/// What to do with a frame received on a bond's NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BondOutcome {
    /// Rewritten in place into a reply of this length: send it back out of
    /// the NIC it came in on.
    Reply(usize),
    /// Rewritten in place into a reply of this length, to leave through
    /// another NIC (by index).
    ReplyVia(usize, usize),
    /// An ARP request the control thread answers (alb).
    ToControl,
    /// Not for this bond, or not for this NIC to answer.
    NotOurs,
    /// Malformed: drop it and count the reason.
    Rejected(Reject),
}

vipdrift_wire::counter_set! {
    /// What a worker's bond service did.
    pub struct BondCounters {
        /// ARP requests answered in place (tlb).
        arp_replies: served => "arp_replies",
        /// ARP requests handed to the control thread (alb).
        arp_to_control: served => "arp_to_control",
        /// Echo requests answered.
        echo_replies: served => "echo_replies",
        /// Echo replies sent out of another NIC than the request came in on (tlb).
        echo_spread: served => "echo_spread",
        /// Frames for a VIP left to another NIC: a broadcast ARP request heard
        /// on a NIC that is not primary, a frame to a MAC this NIC does not carry.
        other_nic: served => "other_nic",
        /// Echo requests not answered because no NIC had its link.
        no_link: served => "no_link",
        /// Malformed ARP frames.
        bad_arp: served => "bad_arp",
        /// Malformed echo requests.
        bad_echo: served => "bad_echo",
        /// Gratuitous ARPs for a VIP heard: announcements, never answered.
        announcements_heard: served => "announcements_heard",
    }
}

/// A worker's copy of a bond. Updating the view may allocate; `handle` does not.
#[derive(Debug, Default)]
pub struct BondService {
    view: Option<BondView>,
    counters: BondCounters,
}

/// The NIC among those with their link that answers `client` (tlb): a hash
/// of its address, so one client's replies always leave through one NIC
/// while the links stay as they are.
pub fn spread(client: Ipv4Addr, up: &[bool]) -> Option<usize> {
    let live = up.iter().filter(|&&u| u).count();
    if live == 0 {
        return None;
    }
    let hash = u32::from(client).wrapping_mul(0x9e37_79b1) >> 16;
    let pick = hash as usize % live;
    up.iter().enumerate().filter(|(_, &u)| u).nth(pick).map(|(i, _)| i)
}

impl BondService {
    /// A service with no bond yet: every frame is not ours.
    pub fn new() -> BondService {
        BondService::default()
    }

    /// Sets the bond's current state.
    pub fn set_view(&mut self, view: BondView) {
        self.view = Some(view);
    }

    /// The counters so far.
    pub fn counters(&self) -> BondCounters {
        self.counters
    }

    /// Handles a frame received on NIC `nic`: `buf` is its whole buffer,
    /// `len` the frame's length.
    pub fn handle(&mut self, nic: usize, buf: &mut [u8], len: usize) -> BondOutcome {
        let Some(view) = &self.view else { return BondOutcome::NotOurs };
        let len = len.min(buf.len());
        let Some(&own_mac) = view.macs.get(nic) else { return BondOutcome::NotOurs };
        let dst_mac = buf.get(..6);
        let addressed_here = dst_mac.is_some_and(|dst| *dst == own_mac);
        let broadcast = dst_mac.is_some_and(|dst| dst == [0xff; 6]);
        match ArpPacket::parse(&mut buf[..len]) {
            Ok(Some(mut arp)) => {
                let vip = arp.target_ip();
                if arp.operation() != OP_REQUEST || !view.vips.contains(&vip) {
                    return BondOutcome::NotOurs;
                }
                if arp.sender_ip() == vip {
                    self.counters.announcements_heard += 1;
                    return BondOutcome::NotOurs;
                }
                let ours = match view.mode {
                    // Only the holder of the primary MAC speaks for the VIPs.
                    BondMode::Tlb => nic == view.primary && (broadcast || addressed_here),
                    // A client's cache probe comes straight to its NIC.
                    BondMode::Alb => (broadcast && nic == view.primary) || addressed_here,
                };
                if !ours {
                    self.counters.other_nic += 1;
                    return BondOutcome::NotOurs;
                }
                return match view.mode {
                    BondMode::Tlb => {
                        self.counters.arp_replies += 1;
                        BondOutcome::Reply(arp.make_reply(own_mac, vip))
                    }
                    BondMode::Alb => {
                        self.counters.arp_to_control += 1;
                        BondOutcome::ToControl
                    }
                };
            }
            Ok(None) => {}
            Err(e) => {
                self.counters.bad_arp += 1;
                return BondOutcome::Rejected(e.into());
            }
        }
        match echo4_destination(&buf[..len]) {
            Ok(Some(dst)) if view.vips.contains(&dst) => {}
            Ok(_) => return BondOutcome::NotOurs,
            Err(e) => {
                self.counters.bad_echo += 1;
                return BondOutcome::Rejected(e.into());
            }
        }
        if !addressed_here {
            self.counters.other_nic += 1;
            return BondOutcome::NotOurs;
        }
        let out = match view.mode {
            BondMode::Alb => nic,
            BondMode::Tlb => {
                let client = echo_source(&buf[..len]);
                match spread(client, &view.up) {
                    Some(out) => out,
                    None => {
                        self.counters.no_link += 1;
                        return BondOutcome::NotOurs;
                    }
                }
            }
        };
        let reply_len = answer_echo4(&mut buf[..len], view.macs[out]);
        self.counters.echo_replies += 1;
        if out == nic {
            BondOutcome::Reply(reply_len)
        } else {
            self.counters.echo_spread += 1;
            BondOutcome::ReplyVia(out, reply_len)
        }
    }
}

/// The source address of a frame [`echo4_destination`] accepted.
fn echo_source(frame: &[u8]) -> Ipv4Addr {
    let at = crate::icmp::ipv4_offset(frame).unwrap_or(14);
    match frame.get(at + 12..at + 16) {
        Some(s) => Ipv4Addr::new(s[0], s[1], s[2], s[3]),
        None => Ipv4Addr::UNSPECIFIED,
    }
}

/// A tlb bond's MACs across link changes: clients know one MAC, the primary
/// NIC's hardware MAC, and it must always sit on a NIC that has its link.
///
/// When the NIC holding it loses its link, it swaps MACs with the first NIC
/// that still has one (as the bonding driver swaps the slaves' MACs): every
/// MAC stays on exactly one NIC, so no MAC appears on two switch ports. A
/// NIC that comes back rejoins as a secondary with the MAC it holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlbPlan {
    primary_mac: MacAddr,
    macs: Vec<MacAddr>,
    up: Vec<bool>,
    holder: usize,
}

impl TlbPlan {
    /// A plan for NICs with these hardware MACs and link states; NIC 0 is
    /// the primary. If NIC 0 has no link, the primary MAC starts on the
    /// first NIC that has one.
    pub fn new(hardware_macs: &[MacAddr], up: &[bool]) -> TlbPlan {
        let mut plan = TlbPlan {
            primary_mac: hardware_macs.first().copied().unwrap_or_default(),
            macs: hardware_macs.to_vec(),
            up: vec![true; hardware_macs.len()],
            holder: 0,
        };
        for (nic, &link) in up.iter().enumerate() {
            if !link {
                plan.link(nic, false);
            }
        }
        plan
    }

    /// The MAC the clients know.
    pub fn primary_mac(&self) -> MacAddr {
        self.primary_mac
    }

    /// The NIC that holds the primary MAC now.
    pub fn holder(&self) -> usize {
        self.holder
    }

    /// The MAC each NIC sends with now.
    pub fn macs(&self) -> &[MacAddr] {
        &self.macs
    }

    /// NIC `nic`'s link changed. Returns the NIC that has just taken the
    /// primary MAC (it must announce it at once), if it moved.
    pub fn link(&mut self, nic: usize, up: bool) -> Option<usize> {
        *self.up.get_mut(nic)? = up;
        if self.up[self.holder] {
            return None;
        }
        let to = (0..self.up.len()).find(|&i| self.up[i])?;
        self.macs.swap(self.holder, to);
        self.holder = to;
        Some(to)
    }

    /// The view the workers need.
    pub fn view(&self, vips: &[Ipv4Addr]) -> BondView {
        BondView {
            mode: BondMode::Tlb,
            vips: vips.to_vec(),
            macs: self.macs.clone(),
            up: self.up.clone(),
            primary: self.holder,
        }
    }
}

impl std::fmt::Display for BondMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arp::write_request;
    use etherparse::PacketBuilder;

    const NIC0: MacAddr = MacAddr([2, 0, 0, 0, 0xb0, 0]);
    const NIC1: MacAddr = MacAddr([2, 0, 0, 0, 0xb1, 0]);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
    const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);

    fn client(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, n)
    }

    fn bond(mode: BondMode, up: [bool; 2], primary: usize) -> BondService {
        let mut service = BondService::new();
        service.set_view(BondView { mode, vips: vec![VIP], macs: vec![NIC0, NIC1], up: up.to_vec(), primary });
        service
    }

    fn arp_request(dst: MacAddr, from: Ipv4Addr, target: Ipv4Addr) -> [u8; 60] {
        let mut frame = [0u8; 60];
        write_request(&mut frame, CLIENT_MAC, from, target, None).unwrap();
        frame[..6].copy_from_slice(&dst.0);
        frame
    }

    fn echo_request(dst: MacAddr, from: Ipv4Addr) -> Vec<u8> {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC.0, dst.0)
            .ipv4(from.octets(), VIP.octets(), 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut frame, &[0xab; 32])
            .unwrap();
        frame
    }

    #[test]
    fn tlb_only_the_primary_answers_arp_and_with_the_primary_mac() {
        let mut service = bond(BondMode::Tlb, [true, true], 0);
        let mut frame = arp_request(MacAddr([0xff; 6]), client(10), VIP);
        assert_eq!(service.handle(1, &mut frame.clone(), 60), BondOutcome::NotOurs, "the secondary stays silent");
        assert_eq!(service.handle(0, &mut frame, 60), BondOutcome::Reply(60));
        assert_eq!(&frame[6..12], &NIC0);
        assert_eq!(&frame[22..28], &NIC0, "sender hardware address");
        let mut other = arp_request(MacAddr([0xff; 6]), client(10), client(99));
        assert_eq!(service.handle(0, &mut other, 60), BondOutcome::NotOurs, "not a VIP");
        let mut announcement = arp_request(MacAddr([0xff; 6]), VIP, VIP);
        assert_eq!(service.handle(0, &mut announcement, 60), BondOutcome::NotOurs);
        let c = service.counters();
        assert_eq!((c.arp_replies, c.other_nic, c.announcements_heard), (1, 1, 1));
    }

    #[test]
    fn tlb_spreads_echo_replies_over_the_nics_with_their_own_macs() {
        let mut service = bond(BondMode::Tlb, [true, true], 0);
        let mut used = [0usize; 2];
        for n in 1..=32 {
            let mut frame = echo_request(NIC0, client(n));
            let len = frame.len();
            let out = match service.handle(0, &mut frame, len) {
                BondOutcome::Reply(_) => 0,
                BondOutcome::ReplyVia(out, _) => out,
                other => panic!("{other:?}"),
            };
            assert_eq!(Some(out), spread(client(n), &[true, true]), "the same client, the same NIC");
            assert_eq!(&frame[6..12], &[NIC0, NIC1][out], "each NIC sends with its own MAC");
            assert_eq!(&frame[..6], &CLIENT_MAC);
            used[out] += 1;
        }
        assert!(used[0] >= 8 && used[1] >= 8, "both NICs carry replies: {used:?}");
        let mut one_down = bond(BondMode::Tlb, [true, false], 0);
        for n in 1..=32 {
            let mut frame = echo_request(NIC0, client(n));
            let len = frame.len();
            assert!(matches!(one_down.handle(0, &mut frame, len), BondOutcome::Reply(_)), "never a NIC without link");
        }
    }

    #[test]
    fn a_nic_answers_only_frames_to_the_mac_it_carries() {
        let mut service = bond(BondMode::Tlb, [true, true], 0);
        let mut flooded = echo_request(NIC0, client(10));
        let len = flooded.len();
        assert_eq!(service.handle(1, &mut flooded, len), BondOutcome::NotOurs, "NIC 1 does not carry NIC0's MAC");
        assert_eq!(service.counters().other_nic, 1);
    }

    #[test]
    fn alb_hands_broadcast_arp_from_the_primary_and_cache_probes_from_any_nic_to_control() {
        let mut service = bond(BondMode::Alb, [true, true], 0);
        let broadcast = arp_request(MacAddr([0xff; 6]), client(10), VIP);
        assert_eq!(service.handle(0, &mut broadcast.clone(), 60), BondOutcome::ToControl);
        assert_eq!(service.handle(1, &mut broadcast.clone(), 60), BondOutcome::NotOurs);
        let probe = arp_request(NIC1, client(10), VIP);
        assert_eq!(service.handle(1, &mut probe.clone(), 60), BondOutcome::ToControl);
        let mut echo = echo_request(NIC1, client(10));
        let len = echo.len();
        assert!(matches!(service.handle(1, &mut echo, len), BondOutcome::Reply(_)));
        assert_eq!(&echo[6..12], &NIC1, "the reply leaves with the NIC's MAC it was sent to");
        assert_eq!(service.counters().arp_to_control, 2);
    }

    #[test]
    fn malformed_frames_are_rejected_and_a_service_without_a_view_answers_nothing() {
        let mut service = bond(BondMode::Alb, [true, true], 0);
        let mut truncated = arp_request(MacAddr([0xff; 6]), client(10), VIP);
        assert!(matches!(service.handle(0, &mut truncated, 20), BondOutcome::Rejected(_)));
        let mut bad = echo_request(NIC0, client(10));
        let len = bad.len();
        bad[len - 1] ^= 0xff;
        assert!(matches!(service.handle(0, &mut bad, len), BondOutcome::Rejected(_)));
        let mut empty = BondService::new();
        let mut frame = arp_request(MacAddr([0xff; 6]), client(10), VIP);
        assert_eq!(empty.handle(0, &mut frame, 60), BondOutcome::NotOurs);
        assert_eq!(service.handle(7, &mut frame, 60), BondOutcome::NotOurs, "no such NIC");
    }

    #[test]
    fn tlb_plan_moves_the_primary_mac_to_a_survivor_and_a_returning_nic_rejoins_as_secondary() {
        let mut plan = TlbPlan::new(&[NIC0, NIC1], &[true, true]);
        assert_eq!((plan.holder(), plan.primary_mac()), (0, NIC0));
        assert_eq!(plan.link(1, false), None, "a secondary's loss moves nothing");
        assert_eq!(plan.link(1, true), None);
        assert_eq!(plan.link(0, false), Some(1));
        assert_eq!(plan.macs(), &[NIC1, NIC0], "swapped: one MAC per NIC");
        assert_eq!(plan.link(0, true), None, "the old primary rejoins as a secondary");
        assert_eq!(plan.macs(), &[NIC1, NIC0]);
        assert_eq!(plan.link(1, false), Some(0), "and takes the primary MAC back if the holder fails");
        assert_eq!(plan.macs(), &[NIC0, NIC1]);
        assert_eq!(plan.link(0, false), None, "no NIC left to take it");
        assert_eq!(plan.link(1, true), Some(1), "the first NIC back takes it");
        let view = plan.view(&[VIP]);
        assert_eq!((view.primary, view.macs[1], view.up.clone()), (1, NIC0, vec![false, true]));
        let starts_down = TlbPlan::new(&[NIC0, NIC1], &[false, true]);
        assert_eq!((starts_down.holder(), starts_down.macs()[1]), (1, NIC0));
    }
}
