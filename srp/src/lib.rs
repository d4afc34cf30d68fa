//! `fabboot-srp`: SCSI RDMA Protocol (ANSI INCITS 365-2002, SRP r16a) for a boot
//! initiator.
//!
//! Transport-agnostic: it sees an RC channel, never the HCA, and knows nothing of
//! Windows. Wire code cannot panic on any input.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod iu;

// Wire formats: one module per IU family (layouts in reference/srp-cm-sa-dm.md §1.1,
// §1.2). Panic contract: every `parse` and `emit` returns a typed `Error` on any input
// and never panics; see `wire`.
pub mod aer;
pub mod cmd;
pub mod cred;
pub mod desc;
pub mod error;
pub mod login;
pub mod logout;
pub mod rsp;
pub mod session;
pub mod tsk;
mod wire;

pub use error::{Error, Field};
