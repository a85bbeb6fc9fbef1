//! The in-memory port: a connected pair (or a loopback) sharing one slab of
//! frame memory, so a frame crosses from one end to the other by descriptor,
//! as it would inside a shared UMEM. For tests, benchmarks and embedders that
//! want the engine without a NIC.

use crate::port::{BoundMode, Desc, Port, PortCounters};
use crate::sys::ring::{desc_ring, RingConsumer, RingProducer};
use crate::sys::slab::Slab;
use std::sync::Arc;

/// Sizes of an in-memory port pair.
#[derive(Clone, Copy, Debug)]
pub struct MemPortConfig {
    /// Frames in the shared slab (both ends draw from one free pool).
    pub frame_count: u32,
    /// Bytes per frame.
    pub frame_size: u32,
    /// Descriptors each direction's ring holds.
    pub ring_size: u32,
}

impl Default for MemPortConfig {
    fn default() -> Self {
        MemPortConfig { frame_count: 4096, frame_size: 2048, ring_size: 1024 }
    }
}

/// One end of an in-memory link.
pub struct MemPort {
    slab: Arc<Slab>,
    rx: RingConsumer,
    tx: RingProducer,
    counters: PortCounters,
}

impl MemPort {
    /// Two ports wired to each other: what one transmits, the other receives.
    pub fn pair(config: MemPortConfig) -> (MemPort, MemPort) {
        let slab = Slab::new(config.frame_count, config.frame_size);
        let (a_tx, b_rx) = desc_ring(config.ring_size as usize);
        let (b_tx, a_rx) = desc_ring(config.ring_size as usize);
        (
            MemPort { slab: slab.clone(), rx: a_rx, tx: a_tx, counters: PortCounters::default() },
            MemPort { slab, rx: b_rx, tx: b_tx, counters: PortCounters::default() },
        )
    }

    /// A port whose transmitted frames come back to its own receive side.
    pub fn loopback(config: MemPortConfig) -> MemPort {
        let slab = Slab::new(config.frame_count, config.frame_size);
        let (tx, rx) = desc_ring(config.ring_size as usize);
        MemPort { slab, rx, tx, counters: PortCounters::default() }
    }

    /// Copies `bytes` into a free frame and transmits it; false when no frame
    /// was free, the frame is too large, or the ring was full. A convenience
    /// for tests and embedders injecting traffic (it is not the fast path).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.frame_capacity() {
            return false;
        }
        let mut desc = [Desc::default()];
        if self.alloc(&mut desc) == 0 {
            return false;
        }
        self.frame_mut(&desc[0])[..bytes.len()].copy_from_slice(bytes);
        desc[0].set_len(bytes.len() as u32);
        if self.tx_burst(&mut desc) == 1 {
            true
        } else {
            self.release(&mut desc);
            false
        }
    }

    /// Receives one frame and returns a copy of its bytes (tests' convenience).
    pub fn recv_bytes(&mut self) -> Option<Vec<u8>> {
        let mut desc = [Desc::default()];
        if self.rx_burst(&mut desc) == 0 {
            return None;
        }
        let frame = self.frame_mut(&desc[0]);
        let bytes = frame[..(desc[0].len() as usize).min(frame.len())].to_vec();
        self.release(&mut desc);
        Some(bytes)
    }

    /// Receives one frame, shows its bytes to `look` and recycles it, without
    /// copying; false when nothing was waiting (benchmarks' convenience).
    pub fn recv_bytes_into(&mut self, look: &mut dyn FnMut(&[u8])) -> bool {
        let mut desc = [Desc::default()];
        if self.rx_burst(&mut desc) == 0 {
            return false;
        }
        let len = desc[0].len() as usize;
        let frame = self.frame_mut(&desc[0]);
        look(&frame[..len.min(frame.len())]);
        self.release(&mut desc);
        true
    }

    /// Frames currently in the shared free pool.
    pub fn free_frames(&self) -> usize {
        self.slab.free_frames()
    }
}

impl Port for MemPort {
    #[inline]
    fn rx_burst(&mut self, descs: &mut [Desc]) -> usize {
        self.rx.consume(descs)
    }

    #[inline]
    fn tx_burst(&mut self, descs: &mut [Desc]) -> usize {
        // Lengths past the frame are the receiver's to clamp (the worker
        // drops them as oversize); checking here would cost a pass per burst.
        self.tx.produce(descs)
    }

    #[inline]
    fn release(&mut self, descs: &mut [Desc]) {
        for slot in descs {
            self.slab.release(std::mem::take(slot));
        }
    }

    #[inline]
    fn alloc(&mut self, descs: &mut [Desc]) -> usize {
        let mut n = 0;
        for desc in descs.iter_mut() {
            match self.slab.alloc() {
                Some(frame) => {
                    *desc = frame;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    #[inline]
    fn frame_mut(&mut self, desc: &Desc) -> &mut [u8] {
        self.slab.frame_mut(desc)
    }

    #[inline]
    fn frame_capacity(&self) -> usize {
        self.slab.frame_size()
    }

    #[inline]
    fn service(&mut self) {}

    fn counters(&self) -> PortCounters {
        self.counters
    }

    fn bound_mode(&self) -> BoundMode {
        BoundMode::Memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_carries_bytes_both_ways_and_returns_frames_to_the_pool() {
        let (mut a, mut b) = MemPort::pair(MemPortConfig { frame_count: 8, ..Default::default() });
        assert!(a.send_bytes(b"hello"));
        assert_eq!(b.recv_bytes().as_deref(), Some(&b"hello"[..]));
        assert!(b.send_bytes(b"back"));
        assert_eq!(a.recv_bytes().as_deref(), Some(&b"back"[..]));
        assert_eq!(a.free_frames(), 8);
    }

    #[test]
    fn refuses_oversize_and_runs_out_of_frames_cleanly() {
        let (mut a, _b) = MemPort::pair(MemPortConfig { frame_count: 2, frame_size: 128, ring_size: 8 });
        assert!(!a.send_bytes(&[0; 129]));
        assert!(a.send_bytes(&[0; 64]));
        assert!(a.send_bytes(&[0; 64]));
        assert!(!a.send_bytes(&[0; 64]), "no free frame left");
    }

    #[test]
    fn a_forged_descriptor_gets_no_memory() {
        let mut a = MemPort::loopback(MemPortConfig { frame_count: 2, frame_size: 128, ring_size: 8 });
        assert!(a.frame_mut(&Desc::new(a.slab.tag(), 1 << 40, 60)).is_empty(), "outside the slab");
        let (mut other, _) = MemPort::pair(MemPortConfig::default());
        let mut theirs = [Desc::default()];
        assert_eq!(other.alloc(&mut theirs), 1);
        assert!(a.frame_mut(&theirs[0]).is_empty(), "another slab's frame");
        assert!(a.frame_mut(&Desc::default()).is_empty(), "an empty descriptor");
    }
}
