//! The example configuration at the repository root parses, and says what it documents.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use vipdrift_control::config::{self, Family, Idle};
use vipdrift_engine::BindMode;
use vipdrift_vmac::AddressMode;
use vipdrift_vrrp::advert::ChecksumForm;
use vipdrift_wire::MacAddr;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/vipdrift.toml")
}

#[test]
fn the_example_configuration_parses() {
    let config = config::load(&example()).unwrap_or_else(|e| panic!("{e}"));

    let names: Vec<&str> = config.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["eth0", "eth1"]);
    let eth0 = &config.interfaces[0];
    assert_eq!((eth0.queues.as_slice(), eth0.cores.as_slice()), (&[0, 1][..], &[2, 3][..]));
    assert_eq!(
        (eth0.bind, eth0.whole_nic, eth0.link_check, eth0.idle),
        (BindMode::Auto, false, Duration::from_millis(5), Idle::Spin)
    );

    // "web" has VIPs of both families: two virtual routers, IPv4 first.
    let groups: Vec<(&str, Family, u8, usize)> =
        config.groups.iter().map(|g| (g.name.as_str(), g.family, g.vrid, g.vips.len())).collect();
    assert_eq!(groups, [("web", Family::Ipv4, 51, 2), ("web", Family::Ipv6, 51, 1), ("db", Family::Ipv4, 52, 1)]);
    for group in &config.groups {
        let primary = config.primary(group).expect("every group has its source address");
        assert_eq!(Family::of(primary), group.family);
        let built = group.group_config(primary, MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(built.vips, group.vips.iter().map(|&(ip, _)| ip).collect::<Vec<IpAddr>>());
    }
    let db = &config.groups[2];
    assert_eq!(db.unicast_peers.len(), 2);
    assert_eq!((db.mode, db.preempt, db.checksum_form), (AddressMode::OwnMac, false, ChecksumForm::MessageOnly));
    assert_eq!(db.garp.refresh, Some(Duration::from_secs(60)));
}

#[test]
fn the_example_configuration_uses_documentation_addresses_only() {
    let text = std::fs::read_to_string(example()).unwrap();
    let is_part = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
    let mut checked = 0;
    let mut rest = text.as_str();
    while let Some(start) = rest.find(is_part) {
        let after = &rest[start..];
        let end = after.find(|c: char| !is_part(c)).unwrap_or(after.len());
        let section = rest[..start].ends_with('§'); // "RFC 9568 §5.1.2.1" is not an address
        let word = after[..end].trim_matches(['.', ':']);
        rest = &after[end..];
        let Ok(ip) = word.parse::<IpAddr>() else { continue };
        if section {
            continue;
        }
        let documentation = match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                [(198, 51, 100), (203, 0, 113)].contains(&(a, b, c)) || ip == "224.0.0.18".parse::<IpAddr>().unwrap()
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                (s[0], s[1]) == (0x2001, 0xdb8)
                    || s[0] & 0xffc0 == 0xfe80
                    || ip == "ff02::12".parse::<IpAddr>().unwrap()
            }
        };
        assert!(documentation, "{ip} is not a documentation address");
        checked += 1;
    }
    assert!(checked > 10, "only {checked} addresses found");
}
