//! Boot configuration: which SRP target the miniport connects to, from the sources a
//! boot driver has (DESIGN §4, "boot configuration").
//!
//! * [`args`]: the `ArgumentString` the port hands to `HwFindAdapter` (the registry's
//!   `DriverParameter` value under the kernel; NULL under the loader),
//!   `key=value;key=value`.
//! * [`block`]: the configuration block embedded in the image, which a tool patches
//!   into a built `.sys` file (the only source NTLDR and the crash-dump stack have).
//!
//! * [`sbft`]: the table iPXE's SRP SAN boot leaves in base memory or among the ACPI
//!   tables (parsed in both byte orders, and found by a base-memory scan).
//!
//! Precedence ([`resolve`]): an `ArgumentString` that names a target wins; otherwise the
//! embedded block, when it is configured. The sBFT is to come in front of both; the
//! images do not consult it yet (neither port maps base memory or reads ACPI tables
//! for them so far).
//!
//! # Panic contract
//!
//! Nothing here panics, on any input: every byte is read through checked accessors and
//! every malformed value is a typed [`ConfigError`] naming the key and its source.
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod args;
pub mod block;
pub mod sbft;

use crate::event::Event;
use crate::initiator::TargetConfig;

/// The default partition key: full membership of the default partition.
pub const DEFAULT_PKEY: u16 = 0xFFFF;

/// Largest `lun` accepted: the flat-space addressing limit (SAM-5 §4.7.7).
pub const MAX_LUN: u16 = 16383;

/// What the miniport connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootConfig {
    /// The SRP target: GID, Service ID, target port ID, initiator port ID extension,
    /// partition key.
    pub target: TargetConfig,
    /// The boot disk's LUN as the target numbers it. The miniport presents every LUN
    /// the target lists; this names the one the system boots from, for the loader's
    /// boot path and the comparison with the sBFT.
    pub lun: u16,
}

/// A configuration key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Key {
    /// `dgid`: the target port's GID.
    Dgid = 1,
    /// `service_id`: the CM Service ID the target listens on.
    ServiceId = 2,
    /// `target_port_id`: the SRP target port ID.
    TargetPortId = 3,
    /// `initiator_ext`: the high half of the initiator port ID.
    InitiatorExt = 4,
    /// `pkey`: the partition key.
    Pkey = 5,
    /// `lun`: the boot LUN.
    Lun = 6,
}

impl Key {
    /// Every key, in the order of their numbers.
    pub const ALL: [Key; 6] = [
        Key::Dgid,
        Key::ServiceId,
        Key::TargetPortId,
        Key::InitiatorExt,
        Key::Pkey,
        Key::Lun,
    ];

    /// The key as it is written in an `ArgumentString`.
    pub const fn name(self) -> &'static str {
        match self {
            Key::Dgid => "dgid",
            Key::ServiceId => "service_id",
            Key::TargetPortId => "target_port_id",
            Key::InitiatorExt => "initiator_ext",
            Key::Pkey => "pkey",
            Key::Lun => "lun",
        }
    }

    /// Whether the key must be given (the others have defaults).
    pub const fn required(self) -> bool {
        matches!(self, Key::Dgid | Key::ServiceId | Key::TargetPortId)
    }
}

/// Where a configuration came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Source {
    /// `HwFindAdapter`'s `ArgumentString` (the registry's `DriverParameter`).
    ArgumentString = 1,
    /// The block embedded in the image.
    Embedded = 2,
}

/// Why no usable configuration was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// No source names a target: the `ArgumentString` is absent or names none, and the
    /// embedded block is not configured.
    Missing,
    /// A required key is absent from a source that names a target.
    MissingKey {
        /// Where.
        source: Source,
        /// Which key.
        key: Key,
    },
    /// A key's value cannot be read.
    Malformed {
        /// Where.
        source: Source,
        /// Which key.
        key: Key,
    },
    /// The embedded block is damaged (the image was patched wrongly).
    Block(block::BlockError),
}

impl ConfigError {
    /// The event-log entry for this error.
    pub fn event(&self) -> Event {
        match *self {
            ConfigError::Missing => Event::ConfigMissing,
            ConfigError::MissingKey { source, key } | ConfigError::Malformed { source, key } => {
                Event::ConfigInvalid {
                    detail: u16::from(source as u8) << 8 | u16::from(key as u8),
                }
            }
            ConfigError::Block(e) => Event::ConfigInvalid {
                detail: u16::from(Source::Embedded as u8) << 8 | u16::from(e.code()),
            },
        }
    }
}

/// Chooses the configuration: the `ArgumentString` (`None` when the port passed
/// NULL) when it names a target, else the embedded block when it is configured.
/// A source that names a target but is wrong is an error, not a reason to fall back:
/// the user meant that target.
pub fn resolve(
    argument_string: Option<&[u8]>,
    embedded: &[u8],
) -> Result<(BootConfig, Source), ConfigError> {
    if let Some(s) = argument_string
        && let Some(cfg) = args::parse(s)?
    {
        return Ok((cfg, Source::ArgumentString));
    }
    match block::Block::parse(embedded) {
        Ok(block::Block { config: Some(cfg) }) => Ok((cfg, Source::Embedded)),
        Ok(block::Block { config: None }) => Err(ConfigError::Missing),
        Err(e) => Err(ConfigError::Block(e)),
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use block::Block;

    const ARGS: &[u8] = b"dgid=fe80:0000:0000:0000:0002:c903:0001:0002;\
service_id=0002c90300010001;target_port_id=00000000000000000002c90300010001";

    fn embedded(cfg: Option<BootConfig>) -> [u8; block::LEN] {
        let mut b = [0u8; block::LEN];
        Block { config: cfg }.emit(&mut b).unwrap();
        b
    }

    fn sample() -> BootConfig {
        BootConfig {
            target: TargetConfig {
                dgid: [0xAA; 16],
                service_id: 7,
                target_port_id: [0xBB; 16],
                initiator_ext: 1,
                pkey: 0x8001,
            },
            lun: 3,
        }
    }

    #[test]
    fn an_argument_string_naming_a_target_wins_over_the_block() {
        let args = b"dgid=fe800000000000000002c90300010002;service_id=10;\
target_port_id=00000000000000000002c90300010001";
        let (cfg, src) = resolve(Some(args), &embedded(Some(sample()))).unwrap();
        assert_eq!(src, Source::ArgumentString);
        assert_eq!(cfg.target.service_id, 0x10);
    }

    #[test]
    fn flags_alone_fall_back_to_the_block() {
        for args in [&b"dump=1"[..], b"ntldr=1;", b"", b"unknown=zzz"] {
            let (cfg, src) = resolve(Some(args), &embedded(Some(sample()))).unwrap();
            assert_eq!((cfg, src), (sample(), Source::Embedded));
        }
        let (cfg, src) = resolve(None, &embedded(Some(sample()))).unwrap();
        assert_eq!((cfg, src), (sample(), Source::Embedded));
    }

    #[test]
    fn nothing_configured_is_missing() {
        let unconfigured = block::UNCONFIGURED;
        assert_eq!(resolve(None, &unconfigured), Err(ConfigError::Missing));
        assert_eq!(
            resolve(Some(b"dump=1"), &unconfigured),
            Err(ConfigError::Missing)
        );
        assert_eq!(ConfigError::Missing.event().unique_id(), 0xFB0D_0000);
    }

    #[test]
    fn a_wrong_argument_string_is_an_error_not_a_fall_back() {
        let e = resolve(Some(b"dgid=fe80"), &embedded(Some(sample()))).unwrap_err();
        assert_eq!(
            e,
            ConfigError::Malformed {
                source: Source::ArgumentString,
                key: Key::Dgid
            }
        );
        assert_eq!(e.event().unique_id(), 0xFB0E_0101);
        let e = resolve(Some(&ARGS[..ARGS.len() - 2]), &embedded(None)).unwrap_err();
        assert_eq!(
            e,
            ConfigError::Malformed {
                source: Source::ArgumentString,
                key: Key::TargetPortId
            }
        );
    }

    #[test]
    fn a_damaged_block_is_reported_with_its_cause() {
        let mut b = embedded(Some(sample()));
        b[20] ^= 1;
        let e = resolve(None, &b).unwrap_err();
        assert_eq!(e, ConfigError::Block(block::BlockError::Checksum));
        assert_eq!(
            e.event().unique_id(),
            0xFB0E_0200 | u32::from(block::BlockError::Checksum.code())
        );
    }
}
