//! The AF_XDP port, on xsk-rs: one socket per (interface, queue) with its
//! own UMEM. All of the engine's AF_XDP handling lives in this file.
//!
//! Frame accounting: every UMEM frame is at any time in exactly one of the
//! free list, the fill ring (or RX ring), the caller's hands, or the TX ring
//! (or completion ring). Completions are reaped back into the free list and
//! the fill ring is topped up from it between bursts, so no frame leaks;
//! [`AfXdpPort::frames_held`] lets a test check that.

use crate::port::{BoundMode, Desc, MemoryTag, Port, PortCounters, XdpSocketStats};
use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use xsk_rs::config::{BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig, XdpFlags};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// The bind mode asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy, else copy, else skb: the first that binds.
    #[default]
    Auto,
    /// Zero-copy only (driver support needed).
    ZeroCopy,
    /// Copy mode with a native (driver) XDP program.
    Copy,
    /// Copy mode over generic (skb) XDP: works on any interface, slowest.
    Skb,
}

impl std::str::FromStr for BindMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BindMode::Auto),
            "zero-copy" | "zerocopy" | "zc" => Ok(BindMode::ZeroCopy),
            "copy" => Ok(BindMode::Copy),
            "skb" | "generic" => Ok(BindMode::Skb),
            other => Err(format!("`{other}` is not a bind mode; expected auto, zero-copy, copy or skb")),
        }
    }
}

/// How to open an AF_XDP port.
#[derive(Clone, Debug)]
pub struct AfXdpConfig {
    /// Interface name.
    pub iface: String,
    /// NIC queue to bind.
    pub queue: u32,
    /// Frames in the UMEM.
    pub frame_count: u32,
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    /// Fill ring entries (power of two).
    pub fill_ring: u32,
    /// Completion ring entries (power of two).
    pub comp_ring: u32,
    /// RX ring entries (power of two).
    pub rx_ring: u32,
    /// TX ring entries (power of two).
    pub tx_ring: u32,
    /// The bind mode asked for.
    pub bind: BindMode,
    /// Let libxdp load its default redirect-everything program. Off when the
    /// caller attaches its own program and puts the socket in its XSKMAP.
    pub load_default_program: bool,
}

impl AfXdpConfig {
    /// Defaults for `iface` and `queue`: 8192 frames of 2048 bytes, 2048-entry rings, auto bind.
    pub fn new(iface: &str, queue: u32) -> AfXdpConfig {
        AfXdpConfig {
            iface: iface.to_owned(),
            queue,
            frame_count: 8192,
            frame_size: 2048,
            fill_ring: 2048,
            comp_ring: 2048,
            rx_ring: 2048,
            tx_ring: 2048,
            bind: BindMode::Auto,
            load_default_program: true,
        }
    }
}

/// Why an AF_XDP port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// No such interface in this network namespace.
    #[error("interface `{0}` does not exist in this network namespace (see `ip link`)")]
    NoSuchInterface(String),
    /// The process lacks the privileges.
    #[error("not permitted to open an AF_XDP socket on `{iface}`: run as root (needs CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)")]
    NotPermitted {
        /// Interface.
        iface: String,
    },
    /// The queue does not exist on the interface.
    #[error("interface `{iface}` has no queue {queue} (see `ethtool -l {iface}`)")]
    NoSuchQueue {
        /// Interface.
        iface: String,
        /// Queue asked for.
        queue: u32,
    },
    /// Every bind mode tried failed.
    #[error("could not bind an AF_XDP socket to `{iface}` queue {queue}: {attempts}")]
    Bind {
        /// Interface.
        iface: String,
        /// Queue.
        queue: u32,
        /// Each mode tried and why it failed.
        attempts: String,
    },
    /// A size in the configuration is unusable.
    #[error("invalid AF_XDP configuration: {0}")]
    Config(String),
}

/// Where the port's frames are, for leak checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameAccounting {
    /// Frames in the UMEM.
    pub total: u32,
    /// In the free list.
    pub free: u32,
    /// Given to the kernel for reception and not yet received.
    pub in_fill: u32,
    /// Given to the kernel for transmission and not yet completed.
    pub in_tx: u32,
}

/// An AF_XDP socket on one (interface, queue), with its own UMEM.
pub struct AfXdpPort {
    // Field order matters for drop: the rings before the UMEM.
    tx: TxQueue,
    rx: RxQueue,
    fill: FillQueue,
    comp: CompQueue,
    umem: Umem,
    /// One descriptor per UMEM frame, pointing at the frame's data start.
    frames: Vec<FrameDesc>,
    /// Indices of free frames; capacity = frame count, never grows.
    free: Vec<u32>,
    scratch: Vec<FrameDesc>,
    frame_size: u64,
    data_start: u64,
    in_fill: u32,
    in_tx: u32,
    mode: BoundMode,
    counters: PortCounters,
    fd: i32,
    tag: MemoryTag,
    /// Services since the kernel's statistics were last considered.
    services: u32,
    /// When the kernel's statistics are read next.
    next_stats: Instant,
}

/// How often [`Port::service`] reads the kernel's socket statistics (one
/// getsockopt): bounded, whatever the burst rate.
const KERNEL_STATS_EVERY: Duration = Duration::from_millis(100);
/// Kicks at most to empty the TX ring for a final count.
const FINAL_KICKS: usize = 1024;
/// Services between two looks at the clock for that.
const SERVICES_PER_CLOCK_LOOK: u32 = 64;

/// Retries of the transmit kick when the kernel sends only part of the ring
/// per call (copy mode sends at most 32 frames per syscall).
const TX_KICK_RETRIES: usize = 8;
/// Retries of a bind that found the queue busy (50 ms apart).
const BUSY_RETRIES: u32 = 40;

impl AfXdpPort {
    /// Opens the port, trying bind modes as `config.bind` says; the mode it
    /// got is [`Port::bound_mode`].
    pub fn open(config: &AfXdpConfig) -> Result<AfXdpPort, AfXdpError> {
        let name = CString::new(config.iface.clone()).map_err(|_| AfXdpError::NoSuchInterface(config.iface.clone()))?;
        if super::nic::ifindex(&config.iface).is_none() {
            return Err(AfXdpError::NoSuchInterface(config.iface.clone()));
        }
        if config.frame_size != 2048 && config.frame_size != 4096 {
            return Err(AfXdpError::Config(format!(
                "frame size {} is not supported; use 2048 or 4096",
                config.frame_size
            )));
        }
        for (what, n) in [
            ("fill ring", config.fill_ring),
            ("completion ring", config.comp_ring),
            ("rx ring", config.rx_ring),
            ("tx ring", config.tx_ring),
        ] {
            if !n.is_power_of_two() {
                return Err(AfXdpError::Config(format!("{what} size {n} is not a power of two")));
            }
        }
        if config.frame_count < config.fill_ring * 2 {
            return Err(AfXdpError::Config(format!(
                "{} frames cannot fill a {}-entry fill ring and leave as many for transmit; use at least {}",
                config.frame_count,
                config.fill_ring,
                config.fill_ring * 2
            )));
        }
        let modes: &[BoundMode] = match config.bind {
            BindMode::Auto => &[BoundMode::ZeroCopy, BoundMode::Copy, BoundMode::Skb],
            BindMode::ZeroCopy => &[BoundMode::ZeroCopy],
            BindMode::Copy => &[BoundMode::Copy],
            BindMode::Skb => &[BoundMode::Skb],
        };
        let mut attempts = Vec::new();
        for &mode in modes {
            match Self::open_mode_retrying_busy(config, &name, mode) {
                Ok(port) => return Ok(port),
                Err(err) => match err.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => {
                        return Err(AfXdpError::NotPermitted { iface: config.iface.clone() })
                    }
                    Some(libc::EINVAL) if modes.len() == 1 || mode == BoundMode::Skb => {
                        if config.queue > 0 {
                            return Err(AfXdpError::NoSuchQueue { iface: config.iface.clone(), queue: config.queue });
                        }
                        attempts.push(format!("{}: {err}", mode.name()));
                    }
                    _ => attempts.push(format!("{}: {err}", mode.name())),
                },
            }
        }
        Err(AfXdpError::Bind { iface: config.iface.clone(), queue: config.queue, attempts: attempts.join("; ") })
    }

    /// The kernel releases a closed socket's hold on a queue asynchronously,
    /// so a port reopened right after its previous owner exited can see
    /// EBUSY for a moment: retry that, briefly.
    fn open_mode_retrying_busy(config: &AfXdpConfig, name: &CString, mode: BoundMode) -> io::Result<AfXdpPort> {
        let mut tries = 0;
        loop {
            match Self::open_mode(config, name, mode) {
                Err(err) if err.raw_os_error() == Some(libc::EBUSY) && tries < BUSY_RETRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn open_mode(config: &AfXdpConfig, name: &CString, mode: BoundMode) -> io::Result<AfXdpPort> {
        let invalid = |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let queue_size = |n: u32| QueueSize::new(n).map_err(|e| invalid(&e));
        let umem_config = UmemConfig::builder()
            .frame_size(FrameSize::new(config.frame_size).map_err(|e| invalid(&e))?)
            .fill_queue_size(queue_size(config.fill_ring)?)
            .comp_queue_size(queue_size(config.comp_ring)?)
            .frame_headroom(0)
            .build()
            .map_err(|e| invalid(&e))?;
        let frame_count = NonZeroU32::new(config.frame_count).ok_or_else(|| invalid(&"zero frames"))?;
        let (umem, frames) = Umem::new(umem_config, frame_count, false).map_err(into_io)?;

        let (xdp_flags, bind_flags) = match mode {
            BoundMode::ZeroCopy => (XdpFlags::XDP_FLAGS_DRV_MODE, BindFlags::XDP_ZEROCOPY),
            BoundMode::Copy => (XdpFlags::XDP_FLAGS_DRV_MODE, BindFlags::XDP_COPY),
            _ => (XdpFlags::XDP_FLAGS_SKB_MODE, BindFlags::XDP_COPY),
        };
        let mut libxdp_flags = LibxdpFlags::empty();
        if !config.load_default_program {
            libxdp_flags |= LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD;
        }
        let socket_config = SocketConfig::builder()
            .rx_queue_size(queue_size(config.rx_ring)?)
            .tx_queue_size(queue_size(config.tx_ring)?)
            .xdp_flags(xdp_flags)
            .bind_flags(bind_flags | BindFlags::XDP_USE_NEED_WAKEUP)
            .libxdp_flags(libxdp_flags)
            .build();
        let iface = Interface::new(name.clone());
        // SAFETY: the UMEM outlives the socket: both are fields of the port,
        // and the rings (declared first) drop before the UMEM.
        let (tx, rx, rings) = unsafe { Socket::new(socket_config, &umem, &iface, config.queue) }.map_err(into_io)?;
        let (fill, comp) = rings.ok_or_else(|| io::Error::other("the UMEM came without fill and completion rings"))?;
        let fd = rx.fd().as_raw_fd();
        let frame_size = config.frame_size as u64;
        let data_start = frames.first().map(|f| f.addr() as u64 % frame_size).unwrap_or(0);
        let mut free = Vec::with_capacity(frames.len());
        free.extend((0..frames.len() as u32).rev());
        let scratch = vec![FrameDesc::default(); config.fill_ring.max(config.comp_ring).max(config.tx_ring) as usize];
        let mut port = AfXdpPort {
            tx,
            rx,
            fill,
            comp,
            umem,
            frames,
            free,
            scratch,
            frame_size,
            data_start,
            in_fill: 0,
            in_tx: 0,
            mode,
            counters: PortCounters::default(),
            fd,
            tag: MemoryTag::fresh(),
            services: 0,
            next_stats: Instant::now(),
        };
        port.top_up_fill();
        Ok(port)
    }

    /// Where the frames are now; `total - free - in_fill - in_tx` are held by the user.
    pub fn frame_accounting(&self) -> FrameAccounting {
        FrameAccounting {
            total: self.frames.len() as u32,
            free: self.free.len() as u32,
            in_fill: self.in_fill,
            in_tx: self.in_tx,
        }
    }

    /// Frames neither free nor with the kernel: held by the user (a leak if
    /// the user holds none).
    pub fn frames_held(&self) -> u32 {
        let a = self.frame_accounting();
        a.total - a.free - a.in_fill - a.in_tx
    }

    /// The socket's file descriptor (to put in an XSKMAP).
    pub fn raw_fd(&self) -> i32 {
        self.fd
    }

    #[inline]
    fn index_of(&self, addr: u64) -> Option<usize> {
        let index = (addr / self.frame_size) as usize;
        (index < self.frames.len()).then_some(index)
    }

    #[inline]
    fn reap_completions(&mut self) {
        if self.in_tx == 0 {
            return;
        }
        let want = self.scratch.len().min(self.in_tx as usize);
        // SAFETY: the completion ring only returns frames of this UMEM that we
        // put on the TX ring.
        let n = unsafe { self.comp.consume(&mut self.scratch[..want]) };
        for desc in &self.scratch[..n] {
            let index = (desc.addr() as u64 / self.frame_size) as u32;
            self.free.push(index);
        }
        self.in_tx -= n as u32;
        self.counters.tx_completed += n as u64;
    }

    /// Reads the kernel's statistics of the socket (one getsockopt).
    fn read_kernel_stats(&mut self) {
        // A failed read keeps the last values: the counters only ever grow.
        if let Ok(s) = self.rx.fd().xdp_statistics() {
            self.counters.kernel = XdpSocketStats {
                rx_dropped: s.rx_dropped(),
                rx_invalid_descs: s.rx_invalid_descs(),
                tx_invalid_descs: s.tx_invalid_descs(),
                rx_ring_full: s.rx_ring_full(),
                rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs(),
                tx_ring_empty_descs: s.tx_ring_empty_descs(),
            };
        }
    }

    #[inline]
    fn top_up_fill(&mut self) {
        let room = self.fill.nb_free(self.scratch.len() as u32) as usize;
        if room == 0 {
            return;
        }
        let n = room.min(self.free.len()).min(self.scratch.len());
        if n == 0 {
            self.counters.fill_ring_empty += 1;
            return;
        }
        for slot in 0..n {
            let index = self.free[self.free.len() - 1 - slot] as usize;
            self.scratch[slot] = self.frames[index];
        }
        // SAFETY: these frames belong to this UMEM and are free: nobody else
        // uses them until the kernel hands them back through the RX ring.
        let produced = unsafe { self.fill.produce(&self.scratch[..n]) };
        self.free.truncate(self.free.len() - produced);
        self.in_fill += produced as u32;
    }

    /// Asks the kernel to transmit what is on the TX ring; in copy mode it
    /// sends a bounded batch per call, so repeat while it says EAGAIN.
    #[inline]
    fn kick_tx(&mut self) {
        if !self.tx.needs_wakeup() {
            return;
        }
        for _ in 0..TX_KICK_RETRIES {
            self.counters.tx_wakeups += 1;
            // SAFETY: a zero-length sendto on our own AF_XDP socket with null
            // buffers is the documented TX kick; it reads no memory of ours.
            let Err(err) =
                (unsafe { syscall!(sendto(self.fd, std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0)) })
            else {
                return;
            };
            match err.raw_os_error() {
                Some(libc::EAGAIN) => self.reap_completions(),
                // Copy mode: the driver refused a frame, which the kernel
                // took off the ring and completed unsent.
                Some(libc::EBUSY) => {
                    self.counters.tx_kernel_dropped += 1;
                    self.reap_completions();
                }
                _ => return,
            }
        }
    }
}

fn into_io<E: std::error::Error>(err: E) -> io::Error {
    let mut source: Option<&dyn std::error::Error> = err.source();
    while let Some(cause) = source {
        if let Some(io_err) = cause.downcast_ref::<io::Error>() {
            if let Some(code) = io_err.raw_os_error() {
                return io::Error::from_raw_os_error(code);
            }
        }
        source = cause.source();
    }
    io::Error::other(err.to_string())
}

impl Port for AfXdpPort {
    #[inline]
    fn rx_burst(&mut self, descs: &mut [Desc]) -> usize {
        let want = descs.len().min(self.scratch.len());
        // SAFETY: the RX ring only returns frames of this UMEM that we gave
        // the kernel through the fill ring.
        let n = unsafe { self.rx.consume(&mut self.scratch[..want]) };
        if n == 0 {
            if self.fill.needs_wakeup() {
                self.counters.rx_wakeups += 1;
                // SAFETY: a zero-length recvfrom with null buffers on our own
                // AF_XDP socket is the documented RX kick; it writes nothing.
                // EAGAIN and the like leave nothing to do: the next poll kicks again.
                let _ = unsafe {
                    syscall!(recvfrom(
                        self.fd,
                        std::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    ))
                };
            }
            return 0;
        }
        for (out, desc) in descs.iter_mut().zip(&self.scratch[..n]) {
            *out = Desc::new(self.tag, desc.addr() as u64, desc.lengths().data() as u32);
        }
        self.in_fill -= n as u32;
        n
    }

    #[inline]
    fn tx_burst(&mut self, descs: &mut [Desc]) -> usize {
        if descs.is_empty() {
            return 0;
        }
        if (self.tx.nb_free(descs.len() as u32) as usize) < descs.len() {
            self.reap_completions();
        }
        let mut n = 0;
        let capacity = self.frame_capacity();
        for desc in descs.iter().take(self.scratch.len()) {
            if !desc.belongs_to(self.tag) {
                break;
            }
            let Some(index) = self.index_of(desc.addr()) else { break };
            if desc.addr() % self.frame_size != self.data_start {
                // Only frames starting where the UMEM put them can be
                // described to xsk-rs; our own paths never move them.
                break;
            }
            let mut frame = self.frames[index];
            // SAFETY: the frame belongs to this UMEM and is held by the caller,
            // who is handing it to us; `frame` is a local copy of its descriptor.
            let mut data = unsafe { self.umem.data_mut(&mut frame) };
            data.cursor().set_pos((desc.len() as usize).min(capacity));
            self.scratch[n] = frame;
            n += 1;
        }
        // SAFETY: the frames belong to this UMEM, their lengths are set, and the
        // caller gives up their use until the completion ring returns them.
        let produced = unsafe { self.tx.produce(&self.scratch[..n]) };
        for slot in &mut descs[..produced] {
            std::mem::take(slot);
        }
        self.in_tx += produced as u32;
        if produced > 0 {
            self.kick_tx();
        }
        produced
    }

    #[inline]
    fn release(&mut self, descs: &mut [Desc]) {
        for slot in descs {
            let desc = std::mem::take(slot);
            if !desc.belongs_to(self.tag) {
                continue;
            }
            if let Some(index) = self.index_of(desc.addr()) {
                if self.free.len() < self.frames.len() {
                    self.free.push(index as u32);
                }
            }
        }
    }

    #[inline]
    fn alloc(&mut self, descs: &mut [Desc]) -> usize {
        if self.free.len() < descs.len() {
            self.reap_completions();
        }
        let n = descs.len().min(self.free.len());
        for out in descs[..n].iter_mut() {
            // Cannot fail: n <= free.len().
            let index = self.free.pop().unwrap_or_default() as u64;
            *out = Desc::new(self.tag, index * self.frame_size + self.data_start, 0);
        }
        n
    }

    #[inline]
    fn frame_mut(&mut self, desc: &Desc) -> &mut [u8] {
        if !desc.belongs_to(self.tag) {
            return &mut [];
        }
        let Some(index) = self.index_of(desc.addr()) else {
            return &mut [];
        };
        let frame = &mut self.frames[index];
        let start = frame.addr() as u64;
        if desc.addr() < start {
            return &mut [];
        }
        let offset = (desc.addr() - start) as usize;
        // SAFETY: `frame` describes a frame of this UMEM, and `desc` (made
        // only by this port, never copied, tagged with this UMEM) makes its
        // holder the frame's only user: the kernel has it on no ring, and
        // the `&mut self` borrow keeps this the only slice of the UMEM.
        let mut data = unsafe { self.umem.data_mut(frame) };
        data.cursor().set_pos(usize::MAX);
        let whole = data.contents_mut();
        let whole: &mut [u8] = whole;
        // The borrow of `self.frames[index]` (the length cell) lives as long
        // as the returned slice, which the signature ties to `&mut self`.
        let len = whole.len();
        let ptr = whole.as_mut_ptr();
        // SAFETY: `ptr..ptr+len` is the frame's data segment, exclusively
        // borrowed through `&mut self` for the returned lifetime.
        let whole = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        whole.get_mut(offset..).unwrap_or(&mut [])
    }

    #[inline]
    fn frame_capacity(&self) -> usize {
        (self.frame_size - self.data_start) as usize
    }

    #[inline]
    fn service(&mut self) {
        self.reap_completions();
        self.top_up_fill();
        self.services += 1;
        if self.services >= SERVICES_PER_CLOCK_LOOK {
            self.services = 0;
            let now = Instant::now();
            if now >= self.next_stats {
                self.next_stats = now + KERNEL_STATS_EVERY;
                self.read_kernel_stats();
            }
        }
    }

    fn counters(&self) -> PortCounters {
        self.counters
    }

    fn sync_counters(&mut self) {
        // A kick can stop short (each frame the kernel drops ends one), and
        // nothing kicks again once the caller stops sending: kick until the
        // TX ring is empty or the kernel makes no progress, so that what was
        // queued is sent or counted.
        for _ in 0..FINAL_KICKS {
            self.reap_completions();
            if self.in_tx == 0 {
                break;
            }
            let before = (self.in_tx, self.counters.tx_kernel_dropped);
            self.kick_tx();
            self.reap_completions();
            if (self.in_tx, self.counters.tx_kernel_dropped) == before {
                break;
            }
        }
        self.read_kernel_stats();
    }

    fn bound_mode(&self) -> BoundMode {
        self.mode
    }
}
