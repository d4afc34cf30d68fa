//! Link arguments for the driver images, their version resource, and the WDK
//! configuration when the `wdk` feature is on (Windows hosts with a WDK only).
//!
//! The images are linked by `rust-lld` (set in `.cargo/config.toml`) as native-subsystem
//! drivers whose entry point is `DriverEntry`: `/RELEASE` writes the PE checksum the
//! kernel verifies for boot drivers, `/NODEFAULTLIB` keeps every C runtime out (the
//! image carries its own `memcpy` and friends), and the port driver's imports come from
//! `raw-dylib` declarations, so no import library is needed.
//!
//! Each image carries a `VS_VERSIONINFO` resource (what Explorer's Details tab, `sigcheck`
//! and Device Manager show): this script writes it as a `.res` file in `OUT_DIR`
//! (`build/version.rs`) and hands it to the linker, which turns `.res` inputs into the
//! image's `.rsrc` section. Host builds (the rlib for tests and the simulator) get
//! neither the arguments nor the resource.

#[path = "build/version.rs"]
mod version;

use std::env;
use std::path::PathBuf;

use version::{FixedFileInfo, VersionResource};

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

/// What the version resource says about each flavour's image.
struct Image {
    /// `OriginalFilename`: the name the image is installed under.
    file: &'static str,
    /// `InternalName`: the file name without its extension.
    internal: &'static str,
    /// `FileDescription`.
    description: &'static str,
}

const STORPORT: Image = Image {
    file: "fabboot.sys",
    internal: "fabboot",
    description: "fabboot SRP boot miniport for InfiniBand (storport)",
};

const SCSIPORT: Image = Image {
    file: "ntbootdd.sys",
    internal: "ntbootdd",
    description: "fabboot SRP boot miniport for InfiniBand (scsiport, for NTLDR)",
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=build/version.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let storport = env::var_os("CARGO_FEATURE_STORPORT").is_some();
    let scsiport = env::var_os("CARGO_FEATURE_SCSIPORT").is_some();
    if os == "windows" && target_env == "msvc" && (storport || scsiport) {
        for arg in DRIVER_LINK_ARGS {
            println!("cargo::rustc-cdylib-link-arg={arg}");
        }
        // Both features at once is refused by the crate itself (src/lib.rs).
        if storport != scsiport {
            let image = if storport { &STORPORT } else { &SCSIPORT };
            let res = write_version_resource(image)?;
            println!("cargo::rustc-cdylib-link-arg={}", res.display());
        }
    }
    #[cfg(feature = "wdk")]
    wdk_build::configure_wdk_binary_build()
        .expect("the `wdk` feature needs a Windows host with a WDK");
    Ok(())
}

/// Writes `<OUT_DIR>/version.res` for `image` and returns its path.
fn write_version_resource(image: &Image) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let quad = version::version_quad(
        &env::var("CARGO_PKG_VERSION_MAJOR")?,
        &env::var("CARGO_PKG_VERSION_MINOR")?,
        &env::var("CARGO_PKG_VERSION_PATCH")?,
    )?;
    let dotted = version::dotted(quad);
    let licence = env::var("CARGO_PKG_LICENSE")?;
    let copyright = format!("Copyright (c) the fabboot contributors; licensed {licence}");
    let strings = [
        ("CompanyName", "the fabboot contributors"),
        ("FileDescription", image.description),
        ("FileVersion", dotted.as_str()),
        ("InternalName", image.internal),
        ("LegalCopyright", copyright.as_str()),
        ("OriginalFilename", image.file),
        ("ProductName", "fabboot"),
        ("ProductVersion", dotted.as_str()),
    ];
    let resource = VersionResource {
        fixed: FixedFileInfo {
            file_version: quad,
            product_version: quad,
            file_flags: 0,
            file_os: version::VOS_NT_WINDOWS32,
            file_type: version::VFT_DRV,
            file_subtype: version::VFT2_DRV_SYSTEM,
        },
        language: version::LANG_EN_US,
        code_page: version::CP_UTF16LE,
        strings: &strings,
    };
    let path =
        PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?).join("version.res");
    std::fs::write(&path, resource.to_res_file()?)?;
    Ok(path)
}
