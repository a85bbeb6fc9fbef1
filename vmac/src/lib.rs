//! Sans-IO virtual-MAC service for vipdrift.
//!
//! This crate will own the endpoint table (virtual MACs and their VIPs), the
//! ARP / NDP / ICMP-echo responders that rewrite a received frame in place,
//! and the gratuitous-ARP / unsolicited-NA builders the control plane sends on
//! takeover. It takes byte slices and returns verdicts; it never touches a
//! thread, a socket or a clock. So far it holds the ARP wire layer: the
//! checked view, the in-place reply and the gratuitous-ARP builders.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alb;
pub mod arp;
pub mod bond;
pub mod checksum;
pub mod ether;
pub mod icmp;
pub mod ndp;
pub mod service;

pub use bond::{BondCounters, BondMode, BondOutcome, BondService, BondView, TlbPlan};
pub use service::{
    vrrp_mac, vrrp_mac_v4, vrrp_mac_v6, AddressMode, Group, Outcome, Reject, ServiceCounters, VmacService,
};
