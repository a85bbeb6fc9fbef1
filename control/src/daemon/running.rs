//! The node as it runs: its sans-IO [`Node`], the interfaces and bonds whose
//! workers carry out what it decides, and the notify hooks. Everything it
//! reports goes to its outbox, which the shell drains.

use crate::bond::Bond;
use crate::config::{Config, Delivery, GroupSpec, InterfaceConfig};
use crate::daemon::RuntimeError;
use crate::event::{DaemonEvent, TransitionEvent};
use crate::interface::{GroupNeeds, Interface};
use crate::kernel_vips::{ensure_arp_sysctls, LoopbackVips};
use crate::nic::iface_error;
use crate::notify::Notifier;
use crate::responder::{ResponderCommand, VipHandler};
use crate::workers::WorkerInfo;
use mio::Waker;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use vipdrift_vrrp::node::{InterfaceId, Node, NodeAction, NodeEvent, Transition};
use vipdrift_wire::{Family, Time};

/// How long a thread may be held up before a backup may have taken over
/// its groups: three of the shortest advert interval among `groups`
/// (no backup takes over sooner), or three seconds without groups.
fn stall_after<'a>(groups: impl Iterator<Item = &'a GroupSpec>) -> Duration {
    groups.map(|g| g.advert_interval).min().map_or(Duration::from_secs(3), |interval| 3 * interval)
}

/// Frames taken from one worker's channel per wake-up, so a flood cannot
/// starve the timers.
const FRAMES_PER_ROUND: usize = crate::workers::CONTROL_CHANNEL_DEPTH;

/// The node, its interfaces (index = [`InterfaceId`]) and bonds. Fields
/// drop in order: the workers stop before the NICs let go.
pub(super) struct RunningNode {
    /// The kernel-delivered VIPs on `lo`; `None` when rtnetlink could not
    /// be opened and no group needs it. Dropped first: the VIPs leave `lo`
    /// while the steering program still gates their traffic.
    loopback: Option<LoopbackVips>,
    pub(super) interfaces: Vec<Interface>,
    pub(super) bonds: Vec<Bond>,
    pub(super) node: Node,
    pub(super) notifier: Notifier,
    origin: Instant,
    origin_wall: SystemTime,
    pub(super) inject_failures: u64,
    /// What happened since the shell last looked.
    pub(super) outbox: Vec<DaemonEvent>,
    /// When the control loop last ran (see [`RunningNode::poll`]).
    last_poll: Time,
    /// Stalls of the control thread itself.
    pub(super) control_stalls: u64,
}

impl RunningNode {
    /// Prepares every interface of `config` for its groups and starts its
    /// workers, then the bonds. On error, what was started is dropped.
    pub(super) fn open<V: VipHandler>(
        config: &Config,
        make_handler: &mut dyn FnMut(&WorkerInfo) -> V,
        leave_echo: bool,
        waker: &Arc<Waker>,
    ) -> Result<RunningNode, RuntimeError> {
        let notifier =
            Notifier::start().map_err(|e| RuntimeError::Io(format!("cannot start the notify hook runner: {e}")))?;
        let mut running = RunningNode {
            interfaces: Vec::new(),
            bonds: Vec::new(),
            node: Node::new(),
            notifier,
            origin: Instant::now(),
            origin_wall: SystemTime::now(),
            inject_failures: 0,
            outbox: Vec::new(),
            loopback: None,
            last_poll: Time::ZERO,
            control_stalls: 0,
        };
        // A bond's NICs belong to the bond's workers, not to interface workers.
        for interface in config.interfaces.iter().filter(|i| config.bond_of(&i.name).is_none()) {
            let groups: Vec<&GroupSpec> = config.groups.iter().filter(|g| g.interface == interface.name).collect();
            running.open_interface(interface, &groups, make_handler, leave_echo, waker)?;
        }
        for spec in &config.bonds {
            let nics: Vec<InterfaceConfig> =
                spec.interfaces.iter().filter_map(|name| config.interface(name).cloned()).collect();
            running.bonds.push(Bond::open(spec, &nics, waker)?);
        }
        running.prepare_kernel_delivery(config)?;
        Ok(running)
    }

    /// Makes the kernel ready for the kernel-delivered VIPs: the ARP
    /// sysctls on their interfaces, and `lo` holding exactly them (what a
    /// run killed before left there is kept or removed).
    fn prepare_kernel_delivery(&mut self, config: &Config) -> Result<(), RuntimeError> {
        let kernel_groups: Vec<&GroupSpec> =
            config.groups.iter().filter(|g| g.deliver == Some(Delivery::Kernel)).collect();
        for g in kernel_groups.iter().filter(|g| g.family == Family::Ipv4) {
            let changed = ensure_arp_sysctls(&g.interface).map_err(|e| iface_error(&g.interface, e))?;
            for change in changed {
                tracing::info!(change, "raised an ARP sysctl so the kernel never answers ARP for a VIP on lo");
            }
        }
        match LoopbackVips::open() {
            Ok(loopback) => self.loopback = Some(loopback),
            Err(e) if kernel_groups.is_empty() => {
                tracing::debug!(error = %e, "no rtnetlink socket; no group delivers to the kernel");
                return Ok(());
            }
            Err(e) => return Err(RuntimeError::Io(format!("cannot open rtnetlink to put the VIPs on lo: {e}"))),
        }
        self.reconcile_loopback(config).map_err(RuntimeError::Io)
    }

    /// Makes `lo` hold exactly the kernel-delivered VIPs of `config`.
    pub(super) fn reconcile_loopback(&mut self, config: &Config) -> Result<(), String> {
        let wanted: Vec<IpAddr> = config
            .groups
            .iter()
            .filter(|g| g.deliver == Some(Delivery::Kernel))
            .flat_map(GroupSpec::vip_addresses)
            .collect();
        let Some(loopback) = &mut self.loopback else {
            return if wanted.is_empty() { Ok(()) } else { Err("no rtnetlink socket to put the VIPs on lo".into()) };
        };
        let done = loopback.reconcile(&wanted).map_err(|e| format!("cannot put the VIPs on lo: {e}"))?;
        if !done.added.is_empty() || !done.kept.is_empty() || !done.removed.is_empty() {
            tracing::info!(added = ?done.added, kept = ?done.kept, removed = ?done.removed, "kernel-delivered VIPs on lo");
        }
        Ok(())
    }

    /// Takes every kernel-delivered VIP off `lo` (a clean stop).
    pub(super) fn clear_loopback(&mut self) {
        let Some(loopback) = &mut self.loopback else { return };
        match loopback.remove_ours() {
            Ok(removed) if !removed.is_empty() => tracing::info!(?removed, "took the kernel-delivered VIPs off lo"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the kernel-delivered VIPs off lo"),
        }
    }

    fn open_interface<V: VipHandler>(
        &mut self,
        config: &InterfaceConfig,
        groups: &[&GroupSpec],
        make_handler: &mut dyn FnMut(&WorkerInfo) -> V,
        leave_echo: bool,
        waker: &Arc<Waker>,
    ) -> Result<(), RuntimeError> {
        let mut iface = Interface::open(config, groups)?;
        let id = self.node.add_interface(iface.info(), iface.link.up);
        for &spec in groups {
            self.node.add_group(Time::ZERO, spec.clone()).map_err(|e| iface_error(&config.name, e))?;
            iface.install(&GroupNeeds::of(spec))?;
        }
        let stall_after = stall_after(groups.iter().copied());
        iface.start_workers(&self.node.service_groups(id), make_handler, leave_echo, stall_after, waker)?;
        self.interfaces.push(iface);
        Ok(())
    }

    /// Time since the daemon started, the node's clock.
    pub(super) fn now(&self) -> Time {
        Time::from_origin(self.origin.elapsed())
    }

    pub(super) fn uptime(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The wall-clock time of `at` on the node's clock.
    pub(super) fn wall_clock(&self, at: Time) -> SystemTime {
        self.origin_wall + at.since_origin()
    }

    /// Starts the groups and the bonds.
    pub(super) fn start(&mut self, now: Time) {
        self.last_poll = now;
        self.node.start(now);
        self.carry_out();
        for bond in &mut self.bonds {
            bond.start(now);
        }
    }

    /// The earliest time anything has work: a group, a link check, a bond.
    pub(super) fn next_deadline(&self) -> Time {
        let links = self.interfaces.iter().map(|i| i.link.next_check());
        let bonds = self.bonds.iter().map(Bond::next_deadline);
        self.node.poll_timeout().into_iter().chain(links).chain(bonds).min().unwrap_or(Time::NEVER)
    }

    /// Frames the workers handed over, link checks, bonds and timers due at
    /// `now`. Stalls come first: a master whose control thread or worker
    /// was held up long enough for a backup to take over steps down before
    /// it sends anything (see [`Node::handle_stall`]).
    pub(super) fn poll(&mut self, now: Time) {
        self.handle_stalls(now);
        self.receive(now);
        self.check_links(now);
        for bond in &mut self.bonds {
            bond.poll(now, &mut self.outbox);
        }
        self.node.handle_timeout(now);
        self.carry_out();
    }

    /// Steps down the masters of an interface whose worker raised its stall
    /// flag, or of every interface when this thread itself was held up for
    /// longer than a backup waits; then lets the workers renew again.
    fn handle_stalls(&mut self, now: Time) {
        let gap = now.since(self.last_poll);
        self.last_poll = now;
        // Only a master's hold-up matters, and only a master's loop wakes at
        // least once an advert interval: a backup may sleep until its
        // master-down timer.
        let masters = self.node.groups().any(|g| g.owned);
        let control_stalled = masters && gap > stall_after(self.node.groups().map(|g| g.spec));
        if control_stalled {
            self.control_stalls += 1;
        }
        for i in 0..self.interfaces.len() {
            let worker_stalled = self.interfaces[i].is_stalled();
            if control_stalled || worker_stalled {
                let iface = self.interfaces[i].name().to_owned();
                tracing::warn!(
                    iface,
                    gap_ms = gap.as_millis() as u64,
                    worker_stalled,
                    "held up: the masters here step down"
                );
                self.node.handle_stall(now, InterfaceId(i));
                self.carry_out();
            }
            if worker_stalled {
                self.interfaces[i].clear_stall();
            }
        }
    }

    /// The adverts (and anything else) the workers handed to this thread.
    pub(super) fn receive(&mut self, now: Time) {
        for i in 0..self.interfaces.len() {
            for w in 0..self.interfaces[i].inbox.len() {
                for _ in 0..FRAMES_PER_ROUND {
                    let Ok(frame) = self.interfaces[i].inbox[w].try_recv() else { break };
                    self.node.handle_frame(now, InterfaceId(i), frame.bytes());
                    self.carry_out();
                }
            }
        }
    }

    fn check_links(&mut self, now: Time) {
        for i in 0..self.interfaces.len() {
            let iface = &mut self.interfaces[i];
            let due = iface.link.next_check() <= now;
            if due && !self.node.is_deaf(InterfaceId(i)) && iface.nic.program_replaced() {
                let iface = iface.name().to_owned();
                tracing::error!(
                    iface,
                    event = "program_replaced",
                    "another program replaced vipdrift's steering program: the groups on this interface are in \
                     fault and stay there until vipdrift restarts"
                );
                self.node.handle_program_replaced(now, InterfaceId(i));
                self.carry_out();
            }
            let iface = &mut self.interfaces[i];
            let Some(up) = iface.link.check(now, iface.config.link_check, iface.nic.filter()) else { continue };
            self.outbox.push(DaemonEvent::Link { iface: iface.name().to_owned(), up });
            let changed_since = iface.link.changed_since;
            self.node.handle_link(now, InterfaceId(i), up, changed_since);
            self.carry_out();
        }
    }

    /// Carries out what the node decided: frames and ownership first, in
    /// order, then the reports, so nothing slow sits between a takeover's
    /// advert, its ownership change and its GARPs.
    pub(super) fn carry_out(&mut self) {
        while let Some(action) = self.node.poll_action() {
            match action {
                NodeAction::Transmit { interface, frame } => {
                    if !self.interfaces[interface.0].inject(&frame) {
                        self.inject_failures += 1;
                    }
                }
                NodeAction::SetGroup { interface, group } => {
                    self.interfaces[interface.0].command_all(ResponderCommand::SetGroup(group))
                }
                NodeAction::RemoveGroup { interface, group } => {
                    self.interfaces[interface.0].command_all(ResponderCommand::RemoveGroup(group.0))
                }
                NodeAction::SetOwned { interface, group, owned } => {
                    let iface = &self.interfaces[interface.0];
                    if let Some(g) = self.node.group(group) {
                        iface.set_kernel_owned(&(g.spec.name.clone(), g.spec.family), owned);
                    }
                    iface.command_all(ResponderCommand::SetOwned(group.0, owned))
                }
                NodeAction::HandOver { interface, group } => {
                    self.interfaces[interface.0].command_all(ResponderCommand::HandOver(group.0))
                }
            }
        }
        while let Some(NodeEvent::Transition(transition)) = self.node.poll_event() {
            let event = self.transition_event(&transition);
            if let Some(program) = transition.spec.notify.clone() {
                self.notifier.submit(program, event.clone());
            }
            self.outbox.push(DaemonEvent::Transition(event));
        }
        self.outbox.extend(self.notifier.failures());
    }

    /// A node transition as the daemon reports it.
    pub(super) fn transition_event(&self, t: &Transition) -> TransitionEvent {
        TransitionEvent {
            at: self.wall_clock(t.at),
            group: t.spec.name.clone(),
            vrid: t.spec.vrid,
            family: t.spec.family,
            from: t.from,
            to: t.to,
            reason: t.reason,
            elapsed: t.elapsed,
        }
    }

    /// Graceful stop of the groups: every master hands over; returns when
    /// each successor spoke or its hand-over timed out (`wait` sleeps a
    /// little between rounds).
    pub(super) fn hand_over(&mut self, mut wait: impl FnMut()) {
        self.node.shutdown(self.now());
        self.carry_out();
        while self.node.is_handing_over() {
            wait();
            let now = self.now();
            self.receive(now);
            self.node.handle_timeout(now);
            self.carry_out();
        }
    }
}
