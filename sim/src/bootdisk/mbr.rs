//! The legacy master boot record (UEFI Specification 2.10, §5.2.1 "Legacy Master Boot
//! Record (MBR)", Table 5-1 and Table 5-2): sector 0 of the disk, with the 32-bit
//! disk signature NT's `signature()` ARC paths name, four partition records and the
//! boot signature 0x55 0xAA.

use super::{SECTOR_SIZE, rd16, rd32, wr16, wr32};

/// Offset of `UniqueMBRDiskSignature` (4 bytes; NT's disk signature).
pub const DISK_SIGNATURE: usize = 440;
/// Offset of the first of the four 16-byte partition records.
pub const PARTITION_TABLE: usize = 446;
/// Bytes in one partition record.
pub const PARTITION_RECORD_LEN: usize = 16;
/// Offset of the boot signature, 0xAA55 read little-endian.
pub const BOOT_SIGNATURE: usize = 510;
/// The boot signature: bytes 0x55, 0xAA.
pub const BOOT_SIGNATURE_VALUE: u16 = 0xAA55;

/// Partition type of FAT32 with CHS addressing.
pub const TYPE_FAT32_CHS: u8 = 0x0B;
/// Partition type of FAT32 with LBA addressing (what the generator writes).
pub const TYPE_FAT32_LBA: u8 = 0x0C;
/// `BootIndicator` of the active (bootable) partition.
pub const BOOT_INDICATOR_ACTIVE: u8 = 0x80;

// Offsets inside a partition record (Table 5-2).
const P_BOOT_INDICATOR: usize = 0;
const P_START_CHS: usize = 1;
const P_OS_TYPE: usize = 4;
const P_END_CHS: usize = 5;
const P_STARTING_LBA: usize = 8;
const P_SIZE_IN_LBA: usize = 12;

/// One partition record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Partition {
    /// `BootIndicator` is 0x80: the active partition.
    pub active: bool,
    /// `OSType`: the partition type (0 = unused).
    pub kind: u8,
    /// `StartingLBA`.
    pub first_lba: u32,
    /// `SizeInLBA`.
    pub sectors: u32,
}

impl Partition {
    /// A FAT32 partition type (0x0B or 0x0C) with a non-empty extent.
    pub fn is_fat32(&self) -> bool {
        matches!(self.kind, TYPE_FAT32_CHS | TYPE_FAT32_LBA) && self.sectors > 0
    }

    /// An entry NT counts as a partition in ARC `partition(n)` numbering: used and
    /// not an extended-partition container (0x05, 0x0F, 0x85).
    pub fn is_numbered(&self) -> bool {
        self.kind != 0 && !matches!(self.kind, 0x05 | 0x0F | 0x85) && self.sectors > 0
    }
}

/// Sector 0 of an MBR disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mbr {
    /// `UniqueMBRDiskSignature`.
    pub disk_signature: u32,
    /// The four partition records, in table order.
    pub partitions: [Partition; 4],
}

/// Sector 0 does not end in the boot signature 0x55 0xAA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadBootSignature {
    /// The two bytes found at offset 510, read little-endian.
    pub found: u16,
}

impl Mbr {
    /// Parses sector 0. Only the boot signature is checked: what the partition records
    /// say is for the caller to judge.
    pub fn parse(sector: &[u8; SECTOR_SIZE]) -> Result<Mbr, BadBootSignature> {
        let found = rd16(sector, BOOT_SIGNATURE);
        if found != BOOT_SIGNATURE_VALUE {
            return Err(BadBootSignature { found });
        }
        let mut partitions = [Partition::default(); 4];
        for (i, p) in partitions.iter_mut().enumerate() {
            let r = PARTITION_TABLE + i * PARTITION_RECORD_LEN;
            *p = Partition {
                active: sector[r + P_BOOT_INDICATOR] == BOOT_INDICATOR_ACTIVE,
                kind: sector[r + P_OS_TYPE],
                first_lba: rd32(sector, r + P_STARTING_LBA),
                sectors: rd32(sector, r + P_SIZE_IN_LBA),
            };
        }
        Ok(Mbr {
            disk_signature: rd32(sector, DISK_SIGNATURE),
            partitions,
        })
    }

    /// Sector 0 with this signature and table: no boot code (a BIOS boot from this
    /// disk is not the point; NTLDR finds the disk by its signature), CHS fields from
    /// the LBA on a 255-head, 63-sector geometry (saturated past cylinder 1023).
    pub fn emit(&self) -> [u8; SECTOR_SIZE] {
        let mut s = [0u8; SECTOR_SIZE];
        wr32(&mut s, DISK_SIGNATURE, self.disk_signature);
        for (i, p) in self.partitions.iter().enumerate() {
            if p.kind == 0 {
                continue;
            }
            let r = PARTITION_TABLE + i * PARTITION_RECORD_LEN;
            s[r + P_BOOT_INDICATOR] = if p.active { BOOT_INDICATOR_ACTIVE } else { 0 };
            s[r + P_START_CHS..r + P_START_CHS + 3].copy_from_slice(&chs(p.first_lba));
            s[r + P_OS_TYPE] = p.kind;
            let last = p.first_lba.saturating_add(p.sectors.saturating_sub(1));
            s[r + P_END_CHS..r + P_END_CHS + 3].copy_from_slice(&chs(last));
            wr32(&mut s, r + P_STARTING_LBA, p.first_lba);
            wr32(&mut s, r + P_SIZE_IN_LBA, p.sectors);
        }
        wr16(&mut s, BOOT_SIGNATURE, BOOT_SIGNATURE_VALUE);
        s
    }
}

/// The 3-byte CHS address of `lba` (head; sector in bits 0-5 with cylinder bits 8-9
/// in bits 6-7; cylinder bits 0-7) on 255 heads × 63 sectors, or 1023/254/63 past
/// the CHS limit.
fn chs(lba: u32) -> [u8; 3] {
    const HEADS: u32 = 255;
    const SECTORS: u32 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    [
        head as u8,
        (sector as u8) | (((cylinder >> 8) as u8) << 6),
        cylinder as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_then_parse() {
        let mbr = Mbr {
            disk_signature: 0x1a2b_3c4d,
            partitions: [
                Partition {
                    active: true,
                    kind: TYPE_FAT32_LBA,
                    first_lba: 2048,
                    sectors: 131_072,
                },
                Partition::default(),
                Partition::default(),
                Partition::default(),
            ],
        };
        let s = mbr.emit();
        assert_eq!(&s[440..444], &[0x4d, 0x3c, 0x2b, 0x1a]);
        assert_eq!(&s[510..], &[0x55, 0xAA]);
        // Record 0: active, CHS of LBA 2048 = C0/H32/S33, type 0x0C, end LBA 133119 =
        // C8/H73/S1.
        assert_eq!(
            &s[446..462],
            &[
                0x80, 32, 33, 0, 0x0C, 73, 1, 8, 0x00, 0x08, 0, 0, 0x00, 0x00, 0x02, 0
            ]
        );
        assert!(s[462..510].iter().all(|&b| b == 0));
        assert_eq!(Mbr::parse(&s).unwrap(), mbr);
    }

    #[test]
    fn bad_signature() {
        let s = [0u8; SECTOR_SIZE];
        assert_eq!(Mbr::parse(&s), Err(BadBootSignature { found: 0 }));
    }

    #[test]
    fn chs_saturates_past_cylinder_1023() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(1024 * 255 * 63), [0xFE, 0xFF, 0xFF]);
        // Cylinder 300 = 0x12C: bits 8-9 (01) go to the sector byte's bits 6-7.
        assert_eq!(chs(300 * 255 * 63), [0, 0x41, 0x2C]);
    }
}
