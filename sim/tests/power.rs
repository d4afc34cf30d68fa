//! The power cycle storport runs around sleep and hibernation, on the shipped storport
//! image in the host emulator (the demo's hibernate/resume cycle runs the whole path
//! with a power-down; these tests take the paths the demo does not):
//!
//! * the image reports exactly the control types it implements;
//! * stop, set-running-config, restart with no power-down between: the function kept
//!   its state, so `ScsiSetRunningConfig` resets it (the one place after
//!   `HwFindAdapter` where configuration space may be written), the restart brings
//!   the HCA up again in the same region and the disk answers again by itself;
//! * a restart storport asks for while the function is still running (no stop, no
//!   set-running-config): the driver cannot reset it without configuration space, so
//!   it fails cleanly with `HcaBringupFailed` 0xFFFD, without breaking the port's
//!   rules; a set-running-config then recovers;
//! * the hibernation stack's `DUMP_MODE_MARK_MEMORY` pass beside the live instance
//!   touches nothing of the device.

use std::path::{Path, PathBuf};

use fabboot::port::Flavour;
use fabboot_sim::host::Arch;
use fabboot_sim::host::port::{
    Dir, Env, Machine, PHYS_BASE, SCSI_QUERY_SUPPORTED_CONTROL_TYPES, SCSI_RESTART_ADAPTER,
    SCSI_SET_RUNNING_CONFIG, SCSI_STOP_ADAPTER, SrbRequest,
};
use fabboot_sim::host::rig::{HostRig, RigOptions};
use fabboot_sim::scenario::SmChoice;

/// `HcaBringupFailed` with status 0xFFFD: the function could not be reset.
const RESET_UNAVAILABLE: u32 = 0xFB05_FFFD;
const DISK_SECTORS: u64 = 8192;

fn images() -> PathBuf {
    fabboot_sim::images::built(Path::new(env!("CARGO_TARGET_TMPDIR"))).expect("the images")
}

/// A disk whose sectors start with their LBA.
fn disk(test: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("power-{test}.img"));
    let mut bytes = vec![0u8; (DISK_SECTORS * 512) as usize];
    for (lba, sector) in bytes.chunks_mut(512).enumerate() {
        sector[..8].copy_from_slice(&(lba as u64).to_le_bytes());
    }
    std::fs::write(&path, &bytes).expect("writing the test disk");
    path
}

/// The x86_64 storport image started in the kernel environment, its target from the
/// registry.
fn kernel(test: &str) -> Machine {
    let rig = HostRig::new(&RigOptions {
        arch: Arch::X86_64,
        flavour: Flavour::Storport,
        env: Env::Kernel,
        sm: SmChoice::Builtin,
        disk: disk(test),
        pcap: None,
        driver_parameter: None,
    })
    .expect("the machine");
    let mut m = rig.machine;
    m.port.argument_string = Some(rig.target.driver_parameter());
    let image = std::fs::read(images().join("x86_64").join("fabboot.sys")).expect("the image");
    m.load(&image).expect("loading");
    m.driver_entry().expect("DriverEntry");
    m.start_adapter(0).expect("the adapter");
    m
}

/// Reads sector `lba` through the kernel instance (storport retries while the driver
/// answers BUSY) and checks it is that sector.
fn read_back(m: &mut Machine, lba: u64) {
    let buf = m.alloc_ram(4096).expect("a buffer");
    let id = m.submit(SrbRequest {
        cdb: vec![0x28, 0, 0, 0, (lba >> 8) as u8, lba as u8, 0, 0, 1, 0],
        lun: 0,
        dir: Dir::In,
        pages: vec![(buf, 512)],
        mapped: false,
    });
    let done = m
        .pump(
            60_000_000_000,
            |p| p.completed.iter().any(|c| c.id == id),
            1,
        )
        .expect("pumping");
    assert!(done, "READ(10) not completed in 60 s; log {:?}", m.port.log);
    let i = m.port.completed.iter().position(|c| c.id == id).unwrap();
    let c = m.port.completed.remove(i);
    assert_eq!(c.srb_status & 0x3F, 1, "READ(10) status {c:?}");
    let mut got = [0u8; 8];
    m.ram()
        .read((buf - PHYS_BASE) as usize, &mut got)
        .expect("the buffer");
    assert_eq!(u64::from_le_bytes(got), lba, "the sector read back");
}

fn clean(m: &Machine) {
    assert_eq!(m.port.breaches, Vec::<String>::new(), "port breaches");
    assert_eq!(m.port.dev.take_violations(), vec![], "device violations");
}

#[test]
fn the_image_reports_the_power_cycle_it_implements() {
    let mut m = kernel("supported");
    let supported = m.supported_controls().expect("the query");
    let yes: Vec<u32> = (0..supported.len() as u32)
        .filter(|&t| supported[t as usize])
        .collect();
    assert_eq!(
        yes,
        vec![
            SCSI_QUERY_SUPPORTED_CONTROL_TYPES,
            SCSI_STOP_ADAPTER,
            SCSI_RESTART_ADAPTER,
            SCSI_SET_RUNNING_CONFIG
        ]
    );
    clean(&m);
}

#[test]
fn stop_and_restart_without_a_power_down_reset_the_function_in_set_running_config() {
    let mut m = kernel("stop-restart");
    read_back(&mut m, 7);
    let resets = m.port.dev.resets();
    assert!(m.adapter_control(SCSI_STOP_ADAPTER).expect("stop"));
    assert!(
        m.adapter_control(SCSI_SET_RUNNING_CONFIG)
            .expect("set running config")
    );
    assert_eq!(
        m.port.dev.resets(),
        resets + 1,
        "the function kept its state through the stop: it is reset once, before the restart"
    );
    assert!(m.adapter_control(SCSI_RESTART_ADAPTER).expect("restart"));
    read_back(&mut m, 4000);
    read_back(&mut m, 9);
    // A planned power cycle is no outage: nothing in the event log.
    assert!(m.port.log.is_empty(), "event log {:?}", m.port.log);
    clean(&m);
}

#[test]
fn a_restart_without_set_running_config_fails_cleanly_and_set_running_config_recovers() {
    let mut m = kernel("restart-running");
    read_back(&mut m, 3);
    // A restart of a running adapter that was never stopped changes nothing.
    assert!(m.adapter_control(SCSI_RESTART_ADAPTER).expect("restart"));
    read_back(&mut m, 4);
    assert!(m.adapter_control(SCSI_STOP_ADAPTER).expect("stop"));
    let resets = m.port.dev.resets();
    assert!(
        !m.adapter_control(SCSI_RESTART_ADAPTER).expect("restart"),
        "the stopped function keeps its command queue address: without configuration \
         space it cannot be reset at DIRQL"
    );
    assert_eq!(
        m.port.dev.resets(),
        resets,
        "no reset without configuration space"
    );
    let ids: Vec<u32> = m.port.log.iter().map(|e| e.unique_id).collect();
    assert_eq!(ids, vec![RESET_UNAVAILABLE]);
    // No configuration access was attempted under ScsiRestartAdapter.
    clean(&m);
    assert!(
        m.adapter_control(SCSI_SET_RUNNING_CONFIG)
            .expect("set running config")
    );
    assert_eq!(m.port.dev.resets(), resets + 1);
    assert!(m.adapter_control(SCSI_RESTART_ADAPTER).expect("restart"));
    read_back(&mut m, 5);
    clean(&m);
}

#[test]
fn the_mark_memory_pass_touches_nothing_of_the_live_device() {
    let mut m = kernel("mark-memory");
    read_back(&mut m, 1);
    let image = std::fs::read(images().join("x86_64").join("fabboot.sys")).expect("the image");
    let before = m.port.dev.mmio_counts();
    let resets = m.port.dev.resets();
    assert!(m.mark_memory_pass(&image).expect("the pass"), "found");
    let after = m.port.dev.mmio_counts();
    assert_eq!((after.reads, after.writes), (before.reads, before.writes));
    assert_eq!(m.port.dev.resets(), resets);
    read_back(&mut m, 2);
    clean(&m);
}
