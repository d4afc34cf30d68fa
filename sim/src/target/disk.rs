//! The backing store of a logical unit: a raw image file, block `n` at byte offset
//! `n × block size`. New images are sparse (`set_len`, no zeros written), so an image
//! of several TiB costs only the blocks written. A write returns only after
//! `sync_data`, so when the SRP target sends its response the data is on stable
//! storage.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Logical block size of an image (SBC-3, "Logical blocks").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockSize {
    /// 512 bytes.
    B512,
    /// 4096 bytes.
    B4096,
}

impl BlockSize {
    /// Size in bytes.
    pub fn bytes(self) -> u32 {
        match self {
            BlockSize::B512 => 512,
            BlockSize::B4096 => 4096,
        }
    }
}

/// Whether an image may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads and writes.
    ReadWrite,
    /// Reads only: the logical unit is write protected.
    ReadOnly,
}

/// The file operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Creating the file.
    Create,
    /// Opening the file.
    Open,
    /// Reading its length.
    Metadata,
    /// Setting its length.
    SetLen,
    /// Reading blocks.
    Read,
    /// Writing blocks.
    Write,
    /// Flushing to stable storage.
    Sync,
}

/// Errors of the backing store.
#[derive(Debug)]
pub enum DiskError {
    /// The operating system refused `op`.
    Io {
        /// What we were doing.
        op: Op,
        /// Why it failed.
        source: io::Error,
    },
    /// An image of zero blocks, or one whose byte size does not fit in a file offset.
    BadCapacity {
        /// Blocks asked for (or found).
        blocks: u64,
        /// Block size in bytes.
        block_size: u32,
    },
    /// An existing file whose length is not a whole number of blocks.
    PartialBlock {
        /// File length in bytes.
        len: u64,
        /// Block size in bytes.
        block_size: u32,
    },
    /// A buffer that is not a whole number of blocks.
    Unaligned {
        /// Buffer length in bytes.
        len: usize,
        /// Block size in bytes.
        block_size: u32,
    },
    /// Blocks `lba .. lba + blocks` are not all inside the image.
    OutOfRange {
        /// First block.
        lba: u64,
        /// Number of blocks.
        blocks: u64,
        /// Blocks in the image.
        capacity: u64,
    },
    /// A write to an image opened [`Access::ReadOnly`].
    ReadOnly,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Io { op, source } => write!(f, "image {op:?} failed: {source}"),
            DiskError::BadCapacity { blocks, block_size } => {
                write!(f, "an image of {blocks} blocks of {block_size} bytes")
            }
            DiskError::PartialBlock { len, block_size } => write!(
                f,
                "image length {len} is not a multiple of the block size {block_size}"
            ),
            DiskError::Unaligned { len, block_size } => write!(
                f,
                "buffer of {len} bytes is not a multiple of the block size {block_size}"
            ),
            DiskError::OutOfRange {
                lba,
                blocks,
                capacity,
            } => write!(
                f,
                "blocks {lba} + {blocks} outside an image of {capacity} blocks"
            ),
            DiskError::ReadOnly => write!(f, "the image is read-only"),
        }
    }
}

impl std::error::Error for DiskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiskError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io(op: Op) -> impl FnOnce(io::Error) -> DiskError {
    move |source| DiskError::Io { op, source }
}

/// A raw disk image.
#[derive(Debug)]
pub struct Image {
    file: File,
    path: PathBuf,
    block_size: BlockSize,
    blocks: u64,
    access: Access,
    syncs: u64,
}

/// Byte size of `blocks` blocks, if it is a valid file length (at most `i64::MAX`).
fn byte_len(blocks: u64, block_size: BlockSize) -> Option<u64> {
    blocks
        .checked_mul(u64::from(block_size.bytes()))
        .filter(|&n| n <= i64::MAX as u64)
}

impl Image {
    /// Creates a new sparse image of `blocks` blocks at `path` (which must not exist),
    /// read-write. Its length is set, never written, and made durable.
    pub fn create(path: &Path, block_size: BlockSize, blocks: u64) -> Result<Image, DiskError> {
        let len =
            byte_len(blocks, block_size)
                .filter(|_| blocks > 0)
                .ok_or(DiskError::BadCapacity {
                    blocks,
                    block_size: block_size.bytes(),
                })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io(Op::Create))?;
        let sized = file
            .set_len(len)
            .map_err(io(Op::SetLen))
            .and_then(|()| file.sync_all().map_err(io(Op::Sync)));
        if let Err(e) = sized {
            // Leave no half-made image behind (we created the file: `create_new`).
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(Image {
            file,
            path: path.to_path_buf(),
            block_size,
            blocks,
            access: Access::ReadWrite,
            syncs: 0,
        })
    }

    /// Opens an existing image; its length must be a non-zero whole number of blocks.
    pub fn open(path: &Path, block_size: BlockSize, access: Access) -> Result<Image, DiskError> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .open(path)
            .map_err(io(Op::Open))?;
        let len = file.metadata().map_err(io(Op::Metadata))?.len();
        let bs = u64::from(block_size.bytes());
        if !len.is_multiple_of(bs) {
            return Err(DiskError::PartialBlock {
                len,
                block_size: block_size.bytes(),
            });
        }
        let blocks = len / bs;
        if blocks == 0 {
            return Err(DiskError::BadCapacity {
                blocks,
                block_size: block_size.bytes(),
            });
        }
        Ok(Image {
            file,
            path: path.to_path_buf(),
            block_size,
            blocks,
            access,
            syncs: 0,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logical block size.
    pub fn block_size(&self) -> BlockSize {
        self.block_size
    }

    /// Number of logical blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Whether writes are refused.
    pub fn access(&self) -> Access {
        self.access
    }

    /// How many times data has been flushed to stable storage (every write and every
    /// [`Image::sync`] that succeeded).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Checks that `len` bytes are whole blocks lying inside the image from `lba`;
    /// returns the byte offset of `lba`.
    fn check(&self, lba: u64, len: usize) -> Result<u64, DiskError> {
        let bs = self.block_size.bytes();
        let len64 = len as u64;
        if !len64.is_multiple_of(u64::from(bs)) {
            return Err(DiskError::Unaligned {
                len,
                block_size: bs,
            });
        }
        let blocks = len64 / u64::from(bs);
        match lba.checked_add(blocks) {
            Some(end) if end <= self.blocks => {}
            _ => {
                return Err(DiskError::OutOfRange {
                    lba,
                    blocks,
                    capacity: self.blocks,
                });
            }
        }
        // Inside the image, so inside a length `byte_len` accepted.
        Ok(lba * u64::from(bs))
    }

    /// Reads `buf.len()` bytes (whole blocks) from block `lba` on.
    pub fn read(&self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let offset = self.check(lba, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset)).map_err(io(Op::Read))?;
        f.read_exact(buf).map_err(io(Op::Read))
    }

    /// Writes `data` (whole blocks) from block `lba` on, then flushes it to stable
    /// storage (`sync_data`) before returning.
    pub fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        if self.access == Access::ReadOnly {
            return Err(DiskError::ReadOnly);
        }
        let offset = self.check(lba, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset)).map_err(io(Op::Write))?;
        f.write_all(data).map_err(io(Op::Write))?;
        self.sync()
    }

    /// Flushes written data to stable storage.
    pub fn sync(&mut self) -> Result<(), DiskError> {
        self.file.sync_data().map_err(io(Op::Sync))?;
        self.syncs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique path under the temporary directory, removed on drop.
    struct Temp(PathBuf);

    impl Temp {
        fn new(tag: &str) -> Temp {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            Temp(std::env::temp_dir().join(format!(
                "fabboot-disk-{tag}-{}-{}.img",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            )))
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn create_sets_the_length_and_write_reaches_the_file() {
        let t = Temp::new("rw");
        let mut img = Image::create(&t.0, BlockSize::B512, 8).unwrap();
        assert_eq!(std::fs::metadata(&t.0).unwrap().len(), 4096);
        let data: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
        img.write(3, &data).unwrap();
        assert_eq!(img.syncs(), 1);
        let file = std::fs::read(&t.0).unwrap();
        assert_eq!(&file[1536..2560], &data[..]);
        assert!(file[..1536].iter().all(|&b| b == 0));
        let mut back = vec![0xA5; 1024];
        img.read(3, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn bounds_and_alignment() {
        let t = Temp::new("bounds");
        let mut img = Image::create(&t.0, BlockSize::B4096, 4).unwrap();
        let mut buf = vec![0; 4096];
        assert!(img.read(3, &mut buf).is_ok());
        assert!(matches!(
            img.read(4, &mut buf),
            Err(DiskError::OutOfRange {
                lba: 4,
                blocks: 1,
                capacity: 4
            })
        ));
        assert!(matches!(
            img.read(u64::MAX, &mut buf),
            Err(DiskError::OutOfRange { .. })
        ));
        assert!(matches!(
            img.write(0, &[0; 512]),
            Err(DiskError::Unaligned { len: 512, .. })
        ));
        // Zero blocks at the end is inside; past it is not.
        assert!(img.write(4, &[]).is_ok());
        assert!(img.write(5, &[]).is_err());
        assert_eq!(img.syncs(), 0);
    }

    #[test]
    fn open_checks_the_length_and_read_only_refuses_writes() {
        let t = Temp::new("open");
        std::fs::write(&t.0, vec![0u8; 4096 + 512]).unwrap();
        assert!(matches!(
            Image::open(&t.0, BlockSize::B4096, Access::ReadWrite),
            Err(DiskError::PartialBlock { len: 4608, .. })
        ));
        let mut img = Image::open(&t.0, BlockSize::B512, Access::ReadOnly).unwrap();
        assert_eq!(img.blocks(), 9);
        assert!(matches!(img.write(0, &[1; 512]), Err(DiskError::ReadOnly)));
        std::fs::write(&t.0, b"").unwrap();
        assert!(matches!(
            Image::open(&t.0, BlockSize::B512, Access::ReadWrite),
            Err(DiskError::BadCapacity { blocks: 0, .. })
        ));
    }

    #[test]
    fn create_refuses_existing_files_and_impossible_sizes() {
        let t = Temp::new("exists");
        std::fs::write(&t.0, b"keep me").unwrap();
        assert!(matches!(
            Image::create(&t.0, BlockSize::B512, 1),
            Err(DiskError::Io { op: Op::Create, .. })
        ));
        assert_eq!(std::fs::read(&t.0).unwrap(), b"keep me");
        let u = Temp::new("huge");
        assert!(matches!(
            Image::create(&u.0, BlockSize::B4096, u64::MAX / 4096),
            Err(DiskError::BadCapacity { .. })
        ));
        assert!(matches!(
            Image::create(&u.0, BlockSize::B512, 0),
            Err(DiskError::BadCapacity { blocks: 0, .. })
        ));
        assert!(!u.0.exists());
    }

    #[test]
    fn a_length_the_filesystem_refuses_leaves_no_file() {
        let t = Temp::new("efbig");
        // Just under 8 EiB: ext4 (16 TiB at most) refuses it, XFS may not.
        let blocks = i64::MAX as u64 / 4096;
        match Image::create(&t.0, BlockSize::B4096, blocks) {
            Err(DiskError::Io { op: Op::SetLen, .. }) => assert!(!t.0.exists()),
            Ok(img) => assert_eq!(img.blocks(), blocks),
            Err(e) => panic!("{e}"),
        }
    }
}
