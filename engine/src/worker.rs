//! Per-core busy-polling workers: receive a burst, classify each frame by
//! destination MAC, let the handler decide, transmit in place, recycle the
//! rest; between bursts, drain this worker's command queue.
//!
//! Nothing in [`Worker::poll_once`] allocates, locks or makes a syscall per
//! packet: the burst arrays are sized once, the MAC table is reserved up
//! front, and the only syscalls are the port's wakeups, made when the kernel
//! asks for them, at most once per burst.

use crate::demux::{Dest, EndpointId, MacTable};
use crate::lease::LeaseKeeper;
use crate::port::{Desc, Port};
use crate::stats::{Counters, DropReason, QueueStats};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vipdrift_wire::MacAddr;

/// Length of an Ethernet header without a VLAN tag.
pub const ETH_HEADER_LEN: usize = 14;
/// EtherTypes below this are 802.3 length fields, not protocols.
const MIN_ETHERTYPE: u16 = 0x0600;
/// Largest frame a [`ControlFrame`] carries.
pub const CONTROL_FRAME_MAX: usize = 1522;
/// Most frames a worker injects from its command queue per loop iteration.
const MAX_INJECT_PER_POLL: usize = 16;

/// What the handler decided about a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (possibly rewritten) frame back out of the port it came in on.
    Transmit,
    /// Send the frame out of another port of this worker (by index); it is
    /// copied into that port's memory.
    Forward(u8),
    /// Copy the frame to the control thread, then recycle it.
    ToControl,
    /// Recycle the frame, counting the reason.
    Drop(DropReason),
    /// Recycle the frame: the handler is done with it (a sink, a counter),
    /// which is not a drop.
    Consume,
}

/// A received frame as the handler sees it.
pub struct Packet<'a> {
    buf: &'a mut [u8],
    len: usize,
    dest: Dest,
    port: u8,
}

impl<'a> Packet<'a> {
    /// Wraps frame memory holding `len` bytes of packet (used by the worker,
    /// and by embedders testing their handlers on plain buffers).
    #[inline]
    pub fn new(buf: &'a mut [u8], len: usize, dest: Dest, port: u8) -> Packet<'a> {
        let len = len.min(buf.len());
        Packet { buf, len, dest, port }
    }

    /// The packet's bytes, from the Ethernet header on.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The packet's bytes, writable for in-place rewrites.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Changes the packet's length (to grow or trim a reply); clamped to
    /// [`Packet::capacity`].
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len());
    }

    /// The whole frame buffer, for writes past the current length.
    #[inline]
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buf
    }

    /// How long the packet can grow.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Where its destination MAC points.
    #[inline]
    pub fn dest(&self) -> Dest {
        self.dest
    }

    /// Index of the port it arrived on, within this worker.
    #[inline]
    pub fn port(&self) -> u8 {
        self.port
    }

    /// The EtherType (bytes 12..14); the worker has checked the frame is long
    /// enough to hold it.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.buf[12], self.buf[13]])
    }

    /// Swaps the source and destination MACs in place.
    #[inline]
    pub fn swap_macs(&mut self) {
        let (dst, src) = self.buf[..12].split_at_mut(6);
        dst.swap_with_slice(src);
    }
}

/// Per-worker packet logic, supplied by the embedder (or by vipdrift's own
/// services). One instance per worker; never shared, so it needs no locks.
pub trait Handler {
    /// Handler-specific updates delivered through the worker's command queue
    /// and applied between bursts (use `()` if there are none).
    type Command: Send + 'static;

    /// Decides about one received frame; may rewrite it in place.
    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict;

    /// Applies a command; called between bursts.
    fn command(&mut self, _command: Self::Command) {}

    /// Called once per poll after every port's burst was handled (and
    /// before the frames are flushed): the place to publish counters or
    /// apply what a burst decided, never in the middle of one.
    fn after_burst(&mut self) {}
}

/// A frame copied out of (or into) a worker for the control thread: fixed
/// size, so a bounded channel of them never allocates.
#[derive(Clone)]
pub struct ControlFrame {
    /// Index of the worker's port the frame arrived on (or leaves by).
    pub port: u8,
    len: u16,
    bytes: [u8; CONTROL_FRAME_MAX],
}

impl ControlFrame {
    /// Copies `bytes`; `None` if they exceed [`CONTROL_FRAME_MAX`].
    pub fn new(port: u8, bytes: &[u8]) -> Option<ControlFrame> {
        if bytes.len() > CONTROL_FRAME_MAX {
            return None;
        }
        let mut frame = ControlFrame { port, len: bytes.len() as u16, bytes: [0; CONTROL_FRAME_MAX] };
        frame.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(frame)
    }

    /// The frame's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for ControlFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlFrame").field("port", &self.port).field("len", &self.len).finish()
    }
}

/// The worker's end of the channel to the control thread. Sending never
/// blocks: when the channel is full the frame is dropped and counted.
#[derive(Clone)]
pub struct ControlSender {
    frames: Sender<ControlFrame>,
    notify: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl ControlSender {
    /// Wraps a bounded channel; `notify` (a mio `Waker`, say) is called at
    /// most once per burst when frames were sent.
    pub fn new(frames: Sender<ControlFrame>, notify: Option<Arc<dyn Fn() + Send + Sync>>) -> Self {
        ControlSender { frames, notify }
    }
}

/// What a worker does when a poll finds no work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IdlePolicy {
    /// Spin: lowest latency, one core at 100 % (dedicated servers, benchmarks).
    #[default]
    Spin,
    /// Spin for `spins` empty polls, then yield the CPU once per empty poll.
    SpinThenYield {
        /// Empty polls before yielding.
        spins: u32,
    },
    /// Spin for `spins` empty polls, then sleep `sleep` per empty poll.
    SpinThenSleep {
        /// Empty polls before sleeping.
        spins: u32,
        /// How long each sleep lasts.
        sleep: Duration,
    },
}

/// A command for one worker, applied between bursts.
pub enum WorkerCommand<C> {
    /// Register a destination MAC.
    AddEndpoint(MacAddr, EndpointId),
    /// Unregister a destination MAC.
    RemoveEndpoint(MacAddr),
    /// Unregister every MAC.
    ClearEndpoints,
    /// Transmit a frame (an advert, a GARP) out of `frame.port`.
    Inject(Box<ControlFrame>),
    /// A command for the handler.
    Handler(C),
}

/// How a worker runs.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// Frames per receive burst (1..=256).
    pub burst: usize,
    /// Longest frame accepted; longer ones are dropped as oversize.
    pub max_frame_len: usize,
    /// What to do when idle.
    pub idle: IdlePolicy,
    /// Commands that may wait in the queue.
    pub command_queue: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig { burst: 64, max_frame_len: 1522, idle: IdlePolicy::Spin, command_queue: 1024 }
    }
}

/// Largest burst a worker accepts.
pub const MAX_BURST: usize = 256;

/// The handles another thread keeps on a running worker.
#[derive(Clone)]
pub struct WorkerHandle<C> {
    /// Commands for the worker.
    pub commands: Sender<WorkerCommand<C>>,
    /// Statistics, one per port, in port order.
    pub stats: Vec<Arc<QueueStats>>,
    /// Set to stop the worker.
    pub stop: Arc<AtomicBool>,
}

/// A busy-polling worker over a set of ports.
pub struct Worker<P: Port, H: Handler> {
    ports: Vec<P>,
    handler: H,
    table: MacTable,
    commands: Receiver<WorkerCommand<H::Command>>,
    control: Option<ControlSender>,
    stats: Vec<Arc<QueueStats>>,
    counters: Vec<Counters>,
    config: WorkerConfig,
    stop: Arc<AtomicBool>,
    rx: Vec<Desc>,
    /// Per port: frames waiting to leave by it.
    tx: Vec<Vec<Desc>>,
    recycle: Vec<Desc>,
    idle_polls: u32,
    lease: Option<LeaseKeeper>,
}

impl<P: Port, H: Handler> Worker<P, H> {
    /// Builds a worker over `ports` (at most 256); returns it with the handles
    /// other threads use to command, watch and stop it.
    pub fn new(
        ports: Vec<P>,
        handler: H,
        config: WorkerConfig,
        control: Option<ControlSender>,
    ) -> (Worker<P, H>, WorkerHandle<H::Command>) {
        let burst = config.burst.clamp(1, MAX_BURST);
        let config = WorkerConfig { burst, ..config };
        let (commands_tx, commands) = crossbeam_channel::bounded(config.command_queue.max(1));
        let stats: Vec<Arc<QueueStats>> = ports.iter().map(|_| Arc::new(QueueStats::default())).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let n = ports.len();
        let worker = Worker {
            ports,
            handler,
            table: MacTable::new(),
            commands,
            control,
            stats: stats.clone(),
            counters: vec![Counters::default(); n],
            config,
            stop: stop.clone(),
            rx: (0..burst).map(|_| Desc::default()).collect(),
            // Room for a full burst from every port plus injected frames.
            tx: (0..n).map(|_| Vec::with_capacity(burst * n + MAX_INJECT_PER_POLL)).collect(),
            recycle: Vec::with_capacity(burst + MAX_INJECT_PER_POLL),
            idle_polls: 0,
            lease: None,
        };
        (worker, WorkerHandle { commands: commands_tx, stats, stop })
    }

    /// Renews a queue's lease on kernel delivery every poll (see
    /// [`LeaseKeeper`]): the worker vouches for the queue while it runs.
    pub fn with_lease(mut self, lease: LeaseKeeper) -> Self {
        self.lease = Some(lease);
        self
    }

    /// The handler (for inspection in tests and by embedders).
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The counters of port `index` as the worker holds them.
    pub fn counters(&self, index: usize) -> Counters {
        self.counters[index]
    }

    /// The ports (for inspection; the worker owns them).
    pub fn ports_mut(&mut self) -> &mut [P] {
        &mut self.ports
    }

    /// One iteration: apply pending commands, then a burst from every port.
    /// Returns the number of frames received.
    pub fn poll_once(&mut self) -> usize {
        if let Some(lease) = &mut self.lease {
            lease.tick(crate::steer::monotonic_ns());
        }
        self.drain_commands();
        let mut received = 0;
        for index in 0..self.ports.len() {
            received += self.poll_port(index);
        }
        if received > 0 {
            self.handler.after_burst();
        }
        for index in 0..self.ports.len() {
            self.flush_tx(index);
            self.ports[index].service();
            let port_counters = self.ports[index].counters();
            let counters = &mut self.counters[index];
            counters.absorb_port(port_counters);
            if received == 0 {
                counters.empty_polls += 1;
            }
        }
        // Publishing costs a few stores per port: do it whenever there was
        // work, and every so often when idle so the empty-poll count moves.
        if received > 0 || self.idle_polls.is_multiple_of(1024) {
            for (stats, counters) in self.stats.iter().zip(self.counters.iter()) {
                stats.publish(counters);
            }
        }
        received
    }

    /// Polls until the stop flag is set, idling as configured; publishes the
    /// final counters before returning.
    pub fn run(&mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            if self.poll_once() > 0 {
                self.idle_polls = 0;
            } else {
                self.idle_polls = self.idle_polls.wrapping_add(1);
                match self.config.idle {
                    IdlePolicy::Spin => std::hint::spin_loop(),
                    IdlePolicy::SpinThenYield { spins } => {
                        if self.idle_polls > spins {
                            std::thread::yield_now();
                        }
                    }
                    IdlePolicy::SpinThenSleep { spins, sleep } => {
                        if self.idle_polls > spins {
                            std::thread::sleep(sleep);
                        }
                    }
                }
            }
        }
        for index in 0..self.ports.len() {
            self.flush_tx(index);
            self.ports[index].service();
            self.ports[index].sync_counters();
            self.counters[index].absorb_port(self.ports[index].counters());
            self.stats[index].publish(&self.counters[index]);
        }
    }

    /// Runs the worker on its own thread, pinned to `core` when given.
    pub fn spawn(mut self, core: Option<usize>, name: String) -> std::io::Result<JoinHandle<Self>>
    where
        P: Send + 'static,
        H: Send + 'static,
    {
        std::thread::Builder::new().name(name).spawn(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
            self.run();
            self
        })
    }

    fn drain_commands(&mut self) {
        let mut injected = 0;
        while injected < MAX_INJECT_PER_POLL {
            let Ok(command) = self.commands.try_recv() else { break };
            match command {
                WorkerCommand::AddEndpoint(mac, id) => self.table.insert(mac, id),
                WorkerCommand::RemoveEndpoint(mac) => {
                    self.table.remove(&mac);
                }
                WorkerCommand::ClearEndpoints => self.table.clear(),
                WorkerCommand::Handler(command) => self.handler.command(command),
                WorkerCommand::Inject(frame) => {
                    injected += 1;
                    self.inject(&frame);
                }
            }
        }
    }

    fn inject(&mut self, frame: &ControlFrame) {
        let index = frame.port as usize;
        let Some(port) = self.ports.get_mut(index) else { return };
        let bytes = frame.bytes();
        let mut slot = [Desc::default()];
        if bytes.len() > port.frame_capacity() || port.alloc(&mut slot) == 0 {
            self.counters[index].drop(DropReason::NoFreeFrame);
            return;
        }
        let mut desc = std::mem::take(&mut slot[0]);
        port.frame_mut(&desc)[..bytes.len()].copy_from_slice(bytes);
        desc.set_len(bytes.len() as u32);
        self.tx[index].push(desc);
    }

    #[inline]
    fn poll_port(&mut self, index: usize) -> usize {
        let burst = self.config.burst;
        let received = self.ports[index].rx_burst(&mut self.rx[..burst]);
        if received == 0 {
            return 0;
        }
        let max_len = self.config.max_frame_len;
        let mut sent_to_control = false;
        for k in 0..received {
            let mut desc = std::mem::take(&mut self.rx[k]);
            let len = desc.len() as usize;
            let counters = &mut self.counters[index];
            counters.rx_packets += 1;
            counters.rx_bytes += len as u64;
            if len < ETH_HEADER_LEN {
                counters.drop(DropReason::Runt);
                self.recycle.push(desc);
                continue;
            }
            if len > max_len {
                counters.drop(DropReason::Oversize);
                self.recycle.push(desc);
                continue;
            }
            let buf = self.ports[index].frame_mut(&desc);
            if buf.len() < len {
                counters.drop(DropReason::Oversize);
                self.recycle.push(desc);
                continue;
            }
            if u16::from_be_bytes([buf[12], buf[13]]) < MIN_ETHERTYPE {
                counters.drop(DropReason::BadEthertype);
                self.recycle.push(desc);
                continue;
            }
            let dst = MacAddr([buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]]);
            let dest = self.table.classify(&dst);
            let mut packet = Packet::new(buf, len, dest, index as u8);
            let verdict = self.handler.handle(&mut packet);
            let out_len = packet.len as u32;
            match verdict {
                Verdict::Transmit => {
                    desc.set_len(out_len);
                    self.tx[index].push(desc)
                }
                Verdict::Drop(reason) => {
                    counters.drop(reason);
                    self.recycle.push(desc);
                }
                Verdict::Consume => self.recycle.push(desc),
                Verdict::ToControl => {
                    match &self.control {
                        None => counters.drop(DropReason::ControlChannelFull),
                        Some(control) => match ControlFrame::new(index as u8, packet.data()) {
                            None => counters.drop(DropReason::ControlFrameTooLarge),
                            Some(frame) => match control.frames.try_send(frame) {
                                Ok(()) => {
                                    counters.to_control += 1;
                                    sent_to_control = true;
                                }
                                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                                    counters.drop(DropReason::ControlChannelFull)
                                }
                            },
                        },
                    }
                    self.recycle.push(desc);
                }
                Verdict::Forward(out) if out as usize == index => {
                    desc.set_len(out_len);
                    self.tx[index].push(desc)
                }
                Verdict::Forward(out) => {
                    desc.set_len(out_len);
                    self.forward(index, out as usize, &desc);
                    self.recycle.push(desc);
                }
            }
        }
        if sent_to_control {
            if let Some(notify) = self.control.as_ref().and_then(|c| c.notify.as_ref()) {
                notify();
            }
        }
        if !self.recycle.is_empty() {
            self.ports[index].release(&mut self.recycle);
            self.recycle.clear();
        }
        received
    }

    /// Copies a frame from port `from` into a free frame of port `to` and
    /// queues it there. The caller recycles the original.
    #[inline]
    fn forward(&mut self, from: usize, to: usize, desc: &Desc) {
        let len = desc.len() as usize;
        if to >= self.ports.len() || to == from || self.ports[to].frame_capacity() < len {
            self.counters[from].drop(DropReason::NoFreeFrame);
            return;
        }
        let mut slot = [Desc::default()];
        if self.ports[to].alloc(&mut slot) == 0 {
            self.counters[from].drop(DropReason::NoFreeFrame);
            return;
        }
        let (src_port, dst_port) = if from < to {
            let (lo, hi) = self.ports.split_at_mut(to);
            (&mut lo[from], &mut hi[0])
        } else {
            let (lo, hi) = self.ports.split_at_mut(from);
            (&mut hi[0], &mut lo[to])
        };
        let mut out = std::mem::take(&mut slot[0]);
        let src = src_port.frame_mut(desc);
        let dst = dst_port.frame_mut(&out);
        let len = len.min(src.len()).min(dst.len());
        dst[..len].copy_from_slice(&src[..len]);
        out.set_len(len as u32);
        self.tx[to].push(out);
    }

    #[inline]
    fn flush_tx(&mut self, index: usize) {
        let pending = &mut self.tx[index];
        if pending.is_empty() {
            return;
        }
        let port = &mut self.ports[index];
        let offered_bytes = pending.iter().map(|d| u64::from(d.len())).sum::<u64>();
        let accepted = port.tx_burst(pending);
        let counters = &mut self.counters[index];
        let refused = &mut pending[accepted..];
        counters.tx_packets += accepted as u64;
        counters.tx_bytes += offered_bytes - refused.iter().map(|d| u64::from(d.len())).sum::<u64>();
        if !refused.is_empty() {
            counters.drops[DropReason::TxRingFull as usize] += refused.len() as u64;
            port.release(refused);
        }
        pending.clear();
    }
}
