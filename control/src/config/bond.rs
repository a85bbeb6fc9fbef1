//! `[[bond]]`: this node's NICs on one LAN sharing IPv4 VIPs, checked key
//! by key and against the groups and bonds before it.

use super::check::{not_unicast, parse_prefixed, valid_group_name, Checker, Owner, Taken};
use super::keys::{
    bond_keys as keys, List, RawBond, BIND_MODES, BOND_MODES, DELIVERIES, EXPECT_BOND_VIP, EXPECT_INTERFACE,
};
use super::locate::{one_of, plural};
use super::{BondSpec, Checked, InterfaceConfig};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use toml::Spanned;
use vipdrift_engine::BindMode;
use vipdrift_vmac::BondMode;
use vipdrift_vrrp::spec::Delivery;

const EXPECT_BOND_NAME: &str = keys::name.expect;
const EXPECT_BOND_INTERFACES: &str = keys::interfaces.expect;
const EXPECT_BOND_VIPS: &str = keys::vips.expect;
const EXPECT_ANNOUNCE: &str = keys::announce_every_ms.expect;

/// One `[[bond]]` being checked: where it is.
struct BondAt<'c, 'a> {
    ck: &'c Checker<'a>,
    table: &'c Spanned<RawBond>,
    path: String,
}

impl BondAt<'_, '_> {
    fn at(&self, field: &str) -> String {
        format!("{}.{field}", self.path)
    }
}

/// Checks the `b`th `[[bond]]` and records what it takes in `taken`.
pub(super) fn check(
    ck: &Checker<'_>,
    b: usize,
    table: &Spanned<RawBond>,
    interfaces: &[InterfaceConfig],
    group_names: &HashMap<String, usize>,
    taken: &mut Taken,
) -> Checked<BondSpec> {
    let raw = table.get_ref();
    let bond = BondAt { ck, table, path: format!("bond[{b}]") };
    let path = &bond.path;
    let bond_line = ck.cx.line(table.span().start);

    let name = bond.name(group_names, taken)?;
    let mode = bond.mode()?;
    let members = bond.interfaces(&raw.interfaces, interfaces, taken)?;
    let vips = bond.vips(&raw.vips, taken)?;

    let clients = ck.int_key(&raw.clients, path, &keys::clients)?;
    let client_timeout = ck.int_key(&raw.client_timeout_s, path, &keys::client_timeout_s)?;
    let rebalance = ck.int_key(&raw.rebalance_ms, path, &keys::rebalance_ms)?;
    let rebalance_burst = ck.int_key(&raw.rebalance_burst, path, &keys::rebalance_burst)?;
    if ck.choice_key(&raw.deliver, path, &keys::deliver, DELIVERIES)? == Delivery::Kernel {
        let span = raw.deliver.as_ref().map_or(table.span(), |v| v.span());
        return Err(ck.cx.err(
            span,
            bond.at("deliver"),
            "\"kernel\" is not available on a bond: each of its NICs answers for the VIPs with its own MAC, \
             which the kernel's delivery cannot follow; expected \"engine\" (or leave deliver out)",
        ));
    }
    let announce = ck.int_key(&raw.announce_every_ms, path, &keys::announce_every_ms)?;
    if (1..100).contains(&announce) {
        let span = raw.announce_every_ms.as_ref().map_or(table.span(), |v| v.span());
        return Err(ck.cx.err(
            span,
            bond.at("announce_every_ms"),
            format!("{announce} is out of range; expected {EXPECT_ANNOUNCE}"),
        ));
    }

    // All checked: record what this bond takes.
    let owner = || Owner { kind: "bond", index: b, name: name.to_owned(), line: bond_line };
    taken.bond_names.insert(name.to_owned(), b);
    for &index in &members {
        taken.interfaces.insert(interfaces[index].name.clone(), owner());
    }
    for &(ip, _) in &vips {
        taken.vips.insert(ip, owner());
    }
    Ok(BondSpec {
        name: name.to_owned(),
        mode,
        interfaces: members.iter().map(|&index| interfaces[index].name.clone()).collect(),
        vips,
        clients: clients as usize,
        client_timeout: Duration::from_secs(client_timeout.unsigned_abs()),
        rebalance_interval: Checker::millis(rebalance),
        rebalance_burst: rebalance_burst as usize,
        announce_every: (announce > 0).then(|| Checker::millis(announce)),
    })
}

impl<'c> BondAt<'c, '_> {
    fn name(&self, group_names: &HashMap<String, usize>, taken: &Taken) -> Checked<&'c str> {
        let (ck, raw) = (self.ck, self.table.get_ref());
        let (name_v, name) =
            ck.name(&raw.name, self.table.span(), &self.at("name"), EXPECT_BOND_NAME, "bond name", valid_group_name)?;
        let other = match (group_names.get(name), taken.bond_names.get(name)) {
            (Some(g), _) => Some(format!("group[{g}]")),
            (None, Some(first)) => Some(format!("bond[{first}]")),
            (None, None) => None,
        };
        if let Some(other) = other {
            return Err(ck.cx.err(
                name_v.span(),
                self.at("name"),
                format!(
                    "{name:?} is already the name of {other}; expected a name used by one [[group]] or [[bond]] only"
                ),
            ));
        }
        Ok(name)
    }

    /// The mode, required, and no key only alb uses in a tlb bond.
    fn mode(&self) -> Checked<BondMode> {
        let (ck, raw) = (self.ck, self.table.get_ref());
        ck.required(&raw.mode, self.table.span(), &self.at("mode"), &one_of(BOND_MODES))?;
        let mode = ck.choice_key(&raw.mode, &self.path, &keys::mode, BOND_MODES)?;
        if mode == BondMode::Tlb {
            let alb_only = [
                (keys::clients.name, &raw.clients),
                (keys::client_timeout_s.name, &raw.client_timeout_s),
                (keys::rebalance_ms.name, &raw.rebalance_ms),
                (keys::rebalance_burst.name, &raw.rebalance_burst),
            ];
            if let Some((field, v)) = alb_only.iter().find_map(|(field, v)| v.as_ref().map(|v| (field, v))) {
                return Err(ck.cx.err(
                    v.span(),
                    self.at(field),
                    format!(
                        "`{field}` is only meaningful for mode = \"alb\" (a tlb bond's clients all know the primary's MAC); expected no `{field}` in a tlb bond, or mode = \"alb\""
                    ),
                ));
            }
        }
        Ok(mode)
    }

    /// The member interfaces by index, the primary first: each once, in no
    /// group or other bond, all with the primary's queues and bind mode.
    fn interfaces(&self, list: &List, interfaces: &[InterfaceConfig], taken: &Taken) -> Checked<Vec<usize>> {
        let ck = self.ck;
        let if_list = ck.required(list, self.table.span(), &self.at("interfaces"), EXPECT_BOND_INTERFACES)?;
        let mut members: Vec<usize> = Vec::new();
        for (n, v) in if_list.get_ref().iter().enumerate() {
            let key = format!("{}[{n}]", self.at("interfaces"));
            let if_name = ck.string(v, &key, EXPECT_INTERFACE)?;
            let index = ck.interface_index(v, &key, if_name, interfaces)?;
            if let Some(first) = members.iter().position(|&m| m == index) {
                return Err(ck.cx.err(
                    v.span(),
                    key,
                    format!("{if_name:?} is listed twice (also interfaces[{first}]); expected each interface once"),
                ));
            }
            if let Some(owner) = taken.interfaces.get(if_name) {
                let message = if owner.kind == "group" {
                    format!(
                        "{if_name:?} is the interface of {}; expected an interface no [[group]] runs on: an interface in a bond carries no [[group]]; use the bond's vips",
                        owner.describe()
                    )
                } else {
                    format!(
                        "{if_name:?} is already in {}; expected an interface in one [[bond]] only",
                        owner.describe()
                    )
                };
                return Err(ck.cx.err(v.span(), key, message));
            }
            members.push(index);
        }
        if !(2..=8).contains(&members.len()) {
            let found =
                if members.is_empty() { "an empty array".to_owned() } else { plural(members.len(), "interface") };
            return Err(ck.cx.err(
                if_list.span(),
                self.at("interfaces"),
                format!("found {found}; expected {EXPECT_BOND_INTERFACES}"),
            ));
        }
        self.alike(&members, interfaces, if_list.span())?;
        Ok(members)
    }

    /// Every member has the primary's queues and bind mode.
    fn alike(&self, members: &[usize], interfaces: &[InterfaceConfig], span: std::ops::Range<usize>) -> Checked<()> {
        let ck = self.ck;
        let primary = &interfaces[members[0]];
        let describe_nic = |index: usize| format!("{:?} (line {})", interfaces[index].name, ck.interface_lines[index]);
        let bind_name = |mode: BindMode| BIND_MODES.iter().find(|(_, m)| *m == mode).map_or("?", |(name, _)| *name);
        for &index in &members[1..] {
            let nic = &interfaces[index];
            let differs = if nic.queues != primary.queues {
                Some(format!(
                    "queues {:?}, and the primary {} has queues {:?}",
                    nic.queues,
                    describe_nic(members[0]),
                    primary.queues
                ))
            } else if nic.bind != primary.bind {
                Some(format!(
                    "bind = {:?}, and the primary {} has bind = {:?}",
                    bind_name(nic.bind),
                    describe_nic(members[0]),
                    bind_name(primary.bind)
                ))
            } else {
                None
            };
            if let Some(differs) = differs {
                return Err(ck.cx.err(
                    span,
                    self.at("interfaces"),
                    format!(
                        "interface {} has {differs}; expected the same `queues` and `bind` on every interface of a bond (the bond's workers own one queue of each NIC)",
                        describe_nic(index)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn vips(&self, list: &List, taken: &Taken) -> Checked<Vec<(Ipv4Addr, u8)>> {
        let ck = self.ck;
        let vip_list = ck.required(list, self.table.span(), &self.at("vips"), EXPECT_BOND_VIPS)?;
        if vip_list.get_ref().is_empty() {
            return Err(ck.cx.err(
                vip_list.span(),
                self.at("vips"),
                format!("found an empty array; expected {EXPECT_BOND_VIPS}"),
            ));
        }
        let mut vips: Vec<(Ipv4Addr, u8)> = Vec::new();
        for (n, v) in vip_list.get_ref().iter().enumerate() {
            let key = format!("{}[{n}]", self.at("vips"));
            let s = ck.string(v, &key, EXPECT_BOND_VIP)?;
            let bad = |what: String| ck.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_BOND_VIP}"));
            let (ip, prefix) = parse_prefixed(s).map_err(|e| bad(format!("in {s:?}, {e}")))?;
            let IpAddr::V4(ip4) = ip else {
                return Err(bad(format!(
                    "{s:?} is an IPv6 address (bonds balance IPv4 by ARP; IPv6 VIPs belong in a [[group]])"
                )));
            };
            if let Some(why) = not_unicast(ip) {
                return Err(bad(format!("{ip} {why}")));
            }
            if let Some(first) = vips.iter().position(|&(x, _)| x == ip4) {
                return Err(ck.cx.err(
                    v.span(),
                    key,
                    format!("{ip} is listed twice (also vips[{first}]); expected each VIP once"),
                ));
            }
            if let Some(owner) = taken.vips.get(&ip4) {
                return Err(ck.cx.err(
                    v.span(),
                    key,
                    format!(
                        "{ip} is already a VIP of {}; expected a VIP of no [[group]] and no other [[bond]]",
                        owner.describe()
                    ),
                ));
            }
            vips.push((ip4, prefix.unwrap_or(32)));
        }
        Ok(vips)
    }
}
