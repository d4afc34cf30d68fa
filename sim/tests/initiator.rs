//! The driver's initiator (`fabboot::initiator`: port bring-up, SA path, CM
//! connection, SRP login and SCSI I/O) linked natively and run against the simulated
//! world, under the built-in subnet manager and under OpenSM.
//!
//! Every byte moved is checked against the target's disk image, read directly.

mod common;

use common::tshark::{capture_for_tshark, dissect, get, reference_icrc, tshark};
use fabboot::event::Event;
use fabboot::initiator::{Fault, Outcome, Request, Segment, State};
use fabboot::port::abi::{
    SRB_STATUS_BUS_RESET, SRB_STATUS_DATA_OVERRUN, SRB_STATUS_INVALID_LUN,
    SRB_STATUS_INVALID_REQUEST, SRB_STATUS_SELECTION_TIMEOUT, SRB_STATUS_SUCCESS,
};
use fabboot::srp::cmd::DataDir;
use fabboot_sim::scenario::SmChoice;
use fabboot_sim::sm::sa::SaFault;
use fabboot_sim::srpt::{ChannelId, MalformedRsp, SrptFault};
use fabboot_sim::target::BlockSize;
use fabboot_sim::world::rig::{Disk, Rig, RigConfig};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

fn ready(cfg: RigConfig) -> Rig {
    let mut rig = Rig::new(cfg);
    let state = rig.until_ready(60 * S);
    assert_eq!(
        state,
        State::Ready,
        "fault {:?}, events {:?}",
        rig.init.fault(),
        rig.port.events
    );
    rig
}

fn opensm() -> RigConfig {
    RigConfig {
        sm: SmChoice::OpenSm,
        ..RigConfig::default()
    }
}

/// A deterministic generator for the tests' random choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

fn rw10(op: u8, lba: u64, blocks: u32) -> Vec<u8> {
    let mut c = vec![0u8; 10];
    c[0] = op;
    c[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
    c[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
    c
}

fn rw16(op: u8, lba: u64, blocks: u32) -> Vec<u8> {
    let mut c = vec![0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

const READ10: u8 = 0x28;
const WRITE10: u8 = 0x2A;
const READ16: u8 = 0x88;
const WRITE16: u8 = 0x8A;

fn req<'a>(user: u32, lun: u8, cdb: &'a [u8], dir: DataDir, len: u32) -> Request<'a> {
    Request {
        user,
        target: 0,
        lun,
        cdb,
        dir,
        transfer_len: len,
    }
}

/// One segment covering `len` bytes at data offset `at`.
fn one(rig: &Rig, at: usize, len: usize) -> Vec<Segment> {
    vec![Segment {
        phys: rig.data_phys(at),
        len: len as u32,
    }]
}

fn ok(o: &Outcome) {
    assert_eq!(o.srb_status, SRB_STATUS_SUCCESS, "{o:?}");
}

/// (last LBA, block length) from READ CAPACITY (10) and (16).
fn capacity(rig: &mut Rig, lun: u8) -> ((u32, u32), (u64, u32)) {
    let rc10 = [0x25u8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let o = rig
        .command(&req(1, lun, &rc10, DataDir::In, 8), &one(rig, 0, 8), S)
        .expect("READ CAPACITY (10) completes");
    ok(&o);
    let mut b = [0u8; 8];
    rig.read_data(0, &mut b);
    let c10 = (
        u32::from_be_bytes(b[..4].try_into().unwrap()),
        u32::from_be_bytes(b[4..].try_into().unwrap()),
    );
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9E;
    rc16[1] = 0x10;
    rc16[13] = 32;
    let o = rig
        .command(&req(2, lun, &rc16, DataDir::In, 32), &one(rig, 0, 32), S)
        .expect("READ CAPACITY (16) completes");
    ok(&o);
    let mut b = [0u8; 32];
    rig.read_data(0, &mut b);
    let c16 = (
        u64::from_be_bytes(b[..8].try_into().unwrap()),
        u32::from_be_bytes(b[8..12].try_into().unwrap()),
    );
    (c10, c16)
}

fn login_inquiry_capacity(cfg: RigConfig) {
    let mut rig = ready(cfg);
    let st = rig.init.stats();
    assert!(st.active_at_us.unwrap() <= st.ready_at_us.unwrap());
    assert_eq!(rig.init.luns().len(), 1, "REPORT LUNS found LUN 0");
    // The login asked for an IU with a full indirect table and ib_srpt took it.
    let n = rig.init.negotiated().unwrap();
    assert_eq!((n.max_it_iu_len, rig.init.max_sg()), (4148, 255));
    assert!(n.req_lim > 1);

    let inq = [0x12u8, 0, 0, 0, 96, 0];
    let o = rig
        .command(&req(3, 0, &inq, DataDir::In, 96), &one(&rig, 0, 96), S)
        .expect("INQUIRY completes");
    // Standard INQUIRY data is 96 bytes here or shorter: success or an underrun.
    assert!(
        o.srb_status == SRB_STATUS_SUCCESS || o.srb_status == SRB_STATUS_DATA_OVERRUN,
        "{o:?}"
    );
    let mut b = [0u8; 36];
    rig.read_data(0, &mut b);
    assert_eq!(b[0] & 0x1F, 0, "a direct-access block device");
    assert_eq!(&b[8..16], b"FABBOOT ");
    assert_eq!(&b[16..28], b"SIM SRP DISK");

    let ((last10, bl10), (last16, bl16)) = capacity(&mut rig, 0);
    assert_eq!((last10, bl10), ((1 << 16) - 1, 512));
    assert_eq!((last16, bl16), ((1 << 16) - 1, 512));

    // The first sectors, as the target wrote them.
    let cdb = rw10(READ10, 0, 8);
    ok(&rig
        .command(&req(4, 0, &cdb, DataDir::In, 4096), &one(&rig, 0, 4096), S)
        .unwrap());
    let mut got = vec![0u8; 4096];
    let mut want = vec![0u8; 4096];
    rig.read_data(0, &mut got);
    rig.image_read(0, 0, &mut want);
    assert_eq!(got, want);

    // Addressing: target 1 does not exist; LUN 1 is not in the list.
    rig.submit(
        &Request {
            target: 1,
            ..req(5, 0, &inq, DataDir::In, 96)
        },
        &one(&rig, 0, 96),
    )
    .unwrap();
    rig.submit(&req(6, 1, &inq, DataDir::In, 96), &one(&rig, 0, 96))
        .unwrap();
    let done: Vec<(u32, u8)> = rig
        .port
        .done
        .iter()
        .map(|(u, o)| (*u, o.srb_status))
        .collect();
    assert_eq!(
        done,
        [
            (5, SRB_STATUS_SELECTION_TIMEOUT),
            (6, SRB_STATUS_INVALID_LUN)
        ]
    );
}

#[test]
fn logs_in_and_reads_inquiry_and_capacity_under_the_builtin_sm() {
    login_inquiry_capacity(RigConfig::default());
}

#[test]
fn logs_in_and_reads_inquiry_and_capacity_under_opensm() {
    login_inquiry_capacity(opensm());
}

/// A request in flight in the random run.
struct Pending {
    lba: u64,
    blocks: u64,
    write: bool,
    /// (data offset, length) of each segment, in transfer order.
    segs: Vec<(usize, usize)>,
    data: Vec<u8>,
}

/// Splits `len` bytes into `k` segments placed in shuffled order, with gaps, in the
/// 2 MiB area at `base`.
fn scatter(rng: &mut Rng, base: usize, len: usize, k: usize) -> Vec<(usize, usize)> {
    let k = k.clamp(1, len);
    let mut inner = std::collections::BTreeSet::new();
    while inner.len() < k - 1 {
        inner.insert(1 + rng.below(len as u64 - 1) as usize);
    }
    let mut cuts: Vec<usize> = inner.into_iter().collect();
    cuts.insert(0, 0);
    cuts.push(len);
    let lens: Vec<usize> = cuts.windows(2).map(|w| w[1] - w[0]).collect();
    let mut order: Vec<usize> = (0..lens.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let spare = (2 << 20) - len;
    let mut at = base;
    let mut placed = vec![(0, 0); lens.len()];
    let mut gap_left = spare;
    for &i in &order {
        let gap = if gap_left > 0 {
            rng.below((gap_left / lens.len()).max(1) as u64 + 1) as usize
        } else {
            0
        };
        gap_left -= gap.min(gap_left);
        at += gap;
        placed[i] = (at, lens[i]);
        at += lens[i];
    }
    placed
}

/// Random READs and WRITEs of 512 B to 1 MiB at queue depths 1 to 32, scattered over
/// 1 to 255 segments, every byte checked against the image.
fn random_io(cfg: RigConfig, count: usize, seed: u64) -> Rig {
    let blocks_on_disk = cfg.disks[0].blocks;
    let mut rig = ready(RigConfig {
        data_bytes: 32 * (2 << 20),
        ..cfg
    });
    let max_sg = rig.init.max_sg() as u64;
    let mut rng = Rng(seed);
    let mut pending: Vec<Option<Pending>> = (0..32).map(|_| None).collect();
    let (mut started, mut finished, mut bytes) = (0usize, 0usize, 0u64);
    let depths = [1usize, 2, 4, 8, 16, 32];
    let mut qd = 1;
    while finished < count {
        if started % 200 == 0 && pending.iter().all(Option::is_none) {
            qd = depths[rng.below(depths.len() as u64) as usize];
        }
        // Fill the queue with requests whose blocks no request in flight touches.
        while started < count && pending.iter().filter(|p| p.is_some()).count() < qd {
            let slot = pending.iter().position(Option::is_none).unwrap();
            // Log-uniform 1..2048 blocks.
            let blocks = (1u64 << rng.below(12)).min(2048);
            let blocks = (blocks + rng.below(blocks)).clamp(1, 2048);
            let lba = rng.below(blocks_on_disk - blocks + 1);
            if pending
                .iter()
                .flatten()
                .any(|p| lba < p.lba + p.blocks && p.lba < lba + blocks)
            {
                continue;
            }
            let len = (blocks * 512) as usize;
            let k = 1 + rng.below(max_sg.min(len as u64)) as usize;
            let segs = scatter(&mut rng, slot * (2 << 20), len, k);
            let write = rng.below(2) == 0;
            let mut data = vec![0u8; if write { len } else { 0 }];
            if write {
                rng.bytes(&mut data);
                let mut at = 0;
                for &(off, l) in &segs {
                    rig.write_data(off, &data[at..at + l]);
                    at += l;
                }
            } else {
                for &(off, l) in &segs {
                    rig.write_data(off, &vec![0xEE; l]);
                }
            }
            let cdb = if rng.below(2) == 0 {
                rw10(if write { WRITE10 } else { READ10 }, lba, blocks as u32)
            } else {
                rw16(if write { WRITE16 } else { READ16 }, lba, blocks as u32)
            };
            let dir = if write { DataDir::Out } else { DataDir::In };
            let sg: Vec<Segment> = segs
                .iter()
                .map(|&(o, l)| Segment {
                    phys: rig.data_phys(o),
                    len: l as u32,
                })
                .collect();
            if rig
                .submit(&req(slot as u32, 0, &cdb, dir, len as u32), &sg)
                .is_err()
            {
                break;
            }
            pending[slot] = Some(Pending {
                lba,
                blocks,
                write,
                segs,
                data,
            });
            started += 1;
        }
        assert!(
            rig.run(10 * S, |_, p| !p.done.is_empty()),
            "a completion within 10 s ({} in flight, state {:?}, stats {:?})",
            pending.iter().flatten().count(),
            rig.init.state(),
            rig.init.stats()
        );
        for (user, o) in std::mem::take(&mut rig.port.done) {
            let p = pending[user as usize].take().expect("a request in flight");
            ok(&o);
            let len = (p.blocks * 512) as usize;
            assert_eq!(o.transferred as usize, len);
            let mut image = vec![0u8; len];
            rig.image_read(0, p.lba, &mut image);
            let mut got = Vec::with_capacity(len);
            if p.write {
                got.extend_from_slice(&p.data);
            } else {
                for &(off, l) in &p.segs {
                    let mut b = vec![0u8; l];
                    rig.read_data(off, &mut b);
                    got.extend_from_slice(&b);
                }
            }
            assert!(
                got == image,
                "request {finished}: {} of {} blocks at {} ({} segments) differs from the image",
                if p.write { "WRITE" } else { "READ" },
                p.blocks,
                p.lba,
                p.segs.len()
            );
            bytes += len as u64;
            finished += 1;
        }
    }
    assert!(bytes > 0);
    assert_eq!(rig.init.stats().losses, 0, "no reconnect during the run");
    rig
}

fn ios() -> usize {
    std::env::var("FABBOOT_E2E_IOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[test]
fn ten_thousand_random_requests_under_the_builtin_sm() {
    random_io(RigConfig::default(), ios(), 0x5EED_0001);
}

#[test]
fn ten_thousand_random_requests_under_opensm() {
    random_io(opensm(), ios(), 0x5EED_0002);
}

/// Every segment count from 1 to the maximum; one more is refused before it reaches
/// the wire.
#[test]
fn scatter_gather_from_one_element_to_the_maximum() {
    let mut rig = ready(RigConfig::default());
    let max = rig.init.max_sg();
    assert_eq!(max, 255);
    let mut rng = Rng(7);
    for k in [1usize, 2, 3, 12, 13, 14, 58, 59, 60, 128, 200, 254, 255] {
        let blocks = 512u64; // 256 KiB
        let len = (blocks * 512) as usize;
        let segs = scatter(&mut rng, 0, len, k);
        assert_eq!(segs.len(), k);
        let mut data = vec![0u8; len];
        rng.bytes(&mut data);
        let mut at = 0;
        for &(off, l) in &segs {
            rig.write_data(off, &data[at..at + l]);
            at += l;
        }
        let sg: Vec<Segment> = segs
            .iter()
            .map(|&(o, l)| Segment {
                phys: rig.data_phys(o),
                len: l as u32,
            })
            .collect();
        let lba = 1000 + k as u64 * 200;
        let cdb = rw10(WRITE10, lba, blocks as u32);
        ok(&rig
            .command(&req(10, 0, &cdb, DataDir::Out, len as u32), &sg, S)
            .unwrap());
        let mut image = vec![0u8; len];
        rig.image_read(0, lba, &mut image);
        assert!(image == data, "{k} segments written");
        for &(off, l) in &segs {
            rig.write_data(off, &vec![0; l]);
        }
        let cdb = rw10(READ10, lba, blocks as u32);
        ok(&rig
            .command(&req(11, 0, &cdb, DataDir::In, len as u32), &sg, S)
            .unwrap());
        let mut got = Vec::new();
        for &(off, l) in &segs {
            let mut b = vec![0u8; l];
            rig.read_data(off, &mut b);
            got.extend_from_slice(&b);
        }
        assert!(got == data, "{k} segments read");
    }
    let segs = scatter(&mut rng, 0, 256 * 512, 256);
    assert_eq!(segs.len(), 256);
    let sg: Vec<Segment> = segs
        .iter()
        .map(|&(o, l)| Segment {
            phys: rig.data_phys(o),
            len: l as u32,
        })
        .collect();
    let cdb = rw10(READ10, 0, 256);
    let o = rig
        .command(&req(12, 0, &cdb, DataDir::In, 256 * 512), &sg, S)
        .unwrap();
    assert_eq!(o.srb_status, SRB_STATUS_INVALID_REQUEST);
    let sent = rig.init.stats().commands;
    assert_eq!(rig.init.stats().commands, sent, "nothing was sent for it");
}

/// A disk beyond 2 TiB needs READ CAPACITY (16) and 16-byte CDBs; a 4096-byte-sector
/// disk moves whole 4 KiB blocks.
#[test]
fn a_disk_beyond_two_tebibytes_and_a_4k_sector_disk() {
    let big = (1u64 << 32) + (1 << 20); // 2 TiB + 512 MiB of 512-byte blocks
    let mut rig = ready(RigConfig {
        disks: vec![
            Disk {
                block_size: BlockSize::B512,
                blocks: big,
            },
            Disk {
                block_size: BlockSize::B4096,
                blocks: 1 << 14,
            },
        ],
        ..RigConfig::default()
    });
    assert_eq!(rig.init.luns().len(), 2);
    let ((last10, _), (last16, bl16)) = capacity(&mut rig, 0);
    assert_eq!(last10, u32::MAX, "READ CAPACITY (10) says: use (16)");
    assert_eq!((last16, bl16), (big - 1, 512));
    let lba = big - 100;
    let mut data = vec![0u8; 64 * 512];
    Rng(9).bytes(&mut data);
    rig.write_data(0, &data);
    let cdb = rw16(WRITE16, lba, 64);
    ok(&rig
        .command(
            &req(20, 0, &cdb, DataDir::Out, data.len() as u32),
            &one(&rig, 0, data.len()),
            S,
        )
        .unwrap());
    let mut image = vec![0u8; data.len()];
    rig.image_read(0, lba, &mut image);
    assert!(image == data, "written above 2 TiB");
    rig.write_data(0, &vec![0; data.len()]);
    let cdb = rw16(READ16, lba, 64);
    ok(&rig
        .command(
            &req(21, 0, &cdb, DataDir::In, data.len() as u32),
            &one(&rig, 0, data.len()),
            S,
        )
        .unwrap());
    let mut got = vec![0u8; data.len()];
    rig.read_data(0, &mut got);
    assert!(got == data, "read back above 2 TiB");

    let ((_, bl10), (last16, bl16)) = capacity(&mut rig, 1);
    assert_eq!((bl10, last16, bl16), (4096, (1 << 14) - 1, 4096));
    let mut data = vec![0u8; 8 * 4096];
    Rng(10).bytes(&mut data);
    rig.write_data(0, &data);
    let cdb = rw10(WRITE10, 77, 8);
    ok(&rig
        .command(
            &req(22, 1, &cdb, DataDir::Out, data.len() as u32),
            &one(&rig, 0, data.len()),
            S,
        )
        .unwrap());
    let mut image = vec![0u8; data.len()];
    rig.image_read(1, 77, &mut image);
    assert!(image == data, "4096-byte sectors written");
}

fn rejected_login(reason: u32) -> Rig {
    let mut rig = Rig::new(RigConfig {
        srpt: match reason {
            0x0001_0001 => |c| c.max_channels = 0,
            _ => |_| {},
        },
        ..RigConfig::default()
    });
    if reason != 0x0001_0001 {
        rig.world
            .target(1)
            .unwrap()
            .srpt
            .set_fault(SrptFault::RejectLogins(reason));
    }
    assert_eq!(rig.until_ready(60 * S), State::Failed);
    rig
}

/// Each SRP_LOGIN_REJ reason that allows no retry ends in a clear fault and an
/// event-log entry naming the reason.
#[test]
fn each_login_reject_is_reported_with_its_reason() {
    for reason in [
        0x0001_0000u32,
        0x0001_0001,
        0x0001_0003,
        0x0001_0005,
        0x0001_0006,
    ] {
        let rig = rejected_login(reason);
        assert_eq!(
            rig.init.fault(),
            Some(Fault::LoginRejected { reason }),
            "reason {reason:#x}"
        );
        assert!(
            rig.port.events.contains(&Event::LoginRejected {
                reason: reason as u16
            }),
            "{:?}",
            rig.port.events
        );
    }
}

/// A target that takes only direct descriptors: ib_srpt-style, it accepts a login
/// asking for both and answers SUPPORTED BUFFER FORMATS = direct, so the
/// scatter-gather limit becomes one element; a request of two segments is refused.
/// And a target that rejects the login for its formats (0x00010004) gets a second,
/// direct-only login.
#[test]
fn a_direct_only_target_gets_a_direct_only_login() {
    let mut rig = ready(RigConfig {
        srpt: |c| c.indirect_ok = false,
        ..RigConfig::default()
    });
    assert_eq!(rig.init.max_sg(), 1);
    let cdb = rw10(READ10, 0, 8);
    ok(&rig
        .command(&req(1, 0, &cdb, DataDir::In, 4096), &one(&rig, 0, 4096), S)
        .unwrap());
    let two = [
        Segment {
            phys: rig.data_phys(0),
            len: 2048,
        },
        Segment {
            phys: rig.data_phys(8192),
            len: 2048,
        },
    ];
    let o = rig
        .command(&req(2, 0, &cdb, DataDir::In, 4096), &two, S)
        .unwrap();
    assert_eq!(o.srb_status, SRB_STATUS_INVALID_REQUEST);

    let mut rig = Rig::new(RigConfig::default());
    rig.world
        .target(1)
        .unwrap()
        .srpt
        .set_fault(SrptFault::RejectLogins(0x0001_0004));
    rig.run(60 * S, |i, _| i.stats().login_retries >= 1);
    rig.world.target(1).unwrap().srpt.set_fault(SrptFault::None);
    assert_eq!(rig.until_ready(60 * S), State::Ready);
    assert_eq!(rig.init.stats().login_retries, 1);
    let n = rig.init.negotiated().unwrap();
    assert_eq!(
        (n.formats, rig.init.max_sg()),
        (fabboot::srp::desc::BufferFormats::DIRECT, 1)
    );
}

/// A target that takes smaller IUs: the login steps down until it is accepted, and
/// the scatter-gather limit follows the IU length.
#[test]
fn a_smaller_target_iu_limit_steps_the_login_down() {
    let rig = ready(RigConfig {
        srpt: |c| c.max_req_it_iu_len = 1024,
        ..RigConfig::default()
    });
    let n = rig.init.negotiated().unwrap();
    assert!(n.max_it_iu_len <= 1024, "{n:?}");
    assert_eq!(
        rig.init.max_sg(),
        fabboot::srp::cmd::max_sg_entries(n.max_it_iu_len)
    );
    assert!(rig.init.stats().login_retries >= 1);
}

/// The SA answers BUSY for a while: the initiator backs off and gets its path.
#[test]
fn sa_busy_is_waited_out() {
    let mut rig = Rig::new(RigConfig::default());
    rig.world.manager().set_sa_fault(SaFault::Busy);
    rig.run(300 * MS, |_, _| false);
    assert_eq!(rig.init.state(), State::Path);
    rig.world.manager().set_sa_fault(SaFault::None);
    assert_eq!(rig.until_ready(60 * S), State::Ready);
    assert!(
        rig.port.events.is_empty()
            || rig
                .port
                .events
                .iter()
                .all(|e| matches!(e, Event::NoPath { .. }))
    );
}

/// A REQ rejected as a stale connection (CM reason 10) is retried after a delay.
#[test]
fn a_stale_connection_is_retried() {
    let mut rig = Rig::new(RigConfig::default());
    rig.world
        .target(1)
        .unwrap()
        .srpt
        .set_fault(SrptFault::StaleNextReq);
    assert_eq!(rig.until_ready(60 * S), State::Ready);
    assert_eq!(rig.init.stats().stale, 1);
}

/// Malformed and hostile SRP_RSPs: a typed error (counted, logged); a response
/// that names its command fails it for retry, one that names none leaves the command
/// to its timeout, which rebuilds the channel and sends it again; the next command
/// works.
#[test]
fn malformed_responses_fail_the_command_not_the_driver() {
    for kind in [
        MalformedRsp::Short,
        MalformedRsp::SenseBeyondIu,
        MalformedRsp::UnknownTag,
        MalformedRsp::UnknownOpcode,
    ] {
        let mut rig = ready(RigConfig::default());
        rig.world
            .target(1)
            .unwrap()
            .srpt
            .set_fault(SrptFault::MalformNextRsp(kind));
        let cdb = rw10(READ10, 0, 8);
        let o = rig
            .command(
                &req(1, 0, &cdb, DataDir::In, 4096),
                &one(&rig, 0, 4096),
                120 * S,
            )
            .unwrap_or_else(|| panic!("{kind:?}: the command ends"));
        // A response that names no command in flight (an unknown tag, or an IU whose
        // opcode is unknown) cannot end one: the command's timeout rebuilds the
        // channel and sends it again, and it succeeds.
        if matches!(kind, MalformedRsp::UnknownTag | MalformedRsp::UnknownOpcode) {
            ok(&o);
            assert_eq!(rig.init.stats().reissued, 1, "{kind:?}");
            assert_eq!(rig.init.stats().losses, 1, "{kind:?}");
        } else {
            assert_ne!(o.srb_status, SRB_STATUS_SUCCESS, "{kind:?}");
        }
        assert!(rig.init.stats().malformed >= 1, "{kind:?}");
        assert!(
            rig.port
                .events
                .iter()
                .any(|e| matches!(e, Event::MalformedReply { .. })),
            "{kind:?}"
        );
        assert_eq!(rig.until_ready(60 * S), State::Ready, "{kind:?}");
        let o = rig
            .command(&req(2, 0, &cdb, DataDir::In, 4096), &one(&rig, 0, 4096), S)
            .unwrap();
        ok(&o);
    }
}

/// SRP_CRED_REQ and SRP_AER_REQ are answered; SRP_T_LOGOUT and a DREQ from the
/// target make the initiator log in again.
#[test]
fn target_requests_logout_and_dreq() {
    let mut rig = ready(RigConfig::default());
    let ch = channel(&mut rig);
    let now = rig.clock.now_ns();
    rig.world
        .target(1)
        .unwrap()
        .initiate(now, |t| t.send_cred_req(ch, 3));
    rig.world.target(1).unwrap().initiate(now, |t| {
        t.send_aer_req(
            ch,
            [0; 8],
            &[
                0x70, 0, 6, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x3F, 0x0E, 0, 0, 0, 0,
            ],
        )
    });
    rig.run(10 * MS, |_, _| false);
    assert_eq!(rig.init.stats().target_requests, 2);
    assert_eq!(rig.init.state(), State::Ready);

    let logins = rig.init.stats().logins;
    let now = rig.clock.now_ns();
    rig.world
        .target(1)
        .unwrap()
        .initiate(now, |t| t.send_t_logout(ch, 1));
    rig.run(10 * MS, |i, _| i.state() != State::Ready);
    assert_eq!(rig.until_ready(60 * S), State::Ready);
    assert_eq!(rig.init.stats().logins, logins + 1);

    let ch = channel(&mut rig);
    let now = rig.clock.now_ns();
    rig.world
        .target(1)
        .unwrap()
        .initiate(now, |t| t.disconnect(now, ch));
    rig.run(10 * MS, |i, _| i.state() != State::Ready);
    assert_eq!(rig.until_ready(60 * S), State::Ready);
    assert_eq!(rig.init.stats().logins, logins + 2);
    let cdb = rw10(READ10, 0, 8);
    ok(&rig
        .command(&req(1, 0, &cdb, DataDir::In, 4096), &one(&rig, 0, 4096), S)
        .unwrap());
}

fn channel(rig: &mut Rig) -> ChannelId {
    let t = rig.world.target(1).unwrap();
    t.srpt
        .channels()
        .map(|(id, _)| id)
        .last()
        .expect("a channel")
}

/// The port's LUN reset becomes an SRP LUN RESET; a command in flight when the
/// channel is lost is held and sent again on the next channel, and its data is the
/// disk's.
#[test]
fn lun_reset_and_a_lost_command_sent_again() {
    let mut rig = ready(RigConfig::default());
    let now = rig.now_us();
    rig.init.reset_lun(now, 77, 0, &mut rig.port).unwrap();
    rig.run(S, |_, p| !p.done.is_empty());
    let (user, o) = rig.port.done.pop().unwrap();
    assert_eq!((user, o.srb_status), (77, SRB_STATUS_SUCCESS));

    let cdb = rw10(READ10, 0, 2048);
    rig.submit(
        &req(5, 0, &cdb, DataDir::In, 1 << 20),
        &one(&rig, 0, 1 << 20),
    )
    .unwrap();
    rig.world
        .target(1)
        .unwrap()
        .srpt
        .set_fault(SrptFault::DropNextIu);
    let _ = rig.world.target(1);
    // The command is swallowed: after the command timeout the channel is rebuilt and
    // the command sent again on it.
    assert!(rig.run(120 * S, |_, p| !p.done.is_empty()));
    let (user, o) = rig.port.done.pop().unwrap();
    assert_eq!((user, o.srb_status), (5, SRB_STATUS_SUCCESS));
    assert_eq!(o.transferred, 1 << 20);
    assert_eq!(rig.init.stats().reissued, 1);
    assert_eq!(rig.init.stats().losses, 1);
    let mut got = vec![0u8; 1 << 20];
    rig.read_data(0, &mut got);
    let mut want = vec![0u8; 1 << 20];
    rig.image_read(0, 0, &mut want);
    assert!(
        got == want,
        "the data read on the new channel is the disk's"
    );
    assert_eq!(rig.init.state(), State::Ready);
    assert!(
        rig.port
            .events
            .iter()
            .any(|e| matches!(e, Event::Reconnected { .. })),
        "{:?}",
        rig.port.events
    );
}

/// Commands held while the channel is down end with BUS RESET when the port resets
/// the bus (its own timeout), and only then; after the reconnect nothing is sent
/// twice.
#[test]
fn a_bus_reset_while_disconnected_fails_held_commands_once() {
    let mut rig = ready(RigConfig::default());
    let cdb = rw10(READ10, 0, 8);
    rig.submit(&req(9, 0, &cdb, DataDir::In, 4096), &one(&rig, 0, 4096))
        .unwrap();
    // The cable goes at once: the command is on the wire, unanswered.
    rig.world.fabric().set_link_up(0, false);
    let now = rig.now_us();
    // A bus reset while the channel is up ends nothing early.
    rig.init.reset_bus(&mut rig.port);
    assert!(rig.port.done.is_empty());
    rig.run(40 * S, |i, _| i.held() > 0);
    assert_eq!(rig.init.held(), 1, "held after the loss, not failed");
    assert!(rig.port.done.is_empty());
    rig.init.reset_bus(&mut rig.port);
    let (user, o) = rig.port.done.pop().unwrap();
    assert_eq!((user, o.srb_status), (9, SRB_STATUS_BUS_RESET));
    assert_eq!(rig.init.held(), 0);
    assert!(rig.now_us() > now);
    rig.world.fabric().set_link_up(0, true);
    assert_eq!(rig.until_ready(120 * S), State::Ready);
    rig.run(S, |_, _| false);
    assert!(rig.port.done.is_empty(), "not completed twice");
    assert_eq!(rig.init.stats().reissued, 0);
}

/// With `--pcap`, a run of the driver's own stack is a capture tshark reads without a
/// malformed packet: the SA query, the CM REQ/REP/RTU carrying the SRP login, and
/// SRP IUs and RDMA on the RC channel.
#[test]
fn the_driver_stack_leaves_a_capture_tshark_reads() {
    let pcap = std::env::temp_dir().join(format!("fabboot-initiator-{}.pcap", std::process::id()));
    let r = fabboot_sim::drive::drive(SmChoice::Builtin, Some(&pcap), 64, 2).unwrap();
    assert!(r.events.is_empty(), "{:?}", r.events);
    let tshark = tshark();
    let mut read = capture_for_tshark(&tshark, &pcap);
    // tshark guesses at upper-layer protocols in RDMA payloads (SDP, iSER, NVMe-oF,
    // ...); disk data is none of them, and a guess that fails reads as "malformed".
    // The IB headers, MADs and CRCs are what is checked here.
    for p in [
        "infiniband_sdp",
        "smc",
        "smb_direct",
        "rpcordma",
        "nvme-rdma",
        "lnet",
        "iser",
    ] {
        read.insert(0, p.into());
        read.insert(0, "--disable-protocol".into());
    }
    let frames = dissect(&tshark, &read);
    assert_eq!(frames.len() as u64, r.captured);
    let bytes = std::fs::read(&pcap).unwrap();
    let (_, records) = common::tshark::read_pcap(&bytes);
    let (mut sa, mut req, mut rep, mut rtu, mut sends, mut rdma) = (0, 0, 0, 0, 0, 0);
    for (f, rec) in frames.iter().zip(&records) {
        assert!(!f.contains_key("_ws.malformed"), "malformed: {f:?}");
        let n = rec.data.len();
        assert_eq!(
            &rec.data[n - 6..n - 2],
            &reference_icrc(&rec.data)[..],
            "ICRC"
        );
        if f.contains_key("infiniband.mad.mgmtclass") {
            match (
                get(f, "infiniband.mad.mgmtclass"),
                get(f, "infiniband.mad.attributeid"),
            ) {
                (0x03, 0x35) => sa += 1,
                (0x07, 0x10) => req += 1,
                (0x07, 0x13) => rep += 1,
                (0x07, 0x14) => rtu += 1,
                _ => {}
            }
        } else if f.contains_key("infiniband.reth.r_key") {
            rdma += 1;
        } else if f.contains_key("infiniband.bth.opcode") && get(f, "infiniband.bth.opcode") == 4 {
            sends += 1;
        }
    }
    let _ = std::fs::remove_file(&pcap);
    let _ = std::fs::remove_file(pcap.with_extension("user0.pcap"));
    // Each packet is captured on every link it crosses (host → switch → target).
    assert!(
        sa >= 2 && req >= 2 && rep >= 2 && rtu >= 2 && sends >= 2 * 67 && rdma > 0,
        "{sa} SA, {req} REQ, {rep} REP, {rtu} RTU, {sends} SENDs, {rdma} RETH"
    );
}
