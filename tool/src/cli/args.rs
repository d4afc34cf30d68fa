//! The command line of one subcommand, read against the options it declares: no
//! parser library, the conventions of GNU `getopt_long` for long options only.
//!
//! * `--name VALUE` and `--name=VALUE` for an option that takes a value; `--name` for
//!   a flag (a flag given a value is an error);
//! * `-h` and `--help` anywhere ask for the usage text;
//! * `--` ends the options: every argument after it is an operand, even one starting
//!   with `-`;
//! * anything else starting with `-` (except `-` alone) is an unknown option;
//! * an option given twice is an error (a command that rewrites a driver image must
//!   not guess which of two values was meant).

use std::ffi::OsString;

use super::Failure;

/// An option a subcommand accepts.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    /// Its name with the dashes (`--dgid`).
    pub name: &'static str,
    /// Whether it takes a value (`--dgid GID`) or is a flag (`--clear`).
    pub takes_value: bool,
}

/// An option that takes a value.
pub const fn value(name: &'static str) -> Opt {
    Opt {
        name,
        takes_value: true,
    }
}

/// An option that is a flag.
pub const fn flag(name: &'static str) -> Opt {
    Opt {
        name,
        takes_value: false,
    }
}

/// What was given.
#[derive(Debug, Default)]
pub struct Matches {
    /// `-h` or `--help` was given.
    pub help: bool,
    /// Options in the order given, each with its value (`None` for a flag).
    given: Vec<(&'static str, Option<String>)>,
    /// The operands, in order.
    pub operands: Vec<String>,
}

impl Matches {
    /// The value of an option that takes one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether an option (flag or value) was given.
    pub fn has(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| *n == name)
    }

    /// The names of the options given, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.given.iter().map(|(n, _)| *n)
    }
}

/// Reads `args` (the arguments after the subcommand's name) against `opts`.
pub fn parse(args: &[OsString], opts: &[Opt]) -> Result<Matches, Failure> {
    let mut m = Matches::default();
    let mut rest = args.iter();
    let mut operands_only = false;
    while let Some(raw) = rest.next() {
        let arg = raw
            .to_str()
            .ok_or_else(|| Failure::usage(format!("{raw:?}: an argument that is not UTF-8")))?;
        if operands_only || arg == "-" || !arg.starts_with('-') {
            m.operands.push(arg.to_owned());
            continue;
        }
        match arg {
            "--" => {
                operands_only = true;
                continue;
            }
            "-h" | "--help" => {
                m.help = true;
                continue;
            }
            _ => {}
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let opt = opts
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| Failure::usage(format!("{name}: unknown option")))?;
        let value = match (opt.takes_value, inline) {
            (true, Some(v)) => Some(v.to_owned()),
            (true, None) => {
                let next = rest
                    .next()
                    .ok_or_else(|| Failure::usage(format!("{name}: needs a value")))?;
                let v = next
                    .to_str()
                    .ok_or_else(|| Failure::usage(format!("{name}: {next:?} is not UTF-8")))?;
                Some(v.to_owned())
            }
            (false, Some(_)) => {
                return Err(Failure::usage(format!("{name}: takes no value")));
            }
            (false, None) => None,
        };
        if m.has(opt.name) {
            return Err(Failure::usage(format!("{name}: given twice")));
        }
        m.given.push((opt.name, value));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] = &[value("--lun"), flag("--clear")];

    fn run(args: &[&str]) -> Result<Matches, Failure> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args, OPTS)
    }

    #[test]
    fn values_flags_operands_and_help() {
        let m = run(&["img", "--lun", "3", "--clear", "-h"]).unwrap();
        assert_eq!(m.value("--lun"), Some("3"));
        assert!(m.has("--clear") && m.help);
        assert_eq!(m.value("--clear"), None);
        assert_eq!(m.operands, ["img"]);
        let m = run(&["--lun=-1", "--", "--clear", "-"]).unwrap();
        assert_eq!(m.value("--lun"), Some("-1"));
        assert!(!m.has("--clear"));
        assert_eq!(m.operands, ["--clear", "-"]);
        assert_eq!(m.names().collect::<Vec<_>>(), ["--lun"]);
    }

    #[test]
    fn each_mistake_is_named() {
        for (args, what) in [
            (&["--lun"][..], "--lun: needs a value"),
            (&["--clear=1"][..], "--clear: takes no value"),
            (&["--lun", "1", "--lun=2"][..], "--lun: given twice"),
            (&["--pkey", "1"][..], "--pkey: unknown option"),
            (&["-x"][..], "-x: unknown option"),
        ] {
            let e = run(args).unwrap_err();
            assert_eq!(e.message, what);
            assert_eq!(e.exit_code(), 2);
        }
    }
}
