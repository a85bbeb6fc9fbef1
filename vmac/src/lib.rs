//! The sans-IO virtual-MAC service of vipdrift: which VIPs live on which
//! MAC and whether this node owns them now, and the responders a worker
//! calls per frame.
//!
//! It takes byte slices and returns verdicts; it never touches a thread, a
//! socket or a clock (callers pass [`vipdrift_wire::Time`]).
//!
//! - [`VmacService`]: the VIP table and the one call a worker makes per
//!   frame: ARP requests ([`arp`]), IPv6 neighbour solicitations ([`ndp`])
//!   and ICMP/ICMPv6 echo ([`icmp`]) for an owned VIP are rewritten in
//!   place into their replies.
//! - The gratuitous ARP and unsolicited NA builders a takeover sends
//!   ([`arp::write_garp`], [`ndp::write_unsolicited_na`]).
//! - One node's NICs sharing VIPs: [`BondService`] (per worker, tlb and
//!   alb), [`TlbPlan`] (where the primary MAC lives), and [`alb`]'s
//!   client-to-NIC table.
//! - [`ether`] and [`checksum`]: framing and the one Internet checksum.
//!
//! ```
//! use vipdrift_vmac::{arp, vrrp_mac_v4, Group, Outcome, VmacService};
//! use vipdrift_wire::MacAddr;
//!
//! let mut service = VmacService::new();
//! service.set_group(Group { id: 51, mac: vrrp_mac_v4(51), vips: vec!["198.51.100.100".parse().unwrap()], owned: true });
//! let mut frame = [0u8; 60];
//! let client = MacAddr([2, 0, 0, 0, 0, 10]);
//! arp::write_request(&mut frame, client, [198, 51, 100, 10].into(), [198, 51, 100, 100].into(), None).unwrap();
//! assert_eq!(service.handle(&mut frame, 60), Outcome::Reply(60));
//! assert_eq!(&frame[6..12], &vrrp_mac_v4(51).0, "answered from the virtual MAC");
//! ```
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
