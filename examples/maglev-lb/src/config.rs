//! The load balancer's configuration: a vipdrift configuration (its
//! `[[interface]]`, `[[group]]`, `[admin]`, `[metrics]` tables, checked by
//! vipdrift) plus the load balancer's own tables, checked here with errors
//! in the same `FILE:LINE: key: what is wrong; expected …` form:
//!
//! ```toml
//! [maglev]
//! table_size = 65537     # a prime; default 65537
//! flows = 65536          # flows each worker remembers; default 65536
//!
//! [[backend]]
//! address = "198.51.100.21"
//! mac = "02:00:00:00:00:21"
//! weight = 1             # default 1; 0 drains it
//! ```

use crate::balancer::DEFAULT_FLOWS;
use crate::maglev::{is_prime, DEFAULT_SIZE, MAX_BACKENDS};
use crate::pool::Backend;
use std::net::IpAddr;
use std::path::Path;
use vipdrift_control::config::{self, Config, ConfigError, ExtraTable};
use vipdrift_wire::MacAddr;

/// What `maglev-lb` runs.
#[derive(Clone, Debug)]
pub struct LbConfig {
    /// The daemon's part.
    pub daemon: Config,
    /// The backends, in file order.
    pub backends: Vec<Backend>,
    /// The Maglev table's size (a prime).
    pub table_size: usize,
    /// Flows each worker remembers.
    pub flows: usize,
}

const EXPECT_ADDRESS: &str = "the backend's unicast address, like \"198.51.100.21\"";
const EXPECT_MAC: &str = "the backend's unicast MAC, six hex octets separated by ':', like \"02:00:00:00:00:21\"";
const EXPECT_WEIGHT: &str = "an integer 0..=1000 (0: drained, no new flows)";
const EXPECT_TABLE_SIZE: &str = "a prime 7..=655373 larger than the number of backends, like 65537";
const EXPECT_FLOWS: &str = "an integer 16..=16777216 (flows each worker remembers)";

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<LbConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        key: String::new(),
        message: format!("cannot read the configuration: {e}; expected a readable UTF-8 TOML file"),
    })?;
    parse(&text, &file)
}

/// Checks a configuration's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<LbConfig, ConfigError> {
    let (daemon, extra) = config::parse_extended(text, file, &["backend", "maglev"])?;
    let mut lb = LbConfig { daemon, backends: Vec::new(), table_size: DEFAULT_SIZE, flows: DEFAULT_FLOWS };
    for table in extra.iter().filter(|t| t.name() == "maglev") {
        table.only_keys(&["table_size", "flows"])?;
        if let Some(size) = table.int("table_size", 7..=655_373, EXPECT_TABLE_SIZE)? {
            if !is_prime(size as usize) {
                return Err(table.error("table_size", format!("{size} is not a prime; expected {EXPECT_TABLE_SIZE}")));
            }
            lb.table_size = size as usize;
        }
        if let Some(flows) = table.int("flows", 16..=16_777_216, EXPECT_FLOWS)? {
            lb.flows = flows as usize;
        }
    }
    for table in extra.iter().filter(|t| t.name() == "backend") {
        lb.backends.push(backend(table, &lb.backends)?);
    }
    let Some(first) = extra.iter().find(|t| t.name() == "maglev").or(extra.first()) else {
        return Err(ConfigError {
            file: file.to_owned(),
            line: 0,
            key: "backend".into(),
            message: "no [[backend]] table; expected at least one, like [[backend]] address = \"198.51.100.21\" \
                      mac = \"02:00:00:00:00:21\""
                .into(),
        });
    };
    if lb.backends.is_empty() {
        return Err(first.error("backend", "no [[backend]] table; expected at least one".to_owned()));
    }
    if lb.backends.len() > MAX_BACKENDS || lb.backends.len() >= lb.table_size {
        let n = lb.backends.len();
        return Err(first.error("backend", format!("{n} backends do not fit a table of {}", lb.table_size)));
    }
    Ok(lb)
}

fn backend(table: &ExtraTable, earlier: &[Backend]) -> Result<Backend, ConfigError> {
    table.only_keys(&["address", "mac", "weight"])?;
    let address = table.required_string("address", EXPECT_ADDRESS)?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| table.error("address", format!("{address:?} is not an IP address; expected {EXPECT_ADDRESS}")))?;
    if address.is_unspecified() || address.is_multicast() || address.is_loopback() {
        return Err(table.error("address", format!("{address} is not a unicast address; expected {EXPECT_ADDRESS}")));
    }
    if earlier.iter().any(|b| b.address == address) {
        return Err(table.error("address", format!("{address} is another backend's too; expected one per backend")));
    }
    let mac_text = table.required_string("mac", EXPECT_MAC)?;
    let mac: MacAddr = mac_text
        .parse()
        .map_err(|_| table.error("mac", format!("{mac_text:?} is not a MAC; expected {EXPECT_MAC}")))?;
    if mac.is_multicast() || mac.0 == [0; 6] {
        return Err(table.error("mac", format!("{mac} is not a unicast MAC; expected {EXPECT_MAC}")));
    }
    let weight = table.int("weight", 0..=1000, EXPECT_WEIGHT)?.unwrap_or(1) as u32;
    Ok(Backend { address, mac, weight })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[interface]]
name = "lb0"
address = "198.51.100.2/24"

[[group]]
name = "web"
interface = "lb0"
vrid = 51
vips = ["198.51.100.100/24"]
"#;

    fn err(extra: &str) -> String {
        parse(&format!("{BASE}{extra}"), "lb.toml").unwrap_err().to_string()
    }

    #[test]
    fn backends_and_the_table_are_read_with_their_defaults() {
        let text = format!(
            "{BASE}\n[maglev]\nflows = 1024\n\n[[backend]]\naddress = \"198.51.100.21\"\nmac = \"02:00:00:00:00:21\"\n\n\
             [[backend]]\naddress = \"198.51.100.22\"\nmac = \"02:00:00:00:00:22\"\nweight = 3\n"
        );
        let lb = parse(&text, "lb.toml").unwrap();
        assert_eq!((lb.table_size, lb.flows), (DEFAULT_SIZE, 1024));
        assert_eq!(lb.backends.iter().map(|b| b.weight).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(lb.daemon.groups[0].name, "web");
    }

    #[test]
    fn a_bad_backend_is_named_with_its_line_and_key() {
        let line = BASE.lines().count() + 4;
        let e = err("\n[[backend]]\naddress = \"198.51.100.21\"\nmac = \"02:00:00:00:00\"\n");
        assert_eq!(
            e,
            format!("lb.toml:{line}: backend[0].mac: \"02:00:00:00:00\" is not a MAC; expected {EXPECT_MAC}")
        );
        let e = err("\n[[backend]]\naddress = \"198.51.100.21\"\nmac = \"02:00:00:00:00:21\"\nwieght = 2\n");
        assert!(
            e.contains("backend[0].wieght: unknown key `wieght`") && e.contains("`address`, `mac`, `weight`"),
            "{e}"
        );
        let e = err("\n[[backend]]\nmac = \"02:00:00:00:00:21\"\n");
        assert!(e.contains("backend[0].address: missing required key `address`"), "{e}");
        let e = err(
            "\n[maglev]\ntable_size = 65536\n\n[[backend]]\naddress = \"198.51.100.21\"\nmac = \"02:00:00:00:00:21\"\n",
        );
        assert!(e.contains("maglev.table_size: 65536 is not a prime"), "{e}");
        let two = "\n[[backend]]\naddress = \"198.51.100.21\"\nmac = \"02:00:00:00:00:21\"\n";
        assert!(err(&format!("{two}{two}")).contains("backend[1].address: 198.51.100.21 is another backend's too"));
        assert!(err("").contains("no [[backend]] table"));
    }

    #[test]
    fn the_daemons_own_errors_keep_their_form() {
        let e = parse(&BASE.replace("vrid = 51", "vrid = 300"), "lb.toml").unwrap_err().to_string();
        assert!(e.starts_with("lb.toml:9: group[0].vrid: 300 is out of range"), "{e}");
    }
}
