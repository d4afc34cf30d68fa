//! What the port driver asks of the initiator (a SCSI request, whatever SRB shape it
//! arrived in) and what it gets back: the SRB status, SCSI status, autosense and the
//! bytes transferred, mapped from the SRP_RSP (SRP r16a §6.9; reference §2.3) the way
//! Windows class drivers expect (windows-side.md: SRB status and autosense).

use fabboot_hca::bytes;
use fabboot_srp::cmd::DataDir;

use crate::port::abi::{
    SRB_STATUS_AUTOSENSE_VALID, SRB_STATUS_DATA_OVERRUN, SRB_STATUS_ERROR, SRB_STATUS_SUCCESS,
};

/// Longest sense data kept (SPC: the ADDITIONAL SENSE LENGTH byte allows 8 + 244;
/// 252 is the SRP and Linux SCSI maximum).
pub const SENSE_MAX: usize = 252;

/// SCSI status GOOD.
pub const SCSI_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub const SCSI_CHECK_CONDITION: u8 = 0x02;

/// One physically contiguous piece of a request's data buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Bus address of the first byte.
    pub phys: u64,
    /// Bytes.
    pub len: u32,
}

/// A SCSI request as the port driver hands it over (an SRB's addressing, CDB and data
/// buffer; the data buffer arrives separately as [`Segment`]s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The caller's handle for the request, returned with its [`Outcome`]. Values
    /// with bit 31 set are reserved for the initiator's own commands.
    pub user: u32,
    /// SRB TargetId: the initiator presents one SRP target as target 0.
    pub target: u8,
    /// SRB Lun: an index into the target's REPORT LUNS list.
    pub lun: u8,
    /// The CDB (at most 16 bytes).
    pub cdb: &'a [u8],
    /// Data direction.
    pub dir: DataDir,
    /// Bytes of data the request moves (SRB DataTransferLength).
    pub transfer_len: u32,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// SRB_STATUS_* (with SRB_STATUS_AUTOSENSE_VALID when `sense` holds data).
    pub srb_status: u8,
    /// SCSI status byte from the target (0 when no SRP_RSP arrived).
    pub scsi_status: u8,
    /// Bytes actually transferred (the SRB's DataTransferLength on return).
    pub transferred: u32,
    /// Valid bytes of `sense`.
    pub sense_len: u8,
    /// Sense data as the target sent it (autosense).
    pub sense: [u8; SENSE_MAX],
}

impl Outcome {
    /// A request that ended without an SRP_RSP: only an SRB status.
    pub const fn status(srb_status: u8) -> Outcome {
        Outcome {
            srb_status,
            scsi_status: 0,
            transferred: 0,
            sense_len: 0,
            sense: [0; SENSE_MAX],
        }
    }

    /// The sense bytes.
    pub fn sense(&self) -> &[u8] {
        self.sense.get(..usize::from(self.sense_len)).unwrap_or(&[])
    }

    /// The SRB status without the flag bits.
    pub const fn srb_status_code(&self) -> u8 {
        self.srb_status & !SRB_STATUS_AUTOSENSE_VALID & 0x3F
    }
}

/// What an SRP_RSP said about one command, in the initiator's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// SCSI status.
    pub status: u8,
    /// Sense data (empty without SNSVALID).
    pub sense: &'a [u8],
    /// Residual of the command's data direction: positive for an underflow (bytes
    /// not transferred), negative for an overflow (bytes the target wanted to move
    /// beyond the buffer), zero otherwise.
    pub residual: i64,
}

/// Maps an SRP_RSP to an [`Outcome`] for a request of `transfer_len` bytes:
/// - GOOD with no residual: SUCCESS, all bytes transferred;
/// - GOOD with an underflow: DATA_OVERRUN with the bytes that did arrive (Windows
///   reports underruns with SRB_STATUS_DATA_OVERRUN and the shortened length);
/// - an overflow: DATA_OVERRUN, the whole buffer transferred;
/// - any other status: ERROR with the SCSI status, AUTOSENSE_VALID when sense came.
pub fn outcome(transfer_len: u32, rsp: &Response<'_>) -> Outcome {
    let transferred = match rsp.residual {
        r if r > 0 => u32::try_from(i64::from(transfer_len).saturating_sub(r)).unwrap_or(0),
        _ => transfer_len,
    };
    let mut out = Outcome {
        transferred,
        scsi_status: rsp.status,
        ..Outcome::status(SRB_STATUS_SUCCESS)
    };
    if rsp.status != SCSI_GOOD {
        out.srb_status = SRB_STATUS_ERROR;
        let n = bytes::copy_prefix(&mut out.sense, rsp.sense);
        if n > 0 {
            out.sense_len = n as u8;
            out.srb_status |= SRB_STATUS_AUTOSENSE_VALID;
        }
    } else if rsp.residual != 0 {
        out.srb_status = SRB_STATUS_DATA_OVERRUN;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_underflow_overflow_and_check_condition() {
        let good = outcome(
            4096,
            &Response {
                status: 0,
                sense: &[],
                residual: 0,
            },
        );
        assert_eq!(
            (good.srb_status, good.transferred),
            (SRB_STATUS_SUCCESS, 4096)
        );

        let short = outcome(
            255,
            &Response {
                status: 0,
                sense: &[],
                residual: 219,
            },
        );
        assert_eq!(
            (short.srb_status, short.transferred),
            (SRB_STATUS_DATA_OVERRUN, 36)
        );

        let over = outcome(
            512,
            &Response {
                status: 0,
                sense: &[],
                residual: -512,
            },
        );
        assert_eq!(
            (over.srb_status, over.transferred),
            (SRB_STATUS_DATA_OVERRUN, 512)
        );

        let sense = [
            0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0,
        ];
        let cc = outcome(
            512,
            &Response {
                status: SCSI_CHECK_CONDITION,
                sense: &sense,
                residual: 512,
            },
        );
        assert_eq!(cc.srb_status, SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
        assert_eq!(cc.srb_status_code(), SRB_STATUS_ERROR);
        assert_eq!(cc.sense(), &sense);
        assert_eq!(cc.scsi_status, SCSI_CHECK_CONDITION);
        assert_eq!(cc.transferred, 0);

        let busy = outcome(
            512,
            &Response {
                status: 0x08,
                sense: &[],
                residual: 0,
            },
        );
        assert_eq!((busy.srb_status, busy.sense_len), (SRB_STATUS_ERROR, 0));
    }
}
