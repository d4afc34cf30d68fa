//! The memory plan: where every buffer the access layer uses lies in the one DMA
//! region, computed before the region exists so the miniport can ask its port driver
//! for exactly [`MemoryPlan::total`] bytes (uncached extension, or the dump region).
//!
//! It holds the command interface, the firmware page pool, the event queue, two
//! completion queues (QP1's and the RC QP's), the two QPs' work queues and their
//! doorbell records. Queue shapes are constants: what a boot driver needs.

use crate::cmdif::{CmdLayout, MAILBOX_STRIDE};
use crate::dma::Span;

/// Firmware page size.
pub const PAGE: usize = 4096;

/// log2 of EQ entries: 64 EQEs, one page.
pub const EQ_LOG_SIZE: u8 = 6;
/// log2 of QP1's CQ entries: 64 CQEs, one page.
pub const CQ_LOG_SIZE: u8 = 6;
/// log2 of the RC QP's CQ entries: 128 CQEs, two pages; room for a completion of
/// every receive (64) and every send (64) the RC QP can have outstanding, so the CQ
/// cannot overflow however late it is polled.
pub const RC_CQ_LOG_SIZE: u8 = 7;
/// QP1: 16 receive entries of two scatter entries (GRH, MAD), 16 send WQE blocks.
pub const GSI_SHAPE: QueueShape = QueueShape {
    log_rq_size: 4,
    log_rq_stride: 1,
    log_sq_size: 4,
};
/// The RC QP: 64 receive entries of one scatter entry, 64 send WQE blocks.
pub const RC_SHAPE: QueueShape = QueueShape {
    log_rq_size: 6,
    log_rq_stride: 0,
    log_sq_size: 6,
};

/// Bytes of a QP1 receive slot: 40-byte GRH and 256-byte MAD, rounded up.
pub const MAD_SLOT: usize = 512;
/// QP1 receive slots (one per receive entry).
pub const MAD_RECV_SLOTS: usize = 16;
/// QP1 send slots of 256 bytes.
pub const MAD_SEND_SLOTS: usize = 8;
/// Bytes of an IU slot.
pub const IU_SLOT: usize = 256;
/// IU slots: one per RC receive entry and as many for sends.
pub const IU_SLOTS: usize = 64;

/// Sizes of a QP's work queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueShape {
    /// log2 of receive entries.
    pub log_rq_size: u8,
    /// Receive stride is `16 << log_rq_stride`.
    pub log_rq_stride: u8,
    /// log2 of 64-byte send blocks.
    pub log_sq_size: u8,
}

impl QueueShape {
    /// Bytes of the work-queue buffer (receive queue, then send queue).
    pub const fn bytes(&self) -> usize {
        ((16usize << self.log_rq_stride) << self.log_rq_size) + (64usize << self.log_sq_size)
    }
}

/// The doorbell records, each 8 bytes, 64 bytes apart in one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doorbells {
    /// QP1's CQ.
    pub gsi_cq: Span,
    /// The RC QP's CQ.
    pub rc_cq: Span,
    /// QP1.
    pub gsi_qp: Span,
    /// The RC QP.
    pub rc_qp: Span,
}

/// What the plan must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanConfig {
    /// Input mailbox blocks (the longest input is SET_HCA_CAP: 8 blocks).
    pub input_mailboxes: usize,
    /// Output mailbox blocks (the longest output is QUERY_HCA_CAP: 8 blocks).
    pub output_mailboxes: usize,
    /// Firmware pages reserved for boot and init (the most firmware may ask for with
    /// the capabilities the driver sets).
    pub firmware_pages: usize,
}

impl PlanConfig {
    /// A boot driver's needs: room for the longest commands of bring-up and for the
    /// pages firmware asks with small capabilities.
    pub const BOOT: PlanConfig = PlanConfig {
        input_mailboxes: 8,
        output_mailboxes: 8,
        firmware_pages: 128,
    };
}

/// Offsets of every buffer in the DMA region. The region's physical base must be
/// 4 KiB aligned; every buffer is placed on its own alignment from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Command queue and mailboxes.
    pub cmd: CmdLayout,
    /// Pages handed to firmware.
    pub firmware_pages: Span,
    /// The event queue's ring.
    pub eq: Span,
    /// QP1's completion queue ring.
    pub gsi_cq: Span,
    /// The RC QP's completion queue ring.
    pub rc_cq: Span,
    /// QP1's work queues.
    pub gsi_qp: Span,
    /// The RC QP's work queues.
    pub rc_qp: Span,
    /// Doorbell records.
    pub doorbells: Doorbells,
    /// QP1's buffers: [`MAD_RECV_SLOTS`] receive slots of [`MAD_SLOT`] bytes (GRH and
    /// MAD), then [`MAD_SEND_SLOTS`] send slots of 256 bytes.
    pub mad_buffers: Span,
    /// The RC QP's information-unit buffers (SRP IUs): [`IU_SLOTS`] slots of
    /// [`IU_SLOT`] bytes.
    pub iu_buffers: Span,
    /// Bytes the region must have.
    pub total: usize,
}

impl MemoryPlan {
    /// Lays the buffers out one after another, each 4 KiB aligned.
    pub const fn new(cfg: PlanConfig) -> MemoryPlan {
        let queue = Span {
            offset: 0,
            len: PAGE,
        };
        let input = Span {
            offset: queue.offset + queue.len,
            len: cfg.input_mailboxes * MAILBOX_STRIDE,
        };
        let output = Span {
            offset: align(input.offset + input.len, PAGE),
            len: cfg.output_mailboxes * MAILBOX_STRIDE,
        };
        let firmware_pages = Span {
            offset: align(output.offset + output.len, PAGE),
            len: cfg.firmware_pages * PAGE,
        };
        let eq = page_after(firmware_pages, 64 << EQ_LOG_SIZE);
        let gsi_cq = page_after(eq, 64 << CQ_LOG_SIZE);
        let rc_cq = page_after(gsi_cq, 64 << RC_CQ_LOG_SIZE);
        let gsi_qp = page_after(rc_cq, GSI_SHAPE.bytes());
        let rc_qp = page_after(gsi_qp, RC_SHAPE.bytes());
        let mad_buffers = page_after(rc_qp, MAD_RECV_SLOTS * MAD_SLOT + MAD_SEND_SLOTS * 256);
        let iu_buffers = page_after(mad_buffers, IU_SLOTS * IU_SLOT);
        let db = page_after(iu_buffers, PAGE);
        let doorbells = Doorbells {
            gsi_cq: Span {
                offset: db.offset,
                len: 8,
            },
            rc_cq: Span {
                offset: db.offset + 64,
                len: 8,
            },
            gsi_qp: Span {
                offset: db.offset + 128,
                len: 8,
            },
            rc_qp: Span {
                offset: db.offset + 192,
                len: 8,
            },
        };
        MemoryPlan {
            cmd: CmdLayout {
                queue,
                input,
                output,
            },
            firmware_pages,
            eq,
            gsi_cq,
            rc_cq,
            gsi_qp,
            rc_qp,
            doorbells,
            mad_buffers,
            iu_buffers,
            total: db.offset + db.len,
        }
    }

    /// Number of firmware pages the plan holds.
    pub const fn firmware_page_count(&self) -> usize {
        self.firmware_pages.len / PAGE
    }
}

/// A span of `len` bytes (rounded up to whole pages) at the page after `prev`.
const fn page_after(prev: Span, len: usize) -> Span {
    Span {
        offset: align(prev.offset + prev.len, PAGE),
        len: align(len, PAGE),
    }
}

const fn align(v: usize, to: usize) -> usize {
    v.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_disjoint_aligned_and_inside_the_total() {
        let p = MemoryPlan::new(PlanConfig::BOOT);
        let spans = [
            p.cmd.queue,
            p.cmd.input,
            p.cmd.output,
            p.firmware_pages,
            p.eq,
            p.gsi_cq,
            p.rc_cq,
            p.gsi_qp,
            p.rc_qp,
            p.doorbells.gsi_cq,
            p.doorbells.rc_cq,
            p.doorbells.gsi_qp,
            p.doorbells.rc_qp,
            p.mad_buffers,
            p.iu_buffers,
        ];
        for (i, a) in spans.iter().enumerate() {
            assert_eq!(a.offset % 8, 0, "{a:?}");
            assert!(a.end() <= p.total);
            for b in &spans[i + 1..] {
                assert!(a.end() <= b.offset || b.end() <= a.offset, "{a:?} {b:?}");
            }
        }
        assert_eq!(p.firmware_page_count(), 128);
        assert_eq!(
            p.total,
            4096 + 8192 + 8192 + 128 * 4096 + 4096 * (1 + 1 + 2 + 1 + 2 + 3 + 4 + 1)
        );
        assert_eq!(p.rc_qp.len, 2 * PAGE, "RC work queues: 1024 + 4096 bytes");
        assert!(p.cmd.max_input() >= 0x1010 && p.cmd.max_output() >= 0x1010);
    }
}
