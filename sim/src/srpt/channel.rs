//! IUs on a channel (reference/srp-cm-sa-dm.md §3.3; SRP r16a §6): SRP_CMD with its
//! data moved by RDMA, SRP_TSK_MGMT, the initiator's answers to target requests,
//! SRP_I_LOGOUT, and the target-initiated SRP_T_LOGOUT, SRP_CRED_REQ and SRP_AER_REQ.
//!
//! An SRP_CMD goes through: credit (one per request; beyond the limit TASK SET FULL),
//! descriptors ([`Cmd::parse`], then what the login negotiated and
//! [`SrptConfig::max_transfer_len`](super::SrptConfig); failures get the
//! [`BadCmdReply`]), RDMA READ of every DATA-OUT descriptor, [`Target::execute`]
//! (the write is on stable storage when it returns), RDMA WRITE of the DATA-IN bytes
//! across the DATA-IN descriptors in order, and the SRP_RSP once every WRITE has
//! completed. Task management follows LIO as ib_srpt uses it: a LUN without a logical
//! unit fails the function (RSP_CODE 5), ABORT TASK of a tag not pending fails (5),
//! ABORT TASK SET / CLEAR TASK SET / LOGICAL UNIT RESET abort the pending commands of
//! the LUN (on this channel for ABORT TASK SET, on all for the others) and complete
//! (0); anything else is not supported (4; LIO answers CLEAR ACA with 5). Aborted
//! commands get no SRP_RSP; their credits ride on the next one.
//!
//! [`Target::execute`]: crate::target::Target::execute

use super::iu::{
    self, AerReq, Cmd, CredReq, DataBuf, ILogout, IuError, Rsp, TLogout, TargetReqRsp, TskMgmt,
    login_flags, opcode, tsk_fn, tsk_rsp,
};
use super::{
    Action, BadCmdReply, ChannelId, ChannelState, MalformedRsp, Pending, Phase, RdmaFailure,
    SrpTarget, SrptError, TokenUse,
};
use crate::target::{Asc, Lun, Request, Residual, Response, Sense};

/// SCSI status BUSY (SAM-5, "Status codes").
pub const STATUS_BUSY: u8 = 0x08;
/// SCSI status TASK SET FULL (SAM-5, "Status codes").
pub const STATUS_TASK_SET_FULL: u8 = 0x28;

/// SOLNT, bit 0 of byte 1 of SRP_T_LOGOUT (SRP r16a Table 22, Linux ib_srpt.h
/// `SRP_SOLNT`), set when the login asked for solicited notification of that IU
/// (LOSOLNT). The same bit is used for SRP_CRED_REQ (CRSOLNT) and SRP_AER_REQ
/// (AESOLNT). SRP_RSP leaves it clear whatever SCSOLNT/UCSOLNT say, as ib_srpt does.
const SOLNT: u8 = 0x01;

impl SrpTarget {
    /// Handles one IU that arrived on `id`.
    pub(super) fn iu(&mut self, id: ChannelId, iu: &[u8], out: &mut Vec<Action>) {
        let max = self.cfg.max_req_it_iu_len;
        let Some(ch) = self.channels.get_mut(&id) else {
            return self.error(SrptError::UnknownChannel(id));
        };
        if std::mem::take(&mut self.faults.drop_next_iu) {
            self.stats.ius_dropped += 1;
            return;
        }
        match ch.info.state {
            ChannelState::Disconnecting => return self.error(SrptError::ChannelNotLive(id)),
            // ib_srpt: the first receive completes the connection (COMM_EST).
            ChannelState::Connecting => {
                ch.info.state = ChannelState::Live;
                ch.conn.deadline = None;
            }
            ChannelState::Live => {}
        }
        if iu.len() > max as usize {
            self.error(SrptError::IuTooLong {
                channel: id,
                len: iu.len(),
                max,
            });
            return self.qp_failed(id, out);
        }
        let Some(&op) = iu.first() else {
            return self.error(SrptError::Iu {
                channel: id,
                error: IuError::Empty,
            });
        };
        match op {
            opcode::CMD => self.cmd(id, iu, out),
            opcode::TSK_MGMT => self.tsk_mgmt(id, iu, out),
            opcode::I_LOGOUT => match ILogout::parse(iu) {
                Ok(_) => self.disconnect_channel(id, out),
                Err(error) => self.error(SrptError::Iu { channel: id, error }),
            },
            opcode::CRED_RSP | opcode::AER_RSP => match TargetReqRsp::parse(iu) {
                Ok(r) => {
                    if ch.target_reqs.get(&r.tag) == Some(&r.opcode) {
                        ch.target_reqs.remove(&r.tag);
                        self.stats.target_req_answers += 1;
                    } else {
                        self.error(SrptError::UnknownTargetTag {
                            channel: id,
                            tag: r.tag,
                        });
                    }
                }
                Err(error) => self.error(SrptError::Iu { channel: id, error }),
            },
            opcode => self.error(SrptError::UnexpectedIu {
                channel: id,
                opcode,
            }),
        }
    }

    /// Takes a credit for a request on `id`; `false` (and the error counted) when the
    /// initiator had none.
    fn take_credit(&mut self, id: ChannelId, tag: u64) -> bool {
        let Some(ch) = self.channels.get_mut(&id) else {
            return false;
        };
        ch.info.credits -= 1;
        if ch.info.credits >= 0 {
            return true;
        }
        self.stats.credit_overruns += 1;
        self.error(SrptError::CreditOverrun { channel: id, tag });
        false
    }

    /// A request too short to carry a tag: its credit is taken and owed back with the
    /// next response, nothing is answered.
    fn tagless(&mut self, id: ChannelId, iu: &[u8], needed: usize) {
        if let Some(ch) = self.channels.get_mut(&id) {
            ch.info.credits -= 1;
            ch.owed = ch.owed.saturating_add(1);
        }
        self.error(SrptError::Iu {
            channel: id,
            error: IuError::Truncated {
                opcode: iu[0],
                needed,
                got: iu.len(),
            },
        });
    }

    /// SRP_CMD.
    fn cmd(&mut self, id: ChannelId, iu: &[u8], out: &mut Vec<Action>) {
        let Some(tag) = iu::tag_of(iu) else {
            return self.tagless(id, iu, Cmd::HEADER_LEN);
        };
        if !self.take_credit(id, tag) {
            return self.send_rsp(id, status_rsp(tag, STATUS_TASK_SET_FULL), out);
        }
        let cmd = match Cmd::parse(iu) {
            Ok(c) => c,
            Err(error) => {
                self.error(SrptError::Iu { channel: id, error });
                return self.bad_cmd(id, tag, out);
            }
        };
        let ch = &self.channels[&id];
        let imm_offset = ch.info.immediate_offset;
        let duplicate = ch.pending.values().any(|p| p.tag == tag);
        for buf in [&cmd.data_out, &cmd.data_in] {
            let negotiated = match buf {
                DataBuf::Immediate { .. } => imm_offset.is_some(),
                DataBuf::Indirect { .. } => self.cfg.indirect_ok,
                DataBuf::None | DataBuf::Direct(_) => true,
            };
            if !negotiated {
                self.error(SrptError::FormatNotNegotiated {
                    channel: id,
                    tag,
                    format: buf.format(),
                });
                return self.bad_cmd(id, tag, out);
            }
        }
        let immediate = match (&cmd.data_out, imm_offset) {
            (DataBuf::Immediate { len }, Some(offset)) => {
                // ib_srpt: offset + length within srp_max_req_size and within the bytes
                // received; the descriptor before the data.
                let start = usize::from(offset);
                let end = start as u64 + u64::from(*len);
                let fits = start >= cmd.descriptors_end()
                    && end <= iu.len() as u64
                    && end <= u64::from(self.cfg.max_req_it_iu_len);
                if !fits {
                    self.error(SrptError::ImmediateData {
                        channel: id,
                        tag,
                        offset,
                        len: *len,
                    });
                    return self.bad_cmd(id, tag, out);
                }
                Some(iu[start..end as usize].to_vec())
            }
            _ => None,
        };
        let total = cmd.data_out.data_len() + cmd.data_in.data_len();
        if total > u64::from(self.cfg.max_transfer_len) {
            self.error(SrptError::TransferTooLong {
                channel: id,
                tag,
                len: total,
            });
            return self.bad_cmd(id, tag, out);
        }
        if duplicate {
            self.error(SrptError::DuplicateTag { channel: id, tag });
        }
        self.stats.commands += 1;
        let data_out_descs = cmd.data_out.descriptors().to_vec();
        let mut pending = Pending {
            tag,
            lun: cmd.lun,
            cdb: cmd.cdb,
            data_out: data_out_descs
                .iter()
                .map(|d| (d.len == 0).then(Vec::new))
                .collect(),
            data_out_descs,
            data_in_descs: cmd.data_in.descriptors().to_vec(),
            // Bounded by max_transfer_len above.
            data_in_len: cmd.data_in.data_len() as u32,
            outstanding: 0,
            phase: Phase::Fetching,
        };
        if let Some(data) = immediate {
            return self.execute(id, pending, &data, out);
        }
        let cmd_id = self.next_cmd;
        self.next_cmd += 1;
        let reads: Vec<(usize, iu::DirectDesc)> = pending
            .data_out_descs
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, d)| d.len > 0)
            .collect();
        if reads.is_empty() {
            return self.execute(id, pending, &[], out);
        }
        for (index, d) in &reads {
            let token = self.alloc_token();
            self.tokens.insert(
                token,
                TokenUse {
                    channel: id,
                    cmd: cmd_id,
                    index: *index,
                    read: true,
                },
            );
            out.push(Action::RdmaRead {
                channel: id,
                token,
                remote_addr: d.va,
                rkey: d.rkey,
                len: d.len,
            });
        }
        pending.outstanding = reads.len();
        self.park(id, cmd_id, pending);
    }

    /// Keeps a command waiting for RDMA completions.
    fn park(&mut self, id: ChannelId, cmd_id: u64, p: Pending) {
        if let Some(ch) = self.channels.get_mut(&id) {
            ch.pending.insert(cmd_id, p);
            ch.info.pending_commands = ch.pending.len();
        }
    }

    /// Runs the command on the logical unit, then writes DATA-IN or answers.
    fn execute(&mut self, id: ChannelId, mut p: Pending, data_out: &[u8], out: &mut Vec<Action>) {
        let resp = self.target.execute(
            p.lun,
            &Request {
                cdb: &p.cdb,
                data_in_len: p.data_in_len,
                data_out,
            },
        );
        let mut rest: &[u8] = &resp.data_in;
        let mut writes = Vec::new();
        for d in &p.data_in_descs {
            if rest.is_empty() {
                break;
            }
            let n = rest.len().min(d.len as usize);
            if n > 0 {
                writes.push((*d, rest[..n].to_vec()));
            }
            rest = &rest[n..];
        }
        if writes.is_empty() {
            return self.send_cmd_rsp(id, p.tag, &resp, out);
        }
        let cmd_id = self.next_cmd;
        self.next_cmd += 1;
        p.outstanding = writes.len();
        for (index, (d, data)) in writes.into_iter().enumerate() {
            let token = self.alloc_token();
            self.tokens.insert(
                token,
                TokenUse {
                    channel: id,
                    cmd: cmd_id,
                    index,
                    read: false,
                },
            );
            out.push(Action::RdmaWrite {
                channel: id,
                token,
                remote_addr: d.va,
                rkey: d.rkey,
                data,
            });
        }
        p.phase = Phase::Writing(resp);
        self.park(id, cmd_id, p);
    }

    /// An RDMA completion.
    pub(super) fn rdma_done(
        &mut self,
        id: ChannelId,
        token: u64,
        result: Result<Vec<u8>, RdmaFailure>,
        out: &mut Vec<Action>,
    ) {
        let t = match self.tokens.get(&token) {
            Some(t) if t.channel == id => *t,
            _ => return self.error(SrptError::UnknownRdmaToken(token)),
        };
        self.tokens.remove(&token);
        let data = match result {
            Ok(d) => d,
            Err(failure) => {
                self.error(SrptError::RdmaFailed {
                    channel: id,
                    token,
                    failure,
                });
                return self.qp_failed(id, out);
            }
        };
        let Some(ch) = self.channels.get_mut(&id) else {
            return self.error(SrptError::UnknownRdmaToken(token));
        };
        let Some(p) = ch.pending.get_mut(&t.cmd) else {
            return self.error(SrptError::UnknownRdmaToken(token));
        };
        if t.read {
            let expected = p.data_out_descs[t.index].len;
            if data.len() != expected as usize {
                self.error(SrptError::RdmaLength {
                    channel: id,
                    token,
                    expected,
                    got: data.len(),
                });
                return self.qp_failed(id, out);
            }
            p.data_out[t.index] = Some(data);
        }
        p.outstanding -= 1;
        if p.outstanding > 0 {
            return;
        }
        let p = ch.pending.remove(&t.cmd).expect("present above");
        ch.info.pending_commands = ch.pending.len();
        match p.phase {
            Phase::Fetching => {
                let data: Vec<u8> = p.data_out.iter().flatten().flatten().copied().collect();
                self.execute(id, p, &data, out);
            }
            Phase::Writing(ref resp) => self.send_cmd_rsp(id, p.tag, resp, out),
        }
    }

    /// SRP_RSP for an executed command.
    fn send_cmd_rsp(&mut self, id: ChannelId, tag: u64, resp: &Response, out: &mut Vec<Action>) {
        let rsp = Rsp {
            sol_not: 0,
            req_lim_delta: 0,
            tag,
            status: resp.status.code(),
            data_out_residual: resp.data_out_residual,
            data_in_residual: resp.data_in_residual,
            resp_data: None,
            sense: resp.sense_bytes().map(|s| s.to_vec()),
        };
        self.send_rsp(id, rsp, out);
    }

    /// The answer to a command whose descriptors cannot be used.
    fn bad_cmd(&mut self, id: ChannelId, tag: u64, out: &mut Vec<Action>) {
        let rsp = match self.cfg.bad_cmd_reply {
            BadCmdReply::Busy => status_rsp(tag, STATUS_BUSY),
            BadCmdReply::CheckCondition => Rsp {
                sense: Some(
                    Sense::illegal(Asc::INVALID_FIELD_IN_COMMAND_IU)
                        .to_fixed()
                        .to_vec(),
                ),
                ..status_rsp(tag, crate::target::Status::CheckCondition.code())
            },
        };
        self.send_rsp(id, rsp, out);
    }

    /// Sends an SRP_RSP on `id` with REQUEST LIMIT DELTA 1 plus the credits owed, sense
    /// cut to the channel's target-to-initiator IU size, and the armed malformation.
    fn send_rsp(&mut self, id: ChannelId, mut rsp: Rsp, out: &mut Vec<Action>) {
        let limit = self.cfg.max_rsp_size as usize;
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        if ch.info.state == ChannelState::Disconnecting || !ch.info.qp_open {
            return;
        }
        let delta = ch.owed.saturating_add(1);
        ch.owed = 0;
        ch.info.credits += i64::from(delta);
        rsp.req_lim_delta = i32::try_from(delta).unwrap_or(i32::MAX);
        let limit = limit.min(ch.info.max_ti_iu_len as usize);
        let fixed = Rsp::HEADER_LEN + rsp.resp_data.as_ref().map_or(0, Vec::len);
        if let Some(s) = &mut rsp.sense {
            s.truncate(limit.saturating_sub(fixed));
            if s.is_empty() {
                rsp.sense = None;
            }
        }
        let mut bytes = rsp.to_vec();
        if let Some(m) = self.faults.malform_next_rsp.take() {
            malform(&mut bytes, m);
        }
        self.stats.responses += 1;
        out.push(Action::SendIu {
            channel: id,
            iu: bytes,
        });
    }

    /// SRP_TSK_MGMT.
    fn tsk_mgmt(&mut self, id: ChannelId, iu: &[u8], out: &mut Vec<Action>) {
        let Some(tag) = iu::tag_of(iu) else {
            return self.tagless(id, iu, TskMgmt::LEN);
        };
        let code = if !self.take_credit(id, tag) {
            tsk_rsp::FAILED
        } else {
            match TskMgmt::parse(iu) {
                Ok(tm) => {
                    self.stats.tsk_mgmt += 1;
                    self.tsk_function(id, &tm)
                }
                Err(error) => {
                    self.error(SrptError::Iu { channel: id, error });
                    tsk_rsp::FAILED
                }
            }
        };
        let rsp = Rsp {
            resp_data: Some(vec![0, 0, 0, code]),
            ..status_rsp(tag, 0)
        };
        self.send_rsp(id, rsp, out);
    }

    /// Carries out a task management function; returns its RSP_CODE.
    fn tsk_function(&mut self, id: ChannelId, tm: &TskMgmt) -> u8 {
        let exists = Lun::from_bytes(tm.lun).is_some_and(|l| self.target.lu(l).is_some());
        if !exists {
            return tsk_rsp::FAILED;
        }
        let lun = tm.lun;
        match tm.function {
            tsk_fn::ABORT_TASK => {
                let found = self.channels[&id]
                    .pending
                    .iter()
                    .find(|(_, p)| p.tag == tm.task_tag && p.lun == lun)
                    .map(|(c, _)| *c);
                match found {
                    Some(cmd) => {
                        self.abort(id, cmd);
                        tsk_rsp::COMPLETE
                    }
                    None => tsk_rsp::FAILED,
                }
            }
            tsk_fn::ABORT_TASK_SET => {
                self.abort_where(|ch, _| ch == id, lun);
                tsk_rsp::COMPLETE
            }
            tsk_fn::CLEAR_TASK_SET | tsk_fn::LUN_RESET => {
                self.abort_where(|_, _| true, lun);
                tsk_rsp::COMPLETE
            }
            _ => tsk_rsp::NOT_SUPPORTED,
        }
    }

    /// Aborts the pending commands at `lun` on the channels `which` selects.
    fn abort_where(&mut self, which: impl Fn(ChannelId, u64) -> bool, lun: [u8; 8]) {
        let victims: Vec<(ChannelId, u64)> = self
            .channels
            .iter()
            .flat_map(|(ch, c)| {
                c.pending
                    .iter()
                    .filter(move |(_, p)| p.lun == lun)
                    .map(move |(cmd, _)| (*ch, *cmd))
            })
            .filter(|(ch, cmd)| which(*ch, *cmd))
            .collect();
        for (ch, cmd) in victims {
            self.abort(ch, cmd);
        }
    }

    /// Aborts one pending command: no SRP_RSP for it, its credit owed back.
    fn abort(&mut self, id: ChannelId, cmd: u64) {
        if let Some(ch) = self.channels.get_mut(&id)
            && ch.pending.remove(&cmd).is_some()
        {
            ch.owed = ch.owed.saturating_add(1);
            ch.info.pending_commands = ch.pending.len();
            self.stats.aborted_tasks += 1;
        }
        self.tokens
            .retain(|_, t| !(t.channel == id && t.cmd == cmd));
    }

    /// The channel if the target can send on it now, else the error counted.
    fn sendable(&mut self, id: ChannelId) -> bool {
        let ok = self.channels.get(&id).is_some_and(|c| {
            c.info.qp_open && matches!(c.info.state, ChannelState::Connecting | ChannelState::Live)
        });
        if !ok {
            self.error(SrptError::CannotSend(id));
        }
        ok
    }

    fn solnt(&self, id: ChannelId, asked: u8) -> u8 {
        match self.channels.get(&id) {
            Some(c) if c.login_flags & asked != 0 => SOLNT,
            _ => 0,
        }
    }

    /// SRP_T_LOGOUT.
    pub(super) fn t_logout(&mut self, id: ChannelId, reason: u32, out: &mut Vec<Action>) {
        if !self.sendable(id) {
            return;
        }
        let t = TLogout {
            sol_not: self.solnt(id, login_flags::LOSOLNT),
            reason,
            tag: self.alloc_iu_tag(),
        };
        let mut iu = vec![0; TLogout::LEN];
        t.emit(&mut iu);
        out.push(Action::SendIu { channel: id, iu });
    }

    /// SRP_CRED_REQ; the credits count as the initiator's from now.
    pub(super) fn cred_req(&mut self, id: ChannelId, delta: i32, out: &mut Vec<Action>) {
        if !self.sendable(id) {
            return;
        }
        let c = CredReq {
            sol_not: self.solnt(id, login_flags::CRSOLNT),
            req_lim_delta: delta,
            tag: self.alloc_iu_tag(),
        };
        let ch = self.channels.get_mut(&id).expect("sendable");
        ch.info.credits += i64::from(delta);
        ch.target_reqs.insert(c.tag, opcode::CRED_RSP);
        let mut iu = vec![0; CredReq::LEN];
        c.emit(&mut iu);
        out.push(Action::SendIu { channel: id, iu });
    }

    /// SRP_AER_REQ with no credit change.
    pub(super) fn aer_req(
        &mut self,
        id: ChannelId,
        lun: [u8; 8],
        sense: &[u8],
        out: &mut Vec<Action>,
    ) {
        if !self.sendable(id) {
            return;
        }
        let room = (self
            .cfg
            .max_rsp_size
            .min(self.channels[&id].info.max_ti_iu_len) as usize)
            .saturating_sub(AerReq::HEADER_LEN);
        let a = AerReq {
            sol_not: self.solnt(id, login_flags::AESOLNT),
            req_lim_delta: 0,
            tag: self.alloc_iu_tag(),
            lun,
            sense: sense[..sense.len().min(room)].to_vec(),
        };
        let ch = self.channels.get_mut(&id).expect("sendable");
        ch.target_reqs.insert(a.tag, opcode::AER_RSP);
        let mut iu = vec![0; a.buffer_len()];
        a.emit(&mut iu);
        out.push(Action::SendIu { channel: id, iu });
    }
}

/// An SRP_RSP with just a status.
fn status_rsp(tag: u64, status: u8) -> Rsp {
    Rsp {
        sol_not: 0,
        req_lim_delta: 0,
        tag,
        status,
        data_out_residual: Residual::None,
        data_in_residual: Residual::None,
        resp_data: None,
        sense: None,
    }
}

/// Breaks an SRP_RSP the way [`MalformedRsp`] says.
fn malform(bytes: &mut Vec<u8>, m: MalformedRsp) {
    match m {
        MalformedRsp::Short => bytes.truncate(20),
        MalformedRsp::SenseBeyondIu => {
            bytes[18] |= iu::rsp_flags::SNSVALID;
            let claimed = u32::try_from(bytes.len() + 64).unwrap_or(u32::MAX);
            bytes[28..32].copy_from_slice(&claimed.to_be_bytes());
        }
        MalformedRsp::UnknownTag => {
            for b in &mut bytes[8..16] {
                *b = !*b;
            }
        }
        MalformedRsp::UnknownOpcode => bytes[0] = 0xC7,
    }
}
