//! The host emulator's PE loader and CPU on crafted images: relocations applied at a
//! base the image was not linked for, imports bound by name (and an unknown one refused
//! by name), the i686 stdcall/cdecl-varargs and x64 conventions, a port call that calls
//! back into the driver which calls the port again, and policing of a wild write and of
//! a write to a read-only section.
//!
//! The images are built here byte by byte (PE/COFF specification §3, §4, §6.3, §6.4) with
//! hand-assembled code, so the test depends on no toolchain.

use fabboot_sim::host::Arch;
use fabboot_sim::host::cpu::{Access, Arg, ArgReader, Conv, Guest, Imports, RunError};
use fabboot_sim::host::pe::{self, LoadError};

const TEXT: u32 = 0x1000;
const RDATA: u32 = 0x2000;
const DATA: u32 = 0x3000;
const RELOC: u32 = 0x4000;
const SIZE: u32 = 0x5000;
const CONSTANT: u32 = 0x1234_5678;

/// Host functions the crafted images import from "scsiport.sys".
const NAMES: [&str; 3] = ["Combine", "Sum", "CallBack"];

struct Built {
    file: Vec<u8>,
    /// RVAs of the test functions: conventions, callback, relocation, wild write,
    /// write to .rdata.
    funcs: [u32; 5],
}

struct Asm {
    code: Vec<u8>,
    relocs: Vec<u32>,
}

impl Asm {
    fn b(&mut self, bytes: &[u8]) {
        self.code.extend_from_slice(bytes);
    }
    fn here(&self) -> u32 {
        TEXT + self.code.len() as u32
    }
    /// An absolute address needing a base relocation.
    fn abs(&mut self, arch: Arch, va: u64) {
        self.relocs.push(self.here());
        match arch {
            Arch::I686 => self.b(&(va as u32).to_le_bytes()),
            Arch::X86_64 => self.b(&va.to_le_bytes()),
        }
    }
    /// `call [IAT slot]`: absolute on i686, RIP-relative on x86_64.
    fn call_iat(&mut self, arch: Arch, base: u64, slot: u32) {
        self.b(&[0xFF, 0x15]);
        match arch {
            Arch::I686 => self.abs(arch, base + u64::from(slot)),
            Arch::X86_64 => {
                let next = self.here() + 4;
                self.b(&(slot.wrapping_sub(next)).to_le_bytes());
            }
        }
    }
}

fn build(arch: Arch, extra_import: Option<&str>) -> Built {
    let (base, ptr): (u64, u32) = match arch {
        Arch::I686 => (0x1000_0000, 4),
        Arch::X86_64 => (0x1_8000_0000, 8),
    };
    let mut names: Vec<&str> = NAMES.to_vec();
    if let Some(e) = extra_import {
        names.push(e);
    }
    // .rdata: import descriptor (+ null), ILT, IAT, hint/name entries, dll name,
    // then the constant.
    let ilt = RDATA + 40;
    let iat = ilt + ptr * (names.len() as u32 + 1);
    let mut hn = iat + ptr * (names.len() as u32 + 1);
    let mut rdata = vec![0u8; 0x1000];
    let put = |buf: &mut Vec<u8>, rva: u32, bytes: &[u8]| {
        let o = (rva - RDATA) as usize;
        buf[o..o + bytes.len()].copy_from_slice(bytes);
    };
    for (i, n) in names.iter().enumerate() {
        let entry = u64::from(hn);
        let bytes: Vec<u8> = match arch {
            Arch::I686 => (entry as u32).to_le_bytes().to_vec(),
            Arch::X86_64 => entry.to_le_bytes().to_vec(),
        };
        put(&mut rdata, ilt + ptr * i as u32, &bytes);
        put(&mut rdata, iat + ptr * i as u32, &bytes);
        let mut name = vec![0, 0];
        name.extend_from_slice(n.as_bytes());
        name.push(0);
        put(&mut rdata, hn, &name);
        hn += (name.len() as u32).next_multiple_of(2);
    }
    let dll = hn;
    put(&mut rdata, dll, b"scsiport.sys\0");
    let constant = (dll + 16).next_multiple_of(8);
    put(&mut rdata, constant, &CONSTANT.to_le_bytes());
    put(&mut rdata, RDATA, &ilt.to_le_bytes());
    put(&mut rdata, RDATA + 12, &dll.to_le_bytes());
    put(&mut rdata, RDATA + 16, &iat.to_le_bytes());
    let slot = |i: u32| iat + ptr * i;

    let mut a = Asm {
        code: Vec::new(),
        relocs: Vec::new(),
    };
    let mut funcs = [0u32; 5];
    // .data holds a pointer to the constant (itself relocated).
    let mut data = vec![0u8; 0x1000];
    let data_ptr = DATA;
    let mut data_relocs = vec![DATA];
    match arch {
        Arch::I686 => {
            data[..4].copy_from_slice(&((base + u64::from(constant)) as u32).to_le_bytes());
            // f0(x), stdcall: Combine(x, 20, 30) (stdcall) + Sum(2, 5, 7) (cdecl).
            funcs[0] = a.here();
            a.b(&[0x6A, 30, 0x6A, 20, 0xFF, 0x74, 0x24, 0x0C]);
            a.call_iat(arch, base, slot(0));
            a.b(&[0x50, 0x6A, 7, 0x6A, 5, 0x6A, 2]);
            a.call_iat(arch, base, slot(1));
            a.b(&[0x83, 0xC4, 0x0C, 0x59, 0x01, 0xC8, 0xC2, 0x04, 0x00]);
            // cb(x): Combine(x, 0, 0) + 1.
            let cb = a.here();
            a.b(&[0x6A, 0, 0x6A, 0, 0xFF, 0x74, 0x24, 0x0C]);
            a.call_iat(arch, base, slot(0));
            a.b(&[0x40, 0xC2, 0x04, 0x00]);
            // f1(x): CallBack(cb, x).
            funcs[1] = a.here();
            a.b(&[0xFF, 0x74, 0x24, 0x04, 0x68]);
            a.abs(arch, base + u64::from(cb));
            a.call_iat(arch, base, slot(2));
            a.b(&[0xC2, 0x04, 0x00]);
            // f2(): **data_ptr.
            funcs[2] = a.here();
            a.b(&[0xA1]);
            a.abs(arch, base + u64::from(data_ptr));
            a.b(&[0x8B, 0x00, 0xC3]);
            // f3(): a write to 0x1000.
            funcs[3] = a.here();
            a.b(&[
                0xC7, 0x05, 0x00, 0x10, 0x00, 0x00, 0xEF, 0xBE, 0xAD, 0xDE, 0xC3,
            ]);
            // f4(): a write to the constant in .rdata.
            funcs[4] = a.here();
            a.b(&[0xC7, 0x05]);
            a.abs(arch, base + u64::from(constant));
            a.b(&[1, 0, 0, 0, 0xC3]);
        }
        Arch::X86_64 => {
            data[..8].copy_from_slice(&(base + u64::from(constant)).to_le_bytes());
            // f0(x): Combine(x, 20, 30, 40, 50) + Sum(2, 5, 7).
            funcs[0] = a.here();
            a.b(&[0x48, 0x83, 0xEC, 0x38]);
            a.b(&[
                0xBA, 20, 0, 0, 0, 0x41, 0xB8, 30, 0, 0, 0, 0x41, 0xB9, 40, 0, 0, 0,
            ]);
            a.b(&[0xC7, 0x44, 0x24, 0x20, 50, 0, 0, 0]);
            a.call_iat(arch, base, slot(0));
            a.b(&[0x48, 0x89, 0x44, 0x24, 0x28]);
            a.b(&[0xB9, 2, 0, 0, 0, 0xBA, 5, 0, 0, 0, 0x41, 0xB8, 7, 0, 0, 0]);
            a.call_iat(arch, base, slot(1));
            a.b(&[0x48, 0x03, 0x44, 0x24, 0x28, 0x48, 0x83, 0xC4, 0x38, 0xC3]);
            // cb(x): Combine(x, 0, 0, 0, 0) + 1.
            let cb = a.here();
            a.b(&[
                0x48, 0x83, 0xEC, 0x28, 0x31, 0xD2, 0x45, 0x31, 0xC0, 0x45, 0x31, 0xC9,
            ]);
            a.b(&[0xC7, 0x44, 0x24, 0x20, 0, 0, 0, 0]);
            a.call_iat(arch, base, slot(0));
            a.b(&[0x48, 0xFF, 0xC0, 0x48, 0x83, 0xC4, 0x28, 0xC3]);
            // f1(x): CallBack(cb, x).
            funcs[1] = a.here();
            a.b(&[0x48, 0x83, 0xEC, 0x28, 0x89, 0xCA, 0x48, 0xB9]);
            a.abs(arch, base + u64::from(cb));
            a.call_iat(arch, base, slot(2));
            a.b(&[0x48, 0x83, 0xC4, 0x28, 0xC3]);
            // f2(): **data_ptr.
            funcs[2] = a.here();
            a.b(&[0x48, 0xB8]);
            a.abs(arch, base + u64::from(data_ptr));
            a.b(&[0x48, 0x8B, 0x00, 0x8B, 0x00, 0xC3]);
            // f3(): a write to 0x1000.
            funcs[3] = a.here();
            a.b(&[
                0x48, 0xC7, 0xC0, 0x00, 0x10, 0, 0, 0xC7, 0x00, 0xEF, 0xBE, 0xAD, 0xDE, 0xC3,
            ]);
            // f4(): a write to the constant in .rdata.
            funcs[4] = a.here();
            a.b(&[0x48, 0xB8]);
            a.abs(arch, base + u64::from(constant));
            a.b(&[0xC7, 0x00, 1, 0, 0, 0, 0xC3]);
        }
    }
    data_relocs.truncate(1);
    // .reloc: one block per page.
    let kind: u16 = match arch {
        Arch::I686 => 3,
        Arch::X86_64 => 10,
    };
    let mut reloc = Vec::new();
    for page in [TEXT, DATA] {
        let entries: Vec<u16> = a
            .relocs
            .iter()
            .chain(data_relocs.iter())
            .filter(|&&r| r & !0xFFF == page)
            .map(|&r| kind << 12 | (r & 0xFFF) as u16)
            .collect();
        let mut e = entries.clone();
        if e.len() % 2 == 1 {
            e.push(0);
        }
        reloc.extend_from_slice(&page.to_le_bytes());
        reloc.extend_from_slice(&(8 + 2 * e.len() as u32).to_le_bytes());
        for x in e {
            reloc.extend_from_slice(&x.to_le_bytes());
        }
    }

    // Headers.
    let mut f = vec![0u8; SIZE as usize];
    f[0..2].copy_from_slice(b"MZ");
    f[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    f[0x80..0x84].copy_from_slice(b"PE\0\0");
    let coff = 0x84;
    let (machine, opt_size, magic) = match arch {
        Arch::I686 => (0x14Cu16, 224u16, 0x10Bu16),
        Arch::X86_64 => (0x8664, 240, 0x20B),
    };
    f[coff..coff + 2].copy_from_slice(&machine.to_le_bytes());
    f[coff + 2..coff + 4].copy_from_slice(&4u16.to_le_bytes());
    f[coff + 16..coff + 18].copy_from_slice(&opt_size.to_le_bytes());
    f[coff + 18..coff + 20].copy_from_slice(&0x2102u16.to_le_bytes());
    let opt = coff + 20;
    let w32 = |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
    f[opt..opt + 2].copy_from_slice(&magic.to_le_bytes());
    w32(&mut f, opt + 16, funcs[0]);
    match arch {
        Arch::I686 => w32(&mut f, opt + 28, base as u32),
        Arch::X86_64 => f[opt + 24..opt + 32].copy_from_slice(&base.to_le_bytes()),
    }
    w32(&mut f, opt + 32, 0x1000);
    w32(&mut f, opt + 36, 0x1000);
    w32(&mut f, opt + 56, SIZE);
    w32(&mut f, opt + 60, 0x1000);
    let dirs = match arch {
        Arch::I686 => opt + 96,
        Arch::X86_64 => opt + 112,
    };
    w32(&mut f, dirs - 4, 16);
    w32(&mut f, dirs + 8, RDATA);
    w32(&mut f, dirs + 12, 40);
    w32(&mut f, dirs + 40, RELOC);
    w32(&mut f, dirs + 44, reloc.len() as u32);
    let table = opt + opt_size as usize;
    let sections: [(&[u8], u32, u32, u32); 4] = [
        (b".text", TEXT, a.code.len() as u32, 0x6000_0020),
        (b".rdata", RDATA, 0x1000, 0x4000_0040),
        (b".data", DATA, 0x1000, 0xC000_0040),
        (b".reloc", RELOC, reloc.len() as u32, 0x4200_0040),
    ];
    for (i, (name, rva, vsize, ch)) in sections.iter().enumerate() {
        let s = table + 40 * i;
        f[s..s + name.len()].copy_from_slice(name);
        w32(&mut f, s + 8, *vsize);
        w32(&mut f, s + 12, *rva);
        w32(&mut f, s + 16, 0x1000);
        w32(&mut f, s + 20, *rva);
        w32(&mut f, s + 36, *ch);
    }
    f[TEXT as usize..TEXT as usize + a.code.len()].copy_from_slice(&a.code);
    f[RDATA as usize..RDATA as usize + 0x1000].copy_from_slice(&rdata);
    f[DATA as usize..DATA as usize + 0x1000].copy_from_slice(&data);
    f[RELOC as usize..RELOC as usize + reloc.len()].copy_from_slice(&reloc);
    Built { file: f, funcs }
}

/// The host side of the crafted imports.
struct Host {
    combine_args: Vec<Vec<u64>>,
    callback_entry: String,
}

impl Imports for Host {
    fn call_import(
        &mut self,
        guest: &mut Guest,
        index: usize,
        a: &mut ArgReader,
    ) -> Result<u64, RunError> {
        match index {
            0 => {
                let n = if guest.arch == Arch::I686 { 3 } else { 5 };
                let v: Vec<u64> = (0..n).map(|_| u64::from(a.u32(guest))).collect();
                self.combine_args.push(v.clone());
                Ok(v.iter().fold(0, |acc, x| acc * 100 + x))
            }
            1 => {
                let n = a.u32(guest);
                Ok((0..n).map(|_| u64::from(a.u32(guest))).sum())
            }
            2 => {
                let f = a.ptr(guest);
                let x = a.u32(guest);
                let v = guest.call(self, "callback", f, &[Arg::U32(x)])?;
                self.callback_entry = "callback".into();
                Ok(v + 1)
            }
            _ => Err(RunError::Import {
                name: format!("#{index}"),
                what: "no such import".into(),
            }),
        }
    }

    fn convention(&self, index: usize) -> (Conv, u32) {
        match index {
            1 => (Conv::Cdecl, 0),
            2 => (Conv::Stdcall, 2),
            _ => (Conv::Stdcall, 3),
        }
    }

    fn import_name(&self, index: usize) -> String {
        NAMES.get(index).unwrap_or(&"?").to_string()
    }
}

fn loaded(arch: Arch) -> (Guest, u64, Built) {
    let built = build(arch, None);
    let mut g = Guest::new(arch, "test").unwrap();
    let (stack, base) = match arch {
        Arch::I686 => (0x0070_0000u64, 0x0080_0000u64),
        Arch::X86_64 => (0x1_3000_0000, 0x1_4000_0000),
    };
    g.map(
        "stack",
        stack,
        0x4000,
        unicorn_engine::unicorn_const::Prot::READ | unicorn_engine::unicorn_const::Prot::WRITE,
    )
    .unwrap();
    g.set_stack(stack + 0x4000);
    let l = pe::load(&mut g, &built.file, base, |dll, name| {
        assert_eq!(dll, "scsiport.sys");
        NAMES.iter().position(|n| *n == name)
    })
    .unwrap();
    assert_eq!(l.base, base);
    assert_eq!(l.imports.len(), 3);
    assert!(l.relocations >= 3, "relocations applied: {}", l.relocations);
    (g, base, built)
}

fn host() -> Host {
    Host {
        combine_args: Vec::new(),
        callback_entry: String::new(),
    }
}

#[test]
fn relocations_are_applied_at_a_base_the_image_was_not_linked_for() {
    for arch in [Arch::I686, Arch::X86_64] {
        let (mut g, base, b) = loaded(arch);
        let v = g
            .call(&mut host(), "f2", base + u64::from(b.funcs[2]), &[])
            .unwrap();
        assert_eq!(v & 0xFFFF_FFFF, u64::from(CONSTANT), "{arch:?}");
    }
}

#[test]
fn calling_conventions_stdcall_cdecl_varargs_and_x64() {
    for arch in [Arch::I686, Arch::X86_64] {
        let (mut g, base, b) = loaded(arch);
        let mut h = host();
        let sp = g.stack_pointer();
        let v = g
            .call(&mut h, "f0", base + u64::from(b.funcs[0]), &[Arg::U32(9)])
            .unwrap();
        let (combined, args) = match arch {
            Arch::I686 => (9_20_30, vec![9, 20, 30]),
            Arch::X86_64 => (9_20_30_40_50, vec![9, 20, 30, 40, 50]),
        };
        assert_eq!(v & 0xFFFF_FFFF_FFFF, combined + 12, "{arch:?}");
        assert_eq!(h.combine_args, vec![args], "{arch:?}: argument order");
        assert_eq!(g.stack_pointer(), sp, "{arch:?}: the stack is balanced");
    }
}

#[test]
fn a_port_call_may_call_back_into_the_driver_which_calls_the_port_again() {
    for arch in [Arch::I686, Arch::X86_64] {
        let (mut g, base, b) = loaded(arch);
        let mut h = host();
        let v = g
            .call(&mut h, "f1", base + u64::from(b.funcs[1]), &[Arg::U32(7)])
            .unwrap();
        let zeros = if arch == Arch::I686 { 2 } else { 4 };
        let expect = 7 * 100u64.pow(zeros) + 1 + 1;
        assert_eq!(v & 0xFFFF_FFFF_FFFF, expect, "{arch:?}");
        assert_eq!(h.callback_entry, "callback");
    }
}

#[test]
fn an_import_the_host_lacks_is_a_load_error_naming_it() {
    for arch in [Arch::I686, Arch::X86_64] {
        let built = build(arch, Some("ScsiPortNoSuchThing"));
        let mut g = Guest::new(arch, "test").unwrap();
        let e = pe::load(&mut g, &built.file, 0x0080_0000, |_, name| {
            NAMES.iter().position(|n| *n == name)
        })
        .unwrap_err();
        assert_eq!(
            e,
            LoadError::UnresolvedImport {
                dll: "scsiport.sys".into(),
                name: "ScsiPortNoSuchThing".into()
            }
        );
        assert!(e.to_string().contains("scsiport.sys!ScsiPortNoSuchThing"));
    }
}

#[test]
fn a_wild_write_and_a_write_to_read_only_data_are_caught_with_their_context() {
    for arch in [Arch::I686, Arch::X86_64] {
        let (mut g, base, b) = loaded(arch);
        let f3 = base + u64::from(b.funcs[3]);
        match g.call(&mut host(), "HwStartIo", f3, &[]) {
            Err(RunError::Violation(v)) => {
                assert_eq!(v.address, 0x1000, "{arch:?}");
                assert_eq!(v.access, Access::Write);
                assert_eq!(v.entry, "HwStartIo");
                assert_eq!(v.mode, "test");
                assert!((f3..f3 + 16).contains(&v.pc), "{arch:?}: pc {:#x}", v.pc);
            }
            other => panic!("{arch:?}: {other:?}"),
        }
        let f4 = base + u64::from(b.funcs[4]);
        match g.call(&mut host(), "HwInterrupt", f4, &[]) {
            Err(RunError::Violation(v)) => {
                assert_eq!(v.access, Access::WriteProtected, "{arch:?}");
                assert_eq!(v.entry, "HwInterrupt");
            }
            other => panic!("{arch:?}: {other:?}"),
        }
    }
}

#[test]
fn headers_that_are_not_a_pe_image_are_refused() {
    let mut g = Guest::new(Arch::I686, "test").unwrap();
    assert!(matches!(
        pe::load(&mut g, b"not an image", 0x0080_0000, |_, _| None),
        Err(LoadError::Malformed(_))
    ));
    let built = build(Arch::X86_64, None);
    assert!(matches!(
        pe::load(&mut g, &built.file, 0x0080_0000, |_, _| Some(0)),
        Err(LoadError::WrongMachine { .. })
    ));
}
