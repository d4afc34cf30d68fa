//! Event-log entries: every failure a user must act on is reported through the port's
//! `LogError` call, which Windows records in the System log (source: the driver's
//! service name; the entry's dump data carries `UniqueId`).
//!
//! `UniqueId` layout: bits 31:24 are `0xFB` (fabboot), bits 23:16 the event number
//! ([`Event::number`]), bits 15:0 a detail whose meaning depends on the event.
//! `ErrorCode` is the port's `SP_*` class of the error.

use crate::port::abi::{
    SP_BAD_FW_ERROR, SP_INTERNAL_ADAPTER_ERROR, SP_PROTOCOL_ERROR, SP_REQUEST_TIMEOUT,
    SP_UNEXPECTED_DISCONNECT,
};

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
    /// Bringing the HCA up failed (a firmware command failed or timed out). Detail:
    /// the command's status or 0xFFFF for a timeout. Fix: power-cycle the machine;
    /// update the HCA firmware.
    HcaBringupFailed { status: u16 },
    /// The InfiniBand port did not become ACTIVE in time. Detail: the last port state
    /// seen (1 down, 2 init, 3 armed). Fix: check the cable and that a subnet manager
    /// runs on the fabric.
    PortNotActive { state: u16 },
    /// The subnet administrator gave no path to the target. Detail: the SA's MAD
    /// status, 0xFFFE for no record, 0xFFFF when it never answered. Fix: check the
    /// target's GID in the configuration and that the target's port is up.
    NoPath { status: u16 },
    /// The target refused the SRP login. Detail: the low 16 bits of the
    /// SRP_LOGIN_REJ reason (0x0003 wrong target port ID, 0x0006 channel limit or no
    /// ACL entry). Fix: the target's configuration (ACL) or the target port ID.
    LoginRejected { reason: u16 },
    /// The target's CM refused the connection. Detail: the CM REJ reason (8 invalid
    /// Service ID). Fix: the Service ID in the configuration.
    ConnectionRejected { reason: u16 },
    /// The target's CM never answered. Fix: check that the target runs.
    ConnectTimeout,
    /// The connection to the target was lost and is being re-established. Detail:
    /// why (see `initiator::Loss`).
    TargetLost { why: u16 },
    /// The target sent a reply the initiator cannot read; the reply is dropped.
    /// Detail: which reply (see `initiator::Malformed`).
    MalformedReply { what: u16 },
    /// No configuration names a target: no `ArgumentString` naming one, and the
    /// image's configuration block is not configured. Fix: set the registry's
    /// `DriverParameter`, or configure the image.
    ConfigMissing,
    /// A configuration source names a target but cannot be used (`bootcfg`'s module
    /// docs say when a source stops the search). Detail: bits 15:8 the source (1
    /// `ArgumentString`, 2 the image's block, 3 the sBFT, 4 the dump data the normal
    /// instance handed over), bits 7:0 the key whose value is unusable (1 dgid, 2
    /// service_id, 3 target_port_id, 4 initiator_ext, 5 pkey, 6 lun) or what is wrong
    /// with the source as a whole: the block's `bootcfg::block::BlockError::code`
    /// (0x10 and up), the sBFT's `bootcfg::sbft::SbftError::code` (0x21 length, 0x22
    /// checksum, 0x23 to 0x25 the SCSI, SRP or IB subtable), the dump data's
    /// `bootcfg::handover::HandoverError::code` (0x30 and up; 0x36 another adapter's).
    /// Fix: correct that value; for the sBFT, the firmware's (iPXE's) root path; for
    /// the dump data, load the same driver build for the normal and the dump stack.
    ConfigInvalid { detail: u16 },
    /// The loader's or the dump stack's wait for the disk ended before it was usable.
    /// Detail: where the initiator stood (see `miniport::state_code`). Fix: as the
    /// event logged before it says (cable, subnet manager, target).
    NotConnected { state: u16 },
    /// The port gave no usable DMA memory. Detail: 1 none, 2 not physically
    /// contiguous or too short, 3 the dump region is too small. Fix: free memory; for
    /// dump mode, let the normal instance load first.
    NoDmaMemory { why: u16 },
    /// The connection lost earlier (see [`Event::TargetLost`]) is back: logged in
    /// again and every held command sent again. Detail: how long the disk was
    /// unreachable, in milliseconds (0xFFFF: a minute or more). No action needed;
    /// frequent entries point at the fabric (cables, the subnet manager) or the
    /// target.
    Reconnected { ms: u16 },
    /// The port's link is up but no subnet manager configured it (it stayed INIT or
    /// ARMED). Detail: the port state (2 init, 3 armed). Fix: start a subnet manager
    /// (OpenSM, or the switch's) on the fabric.
    NoSubnetManager { state: u16 },
    /// The HCA's firmware did not finish initialising (its `initializing` bit stayed
    /// set). Detail: seconds waited. Fix: power-cycle the machine; update the HCA
    /// firmware.
    FirmwareNotReady { seconds: u16 },
}

impl Event {
    /// The event number in bits 23:16 of `UniqueId` (stable: documented in README).
    pub fn number(&self) -> u8 {
        match self {
            Event::UnsupportedCmdIfRev { .. } => 0x01,
            Event::DeviceNotResponding => 0x02,
            Event::Bar0NotAssigned { .. } => 0x03,
            Event::Bar0MapFailed => 0x04,
            Event::HcaBringupFailed { .. } => 0x05,
            Event::PortNotActive { .. } => 0x06,
            Event::NoPath { .. } => 0x07,
            Event::LoginRejected { .. } => 0x08,
            Event::ConnectionRejected { .. } => 0x09,
            Event::ConnectTimeout => 0x0A,
            Event::TargetLost { .. } => 0x0B,
            Event::MalformedReply { .. } => 0x0C,
            Event::ConfigMissing => 0x0D,
            Event::ConfigInvalid { .. } => 0x0E,
            Event::NotConnected { .. } => 0x0F,
            Event::NoDmaMemory { .. } => 0x10,
            Event::Reconnected { .. } => 0x11,
            Event::NoSubnetManager { .. } => 0x12,
            Event::FirmwareNotReady { .. } => 0x13,
        }
    }

    fn detail(&self) -> u16 {
        match *self {
            Event::UnsupportedCmdIfRev { found } => found,
            Event::Bar0NotAssigned { ranges } => ranges,
            Event::HcaBringupFailed { status } => status,
            Event::PortNotActive { state } => state,
            Event::NoPath { status } => status,
            Event::LoginRejected { reason } => reason,
            Event::ConnectionRejected { reason } => reason,
            Event::TargetLost { why } => why,
            Event::MalformedReply { what } => what,
            Event::ConfigInvalid { detail } => detail,
            Event::NotConnected { state } => state,
            Event::NoDmaMemory { why } => why,
            Event::Reconnected { ms } => ms,
            Event::NoSubnetManager { state } => state,
            Event::FirmwareNotReady { seconds } => seconds,
            Event::DeviceNotResponding
            | Event::Bar0MapFailed
            | Event::ConnectTimeout
            | Event::ConfigMissing => 0,
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
            Event::DeviceNotResponding
            | Event::Bar0NotAssigned { .. }
            | Event::Bar0MapFailed
            | Event::HcaBringupFailed { .. } => SP_INTERNAL_ADAPTER_ERROR,
            Event::PortNotActive { .. } | Event::NoPath { .. } | Event::ConnectTimeout => {
                SP_REQUEST_TIMEOUT
            }
            Event::LoginRejected { .. } | Event::ConnectionRejected { .. } => {
                SP_UNEXPECTED_DISCONNECT
            }
            Event::TargetLost { .. } => SP_UNEXPECTED_DISCONNECT,
            Event::MalformedReply { .. } => SP_PROTOCOL_ERROR,
            Event::ConfigMissing | Event::ConfigInvalid { .. } | Event::NoDmaMemory { .. } => {
                SP_INTERNAL_ADAPTER_ERROR
            }
            Event::NotConnected { .. } => SP_REQUEST_TIMEOUT,
            Event::Reconnected { .. } => SP_UNEXPECTED_DISCONNECT,
            Event::NoSubnetManager { .. } => SP_REQUEST_TIMEOUT,
            Event::FirmwareNotReady { .. } => SP_BAD_FW_ERROR,
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
        assert_eq!(Event::ConfigMissing.unique_id(), 0xFB0D_0000);
        assert_eq!(
            Event::ConfigInvalid { detail: 0x0103 }.unique_id(),
            0xFB0E_0103
        );
        assert_eq!(Event::NotConnected { state: 1 }.unique_id(), 0xFB0F_0001);
        assert_eq!(Event::NoDmaMemory { why: 2 }.unique_id(), 0xFB10_0002);
        assert_eq!(
            Event::NotConnected { state: 1 }.error_code(),
            SP_REQUEST_TIMEOUT
        );
    }

    /// One of every event.
    pub(crate) const ALL: [Event; 19] = [
        Event::UnsupportedCmdIfRev { found: 0 },
        Event::DeviceNotResponding,
        Event::Bar0NotAssigned { ranges: 0 },
        Event::Bar0MapFailed,
        Event::HcaBringupFailed { status: 0 },
        Event::PortNotActive { state: 0 },
        Event::NoPath { status: 0 },
        Event::LoginRejected { reason: 0 },
        Event::ConnectionRejected { reason: 0 },
        Event::ConnectTimeout,
        Event::TargetLost { why: 0 },
        Event::MalformedReply { what: 0 },
        Event::ConfigMissing,
        Event::ConfigInvalid { detail: 0 },
        Event::NotConnected { state: 0 },
        Event::NoDmaMemory { why: 0 },
        Event::Reconnected { ms: 0 },
        Event::NoSubnetManager { state: 0 },
        Event::FirmwareNotReady { seconds: 0 },
    ];

    #[test]
    fn every_event_has_its_own_number_and_a_row_in_the_readme() {
        let readme = include_str!("../README.md");
        let mut seen = std::vec::Vec::new();
        for e in ALL {
            let n = e.number();
            assert!(!seen.contains(&n), "{e:?} shares number {n:#x}");
            seen.push(n);
            let code = std::format!("0xFB{n:02X}");
            assert!(
                readme
                    .lines()
                    .any(|l| l.starts_with('|') && l.contains(&code)),
                "README's event table has no row for {code} ({e:?})"
            );
        }
        assert_eq!(Event::Reconnected { ms: 1500 }.unique_id(), 0xFB11_05DC);
    }
}
