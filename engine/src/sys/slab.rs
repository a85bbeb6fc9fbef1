//! The in-memory port's frame memory: one slab of fixed-size frames shared
//! by both ends of a pair, with a lock-free pool of free frames.

use crate::port::{Desc, MemoryTag};
use crossbeam_queue::ArrayQueue;
use std::cell::UnsafeCell;
use std::sync::Arc;

pub(crate) struct Slab {
    memory: Box<[UnsafeCell<u8>]>,
    frame_size: usize,
    /// `frame_size - 1` when it is a power of two (a mask finds a frame's
    /// start without a division on every frame access), else 0.
    pow2_mask: usize,
    free: ArrayQueue<u64>,
    tag: MemoryTag,
}

// SAFETY: the slab's bytes are only reached through `Slab::frame_mut`, which
// takes a descriptor: the one right to its frame (only `Slab::alloc` makes
// descriptors of this slab, and they are never copied), so no frame has two
// users at once. Descriptors move between threads through the rings and the
// free queue, which order the accesses (Release/Acquire).
unsafe impl Sync for Slab {}
// SAFETY: as above; the memory itself is plain bytes.
unsafe impl Send for Slab {}

impl Slab {
    pub(crate) fn new(frame_count: u32, frame_size: u32) -> Arc<Slab> {
        let frame_size = frame_size.max(64) as usize;
        let count = frame_count.max(1) as usize;
        let memory = (0..frame_size * count).map(|_| UnsafeCell::new(0)).collect();
        let free = ArrayQueue::new(count);
        for i in 0..count {
            // Cannot fail: the queue holds exactly `count` entries.
            let _ = free.push((i * frame_size) as u64);
        }
        let pow2_mask = if frame_size.is_power_of_two() { frame_size - 1 } else { 0 };
        Arc::new(Slab { memory, frame_size, pow2_mask, free, tag: MemoryTag::fresh() })
    }

    pub(crate) fn frame_size(&self) -> usize {
        self.frame_size
    }

    #[cfg(test)]
    pub(crate) fn tag(&self) -> MemoryTag {
        self.tag
    }

    pub(crate) fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// A free frame, if any, as a descriptor with length 0.
    #[inline]
    pub(crate) fn alloc(&self) -> Option<Desc> {
        self.free.pop().map(|addr| Desc::new(self.tag, addr, 0))
    }

    /// Takes the frame back into the pool; empty and foreign descriptors
    /// are ignored.
    #[inline]
    pub(crate) fn release(&self, desc: Desc) {
        if !desc.belongs_to(self.tag) {
            return;
        }
        if let Some(start) = self.frame_start(desc.addr()) {
            // Cannot overflow: the pool holds every frame and each frame is
            // in at most one place at a time.
            let _ = self.free.push(start as u64);
        }
    }

    /// Start of the frame that holds `addr`, if `addr` lies in the slab.
    #[inline]
    fn frame_start(&self, addr: u64) -> Option<usize> {
        let addr = usize::try_from(addr).ok()?;
        if addr >= self.memory.len() {
            return None;
        }
        Some(if self.pow2_mask != 0 { addr & !self.pow2_mask } else { addr - addr % self.frame_size })
    }

    /// The bytes of `desc`'s frame from its address on; empty for an empty
    /// or foreign descriptor. `&mut` on the caller's side (the port) keeps
    /// one slice alive per port at a time.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn frame_mut(&self, desc: &Desc) -> &mut [u8] {
        if !desc.belongs_to(self.tag) {
            return &mut [];
        }
        let Some(start) = self.frame_start(desc.addr()) else {
            return &mut [];
        };
        let addr = desc.addr() as usize;
        let len = self.frame_size - (addr - start);
        let cell = &self.memory[addr];
        // SAFETY: `addr..addr + len` lies inside one frame of the slab
        // (checked by `frame_start`); `UnsafeCell<u8>` has the layout of `u8`,
        // so the cells are contiguous bytes; `desc` carries this slab's tag,
        // and a descriptor is the one right to its frame, so nobody else
        // touches these bytes while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(cell.get(), len) }
    }
}
