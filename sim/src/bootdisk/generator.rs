//! The boot-disk generator: from a seed, an MBR disk with one active FAT32 (LBA)
//! partition at LBA 2048 holding [`files::ENTRIES`], written sparsely, and the
//! [`Manifest`] the boot phase checks what it reads against.
//!
//! Layout (the defaults; [`DiskSpec`] can change the partition size and cluster size):
//! - sector 0: the MBR, disk signature from the seed, partition 1 of type 0x0C,
//!   active, LBA 2048, 131,072 sectors (64 MiB);
//! - the volume: 32 reserved sectors (boot sector at 0, FSInfo at 1, their backups at
//!   6 and 7), two FATs, then the data region; 512-byte sectors and 1 sector per
//!   cluster, which is what fatgen103's FAT32 size table ("FAT Volume Initialization",
//!   `DskTableFAT32`) gives a volume up to 260 MiB, and 129,008 clusters, FAT32 by the
//!   cluster-count rule (at least 65,525);
//! - FAT sizing: the smallest FAT whose entries cover every cluster plus the two
//!   reserved entries (fatgen103 "FAT Volume Initialization" computes an upper
//!   bound of the same thing).
//!
//! Allocation is first-fit by cluster number, in creation order, replaying a setup:
//! each [`Phase::Setup`] entry is followed by a temporary file of setup's; those are
//! freed, then the [`Phase::Later`] entries fill the holes, so several files (on the
//! default volume typically `fabboot.sys`, `storport.sys` and `ntoskrnl.exe`, the exact
//! runs depending on the seed) and the directories that grew past one cluster are
//! fragmented; the rest are contiguous. The root directory keeps
//! setup's deleted entries (0xE5) before its live ones.

use std::fmt;
use std::io;
use std::path::Path;

use super::bpb::{Bpb, EXTENDED_BOOT_SIGNATURE, FSI_UNKNOWN, FsInfo, Geometry};
use super::dir::{
    ATTR_DIRECTORY, ATTR_VOLUME_ID, ENTRY_LEN, FREE_MARK, LFN_CHARS, NameForm, ShortEntry,
    long_entries, name_form, short_name_checksum, with_tail,
};
use super::fat32::Run;
use super::files::{self, Content, DELETED_ROOT, Def, ENTRIES, Phase, Rng, VOLUME_LABEL};
use super::mbr::{Mbr, Partition, TYPE_FAT32_LBA};
use super::{MemDisk, OutOfRange, SECTOR_SIZE, SectorWrite, SparseFile, hex, sha256};

/// The partition's first sector (1 MiB alignment).
pub const PARTITION_LBA: u32 = 2048;
/// The default partition size: 64 MiB.
pub const DEFAULT_PARTITION_SECTORS: u32 = 131_072;
const RESERVED_SECTORS: u16 = 32;
const FATS: u8 = 2;
const FS_INFO_SECTOR: u16 = 1;
const BACKUP_BOOT_SECTOR: u16 = 6;
/// A fixed disk.
const MEDIA: u8 = 0xF8;
/// The end-of-chain mark the generator writes.
const END_OF_CHAIN: u32 = 0x0FFF_FFFF;
/// Bytes of setup's temporary files: small ones after each entry, one large (the
/// driver cabinet) after the seventh.
const TEMP_BYTES: (u64, u64) = (4 * 1024, 96 * 1024);
const LARGE_TEMP_BYTES: (u64, u64) = (768 * 1024, 1280 * 1024);
const LARGE_TEMP_AFTER: usize = 6;
/// `DIR_WrtDate`/`DIR_WrtTime` of what setup made: 2005-03-30 14:12:08.
const SETUP_STAMP: (u16, u16) = (
    ((2005 - 1980) << 9) | (3 << 5) | 30,
    (14 << 11) | (12 << 5) | 4,
);
/// Of what came later: 2005-04-01 09:30:00.
const LATER_STAMP: (u16, u16) = (((2005 - 1980) << 9) | (4 << 5) | 1, (9 << 11) | (30 << 5));

/// What disk to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// Everything random comes from this: signatures, sizes, layout, contents.
    pub seed: u64,
    /// Sectors in the FAT32 partition.
    pub partition_sectors: u32,
    /// Sectors per cluster: a power of two up to 64 (clusters of at most 32 KiB, as
    /// fatgen103 asks of formatters).
    pub sectors_per_cluster: u8,
}

impl DiskSpec {
    /// The default disk for `seed`: a 64 MiB partition of 512-byte clusters.
    pub fn new(seed: u64) -> DiskSpec {
        DiskSpec {
            seed,
            partition_sectors: DEFAULT_PARTITION_SECTORS,
            sectors_per_cluster: 1,
        }
    }

    /// Sectors in the disk: the partition and the 1 MiB before it.
    pub fn disk_sectors(&self) -> u64 {
        u64::from(PARTITION_LBA) + u64::from(self.partition_sectors)
    }

    /// The MBR disk signature (never 0: Windows treats 0 as no signature).
    pub fn disk_signature(&self) -> u32 {
        match Rng::for_name(self.seed, "disk signature").next_u64() as u32 {
            0 => 1,
            s => s,
        }
    }

    /// The volume serial number (`BS_VolID`).
    pub fn volume_id(&self) -> u32 {
        Rng::for_name(self.seed, "volume id").next_u64() as u32
    }
}

/// One file on the generated disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path from the root, `\`-separated, long names as Windows shows them.
    pub path: String,
    /// Bytes.
    pub size: u32,
    /// SHA-256 of the contents.
    pub sha256: [u8; 32],
    /// Where it is: its cluster runs in chain order (empty for an empty file).
    pub runs: Vec<Run>,
}

/// What the generator made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The seed.
    pub seed: u64,
    /// The MBR disk signature.
    pub disk_signature: u32,
    /// `BS_VolID`.
    pub volume_id: u32,
    /// Bytes in the disk image.
    pub total_bytes: u64,
    /// The partition's first sector.
    pub partition_lba: u64,
    /// Sectors in the partition.
    pub partition_sectors: u32,
    /// Bytes in a cluster.
    pub cluster_bytes: u32,
    /// Data clusters of the volume.
    pub clusters: u32,
    /// Clusters left free.
    pub free_clusters: u32,
    /// Every file, in creation order (directories are not listed).
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// The file at `path`, matched case-insensitively (`\` or `/`, leading separator
    /// optional).
    pub fn file(&self, path: &str) -> Option<&ManifestFile> {
        let want = normalize(path);
        self.files.iter().find(|f| normalize(&f.path) == want)
    }
}

fn normalize(path: &str) -> String {
    path.split(['\\', '/'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\\")
        .to_uppercase()
}

impl fmt::Display for Manifest {
    /// `sha256sum`-like lines after a header: digest, size, path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# seed {:#x}, disk signature {:08x}, {} bytes, partition at LBA {} ({} sectors), {}-byte clusters",
            self.seed,
            self.disk_signature,
            self.total_bytes,
            self.partition_lba,
            self.partition_sectors,
            self.cluster_bytes
        )?;
        for file in &self.files {
            writeln!(f, "{}  {:>8}  {}", hex(&file.sha256), file.size, file.path)?;
        }
        Ok(())
    }
}

/// Why the generator could not make the disk. `W` is the sink's error.
#[derive(Debug)]
pub enum GenError<W> {
    /// A [`DiskSpec`] field out of range.
    BadSpec {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The partition would not be FAT32 by the cluster-count rule.
    NotFat32 {
        /// The clusters it would have.
        clusters: u64,
    },
    /// No room left for an entry.
    VolumeFull {
        /// The entry.
        path: String,
        /// Clusters it needed.
        clusters: u32,
    },
    /// A file of [`files::ENTRIES`] whose directory is not listed before it.
    NoParent {
        /// The file.
        path: String,
    },
    /// The sink refused a write.
    Write {
        /// Where.
        lba: u64,
        /// Bytes.
        len: usize,
        /// Why.
        source: W,
    },
}

impl<W: fmt::Display> fmt::Display for GenError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenError::BadSpec { field, value } => write!(f, "disk spec: {field} = {value}"),
            GenError::NotFat32 { clusters } => write!(
                f,
                "the partition would have {clusters} clusters; FAT32 needs 65525 or more"
            ),
            GenError::VolumeFull { path, clusters } => {
                write!(f, "no room for {path} ({clusters} clusters)")
            }
            GenError::NoParent { path } => write!(f, "{path}: its directory is not made first"),
            GenError::Write { lba, len, source } => {
                write!(f, "writing {len} bytes at LBA {lba}: {source}")
            }
        }
    }
}

impl<W: std::error::Error + 'static> std::error::Error for GenError<W> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GenError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Writes the disk of `spec` to a new sparse image file at `path` (an existing file
/// is replaced): only non-zero sectors are written.
pub fn write_image(spec: &DiskSpec, path: &Path) -> Result<Manifest, GenError<io::Error>> {
    let mut sink =
        SparseFile::create(path, spec.disk_sectors()).map_err(|source| GenError::Write {
            lba: 0,
            len: 0,
            source,
        })?;
    generate(spec, &mut sink)
}

/// The disk of `spec` in memory.
pub fn generate_in_memory(spec: &DiskSpec) -> Result<(MemDisk, Manifest), GenError<OutOfRange>> {
    let mut disk = MemDisk::new(spec.disk_sectors());
    let manifest = generate(spec, &mut disk)?;
    Ok((disk, manifest))
}

/// Writes the disk of `spec` to `sink`, which must read back as zeros wherever
/// nothing is written (a new sparse file, a zeroed [`MemDisk`]).
pub fn generate<W: SectorWrite>(
    spec: &DiskSpec,
    sink: &mut W,
) -> Result<Manifest, GenError<W::Error>> {
    let (bpb, geo) = volume(spec)?;
    let boot_ini = files::boot_ini(spec.disk_signature());
    let mut tree = Tree::build(spec.seed, boot_ini.len() as u32)?;
    let mut alloc = Alloc::new(geo.last_cluster());
    tree.allocate(&mut alloc, &geo, spec.seed)?;

    let mut out = Writer { sink };
    let p = u64::from(PARTITION_LBA);
    // The MBR.
    let mbr = Mbr {
        disk_signature: spec.disk_signature(),
        partitions: [
            Partition {
                active: true,
                kind: TYPE_FAT32_LBA,
                first_lba: PARTITION_LBA,
                sectors: spec.partition_sectors,
            },
            Partition::default(),
            Partition::default(),
            Partition::default(),
        ],
    };
    out.write(0, &mbr.emit())?;
    // Boot sector, FSInfo and their backups.
    let boot = bpb.emit();
    let fs_info = FsInfo {
        free_count: alloc.free_count(),
        next_free: alloc.first_free().unwrap_or(FSI_UNKNOWN),
    }
    .emit();
    for base in [0, u64::from(BACKUP_BOOT_SECTOR)] {
        out.write(p + base, &boot)?;
        out.write(p + base + u64::from(FS_INFO_SECTOR), &fs_info)?;
    }
    // The FATs: up to the last sector holding a used entry.
    let fat = tree.fat(&geo);
    for copy in 0..u64::from(FATS) {
        out.write(
            p + u64::from(geo.fat_start) + copy * u64::from(geo.fat_sectors),
            &fat,
        )?;
    }
    // Directories and files.
    let mut manifest_files = Vec::new();
    for i in 0..tree.nodes.len() {
        let node = &tree.nodes[i];
        if node.deleted {
            continue;
        }
        if node.is_dir() {
            let bytes = tree.directory_bytes(i, geo.cluster_bytes);
            out.write_chain(&geo, &tree.nodes[i].clusters, &bytes)?;
        } else if let Some(def) = node.def {
            let data = files::contents(&def, spec.seed, &boot_ini);
            out.write_chain(&geo, &node.clusters, &data)?;
            manifest_files.push(ManifestFile {
                path: def.path.to_string(),
                size: data.len() as u32,
                sha256: sha256(&data),
                runs: runs_of(&node.clusters),
            });
        }
    }
    Ok(Manifest {
        seed: spec.seed,
        disk_signature: spec.disk_signature(),
        volume_id: spec.volume_id(),
        total_bytes: spec.disk_sectors() * SECTOR_SIZE as u64,
        partition_lba: p,
        partition_sectors: spec.partition_sectors,
        cluster_bytes: geo.cluster_bytes,
        clusters: geo.clusters,
        free_clusters: alloc.free_count(),
        files: manifest_files,
    })
}

/// The BPB of `spec`'s volume and the layout it gives.
fn volume<W>(spec: &DiskSpec) -> Result<(Bpb, Geometry), GenError<W>> {
    let spc = u64::from(spec.sectors_per_cluster);
    if !spec.sectors_per_cluster.is_power_of_two() || spc > 64 {
        return Err(GenError::BadSpec {
            field: "sectors_per_cluster",
            value: spc,
        });
    }
    let total = u64::from(spec.partition_sectors);
    let rsvd = u64::from(RESERVED_SECTORS);
    let fats = u64::from(FATS);
    let entries_per_sector = (SECTOR_SIZE / 4) as u64;
    if total <= rsvd + 2 * fats {
        return Err(GenError::BadSpec {
            field: "partition_sectors",
            value: total,
        });
    }
    let clusters_with = |fat: u64| (total.saturating_sub(rsvd + fats * fat)) / spc;
    // fat × 128 >= clusters + 2 with clusters <= (total - rsvd - 2 fat) / spc gives
    // fat >= (total - rsvd + 2 spc) / (128 spc + 2): start there, then take the
    // smallest that still covers every cluster.
    let mut fat = (total - rsvd + 2 * spc).div_ceil(entries_per_sector * spc + fats);
    while fat > 1 && (fat - 1) * entries_per_sector >= clusters_with(fat - 1) + 2 {
        fat -= 1;
    }
    let clusters = clusters_with(fat);
    if !(super::bpb::MIN_FAT32_CLUSTERS..=super::bpb::MAX_FAT32_CLUSTERS).contains(&clusters) {
        return Err(GenError::NotFat32 { clusters });
    }
    let mut label = [b' '; 11];
    label.copy_from_slice(VOLUME_LABEL);
    let bpb = Bpb {
        jump: [0xEB, 0x58, 0x90],
        oem_name: *b"MSWIN4.1",
        bytes_per_sector: SECTOR_SIZE as u16,
        sectors_per_cluster: spec.sectors_per_cluster,
        reserved_sectors: RESERVED_SECTORS,
        fats: FATS,
        root_entries: 0,
        total_sectors_16: 0,
        media: MEDIA,
        fat_size_16: 0,
        sectors_per_track: 63,
        heads: 255,
        hidden_sectors: PARTITION_LBA,
        total_sectors_32: spec.partition_sectors,
        fat_size_32: fat as u32,
        ext_flags: 0,
        fs_version: 0,
        root_cluster: 2,
        fs_info_sector: FS_INFO_SECTOR,
        backup_boot_sector: BACKUP_BOOT_SECTOR,
        drive_number: 0x80,
        boot_signature: EXTENDED_BOOT_SIGNATURE,
        volume_id: spec.volume_id(),
        volume_label: label,
        fs_type: *b"FAT32   ",
    };
    // The reader's judgement of our own BPB: the generator never writes a volume the
    // reader would refuse.
    let geo = bpb
        .geometry()
        .map_err(|_| GenError::NotFat32 { clusters })?;
    Ok((bpb, geo))
}

/// The free clusters of the volume being made.
struct Alloc {
    used: Vec<bool>,
    /// No free cluster below this one.
    lowest_free: u32,
}

impl Alloc {
    fn new(last_cluster: u32) -> Alloc {
        let mut used = vec![false; last_cluster as usize + 1];
        used[0] = true;
        used[1] = true;
        Alloc {
            used,
            lowest_free: 2,
        }
    }

    /// The `n` lowest-numbered free clusters, now used; `None` if there are fewer.
    fn take(&mut self, n: u32) -> Option<Vec<u32>> {
        let mut got = Vec::with_capacity(n as usize);
        let mut c = self.lowest_free as usize;
        while got.len() < n as usize && c < self.used.len() {
            if !self.used[c] {
                got.push(c as u32);
            }
            c += 1;
        }
        if got.len() < n as usize {
            return None;
        }
        for &c in &got {
            self.used[c as usize] = true;
        }
        self.lowest_free = self.first_free().unwrap_or(self.used.len() as u32);
        Some(got)
    }

    fn free(&mut self, clusters: &[u32]) {
        for &c in clusters {
            self.used[c as usize] = false;
            self.lowest_free = self.lowest_free.min(c);
        }
    }

    fn first_free(&self) -> Option<u32> {
        (self.lowest_free as usize..self.used.len())
            .find(|&c| !self.used[c])
            .map(|c| c as u32)
    }

    fn free_count(&self) -> u32 {
        self.used.iter().filter(|&&u| !u).count() as u32
    }
}

/// One entry of the volume being made.
struct Node {
    /// The long name ("" for the root).
    name: String,
    /// Its definition (`None` for the root and setup's deleted entries).
    def: Option<Def>,
    attributes: u8,
    deleted: bool,
    parent: usize,
    children: Vec<usize>,
    /// Stored name and case bits, and whether long-name entries go before it.
    short: [u8; 11],
    nt_res: u8,
    long: bool,
    size: u32,
    clusters: Vec<u32>,
    stamp: (u16, u16),
}

impl Node {
    fn is_dir(&self) -> bool {
        self.attributes & ATTR_DIRECTORY != 0
    }

    /// Entries it takes in its directory: its long-name entries and its short entry.
    fn slots(&self) -> usize {
        1 + if self.long {
            self.name.encode_utf16().count().div_ceil(LFN_CHARS)
        } else {
            0
        }
    }
}

/// The volume's entries; node 0 is the root.
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// The tree of [`DELETED_ROOT`] and [`ENTRIES`] under `seed`, with `boot.ini`
    /// `boot_ini_len` bytes long.
    fn build<W>(seed: u64, boot_ini_len: u32) -> Result<Tree, GenError<W>> {
        let root = Node {
            name: String::new(),
            def: None,
            attributes: ATTR_DIRECTORY,
            deleted: false,
            parent: 0,
            children: Vec::new(),
            short: [b' '; 11],
            nt_res: 0,
            long: false,
            size: 0,
            clusters: Vec::new(),
            stamp: SETUP_STAMP,
        };
        let mut t = Tree { nodes: vec![root] };
        for &(name, attributes) in DELETED_ROOT {
            t.add(0, name, None, attributes, true, 0, SETUP_STAMP);
        }
        for def in ENTRIES {
            let (parent_path, name) = match def.path.rfind('\\') {
                Some(i) => (&def.path[..i], &def.path[i + 1..]),
                None => ("", def.path),
            };
            let parent = if parent_path.is_empty() {
                0
            } else {
                t.nodes
                    .iter()
                    .position(|n| n.is_dir() && n.def.is_some_and(|d| d.path == parent_path))
                    .ok_or_else(|| GenError::NoParent {
                        path: def.path.to_string(),
                    })?
            };
            let size = if def.content == Content::BootIni {
                boot_ini_len
            } else {
                files::size(def, seed)
            };
            let stamp = match def.phase {
                Phase::Setup => SETUP_STAMP,
                Phase::Later => LATER_STAMP,
            };
            t.add(parent, name, Some(*def), def.attributes, false, size, stamp);
        }
        for i in 0..t.nodes.len() {
            t.name_children(i);
        }
        Ok(t)
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        parent: usize,
        name: &str,
        def: Option<Def>,
        attributes: u8,
        deleted: bool,
        size: u32,
        stamp: (u16, u16),
    ) {
        let i = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_string(),
            def,
            attributes,
            deleted,
            parent,
            children: Vec::new(),
            short: [b' '; 11],
            nt_res: 0,
            long: false,
            size,
            clusters: Vec::new(),
            stamp,
        });
        self.nodes[parent].children.push(i);
    }

    /// Gives the children of directory `dir` their short names, in entry order: an
    /// 8.3 name as is (with case bits), else the basis name, with the smallest numeric
    /// tail that is free in the directory when the basis is lossy or taken.
    fn name_children(&mut self, dir: usize) {
        let mut taken: Vec<[u8; 11]> = Vec::new();
        for k in 0..self.nodes[dir].children.len() {
            let c = self.nodes[dir].children[k];
            let (short, nt_res, long) = match name_form(&self.nodes[c].name) {
                NameForm::Short { name, nt_res } if !taken.contains(&name) => (name, nt_res, false),
                NameForm::Short { name, .. } => (free_tail(&name, &taken), 0, true),
                NameForm::Long { basis, tail } if !tail && !taken.contains(&basis) => {
                    (basis, 0, true)
                }
                NameForm::Long { basis, .. } => (free_tail(&basis, &taken), 0, true),
            };
            taken.push(short);
            let n = &mut self.nodes[c];
            n.short = short;
            n.nt_res = nt_res;
            n.long = long;
        }
    }

    /// Replays the volume's history (see the module documentation) and leaves every
    /// live node with its clusters.
    fn allocate<W>(
        &mut self,
        alloc: &mut Alloc,
        geo: &Geometry,
        seed: u64,
    ) -> Result<(), GenError<W>> {
        let cb = u64::from(geo.cluster_bytes);
        let take = |alloc: &mut Alloc, path: &str, n: u32| {
            alloc.take(n).ok_or_else(|| GenError::VolumeFull {
                path: path.to_string(),
                clusters: n,
            })
        };
        // Format: the root's first cluster (cluster 2, `BPB_RootClus`).
        self.nodes[0].clusters = take(alloc, "\\", 1)?;
        let mut rng = Rng::for_name(seed, "setup temporaries");
        let mut temps: Vec<(Vec<u32>, u64)> = Vec::new();
        for phase in [Phase::Setup, Phase::Later] {
            for i in 0..self.nodes.len() {
                let Some(def) = self.nodes[i].def else {
                    continue;
                };
                if def.phase != phase {
                    continue;
                }
                let n = if self.nodes[i].is_dir() {
                    1
                } else {
                    u64::from(self.nodes[i].size).div_ceil(cb) as u32
                };
                self.nodes[i].clusters = take(alloc, def.path, n)?;
                if phase == Phase::Setup {
                    let (lo, hi) = if temps.len() == LARGE_TEMP_AFTER {
                        LARGE_TEMP_BYTES
                    } else {
                        TEMP_BYTES
                    };
                    let bytes = rng.range(lo, hi);
                    let n = (bytes / cb).max(1) as u32;
                    temps.push((take(alloc, "setup temporary file", n)?, bytes));
                }
            }
            if phase == Phase::Setup {
                for (clusters, _) in &temps {
                    alloc.free(clusters);
                }
            }
        }
        // Setup's deleted root entries point at the (now free) clusters of its
        // temporary files.
        let deleted: Vec<usize> = self.nodes[0]
            .children
            .iter()
            .copied()
            .filter(|&c| self.nodes[c].deleted)
            .collect();
        for (&c, (clusters, bytes)) in deleted.iter().zip(&temps) {
            let n = &mut self.nodes[c];
            n.clusters = clusters.iter().copied().take(1).collect();
            if !n.is_dir() {
                n.size = *bytes as u32;
            }
        }
        // Directories that outgrew their first cluster grew last.
        let per_cluster = geo.cluster_bytes as usize / ENTRY_LEN;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_dir() || self.nodes[i].deleted {
                continue;
            }
            let needed = self.entries(i).div_ceil(per_cluster).max(1);
            let have = self.nodes[i].clusters.len();
            if needed > have {
                let more = take(alloc, &self.nodes[i].name, (needed - have) as u32)?;
                self.nodes[i].clusters.extend(more);
            }
        }
        Ok(())
    }

    /// Entries directory `dir` holds: `.` and `..` (the root has the label instead),
    /// and every child's slots, deleted ones included.
    fn entries(&self, dir: usize) -> usize {
        let own = if dir == 0 { 1 } else { 2 };
        own + self.nodes[dir]
            .children
            .iter()
            .map(|&c| self.nodes[c].slots())
            .sum::<usize>()
    }

    /// The FAT's bytes: entries 0 and 1 (media byte, clean end-of-chain), every live
    /// chain, up to the sector holding the last used entry.
    fn fat(&self, geo: &Geometry) -> Vec<u8> {
        let mut fat = vec![0u32; geo.last_cluster() as usize + 1];
        fat[0] = 0x0FFF_FF00 | u32::from(MEDIA);
        fat[1] = END_OF_CHAIN;
        for n in self.nodes.iter().filter(|n| !n.deleted) {
            for w in n.clusters.windows(2) {
                fat[w[0] as usize] = w[1];
            }
            if let Some(&last) = n.clusters.last() {
                fat[last as usize] = END_OF_CHAIN;
            }
        }
        let used = fat.iter().rposition(|&e| e != 0).map_or(0, |i| i + 1);
        let mut bytes: Vec<u8> = fat[..used].iter().flat_map(|e| e.to_le_bytes()).collect();
        bytes.resize(bytes.len().div_ceil(SECTOR_SIZE) * SECTOR_SIZE, 0);
        bytes
    }

    /// The bytes of directory `dir`, all of its clusters.
    fn directory_bytes(&self, dir: usize, cluster_bytes: u32) -> Vec<u8> {
        let d = &self.nodes[dir];
        let mut out: Vec<u8> = Vec::new();
        let entry = |n: &Node, name: [u8; 11], first: u32| ShortEntry {
            name,
            attr: n.attributes,
            nt_res: n.nt_res,
            create_tenth: 0,
            create_time: n.stamp.1,
            create_date: n.stamp.0,
            access_date: n.stamp.0,
            first_cluster: first,
            write_time: n.stamp.1,
            write_date: n.stamp.0,
            size: if n.is_dir() { 0 } else { n.size },
        };
        if dir == 0 {
            let mut label = [b' '; 11];
            label.copy_from_slice(VOLUME_LABEL);
            let mut e = entry(d, label, 0);
            e.attr = ATTR_VOLUME_ID;
            e.nt_res = 0;
            out.extend_from_slice(&e.emit());
        } else {
            let first = |n: &Node| n.clusters.first().copied().unwrap_or(0);
            let mut dot = entry(d, *b".          ", first(d));
            dot.nt_res = 0;
            out.extend_from_slice(&dot.emit());
            // `..` of a directory in the root names cluster 0 (fatgen103 "FAT
            // Directory Structure"), not `BPB_RootClus`.
            let parent = if d.parent == 0 {
                0
            } else {
                first(&self.nodes[d.parent])
            };
            let mut dotdot = entry(d, *b"..         ", parent);
            dotdot.nt_res = 0;
            out.extend_from_slice(&dotdot.emit());
        }
        for &c in &d.children {
            let n = &self.nodes[c];
            let first = n.clusters.first().copied().unwrap_or(0);
            let mut pieces = Vec::new();
            if n.long {
                let checksum = short_name_checksum(&n.short);
                pieces.extend(long_entries(&n.name, checksum).unwrap_or_default());
            }
            pieces.push(entry(n, n.short, first).emit());
            for mut p in pieces {
                if n.deleted {
                    p[0] = FREE_MARK;
                }
                out.extend_from_slice(&p);
            }
        }
        let clusters = d.clusters.len().max(1);
        out.resize(clusters * cluster_bytes as usize, 0);
        out
    }
}

/// `basis` with the smallest numeric tail not in `taken`.
fn free_tail(basis: &[u8; 11], taken: &[[u8; 11]]) -> [u8; 11] {
    (1..=999_999)
        .map(|n| with_tail(basis, n))
        .find(|s| !taken.contains(s))
        .unwrap_or(*basis)
}

/// The contiguous runs of a chain.
fn runs_of(chain: &[u32]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for &c in chain {
        match runs.last_mut() {
            Some(r) if r.first + r.clusters == c => r.clusters += 1,
            _ => runs.push(Run {
                first: c,
                clusters: 1,
            }),
        }
    }
    runs
}

/// The sink, with errors given their place.
struct Writer<'a, W: SectorWrite> {
    sink: &'a mut W,
}

impl<W: SectorWrite> Writer<'_, W> {
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), GenError<W::Error>> {
        self.sink
            .write(lba, data)
            .map_err(|source| GenError::Write {
                lba,
                len: data.len(),
                source,
            })
    }

    /// Writes `data` into the clusters of `chain`, one write a contiguous run, the
    /// last piece padded to a whole sector.
    fn write_chain(
        &mut self,
        geo: &Geometry,
        chain: &[u32],
        data: &[u8],
    ) -> Result<(), GenError<W::Error>> {
        let mut off = 0usize;
        for run in runs_of(chain) {
            if off >= data.len() {
                break;
            }
            let end = (off + run.clusters as usize * geo.cluster_bytes as usize).min(data.len());
            let lba = u64::from(PARTITION_LBA) + geo.cluster_sector(run.first);
            let piece = &data[off..end];
            if piece.len().is_multiple_of(SECTOR_SIZE) {
                self.write(lba, piece)?;
            } else {
                let mut padded = piece.to_vec();
                padded.resize(piece.len().div_ceil(SECTOR_SIZE) * SECTOR_SIZE, 0);
                self.write(lba, &padded)?;
            }
            off = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_volume_is_fat32_with_the_smallest_covering_fat() {
        let (bpb, geo) = volume::<()>(&DiskSpec::new(1)).unwrap();
        let fat = u64::from(bpb.fat_size_32);
        assert_eq!(u64::from(geo.clusters), 131_072 - 32 - 2 * fat);
        assert!(fat * 128 >= u64::from(geo.clusters) + 2);
        // One sector less would not cover the clusters it would leave.
        let fewer = 131_072 - 32 - 2 * (fat - 1);
        assert!((fat - 1) * 128 < fewer + 2);
        assert_eq!((fat, geo.clusters), (1009, 129_022));
    }

    #[test]
    fn too_few_clusters_is_refused() {
        let mut spec = DiskSpec::new(1);
        spec.sectors_per_cluster = 2; // 64 MiB of 1 KiB clusters: about 65,000
        assert!(matches!(
            volume::<()>(&spec),
            Err(GenError::NotFat32 { .. })
        ));
        spec.sectors_per_cluster = 3;
        assert!(matches!(volume::<()>(&spec), Err(GenError::BadSpec { .. })));
        spec.sectors_per_cluster = 128;
        assert!(matches!(volume::<()>(&spec), Err(GenError::BadSpec { .. })));
    }

    #[test]
    fn short_names_and_tails() {
        let t = Tree::build::<()>(5, 100).unwrap();
        let find = |name: &str| t.nodes.iter().find(|n| n.name == name).unwrap();
        assert_eq!(&find("System Volume Information").short, b"SYSTEM~1   ");
        assert!(find("System Volume Information").long);
        assert_eq!(
            &find("MountPointManagerRemoteDatabase").short,
            b"MOUNTP~1   "
        );
        assert_eq!(&find("PartMgr.sys").short, b"PARTMGR SYS");
        assert!(find("PartMgr.sys").long);
        assert!(!find("boot.ini").long);
        assert!(!find("CLASSPNP.SYS").long);
        assert_eq!(&find("$WIN_NT$.~LS").short, b"$WIN_NT$~LS");
    }

    #[test]
    fn alloc_is_first_fit_and_refills_holes() {
        let mut a = Alloc::new(20);
        let x = a.take(3).unwrap();
        let y = a.take(2).unwrap();
        assert_eq!(x, vec![2, 3, 4]);
        assert_eq!(y, vec![5, 6]);
        a.free(&x);
        assert_eq!(a.take(4).unwrap(), vec![2, 3, 4, 7]);
        assert_eq!(a.free_count(), 20 - 1 - 6);
        assert!(a.take(100).is_none());
    }
}
