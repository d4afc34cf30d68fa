//! fabboot: a Windows storage miniport that boots, pages and writes crash dumps to an
//! SRP disk across InfiniBand, with nothing but its own code between the port driver
//! and a ConnectX (mlx5) HCA.
//!
//! The same crate is built four ways (`cargo xtask build`): storport (`fabboot.sys`)
//! and scsiport (`ntbootdd.sys`) flavours, each for i686 and x86_64. On any other target
//! it is an ordinary library: the simulator links it natively and `cargo test` runs the
//! same logic on Linux. Only [`port`] (the port-driver ABI) may contain `unsafe`.
#![no_std]
#![deny(unsafe_code)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

// Off Windows the crate is also a host cdylib/rlib: std supplies the panic handler
// and runtime there. The driver images get theirs from `port::rt`.
#[cfg(not(target_os = "windows"))]
extern crate std;

#[cfg(all(target_os = "windows", feature = "storport", feature = "scsiport"))]
compile_error!("choose exactly one port flavour: feature `storport` or `scsiport`");

pub mod adapter;
pub mod bootcfg;
pub mod event;
pub mod ib;
pub mod initiator;
pub mod miniport;
/// The SRP crate the initiator speaks through (wire formats and the session).
pub use fabboot_srp as srp;
pub mod pci;
#[allow(unsafe_code)]
pub mod port;
