//! `cargo xtask faults`: the fault campaign of the built images
//! (`fabboot-sim faults`) for several seeds under each subnet manager. The full
//! campaign (50 link flaps, 5 target restarts, 3 LID changes, QP errors, SA BUSY
//! periods, DREQs, T_LOGOUTs and a stale-connection reject over 30 s of virtual time)
//! takes about 20 s of wall time per seed under the built-in SM and two to three
//! minutes under OpenSM (which sweeps in real time after every link change); CI runs
//! a short version ([`CI`]). Each run's figures go to `target/faults-<sm>-<seed>.json`.

use std::time::Instant;

/// The seeds of the full campaign.
const SEEDS: [u64; 3] = [1, 2, 3];

/// CI's campaign: every fault kind, fewer of them over a shorter window, two seeds
/// under the built-in SM and one under OpenSM.
pub const CI: &[(&str, u64, &[&str])] = &[
    ("builtin", 1, &[]),
    ("builtin", 2, &[]),
    ("opensm", 1, &["--window-s", "12", "--flaps", "12"]),
];

/// `cargo xtask faults [--sm builtin|opensm] [--seeds N,M,...]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let mut sms: Vec<&str> = vec!["builtin", "opensm"];
    let mut seeds: Vec<u64> = SEEDS.to_vec();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sm" => {
                let v = it.next().ok_or("--sm needs a value: builtin or opensm")?;
                sms = match v.as_str() {
                    "builtin" => vec!["builtin"],
                    "opensm" => vec!["opensm"],
                    _ => return Err(format!("--sm: `{v}` is not builtin or opensm")),
                };
            }
            "--seeds" => {
                let v = it.next().ok_or("--seeds needs a list: 1,2,3")?;
                seeds = v
                    .split(',')
                    .map(|s| s.trim().parse::<u64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--seeds: `{v}` is not a list of numbers"))?;
            }
            "--help" | "-h" => {
                println!("usage: cargo xtask faults [--sm builtin|opensm] [--seeds 1,2,3]");
                return Ok(());
            }
            other => return Err(format!("faults: unknown argument `{other}`")),
        }
    }
    let runs: Vec<(&str, u64, &[&str])> = sms
        .iter()
        .flat_map(|sm| seeds.iter().map(move |s| (*sm, *s, &[][..])))
        .collect();
    run(&runs)
}

/// Builds and checks the images, then runs the campaign for each `(sm, seed, extra
/// arguments)`.
pub fn run(runs: &[(&str, u64, &[&str])]) -> Result<(), String> {
    let started = Instant::now();
    let built = crate::images::build_all()?;
    crate::images::report(&built);
    crate::pe::check_all()?;
    let root = crate::images::target_dir();
    let images = crate::images::sys_dir();
    let images = images.to_string_lossy().into_owned();
    for (sm, seed, extra) in runs {
        let report = root.join(format!("faults-{sm}-{seed}.json"));
        let report = report.to_string_lossy().into_owned();
        let seed = seed.to_string();
        let mut args: Vec<&str> = vec![
            "run",
            "--quiet",
            "--package",
            "fabboot-sim",
            "--bin",
            "fabboot-sim",
            "--",
            "faults",
            "--images",
            &images,
            "--sm",
            sm,
            "--seed",
            &seed,
            "--report",
            &report,
        ];
        args.extend(extra.iter());
        crate::cargo(&args)?;
    }
    println!(
        "xtask faults: {} campaigns passed in {:.1} s (wall, with the builds)",
        runs.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
