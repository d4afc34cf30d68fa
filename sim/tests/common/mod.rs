//! Shared by the simulator's tests: the world's fixture initiator and target
//! (`fabboot_sim::world::probe`), tshark with an independent CRC, and a seeded random
//! source.

#![allow(dead_code, unused_imports)]

pub mod rng;
pub mod tshark;

pub use fabboot_sim::world::probe::*;
