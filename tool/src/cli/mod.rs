//! The `fabboot` subcommands: what a person needs between `cargo xtask build` and a
//! booting machine.
//!
//! * [`configure`]: write (or clear) the target in an image's embedded block, fix the
//!   PE checksum, drop a signature the change invalidates;
//! * [`inspect`]: flavour, architecture, version, checksum, signature, configuration;
//! * [`sbft`]: decode an sBFT dump;
//! * [`boot_ini`]: the `boot.ini` line for `ntbootdd.sys`;
//! * [`uri`]: iPXE's `ib_srp:` root path to and from the driver's configuration.
//!
//! Conventions: `--help`/`-h` print the usage to standard output and exit 0; a bad
//! argument is one line `fabboot: <subcommand>: <what>` on standard error and exit
//! status 2; a failure (a file that cannot be read or is not a driver image) is the
//! same kind of line and exit status 1. [`args`] reads the options, [`target`] the
//! target's values (with the driver's own parser), [`pe`] and [`image`] the image.

pub mod args;
pub mod boot_ini;
pub mod configure;
pub mod image;
pub mod inspect;
pub mod pe;
pub mod sbft;
pub mod target;
pub mod uri;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// Exit status of a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of a failure.
pub const EXIT_FAILURE: u8 = 1;

/// Why a subcommand stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// A usage error (a bad argument) rather than a failure to do the work.
    pub usage: bool,
    /// What is wrong, naming the argument or the file.
    pub message: String,
}

impl Failure {
    /// A bad argument.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            usage: true,
            message: message.into(),
        }
    }

    /// A failure to do the work.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            usage: false,
            message: message.into(),
        }
    }

    /// The process's exit status for it.
    pub fn exit_code(&self) -> u8 {
        if self.usage { EXIT_USAGE } else { EXIT_FAILURE }
    }
}

fn io_error(e: std::io::Error) -> Failure {
    Failure::failed(format!("writing the output: {e}"))
}

fn usage(out: &mut dyn Write, parts: &[&str]) -> Result<(), Failure> {
    for p in parts {
        out.write_all(p.as_bytes()).map_err(io_error)?;
    }
    Ok(())
}

/// The top-level usage text.
pub const USAGE: &str = "\
usage: fabboot COMMAND [ARGS]

Configure and inspect fabboot driver images, and turn what firmware and iPXE know
about an SRP boot disk into what the driver and NTLDR need.

commands:
  configure IMAGE ...    write the SRP target into an image (or --clear it)
  inspect IMAGE          flavour, architecture, version, checksum, signature, target
  sbft FILE              decode an sBFT (the table, or a base-memory dump)
  boot-ini [IMAGE]       print the boot.ini line for ntbootdd.sys
  ib-srp-uri ...         convert iPXE's ib_srp: root path to and from the target

`fabboot COMMAND --help` describes each.
";

/// Runs the command line `args` (without the program name), writing to `out` and
/// `err`; returns the exit status.
pub fn run(args: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some((command, rest)) = args.split_first() else {
        let _ = writeln!(err, "fabboot: no command given (fabboot --help lists them)");
        return EXIT_USAGE;
    };
    let name = command.to_string_lossy().into_owned();
    let result = match name.as_str() {
        "-h" | "--help" | "help" => usage(out, &[USAGE]),
        "-V" | "--version" => {
            writeln!(out, "fabboot {}", env!("CARGO_PKG_VERSION")).map_err(io_error)
        }
        "configure" => configure::run(rest, out, err),
        "inspect" => inspect::run(rest, out),
        "sbft" => sbft::run(rest, out),
        "boot-ini" => boot_ini::run(rest, out, err),
        "ib-srp-uri" => uri::run(rest, out),
        _ => Err(Failure::usage(
            "unknown command (fabboot --help lists them)",
        )),
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            // One line, whatever the message holds.
            let message = f.message.replace(['\n', '\r'], " ");
            let _ = writeln!(err, "fabboot: {name}: {message}");
            f.exit_code()
        }
    }
}

/// The program: runs the process's command line on its standard streams.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = run(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
