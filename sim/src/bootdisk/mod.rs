//! The boot disk of `fabboot-sim boot`: a generated MBR disk with one FAT32 system
//! partition holding what NTLDR loads, and a FAT32 reader that reads it (or any other
//! FAT32 volume) through a sector interface.
//!
//! Nothing here knows about the driver or the emulator: the reader reads 512-byte
//! sectors through [`SectorRead`], which the boot phase implements over the driver
//! image it runs (SRB reads), and the tests implement over a file or memory.
//!
//! Facts come from the Microsoft Extensible Firmware Initiative FAT32 File System
//! Specification, version 1.03 ("fatgen103"), cited by section title: "Boot Sector and
//! BPB", "FAT Type Determination", "FAT32 FSInfo Sector Structure and Backup Boot
//! Sector", "FAT Directory Structure", "FAT Long Directory Entries" and "Name Matching
//! In Short & Long Names". The partition table is the legacy master boot record
//! (UEFI Specification 2.10, §5.2.1 "Legacy Master Boot Record (MBR)").
//!
//! Files:
//! - [`mbr`]: the master boot record and its partition entries;
//! - [`bpb`]: the FAT32 boot sector (BPB), the cluster-count rule, the FSInfo sector;
//! - [`dir`]: 32-byte directory entries, short (8.3) names, long-name (LFN) entries;
//! - [`fat32`]: the reader ([`Fat32`]): partition, BPB, FAT chains, paths, files;
//! - [`loader`]: `boot.ini` and the ordered list of files NTLDR loads;
//! - [`files`]: the generated disk's file set, contents and `boot.ini` text;
//! - [`generator`]: the generator: layout, cluster allocation (with fragmentation), the
//!   sparse image and its [`Manifest`].

pub mod bpb;
pub mod dir;
pub mod fat32;
pub mod files;
pub mod generator;
pub mod loader;
pub mod mbr;

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use fat32::{DirEntry, Fat32, Fat32Error, Run, Volume};
pub use generator::{
    DiskSpec, GenError, Manifest, ManifestFile, generate, generate_in_memory, write_image,
};
pub use loader::{ArcPath, BootEntry, BootIni, LoadFile, LoadPlan, LoaderError, load_plan};

/// Bytes in a sector: the only sector size this module reads or writes.
pub const SECTOR_SIZE: usize = 512;

/// Reads 512-byte sectors of a disk.
pub trait SectorRead {
    /// Why a read failed.
    type Error;

    /// Reads `count` sectors from sector `lba` on into `buf`, which is exactly
    /// `count × 512` bytes long. One call is one request to the disk: the reader
    /// issues a multi-sector call for each contiguous run it reads.
    fn read(&mut self, lba: u64, count: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
}

impl<D: SectorRead + ?Sized> SectorRead for &mut D {
    type Error = D::Error;

    fn read(&mut self, lba: u64, count: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(lba, count, buf)
    }
}

/// Writes 512-byte sectors of a disk: where the generator puts the image.
pub trait SectorWrite {
    /// Why a write failed.
    type Error;

    /// Writes `data` (a whole number of sectors) from sector `lba` on.
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), Self::Error>;
}

/// A transfer outside a [`MemDisk`], or a buffer that is not `count` whole sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// First sector asked for.
    pub lba: u64,
    /// Bytes asked for.
    pub len: usize,
    /// Sectors in the disk.
    pub sectors: u64,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at sector {} do not fit a disk of {} sectors (or are not whole sectors)",
            self.len, self.lba, self.sectors
        )
    }
}

impl std::error::Error for OutOfRange {}

/// A disk in memory: the tests' disk, and a target for the generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemDisk {
    bytes: Vec<u8>,
}

impl MemDisk {
    /// A zeroed disk of `sectors` sectors.
    pub fn new(sectors: u64) -> MemDisk {
        let len = usize::try_from(sectors)
            .unwrap_or(usize::MAX)
            .saturating_mul(SECTOR_SIZE);
        MemDisk {
            bytes: vec![0; len],
        }
    }

    /// A disk holding `bytes` (cut to whole sectors).
    pub fn from_bytes(mut bytes: Vec<u8>) -> MemDisk {
        bytes.truncate(bytes.len() / SECTOR_SIZE * SECTOR_SIZE);
        MemDisk { bytes }
    }

    /// The disk's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The disk's bytes, to change (the tests' hostile images).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Sectors in the disk.
    pub fn sectors(&self) -> u64 {
        (self.bytes.len() / SECTOR_SIZE) as u64
    }

    fn range(&self, lba: u64, len: usize) -> Result<std::ops::Range<usize>, OutOfRange> {
        let err = OutOfRange {
            lba,
            len,
            sectors: self.sectors(),
        };
        if !len.is_multiple_of(SECTOR_SIZE) {
            return Err(err);
        }
        let start = usize::try_from(lba)
            .ok()
            .and_then(|l| l.checked_mul(SECTOR_SIZE))
            .ok_or(err)?;
        let end = start.checked_add(len).ok_or(err)?;
        if end > self.bytes.len() {
            return Err(err);
        }
        Ok(start..end)
    }
}

impl SectorRead for MemDisk {
    type Error = OutOfRange;

    fn read(&mut self, lba: u64, count: u32, buf: &mut [u8]) -> Result<(), OutOfRange> {
        if buf.len() != count as usize * SECTOR_SIZE {
            return Err(OutOfRange {
                lba,
                len: buf.len(),
                sectors: self.sectors(),
            });
        }
        let r = self.range(lba, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
}

impl SectorWrite for MemDisk {
    type Error = OutOfRange;

    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), OutOfRange> {
        let r = self.range(lba, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }
}

/// A disk image file, read sector by sector (a read past its end is an error).
#[derive(Debug)]
pub struct FileDisk {
    file: File,
}

impl FileDisk {
    /// Opens the image at `path` for reading.
    pub fn open(path: &Path) -> io::Result<FileDisk> {
        Ok(FileDisk {
            file: File::open(path)?,
        })
    }
}

impl SectorRead for FileDisk {
    type Error = io::Error;

    fn read(&mut self, lba: u64, count: u32, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() != count as usize * SECTOR_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a buffer of {} bytes for {count} sectors", buf.len()),
            ));
        }
        let offset = lba
            .checked_mul(SECTOR_SIZE as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "sector past 2^64"))?;
        self.file.read_exact_at(buf, offset)
    }
}

/// Writes an image file sparsely: runs of all-zero sectors are skipped (the file's
/// length is set once, so they read back as zeros without being written).
#[derive(Debug)]
pub struct SparseFile {
    file: File,
    written: u64,
}

impl SparseFile {
    /// Creates (or truncates) the file at `path` with a length of `sectors` sectors.
    pub fn create(path: &Path, sectors: u64) -> io::Result<SparseFile> {
        let file = File::create(path)?;
        let len = sectors
            .checked_mul(SECTOR_SIZE as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "image past 2^64"))?;
        file.set_len(len)?;
        Ok(SparseFile { file, written: 0 })
    }

    /// Bytes actually written so far (non-zero sectors only).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes the file to stable storage.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
}

impl SectorWrite for SparseFile {
    type Error = io::Error;

    fn write(&mut self, lba: u64, data: &[u8]) -> io::Result<()> {
        if !data.len().is_multiple_of(SECTOR_SIZE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes are not whole sectors", data.len()),
            ));
        }
        let n = data.len() / SECTOR_SIZE;
        let zero = |i: usize| {
            data[i * SECTOR_SIZE..(i + 1) * SECTOR_SIZE]
                .iter()
                .all(|&b| b == 0)
        };
        let mut i = 0;
        while i < n {
            if zero(i) {
                i += 1;
                continue;
            }
            // A run of non-zero sectors from `i` on.
            let mut end = i + 1;
            while end < n && !zero(end) {
                end += 1;
            }
            let run = &data[i * SECTOR_SIZE..end * SECTOR_SIZE];
            let offset = (lba + i as u64)
                .checked_mul(SECTOR_SIZE as u64)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "sector past 2^64"))?;
            self.file.write_all_at(run, offset)?;
            self.written += run.len() as u64;
            i = end;
        }
        Ok(())
    }
}

/// The SHA-256 digest of `data` (FIPS 180-4), as the manifest records it.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// `digest` as lowercase hexadecimal.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a little-endian `u16` at `at`; 0 when `b` is too short (callers pass whole
/// sectors or entries, so that never happens for the fixed offsets they use).
pub(crate) fn rd16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

/// Reads a little-endian `u32` at `at`; 0 when `b` is too short.
pub(crate) fn rd32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b2, c, d]) => u32::from_le_bytes([a, b2, c, d]),
        _ => 0,
    }
}

/// Writes a little-endian `u16` at `at` (generator side: fixed offsets in a sector).
pub(crate) fn wr16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes a little-endian `u32` at `at`.
pub(crate) fn wr32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_disk_rejects_out_of_range_and_partial_sectors() {
        let mut d = MemDisk::new(4);
        let mut buf = [0u8; 1024];
        assert!(d.read(3, 2, &mut buf).is_err());
        assert!(d.read(2, 2, &mut buf).is_ok());
        assert!(d.read(u64::MAX, 2, &mut buf).is_err());
        assert!(
            d.read(0, 1, &mut buf).is_err(),
            "buffer is not count sectors"
        );
        assert!(d.write(0, &[1u8; 100]).is_err());
        d.write(1, &[7u8; 512]).unwrap();
        d.read(0, 2, &mut buf).unwrap();
        assert_eq!(&buf[..512], &[0u8; 512][..]);
        assert_eq!(&buf[512..], &[7u8; 512][..]);
    }

    #[test]
    fn sparse_file_skips_zero_sectors() {
        let path = std::env::temp_dir().join(format!("fabboot-sparse-{}.img", std::process::id()));
        let mut f = SparseFile::create(&path, 16).unwrap();
        let mut data = vec![0u8; 8 * 512];
        data[512] = 1; // sector 1
        data[3 * 512 + 7] = 2; // sector 3
        data[4 * 512] = 3; // sector 4
        f.write(4, &data).unwrap();
        assert_eq!(f.written(), 3 * 512);
        drop(f);
        let back = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(back.len(), 16 * 512);
        assert_eq!(&back[4 * 512..12 * 512], &data[..]);
        assert!(back[..4 * 512].iter().all(|&b| b == 0));
    }

    #[test]
    fn sha256_of_abc() {
        // FIPS 180-4 example "abc".
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
