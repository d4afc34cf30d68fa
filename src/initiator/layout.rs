//! Where the initiator's buffers lie in the one DMA region: the access layer's plan
//! ([`MemoryPlan`]), then the SRP information-unit buffers and a scratch page for the
//! commands the driver sends on its own (REPORT LUNS). The port driver is asked for
//! exactly [`Layout::total`] bytes of uncached memory.

use fabboot_hca::dma::Span;
use fabboot_hca::plan::{MemoryPlan, PAGE, PlanConfig, RC_SHAPE};
use fabboot_srp::cmd::{FIXED_LEN, MAX_DESC_COUNT};
use fabboot_srp::desc::{DirectDesc, IndirectHeader};

/// Send IU buffers: one per send WQE of the RC QP (each SEND is one 64-byte block),
/// so a buffer is free exactly when its WQE has completed.
pub const SEND_SLOTS: usize = 1 << RC_SHAPE.log_sq_size;
/// The IU length the driver asks for at login: an SRP_CMD with an inline indirect
/// table of the most descriptors an SRP_CMD can count (255; SRP r16a §6.9), so
/// `48 + 20 + 255 × 16` = 4148 bytes.
pub const IT_IU_LEN: u32 =
    (FIXED_LEN + IndirectHeader::LEN + MAX_DESC_COUNT * DirectDesc::LEN) as u32;
/// Bytes of a send IU buffer: [`IT_IU_LEN`] rounded up to 64.
pub const SEND_SLOT: usize = (IT_IU_LEN as usize).div_ceil(64) * 64;
/// Receive IU buffers: one per receive entry of the RC QP.
pub const RECV_SLOTS: usize = 1 << RC_SHAPE.log_rq_size;
/// Bytes of a receive IU buffer. The largest IU a target sends in answer to a command
/// is an SRP_RSP with 4 bytes of response data and 252 bytes of sense (36 + 4 + 252 =
/// 292); a target that sends more than this makes the receive fail with a local length
/// error, which the initiator treats as a channel failure.
pub const RECV_SLOT: usize = 512;
/// Bytes of the scratch buffer for the driver's own commands (REPORT LUNS).
pub const SCRATCH: usize = PAGE;

/// The region's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The access layer's buffers (command interface, firmware pages, queues, MADs).
    pub hca: MemoryPlan,
    /// [`SEND_SLOTS`] buffers of [`SEND_SLOT`] bytes.
    pub send: Span,
    /// [`RECV_SLOTS`] buffers of [`RECV_SLOT`] bytes.
    pub recv: Span,
    /// [`SCRATCH`] bytes.
    pub scratch: Span,
    /// Bytes the region must have.
    pub total: usize,
}

impl Layout {
    /// The layout for a boot driver.
    pub const fn new(cfg: PlanConfig) -> Layout {
        let hca = MemoryPlan::new(cfg);
        let send = Span {
            offset: align(hca.total, PAGE),
            len: SEND_SLOTS * SEND_SLOT,
        };
        let recv = Span {
            offset: align(send.offset + send.len, PAGE),
            len: RECV_SLOTS * RECV_SLOT,
        };
        let scratch = Span {
            offset: align(recv.offset + recv.len, PAGE),
            len: SCRATCH,
        };
        Layout {
            hca,
            send,
            recv,
            scratch,
            total: scratch.offset + scratch.len,
        }
    }

    /// Send buffer `i` (taken modulo [`SEND_SLOTS`]).
    pub const fn send_slot(&self, i: usize) -> Span {
        Span {
            offset: self.send.offset + (i % SEND_SLOTS) * SEND_SLOT,
            len: SEND_SLOT,
        }
    }

    /// Receive buffer `i` (taken modulo [`RECV_SLOTS`]).
    pub const fn recv_slot(&self, i: usize) -> Span {
        Span {
            offset: self.recv.offset + (i % RECV_SLOTS) * RECV_SLOT,
            len: RECV_SLOT,
        }
    }
}

const fn align(v: usize, to: usize) -> usize {
    v.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_follow_the_plan_page_aligned_and_disjoint() {
        let l = Layout::new(PlanConfig::BOOT);
        assert_eq!(IT_IU_LEN, 4148);
        assert_eq!(SEND_SLOT, 4160);
        assert!(l.send.offset >= l.hca.total);
        for s in [l.send, l.recv, l.scratch] {
            assert_eq!(s.offset % PAGE, 0);
        }
        assert!(l.send.end() <= l.recv.offset && l.recv.end() <= l.scratch.offset);
        assert_eq!(l.total, l.scratch.end());
        assert_eq!(l.send_slot(SEND_SLOTS + 1), l.send_slot(1));
        assert!(l.recv_slot(RECV_SLOTS - 1).end() <= l.recv.end());
    }
}
