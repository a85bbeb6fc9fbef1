//! A node's VRRP groups together, and the policy around them that the
//! daemon used to decide inline: when a stepping-down master stops
//! answering (hand-over on stop and maintenance), what a reload changes
//! (the diff into unchanged, changed, added and removed groups), how a
//! link change reaches every group on that interface, and how long each
//! failover took.
//!
//! [`Node`] is sans-IO like the rest of the crate. The shell feeds it
//! (`handle_frame`, `handle_link`, `handle_timeout`, the operator's
//! requests) and then drains what it decided: first [`Node::poll_action`]
//! (frames to transmit, ownership for the workers) in order, then
//! [`Node::poll_event`] (transitions to log and report), so nothing slow
//! sits between a takeover's advert, its ownership change and its GARPs.
//!
//! Ownership is the node's to decide. A master that steps down gracefully
//! keeps its VIPs ([`NodeAction::HandOver`]) until its successor's first
//! advert, or a master-down interval and a margin if nobody speaks; the
//! workers end it earlier on their own when the successor's GARP reaches
//! them. A master that loses its link, is preempted or resigns because it
//! is removed gives them up at once.

use crate::advert::{parse_advert, GROUP_MAC_V4, GROUP_MAC_V6};
use crate::group::{Output, VrrpGroup};
use crate::router::{Reason, State};
use crate::spec::GroupSpec;
use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use vipdrift_vmac::Group;
use vipdrift_wire::{Family, MacAddr, Time};

/// Beyond four advert intervals, how long a stopping master waits to hear its successor.
pub const HANDOVER_MARGIN: Duration = Duration::from_millis(20);
/// The longest a stopping master waits for its successor (long advert intervals).
pub const MAX_HANDOVER: Duration = Duration::from_secs(3);

/// An interface of the node, by the order it was added in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceId(pub usize);

/// A group of the node: unique for the node's lifetime (a group removed and
/// added again by a reload gets a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

/// What the node must know of an interface to run groups on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Its name (what [`GroupSpec::interface`] names).
    pub name: String,
    /// Its own MAC.
    pub mac: MacAddr,
    /// This node's IPv4 address on it: the IPv4 advert source.
    pub ipv4: Option<IpAddr>,
    /// This node's IPv6 link-local address on it: the IPv6 advert source.
    pub ipv6: Option<IpAddr>,
}

impl InterfaceInfo {
    /// The advert source of `family`.
    pub fn primary(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAction {
    /// Transmit a frame (an advert, a GARP) out of the interface.
    Transmit {
        /// Where.
        interface: InterfaceId,
        /// The Ethernet frame.
        frame: Vec<u8>,
    },
    /// Give every worker of the interface this view of a group (added, or
    /// its VIPs changed): before the group announces new VIPs.
    SetGroup {
        /// Where.
        interface: InterfaceId,
        /// The workers' view: VIPs, MAC, ownership.
        group: Group,
    },
    /// The workers forget a removed group.
    RemoveGroup {
        /// Where.
        interface: InterfaceId,
        /// Which.
        group: GroupId,
    },
    /// The workers start (or stop) answering for a group's VIPs, at once.
    SetOwned {
        /// Where.
        interface: InterfaceId,
        /// Which.
        group: GroupId,
        /// Answer or not.
        owned: bool,
    },
    /// The workers keep answering for a group's VIPs only until its
    /// successor's announcement reaches them.
    HandOver {
        /// Where.
        interface: InterfaceId,
        /// Which.
        group: GroupId,
    },
}

/// A state change and how long its trigger took to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The group.
    pub group: GroupId,
    /// Its definition when it changed state (a removed group's last one).
    pub spec: Arc<GroupSpec>,
    /// When.
    pub at: Time,
    /// Old state.
    pub from: State,
    /// New state.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// Time since the triggering event: for `master_down`, since the last
    /// advert heard (or since the group started); for link changes, since
    /// the last check that still saw the old link state; otherwise 0 (acted
    /// on receipt).
    pub elapsed: Duration,
}

/// What the shell reports, after it has carried out the actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A group changed state.
    Transition(Transition),
}

/// Why the node refused a group.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The group names an interface the node does not have.
    #[error("group `{group}`: interface `{interface}` is not one of the node's interfaces")]
    NoSuchInterface {
        /// The group.
        group: String,
        /// The interface it names.
        interface: String,
    },
    /// The interface has no address of the group's family to advertise from.
    #[error("group `{group}` needs the interface's {family} address")]
    NoAddress {
        /// The group.
        group: String,
        /// Its family.
        family: Family,
    },
    /// No group by that id (removed meanwhile).
    #[error("no group with id {0}")]
    NoSuchGroup(u32),
}

/// A stepped-down master that keeps answering for its VIPs until its
/// successor speaks, so clients lose nothing while the backup waits out its
/// skew time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HandOver {
    since: Time,
    deadline: Time,
}

/// One link's state as the node last heard it.
#[derive(Clone, Debug)]
struct Link {
    info: InterfaceInfo,
    up: bool,
    /// When the link was last seen in its old state, before its latest change.
    changed_since: Time,
    /// The steering program was replaced: the groups here stay in fault
    /// whatever the carrier does.
    deaf: bool,
}

#[derive(Clone, Debug)]
struct RunningGroup {
    id: GroupId,
    interface: InterfaceId,
    spec: Arc<GroupSpec>,
    group: VrrpGroup,
    started: Time,
    owned: bool,
    state_since: Time,
    last_transition: Option<Transition>,
    handing_over: Option<HandOver>,
}

impl RunningGroup {
    fn label(&self) -> String {
        format!("{} ({})", self.spec.name, self.spec.family.name())
    }

    fn view(&self) -> Group {
        Group { id: self.id.0, mac: self.group.config().mac(), vips: self.spec.vip_addresses(), owned: self.owned }
    }
}

/// A running group as the shell sees it (status, stats, NIC bookkeeping).
#[derive(Clone, Debug)]
pub struct GroupView<'a> {
    /// Its id.
    pub id: GroupId,
    /// Its interface.
    pub interface: InterfaceId,
    /// Its definition as last applied.
    pub spec: &'a GroupSpec,
    /// Its state machine (state, master, counters, effective configuration).
    pub group: &'a VrrpGroup,
    /// Whether the workers answer for its VIPs now (as the node told them).
    pub owned: bool,
    /// When it entered its current state.
    pub state_since: Time,
    /// Its last transition.
    pub last_transition: Option<&'a Transition>,
}

impl<'a> From<&'a RunningGroup> for GroupView<'a> {
    fn from(g: &'a RunningGroup) -> GroupView<'a> {
        GroupView {
            id: g.id,
            interface: g.interface,
            spec: &g.spec,
            group: &g.group,
            owned: g.owned,
            state_since: g.state_since,
            last_transition: g.last_transition.as_ref(),
        }
    }
}

/// How a new configuration's groups relate to the running ones, matched by
/// (name, family). A change of interface, VRID or address mode makes a
/// different group on the wire: a removal and an addition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Running groups the new configuration keeps as they are.
    pub unchanged: Vec<GroupId>,
    /// Running groups reconfigured in place, with their new definition and
    /// what changed.
    pub changed: Vec<(GroupId, GroupSpec, String)>,
    /// New groups, in configuration order.
    pub added: Vec<GroupSpec>,
    /// Running groups that go, with their label and VRID.
    pub removed: Vec<(GroupId, String, u8)>,
}

impl ReloadPlan {
    /// One line per change, as a reload reports them: removals, changes,
    /// additions; "nothing changed" when there is none.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.removed.iter().map(|(_, label, vrid)| format!("removed {label} (vrid {vrid})")).collect();
        lines.extend(
            self.changed
                .iter()
                .map(|(_, spec, what)| format!("changed {} ({}): {what}", spec.name, spec.family.name())),
        );
        lines.extend(self.added.iter().map(|s| format!("added {} ({}, vrid {})", s.name, s.family.name(), s.vrid)));
        if lines.is_empty() {
            lines.push("nothing changed".to_owned());
        }
        lines
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// A node's groups on its interfaces, and the policy around them.
#[derive(Debug, Default)]
pub struct Node {
    links: Vec<Link>,
    groups: Vec<RunningGroup>,
    next_id: u32,
    started: bool,
    actions: VecDeque<NodeAction>,
    events: VecDeque<NodeEvent>,
    outputs: Vec<Output>,
}

impl Node {
    /// A node with no interface and no group.
    pub fn new() -> Node {
        Node::default()
    }

    /// Adds an interface whose carrier is `link_up` now.
    pub fn add_interface(&mut self, info: InterfaceInfo, link_up: bool) -> InterfaceId {
        self.links.push(Link { info, up: link_up, changed_since: Time::ZERO, deaf: false });
        InterfaceId(self.links.len() - 1)
    }

    /// What the node knows of an interface.
    pub fn interface(&self, id: InterfaceId) -> &InterfaceInfo {
        &self.links[id.0].info
    }

    /// The interface named `name`.
    pub fn interface_named(&self, name: &str) -> Option<InterfaceId> {
        self.links.iter().position(|l| l.info.name == name).map(InterfaceId)
    }

    /// The Ethernet groups an interface's NIC must accept for `spec` to hear
    /// its peers' adverts.
    pub fn advert_group_mac(spec: &GroupSpec) -> MacAddr {
        match spec.family {
            Family::Ipv4 => GROUP_MAC_V4,
            Family::Ipv6 => GROUP_MAC_V6,
        }
    }

    /// Adds a group. Before [`Node::start`] it is only recorded (the shell
    /// builds its workers' views from [`Node::service_groups`]); after it,
    /// the workers are told ([`NodeAction::SetGroup`]) and the group starts
    /// as a backup at once.
    pub fn add_group(&mut self, now: Time, spec: GroupSpec) -> Result<GroupId, NodeError> {
        let interface = self.interface_named(&spec.interface).ok_or_else(|| NodeError::NoSuchInterface {
            group: spec.name.clone(),
            interface: spec.interface.clone(),
        })?;
        let info = &self.links[interface.0].info;
        let primary = info
            .primary(spec.family)
            .ok_or_else(|| NodeError::NoAddress { group: spec.name.clone(), family: spec.family })?;
        let group = VrrpGroup::new(spec.group_config(primary, info.mac));
        let id = GroupId(self.next_id);
        self.next_id += 1;
        self.groups.push(RunningGroup {
            id,
            interface,
            spec: Arc::new(spec),
            group,
            started: now,
            owned: false,
            state_since: now,
            last_transition: None,
            handing_over: None,
        });
        if self.started {
            let g = self.groups.len() - 1;
            let view = self.groups[g].view();
            self.actions.push_back(NodeAction::SetGroup { interface, group: view });
            self.start_group(g, now);
        }
        Ok(id)
    }

    /// The workers' views of the interface's groups, for workers that start now.
    pub fn service_groups(&self, interface: InterfaceId) -> Vec<Group> {
        self.groups.iter().filter(|g| g.interface == interface).map(RunningGroup::view).collect()
    }

    /// Starts every group (RFC 9568 Startup); a group whose interface has no
    /// link goes to fault at once. Call once, when the workers run.
    pub fn start(&mut self, now: Time) {
        self.started = true;
        for g in 0..self.groups.len() {
            self.start_group(g, now);
        }
    }

    fn start_group(&mut self, g: usize, now: Time) {
        self.groups[g].started = now;
        self.groups[g].state_since = now;
        self.groups[g].group.start(now, &mut self.outputs);
        self.dispatch(g, now);
        if !self.links[self.groups[g].interface.0].up {
            self.groups[g].group.link_down(now, &mut self.outputs);
            self.dispatch(g, now);
        }
    }

    /// A frame the interface's workers handed over (an advert, perhaps).
    /// It is parsed once and offered to every group of the interface.
    pub fn handle_frame(&mut self, now: Time, interface: InterfaceId, frame: &[u8]) {
        let parsed = parse_advert(frame);
        for g in 0..self.groups.len() {
            if self.groups[g].interface == interface {
                self.groups[g].group.handle_advert(now, &parsed, &mut self.outputs);
                self.dispatch(g, now);
            }
        }
        self.finish_handovers(now);
    }

    /// The interface's carrier changed to `up`; `changed_since` is when it
    /// was last seen in its old state (the start of the outage or return).
    pub fn handle_link(&mut self, now: Time, interface: InterfaceId, up: bool, changed_since: Time) {
        let link = &mut self.links[interface.0];
        link.up = up;
        link.changed_since = changed_since;
        if link.deaf {
            return;
        }
        for g in 0..self.groups.len() {
            if self.groups[g].interface == interface {
                if up {
                    self.groups[g].group.link_up(now, &mut self.outputs);
                } else {
                    self.groups[g].group.link_down(now, &mut self.outputs);
                }
                self.dispatch(g, now);
            }
        }
    }

    /// Another program replaced this node's steering program on
    /// `interface`: its frames no longer reach the node, so every group
    /// there goes to fault (reason `program_replaced`) and stays there,
    /// whatever the carrier does, until the node is restarted. Never
    /// advertise while deaf.
    pub fn handle_program_replaced(&mut self, now: Time, interface: InterfaceId) {
        self.links[interface.0].deaf = true;
        for g in 0..self.groups.len() {
            if self.groups[g].interface == interface {
                self.groups[g].group.program_replaced(now, &mut self.outputs);
                self.dispatch(g, now);
            }
        }
    }

    /// Whether [`Node::handle_program_replaced`] was called for `interface`.
    pub fn is_deaf(&self, interface: InterfaceId) -> bool {
        self.links.get(interface.0).is_some_and(|l| l.deaf)
    }

    /// A worker of `interface` was held up long enough that a backup may
    /// have taken over (its stall flag): every master of the interface steps
    /// down at once and owns nothing until it wins the election again.
    /// Call it as soon as the flag is seen, before clearing the flag.
    pub fn handle_stall(&mut self, now: Time, interface: InterfaceId) {
        for g in 0..self.groups.len() {
            if self.groups[g].interface == interface {
                self.groups[g].group.stalled(now, &mut self.outputs);
                self.dispatch(g, now);
            }
        }
    }

    /// Runs what is due at `now`: group timers and hand-over deadlines.
    pub fn handle_timeout(&mut self, now: Time) {
        for g in 0..self.groups.len() {
            if self.groups[g].group.poll_timeout().is_some_and(|t| t <= now) {
                self.groups[g].group.handle_timeout(now, &mut self.outputs);
                self.dispatch(g, now);
            }
        }
        self.finish_handovers(now);
    }

    /// When the node next needs [`Node::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        let groups = self.groups.iter().filter_map(|g| g.group.poll_timeout());
        let handovers = self.groups.iter().filter_map(|g| g.handing_over.map(|h| h.deadline));
        groups.chain(handovers).min()
    }

    /// The next thing to carry out. Call after every `handle_*`, `set_*`,
    /// `start`, `shutdown` and reload call, until it returns `None`, and
    /// carry the actions out in order; then drain [`Node::poll_event`].
    pub fn poll_action(&mut self) -> Option<NodeAction> {
        self.actions.pop_front()
    }

    /// The next thing to report. Call after [`Node::poll_action`] returned
    /// `None`, until this returns `None`.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// Graceful stop: every group shuts down (a master sends its priority-0
    /// advert) and every master hands over. Keep feeding frames and timeouts
    /// while [`Node::is_handing_over`].
    pub fn shutdown(&mut self, now: Time) {
        for g in 0..self.groups.len() {
            let was_master = self.groups[g].group.state() == State::Master;
            self.groups[g].group.shutdown(now, &mut self.outputs);
            if was_master {
                self.keep_until_taken_over(g, now);
            }
            self.dispatch(g, now);
        }
    }

    /// True while a stepped-down master still answers for its VIPs.
    pub fn is_handing_over(&self) -> bool {
        self.groups.iter().any(|g| g.handing_over.is_some())
    }

    /// Every group, in the order they were added.
    pub fn groups(&self) -> impl Iterator<Item = GroupView<'_>> {
        self.groups.iter().map(GroupView::from)
    }

    /// One group.
    pub fn group(&self, id: GroupId) -> Option<GroupView<'_>> {
        self.groups.iter().find(|g| g.id == id).map(GroupView::from)
    }

    /// The VIPs of the interface's other groups than `except`: what a
    /// removed or changed group's VIP steering must leave in place.
    pub fn vips_of_others(&self, interface: InterfaceId, except: GroupId) -> Vec<IpAddr> {
        self.groups
            .iter()
            .filter(|g| g.interface == interface && g.id != except)
            .flat_map(|g| g.spec.vip_addresses())
            .collect()
    }

    /// The virtual MACs of the interface's groups other than `except`.
    pub fn vmacs_of_others(&self, interface: InterfaceId, except: GroupId) -> Vec<MacAddr> {
        self.groups
            .iter()
            .filter(|g| g.interface == interface && g.id != except)
            .filter_map(|g| g.spec.virtual_mac())
            .collect()
    }

    fn named(&self, name: &str) -> Result<Vec<usize>, String> {
        let found: Vec<usize> = (0..self.groups.len()).filter(|&g| self.groups[g].spec.name == name).collect();
        if found.is_empty() {
            let mut names: Vec<&str> = self.groups.iter().map(|g| g.spec.name.as_str()).collect();
            names.dedup();
            return Err(format!("no group named {name:?}; the groups are: {}", names.join(", ")));
        }
        Ok(found)
    }

    /// Maintenance on: a master hands over (priority-0 advert, VIPs kept
    /// until its successor speaks) and the group stays backup; off: back in
    /// the election. Both families of a mixed-family group. Returns one line
    /// per group saying what happened.
    pub fn set_maintenance(&mut self, now: Time, name: &str, on: bool) -> Result<Vec<String>, String> {
        let mut changes = Vec::new();
        for g in self.named(name)? {
            let label = self.groups[g].label();
            if self.groups[g].group.maintenance() == on {
                changes.push(format!("{label}: maintenance already {}", if on { "on" } else { "off" }));
                continue;
            }
            let was_master = self.groups[g].group.state() == State::Master;
            self.groups[g].group.set_maintenance(now, on, &mut self.outputs);
            if was_master && on {
                self.keep_until_taken_over(g, now);
                changes.push(format!("{label}: maintenance on; was master, handing over (priority-0 advert sent)"));
            } else if on {
                changes.push(format!("{label}: maintenance on; stays backup"));
            } else {
                changes.push(format!("{label}: maintenance off; back in the election"));
            }
            self.dispatch(g, now);
        }
        Ok(changes)
    }

    /// Sets a group's priority (1..=254) until the next reload; the address
    /// owner's (255) is fixed. Returns one line per group.
    pub fn set_priority(&mut self, now: Time, name: &str, priority: u8) -> Result<Vec<String>, String> {
        if !(1..=254).contains(&priority) {
            return Err(format!("priority {priority} is out of range; expected 1..=254 (255 is the address owner's)"));
        }
        let found = self.named(name)?;
        if let Some(&g) = found.iter().find(|&&g| self.groups[g].spec.priority == 255) {
            return Err(format!(
                "{} is the address owner (priority 255 in the configuration); its priority is fixed",
                self.groups[g].label()
            ));
        }
        let mut changes = Vec::new();
        for g in found {
            let old = self.groups[g].group.config().priority;
            self.groups[g].group.set_priority(now, priority, &mut self.outputs);
            changes.push(format!("{}: priority {old} -> {priority}", self.groups[g].label()));
            self.dispatch(g, now);
        }
        Ok(changes)
    }

    /// How `new` (a configuration's groups) relates to the running groups.
    pub fn plan_reload(&self, new: &[GroupSpec]) -> ReloadPlan {
        let mut plan = ReloadPlan::default();
        for g in &self.groups {
            match new.iter().find(|n| n.key() == g.spec.key()) {
                Some(n) if n.same_identity(&g.spec) && *n == *g.spec => plan.unchanged.push(g.id),
                Some(n) if n.same_identity(&g.spec) => {
                    plan.changed.push((g.id, n.clone(), g.spec.describe_change(n)));
                }
                _ => plan.removed.push((g.id, g.label(), g.spec.vrid)),
            }
        }
        let kept =
            |spec: &GroupSpec| self.groups.iter().any(|g| g.spec.key() == spec.key() && g.spec.same_identity(spec));
        plan.added = new.iter().filter(|n| !kept(n)).cloned().collect();
        plan
    }

    /// Removes a group: it resigns (priority 0: the backup takes over after
    /// its skew time) and stops answering at once, since it has no future
    /// here. Returns its last definition.
    pub fn remove_group(&mut self, now: Time, id: GroupId) -> Result<GroupSpec, NodeError> {
        let g = self.index(id)?;
        self.groups[g].group.shutdown(now, &mut self.outputs);
        self.dispatch(g, now);
        if self.groups[g].owned {
            self.set_owned(g, false);
        }
        let removed = self.groups.remove(g);
        self.actions.push_back(NodeAction::RemoveGroup { interface: removed.interface, group: removed.id });
        Ok(Arc::unwrap_or_clone(removed.spec))
    }

    /// Reconfigures a running group in place, keeping its state: the
    /// workers learn the new VIPs before a master announces them.
    /// `spec` must keep the group's identity (see [`ReloadPlan`]).
    pub fn change_group(&mut self, now: Time, id: GroupId, spec: GroupSpec) -> Result<(), NodeError> {
        let g = self.index(id)?;
        let config = spec.group_config(self.groups[g].group.config().primary, self.interface_mac(g));
        self.groups[g].spec = Arc::new(spec);
        let view = self.groups[g].view();
        self.actions.push_back(NodeAction::SetGroup { interface: self.groups[g].interface, group: view });
        self.groups[g].group.reconfigure(now, config, &mut self.outputs);
        self.dispatch(g, now);
        Ok(())
    }

    fn interface_mac(&self, g: usize) -> MacAddr {
        self.links[self.groups[g].interface.0].info.mac
    }

    fn index(&self, id: GroupId) -> Result<usize, NodeError> {
        self.groups.iter().position(|g| g.id == id).ok_or(NodeError::NoSuchGroup(id.0))
    }

    /// A master just stepped down (its outputs pending): it keeps its VIPs
    /// until its successor's first advert, or a master-down interval and a
    /// margin if none speaks.
    fn keep_until_taken_over(&mut self, g: usize, now: Time) {
        self.outputs.retain(|o| *o != Output::Own(false));
        let interval = self.groups[g].group.config().advert_interval;
        let patience = (4 * interval + HANDOVER_MARGIN).min(MAX_HANDOVER);
        self.groups[g].handing_over = Some(HandOver { since: now, deadline: now.after(patience) });
        // The workers stop on their own when the successor's GARP arrives,
        // before this node has even heard its advert.
        let group = &self.groups[g];
        self.actions.push_back(NodeAction::HandOver { interface: group.interface, group: group.id });
    }

    fn finish_handovers(&mut self, now: Time) {
        for g in 0..self.groups.len() {
            let Some(hand_over) = self.groups[g].handing_over else { continue };
            let taken_over = self.groups[g].group.last_advert_heard().is_some_and(|t| t > hand_over.since);
            if taken_over || now >= hand_over.deadline {
                self.groups[g].handing_over = None;
                self.set_owned(g, false);
            }
        }
    }

    fn set_owned(&mut self, g: usize, owned: bool) {
        let group = &mut self.groups[g];
        group.owned = owned;
        self.actions.push_back(NodeAction::SetOwned { interface: group.interface, group: group.id, owned });
    }

    /// Turns a group's outputs into actions (frames and ownership, in order)
    /// and events (transitions, after them).
    fn dispatch(&mut self, g: usize, now: Time) {
        let interface = self.groups[g].interface;
        let mut outputs = std::mem::take(&mut self.outputs);
        for output in outputs.drain(..) {
            match output {
                Output::Frame(frame) => self.actions.push_back(NodeAction::Transmit { interface, frame }),
                Output::Own(owned) => {
                    self.groups[g].handing_over = None;
                    self.set_owned(g, owned);
                }
                Output::Transition { from, to, reason } => {
                    let group = &self.groups[g];
                    let since = match reason {
                        Reason::MasterDown => group.group.last_advert_heard().unwrap_or(group.started),
                        Reason::LinkDown | Reason::LinkUp => self.links[interface.0].changed_since,
                        _ => now,
                    };
                    let transition = Transition {
                        group: group.id,
                        spec: group.spec.clone(),
                        at: now,
                        from,
                        to,
                        reason,
                        elapsed: now.since(since),
                    };
                    let group = &mut self.groups[g];
                    group.state_since = now;
                    group.last_transition = Some(transition.clone());
                    self.events.push_back(NodeEvent::Transition(transition));
                }
            }
        }
        self.outputs = outputs;
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
