//! ICMP and ICMPv6 echo for VIPs, answered in place so `ping VIP` works
//! while nothing in the kernel owns the address.

use crate::checksum::{checksum, icmpv6_checksum};
use crate::ndp::{ipv6_offset, IPV6_LEN, NEXT_HEADER_ICMPV6};
use std::net::{Ipv4Addr, Ipv6Addr};
use vipdrift_wire::MacAddr;

pub use crate::ether::ETHERTYPE_IPV4;
const PROTO_ICMP: u8 = 1;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// TTL / hop limit of our replies.
const REPLY_TTL: u8 = 64;

/// Why an echo request was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EchoError {
    /// Shorter than its headers or its IP length.
    #[error("truncated echo request")]
    Truncated,
    /// IPv4 header length below 20 bytes, or fragment.
    #[error("malformed IPv4 header")]
    BadHeader,
    /// IPv4 header or ICMP checksum wrong.
    #[error("echo request with a bad checksum")]
    Checksum,
}

/// Where the IPv4 header starts (14, or 18 behind one 802.1Q tag).
pub fn ipv4_offset(frame: &[u8]) -> Option<usize> {
    crate::ether::payload_offset(frame, ETHERTYPE_IPV4)
}

/// The destination of an IPv4 echo request (`Ok(Some)`), `Ok(None)` when the
/// frame is not one, `Err` when it is a malformed one.
pub fn echo4_destination(frame: &[u8]) -> Result<Option<Ipv4Addr>, EchoError> {
    let Some(at) = ipv4_offset(frame) else { return Ok(None) };
    let Some(ip) = frame.get(at..at + 20) else { return Ok(None) };
    if ip[0] >> 4 != 4 || ip[9] != PROTO_ICMP {
        return Ok(None);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ihl < 20 || total < ihl + 8 {
        return Err(EchoError::BadHeader);
    }
    let Some(packet) = frame.get(at..at + total) else { return Err(EchoError::Truncated) };
    if packet[ihl] != ICMP_ECHO_REQUEST {
        return Ok(None);
    }
    // Fragments (MF set or an offset) would need reassembly: not answered.
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
        return Err(EchoError::BadHeader);
    }
    if checksum(&packet[..ihl]) != 0 || checksum(&packet[ihl..]) != 0 {
        return Err(EchoError::Checksum);
    }
    Ok(Some(Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19])))
}

/// Turns a validated IPv4 echo request (see [`echo4_destination`]) into its
/// reply from `mac`, in place: MACs and addresses swapped, type 0, TTL 64,
/// both checksums recomputed. Returns the frame length (unchanged: anything
/// past the IP total length, such as Ethernet padding, is trimmed).
pub fn answer_echo4(frame: &mut [u8], mac: MacAddr) -> usize {
    let Some(at) = ipv4_offset(frame) else { return 0 };
    let ihl = usize::from(frame[at] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[at + 2], frame[at + 3]]));
    swap_macs(frame, mac);
    let ip = &mut frame[at..at + total];
    let (src, dst) = ([ip[12], ip[13], ip[14], ip[15]], [ip[16], ip[17], ip[18], ip[19]]);
    ip[12..16].copy_from_slice(&dst);
    ip[16..20].copy_from_slice(&src);
    ip[8] = REPLY_TTL;
    ip[10..12].copy_from_slice(&[0, 0]);
    let header_sum = checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&header_sum.to_be_bytes());
    let icmp = &mut ip[ihl..];
    icmp[0] = ICMP_ECHO_REPLY;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let icmp_sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&icmp_sum.to_be_bytes());
    at + total
}

/// The destination of an ICMPv6 echo request (`Ok(Some)`), `Ok(None)` when
/// the frame is not one, `Err` when it is malformed.
pub fn echo6_destination(frame: &[u8]) -> Result<Option<Ipv6Addr>, EchoError> {
    let Some(at) = ipv6_offset(frame) else { return Ok(None) };
    let Some(ip) = frame.get(at..at + IPV6_LEN) else { return Ok(None) };
    if ip[0] >> 4 != 6 || ip[6] != NEXT_HEADER_ICMPV6 || frame.get(at + IPV6_LEN) != Some(&ICMPV6_ECHO_REQUEST) {
        return Ok(None);
    }
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let Some(message) = frame.get(at + IPV6_LEN..at + IPV6_LEN + payload) else { return Err(EchoError::Truncated) };
    if message.len() < 8 {
        return Err(EchoError::Truncated);
    }
    let (src, dst) = (addr(ip, 8), addr(ip, 24));
    if icmpv6_checksum(&src, &dst, message) != 0 {
        return Err(EchoError::Checksum);
    }
    Ok(Some(dst))
}

/// Turns a validated ICMPv6 echo request into its reply from `mac`, in
/// place; returns the frame length.
pub fn answer_echo6(frame: &mut [u8], mac: MacAddr) -> usize {
    let Some(at) = ipv6_offset(frame) else { return 0 };
    let payload = usize::from(u16::from_be_bytes([frame[at + 4], frame[at + 5]]));
    swap_macs(frame, mac);
    let ip = &mut frame[at..at + IPV6_LEN + payload];
    let (src, dst) = (addr(ip, 8), addr(ip, 24));
    ip[8..24].copy_from_slice(&dst.octets());
    ip[24..40].copy_from_slice(&src.octets());
    ip[7] = REPLY_TTL;
    let icmp = &mut ip[IPV6_LEN..];
    icmp[0] = ICMPV6_ECHO_REPLY;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let sum = icmpv6_checksum(&dst, &src, icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    at + IPV6_LEN + payload
}

fn addr(ip: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&ip[at..at + 16]);
    Ipv6Addr::from(o)
}

/// Destination := source, source := `mac`.
fn swap_macs(frame: &mut [u8], mac: MacAddr) {
    let (dst, src) = frame[..12].split_at_mut(6);
    dst.copy_from_slice(src);
    src.copy_from_slice(&mac.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IcmpEchoHeader, Icmpv4Type, Icmpv6Type, PacketBuilder, SlicedPacket, TransportSlice};

    const VMAC: MacAddr = MacAddr([0, 0, 0x5e, 0, 1, 0x33]);
    const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);

    fn ping4(pad_to: usize) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(CLIENT.0, VMAC.0)
            .ipv4([198, 51, 100, 10], [198, 51, 100, 100], 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut f, b"vipdrift")
            .unwrap();
        f.resize(f.len().max(pad_to), 0);
        f
    }

    fn ping6() -> Vec<u8> {
        let mut f = Vec::new();
        let (src, dst): (Ipv6Addr, Ipv6Addr) = ("2001:db8::a".parse().unwrap(), "2001:db8::100".parse().unwrap());
        PacketBuilder::ethernet2(CLIENT.0, VMAC.0)
            .ipv6(src.octets(), dst.octets(), 64)
            .icmpv6_echo_request(7, 1)
            .write(&mut f, b"vipdrift")
            .unwrap();
        f
    }

    #[test]
    fn an_ipv4_echo_for_the_vip_is_answered_with_valid_checksums() {
        let mut f = ping4(60);
        assert_eq!(echo4_destination(&f), Ok(Some(Ipv4Addr::new(198, 51, 100, 100))));
        let len = answer_echo4(&mut f, VMAC);
        assert_eq!(len, 14 + 20 + 8 + 8, "Ethernet padding trimmed");
        let p = SlicedPacket::from_ethernet(&f[..len]).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else { panic!() };
        assert_eq!(ip.header().destination(), [198, 51, 100, 10]);
        assert_eq!(ip.header().header_checksum(), ip.header().to_header().calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!() };
        assert_eq!(icmp.icmp_type(), Icmpv4Type::EchoReply(IcmpEchoHeader { id: 7, seq: 1 }));
        assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()));
        assert_eq!(icmp.payload(), b"vipdrift");
        assert_eq!((&f[..6], &f[6..12]), (&CLIENT.0[..], &VMAC.0[..]));
    }

    #[test]
    fn an_ipv6_echo_for_the_vip_is_answered_with_a_valid_checksum() {
        let mut f = ping6();
        assert_eq!(echo6_destination(&f), Ok(Some("2001:db8::100".parse().unwrap())));
        let len = answer_echo6(&mut f, VMAC);
        let p = SlicedPacket::from_ethernet(&f[..len]).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else { panic!() };
        let (s, d) = (ip.header().source(), ip.header().destination());
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!() };
        assert!(icmp.is_checksum_valid(s, d));
        assert_eq!(icmp.icmp_type(), Icmpv6Type::EchoReply(IcmpEchoHeader { id: 7, seq: 1 }));
        assert_eq!(Ipv6Addr::from(d), "2001:db8::a".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn malformed_echoes_are_rejected_and_others_are_not_ours() {
        let good = ping4(0);
        let mut bad = good.clone();
        bad[14 + 10] ^= 1;
        assert_eq!(echo4_destination(&bad), Err(EchoError::Checksum));
        let mut frag = good.clone();
        frag[14 + 6] = 0x20;
        assert_eq!(echo4_destination(&frag), Err(EchoError::BadHeader));
        assert_eq!(echo4_destination(&good[..good.len() - 1]), Err(EchoError::Truncated));
        let mut reply = good.clone();
        reply[34] = 0;
        assert_eq!(echo4_destination(&reply), Ok(None));
        let six = ping6();
        let mut bad6 = six.clone();
        bad6[60] ^= 1;
        assert_eq!(echo6_destination(&bad6), Err(EchoError::Checksum));
        assert_eq!(echo6_destination(&six[..six.len() - 1]), Err(EchoError::Truncated));
        assert_eq!(echo6_destination(&good), Ok(None));
        for len in 0..good.len() {
            let _ = echo4_destination(&good[..len]);
        }
        for len in 0..six.len() {
            let _ = echo6_destination(&six[..len]);
        }
    }
}
