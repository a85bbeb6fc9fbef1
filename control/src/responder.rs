//! The engine handler that serves the virtual-MAC service on a worker:
//! ARP, NS and echo for owned VIPs are answered in place and leave through
//! the same queue's TX ring; VRRP goes to the control thread; the rest is
//! dropped and counted.

use vipdrift_engine::{DropReason, Handler, Packet, Verdict};
use vipdrift_vmac::{Group, Outcome, ServiceCounters, VmacService};

/// IP protocol / IPv6 next header of VRRP.
const PROTO_VRRP: u8 = 112;

/// A change to one worker's copy of the service, applied between bursts.
#[derive(Debug, Clone)]
pub enum ResponderCommand {
    /// Add or replace a group.
    SetGroup(Group),
    /// Remove a group by id.
    RemoveGroup(u32),
    /// Take or give up a group's VIPs.
    SetOwned(u32, bool),
}

/// One worker's responder: its own [`VmacService`], no shared state.
#[derive(Debug, Default)]
pub struct Responder {
    service: VmacService,
}

impl Responder {
    /// A responder with no groups.
    pub fn new() -> Responder {
        Responder::default()
    }

    /// A responder serving `groups`.
    pub fn with_groups(groups: impl IntoIterator<Item = Group>) -> Responder {
        let mut responder = Responder::new();
        for group in groups {
            responder.service.set_group(group);
        }
        responder
    }

    /// What the service has answered and rejected so far.
    pub fn counters(&self) -> ServiceCounters {
        self.service.counters()
    }
}

/// True for IPv4 protocol 112 or IPv6 next header 112 (behind at most one tag).
fn is_vrrp(frame: &[u8]) -> bool {
    if let Some(at) = vipdrift_vmac::icmp::ipv4_offset(frame) {
        return frame.get(at + 9) == Some(&PROTO_VRRP);
    }
    if let Some(at) = vipdrift_vmac::ndp::ipv6_offset(frame) {
        return frame.get(at + 6) == Some(&PROTO_VRRP);
    }
    false
}

impl Handler for Responder {
    type Command = ResponderCommand;

    #[inline]
    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
        let len = packet.data().len();
        match self.service.handle(packet.buffer_mut(), len) {
            Outcome::Reply(reply_len) => {
                packet.set_len(reply_len);
                Verdict::Transmit
            }
            Outcome::Rejected(_) => Verdict::Drop(DropReason::Handler),
            Outcome::NotOurs if is_vrrp(packet.data()) => Verdict::ToControl,
            Outcome::NotOurs => Verdict::Drop(DropReason::NoEndpoint),
        }
    }

    fn command(&mut self, command: ResponderCommand) {
        match command {
            ResponderCommand::SetGroup(group) => self.service.set_group(group),
            ResponderCommand::RemoveGroup(id) => {
                self.service.remove_group(id);
            }
            ResponderCommand::SetOwned(id, owned) => {
                self.service.set_owned(id, owned);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vipdrift_engine::{MemPort, MemPortConfig, Worker, WorkerCommand, WorkerConfig};
    use vipdrift_vmac::arp::{write_garp, GarpForm};
    use vipdrift_vmac::{vrrp_mac_v4, AddressMode};

    #[test]
    fn an_arp_request_through_a_worker_comes_back_as_a_reply_and_ownership_follows_commands() {
        let (port, mut client) = MemPort::pair(MemPortConfig::default());
        let group = Group {
            id: 51,
            mode: AddressMode::Vmac(vrrp_mac_v4(51)),
            vips: vec!["198.51.100.100".parse().unwrap()],
            owned: true,
        };
        let (mut worker, handle) =
            Worker::new(vec![port], Responder::with_groups([group]), WorkerConfig::default(), None);
        let mut request = [0u8; 60];
        write_garp(&mut request, GarpForm::Request, [2, 0, 0, 0, 0, 10], "198.51.100.100".parse().unwrap(), None)
            .unwrap();
        request[28..32].copy_from_slice(&[198, 51, 100, 10]);
        assert!(client.send_bytes(&request));
        worker.poll_once();
        let reply = client.recv_bytes().expect("a reply");
        assert_eq!(&reply[6..12], &vrrp_mac_v4(51));
        assert_eq!(u16::from_be_bytes([reply[20], reply[21]]), 2, "an ARP reply");

        handle.commands.send(WorkerCommand::Handler(ResponderCommand::SetOwned(51, false))).unwrap();
        assert!(client.send_bytes(&request));
        worker.poll_once();
        assert_eq!(client.recv_bytes(), None, "not answered once ownership is dropped");
        assert_eq!(worker.counters(0).drops_for(DropReason::NoEndpoint), 1);
    }
}
