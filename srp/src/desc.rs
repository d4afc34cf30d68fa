//! Data buffer descriptors and buffer-format codes (SRP r16a §5.2.1; reference §1.2).
//!
//! A *direct* descriptor names one remote buffer: virtual address, R_Key, length (16
//! bytes). An *indirect* descriptor is a 20-byte header — a table descriptor (itself
//! shaped like a direct one) and the total data length — followed, inside the SRP_CMD,
//! by the direct descriptors of the table. Linux ib_srpt never fetches a table from
//! initiator memory, so this crate always puts the whole table inside the IU.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use crate::Error;
use crate::iu::IuType;
use crate::wire::{array, put, u32_at, u64_at};

mod field {
    use core::ops::Range;

    // Direct descriptor.
    pub const VA: Range<usize> = 0..8;
    pub const KEY: Range<usize> = 8..12;
    pub const LEN: Range<usize> = 12..16;

    // Indirect descriptor header: a direct-shaped table descriptor, then TOTAL LENGTH.
    pub const TABLE: Range<usize> = 0..16;
    pub const TOTAL_LEN: Range<usize> = 16..20;
}

/// REQUIRED / SUPPORTED BUFFER FORMATS of SRP_LOGIN_REQ, _RSP and _REJ (bytes 24..26;
/// reference §1.1). Unknown bits are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferFormats(pub u16);

impl BufferFormats {
    /// DDBD: direct data buffer descriptors.
    pub const DIRECT: BufferFormats = BufferFormats(0x0002);
    /// IDBD: indirect data buffer descriptors.
    pub const INDIRECT: BufferFormats = BufferFormats(0x0004);
    /// Both direct and indirect.
    pub const DIRECT_AND_INDIRECT: BufferFormats = BufferFormats(0x0006);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: BufferFormats) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A per-command buffer format, one nibble of SRP_CMD byte 5 (bits 7..4 DATA-OUT,
/// bits 3..0 DATA-IN; reference §1.1, §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// 0: no data buffer.
    None,
    /// 1: one direct descriptor.
    Direct,
    /// 2: an indirect descriptor header and its table.
    Indirect,
    /// 3: immediate data (SRP-2, DATA-OUT only); not emitted by this crate.
    Immediate,
    /// Any other nibble value.
    Unknown(u8),
}

impl From<u8> for DataFormat {
    /// From a nibble (the high four bits of `v` are ignored).
    fn from(v: u8) -> Self {
        match v & 0x0F {
            0 => DataFormat::None,
            1 => DataFormat::Direct,
            2 => DataFormat::Indirect,
            3 => DataFormat::Immediate,
            other => DataFormat::Unknown(other),
        }
    }
}

impl From<DataFormat> for u8 {
    fn from(f: DataFormat) -> u8 {
        match f {
            DataFormat::None => 0,
            DataFormat::Direct => 1,
            DataFormat::Indirect => 2,
            DataFormat::Immediate => 3,
            DataFormat::Unknown(v) => v & 0x0F,
        }
    }
}

/// A direct data buffer descriptor (16 bytes): one remote buffer the target reads
/// (DATA-OUT) or writes (DATA-IN) with RDMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectDesc {
    /// Virtual address of the buffer (in the R_Key's address space).
    pub va: u64,
    /// Memory key the target uses for its RDMA.
    pub rkey: u32,
    /// Length in bytes.
    pub len: u32,
}

impl DirectDesc {
    /// Bytes on the wire.
    pub const LEN: usize = field::LEN.end;

    /// Reads a descriptor from the start of `buf` (errors name [`IuType::Cmd`]).
    pub fn parse(buf: &[u8]) -> Result<DirectDesc, Error> {
        let b = buf.get(..Self::LEN).ok_or(Error::Truncated {
            iu: IuType::Cmd,
            needed: Self::LEN,
            got: buf.len(),
        })?;
        Ok(DirectDesc {
            va: u64_at(b, field::VA),
            rkey: u32_at(b, field::KEY),
            len: u32_at(b, field::LEN),
        })
    }

    /// Writes the descriptor at the start of `buf`; returns [`Self::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let got = buf.len();
        let b = buf.get_mut(..Self::LEN).ok_or(Error::BufferTooShort {
            iu: IuType::Cmd,
            needed: Self::LEN,
            got,
        })?;
        put(b, field::VA, &self.va.to_be_bytes());
        put(b, field::KEY, &self.rkey.to_be_bytes());
        put(b, field::LEN, &self.len.to_be_bytes());
        Ok(Self::LEN)
    }
}

/// The 20-byte indirect descriptor header: where the descriptor table lives and how
/// many bytes all its buffers hold together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndirectHeader {
    /// The table descriptor; its `len` / 16 is the number of table entries.
    pub table: DirectDesc,
    /// TOTAL LENGTH: the sum of the entries' lengths.
    pub total_len: u32,
}

impl IndirectHeader {
    /// Bytes on the wire.
    pub const LEN: usize = field::TOTAL_LEN.end;

    /// Reads a header from the start of `buf` (errors name [`IuType::Cmd`]).
    pub fn parse(buf: &[u8]) -> Result<IndirectHeader, Error> {
        let b = buf.get(..Self::LEN).ok_or(Error::Truncated {
            iu: IuType::Cmd,
            needed: Self::LEN,
            got: buf.len(),
        })?;
        let table: [u8; DirectDesc::LEN] = array(b, field::TABLE);
        Ok(IndirectHeader {
            table: DirectDesc::parse(&table)?,
            total_len: u32_at(b, field::TOTAL_LEN),
        })
    }

    /// Writes the header at the start of `buf`; returns [`Self::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let got = buf.len();
        let b = buf.get_mut(..Self::LEN).ok_or(Error::BufferTooShort {
            iu: IuType::Cmd,
            needed: Self::LEN,
            got,
        })?;
        let mut table = [0u8; DirectDesc::LEN];
        self.table.emit(&mut table)?;
        put(b, field::TABLE, &table);
        put(b, field::TOTAL_LEN, &self.total_len.to_be_bytes());
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_reference() {
        // Reference §1.2: direct 16 bytes, indirect header 20.
        assert_eq!(DirectDesc::LEN, 16);
        assert_eq!(IndirectHeader::LEN, 20);
    }

    #[test]
    fn nibbles_round_trip() {
        for v in 0..16u8 {
            assert_eq!(u8::from(DataFormat::from(v)), v);
        }
        assert_eq!(DataFormat::from(0x21), DataFormat::Direct);
    }

    #[test]
    fn buffer_format_bits() {
        assert!(BufferFormats::DIRECT_AND_INDIRECT.contains(BufferFormats::INDIRECT));
        assert!(!BufferFormats::DIRECT.contains(BufferFormats::INDIRECT));
    }
}
