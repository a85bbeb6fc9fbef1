//! An embedder's own tables beside vipdrift's: handed back with their
//! lines, while everything else is checked as before.

use vipdrift_control::config::{parse, parse_extended};

const BASE: &str = r#"[[interface]]
name = "eth0"
address = "198.51.100.2/24"

[[group]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["198.51.100.100/24"]
"#;

#[test]
fn an_embedders_tables_come_back_with_their_lines_and_key_paths() {
    let text = format!("{BASE}\n[pool]\nsize = 7\n\n[[backend]]\nmac = \"x\"\n\n[[backend]]\naddress = 3\n");
    let (config, tables) = parse_extended(&text, "lb.toml", &["backend", "pool"]).unwrap();
    assert_eq!(config.groups.len(), 1);
    let names: Vec<(&str, Option<usize>)> = tables.iter().map(|t| (t.name(), t.index())).collect();
    assert_eq!(names, [("backend", Some(0)), ("backend", Some(1)), ("pool", None)]);
    let e = tables[1].required_string("address", "an address").unwrap_err();
    assert_eq!(e.to_string(), "lb.toml:18: backend[1].address: found the integer 3; expected an address");
    let e = tables[0].required_string("address", "an address").unwrap_err();
    assert_eq!(e.to_string(), "lb.toml:14: backend[0].address: missing required key `address`; expected an address");
    assert_eq!(
        tables[2].int("size", 1..=5, "1..=5").unwrap_err().to_string(),
        "lb.toml:12: pool.size: 7 is out of range; expected 1..=5"
    );
    assert!(tables[2].only_keys(&["size"]).is_ok());
}

#[test]
fn without_being_named_an_extra_table_is_still_an_unknown_key() {
    let text = format!("{BASE}\n[[backend]]\nmac = \"x\"\n");
    let e = parse(&text, "lb.toml").unwrap_err();
    assert!(e.to_string().contains("unknown key `backend`"), "{e}");
    let e = parse_extended(&text.replace("vrid = 51", "vrid = 0"), "lb.toml", &["backend"]).unwrap_err();
    assert!(e.to_string().starts_with("lb.toml:8: group[0].vrid: 0 is out of range"), "{e}");
}
