//! Demultiplexing by destination MAC: which endpoint, if any, a frame is for.

use hashbrown::HashMap;
use vipdrift_wire::MacAddr;

/// An endpoint's identity, chosen by whoever registers it (a vMAC group, a
/// load balancer's backend pool, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndpointId(pub u32);

/// Where a frame's destination MAC points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A unicast MAC registered in this worker's table.
    Endpoint(EndpointId),
    /// ff:ff:ff:ff:ff:ff (ARP requests, mostly).
    Broadcast,
    /// A group address other than broadcast (VRRP's 01:00:5e:00:00:12, NDP's 33:33:…).
    Multicast,
    /// A unicast MAC nobody registered.
    Unknown,
}

/// One worker's MAC → endpoint table. Each worker owns its own copy and
/// changes it only between bursts, from its command queue.
#[derive(Debug, Default)]
pub struct MacTable {
    entries: HashMap<MacAddr, EndpointId>,
}

/// Entries reserved up front so that ordinary updates do not allocate.
const RESERVED_ENDPOINTS: usize = 256;

impl MacTable {
    /// An empty table with room for a few hundred endpoints.
    pub fn new() -> MacTable {
        MacTable { entries: HashMap::with_capacity(RESERVED_ENDPOINTS) }
    }

    /// Registers (or re-points) `mac`.
    pub fn insert(&mut self, mac: MacAddr, id: EndpointId) {
        self.entries.insert(mac, id);
    }

    /// Unregisters `mac`; true if it was there.
    pub fn remove(&mut self, mac: &MacAddr) -> bool {
        self.entries.remove(mac).is_some()
    }

    /// Unregisters everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many MACs are registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Classifies a destination MAC.
    #[inline]
    pub fn classify(&self, dst: &MacAddr) -> Dest {
        if dst.is_multicast() {
            if dst.is_broadcast() {
                Dest::Broadcast
            } else {
                Dest::Multicast
            }
        } else {
            match self.entries.get(dst) {
                Some(id) => Dest::Endpoint(*id),
                None => Dest::Unknown,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_registered_group_and_unknown_destinations() {
        let vmac = MacAddr([0, 0, 0x5e, 0, 1, 51]);
        let mut t = MacTable::new();
        t.insert(vmac, EndpointId(7));
        assert_eq!(t.classify(&vmac), Dest::Endpoint(EndpointId(7)));
        assert_eq!(t.classify(&MacAddr::BROADCAST), Dest::Broadcast);
        assert_eq!(t.classify(&MacAddr([1, 0, 0x5e, 0, 0, 0x12])), Dest::Multicast);
        assert_eq!(t.classify(&MacAddr([2, 0, 0, 0, 0, 9])), Dest::Unknown);
        assert!(t.remove(&vmac));
        assert_eq!(t.classify(&vmac), Dest::Unknown);
    }
}
