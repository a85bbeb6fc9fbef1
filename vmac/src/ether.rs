//! Ethernet framing shared by every responder: where the L3 header starts.

use vipdrift_wire::MacAddr;

/// EtherType of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Where the payload of EtherType `ethertype` starts in `frame`: 14, or 18
/// behind one 802.1Q tag; `None` if the frame carries something else.
pub fn payload_offset(frame: &[u8], ethertype: u16) -> Option<usize> {
    let outer = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if outer == ethertype {
        return Some(14);
    }
    (outer == ETHERTYPE_VLAN && u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]) == ethertype).then_some(18)
}

/// The destination address of an IPv4 or IPv6 packet behind at most one
/// 802.1Q tag; `None` for anything else or a frame too short to hold it.
pub fn ip_destination(frame: &[u8]) -> Option<std::net::IpAddr> {
    if let Some(at) = payload_offset(frame, ETHERTYPE_IPV4) {
        let octets: [u8; 4] = frame.get(at + 16..at + 20)?.try_into().ok()?;
        return Some(octets.into());
    }
    let at = payload_offset(frame, ETHERTYPE_IPV6)?;
    let octets: [u8; 16] = frame.get(at + 24..at + 40)?.try_into().ok()?;
    Some(octets.into())
}

/// Where a payload starts behind an Ethernet header with an optional tag.
pub fn header_len(vlan: Option<u16>) -> usize {
    if vlan.is_some() {
        18
    } else {
        14
    }
}

/// Writes destination, source, the optional 802.1Q tag (VLAN id `vlan`)
/// and `ethertype` at the start of `frame`, which must hold
/// [`header_len`] bytes; returns where the payload starts.
pub fn write_header(frame: &mut [u8], dst: MacAddr, src: MacAddr, vlan: Option<u16>, ethertype: u16) -> usize {
    frame[0..6].copy_from_slice(&dst.0);
    frame[6..12].copy_from_slice(&src.0);
    if let Some(tci) = vlan {
        frame[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        frame[14..16].copy_from_slice(&(tci & 0x0fff).to_be_bytes());
    }
    let at = header_len(vlan);
    frame[at - 2..at].copy_from_slice(&ethertype.to_be_bytes());
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_destination_is_found_behind_a_tag_and_never_past_the_end() {
        let mut frame = [0u8; 60];
        write_header(&mut frame, MacAddr::BROADCAST, MacAddr([2, 0, 0, 0, 0, 1]), Some(7), ETHERTYPE_IPV4);
        frame[18 + 16..18 + 20].copy_from_slice(&[198, 51, 100, 100]);
        assert_eq!(ip_destination(&frame), Some([198, 51, 100, 100].into()));
        assert_eq!(ip_destination(&frame[..18 + 19]), None);
        write_header(&mut frame, MacAddr::BROADCAST, MacAddr([2, 0, 0, 0, 0, 1]), None, ETHERTYPE_ARP);
        assert_eq!(ip_destination(&frame), None);
    }
}
