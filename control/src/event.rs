//! What the daemon reports while it runs: each event is logged through
//! `tracing`, handed to every subscriber of the daemon's handle, and, for a
//! transition, to the group's notify hook.

use crate::admin;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vipdrift_vrrp::router::{Reason, State};
use vipdrift_wire::Family;

/// A state change, as the daemon reports it (one JSON line on stderr, the
/// notify hook, status).
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionEvent {
    /// Wall-clock time of the transition.
    pub at: SystemTime,
    /// The group's name.
    pub group: String,
    /// Its VRID.
    pub vrid: u8,
    /// The group's address family.
    pub family: Family,
    /// Old state.
    pub from: State,
    /// New state.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// Time since the triggering event: for `master_down`, since the last
    /// advert heard (or since startup); for link changes, since the last check
    /// that still saw the old link state; otherwise 0 (acted on receipt).
    pub elapsed: Duration,
}

impl TransitionEvent {
    pub(crate) fn status(&self) -> admin::TransitionStatus {
        admin::TransitionStatus {
            from: self.from,
            to: self.to,
            reason: self.reason,
            time: unix_seconds(self.at),
            elapsed_ms: self.elapsed.as_secs_f64() * 1e3,
        }
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// Something the daemon reports while it runs (each is also logged).
#[derive(Clone, Debug, PartialEq)]
pub enum DaemonEvent {
    /// A group changed state.
    Transition(TransitionEvent),
    /// An interface's link changed.
    Link {
        /// The interface.
        iface: String,
        /// Up (carrier) or down.
        up: bool,
    },
    /// A notify hook could not be started.
    NotifyFailed {
        /// The group.
        group: String,
        /// The program.
        program: PathBuf,
        /// Why.
        error: String,
    },
    /// The configuration was re-read.
    Reloaded {
        /// What changed, one line per change.
        changes: Vec<String>,
    },
    /// A new configuration was refused; the running one stays.
    ReloadRefused {
        /// Why.
        error: String,
    },
    /// A bond moved traffic after one of its NICs' links changed.
    Bond {
        /// The bond.
        bond: String,
        /// What moved.
        change: String,
        /// From the last time the link was seen in its old state to the move.
        elapsed: Duration,
    },
}

impl DaemonEvent {
    /// Logs the event through `tracing`, with its facts as fields.
    pub(crate) fn log(&self) {
        match self {
            DaemonEvent::Transition(t) => tracing::info!(
                event = "transition",
                group = %t.group,
                vrid = t.vrid,
                family = t.family.name(),
                from = t.from.name(),
                to = t.to.name(),
                reason = t.reason.name(),
                elapsed_ms = t.elapsed.as_secs_f64() * 1e3,
                "{} ({}) {} -> {}: {}",
                t.group,
                t.family.name(),
                t.from.name(),
                t.to.name(),
                t.reason.name()
            ),
            DaemonEvent::Link { iface, up: true } => {
                tracing::info!(event = "link", iface = %iface, up = true, "{iface}: link up")
            }
            DaemonEvent::Link { iface, up: false } => {
                tracing::warn!(event = "link", iface = %iface, up = false, "{iface}: link down")
            }
            DaemonEvent::NotifyFailed { group, program, error } => tracing::warn!(
                event = "notify_failed",
                group = %group,
                program = %program.display(),
                error = %error,
                "notify hook for {group} could not run: {error}"
            ),
            DaemonEvent::Reloaded { changes } => {
                tracing::info!(event = "reload", ok = true, changes = %changes.join("; "), "configuration reloaded")
            }
            DaemonEvent::Bond { bond, change, elapsed } => tracing::info!(
                event = "bond",
                bond = %bond,
                change = %change,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "bond {bond}: {change}"
            ),
            DaemonEvent::ReloadRefused { error } => tracing::error!(
                event = "reload",
                ok = false,
                error = %error,
                "new configuration refused, the running one stays: {error}"
            ),
        }
    }
}
