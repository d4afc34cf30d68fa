//! Parsers for the installation files in `inf/`: what Windows setup and NTLDR read, so
//! the shipped files can be checked on Linux and `fabboot boot-ini` can write an ARC
//! path that parses back.
//!
//! * [`ini`]: the line syntax the three share (sections, `key = value, value`, quoted
//!   strings with `""`, `;` comments, `\` continuation in INF files).
//! * [`inf_file`]: Windows INF files, typed, with a check that every section,
//!   `%token%` and file a directive names exists.
//! * [`txtsetup`]: `txtsetup.oem` for text-mode setup (F6), with its own checks.
//! * [`bootini`]: `boot.ini` and ARC paths, and [`bootini::arc_line`].
//!
//! All of them take any text and never panic: a file that is not what they expect is a
//! typed error naming its line.

pub mod bootini;
pub mod inf_file;
pub mod ini;
pub mod txtsetup;

pub use bootini::{Adapter, ArcError, ArcPath, BootIni, arc_line, parse_arc_path};
pub use inf_file::{InfError, InfFile};
pub use txtsetup::{TxtSetup, TxtSetupError};
