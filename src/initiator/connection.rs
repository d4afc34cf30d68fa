//! The connection: port ACTIVE, SA path, CM REQ/REP/RTU carrying the SRP login, the
//! login's retries, and losing the channel (QP reset, commands failed for retry,
//! back-off) — the [`Initiator`]'s phases up to "logged in" (reference §2.2, §2.4).

use super::*;

/// Consecutive failed path rounds before [`Event::NoPath`] is logged.
const NO_PATH_LOG_AFTER: u32 = 2;

impl<H: Hal> Initiator<H> {
    pub(super) fn advance(&mut self, now_us: u64, host: &mut impl Host) {
        // Each arm may move to the next phase; loop until nothing more is due now.
        for _ in 0..8 {
            let before = self.state();
            if let Phase::PortWait {
                since_us, next_us, ..
            } = self.phase
            {
                if now_us < next_us {
                    return;
                }
                self.port_wait(now_us, since_us, host);
                if self.state() == before {
                    return;
                }
                continue;
            }
            match &mut self.phase {
                Phase::PortWait { .. } => return,
                Phase::Path(client, wait) => {
                    let mut out = [0u8; 256];
                    match client.poll(now_us, &mut out) {
                        PathStep::Send => {
                            *wait = None;
                            self.mad = out;
                            let (lid, sl) = (self.port.sm_lid, self.port.sm_sl);
                            self.send_mad(lid, sl);
                        }
                        PathStep::Wait { until_us } => {
                            *wait = Some(until_us);
                            return;
                        }
                        PathStep::Done(rec) => self.start_connect(rec, None, host),
                        PathStep::Failed(e) => {
                            // A subnet still being swept answers "no record" for a
                            // moment (our port can be ACTIVE before the target's):
                            // logged once, when it persists over three rounds.
                            if self.losses_in_row >= NO_PATH_LOG_AFTER
                                && self.logged.first(Logged::NO_PATH)
                            {
                                host.log(Event::NoPath {
                                    status: path_status(&e),
                                });
                            }
                            self.backoff_or_fail(now_us, Fault::NoPath(e));
                        }
                    }
                }
                Phase::Connect(c) => {
                    if c.hold_until_us.is_some_and(|t| now_us < t) {
                        return;
                    }
                    c.hold_until_us = None;
                    let mut out = [0u8; 256];
                    let step = c.cm.poll(now_us, &mut out);
                    c.wait_until_us = match step {
                        ConnectStep::Wait { until_us } => Some(until_us),
                        _ => None,
                    };
                    if matches!(step, ConnectStep::Wait { .. } | ConnectStep::Idle) {
                        return;
                    }
                    self.mad = out;
                    self.on_connect_step(now_us, step, host);
                }
                Phase::Backoff { until_us } => {
                    if now_us < *until_us {
                        return;
                    }
                    self.phase = Phase::PortWait {
                        since_us: now_us,
                        next_us: now_us,
                    };
                }
                Phase::Discover | Phase::Ready | Phase::Failed(_) => return,
            }
            if self.state() == before && !matches!(self.phase, Phase::Path(..)) {
                return;
            }
        }
    }

    pub(super) fn port_wait(&mut self, now_us: u64, since: u64, host: &mut impl Host) {
        let state = match self.read_port() {
            Ok(s) => s,
            Err(f) => {
                self.fail(f, host);
                return;
            }
        };
        if state == u8::from(PortState::Active) {
            self.stats.active_at_us.get_or_insert(now_us);
            self.start_path();
        } else if now_us.saturating_sub(since) >= self.cfg.port_active_timeout_us {
            if self.logged.first(Logged::PORT) {
                host.log(port_event(state));
            }
            if self.ever_ready {
                // The disk was reached before: the port comes back when the cable or
                // the subnet manager does; keep asking.
                self.phase = Phase::PortWait {
                    since_us: since,
                    next_us: now_us.saturating_add(self.cfg.port_poll_us),
                };
            } else {
                self.phase = Phase::Failed(Fault::PortNotActive { state });
            }
        } else {
            self.phase = Phase::PortWait {
                since_us: since,
                next_us: now_us.saturating_add(self.cfg.port_poll_us),
            };
        }
    }

    pub(super) fn start_path(&mut self) {
        self.tid_seq = self.tid_seq.wrapping_add(0x100);
        let seed = self.random();
        let params = PathParams {
            sgid: self.port.gid(),
            dgid: self.cfg.target.dgid,
            pkey: self.cfg.target.pkey,
            service_id: Some(self.cfg.target.service_id),
            subnet_timeout: self.port.subnet_timeout,
            max_attempts: 8,
        };
        self.phase = Phase::Path(PathClient::new(params, self.tid_seq, seed), None);
    }

    pub(super) fn login_params(&self, it_iu_len: u32, formats: BufferFormats) -> LoginParams {
        // The configured extension, then our port GUID (see `TargetConfig`).
        let initiator =
            u128::from(self.cfg.target.initiator_ext) << 64 | u128::from(self.port.port_guid);
        LoginParams {
            initiator_port_id: initiator.to_be_bytes(),
            target_port_id: self.cfg.target.target_port_id,
            it_iu_len,
            formats,
        }
    }

    /// Resets the RC QP and takes it to INIT, then starts a CM connection carrying
    /// `login` (a fresh login with both descriptor formats when `None`).
    pub(super) fn start_connect(
        &mut self,
        path: PathRecord,
        login: Option<Login>,
        host: &mut impl Host,
    ) {
        if let Err(e) = self.reset_rc_qp() {
            self.fail(Fault::Hca(e), host);
            return;
        }
        let init = QpAttrs {
            port: PORT,
            pkey_index: self.port.pkey_index,
            remote_read: true,
            remote_write: true,
            ..QpAttrs::default()
        };
        if let Err(e) = self.modify_rc(Transition::Rst2Init, &init) {
            self.fail(Fault::Hca(e), host);
            return;
        }
        let login = login.unwrap_or_else(|| {
            self.login_attempts = 0;
            let tag = u64::from(self.random()) << 32 | 0x4C4F_4749;
            Login::new(
                self.login_params(IT_IU_LEN, BufferFormats::DIRECT_AND_INDIRECT),
                tag,
            )
        });
        self.comm_seq = self.comm_seq.wrapping_add(1);
        let params = ConnectParams {
            local_comm_id: self.comm_seq,
            service_id: self.cfg.target.service_id,
            local_ca_guid: self.port.node_guid,
            local_qpn: self.res.rc_qpn,
            starting_psn: self.random() & 0xFF_FFFF,
            path,
            local_gid: self.port.gid(),
            subnet_timeout: self.port.subnet_timeout,
            ca_ack_delay: 16,
            private_data: login.request(),
            max_cm_retries: 15,
        };
        self.phase = Phase::Connect(Connect {
            cm: Connector::new(params),
            login,
            path,
            hold_until_us: None,
            wait_until_us: None,
        });
        self.last_dlid = path.dlid;
    }

    pub(super) fn on_connect_step(&mut self, now_us: u64, step: ConnectStep, host: &mut impl Host) {
        let Phase::Connect(c) = &mut self.phase else {
            return;
        };
        match step {
            ConnectStep::Send => {
                let (dlid, sl) = (c.path.dlid, c.path.sl);
                self.send_mad(dlid, sl);
            }
            ConnectStep::Wait { until_us } => c.wait_until_us = Some(until_us),
            ConnectStep::Idle => {}
            ConnectStep::Rep(info) => {
                let negotiated = match c.login.on_response(&info.private_data) {
                    Ok(n) => n,
                    Err(_) => {
                        // An SRP_LOGIN_RSP we cannot use: refuse the connection.
                        let mut out = [0u8; 256];
                        let _ = c.cm.disconnect(now_us, &mut out);
                        self.mad = out;
                        let (dlid, sl) = (c.path.dlid, c.path.sl);
                        self.send_mad(dlid, sl);
                        host.log(Event::MalformedReply {
                            what: Malformed::Iu as u16,
                        });
                        self.backoff_or_fail(now_us, Fault::BadLoginResponse);
                        return;
                    }
                };
                if let Err(f) = self.establish(&info.qp) {
                    self.fail(f, host);
                    return;
                }
                let Phase::Connect(c) = core::mem::replace(&mut self.phase, Phase::Discover) else {
                    return;
                };
                let mut cm = c.cm;
                let mut out = [0u8; 256];
                let _ = cm.established(now_us, &mut out);
                self.mad = out;
                self.send_mad(c.path.dlid, c.path.sl);
                self.conn = Some(Conn {
                    cm,
                    dlid: c.path.dlid,
                    sl: c.path.sl,
                });
                self.session = Some(Session::new(negotiated));
                self.negotiated = Some(negotiated);
                self.stats.logins = self.stats.logins.wrapping_add(1);
                self.stats.logged_in_at_us.get_or_insert(now_us);
                self.losses_in_row = 0;
                self.discover(now_us, host);
            }
            ConnectStep::Rejected(rej) => {
                if rej.is_stale() {
                    self.stats.stale = self.stats.stale.wrapping_add(1);
                    let (path, login) = (c.path, c.login);
                    self.start_connect(path, Some(login), host);
                    if let Phase::Connect(c) = &mut self.phase {
                        c.hold_until_us = Some(now_us.saturating_add(self.cfg.stale_retry_us));
                    }
                    return;
                }
                if let Some(login_rej) = rej.login_rej {
                    let mut private = [0u8; 32];
                    let _ = login_rej.emit(&mut private);
                    match c.login.on_reject(&private) {
                        LoginOutcome::Retry(next)
                            if self.login_attempts < self.cfg.max_login_attempts =>
                        {
                            self.login_attempts = self.login_attempts.saturating_add(1);
                            self.stats.login_retries = self.stats.login_retries.wrapping_add(1);
                            let path = c.path;
                            self.start_connect(path, Some(next), host);
                        }
                        LoginOutcome::Retry(_) => {
                            self.backoff_or_fail(now_us, Fault::LoginAttempts)
                        }
                        LoginOutcome::Fail(e) => {
                            let reason = match e {
                                LoginError::Rejected(r) => u32::from(r),
                                _ => 0,
                            };
                            if self.logged.first(Logged::REJECTED) {
                                host.log(Event::LoginRejected {
                                    reason: reason as u16,
                                });
                            }
                            self.backoff_or_fail(now_us, Fault::LoginRejected { reason });
                        }
                    }
                    return;
                }
                let reason = u16::from(rej.reason);
                if self.logged.first(Logged::REJECTED) {
                    host.log(Event::ConnectionRejected { reason });
                }
                self.backoff_or_fail(now_us, Fault::ConnectionRejected { reason });
            }
            ConnectStep::Failed(_) => {
                if self.logged.first(Logged::CONNECT_TIMEOUT) {
                    host.log(Event::ConnectTimeout);
                }
                self.backoff_or_fail(now_us, Fault::ConnectTimeout);
            }
            ConnectStep::Disconnected { drep } => {
                if drep {
                    let (dlid, sl) = (c.path.dlid, c.path.sl);
                    self.send_mad(dlid, sl);
                }
                self.backoff_or_fail(now_us, Fault::ConnectTimeout);
            }
        }
    }

    /// Posts every receive, then INIT → RTR → RTS with what the CM derived.
    pub(super) fn establish(&mut self, qp: &QpParams) -> Result<(), Fault> {
        while usize::from(self.q.rc_rq.outstanding()) < RECV_SLOTS {
            let slot = self.layout.recv_slot(self.recv_posted);
            self.q.rc_rq.post(&self.dma, &[slot]).map_err(Fault::Post)?;
            self.recv_posted = self.recv_posted.wrapping_add(1);
        }
        let attrs = QpAttrs {
            port: PORT,
            pkey_index: self.port.pkey_index,
            mtu: qp.mtu.into(),
            remote_qpn: qp.dest_qpn,
            rlid: qp.rlid,
            sl: qp.sl,
            stat_rate: 0,
            rq_psn: qp.rq_psn,
            sq_psn: qp.sq_psn,
            log_rra_max: log2_floor(qp.max_dest_rd_atomic),
            log_sra_max: log2_floor(qp.max_rd_atomic),
            retry_count: qp.retry_count,
            rnr_retry: qp.rnr_retry,
            ack_timeout: qp.ack_timeout,
            min_rnr_nak: qp.min_rnr_timer,
            remote_read: true,
            remote_write: true,
            q_key: 0,
        };
        self.modify_rc(Transition::Init2Rtr, &attrs)
            .map_err(Fault::Hca)?;
        self.modify_rc(Transition::Rtr2Rts, &attrs)
            .map_err(Fault::Hca)
    }

    pub(super) fn modify_rc(&mut self, t: Transition, attrs: &QpAttrs) -> Result<(), CmdError> {
        objects::modify_qp(
            &mut self.hca.cmd,
            &self.hal,
            &self.dma,
            self.res.rc_qpn,
            ServiceType::Rc,
            t,
            attrs,
        )
    }

    /// RC QP to RST: the device forgets every WQE and takes no more RDMA; the
    /// driver's queue counters start again and stale completions are dropped.
    pub(super) fn reset_rc_qp(&mut self) -> Result<(), CmdError> {
        self.modify_rc(Transition::ToRst, &QpAttrs::default())?;
        let _ = self.q.rc_sq.reset(&self.dma);
        let _ = self.q.rc_rq.reset(&self.dma);
        while let Ok(Some(_)) = self.q.rc_cq.poll(&self.dma) {}
        self.send_posted = 0;
        self.send_done = 0;
        self.slots_busy = 0;
        self.recv_posted = 0;
        Ok(())
    }

    /// After a failed attempt: back off and try again, or give up. A path that does
    /// not exist, or a target that never answers, may appear later (the target boots
    /// after us): always retried. A refusal (login or connection rejected, too many
    /// login retries) is final only until the disk has been reached once: after
    /// that, it is the target restarting (its ACLs or ports not yet set up) and is
    /// waited out, for a system disk may never be given up.
    pub(super) fn backoff_or_fail(&mut self, now_us: u64, fault: Fault) {
        match fault {
            Fault::NoPath(_) | Fault::ConnectTimeout | Fault::BadLoginResponse => {
                self.back_off(now_us)
            }
            Fault::LoginRejected { .. }
            | Fault::ConnectionRejected { .. }
            | Fault::LoginAttempts
                if self.ever_ready =>
            {
                self.back_off(now_us)
            }
            f => self.phase = Phase::Failed(f),
        }
    }

    /// Waits before starting over from the port: the reconnect delay doubled per
    /// failed round in a row, capped, plus up to a quarter of jitter.
    fn back_off(&mut self, now_us: u64) {
        self.losses_in_row = self.losses_in_row.saturating_add(1);
        let shift = self.losses_in_row.min(16).saturating_sub(1);
        let delay = self
            .cfg
            .reconnect_delay_us
            .saturating_mul(1u64 << shift)
            .min(self.cfg.reconnect_delay_max_us);
        let jitter = u64::from(self.random()) % (delay / 4 + 1);
        self.phase = Phase::Backoff {
            until_us: now_us.saturating_add(delay).saturating_add(jitter),
        };
    }

    pub(super) fn fail(&mut self, fault: Fault, host: &mut impl Host) {
        if let Fault::Hca(e) = fault {
            host.log(Event::HcaBringupFailed {
                status: cmd_status(&e),
            });
        }
        self.phase = Phase::Failed(fault);
    }

    /// The channel is gone: the QP is reset (no more RDMA into our memory, no more
    /// completions for what was posted), the port's commands in flight are held to
    /// be sent again after the next login ([`Initiator::reissue`]; their IUs stay in
    /// their send slots), the initiator's own are dropped (discovery runs again), a
    /// LUN reset ends (the channel's tasks are gone with it), and the initiator
    /// reconnects after a delay. Logged once per outage: a loss while already
    /// reconnecting (the port going down during back-off) is not a new one.
    pub(super) fn lose(&mut self, now_us: u64, why: Loss, host: &mut impl Host) {
        let connected = self.session.is_some() || self.conn.is_some();
        if connected {
            self.stats.losses = self.stats.losses.wrapping_add(1);
            host.log(Event::TargetLost { why: why as u16 });
        }
        if self.lost_at_us.is_none() && self.ever_ready {
            self.lost_at_us = Some(now_us);
        }
        self.drop_channel(now_us, why != Loss::Dreq, host);
        if matches!(self.phase, Phase::Discover | Phase::Ready) {
            self.back_off(now_us);
        }
    }

    /// Drops the channel: a DREQ when `dreq` and the CM connection is up, the RC QP
    /// reset, the session gone; the port's commands in flight held, the initiator's own
    /// dropped, a LUN reset ended.
    pub(super) fn drop_channel(&mut self, now_us: u64, dreq: bool, host: &mut impl Host) {
        if dreq && let Some(mut conn) = self.conn.take() {
            let mut out = [0u8; 256];
            if conn.cm.disconnect(now_us, &mut out) == ConnectStep::Send {
                self.mad = out;
                self.send_mad(conn.dlid, conn.sl);
            }
        }
        self.conn = None;
        let _ = self.reset_rc_qp();
        self.session = None;
        for slot in self.inflight.iter_mut() {
            let Some(f) = slot else {
                continue;
            };
            if f.user >= INTERNAL {
                *slot = None;
            } else if f.tag.is_task_mgmt() && !f.held {
                let user = f.user;
                *slot = None;
                host.complete(user, &Outcome::status(SRB_STATUS_SUCCESS));
            } else if !f.held {
                f.held = true;
                f.deadline_us = u64::MAX;
                self.held_count = self.held_count.saturating_add(1);
            }
        }
    }

    /// `ScsiStopAdapter` (the adapter goes to a low-power state, for hibernation or
    /// sleep): the channel is dropped (a DREQ for the target's sake; commands in flight
    /// held) and the function disabled (TEARDOWN_HCA force close, every firmware page
    /// taken back, DISABLE_HCA), so that it no longer touches the DMA region, which the
    /// initiator keeps for [`Initiator::restart`]. A planned stop is not an outage:
    /// nothing is logged. Until the restart the initiator takes no request and
    /// [`Initiator::poll`] touches nothing.
    pub fn stop(&mut self, now_us: u64, host: &mut impl Host) -> Result<(), BringupError> {
        if self.stopped {
            return Ok(());
        }
        self.drop_channel(now_us, true, host);
        self.stopped = true;
        self.phase = Phase::Backoff { until_us: u64::MAX };
        self.teardown().map(|_| ())
    }

    /// `ScsiRestartAdapter` (after [`Initiator::stop`] and, usually, a power-down that
    /// reset the function; hibernation resume): brings the function up again in the
    /// same DMA region with the same plan (every queue where it was), creates the
    /// queues and keys again and starts over from the port. A function that is still
    /// running (no stop came, or someone used it since) is reset through the platform
    /// ([`Hal::reset_function`]), which fails where configuration space may not be
    /// written; bring-up failures are logged and leave the initiator stopped.
    ///
    /// Commands still held end with BUS RESET for the port to retry: their SRP_CMDs
    /// name the old memory key. The LUN map and "the disk was reached once" are kept,
    /// so every later fault is waited out as before.
    pub fn restart(&mut self, now_us: u64, host: &mut impl Host) -> Result<(), StartFault> {
        if !self.stopped {
            self.drop_channel(now_us, true, host);
            self.stopped = true;
            self.phase = Phase::Backoff { until_us: u64::MAX };
        }
        let hw = Hw::open(&self.hal, &self.dma, host)?;
        let Hw {
            layout,
            hca,
            res,
            q,
            rkey,
            mads,
        } = hw;
        self.layout = layout;
        self.hca = hca;
        self.res = res;
        self.q = q;
        self.rkey = rkey;
        self.mads = mads;
        self.stopped = false;
        self.port = PortAttrs::default();
        self.phase = Phase::PortWait {
            since_us: now_us,
            next_us: now_us,
        };
        self.send_posted = 0;
        self.send_done = 0;
        self.sent_from = [0; SEND_SLOTS];
        self.slots_busy = 0;
        self.reply_seq = 0;
        self.recv_posted = 0;
        self.losses_in_row = 0;
        self.login_attempts = 0;
        self.logged = Logged::default();
        self.reset_bus(host);
        Ok(())
    }

    /// Whether [`Initiator::stop`] stopped the function (and no restart followed).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Disconnects (our DREQ) for a clean shutdown; the caller polls until
    /// [`Initiator::disconnected`] or its own deadline.
    pub fn shutdown(&mut self, now_us: u64) {
        if let Some(conn) = &mut self.conn {
            let mut out = [0u8; 256];
            if conn.cm.disconnect(now_us, &mut out) == ConnectStep::Send {
                self.mad = out;
                let (dlid, sl) = (conn.dlid, conn.sl);
                self.send_mad(dlid, sl);
            }
        }
    }

    /// Whether no CM connection remains.
    pub fn disconnected(&self) -> bool {
        self.conn
            .as_ref()
            .is_none_or(|c| c.cm.state() == CmState::Closed)
    }
}

/// The event for a port that did not become ACTIVE in time: link up but left in INIT
/// or ARMED means no subnet manager configured it; otherwise the link is down.
fn port_event(state: u8) -> Event {
    match state {
        2 | 3 => Event::NoSubnetManager {
            state: state.into(),
        },
        _ => Event::PortNotActive {
            state: state.into(),
        },
    }
}
