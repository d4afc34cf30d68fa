//! The FAT32 boot sector and BIOS Parameter Block, the cluster-count rule and the
//! FSInfo sector (fatgen103: "Boot Sector and BPB", "BPB (BIOS Parameter Block)
//! structure common to FAT12, FAT16 and FAT32", "Extended BPB structure for FAT32
//! volumes", "FAT Type Determination", "FAT32 FSInfo Sector Structure and Backup Boot
//! Sector").
//!
//! [`Bpb::parse`] takes the fields as they are; [`Bpb::geometry`] judges them and
//! computes where the FATs, the data region and the clusters are. A volume whose
//! fields do not add up is a [`BpbError`] naming the field, never a panic or a
//! division by zero.

use std::fmt;

use super::{SECTOR_SIZE, rd16, rd32, wr16, wr32};

// Offsets of the boot sector's fields (fatgen103 "Boot Sector and BPB").
const BS_JMP_BOOT: usize = 0;
const BS_OEM_NAME: usize = 3;
const BPB_BYTS_PER_SEC: usize = 11;
const BPB_SEC_PER_CLUS: usize = 13;
const BPB_RSVD_SEC_CNT: usize = 14;
const BPB_NUM_FATS: usize = 16;
const BPB_ROOT_ENT_CNT: usize = 17;
const BPB_TOT_SEC16: usize = 19;
const BPB_MEDIA: usize = 21;
const BPB_FAT_SZ16: usize = 22;
const BPB_SEC_PER_TRK: usize = 24;
const BPB_NUM_HEADS: usize = 26;
const BPB_HIDD_SEC: usize = 28;
const BPB_TOT_SEC32: usize = 32;
// The FAT32 extended BPB, from offset 36.
const BPB_FAT_SZ32: usize = 36;
const BPB_EXT_FLAGS: usize = 40;
const BPB_FS_VER: usize = 42;
const BPB_ROOT_CLUS: usize = 44;
const BPB_FS_INFO: usize = 48;
const BPB_BK_BOOT_SEC: usize = 50;
const BS_DRV_NUM: usize = 64;
const BS_BOOT_SIG: usize = 66;
const BS_VOL_ID: usize = 67;
const BS_VOL_LAB: usize = 71;
const BS_FIL_SYS_TYPE: usize = 82;
/// Where the generator's boot code starts (the jump's target: 2 + 0x58).
const BOOT_CODE: usize = 90;
/// The sector signature 0x55 0xAA at offset 510 (read little-endian: 0xAA55).
const SIGNATURE: usize = 510;
const SIGNATURE_VALUE: u16 = 0xAA55;

/// `BS_BootSig` when `BS_VolID`, `BS_VolLab` and `BS_FilSysType` are present.
pub const EXTENDED_BOOT_SIGNATURE: u8 = 0x29;
/// `BPB_ExtFlags` bit 7: only one FAT is active (no mirroring).
pub const EXT_FLAGS_NO_MIRROR: u16 = 0x0080;
/// `BPB_ExtFlags` bits 0-3: the active FAT when mirroring is off.
pub const EXT_FLAGS_ACTIVE_FAT: u16 = 0x000F;

/// The smallest FAT32 cluster count (fatgen103 "FAT Type Determination": fewer than
/// 4085 clusters is FAT12, fewer than 65525 is FAT16, anything else FAT32).
pub const MIN_FAT32_CLUSTERS: u64 = 65_525;
/// The largest FAT32 cluster count: cluster numbers run 2..=0x0FFF_FFF6, and
/// 0x0FFF_FFF7 is the bad-cluster mark (fatgen103 "FAT Data Structure").
pub const MAX_FAT32_CLUSTERS: u64 = 0x0FFF_FFF5;

/// The FAT type a cluster count makes (fatgen103 "FAT Type Determination": the type
/// is decided by the count of clusters alone, never by `BS_FilSysType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    /// Fewer than 4085 clusters.
    Fat12,
    /// 4085 to 65524 clusters.
    Fat16,
    /// 65525 clusters or more.
    Fat32,
}

impl FatType {
    /// The type of a volume with `clusters` data clusters.
    pub fn from_clusters(clusters: u64) -> FatType {
        if clusters < 4085 {
            FatType::Fat12
        } else if clusters < MIN_FAT32_CLUSTERS {
            FatType::Fat16
        } else {
            FatType::Fat32
        }
    }
}

/// The boot sector's fields, as found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bpb {
    /// `BS_jmpBoot`: 0xEB xx 0x90 or 0xE9 xx xx.
    pub jump: [u8; 3],
    /// `BS_OEMName`.
    pub oem_name: [u8; 8],
    /// `BPB_BytsPerSec`: 512, 1024, 2048 or 4096 (this module reads 512 only).
    pub bytes_per_sector: u16,
    /// `BPB_SecPerClus`: a power of two, 1 to 128.
    pub sectors_per_cluster: u8,
    /// `BPB_RsvdSecCnt`: sectors before the first FAT (32 on FAT32 volumes).
    pub reserved_sectors: u16,
    /// `BPB_NumFATs`: copies of the FAT (2 recommended).
    pub fats: u8,
    /// `BPB_RootEntCnt`: 0 on FAT32 (the root directory is a cluster chain).
    pub root_entries: u16,
    /// `BPB_TotSec16`: 0 on FAT32.
    pub total_sectors_16: u16,
    /// `BPB_Media`: 0xF0 or 0xF8-0xFF (0xF8 for fixed disks), also in the low byte of
    /// FAT entry 0.
    pub media: u8,
    /// `BPB_FATSz16`: 0 on FAT32.
    pub fat_size_16: u16,
    /// `BPB_SecPerTrk`: the INT 13h geometry.
    pub sectors_per_track: u16,
    /// `BPB_NumHeads`: the INT 13h geometry.
    pub heads: u16,
    /// `BPB_HiddSec`: sectors before this volume on its disk (the partition's LBA).
    pub hidden_sectors: u32,
    /// `BPB_TotSec32`: sectors in the volume.
    pub total_sectors_32: u32,
    /// `BPB_FATSz32`: sectors in one FAT.
    pub fat_size_32: u32,
    /// `BPB_ExtFlags`: bit 7 set means only FAT number bits 0-3 is active.
    pub ext_flags: u16,
    /// `BPB_FSVer`: 0:0; a driver must not mount a higher version.
    pub fs_version: u16,
    /// `BPB_RootClus`: first cluster of the root directory (usually 2).
    pub root_cluster: u32,
    /// `BPB_FSInfo`: sector number of the FSInfo sector in the reserved area (usually 1).
    pub fs_info_sector: u16,
    /// `BPB_BkBootSec`: sector of the backup boot sector in the reserved area (6).
    pub backup_boot_sector: u16,
    /// `BS_DrvNum`: the INT 13h drive number (0x80).
    pub drive_number: u8,
    /// `BS_BootSig`: 0x29 when the three fields below are present.
    pub boot_signature: u8,
    /// `BS_VolID`: the volume serial number.
    pub volume_id: u32,
    /// `BS_VolLab`: the volume label, space padded (`NO NAME    ` when none).
    pub volume_label: [u8; 11],
    /// `BS_FilSysType`: `FAT32   `; informational only.
    pub fs_type: [u8; 8],
}

/// Where things are on a FAT32 volume whose BPB was judged sound. Sector numbers are
/// relative to the volume's first sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Sectors in one cluster.
    pub sectors_per_cluster: u32,
    /// Bytes in one cluster (at most 64 KiB).
    pub cluster_bytes: u32,
    /// First sector of the first FAT (`BPB_RsvdSecCnt`).
    pub fat_start: u32,
    /// Sectors in one FAT.
    pub fat_sectors: u32,
    /// Copies of the FAT.
    pub fats: u8,
    /// The FAT to read: 0 when the FATs are mirrored, else `BPB_ExtFlags` bits 0-3.
    pub active_fat: u8,
    /// First sector of the data region (cluster 2).
    pub data_start: u32,
    /// Data clusters (`CountofClusters`); clusters are numbered 2..=clusters + 1.
    pub clusters: u32,
    /// Sectors in the volume.
    pub total_sectors: u32,
    /// First cluster of the root directory.
    pub root_cluster: u32,
    /// The FSInfo sector, if the BPB names one.
    pub fs_info_sector: Option<u16>,
    /// The backup boot sector, if the BPB names one.
    pub backup_boot_sector: Option<u16>,
}

impl Geometry {
    /// The highest valid cluster number.
    pub fn last_cluster(&self) -> u32 {
        self.clusters + 1
    }

    /// Whether `cluster` is a data cluster of this volume (2..=last).
    pub fn is_data_cluster(&self, cluster: u32) -> bool {
        (2..=self.last_cluster()).contains(&cluster)
    }

    /// The volume-relative first sector of data cluster `cluster` (which must be a
    /// data cluster: fatgen103 "FirstSectorofCluster").
    pub fn cluster_sector(&self, cluster: u32) -> u64 {
        u64::from(self.data_start)
            + u64::from(cluster.saturating_sub(2)) * u64::from(self.sectors_per_cluster)
    }

    /// The volume-relative sector of the active FAT holding `cluster`'s entry, and the
    /// entry's byte offset in it (4 bytes an entry).
    pub fn fat_entry(&self, cluster: u32) -> (u64, usize) {
        let byte = u64::from(cluster) * 4;
        let sector = u64::from(self.fat_start)
            + u64::from(self.active_fat) * u64::from(self.fat_sectors)
            + byte / SECTOR_SIZE as u64;
        (sector, (byte % SECTOR_SIZE as u64) as usize)
    }
}

/// Why a boot sector is not a FAT32 volume this module can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpbError {
    /// The sector does not end in 0x55 0xAA.
    BadSignature {
        /// The two bytes at offset 510, read little-endian.
        found: u16,
    },
    /// A field holds a value the specification does not allow (or this module does not
    /// support: sectors other than 512 bytes).
    BadField {
        /// The field's name in fatgen103 (or `CountofClusters`).
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The cluster count makes the volume FAT12 or FAT16.
    NotFat32 {
        /// The volume's cluster count.
        clusters: u64,
        /// What that count makes it.
        kind: FatType,
    },
    /// The reserved sectors and the FATs leave no data region.
    NoDataRegion {
        /// First sector after the FATs.
        first_data_sector: u64,
        /// Sectors in the volume.
        total_sectors: u64,
    },
    /// One FAT has fewer entries than the clusters need (plus the two reserved ones).
    FatTooSmall {
        /// Entries one FAT holds.
        entries: u64,
        /// The volume's cluster count.
        clusters: u64,
    },
}

impl fmt::Display for BpbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BpbError::BadSignature { found } => {
                write!(f, "boot sector signature {found:#06x}, not 0xaa55")
            }
            BpbError::BadField { field, value } => write!(f, "{field} = {value:#x} is not valid"),
            BpbError::NotFat32 { clusters, kind } => {
                write!(f, "{clusters} clusters make the volume {kind:?}, not FAT32")
            }
            BpbError::NoDataRegion {
                first_data_sector,
                total_sectors,
            } => write!(
                f,
                "the data region would start at sector {first_data_sector} of {total_sectors}"
            ),
            BpbError::FatTooSmall { entries, clusters } => write!(
                f,
                "a FAT of {entries} entries cannot map {clusters} clusters"
            ),
        }
    }
}

impl std::error::Error for BpbError {}

fn bad(field: &'static str, value: impl Into<u64>) -> BpbError {
    BpbError::BadField {
        field,
        value: value.into(),
    }
}

impl Bpb {
    /// The fields of a boot sector; only the 0x55 0xAA signature is checked here.
    pub fn parse(sector: &[u8; SECTOR_SIZE]) -> Result<Bpb, BpbError> {
        let found = rd16(sector, SIGNATURE);
        if found != SIGNATURE_VALUE {
            return Err(BpbError::BadSignature { found });
        }
        let mut b = Bpb {
            jump: [0; 3],
            oem_name: [0; 8],
            bytes_per_sector: rd16(sector, BPB_BYTS_PER_SEC),
            sectors_per_cluster: sector[BPB_SEC_PER_CLUS],
            reserved_sectors: rd16(sector, BPB_RSVD_SEC_CNT),
            fats: sector[BPB_NUM_FATS],
            root_entries: rd16(sector, BPB_ROOT_ENT_CNT),
            total_sectors_16: rd16(sector, BPB_TOT_SEC16),
            media: sector[BPB_MEDIA],
            fat_size_16: rd16(sector, BPB_FAT_SZ16),
            sectors_per_track: rd16(sector, BPB_SEC_PER_TRK),
            heads: rd16(sector, BPB_NUM_HEADS),
            hidden_sectors: rd32(sector, BPB_HIDD_SEC),
            total_sectors_32: rd32(sector, BPB_TOT_SEC32),
            fat_size_32: rd32(sector, BPB_FAT_SZ32),
            ext_flags: rd16(sector, BPB_EXT_FLAGS),
            fs_version: rd16(sector, BPB_FS_VER),
            root_cluster: rd32(sector, BPB_ROOT_CLUS),
            fs_info_sector: rd16(sector, BPB_FS_INFO),
            backup_boot_sector: rd16(sector, BPB_BK_BOOT_SEC),
            drive_number: sector[BS_DRV_NUM],
            boot_signature: sector[BS_BOOT_SIG],
            volume_id: rd32(sector, BS_VOL_ID),
            volume_label: [0; 11],
            fs_type: [0; 8],
        };
        b.jump
            .copy_from_slice(&sector[BS_JMP_BOOT..BS_JMP_BOOT + 3]);
        b.oem_name
            .copy_from_slice(&sector[BS_OEM_NAME..BS_OEM_NAME + 8]);
        b.volume_label
            .copy_from_slice(&sector[BS_VOL_LAB..BS_VOL_LAB + 11]);
        b.fs_type
            .copy_from_slice(&sector[BS_FIL_SYS_TYPE..BS_FIL_SYS_TYPE + 8]);
        Ok(b)
    }

    /// Judges the fields and computes the volume's layout (fatgen103 "FAT Type
    /// Determination": `RootDirSectors`, `FATSz`, `TotSec`, `DataSec`,
    /// `CountofClusters`). Checked, in order: the jump instruction, 512-byte sectors,
    /// `BPB_SecPerClus` a power of two, reserved sectors and FAT count non-zero, the
    /// media byte, a non-zero size and FAT size, a data region, the cluster count
    /// (FAT32 only), the FAT32-only fields (`BPB_RootEntCnt`, `BPB_TotSec16`,
    /// `BPB_FATSz16`, `BPB_FSVer` all 0), a FAT large enough for every cluster, the
    /// root cluster, the active FAT and the FSInfo and backup sector numbers.
    ///
    /// Clusters of up to 64 KiB are accepted (Windows NT reads them; fatgen103 asks
    /// formatters to stay at or under 32 KiB, which the generator does).
    pub fn geometry(&self) -> Result<Geometry, BpbError> {
        let jump_ok = (self.jump[0] == 0xEB && self.jump[2] == 0x90) || self.jump[0] == 0xE9;
        if !jump_ok {
            return Err(bad("BS_jmpBoot", self.jump[0]));
        }
        if usize::from(self.bytes_per_sector) != SECTOR_SIZE {
            return Err(bad("BPB_BytsPerSec", self.bytes_per_sector));
        }
        let spc = self.sectors_per_cluster;
        if !spc.is_power_of_two() {
            return Err(bad("BPB_SecPerClus", spc));
        }
        if self.reserved_sectors == 0 {
            return Err(bad("BPB_RsvdSecCnt", 0u16));
        }
        if self.fats == 0 {
            return Err(bad("BPB_NumFATs", 0u8));
        }
        if !(self.media == 0xF0 || self.media >= 0xF8) {
            return Err(bad("BPB_Media", self.media));
        }
        let total = if self.total_sectors_16 != 0 {
            u64::from(self.total_sectors_16)
        } else {
            u64::from(self.total_sectors_32)
        };
        if total == 0 {
            return Err(bad("BPB_TotSec32", 0u32));
        }
        let fat_size = if self.fat_size_16 != 0 {
            u64::from(self.fat_size_16)
        } else {
            u64::from(self.fat_size_32)
        };
        if fat_size == 0 {
            return Err(bad("BPB_FATSz32", 0u32));
        }
        let root_dir_sectors = (u64::from(self.root_entries) * 32).div_ceil(SECTOR_SIZE as u64);
        let first_data_sector =
            u64::from(self.reserved_sectors) + u64::from(self.fats) * fat_size + root_dir_sectors;
        if first_data_sector >= total {
            return Err(BpbError::NoDataRegion {
                first_data_sector,
                total_sectors: total,
            });
        }
        let clusters = (total - first_data_sector) / u64::from(spc);
        let kind = FatType::from_clusters(clusters);
        if kind != FatType::Fat32 {
            return Err(BpbError::NotFat32 { clusters, kind });
        }
        if self.root_entries != 0 {
            return Err(bad("BPB_RootEntCnt", self.root_entries));
        }
        if self.total_sectors_16 != 0 {
            return Err(bad("BPB_TotSec16", self.total_sectors_16));
        }
        if self.fat_size_16 != 0 {
            return Err(bad("BPB_FATSz16", self.fat_size_16));
        }
        if self.fs_version != 0 {
            return Err(bad("BPB_FSVer", self.fs_version));
        }
        if clusters > MAX_FAT32_CLUSTERS {
            return Err(bad("CountofClusters", clusters));
        }
        let entries = fat_size * SECTOR_SIZE as u64 / 4;
        if entries < clusters + 2 {
            return Err(BpbError::FatTooSmall { entries, clusters });
        }
        // Both fit in u32 now: clusters <= 0x0FFF_FFF5 and total came from a u32.
        let clusters = clusters as u32;
        if !(2..=clusters + 1).contains(&self.root_cluster) {
            return Err(bad("BPB_RootClus", self.root_cluster));
        }
        let active_fat = if self.ext_flags & EXT_FLAGS_NO_MIRROR != 0 {
            let n = (self.ext_flags & EXT_FLAGS_ACTIVE_FAT) as u8;
            if n >= self.fats {
                return Err(bad("BPB_ExtFlags", self.ext_flags));
            }
            n
        } else {
            0
        };
        let reserved_slot = |field: &'static str, n: u16| -> Result<Option<u16>, BpbError> {
            match n {
                0 | 0xFFFF => Ok(None),
                n if n < self.reserved_sectors => Ok(Some(n)),
                n => Err(bad(field, n)),
            }
        };
        let fs_info_sector = reserved_slot("BPB_FSInfo", self.fs_info_sector)?;
        let backup_boot_sector = reserved_slot("BPB_BkBootSec", self.backup_boot_sector)?;
        Ok(Geometry {
            sectors_per_cluster: u32::from(spc),
            cluster_bytes: u32::from(spc) * SECTOR_SIZE as u32,
            fat_start: u32::from(self.reserved_sectors),
            fat_sectors: fat_size as u32,
            fats: self.fats,
            active_fat,
            data_start: first_data_sector as u32,
            clusters,
            total_sectors: total as u32,
            root_cluster: self.root_cluster,
            fs_info_sector,
            backup_boot_sector,
        })
    }

    /// The volume label: `BS_VolLab` without its padding, if `BS_BootSig` says it is
    /// there and it is not `NO NAME`.
    pub fn label(&self) -> Option<String> {
        if self.boot_signature != EXTENDED_BOOT_SIGNATURE {
            return None;
        }
        let s: String = self.volume_label.iter().map(|&b| char::from(b)).collect();
        let s = s.trim_end();
        (!s.is_empty() && s != "NO NAME").then(|| s.to_string())
    }

    /// The boot sector with these fields, the 0x55 0xAA signature, and boot code that
    /// only hands the boot to the next device (INT 18h): this volume is booted by
    /// NTLDR through the driver, not from the BIOS.
    pub fn emit(&self) -> [u8; SECTOR_SIZE] {
        let mut s = [0u8; SECTOR_SIZE];
        s[BS_JMP_BOOT..BS_JMP_BOOT + 3].copy_from_slice(&self.jump);
        s[BS_OEM_NAME..BS_OEM_NAME + 8].copy_from_slice(&self.oem_name);
        wr16(&mut s, BPB_BYTS_PER_SEC, self.bytes_per_sector);
        s[BPB_SEC_PER_CLUS] = self.sectors_per_cluster;
        wr16(&mut s, BPB_RSVD_SEC_CNT, self.reserved_sectors);
        s[BPB_NUM_FATS] = self.fats;
        wr16(&mut s, BPB_ROOT_ENT_CNT, self.root_entries);
        wr16(&mut s, BPB_TOT_SEC16, self.total_sectors_16);
        s[BPB_MEDIA] = self.media;
        wr16(&mut s, BPB_FAT_SZ16, self.fat_size_16);
        wr16(&mut s, BPB_SEC_PER_TRK, self.sectors_per_track);
        wr16(&mut s, BPB_NUM_HEADS, self.heads);
        wr32(&mut s, BPB_HIDD_SEC, self.hidden_sectors);
        wr32(&mut s, BPB_TOT_SEC32, self.total_sectors_32);
        wr32(&mut s, BPB_FAT_SZ32, self.fat_size_32);
        wr16(&mut s, BPB_EXT_FLAGS, self.ext_flags);
        wr16(&mut s, BPB_FS_VER, self.fs_version);
        wr32(&mut s, BPB_ROOT_CLUS, self.root_cluster);
        wr16(&mut s, BPB_FS_INFO, self.fs_info_sector);
        wr16(&mut s, BPB_BK_BOOT_SEC, self.backup_boot_sector);
        s[BS_DRV_NUM] = self.drive_number;
        s[BS_BOOT_SIG] = self.boot_signature;
        wr32(&mut s, BS_VOL_ID, self.volume_id);
        s[BS_VOL_LAB..BS_VOL_LAB + 11].copy_from_slice(&self.volume_label);
        s[BS_FIL_SYS_TYPE..BS_FIL_SYS_TYPE + 8].copy_from_slice(&self.fs_type);
        // int 18h (boot failed: try the next device); jmp $.
        s[BOOT_CODE..BOOT_CODE + 4].copy_from_slice(&[0xCD, 0x18, 0xEB, 0xFE]);
        wr16(&mut s, SIGNATURE, SIGNATURE_VALUE);
        s
    }
}

// FSInfo offsets and signatures (fatgen103 "FAT32 FSInfo Sector Structure and Backup
// Boot Sector").
const FSI_LEAD_SIG: usize = 0;
const FSI_STRUC_SIG: usize = 484;
const FSI_FREE_COUNT: usize = 488;
const FSI_NXT_FREE: usize = 492;
const FSI_TRAIL_SIG: usize = 508;
/// `FSI_LeadSig`.
pub const FSI_LEAD_SIG_VALUE: u32 = 0x4161_5252;
/// `FSI_StrucSig`.
pub const FSI_STRUC_SIG_VALUE: u32 = 0x6141_7272;
/// `FSI_TrailSig`.
pub const FSI_TRAIL_SIG_VALUE: u32 = 0xAA55_0000;
/// `FSI_Free_Count` / `FSI_Nxt_Free` when unknown.
pub const FSI_UNKNOWN: u32 = 0xFFFF_FFFF;

/// The FSInfo sector: hints, never trusted for correctness (fatgen103: the free count
/// and next-free hint may be wrong and must be range checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfo {
    /// `FSI_Free_Count`: free clusters, or [`FSI_UNKNOWN`].
    pub free_count: u32,
    /// `FSI_Nxt_Free`: where to start looking for a free cluster, or [`FSI_UNKNOWN`].
    pub next_free: u32,
}

/// One of the FSInfo sector's three signatures is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfoError {
    /// `FSI_LeadSig`, `FSI_StrucSig` or `FSI_TrailSig`.
    pub field: &'static str,
    /// What it holds.
    pub found: u32,
}

impl FsInfo {
    /// Parses an FSInfo sector, checking its three signatures.
    pub fn parse(sector: &[u8; SECTOR_SIZE]) -> Result<FsInfo, FsInfoError> {
        for (field, at, want) in [
            ("FSI_LeadSig", FSI_LEAD_SIG, FSI_LEAD_SIG_VALUE),
            ("FSI_StrucSig", FSI_STRUC_SIG, FSI_STRUC_SIG_VALUE),
            ("FSI_TrailSig", FSI_TRAIL_SIG, FSI_TRAIL_SIG_VALUE),
        ] {
            let found = rd32(sector, at);
            if found != want {
                return Err(FsInfoError { field, found });
            }
        }
        Ok(FsInfo {
            free_count: rd32(sector, FSI_FREE_COUNT),
            next_free: rd32(sector, FSI_NXT_FREE),
        })
    }

    /// The FSInfo sector holding these hints.
    pub fn emit(&self) -> [u8; SECTOR_SIZE] {
        let mut s = [0u8; SECTOR_SIZE];
        wr32(&mut s, FSI_LEAD_SIG, FSI_LEAD_SIG_VALUE);
        wr32(&mut s, FSI_STRUC_SIG, FSI_STRUC_SIG_VALUE);
        wr32(&mut s, FSI_FREE_COUNT, self.free_count);
        wr32(&mut s, FSI_NXT_FREE, self.next_free);
        wr32(&mut s, FSI_TRAIL_SIG, FSI_TRAIL_SIG_VALUE);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64 MiB FAT32 volume: 512-byte clusters, 32 reserved sectors, two FATs of
    /// 1016 sectors.
    fn sample() -> Bpb {
        Bpb {
            jump: [0xEB, 0x58, 0x90],
            oem_name: *b"MSWIN4.1",
            bytes_per_sector: 512,
            sectors_per_cluster: 1,
            reserved_sectors: 32,
            fats: 2,
            root_entries: 0,
            total_sectors_16: 0,
            media: 0xF8,
            fat_size_16: 0,
            sectors_per_track: 63,
            heads: 255,
            hidden_sectors: 2048,
            total_sectors_32: 131_072,
            fat_size_32: 1016,
            ext_flags: 0,
            fs_version: 0,
            root_cluster: 2,
            fs_info_sector: 1,
            backup_boot_sector: 6,
            drive_number: 0x80,
            boot_signature: EXTENDED_BOOT_SIGNATURE,
            volume_id: 0x1234_5678,
            volume_label: *b"FABBOOT    ",
            fs_type: *b"FAT32   ",
        }
    }

    #[test]
    fn emit_parse_round_trip_and_layout() {
        let b = sample();
        let s = b.emit();
        // Spot-check fixed offsets against the specification's table.
        assert_eq!(&s[0..3], &[0xEB, 0x58, 0x90]);
        assert_eq!(&s[11..13], &[0x00, 0x02]);
        assert_eq!(s[13], 1);
        assert_eq!(&s[32..36], &131_072u32.to_le_bytes());
        assert_eq!(&s[36..40], &1016u32.to_le_bytes());
        assert_eq!(&s[44..48], &2u32.to_le_bytes());
        assert_eq!(s[66], 0x29);
        assert_eq!(&s[82..90], b"FAT32   ");
        assert_eq!(&s[510..512], &[0x55, 0xAA]);
        let p = Bpb::parse(&s).unwrap();
        assert_eq!(p, b);
        let g = p.geometry().unwrap();
        assert_eq!(g.data_start, 32 + 2 * 1016);
        assert_eq!(g.clusters, 131_072 - 2064);
        assert_eq!(g.cluster_sector(2), 2064);
        assert_eq!(g.cluster_sector(3), 2065);
        assert_eq!(g.fat_entry(130), (33, 8));
        assert_eq!(g.fs_info_sector, Some(1));
        assert_eq!(p.label().as_deref(), Some("FABBOOT"));
    }

    #[test]
    fn cluster_count_rule() {
        assert_eq!(FatType::from_clusters(4084), FatType::Fat12);
        assert_eq!(FatType::from_clusters(4085), FatType::Fat16);
        assert_eq!(FatType::from_clusters(65_524), FatType::Fat16);
        assert_eq!(FatType::from_clusters(65_525), FatType::Fat32);
    }

    /// A change to a sample BPB and the field it should be blamed on.
    type Case = (fn(&mut Bpb), &'static str);

    #[test]
    fn rejects_each_bad_field() {
        let cases: [Case; 11] = [
            (|b| b.jump = [0, 0, 0], "BS_jmpBoot"),
            (|b| b.bytes_per_sector = 4096, "BPB_BytsPerSec"),
            (|b| b.sectors_per_cluster = 3, "BPB_SecPerClus"),
            (|b| b.sectors_per_cluster = 0, "BPB_SecPerClus"),
            (|b| b.reserved_sectors = 0, "BPB_RsvdSecCnt"),
            (|b| b.fats = 0, "BPB_NumFATs"),
            (|b| b.media = 0x12, "BPB_Media"),
            (|b| b.fs_version = 1, "BPB_FSVer"),
            (|b| b.root_cluster = 1, "BPB_RootClus"),
            (|b| b.ext_flags = 0x0085, "BPB_ExtFlags"),
            (|b| b.fs_info_sector = 40, "BPB_FSInfo"),
        ];
        for (change, field) in cases {
            let mut b = sample();
            change(&mut b);
            match b.geometry() {
                Err(BpbError::BadField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_fat16_sized_volumes_small_fats_and_no_data() {
        let mut b = sample();
        b.sectors_per_cluster = 2; // 64,504 clusters: FAT16 by the rule
        assert!(matches!(
            b.geometry(),
            Err(BpbError::NotFat32 {
                kind: FatType::Fat16,
                ..
            })
        ));
        let mut b = sample();
        b.fat_size_32 = 900; // 115,200 entries for ~130,000 clusters
        assert!(matches!(b.geometry(), Err(BpbError::FatTooSmall { .. })));
        let mut b = sample();
        b.fat_size_32 = 70_000;
        assert!(matches!(b.geometry(), Err(BpbError::NoDataRegion { .. })));
        let mut b = sample();
        b.total_sectors_32 = 0;
        assert!(matches!(
            b.geometry(),
            Err(BpbError::BadField {
                field: "BPB_TotSec32",
                ..
            })
        ));
    }

    #[test]
    fn fs_info_round_trip_and_signatures() {
        let f = FsInfo {
            free_count: 1234,
            next_free: 77,
        };
        let mut s = f.emit();
        assert_eq!(&s[0..4], b"RRaA");
        assert_eq!(&s[484..488], b"rrAa");
        assert_eq!(&s[508..512], &[0, 0, 0x55, 0xAA]);
        assert_eq!(FsInfo::parse(&s), Ok(f));
        s[484] = 0;
        assert_eq!(FsInfo::parse(&s).unwrap_err().field, "FSI_StrucSig");
    }
}
