//! One interface of the daemon: its NIC prepared for the groups' VIPs, its
//! workers (one per queue), their frames for the control thread, and its
//! carrier. What the groups on it decide arrives as [`NodeAction`]s, which
//! this module carries out on the workers.
//!
//! A kernel-delivered group (`deliver = "kernel"`) also holds a slot of the
//! NIC's [`DeliveryGate`]: its owned flag, set while this node is its
//! master. Each worker renews its queue's lease in the same gate and raises
//! its stall flag when it finds it was held up (see [`LeaseKeeper`]).

use crate::config::{Delivery, InterfaceConfig};
use crate::error::RuntimeError;
use crate::link::LinkWatch;
use crate::nic::{iface_error, Nic};
use crate::responder::{Responder, ResponderCommand, VipHandler};
use crate::workers::{start_worker, RunningWorker, WorkerInfo, WorkerPlan};
use crossbeam_channel::Receiver;
use mio::Waker;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vipdrift_engine::{ControlFrame, LeaseKeeper, LeasePolicy, VipDelivery, STEER_MAX_GROUPS};
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
    /// Gate slot `i` belongs to the kernel-delivered group named here (by
    /// name and family, which a reload keeps); `None`: free.
    kernel_slots: Vec<Option<(String, Family)>>,
    /// Each worker's stall flag (see [`LeaseKeeper`]).
    stall_flags: Vec<Arc<AtomicBool>>,
    /// Stalls the workers raised.
    pub(crate) stalls: u64,
}

/// What a group needs of its interface's NIC: its virtual MAC (vmac mode),
/// its VIPs and VRRP's Ethernet group for its family.
pub(crate) struct GroupNeeds {
    pub(crate) vmac: Option<MacAddr>,
    pub(crate) vips: Vec<IpAddr>,
    pub(crate) advert_group: MacAddr,
    /// For a kernel-delivered group, the name and family it holds a gate slot by.
    pub(crate) kernel: Option<(String, Family)>,
}

impl GroupNeeds {
    pub(crate) fn of(spec: &GroupSpec) -> GroupNeeds {
        GroupNeeds {
            vmac: spec.virtual_mac(),
            vips: spec.vip_addresses(),
            advert_group: Node::advert_group_mac(spec),
            kernel: (spec.deliver == Some(Delivery::Kernel)).then(|| (spec.name.clone(), spec.family)),
        }
    }
}

impl Interface {
    /// Opens the NIC (steering program, filter) for `groups`, its groups.
    pub(crate) fn open(config: &InterfaceConfig, groups: &[&GroupSpec]) -> Result<Interface, RuntimeError> {
        let readdresses_vmac = groups.iter().any(|g| g.deliver == Some(Delivery::Kernel) && g.virtual_mac().is_some());
        let nic = Nic::open_for(&config.name, config.bind, config.whole_nic, readdresses_vmac)?;
        let link = LinkWatch::new(nic.filter());
        Ok(Interface {
            workers: Vec::new(),
            nic,
            config: config.clone(),
            inbox: Vec::new(),
            link,
            kernel_slots: Vec::new(),
            stall_flags: Vec::new(),
            stalls: 0,
        })
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
    /// `groups`, with a VIP handler from `make_handler`; each worker keeps
    /// its queue's lease and reports a hold-up longer than `stall_after`.
    pub(crate) fn start_workers<V: VipHandler>(
        &mut self,
        groups: &[Group],
        make_handler: &mut dyn FnMut(&WorkerInfo) -> V,
        leave_echo: bool,
        stall_after: Duration,
        waker: &Arc<Waker>,
    ) -> Result<(), RuntimeError> {
        for (i, &queue) in self.config.queues.clone().iter().enumerate() {
            let port = self.nic.open_port(queue)?;
            let info =
                WorkerInfo { interface: self.config.name.clone(), queue, core: self.config.cores.get(i).copied() };
            let responder = Responder::with_handler(groups.iter().cloned(), make_handler(&info))
                .on_queue(queue)
                .leave_echo_to_handler(leave_echo);
            let policy = LeasePolicy::new(self.config.lease, stall_after);
            let (lease, stalled) = LeaseKeeper::new(self.nic.delivery_gate(), queue, policy);
            let plan = WorkerPlan {
                thread_name: format!("vd-{}-q{queue}", self.config.name),
                idle: self.config.idle,
                info,
                lease: Some(lease),
            };
            let (worker, rx) = start_worker(vec![port], responder, plan, waker)?;
            self.stall_flags.push(stalled);
            self.workers.push(worker);
            self.inbox.push(rx);
        }
        Ok(())
    }

    /// Prepares the NIC for a group: the virtual MAC, the VIPs (with a gate
    /// slot for a kernel-delivered group's), VRRP's group.
    pub(crate) fn install(&mut self, needs: &GroupNeeds) -> Result<(), RuntimeError> {
        if needs.kernel.is_some() && needs.vmac.is_some() && !self.nic.readdresses_to_kernel() {
            return Err(iface_error(
                self.name(),
                "its steering program runs as native XDP on veth, where a frame readdressed from the virtual MAC \
                 never reaches the kernel; restart the daemon to serve a kernel-delivered vmac group here",
            ));
        }
        if let Some(vmac) = needs.vmac {
            self.nic.add_vmac(vmac)?;
        }
        let delivery = match &needs.kernel {
            Some(key) => VipDelivery::Kernel { group: self.take_slot(key)? },
            None => VipDelivery::Engine,
        };
        self.nic.steer_vips(needs.vips.iter().copied(), delivery)?;
        self.nic.join(needs.advert_group)
    }

    /// Steers VIPs a reload added to a running group, the way its others are.
    pub(crate) fn steer_more_vips(&mut self, spec: &GroupSpec, vips: Vec<IpAddr>) -> Result<(), RuntimeError> {
        let delivery = match GroupNeeds::of(spec).kernel {
            Some(key) => match self.slot_of(&key) {
                Some(group) => VipDelivery::Kernel { group },
                None => return Err(iface_error(self.name(), format!("group `{}` holds no delivery slot", spec.name))),
            },
            None => VipDelivery::Engine,
        };
        self.nic.steer_vips(vips, delivery)
    }

    /// The gate slot of a kernel-delivered group.
    fn slot_of(&self, key: &(String, Family)) -> Option<u16> {
        let slot = self.kernel_slots.iter().position(|held| held.as_ref() == Some(key))?;
        u16::try_from(slot).ok()
    }

    /// A free gate slot for `key`, marked not owned.
    fn take_slot(&mut self, key: &(String, Family)) -> Result<u16, RuntimeError> {
        let slot = match self.kernel_slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.kernel_slots.push(None);
                self.kernel_slots.len() - 1
            }
        };
        let group = u16::try_from(slot).ok().filter(|&g| g < STEER_MAX_GROUPS).ok_or_else(|| {
            iface_error(self.name(), format!("more than {STEER_MAX_GROUPS} kernel-delivered groups on one interface"))
        })?;
        self.nic.delivery_gate().set_owned(group, false);
        self.kernel_slots[slot] = Some(key.clone());
        Ok(group)
    }

    /// Lets the kernel receive a kernel-delivered group's traffic (this node
    /// became its master) or stops it; a group delivered to the engine
    /// holds no slot and is left to the workers.
    pub(crate) fn set_kernel_owned(&self, key: &(String, Family), owned: bool) {
        if let Some(group) = self.slot_of(key) {
            self.nic.delivery_gate().set_owned(group, owned);
        }
    }

    /// Whether some worker raised its stall flag.
    pub(crate) fn is_stalled(&self) -> bool {
        self.stall_flags.iter().any(|flag| flag.load(Ordering::Acquire))
    }

    /// Lets every worker renew its lease again, once the stall was handled.
    pub(crate) fn clear_stall(&mut self) {
        for flag in &self.stall_flags {
            if flag.swap(false, Ordering::AcqRel) {
                self.stalls += 1;
            }
        }
    }

    /// Takes back what [`Interface::install`] did for a removed group; what
    /// the interface's other groups still use stays.
    pub(crate) fn uninstall(
        &mut self,
        needs: &GroupNeeds,
        vips_of_others: &[IpAddr],
        vmacs_of_others: &[MacAddr],
    ) -> Result<(), RuntimeError> {
        if let Some(key) = &needs.kernel {
            if let Some(group) = self.slot_of(key) {
                self.nic.delivery_gate().set_owned(group, false);
                self.kernel_slots[usize::from(group)] = None;
            }
        }
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
