//! fabboot's simulator: the hardware this project has instead of hardware.
//!
//! Deterministic and single-threaded, on one virtual [`clock`]. Today: a model of the
//! ConnectX function ([`device`]: configuration space, initialization segment, command
//! queue and firmware), host memory for DMA ([`memory`]), the access layer's platform
//! over them ([`hal`]), and the port driver's services around `HwFindAdapter` ([`port`]).

pub mod clock;
pub mod device;
pub mod fabric;
pub mod hal;
pub mod ibsim;
pub mod memory;
pub mod port;
pub mod scenario;
pub mod target;
