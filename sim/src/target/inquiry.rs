//! INQUIRY data: the standard data (SPC-4, "Standard INQUIRY data") and the vital
//! product data pages we support (SPC-4, "Vital product data parameters": "Supported
//! VPD pages VPD page", "Unit Serial Number VPD page", "Device Identification VPD
//! page" with an NAA designator in the "NAA Locally Assigned designator format" and a
//! "T10 vendor ID based designator").

use std::fmt;

use super::sense::Sense;

/// PERIPHERAL DEVICE TYPE of a direct access block device (SPC-4, peripheral device
/// type table), with PERIPHERAL QUALIFIER 000b: the LU is connected.
pub const PERIPHERAL_DISK: u8 = 0x00;
/// PERIPHERAL QUALIFIER 011b with device type 1Fh: the device server cannot support a
/// logical unit at this LUN (SPC-4, peripheral qualifier table).
pub const PERIPHERAL_NO_LUN: u8 = 0x7F;

/// VERSION 06h: the device claims SPC-4.
pub const VERSION_SPC4: u8 = 0x06;

/// Version descriptors we claim (SPC-4, version descriptor values): SAM-5, SRP,
/// SPC-4 and SBC-3, each "no version claimed".
pub const VERSION_DESCRIPTORS: [u16; 4] = [0x00A0, 0x0940, 0x0460, 0x04C0];

/// Length of our standard INQUIRY data (ADDITIONAL LENGTH 91).
pub const STANDARD_LEN: usize = 96;

/// VPD page codes we return, in ascending order.
pub const VPD_PAGES: [u8; 3] = [0x00, 0x80, 0x83];

/// An identity string that is not printable ASCII or is too long for its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityError {
    /// Which field.
    pub field: &'static str,
    /// Its maximum length.
    pub max: usize,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be 1..={} printable ASCII characters",
            self.field, self.max
        )
    }
}

impl std::error::Error for IdentityError {}

fn ascii(s: &str, field: &'static str, max: usize) -> Result<(), IdentityError> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(IdentityError { field, max });
    }
    Ok(())
}

/// `s` left-aligned and padded with spaces to `N` bytes (SPC-4: ASCII data fields are
/// left-aligned, padded with 20h).
fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut a = [b' '; N];
    for (d, c) in a.iter_mut().zip(s.bytes()) {
        *d = c;
    }
    a
}

/// T10 VENDOR IDENTIFICATION, PRODUCT IDENTIFICATION and PRODUCT REVISION LEVEL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    vendor: [u8; 8],
    product: [u8; 16],
    revision: [u8; 4],
}

impl Product {
    /// Printable ASCII, at most 8, 16 and 4 characters; padded with spaces.
    pub fn new(vendor: &str, product: &str, revision: &str) -> Result<Product, IdentityError> {
        ascii(vendor, "vendor", 8)?;
        ascii(product, "product", 16)?;
        ascii(revision, "revision", 4)?;
        Ok(Product {
            vendor: padded(vendor),
            product: padded(product),
            revision: padded(revision),
        })
    }

    /// The simulator's own: "FABBOOT", "SIM SRP DISK", "0001".
    pub fn simulated() -> Product {
        Product {
            vendor: padded("FABBOOT"),
            product: padded("SIM SRP DISK"),
            revision: padded("0001"),
        }
    }

    /// T10 VENDOR IDENTIFICATION as it is sent.
    pub fn vendor(&self) -> &[u8; 8] {
        &self.vendor
    }
}

/// What identifies one logical unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuIdentity {
    product: Product,
    serial: String,
    naa_value: u64,
}

impl LuIdentity {
    /// The longest serial number we accept.
    pub const MAX_SERIAL: usize = 64;

    /// `serial`: printable ASCII, 1..=64 characters. `naa_value`: the 60-bit LOCALLY
    /// ADMINISTERED VALUE of the NAA 3h designator; it must be below 2⁶⁰ and should be
    /// unique among the logical units an initiator can see.
    pub fn new(
        product: Product,
        serial: &str,
        naa_value: u64,
    ) -> Result<LuIdentity, IdentityError> {
        ascii(serial, "serial", LuIdentity::MAX_SERIAL)?;
        if naa_value >> 60 != 0 {
            return Err(IdentityError {
                field: "NAA locally administered value (60 bits)",
                max: 60,
            });
        }
        Ok(LuIdentity {
            product,
            serial: serial.to_owned(),
            naa_value,
        })
    }

    /// The simulator's identity for disk `index`: [`Product::simulated`], serial
    /// `FBSIM` and 8 hexadecimal digits, NAA value `FAB_B007` followed by `index`.
    pub fn simulated(index: u32) -> LuIdentity {
        LuIdentity {
            product: Product::simulated(),
            serial: format!("FBSIM{index:08X}"),
            naa_value: 0x0FAB_B007_0000_0000 | u64::from(index),
        }
    }

    /// The 8-byte NAA designator: NAA 3h in the top four bits, then the value.
    pub fn naa(&self) -> [u8; 8] {
        ((3u64 << 60) | self.naa_value).to_be_bytes()
    }

    /// The unit serial number.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The product strings.
    pub fn product(&self) -> &Product {
        &self.product
    }
}

/// Standard INQUIRY data with `peripheral` in byte 0: VERSION SPC-4, HISUP and
/// RESPONSE DATA FORMAT 2 in byte 3, ADDITIONAL LENGTH, CMDQUE in byte 7, the product
/// strings in bytes 8–35 and the version descriptors from byte 58.
pub fn standard(peripheral: u8, product: &Product) -> Vec<u8> {
    let mut d = vec![0u8; STANDARD_LEN];
    d[0] = peripheral;
    d[2] = VERSION_SPC4;
    d[3] = 0x10 | 0x02;
    d[4] = (STANDARD_LEN - 5) as u8;
    d[7] = 0x02;
    d[8..16].copy_from_slice(&product.vendor);
    d[16..32].copy_from_slice(&product.product);
    d[32..36].copy_from_slice(&product.revision);
    for (slot, v) in d[58..74].chunks_exact_mut(2).zip(VERSION_DESCRIPTORS) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
    d
}

/// A VPD page: byte 0 peripheral, byte 1 page code, bytes 2–3 PAGE LENGTH, then `body`.
fn vpd(peripheral: u8, page: u8, body: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(4 + body.len());
    d.push(peripheral);
    d.push(page);
    d.extend_from_slice(&(body.len() as u16).to_be_bytes());
    d.extend_from_slice(body);
    d
}

/// One designation descriptor of the Device Identification page: CODE SET, then
/// ASSOCIATION 00b (the logical unit) with DESIGNATOR TYPE, DESIGNATOR LENGTH and the
/// designator.
fn designator(code_set: u8, kind: u8, value: &[u8]) -> Vec<u8> {
    let mut d = vec![code_set & 0x0F, kind & 0x0F, 0, value.len() as u8];
    d.extend_from_slice(value);
    d
}

/// The VPD page `page` of a logical unit, or INVALID FIELD IN CDB (on the PAGE CODE,
/// byte 2) for a page we do not have.
pub fn vpd_page(page: u8, id: &LuIdentity) -> Result<Vec<u8>, Sense> {
    let p = PERIPHERAL_DISK;
    match page {
        0x00 => Ok(vpd(p, page, &VPD_PAGES)),
        0x80 => Ok(vpd(p, page, id.serial.as_bytes())),
        0x83 => {
            // NAA: code set 1h (binary), designator type 3h.
            let mut body = designator(0x1, 0x3, &id.naa());
            // T10 vendor ID: code set 2h (ASCII), type 1h; vendor then serial.
            let mut t10 = id.product.vendor.to_vec();
            t10.extend_from_slice(id.serial.as_bytes());
            body.extend(designator(0x2, 0x1, &t10));
            Ok(vpd(p, page, &body))
        }
        _ => Err(Sense::invalid_field(2, None)),
    }
}

/// The VPD page `page` at a LUN with no logical unit: only the supported pages page,
/// listing itself, with PERIPHERAL QUALIFIER 011b.
pub fn vpd_page_no_lun(page: u8) -> Result<Vec<u8>, Sense> {
    match page {
        0x00 => Ok(vpd(PERIPHERAL_NO_LUN, 0x00, &[0x00])),
        _ => Err(Sense::invalid_field(2, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_data_layout() {
        let d = standard(
            PERIPHERAL_DISK,
            &Product::new("ACME", "DISK", "1.0").unwrap(),
        );
        assert_eq!(d.len(), 96);
        assert_eq!(&d[..8], &[0x00, 0x00, 0x06, 0x12, 91, 0, 0, 0x02]);
        assert_eq!(&d[8..36], b"ACME    DISK            1.0 ");
        assert!(d[36..58].iter().all(|&b| b == 0));
        assert_eq!(
            &d[58..74],
            &[
                0x00, 0xA0, 0x09, 0x40, 0x04, 0x60, 0x04, 0xC0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        assert!(d[74..].iter().all(|&b| b == 0));
        assert_eq!(standard(PERIPHERAL_NO_LUN, &Product::simulated())[0], 0x7F);
    }

    #[test]
    fn identity_validation() {
        assert!(Product::new("TOO LONG!", "x", "1").is_err());
        assert!(Product::new("", "x", "1").is_err());
        assert!(Product::new("A", "x\u{7f}", "1").is_err());
        assert!(Product::new("A", "x", "12345").is_err());
        let p = Product::simulated();
        assert!(LuIdentity::new(p.clone(), "S\n", 1).is_err());
        assert!(LuIdentity::new(p.clone(), &"S".repeat(65), 1).is_err());
        assert!(LuIdentity::new(p.clone(), "S", 1 << 60).is_err());
        let id = LuIdentity::new(p, "S1", 0x0123_4567_89AB_CDEF).unwrap();
        assert_eq!(id.naa(), [0x31, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]);
    }

    #[test]
    fn vpd_pages() {
        let id = LuIdentity::new(Product::new("V", "P", "R").unwrap(), "SN42", 0x5).unwrap();
        assert_eq!(vpd_page(0x00, &id).unwrap(), [0, 0, 0, 3, 0x00, 0x80, 0x83]);
        assert_eq!(
            vpd_page(0x80, &id).unwrap(),
            [0, 0x80, 0, 4, b'S', b'N', b'4', b'2']
        );
        let di = vpd_page(0x83, &id).unwrap();
        let mut want = vec![0, 0x83, 0, 12 + 16];
        want.extend([0x01, 0x03, 0, 8, 0x30, 0, 0, 0, 0, 0, 0, 0x05]);
        want.extend([0x02, 0x01, 0, 12]);
        want.extend(b"V       SN42");
        assert_eq!(di, want);
        assert_eq!(vpd_page(0xB0, &id), Err(Sense::invalid_field(2, None)));
        assert_eq!(vpd_page_no_lun(0x00).unwrap(), [0x7F, 0, 0, 1, 0]);
        assert!(vpd_page_no_lun(0x83).is_err());
    }
}
