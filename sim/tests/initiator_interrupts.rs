//! The initiator driven by interrupts alone, as a kernel port driver would drive it:
//! `poll` runs only when the function raises its MSI-X message or at the time `poll`
//! itself asked for, and after every poll `arm_interrupts` arms what the poll saw
//! fire. From port bring-up through login to 1,000 random READs and WRITEs, every byte
//! checked against the target's disk image; the figures per request (register writes
//! with arming, register reads, interrupts) are printed.

use fabboot::initiator::{Initiator, Outcome, Request, Segment, State};
use fabboot::port::abi::SRB_STATUS_SUCCESS;
use fabboot::srp::cmd::DataDir;
use fabboot_sim::hal::SharedHal;
use fabboot_sim::srpt::{ChannelId, SrptFault};
use fabboot_sim::world::Drive;
use fabboot_sim::world::rig::{Recorder, Rig, RigConfig};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

/// What the port glue keeps between interrupts.
#[derive(Debug, Default)]
struct Glue {
    /// When `poll` asked to run next.
    wake_us: Option<u64>,
    /// MSI-X messages taken.
    interrupts: u64,
    /// Polls run, and those a timer (not an interrupt) started.
    polls: u64,
    timer_polls: u64,
}

/// Runs the world until `done`, polling the initiator only on an MSI-X message or at
/// its requested wake-up, and arming interrupts after every poll. An interrupt raised
/// by the arming itself (a completion that arrived since the poll) is taken at once,
/// as the CPU would take it.
fn run_irq(
    rig: &mut Rig,
    glue: &mut Glue,
    limit_ns: u64,
    mut done: impl FnMut(&Initiator<SharedHal>, &Recorder) -> bool,
) -> bool {
    let Rig {
        world,
        init,
        port,
        clock,
        dev,
        ..
    } = rig;
    world.run_driven(limit_ns, |_| {
        let now = clock.now_us();
        let mut due = glue.wake_us.is_some_and(|w| w <= now);
        loop {
            let messages = dev.take_msix();
            glue.interrupts += messages.len() as u64;
            if messages.is_empty() && !due {
                break;
            }
            if messages.is_empty() {
                glue.timer_polls += 1;
            }
            due = false;
            glue.wake_us = init.poll(now, port);
            glue.polls += 1;
            init.arm_interrupts()
                .expect("doorbell records inside the region");
        }
        Drive {
            done: done(init, port),
            wake_ns: glue.wake_us.map(|us| us.saturating_mul(1000)),
        }
    })
}

/// A deterministic generator for the test's random choices.
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
}

/// Bytes of buffer each request slot has.
const SLOT: usize = 512 << 10;
const SLOTS: usize = 32;

struct Pending {
    lba: u64,
    blocks: u64,
    write: bool,
    segs: Vec<(usize, usize)>,
    data: Vec<u8>,
}

/// `len` bytes at slot `slot` cut into `k` pieces, each after a small gap.
fn segments(rng: &mut Rng, slot: usize, len: usize, k: usize) -> Vec<(usize, usize)> {
    let k = k.clamp(1, len);
    let mut cuts: Vec<usize> = (1..k)
        .map(|_| 1 + rng.below(len as u64 - 1) as usize)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.insert(0, 0);
    cuts.push(len);
    let mut room = SLOT - len;
    let mut at = slot * SLOT;
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let gap = (rng.below(64) as usize).min(room);
        room -= gap;
        at += gap;
        out.push((at, w[1] - w[0]));
        at += w[1] - w[0];
    }
    assert!(at <= (slot + 1) * SLOT);
    out
}

/// Figures of one phase.
#[derive(Debug)]
struct Figures {
    requests: u64,
    writes: u64,
    reads: u64,
    arm_writes: u64,
    interrupts: u64,
    polls: u64,
    timer_polls: u64,
}

impl Figures {
    fn print(&self, what: &str) {
        let per = |v: u64| v as f64 / self.requests as f64;
        eprintln!(
            "{what}: {} requests; per request: {:.2} register writes ({:.2} of them arming), \
             {:.2} register reads, {:.2} interrupts, {:.2} polls ({} polls by timer)",
            self.requests,
            per(self.writes),
            per(self.arm_writes),
            per(self.reads),
            per(self.interrupts),
            per(self.polls),
            self.timer_polls
        );
    }
}

/// `count` random READs and WRITEs of 512 B to 256 KiB at queue depth `qd` (or a
/// random depth from 1 to 32 every 100 requests when `qd` is 0), 1 to 16 segments
/// each; every completion checked against the image.
fn random_io(rig: &mut Rig, glue: &mut Glue, rng: &mut Rng, count: usize, qd: usize) -> Figures {
    let blocks_on_disk = 1u64 << 16;
    let start_counts = rig.dev.mmio_counts();
    let start_arms = rig.init.stats().arm_writes;
    let (start_irq, start_polls, start_timer) = (glue.interrupts, glue.polls, glue.timer_polls);
    let mut pending: Vec<Option<Pending>> = (0..SLOTS).map(|_| None).collect();
    let (mut started, mut finished) = (0usize, 0usize);
    let mut depth = qd.max(1);
    while finished < count {
        if qd == 0 && started % 100 == 0 && pending.iter().all(Option::is_none) {
            depth = [1usize, 2, 4, 8, 16, 32][rng.below(6) as usize];
        }
        while started < count && pending.iter().flatten().count() < depth {
            let slot = pending.iter().position(Option::is_none).unwrap();
            // Log-uniform 1 to 512 blocks.
            let scale = 1u64 << rng.below(10);
            let blocks = (1 + rng.below(scale)).min(512);
            let lba = rng.below(blocks_on_disk - blocks + 1);
            if pending
                .iter()
                .flatten()
                .any(|p| lba < p.lba + p.blocks && p.lba < lba + blocks)
            {
                continue;
            }
            let len = (blocks * 512) as usize;
            let k = 1 + rng.below(16) as usize;
            let segs = segments(rng, slot, len, k);
            let write = rng.below(2) == 0;
            let mut data = vec![0u8; if write { len } else { 0 }];
            if write {
                for b in data.iter_mut() {
                    *b = rng.next() as u8;
                }
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
            let mut cdb = [0u8; 10];
            cdb[0] = if write { 0x2A } else { 0x28 };
            cdb[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
            cdb[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
            let sg: Vec<Segment> = segs
                .iter()
                .map(|&(o, l)| Segment {
                    phys: rig.data_phys(o),
                    len: l as u32,
                })
                .collect();
            let req = Request {
                user: slot as u32,
                target: 0,
                lun: 0,
                cdb: &cdb,
                dir: if write { DataDir::Out } else { DataDir::In },
                transfer_len: len as u32,
            };
            if rig.submit(&req, &sg).is_err() {
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
            run_irq(rig, glue, 10 * S, |_, p| !p.done.is_empty()),
            "a completion within 10 s by interrupt ({} in flight, state {:?}, stats {:?})",
            pending.iter().flatten().count(),
            rig.init.state(),
            rig.init.stats()
        );
        for (user, o) in std::mem::take(&mut rig.port.done) {
            let p = pending[user as usize].take().expect("a request in flight");
            check(rig, &o, &p, finished);
            finished += 1;
        }
    }
    let end = rig.dev.mmio_counts();
    Figures {
        requests: count as u64,
        writes: end.writes - start_counts.writes,
        reads: end.reads - start_counts.reads,
        arm_writes: rig.init.stats().arm_writes - start_arms,
        interrupts: glue.interrupts - start_irq,
        polls: glue.polls - start_polls,
        timer_polls: glue.timer_polls - start_timer,
    }
}

fn check(rig: &mut Rig, o: &Outcome, p: &Pending, n: usize) {
    assert_eq!(o.srb_status, SRB_STATUS_SUCCESS, "request {n}: {o:?}");
    let len = (p.blocks * 512) as usize;
    assert_eq!(o.transferred as usize, len);
    let mut image = vec![0u8; len];
    rig.image_read(0, p.lba, &mut image);
    let got = if p.write {
        p.data.clone()
    } else {
        let mut got = Vec::with_capacity(len);
        for &(off, l) in &p.segs {
            let mut b = vec![0u8; l];
            rig.read_data(off, &mut b);
            got.extend_from_slice(&b);
        }
        got
    };
    assert!(
        got == image,
        "request {n}: {} of {} blocks at {} differs from the image",
        if p.write { "WRITE" } else { "READ" },
        p.blocks,
        p.lba
    );
}

#[test]
fn a_thousand_random_requests_driven_by_msix_alone() {
    let mut rig = Rig::new(RigConfig {
        data_bytes: SLOTS * SLOT,
        ..RigConfig::default()
    });
    let mut glue = Glue {
        wake_us: Some(rig.now_us()),
        ..Glue::default()
    };
    // Port ACTIVE, SA path, CM connection, login and REPORT LUNS, by interrupt and the
    // initiator's own timers.
    run_irq(&mut rig, &mut glue, 60 * S, |i, _| {
        matches!(i.state(), State::Ready | State::Failed)
    });
    assert_eq!(
        rig.init.state(),
        State::Ready,
        "fault {:?}, events {:?}",
        rig.init.fault(),
        rig.port.events
    );
    assert!(glue.interrupts > 0, "MADs and the login came by interrupt");
    eprintln!(
        "to ready: {} interrupts, {} polls ({} by timer), {} arming writes",
        glue.interrupts,
        glue.polls,
        glue.timer_polls,
        rig.init.stats().arm_writes
    );

    let mut rng = Rng(0x1A7E_5EED);
    let one = random_io(&mut rig, &mut glue, &mut rng, 200, 1);
    one.print("queue depth 1");
    let mixed = random_io(&mut rig, &mut glue, &mut rng, 800, 0);
    mixed.print("queue depths 1-32");
    for f in [&one, &mixed] {
        assert_eq!(f.reads, 0, "no register read on the I/O path");
        assert_eq!(f.timer_polls, 0, "every completion came by interrupt");
        assert!(f.interrupts > 0 && f.interrupts <= f.polls);
        // Each request: its send doorbell, and at most the re-arming of the RC CQ and
        // the EQ after each of its (at most two: send and response) interrupts.
        assert!(f.writes <= f.requests * 5, "{f:?}");
        assert!(f.arm_writes <= f.polls * 3, "{f:?}");
    }
    assert_eq!(
        one.interrupts, one.polls,
        "at depth 1 every poll is an interrupt's"
    );
    let stats = rig.init.stats();
    assert_eq!(stats.losses, 0, "no reconnect during the run");
    assert_eq!(stats.rc_errors, 0);
    assert_eq!(rig.dev.violations(), [], "no stale arm, no EQ overrun");
}

/// One 4 KiB READ of LBA 0, waited for by interrupt; its outcome.
fn read_first_page(rig: &mut Rig, glue: &mut Glue, user: u32, limit_ns: u64) -> Option<Outcome> {
    let cdb = [0x28u8, 0, 0, 0, 0, 0, 0, 0, 8, 0];
    let req = Request {
        user,
        target: 0,
        lun: 0,
        cdb: &cdb,
        dir: DataDir::In,
        transfer_len: 4096,
    };
    let sg = [Segment {
        phys: rig.data_phys(0),
        len: 4096,
    }];
    rig.submit(&req, &sg).ok()?;
    run_irq(rig, glue, limit_ns, |_, p| {
        p.done.iter().any(|(u, _)| *u == user)
    });
    let at = rig.port.done.iter().position(|(u, _)| *u == user)?;
    Some(rig.port.done.remove(at).1)
}

fn until_ready(rig: &mut Rig, glue: &mut Glue) {
    run_irq(rig, glue, 60 * S, |i, _| {
        matches!(i.state(), State::Ready | State::Failed)
    });
    assert_eq!(rig.init.state(), State::Ready, "{:?}", rig.init.fault());
}

fn channel(rig: &mut Rig) -> ChannelId {
    let t = rig.world.target(1).unwrap();
    t.srpt
        .channels()
        .map(|(id, _)| id)
        .last()
        .expect("a channel")
}

/// The channel lost three ways (the target's T_LOGOUT, its DREQ, a command it
/// swallows until the command timeout, which is then sent again) and rebuilt each
/// time, with nothing but interrupts and the initiator's own wake-ups to drive it.
#[test]
fn losses_and_timeouts_are_ridden_out_in_interrupt_mode() {
    let mut rig = Rig::new(RigConfig::default());
    let mut glue = Glue {
        wake_us: Some(rig.now_us()),
        ..Glue::default()
    };
    until_ready(&mut rig, &mut glue);
    let ok = |o: Option<Outcome>| assert_eq!(o.map(|o| o.srb_status), Some(SRB_STATUS_SUCCESS));
    ok(read_first_page(&mut rig, &mut glue, 1, S));

    let ch = channel(&mut rig);
    let now = rig.clock.now_ns();
    rig.world
        .target(1)
        .unwrap()
        .initiate(now, |t| t.send_t_logout(ch, 1));
    run_irq(&mut rig, &mut glue, 10 * MS, |i, _| {
        i.state() != State::Ready
    });
    until_ready(&mut rig, &mut glue);
    ok(read_first_page(&mut rig, &mut glue, 2, S));

    let ch = channel(&mut rig);
    let now = rig.clock.now_ns();
    rig.world
        .target(1)
        .unwrap()
        .initiate(now, |t| t.disconnect(now, ch));
    run_irq(&mut rig, &mut glue, 10 * MS, |i, _| {
        i.state() != State::Ready
    });
    until_ready(&mut rig, &mut glue);
    ok(read_first_page(&mut rig, &mut glue, 3, S));

    // Swallowed: only the command's deadline (a wake-up poll asked for) rebuilds the
    // channel, on which the command is sent again and succeeds.
    rig.world
        .target(1)
        .unwrap()
        .srpt
        .set_fault(SrptFault::DropNextIu);
    let timers_before = glue.timer_polls;
    let o = read_first_page(&mut rig, &mut glue, 4, 120 * S).expect("ended after its timeout");
    assert_eq!(o.srb_status, SRB_STATUS_SUCCESS);
    assert_eq!(rig.init.stats().reissued, 1);
    assert!(
        glue.timer_polls > timers_before,
        "the deadline was a timer's"
    );
    until_ready(&mut rig, &mut glue);
    ok(read_first_page(&mut rig, &mut glue, 5, S));
    assert_eq!(rig.init.stats().logins, 4);
    assert_eq!(rig.dev.violations(), []);
}
