//! The backends and the Maglev table over the ones that take new flows.
//!
//! A pool never changes: draining, removing or adding a backend builds a
//! new one (off the data path, on the caller's thread), and the workers
//! swap to it between bursts. Backends keep their index across pools, so
//! a flow remembered on a worker still names its backend.

use crate::maglev::{Contender, MaglevTable, TableError};
use std::net::IpAddr;
use vipdrift_wire::MacAddr;

/// One real server behind the VIP: it holds the VIP on `lo` and answers
/// clients directly (direct server return).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Its own address (what names it in the table).
    pub address: IpAddr,
    /// Its MAC: frames for the VIP are rewritten to it.
    pub mac: MacAddr,
    /// Its share of new flows, relative to the others'.
    pub weight: u32,
}

/// Whether a backend takes flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendState {
    /// New flows and the ones it has.
    Active,
    /// Only the flows it has (IPVS's weight 0): out of the table.
    Draining,
    /// Nothing: its flows move to the others.
    Removed,
}

impl BackendState {
    /// The name the load balancer's commands and output use.
    pub fn name(self) -> &'static str {
        match self {
            BackendState::Active => "active",
            BackendState::Draining => "draining",
            BackendState::Removed => "removed",
        }
    }
}

/// Why a pool change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The table cannot be built.
    Table(TableError),
    /// No backend has this address.
    NoSuchBackend(IpAddr),
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Table(e) => e.fmt(f),
            PoolError::NoSuchBackend(ip) => write!(f, "no backend has the address {ip}"),
        }
    }
}

impl std::error::Error for PoolError {}

/// The backends, their states and the table of the active ones.
#[derive(Clone, Debug)]
pub struct Pool {
    backends: Vec<(Backend, BackendState)>,
    table: MaglevTable,
}

impl Pool {
    /// A pool of active backends with a table of `size` slots (a prime).
    pub fn new(backends: &[Backend], size: usize) -> Result<Pool, PoolError> {
        Pool::with_states(backends.iter().map(|&b| (b, BackendState::Active)).collect(), size)
    }

    fn with_states(backends: Vec<(Backend, BackendState)>, size: usize) -> Result<Pool, PoolError> {
        let names: Vec<Vec<u8>> = backends.iter().map(|(b, _)| name(b.address)).collect();
        let contenders: Vec<Contender<'_>> = backends
            .iter()
            .zip(&names)
            .map(|((b, state), name)| Contender {
                name,
                weight: if *state == BackendState::Active { b.weight } else { 0 },
            })
            .collect();
        let table = MaglevTable::build(&contenders, size).map_err(PoolError::Table)?;
        Ok(Pool { backends, table })
    }

    /// The same pool with one backend's state changed.
    pub fn with_state(&self, address: IpAddr, state: BackendState) -> Result<Pool, PoolError> {
        let mut backends = self.backends.clone();
        let entry = backends.iter_mut().find(|(b, _)| b.address == address).ok_or(PoolError::NoSuchBackend(address))?;
        entry.1 = state;
        Pool::with_states(backends, self.table.size())
    }

    /// The backend a new flow with `hash` goes to.
    #[inline]
    pub fn pick(&self, hash: u64) -> Option<u16> {
        self.table.lookup(hash)
    }

    /// Backend `index`, and whether it still serves the flows it has.
    #[inline]
    pub fn serving(&self, index: u16) -> Option<&Backend> {
        match self.backends.get(usize::from(index)) {
            Some((b, BackendState::Active | BackendState::Draining)) => Some(b),
            _ => None,
        }
    }

    /// Every backend and its state, in configuration order.
    pub fn backends(&self) -> &[(Backend, BackendState)] {
        &self.backends
    }

    /// The table.
    pub fn table(&self) -> &MaglevTable {
        &self.table
    }
}

/// What names a backend in every node's table: its address's octets.
fn name(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}
