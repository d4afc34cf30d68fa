//! MODE SENSE parameter data (SPC-4, "Mode parameters": "Mode parameter list format",
//! "Mode parameter header formats"; SBC-3, "Mode parameters": "Mode parameter block
//! descriptors", "Caching mode page"; SPC-4, "Control mode page").
//!
//! Nothing is changeable and nothing can be saved: changeable values are all zero,
//! default values are the current ones, and saved values are refused by the parser.
//! Writes reach stable storage before they complete, so the caching page reports the
//! write cache disabled (WCE 0).

use super::cdb::PageControl;
use super::sense::Sense;

/// Caching mode page code.
pub const PAGE_CACHING: u8 = 0x08;
/// Control mode page code.
pub const PAGE_CONTROL: u8 = 0x0A;
/// "Return all pages".
pub const PAGE_ALL: u8 = 0x3F;

/// DEVICE-SPECIFIC PARAMETER bits for direct access devices (SBC-3, "Mode parameter
/// header" device-specific parameter): WP (bit 7) and DPOFUA (bit 4; we accept DPO
/// and FUA, every write being synced anyway).
const WP: u8 = 0x80;
const DPOFUA: u8 = 0x10;

/// What a MODE SENSE asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeRequest {
    /// MODE SENSE (10) rather than (6).
    pub ten: bool,
    /// DBD.
    pub dbd: bool,
    /// LLBAA.
    pub llbaa: bool,
    /// PC.
    pub pc: PageControl,
    /// PAGE CODE.
    pub page: u8,
    /// SUBPAGE CODE.
    pub subpage: u8,
}

/// The medium a MODE SENSE describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Medium {
    /// Number of logical blocks.
    pub blocks: u64,
    /// Logical block length in bytes.
    pub block_len: u32,
    /// Write protected.
    pub write_protected: bool,
}

/// Caching mode page (20 bytes, PAGE LENGTH 12h). Byte 2 holds WCE (bit 2) and RCD
/// (bit 0): both 0, as is every other parameter. The same bytes serve as current and
/// default values and as the changeable mask (nothing is changeable).
fn caching() -> [u8; 20] {
    let mut p = [0u8; 20];
    p[0] = PAGE_CACHING;
    p[1] = 0x12;
    p
}

/// Control mode page (12 bytes, PAGE LENGTH 0Ah): TST 000b, D_SENSE 0 (fixed format
/// sense data), QUEUE ALGORITHM MODIFIER 0, everything else 0; as for [`caching`], the
/// same bytes for every page control value.
fn control() -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0] = PAGE_CONTROL;
    p[1] = 0x0A;
    p
}

/// The mode pages `page`/`subpage` ask for, or INVALID FIELD IN CDB on the page code
/// (byte 2) or the subpage code (byte 3).
fn pages(page: u8, subpage: u8) -> Result<Vec<u8>, Sense> {
    // We have no subpages: subpage 00h, or FFh ("all subpages"), only.
    if subpage != 0x00 && subpage != 0xFF {
        return Err(Sense::invalid_field(3, None));
    }
    let mut d = Vec::new();
    match page {
        PAGE_CACHING => d.extend(caching()),
        PAGE_CONTROL => d.extend(control()),
        PAGE_ALL => {
            d.extend(caching());
            d.extend(control());
        }
        _ => return Err(Sense::invalid_field(2, Some(5))),
    }
    Ok(d)
}

/// Block descriptor: short LBA (8 bytes: NUMBER OF LOGICAL BLOCKS, FFFFFFFFh when it
/// does not fit; LOGICAL BLOCK LENGTH in bytes 5–7) or long LBA (16 bytes: NUMBER OF
/// LOGICAL BLOCKS in bytes 0–7, LOGICAL BLOCK LENGTH in bytes 12–15). For changeable
/// values it is all zero: nothing can be changed.
fn block_descriptor(m: &Medium, long: bool, pc: PageControl) -> Vec<u8> {
    let (blocks, len) = match pc {
        PageControl::Changeable => (0, 0),
        PageControl::Current | PageControl::Default => (m.blocks, m.block_len),
    };
    if long {
        let mut d = vec![0u8; 16];
        d[..8].copy_from_slice(&blocks.to_be_bytes());
        d[12..].copy_from_slice(&len.to_be_bytes());
        d
    } else {
        let short = u32::try_from(blocks).unwrap_or(u32::MAX);
        let mut d = vec![0u8; 8];
        d[..4].copy_from_slice(&short.to_be_bytes());
        d[5..].copy_from_slice(&len.to_be_bytes()[1..]);
        d
    }
}

/// The whole MODE SENSE parameter data (before the allocation length is applied):
/// mode parameter header (6: MODE DATA LENGTH, MEDIUM TYPE, DEVICE-SPECIFIC PARAMETER,
/// BLOCK DESCRIPTOR LENGTH; 10: the same with 2-byte lengths and LONGLBA in byte 4),
/// block descriptor unless DBD, then the pages.
pub fn mode_sense(req: &ModeRequest, m: &Medium) -> Result<Vec<u8>, Sense> {
    let pages = pages(req.page, req.subpage)?;
    let long = req.ten && req.llbaa;
    let bd = if req.dbd {
        Vec::new()
    } else {
        block_descriptor(m, long, req.pc)
    };
    let specific = if m.write_protected { WP } else { 0 } | DPOFUA;
    let mut d = Vec::with_capacity(8 + bd.len() + pages.len());
    if req.ten {
        let total = 8 + bd.len() + pages.len();
        d.extend_from_slice(&((total - 2) as u16).to_be_bytes());
        d.extend_from_slice(&[0, specific, u8::from(long && !bd.is_empty()), 0]);
        d.extend_from_slice(&(bd.len() as u16).to_be_bytes());
    } else {
        let total = 4 + bd.len() + pages.len();
        d.extend_from_slice(&[(total - 1) as u8, 0, specific, bd.len() as u8]);
    }
    d.extend(bd);
    d.extend(pages);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Medium = Medium {
        blocks: 0x1_0000_0001,
        block_len: 512,
        write_protected: false,
    };

    fn req(ten: bool, dbd: bool, llbaa: bool, page: u8) -> ModeRequest {
        ModeRequest {
            ten,
            dbd,
            llbaa,
            pc: PageControl::Current,
            page,
            subpage: 0,
        }
    }

    #[test]
    fn six_byte_caching_with_block_descriptor() {
        let d = mode_sense(&req(false, false, false, 0x08), &M).unwrap();
        let mut want = vec![3 + 8 + 20, 0, 0x10, 8];
        want.extend([0xFF, 0xFF, 0xFF, 0xFF, 0, 0x00, 0x02, 0x00]);
        want.extend([0x08, 0x12]);
        want.extend([0; 18]);
        assert_eq!(d, want);
    }

    #[test]
    fn ten_byte_all_pages_long_descriptor() {
        let m = Medium {
            blocks: 1000,
            block_len: 4096,
            write_protected: true,
        };
        let d = mode_sense(&req(true, false, true, 0x3F), &m).unwrap();
        let mut want = vec![0, 6 + 16 + 20 + 12, 0, 0x90, 0x01, 0, 0, 16];
        want.extend([0, 0, 0, 0, 0, 0, 0x03, 0xE8, 0, 0, 0, 0, 0, 0, 0x10, 0x00]);
        want.extend([0x08, 0x12]);
        want.extend([0; 18]);
        want.extend([0x0A, 0x0A]);
        want.extend([0; 10]);
        assert_eq!(d, want);
    }

    #[test]
    fn dbd_drops_the_descriptor() {
        let d = mode_sense(&req(true, true, true, 0x0A), &M).unwrap();
        assert_eq!(&d[..8], &[0, 6 + 12, 0, 0x10, 0, 0, 0, 0]);
        assert_eq!(&d[8..10], &[0x0A, 0x0A]);
        assert_eq!(d.len(), 20);
        let d = mode_sense(&req(false, true, false, 0x3F), &M).unwrap();
        assert_eq!(&d[..4], &[3 + 32, 0, 0x10, 0]);
    }

    #[test]
    fn changeable_values_are_zero() {
        let mut r = req(false, false, false, 0x08);
        r.pc = PageControl::Changeable;
        let d = mode_sense(&r, &M).unwrap();
        assert_eq!(&d[4..12], &[0; 8]);
        assert_eq!(&d[12..14], &[0x08, 0x12]);
    }

    #[test]
    fn unknown_page_and_subpage() {
        assert_eq!(
            mode_sense(&req(false, false, false, 0x1C), &M),
            Err(Sense::invalid_field(2, Some(5)))
        );
        let mut r = req(false, false, false, 0x3F);
        r.subpage = 0xFF;
        assert!(mode_sense(&r, &M).is_ok());
        r.subpage = 0x01;
        assert_eq!(mode_sense(&r, &M), Err(Sense::invalid_field(3, None)));
    }
}
