//! The round trip a user makes: `fabboot configure` writes the simulated target's
//! identity into a copy of the i686 `ntbootdd.sys`, `fabboot inspect` shows those
//! values, and the image boots in the host emulator as NTLDR loads it (loader mode:
//! no sBFT, no `ArgumentString`, so the embedded block is the only source, README
//! "Configuration: which target") and reads the disk: INQUIRY, READ CAPACITY and a
//! known sector, with no policing violation. Then the same image cleared
//! (`--clear`) finds no target: `SP_RETURN_NOT_FOUND` and event 0xFB0D0000, the HCA
//! untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fabboot::port::Flavour;
use fabboot_sim::host::Arch;
use fabboot_sim::host::port::{Dir, Env, Machine, PHYS_BASE, SrbRequest};
use fabboot_sim::host::rig::{HostRig, RigOptions, TargetIdentity};
use fabboot_sim::scenario::SmChoice;

const SP_RETURN_NOT_FOUND: u32 = 0;
const SP_RETURN_FOUND: u32 = 1;
const CONFIG_MISSING: u32 = 0xFB0D_0000;
/// Sectors of the test disk.
const DISK_SECTORS: u32 = 8192;
/// The sector read back.
const LBA: u32 = 4321;

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("round-trip");
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Sector `lba` of the test disk: its number, then bytes derived from it.
fn sector(lba: u32) -> Vec<u8> {
    let mut s = vec![0u8; 512];
    s[..4].copy_from_slice(&lba.to_le_bytes());
    for (i, b) in s[4..].iter_mut().enumerate() {
        *b = (lba as u8).wrapping_mul(13).wrapping_add(i as u8) ^ 0x5A;
    }
    s
}

fn disk() -> PathBuf {
    let path = dir().join("disk.img");
    let bytes: Vec<u8> = (0..DISK_SECTORS).flat_map(sector).collect();
    std::fs::write(&path, bytes).expect("the test disk");
    path
}

fn fabboot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fabboot"))
        .args(args)
        .output()
        .expect("fabboot runs")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "exit {:?}: {} {out}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A loader-mode machine around the i686 scsiport image, with no `ArgumentString`
/// and no sBFT in its firmware.
fn machine() -> (Machine, TargetIdentity) {
    let HostRig {
        mut machine,
        target,
    } = HostRig::new(&RigOptions {
        arch: Arch::I686,
        flavour: Flavour::Scsiport,
        env: Env::Loader,
        sm: SmChoice::Builtin,
        disk: disk(),
        pcap: None,
        driver_parameter: None,
    })
    .expect("the machine");
    assert_eq!(machine.port.argument_string, None, "the loader passes none");
    machine.port.argument_string = None;
    (machine, target)
}

/// Runs one SRB with a data-in buffer of `len` bytes; returns the data.
fn data_in(m: &mut Machine, cdb: Vec<u8>, len: u32) -> Vec<u8> {
    let buf = m.alloc_ram(4096).expect("a buffer");
    let what = format!("{:#04x}", cdb[0]);
    let done = m
        .execute(SrbRequest {
            cdb,
            lun: 0,
            dir: Dir::In,
            pages: vec![(buf, len)],
            mapped: true,
        })
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(done.srb_status & 0x3F, 1, "{what}: {done:?}");
    assert_eq!(done.transferred, len, "{what}");
    let mut data = vec![0u8; len as usize];
    m.ram()
        .read((buf - PHYS_BASE) as usize, &mut data)
        .expect("the buffer");
    data
}

fn event_ids(m: &Machine) -> Vec<u32> {
    m.port.log.iter().map(|e| e.unique_id).collect()
}

#[test]
fn configure_inspect_and_boot_the_loader_image_then_clear_it() {
    let images = fabboot_sim::images::built(Path::new(env!("CARGO_TARGET_TMPDIR")))
        .unwrap_or_else(|e| panic!("the images: {e}"));
    let image = dir().join("ntbootdd.sys");
    std::fs::copy(
        fabboot_sim::images::path(&images, Arch::I686, Flavour::Scsiport),
        &image,
    )
    .expect("a copy of the image");
    let path = image.to_str().unwrap();

    let (mut m, target) = machine();
    let dgid = hex(&target.dgid);
    let tpid = hex(&target.target_port_id);
    let service_id = format!("{:x}", target.service_id);
    let initiator_ext = format!("{:x}", target.initiator_ext);
    let pkey = format!("{:x}", target.pkey);
    ok(&fabboot(&[
        "configure",
        path,
        "--dgid",
        &dgid,
        "--service-id",
        &service_id,
        "--target-port-id",
        &tpid,
        "--initiator-ext",
        &initiator_ext,
        "--pkey",
        &pkey,
        "--lun",
        "0",
    ]));

    // inspect shows the identity back, in the driver's syntax.
    let out = ok(&fabboot(&["inspect", path]));
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .to_string()
    };
    let grouped = |id: &[u8], n: usize| id.chunks(n).map(hex).collect::<Vec<_>>().join(":");
    assert_eq!(
        field("flavour"),
        "scsiport (ntbootdd.sys, imports scsiport.sys)"
    );
    assert!(field("architecture").starts_with("i686 "));
    assert!(field("checksum").starts_with("valid "));
    assert_eq!(field("configuration"), "configured");
    assert_eq!(field("dgid"), grouped(&target.dgid, 2));
    assert_eq!(field("service_id"), format!("{:016x}", target.service_id));
    assert_eq!(field("target_port_id"), grouped(&target.target_port_id, 8));
    assert_eq!(field("initiator_ext"), initiator_ext);
    assert_eq!(field("pkey"), format!("{:04x}", target.pkey));
    assert_eq!(field("lun"), "0");
    let parsed = fabboot::bootcfg::args::parse(field("DriverParameter").as_bytes())
        .expect("the driver's syntax")
        .expect("names a target");
    assert_eq!(
        (
            parsed.target.dgid,
            parsed.target.service_id,
            parsed.target.target_port_id,
            parsed.target.initiator_ext,
            parsed.target.pkey,
            parsed.lun
        ),
        (
            target.dgid,
            target.service_id,
            target.target_port_id,
            target.initiator_ext,
            target.pkey,
            0
        )
    );

    // NTLDR loads it; the block is the only source; it reaches the disk.
    m.load(&std::fs::read(&image).unwrap()).expect("loads");
    m.driver_entry().expect("DriverEntry finds the adapter");
    m.start_adapter(0).expect("started");
    assert_eq!(m.port.find_status, Some(SP_RETURN_FOUND));
    let inquiry = data_in(&mut m, vec![0x12, 0, 0, 0, 36, 0], 36);
    assert_eq!(inquiry[0] & 0x1F, 0, "a direct-access block device");
    assert_eq!(&inquiry[8..16], b"FABBOOT ");
    assert_eq!(&inquiry[16..28], b"SIM SRP DISK");
    let capacity = data_in(&mut m, vec![0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(
        u32::from_be_bytes(capacity[..4].try_into().unwrap()),
        DISK_SECTORS - 1,
        "last LBA"
    );
    assert_eq!(u32::from_be_bytes(capacity[4..].try_into().unwrap()), 512);
    let [a, b, c, d] = LBA.to_be_bytes();
    let data = data_in(&mut m, vec![0x28, 0, a, b, c, d, 0, 0, 1, 0], 512);
    assert!(data == sector(LBA), "sector {LBA} as the disk holds it");
    assert_eq!(m.port.breaches, Vec::<String>::new(), "port breaches");
    assert_eq!(m.port.dev.take_violations(), vec![], "device violations");
    assert_eq!(event_ids(&m), Vec::<u32>::new(), "no event logged");

    // Cleared, the same image finds no target, promptly and without the HCA.
    ok(&fabboot(&["configure", path, "--clear"]));
    let out = ok(&fabboot(&["inspect", path]));
    assert!(out.contains("\nconfiguration: not configured\n"), "{out}");
    let (mut m, _) = machine();
    m.load(&std::fs::read(&image).unwrap()).expect("loads");
    let t0 = m.port.clock.now_ns();
    assert!(
        m.driver_entry().and_then(|_| m.start_adapter(0)).is_err(),
        "no adapter without a target"
    );
    assert_eq!(m.port.find_status, Some(SP_RETURN_NOT_FOUND));
    assert_eq!(event_ids(&m), [CONFIG_MISSING]);
    assert_eq!(m.port.clock.now_ns(), t0, "no virtual time passed");
    let mmio = m.port.dev.mmio_counts();
    assert_eq!((mmio.reads, mmio.writes), (0, 0), "the HCA was not touched");
    assert_eq!(m.port.breaches, Vec::<String>::new());
    assert_eq!(m.port.dev.take_violations(), vec![]);
}
