//! The protocol side of the simulated SRP target (DESIGN.md §5, part 4): a passive IB
//! communication manager, SRP login and the handling of information units, modelled on
//! Linux ib_srpt as reference/srp-cm-sa-dm.md §3 describes it. SCSI execution is
//! [`Target::execute`].
//!
//! [`SrpTarget`] owns no transport. It is a state machine: the simulator's world hands
//! it what arrived (a CM MAD on QP1, an IU on a channel's RC QP, the completion of an
//! RDMA operation, a QP error) with the virtual time, and carries out the [`Action`]s it
//! returns: send a MAD, create or destroy an RC QP, post a SEND, an RDMA WRITE or an
//! RDMA READ. Timers (REP and DREQ retransmission, TimeWait, a delayed REP) fire from
//! [`SrpTarget::poll`]; [`SrpTarget::next_deadline`] says when to call it.
//!
//! Behaviour, and where it comes from:
//! - CM (IBTA vol. 1 §12.6, §12.9; reference §1.4 "Passive-side behaviour"): a REQ for
//!   our Service ID becomes a REP carrying SRP_LOGIN_RSP plus [`Action::OpenChannel`],
//!   or a REJ. Duplicate REQs (same remote comm ID and CA GUID) get the same REP again
//!   (an MRA while the REP is held back, REJ stale connection in TimeWait); a REQ from
//!   a CA GUID and QPN that still has a connection gets REJ 10 and that connection a
//!   DREQ. Responses echo the transaction ID of what they answer; our DREQs carry TIDs
//!   of our own.
//! - Login (reference §3.2, §3.3): the checks in ib_srpt's order; see [`SrptConfig`].
//! - Channel (reference §3.3): CONNECTING until the RTU or the first IU (ib_srpt treats
//!   the first receive as COMM_EST; the IU is then handled at once), LIVE, then
//!   DISCONNECTING after a DREQ either way. SRP_CMD and SRP_TSK_MGMT are executed;
//!   CRED_RSP and AER_RSP are consumed; SRP_I_LOGOUT disconnects the channel; anything
//!   else is counted and ignored, as ib_srpt logs and ignores it.
//! - Credits: each SRP_CMD and SRP_TSK_MGMT takes one; each SRP_RSP carries 1 plus the
//!   credits of tasks aborted without a response, as ib_srpt does. ib_srpt itself does
//!   not refuse a command beyond the limit (it logs `req_lim < 0` and, with its
//!   receive ring exhausted, the HCA would RNR-NAK); this model is stricter so that an
//!   initiator's accounting is tested: such a command is not executed and is answered
//!   with TASK SET FULL (a task management request with FUNCTION FAILED), its credit
//!   returned as usual.
//! - Descriptors (reference §1.2, §3.3): direct, indirect with the whole table inside
//!   the IU, and immediate data when negotiated. A descriptor ib_srpt cannot parse
//!   (an external table, inconsistent counts) makes ib_srpt answer SCSI status BUSY;
//!   this model does the same by default ([`BadCmdReply`]). DATA-IN is RDMA-written
//!   and the SRP_RSP follows only when every write has completed; DATA-OUT is
//!   RDMA-read, then executed (on stable storage), then answered.
//! - An RDMA failure or a QP error tears the channel down as a QP error would: the QP
//!   is closed, outstanding commands are dropped without responses, a DREQ is sent.
//!
//! Files: [`iu`] (SRP IUs and descriptors), [`cm`] (MAD header, CM messages), `login`
//! (the login checks), `conn` (the passive CM), `channel` (IU handling).

pub mod cm;
pub mod iu;

mod channel;
mod conn;
mod login;

use std::collections::BTreeMap;
use std::fmt;

use crate::target::{Response, Target};
use cm::MAD_LEN;
use iu::DirectDesc;

/// Big-endian reads and writes at fixed offsets. Callers check lengths first.
mod be {
    pub fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    pub fn u24_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
    }
    pub fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(array(b, at))
    }
    pub fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(array(b, at))
    }
    pub fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[at..at + N]);
        a
    }
    pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    pub fn put_u24(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 3].copy_from_slice(&v.to_be_bytes()[1..]);
    }
    pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }
}

/// What the target answers to an SRP_CMD whose descriptors it cannot use (an external
/// or inconsistent indirect table, a bad format or count, descriptors or immediate data
/// beyond the IU, a format not negotiated, a transfer above
/// [`SrptConfig::max_transfer_len`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadCmdReply {
    /// SCSI status BUSY, no sense: what ib_srpt does when its descriptor parser fails
    /// (`srpt_handle_cmd` → `target_send_busy`).
    Busy,
    /// CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT
    /// (0Eh/03h): what an initiator can act on.
    CheckCondition,
}

/// The target port's identity and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrptConfig {
    /// IOC GUID: the low half of the target port ID (ib_srpt: the service GUID, by
    /// default the HCA node GUID; reference §3.1). Also sent as the REP's Local CA
    /// GUID.
    pub ioc_guid: u64,
    /// Identifier extension: the high half of the target port ID (ib_srpt: the service
    /// GUID again).
    pub id_ext: u64,
    /// The CM Service ID listened on (ib_srpt: the service GUID).
    pub service_id: u64,
    /// The port's GID; a REQ whose primary remote GID differs is rejected (REJ 12).
    pub port_gid: [u8; 16],
    /// The port's LID; a REQ whose primary remote LID is neither this nor permissive is
    /// rejected (REJ 13).
    pub lid: u16,
    /// Initiator port IDs allowed to log in (ib_srpt: node ACLs, reference §3.5);
    /// `None` admits everyone. Others get SRP_LOGIN_REJ 0x00010006.
    pub acl: Option<Vec<[u8; 16]>>,
    /// The largest initiator-to-target IU accepted, returned as MAX IT IU LENGTH and
    /// the size of the receive buffers (ib_srpt: `srp_max_req_size`, 8276 by default;
    /// 2116 before immediate data). A longer SEND is a local length error: the channel
    /// is torn down.
    pub max_req_it_iu_len: u32,
    /// The smallest REQUESTED MAX IT IU LENGTH accepted (ib_srpt: 64).
    pub min_iu_len: u32,
    /// The largest target-to-initiator IU the target sends (ib_srpt:
    /// `srp_max_rsp_size`, 256 by default). SRP_LOGIN_RSP's MAX TI IU LENGTH is the
    /// initiator's own REQUESTED MAX IT IU LENGTH echoed, as ib_srpt does (§3.3);
    /// every IU sent is at most the smaller of the two, sense data cut to fit.
    pub max_rsp_size: u32,
    /// Credits granted at login, SRP_LOGIN_RSP's REQUEST LIMIT DELTA (ib_srpt: 128).
    pub req_lim: u32,
    /// Indirect descriptors supported. ib_srpt always supports them and never reads
    /// REQUIRED BUFFER FORMATS. With `false` the target models a direct-only target:
    /// SUPPORTED BUFFER FORMATS is DIRECT alone, a login whose REQUIRED BUFFER FORMATS
    /// names indirect without direct is rejected with 0x00010004, and an SRP_CMD using
    /// an indirect table gets the [`BadCmdReply`].
    pub indirect_ok: bool,
    /// Immediate data (SRP-2) offered when the login asks with an offset of at least
    /// 48, as ib_srpt does without SRQ.
    pub immediate_data: bool,
    /// Largest path MTU code used (5: 4096); the channel takes the smaller of this and
    /// the REQ's.
    pub mtu: u8,
    /// REP Responder Resources and the QP's max_dest_rd_atomic (ib_srpt: 4, whatever
    /// the REQ asks).
    pub responder_resources: u8,
    /// REP Initiator Depth and the QP's max_rd_atomic (ib_srpt: 4).
    pub initiator_depth: u8,
    /// REP Target ACK Delay, 5 bits (the HCA's local CA ACK delay).
    pub target_ack_delay: u8,
    /// Channels (RC QPs) the port may hold; a login beyond gets 0x00010001
    /// (insufficient resources, where ib_srpt's ring and QP allocation fail). Channels
    /// the login's SINGLE action closes do not count.
    pub max_channels: usize,
    /// Largest total data length of one command (ib_srpt reports `srp_max_rdma_size`
    /// capped at 16 MiB); above it the command gets the [`BadCmdReply`].
    pub max_transfer_len: u32,
    /// The answer to an SRP_CMD whose descriptors cannot be used.
    pub bad_cmd_reply: BadCmdReply,
    /// First local QPN handed out in [`Action::OpenChannel`]; later ones count up.
    pub first_qpn: u32,
}

impl SrptConfig {
    /// ib_srpt's defaults (reference §3.1–§3.4) for a port whose service GUID is
    /// `guid`: target port ID `guid ‖ guid`, Service ID `guid`, `srp_max_req_size`
    /// 8276, 128 credits, `srp_max_rsp_size` 256, 4 RDMA reads either way, MTU 4096,
    /// immediate data and indirect descriptors on, BUSY for unusable descriptors; and,
    /// where ib_srpt has no such limit, 64 channels, 16 MiB per command, QPNs from
    /// 0x100.
    pub fn ib_srpt(guid: u64, port_gid: [u8; 16], lid: u16) -> SrptConfig {
        SrptConfig {
            ioc_guid: guid,
            id_ext: guid,
            service_id: guid,
            port_gid,
            lid,
            acl: None,
            max_req_it_iu_len: 8276,
            min_iu_len: 64,
            max_rsp_size: 256,
            req_lim: 128,
            indirect_ok: true,
            immediate_data: true,
            mtu: 5,
            responder_resources: 4,
            initiator_depth: 4,
            target_ack_delay: 16,
            max_channels: 64,
            max_transfer_len: 16 << 20,
            bad_cmd_reply: BadCmdReply::Busy,
            first_qpn: 0x100,
        }
    }

    /// The 16-byte target port ID: `id_ext` then `ioc_guid` (I/O class 0x0100,
    /// reference §2.1).
    pub fn target_port_id(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.id_ext.to_be_bytes());
        id[8..].copy_from_slice(&self.ioc_guid.to_be_bytes());
        id
    }

    /// SUPPORTED BUFFER FORMATS.
    pub fn buf_formats(&self) -> u16 {
        if self.indirect_ok {
            iu::buf_fmt::DIRECT | iu::buf_fmt::INDIRECT
        } else {
            iu::buf_fmt::DIRECT
        }
    }
}

/// Where a MAD came from (the UD work completion and its packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadFrom {
    /// Source LID.
    pub slid: u16,
    /// Service level.
    pub sl: u8,
    /// Source QP (1 for the GSI).
    pub src_qp: u32,
    /// P_Key index it arrived on.
    pub pkey_index: u16,
}

/// A channel: one RC connection and its SRP login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub u32);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel {}", self.0)
    }
}

/// Something the world is to do for the target.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "the MAD travels by value, as the world's QP1 interface takes it"
)]
pub enum Action {
    /// Send a MAD from QP1 to `dqpn` at `dlid` (Q_Key 0x80010000).
    SendMad {
        /// Destination LID.
        dlid: u16,
        /// Destination QP.
        dqpn: u32,
        /// The MAD.
        mad: [u8; MAD_LEN],
    },
    /// Create an RC QP for a channel, to be brought to RTR/RTS with these values (IBTA
    /// §12.7's QP attributes from the CM exchange; reference §1.4). All receives are to
    /// be posted before the REP that follows is sent.
    OpenChannel {
        /// The channel.
        channel: ChannelId,
        /// Our QPN.
        local_qpn: u32,
        /// The initiator's QPN (REQ Local QPN).
        remote_qpn: u32,
        /// The initiator's LID.
        remote_lid: u16,
        /// Our starting send PSN (REP Starting PSN).
        sq_psn: u32,
        /// Expected receive PSN (REQ Starting PSN).
        rq_psn: u32,
        /// Path MTU code.
        mtu: u8,
        /// RDMA reads we may have outstanding.
        max_rd_atomic: u8,
        /// RDMA reads we accept outstanding.
        max_dest_rd_atomic: u8,
        /// Transport retry count (REQ Retry Count).
        retry_cnt: u8,
        /// RNR retry count (REQ RNR Retry Count).
        rnr_retry: u8,
    },
    /// Destroy the channel's QP (move it to error first).
    CloseChannel {
        /// The channel.
        channel: ChannelId,
    },
    /// Post a SEND of `iu` on the channel.
    SendIu {
        /// The channel.
        channel: ChannelId,
        /// The IU.
        iu: Vec<u8>,
    },
    /// Post an RDMA WRITE of `data` to the initiator; report its completion with
    /// [`SrpTarget::on_rdma_done`] and `token`.
    RdmaWrite {
        /// The channel.
        channel: ChannelId,
        /// Identifies the operation in the completion.
        token: u64,
        /// Initiator virtual address.
        remote_addr: u64,
        /// Initiator R_Key.
        rkey: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Post an RDMA READ of `len` bytes from the initiator; report the data with
    /// [`SrpTarget::on_rdma_done`] and `token`.
    RdmaRead {
        /// The channel.
        channel: ChannelId,
        /// Identifies the operation in the completion.
        token: u64,
        /// Initiator virtual address.
        remote_addr: u64,
        /// Initiator R_Key.
        rkey: u32,
        /// Bytes to read.
        len: u32,
    },
}

/// Why an RDMA operation failed (the work completion's status class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RdmaFailure {
    /// Remote access error: a bad R_Key, address or length at the initiator.
    RemoteAccess,
    /// Remote operation error.
    RemoteOperation,
    /// Transport retries exhausted.
    RetryExceeded,
    /// The QP was in error and the request was flushed.
    Flushed,
    /// A local error (protection, length).
    Local,
}

/// A channel's life (reference §3.3, "Channel states").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// REP sent, waiting for the RTU (or the first IU).
    Connecting,
    /// Established.
    Live,
    /// A DREQ was sent, or the QP failed: no IU is handled any more.
    Disconnecting,
}

/// What the target knows about one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// State.
    pub state: ChannelState,
    /// INITIATOR PORT IDENTIFIER of the login.
    pub initiator_port_id: [u8; 16],
    /// TARGET PORT IDENTIFIER of the login.
    pub target_port_id: [u8; 16],
    /// The login request's tag.
    pub login_tag: u64,
    /// Our comm ID.
    pub local_comm_id: u32,
    /// The initiator's comm ID.
    pub remote_comm_id: u32,
    /// The initiator's CA GUID (REQ Local CA GUID).
    pub remote_ca_guid: u64,
    /// Our QPN.
    pub local_qpn: u32,
    /// The initiator's QPN.
    pub remote_qpn: u32,
    /// The initiator's LID.
    pub remote_lid: u16,
    /// MAX IT IU LENGTH returned.
    pub max_it_iu_len: u32,
    /// MAX TI IU LENGTH returned (the initiator's requested IT length, echoed).
    pub max_ti_iu_len: u32,
    /// SUPPORTED BUFFER FORMATS returned.
    pub buf_formats: u16,
    /// The immediate data offset, when immediate data was negotiated.
    pub immediate_offset: Option<u16>,
    /// Multichannel result returned (0 none, 1 terminated, 2 maintained).
    pub multichannel_result: u8,
    /// The credits the initiator holds as the target counts them: granted, minus
    /// requests received, plus deltas sent. Negative after an overrun.
    pub credits: i64,
    /// Commands waiting for RDMA completions.
    pub pending_commands: usize,
    /// Whether the QP exists ([`Action::CloseChannel`] not yet emitted).
    pub qp_open: bool,
}

/// How [`SrptFault::MalformNextRsp`] breaks an SRP_RSP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedRsp {
    /// Cut to 20 bytes, shorter than its 36-byte fixed part.
    Short,
    /// SNSVALID with a SENSE DATA LIST LENGTH larger than the IU.
    SenseBeyondIu,
    /// A tag the initiator never sent (every bit of the real one inverted).
    UnknownTag,
    /// Opcode 0xC7, which SRP does not define.
    UnknownOpcode,
}

/// An injectable failure, so that an initiator's error paths can be driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrptFault {
    /// Clear every fault.
    None,
    /// Reject every login with this SRP_LOGIN_REJ reason (checked where ib_srpt checks
    /// that the port is enabled, after the IU length) until cleared.
    RejectLogins(u32),
    /// Answer the next REQ with REJ reason 10 (stale connection).
    StaleNextReq,
    /// Consume the next IU on any channel without acting on it or answering.
    DropNextIu,
    /// Break the next SRP_RSP.
    MalformNextRsp(MalformedRsp),
    /// Answer the next REQ with an MRA of `service_timeout` and hold the REP (or REJ)
    /// back for `delay_ns`.
    DelayRep {
        /// MRA Service Timeout, 5 bits.
        service_timeout: u8,
        /// How long the REP waits, in virtual ns.
        delay_ns: u64,
    },
}

/// The faults armed.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    reject_logins: Option<u32>,
    stale_next_req: bool,
    drop_next_iu: bool,
    malform_next_rsp: Option<MalformedRsp>,
    delay_rep: Option<(u8, u64)>,
}

/// Something wrong with what arrived; counted in [`SrptStats`], never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrptError {
    /// A MAD too short to read (only possible through the wire parsers).
    Cm(cm::CmError),
    /// BaseVersion other than 1: dropped.
    BadBaseVersion(u8),
    /// Not a CM MAD: dropped.
    NotCm {
        /// MgmtClass.
        class: u8,
    },
    /// A CM ClassVersion other than 2.
    BadClassVersion {
        /// AttributeID.
        attr: u16,
        /// ClassVersion.
        version: u8,
    },
    /// A method the CM does not take (answered with GetResp where one is defined).
    UnsupportedMethod {
        /// Method.
        method: u8,
        /// AttributeID.
        attr: u16,
    },
    /// A CM Send with an attribute the passive side does not handle (REP, SIDR, LAP,
    /// APR, unknown).
    UnexpectedAttribute(u16),
    /// A CM message for a connection we do not have.
    UnknownConnection {
        /// AttributeID.
        attr: u16,
        /// Its Local Communication ID.
        local_comm_id: u32,
        /// Its Remote Communication ID.
        remote_comm_id: u32,
    },
    /// A CM message that does not fit the connection's state (a duplicate, an RTU to a
    /// live channel, a DREP without a DREQ).
    UnexpectedInState {
        /// AttributeID.
        attr: u16,
        /// The channel.
        channel: ChannelId,
    },
    /// The REQ private data is not an SRP_LOGIN_REQ.
    BadLoginReq(iu::IuError),
    /// An IU on a channel that does not exist.
    UnknownChannel(ChannelId),
    /// An IU on a channel that is disconnecting.
    ChannelNotLive(ChannelId),
    /// An IU that did not parse.
    Iu {
        /// The channel.
        channel: ChannelId,
        /// What is wrong.
        error: iu::IuError,
    },
    /// A SEND longer than the receive buffers: the QP fails.
    IuTooLong {
        /// The channel.
        channel: ChannelId,
        /// Its length.
        len: usize,
        /// The receive buffer size.
        max: u32,
    },
    /// An IU the target does not take (a target-to-initiator opcode, an unknown one).
    UnexpectedIu {
        /// The channel.
        channel: ChannelId,
        /// Byte 0.
        opcode: u8,
    },
    /// A request beyond the credits granted.
    CreditOverrun {
        /// The channel.
        channel: ChannelId,
        /// The request's tag.
        tag: u64,
    },
    /// An SRP_CMD whose tag is already in use by a pending command on the channel.
    DuplicateTag {
        /// The channel.
        channel: ChannelId,
        /// The tag.
        tag: u64,
    },
    /// A buffer format not negotiated (immediate without login agreement, indirect
    /// with `indirect_ok` false).
    FormatNotNegotiated {
        /// The channel.
        channel: ChannelId,
        /// The command's tag.
        tag: u64,
        /// Its format nibble.
        format: u8,
    },
    /// Immediate data beyond the IU, beyond the receive buffer, or overlapping the
    /// descriptors.
    ImmediateData {
        /// The channel.
        channel: ChannelId,
        /// The command's tag.
        tag: u64,
        /// The negotiated offset.
        offset: u16,
        /// The data length.
        len: u32,
    },
    /// A command moving more than [`SrptConfig::max_transfer_len`].
    TransferTooLong {
        /// The channel.
        channel: ChannelId,
        /// The command's tag.
        tag: u64,
        /// Its data length.
        len: u64,
    },
    /// A CRED_RSP or AER_RSP whose tag matches no request sent.
    UnknownTargetTag {
        /// The channel.
        channel: ChannelId,
        /// The tag.
        tag: u64,
    },
    /// A completion for a token the target does not know (or whose command is gone).
    UnknownRdmaToken(u64),
    /// An RDMA operation failed.
    RdmaFailed {
        /// The channel.
        channel: ChannelId,
        /// The operation.
        token: u64,
        /// Why.
        failure: RdmaFailure,
    },
    /// An RDMA READ completed with a length other than asked.
    RdmaLength {
        /// The channel.
        channel: ChannelId,
        /// The operation.
        token: u64,
        /// Bytes asked.
        expected: u32,
        /// Bytes reported.
        got: usize,
    },
    /// A target-initiated IU for a channel that cannot send it.
    CannotSend(ChannelId),
}

/// The kind of an [`SrptError`], its counter's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum ErrorKind {
    Cm,
    BadBaseVersion,
    NotCm,
    BadClassVersion,
    UnsupportedMethod,
    UnexpectedAttribute,
    UnknownConnection,
    UnexpectedInState,
    BadLoginReq,
    UnknownChannel,
    ChannelNotLive,
    Iu,
    IuTooLong,
    UnexpectedIu,
    CreditOverrun,
    DuplicateTag,
    FormatNotNegotiated,
    ImmediateData,
    TransferTooLong,
    UnknownTargetTag,
    UnknownRdmaToken,
    RdmaFailed,
    RdmaLength,
    CannotSend,
}

impl SrptError {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SrptError::Cm(_) => ErrorKind::Cm,
            SrptError::BadBaseVersion(_) => ErrorKind::BadBaseVersion,
            SrptError::NotCm { .. } => ErrorKind::NotCm,
            SrptError::BadClassVersion { .. } => ErrorKind::BadClassVersion,
            SrptError::UnsupportedMethod { .. } => ErrorKind::UnsupportedMethod,
            SrptError::UnexpectedAttribute(_) => ErrorKind::UnexpectedAttribute,
            SrptError::UnknownConnection { .. } => ErrorKind::UnknownConnection,
            SrptError::UnexpectedInState { .. } => ErrorKind::UnexpectedInState,
            SrptError::BadLoginReq(_) => ErrorKind::BadLoginReq,
            SrptError::UnknownChannel(_) => ErrorKind::UnknownChannel,
            SrptError::ChannelNotLive(_) => ErrorKind::ChannelNotLive,
            SrptError::Iu { .. } => ErrorKind::Iu,
            SrptError::IuTooLong { .. } => ErrorKind::IuTooLong,
            SrptError::UnexpectedIu { .. } => ErrorKind::UnexpectedIu,
            SrptError::CreditOverrun { .. } => ErrorKind::CreditOverrun,
            SrptError::DuplicateTag { .. } => ErrorKind::DuplicateTag,
            SrptError::FormatNotNegotiated { .. } => ErrorKind::FormatNotNegotiated,
            SrptError::ImmediateData { .. } => ErrorKind::ImmediateData,
            SrptError::TransferTooLong { .. } => ErrorKind::TransferTooLong,
            SrptError::UnknownTargetTag { .. } => ErrorKind::UnknownTargetTag,
            SrptError::UnknownRdmaToken(_) => ErrorKind::UnknownRdmaToken,
            SrptError::RdmaFailed { .. } => ErrorKind::RdmaFailed,
            SrptError::RdmaLength { .. } => ErrorKind::RdmaLength,
            SrptError::CannotSend(_) => ErrorKind::CannotSend,
        }
    }
}

impl fmt::Display for SrptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SrptError::Cm(e) => write!(f, "{e}"),
            SrptError::Iu { channel, error } => write!(f, "{channel}: {error}"),
            SrptError::BadLoginReq(e) => write!(f, "REQ private data: {e}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for SrptError {}

/// Counters, for tests and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SrptStats {
    /// MADs handed to [`SrpTarget::on_cm_mad`].
    pub mads_received: u64,
    /// MADs sent.
    pub mads_sent: u64,
    /// MADs dropped without an answer.
    pub mads_ignored: u64,
    /// Logins accepted (REP sent).
    pub logins_accepted: u64,
    /// Logins rejected with SRP_LOGIN_REJ.
    pub logins_rejected: u64,
    /// REJs sent with a CM reason other than consumer defined.
    pub cm_rejects: u64,
    /// Duplicate REQs seen.
    pub duplicate_reqs: u64,
    /// MRAs sent.
    pub mras_sent: u64,
    /// REP retransmissions (timer or duplicate REQ).
    pub rep_resends: u64,
    /// DREQs sent (retransmissions included).
    pub dreqs_sent: u64,
    /// Channels opened ([`Action::OpenChannel`]).
    pub channels_opened: u64,
    /// Channels closed ([`Action::CloseChannel`]).
    pub channels_closed: u64,
    /// IUs handed to [`SrpTarget::on_iu`].
    pub ius_received: u64,
    /// IUs dropped by [`SrptFault::DropNextIu`].
    pub ius_dropped: u64,
    /// IUs sent.
    pub ius_sent: u64,
    /// SRP_CMDs executed by the target.
    pub commands: u64,
    /// SRP_TSK_MGMT requests answered.
    pub tsk_mgmt: u64,
    /// SRP_RSPs sent.
    pub responses: u64,
    /// Requests refused for want of credit.
    pub credit_overruns: u64,
    /// Tasks aborted by task management.
    pub aborted_tasks: u64,
    /// RDMA READs issued.
    pub rdma_reads: u64,
    /// RDMA WRITEs issued.
    pub rdma_writes: u64,
    /// Bytes RDMA-read from initiators.
    pub bytes_read: u64,
    /// Bytes RDMA-written to initiators.
    pub bytes_written: u64,
    /// CRED_RSPs and AER_RSPs matched to a request.
    pub target_req_answers: u64,
    /// Errors by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The last error.
    pub last_error: Option<SrptError>,
}

impl SrptStats {
    /// How many errors of `kind` were counted.
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).copied().unwrap_or(0)
    }

    /// All errors counted.
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// CM state of a channel's connection.
#[derive(Clone, Debug)]
struct Conn {
    /// Where CM MADs for it go.
    cm_dlid: u16,
    cm_dqpn: u32,
    /// The REP as sent, for duplicates and retransmission.
    rep: [u8; MAD_LEN],
    /// Our DREQ, once sent.
    dreq: Option<[u8; MAD_LEN]>,
    /// Retransmission timeout of REP and DREQ (the REQ's remote CM response timeout
    /// plus twice the packet lifetime).
    timeout_ns: u64,
    /// REQ Max CM Retries.
    max_retries: u8,
    /// Retransmissions left of the REP or DREQ.
    retries_left: u8,
    /// When the REP or DREQ timer fires.
    deadline: Option<u64>,
    /// TimeWait length.
    timewait_ns: u64,
}

/// Where a pending command is.
#[derive(Clone, Debug)]
enum Phase {
    /// RDMA READs of DATA-OUT outstanding.
    Fetching,
    /// Executed; RDMA WRITEs of DATA-IN outstanding.
    Writing(Response),
}

/// A command waiting for RDMA completions.
#[derive(Clone, Debug)]
struct Pending {
    tag: u64,
    lun: [u8; 8],
    cdb: Vec<u8>,
    data_out_descs: Vec<DirectDesc>,
    /// DATA-OUT pieces as they arrive, by descriptor.
    data_out: Vec<Option<Vec<u8>>>,
    data_in_descs: Vec<DirectDesc>,
    data_in_len: u32,
    outstanding: usize,
    phase: Phase,
}

/// A channel.
#[derive(Clone, Debug)]
struct Channel {
    info: ChannelInfo,
    conn: Conn,
    /// SRP_LOGIN_REQ flags (solicited-notification requests).
    login_flags: u8,
    /// Credits of tasks aborted without a response, returned with the next SRP_RSP.
    owed: u32,
    /// Pending commands by internal ID.
    pending: BTreeMap<u64, Pending>,
    /// CRED_REQ / AER_REQ tags awaiting an answer, with their opcode.
    target_reqs: BTreeMap<u64, u8>,
}

/// A connection in TimeWait: remembered so that duplicates and DREQs are answered.
#[derive(Clone, Copy, Debug)]
struct TimeWait {
    local_comm_id: u32,
    remote_comm_id: u32,
    remote_ca_guid: u64,
    until_ns: u64,
}

/// A REQ whose answer is held back by [`SrptFault::DelayRep`].
#[derive(Clone, Debug)]
struct Deferred {
    local_comm_id: u32,
    from: MadFrom,
    tid: u64,
    req: cm::ReqRepr,
    mra: [u8; MAD_LEN],
    due_ns: u64,
}

/// An RDMA operation in flight.
#[derive(Clone, Copy, Debug)]
struct TokenUse {
    channel: ChannelId,
    cmd: u64,
    index: usize,
    read: bool,
}

/// The SRP target port: passive CM, logins, channels, IU handling over a [`Target`].
#[derive(Debug)]
pub struct SrpTarget {
    cfg: SrptConfig,
    target: Target,
    channels: BTreeMap<ChannelId, Channel>,
    timewait: Vec<TimeWait>,
    deferred: Vec<Deferred>,
    tokens: BTreeMap<u64, TokenUse>,
    faults: Faults,
    stats: SrptStats,
    now_ns: u64,
    next_channel: u32,
    next_comm_id: u32,
    next_qpn: u32,
    next_token: u64,
    next_tid: u64,
    next_iu_tag: u64,
    next_cmd: u64,
}

impl SrpTarget {
    /// A target port with `cfg` over the logical units of `target`.
    pub fn new(cfg: SrptConfig, target: Target) -> SrpTarget {
        let first_qpn = cfg.first_qpn & 0xFF_FFFF;
        SrpTarget {
            cfg,
            target,
            channels: BTreeMap::new(),
            timewait: Vec::new(),
            deferred: Vec::new(),
            tokens: BTreeMap::new(),
            faults: Faults::default(),
            stats: SrptStats::default(),
            now_ns: 0,
            next_channel: 1,
            next_comm_id: 0x5352_0001,
            next_qpn: first_qpn,
            next_token: 1,
            next_tid: 0x5352_5054_0000_0001,
            next_iu_tag: 0x5352_5054_0000_0001,
            next_cmd: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SrptConfig {
        &self.cfg
    }

    /// The port's GID and LID changed (a subnet manager assigned or moved them): the
    /// REQ checks that name our port (REJ 12, 13) follow.
    pub fn set_port(&mut self, port_gid: [u8; 16], lid: u16) {
        self.cfg.port_gid = port_gid;
        self.cfg.lid = lid;
    }

    /// A CM MAD arrived on QP1 (IBTA vol. 1 §12.6; reference §1.4).
    pub fn on_cm_mad(&mut self, now_ns: u64, from: MadFrom, mad: &[u8; MAD_LEN]) -> Vec<Action> {
        self.advance(now_ns);
        self.stats.mads_received += 1;
        let mut out = Vec::new();
        self.cm_mad(from, mad, &mut out);
        self.count_sent(&out);
        out
    }

    /// A SEND arrived on `channel` carrying `iu` (reference §3.3).
    pub fn on_iu(&mut self, now_ns: u64, channel: ChannelId, iu: &[u8]) -> Vec<Action> {
        self.advance(now_ns);
        self.stats.ius_received += 1;
        let mut out = Vec::new();
        self.iu(channel, iu, &mut out);
        self.count_sent(&out);
        out
    }

    /// An RDMA operation completed: `Ok` with no bytes for a write, with the bytes for
    /// a read; `Err` when it failed, which tears the channel down.
    pub fn on_rdma_done(
        &mut self,
        now_ns: u64,
        channel: ChannelId,
        token: u64,
        result: Result<Vec<u8>, RdmaFailure>,
    ) -> Vec<Action> {
        self.advance(now_ns);
        let mut out = Vec::new();
        self.rdma_done(channel, token, result, &mut out);
        self.count_sent(&out);
        out
    }

    /// The channel's QP went to the error state: drop the channel (its QP is closed,
    /// pending commands dropped, a DREQ sent so the initiator learns of it).
    pub fn on_channel_error(&mut self, channel: ChannelId) -> Vec<Action> {
        let mut out = Vec::new();
        if self.channels.contains_key(&channel) {
            self.qp_failed(channel, &mut out);
        } else {
            self.error(SrptError::UnknownChannel(channel));
        }
        self.count_sent(&out);
        out
    }

    /// Send SRP_T_LOGOUT with `reason` on `channel` (SOLNT set when the login asked
    /// with LOSOLNT). The channel stays up; [`SrpTarget::disconnect`] ends it.
    pub fn send_t_logout(&mut self, channel: ChannelId, reason: u32) -> Vec<Action> {
        let mut out = Vec::new();
        self.t_logout(channel, reason, &mut out);
        self.count_sent(&out);
        out
    }

    /// Send SRP_CRED_REQ granting `delta` credits (negative takes them back).
    pub fn send_cred_req(&mut self, channel: ChannelId, delta: i32) -> Vec<Action> {
        let mut out = Vec::new();
        self.cred_req(channel, delta, &mut out);
        self.count_sent(&out);
        out
    }

    /// Send SRP_AER_REQ for `lun` with `sense` (cut to fit the channel's IU size).
    pub fn send_aer_req(&mut self, channel: ChannelId, lun: [u8; 8], sense: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        self.aer_req(channel, lun, sense, &mut out);
        self.count_sent(&out);
        out
    }

    /// Disconnect `channel` from the target side: DREQ now, the QP closed when the
    /// DREP arrives or the DREQ times out (ib_srpt's `srpt_disconnect_ch`).
    pub fn disconnect(&mut self, now_ns: u64, channel: ChannelId) -> Vec<Action> {
        self.advance(now_ns);
        let mut out = Vec::new();
        if self.channels.contains_key(&channel) {
            self.disconnect_channel(channel, &mut out);
        } else {
            self.error(SrptError::UnknownChannel(channel));
        }
        self.count_sent(&out);
        out
    }

    /// Fire the timers due at `now_ns`: held-back REPs, REP and DREQ retransmission and
    /// give-up, TimeWait expiry.
    pub fn poll(&mut self, now_ns: u64) -> Vec<Action> {
        self.advance(now_ns);
        let mut out = Vec::new();
        self.timers(&mut out);
        self.count_sent(&out);
        out
    }

    /// The earliest virtual time at which [`SrpTarget::poll`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let chans = self.channels.values().filter_map(|c| c.conn.deadline);
        let deferred = self.deferred.iter().map(|d| d.due_ns);
        let tw = self.timewait.iter().map(|t| t.until_ns);
        chans.chain(deferred).chain(tw).min()
    }

    /// The channels, by ID.
    pub fn channels(&self) -> impl Iterator<Item = (ChannelId, &ChannelInfo)> {
        self.channels.iter().map(|(id, c)| (*id, &c.info))
    }

    /// One channel.
    pub fn channel(&self, id: ChannelId) -> Option<&ChannelInfo> {
        self.channels.get(&id).map(|c| &c.info)
    }

    /// The counters.
    pub fn stats(&self) -> &SrptStats {
        &self.stats
    }

    /// The SCSI target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The SCSI target, to add logical units or inspect images.
    pub fn target_mut(&mut self) -> &mut Target {
        &mut self.target
    }

    /// The target as it comes back from a reboot: the same configuration and the same
    /// logical units (their images keep every write that was acknowledged, since a
    /// write is on stable storage before its SRP_RSP leaves), and nothing else — no
    /// channel, no CM state (TimeWait, held REPs), no RDMA in flight, no armed fault,
    /// counters from zero. Connection IDs start from `comm_id_base`: ib_cm draws a
    /// random operand for its local IDs when it loads, so a rebooted target does not
    /// hand out its previous life's IDs again.
    pub fn rebooted(&mut self, comm_id_base: u32) {
        let target = std::mem::replace(
            &mut self.target,
            Target::new(crate::target::Product::simulated()),
        );
        let cfg = self.cfg.clone();
        *self = SrpTarget::new(cfg, target);
        self.next_comm_id = comm_id_base.max(1);
    }

    /// Arm a fault ([`SrptFault::None`] clears them all). One-shot faults fire once.
    pub fn set_fault(&mut self, f: SrptFault) {
        match f {
            SrptFault::None => self.faults = Faults::default(),
            SrptFault::RejectLogins(r) => self.faults.reject_logins = Some(r),
            SrptFault::StaleNextReq => self.faults.stale_next_req = true,
            SrptFault::DropNextIu => self.faults.drop_next_iu = true,
            SrptFault::MalformNextRsp(m) => self.faults.malform_next_rsp = Some(m),
            SrptFault::DelayRep {
                service_timeout,
                delay_ns,
            } => self.faults.delay_rep = Some((service_timeout, delay_ns)),
        }
    }

    fn advance(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let now = self.now_ns;
        self.timewait.retain(|t| t.until_ns > now);
    }

    fn error(&mut self, e: SrptError) {
        *self.stats.errors.entry(e.kind()).or_insert(0) += 1;
        self.stats.last_error = Some(e);
    }

    fn count_sent(&mut self, out: &[Action]) {
        for a in out {
            match a {
                Action::SendMad { .. } => self.stats.mads_sent += 1,
                Action::SendIu { .. } => self.stats.ius_sent += 1,
                Action::OpenChannel { .. } => self.stats.channels_opened += 1,
                Action::CloseChannel { .. } => self.stats.channels_closed += 1,
                Action::RdmaRead { len, .. } => {
                    self.stats.rdma_reads += 1;
                    self.stats.bytes_read += u64::from(*len);
                }
                Action::RdmaWrite { data, .. } => {
                    self.stats.rdma_writes += 1;
                    self.stats.bytes_written += data.len() as u64;
                }
            }
        }
    }

    fn alloc_token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    fn alloc_iu_tag(&mut self) -> u64 {
        let t = self.next_iu_tag;
        self.next_iu_tag = self.next_iu_tag.wrapping_add(1);
        t
    }

    fn alloc_tid(&mut self) -> u64 {
        let t = self.next_tid;
        self.next_tid = self.next_tid.wrapping_add(1);
        t
    }

    fn alloc_comm_id(&mut self) -> u32 {
        let id = self.next_comm_id;
        self.next_comm_id = self.next_comm_id.wrapping_add(1).max(1);
        id
    }
}
