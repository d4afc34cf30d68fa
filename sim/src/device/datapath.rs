//! The model's data path: send doorbells execute WQEs from host memory, arriving
//! packets consume receive WQEs, and both write CQEs with owner bits
//! (reference/mlx5.md §C.6–C.12).
//!
//! Packets are real wire packets ([`crate::wire::IbPacket`]): a UD send becomes LRH,
//! BTH and DETH with the P_Key of the QP's P_Key index (IBTA vol. 1 §9.2, §9.3.2); an
//! arriving UD packet is checked for its P_Key against the port's table (§10.9.3) and
//! its Q_Key against the QP's (§10.2.5) before it takes a receive WQE. RC work goes to
//! the QP's transport engine ([`super::connected`]); this module turns its WQEs into
//! work requests and its completions into CQEs.
//!
//! Strict: a doorbell for a QP that is not in RTS, a WQE whose index or QPN is wrong,
//! a data segment whose key is unknown, lacks the right or names memory outside the
//! DMA region, and a CQ overrun are errors (error CQEs, QP to ERR) and violations.
//!
//! Completion events: a CQ armed by its doorbell (UAR 0x20) writes one completion EQE
//! (type 0x00, the CQN in event data dword 6) to its `c_eqn` for the next CQE, or for
//! the next solicited or error CQE when armed for solicited events, and is disarmed;
//! an arm finding such a CQE already past its consumer index fires at once. An EQ
//! armed by its doorbell (UAR 0x40) raises its MSI-X vector for its next EQE, at once
//! when one is already past its consumer index, and is disarmed. A doorbell for an
//! unknown queue, through another UAR, with a stale arm sequence number, an arm word
//! that is not also in the CQ's arm record, or a consumer index past the producer is
//! a violation, and ignored.

use fabboot_hca::dma::DmaRegion;
use fabboot_hca::wqe::{self, GRH_BYTES, INLINE, INVALID_LKEY, WQEBB, av, cqe, ctrl, data, raddr};

use super::objects::{CqArm, Objects, Qp, qp_state};
use crate::rc::WorkRequest;
use crate::wire::{BthRepr, DethRepr, ExtHeaders, IbPacket, Lnh, LrhRepr, Opcode};

/// GSI Q_Key every QP1 packet must carry.
pub const GSI_QKEY: u32 = 0x8001_0000;

/// CQE opcodes the model writes (reference/mlx5.md §C.12).
pub mod op {
    #![allow(missing_docs)]
    pub const REQ: u8 = 0;
    pub const RESP_SEND: u8 = 2;
    pub const REQ_ERR: u8 = 13;
    pub const RESP_ERR: u8 = 14;
}

/// Error syndromes of error CQEs (mlx5 `MLX5_CQE_SYNDROME_*`, reference/mlx5.md §C.12).
pub mod syndrome {
    #![allow(missing_docs)]
    pub const LOCAL_LENGTH: u8 = 0x01;
    pub const LOCAL_QP_OPERATION: u8 = 0x02;
    pub const LOCAL_PROTECTION: u8 = 0x04;
    pub const WR_FLUSHED: u8 = 0x05;
    pub const REMOTE_INVALID_REQUEST: u8 = 0x12;
    pub const REMOTE_ACCESS: u8 = 0x13;
    pub const REMOTE_OPERATION: u8 = 0x14;
    pub const TRANSPORT_RETRY_EXCEEDED: u8 = 0x15;
    pub const RNR_RETRY_EXCEEDED: u8 = 0x16;
}

/// What the port contributes to sending and receiving.
#[derive(Clone, Debug)]
pub struct PortView {
    pub lid: u16,
    pub pkeys: Vec<u16>,
    /// PortState ACTIVE: only then do packets other than SMPs flow (§7.2).
    pub active: bool,
}

impl PortView {
    /// P_Key at `index`, or the invalid P_Key 0.
    pub fn pkey(&self, index: u16) -> u16 {
        self.pkeys.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// Whether a packet's P_Key matches an entry (IBTA vol. 1 §10.9.3: the low 15
    /// bits equal and at least one side a full member) and the entry's index.
    pub fn pkey_match(&self, pkey: u16) -> Option<u16> {
        self.pkeys
            .iter()
            .position(|&p| {
                p & 0x7FFF == pkey & 0x7FFF && p & 0x7FFF != 0 && (p | pkey) & 0x8000 != 0
            })
            .map(|i| i as u16)
    }
}

/// An RC work request together with what its completion needs.
#[derive(Clone, Debug)]
pub struct RcWork {
    pub qpn: u32,
    /// WQE index (the CQE's wqe_counter).
    pub index: u16,
    /// WQE opcode (the CQE's top byte of sop_drop_qpn).
    pub opcode: u8,
    pub request: WorkRequest,
    /// For an RDMA READ: the local (lkey, address, length) segments its data lands in.
    pub read_into: Vec<(u32, u64, u32)>,
}

/// What executing work produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Encoded packets to put on the link.
    pub frames: Vec<Vec<u8>>,
    /// RC work for the QPs' transport engines.
    pub rc: Vec<RcWork>,
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

/// An encoded UD SEND Only packet (IBTA vol. 1 §9.2, DETH §9.3.2). QP0 traffic
/// travels on VL15, everything else on VL0.
#[allow(clippy::too_many_arguments)]
pub fn ud_frame(
    slid: u16,
    dlid: u16,
    sl: u8,
    p_key: u16,
    dest_qp: u32,
    src_qp: u32,
    q_key: u32,
    psn: u32,
    payload: Vec<u8>,
) -> Option<Vec<u8>> {
    let vl = if src_qp == 0 { 15 } else { 0 };
    IbPacket {
        lrh: LrhRepr {
            vl,
            lver: 0,
            sl,
            lnh: Lnh::Local,
            dlid,
            pkt_len: 0,
            slid,
        },
        grh: None,
        bth: BthRepr {
            opcode: Opcode::UD_SEND_ONLY,
            se: false,
            mig_req: false,
            pad_cnt: 0,
            tver: 0,
            p_key,
            dest_qp,
            ack_req: false,
            psn: psn & 0xFF_FFFF,
        },
        ext: ExtHeaders::Deth(DethRepr { q_key, src_qp }),
        payload,
    }
    .encode()
    .ok()
}

/// Event type of a completion event.
pub const EVENT_COMPLETION: u8 = 0x00;
/// Byte of the event data holding a completion event's CQN (low 24 bits of a
/// big-endian dword; `mlx5_eqe_comp.cqn`).
pub const COMP_EVENT_CQN: usize = 0x18;

impl Objects {
    /// Writes a CQE to CQ `cqn`; `e` has everything but `op_own`. `solicited`: the CQE
    /// completes a message sent with the solicited-event bit. An armed CQ the CQE
    /// satisfies then writes its completion event.
    pub(crate) fn write_cqe(
        &mut self,
        cqn: u32,
        mut e: [u8; 64],
        opcode: u8,
        solicited: bool,
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
        let notable = solicited || opcode == op::REQ_ERR || opcode == op::RESP_ERR;
        if notable {
            cq.solicited_pc = Some(cq.pc);
        }
        let fires = match cq.arm {
            Some(CqArm::Next) => true,
            Some(CqArm::Solicited) => notable,
            None => false,
        };
        if fires {
            self.fire_completion(cqn, mem);
        }
        Ok(())
    }

    /// CQ `cqn` writes its completion event to its EQ and is disarmed; its arm sequence
    /// number moves on.
    fn fire_completion(&mut self, cqn: u32, mem: &DmaRegion) {
        let Some(cq) = self.cqs.get_mut(&cqn) else {
            return;
        };
        cq.arm = None;
        cq.arm_sn = (cq.arm_sn + 1) & 3;
        cq.events = cq.events.wrapping_add(1);
        let eqn = cq.eqn;
        let mut data = [0u8; 28];
        data[COMP_EVENT_CQN..COMP_EVENT_CQN + 4].copy_from_slice(&(cqn & 0xFF_FFFF).to_be_bytes());
        if let Err(v) = self.write_eqe(eqn, EVENT_COMPLETION, 0, &data, mem) {
            self.event_faults.push(v);
        }
    }

    /// Writes one EQE to EQ `eqn` (if the driver has left room: its last reported
    /// consumer index plus the EQ's size); an armed EQ raises its MSI-X message and is
    /// disarmed.
    fn write_eqe(
        &mut self,
        eqn: u8,
        kind: u8,
        sub_type: u8,
        data: &[u8; 28],
        mem: &DmaRegion,
    ) -> Result<(), String> {
        let eq = self
            .eqs
            .get_mut(&eqn)
            .ok_or_else(|| format!("event {kind:#x} for unknown EQ {eqn:#x}"))?;
        let size = 1u32 << eq.log_size;
        if eq.pc.wrapping_sub(eq.ci) & 0xFF_FFFF >= size {
            return Err(format!(
                "EQ {eqn:#x} overrun: the driver stopped reporting its consumer index"
            ));
        }
        let at = queue_offset(&eq.pages, (eq.pc & (size - 1)) as usize * 64, mem)
            .ok_or_else(|| format!("EQ {eqn:#x} ring outside the region"))?;
        let mut e = [0u8; 64];
        e[1] = kind;
        e[3] = sub_type;
        e[0x20..0x3C].copy_from_slice(data);
        let _ = mem.write(at, &e[..63]);
        let _ = mem.write_u8_volatile(at + 63, ((eq.pc >> eq.log_size) & 1) as u8);
        eq.pc = eq.pc.wrapping_add(1);
        if eq.armed {
            eq.armed = false;
            self.msix.push(eq.vector);
        }
        Ok(())
    }

    /// The CQ doorbell (a 64-bit write to UAR page `uar`, offset 0x20): the arm word
    /// (sequence number 29:28, command 26:24, consumer index 23:0), then the CQN.
    /// Arms the CQ, or refuses the doorbell with the reason.
    pub fn cq_doorbell(&mut self, uar: u32, value: u64, mem: &DmaRegion) -> Result<(), String> {
        let (word, low) = ((value >> 32) as u32, value as u32);
        let cqn = low & 0xFF_FFFF;
        let Some(cq) = self.cqs.get_mut(&cqn) else {
            return Err(format!("CQ doorbell for unknown CQ {cqn:#x}"));
        };
        if low >> 24 != 0 || word >> 30 != 0 {
            return Err(format!(
                "CQ {cqn:#x} doorbell {value:#018x} sets reserved bits"
            ));
        }
        if cq.uar != uar {
            return Err(format!(
                "CQ {cqn:#x} armed through UAR {uar:#x}, not its own {:#x}",
                cq.uar
            ));
        }
        let mode = match (word >> 24) & 7 {
            0 => CqArm::Next,
            1 => CqArm::Solicited,
            c => return Err(format!("CQ {cqn:#x} doorbell command {c}")),
        };
        let record = mem
            .offset_of(cq.dbr, 8)
            .and_then(|o| mem.read_be32(o + 4).ok());
        if record != Some(word) {
            return Err(format!(
                "CQ {cqn:#x} armed with {word:#010x} but its arm record holds {record:#x?}"
            ));
        }
        let sn = ((word >> 28) & 3) as u8;
        if sn != cq.arm_sn {
            return Err(format!(
                "CQ {cqn:#x} armed with stale sequence number {sn} (the device is at {})",
                cq.arm_sn
            ));
        }
        let ci = word & 0xFF_FFFF;
        let unread = cq.pc.wrapping_sub(ci) & 0xFF_FFFF;
        if unread > 1 << cq.log_size {
            return Err(format!(
                "CQ {cqn:#x} armed with consumer index {ci} past its producer {}",
                cq.pc
            ));
        }
        cq.arm = Some(mode);
        // A CQE the arm asks for is already there: the event is written at once.
        let waiting = match mode {
            CqArm::Next => unread > 0,
            CqArm::Solicited => cq
                .solicited_pc
                .is_some_and(|s| (1..=unread).contains(&(s.wrapping_sub(ci) & 0xFF_FFFF))),
        };
        if waiting {
            self.fire_completion(cqn, mem);
        }
        Ok(())
    }

    /// The EQ doorbells (32-bit writes to UAR page `uar`, offset 0x40 with `arm`, 0x48
    /// without): EQ number 31:24, consumer index 23:0. Records the consumer index and,
    /// with `arm`, arms the EQ, or raises its MSI-X message at once when an EQE is
    /// already past the consumer index.
    pub fn eq_doorbell(&mut self, uar: u32, value: u32, arm: bool) -> Result<(), String> {
        let eqn = (value >> 24) as u8;
        let Some(eq) = self.eqs.get_mut(&eqn) else {
            return Err(format!("EQ doorbell for unknown EQ {eqn:#x}"));
        };
        if eq.uar != uar {
            return Err(format!(
                "EQ {eqn:#x} doorbell through UAR {uar:#x}, not its own {:#x}",
                eq.uar
            ));
        }
        let ci = value & 0xFF_FFFF;
        let unread = eq.pc.wrapping_sub(ci) & 0xFF_FFFF;
        if unread > 1 << eq.log_size {
            return Err(format!(
                "EQ {eqn:#x} consumer index {ci} past its producer {}",
                eq.pc
            ));
        }
        if unread > eq.pc.wrapping_sub(eq.ci) & 0xFF_FFFF {
            return Err(format!(
                "EQ {eqn:#x} consumer index moved back from {} to {ci}",
                eq.ci
            ));
        }
        eq.ci = ci;
        if arm {
            if unread > 0 {
                self.msix.push(eq.vector);
            } else {
                eq.armed = true;
            }
        }
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

    /// Checks a local key for `len` bytes at `addr` (local rights).
    pub(crate) fn check_key(
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

    /// Executes the send WQEs posted to QP `qpn` up to its doorbell record: UD and
    /// GSI sends become frames, RC WQEs become work for the QP's transport.
    pub fn execute_sends(
        &mut self,
        qpn: u32,
        uar: u32,
        port: &PortView,
        mem: &DmaRegion,
    ) -> Outcome {
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
        // Work posted to a QP in ERR is not executed: it completes with "WR flushed"
        // (reference/mlx5.md §C.11, as IBTA vol. 1 §10.3.1 has it for the Error state).
        let flushing = qp.state == qp_state::ERR;
        if qp.state != qp_state::RTS && !flushing {
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
            if flushing {
                let flushed = Some(syndrome::WR_FLUSHED);
                if let Err(v) = self.complete_send(qpn, &qp, index, opcode, flushed, mem) {
                    out.violations.push(v);
                }
                cc = cc.wrapping_add(bbs);
                if let Some(q) = self.qps.get_mut(&qpn) {
                    q.sq_cc = cc;
                }
                continue;
            }
            let wqe_bytes = &w[..ds * 16];
            let result = match (opcode, qp.st) {
                (wqe::opcode::SEND, 0x2 | 0x8) => self.ud_send(&qp, qpn, wqe_bytes, port, mem),
                (wqe::opcode::SEND | wqe::opcode::RDMA_WRITE | wqe::opcode::RDMA_READ, 0x0) => self
                    .rc_work(&qp, qpn, index, opcode, wqe_bytes, mem)
                    .map(|work| {
                        out.rc.push(work);
                        None
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
                Ok(frame) => {
                    if qp.st != 0x0 {
                        if let Some(f) = frame {
                            out.frames.push(f);
                        }
                        if let Err(v) = self.complete_send(qpn, &qp, index, opcode, None, mem) {
                            out.violations.push(v);
                        }
                    }
                }
                Err((syn, why)) => {
                    out.violations.push(why);
                    let _ = self.complete_send(qpn, &qp, index, opcode, Some(syn), mem);
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

    /// A UD or GSI SEND: the frame, or `None` when the port is not ACTIVE (the
    /// packet goes nowhere; the send still completes, as on a port without a link).
    fn ud_send(
        &mut self,
        qp: &Qp,
        qpn: u32,
        w: &[u8],
        port: &PortView,
        mem: &DmaRegion,
    ) -> Result<Option<Vec<u8>>, (u8, String)> {
        let payload = self.gather(qp, w.get(ctrl::LEN + av::LEN..).unwrap_or(&[]), mem)?;
        let a = &w[ctrl::LEN..ctrl::LEN + av::LEN];
        let dlid = u16::from_be_bytes([a[av::RLID], a[av::RLID + 1]]);
        let src_qp = if qp.st == 0x8 { 1 } else { qpn };
        let psn = qp.sq_psn;
        if let Some(q) = self.qps.get_mut(&qpn) {
            q.sq_psn = (psn + 1) & 0xFF_FFFF;
        }
        if !port.active {
            return Ok(None);
        }
        let frame = ud_frame(
            port.lid,
            dlid,
            a[av::STAT_RATE_SL] & 0xF,
            port.pkey(qp.pkey_index),
            be32(a, av::DQP_DCT) & 0xFF_FFFF,
            src_qp,
            be32(a, av::QKEY),
            psn,
            payload,
        )
        .ok_or((
            syndrome::LOCAL_LENGTH,
            format!("UD send of QP {qpn:#x} does not fit one packet"),
        ))?;
        Ok(Some(frame))
    }

    /// An RC WQE as a work request: SEND gathers its data now, RDMA WRITE too, RDMA
    /// READ remembers where its data goes (reference/mlx5.md §C.7: control, remote
    /// address, data segments).
    fn rc_work(
        &self,
        qp: &Qp,
        qpn: u32,
        index: u16,
        opcode: u8,
        w: &[u8],
        mem: &DmaRegion,
    ) -> Result<RcWork, (u8, String)> {
        let wr_id = u64::from(index);
        let rest = w.get(ctrl::LEN..).unwrap_or(&[]);
        let request = match opcode {
            wqe::opcode::SEND => WorkRequest::Send {
                wr_id,
                data: self.gather(qp, rest, mem)?,
            },
            _ => {
                let (remote_addr, rkey) = (be64(rest, raddr::RADDR), be32(rest, raddr::RKEY));
                let segs = rest.get(raddr::LEN..).unwrap_or(&[]);
                if opcode == wqe::opcode::RDMA_WRITE {
                    WorkRequest::RdmaWrite {
                        wr_id,
                        remote_addr,
                        rkey,
                        data: self.gather(qp, segs, mem)?,
                    }
                } else {
                    let mut read_into = Vec::new();
                    for seg in segs.chunks_exact(data::LEN) {
                        let (count, lkey, addr) = (
                            be32(seg, data::BYTE_COUNT),
                            be32(seg, data::LKEY),
                            be64(seg, data::ADDR),
                        );
                        self.check_key(qp, lkey, addr, count as usize, true, mem)?;
                        read_into.push((lkey, addr, count));
                    }
                    let len = read_into.iter().map(|s| s.2).sum();
                    return Ok(RcWork {
                        qpn,
                        index,
                        opcode,
                        request: WorkRequest::RdmaRead {
                            wr_id,
                            remote_addr,
                            rkey,
                            len,
                        },
                        read_into,
                    });
                }
            }
        };
        Ok(RcWork {
            qpn,
            index,
            opcode,
            request,
            read_into: Vec::new(),
        })
    }

    /// A requester CQE (or error CQE) for WQE `index` of QP `qpn`.
    pub(crate) fn complete_send(
        &mut self,
        qpn: u32,
        qp: &Qp,
        index: u16,
        opcode: u8,
        error: Option<u8>,
        mem: &DmaRegion,
    ) -> Result<(), String> {
        let mut e = [0u8; 64];
        e[cqe::SOP_DROP_QPN..cqe::SOP_DROP_QPN + 4]
            .copy_from_slice(&(u32::from(opcode) << 24 | qpn).to_be_bytes());
        e[cqe::WQE_COUNTER..cqe::WQE_COUNTER + 2].copy_from_slice(&index.to_be_bytes());
        let op = match error {
            Some(s) => {
                e[cqe::SYNDROME] = s;
                op::REQ_ERR
            }
            None => op::REQ,
        };
        self.write_cqe(qp.cqn_snd, e, op, false, mem)
    }

    /// Delivers a UD packet (already decoded and addressed to this port) to the GSI
    /// QP or a UD QP, after the P_Key and Q_Key checks. A packet that fails them, or
    /// finds no receive posted, is dropped as the wire would drop it; the reason is
    /// returned for the device's counters.
    pub fn receive_ud(
        &mut self,
        p: &IbPacket,
        port: &PortView,
        mem: &DmaRegion,
    ) -> Result<(), UdDrop> {
        let ExtHeaders::Deth(deth) = p.ext else {
            return Err(UdDrop::NotUd);
        };
        let Some(pkey_index) = port.pkey_match(p.bth.p_key) else {
            return Err(UdDrop::PKey(p.bth.p_key));
        };
        let dst = p.bth.dest_qp;
        let target = if dst == 1 {
            self.qps.iter().find(|(_, q)| q.st == 0x8).map(|(n, _)| *n)
        } else {
            self.qps.get(&dst).filter(|q| q.st == 0x2).map(|_| dst)
        };
        let Some(qpn) = target else {
            return Err(UdDrop::NoQp(dst));
        };
        let qp = self.qps[&qpn].clone();
        let expected = if qp.st == 0x8 { GSI_QKEY } else { qp.q_key };
        if deth.q_key != expected {
            return Err(UdDrop::QKey(deth.q_key));
        }
        if !matches!(qp.state, qp_state::RTR | qp_state::RTS) {
            return Err(UdDrop::QpState(qp.state));
        }
        // The receive buffer starts with the GRH, or 40 undefined bytes without one.
        let mut bytes = vec![0u8; GRH_BYTES];
        if let Some(g) = p.grh {
            g.emit(&mut bytes);
        }
        bytes.extend_from_slice(&p.payload);
        let from = Sender {
            slid: p.lrh.slid,
            sl: p.lrh.sl,
            src_qpn: deth.src_qp,
            pkey_index,
            solicited: p.bth.se,
        };
        match self.scatter(qpn, &bytes, &from, mem) {
            Ok(true) => Ok(()),
            Ok(false) => Err(UdDrop::NoReceive(qpn)),
            Err(v) => Err(UdDrop::Violation(v)),
        }
    }

    /// Whether RC QP `qpn` has a receive WQE posted.
    pub(crate) fn receive_posted(&self, qpn: u32, mem: &DmaRegion) -> bool {
        self.qps.get(&qpn).is_some_and(|qp| {
            let head = mem
                .offset_of(qp.dbr, 8)
                .and_then(|o| mem.read_be32(o).ok())
                .unwrap_or(0) as u16;
            head != qp.rq_cc
        })
    }

    /// Completes every receive WQE posted to `qpn` with "WR flushed" (a responder
    /// error CQE, syndrome 0x05, its WQE counter the receive's index), as a QP that
    /// enters ERR does with its receive queue (reference/mlx5.md §C.11). At most a
    /// queue's worth: a doorbell record claiming more is the driver's error, and the
    /// rest waits. Returns how many were flushed.
    pub(crate) fn flush_receives(&mut self, qpn: u32, mem: &DmaRegion) -> Result<u32, String> {
        let Some(qp) = self.qps.get(&qpn).cloned() else {
            return Ok(0);
        };
        let mut flushed = 0u32;
        while flushed < 1 << qp.log_rq_size && self.receive_posted(qpn, mem) {
            let Some(index) = self.qps.get(&qpn).map(|q| q.rq_cc) else {
                break;
            };
            let mut e = [0u8; 64];
            e[cqe::SOP_DROP_QPN..cqe::SOP_DROP_QPN + 4].copy_from_slice(&qpn.to_be_bytes());
            e[cqe::WQE_COUNTER..cqe::WQE_COUNTER + 2].copy_from_slice(&index.to_be_bytes());
            e[cqe::SYNDROME] = syndrome::WR_FLUSHED;
            if let Some(q) = self.qps.get_mut(&qpn) {
                q.rq_cc = index.wrapping_add(1);
            }
            self.write_cqe(qp.cqn_rcv, e, op::RESP_ERR, false, mem)?;
            flushed += 1;
        }
        Ok(flushed)
    }

    /// Places `bytes` in the next receive WQE of `qpn` and writes its CQE. `Ok(false)`
    /// when no receive is posted; an error (the message longer than the WQE's
    /// buffers, a bad key) writes an error CQE and moves the QP to ERR.
    pub(crate) fn scatter(
        &mut self,
        qpn: u32,
        bytes: &[u8],
        from: &Sender,
        mem: &DmaRegion,
    ) -> Result<bool, String> {
        let qp = self.qps[&qpn].clone();
        if !self.receive_posted(qpn, mem) {
            return Ok(false);
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
        e[cqe::SLID..cqe::SLID + 2].copy_from_slice(&from.slid.to_be_bytes());
        let flags = u32::from(from.sl & 0xF) << 24 | (from.src_qpn & 0xFF_FFFF);
        e[cqe::FLAGS_RQPN..cqe::FLAGS_RQPN + 4].copy_from_slice(&flags.to_be_bytes());
        e[cqe::IMM_INVAL_PKEY..cqe::IMM_INVAL_PKEY + 4]
            .copy_from_slice(&u32::from(from.pkey_index).to_be_bytes());
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
        self.write_cqe(qp.cqn_rcv, e, opcode, from.solicited, mem)?;
        match why {
            Some(w) => {
                if let Some(q) = self.qps.get_mut(&qpn) {
                    q.state = qp_state::ERR;
                }
                Err(w)
            }
            None => Ok(true),
        }
    }

    /// Writes an event to every EQ subscribed to its type (`data` is the 28-byte event
    /// data); returns the violations (an EQ overrun).
    pub fn post_event(
        &mut self,
        kind: u8,
        sub_type: u8,
        data: &[u8; 28],
        mem: &DmaRegion,
    ) -> Vec<String> {
        let subscribed: Vec<u8> = self
            .eqs
            .iter()
            .filter(|(_, eq)| eq.events & (1u64 << kind) != 0)
            .map(|(eqn, _)| *eqn)
            .collect();
        subscribed
            .into_iter()
            .filter_map(|eqn| self.write_eqe(eqn, kind, sub_type, data, mem).err())
            .collect()
    }
}

/// Who sent a packet, as a receive CQE reports it.
#[derive(Clone, Copy, Debug)]
pub struct Sender {
    pub slid: u16,
    pub sl: u8,
    pub src_qpn: u32,
    pub pkey_index: u16,
    /// The message's last packet carried the solicited-event bit (BTH SE).
    pub solicited: bool,
}

/// Why an arriving UD packet was dropped (IBTA vol. 1 §10.9.3, §10.2.5: silently,
/// counted by the port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdDrop {
    /// Not a UD SEND Only.
    NotUd,
    /// No full-or-limited match in the P_Key table.
    PKey(u16),
    /// No such UD QP (or no GSI QP).
    NoQp(u32),
    /// The Q_Key is not the QP's.
    QKey(u32),
    /// The QP is not in RTR or RTS.
    QpState(u8),
    /// No receive WQE posted.
    NoReceive(u32),
    /// The receive went wrong in a way the model reports.
    Violation(String),
}
