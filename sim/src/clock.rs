//! The one virtual clock every part of the simulator runs on, in microseconds.

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

    /// The current time in microseconds.
    pub fn now_us(&self) -> u64 {
        self.0.get()
    }

    /// Moves time forward.
    pub fn advance_us(&self, us: u64) {
        self.0.set(self.0.get().saturating_add(us));
    }
}
