//! A whole simulated subnet on one virtual clock: the fabric's switch and links, the
//! subnet manager and SA on the switch's management port, ConnectX functions driven
//! by the driver under test, and SRP targets.
//!
//! Every packet is a real encoded packet (LRH to VCRC) and crosses the fabric's links
//! with its serialisation and switch latency; `pcap` captures each one as it enters a
//! link. [`World::run_until`] advances time event by event: frame deliveries, the RC
//! engines' timers (on the functions and on the targets) and the subnet manager's.
//! The driver runs between calls, as the CPU would between packets.

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
use crate::fabric::{Endpoint, Fabric, FabricConfig};
use crate::wire::{PcapWriter, TimeResolution};
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
        let bridge = Bridge::start(nodes.len())?;
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
    fn collect(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let frames = match n {
                Node::Host(d) => d.take_outbox(),
                Node::Target(t) => t.take_outbox(),
            };
            for f in frames {
                if let Some(b) = self.bridge.as_mut()
                    && let Ok(p) = crate::wire::IbPacket::decode(&f)
                    && Bridge::carries(&p)
                {
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
        nodes.chain(self.manager.next_deadline_ns()).min()
    }

    fn run_timers(&mut self) {
        let now = self.clock.now_ns();
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
        if let Some(got) = self.bridge_poll(std::time::Duration::ZERO)
            && !got.is_empty()
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
        let got = self.bridge_poll(budget).unwrap_or_default();
        let waited = started.elapsed().as_nanos() as u64;
        self.clock
            .advance_to_ns((now + waited).min(horizon_ns).max(now));
        for (i, f) in got {
            self.deliver(Endpoint::Ca(i), &f);
        }
    }

    fn bridge_poll(&mut self, wait: std::time::Duration) -> Option<Vec<(usize, Vec<u8>)>> {
        let b = self.bridge.as_mut()?;
        match b.poll(wait) {
            Ok(got) => Some(got),
            Err(e) => {
                self.bridge_errors.push(e.to_string());
                Some(Vec::new())
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
