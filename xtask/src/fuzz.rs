//! `cargo xtask fuzz [--seconds N] [TARGET...]`: the cargo-fuzz targets in `fuzz/`.
//!
//! Writes a few seed inputs into each target's corpus (`fuzz/corpus/<target>/`, which
//! is generated and git-ignored), builds every target once with `cargo fuzz build`,
//! then runs each named target (all of them by default) for N seconds with
//! `cargo fuzz run`, printing the executions libFuzzer reports. Fails if a target
//! crashes (a panic in a parser or a failed round-trip assertion), pointing at the
//! artifact under `fuzz/artifacts/<target>/` that reproduces it.
//!
//! cargo-fuzz needs nightly compiler flags (`-Zsanitizer`, sanitizer coverage); only
//! the stable toolchain is installed, so the `cargo fuzz` child process alone gets
//! `RUSTC_BOOTSTRAP=1`. The targets are built without a sanitizer (`-s none`): every
//! parser fuzzed is `#![forbid(unsafe_code)]`, so AddressSanitizer has nothing to find
//! that bounds checks do not already turn into panics, and it costs ten times the
//! executions per second (measured on this project's targets). Debug assertions and
//! overflow checks stay on (cargo fuzz's default), so an arithmetic overflow panics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::images;

/// Seconds per target when CI runs the fuzzers (`cargo xtask ci`), and the default.
pub const CI_SECONDS: u64 = 4;

/// Flags given to both `cargo fuzz build` and `cargo fuzz run`, so that the run finds
/// the build up to date.
const BUILD_FLAGS: &[&str] = &["--sanitizer", "none"];

/// `cargo xtask fuzz [--seconds N] [TARGET...]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let mut seconds = CI_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--seconds") {
            Some("") => args.next().map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => {
                targets.push(arg.clone());
                continue;
            }
        };
        seconds = value
            .and_then(|v| v.parse().ok())
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("`--seconds` needs a whole number above 0, got {value:?}"))?;
    }
    run(seconds, &targets)
}

/// Runs `targets` (every target when empty) for `seconds` each.
pub fn run(seconds: u64, targets: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let all = all_targets()?;
    let targets: Vec<String> = if targets.is_empty() {
        all.clone()
    } else {
        for t in targets {
            if !all.contains(t) {
                return Err(format!(
                    "no fuzz target `{t}`; the targets are: {}",
                    all.join(", ")
                ));
            }
        }
        targets.to_vec()
    };
    let version = cargo_fuzz(&["--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .ok_or(
            "cargo-fuzz is not installed: run ci/setup.sh (cargo install cargo-fuzz --locked)",
        )?;
    eprintln!(
        "xtask fuzz: {}; {} target(s), {seconds} s each",
        String::from_utf8_lossy(&version.stdout).trim(),
        targets.len()
    );

    for t in &targets {
        write_seeds(t)?;
    }
    let mut build = vec!["build"];
    build.extend_from_slice(BUILD_FLAGS);
    eprintln!("+ RUSTC_BOOTSTRAP=1 cargo fuzz {}", build.join(" "));
    let status = cargo_fuzz(&build)
        .status()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo fuzz build` failed ({status})"));
    }

    let max_time = format!("-max_total_time={seconds}");
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for t in &targets {
        let mut run = vec!["run"];
        run.extend_from_slice(BUILD_FLAGS);
        run.extend_from_slice(&[t, "--", &max_time, "-print_final_stats=1"]);
        eprintln!("+ RUSTC_BOOTSTRAP=1 cargo fuzz {}", run.join(" "));
        let out = cargo_fuzz(&run)
            .output()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stats = Stats::parse(&text);
        let verdict = match (out.status.success(), stats.execs) {
            (true, Some(_)) => "ok",
            (true, None) => "no libFuzzer summary",
            (false, _) => "CRASHED",
        };
        if verdict != "ok" {
            eprintln!("{}", crash_report(&text));
            failed.push(t.clone());
        }
        let row = format!(
            "{t:<12} {:>12} execs {:>10} execs/s  {verdict}",
            stats.execs.map_or("?".into(), |n| n.to_string()),
            stats.per_sec.map_or("?".into(), |n| n.to_string()),
        );
        println!("fuzz {row}");
        rows.push(row);
    }

    let secs = started.elapsed().as_secs();
    println!("xtask fuzz summary ({seconds} s per target, {secs} s in all with the build):");
    for row in &rows {
        println!("  {row}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz target(s) crashed: {} (inputs under fuzz/artifacts/<target>/; replay with \
             `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>`)",
            failed.join(", ")
        ))
    }
}

/// `cargo fuzz <args>` in the workspace root, with `RUSTC_BOOTSTRAP=1` for this child
/// only.
fn cargo_fuzz(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = images::cargo_command(&cargo);
    cmd.arg("fuzz").args(args).env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn fuzz_dir() -> PathBuf {
    images::workspace_root().join("fuzz")
}

/// The targets, one per `fuzz/fuzz_targets/<name>.rs` (cargo-fuzz's layout).
fn all_targets() -> Result<Vec<String>, String> {
    let dir = fuzz_dir().join("fuzz_targets");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no fuzz targets in {}", dir.display()));
    }
    Ok(names)
}

/// What libFuzzer reports at the end of a run.
#[derive(Debug, Default, PartialEq)]
struct Stats {
    execs: Option<u64>,
    per_sec: Option<u64>,
}

impl Stats {
    /// Reads `stat::number_of_executed_units` and `stat::average_exec_per_sec`
    /// (`-print_final_stats=1`), else the `Done N runs in S second(s)` line.
    fn parse(text: &str) -> Stats {
        let stat = |key: &str| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .filter_map(|v| v.trim_start_matches(':').trim().parse().ok())
                .next_back()
        };
        let done = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Done "))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .next_back();
        Stats {
            execs: stat("stat::number_of_executed_units").or(done),
            per_sec: stat("stat::average_exec_per_sec"),
        }
    }
}

/// The part of a failed run's output that says what broke: from the first panic or
/// libFuzzer error on (at most 120 lines), else the last 60 lines.
fn crash_report(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let markers = [
        "panicked at",
        "==ERROR",
        "ERROR: libFuzzer",
        "deadly signal",
    ];
    let from = lines
        .iter()
        .position(|l| markers.iter().any(|m| l.contains(m)))
        .unwrap_or(lines.len().saturating_sub(60));
    lines[from..]
        .iter()
        .take(120)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the seed inputs of `target` into its corpus directory (overwriting earlier
/// seeds; inputs libFuzzer added stay).
fn write_seeds(target: &str) -> Result<(), String> {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (i, seed) in seeds(target).iter().enumerate() {
        write(&dir.join(format!("seed-{i}")), seed)?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A 256-byte MAD with the common header filled in (reference §1.3: BaseVersion 1,
/// class, ClassVersion, method, TID at 8, AttributeID at 16) and `body` from byte 24.
fn mad(class: u8, class_version: u8, method: u8, attr: u16, body: &[(usize, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; 256];
    m[..4].copy_from_slice(&[1, class, class_version, method]);
    m[8..16].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    m[16..18].copy_from_slice(&attr.to_be_bytes());
    for (at, bytes) in body {
        m[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    m
}

/// An SRP IU of `len` bytes: type byte 0, tag at 8 (reference §1.1), `body` placed.
fn iu(kind: u8, len: usize, body: &[(usize, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; len];
    b[0] = kind;
    b[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    for (at, bytes) in body {
        b[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    b
}

/// A direct descriptor (reference §1.2): VA, R_Key, length.
fn desc(va: u64, rkey: u32, len: u32) -> Vec<u8> {
    [
        &va.to_be_bytes()[..],
        &rkey.to_be_bytes(),
        &len.to_be_bytes(),
    ]
    .concat()
}

/// Well-formed inputs for each target, written from the byte layouts of the reference
/// (not from the crates' encoders), so the fuzzers start past the type and length
/// checks.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    // SMP GetResp (class 0x01 LID-routed, 0x81 directed route; data at 64..128).
    let port_info: Vec<u8> = (0u8..64).collect();
    let smp_port_info = mad(0x01, 1, 0x81, 0x0015, &[(64, &port_info)]);
    let smp_pkeys = mad(
        0x81,
        1,
        0x81,
        0x0016,
        &[(4, &[0x80, 0]), (64, &[0xFF, 0xFF])],
    );
    let smp_get = mad(0x01, 1, 0x01, 0x0015, &[(20, &[0, 0, 0, 1]), (24, &[7; 8])]);
    // PathRecord (reference §1.5) at MAD byte 56: SGID/DGID, LIDs, reversible, P_Key.
    let mut record = vec![0u8; 64];
    record[8..24].copy_from_slice(&[0xFE, 0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1]);
    record[24..40].copy_from_slice(&[0xFE, 0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 2]);
    record[40..44].copy_from_slice(&[0, 2, 0, 1]);
    record[49] = 0x81;
    record[50..52].copy_from_slice(&[0xFF, 0xFF]);
    record[54..57].copy_from_slice(&[0x84, 0x83, 0x92]);
    // CM payloads (reference §1.4) at MAD byte 24.
    let cm = |attr: u16, body: &[(usize, &[u8])]| {
        let shifted: Vec<(usize, &[u8])> = body.iter().map(|&(at, b)| (24 + at, b)).collect();
        mad(0x07, 2, 0x03, attr, &shifted)
    };
    let cm_path = [
        &[0u8, 1, 0, 2][..],
        &record[8..40],
        &[0, 0, 0, 3, 0, 1, 0x08, 0x80],
    ]
    .concat();
    match target {
        "mad" => vec![smp_port_info, smp_pkeys, smp_get],
        "port_info" => vec![port_info, smp_port_info, smp_pkeys],
        "sa" => vec![
            mad(0x03, 2, 0x81, 0x0035, &[(32, &[0, 8]), (56, &record)]),
            // Status ERR_NO_RECORDS (§15.2.1.1): no record is read.
            mad(0x03, 2, 0x81, 0x0035, &[(4, &[0x03, 0])]),
            record,
        ],
        "cm" => vec![
            cm(
                0x0010,
                &[(0, &[0, 0, 0, 1]), (8, &[0x10; 8]), (52, &cm_path)],
            ),
            cm(
                0x0013,
                &[(0, &[0, 0, 0, 2]), (4, &[0, 0, 0, 1]), (12, &[0, 0, 9])],
            ),
            cm(
                0x0012,
                &[(8, &[0x40]), (9, &[8 << 1]), (10, &[0, 28]), (84, &[0xC2])],
            ),
            cm(0x0014, &[(0, &[0, 0, 0, 1])]),
            cm(0x0011, &[(8, &[0x40]), (9, &[20 << 3])]),
            cm(0x0015, &[(8, &[0, 0, 9])]),
            cm(0x0016, &[(4, &[0, 0, 0, 1])]),
        ],
        "srp_login" => vec![
            iu(
                0x00,
                64,
                &[(16, &[0, 0, 8, 0x44]), (24, &[0, 6]), (26, &[0x81])],
            ),
            iu(
                0xC0,
                52,
                &[(4, &[0, 0, 0, 128]), (16, &[0, 0, 8, 0x44]), (24, &[0, 6])],
            ),
            iu(0xC2, 32, &[(4, &[0, 1, 0, 4]), (24, &[0, 2])]),
        ],
        "srp_cmd" => vec![
            iu(0x02, 48, &[(32, &[0x00])]),
            iu(
                0x02,
                64,
                &[(5, &[0x01]), (32, &[0x28]), (48, &desc(0x1000, 7, 512))],
            ),
            iu(
                0x02,
                100,
                &[
                    (5, &[0x20]),
                    (6, &[2]),
                    (32, &[0x2A]),
                    (48, &desc(0x2000 + 68, 9, 32)),
                    (64, &[0, 0, 0x10, 0]),
                    (68, &desc(0x3000, 5, 0x800)),
                    (84, &desc(0x4000, 5, 0x800)),
                ],
            ),
        ],
        "srp_rsp" => vec![
            iu(0xC1, 36, &[(4, &[0, 0, 0, 1])]),
            iu(
                0xC1,
                40,
                &[(18, &[0x01]), (32, &[0, 0, 0, 4]), (39, &[0x04])],
            ),
            iu(
                0xC1,
                54,
                &[
                    (18, &[0x02]),
                    (19, &[0x02]),
                    (28, &[0, 0, 0, 18]),
                    (36, &[0x70]),
                ],
            ),
        ],
        "srp_tsk" => vec![iu(0x01, 48, &[(21, &[1]), (30, &[0x01]), (32, &[9; 8])])],
        "srp_logout" => vec![iu(0x03, 16, &[]), iu(0x80, 16, &[(4, &[0, 0, 0, 1])])],
        "srp_cred" => vec![iu(0x81, 16, &[(4, &[0, 0, 0, 8])]), iu(0x41, 16, &[])],
        "srp_aer" => vec![
            iu(0x82, 54, &[(21, &[1]), (28, &[0, 0, 0, 18]), (36, &[0x70])]),
            iu(0x42, 16, &[]),
        ],
        "srp_desc" => vec![[desc(0x1000, 7, 512), vec![0, 0, 2, 0]].concat()],
        "sbft" => vec![sbft_seed()],
        _ => Vec::new(),
    }
}

/// An sBFT as iPXE lays it out (reference/ipxe-srp-boot.md §2.1): 136 bytes, SCSI,
/// SRP and IB subtables at 48, 56 and 88, link-local GIDs, LUN 1, checksum fixed.
fn sbft_seed() -> Vec<u8> {
    let mut t = vec![0u8; 136];
    t[0..4].copy_from_slice(b"sBFT");
    t[4..8].copy_from_slice(&136u32.to_le_bytes());
    t[8] = 1;
    t[36..38].copy_from_slice(&48u16.to_le_bytes());
    t[38..40].copy_from_slice(&56u16.to_le_bytes());
    t[40..42].copy_from_slice(&88u16.to_le_bytes());
    t[49] = 1;
    t[63] = 1;
    t[88] = 0xFE;
    t[89] = 0x80;
    t[104] = 0xFE;
    t[105] = 0x80;
    t[119] = 2;
    t[120..128].copy_from_slice(&0x0002_C903_0000_0002u64.to_be_bytes());
    t[128..130].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let sum = t.iter().fold(0u8, |s, &x| s.wrapping_add(x));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_come_from_the_final_stats() {
        let text = "#1 INITED\nDone 123 runs in 4 second(s)\n\
                    stat::number_of_executed_units: 456\n\
                    stat::average_exec_per_sec:     114\n";
        assert_eq!(
            Stats::parse(text),
            Stats {
                execs: Some(456),
                per_sec: Some(114)
            }
        );
    }

    #[test]
    fn stats_fall_back_to_the_done_line() {
        let s = Stats::parse("#4096 pulse\nDone 98765 runs in 3 second(s)\n");
        assert_eq!(s.execs, Some(98765));
        assert_eq!(s.per_sec, None);
        assert_eq!(
            Stats::parse("==1== ERROR: libFuzzer: deadly signal"),
            Stats::default()
        );
    }

    #[test]
    fn crash_report_starts_at_the_panic() {
        let text = "#1 NEW\n#2 NEW\nthread '<unnamed>' panicked at src/x.rs:1:1:\nboom\n";
        assert!(crash_report(text).starts_with("thread '<unnamed>' panicked at"));
    }

    #[test]
    fn every_target_has_seeds_of_its_iu_type() {
        for t in all_targets().unwrap() {
            let seeds = seeds(&t);
            assert!(!seeds.is_empty(), "{t} has no seeds");
            if t.starts_with("srp_") && t != "srp_desc" {
                // Each SRP seed is an IU whose type byte the target parses.
                for s in &seeds {
                    assert!(
                        [
                            0x00, 0x01, 0x02, 0x03, 0x41, 0x42, 0x80, 0x81, 0x82, 0xC0, 0xC1, 0xC2
                        ]
                        .contains(&s[0]),
                        "{t}: seed type {:#x}",
                        s[0]
                    );
                }
            }
        }
    }
}
