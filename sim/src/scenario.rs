//! Whole runs of the access layer against the device model, shared by the
//! `fabboot-sim` command and the tests.

use fabboot_hca::bringup::{self, BringupConfig};
use fabboot_hca::dma::Span;
use fabboot_hca::objects;
use fabboot_hca::plan::{MAD_RECV_SLOTS, MAD_SLOT};
use fabboot_hca::plan::{MemoryPlan, PlanConfig};
use fabboot_hca::resources::{self, GSI_QKEY, Queues, Resources};
use fabboot_hca::wqe::AddressVector;

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
    /// The objects created after INIT_HCA.
    pub resources: Resources,
    /// PortInfo through MAD_IFC: (PortState, LID, SM LID).
    pub port_info: (u8, u16, u16),
    /// Register (reads, writes) to post one QP1 send and reap its completion.
    pub mmio_per_send: (u64, u64),
}

/// The LID the scenario's subnet manager gave the port, and the SM's.
pub const LID: u16 = 0x11;
/// See [`LID`].
pub const SM_LID: u16 = 0x01;

/// A SubnGet(PortInfo) SMP for the local port (LID-routed, IBTA vol. 1 §14.2.1.1).
pub fn get_port_info() -> [u8; 256] {
    let mut mad = [0u8; 256];
    mad[0] = 1; // base version
    mad[1] = 0x01; // class: subnet management, LID routed
    mad[2] = 1; // class version
    mad[3] = 0x01; // Get
    mad[8..16].copy_from_slice(&0x6662_6F6F_7400_0001u64.to_be_bytes()); // transaction ID
    mad[16..18].copy_from_slice(&0x0015u16.to_be_bytes()); // PortInfo
    mad[20..24].copy_from_slice(&1u32.to_be_bytes()); // port 1
    mad
}

/// Brings the function up from `start` with the boot driver's plan and caps, then
/// tears it down again.
pub fn hca_bringup(start: Start) -> Result<BringupReport, String> {
    let plan = MemoryPlan::new(PlanConfig::BOOT);
    let clock = Clock::new();
    let memory = HostMemory::new(plan.total, DMA_PHYS);
    let device = Mlx5Function::connectx4(BAR0, clock.clone());
    device.attach_memory(memory.region());
    device.firmware_mut().port.activate(LID, SM_LID, 0, 18);
    if start == Start::LeftRunning {
        device.leave_running(FOREIGN);
    }
    let hal = SimHal::new(&device, clock.clone());
    let dma = memory.region();
    let result = bringup::bring_up(&hal, &dma, plan, BringupConfig::BOOT)
        .map_err(|e| format!("bring-up failed: {e:?}"))
        .and_then(|mut hca| {
            let res = resources::open(&mut hca, &hal, &dma)
                .map_err(|e| format!("creating objects failed: {e:?}"))?;
            let answer =
                objects::mad_ifc(&mut hca.cmd, &hal, &dma, resources::PORT, &get_port_info())
                    .map_err(|e| format!("MAD_IFC failed: {e:?}"))?;
            // One MAD out through QP1, to count what a posted request costs.
            let mut q = Queues::new(&plan, &res);
            let buf = Span {
                offset: plan.mad_buffers.offset + MAD_RECV_SLOTS * MAD_SLOT,
                len: 256,
            };
            dma.write(buf.offset, &get_port_info())
                .map_err(|e| format!("{e:?}"))?;
            let before = device.mmio_counts();
            let to = AddressVector {
                dqpn: 1,
                qkey: GSI_QKEY,
                dlid: SM_LID,
                sl: 0,
                path_bits: 0,
            };
            q.gsi_sq
                .post_ud_send(&hal, &dma, &to, buf)
                .map_err(|e| format!("posting a MAD failed: {e:?}"))?;
            let done = q
                .gsi_cq
                .poll(&dma)
                .map_err(|e| format!("{e:?}"))?
                .ok_or("the MAD send never completed")?;
            q.gsi_sq.complete(done.wqe_counter);
            let after = device.mmio_counts();
            let mmio_per_send = (after.reads - before.reads, after.writes - before.writes);
            let _ = device.take_outbox();
            let data = &answer[64..128];
            let port_info = (
                data[32] & 0xF,
                u16::from_be_bytes([data[16], data[17]]),
                u16::from_be_bytes([data[18], data[19]]),
            );
            resources::close(&mut hca, &hal, &dma, &res)
                .map_err(|e| format!("destroying objects failed: {e:?}"))?;
            let returned = bringup::teardown(&mut hca, &hal, &dma)
                .map_err(|e| format!("teardown failed: {e:?}"))?;
            Ok((
                hca.boot_pages,
                hca.init_pages,
                returned,
                res,
                port_info,
                mmio_per_send,
            ))
        });
    let report = result.map(
        |(boot_pages, init_pages, pages_returned, resources, port_info, mmio_per_send)| {
            BringupReport {
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
                resources,
                port_info,
                mmio_per_send,
            }
        },
    );
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
        _ => object_opcode_name(op),
    }
}

fn object_opcode_name(op: u16) -> &'static str {
    use fabboot_hca::objects::opcode::*;
    match op {
        CREATE_MKEY => "CREATE_MKEY",
        DESTROY_MKEY => "DESTROY_MKEY",
        CREATE_EQ => "CREATE_EQ",
        DESTROY_EQ => "DESTROY_EQ",
        CREATE_CQ => "CREATE_CQ",
        DESTROY_CQ => "DESTROY_CQ",
        CREATE_QP => "CREATE_QP",
        DESTROY_QP => "DESTROY_QP",
        RST2INIT_QP => "RST2INIT_QP",
        INIT2RTR_QP => "INIT2RTR_QP",
        RTR2RTS_QP => "RTR2RTS_QP",
        QP_2ERR => "2ERR_QP",
        QP_2RST => "2RST_QP",
        MAD_IFC => "MAD_IFC",
        ALLOC_PD => "ALLOC_PD",
        DEALLOC_PD => "DEALLOC_PD",
        ALLOC_UAR => "ALLOC_UAR",
        DEALLOC_UAR => "DEALLOC_UAR",
        _ => "?",
    }
}
