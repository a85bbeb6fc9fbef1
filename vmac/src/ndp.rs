//! IPv6 Neighbor Discovery for VIPs (RFC 4861): a Neighbor Solicitation for
//! an owned address becomes, in place, the Neighbor Advertisement that
//! answers it; and the unsolicited NA sent on takeover.

use crate::checksum::icmpv6_checksum;
use std::net::Ipv6Addr;
use vipdrift_wire::MacAddr;

pub use crate::ether::ETHERTYPE_IPV6;
/// IPv6 next header for ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// ICMPv6 Neighbor Solicitation.
pub const ICMPV6_NS: u8 = 135;
/// ICMPv6 Neighbor Advertisement.
pub const ICMPV6_NA: u8 = 136;
/// IPv6 header length.
pub const IPV6_LEN: usize = 40;
/// NS/NA message length without options: type, code, checksum, flags, target.
const ND_LEN: usize = 24;
/// Option type: Source Link-Layer Address.
const OPT_SLLA: u8 = 1;
/// Option type: Target Link-Layer Address.
const OPT_TLLA: u8 = 2;
/// NA flags (RFC 4861 §4.4).
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;
/// An NA with one Target LL option: 24 + 8 bytes of ICMPv6.
const NA_ICMP_LEN: usize = ND_LEN + 8;
/// ff02::1, all nodes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// 33:33:00:00:00:01, the MAC of ff02::1.
const ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);

/// Why an ICMPv6 frame that looked like an NS was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NdpError {
    /// Shorter than its headers or its IPv6 payload length.
    #[error("truncated neighbor solicitation")]
    Truncated,
    /// RFC 4861 §7.1.1: "The IP Hop Limit field has a value of 255".
    #[error("neighbor solicitation with hop limit other than 255")]
    HopLimit,
    /// RFC 4861 §7.1.1: "ICMP Code is 0".
    #[error("neighbor solicitation with ICMP code other than 0")]
    Code,
    /// RFC 4861 §7.1.1: "ICMP Checksum is valid".
    #[error("neighbor solicitation with a bad checksum")]
    Checksum,
    /// RFC 4861 §7.1.1: "All included options have a length that is greater
    /// than zero", and none runs past the message.
    #[error("neighbor solicitation with a malformed option")]
    BadOption,
    /// RFC 4861 §7.1.1: "Target Address is not a multicast address", and
    /// with an unspecified source the destination is a solicited-node
    /// address and there is no source link-layer address option.
    #[error("neighbor solicitation that breaks an RFC 4861 §7.1.1 rule")]
    Invalid,
}

/// Where the IPv6 header starts (14, or 18 behind one 802.1Q tag), if the
/// frame is IPv6.
pub fn ipv6_offset(frame: &[u8]) -> Option<usize> {
    crate::ether::payload_offset(frame, ETHERTYPE_IPV6)
}

fn addr_at(bytes: &[u8], at: usize) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[at..at + 16]);
    Ipv6Addr::from(octets)
}

/// A validated Neighbor Solicitation inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborSolicitation {
    /// Offset of the IPv6 header.
    pub ip_at: usize,
    /// The address asked for.
    pub target: Ipv6Addr,
    /// The solicitor's IPv6 source (unspecified during DAD).
    pub source: Ipv6Addr,
    /// The solicitor's link-layer address: its SLLA option, else the frame's
    /// Ethernet source.
    pub source_mac: MacAddr,
}

/// `Ok(Some)` for a valid NS, `Ok(None)` for any frame that is not an NS
/// (other IPv6, other ICMPv6, not IPv6), `Err` for a malformed NS.
pub fn parse_ns(frame: &[u8]) -> Result<Option<NeighborSolicitation>, NdpError> {
    let Some(ip_at) = ipv6_offset(frame) else { return Ok(None) };
    let Some(ip) = frame.get(ip_at..ip_at + IPV6_LEN) else { return Ok(None) };
    if ip[0] >> 4 != 6 || ip[6] != NEXT_HEADER_ICMPV6 {
        return Ok(None);
    }
    let icmp_at = ip_at + IPV6_LEN;
    if frame.get(icmp_at) != Some(&ICMPV6_NS) {
        return Ok(None);
    }
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let Some(message) = frame.get(icmp_at..icmp_at + payload_len) else { return Err(NdpError::Truncated) };
    if message.len() < ND_LEN {
        return Err(NdpError::Truncated);
    }
    if ip[7] != 255 {
        return Err(NdpError::HopLimit);
    }
    if message[1] != 0 {
        return Err(NdpError::Code);
    }
    let (source, destination) = (addr_at(ip, 8), addr_at(ip, 24));
    if icmpv6_checksum(&source, &destination, message) != 0 {
        return Err(NdpError::Checksum);
    }
    let target = addr_at(message, 8);
    if target.is_multicast() {
        return Err(NdpError::Invalid);
    }
    let mut source_mac = [frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]];
    let mut has_slla = false;
    let mut options = &message[ND_LEN..];
    while !options.is_empty() {
        let len = usize::from(*options.get(1).ok_or(NdpError::BadOption)?) * 8;
        if len == 0 || len > options.len() {
            return Err(NdpError::BadOption);
        }
        if options[0] == OPT_SLLA && len == 8 {
            source_mac.copy_from_slice(&options[2..8]);
            has_slla = true;
        }
        options = &options[len..];
    }
    if source.is_unspecified() {
        // RFC 4861 §7.1.1: "If the IP source address is the unspecified
        // address, the IP destination address is a solicited-node multicast
        // address" and "there is no source link-layer address option".
        let solicited_node = destination.segments()[..6] == [0xff02, 0, 0, 0, 0, 1] && destination.octets()[12] == 0xff;
        if !solicited_node || has_slla {
            return Err(NdpError::Invalid);
        }
    }
    Ok(Some(NeighborSolicitation { ip_at, target, source, source_mac: MacAddr(source_mac) }))
}

/// Rewrites the frame holding `ns` into the Neighbor Advertisement that
/// answers it from `mac` (RFC 4861 §7.2.4): to the solicitor (or, for DAD,
/// to all-nodes with S = 0), source = the target, S = 1 when solicited by a
/// unicast source, O = 1, R = `router`, one Target Link-Layer Address option.
/// A VLAN tag stays. `buf` is the whole frame buffer; returns the NA's
/// length, or `None` if the buffer cannot hold it.
pub fn answer_ns(buf: &mut [u8], ns: &NeighborSolicitation, mac: MacAddr, router: bool) -> Option<usize> {
    let icmp_at = ns.ip_at + IPV6_LEN;
    let len = icmp_at + NA_ICMP_LEN;
    let frame = buf.get_mut(..len)?;
    // RFC 4861 §7.2.4: "If the source of the solicitation is the unspecified
    // address, the node MUST set the Solicited flag to zero and multicast the
    // advertisement to the all-nodes address."
    let (dst_ip, dst_mac, solicited) =
        if ns.source.is_unspecified() { (ALL_NODES, ALL_NODES_MAC, false) } else { (ns.source, ns.source_mac, true) };
    write_na(frame, ns.ip_at, mac, ns.target, dst_ip, dst_mac, solicited, router);
    Some(len)
}

/// Writes an unsolicited Neighbor Advertisement for `vip` at `mac` to
/// all-nodes (RFC 4861 §7.2.6: S = 0, O = 1, Target LL = the new address;
/// R = 1 when the VIP is a router's), untagged or with `vlan`; returns its
/// length, or `None` if `buf` is too short.
pub fn write_unsolicited_na(
    buf: &mut [u8],
    mac: MacAddr,
    vip: Ipv6Addr,
    router: bool,
    vlan: Option<u16>,
) -> Option<usize> {
    let len = crate::ether::header_len(vlan) + IPV6_LEN + NA_ICMP_LEN;
    let frame = buf.get_mut(..len)?;
    let ip_at = crate::ether::write_header(frame, ALL_NODES_MAC, mac, vlan, ETHERTYPE_IPV6);
    write_na(frame, ip_at, mac, vip, ALL_NODES, ALL_NODES_MAC, false, router);
    Some(len)
}

/// Fills Ethernet addresses, the IPv6 header and an NA with a Target LL
/// option; the EtherType (and tag) are already in place.
#[allow(clippy::too_many_arguments)]
fn write_na(
    frame: &mut [u8],
    ip_at: usize,
    mac: MacAddr,
    target: Ipv6Addr,
    dst_ip: Ipv6Addr,
    dst_mac: MacAddr,
    solicited: bool,
    router: bool,
) {
    frame[0..6].copy_from_slice(&dst_mac.0);
    frame[6..12].copy_from_slice(&mac.0);
    let ip = &mut frame[ip_at..ip_at + IPV6_LEN];
    ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(NA_ICMP_LEN as u16).to_be_bytes());
    ip[6] = NEXT_HEADER_ICMPV6;
    ip[7] = 255;
    ip[8..24].copy_from_slice(&target.octets());
    ip[24..40].copy_from_slice(&dst_ip.octets());
    let icmp_at = ip_at + IPV6_LEN;
    let na = &mut frame[icmp_at..icmp_at + NA_ICMP_LEN];
    na[0] = ICMPV6_NA;
    na[1] = 0;
    na[2..4].copy_from_slice(&[0, 0]);
    let mut flags = FLAG_OVERRIDE;
    if solicited {
        flags |= FLAG_SOLICITED;
    }
    if router {
        flags |= FLAG_ROUTER;
    }
    na[4..8].copy_from_slice(&[flags, 0, 0, 0]);
    na[8..24].copy_from_slice(&target.octets());
    na[24] = OPT_TLLA;
    na[25] = 1;
    na[26..32].copy_from_slice(&mac.0);
    let sum = icmpv6_checksum(&target, &dst_ip, na);
    na[2..4].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv6Type, SlicedPacket, TransportSlice};

    const VMAC6: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x02, 0x33]);
    const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);

    fn vip() -> Ipv6Addr {
        "2001:db8::100".parse().unwrap()
    }

    fn client() -> Ipv6Addr {
        "2001:db8::a".parse().unwrap()
    }

    fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
        let o = target.octets();
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), u16::from_be_bytes([o[14], o[15]]))
    }

    /// An NS for `target` from `src`, with an SLLA option when `slla`.
    fn ns(src: Ipv6Addr, target: Ipv6Addr, slla: bool) -> Vec<u8> {
        let dst = solicited_node(target);
        let mut icmp = vec![ICMPV6_NS, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        if slla {
            icmp.extend_from_slice(&[OPT_SLLA, 1]);
            icmp.extend_from_slice(&CLIENT_MAC.0);
        }
        let sum = icmpv6_checksum(&src, &dst, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut frame = vec![0x33, 0x33, 0xff, dst.octets()[13], dst.octets()[14], dst.octets()[15]];
        frame.extend_from_slice(&CLIENT_MAC.0);
        frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[NEXT_HEADER_ICMPV6, 255]);
        frame.extend_from_slice(&src.octets());
        frame.extend_from_slice(&dst.octets());
        frame.extend_from_slice(&icmp);
        frame
    }

    /// Parses an NA with etherparse, checks its checksum, returns (flags, target, dst ip, dst mac).
    fn check_na(frame: &[u8]) -> ((bool, bool, bool), Ipv6Addr, Ipv6Addr, MacAddr) {
        let p = SlicedPacket::from_ethernet(frame).expect("parses");
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        assert_eq!(ip.header().hop_limit(), 255);
        let (src, dst) = (ip.header().source(), ip.header().destination());
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
        assert!(icmp.is_checksum_valid(src, dst), "checksum");
        let Icmpv6Type::NeighborAdvertisement(h) = icmp.icmp_type() else { panic!("not an NA") };
        let body = icmp.payload();
        assert_eq!(&body[16..18], &[OPT_TLLA, 1], "a Target (not Source) link-layer option");
        let mut dst_mac = [0u8; 6];
        dst_mac.copy_from_slice(&frame[..6]);
        ((h.router, h.solicited, h.r#override), addr_at(body, 0), Ipv6Addr::from(dst), MacAddr(dst_mac))
    }

    #[test]
    fn an_ns_for_the_vip_becomes_a_solicited_na_to_the_solicitor() {
        for slla in [true, false] {
            let mut buf = ns(client(), vip(), slla);
            buf.resize(128, 0);
            let parsed = parse_ns(&buf).unwrap().unwrap();
            assert_eq!((parsed.target, parsed.source_mac), (vip(), CLIENT_MAC));
            let len = answer_ns(&mut buf, &parsed, VMAC6, false).unwrap();
            assert_eq!(len, 14 + 40 + 32);
            let (flags, target, dst, dst_mac) = check_na(&buf[..len]);
            assert_eq!(flags, (false, true, true), "R=0 S=1 O=1");
            assert_eq!((target, dst, dst_mac), (vip(), client(), CLIENT_MAC));
            assert_eq!(&buf[6..12], &VMAC6);
            assert_eq!(&buf[len - 6..len], &VMAC6, "target link-layer address");
        }
    }

    #[test]
    fn a_dad_probe_is_answered_to_all_nodes_without_the_solicited_flag() {
        let mut buf = ns(Ipv6Addr::UNSPECIFIED, vip(), false);
        buf.resize(128, 0);
        let parsed = parse_ns(&buf).unwrap().unwrap();
        let len = answer_ns(&mut buf, &parsed, VMAC6, false).unwrap();
        let (flags, _, dst, dst_mac) = check_na(&buf[..len]);
        assert_eq!(flags, (false, false, true));
        assert_eq!((dst, dst_mac), (ALL_NODES, MacAddr([0x33, 0x33, 0, 0, 0, 1])));
    }

    /// keepalived's unsolicited NA for VRID 51 in vmac mode, captured on a
    /// veth (VIP fe80::198:51:100:100, R=0 S=0 O=1).
    const KEEPALIVED_NA: &str = "33330000000100005e00023386dd6000000000203afffe800000000000000198005101000100ff0200000000000000000000000000018800f19820000000fe800000000000000198005101000100020100005e000233";

    #[test]
    fn unsolicited_na_matches_keepalived_byte_for_byte() {
        let theirs: Vec<u8> = (0..KEEPALIVED_NA.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&KEEPALIVED_NA[i..i + 2], 16).unwrap())
            .collect();
        let mut ours = [0u8; 128];
        let len = write_unsolicited_na(&mut ours, VMAC6, "fe80::198:51:100:100".parse().unwrap(), false, None).unwrap();
        assert_eq!(&ours[..len], &theirs[..]);
        let (flags, ..) = check_na(&ours[..len]);
        assert_eq!(flags, (false, false, true));
        let tagged = write_unsolicited_na(&mut ours, VMAC6, vip(), true, Some(9)).unwrap();
        assert_eq!(tagged, len + 4);
        assert_eq!(check_na(&ours[..tagged]).0, (true, false, true), "R=1 for a router's VIP");
    }

    #[test]
    fn rfc4861_validity_checks_reject_with_a_reason() {
        let good = ns(client(), vip(), true);
        let mut hop = good.clone();
        hop[14 + 7] = 64;
        assert_eq!(parse_ns(&hop), Err(NdpError::HopLimit));
        let mut code = good.clone();
        code[54 + 1] = 1;
        assert_eq!(parse_ns(&code), Err(NdpError::Code));
        let mut sum = good.clone();
        sum[54 + 2] ^= 0xff;
        assert_eq!(parse_ns(&sum), Err(NdpError::Checksum));
        assert_eq!(parse_ns(&good[..good.len() - 4]), Err(NdpError::Truncated));
        // A zero-length option, with the checksum fixed so only the option is wrong.
        let mut opt = good.clone();
        opt[54 + 25] = 0;
        opt[56..58].copy_from_slice(&[0, 0]);
        let s = icmpv6_checksum(&client(), &solicited_node(vip()), &opt[54..]);
        opt[56..58].copy_from_slice(&s.to_be_bytes());
        assert_eq!(parse_ns(&opt), Err(NdpError::BadOption));
        // DAD with a source link-layer option is invalid (§7.1.1).
        let dad = ns(Ipv6Addr::UNSPECIFIED, vip(), true);
        assert_eq!(parse_ns(&dad), Err(NdpError::Invalid));
        // Not an NS at all: not ours.
        let mut echo = good.clone();
        echo[54] = 128;
        assert_eq!(parse_ns(&echo), Ok(None));
        assert_eq!(parse_ns(&good[..30]), Ok(None));
    }

    #[test]
    fn no_prefix_or_corruption_of_an_ns_panics() {
        let good = ns(client(), vip(), true);
        for len in 0..=good.len() {
            let _ = parse_ns(&good[..len]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0xff] {
                let mut f = good.clone();
                f[i] = v;
                let _ = parse_ns(&f);
            }
        }
    }
}
