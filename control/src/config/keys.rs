//! Every key of the file, once: the tables as serde reads them and, beside
//! each key, what it expects, its range and its default. The checker takes
//! its messages, ranges and defaults from here, so a new key is one line in
//! its table below plus the line that uses its value.

use serde::Deserialize;
use std::ops::RangeInclusive;
use toml::{Spanned, Value};
use vipdrift_engine::BindMode;
use vipdrift_vmac::{AddressMode, BondMode};
use vipdrift_vrrp::advert::ChecksumForm;
use vipdrift_vrrp::spec::Delivery;

use super::Idle;

/// A leaf value as serde leaves it: the checker reports wrong types itself.
pub(super) type Field = Option<Spanned<Value>>;
/// An array of leaves.
pub(super) type List = Option<Spanned<Vec<Spanned<Value>>>>;

/// What a key takes when it is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IfAbsent {
    /// Required, or absent means "none" (the checker says which).
    None,
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// One of the key's named choices.
    Choice(&'static str),
}

/// One key: its name, what a valid value looks like (the end of every
/// message about it; for a key naming a choice, what the choice is called,
/// like "bind mode", the message listing the choices), the integer range
/// (of each element, for an array) and the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) name: &'static str,
    pub(super) expect: &'static str,
    pub(super) range: RangeInclusive<i64>,
    pub(super) default: IfAbsent,
}

impl Key {
    const BLANK: Key = Key { name: "", expect: "", range: 0..=0, default: IfAbsent::None };

    /// The default integer (0 for a key without one).
    pub(super) fn default_int(&self) -> i64 {
        match self.default {
            IfAbsent::Int(n) => n,
            _ => 0,
        }
    }
}

/// Declares one table: the serde struct (unknown keys refused) and a module
/// of the same keys' descriptions, `ALL` listing them in file order.
macro_rules! table {
    ($(#[$doc:meta])* $raw:ident, $keys:ident { $($(#[$attr:meta])* $field:ident: $ty:ty = { $($spec:tt)* },)* }) => {
        $(#[$doc])*
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $raw {
            $($(#[$attr])* pub(super) $field: $ty,)*
        }

        #[allow(non_upper_case_globals, dead_code)]
        pub(super) mod $keys {
            use super::*;
            $(#[allow(clippy::needless_update)]
            pub(in super::super) const $field: Key = Key { name: stringify!($field), $($spec)* ..Key::BLANK };)*
            /// Every key of the table, in the order above.
            pub(in super::super) const ALL: &[Key] = &[$($field),*];
        }
    };
}

table! {
    /// The whole file.
    RawFile, file_keys {
        #[serde(default)]
        interface: Vec<Spanned<RawInterface>> = { expect: "an array of tables: write each as [[interface]] (double brackets)", },
        #[serde(default)]
        group: Vec<Spanned<RawGroup>> = { expect: "an array of tables: write each as [[group]] (double brackets)", },
        #[serde(default)]
        bond: Vec<Spanned<RawBond>> = { expect: "an array of tables: write each as [[bond]] (double brackets)", },
        admin: Option<Spanned<RawAdmin>> = { expect: "an [admin] table with `socket`", },
        metrics: Option<Spanned<RawMetrics>> = { expect: "a [metrics] table with `listen`", },
    }
}

table! {
    /// `[admin]`.
    RawAdmin, admin_keys {
        socket: Field = { expect: "an absolute path for the admin socket, like \"/run/vipdrift/vipdrift.sock\"", },
    }
}

table! {
    /// `[metrics]`.
    RawMetrics, metrics_keys {
        listen: Field = { expect: "an IP address and port, like \"127.0.0.1:9650\" or \"[::1]:9650\"", },
    }
}

table! {
    /// `[[interface]]`.
    RawInterface, interface_keys {
        name: Field = { expect: "an interface name of 1..=15 characters without '/', ':' or whitespace, like \"eth0\"", },
        address: Field = { expect: "this node's IPv4 address with its prefix length, like \"198.51.100.2/24\"", },
        address6: Field = { expect: "this node's IPv6 link-local address (in fe80::/10), like \"fe80::2\" or \"fe80::2/64\"", },
        queues: List = { expect: "a non-empty array of NIC queue numbers, like [0, 1]", range: 0..=4_294_967_295, },
        cores: List = { expect: "an array of CPU numbers, one per queue, like [1, 2], or [] (not pinned)", range: 0..=65535, },
        bind: Field = { expect: "bind mode", default: IfAbsent::Choice("auto"), },
        whole_nic: Field = { expect: EXPECT_BOOL, default: IfAbsent::Bool(false), },
        link_check_ms: Field = { expect: "an integer 1..=1000 (milliseconds)", range: 1..=1000, default: IfAbsent::Int(5), },
        idle: Field = { expect: "idle policy", default: IfAbsent::Choice("spin"), },
        lease_ms: Field = { expect: "an integer 1..=60000 (milliseconds; absent: 3 x link_check_ms)", range: 1..=60_000, },
    }
}

table! {
    /// `[[group]]`.
    RawGroup, group_keys {
        name: Field = { expect: "1..=32 characters of A-Z, a-z, 0-9, '_', '.' and '-', like \"web\"", },
        interface: Field = { expect: EXPECT_INTERFACE, },
        vrid: Field = { expect: "an integer 1..=255", range: 1..=255, },
        priority: Field = { expect: "an integer 1..=255 (255: the address owner)", range: 1..=255, default: IfAbsent::Int(100), },
        advert_interval_ms: Field = { expect: "a multiple of 10 in 10..=40950 (milliseconds; sent in centiseconds)", range: 10..=40950, default: IfAbsent::Int(1000), },
        preempt: Field = { expect: EXPECT_BOOL, default: IfAbsent::Bool(true), },
        preempt_delay_ms: Field = { expect: "an integer 0..=3600000 (milliseconds)", range: 0..=3_600_000, default: IfAbsent::Int(0), },
        mode: Field = { expect: "group mode", default: IfAbsent::Choice("vmac"), },
        vips: List = { expect: "a non-empty array of \"ADDRESS/PREFIX\" strings, like [\"198.51.100.100/24\"]", },
        unicast_peers: Option<Spanned<Vec<Spanned<RawPeer>>>> = { expect: "an array of tables like [{ address = \"198.51.100.3\", mac = \"02:00:00:00:00:03\" }], or [] (multicast)", },
        checksum: Field = { expect: "checksum form", default: IfAbsent::Choice("pseudo_header"), },
        garp: Option<Spanned<RawGarp>> = { expect: "a table like { count = 5, interval_ms = 10, second_burst_ms = 1000, refresh_ms = 0 }", },
        notify: Field = { expect: "an absolute program path, like \"/usr/local/bin/on-transition\"", },
        deliver: Field = { expect: "delivery", },
    }
}

table! {
    /// One of a group's `unicast_peers`.
    RawPeer, peer_keys {
        address: Field = { expect: "the peer's unicast address without prefix, like \"198.51.100.3\" (IPv4) or \"fe80::3\" (IPv6 link-local)", },
        mac: Field = { expect: "the peer's unicast MAC, six hex octets separated by ':', like \"02:00:00:00:00:03\"", },
    }
}

table! {
    /// A group's `garp` table.
    RawGarp, garp_keys {
        count: Field = { expect: "an integer 1..=100", range: 1..=100, default: IfAbsent::Int(5), },
        interval_ms: Field = { expect: "an integer 1..=10000 (milliseconds)", range: 1..=10_000, default: IfAbsent::Int(10), },
        second_burst_ms: Field = { expect: "an integer 0..=3600000 (milliseconds; 0: no second burst)", range: 0..=3_600_000, default: IfAbsent::Int(1000), },
        refresh_ms: Field = { expect: "an integer 0..=86400000 (milliseconds; 0: no refresh)", range: 0..=86_400_000, default: IfAbsent::Int(0), },
    }
}

table! {
    /// `[[bond]]`.
    RawBond, bond_keys {
        name: Field = { expect: "1..=32 characters of A-Z, a-z, 0-9, '_', '.' and '-', like \"lan\"", },
        mode: Field = { expect: "bond mode", default: IfAbsent::Choice("tlb"), },
        interfaces: List = { expect: "an array of 2..=8 names of [[interface]]s, each once, the primary first, like [\"eth2\", \"eth3\"]", },
        vips: List = { expect: "a non-empty array of IPv4 \"ADDRESS/PREFIX\" or \"ADDRESS\" strings, like [\"198.51.100.200/24\"]", },
        clients: Field = { expect: "an integer 1..=1000000 (clients remembered)", range: 1..=1_000_000, default: IfAbsent::Int(4096), },
        client_timeout_s: Field = { expect: "an integer 1..=86400 (seconds)", range: 1..=86_400, default: IfAbsent::Int(300), },
        rebalance_ms: Field = { expect: "an integer 1..=60000 (milliseconds)", range: 1..=60_000, default: IfAbsent::Int(100), },
        rebalance_burst: Field = { expect: "an integer 1..=1024 (clients per step)", range: 1..=1024, default: IfAbsent::Int(8), },
        announce_every_ms: Field = { expect: "0 (no periodic announcement) or an integer 100..=3600000 (milliseconds)", range: 0..=3_600_000, default: IfAbsent::Int(0), },
        deliver: Field = { expect: "delivery", default: IfAbsent::Choice("engine"), },
    }
}

/// What a boolean key expects.
pub(super) const EXPECT_BOOL: &str = "true or false";
/// What a key naming an `[[interface]]` expects.
pub(super) const EXPECT_INTERFACE: &str = "the name of an [[interface]], like \"eth0\"";
/// What one queue of `queues` expects.
pub(super) const EXPECT_QUEUE: &str = "a NIC queue number 0..=4294967295";
/// What one core of `cores` expects.
pub(super) const EXPECT_CORE: &str = "a CPU number 0..=65535";
/// What one of a group's `vips` expects.
pub(super) const EXPECT_VIP: &str =
    "a unicast address with its prefix length, like \"198.51.100.100/24\" or \"2001:db8::100/64\"";
/// What one of `unicast_peers` expects.
pub(super) const EXPECT_PEER: &str = "a table like { address = \"198.51.100.3\", mac = \"02:00:00:00:00:03\" }";
/// What one of a bond's `vips` expects.
pub(super) const EXPECT_BOND_VIP: &str =
    "an IPv4 unicast address, with its prefix length or without (/32), like \"198.51.100.200/24\" or \"198.51.100.200\"";

/// The named choices of the keys that take one, by key.
pub(super) const BIND_MODES: &[(&str, BindMode)] =
    &[("auto", BindMode::Auto), ("zero-copy", BindMode::ZeroCopy), ("copy", BindMode::Copy), ("skb", BindMode::Skb)];
pub(super) const IDLE_MODES: &[(&str, Idle)] = &[("spin", Idle::Spin), ("yield", Idle::Yield), ("sleep", Idle::Sleep)];
pub(super) const GROUP_MODES: &[(&str, AddressMode)] = &[("vmac", AddressMode::Vmac), ("own_mac", AddressMode::OwnMac)];
pub(super) const DELIVERIES: &[(&str, Delivery)] = &[("kernel", Delivery::Kernel), ("engine", Delivery::Engine)];
pub(super) const BOND_MODES: &[(&str, BondMode)] = &[("tlb", BondMode::Tlb), ("alb", BondMode::Alb)];
pub(super) const CHECKSUM_FORMS: &[(&str, ChecksumForm)] =
    &[("pseudo_header", ChecksumForm::PseudoHeader), ("message_only", ChecksumForm::MessageOnly)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_default_is_one_of_its_choices_and_every_integer_default_in_range() {
        let choices: [(&Key, Vec<&str>); 6] = [
            (&interface_keys::bind, BIND_MODES.iter().map(|c| c.0).collect()),
            (&interface_keys::idle, IDLE_MODES.iter().map(|c| c.0).collect()),
            (&group_keys::mode, GROUP_MODES.iter().map(|c| c.0).collect()),
            (&group_keys::checksum, CHECKSUM_FORMS.iter().map(|c| c.0).collect()),
            (&bond_keys::mode, BOND_MODES.iter().map(|c| c.0).collect()),
            (&bond_keys::deliver, DELIVERIES.iter().map(|c| c.0).collect()),
        ];
        for (key, names) in choices {
            let IfAbsent::Choice(default) = key.default else { panic!("{} has no default choice", key.name) };
            assert!(names.contains(&default), "{}: {default} is not among {names:?}", key.name);
        }
        let tables = [interface_keys::ALL, group_keys::ALL, garp_keys::ALL, bond_keys::ALL];
        for key in tables.into_iter().flatten() {
            if let IfAbsent::Int(n) = key.default {
                assert!(key.range.contains(&n), "{}: default {n} outside {:?}", key.name, key.range);
            }
        }
    }
}
