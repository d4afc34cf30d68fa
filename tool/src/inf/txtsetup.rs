//! `txtsetup.oem`: what Windows 2000, XP and Server 2003 text-mode setup reads from an
//! OEM driver disk when the user presses F6 (learn.microsoft.com, "TxtSetup.oem File
//! Format" and its section pages).
//!
//! ```text
//! [Disks]                 diskN = "description", \tagfile, \directory
//! [Defaults]              scsi = ID
//! [scsi]                  ID = "description"[, DriverKey]
//! [Files.scsi.ID]         driver = diskN, file.sys, DriverKey   (also inf, catalog, dll)
//! [HardwareIds.scsi.ID]   id = "PCI\VEN_vvvv&DEV_dddd", "service"
//! [Config.DriverKey]      value = subkey, name, REG_DWORD|REG_SZ|..., data
//! ```
//!
//! Only the `scsi` component (mass-storage drivers) is read; other components in
//! `[Defaults]` are ignored. Besides the syntax, [`TxtSetup::parse`] checks what setup
//! relies on: the default option exists; every option has its `Files` and
//! `HardwareIds` sections and a `driver` line; every file is on a disk `[Disks]`
//! lists; every driver key has its `Config` section; every hardware ID's service is a
//! driver key of the same option (setup installs the device under that service, whose
//! image is `system32\drivers\<service>.sys`); REG_DWORD data is 1 to 8 hex digits.

use std::fmt;

use super::ini::{Dialect, Ini, Line, Section, SyntaxError};

/// What is wrong with a `txtsetup.oem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxtSetupError {
    /// Not in the INI syntax.
    Syntax(SyntaxError),
    /// A required section is absent (`Disks`, `Defaults`, `scsi`).
    MissingSection { name: String },
    /// `[Defaults]` names an option `[scsi]` does not list.
    DefaultNotListed { line: usize, id: String },
    /// An option in `[scsi]` lacks a section it needs (`Files.scsi.ID`,
    /// `HardwareIds.scsi.ID`, `Config.DriverKey`).
    MissingOptionSection { line: usize, section: String },
    /// An option copies no `driver` file.
    NoDriver { line: usize, id: String },
    /// A file is on a disk `[Disks]` does not list.
    UnknownDisk { line: usize, disk: String },
    /// A hardware ID names a service that is not a driver key of its option.
    UnknownService { line: usize, service: String },
    /// A line lacks a field.
    MissingField { line: usize, field: &'static str },
    /// A file type other than driver, dll, inf, catalog, hal or detect.
    UnknownFileType { line: usize, kind: String },
    /// A `Config` value whose type or data cannot be used.
    BadValue { line: usize, what: &'static str },
}

impl fmt::Display for TxtSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxtSetupError::Syntax(e) => write!(f, "{e}"),
            TxtSetupError::MissingSection { name } => write!(f, "no [{name}] section"),
            TxtSetupError::DefaultNotListed { line, id } => {
                write!(f, "line {line}: default {id} is not in [scsi]")
            }
            TxtSetupError::MissingOptionSection { line, section } => {
                write!(f, "line {line}: no [{section}] section")
            }
            TxtSetupError::NoDriver { line, id } => {
                write!(f, "line {line}: option {id} copies no driver")
            }
            TxtSetupError::UnknownDisk { line, disk } => {
                write!(f, "line {line}: disk {disk} is not in [Disks]")
            }
            TxtSetupError::UnknownService { line, service } => write!(
                f,
                "line {line}: service {service} is not a driver key of this option"
            ),
            TxtSetupError::MissingField { line, field } => write!(f, "line {line}: no {field}"),
            TxtSetupError::UnknownFileType { line, kind } => {
                write!(f, "line {line}: unknown file type {kind:?}")
            }
            TxtSetupError::BadValue { line, what } => write!(f, "line {line}: {what}"),
        }
    }
}

impl std::error::Error for TxtSetupError {}

impl From<SyntaxError> for TxtSetupError {
    fn from(e: SyntaxError) -> TxtSetupError {
        TxtSetupError::Syntax(e)
    }
}

/// A `[Disks]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    pub line: usize,
    pub id: String,
    pub description: String,
    /// The file whose presence tells setup the right disk is in (`\txtsetup.oem`).
    pub tag_file: String,
    /// Where the files are on the disk (`\`).
    pub directory: String,
}

/// A `Files.scsi.ID` file type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// Copied to `system32\drivers`; its key is the service.
    Driver,
    Dll,
    Inf,
    Catalog,
    Hal,
    Detect,
}

/// One file an option copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OemFile {
    pub line: usize,
    pub kind: FileType,
    pub disk: String,
    pub name: String,
    /// The driver key (the service) of a `driver` line.
    pub driver_key: Option<String>,
}

/// A `HardwareIds.scsi.ID` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HardwareId {
    pub line: usize,
    /// `PCI\VEN_15B3&DEV_1013`.
    pub id: String,
    pub service: String,
}

/// A registry value's type and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegValue {
    Dword(u32),
    Sz(String),
    ExpandSz(String),
    /// Hex digit pairs, as written.
    Binary(String),
    MultiSz(Vec<String>),
}

/// A `Config.DriverKey` value, created under `Services\DriverKey\subkey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValue {
    pub line: usize,
    /// The driver key whose `Config` section holds it.
    pub driver_key: String,
    /// Empty: the service key itself.
    pub subkey: String,
    pub name: String,
    pub value: RegValue,
}

/// An option of the `scsi` component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScsiOption {
    pub line: usize,
    pub id: String,
    pub description: String,
    /// The key name after the description (the service shown for the adapter).
    pub key: Option<String>,
    pub files: Vec<OemFile>,
    pub hardware_ids: Vec<HardwareId>,
    pub config: Vec<ConfigValue>,
}

impl ScsiOption {
    /// The option's `driver` files.
    pub fn drivers(&self) -> impl Iterator<Item = &OemFile> {
        self.files.iter().filter(|f| f.kind == FileType::Driver)
    }
}

/// A parsed and checked `txtsetup.oem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxtSetup {
    pub disks: Vec<Disk>,
    /// `[Defaults]`' `scsi` option.
    pub default_scsi: Option<String>,
    pub options: Vec<ScsiOption>,
}

impl TxtSetup {
    /// Parses and checks the text (see the module documentation).
    pub fn parse(text: &str) -> Result<TxtSetup, TxtSetupError> {
        let ini = Ini::parse(text, Dialect::TXTSETUP)?;
        let need = |name: &str| {
            ini.section(name)
                .ok_or_else(|| TxtSetupError::MissingSection { name: name.into() })
        };
        let disks = need("Disks")?
            .lines
            .iter()
            .map(|l| {
                Ok(Disk {
                    line: l.number,
                    id: key(l, "disk id")?,
                    description: field(l, 0, "disk description")?,
                    tag_file: field(l, 1, "tag file")?,
                    directory: field(l, 2, "directory")?,
                })
            })
            .collect::<Result<Vec<_>, TxtSetupError>>()?;
        let scsi = need("scsi")?;
        let mut options = Vec::new();
        for l in &scsi.lines {
            options.push(option(&ini, l, &disks)?);
        }
        let default_scsi = match need("Defaults")?.first("scsi") {
            Some(l) => {
                let id = field(l, 0, "default option")?;
                if !options.iter().any(|o| o.id.eq_ignore_ascii_case(&id)) {
                    return Err(TxtSetupError::DefaultNotListed { line: l.number, id });
                }
                Some(id)
            }
            None => None,
        };
        Ok(TxtSetup {
            disks,
            default_scsi,
            options,
        })
    }
}

/// Reads option `l` of `[scsi]` with its sections.
fn option(ini: &Ini, l: &Line, disks: &[Disk]) -> Result<ScsiOption, TxtSetupError> {
    let id = key(l, "option id")?;
    let section = |name: String| {
        ini.section(&name)
            .ok_or(TxtSetupError::MissingOptionSection {
                line: l.number,
                section: name,
            })
    };
    let files = section(format!("Files.scsi.{id}"))?
        .lines
        .iter()
        .map(|f| file(f, disks))
        .collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<&str> = files
        .iter()
        .filter(|f| f.kind == FileType::Driver)
        .filter_map(|f| f.driver_key.as_deref())
        .collect();
    if !files.iter().any(|f| f.kind == FileType::Driver) {
        return Err(TxtSetupError::NoDriver { line: l.number, id });
    }
    let hardware_ids = section(format!("HardwareIds.scsi.{id}"))?
        .keyed("id")
        .map(|h| {
            let service = field(h, 1, "service")?;
            if !keys.iter().any(|k| k.eq_ignore_ascii_case(&service)) {
                return Err(TxtSetupError::UnknownService {
                    line: h.number,
                    service,
                });
            }
            Ok(HardwareId {
                line: h.number,
                id: field(h, 0, "device ID")?,
                service,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = Vec::new();
    for k in &keys {
        config.extend(config_values(section(format!("Config.{k}"))?, k)?);
    }
    Ok(ScsiOption {
        line: l.number,
        description: field(l, 0, "option description")?,
        key: l.value(1).filter(|v| !v.is_empty()).map(str::to_string),
        id,
        files,
        hardware_ids,
        config,
    })
}

fn file(l: &Line, disks: &[Disk]) -> Result<OemFile, TxtSetupError> {
    let kind = key(l, "file type")?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "driver" => FileType::Driver,
        "dll" => FileType::Dll,
        "inf" => FileType::Inf,
        "catalog" => FileType::Catalog,
        "hal" => FileType::Hal,
        "detect" => FileType::Detect,
        _ => {
            return Err(TxtSetupError::UnknownFileType {
                line: l.number,
                kind,
            });
        }
    };
    let disk = field(l, 0, "disk")?;
    if !disks.iter().any(|d| d.id.eq_ignore_ascii_case(&disk)) {
        return Err(TxtSetupError::UnknownDisk {
            line: l.number,
            disk,
        });
    }
    let driver_key = match kind {
        FileType::Driver => Some(field(l, 2, "driver key")?),
        _ => None,
    };
    Ok(OemFile {
        line: l.number,
        kind,
        disk,
        name: field(l, 1, "file name")?,
        driver_key,
    })
}

fn config_values(s: &Section, driver_key: &str) -> Result<Vec<ConfigValue>, TxtSetupError> {
    s.keyed("value")
        .map(|l| {
            let bad = |what| TxtSetupError::BadValue {
                line: l.number,
                what,
            };
            let kind = field(l, 2, "value type")?;
            let data = l.values.get(3..).unwrap_or(&[]);
            let one = || data.first().cloned().ok_or(bad("no data"));
            let value = match kind.to_ascii_uppercase().as_str() {
                "REG_DWORD" => {
                    let d = one()?;
                    if d.is_empty() || d.len() > 8 {
                        return Err(bad("REG_DWORD data is 1 to 8 hex digits"));
                    }
                    RegValue::Dword(
                        u32::from_str_radix(&d, 16)
                            .map_err(|_| bad("REG_DWORD data is 1 to 8 hex digits"))?,
                    )
                }
                "REG_SZ" => RegValue::Sz(one()?),
                "REG_EXPAND_SZ" => RegValue::ExpandSz(one()?),
                "REG_BINARY" => {
                    let d = one()?;
                    if d.len() % 2 != 0 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad("REG_BINARY data is pairs of hex digits"));
                    }
                    RegValue::Binary(d)
                }
                "REG_MULTI_SZ" => RegValue::MultiSz(data.to_vec()),
                _ => return Err(bad("unknown value type")),
            };
            Ok(ConfigValue {
                line: l.number,
                driver_key: driver_key.to_string(),
                subkey: l.value(0).unwrap_or("").to_string(),
                name: field(l, 1, "value name")?,
                value,
            })
        })
        .collect()
}

fn key(l: &Line, what: &'static str) -> Result<String, TxtSetupError> {
    l.key
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or(TxtSetupError::MissingField {
            line: l.number,
            field: what,
        })
}

fn field(l: &Line, i: usize, what: &'static str) -> Result<String, TxtSetupError> {
    l.value(i)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or(TxtSetupError::MissingField {
            line: l.number,
            field: what,
        })
}
