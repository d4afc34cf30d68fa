//! The `ArgumentString` syntax: what the port passes to `HwFindAdapter` (under the
//! kernel, the registry value `Parameters\Device\DriverParameter` of the service;
//! storport's and scsiport's dump stack add `dump=1`, some loaders `ntldr=1`).
//!
//! ```text
//! dgid=fe80:0000:0000:0000:0002:c903:0001:0002;service_id=0002c90300010001;
//! target_port_id=0000000000000000:0002c90300010001;initiator_ext=1;pkey=ffff;lun=0
//! ```
//!
//! * Entries are separated by `;`; spaces and tabs around keys and values are ignored,
//!   keys are case-insensitive, and when a key appears twice the last value counts.
//! * `dgid` (the target port's GID) and `target_port_id` (the SRP target port ID,
//!   id_ext followed by the IOC GUID): 32 hex digits, with `:` allowed anywhere between
//!   them (`fe80:0000:...` as `ibstat` and `ibsrpdm` print them).
//! * `service_id`, `initiator_ext`: hexadecimal 64-bit numbers (`0x` prefix allowed);
//!   `initiator_ext` defaults to 0.
//! * `pkey`: a hexadecimal 16-bit partition key, default `ffff`.
//! * `lun`: the boot LUN, decimal (0 to 16383), default 0.
//! * Anything else (unknown keys, flags without `=` such as the port's) is ignored.
//! * Values every source must respect ([`super::check_values`]: a unicast `dgid`, a
//!   valid `pkey`) are checked after parsing; one that fails is malformed.
//!
//! A string "names a target" when it has `dgid`, `service_id` or `target_port_id`;
//! then all three are required. One that names none leaves the choice to the next
//! source ([`super::resolve`]).

use super::{BootConfig, ConfigError, DEFAULT_PKEY, Key, MAX_LUN, Source};
use crate::initiator::TargetConfig;

/// Values found so far, one per key.
#[derive(Default)]
struct Found<'a> {
    values: [Option<&'a [u8]>; Key::ALL.len()],
}

impl<'a> Found<'a> {
    fn slot(&mut self, key: Key) -> Option<&mut Option<&'a [u8]>> {
        self.values.get_mut(usize::from(key as u8).wrapping_sub(1))
    }

    fn get(&self, key: Key) -> Option<&'a [u8]> {
        self.values
            .get(usize::from(key as u8).wrapping_sub(1))
            .copied()
            .flatten()
    }

    fn names_target(&self) -> bool {
        Key::ALL
            .iter()
            .any(|&k| k.required() && self.get(k).is_some())
    }
}

/// Parses an `ArgumentString` (up to its first NUL, if any). `Ok(None)` when it names
/// no target.
pub fn parse(s: &[u8]) -> Result<Option<BootConfig>, ConfigError> {
    let s = s.split(|&b| b == 0).next().unwrap_or(&[]);
    let mut found = Found::default();
    for entry in s.split(|&b| b == b';') {
        let mut kv = entry.splitn(2, |&b| b == b'=');
        let (Some(key), Some(value)) = (kv.next(), kv.next()) else {
            continue; // empty, or a flag without a value
        };
        let key = trim(key);
        let Some(k) = Key::ALL
            .iter()
            .copied()
            .find(|k| key.eq_ignore_ascii_case(k.name().as_bytes()))
        else {
            continue;
        };
        if let Some(slot) = found.slot(k) {
            *slot = Some(trim(value));
        }
    }
    if !found.names_target() {
        return Ok(None);
    }
    let value = |key: Key| -> Result<&[u8], ConfigError> {
        found.get(key).ok_or(ConfigError::MissingKey {
            source: Source::ArgumentString,
            key,
        })
    };
    let bad = |key: Key| ConfigError::Malformed {
        source: Source::ArgumentString,
        key,
    };
    let dgid = parse_id128(value(Key::Dgid)?).ok_or(bad(Key::Dgid))?;
    let service_id = parse_hex(value(Key::ServiceId)?, 16).ok_or(bad(Key::ServiceId))?;
    let target_port_id = parse_id128(value(Key::TargetPortId)?).ok_or(bad(Key::TargetPortId))?;
    let initiator_ext = match found.get(Key::InitiatorExt) {
        Some(v) => parse_hex(v, 16).ok_or(bad(Key::InitiatorExt))?,
        None => 0,
    };
    let pkey = match found.get(Key::Pkey) {
        Some(v) => parse_hex(v, 4)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or(bad(Key::Pkey))?,
        None => DEFAULT_PKEY,
    };
    let lun = match found.get(Key::Lun) {
        Some(v) => parse_decimal(v)
            .filter(|&l| l <= u64::from(MAX_LUN))
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(bad(Key::Lun))?,
        None => 0,
    };
    let cfg = BootConfig {
        target: TargetConfig {
            dgid,
            service_id,
            target_port_id,
            initiator_ext,
            pkey,
        },
        lun,
    };
    super::check_values(&cfg).map_err(bad)?;
    Ok(Some(cfg))
}

fn trim(s: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !blank(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |e| e.saturating_add(1));
    s.get(start..end).unwrap_or(&[])
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(b.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(b.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

/// A hexadecimal number of 1 to `max_digits` digits, with an optional `0x` prefix.
fn parse_hex(s: &[u8], max_digits: usize) -> Option<u64> {
    let digits = match s {
        [b'0', b'x' | b'X', rest @ ..] => rest,
        _ => s,
    };
    if digits.is_empty() || digits.len() > max_digits {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        Some(acc.checked_shl(4)? | u64::from(hex_digit(b)?))
    })
}

/// 32 hex digits (a GID or an SRP port ID, in wire order), `:` allowed between them.
fn parse_id128(s: &[u8]) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut n = 0usize;
    for &b in s {
        if b == b':' {
            continue;
        }
        let d = hex_digit(b)?;
        let byte = out.get_mut(n / 2)?;
        *byte = if n.is_multiple_of(2) {
            d << 4
        } else {
            *byte | d
        };
        n = n.checked_add(1)?;
    }
    (n == 32).then_some(out)
}

/// A decimal number of 1 to 5 digits.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    const FULL: &[u8] =
        b" dgid = fe80:0000:0000:0000:0002:c903:0001:0002 ;SERVICE_ID=0x0002C90300010001;\
target_port_id=0000000000000000:0002c90300010001;initiator_ext=1;pkey=8001;lun=12;dump=1;ntldr";

    #[test]
    fn parses_every_key_with_colons_case_and_blanks() {
        let cfg = parse(FULL).unwrap().unwrap();
        assert_eq!(
            cfg.target.dgid,
            [
                0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xc9, 0x03, 0x00, 0x01, 0x00, 0x02
            ]
        );
        assert_eq!(cfg.target.service_id, 0x0002_C903_0001_0001);
        assert_eq!(cfg.target.target_port_id[..8], [0u8; 8]);
        assert_eq!(
            cfg.target.target_port_id[8..],
            [0x00, 0x02, 0xc9, 0x03, 0x00, 0x01, 0x00, 0x01]
        );
        assert_eq!(cfg.target.initiator_ext, 1);
        assert_eq!(cfg.target.pkey, 0x8001);
        assert_eq!(cfg.lun, 12);
    }

    #[test]
    fn defaults_for_optional_keys_and_the_last_value_counts() {
        let cfg = parse(
            b"dgid=fe800000000000000002c90300010002;service_id=1;service_id=2;\
target_port_id=00000000000000000002c90300010001",
        )
        .unwrap()
        .unwrap();
        assert_eq!(cfg.target.service_id, 2);
        assert_eq!(cfg.target.initiator_ext, 0);
        assert_eq!(cfg.target.pkey, DEFAULT_PKEY);
        assert_eq!(cfg.lun, 0);
    }

    #[test]
    fn strings_naming_no_target_leave_the_choice_to_the_next_source() {
        for s in [
            &b""[..],
            b";;;",
            b"dump=1",
            b"ntldr=1;dump=1",
            b"pkey=8001;lun=3",
            b"=;==;novalue",
            b"\0dgid=zz",
        ] {
            assert_eq!(parse(s), Ok(None), "{s:?}");
        }
    }

    #[test]
    fn the_string_ends_at_its_nul() {
        let mut s = FULL.to_vec();
        s.push(0);
        s.extend_from_slice(b";lun=999999");
        assert_eq!(parse(&s).unwrap().unwrap().lun, 12);
    }

    #[test]
    fn a_missing_required_key_is_named() {
        let e = parse(b"dgid=fe800000000000000002c90300010002;service_id=1").unwrap_err();
        assert_eq!(
            e,
            ConfigError::MissingKey {
                source: Source::ArgumentString,
                key: Key::TargetPortId
            }
        );
        let e = parse(b"target_port_id=00000000000000000002c90300010001").unwrap_err();
        assert!(matches!(e, ConfigError::MissingKey { key: Key::Dgid, .. }));
    }

    #[test]
    fn each_malformed_value_names_its_key() {
        let base = |over: &str| {
            let mut s = std::string::String::from(
                "dgid=fe800000000000000002c90300010002;service_id=1;\
target_port_id=00000000000000000002c90300010001;",
            );
            s.push_str(over);
            s
        };
        for (over, key) in [
            ("dgid=fe80", Key::Dgid),
            ("dgid=fe800000000000000002c9030001000200", Key::Dgid),
            ("dgid=ge800000000000000002c90300010002", Key::Dgid),
            ("dgid=", Key::Dgid),
            ("service_id=0x", Key::ServiceId),
            ("service_id=10000000000000000", Key::ServiceId),
            ("service_id=-1", Key::ServiceId),
            ("target_port_id=0000", Key::TargetPortId),
            ("initiator_ext=x", Key::InitiatorExt),
            ("pkey=10000", Key::Pkey),
            ("pkey=", Key::Pkey),
            ("pkey=0", Key::Pkey),
            ("pkey=8000", Key::Pkey),
            ("dgid=00000000000000000000000000000000", Key::Dgid),
            ("dgid=ff020000000000000000000000000001", Key::Dgid),
            ("lun=16384", Key::Lun),
            ("lun=-1", Key::Lun),
            ("lun=0x1", Key::Lun),
            ("lun=", Key::Lun),
        ] {
            assert_eq!(
                parse(base(over).as_bytes()),
                Err(ConfigError::Malformed {
                    source: Source::ArgumentString,
                    key
                }),
                "{over}"
            );
        }
        assert_eq!(
            parse(base("lun=16383;pkey=0x7fff").as_bytes())
                .unwrap()
                .map(|c| (c.lun, c.target.pkey)),
            Some((16383, 0x7FFF))
        );
    }

    #[test]
    fn no_input_panics() {
        // Every string of up to three bytes from an alphabet of the syntax's own
        // characters, and prefixes of a full string.
        let alphabet = b"=;:0fxdgi \0";
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let _ = parse(&[*a, *b, *c]);
                }
            }
        }
        for n in 0..FULL.len() {
            let _ = parse(&FULL[..n]);
        }
    }
}
