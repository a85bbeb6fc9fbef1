//! The admin API: newline-delimited JSON over the daemon's Unix socket.
//!
//! Every request is one JSON object on one line, at most [`MAX_REQUEST`]
//! bytes with its newline, carrying the API version and a command:
//!
//! ```text
//! {"v":1,"cmd":"status"}
//! {"v":1,"cmd":"stats"}
//! {"v":1,"cmd":"maintenance","group":"web","on":true}
//! {"v":1,"cmd":"priority","group":"web","priority":150}
//! {"v":1,"cmd":"reload"}
//! ```
//!
//! Every reply is one line: `{"v":1,"ok":true,"result":{…}}` or
//! `{"v":1,"ok":false,"error":"what was wrong"}`. The `result` of `status` is
//! a [`Status`], of `stats` a [`Stats`], of the `ctl` commands an
//! [`Applied`]. A connection may carry several requests in turn; one that is
//! not valid JSON, has no known `cmd`, names another version or is longer
//! than [`MAX_REQUEST`] gets an error reply and the connection is closed.
//!
//! Version 1 is additive: fields may be added to results, never removed or
//! retyped, so a client reads what it knows and ignores the rest.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vipdrift_engine::BoundMode;
use vipdrift_vmac::{AddressMode, BondMode};
use vipdrift_vrrp::router::{Reason, State};
use vipdrift_wire::Family;

/// The API version this daemon speaks.
pub const API_VERSION: u32 = 1;
/// The longest request line, its newline included.
pub const MAX_REQUEST: usize = 4096;
/// Where the socket is when the configuration does not say.
pub const DEFAULT_SOCKET: &str = "/run/vipdrift/vipdrift.sock";

/// A request, as sent on the wire (`v` beside the command's fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// API version; must be [`API_VERSION`].
    pub v: u32,
    /// The command.
    #[serde(flatten)]
    pub request: Request,
}

/// What a client asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The groups, their states and masters, and the bonds: a [`Status`].
    Status,
    /// Counters and rates of every queue, group and bond: a [`Stats`].
    Stats,
    /// Hand the group over gracefully and stay backup (`on`), or return to
    /// the election (`off`).
    Maintenance {
        /// Group name (both families of a mixed-family group).
        group: String,
        /// On or off.
        on: bool,
    },
    /// Change the group's priority until the next reload or restart, 1..=254.
    Priority {
        /// Group name.
        group: String,
        /// New priority.
        priority: u8,
    },
    /// Re-read the configuration file (as SIGHUP does).
    Reload,
}

/// A reply, as sent on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// API version.
    pub v: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// What was wrong, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A successful reply carrying `result`.
    pub fn success(result: &impl Serialize) -> Reply {
        match serde_json::to_value(result) {
            Ok(value) => Reply { v: API_VERSION, ok: true, result: Some(value), error: None },
            Err(e) => Reply::failure(format!("cannot encode the result: {e}")),
        }
    }

    /// A refusal saying why.
    pub fn failure(error: impl Into<String>) -> Reply {
        Reply { v: API_VERSION, ok: false, result: None, error: Some(error.into()) }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"v":1,"ok":false,"error":"cannot encode the reply"}"#.to_owned());
        line.push('\n');
        line
    }
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| format!("not a JSON object: {e}; expected one JSON object per line"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object; expected one JSON object per line, like {\"v\":1,\"cmd\":\"status\"}".into());
    };
    match object.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(API_VERSION) => {}
        Some(v) => return Err(format!("API version {v} is not spoken here; expected \"v\":{API_VERSION}")),
        None => return Err(format!("no API version; expected \"v\":{API_VERSION}")),
    }
    let envelope: Envelope = serde_json::from_value(value).map_err(|e| {
        format!("{e}; expected \"cmd\" to be one of status, stats, maintenance (group, on), priority (group, priority), reload")
    })?;
    Ok(envelope.request)
}

/// The answer to `status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The daemon itself.
    pub daemon: DaemonStatus,
    /// Every interface.
    pub interfaces: Vec<InterfaceStatus>,
    /// Every group (one per family), in configuration order.
    pub groups: Vec<GroupStatus>,
    /// The bonds (one node's NICs sharing VIPs), in configuration order.
    #[serde(default)]
    pub bonds: Vec<BondStatus>,
}

/// The daemon's own facts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// Process id.
    pub pid: u32,
    /// vipdrift's version.
    pub version: String,
    /// The configuration file it runs (empty when started without one).
    pub config: String,
    /// Seconds since start.
    pub uptime_s: f64,
    /// Successful reloads.
    pub reloads: u64,
    /// Refused reloads.
    pub reload_failures: u64,
    /// Why the last reload was refused, if the last one was.
    pub last_reload_error: Option<String>,
}

/// One interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    /// Name.
    pub name: String,
    /// Its MAC address.
    pub mac: String,
    /// Carrier up.
    pub link_up: bool,
    /// The queues with a worker, and the bind mode each got.
    pub queues: Vec<QueueBinding>,
}

/// A queue and how its socket is bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueBinding {
    /// Queue number.
    pub queue: u32,
    /// `zero-copy`, `copy` or `skb`.
    pub bind_mode: BoundMode,
}

/// One group (one family of a `[[group]]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Name.
    pub name: String,
    /// `ipv4` or `ipv6`.
    pub family: Family,
    /// Interface.
    pub interface: String,
    /// VRID.
    pub vrid: u8,
    /// `initialize`, `backup`, `master` or `fault`.
    pub state: State,
    /// Priority from the configuration.
    pub priority: u8,
    /// Priority in use (after `ctl priority`); elections use this one.
    pub effective_priority: u8,
    /// In maintenance: handed over, staying backup.
    pub maintenance: bool,
    /// Preempt a lower-priority master.
    pub preempt: bool,
    /// Advertisement interval.
    pub advert_interval_ms: u64,
    /// The current master, when known.
    pub master: Option<MasterStatus>,
    /// VIPs with prefix lengths, like `198.51.100.100/24`.
    pub vips: Vec<String>,
    /// `vmac` or `own_mac`.
    pub mode: AddressMode,
    /// The MAC the VIPs are answered with.
    pub mac: String,
    /// Whether this node answers for the VIPs now.
    pub owned: bool,
    /// Seconds since the last transition (since start, before any).
    pub in_state_s: f64,
    /// The last transition.
    pub last_transition: Option<TransitionStatus>,
}

/// Who is master.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterStatus {
    /// Its primary address (the advert source).
    pub address: String,
    /// The priority it advertises.
    pub priority: u8,
    /// This node.
    #[serde(rename = "self")]
    pub is_self: bool,
}

/// A state change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransitionStatus {
    /// Old state.
    pub from: State,
    /// New state.
    pub to: State,
    /// Why (`master_down`, `preempted`, `maintenance`, …).
    pub reason: Reason,
    /// Unix time, seconds.
    pub time: f64,
    /// Time from its trigger to the transition.
    pub elapsed_ms: f64,
}

/// One bond: one node's NICs on the same LAN sharing IPv4 VIPs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BondStatus {
    /// Name.
    pub name: String,
    /// `tlb` (clients know one MAC, the primary's) or `alb` (each client is
    /// told one NIC's MAC, remembered per client).
    pub mode: BondMode,
    /// VIPs with prefix lengths, like `198.51.100.100/24`.
    pub vips: Vec<String>,
    /// The MAC clients know in `tlb`; the primary NIC's MAC in `alb`.
    pub primary_mac: String,
    /// Every NIC, in configuration order.
    pub nics: Vec<BondNicStatus>,
    /// `alb`: clients in the table (0 in `tlb`).
    pub clients: u64,
    /// `alb`: how many clients the table holds (0 in `tlb`).
    pub client_capacity: u64,
}

/// One NIC of a bond.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BondNicStatus {
    /// Interface name.
    pub name: String,
    /// The NIC's own MAC address.
    pub hardware_mac: String,
    /// The MAC it sends with now (not its own after a `tlb` takeover).
    pub mac: String,
    /// Carrier up.
    pub link_up: bool,
    /// `tlb`: holds the primary MAC; `alb`: answers broadcast ARP requests.
    pub primary: bool,
    /// `alb`: clients assigned to it (0 in `tlb`).
    pub clients: u64,
    /// Link transitions seen.
    pub link_changes: u64,
    /// The queues with a worker, and the bind mode each got.
    pub queues: Vec<QueueBinding>,
}

/// The answer to `stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The window the rates are measured over (the daemon samples once a second).
    pub rate_window_s: f64,
    /// Every queue.
    pub queues: Vec<QueueStats>,
    /// Every group.
    pub groups: Vec<GroupStats>,
    /// Every bond, in configuration order.
    #[serde(default)]
    pub bonds: Vec<BondStats>,
    /// The control thread's own counters.
    pub control: ControlStats,
    /// Every interface's steering program and leases.
    #[serde(default)]
    pub interfaces: Vec<InterfaceStats>,
}

/// What an interface's steering program did with kernel-delivered VIP
/// traffic, and how often its workers stalled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// The interface.
    pub port: String,
    /// Frames by outcome: `to_kernel` (passed, this node owns the VIP),
    /// `not_owned` (dropped: a backup, or in fault), `lease_expired`
    /// (dropped: the receiving queue's worker stopped renewing).
    pub steering: BTreeMap<String, u64>,
    /// Times a worker found it had been held up long enough for a backup
    /// to take over, and stopped renewing until its groups stepped down.
    pub lease_stalls: u64,
}

/// One queue's counters and rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Interface (port).
    pub port: String,
    /// Queue.
    pub queue: u32,
    /// `zero-copy`, `copy` or `skb`.
    pub bind_mode: BoundMode,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames handed to the control thread (adverts).
    pub to_control: u64,
    /// Received frames per second over the rate window.
    pub rx_pps: f64,
    /// Sent frames per second.
    pub tx_pps: f64,
    /// Received bits per second.
    pub rx_bps: f64,
    /// Sent bits per second.
    pub tx_bps: f64,
    /// Engine drops by reason (every reason listed, zeros included).
    pub drops: BTreeMap<String, u64>,
    /// What the responder answered, by kind: `arp`, `na`, `echo`.
    pub replies: BTreeMap<String, u64>,
    /// What the responder dropped or only counted, by reason: `not_owned`,
    /// `bad_arp`, `bad_ndp`, `bad_echo`, `announcement`.
    pub rejected: BTreeMap<String, u64>,
    /// The kernel's statistics of the queue's socket (`XDP_STATISTICS`):
    /// `rx_dropped`, `rx_invalid_descs`, `tx_invalid_descs`, `rx_ring_full`,
    /// `rx_fill_ring_empty_descs`, `tx_ring_empty_descs`.
    #[serde(default)]
    pub kernel: BTreeMap<String, u64>,
    /// Frames the kernel took off the TX ring and dropped (copy mode).
    #[serde(default)]
    pub tx_kernel_dropped: u64,
}

/// One group's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Name.
    pub name: String,
    /// `ipv4` or `ipv6`.
    pub family: Family,
    /// VRID.
    pub vrid: u8,
    /// `initialize`, `backup`, `master` or `fault`.
    pub state: State,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Adverts accepted.
    pub adverts_received: u64,
    /// Adverts not accepted, by reason: `malformed`, `own_advert`,
    /// `not_a_peer`, `other_vrid`, `while_owner`.
    pub adverts_rejected: BTreeMap<String, u64>,
    /// Accepted IPv4 adverts by checksum form: `pseudo_header`, `message_only`.
    pub checksum_forms: BTreeMap<String, u64>,
    /// GARP / unsolicited NA frames sent.
    pub garps_sent: u64,
    /// State transitions.
    pub transitions: u64,
    /// Two masters met.
    pub split_brains: u64,
}

/// One bond's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BondStats {
    /// Name.
    pub name: String,
    /// `tlb` or `alb`.
    pub mode: BondMode,
    /// Event counters by name: for example `arp_answered`, `client_updates`,
    /// `assigned`, `evicted`, `moved`, `no_nic_up`, `takeovers`,
    /// `announcements`, `arp_dropped`; the daemon fills them in.
    pub counters: BTreeMap<String, u64>,
}

/// The control thread's own counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlStats {
    /// Frames (adverts, GARPs) a worker's full queue refused.
    pub inject_failures: u64,
    /// Admin requests served.
    pub admin_requests: u64,
    /// Admin requests refused as malformed (the connection was closed).
    pub admin_errors: u64,
    /// Metrics scrapes served.
    pub scrapes: u64,
    /// Successful reloads.
    pub reloads: u64,
    /// Refused reloads.
    pub reload_failures: u64,
    /// Times the control thread itself was held up long enough for a
    /// backup to take over, and stepped its masters down.
    #[serde(default)]
    pub control_stalls: u64,
}

/// The answer to a `ctl` command: what changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// What was done, one line per change, for people.
    pub changes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_request_parses() {
        let cases = [
            (r#"{"v":1,"cmd":"status"}"#, Request::Status),
            (r#"{"v":1,"cmd":"stats"}"#, Request::Stats),
            (
                r#"{"v":1,"cmd":"maintenance","group":"web","on":true}"#,
                Request::Maintenance { group: "web".into(), on: true },
            ),
            (
                r#"{"cmd":"priority","priority":150,"group":"web","v":1}"#,
                Request::Priority { group: "web".into(), priority: 150 },
            ),
            (r#"{"v":1,"cmd":"reload"}"#, Request::Reload),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_request(line.as_bytes()), Ok(expected.clone()), "{line}");
            let sent = serde_json::to_string(&Envelope { v: API_VERSION, request: expected.clone() }).unwrap();
            assert_eq!(parse_request(sent.as_bytes()), Ok(expected), "round trip of {sent}");
        }
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let cases = [
            ("status", "not a JSON object"),
            ("[1,2]", "not a JSON object"),
            (r#"{"cmd":"status"}"#, "no API version"),
            (r#"{"v":2,"cmd":"status"}"#, "version 2"),
            (r#"{"v":1,"cmd":"explode"}"#, "one of status"),
            (r#"{"v":1}"#, "one of status"),
            (r#"{"v":1,"cmd":"priority","group":"web","priority":300}"#, "one of status"),
            (r#"{"v":1,"cmd":"maintenance","group":"web"}"#, "on"),
        ];
        for (line, fragment) in cases {
            let error = parse_request(line.as_bytes()).unwrap_err();
            assert!(error.contains(fragment), "{line}: {error}");
        }
    }

    #[test]
    fn replies_are_one_line() {
        let ok = Reply::success(&Applied { changes: vec!["web: priority 200 -> 150".into()] }).to_line();
        assert!(ok.ends_with('\n') && ok.matches('\n').count() == 1, "{ok}");
        let back: Reply = serde_json::from_str(ok.trim_end()).unwrap();
        assert!(back.ok && back.error.is_none());
        let refused = Reply::failure("no group \"x\"\nsecond line").to_line();
        assert_eq!(refused.matches('\n').count(), 1, "{refused}");
        assert!(refused.contains(r#""ok":false"#));
    }

    /// An older daemon's results, without bonds, still parse (as no bonds).
    #[test]
    fn results_without_bonds_parse() {
        let status = Status { groups: vec![GroupStatus::default()], ..Status::default() };
        let mut value = serde_json::to_value(&status).unwrap();
        assert!(value.as_object_mut().unwrap().remove("bonds").is_some());
        assert_eq!(serde_json::from_value::<Status>(value).unwrap(), status);
        let stats = Stats { groups: vec![GroupStats::default()], ..Stats::default() };
        let mut value = serde_json::to_value(&stats).unwrap();
        assert!(value.as_object_mut().unwrap().remove("bonds").is_some());
        assert_eq!(serde_json::from_value::<Stats>(value).unwrap(), stats);
    }

    #[test]
    fn bonds_round_trip() {
        let status = Status {
            bonds: vec![BondStatus {
                name: "lb".into(),
                mode: BondMode::Alb,
                vips: vec!["198.51.100.100/24".into()],
                primary_mac: "02:00:00:00:00:01".into(),
                nics: vec![BondNicStatus {
                    name: "b0".into(),
                    hardware_mac: "02:00:00:00:00:01".into(),
                    mac: "02:00:00:00:00:01".into(),
                    link_up: true,
                    primary: true,
                    clients: 4,
                    link_changes: 1,
                    queues: vec![QueueBinding { queue: 0, bind_mode: BoundMode::Copy }],
                }],
                clients: 4,
                client_capacity: 4096,
            }],
            ..Status::default()
        };
        let line = Reply::success(&status).to_line();
        let reply: Reply = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(serde_json::from_value::<Status>(reply.result.unwrap()).unwrap(), status);
        let stats = Stats {
            bonds: vec![BondStats {
                name: "lb".into(),
                mode: BondMode::Alb,
                counters: [("assigned".to_owned(), 8), ("moved".to_owned(), 4)].into_iter().collect(),
            }],
            ..Stats::default()
        };
        let value = serde_json::to_value(&stats).unwrap();
        assert_eq!(value["bonds"][0]["counters"]["moved"], 4);
        assert_eq!(serde_json::from_value::<Stats>(value).unwrap(), stats);
    }

    /// Random bytes and mutations of valid requests: always a result, never a panic.
    #[test]
    fn random_and_mutated_lines_never_panic() {
        let valid: &[&[u8]] = &[
            br#"{"v":1,"cmd":"status"}"#,
            br#"{"v":1,"cmd":"maintenance","group":"web","on":true}"#,
            br#"{"v":1,"cmd":"priority","group":"web","priority":150}"#,
        ];
        let accepted = crate::mutate::inputs(valid, 0x9e37_79b9_7f4a_7c15, 20_000, 64)
            .iter()
            .filter(|l| parse_request(l).is_ok())
            .count();
        assert!(accepted > 0, "some mutations stay valid");
    }
}
