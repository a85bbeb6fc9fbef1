//! The per-virtual-router acceptance checks (RFC 9568 §7.1) that follow the
//! codec's: which VRID, whose advert, from an allowed peer. Each rejection
//! is a reason the control thread counts.

use crate::advert::ReceivedAdvert;
use crate::router::HeardAdvert;
use std::net::IpAddr;

/// Why a well-formed advertisement is not for this virtual router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// Another VRID (not an error on a shared LAN: counted, not logged).
    #[error("advertisement for another VRID")]
    OtherVrid,
    /// RFC 9568 §7.1: "MUST verify that the VRID is configured on the
    /// receiving interface and the local router is not the IPvX Address
    /// owner (Priority = 255 (decimal))."
    #[error("advertisement received by the address owner")]
    WeAreOwner,
    /// Our own advert, looped back (a switch reflecting it, a second socket).
    #[error("our own advertisement")]
    OwnAdvert,
    /// Unicast peers are configured and the sender is not one of them.
    #[error("advertisement from an address that is not a configured peer")]
    NotAPeer,
    /// An advert of the other address family than this router's.
    #[error("advertisement of the other address family")]
    OtherFamily,
}

/// What a virtual router accepts adverts against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptRules {
    /// This router's VRID.
    pub vrid: u8,
    /// This router's configured priority (255: address owner).
    pub priority: u8,
    /// This router's own source addresses (to drop our own adverts).
    pub own_addresses: Vec<IpAddr>,
    /// Unicast peers; empty: any sender on the group is accepted.
    pub unicast_peers: Vec<IpAddr>,
    /// True for an IPv4 virtual router, false for IPv6.
    pub ipv4: bool,
}

impl AcceptRules {
    /// Checks `advert` and returns what the state machine needs.
    pub fn accept(&self, advert: &ReceivedAdvert) -> Result<HeardAdvert, AcceptError> {
        if advert.advert.vrid != self.vrid {
            return Err(AcceptError::OtherVrid);
        }
        if advert.source.is_ipv4() != self.ipv4 {
            return Err(AcceptError::OtherFamily);
        }
        if self.own_addresses.contains(&advert.source) {
            return Err(AcceptError::OwnAdvert);
        }
        if !self.unicast_peers.is_empty() && !self.unicast_peers.contains(&advert.source) {
            return Err(AcceptError::NotAPeer);
        }
        if self.priority == 255 {
            return Err(AcceptError::WeAreOwner);
        }
        Ok(HeardAdvert {
            priority: advert.advert.priority,
            max_adver_int_cs: advert.advert.max_adver_int_cs,
            source: advert.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advert::{Advert, ChecksumForm, GROUP_V4};
    use vipdrift_wire::MacAddr;

    fn received(vrid: u8, source: &str) -> ReceivedAdvert {
        ReceivedAdvert {
            advert: Advert {
                vrid,
                priority: 150,
                max_adver_int_cs: 100,
                addresses: vec!["198.51.100.100".parse().unwrap()],
            },
            source: source.parse().unwrap(),
            destination: GROUP_V4.into(),
            source_mac: MacAddr([0, 0, 0x5e, 0, 1, vrid]),
            checksum_form: ChecksumForm::PseudoHeader,
        }
    }

    fn rules() -> AcceptRules {
        AcceptRules {
            vrid: 51,
            priority: 100,
            own_addresses: vec!["198.51.100.2".parse().unwrap()],
            unicast_peers: vec![],
            ipv4: true,
        }
    }

    #[test]
    fn each_check_rejects_with_its_reason_and_a_good_advert_passes() {
        let r = rules();
        let good = r.accept(&received(51, "198.51.100.3")).unwrap();
        assert_eq!((good.priority, good.max_adver_int_cs), (150, 100));
        assert_eq!(r.accept(&received(52, "198.51.100.3")), Err(AcceptError::OtherVrid));
        assert_eq!(r.accept(&received(51, "198.51.100.2")), Err(AcceptError::OwnAdvert));
        assert_eq!(r.accept(&received(51, "2001:db8::3")), Err(AcceptError::OtherFamily));
        let peers = AcceptRules { unicast_peers: vec!["198.51.100.4".parse().unwrap()], ..rules() };
        assert_eq!(peers.accept(&received(51, "198.51.100.3")), Err(AcceptError::NotAPeer));
        assert!(peers.accept(&received(51, "198.51.100.4")).is_ok());
        let owner = AcceptRules { priority: 255, ..rules() };
        assert_eq!(owner.accept(&received(51, "198.51.100.3")), Err(AcceptError::WeAreOwner));
    }
}
