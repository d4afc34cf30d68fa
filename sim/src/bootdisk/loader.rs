//! What NTLDR reads from the system partition: `boot.ini`, then, for the default
//! entry, the files it loads before handing over to the kernel.
//!
//! `boot.ini` is an INI file (ANSI text, CRLF lines): `[boot loader]` holds
//! `timeout=` and `default=`, `[operating systems]` one line per entry,
//! `ARCPATH="Description" /OPTION ...`. An ARC path names the disk and partition and,
//! after the first `\`, the system root: `multi(0)disk(0)rdisk(0)partition(1)\WINDOWS`
//! (BIOS disk), `scsi(0)...` (through `ntbootdd.sys`, by target and LUN) or
//! `signature(8 hex digits)disk(T)rdisk(L)partition(P)\WINDOWS` (through
//! `ntbootdd.sys`, the disk found by its MBR signature) (Microsoft KB102873 "BOOT.INI
//! and ARC Path Naming Conventions and Usage").
//!
//! The files, in the order [`load_plan`] lists them: `ntdetect.com` from the root,
//! then `<root>\system32\ntoskrnl.exe`, `<root>\system32\hal.dll`,
//! `<root>\system32\config\SYSTEM`, then every `*.sys` of `<root>\system32\drivers`
//! sorted by name ignoring case. (NTLDR loads the boot drivers the SYSTEM hive lists;
//! the boot phase loads every driver in the directory instead, which needs no
//! registry parser.)

use std::fmt;

use super::SectorRead;
use super::fat32::{DirEntry, Fat32, Fat32Error, METADATA_MAX_TRANSFER};

/// The adapter part of an ARC path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// `multi(n)`: a disk the BIOS (INT 13h) reaches.
    Multi(u32),
    /// `scsi(n)`: a disk behind `ntbootdd.sys`, by SCSI target and LUN.
    Scsi(u32),
    /// `signature(x)`: a disk behind `ntbootdd.sys`, found by its MBR signature.
    Signature(u32),
}

/// A parsed ARC path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArcPath {
    /// `multi()`, `scsi()` or `signature()`.
    pub adapter: Adapter,
    /// `disk(n)`: the SCSI target (0 for `multi()`).
    pub disk: u32,
    /// `rdisk(n)`: the BIOS disk number, or the LUN.
    pub rdisk: u32,
    /// `partition(n)`: 1-based.
    pub partition: u32,
    /// The system root after the first `\`, without it (`WINDOWS`); `\`-separated.
    pub system_root: String,
}

/// Why a `boot.ini` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootIniError {
    /// No `default=` in `[boot loader]`.
    NoDefault,
    /// An ARC path that does not parse.
    BadArcPath {
        /// 1-based line number.
        line: usize,
        /// The path.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `default=` names a path no `[operating systems]` line has.
    DefaultNotListed {
        /// The default.
        default: String,
    },
}

impl fmt::Display for BootIniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootIniError::NoDefault => write!(f, "boot.ini: no default= in [boot loader]"),
            BootIniError::BadArcPath { line, text, reason } => {
                write!(f, "boot.ini line {line}: ARC path {text:?}: {reason}")
            }
            BootIniError::DefaultNotListed { default } => {
                write!(
                    f,
                    "boot.ini: default {default:?} is not in [operating systems]"
                )
            }
        }
    }
}

impl std::error::Error for BootIniError {}

impl ArcPath {
    /// Parses `adapter(n)disk(n)rdisk(n)partition(n)\root`, keywords in any case;
    /// `signature()` takes up to 8 hex digits, the others decimal numbers.
    pub fn parse(text: &str) -> Result<ArcPath, &'static str> {
        let (device, root) = match text.find('\\') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let mut parts = Vec::new();
        let mut rest = device;
        while !rest.is_empty() {
            let open = rest.find('(').ok_or("a component without '('")?;
            let close = rest.find(')').ok_or("a component without ')'")?;
            if close < open {
                return Err("')' before '('");
            }
            parts.push((rest[..open].to_ascii_lowercase(), &rest[open + 1..close]));
            rest = &rest[close + 1..];
        }
        let dec = |s: &str| s.trim().parse::<u32>().map_err(|_| "not a decimal number");
        let [(adapter, an), (disk, dn), (rdisk, rn), (partition, pn)] = parts.as_slice() else {
            return Err("not adapter()disk()rdisk()partition()");
        };
        let adapter = match adapter.as_str() {
            "multi" => Adapter::Multi(dec(an)?),
            "scsi" => Adapter::Scsi(dec(an)?),
            "signature" => {
                if an.is_empty() || an.len() > 8 {
                    return Err("a signature is 1 to 8 hex digits");
                }
                Adapter::Signature(u32::from_str_radix(an, 16).map_err(|_| "not a hex signature")?)
            }
            _ => return Err("the adapter is not multi, scsi or signature"),
        };
        if disk != "disk" || rdisk != "rdisk" || partition != "partition" {
            return Err("not adapter()disk()rdisk()partition()");
        }
        let partition = dec(pn)?;
        if partition == 0 {
            return Err("partitions are numbered from 1");
        }
        let root = root.trim_matches('\\');
        if root.is_empty() {
            return Err("no system root after the partition");
        }
        Ok(ArcPath {
            adapter,
            disk: dec(dn)?,
            rdisk: dec(rn)?,
            partition,
            system_root: root.to_string(),
        })
    }
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
            "disk({})rdisk({})partition({})\\{}",
            self.disk, self.rdisk, self.partition, self.system_root
        )
    }
}

/// One line of `[operating systems]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootEntry {
    /// Where the system is.
    pub arc: ArcPath,
    /// The menu text, without its quotes.
    pub description: String,
    /// The switches after it (`/fastdetect`, `/noexecute=optout`, ...).
    pub options: Vec<String>,
}

/// A parsed `boot.ini`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootIni {
    /// `timeout=`, seconds, if present and a number.
    pub timeout: Option<u32>,
    /// `default=`.
    pub default: ArcPath,
    /// The `[operating systems]` entries with an ARC path, in file order (DOS-style
    /// entries such as `C:\="..."` are not listed).
    pub entries: Vec<BootEntry>,
}

impl BootIni {
    /// Parses the text: section names and keys ignoring case, blank lines and lines
    /// starting with `;` skipped, unknown sections and keys ignored.
    pub fn parse(text: &str) -> Result<BootIni, BootIniError> {
        #[derive(PartialEq)]
        enum Section {
            None,
            Loader,
            Systems,
        }
        let mut section = Section::None;
        let mut timeout = None;
        let mut default: Option<(usize, String)> = None;
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = match name.trim().to_ascii_lowercase().as_str() {
                    "boot loader" => Section::Loader,
                    "operating systems" => Section::Systems,
                    _ => Section::None,
                };
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match section {
                Section::Loader if key.eq_ignore_ascii_case("timeout") => {
                    timeout = value.parse().ok();
                }
                Section::Loader if key.eq_ignore_ascii_case("default") => {
                    default = Some((i + 1, value.to_string()));
                }
                Section::Systems => {
                    // A DOS-style entry (`C:\`) is not an ARC path: not ours to boot.
                    let Ok(arc) = ArcPath::parse(key) else {
                        continue;
                    };
                    let (description, options) = split_description(value);
                    entries.push(BootEntry {
                        arc,
                        description,
                        options,
                    });
                }
                _ => {}
            }
        }
        let (line, text) = default.ok_or(BootIniError::NoDefault)?;
        let default = ArcPath::parse(&text).map_err(|reason| BootIniError::BadArcPath {
            line,
            text: text.clone(),
            reason,
        })?;
        Ok(BootIni {
            timeout,
            default,
            entries,
        })
    }

    /// The `[operating systems]` entry of the default path (ARC paths compared
    /// ignoring case).
    pub fn default_entry(&self) -> Result<&BootEntry, BootIniError> {
        let want = self.default.to_string().to_ascii_lowercase();
        self.entries
            .iter()
            .find(|e| e.arc.to_string().to_ascii_lowercase() == want)
            .ok_or_else(|| BootIniError::DefaultNotListed {
                default: self.default.to_string(),
            })
    }
}

/// `"Description" /a /b=c` into the description and the options.
fn split_description(value: &str) -> (String, Vec<String>) {
    let (description, rest) = match value.strip_prefix('"') {
        Some(v) => match v.find('"') {
            Some(end) => (v[..end].to_string(), &v[end + 1..]),
            None => (v.to_string(), ""),
        },
        None => match value.find(" /") {
            Some(i) => (value[..i].trim().to_string(), &value[i..]),
            None => (value.to_string(), ""),
        },
    };
    let options = rest.split_whitespace().map(str::to_string).collect();
    (description, options)
}

/// One file NTLDR loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadFile {
    /// The path NTLDR opens, `\`-separated from the root (drivers with the name the
    /// directory lists).
    pub path: String,
    /// Its directory entry (size, first cluster, names).
    pub entry: DirEntry,
}

/// What NTLDR would do with this volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// The parsed `boot.ini`.
    pub boot_ini: BootIni,
    /// Its default entry.
    pub entry: BootEntry,
    /// The files to load, in order.
    pub files: Vec<LoadFile>,
}

/// Why there is no load plan. `E` is the disk's error.
#[derive(Debug)]
pub enum LoaderError<E> {
    /// A file or directory NTLDR needs is not on the volume (or is not a file, or a
    /// directory, as needed).
    Missing {
        /// Its path from the root.
        path: String,
    },
    /// `boot.ini` is unusable.
    BootIni(BootIniError),
    /// The default entry's `signature()` is not this disk's MBR signature.
    OtherDisk {
        /// The signature `boot.ini` names.
        arc_signature: u32,
        /// This disk's.
        disk_signature: u32,
    },
    /// The default entry's `partition()` is not the one this volume is on.
    OtherPartition {
        /// The partition `boot.ini` names.
        arc_partition: u32,
        /// This volume's partition number.
        volume_partition: u32,
    },
    /// The volume could not be read.
    Volume(Fat32Error<E>),
}

impl<E: fmt::Display> fmt::Display for LoaderError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoaderError::Missing { path } => write!(f, "NTLDR needs {path}, which is missing"),
            LoaderError::BootIni(e) => write!(f, "{e}"),
            LoaderError::OtherDisk {
                arc_signature,
                disk_signature,
            } => write!(
                f,
                "boot.ini names disk signature {arc_signature:08x}; this disk's is {disk_signature:08x}"
            ),
            LoaderError::OtherPartition {
                arc_partition,
                volume_partition,
            } => write!(
                f,
                "boot.ini names partition({arc_partition}); this volume is partition {volume_partition}"
            ),
            LoaderError::Volume(e) => write!(f, "{e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoaderError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoaderError::Volume(e) => Some(e),
            LoaderError::BootIni(e) => Some(e),
            _ => None,
        }
    }
}

/// A reader's error, with "not there" turned into [`LoaderError::Missing`] for `path`.
fn missing<E>(path: &str) -> impl FnOnce(Fat32Error<E>) -> LoaderError<E> + '_ {
    move |e| match e {
        Fat32Error::NotFound { .. }
        | Fat32Error::NotADirectory { .. }
        | Fat32Error::NotAFile { .. } => LoaderError::Missing {
            path: path.to_string(),
        },
        e => LoaderError::Volume(e),
    }
}

/// Reads `boot.ini` from the root of `fat` (in requests of at most 64 KiB), parses
/// it, checks that its default entry names this disk (`signature()`) and partition,
/// and lists the files NTLDR loads for it (see the module documentation). Each file
/// is looked up, not read: a missing one is [`LoaderError::Missing`] naming it.
pub fn load_plan<D: SectorRead>(fat: &mut Fat32<D>) -> Result<LoadPlan, LoaderError<D::Error>> {
    let bytes = fat
        .read("boot.ini", METADATA_MAX_TRANSFER)
        .map_err(missing("boot.ini"))?;
    // ANSI text: every byte a character (the names and paths that matter are ASCII).
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let boot_ini = BootIni::parse(&text).map_err(LoaderError::BootIni)?;
    let entry = boot_ini
        .default_entry()
        .map_err(LoaderError::BootIni)?
        .clone();
    let volume = *fat.volume();
    if let Adapter::Signature(s) = entry.arc.adapter
        && s != volume.disk_signature
    {
        return Err(LoaderError::OtherDisk {
            arc_signature: s,
            disk_signature: volume.disk_signature,
        });
    }
    if entry.arc.partition != volume.partition {
        return Err(LoaderError::OtherPartition {
            arc_partition: entry.arc.partition,
            volume_partition: volume.partition,
        });
    }
    let root = entry.arc.system_root.clone();
    let mut files = Vec::new();
    for path in [
        "ntdetect.com".to_string(),
        format!("{root}\\system32\\ntoskrnl.exe"),
        format!("{root}\\system32\\hal.dll"),
        format!("{root}\\system32\\config\\SYSTEM"),
    ] {
        let e = fat.lookup(&path).map_err(missing(&path))?;
        if e.is_dir() {
            return Err(LoaderError::Missing { path });
        }
        files.push(LoadFile { path, entry: e });
    }
    let drivers_dir = format!("{root}\\system32\\drivers");
    let mut drivers: Vec<DirEntry> = fat
        .list(&drivers_dir)
        .map_err(missing(&drivers_dir))?
        .into_iter()
        .filter(|e| !e.is_dir() && e.name.to_ascii_lowercase().ends_with(".sys"))
        .collect();
    drivers.sort_by_key(|e| e.name.to_uppercase());
    files.extend(drivers.into_iter().map(|e| LoadFile {
        path: format!("{drivers_dir}\\{}", e.name),
        entry: e,
    }));
    Ok(LoadPlan {
        boot_ini,
        entry,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_paths() {
        let a = ArcPath::parse("signature(1a2b3c4d)disk(0)rdisk(0)partition(1)\\WINDOWS").unwrap();
        assert_eq!(a.adapter, Adapter::Signature(0x1a2b_3c4d));
        assert_eq!((a.disk, a.rdisk, a.partition), (0, 0, 1));
        assert_eq!(a.system_root, "WINDOWS");
        assert_eq!(
            a.to_string(),
            "signature(1a2b3c4d)disk(0)rdisk(0)partition(1)\\WINDOWS"
        );
        let m = ArcPath::parse("MULTI(0)DISK(0)RDISK(1)PARTITION(2)\\WINNT\\").unwrap();
        assert_eq!(m.adapter, Adapter::Multi(0));
        assert_eq!((m.rdisk, m.partition), (1, 2));
        assert_eq!(m.system_root, "WINNT");
        for bad in [
            "C:\\",
            "signature(123456789)disk(0)rdisk(0)partition(1)\\WINDOWS",
            "signature(xyz)disk(0)rdisk(0)partition(1)\\WINDOWS",
            "multi(0)disk(0)rdisk(0)partition(0)\\WINDOWS",
            "multi(0)disk(0)rdisk(0)partition(1)",
            "multi(0)disk(0)partition(1)\\WINDOWS",
            "eisa(0)disk(0)rdisk(0)partition(1)\\WINDOWS",
            "multi(0)disk(0)rdisk(0)partition(1\\WINDOWS",
        ] {
            assert!(ArcPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn boot_ini_with_several_entries_and_a_dos_one() {
        let text = "; written by hand\r\n\
            [Boot Loader]\r\n\
            Timeout=5\r\n\
            Default=multi(0)disk(0)rdisk(0)partition(2)\\WINNT\r\n\
            [Operating Systems]\r\n\
            multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS=\"Windows XP\" /fastdetect\r\n\
            multi(0)disk(0)rdisk(0)partition(2)\\WINNT=\"Windows 2000\" /sos /debug\r\n\
            C:\\=\"Previous Operating System on C:\"\r\n";
        let b = BootIni::parse(text).unwrap();
        assert_eq!(b.timeout, Some(5));
        assert_eq!(b.entries.len(), 2);
        let e = b.default_entry().unwrap();
        assert_eq!(e.description, "Windows 2000");
        assert_eq!(e.options, vec!["/sos", "/debug"]);
        assert_eq!(e.arc.system_root, "WINNT");
    }

    #[test]
    fn boot_ini_errors() {
        assert_eq!(
            BootIni::parse("[boot loader]\r\ntimeout=1\r\n"),
            Err(BootIniError::NoDefault)
        );
        assert!(matches!(
            BootIni::parse("[boot loader]\r\ndefault=C:\\\r\n"),
            Err(BootIniError::BadArcPath { line: 2, .. })
        ));
        let b = BootIni::parse(
            "[boot loader]\ndefault=multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS\n[operating systems]\n",
        )
        .unwrap();
        assert!(matches!(
            b.default_entry(),
            Err(BootIniError::DefaultNotListed { .. })
        ));
    }

    #[test]
    fn hostile_text_never_panics() {
        // Fragments of boot.ini syntax in random order, and random Latin-1 bytes.
        let pieces = [
            "[",
            "]",
            "[boot loader]",
            "[operating systems]",
            "=",
            "\"",
            "(",
            ")",
            "\\",
            "/",
            "default",
            "timeout",
            "signature(",
            "disk(",
            "rdisk(",
            "partition(",
            "multi(0)",
            "1",
            "ffffffff",
            "\r\n",
            "\n",
            " ",
            "\u{e9}",
            "\u{ff}",
            ";",
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000 {
            let mut s = String::new();
            for _ in 0..next() % 40 {
                if round % 2 == 0 {
                    s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                } else {
                    s.push(char::from(next() as u8));
                }
            }
            if let Ok(b) = BootIni::parse(&s) {
                let _ = b.default_entry();
            }
            let _ = ArcPath::parse(&s);
        }
        assert!(BootIni::parse("[\r\n]\r\n[]\r\n").is_err());
    }

    #[test]
    fn generated_boot_ini_parses() {
        let b = BootIni::parse(&super::super::files::boot_ini(0xfeed_0001)).unwrap();
        assert_eq!(b.timeout, Some(30));
        assert_eq!(b.default.adapter, Adapter::Signature(0xfeed_0001));
        let e = b.default_entry().unwrap();
        assert_eq!(e.options, vec!["/noexecute=optout", "/fastdetect"]);
        assert!(e.description.starts_with("Windows Server 2003"));
    }
}
