//! The `Port` trait: burst receive and transmit of frame descriptors.
//!
//! A port owns a region of frame memory (the UMEM for AF_XDP, a slab for the
//! in-memory port). Frames move between the port and its user as [`Desc`]s;
//! whoever holds a descriptor owns that frame until it hands it back through
//! [`Port::tx_burst`] or [`Port::release`]. That ownership rule is what lets a
//! worker rewrite a received frame in place and send it back without a copy.

/// A frame descriptor: where a frame sits in its port's memory and how many
/// bytes of it are the packet.
///
/// A descriptor is the right to use one frame. Only a port makes one (safe
/// code cannot forge an address), it is neither `Copy` nor `Clone`, and
/// handing it back through [`Port::tx_burst`] or [`Port::release`] takes it
/// out of the caller's slot, leaving [`Desc::default`] (an empty descriptor
/// that names no frame) behind. So one frame never has two holders, and a
/// second release of the same slot releases nothing:
///
/// ```compile_fail
/// use vipdrift_engine::{Desc, MemPort, MemPortConfig, Port};
/// let mut port = MemPort::loopback(MemPortConfig::default());
/// let mut descs = [Desc::default()];
/// port.alloc(&mut descs);
/// let copy = descs[0].clone(); // a second holder of the same frame: refused
/// ```
///
/// Each port's memory has its own owner tag, carried by the descriptor: a
/// descriptor shown to another port's [`Port::frame_mut`] gets no memory, and
/// one released to another port is ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Desc {
    addr: u64,
    len: u32,
    /// The memory the frame belongs to; 0 for an empty descriptor.
    owner: u32,
}

impl Desc {
    /// A descriptor for a frame of the memory tagged `owner` (a port's own
    /// business: it alone knows which frames it holds).
    #[inline]
    pub(crate) fn new(owner: MemoryTag, addr: u64, len: u32) -> Desc {
        Desc { addr, len, owner: owner.0 }
    }

    /// Offset of the packet's first byte in the port's frame memory.
    #[inline]
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Length of the packet in bytes.
    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the packet has no bytes (true of an empty descriptor).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the packet's length (after writing a frame). A length past the
    /// frame is clamped by the AF_XDP port and dropped as oversize by a
    /// worker receiving it from the in-memory port.
    #[inline]
    pub fn set_len(&mut self, len: u32) {
        self.len = len;
    }

    /// Whether this descriptor names a frame of the memory tagged `owner`.
    #[inline]
    pub(crate) fn belongs_to(&self, owner: MemoryTag) -> bool {
        self.owner == owner.0
    }

    /// The descriptor as plain data, for a ring slot that carries it.
    #[inline]
    pub(crate) fn into_raw(self) -> RawDesc {
        RawDesc { addr: self.addr, len: self.len, owner: self.owner }
    }

    /// The descriptor back from a ring slot. Each `into_raw` value must come
    /// back at most once (a ring reads each slot it was given once), or one
    /// frame would have two holders.
    #[inline]
    pub(crate) fn from_raw(raw: RawDesc) -> Desc {
        Desc { addr: raw.addr, len: raw.len, owner: raw.owner }
    }
}

/// A descriptor in transit: plain, copyable data that only a ring holds,
/// so a reader need not write the slot back to empty it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawDesc {
    addr: u64,
    len: u32,
    owner: u32,
}

/// The owner tag of one region of frame memory (a UMEM, a slab): unique in
/// the process, never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemoryTag(u32);

impl MemoryTag {
    /// A tag no other memory in this process has.
    pub(crate) fn fresh() -> MemoryTag {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(1);
        // 4 billion port memories in one process would wrap: far beyond any use.
        MemoryTag(NEXT.fetch_add(1, Ordering::Relaxed).max(1))
    }
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
    /// Frames the kernel handed back as transmitted (the completion ring).
    /// In copy mode this includes the ones it dropped ([`PortCounters::tx_kernel_dropped`]).
    pub tx_completed: u64,
    /// Frames the kernel took off the TX ring and dropped instead of
    /// sending (copy mode: the driver refused it, and the TX kick said EBUSY).
    pub tx_kernel_dropped: u64,
    /// The kernel's own statistics of the socket (`XDP_STATISTICS`), as last read.
    pub kernel: XdpSocketStats,
}

/// The kernel's statistics of one AF_XDP socket (`getsockopt(XDP_STATISTICS)`):
/// what it dropped or could not do on our behalf, since the socket was bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpSocketStats {
    /// Received frames dropped for other reasons (no room in the UMEM frame, say).
    pub rx_dropped: u64,
    /// Received frames dropped for an invalid fill-ring descriptor.
    pub rx_invalid_descs: u64,
    /// Frames to send dropped for an invalid TX-ring descriptor.
    pub tx_invalid_descs: u64,
    /// Received frames dropped because the RX ring was full (the worker is behind).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (no buffer for a frame).
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty when asked to send.
    pub tx_ring_empty_descs: u64,
}

impl XdpSocketStats {
    /// Each counter with its name, in output order.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("rx_dropped", self.rx_dropped),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_fill_ring_empty_descs", self.rx_fill_ring_empty_descs),
            ("tx_ring_empty_descs", self.tx_ring_empty_descs),
        ]
    }

    /// Adds another socket's statistics to these (for totals across queues).
    pub fn accumulate(&mut self, other: &XdpSocketStats) {
        let XdpSocketStats {
            rx_dropped,
            rx_invalid_descs,
            tx_invalid_descs,
            rx_ring_full,
            rx_fill_ring_empty_descs,
            tx_ring_empty_descs,
        } = *other;
        self.rx_dropped += rx_dropped;
        self.rx_invalid_descs += rx_invalid_descs;
        self.tx_invalid_descs += tx_invalid_descs;
        self.rx_ring_full += rx_ring_full;
        self.rx_fill_ring_empty_descs += rx_fill_ring_empty_descs;
        self.tx_ring_empty_descs += tx_ring_empty_descs;
    }

    /// Frames the kernel dropped on receive (the fill-ring-empty count is
    /// of events, not frames, and is left out).
    pub fn rx_lost(&self) -> u64 {
        self.rx_dropped + self.rx_invalid_descs + self.rx_ring_full
    }
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
    /// Receives up to `descs.len()` frames into the front of `descs`;
    /// returns how many. The caller now holds them. (A slot that still held
    /// a frame is overwritten: hand frames back before reusing their slots.)
    fn rx_burst(&mut self, descs: &mut [Desc]) -> usize;

    /// Queues frames for transmission and returns how many the port took:
    /// always a prefix of `descs`, each taken out of its slot (left empty).
    /// Frames not taken stay in their slots and still belong to the caller.
    fn tx_burst(&mut self, descs: &mut [Desc]) -> usize;

    /// Hands frames the caller is done with back to the port, which recycles
    /// them for reception; every slot is left empty. Empty descriptors and
    /// descriptors of another port's memory are ignored.
    fn release(&mut self, descs: &mut [Desc]);

    /// Takes up to `descs.len()` free frames for building outgoing packets;
    /// returns how many. Each comes back with `len == 0`.
    fn alloc(&mut self, descs: &mut [Desc]) -> usize;

    /// The memory of the frame `desc` holds, from its `addr` to the frame's
    /// end: empty for an empty descriptor or one of another port's memory.
    /// The `&mut self` borrow keeps it the only view of port memory at a time.
    fn frame_mut(&mut self, desc: &Desc) -> &mut [u8];

    /// Bytes a frame can hold from its `addr`.
    fn frame_capacity(&self) -> usize;

    /// Housekeeping between bursts: reap transmit completions, top up the
    /// fill ring, wake the kernel if (and only if) it asked.
    fn service(&mut self);

    /// The port's ring counters so far.
    fn counters(&self) -> PortCounters;

    /// Brings the counters that cost a system call to read (the kernel's
    /// socket statistics) up to date now; [`Port::service`] does it at a
    /// bounded rate, this is for a final count.
    fn sync_counters(&mut self) {}

    /// How the port is bound.
    fn bound_mode(&self) -> BoundMode;
}

impl std::fmt::Display for BoundMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
