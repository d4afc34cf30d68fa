//! The built-in subnet manager and its subnet administrator.
//!
//! [`sa`]: PathRecord Get and GetTable answered from the configured ports, with status
//! codes and injectable failures. The sweep (SMPs through each model's agent, LID
//! assignment, switch programming) joins it when the device model speaks through the
//! fabric.

pub mod sa;
