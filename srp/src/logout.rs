//! SRP_I_LOGOUT and SRP_T_LOGOUT (SRP r16a, logout IUs; layouts in reference §1.1).
//! A target's logout ends the channel; the session turns it into a reconnect request.
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
    pub const REASON: Range<usize> = 4..8;
    pub const TAG: Range<usize> = 8..16;
}

/// SRP_I_LOGOUT (16 bytes): the initiator ends the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ILogout {
    /// Tag.
    pub tag: u64,
}

impl ILogout {
    /// Bytes on the wire.
    pub const LEN: usize = field::TAG.end;

    /// Bytes [`ILogout::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses the IU (for tests and traces).
    pub fn parse(buf: &[u8]) -> Result<ILogout, Error> {
        let b = fixed(buf, IuType::ILogout, Self::LEN)?;
        Ok(ILogout {
            tag: u64_at(b, field::TAG),
        })
    }

    /// Writes the IU (reserved bytes zero); returns [`ILogout::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::ILogout, Self::LEN)?;
        put(b, field::TAG, &self.tag.to_be_bytes());
        Ok(Self::LEN)
    }
}

/// SRP_T_LOGOUT (16 bytes): the target ends the channel. The reason code is kept raw
/// (reference §1.1 gives its position, not its values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TLogout {
    /// Solicited-notification bits (byte 1).
    pub sol_not: u8,
    /// Reason.
    pub reason: u32,
    /// Tag.
    pub tag: u64,
}

impl TLogout {
    /// Bytes on the wire.
    pub const LEN: usize = field::TAG.end;

    /// Bytes [`TLogout::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses the IU.
    pub fn parse(buf: &[u8]) -> Result<TLogout, Error> {
        let b = fixed(buf, IuType::TLogout, Self::LEN)?;
        Ok(TLogout {
            sol_not: u8_at(b, field::SOL_NOT),
            reason: u32_at(b, field::REASON),
            tag: u64_at(b, field::TAG),
        })
    }

    /// Writes the IU (reserved bytes zero); returns [`TLogout::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::TLogout, Self::LEN)?;
        put_u8(b, field::SOL_NOT, self.sol_not);
        put(b, field::REASON, &self.reason.to_be_bytes());
        put(b, field::TAG, &self.tag.to_be_bytes());
        Ok(Self::LEN)
    }
}
