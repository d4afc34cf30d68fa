//! The SCSI side of the simulated SRP target (DESIGN.md §5, part 4): logical units
//! that are direct access block devices over disk image files.
//!
//! The SRP side hands each SRP_CMD to [`Target::execute`] with the 8-byte LUN, the CDB,
//! the data-out bytes it has already fetched from the initiator and the number of
//! data-in bytes the initiator's descriptors can take; it gets back a [`Response`]
//! with the status, the sense data, the data-in bytes to RDMA-write (never more than
//! asked for) and the data-in and data-out residuals for SRP_RSP. A write is on
//! stable storage before `execute` returns.
//!
//! Facts come from the T10 standards, cited in each file by clause title (clause
//! numbers move between revisions): SAM-5 (status, LUNs, incorrect LUN selection,
//! residuals), SPC-4 (INQUIRY, VPD, MODE SENSE, REPORT LUNS, REQUEST SENSE, TEST UNIT
//! READY, sense data, operation codes and ASC/ASCQ assignments in Annex D) and SBC-3
//! (READ, WRITE, READ CAPACITY, SYNCHRONIZE CACHE, block descriptors, caching page).
//!
//! Files: [`disk`] (the image), [`cdb`] (operation codes, CDB parser), [`sense`]
//! (status, sense keys, ASC/ASCQ, fixed-format sense), [`inquiry`] (standard data and
//! VPD pages), [`mode`] (MODE SENSE data), [`lun`] (LUN encoding, REPORT LUNS data),
//! [`lu`] (a logical unit executing commands).

pub mod cdb;
pub mod disk;
pub mod inquiry;
pub mod lu;
pub mod lun;
pub mod mode;
pub mod sense;

use std::collections::BTreeMap;
use std::fmt;

pub use cdb::Command;
pub use disk::{Access, BlockSize, DiskError, Image};
pub use inquiry::{IdentityError, LuIdentity, Product};
pub use lu::LogicalUnit;
pub use lun::Lun;
pub use sense::{Asc, FieldPointer, Sense, SenseKey, Status};

/// One SCSI command as the transport delivers it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The CDB (SRP_CMD carries 16 bytes; bytes past the command's length are ignored).
    pub cdb: &'a [u8],
    /// How many data-in bytes the initiator's buffers can take (the expected data-in
    /// transfer length; 0 when the command has no data-in buffer).
    pub data_in_len: u32,
    /// The data-out bytes the initiator sent (empty when it sent none).
    pub data_out: &'a [u8],
}

/// How the bytes a command moved compare with the buffer the initiator described
/// (SAM-5, residuals; SRP_RSP's DIUNDER/DIOVER and DOUNDER/DOOVER). Counts saturate at
/// `u32::MAX`, the width of SRP's residual counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residual {
    /// The command moved exactly the buffer's length.
    None,
    /// The command moved fewer bytes than the buffer holds, by this many.
    Underflow(u32),
    /// The command had this many bytes more than the buffer holds (not moved).
    Overflow(u32),
}

impl Residual {
    /// `buffer`: the initiator's buffer length; `used`: what the command moves or
    /// needs.
    fn of(buffer: u64, used: u64) -> Residual {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        if used > buffer {
            Residual::Overflow(clamp(used - buffer))
        } else if used < buffer {
            Residual::Underflow(clamp(buffer - used))
        } else {
            Residual::None
        }
    }
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// GOOD or CHECK CONDITION.
    pub status: Status,
    /// The sense data with CHECK CONDITION, `None` with GOOD.
    pub sense: Option<Sense>,
    /// Data-in bytes for the initiator, at most [`Request::data_in_len`] and never more
    /// than the CDB's allocation length; empty with CHECK CONDITION.
    pub data_in: Vec<u8>,
    /// Data-in residual relative to [`Request::data_in_len`].
    pub data_in_residual: Residual,
    /// Data-out residual relative to the length of [`Request::data_out`].
    pub data_out_residual: Residual,
}

impl Response {
    /// The sense data in fixed format, as SRP_RSP carries it.
    pub fn sense_bytes(&self) -> Option<[u8; sense::FIXED_SENSE_LEN]> {
        self.sense.map(|s| s.to_fixed())
    }
}

/// What a command did, before it is measured against the initiator's buffers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Data-in bytes produced (possibly only the first `data_in_len` of them), or the
    /// sense data of a CHECK CONDITION.
    pub(crate) result: Result<Vec<u8>, Sense>,
    /// The command's full data-in length (bounded by its allocation length).
    pub(crate) data_in_len: u64,
    /// The data-out bytes the command needs (for a failure: needed and not supplied,
    /// else 0).
    pub(crate) data_out_len: u64,
}

impl Outcome {
    /// GOOD with parameter data cut to the allocation length (SPC-4, "Allocation
    /// length": the device server stops at the allocation length or at the end of the
    /// data, whichever comes first; zero is not an error).
    pub(crate) fn data(mut data: Vec<u8>, alloc: u32) -> Outcome {
        data.truncate(usize::try_from(alloc).unwrap_or(usize::MAX));
        Outcome {
            data_in_len: data.len() as u64,
            result: Ok(data),
            data_out_len: 0,
        }
    }

    /// CHECK CONDITION with `sense`, nothing moved.
    pub(crate) fn check(sense: Sense) -> Outcome {
        Outcome {
            result: Err(sense),
            data_in_len: 0,
            data_out_len: 0,
        }
    }

    /// [`Outcome::data`] or [`Outcome::check`].
    pub(crate) fn of(r: Result<Vec<u8>, Sense>, alloc: u32) -> Outcome {
        match r {
            Ok(d) => Outcome::data(d, alloc),
            Err(s) => Outcome::check(s),
        }
    }

    /// REPORT LUNS parameter data for SELECT REPORT `select`: 01h asks for the well
    /// known logical units only, of which we have none; 00h and 02h for all of `luns`.
    pub(crate) fn report_luns(select: u8, alloc: u32, luns: &[Lun]) -> Outcome {
        let listed: &[Lun] = if select == 0x01 { &[] } else { luns };
        Outcome::data(lun::report_luns_data(listed.iter().copied()), alloc)
    }

    /// The response, with data-in cut to what the initiator can take and residuals.
    fn finish(self, req: &Request<'_>) -> Response {
        let expected = u64::from(req.data_in_len);
        let data_out_residual = Residual::of(req.data_out.len() as u64, self.data_out_len);
        match self.result {
            Ok(mut data) => {
                data.truncate(usize::try_from(expected).unwrap_or(usize::MAX));
                Response {
                    status: Status::Good,
                    sense: None,
                    data_in: data,
                    data_in_residual: Residual::of(expected, self.data_in_len),
                    data_out_residual,
                }
            }
            Err(sense) => Response {
                status: Status::CheckCondition,
                sense: Some(sense),
                data_in: Vec::new(),
                data_in_residual: Residual::of(expected, 0),
                data_out_residual,
            },
        }
    }
}

/// Why a logical unit cannot be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// The LUN already has a logical unit.
    LunInUse(Lun),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::LunInUse(l) => write!(f, "LUN {} already in use", l.number()),
        }
    }
}

impl std::error::Error for TargetError {}

/// A SCSI target device: logical units by LUN.
#[derive(Debug)]
pub struct Target {
    product: Product,
    lus: BTreeMap<Lun, LogicalUnit>,
}

impl Target {
    /// A target without logical units; `product` is what INQUIRY reports at a LUN that
    /// has none.
    pub fn new(product: Product) -> Target {
        Target {
            product,
            lus: BTreeMap::new(),
        }
    }

    /// Adds `lu` at `lun`.
    pub fn add(&mut self, lun: Lun, lu: LogicalUnit) -> Result<(), TargetError> {
        if self.lus.contains_key(&lun) {
            return Err(TargetError::LunInUse(lun));
        }
        self.lus.insert(lun, lu);
        Ok(())
    }

    /// The logical unit at `lun`.
    pub fn lu(&self, lun: Lun) -> Option<&LogicalUnit> {
        self.lus.get(&lun)
    }

    /// The LUNs in use, ascending.
    pub fn luns(&self) -> impl Iterator<Item = Lun> + '_ {
        self.lus.keys().copied()
    }

    /// Executes `req` for the 8-byte LUN `lun` (as in SRP_CMD).
    ///
    /// REPORT LUNS is answered at any LUN. At a LUN without a logical unit (or one we
    /// cannot decode), SAM-5 "Incorrect logical unit selection": INQUIRY returns data
    /// with PERIPHERAL QUALIFIER 011b and device type 1Fh, REQUEST SENSE returns
    /// LOGICAL UNIT NOT SUPPORTED as parameter data, and anything else ends with CHECK
    /// CONDITION, ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED.
    pub fn execute(&mut self, lun: [u8; 8], req: &Request<'_>) -> Response {
        let parsed = cdb::parse(req.cdb);
        let luns: Vec<Lun> = match parsed {
            Ok(Command::ReportLuns { .. }) => self.luns().collect(),
            _ => Vec::new(),
        };
        let outcome = match Lun::from_bytes(lun).and_then(|l| self.lus.get_mut(&l)) {
            Some(lu) => lu.execute(parsed, req.data_in_len, req.data_out, &luns),
            None => self.absent(parsed, req.cdb, &luns),
        };
        outcome.finish(req)
    }

    fn absent(&self, parsed: Result<Command, Sense>, cdb: &[u8], luns: &[Lun]) -> Outcome {
        let not_supported = Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED);
        match parsed {
            Ok(Command::Inquiry {
                evpd: false, alloc, ..
            }) => Outcome::data(
                inquiry::standard(inquiry::PERIPHERAL_NO_LUN, &self.product),
                alloc,
            ),
            Ok(Command::Inquiry {
                evpd: true,
                page,
                alloc,
            }) => Outcome::of(inquiry::vpd_page_no_lun(page), alloc),
            Ok(Command::RequestSense { alloc }) => {
                Outcome::data(not_supported.to_fixed().to_vec(), alloc)
            }
            Ok(Command::ReportLuns { select, alloc }) => Outcome::report_luns(select, alloc, luns),
            // A malformed INQUIRY, REQUEST SENSE or REPORT LUNS is rejected for what
            // is wrong with it.
            Err(sense)
                if matches!(
                    cdb.first(),
                    Some(&(cdb::op::INQUIRY | cdb::op::REQUEST_SENSE | cdb::op::REPORT_LUNS))
                ) =>
            {
                Outcome::check(sense)
            }
            _ => Outcome::check(not_supported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_arithmetic() {
        assert_eq!(Residual::of(10, 10), Residual::None);
        assert_eq!(Residual::of(10, 4), Residual::Underflow(6));
        assert_eq!(Residual::of(4, 10), Residual::Overflow(6));
        assert_eq!(Residual::of(0, 1 << 40), Residual::Overflow(u32::MAX));
    }

    fn req(cdb: &[u8], data_in_len: u32) -> Request<'_> {
        Request {
            cdb,
            data_in_len,
            data_out: &[],
        }
    }

    #[test]
    fn finish_cuts_and_measures() {
        let r = Outcome::data(vec![1, 2, 3, 4, 5, 6], 5).finish(&req(&[], 3));
        assert_eq!(r.data_in, [1, 2, 3]);
        assert_eq!(r.data_in_residual, Residual::Overflow(2));
        assert_eq!(r.status, Status::Good);
        let r = Outcome::data(vec![1, 2], 200).finish(&req(&[], 8));
        assert_eq!(r.data_in_residual, Residual::Underflow(6));
        let r = Outcome::check(Sense::none()).finish(&Request {
            cdb: &[],
            data_in_len: 9,
            data_out: &[0; 7],
        });
        assert_eq!(r.status, Status::CheckCondition);
        assert!(r.data_in.is_empty());
        assert_eq!(r.data_in_residual, Residual::Underflow(9));
        assert_eq!(r.data_out_residual, Residual::Underflow(7));
    }

    #[test]
    fn absent_lun_behaviour() {
        let mut t = Target::new(Product::simulated());
        let no = Lun::new(3).unwrap().to_bytes();
        let r = t.execute(no, &req(&[0x12, 0, 0, 0, 36, 0], 36));
        assert_eq!(r.status, Status::Good);
        assert_eq!(r.data_in[0], 0x7F);
        assert_eq!(r.data_in.len(), 36);
        let r = t.execute(no, &req(&[0x03, 0, 0, 0, 18, 0], 18));
        assert_eq!(r.status, Status::Good);
        assert_eq!((r.data_in[2], r.data_in[12]), (0x05, 0x25));
        let r = t.execute(no, &req(&[0x00, 0, 0, 0, 0, 0], 0));
        assert_eq!(
            r.sense,
            Some(Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED))
        );
        let r = t.execute(no, &req(&[0x12, 0, 5, 0, 36, 0], 36));
        assert_eq!(r.sense, Some(Sense::invalid_field(2, None)));
        // Undecodable LUN fields address nothing either.
        let r = t.execute([0xC0, 0, 0, 0, 0, 0, 0, 0], &req(&[0x00; 6], 0));
        assert_eq!(
            r.sense,
            Some(Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED))
        );
        let mut rl = [0u8; 12];
        rl[0] = 0xA0;
        rl[9] = 16;
        let r = t.execute(no, &req(&rl, 16));
        assert_eq!(r.data_in, [0; 8]);
        assert_eq!(r.data_in_residual, Residual::Underflow(8));
    }
}
