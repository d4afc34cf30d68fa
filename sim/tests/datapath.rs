//! The data path against the model: QP1 UD sends and receives, RC SEND between two
//! model functions (inline and pointer data, RNR and retransmission), the model's
//! strictness about doorbells and keys, port-change events, and the register
//! accesses a posted request costs.

use fabboot_hca::bringup::{self, BringupConfig, Hca};
use fabboot_hca::dma::{DmaRegion, Span};
use fabboot_hca::objects::{self, QpAttrs, ServiceType, Transition};
use fabboot_hca::plan::{MAD_RECV_SLOTS, MAD_SLOT, MemoryPlan, PlanConfig};
use fabboot_hca::queues::PostError;
use fabboot_hca::resources::{self, GSI_QKEY, Queues, Resources};
use fabboot_hca::wqe::{AddressVector, CqeOpcode, GRH_BYTES};
use fabboot_sim::clock::Clock;
use fabboot_sim::device::datapath::ud_frame;
use fabboot_sim::device::port::state;
use fabboot_sim::device::{Mlx5Function, Violation};
use fabboot_sim::hal::SimHal;
use fabboot_sim::memory::HostMemory;
use fabboot_sim::scenario::BAR0;
use fabboot_sim::wire::{ExtHeaders, IbPacket, Opcode};

/// One simulated machine: its memory, function, platform, and the driver's state.
struct Node<'a> {
    dev: &'a Mlx5Function,
    hal: SimHal<'a>,
    dma: DmaRegion,
    plan: MemoryPlan,
    hca: Hca,
    res: Resources,
    q: Queues,
}

fn node<'a>(dev: &'a Mlx5Function, memory: &HostMemory, clock: &Clock, lid: u16) -> Node<'a> {
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    dev.attach_memory(memory.region());
    dev.firmware_mut().port.activate(lid, 1, 0, 18);
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
        hca,
        res,
        q,
    }
}

/// A receive slot of QP1's buffers, split into its GRH and MAD parts.
fn mad_recv(plan: &MemoryPlan, i: usize) -> [Span; 2] {
    let at = plan.mad_buffers.offset + i * MAD_SLOT;
    [
        Span {
            offset: at,
            len: GRH_BYTES,
        },
        Span {
            offset: at + GRH_BYTES,
            len: 256,
        },
    ]
}

fn mad_send(plan: &MemoryPlan, i: usize) -> Span {
    Span {
        offset: plan.mad_buffers.offset + MAD_RECV_SLOTS * MAD_SLOT + i * 256,
        len: 256,
    }
}

fn iu(plan: &MemoryPlan, i: usize) -> Span {
    Span {
        offset: plan.iu_buffers.offset + i * 256,
        len: 256,
    }
}

#[test]
fn qp1_sends_and_receives_mads_with_no_register_reads() {
    let clock = Clock::new();
    let memory = HostMemory::new(MemoryPlan::new(PlanConfig::BOOT).total, 0x1_0000_0000);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock, 0x11);

    // A MAD out: one register write (the doorbell), no read, no copy but the WQE.
    let mad: Vec<u8> = (0..=255u8).collect();
    let buf = mad_send(&n.plan, 0);
    n.dma.write(buf.offset, &mad).unwrap();
    let before = dev.mmio_counts();
    let to = AddressVector {
        dqpn: 1,
        qkey: GSI_QKEY,
        dlid: 0x01,
        sl: 0,
        path_bits: 0,
    };
    let index = n.q.gsi_sq.post_ud_send(&n.hal, &n.dma, &to, buf).unwrap();
    let done = n.q.gsi_cq.poll(&n.dma).unwrap().expect("send completion");
    let after = dev.mmio_counts();
    assert_eq!(
        (after.reads - before.reads, after.writes - before.writes),
        (0, 1),
        "post + reap"
    );
    assert_eq!(
        (done.opcode, done.wqe_counter, done.qpn),
        (CqeOpcode::Req, index, n.res.gsi_qpn)
    );
    n.q.gsi_sq.complete(done.wqe_counter);
    let sent = dev.take_outbox();
    assert_eq!(sent.len(), 1);
    // On the wire: LRH, BTH (UD SEND Only, default P_Key), DETH, the MAD, ICRC, VCRC.
    assert_eq!(sent[0].len(), 8 + 12 + 8 + 256 + 4 + 2);
    let p = IbPacket::decode(&sent[0]).expect("a well-formed packet");
    assert_eq!(
        (
            p.lrh.slid,
            p.lrh.dlid,
            p.lrh.vl,
            p.bth.opcode,
            p.bth.p_key,
            p.bth.dest_qp
        ),
        (0x11, 0x01, 0, Opcode::UD_SEND_ONLY, 0xFFFF, 1)
    );
    let ExtHeaders::Deth(deth) = p.ext else {
        panic!("UD carries a DETH: {:?}", p.ext)
    };
    assert_eq!((deth.q_key, deth.src_qp), (GSI_QKEY, 1));
    assert_eq!(p.payload, mad);

    // A MAD in: the receive is posted without any register access.
    let before = dev.mmio_counts();
    n.q.gsi_rq.post(&n.dma, &mad_recv(&n.plan, 0)).unwrap();
    assert_eq!(
        dev.mmio_counts(),
        before,
        "receives are posted through memory only"
    );
    let reply: Vec<u8> = mad.iter().map(|b| b ^ 0xFF).collect();
    dev.deliver(&ud_frame(0x01, 0x11, 2, 0xFFFF, 1, 1, GSI_QKEY, 7, reply.clone()).unwrap());
    let got =
        n.q.gsi_cq
            .poll(&n.dma)
            .unwrap()
            .expect("receive completion");
    assert_eq!(got.opcode, CqeOpcode::RespSend);
    assert_eq!(
        (got.byte_cnt as usize, got.src_qpn, got.slid, got.sl),
        (GRH_BYTES + 256, 1, 0x01, 2)
    );
    let mut back = vec![0u8; 256];
    n.dma
        .read(mad_recv(&n.plan, 0)[1].offset, &mut back)
        .unwrap();
    assert_eq!(back, reply);
    assert!(n.q.gsi_cq.poll(&n.dma).unwrap().is_none());

    // A MAD with the wrong Q_Key, a P_Key the port does not hold, another LID or a
    // corrupted CRC is dropped, as on the wire.
    n.q.gsi_rq.post(&n.dma, &mad_recv(&n.plan, 1)).unwrap();
    dev.deliver(&ud_frame(0x01, 0x11, 0, 0xFFFF, 1, 1, 0x1234, 8, reply.clone()).unwrap());
    dev.deliver(&ud_frame(0x01, 0x11, 0, 0x8123, 1, 1, GSI_QKEY, 9, reply.clone()).unwrap());
    dev.deliver(&ud_frame(0x01, 0x12, 0, 0xFFFF, 1, 1, GSI_QKEY, 10, reply.clone()).unwrap());
    let mut corrupt = ud_frame(0x01, 0x11, 0, 0xFFFF, 1, 1, GSI_QKEY, 11, reply).unwrap();
    corrupt[40] ^= 1;
    dev.deliver(&corrupt);
    assert!(n.q.gsi_cq.poll(&n.dma).unwrap().is_none());
    let dropped = dev.take_dropped();
    assert_eq!(dropped.len(), 4, "{dropped:?}");
    assert!(
        dropped[0].contains("QKey") && dropped[1].contains("PKey"),
        "{dropped:?}"
    );
    assert!(
        dropped[2].contains("DLID") && dropped[3].contains("malformed"),
        "{dropped:?}"
    );
    assert_eq!(dev.violations(), []);
}

/// Moves every packet from each function to the other until both are quiet.
fn pump(a: &Mlx5Function, b: &Mlx5Function) {
    for _ in 0..64 {
        let (from_a, from_b) = (a.take_outbox(), b.take_outbox());
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        from_a.iter().for_each(|p| b.deliver(p));
        from_b.iter().for_each(|p| a.deliver(p));
    }
    panic!("the link never went quiet");
}

fn connect(a: &mut Node, b: &Node) {
    let attrs = QpAttrs {
        port: 1,
        mtu: 5,
        remote_qpn: b.res.rc_qpn,
        rlid: b.dev.firmware().port.lid,
        rq_psn: 0x100,
        sq_psn: 0x100,
        retry_count: 7,
        rnr_retry: 7,
        ack_timeout: 17,
        log_rra_max: 2,
        log_sra_max: 2,
        ..QpAttrs::default()
    };
    for t in [
        Transition::Rst2Init,
        Transition::Init2Rtr,
        Transition::Rtr2Rts,
    ] {
        objects::modify_qp(
            &mut a.hca.cmd,
            &a.hal,
            &a.dma,
            a.res.rc_qpn,
            ServiceType::Rc,
            t,
            &attrs,
        )
        .unwrap();
    }
}

#[test]
fn rc_sends_cross_a_link_between_two_functions() {
    let clock = Clock::new();
    let total = MemoryPlan::new(PlanConfig::BOOT).total;
    let (mem_a, mem_b) = (
        HostMemory::new(total, 0x1_0000_0000),
        HostMemory::new(total, 0x2_0000_0000),
    );
    let (dev_a, dev_b) = (
        Mlx5Function::connectx4(BAR0, clock.clone()),
        Mlx5Function::connectx4(BAR0, clock.clone()),
    );
    let mut a = node(&dev_a, &mem_a, &clock, 0x11);
    let mut b = node(&dev_b, &mem_b, &clock, 0x22);
    connect(&mut a, &b);
    connect(&mut b, &a);

    // B posts a receive; A sends inline and by reference.
    for i in 0..2 {
        b.q.rc_rq.post(&b.dma, &[iu(&b.plan, i)]).unwrap();
    }
    let login = b"SRP_LOGIN_REQ-ish payload of 64 bytes.........................!!";
    let before = dev_a.mmio_counts();
    a.q.rc_sq
        .post_rc_send_inline(&a.hal, &a.dma, login)
        .unwrap();
    let cmd: Vec<u8> = (0..48u8).collect();
    a.dma.write(iu(&a.plan, 40).offset, &cmd).unwrap();
    a.q.rc_sq
        .post_rc_send(
            &a.hal,
            &a.dma,
            Span {
                offset: iu(&a.plan, 40).offset,
                len: cmd.len(),
            },
        )
        .unwrap();
    pump(&dev_a, &dev_b);
    let mut completions = Vec::new();
    while let Some(c) = a.q.rc_cq.poll(&a.dma).unwrap() {
        a.q.rc_sq.complete(c.wqe_counter);
        completions.push(c);
    }
    let after = dev_a.mmio_counts();
    assert_eq!(
        (after.reads - before.reads, after.writes - before.writes),
        (0, 2),
        "one doorbell per send, no reads"
    );
    assert_eq!(
        completions.iter().map(|c| c.opcode).collect::<Vec<_>>(),
        [CqeOpcode::Req, CqeOpcode::Req]
    );
    assert_eq!(a.q.rc_sq.outstanding(), 0);

    let r1 = b.q.rc_cq.poll(&b.dma).unwrap().expect("first receive");
    let r2 = b.q.rc_cq.poll(&b.dma).unwrap().expect("second receive");
    assert_eq!(
        (r1.opcode, r1.byte_cnt as usize, r1.src_qpn),
        (CqeOpcode::RespSend, login.len(), a.res.rc_qpn)
    );
    assert_eq!((r2.wqe_counter, r2.byte_cnt as usize), (1, cmd.len()));
    let mut got = vec![0u8; login.len()];
    b.dma.read(iu(&b.plan, 0).offset, &mut got).unwrap();
    assert_eq!(got, login);
    let mut got = vec![0u8; cmd.len()];
    b.dma.read(iu(&b.plan, 1).offset, &mut got).unwrap();
    assert_eq!(got, cmd);

    // No receive posted at B: RNR NAK, then the send goes through once one is.
    a.q.rc_sq
        .post_rc_send_inline(&a.hal, &a.dma, b"late")
        .unwrap();
    pump(&dev_a, &dev_b);
    assert!(
        a.q.rc_cq.poll(&a.dma).unwrap().is_none(),
        "not acknowledged yet"
    );
    assert_eq!(dev_a.rc_stats(a.res.rc_qpn).unwrap().rnr_naks_received, 1);
    b.q.rc_rq.post(&b.dma, &[iu(&b.plan, 2)]).unwrap();
    // The requester waits the RNR timer the responder advertised, then resends.
    let wake = dev_a.next_deadline_ns().expect("an RNR wait");
    clock.advance_to_ns(wake);
    dev_a.poll();
    pump(&dev_a, &dev_b);
    assert_eq!(
        a.q.rc_cq.poll(&a.dma).unwrap().map(|c| c.opcode),
        Some(CqeOpcode::Req)
    );
    assert_eq!(b.q.rc_cq.poll(&b.dma).unwrap().map(|c| c.byte_cnt), Some(4));
    assert_eq!(dev_a.violations(), []);
    assert_eq!(dev_b.violations(), []);
}

#[test]
fn a_doorbell_for_a_qp_in_reset_and_a_bad_key_are_caught() {
    let clock = Clock::new();
    let memory = HostMemory::new(MemoryPlan::new(PlanConfig::BOOT).total, 0x1_0000_0000);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock, 0x11);
    // The RC QP is still in RST.
    n.q.rc_sq
        .post_rc_send_inline(&n.hal, &n.dma, b"too early")
        .unwrap();
    assert!(dev.take_outbox().is_empty());
    let v = dev.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::DataPath { what }] if what.contains("in state 0")),
        "{v:?}"
    );

    // A send through a key the device never issued: error CQE, QP in error.
    let mut bad = Queues::new(
        &n.plan,
        &Resources {
            lkey: 0xDEAD_0001,
            ..n.res
        },
    );
    let to = AddressVector {
        dqpn: 1,
        qkey: GSI_QKEY,
        dlid: 1,
        sl: 0,
        path_bits: 0,
    };
    bad.gsi_sq
        .post_ud_send(&n.hal, &n.dma, &to, mad_send(&n.plan, 0))
        .unwrap();
    let c = n.q.gsi_cq.poll(&n.dma).unwrap().expect("error completion");
    assert!(c.is_error());
    assert_eq!(c.error.map(|e| e.0), Some(0x04), "local protection");
    let v = dev.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::DataPath { what }] if what.contains("unknown key")),
        "{v:?}"
    );
}

#[test]
fn a_full_send_queue_refuses_instead_of_overwriting() {
    let clock = Clock::new();
    let memory = HostMemory::new(MemoryPlan::new(PlanConfig::BOOT).total, 0x1_0000_0000);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock, 0x11);
    let to = AddressVector {
        dqpn: 1,
        qkey: GSI_QKEY,
        dlid: 1,
        sl: 0,
        path_bits: 0,
    };
    // 16 WQEBBs, two per UD send: eight fit until completions are reaped.
    for _ in 0..8 {
        n.q.gsi_sq
            .post_ud_send(&n.hal, &n.dma, &to, mad_send(&n.plan, 0))
            .unwrap();
    }
    assert_eq!(
        n.q.gsi_sq
            .post_ud_send(&n.hal, &n.dma, &to, mad_send(&n.plan, 0)),
        Err(PostError::Full)
    );
    while let Some(c) = n.q.gsi_cq.poll(&n.dma).unwrap() {
        n.q.gsi_sq.complete(c.wqe_counter);
    }
    assert_eq!(n.q.gsi_sq.outstanding(), 0);
    n.q.gsi_sq
        .post_ud_send(&n.hal, &n.dma, &to, mad_send(&n.plan, 0))
        .unwrap();
    assert_eq!(dev.take_outbox().len(), 9);
    assert_eq!(dev.violations(), []);
}

#[test]
fn port_changes_arrive_as_events_on_the_polled_eq() {
    let clock = Clock::new();
    let memory = HostMemory::new(MemoryPlan::new(PlanConfig::BOOT).total, 0x1_0000_0000);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock, 0x11);
    assert!(n.q.eq.poll(&n.dma).unwrap().is_none());
    dev.set_port_state(state::DOWN);
    dev.set_port_state(state::ACTIVE);
    let down = n.q.eq.poll(&n.dma).unwrap().expect("port down");
    let up = n.q.eq.poll(&n.dma).unwrap().expect("port active");
    assert_eq!((down.kind, down.sub_type, down.data[8] >> 4), (0x09, 1, 1));
    assert_eq!((up.kind, up.sub_type), (0x09, 4));
    assert!(n.q.eq.poll(&n.dma).unwrap().is_none());
    n.q.eq.update_ci(&n.hal);
    assert_eq!(dev.eq_consumer_index(n.res.eqn), Some(2));
    // Armed, the EQ raises its MSI-X message once for the next event.
    assert!(dev.take_msix().is_empty(), "never armed: polled only");
    let arm = n.res.uar as usize * 4096 + 0x40;
    fabboot_hca::Mmio::write32(&n.hal, arm, u32::from(n.res.eqn) << 24 | 2);
    dev.set_port_state(state::DOWN);
    dev.set_port_state(state::ACTIVE);
    assert_eq!(dev.take_msix(), [0], "one message, vector 0, then disarmed");
    n.q.eq.poll(&n.dma).unwrap().unwrap();
    n.q.eq.poll(&n.dma).unwrap().unwrap();
    n.q.eq.update_ci(&n.hal);
    // 64 more events than the driver reads: the model reports the overrun.
    for _ in 0..65 {
        dev.set_port_state(state::DOWN);
    }
    let v = dev.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::DataPath { what }] if what.contains("overrun")),
        "{v:?}"
    );
}

#[test]
fn page_requests_while_running_are_serviced_from_the_pool() {
    use fabboot_hca::ifc::events::pages_req_event;
    let clock = Clock::new();
    let memory = HostMemory::new(MemoryPlan::new(PlanConfig::BOOT).total, 0x1_0000_0000);
    let dev = Mlx5Function::connectx4(BAR0, clock.clone());
    let mut n = node(&dev, &memory, &clock, 0x11);
    let at_start = n.hca.pages.held();
    for request in [5i32, -3, 2] {
        dev.request_pages(request);
        let e = n.q.eq.poll(&n.dma).unwrap().expect("page request event");
        assert_eq!(e.kind, 0x0B);
        let asked = pages_req_event::NUM_PAGES.get(&e.data) as u32 as i32;
        assert_eq!(asked, request);
        bringup::service_page_request(&mut n.hca, &n.hal, &n.dma, asked).unwrap();
    }
    n.q.eq.update_ci(&n.hal);
    assert_eq!(n.hca.pages.held(), at_start + 4);
    assert_eq!(
        dev.firmware().pages.len(),
        at_start + 4,
        "firmware and driver agree"
    );
    // Asking for more than the pool holds is refused, and firmware is told.
    dev.request_pages(1000);
    let e = n.q.eq.poll(&n.dma).unwrap().unwrap();
    let err = bringup::service_page_request(
        &mut n.hca,
        &n.hal,
        &n.dma,
        pages_req_event::NUM_PAGES.get(&e.data) as i32,
    );
    assert!(
        matches!(err, Err(bringup::BringupError::NotEnoughPages { .. })),
        "{err:?}"
    );
    assert_eq!(
        dev.firmware().history.last().map(|h| (h.0, h.1)),
        Some((0x108, 0))
    );
    // Everything still comes back at teardown.
    resources::close(&mut n.hca, &n.hal, &n.dma, &n.res).unwrap();
    let back = bringup::teardown(&mut n.hca, &n.hal, &n.dma).unwrap();
    assert_eq!(back, at_start + 4);
    assert_eq!(n.hca.pages.held(), 0);
    assert_eq!(dev.violations(), []);
}
