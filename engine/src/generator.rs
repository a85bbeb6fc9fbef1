//! A transmit loop for `vipdrift gen`: fills free frames from a template and
//! sends them in bursts, at a paced rate or flat out, counting what comes back.

use crate::port::{Desc, Port};
use crate::stats::{Counters, QueueStats};
use crate::worker::MAX_BURST;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to send and for how long.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    /// The frame every packet copies.
    pub template: Vec<u8>,
    /// Frames per burst.
    pub burst: usize,
    /// Stop after this many frames (None: until the duration or the stop flag).
    pub count: Option<u64>,
    /// Stop after this long (None: until the count or the stop flag).
    pub duration: Option<Duration>,
    /// Packets per second (None: as fast as the port takes them).
    pub rate: Option<u64>,
    /// After the last frame is sent, keep receiving this long to count what
    /// comes back.
    pub drain: Duration,
    /// Byte offset of a 16-bit field to increment per packet (a UDP source
    /// port, say, to spread flows), if any.
    pub vary_u16_at: Option<usize>,
}

/// A packet generator over one port.
pub struct Generator<P: Port> {
    port: P,
    config: GeneratorConfig,
    stats: Arc<QueueStats>,
    stop: Arc<AtomicBool>,
    counters: Counters,
}

impl<P: Port> Generator<P> {
    /// A generator that publishes to `stats` and stops when `stop` is set.
    pub fn new(port: P, config: GeneratorConfig, stats: Arc<QueueStats>, stop: Arc<AtomicBool>) -> Self {
        Generator { port, config, stats, stop, counters: Counters::default() }
    }

    /// The port (for its bound mode and frame accounting after a run).
    pub fn port(&self) -> &P {
        &self.port
    }

    /// Runs to the count, the duration or the stop flag; returns the final
    /// counters and the seconds spent transmitting.
    pub fn run(&mut self) -> (Counters, f64) {
        let burst = self.config.burst.clamp(1, MAX_BURST);
        let mut descs: [Desc; MAX_BURST] = std::array::from_fn(|_| Desc::default());
        let mut rx: [Desc; MAX_BURST] = std::array::from_fn(|_| Desc::default());
        let template_len = self.config.template.len().min(self.port.frame_capacity());
        let start = Instant::now();
        let deadline = self.config.duration.map(|d| start + d);
        let mut sent: u64 = 0;
        let mut seq: u16 = 0;
        let mut loops: u32 = 0;
        loop {
            loops = loops.wrapping_add(1);
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(limit) = self.config.count {
                if sent >= limit {
                    break;
                }
            }
            // Reading the clock every 64 loops keeps it off the per-burst cost.
            let now = if loops.is_multiple_of(64) || self.config.rate.is_some() { Some(Instant::now()) } else { None };
            if let (Some(deadline), Some(now)) = (deadline, now) {
                if now >= deadline {
                    break;
                }
            }
            let mut want = burst as u64;
            if let Some(limit) = self.config.count {
                want = want.min(limit - sent);
            }
            if let (Some(rate), Some(now)) = (self.config.rate, now) {
                let due = (now.duration_since(start).as_secs_f64() * rate as f64) as u64;
                want = want.min(due.saturating_sub(sent));
            }
            if want > 0 {
                let n = self.port.alloc(&mut descs[..want as usize]);
                for desc in &mut descs[..n] {
                    let frame = self.port.frame_mut(desc);
                    frame[..template_len].copy_from_slice(&self.config.template[..template_len]);
                    if let Some(at) = self.config.vary_u16_at {
                        if at + 2 <= template_len {
                            frame[at..at + 2].copy_from_slice(&seq.to_be_bytes());
                            seq = seq.wrapping_add(1);
                        }
                    }
                    desc.set_len(template_len as u32);
                }
                let accepted = self.port.tx_burst(&mut descs[..n]);
                if accepted < n {
                    self.port.release(&mut descs[accepted..n]);
                }
                sent += accepted as u64;
                self.counters.tx_packets += accepted as u64;
                self.counters.tx_bytes += accepted as u64 * template_len as u64;
            }
            self.receive(&mut rx[..burst]);
            self.port.service();
            self.counters.absorb_port(self.port.counters());
            self.stats.publish(&self.counters);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let drain_until = Instant::now() + self.config.drain;
        while Instant::now() < drain_until && !self.stop.load(Ordering::Relaxed) {
            self.port.service();
            if self.receive(&mut rx[..burst]) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        self.port.service();
        self.port.sync_counters();
        self.counters.absorb_port(self.port.counters());
        self.stats.publish(&self.counters);
        (self.counters, elapsed)
    }

    fn receive(&mut self, rx: &mut [Desc]) -> usize {
        let n = self.port.rx_burst(rx);
        if n > 0 {
            self.counters.rx_packets += n as u64;
            self.counters.rx_bytes += rx[..n].iter().map(|d| u64::from(d.len())).sum::<u64>();
            self.port.release(&mut rx[..n]);
        }
        n
    }
}
