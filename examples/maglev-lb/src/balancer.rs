//! The load balancer's data path: a [`VipHandler`] on every worker. For a
//! TCP or UDP frame to the VIP it finds the flow's backend (the one it went
//! to before, else Maglev's pick), rewrites the destination MAC to the
//! backend's and the source MAC to the VIP's, and sends the frame back out
//! of the same port; the backend answers the client directly.

use crate::flow::{flow_of, NotAFlow};
use crate::flows::{FlowTable, Remembered};
use crate::pool::Pool;
use std::sync::Arc;
use vipdrift_control::{VipFrame, VipHandler};
use vipdrift_engine::{DropReason, Packet, Verdict};
use vipdrift_wire::PublishedCounters;

/// Flows each worker remembers by default.
pub const DEFAULT_FLOWS: usize = 1 << 16;

vipdrift_wire::counter_set! {
    /// What a worker's balancer did.
    pub struct BalancerCounters {
        /// Frames sent on to a backend.
        forwarded: forwarded => "forwarded",
        /// Flows seen for the first time (or whose backend went), given a backend by Maglev.
        new_flows: forwarded => "new_flows",
        /// Frames of flows already known, sent to the same backend.
        known_flows: forwarded => "known_flows",
        /// Known flows forgotten to make room for new ones.
        evicted: forwarded => "evicted",
        /// Dropped: an IP fragment (the ports are not in every fragment).
        fragment: dropped => "fragment",
        /// Dropped: shorter than its headers.
        truncated: dropped => "truncated",
        /// Dropped: not TCP or UDP.
        unknown_protocol: dropped => "unknown_protocol",
        /// Dropped: not IPv4 or IPv6.
        not_ip: dropped => "not_ip",
        /// Dropped: no backend takes new flows.
        no_backend: dropped => "no_backend",
    }
}

/// One worker's balancer.
pub struct Balancer {
    pool: Arc<Pool>,
    flows: FlowTable,
    counters: BalancerCounters,
    published: Arc<PublishedCounters<BalancerCounters>>,
}

impl Balancer {
    /// A balancer over `pool` remembering about `flows` flows.
    pub fn new(pool: Arc<Pool>, flows: usize) -> Balancer {
        Balancer {
            pool,
            flows: FlowTable::new(flows),
            counters: BalancerCounters::default(),
            published: Arc::default(),
        }
    }

    /// The counters, as published after each burst, for another thread.
    pub fn published(&self) -> Arc<PublishedCounters<BalancerCounters>> {
        self.published.clone()
    }

    /// The counters so far (the worker's own copy).
    pub fn counters(&self) -> BalancerCounters {
        self.counters
    }

    fn drop_for(&mut self, reason: NotAFlow) -> Verdict {
        let c = &mut self.counters;
        match reason {
            NotAFlow::Fragment => c.fragment += 1,
            NotAFlow::Truncated => c.truncated += 1,
            NotAFlow::UnknownProtocol => c.unknown_protocol += 1,
            NotAFlow::NotIp => c.not_ip += 1,
        }
        Verdict::Drop(DropReason::Handler)
    }
}

impl VipHandler for Balancer {
    /// A new pool (backends drained, removed or added), built by the caller.
    type Command = Arc<Pool>;

    #[inline]
    fn handle(&mut self, packet: &mut Packet<'_>, frame: &VipFrame) -> Verdict {
        let key = match flow_of(packet.data()) {
            Ok(key) => key,
            Err(reason) => return self.drop_for(reason),
        };
        let hash = key.hash();
        let pool = &*self.pool;
        let backend = match self.flows.lookup(&key, hash, |b| pool.serving(b).is_some()) {
            Remembered::Known(backend) => {
                self.counters.known_flows += 1;
                backend
            }
            Remembered::New => {
                let Some(backend) = pool.pick(hash) else {
                    self.counters.no_backend += 1;
                    return Verdict::Drop(DropReason::Handler);
                };
                self.counters.new_flows += 1;
                if self.flows.remember(key, hash, backend) {
                    self.counters.evicted += 1;
                }
                backend
            }
        };
        let Some(to) = pool.serving(backend) else {
            self.counters.no_backend += 1;
            return Verdict::Drop(DropReason::Handler);
        };
        let data = packet.data_mut();
        data[..6].copy_from_slice(&to.mac.0);
        data[6..12].copy_from_slice(&frame.mac.0);
        self.counters.forwarded += 1;
        Verdict::Transmit
    }

    fn command(&mut self, pool: &Arc<Pool>) {
        self.pool = pool.clone();
    }

    fn after_burst(&mut self) {
        self.published.publish(&self.counters);
    }
}
