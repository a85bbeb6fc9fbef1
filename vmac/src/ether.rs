//! Ethernet framing shared by every responder: where the L3 header starts.

/// EtherType of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// Where the payload of EtherType `ethertype` starts in `frame`: 14, or 18
/// behind one 802.1Q tag; `None` if the frame carries something else.
pub fn payload_offset(frame: &[u8], ethertype: u16) -> Option<usize> {
    let outer = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if outer == ethertype {
        return Some(14);
    }
    (outer == ETHERTYPE_VLAN && u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]) == ethertype).then_some(18)
}
