//! Reads a Win32 version resource (`VS_VERSIONINFO`), for the image checks: written
//! from Microsoft's documentation of `VS_VERSIONINFO`, `VS_FIXEDFILEINFO`,
//! `StringFileInfo`, `StringTable`, `String`, `VarFileInfo` and `Var`, independently of
//! the encoder in `build/version.rs` that makes the images' resource.
//!
//! Every structure is a block: `wLength` (bytes of the block and its children, not the
//! padding after it), `wValueLength` (bytes of a binary value; UTF-16 units, NUL
//! included, of a text value), `wType` (0 binary, 1 text), a NUL-terminated UTF-16
//! `szKey`, padding to a DWORD boundary, the value, then child blocks each on a DWORD
//! boundary. Offsets are relative to the start of the resource data, which the linker
//! places on a DWORD boundary.

use std::fmt;

/// `VS_FIXEDFILEINFO.dwSignature`.
pub const FIXED_SIGNATURE: u32 = 0xFEEF_04BD;
/// `VOS_NT_WINDOWS32`.
pub const VOS_NT_WINDOWS32: u32 = 0x0004_0004;
/// `VFT_DRV`.
pub const VFT_DRV: u32 = 3;
/// `VFT2_DRV_SYSTEM`.
pub const VFT2_DRV_SYSTEM: u32 = 7;
/// Bytes of a `VS_FIXEDFILEINFO`.
const FIXED_LEN: usize = 52;
/// Header words before `szKey`.
const HEADER_LEN: usize = 6;
/// Blocks nest at most this deep (`VS_VERSIONINFO` > `StringFileInfo` > `StringTable` >
/// `String`).
const MAX_DEPTH: usize = 4;

/// Why a version resource cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerError {
    /// A block's `wLength` is below its header or beyond the bytes that hold it.
    BadLength {
        at: usize,
        length: usize,
        room: usize,
    },
    /// A block's `wType` is neither 0 nor 1.
    BadType { at: usize, kind: u16 },
    /// `szKey` has no NUL inside the block.
    UnterminatedKey { at: usize },
    /// The value (per `wValueLength`) runs past the block.
    ValueOverrun { key: String },
    /// A text value does not end with its NUL.
    UnterminatedValue { key: String },
    /// Blocks nested deeper than the format allows.
    TooDeep,
    /// A block that is not where the format puts it.
    Unexpected { key: String, parent: String },
    /// The fixed part is missing or its signature or size is wrong.
    BadFixedInfo(String),
    /// `Translation` is not a list of (language, code page) word pairs.
    BadTranslation(usize),
}

impl fmt::Display for VerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength { at, length, room } => write!(
                f,
                "block at {at:#x}: wLength {length} (header {HEADER_LEN}, {room} bytes left)"
            ),
            Self::BadType { at, kind } => write!(f, "block at {at:#x}: wType {kind}"),
            Self::UnterminatedKey { at } => write!(f, "block at {at:#x}: szKey has no NUL"),
            Self::ValueOverrun { key } => write!(f, "`{key}`: the value runs past wLength"),
            Self::UnterminatedValue { key } => write!(f, "`{key}`: the text has no NUL"),
            Self::TooDeep => write!(f, "blocks nested deeper than {MAX_DEPTH}"),
            Self::Unexpected { key, parent } => write!(f, "unexpected block `{key}` in `{parent}`"),
            Self::BadFixedInfo(what) => write!(f, "VS_FIXEDFILEINFO: {what}"),
            Self::BadTranslation(len) => {
                write!(f, "Translation: {len} bytes, not DWORD pairs")
            }
        }
    }
}

/// One block as it lies in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block<'a> {
    pub key: String,
    /// `wType`: 0 binary, 1 text.
    pub kind: u16,
    /// The value's bytes (`wValueLength` of them, or twice that for text).
    pub value: &'a [u8],
    pub children: Vec<Block<'a>>,
}

/// `VS_FIXEDFILEINFO`, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedInfo {
    pub struc_version: u32,
    pub file_version: [u16; 4],
    pub product_version: [u16; 4],
    pub file_flags_mask: u32,
    pub file_flags: u32,
    pub file_os: u32,
    pub file_type: u32,
    pub file_subtype: u32,
    pub file_date: u64,
}

/// A version resource, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub fixed: FixedInfo,
    /// Each `StringTable`: its key (language and code page in hex) and its strings.
    pub tables: Vec<(String, Vec<(String, String)>)>,
    /// `Translation`: (language, code page) pairs.
    pub translations: Vec<(u16, u16)>,
}

impl VersionInfo {
    /// The value of `name` in the string table `table`.
    pub fn string(&self, table: &str, name: &str) -> Option<&str> {
        self.tables
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(table))
            .flat_map(|(_, strings)| strings)
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads the whole resource: the root block and what the format says lies under it.
pub fn parse(data: &[u8]) -> Result<VersionInfo, VerError> {
    let root = parse_block(data, 0, 0)?;
    if root.key != "VS_VERSION_INFO" {
        return Err(VerError::Unexpected {
            key: root.key,
            parent: "the resource".into(),
        });
    }
    let fixed = fixed_info(root.value)?;
    let mut info = VersionInfo {
        fixed,
        tables: Vec::new(),
        translations: Vec::new(),
    };
    for child in &root.children {
        match child.key.as_str() {
            "StringFileInfo" => {
                for table in &child.children {
                    let hex =
                        table.key.len() == 8 && table.key.bytes().all(|b| b.is_ascii_hexdigit());
                    if !hex {
                        return Err(unexpected(table, child));
                    }
                    let mut strings = Vec::new();
                    for string in &table.children {
                        if string.kind != 1 || !string.children.is_empty() {
                            return Err(unexpected(string, table));
                        }
                        strings.push((string.key.clone(), text(string)?));
                    }
                    info.tables.push((table.key.clone(), strings));
                }
            }
            "VarFileInfo" => {
                for var in &child.children {
                    if var.key != "Translation" || var.kind != 0 {
                        return Err(unexpected(var, child));
                    }
                    if var.value.len() % 4 != 0 {
                        return Err(VerError::BadTranslation(var.value.len()));
                    }
                    info.translations.extend(
                        var.value
                            .chunks_exact(4)
                            .map(|pair| (word(pair, 0), word(pair, 2))),
                    );
                }
            }
            _ => return Err(unexpected(child, &root)),
        }
    }
    Ok(info)
}

fn unexpected(block: &Block<'_>, parent: &Block<'_>) -> VerError {
    VerError::Unexpected {
        key: block.key.clone(),
        parent: parent.key.clone(),
    }
}

/// Parses the block at `at` of `data` and its children.
fn parse_block(data: &[u8], at: usize, depth: usize) -> Result<Block<'_>, VerError> {
    if depth >= MAX_DEPTH {
        return Err(VerError::TooDeep);
    }
    let room = data.len().saturating_sub(at);
    if room < HEADER_LEN {
        return Err(VerError::BadLength {
            at,
            length: 0,
            room,
        });
    }
    let length = usize::from(word(data, at));
    if length < HEADER_LEN || length > room {
        return Err(VerError::BadLength { at, length, room });
    }
    let block = &data[..at + length];
    let value_length = usize::from(word(block, at + 2));
    let kind = word(block, at + 4);
    if kind > 1 {
        return Err(VerError::BadType { at, kind });
    }
    let mut units = Vec::new();
    let mut pos = at + HEADER_LEN;
    loop {
        if pos + 2 > block.len() {
            return Err(VerError::UnterminatedKey { at });
        }
        let unit = word(block, pos);
        pos += 2;
        if unit == 0 {
            break;
        }
        units.push(unit);
    }
    let key = String::from_utf16_lossy(&units);
    let value_at = align4(pos);
    let value_bytes = if kind == 1 {
        value_length * 2
    } else {
        value_length
    };
    let value = if value_bytes == 0 {
        &[][..]
    } else {
        block
            .get(value_at..value_at + value_bytes)
            .ok_or_else(|| VerError::ValueOverrun { key: key.clone() })?
    };
    let mut children = Vec::new();
    let mut pos = align4(value_at + value_bytes);
    while pos < block.len() {
        let child = parse_block(block, pos, depth + 1)?;
        pos = align4(pos + usize::from(word(block, pos)));
        children.push(child);
    }
    Ok(Block {
        key,
        kind,
        value,
        children,
    })
}

fn fixed_info(value: &[u8]) -> Result<FixedInfo, VerError> {
    if value.len() != FIXED_LEN {
        return Err(VerError::BadFixedInfo(format!(
            "{} bytes, expected {FIXED_LEN}",
            value.len()
        )));
    }
    let d = |i: usize| {
        u32::from_le_bytes([
            value[i * 4],
            value[i * 4 + 1],
            value[i * 4 + 2],
            value[i * 4 + 3],
        ])
    };
    if d(0) != FIXED_SIGNATURE {
        return Err(VerError::BadFixedInfo(format!(
            "signature {:#010x}, expected {FIXED_SIGNATURE:#010x}",
            d(0)
        )));
    }
    let quad = |ms: u32, ls: u32| [(ms >> 16) as u16, ms as u16, (ls >> 16) as u16, ls as u16];
    Ok(FixedInfo {
        struc_version: d(1),
        file_version: quad(d(2), d(3)),
        product_version: quad(d(4), d(5)),
        file_flags_mask: d(6),
        file_flags: d(7),
        file_os: d(8),
        file_type: d(9),
        file_subtype: d(10),
        file_date: (u64::from(d(11)) << 32) | u64::from(d(12)),
    })
}

/// A `String`'s text without its NUL.
fn text(block: &Block<'_>) -> Result<String, VerError> {
    let units: Vec<u16> = block.value.chunks_exact(2).map(|c| word(c, 0)).collect();
    match units.split_last() {
        Some((0, text)) => Ok(String::from_utf16_lossy(text)),
        _ => Err(VerError::UnterminatedValue {
            key: block.key.clone(),
        }),
    }
}

fn word(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

fn align4(n: usize) -> usize {
    n.next_multiple_of(4)
}

/// `a.b.c.d`.
pub fn dotted(v: [u16; 4]) -> String {
    format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])
}

#[cfg(test)]
#[path = "../../build/version.rs"]
mod encoder;

#[cfg(test)]
mod tests {
    use super::encoder::{self, FixedFileInfo, ResError, VersionResource};
    use super::*;

    const STRINGS: &[(&str, &str)] = &[
        ("CompanyName", "the fabboot contributors"),
        ("FileDescription", "odd length!"),
        ("FileVersion", "7.65535.0.0"),
        ("InternalName", "ntbootdd"),
        (
            "LegalCopyright",
            "Copyright (c) the fabboot contributors; licensed MIT OR Apache-2.0",
        ),
        ("OriginalFilename", "ntbootdd.sys"),
        ("ProductName", "x"),
        ("ProductVersion", "7.65535.0.0"),
    ];

    fn resource() -> VersionResource<'static> {
        VersionResource {
            fixed: FixedFileInfo {
                file_version: [7, 65535, 0, 0],
                product_version: [7, 65535, 0, 1],
                file_flags: 0,
                file_os: encoder::VOS_NT_WINDOWS32,
                file_type: encoder::VFT_DRV,
                file_subtype: encoder::VFT2_DRV_SYSTEM,
            },
            language: encoder::LANG_EN_US,
            code_page: encoder::CP_UTF16LE,
            strings: STRINGS,
        }
    }

    /// The resources of a 32-bit `.res` file: (type, name, memory flags, language, data),
    /// with its leading empty resource checked and dropped.
    fn parse_res(res: &[u8]) -> Vec<(u16, u16, u16, u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < res.len() {
            let d = |o: usize| u32::from_le_bytes(res[at + o..at + o + 4].try_into().unwrap());
            let (data_size, header_size) = (d(0) as usize, d(4) as usize);
            assert_eq!(header_size, 32, "a header with numbered type and name");
            assert_eq!((word(res, at + 8), word(res, at + 12)), (0xFFFF, 0xFFFF));
            let data = res[at + header_size..at + header_size + data_size].to_vec();
            out.push((
                word(res, at + 10),
                word(res, at + 14),
                word(res, at + 20),
                word(res, at + 22),
                data,
            ));
            at = align4(at + header_size + data_size);
        }
        assert_eq!(out.first().map(|r| (r.0, r.1, r.4.len())), Some((0, 0, 0)));
        out.remove(0);
        out
    }

    #[test]
    fn the_encoder_writes_what_windres_writes() {
        // The same resource as a resource script, compiled by binutils' windres.
        let mut rc = String::from(
            "1 VERSIONINFO\nFILEVERSION 7,65535,0,0\nPRODUCTVERSION 7,65535,0,1\n\
             FILEFLAGSMASK 0x3F\nFILEFLAGS 0\nFILEOS 0x40004\nFILETYPE 3\nFILESUBTYPE 7\n\
             BEGIN\n BLOCK \"StringFileInfo\"\n BEGIN\n  BLOCK \"040904B0\"\n  BEGIN\n",
        );
        for (key, value) in STRINGS {
            rc += &format!("   VALUE \"{key}\", \"{value}\"\n");
        }
        rc += "  END\n END\n BLOCK \"VarFileInfo\"\n BEGIN\n  VALUE \"Translation\", 0x409, 1200\n END\nEND\n";
        let dir = std::env::temp_dir().join(format!("xtask-verinfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (rc_path, res_path) = (dir.join("v.rc"), dir.join("v.res"));
        std::fs::write(&rc_path, rc).unwrap();
        let windres = "x86_64-w64-mingw32-windres";
        let status = std::process::Command::new(windres)
            .args(["-l", "0x409", "-O", "res", "-i"])
            .arg(&rc_path)
            .arg("-o")
            .arg(&res_path)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {windres}: {e} (install mingw-w64: ci/setup.sh)")
            });
        assert!(status.success(), "{windres} failed");
        let theirs = std::fs::read(&res_path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let ours = resource().to_res_file().unwrap();

        let theirs = parse_res(&theirs);
        let ours_parsed = parse_res(&ours);
        assert_eq!(theirs.len(), 1);
        assert_eq!(ours_parsed.len(), 1);
        let (t, o) = (&theirs[0], &ours_parsed[0]);
        assert_eq!((o.0, o.1, o.3), (16, 1, 0x0409), "RT_VERSION 1, en-US");
        assert_eq!((t.0, t.1, t.3), (o.0, o.1, o.3));
        // windres writes no memory flags; rc.exe (and llvm-rc) write MOVEABLE | PURE.
        assert_eq!((t.2, o.2), (0, 0x0030));
        assert_eq!(o.4, t.4, "VS_VERSIONINFO differs from windres's");
        assert_eq!(ours.len() % 4, 0);
    }

    #[test]
    fn reads_back_what_the_encoder_writes() {
        let data = resource().to_vs_versioninfo().unwrap();
        let info = parse(&data).unwrap();
        assert_eq!(info.fixed.struc_version, 0x0001_0000);
        assert_eq!(info.fixed.file_version, [7, 65535, 0, 0]);
        assert_eq!(info.fixed.product_version, [7, 65535, 0, 1]);
        assert_eq!(info.fixed.file_flags_mask, 0x3F);
        assert_eq!(
            (
                info.fixed.file_os,
                info.fixed.file_type,
                info.fixed.file_subtype
            ),
            (VOS_NT_WINDOWS32, VFT_DRV, VFT2_DRV_SYSTEM)
        );
        assert_eq!(info.tables.len(), 1);
        assert_eq!(info.tables[0].0, "040904B0");
        let strings: Vec<(&str, &str)> = info.tables[0]
            .1
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(strings, STRINGS);
        assert_eq!(
            info.string("040904b0", "OriginalFilename"),
            Some("ntbootdd.sys")
        );
        assert_eq!(info.string("040904B0", "Comments"), None);
        assert_eq!(info.translations, [(0x0409, 1200)]);
    }

    #[test]
    fn the_encoder_refuses_what_it_cannot_write() {
        let long = "x".repeat(40_000);
        let strings = [("Comments", long.as_str())];
        let too_long = VersionResource {
            strings: &strings,
            ..resource()
        };
        assert!(matches!(
            too_long.to_res_file(),
            Err(ResError::TooLong { key, .. }) if key == "Comments"
        ));
        let strings = [("Comments", "a\0b")];
        let nul = VersionResource {
            strings: &strings,
            ..resource()
        };
        assert_eq!(
            nul.to_vs_versioninfo(),
            Err(ResError::Nul {
                key: "Comments".into()
            })
        );
        assert_eq!(encoder::version_quad("0", "1", "2"), Ok([0, 1, 2, 0]));
        assert_eq!(encoder::dotted([0, 1, 2, 0]), dotted([0, 1, 2, 0]));
        assert_eq!(
            encoder::version_quad("1", "65536", "0"),
            Err(ResError::BadVersion("65536".into()))
        );
        assert!(encoder::version_quad("1", "2", "3-rc1").is_err());
        assert!(
            too_long
                .to_res_file()
                .unwrap_err()
                .to_string()
                .contains("65535")
        );
    }

    /// The offset of the UTF-16 `key` in `data`, minus the 6 header bytes: its block.
    fn block_of(data: &[u8], key: &str) -> usize {
        let needle: Vec<u8> = key.encode_utf16().flat_map(u16::to_le_bytes).collect();
        data.windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
            - HEADER_LEN
    }

    fn set_word(data: &mut [u8], at: usize, v: u16) {
        data[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn rejects_every_kind_of_damage() {
        let good = resource().to_vs_versioninfo().unwrap();
        let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut d = good.clone();
            f(&mut d);
            parse(&d).unwrap_err()
        };
        assert!(matches!(
            parse(&good[..good.len() - 1]),
            Err(VerError::BadLength { at: 0, .. })
        ));
        assert!(matches!(
            parse(&[]),
            Err(VerError::BadLength { room: 0, .. })
        ));
        assert!(matches!(
            damaged(&|d| set_word(d, 0, 4)),
            VerError::BadLength { length: 4, .. }
        ));
        let table = block_of(&good, "040904B0");
        assert!(matches!(
            damaged(&|d| set_word(d, table, 0xFFF0)),
            VerError::BadLength { length: 0xFFF0, .. }
        ));
        assert_eq!(
            damaged(&|d| set_word(d, 4, 7)),
            VerError::BadType { at: 0, kind: 7 }
        );
        let name = block_of(&good, "ProductName");
        // A String whose wValueLength reaches past its wLength.
        assert_eq!(
            damaged(&|d| set_word(d, name + 2, 40)),
            VerError::ValueOverrun {
                key: "ProductName".into()
            }
        );
        // The NUL of a text value overwritten.
        assert_eq!(
            damaged(&|d| {
                let len = usize::from(word(d, name));
                set_word(d, name + len - 2, u16::from(b'y'));
            }),
            VerError::UnterminatedValue {
                key: "ProductName".into()
            }
        );
        // A key that runs to the end of its block.
        assert_eq!(
            damaged(&|d| set_word(d, name, 8)),
            VerError::UnterminatedKey { at: name }
        );
        assert!(
            matches!(damaged(&|d| d[0x28] ^= 1), VerError::BadFixedInfo(e) if e.contains("signature"))
        );
        // A root whose binary value is 4 bytes, not a VS_FIXEDFILEINFO.
        let mut short = vec![44, 0, 4, 0, 0, 0];
        short.extend(
            "VS_VERSION_INFO\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        short.extend([0, 0, 1, 2, 3, 4]);
        assert_eq!(short.len(), 44);
        assert!(matches!(parse(&short), Err(VerError::BadFixedInfo(e)) if e.contains("4 bytes")));
        // A String's key where the format wants a StringTable.
        assert_eq!(
            damaged(&|d| {
                let at = block_of(d, "040904B0") + HEADER_LEN;
                d[at..at + 2].copy_from_slice(&u16::to_le_bytes(u16::from(b'Z')));
            }),
            VerError::Unexpected {
                key: "Z40904B0".into(),
                parent: "StringFileInfo".into()
            }
        );
        let translation = block_of(&good, "Translation");
        assert_eq!(
            damaged(&|d| set_word(d, translation + 2, 3)),
            VerError::BadTranslation(3)
        );
        // A String given a child: four levels below the root.
        let mut deep = Vec::new();
        for _ in 0..6 {
            deep.extend_from_slice(&[0, 0, 0, 0, 1, 0, b'k', 0, 0, 0, 0, 0]);
        }
        let len = deep.len();
        for level in 0..6 {
            set_word(&mut deep, level * 12, (len - level * 12) as u16);
        }
        assert_eq!(parse(&deep), Err(VerError::TooDeep));
        assert!(VerError::TooDeep.to_string().contains("deeper"));
    }
}
