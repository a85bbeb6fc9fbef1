//! One recipe for preparing a NIC for VIPs, shared by the daemon's
//! interfaces, its bonds and `vipdrift serve`: attach the steering program,
//! put the virtual MAC in the NIC's unicast filter and the steering map,
//! steer each VIP and join each IPv6 VIP's solicited-node group (no kernel
//! socket joins it for us), and join VRRP's group for the adverts.
//!
//! The steering maps and the NIC filters hold everything configured from
//! the start, so a backup's share of VIP traffic reaches its workers and is
//! dropped and counted there rather than leaking to the kernel, and a
//! takeover costs no syscall before the first GARP.

use crate::error::RuntimeError;
use std::net::IpAddr;
use vipdrift_engine::{
    AfXdpConfig, AfXdpPort, BindMode, DeliveryGate, NicFilter, Steering, SteeringConfig, SteeringError, VipDelivery,
    XdpAttachMode, XdpCounts,
};
use vipdrift_wire::MacAddr;

pub(crate) fn iface_error(iface: &str, message: impl ToString) -> RuntimeError {
    RuntimeError::Interface { iface: iface.to_owned(), message: message.to_string() }
}

/// A NIC prepared for vipdrift. Fields drop in order: the steering program
/// is detached before the NIC filter memberships go.
pub struct Nic {
    steering: Steering,
    filter: NicFilter,
    mac: MacAddr,
    bind: BindMode,
    /// See [`Nic::readdresses_to_kernel`].
    readdresses: bool,
    /// Held for as long as the NIC is ours; dropped last.
    _lock: NicLock,
}

/// The claim of one vipdrift process on one NIC: an exclusive lock on
/// `/run/vipdrift/nic/NETNS-IFACE.lock` (the network namespace's inode
/// number and the interface's name, so the same name in two namespaces is
/// two NICs), holding the owner's pid. A second daemon, `serve`, `fwd` or
/// `gen` on the NIC finds it taken and refuses before touching anything; the kernel
/// drops the lock when the owner exits, however it exits.
#[derive(Debug)]
pub struct NicLock {
    _file: std::fs::File,
}

/// Where the NIC locks live.
const LOCK_DIR: &str = "/run/vipdrift/nic";

impl NicLock {
    /// Takes the lock of `iface` in this network namespace, or says who has it.
    pub fn take(iface: &str) -> Result<NicLock, RuntimeError> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::MetadataExt;
        let netns = std::fs::metadata("/proc/self/ns/net")
            .map_err(|e| iface_error(iface, format!("cannot identify this network namespace: {e}")))?
            .ino();
        let denied_or = |what: &str, e: std::io::Error| match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                iface_error(iface, format!("not permitted to {what}: run as root (or as the owner of {LOCK_DIR})"))
            }
            _ => iface_error(iface, format!("cannot {what}: {e}")),
        };
        std::fs::create_dir_all(LOCK_DIR).map_err(|e| denied_or(&format!("create {LOCK_DIR}"), e))?;
        let path = format!("{LOCK_DIR}/{netns}-{iface}.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| denied_or(&format!("open its lock {path}"), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                let who = if owner.is_empty() { String::new() } else { format!(" (pid {owner})") };
                return Err(iface_error(
                    iface,
                    format!(
                        "is in use by another vipdrift{who}, which holds {path}: two cannot steer one NIC; \
                         nothing was changed. Stop the other one first"
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(iface_error(iface, format!("cannot lock {path}: {e}")));
            }
        }
        // Best effort: the pid only helps the message of whoever comes second.
        let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(NicLock { _file: file })
    }
}

impl Nic {
    /// Opens the NIC's filter, reads its MAC and attaches the steering
    /// program (in the mode `bind` implies; `whole_nic` steers every frame
    /// to the engine).
    pub fn open(name: &str, bind: BindMode, whole_nic: bool) -> Result<Nic, RuntimeError> {
        Nic::open_for(name, bind, whole_nic, false)
    }

    /// [`Nic::open`] for a NIC where a kernel-delivered group readdresses
    /// frames sent to its virtual MAC (`readdresses_vmac`). veth runs native
    /// XDP on a frame the sending side already marked as meant for another
    /// host (PACKET_OTHERHOST), and keeps that mark after the program
    /// rewrote the destination, so the kernel would drop the frame; generic
    /// XDP classifies the frame again after the program. On veth, then, the
    /// program is attached in generic mode. A NIC whose driver builds the
    /// packet after the program (every hardware driver) needs nothing.
    pub fn open_for(name: &str, bind: BindMode, whole_nic: bool, readdresses_vmac: bool) -> Result<Nic, RuntimeError> {
        let lock = NicLock::take(name)?;
        let filter = NicFilter::open(name).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                iface_error(name, "does not exist in this network namespace (see `ip link`)")
            }
            _ => iface_error(name, e),
        })?;
        let mac = filter.mac().map_err(|e| iface_error(name, format!("cannot read its MAC address: {e}")))?;
        let mut mode = XdpAttachMode::for_bind(bind);
        let native_veth = mode == XdpAttachMode::Native && filter.driver().is_ok_and(|d| d == "veth");
        if readdresses_vmac && native_veth {
            tracing::info!(
                iface = name,
                "veth: the steering program runs as generic XDP so readdressed frames reach the kernel"
            );
            mode = XdpAttachMode::Skb;
        }
        let readdresses = !(native_veth && mode == XdpAttachMode::Native);
        let steering_config = SteeringConfig { iface: name.to_owned(), mode, whole_nic };
        let steering = Steering::attach(&steering_config).map_err(|e| iface_error(name, e))?;
        Ok(Nic { steering, filter, mac, bind, readdresses, _lock: lock })
    }

    /// Whether a frame the program readdresses from a virtual MAC to the
    /// NIC's reaches the kernel (see [`Nic::open_for`]).
    pub(crate) fn readdresses_to_kernel(&self) -> bool {
        self.readdresses
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        self.filter.iface()
    }

    /// The NIC's own MAC.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The mode the steering program is attached in.
    pub fn attach_mode(&self) -> XdpAttachMode {
        self.steering.mode()
    }

    /// Whether another program replaced ours on the interface (the
    /// interface runs a different program, or none). A failed look says no:
    /// a vanished interface shows as a lost carrier.
    pub(crate) fn program_replaced(&self) -> bool {
        match (self.steering.attached_prog_id(), self.steering.prog_id()) {
            (Ok(attached), Ok(ours)) => attached != ours,
            _ => false,
        }
    }

    /// The leases and owned flags that gate kernel delivery.
    pub(crate) fn delivery_gate(&self) -> DeliveryGate {
        self.steering.delivery_gate()
    }

    /// What the steering program dropped or passed to the kernel.
    pub(crate) fn xdp_counts(&self) -> Result<XdpCounts, RuntimeError> {
        self.steering.counts().map_err(|e| self.error(e))
    }

    /// The NIC's filter (carrier, memberships).
    pub(crate) fn filter(&self) -> &NicFilter {
        &self.filter
    }

    fn error(&self, message: impl ToString) -> RuntimeError {
        iface_error(self.name(), message)
    }

    fn steer(&self, result: Result<(), SteeringError>) -> Result<(), RuntimeError> {
        result.map_err(|e| self.error(e))
    }

    /// Opens the AF_XDP socket of one queue and puts it in the steering program's map.
    pub fn open_port(&mut self, queue: u32) -> Result<AfXdpPort, RuntimeError> {
        let mut port_config = AfXdpConfig::new(self.name(), queue);
        port_config.load_default_program = false;
        port_config.bind = self.bind;
        let port = AfXdpPort::open(&port_config).map_err(|e| self.error(format!("queue {queue}: {e}")))?;
        let result = self.steering.add_socket(queue, port.raw_fd());
        self.steer(result)?;
        Ok(port)
    }

    /// Makes the NIC accept frames for `vmac` and steers them to the engine.
    pub fn add_vmac(&mut self, vmac: MacAddr) -> Result<(), RuntimeError> {
        self.filter.add_unicast(vmac).map_err(|e| self.error(e))?;
        let result = self.steering.add_vmac(vmac);
        self.steer(result)
    }

    /// Takes back [`Nic::add_vmac`]: the filter membership (counted per
    /// add), and the steering entry unless another group still uses it.
    pub fn remove_vmac(&mut self, vmac: MacAddr, still_used: bool) -> Result<(), RuntimeError> {
        self.filter.remove_unicast(vmac).map_err(|e| self.error(e))?;
        if still_used {
            return Ok(());
        }
        let result = self.steering.remove_vmac(vmac);
        self.steer(result)
    }

    /// Makes the NIC accept frames for another unicast MAC (a bond's other NICs').
    pub(crate) fn accept_unicast(&self, mac: MacAddr) -> Result<(), RuntimeError> {
        self.filter.add_unicast(mac).map_err(|e| self.error(e))
    }

    /// Joins a multicast group (VRRP's) in the NIC's filter.
    pub fn join(&self, group: MacAddr) -> Result<(), RuntimeError> {
        self.filter.add_multicast(group).map_err(|e| self.error(e))
    }

    /// Leaves a group joined with [`Nic::join`] (memberships are counted per join).
    pub fn leave(&self, group: MacAddr) -> Result<(), RuntimeError> {
        self.filter.remove_multicast(group).map_err(|e| self.error(e))
    }

    /// Steers each VIP's ARP or NS to the engine and its other traffic
    /// where `delivery` says, and joins each IPv6 VIP's solicited-node
    /// group, where neighbour solicitations for it go.
    pub fn steer_vips(
        &mut self,
        vips: impl IntoIterator<Item = IpAddr>,
        delivery: VipDelivery,
    ) -> Result<(), RuntimeError> {
        for vip in vips {
            let result = self.steering.add_vip(vip, delivery);
            self.steer(result)?;
            if let Some(solicited) = solicited_node_mac(vip) {
                self.join(solicited)?;
            }
        }
        Ok(())
    }

    /// Takes back what [`Nic::steer_vips`] did for `vips`: each solicited-node
    /// membership, and each steering entry no other group (in `still_used`)
    /// has.
    pub fn unsteer_vips(&mut self, vips: &[IpAddr], still_used: &[IpAddr]) -> Result<(), RuntimeError> {
        for &vip in vips {
            if let Some(solicited) = solicited_node_mac(vip) {
                self.leave(solicited)?;
            }
            if !still_used.contains(&vip) {
                let result = self.steering.remove_vip(vip);
                self.steer(result)?;
            }
        }
        Ok(())
    }
}

/// The solicited-node multicast MAC of an IPv6 address (33:33:ff + its last 24 bits).
pub fn solicited_node_mac(ip: IpAddr) -> Option<MacAddr> {
    let IpAddr::V6(v6) = ip else { return None };
    let o = v6.octets();
    Some(MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solicited_node_group_takes_the_last_24_bits() {
        let mac = solicited_node_mac("2001:db8::1:2:3:456".parse().unwrap()).unwrap();
        assert_eq!(mac, MacAddr([0x33, 0x33, 0xff, 0x03, 0x04, 0x56]));
        assert_eq!(solicited_node_mac("198.51.100.1".parse().unwrap()), None);
    }
}
