//! Completion interrupts: what the port glue calls after [`Initiator::poll`] when it
//! would rather be woken by the HCA's MSI-X message than by a timer for the next
//! completion (reference/mlx5.md §C.6, §C.15).
//!
//! The glue's loop, in interrupt mode:
//!
//! ```text
//!  MSI-X message, or the time poll() asked for ──▶ poll(now) ──▶ arm_interrupts()
//! ```
//!
//! [`Initiator::poll`] reads the event queue whether or not anything is armed, so
//! completion events (one per armed CQ that fired) never pile up, and it notes which
//! CQs they disarmed; `arm_interrupts` then arms only what is not armed any more. In
//! polled mode (the loader, the crash-dump stack) nothing is armed and no completion
//! event is ever written.

use fabboot_hca::dma::OutOfRegion;
use fabboot_hca::hal::Hal;

use super::Initiator;

impl<H: Hal> Initiator<H> {
    /// Arms every CQ the initiator reads (QP1's, for MADs, and the RC QP's) for its
    /// next completion, then the event queue, so that the next completion (or any
    /// event) raises the EQ's MSI-X vector. A CQ that already holds an unread
    /// completion fires at once, and so does the EQ behind it: nothing that arrived
    /// since the last poll is left waiting.
    ///
    /// Costs one 64-bit register write per CQ that is not armed and one 32-bit write
    /// if the EQ is not armed (at most three; none when everything still is), and no
    /// register read. Returns the writes made; they are also counted in
    /// [`super::Stats::arm_writes`]. Fails only if a doorbell record lies outside the
    /// DMA region (a broken layout): the glue should then keep polling on a timer.
    /// A stopped initiator ([`Initiator::stop`]) arms nothing.
    pub fn arm_interrupts(&mut self) -> Result<u32, OutOfRegion> {
        if self.stopped {
            return Ok(0);
        }
        let writes = self.q.arm_interrupts(&self.hal, &self.dma)?;
        self.stats.arm_writes = self.stats.arm_writes.wrapping_add(u64::from(writes));
        Ok(writes)
    }
}
