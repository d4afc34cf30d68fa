//! The FAT32 reader: from sector 0 of a disk to the bytes of a file, through
//! [`SectorRead`] only.
//!
//! [`Fat32::open`] reads the MBR, takes the first partition of type 0x0B or 0x0C,
//! reads its boot sector and judges the BPB ([`Bpb::geometry`]). Paths are
//! `\`-separated (`/` is taken too), matched case-insensitively against long and short
//! names. A file is read in contiguous cluster runs, each run in requests of at most
//! the caller's `max_transfer` bytes: NTLDR gives a miniport at most 17 physical
//! breaks, so the boot phase passes 64 KiB, and one request may span up to 128
//! sectors.
//!
//! Nothing on the disk is trusted: every cluster number is range checked, every FAT
//! chain is walked with a record of the clusters seen (a loop is
//! [`Fat32Error::ChainLoop`]), a file's chain must hold exactly the clusters its size
//! needs, a directory may not pass 65,536 entries (fatgen103 "FAT Directory
//! Structure"), and reads stay inside the volume. A hostile image gives a typed error,
//! never a panic.

use std::fmt;

use super::bpb::{Bpb, BpbError, FsInfo, FsInfoError, Geometry};
use super::dir::{ATTR_DIRECTORY, DirParser, ENTRY_LEN, Item, ShortEntry, names_match};
use super::mbr::{BadBootSignature, Mbr};
use super::{SECTOR_SIZE, SectorRead, rd32};

/// FAT32 entries are 28 bits; the top 4 are reserved (fatgen103 "FAT32 FAT Entry
/// Values": they are kept as found and ignored when read).
const FAT32_MASK: u32 = 0x0FFF_FFFF;
/// The bad-cluster mark.
const BAD_CLUSTER: u32 = 0x0FFF_FFF7;
/// The smallest end-of-chain mark (0x0FFFFFF8 to 0x0FFFFFFF all end a chain).
const END_OF_CHAIN: u32 = 0x0FFF_FFF8;
/// A directory holds at most 65,536 entries of 32 bytes (fatgen103 "FAT Directory
/// Structure").
const MAX_DIRECTORY_BYTES: u32 = 65_536 * ENTRY_LEN as u32;
/// Largest request for directory and FAT reads: 64 KiB, the most NTLDR moves in one
/// transfer (17 physical breaks of 4 KiB pages, one of them for misalignment).
pub const METADATA_MAX_TRANSFER: u32 = 64 * 1024;

/// What the reader found: the partition it opened and the volume's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The MBR's disk signature (what a `signature(xxxxxxxx)` ARC path names).
    pub disk_signature: u32,
    /// The partition's number in ARC `partition(n)` terms: 1-based among the used,
    /// non-extended entries of the table.
    pub partition: u32,
    /// The partition's first sector on the disk.
    pub first_lba: u64,
    /// Sectors in the partition (`SizeInLBA`).
    pub partition_sectors: u32,
    /// The boot sector's fields.
    pub bpb: Bpb,
    /// The layout the BPB describes.
    pub geometry: Geometry,
}

/// A file or directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name, or the short name with its `DIR_NTRes` case.
    pub name: String,
    /// The short name, `BASE.EXT`, as stored.
    pub short_name: String,
    /// `DIR_Attr`.
    pub attributes: u8,
    /// First cluster (0 for an empty file).
    pub first_cluster: u32,
    /// Bytes in the file (0 for a directory).
    pub size: u32,
}

impl DirEntry {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.attributes & ATTR_DIRECTORY != 0
    }

    /// Whether `name` names this entry (its long or short name, ignoring case).
    pub fn matches(&self, name: &str) -> bool {
        names_match(&self.name, name) || names_match(&self.short_name, name)
    }

    fn from_short(short: &ShortEntry, long_name: Option<String>) -> DirEntry {
        DirEntry {
            name: long_name.unwrap_or_else(|| short.display_name()),
            short_name: short.short_name(),
            attributes: short.attr,
            first_cluster: short.first_cluster,
            size: short.size,
        }
    }
}

/// Contiguous clusters of a chain: `clusters` clusters from `first` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First cluster.
    pub first: u32,
    /// Number of clusters.
    pub clusters: u32,
}

/// Why the reader could not go on. `E` is the disk's error.
#[derive(Debug)]
pub enum Fat32Error<E> {
    /// The disk failed a read.
    Disk {
        /// First sector asked for.
        lba: u64,
        /// Sectors asked for.
        count: u32,
        /// The disk's error.
        source: E,
    },
    /// Sector 0 is not an MBR: no 0x55 0xAA.
    BadMbrSignature {
        /// The two bytes found at offset 510, little-endian.
        found: u16,
    },
    /// No partition of type 0x0B or 0x0C with a non-zero size in the MBR.
    NoPartition,
    /// The partition's boot sector is not a FAT32 volume this reader takes.
    Bpb(BpbError),
    /// The volume claims more sectors than its partition has.
    VolumeBeyondPartition {
        /// `BPB_TotSec32`.
        volume_sectors: u32,
        /// The partition's `SizeInLBA`.
        partition_sectors: u32,
    },
    /// The BPB names no FSInfo sector.
    NoFsInfo,
    /// The FSInfo sector's signatures are wrong.
    FsInfo(FsInfoError),
    /// A cluster number (in a directory entry, the BPB or a FAT entry) outside
    /// 2..=`last`.
    ClusterOutOfRange {
        /// The number found.
        cluster: u32,
        /// The highest valid cluster.
        last: u32,
    },
    /// A chain reaches a cluster whose FAT entry is free (0) or reserved (1).
    BrokenChain {
        /// The cluster.
        cluster: u32,
        /// Its FAT entry.
        entry: u32,
    },
    /// A chain reaches a cluster marked bad.
    BadCluster {
        /// The cluster.
        cluster: u32,
    },
    /// A chain comes back to a cluster it already passed.
    ChainLoop {
        /// The chain's first cluster.
        first: u32,
        /// The cluster reached twice.
        cluster: u32,
    },
    /// A file's chain ends before its size is covered.
    ChainTooShort {
        /// The chain's first cluster.
        first: u32,
        /// Clusters in the chain.
        clusters: u32,
        /// Clusters the size needs.
        needed: u32,
    },
    /// A file's chain goes on past the clusters its size needs.
    ChainTooLong {
        /// The chain's first cluster.
        first: u32,
        /// Clusters the size needs.
        needed: u32,
    },
    /// A directory's chain is longer than 65,536 entries.
    DirectoryTooLarge {
        /// The directory's first cluster.
        first: u32,
    },
    /// Nothing of that name.
    NotFound {
        /// The path up to the missing name.
        path: String,
    },
    /// A path goes through a file as if it were a directory, or lists a file.
    NotADirectory {
        /// The path of the file.
        path: String,
    },
    /// A directory was read as a file.
    NotAFile {
        /// Its name.
        path: String,
    },
    /// `max_transfer` is less than one sector.
    BadTransferSize {
        /// What was asked.
        max_transfer: u32,
    },
}

impl<E: fmt::Display> fmt::Display for Fat32Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fat32Error::Disk { lba, count, source } => {
                write!(f, "reading {count} sectors at LBA {lba}: {source}")
            }
            Fat32Error::BadMbrSignature { found } => {
                write!(f, "sector 0 ends in {found:#06x}, not an MBR (0xaa55)")
            }
            Fat32Error::NoPartition => write!(f, "no FAT32 partition (type 0x0b/0x0c) in the MBR"),
            Fat32Error::Bpb(e) => write!(f, "boot sector: {e}"),
            Fat32Error::VolumeBeyondPartition {
                volume_sectors,
                partition_sectors,
            } => write!(
                f,
                "the volume has {volume_sectors} sectors, its partition {partition_sectors}"
            ),
            Fat32Error::NoFsInfo => write!(f, "the BPB names no FSInfo sector"),
            Fat32Error::FsInfo(e) => write!(f, "FSInfo: {} is {:#010x}", e.field, e.found),
            Fat32Error::ClusterOutOfRange { cluster, last } => {
                write!(f, "cluster {cluster:#x} outside 2..={last:#x}")
            }
            Fat32Error::BrokenChain { cluster, entry } => {
                write!(
                    f,
                    "chain reaches cluster {cluster:#x} whose FAT entry is {entry}"
                )
            }
            Fat32Error::BadCluster { cluster } => {
                write!(f, "chain reaches cluster {cluster:#x}, marked bad")
            }
            Fat32Error::ChainLoop { first, cluster } => write!(
                f,
                "the chain from cluster {first:#x} comes back to cluster {cluster:#x}"
            ),
            Fat32Error::ChainTooShort {
                first,
                clusters,
                needed,
            } => write!(
                f,
                "the chain from cluster {first:#x} has {clusters} clusters; the size needs {needed}"
            ),
            Fat32Error::ChainTooLong { first, needed } => write!(
                f,
                "the chain from cluster {first:#x} goes on past the {needed} clusters the size needs"
            ),
            Fat32Error::DirectoryTooLarge { first } => write!(
                f,
                "the directory at cluster {first:#x} is longer than 65536 entries"
            ),
            Fat32Error::NotFound { path } => write!(f, "{path}: not found"),
            Fat32Error::NotADirectory { path } => write!(f, "{path}: not a directory"),
            Fat32Error::NotAFile { path } => write!(f, "{path}: a directory, not a file"),
            Fat32Error::BadTransferSize { max_transfer } => {
                write!(
                    f,
                    "a maximum transfer of {max_transfer} bytes is under one sector"
                )
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Fat32Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Fat32Error::Disk { source, .. } => Some(source),
            Fat32Error::Bpb(e) => Some(e),
            _ => None,
        }
    }
}

/// What follows a cluster in its chain.
enum Next {
    Cluster(u32),
    End,
}

/// How long a chain must be.
#[derive(Clone, Copy)]
enum Length {
    /// Exactly this many clusters, then an end-of-chain mark (a file).
    Exactly(u32),
    /// At most this many (a directory).
    AtMost(u32),
}

/// One bit per cluster number: which clusters a chain walk has passed.
struct Seen(Vec<u64>);

impl Seen {
    fn new(last_cluster: u32) -> Seen {
        Seen(vec![0; (last_cluster as usize + 1).div_ceil(64)])
    }

    /// Marks `c`; false if it was marked already.
    fn insert(&mut self, c: u32) -> bool {
        let (w, bit) = (c as usize / 64, 1u64 << (c % 64));
        match self.0.get_mut(w) {
            Some(word) if *word & bit == 0 => {
                *word |= bit;
                true
            }
            _ => false,
        }
    }

    fn contains(&self, c: u32) -> bool {
        self.0
            .get(c as usize / 64)
            .is_some_and(|w| w & (1u64 << (c % 64)) != 0)
    }
}

/// A FAT32 volume on a disk.
#[derive(Debug)]
pub struct Fat32<D: SectorRead> {
    disk: D,
    volume: Volume,
    /// The last FAT sector read (volume-relative number) and its bytes.
    fat_cache: Option<(u64, Box<[u8; SECTOR_SIZE]>)>,
}

impl<D: SectorRead> Fat32<D> {
    /// Opens the first FAT32 partition of `disk`: reads sector 0 (the MBR) and the
    /// partition's boot sector, and judges the BPB.
    pub fn open(mut disk: D) -> Result<Fat32<D>, Fat32Error<D::Error>> {
        let mut sector = [0u8; SECTOR_SIZE];
        read(&mut disk, 0, 1, &mut sector)?;
        let mbr = Mbr::parse(&sector)
            .map_err(|BadBootSignature { found }| Fat32Error::BadMbrSignature { found })?;
        let (slot, part) = mbr
            .partitions
            .iter()
            .enumerate()
            .find(|(_, p)| p.is_fat32() && p.first_lba != 0)
            .ok_or(Fat32Error::NoPartition)?;
        let partition = mbr.partitions[..=slot]
            .iter()
            .filter(|p| p.is_numbered())
            .count() as u32;
        let first_lba = u64::from(part.first_lba);
        read(&mut disk, first_lba, 1, &mut sector)?;
        let bpb = Bpb::parse(&sector).map_err(Fat32Error::Bpb)?;
        let geometry = bpb.geometry().map_err(Fat32Error::Bpb)?;
        if geometry.total_sectors > part.sectors {
            return Err(Fat32Error::VolumeBeyondPartition {
                volume_sectors: geometry.total_sectors,
                partition_sectors: part.sectors,
            });
        }
        Ok(Fat32 {
            disk,
            volume: Volume {
                disk_signature: mbr.disk_signature,
                partition,
                first_lba,
                partition_sectors: part.sectors,
                bpb,
                geometry,
            },
            fat_cache: None,
        })
    }

    /// The partition and volume layout.
    pub fn volume(&self) -> &Volume {
        &self.volume
    }

    /// The disk.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk back.
    pub fn into_inner(self) -> D {
        self.disk
    }

    /// The root directory's entry (it has none on disk: this one is made up, named
    /// `\`).
    pub fn root(&self) -> DirEntry {
        DirEntry {
            name: "\\".to_string(),
            short_name: "\\".to_string(),
            attributes: ATTR_DIRECTORY,
            first_cluster: self.volume.geometry.root_cluster,
            size: 0,
        }
    }

    /// The FSInfo sector (fatgen103 "FAT32 FSInfo Sector Structure and Backup Boot
    /// Sector"), its signatures checked. Its counts are hints; nothing here uses them.
    pub fn fs_info(&mut self) -> Result<FsInfo, Fat32Error<D::Error>> {
        let n = self
            .volume
            .geometry
            .fs_info_sector
            .ok_or(Fat32Error::NoFsInfo)?;
        let mut sector = [0u8; SECTOR_SIZE];
        self.read_volume(u64::from(n), 1, &mut sector)?;
        FsInfo::parse(&sector).map_err(Fat32Error::FsInfo)
    }

    /// Counts the free clusters (FAT entry 0) in the active FAT, reading it in requests
    /// of at most 64 KiB.
    pub fn count_free(&mut self) -> Result<u32, Fat32Error<D::Error>> {
        let g = self.volume.geometry;
        let entries = u64::from(g.clusters) + 2;
        let sectors = (entries * 4).div_ceil(SECTOR_SIZE as u64);
        let first = g.fat_entry(0).0;
        let per = u64::from(METADATA_MAX_TRANSFER) / SECTOR_SIZE as u64;
        let mut buf = vec![0u8; METADATA_MAX_TRANSFER as usize];
        let (mut free, mut done, mut entry) = (0u32, 0u64, 0u64);
        while done < sectors {
            let n = per.min(sectors - done);
            let bytes = &mut buf[..n as usize * SECTOR_SIZE];
            self.read_volume(first + done, n as u32, bytes)?;
            for e in bytes.chunks_exact(4) {
                if (2..entries).contains(&entry) && rd32(e, 0) & FAT32_MASK == 0 {
                    free += 1;
                }
                entry += 1;
            }
            done += n;
        }
        Ok(free)
    }

    /// The entry at `path` (`\`-separated, case-insensitive, long or short names; the
    /// empty path and `\` are the root).
    pub fn lookup(&mut self, path: &str) -> Result<DirEntry, Fat32Error<D::Error>> {
        let parts: Vec<&str> = path.split(['\\', '/']).filter(|p| !p.is_empty()).collect();
        let mut at = self.root();
        for (i, name) in parts.iter().enumerate() {
            if !at.is_dir() {
                return Err(Fat32Error::NotADirectory {
                    path: parts[..i].join("\\"),
                });
            }
            at = self
                .list_dir(&at)?
                .into_iter()
                .find(|e| e.matches(name))
                .ok_or_else(|| Fat32Error::NotFound {
                    path: parts[..=i].join("\\"),
                })?;
        }
        Ok(at)
    }

    /// The entries of the directory at `path`, in directory order, without `.`, `..`,
    /// the volume label and free entries.
    pub fn list(&mut self, path: &str) -> Result<Vec<DirEntry>, Fat32Error<D::Error>> {
        let dir = self.lookup(path)?;
        if !dir.is_dir() {
            return Err(Fat32Error::NotADirectory {
                path: path.to_string(),
            });
        }
        self.list_dir(&dir)
    }

    /// The entries of directory `dir` (see [`Fat32::list`]).
    pub fn list_dir(&mut self, dir: &DirEntry) -> Result<Vec<DirEntry>, Fat32Error<D::Error>> {
        let bytes = self.read_directory(dir.first_cluster)?;
        let mut parser = DirParser::new();
        let mut out = Vec::new();
        for e in bytes.chunks_exact(ENTRY_LEN) {
            let mut raw = [0u8; ENTRY_LEN];
            raw.copy_from_slice(e);
            match parser.feed(&raw) {
                Item::End => break,
                Item::Skip | Item::Label(_) => {}
                Item::Entry { short, long_name } => {
                    out.push(DirEntry::from_short(&short, long_name));
                }
            }
        }
        Ok(out)
    }

    /// The volume label of the root directory, if it has one.
    pub fn root_label(&mut self) -> Result<Option<String>, Fat32Error<D::Error>> {
        let bytes = self.read_directory(self.volume.geometry.root_cluster)?;
        let mut parser = DirParser::new();
        for e in bytes.chunks_exact(ENTRY_LEN) {
            let mut raw = [0u8; ENTRY_LEN];
            raw.copy_from_slice(e);
            match parser.feed(&raw) {
                Item::End => break,
                Item::Label(l) => return Ok(Some(l)),
                _ => {}
            }
        }
        Ok(None)
    }

    /// The bytes of the file at `path` (see [`Fat32::read_file`]).
    pub fn read(&mut self, path: &str, max_transfer: u32) -> Result<Vec<u8>, Fat32Error<D::Error>> {
        let e = self.lookup(path)?;
        if e.is_dir() {
            return Err(Fat32Error::NotAFile {
                path: path.to_string(),
            });
        }
        self.read_file(&e, max_transfer)
    }

    /// The bytes of file `file`: its chain is walked and checked first (exactly the
    /// clusters its size needs), then each contiguous run is read in requests of at
    /// most `max_transfer` bytes (rounded down to whole sectors), up to the last sector
    /// the size reaches.
    pub fn read_file(
        &mut self,
        file: &DirEntry,
        max_transfer: u32,
    ) -> Result<Vec<u8>, Fat32Error<D::Error>> {
        if file.is_dir() {
            return Err(Fat32Error::NotAFile {
                path: file.name.clone(),
            });
        }
        let per = max_transfer / SECTOR_SIZE as u32;
        if per == 0 {
            return Err(Fat32Error::BadTransferSize { max_transfer });
        }
        let runs = self.runs(file)?;
        let size = file.size as usize;
        let sectors = size.div_ceil(SECTOR_SIZE);
        let mut out = vec![0u8; sectors * SECTOR_SIZE];
        let mut done = 0usize;
        for run in &runs {
            let start = self.volume.geometry.cluster_sector(run.first);
            let len = (run.clusters as usize * self.volume.geometry.sectors_per_cluster as usize)
                .min(sectors - done);
            let mut off = 0usize;
            while off < len {
                let n = (len - off).min(per as usize);
                let buf = &mut out[(done + off) * SECTOR_SIZE..(done + off + n) * SECTOR_SIZE];
                self.read_volume(start + off as u64, n as u32, buf)?;
                off += n;
            }
            done += len;
        }
        out.truncate(size);
        Ok(out)
    }

    /// The contiguous cluster runs of `entry`'s chain, checked: a file's chain holds
    /// exactly the clusters its size needs (none for an empty file), a directory's at
    /// most 65,536 entries' worth.
    pub fn runs(&mut self, entry: &DirEntry) -> Result<Vec<Run>, Fat32Error<D::Error>> {
        let g = self.volume.geometry;
        if entry.is_dir() {
            let most = (MAX_DIRECTORY_BYTES / g.cluster_bytes).max(1);
            return self.chain(entry.first_cluster, Length::AtMost(most));
        }
        let needed = entry.size.div_ceil(g.cluster_bytes);
        if needed == 0 {
            return Ok(Vec::new());
        }
        self.chain(entry.first_cluster, Length::Exactly(needed))
    }

    /// The whole of the directory starting at `first`, read run by run in requests of
    /// at most [`METADATA_MAX_TRANSFER`] bytes.
    fn read_directory(&mut self, first: u32) -> Result<Vec<u8>, Fat32Error<D::Error>> {
        let g = self.volume.geometry;
        let most = (MAX_DIRECTORY_BYTES / g.cluster_bytes).max(1);
        let runs = self.chain(first, Length::AtMost(most))?;
        let per = METADATA_MAX_TRANSFER / SECTOR_SIZE as u32;
        let total: u32 = runs.iter().map(|r| r.clusters).sum();
        let mut out = vec![0u8; total as usize * g.cluster_bytes as usize];
        let mut done = 0usize;
        for run in &runs {
            let start = g.cluster_sector(run.first);
            let len = run.clusters * g.sectors_per_cluster;
            let mut off = 0u32;
            while off < len {
                let n = (len - off).min(per);
                let at = done + off as usize * SECTOR_SIZE;
                let buf = &mut out[at..at + n as usize * SECTOR_SIZE];
                self.read_volume(start + u64::from(off), n, buf)?;
                off += n;
            }
            done += len as usize * SECTOR_SIZE;
        }
        Ok(out)
    }

    /// Walks the chain from `first`, checking every step, and returns its runs.
    fn chain(&mut self, first: u32, length: Length) -> Result<Vec<Run>, Fat32Error<D::Error>> {
        let g = self.volume.geometry;
        if !g.is_data_cluster(first) {
            return Err(Fat32Error::ClusterOutOfRange {
                cluster: first,
                last: g.last_cluster(),
            });
        }
        let mut seen = Seen::new(g.last_cluster());
        let mut runs: Vec<Run> = Vec::new();
        let mut count = 0u32;
        let mut cur = first;
        loop {
            seen.insert(cur);
            count += 1;
            match runs.last_mut() {
                Some(r) if r.first + r.clusters == cur => r.clusters += 1,
                _ => runs.push(Run {
                    first: cur,
                    clusters: 1,
                }),
            }
            match (self.next_cluster(cur)?, length) {
                (Next::End, Length::Exactly(needed)) if count < needed => {
                    return Err(Fat32Error::ChainTooShort {
                        first,
                        clusters: count,
                        needed,
                    });
                }
                (Next::End, _) => return Ok(runs),
                (Next::Cluster(c), _) if seen.contains(c) => {
                    return Err(Fat32Error::ChainLoop { first, cluster: c });
                }
                (Next::Cluster(_), Length::Exactly(needed)) if count >= needed => {
                    return Err(Fat32Error::ChainTooLong { first, needed });
                }
                (Next::Cluster(_), Length::AtMost(most)) if count >= most => {
                    return Err(Fat32Error::DirectoryTooLarge { first });
                }
                (Next::Cluster(c), _) => cur = c,
            }
        }
    }

    /// What the active FAT says follows data cluster `cluster`.
    fn next_cluster(&mut self, cluster: u32) -> Result<Next, Fat32Error<D::Error>> {
        let g = self.volume.geometry;
        let (sector, offset) = g.fat_entry(cluster);
        let cached = matches!(&self.fat_cache, Some((s, _)) if *s == sector);
        if !cached {
            let mut buf = Box::new([0u8; SECTOR_SIZE]);
            self.read_volume(sector, 1, &mut buf[..])?;
            self.fat_cache = Some((sector, buf));
        }
        let entry = match &self.fat_cache {
            Some((_, buf)) => rd32(&buf[..], offset) & FAT32_MASK,
            None => 0,
        };
        match entry {
            0 | 1 => Err(Fat32Error::BrokenChain { cluster, entry }),
            BAD_CLUSTER => Err(Fat32Error::BadCluster { cluster }),
            e if e >= END_OF_CHAIN => Ok(Next::End),
            e if g.is_data_cluster(e) => Ok(Next::Cluster(e)),
            e => Err(Fat32Error::ClusterOutOfRange {
                cluster: e,
                last: g.last_cluster(),
            }),
        }
    }

    /// Reads `count` sectors from volume-relative sector `sector` on.
    fn read_volume(
        &mut self,
        sector: u64,
        count: u32,
        buf: &mut [u8],
    ) -> Result<(), Fat32Error<D::Error>> {
        read(&mut self.disk, self.volume.first_lba + sector, count, buf)
    }
}

fn read<D: SectorRead>(
    disk: &mut D,
    lba: u64,
    count: u32,
    buf: &mut [u8],
) -> Result<(), Fat32Error<D::Error>> {
    disk.read(lba, count, buf)
        .map_err(|source| Fat32Error::Disk { lba, count, source })
}
