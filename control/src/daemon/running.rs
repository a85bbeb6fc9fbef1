//! The node as it runs: its sans-IO [`Node`], the interfaces and bonds whose
//! workers carry out what it decides, and the notify hooks. Everything it
//! reports goes to its outbox, which the shell drains.

use crate::bond::Bond;
use crate::config::{Config, GroupSpec, InterfaceConfig};
use crate::daemon::RuntimeError;
use crate::event::{DaemonEvent, TransitionEvent};
use crate::interface::{GroupNeeds, Interface};
use crate::nic::iface_error;
use crate::notify::Notifier;
use crate::responder::{ResponderCommand, VipHandler};
use crate::workers::WorkerInfo;
use mio::Waker;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use vipdrift_vrrp::node::{InterfaceId, Node, NodeAction, NodeEvent, Transition};
use vipdrift_wire::Time;

/// Frames taken from one worker's channel per wake-up, so a flood cannot
/// starve the timers.
const FRAMES_PER_ROUND: usize = crate::workers::CONTROL_CHANNEL_DEPTH;

/// The node, its interfaces (index = [`InterfaceId`]) and bonds. Fields
/// drop in order: the workers stop before the NICs let go.
pub(super) struct RunningNode {
    pub(super) interfaces: Vec<Interface>,
    pub(super) bonds: Vec<Bond>,
    pub(super) node: Node,
    pub(super) notifier: Notifier,
    origin: Instant,
    origin_wall: SystemTime,
    pub(super) inject_failures: u64,
    /// What happened since the shell last looked.
    pub(super) outbox: Vec<DaemonEvent>,
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
        Ok(running)
    }

    fn open_interface<V: VipHandler>(
        &mut self,
        config: &InterfaceConfig,
        groups: &[&GroupSpec],
        make_handler: &mut dyn FnMut(&WorkerInfo) -> V,
        leave_echo: bool,
        waker: &Arc<Waker>,
    ) -> Result<(), RuntimeError> {
        let mut iface = Interface::open(config)?;
        let id = self.node.add_interface(iface.info(), iface.link.up);
        for &spec in groups {
            self.node.add_group(Time::ZERO, spec.clone()).map_err(|e| iface_error(&config.name, e))?;
            iface.install(&GroupNeeds::of(spec))?;
        }
        iface.start_workers(&self.node.service_groups(id), make_handler, leave_echo, waker)?;
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

    /// Frames the workers handed over, link checks, bonds and timers due at `now`.
    pub(super) fn poll(&mut self, now: Time) {
        self.receive(now);
        self.check_links(now);
        for bond in &mut self.bonds {
            bond.poll(now, &mut self.outbox);
        }
        self.node.handle_timeout(now);
        self.carry_out();
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
                    self.interfaces[interface.0].command_all(ResponderCommand::SetOwned(group.0, owned))
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
