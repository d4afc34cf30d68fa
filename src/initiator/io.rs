//! Commands: REPORT LUNS after login, requests from the port (SRP_CMD with the
//! request's own pages as descriptors, [`remote::describe`]), LUN reset, the RC
//! completion queue, SRP_RSP to SRB status, and what the target asks or breaks
//! (reference §2.3).

use super::*;

impl<H: Hal> Initiator<H> {
    pub(super) fn discover(&mut self, now_us: u64, host: &mut impl Host) {
        let alloc = self.layout.scratch.len as u32;
        let cdb = luns::report_luns_cdb(alloc);
        let Some(phys) = self.dma.phys(self.layout.scratch.offset) else {
            self.finish_discovery(now_us, &Outcome::status(SRB_STATUS_ERROR), host);
            return;
        };
        let req = Request {
            user: REPORT_LUNS_USER,
            target: 0,
            lun: 0,
            cdb: &cdb,
            dir: DataDir::In,
            transfer_len: alloc,
        };
        let seg = Segment { phys, len: alloc };
        if self
            .send_command(now_us, &req, [0u8; 8], [seg], host)
            .is_err()
        {
            self.finish_discovery(now_us, &Outcome::status(SRB_STATUS_ERROR), host);
        }
    }

    /// Takes a request. Completion comes through [`Host::complete`], possibly before
    /// this returns (a request that cannot be valid). `Err(Busy)`: not now.
    pub fn submit(
        &mut self,
        now_us: u64,
        req: &Request<'_>,
        segments: impl IntoIterator<Item = Segment>,
        host: &mut impl Host,
    ) -> Result<(), Refused> {
        // Commands held across a reconnect go first.
        if !matches!(self.phase, Phase::Ready) || self.held_count > 0 {
            self.stats.busy = self.stats.busy.wrapping_add(1);
            return Err(Refused::Busy);
        }
        if req.target != 0 {
            host.complete(req.user, &Outcome::status(SRB_STATUS_SELECTION_TIMEOUT));
            return Ok(());
        }
        let Some(lun) = self.luns.get(req.lun) else {
            host.complete(req.user, &Outcome::status(SRB_STATUS_INVALID_LUN));
            return Ok(());
        };
        if req.user >= INTERNAL {
            host.complete(req.user, &Outcome::status(SRB_STATUS_INVALID_REQUEST));
            return Ok(());
        }
        self.send_command(now_us, req, lun, segments, host)
    }

    pub(super) fn send_command(
        &mut self,
        now_us: u64,
        req: &Request<'_>,
        lun: [u8; 8],
        segments: impl IntoIterator<Item = Segment>,
        host: &mut impl Host,
    ) -> Result<(), Refused> {
        let max_sg = self.max_sg();
        let n = match (req.dir, req.transfer_len) {
            (DataDir::None, _) | (_, 0) => 0,
            _ => {
                let Some(descs) = self.descs.get_mut(..max_sg) else {
                    return Err(Refused::Busy);
                };
                match remote::describe(segments, self.rkey, descs) {
                    Ok(n) => n,
                    Err(DescribeError::TooManySegments { .. })
                    | Err(DescribeError::EmptySegment { .. })
                    | Err(DescribeError::AddressOverflow { .. }) => {
                        self.finish(
                            now_us,
                            req.user,
                            &Outcome::status(SRB_STATUS_INVALID_REQUEST),
                            host,
                        );
                        return Ok(());
                    }
                }
            }
        };
        let total: u64 = self
            .descs
            .get(..n)
            .unwrap_or(&[])
            .iter()
            .map(|d| u64::from(d.len))
            .sum();
        if total != u64::from(req.transfer_len) && n > 0 {
            self.finish(
                now_us,
                req.user,
                &Outcome::status(SRB_STATUS_INVALID_REQUEST),
                host,
            );
            return Ok(());
        }
        if self.send_posted.wrapping_sub(self.send_done) >= SEND_SLOTS as u64 {
            self.stats.busy = self.stats.busy.wrapping_add(1);
            return Err(Refused::Busy);
        }
        let Some(free) = self.free_entry() else {
            self.stats.busy = self.stats.busy.wrapping_add(1);
            return Err(Refused::Busy);
        };
        let rkey = self.rkey;
        let Some(session) = self.session.as_mut() else {
            return Err(Refused::Busy);
        };
        let tag = match session.start(req.user) {
            Ok(t) => t,
            Err(StartError::NoCredit { .. }) | Err(StartError::NoTag) => {
                self.stats.busy = self.stats.busy.wrapping_add(1);
                return Err(Refused::Busy);
            }
            Err(_) => {
                self.finish(
                    now_us,
                    req.user,
                    &Outcome::status(SRB_STATUS_INVALID_REQUEST),
                    host,
                );
                return Ok(());
            }
        };
        let slot = self.layout.send_slot(free);
        let iu_addr = self.dma.phys(slot.offset).unwrap_or(0);
        let dir = if n == 0 { DataDir::None } else { req.dir };
        let segs = self.descs.get(..n).unwrap_or(&[]);
        let cmd = Command {
            lun,
            cdb: req.cdb,
            dir,
            task_attr: TaskAttr::Simple,
            segments: segs,
        };
        let len = match session.build_cmd(tag, &cmd, iu_addr, rkey, &mut self.iu) {
            Ok(len) => len,
            Err(_) => {
                self.finish(
                    now_us,
                    req.user,
                    &Outcome::status(SRB_STATUS_INVALID_REQUEST),
                    host,
                );
                return Ok(());
            }
        };
        if self.post_iu(free, len).is_err() {
            // Cannot happen with a free send slot; give the tag back.
            if let Some(session) = self.session.as_mut() {
                let _ = session.abandon(tag);
            }
            return Err(Refused::Busy);
        }
        if let Some(s) = self.inflight.get_mut(free) {
            *s = Some(Inflight {
                user: req.user,
                tag,
                transfer_len: req.transfer_len,
                deadline_us: now_us.saturating_add(self.cfg.command_timeout_us),
                iu_len: len as u16,
                held: false,
            });
        }
        self.stats.commands = self.stats.commands.wrapping_add(1);
        Ok(())
    }

    /// A free entry of the in-flight table whose send slot is no longer on the send
    /// queue.
    pub(super) fn free_entry(&self) -> Option<usize> {
        (0..self.inflight.len())
            .find(|&i| self.inflight.get(i).is_some_and(Option::is_none) && self.slot_free(i))
    }

    fn slot_free(&self, slot: usize) -> bool {
        slot < SEND_SLOTS && self.slots_busy & (1u64 << slot) == 0
    }

    /// Writes the IU built in the staging buffer into send slot `slot` and posts it.
    pub(super) fn post_iu(&mut self, slot: usize, len: usize) -> Result<(), PostError> {
        let span = self.layout.send_slot(slot);
        let bytes = self.iu.get(..len).ok_or(PostError::TooLong { len })?;
        self.dma.write(span.offset, bytes)?;
        self.post_slot(slot, len)
    }

    /// Posts the IU already in send slot `slot`.
    fn post_slot(&mut self, slot: usize, len: usize) -> Result<(), PostError> {
        let span = self.layout.send_slot(slot);
        self.q.rc_sq.post_rc_send(
            &self.hal,
            &self.dma,
            Span {
                offset: span.offset,
                len,
            },
        )?;
        if let Some(s) = self
            .sent_from
            .get_mut(self.send_posted as usize % SEND_SLOTS)
        {
            *s = slot as u8;
        }
        self.slots_busy |= 1u64 << (slot % SEND_SLOTS);
        self.send_posted = self.send_posted.wrapping_add(1);
        self.stats.iu_bytes = self.stats.iu_bytes.wrapping_add(len as u64);
        Ok(())
    }

    /// Sends again, on the new channel, the commands held across a loss: each gets a
    /// new tag (and a credit), written over the old one in the IU that still lies in
    /// its send slot; nothing else of the IU changes (its descriptors name the
    /// request's pages through the physical-address key, which outlives channels).
    /// A command the new login no longer admits (its IU longer than the target now
    /// takes, or indirect descriptors a target now refuses) fails with BUS RESET for
    /// the port to rebuild. Stops at the first command without a credit or tag; the
    /// next poll goes on.
    #[inline(never)]
    pub(super) fn reissue(&mut self, now_us: u64, host: &mut impl Host) {
        if !matches!(self.phase, Phase::Ready) {
            return;
        }
        let Some(neg) = self.negotiated else {
            return;
        };
        for i in 0..self.inflight.len() {
            let Some(f) = self.inflight.get(i).copied().flatten() else {
                continue;
            };
            if !f.held {
                continue;
            }
            if self.send_posted.wrapping_sub(self.send_done) >= SEND_SLOTS as u64 {
                return;
            }
            let span = self.layout.send_slot(i);
            let mut head = [0u8; 32];
            let readable = self.dma.read(span.offset, &mut head).is_ok();
            let fmt = head.get(fabboot_srp::cmd::BUF_FMT_AT).copied().unwrap_or(0);
            let lun: [u8; 8] = head
                .get(fabboot_srp::cmd::LUN_AT)
                .and_then(|l| l.try_into().ok())
                .unwrap_or([0; 8]);
            let indirect = fmt & 0x0F == 2 || fmt >> 4 == 2;
            let admitted = readable
                && u32::from(f.iu_len) <= neg.max_it_iu_len
                && (!indirect || neg.formats.contains(BufferFormats::INDIRECT));
            if !admitted {
                self.fail_held(i, f.user, host);
                continue;
            }
            let Some(session) = self.session.as_mut() else {
                return;
            };
            let tag = match session.start(f.user) {
                Ok(t) => t,
                Err(StartError::NoCredit { .. }) | Err(StartError::NoTag) => return,
                Err(_) => {
                    self.fail_held(i, f.user, host);
                    continue;
                }
            };
            if session.resend(tag, lun).is_err() {
                let _ = session.abandon(tag);
                self.fail_held(i, f.user, host);
                continue;
            }
            let at = span.offset.saturating_add(fabboot_srp::cmd::TAG_AT);
            let posted = self
                .dma
                .write(at, &tag.wire().to_be_bytes())
                .map_err(PostError::from)
                .and_then(|()| self.post_slot(i, usize::from(f.iu_len)));
            if posted.is_err() {
                if let Some(session) = self.session.as_mut() {
                    let _ = session.abandon(tag);
                }
                self.fail_held(i, f.user, host);
                continue;
            }
            if let Some(Some(e)) = self.inflight.get_mut(i) {
                e.tag = tag;
                e.held = false;
                self.held_count = self.held_count.saturating_sub(1);
                e.deadline_us = now_us.saturating_add(self.cfg.command_timeout_us);
            }
            self.stats.commands = self.stats.commands.wrapping_add(1);
            self.stats.reissued = self.stats.reissued.wrapping_add(1);
        }
    }

    /// A held command ends with BUS RESET (the channel it was sent on is gone and
    /// its QP reset: nothing can reach its buffer any more).
    fn fail_held(&mut self, entry: usize, user: u32, host: &mut impl Host) {
        if let Some(e) = self.inflight.get_mut(entry) {
            *e = None;
        }
        self.held_count = self.held_count.saturating_sub(1);
        self.stats.failed_for_retry = self.stats.failed_for_retry.wrapping_add(1);
        host.complete(user, &Outcome::status(SRB_STATUS_BUS_RESET));
    }

    /// The port reset the bus (its timeout for a request passed). While the channel
    /// is down the held commands can safely end (their QP is reset, no RDMA can reach
    /// their buffers) and do, with BUS RESET; commands on a live channel end normally
    /// or when the channel is rebuilt, never early.
    pub fn reset_bus(&mut self, host: &mut impl Host) {
        if self.session.is_some() {
            return;
        }
        for i in 0..self.inflight.len() {
            if let Some(Some(f)) = self.inflight.get(i).copied()
                && f.held
            {
                self.fail_held(i, f.user, host);
            }
        }
    }

    /// Sends an SRP LUN RESET for SRB LUN `lun` (the port's bus or LUN reset).
    /// Completion comes through [`Host::complete`] with `user`.
    pub fn reset_lun(
        &mut self,
        now_us: u64,
        user: u32,
        lun: u8,
        host: &mut impl Host,
    ) -> Result<(), Refused> {
        if !matches!(self.phase, Phase::Ready) {
            return Err(Refused::Busy);
        }
        let Some(sam_lun) = self.luns.get(lun) else {
            host.complete(user, &Outcome::status(SRB_STATUS_INVALID_LUN));
            return Ok(());
        };
        if self.send_posted.wrapping_sub(self.send_done) >= SEND_SLOTS as u64 {
            return Err(Refused::Busy);
        }
        let Some(free) = self.free_entry() else {
            return Err(Refused::Busy);
        };
        let Some(session) = self.session.as_mut() else {
            return Err(Refused::Busy);
        };
        let (tag, len) = match session.start_task_mgmt(
            user,
            sam_lun,
            TaskFunction::LogicalUnitReset,
            None,
            &mut self.iu,
        ) {
            Ok(t) => t,
            Err(_) => return Err(Refused::Busy),
        };
        if self.post_iu(free, len).is_err() {
            if let Some(session) = self.session.as_mut() {
                let _ = session.abandon(tag);
            }
            return Err(Refused::Busy);
        }
        if let Some(s) = self.inflight.get_mut(free) {
            *s = Some(Inflight {
                user,
                tag,
                transfer_len: 0,
                deadline_us: now_us.saturating_add(self.cfg.command_timeout_us),
                iu_len: len as u16,
                held: false,
            });
        }
        Ok(())
    }

    pub(super) fn poll_rc(&mut self, now_us: u64, host: &mut impl Host) {
        loop {
            let c = match self.q.rc_cq.poll(&self.dma) {
                Ok(Some(c)) => c,
                _ => return,
            };
            if c.is_error() {
                self.stats.rc_errors = self.stats.rc_errors.wrapping_add(1);
                if self.session.is_some() {
                    self.lose(now_us, Loss::QpError, host);
                }
                return;
            }
            match c.opcode {
                CqeOpcode::Req => {
                    self.q.rc_sq.complete(c.wqe_counter);
                    // One WQE block per SEND: completions retire sends one by one.
                    if self.send_done < self.send_posted {
                        let retired = self
                            .sent_from
                            .get(self.send_done as usize % SEND_SLOTS)
                            .copied()
                            .unwrap_or(0);
                        self.slots_busy &= !(1u64 << (usize::from(retired) % SEND_SLOTS));
                        self.send_done = self.send_done.wrapping_add(1);
                    }
                }
                CqeOpcode::RespSend => {
                    self.q.rc_rq.complete(c.wqe_counter);
                    let slot = self.layout.recv_slot(usize::from(c.wqe_counter));
                    let n = (c.byte_cnt as usize).min(RECV_SLOT);
                    let ok = self
                        .rx
                        .get_mut(..n)
                        .is_some_and(|b| self.dma.read(slot.offset, b).is_ok());
                    // The entry goes back at once, to the slot of the next index.
                    let next = self.layout.recv_slot(self.recv_posted);
                    if self.q.rc_rq.post(&self.dma, &[next]).is_ok() {
                        self.recv_posted = self.recv_posted.wrapping_add(1);
                    }
                    if ok {
                        self.on_iu(now_us, n, host);
                    }
                }
                _ => {}
            }
        }
    }

    pub(super) fn on_iu(&mut self, now_us: u64, n: usize, host: &mut impl Host) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let iu = self.rx.get(..n).unwrap_or(&[]);
        // A CRED_RSP or AER_RSP is written straight into the send build buffer.
        match session.on_iu(iu, &mut self.iu) {
            Ok(Incoming::Completed(done)) => {
                self.stats.responses = self.stats.responses.wrapping_add(1);
                let Some(pos) = self
                    .inflight
                    .iter()
                    .position(|s| s.is_some_and(|f| !f.held && f.tag == done.tag))
                else {
                    return;
                };
                let Some(f) = self.inflight.get_mut(pos).and_then(Option::take) else {
                    return;
                };
                let residual = if done.data_in_residual != 0 {
                    done.data_in_residual
                } else {
                    done.data_out_residual
                };
                let rsp = Response {
                    status: done.status,
                    sense: done.sense.map_or(&[][..], |s| s.of(iu)),
                    residual,
                };
                let mut out = request::outcome(f.transfer_len, &rsp);
                if f.tag.is_task_mgmt() {
                    let code = done.response_code.unwrap_or(0);
                    out = Outcome::status(if code == 0 {
                        SRB_STATUS_SUCCESS
                    } else {
                        SRB_STATUS_ERROR
                    });
                }
                self.stats.bytes = self.stats.bytes.wrapping_add(u64::from(out.transferred));
                self.finish(now_us, f.user, &out, host);
            }
            Ok(Incoming::Reply(len)) => {
                self.stats.target_requests = self.stats.target_requests.wrapping_add(1);
                // The reply slots in turn; a reply with none free is dropped (the
                // target asks again or times out the channel).
                const REPLY_SLOTS: usize = SEND_SLOTS - REPLY_SLOT0;
                let free = (0..REPLY_SLOTS)
                    .map(|k| REPLY_SLOT0 + (self.reply_seq.wrapping_add(k)) % REPLY_SLOTS)
                    .find(|&s| self.slot_free(s));
                if let Some(slot) = free
                    && self.send_posted.wrapping_sub(self.send_done) < SEND_SLOTS as u64
                    && self.post_iu(slot, len).is_ok()
                {
                    self.reply_seq = slot.wrapping_sub(REPLY_SLOT0).wrapping_add(1);
                }
            }
            Ok(Incoming::Logout(_)) => self.lose(now_us, Loss::TargetLogout, host),
            Err(e) => self.malformed(now_us, e, n, host),
        }
    }

    /// An IU the session refused. When it is an SRP_RSP whose tag names a command in
    /// flight, the target has finished with that command's buffer (its RDMA precedes
    /// its SEND on the channel), so the command fails at once for the port to retry;
    /// otherwise it stays until its timeout rebuilds the channel.
    pub(super) fn malformed(
        &mut self,
        now_us: u64,
        e: SessionError,
        n: usize,
        host: &mut impl Host,
    ) {
        self.stats.malformed = self.stats.malformed.wrapping_add(1);
        host.log(Event::MalformedReply {
            what: Malformed::Iu as u16,
        });
        let iu = self.rx.get(..n).unwrap_or(&[]);
        let wire_tag = match e {
            SessionError::SenseTooLong { tag, .. } | SessionError::ResidualFlags { tag, .. } => {
                Some(tag)
            }
            SessionError::Wire(_) if IuType::of(iu) == Some(IuType::Rsp) => iu
                .get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
            _ => None,
        };
        let Some(wire_tag) = wire_tag else {
            return;
        };
        let Some(pos) = self
            .inflight
            .iter()
            .position(|s| s.is_some_and(|f| !f.held && f.tag.wire() == wire_tag))
        else {
            return;
        };
        let Some(f) = self.inflight.get_mut(pos).and_then(Option::take) else {
            return;
        };
        if let Some(session) = self.session.as_mut() {
            let _ = session.abandon(f.tag);
        }
        self.finish(now_us, f.user, &Outcome::status(SRB_STATUS_ERROR), host);
    }

    /// Ends a request: the port's go to the port; the initiator's own REPORT LUNS
    /// ends discovery (whatever its outcome, so discovery cannot hang).
    fn finish(&mut self, now_us: u64, user: u32, out: &Outcome, host: &mut impl Host) {
        if user == REPORT_LUNS_USER {
            self.finish_discovery(now_us, out, host);
        } else {
            host.complete(user, out);
        }
    }

    pub(super) fn finish_discovery(&mut self, now_us: u64, out: &Outcome, host: &mut impl Host) {
        let mut data = [0u8; 8 + 8 * luns::MAX_LUNS];
        let n = (out.transferred as usize).min(data.len());
        let read = data
            .get_mut(..n)
            .is_some_and(|d| self.dma.read(self.layout.scratch.offset, d).is_ok());
        let ok = out.srb_status_code() == SRB_STATUS_SUCCESS
            || out.srb_status_code() == crate::port::abi::SRB_STATUS_DATA_OVERRUN;
        self.luns = match (ok && read).then(|| LunMap::parse(data.get(..n).unwrap_or(&[]))) {
            Some(Ok(map)) => map,
            Some(Err(_)) => {
                host.log(Event::MalformedReply {
                    what: Malformed::LunList as u16,
                });
                LunMap::lun0()
            }
            None => LunMap::lun0(),
        };
        if matches!(self.phase, Phase::Discover) {
            self.phase = Phase::Ready;
            self.stats.ready_at_us.get_or_insert(now_us);
            self.ever_ready = true;
            self.logged = Logged::default();
            if let Some(lost) = self.lost_at_us.take() {
                let outage = now_us.saturating_sub(lost);
                self.stats.longest_outage_us = self.stats.longest_outage_us.max(outage);
                host.log(Event::Reconnected {
                    ms: u16::try_from(outage / 1000).unwrap_or(u16::MAX),
                });
            }
            if self.held_count > 0 {
                self.reissue(now_us, host);
            }
        }
    }

    pub(super) fn check_timeouts(&mut self, now_us: u64, host: &mut impl Host) {
        let overdue = self
            .inflight
            .iter()
            .flatten()
            .any(|f| f.deadline_us <= now_us);
        if overdue && self.session.is_some() {
            self.lose(now_us, Loss::CommandTimeout, host);
        }
    }
}
