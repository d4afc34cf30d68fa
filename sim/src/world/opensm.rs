//! `--sm opensm`: the subnet is managed by a real, unmodified OpenSM on ibsim
//! (reference/ibsim-opensm.md), and the model's ports take what it configured.
//!
//! [`crate::ibsim::Fabric`] writes the netfile, starts ibsim and OpenSM (OpenSM on an
//! HCA of its own, §0.8) and attaches one client per model port as that node's
//! `issm` client, so requests to its QP1 reach it (§0.4). Each port then takes its
//! LID, SM LID and GUIDs from what OpenSM set, and the model switch is programmed
//! with those LIDs. QP0/QP1 traffic (SA, CM, DM MADs) leaves the model for ibsim and
//! comes back from it; RC traffic, which ibsim cannot carry (§0.12), stays on the
//! model fabric. Limits, as typed errors from [`crate::ibsim`]: at most nine model
//! ports (ten clients with OpenSM's), no SA answer longer than one MAD (§0.7).
//!
//! TIDs: ibsim stamps bits 63..48 of every request's TID with the sender's client
//! index and routes the answer by them (§0.5), so the answer would come back with
//! other high bits than the requester chose. A real fabric carries a TID end to end
//! (IBA 13.4.6.4: the responder copies it), so the bridge remembers the bits it
//! handed over for each request in flight and puts them back into the answer.
//!
//! Time: ibsim runs in wall-clock time. While a MAD is out and the model has nothing
//! else to do, the world waits for ibsim and advances virtual time by the wall time
//! waited, so a round trip through OpenSM shows in virtual time as what it took.
//! Processes are stopped by PID when the bridge is dropped, also on failure.
//!
//! Faults: a model port's cable is its ibsim twin's (`Unlink`/`ReLink` on ibsim's
//! console, §2; `Clear` for a rebooting machine), so OpenSM sees the switch's trap 128
//! and sweeps as on real hardware. When the twin comes back, the bridge watches it
//! (GET_PORT every millisecond) until OpenSM has made it Active and hands its identity
//! to the world, which gives the model port what OpenSM set. New LIDs are OpenSM's own
//! doing: it is restarted with them in its `guid2lid` cache, which its first sweep as
//! master honours over the LIDs the ports hold (a persistent assignment wins); the
//! watch then waits for each twin to carry its new LID. Measured here: a relinked port
//! Active in about 8 ms, the LIDs moved about 25-40 ms after the restart; an SA query
//! that reaches the new OpenSM before its first sweep is done may go unanswered.
//!
//! OpenSM's own limits show, as they would on a real subnet: every link change is a
//! trap 128 from the one switch, and after more than ten such traps in a row OpenSM
//! ignores them (its protection against a babbling port; they age out after some
//! tens of seconds without one). A port whose link comes back then waits for OpenSM's
//! periodic sweep (`-s`, [`crate::ibsim::OpenSmOptions`]: measured here, 2-3 ms on the
//! trap, up to the sweep interval when ignored). After a link goes down, virtual time
//! keeps in step with OpenSM's until its heavy sweep is done (at most 50 ms), so that a
//! short flap is as short for OpenSM as for the model.

use std::time::{Duration, Instant};

use crate::device::datapath::{GSI_QKEY, ud_frame};
use crate::ibsim::process::{Guid2Lid, LinkAction};
use crate::ibsim::{
    self, Client, Error, MadAddress, OpenSmOptions, PortIdentity, PortSpec, PortState,
};
use crate::wire::{ExtHeaders, IbPacket};

/// How long after the last MAD sent the bridge keeps waiting for answers.
const EXPECT_FOR: Duration = Duration::from_secs(2);
/// Pause between polls of the clients' sockets while waiting.
const POLL: Duration = Duration::from_micros(100);
/// How often a port OpenSM is about to configure is looked at (GET_PORT, one control
/// round trip to ibsim).
const WATCH_EVERY: Duration = Duration::from_millis(1);
/// How long OpenSM gets to configure a watched port: a relinked port is swept on its
/// trap within milliseconds, at the latest by the next periodic sweep (`-s 5`); a
/// restarted OpenSM is up in about 0.1 s (reference/ibsim-opensm.md §3.2).
const WATCH_FOR: Duration = Duration::from_secs(30);
/// How long the world keeps in step with OpenSM after a link went down, at most: until
/// OpenSM's next heavy sweep is done, which on the switch's trap takes milliseconds.
/// When OpenSM ignores the trap (see the module's notes) its periodic sweep is not
/// waited for.
const SETTLE_FOR: Duration = Duration::from_millis(50);

/// A model port whose twin OpenSM is about to configure: after a relink (any LID, Active)
/// or a LID change (the LID given, Active).
#[derive(Clone, Copy, Debug)]
struct Watch {
    node: usize,
    lid: Option<u16>,
    since: Instant,
}

/// The running ibsim + OpenSM and the model ports attached to it.
#[derive(Debug)]
pub struct Bridge {
    fabric: ibsim::Fabric,
    names: Vec<String>,
    /// What OpenSM configured on each model port.
    pub identities: Vec<PortIdentity>,
    last_sent: Option<Instant>,
    /// MADs handed to ibsim.
    pub mads_sent: u64,
    /// MADs that came back from ibsim.
    pub mads_received: u64,
    /// MADs ibsim bounced (undeliverable: status 110, §0.6); the sender times out.
    pub bounced: u64,
    /// Requests in flight from model ports: (node, class, TID bits 47..0) and the
    /// TID's bits 63..48 as the port sent them, oldest first.
    tid_high: std::collections::VecDeque<((usize, u8, u64), u16)>,
    /// Whether each model port's twin is linked (not unlinked or cleared).
    linked: Vec<bool>,
    /// Ports OpenSM is about to configure.
    watches: Vec<Watch>,
    /// A link went down: OpenSM's heavy sweeps counted then, and when.
    settle: Option<(u64, Instant)>,
    last_watch: Option<Instant>,
    /// What OpenSM configured on watched ports since the world last took it.
    updates: Vec<(usize, PortIdentity)>,
}

/// Requests whose TIDs the bridge remembers (the oldest are forgotten: a requester
/// that has timed out no longer matches its answer anyway).
const TIDS_REMEMBERED: usize = 1024;
/// MAD header offsets: management class, method, transaction ID (srp-cm-sa-dm.md §1.3).
const MAD_CLASS: usize = 1;
const MAD_METHOD: usize = 3;
const MAD_TID: usize = 8;
/// Method bit 7: a response.
const METHOD_RESPONSE: u8 = 0x80;

fn tid_of(mad: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        mad.get(MAD_TID..MAD_TID + 8)?.try_into().ok()?,
    ))
}

impl Bridge {
    /// Starts ibsim and OpenSM for `ports` model ports named `ca0`, `ca1`, …
    pub fn start(ports: usize) -> Result<Bridge, Error> {
        Self::start_with(ports, OpenSmOptions::default())
    }

    /// [`Bridge::start`] with OpenSM run as `options` say.
    pub fn start_with(ports: usize, options: OpenSmOptions) -> Result<Bridge, Error> {
        let names: Vec<String> = (0..ports).map(|i| format!("ca{i}")).collect();
        let specs: Vec<PortSpec> = names.iter().map(|n| PortSpec::new(n)).collect();
        let mut fabric = ibsim::Fabric::start_with(&specs, options)?;
        let identities = names
            .iter()
            .map(|n| fabric.identity(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Bridge {
            fabric,
            names,
            identities,
            last_sent: None,
            mads_sent: 0,
            mads_received: 0,
            bounced: 0,
            tid_high: std::collections::VecDeque::new(),
            linked: vec![true; ports],
            watches: Vec::new(),
            settle: None,
            last_watch: None,
            updates: Vec::new(),
        })
    }

    /// OpenSM's own LID (where SA queries go).
    pub fn opensm_lid(&self) -> u16 {
        self.fabric.opensm_lid()
    }

    /// The PIDs of ibsim and OpenSM, for checks that they are gone afterwards.
    pub fn process_ids(&self) -> [(&'static str, u32); 2] {
        self.fabric.process_ids()
    }

    fn client(&mut self, node: usize) -> Option<&mut Client> {
        let name = self.names.get(node)?.clone();
        self.fabric.client(&name)
    }

    /// Whether `frame` is a MAD the bridge carries (UD to QP0 or QP1).
    pub fn carries(frame: &IbPacket) -> bool {
        matches!(frame.ext, ExtHeaders::Deth(_)) && frame.bth.dest_qp <= 1
    }

    /// Hands node `node`'s MAD to ibsim.
    pub fn send(&mut self, node: usize, p: &IbPacket) -> Result<(), Error> {
        let ExtHeaders::Deth(deth) = p.ext else {
            return Ok(());
        };
        let Ok(mad) = <[u8; 256]>::try_from(p.payload.as_slice()) else {
            return Ok(());
        };
        let to = MadAddress {
            dlid: p.lrh.dlid,
            dqp: p.bth.dest_qp,
            qkey: deth.q_key,
            sqp: deth.src_qp,
        };
        if mad[MAD_METHOD] & METHOD_RESPONSE == 0
            && let Some(tid) = tid_of(&mad)
        {
            if self.tid_high.len() == TIDS_REMEMBERED {
                self.tid_high.pop_front();
            }
            let key = (node, mad[MAD_CLASS], tid & ibsim::mad::TID_MATCH_MASK);
            self.tid_high.push_back((key, (tid >> 48) as u16));
        }
        let Some(c) = self.client(node) else {
            return Ok(());
        };
        c.send(&to, &mad)?;
        self.mads_sent += 1;
        self.last_sent = Some(Instant::now());
        Ok(())
    }

    /// Whether answers may still come, or OpenSM is about to configure a port or is
    /// still sweeping after a link went down: then virtual time keeps in step with
    /// OpenSM's, so that what it does takes as long in the model as it took.
    pub fn expecting(&self) -> bool {
        self.last_sent.is_some_and(|t| t.elapsed() < EXPECT_FOR)
            || !self.watches.is_empty()
            || self.settle.is_some()
    }

    /// Model port `node`'s cable goes down or up, and so does its ibsim twin's
    /// (`Unlink`/`ReLink` on ibsim's console, §2): down, OpenSM hears trap 128 and takes
    /// the port out of the SA; up, the twin is in Init, OpenSM sweeps on the trap and
    /// activates it, and the bridge watches for that to hand it to the model port
    /// ([`Bridge::take_updates`]).
    pub fn set_link(&mut self, node: usize, up: bool) -> Result<(), Error> {
        let name = self.name(node)?;
        self.watches.retain(|w| w.node != node);
        if up {
            self.fabric.link(&name, LinkAction::ReLink)?;
            self.watch(node, None);
        } else {
            self.settle_from_now();
            self.fabric.link(&name, LinkAction::Unlink)?;
        }
        if let Some(l) = self.linked.get_mut(node) {
            *l = up;
        }
        Ok(())
    }

    /// Model port `node`'s machine reboots: its twin is unlinked and reset (`Clear`: LID
    /// 0), to come back with [`Bridge::set_link`].
    pub fn reset_port(&mut self, node: usize) -> Result<(), Error> {
        let name = self.name(node)?;
        self.watches.retain(|w| w.node != node);
        self.settle_from_now();
        self.fabric.link(&name, LinkAction::Clear)?;
        if let Some(l) = self.linked.get_mut(node) {
            *l = false;
        }
        Ok(())
    }

    /// Moves every model port's LID up by `offset` the way an administrator makes
    /// OpenSM do it: OpenSM is restarted with the new LIDs in its `guid2lid` cache
    /// ([`ibsim::Fabric::restart_opensm`]) and sets them on the ports in its first sweep.
    /// OpenSM's own LID and the switch's stay (the subnet manager's LID does not move,
    /// as with the built-in manager). Returns `(node, old LID, new LID)`; the bridge
    /// watches for OpenSM to set them ([`Bridge::take_updates`]); a port whose link is
    /// down gets its new LID when it comes back. A LID that would leave the unicast
    /// range or land on a LID another port keeps is refused before anything changes.
    pub fn change_lids(&mut self, offset: u16) -> Result<Vec<(usize, u16, u16)>, Error> {
        let cache = self.fabric.guid2lid()?;
        let mut moved = Vec::new();
        for (node, id) in self.identities.iter().enumerate() {
            let new = id
                .lid
                .checked_add(offset)
                .filter(|l| (1..=crate::sm::sweep::MAX_UNICAST_LID).contains(l))
                .ok_or_else(|| Error::Spec {
                    what: format!("LID {:#x} + {offset}", id.lid),
                    reason: "outside the unicast range",
                })?;
            moved.push((node, id.port_guid, id.lid, new));
        }
        let kept = cache
            .iter()
            .filter(|c| !moved.iter().any(|m| m.1 == c.guid))
            .flat_map(|c| c.min_lid..=c.max_lid);
        for lid in kept {
            if moved.iter().any(|m| m.3 == lid) {
                return Err(Error::Spec {
                    what: format!("LID {lid:#x}"),
                    reason: "kept by a port whose LID does not move",
                });
            }
        }
        let lids: Vec<Guid2Lid> = moved
            .iter()
            .map(|&(_, guid, _, new)| Guid2Lid {
                guid,
                min_lid: new,
                max_lid: new,
            })
            .collect();
        self.fabric.restart_opensm(&lids)?;
        for &(node, _, _, new) in &moved {
            // A port whose link is down takes its new LID when it comes back (the
            // relink's watch takes whatever OpenSM gives).
            if self.linked.get(node) == Some(&true) {
                self.watches.retain(|w| w.node != node);
                self.watch(node, Some(new));
            }
        }
        Ok(moved
            .into_iter()
            .map(|(node, _, old, new)| (node, old, new))
            .collect())
    }

    /// Times OpenSM has been started, the first included.
    pub fn opensm_runs(&self) -> u32 {
        self.fabric.opensm_runs()
    }

    /// What OpenSM configured on watched ports since the last call: each port's new
    /// identity (LID, SM LID, Active), for the world to give the model port.
    pub fn take_updates(&mut self) -> Vec<(usize, PortIdentity)> {
        std::mem::take(&mut self.updates)
    }

    fn name(&self, node: usize) -> Result<String, Error> {
        self.names.get(node).cloned().ok_or_else(|| Error::Spec {
            what: format!("node {node}"),
            reason: "no such port",
        })
    }

    /// From now until OpenSM's next heavy sweep is done, the world keeps in step.
    fn settle_from_now(&mut self) {
        let sweeps = self.fabric.opensm_sweeps();
        self.settle = Some((sweeps, Instant::now()));
        self.last_watch = None;
    }

    fn watch(&mut self, node: usize, lid: Option<u16>) {
        self.watches.push(Watch {
            node,
            lid,
            since: Instant::now(),
        });
        self.last_watch = None;
    }

    /// Looks at the watched ports (at most every [`WATCH_EVERY`]): one that OpenSM has
    /// made Active (with the LID asked for, for a LID change) has its identity read and
    /// queued for [`Bridge::take_updates`]. A watch older than [`WATCH_FOR`] ends in a
    /// [`Error::Timeout`], a dead OpenSM in [`Error::Exited`]. A settle after a link
    /// went down ends with OpenSM's next heavy sweep (or after [`SETTLE_FOR`]).
    fn check_watches(&mut self) -> Result<(), Error> {
        let idle = self.watches.is_empty() && self.settle.is_none();
        if idle || self.last_watch.is_some_and(|t| t.elapsed() < WATCH_EVERY) {
            return Ok(());
        }
        self.last_watch = Some(Instant::now());
        if let Some((sweeps, since)) = self.settle
            && (self.fabric.opensm_sweeps() > sweeps || since.elapsed() >= SETTLE_FOR)
        {
            self.settle = None;
        }
        if let Err(e) = self.fabric.check_alive("watch ports OpenSM configures") {
            self.watches.clear();
            self.settle = None;
            return Err(e);
        }
        let mut i = 0;
        while i < self.watches.len() {
            let w = self.watches[i];
            let name = self.name(w.node)?;
            let Some(c) = self.fabric.client(&name) else {
                self.watches.remove(i);
                continue;
            };
            let s = c.lid_state()?;
            let done = PortState::from_u8(s.state) == PortState::Active
                && s.lid != 0
                && w.lid.is_none_or(|l| l == s.lid);
            if done {
                let id = c.identity()?;
                if let Some(slot) = self.identities.get_mut(w.node) {
                    *slot = id;
                }
                self.updates.push((w.node, id));
                self.watches.remove(i);
                continue;
            }
            if w.since.elapsed() >= WATCH_FOR {
                self.watches.remove(i);
                return Err(Error::Timeout {
                    step: "wait for OpenSM to configure a port",
                    context: format!(
                        "port {name:?} at LID {:#x} state {}, waiting for {}",
                        s.lid,
                        s.state,
                        w.lid
                            .map_or("Active".into(), |l| format!("LID {l:#x}, Active"))
                    ),
                    waited: WATCH_FOR,
                });
            }
            i += 1;
        }
        Ok(())
    }

    /// Puts back the TID bits 63..48 node `node` chose into an answer to its request.
    fn restore_tid(&mut self, node: usize, mad: &mut [u8; 256]) {
        if mad[MAD_METHOD] & METHOD_RESPONSE == 0 {
            return;
        }
        let Some(tid) = tid_of(mad) else { return };
        let key = (node, mad[MAD_CLASS], tid & ibsim::mad::TID_MATCH_MASK);
        if let Some(i) = self.tid_high.iter().position(|(k, _)| *k == key)
            && let Some((_, high)) = self.tid_high.remove(i)
        {
            let tid = u64::from(high) << 48 | key.2;
            mad[MAD_TID..MAD_TID + 8].copy_from_slice(&tid.to_be_bytes());
        }
    }

    /// MADs that arrived for the model ports within about `wait`, as frames for
    /// each node (LRH, BTH, DETH as a real port would have received them).
    pub fn poll(&mut self, wait: Duration) -> Result<Vec<(usize, Vec<u8>)>, Error> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        loop {
            self.check_watches()?;
            for node in 0..self.names.len() {
                let lid = self.identities[node].lid;
                let name = self.names[node].clone();
                let Some(c) = self.fabric.client(&name) else {
                    continue;
                };
                let mut arrived = Vec::new();
                while let Some(r) = c.try_recv()? {
                    arrived.push(r);
                }
                for r in arrived {
                    if r.bounced {
                        self.bounced += 1;
                        continue;
                    }
                    self.mads_received += 1;
                    let mut mad = r.mad;
                    self.restore_tid(node, &mut mad);
                    let qkey = if r.dqp == 1 { GSI_QKEY } else { 0 };
                    if let Some(f) =
                        ud_frame(r.slid, lid, 0, 0xFFFF, r.dqp, r.sqp, qkey, 0, mad.to_vec())
                    {
                        got.push((node, f));
                    }
                }
            }
            if !got.is_empty() || !self.updates.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            std::thread::sleep(POLL);
        }
    }
}
