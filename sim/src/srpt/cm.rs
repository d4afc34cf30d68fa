//! The IB MAD common header and the communication manager messages the passive side
//! handles (IBTA vol. 1 §13.4.3 for the header, §12.6 for the messages: REQ Table
//! 106, MRA Table 107, REJ Table 108, REP Table 110, RTU Table 111, DREQ Table 112,
//! DREP Table 113). Offsets and bit positions as reference/srp-cm-sa-dm.md §1.3 and
//! §1.4 give them (IBTA's "Byte\[Bit\]" already turned into bit 7 = MSB).
//!
//! A CM MAD is 256 bytes: the 24-byte common header, then the 232-byte CM payload.
//! The message `Repr`s here parse and emit the payload (offsets relative to MAD byte
//! 24, as in the reference); [`CmMad`] puts header and payload together. `parse`
//! never panics, on any input; `emit` writes every byte of the payload, reserved ones
//! as zero, and panics only if the buffer is shorter than [`PAYLOAD_LEN`].

use core::fmt;

use super::be;

/// Bytes in every MAD.
pub const MAD_LEN: usize = 256;
/// Bytes of the common MAD header.
pub const HEADER_LEN: usize = 24;
/// Bytes of the CM payload after the header.
pub const PAYLOAD_LEN: usize = MAD_LEN - HEADER_LEN;

/// BaseVersion of every MAD (IBTA §13.4.3).
pub const BASE_VERSION: u8 = 1;
/// MgmtClass of the communication manager.
pub const CLASS_CM: u8 = 0x07;
/// The CM ClassVersion this side implements.
pub const CM_CLASS_VERSION: u8 = 2;

/// MAD methods (IBTA §13.4.5).
pub mod method {
    /// Get.
    pub const GET: u8 = 0x01;
    /// Set.
    pub const SET: u8 = 0x02;
    /// Send: every CM protocol message.
    pub const SEND: u8 = 0x03;
    /// GetResp.
    pub const GET_RESP: u8 = 0x81;
    /// The response bit.
    pub const RESPONSE: u8 = 0x80;
}

/// MAD status values of a GetResp (IBTA §13.4.7, common status bits 4..2; reference
/// §1.6 lists the same codes for DM).
pub mod status {
    /// Bad base or class version.
    pub const BAD_VERSION: u16 = 0x0004;
    /// Method not supported.
    pub const UNSUPPORTED_METHOD: u16 = 0x0008;
    /// Method / attribute combination not supported.
    pub const UNSUPPORTED_METHOD_ATTR: u16 = 0x000C;
}

/// CM attribute IDs (reference §1.4).
pub mod attr {
    /// ClassPortInfo.
    pub const CLASS_PORT_INFO: u16 = 0x0001;
    /// REQ.
    pub const REQ: u16 = 0x0010;
    /// MRA.
    pub const MRA: u16 = 0x0011;
    /// REJ.
    pub const REJ: u16 = 0x0012;
    /// REP.
    pub const REP: u16 = 0x0013;
    /// RTU.
    pub const RTU: u16 = 0x0014;
    /// DREQ.
    pub const DREQ: u16 = 0x0015;
    /// DREP.
    pub const DREP: u16 = 0x0016;
}

/// REJ reason codes (reference §1.4, REJ "Reasons").
pub mod rej {
    /// Timeout (here: the REP was never answered).
    pub const TIMEOUT: u16 = 4;
    /// Invalid Service ID.
    pub const INVALID_SERVICE_ID: u16 = 8;
    /// Invalid transport service type.
    pub const INVALID_TRANSPORT: u16 = 9;
    /// Stale connection.
    pub const STALE_CONNECTION: u16 = 10;
    /// Invalid MTU.
    pub const INVALID_MTU: u16 = 26;
    /// Consumer defined: SRP puts its SRP_LOGIN_REJ in the private data.
    pub const CONSUMER: u16 = 28;
    /// Invalid class version; the ARI holds the highest version supported.
    pub const INVALID_CLASS_VERSION: u16 = 31;
}

/// "Message REJected" / "Message MRAed" codes (REJ and MRA byte 8, bits 7..6).
pub mod msg {
    /// The REQ.
    pub const REQ: u8 = 0;
    /// The REP.
    pub const REP: u8 = 1;
    /// Something else (REJ) or a LAP (MRA).
    pub const OTHER: u8 = 2;
}

/// Transport Service Type of a REQ (byte 43 bits 2..1).
pub const TRANSPORT_RC: u8 = 0;

/// The LID meaning "whatever the packet came from" (IBTA §7.11.1).
pub const PERMISSIVE_LID: u16 = 0xFFFF;

/// Why bytes are not a MAD or CM message this layer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmError {
    /// The buffer ends before the header or payload does.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes there are.
        got: usize,
    },
}

impl fmt::Display for CmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CmError::Truncated { needed, got } => {
                write!(f, "MAD truncated: {got} bytes where {needed} are needed")
            }
        }
    }
}

impl std::error::Error for CmError {}

// Every message's private data runs to the end of the payload.
const _: () = {
    assert!(field::mra::PRIVATE_DATA.end == PAYLOAD_LEN);
    assert!(field::dreq::PRIVATE_DATA.end == PAYLOAD_LEN);
    assert!(field::rtu::PRIVATE_DATA.start == field::drep::PRIVATE_DATA.start);
    assert!(field::rtu::PRIVATE_DATA.end == PAYLOAD_LEN);
    assert!(field::rep::PRIVATE_DATA.end == PAYLOAD_LEN);
    assert!(field::rej::PRIVATE_DATA.end == PAYLOAD_LEN);
    assert!(field::req::PRIVATE_DATA.end == PAYLOAD_LEN);
};

fn check_len(buf: &[u8], needed: usize) -> Result<(), CmError> {
    if buf.len() < needed {
        Err(CmError::Truncated {
            needed,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// 4.096 µs × 2^`t`, IBTA's time encoding (reference §1.4), in nanoseconds; `t` above
/// 31 is read as 31.
pub fn ib_time_ns(t: u8) -> u64 {
    4096u64 << t.min(31)
}

mod field {
    //! Byte offsets: the common header (reference §1.3, MAD-relative) and the CM
    //! messages (reference §1.4, payload-relative).
    use core::ops::Range;

    pub mod mad {
        use core::ops::Range;
        pub const BASE_VERSION: usize = 0;
        pub const MGMT_CLASS: usize = 1;
        pub const CLASS_VERSION: usize = 2;
        pub const METHOD: usize = 3;
        pub const STATUS: Range<usize> = 4..6;
        pub const CLASS_SPECIFIC: Range<usize> = 6..8;
        pub const TID: Range<usize> = 8..16;
        pub const ATTR_ID: Range<usize> = 16..18;
        pub const ATTR_MOD: Range<usize> = 20..24;
    }

    /// Local and Remote Communication IDs, first in every message but REQ.
    pub const LOCAL_COMM_ID: Range<usize> = 0..4;
    pub const REMOTE_COMM_ID: Range<usize> = 4..8;

    pub mod req {
        use core::ops::Range;
        pub const SERVICE_ID: Range<usize> = 8..16;
        pub const LOCAL_CA_GUID: Range<usize> = 16..24;
        pub const LOCAL_QKEY: Range<usize> = 28..32;
        pub const LOCAL_QPN: Range<usize> = 32..35;
        pub const RESPONDER_RESOURCES: usize = 35;
        pub const INITIATOR_DEPTH: usize = 39;
        /// Remote CM Response Timeout 7..3, Transport Service Type 2..1, E2E flow 0.
        pub const BYTE_43: usize = 43;
        pub const STARTING_PSN: Range<usize> = 44..47;
        /// Local CM Response Timeout 7..3, Retry Count 2..0.
        pub const BYTE_47: usize = 47;
        pub const PKEY: Range<usize> = 48..50;
        /// Path MTU 7..4, RDC Exists 3, RNR Retry Count 2..0.
        pub const BYTE_50: usize = 50;
        /// Max CM Retries 7..4, SRQ 3, Extended Transport Type 2..0.
        pub const BYTE_51: usize = 51;
        pub const PRIMARY_PATH: usize = 52;
        pub const ALTERNATE_PATH: usize = 96;
        pub const PRIVATE_DATA: Range<usize> = 140..232;
    }

    /// A path inside a REQ, relative to its start (52 primary, 96 alternate).
    pub mod path {
        use core::ops::Range;
        pub const LOCAL_LID: Range<usize> = 0..2;
        pub const REMOTE_LID: Range<usize> = 2..4;
        pub const LOCAL_GID: Range<usize> = 4..20;
        pub const REMOTE_GID: Range<usize> = 20..36;
        /// Flow Label in bits 31..12, Packet Rate in bits 5..0.
        pub const FLOW_RATE: Range<usize> = 36..40;
        pub const TRAFFIC_CLASS: usize = 40;
        pub const HOP_LIMIT: usize = 41;
        /// SL 7..4, Subnet Local 3.
        pub const SL: usize = 42;
        /// Local ACK Timeout 7..3.
        pub const ACK_TIMEOUT: usize = 43;
        pub const LEN: usize = 44;
    }

    pub mod rep {
        use core::ops::Range;
        pub const LOCAL_QKEY: Range<usize> = 8..12;
        pub const LOCAL_QPN: Range<usize> = 12..15;
        pub const LOCAL_EECN: Range<usize> = 16..19;
        pub const STARTING_PSN: Range<usize> = 20..23;
        pub const RESPONDER_RESOURCES: usize = 24;
        pub const INITIATOR_DEPTH: usize = 25;
        /// Target ACK Delay 7..3, Failover Accepted 2..1, E2E Flow Control 0.
        pub const BYTE_26: usize = 26;
        /// RNR Retry Count 7..5, SRQ 4.
        pub const BYTE_27: usize = 27;
        pub const LOCAL_CA_GUID: Range<usize> = 28..36;
        pub const PRIVATE_DATA: Range<usize> = 36..232;
    }

    pub mod rtu {
        use core::ops::Range;
        pub const PRIVATE_DATA: Range<usize> = 8..232;
    }

    pub mod rej {
        use core::ops::Range;
        /// Message REJected in bits 7..6.
        pub const MSG: usize = 8;
        /// Reject Info Length in bits 7..1.
        pub const INFO_LEN: usize = 9;
        pub const REASON: Range<usize> = 10..12;
        pub const ARI: Range<usize> = 12..84;
        pub const PRIVATE_DATA: Range<usize> = 84..232;
    }

    pub mod mra {
        use core::ops::Range;
        /// Message MRAed in bits 7..6.
        pub const MSG: usize = 8;
        /// Service Timeout in bits 7..3.
        pub const SERVICE_TIMEOUT: usize = 9;
        pub const PRIVATE_DATA: Range<usize> = 10..232;
    }

    pub mod dreq {
        use core::ops::Range;
        pub const REMOTE_QPN: Range<usize> = 8..11;
        pub const PRIVATE_DATA: Range<usize> = 12..232;
    }

    pub mod drep {
        use core::ops::Range;
        pub const PRIVATE_DATA: Range<usize> = 8..232;
    }
}

/// The common MAD header (IBTA §13.4.3; reference §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadHeader {
    /// BaseVersion, 1.
    pub base_version: u8,
    /// MgmtClass.
    pub mgmt_class: u8,
    /// ClassVersion.
    pub class_version: u8,
    /// Method.
    pub method: u8,
    /// Status.
    pub status: u16,
    /// ClassSpecific.
    pub class_specific: u16,
    /// TransactionID.
    pub tid: u64,
    /// AttributeID.
    pub attr_id: u16,
    /// AttributeModifier.
    pub attr_mod: u32,
}

impl MadHeader {
    /// Bytes on the wire.
    pub const LEN: usize = HEADER_LEN;

    /// A CM Send header for attribute `attr_id` with transaction ID `tid`.
    pub fn cm_send(attr_id: u16, tid: u64) -> MadHeader {
        MadHeader {
            base_version: BASE_VERSION,
            mgmt_class: CLASS_CM,
            class_version: CM_CLASS_VERSION,
            method: method::SEND,
            status: 0,
            class_specific: 0,
            tid,
            attr_id,
            attr_mod: 0,
        }
    }

    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<MadHeader, CmError> {
        use field::mad as f;
        check_len(buf, Self::LEN)?;
        Ok(MadHeader {
            base_version: buf[f::BASE_VERSION],
            mgmt_class: buf[f::MGMT_CLASS],
            class_version: buf[f::CLASS_VERSION],
            method: buf[f::METHOD],
            status: be::u16_at(buf, f::STATUS.start),
            class_specific: be::u16_at(buf, f::CLASS_SPECIFIC.start),
            tid: be::u64_at(buf, f::TID.start),
            attr_id: be::u16_at(buf, f::ATTR_ID.start),
            attr_mod: be::u32_at(buf, f::ATTR_MOD.start),
        })
    }

    /// Writes the header into the first [`MadHeader::LEN`] bytes of `buf` (the
    /// reserved bytes 18..20 as zero).
    ///
    /// # Panics
    /// If `buf` is shorter than [`MadHeader::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::mad as f;
        buf[..Self::LEN].fill(0);
        buf[f::BASE_VERSION] = self.base_version;
        buf[f::MGMT_CLASS] = self.mgmt_class;
        buf[f::CLASS_VERSION] = self.class_version;
        buf[f::METHOD] = self.method;
        be::put_u16(buf, f::STATUS.start, self.status);
        be::put_u16(buf, f::CLASS_SPECIFIC.start, self.class_specific);
        be::put_u64(buf, f::TID.start, self.tid);
        be::put_u16(buf, f::ATTR_ID.start, self.attr_id);
        be::put_u32(buf, f::ATTR_MOD.start, self.attr_mod);
    }
}

/// The payload of a CM MAD (bytes 24..256).
pub fn payload(mad: &[u8; MAD_LEN]) -> &[u8] {
    &mad[HEADER_LEN..]
}

/// A whole CM MAD: `header`, then a payload written by `body` into a zeroed 232-byte
/// buffer.
pub fn build(header: &MadHeader, body: impl FnOnce(&mut [u8])) -> [u8; MAD_LEN] {
    let mut mad = [0u8; MAD_LEN];
    header.emit(&mut mad);
    body(&mut mad[HEADER_LEN..]);
    mad
}

/// A CM message that can be put in a MAD.
pub trait CmMad {
    /// Its attribute ID.
    const ATTR_ID: u16;
    /// Writes the payload into the first [`PAYLOAD_LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`PAYLOAD_LEN`].
    fn emit(&self, buf: &mut [u8]);
    /// The whole CM Send MAD with transaction ID `tid`.
    fn to_mad(&self, tid: u64) -> [u8; MAD_LEN] {
        build(&MadHeader::cm_send(Self::ATTR_ID, tid), |p| self.emit(p))
    }
}

fn comm_ids(buf: &[u8]) -> (u32, u32) {
    (
        be::u32_at(buf, field::LOCAL_COMM_ID.start),
        be::u32_at(buf, field::REMOTE_COMM_ID.start),
    )
}

fn put_comm_ids(buf: &mut [u8], local: u32, remote: u32) {
    be::put_u32(buf, field::LOCAL_COMM_ID.start, local);
    be::put_u32(buf, field::REMOTE_COMM_ID.start, remote);
}

/// One path of a REQ (reference §1.4, REQ bytes 52..96 and 96..140).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PathRepr {
    /// Local (sender's) port LID.
    pub local_lid: u16,
    /// Remote (receiver's) port LID.
    pub remote_lid: u16,
    /// Local port GID.
    pub local_gid: [u8; 16],
    /// Remote port GID.
    pub remote_gid: [u8; 16],
    /// Flow Label, 20 bits.
    pub flow_label: u32,
    /// Packet Rate, 6 bits.
    pub packet_rate: u8,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// SL, 4 bits.
    pub sl: u8,
    /// Subnet Local.
    pub subnet_local: bool,
    /// Local ACK Timeout, 5 bits.
    pub local_ack_timeout: u8,
}

impl PathRepr {
    fn parse(p: &[u8]) -> PathRepr {
        use field::path as f;
        let fr = be::u32_at(p, f::FLOW_RATE.start);
        PathRepr {
            local_lid: be::u16_at(p, f::LOCAL_LID.start),
            remote_lid: be::u16_at(p, f::REMOTE_LID.start),
            local_gid: be::array(p, f::LOCAL_GID.start),
            remote_gid: be::array(p, f::REMOTE_GID.start),
            flow_label: fr >> 12,
            packet_rate: (fr & 0x3F) as u8,
            traffic_class: p[f::TRAFFIC_CLASS],
            hop_limit: p[f::HOP_LIMIT],
            sl: p[f::SL] >> 4,
            subnet_local: p[f::SL] & 0x08 != 0,
            local_ack_timeout: p[f::ACK_TIMEOUT] >> 3,
        }
    }

    fn emit(&self, p: &mut [u8]) {
        use field::path as f;
        be::put_u16(p, f::LOCAL_LID.start, self.local_lid);
        be::put_u16(p, f::REMOTE_LID.start, self.remote_lid);
        p[f::LOCAL_GID].copy_from_slice(&self.local_gid);
        p[f::REMOTE_GID].copy_from_slice(&self.remote_gid);
        let fr = (self.flow_label & 0xF_FFFF) << 12 | u32::from(self.packet_rate & 0x3F);
        be::put_u32(p, f::FLOW_RATE.start, fr);
        p[f::TRAFFIC_CLASS] = self.traffic_class;
        p[f::HOP_LIMIT] = self.hop_limit;
        p[f::SL] = (self.sl & 0x0F) << 4 | if self.subnet_local { 0x08 } else { 0 };
        p[f::ACK_TIMEOUT] = (self.local_ack_timeout & 0x1F) << 3;
    }
}

/// CM REQ (IBTA Table 106; reference §1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqRepr {
    /// Local Communication ID (the active side's).
    pub local_comm_id: u32,
    /// Service ID.
    pub service_id: u64,
    /// Local CA GUID (the active side's node GUID).
    pub local_ca_guid: u64,
    /// Local Q_Key (unused for RC).
    pub local_qkey: u32,
    /// Local QPN, 24 bits.
    pub local_qpn: u32,
    /// Responder Resources.
    pub responder_resources: u8,
    /// Initiator Depth.
    pub initiator_depth: u8,
    /// Remote CM Response Timeout, 5 bits.
    pub remote_cm_response_timeout: u8,
    /// Transport Service Type, 2 bits (0 RC).
    pub transport_type: u8,
    /// End-to-End Flow Control.
    pub e2e_flow_control: bool,
    /// Starting PSN, 24 bits.
    pub starting_psn: u32,
    /// Local CM Response Timeout, 5 bits.
    pub local_cm_response_timeout: u8,
    /// Retry Count, 3 bits.
    pub retry_count: u8,
    /// Partition Key.
    pub pkey: u16,
    /// Path Packet Payload MTU, 4 bits (1 = 256 … 5 = 4096).
    pub path_mtu: u8,
    /// RDC Exists.
    pub rdc_exists: bool,
    /// RNR Retry Count, 3 bits.
    pub rnr_retry_count: u8,
    /// Max CM Retries, 4 bits.
    pub max_cm_retries: u8,
    /// SRQ.
    pub srq: bool,
    /// Extended Transport Type, 3 bits.
    pub ext_transport_type: u8,
    /// Primary path.
    pub primary: PathRepr,
    /// Alternate path (all zero when there is none).
    pub alternate: PathRepr,
    /// Private Data, 92 bytes (SRP: the SRP_LOGIN_REQ in the first 64).
    pub private_data: [u8; 92],
}

impl ReqRepr {
    /// Reads a REQ payload.
    pub fn parse(p: &[u8]) -> Result<ReqRepr, CmError> {
        use field::req as f;
        check_len(p, PAYLOAD_LEN)?;
        let b43 = p[f::BYTE_43];
        let b47 = p[f::BYTE_47];
        let b50 = p[f::BYTE_50];
        let b51 = p[f::BYTE_51];
        let path = |at: usize| PathRepr::parse(&p[at..at + field::path::LEN]);
        Ok(ReqRepr {
            local_comm_id: be::u32_at(p, field::LOCAL_COMM_ID.start),
            service_id: be::u64_at(p, f::SERVICE_ID.start),
            local_ca_guid: be::u64_at(p, f::LOCAL_CA_GUID.start),
            local_qkey: be::u32_at(p, f::LOCAL_QKEY.start),
            local_qpn: be::u24_at(p, f::LOCAL_QPN.start),
            responder_resources: p[f::RESPONDER_RESOURCES],
            initiator_depth: p[f::INITIATOR_DEPTH],
            remote_cm_response_timeout: b43 >> 3,
            transport_type: (b43 >> 1) & 0x03,
            e2e_flow_control: b43 & 0x01 != 0,
            starting_psn: be::u24_at(p, f::STARTING_PSN.start),
            local_cm_response_timeout: b47 >> 3,
            retry_count: b47 & 0x07,
            pkey: be::u16_at(p, f::PKEY.start),
            path_mtu: b50 >> 4,
            rdc_exists: b50 & 0x08 != 0,
            rnr_retry_count: b50 & 0x07,
            max_cm_retries: b51 >> 4,
            srq: b51 & 0x08 != 0,
            ext_transport_type: b51 & 0x07,
            primary: path(f::PRIMARY_PATH),
            alternate: path(f::ALTERNATE_PATH),
            private_data: be::array(p, f::PRIVATE_DATA.start),
        })
    }
}

impl CmMad for ReqRepr {
    const ATTR_ID: u16 = attr::REQ;

    fn emit(&self, p: &mut [u8]) {
        use field::req as f;
        p[..PAYLOAD_LEN].fill(0);
        be::put_u32(p, field::LOCAL_COMM_ID.start, self.local_comm_id);
        be::put_u64(p, f::SERVICE_ID.start, self.service_id);
        be::put_u64(p, f::LOCAL_CA_GUID.start, self.local_ca_guid);
        be::put_u32(p, f::LOCAL_QKEY.start, self.local_qkey);
        be::put_u24(p, f::LOCAL_QPN.start, self.local_qpn);
        p[f::RESPONDER_RESOURCES] = self.responder_resources;
        p[f::INITIATOR_DEPTH] = self.initiator_depth;
        p[f::BYTE_43] = (self.remote_cm_response_timeout & 0x1F) << 3
            | (self.transport_type & 0x03) << 1
            | u8::from(self.e2e_flow_control);
        be::put_u24(p, f::STARTING_PSN.start, self.starting_psn);
        p[f::BYTE_47] = (self.local_cm_response_timeout & 0x1F) << 3 | (self.retry_count & 0x07);
        be::put_u16(p, f::PKEY.start, self.pkey);
        p[f::BYTE_50] = (self.path_mtu & 0x0F) << 4
            | if self.rdc_exists { 0x08 } else { 0 }
            | (self.rnr_retry_count & 0x07);
        p[f::BYTE_51] = (self.max_cm_retries & 0x0F) << 4
            | if self.srq { 0x08 } else { 0 }
            | (self.ext_transport_type & 0x07);
        self.primary
            .emit(&mut p[f::PRIMARY_PATH..f::PRIMARY_PATH + field::path::LEN]);
        self.alternate
            .emit(&mut p[f::ALTERNATE_PATH..f::ALTERNATE_PATH + field::path::LEN]);
        p[f::PRIVATE_DATA].copy_from_slice(&self.private_data);
    }
}

/// CM REP (IBTA Table 110; reference §1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepRepr {
    /// Local Communication ID (the passive side's).
    pub local_comm_id: u32,
    /// Remote Communication ID (the REQ's local ID).
    pub remote_comm_id: u32,
    /// Local Q_Key.
    pub local_qkey: u32,
    /// Local QPN, 24 bits.
    pub local_qpn: u32,
    /// Local EECN, 24 bits.
    pub local_eecn: u32,
    /// Starting PSN, 24 bits.
    pub starting_psn: u32,
    /// Responder Resources.
    pub responder_resources: u8,
    /// Initiator Depth.
    pub initiator_depth: u8,
    /// Target ACK Delay, 5 bits.
    pub target_ack_delay: u8,
    /// Failover Accepted, 2 bits.
    pub failover_accepted: u8,
    /// End-to-End Flow Control.
    pub e2e_flow_control: bool,
    /// RNR Retry Count, 3 bits.
    pub rnr_retry_count: u8,
    /// SRQ.
    pub srq: bool,
    /// Local CA GUID.
    pub local_ca_guid: u64,
    /// Private Data, 196 bytes (SRP: the SRP_LOGIN_RSP in the first 52).
    pub private_data: [u8; 196],
}

impl RepRepr {
    /// Reads a REP payload.
    pub fn parse(p: &[u8]) -> Result<RepRepr, CmError> {
        use field::rep as f;
        check_len(p, PAYLOAD_LEN)?;
        let (local_comm_id, remote_comm_id) = comm_ids(p);
        Ok(RepRepr {
            local_comm_id,
            remote_comm_id,
            local_qkey: be::u32_at(p, f::LOCAL_QKEY.start),
            local_qpn: be::u24_at(p, f::LOCAL_QPN.start),
            local_eecn: be::u24_at(p, f::LOCAL_EECN.start),
            starting_psn: be::u24_at(p, f::STARTING_PSN.start),
            responder_resources: p[f::RESPONDER_RESOURCES],
            initiator_depth: p[f::INITIATOR_DEPTH],
            target_ack_delay: p[f::BYTE_26] >> 3,
            failover_accepted: (p[f::BYTE_26] >> 1) & 0x03,
            e2e_flow_control: p[f::BYTE_26] & 0x01 != 0,
            rnr_retry_count: p[f::BYTE_27] >> 5,
            srq: p[f::BYTE_27] & 0x10 != 0,
            local_ca_guid: be::u64_at(p, f::LOCAL_CA_GUID.start),
            private_data: be::array(p, f::PRIVATE_DATA.start),
        })
    }
}

impl CmMad for RepRepr {
    const ATTR_ID: u16 = attr::REP;

    fn emit(&self, p: &mut [u8]) {
        use field::rep as f;
        p[..PAYLOAD_LEN].fill(0);
        put_comm_ids(p, self.local_comm_id, self.remote_comm_id);
        be::put_u32(p, f::LOCAL_QKEY.start, self.local_qkey);
        be::put_u24(p, f::LOCAL_QPN.start, self.local_qpn);
        be::put_u24(p, f::LOCAL_EECN.start, self.local_eecn);
        be::put_u24(p, f::STARTING_PSN.start, self.starting_psn);
        p[f::RESPONDER_RESOURCES] = self.responder_resources;
        p[f::INITIATOR_DEPTH] = self.initiator_depth;
        p[f::BYTE_26] = (self.target_ack_delay & 0x1F) << 3
            | (self.failover_accepted & 0x03) << 1
            | u8::from(self.e2e_flow_control);
        p[f::BYTE_27] = (self.rnr_retry_count & 0x07) << 5 | if self.srq { 0x10 } else { 0 };
        be::put_u64(p, f::LOCAL_CA_GUID.start, self.local_ca_guid);
        p[f::PRIVATE_DATA].copy_from_slice(&self.private_data);
    }
}

/// CM REJ (IBTA Table 108; reference §1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejRepr {
    /// Local Communication ID (the sender's; 0 if it has none).
    pub local_comm_id: u32,
    /// Remote Communication ID (the receiver's).
    pub remote_comm_id: u32,
    /// Message REJected ([`msg`]).
    pub msg_rejected: u8,
    /// Reject Info Length, 7 bits: the valid bytes of `ari`.
    pub reject_info_len: u8,
    /// Reason ([`rej`]).
    pub reason: u16,
    /// Additional Reject Information, 72 bytes.
    pub ari: [u8; 72],
    /// Private Data, 148 bytes (SRP: the SRP_LOGIN_REJ with reason 28).
    pub private_data: [u8; 148],
}

impl RejRepr {
    /// Reads a REJ payload.
    pub fn parse(p: &[u8]) -> Result<RejRepr, CmError> {
        use field::rej as f;
        check_len(p, PAYLOAD_LEN)?;
        let (local_comm_id, remote_comm_id) = comm_ids(p);
        Ok(RejRepr {
            local_comm_id,
            remote_comm_id,
            msg_rejected: p[f::MSG] >> 6,
            reject_info_len: p[f::INFO_LEN] >> 1,
            reason: be::u16_at(p, f::REASON.start),
            ari: be::array(p, f::ARI.start),
            private_data: be::array(p, f::PRIVATE_DATA.start),
        })
    }
}

impl CmMad for RejRepr {
    const ATTR_ID: u16 = attr::REJ;

    fn emit(&self, p: &mut [u8]) {
        use field::rej as f;
        p[..PAYLOAD_LEN].fill(0);
        put_comm_ids(p, self.local_comm_id, self.remote_comm_id);
        p[f::MSG] = (self.msg_rejected & 0x03) << 6;
        p[f::INFO_LEN] = (self.reject_info_len & 0x7F) << 1;
        be::put_u16(p, f::REASON.start, self.reason);
        p[f::ARI].copy_from_slice(&self.ari);
        p[f::PRIVATE_DATA].copy_from_slice(&self.private_data);
    }
}

/// CM MRA (IBTA Table 107; reference §1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MraRepr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Message MRAed ([`msg`]; 2 is a LAP here).
    pub msg_mraed: u8,
    /// Service Timeout, 5 bits.
    pub service_timeout: u8,
}

impl MraRepr {
    /// Reads an MRA payload (the private data is not kept).
    pub fn parse(p: &[u8]) -> Result<MraRepr, CmError> {
        use field::mra as f;
        check_len(p, PAYLOAD_LEN)?;
        let (local_comm_id, remote_comm_id) = comm_ids(p);
        Ok(MraRepr {
            local_comm_id,
            remote_comm_id,
            msg_mraed: p[f::MSG] >> 6,
            service_timeout: p[f::SERVICE_TIMEOUT] >> 3,
        })
    }
}

impl CmMad for MraRepr {
    const ATTR_ID: u16 = attr::MRA;

    fn emit(&self, p: &mut [u8]) {
        use field::mra as f;
        p[..PAYLOAD_LEN].fill(0);
        put_comm_ids(p, self.local_comm_id, self.remote_comm_id);
        p[f::MSG] = (self.msg_mraed & 0x03) << 6;
        p[f::SERVICE_TIMEOUT] = (self.service_timeout & 0x1F) << 3;
    }
}

/// CM RTU, DREP (IBTA Tables 111, 113): the two comm IDs and private data nobody here
/// uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommIds {
    /// Local Communication ID (the sender's).
    pub local_comm_id: u32,
    /// Remote Communication ID (the receiver's).
    pub remote_comm_id: u32,
}

impl CommIds {
    /// Reads the two IDs at the start of any CM payload but a REQ's.
    pub fn parse(p: &[u8]) -> Result<CommIds, CmError> {
        check_len(p, PAYLOAD_LEN)?;
        let (local_comm_id, remote_comm_id) = comm_ids(p);
        Ok(CommIds {
            local_comm_id,
            remote_comm_id,
        })
    }

    /// Writes a payload with these IDs and zero private data (an RTU or a DREP).
    ///
    /// # Panics
    /// If `p` is shorter than [`PAYLOAD_LEN`].
    pub fn emit(&self, p: &mut [u8]) {
        p[..PAYLOAD_LEN].fill(0);
        put_comm_ids(p, self.local_comm_id, self.remote_comm_id);
    }
}

/// CM DREQ (IBTA Table 112; reference §1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DreqRepr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Remote QPN (the receiver's QP), 24 bits.
    pub remote_qpn: u32,
}

impl DreqRepr {
    /// Reads a DREQ payload.
    pub fn parse(p: &[u8]) -> Result<DreqRepr, CmError> {
        check_len(p, PAYLOAD_LEN)?;
        let (local_comm_id, remote_comm_id) = comm_ids(p);
        Ok(DreqRepr {
            local_comm_id,
            remote_comm_id,
            remote_qpn: be::u24_at(p, field::dreq::REMOTE_QPN.start),
        })
    }
}

impl CmMad for DreqRepr {
    const ATTR_ID: u16 = attr::DREQ;

    fn emit(&self, p: &mut [u8]) {
        p[..PAYLOAD_LEN].fill(0);
        put_comm_ids(p, self.local_comm_id, self.remote_comm_id);
        be::put_u24(p, field::dreq::REMOTE_QPN.start, self.remote_qpn);
    }
}

/// An RTU (IBTA Table 111).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtu(pub CommIds);

impl CmMad for Rtu {
    const ATTR_ID: u16 = attr::RTU;
    fn emit(&self, p: &mut [u8]) {
        self.0.emit(p);
    }
}

/// A DREP (IBTA Table 113).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drep(pub CommIds);

impl CmMad for Drep {
    const ATTR_ID: u16 = attr::DREP;
    fn emit(&self, p: &mut [u8]) {
        self.0.emit(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rep_bits_from_0xa5() {
        let rep = RepRepr {
            local_comm_id: 0x0102_0304,
            remote_comm_id: 0x0506_0708,
            local_qkey: 0,
            local_qpn: 0x00AB_CDEF,
            local_eecn: 0,
            starting_psn: 0x0012_3456,
            responder_resources: 4,
            initiator_depth: 4,
            target_ack_delay: 16,
            failover_accepted: 0,
            e2e_flow_control: true,
            rnr_retry_count: 7,
            srq: true,
            local_ca_guid: 0x0002_C903_0000_0001,
            private_data: [0; 196],
        };
        let mut p = [0xA5u8; PAYLOAD_LEN];
        rep.emit(&mut p);
        assert_eq!(&p[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&p[12..16], &[0xAB, 0xCD, 0xEF, 0]);
        assert_eq!(&p[20..24], &[0x12, 0x34, 0x56, 0]);
        assert_eq!((p[24], p[25], p[26], p[27]), (4, 4, 0x81, 0xF0));
        assert!(p[36..].iter().all(|&b| b == 0));
        assert_eq!(RepRepr::parse(&p), Ok(rep));
    }

    #[test]
    fn rej_bits() {
        let mut r = RejRepr {
            local_comm_id: 0,
            remote_comm_id: 9,
            msg_rejected: msg::REP,
            reject_info_len: 1,
            reason: rej::INVALID_CLASS_VERSION,
            ari: [0; 72],
            private_data: [0; 148],
        };
        r.ari[0] = 2;
        let mut p = [0xA5u8; PAYLOAD_LEN];
        r.emit(&mut p);
        assert_eq!((p[8], p[9], p[10], p[11], p[12]), (0x40, 0x02, 0, 31, 2));
        assert_eq!(RejRepr::parse(&p), Ok(r));
    }

    #[test]
    fn times() {
        assert_eq!(ib_time_ns(0), 4096);
        assert_eq!(ib_time_ns(20), 4096 << 20);
        assert_eq!(ib_time_ns(200), 4096 << 31);
    }
}
