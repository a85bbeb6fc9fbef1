//! Why the daemon could not start: its own module, so the shell's rooms
//! (NIC, workers, bonds) report errors without importing the daemon.

use crate::config::ConfigError;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An interface could not be prepared.
    #[error("interface `{iface}`: {message}")]
    Interface {
        /// The interface.
        iface: String,
        /// What failed.
        message: String,
    },
    /// A thread or the poller could not be created.
    #[error("{0}")]
    Io(String),
    /// The configuration file is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A group's delivery does not fit this daemon (see [`crate::config::Config::resolve_delivery`]).
    #[error("{0}")]
    Delivery(String),
    /// The admin socket or the metrics endpoint could not be opened.
    #[error("{0}")]
    Endpoint(String),
}
