//! FAT directory entries (fatgen103 "FAT Directory Structure"), long-name entries
//! (fatgen103 "FAT Long Directory Entries"), the short-name checksum, short names from
//! long ones ("The Basis-Name Generation Algorithm", "The Numeric-Tail Generation
//! Algorithm") and case-insensitive matching ("Name Matching In Short & Long Names").
//!
//! A directory is a sequence of 32-byte entries. A long name is a run of long-name
//! entries (attribute 0x0F) in reverse order, the last one (ordinal | 0x40) first,
//! each carrying 13 UCS-2 characters and the checksum of the short entry that must
//! follow them; a run that is broken, out of order or whose checksum does not match
//! is an orphan and is ignored, as the specification asks.
//!
//! `DIR_NTRes` bits 3 and 4 (lowercase base, lowercase extension) are the Windows NT
//! extension Windows uses for an all-lowercase 8.3 name instead of a long name; they
//! are not in fatgen103 (which calls the byte reserved) but every Windows since NT 3.5
//! writes them, and mtools and Linux read them.

use super::{rd16, rd32, wr16, wr32};

/// Bytes in one directory entry.
pub const ENTRY_LEN: usize = 32;
/// `DIR_Attr` bits.
pub const ATTR_READ_ONLY: u8 = 0x01;
/// Hidden.
pub const ATTR_HIDDEN: u8 = 0x02;
/// System.
pub const ATTR_SYSTEM: u8 = 0x04;
/// The volume label (only in the root directory).
pub const ATTR_VOLUME_ID: u8 = 0x08;
/// A directory.
pub const ATTR_DIRECTORY: u8 = 0x10;
/// Changed since the last backup.
pub const ATTR_ARCHIVE: u8 = 0x20;
/// A long-name entry: read-only, hidden, system and volume-ID together.
pub const ATTR_LONG_NAME: u8 = 0x0F;
/// The bits compared with [`ATTR_LONG_NAME`] to recognise a long-name entry.
pub const ATTR_LONG_NAME_MASK: u8 = 0x3F;
/// `DIR_NTRes`: the base name is shown in lowercase.
pub const NTRES_LOWER_BASE: u8 = 0x08;
/// `DIR_NTRes`: the extension is shown in lowercase.
pub const NTRES_LOWER_EXT: u8 = 0x10;
/// `DIR_Name[0]`: the entry is free.
pub const FREE_MARK: u8 = 0xE5;
/// `DIR_Name[0]`: the entry is free and so is every entry after it.
pub const END_MARK: u8 = 0x00;
/// `DIR_Name[0]` standing for a name whose first byte really is 0xE5.
const E5_ESCAPE: u8 = 0x05;
/// `LDIR_Ord`: this is the last (first stored) entry of a long name.
pub const LAST_LONG_ENTRY: u8 = 0x40;
/// UCS-2 characters in one long-name entry.
pub const LFN_CHARS: usize = 13;
/// The longest long name, in UCS-2 characters.
pub const MAX_LONG_NAME: usize = 255;

// Offsets of a short entry's fields.
const DIR_NAME: usize = 0;
const DIR_ATTR: usize = 11;
const DIR_NT_RES: usize = 12;
const DIR_CRT_TIME_TENTH: usize = 13;
const DIR_CRT_TIME: usize = 14;
const DIR_CRT_DATE: usize = 16;
const DIR_LST_ACC_DATE: usize = 18;
const DIR_FST_CLUS_HI: usize = 20;
const DIR_WRT_TIME: usize = 22;
const DIR_WRT_DATE: usize = 24;
const DIR_FST_CLUS_LO: usize = 26;
const DIR_FILE_SIZE: usize = 28;
// Offsets of a long-name entry's fields.
const LDIR_ORD: usize = 0;
const LDIR_NAME1: usize = 1; // 5 characters
const LDIR_ATTR: usize = 11;
const LDIR_CHKSUM: usize = 13;
const LDIR_NAME2: usize = 14; // 6 characters
const LDIR_NAME3: usize = 28; // 2 characters

/// Where each of a long-name entry's 13 characters lives.
const LFN_CHAR_OFFSETS: [usize; LFN_CHARS] = [
    LDIR_NAME1,
    LDIR_NAME1 + 2,
    LDIR_NAME1 + 4,
    LDIR_NAME1 + 6,
    LDIR_NAME1 + 8,
    LDIR_NAME2,
    LDIR_NAME2 + 2,
    LDIR_NAME2 + 4,
    LDIR_NAME2 + 6,
    LDIR_NAME2 + 8,
    LDIR_NAME2 + 10,
    LDIR_NAME3,
    LDIR_NAME3 + 2,
];

/// A short (8.3) directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortEntry {
    /// `DIR_Name`: 8 base and 3 extension bytes, space padded, no dot.
    pub name: [u8; 11],
    /// `DIR_Attr`.
    pub attr: u8,
    /// `DIR_NTRes` (case bits).
    pub nt_res: u8,
    /// `DIR_CrtTimeTenth`.
    pub create_tenth: u8,
    /// `DIR_CrtTime`.
    pub create_time: u16,
    /// `DIR_CrtDate`.
    pub create_date: u16,
    /// `DIR_LstAccDate`.
    pub access_date: u16,
    /// `DIR_FstClusHI` and `DIR_FstClusLO`: first cluster (0 for an empty file).
    pub first_cluster: u32,
    /// `DIR_WrtTime`.
    pub write_time: u16,
    /// `DIR_WrtDate`.
    pub write_date: u16,
    /// `DIR_FileSize` (0 for a directory).
    pub size: u32,
}

impl ShortEntry {
    /// The fields of a 32-byte entry.
    pub fn parse(e: &[u8; ENTRY_LEN]) -> ShortEntry {
        let mut name = [0u8; 11];
        name.copy_from_slice(&e[DIR_NAME..DIR_NAME + 11]);
        ShortEntry {
            name,
            attr: e[DIR_ATTR],
            nt_res: e[DIR_NT_RES],
            create_tenth: e[DIR_CRT_TIME_TENTH],
            create_time: rd16(e, DIR_CRT_TIME),
            create_date: rd16(e, DIR_CRT_DATE),
            access_date: rd16(e, DIR_LST_ACC_DATE),
            first_cluster: (u32::from(rd16(e, DIR_FST_CLUS_HI)) << 16)
                | u32::from(rd16(e, DIR_FST_CLUS_LO)),
            write_time: rd16(e, DIR_WRT_TIME),
            write_date: rd16(e, DIR_WRT_DATE),
            size: rd32(e, DIR_FILE_SIZE),
        }
    }

    /// The 32-byte entry.
    pub fn emit(&self) -> [u8; ENTRY_LEN] {
        let mut e = [0u8; ENTRY_LEN];
        e[DIR_NAME..DIR_NAME + 11].copy_from_slice(&self.name);
        e[DIR_ATTR] = self.attr;
        e[DIR_NT_RES] = self.nt_res;
        e[DIR_CRT_TIME_TENTH] = self.create_tenth;
        wr16(&mut e, DIR_CRT_TIME, self.create_time);
        wr16(&mut e, DIR_CRT_DATE, self.create_date);
        wr16(&mut e, DIR_LST_ACC_DATE, self.access_date);
        wr16(&mut e, DIR_FST_CLUS_HI, (self.first_cluster >> 16) as u16);
        wr16(&mut e, DIR_WRT_TIME, self.write_time);
        wr16(&mut e, DIR_WRT_DATE, self.write_date);
        wr16(&mut e, DIR_FST_CLUS_LO, self.first_cluster as u16);
        wr32(&mut e, DIR_FILE_SIZE, self.size);
        e
    }

    /// The name as `BASE.EXT` (no dot without an extension), as stored (uppercase).
    pub fn short_name(&self) -> String {
        self.display(0)
    }

    /// The name as Windows shows it: lowercased where `DIR_NTRes` says so.
    pub fn display_name(&self) -> String {
        self.display(self.nt_res)
    }

    fn display(&self, nt_res: u8) -> String {
        let mut base = self.name[..8].to_vec();
        if base[0] == E5_ESCAPE {
            base[0] = FREE_MARK;
        }
        let part = |bytes: &[u8], lower: bool| -> String {
            let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            bytes[..end]
                .iter()
                .map(|&b| {
                    let c = oem_char(b);
                    if lower { c.to_ascii_lowercase() } else { c }
                })
                .collect()
        };
        let mut s = part(&base, nt_res & NTRES_LOWER_BASE != 0);
        let ext = part(&self.name[8..], nt_res & NTRES_LOWER_EXT != 0);
        if !ext.is_empty() {
            s.push('.');
            s.push_str(&ext);
        }
        s
    }
}

/// An OEM (code page 437/850) byte as a character: ASCII as is, the upper half as the
/// Latin-1 character of the same value (names here are ASCII; this only keeps foreign
/// names printable).
fn oem_char(b: u8) -> char {
    char::from(b)
}

/// The checksum of a short name that its long-name entries carry (fatgen103 "FAT Long
/// Directory Entries", `ChkSum`): rotate the sum right one bit, add the next byte.
pub fn short_name_checksum(name: &[u8; 11]) -> u8 {
    name.iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// One long-name entry's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongEntry {
    /// `LDIR_Ord`: 1-based position, | 0x40 on the last.
    pub ord: u8,
    /// The 13 UCS-2 characters.
    pub chars: [u16; LFN_CHARS],
    /// `LDIR_Chksum`.
    pub checksum: u8,
}

impl LongEntry {
    /// The fields of a 32-byte long-name entry.
    pub fn parse(e: &[u8; ENTRY_LEN]) -> LongEntry {
        let mut chars = [0u16; LFN_CHARS];
        for (c, &at) in chars.iter_mut().zip(LFN_CHAR_OFFSETS.iter()) {
            *c = rd16(e, at);
        }
        LongEntry {
            ord: e[LDIR_ORD],
            chars,
            checksum: e[LDIR_CHKSUM],
        }
    }

    /// The 32-byte entry (`LDIR_Type` and `LDIR_FstClusLO` 0).
    pub fn emit(&self) -> [u8; ENTRY_LEN] {
        let mut e = [0u8; ENTRY_LEN];
        e[LDIR_ORD] = self.ord;
        e[LDIR_ATTR] = ATTR_LONG_NAME;
        e[LDIR_CHKSUM] = self.checksum;
        for (&c, &at) in self.chars.iter().zip(LFN_CHAR_OFFSETS.iter()) {
            wr16(&mut e, at, c);
        }
        e
    }
}

/// The long-name entries of `name` for a short entry of checksum `checksum`, in the
/// order they are stored (the last piece, flagged 0x40, first). The name is
/// terminated by 0x0000 and padded with 0xFFFF when it does not fill the last entry.
/// `None` for an empty name or one over 255 UCS-2 characters.
pub fn long_entries(name: &str, checksum: u8) -> Option<Vec<[u8; ENTRY_LEN]>> {
    let mut units: Vec<u16> = name.encode_utf16().collect();
    if units.is_empty() || units.len() > MAX_LONG_NAME {
        return None;
    }
    let n = units.len().div_ceil(LFN_CHARS);
    if !units.len().is_multiple_of(LFN_CHARS) {
        units.push(0x0000);
        units.resize(n * LFN_CHARS, 0xFFFF);
    }
    let mut out = Vec::with_capacity(n);
    for ord in (1..=n).rev() {
        let mut chars = [0u16; LFN_CHARS];
        chars.copy_from_slice(&units[(ord - 1) * LFN_CHARS..ord * LFN_CHARS]);
        let flag = if ord == n { LAST_LONG_ENTRY } else { 0 };
        out.push(
            LongEntry {
                ord: ord as u8 | flag,
                chars,
                checksum,
            }
            .emit(),
        );
    }
    Some(out)
}

/// What one 32-byte entry of a directory turned out to be, after the long-name
/// entries before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `DIR_Name[0]` = 0: nothing follows in this directory.
    End,
    /// A free entry, a long-name piece, `.` or `..`: nothing to list.
    Skip,
    /// The volume label entry.
    Label(String),
    /// A file or directory, with its long name if a valid run of long-name entries
    /// preceded it.
    Entry {
        /// The short entry.
        short: ShortEntry,
        /// The long name.
        long_name: Option<String>,
    },
}

/// Reads a directory entry by entry, putting long names together (fatgen103 "FAT
/// Long Directory Entries": a run must start with the 0x40-flagged entry, count down
/// to ordinal 1 with one checksum, and be followed at once by the short entry whose
/// checksum it carries; anything else is an orphan and is dropped).
#[derive(Debug, Default)]
pub struct DirParser {
    /// The run being collected: the characters so far, the ordinal expected next
    /// (0 once complete) and the checksum.
    run: Option<(Vec<u16>, u8, u8)>,
}

impl DirParser {
    /// A parser at the start of a directory.
    pub fn new() -> DirParser {
        DirParser::default()
    }

    /// Takes the next 32-byte entry.
    pub fn feed(&mut self, e: &[u8; ENTRY_LEN]) -> Item {
        match e[DIR_NAME] {
            END_MARK => {
                self.run = None;
                return Item::End;
            }
            FREE_MARK => {
                self.run = None;
                return Item::Skip;
            }
            _ => {}
        }
        if e[DIR_ATTR] & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME {
            self.long_piece(&LongEntry::parse(e));
            return Item::Skip;
        }
        let run = self.run.take();
        let short = ShortEntry::parse(e);
        if short.attr & ATTR_VOLUME_ID != 0 {
            let label: String = short.name.iter().map(|&b| oem_char(b)).collect();
            return Item::Label(label.trim_end().to_string());
        }
        if short.name == *b".          " || short.name == *b"..         " {
            return Item::Skip;
        }
        let long_name = match run {
            Some((chars, 0, checksum)) if checksum == short_name_checksum(&short.name) => {
                decode_long(&chars)
            }
            _ => None,
        };
        Item::Entry { short, long_name }
    }

    fn long_piece(&mut self, l: &LongEntry) {
        let ord = usize::from(l.ord & !LAST_LONG_ENTRY);
        if l.ord & LAST_LONG_ENTRY != 0 {
            // A new run; a run of more than 20 entries cannot hold a legal name.
            self.run = (1..=MAX_LONG_NAME.div_ceil(LFN_CHARS))
                .contains(&ord)
                .then(|| (vec![0u16; ord * LFN_CHARS], ord as u8, l.checksum));
        }
        let Some((chars, expect, checksum)) = &mut self.run else {
            return;
        };
        if ord == 0 || ord != usize::from(*expect) || l.checksum != *checksum {
            self.run = None;
            return;
        }
        chars[(ord - 1) * LFN_CHARS..ord * LFN_CHARS].copy_from_slice(&l.chars);
        *expect -= 1;
    }
}

/// The long name in `chars`: up to the first 0x0000 (0xFFFF padding after it is
/// ignored), UTF-16 with unpaired surrogates replaced. `None` when empty.
fn decode_long(chars: &[u16]) -> Option<String> {
    let end = chars.iter().position(|&c| c == 0).unwrap_or(chars.len());
    let units: Vec<u16> = chars[..end]
        .iter()
        .copied()
        .take_while(|&c| c != 0xFFFF)
        .collect();
    if units.is_empty() {
        return None;
    }
    Some(
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

/// Whether `a` and `b` are the same name, ignoring case (fatgen103 "Name Matching In
/// Short & Long Names": names are matched case-insensitively; Unicode uppercasing is
/// used here where Windows uses its upcase table, which agrees for these names).
pub fn names_match(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.to_uppercase() == b.to_uppercase()
}

/// How a name is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameForm {
    /// As a short entry alone: `name` with the `DIR_NTRes` case bits `nt_res`.
    Short {
        /// `DIR_Name`.
        name: [u8; 11],
        /// Case bits.
        nt_res: u8,
    },
    /// With long-name entries, and a short name built from `basis`: as is if
    /// `tail` is false and the basis is free in the directory, else with the
    /// smallest free numeric tail `~n`.
    Long {
        /// The basis name (fatgen103 "The Basis-Name Generation Algorithm").
        basis: [u8; 11],
        /// The conversion lost information (or the name does not fit 8.3).
        tail: bool,
    },
}

/// A character allowed in a short name (fatgen103 "FAT Directory Structure": no
/// control characters, no `" * + , . / : ; < = > ? [ \ ] |`, no lowercase); the space
/// is allowed there but kept out of generated names.
fn short_char_ok(c: u8) -> bool {
    c > 0x20 && !b"\"*+,./:;<=>?[\\]|".contains(&c) && !c.is_ascii_lowercase() && c < 0x7F
}

/// How `name` (a long name) is stored: a short entry alone when it is an 8.3 name
/// whose base and extension are each all uppercase or all lowercase, else long-name
/// entries with a generated short name.
pub fn name_form(name: &str) -> NameForm {
    let (base, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    };
    let fits = !base.is_empty()
        && base.len() <= 8
        && ext.len() <= 3
        && name.matches('.').count() <= 1
        && !name.ends_with('.')
        && name.is_ascii()
        && name
            .bytes()
            .filter(|&b| b != b'.')
            .all(|b| short_char_ok(b.to_ascii_uppercase()));
    let uniform = |s: &str| {
        !s.bytes().any(|b| b.is_ascii_lowercase()) || !s.bytes().any(|b| b.is_ascii_uppercase())
    };
    if fits && uniform(base) && uniform(ext) {
        let mut n = [b' '; 11];
        for (d, s) in n.iter_mut().zip(base.bytes()) {
            *d = s.to_ascii_uppercase();
        }
        for (d, s) in n[8..].iter_mut().zip(ext.bytes()) {
            *d = s.to_ascii_uppercase();
        }
        let mut nt_res = 0;
        if base.bytes().any(|b| b.is_ascii_lowercase()) {
            nt_res |= NTRES_LOWER_BASE;
        }
        if ext.bytes().any(|b| b.is_ascii_lowercase()) {
            nt_res |= NTRES_LOWER_EXT;
        }
        return NameForm::Short { name: n, nt_res };
    }
    let (basis, lossy) = basis_name(name);
    NameForm::Long {
        basis,
        tail: lossy || !fits,
    }
}

/// The basis short name of a long name (fatgen103 "The Basis-Name Generation
/// Algorithm"): uppercased; characters outside the short-name set become `_`; spaces
/// and leading periods dropped; the first 8 characters before the last period and the
/// first 3 after it. Also whether anything was lost on the way.
fn basis_name(name: &str) -> ([u8; 11], bool) {
    let mut lossy = false;
    let mut conv: Vec<u8> = Vec::with_capacity(name.len());
    for c in name.chars() {
        let u = c.to_ascii_uppercase();
        if u == ' ' {
            lossy = true;
            continue;
        }
        if u == '.' {
            conv.push(b'.');
        } else if u.is_ascii() && short_char_ok(u as u8) {
            conv.push(u as u8);
        } else {
            conv.push(b'_');
            lossy = true;
        }
    }
    let lead = conv.iter().take_while(|&&b| b == b'.').count();
    if lead > 0 {
        lossy = true;
    }
    let conv = &conv[lead..];
    let (base, ext): (Vec<u8>, &[u8]) = match conv.iter().rposition(|&b| b == b'.') {
        Some(i) => (
            conv[..i].iter().copied().filter(|&b| b != b'.').collect(),
            &conv[i + 1..],
        ),
        None => (conv.to_vec(), &[]),
    };
    if base.len() > 8 || ext.len() > 3 {
        lossy = true;
    }
    let mut n = [b' '; 11];
    for (d, &s) in n.iter_mut().zip(base.iter().take(8)) {
        *d = s;
    }
    for (d, &s) in n[8..].iter_mut().zip(ext.iter().take(3)) {
        *d = s;
    }
    if n[0] == b' ' {
        // Nothing usable in the base: fatgen103 leaves this to the implementation.
        n[0] = b'_';
        lossy = true;
    }
    (n, lossy)
}

/// `basis` with the numeric tail `~n` (fatgen103 "The Numeric-Tail Generation
/// Algorithm"): the base cut so that it and the tail fit 8 characters.
pub fn with_tail(basis: &[u8; 11], n: u32) -> [u8; 11] {
    let tail = format!("~{n}");
    let base_len = basis[..8].iter().position(|&b| b == b' ').unwrap_or(8);
    let keep = base_len.min(8usize.saturating_sub(tail.len()));
    let mut out = [b' '; 11];
    out[..keep].copy_from_slice(&basis[..keep]);
    for (d, s) in out[keep..8].iter_mut().zip(tail.bytes()) {
        *d = s;
    }
    out[8..].copy_from_slice(&basis[8..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name11(s: &str) -> [u8; 11] {
        let mut n = [0u8; 11];
        n.copy_from_slice(s.as_bytes());
        n
    }

    #[test]
    fn checksum_matches_a_hand_computed_value() {
        // "FOO     BAR": computed by hand with the rotate-right-and-add rule.
        let mut sum: u8 = 0;
        for &b in b"FOO     BAR" {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 })
                .wrapping_add(sum >> 1)
                .wrapping_add(b);
        }
        assert_eq!(short_name_checksum(&name11("FOO     BAR")), sum);
    }

    #[test]
    fn name_forms() {
        assert_eq!(
            name_form("NTLDR"),
            NameForm::Short {
                name: name11("NTLDR      "),
                nt_res: 0
            }
        );
        assert_eq!(
            name_form("boot.ini"),
            NameForm::Short {
                name: name11("BOOT    INI"),
                nt_res: NTRES_LOWER_BASE | NTRES_LOWER_EXT
            }
        );
        assert_eq!(
            name_form("CLASSPNP.SYS"),
            NameForm::Short {
                name: name11("CLASSPNPSYS"),
                nt_res: 0
            }
        );
        assert_eq!(
            name_form("PartMgr.sys"),
            NameForm::Long {
                basis: name11("PARTMGR SYS"),
                tail: false
            }
        );
        assert_eq!(
            name_form("System Volume Information"),
            NameForm::Long {
                basis: name11("SYSTEMVO   "),
                tail: true
            }
        );
        assert_eq!(
            name_form("a+b.txt"),
            NameForm::Long {
                basis: name11("A_B     TXT"),
                tail: true
            }
        );
        assert!(matches!(
            name_form("x.tar.gz"),
            NameForm::Long { tail: true, .. }
        ));
        assert!(matches!(
            name_form(".profile"),
            NameForm::Long { tail: true, .. }
        ));
        assert_eq!(with_tail(&name11("SYSTEMVO   "), 1), name11("SYSTEM~1   "));
        assert_eq!(with_tail(&name11("AB      TXT"), 12), name11("AB~12   TXT"));
    }

    #[test]
    fn long_entries_round_trip_through_the_parser() {
        for name in [
            "MountPointManagerRemoteDatabase",
            "abcdefghijklm", // exactly one entry: no terminator
            "PartMgr.sys",
            "\u{00e9}t\u{00e9} \u{2603}.txt",
        ] {
            let short = ShortEntry {
                name: name11("MOUNTP~1   "),
                attr: ATTR_ARCHIVE,
                nt_res: 0,
                create_tenth: 0,
                create_time: 0,
                create_date: 0,
                access_date: 0,
                first_cluster: 0x0001_0203,
                write_time: 0,
                write_date: 0,
                size: 77,
            };
            let entries = long_entries(name, short_name_checksum(&short.name)).unwrap();
            assert_eq!(entries.len(), name.encode_utf16().count().div_ceil(13));
            assert_eq!(entries[0][0] & LAST_LONG_ENTRY, LAST_LONG_ENTRY);
            let mut p = DirParser::new();
            for e in &entries {
                assert_eq!(p.feed(e), Item::Skip);
            }
            assert_eq!(
                p.feed(&short.emit()),
                Item::Entry {
                    short,
                    long_name: Some(name.to_string())
                }
            );
        }
    }

    #[test]
    fn orphans_and_bad_checksums_are_dropped() {
        let short = ShortEntry::parse(&[b'A'; 32]);
        let mut s = short;
        s.attr = ATTR_ARCHIVE;
        let good = long_entries("A long name here", short_name_checksum(&s.name)).unwrap();
        // Wrong checksum.
        let bad = long_entries("A long name here", 0x5A).unwrap();
        let mut p = DirParser::new();
        for e in &bad {
            p.feed(e);
        }
        assert!(matches!(
            p.feed(&s.emit()),
            Item::Entry {
                long_name: None,
                ..
            }
        ));
        // Missing the first-stored (0x40) piece.
        for e in &good[1..] {
            p.feed(e);
        }
        assert!(matches!(
            p.feed(&s.emit()),
            Item::Entry {
                long_name: None,
                ..
            }
        ));
        // Deleted piece in between.
        p.feed(&good[0]);
        let mut deleted = good[1];
        deleted[0] = FREE_MARK;
        p.feed(&deleted);
        assert!(matches!(
            p.feed(&s.emit()),
            Item::Entry {
                long_name: None,
                ..
            }
        ));
        // An absurd ordinal.
        let mut huge = good[0];
        huge[0] = LAST_LONG_ENTRY | 0x3F;
        p.feed(&huge);
        assert!(matches!(
            p.feed(&s.emit()),
            Item::Entry {
                long_name: None,
                ..
            }
        ));
        // The whole run: named.
        for e in &good {
            p.feed(e);
        }
        assert!(matches!(
            p.feed(&s.emit()),
            Item::Entry {
                long_name: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn short_names_display_with_case_bits_and_e5_escape() {
        let mut e = ShortEntry::parse(&[0u8; 32]);
        e.name = name11("BOOT    INI");
        e.nt_res = NTRES_LOWER_BASE;
        assert_eq!(e.display_name(), "boot.INI");
        assert_eq!(e.short_name(), "BOOT.INI");
        e.name = name11("\u{5}ABC       ");
        assert_eq!(e.short_name(), "\u{e5}ABC");
        assert!(names_match("system32", "SYSTEM32"));
        assert!(!names_match("system3", "SYSTEM32"));
    }
}
