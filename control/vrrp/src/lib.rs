//! VRRPv3 for vipdrift, sans-IO: no socket, no thread, no clock.
//!
//! The daemon (`vipdrift-control`) feeds this crate frames, link states,
//! operator requests and the time, and carries out what comes back: frames
//! to transmit, ownership to give the workers, events to report. Every
//! decision that matters for a failover is made here and can be tested in
//! virtual time, N nodes on a simulated LAN, before it meets a network.
//!
//! - [`advert`]: the VRRPv3 advertisement codec (RFC 9568, RFC 5798
//!   checksums), the only place centiseconds exist.
//! - [`router`]: the virtual router state machine (RFC 9568 §6).
//! - [`accept`]: the per-router acceptance checks (RFC 9568 §7.1).
//! - [`garp`]: the gratuitous ARP / unsolicited NA schedule after a takeover.
//! - [`group`]: one group on one interface, joining the four above.
//! - [`spec`]: a group as the operator defines it.
//! - [`node`]: a node's groups together, and the policy around them:
//!   hand-over on stop and maintenance, the reload diff, link reactions.
//!
//! Like quinn-proto, it is driven by `handle_*(now, …)` calls, asks for
//! the clock through `poll_timeout()`, and hands out its work through
//! `poll_*()` calls that say when to make them.
//!
//! ```
//! use std::time::Duration;
//! use vipdrift_vrrp::group::{GroupConfig, Output, VrrpGroup};
//! use vipdrift_vrrp::router::State;
//! use vipdrift_wire::{MacAddr, Time};
//!
//! let config = GroupConfig::example(51, 100);
//! let mut group = VrrpGroup::new(config);
//! let mut out = Vec::new();
//! group.start(Time::ZERO, &mut out);
//! assert_eq!(group.state(), State::Backup);
//! // Nobody advertises: the master-down timer fires and this node takes over.
//! let deadline = group.poll_timeout().unwrap();
//! group.handle_timeout(deadline, &mut out);
//! assert_eq!(group.state(), State::Master);
//! assert!(out.contains(&Output::Own(true)));
//! # let _ = (Duration::ZERO, MacAddr::BROADCAST);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod accept;
pub mod advert;
pub mod garp;
pub mod group;
pub mod node;
pub mod router;
pub mod spec;

pub use vipdrift_wire::Time;
