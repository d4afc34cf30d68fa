//! The sBFT (SRP Boot Firmware Table) that iPXE's SRP SAN boot leaves for the OS
//! (reference/ipxe-srp-boot.md §2): where to find it and what it says.
//!
//! Layout (§2.1; the ACPI-style header is little-endian):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | signature `sBFT` |
//! | 4 | 4 | length (iPXE: 136) |
//! | 8 | 1 | revision (1) |
//! | 9 | 1 | checksum: the whole table sums to 0 mod 256 |
//! | 36 / 38 / 40 | 2 each | offsets of the SCSI, SRP and IB subtables (0: absent) |
//! | SCSI + 0 | 8 | LUN, SAM format |
//! | SRP + 0 / + 16 | 16 each | initiator and target port IDs (id_ext ‖ GUID) |
//! | IB + 0 / + 16 | 16 each | source and destination GIDs |
//! | IB + 32 | 8 | Service ID |
//! | IB + 40 | 2 | P_Key, little-endian |
//!
//! iPXE writes the GIDs, port IDs, Service ID and LUN as big-endian byte strings; the
//! draft calls every scalar little-endian, and a table written that way has each of
//! those fields byte-reversed. Both are accepted ([`ByteOrder`]): the order whose
//! destination GID (else source GID) carries the link-local prefix `fe80::/64` wins,
//! and iPXE's order is assumed when neither does.
//!
//! Where it is: under BIOS, in base memory (0x00000–0x9FFFF) on a 16-byte boundary
//! ([`scan`]); under UEFI, among the ACPI tables with signature `sBFT` (the same bytes,
//! [`Sbft::parse`]). [`super::firmware`] searches both places.
//!
//! Two kinds of failure are told apart ([`SbftError::is_damage`]): bytes that carry the
//! signature but are not a table (a length out of range or a checksum that does not
//! sum to zero: a stray signature, or a table overwritten), and a table whose checksum
//! holds but which the driver cannot use (a subtable missing or out of bounds, a LUN it
//! cannot address, a value no target can have, [`super::check_values`]). The second is
//! a table the firmware wrote on purpose for the disk it booted from.

use super::{BootConfig, Key, MAX_LUN};
use crate::initiator::TargetConfig;

/// Field offsets of the header (§2.1).
mod field {
    use core::ops::Range;
    pub const SIGNATURE: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..8;
    pub const SCSI_OFFSET: Range<usize> = 36..38;
    pub const SRP_OFFSET: Range<usize> = 38..40;
    pub const IB_OFFSET: Range<usize> = 40..42;
    /// Bytes of the header.
    pub const HEADER_LEN: usize = 48;
    /// Bytes of each subtable the driver reads.
    pub const SCSI_LEN: usize = 8;
    pub const SRP_LEN: usize = 32;
    pub const IB_LEN: usize = 42;
}

/// The signature.
pub const SIGNATURE: [u8; 4] = *b"sBFT";
/// Where BIOS-era tables live: base memory below 640 KiB.
pub const BASE_MEMORY_END: usize = 0xA0000;
/// The scan step.
pub const ALIGN: usize = 16;
/// The longest table accepted (iPXE reserves 768 bytes for its tables).
pub const MAX_LEN: usize = 768;

/// How the table's 64- and 128-bit identifiers are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// Big-endian byte strings, as iPXE writes them.
    Network,
    /// Each identifier byte-reversed (the draft's "all scalars little-endian").
    Reversed,
}

/// Why a table cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbftError {
    /// No `sBFT` signature.
    Signature,
    /// The length field is shorter than the header, longer than [`MAX_LEN`] or than
    /// the bytes available.
    Length { length: u32 },
    /// The bytes do not sum to 0 mod 256.
    Checksum { sum: u8 },
    /// A subtable the driver needs is absent, or does not fit in the table.
    Subtable { which: Part, offset: u16 },
    /// The LUN uses an addressing method the driver does not take, or exceeds
    /// [`MAX_LUN`].
    Lun { raw: [u8; 8] },
    /// A value no target can have ([`super::check_values`]): the destination GID is
    /// zero or multicast, or the P_Key is invalid.
    Value { key: Key },
}

/// The table's subtables (§2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Part {
    /// The SCSI subtable: the LUN.
    Scsi = 0x23,
    /// The SRP subtable: the port IDs.
    Srp = 0x24,
    /// The IB subtable: GIDs, Service ID, P_Key.
    Ib = 0x25,
}

impl SbftError {
    /// Whether the bytes are not a table at all (wrong length, checksum not zero), as
    /// opposed to a table whose checksum holds but whose content cannot be used.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            SbftError::Signature | SbftError::Length { .. } | SbftError::Checksum { .. }
        )
    }

    /// A small number for the event log's detail (bits 7:0 of `ConfigInvalid` with
    /// source 3): the key's number ([`Key`]) for a value, else 0x20 signature, 0x21
    /// length, 0x22 checksum, 0x23/0x24/0x25 the SCSI/SRP/IB subtable.
    pub fn code(&self) -> u8 {
        match self {
            SbftError::Signature => 0x20,
            SbftError::Length { .. } => 0x21,
            SbftError::Checksum { .. } => 0x22,
            SbftError::Subtable { which, .. } => *which as u8,
            SbftError::Lun { .. } => Key::Lun as u8,
            SbftError::Value { key } => *key as u8,
        }
    }
}

/// A parsed table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sbft {
    /// The target it names, and the boot LUN.
    pub config: BootConfig,
    /// The port GID iPXE booted through (the initiator's source GID).
    pub sgid: [u8; 16],
    /// The initiator port ID iPXE logged in with (id_ext ‖ HCA GUID).
    pub initiator_port_id: [u8; 16],
    /// How the identifiers were stored.
    pub order: ByteOrder,
    /// The table's length.
    pub length: usize,
}

fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn le16(b: &[u8], f: core::ops::Range<usize>) -> u16 {
    b.get(f)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map_or(0, u16::from_le_bytes)
}

/// Whether a GID in network order carries the link-local subnet prefix.
fn link_local(gid: &[u8; 16]) -> bool {
    gid.get(..8) == Some(&[0xFE, 0x80, 0, 0, 0, 0, 0, 0][..])
}

fn reversed<const N: usize>(mut v: [u8; N]) -> [u8; N] {
    v.reverse();
    v
}

impl Sbft {
    /// Parses a table at the start of `b` (which may run on past it).
    pub fn parse(b: &[u8]) -> Result<Sbft, SbftError> {
        if b.get(field::SIGNATURE) != Some(&SIGNATURE[..]) {
            return Err(SbftError::Signature);
        }
        let length = b
            .get(field::LENGTH)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, u32::from_le_bytes);
        let table = usize::try_from(length)
            .ok()
            .filter(|&n| (field::HEADER_LEN..=MAX_LEN).contains(&n))
            .and_then(|n| b.get(..n))
            .ok_or(SbftError::Length { length })?;
        let sum = table.iter().fold(0u8, |s, &x| s.wrapping_add(x));
        if sum != 0 {
            return Err(SbftError::Checksum { sum });
        }
        let sub = |which: Part, f: core::ops::Range<usize>, len: usize| {
            let offset = le16(table, f);
            let at = usize::from(offset);
            match table.get(at..at.saturating_add(len)) {
                Some(s) if at >= field::HEADER_LEN && s.len() == len => Ok(s),
                _ => Err(SbftError::Subtable { which, offset }),
            }
        };
        let scsi = sub(Part::Scsi, field::SCSI_OFFSET, field::SCSI_LEN)?;
        let srp = sub(Part::Srp, field::SRP_OFFSET, field::SRP_LEN)?;
        let ib = sub(Part::Ib, field::IB_OFFSET, field::IB_LEN)?;
        let missing = |which| SbftError::Subtable { which, offset: 0 };
        let lun_raw: [u8; 8] = array(scsi, 0).ok_or(missing(Part::Scsi))?;
        let initiator: [u8; 16] = array(srp, 0).ok_or(missing(Part::Srp))?;
        let target: [u8; 16] = array(srp, 16).ok_or(missing(Part::Srp))?;
        let sgid: [u8; 16] = array(ib, 0).ok_or(missing(Part::Ib))?;
        let dgid: [u8; 16] = array(ib, 16).ok_or(missing(Part::Ib))?;
        let service: [u8; 8] = array(ib, 32).ok_or(missing(Part::Ib))?;
        let pkey = array::<2>(ib, 40).map_or(0, u16::from_le_bytes);

        let reversed_gids = !link_local(&dgid)
            && (link_local(&reversed(dgid)) || (link_local(&reversed(sgid)) && !link_local(&sgid)));
        let order = if reversed_gids {
            ByteOrder::Reversed
        } else {
            ByteOrder::Network
        };
        let fix16 = |v: [u8; 16]| match order {
            ByteOrder::Network => v,
            ByteOrder::Reversed => reversed(v),
        };
        let fix8 = |v: [u8; 8]| match order {
            ByteOrder::Network => v,
            ByteOrder::Reversed => reversed(v),
        };
        let initiator = fix16(initiator);
        let lun_sam = fix8(lun_raw);
        let lun = sam_lun(lun_sam).ok_or(SbftError::Lun { raw: lun_raw })?;
        let initiator_ext = array::<8>(&initiator, 0).map_or(0, u64::from_be_bytes);
        let config = BootConfig {
            target: TargetConfig {
                dgid: fix16(dgid),
                service_id: u64::from_be_bytes(fix8(service)),
                target_port_id: fix16(target),
                initiator_ext,
                pkey,
            },
            lun,
        };
        super::check_values(&config).map_err(|key| SbftError::Value { key })?;
        Ok(Sbft {
            config,
            sgid: fix16(sgid),
            initiator_port_id: initiator,
            order,
            length: table.len(),
        })
    }
}

/// The LUN of a SAM 8-byte LUN's first level (SAM-5 §4.7): peripheral device
/// addressing (method 00b, bus 0: the LUN is byte 1) or flat space (01b: 14 bits);
/// deeper levels must be zero.
fn sam_lun(l: [u8; 8]) -> Option<u16> {
    let [a, b, rest @ ..] = l;
    if rest.iter().any(|&x| x != 0) {
        return None;
    }
    let lun = match a >> 6 {
        0b00 if a == 0 => u16::from(b),
        0b01 => u16::from(a & 0x3F) << 8 | u16::from(b),
        _ => return None,
    };
    (lun <= MAX_LUN).then_some(lun)
}

/// What a scan of base memory found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A valid table at this offset.
    Found { at: usize, table: Sbft },
    /// Signatures were found, none valid: the first table that sums to zero but cannot
    /// be used, else the first damaged one ([`SbftError::is_damage`]); its offset and
    /// why.
    Invalid { at: usize, error: SbftError },
    /// No signature at all.
    None,
}

/// Scans `memory` (base memory from a 16-byte-aligned physical address, 0 for all of
/// it) on 16-byte steps for a valid sBFT, as the draft specification and sanbootconf
/// do, up to [`BASE_MEMORY_END`] bytes; the first valid table wins.
pub fn scan(memory: &[u8]) -> Scan {
    let mut unusable = None;
    let mut damaged = None;
    let memory = memory.get(..BASE_MEMORY_END).unwrap_or(memory);
    // One byte compared per step (the first of the signature), the rest only where it
    // matches: the scan reads base memory through an uncached mapping.
    let [first, ..] = SIGNATURE;
    let mut next = 0usize;
    while let Some(&byte) = memory.get(next) {
        let at = next;
        // `memory` is at most BASE_MEMORY_END long: this cannot saturate.
        next = next.saturating_add(ALIGN);
        if byte != first {
            continue;
        }
        let rest = memory.get(at..).unwrap_or(&[]);
        if !rest.starts_with(&SIGNATURE) {
            continue;
        }
        match Sbft::parse(rest) {
            Ok(table) => return Scan::Found { at, table },
            Err(error) if error.is_damage() => {
                damaged.get_or_insert((at, error));
            }
            Err(error) => {
                unusable.get_or_insert((at, error));
            }
        }
    }
    match unusable.or(damaged) {
        Some((at, error)) => Scan::Invalid { at, error },
        None => Scan::None,
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic
)]
pub(crate) mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const DGID: [u8; 16] = [
        0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x0A, 0x0B, 0x0C,
    ];
    const SGID: [u8; 16] = [
        0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x02, 0x03,
    ];
    const TARGET: [u8; 16] = [
        0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x0A, 0x0B, 0x0D,
    ];
    const INITIATOR: [u8; 16] = [
        0, 0, 0, 0, 0, 0, 0, 0x07, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x01, 0x02, 0x03,
    ];
    const SERVICE: u64 = 0x0002_C903_000A_0B0D;

    /// A 136-byte table laid out as reference §2.1 gives iPXE's, identifiers stored in
    /// `order`, checksum fixed.
    fn table(order: ByteOrder, lun: [u8; 8], pkey: u16) -> Vec<u8> {
        let put = |v: &[u8]| -> Vec<u8> {
            match order {
                ByteOrder::Network => v.to_vec(),
                ByteOrder::Reversed => v.iter().rev().copied().collect(),
            }
        };
        let mut t = vec![0u8; 136];
        t[0..4].copy_from_slice(b"sBFT");
        t[4..8].copy_from_slice(&136u32.to_le_bytes());
        t[8] = 1;
        t[10..16].copy_from_slice(b"FENSYS");
        t[16..20].copy_from_slice(b"iPXE");
        t[36..38].copy_from_slice(&48u16.to_le_bytes());
        t[38..40].copy_from_slice(&56u16.to_le_bytes());
        t[40..42].copy_from_slice(&88u16.to_le_bytes());
        t[48..56].copy_from_slice(&put(&lun));
        t[56..72].copy_from_slice(&put(&INITIATOR));
        t[72..88].copy_from_slice(&put(&TARGET));
        t[88..104].copy_from_slice(&put(&SGID));
        t[104..120].copy_from_slice(&put(&DGID));
        t[120..128].copy_from_slice(&put(&SERVICE.to_be_bytes()));
        t[128..130].copy_from_slice(&pkey.to_le_bytes());
        fix_checksum(&mut t);
        t
    }

    /// An iPXE-layout table naming the test target at peripheral-addressed `lun`, for
    /// the other modules' tests.
    pub(crate) fn fixture(order: ByteOrder, lun: u8, pkey: u16) -> Vec<u8> {
        table(order, [0, lun, 0, 0, 0, 0, 0, 0], pkey)
    }

    /// What [`fixture`] names.
    pub(crate) fn fixture_config(lun: u16, pkey: u16) -> BootConfig {
        want(lun, pkey)
    }

    fn fix_checksum(t: &mut [u8]) {
        t[9] = 0;
        let sum = t.iter().fold(0u8, |s, &x| s.wrapping_add(x));
        t[9] = 0u8.wrapping_sub(sum);
    }

    fn want(lun: u16, pkey: u16) -> BootConfig {
        BootConfig {
            target: TargetConfig {
                dgid: DGID,
                service_id: SERVICE,
                target_port_id: TARGET,
                initiator_ext: 7,
                pkey,
            },
            lun,
        }
    }

    #[test]
    fn ipxe_tables_in_both_byte_orders_give_the_same_target() {
        for order in [ByteOrder::Network, ByteOrder::Reversed] {
            let t = Sbft::parse(&table(order, [0, 3, 0, 0, 0, 0, 0, 0], 0xFFFF)).unwrap();
            assert_eq!(t.order, order);
            assert_eq!(t.config, want(3, 0xFFFF), "{order:?}");
            assert_eq!(t.sgid, SGID);
            assert_eq!(t.initiator_port_id, INITIATOR);
            assert_eq!(t.length, 136);
        }
    }

    #[test]
    fn a_target_outside_the_link_local_subnet_is_ordered_by_the_source_gid() {
        // A routed target: its GID has a global prefix; the source GID decides.
        for order in [ByteOrder::Network, ByteOrder::Reversed] {
            let mut t = table(order, [0; 8], 0xFFFF);
            let global: [u8; 16] = [
                0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 1, 0, 2, 0xC9, 3, 0, 0, 0, 9,
            ];
            let stored: Vec<u8> = match order {
                ByteOrder::Network => global.to_vec(),
                ByteOrder::Reversed => global.iter().rev().copied().collect(),
            };
            t[104..120].copy_from_slice(&stored);
            fix_checksum(&mut t);
            let parsed = Sbft::parse(&t).unwrap();
            assert_eq!(parsed.order, order);
            assert_eq!(parsed.config.target.dgid, global);
            assert_eq!(parsed.config.target.service_id, SERVICE);
        }
    }

    #[test]
    fn luns_in_flat_space_and_the_pkey_are_read() {
        let t = Sbft::parse(&table(
            ByteOrder::Network,
            [0x40 | 0x12, 0x34, 0, 0, 0, 0, 0, 0],
            0x8001,
        ))
        .unwrap();
        assert_eq!(t.config, want(0x1234, 0x8001));
        // A second level, logical unit addressing, or a LUN past 16383 is refused.
        for lun in [
            [0, 1, 0, 1, 0, 0, 0, 0],
            [0x80, 1, 0, 0, 0, 0, 0, 0],
            [0x01, 1, 0, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(
                Sbft::parse(&table(ByteOrder::Network, lun, 0xFFFF)),
                Err(SbftError::Lun { raw: lun })
            );
        }
    }

    #[test]
    fn damaged_tables_are_typed_errors() {
        let good = table(ByteOrder::Network, [0; 8], 0xFFFF);
        let mut t = good.clone();
        t[100] ^= 1;
        assert!(matches!(Sbft::parse(&t), Err(SbftError::Checksum { .. })));
        assert_eq!(
            Sbft::parse(&good[..100]),
            Err(SbftError::Length { length: 136 })
        );
        let mut t = good.clone();
        t[4..8].copy_from_slice(&20u32.to_le_bytes());
        fix_checksum(&mut t);
        assert_eq!(Sbft::parse(&t), Err(SbftError::Length { length: 20 }));
        let mut t = good.clone();
        t[40..42].copy_from_slice(&0u16.to_le_bytes()); // no IB subtable
        fix_checksum(&mut t);
        assert_eq!(
            Sbft::parse(&t),
            Err(SbftError::Subtable {
                which: Part::Ib,
                offset: 0
            })
        );
        let mut t = good.clone();
        t[38..40].copy_from_slice(&120u16.to_le_bytes()); // SRP runs past the end
        fix_checksum(&mut t);
        assert_eq!(
            Sbft::parse(&t),
            Err(SbftError::Subtable {
                which: Part::Srp,
                offset: 120
            })
        );
        assert_eq!(Sbft::parse(b"SBFT"), Err(SbftError::Signature));
        assert_eq!(Sbft::parse(&[]), Err(SbftError::Signature));
        let mut t = good.clone();
        t[36..38].copy_from_slice(&130u16.to_le_bytes()); // SCSI runs past the end
        fix_checksum(&mut t);
        assert_eq!(
            Sbft::parse(&t),
            Err(SbftError::Subtable {
                which: Part::Scsi,
                offset: 130
            })
        );
        let mut t = good.clone();
        t[38..40].copy_from_slice(&8u16.to_le_bytes()); // SRP inside the header
        fix_checksum(&mut t);
        assert!(matches!(
            Sbft::parse(&t),
            Err(SbftError::Subtable {
                which: Part::Srp,
                ..
            })
        ));
        let mut t = good.clone();
        t[4..8].copy_from_slice(&(MAX_LEN as u32 + 16).to_le_bytes());
        fix_checksum(&mut t);
        assert!(matches!(Sbft::parse(&t), Err(SbftError::Length { .. })));
    }

    #[test]
    fn tables_with_values_no_target_can_have_are_unusable_not_damaged() {
        for order in [ByteOrder::Network, ByteOrder::Reversed] {
            for pkey in [0x0000, 0x8000] {
                let e = Sbft::parse(&table(order, [0; 8], pkey)).unwrap_err();
                assert_eq!(e, SbftError::Value { key: Key::Pkey });
                assert!(!e.is_damage());
                assert_eq!(e.code(), 5);
            }
            // A multicast destination GID: iPXE never writes one.
            let mut t = table(order, [0; 8], 0xFFFF);
            let mut mc = DGID;
            mc[0] = 0xFF;
            mc[1] = 0x02;
            let stored: Vec<u8> = match order {
                ByteOrder::Network => mc.to_vec(),
                ByteOrder::Reversed => mc.iter().rev().copied().collect(),
            };
            t[104..120].copy_from_slice(&stored);
            fix_checksum(&mut t);
            assert_eq!(Sbft::parse(&t), Err(SbftError::Value { key: Key::Dgid }));
        }
        // Codes and kinds of every error.
        let good = table(ByteOrder::Network, [0; 8], 0xFFFF);
        let mut bad_sum = good.clone();
        bad_sum[9] ^= 1;
        let e = Sbft::parse(&bad_sum).unwrap_err();
        assert!(e.is_damage());
        assert_eq!(e.code(), 0x22);
        assert!(SbftError::Signature.is_damage());
        assert_eq!(SbftError::Length { length: 0 }.code(), 0x21);
        assert_eq!(SbftError::Lun { raw: [0xC0; 8] }.code(), 6);
        let sub = |which| SbftError::Subtable { which, offset: 0 };
        assert_eq!(
            [
                sub(Part::Scsi).code(),
                sub(Part::Srp).code(),
                sub(Part::Ib).code()
            ],
            [0x23, 0x24, 0x25]
        );
        assert!(!sub(Part::Ib).is_damage());
    }

    #[test]
    fn the_scan_reports_an_unusable_table_before_a_damaged_one() {
        let mut memory = vec![0u8; 0x1000];
        let mut damaged = table(ByteOrder::Network, [0; 8], 0xFFFF);
        damaged[20] ^= 1;
        memory[0x100..0x100 + 136].copy_from_slice(&damaged);
        let unusable = table(ByteOrder::Network, [0x80, 0, 0, 0, 0, 0, 0, 0], 0xFFFF);
        memory[0x400..0x400 + 136].copy_from_slice(&unusable);
        assert_eq!(
            scan(&memory),
            Scan::Invalid {
                at: 0x400,
                error: SbftError::Lun {
                    raw: [0x80, 0, 0, 0, 0, 0, 0, 0]
                }
            }
        );
    }

    #[test]
    fn the_scan_takes_the_first_valid_table_on_a_16_byte_boundary() {
        let mut memory = vec![0u8; BASE_MEMORY_END];
        let good = table(ByteOrder::Network, [0, 2, 0, 0, 0, 0, 0, 0], 0xFFFF);
        // A misaligned copy is not seen; a broken aligned one is skipped.
        memory[0x9_0008..0x9_0008 + good.len()].copy_from_slice(&good);
        let mut broken = good.clone();
        broken[9] ^= 0xFF;
        memory[0x9_1000..0x9_1000 + broken.len()].copy_from_slice(&broken);
        assert!(matches!(
            scan(&memory),
            Scan::Invalid {
                at: 0x9_1000,
                error: SbftError::Checksum { .. }
            }
        ));
        memory[0x9_2010..0x9_2010 + good.len()].copy_from_slice(&good);
        match scan(&memory) {
            Scan::Found { at, table } => {
                assert_eq!(at, 0x9_2010);
                assert_eq!(table.config.lun, 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(scan(&[0u8; 4096]), Scan::None);
        // A signature in the last bytes of base memory is a typed error, not a read past.
        let mut tail = vec![0u8; 4096];
        tail[4080..4084].copy_from_slice(b"sBFT");
        assert!(matches!(scan(&tail), Scan::Invalid { at: 4080, .. }));
    }

    #[test]
    fn no_input_panics() {
        let good = table(ByteOrder::Reversed, [0, 1, 0, 0, 0, 0, 0, 0], 0xFFFF);
        for n in 0..good.len() {
            let _ = Sbft::parse(&good[..n]);
        }
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut t = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let n = t.len();
                t[(x as usize) % n] = (x >> 8) as u8;
            }
            let _ = Sbft::parse(&t);
        }
    }
}
