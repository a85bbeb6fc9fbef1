//! The one Internet checksum routine (RFC 1071) of vipdrift.

use std::net::Ipv6Addr;

/// Adds `bytes` to a running one's-complement sum (odd length padded with zero).
pub fn sum(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        acc += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Folds a running sum into the 16-bit one's-complement checksum.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `bytes` alone (IPv4 header, ICMPv4).
pub fn checksum(bytes: &[u8]) -> u16 {
    finish(sum(0, bytes))
}

/// The ICMPv6 checksum of `message` (its checksum field zeroed or not: the
/// caller decides) over the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc += message.len() as u32;
    acc += 58;
    finish(sum(acc, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_and_verification_to_zero() {
        // RFC 1071 §3 example bytes: sum 0xddf2, checksum 0x220d.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&bytes), 0x220d);
        let mut with = bytes.to_vec();
        with.extend_from_slice(&0x220du16.to_be_bytes());
        assert_eq!(checksum(&with), 0, "a message with its checksum sums to zero");
        assert_eq!(checksum(&[0xff]), !0xff00);
    }
}
