//! The target a driver image connects to, as the command line names it: the options
//! `--dgid`, `--service-id`, `--target-port-id`, `--initiator-ext`, `--pkey` and
//! `--lun`, with exactly the value syntax and checks of the driver's
//! `DriverParameter` (README "Configuration: which target";
//! `fabboot::bootcfg::args`), and the two ways of writing a configuration back out:
//! a `DriverParameter` string and the `fabboot configure` arguments.
//!
//! The values are read by the driver's own parser: the options are assembled into a
//! `DriverParameter` string and handed to [`fabboot::bootcfg::args::parse`], so the
//! command accepts exactly what the images accept, and each error names the option.

use fabboot::bootcfg::{self, BootConfig, ConfigError, Key};

use super::Failure;
use super::args::{self, Matches, Opt};

/// The options naming a target, in `fabboot configure`'s order.
pub const OPTIONS: [Opt; 6] = [
    args::value("--dgid"),
    args::value("--service-id"),
    args::value("--target-port-id"),
    args::value("--lun"),
    args::value("--pkey"),
    args::value("--initiator-ext"),
];

/// The usage lines for [`OPTIONS`].
pub const USAGE: &str =
    "  --dgid GID             the target port's GID: 32 hex digits, ':' allowed between
                         them (fe80:0000:0000:0000:0002:c903:0001:0002)
  --service-id HEX       the CM Service ID the target listens on, 64-bit hex
  --target-port-id ID    the SRP target port ID: 32 hex digits, ':' allowed
                         (id_ext followed by the IOC GUID)
  --lun N                the boot LUN, decimal 0-16383 (default 0)
  --pkey HEX             the partition key, 16-bit hex (default ffff)
  --initiator-ext HEX    the initiator port ID extension, 64-bit hex (default 0)
";

/// The command-line option for a configuration key.
pub fn option(key: Key) -> &'static str {
    match key {
        Key::Dgid => "--dgid",
        Key::ServiceId => "--service-id",
        Key::TargetPortId => "--target-port-id",
        Key::InitiatorExt => "--initiator-ext",
        Key::Pkey => "--pkey",
        Key::Lun => "--lun",
    }
}

/// What a key's value must be, for error messages.
pub fn syntax(key: Key) -> &'static str {
    match key {
        Key::Dgid => "a unicast GID of 32 hex digits (':' allowed between them)",
        Key::ServiceId => "a 64-bit hexadecimal number",
        Key::TargetPortId => "32 hex digits (':' allowed between them)",
        Key::InitiatorExt => "a 64-bit hexadecimal number",
        Key::Pkey => "a 16-bit hexadecimal P_Key whose low 15 bits are not all zero",
        Key::Lun => "a decimal LUN from 0 to 16383",
    }
}

/// Whether any target option was given.
pub fn any_given(m: &Matches) -> bool {
    OPTIONS.iter().any(|o| m.has(o.name))
}

/// Reads the target options; the three required ones must be there.
pub fn from_matches(m: &Matches) -> Result<BootConfig, Failure> {
    let values: Vec<(Key, &str)> = bootcfg::Key::ALL
        .iter()
        .filter_map(|&k| m.value(option(k)).map(|v| (k, v)))
        .collect();
    from_values(&values, |key| option(key).to_owned())
}

/// Builds a configuration from values in the `DriverParameter` syntax, checked by the
/// driver's parser; `name` says what to call a key in an error (an option, or a field
/// of another syntax that was converted). Every required key must be present.
pub fn from_values(
    values: &[(Key, &str)],
    name: impl Fn(Key) -> String,
) -> Result<BootConfig, Failure> {
    let bad =
        |key: Key, v: &str| Failure::usage(format!("{}: {v:?} is not {}", name(key), syntax(key)));
    for key in Key::ALL.iter().filter(|k| k.required()) {
        if !values.iter().any(|(k, _)| k == key) {
            return Err(Failure::usage(format!("{} is required", name(*key))));
        }
    }
    let mut s = String::new();
    for &(key, v) in values {
        // The entry and value separators cannot be part of any value; one would let a
        // value set another key.
        if v.contains([';', '\0']) {
            return Err(bad(key, v));
        }
        s.push_str(key.name());
        s.push('=');
        s.push_str(v);
        s.push(';');
    }
    let value_of = |key: Key| {
        values
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| *v)
    };
    match bootcfg::args::parse(s.as_bytes()) {
        Ok(Some(cfg)) => Ok(cfg),
        Ok(None) => Err(Failure::usage(format!("{} is required", name(Key::Dgid)))),
        Err(ConfigError::Malformed { key, .. }) => Err(bad(key, value_of(key))),
        Err(ConfigError::MissingKey { key, .. }) => {
            Err(Failure::usage(format!("{} is required", name(key))))
        }
        Err(other) => Err(Failure::failed(format!(
            "the driver's parser answered {other:?}"
        ))),
    }
}

/// A 128-bit identifier as 32 hex digits in groups of `group` bytes joined by `:`.
pub fn id128(id: &[u8; 16], group: usize) -> String {
    id.chunks(group)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(":")
}

/// The GID as `ibstat` prints it (eight groups of four digits).
pub fn gid(g: &[u8; 16]) -> String {
    id128(g, 2)
}

/// An SRP port ID as its two halves, id_ext and GUID.
pub fn port_id(id: &[u8; 16]) -> String {
    id128(id, 8)
}

/// Each value in the `DriverParameter` syntax, in the keys' order.
pub fn values(cfg: &BootConfig) -> [(Key, String); 6] {
    let t = &cfg.target;
    [
        (Key::Dgid, gid(&t.dgid)),
        (Key::ServiceId, format!("{:016x}", t.service_id)),
        (Key::TargetPortId, port_id(&t.target_port_id)),
        (Key::InitiatorExt, format!("{:x}", t.initiator_ext)),
        (Key::Pkey, format!("{:04x}", t.pkey)),
        (Key::Lun, cfg.lun.to_string()),
    ]
}

/// The configuration as a `DriverParameter` string the driver reads back to `cfg`.
pub fn driver_parameter(cfg: &BootConfig) -> String {
    values(cfg)
        .iter()
        .map(|(k, v)| format!("{}={v}", k.name()))
        .collect::<Vec<_>>()
        .join(";")
}

/// The configuration as `fabboot configure` arguments.
pub fn configure_args(cfg: &BootConfig) -> String {
    values(cfg)
        .iter()
        .map(|(k, v)| format!("{} {v}", option(*k)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabboot::initiator::TargetConfig;

    fn sample() -> BootConfig {
        BootConfig {
            target: TargetConfig {
                dgid: [
                    0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x00, 0x02,
                ],
                service_id: 0x0002_C903_0001_0001,
                target_port_id: [
                    0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x00, 0x01,
                ],
                initiator_ext: 0xAB,
                pkey: 0x8001,
            },
            lun: 12,
        }
    }

    #[test]
    fn the_driver_reads_back_what_is_written() {
        let s = driver_parameter(&sample());
        assert_eq!(
            s,
            "dgid=fe80:0000:0000:0000:0002:c903:0001:0002;service_id=0002c90300010001;\
target_port_id=0000000000000001:0002c90300010001;initiator_ext=ab;pkey=8001;lun=12"
        );
        assert_eq!(bootcfg::args::parse(s.as_bytes()), Ok(Some(sample())));
        let owned = values(&sample());
        let v: Vec<(Key, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(from_values(&v, |k| option(k).into()).unwrap(), sample());
    }

    #[test]
    fn errors_name_the_option_and_the_syntax() {
        let base = [
            (Key::Dgid, "fe80000000000000000000000000000a"),
            (Key::ServiceId, "1"),
            (Key::TargetPortId, "00000000000000000000000000000001"),
        ];
        let run = |extra: (Key, &str)| {
            let mut v = base.to_vec();
            v.push(extra);
            from_values(&v, |k| option(k).into()).unwrap_err().message
        };
        assert_eq!(
            run((Key::Lun, "16384")),
            "--lun: \"16384\" is not a decimal LUN from 0 to 16383"
        );
        assert!(run((Key::Pkey, "8000")).starts_with("--pkey: \"8000\" is not"));
        assert!(run((Key::Dgid, "ff02000000000000000000000000000a")).starts_with("--dgid:"));
        // A separator cannot smuggle in another key.
        assert!(run((Key::ServiceId, "1;lun=5")).starts_with("--service-id:"));
        let e = from_values(&base[..2], |k| option(k).into()).unwrap_err();
        assert_eq!(e.message, "--target-port-id is required");
        assert_eq!(e.exit_code(), 2);
    }
}
