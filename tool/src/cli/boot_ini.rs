//! `fabboot boot-ini`: the `boot.ini` `[operating systems]` line that makes NTLDR load
//! `ntbootdd.sys` and boot from the SRP disk (reference windows-side.md §3.8; the ARC
//! path syntax and its formatter are `crate::inf::bootini`).
//!
//! What the numbers are, for the disk the driver presents:
//!
//! * `scsi(W)`: the adapter ordinal as `ntbootdd.sys` counts the adapters it finds (0
//!   for the first HCA), or `signature(S)` to find the disk by its MBR signature on
//!   whichever adapter it is;
//! * `disk(X)`: the SCSI target ID, always [`TARGET_ID`] (0): the driver presents
//!   the SRP target as one SCSI target (`fabboot::miniport::srb`);
//! * `rdisk(Y)`: the LUN as the driver presents it: SRB LUN n is the n-th LUN of the
//!   target's REPORT LUNS list (`fabboot::initiator::luns`, at most [`MAX_LUNS`]), so
//!   the target's LUN L is `rdisk(L)` when the target lists its LUNs from 0 without
//!   gaps;
//! * `partition(Z)` from 1, then the system directory (`\WINDOWS`).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use fabboot::initiator::luns::MAX_LUNS;
use fabboot::miniport::srb::TARGET_ID;

use super::args::{self, Opt};
use super::{Failure, image};
use crate::inf::bootini::{self, Adapter};

/// The usage text.
pub const USAGE: &str = "\
usage: fabboot boot-ini [--controller N | --signature HEX] [--lun N] [--partition N]
                        [--path \\WINDOWS] [--title TEXT] [IMAGE]

Prints the boot.ini [operating systems] line for a system on the SRP disk, with the
ARC path NTLDR needs to load ntbootdd.sys and read the disk through it:
scsi(W)disk(X)rdisk(Y)partition(Z)\\PATH, or signature(S)disk(X)rdisk(Y)... .
X is the SCSI target ID the driver presents (always 0) and Y the LUN it presents:
the n-th LUN the target lists in REPORT LUNS is LUN n. With IMAGE, a configured
ntbootdd.sys, the LUN is the one it is configured with.

options:
  --controller N         ntbootdd.sys's adapter ordinal, scsi(N) (default 0)
  --signature HEX        find the disk by its MBR disk signature instead (1-8 hex digits)
  --lun N                the boot disk's LUN as the driver presents it (default 0)
  --partition N          the system partition, from 1 (default 1)
  --path \\DIR            the system directory (default \\WINDOWS)
  --title TEXT           the boot menu's text (default \"Windows (SRP disk, fabboot)\")
";

const OPTS: [Opt; 6] = [
    args::value("--controller"),
    args::value("--signature"),
    args::value("--lun"),
    args::value("--partition"),
    args::value("--path"),
    args::value("--title"),
];

fn decimal(m: &args::Matches, name: &str, default: u32) -> Result<u32, Failure> {
    match m.value(name) {
        None => Ok(default),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map_err(|_| Failure::usage(format!("{name}: {v:?} is too large"))),
        Some(v) => Err(Failure::usage(format!(
            "{name}: {v:?} is not a decimal number"
        ))),
    }
}

/// Runs the subcommand.
pub fn run(argv: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let m = args::parse(argv, &OPTS)?;
    if m.help {
        return super::usage(out, &[USAGE]);
    }
    let adapter = match m.value("--signature") {
        Some(_) if m.has("--controller") => {
            return Err(Failure::usage("--controller: not with --signature"));
        }
        Some(v) => {
            let ok = !v.is_empty() && v.len() <= 8 && v.bytes().all(|b| b.is_ascii_hexdigit());
            let sig = u32::from_str_radix(v, 16)
                .ok()
                .filter(|_| ok)
                .ok_or_else(|| {
                    Failure::usage(format!("--signature: {v:?} is not 1 to 8 hex digits"))
                })?;
            Adapter::Signature(sig)
        }
        None => Adapter::Scsi(decimal(&m, "--controller", 0)?),
    };
    let beyond = |lun: u32| usize::try_from(lun).map_or(true, |l| l >= MAX_LUNS);
    let beyond_text = |lun: u32| {
        format!(
            "{lun} is beyond the {MAX_LUNS} LUNs the driver presents (0-{})",
            MAX_LUNS - 1
        )
    };
    let lun = match m.operands.as_slice() {
        [] => {
            let lun = decimal(&m, "--lun", 0)?;
            if beyond(lun) {
                return Err(Failure::usage(format!("--lun: {}", beyond_text(lun))));
            }
            lun
        }
        [path] if m.has("--lun") => {
            return Err(Failure::usage(format!(
                "--lun: not with IMAGE {path:?} (the LUN comes from its configuration)"
            )));
        }
        [path] => {
            let img = image::load(&PathBuf::from(path))?;
            let cfg = img.block.config.ok_or_else(|| {
                Failure::failed(format!(
                    "{path}: not configured: no LUN to boot (configure it, or give --lun)"
                ))
            })?;
            let lun = u32::from(cfg.lun);
            if beyond(lun) {
                return Err(Failure::failed(format!(
                    "{path}: the image's LUN: {}",
                    beyond_text(lun)
                )));
            }
            if lun != 0 {
                writeln!(
                    err,
                    "fabboot: boot-ini: note: rdisk({lun}) assumes the target lists its LUNs \
from 0 without gaps (the driver presents the n-th LUN of the target's REPORT LUNS list as LUN n)"
                )
                .map_err(super::io_error)?;
            }
            lun
        }
        [_, extra, ..] => return Err(Failure::usage(format!("{extra}: one IMAGE only"))),
    };
    let partition = decimal(&m, "--partition", 1)?;
    if partition == 0 {
        return Err(Failure::usage(
            "--partition: partitions are numbered from 1",
        ));
    }
    let path = m.value("--path").unwrap_or("\\WINDOWS");
    let path = if path.starts_with('\\') {
        path.to_string()
    } else {
        format!("\\{path}")
    };
    let title = m.value("--title").unwrap_or("Windows (SRP disk, fabboot)");
    let line = bootini::arc_line(
        adapter,
        u32::from(TARGET_ID),
        lun,
        partition,
        &path,
        title,
        &[],
    )
    .map_err(|e| {
        let name = match e {
            bootini::ArcError::BadTitle => "--title",
            bootini::ArcError::BadPath { .. } => "--path",
            bootini::ArcError::PartitionZero => "--partition",
            _ => "boot.ini line",
        };
        Failure::usage(format!("{name}: {e}"))
    })?;
    writeln!(out, "{line}").map_err(super::io_error)
}
