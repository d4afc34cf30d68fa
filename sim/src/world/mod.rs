//! A whole simulated subnet on one virtual clock: the fabric's switch and links, the
//! subnet manager and SA on the switch's management port, ConnectX functions driven
//! by the driver under test, and SRP targets.
//!
//! Every packet is a real encoded packet (LRH to VCRC) and crosses the fabric's links
//! with its serialisation and switch latency; `pcap` captures each one as it enters a
//! link. [`World::run_until`] advances time event by event: frame deliveries, the RC
//! engines' timers (on the functions and on the targets) and the subnet manager's.
//! The driver runs between calls, as the CPU would between packets.
//!
//! Faults (issue 7's campaign calls them by node index, at times of its choosing):
//! [`World::set_link`] (a cable), [`World::restart_target`] (a target reboots),
//! [`World::change_lids`] (the subnet manager moves every CA), [`World::sa_busy`] (an
//! overloaded SA), [`World::inject_qp_error`] (a fatal local QP error on a host), and
//! the target's own [`World::stale_next_req`], [`World::target_disconnect_all`] and
//! [`World::target_logout_all`]. Each works under both subnet managers: with the
//! built-in one its sweeps react; with OpenSM the fault is made in ibsim (its console)
//! or OpenSM (a restart) and what OpenSM then configures is handed to the model ports.
//! [`World::fault_counts`] counts them.

pub mod manager;
pub mod opensm;
pub mod probe;
pub mod rig;
pub mod target;

use std::cell::RefCell;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::rc::Rc;

use crate::clock::Clock;
use crate::device::Mlx5Function;
use crate::device::connected::{InjectError, Injected};
use crate::device::datapath::{GSI_QKEY, ud_frame};
use crate::device::port::state;
use crate::fabric::{Endpoint, Fabric, FabricConfig};
use crate::ibsim::PortIdentity;
use crate::sm::sa::{SaFault, busy_reply};
use crate::sm::sweep::RelabelError;
use crate::srpt::{ChannelState, SrptFault};
use crate::wire::{ExtHeaders, IbPacket, PcapWriter, TimeResolution};
pub use manager::Manager;
pub use opensm::Bridge;
pub use target::TargetNode;

/// What a driver run by [`World::run_driven`] says after each event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drive {
    /// The run is over.
    pub done: bool,
    /// When the driver next needs to run (virtual ns), if nothing happens before.
    pub wake_ns: Option<u64>,
}

/// What is cabled to a switch port.
pub enum Node {
    /// A ConnectX function (the driver under test talks to it through its BAR).
    Host(Rc<Mlx5Function>),
    /// An SRP target.
    Target(Box<TargetNode>),
}

/// A capture of every packet on every link.
type Capture = Rc<RefCell<Option<PcapWriter<BufWriter<File>>>>>;

/// A frame for node `.0` (switch port `.0 + 1`).
type NodeFrame = (usize, Vec<u8>);

/// How many faults of each kind the world was asked to inject (a request that
/// changes nothing, such as bringing up a link that is up, is not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Links taken down ([`World::set_link`]; a restart's own link-down not counted).
    pub link_downs: u64,
    /// Links brought up ([`World::set_link`]; a restart's own link-up not counted).
    pub link_ups: u64,
    /// Target reboots ([`World::restart_target`]).
    pub target_restarts: u64,
    /// LID changes of the whole subnet ([`World::change_lids`]).
    pub lid_changes: u64,
    /// Fatal QP errors injected ([`World::inject_qp_error`]).
    pub qp_errors: u64,
    /// SA BUSY periods started ([`World::sa_busy`]).
    pub sa_busy_periods: u64,
    /// SA queries the bridge answered BUSY itself (OpenSM only; the built-in SA
    /// answers BUSY in its own right).
    pub sa_busy_answers: u64,
    /// Stale-connection rejects armed ([`World::stale_next_req`]).
    pub stale_rejects: u64,
    /// CM DREQs a target sent on its own ([`World::target_disconnect_all`]).
    pub dreqs: u64,
    /// SRP_T_LOGOUTs a target sent ([`World::target_logout_all`]).
    pub t_logouts: u64,
}

/// Why a fault could not be injected.
#[derive(Debug)]
pub enum FaultError {
    /// No node on that switch port.
    NoNode(usize),
    /// The node is not an SRP target.
    NotATarget(usize),
    /// The node is not a host's function.
    NotAHost(usize),
    /// The built-in subnet manager refused the new LIDs.
    Relabel(RelabelError),
    /// The QP error could not be injected.
    Qp(InjectError),
    /// ibsim or OpenSM refused or failed.
    Bridge(crate::ibsim::Error),
}

impl std::fmt::Display for FaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultError::NoNode(i) => write!(f, "no node {i}"),
            FaultError::NotATarget(i) => write!(f, "node {i} is not a target"),
            FaultError::NotAHost(i) => write!(f, "node {i} is not a host"),
            FaultError::Relabel(e) => write!(f, "LID change: {e}"),
            FaultError::Qp(e) => write!(f, "QP error: {e}"),
            FaultError::Bridge(e) => write!(f, "OpenSM bridge: {e}"),
        }
    }
}

impl std::error::Error for FaultError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FaultError::Relabel(e) => Some(e),
            FaultError::Qp(e) => Some(e),
            FaultError::Bridge(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::ibsim::Error> for FaultError {
    fn from(e: crate::ibsim::Error) -> Self {
        FaultError::Bridge(e)
    }
}

/// The subnet.
pub struct World {
    clock: Clock,
    fabric: Fabric,
    nodes: Vec<Node>,
    manager: Manager,
    /// With `--sm opensm`: the real OpenSM on ibsim carrying every MAD.
    bridge: Option<Bridge>,
    /// What the bridge refused to carry (see [`crate::ibsim::Error`]).
    pub bridge_errors: Vec<String>,
    capture: Capture,
    /// Links that come up by themselves: `(when, ca)` (a rebooted target's).
    relinks: Vec<(u64, usize)>,
    /// Cable changes planned ahead ([`World::flap`], [`World::schedule_flap`]):
    /// `(when, ca, Some(down_ns))` pulls the cable for that long, `(when, ca, None)`
    /// plugs it back.
    planned: Vec<(u64, usize, Option<u64>)>,
    /// The SA answers BUSY until then.
    sa_busy_until: Option<u64>,
    /// Answers the bridge gives itself (an SA BUSY): `(due, ca, frame)`.
    own_answers: Vec<(u64, usize, Vec<u8>)>,
    /// Non-SMP frames a port that is not ACTIVE was not allowed to send.
    inactive_discards: u64,
    faults: FaultCounts,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("now_ns", &self.clock.now_ns())
            .field("nodes", &self.nodes.len())
            .field("fabric", &self.fabric)
            .finish()
    }
}

impl World {
    /// A switch with `nodes` on ports 1..=n and `manager` on its management port.
    pub fn new(clock: Clock, cfg: FabricConfig, nodes: Vec<Node>, manager: Manager) -> World {
        let fabric = Fabric::new(clock.clone(), nodes.len(), cfg);
        World {
            clock,
            fabric,
            nodes,
            manager,
            bridge: None,
            bridge_errors: Vec::new(),
            capture: Rc::new(RefCell::new(None)),
            relinks: Vec::new(),
            planned: Vec::new(),
            sa_busy_until: None,
            own_answers: Vec::new(),
            inactive_discards: 0,
            faults: FaultCounts::default(),
        }
    }

    /// The subnet managed by a real OpenSM on ibsim ([`opensm`]): ibsim and OpenSM
    /// are started, every node's port takes the LID, SM LID and GUIDs OpenSM gave its
    /// ibsim twin (and the function raises its port-change event), and the model
    /// switch forwards those LIDs. The built-in manager stays idle.
    pub fn with_opensm(
        clock: Clock,
        cfg: FabricConfig,
        nodes: Vec<Node>,
    ) -> Result<World, crate::ibsim::Error> {
        Self::with_opensm_options(clock, cfg, nodes, crate::ibsim::OpenSmOptions::default())
    }

    /// [`World::with_opensm`] with OpenSM run as `options` say (its sweep interval).
    pub fn with_opensm_options(
        clock: Clock,
        cfg: FabricConfig,
        nodes: Vec<Node>,
        options: crate::ibsim::OpenSmOptions,
    ) -> Result<World, crate::ibsim::Error> {
        let bridge = Bridge::start_with(nodes.len(), options)?;
        let mut world = World::new(clock, cfg, nodes, Manager::idle());
        for (i, id) in bridge.identities.iter().enumerate() {
            world.fabric.route(id.lid, Fabric::port_of(i));
            let sm_lid = id.sm_lid;
            match &mut world.nodes[i] {
                Node::Host(d) => {
                    {
                        let mut fw = d.firmware_mut();
                        fw.port.port_guid = id.port_guid;
                        fw.port.node_guid = id.port_guid.wrapping_sub(1);
                        fw.port.gid_prefix = id.gid_prefix;
                        fw.port.activate(id.lid, sm_lid, 0, 18);
                        fw.port.state = crate::device::port::state::ARMED;
                    }
                    d.set_port_state(crate::device::port::state::ACTIVE);
                }
                Node::Target(t) => {
                    t.port.port_guid = id.port_guid;
                    t.port.node_guid = id.port_guid.wrapping_sub(1);
                    t.port.gid_prefix = id.gid_prefix;
                    t.port.activate(id.lid, sm_lid, 0, 18);
                }
            }
        }
        world.bridge = Some(bridge);
        Ok(world)
    }

    /// The OpenSM bridge, in `--sm opensm` mode.
    pub fn bridge(&mut self) -> Option<&mut Bridge> {
        self.bridge.as_mut()
    }

    /// Writes every packet that enters a link to a pcap file (LINKTYPE_INFINIBAND,
    /// nanosecond timestamps of virtual time).
    pub fn capture_to(&mut self, path: &Path) -> std::io::Result<()> {
        let file = BufWriter::new(File::create(path)?);
        *self.capture.borrow_mut() = Some(PcapWriter::new(file, TimeResolution::Nanoseconds)?);
        let sink = self.capture.clone();
        self.fabric.set_tap(move |t, frame| {
            if let Some(w) = sink.borrow_mut().as_mut() {
                let _ = w.write_record(t, frame);
            }
        });
        Ok(())
    }

    /// Flushes the capture; returns the packets written.
    pub fn finish_capture(&mut self) -> std::io::Result<u64> {
        match self.capture.borrow_mut().as_mut() {
            Some(w) => {
                w.flush()?;
                Ok(w.records())
            }
            None => Ok(0),
        }
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The fabric (links, loss and delay injection, statistics).
    pub fn fabric(&mut self) -> &mut Fabric {
        &mut self.fabric
    }

    /// The subnet manager and SA.
    pub fn manager(&mut self) -> &mut Manager {
        &mut self.manager
    }

    /// The node on switch port `i + 1`.
    pub fn node(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    /// The target on switch port `i + 1`.
    pub fn target(&mut self, i: usize) -> Option<&mut TargetNode> {
        match self.nodes.get_mut(i) {
            Some(Node::Target(t)) => Some(t),
            _ => None,
        }
    }

    /// Takes what every node and the manager want to send and puts it on the fabric.
    ///
    /// A port that is not ACTIVE sends SMPs only (IBTA vol. 1 §7.2: in INIT and ARMED
    /// the link carries subnet management alone, in DOWN nothing): anything else it
    /// has queued (an RC retransmission of a port whose link just came back, say) is
    /// discarded and counted ([`World::inactive_discards`]). With OpenSM and an SA BUSY
    /// period, the SA requests are answered here ([`World::sa_busy`]).
    fn collect(&mut self) {
        let now = self.clock.now_ns();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let (frames, active) = match n {
                Node::Host(d) => (d.take_outbox(), d.firmware().port.state == state::ACTIVE),
                Node::Target(t) => (t.take_outbox(), t.port.state == state::ACTIVE),
            };
            for f in frames {
                if !active && !IbPacket::decode(&f).is_ok_and(|p| p.bth.dest_qp == 0) {
                    self.inactive_discards += 1;
                    continue;
                }
                if let Some(b) = self.bridge.as_mut()
                    && let Ok(p) = IbPacket::decode(&f)
                    && Bridge::carries(&p)
                {
                    if self.sa_busy_until.is_some()
                        && p.lrh.dlid == b.opensm_lid()
                        && let Some(answer) = busy_answer(&p)
                    {
                        self.faults.sa_busy_answers += 1;
                        let due = now + manager::SA_PROCESSING_NS;
                        self.own_answers.push((due, i, answer));
                        continue;
                    }
                    if let Err(e) = b.send(i, &p) {
                        self.bridge_errors.push(e.to_string());
                    }
                    continue;
                }
                self.fabric.send(Endpoint::Ca(i), f, None);
            }
        }
        for (f, dr_port) in self.manager.take_outbox() {
            self.fabric.send(Endpoint::Sm, f, dr_port);
        }
    }

    fn next_timer_ns(&self) -> Option<u64> {
        let nodes = self.nodes.iter().filter_map(|n| match n {
            Node::Host(d) => d.next_deadline_ns(),
            Node::Target(t) => t.next_deadline_ns(),
        });
        let faults = self
            .relinks
            .iter()
            .map(|r| r.0)
            .chain(self.own_answers.iter().map(|a| a.0))
            .chain(self.planned.iter().map(|p| p.0))
            .chain(self.sa_busy_until);
        nodes
            .chain(self.manager.next_deadline_ns())
            .chain(faults)
            .min()
    }

    fn run_timers(&mut self) {
        let now = self.clock.now_ns();
        self.fault_timers(now);
        for n in &mut self.nodes {
            match n {
                Node::Host(d) => {
                    if d.next_deadline_ns().is_some_and(|t| t <= now) {
                        d.poll();
                    }
                }
                Node::Target(t) => {
                    if t.next_deadline_ns().is_some_and(|t| t <= now) {
                        t.poll(now);
                    }
                }
            }
        }
        self.manager.poll(now);
    }

    /// Does the next thing due by `until_ns`: a frame delivery, a timer, or (with
    /// OpenSM) MADs from ibsim, waiting for them in wall-clock time when nothing
    /// else is due and moving virtual time on by the time waited. False when
    /// nothing is due by then.
    fn step(&mut self, until_ns: u64, wake_ns: Option<u64>) -> bool {
        self.collect();
        if let Some((got, configured)) = self.bridge_poll(std::time::Duration::ZERO)
            && (configured || !got.is_empty())
        {
            for (i, f) in got {
                self.deliver(Endpoint::Ca(i), &f);
            }
            return true;
        }
        let next = [self.fabric.next_event_ns(), self.next_timer_ns()]
            .into_iter()
            .flatten()
            .min();
        // A driver wake-up due before anything else: move time there and let the
        // driver run.
        let waiting = self.bridge.as_ref().is_some_and(Bridge::expecting);
        if let Some(w) = wake_ns
            && w <= until_ns
            && next.is_none_or(|t| w < t)
            && !waiting
        {
            let now = self.clock.now_ns();
            if w > now {
                self.clock.advance_to_ns(w);
                return true;
            }
        }
        match next {
            Some(t) if t <= until_ns => {
                if self.fabric.next_event_ns() == Some(t) {
                    if let Some((to, frame)) = self.fabric.step_until(t) {
                        self.deliver(to, &frame);
                    }
                } else if waiting && t > self.clock.now_ns() {
                    // ibsim owes an answer: virtual time may not run ahead of the wall
                    // clock to a timer, or the answer would seem late.
                    self.wait_bridge(t);
                } else {
                    self.clock.advance_to_ns(t.max(self.clock.now_ns()));
                    self.run_timers();
                }
                true
            }
            _ => {
                let now = self.clock.now_ns();
                if !waiting || now >= until_ns {
                    return false;
                }
                let horizon = next.or(wake_ns).unwrap_or(until_ns).min(until_ns);
                let horizon = wake_ns.map_or(horizon, |w| horizon.min(w.max(now)));
                self.wait_bridge(horizon);
                true
            }
        }
    }

    /// Waits for ibsim in wall-clock time, at most until virtual `horizon_ns` (and
    /// 5 ms per call), moving virtual time on by the time waited.
    fn wait_bridge(&mut self, horizon_ns: u64) {
        let now = self.clock.now_ns();
        let budget = std::time::Duration::from_nanos(horizon_ns.saturating_sub(now).min(5_000_000));
        let started = std::time::Instant::now();
        let (got, _) = self.bridge_poll(budget).unwrap_or_default();
        let waited = started.elapsed().as_nanos() as u64;
        self.clock
            .advance_to_ns((now + waited).min(horizon_ns).max(now));
        for (i, f) in got {
            self.deliver(Endpoint::Ca(i), &f);
        }
    }

    /// MADs from ibsim for the model ports, and whether OpenSM configured one of them
    /// (which the world has given to the model port).
    fn bridge_poll(&mut self, wait: std::time::Duration) -> Option<(Vec<NodeFrame>, bool)> {
        let b = self.bridge.as_mut()?;
        let polled = b.poll(wait);
        let updates = b.take_updates();
        let configured = !updates.is_empty();
        for (i, id) in updates {
            self.opensm_configured(i, id);
        }
        match polled {
            Ok(got) => Some((got, configured)),
            Err(e) => {
                self.bridge_errors.push(e.to_string());
                Some((Vec::new(), configured))
            }
        }
    }

    /// Runs the subnet until `until_ns` of virtual time, then stops with the clock
    /// there.
    pub fn run_until(&mut self, until_ns: u64) {
        let left = until_ns.saturating_sub(self.clock.now_ns());
        self.run_while(left, |_| false);
    }

    /// Runs for `ns` more of virtual time.
    pub fn run_for(&mut self, ns: u64) {
        let until = self.clock.now_ns() + ns;
        self.run_until(until)
    }

    /// Runs until `done` holds (checked after every event) or `limit_ns` of virtual
    /// time passes; whether `done` held.
    pub fn run_while(&mut self, limit_ns: u64, mut done: impl FnMut(&mut World) -> bool) -> bool {
        self.run_driven(limit_ns, |w| Drive {
            done: done(w),
            wake_ns: None,
        })
    }

    /// Like [`World::run_while`], for a driver with timers of its own: `drive` runs
    /// after every event and says whether the run is over and when the driver next
    /// needs to run if nothing happens before (virtual time skips to it).
    pub fn run_driven(
        &mut self,
        limit_ns: u64,
        mut drive: impl FnMut(&mut World) -> Drive,
    ) -> bool {
        let until = self.clock.now_ns() + limit_ns;
        loop {
            let d = drive(self);
            if d.done {
                return true;
            }
            if !self.step(until, d.wake_ns) {
                self.clock.advance_to_ns(until.max(self.clock.now_ns()));
                self.run_timers();
                self.collect();
                return drive(self).done;
            }
        }
    }

    fn deliver(&mut self, to: Endpoint, frame: &[u8]) {
        let now = self.clock.now_ns();
        match to {
            Endpoint::Ca(i) => match self.nodes.get_mut(i) {
                Some(Node::Host(d)) => d.deliver(frame),
                Some(Node::Target(t)) => t.deliver(now, frame),
                None => {}
            },
            Endpoint::Sm => self.manager.deliver(now, frame),
        }
    }
}

/// `p`'s BUSY answer, as an overloaded SA gives it ([`busy_reply`]), addressed back to
/// the requester: `None` when `p` is not an SA request on QP1.
fn busy_answer(p: &IbPacket) -> Option<Vec<u8>> {
    let ExtHeaders::Deth(deth) = p.ext else {
        return None;
    };
    let mad = <[u8; 256]>::try_from(p.payload.as_slice()).ok()?;
    if p.bth.dest_qp != 1 {
        return None;
    }
    let reply = busy_reply(&mad)?;
    ud_frame(
        p.lrh.dlid,
        p.lrh.slid,
        p.lrh.sl,
        p.bth.p_key,
        deth.src_qp,
        1,
        GSI_QKEY,
        0,
        reply.to_vec(),
    )
}

/// From a switch port's state change to its Trap 128 reaching the SM.
const TRAP_DELAY_NS: u64 = 5_000;

/// Connection IDs of a target's `boot`-th life (see [`crate::srpt::SrpTarget::rebooted`]):
/// spread far apart, as ib_cm's random operand would put them.
fn comm_id_base(boot: u64) -> u32 {
    0x5352_0001 ^ (boot as u32).wrapping_mul(0x9E37_79B9)
}

impl World {
    /// How many faults of each kind were injected so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.faults
    }

    /// Frames other than SMPs that a port not ACTIVE had queued and was not allowed
    /// to send (IBTA vol. 1 §7.2), so discarded.
    pub fn inactive_discards(&self) -> u64 {
        self.inactive_discards
    }

    /// The cable of node `ca` goes down or comes up: the fabric's link, the switch
    /// port, and the node's own port (a host function's PortInfo and its port-change
    /// event, [`Mlx5Function::set_link`]; a target's port, [`TargetNode::set_link`]).
    /// Either way the switch sends Trap 128 to the subnet manager (IBTA vol. 1
    /// §14.3.11). Up, the port waits in INIT for the subnet manager: the built-in one
    /// sweeps on the trap and activates it; with OpenSM, the link of the port's ibsim
    /// twin follows (`Unlink`/`ReLink`), OpenSM sweeps on ibsim's trap, and what it
    /// configures is given to the model port when the twin is Active (a few ms of wall
    /// time, which the world waits for in step with virtual time; longer when OpenSM
    /// ignores the trap, see [`opensm`]). Down, the SA drops the port at that sweep. A link already in that state is left alone; a
    /// rebooted target's pending link-up is cancelled.
    pub fn set_link(&mut self, ca: usize, up: bool) -> Result<(), FaultError> {
        if ca >= self.nodes.len() {
            return Err(FaultError::NoNode(ca));
        }
        self.relinks.retain(|r| r.1 != ca);
        if self.fabric.link_up(ca) == up {
            return Ok(());
        }
        self.cable(ca, up)?;
        if up {
            self.faults.link_ups += 1;
        } else {
            self.faults.link_downs += 1;
        }
        Ok(())
    }

    fn cable(&mut self, ca: usize, up: bool) -> Result<(), FaultError> {
        self.fabric.set_link_up(ca, up);
        if self.bridge.is_none() {
            // The switch's trap reaches the built-in SM a few microseconds later.
            let at = self.clock.now_ns().saturating_add(TRAP_DELAY_NS);
            self.manager.sm.trap(at);
        }
        match self.nodes.get_mut(ca) {
            Some(Node::Host(d)) => d.set_link(up),
            Some(Node::Target(t)) => t.set_link(up),
            None => return Err(FaultError::NoNode(ca)),
        }
        if let Some(b) = self.bridge.as_mut() {
            b.set_link(ca, up)?;
        }
        Ok(())
    }

    /// The cable of node `ca` is pulled now and plugged back after `down_ns` (both
    /// as [`World::set_link`], and counted so). A plug already planned for `ca` is
    /// moved to this flap's end.
    pub fn flap(&mut self, ca: usize, down_ns: u64) -> Result<(), FaultError> {
        self.set_link(ca, false)?;
        self.planned.retain(|p| !(p.1 == ca && p.2.is_none()));
        let at = self.clock.now_ns().saturating_add(down_ns);
        self.planned.push((at, ca, None));
        Ok(())
    }

    /// A [`World::flap`] of `ca`'s cable at virtual time `at_ns` (for faults while a
    /// driver runs on its own, such as the dump stack's polling).
    pub fn schedule_flap(&mut self, at_ns: u64, ca: usize, down_ns: u64) -> Result<(), FaultError> {
        if ca >= self.nodes.len() {
            return Err(FaultError::NoNode(ca));
        }
        self.planned.push((at_ns, ca, Some(down_ns)));
        Ok(())
    }

    /// Target `i` reboots: its link goes down now; every channel, RC QP and CM state
    /// it had is gone, with no DREQ (packets to its old QPs go unanswered); it comes
    /// back with the same configuration, logical units and disk contents (everything
    /// acknowledged is on the image), an unconfigured port (LID 0) and connection IDs
    /// of its new life; after `down_ns` its link comes up and the subnet manager
    /// configures and activates the port (with OpenSM: ibsim's `Clear`, then
    /// `ReLink`).
    pub fn restart_target(&mut self, i: usize, down_ns: u64) -> Result<(), FaultError> {
        let boot = self.faults.target_restarts + 1;
        match self.nodes.get_mut(i) {
            Some(Node::Target(t)) => t.reboot(comm_id_base(boot)),
            Some(Node::Host(_)) => return Err(FaultError::NotATarget(i)),
            None => return Err(FaultError::NoNode(i)),
        }
        self.fabric.set_link_up(i, false);
        if let Some(b) = self.bridge.as_mut() {
            b.reset_port(i)?;
        } else {
            // The switch's trap, as for any link change (see `cable`).
            let at = self.clock.now_ns().saturating_add(TRAP_DELAY_NS);
            self.manager.sm.trap(at);
        }
        self.relinks.retain(|r| r.1 != i);
        self.relinks
            .push((self.clock.now_ns().saturating_add(down_ns), i));
        self.faults.target_restarts += 1;
        Ok(())
    }

    /// Every CA moves to a new LID (its LID + `offset`) at once, through the subnet
    /// manager. Built-in: [`Manager::relabel`] and a heavy sweep now, whose PortInfo
    /// Sets the ports' agents take (a function raises its LID-change event). OpenSM:
    /// OpenSM is restarted with the new LIDs in its `guid2lid` cache
    /// ([`Bridge::change_lids`]); its first sweep sets them on the ibsim twins, and
    /// each model port takes its new LID (with the LID-change event) and the model
    /// switch its new route when its twin has it. The subnet manager's own LID does not
    /// move.
    pub fn change_lids(&mut self, offset: u16) -> Result<(), FaultError> {
        let now = self.clock.now_ns();
        match self.bridge.as_mut() {
            Some(b) => {
                b.change_lids(offset)?;
            }
            None => self
                .manager
                .relabel(now, offset)
                .map_err(FaultError::Relabel)?,
        }
        self.faults.lid_changes += 1;
        Ok(())
    }

    /// The SA answers BUSY (MAD status bit 0) until virtual time `until_ns` (a time
    /// not after now ends a BUSY period at once). Built-in: [`SaFault::Busy`] on the
    /// SA (PathRecord queries; others are unsupported anyway). OpenSM: OpenSM itself
    /// cannot be made to, so the bridge plays the overloaded SA: every SA request a
    /// model port sends to OpenSM's LID is answered BUSY by the bridge after the SA's
    /// processing time ([`manager::SA_PROCESSING_NS`]) and never reaches OpenSM.
    pub fn sa_busy(&mut self, until_ns: u64) {
        if until_ns <= self.clock.now_ns() {
            self.end_sa_busy();
            return;
        }
        if self.sa_busy_until.is_none() {
            self.faults.sa_busy_periods += 1;
        }
        self.sa_busy_until = Some(until_ns);
        if self.bridge.is_none() {
            self.manager.set_sa_fault(SaFault::Busy);
        }
    }

    fn end_sa_busy(&mut self) {
        if self.sa_busy_until.take().is_some()
            && self.bridge.is_none()
            && self.manager.sa.fault == SaFault::Busy
        {
            self.manager.set_sa_fault(SaFault::None);
        }
    }

    /// A fatal local error on RC QP `qpn` of host `ca`'s function
    /// ([`Mlx5Function::inject_qp_error`]).
    pub fn inject_qp_error(&mut self, ca: usize, qpn: u32) -> Result<Injected, FaultError> {
        let r = match self.nodes.get(ca) {
            Some(Node::Host(d)) => d.inject_qp_error(qpn).map_err(FaultError::Qp)?,
            Some(Node::Target(_)) => return Err(FaultError::NotAHost(ca)),
            None => return Err(FaultError::NoNode(ca)),
        };
        self.faults.qp_errors += 1;
        Ok(r)
    }

    /// Target `i` rejects the next CM REQ with reason 10, stale connection
    /// ([`SrptFault::StaleNextReq`]).
    pub fn stale_next_req(&mut self, i: usize) -> Result<(), FaultError> {
        self.target_of(i)?.srpt.set_fault(SrptFault::StaleNextReq);
        self.faults.stale_rejects += 1;
        Ok(())
    }

    /// Target `i` disconnects every channel that is not already going: a CM DREQ on
    /// each ([`crate::srpt::SrpTarget::disconnect`]). Returns how many.
    pub fn target_disconnect_all(&mut self, i: usize) -> Result<usize, FaultError> {
        let now = self.clock.now_ns();
        let t = self.target_of(i)?;
        let ids: Vec<_> = t
            .srpt
            .channels()
            .filter(|(_, c)| c.state != ChannelState::Disconnecting)
            .map(|(id, _)| id)
            .collect();
        for &id in &ids {
            t.initiate(now, |s| s.disconnect(now, id));
        }
        self.faults.dreqs += ids.len() as u64;
        Ok(ids.len())
    }

    /// Target `i` sends SRP_T_LOGOUT with `reason` on every live channel
    /// ([`crate::srpt::SrpTarget::send_t_logout`]; the channels stay up until the
    /// initiator or a DREQ ends them). Returns how many.
    pub fn target_logout_all(&mut self, i: usize, reason: u32) -> Result<usize, FaultError> {
        let now = self.clock.now_ns();
        let t = self.target_of(i)?;
        let ids: Vec<_> = t
            .srpt
            .channels()
            .filter(|(_, c)| c.state == ChannelState::Live)
            .map(|(id, _)| id)
            .collect();
        for &id in &ids {
            t.initiate(now, |s| s.send_t_logout(id, reason));
        }
        self.faults.t_logouts += ids.len() as u64;
        Ok(ids.len())
    }

    fn target_of(&mut self, i: usize) -> Result<&mut TargetNode, FaultError> {
        match self.nodes.get_mut(i) {
            Some(Node::Target(t)) => Ok(t),
            Some(Node::Host(_)) => Err(FaultError::NotATarget(i)),
            None => Err(FaultError::NoNode(i)),
        }
    }

    /// The faults' own timers: rebooted targets' links coming up, the end of an SA
    /// BUSY period, the bridge's BUSY answers.
    fn fault_timers(&mut self, now: u64) {
        let (due, later): (Vec<_>, Vec<_>) = self.planned.drain(..).partition(|p| p.0 <= now);
        self.planned = later;
        for (_, ca, down) in due {
            let done = match down {
                Some(down_ns) => self.flap(ca, down_ns),
                None => self.set_link(ca, true),
            };
            if let Err(e) = done {
                self.bridge_errors.push(e.to_string());
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = self.relinks.drain(..).partition(|r| r.0 <= now);
        self.relinks = later;
        for (_, ca) in due {
            if let Err(e) = self.cable(ca, true) {
                self.bridge_errors.push(e.to_string());
            }
        }
        if self.sa_busy_until.is_some_and(|t| t <= now) {
            self.end_sa_busy();
        }
        let (due, later): (Vec<_>, Vec<_>) = self.own_answers.drain(..).partition(|a| a.0 <= now);
        self.own_answers = later;
        for (_, ca, frame) in due {
            self.deliver(Endpoint::Ca(ca), &frame);
        }
    }

    /// OpenSM configured node `i`'s twin (after a relink or a LID change): the model
    /// port takes LID, SM LID and ACTIVE (a function raises the port-change events an
    /// SM's PortInfo Set would), and the model switch forwards the LID to it, no longer
    /// the LID it had. Ignored if the link went down again meanwhile.
    fn opensm_configured(&mut self, i: usize, id: PortIdentity) {
        if !self.fabric.link_up(i) {
            return;
        }
        let port = Fabric::port_of(i);
        let old = match self.nodes.get(i) {
            Some(Node::Host(d)) => d.firmware().port.lid,
            Some(Node::Target(t)) => t.port.lid,
            None => return,
        };
        if old != 0 && old != id.lid && self.fabric.switch().out_port(old) == Some(port) {
            self.fabric.unroute(old);
        }
        self.fabric.route(id.lid, port);
        match self.nodes.get_mut(i) {
            Some(Node::Host(d)) => d.configure_port(id.lid, id.sm_lid, state::ACTIVE),
            Some(Node::Target(t)) => {
                t.port.lid = id.lid;
                t.port.sm_lid = id.sm_lid;
                t.port.gid_prefix = id.gid_prefix;
                t.port.state = state::ACTIVE;
            }
            None => {}
        }
    }
}
