//! The SRP initiator session, sans-I/O (reference §2.2–§2.4; SRP r16a §6).
//!
//! The caller (the miniport core) owns the RC QP, the IU buffers and the clock. This
//! module builds IUs into buffers it is given and interprets IUs it is shown:
//!
//! 1. [`Login::request`] gives the SRP_LOGIN_REQ for the CM REQ private data;
//!    [`Login::on_response`] turns the REP private data into [`Negotiated`], and
//!    [`Login::on_reject`] says whether to retry after a REJ.
//! 2. [`Session::new`] starts the logged-in channel with the initial credits.
//! 3. Per SCSI request: [`Session::start`] (a credit and a tag), then
//!    [`Session::build_cmd`] writes the SRP_CMD into the send buffer.
//! 4. Per receive completion: [`Session::on_iu`] completes a command, or writes the
//!    SRP_CRED_RSP / SRP_AER_RSP the caller must send, or reports SRP_T_LOGOUT.
//! 5. Error recovery (reference §2.4): [`Session::start_task_mgmt`] for ABORT TASK and
//!    LOGICAL UNIT RESET; after one succeeds, [`Session::abandon`] or
//!    [`Session::drain_lun`] frees what the target aborted without a response; on a
//!    reconnect, [`Session::drain`] hands back every outstanding command to fail for
//!    retry, as Linux completes them with DID_RESET.
//!
//! No allocation: the tag table has a fixed capacity `N`. No input makes it panic.
//!
//! **Credits** (reference §2.3, §3.3). The count starts at the login's REQUEST LIMIT
//! DELTA. Each SRP_CMD takes one and is refused while one or none is left, so that
//! the last credit stays for task management; SRP_TSK_MGMT may take it. SRP_RSP,
//! SRP_CRED_REQ and SRP_AER_REQ add their REQUEST LIMIT DELTA, a signed 32-bit value
//! (the raw field read as two's complement, so a target can also take credits back);
//! the sum saturates in an `i64`, so no delta can overflow it. The delta is added as
//! soon as the IU's fixed part has arrived, even when the rest of the IU is then
//! rejected (an unknown tag, sense too long, a length beyond the IU): the target
//! counted those credits as given when it sent the IU, and Linux ib_srp also adds the
//! delta before it looks at the tag. Credits of commands abandoned after a task
//! management function come back in the target's later deltas (ib_srpt adds them to
//! its next SRP_RSP, reference §3.3).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

mod error;
mod login;
mod tags;

pub use error::{CmdError, LoginError, LoginField, SessionError, StartError};
pub use login::{IT_IU_LEN_LADDER, Login, LoginOutcome, LoginParams, Negotiated};
pub use tags::{Drain, MAX_SLOTS, Tag};

use core::ops::Range;

use tags::{Lookup, State, Tags};

use crate::aer::{AerReq, AerRsp};
use crate::cmd::{DataDir, SrpCmd, TaskAttr};
use crate::cred::{CredReq, CredRsp};
use crate::desc::{BufferFormats, DirectDesc};
use crate::iu::IuType;
use crate::logout::TLogout;
use crate::rsp::{Rsp, RspFlags};
use crate::tsk::{TaskFunction, TskMgmt};
use crate::wire::{u32_at, wire_len};

/// Longest sense data accepted in an SRP_RSP: 252 bytes, the most SCSI sense can be
/// (8-byte header plus an ADDITIONAL SENSE LENGTH of at most 244; SPC). Longer sense
/// is a malformed response ([`SessionError::SenseTooLong`]); ib_srpt truncates its
/// sense to fit the IU instead of sending more (reference §3.3).
pub const MAX_SENSE_LEN: usize = 252;

/// REQUEST LIMIT DELTA, at the same place in SRP_RSP, SRP_CRED_REQ and SRP_AER_REQ
/// (reference §1.1).
const REQ_LIM_DELTA: Range<usize> = 4..8;

/// A SCSI command for [`Session::build_cmd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// Logical unit (SAM 8-byte format).
    pub lun: [u8; 8],
    /// The CDB, at most 16 bytes.
    pub cdb: &'a [u8],
    /// Data direction; [`DataDir::None`] only without segments.
    pub dir: DataDir,
    /// Task attribute (SIMPLE for ordinary queued commands).
    pub task_attr: TaskAttr,
    /// The data buffer as remote segments, in order (already registered or
    /// physical, reference §6 item 2). One segment goes out as a direct descriptor,
    /// more as an indirect descriptor with the whole table inside the IU (§1.2).
    pub segments: &'a [DirectDesc],
}

/// Where a piece of a received IU lies in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset from the start of the IU.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Span {
    /// The bytes of `iu` this span covers (empty if `iu` is not the IU it came from
    /// and is too short).
    pub fn of<'a>(&self, iu: &'a [u8]) -> &'a [u8] {
        iu.get(self.offset..self.offset.saturating_add(self.len))
            .unwrap_or_default()
    }
}

/// A command or task-management request the target answered with an SRP_RSP
/// (reference §1.1, §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The caller's handle given to `start` / `start_task_mgmt`.
    pub user: u32,
    /// The tag (now free).
    pub tag: Tag,
    /// SCSI status (byte 19).
    pub status: u8,
    /// The sense data inside the IU (with SNSVALID), at most [`MAX_SENSE_LEN`] bytes.
    pub sense: Option<Span>,
    /// DATA-IN residual: positive for an underflow (DIUNDER: bytes not transferred),
    /// negative for an overflow (DIOVER: bytes that did not fit), 0 otherwise; the
    /// sign convention of Linux's SCSI residual.
    pub data_in_residual: i64,
    /// DATA-OUT residual, signed the same way (DOUNDER / DOOVER).
    pub data_out_residual: i64,
    /// RSP_CODE, byte 3 of the response data (with RSPVALID and at least 4 bytes): for
    /// task management 0 complete, 4 not supported, 5 failed.
    pub response_code: Option<u8>,
}

/// What a received IU meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// An SRP_RSP completed a command or task-management request; its tag is free and
    /// its credits are added.
    Completed(Completion),
    /// An SRP_CRED_REQ or SRP_AER_REQ: its credits are added and the answer
    /// (SRP_CRED_RSP / SRP_AER_RSP) of this many bytes is in `reply_buf`. Send it; it
    /// uses no credit (reference §2.3).
    Reply(usize),
    /// SRP_T_LOGOUT with this reason: the channel is over. Reconnect, then fail every
    /// user [`Session::drain`] yields for retry (reference §2.4).
    Logout(u32),
}

/// Counters, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// IUs given to [`Session::on_iu`].
    pub received: u64,
    /// SRP_CMDs built.
    pub commands: u64,
    /// SRP_TSK_MGMTs built.
    pub task_mgmt: u64,
    /// SRP_RSPs that completed a request.
    pub completed: u64,
    /// SRP_CRED_REQs and SRP_AER_REQs answered.
    pub replies: u64,
    /// IUs rejected with a [`SessionError`].
    pub errors: u64,
    /// Of those, responses with an unknown, stale or idle tag.
    pub unknown_tags: u64,
    /// Starts refused for want of credit (Linux's `zero_req_lim`, reference §2.3).
    pub no_credit: u64,
    /// Starts refused for want of a tag.
    pub no_tag: u64,
}

/// The logged-in channel: credits, tags, commands and responses (reference §2.3,
/// §2.4). `N` is the number of command tags, at most [`MAX_SLOTS`] (a larger `N` does
/// not compile); one more tag is kept for task management.
#[derive(Debug)]
pub struct Session<const N: usize> {
    negotiated: Negotiated,
    credits: i64,
    tags: Tags<N>,
    logged_out: bool,
    stats: Stats,
}

impl<const N: usize> Session<N> {
    /// A channel with the login's results; credits start at `n.req_lim`.
    pub fn new(n: Negotiated) -> Self {
        Session {
            negotiated: n,
            credits: i64::from(n.req_lim),
            tags: Tags::new(),
            logged_out: false,
            stats: Stats::default(),
        }
    }

    /// Starts a command for the caller's handle `user`: takes a credit and a tag.
    ///
    /// Refused while credits ≤ 1 (one is kept for task management, reference §2.3),
    /// when all `N` tags are in use, and after SRP_T_LOGOUT. Continue with
    /// [`Session::build_cmd`], or give the tag back with [`Session::abandon`].
    pub fn start(&mut self, user: u32) -> Result<Tag, StartError> {
        if self.logged_out {
            return Err(StartError::LoggedOut);
        }
        if self.credits <= 1 {
            self.stats.no_credit = self.stats.no_credit.saturating_add(1);
            return Err(StartError::NoCredit {
                credits: self.credits,
            });
        }
        let Some(tag) = self.tags.reserve(user) else {
            self.stats.no_tag = self.stats.no_tag.saturating_add(1);
            return Err(StartError::NoTag);
        };
        self.credits = self.credits.saturating_sub(1);
        Ok(tag)
    }

    /// Writes the SRP_CMD for a tag from [`Session::start`] into `buf`, the send
    /// buffer, whose address and R_Key are `iu_addr` and `iu_rkey` (the indirect table
    /// descriptor points into it, reference §1.2). Only the first `max_it_iu_len` bytes
    /// of `buf` are used. Returns the IU length to send; the command is then in flight.
    ///
    /// Errors: a tag that is not reserved (nothing changes); more than one segment
    /// without negotiated indirect descriptors; more than `max_sg` segments; anything
    /// [`SrpCmd::emit`] refuses. On every error but the first, the tag and the credit
    /// are given back, so the caller just fails or requeues the request.
    pub fn build_cmd(
        &mut self,
        tag: Tag,
        cmd: &Command<'_>,
        iu_addr: u64,
        iu_rkey: u32,
        buf: &mut [u8],
    ) -> Result<usize, CmdError> {
        let reserved = matches!(self.tags.state(tag), Some(State::Reserved { .. }));
        if tag.is_task_mgmt() || !reserved {
            return Err(CmdError::NotReserved { tag: tag.wire() });
        }
        match self.emit_cmd(tag, cmd, iu_addr, iu_rkey, buf) {
            Ok(len) => {
                self.tags.mark_in_flight(tag, cmd.lun);
                self.stats.commands = self.stats.commands.saturating_add(1);
                Ok(len)
            }
            Err(e) => {
                self.abandon(tag);
                Err(e)
            }
        }
    }

    /// Puts in flight, under a tag from [`Session::start`], an SRP_CMD the caller
    /// built on an earlier channel and sends again unchanged but for its TAG (which
    /// the caller rewrites at [`crate::cmd::TAG_AT`] to `tag`): a command held across
    /// a reconnect. `lun` is the IU's LUN field (responses and LUN resets find the
    /// command by it). Errors as [`Session::build_cmd`]'s first.
    pub fn resend(&mut self, tag: Tag, lun: [u8; 8]) -> Result<(), CmdError> {
        let reserved = matches!(self.tags.state(tag), Some(State::Reserved { .. }));
        if tag.is_task_mgmt() || !reserved {
            return Err(CmdError::NotReserved { tag: tag.wire() });
        }
        self.tags.mark_in_flight(tag, lun);
        self.stats.commands = self.stats.commands.saturating_add(1);
        Ok(())
    }

    fn emit_cmd(
        &self,
        tag: Tag,
        cmd: &Command<'_>,
        iu_addr: u64,
        iu_rkey: u32,
        buf: &mut [u8],
    ) -> Result<usize, CmdError> {
        let segments = cmd.segments.len();
        if segments > 1 && !self.negotiated.formats.contains(BufferFormats::INDIRECT) {
            return Err(CmdError::IndirectNotNegotiated { segments });
        }
        if segments > self.negotiated.max_sg {
            return Err(CmdError::TooManySegments {
                segments,
                max: self.negotiated.max_sg,
            });
        }
        let cap = buf.len().min(wire_len(self.negotiated.max_it_iu_len));
        let buf = buf.get_mut(..cap).unwrap_or_default();
        SrpCmd {
            tag: tag.wire(),
            lun: cmd.lun,
            task_attr: cmd.task_attr,
            cdb: cmd.cdb,
            dir: cmd.dir,
            segments: cmd.segments,
            iu_addr,
            iu_rkey,
        }
        .emit(buf)
        .map_err(CmdError::Wire)
    }

    /// Starts a task-management request (reference §2.4) and writes its SRP_TSK_MGMT
    /// into `buf`: ABORT TASK of `task_tag`, or LOGICAL UNIT RESET of `lun`, or another
    /// function. It may take the last credit (§2.3); one may be outstanding at a time.
    ///
    /// ABORT TASK needs `task_tag` to name a command in flight, else
    /// [`StartError::NotInFlight`] (it has completed: nothing to abort). Other
    /// functions send `task_tag` if given, else 0. A `buf` under 48 bytes:
    /// [`StartError::Wire`], with nothing taken.
    ///
    /// The answer is a [`Completion`] with [`Completion::response_code`]. When it is 0,
    /// the target has ended the tasks without responses of their own: free them with
    /// [`Session::abandon`] (ABORT TASK) or [`Session::drain_lun`] (LUN RESET), as
    /// Linux ib_srp does.
    pub fn start_task_mgmt(
        &mut self,
        user: u32,
        lun: [u8; 8],
        func: TaskFunction,
        task_tag: Option<Tag>,
        buf: &mut [u8],
    ) -> Result<(Tag, usize), StartError> {
        if self.logged_out {
            return Err(StartError::LoggedOut);
        }
        if self.credits < 1 {
            self.stats.no_credit = self.stats.no_credit.saturating_add(1);
            return Err(StartError::NoCredit {
                credits: self.credits,
            });
        }
        let wire_task = task_tag.map_or(0, Tag::wire);
        if func == TaskFunction::AbortTask {
            let in_flight = task_tag.is_some_and(|t| {
                !t.is_task_mgmt() && matches!(self.tags.state(t), Some(State::InFlight { .. }))
            });
            if !in_flight {
                return Err(StartError::NotInFlight { tag: wire_task });
            }
        }
        let Some(tag) = self.tags.reserve_task_mgmt(user) else {
            self.stats.no_tag = self.stats.no_tag.saturating_add(1);
            return Err(StartError::NoTag);
        };
        let iu = TskMgmt {
            sol_not: 0,
            tag: tag.wire(),
            lun,
            function: func,
            task_tag: wire_task,
        };
        match iu.emit(buf) {
            Ok(len) => {
                self.tags.mark_in_flight(tag, lun);
                self.credits = self.credits.saturating_sub(1);
                self.stats.task_mgmt = self.stats.task_mgmt.saturating_add(1);
                Ok((tag, len))
            }
            Err(e) => {
                self.tags.release(tag);
                Err(StartError::Wire(e))
            }
        }
    }

    /// Frees `tag` without a response and returns its user; `None` if `tag` is not
    /// current (completed, drained, stale).
    ///
    /// For a tag started but not built the credit is given back. For one in flight it
    /// is not: use this only when the target has ended the command without an SRP_RSP
    /// (after a successful ABORT TASK, reference §2.4), and the target returns the
    /// credit in a later delta (§3.3). A response that arrives anyway is then an
    /// error ([`SessionError::NotInFlight`] or [`SessionError::UnknownTag`]).
    pub fn abandon(&mut self, tag: Tag) -> Option<u32> {
        let was = self.tags.release(tag)?;
        if let State::Reserved { .. } = was {
            self.credits = self.credits.saturating_add(1);
        }
        was.user()
    }

    /// Interprets one received IU: the first `byte_cnt` bytes of a receive buffer.
    /// Answers to the target (SRP_CRED_RSP, SRP_AER_RSP) are written into
    /// `reply_buf` (16 bytes suffice). Never panics; after an error the session goes on.
    ///
    /// - SRP_RSP: completes the command or task-management request its tag names.
    ///   Errors: unknown or stale tag, a tag with nothing in flight, response or sense
    ///   data beyond the IU, sense over [`MAX_SENSE_LEN`], UNDER and OVER together;
    ///   the request named stays in flight.
    /// - SRP_CRED_REQ, SRP_AER_REQ: [`Incoming::Reply`] (AER sense must lie inside the
    ///   IU; its content is not interpreted, as in Linux, reference §2.3).
    /// - SRP_T_LOGOUT: [`Incoming::Logout`]; later starts are refused.
    /// - Anything else, or an IU longer than `max_ti_iu_len`: an error.
    ///
    /// Credits are added as the module documentation says.
    pub fn on_iu(&mut self, iu: &[u8], reply_buf: &mut [u8]) -> Result<Incoming, SessionError> {
        let stats = &mut self.stats;
        stats.received = stats.received.saturating_add(1);
        let result = self.dispatch(iu, reply_buf);
        let stats = &mut self.stats;
        match result {
            Ok(Incoming::Completed(_)) => stats.completed = stats.completed.saturating_add(1),
            Ok(Incoming::Reply(_)) => stats.replies = stats.replies.saturating_add(1),
            Ok(Incoming::Logout(_)) => {}
            Err(e) => {
                stats.errors = stats.errors.saturating_add(1);
                if let SessionError::UnknownTag { .. } | SessionError::NotInFlight { .. } = e {
                    stats.unknown_tags = stats.unknown_tags.saturating_add(1);
                }
            }
        }
        result
    }

    fn dispatch(&mut self, iu: &[u8], reply_buf: &mut [u8]) -> Result<Incoming, SessionError> {
        let ty = IuType::of(iu).ok_or(SessionError::Empty)?;
        let fixed = match ty {
            IuType::Rsp => Rsp::LEN,
            IuType::CredReq => CredReq::LEN,
            IuType::AerReq => AerReq::LEN,
            IuType::TLogout => TLogout::LEN,
            other => return Err(SessionError::UnexpectedIu(other)),
        };
        if ty != IuType::TLogout && iu.len() >= fixed {
            self.add_delta(u32_at(iu, REQ_LIM_DELTA));
        }
        if iu.len() > wire_len(self.negotiated.max_ti_iu_len) {
            return Err(SessionError::IuTooLong {
                iu: ty,
                len: iu.len(),
                max: self.negotiated.max_ti_iu_len,
            });
        }
        match ty {
            IuType::Rsp => self.on_rsp(iu),
            IuType::CredReq => {
                let req = CredReq::parse(iu)?;
                Ok(Incoming::Reply(CredRsp { tag: req.tag }.emit(reply_buf)?))
            }
            IuType::AerReq => {
                let req = AerReq::parse(iu)?;
                Ok(Incoming::Reply(AerRsp { tag: req.tag }.emit(reply_buf)?))
            }
            IuType::TLogout => {
                let logout = TLogout::parse(iu)?;
                self.logged_out = true;
                Ok(Incoming::Logout(logout.reason))
            }
            other => Err(SessionError::UnexpectedIu(other)),
        }
    }

    fn on_rsp(&mut self, iu: &[u8]) -> Result<Incoming, SessionError> {
        let rsp = Rsp::parse(iu)?;
        let tag = rsp.tag;
        self.tags.check_in_flight(tag).map_err(|e| match e {
            Lookup::Unknown => SessionError::UnknownTag { tag },
            Lookup::NotInFlight => SessionError::NotInFlight { tag },
        })?;
        if rsp.sense_data.len() > MAX_SENSE_LEN {
            return Err(SessionError::SenseTooLong {
                tag,
                len: rsp.sense_data.len(),
            });
        }
        let flags = rsp.flags;
        let bad_flags = SessionError::ResidualFlags {
            tag,
            flags: flags.0,
        };
        let data_in_residual = residual(
            flags,
            RspFlags::DIUNDER,
            RspFlags::DIOVER,
            rsp.data_in_residual,
        )
        .ok_or(bad_flags)?;
        let data_out_residual = residual(
            flags,
            RspFlags::DOUNDER,
            RspFlags::DOOVER,
            rsp.data_out_residual,
        )
        .ok_or(bad_flags)?;
        let sense = flags.contains(RspFlags::SNSVALID).then_some(Span {
            // Rsp::parse found the sense right after the response data.
            offset: Rsp::LEN.saturating_add(rsp.response_data.len()),
            len: rsp.sense_data.len(),
        });
        let (tag, user) = self
            .tags
            .complete(tag)
            .map_err(|_| SessionError::UnknownTag { tag })?;
        Ok(Incoming::Completed(Completion {
            user,
            tag,
            status: rsp.status,
            sense,
            data_in_residual,
            data_out_residual,
            response_code: rsp.response_data.get(3).copied(),
        }))
    }

    /// Adds a REQUEST LIMIT DELTA, read as a signed 32-bit value, saturating.
    fn add_delta(&mut self, raw: u32) {
        let delta = i32::from_be_bytes(raw.to_be_bytes());
        self.credits = self.credits.saturating_add(i64::from(delta));
    }

    /// Frees every tag in use (commands started, in flight, and task management) and
    /// yields their users, for fail-for-retry on a reconnect (reference §2.4: Linux
    /// completes them with DID_RESET and does not resend them on the new channel).
    /// Dropping the iterator early still frees them all. Credits are not changed: the
    /// next login brings its own.
    pub fn drain(&mut self) -> Drain<'_> {
        self.tags.drain(None)
    }

    /// Frees the commands in flight for `lun` and yields their users: what a
    /// successful LOGICAL UNIT RESET ended without responses (reference §2.4).
    pub fn drain_lun(&mut self, lun: [u8; 8]) -> Drain<'_> {
        self.tags.drain(Some(lun))
    }

    /// Credits left (may be ≤ 0 if the target took credits back).
    pub fn credits(&self) -> i64 {
        self.credits
    }

    /// Command tags in use (started or in flight), at most `N`; task management not
    /// counted.
    pub fn outstanding(&self) -> usize {
        self.tags.outstanding()
    }

    /// Whether a task-management request is outstanding.
    pub fn task_mgmt_outstanding(&self) -> bool {
        self.tags.task_mgmt_busy()
    }

    /// Whether the target sent SRP_T_LOGOUT.
    pub fn is_logged_out(&self) -> bool {
        self.logged_out
    }

    /// The login results this session runs with.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

/// A signed residual from the UNDER / OVER flags of one direction; `None` if both are
/// set (reference §1.1).
fn residual(flags: RspFlags, under: RspFlags, over: RspFlags, count: u32) -> Option<i64> {
    let count = i64::from(count);
    match (flags.contains(under), flags.contains(over)) {
        (true, true) => None,
        (true, false) => Some(count),
        (false, true) => Some(count.saturating_neg()),
        (false, false) => Some(0),
    }
}
