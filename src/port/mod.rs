//! The port-driver ABI: the one module of the miniport where `unsafe` may live.
//!
//! * [`abi`]: `#[repr(C)]` structures, callback types and constants shared with
//!   scsiport and storport, each size and offset checked ([`layout`]).
//! * [`config`]: what `HwFindAdapter` tells the port about the adapter (safe code).
//! * `imports`, `entry`, `bar`, `cfgblock`, `rt` (Windows images only): the port's
//!   entry points imported with `raw-dylib`, `DriverEntry` and the `Hw*` callbacks,
//!   BAR0 register access, the embedded configuration block, and the runtime the image
//!   carries itself (`memcpy` and friends, the panic handler). Every `unsafe` block
//!   there states why it is sound.

pub mod abi;
pub mod config;
pub mod layout;

#[cfg(all(target_os = "windows", any(feature = "storport", feature = "scsiport")))]
mod bar;
#[cfg(all(target_os = "windows", any(feature = "storport", feature = "scsiport")))]
mod cfgblock;
#[cfg(all(target_os = "windows", any(feature = "storport", feature = "scsiport")))]
mod entry;
#[cfg(all(target_os = "windows", any(feature = "storport", feature = "scsiport")))]
mod imports;
#[cfg(all(target_arch = "x86_64", any(target_os = "windows", test)))]
mod mem;
#[cfg(target_os = "windows")]
mod rt;
#[cfg(feature = "wdk")]
mod wdk_check;

/// The port driver an image is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `ntbootdd.sys`: scsiport, as NTLDR/setupldr and the NT 5.x kernel load it.
    Scsiport,
    /// `fabboot.sys`: storport (Windows Server 2003 SP1 and later).
    Storport,
}
