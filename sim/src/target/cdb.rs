//! Command descriptor blocks: operation codes and a parser that turns any byte string
//! into a [`Command`] or the sense data that rejects it. It never panics: the CDB is
//! copied into a zero-padded 16-byte array after its length is checked, and every
//! field is read at a constant index of that array.
//!
//! Operation codes: SPC-4 and SBC-3, the command summary tables (repeated in SPC-4
//! Annex D, "Operation codes"). CDB layouts are cited at each command. Reserved bits
//! are ignored (old initiators put the LUN in bits 7–5 of byte 1).

use super::sense::{Asc, FieldPointer, Sense};

/// Operation codes (SPC-4 and SBC-3 command summaries).
pub mod op {
    /// TEST UNIT READY (SPC-4).
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// REQUEST SENSE (SPC-4).
    pub const REQUEST_SENSE: u8 = 0x03;
    /// INQUIRY (SPC-4).
    pub const INQUIRY: u8 = 0x12;
    /// MODE SENSE (6) (SPC-4).
    pub const MODE_SENSE_6: u8 = 0x1A;
    /// READ CAPACITY (10) (SBC-3).
    pub const READ_CAPACITY_10: u8 = 0x25;
    /// READ (10) (SBC-3).
    pub const READ_10: u8 = 0x28;
    /// WRITE (10) (SBC-3).
    pub const WRITE_10: u8 = 0x2A;
    /// SYNCHRONIZE CACHE (10) (SBC-3).
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    /// MODE SENSE (10) (SPC-4).
    pub const MODE_SENSE_10: u8 = 0x5A;
    /// READ (16) (SBC-3).
    pub const READ_16: u8 = 0x88;
    /// WRITE (16) (SBC-3).
    pub const WRITE_16: u8 = 0x8A;
    /// SERVICE ACTION IN (16) (SPC-4); READ CAPACITY (16) is its service action 10h.
    pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
    /// READ CAPACITY (16): service action of SERVICE ACTION IN (16) (SBC-3).
    pub const SA_READ_CAPACITY_16: u8 = 0x10;
    /// REPORT LUNS (SPC-4).
    pub const REPORT_LUNS: u8 = 0xA0;
}

/// The PC field of MODE SENSE (SPC-4, "MODE SENSE(6) command", page control values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageControl {
    /// 00b: current values.
    Current,
    /// 01b: changeable values (a mask).
    Changeable,
    /// 10b: default values.
    Default,
}

/// A parsed command. Lengths are as the CDB gives them; ranges are checked when the
/// command runs against a logical unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// TEST UNIT READY.
    TestUnitReady,
    /// REQUEST SENSE (fixed format only).
    RequestSense {
        /// ALLOCATION LENGTH.
        alloc: u32,
    },
    /// INQUIRY: standard data (`evpd` false, `page` 0) or a VPD page.
    Inquiry {
        /// EVPD bit.
        evpd: bool,
        /// PAGE CODE.
        page: u8,
        /// ALLOCATION LENGTH.
        alloc: u32,
    },
    /// MODE SENSE (6) or (10).
    ModeSense {
        /// The 10-byte form (its header is 8 bytes, not 4).
        ten: bool,
        /// DBD: no block descriptors.
        dbd: bool,
        /// LLBAA (10-byte form only): long LBA block descriptor allowed.
        llbaa: bool,
        /// PC.
        pc: PageControl,
        /// PAGE CODE.
        page: u8,
        /// SUBPAGE CODE.
        subpage: u8,
        /// ALLOCATION LENGTH.
        alloc: u32,
    },
    /// READ CAPACITY (10).
    ReadCapacity10,
    /// READ CAPACITY (16).
    ReadCapacity16 {
        /// ALLOCATION LENGTH.
        alloc: u32,
    },
    /// READ (10) or (16).
    Read {
        /// First LBA.
        lba: u64,
        /// TRANSFER LENGTH in logical blocks (0 transfers nothing, not an error).
        blocks: u32,
    },
    /// WRITE (10) or (16).
    Write {
        /// First LBA.
        lba: u64,
        /// TRANSFER LENGTH in logical blocks (0 transfers nothing, not an error).
        blocks: u32,
    },
    /// SYNCHRONIZE CACHE (10).
    SynchronizeCache {
        /// First LBA.
        lba: u64,
        /// NUMBER OF LOGICAL BLOCKS (0: through the last LBA).
        blocks: u32,
    },
    /// REPORT LUNS.
    ReportLuns {
        /// SELECT REPORT (00h, 01h or 02h).
        select: u8,
        /// ALLOCATION LENGTH.
        alloc: u32,
    },
}

/// The length of the CDB of a supported operation code, `None` for any other code.
pub fn cdb_len(opcode: u8) -> Option<usize> {
    match opcode {
        op::TEST_UNIT_READY | op::REQUEST_SENSE | op::INQUIRY | op::MODE_SENSE_6 => Some(6),
        op::READ_CAPACITY_10
        | op::READ_10
        | op::WRITE_10
        | op::SYNCHRONIZE_CACHE_10
        | op::MODE_SENSE_10 => Some(10),
        op::READ_16 | op::WRITE_16 | op::SERVICE_ACTION_IN_16 => Some(16),
        op::REPORT_LUNS => Some(12),
        _ => None,
    }
}

fn be16(b: [u8; 2]) -> u32 {
    u32::from(u16::from_be_bytes(b))
}

fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

fn be64(b: [u8; 8]) -> u64 {
    u64::from_be_bytes(b)
}

/// RDPROTECT / WRPROTECT (byte 1, bits 7–5) must be zero: our logical units carry no
/// protection information (SBC-3, READ (10) and WRITE (10): a non-zero value without
/// protection information is INVALID FIELD IN CDB).
fn no_protection(c: &[u8; 16]) -> Result<(), Sense> {
    if c[1] & 0xE0 != 0 {
        return Err(Sense::invalid_field(1, Some(7)));
    }
    Ok(())
}

/// Parses `cdb`. Errors are the sense data the command ends with:
/// an unknown operation code (or an empty CDB) → INVALID COMMAND OPERATION CODE;
/// a CDB shorter than its operation code needs → INVALID FIELD IN CDB;
/// NACA set in the CONTROL byte → INVALID FIELD IN CDB (we do not support ACA: SAM-5,
/// "Control byte"); any invalid field of the command → INVALID FIELD IN CDB with a
/// field pointer.
pub fn parse(cdb: &[u8]) -> Result<Command, Sense> {
    let Some(&opcode) = cdb.first() else {
        return Err(Sense::illegal(Asc::INVALID_COMMAND_OPERATION_CODE));
    };
    let Some(len) = cdb_len(opcode) else {
        return Err(Sense::illegal(Asc::INVALID_COMMAND_OPERATION_CODE));
    };
    let Some(bytes) = cdb.get(..len) else {
        return Err(Sense::illegal(Asc::INVALID_FIELD_IN_CDB));
    };
    let mut c = [0u8; 16];
    for (d, s) in c.iter_mut().zip(bytes) {
        *d = *s;
    }
    // CONTROL is the last byte of every CDB; NACA is its bit 2.
    let control = bytes.last().copied().unwrap_or(0);
    if control & 0x04 != 0 {
        return Err(Sense::invalid_field((len - 1) as u16, Some(2)));
    }
    match opcode {
        // SPC-4, "TEST UNIT READY command": no fields.
        op::TEST_UNIT_READY => Ok(Command::TestUnitReady),
        // SPC-4, "REQUEST SENSE command": DESC (byte 1 bit 0), ALLOCATION LENGTH
        // (byte 4). We return fixed format only, so DESC set is an invalid field.
        op::REQUEST_SENSE => {
            if c[1] & 0x01 != 0 {
                return Err(Sense::invalid_field(1, Some(0)));
            }
            Ok(Command::RequestSense {
                alloc: u32::from(c[4]),
            })
        }
        // SPC-4, "INQUIRY command": EVPD (byte 1 bit 0), PAGE CODE (byte 2),
        // ALLOCATION LENGTH (bytes 3–4). CMDDT (byte 1 bit 1) is obsolete: rejected.
        // A page code without EVPD is an invalid field.
        op::INQUIRY => {
            if c[1] & 0x02 != 0 {
                return Err(Sense::invalid_field(1, Some(1)));
            }
            let evpd = c[1] & 0x01 != 0;
            if !evpd && c[2] != 0 {
                return Err(Sense::invalid_field(2, None));
            }
            Ok(Command::Inquiry {
                evpd,
                page: c[2],
                alloc: be16([c[3], c[4]]),
            })
        }
        // SPC-4, "MODE SENSE(6) command": DBD (byte 1 bit 3), PC (byte 2 bits 7–6),
        // PAGE CODE (byte 2 bits 5–0), SUBPAGE CODE (byte 3), ALLOCATION LENGTH
        // (byte 4). "MODE SENSE(10) command": LLBAA (byte 1 bit 4), DBD, PC, page and
        // subpage as above, ALLOCATION LENGTH (bytes 7–8).
        op::MODE_SENSE_6 | op::MODE_SENSE_10 => {
            let ten = opcode == op::MODE_SENSE_10;
            let pc = match c[2] >> 6 {
                0 => PageControl::Current,
                1 => PageControl::Changeable,
                2 => PageControl::Default,
                // Saved values: we cannot save parameters (SPC-4, "MODE SENSE(6)").
                _ => {
                    return Err(Sense {
                        field: Some(FieldPointer {
                            byte: 2,
                            bit: Some(7),
                        }),
                        ..Sense::illegal(Asc::SAVING_PARAMETERS_NOT_SUPPORTED)
                    });
                }
            };
            Ok(Command::ModeSense {
                ten,
                dbd: c[1] & 0x08 != 0,
                llbaa: ten && c[1] & 0x10 != 0,
                pc,
                page: c[2] & 0x3F,
                subpage: c[3],
                alloc: if ten {
                    be16([c[7], c[8]])
                } else {
                    u32::from(c[4])
                },
            })
        }
        // SBC-3, "READ CAPACITY (10) command": LOGICAL BLOCK ADDRESS (bytes 2–5) and
        // PMI (byte 8 bit 0) are obsolete; PMI zero with a non-zero LBA is an invalid
        // field.
        op::READ_CAPACITY_10 => {
            if c[8] & 0x01 == 0 && c[2..6] != [0; 4] {
                return Err(Sense::invalid_field(2, None));
            }
            Ok(Command::ReadCapacity10)
        }
        // SPC-4, "SERVICE ACTION IN(16)"; SBC-3, "READ CAPACITY (16) command":
        // SERVICE ACTION (byte 1 bits 4–0) 10h, LBA (bytes 2–9, obsolete), ALLOCATION
        // LENGTH (bytes 10–13), PMI (byte 14 bit 0, obsolete). An unsupported service
        // action is an invalid field.
        op::SERVICE_ACTION_IN_16 => {
            if c[1] & 0x1F != op::SA_READ_CAPACITY_16 {
                return Err(Sense::invalid_field(1, Some(4)));
            }
            if c[14] & 0x01 == 0 && c[2..10] != [0; 8] {
                return Err(Sense::invalid_field(2, None));
            }
            Ok(Command::ReadCapacity16 {
                alloc: be32([c[10], c[11], c[12], c[13]]),
            })
        }
        // SBC-3, "READ (10) command" / "WRITE (10) command": RDPROTECT/WRPROTECT
        // (byte 1 bits 7–5), DPO and FUA (byte 1, honoured trivially: every write is
        // synced), LBA (bytes 2–5), TRANSFER LENGTH (bytes 7–8).
        op::READ_10 | op::WRITE_10 => {
            no_protection(&c)?;
            let lba = u64::from(be32([c[2], c[3], c[4], c[5]]));
            let blocks = be16([c[7], c[8]]);
            Ok(if opcode == op::READ_10 {
                Command::Read { lba, blocks }
            } else {
                Command::Write { lba, blocks }
            })
        }
        // SBC-3, "READ (16) command" / "WRITE (16) command": as the 10-byte forms with
        // LBA in bytes 2–9 and TRANSFER LENGTH in bytes 10–13.
        op::READ_16 | op::WRITE_16 => {
            no_protection(&c)?;
            let lba = be64([c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]]);
            let blocks = be32([c[10], c[11], c[12], c[13]]);
            Ok(if opcode == op::READ_16 {
                Command::Read { lba, blocks }
            } else {
                Command::Write { lba, blocks }
            })
        }
        // SBC-3, "SYNCHRONIZE CACHE (10) command": IMMED (byte 1 bit 1; we always
        // complete after the data is stable), LBA (bytes 2–5), NUMBER OF LOGICAL
        // BLOCKS (bytes 7–8).
        op::SYNCHRONIZE_CACHE_10 => Ok(Command::SynchronizeCache {
            lba: u64::from(be32([c[2], c[3], c[4], c[5]])),
            blocks: be16([c[7], c[8]]),
        }),
        // SPC-4, "REPORT LUNS command": SELECT REPORT (byte 2), ALLOCATION LENGTH
        // (bytes 6–9, less than 4 is an invalid field).
        op::REPORT_LUNS => {
            if c[2] > 0x02 {
                return Err(Sense::invalid_field(2, None));
            }
            let alloc = be32([c[6], c[7], c[8], c[9]]);
            if alloc < 4 {
                return Err(Sense::invalid_field(6, None));
            }
            Ok(Command::ReportLuns {
                select: c[2],
                alloc,
            })
        }
        _ => Err(Sense::illegal(Asc::INVALID_COMMAND_OPERATION_CODE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::sense::SenseKey;

    #[test]
    fn read_10_fields() {
        let cdb = [0x28, 0x08, 0x01, 0x02, 0x03, 0x04, 0xA5, 0x00, 0x10, 0x00];
        assert_eq!(
            parse(&cdb),
            Ok(Command::Read {
                lba: 0x0102_0304,
                blocks: 16
            })
        );
    }

    #[test]
    fn write_16_fields() {
        let mut cdb = [0xA5u8; 16];
        cdb[0] = 0x8A;
        cdb[1] = 0x18; // DPO | FUA, no WRPROTECT
        cdb[2..10].copy_from_slice(&0x0000_0400_0000_0001u64.to_be_bytes());
        cdb[10..14].copy_from_slice(&7u32.to_be_bytes());
        cdb[15] = 0;
        assert_eq!(
            parse(&cdb),
            Ok(Command::Write {
                lba: 0x0000_0400_0000_0001,
                blocks: 7
            })
        );
    }

    #[test]
    fn protection_fields_are_refused() {
        let cdb = [0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(parse(&cdb), Err(Sense::invalid_field(1, Some(7))));
    }

    #[test]
    fn inquiry_allocation_is_two_bytes() {
        assert_eq!(
            parse(&[0x12, 0x01, 0x83, 0x01, 0x00, 0x00]),
            Ok(Command::Inquiry {
                evpd: true,
                page: 0x83,
                alloc: 256
            })
        );
        assert_eq!(
            parse(&[0x12, 0x00, 0x80, 0x00, 0xFF, 0x00]),
            Err(Sense::invalid_field(2, None))
        );
    }

    #[test]
    fn mode_sense_fields() {
        assert_eq!(
            parse(&[0x1A, 0x08, 0x48, 0x00, 0xC0, 0x00]),
            Ok(Command::ModeSense {
                ten: false,
                dbd: true,
                llbaa: false,
                pc: PageControl::Changeable,
                page: 0x08,
                subpage: 0,
                alloc: 0xC0
            })
        );
        assert_eq!(
            parse(&[0x5A, 0x10, 0xBF, 0xFF, 0, 0, 0, 0x02, 0x00, 0]),
            Ok(Command::ModeSense {
                ten: true,
                dbd: false,
                llbaa: true,
                pc: PageControl::Default,
                page: 0x3F,
                subpage: 0xFF,
                alloc: 0x200
            })
        );
        let saved = parse(&[0x1A, 0, 0xC8, 0, 0xFF, 0]).unwrap_err();
        assert_eq!(saved.asc, Asc::SAVING_PARAMETERS_NOT_SUPPORTED);
    }

    #[test]
    fn read_capacity_forms() {
        assert_eq!(
            parse(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Ok(Command::ReadCapacity10)
        );
        assert_eq!(
            parse(&[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(Sense::invalid_field(2, None))
        );
        assert_eq!(
            parse(&[0x25, 0, 0, 0, 0, 1, 0, 0, 1, 0]),
            Ok(Command::ReadCapacity10)
        );
        let mut rc16 = [0u8; 16];
        rc16[0] = 0x9E;
        rc16[1] = 0x10;
        rc16[13] = 32;
        assert_eq!(parse(&rc16), Ok(Command::ReadCapacity16 { alloc: 32 }));
        rc16[1] = 0x11;
        assert_eq!(parse(&rc16), Err(Sense::invalid_field(1, Some(4))));
    }

    #[test]
    fn report_luns_limits() {
        let mut cdb = [0u8; 12];
        cdb[0] = 0xA0;
        cdb[9] = 3;
        assert_eq!(parse(&cdb), Err(Sense::invalid_field(6, None)));
        cdb[9] = 16;
        cdb[2] = 2;
        assert_eq!(
            parse(&cdb),
            Ok(Command::ReportLuns {
                select: 2,
                alloc: 16
            })
        );
        cdb[2] = 3;
        assert_eq!(parse(&cdb), Err(Sense::invalid_field(2, None)));
    }

    #[test]
    fn unknown_short_and_naca() {
        let unknown = parse(&[0x08, 0, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(unknown.key, SenseKey::IllegalRequest);
        assert_eq!(unknown.asc, Asc::INVALID_COMMAND_OPERATION_CODE);
        assert_eq!(
            parse(&[]).unwrap_err().asc,
            Asc::INVALID_COMMAND_OPERATION_CODE
        );
        assert_eq!(
            parse(&[0x28, 0, 0, 0]).unwrap_err(),
            Sense::illegal(Asc::INVALID_FIELD_IN_CDB)
        );
        assert_eq!(
            parse(&[0x00, 0, 0, 0, 0, 0x04]),
            Err(Sense::invalid_field(5, Some(2)))
        );
        // Bytes past the CDB length are not part of the command.
        assert_eq!(
            parse(&[0x00, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Ok(Command::TestUnitReady)
        );
    }

    #[test]
    fn request_sense_desc_is_refused() {
        assert_eq!(
            parse(&[0x03, 0, 0, 0, 18, 0]),
            Ok(Command::RequestSense { alloc: 18 })
        );
        assert_eq!(
            parse(&[0x03, 1, 0, 0, 18, 0]),
            Err(Sense::invalid_field(1, Some(0)))
        );
    }
}
