//! The `fabboot` command's library: what a person needs between `cargo xtask build` and a
//! booting machine.
//!
//! * [`cli`]: the subcommands (`configure`, `inspect`, `sbft`, `boot-ini`, `ib-srp-uri`).
//! * [`inf`]: parsers for the installation files in `inf/` (the INF, `txtsetup.oem`,
//!   `boot.ini` and its ARC paths), used by the tests and by `boot-ini`.

pub mod cli;
pub mod inf;
