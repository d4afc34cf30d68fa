//! Port structures in guest memory. Offsets come from the ABI records of
//! `fabboot::port::abi` (per architecture, checked against mingw-w64's DDK headers by
//! `tests/abi_mingw.rs`), so the host and the driver read the same bytes the same way a
//! definition neither of them wrote says they lie.

use fabboot::port::layout::StructLayout;

use super::Arch;
use super::cpu::Guest;

/// A structure at a guest address.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub layout: StructLayout,
    pub addr: u64,
}

impl At {
    pub fn new(layout: StructLayout, addr: u64) -> At {
        At { layout, addr }
    }

    /// The structure's size on `arch`.
    pub fn size(layout: &StructLayout, arch: Arch) -> u64 {
        match arch {
            Arch::I686 => layout.size32 as u64,
            Arch::X86_64 => layout.size64 as u64,
        }
    }

    /// Offset of `field` on `arch`. A name the record lacks is a bug in the host.
    pub fn offset(layout: &StructLayout, field: &str, arch: Arch) -> u64 {
        let f = layout
            .fields
            .iter()
            .find(|f| f.name == field)
            .unwrap_or_else(|| panic!("{} has no member {field}", layout.name));
        match arch {
            Arch::I686 => f.off32 as u64,
            Arch::X86_64 => f.off64 as u64,
        }
    }

    pub fn field(&self, field: &str, arch: Arch) -> u64 {
        self.addr + At::offset(&self.layout, field, arch)
    }

    pub fn u8(&self, g: &Guest, field: &str) -> u8 {
        g.read_u8(self.field(field, g.arch)).unwrap_or(0)
    }
    pub fn u16(&self, g: &Guest, field: &str) -> u16 {
        g.read_u16(self.field(field, g.arch)).unwrap_or(0)
    }
    pub fn u32(&self, g: &Guest, field: &str) -> u32 {
        g.read_u32(self.field(field, g.arch)).unwrap_or(0)
    }
    pub fn u64(&self, g: &Guest, field: &str) -> u64 {
        g.read_u64(self.field(field, g.arch)).unwrap_or(0)
    }
    pub fn ptr(&self, g: &Guest, field: &str) -> u64 {
        g.read_ptr(self.field(field, g.arch)).unwrap_or(0)
    }
    pub fn set_u8(&self, g: &mut Guest, field: &str, v: u8) {
        let a = self.field(field, g.arch);
        let _ = g.write_u8(a, v);
    }
    pub fn set_u16(&self, g: &mut Guest, field: &str, v: u16) {
        let a = self.field(field, g.arch);
        let _ = g.write_u16(a, v);
    }
    pub fn set_u32(&self, g: &mut Guest, field: &str, v: u32) {
        let a = self.field(field, g.arch);
        let _ = g.write_u32(a, v);
    }
    pub fn set_u64(&self, g: &mut Guest, field: &str, v: u64) {
        let a = self.field(field, g.arch);
        let _ = g.write_u64(a, v);
    }
    pub fn set_ptr(&self, g: &mut Guest, field: &str, v: u64) {
        let a = self.field(field, g.arch);
        let _ = g.write_ptr(a, v);
    }
}
