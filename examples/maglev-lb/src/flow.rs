//! A frame's flow: its 5-tuple read from the IP and TCP/UDP headers, and
//! the reasons a frame addressed to a VIP is not one the load balancer
//! forwards.

use crate::maglev::mix;

/// A TCP or UDP flow: source and destination address (IPv4 mapped into the
/// low 32 bits), ports and protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address.
    pub src: u128,
    /// Destination address (the VIP).
    pub dst: u128,
    /// Source port in the high 16 bits, destination port in the low 16.
    pub ports: u32,
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
}

impl FlowKey {
    /// The flow's hash: the same on every node, so every load balancer of
    /// the pool sends a flow to the same backend.
    #[inline]
    pub fn hash(&self) -> u64 {
        // Each field through its own odd multiplier (independent, so they
        // run side by side), folded, then one finalizer for the avalanche.
        let fold = |a: u128| a as u64 ^ ((a >> 64) as u64).rotate_left(32);
        let src = fold(self.src).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let dst = fold(self.dst).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        let rest = (u64::from(self.ports) << 8 | u64::from(self.proto)).wrapping_mul(0x1656_67b1_9e37_79f9);
        mix(src ^ dst.rotate_left(21) ^ rest.rotate_left(42))
    }
}

/// Why a frame to the VIP is not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAFlow {
    /// An IPv4 fragment or an IPv6 fragment header: the ports are not in
    /// every fragment, so no backend can be chosen consistently.
    Fragment,
    /// Shorter than its headers say, or than the headers themselves.
    Truncated,
    /// Not TCP or UDP (or an IPv6 extension header before them).
    UnknownProtocol,
    /// Not IPv4 or IPv6.
    NotIp,
}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const IPV6_FRAGMENT: u8 = 44;

/// Where the IP header starts, behind at most one 802.1Q tag.
fn ip_start(frame: &[u8]) -> Option<(usize, u16)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 {
        return Some((18, u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?])));
    }
    Some((14, ethertype))
}

fn ports(l4: Option<&[u8]>) -> Result<u32, NotAFlow> {
    let l4 = l4.ok_or(NotAFlow::Truncated)?;
    let b = l4.get(..4).ok_or(NotAFlow::Truncated)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The flow of an Ethernet frame carrying TCP or UDP over IPv4 or IPv6.
#[inline]
pub fn flow_of(frame: &[u8]) -> Result<FlowKey, NotAFlow> {
    let (at, ethertype) = ip_start(frame).ok_or(NotAFlow::Truncated)?;
    let ip = frame.get(at..).ok_or(NotAFlow::Truncated)?;
    match ethertype {
        0x0800 => {
            let header = ip.get(..20).ok_or(NotAFlow::Truncated)?;
            let ihl = usize::from(header[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
            if header[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() {
                return Err(NotAFlow::Truncated);
            }
            // More fragments, or a fragment offset: part of a fragmented datagram.
            if u16::from_be_bytes([header[6], header[7]]) & 0x3fff != 0 {
                return Err(NotAFlow::Fragment);
            }
            let proto = header[9];
            if proto != PROTO_TCP && proto != PROTO_UDP {
                return Err(NotAFlow::UnknownProtocol);
            }
            let src = u128::from(u32::from_be_bytes([header[12], header[13], header[14], header[15]]));
            let dst = u128::from(u32::from_be_bytes([header[16], header[17], header[18], header[19]]));
            Ok(FlowKey { src, dst, ports: ports(ip.get(ihl..total))?, proto })
        }
        0x86dd => {
            let header = ip.get(..40).ok_or(NotAFlow::Truncated)?;
            let payload = usize::from(u16::from_be_bytes([header[4], header[5]]));
            if header[0] >> 4 != 6 || 40 + payload > ip.len() {
                return Err(NotAFlow::Truncated);
            }
            let proto = header[6];
            if proto == IPV6_FRAGMENT {
                return Err(NotAFlow::Fragment);
            }
            if proto != PROTO_TCP && proto != PROTO_UDP {
                return Err(NotAFlow::UnknownProtocol);
            }
            let address = |at: usize| u128::from_be_bytes(header[at..at + 16].try_into().unwrap_or([0; 16]));
            Ok(FlowKey { src: address(8), dst: address(24), ports: ports(ip.get(40..40 + payload))?, proto })
        }
        _ => Err(NotAFlow::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4(flags_fragment: u16, total_len: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total_len.to_be_bytes());
        ip[6..8].copy_from_slice(&flags_fragment.to_be_bytes());
        ip[9] = PROTO_TCP;
        ip[12..16].copy_from_slice(&[198, 51, 100, 10]);
        ip[16..20].copy_from_slice(&[198, 51, 100, 100]);
        ip[20..24].copy_from_slice(&[0xc3, 0x50, 0, 80]);
        f
    }

    #[test]
    fn a_tcp_segment_gives_its_five_tuple() {
        let key = flow_of(&tcp4(0x4000, 40)).unwrap();
        assert_eq!(key.src, u128::from(u32::from_be_bytes([198, 51, 100, 10])));
        assert_eq!((key.ports, key.proto), (0xc350_0050, PROTO_TCP));
        assert_eq!(key.hash(), flow_of(&tcp4(0x4000, 40)).unwrap().hash(), "the same flow, the same hash");
    }

    #[test]
    fn fragments_truncation_and_other_protocols_are_told_apart() {
        assert_eq!(flow_of(&tcp4(0x2000, 40)), Err(NotAFlow::Fragment), "more fragments");
        assert_eq!(flow_of(&tcp4(0x0010, 40)), Err(NotAFlow::Fragment), "an offset");
        assert_eq!(flow_of(&tcp4(0, 200)), Err(NotAFlow::Truncated), "longer than the frame");
        assert_eq!(flow_of(&tcp4(0, 22)), Err(NotAFlow::Truncated), "no room for the ports");
        let mut icmp = tcp4(0, 40);
        icmp[14 + 9] = 1;
        assert_eq!(flow_of(&icmp), Err(NotAFlow::UnknownProtocol));
        let mut arp = tcp4(0, 40);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(flow_of(&arp), Err(NotAFlow::NotIp));
        let frame = tcp4(0, 40);
        for cut in 0..frame.len() {
            let _ = flow_of(&frame[..cut]);
        }
    }

    #[test]
    fn an_ipv6_fragment_header_is_a_fragment() {
        let mut f = vec![0u8; 14 + 40 + 8];
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        f[14] = 0x60;
        f[14 + 4..14 + 6].copy_from_slice(&8u16.to_be_bytes());
        f[14 + 6] = IPV6_FRAGMENT;
        assert_eq!(flow_of(&f), Err(NotAFlow::Fragment));
        f[14 + 6] = PROTO_UDP;
        assert_eq!(flow_of(&f).unwrap().proto, PROTO_UDP);
    }
}
