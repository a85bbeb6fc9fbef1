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

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Value};
use vipdrift_engine::BindMode;
use vipdrift_vmac::AddressMode;
use vipdrift_vrrp::advert::{ChecksumForm, MAX_ADDRESSES};
use vipdrift_vrrp::garp::GarpSettings;
use vipdrift_wire::MacAddr;

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
    /// What a worker does when it finds no frames (`idle`).
    pub idle: Idle,
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

pub use vipdrift_vrrp::spec::GroupSpec;

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

// ---------------------------------------------------------------------------
// The file as serde sees it. Leaves are `toml::Value`s so the checker reports
// wrong types itself, with the key and what is expected; serde rejects
// unknown keys and misshapen tables.

type Field = Option<Spanned<Value>>;
type List = Option<Spanned<Vec<Spanned<Value>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    interface: Vec<Spanned<RawInterface>>,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    bond: Vec<Spanned<RawBond>>,
    admin: Option<Spanned<RawAdmin>>,
    metrics: Option<Spanned<RawMetrics>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    socket: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: Field,
    address: Field,
    address6: Field,
    queues: List,
    cores: List,
    bind: Field,
    whole_nic: Field,
    link_check_ms: Field,
    idle: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Field,
    interface: Field,
    vrid: Field,
    priority: Field,
    advert_interval_ms: Field,
    preempt: Field,
    preempt_delay_ms: Field,
    mode: Field,
    vips: List,
    unicast_peers: Option<Spanned<Vec<Spanned<RawPeer>>>>,
    checksum: Field,
    garp: Option<Spanned<RawGarp>>,
    notify: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBond {
    name: Field,
    mode: Field,
    interfaces: List,
    vips: List,
    clients: Field,
    client_timeout_s: Field,
    rebalance_ms: Field,
    rebalance_burst: Field,
    announce_every_ms: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    address: Field,
    mac: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGarp {
    count: Field,
    interval_ms: Field,
    second_burst_ms: Field,
    refresh_ms: Field,
}

// ---------------------------------------------------------------------------
// What is expected of each key, for the messages.

const EXPECT_IFNAME: &str = "an interface name of 1..=15 characters without '/', ':' or whitespace, like \"eth0\"";
const EXPECT_ADDRESS: &str = "this node's IPv4 address with its prefix length, like \"198.51.100.2/24\"";
const EXPECT_ADDRESS6: &str = "this node's IPv6 link-local address (in fe80::/10), like \"fe80::2\" or \"fe80::2/64\"";
const EXPECT_QUEUE: &str = "a NIC queue number 0..=4294967295";
const EXPECT_QUEUES: &str = "a non-empty array of NIC queue numbers, like [0, 1]";
const EXPECT_CORE: &str = "a CPU number 0..=65535";
const EXPECT_CORES: &str = "an array of CPU numbers, one per queue, like [1, 2], or [] (not pinned)";
const EXPECT_BOOL: &str = "true or false";
const EXPECT_SOCKET: &str = "an absolute path for the admin socket, like \"/run/vipdrift/vipdrift.sock\"";
const EXPECT_LISTEN: &str = "an IP address and port, like \"127.0.0.1:9650\" or \"[::1]:9650\"";
/// Where the metrics endpoint listens when `[metrics]` gives no `listen`.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9650";
const EXPECT_LINK_CHECK: &str = "an integer 1..=1000 (milliseconds)";
const EXPECT_GROUP_NAME: &str = "1..=32 characters of A-Z, a-z, 0-9, '_', '.' and '-', like \"web\"";
const EXPECT_GROUP_INTERFACE: &str = "the name of an [[interface]], like \"eth0\"";
const EXPECT_VRID: &str = "an integer 1..=255";
const EXPECT_PRIORITY: &str = "an integer 1..=255 (255: the address owner)";
const EXPECT_ADVERT: &str = "a multiple of 10 in 10..=40950 (milliseconds; sent in centiseconds)";
const EXPECT_PREEMPT_DELAY: &str = "an integer 0..=3600000 (milliseconds)";
const EXPECT_VIPS: &str = "a non-empty array of \"ADDRESS/PREFIX\" strings, like [\"198.51.100.100/24\"]";
const EXPECT_VIP: &str = "a unicast address with its prefix length, like \"198.51.100.100/24\" or \"2001:db8::100/64\"";
const EXPECT_PEERS: &str =
    "an array of tables like [{ address = \"198.51.100.3\", mac = \"02:00:00:00:00:03\" }], or [] (multicast)";
const EXPECT_PEER: &str = "a table like { address = \"198.51.100.3\", mac = \"02:00:00:00:00:03\" }";
const EXPECT_PEER_ADDRESS: &str =
    "the peer's unicast address without prefix, like \"198.51.100.3\" (IPv4) or \"fe80::3\" (IPv6 link-local)";
const EXPECT_MAC: &str = "the peer's unicast MAC, six hex octets separated by ':', like \"02:00:00:00:00:03\"";
const EXPECT_GARP: &str = "a table like { count = 5, interval_ms = 10, second_burst_ms = 1000, refresh_ms = 0 }";
const EXPECT_GARP_COUNT: &str = "an integer 1..=100";
const EXPECT_GARP_INTERVAL: &str = "an integer 1..=10000 (milliseconds)";
const EXPECT_GARP_SECOND: &str = "an integer 0..=3600000 (milliseconds; 0: no second burst)";
const EXPECT_GARP_REFRESH: &str = "an integer 0..=86400000 (milliseconds; 0: no refresh)";
const EXPECT_NOTIFY: &str = "an absolute program path, like \"/usr/local/bin/on-transition\"";
const EXPECT_BOND_NAME: &str = "1..=32 characters of A-Z, a-z, 0-9, '_', '.' and '-', like \"lan\"";
const EXPECT_BOND_INTERFACES: &str =
    "an array of 2..=8 names of [[interface]]s, each once, the primary first, like [\"eth2\", \"eth3\"]";
const EXPECT_BOND_VIPS: &str =
    "a non-empty array of IPv4 \"ADDRESS/PREFIX\" or \"ADDRESS\" strings, like [\"198.51.100.200/24\"]";
const EXPECT_BOND_VIP: &str =
    "an IPv4 unicast address, with its prefix length or without (/32), like \"198.51.100.200/24\" or \"198.51.100.200\"";
const EXPECT_CLIENTS: &str = "an integer 1..=1000000 (clients remembered)";
const EXPECT_CLIENT_TIMEOUT: &str = "an integer 1..=86400 (seconds)";
const EXPECT_REBALANCE: &str = "an integer 1..=60000 (milliseconds)";
const EXPECT_REBALANCE_BURST: &str = "an integer 1..=1024 (clients per step)";
const EXPECT_ANNOUNCE: &str = "0 (no periodic announcement) or an integer 100..=3600000 (milliseconds)";

const BIND_MODES: &[(&str, BindMode)] =
    &[("auto", BindMode::Auto), ("zero-copy", BindMode::ZeroCopy), ("copy", BindMode::Copy), ("skb", BindMode::Skb)];
const IDLE_MODES: &[(&str, Idle)] = &[("spin", Idle::Spin), ("yield", Idle::Yield), ("sleep", Idle::Sleep)];
const GROUP_MODES: &[(&str, AddressMode)] = &[("vmac", AddressMode::Vmac), ("own_mac", AddressMode::OwnMac)];
const BOND_MODES: &[(&str, BondMode)] = &[("tlb", BondMode::Tlb), ("alb", BondMode::Alb)];
const CHECKSUM_FORMS: &[(&str, ChecksumForm)] =
    &[("pseudo_header", ChecksumForm::PseudoHeader), ("message_only", ChecksumForm::MessageOnly)];

/// What a composite key (whose type serde checks) expects.
fn expectation(path: &[Seg]) -> &'static str {
    let last_key = path.iter().rev().find_map(|s| match s {
        Seg::Key(k) => Some(k.as_str()),
        Seg::Index(_) => None,
    });
    let element = matches!(path.last(), Some(Seg::Index(_)));
    let in_bond = matches!(path.first(), Some(Seg::Key(k)) if k == "bond");
    match (last_key, element) {
        (None, _) => {
            "a TOML document of [[interface]], [[group]] and [[bond]] tables, and optional [admin] and [metrics] tables"
        }
        (Some("interface"), false) => "an array of tables: write each as [[interface]] (double brackets)",
        (Some("group"), false) => "an array of tables: write each as [[group]] (double brackets)",
        (Some("bond"), false) => "an array of tables: write each as [[bond]] (double brackets)",
        (Some("interface"), true) => "an [[interface]] table",
        (Some("group"), true) => "a [[group]] table",
        (Some("bond"), true) => "a [[bond]] table",
        (Some("interfaces"), _) => EXPECT_BOND_INTERFACES,
        (Some("vips"), _) if in_bond => EXPECT_BOND_VIPS,
        (Some("garp"), _) => EXPECT_GARP,
        (Some("admin"), _) => "an [admin] table with `socket`",
        (Some("metrics"), _) => "a [metrics] table with `listen`",
        (Some("unicast_peers"), false) => EXPECT_PEERS,
        (Some("unicast_peers"), true) => EXPECT_PEER,
        (Some("vips"), _) => EXPECT_VIPS,
        (Some("queues"), _) => EXPECT_QUEUES,
        (Some("cores"), _) => EXPECT_CORES,
        _ => "a value of another type",
    }
}

// ---------------------------------------------------------------------------
// Where things are: every key and value of the parsed document with its span
// and key path, to name the key of a toml or serde error.

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

struct Spot {
    span: Range<usize>,
    /// The key path of the key or value at `span`.
    path: Vec<Seg>,
    /// The table that keys following `span` belong to.
    table: Vec<Seg>,
}

fn collect_spots(table: &DeTable<'_>, path: &mut Vec<Seg>, out: &mut Vec<Spot>) {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        let parent = path[..path.len() - 1].to_vec();
        out.push(Spot { span: key.span(), path: path.clone(), table: parent });
        collect_value(value, path, out);
        path.pop();
    }
}

fn collect_value(value: &Spanned<DeValue<'_>>, path: &mut Vec<Seg>, out: &mut Vec<Spot>) {
    let table = match value.get_ref() {
        DeValue::Table(_) => path.clone(),
        _ => path[..path.len() - 1].to_vec(),
    };
    out.push(Spot { span: value.span(), path: path.clone(), table });
    match value.get_ref() {
        DeValue::Table(t) => collect_spots(t, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                collect_value(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The file being checked.
struct Cx<'a> {
    text: &'a str,
    file: &'a str,
    spots: Vec<Spot>,
}

impl Cx<'_> {
    fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn err(&self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: self.line(span.start),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The path of the deepest key or value at `offset` (or just before it),
    /// and true; else the path of the table the closest key before `offset`
    /// belongs to, and false.
    fn locate(&self, offset: usize) -> (Vec<Seg>, bool) {
        let inside = |s: &Range<usize>| s.start <= offset && (offset < s.end || offset == s.start);
        if let Some(spot) = self.spots.iter().filter(|s| inside(&s.span)).max_by_key(|s| s.path.len()) {
            return (spot.path.clone(), true);
        }
        // A syntax error just past a value (an unterminated string, say).
        if let Some(spot) = self.spots.iter().filter(|s| s.span.end == offset).max_by_key(|s| s.path.len()) {
            return (spot.path.clone(), true);
        }
        match self.spots.iter().filter(|s| s.span.start <= offset).max_by_key(|s| (s.span.start, s.path.len())) {
            Some(spot) => (spot.table.clone(), false),
            None => (Vec::new(), false),
        }
    }

    /// A toml syntax error or a serde error, with the line and key it is at.
    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let Some(span) = e.span() else {
            return ConfigError {
                file: self.file.to_owned(),
                line: 0,
                key: String::new(),
                message: e.message().replace(", expected", "; expected"),
            };
        };
        let (mut path, exact) = self.locate(span.start);
        let message = e.message();
        let message = if let Some(rest) = message.strip_prefix("unknown field ") {
            // The path of the key itself, not of the table below a `[[header]]` it names.
            let field = rest.split('`').nth(1).unwrap_or("");
            if let Some(at) = path.iter().rposition(|s| matches!(s, Seg::Key(k) if k == field)) {
                path.truncate(at + 1);
            }
            format!("unknown key {}", rest.replacen(", expected", "; expected", 1))
        } else if let Some(rest) = message.strip_prefix("invalid type: ") {
            let found = rest.split_once(", expected").map_or(rest, |(found, _)| found);
            let found = match found {
                "map" => "a table".to_owned(),
                "sequence" => "an array".to_owned(),
                other => format!("the {}", other.replace('`', "")),
            };
            format!("found {found}; expected {}", expectation(&path))
        } else if message == "duplicate key" {
            let key = self.text.get(span.clone()).unwrap_or("").trim().trim_matches(['"', '\'']).to_owned();
            if !exact && !key.is_empty() {
                path.push(Seg::Key(key.clone()));
            }
            format!("duplicate key `{key}`; expected each key at most once in a table")
        } else if message.contains(", expected") {
            format!("invalid TOML: {}", message.replacen(", expected", "; expected", 1))
        } else {
            format!("invalid TOML: {message}; expected a valid TOML value (strings in double quotes, see toml.io)")
        };
        self.err(span, path_string(&path), message)
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(n) => format!("the integer {n}"),
        Value::Float(x) => format!("the float {x}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the datetime {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn one_of<T>(options: &[(&str, T)]) -> String {
    let names: Vec<String> = options.iter().map(|(name, _)| format!("{name:?}")).collect();
    format!("one of {}", names.join(", "))
}

/// Parses `ADDRESS` or `ADDRESS/PREFIX`; the error says what is wrong with `s`.
fn parse_prefixed(s: &str) -> Result<(IpAddr, Option<u8>), String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
    let Some(prefix) = prefix else { return Ok((ip, None)) };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = (!prefix.is_empty() && prefix.len() <= 3 && prefix.bytes().all(|b| b.is_ascii_digit()))
        .then(|| prefix.parse::<u8>().ok())
        .flatten()
        .filter(|len| (1..=max).contains(len));
    match len {
        Some(len) => Ok((ip, Some(len))),
        None => Err(format!("the prefix length {prefix:?} is not 1..={max}")),
    }
}

/// Why `ip` cannot be a node's, a VIP's or a peer's address, if it cannot.
fn not_unicast(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("is the unspecified address")
    } else if ip.is_multicast() {
        Some("is a multicast address")
    } else if ip.is_loopback() {
        Some("is a loopback address")
    } else if ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        Some("is the broadcast address")
    } else {
        None
    }
}

fn is_link_local6(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Linux's `dev_valid_name`.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

fn valid_group_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

type Checked<T> = Result<T, ConfigError>;

/// The group or bond that first used a VRID, VIP or interface, for duplicate messages.
struct Owner {
    /// `"group"` or `"bond"`.
    kind: &'static str,
    /// Index of its table among the tables of its kind.
    index: usize,
    name: String,
    line: usize,
}

impl Owner {
    fn describe(&self) -> String {
        format!("{}[{}] {:?} (line {})", self.kind, self.index, self.name, self.line)
    }
}

/// What the groups and the bonds checked so far take, for a bond to be checked against.
#[derive(Default)]
struct Taken {
    /// Bond name → bond index.
    bond_names: HashMap<String, usize>,
    /// Interface → the bond it is in, or the first group on it.
    interfaces: HashMap<String, Owner>,
    /// IPv4 VIP → the bond it is in, or the first group holding it.
    vips: HashMap<Ipv4Addr, Owner>,
}

struct Checker<'a> {
    cx: &'a Cx<'a>,
    /// Line of each `[[interface]]`, by index.
    interface_lines: Vec<usize>,
}

impl Checker<'_> {
    fn check(&mut self, raw: &RawFile) -> Checked<Config> {
        let mut interfaces: Vec<InterfaceConfig> = Vec::new();
        for (i, table) in raw.interface.iter().enumerate() {
            let interface = self.interface(i, table)?;
            if let Some(first) = interfaces.iter().position(|x| x.name == interface.name) {
                let name = table.get_ref().name.as_ref().expect("checked");
                return Err(self.cx.err(
                    name.span(),
                    format!("interface[{i}].name"),
                    format!(
                        "{:?} is already the name of interface[{first}] (line {}); expected a name used by one [[interface]] only",
                        interface.name, self.interface_lines[first]
                    ),
                ));
            }
            self.interface_lines.push(self.cx.line(table.span().start));
            interfaces.push(interface);
        }
        if raw.group.is_empty() && raw.bond.is_empty() {
            return Err(ConfigError {
                file: self.cx.file.to_owned(),
                line: 0,
                key: "group".to_owned(),
                message: "no [[group]] or [[bond]] is defined; expected at least one [[group]] table with name, interface, vrid and vips, or a [[bond]] table with name, mode, interfaces and vips"
                    .to_owned(),
            });
        }
        let mut groups = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut vrids: HashMap<(String, Family, u8), Owner> = HashMap::new();
        let mut vips: HashMap<(String, IpAddr), Owner> = HashMap::new();
        let mut taken = Taken::default();
        for (g, table) in raw.group.iter().enumerate() {
            let resolved = self.group(g, table, &interfaces, &mut names, &mut vrids, &mut vips)?;
            let owner = || Owner {
                kind: "group",
                index: g,
                name: resolved[0].name.clone(),
                line: self.cx.line(table.span().start),
            };
            taken.interfaces.entry(resolved[0].interface.clone()).or_insert_with(owner);
            for spec in &resolved {
                for &(ip, _) in &spec.vips {
                    if let IpAddr::V4(ip) = ip {
                        taken.vips.entry(ip).or_insert_with(owner);
                    }
                }
            }
            groups.extend(resolved);
        }
        let mut bonds = Vec::new();
        for (b, table) in raw.bond.iter().enumerate() {
            bonds.push(self.bond(b, table, &interfaces, &names, &mut taken)?);
        }
        let admin_socket = self.admin(raw.admin.as_ref())?;
        let metrics = self.metrics(raw.metrics.as_ref())?;
        Ok(Config { interfaces, groups, bonds, admin_socket, metrics })
    }

    // --- [admin] and [metrics] ----------------------------------------------

    fn admin(&self, table: Option<&Spanned<RawAdmin>>) -> Checked<PathBuf> {
        let Some(v) = table.and_then(|t| t.get_ref().socket.as_ref()) else {
            return Ok(PathBuf::from(crate::admin::DEFAULT_SOCKET));
        };
        let s = self.string(v, "admin.socket", EXPECT_SOCKET)?;
        let path = PathBuf::from(s);
        // sun_path holds 108 bytes with the terminating NUL.
        if !path.is_absolute() || s.len() > 107 || path.file_name().is_none() {
            return Err(self.cx.err(
                v.span(),
                "admin.socket",
                format!("{s:?} is not an absolute file path of at most 107 bytes; expected {EXPECT_SOCKET}"),
            ));
        }
        Ok(path)
    }

    fn metrics(&self, table: Option<&Spanned<RawMetrics>>) -> Checked<Option<SocketAddr>> {
        let Some(table) = table else { return Ok(None) };
        let Some(v) = table.get_ref().listen.as_ref() else {
            return Ok(Some(DEFAULT_METRICS_LISTEN.parse().expect("a valid address")));
        };
        let s = self.string(v, "metrics.listen", EXPECT_LISTEN)?;
        s.parse().map(Some).map_err(|_| {
            self.cx.err(
                v.span(),
                "metrics.listen",
                format!("{s:?} is not an address and port; expected {EXPECT_LISTEN}"),
            )
        })
    }

    // --- typed leaves -------------------------------------------------------

    fn required<'v>(
        &self,
        field: &'v Field,
        table: Range<usize>,
        key: &str,
        expect: &str,
    ) -> Checked<&'v Spanned<Value>> {
        field.as_ref().ok_or_else(|| {
            let name = key.rsplit('.').next().unwrap_or(key);
            self.cx.err(table, key, format!("missing required key `{name}`; expected {expect}"))
        })
    }

    fn wrong_type(&self, v: &Spanned<Value>, key: &str, expect: &str) -> ConfigError {
        self.cx.err(v.span(), key, format!("found {}; expected {expect}", describe(v.get_ref())))
    }

    fn string<'v>(&self, v: &'v Spanned<Value>, key: &str, expect: &str) -> Checked<&'v str> {
        v.get_ref().as_str().ok_or_else(|| self.wrong_type(v, key, expect))
    }

    fn int(&self, v: &Spanned<Value>, key: &str, range: RangeInclusive<i64>, expect: &str) -> Checked<i64> {
        let n = v.get_ref().as_integer().ok_or_else(|| self.wrong_type(v, key, expect))?;
        if !range.contains(&n) {
            return Err(self.cx.err(v.span(), key, format!("{n} is out of range; expected {expect}")));
        }
        Ok(n)
    }

    fn opt_int(&self, v: &Field, key: &str, range: RangeInclusive<i64>, expect: &str, default: i64) -> Checked<i64> {
        v.as_ref().map_or(Ok(default), |v| self.int(v, key, range, expect))
    }

    fn opt_bool(&self, v: &Field, key: &str, default: bool) -> Checked<bool> {
        match v {
            None => Ok(default),
            Some(v) => v.get_ref().as_bool().ok_or_else(|| self.wrong_type(v, key, EXPECT_BOOL)),
        }
    }

    fn opt_choice<T: Copy>(&self, v: &Field, key: &str, what: &str, options: &[(&str, T)], default: T) -> Checked<T> {
        let Some(v) = v else { return Ok(default) };
        let expect = one_of(options);
        let s = self.string(v, key, &expect)?;
        options
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, value)| value)
            .ok_or_else(|| self.cx.err(v.span(), key, format!("{s:?} is not a valid {what}; expected {expect}")))
    }

    fn millis(n: i64) -> Duration {
        Duration::from_millis(n.unsigned_abs())
    }

    /// The index of the `[[interface]]` named `name`, the value `v` of `key`.
    fn interface_index(
        &self,
        v: &Spanned<Value>,
        key: &str,
        name: &str,
        interfaces: &[InterfaceConfig],
    ) -> Checked<usize> {
        interfaces.iter().position(|i| i.name == name).ok_or_else(|| {
            let defined: Vec<String> = interfaces.iter().map(|i| format!("{:?}", i.name)).collect();
            let message = if defined.is_empty() {
                format!(
                    "no [[interface]] named {name:?}; expected the name of an [[interface]] table, and none is defined"
                )
            } else {
                format!("no [[interface]] named {name:?}; expected one of the defined: {}", defined.join(", "))
            };
            self.cx.err(v.span(), key, message)
        })
    }

    // --- [[interface]] ------------------------------------------------------

    fn interface(&self, i: usize, table: &Spanned<RawInterface>) -> Checked<InterfaceConfig> {
        let raw = table.get_ref();
        let at = |field: &str| format!("interface[{i}].{field}");

        let name_v = self.required(&raw.name, table.span(), &at("name"), EXPECT_IFNAME)?;
        let name = self.string(name_v, &at("name"), EXPECT_IFNAME)?;
        if !valid_ifname(name) {
            return Err(self.cx.err(
                name_v.span(),
                at("name"),
                format!("{name:?} is not a valid interface name; expected {EXPECT_IFNAME}"),
            ));
        }

        let address = match &raw.address {
            None => None,
            Some(v) => {
                let key = at("address");
                let s = self.string(v, &key, EXPECT_ADDRESS)?;
                let bad = |what: String| self.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_ADDRESS}"));
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
                let s = self.string(v, &key, EXPECT_ADDRESS6)?;
                let bad = |what: String| self.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_ADDRESS6}"));
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
                    let q = self.int(v, &key, 0..=i64::from(u32::MAX), EXPECT_QUEUE)? as u32;
                    if let Some(first) = queues.iter().position(|&x| x == q) {
                        return Err(self.cx.err(
                            v.span(),
                            key,
                            format!("queue {q} is listed twice (also queues[{first}]); expected each queue once"),
                        ));
                    }
                    queues.push(q);
                }
                if queues.is_empty() {
                    return Err(self.cx.err(
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
                    cores.push(self.int(v, &key, 0..=65535, EXPECT_CORE)? as usize);
                }
                if !cores.is_empty() && cores.len() != queues.len() {
                    return Err(self.cx.err(
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

        Ok(InterfaceConfig {
            name: name.to_owned(),
            address,
            address6,
            queues,
            cores,
            bind: self.opt_choice(&raw.bind, &at("bind"), "bind mode", BIND_MODES, BindMode::Auto)?,
            whole_nic: self.opt_bool(&raw.whole_nic, &at("whole_nic"), false)?,
            link_check: Self::millis(self.opt_int(
                &raw.link_check_ms,
                &at("link_check_ms"),
                1..=1000,
                EXPECT_LINK_CHECK,
                5,
            )?),
            idle: self.opt_choice(&raw.idle, &at("idle"), "idle policy", IDLE_MODES, Idle::Spin)?,
        })
    }

    // --- [[group]] ----------------------------------------------------------

    fn group(
        &self,
        g: usize,
        table: &Spanned<RawGroup>,
        interfaces: &[InterfaceConfig],
        names: &mut HashMap<String, usize>,
        vrids: &mut HashMap<(String, Family, u8), Owner>,
        vips_seen: &mut HashMap<(String, IpAddr), Owner>,
    ) -> Checked<Vec<GroupSpec>> {
        let raw = table.get_ref();
        let at = |field: &str| format!("group[{g}].{field}");
        let group_line = self.cx.line(table.span().start);

        // name
        let name_v = self.required(&raw.name, table.span(), &at("name"), EXPECT_GROUP_NAME)?;
        let name = self.string(name_v, &at("name"), EXPECT_GROUP_NAME)?;
        if !valid_group_name(name) {
            return Err(self.cx.err(
                name_v.span(),
                at("name"),
                format!("{name:?} is not a valid group name; expected {EXPECT_GROUP_NAME}"),
            ));
        }
        if let Some(&first) = names.get(name) {
            return Err(self.cx.err(
                name_v.span(),
                at("name"),
                format!("{name:?} is already the name of group[{first}]; expected a name used by one [[group]] only"),
            ));
        }
        names.insert(name.to_owned(), g);

        // interface
        let if_v = self.required(&raw.interface, table.span(), &at("interface"), EXPECT_GROUP_INTERFACE)?;
        let if_name = self.string(if_v, &at("interface"), EXPECT_GROUP_INTERFACE)?;
        let if_index = self.interface_index(if_v, &at("interface"), if_name, interfaces)?;
        let interface = &interfaces[if_index];

        // scalars
        let vrid_v = self.required(&raw.vrid, table.span(), &at("vrid"), EXPECT_VRID)?;
        let vrid = self.int(vrid_v, &at("vrid"), 1..=255, EXPECT_VRID)? as u8;
        let priority = self.opt_int(&raw.priority, &at("priority"), 1..=255, EXPECT_PRIORITY, 100)? as u8;
        let advert_interval = match &raw.advert_interval_ms {
            None => 1000,
            Some(v) => {
                let n = self.int(v, &at("advert_interval_ms"), 10..=40950, EXPECT_ADVERT)?;
                if n % 10 != 0 {
                    return Err(self.cx.err(
                        v.span(),
                        at("advert_interval_ms"),
                        format!("{n} is not a multiple of 10; expected {EXPECT_ADVERT}"),
                    ));
                }
                n
            }
        };
        let preempt = self.opt_bool(&raw.preempt, &at("preempt"), true)?;
        let preempt_delay =
            self.opt_int(&raw.preempt_delay_ms, &at("preempt_delay_ms"), 0..=3_600_000, EXPECT_PREEMPT_DELAY, 0)?;
        let mode = self.opt_choice(&raw.mode, &at("mode"), "group mode", GROUP_MODES, AddressMode::Vmac)?;

        // vips
        let Some(vip_list) = &raw.vips else {
            return Err(self.cx.err(
                table.span(),
                at("vips"),
                format!("missing required key `vips`; expected {EXPECT_VIPS}"),
            ));
        };
        if vip_list.get_ref().is_empty() {
            return Err(self.cx.err(
                vip_list.span(),
                at("vips"),
                format!("found an empty array; expected {EXPECT_VIPS}"),
            ));
        }
        let mut vips: Vec<(IpAddr, u8, usize, Range<usize>)> = Vec::new();
        for (n, v) in vip_list.get_ref().iter().enumerate() {
            let key = format!("{}[{n}]", at("vips"));
            let s = self.string(v, &key, EXPECT_VIP)?;
            let bad = |what: String| self.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_VIP}"));
            let (ip, prefix) = parse_prefixed(s).map_err(|e| bad(format!("in {s:?}, {e}")))?;
            let Some(prefix) = prefix else {
                return Err(bad(format!("{s:?} has no prefix length")));
            };
            if let Some(why) = not_unicast(ip) {
                return Err(bad(format!("{ip} {why}")));
            }
            if let Some(&(_, _, first, _)) = vips.iter().find(|(x, ..)| *x == ip) {
                return Err(self.cx.err(
                    v.span(),
                    key,
                    format!("{ip} is listed twice (also vips[{first}]); expected each VIP once"),
                ));
            }
            if let Some(owner) = vips_seen.get(&(interface.name.clone(), ip)) {
                return Err(self.cx.err(
                    v.span(),
                    key,
                    format!(
                        "{ip} is already a VIP of {} on interface {:?}; expected each VIP in one group per interface",
                        owner.describe(),
                        interface.name
                    ),
                ));
            }
            vips.push((ip, prefix, n, v.span()));
        }
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
                return Err(self.cx.err(
                    span.clone(),
                    format!("{}[{n}]", at("vips")),
                    format!(
                        "the {family} VIP {ip}/{prefix} needs this node's {family} address on interface {:?} as the advertisement source, and it has no `{field}`; expected {field} in its [[interface]] (line {}), like {example}",
                        interface.name, self.interface_lines[if_index]
                    ),
                ));
            }
            if mine.len() > MAX_ADDRESSES {
                return Err(self.cx.err(
                    vip_list.span(),
                    at("vips"),
                    format!(
                        "{} {family} VIPs; expected at most {MAX_ADDRESSES} per family (one advertisement carries them all)",
                        mine.len()
                    ),
                ));
            }
            if let Some(owner) = vrids.get(&(interface.name.clone(), family, vrid)) {
                return Err(self.cx.err(
                    vrid_v.span(),
                    at("vrid"),
                    format!(
                        "VRID {vrid} is already used for {family} on interface {:?} by {}; expected a VRID unique per interface and address family",
                        interface.name,
                        owner.describe()
                    ),
                ));
            }
        }

        // unicast peers
        let mut peers: Vec<(IpAddr, MacAddr)> = Vec::new();
        if let Some(list) = &raw.unicast_peers {
            for (n, peer) in list.get_ref().iter().enumerate() {
                let here = format!("{}[{n}]", at("unicast_peers"));
                let key = format!("{here}.address");
                let v = self.required(&peer.get_ref().address, peer.span(), &key, EXPECT_PEER_ADDRESS)?;
                let s = self.string(v, &key, EXPECT_PEER_ADDRESS)?;
                let bad = |what: String| self.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_PEER_ADDRESS}"));
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
                    return Err(self.cx.err(
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

                let key = format!("{here}.mac");
                let v = self.required(&peer.get_ref().mac, peer.span(), &key, EXPECT_MAC)?;
                let s = self.string(v, &key, EXPECT_MAC)?;
                let bad = |what: String| self.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_MAC}"));
                let mac: MacAddr = s.parse().map_err(|_| bad(format!("{s:?} is not a MAC address")))?;
                if mac.is_multicast() {
                    return Err(bad(format!("{mac} is a multicast MAC")));
                }
                if mac.octets() == [0; 6] {
                    return Err(bad(format!("{mac} is the all-zero MAC")));
                }
                peers.push((ip, mac));
            }
            if !peers.is_empty() {
                for &family in &families {
                    if !peers.iter().any(|(ip, _)| Family::of(*ip) == family) {
                        return Err(self.cx.err(
                            list.span(),
                            at("unicast_peers"),
                            format!(
                                "the group has {family} VIPs but no {family} peer, so its {family} half would advertise to nobody; expected at least one {family} peer per family of the group's VIPs"
                            ),
                        ));
                    }
                }
            }
        }

        let checksum_form = self.opt_choice(
            &raw.checksum,
            &at("checksum"),
            "checksum form",
            CHECKSUM_FORMS,
            ChecksumForm::PseudoHeader,
        )?;

        let garp = match &raw.garp {
            None => GarpSettings::default(),
            Some(t) => {
                let t = t.get_ref();
                let key = |field: &str| format!("group[{g}].garp.{field}");
                let count = self.opt_int(&t.count, &key("count"), 1..=100, EXPECT_GARP_COUNT, 5)?;
                let interval =
                    self.opt_int(&t.interval_ms, &key("interval_ms"), 1..=10_000, EXPECT_GARP_INTERVAL, 10)?;
                let second =
                    self.opt_int(&t.second_burst_ms, &key("second_burst_ms"), 0..=3_600_000, EXPECT_GARP_SECOND, 1000)?;
                let refresh =
                    self.opt_int(&t.refresh_ms, &key("refresh_ms"), 0..=86_400_000, EXPECT_GARP_REFRESH, 0)?;
                GarpSettings {
                    count: count as u32,
                    interval: Self::millis(interval),
                    second_burst_after: (second > 0).then(|| Self::millis(second)),
                    refresh: (refresh > 0).then(|| Self::millis(refresh)),
                }
            }
        };

        let notify = match &raw.notify {
            None => None,
            Some(v) => {
                let s = self.string(v, &at("notify"), EXPECT_NOTIFY)?;
                let path = PathBuf::from(s);
                if !path.is_absolute() {
                    return Err(self.cx.err(
                        v.span(),
                        at("notify"),
                        format!("{s:?} is not an absolute path; expected {EXPECT_NOTIFY}"),
                    ));
                }
                Some(path)
            }
        };

        // All checked: record what this group takes, and resolve one spec per family.
        let owner = || Owner { kind: "group", index: g, name: name.to_owned(), line: group_line };
        for &family in &families {
            vrids.insert((interface.name.clone(), family, vrid), owner());
        }
        for (ip, ..) in &vips {
            vips_seen.insert((interface.name.clone(), *ip), owner());
        }
        Ok(families
            .iter()
            .map(|&family| GroupSpec {
                name: name.to_owned(),
                interface: interface.name.clone(),
                family,
                vrid,
                priority,
                advert_interval: Self::millis(advert_interval),
                preempt,
                preempt_delay: Self::millis(preempt_delay),
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
            })
            .collect())
    }

    // --- [[bond]] -----------------------------------------------------------

    fn bond(
        &self,
        b: usize,
        table: &Spanned<RawBond>,
        interfaces: &[InterfaceConfig],
        group_names: &HashMap<String, usize>,
        taken: &mut Taken,
    ) -> Checked<BondSpec> {
        let raw = table.get_ref();
        let at = |field: &str| format!("bond[{b}].{field}");
        let bond_line = self.cx.line(table.span().start);

        // name
        let name_v = self.required(&raw.name, table.span(), &at("name"), EXPECT_BOND_NAME)?;
        let name = self.string(name_v, &at("name"), EXPECT_BOND_NAME)?;
        if !valid_group_name(name) {
            return Err(self.cx.err(
                name_v.span(),
                at("name"),
                format!("{name:?} is not a valid bond name; expected {EXPECT_BOND_NAME}"),
            ));
        }
        let other = match (group_names.get(name), taken.bond_names.get(name)) {
            (Some(g), _) => Some(format!("group[{g}]")),
            (None, Some(first)) => Some(format!("bond[{first}]")),
            (None, None) => None,
        };
        if let Some(other) = other {
            return Err(self.cx.err(
                name_v.span(),
                at("name"),
                format!(
                    "{name:?} is already the name of {other}; expected a name used by one [[group]] or [[bond]] only"
                ),
            ));
        }

        // mode, and the keys only alb uses
        let modes = one_of(BOND_MODES);
        self.required(&raw.mode, table.span(), &at("mode"), &modes)?;
        let mode = self.opt_choice(&raw.mode, &at("mode"), "bond mode", BOND_MODES, BondMode::Tlb)?;
        if mode == BondMode::Tlb {
            let alb_only = [
                ("clients", &raw.clients),
                ("client_timeout_s", &raw.client_timeout_s),
                ("rebalance_ms", &raw.rebalance_ms),
                ("rebalance_burst", &raw.rebalance_burst),
            ];
            if let Some((field, v)) = alb_only.iter().find_map(|(field, v)| v.as_ref().map(|v| (field, v))) {
                return Err(self.cx.err(
                    v.span(),
                    at(field),
                    format!(
                        "`{field}` is only meaningful for mode = \"alb\" (a tlb bond's clients all know the primary's MAC); expected no `{field}` in a tlb bond, or mode = \"alb\""
                    ),
                ));
            }
        }

        // interfaces
        let Some(if_list) = &raw.interfaces else {
            return Err(self.cx.err(
                table.span(),
                at("interfaces"),
                format!("missing required key `interfaces`; expected {EXPECT_BOND_INTERFACES}"),
            ));
        };
        let mut members: Vec<usize> = Vec::new();
        for (n, v) in if_list.get_ref().iter().enumerate() {
            let key = format!("{}[{n}]", at("interfaces"));
            let if_name = self.string(v, &key, EXPECT_GROUP_INTERFACE)?;
            let index = self.interface_index(v, &key, if_name, interfaces)?;
            if let Some(first) = members.iter().position(|&m| m == index) {
                return Err(self.cx.err(
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
                return Err(self.cx.err(v.span(), key, message));
            }
            members.push(index);
        }
        if !(2..=8).contains(&members.len()) {
            let found =
                if members.is_empty() { "an empty array".to_owned() } else { plural(members.len(), "interface") };
            return Err(self.cx.err(
                if_list.span(),
                at("interfaces"),
                format!("found {found}; expected {EXPECT_BOND_INTERFACES}"),
            ));
        }
        let primary = &interfaces[members[0]];
        let describe_nic =
            |index: usize| format!("{:?} (line {})", interfaces[index].name, self.interface_lines[index]);
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
                return Err(self.cx.err(
                    if_list.span(),
                    at("interfaces"),
                    format!(
                        "interface {} has {differs}; expected the same `queues` and `bind` on every interface of a bond (the bond's workers own one queue of each NIC)",
                        describe_nic(index)
                    ),
                ));
            }
        }

        // vips
        let Some(vip_list) = &raw.vips else {
            return Err(self.cx.err(
                table.span(),
                at("vips"),
                format!("missing required key `vips`; expected {EXPECT_BOND_VIPS}"),
            ));
        };
        if vip_list.get_ref().is_empty() {
            return Err(self.cx.err(
                vip_list.span(),
                at("vips"),
                format!("found an empty array; expected {EXPECT_BOND_VIPS}"),
            ));
        }
        let mut vips: Vec<(Ipv4Addr, u8)> = Vec::new();
        for (n, v) in vip_list.get_ref().iter().enumerate() {
            let key = format!("{}[{n}]", at("vips"));
            let s = self.string(v, &key, EXPECT_BOND_VIP)?;
            let bad = |what: String| self.cx.err(v.span(), &key, format!("{what}; expected {EXPECT_BOND_VIP}"));
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
                return Err(self.cx.err(
                    v.span(),
                    key,
                    format!("{ip} is listed twice (also vips[{first}]); expected each VIP once"),
                ));
            }
            if let Some(owner) = taken.vips.get(&ip4) {
                return Err(self.cx.err(
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

        // numbers
        let clients = self.opt_int(&raw.clients, &at("clients"), 1..=1_000_000, EXPECT_CLIENTS, 4096)?;
        let client_timeout =
            self.opt_int(&raw.client_timeout_s, &at("client_timeout_s"), 1..=86_400, EXPECT_CLIENT_TIMEOUT, 300)?;
        let rebalance = self.opt_int(&raw.rebalance_ms, &at("rebalance_ms"), 1..=60_000, EXPECT_REBALANCE, 100)?;
        let rebalance_burst =
            self.opt_int(&raw.rebalance_burst, &at("rebalance_burst"), 1..=1024, EXPECT_REBALANCE_BURST, 8)?;
        let announce = match &raw.announce_every_ms {
            None => 0,
            Some(v) => {
                let n = self.int(v, &at("announce_every_ms"), 0..=3_600_000, EXPECT_ANNOUNCE)?;
                if (1..100).contains(&n) {
                    return Err(self.cx.err(
                        v.span(),
                        at("announce_every_ms"),
                        format!("{n} is out of range; expected {EXPECT_ANNOUNCE}"),
                    ));
                }
                n
            }
        };

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
            rebalance_interval: Self::millis(rebalance),
            rebalance_burst: rebalance_burst as usize,
            announce_every: (announce > 0).then(|| Self::millis(announce)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"[[interface]]
name = "eth0"
address = "198.51.100.2/24"
address6 = "fe80::2"

[[group]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["198.51.100.100/24"]
"#;

    /// A bond-only file: two interfaces without addresses, one alb bond.
    const BOND: &str = r#"[[interface]]
name = "eth2"
queues = [0, 1]

[[interface]]
name = "eth3"
queues = [0, 1]

[[bond]]
name = "lan"
mode = "alb"
interfaces = ["eth2", "eth3"]
vips = ["198.51.100.200/24", "198.51.100.201"]
"#;

    fn ok(text: &str) -> Config {
        parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> ConfigError {
        let e = parse(text, "t.toml").expect_err("the file should be rejected");
        println!("{e}");
        e
    }

    /// 1-based line of the first line of `text` containing `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1
    }

    /// Checks the error's line, key and that its message holds every fragment.
    fn assert_error(e: &ConfigError, line: usize, key: &str, fragments: &[&str]) {
        assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
        for fragment in fragments {
            assert!(e.message.contains(fragment), "{e:?} lacks {fragment:?}");
        }
        assert!(e.message.contains("expected"), "{e} says nothing of what is expected");
    }

    #[test]
    fn a_file_with_every_key_resolves_to_its_values() {
        let text = r#"
[[interface]]
name = "eth0"
address = "198.51.100.2/24"
address6 = "fe80::2/64"
queues = [0, 3]
cores = [1, 5]
bind = "zero-copy"
whole_nic = true
link_check_ms = 20
idle = "sleep"

[[group]]
name = "web"
interface = "eth0"
vrid = 51
priority = 200
advert_interval_ms = 10
preempt = false
preempt_delay_ms = 1500
mode = "own_mac"
vips = ["198.51.100.100/24", "198.51.100.101/32"]
unicast_peers = [{ address = "198.51.100.3", mac = "02:00:00:00:00:03" }]
checksum = "message_only"
garp = { count = 3, interval_ms = 20, second_burst_ms = 0, refresh_ms = 60000 }
notify = "/usr/local/bin/on-transition"
"#;
        let config = ok(text);
        assert_eq!(
            config.interfaces,
            vec![InterfaceConfig {
                name: "eth0".into(),
                address: Some(("198.51.100.2".parse().unwrap(), 24)),
                address6: Some("fe80::2".parse().unwrap()),
                queues: vec![0, 3],
                cores: vec![1, 5],
                bind: BindMode::ZeroCopy,
                whole_nic: true,
                link_check: Duration::from_millis(20),
                idle: Idle::Sleep,
            }]
        );
        let web = GroupSpec {
            name: "web".into(),
            interface: "eth0".into(),
            family: Family::Ipv4,
            vrid: 51,
            priority: 200,
            advert_interval: Duration::from_millis(10),
            preempt: false,
            preempt_delay: Duration::from_millis(1500),
            mode: AddressMode::OwnMac,
            vips: vec![("198.51.100.100".parse().unwrap(), 24), ("198.51.100.101".parse().unwrap(), 32)],
            unicast_peers: vec![("198.51.100.3".parse().unwrap(), MacAddr([2, 0, 0, 0, 0, 3]))],
            checksum_form: ChecksumForm::MessageOnly,
            garp: GarpSettings {
                count: 3,
                interval: Duration::from_millis(20),
                second_burst_after: None,
                refresh: Some(Duration::from_secs(60)),
            },
            notify: Some(PathBuf::from("/usr/local/bin/on-transition")),
        };
        assert_eq!(config.groups, vec![web.clone()]);

        let primary = config.primary(&config.groups[0]).unwrap();
        assert_eq!(primary, "198.51.100.2".parse::<IpAddr>().unwrap());
        let gc = web.group_config(primary, MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(gc.vips, vec!["198.51.100.100".parse::<IpAddr>().unwrap(), "198.51.100.101".parse().unwrap()]);
        assert_eq!(
            (gc.vrid, gc.priority, gc.primary, gc.interface_mac),
            (51, 200, primary, MacAddr([2, 0, 0, 0, 0, 2]))
        );
        assert_eq!((gc.mode, gc.preempt, gc.preempt_delay), (AddressMode::OwnMac, false, Duration::from_millis(1500)));
        assert_eq!(gc.mac(), [2, 0, 0, 0, 0, 2]);
        assert_eq!((gc.checksum_form, gc.garp, gc.unicast_peers), (web.checksum_form, web.garp, web.unicast_peers));
    }

    #[test]
    fn left_out_keys_take_their_defaults() {
        let config = ok(BASE);
        let eth0 = &config.interfaces[0];
        assert_eq!((eth0.queues.as_slice(), eth0.cores.as_slice()), (&[0u32][..], &[][..]));
        assert_eq!(
            (eth0.bind, eth0.whole_nic, eth0.link_check, eth0.idle),
            (BindMode::Auto, false, Duration::from_millis(5), Idle::Spin)
        );
        let web = &config.groups[0];
        assert_eq!(
            (web.priority, web.advert_interval, web.preempt, web.preempt_delay),
            (100, Duration::from_secs(1), true, Duration::ZERO)
        );
        assert!(web.mode == AddressMode::Vmac && web.unicast_peers.is_empty() && web.notify.is_none());
        assert_eq!((web.checksum_form, web.garp), (ChecksumForm::PseudoHeader, GarpSettings::default()));
        let partial = ok(&BASE.replace("vrid = 51", "vrid = 51\ngarp = { refresh_ms = 500 }"));
        assert_eq!(
            partial.groups[0].garp,
            GarpSettings { refresh: Some(Duration::from_millis(500)), ..GarpSettings::default() }
        );
        let mac = partial.groups[0].group_config(partial.primary(&partial.groups[0]).unwrap(), MacAddr([2; 6])).mac();
        assert_eq!(mac, [0, 0, 0x5e, 0, 1, 51]);
    }

    #[test]
    fn a_group_with_both_families_splits_into_two() {
        let text = BASE.replace(
            r#"vips = ["198.51.100.100/24"]"#,
            r#"vips = ["2001:db8::100/64", "198.51.100.100/24", "2001:db8::101/64"]
unicast_peers = [
    { address = "fe80::3", mac = "02:00:00:00:00:03" },
    { address = "198.51.100.3", mac = "02:00:00:00:00:03" },
]"#,
        );
        let config = ok(&text);
        let [v4, v6] = config.groups.as_slice() else { panic!("{:?}", config.groups) };
        assert_eq!((v4.name.as_str(), v4.vrid, v4.family), ("web", 51, Family::Ipv4));
        assert_eq!((v6.name.as_str(), v6.vrid, v6.family), ("web", 51, Family::Ipv6));
        assert_eq!(v4.vips, vec![("198.51.100.100".parse().unwrap(), 24)]);
        assert_eq!(v6.vips, vec![("2001:db8::100".parse().unwrap(), 64), ("2001:db8::101".parse().unwrap(), 64)]);
        assert_eq!(v4.unicast_peers, vec![("198.51.100.3".parse().unwrap(), MacAddr([2, 0, 0, 0, 0, 3]))]);
        assert_eq!(v6.unicast_peers, vec![("fe80::3".parse().unwrap(), MacAddr([2, 0, 0, 0, 0, 3]))]);
        assert_eq!(config.primary(v6), Some("fe80::2".parse().unwrap()));
        assert_eq!(v6.group_config(config.primary(v6).unwrap(), MacAddr([2; 6])).mac(), [0, 0, 0x5e, 0, 2, 51]);

        // The split takes the VRID in both families: another IPv6 group may not reuse it.
        let again = format!(
            "{text}\n[[group]]\nname = \"web6\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"2001:db8::200/64\"]\n"
        );
        let e = err(&again);
        assert_error(
            &e,
            line_of(&again, "name = \"web6\"") + 2,
            "group[1].vrid",
            &["VRID 51", "IPv6", "group[0] \"web\""],
        );

        // With peers, each half needs a peer of its family.
        let one_sided = text.replace("    { address = \"fe80::3\", mac = \"02:00:00:00:00:03\" },\n", "");
        let e = err(&one_sided);
        assert_error(&e, line_of(&one_sided, "unicast_peers"), "group[0].unicast_peers", &["no IPv6 peer"]);
    }

    #[test]
    fn a_syntax_error_names_its_line_and_key() {
        let text = BASE.replace("vrid = 51", "vrid = ");
        let e = err(&text);
        assert_error(&e, line_of(&text, "vrid ="), "group[0].vrid", &["invalid TOML"]);
        let text = BASE.replace("\"web\"", "\"web");
        let e = err(&text);
        assert_error(&e, line_of(&text, "\"web"), "group[0].name", &["invalid TOML", "invalid basic string"]);
    }

    #[test]
    fn an_unknown_key_is_rejected_with_the_valid_ones() {
        let text = BASE.replace("vrid = 51", "vird = 51");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "vird"),
            "group[0].vird",
            &["unknown key `vird`", "`vrid`", "`advert_interval_ms`"],
        );
        let text = BASE.replace("vrid = 51", "vrid = 51\ngarp = { count = 2, intervall_ms = 5 }");
        let e = err(&text);
        assert_error(&e, line_of(&text, "intervall_ms"), "group[0].garp.intervall_ms", &["`interval_ms`"]);
        let text = format!("{BASE}\n[[groups]]\n");
        let e = err(&text);
        assert_error(&e, line_of(&text, "[[groups]]"), "groups", &["unknown key `groups`", "`group`"]);
    }

    #[test]
    fn a_wrong_type_says_what_was_found_and_expected() {
        let text = BASE.replace("vrid = 51", "vrid = \"51\"");
        let e = err(&text);
        assert_error(&e, line_of(&text, "vrid"), "group[0].vrid", &["found the string \"51\"", "an integer 1..=255"]);
        let text = BASE.replace("vrid = 51", "vrid = 51\ngarp = 5");
        let e = err(&text);
        assert_error(&e, line_of(&text, "garp"), "group[0].garp", &["found the integer 5", "count = 5"]);
        let text = BASE.replace("[[group]]", "[group]");
        let e = err(&text);
        assert_error(&e, line_of(&text, "[group]"), "group", &["found a table", "[[group]]"]);
        let text = BASE.replace(r#"vips = ["198.51.100.100/24"]"#, r#"vips = "198.51.100.100/24""#);
        let e = err(&text);
        assert_error(&e, line_of(&text, "vips"), "group[0].vips", &["ADDRESS/PREFIX"]);
        let text = BASE.replace("name = \"eth0\"", "name = \"eth0\"\nwhole_nic = \"yes\"");
        let e = err(&text);
        assert_error(&e, line_of(&text, "whole_nic"), "interface[0].whole_nic", &["true or false"]);
    }

    #[test]
    fn a_vrid_out_of_range_is_rejected() {
        let text = BASE.replace("vrid = 51", "vrid = 300");
        let e = err(&text);
        assert_error(&e, line_of(&text, "vrid"), "group[0].vrid", &["300 is out of range", "an integer 1..=255"]);
        assert_eq!(
            e.to_string(),
            format!("t.toml:{}: group[0].vrid: 300 is out of range; expected an integer 1..=255", e.line)
        );
        assert_eq!(err(&BASE.replace("vrid = 51", "vrid = 0")).key, "group[0].vrid");
    }

    #[test]
    fn an_interval_must_be_a_multiple_of_10_in_range() {
        let text = BASE.replace("vrid = 51", "vrid = 51\nadvert_interval_ms = 15");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "advert_interval_ms"),
            "group[0].advert_interval_ms",
            &["15 is not a multiple of 10", "10..=40950"],
        );
        let e = err(&BASE.replace("vrid = 51", "vrid = 51\nadvert_interval_ms = 40960"));
        assert!(e.message.contains("out of range"), "{e}");
        let text = BASE.replace("vrid = 51", "vrid = 51\ngarp = { interval_ms = 0 }");
        let e = err(&text);
        assert_error(&e, line_of(&text, "garp"), "group[0].garp.interval_ms", &["1..=10000"]);
    }

    #[test]
    fn a_group_must_name_a_defined_interface() {
        let text = BASE.replace("interface = \"eth0\"", "interface = \"eth1\"");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "interface = "),
            "group[0].interface",
            &["no [[interface]] named \"eth1\"", "\"eth0\""],
        );
    }

    #[test]
    fn a_vrid_is_unique_per_interface_and_family() {
        let second = "\n[[group]]\nname = \"api\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"198.51.100.101/24\"]\n";
        let text = format!("{BASE}{second}");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "name = \"api\"") + 2,
            "group[1].vrid",
            &["VRID 51", "IPv4", "group[0] \"web\""],
        );
        // The same VRID in the other family, or on another interface, is fine.
        ok(&format!("{BASE}{}", second.replace("198.51.100.101/24", "2001:db8::101/64")));
        let other = "[[interface]]\nname = \"eth1\"\naddress = \"203.0.113.2/24\"\n";
        ok(&format!("{other}{BASE}{}", second.replace("eth0", "eth1").replace("198.51.100.101", "203.0.113.101")));
        // And group names are unique.
        let text = format!("{BASE}{}", second.replace("api", "web").replace("51", "52"));
        let e = err(&text);
        assert_error(&e, line_of(&text, "vrid = 52") - 2, "group[1].name", &["already the name of group[0]"]);
    }

    #[test]
    fn a_family_needs_the_interfaces_address_of_that_family() {
        let text = BASE.replace("address6 = \"fe80::2\"\n", "").replace("198.51.100.100/24", "2001:db8::100/64");
        let e = err(&text);
        assert_error(&e, line_of(&text, "vips"), "group[0].vips[0]", &["IPv6", "address6", "interface \"eth0\""]);
        let text = BASE.replace("address = \"198.51.100.2/24\"\n", "");
        let e = err(&text);
        assert_error(&e, line_of(&text, "vips"), "group[0].vips[0]", &["IPv4", "`address`", "198.51.100.2/24"]);
        let text = BASE.replace("fe80::2", "2001:db8::2");
        let e = err(&text);
        assert_error(&e, line_of(&text, "address6"), "interface[0].address6", &["not link-local", "fe80::/10"]);
    }

    #[test]
    fn a_bad_vip_is_rejected() {
        let vips = |list: &str| BASE.replace(r#"["198.51.100.100/24"]"#, list);
        let text = vips("[\n  \"198.51.100.100/24\",\n  \"198.51.100.300/24\",\n]");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "300"),
            "group[0].vips[1]",
            &["\"198.51.100.300\" is not an IP address", "with its prefix length"],
        );
        let e = err(&vips(r#"["198.51.100.100"]"#));
        assert!(e.message.contains("has no prefix length") && e.key == "group[0].vips[0]", "{e}");
        let e = err(&vips(r#"["198.51.100.100/33"]"#));
        assert!(e.message.contains("prefix length \"33\" is not 1..=32"), "{e}");
        let e = err(&vips(r#"["224.0.0.18/24"]"#));
        assert!(e.message.contains("multicast"), "{e}");
        let e = err(&vips(r#"["198.51.100.100/24", "198.51.100.100/25"]"#));
        assert!(e.message.contains("listed twice") && e.key == "group[0].vips[1]", "{e}");
        let e = err(&vips("[]"));
        assert_error(&e, line_of(BASE, "vips"), "group[0].vips", &["empty array"]);
        let e = err(&vips("[51]"));
        assert!(e.message.contains("found the integer 51"), "{e}");
    }

    #[test]
    fn a_bad_peer_is_rejected() {
        let peers = |list: &str| BASE.replace("vrid = 51", &format!("vrid = 51\nunicast_peers = {list}"));
        let text = peers(r#"[{ address = "198.51.100.3", mac = "02:00:00:00:03" }]"#);
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "unicast_peers"),
            "group[0].unicast_peers[0].mac",
            &["is not a MAC address", "02:00:00:00:00:03"],
        );
        let e = err(&peers(r#"[{ address = "198.51.100.3", mac = "01:00:5e:00:00:12" }]"#));
        assert!(e.message.contains("multicast MAC"), "{e}");
        let e = err(&peers(r#"[{ address = "fe80::3", mac = "02:00:00:00:00:03" }]"#));
        assert_error(
            &e,
            line_of(BASE, "vrid") + 1,
            "group[0].unicast_peers[0].address",
            &["IPv6", "an IPv4 peer address"],
        );
        let e = err(&peers(r#"[{ address = "198.51.100.2", mac = "02:00:00:00:00:03" }]"#));
        assert!(e.message.contains("this node's own address"), "{e}");
        let v6 = BASE.replace("198.51.100.100/24", "2001:db8::100/64");
        let e = err(&v6.replace(
            "vrid = 51",
            "vrid = 51\nunicast_peers = [{ address = \"2001:db8::3\", mac = \"02:00:00:00:00:03\" }]",
        ));
        assert!(e.message.contains("not link-local") && e.key == "group[0].unicast_peers[0].address", "{e}");
        let e = err(&peers(r#"[{ mac = "02:00:00:00:00:03" }]"#));
        assert_error(
            &e,
            line_of(BASE, "vrid") + 1,
            "group[0].unicast_peers[0].address",
            &["missing required key `address`"],
        );
        let e = err(&peers(r#"[{ address = "198.51.100.3", mac = "02:00:00:00:00:03", port = 1 }]"#));
        assert!(e.message.contains("unknown key `port`") && e.key == "group[0].unicast_peers[0].port", "{e}");
    }

    #[test]
    fn notify_must_be_an_absolute_path() {
        let text = BASE.replace("vrid = 51", "vrid = 51\nnotify = \"bin/on-transition\"");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "notify"),
            "group[0].notify",
            &["\"bin/on-transition\" is not an absolute path", "/usr/local/bin"],
        );
    }

    #[test]
    fn a_missing_required_key_names_the_table() {
        let text = BASE.replace("vrid = 51\n", "");
        let e = err(&text);
        assert_error(&e, line_of(&text, "[[group]]"), "group[0].vrid", &["missing required key `vrid`", "1..=255"]);
        let text = BASE.replace("name = \"eth0\"\n", "");
        let e = err(&text);
        assert_error(&e, 1, "interface[0].name", &["missing required key `name`", "\"eth0\""]);
        let text = BASE.replace("vips = [\"198.51.100.100/24\"]\n", "");
        let e = err(&text);
        assert_error(&e, line_of(&text, "[[group]]"), "group[0].vips", &["missing required key `vips`"]);
    }

    #[test]
    fn a_bond_only_file_is_valid_and_takes_the_defaults() {
        let config = ok(BOND);
        assert!(config.groups.is_empty());
        assert!(config.interfaces.iter().all(|i| i.address.is_none() && i.address6.is_none()));
        let lan = BondSpec {
            name: "lan".into(),
            mode: BondMode::Alb,
            interfaces: vec!["eth2".into(), "eth3".into()],
            vips: vec![("198.51.100.200".parse().unwrap(), 24), ("198.51.100.201".parse().unwrap(), 32)],
            clients: 4096,
            client_timeout: Duration::from_secs(300),
            rebalance_interval: Duration::from_millis(100),
            rebalance_burst: 8,
            announce_every: None,
        };
        assert_eq!(config.bonds, vec![lan.clone()]);
        assert_eq!(config.bond_of("eth3"), Some(&lan));
        assert_eq!(config.bond_of("eth0"), None);
        assert_eq!((BondMode::Alb.name(), BondMode::Tlb.name()), ("alb", "tlb"));
    }

    #[test]
    fn bonds_with_every_key_resolve_to_their_values() {
        let text = format!(
            r#"{BASE}
[[interface]]
name = "eth2"
bind = "copy"

[[interface]]
name = "eth3"
bind = "copy"

[[interface]]
name = "eth4"

[[interface]]
name = "eth5"

[[bond]]
name = "lan"
mode = "alb"
interfaces = ["eth3", "eth2"]
vips = ["198.51.100.200/25"]
clients = 100
client_timeout_s = 60
rebalance_ms = 250
rebalance_burst = 16
announce_every_ms = 0

[[bond]]
name = "backup"
mode = "tlb"
interfaces = ["eth4", "eth5"]
vips = ["203.0.113.200/24"]
announce_every_ms = 1000
"#
        );
        let config = ok(&text);
        assert_eq!(config.groups.len(), 1);
        let [lan, backup] = config.bonds.as_slice() else { panic!("{:?}", config.bonds) };
        assert_eq!(
            lan,
            &BondSpec {
                name: "lan".into(),
                mode: BondMode::Alb,
                interfaces: vec!["eth3".into(), "eth2".into()],
                vips: vec![("198.51.100.200".parse().unwrap(), 25)],
                clients: 100,
                client_timeout: Duration::from_secs(60),
                rebalance_interval: Duration::from_millis(250),
                rebalance_burst: 16,
                announce_every: None,
            }
        );
        assert_eq!((backup.mode, backup.interfaces[0].as_str()), (BondMode::Tlb, "eth4"));
        assert_eq!((backup.clients, backup.rebalance_burst), (4096, 8));
        assert_eq!(backup.announce_every, Some(Duration::from_secs(1)));
        assert_eq!(config.bond_of("eth2").map(|b| b.name.as_str()), Some("lan"));
        assert_eq!(config.bond_of("eth5").map(|b| b.name.as_str()), Some("backup"));
        assert_eq!(config.bond_of("eth0"), None);
    }

    #[test]
    fn a_tlb_bond_rejects_the_alb_keys() {
        for (key, value) in
            [("clients", "10"), ("client_timeout_s", "60"), ("rebalance_ms", "50"), ("rebalance_burst", "4")]
        {
            let text = BOND.replace("mode = \"alb\"", &format!("mode = \"tlb\"\n{key} = {value}"));
            let e = err(&text);
            assert_error(
                &e,
                line_of(&text, &format!("{key} =")),
                &format!("bond[0].{key}"),
                &["only meaningful for mode = \"alb\"", "tlb"],
            );
        }
        ok(&BOND.replace("mode = \"alb\"", "mode = \"tlb\"\nannounce_every_ms = 500"));
    }

    #[test]
    fn a_bonds_keys_are_checked() {
        let text = BOND.replace("mode = \"alb\"", "mode = \"alb\"\nclinets = 10");
        let e = err(&text);
        assert_error(&e, line_of(&text, "clinets"), "bond[0].clinets", &["unknown key `clinets`", "`clients`"]);
        let text = BOND.replace("[[bond]]", "[bond]");
        assert_error(&err(&text), line_of(&text, "[bond]"), "bond", &["found a table", "[[bond]]"]);
        let text = BOND.replace("mode = \"alb\"\n", "");
        let e = err(&text);
        assert_error(&e, line_of(&text, "[[bond]]"), "bond[0].mode", &["missing required key `mode`", "\"alb\""]);
        let text = BOND.replace("\"alb\"", "\"balance-alb\"");
        let e = err(&text);
        assert_error(&e, line_of(&text, "mode"), "bond[0].mode", &["not a valid bond mode", "\"tlb\", \"alb\""]);
        let text = BOND.replace("\"lan\"", "\"l a n\"");
        assert_error(&err(&text), line_of(&text, "l a n"), "bond[0].name", &["not a valid bond name"]);
        let text = BOND.replace(r#"interfaces = ["eth2", "eth3"]"#, r#"interfaces = "eth2""#);
        assert_error(&err(&text), line_of(&text, "interfaces"), "bond[0].interfaces", &["found the string", "2..=8"]);
        for (key, value, fragments) in [
            ("clients", "0", &["0 is out of range", "1..=1000000"]),
            ("client_timeout_s", "86401", &["86401 is out of range", "1..=86400"]),
            ("rebalance_ms", "0", &["0 is out of range", "1..=60000"]),
            ("rebalance_burst", "1025", &["1025 is out of range", "1..=1024"]),
            ("announce_every_ms", "50", &["50 is out of range", "100..=3600000"]),
            ("announce_every_ms", "3600001", &["3600001 is out of range", "0 (no periodic announcement)"]),
        ] {
            let text = BOND.replace("mode = \"alb\"", &format!("mode = \"alb\"\n{key} = {value}"));
            assert_error(&err(&text), line_of(&text, key), &format!("bond[0].{key}"), fragments);
        }
    }

    #[test]
    fn a_bond_name_is_unique_among_groups_and_bonds() {
        let text = format!("{BASE}\n{}", BOND.replace("\"lan\"", "\"web\""));
        let e = err(&text);
        let line = line_of(&text, "mode = \"alb\"") - 1;
        assert_error(&e, line, "bond[0].name", &["\"web\" is already the name of group[0]", "[[bond]]"]);
        let second = "\n[[interface]]\nname = \"eth4\"\n\n[[interface]]\nname = \"eth5\"\n\n[[bond]]\nname = \"lan\"\nmode = \"tlb\"\ninterfaces = [\"eth4\", \"eth5\"]\nvips = [\"198.51.100.210\"]\n";
        let text = format!("{BOND}{second}");
        let e = err(&text);
        let line = text.lines().collect::<Vec<_>>().iter().rposition(|l| *l == "name = \"lan\"").unwrap() + 1;
        assert_error(&e, line, "bond[1].name", &["already the name of bond[0]"]);
    }

    #[test]
    fn a_bond_names_two_to_eight_defined_interfaces_once() {
        let with = |list: &str| BOND.replace(r#"["eth2", "eth3"]"#, list);
        let text = with(r#"["eth2", "eth9"]"#);
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "interfaces"),
            "bond[0].interfaces[1]",
            &["no [[interface]] named \"eth9\"", "\"eth2\", \"eth3\""],
        );
        let e = err(&with(r#"["eth2", "eth3", "eth2"]"#));
        assert_error(&e, line_of(BOND, "interfaces"), "bond[0].interfaces[2]", &["\"eth2\" is listed twice"]);
        let e = err(&with(r#"["eth2"]"#));
        assert_error(&e, line_of(BOND, "interfaces"), "bond[0].interfaces", &["found 1 interface;", "2..=8"]);
        let e = err(&with("[]"));
        assert_error(&e, line_of(BOND, "interfaces"), "bond[0].interfaces", &["found an empty array", "2..=8"]);
        let e = err(&with("[2]"));
        assert_error(&e, line_of(BOND, "interfaces"), "bond[0].interfaces[0]", &["found the integer 2"]);
        let nine: Vec<String> = (0..9).map(|n| format!("[[interface]]\nname = \"n{n}\"\n")).collect();
        let names: Vec<String> = (0..9).map(|n| format!("\"n{n}\"")).collect();
        let text = format!("{}{}", nine.concat(), with(&format!("[{}]", names.join(", "))));
        let e = err(&text);
        assert_error(&e, line_of(&text, "interfaces"), "bond[0].interfaces", &["found 9 interfaces", "2..=8"]);
        ok(&format!("{}{}", nine.concat(), with(&format!("[{}]", names[..8].join(", ")))));
        let e = err(&BOND.replace("interfaces = [\"eth2\", \"eth3\"]\n", ""));
        assert_error(&e, line_of(BOND, "[[bond]]"), "bond[0].interfaces", &["missing required key `interfaces`"]);
    }

    #[test]
    fn an_interface_is_in_one_bond_and_carries_no_group() {
        let second = "\n[[interface]]\nname = \"eth4\"\nqueues = [0, 1]\n\n[[bond]]\nname = \"wan\"\nmode = \"tlb\"\ninterfaces = [\"eth4\", \"eth3\"]\nvips = [\"198.51.100.210\"]\n";
        let text = format!("{BOND}{second}");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "[\"eth4\", \"eth3\"]"),
            "bond[1].interfaces[1]",
            &["\"eth3\" is already in bond[0] \"lan\" (line 9)", "one [[bond]] only"],
        );
        let bonded = "\n[[interface]]\nname = \"eth2\"\n\n[[bond]]\nname = \"lan\"\nmode = \"tlb\"\ninterfaces = [\"eth2\", \"eth0\"]\nvips = [\"198.51.100.200\"]\n";
        let text = format!("{BASE}{bonded}");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "interfaces = "),
            "bond[0].interfaces[1]",
            &[
                "\"eth0\" is the interface of group[0] \"web\" (line 6)",
                "an interface in a bond carries no [[group]]; use the bond's vips",
            ],
        );
    }

    #[test]
    fn a_bonds_interfaces_share_queues_and_bind_mode() {
        let text = BOND.replacen("queues = [0, 1]", "queues = [0]", 1);
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "interfaces"),
            "bond[0].interfaces",
            &[
                "interface \"eth3\" (line 5) has queues [0, 1]",
                "primary \"eth2\" (line 1) has queues [0]",
                "same `queues` and `bind`",
            ],
        );
        let text =
            BOND.replacen("queues = [0, 1]", "queues = [0, 1]\nbind = \"skb\"", 2).replacen("\"skb\"", "\"copy\"", 1);
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "interfaces"),
            "bond[0].interfaces",
            &["has bind = \"skb\"", "has bind = \"copy\"", "one queue of each NIC"],
        );
    }

    #[test]
    fn a_bond_vip_is_ipv4_unicast_and_in_no_group_or_other_bond() {
        let with = |list: &str| BOND.replace(r#"["198.51.100.200/24", "198.51.100.201"]"#, list);
        let line = line_of(BOND, "vips");
        let e = err(&with(r#"["198.51.100.200/24", "2001:db8::200/64"]"#));
        assert_error(
            &e,
            line,
            "bond[0].vips[1]",
            &["is an IPv6 address", "bonds balance IPv4 by ARP; IPv6 VIPs belong in a [[group]]"],
        );
        let e = err(&with(r#"["224.0.0.18"]"#));
        assert_error(&e, line, "bond[0].vips[0]", &["multicast", "IPv4 unicast"]);
        let e = err(&with(r#"["198.51.100.200/33"]"#));
        assert_error(&e, line, "bond[0].vips[0]", &["prefix length \"33\" is not 1..=32"]);
        let e = err(&with(r#"["198.51.100.200", "198.51.100.200/24"]"#));
        assert_error(&e, line, "bond[0].vips[1]", &["listed twice (also vips[0])"]);
        let e = err(&with("[]"));
        assert_error(&e, line, "bond[0].vips", &["found an empty array"]);
        let e = err(&BOND.replace("vips = [\"198.51.100.200/24\", \"198.51.100.201\"]\n", ""));
        assert_error(&e, line_of(BOND, "[[bond]]"), "bond[0].vips", &["missing required key `vips`"]);

        // A VIP of a group (on any interface) or of another bond.
        let text = format!("{BASE}\n{}", with(r#"["198.51.100.100"]"#));
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "vips = [\"198.51.100.100\"]"),
            "bond[0].vips[0]",
            &["198.51.100.100 is already a VIP of group[0] \"web\" (line 6)", "no [[group]] and no other [[bond]]"],
        );
        let second = "\n[[interface]]\nname = \"eth4\"\n\n[[interface]]\nname = \"eth5\"\n\n[[bond]]\nname = \"wan\"\nmode = \"tlb\"\ninterfaces = [\"eth4\", \"eth5\"]\nvips = [\"198.51.100.201/24\"]\n";
        let text = format!("{BOND}{second}");
        let e = err(&text);
        assert_error(
            &e,
            line_of(&text, "vips = [\"198.51.100.201/24\"]"),
            "bond[1].vips[0]",
            &["already a VIP of bond[0] \"lan\" (line 9)"],
        );
    }

    #[test]
    fn the_examples_commented_bond_parses_when_uncommented() {
        let example = include_str!("../../examples/vipdrift.toml");
        let start = example.find("# [[interface]]\n# name = \"eth2\"").expect("the bond example");
        let block: Vec<&str> = example[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
            .collect();
        let config = ok(&format!("{example}\n{}\n", block.join("\n")));
        let [lan] = config.bonds.as_slice() else { panic!("{:?}", config.bonds) };
        assert_eq!(
            (lan.name.as_str(), lan.mode, lan.interfaces.as_slice()),
            ("lan", BondMode::Alb, &["eth2".to_owned(), "eth3".to_owned()][..])
        );
        assert_eq!(lan.vips, vec![("198.51.100.200".parse().unwrap(), 24)]);
        assert_eq!((lan.clients, lan.rebalance_burst, lan.announce_every), (4096, 8, None));
    }

    #[test]
    fn a_file_without_groups_is_rejected() {
        let text = &BASE[..BASE.find("[[group]]").unwrap()];
        let e = err(text);
        assert_error(&e, 0, "group", &["no [[group]] or [[bond]]", "at least one"]);
        assert!(e.to_string().starts_with("t.toml: group: no [[group]]"), "{e}");
        assert_eq!(err("").key, "group");
    }

    #[test]
    fn interfaces_are_checked() {
        let text = format!("{BASE}\n[[interface]]\nname = \"eth0\"\n");
        let e = err(&text);
        assert_error(
            &e,
            text.lines().collect::<Vec<_>>().iter().rposition(|l| *l == "name = \"eth0\"").unwrap() + 1,
            "interface[1].name",
            &["already the name of interface[0]"],
        );
        let with = |extra: &str| BASE.replace("name = \"eth0\"", &format!("name = \"eth0\"\n{extra}"));
        let e = err(&with("queues = [0, 1, 1]"));
        assert_error(&e, 3, "interface[0].queues[2]", &["queue 1 is listed twice"]);
        let e = err(&with("queues = [0, 1]\ncores = [1]"));
        assert_error(&e, 4, "interface[0].cores", &["1 core listed for 2 queues", "one core per queue"]);
        let e = err(&with("queues = []"));
        assert_error(&e, 3, "interface[0].queues", &["empty array"]);
        let e = err(&with("bind = \"zerocopy\""));
        assert_error(&e, 3, "interface[0].bind", &["\"zerocopy\" is not a valid bind mode", "\"zero-copy\""]);
        let e = err(&with("link_check_ms = 0"));
        assert_error(&e, 3, "interface[0].link_check_ms", &["0 is out of range", "1..=1000"]);
        let e = err(&with("idle = \"nap\""));
        assert_error(&e, 3, "interface[0].idle", &["\"spin\", \"yield\", \"sleep\""]);
        let e = err(&BASE.replace("198.51.100.2/24", "198.51.100.2"));
        assert_error(&e, 3, "interface[0].address", &["has no prefix length", "198.51.100.2/24"]);
        let e = err(&BASE.replace("\"eth0\"\naddress", "\"eth 0\"\naddress"));
        assert_error(&e, 2, "interface[0].name", &["not a valid interface name"]);
    }

    #[test]
    fn a_duplicate_key_and_a_read_error_are_reported() {
        let text = BASE.replace("vrid = 51", "vrid = 51\nvrid = 52");
        let e = err(&text);
        assert_error(&e, line_of(&text, "vrid = 52"), "group[0].vrid", &["duplicate key `vrid`"]);
        let e = load(Path::new("/nonexistent/vipdrift.toml")).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (0, ""));
        assert!(e.to_string().starts_with("/nonexistent/vipdrift.toml: cannot read"), "{e}");
    }

    #[test]
    fn admin_and_metrics_default_and_are_checked() {
        let plain = ok(BASE);
        assert_eq!(plain.admin_socket, PathBuf::from(crate::admin::DEFAULT_SOCKET));
        assert_eq!(plain.metrics, None, "no [metrics] table, no endpoint");

        let text = format!("{BASE}\n[admin]\nsocket = \"/tmp/vd/a.sock\"\n\n[metrics]\n");
        let c = ok(&text);
        assert_eq!(c.admin_socket, PathBuf::from("/tmp/vd/a.sock"));
        assert_eq!(c.metrics, Some(DEFAULT_METRICS_LISTEN.parse().unwrap()), "loopback by default");
        let c = ok(&format!("{BASE}\n[metrics]\nlisten = \"[::1]:9100\"\n"));
        assert_eq!(c.metrics, Some("[::1]:9100".parse().unwrap()));

        let text = format!("{BASE}\n[admin]\nsocket = \"vipdrift.sock\"\n");
        assert_error(&err(&text), line_of(&text, "socket ="), "admin.socket", &["not an absolute", "/run/vipdrift"]);
        let text = format!("{BASE}\n[metrics]\nlisten = \"localhost\"\n");
        assert_error(&err(&text), line_of(&text, "listen ="), "metrics.listen", &["\"localhost\"", "127.0.0.1:9650"]);
        let text = format!("{BASE}\n[metrics]\nport = 1\n");
        let e = err(&text);
        assert!(e.message.contains("unknown key `port`") && e.key == "metrics.port", "{e}");
    }
}
