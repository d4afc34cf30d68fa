//! `fabboot configure`: writes the target into an image's embedded configuration
//! block (`fabboot::bootcfg::block::patch`, README "Configuration: which target",
//! source 4), or returns the block to "not configured" (`--clear`); then removes an
//! Authenticode signature the change invalidates and recomputes the PE checksum.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use fabboot::bootcfg::block::{self, Block};

use super::args::{self, Opt};
use super::pe::{self, Removed};
use super::{Failure, image, target};

/// The usage text.
pub const USAGE: &str = "\
usage: fabboot configure IMAGE --dgid GID --service-id HEX --target-port-id ID
                         [--lun N] [--pkey HEX] [--initiator-ext HEX] [--output FILE]
       fabboot configure IMAGE --clear [--output FILE]

Writes the SRP target into the driver image's embedded configuration block (the
source NTLDR and an image without DriverParameter or sBFT use), or returns the block
to \"not configured\", and recomputes the PE checksum. Values take the syntax of the
driver's DriverParameter. The image is rewritten in place unless --output is given.
A signed image loses its signature (the new bytes invalidate it): sign it again.

";

const OWN: [Opt; 2] = [args::flag("--clear"), args::value("--output")];

/// Runs the subcommand.
pub fn run(argv: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let opts: Vec<Opt> = target::OPTIONS.iter().chain(&OWN).copied().collect();
    let m = args::parse(argv, &opts)?;
    if m.help {
        return super::usage(out, &[USAGE, "options:\n", target::USAGE, OPTIONS]);
    }
    let input = match m.operands.as_slice() {
        [one] => PathBuf::from(one),
        [] => return Err(Failure::usage("IMAGE is required")),
        [_, extra, ..] => return Err(Failure::usage(format!("{extra}: one IMAGE only"))),
    };
    let config = if m.has("--clear") {
        if let Some(name) = m
            .names()
            .find(|n| target::OPTIONS.iter().any(|o| o.name == *n))
        {
            return Err(Failure::usage(format!("{name}: not with --clear")));
        }
        None
    } else {
        Some(target::from_matches(&m)?)
    };
    let output = m
        .value("--output")
        .map_or_else(|| input.clone(), PathBuf::from);

    let mut img = image::load(&input)?;
    let new = Block { config };
    block::patch(&mut img.data, &new)
        .map_err(|e| Failure::failed(format!("{}: {}", input.display(), image::describe(e))))?;
    let removed = pe::remove_signature(&mut img.data, &img.pe);
    pe::fix_checksum(&mut img.data, img.pe.checksum_field);
    write_atomically(&output, &img.data)?;

    if let Some(how) = removed {
        let detail = match how {
            Removed::Truncated { at } => format!("the certificate table at {at:#x} was cut off"),
            Removed::Unlinked => "its directory entry was cleared".into(),
        };
        writeln!(
            err,
            "fabboot: configure: warning: {} was signed (Authenticode); the new configuration \
invalidates the signature, so it was removed ({detail}): sign {} again before installing it \
(cargo xtask sign for test signing)",
            input.display(),
            output.display()
        )
        .map_err(super::io_error)?;
    }
    let checksum = pe::checksum(&img.data, img.pe.checksum_field);
    match &config {
        Some(cfg) => writeln!(
            out,
            "{}: configured: {}\nPE checksum: {checksum:#010x}",
            output.display(),
            target::driver_parameter(cfg)
        ),
        None => writeln!(
            out,
            "{}: not configured\nPE checksum: {checksum:#010x}",
            output.display()
        ),
    }
    .map_err(super::io_error)
}

const OPTIONS: &str = "  --clear                return the block to \"not configured\"
  --output FILE          write the result to FILE, leave IMAGE unchanged
";

/// Writes `data` to a temporary file beside `path`, then renames it over `path`: a
/// reader never sees half an image, and a failure leaves `path` as it was.
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), Failure> {
    let name = path
        .file_name()
        .ok_or_else(|| Failure::usage(format!("{}: not a file name", path.display())))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".fabboot-tmp");
    let tmp = path.with_file_name(tmp_name);
    let fail = |e: std::io::Error| Failure::failed(format!("{}: {e}", path.display()));
    std::fs::write(&tmp, data).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}
