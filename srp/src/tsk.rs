//! SRP_TSK_MGMT (SRP r16a, SRP_TSK_MGMT IU; layout in reference §1.1; use in §2.4: an
//! abort is ABORT TASK, a LUN reset is LOGICAL UNIT RESET). It may use the last credit
//! (§2.3). The answer is an SRP_RSP with 4 bytes of response data.
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
use crate::wire::{array, fixed, out, put, put_u8, u8_at, u64_at};

mod field {
    use core::ops::Range;

    pub const SOL_NOT: usize = 1;
    pub const TAG: Range<usize> = 8..16;
    pub const LUN: Range<usize> = 20..28;
    pub const FUNCTION: usize = 30;
    pub const TASK_TAG: Range<usize> = 32..40;
    pub const RESERVED: Range<usize> = 40..48;
}

/// Task management function, byte 30 (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskFunction {
    /// 0x01 ABORT TASK (the task named by [`TskMgmt::task_tag`]).
    AbortTask,
    /// 0x02 ABORT TASK SET.
    AbortTaskSet,
    /// 0x04 CLEAR TASK SET.
    ClearTaskSet,
    /// 0x08 LOGICAL UNIT RESET.
    LogicalUnitReset,
    /// 0x40 CLEAR ACA.
    ClearAca,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for TaskFunction {
    fn from(v: u8) -> Self {
        match v {
            0x01 => TaskFunction::AbortTask,
            0x02 => TaskFunction::AbortTaskSet,
            0x04 => TaskFunction::ClearTaskSet,
            0x08 => TaskFunction::LogicalUnitReset,
            0x40 => TaskFunction::ClearAca,
            other => TaskFunction::Unknown(other),
        }
    }
}

impl From<TaskFunction> for u8 {
    fn from(f: TaskFunction) -> u8 {
        match f {
            TaskFunction::AbortTask => 0x01,
            TaskFunction::AbortTaskSet => 0x02,
            TaskFunction::ClearTaskSet => 0x04,
            TaskFunction::LogicalUnitReset => 0x08,
            TaskFunction::ClearAca => 0x40,
            TaskFunction::Unknown(v) => v,
        }
    }
}

/// SRP_TSK_MGMT (48 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TskMgmt {
    /// Solicited-notification bits (byte 1).
    pub sol_not: u8,
    /// Tag of this request (echoed in its SRP_RSP).
    pub tag: u64,
    /// Logical unit (SAM 8-byte format).
    pub lun: [u8; 8],
    /// The function.
    pub function: TaskFunction,
    /// Tag of the task to manage (ABORT TASK); otherwise sent as given, normally 0.
    pub task_tag: u64,
}

impl TskMgmt {
    /// Bytes on the wire.
    pub const LEN: usize = field::RESERVED.end;

    /// Bytes [`TskMgmt::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses the request (for tests and traces).
    pub fn parse(buf: &[u8]) -> Result<TskMgmt, Error> {
        let b = fixed(buf, IuType::TskMgmt, Self::LEN)?;
        Ok(TskMgmt {
            sol_not: u8_at(b, field::SOL_NOT),
            tag: u64_at(b, field::TAG),
            lun: array(b, field::LUN),
            function: TaskFunction::from(u8_at(b, field::FUNCTION)),
            task_tag: u64_at(b, field::TASK_TAG),
        })
    }

    /// Writes the request (reserved bytes zero); returns [`TskMgmt::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::TskMgmt, Self::LEN)?;
        put_u8(b, field::SOL_NOT, self.sol_not);
        put(b, field::TAG, &self.tag.to_be_bytes());
        put(b, field::LUN, &self.lun);
        put_u8(b, field::FUNCTION, u8::from(self.function));
        put(b, field::TASK_TAG, &self.task_tag.to_be_bytes());
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_round_trip() {
        assert_eq!(TskMgmt::LEN, 48);
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(TaskFunction::from(v)), v);
        }
    }
}
