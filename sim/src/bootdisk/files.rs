//! What the generated system partition holds: the files NTLDR loads for a Windows
//! Server 2003 install on a FAT32 system volume, the directories they live in, the
//! leftovers of text-mode setup, their sizes, attributes and deterministic contents,
//! and the `boot.ini` text.
//!
//! Every entry is made in one of two phases, which is what makes the volume
//! fragmented the way a real one is ([`super::generator`] allocates): text-mode [`Phase::Setup`]
//! copies files while its own temporary files (`$WIN_NT$.~LS` and friends) sit between
//! them; those are deleted at its end, and whatever is written [`Phase::Later`] (the
//! service pack's kernel and storport, the registry hive, our driver, the final
//! `boot.ini`) fills the holes they left.

use super::dir::{ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_HIDDEN, ATTR_READ_ONLY, ATTR_SYSTEM};

/// When an entry is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// During text-mode setup, with setup's temporary files allocated after each one.
    Setup,
    /// After setup's temporary files were deleted.
    Later,
}

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Pseudo-random bytes behind a PE image's `MZ`.
    Pe,
    /// Pseudo-random bytes behind a registry hive's `regf`; the size is a whole number
    /// of 4 KiB hive blocks.
    Hive,
    /// Pseudo-random bytes (the 16-bit loader and detector, a log).
    Raw,
    /// The `boot.ini` text ([`boot_ini`]).
    BootIni,
    /// Nothing: a zero-length file.
    Empty,
}

/// One file or directory of the generated volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def {
    /// Path from the root, `\`-separated, with the name as Windows shows it.
    pub path: &'static str,
    /// Nominal size in bytes (0 for directories and empty files); the generated size
    /// is within 5 % of it (see [`size`]).
    pub size: u32,
    /// `DIR_Attr`.
    pub attributes: u8,
    /// When it is created.
    pub phase: Phase,
    /// What it holds.
    pub content: Content,
}

impl Def {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.attributes & ATTR_DIRECTORY != 0
    }
}

const D: u8 = ATTR_DIRECTORY;
const A: u8 = ATTR_ARCHIVE;
/// Read-only, hidden, system, archive: how setup leaves `ntldr` and `NTDETECT.COM`.
const RHSA: u8 = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_ARCHIVE;
/// Hidden and system: `boot.ini`, `System Volume Information`.
const HS: u8 = ATTR_HIDDEN | ATTR_SYSTEM;
const KIB: u32 = 1024;

const fn def(path: &'static str, size: u32, attributes: u8, phase: Phase, content: Content) -> Def {
    Def {
        path,
        size,
        attributes,
        phase,
        content,
    }
}

/// The system root `boot.ini` names (`\WINDOWS`).
pub const SYSTEM_ROOT: &str = "WINDOWS";

/// The volume label (`BS_VolLab` and the root's label entry).
pub const VOLUME_LABEL: &[u8; 11] = b"FABBOOT    ";

/// Every entry of the volume, in the order created. A directory comes before what it
/// holds; within a directory, entries are stored in this order.
pub const ENTRIES: &[Def] = &[
    def("WINDOWS", 0, D, Phase::Setup, Content::Empty),
    def("WINDOWS\\system32", 0, D, Phase::Setup, Content::Empty),
    def(
        "WINDOWS\\system32\\config",
        0,
        D,
        Phase::Setup,
        Content::Empty,
    ),
    def(
        "WINDOWS\\system32\\drivers",
        0,
        D,
        Phase::Setup,
        Content::Empty,
    ),
    def("ntldr", 250 * KIB, RHSA, Phase::Setup, Content::Raw),
    def("NTDETECT.COM", 47 * KIB, RHSA, Phase::Setup, Content::Raw),
    def(
        "WINDOWS\\system32\\hal.dll",
        130 * KIB,
        A,
        Phase::Setup,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\drivers\\CLASSPNP.SYS",
        50 * KIB,
        A,
        Phase::Setup,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\drivers\\disk.sys",
        36 * KIB,
        A,
        Phase::Setup,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\drivers\\PartMgr.sys",
        22 * KIB,
        A,
        Phase::Setup,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\drivers\\VolSnap.sys",
        64 * KIB,
        A,
        Phase::Setup,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\drivers\\KSecDD.sys",
        92 * KIB,
        A,
        Phase::Setup,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\drivers\\fastfat.sys",
        145 * KIB,
        A,
        Phase::Setup,
        Content::Pe,
    ),
    def("AUTOEXEC.BAT", 0, A, Phase::Setup, Content::Empty),
    def("CONFIG.SYS", 0, A, Phase::Setup, Content::Empty),
    def("IO.SYS", 0, RHSA, Phase::Setup, Content::Empty),
    def("MSDOS.SYS", 0, RHSA, Phase::Setup, Content::Empty),
    def("boot.ini", 0, HS | A, Phase::Later, Content::BootIni),
    def(
        "WINDOWS\\system32\\drivers\\fabboot.sys",
        180 * KIB,
        A,
        Phase::Later,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\drivers\\storport.sys",
        140 * KIB,
        A,
        Phase::Later,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\ntoskrnl.exe",
        2150 * KIB,
        A,
        Phase::Later,
        Content::Pe,
    ),
    def(
        "WINDOWS\\system32\\config\\SYSTEM",
        3 * 1024 * KIB,
        A,
        Phase::Later,
        Content::Hive,
    ),
    def(
        "System Volume Information",
        0,
        HS | D,
        Phase::Later,
        Content::Empty,
    ),
    def(
        "System Volume Information\\MountPointManagerRemoteDatabase",
        0,
        A,
        Phase::Later,
        Content::Empty,
    ),
    def(
        "System Volume Information\\tracking.log",
        20 * KIB,
        A,
        Phase::Later,
        Content::Raw,
    ),
];

/// Root entries text-mode setup made and deleted at its end (a directory entry whose
/// first byte is 0xE5, its clusters free), stored right after the volume label, before
/// every live entry: the names setup really uses on a system partition.
pub const DELETED_ROOT: &[(&str, u8)] = &[
    ("$WIN_NT$.~BT", D),
    ("$WIN_NT$.~LS", D),
    ("$LDR$", RHSA),
    ("TXTSETUP.SIF", A),
    ("BOOTSECT.DAT", A),
];

/// splitmix64: the generator's deterministic source of sizes, layouts and contents.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A stream of its own for `what` (a path, a purpose) under `seed`.
    pub(crate) fn for_name(seed: u64, what: &str) -> Rng {
        // FNV-1a of the name, case-folded so a stream does not depend on spelling.
        let h = what.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b.to_ascii_uppercase())).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Rng(seed ^ h.rotate_left(17))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The size of `def` under `seed`: its nominal size moved by up to ±5 %; a hive's is
/// rounded down to whole 4 KiB blocks. Directories and empty files are 0; `boot.ini`
/// is sized by its text.
pub fn size(def: &Def, seed: u64) -> u32 {
    match def.content {
        Content::Empty | Content::BootIni => 0,
        Content::Hive => {
            let s = jitter(def, seed);
            (s / (4 * KIB)).max(1) * 4 * KIB
        }
        Content::Pe | Content::Raw => jitter(def, seed),
    }
}

fn jitter(def: &Def, seed: u64) -> u32 {
    let mut r = Rng::for_name(seed, &format!("size:{}", def.path));
    let span = u64::from(def.size / 10);
    let delta = r.range(0, span.max(1)) as i64 - (span / 2) as i64;
    (i64::from(def.size) + delta).max(1) as u32
}

/// The bytes of `def` under `seed` (`boot_ini` is the text for `boot.ini`).
pub fn contents(def: &Def, seed: u64, boot_ini: &str) -> Vec<u8> {
    let magic: &[u8] = match def.content {
        Content::BootIni => return boot_ini.as_bytes().to_vec(),
        Content::Empty => return Vec::new(),
        Content::Pe => b"MZ",
        Content::Hive => b"regf",
        Content::Raw => b"",
    };
    let mut out = vec![0u8; size(def, seed) as usize];
    Rng::for_name(seed, def.path).fill(&mut out);
    let n = magic.len().min(out.len());
    out[..n].copy_from_slice(&magic[..n]);
    out
}

/// The ARC path of the system root on the disk with signature `signature`: NTLDR
/// finds the disk by its MBR signature, SCSI target 0 (`disk`), LUN 0 (`rdisk`), the
/// first partition.
pub fn arc_path(signature: u32) -> String {
    format!("signature({signature:08x})disk(0)rdisk(0)partition(1)\\{SYSTEM_ROOT}")
}

/// The `boot.ini` of the disk with signature `signature` (CRLF lines, as Windows
/// writes it).
pub fn boot_ini(signature: u32) -> String {
    let arc = arc_path(signature);
    format!(
        "[boot loader]\r\n\
         timeout=30\r\n\
         default={arc}\r\n\
         [operating systems]\r\n\
         {arc}=\"Windows Server 2003, Enterprise (SRP boot over InfiniBand)\" /noexecute=optout /fastdetect\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_in_the_ranges_the_boot_phase_expects() {
        for seed in [0u64, 1, 0xdead_beef, u64::MAX] {
            for d in ENTRIES {
                let s = size(d, seed);
                if d.content == Content::Pe
                    || d.content == Content::Raw
                    || d.content == Content::Hive
                {
                    let lo = d.size - d.size / 10;
                    let hi = d.size + d.size / 10;
                    assert!((lo..=hi).contains(&s), "{}: {s}", d.path);
                }
                if d.path.contains("\\drivers\\") {
                    assert!((20 * KIB..=400 * KIB).contains(&s), "{}: {s}", d.path);
                }
                if d.content == Content::Hive {
                    assert_eq!(s % 4096, 0);
                }
            }
        }
    }

    #[test]
    fn contents_are_deterministic_and_seeded() {
        let d = ENTRIES
            .iter()
            .find(|d| d.path.ends_with("hal.dll"))
            .unwrap();
        let a = contents(d, 7, "");
        assert_eq!(a, contents(d, 7, ""));
        assert_ne!(a, contents(d, 8, ""));
        assert_eq!(&a[..2], b"MZ");
        assert_eq!(a.len() as u32, size(d, 7));
    }

    #[test]
    fn boot_ini_names_the_signature() {
        let t = boot_ini(0x0012_abcd);
        assert!(t.starts_with("[boot loader]\r\ntimeout=30\r\n"));
        assert!(t.contains("default=signature(0012abcd)disk(0)rdisk(0)partition(1)\\WINDOWS\r\n"));
        assert!(t.contains("[operating systems]\r\nsignature(0012abcd)"));
    }

    #[test]
    fn five_to_eight_drivers_among_them_fabboot() {
        let drivers: Vec<_> = ENTRIES
            .iter()
            .filter(|d| d.path.starts_with("WINDOWS\\system32\\drivers\\"))
            .collect();
        assert!((5..=8).contains(&drivers.len()));
        assert!(drivers.iter().any(|d| d.path.ends_with("\\fabboot.sys")));
    }
}
