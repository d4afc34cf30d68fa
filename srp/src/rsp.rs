//! SRP_RSP (SRP r16a, SRP_RSP IU; layout in reference §1.1; how the initiator uses it:
//! §2.3, §3.3): status, residuals, credits, response data and sense data.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use crate::Error;
use crate::error::Field;
use crate::iu::IuType;
use crate::wire::{fixed, out, put, put_u8, u8_at, u32_at, u64_at, wire_len};

mod field {
    use core::ops::Range;

    pub const SOL_NOT: usize = 1;
    pub const REQ_LIM_DELTA: Range<usize> = 4..8;
    pub const TAG: Range<usize> = 8..16;
    pub const FLAGS: usize = 18;
    pub const STATUS: usize = 19;
    pub const DATA_OUT_RESIDUAL: Range<usize> = 20..24;
    pub const DATA_IN_RESIDUAL: Range<usize> = 24..28;
    pub const SENSE_DATA_LEN: Range<usize> = 28..32;
    pub const RESP_DATA_LEN: Range<usize> = 32..36;
}

/// SRP_RSP flags, byte 18 (reference §1.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RspFlags(pub u8);

impl RspFlags {
    /// RSPVALID: response data present.
    pub const RSPVALID: RspFlags = RspFlags(0x01);
    /// SNSVALID: sense data present.
    pub const SNSVALID: RspFlags = RspFlags(0x02);
    /// DOOVER: DATA-OUT overflow (the residual counts bytes not transferred).
    pub const DOOVER: RspFlags = RspFlags(0x04);
    /// DOUNDER: DATA-OUT underflow.
    pub const DOUNDER: RspFlags = RspFlags(0x08);
    /// DIOVER: DATA-IN overflow.
    pub const DIOVER: RspFlags = RspFlags(0x10);
    /// DIUNDER: DATA-IN underflow.
    pub const DIUNDER: RspFlags = RspFlags(0x20);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: RspFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` added.
    pub const fn union(self, other: RspFlags) -> RspFlags {
        RspFlags(self.0 | other.0)
    }
}

/// An SRP_RSP.
///
/// On the wire the response data (present only with RSPVALID) comes first, then the
/// sense data (only with SNSVALID), right after the 36-byte fixed part. A length field
/// whose VALID bit is clear is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsp<'a> {
    /// Solicited-notification bits (byte 1).
    pub sol_not: u8,
    /// REQUEST LIMIT DELTA: credits returned (the raw 32-bit field).
    pub req_lim_delta: u32,
    /// Tag of the command or task-management request.
    pub tag: u64,
    /// Flags; emit takes RSPVALID and SNSVALID as given and checks them against the
    /// data slices.
    pub flags: RspFlags,
    /// SCSI status.
    pub status: u8,
    /// DATA-OUT residual count (meaningful with DOOVER or DOUNDER).
    pub data_out_residual: u32,
    /// DATA-IN residual count (meaningful with DIOVER or DIUNDER).
    pub data_in_residual: u32,
    /// Response data (empty without RSPVALID). For task management, 4 bytes.
    pub response_data: &'a [u8],
    /// Sense data (empty without SNSVALID).
    pub sense_data: &'a [u8],
}

impl<'a> Rsp<'a> {
    /// Bytes of the fixed part.
    pub const LEN: usize = field::RESP_DATA_LEN.end;

    /// Bytes [`Rsp::emit`] writes: 36 plus both data lists (saturating).
    pub fn buffer_len(&self) -> usize {
        Self::LEN
            .saturating_add(self.response_data.len())
            .saturating_add(self.sense_data.len())
    }

    /// The RSP_CODE of a task-management response: byte 3 of 4-byte response data
    /// (reference §1.1: 0 complete, 4 not supported, 5 failed). `None` without it.
    pub fn task_mgmt_rsp_code(&self) -> Option<u8> {
        match self.response_data {
            [_, _, _, code] => Some(*code),
            _ => None,
        }
    }

    /// Parses an SRP_RSP of `buf.len()` bytes (the received byte count; trailing bytes
    /// beyond the data lists are ignored). Response and sense data must lie inside
    /// `buf`, else [`Error::LengthBeyondIu`] names the list that does not.
    pub fn parse(buf: &'a [u8]) -> Result<Rsp<'a>, Error> {
        let b = fixed(buf, IuType::Rsp, Self::LEN)?;
        let flags = RspFlags(u8_at(b, field::FLAGS));
        let list = |valid: RspFlags, len: Range, at: usize, field: Field| {
            let len = if flags.contains(valid) {
                wire_len(u32_at(b, len))
            } else {
                0
            };
            let end = at.saturating_add(len);
            buf.get(at..end)
                .map(|s| (s, end))
                .ok_or(Error::LengthBeyondIu {
                    iu: IuType::Rsp,
                    field,
                    needed: end,
                    got: buf.len(),
                })
        };
        let (response_data, end) = list(
            RspFlags::RSPVALID,
            field::RESP_DATA_LEN,
            Self::LEN,
            Field::ResponseDataLen,
        )?;
        let (sense_data, _) = list(
            RspFlags::SNSVALID,
            field::SENSE_DATA_LEN,
            end,
            Field::SenseDataLen,
        )?;
        Ok(Rsp {
            sol_not: u8_at(b, field::SOL_NOT),
            req_lim_delta: u32_at(b, field::REQ_LIM_DELTA),
            tag: u64_at(b, field::TAG),
            flags,
            status: u8_at(b, field::STATUS),
            data_out_residual: u32_at(b, field::DATA_OUT_RESIDUAL),
            data_in_residual: u32_at(b, field::DATA_IN_RESIDUAL),
            response_data,
            sense_data,
        })
    }

    /// Writes the response; returns [`Rsp::buffer_len`]. Non-empty response or sense
    /// data without its VALID flag is an error (it would not parse back).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let iu = IuType::Rsp;
        let check = |data: &[u8], valid: RspFlags, field: Field| {
            let value = u32::try_from(data.len()).map_err(|_| Error::Invalid {
                iu,
                field,
                value: u32::MAX,
            })?;
            if value != 0 && !self.flags.contains(valid) {
                return Err(Error::Invalid { iu, field, value });
            }
            Ok(value)
        };
        let resp_len = check(
            self.response_data,
            RspFlags::RSPVALID,
            Field::ResponseDataLen,
        )?;
        let sense_len = check(self.sense_data, RspFlags::SNSVALID, Field::SenseDataLen)?;
        let len = self.buffer_len();
        let b = out(buf, iu, len)?;
        put_u8(b, field::SOL_NOT, self.sol_not);
        put(b, field::REQ_LIM_DELTA, &self.req_lim_delta.to_be_bytes());
        put(b, field::TAG, &self.tag.to_be_bytes());
        put_u8(b, field::FLAGS, self.flags.0);
        put_u8(b, field::STATUS, self.status);
        put(
            b,
            field::DATA_OUT_RESIDUAL,
            &self.data_out_residual.to_be_bytes(),
        );
        put(
            b,
            field::DATA_IN_RESIDUAL,
            &self.data_in_residual.to_be_bytes(),
        );
        put(b, field::SENSE_DATA_LEN, &sense_len.to_be_bytes());
        put(b, field::RESP_DATA_LEN, &resp_len.to_be_bytes());
        let sense_at = Self::LEN.saturating_add(self.response_data.len());
        put(b, Self::LEN..sense_at, self.response_data);
        put(b, sense_at..len, self.sense_data);
        Ok(len)
    }
}

type Range = core::ops::Range<usize>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_part_is_36_bytes() {
        assert_eq!(Rsp::LEN, 36);
    }

    #[test]
    fn task_management_code_needs_four_bytes() {
        let mut rsp = Rsp {
            sol_not: 0,
            req_lim_delta: 1,
            tag: 7,
            flags: RspFlags::RSPVALID,
            status: 0,
            data_out_residual: 0,
            data_in_residual: 0,
            response_data: &[0, 0, 0, 5],
            sense_data: &[],
        };
        assert_eq!(rsp.task_mgmt_rsp_code(), Some(5));
        rsp.response_data = &[0, 0, 5];
        assert_eq!(rsp.task_mgmt_rsp_code(), None);
    }
}
