//! The in-memory port: a connected pair (or a loopback) sharing one slab of
//! frame memory, so a frame crosses from one end to the other by descriptor,
//! as it would inside a shared UMEM. For tests, benchmarks and embedders that
//! want the engine without a NIC.

use crate::port::{BoundMode, Desc, Port, PortCounters};
use crate::ring::{desc_ring, RingConsumer, RingProducer};
use crossbeam_queue::ArrayQueue;
use std::cell::UnsafeCell;
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

struct Slab {
    memory: Box<[UnsafeCell<u8>]>,
    frame_size: usize,
    free: ArrayQueue<u64>,
}

// SAFETY: the slab's bytes are only reached through `MemPort::frame_mut`,
// whose contract makes the holder of a descriptor the only user of that
// frame; descriptors move between threads through the rings and the free
// queue, which order the accesses (Release/Acquire).
unsafe impl Sync for Slab {}
// SAFETY: as above; the memory itself is plain bytes.
unsafe impl Send for Slab {}

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
        let slab = Slab::new(config);
        let (a_tx, b_rx) = desc_ring(config.ring_size as usize);
        let (b_tx, a_rx) = desc_ring(config.ring_size as usize);
        (
            MemPort { slab: slab.clone(), rx: a_rx, tx: a_tx, counters: PortCounters::default() },
            MemPort { slab, rx: b_rx, tx: b_tx, counters: PortCounters::default() },
        )
    }

    /// A port whose transmitted frames come back to its own receive side.
    pub fn loopback(config: MemPortConfig) -> MemPort {
        let slab = Slab::new(config);
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
        // SAFETY: `desc` was just allocated from this port and not handed back.
        let frame = unsafe { self.frame_mut(&desc[0]) };
        frame[..bytes.len()].copy_from_slice(bytes);
        desc[0].len = bytes.len() as u32;
        if self.tx_burst(&desc) == 1 {
            true
        } else {
            self.release(&desc);
            false
        }
    }

    /// Receives one frame and returns a copy of its bytes (tests' convenience).
    pub fn recv_bytes(&mut self) -> Option<Vec<u8>> {
        let mut desc = [Desc::default()];
        if self.rx_burst(&mut desc) == 0 {
            return None;
        }
        let len = desc[0].len as usize;
        // SAFETY: `desc` was just received from this port and not handed back.
        let bytes = unsafe { self.frame_mut(&desc[0]) }[..len].to_vec();
        self.release(&desc);
        Some(bytes)
    }

    /// Receives one frame, shows its bytes to `look` and recycles it, without
    /// copying; false when nothing was waiting (benchmarks' convenience).
    pub fn recv_bytes_into(&mut self, look: &mut dyn FnMut(&[u8])) -> bool {
        let mut desc = [Desc::default()];
        if self.rx_burst(&mut desc) == 0 {
            return false;
        }
        let len = desc[0].len as usize;
        // SAFETY: `desc` was just received from this port and is handed back below.
        look(&unsafe { self.frame_mut(&desc[0]) }[..len]);
        self.release(&desc);
        true
    }

    /// Frames currently in the shared free pool.
    pub fn free_frames(&self) -> usize {
        self.slab.free.len()
    }
}

impl Slab {
    fn new(config: MemPortConfig) -> Arc<Slab> {
        let frame_size = config.frame_size.max(64) as usize;
        let count = config.frame_count.max(1) as usize;
        let memory = (0..frame_size * count).map(|_| UnsafeCell::new(0)).collect();
        let free = ArrayQueue::new(count);
        for i in 0..count {
            // Cannot fail: the queue holds exactly `count` entries.
            let _ = free.push((i * frame_size) as u64);
        }
        Arc::new(Slab { memory, frame_size, free })
    }

    /// Start of the frame that holds `addr`, if `addr` lies in the slab.
    #[inline]
    fn frame_start(&self, addr: u64) -> Option<usize> {
        let addr = usize::try_from(addr).ok()?;
        (addr < self.memory.len()).then(|| addr - addr % self.frame_size)
    }
}

impl Port for MemPort {
    #[inline]
    fn rx_burst(&mut self, descs: &mut [Desc]) -> usize {
        self.rx.consume(descs)
    }

    #[inline]
    fn tx_burst(&mut self, descs: &[Desc]) -> usize {
        self.tx.produce(descs)
    }

    #[inline]
    fn release(&mut self, descs: &[Desc]) {
        for desc in descs {
            if let Some(start) = self.slab.frame_start(desc.addr) {
                // Cannot overflow: the pool holds every frame and each frame
                // is in at most one place at a time.
                let _ = self.slab.free.push(start as u64);
            }
        }
    }

    #[inline]
    fn alloc(&mut self, descs: &mut [Desc]) -> usize {
        let mut n = 0;
        for desc in descs.iter_mut() {
            match self.slab.free.pop() {
                Some(addr) => {
                    *desc = Desc { addr, len: 0 };
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    #[inline]
    unsafe fn frame_mut(&mut self, desc: &Desc) -> &mut [u8] {
        let Some(start) = self.slab.frame_start(desc.addr) else {
            return &mut [];
        };
        let offset = desc.addr as usize - start;
        let len = self.slab.frame_size - offset;
        let cell = &self.slab.memory[desc.addr as usize];
        // SAFETY: `addr..addr + len` lies inside one frame of the slab
        // (checked by `frame_start`); `UnsafeCell<u8>` has the layout of `u8`,
        // so the cells are contiguous bytes; the caller's contract makes it
        // the only user of this frame while it holds the descriptor.
        unsafe { std::slice::from_raw_parts_mut(cell.get(), len) }
    }

    #[inline]
    fn frame_capacity(&self) -> usize {
        self.slab.frame_size
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
        // SAFETY: deliberately out of range: the port must answer with an
        // empty slice, not memory outside the slab.
        assert!(unsafe { a.frame_mut(&Desc { addr: 1 << 40, len: 60 }) }.is_empty());
    }
}
