//! The SRP target's channel adapter: one port with its own subnet management agent,
//! QP1 for CM and DM MADs, and one RC queue pair per SRP channel on the transport
//! engine. The protocol is [`crate::srpt`]'s and [`crate::dm`]'s; this node carries
//! their actions out on the wire and reports back.
//!
//! The target keeps no memory remote initiators may reach (its data moves by its own
//! RDMA READ and WRITE), and always has a receive posted for an IU, as ib_srpt keeps
//! a receive ring of `req_lim` entries (reference/srp-cm-sa-dm.md §3.3).

use std::collections::{BTreeMap, VecDeque};

use crate::device::datapath::{GSI_QKEY, ud_frame};
use crate::device::port::{Port, state};
use crate::dm::DmAgent;
use crate::rc::{
    RcConfig, RcPath, RcQp, RemoteError, ResponderMemory, WcOpcode, WcStatus, WorkRequest,
    ack_timeout_from_code,
};
use crate::srpt::{Action, ChannelId, MadFrom, RdmaFailure, SrpTarget};
use crate::wire::{ExtHeaders, IbPacket};

/// `wr_id` bit marking the target's own IU sends (SRP tokens never set it).
const IU_SEND: u64 = 1 << 63;

/// An SRP channel's queue pair.
struct Channel {
    qp: RcQp,
    local_qpn: u32,
    next_iu: u64,
}

/// The responder side of a target QP: no remote access, receives always posted.
struct Inbox<'a> {
    ius: &'a mut VecDeque<Vec<u8>>,
}

impl ResponderMemory for Inbox<'_> {
    fn check(&self, _rkey: u32, _va: u64, _len: u64, _write: bool) -> Result<(), RemoteError> {
        Err(RemoteError::Access)
    }
    fn write(&mut self, _rkey: u32, _va: u64, _data: &[u8]) -> Result<(), RemoteError> {
        Err(RemoteError::Access)
    }
    fn read(&mut self, _rkey: u32, _va: u64, _len: usize) -> Result<Vec<u8>, RemoteError> {
        Err(RemoteError::Access)
    }
    fn receive_ready(&self) -> bool {
        true
    }
    fn receive(&mut self, message: &[u8]) -> Result<(), RemoteError> {
        self.ius.push_back(message.to_vec());
        Ok(())
    }
}

/// The target's node on the fabric.
pub struct TargetNode {
    /// The port's agent (answers the subnet manager).
    pub port: Port,
    /// The SRP target.
    pub srpt: SrpTarget,
    /// The DM agent, answering DevMgt MADs on QP1.
    pub dm: DmAgent,
    channels: BTreeMap<ChannelId, Channel>,
    qp1_psn: u32,
    /// Frames to put on the link.
    outbox: Vec<Vec<u8>>,
    /// Packets dropped on arrival, with the reason.
    pub dropped: Vec<String>,
}

impl std::fmt::Debug for TargetNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetNode")
            .field("lid", &self.port.lid)
            .field("channels", &self.channels.len())
            .finish()
    }
}

impl TargetNode {
    /// A target whose port has `port_guid`, not yet configured by a subnet manager.
    pub fn new(port_guid: u64, srpt: SrpTarget, dm: DmAgent) -> TargetNode {
        TargetNode {
            port: Port::unconfigured(port_guid),
            srpt,
            dm,
            channels: BTreeMap::new(),
            qp1_psn: 0,
            outbox: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// Takes the frames the target has sent.
    pub fn take_outbox(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outbox)
    }

    /// When [`Self::poll`] next has timer work.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.channels
            .values()
            .filter_map(|c| c.qp.next_deadline_ns())
            .chain(self.srpt.next_deadline())
            .min()
    }

    /// Channels with a queue pair.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The cable: down, the port goes DOWN with its physical state Polling; up, it
    /// trains to LinkUp and enters INIT, where a subnet manager finds it (IBTA vol. 1
    /// §7.2, PortInfo PortState and PortPhysicalState). The LID and the rest of the
    /// SM's configuration stay until an SM changes them (as ibsim's `Unlink` leaves
    /// them, reference/ibsim-opensm.md §2). The RC queue pairs are not told: their
    /// packets go nowhere and their retries run out, as on a real HCA.
    pub fn set_link(&mut self, up: bool) {
        self.port.set_link(up);
    }

    /// The machine reboots: the link goes down, every channel, queue pair and piece
    /// of CM state is gone without a word on the wire (no DREQ), frames not yet sent
    /// are lost, and the SRP target starts afresh over the same logical units and
    /// disk contents ([`SrpTarget::rebooted`], connection IDs from `comm_id_base`).
    /// The port comes back unconfigured (LID 0, no SM) with its GUIDs; the link stays
    /// down until [`TargetNode::set_link`] brings it up.
    pub fn reboot(&mut self, comm_id_base: u32) {
        let mut port = Port::unconfigured(self.port.port_guid);
        port.node_guid = self.port.node_guid;
        port.gid_prefix = self.port.gid_prefix;
        port.pkeys = self.port.pkeys.clone();
        self.port = port;
        self.set_link(false);
        self.srpt.rebooted(comm_id_base);
        self.channels.clear();
        self.outbox.clear();
        self.qp1_psn = 0;
    }

    /// Has the target act of its own accord (send SRP_T_LOGOUT, SRP_CRED_REQ or
    /// SRP_AER_REQ, or a CM DREQ) and carries out what that asks.
    pub fn initiate(&mut self, now_ns: u64, f: impl FnOnce(&mut SrpTarget) -> Vec<Action>) {
        let actions = f(&mut self.srpt);
        self.act(now_ns, actions);
    }

    /// Runs timers and carries out whatever they cause.
    pub fn poll(&mut self, now_ns: u64) {
        let actions = self.srpt.poll(now_ns);
        self.act(now_ns, actions);
        let ids: Vec<ChannelId> = self.channels.keys().copied().collect();
        for id in ids {
            self.pump(now_ns, id);
        }
    }

    /// A frame arrives at the target's port.
    pub fn deliver(&mut self, now_ns: u64, frame: &[u8]) {
        let p = match IbPacket::decode(frame) {
            Ok(p) => p,
            Err(e) => return self.dropped.push(format!("malformed: {e:?}")),
        };
        if p.bth.dest_qp == 0 {
            return self.smp(&p);
        }
        if p.lrh.dlid != self.port.lid || self.port.state != state::ACTIVE {
            return self.dropped.push(format!(
                "DLID {:#x} at LID {:#x}",
                p.lrh.dlid, self.port.lid
            ));
        }
        if p.bth.p_key & 0x7FFF != 0x7FFF {
            return self.dropped.push(format!("P_Key {:#x}", p.bth.p_key));
        }
        if p.bth.dest_qp == 1 {
            return self.qp1(now_ns, &p);
        }
        let Some((&id, _)) = self
            .channels
            .iter()
            .find(|(_, c)| c.local_qpn == p.bth.dest_qp)
        else {
            return self
                .dropped
                .push(format!("no channel on QP {:#x}", p.bth.dest_qp));
        };
        let mut ius = VecDeque::new();
        let answers = {
            let ch = self.channels.get_mut(&id).expect("found above");
            ch.qp.receive(now_ns, &p, &mut Inbox { ius: &mut ius })
        };
        self.emit(answers);
        while let Some(iu) = ius.pop_front() {
            let actions = self.srpt.on_iu(now_ns, id, &iu);
            self.act(now_ns, actions);
        }
        self.pump(now_ns, id);
    }

    fn emit(&mut self, packets: Vec<IbPacket>) {
        for p in packets {
            match p.encode() {
                Ok(f) => self.outbox.push(f),
                Err(e) => self.dropped.push(format!("could not encode: {e:?}")),
            }
        }
    }

    /// The port's SMA answers SMPs, as on the host's function.
    fn smp(&mut self, p: &IbPacket) {
        let directed = p.payload.get(1) == Some(&0x81);
        if !directed && p.lrh.dlid != self.port.lid {
            return self.dropped.push("LID-routed SMP for another LID".into());
        }
        let Some((reply, _)) = self.port.answer_smp(&p.payload) else {
            return self
                .dropped
                .push("SMP that is not a request ending at this port".into());
        };
        let (slid, dlid) = if directed {
            (0xFFFF, 0xFFFF)
        } else {
            (self.port.lid, p.lrh.slid)
        };
        let src_qp = match p.ext {
            ExtHeaders::Deth(d) => d.src_qp,
            _ => 0,
        };
        if let Some(f) = ud_frame(slid, dlid, 0, 0xFFFF, src_qp, 0, 0, 0, reply.to_vec()) {
            self.outbox.push(f);
        }
    }

    /// A MAD on QP1: CM to the SRP target, DevMgt to the DM agent.
    fn qp1(&mut self, now_ns: u64, p: &IbPacket) {
        let ExtHeaders::Deth(deth) = p.ext else {
            return self.dropped.push("QP1 packet without a DETH".into());
        };
        if deth.q_key != GSI_QKEY {
            return self.dropped.push(format!("QP1 Q_Key {:#x}", deth.q_key));
        }
        let Ok(mad) = <[u8; 256]>::try_from(p.payload.as_slice()) else {
            return self.dropped.push(format!("{}-byte MAD", p.payload.len()));
        };
        match mad[1] {
            0x07 => {
                let mut gid = [0u8; 16];
                gid[..8].copy_from_slice(&self.port.gid_prefix.to_be_bytes());
                gid[8..].copy_from_slice(&self.port.port_guid.to_be_bytes());
                self.srpt.set_port(gid, self.port.lid);
                let from = MadFrom {
                    slid: p.lrh.slid,
                    sl: p.lrh.sl,
                    src_qp: deth.src_qp,
                    pkey_index: 0,
                };
                let actions = self.srpt.on_cm_mad(now_ns, from, &mad);
                self.act(now_ns, actions);
            }
            0x06 => {
                if let Some(reply) = self.dm.handle(&mad) {
                    self.send_mad(p.lrh.slid, deth.src_qp, reply);
                }
            }
            class => self.dropped.push(format!("MAD class {class:#x} on QP1")),
        }
    }

    fn send_mad(&mut self, dlid: u16, dqpn: u32, mad: [u8; 256]) {
        let psn = self.qp1_psn;
        self.qp1_psn = (psn + 1) & 0xFF_FFFF;
        if let Some(f) = ud_frame(
            self.port.lid,
            dlid,
            0,
            0xFFFF,
            dqpn,
            1,
            GSI_QKEY,
            psn,
            mad.to_vec(),
        ) {
            self.outbox.push(f);
        }
    }

    /// Carries out the SRP target's actions.
    fn act(&mut self, now_ns: u64, actions: Vec<Action>) {
        let mut touched = Vec::new();
        for a in actions {
            match a {
                Action::SendMad { dlid, dqpn, mad } => self.send_mad(dlid, dqpn, mad),
                Action::OpenChannel {
                    channel,
                    local_qpn,
                    remote_qpn,
                    remote_lid,
                    sq_psn,
                    rq_psn,
                    mtu,
                    max_rd_atomic,
                    max_dest_rd_atomic,
                    retry_cnt,
                    rnr_retry,
                } => {
                    let cfg = RcConfig {
                        mtu: crate::device::connected::mtu_bytes(mtu),
                        retry_cnt,
                        rnr_retry,
                        // ib_srpt leaves the ACK timeout to the CM's packet lifetime;
                        // 14 (67 ms) is what its QPs end up with on a small subnet.
                        ack_timeout_ns: ack_timeout_from_code(14),
                        min_rnr_timer_code: crate::device::connected::MIN_RNR_TIMER_CODE,
                        max_rd_atomic: max_rd_atomic.max(1),
                        max_dest_rd_atomic: max_dest_rd_atomic.max(1),
                    };
                    let path = RcPath {
                        slid: self.port.lid,
                        dlid: remote_lid,
                        sl: 0,
                        p_key: 0xFFFF,
                        local_qpn,
                        remote_qpn,
                        sq_psn,
                        rq_psn,
                    };
                    self.channels.insert(
                        channel,
                        Channel {
                            qp: RcQp::new(cfg, path),
                            local_qpn,
                            next_iu: 0,
                        },
                    );
                }
                Action::CloseChannel { channel } => {
                    self.channels.remove(&channel);
                }
                Action::SendIu { channel, iu } => {
                    if let Some(ch) = self.channels.get_mut(&channel) {
                        let wr_id = IU_SEND | ch.next_iu;
                        ch.next_iu = (ch.next_iu + 1) & !IU_SEND;
                        ch.qp.post(WorkRequest::Send { wr_id, data: iu });
                        touched.push(channel);
                    }
                }
                Action::RdmaWrite {
                    channel,
                    token,
                    remote_addr,
                    rkey,
                    data,
                } => {
                    if let Some(ch) = self.channels.get_mut(&channel) {
                        ch.qp.post(WorkRequest::RdmaWrite {
                            wr_id: token & !IU_SEND,
                            remote_addr,
                            rkey,
                            data,
                        });
                        touched.push(channel);
                    }
                }
                Action::RdmaRead {
                    channel,
                    token,
                    remote_addr,
                    rkey,
                    len,
                } => {
                    if let Some(ch) = self.channels.get_mut(&channel) {
                        ch.qp.post(WorkRequest::RdmaRead {
                            wr_id: token & !IU_SEND,
                            remote_addr,
                            rkey,
                            len,
                        });
                        touched.push(channel);
                    }
                }
            }
        }
        for id in touched {
            self.pump(now_ns, id);
        }
    }

    /// Transmits what channel `id` may send and reports its completions.
    fn pump(&mut self, now_ns: u64, id: ChannelId) {
        let (packets, done) = match self.channels.get_mut(&id) {
            Some(ch) => (ch.qp.poll_transmit(now_ns), ch.qp.take_completions()),
            None => return,
        };
        self.emit(packets);
        for c in done {
            let failed = c.status != WcStatus::Success;
            if c.wr_id & IU_SEND != 0 {
                if failed {
                    let actions = self.srpt.on_channel_error(id);
                    self.act(now_ns, actions);
                }
                continue;
            }
            let result = if failed {
                Err(failure(c.status))
            } else if c.opcode == WcOpcode::RdmaRead {
                Ok(c.data)
            } else {
                Ok(Vec::new())
            };
            let actions = self.srpt.on_rdma_done(now_ns, id, c.wr_id, result);
            self.act(now_ns, actions);
        }
    }
}

/// The SRP target's view of a failed RDMA work request.
fn failure(status: WcStatus) -> RdmaFailure {
    match status {
        WcStatus::RemoteAccessError | WcStatus::RemoteInvalidRequest => RdmaFailure::RemoteAccess,
        WcStatus::RemoteOperationError => RdmaFailure::RemoteOperation,
        WcStatus::RetryExceeded | WcStatus::RnrRetryExceeded => RdmaFailure::RetryExceeded,
        WcStatus::Flushed => RdmaFailure::Flushed,
        WcStatus::LocalLengthError | WcStatus::Success => RdmaFailure::Local,
    }
}
