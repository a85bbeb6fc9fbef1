//! Per-queue statistics: counted by the worker in plain integers, published
//! to cache-line-padded atomics between bursts, read by any thread without a
//! lock, turned into rates by diffing two snapshots.

use crate::port::{PortCounters, XdpSocketStats};
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Why a frame was dropped. Every drop in the engine has one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than an Ethernet header (14 bytes).
    Runt = 0,
    /// Longer than the configured maximum frame length.
    Oversize,
    /// EtherType below 0x0600 (an 802.3 length field: LLC/SNAP frames are not served).
    BadEthertype,
    /// Unicast to a MAC with no endpoint, and the handler did not want it.
    NoEndpoint,
    /// The transmit ring had no room.
    TxRingFull,
    /// The control channel was full (the control thread is behind).
    ControlChannelFull,
    /// Too large to copy into a control-channel message.
    ControlFrameTooLarge,
    /// No free frame on the output port for a forwarded or injected frame.
    NoFreeFrame,
    /// The handler rejected the frame (see the handler's own reasons).
    Handler,
    /// For a VIP this node does not own now (a backup's share of the VIP's
    /// traffic): never delivered.
    NotOwned,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 10] = [
        DropReason::Runt,
        DropReason::Oversize,
        DropReason::BadEthertype,
        DropReason::NoEndpoint,
        DropReason::TxRingFull,
        DropReason::ControlChannelFull,
        DropReason::ControlFrameTooLarge,
        DropReason::NoFreeFrame,
        DropReason::Handler,
        DropReason::NotOwned,
    ];
    /// How many reasons there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The snake_case name used in output and JSON.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::Oversize => "oversize",
            DropReason::BadEthertype => "bad_ethertype",
            DropReason::NoEndpoint => "no_endpoint",
            DropReason::TxRingFull => "tx_ring_full",
            DropReason::ControlChannelFull => "control_channel_full",
            DropReason::ControlFrameTooLarge => "control_frame_too_large",
            DropReason::NoFreeFrame => "no_free_frame",
            DropReason::Handler => "handler",
            DropReason::NotOwned => "not_owned",
        }
    }
}

/// The counters of one queue, as plain numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received (Ethernet header onwards, no FCS).
    pub rx_bytes: u64,
    /// Frames the port accepted for transmission.
    pub tx_packets: u64,
    /// Bytes the port accepted for transmission.
    pub tx_bytes: u64,
    /// Frames copied to the control thread.
    pub to_control: u64,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// See [`PortCounters::fill_ring_empty`].
    pub fill_ring_empty: u64,
    /// See [`PortCounters::rx_wakeups`].
    pub rx_wakeups: u64,
    /// See [`PortCounters::tx_wakeups`].
    pub tx_wakeups: u64,
    /// Polls that found nothing to receive.
    pub empty_polls: u64,
    /// See [`PortCounters::tx_completed`].
    pub tx_completed: u64,
    /// See [`PortCounters::tx_kernel_dropped`].
    pub tx_kernel_dropped: u64,
    /// See [`PortCounters::kernel`].
    pub kernel: XdpSocketStats,
}

impl Counters {
    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Drops for one reason.
    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Takes the port's own ring counters.
    #[inline]
    pub fn absorb_port(&mut self, port: PortCounters) {
        self.fill_ring_empty = port.fill_ring_empty;
        self.rx_wakeups = port.rx_wakeups;
        self.tx_wakeups = port.tx_wakeups;
        self.tx_completed = port.tx_completed;
        self.tx_kernel_dropped = port.tx_kernel_dropped;
        self.kernel = port.kernel;
    }

    /// Frames the kernel took for sending and sent (not dropped): what left.
    pub fn tx_sent_by_kernel(&self) -> u64 {
        self.tx_completed.saturating_sub(self.tx_kernel_dropped)
    }

    /// Adds another queue's counters to these (for totals across queues).
    pub fn accumulate(&mut self, other: &Counters) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.to_control += other.to_control;
        for (mine, theirs) in self.drops.iter_mut().zip(other.drops.iter()) {
            *mine += theirs;
        }
        self.fill_ring_empty += other.fill_ring_empty;
        self.rx_wakeups += other.rx_wakeups;
        self.tx_wakeups += other.tx_wakeups;
        self.empty_polls += other.empty_polls;
        self.tx_completed += other.tx_completed;
        self.tx_kernel_dropped += other.tx_kernel_dropped;
        self.kernel.accumulate(&other.kernel);
    }
}

const SCALARS: usize = 17;
const SLOTS: usize = SCALARS + DropReason::COUNT;

/// One queue's published statistics: written by its worker only, read by anyone.
#[derive(Debug)]
pub struct QueueStats {
    slots: CachePadded<[AtomicU64; SLOTS]>,
}

impl Default for QueueStats {
    fn default() -> Self {
        QueueStats { slots: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))) }
    }
}

impl QueueStats {
    /// Publishes the worker's counters (a few relaxed stores; no read-modify-write).
    #[inline]
    pub fn publish(&self, c: &Counters) {
        let scalars = [
            c.rx_packets,
            c.rx_bytes,
            c.tx_packets,
            c.tx_bytes,
            c.to_control,
            c.fill_ring_empty,
            c.rx_wakeups,
            c.tx_wakeups,
            c.empty_polls,
            c.tx_completed,
            c.tx_kernel_dropped,
            c.kernel.rx_dropped,
            c.kernel.rx_invalid_descs,
            c.kernel.tx_invalid_descs,
            c.kernel.rx_ring_full,
            c.kernel.rx_fill_ring_empty_descs,
            c.kernel.tx_ring_empty_descs,
        ];
        // Two plain loops: a chained iterator checks which half it is in at
        // every slot, which costs more than the stores.
        let (scalar_slots, drop_slots) = self.slots.split_at(SCALARS);
        for (slot, &value) in scalar_slots.iter().zip(&scalars) {
            slot.store(value, Ordering::Relaxed);
        }
        for (slot, &value) in drop_slots.iter().zip(&c.drops) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    /// Reads the counters as last published.
    pub fn read(&self) -> Counters {
        let v: [u64; SLOTS] = std::array::from_fn(|i| self.slots[i].load(Ordering::Relaxed));
        Counters {
            rx_packets: v[0],
            rx_bytes: v[1],
            tx_packets: v[2],
            tx_bytes: v[3],
            to_control: v[4],
            fill_ring_empty: v[5],
            rx_wakeups: v[6],
            tx_wakeups: v[7],
            empty_polls: v[8],
            tx_completed: v[9],
            tx_kernel_dropped: v[10],
            kernel: XdpSocketStats {
                rx_dropped: v[11],
                rx_invalid_descs: v[12],
                tx_invalid_descs: v[13],
                rx_ring_full: v[14],
                rx_fill_ring_empty_descs: v[15],
                tx_ring_empty_descs: v[16],
            },
            drops: std::array::from_fn(|i| v[SCALARS + i]),
        }
    }

    /// Reads the counters with the time they were read.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot { at: Instant::now(), counters: self.read() }
    }
}

/// Counters at an instant.
#[derive(Clone, Copy, Debug)]
pub struct StatsSnapshot {
    /// When they were read.
    pub at: Instant,
    /// What they were.
    pub counters: Counters,
}

/// Rates between two snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Seconds between the snapshots.
    pub seconds: f64,
    /// Received packets per second.
    pub rx_pps: f64,
    /// Transmitted packets per second.
    pub tx_pps: f64,
    /// Received bits per second (frame bytes only: no preamble, gap or FCS).
    pub rx_bps: f64,
    /// Transmitted bits per second (frame bytes only).
    pub tx_bps: f64,
    /// Drops per second, all reasons.
    pub drop_pps: f64,
}

impl StatsSnapshot {
    /// Rates from `earlier` to `self`; zero when no time passed.
    pub fn rates_since(&self, earlier: &StatsSnapshot) -> Rates {
        let seconds = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if seconds <= 0.0 {
            return Rates::default();
        }
        let (a, b) = (&earlier.counters, &self.counters);
        let per_sec = |new: u64, old: u64| new.saturating_sub(old) as f64 / seconds;
        Rates {
            seconds,
            rx_pps: per_sec(b.rx_packets, a.rx_packets),
            tx_pps: per_sec(b.tx_packets, a.tx_packets),
            rx_bps: per_sec(b.rx_bytes, a.rx_bytes) * 8.0,
            tx_bps: per_sec(b.tx_bytes, a.tx_bytes) * 8.0,
            drop_pps: per_sec(b.total_drops(), a.total_drops()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn publish_then_read_round_trips_every_counter() {
        let mut c =
            Counters { rx_packets: 1, rx_bytes: 2, tx_packets: 3, tx_bytes: 4, to_control: 5, ..Default::default() };
        c.fill_ring_empty = 6;
        c.rx_wakeups = 7;
        c.tx_wakeups = 8;
        c.empty_polls = 9;
        c.tx_completed = 10;
        c.tx_kernel_dropped = 4;
        c.kernel = XdpSocketStats {
            rx_dropped: 12,
            rx_invalid_descs: 13,
            tx_invalid_descs: 14,
            rx_ring_full: 15,
            rx_fill_ring_empty_descs: 16,
            tx_ring_empty_descs: 17,
        };
        for (i, r) in DropReason::ALL.iter().enumerate() {
            c.drops[*r as usize] = 100 + i as u64;
        }
        let stats = QueueStats::default();
        stats.publish(&c);
        assert_eq!(stats.read(), c);
        assert_eq!(std::mem::align_of::<QueueStats>() % 64, 0, "padded to a cache line");
        let mut total = c;
        total.accumulate(&c);
        assert_eq!((total.kernel.rx_ring_full, total.kernel.rx_lost(), total.tx_sent_by_kernel()), (30, 80, 12));
    }

    #[test]
    fn rates_are_differences_over_elapsed_time() {
        let t0 = Instant::now();
        let a = StatsSnapshot { at: t0, counters: Counters { rx_packets: 100, rx_bytes: 6400, ..Default::default() } };
        let b = StatsSnapshot {
            at: t0 + Duration::from_millis(500),
            counters: Counters { rx_packets: 1100, rx_bytes: 70400, ..Default::default() },
        };
        let r = b.rates_since(&a);
        assert!((r.rx_pps - 2000.0).abs() < 1e-6);
        assert!((r.rx_bps - 1_024_000.0).abs() < 1e-6);
        assert_eq!(a.rates_since(&b).rx_pps, 0.0, "time never runs backwards");
    }
}
