//! SRP_CRED_REQ and SRP_CRED_RSP (SRP r16a, credit IUs; layouts in reference §1.1).
//! The initiator adds the delta and answers with SRP_CRED_RSP, which uses no credit
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
use crate::iu::IuType;
use crate::wire::{fixed, out, put, put_u8, u8_at, u32_at, u64_at};

mod field {
    use core::ops::Range;

    pub const SOL_NOT: usize = 1;
    pub const REQ_LIM_DELTA: Range<usize> = 4..8;
    pub const TAG: Range<usize> = 8..16;
}

/// SRP_CRED_REQ (16 bytes): the target grants credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredReq {
    /// Solicited-notification bits (byte 1).
    pub sol_not: u8,
    /// REQUEST LIMIT DELTA (the raw 32-bit field).
    pub req_lim_delta: u32,
    /// Tag, echoed in the SRP_CRED_RSP.
    pub tag: u64,
}

impl CredReq {
    /// Bytes on the wire.
    pub const LEN: usize = field::TAG.end;

    /// Bytes [`CredReq::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses the IU.
    pub fn parse(buf: &[u8]) -> Result<CredReq, Error> {
        let b = fixed(buf, IuType::CredReq, Self::LEN)?;
        Ok(CredReq {
            sol_not: u8_at(b, field::SOL_NOT),
            req_lim_delta: u32_at(b, field::REQ_LIM_DELTA),
            tag: u64_at(b, field::TAG),
        })
    }

    /// Writes the IU (reserved bytes zero); returns [`CredReq::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::CredReq, Self::LEN)?;
        put_u8(b, field::SOL_NOT, self.sol_not);
        put(b, field::REQ_LIM_DELTA, &self.req_lim_delta.to_be_bytes());
        put(b, field::TAG, &self.tag.to_be_bytes());
        Ok(Self::LEN)
    }
}

/// SRP_CRED_RSP (16 bytes): the initiator's answer to an SRP_CRED_REQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredRsp {
    /// Tag of the SRP_CRED_REQ.
    pub tag: u64,
}

impl CredRsp {
    /// Bytes on the wire.
    pub const LEN: usize = field::TAG.end;

    /// Bytes [`CredRsp::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses the IU (for tests and traces).
    pub fn parse(buf: &[u8]) -> Result<CredRsp, Error> {
        let b = fixed(buf, IuType::CredRsp, Self::LEN)?;
        Ok(CredRsp {
            tag: u64_at(b, field::TAG),
        })
    }

    /// Writes the IU (reserved bytes zero); returns [`CredRsp::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::CredRsp, Self::LEN)?;
        put(b, field::TAG, &self.tag.to_be_bytes());
        Ok(Self::LEN)
    }
}
