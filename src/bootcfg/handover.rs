//! The hand-over from the normal storport instance to the crash-dump (or hibernation)
//! instance: what the running system connected to, for the instance that loads when
//! it has died (reference/windows-side.md §3.3).
//!
//! The normal instance keeps one record in its device extension (non-paged, alive as
//! long as the adapter is) and answers `SRB_FUNCTION_DUMP_POINTERS` with
//! `MINIPORT_DUMP_POINTERS.MiniportPrivateDumpData` pointing at it; storport gives the
//! same pointer to the dump instance as `PORT_CONFIGURATION_INFORMATION.MiniportDumpData`
//! (`Reserved` before Windows 8). The dump instance then needs no firmware memory, no
//! registry and no configured image: it reads these bytes.
//!
//! Layout (version 1; integers little-endian, IDs in wire order; the configuration
//! fields sit where the embedded block has them, [`super::block`]):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `FBDUMPCF` |
//! | 8..10 | version (1) |
//! | 10..12 | length of the record (96) |
//! | 12 | the source the normal instance used ([`Source`]: 1, 2 or 3) |
//! | 13 | reserved, 0 |
//! | 14..16 | pkey |
//! | 16..32 | dgid |
//! | 32..48 | target_port_id |
//! | 48..56 | service_id |
//! | 56..64 | initiator_ext |
//! | 64..66 | lun |
//! | 66..68 | reserved, 0 |
//! | 68..72 | the adapter's `SystemIoBusNumber` |
//! | 72..76 | the adapter's `SlotNumber` |
//! | 76..84 | the adapter's BAR0 (physical address) |
//! | 84..92 | reserved, 0 |
//! | 92..96 | CRC-32 (IEEE 802.3, as the block's) of bytes 0..92 |
//!
//! The dump instance takes the record only for the adapter it was given: BAR0 must be
//! one of its memory ranges ([`super::resolve`]). Bus and slot are recorded for a
//! reader of a crash dump; they are not compared (how a dump port numbers them is not
//! documented).

use core::ops::Range;

use super::block::{crc32, get, put};
use super::{BootConfig, Key, Source};
use crate::initiator::TargetConfig;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..10;
    pub const LENGTH: Range<usize> = 10..12;
    pub const SOURCE: usize = 12;
    pub const RESERVED0: Range<usize> = 13..14;
    pub const PKEY: Range<usize> = 14..16;
    pub const DGID: Range<usize> = 16..32;
    pub const TARGET_PORT_ID: Range<usize> = 32..48;
    pub const SERVICE_ID: Range<usize> = 48..56;
    pub const INITIATOR_EXT: Range<usize> = 56..64;
    pub const LUN: Range<usize> = 64..66;
    pub const RESERVED1: Range<usize> = 66..68;
    pub const BUS: Range<usize> = 68..72;
    pub const SLOT: Range<usize> = 72..76;
    pub const BAR0: Range<usize> = 76..84;
    pub const RESERVED2: Range<usize> = 84..92;
    pub const CHECKSUM: Range<usize> = 92..96;
}

/// The record's first bytes.
pub const MAGIC: [u8; 8] = *b"FBDUMPCF";
/// The layout this driver reads and writes.
pub const VERSION: u16 = 1;
/// Bytes of a version-1 record.
pub const LEN: usize = field::CHECKSUM.end;

/// Why dump data cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoverError {
    /// Fewer than [`LEN`] bytes.
    Truncated,
    /// The bytes do not start with [`MAGIC`] (not ours, or overwritten).
    Magic,
    /// A version this driver does not know (the normal instance was another build).
    Version(u16),
    /// The length field is not [`LEN`].
    Length(u16),
    /// The checksum does not match.
    Checksum,
    /// Reserved bytes are not zero, or the source is not one a normal instance uses.
    Field,
    /// A value no target can have ([`super::check_values`]).
    Value(Key),
    /// The record is for an adapter whose BAR0 is not among this one's ranges.
    Adapter,
}

impl HandoverError {
    /// A small number for the event log's detail (bits 7:0 of `ConfigInvalid` with
    /// source 4): the key's number ([`Key`]) for a value, else 0x30 and up.
    pub fn code(self) -> u8 {
        match self {
            HandoverError::Value(key) => key as u8,
            HandoverError::Truncated => 0x30,
            HandoverError::Magic => 0x31,
            HandoverError::Version(_) => 0x32,
            HandoverError::Length(_) => 0x33,
            HandoverError::Checksum => 0x34,
            HandoverError::Field => 0x35,
            HandoverError::Adapter => 0x36,
        }
    }
}

/// What the normal instance hands over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The target it connected to.
    pub config: BootConfig,
    /// Where it had learned it ([`Source::ArgumentString`], [`Source::Embedded`] or
    /// [`Source::Sbft`]).
    pub source: Source,
    /// `SystemIoBusNumber` of its adapter.
    pub bus: u32,
    /// `SlotNumber` of its adapter.
    pub slot: u32,
    /// Its adapter's BAR0.
    pub bar0: u64,
}

fn zero(b: &[u8], r: Range<usize>) -> bool {
    b.get(r).is_some_and(|r| r.iter().all(|&x| x == 0))
}

impl Handover {
    /// Reads a record from the first [`LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<Handover, HandoverError> {
        let b = b.get(..LEN).ok_or(HandoverError::Truncated)?;
        if get::<8>(b, field::MAGIC) != MAGIC {
            return Err(HandoverError::Magic);
        }
        let version = u16::from_le_bytes(get(b, field::VERSION));
        if version != VERSION {
            return Err(HandoverError::Version(version));
        }
        let length = u16::from_le_bytes(get(b, field::LENGTH));
        if usize::from(length) != LEN {
            return Err(HandoverError::Length(length));
        }
        if u32::from_le_bytes(get(b, field::CHECKSUM)) != crc32(b, field::CHECKSUM.start) {
            return Err(HandoverError::Checksum);
        }
        let source = b
            .get(field::SOURCE)
            .and_then(|&s| Source::from_u8(s))
            .filter(|s| *s != Source::DumpData)
            .ok_or(HandoverError::Field)?;
        if !zero(b, field::RESERVED0) || !zero(b, field::RESERVED1) || !zero(b, field::RESERVED2) {
            return Err(HandoverError::Field);
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
        super::check_values(&config).map_err(HandoverError::Value)?;
        Ok(Handover {
            config,
            source,
            bus: u32::from_le_bytes(get(b, field::BUS)),
            slot: u32::from_le_bytes(get(b, field::SLOT)),
            bar0: u64::from_le_bytes(get(b, field::BAR0)),
        })
    }

    /// Writes the whole record (reserved bytes zero, checksum computed) into the first
    /// [`LEN`] bytes of `b`.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), HandoverError> {
        super::check_values(&self.config).map_err(HandoverError::Value)?;
        if self.source == Source::DumpData {
            return Err(HandoverError::Field);
        }
        let b = b.get_mut(..LEN).ok_or(HandoverError::Truncated)?;
        b.fill(0);
        let cfg = &self.config;
        put(b, field::MAGIC, &MAGIC);
        put(b, field::VERSION, &VERSION.to_le_bytes());
        put(b, field::LENGTH, &(LEN as u16).to_le_bytes());
        if let Some(s) = b.get_mut(field::SOURCE) {
            *s = self.source as u8;
        }
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
        put(b, field::BUS, &self.bus.to_le_bytes());
        put(b, field::SLOT, &self.slot.to_le_bytes());
        put(b, field::BAR0, &self.bar0.to_le_bytes());
        let sum = crc32(b, field::CHECKSUM.start);
        put(b, field::CHECKSUM, &sum.to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn sample() -> Handover {
        Handover {
            config: BootConfig {
                target: TargetConfig {
                    dgid: *b"\xfe\x80\0\0\0\0\0\0\x00\x02\xc9\x03\x00\x01\x00\x02",
                    service_id: 0x0002_C903_0001_0001,
                    target_port_id: [0x11; 16],
                    initiator_ext: 0x0102_0304_0506_0708,
                    pkey: 0xFFFF,
                },
                lun: 5,
            },
            source: Source::Sbft,
            bus: 3,
            slot: 0x10,
            bar0: 0xE000_0000,
        }
    }

    fn emitted() -> [u8; LEN] {
        let mut b = [0u8; LEN];
        sample().emit(&mut b).unwrap();
        b
    }

    fn fix_crc(b: &mut [u8; LEN]) {
        let sum = crc32(b, 92);
        b[92..].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn emit_then_parse_round_trips_with_fields_where_documented() {
        let mut b = [0xA5u8; LEN + 4];
        sample().emit(&mut b).unwrap();
        assert_eq!(&b[..8], b"FBDUMPCF");
        assert_eq!(&b[8..16], &[1, 0, 96, 0, 3, 0, 0xFF, 0xFF]);
        assert_eq!(&b[16..18], &[0xfe, 0x80]);
        assert_eq!(&b[48..56], &0x0002_C903_0001_0001u64.to_le_bytes());
        assert_eq!(&b[64..68], &[5, 0, 0, 0]);
        assert_eq!(&b[68..76], &[3, 0, 0, 0, 0x10, 0, 0, 0]);
        assert_eq!(&b[76..84], &0xE000_0000u64.to_le_bytes());
        assert!(b[84..92].iter().all(|&x| x == 0));
        assert_eq!(&b[LEN..], &[0xA5; 4], "nothing written past the record");
        assert_eq!(Handover::parse(&b), Ok(sample()));
    }

    #[test]
    fn every_damage_is_named() {
        let good = emitted();
        assert_eq!(
            Handover::parse(&good[..LEN - 1]),
            Err(HandoverError::Truncated)
        );
        assert_eq!(Handover::parse(&[0u8; LEN]), Err(HandoverError::Magic));
        let mut b = good;
        b[3] = b'X';
        assert_eq!(Handover::parse(&b), Err(HandoverError::Magic));
        let mut b = good;
        b[8] = 2;
        assert_eq!(Handover::parse(&b), Err(HandoverError::Version(2)));
        let mut b = good;
        b[10] = 95;
        assert_eq!(Handover::parse(&b), Err(HandoverError::Length(95)));
        for i in 12..LEN {
            let mut b = good;
            b[i] ^= 0x08;
            assert_eq!(
                Handover::parse(&b),
                Err(HandoverError::Checksum),
                "byte {i}"
            );
        }
        // Fields a writer must leave zero or in range, with the checksum made right.
        for (at, v) in [(12usize, 0u8), (12, 4), (12, 9), (13, 1), (66, 1), (90, 1)] {
            let mut b = good;
            b[at] = v;
            fix_crc(&mut b);
            assert_eq!(Handover::parse(&b), Err(HandoverError::Field), "byte {at}");
        }
        for (at, v, key) in [
            (64usize, [0x00, 0x40], Key::Lun),
            (14, [0x00, 0x00], Key::Pkey),
            (16, [0xFF, 0x02], Key::Dgid),
        ] {
            let mut b = good;
            b[at..at + 2].copy_from_slice(&v);
            fix_crc(&mut b);
            assert_eq!(Handover::parse(&b), Err(HandoverError::Value(key)));
        }
        let codes = [
            HandoverError::Truncated,
            HandoverError::Magic,
            HandoverError::Version(0),
            HandoverError::Length(0),
            HandoverError::Checksum,
            HandoverError::Field,
            HandoverError::Adapter,
        ]
        .map(HandoverError::code);
        assert_eq!(codes, [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36]);
    }

    #[test]
    fn emit_refuses_what_parse_would_refuse() {
        let mut h = sample();
        h.source = Source::DumpData;
        assert_eq!(h.emit(&mut [0u8; LEN]), Err(HandoverError::Field));
        let mut h = sample();
        h.config.target.pkey = 0x8000;
        assert_eq!(
            h.emit(&mut [0u8; LEN]),
            Err(HandoverError::Value(Key::Pkey))
        );
        assert_eq!(
            sample().emit(&mut [0u8; LEN - 1]),
            Err(HandoverError::Truncated)
        );
    }

    #[test]
    fn no_input_panics() {
        let good = emitted();
        for n in 0..=LEN {
            let _ = Handover::parse(&good[..n]);
        }
        let mut x = 0x9E37_79B9u32;
        for _ in 0..2000 {
            let mut b = good;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b[(x as usize) % LEN] = (x >> 8) as u8;
            let _ = Handover::parse(&b);
        }
    }
}
