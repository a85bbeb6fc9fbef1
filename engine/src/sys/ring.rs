//! A single-producer single-consumer ring of descriptors with batch
//! operations, shaped like an XSK ring: one atomic load and one atomic store
//! per burst on each side, cached indices, slots never reallocated.

use crate::port::{Desc, RawDesc};
use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Shared {
    slots: Box<[UnsafeCell<RawDesc>]>,
    mask: usize,
    /// Next slot the consumer reads; written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes; written only by the producer.
    tail: CachePadded<AtomicUsize>,
}

// SAFETY: a slot is written only by the producer while it lies between `tail`
// and `head + capacity`, and read only by the consumer while it lies between
// `head` and `tail`; the Release store of `tail` (resp. `head`) after the
// slot access and the Acquire load on the other side order the two, so no
// slot is ever accessed from both threads at once.
unsafe impl Sync for Shared {}
// SAFETY: `Desc` is plain data (an address, a length, a tag); moving the
// ring between threads is fine.
unsafe impl Send for Shared {}

/// The writing end of a [`desc_ring`].
pub(crate) struct RingProducer {
    shared: Arc<Shared>,
    tail: usize,
    cached_head: usize,
}

/// The reading end of a [`desc_ring`].
pub(crate) struct RingConsumer {
    shared: Arc<Shared>,
    head: usize,
    cached_tail: usize,
}

/// Makes a ring that holds `capacity` descriptors (rounded up to a power of two).
pub(crate) fn desc_ring(capacity: usize) -> (RingProducer, RingConsumer) {
    let capacity = capacity.max(2).next_power_of_two();
    let slots = (0..capacity).map(|_| UnsafeCell::new(RawDesc::default())).collect();
    let shared = Arc::new(Shared {
        slots,
        mask: capacity - 1,
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
    });
    (RingProducer { shared: shared.clone(), tail: 0, cached_head: 0 }, RingConsumer { shared, head: 0, cached_tail: 0 })
}

impl RingProducer {
    /// Moves a prefix of `descs` into the ring (their slots are left empty);
    /// returns how many fitted.
    #[inline]
    pub(crate) fn produce(&mut self, descs: &mut [Desc]) -> usize {
        let cap = self.shared.mask + 1;
        let mut free = cap - self.tail.wrapping_sub(self.cached_head);
        if free < descs.len() {
            self.cached_head = self.shared.head.load(Ordering::Acquire);
            free = cap - self.tail.wrapping_sub(self.cached_head);
        }
        let n = free.min(descs.len());
        for (i, desc) in descs[..n].iter_mut().enumerate() {
            let slot = &self.shared.slots[self.tail.wrapping_add(i) & self.shared.mask];
            // SAFETY: the slot lies in [tail, head + capacity): the consumer
            // has released it (Acquire load of `head` above) and will not read
            // it before our Release store of the new `tail` below.
            unsafe { *slot.get() = std::mem::take(desc).into_raw() };
        }
        self.tail = self.tail.wrapping_add(n);
        self.shared.tail.store(self.tail, Ordering::Release);
        n
    }
}

impl RingConsumer {
    /// Takes up to `descs.len()` descriptors; returns how many.
    #[inline]
    pub(crate) fn consume(&mut self, descs: &mut [Desc]) -> usize {
        let mut avail = self.cached_tail.wrapping_sub(self.head);
        if avail < descs.len() {
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            avail = self.cached_tail.wrapping_sub(self.head);
        }
        let n = avail.min(descs.len());
        for (i, desc) in descs[..n].iter_mut().enumerate() {
            let slot = &self.shared.slots[self.head.wrapping_add(i) & self.shared.mask];
            // SAFETY: the slot lies in [head, tail): the producer published it
            // (Acquire load of `tail` above) and will not write it again
            // before our Release store of the new `head` below.
            *desc = Desc::from_raw(unsafe { *slot.get() });
        }
        self.head = self.head.wrapping_add(n);
        self.shared.head.store(self.head, Ordering::Release);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::MemoryTag;

    fn d(addr: u64) -> Desc {
        Desc::new(MemoryTag::fresh(), addr, 60)
    }

    fn empties<const N: usize>() -> [Desc; N] {
        std::array::from_fn(|_| Desc::default())
    }

    #[test]
    fn keeps_order_and_refuses_when_full() {
        let (mut p, mut c) = desc_ring(4);
        assert_eq!(p.produce(&mut [d(1), d(2), d(3), d(4), d(5)]), 4);
        let mut out = empties::<8>();
        assert_eq!(c.consume(&mut out[..3]), 3);
        assert_eq!(out[..3].iter().map(|d| d.addr()).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(p.produce(&mut [d(6), d(7), d(8)]), 3);
        assert_eq!(c.consume(&mut out), 4);
        assert_eq!(out[..4].iter().map(|d| d.addr()).collect::<Vec<_>>(), [4, 6, 7, 8]);
        assert_eq!(c.consume(&mut out), 0);
    }

    #[test]
    fn carries_every_descriptor_across_threads() {
        let (mut p, mut c) = desc_ring(64);
        const N: u64 = 200_000;
        let producer = std::thread::spawn(move || {
            let mut next = 0;
            while next < N {
                let mut batch: Vec<Desc> = (next..(next + 16).min(N)).map(d).collect();
                next += p.produce(&mut batch) as u64;
            }
        });
        let mut expect = 0;
        let mut out = empties::<32>();
        while expect < N {
            let n = c.consume(&mut out);
            for desc in &out[..n] {
                assert_eq!(desc.addr(), expect);
                expect += 1;
            }
        }
        producer.join().unwrap();
    }
}
