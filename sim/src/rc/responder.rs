//! The responder side of an RC QP (IBTA vol. 1 §9.7.5): requests in, ACKs, NAKs and
//! READ responses out.
//!
//! Every request's PSN is compared with the expected PSN (ePSN, §9.7.5):
//! - equal: the request is checked and carried out, in order. The checks are those of
//!   §9.7.5: the opcode must fit the message in progress (FIRST, then MIDDLE, then
//!   LAST); FIRST and MIDDLE packets carry exactly a PMTU and LAST one to a PMTU;
//!   a WRITE's or READ's RETH range must pass the R_Key check as a whole, at its
//!   first packet, before a byte moves; a SEND needs a receive buffer at its first
//!   packet, or it gets an RNR NAK. A refusal is a NAK (invalid request, remote
//!   access or remote operational error) and the QP goes to Error (§9.8).
//! - behind (a duplicate, §9.7.5): a SEND or WRITE packet is not carried out
//!   again, only acknowledged (with the latest PSN taken) if it asks for an ACK; a
//!   READ request is carried out again from the stored READ it repeats, from the PSN
//!   it names.
//! - ahead (a gap, §9.7.5): one NAK with a PSN sequence error, naming the ePSN;
//!   later packets of the gap are dropped without another until the ePSN arrives.
//!
//! ACKs are coalesced: a packet without AckReq is acknowledged by the next ACK, whose
//! PSN covers it. The MSN counts the messages carried out (§9.7.5): a SEND or
//! WRITE at its last packet, a READ when it is executed.
//!
//! READ responses are queued and leave through [`super::RcQp::poll_transmit`]; an ACK
//! or NAK made while some wait goes behind them, so responses stay in PSN order. A
//! READ holds one of `max_dest_rd_atomic` responder resources until its responses
//! have left: a requester that keeps no more READs outstanding than that can never
//! find them all taken, because it cannot have completed a READ whose responses have
//! not left, so a READ arriving when all are taken is NAKed as an invalid request
//! (§9.7.5; the CM negotiates the count as Responder Resources, ch. 12).

use std::collections::VecDeque;

use crate::wire::{ExtHeaders, IbPacket, Opcode, RethRepr};

use super::psn;
use super::{MAX_MESSAGE_LEN, RemoteError, ResponderMemory, RxDrop, Shared, nak, packets_for};

/// A SEND or WRITE whose first packet was taken and whose last was not.
enum InMessage {
    /// The SEND's bytes so far.
    Send(Vec<u8>),
    /// The WRITE's RETH, and the bytes written so far.
    Write {
        rkey: u32,
        va: u64,
        len: u64,
        done: u64,
    },
}

/// A READ the responder carried out, kept to answer its duplicates.
#[derive(Clone, Copy)]
struct ReadRecord {
    psn: u32,
    npsn: u32,
    va: u64,
    rkey: u32,
    len: u64,
}

/// Why an in-order request was not carried out.
enum Refusal {
    /// No receive buffer: RNR NAK.
    NotReady,
    /// NAK with this code, QP to Error.
    Nak(u8),
}

impl From<RemoteError> for Refusal {
    fn from(e: RemoteError) -> Refusal {
        Refusal::Nak(e.nak_code())
    }
}

const INVALID: Refusal = Refusal::Nak(nak::INVALID_REQUEST);

/// The responder's state.
pub(super) struct Responder {
    /// The PSN expected next.
    epsn: u32,
    /// Messages completed, 24 bits.
    msn: u32,
    /// A PSN sequence error NAK or RNR NAK was sent and the ePSN has not arrived
    /// since: packets ahead of it are dropped quietly.
    nak_sent: bool,
    /// A SEND or WRITE in progress.
    message: Option<InMessage>,
    /// The latest READs carried out, oldest first.
    reads: VecDeque<ReadRecord>,
    /// Output waiting behind READ responses.
    out: VecDeque<IbPacket>,
    /// When the oldest queued output was made.
    out_since: Option<u64>,
    /// New READs whose responses wait in `out`: the resources in use.
    reads_in_service: usize,
}

impl Responder {
    pub(super) fn new(rq_psn: u32) -> Responder {
        Responder {
            epsn: rq_psn & psn::PSN_MASK,
            msn: 0,
            nak_sent: false,
            message: None,
            reads: VecDeque::new(),
            out: VecDeque::new(),
            out_since: None,
            reads_in_service: 0,
        }
    }

    pub(super) fn msn(&self) -> u32 {
        self.msn
    }

    pub(super) fn expected_psn(&self) -> u32 {
        self.epsn
    }

    /// Everything queued, to send now; the READs in it give back their resources.
    pub(super) fn drain(&mut self) -> Vec<IbPacket> {
        self.out_since = None;
        self.reads_in_service = 0;
        self.out.drain(..).collect()
    }

    /// When queued output has been waiting since.
    pub(super) fn deadline(&self) -> Option<u64> {
        self.out_since
    }

    /// Takes a request the QP admitted; returns what may be sent at once.
    pub(super) fn on_request(
        &mut self,
        sh: &mut Shared,
        now: u64,
        pkt: &IbPacket,
        mem: &mut dyn ResponderMemory,
    ) -> Vec<IbPacket> {
        let mut direct = Vec::new();
        let at = pkt.bth.psn;
        let distance = psn::diff(at, self.epsn);
        if distance < 0 {
            self.duplicate(sh, now, pkt, mem, &mut direct);
        } else if distance > 0 {
            if self.nak_sent {
                sh.drop(RxDrop::OutOfSequence {
                    psn: at,
                    expected: self.epsn,
                });
            } else {
                self.nak_sent = true;
                let nak = self.ack(sh, self.epsn, nak::syndrome(nak::PSN_SEQUENCE_ERROR));
                self.emit(now, nak, &mut direct);
            }
        } else {
            self.nak_sent = false;
            match self.execute(sh, now, pkt, mem) {
                Ok(ack_req) => {
                    if ack_req {
                        let ack = self.ack(sh, at, super::AethRepr::SYNDROME_ACK_NO_CREDIT);
                        self.emit(now, ack, &mut direct);
                    }
                }
                Err(Refusal::NotReady) => {
                    self.nak_sent = true;
                    let code = sh.cfg.min_rnr_timer_code;
                    let rnr = self.ack(sh, at, nak::rnr_syndrome(code));
                    self.emit(now, rnr, &mut direct);
                }
                Err(Refusal::Nak(code)) => {
                    self.message = None;
                    let nak = self.ack(sh, at, nak::syndrome(code));
                    self.emit(now, nak, &mut direct);
                    sh.enter_error();
                }
            }
        }
        direct
    }

    /// Carries out the in-order request `pkt` and moves the ePSN past it; `Ok` says
    /// whether it asked for an ACK (a READ's responses are its acknowledgement).
    fn execute(
        &mut self,
        sh: &mut Shared,
        now: u64,
        pkt: &IbPacket,
        mem: &mut dyn ResponderMemory,
    ) -> Result<bool, Refusal> {
        let op = pkt.bth.opcode;
        let mtu = sh.mtu();
        let payload = pkt.payload.as_slice();
        // Opcode sequence (§9.7.5): a message in progress continues, otherwise a
        // new one starts. Immediate data is not implemented: an invalid request.
        let in_sequence = matches!(
            (&self.message, op),
            (
                Some(InMessage::Send(_)),
                Opcode::RC_SEND_MIDDLE | Opcode::RC_SEND_LAST
            ) | (
                Some(InMessage::Write { .. }),
                Opcode::RC_RDMA_WRITE_MIDDLE | Opcode::RC_RDMA_WRITE_LAST
            ) | (
                None,
                Opcode::RC_SEND_FIRST
                    | Opcode::RC_SEND_ONLY
                    | Opcode::RC_RDMA_WRITE_FIRST
                    | Opcode::RC_RDMA_WRITE_ONLY
                    | Opcode::RC_RDMA_READ_REQUEST
            )
        );
        if !in_sequence || payload.len() > mtu {
            return Err(INVALID);
        }
        let reth = match pkt.ext {
            ExtHeaders::Reth(r) => Some(r),
            _ => None,
        };
        match op {
            Opcode::RC_SEND_FIRST | Opcode::RC_SEND_ONLY => {
                if op == Opcode::RC_SEND_FIRST && payload.len() != mtu {
                    return Err(INVALID);
                }
                if !mem.receive_ready() {
                    return Err(Refusal::NotReady);
                }
                if op == Opcode::RC_SEND_ONLY {
                    mem.receive(payload)?;
                    self.msn = psn::add(self.msn, 1);
                } else {
                    self.message = Some(InMessage::Send(payload.to_vec()));
                }
            }
            Opcode::RC_SEND_MIDDLE | Opcode::RC_SEND_LAST => {
                let last = op == Opcode::RC_SEND_LAST;
                if (!last && payload.len() != mtu) || (last && payload.is_empty()) {
                    return Err(INVALID);
                }
                let Some(InMessage::Send(buf)) = &mut self.message else {
                    return Err(INVALID);
                };
                if (buf.len() + payload.len()) as u64 > MAX_MESSAGE_LEN {
                    return Err(INVALID);
                }
                buf.extend_from_slice(payload);
                if last {
                    if let Some(InMessage::Send(message)) = self.message.take() {
                        mem.receive(&message)?;
                    }
                    self.msn = psn::add(self.msn, 1);
                }
            }
            Opcode::RC_RDMA_WRITE_FIRST | Opcode::RC_RDMA_WRITE_ONLY => {
                let reth = reth.ok_or(INVALID)?;
                let len = u64::from(reth.dma_len);
                let only = op == Opcode::RC_RDMA_WRITE_ONLY;
                let fits = if only {
                    payload.len() as u64 == len
                } else {
                    payload.len() == mtu && len > mtu as u64
                };
                if !fits || len > MAX_MESSAGE_LEN {
                    return Err(INVALID);
                }
                check_range(mem, &reth, true)?;
                if !payload.is_empty() {
                    mem.write(reth.r_key, reth.va, payload)?;
                }
                if only {
                    self.msn = psn::add(self.msn, 1);
                } else {
                    self.message = Some(InMessage::Write {
                        rkey: reth.r_key,
                        va: reth.va,
                        len,
                        done: payload.len() as u64,
                    });
                }
            }
            Opcode::RC_RDMA_WRITE_MIDDLE | Opcode::RC_RDMA_WRITE_LAST => {
                let last = op == Opcode::RC_RDMA_WRITE_LAST;
                let Some(InMessage::Write {
                    rkey,
                    va,
                    len,
                    done,
                }) = &mut self.message
                else {
                    return Err(INVALID);
                };
                let after = *done + payload.len() as u64;
                let fits = if last {
                    !payload.is_empty() && after == *len
                } else {
                    payload.len() == mtu && after < *len
                };
                if !fits {
                    return Err(INVALID);
                }
                // Inside the range checked at the first packet.
                mem.write(*rkey, va.wrapping_add(*done), payload)?;
                *done = after;
                if last {
                    self.message = None;
                    self.msn = psn::add(self.msn, 1);
                }
            }
            Opcode::RC_RDMA_READ_REQUEST => {
                let reth = reth.ok_or(INVALID)?;
                self.read(sh, now, pkt.bth.psn, reth, mem)?;
                return Ok(false);
            }
            _ => return Err(INVALID),
        }
        self.epsn = psn::add(self.epsn, 1);
        Ok(pkt.bth.ack_req)
    }

    /// Carries out an in-order RDMA READ request: checks it, reads the memory and
    /// queues the responses; the ePSN moves past all their PSNs (§9.7.4.1.3).
    fn read(
        &mut self,
        sh: &mut Shared,
        now: u64,
        at: u32,
        reth: RethRepr,
        mem: &mut dyn ResponderMemory,
    ) -> Result<(), Refusal> {
        let resources = usize::from(sh.cfg.max_dest_rd_atomic.max(1));
        if self.reads_in_service >= resources {
            return Err(INVALID);
        }
        let len = u64::from(reth.dma_len);
        let npsn = packets_for(len, sh.mtu());
        if len > MAX_MESSAGE_LEN || npsn > 1 << 22 {
            return Err(INVALID);
        }
        check_range(mem, &reth, false)?;
        let data = read_exact(mem, reth.r_key, reth.va, len)?;
        self.msn = psn::add(self.msn, 1);
        self.queue_responses(sh, now, at, &data);
        self.reads_in_service += 1;
        self.reads.push_back(ReadRecord {
            psn: at,
            npsn: npsn as u32,
            va: reth.va,
            rkey: reth.r_key,
            len,
        });
        while self.reads.len() > resources {
            self.reads.pop_front();
        }
        self.epsn = psn::add(at, npsn as u32);
        Ok(())
    }

    /// A request behind the ePSN.
    fn duplicate(
        &mut self,
        sh: &mut Shared,
        now: u64,
        pkt: &IbPacket,
        mem: &mut dyn ResponderMemory,
        direct: &mut Vec<IbPacket>,
    ) {
        sh.stats.duplicates += 1;
        let at = pkt.bth.psn;
        if pkt.bth.opcode != Opcode::RC_RDMA_READ_REQUEST {
            // Taken already: never carried out twice; acknowledged with the latest
            // PSN taken, which covers this one.
            if pkt.bth.ack_req {
                let latest = psn::sub(self.epsn, 1);
                let ack = self.ack(sh, latest, super::AethRepr::SYNDROME_ACK_NO_CREDIT);
                self.emit(now, ack, direct);
            }
            return;
        }
        // A READ again, whole or from a later PSN: it must be the rest of a stored one.
        let Some(rec) = self
            .reads
            .iter()
            .find(|r| psn::sub(at, r.psn) < r.npsn)
            .copied()
        else {
            sh.drop(RxDrop::StaleDuplicate(at));
            return;
        };
        let ExtHeaders::Reth(reth) = pkt.ext else {
            sh.drop(RxDrop::StaleDuplicate(at));
            return;
        };
        let skip = u64::from(psn::sub(at, rec.psn)) * sh.mtu() as u64;
        let rest = rec.len.saturating_sub(skip);
        if reth.r_key != rec.rkey
            || reth.va != rec.va.wrapping_add(skip)
            || u64::from(reth.dma_len) != rest
        {
            sh.drop(RxDrop::StaleDuplicate(at));
            return;
        }
        match read_exact(mem, rec.rkey, reth.va, rest) {
            Ok(data) => self.queue_responses(sh, now, at, &data),
            Err(refusal) => {
                // The memory changed under a READ carried out before.
                let code = match refusal {
                    Refusal::Nak(code) => code,
                    Refusal::NotReady => nak::REMOTE_OPERATIONAL_ERROR,
                };
                let nak = self.ack(sh, at, nak::syndrome(code));
                self.emit(now, nak, direct);
                sh.enter_error();
            }
        }
    }

    /// Queues the READ response packets for `data`, the first with PSN `at`: FIRST,
    /// MIDDLE.., LAST or ONLY, PMTU bytes each but the last, AETH on all but MIDDLE.
    fn queue_responses(&mut self, sh: &Shared, now: u64, at: u32, data: &[u8]) {
        let mtu = sh.mtu();
        let n = packets_for(data.len() as u64, mtu) as usize;
        for k in 0..n {
            let opcode = match (n == 1, k == 0, k + 1 == n) {
                (true, ..) => Opcode::RC_RDMA_READ_RESPONSE_ONLY,
                (false, true, _) => Opcode::RC_RDMA_READ_RESPONSE_FIRST,
                (false, false, true) => Opcode::RC_RDMA_READ_RESPONSE_LAST,
                (false, false, false) => Opcode::RC_RDMA_READ_RESPONSE_MIDDLE,
            };
            let ext = if opcode == Opcode::RC_RDMA_READ_RESPONSE_MIDDLE {
                ExtHeaders::None
            } else {
                ExtHeaders::Aeth(Shared::ack_aeth(self.msn))
            };
            let start = k * mtu;
            let end = (start + mtu).min(data.len());
            let payload = data.get(start..end).unwrap_or_default().to_vec();
            let pkt = sh.packet(opcode, false, psn::add(at, k as u32), ext, payload);
            self.out.push_back(pkt);
        }
        self.out_since.get_or_insert(now);
    }

    /// An ACKNOWLEDGE with `syndrome` for `at`, carrying the MSN.
    fn ack(&self, sh: &Shared, at: u32, syndrome: u8) -> IbPacket {
        let mut aeth = Shared::ack_aeth(self.msn);
        aeth.syndrome = syndrome;
        sh.packet(
            Opcode::RC_ACKNOWLEDGE,
            false,
            at,
            ExtHeaders::Aeth(aeth),
            Vec::new(),
        )
    }

    /// Sends `pkt` at once, or behind queued READ responses.
    fn emit(&mut self, now: u64, pkt: IbPacket, direct: &mut Vec<IbPacket>) {
        if self.out.is_empty() {
            direct.push(pkt);
        } else {
            self.out.push_back(pkt);
            self.out_since.get_or_insert(now);
        }
    }
}

/// The R_Key check of a RETH's whole range (§9.7.5; ch. 10 for the key's rights): a
/// zero-length transfer checks nothing; a range past the end of the address space is
/// an access error.
fn check_range(
    mem: &mut dyn ResponderMemory,
    reth: &RethRepr,
    write: bool,
) -> Result<(), RemoteError> {
    let len = u64::from(reth.dma_len);
    if len == 0 {
        return Ok(());
    }
    if reth.va.checked_add(len).is_none() {
        return Err(RemoteError::Access);
    }
    mem.check(reth.r_key, reth.va, len, write)
}

/// Reads `len` bytes, refusing a memory that hands back another length.
fn read_exact(
    mem: &mut dyn ResponderMemory,
    rkey: u32,
    va: u64,
    len: u64,
) -> Result<Vec<u8>, Refusal> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let data = mem.read(rkey, va, len as usize)?;
    if data.len() as u64 != len {
        return Err(Refusal::Nak(nak::REMOTE_OPERATIONAL_ERROR));
    }
    Ok(data)
}
