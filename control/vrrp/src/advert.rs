//! The VRRPv3 wire codec (RFC 9568, which obsoletes RFC 5798): IPv4 and IPv6
//! advertisements parsed from and written into Ethernet frames. Timers live
//! elsewhere: centiseconds exist only here, on the wire.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use vipdrift_vmac::checksum::{finish, sum};
use vipdrift_vmac::ether::{payload_offset, write_header, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use vipdrift_wire::MacAddr;

/// IP protocol number of VRRP.
pub const PROTO_VRRP: u8 = 112;
/// 224.0.0.18, VRRP's IPv4 group.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// ff02::12, VRRP's IPv6 group.
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// 01:00:5e:00:00:12, the Ethernet group of 224.0.0.18: the NIC's multicast
/// filter must pass it for adverts to arrive.
pub const GROUP_MAC_V4: MacAddr = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
/// 33:33:00:00:00:12, the Ethernet group of ff02::12.
pub const GROUP_MAC_V6: MacAddr = MacAddr([0x33, 0x33, 0x00, 0x00, 0x00, 0x12]);
/// Most addresses an advertisement may carry here (keeps frames under 1500 bytes for IPv6).
pub const MAX_ADDRESSES: usize = 64;
const HEADER_LEN: usize = 8;
const VERSION_TYPE: u8 = 0x31;

/// How an IPv4 advertisement's checksum was (or is to be) computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumForm {
    /// RFC 5798 §5.2.8: over an IPv4 pseudo-header and the message (what
    /// keepalived sends by default). IPv6 always uses its pseudo-header.
    PseudoHeader,
    /// RFC 9568 §5.2.8: "the checksum computation only includes the VRRP
    /// message" (IPv4 only).
    MessageOnly,
}

/// An advertisement's VRRP fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    /// Virtual router ID, 1..=255.
    pub vrid: u8,
    /// 0 (master resigning), 1..=254, 255 (address owner).
    pub priority: u8,
    /// Max_Adver_Int in centiseconds (12 bits, 1..=4095).
    pub max_adver_int_cs: u16,
    /// The virtual addresses, all of the IP header's family.
    pub addresses: Vec<IpAddr>,
}

/// An advertisement as received, with what the acceptance checks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAdvert {
    /// The VRRP fields.
    pub advert: Advert,
    /// IP source: the sender's primary address (the tie-breaker).
    pub source: IpAddr,
    /// IP destination: the group or, with unicast peers, us.
    pub destination: IpAddr,
    /// Ethernet source.
    pub source_mac: MacAddr,
    /// The checksum form that matched (IPv6: always `PseudoHeader`).
    pub checksum_form: ChecksumForm,
}

/// Why an advertisement was rejected; each maps to a counter. Quoted rules
/// are RFC 9568 §7.1 unless noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdvertError {
    /// Shorter than its headers, its IP length or its address count.
    #[error("truncated advertisement")]
    Truncated,
    /// "MUST verify that the IPv4 TTL/IPv6 Hop Limit is 255".
    #[error("advertisement with TTL or hop limit other than 255")]
    Ttl,
    /// "MUST verify that the VRRP version is 3".
    #[error("advertisement of a VRRP version other than 3")]
    Version,
    /// RFC 9568 §5.2.2: "A packet with unknown type MUST be discarded."
    #[error("VRRP packet of an unknown type")]
    Type,
    /// "MUST verify that the VRRP checksum is correct".
    #[error("advertisement with a bad checksum")]
    Checksum,
    /// Count 0 (erratum 8299: "MUST be ignored"), or a count that does not
    /// match the message length.
    #[error("advertisement whose address count does not match its length")]
    Count,
    /// RFC 9568 §7.1: "MUST verify that the Max Adver Interval ... is non-zero".
    #[error("advertisement with a zero Max_Adver_Int")]
    ZeroInterval,
    /// An IPv4 header with options or fragments, or an address of the other family.
    #[error("malformed IP header around an advertisement")]
    BadIpHeader,
}

/// `Ok(Some)` for a well-formed VRRPv3 advertisement, `Ok(None)` for frames
/// that are not VRRP, `Err` for malformed VRRP. VRID, priority and peer
/// checks belong to the virtual router that receives it.
pub fn parse_advert(frame: &[u8]) -> Result<Option<ReceivedAdvert>, AdvertError> {
    if let Some(at) = payload_offset(frame, ETHERTYPE_IPV4) {
        let Some(ip) = frame.get(at..at + 20) else { return Ok(None) };
        if ip[0] >> 4 != 4 || ip[9] != PROTO_VRRP {
            return Ok(None);
        }
        if ip[0] & 0x0f != 5 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
            return Err(AdvertError::BadIpHeader);
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let message = frame.get(at + 20..at + total.max(20)).ok_or(AdvertError::Truncated)?;
        if ip[8] != 255 {
            return Err(AdvertError::Ttl);
        }
        let (src, dst) = (Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]), Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
        let advert = parse_message(message, 4)?;
        let form = if finish(sum(pseudo_v4(src, dst, message.len()), message)) == 0 {
            ChecksumForm::PseudoHeader
        } else if finish(sum(0, message)) == 0 {
            ChecksumForm::MessageOnly
        } else {
            return Err(AdvertError::Checksum);
        };
        return Ok(Some(received(frame, advert, src.into(), dst.into(), form)));
    }
    if let Some(at) = payload_offset(frame, ETHERTYPE_IPV6) {
        let Some(ip) = frame.get(at..at + 40) else { return Ok(None) };
        if ip[0] >> 4 != 6 || ip[6] != PROTO_VRRP {
            return Ok(None);
        }
        let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let message = frame.get(at + 40..at + 40 + payload).ok_or(AdvertError::Truncated)?;
        if ip[7] != 255 {
            return Err(AdvertError::Ttl);
        }
        let (src, dst) = (v6(&ip[8..24]), v6(&ip[24..40]));
        let advert = parse_message(message, 16)?;
        if finish(sum(pseudo_v6(&src, &dst, message.len()), message)) != 0 {
            return Err(AdvertError::Checksum);
        }
        return Ok(Some(received(frame, advert, src.into(), dst.into(), ChecksumForm::PseudoHeader)));
    }
    Ok(None)
}

/// Assembles a parsed advert; `frame` is at least 14 bytes (it had an EtherType).
fn received(frame: &[u8], advert: Advert, source: IpAddr, destination: IpAddr, form: ChecksumForm) -> ReceivedAdvert {
    let source_mac = MacAddr([frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]);
    ReceivedAdvert { advert, source, destination, source_mac, checksum_form: form }
}

fn v6(bytes: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&bytes[..16]);
    Ipv6Addr::from(o)
}

fn parse_message(message: &[u8], addr_len: usize) -> Result<Advert, AdvertError> {
    if message.len() < HEADER_LEN {
        return Err(AdvertError::Truncated);
    }
    if message[0] >> 4 != 3 {
        return Err(AdvertError::Version);
    }
    if message[0] & 0x0f != 1 {
        return Err(AdvertError::Type);
    }
    let count = usize::from(message[3]);
    if count == 0 || message.len() < HEADER_LEN + count * addr_len {
        return Err(AdvertError::Count);
    }
    // RFC 9568 §5.2.6: the 4 reserved bits are ignored on receipt.
    let max_adver_int_cs = u16::from_be_bytes([message[4], message[5]]) & 0x0fff;
    if max_adver_int_cs == 0 {
        return Err(AdvertError::ZeroInterval);
    }
    let addresses = message[HEADER_LEN..HEADER_LEN + count * addr_len]
        .chunks_exact(addr_len)
        .map(|a| if addr_len == 4 { IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])) } else { IpAddr::V6(v6(a)) })
        .collect();
    Ok(Advert { vrid: message[1], priority: message[2], max_adver_int_cs, addresses })
}

fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> u32 {
    sum(sum(0, &src.octets()), &dst.octets()) + u32::from(PROTO_VRRP) + len as u32
}

fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize) -> u32 {
    sum(sum(0, &src.octets()), &dst.octets()) + len as u32 + u32::from(PROTO_VRRP)
}

/// The Ethernet destination for an IPv4/IPv6 destination: the VRRP group
/// MAC for the group, else `peer_mac` (a unicast peer's).
fn dst_mac(dst: IpAddr, peer_mac: MacAddr) -> MacAddr {
    match dst {
        IpAddr::V4(a) if a == GROUP_V4 => GROUP_MAC_V4,
        IpAddr::V6(a) if a == GROUP_V6 => GROUP_MAC_V6,
        _ => peer_mac,
    }
}

/// Where and how to send an advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertHeader {
    /// Ethernet source: the virtual MAC in vmac mode, else the interface's.
    pub source_mac: MacAddr,
    /// IP source: the interface's primary IPv4 or link-local IPv6 address.
    pub source: IpAddr,
    /// The group (224.0.0.18 / ff02::12) or a unicast peer.
    pub destination: IpAddr,
    /// Ethernet destination when `destination` is a unicast peer.
    pub peer_mac: MacAddr,
    /// IPv4 identification.
    pub ip_id: u16,
    /// IPv4 checksum form (ignored for IPv6). For a unicast peer the
    /// pseudo-header uses the real destination.
    pub form: ChecksumForm,
}

/// Writes `advert` as a frame into `buf`; returns its length, or `None` if
/// `buf` is too short, the advert carries no, too many, or mixed-family
/// addresses, or source and destination families differ.
pub fn write_advert(buf: &mut [u8], header: &AdvertHeader, advert: &Advert) -> Option<usize> {
    let count = advert.addresses.len();
    if count == 0 || count > MAX_ADDRESSES {
        return None;
    }
    let v4 = matches!(header.source, IpAddr::V4(_));
    if v4 != matches!(header.destination, IpAddr::V4(_)) || advert.addresses.iter().any(|a| a.is_ipv4() != v4) {
        return None;
    }
    let addr_len = if v4 { 4 } else { 16 };
    let ip_len = if v4 { 20 } else { 40 };
    let message_len = HEADER_LEN + count * addr_len;
    let len = 14 + ip_len + message_len;
    let frame = buf.get_mut(..len)?;
    let ethertype = if v4 { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 };
    write_header(frame, dst_mac(header.destination, header.peer_mac), header.source_mac, None, ethertype);
    let (ip, message) = frame[14..].split_at_mut(ip_len);
    message[0] = VERSION_TYPE;
    message[1] = advert.vrid;
    message[2] = advert.priority;
    message[3] = count as u8;
    message[4..6].copy_from_slice(&(advert.max_adver_int_cs & 0x0fff).to_be_bytes());
    message[6..8].copy_from_slice(&[0, 0]);
    for (slot, addr) in message[HEADER_LEN..].chunks_exact_mut(addr_len).zip(&advert.addresses) {
        match addr {
            IpAddr::V4(a) => slot.copy_from_slice(&a.octets()),
            IpAddr::V6(a) => slot.copy_from_slice(&a.octets()),
        }
    }
    match (header.source, header.destination) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            ip[0] = 0x45;
            ip[1] = 0xc0; // DSCP CS6, as keepalived and FRR send
            ip[2..4].copy_from_slice(&((20 + message_len) as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&header.ip_id.to_be_bytes());
            ip[6..8].copy_from_slice(&[0, 0]);
            ip[8] = 255;
            ip[9] = PROTO_VRRP;
            ip[10..12].copy_from_slice(&[0, 0]);
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let header_sum = finish(sum(0, &ip[..20]));
            ip[10..12].copy_from_slice(&header_sum.to_be_bytes());
            let start = match header.form {
                ChecksumForm::PseudoHeader => pseudo_v4(src, dst, message_len),
                ChecksumForm::MessageOnly => 0,
            };
            let sum_field = finish(sum(start, message));
            message[6..8].copy_from_slice(&sum_field.to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            ip[0..4].copy_from_slice(&[0x6c, 0, 0, 0]); // traffic class CS6
            ip[4..6].copy_from_slice(&(message_len as u16).to_be_bytes());
            ip[6] = PROTO_VRRP;
            ip[7] = 255;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            let sum_field = finish(sum(pseudo_v6(&src, &dst, message_len), message));
            message[6..8].copy_from_slice(&sum_field.to_be_bytes());
        }
        _ => return None,
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// keepalived's advert for VRID 51, priority 200, 1 s, VIP 198.51.100.100,
    /// from 198.51.100.11 in vmac mode, as captured on a veth.
    const KEEPALIVED_V4: &str =
        "01005e00001200005e000133080045c0002000010000ff70b05bc633640be00000123133c8010064d100c6336464";
    /// keepalived's IPv6 advert for VRID 51, 100 ms, VIP fe80::198:51:100:100.
    const KEEPALIVED_V6: &str = "33330000001200005e00023386dd6c0b0a99001870fffe800000000000000000c6fffe33640bff02000000000000000000000000001231\
                                 33c801000adcf9fe800000000000000198005101000100";

    fn v4_header(form: ChecksumForm) -> AdvertHeader {
        AdvertHeader {
            source_mac: MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 0x33]),
            source: "198.51.100.11".parse().unwrap(),
            destination: GROUP_V4.into(),
            peer_mac: MacAddr([0; 6]),
            ip_id: 1,
            form,
        }
    }

    #[test]
    fn our_ipv4_advert_is_keepalived_s_byte_for_byte_and_parses_back() {
        let advert = Advert {
            vrid: 51,
            priority: 200,
            max_adver_int_cs: 100,
            addresses: vec!["198.51.100.100".parse().unwrap()],
        };
        let mut buf = [0u8; 128];
        let len = write_advert(&mut buf, &v4_header(ChecksumForm::PseudoHeader), &advert).unwrap();
        assert_eq!(&buf[..len], &hex(KEEPALIVED_V4)[..]);
        let got = parse_advert(&hex(KEEPALIVED_V4)).unwrap().unwrap();
        assert_eq!(got.advert, advert);
        assert_eq!(got.checksum_form, ChecksumForm::PseudoHeader, "keepalived sends the RFC 5798 form");
        assert_eq!(got.source, "198.51.100.11".parse::<IpAddr>().unwrap());
        assert_eq!(got.source_mac, [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33]);
    }

    #[test]
    fn both_ipv4_checksum_forms_match_the_reference_vectors_and_are_told_apart() {
        // anchors D.2: VRID 51, prio 100, 100 cs, VIP 198.51.100.10, src 198.51.100.2.
        let advert = Advert {
            vrid: 51,
            priority: 100,
            max_adver_int_cs: 100,
            addresses: vec!["198.51.100.10".parse().unwrap()],
        };
        for (form, expected) in [(ChecksumForm::PseudoHeader, 0x3564u16), (ChecksumForm::MessageOnly, 0x4029)] {
            let header = AdvertHeader { source: "198.51.100.2".parse().unwrap(), ..v4_header(form) };
            let mut buf = [0u8; 128];
            let len = write_advert(&mut buf, &header, &advert).unwrap();
            assert_eq!(&buf[34..42], &[0x31, 0x33, 0x64, 0x01, 0x00, 0x64, (expected >> 8) as u8, expected as u8]);
            assert_eq!(parse_advert(&buf[..len]).unwrap().unwrap().checksum_form, form);
        }
    }

    #[test]
    fn a_unicast_advert_sums_the_real_destination_and_goes_to_the_peer_mac() {
        let advert =
            Advert { vrid: 7, priority: 150, max_adver_int_cs: 1, addresses: vec!["203.0.113.100".parse().unwrap()] };
        let header = AdvertHeader {
            destination: "203.0.113.3".parse().unwrap(),
            peer_mac: MacAddr([2, 0, 0, 0, 0, 3]),
            ..v4_header(ChecksumForm::PseudoHeader)
        };
        let mut buf = [0u8; 128];
        let len = write_advert(&mut buf, &header, &advert).unwrap();
        assert_eq!(&buf[..6], &[2, 0, 0, 0, 0, 3]);
        let got = parse_advert(&buf[..len]).unwrap().unwrap();
        assert_eq!((got.checksum_form, got.destination), (ChecksumForm::PseudoHeader, header.destination));
    }

    #[test]
    fn keepalived_s_ipv6_advert_parses_and_ours_differs_only_in_the_flow_label() {
        let theirs = hex(KEEPALIVED_V6);
        let got = parse_advert(&theirs).unwrap().unwrap();
        assert_eq!(got.advert.vrid, 51);
        assert_eq!(got.advert.max_adver_int_cs, 10);
        assert_eq!(got.advert.addresses, vec!["fe80::198:51:100:100".parse::<IpAddr>().unwrap()]);
        let header = AdvertHeader {
            source_mac: MacAddr([0x00, 0x00, 0x5e, 0x00, 0x02, 0x33]),
            source: got.source,
            destination: GROUP_V6.into(),
            peer_mac: MacAddr([0; 6]),
            ip_id: 0,
            form: ChecksumForm::PseudoHeader,
        };
        let mut ours = [0u8; 128];
        let len = write_advert(&mut ours, &header, &got.advert).unwrap();
        let mut expected = theirs.clone();
        // keepalived sets a flow label; we send 0.
        expected[15] &= 0xf0;
        expected[16..18].copy_from_slice(&[0, 0]);
        assert_eq!(&ours[..len], &expected[..]);
    }

    #[test]
    fn each_rfc_acceptance_rule_rejects_with_its_reason() {
        let good = hex(KEEPALIVED_V4);
        let fix_checksum = |f: &mut Vec<u8>| {
            f[40..42].copy_from_slice(&[0, 0]);
            let s = finish(sum(0, &f[34..46]));
            f[40..42].copy_from_slice(&s.to_be_bytes());
        };
        let mut ttl = good.clone();
        ttl[22] = 254;
        assert_eq!(parse_advert(&ttl), Err(AdvertError::Ttl));
        // (byte, value, expected): each a valid checksum over a broken field.
        let cases: [(usize, &[u8], AdvertError); 5] = [
            (34, &[0x21], AdvertError::Version),
            (34, &[0x32], AdvertError::Type),
            (37, &[0], AdvertError::Count),
            (37, &[2], AdvertError::Count),
            // Only the 4 reserved bits set: they are ignored, the interval is 0.
            (38, &[0xf0, 0], AdvertError::ZeroInterval),
        ];
        for (at, bytes, expected) in cases {
            let mut f = good.clone();
            f[at..at + bytes.len()].copy_from_slice(bytes);
            fix_checksum(&mut f);
            assert_eq!(parse_advert(&f), Err(expected), "byte {at} = {bytes:02x?}");
        }
        let mut checksum = good.clone();
        checksum[41] ^= 1;
        assert_eq!(parse_advert(&checksum), Err(AdvertError::Checksum));
        assert_eq!(parse_advert(&good[..good.len() - 1]), Err(AdvertError::Truncated));
        let mut not_vrrp = good.clone();
        not_vrrp[23] = 17;
        assert_eq!(parse_advert(&not_vrrp), Ok(None));
        for len in 0..good.len() {
            let _ = parse_advert(&good[..len]);
        }
        for i in 0..good.len() {
            for v in [0u8, 0xff] {
                let mut f = good.clone();
                f[i] = v;
                let _ = parse_advert(&f);
            }
        }
    }

    #[test]
    fn adverts_that_cannot_be_built_are_refused() {
        let mut buf = [0u8; 256];
        let none = Advert { vrid: 1, priority: 100, max_adver_int_cs: 100, addresses: vec![] };
        assert!(write_advert(&mut buf, &v4_header(ChecksumForm::PseudoHeader), &none).is_none());
        let mixed = Advert { addresses: vec!["2001:db8::1".parse().unwrap()], ..none };
        assert!(write_advert(&mut buf, &v4_header(ChecksumForm::PseudoHeader), &mixed).is_none());
        let fits = Advert { addresses: vec!["198.51.100.1".parse().unwrap()], ..mixed };
        assert!(write_advert(&mut buf[..40], &v4_header(ChecksumForm::PseudoHeader), &fits).is_none());
    }
}
