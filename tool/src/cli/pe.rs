//! What the command reads and changes in a driver image's PE headers (Microsoft PE
//! Format specification, "Optional Header Windows-Specific Fields", "Optional Header
//! Data Directories", "The .rsrc Section", "The Attribute Certificate Table"), read
//! with the `object` crate where it offers the structure:
//!
//! * the machine type, and the imported modules (the port driver tells the flavour);
//! * `CheckSum` in the optional header: the 16-bit sum of the file's little-endian
//!   words with the field itself counted as zero, carries folded back in, plus the
//!   file's length ([`checksum`]); the kernel checks it for boot drivers;
//! * the Certificate Table (data directory 4, `IMAGE_DIRECTORY_ENTRY_SECURITY`),
//!   whose address is a file offset, not an RVA: an Authenticode signature, which any
//!   change to the image invalidates ([`remove_signature`]);
//! * the version resource (`RT_VERSION` = 16): `VS_VERSIONINFO` with its
//!   `VS_FIXEDFILEINFO` (signature 0xFEEF04BD; file version in
//!   `dwFileVersionMS`/`dwFileVersionLS`) ([`fixed_file_info`]).

use std::fmt;

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile, ResourceDirectory};

/// `IMAGE_DIRECTORY_ENTRY_SECURITY`.
const SECURITY: usize = 4;
/// `RT_VERSION`.
const RT_VERSION: u16 = 16;
/// `VS_FIXEDFILEINFO.dwSignature`.
const FIXED_SIGNATURE: u32 = 0xFEEF_04BD;
/// Bytes of `VS_FIXEDFILEINFO`.
const FIXED_LEN: usize = 52;

/// A four-part version number (`major.minor.build.revision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version(pub [u16; 4]);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// `VS_FIXEDFILEINFO`'s two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedFileInfo {
    /// `dwFileVersionMS`/`LS`.
    pub file: Version,
    /// `dwProductVersionMS`/`LS`.
    pub product: Version,
}

/// What the version resource says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionResource {
    /// The image has no `RT_VERSION` resource.
    None,
    /// It has one.
    Found(FixedFileInfo),
    /// It has one that cannot be read; why.
    Unreadable(String),
}

/// The facts the command needs about a PE image.
#[derive(Clone, Debug)]
pub struct PeFacts {
    /// PE32+ (64-bit) rather than PE32.
    pub pe64: bool,
    /// `IMAGE_FILE_HEADER.Machine`.
    pub machine: u16,
    /// The modules named by the import directory, as written.
    pub imports: Vec<String>,
    /// File offset of the optional header's `CheckSum`.
    pub checksum_field: usize,
    /// The `CheckSum` the header holds.
    pub checksum_stored: u32,
    /// File offset of the Certificate Table's data directory entry, when the header
    /// has that many entries.
    pub security_entry: Option<usize>,
    /// The Certificate Table (file offset, bytes) when the entry is not zero.
    pub certificates: Option<(u32, u32)>,
    /// The version resource.
    pub version: VersionResource,
    /// Each section's name and file range (offset, bytes).
    pub sections: Vec<(String, usize, usize)>,
}

impl PeFacts {
    /// The architecture the machine type names.
    pub fn architecture(&self) -> String {
        match self.machine {
            pe::IMAGE_FILE_MACHINE_I386 => "i686".into(),
            pe::IMAGE_FILE_MACHINE_AMD64 => "x86_64".into(),
            pe::IMAGE_FILE_MACHINE_ARM64 => "aarch64".into(),
            m => format!("unknown machine {m:#06x}"),
        }
    }

    /// The checksum the file should carry.
    pub fn checksum_computed(&self, data: &[u8]) -> u32 {
        checksum(data, self.checksum_field)
    }

    /// The file range of the section with this name.
    pub fn section(&self, name: &str) -> Option<(usize, usize)> {
        self.sections
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, o, l)| (*o, *l))
    }
}

/// Reads the facts of a PE image; anything else is an error saying why.
pub fn parse(data: &[u8]) -> Result<PeFacts, String> {
    match object::read::pe::optional_header_magic(data) {
        Ok(pe::IMAGE_NT_OPTIONAL_HDR32_MAGIC) => parse_as::<pe::ImageNtHeaders32>(data),
        Ok(pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC) => parse_as::<pe::ImageNtHeaders64>(data),
        Ok(magic) => Err(format!(
            "not a PE image (optional header magic {magic:#06x})"
        )),
        Err(e) => Err(format!("not a PE image ({e})")),
    }
}

fn parse_as<Pe: ImageNtHeaders>(data: &[u8]) -> Result<PeFacts, String> {
    let file = PeFile::<Pe>::parse(data).map_err(|e| format!("not a PE image ({e})"))?;
    let nt = usize::try_from(file.dos_header().nt_headers_offset())
        .map_err(|_| "not a PE image (headers beyond the address space)".to_string())?;
    // Signature (4) and IMAGE_FILE_HEADER (20), then the optional header, whose
    // CheckSum is at 64 in both PE32 and PE32+.
    let optional = nt + 4 + 20;
    let dirs = optional
        + if file.nt_headers().is_type_64() {
            112
        } else {
            96
        };
    let entries = file
        .nt_headers()
        .optional_header()
        .number_of_rva_and_sizes();
    let security_entry =
        (usize::try_from(entries).is_ok_and(|n| n > SECURITY)).then_some(dirs + 8 * SECURITY);
    let certificates = file
        .data_directory(SECURITY)
        .map(|d| d.address_range())
        .filter(|&(at, len)| at != 0 || len != 0);
    let mut imports = Vec::new();
    if let Ok(Some(table)) = file.import_table()
        && let Ok(mut descriptors) = table.descriptors()
    {
        while let Ok(Some(d)) = descriptors.next() {
            if let Ok(name) = table.name(d.name.get(LE)) {
                imports.push(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    let sections = file
        .section_table()
        .iter()
        .map(|s| {
            let (offset, len) = s.pe_file_range();
            (
                String::from_utf8_lossy(s.raw_name()).into_owned(),
                offset as usize,
                len as usize,
            )
        })
        .collect();
    Ok(PeFacts {
        pe64: file.nt_headers().is_type_64(),
        machine: file.nt_headers().file_header().machine.get(LE),
        imports,
        checksum_field: optional + 64,
        checksum_stored: file.nt_headers().optional_header().check_sum(),
        security_entry,
        certificates,
        version: version_resource(&file, data),
        sections,
    })
}

fn version_resource<Pe: ImageNtHeaders>(file: &PeFile<'_, Pe>, data: &[u8]) -> VersionResource {
    let sections = file.section_table();
    let rsrc = match file.data_directories().resource_directory(data, &sections) {
        Ok(Some(r)) => r,
        Ok(None) => return VersionResource::None,
        Err(e) => return VersionResource::Unreadable(format!("resource directory: {e}")),
    };
    let bytes_at = |rva: u32, len: u32| {
        sections
            .pe_data_at(data, rva)
            .and_then(|b| b.get(..usize::try_from(len).ok()?))
    };
    match find_version(rsrc, bytes_at) {
        Ok(None) => VersionResource::None,
        Ok(Some(b)) => match fixed_file_info(b) {
            Ok(info) => VersionResource::Found(info),
            Err(e) => VersionResource::Unreadable(e.into()),
        },
        Err(e) => VersionResource::Unreadable(e),
    }
}

/// The bytes of the first `RT_VERSION` resource (first name, first language), read
/// through `bytes_at(rva, len)`.
pub fn find_version<'a>(
    rsrc: ResourceDirectory<'a>,
    bytes_at: impl Fn(u32, u32) -> Option<&'a [u8]>,
) -> Result<Option<&'a [u8]>, String> {
    let root = rsrc
        .root()
        .map_err(|e| format!("resource directory: {e}"))?;
    let Some(types) = root
        .entries
        .iter()
        .find(|e| e.name_or_id().id() == Some(RT_VERSION))
    else {
        return Ok(None);
    };
    // Type, then name, then language: two levels of tables down to the data entry.
    let mut entry = types;
    for level in ["name", "language"] {
        let table = entry
            .data(rsrc)
            .ok()
            .and_then(|d| d.table())
            .ok_or_else(|| format!("RT_VERSION: no {level} table"))?;
        entry = table
            .entries
            .first()
            .ok_or_else(|| format!("RT_VERSION: an empty {level} table"))?;
    }
    let data = entry
        .data(rsrc)
        .ok()
        .and_then(|d| d.data())
        .ok_or("RT_VERSION: no data entry")?;
    bytes_at(data.offset_to_data.get(LE), data.size.get(LE))
        .map(Some)
        .ok_or_else(|| "RT_VERSION: its data lies outside the image".into())
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads `VS_VERSIONINFO` (wLength, wValueLength, wType, the key
/// `VS_VERSION_INFO` in UTF-16 with its NUL, padding to 32 bits) and its
/// `VS_FIXEDFILEINFO`.
pub fn fixed_file_info(b: &[u8]) -> Result<FixedFileInfo, &'static str> {
    const KEY: &str = "VS_VERSION_INFO";
    let length = usize::from(le16(b, 0).ok_or("VS_VERSIONINFO: truncated")?);
    let value_len = usize::from(le16(b, 2).ok_or("VS_VERSIONINFO: truncated")?);
    let b = b
        .get(..length)
        .ok_or("VS_VERSIONINFO: longer than its resource")?;
    let mut at = 6;
    for expected in KEY.encode_utf16().chain([0]) {
        if le16(b, at) != Some(expected) {
            return Err("VS_VERSIONINFO: the key is not VS_VERSION_INFO");
        }
        at += 2;
    }
    let at = at.next_multiple_of(4);
    if value_len < FIXED_LEN {
        return Err("VS_VERSIONINFO: no VS_FIXEDFILEINFO");
    }
    let fixed = b
        .get(at..at + FIXED_LEN)
        .ok_or("VS_FIXEDFILEINFO: truncated")?;
    if le32(fixed, 0) != Some(FIXED_SIGNATURE) {
        return Err("VS_FIXEDFILEINFO: signature is not 0xFEEF04BD");
    }
    let version = |ms: usize| -> Version {
        let hi = le32(fixed, ms).unwrap_or(0);
        let lo = le32(fixed, ms + 4).unwrap_or(0);
        Version([
            (hi >> 16) as u16,
            (hi & 0xFFFF) as u16,
            (lo >> 16) as u16,
            (lo & 0xFFFF) as u16,
        ])
    };
    Ok(FixedFileInfo {
        file: version(8),
        product: version(16),
    })
}

/// The PE checksum of `data`, the 4 bytes at `field` counted as zero.
pub fn checksum(data: &[u8], field: usize) -> u32 {
    let mut sum: u32 = 0;
    for (i, pair) in data.chunks(2).enumerate() {
        let at = i * 2;
        if at == field || at == field + 2 {
            continue;
        }
        let word = u16::from_le_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // The length is added modulo 2^32, as the field is 32 bits.
    sum.wrapping_add(data.len() as u32)
}

/// Writes the checksum `data` should carry into its `CheckSum` field.
pub fn fix_checksum(data: &mut [u8], field: usize) {
    let sum = checksum(data, field);
    if let Some(slot) = data.get_mut(field..field + 4) {
        slot.copy_from_slice(&sum.to_le_bytes());
    }
}

/// What [`remove_signature`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removed {
    /// The certificate table was the file's tail: the file was cut at its start.
    Truncated { at: u32 },
    /// It lay elsewhere: only the directory entry was cleared.
    Unlinked,
}

/// Clears the Certificate Table's directory entry and, when the table is the file's
/// tail (followed by at most the zero padding to an 8-byte boundary, as the format
/// aligns it), cuts the file there. The checksum must be fixed afterwards.
pub fn remove_signature(data: &mut Vec<u8>, facts: &PeFacts) -> Option<Removed> {
    let (at, len) = facts.certificates?;
    let entry = facts.security_entry?;
    data.get_mut(entry..entry + 8)?.fill(0);
    let start = at as usize;
    let end = start.saturating_add(len as usize);
    let tail = data.get(end.min(data.len())..).unwrap_or(&[]);
    if start <= data.len() && end <= data.len() && tail.len() < 8 && tail.iter().all(|&b| b == 0) {
        data.truncate(start);
        Some(Removed::Truncated { at })
    } else {
        Some(Removed::Unlinked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `VS_VERSIONINFO` with a `VS_FIXEDFILEINFO` for 1.2.3.4 / 5.6.7.8.
    fn version_info() -> Vec<u8> {
        let mut b = vec![0u8; 6];
        for u in "VS_VERSION_INFO".encode_utf16().chain([0]) {
            b.extend_from_slice(&u.to_le_bytes());
        }
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        for v in [
            FIXED_SIGNATURE,
            0x0001_0000,
            0x0001_0002,
            0x0003_0004,
            0x0005_0006,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&0x0007_0008u32.to_le_bytes());
        b.resize(b.len() + FIXED_LEN - 24, 0);
        let len = b.len() as u16;
        b[0..2].copy_from_slice(&len.to_le_bytes());
        b[2..4].copy_from_slice(&(FIXED_LEN as u16).to_le_bytes());
        b
    }

    #[test]
    fn reads_the_fixed_file_info() {
        let info = fixed_file_info(&version_info()).unwrap();
        assert_eq!(info.file.to_string(), "1.2.3.4");
        assert_eq!(info.product.to_string(), "5.6.7.8");
    }

    #[test]
    fn a_damaged_version_info_is_named() {
        let good = version_info();
        let mut b = good.clone();
        b[6] = b'X';
        assert_eq!(
            fixed_file_info(&b),
            Err("VS_VERSIONINFO: the key is not VS_VERSION_INFO")
        );
        let mut b = good.clone();
        b[40] ^= 1;
        assert_eq!(
            fixed_file_info(&b),
            Err("VS_FIXEDFILEINFO: signature is not 0xFEEF04BD")
        );
        let mut b = good.clone();
        b[2] = 0;
        assert_eq!(
            fixed_file_info(&b),
            Err("VS_VERSIONINFO: no VS_FIXEDFILEINFO")
        );
        assert_eq!(
            fixed_file_info(&good[..50]),
            Err("VS_VERSIONINFO: longer than its resource")
        );
        assert_eq!(fixed_file_info(&[]), Err("VS_VERSIONINFO: truncated"));
    }

    /// A resource section: root (type 16) -> name 1 -> language 0x409 -> data.
    fn rsrc(rva: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let table = |b: &mut Vec<u8>, id: u32, target: u32| {
            b.extend_from_slice(&[0u8; 12]);
            b.extend_from_slice(&0u16.to_le_bytes()); // named entries
            b.extend_from_slice(&1u16.to_le_bytes()); // id entries
            b.extend_from_slice(&id.to_le_bytes());
            b.extend_from_slice(&target.to_le_bytes());
        };
        table(&mut b, 16, 0x8000_0018);
        table(&mut b, 1, 0x8000_0030);
        table(&mut b, 0x409, 0x48);
        // The data entry at 0x48: RVA, size, code page, reserved.
        b.extend_from_slice(&(rva + 0x58).to_le_bytes());
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn walks_the_resource_tree_to_the_version() {
        let rva = 0x5000;
        let payload = version_info();
        let section = rsrc(rva, &payload);
        let bytes_at = |at: u32, len: u32| {
            let off = at.checked_sub(rva)? as usize;
            section.get(off..off + len as usize)
        };
        let found = find_version(ResourceDirectory::new(&section), bytes_at).unwrap();
        assert_eq!(found, Some(&payload[..]));
        // Another type only: no version resource.
        let mut other = section.clone();
        other[16] = 3; // RT_ICON
        assert_eq!(
            find_version(ResourceDirectory::new(&other), bytes_at),
            Ok(None)
        );
        // Data outside the image.
        let far = rsrc(rva + 0x1000, &payload);
        assert!(find_version(ResourceDirectory::new(&far), bytes_at).is_err());
    }

    #[test]
    fn checksum_skips_its_field_folds_carries_and_adds_the_length() {
        // Words 0xFFFF + 0x0002 carry: 0x0001 + 1 = 0x0002; the field at 4 is skipped.
        let data = [0xFF, 0xFF, 0x02, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0x01];
        assert_eq!(checksum(&data, 4), 0x0002 + 0x0001 + 9);
        let mut d = data.to_vec();
        fix_checksum(&mut d, 4);
        assert_eq!(&d[4..8], &(0x0002u32 + 0x0001 + 9).to_le_bytes());
        assert_eq!(
            checksum(&d, 4),
            checksum(&data, 4),
            "its own field is skipped"
        );
    }
}
