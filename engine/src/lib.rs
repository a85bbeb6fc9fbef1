//! vipdrift's poll-mode packet engine.
//!
//! Ports ([`AfXdpPort`] on a NIC queue, [`MemPort`] in memory) move frames as
//! descriptors in bursts; a [`Worker`] pinned to a core busy-polls its ports,
//! classifies each frame by destination MAC ([`MacTable`]), asks the
//! embedder's [`Handler`] for a [`Verdict`] and transmits in place. Counters
//! per queue ([`QueueStats`]) are readable from any thread without a lock.
//! The engine knows nothing of VRRP, ARP semantics or config files.
//!
//! A MAC-swapping reflector on an in-memory link:
//!
//! ```
//! use vipdrift_engine::{Handler, MemPort, MemPortConfig, Packet, Verdict, Worker, WorkerConfig};
//!
//! struct Reflector;
//! impl Handler for Reflector {
//!     type Command = ();
//!     fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
//!         packet.swap_macs();
//!         Verdict::Transmit
//!     }
//! }
//!
//! let (port, mut client) = MemPort::pair(MemPortConfig::default());
//! let (mut worker, _handle) = Worker::new(vec![port], Reflector, WorkerConfig::default(), None);
//! let mut frame = [0u8; 60];
//! frame[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]); // destination
//! frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]); // source
//! frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
//! assert!(client.send_bytes(&frame));
//! worker.poll_once();
//! let back = client.recv_bytes().unwrap();
//! assert_eq!(&back[..6], &[2, 0, 0, 0, 0, 1]);
//! ```
//!
//! Every `unsafe` block and every libc, libbpf and xsk-rs call sits in one
//! module, `sys`; the rest of the crate is safe code.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod demux;
mod faulty;
mod generator;
mod lease;
mod memport;
mod port;
mod stats;
mod steer;
mod sys;
mod worker;
mod xdp_live;

pub use demux::{Dest, EndpointId, MacTable};
pub use faulty::{FaultConfig, FaultCounts, FaultyPort};
pub use generator::{Generator, GeneratorConfig};
pub use lease::{LeaseKeeper, LeasePolicy, LeaseStep};
pub use memport::{MemPort, MemPortConfig};
pub use port::{BoundMode, Desc, Port, PortCounters, XdpSocketStats};
pub use stats::{Counters, DropReason, QueueStats, Rates, StatsSnapshot};
pub use steer::{
    monotonic_ns, DeliveryGate, Steering, SteeringConfig, SteeringError, VipDelivery, XdpAttachMode, XdpCounts,
    STEER_MAX_GROUPS, STEER_MAX_QUEUES,
};
pub use sys::afxdp::{AfXdpConfig, AfXdpError, AfXdpPort, BindMode, FrameAccounting};
pub use sys::nic::NicFilter;
pub use sys::packet::{PacketSocket, Received};
pub use vipdrift_wire::{MacAddr, ParseMacError};
pub use worker::{
    ControlFrame, ControlSender, Handler, IdlePolicy, Packet, Verdict, Worker, WorkerCommand, WorkerConfig,
    WorkerHandle, CONTROL_FRAME_MAX, ETH_HEADER_LEN, MAX_BURST,
};
pub use xdp_live::{XdpLiveConfig, XdpLiveError, XdpLiveGenerator, XdpLiveSummary};
