//! A bridge that lets simulated HCA ports join a fabric run by the real `ibsim`, configured by
//! an unmodified OpenSM (DESIGN.md §5 part 3; reference `ibsim-opensm.md`).
//!
//! - [`netfile`]: the topology — one switch, OpenSM's own HCA, one HCA per port, fixed GUIDs.
//! - [`protocol`]: ibsim's client wire formats (control and data messages, socket names).
//! - [`mad`]: the MAD fields the bridge reads (DR SMPs, PortInfo, NodeInfo, SA RMPP length).
//! - [`client`]: one port attached as an ibsim client; sends and receives MADs with deadlines.
//! - [`process`]: [`Fabric`], which runs `ibsim` and `opensm` (under `libumad2sim.so`) in a
//!   private directory and stops them, by PID, whatever happens.
//!
//! Limits of ibsim that the bridge turns into typed [`Error`]s:
//! - at most [`MAX_CLIENTS`] attached clients, OpenSM's included (§0.3) →
//!   [`Error::TooManyClients`];
//! - no RMPP: an SA answer must fit one MAD (§0.7) → [`Error::SaAnswerTooLarge`];
//! - OpenSM needs its own HCA, and a class it has not registered sent to it crashes it (§0.8) →
//!   the netfile always has one, its name is reserved ([`Error::Spec`]), and such MADs are
//!   refused ([`Error::WouldCrashOpenSm`]);
//! - an undeliverable MAD comes straight back (§0.6) → [`Error::Bounced`].

pub mod client;
mod error;
pub mod mad;
pub mod netfile;
pub mod process;
pub mod protocol;

pub use client::{Client, MadAddress, PortIdentity, Received};
pub use error::Error;
pub use mad::{PortInfo, PortState};
pub use process::{Fabric, OpenSmOptions, PortSpec};

/// ibsim's compile-time `IBSIM_MAX_CLIENTS`: attached clients in total, OpenSM included (§0.3).
pub const MAX_CLIENTS: usize = 10;
