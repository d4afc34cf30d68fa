//! `boot.ini` and its ARC paths: how NTLDR (Windows NT 4.0 to Server 2003) is told
//! which disk, partition and directory hold the system (Microsoft KB102873, "BOOT.INI
//! and ARC Path Naming Conventions and Usage"; KB227704 on `signature()`).
//!
//! ```text
//! [boot loader]
//! timeout=30
//! default=scsi(0)disk(0)rdisk(0)partition(1)\WINDOWS
//! [operating systems]
//! scsi(0)disk(0)rdisk(0)partition(1)\WINDOWS="Windows Server 2003" /fastdetect
//! ```
//!
//! An ARC path is an adapter, then `disk(X)rdisk(Y)partition(Z)`, then the system
//! directory:
//!
//! * `multi(W)`: a disk the BIOS reaches through INT 13h; `disk` is 0 and `rdisk` the
//!   BIOS disk number.
//! * `scsi(W)`: a disk behind `ntbootdd.sys`; `W` counts the adapters that driver
//!   finds, `X` is the SCSI target ID and `Y` the LUN as the driver presents them.
//! * `signature(S)`: as `scsi()`, but the disk is the one whose MBR holds disk
//!   signature `S` (up to 8 hex digits), whichever adapter it is on.
//!
//! Partitions are numbered from 1. Names are read ignoring case; numbers are decimal.

use std::fmt;

use super::ini::{Dialect, Ini, SyntaxError};

/// The adapter part of an ARC path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// `multi(n)`: through the BIOS.
    Multi(u32),
    /// `scsi(n)`: through `ntbootdd.sys`, adapter ordinal `n`.
    Scsi(u32),
    /// `signature(x)`: through `ntbootdd.sys`, the disk with MBR signature `x`.
    Signature(u32),
}

/// A parsed ARC path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArcPath {
    pub adapter: Adapter,
    /// `disk(n)`: the SCSI target ID (0 for `multi()`).
    pub disk: u32,
    /// `rdisk(n)`: the LUN (the BIOS disk number for `multi()`).
    pub rdisk: u32,
    /// `partition(n)`, from 1.
    pub partition: u32,
    /// The system directory with its leading `\` (`\WINDOWS`); empty when absent.
    pub path: String,
}

impl fmt::Display for ArcPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.adapter {
            Adapter::Multi(n) => write!(f, "multi({n})")?,
            Adapter::Scsi(n) => write!(f, "scsi({n})")?,
            Adapter::Signature(s) => write!(f, "signature({s:08x})")?,
        }
        write!(
            f,
            "disk({})rdisk({})partition({}){}",
            self.disk, self.rdisk, self.partition, self.path
        )
    }
}

/// Why an ARC path (or a line built from one) cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArcError {
    /// Nothing to parse.
    Empty,
    /// `name(value)` was expected at this byte offset.
    Syntax { at: usize },
    /// The first component is not `multi`, `scsi` or `signature`.
    UnknownAdapter { name: String },
    /// A component other than the one the grammar needs next (`found` empty: none).
    Expected {
        component: &'static str,
        found: String,
    },
    /// A component's value is not a decimal number that fits 32 bits.
    BadNumber {
        component: &'static str,
        text: String,
    },
    /// `signature()` does not hold 1 to 8 hex digits.
    BadSignature { text: String },
    /// `partition(0)`: partitions are numbered from 1.
    PartitionZero,
    /// The system directory is not `\name[\name...]` without blanks, quotes, `=`,
    /// `(`, `)` or `/`.
    BadPath { path: String },
    /// A menu title with a `"` or a control character.
    BadTitle,
    /// A loader option that is not `/WORD` without blanks or quotes.
    BadOption { option: String },
}

impl fmt::Display for ArcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArcError::Empty => write!(f, "empty ARC path"),
            ArcError::Syntax { at } => write!(f, "expected name(value) at offset {at}"),
            ArcError::UnknownAdapter { name } => {
                write!(f, "adapter {name:?} is not multi, scsi or signature")
            }
            ArcError::Expected { component, found } if found.is_empty() => {
                write!(f, "{component}() is missing")
            }
            ArcError::Expected { component, found } => {
                write!(f, "expected {component}(), found {found}()")
            }
            ArcError::BadNumber { component, text } => {
                write!(f, "{component}({text}): not a decimal number")
            }
            ArcError::BadSignature { text } => {
                write!(f, "signature({text}): not 1 to 8 hex digits")
            }
            ArcError::PartitionZero => write!(f, "partitions are numbered from 1"),
            ArcError::BadPath { path } => write!(f, "{path:?} is not a system directory"),
            ArcError::BadTitle => write!(f, "a title may not hold '\"' or control characters"),
            ArcError::BadOption { option } => write!(f, "{option:?} is not a /OPTION"),
        }
    }
}

impl std::error::Error for ArcError {}

/// Parses `adapter(n)disk(n)rdisk(n)partition(n)[\path]`.
pub fn parse_arc_path(s: &str) -> Result<ArcPath, ArcError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ArcError::Empty);
    }
    let (device, path) = match s.find('\\') {
        Some(at) => (s.get(..at).unwrap_or(""), s.get(at..).unwrap_or("")),
        None => (s, ""),
    };
    let mut parts = Vec::new();
    let mut at = 0;
    while at < device.len() {
        let rest = device.get(at..).unwrap_or("");
        let (name, after) = rest.split_once('(').ok_or(ArcError::Syntax { at })?;
        let (value, _) = after.split_once(')').ok_or(ArcError::Syntax { at })?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) || value.contains('(')
        {
            return Err(ArcError::Syntax { at });
        }
        parts.push((name.to_ascii_lowercase(), value));
        at = at.saturating_add(name.len() + value.len() + 2);
    }
    let mut parts = parts.into_iter();
    let (name, value) = parts.next().ok_or(ArcError::Empty)?;
    let adapter = match name.as_str() {
        "multi" => Adapter::Multi(decimal("multi", value)?),
        "scsi" => Adapter::Scsi(decimal("scsi", value)?),
        "signature" => {
            if value.is_empty() || value.len() > 8 || !value.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(ArcError::BadSignature { text: value.into() });
            }
            Adapter::Signature(
                u32::from_str_radix(value, 16)
                    .map_err(|_| ArcError::BadSignature { text: value.into() })?,
            )
        }
        _ => return Err(ArcError::UnknownAdapter { name }),
    };
    let mut next = |component: &'static str| match parts.next() {
        Some((name, value)) if name == component => decimal(component, value),
        Some((name, _)) => Err(ArcError::Expected {
            component,
            found: name,
        }),
        None => Err(ArcError::Expected {
            component,
            found: String::new(),
        }),
    };
    let disk = next("disk")?;
    let rdisk = next("rdisk")?;
    let partition = next("partition")?;
    if let Some((name, _)) = parts.next() {
        return Err(ArcError::Expected {
            component: "the system directory",
            found: name,
        });
    }
    if partition == 0 {
        return Err(ArcError::PartitionZero);
    }
    if !path.is_empty() {
        check_path(path)?;
    }
    Ok(ArcPath {
        adapter,
        disk,
        rdisk,
        partition,
        path: path.to_string(),
    })
}

fn decimal(component: &'static str, text: &str) -> Result<u32, ArcError> {
    let bad = || ArcError::BadNumber {
        component,
        text: text.into(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

fn check_path(path: &str) -> Result<(), ArcError> {
    let bad = || ArcError::BadPath { path: path.into() };
    let names = path.strip_prefix('\\').ok_or_else(bad)?;
    let ok = names.split('\\').all(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"\"=()/".contains(c))
    });
    if ok { Ok(()) } else { Err(bad()) }
}

/// The `[operating systems]` line for a system on `partition` of the disk at SCSI
/// target `target`, LUN `lun`, behind `adapter` (`Adapter::Scsi(ordinal)` or
/// `Adapter::Signature(mbr_signature)`), in directory `path` (`\WINDOWS`), shown as
/// `title`, with loader `options` (`/fastdetect`):
///
/// `scsi(0)disk(0)rdisk(0)partition(1)\WINDOWS="title" /fastdetect`
///
/// The line parses back ([`BootIni::parse`]) to the same values.
pub fn arc_line(
    adapter: Adapter,
    target: u32,
    lun: u32,
    partition: u32,
    path: &str,
    title: &str,
    options: &[&str],
) -> Result<String, ArcError> {
    if partition == 0 {
        return Err(ArcError::PartitionZero);
    }
    if path.len() < 2 {
        return Err(ArcError::BadPath { path: path.into() });
    }
    check_path(path)?;
    if title.chars().any(|c| c == '"' || c.is_control()) {
        return Err(ArcError::BadTitle);
    }
    let arc = ArcPath {
        adapter,
        disk: target,
        rdisk: lun,
        partition,
        path: path.into(),
    };
    let mut line = format!("{arc}=\"{title}\"");
    for option in options {
        check_option(option)?;
        line.push(' ');
        line.push_str(option);
    }
    Ok(line)
}

fn check_option(option: &str) -> Result<(), ArcError> {
    let ok = option.len() > 1
        && option.starts_with('/')
        && option
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"');
    if ok {
        Ok(())
    } else {
        Err(ArcError::BadOption {
            option: option.into(),
        })
    }
}

/// What a boot menu entry starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An NT system at an ARC path.
    Arc(ArcPath),
    /// Another system's boot sector on a DOS drive (`C:\`).
    Dos(String),
}

/// One `[operating systems]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootEntry {
    pub line: usize,
    pub target: Target,
    /// The menu text, without its quotes.
    pub title: String,
    /// The loader options (`/fastdetect`), in order.
    pub options: Vec<String>,
}

/// Why a `boot.ini` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootIniError {
    Syntax(SyntaxError),
    /// `[boot loader]` or `[operating systems]` is absent.
    MissingSection {
        name: &'static str,
    },
    /// `[boot loader]` has no `default=`.
    NoDefault,
    /// `timeout=` is not a number of seconds.
    BadTimeout {
        line: usize,
    },
    /// An ARC path (of `default=` or an entry) that does not parse, or a bad title or
    /// option.
    BadPath {
        line: usize,
        error: ArcError,
    },
    /// An entry's value is not `"title" /options`.
    BadEntry {
        line: usize,
    },
    /// `default=` names no `[operating systems]` entry.
    DefaultNotListed {
        line: usize,
    },
}

impl fmt::Display for BootIniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootIniError::Syntax(e) => write!(f, "{e}"),
            BootIniError::MissingSection { name } => write!(f, "no [{name}] section"),
            BootIniError::NoDefault => write!(f, "[boot loader] has no default="),
            BootIniError::BadTimeout { line } => {
                write!(f, "line {line}: timeout is not a number of seconds")
            }
            BootIniError::BadPath { line, error } => write!(f, "line {line}: {error}"),
            BootIniError::BadEntry { line } => {
                write!(f, "line {line}: expected \"title\" followed by /options")
            }
            BootIniError::DefaultNotListed { line } => {
                write!(
                    f,
                    "line {line}: default= names no [operating systems] entry"
                )
            }
        }
    }
}

impl std::error::Error for BootIniError {}

impl From<SyntaxError> for BootIniError {
    fn from(e: SyntaxError) -> BootIniError {
        BootIniError::Syntax(e)
    }
}

/// A parsed `boot.ini`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootIni {
    pub timeout: Option<u32>,
    pub default: Target,
    pub entries: Vec<BootEntry>,
}

impl BootIni {
    /// Parses the text; the default must be one of the entries (ARC paths compared
    /// as values, so case and hex width do not matter).
    pub fn parse(text: &str) -> Result<BootIni, BootIniError> {
        let ini = Ini::parse(text, Dialect::BOOT_INI)?;
        let loader = ini
            .section("boot loader")
            .ok_or(BootIniError::MissingSection {
                name: "boot loader",
            })?;
        let systems = ini
            .section("operating systems")
            .ok_or(BootIniError::MissingSection {
                name: "operating systems",
            })?;
        let timeout = loader
            .first("timeout")
            .map(|l| {
                l.raw_value
                    .parse()
                    .map_err(|_| BootIniError::BadTimeout { line: l.number })
            })
            .transpose()?;
        let default_line = loader.first("default").ok_or(BootIniError::NoDefault)?;
        let default = target(default_line.number, &default_line.raw_value)?;
        let entries = systems
            .lines
            .iter()
            .map(|l| {
                let bad = BootIniError::BadEntry { line: l.number };
                let key = l.key.as_deref().ok_or(bad.clone())?;
                let rest = l.raw_value.strip_prefix('"').ok_or(bad.clone())?;
                let (title, options) = rest.split_once('"').ok_or(bad)?;
                let options: Vec<String> = options.split_whitespace().map(str::to_string).collect();
                for o in &options {
                    check_option(o).map_err(|error| BootIniError::BadPath {
                        line: l.number,
                        error,
                    })?;
                }
                Ok(BootEntry {
                    line: l.number,
                    target: target(l.number, key)?,
                    title: title.to_string(),
                    options,
                })
            })
            .collect::<Result<Vec<_>, BootIniError>>()?;
        if !entries.iter().any(|e| same(&e.target, &default)) {
            return Err(BootIniError::DefaultNotListed {
                line: default_line.number,
            });
        }
        Ok(BootIni {
            timeout,
            default,
            entries,
        })
    }

    /// The entry `default=` names.
    pub fn default_entry(&self) -> Option<&BootEntry> {
        self.entries.iter().find(|e| same(&e.target, &self.default))
    }
}

/// An entry's key: a DOS drive (`C:\`) or an ARC path with a system directory.
fn target(line: usize, text: &str) -> Result<Target, BootIniError> {
    let bytes = text.as_bytes();
    if let [d, b':', rest @ ..] = bytes
        && d.is_ascii_alphabetic()
        && rest.iter().all(|&c| c == b'\\')
    {
        return Ok(Target::Dos(text.to_string()));
    }
    let arc = parse_arc_path(text).map_err(|error| BootIniError::BadPath { line, error })?;
    if arc.path.is_empty() {
        return Err(BootIniError::BadPath {
            line,
            error: ArcError::BadPath { path: arc.path },
        });
    }
    Ok(Target::Arc(arc))
}

/// Whether two targets are the same (DOS drives and directories ignoring case).
fn same(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Arc(x), Target::Arc(y)) => {
            x.adapter == y.adapter
                && (x.disk, x.rdisk, x.partition) == (y.disk, y.rdisk, y.partition)
                && x.path.eq_ignore_ascii_case(&y.path)
        }
        (Target::Dos(x), Target::Dos(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}
