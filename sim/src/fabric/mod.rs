//! The fabric: channel-adapter ports, links and one switch with LID routing, on the
//! virtual clock.
//!
//! CA `i` is cabled to switch port `i + 1`; switch port 0 is its management port,
//! where the built-in subnet manager and SA live (as on a managed switch). Frames are
//! whole encoded packets starting with the LRH (IBTA vol. 1 §7.7); the fabric reads
//! only the LRH's DLID and VL.
//!
//! Timing: a frame entering a link waits for the link to be free in that direction,
//! takes `bytes × 8 / rate` to serialise, then the cable delay; a switch forwards after
//! its latency (default 4x EDR links and a 600 ns switch). Links can go down (frames
//! in flight and frames offered are lost), drop frames (every n-th, or with a seeded
//! probability) and add delay.

pub mod link;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::clock::Clock;
use link::Link;
pub use link::{LinkSpeed, Loss};

/// The LRH's permissive DLID: directed-route SMPs (IBTA vol. 1 §14.2.2).
pub const PERMISSIVE_LID: u16 = 0xFFFF;

/// Timing and size of the fabric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FabricConfig {
    /// Link speed of every cable.
    pub speed: LinkSpeed,
    /// Lanes per link (4 for 4x).
    pub width: u8,
    /// Switch forwarding latency.
    pub switch_latency_ns: u64,
    /// Propagation delay of a cable.
    pub cable_ns: u64,
}

impl Default for FabricConfig {
    /// 4x EDR links, a 600 ns switch, 2 m cables (10 ns).
    fn default() -> Self {
        FabricConfig {
            speed: LinkSpeed::Edr,
            width: 4,
            switch_latency_ns: 600,
            cable_ns: 10,
        }
    }
}

/// Where a frame leaves from or arrives at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// Channel adapter `i`.
    Ca(usize),
    /// The switch's management port (the subnet manager).
    Sm,
}

/// Why a frame was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drop {
    /// The link was down.
    LinkDown,
    /// Loss injected on the link.
    Injected,
    /// The switch has no route for the DLID.
    NoRoute,
    /// Too short to carry an LRH.
    Runt,
}

/// What the fabric has done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames delivered to an endpoint.
    pub delivered: u64,
    /// Bytes put on links (each hop counted).
    pub link_bytes: u64,
    /// Frames lost, by reason.
    pub dropped: HashMap<Drop, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Hop {
    /// The frame reaches the switch on `port`.
    AtSwitch { port: u8, link: usize },
    /// The frame reaches an endpoint over `link`.
    AtEndpoint { to: Endpoint, link: usize },
    /// The switch has decided; the frame enters the link of `port`.
    Forward { port: u8 },
}

/// A capture hook: `(time_ns, frame)` for every frame entering a link.
type Tap = Box<dyn FnMut(u64, &[u8])>;

/// Something to do at a time: `(time_ns, sequence, hop, frame)`.
type Event = Reverse<(u64, u64, Hop, Vec<u8>)>;

/// One switch, `n` CAs and the links between them.
pub struct Fabric {
    clock: Clock,
    cfg: FabricConfig,
    /// Link `i` joins switch port `i + 1` and CA `i`; the management port has no cable.
    links: Vec<Link>,
    /// Linear forwarding table: DLID → switch port (0 = management port).
    lft: HashMap<u16, u8>,
    queue: BinaryHeap<Event>,
    seq: u64,
    stats: Stats,
    tap: Option<Tap>,
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric")
            .field("cas", &self.links.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// DLID of a frame (LRH bytes 2–3).
pub fn dlid(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(2)?, *frame.get(3)?]))
}

impl Fabric {
    /// A switch with `cas` channel adapters cabled to ports 1..=`cas`.
    pub fn new(clock: Clock, cas: usize, cfg: FabricConfig) -> Fabric {
        let links = (0..cas)
            .map(|_| Link::new(cfg.speed, cfg.width, cfg.cable_ns))
            .collect();
        Fabric {
            clock,
            cfg,
            links,
            lft: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            stats: Stats::default(),
            tap: None,
        }
    }

    /// Channel adapters on the fabric.
    pub fn cas(&self) -> usize {
        self.links.len()
    }

    /// The clock the fabric runs on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// What the fabric has done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Calls `tap(time_ns, frame)` for every frame as it enters a link (a capture).
    pub fn set_tap(&mut self, tap: impl FnMut(u64, &[u8]) + 'static) {
        self.tap = Some(Box::new(tap));
    }

    /// Programs the switch: frames for `lid` leave through `port` (0: management).
    pub fn route(&mut self, lid: u16, port: u8) {
        self.lft.insert(lid, port);
    }

    /// Forgets every route (a subnet manager reprogramming the switch).
    pub fn clear_routes(&mut self) {
        self.lft.clear();
    }

    /// The switch port CA `ca` is cabled to.
    pub fn port_of(ca: usize) -> u8 {
        (ca + 1) as u8
    }

    /// Brings CA `ca`'s link up or down. Frames on a link that goes down are lost.
    pub fn set_link_up(&mut self, ca: usize, up: bool) {
        if let Some(l) = self.links.get_mut(ca) {
            l.up = up;
        }
    }

    /// Whether CA `ca`'s link is up.
    pub fn link_up(&self, ca: usize) -> bool {
        self.links.get(ca).is_some_and(|l| l.up)
    }

    /// Injects loss on CA `ca`'s link (both directions).
    pub fn set_loss(&mut self, ca: usize, loss: Loss) {
        if let Some(l) = self.links.get_mut(ca) {
            l.loss = loss;
        }
    }

    /// Adds `ns` of delay to every frame on CA `ca`'s link.
    pub fn set_extra_delay(&mut self, ca: usize, ns: u64) {
        if let Some(l) = self.links.get_mut(ca) {
            l.extra_ns = ns;
        }
    }

    fn push(&mut self, at: u64, hop: Hop, frame: Vec<u8>) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, hop, frame)));
    }

    fn lose(&mut self, why: Drop) {
        *self.stats.dropped.entry(why).or_default() += 1;
    }

    /// Puts `frame` on link `link` in direction `to_switch` at time `at`; schedules
    /// its arrival.
    fn enter_link(&mut self, link: usize, to_switch: bool, at: u64, frame: Vec<u8>) {
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        if !l.up {
            self.lose(Drop::LinkDown);
            return;
        }
        if l.loss.drops() {
            self.lose(Drop::Injected);
            return;
        }
        let arrive = l.transmit(to_switch, at, frame.len());
        self.stats.link_bytes += frame.len() as u64;
        if let Some(tap) = self.tap.as_mut() {
            tap(at, &frame);
        }
        let hop = if to_switch {
            Hop::AtSwitch {
                port: Fabric::port_of(link),
                link,
            }
        } else {
            Hop::AtEndpoint {
                to: Endpoint::Ca(link),
                link,
            }
        };
        self.push(arrive, hop, frame);
    }

    /// `from` sends a frame now. The subnet manager's directed-route SMPs name the
    /// switch port they leave by (`dr_port`); everything else is routed by DLID.
    pub fn send(&mut self, from: Endpoint, frame: Vec<u8>, dr_port: Option<u8>) {
        let now = self.clock.now_ns();
        if frame.len() < 8 {
            self.lose(Drop::Runt);
            return;
        }
        match from {
            Endpoint::Ca(i) => self.enter_link(i, true, now, frame),
            Endpoint::Sm => match dr_port {
                Some(port) => self.push(now, Hop::Forward { port }, frame),
                None => self.switch_forward(now, 0, frame),
            },
        }
    }

    /// The switch's forwarding decision for a frame that arrived on `in_port`.
    fn switch_forward(&mut self, at: u64, in_port: u8, frame: Vec<u8>) {
        let Some(dlid) = dlid(&frame) else {
            self.lose(Drop::Runt);
            return;
        };
        let out = if dlid == PERMISSIVE_LID {
            // Directed-route SMPs answering the SM return to the management port.
            Some(0)
        } else {
            self.lft.get(&dlid).copied()
        };
        let _ = in_port;
        match out {
            Some(port) => self.push(
                at + self.cfg.switch_latency_ns,
                Hop::Forward { port },
                frame,
            ),
            None => self.lose(Drop::NoRoute),
        }
    }

    /// Time of the next thing the fabric will do.
    pub fn next_event_ns(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((t, ..))| *t)
    }

    /// Runs the fabric up to the next delivery at or before `until_ns`, advancing the
    /// clock as it goes; `None` when nothing is delivered by then.
    pub fn step_until(&mut self, until_ns: u64) -> Option<(Endpoint, Vec<u8>)> {
        while let Some(Reverse((at, ..))) = self.queue.peek() {
            if *at > until_ns {
                return None;
            }
            let Reverse((at, _, hop, frame)) = self.queue.pop()?;
            self.clock.advance_to_ns(at);
            match hop {
                Hop::AtSwitch { port, link } => {
                    if !self.links.get(link).is_some_and(|l| l.up) {
                        self.lose(Drop::LinkDown);
                        continue;
                    }
                    self.switch_forward(at, port, frame);
                }
                Hop::AtEndpoint { to, link } => {
                    if !self.links.get(link).is_some_and(|l| l.up) {
                        self.lose(Drop::LinkDown);
                        continue;
                    }
                    self.stats.delivered += 1;
                    return Some((to, frame));
                }
                Hop::Forward { port: 0 } => {
                    self.stats.delivered += 1;
                    return Some((Endpoint::Sm, frame));
                }
                Hop::Forward { port } => {
                    let link = usize::from(port) - 1;
                    self.enter_link(link, false, at, frame);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame with an LRH to `dlid` and `len` bytes in all.
    fn frame(dlid: u16, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[0] = 0x20; // VL 2, LVer 0
        f[1] = 0x02; // LNH: local (BTH follows)
        f[2..4].copy_from_slice(&dlid.to_be_bytes());
        f
    }

    fn fabric(cas: usize) -> Fabric {
        let mut f = Fabric::new(Clock::new(), cas, FabricConfig::default());
        for i in 0..cas {
            f.route(0x10 + i as u16, Fabric::port_of(i));
        }
        f.route(1, 0);
        f
    }

    #[test]
    fn frames_are_routed_by_dlid_with_edr_timing_and_switch_latency() {
        let mut f = fabric(3);
        f.send(Endpoint::Ca(0), frame(0x12, 4096 + 30), None);
        let (to, got) = f.step_until(u64::MAX).unwrap();
        assert_eq!((to, got.len()), (Endpoint::Ca(2), 4126));
        // Two serialisations at 100 Gb/s (0.08 ns/byte), two cables, one switch.
        let wire = (4126u64 * 8).div_ceil(100);
        assert_eq!(f.clock().now_ns(), 2 * (wire + 10) + 600);
        assert_eq!(f.stats().delivered, 1);
        assert_eq!(f.stats().link_bytes, 2 * 4126);
    }

    #[test]
    fn a_busy_link_queues_frames_behind_each_other() {
        let mut f = fabric(2);
        for _ in 0..3 {
            f.send(Endpoint::Ca(0), frame(0x11, 1000), None);
        }
        let mut times = Vec::new();
        while f.step_until(u64::MAX).is_some() {
            times.push(f.clock().now_ns());
        }
        assert_eq!(times.len(), 3);
        assert_eq!(times[1] - times[0], 80, "one serialisation apart");
        assert_eq!(times[2] - times[1], 80);
    }

    #[test]
    fn the_subnet_manager_port_and_directed_routes() {
        let mut f = fabric(2);
        f.send(Endpoint::Ca(1), frame(1, 64), None);
        assert_eq!(f.step_until(u64::MAX).map(|d| d.0), Some(Endpoint::Sm));
        f.send(
            Endpoint::Sm,
            frame(PERMISSIVE_LID, 64),
            Some(Fabric::port_of(1)),
        );
        assert_eq!(f.step_until(u64::MAX).map(|d| d.0), Some(Endpoint::Ca(1)));
        f.send(Endpoint::Ca(1), frame(PERMISSIVE_LID, 64), None);
        assert_eq!(
            f.step_until(u64::MAX).map(|d| d.0),
            Some(Endpoint::Sm),
            "DR replies reach the SM"
        );
    }

    #[test]
    fn down_links_unknown_lids_and_injected_loss_lose_frames() {
        let mut f = fabric(2);
        f.send(Endpoint::Ca(0), frame(0x99, 64), None);
        assert!(f.step_until(u64::MAX).is_none());
        f.set_link_up(1, false);
        f.send(Endpoint::Ca(0), frame(0x11, 64), None);
        assert!(f.step_until(u64::MAX).is_none());
        // A frame in flight when the link goes down is lost too.
        f.set_link_up(1, true);
        f.send(Endpoint::Ca(0), frame(0x11, 64), None);
        f.set_link_up(0, false);
        assert!(f.step_until(u64::MAX).is_none());
        f.set_link_up(0, true);
        f.set_loss(0, Loss::EveryNth { n: 2, count: 0 });
        for _ in 0..4 {
            f.send(Endpoint::Ca(0), frame(0x11, 64), None);
        }
        let mut got = 0;
        while f.step_until(u64::MAX).is_some() {
            got += 1;
        }
        assert_eq!(got, 2);
        let d = &f.stats().dropped;
        assert_eq!(
            (d[&Drop::NoRoute], d[&Drop::LinkDown], d[&Drop::Injected]),
            (1, 2, 2)
        );
    }

    #[test]
    fn extra_delay_and_deadlines() {
        let mut f = fabric(2);
        f.set_extra_delay(1, 5_000);
        f.send(Endpoint::Ca(0), frame(0x11, 64), None);
        assert!(f.step_until(1_000).is_none(), "not there yet");
        assert!(
            f.clock().now_ns() <= 1_000,
            "the clock went only as far as the switch"
        );
        assert!(f.step_until(u64::MAX).is_some());
        assert!(f.clock().now_ns() > 5_000);
        f.send(Endpoint::Ca(0), vec![0u8; 4], None);
        assert_eq!(f.stats().dropped[&Drop::Runt], 1);
    }
}
