//! Making the NIC accept what the engine serves: no kernel socket joins the
//! VRRP groups or claims the virtual MACs for us, so the engine adds them to
//! the NIC's filters itself. It does so through an AF_PACKET socket's
//! memberships (PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP): the kernel
//! counts them per socket and takes them all back when the socket closes, so the NIC is restored on
//! exit even when the process is killed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use vipdrift_wire::MacAddr;

/// Memberships held on one interface; dropped together with this value.
#[derive(Debug)]
pub struct NicFilter {
    fd: OwnedFd,
    ifindex: i32,
    iface: String,
}

impl NicFilter {
    /// Opens the socket for `iface` (it receives nothing: protocol 0).
    pub fn open(iface: &str) -> io::Result<NicFilter> {
        let Some(ifindex) = ifindex(iface) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("interface `{iface}` does not exist")));
        };
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { syscall!(socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)) }?;
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(NicFilter { fd, ifindex: ifindex as i32, iface: iface.to_owned() })
    }

    fn membership(&self, kind: i32, mac: Option<MacAddr>, add: bool) -> io::Result<()> {
        let mut mreq =
            libc::packet_mreq { mr_ifindex: self.ifindex, mr_type: kind as u16, mr_alen: 0, mr_address: [0; 8] };
        if let Some(mac) = mac {
            mreq.mr_alen = 6;
            mreq.mr_address[..6].copy_from_slice(&mac.0);
        }
        // SAFETY: `mreq` is a valid packet_mreq that lives across the call and
        // the length passed is its own size; the descriptor is ours.
        let set = unsafe {
            syscall!(setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                if add { libc::PACKET_ADD_MEMBERSHIP } else { libc::PACKET_DROP_MEMBERSHIP },
                std::ptr::from_ref(&mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            ))
        };
        if let Err(err) = set {
            let what = if add { describe(kind) } else { "cannot drop a membership" };
            return Err(io::Error::new(err.kind(), format!("{what} on `{}`: {err}", self.iface)));
        }
        Ok(())
    }

    /// Adds `mac` to the NIC's unicast filter (drivers without one go
    /// promiscuous, which the kernel handles).
    pub fn add_unicast(&self, mac: MacAddr) -> io::Result<()> {
        self.membership(libc::PACKET_MR_UNICAST, Some(mac), true)
    }

    /// Adds a multicast MAC (01:00:5e:00:00:12, 33:33:00:00:00:12, ...).
    pub fn add_multicast(&self, mac: MacAddr) -> io::Result<()> {
        self.membership(libc::PACKET_MR_MULTICAST, Some(mac), true)
    }

    /// Takes back one [`NicFilter::add_unicast`] of `mac` (the kernel
    /// counts them: the address leaves the filter with the last one).
    pub fn remove_unicast(&self, mac: MacAddr) -> io::Result<()> {
        self.membership(libc::PACKET_MR_UNICAST, Some(mac), false)
    }

    /// Takes back one [`NicFilter::add_multicast`] of `mac`.
    pub fn remove_multicast(&self, mac: MacAddr) -> io::Result<()> {
        self.membership(libc::PACKET_MR_MULTICAST, Some(mac), false)
    }

    fn ifreq(&self, request: libc::Ioctl) -> io::Result<libc::ifreq> {
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(self.iface.bytes().take(libc::IFNAMSIZ - 1)) {
            *dst = src as libc::c_char;
        }
        // SAFETY: `req` is a valid, NUL-terminated ifreq that lives across the
        // call; SIOCGIFFLAGS / SIOCGIFHWADDR only write into it.
        unsafe { syscall!(ioctl(self.fd.as_raw_fd(), request, &mut req)) }?;
        Ok(req)
    }

    /// True when the interface is up and has its carrier (IFF_UP and
    /// IFF_RUNNING): one ioctl, cheap enough to call every few milliseconds.
    pub fn link_up(&self) -> io::Result<bool> {
        let req = self.ifreq(libc::SIOCGIFFLAGS)?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
        let want = libc::IFF_UP | libc::IFF_RUNNING;
        Ok(flags & want == want)
    }

    /// The interface's own MAC address.
    pub fn mac(&self) -> io::Result<MacAddr> {
        let req = self.ifreq(libc::SIOCGIFHWADDR)?;
        // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
        let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
        Ok(MacAddr(std::array::from_fn(|i| data[i] as u8)))
    }

    /// The name of the interface's driver (`veth`, `mlx5_core`, ...), as
    /// `ethtool -i` shows it.
    pub fn driver(&self) -> io::Result<String> {
        let mut info = EthtoolDrvinfo { cmd: ETHTOOL_GDRVINFO, ..EthtoolDrvinfo::default() };
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(self.iface.bytes().take(libc::IFNAMSIZ - 1)) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut info as *mut EthtoolDrvinfo).cast();
        // SAFETY: `req` names the interface and points at `info`, an
        // ethtool_drvinfo with its command set, which outlives the call;
        // ETHTOOL_GDRVINFO writes only into that struct.
        unsafe { syscall!(ioctl(self.fd.as_raw_fd(), libc::SIOCETHTOOL, &mut req)) }?;
        let end = info.driver.iter().position(|&b| b == 0).unwrap_or(info.driver.len());
        Ok(String::from_utf8_lossy(&info.driver[..end]).into_owned())
    }

    /// The interface's name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Puts the NIC in promiscuous mode (for as long as this value lives).
    pub fn promiscuous(&self) -> io::Result<()> {
        self.membership(libc::PACKET_MR_PROMISC, None, true)
    }
}

/// `ETHTOOL_GDRVINFO` of `linux/ethtool.h`.
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

/// `struct ethtool_drvinfo` of `linux/ethtool.h`.
#[repr(C)]
#[derive(Default)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

fn describe(kind: i32) -> &'static str {
    match kind {
        libc::PACKET_MR_UNICAST => "cannot add a unicast address",
        libc::PACKET_MR_MULTICAST => "cannot join a multicast address",
        _ => "cannot enable promiscuous mode",
    }
}

/// The index of interface `name` in the calling thread's network namespace.
pub(crate) fn ifindex(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}
