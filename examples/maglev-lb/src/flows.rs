//! The flows a worker has seen and the backend each went to: a bounded
//! table, allocated once, in which a flow stays on its backend while the
//! pool changes around it (a draining backend keeps its flows). When full,
//! the least recently seen flow of a bucket gives way. Across a failover
//! the new load balancer has no such memory, and Maglev alone sends every
//! flow to the same backend as long as the backends are the same.

use crate::flow::FlowKey;

const WAYS: usize = 4;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    key: FlowKey,
    backend: u16,
    /// When it was last seen (0: empty).
    seen: u32,
}

/// Flow → backend, for one worker.
#[derive(Debug)]
pub struct FlowTable {
    buckets: Box<[[Slot; WAYS]]>,
    mask: usize,
    clock: u32,
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remembered {
    /// The flow was seen before and its backend still serves.
    Known(u16),
    /// New (or its backend went): the caller picks and [`FlowTable::remember`]s.
    New,
}

impl FlowTable {
    /// A table for about `flows` flows (rounded up to a power of two).
    pub fn new(flows: usize) -> FlowTable {
        let buckets = (flows / WAYS).max(1).next_power_of_two();
        FlowTable { buckets: vec![[Slot::default(); WAYS]; buckets].into_boxed_slice(), mask: buckets - 1, clock: 0 }
    }

    /// How many flows it can hold.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    fn tick(&mut self) -> u32 {
        self.clock = self.clock.wrapping_add(1).max(1);
        self.clock
    }

    /// The backend `key` went to, if it is still `serving`.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, hash: u64, serving: impl Fn(u16) -> bool) -> Remembered {
        let now = self.tick();
        let bucket = &mut self.buckets[(hash as usize) & self.mask];
        for slot in bucket.iter_mut() {
            if slot.seen != 0 && slot.key == *key {
                if serving(slot.backend) {
                    slot.seen = now;
                    return Remembered::Known(slot.backend);
                }
                slot.seen = 0;
                return Remembered::New;
            }
        }
        Remembered::New
    }

    /// Remembers that `key` goes to `backend`; returns true if an older
    /// flow had to give way.
    #[inline]
    pub fn remember(&mut self, key: FlowKey, hash: u64, backend: u16) -> bool {
        let now = self.clock;
        let bucket = &mut self.buckets[(hash as usize) & self.mask];
        let (index, evicted) = match bucket.iter().position(|s| s.seen == 0 || s.key == key) {
            Some(i) => (i, false),
            None => {
                // Oldest by wrapping age from now.
                let oldest = (0..WAYS).max_by_key(|&i| now.wrapping_sub(bucket[i].seen)).unwrap_or(0);
                (oldest, true)
            }
        };
        bucket[index] = Slot { key, backend, seen: now.max(1) };
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> FlowKey {
        FlowKey { src: u128::from(n), dst: 1, ports: n, proto: 6 }
    }

    #[test]
    fn a_flow_keeps_its_backend_until_the_backend_stops_serving() {
        let mut t = FlowTable::new(1024);
        let k = key(7);
        assert_eq!(t.lookup(&k, k.hash(), |_| true), Remembered::New);
        t.remember(k, k.hash(), 2);
        assert_eq!(t.lookup(&k, k.hash(), |_| true), Remembered::Known(2));
        assert_eq!(t.lookup(&k, k.hash(), |b| b != 2), Remembered::New, "backend 2 removed");
        assert_eq!(t.lookup(&k, k.hash(), |_| true), Remembered::New, "and forgotten");
    }

    #[test]
    fn a_full_table_stays_its_size_and_evicts_the_oldest() {
        let mut t = FlowTable::new(16);
        let capacity = t.capacity();
        let mut evictions = 0;
        for n in 0..10_000 {
            let k = key(n);
            if t.lookup(&k, k.hash(), |_| true) == Remembered::New && t.remember(k, k.hash(), 0) {
                evictions += 1;
            }
        }
        assert_eq!(t.capacity(), capacity, "no growth");
        assert!(evictions >= 10_000 - capacity);
        let recent = key(9_999);
        assert_eq!(t.lookup(&recent, recent.hash(), |_| true), Remembered::Known(0), "the newest stays");
    }
}
