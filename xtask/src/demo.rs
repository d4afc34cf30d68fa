//! `cargo xtask demo`: the main job. Builds the four images, then boots a machine
//! from an SRP disk with them in the host emulator (`fabboot-sim boot`): phase 1 the
//! i686 `ntbootdd.sys` under NTLDR, phase 2 the x86_64 `fabboot.sys` under storport,
//! a hibernate/resume cycle, phase 3 the crash dump, once with each subnet manager. Each run's figures go to `target/boot-<sm>.json`.

use std::time::Instant;

/// The subnet managers the demo boots under, by default.
const ALL_SMS: [&str; 2] = ["builtin", "opensm"];

/// `cargo xtask demo [--sm builtin|opensm] [-- ARGS...]`: ARGS go to `fabboot-sim
/// boot` unchanged (say `--ios 20000` or `--disk IMAGE`).
pub fn command(args: &[String]) -> Result<(), String> {
    let mut sms: Vec<&str> = ALL_SMS.to_vec();
    let mut extra: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sm" => {
                let v = it.next().ok_or("--sm needs a value: builtin or opensm")?;
                let sm = ALL_SMS
                    .iter()
                    .find(|s| **s == v.as_str())
                    .ok_or_else(|| format!("--sm: `{v}` is not builtin or opensm"))?;
                sms = vec![sm];
            }
            "--" => {
                extra.extend(it.by_ref().cloned());
            }
            "--help" | "-h" => {
                println!(
                    "usage: cargo xtask demo [--sm builtin|opensm] [-- FABBOOT-SIM-BOOT-ARGS...]"
                );
                return Ok(());
            }
            other => return Err(format!("demo: unknown argument `{other}`")),
        }
    }
    run(&sms, &extra)
}

/// Builds and checks the images, then boots under each of `sms`.
pub fn run(sms: &[&str], extra: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let built = crate::images::build_all()?;
    crate::images::report(&built);
    crate::pe::check_all()?;
    let root = crate::images::target_dir();
    let images = crate::images::sys_dir();
    let images = images.to_string_lossy().into_owned();
    for sm in sms {
        let report = root.join(format!("boot-{sm}.json"));
        let report = report.to_string_lossy().into_owned();
        let mut args: Vec<&str> = vec![
            "run",
            "--quiet",
            "--package",
            "fabboot-sim",
            "--bin",
            "fabboot-sim",
            "--",
            "boot",
            "--images",
            &images,
            "--sm",
            sm,
            "--report",
            &report,
        ];
        args.extend(extra.iter().map(String::as_str));
        crate::cargo(&args)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "xtask demo: booted under {} in {secs:.1} s (wall, with the builds)",
        sms.join(" and ")
    );
    Ok(())
}
