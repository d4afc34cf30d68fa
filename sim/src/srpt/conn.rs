//! The passive side of the IB communication manager (IBTA vol. 1 §12.6, §12.9; the
//! behaviour of Linux `cm.c` that reference/srp-cm-sa-dm.md §1.4 records) and the SRP
//! login it carries (§3.2, §3.3).
//!
//! - REQ: duplicates (same remote comm ID and CA GUID) get the REP again while it is
//!   unanswered, the MRA again while the REP is held back, REJ 10 in TimeWait, and are
//!   otherwise counted and dropped. A REQ from a CA GUID and QPN that still has a
//!   connection gets REJ 10 and that connection a DREQ. Then: Service ID (REJ 8),
//!   transport type (REJ 9), MTU (REJ 26), our primary GID (REJ 12) and LID (REJ 13),
//!   then the SRP login: REP + [`Action::OpenChannel`], or REJ 28 with SRP_LOGIN_REJ.
//! - A REQ with ClassVersion other than 2 gets REJ 31 with the version we speak in
//!   the ARI; other CM messages of another version are dropped.
//! - Get/Set: GetResp, with ClassPortInfo for a Get of it and status "method/attribute
//!   not supported" otherwise. Other methods, responses included, are dropped.
//! - RTU makes the channel live; MRA of our REP extends its timer; REJ drops the
//!   channel; DREQ gets a DREP (also for connections we do not know, as Linux does) and
//!   closes the channel; DREP ends our own DREQ. Closed connections wait in TimeWait.
//! - Timers: the REP is sent again after the REQ's remote CM response timeout plus
//!   twice the packet lifetime (the REQ's Local ACK Timeout less one), up to Max CM
//!   Retries times, then REJ 4 (timeout); the DREQ likewise, then the channel is closed
//!   anyway. TimeWait lasts the Local ACK Timeout.

use super::cm::{
    self, CmMad, CommIds, Drep, DreqRepr, MAD_LEN, MadHeader, MraRepr, RejRepr, RepRepr, ReqRepr,
    attr, method, msg, rej,
};
use super::iu::{LoginRej, LoginReq, LoginRsp, rej_reason};
use super::{
    Action, Channel, ChannelId, ChannelInfo, ChannelState, Conn, Deferred, MadFrom, SrpTarget,
    SrptError, TimeWait, login,
};

/// ClassPortInfo RespTimeValue we report (4.096 µs × 2^18 ≈ 1.07 s).
const RESP_TIME_VALUE: u8 = 18;

/// The starting PSN of a channel's send queue, a fixed function of its QPN so that runs
/// repeat.
fn starting_psn(qpn: u32) -> u32 {
    qpn.wrapping_mul(0x0019_660D).wrapping_add(0x3C6E_F35F) & 0xFF_FFFF
}

/// A REJ MAD.
fn rej_mad(
    tid: u64,
    local: u32,
    remote: u32,
    msg_rejected: u8,
    reason: u16,
    ari: &[u8],
    private: &[u8],
) -> [u8; MAD_LEN] {
    let mut r = RejRepr {
        local_comm_id: local,
        remote_comm_id: remote,
        msg_rejected,
        reject_info_len: ari.len().min(72) as u8,
        reason,
        ari: [0; 72],
        private_data: [0; 148],
    };
    let n = ari.len().min(72);
    r.ari[..n].copy_from_slice(&ari[..n]);
    let n = private.len().min(148);
    r.private_data[..n].copy_from_slice(&private[..n]);
    r.to_mad(tid)
}

impl SrpTarget {
    fn send_mad(out: &mut Vec<Action>, dlid: u16, dqpn: u32, mad: [u8; MAD_LEN]) {
        out.push(Action::SendMad { dlid, dqpn, mad });
    }

    fn ignore(&mut self, e: SrptError) {
        self.error(e);
        self.stats.mads_ignored += 1;
    }

    /// Dispatches one CM MAD.
    pub(super) fn cm_mad(&mut self, from: MadFrom, mad: &[u8; MAD_LEN], out: &mut Vec<Action>) {
        let hdr = match MadHeader::parse(mad) {
            Ok(h) => h,
            Err(e) => return self.ignore(SrptError::Cm(e)),
        };
        if hdr.base_version != cm::BASE_VERSION {
            return self.ignore(SrptError::BadBaseVersion(hdr.base_version));
        }
        if hdr.mgmt_class != cm::CLASS_CM {
            return self.ignore(SrptError::NotCm {
                class: hdr.mgmt_class,
            });
        }
        let p = cm::payload(mad);
        match hdr.method {
            method::GET | method::SET => return self.get_resp(from, &hdr, out),
            method::SEND => {}
            m => {
                return self.ignore(SrptError::UnsupportedMethod {
                    method: m,
                    attr: hdr.attr_id,
                });
            }
        }
        if hdr.class_version != cm::CM_CLASS_VERSION {
            self.error(SrptError::BadClassVersion {
                attr: hdr.attr_id,
                version: hdr.class_version,
            });
            if hdr.attr_id == attr::REQ {
                // IBTA §12.6.7: REJ "invalid class version", the ARI naming the version
                // we speak. The REQ's Local Comm ID sits where every CM message has it.
                let remote = CommIds::parse(p).map_or(0, |c| c.local_comm_id);
                let mad = rej_mad(
                    hdr.tid,
                    0,
                    remote,
                    msg::REQ,
                    rej::INVALID_CLASS_VERSION,
                    &[cm::CM_CLASS_VERSION],
                    &[],
                );
                self.stats.cm_rejects += 1;
                Self::send_mad(out, from.slid, from.src_qp, mad);
            } else {
                self.stats.mads_ignored += 1;
            }
            return;
        }
        let parsed = match hdr.attr_id {
            attr::REQ => ReqRepr::parse(p).map(|r| self.req(from, hdr.tid, &r, out)),
            attr::RTU => CommIds::parse(p).map(|c| self.rtu(c)),
            attr::DREQ => DreqRepr::parse(p).map(|d| self.dreq(from, hdr.tid, d, out)),
            attr::DREP => CommIds::parse(p).map(|c| self.drep(c, out)),
            attr::REJ => RejRepr::parse(p).map(|r| self.rej(&r, out)),
            attr::MRA => MraRepr::parse(p).map(|m| self.mra(&m)),
            other => return self.ignore(SrptError::UnexpectedAttribute(other)),
        };
        if let Err(e) = parsed {
            self.ignore(SrptError::Cm(e));
        }
    }

    /// Answers a Get or Set (IBTA §13.4.6.1: every request method has a GetResp).
    fn get_resp(&mut self, from: MadFrom, hdr: &MadHeader, out: &mut Vec<Action>) {
        let mut resp = MadHeader {
            method: method::GET_RESP,
            status: 0,
            ..*hdr
        };
        let class_port_info = hdr.method == method::GET && hdr.attr_id == attr::CLASS_PORT_INFO;
        if hdr.class_version != cm::CM_CLASS_VERSION {
            resp.status = cm::status::BAD_VERSION;
            resp.class_version = cm::CM_CLASS_VERSION;
            self.error(SrptError::BadClassVersion {
                attr: hdr.attr_id,
                version: hdr.class_version,
            });
        } else if !class_port_info {
            resp.status = cm::status::UNSUPPORTED_METHOD_ATTR;
            self.error(SrptError::UnsupportedMethod {
                method: hdr.method,
                attr: hdr.attr_id,
            });
        }
        let ok = resp.status == 0;
        let mad = cm::build(&resp, |p| {
            if ok {
                // ClassPortInfo (IBTA §13.4.8.1): BaseVersion, ClassVersion,
                // CapabilityMask 0, CapabilityMask2 0 and RespTimeValue in the low five
                // bits of bytes 4..8; no redirection, no traps.
                p[0] = cm::BASE_VERSION;
                p[1] = cm::CM_CLASS_VERSION;
                p[7] = RESP_TIME_VALUE;
            }
        });
        Self::send_mad(out, from.slid, from.src_qp, mad);
    }

    /// A REQ (IBTA §12.6.5; reference §1.4 "Passive-side behaviour").
    fn req(&mut self, from: MadFrom, tid: u64, req: &ReqRepr, out: &mut Vec<Action>) {
        let reject = |out: &mut Vec<Action>, reason: u16, ari: &[u8]| {
            let mad = rej_mad(tid, 0, req.local_comm_id, msg::REQ, reason, ari, &[]);
            Self::send_mad(out, from.slid, from.src_qp, mad);
        };
        if std::mem::take(&mut self.faults.stale_next_req) {
            self.stats.cm_rejects += 1;
            return reject(out, rej::STALE_CONNECTION, &[]);
        }
        // A retransmitted REQ: keyed on (remote comm ID, remote CA GUID).
        let same = |id: u32, guid: u64| id == req.local_comm_id && guid == req.local_ca_guid;
        if let Some((&id, ch)) = self
            .channels
            .iter()
            .find(|(_, c)| same(c.info.remote_comm_id, c.info.remote_ca_guid))
        {
            self.stats.duplicate_reqs += 1;
            if ch.info.state == ChannelState::Connecting {
                self.stats.rep_resends += 1;
                Self::send_mad(out, from.slid, from.src_qp, ch.conn.rep);
            } else {
                self.ignore(SrptError::UnexpectedInState {
                    attr: attr::REQ,
                    channel: id,
                });
            }
            return;
        }
        if let Some(d) = self
            .deferred
            .iter()
            .find(|d| same(d.req.local_comm_id, d.req.local_ca_guid))
        {
            self.stats.duplicate_reqs += 1;
            self.stats.mras_sent += 1;
            Self::send_mad(out, from.slid, from.src_qp, d.mra);
            return;
        }
        if let Some(tw) = self
            .timewait
            .iter()
            .find(|t| same(t.remote_comm_id, t.remote_ca_guid))
        {
            self.stats.duplicate_reqs += 1;
            self.stats.cm_rejects += 1;
            let mad = rej_mad(
                tid,
                tw.local_comm_id,
                req.local_comm_id,
                msg::REQ,
                rej::STALE_CONNECTION,
                &[],
                &[],
            );
            Self::send_mad(out, from.slid, from.src_qp, mad);
            return;
        }
        // A connection from the same CA GUID and QPN still exists: stale.
        let stale: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| {
                c.info.remote_ca_guid == req.local_ca_guid && c.info.remote_qpn == req.local_qpn
            })
            .map(|(id, _)| *id)
            .collect();
        if !stale.is_empty() {
            self.stats.cm_rejects += 1;
            reject(out, rej::STALE_CONNECTION, &[]);
            for id in stale {
                self.disconnect_channel(id, out);
            }
            return;
        }
        let checks = [
            (
                req.service_id != self.cfg.service_id,
                rej::INVALID_SERVICE_ID,
                Vec::new(),
            ),
            (
                req.transport_type != cm::TRANSPORT_RC,
                rej::INVALID_TRANSPORT,
                Vec::new(),
            ),
            (
                !(1..=5).contains(&req.path_mtu),
                rej::INVALID_MTU,
                vec![self.cfg.mtu],
            ),
            (
                req.primary.remote_gid != self.cfg.port_gid,
                12,
                self.cfg.port_gid.to_vec(),
            ),
            (
                req.primary.remote_lid != self.cfg.lid
                    && req.primary.remote_lid != cm::PERMISSIVE_LID,
                13,
                self.cfg.lid.to_be_bytes().to_vec(),
            ),
        ];
        if let Some((_, reason, ari)) = checks.into_iter().find(|c| c.0) {
            self.stats.cm_rejects += 1;
            return reject(out, reason, &ari);
        }
        let local = self.alloc_comm_id();
        if let Some((service_timeout, delay_ns)) = self.faults.delay_rep.take() {
            let mra = MraRepr {
                local_comm_id: local,
                remote_comm_id: req.local_comm_id,
                msg_mraed: msg::REQ,
                service_timeout,
            }
            .to_mad(tid);
            self.deferred.push(Deferred {
                local_comm_id: local,
                from,
                tid,
                req: req.clone(),
                mra,
                due_ns: self.now_ns.saturating_add(delay_ns),
            });
            self.stats.mras_sent += 1;
            Self::send_mad(out, from.slid, from.src_qp, mra);
            return;
        }
        self.login(from, tid, local, req, out);
    }

    /// The SRP login carried by a REQ that passed the CM checks.
    pub(super) fn login(
        &mut self,
        from: MadFrom,
        tid: u64,
        local: u32,
        req: &ReqRepr,
        out: &mut Vec<Action>,
    ) {
        let consumer_reject = |out: &mut Vec<Action>, rej: LoginRej| {
            let mut pd = [0u8; LoginRej::LEN];
            rej.emit(&mut pd);
            let mad = rej_mad(
                tid,
                local,
                req.local_comm_id,
                msg::REQ,
                rej::CONSUMER,
                &[],
                &pd,
            );
            Self::send_mad(out, from.slid, from.src_qp, mad);
        };
        let sup_buf_fmt = self.cfg.buf_formats();
        let login = match LoginReq::parse(&req.private_data) {
            Ok(l) => l,
            Err(e) => {
                self.error(SrptError::BadLoginReq(e));
                self.stats.logins_rejected += 1;
                let tag = super::iu::tag_of(&req.private_data).unwrap_or(0);
                return consumer_reject(
                    out,
                    LoginRej {
                        reason: rej_reason::NO_REASON,
                        tag,
                        sup_buf_fmt,
                    },
                );
            }
        };
        let accepted =
            match login::check(&self.cfg, self.faults.reject_logins, &login, &self.channels) {
                Ok(a) => a,
                Err(reason) => {
                    self.stats.logins_rejected += 1;
                    return consumer_reject(
                        out,
                        LoginRej {
                            reason,
                            tag: login.tag,
                            sup_buf_fmt,
                        },
                    );
                }
            };
        for id in &accepted.close {
            self.disconnect_channel(*id, out);
        }
        let channel = ChannelId(self.next_channel);
        self.next_channel = self.next_channel.wrapping_add(1);
        let local_qpn = self.next_qpn;
        self.next_qpn = (self.next_qpn + 1) & 0xFF_FFFF;
        let sq_psn = starting_psn(local_qpn);
        let rsp = LoginRsp {
            req_lim_delta: self.cfg.req_lim,
            tag: login.tag,
            max_it_iu_len: self.cfg.max_req_it_iu_len,
            max_ti_iu_len: login.req_it_iu_len,
            sup_buf_fmt,
            flags: accepted.multichannel_result
                | if accepted.immediate_offset.is_some() {
                    super::iu::login_flags::IMMEDIATE
                } else {
                    0
                },
        };
        let mut rep = RepRepr {
            local_comm_id: local,
            remote_comm_id: req.local_comm_id,
            local_qkey: 0,
            local_qpn,
            local_eecn: 0,
            starting_psn: sq_psn,
            responder_resources: self.cfg.responder_resources,
            initiator_depth: self.cfg.initiator_depth,
            target_ack_delay: self.cfg.target_ack_delay,
            failover_accepted: 0,
            e2e_flow_control: true,
            rnr_retry_count: 7,
            srq: true,
            local_ca_guid: self.cfg.ioc_guid,
            private_data: [0; 196],
        };
        rsp.emit(&mut rep.private_data);
        let rep = rep.to_mad(tid);
        let remote_lid = if matches!(req.primary.local_lid, 0 | cm::PERMISSIVE_LID) {
            from.slid
        } else {
            req.primary.local_lid
        };
        let packet_life = req.primary.local_ack_timeout.saturating_sub(1);
        let timeout_ns = cm::ib_time_ns(req.remote_cm_response_timeout)
            .saturating_add(2 * cm::ib_time_ns(packet_life));
        let ch = Channel {
            info: ChannelInfo {
                state: ChannelState::Connecting,
                initiator_port_id: login.initiator_port_id,
                target_port_id: login.target_port_id,
                login_tag: login.tag,
                local_comm_id: local,
                remote_comm_id: req.local_comm_id,
                remote_ca_guid: req.local_ca_guid,
                local_qpn,
                remote_qpn: req.local_qpn,
                remote_lid,
                max_it_iu_len: self.cfg.max_req_it_iu_len,
                max_ti_iu_len: login.req_it_iu_len,
                buf_formats: sup_buf_fmt,
                immediate_offset: accepted.immediate_offset,
                multichannel_result: accepted.multichannel_result,
                credits: i64::from(self.cfg.req_lim),
                pending_commands: 0,
                qp_open: true,
            },
            conn: Conn {
                cm_dlid: from.slid,
                cm_dqpn: from.src_qp,
                rep,
                dreq: None,
                timeout_ns,
                max_retries: req.max_cm_retries,
                retries_left: req.max_cm_retries,
                deadline: Some(self.now_ns.saturating_add(timeout_ns)),
                timewait_ns: cm::ib_time_ns(req.primary.local_ack_timeout),
            },
            login_flags: login.flags,
            owed: 0,
            pending: Default::default(),
            target_reqs: Default::default(),
        };
        out.push(Action::OpenChannel {
            channel,
            local_qpn,
            remote_qpn: req.local_qpn,
            remote_lid,
            sq_psn,
            rq_psn: req.starting_psn,
            mtu: req.path_mtu.min(self.cfg.mtu),
            max_rd_atomic: self.cfg.initiator_depth,
            max_dest_rd_atomic: self.cfg.responder_resources,
            retry_cnt: req.retry_count,
            rnr_retry: req.rnr_retry_count,
        });
        Self::send_mad(out, from.slid, from.src_qp, rep);
        self.channels.insert(channel, ch);
        self.stats.logins_accepted += 1;
    }

    /// The channel whose connection `ids` (as the initiator sent them) names.
    fn find_conn(&self, ids: CommIds) -> Option<ChannelId> {
        self.channels
            .iter()
            .find(|(_, c)| {
                c.info.local_comm_id == ids.remote_comm_id
                    && c.info.remote_comm_id == ids.local_comm_id
            })
            .map(|(id, _)| *id)
    }

    fn unknown(&mut self, attr: u16, ids: CommIds) {
        self.ignore(SrptError::UnknownConnection {
            attr,
            local_comm_id: ids.local_comm_id,
            remote_comm_id: ids.remote_comm_id,
        });
    }

    /// RTU: the connection is established.
    fn rtu(&mut self, ids: CommIds) {
        let Some(id) = self.find_conn(ids) else {
            return self.unknown(attr::RTU, ids);
        };
        let ch = self.channels.get_mut(&id).expect("found above");
        if ch.info.state == ChannelState::Connecting {
            ch.info.state = ChannelState::Live;
            ch.conn.deadline = None;
        } else {
            self.ignore(SrptError::UnexpectedInState {
                attr: attr::RTU,
                channel: id,
            });
        }
    }

    /// DREQ: DREP, then the channel closes (ib_srpt: `srpt_disconnect_ch` then
    /// `srpt_close_ch`).
    fn dreq(&mut self, from: MadFrom, tid: u64, dreq: DreqRepr, out: &mut Vec<Action>) {
        let ids = CommIds {
            local_comm_id: dreq.local_comm_id,
            remote_comm_id: dreq.remote_comm_id,
        };
        let drep = |out: &mut Vec<Action>, local: u32| {
            let mad = Drep(CommIds {
                local_comm_id: local,
                remote_comm_id: dreq.local_comm_id,
            })
            .to_mad(tid);
            Self::send_mad(out, from.slid, from.src_qp, mad);
        };
        if let Some(id) = self.find_conn(ids) {
            let ch = &self.channels[&id];
            if dreq.remote_qpn != ch.info.local_qpn {
                // Linux cm.c drops a DREQ that names another QP.
                return self.ignore(SrptError::UnexpectedInState {
                    attr: attr::DREQ,
                    channel: id,
                });
            }
            drep(out, ch.info.local_comm_id);
            self.close_to_timewait(id, out);
            return;
        }
        if let Some(tw) = self.timewait.iter().find(|t| {
            t.local_comm_id == ids.remote_comm_id && t.remote_comm_id == ids.local_comm_id
        }) {
            drep(out, tw.local_comm_id);
            return;
        }
        // Linux answers a DREQ for a connection it does not know with a DREP too.
        self.error(SrptError::UnknownConnection {
            attr: attr::DREQ,
            local_comm_id: ids.local_comm_id,
            remote_comm_id: ids.remote_comm_id,
        });
        drep(out, dreq.remote_comm_id);
    }

    /// DREP: our DREQ is answered; the channel closes.
    fn drep(&mut self, ids: CommIds, out: &mut Vec<Action>) {
        let Some(id) = self.find_conn(ids) else {
            return self.unknown(attr::DREP, ids);
        };
        if self.channels[&id].conn.dreq.is_some() {
            self.close_to_timewait(id, out);
        } else {
            self.ignore(SrptError::UnexpectedInState {
                attr: attr::DREP,
                channel: id,
            });
        }
    }

    /// REJ from the initiator (of our REP, e.g. after its REP timeout; or of an MRA'd
    /// REQ): the channel is dropped.
    fn rej(&mut self, r: &RejRepr, out: &mut Vec<Action>) {
        if let Some(pos) = self
            .deferred
            .iter()
            .position(|d| d.local_comm_id == r.remote_comm_id)
        {
            self.deferred.remove(pos);
            return;
        }
        let found = self
            .channels
            .iter()
            .find(|(_, c)| {
                c.info.local_comm_id == r.remote_comm_id
                    && (r.local_comm_id == 0 || c.info.remote_comm_id == r.local_comm_id)
            })
            .map(|(id, _)| *id);
        match found {
            Some(id) => self.close_to_timewait(id, out),
            None => self.unknown(
                attr::REJ,
                CommIds {
                    local_comm_id: r.local_comm_id,
                    remote_comm_id: r.remote_comm_id,
                },
            ),
        }
    }

    /// MRA of our REP: the initiator needs longer; the REP timer is extended by its
    /// Service Timeout.
    fn mra(&mut self, m: &MraRepr) {
        let ids = CommIds {
            local_comm_id: m.local_comm_id,
            remote_comm_id: m.remote_comm_id,
        };
        let Some(id) = self.find_conn(ids) else {
            return self.unknown(attr::MRA, ids);
        };
        let now = self.now_ns;
        let ch = self.channels.get_mut(&id).expect("found above");
        if ch.info.state == ChannelState::Connecting && m.msg_mraed == msg::REP {
            ch.conn.deadline = Some(
                now.saturating_add(cm::ib_time_ns(m.service_timeout))
                    .saturating_add(ch.conn.timeout_ns),
            );
        } else {
            self.ignore(SrptError::UnexpectedInState {
                attr: attr::MRA,
                channel: id,
            });
        }
    }

    /// Starts a target-side disconnect: DREQ, no more IUs handled, pending commands
    /// dropped; the QP stays until the DREP or the DREQ's last timeout.
    pub(super) fn disconnect_channel(&mut self, id: ChannelId, out: &mut Vec<Action>) {
        self.drop_pending(id);
        let tid = self.alloc_tid();
        let now = self.now_ns;
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        if ch.conn.dreq.is_some() {
            ch.info.state = ChannelState::Disconnecting;
            return;
        }
        ch.info.state = ChannelState::Disconnecting;
        let dreq = DreqRepr {
            local_comm_id: ch.info.local_comm_id,
            remote_comm_id: ch.info.remote_comm_id,
            remote_qpn: ch.info.remote_qpn,
        }
        .to_mad(tid);
        ch.conn.dreq = Some(dreq);
        ch.conn.retries_left = ch.conn.max_retries;
        ch.conn.deadline = Some(now.saturating_add(ch.conn.timeout_ns));
        let (dlid, dqpn) = (ch.conn.cm_dlid, ch.conn.cm_dqpn);
        self.stats.dreqs_sent += 1;
        Self::send_mad(out, dlid, dqpn, dreq);
    }

    /// The QP failed: close it now, drop pending commands, DREQ the initiator.
    pub(super) fn qp_failed(&mut self, id: ChannelId, out: &mut Vec<Action>) {
        self.drop_pending(id);
        if let Some(ch) = self.channels.get_mut(&id)
            && ch.info.qp_open
        {
            ch.info.qp_open = false;
            out.push(Action::CloseChannel { channel: id });
        }
        self.disconnect_channel(id, out);
    }

    /// Pending commands of `id` are dropped without responses; their RDMA completions
    /// will find no command.
    pub(super) fn drop_pending(&mut self, id: ChannelId) {
        if let Some(ch) = self.channels.get_mut(&id) {
            ch.pending.clear();
            ch.info.pending_commands = 0;
        }
        self.tokens.retain(|_, t| t.channel != id);
    }

    /// The connection ends: QP closed if still open, the channel forgotten, the comm
    /// IDs kept in TimeWait.
    pub(super) fn close_to_timewait(&mut self, id: ChannelId, out: &mut Vec<Action>) {
        self.drop_pending(id);
        let Some(ch) = self.channels.remove(&id) else {
            return;
        };
        if ch.info.qp_open {
            out.push(Action::CloseChannel { channel: id });
        }
        self.timewait.push(TimeWait {
            local_comm_id: ch.info.local_comm_id,
            remote_comm_id: ch.info.remote_comm_id,
            remote_ca_guid: ch.info.remote_ca_guid,
            until_ns: self.now_ns.saturating_add(ch.conn.timewait_ns),
        });
    }

    /// Fires the timers due now.
    pub(super) fn timers(&mut self, out: &mut Vec<Action>) {
        let now = self.now_ns;
        let (due, keep): (Vec<Deferred>, Vec<Deferred>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|d| d.due_ns <= now);
        self.deferred = keep;
        for d in due {
            self.login(d.from, d.tid, d.local_comm_id, &d.req, out);
        }
        let expired: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| c.conn.deadline.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let ch = self.channels.get_mut(&id).expect("listed above");
            let (dlid, dqpn) = (ch.conn.cm_dlid, ch.conn.cm_dqpn);
            match (ch.info.state, ch.conn.dreq) {
                (ChannelState::Connecting, _) if ch.conn.retries_left > 0 => {
                    ch.conn.retries_left -= 1;
                    ch.conn.deadline = Some(now.saturating_add(ch.conn.timeout_ns));
                    let rep = ch.conn.rep;
                    self.stats.rep_resends += 1;
                    Self::send_mad(out, dlid, dqpn, rep);
                }
                (ChannelState::Connecting, _) => {
                    // IBTA §12.9: the REP was never answered; REJ timeout.
                    let tid = MadHeader::parse(&ch.conn.rep).map_or(0, |h| h.tid);
                    let mad = rej_mad(
                        tid,
                        ch.info.local_comm_id,
                        ch.info.remote_comm_id,
                        msg::REP,
                        rej::TIMEOUT,
                        &[],
                        &[],
                    );
                    self.stats.cm_rejects += 1;
                    Self::send_mad(out, dlid, dqpn, mad);
                    self.close_to_timewait(id, out);
                }
                (ChannelState::Disconnecting, Some(dreq)) if ch.conn.retries_left > 0 => {
                    ch.conn.retries_left -= 1;
                    ch.conn.deadline = Some(now.saturating_add(ch.conn.timeout_ns));
                    self.stats.dreqs_sent += 1;
                    Self::send_mad(out, dlid, dqpn, dreq);
                }
                (ChannelState::Disconnecting, _) => self.close_to_timewait(id, out),
                (ChannelState::Live, _) => ch.conn.deadline = None,
            }
        }
    }
}
