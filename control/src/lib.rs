//! The vipdrift daemon: the shell around the sans-IO protocol crates.
//!
//! It owns what needs threads, sockets and a clock: the workers on every
//! configured NIC queue (the engine's poll loops, each with a
//! [`Responder`] that answers ARP, NS and echo for the VIPs this node owns
//! and hands the rest of their traffic to a [`VipHandler`]), the control
//! thread that runs the node's VRRP groups ([`vipdrift_vrrp::node::Node`]),
//! the admin socket and metrics endpoint, bonds, notify hooks and live
//! reload. The decisions are the protocol crate's; this crate carries them
//! out.
//!
//! - [`config`]: the TOML configuration, checked with errors that name the
//!   file, line and key.
//! - [`Daemon`]: start from a configuration (and a VIP handler factory),
//!   then steer it through its [`DaemonHandle`] from any thread.
//! - [`admin`]: the admin API's request and reply shapes, shared with the CLI.
//! - [`metrics`]: the Prometheus exposition of status and stats.
//! - [`Nic`]: the one recipe that prepares a NIC for VIPs (also used by
//!   `vipdrift serve`).
//!
//! A daemon whose VIPs' TCP and UDP go to the embedder's own handler on the
//! pinned workers:
//!
//! ```no_run
//! use vipdrift_control::{config, Daemon, VipFrame, VipHandler, WorkerInfo};
//! use vipdrift_engine::{DropReason, Packet, Verdict};
//!
//! struct Sink(u64);
//! impl VipHandler for Sink {
//!     type Command = ();
//!     fn handle(&mut self, _packet: &mut Packet<'_>, _frame: &VipFrame) -> Verdict {
//!         self.0 += 1;
//!         Verdict::Drop(DropReason::Handler)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = config::load("/etc/vipdrift/vipdrift.toml".as_ref())?;
//! let daemon = Daemon::builder(config).vip_handler(|_: &WorkerInfo| Sink(0)).start()?;
//! daemon.handle().set_priority("web", 150)?;
//! daemon.stop();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
mod bond;
pub mod config;
mod daemon;
mod error;
mod event;
mod http;
mod interface;
mod kernel_vips;
mod link;
mod listeners;
pub mod metrics;
#[cfg(test)]
mod mutate;
mod nic;
mod notify;
mod responder;
mod workers;

pub use daemon::{
    Daemon, DaemonBuilder, DaemonHandle, GroupReport, NoVipHandler, QueueReport, RunReport, RuntimeError, EVENT_QUEUE,
};
pub use event::{DaemonEvent, TransitionEvent};
pub use nic::{solicited_node_mac, Nic, NicLock};
pub use responder::{Responder, ResponderCommand, ResponderStats, Unserved, VipCommand, VipFrame, VipHandler};
pub use workers::WorkerInfo;
