//! SRP_AER_REQ and SRP_AER_RSP (SRP r16a, asynchronous event IUs; layouts in reference
//! §1.1). The initiator answers every SRP_AER_REQ with SRP_AER_RSP, using no credit
//! (§2.3, §6 item 3).
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
use crate::wire::{array, fixed, out, put, put_u8, u8_at, u32_at, u64_at, wire_len};

mod field {
    use core::ops::Range;

    pub const SOL_NOT: usize = 1;
    pub const REQ_LIM_DELTA: Range<usize> = 4..8;
    pub const TAG: Range<usize> = 8..16;
    pub const LUN: Range<usize> = 20..28;
    pub const SENSE_DATA_LEN: Range<usize> = 28..32;
    pub const RESERVED: Range<usize> = 32..36;
}

/// SRP_AER_REQ (36-byte fixed part, then sense data): an asynchronous event on a
/// logical unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AerReq<'a> {
    /// Solicited-notification bits (byte 1).
    pub sol_not: u8,
    /// REQUEST LIMIT DELTA (the raw 32-bit field).
    pub req_lim_delta: u32,
    /// Tag, echoed in the SRP_AER_RSP.
    pub tag: u64,
    /// Logical unit the event concerns.
    pub lun: [u8; 8],
    /// Sense data describing the event.
    pub sense_data: &'a [u8],
}

impl<'a> AerReq<'a> {
    /// Bytes of the fixed part.
    pub const LEN: usize = field::RESERVED.end;

    /// Bytes [`AerReq::emit`] writes: 36 plus the sense data (saturating).
    pub fn buffer_len(&self) -> usize {
        Self::LEN.saturating_add(self.sense_data.len())
    }

    /// Parses the IU; the sense data must lie inside `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<AerReq<'a>, Error> {
        let b = fixed(buf, IuType::AerReq, Self::LEN)?;
        let end = Self::LEN.saturating_add(wire_len(u32_at(b, field::SENSE_DATA_LEN)));
        let sense_data = buf.get(Self::LEN..end).ok_or(Error::LengthBeyondIu {
            iu: IuType::AerReq,
            field: Field::SenseDataLen,
            needed: end,
            got: buf.len(),
        })?;
        Ok(AerReq {
            sol_not: u8_at(b, field::SOL_NOT),
            req_lim_delta: u32_at(b, field::REQ_LIM_DELTA),
            tag: u64_at(b, field::TAG),
            lun: array(b, field::LUN),
            sense_data,
        })
    }

    /// Writes the IU (reserved bytes zero); returns [`AerReq::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let sense_len = u32::try_from(self.sense_data.len()).map_err(|_| Error::Invalid {
            iu: IuType::AerReq,
            field: Field::SenseDataLen,
            value: u32::MAX,
        })?;
        let len = self.buffer_len();
        let b = out(buf, IuType::AerReq, len)?;
        put_u8(b, field::SOL_NOT, self.sol_not);
        put(b, field::REQ_LIM_DELTA, &self.req_lim_delta.to_be_bytes());
        put(b, field::TAG, &self.tag.to_be_bytes());
        put(b, field::LUN, &self.lun);
        put(b, field::SENSE_DATA_LEN, &sense_len.to_be_bytes());
        put(b, Self::LEN..len, self.sense_data);
        Ok(len)
    }
}

/// SRP_AER_RSP (16 bytes): the initiator's answer to an SRP_AER_REQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AerRsp {
    /// Tag of the SRP_AER_REQ.
    pub tag: u64,
}

impl AerRsp {
    /// Bytes on the wire.
    pub const LEN: usize = field::TAG.end;

    /// Bytes [`AerRsp::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses the IU (for tests and traces).
    pub fn parse(buf: &[u8]) -> Result<AerRsp, Error> {
        let b = fixed(buf, IuType::AerRsp, Self::LEN)?;
        Ok(AerRsp {
            tag: u64_at(b, field::TAG),
        })
    }

    /// Writes the IU (reserved bytes zero); returns [`AerRsp::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::AerRsp, Self::LEN)?;
        put(b, field::TAG, &self.tag.to_be_bytes());
        Ok(Self::LEN)
    }
}
