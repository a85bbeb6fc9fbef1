//! One interface of the daemon: its NIC prepared for the groups' VIPs, its
//! workers (one per queue), their frames for the control thread, and its
//! carrier. What the groups on it decide arrives as [`NodeAction`]s, which
//! this module carries out on the workers.

use crate::config::InterfaceConfig;
use crate::error::RuntimeError;
use crate::link::LinkWatch;
use crate::nic::Nic;
use crate::responder::{Responder, ResponderCommand, VipHandler};
use crate::workers::{start_worker, RunningWorker, WorkerInfo, WorkerPlan};
use crossbeam_channel::Receiver;
use mio::Waker;
use std::net::IpAddr;
use std::sync::Arc;
use vipdrift_engine::ControlFrame;
use vipdrift_vmac::Group;
use vipdrift_vrrp::node::{InterfaceInfo, Node};
use vipdrift_vrrp::spec::GroupSpec;
use vipdrift_wire::{Family, MacAddr};

/// One interface. Fields drop in order: the workers stop, then the NIC
/// (its steering program, then its filter memberships).
pub(crate) struct Interface {
    pub(crate) workers: Vec<RunningWorker>,
    pub(crate) nic: Nic,
    pub(crate) config: InterfaceConfig,
    pub(crate) inbox: Vec<Receiver<ControlFrame>>,
    pub(crate) link: LinkWatch,
}

/// What a group needs of its interface's NIC: its virtual MAC (vmac mode),
/// its VIPs and VRRP's Ethernet group for its family.
pub(crate) struct GroupNeeds {
    pub(crate) vmac: Option<MacAddr>,
    pub(crate) vips: Vec<IpAddr>,
    pub(crate) advert_group: MacAddr,
}

impl GroupNeeds {
    pub(crate) fn of(spec: &GroupSpec) -> GroupNeeds {
        GroupNeeds { vmac: spec.virtual_mac(), vips: spec.vip_addresses(), advert_group: Node::advert_group_mac(spec) }
    }
}

impl Interface {
    /// Opens the NIC (steering program, filter).
    pub(crate) fn open(config: &InterfaceConfig) -> Result<Interface, RuntimeError> {
        let nic = Nic::open(&config.name, config.bind, config.whole_nic)?;
        let link = LinkWatch::new(nic.filter());
        Ok(Interface { workers: Vec::new(), nic, config: config.clone(), inbox: Vec::new(), link })
    }

    /// What the node needs to know of it.
    pub(crate) fn info(&self) -> InterfaceInfo {
        InterfaceInfo {
            name: self.config.name.clone(),
            mac: self.nic.mac(),
            ipv4: self.config.primary(Family::Ipv4),
            ipv6: self.config.primary(Family::Ipv6),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// Opens each configured queue's socket and starts its worker, serving
    /// `groups`, with a VIP handler from `make_handler`.
    pub(crate) fn start_workers<V: VipHandler>(
        &mut self,
        groups: &[Group],
        make_handler: &mut dyn FnMut(&WorkerInfo) -> V,
        leave_echo: bool,
        waker: &Arc<Waker>,
    ) -> Result<(), RuntimeError> {
        for (i, &queue) in self.config.queues.clone().iter().enumerate() {
            let port = self.nic.open_port(queue)?;
            let info =
                WorkerInfo { interface: self.config.name.clone(), queue, core: self.config.cores.get(i).copied() };
            let responder = Responder::with_handler(groups.iter().cloned(), make_handler(&info))
                .on_queue(queue)
                .leave_echo_to_handler(leave_echo);
            let plan =
                WorkerPlan { thread_name: format!("vd-{}-q{queue}", self.config.name), idle: self.config.idle, info };
            let (worker, rx) = start_worker(vec![port], responder, plan, waker)?;
            self.workers.push(worker);
            self.inbox.push(rx);
        }
        Ok(())
    }

    /// Prepares the NIC for a group: the virtual MAC, the VIPs, VRRP's group.
    pub(crate) fn install(&mut self, needs: &GroupNeeds) -> Result<(), RuntimeError> {
        if let Some(vmac) = needs.vmac {
            self.nic.add_vmac(vmac)?;
        }
        self.nic.steer_vips(needs.vips.iter().copied())?;
        self.nic.join(needs.advert_group)
    }

    /// Takes back what [`Interface::install`] did for a removed group; what
    /// the interface's other groups still use stays.
    pub(crate) fn uninstall(
        &mut self,
        needs: &GroupNeeds,
        vips_of_others: &[IpAddr],
        vmacs_of_others: &[MacAddr],
    ) -> Result<(), RuntimeError> {
        self.nic.unsteer_vips(&needs.vips, vips_of_others)?;
        if let Some(vmac) = needs.vmac {
            self.nic.remove_vmac(vmac, vmacs_of_others.contains(&vmac))?;
        }
        self.nic.leave(needs.advert_group)
    }

    pub(crate) fn command_all(&self, command: ResponderCommand) {
        for worker in &self.workers {
            worker.command(command.clone());
        }
    }

    /// Queues a frame on one of the interface's workers; false when none took it.
    pub(crate) fn inject(&self, frame: &[u8]) -> bool {
        // Any worker of the interface can send; the first is as good as any.
        self.workers.first().is_some_and(|worker| worker.inject(0, frame))
    }
}
