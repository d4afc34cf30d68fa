//! `fabboot ib-srp-uri`: converts between iPXE's SRP root path and the driver's
//! configuration (reference ipxe-srp-boot.md §2.3, srp-cm-sa-dm.md §2.1 and §4.2).
//!
//! ```text
//! ib_srp:<sgid>:<initiator id_ext>:<initiator HCA GUID>:<dgid>:<pkey>:<service_id>:
//!        <lun>:<target id_ext>:<target IOC GUID>
//! ```
//!
//! Nine `:`-separated fields, the last taking the remainder. GIDs are 32 plain hex
//! digits, GUIDs, id_exts and the Service ID 16 (no separators); `pkey` is a hex
//! number (default ffff); `lun` up to four 16-bit hex levels separated by `-` (SAM-5
//! §4.6: the 8-byte LUN, two bytes per level; default 0). dgid, service_id, target
//! id_ext and IOC GUID are required.
//!
//! The map to the driver's configuration (`fabboot::bootcfg::BootConfig`):
//!
//! * `target_port_id` = target id_ext (its first 8 bytes) followed by the IOC GUID
//!   (its last 8): the SRP target port identifier as SRP_LOGIN_REQ carries it for
//!   I/O class 0x0100 (srp-cm-sa-dm.md §2.1), the order of the sBFT's SRP subtable
//!   and of `TargetConfig::target_port_id` (id_ext ‖ IOC GUID);
//! * `initiator_ext` = the initiator id_ext; the initiator HCA GUID and the sgid have
//!   no counterpart (the driver logs in through the port it drives, with that port's
//!   GUID as the low half of its initiator port ID) and are reported as ignored;
//! * `lun`: a single-level LUN in peripheral device addressing (bus 0, LUN 0-255) or
//!   flat space addressing (0-16383), as the driver reads an sBFT's LUN; written
//!   back as peripheral up to 255 and flat space above.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use fabboot::bootcfg::{BootConfig, Key};

use super::args::{self, Opt};
use super::{Failure, image, target};

/// The usage text.
pub const USAGE: &str = "\
usage: fabboot ib-srp-uri 'ib_srp:SGID:INITIATOR_ID_EXT:HCA_GUID:DGID:PKEY:SERVICE_ID:LUN:TARGET_ID_EXT:IOC_GUID'
       fabboot ib-srp-uri --dgid GID --service-id HEX --target-port-id ID [--lun N]
                          [--pkey HEX] [--initiator-ext HEX]
       fabboot ib-srp-uri --image IMAGE

With a root path (iPXE's sanboot or DHCP root-path syntax), prints the driver's
DriverParameter string and the fabboot configure arguments naming the same target.
With the target options, or a configured image, prints the root path.
The target port ID is the target id_ext followed by the IOC GUID.

options:
";

const OWN: [Opt; 1] = [args::value("--image")];

/// The fields of a root path, in order.
const FIELDS: [&str; 9] = [
    "sgid",
    "initiator id_ext",
    "initiator HCA GUID",
    "dgid",
    "pkey",
    "service_id",
    "lun",
    "target id_ext",
    "target IOC GUID",
];

/// Runs the subcommand.
pub fn run(argv: &[OsString], out: &mut dyn Write) -> Result<(), Failure> {
    let opts: Vec<Opt> = target::OPTIONS.iter().chain(&OWN).copied().collect();
    let m = args::parse(argv, &opts)?;
    if m.help {
        return super::usage(
            out,
            &[
                USAGE,
                target::USAGE,
                "  --image IMAGE          the target of a configured driver image\n",
            ],
        );
    }
    let text = match (m.operands.as_slice(), m.value("--image")) {
        ([uri], None) => {
            if let Some(name) = m.names().next() {
                return Err(Failure::usage(format!("{name}: not with a root path")));
            }
            let parsed = parse(uri)?;
            let mut s = format!(
                "DriverParameter: {}\nconfigure: fabboot configure IMAGE {}\n",
                target::driver_parameter(&parsed.config),
                target::configure_args(&parsed.config)
            );
            if let Some(sgid) = parsed.sgid {
                s += &format!(
                    "ignored: sgid {} (the driver logs in through the port it drives)\n",
                    target::gid(&sgid)
                );
            }
            if let Some(guid) = parsed.hca_guid {
                s += &format!(
                    "ignored: initiator HCA GUID {guid:016x} (the driver's initiator port ID \
ends with the GUID of the port it drives)\n"
                );
            }
            s
        }
        ([], Some(path)) => {
            if let Some(name) = m.names().find(|n| *n != "--image") {
                return Err(Failure::usage(format!("{name}: not with --image")));
            }
            let img = image::load(&PathBuf::from(path))?;
            let cfg = img.block.config.ok_or_else(|| {
                Failure::failed(format!("{path}: not configured: no target to convert"))
            })?;
            format!("{}\n", root_path(&cfg))
        }
        ([], None) if target::any_given(&m) => {
            format!("{}\n", root_path(&target::from_matches(&m)?))
        }
        ([], None) => {
            return Err(Failure::usage(
                "give a root path, the target options or --image IMAGE",
            ));
        }
        ([_], Some(_)) => return Err(Failure::usage("--image: not with a root path")),
        ([_, extra, ..], _) => {
            return Err(Failure::usage(format!("{extra}: one root path only")));
        }
    };
    out.write_all(text.as_bytes()).map_err(super::io_error)
}

/// A root path read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootPath {
    /// The driver's configuration it names.
    pub config: BootConfig,
    /// The source GID, when given (not used by the driver).
    pub sgid: Option<[u8; 16]>,
    /// The initiator HCA GUID, when given (not used by the driver).
    pub hca_guid: Option<u64>,
}

fn field_name(i: usize) -> String {
    format!("{} (field {} of the root path)", FIELDS[i], i + 1)
}

/// `digits` hex digits exactly, or empty (`None`).
fn plain_hex<'a>(fields: &[&'a str], i: usize, digits: usize) -> Result<Option<&'a str>, Failure> {
    let v = fields[i];
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() == digits && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Some(v))
    } else {
        Err(Failure::usage(format!(
            "{}: {v:?} is not {digits} hex digits",
            field_name(i)
        )))
    }
}

fn required<'a>(fields: &[&'a str], i: usize, digits: usize) -> Result<&'a str, Failure> {
    plain_hex(fields, i, digits)?
        .ok_or_else(|| Failure::usage(format!("{} is required", field_name(i))))
}

/// The driver's LUN of a root path's `lun` field.
fn lun(v: &str) -> Result<u16, String> {
    const SYNTAX: &str = "up to four 16-bit hex levels separated by '-'";
    if v.is_empty() {
        return Ok(0);
    }
    let levels: Vec<&str> = v.split('-').collect();
    if levels.len() > 4
        || levels
            .iter()
            .any(|l| l.is_empty() || l.len() > 4 || !l.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!("{v:?} is not a SAM LUN ({SYNTAX})"));
    }
    let level = |l: &str| u16::from_str_radix(l, 16).unwrap_or(0);
    if levels.iter().skip(1).any(|l| level(l) != 0) {
        return Err(format!(
            "{v:?} is a LUN of more than one level, which the driver cannot address"
        ));
    }
    let first = level(levels[0]);
    let [hi, lo] = first.to_be_bytes();
    match hi >> 6 {
        0b00 if hi == 0 => Ok(u16::from(lo)),
        0b00 => Err(format!(
            "{v:?} is peripheral device addressing on bus {hi}, which the driver cannot \
address (bus 0 only)"
        )),
        0b01 => Ok(first & 0x3FFF),
        _ => Err(format!(
            "{v:?} is logical unit or extended addressing, which the driver cannot address \
(peripheral or flat space only)"
        )),
    }
}

/// The root path's `lun` field for a driver LUN.
fn lun_field(lun: u16) -> String {
    if lun <= 0xFF {
        format!("{lun:x}")
    } else {
        format!("{:x}", 0x4000 | lun)
    }
}

/// Reads a root path.
pub fn parse(uri: &str) -> Result<RootPath, Failure> {
    let rest = uri
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("ib_srp:"))
        .and_then(|_| uri.get(7..))
        .ok_or_else(|| Failure::usage(format!("{uri:?} is not an ib_srp: root path")))?;
    let fields: Vec<&str> = rest.splitn(FIELDS.len(), ':').collect();
    if fields.len() != FIELDS.len() {
        return Err(Failure::usage(format!(
            "{uri:?} has {} fields after ib_srp:, a root path has 9 ({})",
            fields.len(),
            FIELDS.join(":")
        )));
    }
    let sgid = plain_hex(&fields, 0, 32)?;
    let initiator_ext = plain_hex(&fields, 1, 16)?;
    let hca_guid = plain_hex(&fields, 2, 16)?;
    let dgid = required(&fields, 3, 32)?;
    let pkey = fields[4];
    let service_id = required(&fields, 5, 16)?;
    let lun = lun(fields[6]).map_err(|e| Failure::usage(format!("{}: {e}", field_name(6))))?;
    let id_ext = required(&fields, 7, 16)?;
    let ioc_guid = required(&fields, 8, 16)?;
    if !pkey.is_empty() && (pkey.len() > 4 || !pkey.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(Failure::usage(format!(
            "{}: {pkey:?} is not a 16-bit hex number",
            field_name(4)
        )));
    }
    let target_port_id = format!("{id_ext}{ioc_guid}");
    let lun = lun.to_string();
    let mut values = vec![
        (Key::Dgid, dgid),
        (Key::ServiceId, service_id),
        (Key::TargetPortId, target_port_id.as_str()),
        (Key::Lun, lun.as_str()),
    ];
    if let Some(v) = initiator_ext {
        values.push((Key::InitiatorExt, v));
    }
    if !pkey.is_empty() {
        values.push((Key::Pkey, pkey));
    }
    let config = target::from_values(&values, |key| match key {
        Key::Dgid => field_name(3),
        Key::ServiceId => field_name(5),
        Key::TargetPortId => format!("{} and {}", field_name(7), field_name(8)),
        Key::InitiatorExt => field_name(1),
        Key::Pkey => field_name(4),
        Key::Lun => field_name(6),
    })?;
    let bytes16 = |s: &str| -> [u8; 16] {
        let mut b = [0u8; 16];
        for (i, out) in b.iter_mut().enumerate() {
            *out = s
                .get(2 * i..2 * i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .unwrap_or(0);
        }
        b
    };
    Ok(RootPath {
        config,
        sgid: sgid.map(bytes16),
        hca_guid: hca_guid.and_then(|g| u64::from_str_radix(g, 16).ok()),
    })
}

/// The root path naming a configuration's target (sgid and HCA GUID left empty:
/// iPXE then uses its port and that port's GUID, as the driver does).
pub fn root_path(cfg: &BootConfig) -> String {
    let t = &cfg.target;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "ib_srp::{:016x}::{}:{:04x}:{:016x}:{}:{}:{}",
        t.initiator_ext,
        hex(&t.dgid),
        t.pkey,
        t.service_id,
        lun_field(cfg.lun),
        hex(&t.target_port_id[..8]),
        hex(&t.target_port_id[8..]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luns_in_peripheral_and_flat_space_and_the_ones_refused() {
        assert_eq!(lun(""), Ok(0));
        assert_eq!(lun("0"), Ok(0));
        assert_eq!(lun("a"), Ok(10));
        assert_eq!(lun("00ff-0-0-0000"), Ok(255));
        assert_eq!(lun("4100"), Ok(256));
        assert_eq!(lun("7fff"), Ok(16383));
        for (bad, what) in [
            ("0-1", "more than one level"),
            ("0100", "bus 1"),
            ("8001", "logical unit or extended"),
            ("c000", "logical unit or extended"),
            ("10000", "not a SAM LUN"),
            ("1-0-0-0-0", "not a SAM LUN"),
            ("1--0", "not a SAM LUN"),
            ("x", "not a SAM LUN"),
        ] {
            let e = lun(bad).unwrap_err();
            assert!(e.contains(what), "{bad}: {e}");
        }
        for l in [0u16, 1, 255, 256, 4000, 16383] {
            assert_eq!(lun(&lun_field(l)), Ok(l), "{l}");
        }
    }
}
