//! Where the firmware leaves an sBFT, searched as a boot driver can: through windows on
//! physical memory the port maps for `HwFindAdapter` ([`PhysMemory`]).
//!
//! 1. Base memory, where iPXE's BIOS build puts the table (its INT 13 code, in a
//!    16-byte-aligned spot of the base memory it hides; reference/ipxe-srp-boot.md §2.2):
//!    physical 0x400–0x9FFFF on 16-byte steps ([`sbft::scan`]). The first KiB (the
//!    real-mode interrupt vector table) holds no table and is not mapped: a mapping that
//!    starts at physical 0 can come back as NULL (StorPortGetDeviceBase's
//!    documentation asks miniports to avoid base address 0).
//! 2. The ACPI tables, where iPXE's UEFI build installs it (`InstallAcpiTable`, signature
//!    `sBFT`): the RSDP (ACPI 6.5 §5.2.5.1: signature `RSD PTR ` on a 16-byte boundary
//!    in the first KiB of the EBDA, whose segment the BIOS data area holds at 0x40E, or
//!    in 0xE0000–0xFFFFF; checksum of the first 20 bytes, and of all of a revision-2
//!    structure), then the XSDT (revision 2 and a non-zero address, 64-bit entries)
//!    or else the RSDT (32-bit entries), each checked for its signature and checksum,
//!    then each table the root lists whose signature is `sBFT`.
//!
//! Limits: a root table of at most [`MAX_SDT_LEN`] bytes is walked; firmware that gives
//! the RSDP only through the UEFI system table (no copy in the BIOS area) hides its ACPI
//! tables from this search (the `ArgumentString` and the embedded block still apply).
//!
//! Nothing here allocates, and at most [`ENTRY_CHUNK`] table addresses are held at a time
//! (the root table is mapped again for the next ones), so the search's stack stays
//! small; the windows are read in place.

use super::sbft::{self, Sbft, SbftError};

/// Physical memory as the port maps it for a miniport.
pub trait PhysMemory {
    /// Maps `len` bytes of physical memory from `phys` (memory space), hands them to
    /// `read` and unmaps them when it returns. `None` when the range cannot be mapped.
    fn read<R>(&mut self, phys: u64, len: usize, read: impl FnOnce(&[u8]) -> R) -> Option<R>;
}

/// Base memory searched for an sBFT: from above the interrupt vector table to 640 KiB.
pub const BASE_START: u64 = 0x400;
/// End of base memory.
pub const BASE_END: u64 = sbft::BASE_MEMORY_END as u64;
/// The BIOS area searched for the RSDP.
pub const BIOS_START: u64 = 0xE_0000;
/// End of the BIOS area (1 MiB).
pub const BIOS_END: u64 = 0x10_0000;
/// Where the BIOS data area holds the EBDA's segment (a 16-bit word).
pub const EBDA_POINTER: u64 = 0x40E;
/// Bytes of the EBDA searched for the RSDP.
pub const EBDA_SEARCH: usize = 1024;
/// The RSDP's signature.
pub const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
/// The longest RSDT or XSDT walked.
pub const MAX_SDT_LEN: usize = 4096;
/// Table addresses read from the root table per mapping of it.
pub const ENTRY_CHUNK: usize = 16;

/// Bytes of an ACPI table header (ACPI 6.5 §5.2.6).
const HEADER_LEN: usize = 36;
/// Bytes of a revision-1 RSDP covered by its checksum.
const RSDP_V1_LEN: usize = 20;
/// Bytes of a revision-2 RSDP.
const RSDP_V2_LEN: usize = 36;

/// Where a table was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// In base memory (BIOS iPXE).
    BaseMemory,
    /// Listed by the RSDT.
    Rsdt,
    /// Listed by the XSDT.
    Xsdt,
}

/// What the search found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A valid table at physical address `at`.
    Found { table: Sbft, at: u64, place: Place },
    /// No valid table, but signatures: the first table whose checksum holds but whose
    /// content cannot be used, else the first damaged one ([`SbftError::is_damage`]).
    Invalid { at: u64, error: SbftError },
    /// No signature anywhere searched.
    None,
}

/// What one place gave: the first valid table, else the first unusable and the first
/// damaged one.
#[derive(Default)]
struct Seen {
    unusable: Option<(u64, SbftError)>,
    damaged: Option<(u64, SbftError)>,
}

impl Seen {
    fn note(&mut self, at: u64, error: SbftError) {
        let slot = if error.is_damage() {
            &mut self.damaged
        } else {
            &mut self.unusable
        };
        slot.get_or_insert((at, error));
    }

    fn finding(self) -> Finding {
        match self.unusable.or(self.damaged) {
            Some((at, error)) => Finding::Invalid { at, error },
            None => Finding::None,
        }
    }
}

/// Searches base memory, then the ACPI tables (module docs); the first valid table
/// wins.
pub fn find(mem: &mut impl PhysMemory) -> Finding {
    let mut seen = Seen::default();
    let base_len = usize::try_from(BASE_END.saturating_sub(BASE_START)).unwrap_or(0);
    let base = mem.read(BASE_START, base_len, |m| (sbft::scan(m), ebda_rsdp(m)));
    let mut rsdp = None;
    if let Some((scan, from_ebda)) = base {
        match scan {
            sbft::Scan::Found { at, table } => {
                return Finding::Found {
                    table,
                    at: BASE_START.saturating_add(at as u64),
                    place: Place::BaseMemory,
                };
            }
            sbft::Scan::Invalid { at, error } => {
                seen.note(BASE_START.saturating_add(at as u64), error)
            }
            sbft::Scan::None => {}
        }
        rsdp = from_ebda;
    }
    if rsdp.is_none() {
        let bios_len = usize::try_from(BIOS_END.saturating_sub(BIOS_START)).unwrap_or(0);
        rsdp = mem.read(BIOS_START, bios_len, find_rsdp).flatten();
    }
    if let Some(rsdp) = rsdp {
        let walked = rsdp
            .xsdt
            .and_then(|x| walk(mem, x, Root::Xsdt, &mut seen))
            .or_else(|| walk(mem, u64::from(rsdp.rsdt), Root::Rsdt, &mut seen));
        if let Some(found) = walked {
            return found;
        }
    }
    seen.finding()
}

/// The RSDP's pointers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rsdp {
    rsdt: u32,
    /// The XSDT's address, when the structure is revision 2 or later, its extended
    /// checksum holds and the address is not zero.
    xsdt: Option<u64>,
}

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// An RSDP at the start of `b`.
fn parse_rsdp(b: &[u8]) -> Option<Rsdp> {
    if b.get(..RSDP_SIGNATURE.len()) != Some(&RSDP_SIGNATURE[..]) {
        return None;
    }
    if sum(b.get(..RSDP_V1_LEN)?) != 0 {
        return None;
    }
    let revision = *b.get(15)?;
    let rsdt = le32(b, 16)?;
    let xsdt = (revision >= 2)
        .then(|| {
            let len = usize::try_from(le32(b, 20)?).ok()?;
            let whole = b.get(..len).filter(|_| len >= RSDP_V2_LEN)?;
            (sum(whole) == 0).then_some(())?;
            le64(b, 24).filter(|&x| x != 0)
        })
        .flatten();
    Some(Rsdp { rsdt, xsdt })
}

/// The first RSDP on a 16-byte boundary of `area` (the caller maps it 16-byte aligned).
/// One byte is compared per step, the rest only where it matches (the area is read
/// through an uncached mapping).
fn find_rsdp(area: &[u8]) -> Option<Rsdp> {
    let [first, ..] = RSDP_SIGNATURE;
    let mut next = 0usize;
    while let Some(&byte) = area.get(next) {
        let at = next;
        next = next.checked_add(sbft::ALIGN)?;
        if byte != first {
            continue;
        }
        if let Some(r) = area.get(at..).and_then(parse_rsdp) {
            return Some(r);
        }
    }
    None
}

/// The RSDP in the EBDA, from the base-memory window (which starts at [`BASE_START`]).
fn ebda_rsdp(base: &[u8]) -> Option<Rsdp> {
    let pointer = usize::try_from(EBDA_POINTER.checked_sub(BASE_START)?).ok()?;
    let segment = u16::from_le_bytes(
        base.get(pointer..pointer.checked_add(2)?)?
            .try_into()
            .ok()?,
    );
    let ebda = u64::from(segment).checked_mul(16)?;
    let from = usize::try_from(ebda.checked_sub(BASE_START)?).ok()?;
    let to = from.checked_add(EBDA_SEARCH)?.min(base.len());
    find_rsdp(base.get(from..to)?)
}

/// The root table kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    Rsdt,
    Xsdt,
}

impl Root {
    fn signature(self) -> &'static [u8; 4] {
        match self {
            Root::Rsdt => b"RSDT",
            Root::Xsdt => b"XSDT",
        }
    }

    fn entry_len(self) -> usize {
        match self {
            Root::Rsdt => 4,
            Root::Xsdt => 8,
        }
    }

    fn place(self) -> Place {
        match self {
            Root::Rsdt => Place::Rsdt,
            Root::Xsdt => Place::Xsdt,
        }
    }
}

/// Walks the root table at `addr`: `None` when it is not a valid root table (the
/// caller then tries the other), else the valid sBFT it lists, or what was seen.
fn walk(mem: &mut impl PhysMemory, addr: u64, root: Root, seen: &mut Seen) -> Option<Finding> {
    if addr == 0 {
        return None;
    }
    let len = mem
        .read(addr, HEADER_LEN, |h| {
            (h.get(..4) == Some(&root.signature()[..])).then(|| le32(h, 4))
        })
        .flatten()
        .flatten()?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| (HEADER_LEN..=MAX_SDT_LEN).contains(&n))?;
    let entries = len
        .saturating_sub(HEADER_LEN)
        .checked_div(root.entry_len())
        .unwrap_or(0);
    let mut first = 0usize;
    while first < entries {
        let mut chunk = [0u64; ENTRY_CHUNK];
        let valid = mem.read(addr, len, |t| {
            if sum(t) != 0 {
                return false;
            }
            for (i, slot) in chunk.iter_mut().enumerate() {
                let n = first.saturating_add(i);
                let at = n
                    .checked_mul(root.entry_len())
                    .and_then(|o| o.checked_add(HEADER_LEN));
                *slot = match (n < entries, at, root) {
                    (true, Some(at), Root::Rsdt) => le32(t, at).map_or(0, u64::from),
                    (true, Some(at), Root::Xsdt) => le64(t, at).unwrap_or(0),
                    _ => 0,
                };
            }
            true
        })?;
        if !valid {
            return None;
        }
        for &table in chunk.iter().filter(|&&a| a != 0) {
            if let Some(found) = table_at(mem, table, root.place(), seen) {
                return Some(found);
            }
        }
        first = first.saturating_add(ENTRY_CHUNK);
    }
    Some(seen_so_far(seen))
}

/// What `seen` holds so far, without giving it up (the caller may still walk the other
/// root table when this one was not valid; a walked one ends the search).
fn seen_so_far(seen: &Seen) -> Finding {
    Seen {
        unusable: seen.unusable,
        damaged: seen.damaged,
    }
    .finding()
}

/// Reads the table at `at` when its signature is `sBFT`: the valid table, or notes why
/// it is not.
fn table_at(mem: &mut impl PhysMemory, at: u64, place: Place, seen: &mut Seen) -> Option<Finding> {
    let length = mem
        .read(at, 8, |h| {
            (h.get(..4) == Some(&sbft::SIGNATURE[..])).then(|| le32(h, 4))
        })
        .flatten()
        .flatten()?;
    // Map what the length says, within what the parser accepts: a longer or shorter
    // claim is reported by the parser from the bytes it sees.
    let map = usize::try_from(length)
        .unwrap_or(usize::MAX)
        .clamp(8, sbft::MAX_LEN);
    match mem.read(at, map, Sbft::parse) {
        Some(Ok(table)) => Some(Finding::Found { table, at, place }),
        Some(Err(error)) => {
            seen.note(at, error);
            None
        }
        None => None,
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
pub(crate) mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Physical memory for the tests: the first MiB and a few high blocks; every
    /// mapping asked is recorded, and a range outside what exists cannot be mapped.
    pub(crate) struct Memory {
        pub low: Vec<u8>,
        pub high: Vec<(u64, Vec<u8>)>,
        pub maps: Vec<(u64, usize)>,
    }

    impl Memory {
        pub(crate) fn new() -> Memory {
            Memory {
                low: vec![0; 0x10_0000],
                high: Vec::new(),
                maps: Vec::new(),
            }
        }

        fn bytes(&self, phys: u64, len: usize) -> Option<&[u8]> {
            let end = phys.checked_add(len as u64)?;
            if end <= self.low.len() as u64 {
                return self.low.get(phys as usize..end as usize);
            }
            self.high.iter().find_map(|(base, b)| {
                let off = phys.checked_sub(*base)? as usize;
                b.get(off..off.checked_add(len)?)
            })
        }

        pub(crate) fn put(&mut self, phys: u64, data: &[u8]) {
            if phys as usize + data.len() <= self.low.len() {
                self.low[phys as usize..phys as usize + data.len()].copy_from_slice(data);
            } else {
                self.high.push((phys, data.to_vec()));
            }
        }
    }

    impl PhysMemory for Memory {
        fn read<R>(&mut self, phys: u64, len: usize, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
            self.maps.push((phys, len));
            let b = self.bytes(phys, len)?;
            Some(read(b))
        }
    }

    fn checksum(t: &mut [u8], at: usize) {
        t[at] = 0;
        t[at] = 0u8.wrapping_sub(sum(t));
    }

    /// An ACPI table with `signature`, `body` after the header, checksum fixed.
    pub(crate) fn acpi_table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; HEADER_LEN];
        t[..4].copy_from_slice(signature);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t[8] = 1;
        t[10..16].copy_from_slice(b"FABTST");
        checksum(&mut t, 9);
        t
    }

    /// An RSDP of `revision` naming `rsdt` and (revision 2) `xsdt`.
    pub(crate) fn rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut r = vec![0u8; RSDP_V2_LEN];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[9..15].copy_from_slice(b"FABTST");
        r[15] = revision;
        r[16..20].copy_from_slice(&rsdt.to_le_bytes());
        r[20..24].copy_from_slice(&(RSDP_V2_LEN as u32).to_le_bytes());
        r[24..32].copy_from_slice(&xsdt.to_le_bytes());
        checksum(&mut r[..RSDP_V1_LEN], 8);
        checksum(&mut r, 32);
        if revision < 2 {
            r.truncate(RSDP_V1_LEN);
        }
        r
    }

    pub(crate) fn root(signature: &[u8; 4], entries: &[u64]) -> Vec<u8> {
        let body: Vec<u8> = entries
            .iter()
            .flat_map(|&e| {
                if signature == b"RSDT" {
                    (e as u32).to_le_bytes().to_vec()
                } else {
                    e.to_le_bytes().to_vec()
                }
            })
            .collect();
        acpi_table(signature, &body)
    }

    use super::super::sbft::ByteOrder;
    pub(crate) use super::super::sbft::tests::{fixture, fixture_config};

    const FACP: u64 = 0x7FF0_1000;
    const SBFT: u64 = 0x7FF0_2000;
    const RSDT: u64 = 0x7FF0_0000;
    const XSDT: u64 = 0x7FF0_0800;

    /// A machine whose ACPI tables list an sBFT (through the RSDT, and the XSDT when
    /// `xsdt`), with the RSDP in the BIOS area or the EBDA.
    fn acpi_machine(table: &[u8], xsdt: bool, in_ebda: bool) -> Memory {
        let mut m = Memory::new();
        m.put(FACP, &acpi_table(b"FACP", &[0u8; 80]));
        m.put(SBFT, table);
        m.put(RSDT, &root(b"RSDT", &[FACP, SBFT]));
        m.put(XSDT, &root(b"XSDT", &[FACP, SBFT]));
        let r = if xsdt {
            rsdp(2, RSDT as u32, XSDT)
        } else {
            rsdp(0, RSDT as u32, 0)
        };
        if in_ebda {
            m.put(EBDA_POINTER, &0x9FC0u16.to_le_bytes());
            m.put(0x9FC00 + 0x40, &r);
        } else {
            m.put(0xF_5A30, &r);
        }
        m
    }

    #[test]
    fn a_table_in_base_memory_is_found_without_touching_acpi() {
        let mut m = Memory::new();
        let t = fixture(ByteOrder::Network, 2, 0xFFFF);
        m.put(0x9_E3A0, &t);
        match find(&mut m) {
            Finding::Found { table, at, place } => {
                assert_eq!((at, place), (0x9_E3A0, Place::BaseMemory));
                assert_eq!(table.config, fixture_config(2, 0xFFFF));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            m.maps,
            [(BASE_START, 0x9_FC00)],
            "one window, base memory only"
        );
    }

    #[test]
    fn acpi_tables_are_found_through_the_xsdt_or_the_rsdt_in_both_byte_orders() {
        for order in [ByteOrder::Network, ByteOrder::Reversed] {
            for (xsdt, in_ebda) in [(true, false), (false, false), (true, true), (false, true)] {
                let t = fixture(order, 0, 0xFFFF);
                let mut m = acpi_machine(&t, xsdt, in_ebda);
                match find(&mut m) {
                    Finding::Found { table, at, place } => {
                        assert_eq!(at, SBFT);
                        assert_eq!(place, if xsdt { Place::Xsdt } else { Place::Rsdt });
                        assert_eq!(table.order, order);
                        assert_eq!(table.config, fixture_config(0, 0xFFFF));
                    }
                    other => panic!("{order:?} xsdt {xsdt} ebda {in_ebda}: {other:?}"),
                }
                // The BIOS area is searched only when the EBDA has no RSDP.
                let bios = m.maps.iter().any(|&(p, _)| p == BIOS_START);
                assert_eq!(bios, !in_ebda);
            }
        }
    }

    #[test]
    fn damaged_roots_and_rsdps_are_not_followed() {
        let t = fixture(ByteOrder::Network, 0, 0xFFFF);
        // An RSDP whose checksum fails: no root table is read.
        let mut m = acpi_machine(&t, true, false);
        m.low[0xF_5A30 + 8] ^= 1;
        assert_eq!(find(&mut m), Finding::None);
        assert!(m.maps.iter().all(|&(p, _)| p < BIOS_END));
        // An XSDT whose checksum fails: the RSDT is walked instead.
        let mut m = acpi_machine(&t, true, false);
        let x = m.high.iter_mut().find(|(b, _)| *b == XSDT).unwrap();
        x.1[40] ^= 1;
        assert!(matches!(
            find(&mut m),
            Finding::Found {
                place: Place::Rsdt,
                ..
            }
        ));
        // A revision-2 RSDP whose extended checksum fails: RSDT only.
        let mut m = acpi_machine(&t, true, false);
        m.low[0xF_5A30 + 33] ^= 1;
        assert!(matches!(
            find(&mut m),
            Finding::Found {
                place: Place::Rsdt,
                ..
            }
        ));
        assert!(m.maps.iter().all(|&(p, _)| p != XSDT));
        // A root table longer than the search takes is not walked.
        let mut m = acpi_machine(&t, false, false);
        let r = m.high.iter_mut().find(|(b, _)| *b == RSDT).unwrap();
        r.1[4..8].copy_from_slice(&(MAX_SDT_LEN as u32 + 4).to_le_bytes());
        assert_eq!(find(&mut m), Finding::None);
        // A table the root lists but that cannot be mapped is skipped.
        let mut m = acpi_machine(&t, false, false);
        m.high.retain(|(b, _)| *b != RSDT);
        m.put(RSDT, &root(b"RSDT", &[0x1234_5000, SBFT]));
        assert!(matches!(find(&mut m), Finding::Found { .. }));
        assert!(
            m.maps.contains(&(0x1234_5000, 8)),
            "the unmapped entry was tried"
        );
    }

    #[test]
    fn many_entries_are_walked_a_chunk_at_a_time() {
        let t = fixture(ByteOrder::Reversed, 1, 0x8001);
        let mut m = Memory::new();
        let others: Vec<u64> = (0..40).map(|i| 0x7000_0000 + i * 0x100).collect();
        for &o in &others {
            m.put(o, &acpi_table(b"SSDT", &[0u8; 16]));
        }
        let mut list = others.clone();
        list.push(SBFT);
        m.put(SBFT, &t);
        m.put(XSDT, &root(b"XSDT", &list));
        m.put(0xE_0010, &rsdp(2, 0, XSDT));
        match find(&mut m) {
            Finding::Found { table, place, .. } => {
                assert_eq!(place, Place::Xsdt);
                assert_eq!(table.config, fixture_config(1, 0x8001));
            }
            other => panic!("{other:?}"),
        }
        // The root was mapped once per chunk of entries (41 entries: three chunks).
        let roots = m.maps.iter().filter(|&&(p, l)| p == XSDT && l > 36).count();
        assert_eq!(roots, 3);
    }

    #[test]
    fn an_unusable_table_outranks_a_damaged_one_and_a_valid_one_outranks_both() {
        let good = fixture(ByteOrder::Network, 0, 0xFFFF);
        let mut damaged = good.clone();
        damaged[100] ^= 1; // checksum
        let unusable = fixture(ByteOrder::Network, 0, 0x0000); // invalid P_Key
        let mut m = Memory::new();
        m.put(0x1_0000, &damaged);
        m.put(0x2_0000, &unusable);
        assert_eq!(
            find(&mut m),
            Finding::Invalid {
                at: 0x2_0000,
                error: SbftError::Value {
                    key: super::super::Key::Pkey
                }
            }
        );
        let mut m = Memory::new();
        m.put(0x1_0000, &damaged);
        assert!(matches!(
            find(&mut m),
            Finding::Invalid {
                at: 0x1_0000,
                error: SbftError::Checksum { .. }
            }
        ));
        // A damaged table in base memory and a valid one among the ACPI tables.
        let mut m = acpi_machine(&good, true, false);
        m.put(0x1_0000, &damaged);
        assert!(matches!(find(&mut m), Finding::Found { at: SBFT, .. }));
        // An unusable ACPI table is reported with its address.
        let mut m = acpi_machine(&unusable, false, false);
        assert!(matches!(
            find(&mut m),
            Finding::Invalid {
                at: SBFT,
                error: SbftError::Value { .. }
            }
        ));
    }

    #[test]
    fn nothing_mapped_nothing_found() {
        struct Refuses(usize);
        impl PhysMemory for Refuses {
            fn read<R>(&mut self, _: u64, _: usize, _: impl FnOnce(&[u8]) -> R) -> Option<R> {
                self.0 += 1;
                None
            }
        }
        let mut r = Refuses(0);
        assert_eq!(find(&mut r), Finding::None);
        assert_eq!(r.0, 2, "base memory and the BIOS area were asked for");
        assert_eq!(find(&mut Memory::new()), Finding::None);
    }

    #[test]
    fn no_memory_content_panics() {
        // Random bytes around real structures: an RSDP whose root lists random
        // addresses, tables with random lengths.
        let mut x = 0x2545_F491u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..200 {
            let mut m = acpi_machine(&fixture(ByteOrder::Network, 0, 0xFFFF), true, false);
            for _ in 0..8 {
                let at = 0xE_0000 + (next() as usize % 0x2_0000);
                m.low[at] = next() as u8;
            }
            for (_, b) in m.high.iter_mut() {
                let n = b.len();
                b[next() as usize % n] = next() as u8;
            }
            m.low[0x9_0000..0x9_0004].copy_from_slice(b"sBFT");
            m.low[0x9_0004..0x9_0008].copy_from_slice(&next().to_le_bytes());
            let _ = find(&mut m);
        }
    }
}
