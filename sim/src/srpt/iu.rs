//! SRP information units and data buffer descriptors, as the target receives and sends
//! them over an RDMA channel (SRP r16a §6; SRP-2 for immediate data; byte layouts in
//! reference/srp-cm-sa-dm.md §1.1 and §1.2, which match Linux `include/scsi/srp.h`).
//!
//! Each IU has a `Repr` with `parse(&[u8])` (never panics, on any input), `emit(&mut
//! [u8])` (writes every byte of its `buffer_len()`, reserved bytes as zero; panics only
//! if the buffer is shorter, as its `# Panics` section says) and, for fixed-size IUs,
//! `LEN`. Byte 0 of every IU is its opcode ([`opcode`]). Multi-byte fields are
//! big-endian.

use core::fmt;

use super::be;
use crate::target::Residual;

/// IU opcodes, byte 0 of every IU (SRP r16a §6; reference §1.1).
pub mod opcode {
    /// SRP_LOGIN_REQ (carried in the CM REQ private data, not over the channel).
    pub const LOGIN_REQ: u8 = 0x00;
    /// SRP_TSK_MGMT.
    pub const TSK_MGMT: u8 = 0x01;
    /// SRP_CMD.
    pub const CMD: u8 = 0x02;
    /// SRP_I_LOGOUT.
    pub const I_LOGOUT: u8 = 0x03;
    /// SRP_T_LOGOUT.
    pub const T_LOGOUT: u8 = 0x80;
    /// SRP_CRED_REQ.
    pub const CRED_REQ: u8 = 0x81;
    /// SRP_AER_REQ.
    pub const AER_REQ: u8 = 0x82;
    /// SRP_CRED_RSP.
    pub const CRED_RSP: u8 = 0x41;
    /// SRP_AER_RSP.
    pub const AER_RSP: u8 = 0x42;
    /// SRP_LOGIN_RSP (in the CM REP private data).
    pub const LOGIN_RSP: u8 = 0xC0;
    /// SRP_RSP.
    pub const RSP: u8 = 0xC1;
    /// SRP_LOGIN_REJ (in the CM REJ private data).
    pub const LOGIN_REJ: u8 = 0xC2;
}

/// Bits of REQUIRED / SUPPORTED BUFFER FORMATS in SRP_LOGIN_REQ, _RSP and _REJ
/// (reference §1.1 and §1.2).
pub mod buf_fmt {
    /// DDBD: direct data buffer descriptors.
    pub const DIRECT: u16 = 0x0002;
    /// IDBD: indirect data buffer descriptors.
    pub const INDIRECT: u16 = 0x0004;
}

/// Per-command buffer format nibble values in SRP_CMD byte 5 (reference §1.1, §1.2).
pub mod data_fmt {
    /// No data buffer.
    pub const NONE: u8 = 0;
    /// One direct descriptor.
    pub const DIRECT: u8 = 1;
    /// An indirect descriptor header and its inline descriptors.
    pub const INDIRECT: u8 = 2;
    /// Immediate data (SRP-2, DATA-OUT only).
    pub const IMMEDIATE: u8 = 3;
}

/// SRP_LOGIN_REQ flag bits (byte 26) and SRP_LOGIN_RSP flag bits (byte 26).
pub mod login_flags {
    /// MULTI-CHANNEL ACTION mask (request) / multichannel result mask (response).
    pub const MULTICHANNEL_MASK: u8 = 0x03;
    /// Request: terminate the other channels of this I_T nexus.
    pub const MULTICHANNEL_SINGLE: u8 = 0;
    /// Request: keep the other channels.
    pub const MULTICHANNEL_MULTI: u8 = 1;
    /// Response: there was no existing channel.
    pub const RESULT_NO_CHANNEL: u8 = 0;
    /// Response: existing channels were terminated.
    pub const RESULT_TERMINATED: u8 = 1;
    /// Response: existing channels are maintained.
    pub const RESULT_MAINTAINED: u8 = 2;
    /// Request: solicited notification wanted on SRP_T_LOGOUT.
    pub const LOSOLNT: u8 = 0x10;
    /// Request: solicited notification wanted on SRP_CRED_REQ.
    pub const CRSOLNT: u8 = 0x20;
    /// Request: solicited notification wanted on SRP_AER_REQ.
    pub const AESOLNT: u8 = 0x40;
    /// Request: IMMEDIATE DATA REQUESTED; response: IMMEDIATE DATA SUPPORTED (SRP-2).
    pub const IMMEDIATE: u8 = 0x80;
}

/// SRP_LOGIN_REJ reason codes (reference §1.1, "Reject reasons").
pub mod rej_reason {
    /// Unable to establish the RDMA channel, no reason given.
    pub const NO_REASON: u32 = 0x0001_0000;
    /// Insufficient resources.
    pub const INSUFFICIENT_RESOURCES: u32 = 0x0001_0001;
    /// Requested maximum initiator-to-target IU length too large (ib_srpt also uses it
    /// for a length below 64).
    pub const IT_IU_LEN_TOO_LARGE: u32 = 0x0001_0002;
    /// Unable to associate the channel with an I_T nexus (ib_srpt: wrong target port ID).
    pub const UNABLE_TO_ASSOCIATE: u32 = 0x0001_0003;
    /// Requested descriptor formats not supported.
    pub const DESCRIPTOR_FORMATS: u32 = 0x0001_0004;
    /// Multichannel not supported.
    pub const MULTICHANNEL: u32 = 0x0001_0005;
    /// Channel limit reached (ib_srpt also: no ACL for the initiator).
    pub const CHANNEL_LIMIT: u32 = 0x0001_0006;
}

/// SRP_RSP flag bits, byte 18 (reference §1.1).
pub mod rsp_flags {
    /// RESPONSE DATA is valid.
    pub const RSPVALID: u8 = 0x01;
    /// SENSE DATA is valid.
    pub const SNSVALID: u8 = 0x02;
    /// DATA-OUT overflow.
    pub const DOOVER: u8 = 0x04;
    /// DATA-OUT underflow.
    pub const DOUNDER: u8 = 0x08;
    /// DATA-IN overflow.
    pub const DIOVER: u8 = 0x10;
    /// DATA-IN underflow.
    pub const DIUNDER: u8 = 0x20;
}

/// Task management function codes, SRP_TSK_MGMT byte 30 (reference §1.1).
pub mod tsk_fn {
    /// ABORT TASK.
    pub const ABORT_TASK: u8 = 0x01;
    /// ABORT TASK SET.
    pub const ABORT_TASK_SET: u8 = 0x02;
    /// CLEAR TASK SET.
    pub const CLEAR_TASK_SET: u8 = 0x04;
    /// LOGICAL UNIT RESET.
    pub const LUN_RESET: u8 = 0x08;
    /// CLEAR ACA.
    pub const CLEAR_ACA: u8 = 0x40;
}

/// Task management RSP_CODE values, the fourth byte of SRP_RSP's response data (SRP
/// r16a Table 24; reference §1.1).
pub mod tsk_rsp {
    /// Task management function complete (or succeeded).
    pub const COMPLETE: u8 = 0x00;
    /// Task management function not supported.
    pub const NOT_SUPPORTED: u8 = 0x04;
    /// Task management function failed.
    pub const FAILED: u8 = 0x05;
}

/// Which of a command's two data buffers a descriptor error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// DATA-OUT: initiator to target (the target RDMA-reads it).
    DataOut,
    /// DATA-IN: target to initiator (the target RDMA-writes it).
    DataIn,
}

/// Why bytes are not an IU this layer accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IuError {
    /// A zero-length IU.
    Empty,
    /// The IU is shorter than its fixed part.
    Truncated {
        /// Opcode, byte 0.
        opcode: u8,
        /// Bytes the fixed part needs.
        needed: usize,
        /// Bytes there are.
        got: usize,
    },
    /// Byte 0 is not the opcode the parser was asked for, or no opcode at all.
    UnknownOpcode(u8),
    /// A buffer format nibble that is not defined for its direction (4..15, or
    /// immediate for DATA-IN).
    BadFormat {
        /// The buffer.
        dir: Dir,
        /// The nibble.
        format: u8,
    },
    /// A descriptor count that does not fit the buffer format: non-zero without a
    /// buffer, above 1 for a direct descriptor, zero for an indirect table.
    BadCount {
        /// The buffer.
        dir: Dir,
        /// Its format nibble.
        format: u8,
        /// DATA-OUT or DATA-IN DESCRIPTOR COUNT.
        count: u8,
    },
    /// The additional CDB bytes or the descriptors run past the end of the IU.
    BeyondIu {
        /// Bytes the CDB and descriptors need.
        needed: usize,
        /// Length of the IU.
        got: usize,
    },
    /// The indirect table descriptor lists more entries than the IU carries inline: the
    /// rest would have to be fetched from initiator memory, which ib_srpt does not do
    /// (reference §1.2).
    ExternalTable {
        /// The buffer.
        dir: Dir,
        /// Entries in the table (its length / 16).
        entries: u32,
        /// Entries inline (the descriptor count).
        inline: u8,
    },
    /// The indirect table descriptor's length is not a multiple of 16 or lists fewer
    /// entries than the descriptor count.
    TableLength {
        /// The buffer.
        dir: Dir,
        /// The table descriptor's length field.
        table_len: u32,
        /// The descriptor count.
        count: u8,
    },
    /// The indirect header's TOTAL LENGTH is not the sum of its descriptors' lengths.
    TotalLength {
        /// The buffer.
        dir: Dir,
        /// TOTAL LENGTH.
        total: u32,
        /// Sum of the descriptor lengths.
        sum: u64,
    },
}

impl fmt::Display for IuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IuError::Empty => write!(f, "empty IU"),
            IuError::Truncated {
                opcode,
                needed,
                got,
            } => write!(f, "IU {opcode:#04x}: {got} bytes where {needed} are needed"),
            IuError::UnknownOpcode(op) => write!(f, "unexpected IU opcode {op:#04x}"),
            IuError::BadFormat { dir, format } => {
                write!(f, "{dir:?} buffer format {format} not defined")
            }
            IuError::BadCount { dir, format, count } => {
                write!(f, "{dir:?} descriptor count {count} with format {format}")
            }
            IuError::BeyondIu { needed, got } => {
                write!(
                    f,
                    "CDB and descriptors need {needed} bytes, the IU has {got}"
                )
            }
            IuError::ExternalTable {
                dir,
                entries,
                inline,
            } => write!(
                f,
                "{dir:?} indirect table of {entries} entries, only {inline} inline"
            ),
            IuError::TableLength {
                dir,
                table_len,
                count,
            } => write!(
                f,
                "{dir:?} indirect table length {table_len} with {count} descriptors"
            ),
            IuError::TotalLength { dir, total, sum } => write!(
                f,
                "{dir:?} TOTAL LENGTH {total}, descriptors add up to {sum}"
            ),
        }
    }
}

impl std::error::Error for IuError {}

/// `Ok(())` if `buf` holds the `needed`-byte fixed part of an IU with `opcode`.
fn check(buf: &[u8], opcode: u8, needed: usize) -> Result<(), IuError> {
    match buf.first() {
        None => Err(IuError::Empty),
        Some(&op) if op != opcode => Err(IuError::UnknownOpcode(op)),
        Some(_) if buf.len() < needed => Err(IuError::Truncated {
            opcode,
            needed,
            got: buf.len(),
        }),
        Some(_) => Ok(()),
    }
}

/// The 64-bit tag at bytes 8..16 of an IU of at least 16 bytes (every IU but the
/// login response and reject has it there; reference §1.1).
pub fn tag_of(iu: &[u8]) -> Option<u64> {
    (iu.len() >= 16).then(|| be::u64_at(iu, 8))
}

mod field {
    //! Byte offsets, reference §1.1 and §1.2.
    use core::ops::Range;

    pub const OPCODE: usize = 0;
    pub const TAG: Range<usize> = 8..16;

    pub mod login_req {
        use core::ops::Range;
        pub const IT_IU_LEN: Range<usize> = 16..20;
        pub const BUF_FMT: Range<usize> = 24..26;
        pub const FLAGS: usize = 26;
        pub const IMM_OFFSET: Range<usize> = 28..30;
        pub const I_PORT_ID: Range<usize> = 32..48;
        pub const T_PORT_ID: Range<usize> = 48..64;
    }

    pub mod login_rsp {
        use core::ops::Range;
        pub const REQ_LIM_DELTA: Range<usize> = 4..8;
        pub const MAX_IT_IU_LEN: Range<usize> = 16..20;
        pub const MAX_TI_IU_LEN: Range<usize> = 20..24;
        pub const BUF_FMT: Range<usize> = 24..26;
        pub const FLAGS: usize = 26;
        pub const END: usize = 52;
    }

    pub mod login_rej {
        use core::ops::Range;
        pub const REASON: Range<usize> = 4..8;
        pub const BUF_FMT: Range<usize> = 24..26;
        pub const END: usize = 32;
    }

    pub mod logout {
        use core::ops::Range;
        pub const SOL_NOT: usize = 1;
        pub const REASON: Range<usize> = 4..8;
        pub const END: usize = 16;
    }

    pub mod tsk {
        use core::ops::Range;
        pub const SOL_NOT: usize = 1;
        pub const LUN: Range<usize> = 20..28;
        pub const FUNCTION: usize = 30;
        pub const TASK_TAG: Range<usize> = 32..40;
        pub const END: usize = 48;
    }

    pub mod cmd {
        use core::ops::Range;
        pub const SOL_NOT: usize = 1;
        pub const BUF_FMT: usize = 5;
        pub const DO_COUNT: usize = 6;
        pub const DI_COUNT: usize = 7;
        pub const LUN: Range<usize> = 20..28;
        pub const TASK_ATTR: usize = 29;
        pub const ADD_CDB_LEN: usize = 31;
        pub const CDB: Range<usize> = 32..48;
        pub const END: usize = 48;
    }

    pub mod rsp {
        use core::ops::Range;
        pub const SOL_NOT: usize = 1;
        pub const REQ_LIM_DELTA: Range<usize> = 4..8;
        pub const FLAGS: usize = 18;
        pub const STATUS: usize = 19;
        pub const DO_RESID: Range<usize> = 20..24;
        pub const DI_RESID: Range<usize> = 24..28;
        pub const SENSE_LEN: Range<usize> = 28..32;
        pub const RESP_LEN: Range<usize> = 32..36;
        pub const END: usize = 36;
    }

    pub mod cred {
        use core::ops::Range;
        pub const SOL_NOT: usize = 1;
        pub const REQ_LIM_DELTA: Range<usize> = 4..8;
        pub const END: usize = 16;
    }

    pub mod aer {
        use core::ops::Range;
        pub const SOL_NOT: usize = 1;
        pub const REQ_LIM_DELTA: Range<usize> = 4..8;
        pub const LUN: Range<usize> = 20..28;
        pub const SENSE_LEN: Range<usize> = 28..32;
        pub const END: usize = 36;
    }

    pub mod desc {
        use core::ops::Range;
        pub const VA: Range<usize> = 0..8;
        pub const KEY: Range<usize> = 8..12;
        pub const LEN: Range<usize> = 12..16;
        pub const END: usize = 16;
        /// Indirect header: table descriptor (16), TOTAL LENGTH (4), then inline
        /// descriptors.
        pub const TOTAL_LEN: Range<usize> = 16..20;
        pub const INDIRECT_HEADER: usize = 20;
        /// Immediate data descriptor: the data length only.
        pub const IMM_LEN: Range<usize> = 0..4;
        pub const IMMEDIATE: usize = 4;
    }
}

/// Writes `opcode` and zeroes the rest of `buf[..len]`.
fn start(buf: &mut [u8], opcode: u8, len: usize) {
    buf[..len].fill(0);
    buf[field::OPCODE] = opcode;
}

/// A direct data buffer descriptor: virtual address, memory key, length (reference
/// §1.2; SRP r16a §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DirectDesc {
    /// Virtual address of the buffer in initiator memory.
    pub va: u64,
    /// R_Key of the memory region.
    pub rkey: u32,
    /// Length in bytes.
    pub len: u32,
}

impl DirectDesc {
    /// Bytes on the wire.
    pub const LEN: usize = field::desc::END;

    /// Reads a descriptor at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Option<DirectDesc> {
        (buf.len() >= Self::LEN).then(|| DirectDesc {
            va: be::u64_at(buf, field::desc::VA.start),
            rkey: be::u32_at(buf, field::desc::KEY.start),
            len: be::u32_at(buf, field::desc::LEN.start),
        })
    }

    /// Writes the descriptor into the first [`DirectDesc::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`DirectDesc::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        be::put_u64(buf, field::desc::VA.start, self.va);
        be::put_u32(buf, field::desc::KEY.start, self.rkey);
        be::put_u32(buf, field::desc::LEN.start, self.len);
    }
}

/// SRP_LOGIN_REQ, 64 bytes (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginReq {
    /// Tag, echoed in the response or reject.
    pub tag: u64,
    /// REQUESTED MAX INITIATOR-TO-TARGET IU LENGTH.
    pub req_it_iu_len: u32,
    /// REQUIRED BUFFER FORMATS ([`buf_fmt`] bits).
    pub req_buf_fmt: u16,
    /// Flags byte ([`login_flags`]).
    pub flags: u8,
    /// IMMEDIATE DATA OFFSET (SRP-2).
    pub imm_data_offset: u16,
    /// INITIATOR PORT IDENTIFIER.
    pub initiator_port_id: [u8; 16],
    /// TARGET PORT IDENTIFIER.
    pub target_port_id: [u8; 16],
}

impl LoginReq {
    /// Bytes on the wire.
    pub const LEN: usize = field::login_req::T_PORT_ID.end;

    /// Reads an SRP_LOGIN_REQ (bytes past [`LoginReq::LEN`] are ignored).
    pub fn parse(buf: &[u8]) -> Result<LoginReq, IuError> {
        use field::login_req as f;
        check(buf, opcode::LOGIN_REQ, Self::LEN)?;
        Ok(LoginReq {
            tag: be::u64_at(buf, field::TAG.start),
            req_it_iu_len: be::u32_at(buf, f::IT_IU_LEN.start),
            req_buf_fmt: be::u16_at(buf, f::BUF_FMT.start),
            flags: buf[f::FLAGS],
            imm_data_offset: be::u16_at(buf, f::IMM_OFFSET.start),
            initiator_port_id: be::array(buf, f::I_PORT_ID.start),
            target_port_id: be::array(buf, f::T_PORT_ID.start),
        })
    }

    /// The MULTI-CHANNEL ACTION code.
    pub fn multichannel_action(&self) -> u8 {
        self.flags & login_flags::MULTICHANNEL_MASK
    }

    /// Writes the IU into the first [`LoginReq::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`LoginReq::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::login_req as f;
        start(buf, opcode::LOGIN_REQ, Self::LEN);
        be::put_u64(buf, field::TAG.start, self.tag);
        be::put_u32(buf, f::IT_IU_LEN.start, self.req_it_iu_len);
        be::put_u16(buf, f::BUF_FMT.start, self.req_buf_fmt);
        buf[f::FLAGS] = self.flags;
        be::put_u16(buf, f::IMM_OFFSET.start, self.imm_data_offset);
        buf[f::I_PORT_ID].copy_from_slice(&self.initiator_port_id);
        buf[f::T_PORT_ID].copy_from_slice(&self.target_port_id);
    }
}

/// SRP_LOGIN_RSP, 52 bytes (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRsp {
    /// REQUEST LIMIT DELTA: the initial credits.
    pub req_lim_delta: u32,
    /// The login request's tag.
    pub tag: u64,
    /// MAX INITIATOR-TO-TARGET IU LENGTH.
    pub max_it_iu_len: u32,
    /// MAX TARGET-TO-INITIATOR IU LENGTH.
    pub max_ti_iu_len: u32,
    /// SUPPORTED BUFFER FORMATS ([`buf_fmt`] bits).
    pub sup_buf_fmt: u16,
    /// Flags byte: multichannel result in bits 1..0, [`login_flags::IMMEDIATE`].
    pub flags: u8,
}

impl LoginRsp {
    /// Bytes on the wire.
    pub const LEN: usize = field::login_rsp::END;

    /// Reads an SRP_LOGIN_RSP.
    pub fn parse(buf: &[u8]) -> Result<LoginRsp, IuError> {
        use field::login_rsp as f;
        check(buf, opcode::LOGIN_RSP, Self::LEN)?;
        Ok(LoginRsp {
            req_lim_delta: be::u32_at(buf, f::REQ_LIM_DELTA.start),
            tag: be::u64_at(buf, field::TAG.start),
            max_it_iu_len: be::u32_at(buf, f::MAX_IT_IU_LEN.start),
            max_ti_iu_len: be::u32_at(buf, f::MAX_TI_IU_LEN.start),
            sup_buf_fmt: be::u16_at(buf, f::BUF_FMT.start),
            flags: buf[f::FLAGS],
        })
    }

    /// Writes the IU into the first [`LoginRsp::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`LoginRsp::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::login_rsp as f;
        start(buf, opcode::LOGIN_RSP, Self::LEN);
        be::put_u32(buf, f::REQ_LIM_DELTA.start, self.req_lim_delta);
        be::put_u64(buf, field::TAG.start, self.tag);
        be::put_u32(buf, f::MAX_IT_IU_LEN.start, self.max_it_iu_len);
        be::put_u32(buf, f::MAX_TI_IU_LEN.start, self.max_ti_iu_len);
        be::put_u16(buf, f::BUF_FMT.start, self.sup_buf_fmt);
        buf[f::FLAGS] = self.flags;
    }
}

/// SRP_LOGIN_REJ, 32 bytes (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRej {
    /// Reason ([`rej_reason`]).
    pub reason: u32,
    /// The login request's tag.
    pub tag: u64,
    /// SUPPORTED BUFFER FORMATS.
    pub sup_buf_fmt: u16,
}

impl LoginRej {
    /// Bytes on the wire.
    pub const LEN: usize = field::login_rej::END;

    /// Reads an SRP_LOGIN_REJ.
    pub fn parse(buf: &[u8]) -> Result<LoginRej, IuError> {
        use field::login_rej as f;
        check(buf, opcode::LOGIN_REJ, Self::LEN)?;
        Ok(LoginRej {
            reason: be::u32_at(buf, f::REASON.start),
            tag: be::u64_at(buf, field::TAG.start),
            sup_buf_fmt: be::u16_at(buf, f::BUF_FMT.start),
        })
    }

    /// Writes the IU into the first [`LoginRej::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`LoginRej::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::login_rej as f;
        start(buf, opcode::LOGIN_REJ, Self::LEN);
        be::put_u32(buf, f::REASON.start, self.reason);
        be::put_u64(buf, field::TAG.start, self.tag);
        be::put_u16(buf, f::BUF_FMT.start, self.sup_buf_fmt);
    }
}

/// SRP_I_LOGOUT, 16 bytes: opcode and tag (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ILogout {
    /// Tag.
    pub tag: u64,
}

impl ILogout {
    /// Bytes on the wire.
    pub const LEN: usize = field::logout::END;

    /// Reads an SRP_I_LOGOUT.
    pub fn parse(buf: &[u8]) -> Result<ILogout, IuError> {
        check(buf, opcode::I_LOGOUT, Self::LEN)?;
        Ok(ILogout {
            tag: be::u64_at(buf, field::TAG.start),
        })
    }

    /// Writes the IU into the first [`ILogout::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`ILogout::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        start(buf, opcode::I_LOGOUT, Self::LEN);
        be::put_u64(buf, field::TAG.start, self.tag);
    }
}

/// SRP_T_LOGOUT, 16 bytes (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TLogout {
    /// Solicited-notification byte (byte 1).
    pub sol_not: u8,
    /// Reason.
    pub reason: u32,
    /// Tag.
    pub tag: u64,
}

impl TLogout {
    /// Bytes on the wire.
    pub const LEN: usize = field::logout::END;

    /// Reads an SRP_T_LOGOUT.
    pub fn parse(buf: &[u8]) -> Result<TLogout, IuError> {
        use field::logout as f;
        check(buf, opcode::T_LOGOUT, Self::LEN)?;
        Ok(TLogout {
            sol_not: buf[f::SOL_NOT],
            reason: be::u32_at(buf, f::REASON.start),
            tag: be::u64_at(buf, field::TAG.start),
        })
    }

    /// Writes the IU into the first [`TLogout::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`TLogout::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::logout as f;
        start(buf, opcode::T_LOGOUT, Self::LEN);
        buf[f::SOL_NOT] = self.sol_not;
        be::put_u32(buf, f::REASON.start, self.reason);
        be::put_u64(buf, field::TAG.start, self.tag);
    }
}

/// SRP_CRED_REQ, 16 bytes (reference §1.1, "Credit and AER IUs").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredReq {
    /// Solicited-notification byte.
    pub sol_not: u8,
    /// REQUEST LIMIT DELTA (two's complement).
    pub req_lim_delta: i32,
    /// Tag, echoed in SRP_CRED_RSP.
    pub tag: u64,
}

impl CredReq {
    /// Bytes on the wire.
    pub const LEN: usize = field::cred::END;

    /// Reads an SRP_CRED_REQ.
    pub fn parse(buf: &[u8]) -> Result<CredReq, IuError> {
        use field::cred as f;
        check(buf, opcode::CRED_REQ, Self::LEN)?;
        Ok(CredReq {
            sol_not: buf[f::SOL_NOT],
            req_lim_delta: be::u32_at(buf, f::REQ_LIM_DELTA.start) as i32,
            tag: be::u64_at(buf, field::TAG.start),
        })
    }

    /// Writes the IU into the first [`CredReq::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`CredReq::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::cred as f;
        start(buf, opcode::CRED_REQ, Self::LEN);
        buf[f::SOL_NOT] = self.sol_not;
        be::put_u32(buf, f::REQ_LIM_DELTA.start, self.req_lim_delta as u32);
        be::put_u64(buf, field::TAG.start, self.tag);
    }
}

/// SRP_CRED_RSP or SRP_AER_RSP, 16 bytes: opcode and the request's tag (reference
/// §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetReqRsp {
    /// [`opcode::CRED_RSP`] or [`opcode::AER_RSP`].
    pub opcode: u8,
    /// The tag of the SRP_CRED_REQ / SRP_AER_REQ answered.
    pub tag: u64,
}

impl TargetReqRsp {
    /// Bytes on the wire.
    pub const LEN: usize = field::cred::END;

    /// Reads an SRP_CRED_RSP or SRP_AER_RSP.
    pub fn parse(buf: &[u8]) -> Result<TargetReqRsp, IuError> {
        let op = *buf.first().ok_or(IuError::Empty)?;
        if op != opcode::CRED_RSP && op != opcode::AER_RSP {
            return Err(IuError::UnknownOpcode(op));
        }
        check(buf, op, Self::LEN)?;
        Ok(TargetReqRsp {
            opcode: op,
            tag: be::u64_at(buf, field::TAG.start),
        })
    }

    /// Writes the IU into the first [`TargetReqRsp::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`TargetReqRsp::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        start(buf, self.opcode, Self::LEN);
        be::put_u64(buf, field::TAG.start, self.tag);
    }
}

/// SRP_AER_REQ: 36-byte fixed part, then sense data (reference §1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AerReq {
    /// Solicited-notification byte.
    pub sol_not: u8,
    /// REQUEST LIMIT DELTA.
    pub req_lim_delta: i32,
    /// Tag, echoed in SRP_AER_RSP.
    pub tag: u64,
    /// LUN the event is about.
    pub lun: [u8; 8],
    /// Sense data.
    pub sense: Vec<u8>,
}

impl AerReq {
    /// Bytes of the fixed part.
    pub const HEADER_LEN: usize = field::aer::END;

    /// Bytes the IU takes.
    pub fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.sense.len()
    }

    /// Reads an SRP_AER_REQ; the sense data must lie inside the IU.
    pub fn parse(buf: &[u8]) -> Result<AerReq, IuError> {
        use field::aer as f;
        check(buf, opcode::AER_REQ, Self::HEADER_LEN)?;
        let sense_len = be::u32_at(buf, f::SENSE_LEN.start) as usize;
        let end = Self::HEADER_LEN.saturating_add(sense_len);
        let sense = buf.get(Self::HEADER_LEN..end).ok_or(IuError::BeyondIu {
            needed: end,
            got: buf.len(),
        })?;
        Ok(AerReq {
            sol_not: buf[f::SOL_NOT],
            req_lim_delta: be::u32_at(buf, f::REQ_LIM_DELTA.start) as i32,
            tag: be::u64_at(buf, field::TAG.start),
            lun: be::array(buf, f::LUN.start),
            sense: sense.to_vec(),
        })
    }

    /// Writes the IU into the first [`AerReq::buffer_len`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`AerReq::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::aer as f;
        start(buf, opcode::AER_REQ, Self::HEADER_LEN);
        buf[f::SOL_NOT] = self.sol_not;
        be::put_u32(buf, f::REQ_LIM_DELTA.start, self.req_lim_delta as u32);
        be::put_u64(buf, field::TAG.start, self.tag);
        buf[f::LUN].copy_from_slice(&self.lun);
        be::put_u32(buf, f::SENSE_LEN.start, len_u32(self.sense.len()));
        buf[Self::HEADER_LEN..self.buffer_len()].copy_from_slice(&self.sense);
    }
}

/// SRP_TSK_MGMT, 48 bytes (reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TskMgmt {
    /// Solicited-notification byte.
    pub sol_not: u8,
    /// Tag of this request.
    pub tag: u64,
    /// LUN.
    pub lun: [u8; 8],
    /// Function ([`tsk_fn`]).
    pub function: u8,
    /// Tag of the task to manage (ABORT TASK).
    pub task_tag: u64,
}

impl TskMgmt {
    /// Bytes on the wire.
    pub const LEN: usize = field::tsk::END;

    /// Reads an SRP_TSK_MGMT.
    pub fn parse(buf: &[u8]) -> Result<TskMgmt, IuError> {
        use field::tsk as f;
        check(buf, opcode::TSK_MGMT, Self::LEN)?;
        Ok(TskMgmt {
            sol_not: buf[f::SOL_NOT],
            tag: be::u64_at(buf, field::TAG.start),
            lun: be::array(buf, f::LUN.start),
            function: buf[f::FUNCTION],
            task_tag: be::u64_at(buf, f::TASK_TAG.start),
        })
    }

    /// Writes the IU into the first [`TskMgmt::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`TskMgmt::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::tsk as f;
        start(buf, opcode::TSK_MGMT, Self::LEN);
        buf[f::SOL_NOT] = self.sol_not;
        be::put_u64(buf, field::TAG.start, self.tag);
        buf[f::LUN].copy_from_slice(&self.lun);
        buf[f::FUNCTION] = self.function;
        be::put_u64(buf, f::TASK_TAG.start, self.task_tag);
    }
}

/// One data buffer of an SRP_CMD, as its descriptors describe it (reference §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataBuf {
    /// No buffer (format 0).
    None,
    /// One direct descriptor (format 1).
    Direct(DirectDesc),
    /// An indirect descriptor (format 2) whose whole table is inside the IU.
    Indirect {
        /// The table descriptor (where the full list lives in initiator memory).
        table: DirectDesc,
        /// TOTAL LENGTH.
        total_len: u32,
        /// The descriptors, all of them inline.
        descs: Vec<DirectDesc>,
    },
    /// Immediate data (format 3, SRP-2): its length; the data sits in the IU at the
    /// immediate data offset negotiated at login.
    Immediate {
        /// Data length.
        len: u32,
    },
}

impl DataBuf {
    /// The format nibble.
    pub fn format(&self) -> u8 {
        match self {
            DataBuf::None => data_fmt::NONE,
            DataBuf::Direct(_) => data_fmt::DIRECT,
            DataBuf::Indirect { .. } => data_fmt::INDIRECT,
            DataBuf::Immediate { .. } => data_fmt::IMMEDIATE,
        }
    }

    /// The descriptor count SRP_CMD carries for it: 1 for direct (Linux ib_srp leaves
    /// it 0; both are accepted when parsing), the inline count for indirect, else 0.
    pub fn count(&self) -> u8 {
        match self {
            DataBuf::Direct(_) => 1,
            DataBuf::Indirect { descs, .. } => u8::try_from(descs.len()).unwrap_or(u8::MAX),
            DataBuf::None | DataBuf::Immediate { .. } => 0,
        }
    }

    /// The descriptors the target moves data through (empty for none and immediate).
    pub fn descriptors(&self) -> &[DirectDesc] {
        match self {
            DataBuf::Direct(d) => core::slice::from_ref(d),
            DataBuf::Indirect { descs, .. } => descs,
            DataBuf::None | DataBuf::Immediate { .. } => &[],
        }
    }

    /// Bytes the buffer holds: the direct length, TOTAL LENGTH, or the immediate length.
    pub fn data_len(&self) -> u64 {
        match self {
            DataBuf::None => 0,
            DataBuf::Direct(d) => u64::from(d.len),
            DataBuf::Indirect { total_len, .. } => u64::from(*total_len),
            DataBuf::Immediate { len } => u64::from(*len),
        }
    }

    /// Bytes the descriptor takes in the IU.
    fn wire_len(&self) -> usize {
        match self {
            DataBuf::None => 0,
            DataBuf::Direct(_) => DirectDesc::LEN,
            DataBuf::Indirect { descs, .. } => {
                field::desc::INDIRECT_HEADER + descs.len() * DirectDesc::LEN
            }
            DataBuf::Immediate { .. } => field::desc::IMMEDIATE,
        }
    }

    /// Reads the descriptor of format `format` with count `count` at `at` in `iu`;
    /// returns it and where the next one starts.
    fn parse(
        iu: &[u8],
        at: usize,
        dir: Dir,
        format: u8,
        count: u8,
    ) -> Result<(DataBuf, usize), IuError> {
        let beyond = |needed: usize| IuError::BeyondIu {
            needed,
            got: iu.len(),
        };
        let bad_count = IuError::BadCount { dir, format, count };
        match format {
            data_fmt::NONE if count == 0 => Ok((DataBuf::None, at)),
            data_fmt::DIRECT if count <= 1 => {
                let end = at + DirectDesc::LEN;
                let d = iu
                    .get(at..end)
                    .and_then(DirectDesc::parse)
                    .ok_or(beyond(end))?;
                Ok((DataBuf::Direct(d), end))
            }
            data_fmt::INDIRECT if count >= 1 => {
                let end = at + field::desc::INDIRECT_HEADER + usize::from(count) * DirectDesc::LEN;
                let bytes = iu.get(at..end).ok_or(beyond(end))?;
                let table = DirectDesc::parse(bytes).ok_or(beyond(end))?;
                let total_len = be::u32_at(bytes, field::desc::TOTAL_LEN.start);
                if table.len % DirectDesc::LEN as u32 != 0 {
                    return Err(IuError::TableLength {
                        dir,
                        table_len: table.len,
                        count,
                    });
                }
                let entries = table.len / DirectDesc::LEN as u32;
                if entries > u32::from(count) {
                    return Err(IuError::ExternalTable {
                        dir,
                        entries,
                        inline: count,
                    });
                }
                if entries < u32::from(count) {
                    return Err(IuError::TableLength {
                        dir,
                        table_len: table.len,
                        count,
                    });
                }
                let descs: Vec<DirectDesc> = bytes[field::desc::INDIRECT_HEADER..]
                    .chunks_exact(DirectDesc::LEN)
                    .filter_map(DirectDesc::parse)
                    .collect();
                let sum: u64 = descs.iter().map(|d| u64::from(d.len)).sum();
                if sum != u64::from(total_len) {
                    return Err(IuError::TotalLength {
                        dir,
                        total: total_len,
                        sum,
                    });
                }
                Ok((
                    DataBuf::Indirect {
                        table,
                        total_len,
                        descs,
                    },
                    end,
                ))
            }
            data_fmt::IMMEDIATE if dir == Dir::DataOut && count <= 1 => {
                let end = at + field::desc::IMMEDIATE;
                let bytes = iu.get(at..end).ok_or(beyond(end))?;
                Ok((
                    DataBuf::Immediate {
                        len: be::u32_at(bytes, field::desc::IMM_LEN.start),
                    },
                    end,
                ))
            }
            data_fmt::NONE | data_fmt::DIRECT | data_fmt::INDIRECT => Err(bad_count),
            data_fmt::IMMEDIATE if dir == Dir::DataOut => Err(bad_count),
            _ => Err(IuError::BadFormat { dir, format }),
        }
    }

    /// Writes the descriptor at the start of `buf`.
    fn emit(&self, buf: &mut [u8]) {
        match self {
            DataBuf::None => {}
            DataBuf::Direct(d) => d.emit(buf),
            DataBuf::Indirect {
                table,
                total_len,
                descs,
            } => {
                table.emit(buf);
                be::put_u32(buf, field::desc::TOTAL_LEN.start, *total_len);
                for (i, d) in descs.iter().enumerate() {
                    d.emit(&mut buf[field::desc::INDIRECT_HEADER + i * DirectDesc::LEN..]);
                }
            }
            DataBuf::Immediate { len } => be::put_u32(buf, field::desc::IMM_LEN.start, *len),
        }
    }
}

/// SRP_CMD: 48-byte fixed part, additional CDB bytes, the DATA-OUT descriptor, then the
/// DATA-IN descriptor (reference §1.1, §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    /// Solicited-notification byte (SCSOLNT 0x02, UCSOLNT 0x04).
    pub sol_not: u8,
    /// Tag, echoed in SRP_RSP.
    pub tag: u64,
    /// LUN, 8-byte SAM format.
    pub lun: [u8; 8],
    /// Task attribute, low 3 bits of byte 29.
    pub task_attr: u8,
    /// The CDB: the 16 bytes at 32..48 followed by the additional CDB bytes.
    pub cdb: Vec<u8>,
    /// The DATA-OUT buffer.
    pub data_out: DataBuf,
    /// The DATA-IN buffer.
    pub data_in: DataBuf,
}

impl Cmd {
    /// Bytes of the fixed part.
    pub const HEADER_LEN: usize = field::cmd::END;

    /// Bytes the IU takes.
    pub fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.add_cdb_len() + self.data_out.wire_len() + self.data_in.wire_len()
    }

    fn add_cdb_len(&self) -> usize {
        self.cdb.len().saturating_sub(16) & !3
    }

    /// Offset in the IU just past the descriptors: where the immediate data offset must
    /// not point before.
    pub fn descriptors_end(&self) -> usize {
        self.buffer_len()
    }

    /// Reads an SRP_CMD. The ADDITIONAL CDB LENGTH is read as ib_srpt reads it (byte 31
    /// with its low two bits cleared, a byte count); every descriptor, and every entry
    /// of an indirect table, must be inside the IU (an external table is
    /// [`IuError::ExternalTable`]); an indirect TOTAL LENGTH must be the sum of its
    /// descriptors.
    pub fn parse(buf: &[u8]) -> Result<Cmd, IuError> {
        use field::cmd as f;
        check(buf, opcode::CMD, Self::HEADER_LEN)?;
        let add_cdb = usize::from(buf[f::ADD_CDB_LEN] & !3);
        let cdb_end = Self::HEADER_LEN + add_cdb;
        let add = buf
            .get(Self::HEADER_LEN..cdb_end)
            .ok_or(IuError::BeyondIu {
                needed: cdb_end,
                got: buf.len(),
            })?;
        let mut cdb = buf[f::CDB].to_vec();
        cdb.extend_from_slice(add);
        let fmt = buf[f::BUF_FMT];
        let (data_out, next) =
            DataBuf::parse(buf, cdb_end, Dir::DataOut, fmt >> 4, buf[f::DO_COUNT])?;
        let (data_in, _) = DataBuf::parse(buf, next, Dir::DataIn, fmt & 0x0F, buf[f::DI_COUNT])?;
        Ok(Cmd {
            sol_not: buf[f::SOL_NOT],
            tag: be::u64_at(buf, field::TAG.start),
            lun: be::array(buf, f::LUN.start),
            task_attr: buf[f::TASK_ATTR] & 0x07,
            cdb,
            data_out,
            data_in,
        })
    }

    /// Writes the IU into the first [`Cmd::buffer_len`] bytes of `buf`. A CDB shorter
    /// than 16 bytes is padded with zeros; additional CDB bytes beyond a multiple of 4
    /// are not written.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Cmd::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::cmd as f;
        let len = self.buffer_len();
        start(buf, opcode::CMD, len);
        buf[f::SOL_NOT] = self.sol_not;
        buf[f::BUF_FMT] = self.data_out.format() << 4 | self.data_in.format();
        buf[f::DO_COUNT] = self.data_out.count();
        buf[f::DI_COUNT] = self.data_in.count();
        be::put_u64(buf, field::TAG.start, self.tag);
        buf[f::LUN].copy_from_slice(&self.lun);
        buf[f::TASK_ATTR] = self.task_attr & 0x07;
        let add = self.add_cdb_len();
        buf[f::ADD_CDB_LEN] = add as u8;
        let n = self.cdb.len().min(16);
        buf[f::CDB.start..f::CDB.start + n].copy_from_slice(&self.cdb[..n]);
        if add > 0 {
            buf[Self::HEADER_LEN..Self::HEADER_LEN + add].copy_from_slice(&self.cdb[16..16 + add]);
        }
        let at = Self::HEADER_LEN + add;
        self.data_out.emit(&mut buf[at..]);
        self.data_in.emit(&mut buf[at + self.data_out.wire_len()..]);
    }
}

/// SRP_RSP: 36-byte fixed part, response data, then sense data (reference §1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rsp {
    /// Solicited-notification byte.
    pub sol_not: u8,
    /// REQUEST LIMIT DELTA.
    pub req_lim_delta: i32,
    /// The command's tag.
    pub tag: u64,
    /// SCSI status.
    pub status: u8,
    /// DATA-OUT residual (DOOVER / DOUNDER and the count).
    pub data_out_residual: Residual,
    /// DATA-IN residual (DIOVER / DIUNDER and the count).
    pub data_in_residual: Residual,
    /// Response data (RSPVALID when present; 4 bytes for task management).
    pub resp_data: Option<Vec<u8>>,
    /// Sense data (SNSVALID when present).
    pub sense: Option<Vec<u8>>,
}

impl Rsp {
    /// Bytes of the fixed part.
    pub const HEADER_LEN: usize = field::rsp::END;

    /// Bytes the IU takes.
    pub fn buffer_len(&self) -> usize {
        Self::HEADER_LEN
            + self.resp_data.as_ref().map_or(0, Vec::len)
            + self.sense.as_ref().map_or(0, Vec::len)
    }

    /// The task management RSP_CODE (fourth byte of 4 bytes of response data), if any.
    pub fn tsk_code(&self) -> Option<u8> {
        self.resp_data.as_ref().and_then(|d| d.get(3).copied())
    }

    /// Reads an SRP_RSP; response and sense data must lie inside the IU.
    pub fn parse(buf: &[u8]) -> Result<Rsp, IuError> {
        use field::rsp as f;
        check(buf, opcode::RSP, Self::HEADER_LEN)?;
        let flags = buf[f::FLAGS];
        let resid = |over: u8, under: u8, at: usize| {
            let n = be::u32_at(buf, at);
            if flags & over != 0 {
                Residual::Overflow(n)
            } else if flags & under != 0 {
                Residual::Underflow(n)
            } else {
                Residual::None
            }
        };
        let resp_len = if flags & rsp_flags::RSPVALID != 0 {
            be::u32_at(buf, f::RESP_LEN.start) as usize
        } else {
            0
        };
        let sense_len = if flags & rsp_flags::SNSVALID != 0 {
            be::u32_at(buf, f::SENSE_LEN.start) as usize
        } else {
            0
        };
        let resp_end = Self::HEADER_LEN.saturating_add(resp_len);
        let sense_end = resp_end.saturating_add(sense_len);
        if sense_end > buf.len() {
            return Err(IuError::BeyondIu {
                needed: sense_end,
                got: buf.len(),
            });
        }
        Ok(Rsp {
            sol_not: buf[f::SOL_NOT],
            req_lim_delta: be::u32_at(buf, f::REQ_LIM_DELTA.start) as i32,
            tag: be::u64_at(buf, field::TAG.start),
            status: buf[f::STATUS],
            data_out_residual: resid(rsp_flags::DOOVER, rsp_flags::DOUNDER, f::DO_RESID.start),
            data_in_residual: resid(rsp_flags::DIOVER, rsp_flags::DIUNDER, f::DI_RESID.start),
            resp_data: (flags & rsp_flags::RSPVALID != 0)
                .then(|| buf[Self::HEADER_LEN..resp_end].to_vec()),
            sense: (flags & rsp_flags::SNSVALID != 0).then(|| buf[resp_end..sense_end].to_vec()),
        })
    }

    /// Writes the IU into the first [`Rsp::buffer_len`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Rsp::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        use field::rsp as f;
        start(buf, opcode::RSP, Self::HEADER_LEN);
        buf[f::SOL_NOT] = self.sol_not;
        be::put_u32(buf, f::REQ_LIM_DELTA.start, self.req_lim_delta as u32);
        be::put_u64(buf, field::TAG.start, self.tag);
        let mut flags = 0;
        let (fl, n) = residual_bits(
            self.data_out_residual,
            rsp_flags::DOOVER,
            rsp_flags::DOUNDER,
        );
        flags |= fl;
        be::put_u32(buf, f::DO_RESID.start, n);
        let (fl, n) = residual_bits(self.data_in_residual, rsp_flags::DIOVER, rsp_flags::DIUNDER);
        flags |= fl;
        be::put_u32(buf, f::DI_RESID.start, n);
        let mut at = Self::HEADER_LEN;
        if let Some(d) = &self.resp_data {
            flags |= rsp_flags::RSPVALID;
            be::put_u32(buf, f::RESP_LEN.start, len_u32(d.len()));
            buf[at..at + d.len()].copy_from_slice(d);
            at += d.len();
        }
        if let Some(s) = &self.sense {
            flags |= rsp_flags::SNSVALID;
            be::put_u32(buf, f::SENSE_LEN.start, len_u32(s.len()));
            buf[at..at + s.len()].copy_from_slice(s);
        }
        buf[f::FLAGS] = flags;
        buf[f::STATUS] = self.status;
    }

    /// The IU as bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v);
        v
    }
}

fn residual_bits(r: Residual, over: u8, under: u8) -> (u8, u32) {
    match r {
        Residual::None => (0, 0),
        Residual::Overflow(n) => (over, n),
        Residual::Underflow(n) => (under, n),
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Linux-style SRP_CMD: READ(10) at LUN 1 with an indirect DATA-IN table of two
    /// descriptors inline, built byte by byte from reference §1.1/§1.2.
    fn indirect_read_fixture() -> Vec<u8> {
        let mut b = vec![0u8; 48 + 20 + 32];
        b[0] = 0x02;
        b[5] = 0x02; // DATA-IN indirect
        b[7] = 2; // DATA-IN count
        b[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        b[21] = 1; // LUN 1
        b[32] = 0x28;
        b[40] = 8;
        // Table descriptor.
        b[48..56].copy_from_slice(&0xAAAA_0000u64.to_be_bytes());
        b[56..60].copy_from_slice(&0x99u32.to_be_bytes());
        b[60..64].copy_from_slice(&32u32.to_be_bytes());
        b[64..68].copy_from_slice(&4096u32.to_be_bytes());
        for (i, (va, len)) in [(0x1000u64, 1024u32), (0x8000, 3072)].iter().enumerate() {
            let at = 68 + 16 * i;
            b[at..at + 8].copy_from_slice(&va.to_be_bytes());
            b[at + 8..at + 12].copy_from_slice(&0x42u32.to_be_bytes());
            b[at + 12..at + 16].copy_from_slice(&len.to_be_bytes());
        }
        b
    }

    #[test]
    fn deconstruct_indirect_cmd() {
        let cmd = Cmd::parse(&indirect_read_fixture()).unwrap();
        assert_eq!(cmd.tag, 0x1122_3344_5566_7788);
        assert_eq!(cmd.lun, [0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(cmd.cdb.len(), 16);
        assert_eq!(cmd.cdb[0], 0x28);
        assert_eq!(cmd.data_out, DataBuf::None);
        match &cmd.data_in {
            DataBuf::Indirect {
                table,
                total_len,
                descs,
            } => {
                assert_eq!(table.len, 32);
                assert_eq!(*total_len, 4096);
                assert_eq!(descs[1].va, 0x8000);
                assert_eq!(descs[1].len, 3072);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn construct_indirect_cmd() {
        let fixture = indirect_read_fixture();
        let cmd = Cmd::parse(&fixture).unwrap();
        let mut buf = vec![0xA5; cmd.buffer_len()];
        cmd.emit(&mut buf);
        assert_eq!(buf, fixture);
    }

    #[test]
    fn descriptor_errors() {
        let mut b = indirect_read_fixture();
        b[60..64].copy_from_slice(&48u32.to_be_bytes());
        assert_eq!(
            Cmd::parse(&b),
            Err(IuError::ExternalTable {
                dir: Dir::DataIn,
                entries: 3,
                inline: 2
            })
        );
        let mut b = indirect_read_fixture();
        b[64..68].copy_from_slice(&4095u32.to_be_bytes());
        assert!(matches!(Cmd::parse(&b), Err(IuError::TotalLength { .. })));
        let mut b = indirect_read_fixture();
        b[7] = 200;
        assert!(matches!(Cmd::parse(&b), Err(IuError::BeyondIu { .. })));
        let mut b = indirect_read_fixture();
        b[5] = 0x03;
        assert!(matches!(Cmd::parse(&b), Err(IuError::BadFormat { .. })));
        let b = indirect_read_fixture();
        assert!(matches!(
            Cmd::parse(&b[..40]),
            Err(IuError::Truncated { needed: 48, .. })
        ));
    }

    #[test]
    fn rsp_layout_from_0xa5() {
        let rsp = Rsp {
            sol_not: 0,
            req_lim_delta: 1,
            tag: 7,
            status: 2,
            data_out_residual: Residual::None,
            data_in_residual: Residual::Underflow(512),
            resp_data: None,
            sense: Some(vec![0x70, 0, 5]),
        };
        let mut b = vec![0xA5; rsp.buffer_len()];
        rsp.emit(&mut b);
        let mut want = vec![0u8; 39];
        want[0] = 0xC1;
        want[7] = 1;
        want[15] = 7;
        want[18] = 0x22;
        want[19] = 2;
        want[26] = 2;
        want[31] = 3;
        want[36..39].copy_from_slice(&[0x70, 0, 5]);
        assert_eq!(b, want);
        assert_eq!(Rsp::parse(&b), Ok(rsp));
    }
}
