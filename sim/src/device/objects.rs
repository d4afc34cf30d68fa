//! The model's device objects: UARs, PDs, memory keys, EQs, CQs and QPs with their
//! contexts and the QP state machine, created within the limits the driver set with
//! SET_HCA_CAP, and MAD_IFC answered by the port's own agent ([`super::port`]).
//!
//! Object numbers are shaped like a ConnectX-4's: UAR pages and EQ numbers from 0x10
//! (the captured Linux run), CQ and QP numbers from 0x400 and 0x100 above the
//! reserved ones, PDs from 1, memory-key indices from 0x100.

use std::collections::BTreeMap;

use fabboot_hca::dma::DmaRegion;
use fabboot_hca::ifc::Field;
use fabboot_hca::ifc::hca_cap::cmd_hca_cap as cap;
use fabboot_hca::ifc::objects::*;
use fabboot_hca::objects::opcode;

use super::fw::{Reply, status};
use super::port::Port;

/// Command status: a QP transition from the wrong state.
pub const BAD_QP_STATE: u8 = 0x10;
/// Command status: over a limit the driver set.
pub const EXCEEDS_LIM: u8 = 0x8;
/// Command status: a bad resource number.
pub const BAD_RESOURCE: u8 = 0x5;
/// MSI-X vectors of the modelled function.
pub const MSIX_VECTORS: u16 = 4;

/// QP states (`qpc.state`).
pub mod qp_state {
    #![allow(missing_docs)]
    pub const RST: u8 = 0;
    pub const INIT: u8 = 1;
    pub const RTR: u8 = 2;
    pub const RTS: u8 = 3;
    pub const ERR: u8 = 6;
}

/// A memory key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mkey {
    pub key: u32,
    pub pd: u32,
    /// Access mode (0 physical addresses).
    pub access_mode: u8,
    pub length64: bool,
    pub start: u64,
    pub len: u64,
    /// Rights: local read, local write, remote read, remote write, atomic.
    pub lr: bool,
    pub lw: bool,
    pub rr: bool,
    pub rw: bool,
    pub atomic: bool,
}

/// An event queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eq {
    pub log_size: u8,
    pub uar: u32,
    pub vector: u16,
    pub events: u64,
    /// Physical addresses of its pages.
    pub pages: Vec<u64>,
    /// Producer counter: EQEs written.
    pub pc: u32,
    /// Consumer counter: the index the driver last reported through an EQ doorbell
    /// (UAR 0x40 or 0x48). An EQE is written only into an entry below it plus the
    /// EQ's size; beyond is an overrun.
    pub ci: u32,
    /// Armed: the next EQE raises the EQ's MSI-X message (then disarms).
    pub armed: bool,
}

/// What an armed CQ waits for (the CQ doorbell's command; `cqc.st` 0x9 armed, 0x6
/// solicited-armed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CqArm {
    /// Any next CQE.
    Next,
    /// The next CQE of a message with the solicited-event bit, or an error CQE.
    Solicited,
}

/// A completion queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cq {
    pub log_size: u8,
    pub uar: u32,
    pub eqn: u8,
    pub dbr: u64,
    pub pages: Vec<u64>,
    /// Producer counter: CQEs written.
    pub pc: u32,
    /// Armed by the CQ doorbell, until the completion event it asked for is written.
    pub arm: Option<CqArm>,
    /// Arm sequence number the next arm doorbell must carry: completion events written
    /// for this CQ, modulo 4. An arm with another number was computed before the
    /// driver saw the last event: stale.
    pub arm_sn: u8,
    /// Producer counter just past the last CQE that satisfies a solicited arm (a
    /// solicited message or an error).
    pub solicited_pc: Option<u32>,
    /// Completion events written for this CQ.
    pub events: u32,
}

/// A queue pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qp {
    pub st: u8,
    pub state: u8,
    pub pd: u32,
    pub uar: u32,
    pub cqn_snd: u32,
    pub cqn_rcv: u32,
    pub log_rq_size: u8,
    pub log_rq_stride: u8,
    pub log_sq_size: u8,
    pub dbr: u64,
    pub pages: Vec<u64>,
    pub port: u8,
    pub pkey_index: u16,
    pub q_key: u32,
    pub mtu: u8,
    pub remote_qpn: u32,
    pub rlid: u16,
    pub sl: u8,
    pub rq_psn: u32,
    pub sq_psn: u32,
    pub retry_count: u8,
    pub rnr_retry: u8,
    pub ack_timeout: u8,
    pub log_sra_max: u8,
    pub log_rra_max: u8,
    pub rre: bool,
    pub rwe: bool,
    /// Send WQE blocks executed.
    pub sq_cc: u16,
    /// Receive entries consumed.
    pub rq_cc: u16,
    /// Modify commands applied: the device rebuilds the QP's RC transport when it
    /// changes.
    pub epoch: u32,
}

/// Every object the firmware holds.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub uars: Vec<u32>,
    pub pds: Vec<u32>,
    pub mkeys: BTreeMap<u32, Mkey>,
    pub eqs: BTreeMap<u8, Eq>,
    pub cqs: BTreeMap<u32, Cq>,
    pub qps: BTreeMap<u32, Qp>,
    /// MSI-X messages raised (vector numbers), oldest first, until the function takes
    /// them.
    pub msix: Vec<u16>,
    /// Violations found while writing events (an EQ overrun), until the function takes
    /// them.
    pub event_faults: Vec<String>,
    next_uar: u32,
    next_pd: u32,
    next_mkey: u32,
    next_eq: u8,
    next_cq: u32,
    next_qp: u32,
}

fn refuse(status: u8, what: impl Into<String>) -> Reply {
    Reply {
        status,
        syndrome: 0x5EED_0000 | u32::from(status),
        output: Vec::new(),
        violation: Some(what.into()),
    }
}

fn ok(output: Vec<u8>) -> Reply {
    Reply {
        output,
        ..Reply::default()
    }
}

/// Reads and checks a create command's page list: `count` 4 KiB-aligned pages in the
/// region.
fn pages(input: &[u8], pas: Field, count: usize, mem: &DmaRegion) -> Result<Vec<u64>, Reply> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let f = Field::new(pas.bit + 64 * i as u32, 64);
        if f.byte() + 8 > input.len() {
            return Err(refuse(
                status::BAD_INPUT_LEN,
                format!("page list holds {i} of {count} pages"),
            ));
        }
        let addr = f.get(input);
        if !addr.is_multiple_of(4096) || mem.offset_of(addr, 4096).is_none() {
            return Err(refuse(
                status::BAD_PARAM,
                format!("queue page {addr:#x} not an aligned page of the DMA region"),
            ));
        }
        out.push(addr);
    }
    Ok(out)
}

fn doorbell_record(addr: u64, mem: &DmaRegion) -> Result<u64, Reply> {
    if !addr.is_multiple_of(8) || mem.offset_of(addr, 8).is_none() {
        return Err(refuse(
            status::BAD_PARAM,
            format!("doorbell record {addr:#x} not 8-byte aligned in the DMA region"),
        ));
    }
    Ok(addr)
}

fn limit(caps: &[u8], f: Field) -> usize {
    1usize << f.get(caps).min(24)
}

impl Objects {
    /// Whether `op` is an object command.
    pub fn handles(op: u16) -> bool {
        use opcode::*;
        [
            ALLOC_UAR,
            DEALLOC_UAR,
            ALLOC_PD,
            DEALLOC_PD,
            CREATE_MKEY,
            DESTROY_MKEY,
            QUERY_SPECIAL_CONTEXTS,
            CREATE_EQ,
            DESTROY_EQ,
            CREATE_CQ,
            DESTROY_CQ,
            CREATE_QP,
            DESTROY_QP,
            RST2INIT_QP,
            INIT2RTR_QP,
            RTR2RTS_QP,
            QP_2ERR,
            QP_2RST,
            MAD_IFC,
        ]
        .contains(&op)
    }

    /// Objects alive (UARs, PDs, keys, queues).
    pub fn live(&self) -> usize {
        self.uars.len()
            + self.pds.len()
            + self.mkeys.len()
            + self.eqs.len()
            + self.cqs.len()
            + self.qps.len()
    }

    /// Executes an object command; `caps` are the current capabilities.
    pub fn dispatch(
        &mut self,
        op: u16,
        input: &[u8],
        caps: &[u8],
        mem: &DmaRegion,
        port: &mut Port,
    ) -> Reply {
        match op {
            opcode::ALLOC_UAR => {
                let uar = 0x10 + self.next_uar;
                self.next_uar += 1;
                self.uars.push(uar);
                let mut out = vec![0u8; 16];
                alloc_uar_out::UAR.set(&mut out, uar.into());
                ok(out)
            }
            opcode::DEALLOC_UAR => self.remove_number(
                dealloc_uar_in::UAR.get(input) as u32,
                |o| &mut o.uars,
                "UAR",
            ),
            opcode::ALLOC_PD => {
                if self.pds.len() >= limit(caps, cap::LOG_MAX_PD) {
                    return refuse(EXCEEDS_LIM, "more PDs than log_max_pd allows");
                }
                self.next_pd += 1;
                self.pds.push(self.next_pd);
                let mut out = vec![0u8; 16];
                alloc_pd_out::PD.set(&mut out, self.next_pd.into());
                ok(out)
            }
            opcode::DEALLOC_PD => {
                let pd = dealloc_pd_in::PD.get(input) as u32;
                if self.mkeys.values().any(|m| m.pd == pd) || self.qps.values().any(|q| q.pd == pd)
                {
                    return refuse(status::BAD_SYS_STATE, format!("PD {pd} still used"));
                }
                self.remove_number(pd, |o| &mut o.pds, "PD")
            }
            opcode::CREATE_MKEY => self.create_mkey(input, caps),
            opcode::DESTROY_MKEY => {
                let index = destroy_mkey_in::MKEY_INDEX.get(input) as u32;
                let key = self.mkeys.keys().copied().find(|k| k >> 8 == index);
                match key {
                    Some(k) => {
                        self.mkeys.remove(&k);
                        ok(vec![0u8; 16])
                    }
                    None => refuse(BAD_RESOURCE, format!("no memory key with index {index:#x}")),
                }
            }
            opcode::QUERY_SPECIAL_CONTEXTS => {
                let mut out = vec![0u8; query_special_contexts_out::SIZE];
                query_special_contexts_out::RESD_LKEY.set(&mut out, 0x100);
                query_special_contexts_out::NULL_MKEY.set(&mut out, 0x200);
                ok(out)
            }
            opcode::CREATE_EQ => self.create_eq(input, caps, mem),
            opcode::DESTROY_EQ => {
                let eqn = destroy_eq_in::EQ_NUMBER.get(input) as u8;
                if self.cqs.values().any(|c| c.eqn == eqn) {
                    return refuse(status::BAD_SYS_STATE, format!("EQ {eqn:#x} still has CQs"));
                }
                match self.eqs.remove(&eqn) {
                    Some(_) => ok(vec![0u8; 16]),
                    None => refuse(BAD_RESOURCE, format!("no EQ {eqn:#x}")),
                }
            }
            opcode::CREATE_CQ => self.create_cq(input, caps, mem),
            opcode::DESTROY_CQ => {
                let cqn = destroy_cq_in::CQN.get(input) as u32;
                if self
                    .qps
                    .values()
                    .any(|q| q.cqn_snd == cqn || q.cqn_rcv == cqn)
                {
                    return refuse(status::BAD_SYS_STATE, format!("CQ {cqn:#x} still has QPs"));
                }
                match self.cqs.remove(&cqn) {
                    Some(_) => ok(vec![0u8; 16]),
                    None => refuse(BAD_RESOURCE, format!("no CQ {cqn:#x}")),
                }
            }
            opcode::CREATE_QP => self.create_qp(input, caps, mem),
            opcode::DESTROY_QP => match self.qps.remove(&(destroy_qp_in::QPN.get(input) as u32)) {
                Some(_) => ok(vec![0u8; 16]),
                None => refuse(BAD_RESOURCE, "no such QP"),
            },
            opcode::RST2INIT_QP
            | opcode::INIT2RTR_QP
            | opcode::RTR2RTS_QP
            | opcode::QP_2ERR
            | opcode::QP_2RST => self.modify_qp(op, input),
            opcode::MAD_IFC => {
                let port_num = mad_ifc_in::PORT.get(input) as u8;
                let at = mad_ifc_in::MAD.byte();
                let Some(mad) = input.get(at..at + 256) else {
                    return refuse(status::BAD_INPUT_LEN, "MAD_IFC without a whole MAD");
                };
                if port_num != 1 {
                    return refuse(status::BAD_PARAM, format!("MAD_IFC for port {port_num}"));
                }
                let mut out = vec![0u8; mad_ifc_out::SIZE];
                let at = mad_ifc_out::RESPONSE_MAD_PACKET.byte();
                out[at..at + 256].copy_from_slice(&port.answer(mad).0);
                ok(out)
            }
            _ => refuse(status::BAD_OP, format!("opcode {op:#x} not modelled")),
        }
    }

    fn remove_number(
        &mut self,
        n: u32,
        list: impl Fn(&mut Objects) -> &mut Vec<u32>,
        what: &str,
    ) -> Reply {
        let l = list(self);
        match l.iter().position(|&x| x == n) {
            Some(i) => {
                l.remove(i);
                ok(vec![0u8; 16])
            }
            None => refuse(BAD_RESOURCE, format!("no {what} {n:#x}")),
        }
    }

    fn create_mkey(&mut self, input: &[u8], caps: &[u8]) -> Reply {
        let m = create_mkey_in::MKC;
        let get = |f: Field| f.within(m).get(input);
        let pd = get(mkc::PD) as u32;
        if !self.pds.contains(&pd) {
            return refuse(BAD_RESOURCE, format!("memory key for unknown PD {pd}"));
        }
        if self.mkeys.len() >= limit(caps, cap::LOG_MAX_MKEY) {
            return refuse(EXCEEDS_LIM, "more memory keys than log_max_mkey allows");
        }
        let access_mode = (get(mkc::ACCESS_MODE_4_2) << 2 | get(mkc::ACCESS_MODE_1_0)) as u8;
        if access_mode != 0 || get(mkc::FREE) != 0 {
            return refuse(
                status::BAD_PARAM,
                format!("memory key access mode {access_mode} not modelled"),
            );
        }
        let index = 0x100 + self.next_mkey;
        self.next_mkey += 1;
        let key = index << 8 | get(mkc::MKEY_7_0) as u32;
        self.mkeys.insert(
            key,
            Mkey {
                key,
                pd,
                access_mode,
                length64: get(mkc::LENGTH64) == 1,
                start: get(mkc::START_ADDR),
                len: get(mkc::LEN),
                lr: get(mkc::LR) == 1,
                lw: get(mkc::LW) == 1,
                rr: get(mkc::RR) == 1,
                rw: get(mkc::RW) == 1,
                atomic: get(mkc::A) == 1,
            },
        );
        let mut out = vec![0u8; 16];
        create_mkey_out::MKEY_INDEX.set(&mut out, index.into());
        ok(out)
    }

    fn create_eq(&mut self, input: &[u8], caps: &[u8], mem: &DmaRegion) -> Reply {
        let c = create_eq_in::EQC;
        let get = |f: Field| f.within(c).get(input);
        let log_size = get(eqc::LOG_EQ_SIZE) as u8;
        if u64::from(log_size) > cap::LOG_MAX_EQ_SZ.get(caps) {
            return refuse(EXCEEDS_LIM, format!("EQ of 2^{log_size} entries"));
        }
        if self.eqs.len() >= limit(caps, cap::LOG_MAX_EQ) {
            return refuse(EXCEEDS_LIM, "more EQs than log_max_eq allows");
        }
        let uar = get(eqc::UAR_PAGE) as u32;
        if !self.uars.contains(&uar) {
            return refuse(BAD_RESOURCE, format!("EQ on unknown UAR {uar:#x}"));
        }
        let vector = get(eqc::INTR) as u16;
        if vector >= MSIX_VECTORS {
            return refuse(
                status::BAD_PARAM,
                format!("MSI-X vector {vector} of {MSIX_VECTORS}"),
            );
        }
        if get(eqc::LOG_PAGE_SIZE) != 0 {
            return refuse(status::BAD_PARAM, "EQ pages other than 4 KiB not modelled");
        }
        let count = ((64usize << log_size).div_ceil(4096)).max(1);
        let pages = match pages(input, create_eq_in::PAS, count, mem) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let events = Field::new(create_eq_in::EVENT_BITMASK.bit, 64).get(input);
        let eqn = 0x10 + self.next_eq;
        self.next_eq = self.next_eq.wrapping_add(1);
        self.eqs.insert(
            eqn,
            Eq {
                log_size,
                uar,
                vector,
                events,
                pages,
                pc: 0,
                ci: 0,
                armed: false,
            },
        );
        let mut out = vec![0u8; 16];
        create_eq_out::EQ_NUMBER.set(&mut out, eqn.into());
        ok(out)
    }

    fn create_cq(&mut self, input: &[u8], caps: &[u8], mem: &DmaRegion) -> Reply {
        let c = create_cq_in::CQC;
        let get = |f: Field| f.within(c).get(input);
        let log_size = get(cqc::LOG_CQ_SIZE) as u8;
        if u64::from(log_size) > cap::LOG_MAX_CQ_SZ.get(caps) {
            return refuse(EXCEEDS_LIM, format!("CQ of 2^{log_size} entries"));
        }
        if self.cqs.len() >= limit(caps, cap::LOG_MAX_CQ) {
            return refuse(EXCEEDS_LIM, "more CQs than log_max_cq allows");
        }
        if get(cqc::CQE_SZ) != 0 {
            return refuse(status::BAD_PARAM, "only 64-byte CQEs are modelled");
        }
        let uar = get(cqc::UAR_PAGE) as u32;
        if !self.uars.contains(&uar) {
            return refuse(BAD_RESOURCE, format!("CQ on unknown UAR {uar:#x}"));
        }
        let eqn = get(cqc::C_EQN) as u8;
        if !self.eqs.contains_key(&eqn) {
            return refuse(BAD_RESOURCE, format!("CQ reports to unknown EQ {eqn:#x}"));
        }
        let dbr = match doorbell_record(get(cqc::DBR_ADDR), mem) {
            Ok(d) => d,
            Err(r) => return r,
        };
        let count = ((64usize << log_size).div_ceil(4096)).max(1);
        let pages = match pages(input, create_cq_in::PAS, count, mem) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let cqn = 0x400 + self.next_cq;
        self.next_cq += 1;
        self.cqs.insert(
            cqn,
            Cq {
                log_size,
                uar,
                eqn,
                dbr,
                pages,
                pc: 0,
                arm: None,
                arm_sn: 0,
                solicited_pc: None,
                events: 0,
            },
        );
        let mut out = vec![0u8; 16];
        create_cq_out::CQN.set(&mut out, cqn.into());
        ok(out)
    }

    fn create_qp(&mut self, input: &[u8], caps: &[u8], mem: &DmaRegion) -> Reply {
        let q = create_qp_in::QPC;
        let get = |f: Field| f.within(q).get(input);
        let st = get(qpc::ST) as u8;
        if ![0x0, 0x2, 0x8].contains(&st) {
            return refuse(
                status::BAD_PARAM,
                format!("QP service type {st:#x} not modelled"),
            );
        }
        if st == 0x8 && self.qps.values().any(|qp| qp.st == 0x8) {
            return refuse(status::BAD_PARAM, "a second QP1 for the port");
        }
        if self.qps.len() >= limit(caps, cap::LOG_MAX_QP) {
            return refuse(EXCEEDS_LIM, "more QPs than log_max_qp allows");
        }
        let (log_rq_size, log_rq_stride, log_sq_size) = (
            get(qpc::LOG_RQ_SIZE) as u8,
            get(qpc::LOG_RQ_STRIDE) as u8,
            get(qpc::LOG_SQ_SIZE) as u8,
        );
        if u64::from(log_rq_size.max(log_sq_size)) > cap::LOG_MAX_QP_SZ.get(caps) {
            return refuse(EXCEEDS_LIM, "work queue larger than log_max_qp_sz");
        }
        let pd = get(qpc::PD) as u32;
        let uar = get(qpc::UAR_PAGE) as u32;
        let (cqn_snd, cqn_rcv) = (get(qpc::CQN_SND) as u32, get(qpc::CQN_RCV) as u32);
        if !self.pds.contains(&pd) {
            return refuse(BAD_RESOURCE, format!("QP in unknown PD {pd}"));
        }
        if !self.uars.contains(&uar) {
            return refuse(BAD_RESOURCE, format!("QP on unknown UAR {uar:#x}"));
        }
        if !self.cqs.contains_key(&cqn_snd) || !self.cqs.contains_key(&cqn_rcv) {
            return refuse(
                BAD_RESOURCE,
                format!("QP with unknown CQs {cqn_snd:#x}/{cqn_rcv:#x}"),
            );
        }
        if get(qpc::PM_STATE) != 3 || get(qpc::RQ_TYPE) != 0 || get(qpc::LOG_PAGE_SIZE) != 0 {
            return refuse(
                status::BAD_PARAM,
                "QP context: pm_state 3, regular RQ and 4 KiB pages expected",
            );
        }
        let dbr = match doorbell_record(get(qpc::DBR_ADDR), mem) {
            Ok(d) => d,
            Err(r) => return r,
        };
        let bytes = ((16usize << log_rq_stride) << log_rq_size) + (64usize << log_sq_size);
        let pages = match pages(input, create_qp_in::PAS, bytes.div_ceil(4096), mem) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let qpn = 0x100 + self.next_qp;
        self.next_qp += 1;
        self.qps.insert(
            qpn,
            Qp {
                st,
                state: qp_state::RST,
                pd,
                uar,
                cqn_snd,
                cqn_rcv,
                log_rq_size,
                log_rq_stride,
                log_sq_size,
                dbr,
                pages,
                port: 0,
                pkey_index: 0,
                q_key: 0,
                mtu: 0,
                remote_qpn: 0,
                rlid: 0,
                sl: 0,
                rq_psn: 0,
                sq_psn: 0,
                retry_count: 0,
                rnr_retry: 0,
                ack_timeout: 0,
                log_sra_max: 0,
                log_rra_max: 0,
                rre: false,
                rwe: false,
                sq_cc: 0,
                rq_cc: 0,
                epoch: 0,
            },
        );
        let mut out = vec![0u8; 16];
        create_qp_out::QPN.set(&mut out, qpn.into());
        ok(out)
    }

    fn modify_qp(&mut self, op: u16, input: &[u8]) -> Reply {
        let qpn = rst2init_qp_in::QPN.get(input) as u32;
        let Some(qp) = self.qps.get_mut(&qpn) else {
            return refuse(BAD_RESOURCE, format!("no QP {qpn:#x}"));
        };
        let (from, to) = match op {
            opcode::RST2INIT_QP => (Some(qp_state::RST), qp_state::INIT),
            opcode::INIT2RTR_QP => (Some(qp_state::INIT), qp_state::RTR),
            opcode::RTR2RTS_QP => (Some(qp_state::RTR), qp_state::RTS),
            opcode::QP_2ERR => (None, qp_state::ERR),
            _ => (None, qp_state::RST),
        };
        if from.is_some_and(|f| f != qp.state) {
            return refuse(
                BAD_QP_STATE,
                format!(
                    "QP {qpn:#x} in state {} cannot take opcode {op:#x}",
                    qp.state
                ),
            );
        }
        if op == opcode::QP_2RST {
            // A reset QP starts its queues, PSNs and pending sends afresh.
            qp.sq_cc = 0;
            qp.rq_cc = 0;
        }
        qp.epoch = qp.epoch.wrapping_add(1);
        if op == opcode::QP_2ERR || op == opcode::QP_2RST {
            qp.state = to;
            return ok(vec![0u8; 16]);
        }
        let q = rst2init_qp_in::QPC;
        let path = qpc::PRIMARY_ADDRESS_PATH.within(q);
        let get = |f: Field| f.within(q).get(input);
        let path_get = |f: Field| f.within(path).get(input);
        let datagram = qp.st != 0x0;
        match op {
            opcode::RST2INIT_QP => {
                let port = path_get(ads::VHCA_PORT_NUM) as u8;
                if port != 1 {
                    return refuse(status::BAD_PARAM, format!("QP bound to port {port}"));
                }
                qp.port = port;
                qp.pkey_index = path_get(ads::PKEY_INDEX) as u16;
                if datagram {
                    qp.q_key = get(qpc::Q_KEY) as u32;
                } else {
                    qp.rre = get(qpc::RRE) == 1;
                    qp.rwe = get(qpc::RWE) == 1;
                }
            }
            opcode::INIT2RTR_QP if !datagram => {
                let (mtu, remote_qpn, rlid) = (
                    get(qpc::MTU) as u8,
                    get(qpc::REMOTE_QPN) as u32,
                    path_get(ads::RLID) as u16,
                );
                if !(1..=5).contains(&mtu) || remote_qpn == 0 || rlid == 0 {
                    return refuse(
                        status::BAD_PARAM,
                        format!(
                            "RC INIT2RTR needs MTU, remote QPN and LID (got {mtu}, {remote_qpn:#x}, {rlid:#x})"
                        ),
                    );
                }
                qp.mtu = mtu;
                qp.remote_qpn = remote_qpn;
                qp.rlid = rlid;
                qp.sl = path_get(ads::SL) as u8;
                qp.rq_psn = get(qpc::NEXT_RCV_PSN) as u32;
                qp.log_rra_max = get(qpc::LOG_RRA_MAX) as u8;
            }
            opcode::INIT2RTR_QP => {}
            _ => {
                qp.sq_psn = get(qpc::NEXT_SEND_PSN) as u32;
                if !datagram {
                    qp.retry_count = get(qpc::RETRY_COUNT) as u8;
                    qp.rnr_retry = get(qpc::RNR_RETRY) as u8;
                    qp.log_sra_max = get(qpc::LOG_SRA_MAX) as u8;
                    qp.ack_timeout = path_get(ads::ACK_TIMEOUT) as u8;
                }
            }
        }
        qp.state = to;
        ok(vec![0u8; 16])
    }
}
