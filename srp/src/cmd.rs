//! SRP_CMD (SRP r16a, SRP_CMD IU; layout in reference §1.1, descriptors §1.2): a SCSI
//! command with its data buffer descriptors.
//!
//! [`SrpCmd`] is what the initiator builds: at most a 16-byte CDB (ADDITIONAL CDB
//! LENGTH 0), one data direction, and the data as segments. One segment goes out as a
//! direct descriptor; more go out as an indirect descriptor whose whole table sits
//! inside the IU, with the DATA-IN or DATA-OUT DESCRIPTOR COUNT equal to the number of
//! table entries (Linux ib_srpt does not fetch tables from initiator memory and
//! rejects a table longer than the counts, §1.2). A direct descriptor leaves the
//! counts 0, as Linux ib_srp does (known from its source, not stated in the
//! reference; the simulated target accepts 0 or 1). [`CmdIu`] parses any SRP_CMD with
//! direct or indirect descriptors, for tests and traces.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use crate::Error;
use crate::desc::{DataFormat, DirectDesc, IndirectHeader};
use crate::error::Field;
use crate::iu::IuType;
use crate::wire::{array, fixed, out, put, put_u8, u8_at, u64_at, wire_len};

mod field {
    use core::ops::Range;

    pub const SOL_NOT: usize = 1;
    pub const BUF_FMT: usize = 5;
    pub const DATA_OUT_COUNT: usize = 6;
    pub const DATA_IN_COUNT: usize = 7;
    pub const TAG: Range<usize> = 8..16;
    pub const LUN: Range<usize> = 20..28;
    pub const TASK_ATTR: usize = 29;
    pub const ADD_CDB_LEN: usize = 31;
    pub const CDB: Range<usize> = 32..48;
}

/// Byte offset of an SRP_CMD's 8-byte TAG (SRP r16a §6.9, Table 24): where an
/// initiator that sends a built IU again on a new channel writes its new tag.
pub const TAG_AT: usize = field::TAG.start;
/// Byte range of an SRP_CMD's LOGICAL UNIT NUMBER (SRP r16a §6.9).
pub const LUN_AT: core::ops::Range<usize> = field::LUN;
/// Byte offset of an SRP_CMD's DATA-OUT (bits 7..4) / DATA-IN (bits 3..0) BUFFER
/// FORMAT byte (SRP r16a §6.9).
pub const BUF_FMT_AT: usize = field::BUF_FMT;
/// Bytes of the fixed part, up to and including the 16-byte CDB.
pub const FIXED_LEN: usize = field::CDB.end;

/// Largest CDB carried without additional CDB bytes.
pub const MAX_CDB_LEN: usize = 16;

/// Most descriptors a DATA-IN or DATA-OUT DESCRIPTOR COUNT (one byte) can announce.
pub const MAX_DESC_COUNT: usize = u8::MAX as usize;

/// Offset of the first inline table entry of an indirect descriptor in an SRP_CMD
/// without additional CDB bytes: 48 + 20.
pub const TABLE_OFFSET: usize = FIXED_LEN + IndirectHeader::LEN;

/// Length of an SRP_CMD with one direct descriptor: 48 + 16.
pub const DIRECT_IU_LEN: usize = FIXED_LEN + DirectDesc::LEN;

/// How many data descriptors one SRP_CMD of at most `it_iu_len` bytes can carry: the
/// scatter-gather element count the miniport reports to the port driver.
///
/// An indirect descriptor costs the 48-byte fixed part, a 20-byte header and 16 bytes
/// per entry; the count is capped at 255 because the descriptor count fields are one
/// byte. A single segment needs only a direct descriptor (48 + 16 = 64 bytes), so any
/// IU of at least 64 bytes carries one. Below 64 bytes: 0.
pub const fn max_sg_entries(it_iu_len: u32) -> usize {
    // u32 to usize widens on every target this crate builds for (32- and 64-bit).
    let len = it_iu_len as usize;
    if len < DIRECT_IU_LEN {
        return 0;
    }
    let indirect = len.saturating_sub(TABLE_OFFSET) / DirectDesc::LEN;
    if indirect < 1 {
        1
    } else if indirect > MAX_DESC_COUNT {
        MAX_DESC_COUNT
    } else {
        indirect
    }
}

/// Task attribute, SRP_CMD byte 29 bits 2..0 (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskAttr {
    /// 0: SIMPLE.
    Simple,
    /// 1: HEAD OF QUEUE.
    HeadOfQueue,
    /// 2: ORDERED.
    Ordered,
    /// 4: ACA.
    Aca,
    /// 3, 5, 6 or 7.
    Unknown(u8),
}

impl From<u8> for TaskAttr {
    /// From the low three bits of `v`.
    fn from(v: u8) -> Self {
        match v & 0x07 {
            0 => TaskAttr::Simple,
            1 => TaskAttr::HeadOfQueue,
            2 => TaskAttr::Ordered,
            4 => TaskAttr::Aca,
            other => TaskAttr::Unknown(other),
        }
    }
}

impl From<TaskAttr> for u8 {
    fn from(a: TaskAttr) -> u8 {
        match a {
            TaskAttr::Simple => 0,
            TaskAttr::HeadOfQueue => 1,
            TaskAttr::Ordered => 2,
            TaskAttr::Aca => 4,
            TaskAttr::Unknown(v) => v & 0x07,
        }
    }
}

/// Direction of a command's data, seen from the initiator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDir {
    /// No data.
    None,
    /// DATA-IN: the target RDMA-writes into the segments (a READ).
    In,
    /// DATA-OUT: the target RDMA-reads from the segments (a WRITE).
    Out,
}

/// An SRP_CMD as the initiator emits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrpCmd<'a> {
    /// Tag, echoed in the SRP_RSP.
    pub tag: u64,
    /// Logical unit (SAM 8-byte format).
    pub lun: [u8; 8],
    /// Task attribute.
    pub task_attr: TaskAttr,
    /// The CDB, at most [`MAX_CDB_LEN`] bytes; zero-padded to 16 on the wire.
    pub cdb: &'a [u8],
    /// Data direction; must not be [`DataDir::None`] when there are segments.
    pub dir: DataDir,
    /// The data buffer: `(va, rkey, len)` per segment, in order. Empty: no data.
    pub segments: &'a [DirectDesc],
    /// Address of this IU's own send buffer (in `iu_rkey`'s space). With two or more
    /// segments the table descriptor points at the inline table, `iu_addr + 68`, so
    /// that it names real memory; ib_srpt never reads it (§1.2).
    pub iu_addr: u64,
    /// Key for `iu_addr`, put in the table descriptor.
    pub iu_rkey: u32,
}

impl SrpCmd<'_> {
    /// Bytes [`SrpCmd::emit`] writes: 48, plus 16 for one segment, plus 20 + 16 per
    /// segment for more (saturating, for absurd slices that `emit` rejects anyway).
    pub fn buffer_len(&self) -> usize {
        match self.segments.len() {
            0 => FIXED_LEN,
            1 => FIXED_LEN.saturating_add(DirectDesc::LEN),
            n => n
                .saturating_mul(DirectDesc::LEN)
                .saturating_add(TABLE_OFFSET),
        }
    }

    /// Writes the command into `buf`, whose length is the IU length available (the
    /// target's MAX INITIATOR-TO-TARGET IU LENGTH, or less); returns the bytes written.
    ///
    /// Errors: a CDB over 16 bytes, segments without a direction, more segments than
    /// [`max_sg_entries`]`(buf.len())`, a total length or table address that overflows,
    /// a buffer under 48 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let iu = IuType::Cmd;
        let invalid = |field, value: usize| Error::Invalid {
            iu,
            field,
            value: u32::try_from(value).unwrap_or(u32::MAX),
        };
        if self.cdb.len() > MAX_CDB_LEN {
            return Err(invalid(Field::Cdb, self.cdb.len()));
        }
        let n = self.segments.len();
        if n > 0 && self.dir == DataDir::None {
            return Err(invalid(Field::DataDirection, n));
        }
        let max = max_sg_entries(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        if n > max {
            return Err(Error::TooManySegments { segments: n, max });
        }
        // The header of an indirect descriptor, computed before anything is written.
        let header = if n > 1 {
            let mut total = 0u32;
            for s in self.segments {
                total = total
                    .checked_add(s.len)
                    .ok_or(invalid(Field::TotalLength, n))?;
            }
            let table_va = u64::try_from(TABLE_OFFSET)
                .ok()
                .and_then(|off| self.iu_addr.checked_add(off))
                .ok_or(invalid(Field::TableAddress, TABLE_OFFSET))?;
            let table_len = n
                .checked_mul(DirectDesc::LEN)
                .and_then(|l| u32::try_from(l).ok())
                .ok_or(invalid(Field::TableLength, n))?;
            Some(IndirectHeader {
                table: DirectDesc {
                    va: table_va,
                    rkey: self.iu_rkey,
                    len: table_len,
                },
                total_len: total,
            })
        } else {
            None
        };
        // n <= 255 here, as max_sg_entries caps it.
        let count = u8::try_from(n).map_err(|_| Error::TooManySegments {
            segments: n,
            max: MAX_DESC_COUNT,
        })?;

        let len = self.buffer_len();
        let b = out(buf, iu, len)?;
        put(b, field::TAG, &self.tag.to_be_bytes());
        put(b, field::LUN, &self.lun);
        put_u8(b, field::TASK_ATTR, u8::from(self.task_attr));
        if let Some(cdb) = b.get_mut(field::CDB.start..)
            && let Some(dst) = cdb.get_mut(..self.cdb.len())
        {
            dst.copy_from_slice(self.cdb);
        }
        let descs = b.get_mut(FIXED_LEN..).unwrap_or_default();
        let format = match (header, self.segments.first()) {
            (Some(h), _) => {
                h.emit(descs)?;
                let table = descs.get_mut(IndirectHeader::LEN..).unwrap_or_default();
                for (s, slot) in self
                    .segments
                    .iter()
                    .zip(table.chunks_exact_mut(DirectDesc::LEN))
                {
                    s.emit(slot)?;
                }
                DataFormat::Indirect
            }
            (None, Some(s)) => {
                s.emit(descs)?;
                DataFormat::Direct
            }
            (None, None) => DataFormat::None,
        };
        let format = u8::from(format);
        let indirect_count = if n > 1 { count } else { 0 };
        match self.dir {
            DataDir::Out => {
                put_u8(b, field::BUF_FMT, format << 4);
                put_u8(b, field::DATA_OUT_COUNT, indirect_count);
            }
            DataDir::In => {
                put_u8(b, field::BUF_FMT, format);
                put_u8(b, field::DATA_IN_COUNT, indirect_count);
            }
            DataDir::None => {}
        }
        Ok(len)
    }
}

/// The data buffer of one direction in a parsed SRP_CMD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataBuffer<'a> {
    /// Format 0: no data in this direction.
    None,
    /// Format 1: one direct descriptor.
    Direct(DirectDesc),
    /// Format 2: an indirect header and its inline table.
    Indirect(IndirectTable<'a>),
}

/// An indirect descriptor as found in a parsed SRP_CMD: its header and the bytes of
/// its inline table (a whole number of 16-byte entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndirectTable<'a> {
    /// The header.
    pub header: IndirectHeader,
    entries: &'a [u8],
}

impl<'a> IndirectTable<'a> {
    /// Number of inline entries (the descriptor count).
    pub fn len(&self) -> usize {
        self.entries.len() / DirectDesc::LEN
    }

    /// Whether the table has no entries (never true for a parsed table).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The inline entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = DirectDesc> + 'a {
        self.entries
            .chunks_exact(DirectDesc::LEN)
            .filter_map(|c| DirectDesc::parse(c).ok())
    }
}

/// An SRP_CMD as parsed (for tests and traces; the target is who parses commands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdIu<'a> {
    /// Solicited-notification bits (byte 1).
    pub sol_not: u8,
    /// Tag.
    pub tag: u64,
    /// Logical unit.
    pub lun: [u8; 8],
    /// Task attribute.
    pub task_attr: TaskAttr,
    /// The first 16 CDB bytes.
    pub cdb: [u8; 16],
    /// Additional CDB bytes (ADDITIONAL CDB LENGTH, bits 7..2 of byte 31, in dwords).
    pub additional_cdb: &'a [u8],
    /// DATA-OUT buffer (descriptors come first).
    pub data_out: DataBuffer<'a>,
    /// DATA-IN buffer.
    pub data_in: DataBuffer<'a>,
}

impl<'a> CmdIu<'a> {
    /// Parses an SRP_CMD. Rejects immediate and unknown formats, counts that do not
    /// match the format (none: 0; direct: 0 or 1; indirect: at least 1), an indirect
    /// table length other than 16 × count (no external tables), and descriptors that
    /// run past the end of `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<CmdIu<'a>, Error> {
        let b = fixed(buf, IuType::Cmd, FIXED_LEN)?;
        let add_cdb_len = usize::from(u8_at(b, field::ADD_CDB_LEN) & 0xFC);
        let add_end = FIXED_LEN.saturating_add(add_cdb_len);
        let additional_cdb = buf.get(FIXED_LEN..add_end).ok_or(Error::LengthBeyondIu {
            iu: IuType::Cmd,
            field: Field::AdditionalCdbLen,
            needed: add_end,
            got: buf.len(),
        })?;
        let fmt = u8_at(b, field::BUF_FMT);
        let (data_out, next) = parse_buffer(
            buf,
            add_end,
            DataFormat::from(fmt >> 4),
            u8_at(b, field::DATA_OUT_COUNT),
            Field::DataOutDescriptors,
        )?;
        let (data_in, _) = parse_buffer(
            buf,
            next,
            DataFormat::from(fmt),
            u8_at(b, field::DATA_IN_COUNT),
            Field::DataInDescriptors,
        )?;
        Ok(CmdIu {
            sol_not: u8_at(b, field::SOL_NOT),
            tag: u64_at(b, field::TAG),
            lun: array(b, field::LUN),
            task_attr: TaskAttr::from(u8_at(b, field::TASK_ATTR)),
            cdb: array(b, field::CDB),
            additional_cdb,
            data_out,
            data_in,
        })
    }
}

/// Reads the descriptor of one direction at `at`; returns it and the offset after it.
fn parse_buffer(
    buf: &[u8],
    at: usize,
    format: DataFormat,
    count: u8,
    field: Field,
) -> Result<(DataBuffer<'_>, usize), Error> {
    let iu = IuType::Cmd;
    let slice = |len: usize| {
        let end = at.saturating_add(len);
        buf.get(at..end)
            .map(|s| (s, end))
            .ok_or(Error::LengthBeyondIu {
                iu,
                field,
                needed: end,
                got: buf.len(),
            })
    };
    let bad = |value: u8| Error::Invalid {
        iu,
        field,
        value: u32::from(value),
    };
    match format {
        DataFormat::None if count == 0 => Ok((DataBuffer::None, at)),
        DataFormat::Direct if count <= 1 => {
            let (s, end) = slice(DirectDesc::LEN)?;
            Ok((DataBuffer::Direct(DirectDesc::parse(s)?), end))
        }
        DataFormat::Indirect if count >= 1 => {
            let table_bytes = usize::from(count).saturating_mul(DirectDesc::LEN);
            let (s, end) = slice(IndirectHeader::LEN.saturating_add(table_bytes))?;
            let header = IndirectHeader::parse(s)?;
            if wire_len(header.table.len) != table_bytes {
                return Err(Error::Invalid {
                    iu,
                    field: Field::TableLength,
                    value: header.table.len,
                });
            }
            let entries = s.get(IndirectHeader::LEN..).unwrap_or_default();
            Ok((DataBuffer::Indirect(IndirectTable { header, entries }), end))
        }
        DataFormat::None | DataFormat::Direct | DataFormat::Indirect => Err(bad(count)),
        DataFormat::Immediate | DataFormat::Unknown(_) => Err(Error::Invalid {
            iu,
            field: Field::BufferFormat,
            value: u32::from(u8::from(format)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_part_is_48_bytes() {
        assert_eq!(FIXED_LEN, 48);
        assert_eq!(TABLE_OFFSET, 68);
    }

    #[test]
    fn small_ius_carry_at_most_a_direct_descriptor() {
        assert_eq!(max_sg_entries(0), 0);
        assert_eq!(max_sg_entries(63), 0);
        assert_eq!(max_sg_entries(64), 1);
        assert_eq!(max_sg_entries(99), 1);
        assert_eq!(max_sg_entries(100), 2); // 68 + 2 * 16
        assert_eq!(max_sg_entries(u32::MAX), 255);
    }

    #[test]
    fn task_attributes_round_trip() {
        for v in 0..8u8 {
            assert_eq!(u8::from(TaskAttr::from(v)), v);
        }
    }
}
