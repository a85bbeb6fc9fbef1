//! The frames `vipdrift gen` sends: UDP/IPv4, or ARP requests.

use etherparse::PacketBuilder;
use std::net::Ipv4Addr;
use vipdrift_engine::MacAddr;

/// Smallest frame gen builds: Ethernet + IPv4 + UDP headers.
pub(crate) const MIN_FRAME: usize = 14 + 20 + 8;
/// Offset of the UDP source port in the frame (varied per packet).
pub(crate) const UDP_SRC_PORT_OFFSET: usize = 14 + 20;

/// Builds a `size`-byte UDP/IPv4 frame (no FCS) with a zero payload.
pub(crate) fn udp_frame(
    size: usize,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
) -> Result<Vec<u8>, String> {
    if size < MIN_FRAME {
        return Err(format!("--size {size} is too small: a UDP/IPv4 frame needs at least {MIN_FRAME} bytes"));
    }
    let payload = vec![0u8; size - MIN_FRAME];
    let builder = PacketBuilder::ethernet2(src_mac.octets(), dst_mac.octets())
        .ipv4(src_ip.octets(), dst_ip.octets(), 64)
        .udp(9, 9);
    let mut frame = Vec::with_capacity(size);
    builder.write(&mut frame, &payload).map_err(|e| format!("cannot build the frame: {e}"))?;
    // The UDP checksum would go stale when gen varies the source port;
    // zero means "no checksum" in IPv4.
    frame[UDP_SRC_PORT_OFFSET + 6..UDP_SRC_PORT_OFFSET + 8].copy_from_slice(&[0, 0]);
    Ok(frame)
}

/// Builds a `size`-byte broadcast ARP request for `target` (zero padding
/// after the 42 bytes of ARP).
pub(crate) fn arp_request_frame(
    size: usize,
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    target: Ipv4Addr,
) -> Result<Vec<u8>, String> {
    let mut frame = vec![0u8; size.max(42)];
    vipdrift_vmac::arp::write_request(&mut frame, src_mac, src_ip, target, None)
        .ok_or_else(|| "cannot build the ARP request".to_string())?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::SlicedPacket;

    #[test]
    fn builds_a_parseable_frame_of_the_requested_size() {
        let frame = udp_frame(
            64,
            "02:00:00:00:00:01".parse().unwrap(),
            "02:00:00:00:00:02".parse().unwrap(),
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 2),
        )
        .unwrap();
        assert_eq!(frame.len(), 64);
        let parsed = SlicedPacket::from_ethernet(&frame).unwrap();
        assert!(matches!(parsed.transport, Some(etherparse::TransportSlice::Udp(_))));
        assert!(
            udp_frame(41, MacAddr::default(), MacAddr::default(), Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).is_err()
        );
    }
}
