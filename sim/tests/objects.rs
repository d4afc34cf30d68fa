//! Device objects against the model: the QP state machine, the limits set with
//! SET_HCA_CAP, references between objects, and MAD_IFC.

use fabboot_hca::bringup::{self, BringupConfig, Hca};
use fabboot_hca::cmdif::CmdError;
use fabboot_hca::dma::DmaRegion;
use fabboot_hca::ifc::Field;
use fabboot_hca::ifc::cmd::hdr;
use fabboot_hca::ifc::objects::{cqc, create_cq_in};
use fabboot_hca::objects::{self, QpAttrs, QpConfig, ServiceType, Transition, opcode};
use fabboot_hca::plan::{MemoryPlan, PlanConfig, RC_SHAPE};
use fabboot_hca::resources::{self, Resources};
use fabboot_sim::clock::Clock;
use fabboot_sim::device::objects::qp_state;
use fabboot_sim::device::{Mlx5Function, Violation};
use fabboot_sim::hal::SimHal;
use fabboot_sim::memory::HostMemory;
use fabboot_sim::scenario::{BAR0, DMA_PHYS, get_port_info};

struct Rig {
    hca: Hca,
    res: Resources,
}

fn with_rig(test: impl FnOnce(&mut Rig, &SimHal, &DmaRegion, &Mlx5Function)) {
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    let clock = Clock::new();
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    let hal = SimHal::new(&device, clock.clone());
    let dma = memory.region();
    let mut hca = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT).unwrap();
    let res = resources::open(&mut hca, &hal, &dma).unwrap();
    let mut rig = Rig { hca, res };
    test(&mut rig, &hal, &dma, &device);
}

fn status_of(r: Result<impl Sized, CmdError>) -> u8 {
    match r {
        Err(CmdError::Failed { status, .. }) => status,
        Err(e) => panic!("{e:?}"),
        Ok(_) => 0,
    }
}

fn rc_attrs() -> QpAttrs {
    QpAttrs {
        port: 1,
        mtu: 5,
        remote_qpn: 0x1234,
        rlid: 0x22,
        rq_psn: 100,
        sq_psn: 200,
        retry_count: 7,
        rnr_retry: 7,
        ack_timeout: 17,
        log_rra_max: 2,
        log_sra_max: 2,
        ..QpAttrs::default()
    }
}

#[test]
fn the_rc_qp_walks_its_states_and_nothing_else() {
    with_rig(|rig, hal, dma, dev| {
        let qpn = rig.res.rc_qpn;
        let a = rc_attrs();
        let step = |rig: &mut Rig, t| {
            objects::modify_qp(&mut rig.hca.cmd, hal, dma, qpn, ServiceType::Rc, t, &a)
        };
        // RTR before INIT: refused as a bad QP state.
        assert_eq!(status_of(step(rig, Transition::Init2Rtr)), 0x10);
        step(rig, Transition::Rst2Init).unwrap();
        assert_eq!(
            status_of(step(rig, Transition::Rst2Init)),
            0x10,
            "INIT twice"
        );
        step(rig, Transition::Init2Rtr).unwrap();
        step(rig, Transition::Rtr2Rts).unwrap();
        let qp = dev.firmware().objects.qps[&qpn].clone();
        assert_eq!(qp.state, qp_state::RTS);
        assert_eq!(
            (qp.remote_qpn, qp.rlid, qp.mtu, qp.rq_psn, qp.sq_psn),
            (0x1234, 0x22, 5, 100, 200)
        );
        assert_eq!((qp.retry_count, qp.rnr_retry, qp.ack_timeout), (7, 7, 17));
        // Any state to ERR, then to RST.
        step(rig, Transition::ToErr).unwrap();
        assert_eq!(dev.firmware().objects.qps[&qpn].state, qp_state::ERR);
        step(rig, Transition::ToRst).unwrap();
        let v = dev.take_violations();
        assert_eq!(v.len(), 2, "{v:#?}");
        assert!(
            v.iter()
                .all(|v| matches!(v, Violation::Command { status: 0x10, .. }))
        );
    });
}

#[test]
fn an_rc_path_without_a_peer_is_refused() {
    with_rig(|rig, hal, dma, dev| {
        let qpn = rig.res.rc_qpn;
        objects::modify_qp(
            &mut rig.hca.cmd,
            hal,
            dma,
            qpn,
            ServiceType::Rc,
            Transition::Rst2Init,
            &rc_attrs(),
        )
        .unwrap();
        let no_peer = QpAttrs {
            remote_qpn: 0,
            ..rc_attrs()
        };
        let r = objects::modify_qp(
            &mut rig.hca.cmd,
            hal,
            dma,
            qpn,
            ServiceType::Rc,
            Transition::Init2Rtr,
            &no_peer,
        );
        assert_eq!(status_of(r), 0x3);
        assert_eq!(dev.take_violations().len(), 1);
    });
}

#[test]
fn limits_set_with_set_hca_cap_are_enforced() {
    with_rig(|rig, hal, dma, dev| {
        // log_max_qp = 4: two QPs exist, fourteen more fit, the seventeenth does not.
        let plan = rig.hca.plan();
        let cfg = QpConfig {
            st: ServiceType::Rc,
            pd: rig.res.pd,
            uar: rig.res.uar,
            cqn_snd: rig.res.rc_cqn,
            cqn_rcv: rig.res.rc_cqn,
            buffer: plan.rc_qp,
            log_rq_size: RC_SHAPE.log_rq_size,
            log_rq_stride: RC_SHAPE.log_rq_stride,
            log_sq_size: RC_SHAPE.log_sq_size,
            dbr: plan.doorbells.rc_qp,
        };
        for _ in 0..14 {
            objects::create_qp(&mut rig.hca.cmd, hal, dma, &cfg).unwrap();
        }
        assert_eq!(
            status_of(objects::create_qp(&mut rig.hca.cmd, hal, dma, &cfg)),
            0x8
        );
        let v = dev.take_violations();
        assert!(
            matches!(v.as_slice(), [Violation::Command { status: 0x8, .. }]),
            "{v:#?}"
        );
    });
}

#[test]
fn objects_must_name_objects_that_exist_and_memory_of_the_region() {
    with_rig(|rig, hal, dma, dev| {
        let plan = rig.hca.plan();
        // A CQ reporting to an EQ that does not exist.
        let bad_eq = objects::CqConfig {
            ring: plan.rc_cq,
            log_size: 6,
            uar: rig.res.uar,
            eqn: 0x77,
            dbr: plan.doorbells.rc_cq,
        };
        assert_eq!(
            status_of(objects::create_cq(&mut rig.hca.cmd, hal, dma, &bad_eq)),
            0x5
        );
        // A CQ whose ring page lies outside the DMA region (hand-built command).
        let mut input = [0u8; 0x118];
        hdr::OPCODE.set(&mut input, opcode::CREATE_CQ.into());
        cqc::LOG_CQ_SIZE
            .within(create_cq_in::CQC)
            .set(&mut input, 6);
        cqc::UAR_PAGE
            .within(create_cq_in::CQC)
            .set(&mut input, rig.res.uar.into());
        cqc::C_EQN
            .within(create_cq_in::CQC)
            .set(&mut input, rig.res.eqn.into());
        cqc::DBR_ADDR
            .within(create_cq_in::CQC)
            .set(&mut input, dma.phys(plan.doorbells.rc_cq.offset).unwrap());
        Field::new(create_cq_in::PAS.bit, 64).set(&mut input, 0x9_0000_0000);
        let mut out = [0u8; 16];
        assert_eq!(status_of(rig.hca.cmd.exec(hal, dma, &input, &mut out)), 0x3);
        // Destroying an EQ that still has CQs, or a PD that still has QPs.
        assert_eq!(
            status_of(objects::destroy(
                &mut rig.hca.cmd,
                hal,
                dma,
                opcode::DESTROY_EQ,
                rig.res.eqn.into()
            )),
            0x4
        );
        assert_eq!(
            status_of(objects::destroy(
                &mut rig.hca.cmd,
                hal,
                dma,
                opcode::DEALLOC_PD,
                rig.res.pd
            )),
            0x4
        );
        // Graceful teardown with objects alive.
        assert!(matches!(
            bringup::teardown(&mut rig.hca, hal, dma),
            Err(bringup::BringupError::Cmd(CmdError::Failed {
                status: 0x4,
                ..
            }))
        ));
        assert_eq!(dev.take_violations().len(), 5);
    });
}

#[test]
fn mad_ifc_answers_port_info_from_the_port_state_tests_set() {
    with_rig(|rig, hal, dma, dev| {
        dev.firmware_mut().port.activate(0x2A, 0x3, 5, 17);
        let r = objects::mad_ifc(&mut rig.hca.cmd, hal, dma, 1, &get_port_info()).unwrap();
        assert_eq!(r[3], 0x81, "GetResp");
        assert_eq!(u16::from_be_bytes([r[4], r[5]]), 0, "MAD status");
        let d = &r[64..128];
        assert_eq!(u16::from_be_bytes([d[16], d[17]]), 0x2A);
        assert_eq!(u16::from_be_bytes([d[18], d[19]]), 0x3);
        assert_eq!(d[32] & 0xF, 4, "ACTIVE");
        assert_eq!(d[36] & 0xF, 5, "MasterSMSL");
        assert_eq!(d[51] & 0x1F, 17, "SubnetTimeOut");
        dev.firmware_mut().port.state = 1;
        let r = objects::mad_ifc(&mut rig.hca.cmd, hal, dma, 1, &get_port_info()).unwrap();
        assert_eq!(r[64 + 32] & 0xF, 1, "DOWN");
        // An attribute the agent does not serve: a MAD-level status, not a command error.
        let mut other = get_port_info();
        other[16..18].copy_from_slice(&0x0020u16.to_be_bytes());
        let r = objects::mad_ifc(&mut rig.hca.cmd, hal, dma, 1, &other).unwrap();
        assert_eq!(u16::from_be_bytes([r[4], r[5]]), 0x000C);
        assert_eq!(dev.violations(), []);
    });
}
