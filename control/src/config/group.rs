//! `[[group]]`: one VRRP virtual router (two, for VIPs of both families),
//! checked key by key and against the groups before it.

use super::check::{is_link_local6, not_unicast, parse_prefixed, valid_group_name, Checker, Owner};
use super::keys::{
    garp_keys, group_keys as keys, Field, List, RawGarp, RawGroup, RawPeer, CHECKSUM_FORMS, DELIVERIES,
    EXPECT_INTERFACE, EXPECT_VIP, GROUP_MODES,
};
use super::{Checked, InterfaceConfig};
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;
use vipdrift_vrrp::advert::MAX_ADDRESSES;
use vipdrift_vrrp::garp::GarpSettings;
use vipdrift_vrrp::spec::{Delivery, GroupSpec};
use vipdrift_wire::{Family, MacAddr};

const EXPECT_GROUP_NAME: &str = keys::name.expect;
const EXPECT_VRID: &str = keys::vrid.expect;
const EXPECT_ADVERT: &str = keys::advert_interval_ms.expect;
const EXPECT_VIPS: &str = keys::vips.expect;
const EXPECT_PEER_ADDRESS: &str = super::keys::peer_keys::address.expect;
const EXPECT_MAC: &str = super::keys::peer_keys::mac.expect;
const EXPECT_NOTIFY: &str = keys::notify.expect;

/// A VIP as the group lists it: address, prefix, index in `vips`, span.
type Vip = (IpAddr, u8, usize, Range<usize>);

/// What the groups checked so far take, to refuse a second use.
pub(super) struct Seen<'s> {
    pub(super) names: &'s mut HashMap<String, usize>,
    pub(super) vrids: &'s mut HashMap<(String, Family, u8), Owner>,
    pub(super) vips: &'s mut HashMap<(String, IpAddr), Owner>,
}

/// One `[[group]]` being checked: where it is, and the interface it runs on.
struct GroupAt<'c, 'a> {
    ck: &'c Checker<'a>,
    table: &'c Spanned<RawGroup>,
    path: String,
    interface: &'c InterfaceConfig,
    if_index: usize,
}

impl GroupAt<'_, '_> {
    fn at(&self, field: &str) -> String {
        format!("{}.{field}", self.path)
    }
}

/// Checks the `g`th `[[group]]` and resolves it into one spec per family.
pub(super) fn check(
    ck: &Checker<'_>,
    g: usize,
    table: &Spanned<RawGroup>,
    interfaces: &[InterfaceConfig],
    seen: Seen<'_>,
) -> Checked<Vec<GroupSpec>> {
    let raw = table.get_ref();
    let path = format!("group[{g}]");
    let at = |field: &str| format!("{path}.{field}");
    let group_line = ck.cx.line(table.span().start);

    let name = name(ck, raw, table, &at, seen.names)?;
    seen.names.insert(name.to_owned(), g);

    let if_v = ck.required(&raw.interface, table.span(), &at("interface"), EXPECT_INTERFACE)?;
    let if_name = ck.string(if_v, &at("interface"), EXPECT_INTERFACE)?;
    let if_index = ck.interface_index(if_v, &at("interface"), if_name, interfaces)?;
    let group = GroupAt { ck, table, path: path.clone(), interface: &interfaces[if_index], if_index };
    let interface = group.interface;

    let vrid_v = ck.required(&raw.vrid, table.span(), &at("vrid"), EXPECT_VRID)?;
    let vrid = ck.int(vrid_v, &at("vrid"), keys::vrid.range.clone(), EXPECT_VRID)? as u8;
    let priority = ck.int_key(&raw.priority, &path, &keys::priority)? as u8;
    let advert_interval = advert_interval(ck, &raw.advert_interval_ms, &at)?;
    let preempt = ck.bool_key(&raw.preempt, &path, &keys::preempt)?;
    let preempt_delay = ck.int_key(&raw.preempt_delay_ms, &path, &keys::preempt_delay_ms)?;
    let mode = ck.choice_key(&raw.mode, &path, &keys::mode, GROUP_MODES)?;

    let vips = group.vips(&raw.vips, seen.vips)?;
    let families = group.families(&vips, &raw.vips, vrid_v, vrid, seen.vrids)?;
    let peers = match &raw.unicast_peers {
        None => Vec::new(),
        Some(list) => group.peers(list, &families)?,
    };
    let checksum_form = ck.choice_key(&raw.checksum, &path, &keys::checksum, CHECKSUM_FORMS)?;
    let garp = garp(ck, raw.garp.as_ref(), &path)?;
    let notify = notify(ck, &raw.notify, &at)?;
    // Absent: the daemon decides (the kernel, or the engine for an embedder's handler).
    let deliver = match &raw.deliver {
        None => None,
        Some(_) => Some(ck.choice_key(&raw.deliver, &path, &keys::deliver, DELIVERIES)?),
    };
    if let (Some(Delivery::Kernel), Some(v)) = (deliver, &raw.deliver) {
        if interface.whole_nic {
            return Err(ck.cx.err(
                v.span(),
                at("deliver"),
                format!(
                    "\"kernel\" cannot reach the kernel on {:?}, whose whole_nic = true sends every frame to the engine; \
                     expected \"engine\", or whole_nic = false on that interface",
                    interface.name
                ),
            ));
        }
    }

    // All checked: record what this group takes, and resolve one spec per family.
    let owner = || Owner { kind: "group", index: g, name: name.to_owned(), line: group_line };
    for &family in &families {
        seen.vrids.insert((interface.name.clone(), family, vrid), owner());
    }
    for (ip, ..) in &vips {
        seen.vips.insert((interface.name.clone(), *ip), owner());
    }
    Ok(families
        .iter()
        .map(|&family| GroupSpec {
            name: name.to_owned(),
            interface: interface.name.clone(),
            family,
            vrid,
            priority,
            advert_interval: Checker::millis(advert_interval),
            preempt,
            preempt_delay: Checker::millis(preempt_delay),
            mode,
            vips: vips
                .iter()
                .filter(|(ip, ..)| Family::of(*ip) == family)
                .map(|&(ip, prefix, ..)| (ip, prefix))
                .collect(),
            unicast_peers: peers.iter().filter(|(ip, _)| Family::of(*ip) == family).copied().collect(),
            checksum_form,
            garp,
            notify: notify.clone(),
            deliver,
        })
        .collect())
}

fn name<'r>(
    ck: &Checker<'_>,
    raw: &'r RawGroup,
    table: &Spanned<RawGroup>,
    at: &dyn Fn(&str) -> String,
    names: &HashMap<String, usize>,
) -> Checked<&'r str> {
    let (name_v, name) =
        ck.name(&raw.name, table.span(), &at("name"), EXPECT_GROUP_NAME, "group name", valid_group_name)?;
    if let Some(&first) = names.get(name) {
        return Err(ck.cx.err(
            name_v.span(),
            at("name"),
            format!("{name:?} is already the name of group[{first}]; expected a name used by one [[group]] only"),
        ));
    }
    Ok(name)
}

fn advert_interval(ck: &Checker<'_>, v: &Field, at: &dyn Fn(&str) -> String) -> Checked<i64> {
    let Some(v) = v else { return Ok(keys::advert_interval_ms.default_int()) };
    let n = ck.int(v, &at("advert_interval_ms"), keys::advert_interval_ms.range.clone(), EXPECT_ADVERT)?;
    if n % 10 != 0 {
        return Err(ck.cx.err(
            v.span(),
            at("advert_interval_ms"),
            format!("{n} is not a multiple of 10; expected {EXPECT_ADVERT}"),
        ));
    }
    Ok(n)
}

impl GroupAt<'_, '_> {
    fn vips(&self, list: &List, seen: &HashMap<(String, IpAddr), Owner>) -> Checked<Vec<Vip>> {
        let ck = self.ck;
        let vip_list = ck.required(list, self.table.span(), &self.at("vips"), EXPECT_VIPS)?;
        if vip_list.get_ref().is_empty() {
            return Err(ck.cx.err(
                vip_list.span(),
                self.at("vips"),
                format!("found an empty array; expected {EXPECT_VIPS}"),
            ));
        }
        let mut vips: Vec<Vip> = Vec::new();
        for (n, v) in vip_list.get_ref().iter().enumerate() {
            let key = format!("{}[{n}]", self.at("vips"));
            let s = ck.string(v, &key, EXPECT_VIP)?;
            let bad = |what: String| ck.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_VIP}"));
            let (ip, prefix) = parse_prefixed(s).map_err(|e| bad(format!("in {s:?}, {e}")))?;
            let Some(prefix) = prefix else {
                return Err(bad(format!("{s:?} has no prefix length")));
            };
            if let Some(why) = not_unicast(ip) {
                return Err(bad(format!("{ip} {why}")));
            }
            if let Some(&(_, _, first, _)) = vips.iter().find(|(x, ..)| *x == ip) {
                return Err(ck.cx.err(
                    v.span(),
                    key,
                    format!("{ip} is listed twice (also vips[{first}]); expected each VIP once"),
                ));
            }
            if let Some(owner) = seen.get(&(self.interface.name.clone(), ip)) {
                return Err(ck.cx.err(
                    v.span(),
                    key,
                    format!(
                        "{ip} is already a VIP of {} on interface {:?}; expected each VIP in one group per interface",
                        owner.describe(),
                        self.interface.name
                    ),
                ));
            }
            vips.push((ip, prefix, n, v.span()));
        }
        Ok(vips)
    }

    /// The families of the group's VIPs, each checked: the interface has
    /// the advert source, the VIPs fit one advert, the VRID is free.
    fn families(
        &self,
        vips: &[Vip],
        list: &List,
        vrid_v: &Spanned<toml::Value>,
        vrid: u8,
        vrids: &HashMap<(String, Family, u8), Owner>,
    ) -> Checked<Vec<Family>> {
        let (ck, interface) = (self.ck, self.interface);
        let list_span = list.as_ref().map_or(0..0, |l| l.span());
        let families: Vec<Family> = [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .filter(|&f| vips.iter().any(|(ip, ..)| Family::of(*ip) == f))
            .collect();
        for &family in &families {
            let mine: Vec<_> = vips.iter().filter(|(ip, ..)| Family::of(*ip) == family).collect();
            let &(ip, prefix, n, ref span) = mine[0];
            if interface.primary(family).is_none() {
                let (field, example) = match family {
                    Family::Ipv4 => ("address", "address = \"198.51.100.2/24\""),
                    Family::Ipv6 => ("address6", "address6 = \"fe80::2\""),
                };
                return Err(ck.cx.err(
                    span.clone(),
                    format!("{}[{n}]", self.at("vips")),
                    format!(
                        "the {family} VIP {ip}/{prefix} needs this node's {family} address on interface {:?} as the advertisement source, and it has no `{field}`; expected {field} in its [[interface]] (line {}), like {example}",
                        interface.name, ck.interface_lines[self.if_index]
                    ),
                ));
            }
            if mine.len() > MAX_ADDRESSES {
                return Err(ck.cx.err(
                    list_span.clone(),
                    self.at("vips"),
                    format!(
                        "{} {family} VIPs; expected at most {MAX_ADDRESSES} per family (one advertisement carries them all)",
                        mine.len()
                    ),
                ));
            }
            if let Some(owner) = vrids.get(&(interface.name.clone(), family, vrid)) {
                return Err(ck.cx.err(
                    vrid_v.span(),
                    self.at("vrid"),
                    format!(
                        "VRID {vrid} is already used for {family} on interface {:?} by {}; expected a VRID unique per interface and address family",
                        interface.name,
                        owner.describe()
                    ),
                ));
            }
        }
        Ok(families)
    }

    fn peers(&self, list: &Spanned<Vec<Spanned<RawPeer>>>, families: &[Family]) -> Checked<Vec<(IpAddr, MacAddr)>> {
        let mut peers: Vec<(IpAddr, MacAddr)> = Vec::new();
        for (n, peer) in list.get_ref().iter().enumerate() {
            let here = format!("{}[{n}]", self.at("unicast_peers"));
            let ip = self.peer_address(peer, &here, families, &peers)?;
            let mac = self.peer_mac(peer, &here)?;
            peers.push((ip, mac));
        }
        if !peers.is_empty() {
            for &family in families {
                if !peers.iter().any(|(ip, _)| Family::of(*ip) == family) {
                    return Err(self.ck.cx.err(
                        list.span(),
                        self.at("unicast_peers"),
                        format!(
                            "the group has {family} VIPs but no {family} peer, so its {family} half would advertise to nobody; expected at least one {family} peer per family of the group's VIPs"
                        ),
                    ));
                }
            }
        }
        Ok(peers)
    }

    fn peer_address(
        &self,
        peer: &Spanned<RawPeer>,
        here: &str,
        families: &[Family],
        peers: &[(IpAddr, MacAddr)],
    ) -> Checked<IpAddr> {
        let (ck, interface) = (self.ck, self.interface);
        let key = format!("{here}.address");
        let v = ck.required(&peer.get_ref().address, peer.span(), &key, EXPECT_PEER_ADDRESS)?;
        let s = ck.string(v, &key, EXPECT_PEER_ADDRESS)?;
        let bad = |what: String| ck.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_PEER_ADDRESS}"));
        let (ip, prefix) = parse_prefixed(s).map_err(|e| bad(format!("in {s:?}, {e}")))?;
        if prefix.is_some() {
            return Err(bad(format!("{s:?} has a prefix length")));
        }
        if let Some(why) = not_unicast(ip) {
            return Err(bad(format!("{ip} {why}")));
        }
        let family = Family::of(ip);
        if !families.contains(&family) {
            let theirs = families[0];
            return Err(ck.cx.err(
                v.span(),
                &key,
                format!(
                    "{ip} is an {family} address and the group's VIPs are all {theirs}; expected an {theirs} peer address (peers are of the group's family)"
                ),
            ));
        }
        if let IpAddr::V6(ip6) = ip {
            if !is_link_local6(&ip6) {
                return Err(bad(format!(
                    "{ip} is not link-local, and IPv6 peers advertise from their link-local address (RFC 9568 §5.1.2.1)"
                )));
            }
        }
        if interface.primary(family) == Some(ip) {
            return Err(bad(format!("{ip} is this node's own address on interface {:?}", interface.name)));
        }
        if let Some(first) = peers.iter().position(|(x, _)| *x == ip) {
            return Err(bad(format!("{ip} is listed twice (also unicast_peers[{first}])")));
        }
        Ok(ip)
    }

    fn peer_mac(&self, peer: &Spanned<RawPeer>, here: &str) -> Checked<MacAddr> {
        let ck = self.ck;
        let key = format!("{here}.mac");
        let v = ck.required(&peer.get_ref().mac, peer.span(), &key, EXPECT_MAC)?;
        let s = ck.string(v, &key, EXPECT_MAC)?;
        let bad = |what: String| ck.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_MAC}"));
        let mac: MacAddr = s.parse().map_err(|_| bad(format!("{s:?} is not a MAC address")))?;
        if mac.is_multicast() {
            return Err(bad(format!("{mac} is a multicast MAC")));
        }
        if mac.octets() == [0; 6] {
            return Err(bad(format!("{mac} is the all-zero MAC")));
        }
        Ok(mac)
    }
}

fn garp(ck: &Checker<'_>, table: Option<&Spanned<RawGarp>>, group: &str) -> Checked<GarpSettings> {
    let Some(t) = table else { return Ok(GarpSettings::default()) };
    let t = t.get_ref();
    let path = format!("{group}.garp");
    let count = ck.int_key(&t.count, &path, &garp_keys::count)?;
    let interval = ck.int_key(&t.interval_ms, &path, &garp_keys::interval_ms)?;
    let second = ck.int_key(&t.second_burst_ms, &path, &garp_keys::second_burst_ms)?;
    let refresh = ck.int_key(&t.refresh_ms, &path, &garp_keys::refresh_ms)?;
    Ok(GarpSettings {
        count: count as u32,
        interval: Checker::millis(interval),
        second_burst_after: (second > 0).then(|| Checker::millis(second)),
        refresh: (refresh > 0).then(|| Checker::millis(refresh)),
    })
}

fn notify(ck: &Checker<'_>, v: &Field, at: &dyn Fn(&str) -> String) -> Checked<Option<PathBuf>> {
    let Some(v) = v else { return Ok(None) };
    let s = ck.string(v, &at("notify"), EXPECT_NOTIFY)?;
    let path = PathBuf::from(s);
    if !path.is_absolute() {
        return Err(ck.cx.err(
            v.span(),
            at("notify"),
            format!("{s:?} is not an absolute path; expected {EXPECT_NOTIFY}"),
        ));
    }
    Ok(Some(path))
}
