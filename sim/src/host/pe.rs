//! A PE/COFF loader for driver images (PE32 for i686, PE32+ for x86_64), as the
//! Windows loader and NTLDR do it: headers and sections mapped at a base of the host's
//! choosing, base relocations applied, every import bound to a host implementation, and
//! section protections set from their characteristics.
//!
//! Microsoft PE/COFF specification: §3 (COFF header), §3.4 (optional header and data
//! directories), §4 (section table and characteristics), §6.4 (.reloc, types ABSOLUTE 0,
//! HIGHLOW 3, DIR64 10), §6.3 (import directory table, lookup table, hint/name table).

use unicorn_engine::unicorn_const::Prot;

use super::Arch;
use super::cpu::{Guest, MAX_IMPORTS};

/// Why an image cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not a PE image, or a header or table that does not fit.
    Malformed(String),
    /// A PE image for another machine than the guest.
    WrongMachine { machine: u16, want: Arch },
    /// An import this host does not implement.
    UnresolvedImport { dll: String, name: String },
    /// An import by ordinal (the port drivers are bound by name).
    ImportByOrdinal { dll: String, ordinal: u64 },
    /// A relocation type the loader does not apply.
    Relocation { kind: u16, rva: u32 },
    /// Mapping failed.
    Map(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Malformed(w) => write!(f, "malformed image: {w}"),
            LoadError::WrongMachine { machine, want } => {
                write!(f, "image machine {machine:#x} is not {want:?}")
            }
            LoadError::UnresolvedImport { dll, name } => {
                write!(
                    f,
                    "unresolved import {dll}!{name}: the host does not implement it"
                )
            }
            LoadError::ImportByOrdinal { dll, ordinal } => {
                write!(f, "import {dll}!#{ordinal} by ordinal")
            }
            LoadError::Relocation { kind, rva } => {
                write!(f, "relocation type {kind} at RVA {rva:#x} not supported")
            }
            LoadError::Map(w) => write!(f, "mapping the image: {w}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// One section as loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub rva: u32,
    pub virtual_size: u32,
    pub raw: (u32, u32),
    pub characteristics: u32,
}

/// A bound import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub dll: String,
    pub name: String,
    /// Guest address of the IAT slot that now holds the thunk address.
    pub iat: u64,
}

/// The parsed headers of an image.
#[derive(Clone, Debug)]
pub struct PeImage {
    pub arch: Arch,
    pub image_base: u64,
    pub size_of_image: u32,
    pub entry_rva: u32,
    pub size_of_headers: u32,
    pub sections: Vec<Section>,
    pub import_dir: (u32, u32),
    pub reloc_dir: (u32, u32),
    pub checksum: u32,
}

/// An image mapped into a guest.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub pe: PeImage,
    pub base: u64,
    pub entry: u64,
    pub imports: Vec<Import>,
    /// Relocations applied.
    pub relocations: usize,
}

const IMAGE_SCN_MEM_EXECUTE: u32 = 0x2000_0000;
const IMAGE_SCN_MEM_READ: u32 = 0x4000_0000;
const IMAGE_SCN_MEM_WRITE: u32 = 0x8000_0000;

fn rd16(b: &[u8], at: usize) -> Result<u16, LoadError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| LoadError::Malformed(format!("16-bit field at {at:#x} past the end")))
}

fn rd32(b: &[u8], at: usize) -> Result<u32, LoadError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| LoadError::Malformed(format!("32-bit field at {at:#x} past the end")))
}

fn rd64(b: &[u8], at: usize) -> Result<u64, LoadError> {
    Ok(u64::from(rd32(b, at)?) | u64::from(rd32(b, at + 4)?) << 32)
}

impl PeImage {
    /// Parses the headers of `file`.
    pub fn parse(file: &[u8]) -> Result<PeImage, LoadError> {
        if file.get(0..2) != Some(b"MZ") {
            return Err(LoadError::Malformed("no MZ signature".into()));
        }
        let pe = rd32(file, 0x3C)? as usize;
        if file.get(pe..pe + 4) != Some(b"PE\0\0") {
            return Err(LoadError::Malformed("no PE signature".into()));
        }
        let coff = pe + 4;
        let machine = rd16(file, coff)?;
        let nsections = rd16(file, coff + 2)? as usize;
        let opt_size = rd16(file, coff + 16)? as usize;
        let opt = coff + 20;
        let magic = rd16(file, opt)?;
        let (arch, image_base, dirs) = match (magic, machine) {
            (0x10B, 0x14C) => (Arch::I686, u64::from(rd32(file, opt + 28)?), opt + 96),
            (0x20B, 0x8664) => (Arch::X86_64, rd64(file, opt + 24)?, opt + 112),
            (0x10B, m) => {
                return Err(LoadError::WrongMachine {
                    machine: m,
                    want: Arch::I686,
                });
            }
            (0x20B, m) => {
                return Err(LoadError::WrongMachine {
                    machine: m,
                    want: Arch::X86_64,
                });
            }
            (m, _) => {
                return Err(LoadError::Malformed(format!(
                    "optional header magic {m:#x}"
                )));
            }
        };
        let entry_rva = rd32(file, opt + 16)?;
        let size_of_image = rd32(file, opt + 56)?;
        let size_of_headers = rd32(file, opt + 60)?;
        let checksum = rd32(file, opt + 64)?;
        let ndirs = rd32(file, dirs - 4)? as usize;
        let dir = |i: usize| -> Result<(u32, u32), LoadError> {
            if i >= ndirs {
                return Ok((0, 0));
            }
            Ok((rd32(file, dirs + 8 * i)?, rd32(file, dirs + 8 * i + 4)?))
        };
        let import_dir = dir(1)?;
        let reloc_dir = dir(5)?;
        let table = opt + opt_size;
        let mut sections = Vec::with_capacity(nsections);
        for i in 0..nsections {
            let s = table + 40 * i;
            let name_bytes = file
                .get(s..s + 8)
                .ok_or_else(|| LoadError::Malformed("section table past the end".into()))?;
            let name = String::from_utf8_lossy(name_bytes)
                .trim_end_matches('\0')
                .to_string();
            sections.push(Section {
                name,
                virtual_size: rd32(file, s + 8)?,
                rva: rd32(file, s + 12)?,
                raw: (rd32(file, s + 20)?, rd32(file, s + 16)?),
                characteristics: rd32(file, s + 36)?,
            });
        }
        if size_of_image == 0 || size_of_image > 64 << 20 {
            return Err(LoadError::Malformed(format!(
                "SizeOfImage {size_of_image:#x}"
            )));
        }
        Ok(PeImage {
            arch,
            image_base,
            size_of_image,
            entry_rva,
            size_of_headers,
            sections,
            import_dir,
            reloc_dir,
            checksum,
        })
    }
}

/// The in-memory image being prepared (host side, before it is written to the guest).
struct Staging {
    mem: Vec<u8>,
}

impl Staging {
    fn u16(&self, rva: u32) -> Result<u16, LoadError> {
        rd16(&self.mem, rva as usize)
    }

    fn u32(&self, rva: u32) -> Result<u32, LoadError> {
        rd32(&self.mem, rva as usize)
    }

    fn u64(&self, rva: u32) -> Result<u64, LoadError> {
        rd64(&self.mem, rva as usize)
    }

    fn put(&mut self, rva: u32, bytes: &[u8]) -> Result<(), LoadError> {
        self.mem
            .get_mut(rva as usize..rva as usize + bytes.len())
            .ok_or_else(|| LoadError::Malformed(format!("RVA {rva:#x} outside the image")))?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn cstr(&self, rva: u32) -> Result<String, LoadError> {
        let start = rva as usize;
        let rest = self
            .mem
            .get(start..)
            .ok_or_else(|| LoadError::Malformed(format!("name at RVA {rva:#x} outside")))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| LoadError::Malformed(format!("unterminated name at {rva:#x}")))?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// Loads `file` into `guest` at `base` (a multiple of 64 KiB). `resolve` gives the
/// index of the host implementation of an import, or `None`; imports are bound to
/// [`Guest::thunk`]`(index)`.
pub fn load(
    guest: &mut Guest,
    file: &[u8],
    base: u64,
    mut resolve: impl FnMut(&str, &str) -> Option<usize>,
) -> Result<Loaded, LoadError> {
    let pe = PeImage::parse(file)?;
    if pe.arch != guest.arch {
        return Err(LoadError::WrongMachine {
            machine: match pe.arch {
                Arch::I686 => 0x14C,
                Arch::X86_64 => 0x8664,
            },
            want: guest.arch,
        });
    }
    let size = u64::from(pe.size_of_image).next_multiple_of(0x1000);
    let mut st = Staging {
        mem: vec![0; size as usize],
    };
    let headers = (pe.size_of_headers as usize)
        .min(file.len())
        .min(st.mem.len());
    st.mem[..headers].copy_from_slice(&file[..headers]);
    // Each section's raw data, cut to its virtual size (the rest of a section is zero).
    for s in &pe.sections {
        let len = match s.virtual_size {
            0 => s.raw.1,
            v => s.raw.1.min(v),
        } as usize;
        if len == 0 {
            continue;
        }
        let off = s.raw.0 as usize;
        let src = file.get(off..off + len).ok_or_else(|| {
            LoadError::Malformed(format!(
                "section {} raw data past the end of the file",
                s.name
            ))
        })?;
        st.mem
            .get_mut(s.rva as usize..s.rva as usize + len)
            .ok_or_else(|| LoadError::Malformed(format!("section {} outside SizeOfImage", s.name)))?
            .copy_from_slice(src);
    }

    // Base relocations (§6.4): blocks of (page RVA, block size, entries).
    let delta = base.wrapping_sub(pe.image_base);
    let mut relocations = 0;
    let (rrva, rsize) = pe.reloc_dir;
    let end = u64::from(rrva) + u64::from(rsize);
    let mut at = rrva;
    while u64::from(at) + 8 <= end {
        let page = st.u32(at)?;
        let block = st.u32(at + 4)?;
        if block < 8 || u64::from(at) + u64::from(block) > end {
            return Err(LoadError::Malformed(format!(
                "relocation block of {block} bytes"
            )));
        }
        for e in 0..(block - 8) / 2 {
            let v = st.u16(at.wrapping_add(8 + 2 * e))?;
            let (kind, off) = (v >> 12, u32::from(v & 0xFFF));
            let rva = page.wrapping_add(off);
            match (kind, pe.arch) {
                (0, _) => {}
                (3, Arch::I686) => {
                    let new = st.u32(rva)?.wrapping_add(delta as u32);
                    st.put(rva, &new.to_le_bytes())?;
                    relocations += 1;
                }
                (10, Arch::X86_64) => {
                    let new = st.u64(rva)?.wrapping_add(delta);
                    st.put(rva, &new.to_le_bytes())?;
                    relocations += 1;
                }
                (k, _) => return Err(LoadError::Relocation { kind: k, rva }),
            }
        }
        at += block;
    }

    // Imports (§6.3): descriptors of 20 bytes, ended by a zero one.
    let mut imports = Vec::new();
    let (irva, _) = pe.import_dir;
    let ptr = match pe.arch {
        Arch::I686 => 4u32,
        Arch::X86_64 => 8,
    };
    let mut d = irva;
    loop {
        if irva == 0 {
            break;
        }
        let (lookup, name, iat) = (st.u32(d)?, st.u32(d + 12)?, st.u32(d + 16)?);
        if lookup == 0 && name == 0 && iat == 0 {
            break;
        }
        let dll = st.cstr(name)?;
        let table = if lookup != 0 { lookup } else { iat };
        let mut i = 0;
        loop {
            let entry = match pe.arch {
                Arch::I686 => u64::from(st.u32(table + i * ptr)?),
                Arch::X86_64 => st.u64(table + i * ptr)?,
            };
            if entry == 0 {
                break;
            }
            let ordinal_flag = match pe.arch {
                Arch::I686 => 1 << 31,
                Arch::X86_64 => 1 << 63,
            };
            if entry & ordinal_flag != 0 {
                return Err(LoadError::ImportByOrdinal {
                    dll,
                    ordinal: entry & 0xFFFF,
                });
            }
            let fname = st.cstr((entry & 0x7FFF_FFFF) as u32 + 2)?;
            let index = resolve(&dll, &fname).ok_or_else(|| LoadError::UnresolvedImport {
                dll: dll.clone(),
                name: fname.clone(),
            })?;
            if index >= MAX_IMPORTS {
                return Err(LoadError::Malformed(format!(
                    "import index {index} too large"
                )));
            }
            let slot = iat + i * ptr;
            let thunk = Guest::thunk(index);
            match pe.arch {
                Arch::I686 => st.put(slot, &(thunk as u32).to_le_bytes())?,
                Arch::X86_64 => st.put(slot, &thunk.to_le_bytes())?,
            }
            imports.push(Import {
                dll: dll.clone(),
                name: fname,
                iat: base + u64::from(slot),
            });
            i += 1;
        }
        d += 20;
    }

    // Map: everything read-only first, then each section by its characteristics.
    guest
        .map("image", base, size, Prot::READ | Prot::WRITE)
        .map_err(LoadError::Map)?;
    guest.write(base, &st.mem).map_err(LoadError::Map)?;
    guest
        .protect(base, size, Prot::READ)
        .map_err(LoadError::Map)?;
    for s in &pe.sections {
        let start = u64::from(s.rva) & !0xFFF;
        let end = (u64::from(s.rva) + u64::from(s.virtual_size.max(1))).next_multiple_of(0x1000);
        if end > size || end <= start {
            continue;
        }
        let mut prot = Prot::NONE;
        if s.characteristics & IMAGE_SCN_MEM_READ != 0 {
            prot |= Prot::READ;
        }
        if s.characteristics & IMAGE_SCN_MEM_WRITE != 0 {
            prot |= Prot::WRITE;
        }
        if s.characteristics & IMAGE_SCN_MEM_EXECUTE != 0 {
            prot |= Prot::EXEC;
        }
        guest
            .protect(base + start, end - start, prot)
            .map_err(LoadError::Map)?;
    }
    guest
        .count_instructions_in(base, size)
        .map_err(LoadError::Map)?;
    Ok(Loaded {
        entry: base + u64::from(pe.entry_rva),
        base,
        pe,
        imports,
        relocations,
    })
}
