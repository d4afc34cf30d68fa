//! The fabric: channel-adapter ports, links and one switch with LID routing, on the
//! virtual clock.
//!
//! CA `i` is cabled to switch port `i + 1`; switch port 0 is its management port,
//! where the switch's SMA ([`switch`]) and the built-in subnet manager and SA live (as
//! on a managed switch). Frames are whole encoded packets starting with the LRH (IBTA
//! vol. 1 §7.7).
//!
//! Forwarding: the switch forwards by the linear forwarding table its SMA holds, which
//! a subnet manager programs with SubnSet(LinearForwardingTable) or a test programs
//! directly with [`Fabric::route`]. SMPs (QP0, VL15) are read further: a
//! directed-route SMP (permissive DLID) is processed hop by hop as IBTA vol. 1 §14.2.2
//! says, passed on along its initial or return path or answered by the SMA at its end;
//! a LID-routed SMP request for the switch's own LID is answered by the SMA. Anything
//! else for the management port goes to [`Endpoint::Sm`].
//!
//! Timing: a frame entering a link waits for the link to be free in that direction,
//! takes `bytes × 8 / rate` to serialise, then the cable delay; a switch forwards after
//! its latency (default 4x EDR links and a 600 ns switch). Links can go down (frames
//! in flight and frames offered are lost), drop frames (every n-th, or with a seeded
//! probability) and add delay.

pub mod link;
pub mod smp;
pub mod switch;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::clock::Clock;
use crate::wire::{IbPacket, Opcode};
use link::Link;
pub use link::{LinkSpeed, Loss};
use switch::{SmpAction, Switch};

/// The LRH's permissive DLID: directed-route SMPs (IBTA vol. 1 §14.2.2).
pub const PERMISSIVE_LID: u16 = 0xFFFF;
/// The switch's NodeGUID unless a test sets another (Mellanox OUI 0x0002C9).
pub const SWITCH_GUID: u64 = 0x0002_C902_0000_0100;
/// The virtual lane subnet management packets travel on (IBTA vol. 1 §7.6, VL15).
pub const VL_SMP: u8 = 15;

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
    /// A directed-route SMP the switch could not process, or an SMP the switch's SMA
    /// would not or could not answer (see [`switch::Switch::counters`]).
    BadSmp,
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
    /// The switch: its SMA and the linear forwarding table the fabric forwards by.
    switch: Switch,
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
    /// A switch with `cas` channel adapters cabled to ports 1..=`cas` (at most 254), its
    /// ports in INIT and its forwarding table empty.
    pub fn new(clock: Clock, cas: usize, cfg: FabricConfig) -> Fabric {
        let links = (0..cas)
            .map(|_| Link::new(cfg.speed, cfg.width, cfg.cable_ns))
            .collect();
        let ports = u8::try_from(cas).unwrap_or(u8::MAX);
        Fabric {
            clock,
            cfg,
            links,
            switch: Switch::new(ports, SWITCH_GUID, cfg.speed, cfg.width),
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

    /// Programs the switch directly, without a subnet manager: frames for `lid` leave
    /// through `port` (0: management). Writes the LFT entry and raises LinearFDBTop to
    /// cover it; LIDs outside the unicast range (0xC000 and up) are ignored.
    pub fn route(&mut self, lid: u16, port: u8) {
        self.switch.program(lid, port);
    }

    /// Forgets the route to `lid` (its LFT entry becomes "no port"), as a subnet
    /// manager does for a LID it moved elsewhere.
    pub fn unroute(&mut self, lid: u16) {
        self.switch.program(lid, switch::LFT_NO_PORT);
    }

    /// Forgets every route (empties the LFT).
    pub fn clear_routes(&mut self) {
        self.switch.clear_lft();
    }

    /// The switch: its SMA's state and its forwarding table.
    pub fn switch(&self) -> &Switch {
        &self.switch
    }

    /// The switch, to change (for example its SMA latency).
    pub fn switch_mut(&mut self) -> &mut Switch {
        &mut self.switch
    }

    /// The switch port CA `ca` is cabled to.
    pub fn port_of(ca: usize) -> u8 {
        (ca + 1) as u8
    }

    /// Brings CA `ca`'s link up or down. Frames on a link that goes down are lost. The
    /// switch port goes DOWN, or back to INIT, and sets PortStateChange.
    pub fn set_link_up(&mut self, ca: usize, up: bool) {
        if let Some(l) = self.links.get_mut(ca) {
            l.up = up;
            if let Ok(port) = u8::try_from(ca + 1) {
                self.switch.set_link(port, up);
            }
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

    /// `from` sends a frame now. With `dr_port` the subnet manager puts the frame
    /// straight on that switch port, unread; otherwise the switch decides: by DLID,
    /// or, for a directed-route SMP (permissive DLID), by the path in the SMP.
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
        if dlid == PERMISSIVE_LID {
            match smp_packet(&frame) {
                Some(pkt) => self.switch_smp(at, in_port, pkt),
                None => self.lose(Drop::BadSmp),
            }
            return;
        }
        match self.switch.out_port(dlid) {
            Some(0) => match smp_packet(&frame) {
                // A LID-routed SMP for the switch's own LID: its SMA's.
                Some(pkt) if pkt.payload.get(1) == Some(&switch::CLASS_SMP_LID) => {
                    self.switch_smp(at, in_port, pkt)
                }
                _ => self.push(
                    at + self.cfg.switch_latency_ns,
                    Hop::Forward { port: 0 },
                    frame,
                ),
            },
            Some(port) => self.push(
                at + self.cfg.switch_latency_ns,
                Hop::Forward { port },
                frame,
            ),
            None => self.lose(Drop::NoRoute),
        }
    }

    /// An SMP at the switch: the SMA passes it on, answers it, or drops it. Answers
    /// leave after the SMA's latency on top of the switch's.
    fn switch_smp(&mut self, at: u64, in_port: u8, pkt: IbPacket) {
        let action = self.switch.receive_smp(in_port, pkt.lrh.slid, &pkt.payload);
        let (port, out, delay) = match action {
            Ok(SmpAction::Forward { port, mad }) => (
                port,
                IbPacket {
                    payload: mad.to_vec(),
                    ..pkt
                },
                self.cfg.switch_latency_ns,
            ),
            Ok(SmpAction::Answer {
                port,
                dlid,
                slid,
                mad,
            }) => {
                let mut lrh = pkt.lrh;
                lrh.dlid = dlid;
                lrh.slid = slid;
                lrh.vl = VL_SMP;
                (
                    port,
                    IbPacket {
                        lrh,
                        payload: mad.to_vec(),
                        ..pkt
                    },
                    self.cfg.switch_latency_ns + self.switch.sma_latency_ns,
                )
            }
            Err(_) => {
                self.lose(Drop::BadSmp);
                return;
            }
        };
        match out.encode() {
            Ok(frame) => self.push(at + delay, Hop::Forward { port }, frame),
            Err(_) => self.lose(Drop::BadSmp),
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

/// The packet, if `frame` is a well-formed SMP packet: UD SEND Only to QP0 on VL15
/// with a 256-byte MAD (IBTA vol. 1 §14.2.1; CRCs checked).
fn smp_packet(frame: &[u8]) -> Option<IbPacket> {
    let pkt = IbPacket::decode(frame).ok()?;
    let smp = pkt.bth.opcode == Opcode::UD_SEND_ONLY
        && pkt.bth.dest_qp == 0
        && pkt.lrh.vl == VL_SMP
        && pkt.payload.len() == switch::SmpRepr::LEN;
    smp.then_some(pkt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{BthRepr, DethRepr, ExtHeaders, Lnh, LrhRepr};
    use switch::{SmpRepr, attr, method};

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

    /// A QP0 packet on VL15 carrying `smp`.
    fn smp_frame(dlid: u16, slid: u16, smp: &SmpRepr) -> Vec<u8> {
        IbPacket {
            lrh: LrhRepr {
                vl: 15,
                lver: 0,
                sl: 0,
                lnh: Lnh::Local,
                dlid,
                pkt_len: 0,
                slid,
            },
            grh: None,
            bth: BthRepr {
                opcode: Opcode::UD_SEND_ONLY,
                se: false,
                mig_req: false,
                pad_cnt: 0,
                tver: 0,
                p_key: 0xFFFF,
                dest_qp: 0,
                ack_req: false,
                psn: 0,
            },
            ext: ExtHeaders::Deth(DethRepr {
                q_key: 0,
                src_qp: 0,
            }),
            payload: smp.to_bytes().to_vec(),
        }
        .encode()
        .unwrap()
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
        // A directed-route SMP from the SM with path [2] reaches CA 1 (switch port 2).
        let q =
            SmpRepr::directed_request(method::GET, 1, attr::NODE_INFO, 0, &[2], [0; 64]).unwrap();
        f.send(
            Endpoint::Sm,
            smp_frame(PERMISSIVE_LID, PERMISSIVE_LID, &q),
            None,
        );
        let (to, got) = f.step_until(u64::MAX).unwrap();
        assert_eq!(to, Endpoint::Ca(1));
        let mut at_ca = SmpRepr::parse(&IbPacket::decode(&got).unwrap().payload).unwrap();
        assert_eq!(at_ca.hop_pointer, 1);
        // The CA's reply, turned around as §14.2.2 says, reaches the SM.
        at_ca.dr_receive(1, false).unwrap();
        at_ca.method = method::GET_RESP;
        at_ca.dr_turn_around().unwrap();
        f.send(
            Endpoint::Ca(1),
            smp_frame(PERMISSIVE_LID, PERMISSIVE_LID, &at_ca),
            None,
        );
        assert_eq!(
            f.step_until(u64::MAX).map(|d| d.0),
            Some(Endpoint::Sm),
            "DR replies reach the SM"
        );
        // Anything else with the permissive DLID is not an SMP and goes nowhere.
        f.send(Endpoint::Ca(1), frame(PERMISSIVE_LID, 64), None);
        assert!(f.step_until(u64::MAX).is_none());
        assert_eq!(f.stats().dropped[&Drop::BadSmp], 1);
    }

    #[test]
    fn the_switch_sma_answers_the_sm_and_a_lid_routed_ca() {
        let mut f = fabric(2);
        let q =
            SmpRepr::directed_request(method::GET, 3, attr::NODE_INFO, 0, &[], [0; 64]).unwrap();
        f.send(
            Endpoint::Sm,
            smp_frame(PERMISSIVE_LID, PERMISSIVE_LID, &q),
            None,
        );
        let (to, got) = f.step_until(u64::MAX).unwrap();
        assert_eq!(to, Endpoint::Sm);
        assert_eq!(f.clock().now_ns(), 600 + 1_000, "switch and SMA latency");
        let a = SmpRepr::parse(&IbPacket::decode(&got).unwrap().payload).unwrap();
        assert_eq!((a.method, a.data[2], a.data[3]), (0x81, 2, 2));
        // LID 1 is the management port (see `fabric`); CA 0 (LID 0x10) asks it.
        let q = SmpRepr::lid_request(method::GET, 4, attr::NODE_INFO, 0, [0; 64]);
        f.send(Endpoint::Ca(0), smp_frame(1, 0x10, &q), None);
        let (to, got) = f.step_until(u64::MAX).unwrap();
        assert_eq!(to, Endpoint::Ca(0));
        let pkt = IbPacket::decode(&got).unwrap();
        assert_eq!((pkt.lrh.dlid, pkt.lrh.vl), (0x10, 15));
        assert_eq!(pkt.payload[64 + 36], 1, "came in on port 1");
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
