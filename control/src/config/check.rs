//! The typed leaves every table's checks are made of (strings, integers in
//! range, booleans, choices, interface names, addresses), driven by the key
//! descriptions in `keys`, and what the tables record of each other.

use super::keys::{Field, IfAbsent, Key, EXPECT_BOOL};
use super::locate::{describe, one_of, Cx};
use super::{Checked, ConfigError, InterfaceConfig};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Range, RangeInclusive};
use std::time::Duration;
use toml::{Spanned, Value};

/// The group or bond that first used a VRID, VIP or interface, for duplicate messages.
pub(super) struct Owner {
    /// `"group"` or `"bond"`.
    pub(super) kind: &'static str,
    /// Index of its table among the tables of its kind.
    pub(super) index: usize,
    pub(super) name: String,
    pub(super) line: usize,
}

impl Owner {
    pub(super) fn describe(&self) -> String {
        format!("{}[{}] {:?} (line {})", self.kind, self.index, self.name, self.line)
    }
}

/// What the groups and the bonds checked so far take, for a bond to be checked against.
#[derive(Default)]
pub(super) struct Taken {
    /// Bond name → bond index.
    pub(super) bond_names: HashMap<String, usize>,
    /// Interface → the bond it is in, or the first group on it.
    pub(super) interfaces: HashMap<String, Owner>,
    /// IPv4 VIP → the bond it is in, or the first group holding it.
    pub(super) vips: HashMap<Ipv4Addr, Owner>,
}

pub(super) struct Checker<'a> {
    pub(super) cx: &'a Cx<'a>,
    /// Line of each `[[interface]]`, by index.
    pub(super) interface_lines: Vec<usize>,
}

impl Checker<'_> {
    // --- typed leaves, and the same driven by a key's description -----------

    /// The value of a required key (a leaf, an array or a table).
    pub(super) fn required<'v, T>(
        &self,
        field: &'v Option<Spanned<T>>,
        table: Range<usize>,
        key: &str,
        expect: &str,
    ) -> Checked<&'v Spanned<T>> {
        field.as_ref().ok_or_else(|| {
            let name = key.rsplit('.').next().unwrap_or(key);
            self.cx.err(table, key, format!("missing required key `{name}`; expected {expect}"))
        })
    }

    pub(super) fn wrong_type(&self, v: &Spanned<Value>, key: &str, expect: &str) -> ConfigError {
        self.cx.err(v.span(), key, format!("found {}; expected {expect}", describe(v.get_ref())))
    }

    /// The required name at `key` (of the table spanning `table`), which
    /// `valid` must accept; `what` says what kind of name it is in the error
    /// ("group name"). Returns the value too, for later errors about it.
    pub(super) fn name<'v>(
        &self,
        field: &'v Field,
        table: Range<usize>,
        key: &str,
        expect: &str,
        what: &str,
        valid: fn(&str) -> bool,
    ) -> Checked<(&'v Spanned<Value>, &'v str)> {
        let v = self.required(field, table, key, expect)?;
        let name = self.string(v, key, expect)?;
        if !valid(name) {
            return Err(self.cx.err(v.span(), key, format!("{name:?} is not a valid {what}; expected {expect}")));
        }
        Ok((v, name))
    }

    pub(super) fn string<'v>(&self, v: &'v Spanned<Value>, key: &str, expect: &str) -> Checked<&'v str> {
        v.get_ref().as_str().ok_or_else(|| self.wrong_type(v, key, expect))
    }

    pub(super) fn int(&self, v: &Spanned<Value>, key: &str, range: RangeInclusive<i64>, expect: &str) -> Checked<i64> {
        let n = v.get_ref().as_integer().ok_or_else(|| self.wrong_type(v, key, expect))?;
        if !range.contains(&n) {
            return Err(self.cx.err(v.span(), key, format!("{n} is out of range; expected {expect}")));
        }
        Ok(n)
    }

    pub(super) fn opt_int(
        &self,
        v: &Field,
        key: &str,
        range: RangeInclusive<i64>,
        expect: &str,
        default: i64,
    ) -> Checked<i64> {
        v.as_ref().map_or(Ok(default), |v| self.int(v, key, range, expect))
    }

    pub(super) fn opt_bool(&self, v: &Field, key: &str, default: bool) -> Checked<bool> {
        match v {
            None => Ok(default),
            Some(v) => v.get_ref().as_bool().ok_or_else(|| self.wrong_type(v, key, EXPECT_BOOL)),
        }
    }

    pub(super) fn opt_choice<T: Copy>(
        &self,
        v: &Field,
        key: &str,
        what: &str,
        options: &[(&str, T)],
        default: T,
    ) -> Checked<T> {
        let Some(v) = v else { return Ok(default) };
        let expect = one_of(options);
        let s = self.string(v, key, &expect)?;
        options
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, value)| value)
            .ok_or_else(|| self.cx.err(v.span(), key, format!("{s:?} is not a valid {what}; expected {expect}")))
    }

    /// The integer of `key` in the table at `table` (like `group[0]`):
    /// checked against the key's range, its default when absent.
    pub(super) fn int_key(&self, v: &Field, table: &str, key: &Key) -> Checked<i64> {
        self.opt_int(v, &format!("{table}.{}", key.name), key.range.clone(), key.expect, key.default_int())
    }

    /// The boolean of `key` in the table at `table`, its default when absent.
    pub(super) fn bool_key(&self, v: &Field, table: &str, key: &Key) -> Checked<bool> {
        self.opt_bool(v, &format!("{table}.{}", key.name), key.default == IfAbsent::Bool(true))
    }

    /// The choice of `key` among `options` in the table at `table`, its
    /// default when absent (`keys` checks every default is an option).
    pub(super) fn choice_key<T: Copy>(&self, v: &Field, table: &str, key: &Key, options: &[(&str, T)]) -> Checked<T> {
        let named = match key.default {
            IfAbsent::Choice(name) => options.iter().find(|(option, _)| *option == name),
            _ => None,
        };
        let default = named.or(options.first()).map(|&(_, value)| value);
        let Some(default) = default else { return Err(self.cx.err(0..0, key.name, "a key with no choices")) };
        self.opt_choice(v, &format!("{table}.{}", key.name), key.expect, options, default)
    }

    pub(super) fn millis(n: i64) -> Duration {
        Duration::from_millis(n.unsigned_abs())
    }

    /// The index of the `[[interface]]` named `name`, the value `v` of `key`.
    pub(super) fn interface_index(
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
}

/// Parses `ADDRESS` or `ADDRESS/PREFIX`; the error says what is wrong with `s`.
pub(super) fn parse_prefixed(s: &str) -> Result<(IpAddr, Option<u8>), String> {
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
pub(super) fn not_unicast(ip: IpAddr) -> Option<&'static str> {
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

pub(super) fn is_link_local6(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Linux's `dev_valid_name`.
pub(super) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

pub(super) fn valid_group_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}
