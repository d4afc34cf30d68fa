//! Whole runs of the access layer against the device model, shared by the
//! `fabboot-sim` command and the tests.

use fabboot_hca::bringup::{self, BringupConfig};
use fabboot_hca::plan::{MemoryPlan, PlanConfig};

use crate::clock::Clock;
use crate::device::{Mlx5Function, MmioCounts, Violation};
use crate::hal::SimHal;
use crate::memory::HostMemory;

/// Where BAR0 of the simulated function sits.
pub const BAR0: u64 = 0x38_0000_0000;
/// Physical address of the driver's DMA region.
pub const DMA_PHYS: u64 = 0x1_0000_0000;
/// Memory an earlier driver used (never the new driver's).
pub const FOREIGN: u64 = 0x7_0000_0000;

/// The state the function is in when the driver starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Just powered on.
    PowerOn,
    /// Left running by an earlier driver, with a command of its own in flight.
    LeftRunning,
}

/// What a bring-up and teardown run did.
#[derive(Debug)]
pub struct BringupReport {
    pub start: Start,
    pub plan: MemoryPlan,
    /// Commands in the order firmware executed them: (opcode, op_mod, status).
    pub commands: Vec<(u16, u16, u8)>,
    pub boot_pages: usize,
    pub init_pages: usize,
    pub pages_returned: usize,
    pub resets: u32,
    pub mmio: MmioCounts,
    pub virtual_us: u64,
    pub violations: Vec<Violation>,
}

/// Brings the function up from `start` with the boot driver's plan and caps, then
/// tears it down again.
pub fn hca_bringup(start: Start) -> Result<BringupReport, String> {
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    let clock = Clock::new();
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    if start == Start::LeftRunning {
        device.leave_running(FOREIGN);
    }
    let hal = SimHal::new(&device, clock.clone());
    let dma = memory.region();
    let result = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT)
        .map_err(|e| format!("bring-up failed: {e:?}"))
        .and_then(|mut hca| {
            let returned = bringup::teardown(&mut hca, &hal, &dma)
                .map_err(|e| format!("teardown failed: {e:?}"))?;
            Ok((hca.boot_pages, hca.init_pages, returned))
        });
    let report = result.map(|(boot_pages, init_pages, pages_returned)| BringupReport {
        start,
        plan,
        commands: device.firmware().history.clone(),
        boot_pages,
        init_pages,
        pages_returned,
        resets: device.resets(),
        mmio: device.mmio_counts(),
        virtual_us: clock.now_us(),
        violations: device.take_violations(),
    });
    // Whatever happened, the violations are in the report or the error.
    let leftover = device.take_violations();
    match report {
        Ok(r) => Ok(r),
        Err(e) if leftover.is_empty() => Err(e),
        Err(e) => Err(format!("{e}; violations: {leftover:?}")),
    }
}

/// A command's name, for reports.
pub fn opcode_name(op: u16) -> &'static str {
    use fabboot_hca::cmdif::opcode::*;
    match op {
        QUERY_HCA_CAP => "QUERY_HCA_CAP",
        INIT_HCA => "INIT_HCA",
        TEARDOWN_HCA => "TEARDOWN_HCA",
        ENABLE_HCA => "ENABLE_HCA",
        DISABLE_HCA => "DISABLE_HCA",
        QUERY_PAGES => "QUERY_PAGES",
        MANAGE_PAGES => "MANAGE_PAGES",
        SET_HCA_CAP => "SET_HCA_CAP",
        QUERY_ISSI => "QUERY_ISSI",
        SET_ISSI => "SET_ISSI",
        NOP => "NOP",
        _ => "?",
    }
}
