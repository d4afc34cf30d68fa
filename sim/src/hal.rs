//! The access layer's [`Hal`] over the device model and the virtual clock: register
//! accesses go to the model (which counts them); stalls advance virtual time.

use fabboot_hca::Mmio;
use fabboot_hca::hal::Hal;

use crate::clock::Clock;
use crate::device::Mlx5Function;

/// The simulated platform for one function.
#[derive(Debug)]
pub struct SimHal<'a> {
    device: &'a Mlx5Function,
    clock: Clock,
}

impl<'a> SimHal<'a> {
    /// A platform whose BAR0 is `device` and whose time is `clock`.
    pub fn new(device: &'a Mlx5Function, clock: Clock) -> SimHal<'a> {
        SimHal { device, clock }
    }
}

impl Mmio for SimHal<'_> {
    fn read32(&self, offset: usize) -> u32 {
        self.device.read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.device.write32(offset, value)
    }
}

impl Hal for SimHal<'_> {
    fn read64(&self, offset: usize) -> u64 {
        u64::from(self.device.read32(offset)) << 32 | u64::from(self.device.read32(offset + 4))
    }
    fn write64(&self, offset: usize, value: u64) {
        self.device.write64(offset, value);
    }
    fn stall_us(&self, us: u32) {
        self.clock.advance_us(u64::from(us));
    }
    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }
    fn reset_function(&self) -> bool {
        self.device.function_level_reset();
        self.clock.advance_us(100_000);
        true
    }
}

/// The same platform owning a reference to its function, for a driver that lives as
/// long as the world it runs in (the native runs of the initiator).
#[derive(Debug, Clone)]
pub struct SharedHal {
    device: std::rc::Rc<Mlx5Function>,
    clock: Clock,
}

impl SharedHal {
    /// A platform whose BAR0 is `device` and whose time is `clock`.
    pub fn new(device: std::rc::Rc<Mlx5Function>, clock: Clock) -> SharedHal {
        SharedHal { device, clock }
    }
}

impl SharedHal {
    fn hal(&self) -> SimHal<'_> {
        SimHal::new(&self.device, self.clock.clone())
    }
}

impl Mmio for SharedHal {
    fn read32(&self, offset: usize) -> u32 {
        self.hal().read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.hal().write32(offset, value)
    }
}

impl Hal for SharedHal {
    fn read64(&self, offset: usize) -> u64 {
        self.hal().read64(offset)
    }
    fn write64(&self, offset: usize, value: u64) {
        self.hal().write64(offset, value)
    }
    fn stall_us(&self, us: u32) {
        self.clock.advance_us(u64::from(us));
    }
    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }
    fn reset_function(&self) -> bool {
        self.hal().reset_function()
    }
}
