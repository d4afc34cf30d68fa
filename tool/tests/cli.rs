//! The `fabboot` command, run as a user runs it (the built binary), on the real driver
//! images (`fabboot_sim::images`: built as `cargo xtask build` builds them, or
//! `FABBOOT_IMAGES`): each subcommand's output field by field, every kind of bad
//! argument (one line on standard error naming it, exit status 2; a file that cannot
//! be used, exit status 1), configure then inspect showing exactly the values given,
//! the PE checksum after configure checked by a computation of this test's own, a
//! signed image losing its signature with a warning, sBFT dumps in both byte orders,
//! and iPXE root paths converted both ways.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use fabboot::bootcfg::block;
use fabboot::bootcfg::{BootConfig, args};
use fabboot::initiator::TargetConfig;
use fabboot::port::Flavour;
use fabboot_sim::host::Arch;
use fabboot_tool::inf::bootini::{Adapter, parse_arc_path};
use object::LittleEndian as LE;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile32, PeFile64};

const DGID: &str = "fe80:0000:0000:0000:0002:c903:000a:0b0c";
const TPID: &str = "0000000000000001:0002c903000a0b0d";

/// The values every configure test gives, none of them a default.
const TARGET_ARGS: [&str; 12] = [
    "--dgid",
    DGID,
    "--service-id",
    "0x0002C903000A0B0D",
    "--target-port-id",
    TPID,
    "--lun",
    "5",
    "--pkey",
    "8001",
    "--initiator-ext",
    "abc",
];

/// What [`TARGET_ARGS`] names.
fn target_config() -> BootConfig {
    BootConfig {
        target: TargetConfig {
            dgid: [
                0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x0A, 0x0B, 0x0C,
            ],
            service_id: 0x0002_C903_000A_0B0D,
            target_port_id: [
                0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x0A, 0x0B, 0x0D,
            ],
            initiator_ext: 0xABC,
            pkey: 0x8001,
        },
        lun: 5,
    }
}

const PARAMETER: &str = "dgid=fe80:0000:0000:0000:0002:c903:000a:0b0c;\
service_id=0002c903000a0b0d;target_port_id=0000000000000001:0002c903000a0b0d;\
initiator_ext=abc;pkey=8001;lun=5";

fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        fabboot_sim::images::built(Path::new(env!("CARGO_TARGET_TMPDIR")))
            .unwrap_or_else(|e| panic!("the images: {e}"))
    })
}

/// A directory of this test's own.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A copy of a built image in `dir`.
fn copy(dir: &Path, arch: Arch, flavour: Flavour) -> PathBuf {
    let from = fabboot_sim::images::path(images(), arch, flavour);
    let to = dir.join(format!(
        "{}-{}",
        arch.dir(),
        fabboot_sim::images::file_name(flavour)
    ));
    std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    to
}

fn fabboot<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fabboot"))
        .args(args)
        .output()
        .expect("fabboot runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 errors")
}

/// Asserts success with nothing on standard error; returns standard output.
fn ok(o: &Output) -> String {
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "exit {:?}, stderr {:?}, stdout {:?}",
        o.status.code(),
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

/// Asserts the failure convention: exit status `code`, nothing on standard output, one
/// line `fabboot: <sub>: ...` on standard error holding every `needle`.
fn fails(o: &Output, code: i32, sub: &str, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr {err:?}");
    assert!(o.stdout.is_empty(), "stdout {:?}", stdout(o));
    assert_eq!(err.matches('\n').count(), 1, "one line: {err:?}");
    assert!(err.ends_with('\n'), "{err:?}");
    assert!(
        err.starts_with(&format!("fabboot: {sub}: ")),
        "prefix: {err:?}"
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err:?}");
    }
}

/// `key: value` lines of an output.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix(": "))
}

/// The PE checksum computed here, independently of the command: every 16-bit word
/// summed into 64 bits with the `CheckSum` field left out, folded to 16 bits at the
/// end, plus the file length.
fn independent_checksum(data: &[u8]) -> u32 {
    let nt = u32::from_le_bytes(data[0x3C..0x40].try_into().unwrap()) as usize;
    let field = nt + 24 + 64;
    let mut sum: u64 = data
        .chunks(2)
        .enumerate()
        .filter(|(i, _)| i * 2 != field && i * 2 != field + 2)
        .map(|(_, w)| u64::from(w[0]) | u64::from(*w.get(1).unwrap_or(&0)) << 8)
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u32 + data.len() as u32
}

/// `CheckSum` and the Certificate Table entry as the `object` crate reads them.
fn header_facts(data: &[u8]) -> (u32, (u32, u32)) {
    fn facts<Pe: ImageNtHeaders>(f: &object::read::pe::PeFile<'_, Pe>) -> (u32, (u32, u32)) {
        let sec = f
            .data_directories()
            .iter()
            .nth(4)
            .map_or((0, 0), |d| (d.virtual_address.get(LE), d.size.get(LE)));
        (f.nt_headers().optional_header().check_sum(), sec)
    }
    match PeFile32::parse(data) {
        Ok(f) => facts(&f),
        Err(_) => facts(&PeFile64::parse(data).expect("a PE image")),
    }
}

/// Whether the image has a resource directory (data directory 2).
fn has_resources(data: &[u8]) -> bool {
    fn dir<Pe: ImageNtHeaders>(f: &object::read::pe::PeFile<'_, Pe>) -> bool {
        f.data_directory(2).is_some()
    }
    match PeFile32::parse(data) {
        Ok(f) => dir(&f),
        Err(_) => dir(&PeFile64::parse(data).expect("a PE image")),
    }
}

/// The driver crate's version (`version` in the workspace root's `[package]`).
fn driver_version() -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("the driver's Cargo.toml");
    text.lines()
        .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
        .expect("a version line")
        .to_string()
}

/// File offset of the Certificate Table entry (data directory 4).
fn security_entry(data: &[u8]) -> usize {
    let nt = u32::from_le_bytes(data[0x3C..0x40].try_into().unwrap()) as usize;
    let optional = nt + 24;
    let magic = u16::from_le_bytes([data[optional], data[optional + 1]]);
    optional + if magic == 0x20B { 112 } else { 96 } + 4 * 8
}

fn set_checksum(data: &mut [u8]) {
    let nt = u32::from_le_bytes(data[0x3C..0x40].try_into().unwrap()) as usize;
    let sum = independent_checksum(data);
    data[nt + 24 + 64..nt + 24 + 68].copy_from_slice(&sum.to_le_bytes());
}

/// Appends a certificate table (one WIN_CERTIFICATE: length, revision 0x0200, type
/// PKCS#7 0x0002, a body) at an 8-byte boundary, points data directory 4 at it and
/// fixes the checksum: an image as signtool leaves it, as far as the headers go.
/// Returns the table's offset and length.
fn sign(data: &mut Vec<u8>) -> (usize, usize) {
    while !data.len().is_multiple_of(8) {
        data.push(0);
    }
    let at = data.len();
    let body = [0x30u8, 0x82, 0x01, 0x00, 0xA5, 0x5A, 0x11, 0x22];
    let len = 8 + body.len();
    data.extend_from_slice(&(len as u32).to_le_bytes());
    data.extend_from_slice(&0x0200u16.to_le_bytes());
    data.extend_from_slice(&0x0002u16.to_le_bytes());
    data.extend_from_slice(&body);
    let e = security_entry(data);
    data[e..e + 4].copy_from_slice(&(at as u32).to_le_bytes());
    data[e + 4..e + 8].copy_from_slice(&(len as u32).to_le_bytes());
    set_checksum(data);
    (at, len)
}

#[test]
fn help_prints_usage_to_stdout_and_exits_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["configure", "--help"],
        &["inspect", "-h"],
        &["sbft", "--help"],
        &["boot-ini", "--help"],
        &["ib-srp-uri", "--help"],
        // Help wins over everything else given.
        &["configure", "nonexistent.sys", "--lun", "99999", "-h"],
    ] {
        let out = ok(&fabboot(args));
        let sub = match args[0] {
            "--help" | "-h" | "help" => "COMMAND",
            s => s,
        };
        assert!(
            out.starts_with(&format!("usage: fabboot {sub}")),
            "{args:?}: {out}"
        );
    }
    let top = ok(&fabboot(&["--help"]));
    for command in ["configure", "inspect", "sbft", "boot-ini", "ib-srp-uri"] {
        assert!(top.contains(&format!("  {command} ")), "{command}");
    }
    let configure = ok(&fabboot(&["configure", "--help"]));
    for option in [
        "--dgid",
        "--service-id",
        "--target-port-id",
        "--lun",
        "--pkey",
        "--initiator-ext",
        "--clear",
        "--output",
    ] {
        assert!(configure.contains(&format!("\n  {option} ")), "{option}");
    }
    let o = fabboot(&[""; 0]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr(&o),
        "fabboot: no command given (fabboot --help lists them)\n"
    );
    fails(
        &fabboot(&["frobnicate"]),
        2,
        "frobnicate",
        &["unknown command"],
    );
}

#[test]
fn configure_then_inspect_shows_exactly_the_values_given() {
    let dir = scratch("configure-inspect");
    for (arch, flavour) in [
        (Arch::I686, Flavour::Scsiport),
        (Arch::X86_64, Flavour::Storport),
    ] {
        let img = copy(&dir, arch, flavour);
        let before = std::fs::read(&img).unwrap();
        let mut args = vec!["configure", img.to_str().unwrap()];
        args.extend(TARGET_ARGS);
        let out = ok(&fabboot(&args));
        assert_eq!(
            field(&out, &format!("{}", img.display())),
            Some(&*format!("configured: {PARAMETER}"))
        );
        let after = std::fs::read(&img).unwrap();
        assert_eq!(after.len(), before.len());
        // Only the block and the checksum changed.
        let at = block::locate(&after).expect("one block");
        let nt = u32::from_le_bytes(after[0x3C..0x40].try_into().unwrap()) as usize;
        let checksum = nt + 24 + 64..nt + 24 + 68;
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            if a != b {
                assert!(
                    (at..at + block::LEN).contains(&i) || checksum.contains(&i),
                    "byte {i:#x} changed outside the block and the checksum"
                );
            }
        }
        assert_eq!(
            block::Block::parse(&after[at..]),
            Ok(block::Block {
                config: Some(target_config())
            })
        );
        assert_eq!(
            field(&out, "PE checksum"),
            Some(&*format!("{:#010x}", independent_checksum(&after)))
        );

        let out = ok(&fabboot(&["inspect", img.to_str().unwrap()]));
        let (port, file) = match flavour {
            Flavour::Scsiport => ("scsiport", "ntbootdd.sys"),
            Flavour::Storport => ("storport", "fabboot.sys"),
        };
        assert_eq!(
            field(&out, "flavour"),
            Some(&*format!("{port} ({file}, imports {port}.sys)"))
        );
        let (name, pe, machine) = match arch {
            Arch::I686 => ("i686", "PE32", "0x014c"),
            Arch::X86_64 => ("x86_64", "PE32+", "0x8664"),
        };
        assert_eq!(
            field(&out, "architecture"),
            Some(&*format!("{name} ({pe}, machine {machine})"))
        );
        assert_eq!(field(&out, "signed"), Some("no"));
        assert_eq!(
            field(&out, "checksum"),
            Some(&*format!("valid ({:#010x})", independent_checksum(&after)))
        );
        assert_eq!(
            field(&out, "block"),
            Some(&*format!("at file offset {at:#x}"))
        );
        assert_eq!(field(&out, "configuration"), Some("configured"));
        for (key, value) in [
            ("dgid", DGID),
            ("service_id", "0002c903000a0b0d"),
            ("target_port_id", TPID),
            ("initiator_ext", "abc"),
            ("pkey", "8001"),
            ("lun", "5"),
        ] {
            assert_eq!(field(&out, key), Some(value), "{key}");
        }
        // The string pastes into the registry and reads back as the same target.
        let param = field(&out, "DriverParameter").expect("DriverParameter line");
        assert_eq!(param, PARAMETER);
        assert_eq!(args::parse(param.as_bytes()), Ok(Some(target_config())));
        // An image with a resource directory carries the driver crate's version as
        // file and product version (the build's version resource); one without says so.
        let version = field(&out, "version").expect("version line");
        if has_resources(&after) {
            let v = format!("{}.0", driver_version());
            assert_eq!(version, format!("{v} (product {v})"));
        } else {
            assert_eq!(version, "none (no version resource)");
        }

        let json: serde_json::Value =
            serde_json::from_str(&ok(&fabboot(&["inspect", "--json", img.to_str().unwrap()])))
                .expect("inspect --json prints JSON");
        assert_eq!(json["flavour"], port);
        assert_eq!(json["architecture"], name);
        assert_eq!(json["configured"], true);
        assert_eq!(json["checksum"]["valid"], true);
        assert_eq!(json["checksum"]["stored"], independent_checksum(&after));
        assert_eq!(json["signature"], serde_json::Value::Null);
        assert_eq!(json["block_offset"], at);
        assert_eq!(json["configuration"]["driver_parameter"], PARAMETER);
        assert_eq!(json["configuration"]["lun"], "5");
        assert_eq!(json["image"], img.to_str().unwrap());
    }
}

#[test]
fn the_checksum_after_configure_is_the_pe_checksum_of_the_new_file() {
    let dir = scratch("checksum");
    for (arch, flavour) in [
        (Arch::I686, Flavour::Scsiport),
        (Arch::X86_64, Flavour::Scsiport),
        (Arch::I686, Flavour::Storport),
        (Arch::X86_64, Flavour::Storport),
    ] {
        let img = copy(&dir, arch, flavour);
        let before = std::fs::read(&img).unwrap();
        // The computation of this test agrees with the linker's on the built image.
        assert_eq!(header_facts(&before).0, independent_checksum(&before));
        let mut args = vec!["configure", img.to_str().unwrap()];
        args.extend(TARGET_ARGS);
        ok(&fabboot(&args));
        let after = std::fs::read(&img).unwrap();
        assert_ne!(independent_checksum(&after), independent_checksum(&before));
        assert_eq!(header_facts(&after).0, independent_checksum(&after));
    }
}

#[test]
fn clear_returns_the_image_to_exactly_what_was_built() {
    let dir = scratch("clear");
    let img = copy(&dir, Arch::I686, Flavour::Scsiport);
    let built = std::fs::read(&img).unwrap();
    let mut args = vec!["configure", img.to_str().unwrap()];
    args.extend(TARGET_ARGS);
    ok(&fabboot(&args));
    let out = ok(&fabboot(&["configure", img.to_str().unwrap(), "--clear"]));
    assert!(out.contains(": not configured\n"), "{out}");
    let cleared = std::fs::read(&img).unwrap();
    assert!(
        cleared == built,
        "configure then --clear is the built image"
    );
    let at = block::locate(&cleared).unwrap();
    assert_eq!(&cleared[at..at + block::LEN], &block::UNCONFIGURED);
    let out = ok(&fabboot(&["inspect", img.to_str().unwrap()]));
    assert_eq!(field(&out, "configuration"), Some("not configured"));
    assert_eq!(field(&out, "DriverParameter"), None);
}

#[test]
fn output_leaves_the_input_alone() {
    let dir = scratch("output");
    let img = copy(&dir, Arch::X86_64, Flavour::Storport);
    let built = std::fs::read(&img).unwrap();
    let dest = dir.join("configured.sys");
    let mut args = vec![
        "configure",
        img.to_str().unwrap(),
        "--output",
        dest.to_str().unwrap(),
    ];
    args.extend(TARGET_ARGS);
    let out = ok(&fabboot(&args));
    assert!(out.starts_with(&format!("{}: configured: ", dest.display())));
    assert!(std::fs::read(&img).unwrap() == built, "input unchanged");
    let out = ok(&fabboot(&["inspect", dest.to_str().unwrap()]));
    assert_eq!(field(&out, "DriverParameter"), Some(PARAMETER));
    // No temporary file is left beside the output.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_signed_image_loses_its_signature_with_a_warning() {
    let dir = scratch("signed");
    let img = copy(&dir, Arch::X86_64, Flavour::Storport);
    let built = std::fs::read(&img).unwrap();
    let mut signed = built.clone();
    let (at, len) = sign(&mut signed);
    std::fs::write(&img, &signed).unwrap();
    let out = ok(&fabboot(&["inspect", img.to_str().unwrap()]));
    assert_eq!(
        field(&out, "signed"),
        Some(&*format!("yes (certificate table at {at:#x}, {len} bytes)"))
    );
    assert!(field(&out, "checksum").unwrap().starts_with("valid"));

    let mut args = vec!["configure", img.to_str().unwrap()];
    args.extend(TARGET_ARGS);
    let o = fabboot(&args);
    assert!(o.status.success());
    let warning = stderr(&o);
    assert_eq!(warning.lines().count(), 1, "{warning}");
    for needle in [
        "fabboot: configure: warning: ",
        "was signed",
        "signature",
        "removed",
        "sign ",
        "again",
        "cargo xtask sign",
    ] {
        assert!(warning.contains(needle), "{needle:?} in {warning:?}");
    }
    let after = std::fs::read(&img).unwrap();
    // The table was the file's tail: cut off where it started (the built image's
    // length, which is already a multiple of 8).
    assert_eq!(after.len(), at);
    assert_eq!(after.len(), built.len());
    let e = security_entry(&after);
    assert_eq!(&after[e..e + 8], &[0; 8]);
    assert_eq!(header_facts(&after), (independent_checksum(&after), (0, 0)));
    let out = ok(&fabboot(&["inspect", img.to_str().unwrap()]));
    assert_eq!(field(&out, "signed"), Some("no"));
    assert_eq!(field(&out, "DriverParameter"), Some(PARAMETER));

    // A table that is not the file's tail: the entry is cleared, the bytes stay.
    let mut signed = built.clone();
    sign(&mut signed);
    signed.extend_from_slice(b"trailing data, not padding");
    set_checksum(&mut signed);
    std::fs::write(&img, &signed).unwrap();
    let o = fabboot(&["configure", img.to_str().unwrap(), "--clear"]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("directory entry was cleared"),
        "{}",
        stderr(&o)
    );
    let after = std::fs::read(&img).unwrap();
    assert_eq!(after.len(), signed.len());
    assert_eq!(header_facts(&after), (independent_checksum(&after), (0, 0)));
    // An image that is not signed gives no warning.
    let o = fabboot(&["configure", img.to_str().unwrap(), "--clear"]);
    assert!(o.status.success() && o.stderr.is_empty());
}

#[test]
fn configure_names_each_bad_argument_and_leaves_the_image_alone() {
    let dir = scratch("configure-errors");
    let img = copy(&dir, Arch::I686, Flavour::Scsiport);
    let built = std::fs::read(&img).unwrap();
    let path = img.to_str().unwrap();
    let with = |replace: &str, value: Option<&str>| -> Vec<String> {
        let mut v = vec!["configure".to_string(), path.to_string()];
        let mut it = TARGET_ARGS.iter();
        while let (Some(name), Some(val)) = (it.next(), it.next()) {
            if *name == replace {
                if let Some(value) = value {
                    v.push(name.to_string());
                    v.push(value.to_string());
                }
            } else {
                v.push(name.to_string());
                v.push(val.to_string());
            }
        }
        v
    };
    for (option, value, needles) in [
        ("--dgid", None, &["--dgid is required"][..]),
        ("--service-id", None, &["--service-id is required"]),
        ("--target-port-id", None, &["--target-port-id is required"]),
        (
            "--dgid",
            Some("fe80::1"),
            &["--dgid", "\"fe80::1\"", "32 hex digits"],
        ),
        (
            "--dgid",
            Some("ff02:0000:0000:0000:0000:0000:0000:0001"),
            &["--dgid", "unicast"],
        ),
        (
            "--dgid",
            Some("00000000000000000000000000000000"),
            &["--dgid", "unicast"],
        ),
        (
            "--service-id",
            Some("10000000000000000"),
            &["--service-id", "64-bit"],
        ),
        ("--service-id", Some("1;lun=7"), &["--service-id"]),
        (
            "--target-port-id",
            Some("0002c903000a0b0d"),
            &["--target-port-id", "32 hex"],
        ),
        (
            "--lun",
            Some("16384"),
            &["--lun", "\"16384\"", "0 to 16383"],
        ),
        ("--lun", Some("-1"), &["--lun", "\"-1\""]),
        ("--lun", Some("0x5"), &["--lun"]),
        ("--pkey", Some("8000"), &["--pkey", "low 15 bits"]),
        ("--pkey", Some("10000"), &["--pkey", "16-bit"]),
        (
            "--initiator-ext",
            Some("xyz"),
            &["--initiator-ext", "\"xyz\""],
        ),
    ] {
        fails(&fabboot(&with(option, value)), 2, "configure", needles);
    }
    for (args, needles) in [
        (&["configure"][..], &["IMAGE is required"][..]),
        (&["configure", path, path, "--clear"], &["one IMAGE only"]),
        (
            &["configure", path, "--clear", "--lun", "1"],
            &["--lun: not with --clear"],
        ),
        (
            &["configure", path, "--frob", "1"],
            &["--frob: unknown option"],
        ),
        (
            &["configure", path, "--clear", "--lun"],
            &["--lun: needs a value"],
        ),
        (
            &["configure", path, "--clear=yes"],
            &["--clear: takes no value"],
        ),
        (
            &["configure", path, "--clear", "--clear"],
            &["--clear: given twice"],
        ),
    ] {
        fails(&fabboot(args), 2, "configure", needles);
    }
    assert!(
        std::fs::read(&img).unwrap() == built,
        "the image is unchanged"
    );

    // Files that cannot be used: exit status 1.
    let missing = dir.join("missing.sys");
    fails(
        &fabboot(&["configure", missing.to_str().unwrap(), "--clear"]),
        1,
        "configure",
        &["missing.sys"],
    );
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a driver\n").unwrap();
    fails(
        &fabboot(&["configure", text.to_str().unwrap(), "--clear"]),
        1,
        "configure",
        &["notes.txt", "not a PE image"],
    );
    let (damaged, foreign) = without_block(&dir, &built);
    fails(
        &fabboot(&["configure", damaged.to_str().unwrap(), "--clear"]),
        1,
        "configure",
        &["damaged", "CRC-32"],
    );
    fails(
        &fabboot(&["configure", foreign.to_str().unwrap(), "--clear"]),
        1,
        "configure",
        &["no configuration block", "not a fabboot driver image"],
    );
    // A directory where the output should go.
    fails(
        &fabboot(&[
            "configure",
            path,
            "--clear",
            "--output",
            dir.to_str().unwrap(),
        ]),
        1,
        "configure",
        &[],
    );
}

/// Two PE files without a usable block: one whose `.fbcfg` block has a byte changed
/// (its CRC fails), one with neither the section nor the block (a PE file that is not
/// a fabboot image).
fn without_block(dir: &Path, built: &[u8]) -> (PathBuf, PathBuf) {
    let at = block::locate(built).unwrap();
    let mut damaged = built.to_vec();
    damaged[at + 20] ^= 0x01;
    let damaged_path = dir.join("damaged.sys");
    std::fs::write(&damaged_path, &damaged).unwrap();
    let mut foreign = built.to_vec();
    foreign[at..at + 8].copy_from_slice(b"NOTABLCK");
    let name = foreign
        .windows(8)
        .position(|w| w == b".fbcfg\0\0")
        .expect("the section header");
    foreign[name..name + 8].copy_from_slice(b".data2\0\0");
    let foreign_path = dir.join("foreign.sys");
    std::fs::write(&foreign_path, &foreign).unwrap();
    (damaged_path, foreign_path)
}

#[test]
fn inspect_errors() {
    let dir = scratch("inspect-errors");
    let img = copy(&dir, Arch::I686, Flavour::Storport);
    let built = std::fs::read(&img).unwrap();
    let path = img.to_str().unwrap();
    fails(&fabboot(&["inspect"]), 2, "inspect", &["IMAGE is required"]);
    fails(
        &fabboot(&["inspect", path, path]),
        2,
        "inspect",
        &["one IMAGE only"],
    );
    fails(
        &fabboot(&["inspect", path, "--xml"]),
        2,
        "inspect",
        &["--xml: unknown option"],
    );
    fails(
        &fabboot(&["inspect", dir.join("none.sys").to_str().unwrap()]),
        1,
        "inspect",
        &["none.sys"],
    );
    let short = dir.join("short.sys");
    std::fs::write(&short, &built[..64]).unwrap();
    fails(
        &fabboot(&["inspect", short.to_str().unwrap()]),
        1,
        "inspect",
        &["not a PE image"],
    );
    let (damaged, foreign) = without_block(&dir, &built);
    fails(
        &fabboot(&["inspect", damaged.to_str().unwrap()]),
        1,
        "inspect",
        &["configuration block in .fbcfg is damaged"],
    );
    fails(
        &fabboot(&["inspect", foreign.to_str().unwrap()]),
        1,
        "inspect",
        &["no configuration block"],
    );
    // A changed byte anywhere but the block: inspect says the checksum is wrong.
    let mut stale = built.clone();
    *stale.last_mut().unwrap() ^= 0x5A;
    let stale_path = dir.join("stale.sys");
    std::fs::write(&stale_path, &stale).unwrap();
    let out = ok(&fabboot(&["inspect", stale_path.to_str().unwrap()]));
    assert_eq!(
        field(&out, "checksum"),
        Some(&*format!(
            "invalid (stored {:#010x}, computed {:#010x})",
            independent_checksum(&built),
            independent_checksum(&stale)
        ))
    );
}

// ---- sBFT ----

const SGID: [u8; 16] = [
    0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x02, 0x03,
];
const INITIATOR: [u8; 16] = [
    0, 0, 0, 0, 0, 0, 0, 0x07, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x02, 0x03,
];

/// An sBFT as reference ipxe-srp-boot.md §2.1 lays it out (136 bytes; SCSI, SRP and IB
/// subtables at 48, 56 and 88), naming [`target_config`]'s target at SAM LUN `lun`,
/// its identifiers stored big-endian (`reversed` false, as iPXE writes them) or each
/// reversed; checksum fixed.
fn sbft_table(reversed: bool, lun: [u8; 8], pkey: u16) -> Vec<u8> {
    let cfg = target_config();
    let id = |v: &[u8]| -> Vec<u8> {
        if reversed {
            v.iter().rev().copied().collect()
        } else {
            v.to_vec()
        }
    };
    let mut t = vec![0u8; 136];
    t[0..4].copy_from_slice(b"sBFT");
    t[4..8].copy_from_slice(&136u32.to_le_bytes());
    t[8] = 1;
    t[10..16].copy_from_slice(b"FENSYS");
    t[16..20].copy_from_slice(b"iPXE");
    t[36..38].copy_from_slice(&48u16.to_le_bytes());
    t[38..40].copy_from_slice(&56u16.to_le_bytes());
    t[40..42].copy_from_slice(&88u16.to_le_bytes());
    t[48..56].copy_from_slice(&id(&lun));
    t[56..72].copy_from_slice(&id(&INITIATOR));
    t[72..88].copy_from_slice(&id(&cfg.target.target_port_id));
    t[88..104].copy_from_slice(&id(&SGID));
    t[104..120].copy_from_slice(&id(&cfg.target.dgid));
    t[120..128].copy_from_slice(&id(&cfg.target.service_id.to_be_bytes()));
    t[128..130].copy_from_slice(&pkey.to_le_bytes());
    let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

/// Checks every field `fabboot sbft` prints for [`sbft_table`]'s target.
fn check_sbft_report(out: &str, at: usize, order: &str, lun: u16, sam: &str) {
    assert_eq!(
        out.lines().next(),
        Some(&*format!("sBFT at offset {at:#x} (136 bytes)"))
    );
    assert!(
        field(out, "byte order").unwrap().starts_with(order),
        "{out}"
    );
    let checksum = field(out, "header").unwrap();
    assert!(
        checksum.starts_with("revision 1, checksum 0x")
            && checksum.ends_with(", OEM ID \"FENSYS\", OEM table ID \"iPXE\""),
        "{checksum}"
    );
    assert_eq!(
        field(out, "subtables"),
        Some("SCSI at 48, SRP at 56, IB at 88")
    );
    assert_eq!(field(out, "lun"), Some(&*format!("{lun} (SAM {sam})")));
    assert_eq!(
        field(out, "initiator_port_id"),
        Some("0000000000000007:0002c90300010203")
    );
    assert_eq!(field(out, "target_port_id"), Some(TPID));
    assert_eq!(
        field(out, "sgid"),
        Some("fe80:0000:0000:0000:0002:c903:0001:0203")
    );
    assert_eq!(field(out, "dgid"), Some(DGID));
    assert_eq!(field(out, "service_id"), Some("0002c903000a0b0d"));
    assert_eq!(field(out, "pkey"), Some("ffff"));
    assert!(field(out, "initiator_ext").unwrap().starts_with("7 "));
    let param = field(out, "DriverParameter").unwrap();
    let want = BootConfig {
        target: TargetConfig {
            initiator_ext: 7,
            pkey: 0xFFFF,
            ..target_config().target
        },
        lun,
    };
    assert_eq!(args::parse(param.as_bytes()), Ok(Some(want)));
}

#[test]
fn sbft_decodes_tables_in_both_byte_orders_alone_at_an_offset_and_in_base_memory() {
    let dir = scratch("sbft");
    let peripheral = [0, 3, 0, 0, 0, 0, 0, 0];
    let flat = [0x41, 0x2C, 0, 0, 0, 0, 0, 0]; // flat space LUN 300
    for (reversed, order) in [(false, "network"), (true, "reversed")] {
        // The table alone.
        let t = sbft_table(reversed, peripheral, 0xFFFF);
        let f = dir.join(format!("alone-{order}.bin"));
        std::fs::write(&f, &t).unwrap();
        let out = ok(&fabboot(&["sbft", f.to_str().unwrap()]));
        check_sbft_report(&out, 0, order, 3, "0003000000000000");
        assert!(!out.contains("note:"));

        // A base-memory dump: a stray signature with a bad checksum first, the table
        // on a 16-byte boundary near the top of base memory, as iPXE leaves it.
        let mut mem = vec![0u8; 0xA0000];
        mem[0x1000..0x1004].copy_from_slice(b"sBFT");
        mem[0x1004] = 136;
        let t = sbft_table(reversed, flat, 0xFFFF);
        mem[0x9_F010..0x9_F010 + t.len()].copy_from_slice(&t);
        let f = dir.join(format!("memory-{order}.bin"));
        std::fs::write(&f, &mem).unwrap();
        let out = ok(&fabboot(&["sbft", f.to_str().unwrap()]));
        check_sbft_report(&out, 0x9_F010, order, 300, "412c000000000000");

        // At an odd offset: found with --offset, and without it by a search of every
        // offset, with a note that the driver's scan would not find it there.
        let mut odd = vec![0xEEu8; 7];
        odd.extend_from_slice(&sbft_table(reversed, peripheral, 0xFFFF));
        let f = dir.join(format!("odd-{order}.bin"));
        std::fs::write(&f, &odd).unwrap();
        let out = ok(&fabboot(&["sbft", f.to_str().unwrap(), "--offset", "7"]));
        check_sbft_report(&out, 7, order, 3, "0003000000000000");
        let out = ok(&fabboot(&["sbft", f.to_str().unwrap()]));
        check_sbft_report(&out, 7, order, 3, "0003000000000000");
        assert!(field(&out, "note").unwrap().contains("16-byte boundary"));
        let out = ok(&fabboot(&["sbft", f.to_str().unwrap(), "--offset=0x7"]));
        check_sbft_report(&out, 7, order, 3, "0003000000000000");
    }
}

#[test]
fn sbft_errors() {
    let dir = scratch("sbft-errors");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let good = sbft_table(false, [0, 3, 0, 0, 0, 0, 0, 0], 0xFFFF);
    let mut bad_sum = good.clone();
    bad_sum[100] ^= 1;
    let bad_pkey = sbft_table(false, [0, 3, 0, 0, 0, 0, 0, 0], 0x8000);
    let multi_level = sbft_table(false, [0, 3, 0, 1, 0, 0, 0, 0], 0xFFFF);
    let mut no_ib = good.clone();
    no_ib[40..42].copy_from_slice(&0u16.to_le_bytes());
    no_ib[9] = no_ib[9].wrapping_add(88);
    for (name, bytes, needles) in [
        ("zeros.bin", vec![0u8; 4096], &["no sBFT signature"][..]),
        ("sum.bin", bad_sum, &["cannot be used", "sum to 0x01"]),
        ("pkey.bin", bad_pkey, &["pkey", "P_Key"]),
        ("lun.bin", multi_level, &["LUN 0003000100000000"]),
        ("ib.bin", no_ib, &["IB subtable"]),
    ] {
        let f = write(name, &bytes);
        fails(&fabboot(&["sbft", &f]), 1, "sbft", needles);
    }
    let f = write("good.bin", &good);
    fails(&fabboot(&["sbft"]), 2, "sbft", &["FILE is required"]);
    fails(&fabboot(&["sbft", &f, &f]), 2, "sbft", &["one FILE only"]);
    fails(
        &fabboot(&["sbft", &f, "--offset", "200"]),
        2,
        "sbft",
        &["--offset", "beyond the end"],
    );
    fails(
        &fabboot(&["sbft", &f, "--offset", "0xZZ"]),
        2,
        "sbft",
        &["--offset", "\"0xZZ\""],
    );
    fails(
        &fabboot(&["sbft", &f, "--offset", "1"]),
        1,
        "sbft",
        &["at 0x1", "no sBFT signature"],
    );
    fails(
        &fabboot(&["sbft", &f, "--order", "x"]),
        2,
        "sbft",
        &["--order: unknown option"],
    );
    fails(
        &fabboot(&["sbft", dir.join("absent.bin").to_str().unwrap()]),
        1,
        "sbft",
        &["absent.bin"],
    );
}

// ---- boot.ini ----

#[test]
fn boot_ini_prints_a_line_that_parses_back_to_what_the_driver_presents() {
    let out = ok(&fabboot(&["boot-ini"]));
    assert_eq!(
        out,
        "scsi(0)disk(0)rdisk(0)partition(1)\\WINDOWS=\"Windows (SRP disk, fabboot)\"\n"
    );
    let out = ok(&fabboot(&[
        "boot-ini",
        "--signature",
        "1A2B3C4D",
        "--lun",
        "2",
        "--partition",
        "3",
        "--path",
        "WINNT",
        "--title",
        "Windows Server 2003, Enterprise",
    ]));
    let (arc, title) = out.trim_end().split_once('=').unwrap();
    assert_eq!(title, "\"Windows Server 2003, Enterprise\"");
    let a = parse_arc_path(arc).expect("parses back");
    assert_eq!(a.adapter, Adapter::Signature(0x1A2B_3C4D));
    assert_eq!(
        (a.disk, a.rdisk, a.partition, a.path.as_str()),
        (
            u32::from(fabboot::miniport::srb::TARGET_ID),
            2,
            3,
            "\\WINNT"
        )
    );
    let out = ok(&fabboot(&[
        "boot-ini",
        "--controller",
        "1",
        "--path",
        "\\WIN\\SYS",
    ]));
    assert!(out.starts_with("scsi(1)disk(0)rdisk(0)partition(1)\\WIN\\SYS=\""));

    // With an image, the LUN is its configured one.
    let dir = scratch("boot-ini");
    let img = copy(&dir, Arch::I686, Flavour::Scsiport);
    let path = img.to_str().unwrap();
    let mut args = vec!["configure", path];
    args.extend(TARGET_ARGS);
    ok(&fabboot(&args));
    let o = fabboot(&["boot-ini", path]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o),
        "scsi(0)disk(0)rdisk(5)partition(1)\\WINDOWS=\"Windows (SRP disk, fabboot)\"\n"
    );
    let note = stderr(&o);
    assert!(
        note.starts_with("fabboot: boot-ini: note: rdisk(5)") && note.lines().count() == 1,
        "{note}"
    );
    // LUN 0 needs no note.
    ok(&fabboot(&["configure", path, "--clear"]));
    fails(
        &fabboot(&["boot-ini", path]),
        1,
        "boot-ini",
        &["not configured"],
    );
    let mut args = vec!["configure", path];
    args.extend(&TARGET_ARGS[..6]);
    ok(&fabboot(&args));
    assert!(ok(&fabboot(&["boot-ini", path])).contains("rdisk(0)"));
}

#[test]
fn boot_ini_errors() {
    let dir = scratch("boot-ini-errors");
    let img = copy(&dir, Arch::I686, Flavour::Scsiport);
    let path = img.to_str().unwrap();
    for (args, needles) in [
        (
            &["boot-ini", "--lun", "32"][..],
            &["--lun", "32", "0-31"][..],
        ),
        (&["boot-ini", "--lun", "x"], &["--lun", "\"x\""]),
        (
            &["boot-ini", "--lun", "99999999999"],
            &["--lun", "too large"],
        ),
        (
            &["boot-ini", "--partition", "0"],
            &["--partition", "from 1"],
        ),
        (
            &["boot-ini", "--signature", "123456789"],
            &["--signature", "1 to 8 hex"],
        ),
        (&["boot-ini", "--signature", "xyz"], &["--signature"]),
        (
            &["boot-ini", "--signature", "1", "--controller", "0"],
            &["--controller: not with --signature"],
        ),
        (&["boot-ini", "--controller", "-1"], &["--controller"]),
        (&["boot-ini", "--title", "say \"hi\""], &["--title"]),
        (&["boot-ini", "--path", "\\WIN DOWS"], &["--path"]),
        (&["boot-ini", "--path", "\\"], &["--path"]),
        (
            &["boot-ini", "--lun", "1", path],
            &["--lun: not with IMAGE"],
        ),
        (&["boot-ini", path, path], &["one IMAGE only"]),
        (&["boot-ini", "--disk", "1"], &["--disk: unknown option"]),
    ] {
        fails(&fabboot(args), 2, "boot-ini", needles);
    }
    // The image's LUN beyond what the driver presents.
    let mut args = vec!["configure", path];
    args.extend(&TARGET_ARGS[..6]);
    args.extend(["--lun", "40"]);
    ok(&fabboot(&args));
    fails(
        &fabboot(&["boot-ini", path]),
        1,
        "boot-ini",
        &["the image's LUN: 40 is beyond the 32 LUNs"],
    );
    fails(
        &fabboot(&["boot-ini", dir.join("absent.sys").to_str().unwrap()]),
        1,
        "boot-ini",
        &["absent.sys"],
    );
}

// ---- ib_srp root paths ----

#[test]
fn ib_srp_uri_converts_both_ways_and_round_trips() {
    let uri = "ib_srp:fe800000000000000002c90300010203:0000000000000abc:0002c90300010203:\
fe800000000000000002c903000a0b0c:8001:0002c903000a0b0d:5:0000000000000001:0002c903000a0b0d";
    let out = ok(&fabboot(&["ib-srp-uri", uri]));
    assert_eq!(field(&out, "DriverParameter"), Some(PARAMETER));
    let configure = field(&out, "configure").unwrap();
    let rest = configure
        .strip_prefix("fabboot configure IMAGE ")
        .expect("a configure command line");
    assert!(out.contains("ignored: sgid fe80:0000:0000:0000:0002:c903:0001:0203"));
    assert!(out.contains("ignored: initiator HCA GUID 0002c90300010203"));

    // The printed arguments configure an image to that target, and the image gives
    // the root path back (with what the driver does not use left empty).
    let dir = scratch("uri");
    let img = copy(&dir, Arch::I686, Flavour::Scsiport);
    let mut args = vec!["configure", img.to_str().unwrap()];
    args.extend(rest.split(' '));
    ok(&fabboot(&args));
    let canonical = "ib_srp::0000000000000abc::fe800000000000000002c903000a0b0c:8001:\
0002c903000a0b0d:5:0000000000000001:0002c903000a0b0d\n";
    assert_eq!(
        ok(&fabboot(&["ib-srp-uri", "--image", img.to_str().unwrap()])),
        canonical
    );
    let mut args = vec!["ib-srp-uri"];
    args.extend(TARGET_ARGS);
    assert_eq!(ok(&fabboot(&args)), canonical);

    // uri -> config -> uri, for LUNs in both addressings, defaults and P_Keys.
    for uri in [
        canonical.trim_end(),
        "ib_srp::0000000000000000::fe800000000000000002c903000a0b0c:ffff:0002c903000a0b0d:0:\
0000000000000001:0002c903000a0b0d",
        "ib_srp::ffffffffffffffff::fe800000000000000002c903000a0b0c:7fff:0000000000000001:ff:\
0002c903000a0b0d:0002c903000a0b0d",
        "ib_srp::0000000000000001::fe800000000000000002c903000a0b0c:0001:0002c903000a0b0d:\
7fff:0000000000000000:0000000000000000",
        "ib_srp::0000000000000001::fe800000000000000002c903000a0b0c:ffff:0002c903000a0b0d:\
4100:0000000000000000:0000000000000001",
    ] {
        let out = ok(&fabboot(&["ib-srp-uri", uri]));
        let rest = field(&out, "configure")
            .unwrap()
            .strip_prefix("fabboot configure IMAGE ")
            .unwrap();
        let mut args = vec!["ib-srp-uri"];
        args.extend(rest.split(' '));
        assert_eq!(ok(&fabboot(&args)), format!("{uri}\n"));
    }
    // Empty optional fields take iPXE's defaults; upper-case hex and a multi-level LUN
    // whose deeper levels are zero are the same target.
    let out = ok(&fabboot(&[
        "ib-srp-uri",
        "IB_SRP::::FE800000000000000002C903000A0B0C::0002C903000A0B0D:0003-0-0-0:\
0000000000000001:0002C903000A0B0D",
    ]));
    assert_eq!(
        field(&out, "DriverParameter"),
        Some(
            "dgid=fe80:0000:0000:0000:0002:c903:000a:0b0c;service_id=0002c903000a0b0d;\
target_port_id=0000000000000001:0002c903000a0b0d;initiator_ext=0;pkey=ffff;lun=3"
        )
    );
    assert!(!out.contains("ignored:"));
}

#[test]
fn ib_srp_uri_errors_name_the_field() {
    let dir = scratch("uri-errors");
    let img = copy(&dir, Arch::I686, Flavour::Scsiport);
    let path = img.to_str().unwrap();
    let parts = |i: usize, v: &str| {
        let mut f = vec![
            "",
            "",
            "",
            "fe800000000000000002c903000a0b0c",
            "",
            "0002c903000a0b0d",
            "",
            "0000000000000001",
            "0002c903000a0b0d",
        ];
        f[i] = v;
        format!("ib_srp:{}", f.join(":"))
    };
    for (uri, needles) in [
        (
            "iscsi:1.2.3.4::::iqn".to_string(),
            &["not an ib_srp: root path"][..],
        ),
        ("ib_srp:a:b".to_string(), &["has 2 fields", "9"]),
        (
            parts(3, ""),
            &["dgid (field 4 of the root path) is required"],
        ),
        (
            parts(3, "fe80:0000:0000:0000:0002:c903:000a:0b0c"),
            &["dgid (field 4", "32 hex"],
        ),
        (
            parts(3, "ff020000000000000000000000000001"),
            &["dgid (field 4", "unicast"],
        ),
        (parts(0, "fe80"), &["sgid (field 1", "32 hex"]),
        (parts(1, "1"), &["initiator id_ext (field 2", "16 hex"]),
        (parts(2, "xyz"), &["initiator HCA GUID (field 3"]),
        (parts(4, "10000"), &["pkey (field 5", "16-bit"]),
        (parts(4, "8000"), &["pkey (field 5", "low 15 bits"]),
        (
            parts(5, ""),
            &["service_id (field 6 of the root path) is required"],
        ),
        (parts(6, "0-1"), &["lun (field 7", "more than one level"]),
        (parts(6, "0100"), &["lun (field 7", "bus 1"]),
        (parts(6, "c001"), &["lun (field 7", "extended"]),
        (parts(6, "1-2-3-4-5"), &["lun (field 7", "not a SAM LUN"]),
        (
            parts(7, ""),
            &["target id_ext (field 8 of the root path) is required"],
        ),
        (
            parts(8, "0002c903000a0b0d:extra"),
            &["target IOC GUID (field 9", "16 hex"],
        ),
    ] {
        fails(&fabboot(&["ib-srp-uri", &uri]), 2, "ib-srp-uri", needles);
    }
    let good = parts(0, "");
    for (args, needles) in [
        (&["ib-srp-uri"][..], &["give a root path"][..]),
        (&["ib-srp-uri", &good, &good], &["one root path only"]),
        (
            &["ib-srp-uri", &good, "--lun", "1"],
            &["--lun: not with a root path"],
        ),
        (
            &["ib-srp-uri", &good, "--image", path],
            &["--image: not with a root path"],
        ),
        (
            &["ib-srp-uri", "--image", path, "--lun", "1"],
            &["--lun: not with --image"],
        ),
        (&["ib-srp-uri", "--lun", "1"], &["--dgid is required"]),
        (
            &[
                "ib-srp-uri",
                "--dgid",
                "x",
                "--service-id",
                "1",
                "--target-port-id",
                TPID,
            ],
            &["--dgid", "\"x\""],
        ),
    ] {
        fails(&fabboot(args), 2, "ib-srp-uri", needles);
    }
    fails(
        &fabboot(&["ib-srp-uri", "--image", path]),
        1,
        "ib-srp-uri",
        &["not configured"],
    );
}
