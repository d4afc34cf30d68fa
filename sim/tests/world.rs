//! The whole subnet on the virtual clock: the built-in subnet manager sweeps the
//! model function and the SRP target through their agents, the SA answers
//! PathRecords, a CM REQ logs in, and SRP commands move data by RDMA between the
//! target's image and host memory — every packet encoded, routed by the switch and
//! captured. The initiator's side here is byte fixtures from the reference, sent
//! through the access layer's queues (not the SRP driver, which comes later).

mod common;

use std::path::PathBuf;
use std::rc::Rc;

use common::tshark::{capture_for_tshark, dissect, get, reference_icrc, reference_vcrc, tshark};
use common::*;
use fabboot_sim::clock::Clock;
use fabboot_sim::device::Mlx5Function;
use fabboot_sim::fabric::{Drop, FabricConfig};
use fabboot_sim::sm::sa::SaFault;
use fabboot_sim::world::{Manager, World};

struct Rig {
    clock: Clock,
    memory: fabboot_sim::memory::HostMemory,
    dev: Rc<Mlx5Function>,
    _image: TempImage,
}

fn rig() -> (Rig, World) {
    let clock = Clock::new();
    let memory = host_memory();
    let dev = function(&clock, &memory);
    let image = TempImage::new();
    let world = World::new(
        clock.clone(),
        FabricConfig::default(),
        nodes(&dev, target_node(&image)),
        Manager::default(),
    );
    (
        Rig {
            clock,
            memory,
            dev,
            _image: image,
        },
        world,
    )
}

/// Runs until both ports are ACTIVE.
fn settle(world: &mut World, host: &Host) {
    let up = world.run_while(2_000 * MS, |w| {
        host.active()
            && w.target(1).is_some_and(|t| t.port.state == 4)
            && w.manager().sm.sweep_done()
    });
    assert!(up, "the subnet manager brought both ports up");
}

#[test]
fn the_sm_brings_ports_up_and_the_sa_answers_in_virtual_time() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host);
    let swept = world.manager().sm.last_report().cloned().unwrap();
    assert!(!swept.failed && swept.lid_changes.len() >= 2, "{swept:?}");
    // The function told its driver: port-change events on the EQ, ACTIVE last.
    let mut events = Vec::new();
    while let Some(e) = host.q.eq.poll(&host.dma).unwrap() {
        events.push((e.kind, e.sub_type));
    }
    assert_eq!(events.last(), Some(&(0x09, 4)), "{events:?}");

    let target_gid = {
        let t = world.target(1).unwrap();
        gid(t.port.gid_prefix, t.port.port_guid)
    };
    let target_lid = world.target(1).unwrap().port.lid;
    let sm_lid = host.sm_lid();
    let q = path_query(0xA1, host.gid(), target_gid);
    let t0 = r.clock.now_ns();
    let a = mad_round_trip(&mut world, &mut host, sm_lid, &q, 100 * MS).expect("an SA answer");
    let rtt = r.clock.now_ns() - t0;
    assert_eq!(
        (a[3], be16(&a, 4), be64(&a, 8)),
        (0x81, 0, 0xA1),
        "GetResp, OK, TID"
    );
    let rec = &a[56..120];
    assert_eq!(&rec[8..24], &target_gid, "DGID");
    assert_eq!(
        (be16(rec, 40), be16(rec, 42)),
        (target_lid, host.lid()),
        "DLID, SLID"
    );
    // Two links each way, the switch twice, 20 us of SA processing: tens of us.
    assert!((20_000..100_000).contains(&rtt), "SA round trip {rtt} ns");
    println!("SA PathRecord round trip: {rtt} ns of virtual time");

    // Injected SA failures.
    world.manager().set_sa_fault(SaFault::Busy);
    let a = mad_round_trip(&mut world, &mut host, sm_lid, &q, 100 * MS).unwrap();
    assert_eq!(be16(&a, 4), 0x0001, "BUSY");
    world.manager().set_sa_fault(SaFault::NoRecord);
    let a = mad_round_trip(&mut world, &mut host, sm_lid, &q, 100 * MS).unwrap();
    assert_eq!(be16(&a, 4), 0x0300, "no records");
    world.manager().set_sa_fault(SaFault::NoResponse);
    assert!(mad_round_trip(&mut world, &mut host, sm_lid, &q, 100 * MS).is_none());
    world.manager().set_sa_fault(SaFault::None);
    let a = mad_round_trip(&mut world, &mut host, sm_lid, &q, 100 * MS).unwrap();
    assert_eq!(be16(&a, 4), 0, "answered again");
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn a_resweep_moves_the_lids_and_the_function_raises_the_lid_change_event() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host);
    while host.q.eq.poll(&host.dma).unwrap().is_some() {}
    host.q.eq.update_ci(&host.hal);
    let before = host.lid();
    let now = r.clock.now_ns();
    world.manager().relabel(now, 0x40).unwrap();
    world.run_for(10 * MS);
    assert_eq!(host.lid(), before + 0x40);
    let mut events = Vec::new();
    while let Some(e) = host.q.eq.poll(&host.dma).unwrap() {
        events.push((e.kind, e.sub_type));
    }
    assert!(events.contains(&(0x09, 6)), "LID change event: {events:?}");
    // The SA answers with the new LIDs.
    let target = world.target(1).unwrap();
    let (tgid, tlid) = (
        gid(target.port.gid_prefix, target.port.port_guid),
        target.port.lid,
    );
    let sm_lid = host.sm_lid();
    let q = path_query(7, host.gid(), tgid);
    let a = mad_round_trip(&mut world, &mut host, sm_lid, &q, 100 * MS).unwrap();
    assert_eq!((be16(&a[56..], 40), be16(&a[56..], 42)), (tlid, host.lid()));
    assert_eq!(r.dev.violations(), []);
}

fn pcap_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fabboot-world-{}-{name}.pcap", std::process::id()))
}

#[test]
fn login_then_read_and_write_move_the_right_bytes_by_rdma_and_the_capture_dissects() {
    let (r, mut world) = rig();
    let pcap = pcap_path("login");
    world.capture_to(&pcap).unwrap();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host);
    let sm_lid = host.sm_lid();
    let tgid = {
        let t = world.target(1).unwrap();
        gid(t.port.gid_prefix, t.port.port_guid)
    };
    let q = path_query(3, host.gid(), tgid);
    mad_round_trip(&mut world, &mut host, sm_lid, &q, 100 * MS).unwrap();
    let s = login(&mut world, &mut host);
    assert!(s.req_lim > 1, "credits granted: {}", s.req_lim);

    // READ(10) of 8 blocks: the target RDMA WRITEs them into host memory.
    let (data_off, data_pa) = host.data();
    host.dma.write(data_off, &[0xEE; 4096]).unwrap();
    let iu = srp_cmd(1, &rw10(READ10, 0, 8), true, data_pa, host.rkey, 4096);
    let rsp = command(&mut world, &mut host, &iu, 100 * MS).expect("SRP_RSP");
    assert_eq!(
        (rsp[0], be64(&rsp, 8), rsp[19]),
        (0xC1, 1, 0),
        "SRP_RSP, tag, GOOD"
    );
    let mut got = vec![0u8; 4096];
    host.dma.read(data_off, &mut got).unwrap();
    let want: Vec<u8> = (0..8).flat_map(pattern).collect();
    assert!(got == want, "the blocks arrived in host memory");

    // WRITE(10) of 16 blocks: the target RDMA READs them and writes its image.
    let out: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    host.dma.write(data_off, &out).unwrap();
    let iu = srp_cmd(2, &rw10(WRITE10, 100, 16), false, data_pa, host.rkey, 8192);
    let rsp = command(&mut world, &mut host, &iu, 100 * MS).expect("SRP_RSP");
    assert_eq!((be64(&rsp, 8), rsp[19]), (2, 0));
    assert!(
        image_blocks(&mut world, 100, 16) == out,
        "the image holds what was written"
    );

    // A descriptor with a key that has no remote rights: the target's RDMA WRITE
    // is refused with a remote access error and not one byte lands.
    host.dma.write(data_off, &[0xEE; 4096]).unwrap();
    let iu = srp_cmd(3, &rw10(READ10, 0, 8), true, data_pa, host.res.lkey, 4096);
    let rsp = command(&mut world, &mut host, &iu, 100 * MS);
    assert!(rsp.is_none(), "no response for a failed transfer: {rsp:?}");
    host.dma.read(data_off, &mut got).unwrap();
    assert!(
        got.iter().all(|&b| b == 0xEE),
        "nothing written through a local key"
    );
    let naks = r.dev.rc_stats(host.res.rc_qpn).unwrap().naks_sent;
    assert!(naks >= 1, "the function NAKed the write");
    assert_eq!(
        world.target(1).unwrap().channel_count(),
        0,
        "the target dropped the channel"
    );

    let packets = world.finish_capture().unwrap();
    drop(world);
    check_capture(&pcap, packets, s.target_lid, tgid);
    let _ = std::fs::remove_file(&pcap);
    let _ = std::fs::remove_file(pcap.with_extension("user0.pcap"));
    assert_eq!(r.dev.violations(), []);
}

/// tshark reads every packet of the run without a malformed one, the CRCs at the
/// end of each are those of an independent CRC, and the MADs decode as sent.
fn check_capture(pcap: &PathBuf, packets: u64, target_lid: u16, target_gid: [u8; 16]) {
    let tshark = tshark();
    let read = capture_for_tshark(&tshark, pcap);
    let frames = dissect(&tshark, &read);
    assert_eq!(frames.len() as u64, packets);
    let bytes = std::fs::read(pcap).unwrap();
    let (_, records) = common::tshark::read_pcap(&bytes);
    let (mut smps, mut sa, mut cm_req, mut rdma) = (0, 0, 0, 0);
    for (f, rec) in frames.iter().zip(&records) {
        assert!(!f.contains_key("_ws.malformed"), "malformed: {f:?}");
        let n = rec.data.len();
        assert_eq!(
            &rec.data[n - 6..n - 2],
            &reference_icrc(&rec.data)[..],
            "ICRC"
        );
        assert_eq!(&rec.data[n - 2..], &reference_vcrc(&rec.data)[..], "VCRC");
        if let Some(class) = f.get("infiniband.mad.mgmtclass") {
            match common::tshark::num(class) {
                0x81 => smps += 1,
                0x03 if get(f, "infiniband.mad.method") == 0x01 => {
                    assert_eq!(get(f, "infiniband.mad.attributeid"), 0x35);
                    let dgid: std::net::Ipv6Addr = f["infiniband.pathrecord.dgid"].parse().unwrap();
                    assert_eq!(dgid.octets(), target_gid, "PathRecord DGID");
                    sa += 1;
                }
                0x07 if get(f, "infiniband.mad.attributeid") == 0x10 => {
                    assert_eq!(get(f, "infiniband.cm.req.serviceid"), TARGET_GUID);
                    assert_eq!(get(f, "infiniband.lrh.dlid"), u64::from(target_lid));
                    cm_req += 1;
                }
                _ => {}
            }
        }
        if f.contains_key("infiniband.reth.r_key") {
            rdma += 1;
        }
    }
    // Each packet is captured on every link it crosses: a REQ host → switch → target
    // twice, an SA query once (the SA sits on the switch's management port).
    assert!(
        smps >= 16 && sa == 1 && cm_req == 2 && rdma >= 4,
        "{smps} SMPs, {sa} SA, {cm_req} REQ, {rdma} RETH"
    );
    println!(
        "capture: {packets} packets, {} bytes ({smps} SMPs, {sa} SA query, {cm_req} CM REQ, {rdma} RDMA requests)",
        bytes.len()
    );
}

#[test]
fn a_link_lost_mid_transfer_recovers_by_retransmission_with_every_byte_right() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host);
    login(&mut world, &mut host);
    let (data_off, data_pa) = host.data();
    // 2048 blocks (1 MiB) from the image's start; the link goes down 20 us in.
    let iu = srp_cmd(
        9,
        &rw10(READ10, 0, 2048),
        true,
        data_pa,
        host.rkey,
        2048 * 512,
    );
    host.send_iu(&iu);
    world.run_for(20_000);
    world.fabric().set_link_up(0, false);
    world.run_for(50 * MS);
    world.fabric().set_link_up(0, true);
    let rsp = command_wait(&mut world, &mut host, 2_000 * MS).expect("SRP_RSP after the outage");
    assert_eq!((be64(&rsp, 8), rsp[19]), (9, 0));
    let mut got = vec![0u8; 2048 * 512];
    host.dma.read(data_off, &mut got).unwrap();
    assert!(got == image_blocks(&mut world, 0, 2048), "every byte right");
    let lost = world
        .fabric()
        .stats()
        .dropped
        .get(&Drop::LinkDown)
        .copied()
        .unwrap_or(0);
    assert!(lost > 0, "packets were lost");
    println!(
        "link outage: {lost} packets lost, recovered at {} ns",
        r.clock.now_ns()
    );
    assert_eq!(r.dev.violations(), []);
}

#[test]
fn a_link_gone_for_good_ends_in_a_retry_exceeded_error_cqe_on_the_host() {
    let (r, mut world) = rig();
    let mut host = Host::up(&r.dev, &r.memory, &r.clock);
    settle(&mut world, &host);
    login(&mut world, &mut host);
    world.fabric().set_link_up(0, false);
    let sent_at = r.clock.now_ns();
    host.send_iu(&srp_cmd(
        5,
        &rw10(READ10, 0, 1),
        true,
        host.data().1,
        host.rkey,
        512,
    ));
    let mut errors = Vec::new();
    world.run_while(5_000 * MS, |_| {
        errors.extend(host.poll_rc().into_iter().filter(|c| c.is_error()));
        !errors.is_empty()
    });
    let c = errors.first().expect("an error completion");
    // Retry count 7: eight transmissions, each waiting the ACK timeout (code 14,
    // 4.096 us << 14 = 67 ms), then transport retry counter exceeded (0x15).
    assert_eq!(c.error.map(|e| e.0), Some(0x15), "{c:?}");
    let waited = r.clock.now_ns() - sent_at;
    let timeout = 4_096u64 << 14;
    assert!((8 * timeout..9 * timeout).contains(&waited), "{waited} ns");
    assert_eq!(r.dev.violations(), []);
}
