//! Work-queue entries and completion-queue entries: byte layouts of the WQE segments
//! and of the 64-byte CQE (PRM "Work Queues" and "Completion Queues"; reference/
//! mlx5.md §C.10, §C.12), how to build the segments, and how to read a CQE.
//!
//! The layouts are those rdma-core's `infiniband/mlx5dv.h` gives (byte-oriented); each
//! member is checked against that header by `tests/dv_oracle.rs` through [`DV`].
//! Parsing never panics: every read is of a fixed array at constant offsets.

use crate::bytes;

/// A member of a byte-oriented structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member as C names it (a path for nested members).
    pub c: &'static str,
    /// Byte offset.
    pub offset: usize,
    /// Size in bytes.
    pub len: usize,
}

/// A byte-oriented structure of `mlx5dv.h`.
#[derive(Clone, Copy, Debug)]
pub struct DvStruct {
    /// C name (`struct <name>`).
    pub name: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// Members checked against the header.
    pub members: &'static [Member],
}

const fn m(c: &'static str, offset: usize, len: usize) -> Member {
    Member { c, offset, len }
}

/// Control segment (16 bytes): first segment of every send WQE.
pub mod ctrl {
    /// opmod (31:24) | WQE index (23:8) | opcode (7:0).
    pub const OPMOD_IDX_OPCODE: usize = 0;
    /// QPN (31:8) | DS, the WQE's size in 16-byte units (5:0).
    pub const QPN_DS: usize = 4;
    /// Fence mode (7:5) | completion event mode (3:2) | solicited (1).
    pub const FM_CE_SE: usize = 11;
    /// Immediate data.
    pub const IMM: usize = 12;
    /// Size.
    pub const LEN: usize = 16;
}

/// Address vector of a UD send (the datagram segment, 48 bytes).
pub mod av {
    /// Q_Key.
    pub const QKEY: usize = 0;
    /// Extended-AV flag (bit 31) | destination QPN (23:0).
    pub const DQP_DCT: usize = 8;
    /// Static rate (7:4) | SL (3:0).
    pub const STAT_RATE_SL: usize = 12;
    /// Source path bits (6:0).
    pub const FL_MLID: usize = 13;
    /// Destination LID.
    pub const RLID: usize = 14;
    /// Traffic class (GRH).
    pub const TCLASS: usize = 26;
    /// Hop limit (GRH).
    pub const HOP_LIMIT: usize = 27;
    /// GRH present (bit 30) | SGID index (27:20) | flow label (19:0).
    pub const GRH_GID_FL: usize = 28;
    /// Destination GID.
    pub const RGID: usize = 32;
    /// Size.
    pub const LEN: usize = 48;
    /// The extended-AV flag in `dqp_dct`.
    pub const EXTENDED: u32 = 1 << 31;
}

/// Data (scatter/gather) segment, 16 bytes.
pub mod data {
    /// Byte count (for inline data: count | [`super::INLINE`]).
    pub const BYTE_COUNT: usize = 0;
    /// Local key.
    pub const LKEY: usize = 4;
    /// Address.
    pub const ADDR: usize = 8;
    /// Size.
    pub const LEN: usize = 16;
}

/// Remote-address segment (RDMA), 16 bytes.
pub mod raddr {
    /// Remote virtual address.
    pub const RADDR: usize = 0;
    /// Remote key.
    pub const RKEY: usize = 8;
    /// Size.
    pub const LEN: usize = 16;
}

/// Marks an inline data segment's byte count.
pub const INLINE: u32 = 0x8000_0000;
/// Terminates a receive scatter list shorter than the stride (MLX5_INVALID_LKEY).
pub const INVALID_LKEY: u32 = 0x100;
/// Bytes of a send WQE basic block.
pub const WQEBB: usize = 64;
/// Bytes of the GRH slot that starts every UD receive.
pub const GRH_BYTES: usize = 40;

/// Send opcodes (ctrl segment bits 7:0).
pub mod opcode {
    #![allow(missing_docs)]
    pub const NOP: u8 = 0x00;
    pub const RDMA_WRITE: u8 = 0x08;
    pub const SEND: u8 = 0x0A;
    pub const SEND_IMM: u8 = 0x0B;
    pub const RDMA_READ: u8 = 0x10;
}

/// `fm_ce_se`: generate a CQE for this WQE.
pub const CE_ALWAYS: u8 = 2 << 2;

/// The 64-byte CQE (and the error CQE that shares it).
pub mod cqe {
    /// Source LID (receive).
    pub const SLID: usize = 22;
    /// GRH (29:28) | SL (27:24) | source QPN (23:0) (receive).
    pub const FLAGS_RQPN: usize = 24;
    /// Immediate, invalidated rkey, or P_Key index (QP1 receives).
    pub const IMM_INVAL_PKEY: usize = 36;
    /// Bytes received.
    pub const BYTE_CNT: usize = 44;
    /// Requester: WQE opcode (31:24) | QPN (23:0).
    pub const SOP_DROP_QPN: usize = 56;
    /// Index of the completed WQE (send: its first WQEBB; receive: the RQ index).
    pub const WQE_COUNTER: usize = 60;
    /// Opcode (7:4) | owner (0).
    pub const OP_OWN: usize = 63;
    /// Error CQE: vendor syndrome.
    pub const VENDOR_ERR_SYND: usize = 54;
    /// Error CQE: syndrome.
    pub const SYNDROME: usize = 55;
    /// Size.
    pub const LEN: usize = 64;
}

/// Every byte-oriented layout, for the oracle test against `mlx5dv.h`.
pub const DV: &[DvStruct] = &[
    DvStruct {
        name: "mlx5_wqe_ctrl_seg",
        size: ctrl::LEN,
        members: &[
            m("opmod_idx_opcode", ctrl::OPMOD_IDX_OPCODE, 4),
            m("qpn_ds", ctrl::QPN_DS, 4),
            m("fm_ce_se", ctrl::FM_CE_SE, 1),
            m("imm", ctrl::IMM, 4),
        ],
    },
    DvStruct {
        name: "mlx5_wqe_av",
        size: av::LEN,
        members: &[
            m("key.qkey.qkey", av::QKEY, 4),
            m("dqp_dct", av::DQP_DCT, 4),
            m("stat_rate_sl", av::STAT_RATE_SL, 1),
            m("fl_mlid", av::FL_MLID, 1),
            m("rlid", av::RLID, 2),
            m("tclass", av::TCLASS, 1),
            m("hop_limit", av::HOP_LIMIT, 1),
            m("grh_gid_fl", av::GRH_GID_FL, 4),
            m("rgid", av::RGID, 16),
        ],
    },
    DvStruct {
        name: "mlx5_wqe_data_seg",
        size: data::LEN,
        members: &[
            m("byte_count", data::BYTE_COUNT, 4),
            m("lkey", data::LKEY, 4),
            m("addr", data::ADDR, 8),
        ],
    },
    DvStruct {
        name: "mlx5_wqe_inl_data_seg",
        size: 4,
        members: &[m("byte_count", 0, 4)],
    },
    DvStruct {
        name: "mlx5_wqe_raddr_seg",
        size: raddr::LEN,
        members: &[m("raddr", raddr::RADDR, 8), m("rkey", raddr::RKEY, 4)],
    },
    DvStruct {
        name: "mlx5_cqe64",
        size: cqe::LEN,
        members: &[
            m("slid", cqe::SLID, 2),
            m("flags_rqpn", cqe::FLAGS_RQPN, 4),
            m("imm_inval_pkey", cqe::IMM_INVAL_PKEY, 4),
            m("byte_cnt", cqe::BYTE_CNT, 4),
            m("sop_drop_qpn", cqe::SOP_DROP_QPN, 4),
            m("wqe_counter", cqe::WQE_COUNTER, 2),
            m("op_own", cqe::OP_OWN, 1),
        ],
    },
    DvStruct {
        name: "mlx5_err_cqe",
        size: cqe::LEN,
        members: &[
            m("vendor_err_synd", cqe::VENDOR_ERR_SYND, 1),
            m("syndrome", cqe::SYNDROME, 1),
            m("s_wqe_opcode_qpn", cqe::SOP_DROP_QPN, 4),
            m("wqe_counter", cqe::WQE_COUNTER, 2),
            m("op_own", cqe::OP_OWN, 1),
        ],
    },
];

fn put32(buf: &mut [u8], at: usize, v: u32) {
    bytes::put(buf, at, &v.to_be_bytes());
}

fn put64(buf: &mut [u8], at: usize, v: u64) {
    bytes::put(buf, at, &v.to_be_bytes());
}

fn get32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

fn get16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u16::from_be_bytes)
}

/// Writes a control segment into `seg`.
pub fn write_ctrl(seg: &mut [u8], opcode: u8, wqe_index: u16, qpn: u32, ds: u8, imm: u32) {
    put32(
        seg,
        ctrl::OPMOD_IDX_OPCODE,
        u32::from(wqe_index) << 8 | u32::from(opcode),
    );
    put32(
        seg,
        ctrl::QPN_DS,
        (qpn & 0xFF_FFFF) << 8 | u32::from(ds & 0x3F),
    );
    if let Some(b) = seg.get_mut(8..ctrl::FM_CE_SE) {
        b.fill(0);
    }
    if let Some(b) = seg.get_mut(ctrl::FM_CE_SE) {
        *b = CE_ALWAYS;
    }
    put32(seg, ctrl::IMM, imm);
}

/// Where a UD send goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressVector {
    /// Destination QP.
    pub dqpn: u32,
    /// Q_Key.
    pub qkey: u32,
    /// Destination LID.
    pub dlid: u16,
    /// Service level.
    pub sl: u8,
    /// Source path bits.
    pub path_bits: u8,
}

/// Writes a datagram segment (48 bytes) into `seg`.
pub fn write_av(seg: &mut [u8], a: &AddressVector) {
    if let Some(s) = seg.get_mut(..av::LEN) {
        s.fill(0);
    }
    put32(seg, av::QKEY, a.qkey);
    put32(seg, av::DQP_DCT, av::EXTENDED | (a.dqpn & 0xFF_FFFF));
    if let Some(b) = seg.get_mut(av::STAT_RATE_SL) {
        *b = a.sl & 0xF;
    }
    if let Some(b) = seg.get_mut(av::FL_MLID) {
        *b = a.path_bits & 0x7F;
    }
    bytes::put(seg, av::RLID, &a.dlid.to_be_bytes());
}

/// Writes a data (pointer) segment into `seg`.
pub fn write_data(seg: &mut [u8], len: u32, lkey: u32, addr: u64) {
    put32(seg, data::BYTE_COUNT, len & !INLINE);
    put32(seg, data::LKEY, lkey);
    put64(seg, data::ADDR, addr);
}

/// CQE opcodes (`op_own` bits 7:4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CqeOpcode {
    /// A send (requester) completed.
    Req,
    /// A send was received.
    RespSend,
    /// A send with immediate was received.
    RespSendImm,
    /// A requester error.
    ReqErr,
    /// A responder error.
    RespErr,
    /// Software's initial value: no completion here.
    Invalid,
    /// Anything else (kept for the error report).
    Other(u8),
}

impl From<u8> for CqeOpcode {
    fn from(v: u8) -> Self {
        match v {
            0 => CqeOpcode::Req,
            2 => CqeOpcode::RespSend,
            3 => CqeOpcode::RespSendImm,
            13 => CqeOpcode::ReqErr,
            14 => CqeOpcode::RespErr,
            15 => CqeOpcode::Invalid,
            other => CqeOpcode::Other(other),
        }
    }
}

/// A completion, read from a CQE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// What completed.
    pub opcode: CqeOpcode,
    /// The QP it belongs to.
    pub qpn: u32,
    /// The completed WQE's index.
    pub wqe_counter: u16,
    /// Bytes received (receives).
    pub byte_cnt: u32,
    /// Sender's QP (UD receives).
    pub src_qpn: u32,
    /// Sender's LID (receives).
    pub slid: u16,
    /// Service level (receives).
    pub sl: u8,
    /// Whether a GRH arrived (receives).
    pub grh: bool,
    /// P_Key index (QP1 receives) or immediate data.
    pub imm_or_pkey: u32,
    /// Error syndrome and vendor syndrome (error CQEs only).
    pub error: Option<(u8, u8)>,
}

impl Completion {
    /// Whether this completion reports an error.
    pub fn is_error(&self) -> bool {
        matches!(self.opcode, CqeOpcode::ReqErr | CqeOpcode::RespErr)
    }
}

/// Reads a CQE (whose ownership the caller has checked).
pub fn parse_cqe(e: &[u8; cqe::LEN]) -> Completion {
    let op_own = e[cqe::OP_OWN];
    let opcode = CqeOpcode::from(op_own >> 4);
    let flags = get32(e, cqe::FLAGS_RQPN);
    let error = matches!(opcode, CqeOpcode::ReqErr | CqeOpcode::RespErr)
        .then(|| (e[cqe::SYNDROME], e[cqe::VENDOR_ERR_SYND]));
    Completion {
        opcode,
        qpn: get32(e, cqe::SOP_DROP_QPN) & 0xFF_FFFF,
        wqe_counter: get16(e, cqe::WQE_COUNTER),
        byte_cnt: get32(e, cqe::BYTE_CNT),
        src_qpn: flags & 0xFF_FFFF,
        slid: get16(e, cqe::SLID),
        sl: ((flags >> 24) & 0xF) as u8,
        grh: (flags >> 28) & 0x3 != 0,
        imm_or_pkey: get32(e, cqe::IMM_INVAL_PKEY),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_ud_send_like_the_prm_describes() {
        let mut w = [0xA5u8; 80];
        write_ctrl(&mut w[..16], opcode::SEND, 0x0102, 0x00_0123, 5, 0);
        write_av(
            &mut w[16..64],
            &AddressVector {
                dqpn: 1,
                qkey: 0x8001_0000,
                dlid: 0x0011,
                sl: 3,
                path_bits: 0,
            },
        );
        write_data(&mut w[64..80], 256, 0x0001_0042, 0x1_0000_2000);
        assert_eq!(w[..4], [0x00, 0x01, 0x02, 0x0A]);
        assert_eq!(w[4..8], [0x00, 0x01, 0x23, 0x05]);
        assert_eq!(w[8..11], [0, 0, 0], "signature and stream id cleared");
        assert_eq!(w[11], 0x08, "CQE always");
        assert_eq!(w[16..20], [0x80, 0x01, 0x00, 0x00]);
        assert_eq!(
            w[16 + 8..16 + 12],
            [0x80, 0x00, 0x00, 0x01],
            "extended AV, QP1"
        );
        assert_eq!(w[16 + 12], 3);
        assert_eq!(w[16 + 14..16 + 16], [0x00, 0x11]);
        assert_eq!(w[64..68], [0, 0, 1, 0]);
        assert_eq!(w[72..80], [0, 0, 0, 1, 0, 0, 0x20, 0]);
    }

    #[test]
    fn reads_receive_and_error_completions() {
        let mut e = [0u8; 64];
        e[cqe::OP_OWN] = 2 << 4 | 1;
        e[cqe::SLID..cqe::SLID + 2].copy_from_slice(&0x0022u16.to_be_bytes());
        e[cqe::FLAGS_RQPN..cqe::FLAGS_RQPN + 4]
            .copy_from_slice(&(0x2 << 28 | 5 << 24 | 1u32).to_be_bytes());
        e[cqe::BYTE_CNT..cqe::BYTE_CNT + 4].copy_from_slice(&296u32.to_be_bytes());
        e[cqe::SOP_DROP_QPN..cqe::SOP_DROP_QPN + 4].copy_from_slice(&0x0000_0100u32.to_be_bytes());
        e[cqe::WQE_COUNTER..cqe::WQE_COUNTER + 2].copy_from_slice(&7u16.to_be_bytes());
        let c = parse_cqe(&e);
        assert_eq!(c.opcode, CqeOpcode::RespSend);
        assert_eq!(
            (c.qpn, c.src_qpn, c.slid, c.sl, c.grh),
            (0x100, 1, 0x22, 5, true)
        );
        assert_eq!((c.byte_cnt, c.wqe_counter, c.error), (296, 7, None));
        e[cqe::OP_OWN] = 13 << 4;
        e[cqe::SYNDROME] = 0x05;
        e[cqe::VENDOR_ERR_SYND] = 0xF9;
        assert_eq!(parse_cqe(&e).error, Some((0x05, 0xF9)));
        assert_eq!(CqeOpcode::from(9), CqeOpcode::Other(9));
    }
}
