//! Windows INF files: the sections a driver package's INF is made of, read into typed
//! values, and a check that every reference in it leads somewhere.
//!
//! What is implemented, from Microsoft's documentation of the format
//! (learn.microsoft.com, "INF File Sections and Directives"):
//!
//! * `[Version]` with `Signature = "$Windows NT$"` (or `"$Chicago$"`), read first.
//! * `%strkey%` tokens replaced from `[Strings]` (keys ignore case); `%%` is one `%`;
//!   `%nn%` with digits only is a DIRID (`%12%`: `%SystemRoot%\System32\drivers`) and
//!   stays as written. Localised `[Strings.LLLL]` sections are not consulted.
//! * `[Manufacturer]`: `%name% = models[, TargetOSVersion...]`, each decoration naming a
//!   models section `models.decoration` (`NTamd64`, `NTx86.5.2`); models lines
//!   `description = install-section, hardware-id[, compatible-id...]`.
//! * An install section is looked up for a platform as `install.NTx86` (the
//!   decoration's first part), then `install.NT`, then `install`; its `.HW` and
//!   `.Services` sections are the chosen name with that suffix.
//! * Directives that name sections (`CopyFiles`, `AddReg`, `DelReg`, `BitReg`,
//!   `DelFiles`, `RenFiles`, `RegisterDlls`, `UnregisterDlls`, `AddProperty`,
//!   `DelProperty`, `Needs` unless the section also has `Include`); `CopyFiles = @file`
//!   names a file instead. `AddService = name, flags, service-install-section[,
//!   event-log-install-section[, ...]]`.
//! * `[SourceDisksNames(.arch)]` `diskid = description[, tag, , path]`,
//!   `[SourceDisksFiles(.arch)]` `file = diskid[, subdir[, size]]`, `[DestinationDirs]`.
//!
//! [`InfFile::check`] follows every install section the models sections name and
//! reports the first reference that leads nowhere.

use std::fmt;

use super::ini::{self, Dialect, Ini, Line, Section, SyntaxError};

/// What is wrong with an INF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfError {
    /// The text is not in INF syntax.
    Syntax(SyntaxError),
    /// A section the format or a reader needs is absent.
    MissingSection { name: String },
    /// A required key is absent from a section.
    MissingKey { section: String, key: String },
    /// `[Version]`'s `Signature` is neither `$Windows NT$` nor `$Chicago$`.
    BadSignature { line: usize, found: String },
    /// A `%token%` that `[Strings]` does not define.
    UndefinedToken { line: usize, token: String },
    /// A `%` with no closing `%`.
    UnterminatedToken { line: usize },
    /// A directive names a section that is not in the file.
    MissingReference {
        line: usize,
        directive: String,
        section: String,
    },
    /// A line lacks a field its directive requires.
    MissingField { line: usize, field: &'static str },
    /// A field that must be a number is not one.
    BadNumber { line: usize, text: String },
    /// A copied file that no `[SourceDisksFiles]` section for its architecture lists.
    NoSourceFile { line: usize, file: String },
    /// A source file on a disk that no `[SourceDisksNames]` section lists.
    NoSourceDisk { line: usize, disk: String },
    /// A file-list section with no `[DestinationDirs]` entry and no `DefaultDestDir`.
    NoDestination { line: usize, section: String },
}

impl fmt::Display for InfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfError::Syntax(e) => write!(f, "{e}"),
            InfError::MissingSection { name } => write!(f, "no [{name}] section"),
            InfError::MissingKey { section, key } => write!(f, "[{section}] has no {key}"),
            InfError::BadSignature { line, found } => {
                write!(
                    f,
                    "line {line}: Signature {found:?} is not \"$Windows NT$\""
                )
            }
            InfError::UndefinedToken { line, token } => {
                write!(f, "line {line}: %{token}% is not in [Strings]")
            }
            InfError::UnterminatedToken { line } => write!(f, "line {line}: a '%' is not closed"),
            InfError::MissingReference {
                line,
                directive,
                section,
            } => write!(
                f,
                "line {line}: {directive} names [{section}], which is absent"
            ),
            InfError::MissingField { line, field } => write!(f, "line {line}: no {field}"),
            InfError::BadNumber { line, text } => {
                write!(f, "line {line}: {text:?} is not a number")
            }
            InfError::NoSourceFile { line, file } => {
                write!(f, "line {line}: {file} is in no [SourceDisksFiles] section")
            }
            InfError::NoSourceDisk { line, disk } => {
                write!(
                    f,
                    "line {line}: disk {disk} is in no [SourceDisksNames] section"
                )
            }
            InfError::NoDestination { line, section } => {
                write!(f, "line {line}: no [DestinationDirs] entry for [{section}]")
            }
        }
    }
}

impl std::error::Error for InfError {}

impl From<SyntaxError> for InfError {
    fn from(e: SyntaxError) -> InfError {
        InfError::Syntax(e)
    }
}

/// Directives whose values are section names.
const SECTION_DIRECTIVES: [&str; 10] = [
    "AddReg",
    "DelReg",
    "BitReg",
    "CopyFiles",
    "DelFiles",
    "RenFiles",
    "RegisterDlls",
    "UnregisterDlls",
    "AddProperty",
    "DelProperty",
];

/// One device a models section lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The models section (`fabboot.NTamd64`).
    pub section: String,
    /// The platform of its decoration (`NTamd64`, `NTx86`), `None` if undecorated.
    pub platform: Option<String>,
    pub line: usize,
    /// The device description, tokens replaced.
    pub description: String,
    /// The install section name as written (undecorated).
    pub install: String,
    /// Hardware ID, then compatible IDs.
    pub hardware_ids: Vec<String>,
}

/// An `AddService` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddService {
    pub line: usize,
    /// The service name (the key under `Services`).
    pub name: String,
    /// `SPSVCINST_*` flags (`0x2`: associate the service with the device).
    pub flags: u32,
    pub service_section: String,
    pub event_log_section: Option<String>,
}

/// A service-install section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// `ServiceType` (1: kernel driver).
    pub service_type: u32,
    /// `StartType` (0: boot start).
    pub start_type: u32,
    /// `ErrorControl` (1: normal).
    pub error_control: u32,
    pub load_order_group: Option<String>,
    /// `ServiceBinary`, tokens replaced (`%12%` kept).
    pub binary: String,
    /// Sections its `AddReg` directives name.
    pub add_reg: Vec<String>,
}

/// One line of an add-registry section:
/// `reg-root, [subkey], [value-name], [flags], [value...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegEntry {
    pub line: usize,
    /// `HKR`, `HKLM`, ...
    pub root: String,
    pub subkey: String,
    /// Empty: the key's default value (or, with flag 0x10, the key alone).
    pub name: String,
    /// `FLG_ADDREG_*` flags; 0 (REG_SZ) when absent.
    pub flags: u32,
    pub data: Vec<String>,
}

/// `FLG_ADDREG_TYPE_DWORD`.
pub const FLG_ADDREG_TYPE_DWORD: u32 = 0x0001_0001;
/// `FLG_ADDREG_TYPE_EXPAND_SZ`.
pub const FLG_ADDREG_TYPE_EXPAND_SZ: u32 = 0x0002_0000;
/// `FLG_ADDREG_KEYONLY`.
pub const FLG_ADDREG_KEYONLY: u32 = 0x0000_0010;

impl RegEntry {
    /// The value as a REG_DWORD, when it is one.
    pub fn dword(&self) -> Option<u32> {
        if self.flags & 0xFFFF_0001 != FLG_ADDREG_TYPE_DWORD {
            return None;
        }
        self.data.first().and_then(|d| ini::number(d))
    }
}

/// One `[SourceDisksFiles]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub line: usize,
    pub name: String,
    pub disk: String,
    pub subdir: Option<String>,
}

/// One `[SourceDisksNames]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceDisk {
    pub line: usize,
    pub id: String,
    pub description: String,
    /// The directory below the package root (`\x86_64`), if any.
    pub path: Option<String>,
}

/// A parsed INF file.
#[derive(Clone, Debug)]
pub struct InfFile {
    ini: Ini,
    /// `[Strings]`: key, value.
    strings: Vec<(String, String)>,
}

impl InfFile {
    /// Parses the text and reads `[Version]`'s signature and `[Strings]`.
    pub fn parse(text: &str) -> Result<InfFile, InfError> {
        let ini = Ini::parse(text, Dialect::INF)?;
        let version = ini.section("Version").ok_or(InfError::MissingSection {
            name: "Version".into(),
        })?;
        let signature = version.first("Signature").ok_or(InfError::MissingKey {
            section: "Version".into(),
            key: "Signature".into(),
        })?;
        let found = signature.value(0).unwrap_or("");
        if !found.eq_ignore_ascii_case("$Windows NT$") && !found.eq_ignore_ascii_case("$Chicago$") {
            return Err(InfError::BadSignature {
                line: signature.number,
                found: found.into(),
            });
        }
        let strings = ini
            .section("Strings")
            .map(|s| {
                s.lines
                    .iter()
                    .filter_map(|l| {
                        let value = match l.values.as_slice() {
                            [one] => one.clone(),
                            _ => l.raw_value.clone(),
                        };
                        Some((l.key.clone()?, value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(InfFile { ini, strings })
    }

    /// The file's sections.
    pub fn ini(&self) -> &Ini {
        &self.ini
    }

    /// The section called `name` (ignoring case).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.ini.section(name)
    }

    fn need(&self, name: &str) -> Result<&Section, InfError> {
        self.section(name)
            .ok_or_else(|| InfError::MissingSection { name: name.into() })
    }

    /// `[Strings]`' value for `key` (ignoring case).
    pub fn string(&self, key: &str) -> Option<&str> {
        self.strings
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// `text` with its `%strkey%` tokens replaced (`line` is for errors).
    pub fn resolve(&self, line: usize, text: &str) -> Result<String, InfError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((before, after)) = rest.split_once('%') {
            out.push_str(before);
            let (token, tail) = after
                .split_once('%')
                .ok_or(InfError::UnterminatedToken { line })?;
            if token.is_empty() {
                out.push('%');
            } else if token.bytes().all(|b| b.is_ascii_digit()) {
                out.push('%');
                out.push_str(token);
                out.push('%');
            } else {
                out.push_str(self.string(token).ok_or_else(|| InfError::UndefinedToken {
                    line,
                    token: token.into(),
                })?);
            }
            rest = tail;
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A `[Version]` value, tokens replaced.
    pub fn version(&self, key: &str) -> Result<Option<String>, InfError> {
        let version = self.need("Version")?;
        version
            .first(key)
            .map(|l| self.resolve(l.number, l.value(0).unwrap_or("")))
            .transpose()
    }

    /// Every device the models sections list, from each `[Manufacturer]` entry and
    /// each of its decorations.
    pub fn models(&self) -> Result<Vec<Model>, InfError> {
        let mut models = Vec::new();
        for entry in &self.need("Manufacturer")?.lines {
            let Some(base) = entry.value(0).filter(|v| !v.is_empty()) else {
                return Err(InfError::MissingField {
                    line: entry.number,
                    field: "models section name",
                });
            };
            let decorations: Vec<Option<&str>> = match entry.values.get(1..) {
                Some(d) if !d.is_empty() => d.iter().map(|d| Some(d.as_str())).collect(),
                _ => vec![None],
            };
            for decoration in decorations {
                let name = match decoration {
                    Some(d) => format!("{base}.{d}"),
                    None => base.to_string(),
                };
                let section = self.section(&name).ok_or(InfError::MissingReference {
                    line: entry.number,
                    directive: "Manufacturer".into(),
                    section: name.clone(),
                })?;
                let platform = decoration
                    .and_then(|d| d.split('.').next())
                    .map(str::to_string);
                for l in &section.lines {
                    let install =
                        l.value(0)
                            .filter(|v| !v.is_empty())
                            .ok_or(InfError::MissingField {
                                line: l.number,
                                field: "install section",
                            })?;
                    let ids: Vec<String> = l
                        .values
                        .get(1..)
                        .unwrap_or(&[])
                        .iter()
                        .filter(|v| !v.is_empty())
                        .cloned()
                        .collect();
                    if ids.is_empty() {
                        return Err(InfError::MissingField {
                            line: l.number,
                            field: "hardware ID",
                        });
                    }
                    models.push(Model {
                        section: section.name.clone(),
                        platform: platform.clone(),
                        line: l.number,
                        description: self.resolve(l.number, l.key.as_deref().unwrap_or(""))?,
                        install: install.to_string(),
                        hardware_ids: ids,
                    });
                }
            }
        }
        Ok(models)
    }

    /// The install section Windows uses for `install` on `platform` (`NTx86`):
    /// `install.platform`, else `install.NT`, else `install`.
    pub fn install_section(&self, install: &str, platform: Option<&str>) -> Option<&Section> {
        platform
            .and_then(|p| self.section(&format!("{install}.{p}")))
            .or_else(|| self.section(&format!("{install}.NT")))
            .or_else(|| self.section(install))
    }

    /// The `AddService` directives of a `.Services` section.
    pub fn add_services(&self, section: &Section) -> Result<Vec<AddService>, InfError> {
        section
            .keyed("AddService")
            .map(|l| {
                let field = |i: usize, field: &'static str| {
                    l.value(i)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                        .ok_or(InfError::MissingField {
                            line: l.number,
                            field,
                        })
                };
                let flags = l.value(1).unwrap_or("");
                Ok(AddService {
                    line: l.number,
                    name: field(0, "service name")?,
                    flags: if flags.is_empty() {
                        0
                    } else {
                        number(l.number, flags)?
                    },
                    service_section: field(2, "service-install section")?,
                    event_log_section: l.value(3).filter(|v| !v.is_empty()).map(str::to_string),
                })
            })
            .collect()
    }

    /// A service-install section, typed.
    pub fn service(&self, name: &str) -> Result<Service, InfError> {
        let s = self.need(name)?;
        let required = |key: &str| {
            s.first(key).ok_or_else(|| InfError::MissingKey {
                section: s.name.clone(),
                key: key.into(),
            })
        };
        let num = |key: &str| {
            let l = required(key)?;
            number(l.number, l.value(0).unwrap_or(""))
        };
        let binary = required("ServiceBinary")?;
        Ok(Service {
            service_type: num("ServiceType")?,
            start_type: num("StartType")?,
            error_control: num("ErrorControl")?,
            load_order_group: s
                .first("LoadOrderGroup")
                .map(|l| self.resolve(l.number, l.value(0).unwrap_or("")))
                .transpose()?,
            binary: self.resolve(binary.number, binary.value(0).unwrap_or(""))?,
            add_reg: s
                .keyed("AddReg")
                .flat_map(|l| l.values.iter().filter(|v| !v.is_empty()).cloned())
                .collect(),
        })
    }

    /// An add-registry section, typed, tokens replaced.
    pub fn reg_entries(&self, name: &str) -> Result<Vec<RegEntry>, InfError> {
        self.need(name)?
            .lines
            .iter()
            .map(|l| {
                let v = |i: usize| self.resolve(l.number, l.value(i).unwrap_or(""));
                let root = v(0)?;
                if root.is_empty() {
                    return Err(InfError::MissingField {
                        line: l.number,
                        field: "registry root",
                    });
                }
                let flags = l.value(3).unwrap_or("");
                Ok(RegEntry {
                    line: l.number,
                    root,
                    subkey: v(1)?,
                    name: v(2)?,
                    flags: if flags.is_empty() {
                        0
                    } else {
                        number(l.number, flags)?
                    },
                    data: l
                        .values
                        .get(4..)
                        .unwrap_or(&[])
                        .iter()
                        .map(|d| self.resolve(l.number, d))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    /// The files an install section's `CopyFiles` directives copy (source names).
    pub fn copy_files(&self, install: &Section) -> Result<Vec<(usize, String)>, InfError> {
        let mut files = Vec::new();
        for l in install.keyed("CopyFiles") {
            for v in l.values.iter().filter(|v| !v.is_empty()) {
                if let Some(file) = v.strip_prefix('@') {
                    files.push((l.number, file.to_string()));
                    continue;
                }
                for f in &self.reference(l, "CopyFiles", v)?.lines {
                    let source = f.value(1).filter(|s| !s.is_empty()).or(f.value(0));
                    if let Some(s) = source.filter(|s| !s.is_empty()) {
                        files.push((f.number, s.to_string()));
                    }
                }
            }
        }
        Ok(files)
    }

    /// `[SourceDisksFiles.arch]` and `[SourceDisksFiles]` entries for `arch`
    /// (`x86`, `amd64`; `None`: the undecorated section only).
    pub fn source_files(&self, arch: Option<&str>) -> Vec<SourceFile> {
        self.decorated("SourceDisksFiles", arch)
            .flat_map(|s| s.lines.iter())
            .filter_map(|l| {
                Some(SourceFile {
                    line: l.number,
                    name: l.key.clone()?,
                    disk: l.value(0).unwrap_or("").to_string(),
                    subdir: l.value(1).filter(|v| !v.is_empty()).map(str::to_string),
                })
            })
            .collect()
    }

    /// `[SourceDisksNames.arch]` and `[SourceDisksNames]` entries for `arch`.
    pub fn source_disks(&self, arch: Option<&str>) -> Result<Vec<SourceDisk>, InfError> {
        self.decorated("SourceDisksNames", arch)
            .flat_map(|s| s.lines.iter())
            .filter_map(|l| Some((l, l.key.clone()?)))
            .map(|(l, id)| {
                Ok(SourceDisk {
                    line: l.number,
                    id,
                    description: self.resolve(l.number, l.value(0).unwrap_or(""))?,
                    path: l.value(3).filter(|v| !v.is_empty()).map(str::to_string),
                })
            })
            .collect()
    }

    /// `base.arch` (when `arch` is given) then `base`.
    fn decorated<'a>(
        &'a self,
        base: &str,
        arch: Option<&str>,
    ) -> impl Iterator<Item = &'a Section> {
        let specific = arch.and_then(|a| self.section(&format!("{base}.{a}")));
        specific.into_iter().chain(self.section(base))
    }

    fn reference(&self, line: &Line, directive: &str, name: &str) -> Result<&Section, InfError> {
        self.section(name)
            .ok_or_else(|| InfError::MissingReference {
                line: line.number,
                directive: directive.into(),
                section: name.into(),
            })
    }

    /// Checks that every `%token%` outside `[Strings]` is defined, and follows every
    /// models section to its install sections (with `.HW` and `.Services`), their
    /// directives, `AddService`'s sections, the files copied (each listed in
    /// `[SourceDisksFiles]` for the platform's architecture, on a disk of
    /// `[SourceDisksNames]`, with a destination). Returns the first problem found.
    pub fn check(&self) -> Result<(), InfError> {
        for s in self
            .ini
            .sections
            .iter()
            .filter(|s| !s.name.to_ascii_lowercase().starts_with("strings"))
        {
            for l in &s.lines {
                for text in l.key.iter().chain(&l.values) {
                    self.resolve(l.number, text)?;
                }
            }
        }
        for model in self.models()? {
            let install = self
                .install_section(&model.install, model.platform.as_deref())
                .ok_or_else(|| InfError::MissingReference {
                    line: model.line,
                    directive: model.section.clone(),
                    section: model.install.clone(),
                })?;
            let arch = model.platform.as_deref().and_then(arch_of);
            let mut sections = vec![install];
            for suffix in ["HW", "Services"] {
                sections.extend(self.section(&format!("{}.{suffix}", install.name)));
            }
            for s in &sections {
                self.check_directives(s)?;
            }
            if let Some(services) = self.section(&format!("{}.Services", install.name)) {
                for a in self.add_services(services)? {
                    let line = services.lines.iter().find(|l| l.number == a.line);
                    for name in std::iter::once(&a.service_section).chain(&a.event_log_section) {
                        let s = match line {
                            Some(l) => self.reference(l, "AddService", name)?,
                            None => self.need(name)?,
                        };
                        self.check_directives(s)?;
                    }
                    self.service(&a.service_section)?;
                }
            }
            self.check_files(install, arch)?;
        }
        Ok(())
    }

    fn check_directives(&self, section: &Section) -> Result<(), InfError> {
        let includes = section.first("Include").is_some();
        for l in &section.lines {
            let directive = match l.key.as_deref() {
                Some(k) if SECTION_DIRECTIVES.iter().any(|d| d.eq_ignore_ascii_case(k)) => k,
                Some(k) if k.eq_ignore_ascii_case("Needs") && !includes => k,
                _ => continue,
            };
            for v in l.values.iter().filter(|v| !v.is_empty()) {
                if directive.eq_ignore_ascii_case("CopyFiles") && v.starts_with('@') {
                    continue;
                }
                self.reference(l, directive, v)?;
            }
        }
        Ok(())
    }

    fn check_files(&self, install: &Section, arch: Option<&str>) -> Result<(), InfError> {
        let sources = self.source_files(arch);
        let disks = self.source_disks(arch)?;
        for (line, file) in self.copy_files(install)? {
            let source = sources
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&file))
                .ok_or_else(|| InfError::NoSourceFile {
                    line,
                    file: file.clone(),
                })?;
            if !disks
                .iter()
                .any(|d| d.id.eq_ignore_ascii_case(&source.disk))
            {
                return Err(InfError::NoSourceDisk {
                    line: source.line,
                    disk: source.disk.clone(),
                });
            }
        }
        let dirs = self.section("DestinationDirs");
        let default = dirs.and_then(|d| d.first("DefaultDestDir")).is_some();
        for l in install.keyed("CopyFiles") {
            for v in l.values.iter().filter(|v| !v.is_empty()) {
                let listed = !v.starts_with('@') && dirs.and_then(|d| d.first(v)).is_some();
                if !listed && !default {
                    return Err(InfError::NoDestination {
                        line: l.number,
                        section: v.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The `SourceDisks*` decoration of a models platform (`NTamd64` -> `amd64`).
pub fn arch_of(platform: &str) -> Option<&'static str> {
    let lower = platform.to_ascii_lowercase();
    ["x86", "amd64", "arm64", "ia64", "arm"]
        .into_iter()
        .find(|a| lower.strip_prefix("nt") == Some(a))
}

fn number(line: usize, text: &str) -> Result<u32, InfError> {
    ini::number(text).ok_or_else(|| InfError::BadNumber {
        line,
        text: text.into(),
    })
}
