//! A reload: re-read the configuration file, let the node diff its groups
//! ([`ReloadPlan`]), and carry the plan out on the NICs and the node.
//! A file that does not load, or that changes an interface or a bond, is
//! refused and nothing changes.

use super::operations::Operations;
use super::running::RunningNode;
use crate::admin::Applied;
use crate::config::{self, Config};
use crate::event::DaemonEvent;
use crate::interface::GroupNeeds;
use crate::nic::iface_error;
use std::net::IpAddr;
use std::path::Path;
use vipdrift_vrrp::node::{GroupId, ReloadPlan};
use vipdrift_vrrp::spec::GroupSpec;
use vipdrift_wire::Time;

/// Re-reads the configuration file and applies what changed; the outcome
/// is counted and reported either way.
pub(super) fn reload(running: &mut RunningNode, ops: &mut Operations, now: Time) -> Result<Applied, String> {
    let result = try_reload(running, ops, now);
    match &result {
        Ok(applied) => {
            ops.reloads += 1;
            ops.last_reload_error = None;
            running.outbox.push(DaemonEvent::Reloaded { changes: applied.changes.clone() });
        }
        Err(error) => {
            ops.reload_failures += 1;
            ops.last_reload_error = Some(error.clone());
            running.outbox.push(DaemonEvent::ReloadRefused { error: error.clone() });
        }
    }
    result
}

/// What keeps a file from being applied live.
fn refusal(path: &Path, old: &Config, new: &Config) -> Option<String> {
    if new.interfaces != old.interfaces {
        let changed: Vec<&str> = new
            .interfaces
            .iter()
            .filter(|i| !old.interfaces.contains(i))
            .map(|i| i.name.as_str())
            .chain(old.interfaces.iter().filter(|i| new.interface(&i.name).is_none()).map(|i| i.name.as_str()))
            .collect();
        return Some(format!(
            "{}: [[interface]] changed ({}); interface changes take a restart, the running configuration stays",
            path.display(),
            changed.join(", ")
        ));
    }
    if new.bonds != old.bonds {
        return Some(format!(
            "{}: [[bond]] changed; bond changes take a restart (its workers own the NICs), the running configuration stays",
            path.display()
        ));
    }
    None
}

fn try_reload(running: &mut RunningNode, ops: &mut Operations, now: Time) -> Result<Applied, String> {
    let Some(path) = &ops.config_path else {
        return Err("this daemon was started without a configuration file to re-read".into());
    };
    let mut new = config::load(path).map_err(|e| e.to_string())?;
    new.resolve_delivery(ops.has_handler)?;
    if let Some(refused) = refusal(path, &ops.config, &new) {
        return Err(refused);
    }
    let mut changes = Vec::new();
    if new.admin_socket != ops.config.admin_socket || new.metrics != ops.config.metrics {
        changes.push("[admin] / [metrics] changed: takes effect at the next restart".to_owned());
        new.admin_socket = ops.config.admin_socket.clone();
        new.metrics = ops.config.metrics;
    }
    let plan = running.node.plan_reload(&new.groups);
    let mut failures = apply(running, &plan, now);
    if let Err(e) = running.reconcile_loopback(&new) {
        failures.push(e);
    }
    if !plan.is_empty() || changes.is_empty() {
        changes.extend(plan.describe());
    }
    ops.config = new;
    if failures.is_empty() {
        Ok(Applied { changes })
    } else {
        Err(format!("reload applied in part: {}; failed: {}", changes.join("; "), failures.join("; ")))
    }
}

/// Carries out a plan: removals first, then changes in place, then
/// additions; returns what failed.
fn apply(running: &mut RunningNode, plan: &ReloadPlan, now: Time) -> Vec<String> {
    let mut failures = Vec::new();
    for &(id, _, _) in &plan.removed {
        if let Err(e) = remove(running, id, now) {
            failures.push(e);
        }
    }
    for (id, spec, _) in &plan.changed {
        if let Err(e) = change(running, *id, spec, now) {
            failures.push(e);
        }
    }
    for spec in &plan.added {
        if let Err(e) = add(running, spec, now) {
            failures.push(e);
        }
    }
    failures
}

fn remove(running: &mut RunningNode, id: GroupId, now: Time) -> Result<(), String> {
    let interface = running.node.group(id).map(|g| g.interface).ok_or("the group went away")?;
    let spec = running.node.remove_group(now, id).map_err(|e| e.to_string())?;
    running.carry_out();
    let others = running.node.vips_of_others(interface, id);
    let vmacs = running.node.vmacs_of_others(interface, id);
    running.interfaces[interface.0].uninstall(&GroupNeeds::of(&spec), &others, &vmacs).map_err(|e| e.to_string())
}

fn change(running: &mut RunningNode, id: GroupId, spec: &GroupSpec, now: Time) -> Result<(), String> {
    let group = running.node.group(id).ok_or("the group went away")?;
    let interface = group.interface;
    let old_vips = group.spec.vip_addresses();
    let new_vips = spec.vip_addresses();
    // New VIPs are steered before the master announces them.
    let added: Vec<IpAddr> = new_vips.iter().copied().filter(|ip| !old_vips.contains(ip)).collect();
    running.interfaces[interface.0].steer_more_vips(spec, added).map_err(|e| e.to_string())?;
    running.node.change_group(now, id, spec.clone()).map_err(|e| e.to_string())?;
    running.carry_out();
    let others = running.node.vips_of_others(interface, id);
    let dropped: Vec<IpAddr> = old_vips.into_iter().filter(|ip| !new_vips.contains(ip)).collect();
    running.interfaces[interface.0].nic.unsteer_vips(&dropped, &others).map_err(|e| e.to_string())
}

fn add(running: &mut RunningNode, spec: &GroupSpec, now: Time) -> Result<(), String> {
    let Some(interface) = running.node.interface_named(&spec.interface) else {
        return Err(iface_error(&spec.interface, "is not one of the daemon's interfaces").to_string());
    };
    if running.node.interface(interface).primary(spec.family).is_none() {
        let missing = format!("group `{}` needs the interface's {} address", spec.name, spec.family);
        return Err(iface_error(&spec.interface, missing).to_string());
    }
    running.interfaces[interface.0].install(&GroupNeeds::of(spec)).map_err(|e| e.to_string())?;
    running.node.add_group(now, spec.clone()).map_err(|e| iface_error(&spec.interface, e).to_string())?;
    running.carry_out();
    Ok(())
}
