//! Where things are in the file: every key and value of the parsed
//! document with its span and key path, to name the line and key of a toml
//! or serde error, and the words messages are made of.

use super::keys::{bond_keys, file_keys, group_keys, interface_keys, EXPECT_PEER};
use super::ConfigError;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Value};

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
        (Some("interface"), false) => file_keys::interface.expect,
        (Some("group"), false) => file_keys::group.expect,
        (Some("bond"), false) => file_keys::bond.expect,
        (Some("interface"), true) => "an [[interface]] table",
        (Some("group"), true) => "a [[group]] table",
        (Some("bond"), true) => "a [[bond]] table",
        (Some("interfaces"), _) => bond_keys::interfaces.expect,
        (Some("vips"), _) if in_bond => bond_keys::vips.expect,
        (Some("garp"), _) => group_keys::garp.expect,
        (Some("admin"), _) => file_keys::admin.expect,
        (Some("metrics"), _) => file_keys::metrics.expect,
        (Some("unicast_peers"), false) => group_keys::unicast_peers.expect,
        (Some("unicast_peers"), true) => EXPECT_PEER,
        (Some("vips"), _) => group_keys::vips.expect,
        (Some("queues"), _) => interface_keys::queues.expect,
        (Some("cores"), _) => interface_keys::cores.expect,
        _ => "a value of another type",
    }
}

#[derive(Clone, Debug)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

pub(super) fn path_string(path: &[Seg]) -> String {
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

pub(super) struct Spot {
    span: Range<usize>,
    /// The key path of the key or value at `span`.
    path: Vec<Seg>,
    /// The table that keys following `span` belong to.
    table: Vec<Seg>,
}

pub(super) fn collect_spots(table: &DeTable<'_>, path: &mut Vec<Seg>, out: &mut Vec<Spot>) {
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
pub(super) struct Cx<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    pub(super) spots: Vec<Spot>,
}

impl Cx<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub(super) fn err(&self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
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
    pub(super) fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
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

pub(super) fn describe(v: &Value) -> String {
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

pub(super) fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

pub(super) fn one_of<T>(options: &[(&str, T)]) -> String {
    let names: Vec<String> = options.iter().map(|(name, _)| format!("{name:?}")).collect();
    format!("one of {}", names.join(", "))
}
