//! The daemon's configuration file: TOML, `[[interface]]`, `[[group]]` and
//! `[[bond]]` tables, parsed and checked into a [`Config`].
//!
//! ```toml
//! [[interface]]
//! name = "eth0"
//! address = "198.51.100.2/24"   # this node's IPv4 address: the IPv4 advert source
//! address6 = "fe80::2"          # this node's link-local address: the IPv6 advert source
//!
//! [[group]]
//! name = "web"
//! interface = "eth0"
//! vrid = 51
//! priority = 200
//! vips = ["198.51.100.100/24", "2001:db8::100/64"]
//! ```
//!
//! Every key, its default and its range are in `examples/vipdrift.toml`, the
//! reference that goes with the README.
//!
//! # One address family per group
//!
//! A VRRP virtual router is of one address family: RFC 9568 runs IPv4 and
//! IPv6 virtual routers separately, each with its own advertisements. A
//! `[[group]]` whose `vips` hold addresses of both families is accepted and
//! resolved into two [`GroupSpec`]s with the same name and VRID, the IPv4 one
//! first, each with that family's VIPs and unicast peers ([`GroupSpec::family`]
//! tells them apart). They are two independent virtual routers that may elect
//! different masters; the VRID must be free in both families on the interface.
//!
//! # Bonds
//!
//! A `[[bond]]` is this node's several NICs on one LAN sharing IPv4 VIPs, the
//! bonding driver's balance-tlb or balance-alb done in user space (see
//! [`BondSpec`]). No VRRP runs on a bond's interfaces: they need no `address`
//! or `address6`, carry no `[[group]]`, and each is in one bond only. A VIP is
//! a bond's or groups', never both. A file may hold bonds and no groups.
//!
//! ```toml
//! [[interface]]
//! name = "eth2"
//!
//! [[interface]]
//! name = "eth3"
//!
//! [[bond]]
//! name = "lan"
//! mode = "alb"
//! interfaces = ["eth2", "eth3"]   # the first is the primary
//! vips = ["198.51.100.200/24"]
//! ```
//!
//! # Errors
//!
//! Each error is a [`ConfigError`] that prints as `FILE:LINE: KEY: MESSAGE`.
//! The line is that of the offending value (of the table, for a missing key);
//! the key is a path like `interface[0].bind`, `group[1].garp.interval_ms` or
//! `group[0].vips[2]`, where the index counts the tables (or array elements) of
//! that kind from 0 in file order; the message says what is wrong and what is
//! expected instead:
//!
//! ```text
//! /etc/vipdrift.toml:14: group[0].vrid: 300 is out of range; expected an integer 1..=255
//! ```

mod bond;
mod check;
mod file;
mod group;
mod interface;
mod keys;
mod locate;
#[cfg(test)]
mod tests;

use check::Checker;
use keys::RawFile;
use locate::{collect_spots, describe, Cx};
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Value};
use vipdrift_engine::BindMode;

/// Where the metrics endpoint listens when `[metrics]` gives no `listen`.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9650";

/// A parsed and checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The `[[interface]]` tables, in file order.
    pub interfaces: Vec<InterfaceConfig>,
    /// The resolved groups in file order: one per `[[group]]`, two (IPv4 then
    /// IPv6) for a `[[group]]` with VIPs of both families.
    pub groups: Vec<GroupSpec>,
    /// The `[[bond]]` tables, in file order.
    pub bonds: Vec<BondSpec>,
    /// The admin API's Unix socket (`[admin] socket`).
    pub admin_socket: PathBuf,
    /// Where the Prometheus endpoint listens (`[metrics] listen`); `None`
    /// without a `[metrics]` table.
    pub metrics: Option<SocketAddr>,
}

impl Config {
    /// The interface named `name`.
    pub fn interface(&self, name: &str) -> Option<&InterfaceConfig> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// This node's advertisement source for `group`: its interface's
    /// `address` (IPv4) or `address6` (IPv6). Always `Some` for a group of
    /// this configuration (the parser checks it).
    pub fn primary(&self, group: &GroupSpec) -> Option<IpAddr> {
        self.interface(&group.interface)?.primary(group.family)
    }

    /// The bond the interface named `iface` belongs to, if any.
    pub fn bond_of(&self, iface: &str) -> Option<&BondSpec> {
        self.bonds.iter().find(|b| b.interfaces.iter().any(|i| i == iface))
    }
}

pub use vipdrift_wire::Family;

/// What a worker does when a poll finds no frames (`idle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Idle {
    /// Poll again at once (`"spin"`, the default): lowest latency, a full core.
    #[default]
    Spin,
    /// Yield the CPU, then poll again (`"yield"`).
    Yield,
    /// Sleep briefly, then poll again (`"sleep"`): for shared machines.
    Sleep,
}

/// One `[[interface]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Interface name (`name`).
    pub name: String,
    /// This node's IPv4 address and prefix length (`address`): the IPv4
    /// advertisement source and tie-break.
    pub address: Option<(Ipv4Addr, u8)>,
    /// This node's IPv6 link-local address (`address6`, in fe80::/10): the
    /// IPv6 advertisement source.
    pub address6: Option<Ipv6Addr>,
    /// NIC queues to bind (`queues`): non-empty, no duplicates.
    pub queues: Vec<u32>,
    /// The core of each queue's worker (`cores`): empty (not pinned) or one per queue.
    pub cores: Vec<usize>,
    /// AF_XDP bind mode (`bind`).
    pub bind: BindMode,
    /// Steer every frame to the engine, not only the service's (`whole_nic`).
    pub whole_nic: bool,
    /// How often the carrier is checked (`link_check_ms`).
    pub link_check: Duration,
    /// How long the kernel keeps receiving a kernel-delivered VIP's traffic
    /// after this interface's workers last vouched for it (`lease_ms`;
    /// default three link checks).
    pub lease: Duration,
    /// What a worker does when it finds no frames (`idle`).
    pub idle: Idle,
}

impl Config {
    /// Gives every group without a `deliver` key the daemon's default and
    /// checks the ones that have it: with a VIP handler (an embedder's), the
    /// engine; without one (`vipdrift run`), the kernel, since the engine
    /// would only drop the traffic; on a `whole_nic` interface, the engine,
    /// since nothing reaches the kernel there. An explicit `"engine"`
    /// without a handler is an error.
    pub fn resolve_delivery(&mut self, has_handler: bool) -> Result<(), String> {
        for g in 0..self.groups.len() {
            let whole_nic = self.interface(&self.groups[g].interface).is_some_and(|i| i.whole_nic);
            let group = &mut self.groups[g];
            group.deliver = Some(match group.deliver {
                Some(Delivery::Engine) if !has_handler => {
                    return Err(format!(
                        "group {:?}: deliver = \"engine\" hands its VIP traffic to a VIP handler, and this daemon has none \
                         (`vipdrift run`; an embedder sets one with DaemonBuilder::vip_handler); \
                         use deliver = \"kernel\" for a service in this host's kernel, or leave deliver out",
                        group.name
                    ))
                }
                Some(delivery) => delivery,
                None if has_handler || whole_nic => Delivery::Engine,
                None => Delivery::Kernel,
            });
        }
        Ok(())
    }
}

impl InterfaceConfig {
    /// This node's address of `family` on the interface: the advertisement source.
    pub fn primary(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::Ipv4 => self.address.map(|(ip, _)| IpAddr::V4(ip)),
            Family::Ipv6 => self.address6.map(IpAddr::V6),
        }
    }
}

pub use vipdrift_vrrp::spec::{Delivery, GroupSpec};

/// How a bond spreads traffic over its NICs (`mode`: `"tlb"` or `"alb"`).
pub use vipdrift_vmac::BondMode;

/// One `[[bond]]`: this node's NICs on one LAN sharing IPv4 VIPs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondSpec {
    /// Bond name (`name`): the rules of a group name; unique among bonds and groups.
    pub name: String,
    /// How traffic is spread (`mode`).
    pub mode: BondMode,
    /// Its interfaces (`interfaces`): 2..=8 names of [`InterfaceConfig`]s, no
    /// duplicates, all with the same queues and bind mode; the first is the primary.
    pub interfaces: Vec<String>,
    /// The IPv4 VIPs with their prefix lengths (`vips`; a bare address is a
    /// /32), in file order: non-empty, unicast, no duplicates, in no group or
    /// other bond.
    pub vips: Vec<(Ipv4Addr, u8)>,
    /// alb: at most this many clients are remembered (`clients`), 1..=1000000.
    pub clients: usize,
    /// alb: a client not heard for this long is forgotten (`client_timeout_s`), 1 s..=1 day.
    pub client_timeout: Duration,
    /// alb: how often a returning NIC takes back a few clients (`rebalance_ms`), 1 ms..=60 s.
    pub rebalance_interval: Duration,
    /// alb: clients moved per rebalance step (`rebalance_burst`), 1..=1024.
    pub rebalance_burst: usize,
    /// Announce the VIPs this often (`announce_every_ms`), 100 ms..=1 h;
    /// `None` (absent or 0): no periodic announcement.
    pub announce_every: Option<Duration>,
}

/// VIPs as the configuration writes them: `ADDRESS/PREFIX`.
pub fn prefixed<A: fmt::Display>(vips: &[(A, u8)]) -> Vec<String> {
    vips.iter().map(|(ip, prefix)| format!("{ip}/{prefix}")).collect()
}

/// Why a configuration was rejected; prints as `FILE:LINE: KEY: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as given to [`parse`], or the path given to [`load`]).
    pub file: String,
    /// 1-based line of the offending value or table; 0 when there is none
    /// (the file could not be read, or something is missing from the whole file).
    pub line: usize,
    /// Key path, like `group[1].garp.interval_ms`; empty when there is none.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and parses the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(ConfigError {
            file,
            line: 0,
            key: String::new(),
            message: format!("cannot read the configuration: {e}; expected a readable UTF-8 TOML file"),
        }),
    }
}

/// Parses and checks a configuration; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_extended(text, file, &[]).map(|(config, _)| config)
}

/// Parses and checks a configuration that also holds an embedder's own
/// top-level tables, named in `extra` (like `backend` for `[[backend]]`):
/// vipdrift checks its own tables as [`parse`] does and hands the others
/// back, one [`ExtraTable`] per table, for the embedder to check with
/// errors of the same `FILE:LINE: key: message` form.
pub fn parse_extended(text: &str, file: &str, extra: &[&str]) -> Result<(Config, Vec<ExtraTable>), ConfigError> {
    let (mut doc, errors) = DeTable::parse_recoverable(text);
    let mut spots = Vec::new();
    collect_spots(doc.get_ref(), &mut Vec::new(), &mut spots);
    let cx = Cx { text, file, spots };
    if let Some(e) = errors.first() {
        return Err(cx.toml_error(e));
    }
    let mut tables = Vec::new();
    for &name in extra {
        if let Some((key, value)) = doc.get_mut().remove_entry(name) {
            tables.extend(ExtraTable::take(&cx, name, key, value)?);
        }
    }
    let raw = RawFile::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| cx.toml_error(&e))?;
    let config = Checker { cx: &cx, interface_lines: Vec::new() }.check(&raw)?;
    Ok((config, tables))
}

type RawExtra = std::collections::BTreeMap<String, Spanned<Value>>;

/// One of an embedder's own tables (see [`parse_extended`]): its keys with
/// where they are, and the checks that report like vipdrift's own.
#[derive(Clone, Debug)]
pub struct ExtraTable {
    name: String,
    /// Its index among the tables of that name (`[[backend]]`), or `None` for a plain `[table]`.
    index: Option<usize>,
    file: String,
    line: usize,
    entries: Vec<(String, Value, usize)>,
}

impl ExtraTable {
    fn take(
        cx: &Cx<'_>,
        name: &str,
        key: Spanned<toml::de::DeString<'_>>,
        value: Spanned<DeValue<'_>>,
    ) -> Result<Vec<ExtraTable>, ConfigError> {
        let span = value.span();
        let many = matches!(value.get_ref(), DeValue::Array(_));
        let mut wrapper = DeTable::new();
        wrapper.insert(key, value);
        let doc = Spanned::new(span.clone(), wrapper);
        let table = |index, line, raw: RawExtra| ExtraTable {
            name: name.to_owned(),
            index,
            file: cx.file.to_owned(),
            line,
            entries: raw.into_iter().map(|(k, v)| (k, v.get_ref().clone(), cx.line(v.span().start))).collect(),
        };
        let expect = format!("a table [{name}] or tables [[{name}]]");
        let wrong = |_| cx.err(span.clone(), name, format!("found something else; expected {expect}"));
        if many {
            type Many = std::collections::BTreeMap<String, Vec<Spanned<RawExtra>>>;
            let mut raw = Many::deserialize(toml::de::Deserializer::from(doc)).map_err(wrong)?;
            let items = raw.remove(name).unwrap_or_default();
            // A table's line is that of its first key (the `[[header]]` line when it has none).
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let line = cx.line(t.span().start);
                    table(Some(i), line, t.into_inner())
                })
                .collect())
        } else {
            type One = std::collections::BTreeMap<String, Spanned<RawExtra>>;
            let mut raw = One::deserialize(toml::de::Deserializer::from(doc)).map_err(wrong)?;
            let t = raw.remove(name).ok_or_else(|| cx.err(span.clone(), name, format!("expected {expect}")))?;
            let line = cx.line(t.span().start);
            Ok(vec![table(None, line, t.into_inner())])
        }
    }

    /// The table's name (`backend` for `[[backend]]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its index among the tables of its name, for `[[name]]` tables.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// The key path of `key` in it: `backend[1].mac`, `maglev.flows`.
    pub fn key_path(&self, key: &str) -> String {
        match self.index {
            Some(i) => format!("{}[{i}].{key}", self.name),
            None => format!("{}.{key}", self.name),
        }
    }

    /// An error about `key`, at its line (the table's if it is absent).
    pub fn error(&self, key: &str, message: String) -> ConfigError {
        let line = self.entries.iter().find(|(k, ..)| k == key).map_or(self.line, |(_, _, line)| *line);
        let key = if key == self.name { key.to_owned() } else { self.key_path(key) };
        ConfigError { file: self.file.clone(), line, key, message }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, ..)| k == key).map(|(_, v, _)| v)
    }

    /// Refuses a key not in `known`, saying which are.
    pub fn only_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.entries.iter().find(|(k, ..)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((key, ..)) => {
                let valid: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                Err(self.error(key, format!("unknown key `{key}`; expected one of {}", valid.join(", "))))
            }
        }
    }

    /// A required string.
    pub fn required_string(&self, key: &str, expect: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Err(self.error(key, format!("missing required key `{key}`; expected {expect}"))),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.error(key, format!("found {}; expected {expect}", describe(v)))),
        }
    }

    /// An optional integer in `range`.
    pub fn int(&self, key: &str, range: RangeInclusive<i64>, expect: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) if range.contains(n) => Ok(Some(*n)),
            Some(Value::Integer(n)) => Err(self.error(key, format!("{n} is out of range; expected {expect}"))),
            Some(v) => Err(self.error(key, format!("found {}; expected {expect}", describe(v)))),
        }
    }
}

type Checked<T> = Result<T, ConfigError>;
