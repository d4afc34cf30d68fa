//! The access layer's [`Hal`] inside a driver image: BAR0 as the port mapped it, the
//! port's stall, and a clock made of the two.
//!
//! The clock ([`PortClock`]): the HCA's internal timer (initialization segment
//! 0x1000/0x1004, [`fabboot_hca::timer`]) counting at `device_frequency_khz`, which
//! bring-up hands over ([`Hal::set_device_clock_khz`]). Until the frequency is known,
//! or when the device reports none, time advances by the stalls the driver makes, and
//! nothing else. The timer is read at most once per port callback
//! ([`PortHal::tick`]): never per register access, and not on the I/O path's
//! register count beyond those two or three reads. Between ticks, [`Hal::now_us`]
//! is the last tick plus the stalls made since, so the firmware command loops inside
//! one callback still see time pass.

use core::cell::Cell;

use fabboot_hca::Mmio;
use fabboot_hca::hal::Hal;
use fabboot_hca::init_seg::offset;
use fabboot_hca::timer::{self, DeviceClock};

use crate::pci::{self, ConfigAccess, FlrError, NoConfigAccess};

/// The port's busy wait (`ScsiPortStallExecution` / `StorPortStallExecution`).
pub trait Stall {
    /// Waits at least `us` microseconds without sleeping.
    fn stall_us(&self, us: u32);
}

/// Time as the driver sees it: never goes back, advanced by stalls and by the device's
/// timer.
#[derive(Debug, Default)]
pub struct PortClock {
    now_us: Cell<u64>,
    device: Cell<Option<DeviceClock>>,
    /// The timer reading that corresponds to some `now_us`: `(ticks, us)`.
    epoch: Cell<Option<(u64, u64)>>,
}

impl PortClock {
    /// A clock at 0 with no device timer.
    pub const fn new() -> PortClock {
        PortClock {
            now_us: Cell::new(0),
            device: Cell::new(None),
            epoch: Cell::new(None),
        }
    }

    /// The time now.
    pub fn now_us(&self) -> u64 {
        self.now_us.get()
    }

    /// Counts a stall of `us` microseconds.
    pub fn stalled(&self, us: u32) {
        self.now_us
            .set(self.now_us.get().saturating_add(u64::from(us)));
    }

    /// Uses the device timer at `khz` from the next [`PortClock::tick`] on (0: none).
    /// A new frequency (a new bring-up, which restarted the timer) starts a new epoch.
    pub fn set_device_khz(&self, khz: u32) {
        self.device.set(DeviceClock::new(khz));
        self.epoch.set(None);
    }

    /// Whether time comes from the device's timer.
    pub fn has_device_clock(&self) -> bool {
        self.device.get().is_some()
    }

    /// Reads the device timer (when its frequency is known) and moves the time
    /// forward to it; returns the time. A timer that does not answer, or went back
    /// (the function was reset), leaves the time as the stalls made it and starts a
    /// new epoch from the next good reading.
    pub fn tick(&self, bar: &impl Mmio) -> u64 {
        let now = self.now_us.get();
        let Some(clock) = self.device.get() else {
            return now;
        };
        let Ok(ticks) = timer::read(bar) else {
            return now;
        };
        match self.epoch.get() {
            Some((t0, us0)) if ticks >= t0 => {
                let at = us0.saturating_add(clock.ticks_to_us(ticks - t0));
                let now = now.max(at);
                self.now_us.set(now);
                now
            }
            _ => {
                self.epoch.set(Some((ticks, now)));
                now
            }
        }
    }
}

/// The [`Hal`] of a driver image.
#[derive(Debug)]
pub struct PortHal<B, S, C = NoConfigAccess> {
    bar: B,
    stall: S,
    config: C,
    clock: PortClock,
    /// Why the last reset failed, when it did.
    reset_error: Cell<Option<FlrError>>,
}

impl<B: Mmio, S: Stall> PortHal<B, S> {
    /// A platform over `bar` with the port's `stall` and no configuration access (so
    /// it cannot reset a function another driver left running), time starting at
    /// `now_us`.
    pub fn new(bar: B, stall: S, now_us: u64) -> Self {
        PortHal::with_config(bar, stall, NoConfigAccess, now_us)
    }
}

impl<B: Mmio, S: Stall, C: ConfigAccess> PortHal<B, S, C> {
    /// A platform over `bar` with the port's `stall` and configuration space, time
    /// starting at `now_us`.
    pub fn with_config(bar: B, stall: S, config: C, now_us: u64) -> Self {
        let clock = PortClock::new();
        clock.now_us.set(now_us);
        PortHal {
            bar,
            stall,
            config,
            clock,
            reset_error: Cell::new(None),
        }
    }

    /// Why the last [`Hal::reset_function`] failed (`None`: it did not).
    pub fn reset_error(&self) -> Option<FlrError> {
        self.reset_error.get()
    }

    /// The time at the start of a port callback (reads the device timer once).
    pub fn tick(&self) -> u64 {
        self.clock.tick(&self.bar)
    }

    /// The clock.
    pub fn clock(&self) -> &PortClock {
        &self.clock
    }

    /// The mapped BAR0.
    pub fn bar(&self) -> &B {
        &self.bar
    }

    /// The configuration-space access [`Hal::reset_function`] resets through.
    pub fn config(&self) -> &C {
        &self.config
    }
}

impl<B: Mmio, S, C> Mmio for PortHal<B, S, C> {
    fn read32(&self, offset: usize) -> u32 {
        self.bar.read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.bar.write32(offset, value)
    }
}

impl<B: Mmio, S: Stall, C: ConfigAccess> Hal for PortHal<B, S, C> {
    /// Two 32-bit reads, high word first (mlx5 registers are big-endian: the high
    /// word is at the lower address). The port maps BAR0 for 32-bit access only.
    fn read64(&self, offset: usize) -> u64 {
        let high = self.bar.read32(offset);
        let low = self.bar.read32(offset.wrapping_add(4));
        u64::from(high) << 32 | u64::from(low)
    }

    /// Two 32-bit writes, high word first, as mlx5 drivers do on 32-bit hosts (the
    /// driver has one writer per doorbell, so the halves cannot interleave with
    /// another's).
    fn write64(&self, offset: usize, value: u64) {
        self.bar.write32(offset, (value >> 32) as u32);
        self.bar.write32(offset.wrapping_add(4), value as u32);
    }

    fn stall_us(&self, us: u32) {
        self.stall.stall_us(us);
        self.clock.stalled(us);
    }

    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// A function on which no driver has programmed a command queue since its last
    /// reset (both halves of `cmdq_phy_addr` zero, reference/mlx5.md §C.2) holds
    /// nothing of anyone's and counts as reset. Any other (left running by iPXE, by
    /// the loader's instance, or by the kernel a crash dump outlives) gets a PCIe
    /// function-level reset through configuration space ([`pci::function_level_reset`],
    /// which restores BAR0 and Command so the port's mapping stays valid). A reset
    /// that cannot be done fails bring-up with `ResetUnavailable` (logged as
    /// `0xFB05FFFD`); [`PortHal::reset_error`] says why.
    fn reset_function(&self) -> bool {
        if untouched_since_reset(&self.bar) {
            return true;
        }
        match pci::function_level_reset(&self.config, |us| self.stall_us(us)) {
            Ok(()) => {
                self.reset_error.set(None);
                true
            }
            Err(e) => {
                self.reset_error.set(Some(e));
                false
            }
        }
    }

    fn set_device_clock_khz(&self, khz: u32) {
        self.clock.set_device_khz(khz);
    }
}

/// Whether no command queue address was programmed into the function since its last
/// reset (`cmdq_phy_addr` 63:12 zero; the low bits hold the queue's size and stride).
pub fn untouched_since_reset(bar: &impl Mmio) -> bool {
    bar.read32(offset::CMDQ_ADDR_H) == 0 && bar.read32(offset::CMDQ_ADDR_L_SZ) & !0xFFF == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A BAR with a timer at `ticks` and a command-queue address.
    #[derive(Default)]
    struct Bar {
        ticks: Cell<u64>,
        cmdq: Cell<u64>,
        reads: Cell<usize>,
        writes: core::cell::RefCell<Vec<(usize, u32)>>,
    }

    impl Mmio for Bar {
        fn read32(&self, off: usize) -> u32 {
            self.reads.set(self.reads.get() + 1);
            match off {
                0x1000 => (self.ticks.get() >> 32) as u32,
                0x1004 => self.ticks.get() as u32,
                0x10 => (self.cmdq.get() >> 32) as u32,
                0x14 => self.cmdq.get() as u32 & !0xFFF | 0x51,
                0x20 => 0x0102_0304,
                0x24 => 0x0506_0708,
                _ => 0,
            }
        }
        fn write32(&self, off: usize, v: u32) {
            self.writes.borrow_mut().push((off, v));
        }
    }

    #[derive(Default)]
    struct Stalls(Cell<u64>);
    impl Stall for &Stalls {
        fn stall_us(&self, us: u32) {
            self.0.set(self.0.get() + u64::from(us));
        }
    }

    #[test]
    fn before_the_frequency_is_known_only_stalls_move_time() {
        let stalls = Stalls::default();
        let hal = PortHal::new(Bar::default(), &stalls, 500);
        hal.bar.ticks.set(1_000_000);
        assert_eq!(hal.tick(), 500);
        assert_eq!(hal.bar.reads.get(), 0, "no timer read without a frequency");
        hal.stall_us(250);
        assert_eq!(stalls.0.get(), 250, "the port stalled");
        assert_eq!((hal.now_us(), hal.tick()), (750, 750));
        hal.set_device_clock_khz(0);
        assert_eq!(hal.tick(), 750);
        assert_eq!(hal.bar.reads.get(), 0, "0 kHz: no clock");
    }

    #[test]
    fn the_device_timer_moves_time_once_per_tick_and_never_back() {
        let stalls = Stalls::default();
        let hal = PortHal::new(Bar::default(), &stalls, 1000);
        hal.set_device_clock_khz(156_250);
        hal.bar.ticks.set(5 * 156_250_000);
        assert_eq!(hal.tick(), 1000, "the first reading sets the epoch");
        let reads = hal.bar.reads.get();
        assert_eq!(reads, 3, "high, low, high");
        // 2 ms of timer: the time follows it; now_us does not read the device.
        hal.bar.ticks.set(5 * 156_250_000 + 312_500);
        assert_eq!(hal.now_us(), 1000);
        assert_eq!(hal.bar.reads.get(), reads);
        assert_eq!(hal.tick(), 3000);
        // Stalls inside a callback count; the next tick does not count them twice.
        hal.stall_us(400);
        assert_eq!(hal.now_us(), 3400);
        hal.bar.ticks.set(5 * 156_250_000 + 312_500 + 62_500); // +400 us
        assert_eq!(hal.tick(), 3400);
        // A timer that went back (the function was reset) keeps time and re-bases.
        hal.bar.ticks.set(10);
        assert_eq!(hal.tick(), 3400);
        hal.bar.ticks.set(10 + 156_250);
        assert_eq!(hal.tick(), 4400);
        assert!(hal.clock().has_device_clock());
    }

    #[test]
    fn a_timer_that_does_not_answer_leaves_time_alone() {
        struct Dead;
        impl Mmio for Dead {
            fn read32(&self, _: usize) -> u32 {
                u32::MAX
            }
            fn write32(&self, _: usize, _: u32) {}
        }
        let stalls = Stalls::default();
        let hal = PortHal::new(Dead, &stalls, 7);
        hal.set_device_clock_khz(1000);
        assert_eq!(hal.tick(), 7);
        assert_eq!(hal.tick(), 7);
    }

    #[test]
    fn wide_registers_are_two_32_bit_accesses_high_first() {
        let stalls = Stalls::default();
        let hal = PortHal::new(Bar::default(), &stalls, 0);
        assert_eq!(hal.read64(0x20), 0x0102_0304_0506_0708);
        hal.write64(0x800, 0xAABB_CCDD_1122_3344);
        assert_eq!(
            *hal.bar.writes.borrow(),
            [(0x800, 0xAABB_CCDD), (0x804, 0x1122_3344)]
        );
    }

    #[test]
    fn a_touched_function_needs_configuration_access_to_be_reset() {
        let stalls = Stalls::default();
        let hal = PortHal::new(Bar::default(), &stalls, 0);
        assert!(hal.reset_function(), "untouched: nothing to reset");
        assert_eq!(hal.reset_error(), None);
        hal.bar.cmdq.set(0x1_2345_6000);
        assert!(!hal.reset_function());
        assert_eq!(hal.reset_error(), Some(FlrError::NoConfigAccess));
        hal.bar.cmdq.set(0x7000);
        assert!(!hal.reset_function());
        assert_eq!(stalls.0.get(), 0, "no reset was attempted");
    }
}
