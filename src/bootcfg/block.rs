//! The configuration block embedded in each driver image: a fixed 96-byte record in a
//! section of its own (`.fbcfg`), which a tool finds by its magic in the built `.sys`
//! file and rewrites in place (then fixing the PE checksum). An image as built carries
//! the block with its "configured" flag clear.
//!
//! Layout (version 1; integers little-endian, IDs in wire order):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `FBCONFIG` |
//! | 8..10 | version (1) |
//! | 10..12 | length of the block (96) |
//! | 12..14 | flags: bit 0 configured; other bits 0 |
//! | 14..16 | pkey |
//! | 16..32 | dgid |
//! | 32..48 | target_port_id |
//! | 48..56 | service_id |
//! | 56..64 | initiator_ext |
//! | 64..66 | lun |
//! | 66..92 | reserved, 0 |
//! | 92..96 | CRC-32 (IEEE 802.3) of bytes 0..92 |
//!
//! The wire view follows the crate's `Repr` pattern: [`Block::parse`],
//! [`Block::emit`], and [`locate`]/[`patch`] to find and rewrite the one block in an
//! image file.

use core::ops::Range;

use super::{BootConfig, Key};
use crate::initiator::TargetConfig;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..10;
    pub const LENGTH: Range<usize> = 10..12;
    pub const FLAGS: Range<usize> = 12..14;
    pub const PKEY: Range<usize> = 14..16;
    pub const DGID: Range<usize> = 16..32;
    pub const TARGET_PORT_ID: Range<usize> = 32..48;
    pub const SERVICE_ID: Range<usize> = 48..56;
    pub const INITIATOR_EXT: Range<usize> = 56..64;
    pub const LUN: Range<usize> = 64..66;
    pub const RESERVED: Range<usize> = 66..92;
    pub const CHECKSUM: Range<usize> = 92..96;
}

/// The block's first bytes.
pub const MAGIC: [u8; 8] = *b"FBCONFIG";
/// The layout this driver reads and writes.
pub const VERSION: u16 = 1;
/// Bytes of a version-1 block.
pub const LEN: usize = field::CHECKSUM.end;
/// `flags` bit 0: the block names a target.
pub const FLAG_CONFIGURED: u16 = 1;

/// Why a block cannot be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// Fewer than [`LEN`] bytes.
    Truncated,
    /// The bytes do not start with [`MAGIC`].
    Magic,
    /// A version this driver does not know.
    Version(u16),
    /// The length field is not [`LEN`].
    Length(u16),
    /// The checksum does not match.
    Checksum,
    /// Flag bits or reserved bytes that must be zero are not.
    Field,
    /// A configured block names a value no target can have
    /// ([`super::check_values`]: the LUN beyond [`MAX_LUN`], a zero or multicast GID,
    /// an invalid P_Key).
    Value(Key),
    /// [`locate`]: no block in the image.
    NotFound,
    /// [`locate`]: more than one valid block in the image; which to patch is unclear.
    Several,
}

impl BlockError {
    /// A small number for the event log's detail (bits 7:0 of `ConfigInvalid` with
    /// source 2): the key's number ([`Key`]) for a value, else 0x10 and up.
    pub fn code(self) -> u8 {
        match self {
            BlockError::Value(key) => key as u8,
            BlockError::Truncated => 0x10,
            BlockError::Magic => 0x11,
            BlockError::Version(_) => 0x12,
            BlockError::Length(_) => 0x13,
            BlockError::Checksum => 0x14,
            BlockError::Field => 0x15,
            BlockError::NotFound => 0x16,
            BlockError::Several => 0x17,
        }
    }
}

/// What a block says: a configuration, or "not configured".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// `None` when the configured flag is clear.
    pub config: Option<BootConfig>,
}

/// The block an image is built with: valid, not configured.
// Evaluated at compile time: an index out of range is a build error, never a panic.
#[allow(clippy::indexing_slicing)]
pub const UNCONFIGURED: [u8; LEN] = {
    let mut b = [0u8; LEN];
    let mut i = 0;
    while i < MAGIC.len() {
        b[i] = MAGIC[i];
        i += 1;
    }
    let v = VERSION.to_le_bytes();
    b[field::VERSION.start] = v[0];
    b[field::VERSION.start + 1] = v[1];
    b[field::LENGTH.start] = LEN as u8;
    let sum = crc32(&b, field::CHECKSUM.start).to_le_bytes();
    b[field::CHECKSUM.start] = sum[0];
    b[field::CHECKSUM.start + 1] = sum[1];
    b[field::CHECKSUM.start + 2] = sum[2];
    b[field::CHECKSUM.start + 3] = sum[3];
    b
};

/// CRC-32 as IEEE 802.3 defines it (reflected polynomial 0xEDB88320, initial value and
/// final XOR all ones) of the first `len` bytes of `data` (all of it when shorter);
/// bitwise, no table: the block is 92 bytes.
pub const fn crc32(data: &[u8], len: usize) -> u32 {
    let mut crc = u32::MAX;
    let mut rest = data;
    let mut left = len;
    while let [byte, tail @ ..] = rest {
        if left == 0 {
            break;
        }
        crc ^= *byte as u32;
        let mut bit = 0u32;
        while bit < 8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            bit = bit.wrapping_add(1);
        }
        rest = tail;
        left = left.wrapping_sub(1);
    }
    !crc
}

pub(super) fn get<const N: usize>(b: &[u8], r: Range<usize>) -> [u8; N] {
    b.get(r)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

/// Copies `v` into `b[r]` (a field and its value are the same length; a copy by
/// pairs has no length-mismatch panic path to link into the image).
pub(super) fn put(b: &mut [u8], r: Range<usize>, v: &[u8]) {
    if let Some(d) = b.get_mut(r) {
        for (d, v) in d.iter_mut().zip(v) {
            *d = *v;
        }
    }
}

impl Block {
    /// Reads a block from the first [`LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<Block, BlockError> {
        let b = b.get(..LEN).ok_or(BlockError::Truncated)?;
        if get::<8>(b, field::MAGIC) != MAGIC {
            return Err(BlockError::Magic);
        }
        let version = u16::from_le_bytes(get(b, field::VERSION));
        if version != VERSION {
            return Err(BlockError::Version(version));
        }
        let length = u16::from_le_bytes(get(b, field::LENGTH));
        if usize::from(length) != LEN {
            return Err(BlockError::Length(length));
        }
        if u32::from_le_bytes(get(b, field::CHECKSUM)) != crc32(b, field::CHECKSUM.start) {
            return Err(BlockError::Checksum);
        }
        let flags = u16::from_le_bytes(get(b, field::FLAGS));
        let reserved_clear = b
            .get(field::RESERVED)
            .is_some_and(|r| r.iter().all(|&x| x == 0));
        if flags & !FLAG_CONFIGURED != 0 || !reserved_clear {
            return Err(BlockError::Field);
        }
        if flags & FLAG_CONFIGURED == 0 {
            return Ok(Block { config: None });
        }
        let config = BootConfig {
            target: TargetConfig {
                dgid: get(b, field::DGID),
                service_id: u64::from_le_bytes(get(b, field::SERVICE_ID)),
                target_port_id: get(b, field::TARGET_PORT_ID),
                initiator_ext: u64::from_le_bytes(get(b, field::INITIATOR_EXT)),
                pkey: u16::from_le_bytes(get(b, field::PKEY)),
            },
            lun: u16::from_le_bytes(get(b, field::LUN)),
        };
        super::check_values(&config).map_err(BlockError::Value)?;
        Ok(Block {
            config: Some(config),
        })
    }

    /// Writes the whole block (reserved bytes zero, checksum computed) into the first
    /// [`LEN`] bytes of `b`.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), BlockError> {
        if let Some(cfg) = &self.config {
            super::check_values(cfg).map_err(BlockError::Value)?;
        }
        let b = b.get_mut(..LEN).ok_or(BlockError::Truncated)?;
        b.fill(0);
        put(b, field::MAGIC, &MAGIC);
        put(b, field::VERSION, &VERSION.to_le_bytes());
        put(b, field::LENGTH, &(LEN as u16).to_le_bytes());
        if let Some(cfg) = &self.config {
            put(b, field::FLAGS, &FLAG_CONFIGURED.to_le_bytes());
            put(b, field::PKEY, &cfg.target.pkey.to_le_bytes());
            put(b, field::DGID, &cfg.target.dgid);
            put(b, field::TARGET_PORT_ID, &cfg.target.target_port_id);
            put(b, field::SERVICE_ID, &cfg.target.service_id.to_le_bytes());
            put(
                b,
                field::INITIATOR_EXT,
                &cfg.target.initiator_ext.to_le_bytes(),
            );
            put(b, field::LUN, &cfg.lun.to_le_bytes());
        }
        let sum = crc32(b, field::CHECKSUM.start);
        put(b, field::CHECKSUM, &sum.to_le_bytes());
        Ok(())
    }
}

/// The offset of the one valid block in `image` (a whole `.sys` file, or any bytes).
/// The magic may also occur elsewhere (the driver's own code compares with it); only
/// a place where a whole valid block follows counts.
pub fn locate(image: &[u8]) -> Result<usize, BlockError> {
    let mut found = None;
    let mut at = 0usize;
    while let Some(rest) = image.get(at..) {
        let Some(pos) = rest.windows(MAGIC.len()).position(|w| w == MAGIC) else {
            break;
        };
        let offset = at.saturating_add(pos);
        if image.get(offset..).is_some_and(|b| Block::parse(b).is_ok()) {
            if found.is_some() {
                return Err(BlockError::Several);
            }
            found = Some(offset);
        }
        at = offset.saturating_add(1);
    }
    found.ok_or(BlockError::NotFound)
}

/// Finds the one block in `image` and rewrites it with `block`; returns its offset.
/// A PE file's checksum must be recomputed afterwards.
pub fn patch(image: &mut [u8], block: &Block) -> Result<usize, BlockError> {
    let at = locate(image)?;
    let dst = image.get_mut(at..).ok_or(BlockError::Truncated)?;
    block.emit(dst)?;
    Ok(at)
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn sample() -> BootConfig {
        BootConfig {
            target: TargetConfig {
                dgid: *b"\xfe\x80\0\0\0\0\0\0\x00\x02\xc9\x03\x00\x01\x00\x02",
                service_id: 0x0002_C903_0001_0001,
                target_port_id: [0x11; 16],
                initiator_ext: 0x0102_0304_0506_0708,
                pkey: 0xFFFF,
            },
            lun: 5,
        }
    }

    #[test]
    fn the_crc_is_ieee_802_3() {
        // The check value of CRC-32 ("123456789").
        assert_eq!(crc32(b"123456789", 9), 0xCBF4_3926);
        assert_eq!(crc32(b"", 0), 0);
    }

    #[test]
    fn the_unconfigured_block_is_valid_and_says_so() {
        assert_eq!(Block::parse(&UNCONFIGURED), Ok(Block { config: None }));
        let mut b = [0xA5u8; LEN];
        Block { config: None }.emit(&mut b).unwrap();
        assert_eq!(b, UNCONFIGURED);
    }

    #[test]
    fn emit_then_parse_round_trips_with_fields_where_documented() {
        let mut b = [0xA5u8; LEN + 4];
        let block = Block {
            config: Some(sample()),
        };
        block.emit(&mut b).unwrap();
        assert_eq!(&b[..8], b"FBCONFIG");
        assert_eq!(&b[8..16], &[1, 0, 96, 0, 1, 0, 0xFF, 0xFF]);
        assert_eq!(&b[16..18], &[0xfe, 0x80]);
        assert_eq!(&b[32..48], &[0x11; 16]);
        assert_eq!(&b[48..56], &0x0002_C903_0001_0001u64.to_le_bytes());
        assert_eq!(&b[56..64], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[64..66], &[5, 0]);
        assert!(b[66..92].iter().all(|&x| x == 0));
        assert_eq!(&b[LEN..], &[0xA5; 4], "nothing written past the block");
        assert_eq!(Block::parse(&b), Ok(block));
    }

    #[test]
    fn damage_is_named() {
        let mut good = [0u8; LEN];
        Block {
            config: Some(sample()),
        }
        .emit(&mut good)
        .unwrap();
        assert_eq!(Block::parse(&good[..LEN - 1]), Err(BlockError::Truncated));
        let mut b = good;
        b[0] = b'X';
        assert_eq!(Block::parse(&b), Err(BlockError::Magic));
        let mut b = good;
        b[8] = 2;
        assert_eq!(Block::parse(&b), Err(BlockError::Version(2)));
        let mut b = good;
        b[10] = 95;
        assert_eq!(Block::parse(&b), Err(BlockError::Length(95)));
        for i in 12..LEN {
            let mut b = good;
            b[i] ^= 0x40;
            assert_eq!(Block::parse(&b), Err(BlockError::Checksum), "byte {i}");
        }
        // Fields that must be zero, with the checksum made right.
        for (at, v) in [(12usize, 2u8), (70, 1)] {
            let mut b = good;
            b[at] |= v;
            let sum = crc32(&b, 92);
            b[92..].copy_from_slice(&sum.to_le_bytes());
            assert_eq!(Block::parse(&b), Err(BlockError::Field), "byte {at}");
        }
        let mut too_far = sample();
        too_far.lun = super::super::MAX_LUN + 1;
        assert_eq!(
            Block {
                config: Some(too_far)
            }
            .emit(&mut [0u8; LEN]),
            Err(BlockError::Value(Key::Lun))
        );
        // Values no target can have, written by a tool that did not check them: the
        // checksum holds, the value is named.
        for (at, v, key) in [
            (64usize, [0x00, 0x40], Key::Lun), // LUN 16384
            (14, [0x00, 0x80], Key::Pkey),     // P_Key 0x8000
            (16, [0xFF, 0x02], Key::Dgid),     // a multicast GID
        ] {
            let mut b = good;
            b[at..at + 2].copy_from_slice(&v);
            let sum = crc32(&b, 92);
            b[92..].copy_from_slice(&sum.to_le_bytes());
            assert_eq!(Block::parse(&b), Err(BlockError::Value(key)), "byte {at}");
            assert_eq!(BlockError::Value(key).code(), key as u8);
        }
        assert_eq!(
            Block { config: None }.emit(&mut [0u8; LEN - 1]),
            Err(BlockError::Truncated)
        );
    }

    #[test]
    fn locate_skips_a_stray_magic_and_patch_rewrites_in_place() {
        let mut image = std::vec![0x90u8; 4096];
        // The magic as a constant elsewhere in the image, with no block after it.
        image[100..108].copy_from_slice(&MAGIC);
        image[1000..1000 + LEN].copy_from_slice(&UNCONFIGURED);
        assert_eq!(locate(&image), Ok(1000));
        let block = Block {
            config: Some(sample()),
        };
        assert_eq!(patch(&mut image, &block), Ok(1000));
        assert_eq!(Block::parse(&image[1000..]), Ok(block));
        assert_eq!(&image[100..108], &MAGIC, "the stray magic is untouched");
        assert!(image[..100].iter().all(|&b| b == 0x90));

        image[3000..3000 + LEN].copy_from_slice(&UNCONFIGURED);
        assert_eq!(locate(&image), Err(BlockError::Several));
        assert_eq!(locate(&[0u8; 10]), Err(BlockError::NotFound));
        assert_eq!(locate(&UNCONFIGURED[..LEN - 1]), Err(BlockError::NotFound));
        assert_eq!(locate(&UNCONFIGURED), Ok(0));
    }
}
