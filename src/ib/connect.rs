//! The CM active side for one RC connection: REQ → REP → RTU, REJ and MRA on the
//! way, DREQ/DREP to close (IBTA vol. 1 §12.6–§12.9; reference `srp-cm-sa-dm.md` §1.4
//! and §2.2 steps 3, 5–7).
//!
//! A sans-I/O state machine: no clock, no buffers, no allocation. The caller passes the
//! time (`now_us`) and a 256-byte buffer, sends every MAD the machine writes from QP1
//! to the path's DLID (QPN 1, Q_Key 0x80010000), and offers every CM MAD it receives on
//! QP1 to [`Connector::on_mad`].
//!
//! # Life cycle
//!
//! ```text
//! Start --poll--> ReqSent <--> MraWait --REP--> RepReceived --established--> Established
//!                    |            |                 |                             |
//!                    +--REJ-------+-----------------+--> Rejected      disconnect / DREQ
//!                    +--timeout--> Failed                                         v
//!                                                           DreqSent --DREP--> Closed
//! ```
//!
//! # Values sent (reference §2.2 step 3, §1.4 "How Linux fills the REQ")
//!
//! Responder resources [`RESPONDER_RESOURCES`], initiator depth [`INITIATOR_DEPTH`],
//! retry count 7, RNR retry 7, end-to-end flow control, RC, both CM response timeouts
//! SubnetTimeOut + 2 (capped at 31), Max CM Retries from the parameters (capped at 15),
//! primary path from the PathRecord with the Local ACK Timeout of
//! [`local_ack_timeout`], P_Key and MTU from the path, the 64-byte SRP_LOGIN_REQ as
//! private data.
//!
//! # Timers
//!
//! - REQ and DREQ retransmit after 2 × 4.096 µs × 2^PacketLifeTime + 4.096 µs ×
//!   2^RemoteCMResponseTimeout (reference §1.4). The REQ is sent again, same bytes and
//!   TID, up to Max CM Retries times, then the connection fails; the DREQ up to
//!   [`DREQ_RETRIES`] times, then the machine closes without its DREP.
//! - An MRA for our REQ replaces the REQ timer by its service timeout plus the packet
//!   lifetime; no REQ is resent before that expires. Then retransmission resumes with
//!   the retries left.
//!
//! # Transaction IDs
//!
//! The connection's transactions use `local_comm_id << 32 | n`: n = 1 for REQ, RTU and
//! a REJ we send, n = 2 for our DREQ. A DREP answers with the TID of the DREQ it answers.

use fabboot_hca::bytes;
use fabboot_srp::login::LoginRej;

use super::cm::{
    CmMessage, CmPath, Drep, Dreq, Mra, MsgMraed, MsgRejected, REJ_ARI_LEN, REP_PRIVATE_DATA_LEN,
    Rej, RejReason, Rep, Req, Rtu, TransportType,
};
use super::sa::PathRecord;
use super::{Error, Gid, Mtu, ib_time_us};

/// REQ Responder Resources: RDMA reads the target may have outstanding at us. ib_srpt
/// issues 4 (reference §2.2 step 3, §3.3).
pub const RESPONDER_RESOURCES: u8 = 4;
/// REQ Initiator Depth: an SRP initiator never issues RDMA reads (reference §2.2).
pub const INITIATOR_DEPTH: u8 = 0;
/// REQ Retry Count and the QP's retry count (reference §2.2 step 3).
pub const RETRY_COUNT: u8 = 7;
/// REQ RNR Retry Count: 7, infinite (reference §2.2 step 3).
pub const RNR_RETRY_COUNT: u8 = 7;
/// Times our DREQ is resent before the machine gives up on the DREP.
pub const DREQ_RETRIES: u8 = 3;
/// First delay before a REQ is tried again after REJ "stale connection"; see
/// [`stale_retry_delay_us`].
pub const STALE_RETRY_BASE_US: u64 = 1_000_000;

/// TID suffix of the connection-establishment transaction (REQ, RTU, our REJ).
const TID_CONNECT: u64 = 1;
/// TID suffix of our disconnect transaction (DREQ).
const TID_DISCONNECT: u64 = 2;

/// What the connection needs (reference §2.2 step 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectParams {
    /// Our Local Communication ID (non-zero, unique per connection attempt).
    pub local_comm_id: u32,
    /// The target's service ID.
    pub service_id: u64,
    /// Our CA (node) GUID.
    pub local_ca_guid: u64,
    /// Our RC QP number, 24 bits.
    pub local_qpn: u32,
    /// Our starting send PSN, 24 bits (random, reference §2.2 step 3).
    pub starting_psn: u32,
    /// The SA's path to the target (as [`super::path::PathClient`] returns it).
    pub path: PathRecord,
    /// Our port's GID: sent as the primary path's Local Port GID.
    pub local_gid: Gid,
    /// PortInfo SubnetTimeOut, 5 bits.
    pub subnet_timeout: u8,
    /// Our CA's local ACK delay, an IB time code, 5 bits (the HCA's
    /// `local_ca_ack_delay` capability; reference §1.4 "How Linux fills the REQ").
    pub ca_ack_delay: u8,
    /// The SRP_LOGIN_REQ, sent as REQ private data.
    pub private_data: [u8; 64],
    /// Max CM Retries (15 in ib_srp); at most 15, a larger value is sent as 15.
    pub max_cm_retries: u8,
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Nothing sent yet: the next poll sends the REQ.
    Start,
    /// REQ sent, waiting for REP/REJ/MRA.
    ReqSent,
    /// The target sent an MRA for our REQ: waiting longer, not retransmitting.
    MraWait,
    /// REP received and handed to the caller, waiting for [`Connector::established`].
    RepReceived,
    /// RTU sent: the connection is up.
    Established,
    /// Our DREQ is out, waiting for the DREP.
    DreqSent,
    /// The connection is gone (disconnected either way, or abandoned).
    Closed,
    /// The target rejected the connection (final).
    Rejected,
    /// The connection attempt failed (final).
    Failed,
}

/// The QP attributes the caller applies for INIT→RTR→RTS, derived as Linux CM does
/// (reference §1.4 "QP attributes derived by Linux CM", §2.2 step 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QpParams {
    /// RTR address vector: destination LID (the path's DLID).
    pub rlid: u16,
    /// RTR address vector: service level.
    pub sl: u8,
    /// RTR address vector: static rate (PathRecord rate code).
    pub static_rate: u8,
    /// RTR address vector: whether a GRH is needed (path hop limit above 1).
    pub grh: bool,
    /// GRH destination GID.
    pub dgid: Gid,
    /// GRH flow label, 20 bits.
    pub flow_label: u32,
    /// GRH hop limit.
    pub hop_limit: u8,
    /// GRH traffic class.
    pub traffic_class: u8,
    /// The partition (the caller maps it to a P_Key index).
    pub pkey: u16,
    /// RTR path MTU.
    pub mtu: Mtu,
    /// RTR destination QPN: the target's QP (REP Local QPN).
    pub dest_qpn: u32,
    /// RTR receive PSN: the target's starting PSN (REP Starting PSN).
    pub rq_psn: u32,
    /// RTR max_dest_rd_atomic: our responder resources = REP Initiator Depth, capped at
    /// the [`RESPONDER_RESOURCES`] we offered.
    pub max_dest_rd_atomic: u8,
    /// RTR min RNR NAK timer code (0).
    pub min_rnr_timer: u8,
    /// RTS send PSN: our starting PSN.
    pub sq_psn: u32,
    /// RTS local ACK timeout, 5 bits: [`local_ack_timeout`] of the path's packet
    /// lifetime and the REP's Target ACK Delay (the delay the target adds before it
    /// ACKs is the one our QP waits for).
    pub ack_timeout: u8,
    /// RTS retry count ([`RETRY_COUNT`]).
    pub retry_count: u8,
    /// RTS RNR retry count: the REP's.
    pub rnr_retry: u8,
    /// RTS max_rd_atomic: our initiator depth = REP Responder Resources, capped at the
    /// [`INITIATOR_DEPTH`] we offered.
    pub max_rd_atomic: u8,
}

/// A REP, as the caller needs it (IBTA vol. 1 §12.6.8; reference §2.2 step 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepInfo {
    /// The target's QPN.
    pub remote_qpn: u32,
    /// The target's Local Communication ID.
    pub remote_comm_id: u32,
    /// The target's starting PSN.
    pub starting_psn: u32,
    /// REP Responder Resources.
    pub responder_resources: u8,
    /// REP Initiator Depth.
    pub initiator_depth: u8,
    /// REP Target ACK Delay, 5 bits.
    pub target_ack_delay: u8,
    /// REP RNR Retry Count.
    pub rnr_retry: u8,
    /// The target's CA GUID.
    pub remote_ca_guid: u64,
    /// REP private data (the SRP_LOGIN_RSP in its first 52 bytes).
    pub private_data: [u8; REP_PRIVATE_DATA_LEN],
    /// The QP attributes derived from the path, the REQ and this REP.
    pub qp: QpParams,
}

/// A REJ for our connection (IBTA vol. 1 §12.6.7; reference §1.4, §2.2 step 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Reason (Table 109).
    pub reason: RejReason,
    /// Additional Reject Information; the first `ari_len` bytes are meaningful.
    pub ari: [u8; REJ_ARI_LEN],
    /// RejectInfoLength.
    pub ari_len: u8,
    /// With reason 28 (consumer defined): the SRP_LOGIN_REJ in the private data, when
    /// it parses as one.
    pub login_rej: Option<LoginRej>,
    /// Message REJected (0 REQ, 1 REP, 2 other).
    pub msg_rejected: u8,
}

impl Reject {
    /// The meaningful ARI bytes.
    pub fn ari(&self) -> &[u8] {
        self.ari
            .get(..usize::from(self.ari_len))
            .unwrap_or(&self.ari)
    }

    /// Reason 10, stale connection: the target still holds a connection from our CA
    /// GUID and QPN (a previous boot stage). Not a failure of the target: retry after
    /// [`stale_retry_delay_us`], or from a new QPN (reference §1.4, §6 item 4).
    pub fn is_stale(&self) -> bool {
        self.reason == RejReason::StaleConnection
    }
}

/// The recommended delay before REQ attempt `retry + 1` after a REJ "stale connection"
/// (reference §1.4, DESIGN §1): the target tears down the stale connection with a
/// DREQ of its own, whose retries and timewait take seconds. A policy, not a spec
/// value: 1 s doubling per retry, capped at 16 s.
pub fn stale_retry_delay_us(retry: u8) -> u64 {
    STALE_RETRY_BASE_US.saturating_mul(1u64 << retry.min(4))
}

/// Local ACK Timeout from a packet lifetime and an ACK delay (both IB time codes),
/// as reference §1.4 "How Linux fills the REQ" gives it: start from lifetime + 1; if
/// that is at least the ACK delay, add 1 only when the delay is within one step of
/// it; otherwise take the ACK delay, plus 1 only when the lifetime-based value is
/// within one step of it; cap at 31.
pub fn local_ack_timeout(packet_life_time: u8, ack_delay: u8) -> u8 {
    let t = packet_life_time.saturating_add(1);
    let v = if t >= ack_delay {
        t.saturating_add(u8::from(ack_delay >= t.saturating_sub(1)))
    } else {
        ack_delay.saturating_add(u8::from(t >= ack_delay.saturating_sub(1)))
    };
    v.min(31)
}

/// Why the connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// No REP, REJ or MRA after `sends` REQs (the first plus Max CM Retries).
    Timeout {
        /// REQs sent.
        sends: u8,
    },
    /// A message could not be written (a parameter wider than its field, e.g. a PSN
    /// above 24 bits or an MTU code above 15).
    Emit(Error),
    /// `call` is not allowed in `state`; the machine is unchanged.
    WrongState {
        /// The method called.
        call: &'static str,
        /// The state it found.
        state: State,
    },
}

/// What the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectStep {
    /// `out` holds a CM MAD: send it to the path's DLID, QPN 1.
    Send,
    /// Nothing to do before `until_us` unless a MAD arrives.
    Wait {
        /// The next deadline.
        until_us: u64,
    },
    /// A REP arrived: move the QP INIT→RTR→RTS with [`RepInfo::qp`], then call
    /// [`Connector::established`], which writes the RTU.
    Rep(RepInfo),
    /// The target rejected the connection (final).
    Rejected(Reject),
    /// The connection attempt failed (final), or a call was refused
    /// ([`ConnectError::WrongState`]).
    Failed(ConnectError),
    /// The connection is gone: the target sent DREQ (then `drep` is true and `out`
    /// holds the DREP to send) or rejected the connection after we thought it
    /// established (`drep` false, nothing to send).
    Disconnected {
        /// `out` holds a DREP.
        drep: bool,
    },
    /// No timer pending: waiting for the caller (after a REP), connected, or closed.
    Idle,
}

/// Counters of what the machine saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectStats {
    /// MADs written for sending (retransmissions included).
    pub sent: u32,
    /// Of those, REQ and DREQ retransmissions.
    pub retransmits: u32,
    /// CM MADs of this connection consumed.
    pub received: u32,
    /// MADs offered but not consumed: not CM, malformed, or another connection's.
    pub ignored: u32,
    /// Duplicates consumed (REP after REP, DREQ after close, ...).
    pub duplicates: u32,
    /// MRAs for our REQ.
    pub mra: u32,
    /// Timer expiries.
    pub timeouts: u32,
}

/// The target's identity once its REP arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Peer {
    comm_id: u32,
    qpn: u32,
}

/// Internal phase; [`State`] is its public face.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    /// REQ out; `sends` REQs sent so far.
    ReqSent {
        deadline: u64,
        sends: u8,
    },
    MraWait {
        deadline: u64,
        sends: u8,
    },
    RepReceived,
    Established,
    DreqSent {
        deadline: u64,
        sends: u8,
    },
    Closed,
    Rejected(Reject),
    Failed(ConnectError),
}

/// The CM active side of one connection (IBTA vol. 1 §12.9 state machine, active
/// half; reference §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connector {
    params: ConnectParams,
    cm_timeout: u8,
    local_ack_timeout: u8,
    retransmit_us: u64,
    peer: Option<Peer>,
    phase: Phase,
    stats: ConnectStats,
}

impl Connector {
    /// A connection that sends its REQ on the first [`poll`](Self::poll).
    pub fn new(params: ConnectParams) -> Self {
        let cm_timeout = (params.subnet_timeout & 0x1F).saturating_add(2).min(31);
        let life = params.path.packet_life_time;
        Connector {
            params,
            cm_timeout,
            local_ack_timeout: local_ack_timeout(life, params.ca_ack_delay & 0x1F),
            retransmit_us: ib_time_us(life)
                .saturating_mul(2)
                .saturating_add(ib_time_us(cm_timeout)),
            peer: None,
            phase: Phase::Start,
            stats: ConnectStats::default(),
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Start => State::Start,
            Phase::ReqSent { .. } => State::ReqSent,
            Phase::MraWait { .. } => State::MraWait,
            Phase::RepReceived => State::RepReceived,
            Phase::Established => State::Established,
            Phase::DreqSent { .. } => State::DreqSent,
            Phase::Closed => State::Closed,
            Phase::Rejected(_) => State::Rejected,
            Phase::Failed(_) => State::Failed,
        }
    }

    /// The counters.
    pub fn stats(&self) -> ConnectStats {
        self.stats
    }

    /// The REQ/DREQ retransmit timeout, µs (module docs "Timers").
    pub fn retransmit_timeout_us(&self) -> u64 {
        self.retransmit_us
    }

    /// The Local ACK Timeout the REQ carries ([`local_ack_timeout`] of the path's
    /// packet lifetime and our CA ACK delay).
    pub fn req_local_ack_timeout(&self) -> u8 {
        self.local_ack_timeout
    }

    /// The remote and local CM response timeouts the REQ carries (SubnetTimeOut + 2).
    pub fn cm_response_timeout(&self) -> u8 {
        self.cm_timeout
    }

    fn tid(&self, n: u64) -> u64 {
        u64::from(self.params.local_comm_id) << 32 | n
    }

    /// Drives the timers at `now_us`: sends the REQ, retransmits REQ or DREQ, fails
    /// after the last retry; otherwise says what is pending. Final outcomes are
    /// returned again on every call.
    pub fn poll(&mut self, now_us: u64, out: &mut [u8; 256]) -> ConnectStep {
        match self.phase {
            Phase::Start => self.send_req(now_us, out, 0),
            Phase::ReqSent { deadline, sends } | Phase::MraWait { deadline, sends }
                if now_us >= deadline =>
            {
                self.stats.timeouts = self.stats.timeouts.saturating_add(1);
                let max = self.params.max_cm_retries.min(15);
                if sends > max {
                    let e = ConnectError::Timeout { sends };
                    self.phase = Phase::Failed(e);
                    ConnectStep::Failed(e)
                } else {
                    self.stats.retransmits = self.stats.retransmits.saturating_add(1);
                    self.send_req(now_us, out, sends)
                }
            }
            Phase::DreqSent { deadline, sends } if now_us >= deadline => {
                self.stats.timeouts = self.stats.timeouts.saturating_add(1);
                if sends > DREQ_RETRIES {
                    self.phase = Phase::Closed;
                    ConnectStep::Idle
                } else {
                    self.stats.retransmits = self.stats.retransmits.saturating_add(1);
                    self.send_dreq(now_us, out, sends)
                }
            }
            _ => self.pending(),
        }
    }

    /// What is pending without acting: the current deadline, the final outcome, or
    /// Idle.
    fn pending(&self) -> ConnectStep {
        match self.phase {
            Phase::ReqSent { deadline, .. }
            | Phase::MraWait { deadline, .. }
            | Phase::DreqSent { deadline, .. } => ConnectStep::Wait { until_us: deadline },
            Phase::Rejected(r) => ConnectStep::Rejected(r),
            Phase::Failed(e) => ConnectStep::Failed(e),
            Phase::Start | Phase::RepReceived | Phase::Established | Phase::Closed => {
                ConnectStep::Idle
            }
        }
    }

    /// Emits `msg` with `tid` into `out`; a failure fails the connection.
    fn emit(&mut self, msg: CmMessage<'_>, tid: u64, out: &mut [u8; 256]) -> Result<(), Error> {
        match msg.emit_mad(tid, out) {
            Ok(()) => {
                self.stats.sent = self.stats.sent.saturating_add(1);
                Ok(())
            }
            Err(e) => {
                self.phase = Phase::Failed(ConnectError::Emit(e));
                Err(e)
            }
        }
    }

    /// The REQ of reference §2.2 step 3.
    fn send_req(&mut self, now_us: u64, out: &mut [u8; 256], sends: u8) -> ConnectStep {
        let p = self.params;
        let primary = CmPath {
            local_gid: p.local_gid,
            ..CmPath::from_path_record(&p.path, self.local_ack_timeout)
        };
        let req = Req {
            local_comm_id: p.local_comm_id,
            service_id: p.service_id,
            local_ca_guid: p.local_ca_guid,
            local_qkey: 0,
            local_qpn: p.local_qpn,
            responder_resources: RESPONDER_RESOURCES,
            local_eecn: 0,
            initiator_depth: INITIATOR_DEPTH,
            remote_eecn: 0,
            remote_cm_response_timeout: self.cm_timeout,
            transport_type: TransportType::Rc,
            end_to_end_flow_control: true,
            starting_psn: p.starting_psn,
            local_cm_response_timeout: self.cm_timeout,
            retry_count: RETRY_COUNT,
            pkey: p.path.pkey,
            path_mtu: p.path.mtu,
            rdc_exists: false,
            rnr_retry_count: RNR_RETRY_COUNT,
            max_cm_retries: p.max_cm_retries.min(15),
            srq: false,
            extended_transport_type: 0,
            primary,
            alternate: None,
            private_data: &p.private_data,
        };
        let tid = self.tid(TID_CONNECT);
        if let Err(e) = self.emit(CmMessage::Req(req), tid, out) {
            return ConnectStep::Failed(ConnectError::Emit(e));
        }
        self.phase = Phase::ReqSent {
            deadline: now_us.saturating_add(self.retransmit_us),
            sends: sends.saturating_add(1),
        };
        ConnectStep::Send
    }

    fn send_dreq(&mut self, now_us: u64, out: &mut [u8; 256], sends: u8) -> ConnectStep {
        let Some(peer) = self.peer else {
            self.phase = Phase::Closed;
            return ConnectStep::Idle;
        };
        let dreq = Dreq {
            local_comm_id: self.params.local_comm_id,
            remote_comm_id: peer.comm_id,
            remote_qpn: peer.qpn,
            private_data: &[],
        };
        let tid = self.tid(TID_DISCONNECT);
        if let Err(e) = self.emit(CmMessage::Dreq(dreq), tid, out) {
            return ConnectStep::Failed(ConnectError::Emit(e));
        }
        self.phase = Phase::DreqSent {
            deadline: now_us.saturating_add(self.retransmit_us),
            sends: sends.saturating_add(1),
        };
        ConnectStep::Send
    }

    fn write_rtu(&mut self, out: &mut [u8; 256]) -> Result<(), Error> {
        let remote = self.peer.map_or(0, |p| p.comm_id);
        let rtu = Rtu {
            local_comm_id: self.params.local_comm_id,
            remote_comm_id: remote,
            private_data: &[],
        };
        self.emit(CmMessage::Rtu(rtu), self.tid(TID_CONNECT), out)
    }

    fn write_drep(&mut self, tid: u64, out: &mut [u8; 256]) -> Result<(), Error> {
        let remote = self.peer.map_or(0, |p| p.comm_id);
        let drep = Drep {
            local_comm_id: self.params.local_comm_id,
            remote_comm_id: remote,
            private_data: &[],
        };
        self.emit(CmMessage::Drep(drep), tid, out)
    }

    /// Call after the QP reached RTS following [`ConnectStep::Rep`]: writes the RTU
    /// (IBTA vol. 1 §12.6.9) and returns [`ConnectStep::Send`]; the connection is
    /// established. In any other state: [`ConnectError::WrongState`], nothing changes.
    pub fn established(&mut self, _now_us: u64, out: &mut [u8; 256]) -> ConnectStep {
        if self.phase != Phase::RepReceived {
            return ConnectStep::Failed(ConnectError::WrongState {
                call: "established",
                state: self.state(),
            });
        }
        if let Err(e) = self.write_rtu(out) {
            return ConnectStep::Failed(ConnectError::Emit(e));
        }
        self.phase = Phase::Established;
        ConnectStep::Send
    }

    /// Closes the connection from our side (reference §2.2 step 7):
    /// - established: writes a DREQ (Send), then waits for the DREP with retransmits;
    ///   [`poll`](Self::poll) or [`on_mad`](Self::on_mad) reports Idle once closed;
    /// - REP received but not yet established (e.g. the QP transitions failed): writes a
    ///   REJ of the REP, reason 28 consumer defined (Send), and closes;
    /// - REQ out: writes a REJ reason 4 timeout with our CA GUID as ARI, which lets the
    ///   target find the half-open connection (Send), and closes;
    /// - DREQ already out: the pending wait; anything else: Idle, and the machine is
    ///   closed if it was not final.
    pub fn disconnect(&mut self, now_us: u64, out: &mut [u8; 256]) -> ConnectStep {
        match self.phase {
            Phase::Established => self.send_dreq(now_us, out, 0),
            Phase::RepReceived => {
                let remote = self.peer.map_or(0, |p| p.comm_id);
                self.send_rej(
                    out,
                    remote,
                    MsgRejected::Rep,
                    RejReason::ConsumerDefined,
                    &[],
                )
            }
            Phase::ReqSent { .. } | Phase::MraWait { .. } => {
                let guid = self.params.local_ca_guid.to_be_bytes();
                self.send_rej(out, 0, MsgRejected::Req, RejReason::Timeout, &guid)
            }
            Phase::Start => {
                self.phase = Phase::Closed;
                ConnectStep::Idle
            }
            Phase::DreqSent { .. } | Phase::Closed | Phase::Rejected(_) | Phase::Failed(_) => {
                self.pending()
            }
        }
    }

    fn send_rej(
        &mut self,
        out: &mut [u8; 256],
        remote_comm_id: u32,
        msg_rejected: MsgRejected,
        reason: RejReason,
        ari: &[u8],
    ) -> ConnectStep {
        let rej = Rej {
            local_comm_id: self.params.local_comm_id,
            remote_comm_id,
            msg_rejected,
            reason,
            ari,
            private_data: &[],
        };
        if let Err(e) = self.emit(CmMessage::Rej(rej), self.tid(TID_CONNECT), out) {
            return ConnectStep::Failed(ConnectError::Emit(e));
        }
        self.phase = Phase::Closed;
        ConnectStep::Send
    }

    /// Offers a MAD received on QP1. `None`: not consumed (not a well-formed CM
    /// message, or not for this connection: its Remote Communication ID is not ours,
    /// or its Local Communication ID is not the target's once that is known); the
    /// caller may offer it elsewhere. `Some(step)`: consumed, and `step` is what to do
    /// now (Send when `out` holds an answer, Rep, Rejected, Disconnected, or the
    /// pending Wait/Idle).
    ///
    /// REP whose Remote Communication ID is not ours is ignored; a REP repeated after
    /// our RTU makes us resend the RTU; DREQ when connected answers DREP; DREP to our
    /// DREQ closes; MRA for our REQ extends the wait; REJ decodes the reason, ARI and,
    /// for reason 28, the SRP_LOGIN_REJ.
    pub fn on_mad(&mut self, now_us: u64, mad: &[u8], out: &mut [u8; 256]) -> Option<ConnectStep> {
        let step = match CmMessage::parse_mad(mad) {
            Ok((tid, msg)) => self.on_message(now_us, tid, msg, out),
            Err(_) => None,
        };
        match step {
            Some(_) => self.stats.received = self.stats.received.saturating_add(1),
            None => self.stats.ignored = self.stats.ignored.saturating_add(1),
        }
        step
    }

    /// Whether a message with these IDs belongs to this connection.
    fn ours(&self, local_comm_id: u32, remote_comm_id: u32) -> bool {
        remote_comm_id == self.params.local_comm_id
            && self.peer.is_none_or(|p| p.comm_id == local_comm_id)
    }

    fn duplicate(&mut self) {
        self.stats.duplicates = self.stats.duplicates.saturating_add(1);
    }

    fn on_message(
        &mut self,
        now_us: u64,
        tid: u64,
        msg: CmMessage<'_>,
        out: &mut [u8; 256],
    ) -> Option<ConnectStep> {
        let sent_req = !matches!(self.phase, Phase::Start);
        match msg {
            CmMessage::Rep(rep) if sent_req && self.ours(rep.local_comm_id, rep.remote_comm_id) => {
                Some(self.on_rep(&rep, out))
            }
            CmMessage::Rej(rej) if sent_req && self.ours(rej.local_comm_id, rej.remote_comm_id) => {
                Some(self.on_rej(&rej))
            }
            CmMessage::Mra(mra) if sent_req && self.ours(mra.local_comm_id, mra.remote_comm_id) => {
                Some(self.on_mra(now_us, &mra))
            }
            CmMessage::Dreq(dreq)
                if self.peer.is_some()
                    && self.ours(dreq.local_comm_id, dreq.remote_comm_id)
                    && dreq.remote_qpn == self.params.local_qpn =>
            {
                Some(self.on_dreq(tid, out))
            }
            CmMessage::Drep(drep)
                if self.peer.is_some() && self.ours(drep.local_comm_id, drep.remote_comm_id) =>
            {
                Some(self.on_drep())
            }
            _ => None,
        }
    }

    fn on_rep(&mut self, rep: &Rep<'_>, out: &mut [u8; 256]) -> ConnectStep {
        match self.phase {
            Phase::ReqSent { .. } | Phase::MraWait { .. } => {
                self.peer = Some(Peer {
                    comm_id: rep.local_comm_id,
                    qpn: rep.local_qpn,
                });
                self.phase = Phase::RepReceived;
                ConnectStep::Rep(self.rep_info(rep))
            }
            Phase::Established => {
                // Our RTU was lost: the target repeats its REP (IBTA vol. 1 §12.9.6).
                self.duplicate();
                match self.write_rtu(out) {
                    Ok(()) => ConnectStep::Send,
                    Err(e) => ConnectStep::Failed(ConnectError::Emit(e)),
                }
            }
            _ => {
                self.duplicate();
                self.pending()
            }
        }
    }

    #[allow(
        clippy::unnecessary_min_or_max,
        reason = "the caps follow the constants, whatever they are set to"
    )]
    fn rep_info(&self, rep: &Rep<'_>) -> RepInfo {
        let path = &self.params.path;
        let mut private_data = [0u8; REP_PRIVATE_DATA_LEN];
        bytes::put(&mut private_data, 0, rep.private_data);
        RepInfo {
            remote_qpn: rep.local_qpn,
            remote_comm_id: rep.local_comm_id,
            starting_psn: rep.starting_psn,
            responder_resources: rep.responder_resources,
            initiator_depth: rep.initiator_depth,
            target_ack_delay: rep.target_ack_delay,
            rnr_retry: rep.rnr_retry_count,
            remote_ca_guid: rep.local_ca_guid,
            private_data,
            qp: QpParams {
                rlid: path.dlid,
                sl: path.sl,
                static_rate: path.rate,
                grh: path.hop_limit > 1,
                dgid: path.dgid,
                flow_label: path.flow_label,
                hop_limit: path.hop_limit,
                traffic_class: path.tclass,
                pkey: path.pkey,
                mtu: path.mtu,
                dest_qpn: rep.local_qpn,
                rq_psn: rep.starting_psn,
                max_dest_rd_atomic: rep.initiator_depth.min(RESPONDER_RESOURCES),
                min_rnr_timer: 0,
                sq_psn: self.params.starting_psn,
                ack_timeout: local_ack_timeout(path.packet_life_time, rep.target_ack_delay),
                retry_count: RETRY_COUNT,
                rnr_retry: rep.rnr_retry_count,
                max_rd_atomic: rep.responder_resources.min(INITIATOR_DEPTH),
            },
        }
    }

    fn on_rej(&mut self, rej: &Rej<'_>) -> ConnectStep {
        match self.phase {
            Phase::ReqSent { .. } | Phase::MraWait { .. } | Phase::RepReceived => {
                let mut ari = [0u8; REJ_ARI_LEN];
                bytes::put(&mut ari, 0, rej.ari);
                let login_rej = if rej.reason == RejReason::ConsumerDefined {
                    LoginRej::parse(rej.private_data).ok()
                } else {
                    None
                };
                let r = Reject {
                    reason: rej.reason,
                    ari,
                    // The parser bounds the ARI by its 72-byte room.
                    ari_len: u8::try_from(rej.ari.len()).unwrap_or(u8::MAX),
                    login_rej,
                    msg_rejected: rej.msg_rejected.into(),
                };
                self.phase = Phase::Rejected(r);
                ConnectStep::Rejected(r)
            }
            Phase::Established => {
                // The target gave up on the connection (e.g. our RTU never arrived).
                self.phase = Phase::Closed;
                ConnectStep::Disconnected { drep: false }
            }
            _ => {
                self.duplicate();
                self.pending()
            }
        }
    }

    fn on_mra(&mut self, now_us: u64, mra: &Mra<'_>) -> ConnectStep {
        match self.phase {
            Phase::ReqSent { sends, .. } | Phase::MraWait { sends, .. }
                if mra.msg_mraed == MsgMraed::Req =>
            {
                self.stats.mra = self.stats.mra.saturating_add(1);
                let deadline = now_us
                    .saturating_add(ib_time_us(mra.service_timeout))
                    .saturating_add(ib_time_us(self.params.path.packet_life_time));
                self.phase = Phase::MraWait { deadline, sends };
                ConnectStep::Wait { until_us: deadline }
            }
            _ => {
                self.duplicate();
                self.pending()
            }
        }
    }

    fn on_dreq(&mut self, tid: u64, out: &mut [u8; 256]) -> ConnectStep {
        match self.phase {
            Phase::Established | Phase::RepReceived | Phase::DreqSent { .. } => {
                // DREQ when connected, or crossing ours: answer and close (IBTA vol. 1
                // §12.9.7).
                match self.write_drep(tid, out) {
                    Ok(()) => {
                        self.phase = Phase::Closed;
                        ConnectStep::Disconnected { drep: true }
                    }
                    Err(e) => ConnectStep::Failed(ConnectError::Emit(e)),
                }
            }
            Phase::Closed => {
                // Our DREP was lost (or the target's DREQ crossed our REJ): answer again.
                self.duplicate();
                match self.write_drep(tid, out) {
                    Ok(()) => ConnectStep::Send,
                    Err(e) => ConnectStep::Failed(ConnectError::Emit(e)),
                }
            }
            _ => {
                self.duplicate();
                self.pending()
            }
        }
    }

    fn on_drep(&mut self) -> ConnectStep {
        match self.phase {
            Phase::DreqSent { .. } => {
                self.phase = Phase::Closed;
                ConnectStep::Idle
            }
            _ => {
                self.duplicate();
                self.pending()
            }
        }
    }
}

/// Answers a DREQ that no [`Connector`] consumed with a DREP to its sender, as a
/// passive CM does for connections it no longer knows (IBTA vol. 1 §12.9.7). After a
/// reboot the target's DREQ to our previous stage's connection lands here; answering
/// it lets the target drop that connection at once instead of after its DREQ retries,
/// which is what keeps our new REQ rejected as stale. Returns true when `out` holds
/// the DREP; false when `mad` is not a DREQ.
pub fn drep_for_stray_dreq(mad: &[u8], out: &mut [u8; 256]) -> bool {
    let Ok((tid, CmMessage::Dreq(dreq))) = CmMessage::parse_mad(mad) else {
        return false;
    };
    let drep = Drep {
        local_comm_id: dreq.remote_comm_id,
        remote_comm_id: dreq.local_comm_id,
        private_data: &[],
    };
    CmMessage::Drep(drep).emit_mad(tid, out).is_ok()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod test {
    use super::*;

    #[test]
    fn ack_timeout_rule() {
        // Lifetime + 1 well above the delay: lifetime + 1.
        assert_eq!(local_ack_timeout(18, 10), 19);
        // Delay one step below lifetime + 1: one more.
        assert_eq!(local_ack_timeout(18, 18), 20);
        // Delay above, lifetime + 1 one step below: delay + 1.
        assert_eq!(local_ack_timeout(14, 16), 17);
        // Delay far above: the delay.
        assert_eq!(local_ack_timeout(1, 16), 16);
        // Capped.
        assert_eq!(local_ack_timeout(63, 31), 31);
    }

    #[test]
    fn stale_delay_grows_and_is_capped() {
        assert_eq!(stale_retry_delay_us(0), 1_000_000);
        assert_eq!(stale_retry_delay_us(1), 2_000_000);
        assert_eq!(stale_retry_delay_us(4), 16_000_000);
        assert_eq!(stale_retry_delay_us(200), 16_000_000);
    }
}
