//! A reliable-connected transport engine: the requester and responder of one RC queue
//! pair (IBTA vol. 1 ch. 9), pure and deterministic.
//!
//! [`RcQp`] turns posted [`WorkRequest`]s into [`IbPacket`]s and incoming packets into
//! responses, memory accesses and [`Completion`]s. Time is an input: every call takes
//! `now_ns` on the simulator's virtual clock, and [`RcQp::next_deadline_ns`] says when
//! [`RcQp::poll_transmit`] has timer work. Nothing reads a real clock and nothing is
//! random, so two runs with the same inputs send the same packets.
//!
//! The owner (the ConnectX device model, the SRP target) does three things:
//! - hands every packet the fabric delivers to [`RcQp::receive`], with its memory keys
//!   and receive queue behind [`ResponderMemory`], and sends what comes back;
//! - calls [`RcQp::poll_transmit`] after posting, at [`RcQp::next_deadline_ns`], and
//!   after [`RcQp::receive`], and sends what comes back;
//! - collects [`RcQp::take_completions`].
//!
//! What it implements:
//!
//! | Behaviour | IBTA vol. 1 | Module |
//! |---|---|---|
//! | Segmentation by PMTU, opcode sequences, AckReq | §9.4 | `requester` |
//! | PSN arithmetic, 24 bits with wrap | §9.5, §9.7.5 | [`psn`] |
//! | ACK/NAK and AETH syndromes, coalesced ACKs, MSN | §9.3 (AETH), §9.7.5 | `responder` |
//! | Responder: PSN checks, duplicates, R_Key checks, lengths, RNR NAK | §9.7.5 | `responder` |
//! | Requester: ACK timeout, go-back-N, RNR wait, NAK handling | §9.7.6 | `requester` |
//! | RDMA READ responses, implicit NAK of lost responses | §9.7.4.1.3 | both |
//! | Errors: completion statuses, QP to Error, flushing | §9.8 | here |
//!
//! Model choices, each documented where it lives: ACKs advertise no end-to-end credits
//! (syndrome 0x1F); the requester keeps at most [`MAX_OUTSTANDING_BYTES`] (in PSNs,
//! [`window_psns`]) unacknowledged and sets AckReq on the last packet of a message
//! and every [`ack_req_interval`]th packet of a long one; immediate data and atomics are not
//! implemented (a responder NAKs them as invalid requests); the responder's READ
//! responses leave through [`RcQp::poll_transmit`], and a READ holds one of the
//! responder's `max_dest_rd_atomic` resources until they have left.
//!
//! Nothing here panics on what arrives from the wire: a packet this QP should not
//! take is dropped, counted in [`RcStats::dropped`] and named in
//! [`RcStats::last_drop`]; a request the responder refuses is NAKed, as IBTA says.

pub mod psn;
mod requester;
mod responder;

use core::fmt;

use crate::wire::crc::VCRC_LEN;
use crate::wire::{AckKind, AethRepr, BthRepr, ExtHeaders, IbPacket, Lnh, LrhRepr, Opcode};

pub use requester::{
    MAX_MESSAGE_LEN, MAX_OUTSTANDING_BYTES, MAX_OUTSTANDING_PSNS, ack_req_interval, window_psns,
};

use requester::Requester;
use responder::Responder;

/// The path MTUs IBTA defines, in bytes (IBTA vol. 1: a path MTU of 256 to 4096 bytes).
pub const MTUS: [usize; 5] = [256, 512, 1024, 2048, 4096];

/// An RNR retry count of 7 means "retry for ever" (IBTA vol. 1 §9.7.6; CM REQ and
/// QP attribute RNR Retry Count).
pub const INFINITE_RNR_RETRY: u8 = 7;

/// AETH NAK codes, the low five bits of a NAK syndrome (IBTA vol. 1 §9.3, AETH; the
/// syndrome's bits 6..5 are 11 for a NAK).
pub mod nak {
    /// PSN sequence error: the responder expected an earlier PSN.
    pub const PSN_SEQUENCE_ERROR: u8 = 0;
    /// Invalid request: an opcode out of sequence, a bad length, an unsupported
    /// operation, too many outstanding RDMA READs.
    pub const INVALID_REQUEST: u8 = 1;
    /// Remote access error: an R_Key that is unknown, lacks the right, or does not
    /// cover the range.
    pub const REMOTE_ACCESS_ERROR: u8 = 2;
    /// Remote operational error: the responder could not complete the request.
    pub const REMOTE_OPERATIONAL_ERROR: u8 = 3;

    /// The AETH syndrome of a NAK with `code`.
    pub const fn syndrome(code: u8) -> u8 {
        0x60 | (code & 0x1f)
    }

    /// The AETH syndrome of an RNR NAK with RNR timer `code` (bits 6..5 are 01).
    pub const fn rnr_syndrome(code: u8) -> u8 {
        0x20 | (code & 0x1f)
    }
}

/// The local ACK timeout a 5-bit code stands for: 4.096 µs × 2^code, in nanoseconds
/// (IBTA vol. 1 §9.7.6; the QP attribute and the CM REQ's Local ACK Timeout).
/// Code 0 disables the timer and gives 0, which [`RcConfig::ack_timeout_ns`] also
/// reads as "no timer". Bits above the five are ignored.
pub const fn ack_timeout_from_code(code: u8) -> u64 {
    match code & 0x1f {
        0 => 0,
        c => 4096 << c,
    }
}

/// The RNR NAK timer codes (IBTA vol. 1 Table 45) in nanoseconds: how
/// long a requester waits after an RNR NAK before it sends the request again. Code 0
/// is the longest, 655.36 ms.
const RNR_TIMER_NS: [u64; 32] = [
    655_360_000, // 0
    10_000,      // 1: 0.01 ms
    20_000,      // 2
    30_000,      // 3
    40_000,      // 4
    60_000,      // 5
    80_000,      // 6
    120_000,     // 7
    160_000,     // 8
    240_000,     // 9
    320_000,     // 10
    480_000,     // 11
    640_000,     // 12
    960_000,     // 13
    1_280_000,   // 14
    1_920_000,   // 15
    2_560_000,   // 16
    3_840_000,   // 17
    5_120_000,   // 18
    7_680_000,   // 19
    10_240_000,  // 20
    15_360_000,  // 21
    20_480_000,  // 22
    30_720_000,  // 23
    40_960_000,  // 24
    61_440_000,  // 25
    81_920_000,  // 26
    122_880_000, // 27
    163_840_000, // 28
    245_760_000, // 29
    327_680_000, // 30
    491_520_000, // 31
];

/// The RNR NAK timer `code` stands for, in nanoseconds (IBTA vol. 1 Table 45). Bits
/// above the five are ignored.
pub const fn rnr_timer_ns(code: u8) -> u64 {
    RNR_TIMER_NS[(code & 0x1f) as usize]
}

/// Transport parameters of one RC QP (the QP attributes of IBTA vol. 1 ch. 11, as
/// the CM REQ/REP negotiate them, ch. 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RcConfig {
    /// Path MTU in bytes, one of [`MTUS`]: the payload of every packet but the last
    /// of a message.
    pub mtu: usize,
    /// Transport retries after a local ACK timeout or a PSN sequence error NAK, 0..=7
    /// (§9.7.6); the counter is reloaded whenever an ACK makes progress.
    pub retry_cnt: u8,
    /// Retries after an RNR NAK, 0..=7; 7 ([`INFINITE_RNR_RETRY`]) retries for ever.
    pub rnr_retry: u8,
    /// Local ACK timeout in ns ([`ack_timeout_from_code`]); 0 disables the timer.
    pub ack_timeout_ns: u64,
    /// The RNR timer code (0..=31) this QP's responder puts in its RNR NAKs: how long
    /// it asks the requester to wait ([`rnr_timer_ns`]).
    pub min_rnr_timer_code: u8,
    /// RDMA READs this QP's requester may have outstanding (initiator depth). As
    /// in mlx5's `log_sra_max` encoding, fewer than one is read as one.
    pub max_rd_atomic: u8,
    /// RDMA READs this QP's responder accepts at once (responder resources); a READ
    /// beyond them is NAKed as an invalid request. Fewer than one is read as one.
    pub max_dest_rd_atomic: u8,
}

impl RcConfig {
    /// `Ok(())` if every value is one the QP can run with.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !MTUS.contains(&self.mtu) {
            return Err(ConfigError::Mtu(self.mtu));
        }
        if self.retry_cnt > 7 {
            return Err(ConfigError::OutOfRange {
                field: "retry_cnt",
                value: self.retry_cnt.into(),
            });
        }
        if self.rnr_retry > 7 {
            return Err(ConfigError::OutOfRange {
                field: "rnr_retry",
                value: self.rnr_retry.into(),
            });
        }
        if self.min_rnr_timer_code > 31 {
            return Err(ConfigError::OutOfRange {
                field: "min_rnr_timer_code",
                value: self.min_rnr_timer_code.into(),
            });
        }
        Ok(())
    }
}

/// Addressing of one RC connection: LIDs, service level, partition, QPNs and the
/// starting PSNs (IBTA vol. 1 ch. 11; the CM exchanges them, ch. 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RcPath {
    /// This port's LID: LRH.SLID of what we send, LRH.DLID of what we accept.
    pub slid: u16,
    /// The peer port's LID.
    pub dlid: u16,
    /// Service level, 4 bits (LRH.SL); packets go out on VL 0.
    pub sl: u8,
    /// Partition key (BTH.P_Key), checked on arrival as IBTA vol. 1 ch. 10 matches partition keys.
    pub p_key: u16,
    /// This QP's number, 24 bits: BTH.DestQP of what we accept.
    pub local_qpn: u32,
    /// The peer's QP number, 24 bits: BTH.DestQP of what we send.
    pub remote_qpn: u32,
    /// The PSN of our first request (the peer's `rq_psn`).
    pub sq_psn: u32,
    /// The PSN we expect of the peer's first request (the peer's `sq_psn`).
    pub rq_psn: u32,
}

impl RcPath {
    /// `Ok(())` if every value fits its field.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (field, value, bits) in [
            ("sl", u32::from(self.sl), 4),
            ("local_qpn", self.local_qpn, 24),
            ("remote_qpn", self.remote_qpn, 24),
            ("sq_psn", self.sq_psn, 24),
            ("rq_psn", self.rq_psn, 24),
        ] {
            if value >> bits != 0 {
                return Err(ConfigError::OutOfRange {
                    field,
                    value: value.into(),
                });
            }
        }
        Ok(())
    }
}

/// Why a [`RcConfig`] or [`RcPath`] cannot make a QP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Not one of the path MTUs IBTA defines ([`MTUS`]).
    Mtu(usize),
    /// A value too large for its field.
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: u64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::Mtu(mtu) => write!(f, "MTU {mtu} is not 256, 512, 1024, 2048 or 4096"),
            ConfigError::OutOfRange { field, value } => write!(f, "{field} {value:#x} too large"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A request for the QP's send queue (IBTA vol. 1 ch. 10, work requests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkRequest {
    /// SEND: `data` lands in the peer's next receive buffer.
    Send {
        /// Caller's cookie, returned in the completion.
        wr_id: u64,
        /// The message.
        data: Vec<u8>,
    },
    /// RDMA WRITE of `data` to the peer's memory at `remote_addr` under `rkey`.
    RdmaWrite {
        /// Caller's cookie.
        wr_id: u64,
        /// Virtual address at the peer.
        remote_addr: u64,
        /// The peer's R_Key for it.
        rkey: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// RDMA READ of `len` bytes of the peer's memory at `remote_addr` under `rkey`;
    /// the bytes come back in the completion.
    RdmaRead {
        /// Caller's cookie.
        wr_id: u64,
        /// Virtual address at the peer.
        remote_addr: u64,
        /// The peer's R_Key for it.
        rkey: u32,
        /// Bytes to read.
        len: u32,
    },
}

impl WorkRequest {
    /// The caller's cookie.
    pub fn wr_id(&self) -> u64 {
        match *self {
            WorkRequest::Send { wr_id, .. }
            | WorkRequest::RdmaWrite { wr_id, .. }
            | WorkRequest::RdmaRead { wr_id, .. } => wr_id,
        }
    }

    /// The operation, as its completion names it.
    pub fn opcode(&self) -> WcOpcode {
        match self {
            WorkRequest::Send { .. } => WcOpcode::Send,
            WorkRequest::RdmaWrite { .. } => WcOpcode::RdmaWrite,
            WorkRequest::RdmaRead { .. } => WcOpcode::RdmaRead,
        }
    }
}

/// The operation of a completed work request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WcOpcode {
    /// SEND.
    Send,
    /// RDMA WRITE.
    RdmaWrite,
    /// RDMA READ.
    RdmaRead,
}

/// How a work request ended (IBTA vol. 1 ch. 10 and 11, completion statuses; §9.8 says
/// which errors move the QP to the Error state: all but `Success` here do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WcStatus {
    /// Acknowledged (SEND, WRITE) or all its data arrived (READ).
    Success,
    /// No ACK after `retry_cnt` retries (timeouts or PSN sequence error NAKs).
    RetryExceeded,
    /// RNR NAKed more than `rnr_retry` times.
    RnrRetryExceeded,
    /// The peer NAKed it: remote access error.
    RemoteAccessError,
    /// The peer NAKed it: invalid request.
    RemoteInvalidRequest,
    /// The peer NAKed it: remote operational error.
    RemoteOperationError,
    /// Longer than a message may be ([`MAX_MESSAGE_LEN`], or more PSNs than the
    /// window arithmetic allows); never sent.
    LocalLengthError,
    /// The QP went to Error before this request completed.
    Flushed,
}

/// One completed work request, in posting order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The work request's cookie.
    pub wr_id: u64,
    /// Its operation.
    pub opcode: WcOpcode,
    /// How it ended.
    pub status: WcStatus,
    /// The bytes an RDMA READ brought back; empty otherwise and on error.
    pub data: Vec<u8>,
    /// Bytes transferred: the message length on success, 0 on error.
    pub byte_len: u32,
}

/// Why a responder refuses a request; each maps to an AETH NAK code
/// ([`RemoteError::nak_code`]) and to the requester's completion status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemoteError {
    /// Bad R_Key, missing right, or a range outside the region.
    Access,
    /// The request cannot be carried out as asked, e.g. a message longer than the
    /// receive buffer.
    InvalidRequest,
    /// The responder failed to carry it out.
    Operation,
}

impl RemoteError {
    /// The AETH NAK code for it (IBTA vol. 1 §9.3).
    pub const fn nak_code(self) -> u8 {
        match self {
            RemoteError::Access => nak::REMOTE_ACCESS_ERROR,
            RemoteError::InvalidRequest => nak::INVALID_REQUEST,
            RemoteError::Operation => nak::REMOTE_OPERATIONAL_ERROR,
        }
    }
}

/// The responder's view of its owner: memory keys and the receive queue. The device
/// model plugs its MKeys and receive WQEs in here; tests use a `Vec`.
pub trait ResponderMemory {
    /// Check an R_Key for `len` bytes at `va` with write (true) or read rights; whole
    /// range at the first packet.
    fn check(&self, rkey: u32, va: u64, len: u64, write: bool) -> Result<(), RemoteError>;
    /// Writes `data` at `va` under `rkey` (a range [`ResponderMemory::check`] passed).
    fn write(&mut self, rkey: u32, va: u64, data: &[u8]) -> Result<(), RemoteError>;
    /// Reads `len` bytes at `va` under `rkey`.
    fn read(&mut self, rkey: u32, va: u64, len: usize) -> Result<Vec<u8>, RemoteError>;
    /// Is a receive buffer posted for an incoming SEND? (false -> RNR NAK)
    fn receive_ready(&self) -> bool;
    /// A whole SEND message arrived (delivered once, at its last packet, in PSN order).
    fn receive(&mut self, message: &[u8]) -> Result<(), RemoteError>;
}

/// A QP's state (IBTA vol. 1 ch. 10, QP states): this engine runs from RTS, and any error
/// moves it to Error for good, where every outstanding request completes as
/// [`WcStatus::Flushed`] and nothing more is sent or accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QpState {
    /// Ready to send.
    Rts,
    /// Error.
    Error,
}

/// Why [`RcQp::receive`] dropped a packet without acting on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxDrop {
    /// The QP is in the Error state.
    QpInError,
    /// LRH.DLID is not our LID, or LRH.SLID not the peer's.
    WrongLid {
        /// LRH.SLID.
        slid: u16,
        /// LRH.DLID.
        dlid: u16,
    },
    /// BTH.DestQP is not this QP.
    WrongDestQp(u32),
    /// BTH.P_Key does not match ours (IBTA vol. 1 ch. 10, partition keys).
    PKeyMismatch(u16),
    /// BTH.TVer is not 0.
    TransportVersion(u8),
    /// Not an RC opcode this engine implements (§9.2.1).
    UnsupportedOpcode(u8),
    /// The extended headers or the payload are not the ones the opcode carries.
    HeaderMismatch(u8),
    /// A READ response whose opcode or length does not fit the READ it answers.
    BadResponse {
        /// BTH opcode.
        opcode: u8,
        /// Payload bytes.
        len: usize,
    },
    /// A response for a PSN this QP has not sent, or not one of this kind.
    UnexpectedPsn(u32),
    /// A response for a PSN already acknowledged.
    DuplicateResponse(u32),
    /// A request behind the expected PSN that there is nothing to answer with (a
    /// READ older than the stored ones, or one that differs from what was stored).
    StaleDuplicate(u32),
    /// A request ahead of the expected PSN after a NAK was already sent for the gap.
    OutOfSequence {
        /// BTH.PSN.
        psn: u32,
        /// The PSN the responder expects.
        expected: u32,
    },
    /// An AETH syndrome that is reserved or does not belong on this packet.
    ReservedSyndrome(u8),
}

impl fmt::Display for RxDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RxDrop::QpInError => write!(f, "QP in the Error state"),
            RxDrop::WrongLid { slid, dlid } => write!(f, "LRH SLID {slid:#x} DLID {dlid:#x}"),
            RxDrop::WrongDestQp(qp) => write!(f, "BTH.DestQP {qp:#x} is not this QP"),
            RxDrop::PKeyMismatch(k) => write!(f, "BTH.P_Key {k:#06x} does not match"),
            RxDrop::TransportVersion(v) => write!(f, "BTH.TVer {v}"),
            RxDrop::UnsupportedOpcode(op) => write!(f, "opcode {op:#04x} not handled on RC"),
            RxDrop::HeaderMismatch(op) => write!(f, "headers or payload do not fit {op:#04x}"),
            RxDrop::BadResponse { opcode, len } => {
                write!(f, "READ response {opcode:#04x} of {len} bytes does not fit")
            }
            RxDrop::UnexpectedPsn(psn) => write!(f, "response PSN {psn:#08x} not outstanding"),
            RxDrop::DuplicateResponse(psn) => write!(f, "response PSN {psn:#08x} already acked"),
            RxDrop::StaleDuplicate(psn) => write!(f, "duplicate request {psn:#08x} unanswerable"),
            RxDrop::OutOfSequence { psn, expected } => {
                write!(f, "PSN {psn:#08x} while expecting {expected:#08x}")
            }
            RxDrop::ReservedSyndrome(s) => write!(f, "AETH syndrome {s:#04x}"),
        }
    }
}

/// What a QP has sent and received, for tests and figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcStats {
    /// Every packet handed out, of any kind.
    pub packets_sent: u64,
    /// Request packets sent for the first time.
    pub requests_sent: u64,
    /// Request packets sent again (go-back-N, RNR, re-issued READs).
    pub retransmitted: u64,
    /// READ response packets sent, re-executions included.
    pub read_responses_sent: u64,
    /// ACKs sent.
    pub acks_sent: u64,
    /// NAKs sent with a NAK code (sequence error, invalid request, access, operational).
    pub naks_sent: u64,
    /// RNR NAKs sent.
    pub rnr_naks_sent: u64,
    /// ACKs received.
    pub acks_received: u64,
    /// NAKs received with a NAK code.
    pub naks_received: u64,
    /// RNR NAKs received.
    pub rnr_naks_received: u64,
    /// READ response packets taken.
    pub read_responses_received: u64,
    /// Duplicate requests (responder) and duplicate responses (requester).
    pub duplicates: u64,
    /// Local ACK timeouts that fired with packets outstanding.
    pub timeouts: u64,
    /// READ responses found missing by a later ACK or response (§9.7.4.1.3).
    pub implicit_naks: u64,
    /// Packets dropped without effect.
    pub dropped: u64,
    /// Why the last of them was.
    pub last_drop: Option<RxDrop>,
}

/// State both halves of the QP share.
struct Shared {
    cfg: RcConfig,
    path: RcPath,
    state: QpState,
    stats: RcStats,
    completions: Vec<Completion>,
    /// The latest `now_ns` seen, so that [`RcQp::next_deadline_ns`] can say "now".
    last_now: u64,
}

impl Shared {
    /// PMTU in bytes.
    fn mtu(&self) -> usize {
        self.cfg.mtu
    }

    /// A packet from this QP to its peer, with LRH.PktLen and BTH.PadCnt filled in as
    /// [`IbPacket::decode`] would return them (LRH: IBTA §7.7; BTH: §9.2).
    fn packet(
        &self,
        opcode: Opcode,
        ack_req: bool,
        psn: u32,
        ext: ExtHeaders,
        payload: Vec<u8>,
    ) -> IbPacket {
        let mut p = IbPacket {
            lrh: LrhRepr {
                vl: 0,
                lver: 0,
                sl: self.path.sl,
                lnh: Lnh::Local,
                dlid: self.path.dlid,
                pkt_len: 0,
                slid: self.path.slid,
            },
            grh: None,
            bth: BthRepr {
                opcode,
                se: false,
                // No alternate path: the QP's migration state is Migrated, which BTH.M
                // reports as 1 (§9.2.3).
                mig_req: true,
                pad_cnt: 0,
                tver: 0,
                p_key: self.path.p_key,
                dest_qp: self.path.remote_qpn,
                ack_req,
                psn: psn & psn::PSN_MASK,
            },
            ext,
            payload,
        };
        // At most 4096 payload bytes and 36 of headers: far below PktLen's 2047 words.
        p.lrh.pkt_len = ((p.buffer_len() - VCRC_LEN) / 4) as u16;
        p.bth.pad_cnt = p.pad_len() as u8;
        p
    }

    /// Counts a dropped packet.
    fn drop(&mut self, why: RxDrop) {
        self.stats.dropped += 1;
        self.stats.last_drop = Some(why);
    }

    /// Moves the QP to Error; the owner of the send queue flushes it.
    fn enter_error(&mut self) {
        self.state = QpState::Error;
    }

    /// `Ok(())` if `pkt` is addressed to this QP in a form the engine handles; what
    /// the packet then means is for the requester or the responder to judge.
    fn admit(&self, pkt: &IbPacket) -> Result<(), RxDrop> {
        if self.state != QpState::Rts {
            return Err(RxDrop::QpInError);
        }
        if pkt.lrh.dlid != self.path.slid || pkt.lrh.slid != self.path.dlid {
            return Err(RxDrop::WrongLid {
                slid: pkt.lrh.slid,
                dlid: pkt.lrh.dlid,
            });
        }
        if pkt.bth.dest_qp != self.path.local_qpn {
            return Err(RxDrop::WrongDestQp(pkt.bth.dest_qp));
        }
        if !p_key_match(pkt.bth.p_key, self.path.p_key) {
            return Err(RxDrop::PKeyMismatch(pkt.bth.p_key));
        }
        if pkt.bth.tver != 0 {
            return Err(RxDrop::TransportVersion(pkt.bth.tver));
        }
        let op = pkt.bth.opcode;
        if op.0 > Opcode::RC_ACKNOWLEDGE.0 {
            return Err(RxDrop::UnsupportedOpcode(op.0));
        }
        if op.ext_kind() != Some(pkt.ext.kind()) {
            return Err(RxDrop::HeaderMismatch(op.0));
        }
        if !op.has_payload() && !pkt.payload.is_empty() {
            return Err(RxDrop::HeaderMismatch(op.0));
        }
        Ok(())
    }

    /// Counts what goes out, by kind.
    fn count_out(&mut self, out: &[IbPacket]) {
        let s = &mut self.stats;
        s.packets_sent += out.len() as u64;
        for p in out {
            match (p.bth.opcode, p.ext) {
                (Opcode::RC_ACKNOWLEDGE, ExtHeaders::Aeth(a)) => match a.kind() {
                    AckKind::Ack { .. } => s.acks_sent += 1,
                    AckKind::RnrNak { .. } => s.rnr_naks_sent += 1,
                    AckKind::Nak { .. } | AckKind::Reserved(_) => s.naks_sent += 1,
                },
                (op, _) if op.0 > Opcode::RC_RDMA_READ_REQUEST.0 => s.read_responses_sent += 1,
                _ => {}
            }
        }
    }

    /// An AETH with an ACK syndrome that advertises no end-to-end credits.
    fn ack_aeth(msn: u32) -> AethRepr {
        AethRepr {
            syndrome: AethRepr::SYNDROME_ACK_NO_CREDIT,
            msn: msn & psn::PSN_MASK,
        }
    }
}

/// Whether two P_Keys match (IBTA vol. 1 ch. 10, partition key matching): the same
/// low 15 bits, and at least one of them a full member (bit 15 set).
const fn p_key_match(a: u16, b: u16) -> bool {
    (a & 0x7fff) == (b & 0x7fff) && (a | b) & 0x8000 != 0
}

/// Packets a message of `len` bytes takes at `mtu`: at least one, even when empty.
fn packets_for(len: u64, mtu: usize) -> u64 {
    len.div_ceil(mtu as u64).max(1)
}

/// One RC queue pair's transport: requester and responder.
pub struct RcQp {
    sh: Shared,
    req: Requester,
    resp: Responder,
}

impl RcQp {
    /// A QP in RTS with `cfg` on `path`.
    ///
    /// # Panics
    /// If `cfg` or `path` does not pass [`RcConfig::check`] or [`RcPath::check`]
    /// ([`RcQp::try_new`] returns the error instead).
    pub fn new(cfg: RcConfig, path: RcPath) -> RcQp {
        match RcQp::try_new(cfg, path) {
            Ok(qp) => qp,
            Err(e) => panic!("RC QP configuration: {e}"),
        }
    }

    /// A QP in RTS with `cfg` on `path`, or why not.
    pub fn try_new(cfg: RcConfig, path: RcPath) -> Result<RcQp, ConfigError> {
        cfg.check()?;
        path.check()?;
        Ok(RcQp {
            req: Requester::new(&cfg, path.sq_psn),
            resp: Responder::new(path.rq_psn),
            sh: Shared {
                cfg,
                path,
                state: QpState::Rts,
                stats: RcStats::default(),
                completions: Vec::new(),
                last_now: 0,
            },
        })
    }

    /// Queues a work request; requests are carried out and complete in posting order.
    /// In the Error state it completes at once as [`WcStatus::Flushed`].
    pub fn post(&mut self, wr: WorkRequest) {
        self.req.post(&mut self.sh, wr);
    }

    /// Packets to send now: the responder's queued READ responses (and the ACKs and
    /// NAKs behind them), then retransmissions whose timer expired or that a NAK
    /// asked for, then new requests as far as the window and the READ limit allow.
    pub fn poll_transmit(&mut self, now_ns: u64) -> Vec<IbPacket> {
        self.sh.last_now = self.sh.last_now.max(now_ns);
        let mut out = self.resp.drain();
        self.req.poll(&mut self.sh, now_ns, &mut out);
        self.settle();
        self.sh.count_out(&out);
        out
    }

    /// Takes one packet from the fabric. Requests are checked and carried out against
    /// `mem`, and answered with an ACK or NAK where one is due (READ responses follow
    /// through [`RcQp::poll_transmit`]); responses advance the send queue and make
    /// completions. What comes back is to be sent now.
    pub fn receive(
        &mut self,
        now_ns: u64,
        pkt: &IbPacket,
        mem: &mut dyn ResponderMemory,
    ) -> Vec<IbPacket> {
        self.sh.last_now = self.sh.last_now.max(now_ns);
        if let Err(why) = self.sh.admit(pkt) {
            self.sh.drop(why);
            return Vec::new();
        }
        let out = if pkt.bth.opcode.0 <= Opcode::RC_RDMA_READ_REQUEST.0 {
            self.resp.on_request(&mut self.sh, now_ns, pkt, mem)
        } else {
            self.req.on_response(&mut self.sh, now_ns, pkt);
            Vec::new()
        };
        self.settle();
        self.sh.count_out(&out);
        out
    }

    /// The completions made since the last call, in posting order.
    pub fn take_completions(&mut self) -> Vec<Completion> {
        core::mem::take(&mut self.sh.completions)
    }

    /// When [`RcQp::poll_transmit`] next has work: the ACK timeout, the end of an RNR
    /// wait, or "now" (the latest time seen) when packets are ready to go. `None`
    /// when nothing will happen until a packet arrives or a request is posted.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        match (self.resp.deadline(), self.req.deadline(&self.sh)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The QP's state.
    pub fn state(&self) -> QpState {
        self.sh.state
    }

    /// Counters.
    pub fn stats(&self) -> &RcStats {
        &self.sh.stats
    }

    /// The configuration.
    pub fn config(&self) -> &RcConfig {
        &self.sh.cfg
    }

    /// The path.
    pub fn path(&self) -> &RcPath {
        &self.sh.path
    }

    /// The responder's message sequence number: messages it has completed, 24 bits
    /// (the AETH.MSN of its next ACK).
    pub fn msn(&self) -> u32 {
        self.resp.msn()
    }

    /// The PSN the responder expects next.
    pub fn expected_psn(&self) -> u32 {
        self.resp.expected_psn()
    }

    /// After an error, flushes the send queue.
    fn settle(&mut self) {
        if self.sh.state == QpState::Error {
            self.req.flush(&mut self.sh);
        }
    }
}

impl fmt::Debug for RcQp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcQp")
            .field("state", &self.sh.state)
            .field("path", &self.sh.path)
            .field("stats", &self.sh.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ack_timeout_codes() {
        // 4.096 µs × 2^code; code 14 is iPXE's ≈ 67 ms, 19 the CM's ≈ 2.1 s.
        assert_eq!(ack_timeout_from_code(0), 0);
        assert_eq!(ack_timeout_from_code(1), 8_192);
        assert_eq!(ack_timeout_from_code(14), 67_108_864);
        assert_eq!(ack_timeout_from_code(19), 2_147_483_648);
        assert_eq!(ack_timeout_from_code(31), 4096 << 31);
        assert_eq!(ack_timeout_from_code(0x20 | 14), ack_timeout_from_code(14));
    }

    #[test]
    fn test_rnr_timer_table() {
        // IBTA vol. 1 Table 45, in ms: 0 → 655.36, 1 → 0.01, 14 → 1.28, 31 → 491.52.
        assert_eq!(rnr_timer_ns(0), 655_360_000);
        assert_eq!(rnr_timer_ns(1), 10_000);
        assert_eq!(rnr_timer_ns(14), 1_280_000);
        assert_eq!(rnr_timer_ns(18), 5_120_000);
        assert_eq!(rnr_timer_ns(31), 491_520_000);
        // Codes 1.. grow; each step is × 4/3 or × 3/2.
        for c in 2..32u8 {
            let (a, b) = (rnr_timer_ns(c - 1), rnr_timer_ns(c));
            assert!(
                b > a && (b * 3 == a * 4 || b * 2 == a * 3 || b == 2 * a),
                "{c}"
            );
        }
    }

    #[test]
    fn test_syndromes() {
        assert_eq!(nak::syndrome(nak::PSN_SEQUENCE_ERROR), 0x60);
        assert_eq!(nak::syndrome(nak::INVALID_REQUEST), 0x61);
        assert_eq!(nak::syndrome(nak::REMOTE_ACCESS_ERROR), 0x62);
        assert_eq!(nak::syndrome(nak::REMOTE_OPERATIONAL_ERROR), 0x63);
        assert_eq!(nak::rnr_syndrome(14), 0x2e);
        for e in [
            RemoteError::Access,
            RemoteError::InvalidRequest,
            RemoteError::Operation,
        ] {
            let aeth = AethRepr {
                syndrome: nak::syndrome(e.nak_code()),
                msn: 0,
            };
            assert_eq!(aeth.kind(), AckKind::Nak { code: e.nak_code() });
        }
    }

    #[test]
    fn test_p_key_match() {
        assert!(p_key_match(0xffff, 0xffff));
        assert!(p_key_match(0x7fff, 0xffff));
        assert!(!p_key_match(0x7fff, 0x7fff), "two limited members");
        assert!(!p_key_match(0x8001, 0x8002));
    }

    #[test]
    fn test_config_checks() {
        let cfg = RcConfig {
            mtu: 2048,
            retry_cnt: 7,
            rnr_retry: 7,
            ack_timeout_ns: ack_timeout_from_code(14),
            min_rnr_timer_code: 12,
            max_rd_atomic: 1,
            max_dest_rd_atomic: 1,
        };
        assert_eq!(cfg.check(), Ok(()));
        assert_eq!(
            RcConfig { mtu: 1500, ..cfg }.check(),
            Err(ConfigError::Mtu(1500))
        );
        assert!(
            RcConfig {
                retry_cnt: 8,
                ..cfg
            }
            .check()
            .is_err()
        );
        assert!(
            RcConfig {
                rnr_retry: 8,
                ..cfg
            }
            .check()
            .is_err()
        );
        assert!(
            RcConfig {
                min_rnr_timer_code: 32,
                ..cfg
            }
            .check()
            .is_err()
        );
        let path = RcPath {
            slid: 1,
            dlid: 2,
            sl: 0,
            p_key: 0xffff,
            local_qpn: 0x11,
            remote_qpn: 0x22,
            sq_psn: 0xff_ffff,
            rq_psn: 0,
        };
        assert_eq!(path.check(), Ok(()));
        assert!(
            RcPath {
                sq_psn: 1 << 24,
                ..path
            }
            .check()
            .is_err()
        );
        assert!(RcPath { sl: 16, ..path }.check().is_err());
        assert!(RcQp::try_new(RcConfig { mtu: 0, ..cfg }, path).is_err());
    }
}
