//! A worker's lease on kernel delivery: the worker that serves a queue
//! vouches, by renewing the queue's lease in the [`DeliveryGate`], that it
//! is running. A worker that stops (the process killed, frozen, wedged)
//! stops renewing, and the steering program stops passing that queue's VIP
//! traffic to the kernel once the lease lapses.
//!
//! A worker that finds it was itself held up for so long that another node
//! may have taken the VIP meanwhile (`stall_after`: no peer takes over
//! sooner than three advert intervals) does not renew. It raises its stall
//! flag instead and waits for the control thread to step its groups down
//! and clear the flag, so that the two nodes never deliver at the same
//! time. A shorter hold-up only lets the lease lapse until the next poll.

use crate::steer::DeliveryGate;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What one look at the clock decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStep {
    /// The lease has enough left: nothing to write.
    Keep,
    /// Write this deadline (nanoseconds on CLOCK_MONOTONIC).
    Renew(u64),
    /// The worker was held up for longer than `stall_after`: stop renewing
    /// and say so.
    Stalled,
    /// Still waiting for the control thread to clear a stall.
    Held,
}

/// The lease arithmetic of one queue, without the clock or the gate (so it
/// is tested in virtual time).
#[derive(Clone, Debug)]
pub struct LeasePolicy {
    lease_ns: u64,
    stall_after_ns: u64,
    /// When the clock was last looked at (0: never).
    last_ns: u64,
    /// The deadline last written (0: none).
    until_ns: u64,
}

impl LeasePolicy {
    /// A lease of `lease` (at least 1 ms); a gap between two looks at the
    /// clock longer than `stall_after` (at least the lease) is a stall.
    pub fn new(lease: Duration, stall_after: Duration) -> LeasePolicy {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let lease_ns = nanos(lease).max(1_000_000);
        LeasePolicy { lease_ns, stall_after_ns: nanos(stall_after).max(lease_ns), last_ns: 0, until_ns: 0 }
    }

    /// The step at `now_ns`, given whether a stall is still being handled.
    /// Renews when less than three quarters of the lease is left, so the
    /// shared memory the program reads is written every quarter lease, not
    /// every poll.
    pub fn step(&mut self, now_ns: u64, stall_pending: bool) -> LeaseStep {
        let gap = now_ns.saturating_sub(self.last_ns);
        let seen_before = self.last_ns != 0;
        self.last_ns = now_ns;
        if seen_before && gap > self.stall_after_ns {
            self.until_ns = 0;
            return LeaseStep::Stalled;
        }
        if stall_pending {
            return LeaseStep::Held;
        }
        if self.until_ns.saturating_sub(now_ns) < self.lease_ns - self.lease_ns / 4 {
            self.until_ns = now_ns.saturating_add(self.lease_ns);
            return LeaseStep::Renew(self.until_ns);
        }
        LeaseStep::Keep
    }
}

/// A worker's lease on one queue: the policy, the gate it writes and the
/// stall flag it shares with the control thread.
#[derive(Debug)]
pub struct LeaseKeeper {
    policy: LeasePolicy,
    gate: DeliveryGate,
    queue: u32,
    stalled: Arc<AtomicBool>,
    stalls: u64,
}

impl LeaseKeeper {
    /// A keeper of `queue`'s lease in `gate` under `policy`; the flag it returns is set
    /// when the worker stalls, and the control thread clears it once it has
    /// stepped the queue's groups down.
    pub fn new(gate: DeliveryGate, queue: u32, policy: LeasePolicy) -> (LeaseKeeper, Arc<AtomicBool>) {
        let stalled = Arc::new(AtomicBool::new(false));
        let keeper = LeaseKeeper { policy, gate, queue, stalled: stalled.clone(), stalls: 0 };
        (keeper, stalled)
    }

    /// Looks at the clock once (called every poll).
    pub fn tick(&mut self, now_ns: u64) {
        match self.policy.step(now_ns, self.stalled.load(Ordering::Acquire)) {
            LeaseStep::Keep | LeaseStep::Held => {}
            LeaseStep::Renew(until) => self.gate.renew(self.queue, until),
            LeaseStep::Stalled => {
                self.gate.renew(self.queue, 0);
                self.stalls += 1;
                self.stalled.store(true, Ordering::Release);
            }
        }
    }

    /// Stalls seen so far.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_fresh_lease_is_written_at_once_then_every_quarter_lease() {
        let mut policy = LeasePolicy::new(Duration::from_millis(20), Duration::from_millis(30));
        assert_eq!(policy.step(1_000 * MS, false), LeaseStep::Renew(1_020 * MS));
        assert_eq!(policy.step(1_001 * MS, false), LeaseStep::Keep);
        assert_eq!(policy.step(1_004 * MS, false), LeaseStep::Keep);
        assert_eq!(policy.step(1_005 * MS + 1, false), LeaseStep::Renew(1_025 * MS + 1));
    }

    #[test]
    fn a_gap_longer_than_the_lease_is_a_stall_and_holds_until_cleared() {
        let mut policy = LeasePolicy::new(Duration::from_millis(20), Duration::from_millis(30));
        assert_eq!(policy.step(1_000 * MS, false), LeaseStep::Renew(1_020 * MS));
        // Frozen for 5 s (SIGSTOP), then continued.
        assert_eq!(policy.step(6_000 * MS, false), LeaseStep::Stalled);
        assert_eq!(policy.step(6_001 * MS, true), LeaseStep::Held);
        assert_eq!(policy.step(6_002 * MS, true), LeaseStep::Held);
        // The control thread stepped down and cleared the flag.
        assert_eq!(policy.step(6_003 * MS, false), LeaseStep::Renew(6_023 * MS));
    }

    #[test]
    fn a_gap_up_to_stall_after_only_lets_the_lease_lapse() {
        let mut policy = LeasePolicy::new(Duration::from_millis(20), Duration::from_millis(30));
        assert_eq!(policy.step(1_000 * MS, false), LeaseStep::Renew(1_020 * MS));
        assert_eq!(policy.step(1_019 * MS, false), LeaseStep::Renew(1_039 * MS));
        // 30 ms without a poll: lapsed for 10 ms, but no peer could have
        // taken over yet.
        assert_eq!(policy.step(1_049 * MS, false), LeaseStep::Renew(1_069 * MS));
        assert_eq!(policy.step(1_079 * MS + 1, false), LeaseStep::Stalled);
    }

    #[test]
    fn the_lease_is_at_least_a_millisecond() {
        let mut policy = LeasePolicy::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(policy.step(10 * MS, false), LeaseStep::Renew(11 * MS));
    }
}
