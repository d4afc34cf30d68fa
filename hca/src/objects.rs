//! Device objects: UAR, PD, memory key, EQ, CQ and QP creation, QP state transitions,
//! destruction, and MAD_IFC (reference/mlx5.md §C.9–C.14).
//!
//! Rings are carved by the caller (the memory plan) and initialised here before the
//! device sees them: every EQE owner bit set, every CQE marked invalid.

use crate::bytes;
use crate::cmdif::{CmdError, CmdIf, header};
use crate::dma::{DmaRegion, Span};
use crate::hal::Hal;
use crate::ifc::cmd::hdr;
use crate::ifc::objects::*;
use crate::ifc::{Field, objects};

/// Opcodes of the object commands.
pub mod opcode {
    #![allow(missing_docs)]
    pub const CREATE_MKEY: u16 = 0x200;
    pub const DESTROY_MKEY: u16 = 0x202;
    pub const QUERY_SPECIAL_CONTEXTS: u16 = 0x203;
    pub const CREATE_EQ: u16 = 0x301;
    pub const DESTROY_EQ: u16 = 0x302;
    pub const CREATE_CQ: u16 = 0x400;
    pub const DESTROY_CQ: u16 = 0x401;
    pub const CREATE_QP: u16 = 0x500;
    pub const DESTROY_QP: u16 = 0x501;
    pub const RST2INIT_QP: u16 = 0x502;
    pub const INIT2RTR_QP: u16 = 0x503;
    pub const RTR2RTS_QP: u16 = 0x504;
    pub const QP_2ERR: u16 = 0x507;
    pub const QP_2RST: u16 = 0x50A;
    pub const MAD_IFC: u16 = 0x50D;
    pub const ALLOC_PD: u16 = 0x800;
    pub const DEALLOC_PD: u16 = 0x801;
    pub const ALLOC_UAR: u16 = 0x802;
    pub const DEALLOC_UAR: u16 = 0x803;
}

/// Bytes of a create command before its page list.
const CREATE_HEADER: usize = 0x110;
/// Most ring pages one create command carries (keeps its buffer stack-sized).
pub const MAX_RING_PAGES: usize = 8;
/// Size of an EQE and of a CQE.
pub const ENTRY: usize = 64;
/// A CQE's `op_own` byte.
pub const CQE_OP_OWN: usize = 0x3F;
/// An EQE's owner byte.
pub const EQE_OWNER: usize = 0x3F;
/// Initial `op_own` of every CQE: opcode 15 (invalid), owner 0.
pub const CQE_INVALID: u8 = 0xF0;

/// Event types an EQ subscribes to (bit n of `event_bitmask` word 0 = type n).
pub mod event {
    #![allow(missing_docs)]
    pub const COMPLETION: u8 = 0x00;
    pub const CQ_ERROR: u8 = 0x04;
    pub const WQ_CATASTROPHIC: u8 = 0x05;
    pub const INTERNAL_ERROR: u8 = 0x08;
    pub const PORT_CHANGE: u8 = 0x09;
    pub const CMD: u8 = 0x0A;
    pub const PAGE_REQUEST: u8 = 0x0B;
    pub const WQ_INVALID_REQUEST: u8 = 0x10;
    pub const WQ_ACCESS_ERROR: u8 = 0x11;
}

/// QP service types (`qpc.st`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceType {
    /// Reliable connection.
    Rc,
    /// Unreliable datagram.
    Ud,
    /// The port's QP1 (general services interface).
    Gsi,
}

impl ServiceType {
    /// The `qpc.st` value.
    pub fn code(self) -> u8 {
        match self {
            ServiceType::Rc => 0x0,
            ServiceType::Ud => 0x2,
            ServiceType::Gsi => 0x8,
        }
    }
}

/// Where an EQ lives and what it listens to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EqConfig {
    /// The ring: `64 << log_size` bytes, page aligned.
    pub ring: Span,
    /// log2 of the entries.
    pub log_size: u8,
    /// UAR page for its doorbell.
    pub uar: u32,
    /// MSI-X vector.
    pub vector: u16,
    /// Event-type bitmask (bit n = type n).
    pub events: u64,
}

/// Where a CQ lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CqConfig {
    /// The ring: `64 << log_size` bytes, page aligned.
    pub ring: Span,
    /// log2 of the entries.
    pub log_size: u8,
    /// UAR page for its doorbell.
    pub uar: u32,
    /// The EQ its completion events go to.
    pub eqn: u8,
    /// Its 8-byte doorbell record.
    pub dbr: Span,
}

/// Where a QP lives and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QpConfig {
    /// Service type.
    pub st: ServiceType,
    /// Protection domain.
    pub pd: u32,
    /// UAR page for its doorbells.
    pub uar: u32,
    /// CQ of its sends and of its receives.
    pub cqn_snd: u32,
    /// See `cqn_snd`.
    pub cqn_rcv: u32,
    /// Work queue buffer: the receive queue, then the send queue right after it.
    pub buffer: Span,
    /// log2 of receive entries.
    pub log_rq_size: u8,
    /// Receive entry stride is `16 << log_rq_stride`.
    pub log_rq_stride: u8,
    /// log2 of 64-byte send WQE basic blocks.
    pub log_sq_size: u8,
    /// Its 8-byte doorbell record.
    pub dbr: Span,
}

impl QpConfig {
    /// Bytes of the receive queue (the send queue starts there).
    pub fn rq_bytes(&self) -> usize {
        (16usize << self.log_rq_stride) << self.log_rq_size
    }

    /// Bytes of the send queue.
    pub fn sq_bytes(&self) -> usize {
        64usize << self.log_sq_size
    }
}

/// A QP state transition and what it sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// RST → INIT: port, P_Key index, Q_Key (UD/QP1), remote access (RC).
    Rst2Init,
    /// INIT → RTR: the path and remote QP (RC); nothing for UD/QP1.
    Init2Rtr,
    /// RTR → RTS: send PSN, retries, ACK timeout (RC).
    Rtr2Rts,
    /// Any → ERR: outstanding work completes flushed.
    ToErr,
    /// Any → RST.
    ToRst,
}

/// The values a transition writes into the QP context (only those its transition uses
/// are sent; see [`modify_qp`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QpAttrs {
    /// Physical port (1).
    pub port: u8,
    /// P_Key table index.
    pub pkey_index: u16,
    /// Q_Key (UD, QP1).
    pub q_key: u32,
    /// Path MTU code (1 256 … 5 4096).
    pub mtu: u8,
    /// Remote QP number (RC).
    pub remote_qpn: u32,
    /// Remote LID.
    pub rlid: u16,
    /// Service level.
    pub sl: u8,
    /// Static rate code (0: port rate).
    pub stat_rate: u8,
    /// Expected PSN of the first packet received (RC).
    pub rq_psn: u32,
    /// PSN of the first packet sent (RC).
    pub sq_psn: u32,
    /// log2 of RDMA reads the remote may have outstanding at us (responder).
    pub log_rra_max: u8,
    /// log2 of RDMA reads we may have outstanding (initiator).
    pub log_sra_max: u8,
    /// Transport retries (0–7).
    pub retry_count: u8,
    /// RNR retries (7: infinite).
    pub rnr_retry: u8,
    /// Local ACK timeout exponent.
    pub ack_timeout: u8,
    /// Minimum RNR NAK timer code.
    pub min_rnr_nak: u8,
    /// Allow the remote to RDMA-read (rre), -write (rwe) our memory.
    pub remote_read: bool,
    /// See `remote_read`.
    pub remote_write: bool,
}

/// ALLOC_UAR: a UAR page index (its doorbells are at BAR0 + index × 4 KiB).
pub fn alloc_uar<H: Hal>(cmd: &mut CmdIf, hal: &H, dma: &DmaRegion) -> Result<u32, CmdError> {
    let out = cmd.exec_short(hal, dma, opcode::ALLOC_UAR, 0, None)?;
    Ok(alloc_uar_out::UAR.get(&out) as u32)
}

/// ALLOC_PD: a protection domain.
pub fn alloc_pd<H: Hal>(cmd: &mut CmdIf, hal: &H, dma: &DmaRegion) -> Result<u32, CmdError> {
    let out = cmd.exec_short(hal, dma, opcode::ALLOC_PD, 0, None)?;
    Ok(alloc_pd_out::PD.get(&out) as u32)
}

/// CREATE_MKEY of a physical-address key for local access only (lr, lw; no remote
/// rights, never sent on the wire): the key data segments carry for buffers the
/// driver owns. Returns the key (`index << 8 | variant`).
pub fn create_local_pa_mkey<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    pd: u32,
    variant: u8,
) -> Result<u32, CmdError> {
    create_pa_mkey(cmd, hal, dma, pd, variant, RemoteAccess::NONE)
}

/// Remote rights of a memory key (mkc `rr`, `rw`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAccess {
    /// The peer may RDMA READ through the key.
    pub read: bool,
    /// The peer may RDMA WRITE through the key.
    pub write: bool,
}

impl RemoteAccess {
    /// Local access only.
    pub const NONE: RemoteAccess = RemoteAccess {
        read: false,
        write: false,
    };
}

/// CREATE_MKEY of a physical-address key over all of memory (`length64`) with local
/// read and write and the given remote rights (reference/mlx5.md §C.9, mkc `lr`,
/// `lw`, `rr`, `rw`, access mode PA). A key with remote rights lets the connected
/// peer reach any physical address through it: what an initiator that does no
/// per-I/O registration hands its target (reference/srp-cm-sa-dm.md §2.3).
pub fn create_pa_mkey<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    pd: u32,
    variant: u8,
    remote: RemoteAccess,
) -> Result<u32, CmdError> {
    let mut input = [0u8; CREATE_HEADER];
    header(&mut input, opcode::CREATE_MKEY, 0);
    let m = create_mkey_in::MKC;
    mkc::LR.within(m).set(&mut input, 1);
    mkc::LW.within(m).set(&mut input, 1);
    mkc::RR.within(m).set(&mut input, remote.read.into());
    mkc::RW.within(m).set(&mut input, remote.write.into());
    mkc::ACCESS_MODE_1_0.within(m).set(&mut input, 0); // physical addresses
    mkc::QPN.within(m).set(&mut input, 0xFF_FFFF);
    mkc::MKEY_7_0.within(m).set(&mut input, variant.into());
    mkc::LENGTH64.within(m).set(&mut input, 1);
    mkc::PD.within(m).set(&mut input, pd.into());
    let mut out = [0u8; 16];
    cmd.exec(hal, dma, &input, &mut out)?;
    let index = create_mkey_out::MKEY_INDEX.get(&out) as u32;
    Ok(index << 8 | u32::from(variant))
}

/// Fills the page list of a create command for `ring`; returns the command: `input`
/// up to the end of the list.
fn page_list<'a>(
    input: &'a mut [u8],
    pas: Field,
    dma: &DmaRegion,
    ring: Span,
) -> Result<&'a [u8], CmdError> {
    let pages = ring.len.div_ceil(4096);
    if pages == 0 || pages > MAX_RING_PAGES {
        return Err(CmdError::TooLong {
            opcode: hdr::OPCODE.get(input) as u16,
            len: pages,
            max: MAX_RING_PAGES,
        });
    }
    for i in 0..pages {
        let addr = dma.phys_span(Span {
            offset: ring.offset + i * 4096,
            len: 4096,
        })?;
        Field::new(pas.bit + 64 * i as u32, 64).set(input, addr);
    }
    // Every caller's buffer holds MAX_RING_PAGES entries; checked, not indexed, so that
    // no panic path is linked (see `crate::bytes`).
    let len = pas.byte() + 8 * pages;
    let input: &'a [u8] = input;
    input.get(..len).ok_or(CmdError::TooLong {
        opcode: hdr::OPCODE.get(input) as u16,
        len,
        max: input.len(),
    })
}

/// CREATE_EQ: initialises the ring (every owner bit 1) and creates the queue.
pub fn create_eq<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    cfg: &EqConfig,
) -> Result<u8, CmdError> {
    let entries = 1usize << cfg.log_size;
    for i in 0..entries {
        dma.write_u8_volatile(cfg.ring.offset + i * ENTRY + EQE_OWNER, 1)?;
    }
    let mut input = [0u8; CREATE_HEADER + 8 * MAX_RING_PAGES];
    header(&mut input, opcode::CREATE_EQ, 0);
    let c = create_eq_in::EQC;
    eqc::LOG_EQ_SIZE
        .within(c)
        .set(&mut input, cfg.log_size.into());
    eqc::UAR_PAGE.within(c).set(&mut input, cfg.uar.into());
    eqc::INTR.within(c).set(&mut input, cfg.vector.into());
    eqc::LOG_PAGE_SIZE.within(c).set(&mut input, 0);
    // The first of the four 64-bit bitmask words holds event types 0–63.
    Field::new(create_eq_in::EVENT_BITMASK.bit, 64).set(&mut input, cfg.events);
    let command = page_list(&mut input, create_eq_in::PAS, dma, cfg.ring)?;
    let mut out = [0u8; 16];
    cmd.exec(hal, dma, command, &mut out)?;
    Ok(create_eq_out::EQ_NUMBER.get(&out) as u8)
}

/// CREATE_CQ: initialises the ring (every CQE invalid, owner 0) and its doorbell
/// record, and creates the queue.
pub fn create_cq<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    cfg: &CqConfig,
) -> Result<u32, CmdError> {
    let entries = 1usize << cfg.log_size;
    for i in 0..entries {
        dma.write_u8_volatile(cfg.ring.offset + i * ENTRY + CQE_OP_OWN, CQE_INVALID)?;
    }
    dma.fill(cfg.dbr.offset, 8, 0)?;
    let mut input = [0u8; CREATE_HEADER + 8 * MAX_RING_PAGES];
    header(&mut input, opcode::CREATE_CQ, 0);
    let c = create_cq_in::CQC;
    cqc::CQE_SZ.within(c).set(&mut input, 0);
    cqc::LOG_CQ_SIZE
        .within(c)
        .set(&mut input, cfg.log_size.into());
    cqc::UAR_PAGE.within(c).set(&mut input, cfg.uar.into());
    cqc::C_EQN.within(c).set(&mut input, cfg.eqn.into());
    cqc::LOG_PAGE_SIZE.within(c).set(&mut input, 0);
    cqc::DBR_ADDR
        .within(c)
        .set(&mut input, dma.phys_span(cfg.dbr)?);
    let command = page_list(&mut input, create_cq_in::PAS, dma, cfg.ring)?;
    let mut out = [0u8; 16];
    cmd.exec(hal, dma, command, &mut out)?;
    Ok(create_cq_out::CQN.get(&out) as u32)
}

/// CREATE_QP in RST: zeroes its work queues and doorbell record and creates it.
pub fn create_qp<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    cfg: &QpConfig,
) -> Result<u32, CmdError> {
    dma.fill(cfg.buffer.offset, cfg.buffer.len, 0)?;
    dma.fill(cfg.dbr.offset, 8, 0)?;
    let mut input = [0u8; CREATE_HEADER + 8 * MAX_RING_PAGES];
    header(&mut input, opcode::CREATE_QP, 0);
    let q = create_qp_in::QPC;
    qpc::ST.within(q).set(&mut input, cfg.st.code().into());
    qpc::PM_STATE.within(q).set(&mut input, 3);
    qpc::PD.within(q).set(&mut input, cfg.pd.into());
    qpc::LOG_RQ_SIZE
        .within(q)
        .set(&mut input, cfg.log_rq_size.into());
    qpc::LOG_RQ_STRIDE
        .within(q)
        .set(&mut input, cfg.log_rq_stride.into());
    qpc::LOG_SQ_SIZE
        .within(q)
        .set(&mut input, cfg.log_sq_size.into());
    qpc::UAR_PAGE.within(q).set(&mut input, cfg.uar.into());
    qpc::LOG_PAGE_SIZE.within(q).set(&mut input, 0);
    qpc::CQN_SND.within(q).set(&mut input, cfg.cqn_snd.into());
    qpc::CQN_RCV.within(q).set(&mut input, cfg.cqn_rcv.into());
    qpc::DBR_ADDR
        .within(q)
        .set(&mut input, dma.phys_span(cfg.dbr)?);
    qpc::RQ_TYPE.within(q).set(&mut input, 0);
    let command = page_list(&mut input, create_qp_in::PAS, dma, cfg.buffer)?;
    let mut out = [0u8; 16];
    cmd.exec(hal, dma, command, &mut out)?;
    Ok(create_qp_out::QPN.get(&out) as u32)
}

/// opt_param_mask bits (reference/mlx5.md §C.11).
mod opt {
    pub const PKEY_INDEX: u32 = 1 << 4;
    pub const Q_KEY: u32 = 1 << 5;
}

/// Moves QP `qpn` (of service type `st`) through `transition`, writing the context
/// fields that transition takes.
pub fn modify_qp<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    qpn: u32,
    st: ServiceType,
    transition: Transition,
    a: &QpAttrs,
) -> Result<(), CmdError> {
    let op = match transition {
        Transition::Rst2Init => opcode::RST2INIT_QP,
        Transition::Init2Rtr => opcode::INIT2RTR_QP,
        Transition::Rtr2Rts => opcode::RTR2RTS_QP,
        Transition::ToErr => {
            return cmd
                .exec_short(
                    hal,
                    dma,
                    opcode::QP_2ERR,
                    0,
                    Some((qp_2err_in::QPN, qpn.into())),
                )
                .map(|_| ());
        }
        Transition::ToRst => {
            return cmd
                .exec_short(
                    hal,
                    dma,
                    opcode::QP_2RST,
                    0,
                    Some((qp_2rst_in::QPN, qpn.into())),
                )
                .map(|_| ());
        }
    };
    let mut input = [0u8; CREATE_HEADER];
    header(&mut input, op, 0);
    rst2init_qp_in::QPN.set(&mut input, qpn.into());
    let q = rst2init_qp_in::QPC;
    let path = qpc::PRIMARY_ADDRESS_PATH.within(q);
    let datagram = st != ServiceType::Rc;
    let mut mask = 0u32;
    match transition {
        Transition::Rst2Init => {
            qpc::PM_STATE.within(q).set(&mut input, 3);
            ads::VHCA_PORT_NUM
                .within(path)
                .set(&mut input, a.port.into());
            ads::PKEY_INDEX
                .within(path)
                .set(&mut input, a.pkey_index.into());
            if datagram {
                qpc::Q_KEY.within(q).set(&mut input, a.q_key.into());
            } else {
                qpc::RRE.within(q).set(&mut input, a.remote_read.into());
                qpc::RWE.within(q).set(&mut input, a.remote_write.into());
            }
        }
        Transition::Init2Rtr if datagram => {
            mask = opt::PKEY_INDEX | opt::Q_KEY;
            ads::PKEY_INDEX
                .within(path)
                .set(&mut input, a.pkey_index.into());
            qpc::Q_KEY.within(q).set(&mut input, a.q_key.into());
        }
        Transition::Init2Rtr => {
            qpc::MTU.within(q).set(&mut input, a.mtu.into());
            qpc::LOG_MSG_MAX.within(q).set(&mut input, 30);
            qpc::REMOTE_QPN
                .within(q)
                .set(&mut input, a.remote_qpn.into());
            ads::RLID.within(path).set(&mut input, a.rlid.into());
            ads::SL.within(path).set(&mut input, a.sl.into());
            ads::STAT_RATE
                .within(path)
                .set(&mut input, a.stat_rate.into());
            ads::VHCA_PORT_NUM
                .within(path)
                .set(&mut input, a.port.into());
            ads::PKEY_INDEX
                .within(path)
                .set(&mut input, a.pkey_index.into());
            qpc::NEXT_RCV_PSN.within(q).set(&mut input, a.rq_psn.into());
            qpc::LOG_RRA_MAX
                .within(q)
                .set(&mut input, a.log_rra_max.into());
            qpc::MIN_RNR_NAK
                .within(q)
                .set(&mut input, a.min_rnr_nak.into());
        }
        Transition::Rtr2Rts => {
            qpc::NEXT_SEND_PSN
                .within(q)
                .set(&mut input, a.sq_psn.into());
            if !datagram {
                qpc::RETRY_COUNT
                    .within(q)
                    .set(&mut input, a.retry_count.into());
                qpc::RNR_RETRY.within(q).set(&mut input, a.rnr_retry.into());
                qpc::LOG_SRA_MAX
                    .within(q)
                    .set(&mut input, a.log_sra_max.into());
                ads::ACK_TIMEOUT
                    .within(path)
                    .set(&mut input, a.ack_timeout.into());
            }
        }
        Transition::ToErr | Transition::ToRst => {}
    }
    rst2init_qp_in::OPT_PARAM_MASK.set(&mut input, mask.into());
    let mut out = [0u8; 16];
    cmd.exec(hal, dma, &input, &mut out)
}

/// Destroys an object: `op` is one of DESTROY_QP/CQ/EQ/MKEY, DEALLOC_PD/UAR.
pub fn destroy<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    op: u16,
    number: u32,
) -> Result<(), CmdError> {
    let field = match op {
        opcode::DESTROY_EQ => destroy_eq_in::EQ_NUMBER,
        opcode::DESTROY_MKEY => destroy_mkey_in::MKEY_INDEX,
        opcode::DEALLOC_PD => dealloc_pd_in::PD,
        opcode::DEALLOC_UAR => dealloc_uar_in::UAR,
        opcode::DESTROY_CQ => destroy_cq_in::CQN,
        _ => destroy_qp_in::QPN,
    };
    cmd.exec_short(hal, dma, op, 0, Some((field, number.into())))
        .map(|_| ())
}

/// MAD_IFC: hands a 256-byte MAD to the port's own management agents (the local
/// subnet management agent answers PortInfo) and returns the response MAD.
pub fn mad_ifc<H: Hal>(
    cmd: &mut CmdIf,
    hal: &H,
    dma: &DmaRegion,
    port: u8,
    mad: &[u8; 256],
) -> Result<[u8; 256], CmdError> {
    let mut input = [0u8; objects::mad_ifc_in::SIZE];
    header(&mut input, opcode::MAD_IFC, 0b11); // ignore M_Key and B_Key: local query
    mad_ifc_in::PORT.set(&mut input, port.into());
    // Both 256-byte fields lie inside their structures (checked where `ifc` defines
    // them), and the buffers are those structures' size.
    bytes::put(&mut input, mad_ifc_in::MAD.byte(), mad);
    let mut out = [0u8; objects::mad_ifc_out::SIZE];
    cmd.exec(hal, dma, &input, &mut out)?;
    Ok(bytes::read(&out, mad_ifc_out::RESPONSE_MAD_PACKET.byte()).unwrap_or([0; 256]))
}
