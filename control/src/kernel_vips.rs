//! The kernel's side of kernel delivery: each kernel-delivered VIP is a
//! local address on `lo` (/32 or /128, IPv6 without DAD), so the kernel
//! accepts what the steering program passes it, and the ARP sysctls make
//! sure the kernel never claims such an address on the wire: with
//! `arp_ignore = 1` it answers ARP only for addresses of the receiving
//! interface (never `lo`'s), with `arp_announce = 2` it never puts a VIP in
//! its own requests. IPv6 needs no sysctl: the kernel answers a Neighbor
//! Solicitation only for an address of the receiving interface.
//!
//! The addresses are added and removed through rtnetlink (netlink-packet-route
//! over a netlink-sys socket) and tagged with vipdrift's address protocol
//! ([`ADDRESS_PROTOCOL`], `ip addr show dev lo` prints it as `proto 118`),
//! so a daemon killed with SIGKILL leaves nothing its successor cannot find:
//! the next start reconciles `lo` with its configuration, adding what is
//! missing, keeping what is there and removing tagged addresses no longer
//! configured, and a clean stop removes every tagged address.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressProtocol;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;

/// The `IFA_PROTO` value that marks an address as vipdrift's ('v').
pub(crate) const ADDRESS_PROTOCOL: u8 = 118;

/// What a reconciliation did to `lo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reconciled {
    /// Configured and missing: added.
    pub(crate) added: Vec<IpAddr>,
    /// Configured and already there (left by a run that was killed): kept.
    pub(crate) kept: Vec<IpAddr>,
    /// Tagged as vipdrift's but no longer configured: removed.
    pub(crate) removed: Vec<IpAddr>,
}

/// The kernel-delivered VIPs on `lo`, kept equal to the configuration's.
pub(crate) struct LoopbackVips {
    socket: Socket,
    lo: u32,
    sequence: u32,
    /// What the last reconciliation left on `lo`: this daemon's.
    ours: Vec<IpAddr>,
}

impl std::fmt::Debug for LoopbackVips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackVips").field("lo", &self.lo).finish_non_exhaustive()
    }
}

impl LoopbackVips {
    /// Opens an rtnetlink socket in this network namespace.
    pub(crate) fn open() -> io::Result<LoopbackVips> {
        let lo = std::fs::read_to_string("/sys/class/net/lo/ifindex")
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read lo's interface index: {e}")))?
            .trim()
            .parse()
            .map_err(|_| io::Error::other("lo's interface index is not a number"))?;
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(LoopbackVips { socket, lo, sequence: 0, ours: Vec::new() })
    }

    /// Makes `lo` hold exactly `wanted` among the addresses tagged as
    /// vipdrift's; an address there untagged (an operator's) is left alone
    /// and not added again.
    pub(crate) fn reconcile(&mut self, wanted: &[IpAddr]) -> io::Result<Reconciled> {
        let present = self.addresses()?;
        let mut done = Reconciled::default();
        for &(ip, protocol) in &present {
            if protocol == ADDRESS_PROTOCOL && !wanted.contains(&ip) {
                self.request(RouteNetlinkMessage::DelAddress(self.message(ip)), 0)?;
                done.removed.push(ip);
            }
        }
        for &ip in wanted {
            if present.iter().any(|&(there, _)| there == ip) {
                done.kept.push(ip);
            } else {
                self.request(RouteNetlinkMessage::NewAddress(self.message(ip)), NLM_F_CREATE | NLM_F_EXCL)?;
                done.added.push(ip);
            }
        }
        self.ours = wanted.iter().copied().filter(|ip| !done.kept.contains(ip) || is_tagged(&present, *ip)).collect();
        Ok(done)
    }

    /// Removes the addresses this daemon put (or kept) on `lo`; returns them.
    pub(crate) fn remove_ours(&mut self) -> io::Result<Vec<IpAddr>> {
        let mut removed = Vec::new();
        for ip in std::mem::take(&mut self.ours) {
            match self.request(RouteNetlinkMessage::DelAddress(self.message(ip)), 0) {
                Ok(()) => removed.push(ip),
                // Someone took it off already.
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// The addresses on `lo` with their `IFA_PROTO` (0: none).
    pub(crate) fn addresses(&mut self) -> io::Result<Vec<(IpAddr, u8)>> {
        let mut found = Vec::new();
        for reply in self.exchange(RouteNetlinkMessage::GetAddress(AddressMessage::default()), NLM_F_DUMP)? {
            let RouteNetlinkMessage::NewAddress(message) = reply else { continue };
            if message.header.index != self.lo {
                continue;
            }
            let mut address = None;
            let mut protocol = 0;
            for attribute in &message.attributes {
                match attribute {
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    AddressAttribute::Local(ip) if address.is_none() => address = Some(*ip),
                    AddressAttribute::Protocol(p) => protocol = u8::from(*p),
                    _ => {}
                }
            }
            if let Some(ip) = address {
                found.push((ip, protocol));
            }
        }
        Ok(found)
    }

    /// A host-length address of `lo`, tagged as vipdrift's.
    fn message(&self, ip: IpAddr) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.index = self.lo;
        message.header.scope = AddressScope::Universe;
        match ip {
            IpAddr::V4(_) => {
                message.header.family = AddressFamily::Inet;
                message.header.prefix_len = 32;
                message.attributes.push(AddressAttribute::Local(ip));
            }
            IpAddr::V6(_) => {
                message.header.family = AddressFamily::Inet6;
                message.header.prefix_len = 128;
                message.header.flags = AddressHeaderFlags::Nodad;
                message.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        message.attributes.push(AddressAttribute::Address(ip));
        message.attributes.push(AddressAttribute::Protocol(AddressProtocol::from(ADDRESS_PROTOCOL)));
        message
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.exchange(message, flags | NLM_F_ACK).map(|_| ())
    }

    /// Sends one request and collects its replies until the kernel is done
    /// (its acknowledgement, or the end of a dump).
    fn exchange(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket.send(&buffer, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        let mut receive = vec![0u8; 65536];
        loop {
            let size = self.socket.recv(&mut &mut receive[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&receive[offset..size])
                    .map_err(|e| io::Error::other(format!("cannot parse a netlink reply: {e}")))?;
                let length = reply.header.length as usize;
                if reply.header.sequence_number == self.sequence {
                    match reply.payload {
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(error) => {
                            return match error.code {
                                None => Ok(replies),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            };
                        }
                        NetlinkPayload::InnerMessage(inner) => {
                            replies.push(inner);
                            if !dump {
                                return Ok(replies);
                            }
                        }
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

fn is_tagged(present: &[(IpAddr, u8)], ip: IpAddr) -> bool {
    present.iter().any(|&(there, protocol)| there == ip && protocol == ADDRESS_PROTOCOL)
}

impl Drop for LoopbackVips {
    /// A daemon that stops, cleanly or by an error, leaves nothing on `lo`
    /// (one killed leaves them for its successor's reconciliation).
    fn drop(&mut self) {
        if let Err(e) = self.remove_ours() {
            tracing::warn!(error = %e, "cannot take the kernel-delivered VIPs off lo");
        }
    }
}

/// The ARP sysctls kernel delivery needs on `iface` (and `all`, so no
/// other interface of the host answers for a VIP on `lo` either), raised
/// where lower and never lowered; returns each change made, as
/// "net.ipv4.conf.X.KEY: OLD -> NEW".
pub(crate) fn ensure_arp_sysctls(iface: &str) -> io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for scope in ["all", iface] {
        for (key, least) in [("arp_ignore", 1), ("arp_announce", 2)] {
            let path = format!("/proc/sys/net/ipv4/conf/{scope}/{key}");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?;
            let current: u32 = text.trim().parse().map_err(|_| io::Error::other(format!("{path} holds {text:?}")))?;
            if current < least {
                std::fs::write(&path, format!("{least}\n"))
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
                changed.push(format!("net.ipv4.conf.{scope}.{key}: {current} -> {least}"));
            }
        }
    }
    Ok(changed)
}
