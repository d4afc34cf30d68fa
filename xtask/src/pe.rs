//! What each driver image must be, checked with a PE parser (`object`) and an x86
//! decoder (`iced-x86`) that this project did not write:
//!
//! * machine type for its architecture; subsystem NATIVE;
//! * entry point at `DriverEntry`;
//! * a valid PE checksum (the kernel checks it for boot drivers);
//! * imports only from its port driver;
//! * base relocations present and not stripped (drivers load at any address);
//! * no section both writable and executable; no TLS directory;
//! * for i686, no x87/MMX/SSE/AVX instruction in any executable section (NTLDR runs
//!   before the OS enables SSE; 32-bit kernel code may not touch FPU state unsaved);
//! * the embedded configuration block: a section `.fbcfg` of initialised, readable,
//!   non-executable, non-discardable data holding a valid block (magic `FBCONFIG`,
//!   version 1, 96 bytes, CRC-32 of bytes 0..92 at 92; layout in the driver's
//!   `bootcfg::block`, read here by code of its own), and no other valid block in the
//!   file, so a tool that patches "the" block cannot pick the wrong one;
//! * the version resource: the resource directory (read with `object`'s resource API)
//!   lies in a section `.rsrc` of readable initialised data (not writable, executable or
//!   discardable), holds exactly one `RT_VERSION` resource, name 1, language 0x0409,
//!   and that `VS_VERSIONINFO` (read by `verinfo`) is well formed and says: file and
//!   product version `major.minor.patch.0` of the `fabboot` crate, in
//!   `VS_FIXEDFILEINFO` and as the `FileVersion`/`ProductVersion` strings; a system
//!   driver (`VFT_DRV`, `VFT2_DRV_SYSTEM`) for `VOS_NT_WINDOWS32` with no file flags;
//!   the strings of table 040904B0 (`CompanyName`, `FileDescription`, `InternalName`,
//!   `LegalCopyright`, `ProductName` not empty, `OriginalFilename` the image's own file
//!   name); and a `Translation` 0x0409/1200.
//!
//! After the real images pass, each check is shown to be live: a copy of each image is
//! broken in the one way the check looks for, and the check must reject it.

use std::fmt::Write as _;

use iced_x86::{Decoder, DecoderOptions};
use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile, ResourceNameOrId};

use crate::images::{self, Flavour, Image};
use crate::verinfo::{self, VersionInfo};

/// Offset of `CheckSum` in the optional header (same for PE32 and PE32+).
const CHECKSUM_FIELD: usize = 64;

/// Facts about an image gathered while checking it, for the report.
#[derive(Debug, Default)]
pub struct Facts {
    pub size: usize,
    pub machine: u16,
    pub sections: usize,
    pub relocations: usize,
    pub imports: Vec<String>,
    pub instructions: usize,
    /// File offset of the configuration block, and whether it names a target.
    pub config_block: Option<(usize, bool)>,
    /// The version resource's `FileVersion` string and `OriginalFilename`.
    pub version: Option<(String, String)>,
}

/// Checks `data` as the image of `flavour` for `arch` (`"i686"` or `"x86_64"`) built
/// from the crate at `version` (`major.minor.patch.0`); every violation is reported, not
/// just the first.
pub fn check(
    data: &[u8],
    arch: &str,
    flavour: &Flavour,
    version: [u16; 4],
) -> Result<Facts, Vec<String>> {
    match arch {
        "i686" => check_as::<pe::ImageNtHeaders32>(
            data,
            pe::IMAGE_FILE_MACHINE_I386,
            32,
            flavour,
            version,
        ),
        "x86_64" => check_as::<pe::ImageNtHeaders64>(
            data,
            pe::IMAGE_FILE_MACHINE_AMD64,
            64,
            flavour,
            version,
        ),
        other => Err(vec![format!("unknown architecture {other}")]),
    }
}

fn check_as<Pe: ImageNtHeaders>(
    data: &[u8],
    machine: u16,
    bitness: u32,
    flavour: &Flavour,
    version: [u16; 4],
) -> Result<Facts, Vec<String>> {
    let port_driver = flavour.port_driver;
    let file = PeFile::<Pe>::parse(data).map_err(|e| vec![format!("not a PE image: {e}")])?;
    let mut errors = Vec::new();
    let mut facts = Facts {
        size: data.len(),
        ..Facts::default()
    };
    let header = file.nt_headers().file_header();
    let optional = file.nt_headers().optional_header();

    facts.machine = header.machine.get(LE);
    if facts.machine != machine {
        errors.push(format!(
            "machine {:#06x}, expected {machine:#06x}",
            facts.machine
        ));
    }
    if optional.subsystem() != pe::IMAGE_SUBSYSTEM_NATIVE {
        errors.push(format!(
            "subsystem {}, expected NATIVE (1)",
            optional.subsystem()
        ));
    }

    // Entry point: must be the address of `DriverEntry`.
    let entry = optional.address_of_entry_point();
    match file.export_table() {
        Ok(Some(exports)) => {
            let driver_entry = exports.exports().ok().and_then(|list| {
                list.into_iter().find_map(|e| match (e.name, e.target) {
                    (Some(b"DriverEntry"), object::read::pe::ExportTarget::Address(rva)) => {
                        Some(rva)
                    }
                    _ => None,
                })
            });
            match driver_entry {
                Some(rva) if rva == entry => {}
                Some(rva) => errors.push(format!(
                    "entry point {entry:#x} is not DriverEntry ({rva:#x})"
                )),
                None => errors.push("no DriverEntry symbol to compare the entry point with".into()),
            }
        }
        _ => errors.push("no export table naming DriverEntry".into()),
    }

    // Checksum.
    let nt_offset = nt_headers_offset(data);
    match nt_offset.map(|o| o + 4 + 20 + CHECKSUM_FIELD) {
        Some(field) if field + 4 <= data.len() => {
            let stored = optional.check_sum();
            let computed = pe_checksum(data, field);
            if stored != computed {
                errors.push(format!("PE checksum {stored:#x}, computed {computed:#x}"));
            }
        }
        _ => errors.push("cannot locate the checksum field".into()),
    }

    // Imports.
    match file.import_table() {
        Ok(Some(table)) => {
            let mut descriptors = match table.descriptors() {
                Ok(d) => d,
                Err(e) => {
                    errors.push(format!("bad import descriptors: {e}"));
                    return finish(errors, facts);
                }
            };
            while let Ok(Some(d)) = descriptors.next() {
                match table.name(d.name.get(LE)) {
                    Ok(name) => {
                        let name = String::from_utf8_lossy(name).into_owned();
                        if !name.eq_ignore_ascii_case(port_driver) {
                            errors.push(format!(
                                "imports from {name}; only {port_driver} is allowed"
                            ));
                        }
                        facts.imports.push(name);
                    }
                    Err(e) => errors.push(format!("bad import name: {e}")),
                }
            }
            if facts.imports.is_empty() {
                errors.push(format!("imports nothing from {port_driver}"));
            }
        }
        Ok(None) => errors.push(format!(
            "no import table; expected imports from {port_driver}"
        )),
        Err(e) => errors.push(format!("bad import table: {e}")),
    }

    // Relocations.
    if header.characteristics.get(LE) & pe::IMAGE_FILE_RELOCS_STRIPPED != 0 {
        errors.push("relocations stripped".into());
    }
    match file
        .data_directories()
        .relocation_blocks(data, &file.section_table())
    {
        Ok(Some(mut blocks)) => {
            while let Ok(Some(block)) = blocks.next() {
                facts.relocations += block.count();
            }
        }
        Ok(None) => {}
        Err(e) => errors.push(format!("bad relocation directory: {e}")),
    }
    if facts.relocations == 0 {
        errors.push("no base relocations: the image could load only at its preferred base".into());
    }

    // TLS.
    if let Some(tls) = file.data_directories().get(pe::IMAGE_DIRECTORY_ENTRY_TLS)
        && (tls.virtual_address.get(LE) != 0 || tls.size.get(LE) != 0)
    {
        errors.push("has a TLS directory".into());
    }

    // The configuration block.
    let blocks = config_blocks(data);
    let mut in_section = false;
    for section in file.section_table().iter() {
        if section.raw_name() != b".fbcfg" {
            continue;
        }
        let flags = section.characteristics.get(LE);
        let want = pe::IMAGE_SCN_CNT_INITIALIZED_DATA | pe::IMAGE_SCN_MEM_READ;
        if flags & want != want
            || flags & (pe::IMAGE_SCN_MEM_EXECUTE | pe::IMAGE_SCN_MEM_DISCARDABLE) != 0
        {
            errors.push(format!(
                "configuration block section .fbcfg has flags {flags:#x}: not readable \
                 initialised data, or executable, or discardable"
            ));
        }
        let start = section.pointer_to_raw_data.get(LE) as usize;
        let end = start + section.size_of_raw_data.get(LE) as usize;
        in_section = blocks.iter().any(|(at, _)| (start..end).contains(at));
    }
    match blocks.as_slice() {
        [one] if in_section => facts.config_block = Some(*one),
        [] => errors.push("no valid configuration block in the image".into()),
        [_] => errors.push("the configuration block is not in a section .fbcfg".into()),
        more => errors.push(format!(
            "{} valid configuration blocks in the image; a patch tool needs exactly one",
            more.len()
        )),
    }

    // The version resource.
    match version_resource(&file, data) {
        Ok((language, info)) => {
            for e in version_errors(language, &info, flavour.file, version) {
                errors.push(format!("version resource: {e}"));
            }
            facts.version = info
                .string(STRING_TABLE, "FileVersion")
                .zip(info.string(STRING_TABLE, "OriginalFilename"))
                .map(|(v, f)| (v.to_string(), f.to_string()));
        }
        Err(e) => errors.push(format!("version resource: {e}")),
    }

    // Sections.
    for section in file.section_table().iter() {
        facts.sections += 1;
        let name = String::from_utf8_lossy(section.raw_name())
            .trim_end_matches('\0')
            .to_string();
        let flags = section.characteristics.get(LE);
        if name == ".rsrc" {
            let want = pe::IMAGE_SCN_CNT_INITIALIZED_DATA | pe::IMAGE_SCN_MEM_READ;
            let refused =
                pe::IMAGE_SCN_MEM_WRITE | pe::IMAGE_SCN_MEM_EXECUTE | pe::IMAGE_SCN_MEM_DISCARDABLE;
            if flags & want != want || flags & refused != 0 {
                errors.push(format!(
                    "section .rsrc has flags {flags:#x}: not readable initialised data, or \
                     writable, executable or discardable"
                ));
            }
        }
        if flags & pe::IMAGE_SCN_MEM_WRITE != 0 && flags & pe::IMAGE_SCN_MEM_EXECUTE != 0 {
            errors.push(format!("section {name} is both writable and executable"));
        }
        if flags & pe::IMAGE_SCN_MEM_EXECUTE != 0 && bitness == 32 {
            let Ok(code) = section.pe_data(data) else {
                errors.push(format!("section {name}: cannot read its data"));
                continue;
            };
            let ip = u64::from(section.virtual_address.get(LE));
            facts.instructions += floating_point_free(code, ip, &name, &mut errors);
        }
    }

    finish(errors, facts)
}

/// `RT_VERSION`, the resource type of version information.
const RT_VERSION: u16 = 16;
/// The name of the one version resource (`VS_VERSION_INFO`).
const VS_VERSION_INFO: u16 = 1;
/// English (United States): the resource's language and its string table's.
const LANG_EN_US: u16 = 0x0409;
/// Code page 1200 (UTF-16LE), the string table's and the translation's.
const CP_UTF16LE: u16 = 1200;
/// The string table: `LANG_EN_US` and `CP_UTF16LE` in hex.
const STRING_TABLE: &str = "040904B0";
/// Strings the table must hold, not empty (besides the checked ones).
const REQUIRED_STRINGS: &[&str] = &[
    "CompanyName",
    "FileDescription",
    "InternalName",
    "LegalCopyright",
    "ProductName",
];

/// The image's one version resource: its language and its decoded `VS_VERSIONINFO`,
/// found through the resource directory (type `RT_VERSION`, name 1, one language).
fn version_resource<Pe: ImageNtHeaders>(
    file: &PeFile<'_, Pe>,
    data: &[u8],
) -> Result<(u16, VersionInfo), String> {
    let sections = file.section_table();
    let directories = file.data_directories();
    let directory = match directories.resource_directory(data, &sections) {
        Ok(Some(directory)) => directory,
        Ok(None) => return Err("no version resource: the image has no resource directory".into()),
        Err(e) => return Err(format!("bad resource directory: {e}")),
    };
    let rva = directories
        .get(pe::IMAGE_DIRECTORY_ENTRY_RESOURCE)
        .map_or(0, |d| d.virtual_address.get(LE));
    let home = sections.iter().find(|s| {
        let start = s.virtual_address.get(LE);
        rva >= start && rva - start < s.virtual_size.get(LE).max(s.size_of_raw_data.get(LE))
    });
    if home.map(|s| s.raw_name()) != Some(b".rsrc") {
        return Err(format!(
            "the resource directory at {rva:#x} is not in a section .rsrc"
        ));
    }
    let bad = |e: object::read::Error| format!("bad resource directory: {e}");
    let id = |name: ResourceNameOrId| match name {
        ResourceNameOrId::Id(id) => Some(id),
        ResourceNameOrId::Name(_) => None,
    };
    let root = directory.root().map_err(bad)?;
    let types = root
        .entries
        .iter()
        .find(|e| id(e.name_or_id()) == Some(RT_VERSION))
        .ok_or("no version resource (RT_VERSION) in the resource directory")?;
    let names = types
        .data(directory)
        .map_err(bad)?
        .table()
        .ok_or("RT_VERSION is a data entry, not a directory of names")?;
    let [name] = names.entries else {
        return Err(format!(
            "{} RT_VERSION resources, expected one",
            names.entries.len()
        ));
    };
    if id(name.name_or_id()) != Some(VS_VERSION_INFO) {
        return Err("the RT_VERSION resource is not number 1 (VS_VERSION_INFO)".into());
    }
    let languages = name
        .data(directory)
        .map_err(bad)?
        .table()
        .ok_or("RT_VERSION 1 is a data entry, not a directory of languages")?;
    let [language] = languages.entries else {
        return Err(format!(
            "RT_VERSION 1 in {} languages, expected one",
            languages.entries.len()
        ));
    };
    let language_id = id(language.name_or_id()).ok_or("a language given by name")?;
    let entry = language
        .data(directory)
        .map_err(bad)?
        .data()
        .ok_or("a directory where the version data belongs")?;
    let (at, size) = (entry.offset_to_data.get(LE), entry.size.get(LE));
    let bytes = sections
        .pe_data_at(data, at)
        .and_then(|b| b.get(..size as usize))
        .ok_or_else(|| format!("its {size} bytes at {at:#x} are not in the file"))?;
    let info = verinfo::parse(bytes).map_err(|e| e.to_string())?;
    Ok((language_id, info))
}

/// What in a well-formed version resource differs from what the image of `file` at
/// crate `version` must say.
fn version_errors(language: u16, info: &VersionInfo, file: &str, version: [u16; 4]) -> Vec<String> {
    let mut errors = Vec::new();
    let dotted = verinfo::dotted(version);
    if language != LANG_EN_US {
        errors.push(format!(
            "language {language:#06x}, expected {LANG_EN_US:#06x} (en-US)"
        ));
    }
    let fixed = &info.fixed;
    for (what, got) in [
        ("file", fixed.file_version),
        ("product", fixed.product_version),
    ] {
        if got != version {
            errors.push(format!(
                "VS_FIXEDFILEINFO {what} version {}, expected {dotted} (the crate's)",
                verinfo::dotted(got)
            ));
        }
    }
    for (what, got, want) in [
        ("dwFileOS", fixed.file_os, verinfo::VOS_NT_WINDOWS32),
        ("dwFileType", fixed.file_type, verinfo::VFT_DRV),
        (
            "dwFileSubtype",
            fixed.file_subtype,
            verinfo::VFT2_DRV_SYSTEM,
        ),
        ("dwFileFlags", fixed.file_flags, 0),
    ] {
        if got != want {
            errors.push(format!(
                "VS_FIXEDFILEINFO {what} {got:#x}, expected {want:#x}"
            ));
        }
    }
    let string = |key: &str| info.string(STRING_TABLE, key);
    for (key, want) in [
        ("OriginalFilename", file),
        ("FileVersion", dotted.as_str()),
        ("ProductVersion", dotted.as_str()),
    ] {
        match string(key) {
            Some(got) if got == want => {}
            Some(got) => errors.push(format!("{key} `{got}`, expected `{want}`")),
            None => errors.push(format!("no {key} in string table {STRING_TABLE}")),
        }
    }
    for key in REQUIRED_STRINGS {
        if string(key).is_none_or(str::is_empty) {
            errors.push(format!(
                "no {key} (or empty) in string table {STRING_TABLE}"
            ));
        }
    }
    if !info.translations.contains(&(LANG_EN_US, CP_UTF16LE)) {
        errors.push(format!(
            "Translation {:x?} lacks ({LANG_EN_US:#06x}, {CP_UTF16LE})",
            info.translations
        ));
    }
    errors
}

/// Magic of the configuration block.
const CONFIG_MAGIC: &[u8; 8] = b"FBCONFIG";
/// Bytes of a version-1 configuration block.
const CONFIG_LEN: usize = 96;

/// Every valid configuration block in `data`: its offset and its "configured" flag.
fn config_blocks(data: &[u8]) -> Vec<(usize, bool)> {
    let mut found = Vec::new();
    for at in 0..data.len().saturating_sub(CONFIG_LEN - 1) {
        let b = &data[at..at + CONFIG_LEN];
        if &b[..8] != CONFIG_MAGIC
            || u16::from_le_bytes([b[8], b[9]]) != 1
            || usize::from(u16::from_le_bytes([b[10], b[11]])) != CONFIG_LEN
        {
            continue;
        }
        let stored = u32::from_le_bytes([b[92], b[93], b[94], b[95]]);
        if stored == crc32_ieee(&b[..92]) {
            found.push((at, b[12] & 1 != 0));
        }
    }
    found
}

/// CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320, initial value and final XOR
/// all ones).
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn finish(errors: Vec<String>, facts: Facts) -> Result<Facts, Vec<String>> {
    if errors.is_empty() {
        Ok(facts)
    } else {
        Err(errors)
    }
}

/// Offset of the `PE\0\0` signature (`e_lfanew`).
fn nt_headers_offset(data: &[u8]) -> Option<usize> {
    let bytes = data.get(0x3C..0x40)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
}

/// The PE image checksum: the one's-complement-style 16-bit sum of the file (the
/// checksum field counted as zero) folded to 16 bits, plus the file length.
pub fn pe_checksum(data: &[u8], checksum_field: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, pair) in data.chunks(2).enumerate() {
        let at = i * 2;
        if at == checksum_field || at == checksum_field + 2 {
            continue;
        }
        let word = u16::from_le_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u64::from(word);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

/// Decodes an executable section of a 32-bit image and reports every instruction that
/// needs the x87 FPU, MMX, SSE, AVX or their state-save instructions, and every byte
/// sequence that is not an instruction. Returns the number of instructions decoded.
fn floating_point_free(code: &[u8], ip: u64, section: &str, errors: &mut Vec<String>) -> usize {
    const FORBIDDEN: &[&str] = &[
        "FPU", "MMX", "SSE", "SSSE", "AVX", "F16C", "FMA", "D3NOW", "XOP", "FXSR", "XSAVE", "AMX",
        "KNC",
    ];
    let mut decoder = Decoder::with_ip(32, code, ip, DecoderOptions::NONE);
    let mut count = 0;
    let mut reported = 0;
    for instruction in &mut decoder {
        count += 1;
        let bad = if instruction.is_invalid() {
            Some("undecodable bytes".to_string())
        } else {
            instruction
                .cpuid_features()
                .iter()
                .map(|f| format!("{f:?}"))
                .find(|f| FORBIDDEN.iter().any(|p| f.starts_with(p)))
        };
        if let Some(what) = bad {
            reported += 1;
            if reported <= 10 {
                errors.push(format!(
                    "{section}+{:#x}: {instruction} ({what}) in an i686 image",
                    instruction.ip()
                ));
            }
        }
    }
    if reported > 10 {
        errors.push(format!(
            "{section}: {} more such instructions",
            reported - 10
        ));
    }
    count
}

/// Checks every built image, prints a report, then proves each check live on broken
/// copies of the images.
pub fn check_all() -> Result<(), String> {
    let mut report = String::new();
    let mut failures = String::new();
    let version = images::fabboot_version()?;
    for image in images::all_images() {
        let data = std::fs::read(&image.path).map_err(|e| {
            format!(
                "{}: {e} (run `cargo xtask build` first)",
                image.path.display()
            )
        })?;
        match check(&data, image.target.arch, image.flavour, version) {
            Ok(facts) => {
                let _ = writeln!(
                    report,
                    "ok  {:<7} {:<13} {:>7} bytes, {} sections, {} relocations, imports {}, \
                     configuration block at {:#x} ({}), version {}{}",
                    image.target.arch,
                    image.flavour.file,
                    facts.size,
                    facts.sections,
                    facts.relocations,
                    facts.imports.join(","),
                    facts.config_block.map_or(0, |(at, _)| at),
                    match facts.config_block {
                        Some((_, true)) => "configured",
                        _ => "not configured",
                    },
                    facts.version.map_or(String::new(), |(v, _)| v),
                    if facts.instructions > 0 {
                        format!(
                            ", {} instructions free of x87/MMX/SSE/AVX",
                            facts.instructions
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Err(errors) => {
                let _ = writeln!(failures, "{}:", image.path.display());
                for e in errors {
                    let _ = writeln!(failures, "    {e}");
                }
            }
        }
        if failures.is_empty() {
            prove_checks_live(&image, &data, version, &mut failures);
        }
    }
    print!("{report}");
    if failures.is_empty() {
        println!("image checks: 4 images pass; every check rejected its broken copy");
        Ok(())
    } else {
        Err(format!("image checks failed:\n{failures}"))
    }
}

/// A way of breaking an image, and what the check must then say.
struct Mutation {
    name: &'static str,
    expect: &'static str,
    apply: fn(&mut [u8], &Image) -> bool,
}

const MUTATIONS: &[Mutation] = &[
    Mutation {
        name: "flip a byte of the last section",
        expect: "checksum",
        apply: flip_last_byte,
    },
    Mutation {
        name: "import from ntoskrnl.exe",
        expect: "only",
        apply: |d, img| replace_once(d, img.flavour.port_driver.as_bytes(), b"ntoskrnl.exe"),
    },
    Mutation {
        name: "make .text writable",
        expect: "writable and executable",
        apply: text_writable,
    },
    Mutation {
        name: "add a TLS directory",
        expect: "TLS",
        apply: add_tls,
    },
    Mutation {
        name: "move the entry point",
        expect: "not DriverEntry",
        apply: move_entry,
    },
    Mutation {
        name: "console subsystem",
        expect: "subsystem",
        apply: console_subsystem,
    },
    Mutation {
        name: "strip relocations",
        expect: "relocations stripped",
        apply: strip_relocs,
    },
    Mutation {
        name: "an SSE instruction at the entry",
        expect: "SSE",
        apply: sse_at_entry,
    },
    Mutation {
        name: "damage the configuration block",
        expect: "configuration block",
        apply: damage_config_block,
    },
    Mutation {
        name: "drop the resource directory",
        expect: "no version resource",
        apply: drop_resources,
    },
    Mutation {
        name: "make .rsrc writable",
        expect: "section .rsrc",
        apply: |d, _| add_section_flag(d, b".rsrc\0\0\0", pe::IMAGE_SCN_MEM_WRITE),
    },
    Mutation {
        name: "overrun the VS_VERSIONINFO length",
        expect: "wLength",
        apply: overrun_version_info,
    },
    Mutation {
        name: "bump the file version in VS_FIXEDFILEINFO",
        expect: "VS_FIXEDFILEINFO file version",
        apply: bump_fixed_version,
    },
    Mutation {
        name: "rename the image in OriginalFilename",
        expect: "OriginalFilename",
        apply: rename_original_filename,
    },
];

fn prove_checks_live(image: &Image, data: &[u8], version: [u16; 4], failures: &mut String) {
    for m in MUTATIONS {
        let mut broken = data.to_vec();
        if !(m.apply)(&mut broken, image) {
            continue; // not applicable to this image (the SSE case on x86_64)
        }
        // Keep the checksum right so each mutation tests its own check only.
        if m.expect != "checksum" {
            fix_checksum(&mut broken);
        }
        match check(&broken, image.target.arch, image.flavour, version) {
            Err(errors) if errors.iter().any(|e| e.contains(m.expect)) => {}
            other => {
                let _ = writeln!(
                    failures,
                    "{}: check not live: after `{}` expected an error mentioning `{}`, got {:?}",
                    image.path.display(),
                    m.name,
                    m.expect,
                    other.map(|_| "no error")
                );
            }
        }
    }
}

fn optional_header_offset(d: &[u8]) -> Option<usize> {
    nt_headers_offset(d).map(|o| o + 4 + 20)
}

fn section_headers(d: &[u8]) -> Option<(usize, usize)> {
    let nt = nt_headers_offset(d)?;
    let count = u16::from_le_bytes(d.get(nt + 6..nt + 8)?.try_into().ok()?) as usize;
    let optional_size = u16::from_le_bytes(d.get(nt + 20..nt + 22)?.try_into().ok()?) as usize;
    Some((nt + 24 + optional_size, count))
}

/// Rewrites the PE checksum of `d` to match its contents.
pub fn fix_checksum(d: &mut [u8]) {
    if let Some(field) = optional_header_offset(d).map(|o| o + CHECKSUM_FIELD) {
        let sum = pe_checksum(d, field);
        if let Some(slot) = d.get_mut(field..field + 4) {
            slot.copy_from_slice(&sum.to_le_bytes());
        }
    }
}

fn flip_last_byte(d: &mut [u8], _: &Image) -> bool {
    // The last bytes are section padding of the relocation section; flipping one keeps
    // the image parseable and changes nothing but the checksum.
    match d.last_mut() {
        Some(b) => {
            *b ^= 0x5A;
            true
        }
        None => false,
    }
}

fn replace_once(d: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    assert_eq!(from.len(), to.len());
    match d.windows(from.len()).position(|w| w == from) {
        Some(at) => {
            d[at..at + to.len()].copy_from_slice(to);
            true
        }
        None => false,
    }
}

fn text_writable(d: &mut [u8], _: &Image) -> bool {
    add_section_flag(d, b".text\0\0\0", pe::IMAGE_SCN_MEM_WRITE)
}

fn add_section_flag(d: &mut [u8], name: &[u8; 8], flag: u32) -> bool {
    let Some((table, count)) = section_headers(d) else {
        return false;
    };
    for i in 0..count {
        let h = table + i * 40;
        if d.get(h..h + 8) == Some(name) {
            let flags = h + 36;
            let v = u32::from_le_bytes(d[flags..flags + 4].try_into().unwrap()) | flag;
            d[flags..flags + 4].copy_from_slice(&v.to_le_bytes());
            return true;
        }
    }
    false
}

fn drop_resources(d: &mut [u8], _: &Image) -> bool {
    let Some(at) = data_directory(d, pe::IMAGE_DIRECTORY_ENTRY_RESOURCE) else {
        return false;
    };
    d[at..at + 8].fill(0);
    true
}

/// The file offset of the first UTF-16LE `text` in `d`.
fn find_utf16(d: &[u8], text: &str) -> Option<usize> {
    let needle: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    d.windows(needle.len()).position(|w| w == needle)
}

fn overrun_version_info(d: &mut [u8], _: &Image) -> bool {
    // wLength is the first word of the block, 6 bytes before its key.
    match find_utf16(d, "VS_VERSION_INFO\0").and_then(|at| at.checked_sub(6)) {
        Some(block) => {
            d[block..block + 2].copy_from_slice(&0xFFF0u16.to_le_bytes());
            true
        }
        None => false,
    }
}

fn bump_fixed_version(d: &mut [u8], _: &Image) -> bool {
    let signature = verinfo::FIXED_SIGNATURE.to_le_bytes();
    match d.windows(4).position(|w| w == signature) {
        Some(at) => {
            // dwFileVersionMS: the low word is the minor version.
            d[at + 8] = d[at + 8].wrapping_add(1);
            true
        }
        None => false,
    }
}

fn rename_original_filename(d: &mut [u8], _: &Image) -> bool {
    // The value follows the key's 34 bytes (with its NUL), already DWORD-aligned after
    // the 6-byte header.
    match find_utf16(d, "OriginalFilename\0") {
        Some(key) => {
            d[key + 34] ^= 0x01;
            true
        }
        None => false,
    }
}

fn data_directory(d: &[u8], index: usize) -> Option<usize> {
    let opt = optional_header_offset(d)?;
    let magic = u16::from_le_bytes(d.get(opt..opt + 2)?.try_into().ok()?);
    let dirs = if magic == pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC {
        opt + 112
    } else {
        opt + 96
    };
    Some(dirs + index * 8)
}

fn add_tls(d: &mut [u8], _: &Image) -> bool {
    let Some(at) = data_directory(d, pe::IMAGE_DIRECTORY_ENTRY_TLS) else {
        return false;
    };
    d[at..at + 4].copy_from_slice(&0x1000u32.to_le_bytes());
    d[at + 4..at + 8].copy_from_slice(&0x18u32.to_le_bytes());
    true
}

fn move_entry(d: &mut [u8], _: &Image) -> bool {
    let Some(at) = optional_header_offset(d).map(|o| o + 16) else {
        return false;
    };
    let entry = u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
    d[at..at + 4].copy_from_slice(&(entry + 1).to_le_bytes());
    true
}

fn console_subsystem(d: &mut [u8], _: &Image) -> bool {
    let Some(at) = optional_header_offset(d).map(|o| o + 68) else {
        return false;
    };
    d[at..at + 2].copy_from_slice(&pe::IMAGE_SUBSYSTEM_WINDOWS_CUI.to_le_bytes());
    true
}

fn strip_relocs(d: &mut [u8], _: &Image) -> bool {
    let Some(nt) = nt_headers_offset(d) else {
        return false;
    };
    let at = nt + 4 + 18;
    let v = u16::from_le_bytes(d[at..at + 2].try_into().unwrap()) | pe::IMAGE_FILE_RELOCS_STRIPPED;
    d[at..at + 2].copy_from_slice(&v.to_le_bytes());
    true
}

fn damage_config_block(d: &mut [u8], _: &Image) -> bool {
    match config_blocks(d).first() {
        Some(&(at, _)) => {
            d[at + 20] ^= 0x01;
            true
        }
        None => false,
    }
}

fn sse_at_entry(d: &mut [u8], image: &Image) -> bool {
    if image.target.arch != "i686" {
        return false;
    }
    let Ok(file) = PeFile::<pe::ImageNtHeaders32>::parse(&d[..]) else {
        return false;
    };
    let entry = file.nt_headers().optional_header().address_of_entry_point();
    let Some(offset) = file.section_table().iter().find_map(|s| {
        let (start, size) = (s.virtual_address.get(LE), s.size_of_raw_data.get(LE));
        (entry >= start && entry < start + size)
            .then(|| (s.pointer_to_raw_data.get(LE) + entry - start) as usize)
    }) else {
        return false;
    };
    // movaps xmm0, xmm1; the rest of the first instruction becomes NOPs.
    let patch = [0x0F, 0x28, 0xC1, 0x90, 0x90, 0x90, 0x90, 0x90];
    d[offset..offset + patch.len()].copy_from_slice(&patch);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_skips_its_own_field_folds_carries_and_adds_the_length() {
        // Words 0x0001 and 0xFFFF (the field at offset 2 is skipped): 0x10000 folds to
        // 0x0001; plus 8 bytes of length.
        let data = [0x01, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xFF, 0xFF];
        assert_eq!(pe_checksum(&data, 2), 0x0001 + 8);
        // An odd length pads the last byte with zero.
        assert_eq!(pe_checksum(&[0x10, 0x00, 0, 0, 0, 0, 0x20], 2), 0x30 + 7);
    }

    #[test]
    fn config_blocks_are_found_only_when_whole_and_valid() {
        // The driver's unconfigured block, as `bootcfg::block::UNCONFIGURED` emits it.
        let mut block = [0u8; CONFIG_LEN];
        block[..8].copy_from_slice(CONFIG_MAGIC);
        block[8] = 1;
        block[10] = CONFIG_LEN as u8;
        let sum = crc32_ieee(&block[..92]);
        block[92..].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(crc32_ieee(b"123456789"), 0xCBF4_3926);
        let mut data = vec![0u8; 300];
        data[10..18].copy_from_slice(CONFIG_MAGIC); // a stray magic: not a block
        data[150..150 + CONFIG_LEN].copy_from_slice(&block);
        assert_eq!(config_blocks(&data), [(150, false)]);
        data[170] ^= 1;
        assert_eq!(config_blocks(&data), []);
        assert_eq!(config_blocks(&block[..CONFIG_LEN - 1]), []);
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        let flavour = &images::FLAVOURS[1];
        let errors = check(b"MZ not really", "i686", flavour, [0, 1, 0, 0]).unwrap_err();
        assert!(errors[0].contains("not a PE image"), "{errors:?}");
        assert!(check(&[], "arm64", flavour, [0, 1, 0, 0]).is_err());
    }

    fn good_version_info() -> VersionInfo {
        let strings = [
            ("CompanyName", "c"),
            ("FileDescription", "d"),
            ("FileVersion", "1.2.3.0"),
            ("InternalName", "fabboot"),
            ("LegalCopyright", "l"),
            ("OriginalFilename", "fabboot.sys"),
            ("ProductName", "p"),
            ("ProductVersion", "1.2.3.0"),
        ];
        VersionInfo {
            fixed: verinfo::FixedInfo {
                struc_version: 0x0001_0000,
                file_version: [1, 2, 3, 0],
                product_version: [1, 2, 3, 0],
                file_flags_mask: 0x3F,
                file_flags: 0,
                file_os: verinfo::VOS_NT_WINDOWS32,
                file_type: verinfo::VFT_DRV,
                file_subtype: verinfo::VFT2_DRV_SYSTEM,
                file_date: 0,
            },
            tables: vec![(
                STRING_TABLE.into(),
                strings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )],
            translations: vec![(LANG_EN_US, CP_UTF16LE)],
        }
    }

    #[test]
    fn version_resource_contents_are_compared_with_the_image_and_crate() {
        let good = good_version_info();
        assert_eq!(
            version_errors(LANG_EN_US, &good, "fabboot.sys", [1, 2, 3, 0]),
            Vec::<String>::new()
        );
        // Another image, another crate version, another language.
        let errors = version_errors(0x0407, &good, "ntbootdd.sys", [1, 2, 4, 0]);
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[0].contains("language 0x0407"));
        assert!(errors[1].contains("file version 1.2.3.0, expected 1.2.4.0"));
        assert!(errors[2].contains("product version"));
        assert!(errors[3].contains("OriginalFilename `fabboot.sys`, expected `ntbootdd.sys`"));
        assert!(errors[4].contains("FileVersion `1.2.3.0`"));
        assert!(errors[5].contains("ProductVersion"));
        // A DLL, not a driver; a debug build; a string missing; no translation.
        let mut bad = good.clone();
        bad.fixed.file_type = 2;
        bad.fixed.file_flags = 1;
        bad.tables[0].1.retain(|(k, _)| k != "CompanyName");
        bad.tables[0].1[0].1.clear();
        bad.translations = vec![(LANG_EN_US, 1252)];
        let errors = version_errors(LANG_EN_US, &bad, "fabboot.sys", [1, 2, 3, 0]);
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("dwFileType 0x2, expected 0x3"));
        assert!(errors[1].contains("dwFileFlags"));
        assert!(errors[2].contains("CompanyName"));
        assert!(errors[3].contains("FileDescription"));
        assert!(errors[4].contains("Translation"));
        // Strings in another table do not count.
        let mut other = good.clone();
        other.tables[0].0 = "040704B0".into();
        let errors = version_errors(LANG_EN_US, &other, "fabboot.sys", [1, 2, 3, 0]);
        assert_eq!(errors.len(), 8, "{errors:?}");
    }

    #[test]
    fn finds_floating_point_in_32_bit_code() {
        let mut errors = Vec::new();
        // push ebp; fld st(1); movaps xmm0,xmm1; emms; ret
        let code = [0x55, 0xD9, 0xC1, 0x0F, 0x28, 0xC1, 0x0F, 0x77, 0xC3];
        assert_eq!(floating_point_free(&code, 0x1000, ".text", &mut errors), 5);
        assert_eq!(errors.len(), 3, "{errors:?}");
        let mut clean = Vec::new();
        // push ebp; mov ebp,esp; xor eax,eax; pop ebp; ret 8
        let code = [0x55, 0x89, 0xE5, 0x31, 0xC0, 0x5D, 0xC2, 0x08, 0x00];
        floating_point_free(&code, 0x1000, ".text", &mut clean);
        assert!(clean.is_empty(), "{clean:?}");
    }
}
