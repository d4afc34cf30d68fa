//! One simulated HCA port attached to ibsim as a client over its two abstract unix datagram
//! sockets (reference ibsim-opensm.md §1.1, §1.2): control requests on `B:ctl`, MADs through
//! `B:in<id>` ↔ `B:out<index>`. Every receive has a deadline.

use std::collections::VecDeque;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use super::Error;
use super::mad::{
    self, ATTR_NODE_INFO, ATTR_PORT_INFO, BASE_VERSION, CLASS_SA, CLASS_SMP_LID, GSI_QKEY,
    METHOD_GET_TABLE_RESP, MadHeader, NodeInfo, OPENSM_CLASSES, PortInfo, PortState,
    TID_MATCH_MASK,
};
use super::protocol::{
    Connect, Connected, CtlMsg, CtlType, DLID_DIRECTED_ROUTE, DataMsg, MAD_LEN, PortLidState,
    STATUS_BOUNCED, socket_name,
};

/// How long a control request or an SMP to ibsim's built-in SMA may take. ibsim answers both
/// itself, in well under a millisecond (§1.6); the bound is for a loaded CI machine.
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The `slid` a directed-route SMP is sent with: the permissive LID. ibsim sends its SMA's
/// answer to the request's `slid`; with 0 it tries to LID-route the answer to LID 0 and hands
/// it back as a bounce (status 110), with 0xFFFF it returns it directly. Found on this machine
/// (ibsim 0.10); the reference's §1.4 covers only LID-routed MADs (`slid` 0, filled in).
pub const DR_SLID: u16 = 0xFFFF;

/// Where a MAD goes. ibsim carries only the LIDs and QPNs (§1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadAddress {
    /// Destination LID; 0xFFFF for a directed-route SMP.
    pub dlid: u16,
    /// Destination QP: 1 for GSI (SA, CM, DM), 0 for SMI.
    pub dqp: u32,
    /// The Q_Key. ibsim does not carry it; [`Client::send`] checks that GSI traffic uses
    /// [`GSI_QKEY`], as a real HCA's QP1 would require (srp-cm-sa-dm.md §1.3).
    pub qkey: u32,
    /// The source QP, passed through to the receiver.
    pub sqp: u32,
}

impl MadAddress {
    /// QP1 to QP1 with the GSI Q_Key: how SA, CM and DM MADs travel (srp-cm-sa-dm.md §1.3).
    pub fn gsi(dlid: u16) -> Self {
        MadAddress {
            dlid,
            dqp: 1,
            qkey: GSI_QKEY,
            sqp: 1,
        }
    }
}

/// A MAD that arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Source LID.
    pub slid: u16,
    /// Destination LID as the sender addressed it.
    pub dlid: u16,
    /// Source QP (answer to it).
    pub sqp: u32,
    /// Destination QP.
    pub dqp: u32,
    /// Our own MAD came back undelivered (status 110, §0.6).
    pub bounced: bool,
    /// The length the sender claimed (informational, §1.4).
    pub length: u64,
    /// The MAD.
    pub mad: [u8; MAD_LEN],
}

/// What OpenSM configured on a port, read by SubnGet(PortInfo) and SubnGet(NodeInfo) to the
/// port itself (directed route, zero hops) through ibsim's SMA (§2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortIdentity {
    /// The port's LID.
    pub lid: u16,
    /// The master SM's LID (PortInfo MasterSMLID): where SA queries go.
    pub sm_lid: u16,
    /// Logical port state.
    pub state: PortState,
    /// Subnet prefix (PortInfo GidPrefix).
    pub gid_prefix: u64,
    /// Port GUID = NodeGUID + LocalPortNum (§1.2; GET_GUID/GET_GID are not used).
    pub port_guid: u64,
}

impl PortIdentity {
    /// The port's GID: subnet prefix, then port GUID, big-endian (§1.2).
    pub fn gid(&self) -> [u8; 16] {
        let mut g = [0; 16];
        g[..8].copy_from_slice(&self.gid_prefix.to_be_bytes());
        g[8..].copy_from_slice(&self.port_guid.to_be_bytes());
        g
    }
}

/// A port attached to ibsim. Dropping it detaches it.
#[derive(Debug)]
pub struct Client {
    name: String,
    index: u32,
    ctl: UnixDatagram,
    data: UnixDatagram,
    pending: VecDeque<Received>,
    next_tid: u64,
    opensm_lid: Option<u16>,
    attached: bool,
}

impl Client {
    /// Attaches to node `node_id` of the ibsim whose socket base name is `base` (§1.2): binds the
    /// control socket to `B:ctlfb<id>` and connects it to `B:ctl`, binds the data socket to
    /// `B:in<id>` *before* CONNECT (ibsim exits otherwise, §0.10), sends CONNECT with `id`, `qp`
    /// and `issm`, then connects the data socket to `B:out<index>`.
    ///
    /// `issm` makes this the client that receives requests (CM, DM) sent to QP0/QP1 of the port
    /// (§0.4); `id` must be non-zero and unique among attached clients.
    pub fn attach(base: &str, node_id: &str, id: u32, issm: bool, qp: u32) -> Result<Self, Error> {
        if id == 0 {
            return Err(Error::Spec {
                what: format!("client id of port {node_id:?}"),
                reason: "client ids are non-zero",
            });
        }
        let payload = Connect {
            id,
            qp,
            issm,
            node_id: node_id.to_string(),
        }
        .payload()?;
        let ctx = |what: &str| format!("port {node_id:?}, {what}");
        let ctl = UnixDatagram::bind_addr(&abstract_addr(base, &format!("ctlfb{id}"))?)
            .map_err(|e| Error::io("bind control socket", ctx("ctl"), e))?;
        ctl.connect_addr(&abstract_addr(base, "ctl")?)
            .map_err(|e| Error::io("connect to ibsim's control socket", ctx("ctl"), e))?;
        // bound before CONNECT: ibsim connects its out<i> to this name (§0.10)
        let data = UnixDatagram::bind_addr(&abstract_addr(base, &format!("in{id}"))?)
            .map_err(|e| Error::io("bind data socket", ctx("data"), e))?;

        let mut client = Client {
            name: node_id.to_string(),
            index: 0,
            ctl,
            data,
            pending: VecDeque::new(),
            next_tid: 1,
            opensm_lid: None,
            attached: false,
        };
        let reply = client.control(CtlType::Connect, &payload, "CONNECT")?;
        let connected = Connected::parse(&reply);
        client.index = connected.index;
        client.attached = true;
        if connected.node_id != node_id {
            return Err(Error::Malformed {
                what: "CONNECT reply",
                detail: format!("attached to {:?}, asked for {node_id:?}", connected.node_id),
            });
        }
        client
            .data
            .connect_addr(&abstract_addr(base, &format!("out{}", connected.index))?)
            .map_err(|e| Error::io("connect data socket", ctx("data"), e))?;
        Ok(client)
    }

    /// The node id this client is attached to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ibsim client slot (0..9).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// LID and state from ibsim's GET_PORT (§1.3); cheap enough to poll.
    pub fn lid_state(&mut self) -> Result<PortLidState, Error> {
        let reply = self.control(CtlType::GetPort, &[], "GET_PORT")?;
        Ok(PortLidState::parse(&reply))
    }

    /// A directed-route SubnGet of `attr_id` along `path` (empty: this port), answered by ibsim's
    /// SMA (§2); returns the 64-byte attribute.
    pub fn smp_get(&mut self, path: &[u8], attr_id: u16, attr_mod: u32) -> Result<[u8; 64], Error> {
        let tid = self.fresh_tid();
        let smp = mad::dr_smp_get(tid, attr_id, attr_mod, path)?;
        let to = MadAddress {
            dlid: DLID_DIRECTED_ROUTE,
            dqp: 0,
            qkey: 0,
            sqp: 0,
        };
        let answer = self.request(&to, &smp, LOCAL_TIMEOUT)?;
        mad::dr_smp_data(&answer.mad, attr_id)
    }

    /// PortInfo of this port, by SubnGet(PortInfo) to itself.
    pub fn port_info(&mut self) -> Result<PortInfo, Error> {
        Ok(PortInfo::parse(&self.smp_get(&[], ATTR_PORT_INFO, 0)?))
    }

    /// NodeInfo of this port's HCA, by SubnGet(NodeInfo) to itself.
    pub fn node_info(&mut self) -> Result<NodeInfo, Error> {
        Ok(NodeInfo::parse(&self.smp_get(&[], ATTR_NODE_INFO, 0)?))
    }

    /// LID, SM LID, state and GID as OpenSM configured them (PortInfo + NodeInfo SMPs).
    pub fn identity(&mut self) -> Result<PortIdentity, Error> {
        let pi = self.port_info()?;
        let ni = self.node_info()?;
        Ok(PortIdentity {
            lid: pi.lid,
            sm_lid: pi.sm_lid,
            state: pi.state,
            gid_prefix: pi.gid_prefix,
            port_guid: ni.node_guid + u64::from(pi.local_port),
        })
    }

    /// Sends one MAD. Refuses, before anything reaches ibsim: a MAD ibsim would drop silently
    /// (BaseVersion ≠ 1 or ClassVersion > 2, §1.5 step 1); a GSI MAD (QP1) without the GSI
    /// Q_Key; and a MAD of a class OpenSM has not registered to OpenSM's LID (§0.8; LID-routed
    /// SMPs are answered by ibsim itself and allowed).
    pub fn send(&mut self, to: &MadAddress, mad: &[u8; MAD_LEN]) -> Result<(), Error> {
        self.send_with_length(to, mad, MAD_LEN as u64)
    }

    /// [`Client::send`] with the MAD length of the data header (§1.4) given, for a relay
    /// that passes on the length the original sender claimed: ibsim carries it unchanged
    /// and umad2sim reports it to the receiver as the MAD's length, which readers of SA
    /// tables count records by (srp_daemon does).
    pub fn send_with_length(
        &mut self,
        to: &MadAddress,
        mad: &[u8; MAD_LEN],
        length: u64,
    ) -> Result<(), Error> {
        let h = MadHeader::parse(mad);
        if mad[0] != BASE_VERSION || h.class_version > 2 {
            return Err(Error::Malformed {
                what: "MAD to send",
                detail: format!(
                    "BaseVersion {} ClassVersion {}: ibsim would drop it",
                    mad[0], h.class_version
                ),
            });
        }
        if to.dqp == 1 && to.qkey != GSI_QKEY {
            return Err(Error::BadQKey { qkey: to.qkey });
        }
        if Some(to.dlid) == self.opensm_lid
            && h.class != CLASS_SMP_LID
            && !OPENSM_CLASSES.contains(&h.class)
        {
            return Err(Error::WouldCrashOpenSm {
                class: h.class,
                dlid: to.dlid,
            });
        }
        let msg = DataMsg {
            dlid: to.dlid,
            slid: if to.dlid == DLID_DIRECTED_ROUTE {
                DR_SLID
            } else {
                0
            },
            dqp: to.dqp,
            sqp: to.sqp,
            status: 0,
            length,
            mad: *mad,
        };
        let sent = self
            .data
            .send(&msg.emit())
            .map_err(|e| Error::io("send MAD", self.name.clone(), e))?;
        if sent != msg.emit().len() {
            return Err(Error::Malformed {
                what: "MAD send",
                detail: format!("{sent} bytes written"),
            });
        }
        Ok(())
    }

    /// The next MAD for this port (queued ones first), or `None` after `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Received>, Error> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(Some(r));
        }
        self.recv_socket(timeout)
    }

    /// The next MAD for this port if one has already arrived; never waits.
    pub fn try_recv(&mut self) -> Result<Option<Received>, Error> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(Some(r));
        }
        let mut buf = vec![0; 1024];
        let io = |e| Error::io("receive MAD", self.name.clone(), e);
        self.data.set_nonblocking(true).map_err(io)?;
        let got = self.data.recv(&mut buf);
        self.data
            .set_nonblocking(false)
            .map_err(|e| Error::io("receive MAD", self.name.clone(), e))?;
        match got {
            Ok(n) => {
                buf.truncate(n);
                let m = DataMsg::parse(&buf)?;
                Ok(Some(Received {
                    slid: m.slid,
                    dlid: m.dlid,
                    sqp: m.sqp,
                    dqp: m.dqp,
                    bounced: m.status == STATUS_BOUNCED,
                    length: m.length,
                    mad: m.mad,
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(Error::io("receive MAD", self.name.clone(), e)),
        }
    }

    /// Sends a request and waits up to `timeout` for its answer: a response of the same class
    /// whose TID matches in bits 47..0 (ibsim owns bits 63..48, §0.5). Other MADs that arrive
    /// meanwhile are queued for [`Client::recv`]. Our own MAD coming back with status 110 is
    /// [`Error::Bounced`], as is an answer that bounced on its way back. An SA GetTableResp
    /// whose length fills the MAD is [`Error::SaAnswerTooLarge`]: it may have been cut (§0.7;
    /// on this machine OpenSM's 4-NodeRecord answer arrived with length 256, one PathRecord with
    /// 120).
    ///
    /// Bytes of the answer past its `length` are whatever the sender's buffer held (OpenSM
    /// leaves them uninitialised).
    pub fn request(
        &mut self,
        to: &MadAddress,
        mad: &[u8; MAD_LEN],
        timeout: Duration,
    ) -> Result<Received, Error> {
        let want = MadHeader::parse(mad);
        self.send(to, mad)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(got) = self.recv_socket(left)? else {
                return Err(Error::Timeout {
                    step: "wait for MAD answer",
                    context: format!(
                        "port {:?}, class {:#04x} attribute {:#06x} to LID {:#x}",
                        self.name, want.class, want.attr_id, to.dlid
                    ),
                    waited: timeout,
                });
            };
            let h = MadHeader::parse(&got.mad);
            let same = h.class == want.class && (h.tid ^ want.tid) & TID_MATCH_MASK == 0;
            if same && got.bounced {
                return Err(Error::Bounced {
                    port: self.name.clone(),
                    dlid: to.dlid,
                    dqp: to.dqp,
                });
            }
            if same && !got.bounced && h.is_response() {
                if h.class == CLASS_SA
                    && h.method == METHOD_GET_TABLE_RESP
                    && got.length >= MAD_LEN as u64
                {
                    return Err(Error::SaAnswerTooLarge {
                        length: got.length,
                        record_bytes: mad::sa_record_size(&got.mad),
                    });
                }
                return Ok(got);
            }
            self.pending.push_back(got);
        }
    }

    /// Detaches (DISCONNECT, §1.2 step 6); the slot is free again.
    pub fn disconnect(mut self) -> Result<(), Error> {
        self.control(CtlType::Disconnect, &[], "DISCONNECT")?;
        self.attached = false;
        Ok(())
    }

    /// Refuse, from now on, MADs OpenSM would crash on to `lid` (§0.8).
    pub(crate) fn guard_opensm_lid(&mut self, lid: u16) {
        self.opensm_lid = Some(lid);
    }

    fn fresh_tid(&mut self) -> u64 {
        // bits 47..40 tag the bridge's own SMPs; the counter runs below
        let tid = 0xFB00_0000_0000 | (self.next_tid & 0xFF_FFFF_FFFF);
        self.next_tid += 1;
        tid
    }

    fn recv_socket(&mut self, timeout: Duration) -> Result<Option<Received>, Error> {
        let Some(buf) = recv_with_timeout(&self.data, timeout)
            .map_err(|e| Error::io("receive MAD", self.name.clone(), e))?
        else {
            return Ok(None);
        };
        let m = DataMsg::parse(&buf)?;
        Ok(Some(Received {
            slid: m.slid,
            dlid: m.dlid,
            sqp: m.sqp,
            dqp: m.dqp,
            bounced: m.status == STATUS_BOUNCED,
            length: m.length,
            mad: m.mad,
        }))
    }

    /// One control round trip. Replies carry no sequence number, so late replies to an earlier
    /// timed-out request are drained first; a reply of type ERROR is [`Error::Refused`].
    fn control(
        &mut self,
        kind: CtlType,
        payload: &[u8],
        request: &'static str,
    ) -> Result<CtlMsg, Error> {
        let ctx = || format!("port {:?}, {request}", self.name);
        drain(&self.ctl).map_err(|e| Error::io("drain control socket", ctx(), e))?;
        let msg = CtlMsg::request(self.index, kind, payload);
        self.ctl
            .send(&msg.emit())
            .map_err(|e| Error::io("send control request", ctx(), e))?;
        let Some(buf) = recv_with_timeout(&self.ctl, LOCAL_TIMEOUT)
            .map_err(|e| Error::io("receive control reply", ctx(), e))?
        else {
            return Err(Error::Timeout {
                step: "wait for control reply",
                context: ctx(),
                waited: LOCAL_TIMEOUT,
            });
        };
        let reply = CtlMsg::parse(&buf)?;
        match CtlType::from_u32(reply.kind) {
            Some(k) if k == kind => Ok(reply),
            Some(CtlType::Error) => Err(Error::Refused {
                request,
                port: self.name.clone(),
            }),
            _ => Err(Error::Malformed {
                what: "control reply",
                detail: format!("type {} to {request}", reply.kind),
            }),
        }
    }
}

impl Drop for Client {
    /// Best-effort DISCONNECT without waiting, so the slot is freed even on error paths.
    fn drop(&mut self) {
        if self.attached {
            let msg = CtlMsg::request(self.index, CtlType::Disconnect, &[]);
            let _ = self.ctl.send(&msg.emit());
        }
    }
}

fn abstract_addr(base: &str, suffix: &str) -> Result<SocketAddr, Error> {
    let name = socket_name(base, suffix);
    SocketAddr::from_abstract_name(&name).map_err(|e| {
        Error::io(
            "make socket name",
            String::from_utf8_lossy(&name).into_owned(),
            e,
        )
    })
}

/// One datagram within `timeout` (`None` when none came). Never blocks longer.
fn recv_with_timeout(sock: &UnixDatagram, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sock.set_read_timeout(Some(left))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
}

fn drain(sock: &UnixDatagram) -> io::Result<()> {
    sock.set_nonblocking(true)?;
    let mut buf = [0; 128];
    let result = loop {
        match sock.recv(&mut buf) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    sock.set_nonblocking(false)?;
    result
}
