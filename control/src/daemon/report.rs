//! What the daemon shows: the admin API's status and stats, projected from
//! the running node, and the report at the end of a run.

use super::operations::Operations;
use super::running::RunningNode;
use super::{GroupReport, QueueReport, RunReport};
use crate::admin;
use crate::config;
use crate::interface::Interface;
use crate::listeners::ListenerCounters;
use crate::workers::RunningWorker;
use std::collections::BTreeMap;
use vipdrift_engine::DropReason;
use vipdrift_vrrp::node::GroupView;
use vipdrift_vrrp::router::State;
use vipdrift_wire::{CounterSet, Time};

/// What `status` answers.
pub(super) fn status(running: &RunningNode, ops: &Operations) -> admin::Status {
    let now = running.now();
    let daemon = admin::DaemonStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        config: ops.config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        uptime_s: running.uptime().as_secs_f64(),
        reloads: ops.reloads,
        reload_failures: ops.reload_failures,
        last_reload_error: ops.last_reload_error.clone(),
    };
    let interfaces = running
        .interfaces
        .iter()
        .map(|i| admin::InterfaceStatus {
            name: i.name().to_owned(),
            mac: i.nic.mac().to_string(),
            link_up: i.link.up,
            queues: bindings(&i.workers),
        })
        .collect();
    let groups = running.node.groups().map(|g| group_status(running, &g, now)).collect();
    let bonds = running.bonds.iter().map(crate::bond::status).collect();
    admin::Status { daemon, interfaces, groups, bonds }
}

pub(crate) fn bindings(workers: &[RunningWorker]) -> Vec<admin::QueueBinding> {
    workers.iter().map(|w| admin::QueueBinding { queue: w.queue, bind_mode: w.bound }).collect()
}

fn group_status(running: &RunningNode, g: &GroupView<'_>, now: Time) -> admin::GroupStatus {
    let config = g.group.config();
    admin::GroupStatus {
        name: g.spec.name.clone(),
        family: g.spec.family,
        interface: g.spec.interface.clone(),
        vrid: g.spec.vrid,
        state: g.group.state(),
        priority: g.spec.priority,
        effective_priority: config.priority,
        maintenance: g.group.maintenance(),
        preempt: config.preempt,
        advert_interval_ms: config.advert_interval.as_millis() as u64,
        master: g.group.master().map(|(ip, priority, is_self)| admin::MasterStatus {
            address: ip.to_string(),
            priority,
            is_self,
        }),
        vips: config::prefixed(&g.spec.vips),
        mode: g.spec.mode,
        mac: config.mac().to_string(),
        owned: g.owned,
        in_state_s: now.since(g.state_since).as_secs_f64(),
        last_transition: g.last_transition.map(|t| running.transition_event(t).status()),
    }
}

/// What `stats` answers.
pub(super) fn stats(running: &RunningNode, ops: &Operations, listeners: ListenerCounters) -> admin::Stats {
    let mut queues = Vec::new();
    for iface in &running.interfaces {
        for w in &iface.workers {
            let answered = w.answers.read();
            let (replies, rejected) = (answered.named_of_kind("reply"), answered.named_of_kind("rejected"));
            queues.push(queue_stats(iface.name(), w, 0, replies, rejected));
        }
    }
    for bond in &running.bonds {
        for w in &bond.workers {
            // A bond worker's answers are the bond's (see its counters), not one port's.
            for (port, nic) in bond.nic_names().enumerate() {
                queues.push(queue_stats(nic, w, port, BTreeMap::new(), BTreeMap::new()));
            }
        }
    }
    let window = workers(running).flat_map(|w| w.rates.iter().map(|r| r.seconds)).fold(0.0f64, f64::max);
    let groups = running
        .node
        .groups()
        .map(|g| {
            let c = g.group.counters();
            admin::GroupStats {
                name: g.spec.name.clone(),
                family: g.spec.family,
                vrid: g.spec.vrid,
                state: g.group.state(),
                adverts_sent: c.adverts_sent,
                adverts_received: c.adverts_received,
                adverts_rejected: c.named_of_kind("rejected"),
                checksum_forms: c.named_of_kind("checksum"),
                garps_sent: c.garps_sent,
                transitions: c.transitions,
                split_brains: c.split_brains,
            }
        })
        .collect();
    let control = admin::ControlStats {
        inject_failures: running.inject_failures,
        admin_requests: listeners.admin_requests,
        admin_errors: listeners.admin_errors,
        scrapes: listeners.scrapes,
        reloads: ops.reloads,
        reload_failures: ops.reload_failures,
        control_stalls: running.control_stalls,
    };
    let bonds = running.bonds.iter().map(crate::bond::stats).collect();
    let interfaces = running.interfaces.iter().map(interface_stats).collect();
    admin::Stats { rate_window_s: window, queues, groups, bonds, control, interfaces }
}

fn interface_stats(iface: &Interface) -> admin::InterfaceStats {
    // A map that cannot be read shows as no counts rather than zeros.
    let steering = match iface.nic.xdp_counts() {
        Ok(c) => [("to_kernel", c.to_kernel), ("not_owned", c.not_owned), ("lease_expired", c.lease_expired)]
            .into_iter()
            .map(|(outcome, n)| (outcome.to_owned(), n))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    admin::InterfaceStats { port: iface.name().to_owned(), steering, lease_stalls: iface.stalls }
}

fn workers(running: &RunningNode) -> impl Iterator<Item = &RunningWorker> {
    let interfaces = running.interfaces.iter().flat_map(|i| &i.workers);
    interfaces.chain(running.bonds.iter().flat_map(|b| &b.workers))
}

/// One port of a worker as the admin API shows it.
fn queue_stats(
    port_name: &str,
    w: &RunningWorker,
    port: usize,
    replies: BTreeMap<String, u64>,
    rejected: BTreeMap<String, u64>,
) -> admin::QueueStats {
    let c = w.handle.stats[port].read();
    let rates = w.rates[port];
    admin::QueueStats {
        port: port_name.to_owned(),
        queue: w.queue,
        bind_mode: w.bound,
        rx_packets: c.rx_packets,
        rx_bytes: c.rx_bytes,
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        to_control: c.to_control,
        rx_pps: rates.rx_pps,
        tx_pps: rates.tx_pps,
        rx_bps: rates.rx_bps,
        tx_bps: rates.tx_bps,
        drops: DropReason::ALL.iter().map(|r| (r.name().to_owned(), c.drops_for(*r))).collect(),
        replies,
        rejected,
        kernel: c.kernel.named().iter().map(|&(name, n)| (name.to_owned(), n)).collect(),
        tx_kernel_dropped: c.tx_kernel_dropped,
    }
}

/// Samples every worker's rates (once per rate window).
pub(super) fn sample_rates(running: &mut RunningNode) {
    for worker in running.interfaces.iter_mut().flat_map(|i| i.workers.iter_mut()) {
        worker.sample_rates();
    }
    for worker in running.bonds.iter_mut().flat_map(|b| b.workers.iter_mut()) {
        worker.sample_rates();
    }
}

/// Every group's state now, before a shutdown changes them.
pub(super) fn group_states(running: &RunningNode) -> Vec<State> {
    running.node.groups().map(|g| g.group.state()).collect()
}

/// Stops every worker (all at once, then joins them), finishes the notify
/// hooks, and reports on each group (in `final_states`) and queue.
pub(super) fn finish(running: &mut RunningNode, final_states: Vec<State>) -> RunReport {
    let groups = running
        .node
        .groups()
        .zip(final_states)
        .map(|(g, state)| GroupReport {
            name: g.spec.name.clone(),
            vrid: g.spec.vrid,
            family: g.spec.family,
            state,
            counters: g.group.counters(),
        })
        .collect();
    for worker in workers(running) {
        worker.request_stop();
    }
    let mut queues = Vec::new();
    for iface in &mut running.interfaces {
        for worker in &mut iface.workers {
            let Some(frames_held) = worker.join() else { continue };
            queues.push(QueueReport {
                iface: iface.config.name.clone(),
                queue: worker.queue,
                bound: worker.bound,
                stats: worker.handle.stats[0].read(),
                frames_held: frames_held[0],
                answered: worker.answers.read(),
            });
        }
    }
    for bond in &mut running.bonds {
        let names: Vec<String> = bond.nic_names().map(str::to_owned).collect();
        for worker in &mut bond.workers {
            let Some(frames_held) = worker.join() else { continue };
            for (port, name) in names.iter().enumerate() {
                queues.push(QueueReport {
                    iface: name.clone(),
                    queue: worker.queue,
                    bound: worker.bound,
                    stats: worker.handle.stats[port].read(),
                    frames_held: frames_held[port],
                    answered: vipdrift_vmac::ServiceCounters::default(),
                });
            }
        }
    }
    running.notifier.finish();
    running.outbox.extend(running.notifier.failures());
    RunReport { groups, queues, inject_failures: running.inject_failures }
}
