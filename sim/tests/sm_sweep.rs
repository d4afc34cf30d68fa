//! The built-in subnet manager sweeping a fabric on the virtual clock: one switch (its
//! SMA inside the fabric), `n` CA ports, each a `device::port::Port` agent, joined by
//! real packets (LRH, BTH, DETH to QP0 on VL15, IBTA vol. 1 §14.2.1) that this harness
//! encodes and decodes with `IbPacket`.
//!
//! The harness plays each CA's end of directed routing itself, from the byte offsets
//! of IBTA vol. 1 §14.2.1.2 and the rules of §14.2.2 (the SMP arrives with hop pointer
//! = hop count; the CA writes ReturnPath[hop count] = its port and moves the hop
//! pointer on; its answer goes back with the pointer at the hop count), so the switch
//! and the subnet manager are checked against an independent endpoint.
//!
//! Figures (SMPs and virtual time per sweep) are printed; run with `--nocapture`.

use fabboot_sim::clock::Clock;
use fabboot_sim::device::port::{Port, state};
use fabboot_sim::fabric::{Drop, Endpoint, Fabric, FabricConfig, Loss};
use fabboot_sim::sm::sa::SaServer;
use fabboot_sim::sm::sweep::{ReplyError, SmConfig, SubnetManager, SweepIssue, Target};
use fabboot_sim::wire::{BthRepr, DethRepr, ExtHeaders, IbPacket, Lnh, LrhRepr, Opcode};

/// Time a CA's agent takes to answer an SMP (a model figure, like the switch SMA's).
const CA_SMA_NS: u64 = 1_000;
/// Give up on a run after this much virtual time.
const LIMIT_NS: u64 = 60_000_000_000;
/// The permissive LID.
const PERMISSIVE: u16 = 0xFFFF;

// SMP offsets (IBTA vol. 1 §14.2.1) and attribute offsets (§14.2.5).
const METHOD: usize = 3;
const STATUS: usize = 4;
const HOP_POINTER: usize = 6;
const HOP_COUNT: usize = 7;
const TID: usize = 8;
const ATTR_ID: usize = 16;
const ATTR_MOD: usize = 20;
const DATA: usize = 64;
const INITIAL_PATH: usize = 128;
const RETURN_PATH: usize = 192;

fn port_guid(ca: usize) -> u64 {
    0x0002_C903_0000_1001 + 0x100 * ca as u64
}

/// A packet to QP0 on VL15 carrying `mad` (an SMP travels as UD SEND Only, §14.2.1).
fn qp0_frame(dlid: u16, slid: u16, mad: &[u8]) -> Vec<u8> {
    packet(15, dlid, slid, 0, 0, mad)
}

fn packet(vl: u8, dlid: u16, slid: u16, dest_qp: u32, q_key: u32, payload: &[u8]) -> Vec<u8> {
    IbPacket {
        lrh: LrhRepr {
            vl,
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
            dest_qp,
            ack_req: false,
            psn: 0,
        },
        ext: ExtHeaders::Deth(DethRepr { q_key, src_qp: 0 }),
        payload: payload.to_vec(),
    }
    .encode()
    .expect("packet")
}

type Filter = Box<dyn FnMut(&[u8]) -> Vec<Vec<u8>>>;

/// The fabric, the CA agents and the subnet manager on one clock.
struct Net {
    clock: Clock,
    fabric: Fabric,
    ports: Vec<Port>,
    sm: SubnetManager,
    /// CA answers waiting for their agent's latency: (time, CA, frame).
    ca_out: Vec<(u64, usize, Vec<u8>)>,
    /// Port-change events the CA agents raised (CA index, in order).
    changed: Vec<usize>,
    /// Packets CAs received that were not SMP requests.
    ca_inbox: Vec<(usize, IbPacket)>,
    /// Packets the management port received that were not SMPs (SA traffic).
    sm_inbox: Vec<IbPacket>,
    /// SMP requests delivered to each CA.
    smps_to_ca: Vec<u64>,
    /// Take CA `.0`'s link down when its `.1`-th SMP arrives (that SMP is lost).
    link_down_on: Option<(usize, u64)>,
    /// SMPs the SM put on the fabric.
    sm_sent: u64,
    /// Answers the SM refused.
    rejected: Vec<ReplyError>,
    /// Rewrites what reaches the SM: each answer becomes the list the filter returns.
    filter: Option<Filter>,
}

impl Net {
    fn new(n: usize, cfg: SmConfig) -> Net {
        let clock = Clock::new();
        Net {
            fabric: Fabric::new(clock.clone(), n, FabricConfig::default()),
            clock,
            ports: (0..n).map(|i| Port::unconfigured(port_guid(i))).collect(),
            sm: SubnetManager::new(cfg),
            ca_out: Vec::new(),
            changed: Vec::new(),
            ca_inbox: Vec::new(),
            sm_inbox: Vec::new(),
            smps_to_ca: vec![0; n],
            link_down_on: None,
            sm_sent: 0,
            rejected: Vec::new(),
            filter: None,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// A cable goes down or up: the switch port and the CA's agent both see it.
    fn set_link(&mut self, ca: usize, up: bool) {
        self.fabric.set_link_up(ca, up);
        let p = &mut self.ports[ca];
        if up {
            p.state = state::INIT;
            p.phys_state = 5;
        } else {
            p.state = state::DOWN;
            p.phys_state = 2;
        }
    }

    fn send_sm(&mut self, out: Vec<fabboot_sim::sm::sweep::SmpOut>) {
        for o in out {
            self.sm_sent += 1;
            let f = qp0_frame(PERMISSIVE, PERMISSIVE, &o.mad);
            self.fabric.send(Endpoint::Sm, f, None);
        }
    }

    /// Does the next thing on the clock; false when nothing is due by `limit`.
    fn step(&mut self, limit: u64) -> bool {
        let t_fab = self.fabric.next_event_ns();
        let t_ca = self.ca_out.iter().map(|x| x.0).min();
        let t_sm = self.sm.next_deadline();
        let Some(next) = [t_fab, t_ca, t_sm].into_iter().flatten().min() else {
            return false;
        };
        if next > limit {
            return false;
        }
        if t_fab == Some(next) {
            if let Some((to, frame)) = self.fabric.step_until(next) {
                self.deliver(to, frame);
            }
        } else if t_ca == Some(next) {
            self.clock.advance_to_ns(next);
            let (due, rest): (Vec<_>, Vec<_>) = self.ca_out.drain(..).partition(|x| x.0 <= next);
            self.ca_out = rest;
            for (_, ca, f) in due {
                self.fabric.send(Endpoint::Ca(ca), f, None);
            }
        } else {
            self.clock.advance_to_ns(next);
            let out = self.sm.poll(next);
            self.send_sm(out);
        }
        true
    }

    fn deliver(&mut self, to: Endpoint, frame: Vec<u8>) {
        let pkt = IbPacket::decode(&frame).expect("the fabric delivers whole packets");
        let smp = pkt.bth.dest_qp == 0 && pkt.payload.len() == 256;
        match to {
            Endpoint::Sm if smp => {
                let answers = match self.filter.as_mut() {
                    Some(f) => f(&pkt.payload),
                    None => vec![pkt.payload.clone()],
                };
                for a in answers {
                    match self.sm.on_smp(self.now(), &a) {
                        Ok(out) => self.send_sm(out),
                        Err(e) => self.rejected.push(e),
                    }
                }
            }
            Endpoint::Sm => self.sm_inbox.push(pkt),
            Endpoint::Ca(i) if smp && pkt.payload[METHOD] & 0x80 == 0 => self.ca_smp(i, &pkt),
            Endpoint::Ca(i) => self.ca_inbox.push((i, pkt)),
        }
    }

    /// CA `i`'s agent takes an SMP request.
    fn ca_smp(&mut self, i: usize, pkt: &IbPacket) {
        self.smps_to_ca[i] += 1;
        if self.link_down_on == Some((i, self.smps_to_ca[i])) {
            self.set_link(i, false);
            return;
        }
        let mut mad = pkt.payload.clone();
        let (dlid, slid) = if mad[1] == 0x81 {
            // §14.2.2 at the last hop: arrives outbound with hop pointer = hop count.
            let (hp, hc) = (mad[HOP_POINTER], mad[HOP_COUNT]);
            assert_eq!(mad[STATUS] & 0x80, 0, "outbound");
            assert!(hc >= 1 && hp == hc, "hop pointer {hp} of {hc} at the CA");
            mad[RETURN_PATH + usize::from(hc)] = 1;
            mad[HOP_POINTER] = hc + 1;
            (PERMISSIVE, PERMISSIVE)
        } else {
            (pkt.lrh.slid, self.ports[i].lid)
        };
        let (mut r, changed) = self.ports[i].answer(&mad);
        if changed {
            self.changed.push(i);
        }
        if r[1] == 0x81 {
            // The answer leaves by ReturnPath[hop count], with the pointer there.
            let hc = r[HOP_COUNT];
            r[HOP_POINTER] = hc;
            assert_eq!(r[RETURN_PATH + usize::from(hc)], 1, "out of the CA's port");
            assert_eq!(r[STATUS] & 0x80, 0x80, "D set on the way back");
        }
        let f = qp0_frame(dlid, slid, &r);
        self.ca_out.push((self.now() + CA_SMA_NS, i, f));
    }

    fn run_until(&mut self, mut done: impl FnMut(&Net) -> bool) -> bool {
        let limit = self.now() + LIMIT_NS;
        while !done(self) {
            if !self.step(limit) {
                return done(self);
            }
        }
        true
    }

    /// A heavy sweep from now to its end; returns its virtual duration.
    fn sweep(&mut self) -> u64 {
        let start = self.now();
        let out = self.sm.start_sweep(start);
        self.send_sm(out);
        let heavy = self.sm.stats().heavy_sweeps;
        assert!(
            self.run_until(|n| n.sm.sweep_done() || n.sm.stats().heavy_sweeps != heavy),
            "the sweep ends"
        );
        self.now() - start
    }

    /// Runs until the fabric and the agents are quiet (the SM's timers may remain).
    fn settle(&mut self) {
        self.run_until(|n| n.fabric.next_event_ns().is_none() && n.ca_out.is_empty());
    }

    fn lids(&self) -> Vec<u16> {
        self.ports.iter().map(|p| p.lid).collect()
    }

    /// Every CA and every switch port ACTIVE; unique CA LIDs; the SM's LID everywhere.
    fn assert_configured(&self) {
        let sw = self.fabric.switch();
        let sm_lid = self.sm.sm_lid().expect("an SM LID");
        assert_eq!((sw.lid(), sw.sm_lid()), (sm_lid, sm_lid));
        for p in 0..=sw.num_ports() {
            assert_eq!(sw.port_state(p), Some(state::ACTIVE), "switch port {p}");
        }
        let mut lids = vec![sm_lid];
        for (i, p) in self.ports.iter().enumerate() {
            assert_eq!(p.state, state::ACTIVE, "CA {i}");
            assert_eq!(
                (p.sm_lid, p.sm_sl, p.subnet_timeout),
                (sm_lid, 0, 18),
                "CA {i}"
            );
            assert!(p.lid != 0 && p.lid < 0xC000, "CA {i} LID {:#x}", p.lid);
            assert!(!lids.contains(&p.lid), "CA {i} LID {:#x} taken", p.lid);
            lids.push(p.lid);
        }
        let mut entries = self.sm.ports();
        entries.sort_by_key(|e| e.guid);
        let want: Vec<(u64, u16)> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| (port_guid(i), p.lid))
            .collect();
        let got: Vec<(u64, u16)> = entries.iter().map(|e| (e.guid, e.lid)).collect();
        assert_eq!(got, want, "what the SA is given");
    }

    /// CA `from` sends a UD packet to `dlid` on QP `qp` (VL0).
    fn ud(&mut self, from: usize, dlid: u16, qp: u32, payload: &[u8]) {
        let slid = self.ports[from].lid;
        let f = packet(0, dlid, slid, qp, 0x8001_0000, payload);
        self.fabric.send(Endpoint::Ca(from), f, None);
    }
}

/// SMPs a first sweep of `n` CAs takes: SubnGet NodeInfo and SwitchInfo of the switch
/// (2), PortInfo of switch ports 0..=n (n + 1), NodeInfo and PortInfo of each CA (2n),
/// SubnSet PortInfo with the LIDs on switch port 0 and each CA (n + 1), one LFT block
/// (LIDs below 64) and SwitchInfo (2), then ARMED and ACTIVE on switch ports 0..=n
/// and on each CA (2 × (2n + 1)).
fn first_sweep_smps(n: u64) -> u64 {
    2 + (n + 1) + 2 * n + (n + 1) + 2 + 2 * (2 * n + 1)
}

#[test]
fn a_sweep_activates_every_port_with_unique_lids() {
    for n in [2usize, 8] {
        let mut net = Net::new(n, SmConfig::default());
        let elapsed = net.sweep();
        let r = net.sm.last_report().unwrap().clone();
        assert!(!r.failed && r.issues.is_empty(), "{r:?}");
        net.assert_configured();
        assert_eq!(net.sm.sm_lid(), Some(1), "the switch and SM LID first");
        assert_eq!(r.smps, first_sweep_smps(n as u64));
        assert_eq!((r.smps, r.replies, r.retries), (net.sm_sent, r.smps, 0));
        assert_eq!(r.lid_changes.len(), n, "every CA had LID 0");
        assert!(r.lid_changes.iter().all(|c| c.old == 0));
        // Each agent raises a port-change event for its LID, ARMED and ACTIVE.
        let mut events = net.changed.clone();
        events.sort();
        assert_eq!(events, (0..n).flat_map(|i| [i; 3]).collect::<Vec<_>>());
        assert_eq!(net.fabric.switch().linear_fdb_top(), 1 + n as u16);
        println!(
            "first sweep, {n} CAs: {} SMPs, {} ns virtual ({:.1} µs)",
            r.smps,
            elapsed,
            elapsed as f64 / 1000.0
        );

        // The same fabric swept again the same way takes the same virtual time.
        let mut twin = Net::new(n, SmConfig::default());
        assert_eq!(twin.sweep(), elapsed, "deterministic");

        // A second sweep finds nothing to change: discovery only.
        net.changed.clear();
        let lids = net.lids();
        let again = net.sweep();
        let r2 = net.sm.last_report().unwrap();
        assert_eq!(r2.smps, 3 * n as u64 + 3);
        assert!(r2.lid_changes.is_empty() && r2.issues.is_empty());
        assert_eq!(net.lids(), lids, "LIDs are stable by GUID");
        assert!(net.changed.is_empty());
        net.assert_configured();
        println!(
            "steady-state sweep, {n} CAs: {} SMPs, {again} ns virtual",
            r2.smps
        );
    }
}

#[test]
fn eight_cas_take_longer_than_two() {
    let mut two = Net::new(2, SmConfig::default());
    let mut eight = Net::new(8, SmConfig::default());
    let (t2, t8) = (two.sweep(), eight.sweep());
    assert!(t8 > t2, "{t8} ns for 8 CAs, {t2} ns for 2");
    // Each SMP crosses the switch twice and waits for an agent: with four SMPs on the
    // wire at once, a sweep can be no shorter than its SMPs / 4 round trips of at
    // least the switch latency and an agent's latency.
    let floor = |n: u64| first_sweep_smps(n) / 4 * (600 + CA_SMA_NS);
    assert!(t2 >= floor(2) && t8 >= floor(8), "{t2} {t8}");
    assert!(
        t8 < 1_000_000,
        "well under a millisecond of virtual time: {t8}"
    );
}

#[test]
fn the_switch_forwards_by_the_table_the_sm_programmed() {
    let mut net = Net::new(3, SmConfig::default());
    net.sweep();
    let lids = net.lids();
    for (i, &lid) in lids.iter().enumerate() {
        assert_eq!(net.fabric.switch().out_port(lid), Some(Fabric::port_of(i)));
    }
    // CA 0 to CA 2, and CA 1 to CA 0.
    net.ud(0, lids[2], 0x10, b"to two");
    net.ud(1, lids[0], 0x11, b"to zero");
    net.settle();
    let got: Vec<(usize, u16, Vec<u8>)> = net
        .ca_inbox
        .iter()
        .map(|(i, p)| (*i, p.lrh.slid, p.payload.clone()))
        .collect();
    assert!(got.contains(&(2, lids[0], b"to two".to_vec())), "{got:?}");
    assert!(got.contains(&(0, lids[1], b"to zero".to_vec())), "{got:?}");
    // To the SM's LID on QP1: the management port, where the SA lives.
    let sm_lid = net.sm.sm_lid().unwrap();
    net.ud(2, sm_lid, 1, b"sa query");
    net.settle();
    assert_eq!(net.sm_inbox.len(), 1);
    assert_eq!(net.sm_inbox[0].lrh.slid, lids[2]);
    // A LID the SM did not assign goes nowhere.
    net.ud(0, 0x40, 0x10, b"lost");
    net.settle();
    assert_eq!(net.fabric.stats().dropped.get(&Drop::NoRoute), Some(&1));
}

#[test]
fn a_lid_routed_smp_from_a_ca_is_answered_by_the_switch_sma() {
    let mut net = Net::new(3, SmConfig::default());
    net.sweep();
    let sm_lid = net.sm.sm_lid().unwrap();
    let my_lid = net.ports[1].lid;
    // SubnGet(NodeInfo) and SubnGet(PortInfo, port 0), LID-routed (class 0x01).
    for (tid, attr, modifier) in [(0x77u64, 0x0011u16, 0u32), (0x78, 0x0015, 0)] {
        let mut mad = [0u8; 256];
        mad[..4].copy_from_slice(&[1, 0x01, 1, 0x01]);
        mad[TID..TID + 8].copy_from_slice(&tid.to_be_bytes());
        mad[ATTR_ID..ATTR_ID + 2].copy_from_slice(&attr.to_be_bytes());
        mad[ATTR_MOD..ATTR_MOD + 4].copy_from_slice(&modifier.to_be_bytes());
        let f = qp0_frame(sm_lid, my_lid, &mad);
        net.fabric.send(Endpoint::Ca(1), f, None);
    }
    net.settle();
    assert_eq!(net.ca_inbox.len(), 2, "{:?}", net.ca_inbox);
    for (i, pkt) in &net.ca_inbox {
        assert_eq!(*i, 1);
        assert_eq!(
            (pkt.lrh.dlid, pkt.lrh.slid, pkt.lrh.vl),
            (my_lid, sm_lid, 15)
        );
        let m = &pkt.payload;
        assert_eq!(
            (m[1], m[METHOD], m[STATUS], m[STATUS + 1]),
            (0x01, 0x81, 0, 0)
        );
        let d = &m[DATA..DATA + 64];
        match u16::from_be_bytes([m[ATTR_ID], m[ATTR_ID + 1]]) {
            0x0011 => {
                assert_eq!((d[2], d[3]), (2, 3), "a switch with 3 ports");
                assert_eq!(d[36], Fabric::port_of(1), "LocalPortNum: where it came in");
                assert_eq!(&d[12..20], &net.fabric.switch().node_guid().to_be_bytes());
            }
            0x0015 => {
                assert_eq!(u16::from_be_bytes([d[16], d[17]]), sm_lid, "port 0's LID");
                assert_eq!(u16::from_be_bytes([d[18], d[19]]), sm_lid, "SM LID");
                assert_eq!(d[32] & 0x0F, state::ACTIVE);
            }
            other => panic!("attribute {other:#x}"),
        }
    }
    assert!(net.fabric.switch().counters().answered > 0);
}

#[test]
fn a_link_down_during_the_sweep_is_skipped_then_picked_up_by_a_light_sweep() {
    let n = 3;
    let mut net = Net::new(n, SmConfig::default());
    // CA 1 (switch port 2) loses its link when its second SMP, SubnGet(PortInfo),
    // arrives.
    net.link_down_on = Some((1, 2));
    let elapsed = net.sweep();
    let r = net.sm.last_report().unwrap().clone();
    assert!(!r.failed);
    assert_eq!(
        r.issues,
        [SweepIssue::GaveUp {
            target: Target::Ca(2),
            attr_id: 0x0015,
            tries: 4
        }]
    );
    assert_eq!(r.retries, 3);
    assert!(elapsed >= 4 * 200_000_000, "four timeouts: {elapsed}");
    assert_eq!(net.ports[1].state, state::DOWN);
    assert_eq!(net.fabric.switch().port_state(2), Some(state::DOWN));
    for i in [0, 2] {
        assert_eq!(net.ports[i].state, state::ACTIVE, "CA {i}");
    }
    let guids: Vec<u64> = net.sm.ports().iter().map(|e| e.guid).collect();
    assert_eq!(guids, [port_guid(0), port_guid(2)]);
    println!(
        "sweep with a link lost mid-way: {} SMPs, {elapsed} ns",
        r.smps
    );

    // The link comes back; the next light sweep sees PortStateChange and sweeps.
    net.link_down_on = None;
    net.set_link(1, true);
    let up_at = net.now();
    assert!(net.run_until(|n| n.sm.reports().len() == 2 && n.sm.sweep_done()));
    let r = net.sm.last_report().unwrap();
    assert!(r.issues.is_empty(), "{r:?}");
    assert!(net.sm.stats().light_sweeps >= 1);
    assert!(r.started_ns >= up_at && r.started_ns - up_at <= 10_000_000_000 + 10_000);
    net.assert_configured();

    // A link already down when a sweep starts is skipped, not retried.
    let mut net = Net::new(n, SmConfig::default());
    net.set_link(1, false);
    net.sweep();
    let r = net.sm.last_report().unwrap();
    assert_eq!((r.ports_down.as_slice(), r.retries), (&[2u8][..], 0));
    assert!(r.issues.is_empty());
    // One more switch PortInfo, and the SubnSet(SwitchInfo) that clears the
    // PortStateChange the link's fall set.
    assert_eq!(r.smps, first_sweep_smps(2) + 2);
    assert!(!net.fabric.switch().port_state_change());
    assert_eq!(net.smps_to_ca[1], 0);
}

#[test]
fn relabel_moves_every_ca_and_each_agent_sees_its_lid_change() {
    let n = 4;
    let mut net = Net::new(n, SmConfig::default());
    net.sweep();
    let before = net.lids();
    net.changed.clear();
    net.sm.relabel(100).unwrap();
    net.sweep();
    let r = net.sm.last_report().unwrap().clone();
    assert!(r.issues.is_empty(), "{r:?}");
    let after = net.lids();
    let mut moved: Vec<(u8, u64, u16, u16)> = r
        .lid_changes
        .iter()
        .map(|c| (c.port, c.guid, c.old, c.new))
        .collect();
    moved.sort();
    let want: Vec<(u8, u64, u16, u16)> = (0..n)
        .map(|i| (Fabric::port_of(i), port_guid(i), before[i], before[i] + 100))
        .collect();
    assert_eq!(moved, want);
    assert_eq!(after.iter().map(|l| l - 100).collect::<Vec<_>>(), before);
    assert_eq!(net.changed, [0, 1, 2, 3], "one port-change event per CA");
    net.assert_configured();
    // Discovery, one SubnSet(PortInfo) per CA, blocks 0 (old LIDs cleared) and 1
    // (the new ones), and LinearFDBTop.
    assert_eq!(r.smps, 2 + (n as u64 + 1) + 2 * n as u64 + n as u64 + 3);
    println!("relabel sweep, {n} CAs: {} SMPs", r.smps);
    // Traffic follows the new LIDs, and the old ones are gone from the table.
    net.ud(0, after[3], 0x10, b"new");
    net.ud(0, before[3], 0x10, b"old");
    net.settle();
    assert_eq!(net.ca_inbox.len(), 1);
    assert_eq!(net.ca_inbox[0].0, 3);
    assert_eq!(net.fabric.stats().dropped.get(&Drop::NoRoute), Some(&1));
    // The SA answers with the new LIDs: a PathRecord Get (srp-cm-sa-dm.md §1.5).
    let mut sa = SaServer::new(net.sm.ports());
    let mut q = [0u8; 256];
    q[..4].copy_from_slice(&[1, 0x03, 2, 0x01]);
    q[16..18].copy_from_slice(&0x0035u16.to_be_bytes());
    q[48..56].copy_from_slice(&(1u64 << 2 | 1 << 3).to_be_bytes());
    q[56 + 8..56 + 16].copy_from_slice(&0xFE80_0000_0000_0000u64.to_be_bytes());
    q[56 + 16..56 + 24].copy_from_slice(&port_guid(3).to_be_bytes());
    q[56 + 24..56 + 32].copy_from_slice(&0xFE80_0000_0000_0000u64.to_be_bytes());
    q[56 + 32..56 + 40].copy_from_slice(&port_guid(0).to_be_bytes());
    let a = sa.handle(&q).unwrap();
    assert_eq!(u16::from_be_bytes([a[4], a[5]]), 0);
    assert_eq!(
        u16::from_be_bytes([a[56 + 40], a[56 + 41]]),
        after[3],
        "DLID"
    );
    assert_eq!(
        u16::from_be_bytes([a[56 + 42], a[56 + 43]]),
        after[0],
        "SLID"
    );
}

#[test]
fn a_dropped_smp_is_sent_again() {
    let mut net = Net::new(2, SmConfig::default());
    // Every fifth frame on CA 0's cable, either way, is lost.
    net.fabric.set_loss(0, Loss::EveryNth { n: 5, count: 0 });
    let elapsed = net.sweep();
    let r = net.sm.last_report().unwrap().clone();
    assert!(r.issues.is_empty(), "{r:?}");
    let lost = net.fabric.stats().dropped[&Drop::Injected];
    assert!(lost >= 2, "{lost}");
    assert_eq!(r.retries, lost, "one retransmission per lost frame");
    assert_eq!(r.smps, first_sweep_smps(2) + lost);
    assert!(elapsed >= lost * 200_000_000);
    net.assert_configured();
    println!("sweep with {lost} SMPs lost: {} SMPs, {elapsed} ns", r.smps);
}

/// A tiny deterministic generator for the hostile tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn hostile_answers_are_refused_or_recorded_and_never_panic() {
    let mut net = Net::new(3, SmConfig::default());
    // CA 1's first answer (it came back out of switch port 2) arrives four ways.
    let mut first = true;
    net.filter = Some(Box::new(move |mad: &[u8]| {
        if !(first && mad[HOP_COUNT] == 1 && mad[INITIAL_PATH + 1] == 2) {
            return vec![mad.to_vec()];
        }
        first = false;
        let short = mad[..100].to_vec();
        let mut wrong_tid = mad.to_vec();
        wrong_tid[TID + 7] ^= 0x5A;
        let mut bad_status = mad.to_vec();
        bad_status[STATUS + 1] = 0x0C;
        vec![short, wrong_tid, bad_status, mad.to_vec()]
    }));
    net.sweep();
    assert!(matches!(net.rejected[0], ReplyError::Smp(_)));
    assert!(matches!(net.rejected[1], ReplyError::UnknownTid(_)));
    assert!(
        matches!(net.rejected[2], ReplyError::UnknownTid(_)),
        "the genuine answer came after the bad one had ended the step"
    );
    let r = net.sm.last_report().unwrap().clone();
    assert!(!r.failed);
    assert_eq!(
        r.issues,
        [SweepIssue::Status {
            target: Target::Ca(2),
            attr_id: 0x0011,
            status: 0x000C
        }]
    );
    assert_eq!(net.ports[1].state, state::INIT, "left alone this sweep");
    assert_eq!(net.sm.ports().len(), 2);
    // The next sweep, with honest answers, takes it in.
    net.filter = None;
    net.sweep();
    net.assert_configured();

    // Answers mangled at random, hundreds of times: the manager refuses or records
    // them and never panics; an honest sweep afterwards configures everything.
    let mut net = Net::new(3, SmConfig::default());
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    net.filter = Some(Box::new(move |mad: &[u8]| {
        let mut m = mad.to_vec();
        match rng.next() % 4 {
            0 => {}
            1 => {
                for _ in 0..4 {
                    let at = (rng.next() % 256) as usize;
                    m[at] = rng.next() as u8;
                }
            }
            2 => m.truncate((rng.next() % 256) as usize),
            _ => {
                let at = DATA + (rng.next() % 64) as usize;
                m[at] ^= 0xFF;
            }
        }
        vec![m]
    }));
    for _ in 0..20 {
        let now = net.now();
        let out = net.sm.start_sweep(now);
        net.send_sm(out);
        net.run_until(|n| n.sm.sweep_done() || n.sm.reports().len() > 20);
        net.settle();
    }
    assert!(!net.rejected.is_empty());
    net.filter = None;
    net.sweep();
    net.assert_configured();

    // Frames that are not SMPs at all, at the switch: dropped there, nothing else.
    let mut rng = XorShift(7);
    for len in 0..200usize {
        let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 4 {
            f[2] = 0xFF;
            f[3] = 0xFF;
        }
        net.fabric.send(Endpoint::Ca(len % 3), f, None);
    }
    net.settle();
    assert!(net.fabric.stats().dropped[&Drop::BadSmp] > 0);
}
