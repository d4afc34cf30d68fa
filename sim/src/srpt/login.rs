//! The checks an SRP_LOGIN_REQ must pass, in the order ib_srpt's `srpt_cm_req_recv`
//! makes them (reference/srp-cm-sa-dm.md §3.2), and what the SRP_LOGIN_RSP then says
//! (§3.3).
//!
//! 1. `min_iu_len` (64) ≤ REQUESTED MAX IT IU LENGTH ≤ `max_req_it_iu_len`, else
//!    0x00010002.
//! 2. The port is enabled: here, no [`SrptFault::RejectLogins`](super::SrptFault) is
//!    armed, else its reason.
//! 3. TARGET PORT IDENTIFIER = `id_ext ‖ ioc_guid`, else 0x00010003.
//! 4. (Not in ib_srpt, see [`SrptConfig::indirect_ok`]) with indirect descriptors off,
//!    REQUIRED BUFFER FORMATS must not name indirect alone, else 0x00010004.
//! 5. Resources: fewer than `max_channels` channels would remain, else 0x00010001.
//! 6. The ACL admits the INITIATOR PORT IDENTIFIER, else 0x00010006.
//! 7. Multichannel: SINGLE closes every channel of the same I_T nexus (result
//!    TERMINATED if there was one, else NO CHANNEL); anything else keeps them
//!    (MAINTAINED), as ib_srpt reads every action but SINGLE.

use std::collections::BTreeMap;

use super::iu::{LoginReq, login_flags, rej_reason};
use super::{Channel, ChannelId, ChannelState, SrptConfig};

/// A login that passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Accepted {
    /// Channels of the same I_T nexus to disconnect (SINGLE).
    pub close: Vec<ChannelId>,
    /// Multichannel result for SRP_LOGIN_RSP.
    pub multichannel_result: u8,
    /// The immediate data offset, when immediate data is granted.
    pub immediate_offset: Option<u16>,
}

/// Bytes of the SRP_CMD fixed part: the least immediate data offset ib_srpt grants.
const MIN_IMM_OFFSET: u16 = 48;

/// Checks `req` against `cfg` and the `channels` the port has; `Err` is the
/// SRP_LOGIN_REJ reason.
pub(super) fn check(
    cfg: &SrptConfig,
    reject_fault: Option<u32>,
    req: &LoginReq,
    channels: &BTreeMap<ChannelId, Channel>,
) -> Result<Accepted, u32> {
    let len = req.req_it_iu_len;
    if len < cfg.min_iu_len.max(64) || len > cfg.max_req_it_iu_len {
        return Err(rej_reason::IT_IU_LEN_TOO_LARGE);
    }
    if let Some(reason) = reject_fault {
        return Err(reason);
    }
    if req.target_port_id != cfg.target_port_id() {
        return Err(rej_reason::UNABLE_TO_ASSOCIATE);
    }
    let direct = req.req_buf_fmt & super::iu::buf_fmt::DIRECT != 0;
    let indirect = req.req_buf_fmt & super::iu::buf_fmt::INDIRECT != 0;
    if !cfg.indirect_ok && indirect && !direct {
        return Err(rej_reason::DESCRIPTOR_FORMATS);
    }
    let single = req.multichannel_action() == login_flags::MULTICHANNEL_SINGLE;
    let same_nexus: Vec<ChannelId> = channels
        .iter()
        .filter(|(_, c)| {
            c.info.initiator_port_id == req.initiator_port_id
                && c.info.target_port_id == req.target_port_id
                && matches!(c.info.state, ChannelState::Connecting | ChannelState::Live)
        })
        .map(|(id, _)| *id)
        .collect();
    let holding = channels
        .iter()
        .filter(|(id, c)| c.info.qp_open && !(single && same_nexus.contains(id)))
        .count();
    if holding >= cfg.max_channels {
        return Err(rej_reason::INSUFFICIENT_RESOURCES);
    }
    if let Some(acl) = &cfg.acl
        && !acl.contains(&req.initiator_port_id)
    {
        return Err(rej_reason::CHANNEL_LIMIT);
    }
    let (close, multichannel_result) = if single {
        let result = if same_nexus.is_empty() {
            login_flags::RESULT_NO_CHANNEL
        } else {
            login_flags::RESULT_TERMINATED
        };
        (same_nexus, result)
    } else {
        (Vec::new(), login_flags::RESULT_MAINTAINED)
    };
    let immediate_offset = (cfg.immediate_data
        && req.flags & login_flags::IMMEDIATE != 0
        && req.imm_data_offset >= MIN_IMM_OFFSET
        && u32::from(req.imm_data_offset) < cfg.max_req_it_iu_len)
        .then_some(req.imm_data_offset);
    Ok(Accepted {
        close,
        multichannel_result,
        immediate_offset,
    })
}
