//! The platform seam: what the access layer needs from whoever hosts it (the miniport
//! over the port driver, or the simulator over its device model).
//!
//! Register access is at byte offsets from the start of BAR0 and in host order (mlx5
//! registers are big-endian; implementations convert). Time is an input: the layer
//! never reads a clock of its own, so the simulator's virtual clock drives it.

use crate::Mmio;

/// A physical (bus) address as the device sees it.
pub type PhysAddr = u64;

/// Everything the access layer needs from its platform besides the DMA region, which
/// the caller hands in separately ([`crate::dma::DmaRegion`]).
pub trait Hal: Mmio {
    /// Reads the 64-bit register at `offset` (big-endian on the device).
    fn read64(&self, offset: usize) -> u64;
    /// Writes the 64-bit register at `offset` as one access where the platform can
    /// (doorbells must not be torn between two writers; this layer has one writer).
    fn write64(&self, offset: usize, value: u64);
    /// Waits at least `us` microseconds without sleeping (callable at any IRQL).
    fn stall_us(&self, us: u32);
    /// A monotonic time in microseconds.
    fn now_us(&self) -> u64;
    /// Resets the function (a PCIe function-level reset: Device Control bit 15 of the
    /// PCI Express capability) and waits the 100 ms the PCIe base specification
    /// requires before it is used again. Everything an earlier driver left in the
    /// device (queues, pages, a command in flight) is discarded. Returns `false` when
    /// the platform cannot reset the function.
    fn reset_function(&self) -> bool;
    /// Bring-up reports the frequency of the device's internal timer
    /// (`cmd_hca_cap.device_frequency_khz`, read with QUERY_HCA_CAP), once per
    /// bring-up, before INIT_HCA. A platform without a time source of its own (the
    /// loader, the crash-dump stack) may then keep time with [`crate::timer`]:
    /// `timer::read` gives ticks, `timer::ticks_to_us` turns them into microseconds.
    /// `khz` is 0 when the device reports no frequency: there is no clock, and the
    /// platform must keep whatever time source it had. The default does nothing.
    fn set_device_clock_khz(&self, khz: u32) {
        let _ = khz;
    }
}
