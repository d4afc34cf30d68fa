//! The emulated machine's firmware memory: the first MiB of physical memory (base
//! memory below 640 KiB with the BIOS data area and the EBDA, then the BIOS area), and
//! the tables a SAN-booting firmware leaves in it for the OS.
//!
//! Drivers read it only through `*PortGetDeviceBase` in `HwFindAdapter`, read-only
//! ([`super::port`]). What a boot puts there:
//!
//! - an sBFT in base memory, 16-byte aligned, as iPXE's BIOS build does (its INT 13 code
//!   copies each table into a 16-byte-aligned buffer of the base memory it hides;
//!   reference/ipxe-srp-boot.md §2.2), not linked from any ACPI table;
//! - or an sBFT among the ACPI tables, as iPXE's UEFI build installs it
//!   (`InstallAcpiTable`): an RSDP in the BIOS area (revision 0 naming an RSDT, or
//!   revision 2 naming an XSDT and the RSDT) whose root lists a FACP and the sBFT. Real
//!   ACPI tables usually lie at the top of RAM; here they lie in the BIOS area, the part
//!   of physical memory the emulated port maps for a miniport.
//!
//! The sBFT is laid out as reference/ipxe-srp-boot.md §2.1 gives iPXE's (136 bytes,
//! SCSI, SRP and IB subtables at 48, 56 and 88), written here from that table; the
//! identifiers are stored as iPXE stores them (big-endian byte strings) or byte-reversed
//! as the draft specification's "all scalars little-endian" reads.

use fabboot::bootcfg::sbft::ByteOrder;

/// Bytes of firmware memory: the first MiB.
pub const FIRMWARE_LEN: usize = 1 << 20;
/// End of base memory (640 KiB).
pub const BASE_END: usize = 0xA_0000;
/// The EBDA (the last KiB of base memory), as the BIOS data area names it.
pub const EBDA: usize = 0x9_FC00;
/// Where an sBFT goes in base memory: below the EBDA, 16-byte aligned.
pub const SBFT_BASE_AT: usize = 0x9_A7C0;
/// Where the RSDP goes in the BIOS area (16-byte aligned).
pub const RSDP_AT: usize = 0xF_6B40;
/// Where the root tables, the FACP and the ACPI sBFT go.
pub const RSDT_AT: usize = 0xE_2000;
pub const XSDT_AT: usize = 0xE_2100;
pub const FACP_AT: usize = 0xE_2200;
pub const SBFT_ACPI_AT: usize = 0xE_2400;

/// Where a boot leaves its sBFT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In base memory (iPXE's BIOS build).
    BaseMemory,
    /// Among the ACPI tables, listed by the RSDT of a revision-0 RSDP.
    Rsdt,
    /// Among the ACPI tables, listed by the XSDT (and the RSDT) of a revision-2 RSDP.
    Xsdt,
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Placement, String> {
        match s {
            "base" => Ok(Placement::BaseMemory),
            "rsdt" => Ok(Placement::Rsdt),
            "acpi" | "xsdt" => Ok(Placement::Xsdt),
            _ => Err(format!("unknown sBFT placement `{s}` (base, rsdt or xsdt)")),
        }
    }
}

/// What an sBFT says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SbftContent {
    pub lun: u16,
    /// id_ext ‖ HCA GUID.
    pub initiator_port_id: [u8; 16],
    /// id_ext ‖ IOC GUID.
    pub target_port_id: [u8; 16],
    pub sgid: [u8; 16],
    pub dgid: [u8; 16],
    pub service_id: u64,
    pub pkey: u16,
}

/// Firmware memory as a BIOS leaves it: zero but for the BIOS data area's base memory
/// size (639 KiB at 0x413) and EBDA segment (at 0x40E).
pub fn fresh() -> Vec<u8> {
    let mut m = vec![0u8; FIRMWARE_LEN];
    m[0x40E..0x410].copy_from_slice(&((EBDA >> 4) as u16).to_le_bytes());
    m[0x413..0x415].copy_from_slice(&((EBDA >> 10) as u16).to_le_bytes());
    m
}

fn checksum(t: &mut [u8], at: usize) {
    t[at] = 0;
    let sum = t.iter().fold(0u8, |s, &x| s.wrapping_add(x));
    t[at] = 0u8.wrapping_sub(sum);
}

/// The 8-byte SAM LUN of a LUN: peripheral device addressing below 256, flat space
/// above (SAM-5 §4.7).
fn sam_lun(lun: u16) -> [u8; 8] {
    let [hi, lo] = lun.to_be_bytes();
    if lun < 256 {
        [0, lo, 0, 0, 0, 0, 0, 0]
    } else {
        [0x40 | (hi & 0x3F), lo, 0, 0, 0, 0, 0, 0]
    }
}

/// A 136-byte sBFT naming `c`, identifiers stored in `order`, checksum fixed.
pub fn sbft_table(c: &SbftContent, order: ByteOrder) -> Vec<u8> {
    let stored = |v: &[u8]| -> Vec<u8> {
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
    t[48..56].copy_from_slice(&stored(&sam_lun(c.lun)));
    t[56..72].copy_from_slice(&stored(&c.initiator_port_id));
    t[72..88].copy_from_slice(&stored(&c.target_port_id));
    t[88..104].copy_from_slice(&stored(&c.sgid));
    t[104..120].copy_from_slice(&stored(&c.dgid));
    t[120..128].copy_from_slice(&stored(&c.service_id.to_be_bytes()));
    t[128..130].copy_from_slice(&c.pkey.to_le_bytes());
    checksum(&mut t, 9);
    t
}

/// Fixes the checksum of the sBFT at `at` after a test changed its bytes.
pub fn fix_sbft_checksum(mem: &mut [u8], at: usize) {
    let len = u32::from_le_bytes([mem[at + 4], mem[at + 5], mem[at + 6], mem[at + 7]]) as usize;
    let len = len.clamp(10, 768).min(mem.len() - at);
    checksum(&mut mem[at..at + len], 9);
}

/// An ACPI table (ACPI 6.5 §5.2.6): a 36-byte header with `signature`, then `body`.
fn acpi_table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 36];
    t[..4].copy_from_slice(signature);
    t.extend_from_slice(body);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[8] = 1;
    t[10..16].copy_from_slice(b"FABSIM");
    t[16..24].copy_from_slice(b"EMULATED");
    checksum(&mut t, 9);
    t
}

/// An RSDP (ACPI 6.5 §5.2.5.3): revision 0 (20 bytes) or 2 (36 bytes, with the XSDT).
fn rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = vec![0u8; 36];
    r[..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(b"FABSIM");
    r[15] = revision;
    r[16..20].copy_from_slice(&rsdt.to_le_bytes());
    r[20..24].copy_from_slice(&36u32.to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.to_le_bytes());
    checksum(&mut r[..20], 8);
    checksum(&mut r, 32);
    if revision < 2 {
        r.truncate(20);
    }
    r
}

/// Puts `table` (an sBFT) where `placement` says; returns its physical address.
pub fn place(mem: &mut [u8], table: &[u8], placement: Placement) -> usize {
    let put = |mem: &mut [u8], at: usize, b: &[u8]| mem[at..at + b.len()].copy_from_slice(b);
    match placement {
        Placement::BaseMemory => {
            put(mem, SBFT_BASE_AT, table);
            SBFT_BASE_AT
        }
        Placement::Rsdt | Placement::Xsdt => {
            put(mem, FACP_AT, &acpi_table(b"FACP", &[0u8; 208]));
            put(mem, SBFT_ACPI_AT, table);
            let entries = [FACP_AT as u64, SBFT_ACPI_AT as u64];
            let rsdt_body: Vec<u8> = entries
                .iter()
                .flat_map(|&e| (e as u32).to_le_bytes())
                .collect();
            put(mem, RSDT_AT, &acpi_table(b"RSDT", &rsdt_body));
            if placement == Placement::Xsdt {
                let xsdt_body: Vec<u8> = entries.iter().flat_map(|&e| e.to_le_bytes()).collect();
                put(mem, XSDT_AT, &acpi_table(b"XSDT", &xsdt_body));
                put(mem, RSDP_AT, &rsdp(2, RSDT_AT as u32, XSDT_AT as u64));
            } else {
                put(mem, RSDP_AT, &rsdp(0, RSDT_AT as u32, 0));
            }
            SBFT_ACPI_AT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabboot::bootcfg::sbft::Sbft;

    fn content() -> SbftContent {
        SbftContent {
            lun: 300,
            initiator_port_id: [1; 16],
            target_port_id: [2; 16],
            sgid: *b"\xfe\x80\0\0\0\0\0\0\x00\x02\xc9\x03\x00\x00\x00\x01",
            dgid: *b"\xfe\x80\0\0\0\0\0\0\x00\x02\xc9\x03\x00\x00\x00\x02",
            service_id: 0x0002_C903_00AB_CD01,
            pkey: 0xFFFF,
        }
    }

    #[test]
    fn the_driver_reads_the_tables_built_here_in_both_orders() {
        for order in [ByteOrder::Network, ByteOrder::Reversed] {
            let t = Sbft::parse(&sbft_table(&content(), order)).expect("parses");
            assert_eq!(t.order, order);
            assert_eq!(t.config.lun, 300);
            assert_eq!(t.config.target.dgid, content().dgid);
            assert_eq!(t.config.target.service_id, content().service_id);
            assert_eq!(t.sgid, content().sgid);
        }
    }

    #[test]
    fn acpi_placements_have_valid_checksums() {
        for p in [Placement::Rsdt, Placement::Xsdt] {
            let mut m = fresh();
            let at = place(&mut m, &sbft_table(&content(), ByteOrder::Network), p);
            assert_eq!(at, SBFT_ACPI_AT);
            let sum = |b: &[u8]| b.iter().fold(0u8, |s, &x| s.wrapping_add(x));
            assert_eq!(sum(&m[RSDP_AT..RSDP_AT + 20]), 0);
            if p == Placement::Xsdt {
                assert_eq!(sum(&m[RSDP_AT..RSDP_AT + 36]), 0);
                assert_eq!(sum(&m[XSDT_AT..XSDT_AT + 52]), 0);
            }
            assert_eq!(sum(&m[RSDT_AT..RSDT_AT + 44]), 0);
            assert_eq!(sum(&m[FACP_AT..FACP_AT + 244]), 0);
        }
        assert_eq!(&fresh()[0x40E..0x410], &[0xC0, 0x9F]);
    }
}
