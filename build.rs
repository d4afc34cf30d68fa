//! Link arguments for the driver images, and the WDK configuration when the `wdk`
//! feature is on (Windows hosts with a WDK only).
//!
//! The images are linked by `rust-lld` (set in `.cargo/config.toml`) as native-subsystem
//! drivers whose entry point is `DriverEntry`: `/RELEASE` writes the PE checksum the
//! kernel verifies for boot drivers, `/NODEFAULTLIB` keeps every C runtime out (the
//! image carries its own `memcpy` and friends), and the port driver's imports come from
//! `raw-dylib` declarations, so no import library is needed.

use std::env;

const DRIVER_LINK_ARGS: &[&str] = &[
    "/SUBSYSTEM:NATIVE",
    "/DRIVER",
    "/RELEASE",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/INCREMENTAL:NO",
    "/OPT:REF",
    "/OPT:ICF",
    "/DEBUG:NONE",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let flavour = env::var_os("CARGO_FEATURE_STORPORT").is_some()
        || env::var_os("CARGO_FEATURE_SCSIPORT").is_some();
    if os == "windows" && target_env == "msvc" && flavour {
        for arg in DRIVER_LINK_ARGS {
            println!("cargo::rustc-cdylib-link-arg={arg}");
        }
    }
    #[cfg(feature = "wdk")]
    wdk_build::configure_wdk_binary_build()
        .expect("the `wdk` feature needs a Windows host with a WDK");
}
