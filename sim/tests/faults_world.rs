//! The fault primitives of the world (issue 7's campaign injects them at random): a
//! link flap, a target reboot, a LID change, an SA BUSY period, a fatal QP error, and
//! the target's own stale-connection reject, DREQ and SRP_T_LOGOUT. Each is observed
//! at the model level with the fixture host of `world::probe`: port states and
//! port-change events, LIDs before and after, SA answers, channels, CQEs. Under the
//! built-in subnet manager all of them; under OpenSM on ibsim (required: Debian
//! `opensm`, `ibsim-utils`) the link flap, the reboot, the SA BUSY and the LID change.

mod common;

use std::rc::Rc;

use common::*;
use fabboot_hca::wqe::{Completion, CqeOpcode};
use fabboot_sim::clock::Clock;
use fabboot_sim::device::Mlx5Function;
use fabboot_sim::device::connected::Injected;
use fabboot_sim::device::port::{phys, state};
use fabboot_sim::fabric::FabricConfig;
use fabboot_sim::memory::HostMemory;
use fabboot_sim::sm::sweep::SmConfig;
use fabboot_sim::world::{FaultCounts, Manager, Node, World};

/// The built-in manager's light sweep every 20 ms (OpenSM's default is 10 s; the
/// campaign chooses its own), so a relinked port is active again within tens of ms.
fn manager() -> Manager {
    manager_sweeping_every(20 * MS)
}

fn manager_sweeping_every(interval_ns: u64) -> Manager {
    Manager::new(SmConfig {
        sweep_interval_ns: interval_ns,
        ..SmConfig::default()
    })
}

struct Rig {
    clock: Clock,
    memory: HostMemory,
    dev: Rc<Mlx5Function>,
    _image: TempImage,
}

fn rig() -> (Rig, World) {
    rig_with(manager())
}

fn rig_with(manager: Manager) -> (Rig, World) {
    let clock = Clock::new();
    let memory = host_memory();
    let dev = function(&clock, &memory);
    let image = TempImage::new();
    let world = World::new(
        clock.clone(),
        FabricConfig::default(),
        nodes(&dev, target_node(&image)),
        manager,
    );
    let r = Rig {
        clock,
        memory,
        dev,
        _image: image,
    };
    (r, world)
}

fn opensm_rig() -> (Rig, World) {
    let clock = Clock::new();
    let memory = host_memory();
    let dev = function(&clock, &memory);
    let image = TempImage::new();
    let world = World::with_opensm(
        clock.clone(),
        FabricConfig::default(),
        nodes(&dev, target_node(&image)),
    )
    .unwrap_or_else(|e| panic!("ibsim and OpenSM (Debian ibsim-utils, opensm) must run: {e}"));
    let r = Rig {
        clock,
        memory,
        dev,
        _image: image,
    };
    (r, world)
}

/// Runs until the host's and the target's ports are ACTIVE (and, built-in, the sweep
/// is done).
fn settle(world: &mut World, host: &Host, limit_ns: u64) {
    let up = world.run_while(limit_ns, |w| {
        host.active()
            && w.target(1).is_some_and(|t| t.port.state == state::ACTIVE)
            && (w.bridge().is_some() || w.manager().sm.sweep_done())
    });
    assert!(up, "both ports ACTIVE");
}

/// The port-change events (type, sub-type) on the host's EQ since the last call.
fn events(host: &mut Host) -> Vec<(u8, u8)> {
    let mut got = Vec::new();
    while let Some(e) = host.q.eq.poll(&host.dma).unwrap() {
        got.push((e.kind, e.sub_type));
    }
    host.q.eq.update_ci(&host.hal);
    got
}

fn port(host: &Host) -> (u8, u8, u16) {
    let fw = host.dev.firmware();
    (fw.port.state, fw.port.phys_state, fw.port.lid)
}

fn target_gid(world: &mut World) -> [u8; 16] {
    let t = world.target(1).unwrap();
    gid(t.port.gid_prefix, t.port.port_guid)
}

/// A PathRecord from the host to the target: (status, DLID, SLID).
fn path(world: &mut World, host: &mut Host, tid: u64) -> (u16, u16, u16) {
    let q = path_query(tid, host.gid(), target_gid(world));
    let sm = host.sm_lid();
    let a = mad_round_trip(world, host, sm, &q, 2_000 * MS).expect("an SA answer");
    assert_eq!(
        (a[1], be64(&a, 8)),
        (0x03, tid),
        "an SA answer to this query"
    );
    (be16(&a, 4), be16(&a[56..], 40), be16(&a[56..], 42))
}

/// [`path`], asked again every 100 ms until answered (at most 20 times); the answer
/// and the number of tries.
fn path_retrying(world: &mut World, host: &mut Host, tid: u64) -> ((u16, u16, u16), u32) {
    let q = path_query(tid, host.gid(), target_gid(world));
    let sm = host.sm_lid();
    // One receive for all tries: a late answer to an earlier try is as good, and no
    // receive is left posted for the next exchange to trip over.
    let mut slots = vec![host.post_mad_recv()];
    for tries in 1..=20 {
        host.send_mad(sm, &q);
        let mut got = None;
        world.run_while(100 * MS, |_| {
            got = got.or(host.poll_mads(&mut slots).into_iter().next());
            got.is_some()
        });
        if let Some(a) = got {
            assert_eq!((a[1], be64(&a, 8)), (0x03, tid));
            return ((be16(&a, 4), be16(&a[56..], 40), be16(&a[56..], 42)), tries);
        }
    }
    panic!("no SA answer in 20 tries");
}

#[test]
fn a_host_link_flap_takes_its_port_down_and_the_light_sweep_activates_it_again() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 2_000 * MS);
    events(&mut host);
    let lid = host.lid();
    let guid = r.dev.firmware().port.port_guid;

    world.set_link(0, false).unwrap();
    assert!(!world.fabric().link_up(0));
    assert_eq!(port(&host), (state::DOWN, phys::POLLING, lid), "LID kept");
    assert_eq!(events(&mut host), [(0x09, 1)], "port down");
    world.set_link(0, false).unwrap();
    assert_eq!(events(&mut host), [], "already down: nothing");
    // The next light sweep sees the switch's PortStateChange; the heavy sweep finds
    // the link down and the SA forgets the port.
    world.run_for(60 * MS);
    let report = world.manager().sm.last_report().cloned().unwrap();
    assert_eq!(report.ports_down, [1], "{report:?}");
    assert!(world.manager().sa.ports.iter().all(|p| p.guid != guid));

    world.set_link(0, true).unwrap();
    assert_eq!(port(&host), (state::INIT, phys::LINK_UP, lid));
    assert_eq!(events(&mut host), [(0x09, 5)], "port initialized");
    let t0 = r.clock.now_ns();
    assert!(
        world.run_while(500 * MS, |_| host.active()),
        "SM activates it"
    );
    let took = r.clock.now_ns() - t0;
    assert!(took <= 25 * MS, "within a sweep interval: {took} ns");
    assert_eq!(host.lid(), lid, "the same LID back (stable by GUID)");
    assert_eq!(events(&mut host), [(0x09, 4)], "port active");
    world.run_for(5 * MS);
    assert_eq!(
        path(&mut world, &mut host, 0x11).0,
        0,
        "the SA knows it again"
    );
    assert_eq!(
        world.fault_counts(),
        FaultCounts {
            link_downs: 1,
            link_ups: 1,
            ..FaultCounts::default()
        }
    );
    println!("host link flap: port active {took} ns after the link came back");
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn a_target_link_flap_drops_it_from_the_sa_and_fails_rc_retries_until_it_is_back() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 2_000 * MS);
    login(&mut world, &mut host);
    let tlid = world.target(1).unwrap().port.lid;

    world.set_link(1, false).unwrap();
    let t = world.target(1).unwrap();
    assert_eq!(
        (t.port.state, t.port.phys_state),
        (state::DOWN, phys::POLLING)
    );
    // A command on the old channel: its SEND is never acknowledged; after 8 ACK
    // timeouts the QP fails with transport retry counter exceeded.
    host.send_iu(&srp_cmd(
        5,
        &rw10(READ10, 0, 1),
        true,
        host.data().1,
        host.rkey,
        512,
    ));
    let mut errors = Vec::new();
    world.run_while(2_000 * MS, |_| {
        errors.extend(host.poll_rc().into_iter().filter(Completion::is_error));
        !errors.is_empty()
    });
    assert_eq!(
        errors.first().and_then(|c| c.error).map(|e| e.0),
        Some(0x15)
    );
    assert_eq!(
        path(&mut world, &mut host, 0x21).0,
        0x0300,
        "the SA has no record of it"
    );

    world.set_link(1, true).unwrap();
    assert_eq!(world.target(1).unwrap().port.state, state::INIT);
    assert!(
        world.run_while(500 * MS, |w| w
            .target(1)
            .is_some_and(|t| t.port.state == state::ACTIVE)),
        "the SM activates the target again"
    );
    world.run_for(5 * MS);
    let (status, dlid, _) = path(&mut world, &mut host, 0x22);
    assert_eq!((status, dlid), (0, tlid), "back in the SA, same LID");
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn a_rebooted_target_forgets_its_channels_keeps_its_data_and_serves_a_new_login() {
    let clock = Clock::new();
    let memory = host_memory();
    let dev = function(&clock, &memory);
    // A second host, for the login after the reboot (the first one's QP is spent).
    let memory2 = host_memory();
    let dev2 = function(&clock, &memory2);
    {
        let mut fw = dev2.firmware_mut();
        fw.port.port_guid ^= 0x100;
        fw.port.node_guid ^= 0x100;
    }
    let image = TempImage::new();
    let mut all = nodes(&dev, target_node(&image));
    all.push(Node::Host(dev2.clone()));
    let mut world = World::new(clock.clone(), FabricConfig::default(), all, manager());
    let mut host = Host::up(&dev, &memory, &clock);
    let mut host2 = Host::up(&dev2, &memory2, &clock);
    settle(&mut world, &host, 2_000 * MS);
    assert!(world.run_while(500 * MS, |_| host2.active()));
    login(&mut world, &mut host);
    let old_qpn = world
        .target(1)
        .unwrap()
        .srpt
        .channels()
        .next()
        .unwrap()
        .1
        .local_qpn;

    // An acknowledged WRITE(10) of 8 blocks at LBA 200.
    let (data_off, data_pa) = host.data();
    let out: Vec<u8> = (0..4096u32).map(|i| (i * 11 + 5) as u8).collect();
    host.dma.write(data_off, &out).unwrap();
    let iu = srp_cmd(1, &rw10(WRITE10, 200, 8), false, data_pa, host.rkey, 4096);
    let rsp = command(&mut world, &mut host, &iu, 100 * MS).expect("SRP_RSP");
    assert_eq!((be64(&rsp, 8), rsp[19]), (1, 0), "GOOD");

    world.restart_target(1, 30 * MS).unwrap();
    let t = world.target(1).unwrap();
    assert_eq!(t.channel_count(), 0, "no QP left");
    assert_eq!(t.srpt.channels().count(), 0, "no channel left");
    assert_eq!(
        (t.port.state, t.port.lid),
        (state::DOWN, 0),
        "down, unconfigured"
    );
    assert!(!world.fabric().link_up(1));
    world.run_for(10 * MS);
    assert!(!world.fabric().link_up(1), "still rebooting");
    assert!(
        world.run_while(500 * MS, |w| w
            .target(1)
            .is_some_and(|t| t.port.state == state::ACTIVE)),
        "back, configured by the SM"
    );
    assert!(world.fabric().link_up(1));

    // The first host's old channel: its SEND reaches a target without that QP and
    // gets no answer at all.
    world.target(1).unwrap().dropped.clear();
    host.send_iu(&srp_cmd(
        2,
        &rw10(READ10, 200, 8),
        true,
        data_pa,
        host.rkey,
        4096,
    ));
    let mut got = Vec::new();
    world.run_while(2_000 * MS, |_| {
        got.extend(host.poll_rc());
        got.iter().any(Completion::is_error)
    });
    assert!(
        got.iter().all(|c| c.opcode != CqeOpcode::RespSend),
        "no SRP_RSP: {got:?}"
    );
    assert_eq!(got.last().and_then(|c| c.error).map(|e| e.0), Some(0x15));
    let dropped = world.target(1).unwrap().dropped.clone();
    let no_qp = format!("no channel on QP {old_qpn:#x}");
    assert!(dropped.contains(&no_qp), "{dropped:?}");

    // A new login from the second host, and the data written before the reboot.
    login(&mut world, &mut host2);
    assert_eq!(world.target(1).unwrap().srpt.channels().count(), 1);
    let (off2, pa2) = host2.data();
    let iu = srp_cmd(3, &rw10(READ10, 200, 8), true, pa2, host2.rkey, 4096);
    let rsp = command(&mut world, &mut host2, &iu, 100 * MS).expect("SRP_RSP");
    assert_eq!((be64(&rsp, 8), rsp[19]), (3, 0));
    let mut back = vec![0u8; 4096];
    host2.dma.read(off2, &mut back).unwrap();
    assert!(back == out, "the acknowledged write survived the reboot");
    assert_eq!(world.fault_counts().target_restarts, 1);
    assert_eq!(
        world.restart_target(0, MS).unwrap_err().to_string(),
        "node 0 is not a target"
    );
    assert_eq!(dev.violations(), []);
    assert_eq!(dev2.violations(), []);
}

#[test]
fn a_lid_change_moves_every_ca_and_the_sa_and_the_host_follow() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 2_000 * MS);
    events(&mut host);
    let (hlid, tlid) = (host.lid(), world.target(1).unwrap().port.lid);
    let sm = host.sm_lid();
    world.change_lids(0x30).unwrap();
    world.run_while(100 * MS, |w| w.manager().sm.sweep_done());
    assert_eq!(host.lid(), hlid + 0x30);
    assert_eq!(world.target(1).unwrap().port.lid, tlid + 0x30);
    assert_eq!(host.sm_lid(), sm, "the SM's LID stays");
    assert_eq!(events(&mut host), [(0x09, 6)], "LID change");
    let (status, dlid, slid) = path(&mut world, &mut host, 0x31);
    assert_eq!((status, dlid, slid), (0, tlid + 0x30, hlid + 0x30));
    let s = login(&mut world, &mut host);
    assert_eq!(s.target_lid, tlid + 0x30, "the login goes to the new LID");
    assert!(
        world.change_lids(0xBFF0).is_err(),
        "out of the unicast range"
    );
    assert_eq!(world.fault_counts().lid_changes, 1);
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn an_sa_busy_period_answers_busy_and_ends_by_itself() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 2_000 * MS);
    let until = r.clock.now_ns() + 10 * MS;
    world.sa_busy(until);
    assert_eq!(path(&mut world, &mut host, 0x41).0, 0x0001, "BUSY");
    assert_eq!(path(&mut world, &mut host, 0x42).0, 0x0001, "still BUSY");
    world.run_until(until);
    assert_eq!(path(&mut world, &mut host, 0x43).0, 0, "answered again");
    // A period ended early.
    world.sa_busy(r.clock.now_ns() + 50 * MS);
    world.sa_busy(0);
    assert_eq!(path(&mut world, &mut host, 0x44).0, 0);
    assert_eq!(world.fault_counts().sa_busy_periods, 2);
    assert_eq!(r.dev.violations(), []);
}

/// The RC CQ's completions, send ones retiring their WQEs.
fn rc_completions(host: &mut Host) -> Vec<Completion> {
    let mut out = Vec::new();
    while let Some(c) = host.q.rc_cq.poll(&host.dma).unwrap() {
        if matches!(c.opcode, CqeOpcode::Req | CqeOpcode::ReqErr) {
            host.q.rc_sq.complete(c.wqe_counter);
        }
        out.push(c);
    }
    out
}

#[test]
fn an_injected_qp_error_fails_the_oldest_wqe_and_flushes_the_rest() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 2_000 * MS);
    login(&mut world, &mut host);
    let qpn = host.res.rc_qpn;
    events(&mut host);
    let (pa, rkey) = (host.data().1, host.rkey);
    let read = |tag| srp_cmd(tag, &rw10(READ10, 0, 1), true, pa, rkey, 512);

    // Two SENDs outstanding (not yet acknowledged): the first fails with local QP
    // operation error, the second and the eight posted receives are flushed.
    let (a, b) = (read(1), read(2));
    host.send_iu(&a);
    host.send_iu(&b);
    let r1 = world.inject_qp_error(0, qpn).unwrap();
    assert_eq!(
        r1,
        Injected::Failed {
            wqe: 0,
            flushed: 1,
            receives_flushed: 8
        },
        "WQE counters count blocks; the first SEND was the channel's first WQE"
    );
    let cqes = rc_completions(&mut host);
    let sends: Vec<_> = cqes
        .iter()
        .filter(|c| c.opcode == CqeOpcode::ReqErr)
        .collect();
    assert_eq!(sends.len(), 2, "{cqes:?}");
    assert_eq!(
        sends[0].error.map(|e| e.0),
        Some(0x02),
        "local QP operation error"
    );
    assert_eq!(sends[1].error.map(|e| e.0), Some(0x05), "WR flushed");
    assert!(sends[0].wqe_counter < sends[1].wqe_counter, "oldest first");
    let receives: Vec<_> = cqes
        .iter()
        .filter(|c| c.opcode == CqeOpcode::RespErr)
        .collect();
    assert_eq!(receives.len(), 8);
    assert!(receives.iter().all(|c| c.error.map(|e| e.0) == Some(0x05)));
    let qp_state = |dev: &Mlx5Function| dev.firmware().objects.qps[&qpn].state;
    assert_eq!(qp_state(&r.dev), 6, "ERR");

    // Later posts are flushed, inbound packets (the target's answers to what left
    // before the error) are dropped unanswered; no asynchronous event.
    host.send_iu(&read(3));
    let cqes = rc_completions(&mut host);
    assert_eq!(
        cqes.iter()
            .map(|c| (c.opcode, c.error.map(|e| e.0)))
            .collect::<Vec<_>>(),
        [(CqeOpcode::ReqErr, Some(0x05))]
    );
    world.run_for(20 * MS);
    assert!(
        rc_completions(&mut host).is_empty(),
        "nothing delivered to a QP in ERR"
    );
    assert!(events(&mut host).iter().all(|e| e.0 == 0x00), "no QP event");
    assert_eq!(world.fault_counts().qp_errors, 1);
    assert!(
        world.inject_qp_error(0, qpn).is_err(),
        "not connected any more"
    );
    assert!(
        world.inject_qp_error(1, qpn).is_err(),
        "a target is no host"
    );
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn an_injected_qp_error_on_an_idle_qp_fails_its_next_wqe() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 2_000 * MS);
    login(&mut world, &mut host);
    let qpn = host.res.rc_qpn;
    // The login's RTU left the QP idle: armed.
    assert_eq!(world.inject_qp_error(0, qpn).unwrap(), Injected::Armed);
    assert_eq!(r.dev.firmware().objects.qps[&qpn].state, 3, "still RTS");
    host.send_iu(&srp_cmd(
        7,
        &rw10(READ10, 0, 1),
        true,
        host.data().1,
        host.rkey,
        512,
    ));
    let cqes = rc_completions(&mut host);
    let send = cqes.iter().find(|c| c.opcode == CqeOpcode::ReqErr).unwrap();
    assert_eq!(send.error.map(|e| e.0), Some(0x02));
    assert_eq!(r.dev.firmware().objects.qps[&qpn].state, 6);
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn the_target_rejects_stale_disconnects_and_logs_out_on_request() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 2_000 * MS);
    login(&mut world, &mut host);
    let tlid = world.target(1).unwrap().port.lid;

    // SRP_T_LOGOUT on the live channel, reason 0x20003 (an example).
    assert_eq!(world.target_logout_all(1, 0x2_0003).unwrap(), 1);
    let mut ius = Vec::new();
    world.run_while(10 * MS, |_| {
        for c in host.poll_rc() {
            if c.opcode == CqeOpcode::RespSend {
                let mut b = vec![0u8; c.byte_cnt as usize];
                let slot = host.iu_slot(usize::from(c.wqe_counter) % 64);
                host.dma.read(slot.offset, &mut b).unwrap();
                ius.push(b);
            }
        }
        !ius.is_empty()
    });
    assert_eq!(
        ius.first().map(|b| (b[0], be32(b, 4))),
        Some((0x80, 0x2_0003))
    );

    // A DREQ on every channel: the host's QP1 gets it.
    let mut slots = vec![host.post_mad_recv()];
    assert_eq!(world.target_disconnect_all(1).unwrap(), 1);
    let mut mads = Vec::new();
    world.run_while(10 * MS, |_| {
        mads.extend(host.poll_mads(&mut slots));
        !mads.is_empty()
    });
    assert_eq!(
        mads.first().map(|m| (m[1], be16(m, 16))),
        Some((0x07, 0x0015))
    );
    assert_eq!(world.target_disconnect_all(1).unwrap(), 0, "already going");

    // The next REQ is rejected: stale connection (reason 10).
    world.stale_next_req(1).unwrap();
    let our_guid = r.dev.firmware().port.port_guid;
    let tgid = target_gid(&mut world);
    let req = cm_req(
        0x61,
        0xC0DE_0002,
        TARGET_GUID,
        our_guid,
        host.res.rc_qpn,
        0x2345,
        host.lid(),
        tlid,
        host.gid(),
        tgid,
        &login_req(0x7A7, 1024, our_guid, target_port_id()),
    );
    // (The DREQ may be sent again meanwhile: look for the REJ among what comes.)
    let mut slots: Vec<usize> = (0..4).map(|_| host.post_mad_recv()).collect();
    host.send_mad(tlid, &req);
    let mut rej = None;
    world.run_while(100 * MS, |_| {
        rej = rej.or(host
            .poll_mads(&mut slots)
            .into_iter()
            .find(|m| m[1] == 0x07 && be16(m, 16) == 0x0012));
        rej.is_some()
    });
    let rej = rej.expect("a CM REJ");
    assert_eq!(be16(&rej, pl(10)), 10, "stale connection");
    let c = world.fault_counts();
    assert_eq!((c.t_logouts, c.dreqs, c.stale_rejects), (1, 1, 1));
    assert!(world.stale_next_req(0).is_err());
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn a_port_that_is_not_active_sends_only_smps() {
    // No subnet manager: the ports are configured by hand, and a port whose link
    // comes back stays in INIT until the test activates it.
    let clock = Clock::new();
    let memory = host_memory();
    let dev = function(&clock, &memory);
    let image = TempImage::new();
    let mut host = Host::up(&dev, &memory, &clock);
    let mut world = World::new(
        clock.clone(),
        FabricConfig::default(),
        nodes(&dev, target_node(&image)),
        Manager::idle(),
    );
    let (hlid, tlid, sm) = (0x11, 0x12, 0x01);
    world.fabric().route(hlid, 1);
    world.fabric().route(tlid, 2);
    dev.configure_port(hlid, sm, state::ACTIVE);
    world.target(1).unwrap().port.activate(tlid, sm, 0, 18);
    login(&mut world, &mut host);

    // A SEND posted while the link is down, whose link then comes back: its
    // retransmissions (67 ms apart) must not leave while the port is only INIT.
    world.set_link(0, false).unwrap();
    host.send_iu(&srp_cmd(
        4,
        &rw10(READ10, 0, 1),
        true,
        host.data().1,
        host.rkey,
        512,
    ));
    world.run_for(MS);
    world.set_link(0, true).unwrap();
    let before = world.inactive_discards();
    world.run_for(150 * MS);
    assert_eq!(port(&host).0, state::INIT);
    assert_eq!(
        world.inactive_discards() - before,
        2,
        "two retransmissions held"
    );
    // Activated (as a subnet manager's PortInfo Set would), the next retransmission
    // gets through and the command completes.
    dev.configure_port(hlid, sm, state::ACTIVE);
    let rsp = command_wait(&mut world, &mut host, 2_000 * MS).expect("SRP_RSP");
    assert_eq!((be64(&rsp, 8), rsp[19]), (4, 0));
    assert_eq!(dev.violations(), []);
}

// -------------------------------------------------------------------------------
// Under OpenSM on ibsim.

#[test]
fn opensm_link_flaps_reboots_and_busy_periods() {
    let (r, mut world) = opensm_rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 100 * MS);
    events(&mut host);
    let (lid, tlid) = (host.lid(), world.target(1).unwrap().port.lid);

    // The host's link: down and up; OpenSM activates its twin, the model port follows.
    world.set_link(0, false).unwrap();
    assert_eq!(port(&host), (state::DOWN, phys::POLLING, lid));
    assert_eq!(events(&mut host), [(0x09, 1)]);
    world.run_for(5 * MS);
    world.set_link(0, true).unwrap();
    assert_eq!(port(&host), (state::INIT, phys::LINK_UP, lid));
    assert_eq!(events(&mut host), [(0x09, 5)]);
    let (t0, w0) = (r.clock.now_ns(), std::time::Instant::now());
    assert!(
        world.run_while(2_000 * MS, |_| host.active()),
        "OpenSM activates it"
    );
    println!(
        "OpenSM: host port active {} ns (virtual) / {:?} (wall) after the relink",
        r.clock.now_ns() - t0,
        w0.elapsed()
    );
    assert_eq!(host.lid(), lid);
    assert_eq!(events(&mut host), [(0x09, 4)]);
    assert_eq!(path_retrying(&mut world, &mut host, 0x51).0, (0, tlid, lid));

    // The target's link: OpenSM takes it out of its SA at once (trap 128).
    world.set_link(1, false).unwrap();
    world.run_for(20 * MS);
    assert_eq!(
        path_retrying(&mut world, &mut host, 0x52).0.0,
        0x0300,
        "no record"
    );
    world.set_link(1, true).unwrap();
    assert!(world.run_while(2_000 * MS, |w| {
        w.target(1).is_some_and(|t| t.port.state == state::ACTIVE)
    }));
    assert_eq!(path_retrying(&mut world, &mut host, 0x53).0, (0, tlid, lid));

    // A reboot: the twin is cleared (LID 0) and comes back with its cached LID.
    world.restart_target(1, 10 * MS).unwrap();
    assert_eq!(world.target(1).unwrap().port.lid, 0);
    assert!(world.run_while(2_000 * MS, |w| {
        w.target(1).is_some_and(|t| t.port.state == state::ACTIVE)
    }));
    assert_eq!(world.target(1).unwrap().port.lid, tlid);
    let s = login(&mut world, &mut host);
    assert_eq!(s.target_lid, tlid, "the rebooted target takes a login");

    // An overloaded SA: the bridge answers BUSY; then OpenSM answers again.
    let until = r.clock.now_ns() + 10 * MS;
    world.sa_busy(until);
    assert_eq!(
        path_retrying(&mut world, &mut host, 0x54).0.0,
        0x0001,
        "BUSY"
    );
    world.run_until(until);
    assert_eq!(path_retrying(&mut world, &mut host, 0x55).0, (0, tlid, lid));

    let c = world.fault_counts();
    assert_eq!(
        (
            c.link_downs,
            c.link_ups,
            c.target_restarts,
            c.sa_busy_periods,
            c.sa_busy_answers
        ),
        (2, 2, 1, 1, 1)
    );
    assert!(world.bridge_errors.is_empty(), "{:?}", world.bridge_errors);
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn opensm_restarted_with_new_lids_moves_every_ca_and_the_model_follows() {
    let (r, mut world) = opensm_rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host, 100 * MS);
    events(&mut host);
    let (lid, tlid, sm) = (host.lid(), world.target(1).unwrap().port.lid, host.sm_lid());

    let w0 = std::time::Instant::now();
    world.change_lids(0x20).unwrap();
    let moved = world.run_while(5_000 * MS, |w| {
        host.lid() == lid + 0x20 && w.target(1).is_some_and(|t| t.port.lid == tlid + 0x20)
    });
    assert!(moved, "OpenSM set the new LIDs: {:?}", world.bridge_errors);
    println!(
        "OpenSM restart with new LIDs: model ports moved after {:?}",
        w0.elapsed()
    );
    assert_eq!(host.sm_lid(), sm, "OpenSM's LID stays");
    assert_eq!(events(&mut host), [(0x09, 6)], "LID change");
    assert_eq!(world.bridge().unwrap().opensm_runs(), 2);
    // OpenSM's SA, the CM through ibsim and RDMA on the model switch all use them.
    // A query that reaches OpenSM before its first sweep as master is done goes
    // unanswered: the host asks again after 100 ms, as a driver would.
    let (answer, tries) = path_retrying(&mut world, &mut host, 0x61);
    assert_eq!(answer, (0, tlid + 0x20, lid + 0x20));
    println!("the SA answered at try {tries}");
    let s = login(&mut world, &mut host);
    assert_eq!(s.target_lid, tlid + 0x20);
    let (off, pa) = host.data();
    let iu = srp_cmd(1, &rw10(READ10, 0, 8), true, pa, host.rkey, 4096);
    let rsp = command(&mut world, &mut host, &iu, 100 * MS).expect("SRP_RSP");
    assert_eq!((be64(&rsp, 8), rsp[19]), (1, 0));
    let mut got = vec![0u8; 4096];
    host.dma.read(off, &mut got).unwrap();
    assert!(got == image_blocks(&mut world, 0, 8));
    assert_eq!(world.fault_counts().lid_changes, 1);
    assert!(world.bridge_errors.is_empty(), "{:?}", world.bridge_errors);
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn opensm_rides_out_a_burst_of_flaps_and_its_own_trap_suppression() {
    // OpenSM sweeping every second: after ten link-state traps in a row it ignores
    // the next ones for a while (protection against a babbling port), and a port
    // whose link came back waits for the periodic sweep instead.
    let clock = Clock::new();
    let memory = host_memory();
    let dev = function(&clock, &memory);
    let image = TempImage::new();
    let mut host = Host::up(&dev, &memory, &clock);
    let options = fabboot_sim::ibsim::OpenSmOptions {
        sweep_interval_s: 1,
    };
    let mut world = World::with_opensm_options(
        clock.clone(),
        FabricConfig::default(),
        nodes(&dev, target_node(&image)),
        options,
    )
    .unwrap_or_else(|e| panic!("ibsim and OpenSM (Debian ibsim-utils, opensm) must run: {e}"));
    settle(&mut world, &host, 100 * MS);
    let (lid, tlid) = (host.lid(), world.target(1).unwrap().port.lid);
    let mut rng = common::rng::Rng(0xF1A9_5EED);
    let w0 = std::time::Instant::now();
    let mut waits = Vec::new();
    for _ in 0..FLAPS {
        let ca = rng.below(2) as usize;
        world.set_link(ca, false).unwrap();
        world.run_for(MS + rng.below(5 * MS));
        world.set_link(ca, true).unwrap();
        let t0 = clock.now_ns();
        let back = world.run_while(3_000 * MS, |w| {
            host.active() && w.target(1).is_some_and(|t| t.port.state == state::ACTIVE)
        });
        assert!(back, "active again: {:?}", world.bridge_errors);
        waits.push((clock.now_ns() - t0) / 1_000);
    }
    println!(
        "{FLAPS} flaps under OpenSM in {:?}; port active after (us): {waits:?}",
        w0.elapsed()
    );
    assert!(
        waits[..5].iter().all(|&us| us < 100_000),
        "on the trap: {waits:?}"
    );
    assert!(
        waits.iter().any(|&us| us > 300_000),
        "a trap ignored: {waits:?}"
    );
    assert_eq!((host.lid(), world.target(1).unwrap().port.lid), (lid, tlid));
    assert_eq!(path_retrying(&mut world, &mut host, 0x71).0, (0, tlid, lid));
    let c = world.fault_counts();
    assert_eq!((c.link_downs, c.link_ups), (FLAPS, FLAPS));
    assert!(world.bridge_errors.is_empty(), "{:?}", world.bridge_errors);
    assert_eq!(dev.take_violations(), []);
}

/// Link flaps in the burst test: each is two link-state traps (down, up), and OpenSM
/// ignores them from the eleventh in a row, so from the sixth flap.
const FLAPS: u64 = 8;
