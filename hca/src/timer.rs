//! The device's free-running internal timer: a 64-bit counter in the initialization
//! segment (`internal_timer_h` at 0x1000, `internal_timer_l` at 0x1004; Linux
//! `struct mlx5_init_seg`, reference/mlx5.md §C.2) that counts at the frequency the
//! general capabilities report (`cmd_hca_cap.device_frequency_khz`).
//!
//! It is a time source for a platform that has no better one: the loader and the
//! crash-dump stack give a driver no timer, and counting its own stalls drifts.
//! Bring-up hands the frequency to the platform ([`crate::hal::Hal::set_device_clock_khz`]);
//! a frequency of 0 means the device reports no clock, and the timer must not be used.
//! Reading the timer is two or three register reads: it never belongs on the I/O path.

use core::num::NonZeroU32;

use crate::Mmio;
use crate::init_seg::{InitSegError, offset};

/// Reads the 64-bit timer consistently although it is two 32-bit registers: high,
/// low, high again; when the high word moved (the low word carried between the
/// reads), the low word is read once more and belongs to the second high word.
///
/// Fails with [`InitSegError::NotResponding`] when every read returned all ones (the
/// function is gone; a running timer reaches that value only after centuries).
pub fn read(bar: &impl Mmio) -> Result<u64, InitSegError> {
    let high = bar.read32(offset::INTERNAL_TIMER_H);
    let low = bar.read32(offset::INTERNAL_TIMER_L);
    let again = bar.read32(offset::INTERNAL_TIMER_H);
    if high == again {
        if high == u32::MAX && low == u32::MAX {
            return Err(InitSegError::NotResponding);
        }
        return Ok(u64::from(high) << 32 | u64::from(low));
    }
    let low = bar.read32(offset::INTERNAL_TIMER_L);
    Ok(u64::from(again) << 32 | u64::from(low))
}

/// Whole microseconds in `ticks` of a clock running at `khz` kHz, rounded down and
/// saturating at `u64::MAX`; `None` for a frequency of 0 ("no clock").
///
/// Exact for every input: `ticks × 1000 / khz` is computed as
/// `(ticks / khz) × 1000 + (ticks % khz) × 1000 / khz`, whose second product stays
/// below 2^42.
pub fn ticks_to_us(ticks: u64, khz: u32) -> Option<u64> {
    let khz = u64::from(khz);
    if khz == 0 {
        return None;
    }
    let whole = (ticks / khz).saturating_mul(1000);
    Some(whole.saturating_add(ticks % khz * 1000 / khz))
}

/// The internal timer of a device whose frequency is known (non-zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceClock {
    khz: NonZeroU32,
}

impl DeviceClock {
    /// A clock at `khz` kHz, or `None` when the device reports no frequency (0).
    pub fn new(khz: u32) -> Option<DeviceClock> {
        NonZeroU32::new(khz).map(|khz| DeviceClock { khz })
    }

    /// The frequency in kHz.
    pub fn khz(self) -> u32 {
        self.khz.get()
    }

    /// Whole microseconds in `ticks` (see [`ticks_to_us`]).
    pub fn ticks_to_us(self, ticks: u64) -> u64 {
        ticks_to_us(ticks, self.khz.get()).unwrap_or(u64::MAX)
    }

    /// The timer now, in microseconds since it started counting.
    pub fn now_us(self, bar: &impl Mmio) -> Result<u64, InitSegError> {
        read(bar).map(|t| self.ticks_to_us(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::{Cell, RefCell};
    use std::vec::Vec;

    /// A timer that advances by `step` ticks on every register read, so reads of the
    /// two halves see different instants, as on hardware.
    struct Ticking {
        now: Cell<u64>,
        step: u64,
        reads: RefCell<Vec<usize>>,
    }

    impl Ticking {
        fn at(now: u64, step: u64) -> Ticking {
            Ticking {
                now: Cell::new(now),
                step,
                reads: RefCell::new(Vec::new()),
            }
        }
    }

    impl Mmio for Ticking {
        fn read32(&self, offset: usize) -> u32 {
            self.reads.borrow_mut().push(offset);
            let t = self.now.get();
            self.now.set(t + self.step);
            match offset {
                offset::INTERNAL_TIMER_H => (t >> 32) as u32,
                offset::INTERNAL_TIMER_L => t as u32,
                _ => 0,
            }
        }
        fn write32(&self, _offset: usize, _value: u32) {
            panic!("reading the timer writes nothing");
        }
    }

    #[test]
    fn reads_high_low_high_when_nothing_carries() {
        let bar = Ticking::at(0x0000_0012_3456_0000, 10);
        assert_eq!(read(&bar), Ok(0x0000_0012_3456_000A));
        assert_eq!(
            *bar.reads.borrow(),
            [
                offset::INTERNAL_TIMER_H,
                offset::INTERNAL_TIMER_L,
                offset::INTERNAL_TIMER_H
            ]
        );
    }

    #[test]
    fn a_carry_of_the_low_word_between_the_reads_is_not_torn() {
        // Each case puts the carry between a different pair of reads.
        for start in [
            0x0000_0001_FFFF_FFF8u64, // between high and low
            0x0000_0001_FFFF_FFF0,    // between low and the second high
        ] {
            let bar = Ticking::at(start, 8);
            let t = read(&bar).unwrap();
            // The reads took place over [start, start + 3 steps]; a torn read would be
            // 2^32 early (0x1_0000_0000) or late (0x2_FFFF_FFxx).
            assert!(
                (start..=start + 4 * 8).contains(&t),
                "{start:#x}: read {t:#x}"
            );
            assert_eq!(t >> 32, 2, "{start:#x}: the second high word wins");
            assert_eq!(bar.reads.borrow().len(), 4, "the low word is read again");
        }
        // A naive high-then-low read of the same timer is torn: the test can fail.
        let bar = Ticking::at(0x0000_0001_FFFF_FFF8, 8);
        let naive = u64::from(bar.read32(offset::INTERNAL_TIMER_H)) << 32
            | u64::from(bar.read32(offset::INTERNAL_TIMER_L));
        assert_eq!(naive, 0x0000_0001_0000_0000);
    }

    #[test]
    fn all_ones_is_a_function_that_does_not_answer() {
        struct Gone;
        impl Mmio for Gone {
            fn read32(&self, _offset: usize) -> u32 {
                u32::MAX
            }
            fn write32(&self, _offset: usize, _value: u32) {}
        }
        assert_eq!(read(&Gone), Err(InitSegError::NotResponding));
    }

    #[test]
    fn ticks_become_microseconds_without_overflow() {
        // ConnectX-4: 156.25 MHz.
        assert_eq!(ticks_to_us(156_250, 156_250), Some(1000));
        assert_eq!(ticks_to_us(156, 156_250), Some(0));
        assert_eq!(ticks_to_us(157, 156_250), Some(1));
        // 2^64 - 1 ticks at 156.25 MHz: 118,059,162,071,741,130 µs, about 3,741 years.
        assert_eq!(
            ticks_to_us(u64::MAX, 156_250),
            Some(118_059_162_071_741_130)
        );
        // Exact against 128-bit arithmetic, also for the extremes of the frequency.
        for (ticks, khz) in [
            (u64::MAX, u32::MAX),
            (u64::MAX - 1, 1_000_000),
            (123_456_789_012_345, 156_250),
            (u64::MAX / 1000, 1),
            (999, 1),
        ] {
            let exact = u128::from(ticks) * 1000 / u128::from(khz);
            let want = u64::try_from(exact).unwrap_or(u64::MAX);
            assert_eq!(ticks_to_us(ticks, khz), Some(want), "{ticks} at {khz} kHz");
        }
        // A 1 kHz clock saturates rather than wrapping.
        assert_eq!(ticks_to_us(u64::MAX, 1), Some(u64::MAX));
        assert_eq!(ticks_to_us(5, 0), None, "0 kHz: no clock");
    }

    #[test]
    fn a_device_clock_needs_a_frequency() {
        assert_eq!(DeviceClock::new(0), None);
        let c = DeviceClock::new(156_250).unwrap();
        assert_eq!(c.khz(), 156_250);
        let bar = Ticking::at(3 * 156_250_000, 0);
        assert_eq!(c.now_us(&bar), Ok(3_000_000));
    }
}
