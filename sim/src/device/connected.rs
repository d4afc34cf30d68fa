//! The function's RC queue pairs on the simulator's transport engine
//! ([`crate::rc`]): WQEs become work requests, the engine's completions become CQEs,
//! and the engine's responder side reaches host memory only through the function's
//! memory keys (remote rights, PD, bounds) and the QP's receive queue.
//!
//! An engine is built for a QP when it first has RC work in RTR or RTS, and rebuilt
//! when a modify command changes the QP (its epoch); the responder's expected PSN
//! carries over from RTR to RTS, as the QP context keeps it.

use std::collections::BTreeMap;

use fabboot_hca::dma::DmaRegion;

use super::datapath::{PortView, RcWork, Sender, syndrome};
use super::objects::{Objects, Qp, qp_state};
use crate::rc::{
    Completion, RcConfig, RcPath, RcQp, RemoteError, ResponderMemory, WcStatus,
    ack_timeout_from_code,
};
use crate::wire::IbPacket;

/// MTU code of the QP context (IBTA vol. 1 §9.7.7 PMTU) in bytes.
pub fn mtu_bytes(code: u8) -> usize {
    match code {
        1 => 256,
        2 => 512,
        3 => 1024,
        4 => 2048,
        _ => 4096,
    }
}

/// The minimum RNR NAK timer the model's responder advertises (code 12: 0.64 ms,
/// IBTA vol. 1 Table 45).
pub const MIN_RNR_TIMER_CODE: u8 = 12;

/// One QP's engine and the WQEs it has not completed.
pub struct RcLink {
    epoch: u32,
    state_at_build: u8,
    pub engine: RcQp,
    pending: BTreeMap<u64, RcWork>,
}

/// Every RC QP's engine.
#[derive(Default)]
pub struct RcLinks {
    links: BTreeMap<u32, RcLink>,
    /// QPs whose next WQE meets an injected fatal error, with the QP's epoch when it
    /// was armed (a modify command since disarms it).
    doomed: BTreeMap<u32, u32>,
}

/// Why [`RcLinks::inject_error`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// No QP with this number.
    NoQp(u32),
    /// The QP is not reliable connected (`qpc.st` 0).
    NotRc {
        /// The QP.
        qpn: u32,
        /// Its service type.
        service_type: u8,
    },
    /// The QP is not in RTR or RTS: no work runs on it that could fail.
    NotConnected {
        /// The QP.
        qpn: u32,
        /// Its state.
        state: u8,
    },
}

impl std::fmt::Display for InjectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            InjectError::NoQp(qpn) => write!(f, "no QP {qpn:#x}"),
            InjectError::NotRc { qpn, service_type } => {
                write!(f, "QP {qpn:#x} has service type {service_type:#x}, not RC")
            }
            InjectError::NotConnected { qpn, state } => {
                write!(f, "QP {qpn:#x} is in state {state}, not RTR or RTS")
            }
        }
    }
}

impl std::error::Error for InjectError {}

/// What an injected fatal error did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// Work was outstanding: the oldest WQE completed with "local QP operation
    /// error", the others and every posted receive with "WR flushed", and the QP is
    /// in ERR.
    Failed {
        /// The WQE counter of the one that failed.
        wqe: u16,
        /// Send WQEs flushed after it.
        flushed: usize,
        /// Receive WQEs flushed.
        receives_flushed: u32,
    },
    /// Nothing was outstanding: the QP's next WQE fails that way.
    Armed,
}

impl std::fmt::Debug for RcLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RcLinks")
            .field("qps", &self.links.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The responder's view of host memory: remote keys and the receive queue.
struct Responder<'a> {
    objects: &'a mut Objects,
    qpn: u32,
    qp: Qp,
    from: Sender,
    mem: &'a DmaRegion,
    violations: &'a mut Vec<String>,
}

impl ResponderMemory for Responder<'_> {
    fn check(&self, rkey: u32, va: u64, len: u64, write: bool) -> Result<(), RemoteError> {
        let key = self.objects.mkeys.get(&rkey).ok_or(RemoteError::Access)?;
        let allowed = if write {
            key.rw && self.qp.rwe
        } else {
            key.rr && self.qp.rre
        };
        let end = va.checked_add(len).ok_or(RemoteError::Access)?;
        let inside = key.length64 || (va >= key.start && end <= key.start + key.len);
        if key.pd != self.qp.pd || !allowed || !inside {
            return Err(RemoteError::Access);
        }
        self.mem
            .offset_of(va, len as usize)
            .map(|_| ())
            .ok_or(RemoteError::Access)
    }

    fn write(&mut self, rkey: u32, va: u64, data: &[u8]) -> Result<(), RemoteError> {
        self.check(rkey, va, data.len() as u64, true)?;
        let off = self
            .mem
            .offset_of(va, data.len())
            .ok_or(RemoteError::Access)?;
        self.mem.write(off, data).map_err(|_| RemoteError::Access)
    }

    fn read(&mut self, rkey: u32, va: u64, len: usize) -> Result<Vec<u8>, RemoteError> {
        self.check(rkey, va, len as u64, false)?;
        let off = self.mem.offset_of(va, len).ok_or(RemoteError::Access)?;
        let mut buf = vec![0u8; len];
        self.mem
            .read(off, &mut buf)
            .map_err(|_| RemoteError::Access)?;
        Ok(buf)
    }

    fn receive_ready(&self) -> bool {
        self.objects.receive_posted(self.qpn, self.mem)
    }

    fn receive(&mut self, message: &[u8]) -> Result<(), RemoteError> {
        match self
            .objects
            .scatter(self.qpn, message, &self.from, self.mem)
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(RemoteError::Operation),
            Err(v) => {
                // Local length or protection error at the responder: an error CQE
                // was written, the QP is in ERR, the requester gets a NAK.
                self.violations.push(v);
                Err(RemoteError::InvalidRequest)
            }
        }
    }
}

impl RcLinks {
    fn config(qp: &Qp) -> RcConfig {
        RcConfig {
            mtu: mtu_bytes(qp.mtu),
            retry_cnt: qp.retry_count.min(7),
            rnr_retry: qp.rnr_retry.min(7),
            ack_timeout_ns: ack_timeout_from_code(qp.ack_timeout),
            min_rnr_timer_code: MIN_RNR_TIMER_CODE,
            max_rd_atomic: 1u8 << qp.log_sra_max.min(7),
            max_dest_rd_atomic: 1u8 << qp.log_rra_max.min(7),
        }
    }

    /// The engine of `qpn`, built or rebuilt as the QP context says. `None` when the
    /// QP is gone or not in RTR/RTS (an engine of a QP that left them is dropped,
    /// its pending WQEs flushed by the caller).
    fn link(&mut self, qpn: u32, objects: &Objects, port: &PortView) -> Option<&mut RcLink> {
        let qp = objects.qps.get(&qpn)?;
        if qp.st != 0x0 || !matches!(qp.state, qp_state::RTR | qp_state::RTS) {
            return None;
        }
        let rebuild = self.links.get(&qpn).is_none_or(|l| l.epoch != qp.epoch);
        if rebuild {
            let old = self.links.remove(&qpn);
            let rq_psn = match &old {
                // RTR → RTS keeps the responder's place in the stream.
                Some(l) if l.state_at_build == qp_state::RTR && qp.state == qp_state::RTS => {
                    l.engine.expected_psn()
                }
                _ => qp.rq_psn,
            };
            let path = RcPath {
                slid: port.lid,
                dlid: qp.rlid,
                sl: qp.sl,
                p_key: port.pkey(qp.pkey_index),
                local_qpn: qpn,
                remote_qpn: qp.remote_qpn,
                sq_psn: qp.sq_psn,
                rq_psn,
            };
            self.links.insert(
                qpn,
                RcLink {
                    epoch: qp.epoch,
                    state_at_build: qp.state,
                    engine: RcQp::new(Self::config(qp), path),
                    pending: old.map(|l| l.pending).unwrap_or_default(),
                },
            );
        }
        self.links.get_mut(&qpn)
    }

    /// Posts RC work to the engines.
    pub fn post(
        &mut self,
        works: Vec<RcWork>,
        objects: &mut Objects,
        port: &PortView,
        mem: &DmaRegion,
        violations: &mut Vec<String>,
    ) {
        for work in works {
            let qpn = work.qpn;
            let epoch = objects.qps.get(&qpn).map(|q| q.epoch);
            match self.link(qpn, objects, port) {
                Some(link) => {
                    link.engine.post(work.request.clone());
                    link.pending.insert(u64::from(work.index), work);
                    // An injected error waiting for this QP's next WQE meets it now.
                    if let Some(armed) = self.doomed.remove(&qpn)
                        && Some(armed) == epoch
                    {
                        self.fail(qpn, objects, mem, violations);
                    }
                }
                None => {
                    let Some(qp) = objects.qps.get(&qpn).cloned() else {
                        continue;
                    };
                    if let Err(v) = objects.complete_send(
                        qpn,
                        &qp,
                        work.index,
                        work.opcode,
                        Some(syndrome::WR_FLUSHED),
                        mem,
                    ) {
                        violations.push(v);
                    }
                }
            }
        }
    }

    /// Lets every engine transmit what it may (new packets, retransmissions whose
    /// timer ran out) and turns its completions into CQEs.
    pub fn transmit(
        &mut self,
        now_ns: u64,
        objects: &mut Objects,
        mem: &DmaRegion,
        violations: &mut Vec<String>,
    ) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let qpns: Vec<u32> = self.links.keys().copied().collect();
        for qpn in qpns {
            self.flush_if_gone(qpn, objects, mem, violations);
            let Some(link) = self.links.get_mut(&qpn) else {
                continue;
            };
            for p in link.engine.poll_transmit(now_ns) {
                match p.encode() {
                    Ok(f) => frames.push(f),
                    Err(e) => violations.push(format!("QP {qpn:#x} built a bad packet: {e:?}")),
                }
            }
            self.complete(qpn, objects, mem, violations);
        }
        frames
    }

    /// An RC packet for QP `qpn` arrived; returns what the engine answers.
    pub fn receive(
        &mut self,
        now_ns: u64,
        packet: &IbPacket,
        objects: &mut Objects,
        port: &PortView,
        mem: &DmaRegion,
        violations: &mut Vec<String>,
    ) -> Vec<Vec<u8>> {
        let qpn = packet.bth.dest_qp;
        self.flush_if_gone(qpn, objects, mem, violations);
        let Some(link) = self.link(qpn, objects, port) else {
            return Vec::new();
        };
        let qp = objects.qps[&qpn].clone();
        let from = Sender {
            slid: packet.lrh.slid,
            sl: packet.lrh.sl,
            src_qpn: qp.remote_qpn,
            pkey_index: qp.pkey_index,
            // The engine hands the responder a message when its last packet (this
            // one) arrives.
            solicited: packet.bth.se,
        };
        let mut responder = Responder {
            objects,
            qpn,
            qp,
            from,
            mem,
            violations,
        };
        let answers = link.engine.receive(now_ns, packet, &mut responder);
        let mut frames = Vec::new();
        for p in answers {
            match p.encode() {
                Ok(f) => frames.push(f),
                Err(e) => violations.push(format!("QP {qpn:#x} built a bad packet: {e:?}")),
            }
        }
        self.complete(qpn, objects, mem, violations);
        frames
    }

    /// A fatal local error on RC QP `qpn`, as firmware reports one it met while
    /// executing a WQE (mlx5 CQE syndrome 0x02, local QP operation error;
    /// reference/mlx5.md §C.12): the oldest outstanding WQE completes with it, the
    /// others and the posted receives are flushed, the QP is in ERR (later posts
    /// are flushed, arriving packets dropped unanswered). The error is reported by
    /// the CQE alone: it is not one of the affiliated asynchronous events (§C.8,
    /// types 0x05, 0x10, 0x11 are for errors that no CQE can report). With nothing
    /// outstanding, the QP's next WQE fails this way.
    pub fn inject_error(
        &mut self,
        qpn: u32,
        objects: &mut Objects,
        port: &PortView,
        mem: &DmaRegion,
        violations: &mut Vec<String>,
    ) -> Result<Injected, InjectError> {
        let qp = objects.qps.get(&qpn).ok_or(InjectError::NoQp(qpn))?;
        if qp.st != 0x0 {
            return Err(InjectError::NotRc {
                qpn,
                service_type: qp.st,
            });
        }
        if !matches!(qp.state, qp_state::RTR | qp_state::RTS) {
            return Err(InjectError::NotConnected {
                qpn,
                state: qp.state,
            });
        }
        let epoch = qp.epoch;
        let idle = self
            .link(qpn, objects, port)
            .is_none_or(|l| l.pending.is_empty());
        if idle {
            self.doomed.insert(qpn, epoch);
            return Ok(Injected::Armed);
        }
        Ok(self.fail(qpn, objects, mem, violations))
    }

    /// Fails QP `qpn` now (see [`Self::inject_error`]).
    fn fail(
        &mut self,
        qpn: u32,
        objects: &mut Objects,
        mem: &DmaRegion,
        violations: &mut Vec<String>,
    ) -> Injected {
        self.doomed.remove(&qpn);
        let link = self.links.remove(&qpn);
        let Some(qp) = objects.qps.get(&qpn).cloned() else {
            return Injected::Armed;
        };
        let mut works: Vec<&RcWork> = link.iter().flat_map(|l| l.pending.values()).collect();
        // Oldest first: the furthest behind the send queue's counter.
        works.sort_by_key(|w| std::cmp::Reverse(qp.sq_cc.wrapping_sub(w.index)));
        for (n, work) in works.iter().enumerate() {
            let syndrome = if n == 0 {
                syndrome::LOCAL_QP_OPERATION
            } else {
                syndrome::WR_FLUSHED
            };
            if let Err(v) =
                objects.complete_send(qpn, &qp, work.index, work.opcode, Some(syndrome), mem)
            {
                violations.push(v);
            }
        }
        if let Some(q) = objects.qps.get_mut(&qpn) {
            q.state = qp_state::ERR;
        }
        let receives_flushed = objects.flush_receives(qpn, mem).unwrap_or_else(|v| {
            violations.push(v);
            0
        });
        Injected::Failed {
            wqe: works.first().map_or(0, |w| w.index),
            flushed: works.len().saturating_sub(1),
            receives_flushed,
        }
    }

    /// The earliest time an engine has timer work.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.links
            .values()
            .filter_map(|l| l.engine.next_deadline_ns())
            .min()
    }

    /// The engine of `qpn`, for reports.
    pub fn engine(&self, qpn: u32) -> Option<&RcQp> {
        self.links.get(&qpn).map(|l| &l.engine)
    }

    /// Drops the engine of a QP that left RTR/RTS (reset, error, destroyed),
    /// flushing what it had pending when the QP is in ERR.
    fn flush_if_gone(
        &mut self,
        qpn: u32,
        objects: &mut Objects,
        mem: &DmaRegion,
        violations: &mut Vec<String>,
    ) {
        let state = objects.qps.get(&qpn).map(|q| q.state);
        if matches!(state, Some(qp_state::RTR | qp_state::RTS)) {
            return;
        }
        let Some(link) = self.links.remove(&qpn) else {
            return;
        };
        if state == Some(qp_state::ERR) {
            let qp = objects.qps[&qpn].clone();
            for work in link.pending.values() {
                if let Err(v) = objects.complete_send(
                    qpn,
                    &qp,
                    work.index,
                    work.opcode,
                    Some(syndrome::WR_FLUSHED),
                    mem,
                ) {
                    violations.push(v);
                }
            }
        }
    }

    /// Writes the CQEs of the engine's completions; an error moves the QP to ERR.
    fn complete(
        &mut self,
        qpn: u32,
        objects: &mut Objects,
        mem: &DmaRegion,
        violations: &mut Vec<String>,
    ) {
        let Some(link) = self.links.get_mut(&qpn) else {
            return;
        };
        let done: Vec<Completion> = link.engine.take_completions();
        for c in done {
            let Some(work) = link.pending.remove(&c.wr_id) else {
                violations.push(format!(
                    "QP {qpn:#x}: completion for unknown work {}",
                    c.wr_id
                ));
                continue;
            };
            let error = match c.status {
                WcStatus::Success => None,
                WcStatus::RetryExceeded => Some(syndrome::TRANSPORT_RETRY_EXCEEDED),
                WcStatus::RnrRetryExceeded => Some(syndrome::RNR_RETRY_EXCEEDED),
                WcStatus::RemoteAccessError => Some(syndrome::REMOTE_ACCESS),
                WcStatus::RemoteInvalidRequest => Some(syndrome::REMOTE_INVALID_REQUEST),
                WcStatus::RemoteOperationError => Some(syndrome::REMOTE_OPERATION),
                WcStatus::Flushed => Some(syndrome::WR_FLUSHED),
                WcStatus::LocalLengthError => Some(syndrome::LOCAL_LENGTH),
            };
            if error.is_none() && !work.read_into.is_empty() {
                // Place the read's data in the WQE's segments, in order.
                let mut at = 0usize;
                for &(_, addr, len) in &work.read_into {
                    let n = (len as usize).min(c.data.len().saturating_sub(at));
                    if let Some(off) = mem.offset_of(addr, n) {
                        let _ = mem.write(off, &c.data[at..at + n]);
                    }
                    at += n;
                }
            }
            let Some(qp) = objects.qps.get(&qpn).cloned() else {
                continue;
            };
            if let Err(v) = objects.complete_send(qpn, &qp, work.index, work.opcode, error, mem) {
                violations.push(v);
            }
            if error.is_some()
                && let Some(q) = objects.qps.get_mut(&qpn)
            {
                q.state = qp_state::ERR;
            }
        }
    }
}
