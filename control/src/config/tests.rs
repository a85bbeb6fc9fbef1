//! The checker's messages, keys and lines, table by table.

use super::*;
use vipdrift_vmac::AddressMode;
use vipdrift_vrrp::advert::ChecksumForm;
use vipdrift_vrrp::garp::GarpSettings;
use vipdrift_vrrp::spec::Delivery;
use vipdrift_wire::MacAddr;

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
lease_ms = 50

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
deliver = "engine"
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
            lease: Duration::from_millis(50),
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
        deliver: Some(Delivery::Engine),
    };
    assert_eq!(config.groups, vec![web.clone()]);

    let primary = config.primary(&config.groups[0]).unwrap();
    assert_eq!(primary, "198.51.100.2".parse::<IpAddr>().unwrap());
    let gc = web.group_config(primary, MacAddr([2, 0, 0, 0, 0, 2]));
    assert_eq!(gc.vips, vec!["198.51.100.100".parse::<IpAddr>().unwrap(), "198.51.100.101".parse().unwrap()]);
    assert_eq!((gc.vrid, gc.priority, gc.primary, gc.interface_mac), (51, 200, primary, MacAddr([2, 0, 0, 0, 0, 2])));
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
    let again =
        format!("{text}\n[[group]]\nname = \"web6\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"2001:db8::200/64\"]\n");
    let e = err(&again);
    assert_error(&e, line_of(&again, "name = \"web6\"") + 2, "group[1].vrid", &["VRID 51", "IPv6", "group[0] \"web\""]);

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
    assert_error(&e, line_of(&text, "name = \"api\"") + 2, "group[1].vrid", &["VRID 51", "IPv4", "group[0] \"web\""]);
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
    assert_error(&e, line_of(BASE, "vrid") + 1, "group[0].unicast_peers[0].address", &["IPv6", "an IPv4 peer address"]);
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
    let example = include_str!("../../../examples/vipdrift.toml");
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
