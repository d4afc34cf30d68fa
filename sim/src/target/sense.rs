//! Status codes and sense data.
//!
//! Status codes: SAM-5, "Status codes". Sense keys and additional sense codes: SPC-4,
//! "Sense key and additional sense code definitions" (the sense key table and the
//! ASC/ASCQ assignments, repeated in numeric order in SPC-4 Annex D). The layout we
//! return is the fixed format: SPC-4, "Fixed format sense data"; the field pointer
//! in its sense-key-specific bytes: SPC-4, "Field pointer sense key specific data".

/// The SCSI status of a completed command (SAM-5, "Status codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// GOOD (00h).
    Good,
    /// CHECK CONDITION (02h): sense data describes what went wrong.
    CheckCondition,
}

impl Status {
    /// The status byte as it goes on the wire (SRP_RSP's STATUS field).
    pub fn code(self) -> u8 {
        match self {
            Status::Good => 0x00,
            Status::CheckCondition => 0x02,
        }
    }
}

/// The sense keys this target reports (SPC-4, sense key table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenseKey {
    /// NO SENSE (0h).
    NoSense,
    /// MEDIUM ERROR (3h): the backing store failed a read or a write.
    MediumError,
    /// ILLEGAL REQUEST (5h): something in the command is wrong.
    IllegalRequest,
    /// DATA PROTECT (7h): a write to a write-protected logical unit.
    DataProtect,
}

impl SenseKey {
    /// The 4-bit code.
    pub fn code(self) -> u8 {
        match self {
            SenseKey::NoSense => 0x0,
            SenseKey::MediumError => 0x3,
            SenseKey::IllegalRequest => 0x5,
            SenseKey::DataProtect => 0x7,
        }
    }

    /// The key with this code, if it is one we use.
    pub fn from_code(code: u8) -> Option<SenseKey> {
        [
            SenseKey::NoSense,
            SenseKey::MediumError,
            SenseKey::IllegalRequest,
            SenseKey::DataProtect,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// An additional sense code and its qualifier (ASC, ASCQ), SPC-4 ASC/ASCQ assignments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asc(pub u8, pub u8);

impl Asc {
    /// NO ADDITIONAL SENSE INFORMATION (00h/00h).
    pub const NO_ADDITIONAL_SENSE: Asc = Asc(0x00, 0x00);
    /// WRITE ERROR (0Ch/00h).
    pub const WRITE_ERROR: Asc = Asc(0x0C, 0x00);
    /// INVALID FIELD IN COMMAND INFORMATION UNIT (0Eh/03h): here, data-out shorter than
    /// the command needs.
    pub const INVALID_FIELD_IN_COMMAND_IU: Asc = Asc(0x0E, 0x03);
    /// UNRECOVERED READ ERROR (11h/00h).
    pub const UNRECOVERED_READ_ERROR: Asc = Asc(0x11, 0x00);
    /// INVALID COMMAND OPERATION CODE (20h/00h).
    pub const INVALID_COMMAND_OPERATION_CODE: Asc = Asc(0x20, 0x00);
    /// LOGICAL BLOCK ADDRESS OUT OF RANGE (21h/00h).
    pub const LBA_OUT_OF_RANGE: Asc = Asc(0x21, 0x00);
    /// INVALID FIELD IN CDB (24h/00h).
    pub const INVALID_FIELD_IN_CDB: Asc = Asc(0x24, 0x00);
    /// LOGICAL UNIT NOT SUPPORTED (25h/00h).
    pub const LOGICAL_UNIT_NOT_SUPPORTED: Asc = Asc(0x25, 0x00);
    /// WRITE PROTECTED (27h/00h).
    pub const WRITE_PROTECTED: Asc = Asc(0x27, 0x00);
    /// SAVING PARAMETERS NOT SUPPORTED (39h/00h).
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Asc = Asc(0x39, 0x00);
}

/// Which CDB byte (and bit) an ILLEGAL REQUEST is about (SPC-4, "Field pointer sense
/// key specific data", with C/D set: the field is in the CDB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldPointer {
    /// The CDB byte holding the offending field (its most significant byte).
    pub byte: u16,
    /// The offending field's most significant bit in that byte, when it is not a
    /// whole byte.
    pub bit: Option<u8>,
}

/// The sense data of one condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    /// The sense key.
    pub key: SenseKey,
    /// ASC and ASCQ.
    pub asc: Asc,
    /// The offending CDB field, for INVALID FIELD IN CDB.
    pub field: Option<FieldPointer>,
}

/// Length of the fixed-format sense data we return: 18 bytes, ADDITIONAL SENSE LENGTH 10.
pub const FIXED_SENSE_LEN: usize = 18;

/// Response code of fixed-format sense data for a current error (SPC-4, "Sense data
/// response codes").
pub const RESPONSE_CODE_CURRENT_FIXED: u8 = 0x70;

impl Sense {
    /// A condition without a field pointer.
    pub fn new(key: SenseKey, asc: Asc) -> Sense {
        Sense {
            key,
            asc,
            field: None,
        }
    }

    /// ILLEGAL REQUEST, INVALID FIELD IN CDB pointing at `byte` (and `bit`).
    pub fn invalid_field(byte: u16, bit: Option<u8>) -> Sense {
        Sense {
            key: SenseKey::IllegalRequest,
            asc: Asc::INVALID_FIELD_IN_CDB,
            field: Some(FieldPointer { byte, bit }),
        }
    }

    /// ILLEGAL REQUEST with `asc` and no field pointer.
    pub fn illegal(asc: Asc) -> Sense {
        Sense::new(SenseKey::IllegalRequest, asc)
    }

    /// NO SENSE, NO ADDITIONAL SENSE INFORMATION: what REQUEST SENSE returns when
    /// nothing is pending.
    pub fn none() -> Sense {
        Sense::new(SenseKey::NoSense, Asc::NO_ADDITIONAL_SENSE)
    }

    /// Fixed-format sense data: response code 70h (current, INFORMATION not valid),
    /// sense key in byte 2, ADDITIONAL SENSE LENGTH 10 in byte 7, ASC/ASCQ in bytes
    /// 12–13, and for a field pointer SKSV | C/D (| BPV and BIT POINTER) in byte 15 and
    /// the FIELD POINTER in bytes 16–17.
    pub fn to_fixed(&self) -> [u8; FIXED_SENSE_LEN] {
        let mut s = [0u8; FIXED_SENSE_LEN];
        s[0] = RESPONSE_CODE_CURRENT_FIXED;
        s[2] = self.key.code() & 0x0F;
        s[7] = (FIXED_SENSE_LEN - 8) as u8;
        s[12] = self.asc.0;
        s[13] = self.asc.1;
        if let Some(f) = self.field {
            let (bpv, bit) = match f.bit {
                Some(b) => (0x08, b & 0x07),
                None => (0, 0),
            };
            s[15] = 0x80 | 0x40 | bpv | bit;
            let [hi, lo] = f.byte.to_be_bytes();
            s[16] = hi;
            s[17] = lo;
        }
        s
    }

    /// Reads fixed-format sense data back (current or deferred, 70h/71h); `None` when
    /// it is too short, another format, or carries a sense key we never report.
    pub fn from_fixed(bytes: &[u8]) -> Option<Sense> {
        let s: &[u8; FIXED_SENSE_LEN] = bytes.get(..FIXED_SENSE_LEN)?.try_into().ok()?;
        if s[0] & 0x7E != RESPONSE_CODE_CURRENT_FIXED {
            return None;
        }
        let key = SenseKey::from_code(s[2] & 0x0F)?;
        let field = (s[15] & 0xC0 == 0xC0).then(|| FieldPointer {
            byte: u16::from_be_bytes([s[16], s[17]]),
            bit: (s[15] & 0x08 != 0).then_some(s[15] & 0x07),
        });
        Some(Sense {
            key,
            asc: Asc(s[12], s[13]),
            field,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lba_out_of_range_in_fixed_format() {
        let s = Sense::illegal(Asc::LBA_OUT_OF_RANGE).to_fixed();
        assert_eq!(
            s,
            [
                0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn field_pointer_with_and_without_bit() {
        let s = Sense::invalid_field(2, None).to_fixed();
        assert_eq!(&s[12..], &[0x24, 0x00, 0, 0xC0, 0x00, 0x02]);
        let s = Sense::invalid_field(0x0102, Some(7)).to_fixed();
        assert_eq!(&s[12..], &[0x24, 0x00, 0, 0xCF, 0x01, 0x02]);
        let s = Sense::invalid_field(1, Some(0)).to_fixed();
        assert_eq!(s[15], 0xC8);
    }

    #[test]
    fn fixed_sense_round_trips() {
        for sense in [
            Sense::none(),
            Sense::new(SenseKey::MediumError, Asc::UNRECOVERED_READ_ERROR),
            Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED),
            Sense::invalid_field(9, Some(2)),
            Sense::invalid_field(300, None),
        ] {
            assert_eq!(Sense::from_fixed(&sense.to_fixed()), Some(sense));
        }
        assert_eq!(Sense::from_fixed(&[0x70; 17]), None);
        let mut descriptor = Sense::none().to_fixed();
        descriptor[0] = 0x72;
        assert_eq!(Sense::from_fixed(&descriptor), None);
    }

    #[test]
    fn codes() {
        assert_eq!(Status::Good.code(), 0);
        assert_eq!(Status::CheckCondition.code(), 2);
        assert_eq!(SenseKey::from_code(5), Some(SenseKey::IllegalRequest));
        assert_eq!(SenseKey::from_code(6), None);
    }
}
