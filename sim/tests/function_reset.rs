//! The images' reset of a function another driver left running: a PCIe function-level
//! reset through configuration space (`fabboot::pci::function_level_reset`, inside the
//! images' HAL), against the model's configuration space.

use fabboot::miniport::hal::{PortHal, Stall};
use fabboot::pci::{self, ConfigAccess, FlrError};
use fabboot_hca::Mmio;
use fabboot_hca::bringup::{self, BringupConfig, BringupError};
use fabboot_hca::hal::Hal;
use fabboot_hca::init_seg::offset;
use fabboot_hca::plan::{MemoryPlan, PlanConfig};
use fabboot_sim::clock::Clock;
use fabboot_sim::device::{Mlx5Function, Violation};
use fabboot_sim::memory::HostMemory;
use fabboot_sim::scenario::{BAR0, DMA_PHYS, FOREIGN};

/// BAR0 as the port mapped it.
struct Bar<'a>(&'a Mlx5Function);

impl Mmio for Bar<'_> {
    fn read32(&self, off: usize) -> u32 {
        self.0.read32(off)
    }
    fn write32(&self, off: usize, v: u32) {
        self.0.write32(off, v)
    }
}

/// The port's stall: virtual time passes.
struct Wait(Clock);

impl Stall for Wait {
    fn stall_us(&self, us: u32) {
        self.0.advance_us(u64::from(us));
    }
}

/// `*PortGetBusData` / `*PortSetBusDataByOffset` over the model.
struct Config<'a>(&'a Mlx5Function);

impl ConfigAccess for Config<'_> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> usize {
        let space = self.0.config_space();
        match space.get(offset..offset + buf.len()) {
            Some(part) => {
                buf.copy_from_slice(part);
                buf.len()
            }
            None => 0,
        }
    }
    fn write(&self, offset: usize, data: &[u8]) -> usize {
        self.0.config_write(offset, data)
    }
}

fn running_device(clock: &Clock) -> (Mlx5Function, HostMemory, MemoryPlan) {
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    device.leave_running(FOREIGN);
    (device, memory, plan)
}

#[test]
fn the_image_hal_resets_a_function_left_running_and_brings_it_up() {
    let clock = Clock::new();
    let (device, memory, plan) = running_device(&clock);
    let hal = PortHal::with_config(Bar(&device), Wait(clock.clone()), Config(&device), 0);
    let before = device.config_space();
    let t0 = clock.now_us();
    let mut hca = bringup::bring_up(&hal, &memory.region(), plan, BringupConfig::BOOT)
        .expect("bring-up after an FLR");
    assert_eq!(device.resets(), 1);
    assert!(
        clock.now_us() - t0 >= 100_000,
        "the FLR's 100 ms were waited"
    );
    assert_eq!(
        device.config_space(),
        before,
        "BAR0, Command and Device Control are as the port left them"
    );
    assert_eq!(hal.reset_error(), None);
    bringup::teardown(&mut hca, &hal, &memory.region()).unwrap();
    assert_eq!(device.violations(), []);
}

#[test]
fn an_untouched_function_is_not_reset_again() {
    let clock = Clock::new();
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    let hal = PortHal::with_config(Bar(&device), Wait(clock.clone()), Config(&device), 0);
    clock.advance_us(30_000); // past power-on initialisation
    assert!(hal.reset_function());
    assert_eq!(device.resets(), 0);
    assert_eq!(device.violations(), []);
}

#[test]
fn without_configuration_access_a_running_function_is_refused() {
    let clock = Clock::new();
    let (device, memory, plan) = running_device(&clock);
    let hal = PortHal::new(Bar(&device), Wait(clock.clone()), 0);
    let err = bringup::bring_up(&hal, &memory.region(), plan, BringupConfig::BOOT).unwrap_err();
    assert_eq!(err, BringupError::ResetUnavailable);
    assert_eq!(hal.reset_error(), Some(FlrError::NoConfigAccess));
    assert_eq!(device.resets(), 0);
    assert_eq!(device.violations(), []);
}

#[test]
fn the_model_holds_a_driver_to_the_flr_rules() {
    let clock = Clock::new();
    let (device, _memory, _plan) = running_device(&clock);
    let config = Config(&device);
    // Initiate FLR by hand, then touch BAR0 at once: the function is still resetting.
    let mut ctl = [0u8; 2];
    config.read(0x68, &mut ctl);
    let ctl = u16::from_le_bytes(ctl) | 1 << 15;
    config.write(0x68, &ctl.to_le_bytes());
    assert_eq!(device.resets(), 1);
    assert_eq!(device.read32(offset::FW_REV), u32::MAX);
    // After 100 ms the function is back, but nothing decodes until BAR0 and Command
    // are programmed again.
    clock.advance_us(100_000);
    assert_eq!(device.read32(offset::FW_REV), u32::MAX);
    let v = device.take_violations();
    assert!(
        matches!(
            v.as_slice(),
            [
                Violation::Decode { why: w1, .. },
                Violation::Decode { why: w2, .. }
            ] if w1.contains("100 ms") && w2.contains("BAR0")
        ),
        "{v:?}"
    );
    let low = (BAR0 as u32) | 0b1100;
    config.write(0x10, &low.to_le_bytes());
    config.write(0x14, &((BAR0 >> 32) as u32).to_le_bytes());
    config.write(0x04, &0x0002u16.to_le_bytes()); // memory, no bus mastering
    assert_ne!(device.read32(offset::FW_REV), u32::MAX, "decodes again");
    // Without bus mastering the command doorbell is refused: the device cannot DMA.
    device.write32(offset::CMD_DBELL, 1);
    let v = device.take_violations();
    assert!(
        matches!(v.as_slice(), [Violation::BusMaster { .. }]),
        "{v:?}"
    );
}

#[test]
fn a_function_without_flr_is_a_typed_error() {
    let clock = Clock::new();
    let (device, _memory, _plan) = running_device(&clock);
    // A function whose capability list is cut (a bridge hiding it, say).
    struct NoCaps<'a>(Config<'a>);
    impl ConfigAccess for NoCaps<'_> {
        fn read(&self, offset: usize, buf: &mut [u8]) -> usize {
            let n = self.0.read(offset, buf);
            if offset <= 0x06 && offset + buf.len() > 0x06 {
                buf[0x06 - offset] &= !0x10;
            }
            n
        }
        fn write(&self, offset: usize, data: &[u8]) -> usize {
            self.0.write(offset, data)
        }
    }
    let r = pci::function_level_reset(&NoCaps(Config(&device)), |_| {});
    assert_eq!(r, Err(FlrError::NotExpress));
    assert_eq!(device.resets(), 0);
    let hal = PortHal::with_config(
        Bar(&device),
        Wait(clock.clone()),
        NoCaps(Config(&device)),
        0,
    );
    assert!(!hal.reset_function());
    assert_eq!(hal.reset_error(), Some(FlrError::NotExpress));
    device.take_violations();
}
