//! Control plane for vipdrift.
//!
//! This crate will own the VRRPv3 codec and state machine (sans-IO, driven by
//! `(now, event)`), ownership migration across instances, GARP scheduling, the
//! TOML configuration and the control thread. It depends on
//! `vipdrift-engine` and `vipdrift-vmac`; nothing depends on it but the tools.
//! So far it holds the [`Responder`], the engine handler that serves the
//! virtual-MAC service on a worker.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
mod bond;
pub mod config;
mod endpoint;
pub mod metrics;
#[cfg(test)]
mod mutate;
mod notify;
mod responder;
pub mod runtime;

pub use responder::{Responder, ResponderCommand, ResponderStats};
