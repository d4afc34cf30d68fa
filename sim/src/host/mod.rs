//! The Windows host emulator: the shipped `.sys` images run in an emulated CPU against
//! the device model, fabric and target, driven as NTLDR, storport and the dump stack
//! would drive them.
//!
//! - [`cpu`]: unicorn's x86 CPU, the guest memory map (what is mapped is what the driver
//!   may touch: policing by construction), calls in and out of the guest by the i686 and
//!   x86_64 conventions;
//! - [`pe`]: the PE loader (sections, base relocations, imports bound by name);
//! - [`layout`]: port structures read and written in guest memory, per architecture,
//!   from the ABI records `fabboot::port::layout` checks against mingw-w64;
//! - [`port`]: scsiport and storport, emulated: the imports, the adapter's life cycle,
//!   interrupts, timers, DPCs and SRBs in the loader, kernel and dump environments;
//! - [`firmware`]: the machine's first MiB (base memory, the BIOS area) and the sBFT a
//!   SAN-booting firmware leaves there (base memory, or ACPI tables).

pub mod cpu;
pub mod firmware;
pub mod layout;
pub mod pe;
pub mod port;
pub mod rig;

/// The guest's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    I686,
    X86_64,
}

impl Arch {
    /// The directory name `cargo xtask build` uses.
    pub fn dir(self) -> &'static str {
        match self {
            Arch::I686 => "i686",
            Arch::X86_64 => "x86_64",
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Arch, String> {
        match s {
            "i686" | "x86" => Ok(Arch::I686),
            "x86_64" | "x64" | "amd64" => Ok(Arch::X86_64),
            _ => Err(format!("unknown architecture `{s}` (i686 or x86_64)")),
        }
    }
}
