//! `fabboot sbft`: decodes an sBFT (SRP Boot Firmware Table, reference
//! ipxe-srp-boot.md §2.1) from a file: the table alone, the table at an offset, or a
//! whole dump of base memory, scanned on 16-byte steps as the images scan it
//! (`fabboot::bootcfg::sbft::scan`, `Sbft::parse`: both byte orders). Prints the byte
//! order found, every field, and the equivalent `DriverParameter`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use fabboot::bootcfg::Key;
use fabboot::bootcfg::sbft::{self, ByteOrder, Part, Sbft, SbftError};

use super::args::{self, Opt};
use super::{Failure, target};

/// The usage text.
pub const USAGE: &str = "\
usage: fabboot sbft FILE [--offset N]

Decodes the sBFT iPXE leaves for the OS after an SRP SAN boot. FILE holds the table
(from the ACPI tables, or cut from memory), or a dump of base memory, which is
scanned on 16-byte steps from its start as the driver scans physical 0-0x9FFFF.
Both byte orders are read (iPXE's big-endian identifiers, and every identifier
reversed). Prints the byte order, every field and the equivalent DriverParameter.

options:
  --offset N             the table starts at byte N of FILE (decimal, or hex with 0x)
";

const OPTS: [Opt; 1] = [args::value("--offset")];

/// Runs the subcommand.
pub fn run(argv: &[OsString], out: &mut dyn Write) -> Result<(), Failure> {
    let m = args::parse(argv, &OPTS)?;
    if m.help {
        return super::usage(out, &[USAGE]);
    }
    let path = match m.operands.as_slice() {
        [one] => PathBuf::from(one),
        [] => return Err(Failure::usage("FILE is required")),
        [_, extra, ..] => return Err(Failure::usage(format!("{extra}: one FILE only"))),
    };
    let offset = m.value("--offset").map(parse_offset).transpose()?;
    let shown = path.display();
    let data = std::fs::read(&path).map_err(|e| Failure::failed(format!("{shown}: {e}")))?;
    let (at, table) = match offset {
        Some(at) => {
            let rest = data.get(at..).ok_or_else(|| {
                Failure::usage(format!(
                    "--offset: {at:#x} is beyond the end of {shown} ({} bytes)",
                    data.len()
                ))
            })?;
            let t = Sbft::parse(rest)
                .map_err(|e| Failure::failed(format!("{shown}: at {at:#x}: {}", describe(e))))?;
            (at, t)
        }
        None => find(&data).map_err(|e| Failure::failed(format!("{shown}: {e}")))?,
    };
    let raw = data.get(at..at + table.length).unwrap_or(&[]);
    out.write_all(report(at, raw, &table).as_bytes())
        .map_err(super::io_error)
}

fn parse_offset(s: &str) -> Result<usize, Failure> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => usize::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| {
        Failure::usage(format!(
            "--offset: {s:?} is not a byte offset (decimal, or hex with 0x)"
        ))
    })
}

/// Finds the table: the driver's scan first (base memory, 16-byte steps); when that
/// finds no valid table, any offset of the file, so a table cut out unaligned or
/// lying beyond base memory is still decoded.
fn find(data: &[u8]) -> Result<(usize, Sbft), String> {
    let first_error = match sbft::scan(data) {
        sbft::Scan::Found { at, table } => return Ok((at, table)),
        sbft::Scan::Invalid { at, error } => Some((at, error)),
        sbft::Scan::None => None,
    };
    let mut anywhere = None;
    for at in data
        .windows(sbft::SIGNATURE.len())
        .enumerate()
        .filter(|(_, w)| *w == sbft::SIGNATURE)
        .map(|(at, _)| at)
    {
        match Sbft::parse(data.get(at..).unwrap_or(&[])) {
            Ok(t) => return Ok((at, t)),
            Err(e) => {
                anywhere.get_or_insert((at, e));
            }
        }
    }
    match first_error.or(anywhere) {
        Some((at, e)) => Err(format!(
            "the sBFT at {at:#x} cannot be used: {}",
            describe(e)
        )),
        None => Err("no sBFT signature in the file".into()),
    }
}

/// Why a table cannot be used, in words.
pub fn describe(e: SbftError) -> String {
    match e {
        SbftError::Signature => "no sBFT signature there".into(),
        SbftError::Length { length } => format!(
            "length {length} is shorter than the header, longer than {} or than the file",
            sbft::MAX_LEN
        ),
        SbftError::Checksum { sum } => format!("the bytes sum to {sum:#04x}, not 0"),
        SbftError::Subtable { which, offset } => {
            let name = match which {
                Part::Scsi => "SCSI",
                Part::Srp => "SRP",
                Part::Ib => "IB",
            };
            format!("the {name} subtable (offset {offset}) is missing or out of bounds")
        }
        SbftError::Lun { raw } => format!(
            "the LUN {} is not one the driver can address (single level, peripheral or \
flat space, up to 16383)",
            hex(&raw)
        ),
        SbftError::Value { key } => format!(
            "its {} is {}",
            key.name(),
            match key {
                Key::Dgid => "zero or multicast",
                Key::Pkey => "not a valid P_Key (low 15 bits zero)",
                _ => "not a value a target can have",
            }
        ),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

/// An ASCII header field with its NUL and blank padding dropped.
fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .escape_debug()
        .to_string()
}

fn report(at: usize, raw: &[u8], t: &Sbft) -> String {
    let cfg = &t.config;
    let mut s = format!("sBFT at offset {at:#x} ({} bytes)\n", t.length);
    if !at.is_multiple_of(sbft::ALIGN) || at >= sbft::BASE_MEMORY_END {
        s += "note: not on a 16-byte boundary of base memory: the driver's scan of physical \
0-0x9FFFF would not find it there\n";
    }
    s += match t.order {
        ByteOrder::Network => {
            "byte order: network (identifiers as big-endian byte strings, as iPXE writes them)\n"
        }
        ByteOrder::Reversed => {
            "byte order: reversed (each identifier little-endian, as the draft's \"all \
scalars little-endian\" reads)\n"
        }
    };
    s += &format!(
        "header: revision {}, checksum {:#04x}, OEM ID \"{}\", OEM table ID \"{}\"\n",
        raw.get(8).copied().unwrap_or(0),
        raw.get(9).copied().unwrap_or(0),
        ascii(raw.get(10..16).unwrap_or(&[])),
        ascii(raw.get(16..24).unwrap_or(&[])),
    );
    let scsi = usize::from(le16(raw, 36));
    s += &format!(
        "subtables: SCSI at {scsi}, SRP at {}, IB at {}\n",
        le16(raw, 38),
        le16(raw, 40)
    );
    let mut lun = raw.get(scsi..scsi + 8).unwrap_or(&[]).to_vec();
    if t.order == ByteOrder::Reversed {
        lun.reverse();
    }
    s += &format!("lun: {} (SAM {})\n", cfg.lun, hex(&lun));
    s += &format!(
        "initiator_port_id: {}\n",
        target::port_id(&t.initiator_port_id)
    );
    s += &format!(
        "target_port_id: {}\n",
        target::port_id(&cfg.target.target_port_id)
    );
    s += &format!("sgid: {}\n", target::gid(&t.sgid));
    s += &format!("dgid: {}\n", target::gid(&cfg.target.dgid));
    s += &format!("service_id: {:016x}\n", cfg.target.service_id);
    s += &format!("pkey: {:04x}\n", cfg.target.pkey);
    s += &format!(
        "initiator_ext: {:x} (the initiator port ID's id_ext)\n",
        cfg.target.initiator_ext
    );
    s += &format!("DriverParameter: {}\n", target::driver_parameter(cfg));
    s
}
