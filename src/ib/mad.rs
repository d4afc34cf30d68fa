//! The MAD common header (IBTA vol. 1 §13.4.2, `reference/srp-cm-sa-dm.md` §1.3), its
//! status word (§13.4.7) and the LID-routed SMP used with MAD_IFC (§14.2.1.1).

use super::{Error, Rd, Wr, open_enum};

/// Every MAD is this long (IBTA vol. 1 §13.4.2).
pub const MAD_LEN: usize = 256;

/// BaseVersion of every MAD this module reads or writes.
pub const BASE_VERSION: u8 = 1;

/// Management classes (IBTA vol. 1 §13.4.4, Table 142).
pub mod class {
    /// Subnet management, LID routed.
    pub const SUBN_LID_ROUTED: u8 = 0x01;
    /// Subnet management, directed route.
    pub const SUBN_DIRECTED_ROUTE: u8 = 0x81;
    /// Subnet administration.
    pub const SUBN_ADM: u8 = 0x03;
    /// Device management.
    pub const DEV_MGT: u8 = 0x06;
    /// Communication management.
    pub const COMM_MGT: u8 = 0x07;
}

/// ClassVersion per class (§13.4.2; SA and CM are version 2 since IBTA 1.2).
pub mod class_version {
    /// Subnet management (both routings).
    pub const SUBN: u8 = 1;
    /// Subnet administration.
    pub const SUBN_ADM: u8 = 2;
    /// Device management.
    pub const DEV_MGT: u8 = 1;
    /// Communication management.
    pub const COMM_MGT: u8 = 2;
}

/// Methods (IBTA vol. 1 §13.4.5, Table 143; SA methods §15.2.2).
pub mod method {
    /// Get.
    pub const GET: u8 = 0x01;
    /// Set.
    pub const SET: u8 = 0x02;
    /// Send (CM messages).
    pub const SEND: u8 = 0x03;
    /// Trap.
    pub const TRAP: u8 = 0x05;
    /// Report.
    pub const REPORT: u8 = 0x06;
    /// TrapRepress.
    pub const TRAP_REPRESS: u8 = 0x07;
    /// SA GetTable.
    pub const GET_TABLE: u8 = 0x12;
    /// SA Delete.
    pub const DELETE: u8 = 0x15;
    /// The response bit (R): set in every response method.
    pub const RESPONSE: u8 = 0x80;
    /// GetResp.
    pub const GET_RESP: u8 = GET | RESPONSE;
    /// ReportResp.
    pub const REPORT_RESP: u8 = REPORT | RESPONSE;
    /// SA GetTableResp.
    pub const GET_TABLE_RESP: u8 = GET_TABLE | RESPONSE;
    /// SA DeleteResp.
    pub const DELETE_RESP: u8 = DELETE | RESPONSE;
}

/// Attribute IDs used by the driver (§14.2.5 SMP, §15.2.5 SA, §12.6 CM Table 104).
pub mod attr {
    /// ClassPortInfo (every class).
    pub const CLASS_PORT_INFO: u16 = 0x0001;
    /// SMP NodeInfo.
    pub const NODE_INFO: u16 = 0x0011;
    /// SMP PortInfo.
    pub const PORT_INFO: u16 = 0x0015;
    /// SMP P_KeyTable.
    pub const PKEY_TABLE: u16 = 0x0016;
    /// SA PathRecord.
    pub const PATH_RECORD: u16 = 0x0035;
    /// CM REQ.
    pub const CM_REQ: u16 = 0x0010;
    /// CM MRA.
    pub const CM_MRA: u16 = 0x0011;
    /// CM REJ.
    pub const CM_REJ: u16 = 0x0012;
    /// CM REP.
    pub const CM_REP: u16 = 0x0013;
    /// CM RTU.
    pub const CM_RTU: u16 = 0x0014;
    /// CM DREQ.
    pub const CM_DREQ: u16 = 0x0015;
    /// CM DREP.
    pub const CM_DREP: u16 = 0x0016;
}

/// Offsets in the MAD common header.
mod field {
    use core::ops::Range;
    pub const BASE_VERSION: usize = 0;
    pub const MGMT_CLASS: usize = 1;
    pub const CLASS_VERSION: usize = 2;
    pub const METHOD: usize = 3;
    pub const STATUS: Range<usize> = 4..6;
    pub const CLASS_SPECIFIC: Range<usize> = 6..8;
    pub const TID: Range<usize> = 8..16;
    pub const ATTR_ID: Range<usize> = 16..18;
    // 18..20 reserved.
    pub const ATTR_MOD: Range<usize> = 20..24;
}

/// The MAD common header (IBTA vol. 1 §13.4.2; reference §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadHeader {
    /// MgmtClass ([`class`]).
    pub mgmt_class: u8,
    /// ClassVersion ([`class_version`]).
    pub class_version: u8,
    /// Method ([`method`]), response bit included.
    pub method: u8,
    /// Status (§13.4.7).
    pub status: MadStatus,
    /// ClassSpecific (hop pointer/count for directed-route SMPs; 0 elsewhere).
    pub class_specific: u16,
    /// TransactionID.
    pub tid: u64,
    /// AttributeID ([`attr`]).
    pub attr_id: u16,
    /// AttributeModifier.
    pub attr_mod: u32,
}

impl MadHeader {
    /// Header length.
    pub const LEN: usize = field::ATTR_MOD.end;

    /// A request header with status 0.
    pub fn request(mgmt_class: u8, class_version: u8, method: u8, tid: u64, attr_id: u16) -> Self {
        MadHeader {
            mgmt_class,
            class_version,
            method,
            status: MadStatus(0),
            class_specific: 0,
            tid,
            attr_id,
            attr_mod: 0,
        }
    }

    /// Reads the header at the start of `buf`. BaseVersion other than 1 is rejected.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "MAD header", Self::LEN)?;
        let base = r.u8(field::BASE_VERSION)?;
        if base != BASE_VERSION {
            return Err(Error::Field {
                what: "MAD header",
                field: "BaseVersion",
                value: base.into(),
            });
        }
        Ok(MadHeader {
            mgmt_class: r.u8(field::MGMT_CLASS)?,
            class_version: r.u8(field::CLASS_VERSION)?,
            method: r.u8(field::METHOD)?,
            status: MadStatus(r.u16(field::STATUS)?),
            class_specific: r.u16(field::CLASS_SPECIFIC)?,
            tid: r.u64(field::TID)?,
            attr_id: r.u16(field::ATTR_ID)?,
            attr_mod: r.u32(field::ATTR_MOD)?,
        })
    }

    /// Writes the header into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut w = Wr::new(buf, "MAD header", Self::LEN)?;
        w.u8(field::BASE_VERSION, BASE_VERSION)?;
        w.u8(field::MGMT_CLASS, self.mgmt_class)?;
        w.u8(field::CLASS_VERSION, self.class_version)?;
        w.u8(field::METHOD, self.method)?;
        w.u16(field::STATUS, self.status.0)?;
        w.u16(field::CLASS_SPECIFIC, self.class_specific)?;
        w.u64(field::TID, self.tid)?;
        w.u16(field::ATTR_ID, self.attr_id)?;
        w.u32(field::ATTR_MOD, self.attr_mod)
    }

    /// Whether the response bit is set.
    pub fn is_response(&self) -> bool {
        self.method & method::RESPONSE != 0
    }

    /// Checks class, method and attribute against what the caller expects.
    pub fn expect(
        &self,
        what: &'static str,
        mgmt_class: &[u8],
        method: u8,
        attr_id: u16,
    ) -> Result<(), Error> {
        if !mgmt_class.contains(&self.mgmt_class) {
            return Err(Error::Unexpected {
                what,
                field: "MgmtClass",
                value: self.mgmt_class.into(),
            });
        }
        if self.method != method {
            return Err(Error::Unexpected {
                what,
                field: "Method",
                value: self.method.into(),
            });
        }
        if self.attr_id != attr_id {
            return Err(Error::Unexpected {
                what,
                field: "AttributeID",
                value: self.attr_id.into(),
            });
        }
        Ok(())
    }
}

/// The MAD status word (IBTA vol. 1 §13.4.7, Table 144): bit 0 busy, bit 1 redirect
/// required, bits 4..2 invalid-field code, bits 14..8 class specific (15..8 outside
/// directed-route SMPs, whose bit 15 is the D bit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MadStatus(pub u16);

open_enum! {
    /// The invalid-field code in status bits 4..2 (§13.4.7).
    pub enum InvalidField(u8) {
        /// No invalid field.
        None = 0,
        /// Bad BaseVersion or ClassVersion.
        BadVersion = 1,
        /// Method not supported.
        MethodUnsupported = 2,
        /// Method/attribute combination not supported.
        MethodAttrUnsupported = 3,
        /// An attribute or attribute modifier holds an invalid value.
        InvalidAttrValue = 7,
    }
}

impl MadStatus {
    /// Status 0.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Bit 0: busy, the requester may retry.
    pub fn busy(self) -> bool {
        self.0 & 0x0001 != 0
    }

    /// Bit 1: redirect required (the answer is a ClassPortInfo).
    pub fn redirect(self) -> bool {
        self.0 & 0x0002 != 0
    }

    /// Bits 4..2.
    pub fn invalid_field(self) -> InvalidField {
        // Three bits: the cast cannot lose information.
        InvalidField::from(((self.0 >> 2) & 0x7) as u8)
    }

    /// Bits 15..8, the class-specific status (for a directed-route SMP bit 15 is the
    /// D bit, not status; SMPs are not judged by this value).
    pub fn class_specific(self) -> u8 {
        self.0.to_be_bytes()[0]
    }
}

/// Offsets in a LID-routed SMP (IBTA vol. 1 §14.2.1.1), after the common header.
mod smp_field {
    use core::ops::Range;
    pub const M_KEY: Range<usize> = 24..32;
    // 32..64 reserved.
    pub const DATA: Range<usize> = 64..128;
    // 128..256 reserved.
}

/// Where SMP attribute data sits in a MAD (64 bytes at byte 64, for LID-routed and
/// directed-route SMPs alike; §14.2.1.1–§14.2.1.2).
pub const SMP_DATA: core::ops::Range<usize> = smp_field::DATA;

/// A LID-routed SubnGet SMP, the input of MAD_IFC for a local port query (IBTA vol. 1
/// §14.2.1.1; the firmware answers with the same layout and method GetResp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmpGet {
    /// TransactionID.
    pub tid: u64,
    /// AttributeID ([`attr::PORT_INFO`], [`attr::PKEY_TABLE`], ...).
    pub attr_id: u16,
    /// AttributeModifier (port number for PortInfo, block number for P_KeyTable).
    pub attr_mod: u32,
    /// M_Key (0 unless the SM set one; MAD_IFC can be told to ignore it).
    pub m_key: u64,
}

impl SmpGet {
    /// A whole MAD.
    pub const LEN: usize = MAD_LEN;

    /// Writes the 256-byte SMP into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let hdr = MadHeader {
            attr_mod: self.attr_mod,
            ..MadHeader::request(
                class::SUBN_LID_ROUTED,
                class_version::SUBN,
                method::GET,
                self.tid,
                self.attr_id,
            )
        };
        {
            let mut w = Wr::new(buf, "SMP", Self::LEN)?;
            w.u64(smp_field::M_KEY, self.m_key)?;
        }
        hdr.emit(buf)
    }

    /// Reads an SMP Get (what the SMA receives); any class other than SubnGet is
    /// [`Error::Unexpected`].
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "SMP", Self::LEN)?;
        let hdr = MadHeader::parse(buf)?;
        if hdr.mgmt_class != class::SUBN_LID_ROUTED {
            return Err(Error::Unexpected {
                what: "SMP SubnGet",
                field: "MgmtClass",
                value: hdr.mgmt_class.into(),
            });
        }
        if hdr.method != method::GET {
            return Err(Error::Unexpected {
                what: "SMP SubnGet",
                field: "Method",
                value: hdr.method.into(),
            });
        }
        Ok(SmpGet {
            tid: hdr.tid,
            attr_id: hdr.attr_id,
            attr_mod: hdr.attr_mod,
            m_key: r.u64(smp_field::M_KEY)?,
        })
    }
}

/// Checks an SMP GetResp (as MAD_IFC returns it) for `attr_id` and returns its
/// attribute data. A non-zero status (ignoring the D bit) is [`Error::Unexpected`]
/// with field "Status".
pub fn smp_response_data(buf: &[u8], attr_id: u16) -> Result<&[u8], Error> {
    let r = Rd::new(buf, "SMP", MAD_LEN)?;
    let hdr = MadHeader::parse(buf)?;
    hdr.expect(
        "SMP GetResp",
        &[class::SUBN_LID_ROUTED, class::SUBN_DIRECTED_ROUTE],
        method::GET_RESP,
        attr_id,
    )?;
    let status = if hdr.mgmt_class == class::SUBN_DIRECTED_ROUTE {
        hdr.status.0 & 0x7FFF
    } else {
        hdr.status.0
    };
    if status != 0 {
        return Err(Error::Unexpected {
            what: "SMP GetResp",
            field: "Status",
            value: status.into(),
        });
    }
    r.bytes(smp_field::DATA)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod test {
    use super::*;

    static HEADER: [u8; 24] = [
        0x01, 0x03, 0x02, 0x81, 0x01, 0x00, 0xAB, 0xCD, // base, class, cv, method, status, cs
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // TID
        0x00, 0x35, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF, // attr id, reserved, modifier
    ];

    fn repr() -> MadHeader {
        MadHeader {
            mgmt_class: class::SUBN_ADM,
            class_version: 2,
            method: method::GET_RESP,
            status: MadStatus(0x0100),
            class_specific: 0xABCD,
            tid: 0x1122_3344_5566_7788,
            attr_id: attr::PATH_RECORD,
            attr_mod: 0xDEAD_BEEF,
        }
    }

    #[test]
    fn test_parse() {
        let h = MadHeader::parse(&HEADER).unwrap();
        assert_eq!(h, repr());
        assert!(h.is_response());
        assert_eq!(h.status.class_specific(), 1);
    }

    #[test]
    fn test_emit() {
        let mut buf = [0xA5u8; 24];
        repr().emit(&mut buf).unwrap();
        assert_eq!(buf, HEADER);
    }

    #[test]
    fn bad_base_version() {
        let mut b = HEADER;
        b[0] = 2;
        assert_eq!(
            MadHeader::parse(&b),
            Err(Error::Field {
                what: "MAD header",
                field: "BaseVersion",
                value: 2
            })
        );
    }

    #[test]
    fn status_bits() {
        assert!(MadStatus(0x0001).busy());
        assert!(MadStatus(0x0002).redirect());
        assert_eq!(
            MadStatus(0x000C).invalid_field(),
            InvalidField::MethodAttrUnsupported
        );
        assert_eq!(
            MadStatus(0x001C).invalid_field(),
            InvalidField::InvalidAttrValue
        );
        assert_eq!(MadStatus(0x0010).invalid_field(), InvalidField::Unknown(4));
        assert_eq!(MadStatus(0x0700).class_specific(), 7);
    }
}
