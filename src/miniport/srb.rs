//! One SRB, in safe terms: what the port asks ([`SrbFields`], read out of the
//! `SCSI_REQUEST_BLOCK` by the port module), what the miniport does with it
//! ([`classify`]), and what is written back when it ends ([`completion`]).
//!
//! Field meanings: srb.h (`SCSI_REQUEST_BLOCK`, `SRB_FLAGS_*`, `SRB_STATUS_*`) and
//! reference/windows-side.md §1.5, §1.7.

use fabboot_srp::cmd::DataDir;

use crate::initiator::{Outcome, Request};
use crate::port::abi::*;

/// The one target the miniport presents (the SRP target).
pub const TARGET_ID: u8 = 0;

/// The SRB members the miniport reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrbFields {
    /// `Function` (`SRB_FUNCTION_*`).
    pub function: u8,
    /// `PathId`: the bus; the miniport has one.
    pub path_id: u8,
    /// `TargetId`.
    pub target: u8,
    /// `Lun`: an index into the target's REPORT LUNS list.
    pub lun: u8,
    /// `CdbLength`.
    pub cdb_len: u8,
    /// `Cdb`.
    pub cdb: [u8; 16],
    /// `SrbFlags`.
    pub flags: u32,
    /// `DataTransferLength`.
    pub transfer_len: u32,
}

/// What to do with an SRB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the SCSI command to the target; the data moves in `dir`.
    Execute {
        /// Data direction (`None` when nothing moves).
        dir: DataDir,
    },
    /// An SRP LOGICAL UNIT RESET of the SRB's LUN.
    ResetLun,
    /// Complete at once with this `SRB_STATUS_*`.
    Complete(u8),
}

/// Decides what an SRB asks for:
/// - `EXECUTE_SCSI` to target 0 with a CDB of 1 to 16 bytes and one data direction
///   (or no data) is sent to the target; another target does not exist
///   (`SELECTION_TIMEOUT`); `SRB_FLAGS_UNSPECIFIED_DIRECTION` with data cannot be
///   sent (SRP needs the direction), nor can a CDB beyond 16 bytes (`INVALID_REQUEST`);
/// - `RESET_LOGICAL_UNIT` and `RESET_DEVICE` reset the SRB's LUN (the target has no
///   target reset of its own in SRP; the device is its LUNs);
/// - the rest are answered here ([`answered_here`]).
pub fn classify(srb: &SrbFields) -> Action {
    match srb.function {
        SRB_FUNCTION_EXECUTE_SCSI | SRB_FUNCTION_RESET_LOGICAL_UNIT | SRB_FUNCTION_RESET_DEVICE
            if srb.path_id != 0 =>
        {
            Action::Complete(SRB_STATUS_INVALID_PATH_ID)
        }
        SRB_FUNCTION_EXECUTE_SCSI | SRB_FUNCTION_RESET_LOGICAL_UNIT | SRB_FUNCTION_RESET_DEVICE
            if srb.target != TARGET_ID =>
        {
            Action::Complete(SRB_STATUS_SELECTION_TIMEOUT)
        }
        SRB_FUNCTION_EXECUTE_SCSI => {
            if srb.cdb_len == 0 || usize::from(srb.cdb_len) > srb.cdb.len() {
                return Action::Complete(SRB_STATUS_INVALID_REQUEST);
            }
            let both = SRB_FLAGS_DATA_IN | SRB_FLAGS_DATA_OUT;
            let dir = match (srb.transfer_len, srb.flags & both) {
                (0, _) | (_, SRB_FLAGS_NO_DATA_TRANSFER) => DataDir::None,
                (_, SRB_FLAGS_DATA_IN) => DataDir::In,
                (_, SRB_FLAGS_DATA_OUT) => DataDir::Out,
                _ => return Action::Complete(SRB_STATUS_INVALID_REQUEST),
            };
            Action::Execute { dir }
        }
        SRB_FUNCTION_RESET_LOGICAL_UNIT | SRB_FUNCTION_RESET_DEVICE => Action::ResetLun,
        other => Action::Complete(answered_here(other)),
    }
}

/// The status of an SRB the miniport answers without the target: a bus reset has
/// nothing of its own to reset (commands in flight end normally or when the channel
/// is rebuilt, never earlier: their buffers may still be written by the target);
/// flushes and shutdowns succeed (the target acknowledges a write only once it is on
/// its disk, and SYNCHRONIZE CACHE reaches it as a SCSI command); an abort finds no
/// command it can end safely (the port then escalates to a reset); freeing the dump
/// pointers frees nothing (the hand-over lives in the device extension,
/// [`dump_pointers`]); anything else is not a request this miniport serves (a
/// `DUMP_POINTERS` reaching here comes to an instance that keeps no hand-over).
pub fn answered_here(function: u8) -> u8 {
    match function {
        SRB_FUNCTION_RESET_BUS
        | SRB_FUNCTION_FLUSH
        | SRB_FUNCTION_SHUTDOWN
        | SRB_FUNCTION_FREE_DUMP_POINTERS => SRB_STATUS_SUCCESS,
        SRB_FUNCTION_ABORT_COMMAND => SRB_STATUS_ABORT_FAILED,
        _ => SRB_STATUS_INVALID_REQUEST,
    }
}

/// Whether `SRB_FUNCTION_DUMP_POINTERS` can be answered with the instance's hand-over
/// (reference/windows-side.md §3.3): only an instance that keeps one (storport's normal
/// instance: `has_record`), and only into a buffer that holds `MINIPORT_DUMP_POINTERS`
/// at least up to `MiniportPrivateDumpData` ([`DUMP_POINTERS_MIN_LEN`]). `SUCCESS`
/// means: fill the buffer, then complete with it; anything else completes the SRB with
/// that status and leaves the buffer alone.
pub fn dump_pointers(has_record: bool, buffer: bool, transfer_len: u32) -> u8 {
    let fits = usize::try_from(transfer_len).is_ok_and(|n| n >= DUMP_POINTERS_MIN_LEN);
    if has_record && buffer && fits {
        SRB_STATUS_SUCCESS
    } else {
        SRB_STATUS_INVALID_REQUEST
    }
}

impl SrbFields {
    /// The initiator's request for an [`Action::Execute`] SRB.
    pub fn request(&self, user: u32, dir: DataDir) -> Request<'_> {
        let cdb = self
            .cdb
            .get(..usize::from(self.cdb_len))
            .unwrap_or(&self.cdb);
        Request {
            user,
            target: self.target,
            lun: self.lun,
            cdb,
            dir,
            transfer_len: if dir == DataDir::None {
                0
            } else {
                self.transfer_len
            },
        }
    }
}

/// What is written back into a finished SRB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrbCompletion {
    /// `SrbStatus` (with `SRB_STATUS_AUTOSENSE_VALID` when sense was copied).
    pub srb_status: u8,
    /// `ScsiStatus`.
    pub scsi_status: u8,
    /// `DataTransferLength`: the bytes that moved.
    pub transferred: u32,
    /// Sense bytes to copy into `SenseInfoBuffer` (and the new
    /// `SenseInfoBufferLength`); 0 when none are.
    pub sense_len: u8,
}

/// The SRB's end from the initiator's [`Outcome`], for an SRB that asked for
/// `transfer_len` bytes and has a sense buffer of `sense_capacity` bytes (0 when it
/// has none). Sense is copied (and `AUTOSENSE_VALID` set) only when the SRB allows
/// autosense and has room; it is cut to the buffer, as SPC allows (the ADDITIONAL
/// SENSE LENGTH byte still tells the class driver how much there was).
pub fn completion(
    outcome: &Outcome,
    transfer_len: u32,
    flags: u32,
    sense_capacity: u8,
) -> SrbCompletion {
    let wants_sense = flags & SRB_FLAGS_DISABLE_AUTOSENSE == 0;
    let sense_len = if wants_sense {
        outcome.sense_len.min(sense_capacity)
    } else {
        0
    };
    let mut srb_status = outcome.srb_status & !SRB_STATUS_AUTOSENSE_VALID;
    if sense_len > 0 {
        srb_status |= SRB_STATUS_AUTOSENSE_VALID;
    }
    SrbCompletion {
        srb_status,
        scsi_status: outcome.scsi_status,
        transferred: outcome.transferred.min(transfer_len),
        sense_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initiator::request::SENSE_MAX;

    fn read10() -> SrbFields {
        SrbFields {
            function: SRB_FUNCTION_EXECUTE_SCSI,
            path_id: 0,
            target: 0,
            lun: 1,
            cdb_len: 10,
            cdb: [
                0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE,
            ],
            flags: SRB_FLAGS_DATA_IN | SRB_FLAGS_QUEUE_ACTION_ENABLE,
            transfer_len: 4096,
        }
    }

    #[test]
    fn scsi_commands_become_requests_with_their_direction() {
        let srb = read10();
        assert_eq!(classify(&srb), Action::Execute { dir: DataDir::In });
        let req = srb.request(7, DataDir::In);
        assert_eq!(req.cdb, &srb.cdb[..10]);
        assert_eq!((req.user, req.lun, req.transfer_len), (7, 1, 4096));

        let write = SrbFields {
            flags: SRB_FLAGS_DATA_OUT,
            ..srb
        };
        assert_eq!(classify(&write), Action::Execute { dir: DataDir::Out });

        // Direction bits without a length, or no bits with one: nothing moves.
        for s in [
            SrbFields {
                transfer_len: 0,
                ..srb
            },
            SrbFields {
                flags: SRB_FLAGS_NO_DATA_TRANSFER,
                ..srb
            },
            SrbFields {
                flags: SRB_FLAGS_UNSPECIFIED_DIRECTION,
                transfer_len: 0,
                ..srb
            },
        ] {
            assert_eq!(classify(&s), Action::Execute { dir: DataDir::None });
            assert_eq!(s.request(1, DataDir::None).transfer_len, 0);
        }
    }

    #[test]
    fn requests_that_cannot_be_sent_are_answered() {
        let srb = read10();
        for (s, status) in [
            (
                SrbFields {
                    flags: SRB_FLAGS_UNSPECIFIED_DIRECTION,
                    ..srb
                },
                SRB_STATUS_INVALID_REQUEST,
            ),
            (SrbFields { cdb_len: 0, ..srb }, SRB_STATUS_INVALID_REQUEST),
            (SrbFields { cdb_len: 17, ..srb }, SRB_STATUS_INVALID_REQUEST),
            (SrbFields { target: 1, ..srb }, SRB_STATUS_SELECTION_TIMEOUT),
            (SrbFields { path_id: 1, ..srb }, SRB_STATUS_INVALID_PATH_ID),
            (
                SrbFields {
                    function: SRB_FUNCTION_RESET_LOGICAL_UNIT,
                    target: 3,
                    ..srb
                },
                SRB_STATUS_SELECTION_TIMEOUT,
            ),
        ] {
            assert_eq!(classify(&s), Action::Complete(status), "{s:?}");
        }
    }

    #[test]
    fn resets_and_the_rest() {
        let srb = read10();
        for f in [SRB_FUNCTION_RESET_LOGICAL_UNIT, SRB_FUNCTION_RESET_DEVICE] {
            assert_eq!(
                classify(&SrbFields { function: f, ..srb }),
                Action::ResetLun
            );
        }
        for (f, status) in [
            (SRB_FUNCTION_RESET_BUS, SRB_STATUS_SUCCESS),
            (SRB_FUNCTION_FLUSH, SRB_STATUS_SUCCESS),
            (SRB_FUNCTION_SHUTDOWN, SRB_STATUS_SUCCESS),
            (SRB_FUNCTION_ABORT_COMMAND, SRB_STATUS_ABORT_FAILED),
            (SRB_FUNCTION_IO_CONTROL, SRB_STATUS_INVALID_REQUEST),
            (SRB_FUNCTION_DUMP_POINTERS, SRB_STATUS_INVALID_REQUEST),
            (SRB_FUNCTION_FREE_DUMP_POINTERS, SRB_STATUS_SUCCESS),
            (0xEE, SRB_STATUS_INVALID_REQUEST),
        ] {
            assert_eq!(
                classify(&SrbFields { function: f, ..srb }),
                Action::Complete(status),
                "function {f:#x}"
            );
        }
    }

    #[test]
    fn dump_pointers_are_given_only_by_an_instance_with_a_record_into_a_buffer_that_fits() {
        let whole = core::mem::size_of::<MINIPORT_DUMP_POINTERS>() as u32;
        let least = DUMP_POINTERS_MIN_LEN as u32;
        assert_eq!(dump_pointers(true, true, whole), SRB_STATUS_SUCCESS);
        assert_eq!(dump_pointers(true, true, least), SRB_STATUS_SUCCESS);
        for (record, buffer, len) in [
            (true, true, least - 1),
            (true, false, whole),
            (false, true, whole),
            (true, true, 0),
        ] {
            assert_eq!(
                dump_pointers(record, buffer, len),
                SRB_STATUS_INVALID_REQUEST,
                "{record} {buffer} {len}"
            );
        }
    }

    fn check_condition(sense_len: u8) -> Outcome {
        let mut o = Outcome::status(SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
        o.scsi_status = 0x02;
        o.sense_len = sense_len;
        for (i, b) in o.sense.iter_mut().enumerate().take(usize::from(sense_len)) {
            *b = i as u8;
        }
        o
    }

    #[test]
    fn sense_is_copied_within_the_buffer_and_only_when_allowed() {
        let o = check_condition(18);
        let c = completion(&o, 512, SRB_FLAGS_DATA_IN, 32);
        assert_eq!(
            c,
            SrbCompletion {
                srb_status: SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID,
                scsi_status: 0x02,
                transferred: 0,
                sense_len: 18
            }
        );
        assert_eq!(
            completion(&o, 512, 0, 14).sense_len,
            14,
            "cut to the buffer"
        );
        for (flags, capacity) in [(SRB_FLAGS_DISABLE_AUTOSENSE, 32), (0, 0)] {
            let c = completion(&o, 512, flags, capacity);
            assert_eq!((c.srb_status, c.sense_len), (SRB_STATUS_ERROR, 0));
        }
        let big = check_condition(SENSE_MAX as u8);
        assert_eq!(completion(&big, 0, 0, 255).sense_len, SENSE_MAX as u8);
    }

    #[test]
    fn residuals_shorten_the_transfer_and_never_lengthen_it() {
        let mut o = Outcome::status(SRB_STATUS_DATA_OVERRUN);
        o.transferred = 36;
        let c = completion(&o, 255, SRB_FLAGS_DATA_IN, 18);
        assert_eq!(
            (c.srb_status, c.transferred, c.sense_len),
            (SRB_STATUS_DATA_OVERRUN, 36, 0)
        );
        o.transferred = 4096;
        assert_eq!(completion(&o, 512, 0, 0).transferred, 512);
        let ok = Outcome {
            transferred: 4096,
            ..Outcome::status(SRB_STATUS_SUCCESS)
        };
        assert_eq!(completion(&ok, 4096, 0, 18).srb_status, SRB_STATUS_SUCCESS);
    }
}
