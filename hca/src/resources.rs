//! The objects a boot driver keeps for its whole life, created once after INIT_HCA in
//! the memory the plan reserved: a UAR page, a PD, a local physical-address memory
//! key, one EQ, a CQ each for QP1 and the RC QP, QP1 (brought to RTS) and the RC QP
//! (left in RST until a connection gives it a peer).

use crate::bringup::Hca;
use crate::cmdif::CmdError;
use crate::dma::{DmaRegion, OutOfRegion, Span};
use crate::hal::Hal;
use crate::objects::{
    self, CqConfig, EqConfig, QpAttrs, QpConfig, ServiceType, Transition, event, opcode,
};
use crate::plan::{
    CQ_LOG_SIZE, EQ_LOG_SIZE, GSI_SHAPE, MemoryPlan, QueueShape, RC_CQ_LOG_SIZE, RC_SHAPE,
};
use crate::queues::{ArmMode, CompletionQueue, Event, EventQueue, RecvQueue, SendQueue};

/// Q_Key of general-services (QP1) traffic (IBTA vol. 1 §13.5.1).
pub const GSI_QKEY: u32 = 0x8001_0000;
/// The physical port.
pub const PORT: u8 = 1;
/// Variant byte of the local memory key.
const LKEY_VARIANT: u8 = 0x42;

/// Events the one EQ subscribes to: completions (the EQ is every CQ's `c_eqn`), port
/// changes, CQ and work-queue errors, internal errors, page requests and command
/// completions.
///
/// Completion events reach an EQ because a CQ names it as `c_eqn`; Linux leaves the
/// completion bit clear on its completion EQs. The bit is set here so that the one EQ
/// states every event the driver takes from it.
pub const EQ_EVENTS: u64 = 1 << event::COMPLETION
    | 1 << event::PORT_CHANGE
    | 1 << event::CQ_ERROR
    | 1 << event::WQ_CATASTROPHIC
    | 1 << event::INTERNAL_ERROR
    | 1 << event::PAGE_REQUEST
    | 1 << event::CMD
    | 1 << event::WQ_INVALID_REQUEST
    | 1 << event::WQ_ACCESS_ERROR;

/// Numbers of the objects created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// UAR page index.
    pub uar: u32,
    /// Protection domain.
    pub pd: u32,
    /// Local physical-address memory key.
    pub lkey: u32,
    /// Event queue.
    pub eqn: u8,
    /// QP1's completion queue.
    pub gsi_cqn: u32,
    /// The RC QP's completion queue.
    pub rc_cqn: u32,
    /// QP1.
    pub gsi_qpn: u32,
    /// The RC QP.
    pub rc_qpn: u32,
}

/// Creates every object and brings QP1 to RTS.
pub fn open<H: Hal>(hca: &mut Hca, hal: &H, dma: &DmaRegion) -> Result<Resources, CmdError> {
    let plan = hca.plan();
    let cmd = &mut hca.cmd;
    let uar = objects::alloc_uar(cmd, hal, dma)?;
    let pd = objects::alloc_pd(cmd, hal, dma)?;
    let lkey = objects::create_local_pa_mkey(cmd, hal, dma, pd, LKEY_VARIANT)?;
    let eqn = objects::create_eq(
        cmd,
        hal,
        dma,
        &EqConfig {
            ring: plan.eq,
            log_size: EQ_LOG_SIZE,
            uar,
            vector: 0,
            events: EQ_EVENTS,
        },
    )?;
    let cq = |ring, log_size, dbr| CqConfig {
        ring,
        log_size,
        uar,
        eqn,
        dbr,
    };
    let gsi_cqn = objects::create_cq(
        cmd,
        hal,
        dma,
        &cq(plan.gsi_cq, CQ_LOG_SIZE, plan.doorbells.gsi_cq),
    )?;
    let rc_cq = cq(plan.rc_cq, RC_CQ_LOG_SIZE, plan.doorbells.rc_cq);
    let rc_cqn = objects::create_cq(cmd, hal, dma, &rc_cq)?;
    let gsi = QpConfig {
        st: ServiceType::Gsi,
        pd,
        uar,
        cqn_snd: gsi_cqn,
        cqn_rcv: gsi_cqn,
        buffer: plan.gsi_qp,
        log_rq_size: GSI_SHAPE.log_rq_size,
        log_rq_stride: GSI_SHAPE.log_rq_stride,
        log_sq_size: GSI_SHAPE.log_sq_size,
        dbr: plan.doorbells.gsi_qp,
    };
    let gsi_qpn = objects::create_qp(cmd, hal, dma, &gsi)?;
    let rc = QpConfig {
        st: ServiceType::Rc,
        cqn_snd: rc_cqn,
        cqn_rcv: rc_cqn,
        buffer: plan.rc_qp,
        log_rq_size: RC_SHAPE.log_rq_size,
        log_rq_stride: RC_SHAPE.log_rq_stride,
        log_sq_size: RC_SHAPE.log_sq_size,
        dbr: plan.doorbells.rc_qp,
        ..gsi
    };
    let rc_qpn = objects::create_qp(cmd, hal, dma, &rc)?;
    let attrs = QpAttrs {
        port: PORT,
        pkey_index: 0,
        q_key: GSI_QKEY,
        ..QpAttrs::default()
    };
    for t in [
        Transition::Rst2Init,
        Transition::Init2Rtr,
        Transition::Rtr2Rts,
    ] {
        objects::modify_qp(cmd, hal, dma, gsi_qpn, ServiceType::Gsi, t, &attrs)?;
    }
    Ok(Resources {
        uar,
        pd,
        lkey,
        eqn,
        gsi_cqn,
        rc_cqn,
        gsi_qpn,
        rc_qpn,
    })
}

/// Destroys every object, QPs first (each moved to RST), then CQs, the EQ, the key,
/// the PD and the UAR.
pub fn close<H: Hal>(
    hca: &mut Hca,
    hal: &H,
    dma: &DmaRegion,
    r: &Resources,
) -> Result<(), CmdError> {
    let cmd = &mut hca.cmd;
    for (qpn, st) in [(r.rc_qpn, ServiceType::Rc), (r.gsi_qpn, ServiceType::Gsi)] {
        objects::modify_qp(
            cmd,
            hal,
            dma,
            qpn,
            st,
            Transition::ToRst,
            &QpAttrs::default(),
        )?;
        objects::destroy(cmd, hal, dma, opcode::DESTROY_QP, qpn)?;
    }
    objects::destroy(cmd, hal, dma, opcode::DESTROY_CQ, r.rc_cqn)?;
    objects::destroy(cmd, hal, dma, opcode::DESTROY_CQ, r.gsi_cqn)?;
    objects::destroy(cmd, hal, dma, opcode::DESTROY_EQ, r.eqn.into())?;
    objects::destroy(cmd, hal, dma, opcode::DESTROY_MKEY, r.lkey >> 8)?;
    objects::destroy(cmd, hal, dma, opcode::DEALLOC_PD, r.pd)?;
    objects::destroy(cmd, hal, dma, opcode::DEALLOC_UAR, r.uar)
}

/// The driver's side of every queue of [`Resources`], over the plan's memory.
#[derive(Debug)]
pub struct Queues {
    /// QP1's send queue.
    pub gsi_sq: SendQueue,
    /// QP1's receive queue.
    pub gsi_rq: RecvQueue,
    /// QP1's completion queue.
    pub gsi_cq: CompletionQueue,
    /// The RC QP's send queue.
    pub rc_sq: SendQueue,
    /// The RC QP's receive queue.
    pub rc_rq: RecvQueue,
    /// The RC QP's completion queue.
    pub rc_cq: CompletionQueue,
    /// The event queue.
    pub eq: EventQueue,
}

impl Queues {
    /// Queues for freshly created objects (every counter at zero).
    pub fn new(plan: &MemoryPlan, r: &Resources) -> Queues {
        let sq = |buffer: Span, shape: QueueShape| Span {
            offset: buffer.offset + shape.bytes() - (64 << shape.log_sq_size),
            len: 64 << shape.log_sq_size,
        };
        let d = plan.doorbells;
        Queues {
            gsi_sq: SendQueue::new(
                r.gsi_qpn,
                sq(plan.gsi_qp, GSI_SHAPE),
                GSI_SHAPE.log_sq_size,
                d.gsi_qp,
                r.uar,
                r.lkey,
            ),
            gsi_rq: RecvQueue::new(
                plan.gsi_qp,
                GSI_SHAPE.log_rq_size,
                GSI_SHAPE.log_rq_stride,
                d.gsi_qp,
                r.lkey,
            ),
            gsi_cq: CompletionQueue::new(plan.gsi_cq, CQ_LOG_SIZE, d.gsi_cq, r.gsi_cqn, r.uar),
            rc_sq: SendQueue::new(
                r.rc_qpn,
                sq(plan.rc_qp, RC_SHAPE),
                RC_SHAPE.log_sq_size,
                d.rc_qp,
                r.uar,
                r.lkey,
            ),
            rc_rq: RecvQueue::new(
                plan.rc_qp,
                RC_SHAPE.log_rq_size,
                RC_SHAPE.log_rq_stride,
                d.rc_qp,
                r.lkey,
            ),
            rc_cq: CompletionQueue::new(plan.rc_cq, RC_CQ_LOG_SIZE, d.rc_cq, r.rc_cqn, r.uar),
            eq: EventQueue::new(plan.eq, EQ_LOG_SIZE, r.eqn, r.uar),
        }
    }

    /// Takes note of an event read from the EQ: a completion event disarmed its CQ
    /// (and moves that CQ's arm sequence number on). Returns whether `e` was a
    /// completion event for one of these CQs.
    pub fn on_event(&mut self, e: &Event) -> bool {
        let Some(cqn) = e.completion_cqn() else {
            return false;
        };
        for cq in [&mut self.gsi_cq, &mut self.rc_cq] {
            if cq.cqn() == cqn {
                cq.on_completion_event();
                return true;
            }
        }
        false
    }

    /// Arms both CQs for their next CQE and then the EQ, so that the next completion
    /// (or any event) raises the EQ's MSI-X vector; what is still armed is left alone.
    /// CQs first: one that already holds an unread CQE writes its completion event at
    /// once, and the EQ, armed behind the event, then interrupts at once too. Returns
    /// the register writes made (0 to 3).
    pub fn arm_interrupts<H: Hal>(&mut self, hal: &H, dma: &DmaRegion) -> Result<u32, OutOfRegion> {
        let mut writes = 0;
        for cq in [&mut self.gsi_cq, &mut self.rc_cq] {
            writes += u32::from(cq.arm(hal, dma, ArmMode::Next)?);
        }
        writes += u32::from(self.eq.arm(hal));
        Ok(writes)
    }
}
