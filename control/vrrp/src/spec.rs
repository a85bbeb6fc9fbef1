//! A group as the operator defines it: what the configuration file says
//! about one VRRP group of one address family, before it meets an
//! interface. [`GroupSpec::group_config`] joins it with the interface's
//! address and MAC into the state machine's [`GroupConfig`];
//! [`GroupSpec::describe_change`] says what a reload changes in it.

use crate::advert::ChecksumForm;
use crate::garp::GarpSettings;
use crate::group::GroupConfig;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use vipdrift_vmac::AddressMode;
use vipdrift_wire::{Family, MacAddr};

/// Where a group's VIP traffic goes, other than the ARP, Neighbor
/// Solicitations and VRRP that the engine always answers (`deliver`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Delivery {
    /// To the master's own kernel (nginx, HAProxy, sshd on the VIP): the
    /// VIP is a local address on `lo` that the kernel never claims on the
    /// wire, and the XDP program passes its traffic only while this node is
    /// master and its workers renew their lease.
    Kernel,
    /// To the engine's workers: the embedder's VIP handler.
    Engine,
}

impl Delivery {
    /// The name the configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Delivery::Kernel => "kernel",
            Delivery::Engine => "engine",
        }
    }
}

/// One resolved group: a `[[group]]`, or one family's half of a `[[group]]`
/// with VIPs of both families.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    /// Group name (`name`); both halves of a mixed-family group share it.
    pub name: String,
    /// The interface it runs on (`interface`), the name of an interface.
    pub interface: String,
    /// Its address family.
    pub family: Family,
    /// VRID (`vrid`), 1..=255; unique per interface and family.
    pub vrid: u8,
    /// Priority (`priority`), 1..=255 (255: the address owner).
    pub priority: u8,
    /// Advertisement interval (`advert_interval_ms`): a multiple of 10 ms, 10 ms..=40.95 s.
    pub advert_interval: Duration,
    /// Preempt a lower-priority master (`preempt`).
    pub preempt: bool,
    /// Wait this long before preempting (`preempt_delay_ms`).
    pub preempt_delay: Duration,
    /// `mode`: the VIPs live on the VRRP virtual MAC (`"vmac"`) or on the interface's MAC (`"own_mac"`).
    pub mode: AddressMode,
    /// The VIPs of this family with their prefix lengths (`vips`), in file order.
    pub vips: Vec<(IpAddr, u8)>,
    /// Unicast peers of this family and their MACs (`unicast_peers`); empty: multicast.
    pub unicast_peers: Vec<(IpAddr, MacAddr)>,
    /// IPv4 checksum form to send (`checksum`); unused by IPv6 groups.
    pub checksum_form: ChecksumForm,
    /// GARP / unsolicited NA schedule (`garp`).
    pub garp: GarpSettings,
    /// Program run on each transition as `PROGRAM GROUP OLD_STATE NEW_STATE` (`notify`).
    pub notify: Option<PathBuf>,
    /// Where its VIP traffic goes (`deliver`); `None`: the daemon's default,
    /// the kernel for `vipdrift run`, the engine for an embedder with a VIP
    /// handler.
    pub deliver: Option<Delivery>,
}

impl GroupSpec {
    /// The state machine's configuration, given this node's advertisement
    /// source on the interface (`primary`, of the group's family: see
    /// the configuration's `primary`) and the interface's MAC.
    pub fn group_config(&self, primary: IpAddr, interface_mac: MacAddr) -> GroupConfig {
        debug_assert_eq!(Family::of(primary), self.family, "primary of the group's family");
        GroupConfig {
            vrid: self.vrid,
            priority: self.priority,
            advert_interval: self.advert_interval,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            vips: self.vips.iter().map(|&(ip, _)| ip).collect(),
            primary,
            interface_mac,
            mode: self.mode,
            unicast_peers: self.unicast_peers.clone(),
            checksum_form: self.checksum_form,
            garp: self.garp,
        }
    }

    /// The virtual MAC its VIPs live on, in vmac mode.
    pub fn virtual_mac(&self) -> Option<MacAddr> {
        (self.mode == AddressMode::Vmac).then(|| vipdrift_vmac::vrrp_mac(self.family, self.vrid))
    }

    /// What names the group across reloads: its name and family.
    pub fn key(&self) -> (&str, Family) {
        (&self.name, self.family)
    }

    /// The VIPs without their prefix lengths.
    pub fn vip_addresses(&self) -> Vec<IpAddr> {
        self.vips.iter().map(|&(ip, _)| ip).collect()
    }

    /// Same interface, VRID, address mode and delivery: a running group can be
    /// reconfigured into `other`. Anything else is a different group on the
    /// wire (a removal and an addition).
    pub fn same_identity(&self, other: &GroupSpec) -> bool {
        self.key() == other.key()
            && self.interface == other.interface
            && self.vrid == other.vrid
            && self.mode == other.mode
            && self.deliver == other.deliver
    }

    /// What differs from `new`, for a reload's report: `priority 100 -> 150,
    /// vips [...] -> [...], preempt`.
    pub fn describe_change(&self, new: &GroupSpec) -> String {
        let mut what = Vec::new();
        if self.priority != new.priority {
            what.push(format!("priority {} -> {}", self.priority, new.priority));
        }
        if self.vips != new.vips {
            let show = |v: &[(IpAddr, u8)]| v.iter().map(|(ip, p)| format!("{ip}/{p}")).collect::<Vec<_>>().join(",");
            what.push(format!("vips [{}] -> [{}]", show(&self.vips), show(&new.vips)));
        }
        for (name, differs) in [
            ("advert_interval_ms", self.advert_interval != new.advert_interval),
            ("preempt", self.preempt != new.preempt),
            ("preempt_delay_ms", self.preempt_delay != new.preempt_delay),
            ("unicast_peers", self.unicast_peers != new.unicast_peers),
            ("checksum", self.checksum_form != new.checksum_form),
            ("garp", self.garp != new.garp),
            ("notify", self.notify != new.notify),
        ] {
            if differs {
                what.push(name.to_owned());
            }
        }
        what.join(", ")
    }
}
