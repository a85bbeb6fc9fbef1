//! The Prometheus endpoint's pure half: the text exposition (format 0.0.4)
//! of a [`Status`] and a [`Stats`]. The HTTP reader and writer that serve it
//! are the daemon's own (`http.rs`).
//!
//! [`render`] writes every family in [`METRICS`] once, with its `# HELP` and
//! `# TYPE` lines, in that order. Counters end in `_total`. Queue families
//! are labelled `{port,queue}`, group families `{group,family,vrid}` (a
//! mixed-family group is two virtual routers, one per family), bond NIC
//! families `{bond,nic}`, and a family with a `reason` or `kind` label has one
//! sample per key of the daemon's map, zeros included.

use crate::admin::{BondNicStatus, GroupStats, GroupStatus, QueueStats, Stats, Status};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use vipdrift_engine::XdpSocketStats;
use vipdrift_wire::Family;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The one path served.
pub const METRICS_PATH: &str = "/metrics";

/// Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up (resets when the daemon restarts).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl MetricType {
    /// The name in a `# TYPE` line.
    pub fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// One metric family, for the exposition and for documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDoc {
    /// Family name.
    pub name: &'static str,
    /// Its type.
    pub kind: MetricType,
    /// Its labels, in order.
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
}

const QUEUE: &[&str] = &["port", "queue"];
const GROUP: &[&str] = &["group", "family", "vrid"];
const BOND_NIC: &[&str] = &["bond", "nic"];

const fn doc(name: &'static str, kind: MetricType, labels: &'static [&'static str], help: &'static str) -> MetricDoc {
    MetricDoc { name, kind, labels, help }
}

use MetricType::{Counter, Gauge};

/// Every family [`render`] writes, in the order it writes them.
pub const METRICS: &[MetricDoc] = &[
    doc("vipdrift_rx_packets_total", Counter, QUEUE, "Frames received on the queue."),
    doc("vipdrift_rx_bytes_total", Counter, QUEUE, "Bytes received on the queue."),
    doc("vipdrift_tx_packets_total", Counter, QUEUE, "Frames sent on the queue."),
    doc("vipdrift_tx_bytes_total", Counter, QUEUE, "Bytes sent on the queue."),
    doc("vipdrift_to_control_total", Counter, QUEUE, "Frames (VRRP adverts) the queue's worker handed to the control thread."),
    doc("vipdrift_drops_total", Counter, &["port", "queue", "reason"], "Frames the engine dropped on the queue, by reason."),
    doc(
        "vipdrift_replies_total",
        Counter,
        &["port", "queue", "kind"],
        "Replies the responder sent on the queue, by kind (arp, na, echo).",
    ),
    doc(
        "vipdrift_responder_rejected_total",
        Counter,
        &["port", "queue", "reason"],
        "Frames the responder dropped or only counted, by reason (not_owned, bad_arp, bad_ndp, bad_echo, announcement).",
    ),
    doc(
        "vipdrift_xdp_rx_dropped_total",
        Counter,
        QUEUE,
        "The kernel's XDP_STATISTICS of the queue's socket: received frames it dropped for other reasons.",
    ),
    doc(
        "vipdrift_xdp_rx_invalid_descs_total",
        Counter,
        QUEUE,
        "The kernel's XDP_STATISTICS: received frames dropped for an invalid fill-ring descriptor.",
    ),
    doc(
        "vipdrift_xdp_tx_invalid_descs_total",
        Counter,
        QUEUE,
        "The kernel's XDP_STATISTICS: frames to send dropped for an invalid TX descriptor.",
    ),
    doc(
        "vipdrift_xdp_rx_ring_full_total",
        Counter,
        QUEUE,
        "The kernel's XDP_STATISTICS: received frames dropped because the RX ring was full (the worker was behind).",
    ),
    doc(
        "vipdrift_xdp_rx_fill_ring_empty_descs_total",
        Counter,
        QUEUE,
        "The kernel's XDP_STATISTICS: times the kernel found no buffer on the fill ring.",
    ),
    doc(
        "vipdrift_xdp_tx_ring_empty_descs_total",
        Counter,
        QUEUE,
        "The kernel's XDP_STATISTICS: times the kernel found the TX ring empty when asked to send.",
    ),
    doc(
        "vipdrift_tx_kernel_dropped_total",
        Counter,
        QUEUE,
        "Frames the kernel took off the TX ring and dropped instead of sending (copy mode).",
    ),
    doc(
        "vipdrift_queue_info",
        Gauge,
        &["port", "queue", "bind_mode"],
        "A queue with a worker, labelled with the AF_XDP bind mode it got; always 1.",
    ),
    doc("vipdrift_interface_up", Gauge, &["port"], "1 if the interface has carrier, else 0."),
    doc(
        "vipdrift_group_state",
        Gauge,
        GROUP,
        "VRRP state of the virtual router, numbered as keepalived does: 0 initialize, 1 backup, 2 master, 3 fault.",
    ),
    doc("vipdrift_group_priority", Gauge, GROUP, "Priority from the configuration."),
    doc(
        "vipdrift_group_effective_priority",
        Gauge,
        GROUP,
        "Priority in use, after `vipdrift ctl priority`; elections use this one.",
    ),
    doc(
        "vipdrift_group_maintenance",
        Gauge,
        GROUP,
        "1 if the group is in maintenance (handed over, staying backup), else 0.",
    ),
    doc("vipdrift_group_owned", Gauge, GROUP, "1 if this node answers for the group's VIPs now, else 0."),
    doc("vipdrift_group_adverts_sent_total", Counter, GROUP, "VRRP advertisements sent."),
    doc("vipdrift_group_adverts_received_total", Counter, GROUP, "VRRP advertisements accepted."),
    doc(
        "vipdrift_group_adverts_rejected_total",
        Counter,
        &["group", "family", "vrid", "reason"],
        "VRRP advertisements not accepted, by reason (malformed, own_advert, not_a_peer, other_vrid, while_owner).",
    ),
    doc(
        "vipdrift_group_adverts_checksum_forms_total",
        Counter,
        &["group", "family", "vrid", "form"],
        "Accepted IPv4 advertisements by checksum form (pseudo_header, message_only): which form the peers send.",
    ),
    doc("vipdrift_group_garps_sent_total", Counter, GROUP, "Gratuitous ARPs and unsolicited neighbor advertisements sent."),
    doc("vipdrift_group_transitions_total", Counter, GROUP, "VRRP state transitions."),
    doc("vipdrift_group_split_brains_total", Counter, GROUP, "Times two masters met (a healed partition or a preemption), counted by the winner and by the loser."),
    doc("vipdrift_bond_nic_up", Gauge, BOND_NIC, "1 if the bond's NIC has carrier, else 0."),
    doc(
        "vipdrift_bond_nic_primary",
        Gauge,
        BOND_NIC,
        "1 if the NIC is the bond's primary (tlb: holds the primary MAC; alb: answers broadcast ARP requests), else 0.",
    ),
    doc("vipdrift_bond_nic_clients", Gauge, BOND_NIC, "alb: clients assigned to the NIC (0 in tlb)."),
    doc("vipdrift_bond_nic_link_changes_total", Counter, BOND_NIC, "Link transitions seen on the bond's NIC."),
    doc("vipdrift_bond_clients", Gauge, &["bond", "mode"], "alb: clients in the bond's table (0 in tlb)."),
    doc(
        "vipdrift_bond_events_total",
        Counter,
        &["bond", "kind"],
        "Bond events by kind, as the daemon counts them (arp_answered, client_updates, assigned, evicted, moved, \
         no_nic_up, takeovers, announcements, arp_dropped).",
    ),
    doc(
        "vipdrift_steering_total",
        Counter,
        &["port", "outcome"],
        "Kernel-delivered VIP traffic the steering program passed (to_kernel) or dropped (not_owned: not master here; \
         lease_expired: the receiving queue's worker stopped renewing its lease).",
    ),
    doc(
        "vipdrift_lease_stalls_total",
        Counter,
        &["port"],
        "Times a worker was held up long enough for a backup to take over and stopped renewing its lease.",
    ),
    doc(
        "vipdrift_control_stalls_total",
        Counter,
        &[],
        "Times the control thread was held up long enough for a backup to take over and stepped its masters down.",
    ),
    doc("vipdrift_uptime_seconds", Gauge, &[], "Seconds since the daemon started."),
    doc(
        "vipdrift_reloads_total",
        Counter,
        &["result"],
        "Configuration reloads, by result (ok: applied, refused: the new configuration was rejected and the old one kept).",
    ),
    doc(
        "vipdrift_inject_failures_total",
        Counter,
        &[],
        "Frames (adverts, GARPs) the control thread could not inject because a worker's queue was full.",
    ),
    doc("vipdrift_admin_requests_total", Counter, &[], "Admin API requests served."),
    doc(
        "vipdrift_admin_errors_total",
        Counter,
        &[],
        "Admin API requests refused as malformed (the connection was closed).",
    ),
    doc("vipdrift_scrapes_total", Counter, &[], "Metrics scrapes served."),
    doc("vipdrift_build_info", Gauge, &["version"], "The running vipdrift's version; always 1."),
];

/// Reads one field of a queue's or group's entry.
type Field<T, R> = fn(&T) -> R;
/// Reads one map of counts by reason (or kind) of a queue's or group's entry.
type Counts<T> = fn(&T) -> &BTreeMap<String, u64>;

/// The text exposition (format 0.0.4) of the daemon's status and counters:
/// every family of [`METRICS`], each with its `# HELP` and `# TYPE` once.
pub fn render(status: &Status, stats: &Stats) -> String {
    let mut out = Exposition::default();

    let queue_counters: [(&str, Field<QueueStats, u64>); 5] = [
        ("vipdrift_rx_packets_total", |q| q.rx_packets),
        ("vipdrift_rx_bytes_total", |q| q.rx_bytes),
        ("vipdrift_tx_packets_total", |q| q.tx_packets),
        ("vipdrift_tx_bytes_total", |q| q.tx_bytes),
        ("vipdrift_to_control_total", |q| q.to_control),
    ];
    for (name, value) in queue_counters {
        out.family(name, stats.queues.iter().map(|q| (queue_labels(&q.port, q.queue, &[]), value(q))));
    }
    let queue_maps: [(&str, &str, Counts<QueueStats>); 3] = [
        ("vipdrift_drops_total", "reason", |q| &q.drops),
        ("vipdrift_replies_total", "kind", |q| &q.replies),
        ("vipdrift_responder_rejected_total", "reason", |q| &q.rejected),
    ];
    for (name, label, map) in queue_maps {
        out.family(
            name,
            stats
                .queues
                .iter()
                .flat_map(|q| map(q).iter().map(move |(key, &n)| (queue_labels(&q.port, q.queue, &[(label, key)]), n))),
        );
    }
    for (name, _) in XdpSocketStats::default().named() {
        let family = format!("vipdrift_xdp_{name}_total");
        let samples = stats
            .queues
            .iter()
            .map(move |q| (queue_labels(&q.port, q.queue, &[]), q.kernel.get(name).copied().unwrap_or(0)));
        out.family(&family, samples);
    }
    out.family(
        "vipdrift_tx_kernel_dropped_total",
        stats.queues.iter().map(|q| (queue_labels(&q.port, q.queue, &[]), q.tx_kernel_dropped)),
    );
    out.family(
        "vipdrift_queue_info",
        stats.queues.iter().map(|q| (queue_labels(&q.port, q.queue, &[("bind_mode", q.bind_mode.name())]), 1u64)),
    );
    out.family(
        "vipdrift_interface_up",
        status.interfaces.iter().map(|i| (labels(&[("port", &i.name)]), u64::from(i.link_up))),
    );

    out.family(
        "vipdrift_group_state",
        status.groups.iter().map(|g| (group_labels(&g.name, g.family, g.vrid, &[]), u64::from(g.state.number()))),
    );
    let group_gauges: [(&str, Field<GroupStatus, u64>); 4] = [
        ("vipdrift_group_priority", |g| u64::from(g.priority)),
        ("vipdrift_group_effective_priority", |g| u64::from(g.effective_priority)),
        ("vipdrift_group_maintenance", |g| u64::from(g.maintenance)),
        ("vipdrift_group_owned", |g| u64::from(g.owned)),
    ];
    for (name, value) in group_gauges {
        out.family(name, status.groups.iter().map(|g| (group_labels(&g.name, g.family, g.vrid, &[]), value(g))));
    }
    let group_counters: [(&str, Field<GroupStats, u64>); 2] = [
        ("vipdrift_group_adverts_sent_total", |g| g.adverts_sent),
        ("vipdrift_group_adverts_received_total", |g| g.adverts_received),
    ];
    for (name, value) in group_counters {
        out.family(name, stats.groups.iter().map(|g| (group_labels(&g.name, g.family, g.vrid, &[]), value(g))));
    }
    let group_maps: [(&str, &str, Counts<GroupStats>); 2] = [
        ("vipdrift_group_adverts_rejected_total", "reason", |g| &g.adverts_rejected),
        ("vipdrift_group_adverts_checksum_forms_total", "form", |g| &g.checksum_forms),
    ];
    for (name, label, map) in group_maps {
        out.family(
            name,
            stats.groups.iter().flat_map(|g| {
                map(g).iter().map(move |(key, &n)| (group_labels(&g.name, g.family, g.vrid, &[(label, key)]), n))
            }),
        );
    }
    let group_counters: [(&str, Field<GroupStats, u64>); 3] = [
        ("vipdrift_group_garps_sent_total", |g| g.garps_sent),
        ("vipdrift_group_transitions_total", |g| g.transitions),
        ("vipdrift_group_split_brains_total", |g| g.split_brains),
    ];
    for (name, value) in group_counters {
        out.family(name, stats.groups.iter().map(|g| (group_labels(&g.name, g.family, g.vrid, &[]), value(g))));
    }

    let bond_nic_families: [(&str, Field<BondNicStatus, u64>); 4] = [
        ("vipdrift_bond_nic_up", |n| u64::from(n.link_up)),
        ("vipdrift_bond_nic_primary", |n| u64::from(n.primary)),
        ("vipdrift_bond_nic_clients", |n| n.clients),
        ("vipdrift_bond_nic_link_changes_total", |n| n.link_changes),
    ];
    for (name, value) in bond_nic_families {
        out.family(
            name,
            status
                .bonds
                .iter()
                .flat_map(|b| b.nics.iter().map(move |n| (labels(&[("bond", &b.name), ("nic", &n.name)]), value(n)))),
        );
    }
    out.family(
        "vipdrift_bond_clients",
        status.bonds.iter().map(|b| (labels(&[("bond", &b.name), ("mode", b.mode.name())]), b.clients)),
    );
    out.family(
        "vipdrift_bond_events_total",
        stats
            .bonds
            .iter()
            .flat_map(|b| b.counters.iter().map(move |(kind, &n)| (labels(&[("bond", &b.name), ("kind", kind)]), n))),
    );

    out.family(
        "vipdrift_steering_total",
        stats.interfaces.iter().flat_map(|i| {
            i.steering.iter().map(move |(outcome, &n)| (labels(&[("port", &i.port), ("outcome", outcome)]), n))
        }),
    );
    out.family(
        "vipdrift_lease_stalls_total",
        stats.interfaces.iter().map(|i| (labels(&[("port", &i.port)]), i.lease_stalls)),
    );
    let c = &stats.control;
    out.family("vipdrift_control_stalls_total", [(String::new(), c.control_stalls)]);
    out.family("vipdrift_uptime_seconds", [(String::new(), status.daemon.uptime_s)]);
    out.family(
        "vipdrift_reloads_total",
        [(labels(&[("result", "ok")]), c.reloads), (labels(&[("result", "refused")]), c.reload_failures)],
    );
    out.family("vipdrift_inject_failures_total", [(String::new(), c.inject_failures)]);
    out.family("vipdrift_admin_requests_total", [(String::new(), c.admin_requests)]);
    out.family("vipdrift_admin_errors_total", [(String::new(), c.admin_errors)]);
    out.family("vipdrift_scrapes_total", [(String::new(), c.scrapes)]);
    out.family("vipdrift_build_info", [(labels(&[("version", &status.daemon.version)]), 1u64)]);
    out.text
}

/// The exposition being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Writes family `name` (of [`METRICS`]): its HELP and TYPE lines, then
    /// one line per (rendered label set, value).
    fn family<V: Into<SampleValue>>(&mut self, name: &str, samples: impl IntoIterator<Item = (String, V)>) {
        let doc = METRICS.iter().find(|m| m.name == name);
        debug_assert!(doc.is_some(), "{name} is documented in METRICS");
        if let Some(doc) = doc {
            let _ = writeln!(self.text, "# HELP {name} {}", escape_help(doc.help));
            let _ = writeln!(self.text, "# TYPE {name} {}", doc.kind.name());
        }
        for (labels, value) in samples {
            let value = match value.into() {
                SampleValue::Count(n) => n.to_string(),
                SampleValue::Real(x) => format_value(x),
            };
            let _ = writeln!(self.text, "{name}{labels} {value}");
        }
    }
}

/// A sample's value: counts are written exactly (an `f64` would round
/// them above 2^53), the rest as floats.
enum SampleValue {
    Count(u64),
    Real(f64),
}

impl From<u64> for SampleValue {
    fn from(n: u64) -> SampleValue {
        SampleValue::Count(n)
    }
}

impl From<f64> for SampleValue {
    fn from(x: f64) -> SampleValue {
        SampleValue::Real(x)
    }
}

fn queue_labels(port: &str, queue: u32, extra: &[(&str, &str)]) -> String {
    let queue = queue.to_string();
    let mut pairs = vec![("port", port), ("queue", queue.as_str())];
    pairs.extend_from_slice(extra);
    labels(&pairs)
}

fn group_labels(group: &str, family: Family, vrid: u8, extra: &[(&str, &str)]) -> String {
    let vrid = vrid.to_string();
    let mut pairs = vec![("group", group), ("family", family.name()), ("vrid", vrid.as_str())];
    pairs.extend_from_slice(extra);
    labels(&pairs)
}

/// `{a="x",b="y"}`, or nothing without labels.
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
    }
    out.push('}');
    out
}

/// A label value as the text format wants it: `\`, `"` and newline escaped.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text as the text format wants it: `\` and newline escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Display never uses an exponent and prints integers without ".0".
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{
        BondStats, BondStatus, ControlStats, DaemonStatus, GroupStats, GroupStatus, InterfaceStatus, QueueBinding,
        QueueStats,
    };
    use std::collections::HashMap;
    use vipdrift_engine::BoundMode;
    use vipdrift_vmac::BondMode;
    use vipdrift_vrrp::router::State;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
    }

    fn sample() -> (Status, Stats) {
        let status = Status {
            daemon: DaemonStatus {
                pid: 4242,
                version: "0.1.0".into(),
                config: "/etc/vipdrift.toml".into(),
                uptime_s: 3723.5,
                reloads: 2,
                reload_failures: 1,
                last_reload_error: None,
            },
            interfaces: vec![
                InterfaceStatus {
                    name: "eth0".into(),
                    mac: "02:00:00:00:00:02".into(),
                    link_up: true,
                    queues: vec![QueueBinding { queue: 0, bind_mode: BoundMode::ZeroCopy }],
                },
                InterfaceStatus {
                    name: "eth1".into(),
                    mac: "02:00:00:00:01:02".into(),
                    link_up: false,
                    queues: vec![],
                },
            ],
            groups: vec![
                GroupStatus {
                    name: "web".into(),
                    family: Family::Ipv4,
                    interface: "eth0".into(),
                    vrid: 51,
                    state: State::Master,
                    priority: 200,
                    effective_priority: 150,
                    owned: true,
                    ..GroupStatus::default()
                },
                GroupStatus {
                    name: "we\"ird\\na\nme".into(),
                    family: Family::Ipv6,
                    interface: "eth0".into(),
                    vrid: 52,
                    state: State::Fault,
                    priority: 100,
                    effective_priority: 100,
                    maintenance: true,
                    ..GroupStatus::default()
                },
            ],
            bonds: vec![BondStatus {
                name: "lb".into(),
                mode: BondMode::Alb,
                vips: vec!["198.51.100.100/24".into()],
                primary_mac: "02:00:00:00:00:01".into(),
                nics: vec![
                    BondNicStatus {
                        name: "b0".into(),
                        hardware_mac: "02:00:00:00:00:01".into(),
                        mac: "02:00:00:00:00:01".into(),
                        link_up: true,
                        primary: true,
                        clients: 8,
                        link_changes: 0,
                        queues: vec![QueueBinding { queue: 0, bind_mode: BoundMode::Copy }],
                    },
                    BondNicStatus {
                        name: "b1".into(),
                        hardware_mac: "02:00:00:00:00:02".into(),
                        mac: "02:00:00:00:00:02".into(),
                        link_up: false,
                        primary: false,
                        clients: 0,
                        link_changes: 2,
                        queues: vec![QueueBinding { queue: 0, bind_mode: BoundMode::Copy }],
                    },
                ],
                clients: 8,
                client_capacity: 4096,
            }],
        };
        let stats = Stats {
            rate_window_s: 1.0,
            queues: vec![QueueStats {
                port: "eth0".into(),
                queue: 0,
                bind_mode: BoundMode::ZeroCopy,
                rx_packets: 1000,
                rx_bytes: u64::MAX,
                tx_packets: 900,
                tx_bytes: 57600,
                to_control: 12,
                drops: map(&[("no_handler", 3), ("ring_full", 0)]),
                replies: map(&[("arp", 5), ("echo", 7), ("na", 0)]),
                rejected: map(&[("not_owned", 9)]),
                ..QueueStats::default()
            }],
            groups: vec![GroupStats {
                name: "web".into(),
                family: Family::Ipv4,
                vrid: 51,
                state: State::Master,
                adverts_sent: 100,
                adverts_received: 4,
                adverts_rejected: map(&[("malformed", 1), ("own_advert", 0)]),
                checksum_forms: map(&[("message_only", 0), ("pseudo_header", 4)]),
                garps_sent: 10,
                transitions: 2,
                split_brains: 1,
            }],
            bonds: vec![BondStats {
                name: "lb".into(),
                mode: BondMode::Alb,
                counters: map(&[("arp_answered", 12), ("assigned", 8), ("moved", 4), ("no_nic_up", 0)]),
            }],
            control: ControlStats {
                inject_failures: 0,
                admin_requests: 17,
                admin_errors: 1,
                scrapes: 3,
                reloads: 2,
                reload_failures: 1,
                control_stalls: 0,
            },
            interfaces: vec![crate::admin::InterfaceStats {
                port: "eth0".into(),
                steering: map(&[("lease_expired", 2), ("not_owned", 5), ("to_kernel", 120)]),
                lease_stalls: 1,
            }],
        };
        (status, stats)
    }

    /// Splits a sample line into (name, labels, value), checking its syntax.
    fn sample_line(line: &str) -> (String, Vec<(String, String)>, String) {
        let (series, value) = line.rsplit_once(' ').expect("NAME{LABELS} VALUE");
        let (name, rest) = series.split_once('{').map_or((series, None), |(n, r)| (n, Some(r)));
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "metric name {name:?} in {line}"
        );
        let mut labels = Vec::new();
        if let Some(mut rest) = rest {
            loop {
                let (label, after) = rest.split_once("=\"").expect("label=\"value\"");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("closing quote") {
                        (_, '\\') => match chars.next().expect("escaped char").1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (i, '"') => break i,
                        (_, c) => value.push(c),
                    }
                };
                labels.push((label.to_owned(), value));
                rest = &after[end + 1..];
                if rest == "}" {
                    break;
                }
                rest = rest.strip_prefix(',').expect("comma between labels");
            }
        }
        let _: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        (name.to_owned(), labels, value.to_owned())
    }

    #[test]
    fn every_family_once_with_help_and_type_and_documented_labels() {
        let (status, stats) = sample();
        let text = render(&status, &stats);
        assert!(text.ends_with('\n'));
        let mut helps = HashMap::new();
        let mut types = HashMap::new();
        let mut order = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                *helps.entry(name.to_owned()).or_insert(0) += 1;
                order.push(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                *types.entry(name.to_owned()).or_insert(0) += 1;
                let doc = METRICS.iter().find(|m| m.name == name).unwrap();
                assert_eq!(kind, doc.kind.name());
                assert_eq!(order.last().map(String::as_str), Some(name), "TYPE right after HELP");
            } else {
                assert!(!line.starts_with('#'), "{line}");
                let (name, labels, _) = sample_line(line);
                assert_eq!(order.last(), Some(&name), "{line} belongs to the family above it");
                let doc = METRICS.iter().find(|m| m.name == name).unwrap();
                let names: Vec<&str> = labels.iter().map(|(l, _)| l.as_str()).collect();
                assert_eq!(names, doc.labels, "{line}");
            }
        }
        let documented: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(order, documented, "every family, once, in METRICS order");
        assert!(helps.values().chain(types.values()).all(|&n| n == 1));
        for m in METRICS {
            assert_eq!(m.kind == MetricType::Counter, m.name.ends_with("_total"), "{}", m.name);
            assert!(m.name.starts_with("vipdrift_"));
        }
    }

    fn value_of(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    #[test]
    fn samples_carry_the_daemon_values() {
        let (status, stats) = sample();
        let text = render(&status, &stats);
        let cases = [
            (r#"vipdrift_rx_packets_total{port="eth0",queue="0"}"#, "1000"),
            (r#"vipdrift_tx_bytes_total{port="eth0",queue="0"}"#, "57600"),
            (r#"vipdrift_rx_bytes_total{port="eth0",queue="0"}"#, "18446744073709551615"),
            (r#"vipdrift_to_control_total{port="eth0",queue="0"}"#, "12"),
            (r#"vipdrift_drops_total{port="eth0",queue="0",reason="no_handler"}"#, "3"),
            (r#"vipdrift_drops_total{port="eth0",queue="0",reason="ring_full"}"#, "0"),
            (r#"vipdrift_replies_total{port="eth0",queue="0",kind="na"}"#, "0"),
            (r#"vipdrift_responder_rejected_total{port="eth0",queue="0",reason="not_owned"}"#, "9"),
            (r#"vipdrift_queue_info{port="eth0",queue="0",bind_mode="zero-copy"}"#, "1"),
            (r#"vipdrift_interface_up{port="eth0"}"#, "1"),
            (r#"vipdrift_interface_up{port="eth1"}"#, "0"),
            (r#"vipdrift_group_state{group="web",family="ipv4",vrid="51"}"#, "2"),
            (r#"vipdrift_group_state{group="we\"ird\\na\nme",family="ipv6",vrid="52"}"#, "3"),
            (r#"vipdrift_group_priority{group="web",family="ipv4",vrid="51"}"#, "200"),
            (r#"vipdrift_group_effective_priority{group="web",family="ipv4",vrid="51"}"#, "150"),
            (r#"vipdrift_group_maintenance{group="web",family="ipv4",vrid="51"}"#, "0"),
            (r#"vipdrift_group_maintenance{group="we\"ird\\na\nme",family="ipv6",vrid="52"}"#, "1"),
            (r#"vipdrift_group_owned{group="web",family="ipv4",vrid="51"}"#, "1"),
            (r#"vipdrift_group_adverts_rejected_total{group="web",family="ipv4",vrid="51",reason="own_advert"}"#, "0"),
            (
                r#"vipdrift_group_adverts_checksum_forms_total{group="web",family="ipv4",vrid="51",form="pseudo_header"}"#,
                "4",
            ),
            (r#"vipdrift_group_split_brains_total{group="web",family="ipv4",vrid="51"}"#, "1"),
            (r#"vipdrift_bond_nic_up{bond="lb",nic="b0"}"#, "1"),
            (r#"vipdrift_bond_nic_up{bond="lb",nic="b1"}"#, "0"),
            (r#"vipdrift_bond_nic_primary{bond="lb",nic="b0"}"#, "1"),
            (r#"vipdrift_bond_nic_primary{bond="lb",nic="b1"}"#, "0"),
            (r#"vipdrift_bond_nic_clients{bond="lb",nic="b0"}"#, "8"),
            (r#"vipdrift_bond_nic_clients{bond="lb",nic="b1"}"#, "0"),
            (r#"vipdrift_bond_nic_link_changes_total{bond="lb",nic="b1"}"#, "2"),
            (r#"vipdrift_bond_clients{bond="lb",mode="alb"}"#, "8"),
            (r#"vipdrift_bond_events_total{bond="lb",kind="arp_answered"}"#, "12"),
            (r#"vipdrift_bond_events_total{bond="lb",kind="moved"}"#, "4"),
            (r#"vipdrift_bond_events_total{bond="lb",kind="no_nic_up"}"#, "0"),
            ("vipdrift_uptime_seconds", "3723.5"),
            (r#"vipdrift_reloads_total{result="ok"}"#, "2"),
            (r#"vipdrift_reloads_total{result="refused"}"#, "1"),
            ("vipdrift_admin_requests_total", "17"),
            ("vipdrift_admin_errors_total", "1"),
            ("vipdrift_scrapes_total", "3"),
            (r#"vipdrift_build_info{version="0.1.0"}"#, "1"),
        ];
        for (series, value) in cases {
            assert_eq!(value_of(&text, series).as_deref(), Some(value), "{series} in\n{text}");
        }
        // The awkward group name parses back to itself.
        let weird = text.lines().find(|l| l.starts_with("vipdrift_group_state{") && l.contains("ipv6")).unwrap();
        assert_eq!(sample_line(weird).1[0].1, "we\"ird\\na\nme");
    }

    #[test]
    fn bond_samples_in_order_and_escaped() {
        let (mut status, mut stats) = sample();
        let text = render(&status, &stats);
        let bond_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("vipdrift_bond_")).collect();
        assert_eq!(
            bond_lines[..4],
            [
                r#"vipdrift_bond_nic_up{bond="lb",nic="b0"} 1"#,
                r#"vipdrift_bond_nic_up{bond="lb",nic="b1"} 0"#,
                r#"vipdrift_bond_nic_primary{bond="lb",nic="b0"} 1"#,
                r#"vipdrift_bond_nic_primary{bond="lb",nic="b1"} 0"#,
            ],
            "one sample per NIC, in configuration order"
        );
        assert_eq!(bond_lines.len(), 4 * 2 + 1 + 4, "{text}");
        assert!(text.contains(
            "# HELP vipdrift_bond_events_total Bond events by kind, as the daemon counts them (arp_answered, \
             client_updates, assigned, evicted, moved, no_nic_up, takeovers, announcements, arp_dropped).\n\
             # TYPE vipdrift_bond_events_total counter\n\
             vipdrift_bond_events_total{bond=\"lb\",kind=\"arp_answered\"} 12\n"
        ));
        // A bond name is a label value like any other: escaped.
        status.bonds[0].name = "l\"b\\".into();
        stats.bonds[0].name = "l\"b\\".into();
        let text = render(&status, &stats);
        assert_eq!(value_of(&text, r#"vipdrift_bond_clients{bond="l\"b\\",mode="alb"}"#).as_deref(), Some("8"));
        assert_eq!(value_of(&text, r#"vipdrift_bond_events_total{bond="l\"b\\",kind="moved"}"#).as_deref(), Some("4"));
        let line = text.lines().find(|l| l.starts_with("vipdrift_bond_nic_up{")).unwrap();
        assert_eq!(
            sample_line(line).1,
            [("bond".to_owned(), "l\"b\\".to_owned()), ("nic".to_owned(), "b0".to_owned())]
        );
    }

    #[test]
    fn empty_daemon_still_renders_every_family() {
        let text = render(&Status::default(), &Stats::default());
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP ")).count(), METRICS.len());
        assert_eq!(value_of(&text, "vipdrift_uptime_seconds").as_deref(), Some("0"));
        assert!(!text.contains("vipdrift_group_state{") && !text.contains("vipdrift_bond_nic_up{"));
    }

    #[test]
    fn values_and_escapes() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1e20), "100000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
        assert_eq!(labels(&[]), "");
    }

    /// The table of families for the README (`cargo test -p vipdrift-control
    /// metrics_table -- --nocapture`).
    #[test]
    fn metrics_table() {
        let mut out = String::from("| Metric | Type | Labels | Meaning |\n|---|---|---|---|\n");
        for m in METRICS {
            let _ = writeln!(out, "| `{}` | {} | {} | {} |", m.name, m.kind.name(), m.labels.join(", "), m.help);
        }
        println!("{out}");
        assert_eq!(out.lines().count(), METRICS.len() + 2);
    }
}
