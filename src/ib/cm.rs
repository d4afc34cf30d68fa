//! Communication management messages (class 0x07, ClassVersion 2, method Send; IBTA
//! vol. 1 §12.6, Tables 106–113, layouts in `reference/srp-cm-sa-dm.md` §1.4): REQ,
//! REP, REJ, RTU, MRA, DREQ and DREP.
//!
//! Each message's `Repr` reads and writes the 232-byte CM payload that follows the MAD
//! common header (MAD bytes 24..256); [`CmMessage`] reads and writes whole MADs.
//! Private data is carried as a borrowed slice: parsed messages lend the message's
//! whole private-data area; on emit a shorter slice is padded with zeros. What the
//! private data means (SRP_LOGIN_REQ/RSP/REJ) is the SRP crate's business.

use core::ops::Range;

use super::mad::{MAD_LEN, MadHeader, attr, class, class_version, method};
use super::sa::PathRecord;
use super::{Error, Gid, Mtu, Rd, Wr, fits, open_enum, pack, unpack};

/// Where the CM payload sits in a MAD.
pub const CM_PAYLOAD: Range<usize> = 24..MAD_LEN;
/// Length of every CM message payload.
pub const CM_LEN: usize = 232;

/// The permissive LID, used in a REQ whose path leaves the subnet (reference §1.4).
pub const PERMISSIVE_LID: u16 = 0xFFFF;

open_enum! {
    /// REQ Transport Service Type, 2 bits (IBTA vol. 1 §12.6.5, Table 106).
    #[derive(Default)]
    pub enum TransportType(u8) {
        /// Reliable connected.
        #[default]
        Rc = 0,
        /// Unreliable connected.
        Uc = 1,
        /// Reliable datagram.
        Rd = 2,
        /// Use the Extended Transport Type field (XRC).
        Extended = 3,
    }
}

open_enum! {
    /// REJ "Message REJected", 2 bits (IBTA vol. 1 §12.6.7, Table 108).
    pub enum MsgRejected(u8) {
        /// The REQ was rejected.
        Req = 0,
        /// The REP was rejected.
        Rep = 1,
        /// Another message (LAP, ...).
        Other = 2,
    }
}

open_enum! {
    /// MRA "Message MRAed", 2 bits (IBTA vol. 1 §12.6.6, Table 107).
    pub enum MsgMraed(u8) {
        /// The REQ.
        Req = 0,
        /// The REP.
        Rep = 1,
        /// The LAP.
        Lap = 2,
    }
}

open_enum! {
    /// REJ reasons (IBTA vol. 1 §12.6.7.2, Table 109; reference §1.4).
    pub enum RejReason(u16) {
        /// No QP available.
        NoQp = 1,
        /// No EEC available.
        NoEec = 2,
        /// No resources.
        NoResources = 3,
        /// Timeout.
        Timeout = 4,
        /// Unsupported request.
        Unsupported = 5,
        /// Invalid communication ID.
        InvalidCommId = 6,
        /// Invalid communication instance.
        InvalidCommInstance = 7,
        /// Invalid service ID (nothing listens on it).
        InvalidServiceId = 8,
        /// Invalid transport service type.
        InvalidTransportType = 9,
        /// Stale connection: retry after a delay (reference §1.4, §6 item 4).
        StaleConnection = 10,
        /// RDC does not exist.
        RdcNotExist = 11,
        /// Primary remote port GID rejected.
        InvalidGid = 12,
        /// Primary remote port LID rejected.
        InvalidLid = 13,
        /// Primary SL rejected.
        InvalidSl = 14,
        /// Primary traffic class rejected.
        InvalidTrafficClass = 15,
        /// Primary hop limit rejected.
        InvalidHopLimit = 16,
        /// Primary packet rate rejected.
        InvalidPacketRate = 17,
        /// Alternate remote port GID rejected.
        InvalidAltGid = 18,
        /// Alternate remote port LID rejected.
        InvalidAltLid = 19,
        /// Alternate SL rejected.
        InvalidAltSl = 20,
        /// Alternate traffic class rejected.
        InvalidAltTrafficClass = 21,
        /// Alternate hop limit rejected.
        InvalidAltHopLimit = 22,
        /// Alternate packet rate rejected.
        InvalidAltPacketRate = 23,
        /// Port CM redirect: the ARI holds a ClassPortInfo.
        PortCmRedirect = 24,
        /// Port redirect.
        PortRedirect = 25,
        /// Invalid path MTU.
        InvalidMtu = 26,
        /// Insufficient responder resources.
        InsufficientRespResources = 27,
        /// Consumer defined: SRP puts SRP_LOGIN_REJ in the private data.
        ConsumerDefined = 28,
        /// Invalid RNR retry count.
        InvalidRnrRetry = 29,
        /// Duplicate local communication ID.
        DuplicateLocalCommId = 30,
        /// Invalid class version.
        InvalidClassVersion = 31,
        /// Invalid primary flow label.
        InvalidFlowLabel = 32,
        /// Invalid alternate flow label.
        InvalidAltFlowLabel = 33,
        /// Vendor option not supported.
        VendorOptionNotSupported = 35,
    }
}

/// Offsets in a REQ/LAP path description, relative to its start (REQ byte 52 for the
/// primary path, 96 for the alternate; reference §1.4).
mod path_field {
    use core::ops::Range;
    pub const LOCAL_LID: Range<usize> = 0..2;
    pub const REMOTE_LID: Range<usize> = 2..4;
    pub const LOCAL_GID: Range<usize> = 4..20;
    pub const REMOTE_GID: Range<usize> = 20..36;
    /// FlowLabel (31..12), reserved (11..6), PacketRate (5..0).
    pub const FLOW_RATE: Range<usize> = 36..40;
    pub const TRAFFIC_CLASS: usize = 40;
    pub const HOP_LIMIT: usize = 41;
    /// SL (7..4), SubnetLocal (3), reserved (2..0).
    pub const SL_SUBNET_LOCAL: usize = 42;
    /// LocalACKTimeout (7..3), reserved (2..0; SAP supported on the alternate path).
    pub const ACK_TIMEOUT: usize = 43;
    pub const END: usize = 44;
}

/// One path of a REQ (IBTA vol. 1 §12.6.5, Table 106, primary/alternate path fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmPath {
    /// Local Port LID (permissive when the path leaves the subnet).
    pub local_lid: u16,
    /// Remote Port LID.
    pub remote_lid: u16,
    /// Local Port GID.
    pub local_gid: Gid,
    /// Remote Port GID.
    pub remote_gid: Gid,
    /// Flow Label, 20 bits.
    pub flow_label: u32,
    /// Packet Rate, 6 bits (PathRecord Rate code).
    pub packet_rate: u8,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// SL, 4 bits.
    pub sl: u8,
    /// Subnet Local.
    pub subnet_local: bool,
    /// Local ACK Timeout, 5 bits (4.096 µs × 2^n).
    pub local_ack_timeout: u8,
}

impl CmPath {
    /// Length of a path description.
    pub const LEN: usize = path_field::END;

    /// The path a REQ carries for a PathRecord, filled as reference §1.4 describes:
    /// LIDs from the record when its hop limit is at most 1 (Subnet Local set), else
    /// both permissive; GIDs, flow label, rate, traffic class, hop limit and SL from
    /// the record. `local_ack_timeout` is the caller's (it depends on the CA's ACK
    /// delay as well as the record's packet lifetime).
    pub fn from_path_record(rec: &PathRecord, local_ack_timeout: u8) -> Self {
        let local = rec.hop_limit <= 1;
        CmPath {
            local_lid: if local { rec.slid } else { PERMISSIVE_LID },
            remote_lid: if local { rec.dlid } else { PERMISSIVE_LID },
            local_gid: rec.sgid,
            remote_gid: rec.dgid,
            flow_label: rec.flow_label,
            packet_rate: rec.rate,
            traffic_class: rec.tclass,
            hop_limit: rec.hop_limit,
            sl: rec.sl,
            subnet_local: local,
            local_ack_timeout,
        }
    }

    /// Reads a path description from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "CM path", Self::LEN)?;
        let fr = r.u32(path_field::FLOW_RATE)?;
        let ss = r.u8(path_field::SL_SUBNET_LOCAL)?;
        Ok(CmPath {
            local_lid: r.u16(path_field::LOCAL_LID)?,
            remote_lid: r.u16(path_field::REMOTE_LID)?,
            local_gid: r.arr(path_field::LOCAL_GID)?,
            remote_gid: r.arr(path_field::REMOTE_GID)?,
            flow_label: fr >> 12,
            packet_rate: unpack(fr.to_be_bytes()[3], 0, 6),
            traffic_class: r.u8(path_field::TRAFFIC_CLASS)?,
            hop_limit: r.u8(path_field::HOP_LIMIT)?,
            sl: unpack(ss, 4, 4),
            subnet_local: ss & 0x08 != 0,
            local_ack_timeout: unpack(r.u8(path_field::ACK_TIMEOUT)?, 3, 5),
        })
    }

    /// Writes the path description into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "CM path";
        fits(W, "FlowLabel", self.flow_label.into(), 20)?;
        let rate = pack(W, "PacketRate", self.packet_rate, 0, 6)?;
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.u16(path_field::LOCAL_LID, self.local_lid)?;
        w.u16(path_field::REMOTE_LID, self.remote_lid)?;
        w.bytes(path_field::LOCAL_GID, &self.local_gid)?;
        w.bytes(path_field::REMOTE_GID, &self.remote_gid)?;
        w.u32(
            path_field::FLOW_RATE,
            self.flow_label << 12 | u32::from(rate),
        )?;
        w.u8(path_field::TRAFFIC_CLASS, self.traffic_class)?;
        w.u8(path_field::HOP_LIMIT, self.hop_limit)?;
        w.u8(
            path_field::SL_SUBNET_LOCAL,
            pack(W, "SL", self.sl, 4, 4)? | u8::from(self.subnet_local) << 3,
        )?;
        w.u8(
            path_field::ACK_TIMEOUT,
            pack(W, "LocalACKTimeout", self.local_ack_timeout, 3, 5)?,
        )
    }
}

/// Offsets in the CM payload shared by every message.
mod common {
    use core::ops::Range;
    pub const LOCAL_COMM_ID: Range<usize> = 0..4;
    pub const REMOTE_COMM_ID: Range<usize> = 4..8;
}

/// Offsets in a REQ payload (reference §1.4, IBTA vol. 1 Table 106).
mod req_field {
    use core::ops::Range;
    pub const LOCAL_COMM_ID: Range<usize> = super::common::LOCAL_COMM_ID;
    // 4..8: reserved (ECE vendor ID in recent Linux; sent as 0).
    pub const SERVICE_ID: Range<usize> = 8..16;
    pub const LOCAL_CA_GUID: Range<usize> = 16..24;
    // 24..28 reserved.
    pub const LOCAL_QKEY: Range<usize> = 28..32;
    pub const LOCAL_QPN: Range<usize> = 32..35;
    pub const RESPONDER_RESOURCES: usize = 35;
    pub const LOCAL_EECN: Range<usize> = 36..39;
    pub const INITIATOR_DEPTH: usize = 39;
    pub const REMOTE_EECN: Range<usize> = 40..43;
    /// RemoteCMResponseTimeout (7..3), TransportServiceType (2..1), E2E flow control (0).
    pub const REMOTE_TIMEOUT_TST_FC: usize = 43;
    pub const STARTING_PSN: Range<usize> = 44..47;
    /// LocalCMResponseTimeout (7..3), RetryCount (2..0).
    pub const LOCAL_TIMEOUT_RETRY: usize = 47;
    pub const PKEY: Range<usize> = 48..50;
    /// PathMTU (7..4), RDCExists (3), RNRRetryCount (2..0).
    pub const MTU_RDC_RNR: usize = 50;
    /// MaxCMRetries (7..4), SRQ (3), ExtendedTransportType (2..0).
    pub const MAX_RETRIES_SRQ_EXT: usize = 51;
    pub const PRIMARY_PATH: Range<usize> = 52..96;
    pub const ALTERNATE_PATH: Range<usize> = 96..140;
    pub const PRIVATE_DATA: Range<usize> = 140..232;
}

/// Room for REQ private data.
pub const REQ_PRIVATE_DATA_LEN: usize = 92;

/// ConnectRequest (IBTA vol. 1 §12.6.5, Table 106).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Req<'a> {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// ServiceID.
    pub service_id: u64,
    /// Local CA GUID.
    pub local_ca_guid: u64,
    /// Local Q_Key (unused for RC).
    pub local_qkey: u32,
    /// Local QPN, 24 bits.
    pub local_qpn: u32,
    /// Responder Resources (RDMA reads the peer may have outstanding at us).
    pub responder_resources: u8,
    /// Local EECN, 24 bits.
    pub local_eecn: u32,
    /// Initiator Depth.
    pub initiator_depth: u8,
    /// Remote EECN, 24 bits.
    pub remote_eecn: u32,
    /// Remote CM Response Timeout, 5 bits.
    pub remote_cm_response_timeout: u8,
    /// Transport Service Type.
    pub transport_type: TransportType,
    /// End-to-End Flow Control.
    pub end_to_end_flow_control: bool,
    /// Starting PSN, 24 bits.
    pub starting_psn: u32,
    /// Local CM Response Timeout, 5 bits.
    pub local_cm_response_timeout: u8,
    /// Retry Count, 3 bits.
    pub retry_count: u8,
    /// Partition Key.
    pub pkey: u16,
    /// Path Packet Payload MTU, 4 bits.
    pub path_mtu: Mtu,
    /// RDC Exists.
    pub rdc_exists: bool,
    /// RNR Retry Count, 3 bits (7 = infinite).
    pub rnr_retry_count: u8,
    /// Max CM Retries, 4 bits.
    pub max_cm_retries: u8,
    /// SRQ.
    pub srq: bool,
    /// Extended Transport Type, 3 bits.
    pub extended_transport_type: u8,
    /// Primary path.
    pub primary: CmPath,
    /// Alternate path; `None` is sent as zeros, and a path whose every field is zero
    /// (reserved bits aside) is read as `None`.
    pub alternate: Option<CmPath>,
    /// Private data, at most [`REQ_PRIVATE_DATA_LEN`] bytes.
    pub private_data: &'a [u8],
}

impl<'a> Req<'a> {
    /// Payload length.
    pub const LEN: usize = CM_LEN;

    /// Reads a REQ payload.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "CM REQ", Self::LEN)?;
        let tf = r.u8(req_field::REMOTE_TIMEOUT_TST_FC)?;
        let lr = r.u8(req_field::LOCAL_TIMEOUT_RETRY)?;
        let mr = r.u8(req_field::MTU_RDC_RNR)?;
        let ms = r.u8(req_field::MAX_RETRIES_SRQ_EXT)?;
        let alt = r.bytes(req_field::ALTERNATE_PATH)?;
        Ok(Req {
            local_comm_id: r.u32(req_field::LOCAL_COMM_ID)?,
            service_id: r.u64(req_field::SERVICE_ID)?,
            local_ca_guid: r.u64(req_field::LOCAL_CA_GUID)?,
            local_qkey: r.u32(req_field::LOCAL_QKEY)?,
            local_qpn: r.u24(req_field::LOCAL_QPN)?,
            responder_resources: r.u8(req_field::RESPONDER_RESOURCES)?,
            local_eecn: r.u24(req_field::LOCAL_EECN)?,
            initiator_depth: r.u8(req_field::INITIATOR_DEPTH)?,
            remote_eecn: r.u24(req_field::REMOTE_EECN)?,
            remote_cm_response_timeout: unpack(tf, 3, 5),
            transport_type: TransportType::from(unpack(tf, 1, 2)),
            end_to_end_flow_control: tf & 1 != 0,
            starting_psn: r.u24(req_field::STARTING_PSN)?,
            local_cm_response_timeout: unpack(lr, 3, 5),
            retry_count: unpack(lr, 0, 3),
            pkey: r.u16(req_field::PKEY)?,
            path_mtu: Mtu::from(unpack(mr, 4, 4)),
            rdc_exists: mr & 0x08 != 0,
            rnr_retry_count: unpack(mr, 0, 3),
            max_cm_retries: unpack(ms, 4, 4),
            srq: ms & 0x08 != 0,
            extended_transport_type: unpack(ms, 0, 3),
            primary: CmPath::parse(r.bytes(req_field::PRIMARY_PATH)?)?,
            alternate: Some(CmPath::parse(alt)?).filter(|p| *p != CmPath::default()),
            private_data: r.bytes(req_field::PRIVATE_DATA)?,
        })
    }

    /// Writes the REQ payload into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "CM REQ";
        let tf = pack(
            W,
            "RemoteCMResponseTimeout",
            self.remote_cm_response_timeout,
            3,
            5,
        )? | pack(W, "TransportServiceType", self.transport_type.into(), 1, 2)?
            | u8::from(self.end_to_end_flow_control);
        let lr = pack(
            W,
            "LocalCMResponseTimeout",
            self.local_cm_response_timeout,
            3,
            5,
        )? | pack(W, "RetryCount", self.retry_count, 0, 3)?;
        let mr = pack(W, "PathMTU", self.path_mtu.into(), 4, 4)?
            | u8::from(self.rdc_exists) << 3
            | pack(W, "RNRRetryCount", self.rnr_retry_count, 0, 3)?;
        let ms = pack(W, "MaxCMRetries", self.max_cm_retries, 4, 4)?
            | u8::from(self.srq) << 3
            | pack(
                W,
                "ExtendedTransportType",
                self.extended_transport_type,
                0,
                3,
            )?;
        {
            let mut w = Wr::new(buf, W, Self::LEN)?;
            w.u32(req_field::LOCAL_COMM_ID, self.local_comm_id)?;
            w.u64(req_field::SERVICE_ID, self.service_id)?;
            w.u64(req_field::LOCAL_CA_GUID, self.local_ca_guid)?;
            w.u32(req_field::LOCAL_QKEY, self.local_qkey)?;
            w.u24("LocalQPN", req_field::LOCAL_QPN, self.local_qpn)?;
            w.u8(req_field::RESPONDER_RESOURCES, self.responder_resources)?;
            w.u24("LocalEECN", req_field::LOCAL_EECN, self.local_eecn)?;
            w.u8(req_field::INITIATOR_DEPTH, self.initiator_depth)?;
            w.u24("RemoteEECN", req_field::REMOTE_EECN, self.remote_eecn)?;
            w.u8(req_field::REMOTE_TIMEOUT_TST_FC, tf)?;
            w.u24("StartingPSN", req_field::STARTING_PSN, self.starting_psn)?;
            w.u8(req_field::LOCAL_TIMEOUT_RETRY, lr)?;
            w.u16(req_field::PKEY, self.pkey)?;
            w.u8(req_field::MTU_RDC_RNR, mr)?;
            w.u8(req_field::MAX_RETRIES_SRQ_EXT, ms)?;
            w.private("PrivateData", req_field::PRIVATE_DATA, self.private_data)?;
        }
        self.primary
            .emit(buf.get_mut(req_field::PRIMARY_PATH).unwrap_or_default())?;
        if let Some(alt) = &self.alternate {
            alt.emit(buf.get_mut(req_field::ALTERNATE_PATH).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Offsets in a REP payload (reference §1.4, IBTA vol. 1 Table 110).
mod rep_field {
    use core::ops::Range;
    pub const LOCAL_COMM_ID: Range<usize> = super::common::LOCAL_COMM_ID;
    pub const REMOTE_COMM_ID: Range<usize> = super::common::REMOTE_COMM_ID;
    pub const LOCAL_QKEY: Range<usize> = 8..12;
    pub const LOCAL_QPN: Range<usize> = 12..15;
    pub const LOCAL_EECN: Range<usize> = 16..19;
    pub const STARTING_PSN: Range<usize> = 20..23;
    pub const RESPONDER_RESOURCES: usize = 24;
    pub const INITIATOR_DEPTH: usize = 25;
    /// TargetACKDelay (7..3), FailoverAccepted (2..1), E2E flow control (0).
    pub const ACK_DELAY_FAILOVER_FC: usize = 26;
    /// RNRRetryCount (7..5), SRQ (4).
    pub const RNR_SRQ: usize = 27;
    pub const LOCAL_CA_GUID: Range<usize> = 28..36;
    pub const PRIVATE_DATA: Range<usize> = 36..232;
}

/// Room for REP private data.
pub const REP_PRIVATE_DATA_LEN: usize = 196;

/// ConnectReply (IBTA vol. 1 §12.6.8, Table 110).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rep<'a> {
    /// Local Communication ID (the sender's).
    pub local_comm_id: u32,
    /// Remote Communication ID (echoes the REQ's local ID).
    pub remote_comm_id: u32,
    /// Local Q_Key.
    pub local_qkey: u32,
    /// Local QPN, 24 bits: the peer's QP.
    pub local_qpn: u32,
    /// Local EECN, 24 bits.
    pub local_eecn: u32,
    /// Starting PSN, 24 bits: the peer's send PSN (our RQ PSN).
    pub starting_psn: u32,
    /// Responder Resources (becomes our initiator depth).
    pub responder_resources: u8,
    /// Initiator Depth (becomes our responder resources).
    pub initiator_depth: u8,
    /// Target ACK Delay, 5 bits.
    pub target_ack_delay: u8,
    /// Failover Accepted, 2 bits (0 accepted, 1 unsupported, 2 rejected).
    pub failover_accepted: u8,
    /// End-to-End Flow Control.
    pub end_to_end_flow_control: bool,
    /// RNR Retry Count, 3 bits.
    pub rnr_retry_count: u8,
    /// SRQ.
    pub srq: bool,
    /// Local CA GUID.
    pub local_ca_guid: u64,
    /// Private data, at most [`REP_PRIVATE_DATA_LEN`] bytes.
    pub private_data: &'a [u8],
}

impl<'a> Rep<'a> {
    /// Payload length.
    pub const LEN: usize = CM_LEN;

    /// Reads a REP payload.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "CM REP", Self::LEN)?;
        let af = r.u8(rep_field::ACK_DELAY_FAILOVER_FC)?;
        let rs = r.u8(rep_field::RNR_SRQ)?;
        Ok(Rep {
            local_comm_id: r.u32(rep_field::LOCAL_COMM_ID)?,
            remote_comm_id: r.u32(rep_field::REMOTE_COMM_ID)?,
            local_qkey: r.u32(rep_field::LOCAL_QKEY)?,
            local_qpn: r.u24(rep_field::LOCAL_QPN)?,
            local_eecn: r.u24(rep_field::LOCAL_EECN)?,
            starting_psn: r.u24(rep_field::STARTING_PSN)?,
            responder_resources: r.u8(rep_field::RESPONDER_RESOURCES)?,
            initiator_depth: r.u8(rep_field::INITIATOR_DEPTH)?,
            target_ack_delay: unpack(af, 3, 5),
            failover_accepted: unpack(af, 1, 2),
            end_to_end_flow_control: af & 1 != 0,
            rnr_retry_count: unpack(rs, 5, 3),
            srq: rs & 0x10 != 0,
            local_ca_guid: r.u64(rep_field::LOCAL_CA_GUID)?,
            private_data: r.bytes(rep_field::PRIVATE_DATA)?,
        })
    }

    /// Writes the REP payload into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "CM REP";
        let af = pack(W, "TargetACKDelay", self.target_ack_delay, 3, 5)?
            | pack(W, "FailoverAccepted", self.failover_accepted, 1, 2)?
            | u8::from(self.end_to_end_flow_control);
        let rs = pack(W, "RNRRetryCount", self.rnr_retry_count, 5, 3)? | u8::from(self.srq) << 4;
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.u32(rep_field::LOCAL_COMM_ID, self.local_comm_id)?;
        w.u32(rep_field::REMOTE_COMM_ID, self.remote_comm_id)?;
        w.u32(rep_field::LOCAL_QKEY, self.local_qkey)?;
        w.u24("LocalQPN", rep_field::LOCAL_QPN, self.local_qpn)?;
        w.u24("LocalEECN", rep_field::LOCAL_EECN, self.local_eecn)?;
        w.u24("StartingPSN", rep_field::STARTING_PSN, self.starting_psn)?;
        w.u8(rep_field::RESPONDER_RESOURCES, self.responder_resources)?;
        w.u8(rep_field::INITIATOR_DEPTH, self.initiator_depth)?;
        w.u8(rep_field::ACK_DELAY_FAILOVER_FC, af)?;
        w.u8(rep_field::RNR_SRQ, rs)?;
        w.u64(rep_field::LOCAL_CA_GUID, self.local_ca_guid)?;
        w.private("PrivateData", rep_field::PRIVATE_DATA, self.private_data)
    }
}

/// Offsets in a REJ payload (reference §1.4, IBTA vol. 1 Table 108).
mod rej_field {
    use core::ops::Range;
    pub const LOCAL_COMM_ID: Range<usize> = super::common::LOCAL_COMM_ID;
    pub const REMOTE_COMM_ID: Range<usize> = super::common::REMOTE_COMM_ID;
    /// MessageREJected (7..6).
    pub const MSG_REJECTED: usize = 8;
    /// RejectInfoLength (7..1).
    pub const ARI_LEN: usize = 9;
    pub const REASON: Range<usize> = 10..12;
    pub const ARI: Range<usize> = 12..84;
    pub const PRIVATE_DATA: Range<usize> = 84..232;
}

/// Room for Additional Reject Information.
pub const REJ_ARI_LEN: usize = 72;
/// Room for REJ private data.
pub const REJ_PRIVATE_DATA_LEN: usize = 148;

/// ConnectReject (IBTA vol. 1 §12.6.7, Table 108).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rej<'a> {
    /// Local Communication ID (the sender's; 0 if it never allocated one).
    pub local_comm_id: u32,
    /// Remote Communication ID (the rejected side's).
    pub remote_comm_id: u32,
    /// Which message is rejected.
    pub msg_rejected: MsgRejected,
    /// Reason.
    pub reason: RejReason,
    /// Additional Reject Information: the first RejectInfoLength bytes of the ARI.
    pub ari: &'a [u8],
    /// Private data, at most [`REJ_PRIVATE_DATA_LEN`] bytes (SRP_LOGIN_REJ with
    /// reason 28).
    pub private_data: &'a [u8],
}

impl<'a> Rej<'a> {
    /// Payload length.
    pub const LEN: usize = CM_LEN;

    /// Reads a REJ payload. A RejectInfoLength above 72 is [`Error::Field`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        const W: &str = "CM REJ";
        let r = Rd::new(buf, W, Self::LEN)?;
        let ari_len = unpack(r.u8(rej_field::ARI_LEN)?, 1, 7);
        let ari = r
            .bytes(rej_field::ARI)?
            .get(..usize::from(ari_len))
            .ok_or(Error::Field {
                what: W,
                field: "RejectInfoLength",
                value: ari_len.into(),
            })?;
        Ok(Rej {
            local_comm_id: r.u32(rej_field::LOCAL_COMM_ID)?,
            remote_comm_id: r.u32(rej_field::REMOTE_COMM_ID)?,
            msg_rejected: MsgRejected::from(unpack(r.u8(rej_field::MSG_REJECTED)?, 6, 2)),
            reason: RejReason::from(r.u16(rej_field::REASON)?),
            ari,
            private_data: r.bytes(rej_field::PRIVATE_DATA)?,
        })
    }

    /// Writes the REJ payload into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "CM REJ";
        let msg = pack(W, "MessageREJected", self.msg_rejected.into(), 6, 2)?;
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.private("ARI", rej_field::ARI, self.ari)?;
        // At most 72 after the check above: fits in 7 bits.
        let ari_len = u8::try_from(self.ari.len()).unwrap_or(u8::MAX);
        w.u32(rej_field::LOCAL_COMM_ID, self.local_comm_id)?;
        w.u32(rej_field::REMOTE_COMM_ID, self.remote_comm_id)?;
        w.u8(rej_field::MSG_REJECTED, msg)?;
        w.u8(
            rej_field::ARI_LEN,
            pack(W, "RejectInfoLength", ari_len, 1, 7)?,
        )?;
        w.u16(rej_field::REASON, self.reason.into())?;
        w.private("PrivateData", rej_field::PRIVATE_DATA, self.private_data)
    }
}

/// Offsets in an MRA payload (reference §1.4, IBTA vol. 1 Table 107).
mod mra_field {
    use core::ops::Range;
    pub const LOCAL_COMM_ID: Range<usize> = super::common::LOCAL_COMM_ID;
    pub const REMOTE_COMM_ID: Range<usize> = super::common::REMOTE_COMM_ID;
    /// MessageMRAed (7..6).
    pub const MSG_MRAED: usize = 8;
    /// ServiceTimeout (7..3).
    pub const SERVICE_TIMEOUT: usize = 9;
    pub const PRIVATE_DATA: Range<usize> = 10..232;
}

/// Room for MRA private data.
pub const MRA_PRIVATE_DATA_LEN: usize = 222;

/// MessageReceiptAcknowledgement (IBTA vol. 1 §12.6.6, Table 107): the sender needs
/// more time; the receiver extends its response timer by the service timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mra<'a> {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Which message is acknowledged.
    pub msg_mraed: MsgMraed,
    /// Service Timeout, 5 bits (4.096 µs × 2^n).
    pub service_timeout: u8,
    /// Private data, at most [`MRA_PRIVATE_DATA_LEN`] bytes.
    pub private_data: &'a [u8],
}

impl<'a> Mra<'a> {
    /// Payload length.
    pub const LEN: usize = CM_LEN;

    /// Reads an MRA payload.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "CM MRA", Self::LEN)?;
        Ok(Mra {
            local_comm_id: r.u32(mra_field::LOCAL_COMM_ID)?,
            remote_comm_id: r.u32(mra_field::REMOTE_COMM_ID)?,
            msg_mraed: MsgMraed::from(unpack(r.u8(mra_field::MSG_MRAED)?, 6, 2)),
            service_timeout: unpack(r.u8(mra_field::SERVICE_TIMEOUT)?, 3, 5),
            private_data: r.bytes(mra_field::PRIVATE_DATA)?,
        })
    }

    /// Writes the MRA payload into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        const W: &str = "CM MRA";
        let msg = pack(W, "MessageMRAed", self.msg_mraed.into(), 6, 2)?;
        let st = pack(W, "ServiceTimeout", self.service_timeout, 3, 5)?;
        let mut w = Wr::new(buf, W, Self::LEN)?;
        w.u32(mra_field::LOCAL_COMM_ID, self.local_comm_id)?;
        w.u32(mra_field::REMOTE_COMM_ID, self.remote_comm_id)?;
        w.u8(mra_field::MSG_MRAED, msg)?;
        w.u8(mra_field::SERVICE_TIMEOUT, st)?;
        w.private("PrivateData", mra_field::PRIVATE_DATA, self.private_data)
    }
}

/// Offsets in RTU and DREP payloads (IBTA vol. 1 Tables 111 and 113).
mod ids_field {
    use core::ops::Range;
    pub const PRIVATE_DATA: Range<usize> = 8..232;
}

/// Room for RTU and DREP private data.
pub const RTU_PRIVATE_DATA_LEN: usize = 224;
/// Room for DREP private data.
pub const DREP_PRIVATE_DATA_LEN: usize = 224;

fn parse_ids<'a>(buf: &'a [u8], what: &'static str) -> Result<(u32, u32, &'a [u8]), Error> {
    let r = Rd::new(buf, what, CM_LEN)?;
    Ok((
        r.u32(common::LOCAL_COMM_ID)?,
        r.u32(common::REMOTE_COMM_ID)?,
        r.bytes(ids_field::PRIVATE_DATA)?,
    ))
}

fn emit_ids(
    buf: &mut [u8],
    what: &'static str,
    local: u32,
    remote: u32,
    private_data: &[u8],
) -> Result<(), Error> {
    let mut w = Wr::new(buf, what, CM_LEN)?;
    w.u32(common::LOCAL_COMM_ID, local)?;
    w.u32(common::REMOTE_COMM_ID, remote)?;
    w.private("PrivateData", ids_field::PRIVATE_DATA, private_data)
}

/// ReadyToUse (IBTA vol. 1 §12.6.9, Table 111).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtu<'a> {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Private data, at most [`RTU_PRIVATE_DATA_LEN`] bytes.
    pub private_data: &'a [u8],
}

impl<'a> Rtu<'a> {
    /// Payload length.
    pub const LEN: usize = CM_LEN;

    /// Reads an RTU payload.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let (local_comm_id, remote_comm_id, private_data) = parse_ids(buf, "CM RTU")?;
        Ok(Rtu {
            local_comm_id,
            remote_comm_id,
            private_data,
        })
    }

    /// Writes the RTU payload into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        emit_ids(
            buf,
            "CM RTU",
            self.local_comm_id,
            self.remote_comm_id,
            self.private_data,
        )
    }
}

/// DisconnectReply (IBTA vol. 1 §12.6.11, Table 113).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drep<'a> {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Private data, at most [`DREP_PRIVATE_DATA_LEN`] bytes.
    pub private_data: &'a [u8],
}

impl<'a> Drep<'a> {
    /// Payload length.
    pub const LEN: usize = CM_LEN;

    /// Reads a DREP payload.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let (local_comm_id, remote_comm_id, private_data) = parse_ids(buf, "CM DREP")?;
        Ok(Drep {
            local_comm_id,
            remote_comm_id,
            private_data,
        })
    }

    /// Writes the DREP payload into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        emit_ids(
            buf,
            "CM DREP",
            self.local_comm_id,
            self.remote_comm_id,
            self.private_data,
        )
    }
}

/// Offsets in a DREQ payload (reference §1.4, IBTA vol. 1 Table 112).
mod dreq_field {
    use core::ops::Range;
    pub const REMOTE_QPN: Range<usize> = 8..11;
    // 11 reserved.
    pub const PRIVATE_DATA: Range<usize> = 12..232;
}

/// Room for DREQ private data.
pub const DREQ_PRIVATE_DATA_LEN: usize = 220;

/// DisconnectRequest (IBTA vol. 1 §12.6.10, Table 112).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dreq<'a> {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Remote QPN/EECN, 24 bits: the receiver's QP.
    pub remote_qpn: u32,
    /// Private data, at most [`DREQ_PRIVATE_DATA_LEN`] bytes.
    pub private_data: &'a [u8],
}

impl<'a> Dreq<'a> {
    /// Payload length.
    pub const LEN: usize = CM_LEN;

    /// Reads a DREQ payload.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let r = Rd::new(buf, "CM DREQ", Self::LEN)?;
        Ok(Dreq {
            local_comm_id: r.u32(common::LOCAL_COMM_ID)?,
            remote_comm_id: r.u32(common::REMOTE_COMM_ID)?,
            remote_qpn: r.u24(dreq_field::REMOTE_QPN)?,
            private_data: r.bytes(dreq_field::PRIVATE_DATA)?,
        })
    }

    /// Writes the DREQ payload into the first [`Self::LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut w = Wr::new(buf, "CM DREQ", Self::LEN)?;
        w.u32(common::LOCAL_COMM_ID, self.local_comm_id)?;
        w.u32(common::REMOTE_COMM_ID, self.remote_comm_id)?;
        w.u24("RemoteQPN", dreq_field::REMOTE_QPN, self.remote_qpn)?;
        w.private("PrivateData", dreq_field::PRIVATE_DATA, self.private_data)
    }
}

/// Any CM message this module reads or writes, as a whole MAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmMessage<'a> {
    /// REQ.
    Req(Req<'a>),
    /// REP.
    Rep(Rep<'a>),
    /// REJ.
    Rej(Rej<'a>),
    /// RTU.
    Rtu(Rtu<'a>),
    /// MRA.
    Mra(Mra<'a>),
    /// DREQ.
    Dreq(Dreq<'a>),
    /// DREP.
    Drep(Drep<'a>),
}

impl<'a> CmMessage<'a> {
    /// The attribute ID that names this message (IBTA vol. 1 §12.6, Table 104).
    pub fn attr_id(&self) -> u16 {
        match self {
            CmMessage::Req(_) => attr::CM_REQ,
            CmMessage::Rep(_) => attr::CM_REP,
            CmMessage::Rej(_) => attr::CM_REJ,
            CmMessage::Rtu(_) => attr::CM_RTU,
            CmMessage::Mra(_) => attr::CM_MRA,
            CmMessage::Dreq(_) => attr::CM_DREQ,
            CmMessage::Drep(_) => attr::CM_DREP,
        }
    }

    /// Reads a whole CM MAD: class 0x07, ClassVersion 2, method Send, one of the
    /// seven attributes above; returns the transaction ID with the message. Anything
    /// else is [`Error::Unexpected`].
    pub fn parse_mad(mad: &'a [u8]) -> Result<(u64, Self), Error> {
        const W: &str = "CM MAD";
        let r = Rd::new(mad, W, MAD_LEN)?;
        let hdr = MadHeader::parse(mad)?;
        let bad = |field, value: u32| Error::Unexpected {
            what: W,
            field,
            value,
        };
        if hdr.mgmt_class != class::COMM_MGT {
            return Err(bad("MgmtClass", hdr.mgmt_class.into()));
        }
        if hdr.class_version != class_version::COMM_MGT {
            return Err(bad("ClassVersion", hdr.class_version.into()));
        }
        if hdr.method != method::SEND {
            return Err(bad("Method", hdr.method.into()));
        }
        let p = r.bytes(CM_PAYLOAD)?;
        let msg = match hdr.attr_id {
            attr::CM_REQ => CmMessage::Req(Req::parse(p)?),
            attr::CM_REP => CmMessage::Rep(Rep::parse(p)?),
            attr::CM_REJ => CmMessage::Rej(Rej::parse(p)?),
            attr::CM_RTU => CmMessage::Rtu(Rtu::parse(p)?),
            attr::CM_MRA => CmMessage::Mra(Mra::parse(p)?),
            attr::CM_DREQ => CmMessage::Dreq(Dreq::parse(p)?),
            attr::CM_DREP => CmMessage::Drep(Drep::parse(p)?),
            other => return Err(bad("AttributeID", other.into())),
        };
        Ok((hdr.tid, msg))
    }

    /// Writes the message as a whole 256-byte MAD with transaction ID `tid`.
    pub fn emit_mad(&self, tid: u64, buf: &mut [u8]) -> Result<(), Error> {
        let hdr = MadHeader::request(
            class::COMM_MGT,
            class_version::COMM_MGT,
            method::SEND,
            tid,
            self.attr_id(),
        );
        Wr::new(buf, "CM MAD", MAD_LEN)?;
        hdr.emit(buf)?;
        let p = buf.get_mut(CM_PAYLOAD).unwrap_or_default();
        match self {
            CmMessage::Req(m) => m.emit(p),
            CmMessage::Rep(m) => m.emit(p),
            CmMessage::Rej(m) => m.emit(p),
            CmMessage::Rtu(m) => m.emit(p),
            CmMessage::Mra(m) => m.emit(p),
            CmMessage::Dreq(m) => m.emit(p),
            CmMessage::Drep(m) => m.emit(p),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod test {
    use super::*;

    fn record(hop_limit: u8) -> PathRecord {
        PathRecord {
            dgid: [2; 16],
            sgid: [1; 16],
            dlid: 9,
            slid: 5,
            flow_label: 0xABCDE,
            hop_limit,
            tclass: 3,
            sl: 6,
            rate: 3,
            ..PathRecord::default()
        }
    }

    #[test]
    fn path_from_record_inside_the_subnet() {
        let p = CmPath::from_path_record(&record(1), 18);
        assert_eq!((p.local_lid, p.remote_lid, p.subnet_local), (5, 9, true));
        assert_eq!((p.local_gid, p.remote_gid), ([1; 16], [2; 16]));
        assert_eq!(
            (p.flow_label, p.packet_rate, p.traffic_class, p.sl),
            (0xABCDE, 3, 3, 6)
        );
        assert_eq!(p.local_ack_timeout, 18);
    }

    #[test]
    fn path_from_record_across_routers_uses_permissive_lids() {
        let p = CmPath::from_path_record(&record(64), 18);
        assert_eq!(
            (p.local_lid, p.remote_lid, p.subnet_local),
            (PERMISSIVE_LID, PERMISSIVE_LID, false)
        );
        assert_eq!(p.hop_limit, 64);
    }

    #[test]
    fn two_bit_enums_refuse_values_they_cannot_carry() {
        let mut buf = [0u8; CM_LEN];
        let rej = Rej {
            local_comm_id: 1,
            remote_comm_id: 2,
            msg_rejected: MsgRejected::Unknown(4),
            reason: RejReason::Timeout,
            ari: &[],
            private_data: &[],
        };
        assert_eq!(
            rej.emit(&mut buf),
            Err(Error::Field {
                what: "CM REJ",
                field: "MessageREJected",
                value: 4
            })
        );
        // 3 fits in two bits and reads back as Unknown(3).
        Rej {
            msg_rejected: MsgRejected::Unknown(3),
            ..rej
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(buf[8], 0xC0);
        assert_eq!(
            Rej::parse(&buf).unwrap().msg_rejected,
            MsgRejected::Unknown(3)
        );
    }

    #[test]
    fn emit_into_a_short_buffer_is_truncated() {
        let rtu = Rtu {
            local_comm_id: 1,
            remote_comm_id: 2,
            private_data: &[],
        };
        assert_eq!(
            rtu.emit(&mut [0u8; 231]),
            Err(Error::Truncated {
                what: "CM RTU",
                need: 232,
                got: 231
            })
        );
        assert_eq!(
            CmMessage::Rtu(rtu).emit_mad(1, &mut [0u8; 255]),
            Err(Error::Truncated {
                what: "CM MAD",
                need: 256,
                got: 255
            })
        );
    }
}
