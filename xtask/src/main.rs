//! `cargo xtask`: the project's own commands.
//!
//! * `build`: the four driver images, into `target/sys/<arch>/`.
//! * `check-images`: checks the built images with an independent PE parser and x86
//!   decoder, then proves each check live by breaking a copy of each image.
//! * `demo`: the main job: builds the images and boots a machine from an SRP disk with
//!   them in the host emulator (`fabboot-sim boot`), under each subnet manager.
//! * `ci`: everything CI runs (formatting, clippy for the host and both Windows
//!   targets, all tests, a short `fuzz` run, `fabboot-sim hca-bringup`, `fabboot-sim
//!   fabric` and `fabboot-sim driver` with each subnet manager, `build`,
//!   `check-images`, `demo`, `sign`).
//! * `sign`: test-signs the built images into `target/sys-signed/<arch>/` with a
//!   self-signed certificate made in `target/sign/`, and verifies them (see `sign.rs`).
//! * `fuzz`: the cargo-fuzz targets in `fuzz/`, each for a few seconds (see `fuzz.rs`).

mod demo;
mod faults;
mod fuzz;
mod images;
mod pe;
mod sign;
mod verinfo;

use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask <demo | faults | build | check-images | sign | ci | fuzz | help>

  demo [--sm builtin|opensm] [-- ARGS...]
                the main job: build the images, then boot a machine from an SRP disk
                with them in the host emulator (fabboot-sim boot ARGS), under each
                subnet manager (default: both); figures in target/boot-<sm>.json
  faults [--sm builtin|opensm] [--seeds 1,2,3]
                the fault campaign of the built images (fabboot-sim faults) for each
                seed under each subnet manager (default: both, seeds 1,2,3); figures
                in target/faults-<sm>-<seed>.json
  build         build fabboot.sys and ntbootdd.sys for x86_64 and i686 into target/sys/
  check-images  check the built images (PE layout, imports, checksum, instructions,
                version resource)
  sign [--cert-dir DIR]
                test-sign the built images into target/sys-signed/ with a self-signed
                certificate made once in DIR (default target/sign/), then verify them
  ci            run what CI runs: fmt, clippy (host + Windows targets), tests, fuzz,
                fabboot-sim hca-bringup, fabric and driver, build, checks, demo, sign,
                and a short fault campaign
  fuzz [--seconds N] [TARGET...]
                build the fuzz targets in fuzz/ and run each (default: all) N seconds
                (default 4); fails if any crashes";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => images::build_all().map(|built| images::report(&built)),
        Some("check-images") => pe::check_all(),
        Some("sign") => sign::command(&args[1..]),
        Some("ci") => ci(),
        Some("demo") => demo::command(&args[1..]),
        Some("faults") => faults::command(&args[1..]),
        Some("fuzz") => fuzz::command(&args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cargo` with `args` in the workspace, failing with the command line.
pub fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("+ cargo {}", args.join(" "));
    let status = images::cargo_command(&cargo)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// Everything CI runs, in order, stopping at the first failure.
fn ci() -> Result<(), String> {
    let started = std::time::Instant::now();
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    for target in images::TARGETS {
        for flavour in images::FLAVOURS {
            cargo(&[
                "clippy",
                "--package",
                "fabboot",
                "--lib",
                "--target",
                target.triple,
                "--features",
                flavour.feature,
                "--",
                "-D",
                "warnings",
            ])?;
        }
    }
    cargo(&["test", "--workspace"])?;
    fuzz::run(fuzz::CI_SECONDS, &[])?;
    cargo(&[
        "run",
        "--quiet",
        "--package",
        "fabboot-sim",
        "--bin",
        "fabboot-sim",
        "--",
        "hca-bringup",
    ])?;
    // A whole subnet with each subnet manager, captured (the capture is generated
    // under target/, never committed).
    for (sm, pcap) in [
        ("builtin", "target/fabric-builtin.pcap"),
        ("opensm", "target/fabric-opensm.pcap"),
    ] {
        cargo(&[
            "run",
            "--quiet",
            "--package",
            "fabboot-sim",
            "--bin",
            "fabboot-sim",
            "--",
            "fabric",
            "--sm",
            sm,
            "--pcap",
            pcap,
        ])?;
    }
    // The driver's own initiator against each subnet manager, with its figures (no
    // capture here: 10,000 requests and 256 MiB make a 600 MB file; the capture is
    // checked with tshark by sim/tests/initiator.rs on a short run).
    for sm in ["builtin", "opensm"] {
        cargo(&[
            "run",
            "--quiet",
            "--package",
            "fabboot-sim",
            "--bin",
            "fabboot-sim",
            "--",
            "driver",
            "--sm",
            sm,
        ])?;
    }
    // The main job: the built images boot under each subnet manager (builds the
    // images and checks them first).
    demo::run(&["builtin", "opensm"], &[])?;
    // The images test-signed and the signatures verified (a tampered copy must fail).
    sign::run(&images::target_dir().join("sign"))?;
    // The fault campaign, short (`cargo xtask faults` runs the full one).
    faults::run(faults::CI)?;
    let secs = started.elapsed().as_secs();
    println!(
        "xtask ci: all steps passed in {}m{:02}s",
        secs / 60,
        secs % 60
    );
    Ok(())
}
