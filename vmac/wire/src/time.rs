//! The one clock type: microseconds since an origin the caller picks (the
//! daemon's start, or zero in a virtual-time test). Timer arithmetic is in
//! microseconds so a 10 ms VRRP interval still gives each priority its own
//! skew; the wire's centiseconds exist only in the VRRP codec.

use std::time::Duration;

/// A point in time, in microseconds since an arbitrary origin (virtual in tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(0);
    /// Later than any deadline: "never".
    pub const NEVER: Time = Time(u64::MAX);

    /// `self + d`, saturating.
    #[inline]
    pub fn after(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.as_micros().min(u128::from(u64::MAX)) as u64))
    }

    /// How long after `earlier` this is (zero if it is not later).
    #[inline]
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// The time `d` after the origin.
    #[inline]
    pub fn from_origin(d: Duration) -> Time {
        Time::ZERO.after(d)
    }

    /// How long after the origin this is.
    #[inline]
    pub fn since_origin(self) -> Duration {
        Duration::from_micros(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Time::NEVER.after(Duration::from_secs(1)), Time::NEVER);
        assert_eq!(Time(5).since(Time(9)), Duration::ZERO);
        assert_eq!(Time(9).since(Time(5)), Duration::from_micros(4));
        assert_eq!(Time::from_origin(Duration::from_millis(3)).since_origin(), Duration::from_millis(3));
    }
}
