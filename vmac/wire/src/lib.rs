//! The vocabulary every vipdrift crate shares, and nothing else: the one
//! MAC address type ([`MacAddr`]), the one clock type ([`Time`], in
//! microseconds since an origin the caller picks), the one address-family
//! type ([`Family`]) and the one way to declare, publish and name a set of
//! counters ([`counter_set!`], [`CounterSet`], [`PublishedCounters`]).
//!
//! It sits under every other crate: the engine, the sans-IO vMAC service and
//! VRRP crates, and the daemon. It has no I/O and no dependencies beyond
//! `thiserror` (and `serde`, behind the `serde` feature, for the daemon's
//! wire formats).
//!
//! ```
//! use vipdrift_wire::{Family, MacAddr, Time};
//! use std::time::Duration;
//!
//! let mac: MacAddr = "00:00:5e:00:01:33".parse().unwrap();
//! assert!(!mac.is_multicast());
//! let now = Time::ZERO.after(Duration::from_millis(10));
//! assert_eq!(now.since(Time::ZERO), Duration::from_millis(10));
//! assert_eq!(Family::of("2001:db8::1".parse().unwrap()), Family::Ipv6);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod counters;
mod family;
mod mac;
mod time;

pub use counters::{CounterSet, PublishedCounters};
pub use family::Family;
pub use mac::{MacAddr, ParseMacError};
pub use time::Time;
