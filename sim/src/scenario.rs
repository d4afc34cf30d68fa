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

/// Which subnet manager a fabric run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmChoice {
    /// The built-in subnet manager and SA on the switch (the default).
    Builtin,
    /// A real OpenSM on ibsim ([`crate::world::opensm`]).
    OpenSm,
}

/// What a fabric run did.
#[derive(Clone, Debug, Default)]
pub struct FabricReport {
    /// Virtual time from the world's start until both ports were ACTIVE (and the
    /// built-in SM's sweep done; OpenSM has swept before the world starts).
    pub subnet_up_ns: u64,
    /// The host's and the target's LIDs, and the SM's.
    pub lids: (u16, u16, u16),
    /// SA PathRecord round trip, in virtual time and in wall time.
    pub sa_round_trip_ns: u64,
    pub sa_round_trip_wall_us: u64,
    /// Credits the target granted at login.
    pub req_lim: i32,
    /// Bytes read and written by RDMA, checked against the image.
    pub bytes_read: usize,
    pub bytes_written: usize,
    /// Virtual time of the 1 MiB READ.
    pub read_ns: u64,
    /// Packets captured and the capture's size in bytes.
    pub captured: u64,
    pub capture_bytes: u64,
    /// Device violations (none expected).
    pub violations: Vec<Violation>,
}

/// One run of a whole subnet: a host function (brought up by the access layer) and
/// an SRP target on the switch, the subnet manager of `sm`, an SA PathRecord query,
/// a CM login and a 1 MiB READ and 64 KiB WRITE by RDMA, checked byte for byte.
/// With `pcap`, every packet crossing a link is captured there.
pub fn fabric_run(sm: SmChoice, pcap: Option<&std::path::Path>) -> Result<FabricReport, String> {
    use crate::fabric::FabricConfig;
    use crate::world::probe::{self, Host, MS, TempImage};
    use crate::world::{Manager, World};

    let clock = Clock::new();
    let memory = probe::host_memory();
    let dev = probe::function(&clock, &memory);
    let image = TempImage::new();
    let mut host = Host::up(&dev, &memory, &clock);
    let nodes = probe::nodes(&dev, probe::target_node(&image));
    let mut world = match sm {
        SmChoice::Builtin => World::new(
            clock.clone(),
            FabricConfig::default(),
            nodes,
            Manager::default(),
        ),
        SmChoice::OpenSm => World::with_opensm(clock.clone(), FabricConfig::default(), nodes)
            .map_err(|e| format!("starting ibsim and OpenSM: {e}"))?,
    };
    if let Some(p) = pcap {
        world
            .capture_to(p)
            .map_err(|e| format!("capture to {}: {e}", p.display()))?;
    }
    let mut r = FabricReport::default();
    let start = clock.now_ns();
    let builtin = sm == SmChoice::Builtin;
    let up = world.run_while(2_000 * MS, |w| {
        host.active()
            && w.target(1).is_some_and(|t| t.port.state == 4)
            && (!builtin || w.manager().sm.sweep_done())
    });
    if !up {
        return Err("the ports never became ACTIVE".into());
    }
    r.subnet_up_ns = clock.now_ns() - start;
    let (tlid, tgid) = {
        let t = world.target(1).ok_or("no target")?;
        (t.port.lid, probe::gid(t.port.gid_prefix, t.port.port_guid))
    };
    r.lids = (host.lid(), tlid, host.sm_lid());
    let q = probe::path_query(1, host.gid(), tgid);
    let (t0, w0) = (clock.now_ns(), std::time::Instant::now());
    let sm_lid = host.sm_lid();
    let a = probe::mad_round_trip(&mut world, &mut host, sm_lid, &q, 2_000 * MS)
        .ok_or("no SA answer")?;
    r.sa_round_trip_ns = clock.now_ns() - t0;
    r.sa_round_trip_wall_us = w0.elapsed().as_micros() as u64;
    if probe::be16(&a, 4) != 0 || a[56 + 8..56 + 24] != tgid {
        return Err(format!("SA answered status {:#x}", probe::be16(&a, 4)));
    }
    let s = probe::login(&mut world, &mut host);
    r.req_lim = s.req_lim;

    let (data_off, data_pa) = host.data();
    let t0 = clock.now_ns();
    let iu = probe::srp_cmd(
        1,
        &probe::rw10(probe::READ10, 0, 2048),
        true,
        data_pa,
        host.rkey,
        1 << 20,
    );
    let rsp =
        probe::command(&mut world, &mut host, &iu, 1_000 * MS).ok_or("no response to READ")?;
    r.read_ns = clock.now_ns() - t0;
    let mut got = vec![0u8; 1 << 20];
    host.dma
        .read(data_off, &mut got)
        .map_err(|e| format!("{e:?}"))?;
    if rsp[19] != 0 || got != probe::image_blocks(&mut world, 0, 2048) {
        return Err("the READ did not bring the image's bytes".into());
    }
    r.bytes_read = got.len();
    let out: Vec<u8> = (0..65536u32).map(|i| (i * 7 + 1) as u8).collect();
    host.dma
        .write(data_off, &out)
        .map_err(|e| format!("{e:?}"))?;
    let iu = probe::srp_cmd(
        2,
        &probe::rw10(probe::WRITE10, 64, 128),
        false,
        data_pa,
        host.rkey,
        65536,
    );
    let rsp =
        probe::command(&mut world, &mut host, &iu, 1_000 * MS).ok_or("no response to WRITE")?;
    if rsp[19] != 0 || probe::image_blocks(&mut world, 64, 128) != out {
        return Err("the WRITE did not reach the image".into());
    }
    r.bytes_written = out.len();
    r.captured = world.finish_capture().map_err(|e| e.to_string())?;
    if let Some(p) = pcap {
        r.capture_bytes = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    }
    r.violations = dev.take_violations();
    Ok(r)
}
