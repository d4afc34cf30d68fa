//! `--sm opensm` end to end: a real, unmodified OpenSM on ibsim configures the model
//! function's and the target's ports; the SA PathRecord, the CM login and its RTU
//! travel through ibsim; the SRP READ and WRITE move by RDMA on the model fabric;
//! and when the world is dropped no ibsim or OpenSM process is left.
//!
//! ibsim and OpenSM are required (ci/setup.sh installs them): without them this
//! test fails, naming the package.

mod common;

use std::time::Instant;

use common::*;
use fabboot_sim::clock::Clock;
use fabboot_sim::fabric::FabricConfig;
use fabboot_sim::world::World;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn opensm_configures_the_ports_and_carries_sa_and_cm_while_rdma_runs_on_the_model() {
    let clock = Clock::new();
    let memory = host_memory();
    let dev = function(&clock, &memory);
    let image = TempImage::new();
    let mut host = Host::up(&dev, &memory, &clock);
    let started = Instant::now();
    let mut world = World::with_opensm(
        clock.clone(),
        FabricConfig::default(),
        nodes(&dev, target_node(&image)),
    )
    .unwrap_or_else(|e| panic!("ibsim and OpenSM (Debian ibsim-utils, opensm) must run: {e}"));
    let pids = world.bridge().unwrap().process_ids();
    let opensm_lid = world.bridge().unwrap().opensm_lid();
    println!("OpenSM subnet up in {:?}", started.elapsed());

    // The ports carry what OpenSM configured.
    assert!(host.active());
    assert_eq!(host.sm_lid(), opensm_lid, "SA queries go to OpenSM");
    let (tlid, tgid) = {
        let t = world.target(1).unwrap();
        (t.port.lid, gid(t.port.gid_prefix, t.port.port_guid))
    };
    assert!(tlid != 0 && tlid != host.lid());
    let mut events = Vec::new();
    while let Some(e) = host.q.eq.poll(&host.dma).unwrap() {
        events.push((e.kind, e.sub_type));
    }
    assert_eq!(events, [(0x09, 4)], "one port-active event");

    // SA PathRecord from OpenSM through ibsim.
    let q = path_query(0x5A, host.gid(), tgid);
    let (t0, w0) = (clock.now_ns(), Instant::now());
    let a =
        mad_round_trip(&mut world, &mut host, opensm_lid, &q, 2_000 * MS).expect("OpenSM answers");
    let (virt, wall) = (clock.now_ns() - t0, w0.elapsed());
    assert_eq!((a[1], a[3], be16(&a, 4)), (0x03, 0x81, 0), "SA GetResp, OK");
    let rec = &a[56..120];
    assert_eq!(&rec[8..24], &tgid, "DGID");
    assert_eq!(
        (be16(rec, 40), be16(rec, 42)),
        (tlid, host.lid()),
        "DLID, SLID"
    );
    println!("SA PathRecord round trip through OpenSM: {virt} ns virtual, {wall:?} wall");

    // Login (CM through ibsim), then data by RDMA over the model fabric.
    let s = login(&mut world, &mut host);
    assert!(s.req_lim > 1);
    let (data_off, data_pa) = host.data();
    let iu = srp_cmd(1, &rw10(READ10, 0, 16), true, data_pa, host.rkey, 8192);
    let rsp = command(&mut world, &mut host, &iu, 100 * MS).expect("SRP_RSP");
    assert_eq!((be64(&rsp, 8), rsp[19]), (1, 0));
    let mut got = vec![0u8; 8192];
    host.dma.read(data_off, &mut got).unwrap();
    assert!(got == image_blocks(&mut world, 0, 16), "the blocks arrived");
    let out: Vec<u8> = (0..4096u32).map(|i| (i * 13) as u8).collect();
    host.dma.write(data_off, &out).unwrap();
    let iu = srp_cmd(2, &rw10(WRITE10, 40, 8), false, data_pa, host.rkey, 4096);
    let rsp = command(&mut world, &mut host, &iu, 100 * MS).expect("SRP_RSP");
    assert_eq!((be64(&rsp, 8), rsp[19]), (2, 0));
    assert!(image_blocks(&mut world, 40, 8) == out);

    let b = world.bridge().unwrap();
    assert!(
        b.mads_sent >= 3 && b.mads_received >= 2,
        "{} sent, {} received",
        b.mads_sent,
        b.mads_received
    );
    assert!(world.bridge_errors.is_empty(), "{:?}", world.bridge_errors);
    assert_eq!(dev.violations(), []);
    drop(world);
    for (name, pid) in pids {
        assert!(!alive(pid), "{name} (PID {pid}) outlived the world");
    }
}
