//! The requester side of an RC QP (IBTA vol. 1 §9.4, §9.7.6): work requests become
//! packets, responses retire them.
//!
//! PSNs: a message takes one PSN per packet; an RDMA READ request takes as many as
//! its response will have packets, so the PSN after a READ of `len` bytes is the
//! READ's plus `ceil(len / PMTU)` (§9.7.4.1.3). A work request gets its PSNs when its
//! first packet goes out.
//!
//! Progress is tracked with three PSNs, all compared as forward distances from the
//! oldest unacknowledged one ([`super::psn::sub`]):
//! - `una`, the oldest PSN not yet acknowledged;
//! - `tx_psn`, the next PSN to send; going back N (§9.7.6) sets it to a PSN
//!   already sent;
//! - `sent_end`, one past the last PSN ever sent, so that a packet sent below it is a
//!   retransmission.
//!
//! An ACK (explicit, or implied by a NAK or a READ response for a later PSN) retires
//! every PSN before the one it names. It cannot retire the PSNs of a READ whose
//! responses did not arrive: that means they were lost, and the READ is re-issued
//! from its first missing response, with a RETH for the rest (§9.7.4.1.3, an implicit
//! NAK).

use std::collections::VecDeque;

use crate::wire::{AckKind, AethRepr, ExtHeaders, IbPacket, Opcode, RethRepr};

use super::psn;
use super::{
    Completion, INFINITE_RNR_RETRY, QpState, RcConfig, RxDrop, Shared, WcOpcode, WcStatus,
    WorkRequest, packets_for, rnr_timer_ns,
};

/// Payload bytes the requester keeps outstanding (sent and not acknowledged) before
/// it waits: a model choice standing in for a real HCA's send queue depth and
/// pacing (IBTA only bounds the PSNs outstanding by half the PSN space, §9.7.5). It
/// is what go-back-N sends again after a loss, so it is sized to a few round trips
/// of a 100 Gb/s link, not more. See [`window_psns`].
pub const MAX_OUTSTANDING_BYTES: usize = 64 * 1024;

/// The most PSNs outstanding, whatever the PMTU.
pub const MAX_OUTSTANDING_PSNS: u32 = 128;

/// PSNs the requester keeps outstanding at `mtu`: [`MAX_OUTSTANDING_BYTES`] worth,
/// at most [`MAX_OUTSTANDING_PSNS`] (16 at 4096, 64 at 1024, 128 at 512 and 256). A
/// READ may start inside the window and reach beyond it.
pub const fn window_psns(mtu: usize) -> u32 {
    let w = MAX_OUTSTANDING_BYTES / if mtu == 0 { 1 } else { mtu };
    if w > MAX_OUTSTANDING_PSNS as usize {
        MAX_OUTSTANDING_PSNS
    } else if w == 0 {
        1
    } else {
        w as u32
    }
}

/// Besides the last packet of every message, AckReq is set on every this-many-th
/// packet of a long one, a quarter of the window, so that ACKs come back before the
/// window fills (4 at 4096, 32 at 256).
pub const fn ack_req_interval(mtu: usize) -> u32 {
    let i = window_psns(mtu) / 4;
    if i == 0 { 1 } else { i }
}

/// The longest message IBTA allows, 2^31 bytes (IBTA vol. 1 ch. 9: a message carries 0
/// to 2^31 bytes); a longer work request fails with [`WcStatus::LocalLengthError`].
pub const MAX_MESSAGE_LEN: u64 = 1 << 31;

/// Most PSNs one message may take, so that every PSN outstanding stays within the
/// half of the PSN space a responder reads as "behind" (§9.7.5): 1 GiB at a
/// 256-byte PMTU.
const MAX_MESSAGE_PSNS: u64 = 1 << 22;

/// What a work request carries.
enum Op {
    Send(Vec<u8>),
    Write {
        va: u64,
        rkey: u32,
        data: Vec<u8>,
    },
    Read {
        va: u64,
        rkey: u32,
        len: u32,
        data: Vec<u8>,
    },
}

/// A posted work request.
struct Wqe {
    wr_id: u64,
    op: Op,
    /// PSNs it takes (at least one).
    npsn: u32,
    /// Its first PSN, once its first packet has gone out.
    first: Option<u32>,
    /// READ response packets taken so far.
    received: u32,
    /// Longer than a message may be: never sent, fails with a local length error.
    too_long: bool,
}

impl Wqe {
    fn len(&self) -> u64 {
        match &self.op {
            Op::Send(data) | Op::Write { data, .. } => data.len() as u64,
            Op::Read { len, .. } => u64::from(*len),
        }
    }

    fn opcode(&self) -> WcOpcode {
        match self.op {
            Op::Send(_) => WcOpcode::Send,
            Op::Write { .. } => WcOpcode::RdmaWrite,
            Op::Read { .. } => WcOpcode::RdmaRead,
        }
    }

    fn is_read(&self) -> bool {
        matches!(self.op, Op::Read { .. })
    }

    /// Whether `psn` is one of its PSNs.
    fn holds(&self, psn: u32) -> bool {
        self.first.is_some_and(|f| psn::sub(psn, f) < self.npsn)
    }

    /// The completion it ends with.
    fn complete(self, status: WcStatus) -> Completion {
        let opcode = self.opcode();
        let byte_len = if status == WcStatus::Success {
            self.len() as u32
        } else {
            0
        };
        let data = match self.op {
            Op::Read { data, .. } if status == WcStatus::Success => data,
            _ => Vec::new(),
        };
        Completion {
            wr_id: self.wr_id,
            opcode,
            status,
            data,
            byte_len,
        }
    }
}

/// The requester's state.
pub(super) struct Requester {
    /// Work requests not yet completed, oldest first; the started ones come first.
    sq: VecDeque<Wqe>,
    /// The PSN the next work request to start gets.
    next_psn: u32,
    /// One past the last PSN sent.
    sent_end: u32,
    /// The oldest PSN not acknowledged (equal to `sent_end` when none is).
    una: u32,
    /// The next PSN to send.
    tx_psn: u32,
    /// Transport retries left (§9.7.6).
    retry_left: u8,
    /// RNR retries left.
    rnr_left: u8,
    /// When the local ACK timer fires.
    ack_deadline: Option<u64>,
    /// Until when an RNR NAK holds the send queue.
    rnr_until: Option<u64>,
    /// PSNs outstanding at most ([`window_psns`]).
    window: u32,
    /// AckReq on every this-many-th packet of a message ([`ack_req_interval`]).
    ack_interval: u32,
    /// The PSN an implicit NAK last went back to, so that a burst of packets telling
    /// of the same loss causes one retransmission.
    resend_marker: Option<u32>,
}

impl Requester {
    pub(super) fn new(cfg: &RcConfig, sq_psn: u32) -> Requester {
        let start = sq_psn & psn::PSN_MASK;
        Requester {
            sq: VecDeque::new(),
            next_psn: start,
            sent_end: start,
            una: start,
            tx_psn: start,
            retry_left: cfg.retry_cnt,
            rnr_left: cfg.rnr_retry,
            ack_deadline: None,
            rnr_until: None,
            window: window_psns(cfg.mtu),
            ack_interval: ack_req_interval(cfg.mtu),
            resend_marker: None,
        }
    }

    /// Queues `wr`, or completes it as flushed if the QP is in Error.
    pub(super) fn post(&mut self, sh: &mut Shared, wr: WorkRequest) {
        let wr_id = wr.wr_id();
        let op = match wr {
            WorkRequest::Send { data, .. } => Op::Send(data),
            WorkRequest::RdmaWrite {
                remote_addr,
                rkey,
                data,
                ..
            } => Op::Write {
                va: remote_addr,
                rkey,
                data,
            },
            WorkRequest::RdmaRead {
                remote_addr,
                rkey,
                len,
                ..
            } => Op::Read {
                va: remote_addr,
                rkey,
                len,
                data: Vec::new(),
            },
        };
        let mut wqe = Wqe {
            wr_id,
            op,
            npsn: 1,
            first: None,
            received: 0,
            too_long: false,
        };
        let len = wqe.len();
        let npsn = packets_for(len, sh.mtu());
        if len > MAX_MESSAGE_LEN || npsn > MAX_MESSAGE_PSNS {
            wqe.too_long = true;
        } else {
            wqe.npsn = npsn as u32;
        }
        if sh.state == QpState::Rts {
            self.sq.push_back(wqe);
        } else {
            sh.completions.push(wqe.complete(WcStatus::Flushed));
        }
    }

    /// Appends to `out` what is due at `now`: after an ACK timeout, the oldest
    /// unacknowledged packets again; after an RNR wait, the NAKed request again; then
    /// the rest of what was sent after it, and new packets as far as the window and
    /// the READ limit allow.
    pub(super) fn poll(&mut self, sh: &mut Shared, now: u64, out: &mut Vec<IbPacket>) {
        if sh.state != QpState::Rts || self.fail_unsendable_front(sh) {
            return;
        }
        if let Some(until) = self.rnr_until {
            if now < until {
                return;
            }
            self.rnr_until = None;
        }
        if let Some(deadline) = self.ack_deadline
            && now >= deadline
        {
            self.ack_deadline = None;
            if self.una != self.sent_end {
                sh.stats.timeouts += 1;
                if self.retry_left == 0 {
                    self.fail_front(sh, WcStatus::RetryExceeded);
                    return;
                }
                self.retry_left -= 1;
                self.tx_psn = self.una;
                self.resend_marker = None;
            }
        }
        loop {
            if self.tx_psn == self.next_psn && !self.start_next(sh) {
                break;
            }
            if psn::sub(self.tx_psn, self.una) >= self.window {
                break;
            }
            let Some(i) = self.sq.iter().position(|w| w.holds(self.tx_psn)) else {
                // Every PSN below next_psn belongs to a started request.
                break;
            };
            let at = self.tx_psn;
            let (pkt, next) = self.build(sh, i, at);
            if psn::sub(at, self.una) < psn::sub(self.sent_end, self.una) {
                sh.stats.retransmitted += 1;
            } else {
                sh.stats.requests_sent += 1;
            }
            if psn::sub(next, self.una) > psn::sub(self.sent_end, self.una) {
                self.sent_end = next;
            }
            self.tx_psn = next;
            out.push(pkt);
            if self.ack_deadline.is_none() && sh.cfg.ack_timeout_ns != 0 {
                self.ack_deadline = Some(now.saturating_add(sh.cfg.ack_timeout_ns));
            }
        }
    }

    /// Gives the next work request its PSNs if the window and the READ limit let it
    /// start; false if there is none or it must wait.
    fn start_next(&mut self, sh: &Shared) -> bool {
        let Some(i) = self.sq.iter().position(|w| w.first.is_none()) else {
            return false;
        };
        let w = &self.sq[i];
        if w.too_long || psn::sub(self.next_psn, self.una) >= self.window {
            return false;
        }
        if w.is_read() && self.reads_outstanding() >= usize::from(sh.cfg.max_rd_atomic.max(1)) {
            return false;
        }
        let npsn = w.npsn;
        self.sq[i].first = Some(self.next_psn);
        self.next_psn = psn::add(self.next_psn, npsn);
        true
    }

    /// READs started and not complete.
    fn reads_outstanding(&self) -> usize {
        self.sq
            .iter()
            .filter(|w| w.first.is_some() && w.is_read())
            .count()
    }

    /// The packet for PSN `at` of `self.sq[i]`, and the PSN after it.
    fn build(&self, sh: &Shared, i: usize, at: u32) -> (IbPacket, u32) {
        let w = &self.sq[i];
        let first = w.first.unwrap_or(at);
        let idx = psn::sub(at, first);
        let mtu = sh.mtu();
        match &w.op {
            Op::Read { va, rkey, len, .. } => {
                // The whole READ, or what is left of it from its first missing
                // response (§9.7.4.1.3).
                let off = (u64::from(idx) * mtu as u64).min(u64::from(*len));
                let reth = RethRepr {
                    va: va.wrapping_add(off),
                    r_key: *rkey,
                    dma_len: (u64::from(*len) - off) as u32,
                };
                let pkt = sh.packet(
                    Opcode::RC_RDMA_READ_REQUEST,
                    true,
                    at,
                    ExtHeaders::Reth(reth),
                    Vec::new(),
                );
                (pkt, psn::add(first, w.npsn))
            }
            Op::Send(data) | Op::Write { data, .. } => {
                let is_send = matches!(w.op, Op::Send(_));
                let last = idx + 1 == w.npsn;
                let opcode = match (is_send, w.npsn == 1, idx == 0, last) {
                    (true, true, ..) => Opcode::RC_SEND_ONLY,
                    (true, false, true, _) => Opcode::RC_SEND_FIRST,
                    (true, false, false, true) => Opcode::RC_SEND_LAST,
                    (true, false, false, false) => Opcode::RC_SEND_MIDDLE,
                    (false, true, ..) => Opcode::RC_RDMA_WRITE_ONLY,
                    (false, false, true, _) => Opcode::RC_RDMA_WRITE_FIRST,
                    (false, false, false, true) => Opcode::RC_RDMA_WRITE_LAST,
                    (false, false, false, false) => Opcode::RC_RDMA_WRITE_MIDDLE,
                };
                let ext = match w.op {
                    // RETH on the first (or only) packet of a WRITE (§9.3).
                    Op::Write { va, rkey, .. } if idx == 0 => ExtHeaders::Reth(RethRepr {
                        va,
                        r_key: rkey,
                        dma_len: data.len() as u32,
                    }),
                    _ => ExtHeaders::None,
                };
                let start = (idx as usize).saturating_mul(mtu);
                let end = start.saturating_add(mtu).min(data.len());
                let payload = data.get(start..end).unwrap_or_default().to_vec();
                let ack_req = last || (idx + 1).is_multiple_of(self.ack_interval);
                (
                    sh.packet(opcode, ack_req, at, ext, payload),
                    psn::add(at, 1),
                )
            }
        }
    }

    /// Takes an ACKNOWLEDGE or READ response the QP admitted.
    pub(super) fn on_response(&mut self, sh: &mut Shared, now: u64, pkt: &IbPacket) {
        let at = pkt.bth.psn;
        let aeth = match pkt.ext {
            ExtHeaders::Aeth(a) => Some(a),
            _ => None,
        };
        if pkt.bth.opcode != Opcode::RC_ACKNOWLEDGE {
            self.on_read_response(sh, now, pkt, aeth);
            return;
        }
        let Some(aeth) = aeth else {
            sh.drop(RxDrop::HeaderMismatch(pkt.bth.opcode.0));
            return;
        };
        match aeth.kind() {
            AckKind::Ack { .. } => {
                sh.stats.acks_received += 1;
                if self.outstanding(sh, at) {
                    self.ack_through(sh, now, psn::add(at, 1));
                }
            }
            AckKind::RnrNak { timer } => {
                sh.stats.rnr_naks_received += 1;
                self.on_rnr_nak(sh, now, at, timer);
            }
            AckKind::Nak { code } => {
                let status = match code {
                    super::nak::PSN_SEQUENCE_ERROR => None,
                    super::nak::INVALID_REQUEST => Some(WcStatus::RemoteInvalidRequest),
                    super::nak::REMOTE_ACCESS_ERROR => Some(WcStatus::RemoteAccessError),
                    super::nak::REMOTE_OPERATIONAL_ERROR => Some(WcStatus::RemoteOperationError),
                    // 4, invalid RD request, belongs to RD; the rest are reserved.
                    _ => {
                        sh.drop(RxDrop::ReservedSyndrome(aeth.syndrome));
                        return;
                    }
                };
                sh.stats.naks_received += 1;
                if !self.outstanding(sh, at) {
                    return;
                }
                match status {
                    None => self.on_sequence_nak(sh, now, at),
                    Some(status) => {
                        // Everything before the NAKed PSN completed (§9.7.5).
                        self.ack_through(sh, now, at);
                        if self.una == at {
                            self.fail_front(sh, status);
                        }
                    }
                }
            }
            AckKind::Reserved(_) => sh.drop(RxDrop::ReservedSyndrome(aeth.syndrome)),
        }
    }

    /// Whether `at` is a PSN sent and not acknowledged; otherwise counts the packet
    /// that names it as a duplicate or as unexpected, and drops it.
    fn outstanding(&mut self, sh: &mut Shared, at: u32) -> bool {
        if psn::sub(at, self.una) < psn::sub(self.sent_end, self.una) {
            return true;
        }
        if psn::before(at, self.una) {
            sh.stats.duplicates += 1;
            sh.drop(RxDrop::DuplicateResponse(at));
        } else {
            sh.drop(RxDrop::UnexpectedPsn(at));
        }
        false
    }

    /// NAK, PSN sequence error: the responder expects `at`. What came before it is
    /// acknowledged; send again from `at` (§9.7.6), one transport retry spent.
    fn on_sequence_nak(&mut self, sh: &mut Shared, now: u64, at: u32) {
        self.ack_through(sh, now, at);
        if self.una != at || self.rnr_until.is_some() {
            // An earlier READ is being re-issued, or an RNR wait already holds the
            // resend from this PSN.
            return;
        }
        if self.retry_left == 0 {
            self.fail_front(sh, WcStatus::RetryExceeded);
            return;
        }
        self.retry_left -= 1;
        self.go_back(at);
    }

    /// RNR NAK for `at`, the first packet of a SEND: what came before it is
    /// acknowledged; wait the timer the responder asks for, then send again from `at`
    /// (§9.7.5, §9.7.6).
    fn on_rnr_nak(&mut self, sh: &mut Shared, now: u64, at: u32, timer: u8) {
        if !self.outstanding(sh, at) {
            return;
        }
        let names_a_send = self
            .sq
            .iter()
            .find(|w| w.holds(at))
            .is_some_and(|w| matches!(w.op, Op::Send(_)) && w.first == Some(at));
        if !names_a_send {
            sh.drop(RxDrop::UnexpectedPsn(at));
            return;
        }
        self.ack_through(sh, now, at);
        if self.una != at {
            return;
        }
        if sh.cfg.rnr_retry != INFINITE_RNR_RETRY {
            if self.rnr_left == 0 {
                self.fail_front(sh, WcStatus::RnrRetryExceeded);
                return;
            }
            self.rnr_left -= 1;
        }
        self.rnr_until = Some(now.saturating_add(rnr_timer_ns(timer)));
        self.go_back(at);
    }

    /// Sends again from `at`; the ACK timer restarts with the first packet.
    fn go_back(&mut self, at: u32) {
        self.tx_psn = at;
        self.ack_deadline = None;
        self.resend_marker = None;
    }

    /// A READ response for `pkt.bth.psn`: taken if it is the next one the oldest
    /// READ waits for and fits it; an implicit ACK of every earlier PSN.
    fn on_read_response(
        &mut self,
        sh: &mut Shared,
        now: u64,
        pkt: &IbPacket,
        aeth: Option<AethRepr>,
    ) {
        let at = pkt.bth.psn;
        if !self.outstanding(sh, at) {
            return;
        }
        let Some(w) = self.sq.iter().find(|w| w.holds(at)) else {
            sh.drop(RxDrop::UnexpectedPsn(at));
            return;
        };
        let (Some(first), Op::Read { len, .. }) = (w.first, &w.op) else {
            sh.drop(RxDrop::UnexpectedPsn(at));
            return;
        };
        if let Some(a) = aeth
            && !matches!(a.kind(), AckKind::Ack { .. })
        {
            sh.drop(RxDrop::ReservedSyndrome(a.syndrome));
            return;
        }
        // Which packet of the READ this is fixes its opcode and length: PMTU bytes but
        // for the last, which has what is left (§9.7.4.1.3).
        let mtu = sh.mtu() as u64;
        let idx = psn::sub(at, first);
        let remaining = u64::from(*len).saturating_sub(u64::from(idx) * mtu);
        let last = remaining <= mtu;
        let op = pkt.bth.opcode;
        let shape = match op {
            Opcode::RC_RDMA_READ_RESPONSE_FIRST => !last,
            Opcode::RC_RDMA_READ_RESPONSE_MIDDLE => !last && idx != 0,
            Opcode::RC_RDMA_READ_RESPONSE_LAST => last && idx != 0,
            Opcode::RC_RDMA_READ_RESPONSE_ONLY => last,
            _ => false,
        };
        let want = if last { remaining } else { mtu };
        if !shape || pkt.payload.len() as u64 != want {
            sh.drop(RxDrop::BadResponse {
                opcode: op.0,
                len: pkt.payload.len(),
            });
            return;
        }
        self.ack_through(sh, now, at);
        if self.una != at {
            // Earlier responses are missing; ack_through went back for them.
            return;
        }
        let base = self.una;
        let Some(front) = self.sq.front_mut() else {
            return;
        };
        if let Op::Read { data, .. } = &mut front.op {
            data.extend_from_slice(&pkt.payload);
        }
        front.received += 1;
        let done = front.received == front.npsn;
        sh.stats.read_responses_received += 1;
        self.una = psn::add(at, 1);
        if done && let Some(w) = self.sq.pop_front() {
            sh.completions.push(w.complete(WcStatus::Success));
        }
        self.progressed(sh, now, base);
    }

    /// Acknowledges every PSN before `end`: retires the SENDs and WRITEs it covers,
    /// and goes back for a READ whose responses it passes over (§9.7.4.1.3).
    fn ack_through(&mut self, sh: &mut Shared, now: u64, end: u32) {
        let base = self.una;
        let span = psn::sub(end, base);
        if span == 0 || span > psn::sub(self.sent_end, base) {
            return;
        }
        while let Some(w) = self.sq.front() {
            let Some(first) = w.first else { break };
            if w.is_read() {
                // Its responses, not ACKs, retire a READ.
                let missing = psn::add(first, w.received);
                if span > psn::sub(missing, base) {
                    self.implicit_nak(sh, missing);
                }
                break;
            }
            let w_end = psn::add(first, w.npsn);
            if psn::sub(w_end, base) > span {
                self.una = end;
                break;
            }
            self.una = w_end;
            if let Some(w) = self.sq.pop_front() {
                sh.completions.push(w.complete(WcStatus::Success));
            }
        }
        if self.una != base {
            self.progressed(sh, now, base);
        }
    }

    /// READ responses from `missing` on were lost: send the READ again from there,
    /// once for each loss.
    fn implicit_nak(&mut self, sh: &mut Shared, missing: u32) {
        if self.resend_marker == Some(missing) {
            return;
        }
        sh.stats.implicit_naks += 1;
        self.resend_marker = Some(missing);
        self.tx_psn = missing;
    }

    /// `una` moved forward from `base`: reload the retry counters and restart the ACK
    /// timer for what is still outstanding (§9.7.6).
    fn progressed(&mut self, sh: &Shared, now: u64, base: u32) {
        self.retry_left = sh.cfg.retry_cnt;
        self.rnr_left = sh.cfg.rnr_retry;
        self.resend_marker = None;
        if psn::sub(self.tx_psn, base) < psn::sub(self.una, base) {
            self.tx_psn = self.una;
        }
        self.ack_deadline = if self.una != self.sent_end
            && self.rnr_until.is_none()
            && sh.cfg.ack_timeout_ns != 0
        {
            Some(now.saturating_add(sh.cfg.ack_timeout_ns))
        } else {
            None
        };
    }

    /// Completes the oldest request with `status` and moves the QP to Error.
    fn fail_front(&mut self, sh: &mut Shared, status: WcStatus) {
        if let Some(w) = self.sq.pop_front() {
            sh.completions.push(w.complete(status));
        }
        sh.enter_error();
        self.flush(sh);
    }

    /// A request too long to send fails when it is the oldest (so that completions
    /// stay in order); true if it did.
    fn fail_unsendable_front(&mut self, sh: &mut Shared) -> bool {
        if self
            .sq
            .front()
            .is_some_and(|w| w.too_long && w.first.is_none())
        {
            self.fail_front(sh, WcStatus::LocalLengthError);
            return true;
        }
        false
    }

    /// Completes everything left as flushed and stops the timers.
    pub(super) fn flush(&mut self, sh: &mut Shared) {
        for w in self.sq.drain(..) {
            sh.completions.push(w.complete(WcStatus::Flushed));
        }
        self.ack_deadline = None;
        self.rnr_until = None;
    }

    /// When [`Requester::poll`] next has work.
    pub(super) fn deadline(&self, sh: &Shared) -> Option<u64> {
        if sh.state != QpState::Rts {
            return None;
        }
        if self.rnr_until.is_some() {
            return self.rnr_until;
        }
        if self.ready(sh) {
            return Some(sh.last_now);
        }
        self.ack_deadline
    }

    /// Whether a packet could go out now.
    fn ready(&self, sh: &Shared) -> bool {
        if self
            .sq
            .front()
            .is_some_and(|w| w.too_long && w.first.is_none())
        {
            return true;
        }
        if self.tx_psn != self.next_psn {
            return psn::sub(self.tx_psn, self.una) < self.window;
        }
        let Some(w) = self.sq.iter().find(|w| w.first.is_none()) else {
            return false;
        };
        !w.too_long
            && psn::sub(self.next_psn, self.una) < self.window
            && (!w.is_read() || self.reads_outstanding() < usize::from(sh.cfg.max_rd_atomic.max(1)))
    }
}
