//! A NIC's carrier (IFF_UP and IFF_RUNNING), checked every `link_check_ms`
//! like bonding's miimon; shared by interfaces and bond NICs.

use std::time::Duration;
use vipdrift_engine::NicFilter;
use vipdrift_wire::Time;

/// One NIC's carrier as last checked.
pub(crate) struct LinkWatch {
    pub(crate) up: bool,
    next_check: Time,
    last_seen_unchanged: Time,
    /// When the link was last seen in its old state, before its latest change.
    pub(crate) changed_since: Time,
    /// Transitions seen.
    pub(crate) changes: u64,
}

impl LinkWatch {
    pub(crate) fn new(filter: &NicFilter) -> LinkWatch {
        LinkWatch {
            up: filter.link_up().unwrap_or(false),
            next_check: Time::ZERO,
            last_seen_unchanged: Time::ZERO,
            changed_since: Time::ZERO,
            changes: 0,
        }
    }

    pub(crate) fn next_check(&self) -> Time {
        self.next_check
    }

    /// Reads the carrier if a check is due at `now`; the new state if it changed.
    pub(crate) fn check(&mut self, now: Time, interval: Duration, filter: &NicFilter) -> Option<bool> {
        if self.next_check > now {
            return None;
        }
        self.next_check = now.after(interval);
        // A NIC that cannot be queried (renamed, removed) is down.
        let up = filter.link_up().unwrap_or(false);
        let changed = up != self.up;
        if changed {
            self.up = up;
            self.changes += 1;
            self.changed_since = self.last_seen_unchanged;
        }
        self.last_seen_unchanged = now;
        changed.then_some(up)
    }
}
