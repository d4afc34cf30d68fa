//! The memory plan: where every buffer the access layer uses lies in the one DMA
//! region, computed before the region exists so the miniport can ask its port driver
//! for exactly [`MemoryPlan::total`] bytes (uncached extension, or the dump region).
//!
//! Today it holds the command interface and the firmware page pool; queues join it as
//! the layers that use them land.

use crate::cmdif::{CmdLayout, MAILBOX_STRIDE};
use crate::dma::Span;

/// Firmware page size.
pub const PAGE: usize = 4096;

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
        MemoryPlan {
            cmd: CmdLayout {
                queue,
                input,
                output,
            },
            firmware_pages,
            total: firmware_pages.offset + firmware_pages.len,
        }
    }

    /// Number of firmware pages the plan holds.
    pub const fn firmware_page_count(&self) -> usize {
        self.firmware_pages.len / PAGE
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
        let spans = [p.cmd.queue, p.cmd.input, p.cmd.output, p.firmware_pages];
        for (i, a) in spans.iter().enumerate() {
            assert_eq!(a.offset % PAGE, 0, "{a:?}");
            assert!(a.end() <= p.total);
            for b in &spans[i + 1..] {
                assert!(a.end() <= b.offset || b.end() <= a.offset, "{a:?} {b:?}");
            }
        }
        assert_eq!(p.firmware_page_count(), 128);
        assert_eq!(p.total, 4096 + 8192 + 8192 + 128 * 4096);
        assert!(p.cmd.max_input() >= 0x1010 && p.cmd.max_output() >= 0x1010);
    }
}
