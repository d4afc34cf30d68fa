//! Subnet administration: the SA header (RMPP header, SM_Key, AttributeOffset,
//! ComponentMask; IBTA vol. 1 §15.2.1.1 and §13.6.2), the PathRecord attribute
//! (§15.2.5.16), the SA status codes (§15.2.1.1, Table 184 class-specific values) and
//! the PathRecord Get an initiator sends (`reference/srp-cm-sa-dm.md` §1.5).

use core::ops::Range;

use super::mad::{MAD_LEN, MadHeader, attr, class, class_version, method};
use super::{Error, Gid, Mtu, Rd, Wr, fits, open_enum, pack, unpack};

/// Where the SA header sits in a MAD.
pub const SA_HEADER: Range<usize> = 24..56;
/// Where the SA attribute data sits in a MAD (200 bytes).
pub const SA_DATA: Range<usize> = 56..MAD_LEN;

/// Offsets in the SA header, relative to its start (MAD byte 24).
mod field {
    use core::ops::Range;
    pub const RMPP_VERSION: usize = 0;
    pub const RMPP_TYPE: usize = 1;
    /// RRespTime (7..3), RMPPFlags (2..0).
    pub const RMPP_RESP_FLAGS: usize = 2;
    pub const RMPP_STATUS: usize = 3;
    pub const RMPP_DATA1: Range<usize> = 4..8;
    pub const RMPP_DATA2: Range<usize> = 8..12;
    pub const SM_KEY: Range<usize> = 12..20;
    pub const ATTR_OFFSET: Range<usize> = 20..22;
    // 22..24 reserved.
    pub const COMPONENT_MASK: Range<usize> = 24..32;
}

/// The RMPP header (IBTA vol. 1 §13.6.2.1). All zero for a single-MAD Get and its
/// response; GetTable replies larger than one MAD use it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RmppHeader {
    /// RMPPVersion.
    pub version: u8,
    /// RMPPType (1 DATA, 2 ACK, 3 STOP, 4 ABORT).
    pub rmpp_type: u8,
    /// RRespTime, 5 bits.
    pub resp_time: u8,
    /// RMPPFlags, 3 bits (Active, First, Last).
    pub flags: u8,
    /// RMPPStatus.
    pub status: u8,
    /// Data1: SegmentNumber.
    pub data1: u32,
    /// Data2: PayloadLength or NewWindowLast.
    pub data2: u32,
}

/// The SA header after the MAD common header (IBTA vol. 1 §15.2.1.1; reference §1.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaHeader {
    /// RMPP header.
    pub rmpp: RmppHeader,
    /// SM_Key (0 for an ordinary client).
    pub sm_key: u64,
    /// AttributeOffset in 8-byte units (GetTable responses; 8 for a PathRecord).
    pub attr_offset: u16,
    /// ComponentMask: which attribute fields the query constrains.
    pub component_mask: u64,
}

impl SaHeader {
    /// Header length.
    pub const LEN: usize = field::COMPONENT_MASK.end;

    /// Reads the SA header from `buf`, which starts at MAD byte 24.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "SA header", Self::LEN)?;
        let rf = r.u8(field::RMPP_RESP_FLAGS)?;
        Ok(SaHeader {
            rmpp: RmppHeader {
                version: r.u8(field::RMPP_VERSION)?,
                rmpp_type: r.u8(field::RMPP_TYPE)?,
                resp_time: unpack(rf, 3, 5),
                flags: unpack(rf, 0, 3),
                status: r.u8(field::RMPP_STATUS)?,
                data1: r.u32(field::RMPP_DATA1)?,
                data2: r.u32(field::RMPP_DATA2)?,
            },
            sm_key: r.u64(field::SM_KEY)?,
            attr_offset: r.u16(field::ATTR_OFFSET)?,
            component_mask: r.u64(field::COMPONENT_MASK)?,
        })
    }

    /// Writes the SA header into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "SA header";
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.u8(field::RMPP_VERSION, self.rmpp.version)?;
        w.u8(field::RMPP_TYPE, self.rmpp.rmpp_type)?;
        w.u8(
            field::RMPP_RESP_FLAGS,
            pack(W, "RRespTime", self.rmpp.resp_time, 3, 5)?
                | pack(W, "RMPPFlags", self.rmpp.flags, 0, 3)?,
        )?;
        w.u8(field::RMPP_STATUS, self.rmpp.status)?;
        w.u32(field::RMPP_DATA1, self.rmpp.data1)?;
        w.u32(field::RMPP_DATA2, self.rmpp.data2)?;
        w.u64(field::SM_KEY, self.sm_key)?;
        w.u16(field::ATTR_OFFSET, self.attr_offset)?;
        w.u64(field::COMPONENT_MASK, self.component_mask)
    }
}

open_enum! {
    /// The status of an SA response (IBTA vol. 1 §13.4.7 common bits, §15.2.1.1
    /// class-specific codes in bits 15..8). Combinations not listed stay `Unknown`.
    pub enum SaStatus(u16) {
        /// Success.
        Ok = 0x0000,
        /// Busy: retry later.
        Busy = 0x0001,
        /// Redirect required.
        RedirectRequired = 0x0002,
        /// Bad base or class version.
        BadVersion = 0x0004,
        /// Method not supported.
        MethodUnsupported = 0x0008,
        /// Method/attribute combination not supported.
        MethodAttrUnsupported = 0x000C,
        /// Invalid attribute or attribute-modifier value.
        InvalidAttrValue = 0x001C,
        /// ERR_NO_RESOURCES.
        NoResources = 0x0100,
        /// ERR_REQ_INVALID.
        ReqInvalid = 0x0200,
        /// ERR_NO_RECORDS.
        NoRecords = 0x0300,
        /// ERR_TOO_MANY_RECORDS.
        TooManyRecords = 0x0400,
        /// ERR_REQ_INVALID_GID.
        InvalidGid = 0x0500,
        /// ERR_REQ_INSUFFICIENT_COMPONENTS.
        InsufficientComponents = 0x0600,
        /// ERR_REQ_DENIED.
        ReqDenied = 0x0700,
        /// ERR_REQ_PRIORITY_SUGGESTED (a QoS hint; the record is still refused).
        PrioritySuggested = 0x0800,
    }
}

/// PathRecord ComponentMask bits (IBTA vol. 1 §15.2.5.16; reference §1.5).
pub mod path_mask {
    /// ServiceID: bits 0 (8 MSB) and 1 (56 LSB) together.
    pub const SERVICE_ID: u64 = 0b11;
    /// DGID.
    pub const DGID: u64 = 1 << 2;
    /// SGID.
    pub const SGID: u64 = 1 << 3;
    /// DLID.
    pub const DLID: u64 = 1 << 4;
    /// SLID.
    pub const SLID: u64 = 1 << 5;
    /// RawTraffic.
    pub const RAW_TRAFFIC: u64 = 1 << 6;
    /// FlowLabel (bit 7 is reserved).
    pub const FLOW_LABEL: u64 = 1 << 8;
    /// HopLimit.
    pub const HOP_LIMIT: u64 = 1 << 9;
    /// TClass.
    pub const TCLASS: u64 = 1 << 10;
    /// Reversible.
    pub const REVERSIBLE: u64 = 1 << 11;
    /// NumbPath.
    pub const NUMB_PATH: u64 = 1 << 12;
    /// P_Key.
    pub const PKEY: u64 = 1 << 13;
    /// QoSClass.
    pub const QOS_CLASS: u64 = 1 << 14;
    /// SL.
    pub const SL: u64 = 1 << 15;
    /// MTUSelector.
    pub const MTU_SELECTOR: u64 = 1 << 16;
    /// MTU.
    pub const MTU: u64 = 1 << 17;
    /// RateSelector.
    pub const RATE_SELECTOR: u64 = 1 << 18;
    /// Rate.
    pub const RATE: u64 = 1 << 19;
    /// PacketLifeTimeSelector.
    pub const PACKET_LIFE_TIME_SELECTOR: u64 = 1 << 20;
    /// PacketLifeTime.
    pub const PACKET_LIFE_TIME: u64 = 1 << 21;
    /// Preference.
    pub const PREFERENCE: u64 = 1 << 22;
}

/// A 2-bit selector for MTU, rate and packet lifetime (IBTA vol. 1 §15.2.5.16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Selector {
    /// Greater than the value.
    GreaterThan,
    /// Less than the value.
    LessThan,
    /// Exactly the value.
    #[default]
    Exactly,
    /// The largest (best) available.
    Largest,
}

impl Selector {
    fn from_bits(b: u8) -> Self {
        match b & 0x3 {
            0 => Selector::GreaterThan,
            1 => Selector::LessThan,
            2 => Selector::Exactly,
            _ => Selector::Largest,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Selector::GreaterThan => 0,
            Selector::LessThan => 1,
            Selector::Exactly => 2,
            Selector::Largest => 3,
        }
    }
}

/// Offsets in a PathRecord (reference §1.5).
mod path_field {
    use core::ops::Range;
    pub const SERVICE_ID: Range<usize> = 0..8;
    pub const DGID: Range<usize> = 8..24;
    pub const SGID: Range<usize> = 24..40;
    pub const DLID: Range<usize> = 40..42;
    pub const SLID: Range<usize> = 42..44;
    /// RawTraffic (bit 31), reserved (30..28), FlowLabel (27..8), HopLimit (7..0).
    pub const RAW_FLOW_HOP: Range<usize> = 44..48;
    pub const TCLASS: usize = 48;
    /// Reversible (7), NumbPath (6..0).
    pub const REVERSIBLE_NUMB_PATH: usize = 49;
    pub const PKEY: Range<usize> = 50..52;
    /// QoSClass (15..4), SL (3..0).
    pub const QOS_SL: Range<usize> = 52..54;
    /// MTUSelector (7..6), MTU (5..0).
    pub const MTU: usize = 54;
    /// RateSelector (7..6), Rate (5..0).
    pub const RATE: usize = 55;
    /// PacketLifeTimeSelector (7..6), PacketLifeTime (5..0).
    pub const PACKET_LIFE: usize = 56;
    pub const PREFERENCE: usize = 57;
    // 58..64 reserved.
    pub const END: usize = 64;
}

/// A PathRecord (IBTA vol. 1 §15.2.5.16; every field of reference §1.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathRecord {
    /// ServiceID.
    pub service_id: u64,
    /// DGID.
    pub dgid: Gid,
    /// SGID.
    pub sgid: Gid,
    /// DLID.
    pub dlid: u16,
    /// SLID.
    pub slid: u16,
    /// RawTraffic.
    pub raw_traffic: bool,
    /// FlowLabel, 20 bits.
    pub flow_label: u32,
    /// HopLimit.
    pub hop_limit: u8,
    /// TClass.
    pub tclass: u8,
    /// Reversible.
    pub reversible: bool,
    /// NumbPath, 7 bits.
    pub numb_path: u8,
    /// P_Key.
    pub pkey: u16,
    /// QoSClass, 12 bits.
    pub qos_class: u16,
    /// SL, 4 bits.
    pub sl: u8,
    /// MTUSelector.
    pub mtu_selector: Selector,
    /// MTU, 6 bits.
    pub mtu: Mtu,
    /// RateSelector.
    pub rate_selector: Selector,
    /// Rate code, 6 bits (2 = 2.5 Gb/s, 3 = 10 Gb/s, ... §15.2.5.16).
    pub rate: u8,
    /// PacketLifeTimeSelector.
    pub packet_life_time_selector: Selector,
    /// PacketLifeTime, 6 bits (4.096 µs × 2^n).
    pub packet_life_time: u8,
    /// Preference.
    pub preference: u8,
}

impl PathRecord {
    /// Attribute length.
    pub const LEN: usize = path_field::END;

    /// Reads a PathRecord from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "PathRecord", Self::LEN)?;
        let rfh = r.u32(path_field::RAW_FLOW_HOP)?;
        let rn = r.u8(path_field::REVERSIBLE_NUMB_PATH)?;
        let qs = r.u16(path_field::QOS_SL)?;
        let mtu = r.u8(path_field::MTU)?;
        let rate = r.u8(path_field::RATE)?;
        let life = r.u8(path_field::PACKET_LIFE)?;
        Ok(PathRecord {
            service_id: r.u64(path_field::SERVICE_ID)?,
            dgid: r.arr(path_field::DGID)?,
            sgid: r.arr(path_field::SGID)?,
            dlid: r.u16(path_field::DLID)?,
            slid: r.u16(path_field::SLID)?,
            raw_traffic: rfh & (1 << 31) != 0,
            flow_label: (rfh >> 8) & 0xF_FFFF,
            hop_limit: rfh.to_be_bytes()[3],
            tclass: r.u8(path_field::TCLASS)?,
            reversible: rn & 0x80 != 0,
            numb_path: unpack(rn, 0, 7),
            pkey: r.u16(path_field::PKEY)?,
            qos_class: qs >> 4,
            sl: unpack(qs.to_be_bytes()[1], 0, 4),
            mtu_selector: Selector::from_bits(unpack(mtu, 6, 2)),
            mtu: Mtu::from(unpack(mtu, 0, 6)),
            rate_selector: Selector::from_bits(unpack(rate, 6, 2)),
            rate: unpack(rate, 0, 6),
            packet_life_time_selector: Selector::from_bits(unpack(life, 6, 2)),
            packet_life_time: unpack(life, 0, 6),
            preference: r.u8(path_field::PREFERENCE)?,
        })
    }

    /// Writes the record into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "PathRecord";
        fits(W, "FlowLabel", self.flow_label.into(), 20)?;
        fits(W, "QoSClass", self.qos_class.into(), 12)?;
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.u64(path_field::SERVICE_ID, self.service_id)?;
        w.bytes(path_field::DGID, &self.dgid)?;
        w.bytes(path_field::SGID, &self.sgid)?;
        w.u16(path_field::DLID, self.dlid)?;
        w.u16(path_field::SLID, self.slid)?;
        let raw = if self.raw_traffic { 1u32 << 31 } else { 0 };
        w.u32(
            path_field::RAW_FLOW_HOP,
            raw | self.flow_label << 8 | u32::from(self.hop_limit),
        )?;
        w.u8(path_field::TCLASS, self.tclass)?;
        w.u8(
            path_field::REVERSIBLE_NUMB_PATH,
            u8::from(self.reversible) << 7 | pack(W, "NumbPath", self.numb_path, 0, 7)?,
        )?;
        w.u16(path_field::PKEY, self.pkey)?;
        w.u16(
            path_field::QOS_SL,
            self.qos_class << 4 | u16::from(pack(W, "SL", self.sl, 0, 4)?),
        )?;
        w.u8(
            path_field::MTU,
            self.mtu_selector.bits() << 6 | pack(W, "MTU", self.mtu.into(), 0, 6)?,
        )?;
        w.u8(
            path_field::RATE,
            self.rate_selector.bits() << 6 | pack(W, "Rate", self.rate, 0, 6)?,
        )?;
        w.u8(
            path_field::PACKET_LIFE,
            self.packet_life_time_selector.bits() << 6
                | pack(W, "PacketLifeTime", self.packet_life_time, 0, 6)?,
        )?;
        w.u8(path_field::PREFERENCE, self.preference)
    }
}

/// The PathRecord Get an initiator sends to find its path to a target: SGID, DGID,
/// P_Key, NumbPath = 1, Reversible, and optionally the ServiceID (reference §1.5, "How
/// ib_srp queries a path"; Reversible added because an RC connection needs a path
/// usable both ways).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathQuery {
    /// Our port's GID.
    pub sgid: Gid,
    /// The target port's GID.
    pub dgid: Gid,
    /// The partition.
    pub pkey: u16,
    /// The target's service ID, when the query should carry it.
    pub service_id: Option<u64>,
}

impl PathQuery {
    /// A whole MAD.
    pub const LEN: usize = MAD_LEN;

    /// The ComponentMask this query sends.
    pub fn component_mask(&self) -> u64 {
        let sid = if self.service_id.is_some() {
            path_mask::SERVICE_ID
        } else {
            0
        };
        sid | path_mask::DGID
            | path_mask::SGID
            | path_mask::REVERSIBLE
            | path_mask::NUMB_PATH
            | path_mask::PKEY
    }

    /// The record this query sends (fields outside the mask are zero).
    pub fn record(&self) -> PathRecord {
        PathRecord {
            service_id: self.service_id.unwrap_or(0),
            dgid: self.dgid,
            sgid: self.sgid,
            reversible: true,
            numb_path: 1,
            pkey: self.pkey,
            mtu_selector: Selector::GreaterThan,
            rate_selector: Selector::GreaterThan,
            packet_life_time_selector: Selector::GreaterThan,
            mtu: Mtu::Unknown(0),
            ..PathRecord::default()
        }
    }

    /// Writes the whole 256-byte SubnAdmGet(PathRecord) MAD into `buf`.
    pub fn emit(&self, tid: u64, buf: &mut [u8]) -> Result<(), Error> {
        let hdr = MadHeader::request(
            class::SUBN_ADM,
            class_version::SUBN_ADM,
            method::GET,
            tid,
            attr::PATH_RECORD,
        );
        let sa = SaHeader {
            component_mask: self.component_mask(),
            ..SaHeader::default()
        };
        // Zero the whole MAD (reserved tail included), then fill it part by part.
        Wr::new(buf, "SA PathRecord Get", Self::LEN)?;
        hdr.emit(buf)?;
        sa.emit(buf.get_mut(SA_HEADER).unwrap_or_default())?;
        self.record().emit(buf.get_mut(SA_DATA).unwrap_or_default())
    }
}

/// An SA response to a PathRecord Get (IBTA vol. 1 §15.2.5.16, §15.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathReply {
    /// TransactionID (to match the query).
    pub tid: u64,
    /// The status.
    pub status: SaStatus,
    /// The SA header.
    pub sa: SaHeader,
    /// The record, when the status is [`SaStatus::Ok`].
    pub record: Option<PathRecord>,
}

impl PathReply {
    /// Reads a SubnAdmGetResp(PathRecord) MAD. Another class, method or attribute is
    /// [`Error::Unexpected`]; a ClassVersion other than 2 likewise.
    pub fn parse(mad: &[u8]) -> Result<Self, Error> {
        const W: &str = "SA PathRecord GetResp";
        let r = Rd::new(mad, W, MAD_LEN)?;
        let hdr = MadHeader::parse(mad)?;
        hdr.expect(W, &[class::SUBN_ADM], method::GET_RESP, attr::PATH_RECORD)?;
        if hdr.class_version != class_version::SUBN_ADM {
            return Err(Error::Unexpected {
                what: W,
                field: "ClassVersion",
                value: hdr.class_version.into(),
            });
        }
        let status = SaStatus::from(hdr.status.0);
        let sa = SaHeader::parse(r.bytes(SA_HEADER)?)?;
        let record = match status {
            SaStatus::Ok => Some(PathRecord::parse(r.bytes(SA_DATA)?)?),
            _ => None,
        };
        Ok(PathReply {
            tid: hdr.tid,
            status,
            sa,
            record,
        })
    }

    /// Writes the reply as a whole MAD (what an SA sends; used by tests and models).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let hdr = MadHeader {
            status: super::mad::MadStatus(self.status.into()),
            ..MadHeader::request(
                class::SUBN_ADM,
                class_version::SUBN_ADM,
                method::GET_RESP,
                self.tid,
                attr::PATH_RECORD,
            )
        };
        Wr::new(buf, "SA PathRecord GetResp", MAD_LEN)?;
        hdr.emit(buf)?;
        self.sa.emit(buf.get_mut(SA_HEADER).unwrap_or_default())?;
        match &self.record {
            Some(rec) => rec.emit(buf.get_mut(SA_DATA).unwrap_or_default()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod test {
    use super::*;

    #[test]
    fn status_codes_round_trip() {
        for raw in [
            0u16, 1, 2, 4, 8, 0xC, 0x1C, 0x100, 0x200, 0x300, 0x400, 0x500, 0x600, 0x700, 0x800,
        ] {
            let s = SaStatus::from(raw);
            assert!(!matches!(s, SaStatus::Unknown(_)), "{raw:#x}");
            assert_eq!(u16::from(s), raw);
        }
        assert_eq!(SaStatus::from(0x0301), SaStatus::Unknown(0x0301));
    }

    #[test]
    fn selectors_sit_in_the_top_two_bits() {
        let rec = PathRecord {
            mtu_selector: Selector::Largest,
            mtu: Mtu::Mtu4096,
            rate_selector: Selector::LessThan,
            rate: 0x3F,
            packet_life_time_selector: Selector::GreaterThan,
            packet_life_time: 1,
            ..PathRecord::default()
        };
        let mut buf = [0xA5u8; PathRecord::LEN];
        rec.emit(&mut buf).unwrap();
        assert_eq!(&buf[54..57], &[0xC5, 0x7F, 0x01]);
        assert_eq!(PathRecord::parse(&buf).unwrap(), rec);
        let bad = PathRecord { rate: 0x40, ..rec };
        assert_eq!(
            bad.emit(&mut buf),
            Err(Error::Field {
                what: "PathRecord",
                field: "Rate",
                value: 0x40
            })
        );
    }

    #[test]
    fn query_mask_names_what_it_fills() {
        let q = PathQuery {
            sgid: [1; 16],
            dgid: [2; 16],
            pkey: 0xFFFF,
            service_id: None,
        };
        assert_eq!(
            q.component_mask(),
            path_mask::SGID
                | path_mask::DGID
                | path_mask::PKEY
                | path_mask::NUMB_PATH
                | path_mask::REVERSIBLE
        );
        let r = q.record();
        assert_eq!((r.numb_path, r.reversible, r.pkey), (1, true, 0xFFFF));
    }
}
