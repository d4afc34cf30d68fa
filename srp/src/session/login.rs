//! Login negotiation (reference §2.2 steps 4–6, §3.2, §3.3; SRP r16a §6.2–§6.4): the
//! SRP_LOGIN_REQ for the CM REQ, and what to make of the REP or REJ that answers it.

use super::error::{LoginError, LoginField};
use crate::cmd::{self, max_sg_entries};
use crate::desc::BufferFormats;
use crate::login::{LoginRej, LoginReq, LoginRsp, MultiChannelAction, RejectReason};
use crate::rsp::Rsp;
use crate::wire::wire_len;

/// The requested MAX INITIATOR-TO-TARGET IU LENGTH after each SRP_LOGIN_REJ
/// "requested max IT IU length too large" (0x00010002): the next rung below the
/// length just refused. Linux ib_srp gives up there instead (reference §2.2 step 6).
///
/// - 4148 = 68 + 255 × 16: a full inline table (the descriptor count is one byte);
/// - 2116: ib_srpt's `srp_max_req_size` before immediate data (reference §3.2), and
///   68 + 128 × 16;
/// - 1024: 59 descriptors, a round size most targets take;
/// - 276: what Linux asks with its default 12 descriptors (reference §2.2 step 4);
/// - 64: one direct descriptor, the least ib_srpt accepts (reference §3.2).
pub const IT_IU_LEN_LADDER: [u32; 5] = [4148, 2116, 1024, 276, 64];

/// What the initiator asks for (reference §2.1, §6 item 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginParams {
    /// INITIATOR PORT IDENTIFIER: initiator extension, then our port GUID.
    pub initiator_port_id: [u8; 16],
    /// TARGET PORT IDENTIFIER: id_ext, then the IOC GUID.
    pub target_port_id: [u8; 16],
    /// REQUESTED MAX INITIATOR-TO-TARGET IU LENGTH. ib_srpt echoes it as the
    /// target-to-initiator maximum, so receive buffers must hold this many bytes
    /// (reference §3.3).
    pub it_iu_len: u32,
    /// REQUIRED BUFFER FORMATS: [`BufferFormats::DIRECT`], optionally with
    /// [`BufferFormats::INDIRECT`]. Other bits are dropped and direct is always asked
    /// for, because a one-segment command always goes out as a direct descriptor.
    pub formats: BufferFormats,
}

/// One login attempt (reference §2.2 steps 4–6): the request and its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Login {
    params: LoginParams,
    tag: u64,
}

/// What the channel may carry, from SRP_LOGIN_RSP (reference §2.2 step 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Longest SRP_CMD: the smaller of what we asked and the target's maximum (size
    /// the send buffers to it).
    pub max_it_iu_len: u32,
    /// Longest IU the target will send (size the receive buffers to it).
    pub max_ti_iu_len: u32,
    /// Initial credits, the REQUEST LIMIT DELTA (128 on ib_srpt, reference §3.3).
    pub req_lim: u32,
    /// Formats commands may use: ours, narrowed by the target's SUPPORTED BUFFER
    /// FORMATS when it names any.
    pub formats: BufferFormats,
    /// Most segments per command: [`cmd::max_sg_entries`]`(max_it_iu_len)` with
    /// indirect descriptors, 1 without (the scatter-gather limit to report).
    pub max_sg: usize,
}

/// What to do after an SRP_LOGIN_REJ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Send a new CM REQ carrying this login's [`Login::request`].
    Retry(Login),
    /// Give up on this target port (or wait and start over, for resources).
    Fail(LoginError),
}

/// Bits of BUFFER FORMATS this crate understands.
const KNOWN_FORMATS: u16 = BufferFormats::DIRECT_AND_INDIRECT.0;

impl Login {
    /// A login with `params` (formats normalized as [`LoginParams::formats`] says)
    /// and request tag `tag`.
    pub fn new(params: LoginParams, tag: u64) -> Login {
        let formats = BufferFormats((params.formats.0 & KNOWN_FORMATS) | BufferFormats::DIRECT.0);
        Login {
            params: LoginParams { formats, ..params },
            tag,
        }
    }

    /// The parameters this attempt asks for.
    pub fn params(&self) -> LoginParams {
        self.params
    }

    /// The request tag.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The SRP_LOGIN_REQ (64 bytes) to carry in the CM REQ private data: single
    /// channel (so ib_srpt drops our stale channels, reference §3.2 item 6), no
    /// solicited notifications, no immediate data.
    pub fn request(&self) -> [u8; 64] {
        let mut out = [0u8; LoginReq::LEN];
        let req = LoginReq {
            tag: self.tag,
            req_it_iu_len: self.params.it_iu_len,
            req_buf_fmt: self.params.formats,
            multi_channel: MultiChannelAction::Single,
            solicited: 0,
            immediate_data_offset: None,
            initiator_port_id: self.params.initiator_port_id,
            target_port_id: self.params.target_port_id,
        };
        // A 64-byte buffer is exactly what the emitter needs: it cannot fail.
        let _ = req.emit(&mut out);
        out
    }

    /// Interprets the CM REP private data.
    ///
    /// Errors: private data that is not an SRP_LOGIN_RSP, another tag, an IT IU length
    /// (the smaller of ours and the target's) below 64, a TI IU length below 36, no
    /// credits or more than `i32::MAX`, and a target that names buffer formats without
    /// direct descriptors.
    pub fn on_response(&self, private: &[u8]) -> Result<Negotiated, LoginError> {
        let rsp = LoginRsp::parse(private)?;
        self.check_tag(rsp.tag)?;
        let invalid = |field, value| Err(LoginError::Invalid { field, value });
        let max_it_iu_len = rsp.max_it_iu_len.min(self.params.it_iu_len);
        if wire_len(max_it_iu_len) < cmd::DIRECT_IU_LEN {
            return invalid(LoginField::MaxItIuLen, max_it_iu_len);
        }
        if wire_len(rsp.max_ti_iu_len) < Rsp::LEN {
            return invalid(LoginField::MaxTiIuLen, rsp.max_ti_iu_len);
        }
        if rsp.req_lim_delta == 0 || i32::try_from(rsp.req_lim_delta).is_err() {
            return invalid(LoginField::RequestLimit, rsp.req_lim_delta);
        }
        let theirs = rsp.sup_buf_fmt.0 & KNOWN_FORMATS;
        let formats = if theirs == 0 {
            // By accepting, the target took the formats we required.
            self.params.formats
        } else {
            BufferFormats(self.params.formats.0 & theirs)
        };
        if !formats.contains(BufferFormats::DIRECT) {
            return invalid(LoginField::BufferFormats, u32::from(rsp.sup_buf_fmt.0));
        }
        let max_sg = if formats.contains(BufferFormats::INDIRECT) {
            max_sg_entries(max_it_iu_len)
        } else {
            1
        };
        Ok(Negotiated {
            max_it_iu_len,
            max_ti_iu_len: rsp.max_ti_iu_len,
            req_lim: rsp.req_lim_delta,
            formats,
            max_sg,
        })
    }

    /// Interprets the private data of a CM REJ with reason 28 (consumer defined).
    ///
    /// - 0x00010004 (descriptor formats not supported) after asking for indirect:
    ///   `Retry` with direct only.
    /// - 0x00010002 (IT IU length too large): `Retry` with the next rung of
    ///   [`IT_IU_LEN_LADDER`] below the length refused, down to 64.
    /// - Anything else, and the cases above with no retry left:
    ///   `Fail(LoginError::Rejected(reason))`; private data that is no SRP_LOGIN_REJ
    ///   or carries another tag: `Fail` with that error.
    ///
    /// A retry carries the next tag (`tag + 1`, wrapping), so that an answer to the
    /// refused attempt cannot be taken for one to the retry.
    pub fn on_reject(&self, private: &[u8]) -> LoginOutcome {
        let rej = match LoginRej::parse(private) {
            Ok(rej) => rej,
            Err(e) => return LoginOutcome::Fail(LoginError::Wire(e)),
        };
        if let Err(e) = self.check_tag(rej.tag) {
            return LoginOutcome::Fail(e);
        }
        let retry = |params| LoginOutcome::Retry(Login::new(params, self.tag.wrapping_add(1)));
        let fail = LoginOutcome::Fail(LoginError::Rejected(rej.reason));
        match rej.reason {
            RejectReason::UnsupportedDescriptorFormats
                if self.params.formats.contains(BufferFormats::INDIRECT) =>
            {
                retry(LoginParams {
                    formats: BufferFormats::DIRECT,
                    ..self.params
                })
            }
            RejectReason::ItIuLenTooLarge => {
                match IT_IU_LEN_LADDER
                    .iter()
                    .copied()
                    .find(|&len| len < self.params.it_iu_len)
                {
                    Some(it_iu_len) => retry(LoginParams {
                        it_iu_len,
                        ..self.params
                    }),
                    None => fail,
                }
            }
            _ => fail,
        }
    }

    fn check_tag(&self, got: u64) -> Result<(), LoginError> {
        if got == self.tag {
            Ok(())
        } else {
            Err(LoginError::TagMismatch {
                expected: self.tag,
                got,
            })
        }
    }
}
