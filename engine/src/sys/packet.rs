//! A raw AF_PACKET socket bound to one interface: sends whole Ethernet
//! frames past the kernel's stack and sees what the stack receives. For
//! tests, probes and tools (never the data path, which is AF_XDP).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A raw, non-blocking AF_PACKET socket on one interface (ETH_P_ALL).
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    addr: libc::sockaddr_ll,
}

/// One frame [`PacketSocket::recv`] took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes of the frame in the buffer.
    pub len: usize,
    /// Whether the frame was one this host sent (PACKET_OUTGOING).
    pub outgoing: bool,
}

impl PacketSocket {
    /// Opens the socket on `iface` of the calling thread's network namespace.
    pub fn open(iface: &str) -> io::Result<PacketSocket> {
        let ifindex = super::nic::ifindex(iface)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("interface `{iface}` does not exist")))?;
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            syscall!(socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(protocol)
            ))
        }?;
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `sockaddr_ll` is plain old data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid `sockaddr_ll` of the length given, alive
        // across the call; the descriptor is ours.
        unsafe {
            syscall!(bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            ))
        }?;
        Ok(PacketSocket { fd, addr })
    }

    /// Sends one whole frame (from the Ethernet header on); returns the bytes
    /// the kernel took. WouldBlock when the device queue is full.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is readable for its length and `addr` is a valid
        // `sockaddr_ll` of the length given, both alive across the call.
        let sent = unsafe {
            syscall!(sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                std::ptr::from_ref(&self.addr).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            ))
        }?;
        Ok(sent as usize)
    }

    /// Takes one queued frame into `buf` (truncated to its length), or None
    /// when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // SAFETY: `sockaddr_ll` is plain old data; all zeroes is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is writable for its length and `from` for `from_len`
        // bytes, both alive across the call.
        let got = unsafe {
            syscall!(recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                std::ptr::from_mut(&mut from).cast::<libc::sockaddr>(),
                &mut from_len,
            ))
        };
        match got {
            Ok(n) => Ok(Some(Received {
                len: (n as usize).min(buf.len()),
                outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
            })),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(err),
        }
    }
}
