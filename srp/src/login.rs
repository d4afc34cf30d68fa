//! SRP_LOGIN_REQ, SRP_LOGIN_RSP and SRP_LOGIN_REJ (SRP r16a, login IUs; layouts in
//! reference §1.1). The request travels in the CM REQ private data, the response in
//! the REP private data, the reject in the REJ private data (CM reason 28); the
//! parsers accept private data longer than the IU. How an initiator fills them:
//! reference §2.1 and §6 item 1.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use crate::Error;
use crate::desc::BufferFormats;
use crate::iu::IuType;
use crate::wire::{array, fixed, out, put, put_u8, u8_at, u16_at, u32_at, u64_at};

mod field {
    use core::ops::Range;

    pub const TAG: Range<usize> = 8..16;

    pub mod req {
        use core::ops::Range;
        pub const REQ_IT_IU_LEN: Range<usize> = 16..20;
        pub const REQ_BUF_FMT: Range<usize> = 24..26;
        pub const FLAGS: usize = 26;
        pub const IMM_DATA_OFFSET: Range<usize> = 28..30;
        pub const INITIATOR_PORT_ID: Range<usize> = 32..48;
        pub const TARGET_PORT_ID: Range<usize> = 48..64;
    }

    pub mod rsp {
        use core::ops::Range;
        pub const REQ_LIM_DELTA: Range<usize> = 4..8;
        pub const MAX_IT_IU_LEN: Range<usize> = 16..20;
        pub const MAX_TI_IU_LEN: Range<usize> = 20..24;
        pub const SUP_BUF_FMT: Range<usize> = 24..26;
        pub const FLAGS: usize = 26;
        pub const RESERVED: Range<usize> = 27..52;
    }

    pub mod rej {
        use core::ops::Range;
        pub const REASON: Range<usize> = 4..8;
        pub const SUP_BUF_FMT: Range<usize> = 24..26;
        pub const RESERVED: Range<usize> = 26..32;
    }
}

/// Login flag bits of byte 26 (reference §1.1).
mod flag {
    /// MULTI-CHANNEL ACTION (request) / multichannel result (response).
    pub const MULTI_CHANNEL: u8 = 0x03;
    /// Solicited notification bits of the request: LOSOLNT, CRSOLNT, AESOLNT.
    pub const SOLICITED: u8 = 0x70;
    /// IMMEDIATE DATA REQUESTED (request) / SUPPORTED (response), SRP-2.
    pub const IMMEDIATE: u8 = 0x80;
}

/// MULTI-CHANNEL ACTION of SRP_LOGIN_REQ (byte 26, bits 1..0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiChannelAction {
    /// 0: terminate the other channels of this I_T nexus (what a boot initiator wants:
    /// it clears its own stale sessions on ib_srpt, reference §3.2 item 6).
    Single,
    /// 1: keep them.
    Multiple,
    /// 2 or 3 (reserved).
    Reserved(u8),
}

impl From<u8> for MultiChannelAction {
    /// From the low two bits of `v`.
    fn from(v: u8) -> Self {
        match v & flag::MULTI_CHANNEL {
            0 => MultiChannelAction::Single,
            1 => MultiChannelAction::Multiple,
            other => MultiChannelAction::Reserved(other),
        }
    }
}

impl From<MultiChannelAction> for u8 {
    fn from(a: MultiChannelAction) -> u8 {
        match a {
            MultiChannelAction::Single => 0,
            MultiChannelAction::Multiple => 1,
            MultiChannelAction::Reserved(v) => v & flag::MULTI_CHANNEL,
        }
    }
}

/// Multichannel result of SRP_LOGIN_RSP (byte 26, bits 1..0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiChannelResult {
    /// 0: there was no existing channel.
    NoExistingChannel,
    /// 1: existing channels were terminated.
    Terminated,
    /// 2: existing channels are maintained.
    Maintained,
    /// 3 (reserved).
    Reserved(u8),
}

impl From<u8> for MultiChannelResult {
    /// From the low two bits of `v`.
    fn from(v: u8) -> Self {
        match v & flag::MULTI_CHANNEL {
            0 => MultiChannelResult::NoExistingChannel,
            1 => MultiChannelResult::Terminated,
            2 => MultiChannelResult::Maintained,
            other => MultiChannelResult::Reserved(other),
        }
    }
}

impl From<MultiChannelResult> for u8 {
    fn from(r: MultiChannelResult) -> u8 {
        match r {
            MultiChannelResult::NoExistingChannel => 0,
            MultiChannelResult::Terminated => 1,
            MultiChannelResult::Maintained => 2,
            MultiChannelResult::Reserved(v) => v & flag::MULTI_CHANNEL,
        }
    }
}

/// SRP_LOGIN_REQ (64 bytes; reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginReq {
    /// Tag, echoed in the response or reject.
    pub tag: u64,
    /// REQUESTED MAX INITIATOR-TO-TARGET IU LENGTH. ib_srpt accepts 64 up to its
    /// `srp_max_req_size` (2116 on old targets, 8276 now) and echoes it back as the
    /// target-to-initiator maximum, so receive buffers must be this large (§3.2, §3.3).
    pub req_it_iu_len: u32,
    /// REQUIRED BUFFER FORMATS.
    pub req_buf_fmt: BufferFormats,
    /// MULTI-CHANNEL ACTION.
    pub multi_channel: MultiChannelAction,
    /// Solicited-notification bits as they sit in byte 26: [`LoginReq::LOSOLNT`],
    /// [`LoginReq::CRSOLNT`], [`LoginReq::AESOLNT`]. Other bits are ignored.
    pub solicited: u8,
    /// IMMEDIATE DATA REQUESTED with this IMMEDIATE DATA OFFSET (SRP-2), or `None`.
    pub immediate_data_offset: Option<u16>,
    /// INITIATOR PORT IDENTIFIER (initiator extension, then port GUID; §6 item 1).
    pub initiator_port_id: [u8; 16],
    /// TARGET PORT IDENTIFIER (id_ext, then IOC GUID; §6 item 1).
    pub target_port_id: [u8; 16],
}

impl LoginReq {
    /// Bytes on the wire.
    pub const LEN: usize = field::req::TARGET_PORT_ID.end;
    /// LOSOLNT: solicited notification wanted on SRP_T_LOGOUT.
    pub const LOSOLNT: u8 = 0x10;
    /// CRSOLNT: solicited notification wanted on SRP_CRED_REQ.
    pub const CRSOLNT: u8 = 0x20;
    /// AESOLNT: solicited notification wanted on SRP_AER_REQ.
    pub const AESOLNT: u8 = 0x40;

    /// Bytes [`LoginReq::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses a request (for tests and traces; targets parse it, not initiators).
    /// The IMMEDIATE DATA OFFSET is read only when IMMEDIATE DATA REQUESTED is set.
    pub fn parse(buf: &[u8]) -> Result<LoginReq, Error> {
        let b = fixed(buf, IuType::LoginReq, Self::LEN)?;
        let flags = u8_at(b, field::req::FLAGS);
        Ok(LoginReq {
            tag: u64_at(b, field::TAG),
            req_it_iu_len: u32_at(b, field::req::REQ_IT_IU_LEN),
            req_buf_fmt: BufferFormats(u16_at(b, field::req::REQ_BUF_FMT)),
            multi_channel: MultiChannelAction::from(flags),
            solicited: flags & flag::SOLICITED,
            immediate_data_offset: (flags & flag::IMMEDIATE != 0)
                .then(|| u16_at(b, field::req::IMM_DATA_OFFSET)),
            initiator_port_id: array(b, field::req::INITIATOR_PORT_ID),
            target_port_id: array(b, field::req::TARGET_PORT_ID),
        })
    }

    /// Writes the request (reserved bytes zero); returns [`LoginReq::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::LoginReq, Self::LEN)?;
        put(b, field::TAG, &self.tag.to_be_bytes());
        put(
            b,
            field::req::REQ_IT_IU_LEN,
            &self.req_it_iu_len.to_be_bytes(),
        );
        put(
            b,
            field::req::REQ_BUF_FMT,
            &self.req_buf_fmt.0.to_be_bytes(),
        );
        let mut flags = u8::from(self.multi_channel) | (self.solicited & flag::SOLICITED);
        if let Some(offset) = self.immediate_data_offset {
            flags |= flag::IMMEDIATE;
            put(b, field::req::IMM_DATA_OFFSET, &offset.to_be_bytes());
        }
        put_u8(b, field::req::FLAGS, flags);
        put(b, field::req::INITIATOR_PORT_ID, &self.initiator_port_id);
        put(b, field::req::TARGET_PORT_ID, &self.target_port_id);
        Ok(Self::LEN)
    }
}

/// SRP_LOGIN_RSP (52 bytes; reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRsp {
    /// REQUEST LIMIT DELTA: the initial credits (128 on ib_srpt, §3.3).
    pub req_lim_delta: u32,
    /// Tag of the request.
    pub tag: u64,
    /// MAX INITIATOR-TO-TARGET IU LENGTH: the longest SRP_CMD the target takes.
    pub max_it_iu_len: u32,
    /// MAX TARGET-TO-INITIATOR IU LENGTH: the longest IU the target will send.
    pub max_ti_iu_len: u32,
    /// SUPPORTED BUFFER FORMATS.
    pub sup_buf_fmt: BufferFormats,
    /// Multichannel result.
    pub multi_channel: MultiChannelResult,
    /// IMMEDIATE DATA SUPPORTED (SRP-2).
    pub immediate_data: bool,
}

impl LoginRsp {
    /// Bytes on the wire.
    pub const LEN: usize = field::rsp::RESERVED.end;

    /// Bytes [`LoginRsp::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses a response from the CM REP private data. Values are not judged here:
    /// the session checks them against what it asked for.
    pub fn parse(buf: &[u8]) -> Result<LoginRsp, Error> {
        let b = fixed(buf, IuType::LoginRsp, Self::LEN)?;
        let flags = u8_at(b, field::rsp::FLAGS);
        Ok(LoginRsp {
            req_lim_delta: u32_at(b, field::rsp::REQ_LIM_DELTA),
            tag: u64_at(b, field::TAG),
            max_it_iu_len: u32_at(b, field::rsp::MAX_IT_IU_LEN),
            max_ti_iu_len: u32_at(b, field::rsp::MAX_TI_IU_LEN),
            sup_buf_fmt: BufferFormats(u16_at(b, field::rsp::SUP_BUF_FMT)),
            multi_channel: MultiChannelResult::from(flags),
            immediate_data: flags & flag::IMMEDIATE != 0,
        })
    }

    /// Writes the response (reserved bytes zero); returns [`LoginRsp::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::LoginRsp, Self::LEN)?;
        put(
            b,
            field::rsp::REQ_LIM_DELTA,
            &self.req_lim_delta.to_be_bytes(),
        );
        put(b, field::TAG, &self.tag.to_be_bytes());
        put(
            b,
            field::rsp::MAX_IT_IU_LEN,
            &self.max_it_iu_len.to_be_bytes(),
        );
        put(
            b,
            field::rsp::MAX_TI_IU_LEN,
            &self.max_ti_iu_len.to_be_bytes(),
        );
        put(
            b,
            field::rsp::SUP_BUF_FMT,
            &self.sup_buf_fmt.0.to_be_bytes(),
        );
        let imm = if self.immediate_data {
            flag::IMMEDIATE
        } else {
            0
        };
        put_u8(b, field::rsp::FLAGS, u8::from(self.multi_channel) | imm);
        Ok(Self::LEN)
    }
}

/// Reason of an SRP_LOGIN_REJ (bytes 4..8; reference §1.1 "Reject reasons", with what
/// ib_srpt means by each in §3.2). Unknown codes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// 0x0001_0000: unable to establish the RDMA channel, no reason given.
    NoReason,
    /// 0x0001_0001: insufficient resources (ib_srpt: also a disabled port).
    InsufficientResources,
    /// 0x0001_0002: requested max IT IU length too large (ib_srpt: also below 64).
    ItIuLenTooLarge,
    /// 0x0001_0003: unable to associate the channel with an I_T nexus (ib_srpt: wrong
    /// target port ID).
    UnableToAssociate,
    /// 0x0001_0004: requested descriptor formats not supported (an initiator asking
    /// for indirect descriptors logs in again with direct only).
    UnsupportedDescriptorFormats,
    /// 0x0001_0005: multichannel not supported.
    MultiChannelUnsupported,
    /// 0x0001_0006: channel limit reached (ib_srpt: also no ACL or session).
    ChannelLimitReached,
    /// Any other code.
    Unknown(u32),
}

impl From<u32> for RejectReason {
    fn from(v: u32) -> Self {
        match v {
            0x0001_0000 => RejectReason::NoReason,
            0x0001_0001 => RejectReason::InsufficientResources,
            0x0001_0002 => RejectReason::ItIuLenTooLarge,
            0x0001_0003 => RejectReason::UnableToAssociate,
            0x0001_0004 => RejectReason::UnsupportedDescriptorFormats,
            0x0001_0005 => RejectReason::MultiChannelUnsupported,
            0x0001_0006 => RejectReason::ChannelLimitReached,
            other => RejectReason::Unknown(other),
        }
    }
}

impl From<RejectReason> for u32 {
    fn from(r: RejectReason) -> u32 {
        match r {
            RejectReason::NoReason => 0x0001_0000,
            RejectReason::InsufficientResources => 0x0001_0001,
            RejectReason::ItIuLenTooLarge => 0x0001_0002,
            RejectReason::UnableToAssociate => 0x0001_0003,
            RejectReason::UnsupportedDescriptorFormats => 0x0001_0004,
            RejectReason::MultiChannelUnsupported => 0x0001_0005,
            RejectReason::ChannelLimitReached => 0x0001_0006,
            RejectReason::Unknown(v) => v,
        }
    }
}

/// SRP_LOGIN_REJ (32 bytes; reference §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRej {
    /// Why the login failed.
    pub reason: RejectReason,
    /// Tag of the request.
    pub tag: u64,
    /// SUPPORTED BUFFER FORMATS (what to retry with after
    /// [`RejectReason::UnsupportedDescriptorFormats`]).
    pub sup_buf_fmt: BufferFormats,
}

impl LoginRej {
    /// Bytes on the wire.
    pub const LEN: usize = field::rej::RESERVED.end;

    /// Bytes [`LoginRej::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Parses a reject from the CM REJ private data.
    pub fn parse(buf: &[u8]) -> Result<LoginRej, Error> {
        let b = fixed(buf, IuType::LoginRej, Self::LEN)?;
        Ok(LoginRej {
            reason: RejectReason::from(u32_at(b, field::rej::REASON)),
            tag: u64_at(b, field::TAG),
            sup_buf_fmt: BufferFormats(u16_at(b, field::rej::SUP_BUF_FMT)),
        })
    }

    /// Writes the reject (reserved bytes zero); returns [`LoginRej::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = out(buf, IuType::LoginRej, Self::LEN)?;
        put(b, field::rej::REASON, &u32::from(self.reason).to_be_bytes());
        put(b, field::TAG, &self.tag.to_be_bytes());
        put(
            b,
            field::rej::SUP_BUF_FMT,
            &self.sup_buf_fmt.0.to_be_bytes(),
        );
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_reference() {
        assert_eq!(LoginReq::LEN, 64);
        assert_eq!(LoginRsp::LEN, 52);
        assert_eq!(LoginRej::LEN, 32);
    }

    #[test]
    fn reasons_round_trip() {
        for v in 0x0000_FFFE..0x0001_0010u32 {
            assert_eq!(u32::from(RejectReason::from(v)), v);
        }
        assert_eq!(
            RejectReason::from(0x0001_0007),
            RejectReason::Unknown(0x0001_0007)
        );
    }

    #[test]
    fn multichannel_codes_round_trip() {
        for v in 0..4u8 {
            assert_eq!(u8::from(MultiChannelAction::from(v)), v);
            assert_eq!(u8::from(MultiChannelResult::from(v)), v);
        }
    }
}
