//! Event-log entries: every failure a user must act on is reported through the port's
//! `LogError` call, which Windows records in the System log (source: the driver's
//! service name; the entry's dump data carries `UniqueId`).
//!
//! `UniqueId` layout: bits 31:24 are `0xFB` (fabboot), bits 23:16 the event number
//! ([`Event::number`]), bits 15:0 a detail whose meaning depends on the event.
//! `ErrorCode` is the port's `SP_*` class of the error.

use crate::port::abi::{SP_BAD_FW_ERROR, SP_INTERNAL_ADAPTER_ERROR};

/// Marks a `UniqueId` as ours.
pub const UNIQUE_ID_TAG: u32 = 0xFB00_0000;

/// Something the driver reports in the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The HCA's firmware speaks a command-interface revision the driver does not.
    /// Detail: the revision found. Fix: update the HCA firmware (revision 5 is needed).
    UnsupportedCmdIfRev { found: u16 },
    /// The HCA's registers read all ones: the function does not answer.
    DeviceNotResponding,
    /// BAR0 is not a memory range the port assigned to us, or is too small to hold the
    /// initialization segment. Detail: the number of access ranges the port offered.
    Bar0NotAssigned { ranges: u16 },
    /// The port could not map BAR0.
    Bar0MapFailed,
}

impl Event {
    /// The event number in bits 23:16 of `UniqueId` (stable: documented in README).
    pub fn number(&self) -> u8 {
        match self {
            Event::UnsupportedCmdIfRev { .. } => 0x01,
            Event::DeviceNotResponding => 0x02,
            Event::Bar0NotAssigned { .. } => 0x03,
            Event::Bar0MapFailed => 0x04,
        }
    }

    fn detail(&self) -> u16 {
        match *self {
            Event::UnsupportedCmdIfRev { found } => found,
            Event::Bar0NotAssigned { ranges } => ranges,
            Event::DeviceNotResponding | Event::Bar0MapFailed => 0,
        }
    }

    /// `UniqueId` argument of `LogError`.
    pub fn unique_id(&self) -> u32 {
        UNIQUE_ID_TAG | u32::from(self.number()) << 16 | u32::from(self.detail())
    }

    /// `ErrorCode` argument of `LogError`.
    pub fn error_code(&self) -> u32 {
        match self {
            Event::UnsupportedCmdIfRev { .. } => SP_BAD_FW_ERROR,
            Event::DeviceNotResponding | Event::Bar0NotAssigned { .. } | Event::Bar0MapFailed => {
                SP_INTERNAL_ADAPTER_ERROR
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_carry_tag_number_and_detail() {
        assert_eq!(
            Event::UnsupportedCmdIfRev { found: 4 }.unique_id(),
            0xFB01_0004
        );
        assert_eq!(Event::DeviceNotResponding.unique_id(), 0xFB02_0000);
        assert_eq!(
            Event::Bar0NotAssigned { ranges: 2 }.unique_id(),
            0xFB03_0002
        );
        assert_eq!(Event::Bar0MapFailed.unique_id(), 0xFB04_0000);
        assert_eq!(
            Event::UnsupportedCmdIfRev { found: 4 }.error_code(),
            SP_BAD_FW_ERROR
        );
    }
}
