//! The one virtual clock every part of the simulator runs on. It counts nanoseconds
//! (the fabric's serialisation and switch latencies are sub-microsecond) and hands
//! microseconds to the driver's `Hal`.

use std::cell::Cell;
use std::rc::Rc;

/// A shared virtual clock; cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Clock(Rc<Cell<u64>>);

impl Clock {
    /// A clock at time zero.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// The current time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.0.get()
    }

    /// The current time in microseconds.
    pub fn now_us(&self) -> u64 {
        self.0.get() / 1000
    }

    /// Moves time forward by `ns` nanoseconds.
    pub fn advance_ns(&self, ns: u64) {
        self.0.set(self.0.get().saturating_add(ns));
    }

    /// Moves time forward by `us` microseconds.
    pub fn advance_us(&self, us: u64) {
        self.advance_ns(us.saturating_mul(1000));
    }

    /// Moves time forward to `ns` if that is later than now.
    pub fn advance_to_ns(&self, ns: u64) {
        if ns > self.0.get() {
            self.0.set(ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_and_microseconds_share_one_count() {
        let c = Clock::new();
        let shared = c.clone();
        c.advance_us(3);
        shared.advance_ns(999);
        assert_eq!((c.now_ns(), c.now_us()), (3_999, 3));
        c.advance_to_ns(1);
        assert_eq!(c.now_ns(), 3_999, "time never goes back");
        c.advance_to_ns(10_000);
        assert_eq!(shared.now_us(), 10);
    }
}
