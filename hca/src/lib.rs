//! `fabboot-hca`: register-level access to a Mellanox/NVIDIA ConnectX-4-or-later HCA
//! (the mlx5 programming interface), for a boot driver.
//!
//! The crate knows nothing of Windows. It reaches the device through [`hal::Hal`]
//! (registers, time, function reset), which the miniport binds to its port driver and
//! the simulator to its model of the device, and shares memory with it only through
//! [`dma::DmaRegion`], the one module with `unsafe`. All mlx5 registers are big-endian;
//! the `Hal` hands out host-order values.
//!
//! Layers, bottom up: [`ifc`] and [`wqe`] (layouts, checked against Linux's
//! `mlx5_ifc.h` and rdma-core's `mlx5dv.h`), [`cmdif`] (the command interface),
//! [`plan`] (where everything lives in the DMA region), [`bringup`] and [`pages`]
//! (function reset, firmware pages, capabilities, INIT_HCA, teardown), [`objects`] and
//! [`resources`] (UAR, PD, key, EQ, CQs, QPs, MAD_IFC), [`queues`] (the data path,
//! polled or armed for completion interrupts), [`timer`] (the device's clock).
//! [`bytes`] holds the byte copies every layer uses, which have no panic path (why
//! that matters for the i686 images is told there).
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

#[cfg(test)]
extern crate std;

pub mod bringup;
pub mod bytes;
pub mod cmdif;
#[allow(unsafe_code)]
pub mod dma;
pub mod hal;
pub mod ifc;
pub mod init_seg;
pub mod objects;
pub mod pages;
pub mod plan;
pub mod queues;
pub mod resources;
pub mod timer;
pub mod wqe;

/// 32-bit access to the device's registers at byte offsets from the start of BAR0.
///
/// Implementations convert between the device's big-endian registers and host order:
/// `read32` returns the register's value, not its bytes in memory order. An offset
/// outside the mapped BAR, or not 4-byte aligned, reads as all ones (what a PCI read
/// that nobody claims returns) and is ignored on write; it never faults.
pub trait Mmio {
    /// Reads the 32-bit register at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Writes the 32-bit register at `offset`.
    fn write32(&self, offset: usize, value: u32);
}
