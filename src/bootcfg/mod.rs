//! Boot configuration: which SRP target the miniport connects to, from the sources a
//! boot driver has (DESIGN §4, "boot configuration").
//!
//! * [`handover`]: the record the normal storport instance hands the crash-dump and
//!   hibernation instance through `MINIPORT_DUMP_POINTERS.MiniportPrivateDumpData`
//!   (reference/windows-side.md §3.3), read back from `ConfigInfo->MiniportDumpData`.
//! * [`sbft`]: the table iPXE's SRP SAN boot leaves in base memory (BIOS) or among the
//!   ACPI tables (UEFI), parsed in both byte orders; [`firmware`] searches for it.
//! * [`args`]: the `ArgumentString` the port hands to `HwFindAdapter` (the registry's
//!   `DriverParameter` value under the kernel; NULL under the loader),
//!   `key=value;key=value`.
//! * [`block`]: the configuration block embedded in the image, which a tool patches
//!   into a built `.sys` file (the only source NTLDR offers besides the sBFT).
//!
//! # Precedence ([`resolve`])
//!
//! 1. In the dump instance, the normal instance's hand-over, when the port passes one:
//!    it is what the running system used. A damaged one is an error, not a reason to
//!    look elsewhere.
//! 2. An sBFT: the firmware booted from that disk, so the system disk is there, whatever
//!    the registry or the image say (a `DriverParameter` left from an installation on
//!    another target must not mount another disk as the system's).
//! 3. An `ArgumentString` that names a target.
//! 4. The embedded block, when it is configured.
//!
//! # Missing and contradictory configurations
//!
//! Every failure is a typed [`ConfigError`]; `HwFindAdapter` logs its event and returns
//! `SP_RETURN_NOT_FOUND` before touching the HCA. What counts as contradictory, and so
//! fails rather than falls through to the next source:
//!
//! * a source that names a target but cannot be read: an `ArgumentString` with a
//!   target key missing or a value unusable, a damaged embedded block, damaged dump
//!   data (or dump data for another adapter);
//! * an sBFT whose checksum holds but whose content the driver cannot use (a subtable
//!   missing or out of bounds, a LUN it cannot address, a zero or multicast GID, an
//!   invalid P_Key): the firmware booted from a disk the driver cannot reach, and any
//!   other source would present a different disk as the system disk.
//!
//! Not contradictory: bytes that carry the `sBFT` signature but fail its length or
//! checksum ([`sbft::SbftError::is_damage`]). Base memory holds such bytes for reasons
//! that have nothing to do with the boot (a stray signature in code or data, a table an
//! earlier boot left half overwritten), so they do not stop a machine that names its
//! target in the registry or the image: the search goes on to the `ArgumentString` and
//! the block. Only when neither names a target is the damaged table reported (as
//! `ConfigInvalid` naming the sBFT, which says more than `ConfigMissing`).
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
pub mod firmware;
pub mod handover;
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

/// Where a configuration came from; the number is bits 15:8 of `ConfigInvalid`'s
/// detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Source {
    /// `HwFindAdapter`'s `ArgumentString` (the registry's `DriverParameter`).
    ArgumentString = 1,
    /// The block embedded in the image.
    Embedded = 2,
    /// The sBFT the firmware left (base memory or ACPI).
    Sbft = 3,
    /// The normal instance's hand-over to the dump instance (`MiniportDumpData`).
    DumpData = 4,
}

impl Source {
    /// The source a [`handover`] record names, by its number.
    pub fn from_u8(v: u8) -> Option<Source> {
        match v {
            1 => Some(Source::ArgumentString),
            2 => Some(Source::Embedded),
            3 => Some(Source::Sbft),
            4 => Some(Source::DumpData),
            _ => None,
        }
    }
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
    /// The embedded block is damaged (the image was patched wrongly), or names an
    /// unusable value.
    Block(block::BlockError),
    /// The sBFT at physical address `at` cannot be used (see the module docs for
    /// when this stops the search).
    Sbft {
        /// Where the table is.
        at: u64,
        /// Why.
        error: sbft::SbftError,
    },
    /// The dump instance's hand-over from the normal instance is damaged, or is for
    /// another adapter.
    DumpData(handover::HandoverError),
}

impl ConfigError {
    /// The event-log entry for this error.
    pub fn event(&self) -> Event {
        match *self {
            ConfigError::Missing => Event::ConfigMissing,
            ConfigError::MissingKey { source, key } | ConfigError::Malformed { source, key } => {
                invalid(source, key as u8)
            }
            ConfigError::Block(e) => invalid(Source::Embedded, e.code()),
            ConfigError::Sbft { error, .. } => invalid(Source::Sbft, error.code()),
            ConfigError::DumpData(e) => invalid(Source::DumpData, e.code()),
        }
    }
}

fn invalid(source: Source, what: u8) -> Event {
    Event::ConfigInvalid {
        detail: u16::from(source as u8) << 8 | u16::from(what),
    }
}

/// Checks the values every source must respect, whatever its syntax: a destination
/// GID that is neither zero nor multicast (a unicast port GID, IBA 4.1.1), a P_Key
/// whose low 15 bits are not zero (0x0000 and 0x8000 are invalid, IBA 10.9.1.2), and a
/// LUN up to [`MAX_LUN`]. The error names the first key that fails.
pub fn check_values(cfg: &BootConfig) -> Result<(), Key> {
    let dgid = &cfg.target.dgid;
    if dgid.iter().all(|&b| b == 0) || dgid.first() == Some(&0xFF) {
        return Err(Key::Dgid);
    }
    if cfg.target.pkey & 0x7FFF == 0 {
        return Err(Key::Pkey);
    }
    if cfg.lun > MAX_LUN {
        return Err(Key::Lun);
    }
    Ok(())
}

/// What [`resolve`] reads besides firmware memory.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The dump instance's hand-over: the bytes `ConfigInfo->MiniportDumpData` points
    /// at ([`handover::LEN`] of them), `None` outside dump mode or when the port passed
    /// none.
    pub dump_data: Option<&'a [u8]>,
    /// Starts of the memory ranges the port assigned to this adapter (a hand-over is
    /// valid only for an adapter whose BAR0 is among them).
    pub memory_ranges: &'a [u64],
    /// The port's `ArgumentString` (`None` when the port passed NULL).
    pub argument_string: Option<&'a [u8]>,
    /// The embedded block as the image holds it.
    pub embedded: &'a [u8],
}

/// Chooses the configuration in the order of the module docs; firmware memory is read
/// through `memory` only when no hand-over decides. A source that names a target but
/// is wrong is an error, not a reason to fall back (the user meant that target), with
/// the one exception of a damaged sBFT (module docs).
pub fn resolve(
    inputs: &Inputs<'_>,
    memory: &mut impl firmware::PhysMemory,
) -> Result<(BootConfig, Source), ConfigError> {
    if let Some(data) = inputs.dump_data {
        let h = handover::Handover::parse(data).map_err(ConfigError::DumpData)?;
        if !inputs.memory_ranges.contains(&h.bar0) {
            return Err(ConfigError::DumpData(handover::HandoverError::Adapter));
        }
        return Ok((h.config, Source::DumpData));
    }
    let damaged = match firmware::find(memory) {
        firmware::Finding::Found { table, .. } => return Ok((table.config, Source::Sbft)),
        firmware::Finding::Invalid { at, error } if !error.is_damage() => {
            return Err(ConfigError::Sbft { at, error });
        }
        firmware::Finding::Invalid { at, error } => Some(ConfigError::Sbft { at, error }),
        firmware::Finding::None => None,
    };
    if let Some(s) = inputs.argument_string
        && let Some(cfg) = args::parse(s)?
    {
        return Ok((cfg, Source::ArgumentString));
    }
    match block::Block::parse(inputs.embedded) {
        Ok(block::Block { config: Some(cfg) }) => Ok((cfg, Source::Embedded)),
        Ok(block::Block { config: None }) => Err(damaged.unwrap_or(ConfigError::Missing)),
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
    use firmware::tests::{Memory, acpi_table, fixture, fixture_config, root, rsdp};
    use sbft::ByteOrder;

    const ARGS: &[u8] = b"dgid=fe80:0000:0000:0000:0002:c903:0001:0002;\
service_id=0002c90300010001;target_port_id=00000000000000000002c90300010001";
    const BAR0: u64 = 0xE000_0000;

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

    /// Resolves with no hand-over.
    fn run(
        memory: &mut Memory,
        args: Option<&[u8]>,
        embedded: &[u8],
    ) -> Result<(BootConfig, Source), ConfigError> {
        let inputs = Inputs {
            dump_data: None,
            memory_ranges: &[BAR0],
            argument_string: args,
            embedded,
        };
        resolve(&inputs, memory)
    }

    fn handover(cfg: BootConfig, bar0: u64) -> [u8; handover::LEN] {
        let mut b = [0u8; handover::LEN];
        handover::Handover {
            config: cfg,
            source: Source::ArgumentString,
            bus: 1,
            slot: 2,
            bar0,
        }
        .emit(&mut b)
        .unwrap();
        b
    }

    /// Memory with a table in base memory.
    fn with_sbft(t: &[u8]) -> Memory {
        let mut m = Memory::new();
        m.put(0x9_F000, t);
        m
    }

    #[test]
    fn an_argument_string_naming_a_target_wins_over_the_block() {
        let args = b"dgid=fe800000000000000002c90300010002;service_id=10;\
target_port_id=00000000000000000002c90300010001";
        let (cfg, src) = run(&mut Memory::new(), Some(args), &embedded(Some(sample()))).unwrap();
        assert_eq!(src, Source::ArgumentString);
        assert_eq!(cfg.target.service_id, 0x10);
    }

    #[test]
    fn flags_alone_fall_back_to_the_block() {
        for args in [&b"dump=1"[..], b"ntldr=1;", b"", b"unknown=zzz"] {
            let (cfg, src) =
                run(&mut Memory::new(), Some(args), &embedded(Some(sample()))).unwrap();
            assert_eq!((cfg, src), (sample(), Source::Embedded));
        }
        let (cfg, src) = run(&mut Memory::new(), None, &embedded(Some(sample()))).unwrap();
        assert_eq!((cfg, src), (sample(), Source::Embedded));
    }

    #[test]
    fn nothing_configured_is_missing() {
        let unconfigured = block::UNCONFIGURED;
        assert_eq!(
            run(&mut Memory::new(), None, &unconfigured),
            Err(ConfigError::Missing)
        );
        assert_eq!(
            run(&mut Memory::new(), Some(b"dump=1"), &unconfigured),
            Err(ConfigError::Missing)
        );
        assert_eq!(ConfigError::Missing.event().unique_id(), 0xFB0D_0000);
    }

    #[test]
    fn a_wrong_argument_string_is_an_error_not_a_fall_back() {
        let e = run(
            &mut Memory::new(),
            Some(b"dgid=fe80"),
            &embedded(Some(sample())),
        )
        .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Malformed {
                source: Source::ArgumentString,
                key: Key::Dgid
            }
        );
        assert_eq!(e.event().unique_id(), 0xFB0E_0101);
        let e = run(
            &mut Memory::new(),
            Some(&ARGS[..ARGS.len() - 2]),
            &embedded(None),
        )
        .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Malformed {
                source: Source::ArgumentString,
                key: Key::TargetPortId
            }
        );
        let e = run(
            &mut Memory::new(),
            Some(b"dgid=fe800000000000000002c90300010002"),
            &embedded(None),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            ConfigError::MissingKey {
                key: Key::ServiceId,
                ..
            }
        ));
        assert_eq!(e.event().unique_id(), 0xFB0E_0102);
    }

    #[test]
    fn a_damaged_block_is_reported_with_its_cause() {
        let mut b = embedded(Some(sample()));
        b[20] ^= 1;
        let e = run(&mut Memory::new(), None, &b).unwrap_err();
        assert_eq!(e, ConfigError::Block(block::BlockError::Checksum));
        assert_eq!(
            e.event().unique_id(),
            0xFB0E_0200 | u32::from(block::BlockError::Checksum.code())
        );
        // An unusable value in a well-formed block names the key.
        let mut b = embedded(Some(sample()));
        b[14..16].copy_from_slice(&0u16.to_le_bytes());
        let sum = block::crc32(&b, 92);
        b[92..].copy_from_slice(&sum.to_le_bytes());
        let e = run(&mut Memory::new(), None, &b).unwrap_err();
        assert_eq!(e, ConfigError::Block(block::BlockError::Value(Key::Pkey)));
        assert_eq!(e.event().unique_id(), 0xFB0E_0205);
    }

    #[test]
    fn a_valid_sbft_wins_over_the_argument_string_and_the_block() {
        for order in [ByteOrder::Network, ByteOrder::Reversed] {
            let mut m = with_sbft(&fixture(order, 4, 0xFFFF));
            let (cfg, src) = run(&mut m, Some(ARGS), &embedded(Some(sample()))).unwrap();
            assert_eq!((cfg, src), (fixture_config(4, 0xFFFF), Source::Sbft));
        }
    }

    #[test]
    fn an_sbft_among_the_acpi_tables_is_found() {
        let mut m = Memory::new();
        m.put(0x7FF0_2000, &fixture(ByteOrder::Reversed, 0, 0x8001));
        m.put(0x7FF0_0000, &root(b"RSDT", &[0x7FF0_1000, 0x7FF0_2000]));
        m.put(0x7FF0_1000, &acpi_table(b"APIC", &[0u8; 8]));
        m.put(0xF_0000, &rsdp(0, 0x7FF0_0000, 0));
        let (cfg, src) = run(&mut m, None, &block::UNCONFIGURED).unwrap();
        assert_eq!((cfg, src), (fixture_config(0, 0x8001), Source::Sbft));
    }

    #[test]
    fn an_unusable_sbft_stops_the_search() {
        // The firmware booted from a LUN the driver cannot address: no other source may
        // present another disk.
        let mut t = fixture(ByteOrder::Network, 0, 0xFFFF);
        t[48] = 0x80; // logical unit addressing
        t[9] = 0;
        t[9] = 0u8.wrapping_sub(t.iter().fold(0u8, |s, &x| s.wrapping_add(x)));
        let mut m = with_sbft(&t);
        let e = run(&mut m, Some(ARGS), &embedded(Some(sample()))).unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Sbft {
                at: 0x9_F000,
                error: sbft::SbftError::Lun { .. }
            }
        ));
        assert_eq!(e.event().unique_id(), 0xFB0E_0306);
        // An invalid P_Key, and a missing IB subtable.
        let mut m = with_sbft(&fixture(ByteOrder::Network, 0, 0));
        let e = run(&mut m, Some(ARGS), &embedded(Some(sample()))).unwrap_err();
        assert_eq!(e.event().unique_id(), 0xFB0E_0305);
        let mut t = fixture(ByteOrder::Network, 0, 0xFFFF);
        t[40] = 0;
        t[9] = 0;
        t[9] = 0u8.wrapping_sub(t.iter().fold(0u8, |s, &x| s.wrapping_add(x)));
        let mut m = with_sbft(&t);
        let e = run(&mut m, None, &embedded(Some(sample()))).unwrap_err();
        assert_eq!(e.event().unique_id(), 0xFB0E_0325);
    }

    #[test]
    fn a_damaged_sbft_falls_through_and_is_reported_only_when_nothing_else_names_a_target() {
        let mut t = fixture(ByteOrder::Network, 0, 0xFFFF);
        t[100] ^= 1; // checksum
        let mut m = with_sbft(&t);
        let (cfg, src) = run(&mut m, Some(ARGS), &embedded(None)).unwrap();
        assert_eq!(src, Source::ArgumentString);
        assert_eq!(cfg.target.service_id, 0x0002_C903_0001_0001);
        let (_, src) = run(&mut m, None, &embedded(Some(sample()))).unwrap();
        assert_eq!(src, Source::Embedded);
        let e = run(&mut m, Some(b"dump=1"), &embedded(None)).unwrap_err();
        assert_eq!(
            e,
            ConfigError::Sbft {
                at: 0x9_F000,
                error: sbft::SbftError::Checksum { sum: 1 }
            }
        );
        assert_eq!(e.event().unique_id(), 0xFB0E_0322);
        // A length the table cannot have.
        let mut t = fixture(ByteOrder::Network, 0, 0xFFFF);
        t[4..8].copy_from_slice(&2000u32.to_le_bytes());
        let mut m = with_sbft(&t);
        let e = run(&mut m, None, &embedded(None)).unwrap_err();
        assert_eq!(e.event().unique_id(), 0xFB0E_0321);
        // A damaged block still wins over a damaged sBFT as the error: it names a target.
        let mut b = embedded(Some(sample()));
        b[0] = b'X';
        let e = run(&mut m, None, &b).unwrap_err();
        assert_eq!(e, ConfigError::Block(block::BlockError::Magic));
    }

    #[test]
    fn the_dump_instance_takes_the_hand_over_and_reads_no_firmware_memory() {
        let mut m = with_sbft(&fixture(ByteOrder::Network, 4, 0xFFFF));
        let data = handover(sample(), BAR0);
        let inputs = Inputs {
            dump_data: Some(&data),
            memory_ranges: &[0xF000_0000, BAR0],
            argument_string: Some(b"dump=1"),
            embedded: &block::UNCONFIGURED,
        };
        assert_eq!(resolve(&inputs, &mut m), Ok((sample(), Source::DumpData)));
        assert!(m.maps.is_empty(), "no firmware memory was mapped");
    }

    #[test]
    fn bad_dump_data_is_config_invalid_not_a_fall_back() {
        let mut m = with_sbft(&fixture(ByteOrder::Network, 4, 0xFFFF));
        let good = handover(sample(), BAR0);
        let mut damaged = good;
        damaged[50] ^= 1;
        let other_adapter = handover(sample(), 0xD000_0000);
        for (data, e, id) in [
            (&damaged[..], handover::HandoverError::Checksum, 0xFB0E_0434),
            (
                &other_adapter[..],
                handover::HandoverError::Adapter,
                0xFB0E_0436,
            ),
            (&good[..40], handover::HandoverError::Truncated, 0xFB0E_0430),
            (
                &[0u8; handover::LEN][..],
                handover::HandoverError::Magic,
                0xFB0E_0431,
            ),
        ] {
            let inputs = Inputs {
                dump_data: Some(data),
                memory_ranges: &[BAR0],
                argument_string: Some(ARGS),
                embedded: &embedded(Some(sample())),
            };
            let got = resolve(&inputs, &mut m).unwrap_err();
            assert_eq!(got, ConfigError::DumpData(e));
            assert_eq!(got.event().unique_id(), id);
        }
        assert!(m.maps.is_empty());
    }

    #[test]
    fn values_every_source_must_respect() {
        let mut c = sample();
        assert_eq!(check_values(&c), Ok(()));
        c.target.pkey = 0x8000;
        assert_eq!(check_values(&c), Err(Key::Pkey));
        c.target.pkey = 0x0001;
        assert_eq!(check_values(&c), Ok(()), "a limited member of partition 1");
        c.target.dgid = [0; 16];
        assert_eq!(check_values(&c), Err(Key::Dgid));
        c.target.dgid[0] = 0xFF;
        assert_eq!(check_values(&c), Err(Key::Dgid));
        let mut c = sample();
        c.lun = MAX_LUN + 1;
        assert_eq!(check_values(&c), Err(Key::Lun));
        for (v, s) in [
            (1, Source::ArgumentString),
            (2, Source::Embedded),
            (3, Source::Sbft),
            (4, Source::DumpData),
        ] {
            assert_eq!(Source::from_u8(v), Some(s));
            assert_eq!(s as u8, v);
        }
        assert_eq!(Source::from_u8(0), None);
        assert_eq!(Source::from_u8(5), None);
    }
}
