//! Where the shipped images learn their target, run in the host emulator: an image
//! with no configuration gives up at once with `ConfigMissing`; an sBFT in base memory
//! or among the ACPI tables (in both byte orders) names the target of an unconfigured
//! image; an sBFT outranks the registry and the image, a damaged one does not stop a
//! configured image, an unusable one does; the dump instance connects with what the
//! normal instance handed over and with nothing else, and refuses dump data it cannot
//! use.
//!
//! The images are built (release, as `cargo xtask build` builds them) into the target
//! directory's temporary directory, shared with the other tests that need them, or
//! taken from `FABBOOT_IMAGES` (a directory laid out as `target/sys`:
//! `<arch>/<name>.sys`); `fabboot_sim::images`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fabboot::bootcfg::handover::{self, Handover};
use fabboot::bootcfg::sbft::ByteOrder;
use fabboot::bootcfg::{BootConfig, Source};
use fabboot::initiator::TargetConfig;
use fabboot::port::Flavour;
use fabboot_sim::boot::configure_image;
use fabboot_sim::host::Arch;
use fabboot_sim::host::firmware::{self, Placement};
use fabboot_sim::host::port::{BAR0_PHYS, Dir, Env, Machine, PHYS_BASE, SrbRequest};
use fabboot_sim::host::rig::{HostRig, RigOptions, TargetIdentity};
use fabboot_sim::scenario::SmChoice;

const SP_RETURN_NOT_FOUND: u32 = 0;
const SP_RETURN_FOUND: u32 = 1;
const CONFIG_MISSING: u32 = 0xFB0D_0000;
/// What the dump instance's `DumpRegion` holds (the normal instance asks for this much
/// and more: the initiator's region and a page).
const DUMP_REGION: u32 = 2 << 20;
/// Sectors of the test disk.
const DISK_SECTORS: u64 = 8192;

/// The images, built once per test run (or found in `FABBOOT_IMAGES`).
fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        fabboot_sim::images::built(Path::new(env!("CARGO_TARGET_TMPDIR")))
            .unwrap_or_else(|e| panic!("the images: {e}"))
    })
}

fn image(arch: Arch, flavour: Flavour) -> Vec<u8> {
    let path = fabboot_sim::images::path(images(), arch, flavour);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A disk of recognisable sectors (each starts with its LBA), for this test only.
fn disk(test: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("boot-config-{test}.img"));
    let mut bytes = vec![0u8; (DISK_SECTORS * 512) as usize];
    for (lba, sector) in bytes.chunks_mut(512).enumerate() {
        sector[..8].copy_from_slice(&(lba as u64).to_le_bytes());
        for (i, b) in sector[8..].iter_mut().enumerate() {
            *b = (lba as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
    }
    std::fs::write(&path, &bytes).expect("writing the test disk");
    path
}

fn rig(test: &str, arch: Arch, flavour: Flavour, env: Env) -> (Machine, TargetIdentity) {
    let rig = HostRig::new(&RigOptions {
        arch,
        flavour,
        env,
        sm: SmChoice::Builtin,
        disk: disk(test),
        pcap: None,
        driver_parameter: None,
    })
    .expect("the machine");
    let HostRig {
        mut machine,
        target,
    } = rig;
    // No DriverParameter unless a test sets one: the image and the firmware decide.
    machine.port.argument_string = None;
    (machine, target)
}

/// Reads `lba` through the started adapter and checks it is that sector of the disk.
fn read_back(m: &mut Machine, lba: u32) {
    let buf = m.alloc_ram(4096).expect("a buffer");
    let req = SrbRequest {
        cdb: vec![
            0x28,
            0,
            (lba >> 24) as u8,
            (lba >> 16) as u8,
            (lba >> 8) as u8,
            lba as u8,
            0,
            0,
            1,
            0,
        ],
        lun: 0,
        dir: Dir::In,
        pages: vec![(buf, 512)],
        mapped: true,
    };
    let done = match m.port.env {
        Env::Kernel => {
            let id = m.submit(req);
            let ok = m
                .pump(
                    10_000_000_000,
                    |p| p.completed.iter().any(|c| c.id == id),
                    1,
                )
                .expect("pumping");
            assert!(ok, "READ(10) not completed in 10 s");
            let i = m.port.completed.iter().position(|c| c.id == id).unwrap();
            m.port.completed.remove(i)
        }
        _ => m.execute(req).expect("READ(10)"),
    };
    assert_eq!(done.srb_status & 0x3F, 1, "READ(10) status {done:?}");
    let mut got = [0u8; 8];
    m.ram()
        .read((buf - PHYS_BASE) as usize, &mut got)
        .expect("the buffer");
    assert_eq!(
        u64::from_le_bytes(got),
        u64::from(lba),
        "the sector read back"
    );
}

/// Starts the adapter as the environment does (the loader inside DriverEntry).
fn start(m: &mut Machine) -> Result<(), String> {
    m.driver_entry().map_err(|e| e.to_string())?;
    m.start_adapter(DUMP_REGION).map_err(|e| e.to_string())
}

/// What must hold after any run: no breach of the port's rules, no device violation,
/// no firmware window left mapped.
fn clean(m: &Machine) {
    assert_eq!(m.port.breaches, Vec::<String>::new(), "port breaches");
    assert_eq!(m.port.dev.take_violations(), vec![], "device violations");
}

fn unique_ids(m: &Machine) -> Vec<u32> {
    m.port.log.iter().map(|e| e.unique_id).collect()
}

#[test]
fn no_configuration_logs_config_missing_and_is_not_found_before_touching_the_hca() {
    for (arch, flavour, env) in [
        (Arch::I686, Flavour::Scsiport, Env::Loader),
        (Arch::X86_64, Flavour::Storport, Env::Kernel),
        (Arch::I686, Flavour::Storport, Env::Kernel),
    ] {
        let (mut m, _) = rig("missing", arch, flavour, env);
        m.load(&image(arch, flavour)).expect("loads");
        let t0 = m.port.clock.now_ns();
        let err = start(&mut m).expect_err("no adapter without a target");
        assert!(
            err.contains("no adapter found") || err.contains("did not find"),
            "{err}"
        );
        assert_eq!(
            m.port.find_status,
            Some(SP_RETURN_NOT_FOUND),
            "{arch:?} {env:?}"
        );
        assert_eq!(unique_ids(&m), [CONFIG_MISSING], "{arch:?} {env:?}");
        // Promptly: no stall, no register touched; base memory and the BIOS area were
        // searched, and both windows given back.
        assert_eq!(m.port.clock.now_ns(), t0, "no virtual time passed");
        let mmio = m.port.dev.mmio_counts();
        assert_eq!((mmio.reads, mmio.writes), (0, 0), "the HCA was not touched");
        assert_eq!(m.port.figures.firmware_maps, 2);
        clean(&m);
        eprintln!(
            "{arch:?} {env:?}: configuration alone: {} instructions, stack {} B",
            m.port.figures.instructions, m.port.figures.find_adapter_stack
        );
    }
}

#[test]
fn an_sbft_in_base_memory_names_the_target_of_an_unconfigured_loader_image() {
    let (mut m, target) = rig("base", Arch::I686, Flavour::Scsiport, Env::Loader);
    let at = firmware::place(
        &mut m.port.firmware,
        &firmware::sbft_table(&target.sbft(), ByteOrder::Network),
        Placement::BaseMemory,
    );
    assert_eq!(at % 16, 0);
    m.load(&image(Arch::I686, Flavour::Scsiport))
        .expect("loads");
    start(&mut m).expect("found through the sBFT");
    assert_eq!(m.port.find_status, Some(SP_RETURN_FOUND));
    // The table was in base memory: the BIOS area was not searched.
    assert_eq!(m.port.figures.firmware_maps, 1);
    read_back(&mut m, 77);
    assert_eq!(unique_ids(&m), Vec::<u32>::new());
    clean(&m);
}

#[test]
fn an_acpi_sbft_names_the_target_in_each_byte_order() {
    for (arch, placement, order) in [
        (Arch::X86_64, Placement::Xsdt, ByteOrder::Network),
        (Arch::X86_64, Placement::Rsdt, ByteOrder::Reversed),
        (Arch::I686, Placement::Xsdt, ByteOrder::Reversed),
    ] {
        let (mut m, target) = rig("acpi", arch, Flavour::Storport, Env::Kernel);
        firmware::place(
            &mut m.port.firmware,
            &firmware::sbft_table(&target.sbft(), order),
            placement,
        );
        m.load(&image(arch, Flavour::Storport)).expect("loads");
        start(&mut m).unwrap_or_else(|e| panic!("{arch:?} {placement:?} {order:?}: {e}"));
        // Base memory, the BIOS area (the RSDP), the root table's header and body, and
        // the FACP's and the sBFT's headers and the sBFT.
        assert!(
            m.port.figures.firmware_maps >= 6,
            "{}",
            m.port.figures.firmware_maps
        );
        read_back(&mut m, 4000);
        assert_eq!(unique_ids(&m), Vec::<u32>::new(), "{placement:?} {order:?}");
        clean(&m);
    }
}

#[test]
fn the_sbft_outranks_the_registry_and_the_image_and_an_unusable_one_stops_the_search() {
    let image_with = |target: &TargetIdentity, service_id: u64| {
        let mut file = image(Arch::X86_64, Flavour::Storport);
        configure_image(
            &mut file,
            &TargetIdentity {
                service_id,
                ..*target
            },
        )
        .expect("configured");
        file
    };
    // A valid sBFT wins over a DriverParameter and a block that name a Service ID the
    // target does not listen on.
    let (mut m, target) = rig("precedence", Arch::X86_64, Flavour::Storport, Env::Kernel);
    let table = firmware::sbft_table(&target.sbft(), ByteOrder::Network);
    firmware::place(&mut m.port.firmware, &table, Placement::BaseMemory);
    m.port.argument_string = Some(
        TargetIdentity {
            service_id: 0x1234,
            ..target
        }
        .driver_parameter(),
    );
    m.load(&image_with(&target, 0x1234)).expect("loads");
    start(&mut m).expect("found through the sBFT");
    read_back(&mut m, 1);
    assert_eq!(unique_ids(&m), Vec::<u32>::new());
    clean(&m);

    // A damaged sBFT (its checksum fails) does not stop an image that names the target.
    let (mut m, target) = rig("damaged", Arch::X86_64, Flavour::Storport, Env::Kernel);
    let mut damaged = table.clone();
    damaged[100] ^= 0x55;
    firmware::place(&mut m.port.firmware, &damaged, Placement::BaseMemory);
    m.load(&image_with(&target, target.service_id))
        .expect("loads");
    start(&mut m).expect("found through the block");
    read_back(&mut m, 2);
    clean(&m);

    // An sBFT whose checksum holds but whose P_Key is invalid: the firmware booted from
    // a target the driver cannot reach, so no other source is taken.
    let (mut m, target) = rig("unusable", Arch::X86_64, Flavour::Storport, Env::Kernel);
    let mut unusable = table.clone();
    unusable[128..130].copy_from_slice(&0u16.to_le_bytes());
    firmware::place(&mut m.port.firmware, &unusable, Placement::BaseMemory);
    firmware::fix_sbft_checksum(&mut m.port.firmware, firmware::SBFT_BASE_AT);
    m.load(&image_with(&target, target.service_id))
        .expect("loads");
    assert!(start(&mut m).is_err());
    assert_eq!(m.port.find_status, Some(SP_RETURN_NOT_FOUND));
    assert_eq!(
        unique_ids(&m),
        [0xFB0E_0305],
        "ConfigInvalid: the sBFT's P_Key"
    );
    assert_eq!(
        m.port.dev.mmio_counts().writes,
        0,
        "the HCA was not touched"
    );
    clean(&m);
}

#[test]
fn the_dump_instance_connects_with_the_hand_over_and_nothing_else() {
    let (mut m, target) = rig("handover", Arch::X86_64, Flavour::Storport, Env::Kernel);
    firmware::place(
        &mut m.port.firmware,
        &firmware::sbft_table(&target.sbft(), ByteOrder::Reversed),
        Placement::BaseMemory,
    );
    let file = image(Arch::X86_64, Flavour::Storport);
    m.load(&file).expect("loads");
    start(&mut m).expect("the kernel instance");
    // The emulated storport sent SRB_FUNCTION_DUMP_POINTERS at the end of the start.
    let ptr = m
        .port
        .dump_data
        .expect("the driver declares STOR_FEATURE_DUMP_POINTERS and answers");
    assert_ne!(ptr, 0);
    // Asked again (storport may), it gives the same record.
    assert_eq!(m.dump_pointers().expect("DUMP_POINTERS"), Some(ptr));
    let dump_buffer = m.port.adapter.expect("adapter").requested_dump_buffer;
    // The crash; the firmware's table is gone (overwritten since), the image is not
    // configured, the dump port passes `dump=1`: only the hand-over names the target.
    m.port.firmware = firmware::fresh();
    let mut m = m
        .reboot(Env::Dump, Flavour::Storport, Arch::X86_64, None)
        .expect("the dump machine");
    m.load(&file).expect("loads");
    m.driver_entry().expect("DriverEntry");
    m.start_adapter(dump_buffer)
        .expect("found through the hand-over");
    assert_eq!(
        m.port.figures.firmware_maps, 0,
        "no firmware memory was read"
    );
    read_back(&mut m, 4095);
    assert_eq!(unique_ids(&m), Vec::<u32>::new());
    clean(&m);
}

#[test]
fn dump_data_the_dump_instance_cannot_use_is_config_invalid_not_a_fall_back() {
    let good = |target: &TargetIdentity, bar0: u64| {
        let mut b = [0u8; handover::LEN];
        Handover {
            config: BootConfig {
                target: TargetConfig {
                    dgid: target.dgid,
                    service_id: target.service_id,
                    target_port_id: target.target_port_id,
                    initiator_ext: target.initiator_ext,
                    pkey: target.pkey,
                },
                lun: 0,
            },
            source: Source::Sbft,
            bus: 3,
            slot: 0,
            bar0,
        }
        .emit(&mut b)
        .expect("a record");
        b
    };
    let file = image(Arch::X86_64, Flavour::Storport);
    // Each case: the record, the ConfigInvalid detail. A valid sBFT and a configured
    // image are there too: bad dump data is not a reason to look elsewhere.
    let (_, target) = rig("dumpdata", Arch::X86_64, Flavour::Storport, Env::Dump);
    let mut damaged = good(&target, BAR0_PHYS);
    damaged[20] ^= 1;
    let mut foreign = good(&target, BAR0_PHYS);
    foreign[..8].copy_from_slice(b"NOTOURS!");
    for (record, id) in [
        (damaged.to_vec(), 0xFB0E_0434),
        (foreign.to_vec(), 0xFB0E_0431),
        (good(&target, 0xD000_0000).to_vec(), 0xFB0E_0436),
    ] {
        let (mut m, target) = rig("dumpdata", Arch::X86_64, Flavour::Storport, Env::Dump);
        firmware::place(
            &mut m.port.firmware,
            &firmware::sbft_table(&target.sbft(), ByteOrder::Network),
            Placement::BaseMemory,
        );
        let mut file = file.clone();
        configure_image(&mut file, &target).expect("configured");
        m.hand_over(&record).expect("dump data");
        m.load(&file).expect("loads");
        m.driver_entry().expect("DriverEntry");
        assert!(m.start_adapter(DUMP_REGION).is_err());
        assert_eq!(m.port.find_status, Some(SP_RETURN_NOT_FOUND));
        assert_eq!(unique_ids(&m), [id]);
        assert_eq!(m.port.figures.firmware_maps, 0);
        assert_eq!(m.port.dev.mmio_counts().writes, 0);
        clean(&m);
    }
    // And the good record works (the same path as the hand-over test, without a
    // normal instance before it).
    let (mut m, target) = rig("dumpdata", Arch::X86_64, Flavour::Storport, Env::Dump);
    m.hand_over(&good(&target, BAR0_PHYS)).expect("dump data");
    m.load(&file).expect("loads");
    m.driver_entry().expect("DriverEntry");
    m.start_adapter(DUMP_REGION)
        .expect("found through the dump data");
    read_back(&mut m, 3);
    clean(&m);
}
