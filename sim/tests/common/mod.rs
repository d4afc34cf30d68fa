//! Shared by the simulator's tests: the world's fixture initiator and target
//! (`fabboot_sim::world::probe`), and tshark with an independent CRC.

#![allow(dead_code, unused_imports)]

pub mod tshark;

pub use fabboot_sim::world::probe::*;
