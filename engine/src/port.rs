//! The `Port` trait: burst receive and transmit of frame descriptors.
//!
//! A port owns a region of frame memory (the UMEM for AF_XDP, a slab for the
//! in-memory port). Frames move between the port and its user as [`Desc`]s;
//! whoever holds a descriptor owns that frame until it hands it back through
//! [`Port::tx_burst`] or [`Port::release`]. That ownership rule is what lets a
//! worker rewrite a received frame in place and send it back without a copy.

/// A frame descriptor: where a frame sits in its port's memory and how many
/// bytes of it are the packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// Offset of the packet's first byte in the port's frame memory.
    pub addr: u64,
    /// Length of the packet in bytes.
    pub len: u32,
}

/// Counters a port keeps about its own rings (the worker folds them into the
/// queue's statistics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Times the port found no free frame to put on the fill ring while the
    /// ring had room: the kernel may be dropping for want of buffers.
    pub fill_ring_empty: u64,
    /// Receive-side wakeup syscalls (made only when the kernel asked).
    pub rx_wakeups: u64,
    /// Transmit-side wakeup syscalls (made only when the kernel asked).
    pub tx_wakeups: u64,
}

/// How a port is bound to its device; the AF_XDP port reports what it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum BoundMode {
    /// AF_XDP zero-copy: the driver DMAs into the UMEM.
    ZeroCopy,
    /// AF_XDP copy mode with a native (driver) XDP program.
    #[default]
    Copy,
    /// AF_XDP over generic (skb) XDP.
    Skb,
    /// The in-memory port.
    Memory,
}

impl BoundMode {
    /// The name used in output and JSON: zero-copy, copy, skb, memory.
    pub fn name(self) -> &'static str {
        match self {
            BoundMode::ZeroCopy => "zero-copy",
            BoundMode::Copy => "copy",
            BoundMode::Skb => "skb",
            BoundMode::Memory => "memory",
        }
    }
}

/// Burst RX/TX of frame descriptors over some frame memory.
///
/// Workers are generic over `Port` (static dispatch), so the in-memory port
/// makes all the per-packet logic testable and benchmarkable without
/// privileges.
pub trait Port {
    /// Receives up to `descs.len()` frames into `descs`; returns how many.
    /// The caller now owns them.
    fn rx_burst(&mut self, descs: &mut [Desc]) -> usize;

    /// Queues frames for transmission and returns how many the port took:
    /// always a prefix of `descs`. Frames not taken still belong to the caller.
    fn tx_burst(&mut self, descs: &[Desc]) -> usize;

    /// Hands frames the caller is done with back to the port, which recycles
    /// them for reception.
    fn release(&mut self, descs: &[Desc]);

    /// Takes up to `descs.len()` free frames for building outgoing packets;
    /// returns how many. Each comes back with `len == 0`.
    fn alloc(&mut self, descs: &mut [Desc]) -> usize;

    /// The memory of a frame, [`Port::frame_capacity`] bytes from `desc.addr`.
    ///
    /// # Safety
    /// `desc` must have come from this port (through `rx_burst` or `alloc`)
    /// and must not have been handed back yet: the port relies on the
    /// descriptor's holder being the frame's only user.
    unsafe fn frame_mut(&mut self, desc: &Desc) -> &mut [u8];

    /// Bytes a frame can hold from its `addr`.
    fn frame_capacity(&self) -> usize;

    /// Housekeeping between bursts: reap transmit completions, top up the
    /// fill ring, wake the kernel if (and only if) it asked.
    fn service(&mut self);

    /// The port's ring counters so far.
    fn counters(&self) -> PortCounters;

    /// How the port is bound.
    fn bound_mode(&self) -> BoundMode;
}

impl std::fmt::Display for BoundMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
