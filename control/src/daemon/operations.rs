//! What the daemon keeps for its operator beyond the node: the configuration
//! and the reload history, shared by the shell, reload and the reports.

use crate::config::Config;
use std::path::PathBuf;

/// The operator-facing state of the daemon beyond the node: its
/// configuration (what a reload compares against) and its history.
pub(super) struct Operations {
    pub(super) config: Config,
    pub(super) config_path: Option<PathBuf>,
    /// Whether the daemon has a VIP handler, which decides a group's
    /// default delivery (see [`Config::resolve_delivery`]).
    pub(super) has_handler: bool,
    pub(super) reloads: u64,
    pub(super) reload_failures: u64,
    pub(super) last_reload_error: Option<String>,
    pub(super) events_dropped: u64,
}
