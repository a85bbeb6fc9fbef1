//! When to send gratuitous ARPs / unsolicited NAs after a takeover, sans-IO:
//! a burst at once, a second burst after the neighbours' ARP locktime
//! (Linux ignores updates inside its 1 s `locktime` unless they are real
//! GARPs; older stacks ignore even those), then an optional refresh.

use std::time::Duration;
use vipdrift_wire::Time;

/// The GARP schedule of a group (the config's `garp = { ... }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpSettings {
    /// Announcements per burst (each announces every VIP of the group).
    pub count: u32,
    /// Spacing inside a burst.
    pub interval: Duration,
    /// A second burst this long after the first, if any.
    pub second_burst_after: Option<Duration>,
    /// One announcement every this long while master, if any.
    pub refresh: Option<Duration>,
}

impl Default for GarpSettings {
    /// 5 at 10 ms, a second burst 1 s later, no refresh.
    fn default() -> Self {
        GarpSettings {
            count: 5,
            interval: Duration::from_millis(10),
            second_burst_after: Some(Duration::from_secs(1)),
            refresh: None,
        }
    }
}

/// The schedule of one group's announcements.
#[derive(Clone, Debug)]
pub struct GarpScheduler {
    settings: GarpSettings,
    next: Option<Time>,
    left_in_burst: u32,
    second_burst_at: Option<Time>,
    quick_repeat_at: Option<Time>,
}

/// An extra announcement this long after a takeover's first. A master
/// handing over may answer a request that reached it just before the
/// switch learned the new port; its reply teaches the switch the old port
/// again, and clients are dark until the new master's next frame. The
/// repeat bounds that to about a millisecond instead of a burst interval.
pub const QUICK_REPEAT: Duration = Duration::from_millis(1);

impl GarpScheduler {
    /// An idle scheduler.
    pub fn new(settings: GarpSettings) -> GarpScheduler {
        GarpScheduler { settings, next: None, left_in_burst: 0, second_burst_at: None, quick_repeat_at: None }
    }

    /// Takeover at `now`: the first announcement is due at once.
    pub fn start(&mut self, now: Time) {
        self.left_in_burst = self.settings.count;
        self.next = (self.settings.count > 0).then_some(now);
        self.second_burst_at = self.settings.second_burst_after.map(|d| now.after(d));
        let repeat = self.settings.count > 0 && self.settings.interval > QUICK_REPEAT;
        self.quick_repeat_at = repeat.then(|| now.after(QUICK_REPEAT));
    }

    /// No longer master (or re-GARP not wanted): nothing more is due.
    pub fn stop(&mut self) {
        *self = GarpScheduler::new(self.settings);
    }

    /// When the next announcement is due.
    pub fn poll_timeout(&self) -> Option<Time> {
        match (self.next, self.quick_repeat_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True if an announcement (of every VIP) is due at `now`; advances the schedule.
    pub fn handle_timeout(&mut self, now: Time) -> bool {
        if self.quick_repeat_at.is_some_and(|t| t <= now) {
            self.quick_repeat_at = None;
            return true;
        }
        match self.next {
            Some(due) if due <= now => {}
            _ => return false,
        }
        if self.left_in_burst > 0 {
            self.left_in_burst -= 1;
        }
        self.next = if self.left_in_burst > 0 {
            Some(now.after(self.settings.interval))
        } else if let Some(at) = self.second_burst_at.take() {
            self.left_in_burst = self.settings.count;
            Some(at.max(now))
        } else {
            self.settings.refresh.map(|d| now.after(d))
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the scheduler through virtual time; returns the send times in ms.
    fn sends(settings: GarpSettings, until_ms: u64) -> Vec<u64> {
        let mut s = GarpScheduler::new(settings);
        s.start(Time(0));
        let mut out = Vec::new();
        while let Some(t) = s.poll_timeout() {
            if t.0 > until_ms * 1000 {
                break;
            }
            if s.handle_timeout(t) {
                out.push(t.0 / 1000);
            }
        }
        out
    }

    #[test]
    fn the_default_is_five_at_10_ms_and_a_quick_repeat_then_five_more_a_second_later() {
        assert_eq!(sends(GarpSettings::default(), 10_000), vec![0, 1, 10, 20, 30, 40, 1000, 1010, 1020, 1030, 1040]);
        let dense = GarpSettings { interval: Duration::from_millis(1), second_burst_after: None, ..Default::default() };
        assert_eq!(sends(dense, 100), vec![0, 1, 2, 3, 4], "no repeat when the burst is already that dense");
    }

    #[test]
    fn a_refresh_continues_after_the_bursts_and_stop_ends_everything() {
        let settings = GarpSettings { count: 2, refresh: Some(Duration::from_secs(60)), ..GarpSettings::default() };
        assert_eq!(sends(settings, 130_000), vec![0, 1, 10, 1000, 1010, 61_010, 121_010]);
        let mut s = GarpScheduler::new(settings);
        s.start(Time(0));
        s.stop();
        assert_eq!(s.poll_timeout(), None);
        assert!(!s.handle_timeout(Time(0)));
    }

    #[test]
    fn nothing_is_sent_early_or_with_a_zero_count() {
        let mut s = GarpScheduler::new(GarpSettings::default());
        s.start(Time(5_000));
        assert!(!s.handle_timeout(Time(4_999)));
        assert!(s.handle_timeout(Time(5_000)));
        assert!(sends(GarpSettings { count: 0, ..GarpSettings::default() }, 5_000).is_empty());
    }
}
