//! The whole file: each table checked in order, the cross-table rules
//! (names, interfaces, VRIDs and VIPs each used once), `[admin]` and
//! `[metrics]`.

use super::check::{Checker, Owner, Taken};
use super::keys::{admin_keys, metrics_keys, RawAdmin, RawFile, RawMetrics};
use super::{bond, group, interface, Checked, Config, ConfigError, InterfaceConfig, DEFAULT_METRICS_LISTEN};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use toml::Spanned;
use vipdrift_wire::Family;

const EXPECT_SOCKET: &str = admin_keys::socket.expect;
const EXPECT_LISTEN: &str = metrics_keys::listen.expect;

impl Checker<'_> {
    pub(super) fn check(&mut self, raw: &RawFile) -> Checked<Config> {
        let mut interfaces: Vec<InterfaceConfig> = Vec::new();
        for (i, table) in raw.interface.iter().enumerate() {
            let interface = interface::check(self, i, table)?;
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
            let seen = group::Seen { names: &mut names, vrids: &mut vrids, vips: &mut vips };
            let resolved = group::check(self, g, table, &interfaces, seen)?;
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
            bonds.push(bond::check(self, b, table, &interfaces, &names, &mut taken)?);
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
}
