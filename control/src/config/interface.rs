//! `[[interface]]`: a NIC, this node's addresses on it, its queues and how
//! its workers run.

use super::check::{is_link_local6, not_unicast, parse_prefixed, valid_ifname, Checker};
use super::keys::{interface_keys as keys, RawInterface, BIND_MODES, EXPECT_CORE, EXPECT_QUEUE, IDLE_MODES};
use super::locate::plural;
use super::{Checked, InterfaceConfig};
use std::net::IpAddr;
use toml::Spanned;

const EXPECT_IFNAME: &str = keys::name.expect;
const EXPECT_ADDRESS: &str = keys::address.expect;
const EXPECT_ADDRESS6: &str = keys::address6.expect;
const EXPECT_QUEUES: &str = keys::queues.expect;

pub(super) fn check(ck: &Checker<'_>, i: usize, table: &Spanned<RawInterface>) -> Checked<InterfaceConfig> {
    let raw = table.get_ref();
    let table_path = format!("interface[{i}]");
    let at = |field: &str| format!("{table_path}.{field}");

    let (_, name) = ck.name(&raw.name, table.span(), &at("name"), EXPECT_IFNAME, "interface name", valid_ifname)?;

    let address = match &raw.address {
        None => None,
        Some(v) => {
            let key = at("address");
            let s = ck.string(v, &key, EXPECT_ADDRESS)?;
            let bad = |what: String| ck.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_ADDRESS}"));
            let (ip, prefix) = parse_prefixed(s).map_err(|e| bad(format!("in {s:?}, {e}")))?;
            let IpAddr::V4(ip) = ip else {
                return Err(bad(format!("{s:?} is an IPv6 address (that goes in address6)")));
            };
            let Some(prefix) = prefix else {
                return Err(bad(format!("{s:?} has no prefix length")));
            };
            if let Some(why) = not_unicast(IpAddr::V4(ip)) {
                return Err(bad(format!("{ip} {why}")));
            }
            Some((ip, prefix))
        }
    };

    let address6 = match &raw.address6 {
        None => None,
        Some(v) => {
            let key = at("address6");
            let s = ck.string(v, &key, EXPECT_ADDRESS6)?;
            let bad = |what: String| ck.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_ADDRESS6}"));
            let (ip, _) = parse_prefixed(s).map_err(|e| bad(format!("in {s:?}, {e}")))?;
            let IpAddr::V6(ip) = ip else {
                return Err(bad(format!("{s:?} is an IPv4 address (that goes in address)")));
            };
            if !is_link_local6(&ip) {
                return Err(bad(format!(
                    "{ip} is not link-local (RFC 9568 §5.1.2.1: the IPv6 advertisement source is the link-local address)"
                )));
            }
            Some(ip)
        }
    };

    let queues = match &raw.queues {
        None => vec![0],
        Some(list) => {
            let mut queues: Vec<u32> = Vec::new();
            for (n, v) in list.get_ref().iter().enumerate() {
                let key = format!("{}[{n}]", at("queues"));
                let q = ck.int(v, &key, keys::queues.range.clone(), EXPECT_QUEUE)? as u32;
                if let Some(first) = queues.iter().position(|&x| x == q) {
                    return Err(ck.cx.err(
                        v.span(),
                        key,
                        format!("queue {q} is listed twice (also queues[{first}]); expected each queue once"),
                    ));
                }
                queues.push(q);
            }
            if queues.is_empty() {
                return Err(ck.cx.err(
                    list.span(),
                    at("queues"),
                    format!("found an empty array; expected {EXPECT_QUEUES}"),
                ));
            }
            queues
        }
    };

    let cores = match &raw.cores {
        None => Vec::new(),
        Some(list) => {
            let mut cores = Vec::new();
            for (n, v) in list.get_ref().iter().enumerate() {
                let key = format!("{}[{n}]", at("cores"));
                cores.push(ck.int(v, &key, keys::cores.range.clone(), EXPECT_CORE)? as usize);
            }
            if !cores.is_empty() && cores.len() != queues.len() {
                return Err(ck.cx.err(
                    list.span(),
                    at("cores"),
                    format!(
                        "{} listed for {} queues; expected one core per queue ({} entries, in the order of queues), or [] to leave the workers unpinned",
                        plural(cores.len(), "core"),
                        queues.len(),
                        queues.len()
                    ),
                ));
            }
            cores
        }
    };

    let link_check = Checker::millis(ck.int_key(&raw.link_check_ms, &table_path, &keys::link_check_ms)?);
    let lease = match &raw.lease_ms {
        None => 3 * link_check,
        Some(_) => Checker::millis(ck.int_key(&raw.lease_ms, &table_path, &keys::lease_ms)?),
    };
    Ok(InterfaceConfig {
        name: name.to_owned(),
        address,
        address6,
        queues,
        cores,
        bind: ck.choice_key(&raw.bind, &table_path, &keys::bind, BIND_MODES)?,
        whole_nic: ck.bool_key(&raw.whole_nic, &table_path, &keys::whole_nic)?,
        link_check,
        lease,
        idle: ck.choice_key(&raw.idle, &table_path, &keys::idle, IDLE_MODES)?,
    })
}
