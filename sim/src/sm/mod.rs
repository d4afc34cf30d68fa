//! The built-in subnet manager and its subnet administrator.
//!
//! [`sa`]: PathRecord Get and GetTable answered from the configured ports, with status
//! codes and injectable failures. [`sweep`]: the subnet manager that configures those
//! ports: discovery with directed-route SMPs through the switch and each port's agent,
//! LID assignment, switch programming and port activation; its
//! [`sweep::SubnetManager::ports`] feed the SA.

pub mod sa;
pub mod sweep;
