//! fabboot's simulator: the hardware this project has instead of hardware.
//!
//! Deterministic and single-threaded. Today it models the ConnectX PCI function as far
//! as the miniport reaches it while finding the adapter ([`device`]) and the port
//! driver's services around that ([`port`]), so the driver crate's own code can be run
//! natively against it.

pub mod device;
pub mod port;
