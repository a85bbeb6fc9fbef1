//! A port wrapper that injects faults, seeded and so reproducible: it drops
//! received and transmitted frames, flips bits of received ones and holds
//! received frames back for a poll, as smoltcp's fault injector does for its
//! devices. Tests put it between a worker and its port to check that bad
//! luck on the wire is counted and never leaks a frame.

use crate::port::{BoundMode, Desc, Port, PortCounters};
use std::collections::VecDeque;

/// How often each fault strikes, in percent of frames, and the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Seed of the generator: the same seed gives the same faults.
    pub seed: u64,
    /// Received frames dropped before the caller sees them.
    pub drop_rx_percent: u8,
    /// Frames the caller transmits that never leave (the port takes them).
    pub drop_tx_percent: u8,
    /// Received frames with one bit flipped.
    pub corrupt_rx_percent: u8,
    /// Received frames held back until the next receive (reordering them).
    pub delay_rx_percent: u8,
}

/// What a [`FaultyPort`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Received frames dropped.
    pub rx_dropped: u64,
    /// Transmitted frames dropped.
    pub tx_dropped: u64,
    /// Received frames corrupted.
    pub rx_corrupted: u64,
    /// Received frames delayed.
    pub rx_delayed: u64,
}

/// Frames a port can hold back at once (room reserved up front, so the
/// wrapper allocates nothing per packet either).
const MAX_HELD: usize = 256;

/// A [`Port`] that passes everything to `P`, with faults as configured.
pub struct FaultyPort<P: Port> {
    inner: P,
    config: FaultConfig,
    state: u64,
    held: VecDeque<Desc>,
    counts: FaultCounts,
}

impl<P: Port> FaultyPort<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, config: FaultConfig) -> FaultyPort<P> {
        // xorshift has one bad state: zero.
        let state = config.seed ^ 0x9e37_79b9_7f4a_7c15;
        FaultyPort {
            inner,
            config,
            state: state.max(1),
            held: VecDeque::with_capacity(MAX_HELD),
            counts: FaultCounts::default(),
        }
    }

    /// The faults injected so far.
    pub fn faults(&self) -> FaultCounts {
        self.counts
    }

    /// Frames held back right now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The wrapped port.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Next pseudo-random value (xorshift64*).
    #[inline]
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[inline]
    fn strikes(&mut self, percent: u8) -> bool {
        percent > 0 && self.next() % 100 < u64::from(percent)
    }
}

impl<P: Port> Port for FaultyPort<P> {
    fn rx_burst(&mut self, descs: &mut [Desc]) -> usize {
        let mut out = 0;
        while out < descs.len() {
            let Some(desc) = self.held.pop_front() else { break };
            descs[out] = desc;
            out += 1;
        }
        let first_new = out;
        let got = self.inner.rx_burst(&mut descs[first_new..]);
        for k in first_new..first_new + got {
            let mut desc = std::mem::take(&mut descs[k]);
            if self.strikes(self.config.drop_rx_percent) {
                self.counts.rx_dropped += 1;
                self.inner.release(std::slice::from_mut(&mut desc));
                continue;
            }
            if self.held.len() < MAX_HELD && self.strikes(self.config.delay_rx_percent) {
                self.counts.rx_delayed += 1;
                self.held.push_back(desc);
                continue;
            }
            if !desc.is_empty() && self.strikes(self.config.corrupt_rx_percent) {
                let roll = self.next();
                let frame = self.inner.frame_mut(&desc);
                let at = (roll as usize % desc.len() as usize).min(frame.len().saturating_sub(1));
                if let Some(byte) = frame.get_mut(at) {
                    *byte ^= 1 << ((roll >> 32) % 8);
                    self.counts.rx_corrupted += 1;
                }
            }
            descs[out] = desc;
            out += 1;
        }
        out
    }

    fn tx_burst(&mut self, descs: &mut [Desc]) -> usize {
        let mut start = 0;
        while start < descs.len() {
            // A run of frames that go out, ended by one the wire eats (or the end).
            let mut end = start;
            let mut eaten = false;
            while end < descs.len() {
                if self.strikes(self.config.drop_tx_percent) {
                    eaten = true;
                    break;
                }
                end += 1;
            }
            if end > start {
                let taken = self.inner.tx_burst(&mut descs[start..end]);
                if taken < end - start {
                    return start + taken;
                }
            }
            if eaten {
                self.counts.tx_dropped += 1;
                self.inner.release(&mut descs[end..end + 1]);
                end += 1;
            }
            start = end;
        }
        descs.len()
    }

    fn release(&mut self, descs: &mut [Desc]) {
        self.inner.release(descs)
    }

    fn alloc(&mut self, descs: &mut [Desc]) -> usize {
        self.inner.alloc(descs)
    }

    fn frame_mut(&mut self, desc: &Desc) -> &mut [u8] {
        self.inner.frame_mut(desc)
    }

    fn frame_capacity(&self) -> usize {
        self.inner.frame_capacity()
    }

    fn service(&mut self) {
        self.inner.service()
    }

    fn counters(&self) -> PortCounters {
        self.inner.counters()
    }

    fn bound_mode(&self) -> BoundMode {
        self.inner.bound_mode()
    }
}

impl<P: Port> Drop for FaultyPort<P> {
    fn drop(&mut self) {
        for mut desc in self.held.drain(..) {
            self.inner.release(std::slice::from_mut(&mut desc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemPort, MemPortConfig};

    fn run(config: FaultConfig) -> (FaultCounts, Vec<Vec<u8>>, usize) {
        let (a, mut b) = MemPort::pair(MemPortConfig { frame_count: 64, frame_size: 256, ring_size: 64 });
        let mut a = FaultyPort::new(a, config);
        for i in 0..40u8 {
            assert!(b.send_bytes(&[i; 60]));
        }
        let mut got = Vec::new();
        let mut descs: [Desc; 8] = std::array::from_fn(|_| Desc::default());
        for _ in 0..20 {
            let n = a.rx_burst(&mut descs);
            for desc in &descs[..n] {
                let len = desc.len() as usize;
                got.push(a.frame_mut(desc)[..len].to_vec());
            }
            a.release(&mut descs[..n]);
        }
        let counts = a.faults();
        drop(a);
        (counts, got, b.free_frames())
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_every_frame_comes_home() {
        let config = FaultConfig {
            seed: 7,
            drop_rx_percent: 10,
            corrupt_rx_percent: 10,
            delay_rx_percent: 20,
            ..Default::default()
        };
        let (counts, got, free) = run(config);
        assert_eq!(run(config), (counts, got.clone(), free), "deterministic");
        assert!(counts.rx_dropped > 0 && counts.rx_corrupted > 0 && counts.rx_delayed > 0, "{counts:?}");
        assert_eq!(got.len() as u64 + counts.rx_dropped, 40, "every frame delivered or counted");
        let intact = got.iter().filter(|f| f.iter().all(|&b| b == f[0])).count() as u64;
        assert_eq!(intact, 40 - counts.rx_dropped - counts.rx_corrupted);
        assert_eq!(free, 64, "no frame leaked, the held ones included");
    }

    #[test]
    fn dropped_transmits_are_taken_and_recycled() {
        let (a, mut b) = MemPort::pair(MemPortConfig { frame_count: 64, frame_size: 256, ring_size: 64 });
        let mut a = FaultyPort::new(a, FaultConfig { seed: 3, drop_tx_percent: 50, ..Default::default() });
        let mut descs: [Desc; 32] = std::array::from_fn(|_| Desc::default());
        assert_eq!(a.alloc(&mut descs), 32);
        for desc in &mut descs {
            desc.set_len(60);
        }
        assert_eq!(a.tx_burst(&mut descs), 32, "the wire takes them all");
        assert!(descs.iter().all(|d| *d == Desc::default()), "every slot given up");
        let mut arrived = 0;
        while b.recv_bytes().is_some() {
            arrived += 1;
        }
        assert_eq!(arrived + a.faults().tx_dropped, 32);
        assert!(a.faults().tx_dropped > 5, "{:?}", a.faults());
        assert_eq!(b.free_frames(), 64);
    }
}
