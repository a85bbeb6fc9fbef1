//! maglev-lb: an L4 load balancer in direct-server-return mode, the model
//! of IPVS "DR" behind keepalived, built on vipdrift's public API.
//!
//! Two load balancer nodes share a VIP through vipdrift's VRRP failover.
//! On the master, every worker's [`Balancer`] sends each TCP or UDP flow to
//! the VIP to a backend chosen by Maglev consistent hashing over the
//! 5-tuple, by rewriting the frame's destination MAC; the backend holds the
//! VIP on `lo` (with `arp_ignore=1`, `arp_announce=2`) and answers the
//! client directly. Both nodes build the same [`MaglevTable`] from the same
//! backends, so a flow keeps its backend across a failover with no shared
//! state.
//!
//! - [`maglev`]: the table (NSDI 2016 §3.4), with weights.
//! - [`pool`]: the backends, their states (active, draining, removed) and
//!   the table over the active ones.
//! - [`flow`] and [`flows`]: a frame's 5-tuple, and the flows a worker has
//!   seen (so a draining backend keeps its flows).
//! - [`balancer`]: the per-worker data path.
//! - [`config`]: the vipdrift configuration plus `[[backend]]` tables.
//!
//! [`Balancer`]: balancer::Balancer
//! [`MaglevTable`]: maglev::MaglevTable
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod balancer;
pub mod config;
pub mod flow;
pub mod flows;
pub mod maglev;
pub mod pool;
