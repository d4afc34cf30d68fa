//! `fabboot-srp`: SCSI RDMA Protocol (ANSI INCITS 365-2002, SRP r16a) for a boot
//! initiator.
//!
//! Transport-agnostic: it sees an RC channel, never the HCA, and knows nothing of
//! Windows. Wire code cannot panic on any input.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod iu;
