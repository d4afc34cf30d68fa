//! Bring-up and teardown of the HCA function by the access layer, against the model.

use fabboot_hca::bringup::{self, BringupConfig, BringupError};
use fabboot_hca::cmdif::{CmdIf, opcode};
use fabboot_hca::plan::{MemoryPlan, PlanConfig};
use fabboot_sim::clock::Clock;
use fabboot_sim::device::{Mlx5Function, Violation};
use fabboot_sim::hal::SimHal;
use fabboot_sim::memory::HostMemory;
use fabboot_sim::scenario::{self, BAR0, DMA_PHYS, FOREIGN, Start};

#[test]
fn brings_up_from_power_on_and_from_a_device_left_running() {
    for start in [Start::PowerOn, Start::LeftRunning] {
        let r = scenario::hca_bringup(start).expect("bring-up");
        assert_eq!(r.violations, [], "{start:?}");
        assert_eq!(r.resets, 1, "every instance resets the function first");
        assert_eq!(r.boot_pages, 6);
        assert!(
            r.init_pages > 0 && r.init_pages <= 64,
            "small caps, few pages: {}",
            r.init_pages
        );
        assert_eq!(
            r.pages_returned,
            r.boot_pages + r.init_pages,
            "teardown takes every page back"
        );
        let ops: Vec<u16> = r.commands.iter().map(|c| c.0).collect();
        assert_eq!(ops.first(), Some(&opcode::ENABLE_HCA));
        assert_eq!(ops.last(), Some(&opcode::DISABLE_HCA));
        assert!(r.commands.iter().all(|c| c.2 == 0), "{:?}", r.commands);
        // Commands are polled in memory: register reads happen only while waiting for
        // firmware to initialise, never per command.
        assert!(r.mmio.reads <= 6, "{:?}", r.mmio);
        assert_eq!(
            r.mmio_per_send,
            (0, 1),
            "a posted request: no read, one doorbell"
        );
        assert_eq!(
            (r.port_info.0, r.port_info.1),
            (4, scenario::LID),
            "PortInfo through MAD_IFC"
        );
        assert_eq!(
            r.mmio.writes as usize,
            2 + r.commands.len() + 1,
            "queue address + one doorbell per command + the measured send"
        );
    }
}

#[test]
fn skipping_the_reset_on_a_running_device_is_caught() {
    let clock = Clock::new();
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    device.leave_running(FOREIGN);
    let hal = SimHal::new(&device, clock.clone());
    let dma = memory.region();
    let _ = CmdIf::start(&hal, &dma, plan.cmd, 1_000_000, 1_000_000);
    let v = device.take_violations();
    assert!(
        matches!(
            v.as_slice(),
            [Violation::Doorbell {
                what: "command queue moved while the device owns a command",
                ..
            }]
        ),
        "{v:?}"
    );
}

#[test]
fn a_plan_too_small_for_firmware_is_a_typed_error() {
    let clock = Clock::new();
    let plan = MemoryPlan::new(PlanConfig {
        firmware_pages: 10,
        ..PlanConfig::BOOT
    });
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    let hal = SimHal::new(&device, clock.clone());
    let dma = memory.region();
    let err = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT).unwrap_err();
    assert!(
        matches!(err, BringupError::NotEnoughPages { reserved: 10, asked } if asked > 10),
        "{err:?}"
    );
    let last = *device.firmware().history.last().unwrap();
    assert_eq!(
        last,
        (opcode::MANAGE_PAGES, 0, 0),
        "firmware was told the pages cannot be given"
    );
    assert_eq!(device.violations(), []);
}

#[test]
fn ethernet_ports_are_refused() {
    let clock = Clock::new();
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    let hal = SimHal::new(&device, clock.clone());
    let dma = memory.region();
    // Reset happens inside bring_up; set the port type on the firmware it resets to
    // by bringing up once, then changing the caps the model reports.
    let mut hca = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT).unwrap();
    bringup::teardown(&mut hca, &hal, &dma).unwrap();
    device.set_port_type_after_reset(1);
    let err = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT).unwrap_err();
    assert_eq!(err, BringupError::NotInfiniBand { port_type: 1 });
    assert_eq!(device.violations(), []);
}
