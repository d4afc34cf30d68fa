//! The model's data path: send doorbells execute WQEs from host memory into packets,
//! arriving packets consume receive WQEs, and both write CQEs with owner bits
//! (reference/mlx5.md §C.6–C.12).
//!
//! Packets leave through the function's outbox and arrive through
//! [`super::Mlx5Function::deliver`]; until the fabric exists, tests move them (QP1
//! MADs to and from a test's agent; RC traffic over a direct link between two
//! functions). RC here is SEND with PSNs, ACKs and RNR NAKs; loss and retries belong
//! to the fabric.
//!
//! Strict: a doorbell for a QP that is not in RTS, a WQE whose index or QPN is wrong,
//! a data segment whose key is unknown, lacks the right or names memory outside the
//! DMA region, and a CQ overrun are errors (error CQEs, QP to ERR) and violations.

use fabboot_hca::dma::DmaRegion;
use fabboot_hca::wqe::{self, GRH_BYTES, INLINE, INVALID_LKEY, WQEBB, av, cqe, ctrl, data};

use super::objects::{Objects, Qp, qp_state};

/// GSI Q_Key every QP1 packet must carry.
pub const GSI_QKEY: u32 = 0x8001_0000;

/// Transport of a packet between model functions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Unreliable datagram (QP1 MADs).
    Ud { qkey: u32 },
    /// RC SEND with its PSN.
    RcSend { psn: u32 },
    /// RC acknowledgement up to and including `psn`.
    RcAck { psn: u32 },
    /// RC receiver not ready: resend from `psn` later.
    RcRnrNak { psn: u32 },
}

/// A packet on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub slid: u16,
    pub dlid: u16,
    pub sl: u8,
    /// Destination QP (1 for QP1).
    pub dst_qpn: u32,
    /// Source QP (1 from QP1).
    pub src_qpn: u32,
    pub transport: Transport,
    pub payload: Vec<u8>,
}

/// RC send state of a QP: sends waiting for their ACK.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcSendState {
    /// (PSN, WQE index, packet) of every unacknowledged send, oldest first.
    pub unacked: Vec<(u32, u16, Packet)>,
    /// RNR NAKs received.
    pub rnr_naks: u32,
}

/// CQE opcodes the model writes.
mod op {
    pub const REQ: u8 = 0;
    pub const RESP_SEND: u8 = 2;
    pub const REQ_ERR: u8 = 13;
    pub const RESP_ERR: u8 = 14;
}

/// Error syndromes (reference/mlx5.md §C.10).
pub mod syndrome {
    #![allow(missing_docs)]
    pub const LOCAL_LENGTH: u8 = 0x01;
    pub const LOCAL_PROTECTION: u8 = 0x04;
    pub const WR_FLUSHED: u8 = 0x05;
}

/// What executing work produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub packets: Vec<Packet>,
    /// Violations, as text.
    pub violations: Vec<String>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Offset in the region of byte `at` of a queue described by its pages.
fn queue_offset(pages: &[u64], at: usize, mem: &DmaRegion) -> Option<usize> {
    let page = *pages.get(at / 4096)?;
    mem.offset_of(page, 4096).map(|o| o + at % 4096)
}

impl Objects {
    /// Writes a CQE to CQ `cqn`; `e` has everything but `op_own`.
    fn write_cqe(
        &mut self,
        cqn: u32,
        mut e: [u8; 64],
        opcode: u8,
        mem: &DmaRegion,
    ) -> Result<(), String> {
        let cq = self
            .cqs
            .get_mut(&cqn)
            .ok_or_else(|| format!("completion for unknown CQ {cqn:#x}"))?;
        let size = 1u32 << cq.log_size;
        let ci = mem
            .offset_of(cq.dbr, 8)
            .and_then(|o| mem.read_be32(o).ok())
            .unwrap_or(0)
            & 0xFF_FFFF;
        if cq.pc.wrapping_sub(ci) & 0xFF_FFFF >= size {
            return Err(format!(
                "CQ {cqn:#x} overrun: producer {} consumer {ci}",
                cq.pc
            ));
        }
        let at = queue_offset(&cq.pages, (cq.pc & (size - 1)) as usize * 64, mem)
            .ok_or_else(|| format!("CQ {cqn:#x} ring outside the region"))?;
        let owner = ((cq.pc >> cq.log_size) & 1) as u8;
        e[cqe::OP_OWN] = opcode << 4 | owner;
        let _ = mem.write(at, &e[..63]);
        let _ = mem.write_u8_volatile(at + 63, e[63]);
        cq.pc = cq.pc.wrapping_add(1);
        Ok(())
    }

    /// Gathers the bytes data segments name, checking key, right and placement.
    fn gather(&self, qp: &Qp, segs: &[u8], mem: &DmaRegion) -> Result<Vec<u8>, (u8, String)> {
        let mut out = Vec::new();
        // Inline data: a byte count with the inline flag, then the data itself,
        // running over as many 16-byte units as it needs.
        let first = be32(segs, data::BYTE_COUNT);
        if first & INLINE != 0 {
            let n = (first & !INLINE) as usize;
            return segs.get(4..4 + n).map(<[u8]>::to_vec).ok_or((
                syndrome::LOCAL_LENGTH,
                format!("inline data of {n} bytes beyond the WQE"),
            ));
        }
        for seg in segs.chunks_exact(data::LEN) {
            let count = be32(seg, data::BYTE_COUNT);
            let (lkey, addr) = (be32(seg, data::LKEY), be64(seg, data::ADDR));
            self.check_key(qp, lkey, addr, count as usize, false, mem)?;
            let mut buf = vec![0u8; count as usize];
            let off = mem.offset_of(addr, buf.len()).unwrap_or(0);
            let _ = mem.read(off, &mut buf);
            out.extend_from_slice(&buf);
        }
        Ok(out)
    }

    fn check_key(
        &self,
        qp: &Qp,
        lkey: u32,
        addr: u64,
        len: usize,
        write: bool,
        mem: &DmaRegion,
    ) -> Result<(), (u8, String)> {
        let Some(key) = self.mkeys.get(&lkey) else {
            return Err((
                syndrome::LOCAL_PROTECTION,
                format!("data segment with unknown key {lkey:#x}"),
            ));
        };
        if key.pd != qp.pd || !(if write { key.lw } else { key.lr }) {
            return Err((
                syndrome::LOCAL_PROTECTION,
                format!("key {lkey:#x} lacks the right or the PD"),
            ));
        }
        if mem.offset_of(addr, len).is_none() {
            return Err((
                syndrome::LOCAL_PROTECTION,
                format!("data segment {addr:#x}+{len} outside the DMA region"),
            ));
        }
        Ok(())
    }

    /// Executes the send WQEs posted to QP `qpn` up to its doorbell record.
    pub fn execute_sends(&mut self, qpn: u32, uar: u32, lid: u16, mem: &DmaRegion) -> Outcome {
        let mut out = Outcome::default();
        let Some(qp) = self.qps.get(&qpn).cloned() else {
            out.violations
                .push(format!("send doorbell for unknown QP {qpn:#x}"));
            return out;
        };
        if qp.uar != uar {
            out.violations.push(format!(
                "QP {qpn:#x} rung through UAR {uar:#x}, not its own {:#x}",
                qp.uar
            ));
        }
        if qp.state != qp_state::RTS {
            out.violations.push(format!(
                "send doorbell for QP {qpn:#x} in state {}",
                qp.state
            ));
            return out;
        }
        let pc = mem
            .offset_of(qp.dbr, 8)
            .and_then(|o| mem.read_be32(o + 4).ok())
            .unwrap_or(0) as u16;
        let sq_base = (16usize << qp.log_rq_stride) << qp.log_rq_size;
        let sq_size = 1u16 << qp.log_sq_size;
        let mut cc = qp.sq_cc;
        while cc != pc {
            let mut w = vec![0u8; 4 * WQEBB];
            for b in 0..4u16 {
                let slot = sq_base + usize::from(cc.wrapping_add(b) & (sq_size - 1)) * WQEBB;
                if let Some(o) = queue_offset(&qp.pages, slot, mem) {
                    let _ = mem.read(
                        o,
                        &mut w[usize::from(b) * WQEBB..usize::from(b + 1) * WQEBB],
                    );
                }
            }
            let first = be32(&w, ctrl::OPMOD_IDX_OPCODE);
            let (opcode, index) = ((first & 0xFF) as u8, ((first >> 8) & 0xFFFF) as u16);
            let qpn_ds = be32(&w, ctrl::QPN_DS);
            let ds = (qpn_ds & 0x3F) as usize;
            let bbs = (ds * 16).div_ceil(WQEBB).max(1) as u16;
            if index != cc || qpn_ds >> 8 != qpn || ds == 0 || bbs > 4 {
                out.violations.push(format!(
                    "bad WQE at {cc}: index {index}, QPN {:#x}, ds {ds} (QP {qpn:#x})",
                    qpn_ds >> 8
                ));
                break;
            }
            let wqe_bytes = &w[..ds * 16];
            let result = match (opcode, qp.st) {
                (wqe::opcode::SEND, 0x2 | 0x8) => self
                    .gather(
                        &qp,
                        wqe_bytes.get(ctrl::LEN + av::LEN..).unwrap_or(&[]),
                        mem,
                    )
                    .map(|payload| {
                        let a = &wqe_bytes[ctrl::LEN..ctrl::LEN + av::LEN];
                        Packet {
                            slid: lid,
                            dlid: u16::from_be_bytes([a[av::RLID], a[av::RLID + 1]]),
                            sl: a[av::STAT_RATE_SL] & 0xF,
                            dst_qpn: be32(a, av::DQP_DCT) & 0xFF_FFFF,
                            src_qpn: if qp.st == 0x8 { 1 } else { qpn },
                            transport: Transport::Ud {
                                qkey: be32(a, av::QKEY),
                            },
                            payload,
                        }
                    }),
                (wqe::opcode::SEND, 0x0) => self
                    .gather(&qp, wqe_bytes.get(ctrl::LEN..).unwrap_or(&[]), mem)
                    .map(|payload| Packet {
                        slid: lid,
                        dlid: qp.rlid,
                        sl: qp.sl,
                        dst_qpn: qp.remote_qpn,
                        src_qpn: qpn,
                        transport: Transport::RcSend { psn: 0 },
                        payload,
                    }),
                _ => Err((
                    syndrome::LOCAL_PROTECTION,
                    format!(
                        "send opcode {opcode:#x} on service type {:#x} not modelled",
                        qp.st
                    ),
                )),
            };
            match result {
                Ok(mut packet) => {
                    if qp.st == 0x0 {
                        let state = self.qps.get_mut(&qpn).expect("exists");
                        let psn = state.sq_psn;
                        state.sq_psn = (psn + 1) & 0xFF_FFFF;
                        packet.transport = Transport::RcSend { psn };
                        state.rc.unacked.push((psn, index, packet.clone()));
                    } else if let Err(v) = self.complete_send(qpn, &qp, index, None, mem) {
                        out.violations.push(v);
                    }
                    out.packets.push(packet);
                }
                Err((syn, why)) => {
                    out.violations.push(why);
                    let _ = self.complete_send(qpn, &qp, index, Some(syn), mem);
                    if let Some(q) = self.qps.get_mut(&qpn) {
                        q.state = qp_state::ERR;
                    }
                    cc = cc.wrapping_add(bbs);
                    if let Some(q) = self.qps.get_mut(&qpn) {
                        q.sq_cc = cc;
                    }
                    break;
                }
            }
            cc = cc.wrapping_add(bbs);
            if let Some(q) = self.qps.get_mut(&qpn) {
                q.sq_cc = cc;
            }
        }
        out
    }

    /// A requester CQE (or error CQE) for WQE `index` of QP `qpn`.
    fn complete_send(
        &mut self,
        qpn: u32,
        qp: &Qp,
        index: u16,
        error: Option<u8>,
        mem: &DmaRegion,
    ) -> Result<(), String> {
        let mut e = [0u8; 64];
        e[cqe::SOP_DROP_QPN..cqe::SOP_DROP_QPN + 4]
            .copy_from_slice(&(u32::from(wqe::opcode::SEND) << 24 | qpn).to_be_bytes());
        e[cqe::WQE_COUNTER..cqe::WQE_COUNTER + 2].copy_from_slice(&index.to_be_bytes());
        let opcode = match error {
            Some(s) => {
                e[cqe::SYNDROME] = s;
                op::REQ_ERR
            }
            None => op::REQ,
        };
        self.write_cqe(qp.cqn_snd, e, opcode, mem)
    }

    /// Delivers a packet to this function's QPs; returns what it sends back.
    pub fn receive(&mut self, p: &Packet, mem: &DmaRegion) -> Outcome {
        let mut out = Outcome::default();
        match p.transport {
            Transport::Ud { qkey } => {
                let target = if p.dst_qpn == 1 {
                    self.qps.iter().find(|(_, q)| q.st == 0x8).map(|(n, _)| *n)
                } else {
                    self.qps
                        .get(&p.dst_qpn)
                        .filter(|q| q.st == 0x2)
                        .map(|_| p.dst_qpn)
                };
                let Some(qpn) = target else { return out };
                let qp = self.qps[&qpn].clone();
                let expected = if qp.st == 0x8 { GSI_QKEY } else { qp.q_key };
                if qkey != expected || !matches!(qp.state, qp_state::RTR | qp_state::RTS) {
                    return out; // dropped, as the wire would
                }
                let mut bytes = vec![0u8; GRH_BYTES];
                bytes.extend_from_slice(&p.payload);
                if let Err(v) = self.scatter(qpn, &bytes, p, mem) {
                    out.violations.push(v);
                }
            }
            Transport::RcSend { psn } => {
                let Some(qp) = self.qps.get(&p.dst_qpn).cloned() else {
                    return out;
                };
                if qp.st != 0x0
                    || !matches!(qp.state, qp_state::RTR | qp_state::RTS)
                    || psn != qp.rq_psn
                {
                    return out;
                }
                let head = mem
                    .offset_of(qp.dbr, 8)
                    .and_then(|o| mem.read_be32(o).ok())
                    .unwrap_or(0) as u16;
                let reply = |transport| Packet {
                    slid: p.dlid,
                    dlid: p.slid,
                    sl: p.sl,
                    dst_qpn: p.src_qpn,
                    src_qpn: p.dst_qpn,
                    transport,
                    payload: Vec::new(),
                };
                if head == qp.rq_cc {
                    out.packets.push(reply(Transport::RcRnrNak { psn }));
                    return out;
                }
                if let Err(v) = self.scatter(p.dst_qpn, &p.payload, p, mem) {
                    out.violations.push(v);
                }
                if let Some(q) = self.qps.get_mut(&p.dst_qpn) {
                    q.rq_psn = (psn + 1) & 0xFF_FFFF;
                }
                out.packets.push(reply(Transport::RcAck { psn }));
            }
            Transport::RcAck { psn } => {
                let Some(qp) = self.qps.get_mut(&p.dst_qpn) else {
                    return out;
                };
                let done: Vec<(u32, u16, Packet)> = qp
                    .rc
                    .unacked
                    .iter()
                    .filter(|(s, _, _)| *s <= psn)
                    .cloned()
                    .collect();
                qp.rc.unacked.retain(|(s, _, _)| *s > psn);
                let qp = qp.clone();
                for (_, index, _) in done {
                    if let Err(v) = self.complete_send(p.dst_qpn, &qp, index, None, mem) {
                        out.violations.push(v);
                    }
                }
            }
            Transport::RcRnrNak { .. } => {
                if let Some(qp) = self.qps.get_mut(&p.dst_qpn) {
                    qp.rc.rnr_naks += 1;
                }
            }
        }
        out
    }

    /// Writes an event to every EQ subscribed to its type (`data` is the 28-byte event
    /// data). `consumer` gives the consumer index the driver last reported per EQ.
    pub fn post_event(
        &mut self,
        kind: u8,
        sub_type: u8,
        data: &[u8; 28],
        consumer: impl Fn(u8) -> u32,
        mem: &DmaRegion,
    ) -> (Vec<String>, Vec<u16>) {
        let mut violations = Vec::new();
        let mut messages = Vec::new();
        for (eqn, eq) in self.eqs.iter_mut() {
            if eq.events & (1u64 << kind) == 0 {
                continue;
            }
            let size = 1u32 << eq.log_size;
            if eq.pc.wrapping_sub(consumer(*eqn)) & 0xFF_FFFF >= size {
                violations.push(format!(
                    "EQ {eqn:#x} overrun: the driver stopped reporting its consumer index"
                ));
                continue;
            }
            let Some(at) = queue_offset(&eq.pages, (eq.pc & (size - 1)) as usize * 64, mem) else {
                continue;
            };
            let mut e = [0u8; 64];
            e[1] = kind;
            e[3] = sub_type;
            e[0x20..0x3C].copy_from_slice(data);
            let _ = mem.write(at, &e[..63]);
            let _ = mem.write_u8_volatile(at + 63, ((eq.pc >> eq.log_size) & 1) as u8);
            eq.pc = eq.pc.wrapping_add(1);
            if eq.armed {
                eq.armed = false;
                messages.push(eq.vector);
            }
        }
        (violations, messages)
    }

    /// Sends every unacknowledged RC packet again (after an RNR NAK).
    pub fn retransmit(&self) -> Vec<Packet> {
        self.qps
            .values()
            .flat_map(|q| q.rc.unacked.iter().map(|(_, _, p)| p.clone()))
            .collect()
    }

    /// Places `bytes` in the next receive WQE of `qpn` and writes its CQE.
    fn scatter(
        &mut self,
        qpn: u32,
        bytes: &[u8],
        p: &Packet,
        mem: &DmaRegion,
    ) -> Result<(), String> {
        let qp = self.qps[&qpn].clone();
        let head = mem
            .offset_of(qp.dbr, 8)
            .and_then(|o| mem.read_be32(o).ok())
            .unwrap_or(0) as u16;
        if head == qp.rq_cc {
            return Ok(()); // no receive posted: UD drops it
        }
        let stride = 16usize << qp.log_rq_stride;
        let index = qp.rq_cc;
        let at = usize::from(index & ((1 << qp.log_rq_size) - 1)) * stride;
        let mut entry = vec![0u8; stride];
        if let Some(o) = queue_offset(&qp.pages, at, mem) {
            let _ = mem.read(o, &mut entry);
        }
        let mut placed = 0usize;
        let mut error = None;
        for seg in entry.chunks_exact(data::LEN) {
            let (count, lkey, addr) = (
                be32(seg, data::BYTE_COUNT) as usize,
                be32(seg, data::LKEY),
                be64(seg, data::ADDR),
            );
            if lkey == INVALID_LKEY || placed == bytes.len() {
                break;
            }
            let n = count.min(bytes.len() - placed);
            if let Err((syn, why)) = self.check_key(&qp, lkey, addr, n, true, mem) {
                error = Some((syn, why));
                break;
            }
            let off = mem.offset_of(addr, n).unwrap_or(0);
            let _ = mem.write(off, &bytes[placed..placed + n]);
            placed += n;
        }
        if error.is_none() && placed < bytes.len() {
            error = Some((
                syndrome::LOCAL_LENGTH,
                format!("{} bytes arrived for a {placed}-byte receive", bytes.len()),
            ));
        }
        if let Some(q) = self.qps.get_mut(&qpn) {
            q.rq_cc = q.rq_cc.wrapping_add(1);
        }
        let mut e = [0u8; 64];
        e[cqe::SLID..cqe::SLID + 2].copy_from_slice(&p.slid.to_be_bytes());
        let flags = u32::from(p.sl & 0xF) << 24 | (p.src_qpn & 0xFF_FFFF);
        e[cqe::FLAGS_RQPN..cqe::FLAGS_RQPN + 4].copy_from_slice(&flags.to_be_bytes());
        e[cqe::BYTE_CNT..cqe::BYTE_CNT + 4].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
        e[cqe::SOP_DROP_QPN..cqe::SOP_DROP_QPN + 4].copy_from_slice(&qpn.to_be_bytes());
        e[cqe::WQE_COUNTER..cqe::WQE_COUNTER + 2].copy_from_slice(&index.to_be_bytes());
        let (opcode, why) = match error {
            Some((syn, why)) => {
                e[cqe::SYNDROME] = syn;
                (op::RESP_ERR, Some(why))
            }
            None => (op::RESP_SEND, None),
        };
        self.write_cqe(qp.cqn_rcv, e, opcode, mem)?;
        match why {
            Some(w) => {
                if let Some(q) = self.qps.get_mut(&qpn) {
                    q.state = qp_state::ERR;
                }
                Err(w)
            }
            None => Ok(()),
        }
    }
}
