//! `fabboot inspect`: what a driver image is (flavour, architecture, version), whether
//! its PE checksum holds and whether it is signed, and the target its embedded
//! configuration block names, in the `DriverParameter` syntax so it can be pasted
//! (README "Configuration: which target").

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use super::args::{self, Opt};
use super::image::{self, Image};
use super::pe::VersionResource;
use super::{Failure, target};

/// The usage text.
pub const USAGE: &str = "\
usage: fabboot inspect IMAGE [--json]

Prints what the driver image is (flavour by the port driver it imports, architecture,
version resource), whether its PE checksum is valid and whether it carries an
Authenticode signature, and its embedded configuration: \"not configured\", or each
value in the driver's DriverParameter syntax and the whole string, ready to paste.

options:
  --json                 print one JSON object instead
";

const OPTS: [Opt; 1] = [args::flag("--json")];

/// Runs the subcommand.
pub fn run(argv: &[OsString], out: &mut dyn Write) -> Result<(), Failure> {
    let m = args::parse(argv, &OPTS)?;
    if m.help {
        return super::usage(out, &[USAGE]);
    }
    let path = match m.operands.as_slice() {
        [one] => PathBuf::from(one),
        [] => return Err(Failure::usage("IMAGE is required")),
        [_, extra, ..] => return Err(Failure::usage(format!("{extra}: one IMAGE only"))),
    };
    let img = image::load(&path)?;
    let text = if m.has("--json") {
        json(&img)
    } else {
        text(&img)
    };
    out.write_all(text.as_bytes()).map_err(super::io_error)
}

fn flavour(img: &Image) -> String {
    match img.flavour() {
        Some(f) => format!("{} ({}, imports {}.sys)", f.port(), f.file(), f.port()),
        None => format!("unknown (imports {})", img.pe.imports.join(", ")),
    }
}

fn version(v: &VersionResource) -> String {
    match v {
        VersionResource::None => "none (no version resource)".into(),
        VersionResource::Found(info) => format!("{} (product {})", info.file, info.product),
        VersionResource::Unreadable(why) => format!("unreadable ({why})"),
    }
}

fn text(img: &Image) -> String {
    let pe = &img.pe;
    let computed = pe.checksum_computed(&img.data);
    let mut s = format!("image: {}\n", img.path.display());
    s += &format!("flavour: {}\n", flavour(img));
    s += &format!(
        "architecture: {} ({}, machine {:#06x})\n",
        pe.architecture(),
        if pe.pe64 { "PE32+" } else { "PE32" },
        pe.machine
    );
    s += &format!("version: {}\n", version(&pe.version));
    if pe.checksum_stored == computed {
        s += &format!("checksum: valid ({computed:#010x})\n");
    } else {
        s += &format!(
            "checksum: invalid (stored {:#010x}, computed {computed:#010x})\n",
            pe.checksum_stored
        );
    }
    match pe.certificates {
        Some((at, len)) => {
            s += &format!("signed: yes (certificate table at {at:#x}, {len} bytes)\n")
        }
        None => s += "signed: no\n",
    }
    s += &format!("block: at file offset {:#x}\n", img.block_at);
    match &img.block.config {
        None => s += "configuration: not configured\n",
        Some(cfg) => {
            s += "configuration: configured\n";
            for (key, value) in target::values(cfg) {
                s += &format!("  {}: {value}\n", key.name());
            }
            s += &format!("DriverParameter: {}\n", target::driver_parameter(cfg));
        }
    }
    s
}

/// A JSON string literal (RFC 8259 §7).
fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o += "\\\"",
            '\\' => o += "\\\\",
            c if u32::from(c) < 0x20 => o += &format!("\\u{:04x}", u32::from(c)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json(img: &Image) -> String {
    let pe = &img.pe;
    let computed = pe.checksum_computed(&img.data);
    let flavour = img.flavour().map_or("null".into(), |f| js(f.port()));
    let version = match &pe.version {
        VersionResource::Found(info) => js(&info.file.to_string()),
        _ => "null".into(),
    };
    let imports: Vec<String> = pe.imports.iter().map(|i| js(i)).collect();
    let signed = match pe.certificates {
        Some((at, len)) => format!("{{\"offset\":{at},\"length\":{len}}}"),
        None => "null".into(),
    };
    let config = match &img.block.config {
        None => "null".into(),
        Some(cfg) => {
            let mut fields: Vec<String> = target::values(cfg)
                .iter()
                .map(|(k, v)| format!("{}:{}", js(k.name()), js(v)))
                .collect();
            fields.push(format!(
                "\"driver_parameter\":{}",
                js(&target::driver_parameter(cfg))
            ));
            format!("{{{}}}", fields.join(","))
        }
    };
    format!(
        "{{\"image\":{},\"flavour\":{flavour},\"imports\":[{}],\"architecture\":{},\
\"machine\":{},\"version\":{version},\"checksum\":{{\"stored\":{},\"computed\":{computed},\
\"valid\":{}}},\"signature\":{signed},\"block_offset\":{},\"configured\":{},\
\"configuration\":{config}}}\n",
        js(&img.path.display().to_string()),
        imports.join(","),
        js(&pe.architecture()),
        pe.machine,
        pe.checksum_stored,
        pe.checksum_stored == computed,
        img.block_at,
        img.block.config.is_some(),
    )
}

#[cfg(test)]
mod tests {
    use super::js;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(js(r#"C:\a "b""#), r#""C:\\a \"b\"""#);
        assert_eq!(js("a\nb\u{1}"), "\"a\\u000ab\\u0001\"");
        assert_eq!(js("é"), "\"é\"");
    }
}
