//! Logical unit numbers in the 8-byte SAM format, single level (SAM-5, "Logical unit
//! numbers": "Single level LUN structure", "Peripheral device addressing method" and
//! "Flat space addressing method"), and the REPORT LUNS parameter data (SPC-4,
//! "REPORT LUNS command").
//!
//! LUNs 0–255 are encoded with peripheral device addressing (ADDRESS METHOD 00b, BUS
//! IDENTIFIER 0, the LUN in byte 1), as initiators that put the LUN in byte 1 expect;
//! LUNs 256–16383 with flat space addressing (ADDRESS METHOD 01b, 14-bit LUN in bytes
//! 0–1). Bytes 2–7 are zero (no second level).

/// A single-level logical unit number, 0..=16383.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lun(u16);

impl Lun {
    /// The largest LUN a flat space address can carry.
    pub const MAX: u16 = 0x3FFF;

    /// LUN `n`, if it can be addressed (at most [`Lun::MAX`]).
    pub fn new(n: u16) -> Option<Lun> {
        (n <= Lun::MAX).then_some(Lun(n))
    }

    /// The number.
    pub fn number(self) -> u16 {
        self.0
    }

    /// The 8-byte LUN field (as in SRP_CMD and in REPORT LUNS data).
    pub fn to_bytes(self) -> [u8; 8] {
        let [hi, lo] = self.0.to_be_bytes();
        if self.0 < 256 {
            [0x00, lo, 0, 0, 0, 0, 0, 0]
        } else {
            [0x40 | hi, lo, 0, 0, 0, 0, 0, 0]
        }
    }

    /// Decodes an 8-byte LUN field. Peripheral device addressing with bus 0 and flat
    /// space addressing are understood, single level only; anything else addresses no
    /// logical unit of ours.
    pub fn from_bytes(b: [u8; 8]) -> Option<Lun> {
        if b[2..] != [0; 6] {
            return None;
        }
        match b[0] >> 6 {
            0b00 if b[0] & 0x3F == 0 => Some(Lun(u16::from(b[1]))),
            0b01 => Some(Lun(u16::from_be_bytes([b[0] & 0x3F, b[1]]))),
            _ => None,
        }
    }
}

/// REPORT LUNS parameter data for `luns` (in ascending order): LUN LIST LENGTH
/// (bytes 0–3, 8 per LUN), 4 reserved bytes, then one 8-byte LUN each.
pub fn report_luns_data(luns: impl ExactSizeIterator<Item = Lun>) -> Vec<u8> {
    let list_len = (luns.len() as u32).saturating_mul(8);
    let mut d = Vec::with_capacity(8 + luns.len() * 8);
    d.extend_from_slice(&list_len.to_be_bytes());
    d.extend_from_slice(&[0; 4]);
    for lun in luns {
        d.extend_from_slice(&lun.to_bytes());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(Lun::new(0).unwrap().to_bytes(), [0; 8]);
        assert_eq!(Lun::new(5).unwrap().to_bytes(), [0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Lun::new(255).unwrap().to_bytes(),
            [0, 0xFF, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Lun::new(256).unwrap().to_bytes(),
            [0x41, 0x00, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Lun::new(0x3FFF).unwrap().to_bytes(),
            [0x7F, 0xFF, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Lun::new(0x4000), None);
    }

    #[test]
    fn decodings() {
        for n in [0u16, 1, 200, 255, 256, 4095, 0x3FFF] {
            let lun = Lun::new(n).unwrap();
            assert_eq!(Lun::from_bytes(lun.to_bytes()), Some(lun));
        }
        // Flat space addressing of a small LUN is the same LU.
        assert_eq!(Lun::from_bytes([0x40, 7, 0, 0, 0, 0, 0, 0]), Lun::new(7));
        // Bus 1, a second level, logical unit and extended addressing: not ours.
        assert_eq!(Lun::from_bytes([0x01, 7, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Lun::from_bytes([0, 7, 0, 1, 0, 0, 0, 0]), None);
        assert_eq!(Lun::from_bytes([0x80, 7, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Lun::from_bytes([0xC0, 7, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn report_luns_layout() {
        let luns = [0u16, 3, 300].map(|n| Lun::new(n).unwrap());
        assert_eq!(
            report_luns_data(luns.into_iter()),
            [
                0, 0, 0, 24, 0, 0, 0, 0, //
                0, 0, 0, 0, 0, 0, 0, 0, //
                0, 3, 0, 0, 0, 0, 0, 0, //
                0x41, 0x2C, 0, 0, 0, 0, 0, 0,
            ]
        );
        assert_eq!(report_luns_data([].into_iter()), [0; 8]);
    }
}
