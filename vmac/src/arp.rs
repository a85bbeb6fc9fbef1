//! ARP for IPv4 over Ethernet (RFC 826): a zero-copy view, the gratuitous-ARP
//! builders the control plane sends on takeover, and the in-place reply the
//! responder turns a request into.
//!
//! Frames here start at the Ethernet header and may carry one 802.1Q tag,
//! which a reply keeps.

use std::net::Ipv4Addr;
use vipdrift_wire::MacAddr;

pub use crate::ether::{ETHERTYPE_ARP, ETHERTYPE_VLAN};
/// ARP body length for IPv4 over Ethernet.
pub const ARP_LEN: usize = 28;
/// ARP request opcode.
pub const OP_REQUEST: u16 = 1;
/// ARP reply opcode.
pub const OP_REPLY: u16 = 2;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

// Field offsets in the ARP body (RFC 826).
const HTYPE: usize = 0;
const PTYPE: usize = 2;
const HLEN: usize = 4;
const PLEN: usize = 5;
const OPER: usize = 6;
const SHA: usize = 8;
const SPA: usize = 14;
const THA: usize = 18;
const TPA: usize = 24;

/// Why a frame that claims to be ARP was rejected; each maps to a drop counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArpError {
    /// Shorter than the Ethernet header (and tag) plus 28 bytes of ARP.
    #[error("truncated ARP frame")]
    Truncated,
    /// Hardware type other than Ethernet, or hardware length other than 6.
    #[error("ARP hardware type or length is not Ethernet/6")]
    BadHardware,
    /// Protocol type other than IPv4, or protocol length other than 4.
    #[error("ARP protocol type or length is not IPv4/4")]
    BadProtocol,
    /// Opcode neither request nor reply.
    #[error("ARP opcode is neither request nor reply")]
    BadOpcode,
}

/// Where the ARP body starts: 14, or 18 behind one 802.1Q tag; `None` if
/// the frame is not ARP at all.
pub fn arp_offset(frame: &[u8]) -> Option<usize> {
    crate::ether::payload_offset(frame, ETHERTYPE_ARP)
}

/// A checked view of the ARP body of an Ethernet frame: once `parse` has
/// returned it, no accessor can panic.
#[derive(Debug)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    frame: T,
    at: usize,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// `Ok(Some)` for a well-formed IPv4-over-Ethernet ARP frame, `Ok(None)`
    /// for a frame that is not ARP, `Err` for a malformed ARP frame.
    pub fn parse(frame: T) -> Result<Option<ArpPacket<T>>, ArpError> {
        let bytes = frame.as_ref();
        let Some(at) = arp_offset(bytes) else { return Ok(None) };
        let Some(arp) = bytes.get(at..at + ARP_LEN) else { return Err(ArpError::Truncated) };
        let be16 = |i: usize| u16::from_be_bytes([arp[i], arp[i + 1]]);
        if be16(HTYPE) != HTYPE_ETHERNET || arp[HLEN] != 6 {
            return Err(ArpError::BadHardware);
        }
        if be16(PTYPE) != PTYPE_IPV4 || arp[PLEN] != 4 {
            return Err(ArpError::BadProtocol);
        }
        if !matches!(be16(OPER), OP_REQUEST | OP_REPLY) {
            return Err(ArpError::BadOpcode);
        }
        Ok(Some(ArpPacket { frame, at }))
    }

    fn arp(&self) -> &[u8] {
        &self.frame.as_ref()[self.at..self.at + ARP_LEN]
    }

    /// `OP_REQUEST` or `OP_REPLY`.
    pub fn operation(&self) -> u16 {
        u16::from_be_bytes([self.arp()[OPER], self.arp()[OPER + 1]])
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        mac_at(self.arp(), SHA)
    }

    /// Sender protocol address (0.0.0.0 in an RFC 5227 probe).
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip_at(self.arp(), SPA)
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        mac_at(self.arp(), THA)
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip_at(self.arp(), TPA)
    }

    /// Offset of the ARP body in the frame (14, or 18 behind a VLAN tag).
    pub fn offset(&self) -> usize {
        self.at
    }

    /// The frame.
    pub fn into_inner(self) -> T {
        self.frame
    }
}

fn mac_at(arp: &[u8], at: usize) -> MacAddr {
    MacAddr([arp[at], arp[at + 1], arp[at + 2], arp[at + 3], arp[at + 4], arp[at + 5]])
}

fn ip_at(arp: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(arp[at], arp[at + 1], arp[at + 2], arp[at + 3])
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Turns this request for `vip` into the reply from `mac`, in place:
    /// Ethernet destination = the requester, source = `mac`; ARP oper =
    /// reply, SHA/SPA = `mac`/`vip`, THA/TPA = the requester's SHA/SPA. A
    /// VLAN tag stays. Returns the reply's length (the request's: nothing
    /// moves).
    ///
    /// RFC 5227 §2.1.1: a probe has sender IP 0.0.0.0, and the prober "MUST
    /// treat this address as being in use" when it receives an ARP packet
    /// whose sender IP is the probed address: the reply to TPA 0.0.0.0 at
    /// the prober's MAC is that packet.
    pub fn make_reply(&mut self, mac: MacAddr, vip: Ipv4Addr) -> usize {
        let (requester_mac, requester_ip) = (self.sender_mac(), self.sender_ip());
        let at = self.at;
        let frame = self.frame.as_mut();
        frame[0..6].copy_from_slice(&requester_mac.0);
        frame[6..12].copy_from_slice(&mac.0);
        let arp = &mut frame[at..at + ARP_LEN];
        arp[OPER..OPER + 2].copy_from_slice(&OP_REPLY.to_be_bytes());
        arp[SHA..SHA + 6].copy_from_slice(&mac.0);
        arp[SPA..SPA + 4].copy_from_slice(&vip.octets());
        arp[THA..THA + 6].copy_from_slice(&requester_mac.0);
        arp[TPA..TPA + 4].copy_from_slice(&requester_ip.octets());
        frame.len()
    }
}

/// Which gratuitous ARP to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GarpForm {
    /// RFC 5227 §2.3 ARP Announcement: a broadcast request with SPA = TPA;
    /// "the 'target hardware address' field is ignored and SHOULD be set to
    /// all zeroes". Linux honours it inside its 1 s locktime.
    Request,
    /// RFC 5944 §4.6: a broadcast reply with SPA = TPA and THA = SHA, the
    /// form Linux's `arp_is_garp` also accepts for replies.
    Reply,
}

/// Length of a gratuitous ARP frame, untagged (no padding: the NIC pads).
pub const GARP_LEN: usize = 14 + ARP_LEN;

/// Writes a broadcast ARP request "who has `target`? tell `sender_ip` at
/// `mac`" into `buf` (tagged when `vlan` is given); returns its length, or
/// `None` if `buf` is too short. For clients, tests and load generators.
pub fn write_request(
    buf: &mut [u8],
    mac: MacAddr,
    sender_ip: Ipv4Addr,
    target: Ipv4Addr,
    vlan: Option<u16>,
) -> Option<usize> {
    let len = write_garp(buf, GarpForm::Request, mac, target, vlan)?;
    let at = len - ARP_LEN;
    buf[at + SPA..at + SPA + 4].copy_from_slice(&sender_ip.octets());
    Some(len)
}

/// Writes a gratuitous ARP announcing `vip` at `mac` into `buf` (with an
/// 802.1Q tag when `vlan` is given); returns its length, or `None` if `buf`
/// is too short.
pub fn write_garp(buf: &mut [u8], form: GarpForm, mac: MacAddr, vip: Ipv4Addr, vlan: Option<u16>) -> Option<usize> {
    let len = crate::ether::header_len(vlan) + ARP_LEN;
    let frame = buf.get_mut(..len)?;
    let at = crate::ether::write_header(frame, MacAddr([0xff; 6]), mac, vlan, ETHERTYPE_ARP);
    let arp = &mut frame[at..];
    arp[HTYPE..HTYPE + 2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    arp[PTYPE..PTYPE + 2].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
    arp[HLEN] = 6;
    arp[PLEN] = 4;
    let (oper, tha) = match form {
        GarpForm::Request => (OP_REQUEST, MacAddr([0u8; 6])),
        GarpForm::Reply => (OP_REPLY, mac),
    };
    arp[OPER..OPER + 2].copy_from_slice(&oper.to_be_bytes());
    arp[SHA..SHA + 6].copy_from_slice(&mac.0);
    arp[SPA..SPA + 4].copy_from_slice(&vip.octets());
    arp[THA..THA + 6].copy_from_slice(&tha.0);
    arp[TPA..TPA + 4].copy_from_slice(&vip.octets());
    Some(len)
}

/// Writes a gratuitous ARP reply announcing `vip` at `mac`, sent to one
/// host (`dst`) rather than broadcast: the correction a balance-alb bond
/// sends a client it moves to another NIC. It is a reply with SPA = TPA and
/// THA = SHA, which Linux takes as gratuitous (`arp_is_garp`) and so applies
/// even inside its 1 s locktime, and it reaches no other host.
pub fn write_directed_garp(
    buf: &mut [u8],
    dst: MacAddr,
    mac: MacAddr,
    vip: Ipv4Addr,
    vlan: Option<u16>,
) -> Option<usize> {
    let len = write_garp(buf, GarpForm::Reply, mac, vip, vlan)?;
    buf[..6].copy_from_slice(&dst.0);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    const VMAC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 0x33]);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
    const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

    /// keepalived 2.x's gratuitous ARP for VRID 51 in vmac mode, as captured
    /// on a veth (198.51.100.100, the first ARP frame of a capture of its
    /// adverts in vmac mode).
    const KEEPALIVED_GARP: &str =
        "ffffffffffff00005e0001330806000108000604000100005e000133c6336464ffffffffffffc6336464";

    #[test]
    fn request_garp_matches_keepalived_except_the_target_mac_rfc5227_zeroes() {
        let mut ours = [0u8; 64];
        let len = write_garp(&mut ours, GarpForm::Request, VMAC, VIP, None).unwrap();
        let mut theirs = hex(KEEPALIVED_GARP);
        // keepalived fills THA with ff:ff:ff:ff:ff:ff; RFC 5227 §2.3 says
        // zeroes. Linux treats both as a gratuitous ARP (SPA == TPA).
        theirs[14 + THA..14 + THA + 6].copy_from_slice(&[0; 6]);
        assert_eq!(&ours[..len], &theirs[..]);
    }

    #[test]
    fn garps_parse_back_with_etherparse_in_both_forms() {
        for form in [GarpForm::Request, GarpForm::Reply] {
            let mut buf = [0u8; 64];
            let len = write_garp(&mut buf, form, VMAC, VIP, None).unwrap();
            let eth = etherparse::Ethernet2Slice::from_slice_without_fcs(&buf[..len]).unwrap();
            assert_eq!(eth.destination(), [0xff; 6]);
            assert_eq!(eth.source(), VMAC);
            let arp = etherparse::ArpPacketSlice::from_slice(eth.payload_slice()).unwrap();
            assert_eq!(arp.sender_protocol_addr(), &VIP.octets()[..]);
            assert_eq!(arp.target_protocol_addr(), &VIP.octets()[..], "SPA == TPA: a gratuitous ARP");
            assert_eq!(arp.sender_hw_addr(), &VMAC.0[..]);
            match form {
                GarpForm::Request => assert_eq!(arp.operation(), etherparse::ArpOperation::REQUEST),
                GarpForm::Reply => {
                    assert_eq!(arp.operation(), etherparse::ArpOperation::REPLY);
                    assert_eq!(arp.target_hw_addr(), &VMAC.0[..], "THA == SHA in the reply form");
                }
            }
        }
    }

    #[test]
    fn a_tagged_garp_carries_the_vlan_and_parses() {
        let mut buf = [0u8; 64];
        let len = write_garp(&mut buf, GarpForm::Request, VMAC, VIP, Some(42)).unwrap();
        assert_eq!(len, 46);
        assert_eq!(&buf[12..18], &[0x81, 0x00, 0x00, 42, 0x08, 0x06]);
        let parsed = ArpPacket::parse(&buf[..len]).unwrap().unwrap();
        assert_eq!(parsed.offset(), 18);
        assert_eq!(parsed.target_ip(), VIP);
        assert!(write_garp(&mut [0u8; 41], GarpForm::Request, VMAC, VIP, None).is_none());
    }

    fn request(sender_ip: Ipv4Addr, target: Ipv4Addr, vlan: Option<u16>) -> Vec<u8> {
        let mut frame = vec![0u8; 64];
        let len = write_request(&mut frame, CLIENT_MAC, sender_ip, target, vlan).unwrap();
        frame.truncate(len);
        frame
    }

    #[test]
    fn a_request_for_the_vip_becomes_a_reply_from_the_vmac_in_place() {
        for vlan in [None, Some(7)] {
            let mut frame = request(CLIENT_IP, VIP, vlan);
            let len = ArpPacket::parse(&mut frame[..]).unwrap().unwrap().make_reply(VMAC, VIP);
            let reply = ArpPacket::parse(&frame[..len]).unwrap().unwrap();
            assert_eq!(&frame[..6], &CLIENT_MAC);
            assert_eq!(&frame[6..12], &VMAC);
            assert_eq!(reply.operation(), OP_REPLY);
            assert_eq!((reply.sender_mac(), reply.sender_ip()), (VMAC, VIP));
            assert_eq!((reply.target_mac(), reply.target_ip()), (CLIENT_MAC, CLIENT_IP));
            if vlan.is_some() {
                assert_eq!(&frame[12..16], &[0x81, 0x00, 0x00, 7], "the tag is kept");
            }
        }
    }

    #[test]
    fn a_probe_gets_a_reply_addressed_to_the_prober() {
        let mut frame = request(Ipv4Addr::UNSPECIFIED, VIP, None);
        ArpPacket::parse(&mut frame[..]).unwrap().unwrap().make_reply(VMAC, VIP);
        let reply = ArpPacket::parse(&frame[..]).unwrap().unwrap();
        assert_eq!(reply.sender_ip(), VIP, "the prober sees its address in use");
        assert_eq!(reply.target_ip(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(&frame[..6], &CLIENT_MAC);
    }

    #[test]
    fn malformed_arp_is_rejected_with_a_reason_and_other_frames_are_not_ours() {
        let good = request(CLIENT_IP, VIP, None);
        assert_eq!(ArpPacket::parse(&good[..good.len() - 1]).unwrap_err(), ArpError::Truncated);
        let mut bad = good.clone();
        bad[14 + HLEN] = 8;
        assert_eq!(ArpPacket::parse(&bad[..]).unwrap_err(), ArpError::BadHardware);
        let mut bad = good.clone();
        bad[14 + PTYPE] = 0x86;
        assert_eq!(ArpPacket::parse(&bad[..]).unwrap_err(), ArpError::BadProtocol);
        let mut bad = good.clone();
        bad[14 + OPER + 1] = 9;
        assert_eq!(ArpPacket::parse(&bad[..]).unwrap_err(), ArpError::BadOpcode);
        let mut ipv4 = good.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert!(ArpPacket::parse(&ipv4[..]).unwrap().is_none());
        assert!(ArpPacket::parse(&good[..5]).unwrap().is_none(), "too short to have an EtherType");
    }

    #[test]
    fn no_byte_string_makes_the_parser_panic() {
        // Every prefix and every single-byte corruption of a valid request.
        let good = request(CLIENT_IP, VIP, Some(3));
        for len in 0..=good.len() {
            let _ = ArpPacket::parse(&good[..len]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut f = good.clone();
                f[i] = v;
                if let Ok(Some(p)) = ArpPacket::parse(&f[..]) {
                    let _ = (p.sender_ip(), p.target_mac(), p.operation());
                }
            }
        }
    }
}
