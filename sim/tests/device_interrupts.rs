//! Completion interrupts and the internal timer, against the model: CQs armed by their
//! doorbell write one completion event and disarm, EQs armed by theirs raise one MSI-X
//! message, the model refuses stale or misdirected doorbells, and the timer reads
//! consistently and counts at the frequency the capabilities report, which bring-up
//! hands to the platform.

use std::cell::Cell;

use fabboot_hca::Mmio;
use fabboot_hca::bringup::{self, BringupConfig};
use fabboot_hca::dma::{DmaRegion, Span};
use fabboot_hca::hal::Hal;
use fabboot_hca::ifc::hca_cap::cmd_hca_cap as cap;
use fabboot_hca::init_seg::offset;
use fabboot_hca::objects::{ENTRY, event};
use fabboot_hca::plan::{MAD_RECV_SLOTS, MAD_SLOT, MemoryPlan, PlanConfig};
use fabboot_hca::queues::{ArmMode, UAR_CQ_DB, UAR_EQ_ARM, UAR_EQ_CI, UAR_PAGE, arm_word};
use fabboot_hca::resources::{self, EQ_EVENTS, GSI_QKEY, Queues, Resources};
use fabboot_hca::timer::{self, DeviceClock};
use fabboot_hca::wqe::{AddressVector, CqeOpcode, GRH_BYTES};
use fabboot_sim::clock::Clock;
use fabboot_sim::device::datapath::ud_frame;
use fabboot_sim::device::fw::DEVICE_FREQUENCY_KHZ;
use fabboot_sim::device::objects::CqArm;
use fabboot_sim::device::{Mlx5Function, Violation};
use fabboot_sim::hal::SimHal;
use fabboot_sim::memory::HostMemory;
use fabboot_sim::scenario::BAR0;
use fabboot_sim::wire::IbPacket;

const LID: u16 = 0x11;

struct Node<'a> {
    dev: &'a Mlx5Function,
    hal: SimHal<'a>,
    dma: DmaRegion,
    plan: MemoryPlan,
    res: Resources,
    q: Queues,
}

fn node<'a>(dev: &'a Mlx5Function, memory: &HostMemory, clock: &Clock) -> Node<'a> {
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    dev.attach_memory(memory.region());
    dev.firmware_mut().port.activate(LID, 1, 0, 18);
    let hal = SimHal::new(dev, clock.clone());
    let dma = memory.region();
    let mut hca = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT).unwrap();
    let res = resources::open(&mut hca, &hal, &dma).unwrap();
    let q = Queues::new(&plan, &res);
    Node {
        dev,
        hal,
        dma,
        plan,
        res,
        q,
    }
}

fn memory() -> HostMemory {
    HostMemory::new(MemoryPlan::new(PlanConfig::BOOT).total, 0x1_0000_0000)
}

impl Node<'_> {
    /// A MAD to LID 1 on QP1: its send completion is written at once (a CQE on QP1's CQ).
    fn send_mad(&mut self) {
        let buf = Span {
            offset: self.plan.mad_buffers.offset + MAD_RECV_SLOTS * MAD_SLOT,
            len: 256,
        };
        let to = AddressVector {
            dqpn: 1,
            qkey: GSI_QKEY,
            dlid: 1,
            sl: 0,
            path_bits: 0,
        };
        self.q
            .gsi_sq
            .post_ud_send(&self.hal, &self.dma, &to, buf)
            .unwrap();
        self.dev.take_outbox();
    }

    /// Reads every CQE of QP1's CQ, retiring its sends and receives; how many there
    /// were.
    fn reap_gsi(&mut self) -> usize {
        let mut n = 0;
        while let Some(c) = self.q.gsi_cq.poll(&self.dma).unwrap() {
            if c.opcode == CqeOpcode::Req {
                self.q.gsi_sq.complete(c.wqe_counter);
            } else {
                self.q.gsi_rq.complete(c.wqe_counter);
            }
            n += 1;
        }
        n
    }

    /// Posts one receive on QP1 (GRH, then the MAD).
    fn post_receive(&mut self, i: usize) {
        let at = self.plan.mad_buffers.offset + i * MAD_SLOT;
        let bufs = [
            Span {
                offset: at,
                len: GRH_BYTES,
            },
            Span {
                offset: at + GRH_BYTES,
                len: 256,
            },
        ];
        self.q.gsi_rq.post(&self.dma, &bufs).unwrap();
    }

    /// A MAD arrives on QP1, with or without the solicited-event bit.
    fn arrive(&self, solicited: bool) {
        let frame = ud_frame(0x01, LID, 0, 0xFFFF, 1, 1, GSI_QKEY, 3, vec![0x5A; 256]).unwrap();
        let mut p = IbPacket::decode(&frame).unwrap();
        p.bth.se = solicited;
        self.dev.deliver(&p.encode().unwrap());
    }

    /// Every event on the EQ, each passed to the queues' bookkeeping.
    fn events(&mut self) -> Vec<fabboot_hca::queues::Event> {
        let mut out = Vec::new();
        while let Some(e) = self.q.eq.poll(&self.dma).unwrap() {
            self.q.on_event(&e);
            out.push(e);
        }
        out
    }

    fn cq_arm(&self, cqn: u32) -> Option<CqArm> {
        self.dev.firmware().objects.cqs[&cqn].arm
    }

    fn uar(&self, within: usize) -> usize {
        self.res.uar as usize * UAR_PAGE + within
    }
}

#[test]
fn the_eq_subscribes_to_completions_and_every_cq_reports_to_it() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let n = node(&dev, &memory, &clock);
    assert_ne!(EQ_EVENTS & 1 << event::COMPLETION, 0);
    let fw = dev.firmware();
    assert_eq!(fw.objects.eqs.len(), 1);
    assert_eq!(fw.objects.eqs[&n.res.eqn].events, EQ_EVENTS);
    assert_eq!(fw.objects.cqs.len(), 2);
    for (cqn, cq) in &fw.objects.cqs {
        assert_eq!(cq.eqn, n.res.eqn, "CQ {cqn:#x}");
        assert_eq!(cq.arm, None, "CQ {cqn:#x} starts disarmed");
    }
}

#[test]
fn an_armed_cq_writes_one_completion_event_and_disarms() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    let cqn = n.res.gsi_cqn;

    // Never armed: CQEs, no event.
    n.send_mad();
    assert_eq!(n.reap_gsi(), 1);
    assert!(n.events().is_empty());

    // Armed: one 64-bit write, the arm word also in the record's second dword.
    let before = dev.mmio_counts();
    assert!(n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap());
    let after = dev.mmio_counts();
    assert_eq!(
        (after.reads, after.writes),
        (before.reads, before.writes + 1)
    );
    assert_eq!(n.cq_arm(cqn), Some(CqArm::Next));
    let dbr = n.plan.doorbells.gsi_cq.offset;
    assert_eq!(n.dma.read_be32(dbr).unwrap(), 1, "consumer index record");
    assert_eq!(
        n.dma.read_be32(dbr + 4).unwrap(),
        arm_word(0, ArmMode::Next, 1)
    );
    assert_eq!(arm_word(0, ArmMode::Next, 1), 0x0000_0001);
    assert_eq!(arm_word(3, ArmMode::Solicited, 0x12_3456), 0x3112_3456);
    // Arming again while armed writes nothing.
    assert!(!n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap());
    assert!(!n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Solicited).unwrap());
    assert_eq!(dev.mmio_counts().writes, after.writes);

    // Two CQEs: one completion event, and the CQ disarms after it.
    n.send_mad();
    n.send_mad();
    assert_eq!(n.cq_arm(cqn), None);
    assert_eq!(dev.firmware().objects.cqs[&cqn].events, 1);
    // The EQE itself: type 0x00 at byte 0x01, the CQN at 0x38 (event data dword 6).
    let eqe_at = n.plan.eq.offset;
    let mut raw = [0u8; ENTRY];
    n.dma.read(eqe_at, &mut raw).unwrap();
    assert_eq!((raw[0x01], raw[0x03]), (0x00, 0x00));
    assert_eq!(raw[0x38..0x3C], (cqn & 0xFF_FFFF).to_be_bytes());
    assert_eq!(raw[0x3F] & 1, 0, "first pass: owner 0");
    let ev = n.events();
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].completion_cqn()), (0x00, Some(cqn)));
    assert_eq!(n.q.gsi_cq.armed(), None, "the driver saw the event");
    assert_eq!(n.reap_gsi(), 2);
    assert!(dev.take_msix().is_empty(), "the EQ was never armed");

    // Armed again (sequence number 1 now, on both sides): the next CQE fires again.
    assert!(n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap());
    assert_eq!(
        n.dma.read_be32(dbr + 4).unwrap(),
        arm_word(1, ArmMode::Next, 3)
    );
    n.send_mad();
    assert_eq!(n.events().len(), 1);
    assert_eq!(dev.firmware().objects.cqs[&cqn].arm_sn, 2);
    assert_eq!(n.reap_gsi(), 1);
    assert_eq!(dev.violations(), []);
}

#[test]
fn msix_only_from_an_armed_eq_and_once_per_arm() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    // A completion event on an EQ that is not armed: no message.
    n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap();
    n.send_mad();
    assert!(dev.take_msix().is_empty());
    assert_eq!(n.events().len(), 1);
    n.reap_gsi();

    // Armed: one 32-bit write (UAR 0x40, the consumer index), no message yet.
    let before = dev.mmio_counts();
    assert!(n.q.eq.arm(&n.hal));
    assert!(!n.q.eq.arm(&n.hal), "still armed: nothing written");
    let after = dev.mmio_counts();
    assert_eq!(
        (after.reads, after.writes),
        (before.reads, before.writes + 1)
    );
    assert_eq!(dev.eq_consumer_index(n.res.eqn), Some(1));
    assert!(dev.take_msix().is_empty());
    // Everything armed: the next CQE raises vector 0 once, then both are disarmed.
    assert_eq!(
        n.q.arm_interrupts(&n.hal, &n.dma).unwrap(),
        2,
        "both CQs; the EQ still is"
    );
    n.send_mad();
    assert_eq!(dev.take_msix(), [0]);
    n.send_mad();
    dev.set_port_state(fabboot_sim::device::port::state::ACTIVE);
    assert!(dev.take_msix().is_empty(), "one message per arm");
    let kinds: Vec<u8> = n.events().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [event::COMPLETION, event::PORT_CHANGE]);
    assert!(!n.q.eq.armed() && n.q.gsi_cq.armed().is_none());
    n.reap_gsi();
    assert_eq!(
        n.q.arm_interrupts(&n.hal, &n.dma).unwrap(),
        2,
        "the CQ and the EQ"
    );
    assert_eq!(n.q.arm_interrupts(&n.hal, &n.dma).unwrap(), 0);
    assert_eq!(dev.mmio_counts().reads, before.reads, "no register reads");
    assert_eq!(dev.violations(), []);
}

#[test]
fn arming_behind_an_unread_completion_fires_at_once() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    // A CQE arrives after the last poll and before the arm: the arm (consumer index 0,
    // producer 1) writes the event at once, and the EQ armed behind it interrupts.
    n.send_mad();
    assert_eq!(n.q.arm_interrupts(&n.hal, &n.dma).unwrap(), 3);
    assert_eq!(dev.firmware().objects.cqs[&n.res.gsi_cqn].events, 1);
    assert_eq!(dev.take_msix(), [0], "nothing is left waiting");
    assert_eq!(n.events().len(), 1);
    assert_eq!(n.reap_gsi(), 1);
    // The same for an event written before the EQ was armed, and nothing more once
    // everything was read.
    assert_eq!(n.q.arm_interrupts(&n.hal, &n.dma).unwrap(), 2);
    assert!(dev.take_msix().is_empty());
    assert_eq!(dev.violations(), []);
}

#[test]
fn a_solicited_arm_waits_for_a_solicited_or_error_completion() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    let cqn = n.res.gsi_cqn;
    for i in 0..3 {
        n.post_receive(i);
    }
    assert!(n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Solicited).unwrap());
    assert_eq!(n.cq_arm(cqn), Some(CqArm::Solicited));
    n.send_mad(); // a send completion
    n.arrive(false); // an unsolicited receive
    assert!(n.events().is_empty());
    assert_eq!(n.cq_arm(cqn), Some(CqArm::Solicited));
    // Arming for every CQE now fires at once: two are unread.
    assert!(n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap());
    assert_eq!(n.events().len(), 1);
    assert_eq!(n.reap_gsi(), 2);
    // Solicited again; the solicited receive fires it.
    n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Solicited).unwrap();
    n.arrive(false);
    assert!(n.events().is_empty());
    n.arrive(true);
    let ev = n.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].completion_cqn(), Some(cqn));
    assert_eq!(n.reap_gsi(), 2);
    // A solicited CQE left unread fires a solicited arm at once.
    n.post_receive(3);
    n.arrive(true);
    n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Solicited).unwrap();
    assert_eq!(n.events().len(), 1);
    assert_eq!(dev.violations(), []);
}

#[test]
fn a_stale_sequence_number_is_refused() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    let cqn = n.res.gsi_cqn;
    n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap();
    n.send_mad(); // fires: the device is at sequence number 1
    n.reap_gsi();
    // A driver that re-arms without having seen the event still says 0: stale.
    let dbr = n.plan.doorbells.gsi_cq.offset;
    let word = arm_word(0, ArmMode::Next, 1);
    n.dma.write_be32(dbr + 4, word).unwrap();
    n.hal
        .write64(n.uar(UAR_CQ_DB), u64::from(word) << 32 | u64::from(cqn));
    let v = dev.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::DataPath { what }] if what.contains("stale")),
        "{v:?}"
    );
    assert_eq!(n.cq_arm(cqn), None, "the stale arm is ignored");
    // With the event read, the driver's number is current and the arm is taken.
    assert_eq!(n.events().len(), 1);
    n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap();
    assert_eq!(n.cq_arm(cqn), Some(CqArm::Next));
    assert_eq!(dev.violations(), []);
}

#[test]
fn misdirected_and_malformed_doorbells_are_refused() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let n = node(&dev, &memory, &clock);
    let cqn = n.res.gsi_cqn;
    let dbr = n.plan.doorbells.gsi_cq.offset;
    let ring = |word: u32, low: u32| {
        n.dma.write_be32(dbr + 4, word).unwrap();
        n.hal
            .write64(n.uar(UAR_CQ_DB), u64::from(word) << 32 | u64::from(low));
        match dev.take_violations().as_slice() {
            [Violation::DataPath { what }] => what.clone(),
            v => panic!("one violation expected: {v:?}"),
        }
    };
    assert!(ring(0, 0x7777).contains("unknown CQ"));
    assert!(ring(2 << 24, cqn).contains("command 2"));
    assert!(ring(1 << 30, cqn).contains("reserved"));
    assert!(ring(5, cqn).contains("past its producer"));
    // The arm record must hold what the doorbell says.
    n.dma.write_be32(dbr + 4, 0x0100_0000).unwrap();
    n.hal.write64(n.uar(UAR_CQ_DB), u64::from(cqn));
    let v = dev.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::DataPath { what }] if what.contains("arm record")),
        "{v:?}"
    );
    assert_eq!(dev.firmware().objects.cqs[&cqn].arm, None);
    // A 32-bit host writes the doorbell as two halves, first dword first: the second
    // rings it. A half alone, or a first half twice, is a torn doorbell.
    let word = arm_word(0, ArmMode::Next, 0);
    n.dma.write_be32(dbr + 4, word).unwrap();
    n.hal.write32(n.uar(UAR_CQ_DB) + 4, cqn);
    n.hal.write32(n.uar(UAR_CQ_DB), word);
    n.hal.write32(n.uar(UAR_CQ_DB), word);
    let v = dev.take_violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v.iter()
            .all(|v| matches!(v, Violation::DataPath { what } if what.contains("half")))
    );
    assert_eq!(dev.firmware().objects.cqs[&cqn].arm, None);
    n.hal.write32(n.uar(UAR_CQ_DB) + 4, cqn);
    assert_eq!(dev.firmware().objects.cqs[&cqn].arm, Some(CqArm::Next));
    assert_eq!(dev.violations(), []);
    // EQ doorbells: an unknown EQ, a consumer index past the producer or moving back.
    let eqn = u32::from(n.res.eqn);
    n.hal.write32(n.uar(UAR_EQ_ARM), 0x7F << 24);
    n.hal.write32(n.uar(UAR_EQ_CI), eqn << 24 | 1);
    dev.set_port_state(fabboot_sim::device::port::state::ACTIVE);
    dev.set_port_state(fabboot_sim::device::port::state::ACTIVE);
    n.hal.write32(n.uar(UAR_EQ_CI), eqn << 24 | 2);
    n.hal.write32(n.uar(UAR_EQ_CI), eqn << 24 | 1);
    let v: Vec<String> = dev
        .take_violations()
        .into_iter()
        .map(|v| match v {
            Violation::DataPath { what } => what,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[0].contains("unknown EQ"), "{v:?}");
    assert!(v[1].contains("past its producer"), "{v:?}");
    assert!(v[2].contains("moved back"), "{v:?}");
    assert_eq!(dev.eq_consumer_index(n.res.eqn), Some(2));
}

#[test]
fn a_cq_doorbell_through_another_uar_is_refused() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    // A second UAR page, as another ALLOC_UAR would give.
    dev.firmware_mut().objects.uars.push(0x7F);
    let cqn = n.res.gsi_cqn;
    let word = arm_word(0, ArmMode::Next, 0);
    n.dma
        .write_be32(n.plan.doorbells.gsi_cq.offset + 4, word)
        .unwrap();
    n.hal.write64(
        0x7F * UAR_PAGE + UAR_CQ_DB,
        u64::from(word) << 32 | u64::from(cqn),
    );
    let v = dev.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::DataPath { what }] if what.contains("not its own")),
        "{v:?}"
    );
    assert_eq!(n.cq_arm(cqn), None);
    // Through its own page it is taken.
    assert!(n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap());
    assert_eq!(n.cq_arm(cqn), Some(CqArm::Next));
    n.send_mad();
    assert_eq!(n.events().len(), 1);
    assert_eq!(dev.violations(), []);
}

#[test]
fn completion_events_count_against_the_eq_like_any_other() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    // 64 entries; the driver reads none and reports nothing: the 65th event overruns.
    for _ in 0..64 {
        n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap();
        n.send_mad();
        n.reap_gsi();
        // The driver's bookkeeping only (as if it had read the event).
        n.q.gsi_cq.on_completion_event();
    }
    assert_eq!(dev.violations(), []);
    n.q.gsi_cq.arm(&n.hal, &n.dma, ArmMode::Next).unwrap();
    n.send_mad();
    let v = dev.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::DataPath { what }] if what.contains("overrun")),
        "{v:?}"
    );
    // Reading them reports the consumer index once half the EQ is read.
    let before = dev.mmio_counts().writes;
    let mut read = 0;
    while let Some(e) = n.q.eq.poll(&n.dma).unwrap() {
        assert_eq!(e.kind, event::COMPLETION);
        read += 1;
        if read == 31 {
            assert!(!n.q.eq.report_consumed(&n.hal));
        }
        if read == 32 {
            assert!(n.q.eq.report_consumed(&n.hal));
            assert!(!n.q.eq.report_consumed(&n.hal));
        }
    }
    assert_eq!(read, 64);
    assert!(n.q.eq.report_consumed(&n.hal));
    assert_eq!(dev.mmio_counts().writes, before + 2);
    assert_eq!(dev.eq_consumer_index(n.res.eqn), Some(64));
}

/// A platform over the model that records what bring-up tells it about the clock and
/// can make the device report no frequency.
struct Recording<'a> {
    inner: SimHal<'a>,
    dev: &'a Mlx5Function,
    khz: Cell<Option<u32>>,
    report_khz: u32,
}

impl Mmio for Recording<'_> {
    fn read32(&self, offset: usize) -> u32 {
        self.inner.read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.inner.write32(offset, value)
    }
}

impl Hal for Recording<'_> {
    fn read64(&self, offset: usize) -> u64 {
        self.inner.read64(offset)
    }
    fn write64(&self, offset: usize, value: u64) {
        self.inner.write64(offset, value)
    }
    fn stall_us(&self, us: u32) {
        self.inner.stall_us(us)
    }
    fn now_us(&self) -> u64 {
        self.inner.now_us()
    }
    fn reset_function(&self) -> bool {
        let done = self.inner.reset_function();
        let mut fw = self.dev.firmware_mut();
        cap::DEVICE_FREQUENCY_KHZ.set(&mut fw.max_caps, self.report_khz.into());
        fw.cur_caps = fw.max_caps;
        done
    }
    fn set_device_clock_khz(&self, khz: u32) {
        assert_eq!(self.khz.replace(Some(khz)), None, "told once per bring-up");
    }
}

#[test]
fn bring_up_hands_the_device_frequency_to_the_platform() {
    for report_khz in [DEVICE_FREQUENCY_KHZ, 250_000, 0] {
        let clock = Clock::new();
        let memory = memory();
        let dev = Mlx5Function::connectx4(BAR0, clock.clone());
        dev.attach_memory(memory.region());
        let hal = Recording {
            inner: SimHal::new(&dev, clock.clone()),
            dev: &dev,
            khz: Cell::new(None),
            report_khz,
        };
        let plan = MemoryPlan::new(PlanConfig::BOOT);
        let hca = bringup::bring_up(&hal, &memory.region(), plan, BringupConfig::BOOT).unwrap();
        assert_eq!(hal.khz.get(), Some(report_khz));
        assert_eq!(hca.device_frequency_khz(), report_khz);
        assert_eq!(DeviceClock::new(report_khz).is_some(), report_khz != 0);
        assert_eq!(dev.violations(), []);
    }
    assert_eq!(DEVICE_FREQUENCY_KHZ, 156_250, "a ConnectX-4's 156.25 MHz");
}

/// A platform whose every register read takes `us` of virtual time, so the two halves
/// of the timer are read at different instants.
struct Slow<'a> {
    dev: &'a Mlx5Function,
    clock: Clock,
    us: u64,
}

impl Mmio for Slow<'_> {
    fn read32(&self, offset: usize) -> u32 {
        let v = self.dev.read32(offset);
        self.clock.advance_us(self.us);
        v
    }
    fn write32(&self, offset: usize, value: u32) {
        self.dev.write32(offset, value)
    }
}

#[test]
fn the_internal_timer_counts_at_the_reported_frequency_and_reads_across_a_carry() {
    let clock = Clock::new();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let hal = SimHal::new(&dev, clock.clone());
    let khz = u64::from(DEVICE_FREQUENCY_KHZ);
    let t0 = timer::read(&hal).unwrap();
    clock.advance_us(1_000_000);
    let t1 = timer::read(&hal).unwrap();
    assert_eq!(t1 - t0, khz * 1000, "one second of 156.25 MHz ticks");
    let c = DeviceClock::new(DEVICE_FREQUENCY_KHZ).unwrap();
    assert_eq!(c.ticks_to_us(t1 - t0), 1_000_000);

    // 100 ticks before the low word carries; each read takes 1 µs (156 ticks).
    let slow = Slow {
        dev: &dev,
        clock: clock.clone(),
        us: 1,
    };
    let start = 0x0000_0001_FFFF_FFFF - 100;
    dev.set_internal_timer(start);
    let t = timer::read(&slow).unwrap();
    let end = dev.internal_timer();
    assert!((start..=end).contains(&t), "{start:#x} ≤ {t:#x} ≤ {end:#x}");
    assert_eq!(t >> 32, 2);
    assert_eq!(
        dev.mmio_counts().reads,
        2 * 3 + 4,
        "high, low, high, low again"
    );
    // Read naively (high, then low), the same timer tears by 2^32.
    dev.set_internal_timer(start);
    let naive = u64::from(slow.read32(offset::INTERNAL_TIMER_H)) << 32
        | u64::from(slow.read32(offset::INTERNAL_TIMER_L));
    assert!(naive < start, "torn: {naive:#x}");

    // The timer is read-only.
    hal.write32(offset::INTERNAL_TIMER_L, 0);
    assert!(matches!(
        dev.take_violations().as_slice(),
        [Violation::ReadOnly { offset: 0x1004, .. }]
    ));
}

/// A 32-bit platform: no 64-bit register write, so `write64` is two 32-bit writes,
/// first dword first.
struct Split<'a>(&'a SimHal<'a>);

impl Mmio for Split<'_> {
    fn read32(&self, offset: usize) -> u32 {
        self.0.read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.0.write32(offset, value)
    }
}

impl Hal for Split<'_> {
    fn read64(&self, offset: usize) -> u64 {
        self.0.read64(offset)
    }
    fn write64(&self, offset: usize, value: u64) {
        self.0.write32(offset, (value >> 32) as u32);
        self.0.write32(offset + 4, value as u32);
    }
    fn stall_us(&self, us: u32) {
        self.0.stall_us(us)
    }
    fn now_us(&self) -> u64 {
        self.0.now_us()
    }
    fn reset_function(&self) -> bool {
        self.0.reset_function()
    }
}

#[test]
fn a_32_bit_host_rings_cq_and_send_doorbells_in_two_halves() {
    let clock = Clock::new();
    let memory = memory();
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock);
    let hal = SimHal::new(&dev, clock.clone());
    let split = Split(&hal);
    let before = dev.mmio_counts().writes;
    assert_eq!(n.q.arm_interrupts(&split, &n.dma).unwrap(), 3);
    let buf = Span {
        offset: n.plan.mad_buffers.offset + MAD_RECV_SLOTS * MAD_SLOT,
        len: 256,
    };
    let to = AddressVector {
        dqpn: 1,
        qkey: GSI_QKEY,
        dlid: 1,
        sl: 0,
        path_bits: 0,
    };
    n.q.gsi_sq.post_ud_send(&split, &n.dma, &to, buf).unwrap();
    assert_eq!(dev.take_outbox().len(), 1, "the send went out");
    assert_eq!(dev.take_msix(), [0], "its completion interrupted");
    assert_eq!(
        dev.mmio_counts().writes - before,
        2 + 2 + 1 + 2,
        "two CQ arms and a send in halves, the EQ arm whole"
    );
    assert_eq!(n.events().len(), 1);
    assert_eq!(n.reap_gsi(), 1);
    assert_eq!(dev.violations(), []);
}
