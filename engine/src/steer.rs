//! The engine's own XDP steering program (`bpf/steer.c`), which replaces
//! libxdp's redirect-everything default: it sends to a queue's AF_XDP socket
//! only what the engine serves (frames to owned virtual MACs, ARP and IPv6
//! Neighbor Solicitations whose target is a VIP, VRRP) and passes the rest
//! to the kernel, so SSH and the node's own addresses keep working on the
//! same NIC. With `whole_nic` it redirects everything.
//!
//! Pair it with sockets opened with
//! [`AfXdpConfig::load_default_program`](crate::AfXdpConfig) off, bound in
//! the mode that matches the attach mode ([`XdpAttachMode::Native`] with
//! [`BindMode::Copy`](crate::BindMode) or zero-copy, [`XdpAttachMode::Skb`]
//! with [`BindMode::Skb`](crate::BindMode)), and put each socket in the
//! program's map with [`Steering::add_socket`].
//!
//! IP traffic to a VIP goes to the engine, or, for a VIP added with
//! [`VipDelivery::Kernel`], to the kernel while its group is owned and the
//! receiving queue's lease is fresh ([`DeliveryGate`]); the program then
//! drops and counts it otherwise ([`XdpCounts`]).
//!
//! The program is attached through netlink to an interface of the calling
//! thread's network namespace; a [`Steering`] must be dropped in that same
//! namespace for its detach to find the interface.

use crate::sys::bpf::{self, Embedded, LoadError, LoadedObject, MappedArray};
use crate::sys::nic::{ifindex, NicFilter};
use crate::MacAddr;
use std::ffi::{c_int, CStr};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static STEER_OBJ: &Embedded<[u8]> = &Embedded(*include_bytes!(concat!(env!("OUT_DIR"), "/steer.o")));

/// The program's function name in `bpf/steer.c`.
const PROG_NAME: &CStr = c"vipdrift_steer";
/// The object name libbpf shows in its messages.
const OBJ_NAME: &CStr = c"vipdrift_steer";
/// Entries of the `xsks` map: the highest queue index plus one.
pub const STEER_MAX_QUEUES: u32 = 64;
/// Groups whose ownership the program can hold (`MAX_GROUPS` in `bpf/steer.c`).
pub const STEER_MAX_GROUPS: u16 = 256;
/// Entries of the `lease` map: queue leases, then group owned flags.
const LEASE_ENTRIES: usize = STEER_MAX_QUEUES as usize + STEER_MAX_GROUPS as usize;

/// Where IP traffic to a VIP goes (ARP and Neighbor Solicitations for it
/// always go to the engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VipDelivery {
    /// To the engine's sockets.
    Engine,
    /// To the kernel (the VIP is then a local address there), while the
    /// group `group` (below [`STEER_MAX_GROUPS`]) is owned and the
    /// receiving queue's lease is fresh; see [`DeliveryGate`].
    Kernel {
        /// The group's index in the gate.
        group: u16,
    },
}

impl VipDelivery {
    /// The `struct vip_entry` of `bpf/steer.c`: deliver, then group, each a u32.
    fn entry(self) -> [u8; 8] {
        let (deliver, group) = match self {
            VipDelivery::Engine => (0u32, 0u32),
            VipDelivery::Kernel { group } => (1, u32::from(group)),
        };
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&deliver.to_ne_bytes());
        entry[4..].copy_from_slice(&group.to_ne_bytes());
        entry
    }
}

/// The memory the steering program reads to decide kernel delivery, shared
/// without syscalls: each queue's lease, renewed by the worker that serves
/// it, and each group's owned flag. Cheap to clone; every clone is the same
/// memory. It outlives the [`Steering`] it came from (and the process: the
/// program keeps the map, and a lease in the past delivers nothing).
#[derive(Clone, Debug)]
pub struct DeliveryGate {
    values: Arc<MappedArray>,
}

impl DeliveryGate {
    /// Lets the kernel receive `queue`'s VIP traffic until `until_ns` on
    /// the CLOCK_MONOTONIC clock ([`monotonic_ns`]); a queue past the last
    /// one the map holds is ignored.
    pub fn renew(&self, queue: u32, until_ns: u64) {
        if let Some(slot) = self.lease_slot(queue) {
            slot.store(until_ns, Ordering::Release);
        }
    }

    /// Until when `queue`'s lease runs (0: never renewed).
    pub fn lease_until(&self, queue: u32) -> u64 {
        self.lease_slot(queue).map_or(0, |slot| slot.load(Ordering::Acquire))
    }

    /// Marks group `group` owned (this node is its master) or not.
    pub fn set_owned(&self, group: u16, owned: bool) {
        if let Some(slot) = self.owned_slot(group) {
            slot.store(u64::from(owned), Ordering::Release);
        }
    }

    /// Whether group `group` is marked owned.
    pub fn is_owned(&self, group: u16) -> bool {
        self.owned_slot(group).is_some_and(|slot| slot.load(Ordering::Acquire) != 0)
    }

    fn lease_slot(&self, queue: u32) -> Option<&AtomicU64> {
        (queue < STEER_MAX_QUEUES).then(|| &self.values.values()[queue as usize])
    }

    fn owned_slot(&self, group: u16) -> Option<&AtomicU64> {
        (group < STEER_MAX_GROUPS).then(|| &self.values.values()[STEER_MAX_QUEUES as usize + usize::from(group)])
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock the steering program compares
/// leases with (`bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    crate::sys::monotonic_ns()
}

/// What the steering program itself dropped or passed to the kernel,
/// summed over CPUs since it was attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpCounts {
    /// Kernel-delivered VIP traffic dropped because its group is not owned here.
    pub not_owned: u64,
    /// Kernel-delivered VIP traffic dropped because the queue's lease had lapsed.
    pub lease_expired: u64,
    /// VIP traffic passed to the kernel.
    pub to_kernel: u64,
}

/// Where the XDP program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XdpAttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`): fast, needs driver support
    /// (veth has it). Bind sockets in copy or zero-copy mode.
    #[default]
    Native,
    /// Generic XDP on the skb (`XDP_FLAGS_SKB_MODE`): works everywhere,
    /// slowest. Bind sockets in skb mode.
    Skb,
}

impl XdpAttachMode {
    /// Where the program must run for sockets bound in `bind` mode: skb
    /// sockets need generic XDP, every other mode the driver's.
    pub fn for_bind(bind: crate::BindMode) -> XdpAttachMode {
        if bind == crate::BindMode::Skb {
            XdpAttachMode::Skb
        } else {
            XdpAttachMode::Native
        }
    }

    /// The `XDP_FLAGS_*` mode flag.
    fn flags(self) -> u32 {
        match self {
            XdpAttachMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpAttachMode::Skb => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }

    /// The other mode, which the kernel refuses to have active at the same time.
    fn other(self) -> XdpAttachMode {
        match self {
            XdpAttachMode::Native => XdpAttachMode::Skb,
            XdpAttachMode::Skb => XdpAttachMode::Native,
        }
    }
}

/// What to attach the steering program to, and how.
#[derive(Clone, Debug)]
pub struct SteeringConfig {
    /// Interface name (in the calling thread's network namespace).
    pub iface: String,
    /// Native (driver) or generic (skb) XDP.
    pub mode: XdpAttachMode,
    /// Redirect every frame to the sockets, not only the engine's own.
    pub whole_nic: bool,
}

impl SteeringConfig {
    /// Native mode on `iface`, steering only the engine's own frames.
    pub fn new(iface: &str) -> SteeringConfig {
        SteeringConfig { iface: iface.to_owned(), mode: XdpAttachMode::Native, whole_nic: false }
    }
}

/// Why the steering program could not be attached or updated.
#[derive(Debug, thiserror::Error)]
pub enum SteeringError {
    /// No such interface in this network namespace.
    #[error("interface `{0}` does not exist in this network namespace (see `ip link`)")]
    NoSuchInterface(String),
    /// The process lacks the privileges.
    #[error("not permitted to load or attach the XDP steering program: needs root, or CAP_BPF and CAP_NET_ADMIN")]
    NotPermitted,
    /// The object could not be opened, or the kernel refused the program.
    #[error("cannot load the XDP steering program: {0}")]
    Load(String),
    /// The program could not be attached to the interface.
    #[error("cannot attach the XDP steering program: {0}")]
    Attach(String),
    /// A map update failed.
    #[error("cannot update the XDP steering maps: {0}")]
    Map(String),
}

/// The steering program loaded and attached to one interface. It owns the
/// BPF object; dropping it detaches the program (only if the interface still
/// runs this very program) and closes the object.
pub struct Steering {
    // Declared last: it closes the object after `drop` has detached.
    prog_fd: c_int,
    ifindex: u32,
    iface: String,
    mode: XdpAttachMode,
    xsks_fd: c_int,
    vmacs_fd: c_int,
    vip4_fd: c_int,
    vip6_fd: c_int,
    config_fd: c_int,
    counts_fd: c_int,
    gate: DeliveryGate,
    /// What `config` holds: whole_nic, then the NIC's MAC.
    config: [u8; 12],
    obj: LoadedObject,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("iface", &self.iface)
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .field("prog_fd", &self.prog_fd)
            .finish_non_exhaustive()
    }
}

/// A libbpf errno as an `io::Error`.
fn errno_error(errno: c_int) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

impl Steering {
    /// Loads the program and attaches it to `config.iface`, replacing any
    /// XDP program already there (a stale one from a crashed run, in either
    /// mode) instead of failing.
    pub fn attach(config: &SteeringConfig) -> Result<Steering, SteeringError> {
        let ifindex = ifindex(&config.iface).ok_or_else(|| SteeringError::NoSuchInterface(config.iface.clone()))?;
        let obj = LoadedObject::load(&STEER_OBJ.0, OBJ_NAME, "the steering program").map_err(|e| match e {
            LoadError::NotPermitted => SteeringError::NotPermitted,
            LoadError::Failed(why) => SteeringError::Load(why),
        })?;
        let prog_fd = obj.program_fd(PROG_NAME).map_err(SteeringError::Load)?;
        let lease_fd = obj.map_fd(c"lease").map_err(SteeringError::Load)?;
        let lease = MappedArray::map(lease_fd, LEASE_ENTRIES)
            .map_err(|e| SteeringError::Load(format!("cannot map the lease map: {e}")))?;
        // Until the attach below succeeds, `prog_fd` stays -1 so that a drop
        // on an error path detaches nothing.
        let mut steering = Steering {
            obj,
            prog_fd: -1,
            ifindex,
            iface: config.iface.clone(),
            mode: config.mode,
            xsks_fd: -1,
            vmacs_fd: -1,
            vip4_fd: -1,
            vip6_fd: -1,
            config_fd: -1,
            counts_fd: -1,
            gate: DeliveryGate { values: Arc::new(lease) },
            config: [0; 12],
        };
        steering.xsks_fd = steering.map_fd(c"xsks")?;
        steering.vmacs_fd = steering.map_fd(c"vmacs")?;
        steering.vip4_fd = steering.map_fd(c"vip4")?;
        steering.vip6_fd = steering.map_fd(c"vip6")?;
        steering.config_fd = steering.map_fd(c"config")?;
        steering.counts_fd = steering.map_fd(c"counts")?;
        // Kernel-delivered frames get the NIC's own MAC as their destination:
        // one sent to a virtual MAC would be dropped as meant for another host.
        let mac = NicFilter::open(&config.iface)
            .and_then(|nic| nic.mac())
            .map_err(|e| SteeringError::Load(format!("cannot read the MAC of `{}`: {e}", config.iface)))?;
        steering.config[4..10].copy_from_slice(&mac.octets());
        steering.set_whole_nic(config.whole_nic)?;

        // No XDP_FLAGS_UPDATE_IF_NOEXIST: a program already attached in the
        // same mode is replaced. The kernel refuses (EEXIST) while one runs in
        // the other mode, so that one is detached first, then we retry once.
        let mut attached = bpf::xdp_attach(ifindex, prog_fd, config.mode.flags());
        if attached == Err(libc::EEXIST) {
            // Whatever the other mode's detach says, the retry reports it.
            let _ = bpf::xdp_detach(ifindex, config.mode.other().flags());
            attached = bpf::xdp_attach(ifindex, prog_fd, config.mode.flags());
        }
        if let Err(errno) = attached {
            let err = errno_error(errno);
            return Err(match errno {
                libc::EPERM | libc::EACCES => SteeringError::NotPermitted,
                libc::ENODEV => SteeringError::NoSuchInterface(config.iface.clone()),
                libc::EBUSY => SteeringError::Attach(format!(
                    "`{}` has an XDP program attached through a BPF link, which cannot be replaced: {err}",
                    config.iface
                )),
                libc::EOPNOTSUPP => SteeringError::Attach(format!(
                    "`{}` does not support {:?} XDP ({err}); try XdpAttachMode::Skb",
                    config.iface, config.mode
                )),
                _ => SteeringError::Attach(format!("on `{}` in {:?} mode: {err}", config.iface, config.mode)),
            });
        }
        // Only now is the program ours to detach on drop.
        steering.prog_fd = prog_fd;
        Ok(steering)
    }

    /// The fd of the map `name` of the loaded object.
    fn map_fd(&self, name: &CStr) -> Result<c_int, SteeringError> {
        self.obj.map_fd(name).map_err(SteeringError::Load)
    }

    /// The interface the program is attached to.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The interface index the program is attached to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The attach mode.
    pub fn mode(&self) -> XdpAttachMode {
        self.mode
    }

    /// The loaded program's fd (owned by the steering; do not close it).
    pub fn prog_fd(&self) -> i32 {
        self.prog_fd
    }

    /// Sends frames arriving on `queue` (and matching the steering rules) to
    /// the AF_XDP socket `xsk_fd` (see [`AfXdpPort::raw_fd`](crate::AfXdpPort::raw_fd)).
    /// The socket must be bound to this interface and queue.
    pub fn add_socket(&mut self, queue: u32, xsk_fd: i32) -> Result<(), SteeringError> {
        if queue >= STEER_MAX_QUEUES {
            return Err(SteeringError::Map(format!(
                "queue {queue} is past the last one the map holds ({})",
                STEER_MAX_QUEUES - 1
            )));
        }
        let value: u32 = xsk_fd as u32;
        update(self.xsks_fd, "xsks", &queue, &value)
    }

    /// Stops sending frames of `queue` to a socket (they then go to the kernel).
    /// Removing a queue that has no socket is not an error.
    pub fn remove_socket(&mut self, queue: u32) -> Result<(), SteeringError> {
        delete(self.xsks_fd, "xsks", &queue)
    }

    /// Redirects frames whose destination is `mac`.
    pub fn add_vmac(&mut self, mac: MacAddr) -> Result<(), SteeringError> {
        update(self.vmacs_fd, "vmacs", &mac_key(mac), &1u8)
    }

    /// Stops redirecting frames to `mac`; removing an absent MAC is not an error.
    pub fn remove_vmac(&mut self, mac: MacAddr) -> Result<(), SteeringError> {
        delete(self.vmacs_fd, "vmacs", &mac_key(mac))
    }

    /// Redirects ARP (IPv4) or Neighbor Solicitations (IPv6) whose target is
    /// `ip`, and sends IP to it where `delivery` says; adding it again
    /// changes its delivery.
    pub fn add_vip(&mut self, ip: IpAddr, delivery: VipDelivery) -> Result<(), SteeringError> {
        if let VipDelivery::Kernel { group } = delivery {
            if group >= STEER_MAX_GROUPS {
                return Err(SteeringError::Map(format!(
                    "group index {group} is past the last one the program holds ({})",
                    STEER_MAX_GROUPS - 1
                )));
            }
        }
        let entry = delivery.entry();
        match ip {
            IpAddr::V4(v4) => update(self.vip4_fd, "vip4", &v4.octets(), &entry),
            IpAddr::V6(v6) => update(self.vip6_fd, "vip6", &v6.octets(), &entry),
        }
    }

    /// Stops redirecting ARP or NS for `ip`; removing an absent VIP is not an error.
    pub fn remove_vip(&mut self, ip: IpAddr) -> Result<(), SteeringError> {
        match ip {
            IpAddr::V4(v4) => delete(self.vip4_fd, "vip4", &v4.octets()),
            IpAddr::V6(v6) => delete(self.vip6_fd, "vip6", &v6.octets()),
        }
    }

    /// Redirects every frame (true) or only the engine's own (false).
    pub fn set_whole_nic(&mut self, whole_nic: bool) -> Result<(), SteeringError> {
        self.config[..4].copy_from_slice(&u32::from(whole_nic).to_ne_bytes());
        update(self.config_fd, "config", &0u32, &self.config)
    }

    /// The leases and owned flags the program reads for kernel delivery.
    pub fn delivery_gate(&self) -> DeliveryGate {
        self.gate.clone()
    }

    /// What the program dropped or passed to the kernel so far.
    pub fn counts(&self) -> Result<XdpCounts, SteeringError> {
        let read = |index: u32| {
            bpf::map_lookup_percpu_u64(self.counts_fd, index)
                .map(|per_cpu| per_cpu.iter().sum::<u64>())
                .map_err(|errno| SteeringError::Map(format!("cannot read `counts`: {}", errno_error(errno))))
        };
        Ok(XdpCounts { not_owned: read(0)?, lease_expired: read(1)?, to_kernel: read(2)? })
    }

    /// The id of the program the kernel runs on the interface in our mode
    /// right now (0: none), to compare with [`Steering::prog_id`].
    pub fn attached_prog_id(&self) -> Result<u32, SteeringError> {
        bpf::xdp_query_id(self.ifindex, self.mode.flags())
            .map_err(|errno| SteeringError::Attach(format!("cannot query `{}`: {}", self.iface, errno_error(errno))))
    }

    /// The kernel's id of our loaded program.
    pub fn prog_id(&self) -> Result<u32, SteeringError> {
        bpf::prog_id(self.prog_fd)
            .map_err(|errno| SteeringError::Load(format!("cannot query the steering program: {}", errno_error(errno))))
    }
}

fn mac_key(mac: MacAddr) -> [u8; 8] {
    let mut key = [0u8; 8];
    key[..6].copy_from_slice(&mac.octets());
    key
}

fn update<K: bpf::MapBytes, V: bpf::MapBytes>(fd: c_int, map: &str, key: &K, value: &V) -> Result<(), SteeringError> {
    bpf::map_update(fd, key, value).map_err(|errno| match errno {
        libc::EPERM | libc::EACCES => SteeringError::NotPermitted,
        _ => SteeringError::Map(format!("update of `{map}` failed: {}", errno_error(errno))),
    })
}

fn delete<K: bpf::MapBytes>(fd: c_int, map: &str, key: &K) -> Result<(), SteeringError> {
    match bpf::map_delete(fd, key) {
        Ok(()) | Err(libc::ENOENT) => Ok(()),
        Err(errno) => Err(SteeringError::Map(format!("delete from `{map}` failed: {}", errno_error(errno)))),
    }
}

impl Drop for Steering {
    fn drop(&mut self) {
        if self.prog_fd >= 0 {
            // Only if the interface still runs our program; nothing to do
            // about a failure while dropping.
            let _ = bpf::xdp_detach_if_still(self.ifindex, self.mode.flags(), self.prog_fd);
        }
    }
}
