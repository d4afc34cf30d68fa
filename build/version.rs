//! A Win32 version resource (`VS_VERSIONINFO`) and the 32-bit `.res` file that carries
//! it to the linker, encoded from Microsoft's documentation of the formats:
//!
//! * `.res` file ("Resource File Formats", `RESOURCEHEADER`): a sequence of resources,
//!   each a header (`DataSize`, `HeaderSize`, `TYPE`, `NAME`, padding to a DWORD,
//!   `DataVersion`, `MemoryFlags`, `LanguageId`, `Version`, `Characteristics`) followed
//!   by its data padded to a DWORD. A 32-bit file starts with an empty resource (all
//!   zero but `HeaderSize` 32 and the ordinal markers of `TYPE` and `NAME`), which tells
//!   it apart from a 16-bit one. A `TYPE` or `NAME` given by number is `0xFFFF` then the
//!   number.
//! * Version information ("Version Information" structures `VS_VERSIONINFO`,
//!   `VS_FIXEDFILEINFO`, `StringFileInfo`, `StringTable`, `String`, `VarFileInfo`,
//!   `Var`): a tree of blocks, each `wLength` (bytes of the block with its children,
//!   without the padding after it), `wValueLength` (bytes of a binary value, UTF-16
//!   units of a text value with its NUL), `wType` (1 text, 0 binary), the NUL-terminated
//!   UTF-16 `szKey`, padding to a DWORD, the value, then the children, each starting on
//!   a DWORD boundary.
//!
//! The root `VS_VERSIONINFO` holds a `VS_FIXEDFILEINFO` and two children: a
//! `StringFileInfo` with one `StringTable` (key: language and code page as 8 hex digits)
//! of `String`s, and a `VarFileInfo` whose `Var` "Translation" lists the same language
//! and code page.
//!
//! Used by the build script (the driver images' resource) and by xtask's tests, which
//! compare its output with `windres` and parse it back.

use std::fmt;

/// `RT_VERSION`: the resource type of version information.
pub const RT_VERSION: u16 = 16;
/// `VS_VERSION_INFO`: the one name a version resource has.
pub const VS_VERSION_INFO: u16 = 1;
/// `VS_FIXEDFILEINFO.dwSignature`.
pub const VS_FFI_SIGNATURE: u32 = 0xFEEF_04BD;
/// `VS_FIXEDFILEINFO.dwStrucVersion`: version 1.0 of the structure.
pub const VS_FFI_STRUCVERSION: u32 = 0x0001_0000;
/// `VS_FFI_FILEFLAGSMASK`: the `dwFileFlags` bits that are defined.
pub const VS_FFI_FILEFLAGSMASK: u32 = 0x3F;
/// `VOS_NT_WINDOWS32`: designed for 32-bit Windows on Windows NT (the value 64-bit
/// drivers carry too; there is no 64-bit `VOS_` value).
pub const VOS_NT_WINDOWS32: u32 = 0x0004_0004;
/// `VFT_DRV`: the file is a driver.
pub const VFT_DRV: u32 = 3;
/// `VFT2_DRV_SYSTEM`: a system driver (with `VFT_DRV`).
pub const VFT2_DRV_SYSTEM: u32 = 7;
/// `MAKELANGID(LANG_ENGLISH, SUBLANG_ENGLISH_US)`.
pub const LANG_EN_US: u16 = 0x0409;
/// Code page 1200: UTF-16LE, the encoding of every string in the resource.
pub const CP_UTF16LE: u16 = 1200;
/// `RESOURCEHEADER.MemoryFlags` of a version resource: `MOVEABLE | PURE`, as the
/// resource compiler writes them (only 16-bit Windows acted on these flags).
pub const MEMORY_FLAGS: u16 = 0x0030;
/// Bytes of a `VS_FIXEDFILEINFO`: thirteen DWORDs.
pub const FIXED_FILE_INFO_LEN: usize = 52;

/// What cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResError {
    /// A block would be longer than its 16-bit `wLength` can say.
    TooLong { key: String, len: usize },
    /// A key or text value holds a NUL, which would end it early.
    Nul { key: String },
    /// A version component is not a number from 0 to 65535.
    BadVersion(String),
}

impl fmt::Display for ResError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { key, len } => write!(
                f,
                "version block `{key}` would be {len} bytes; wLength holds at most 65535"
            ),
            Self::Nul { key } => write!(f, "version block `{key}`: NUL inside a string"),
            Self::BadVersion(what) => write!(
                f,
                "version component `{what}` is not a number from 0 to 65535"
            ),
        }
    }
}

impl std::error::Error for ResError {}

/// The fields of `VS_FIXEDFILEINFO` a producer chooses (the signature, structure
/// version and `dwFileFlagsMask` are fixed; the file date is left zero, as resource
/// compilers do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedFileInfo {
    /// `dwFileVersionMS`/`LS`: four 16-bit parts, most significant first.
    pub file_version: [u16; 4],
    /// `dwProductVersionMS`/`LS`.
    pub product_version: [u16; 4],
    /// `dwFileFlags` (`VS_FF_*`).
    pub file_flags: u32,
    /// `dwFileOS` (`VOS_*`).
    pub file_os: u32,
    /// `dwFileType` (`VFT_*`).
    pub file_type: u32,
    /// `dwFileSubtype` (`VFT2_*`).
    pub file_subtype: u32,
}

impl FixedFileInfo {
    /// The 52 bytes of the structure.
    pub fn to_bytes(self) -> [u8; FIXED_FILE_INFO_LEN] {
        let split = |v: [u16; 4]| {
            [
                (u32::from(v[0]) << 16) | u32::from(v[1]),
                (u32::from(v[2]) << 16) | u32::from(v[3]),
            ]
        };
        let [file_ms, file_ls] = split(self.file_version);
        let [product_ms, product_ls] = split(self.product_version);
        let dwords = [
            VS_FFI_SIGNATURE,
            VS_FFI_STRUCVERSION,
            file_ms,
            file_ls,
            product_ms,
            product_ls,
            VS_FFI_FILEFLAGSMASK,
            self.file_flags,
            self.file_os,
            self.file_type,
            self.file_subtype,
            0, // dwFileDateMS
            0, // dwFileDateLS
        ];
        let mut bytes = [0u8; FIXED_FILE_INFO_LEN];
        for (slot, dword) in bytes.chunks_exact_mut(4).zip(dwords) {
            slot.copy_from_slice(&dword.to_le_bytes());
        }
        bytes
    }
}

/// A whole version resource: the fixed part, one string table and its translation.
#[derive(Debug, Clone, Copy)]
pub struct VersionResource<'a> {
    pub fixed: FixedFileInfo,
    /// The language of the string table and of the resource (`LanguageId`).
    pub language: u16,
    /// The code page named by the string table's key and the translation.
    pub code_page: u16,
    /// `(szKey, Value)` of each `String`, in order.
    pub strings: &'a [(&'a str, &'a str)],
}

/// The value of a block.
enum Value<'a> {
    None,
    Text(&'a str),
    Binary(&'a [u8]),
}

impl VersionResource<'_> {
    /// The `VS_VERSIONINFO` structure: the resource's data.
    pub fn to_vs_versioninfo(self) -> Result<Vec<u8>, ResError> {
        let fixed = self.fixed.to_bytes();
        let table_key = format!("{:04X}{:04X}", self.language, self.code_page);
        let mut translation = [0u8; 4];
        translation[..2].copy_from_slice(&self.language.to_le_bytes());
        translation[2..].copy_from_slice(&self.code_page.to_le_bytes());
        let mut out = Vec::new();
        block(&mut out, "VS_VERSION_INFO", Value::Binary(&fixed), |out| {
            block(out, "StringFileInfo", Value::None, |out| {
                block(out, &table_key, Value::None, |out| {
                    for (key, value) in self.strings {
                        block(out, key, Value::Text(value), |_| Ok(()))?;
                    }
                    Ok(())
                })
            })?;
            block(out, "VarFileInfo", Value::None, |out| {
                block(out, "Translation", Value::Binary(&translation), |_| Ok(()))
            })
        })?;
        Ok(out)
    }

    /// A 32-bit `.res` file holding this resource as `RT_VERSION` number 1.
    pub fn to_res_file(self) -> Result<Vec<u8>, ResError> {
        let data = self.to_vs_versioninfo()?;
        let mut out = Vec::with_capacity(64 + data.len() + 3);
        resource_header(&mut out, 0, 0, 0, 0, 0);
        resource_header(
            &mut out,
            data.len() as u32,
            RT_VERSION,
            VS_VERSION_INFO,
            MEMORY_FLAGS,
            self.language,
        );
        out.extend_from_slice(&data);
        pad4(&mut out);
        Ok(out)
    }
}

/// A `RESOURCEHEADER` whose type and name are numbers: 32 bytes.
fn resource_header(
    out: &mut Vec<u8>,
    data_size: u32,
    kind: u16,
    name: u16,
    memory_flags: u16,
    language: u16,
) {
    out.extend_from_slice(&data_size.to_le_bytes());
    out.extend_from_slice(&32u32.to_le_bytes()); // HeaderSize
    for ordinal in [kind, name] {
        out.extend_from_slice(&0xFFFFu16.to_le_bytes());
        out.extend_from_slice(&ordinal.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // DataVersion
    out.extend_from_slice(&memory_flags.to_le_bytes());
    out.extend_from_slice(&language.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // Version
    out.extend_from_slice(&0u32.to_le_bytes()); // Characteristics
}

/// Appends one block (starting on a DWORD boundary of `out`) and whatever `children`
/// appends after its value, then fills in its `wLength`.
fn block(
    out: &mut Vec<u8>,
    key: &str,
    value: Value<'_>,
    children: impl FnOnce(&mut Vec<u8>) -> Result<(), ResError>,
) -> Result<(), ResError> {
    pad4(out);
    let start = out.len();
    let (value_length, kind) = match value {
        Value::None => (0, 1),
        Value::Text(text) => (text.encode_utf16().count() + 1, 1),
        Value::Binary(bytes) => (bytes.len(), 0),
    };
    let too_long = || ResError::TooLong {
        key: key.to_string(),
        len: value_length,
    };
    out.extend_from_slice(&[0, 0]); // wLength, filled in below
    out.extend_from_slice(
        &u16::try_from(value_length)
            .map_err(|_| too_long())?
            .to_le_bytes(),
    );
    out.extend_from_slice(&u16::to_le_bytes(kind));
    utf16z(out, key)?;
    pad4(out);
    match value {
        Value::None => {}
        Value::Text(text) => utf16z(out, text).map_err(|_| ResError::Nul {
            key: key.to_string(),
        })?,
        Value::Binary(bytes) => out.extend_from_slice(bytes),
    }
    children(out)?;
    let len = out.len() - start;
    let len16 = u16::try_from(len).map_err(|_| ResError::TooLong {
        key: key.to_string(),
        len,
    })?;
    out[start..start + 2].copy_from_slice(&len16.to_le_bytes());
    Ok(())
}

/// Appends `text` as UTF-16LE with a terminating NUL.
fn utf16z(out: &mut Vec<u8>, text: &str) -> Result<(), ResError> {
    if text.contains('\0') {
        return Err(ResError::Nul {
            key: text.to_string(),
        });
    }
    for unit in text.encode_utf16().chain([0]) {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    Ok(())
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The four-part version `major.minor.patch.0` of a crate, from cargo's
/// `CARGO_PKG_VERSION_MAJOR`/`MINOR`/`PATCH`.
pub fn version_quad(major: &str, minor: &str, patch: &str) -> Result<[u16; 4], ResError> {
    let part = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| ResError::BadVersion(s.to_string()))
    };
    Ok([part(major)?, part(minor)?, part(patch)?, 0])
}

/// `a.b.c.d`, the form of the `FileVersion` and `ProductVersion` strings.
pub fn dotted(version: [u16; 4]) -> String {
    let [a, b, c, d] = version;
    format!("{a}.{b}.{c}.{d}")
}
