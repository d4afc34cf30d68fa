//! The local route header, the first 8 bytes of every packet (IBTA vol. 1 §7.7).
//!
//! ```text
//!  byte 0          byte 1          bytes 2-3        bytes 4-5            bytes 6-7
//! +-------+-------+-------+---+---+----------------+-------+------------+------------+
//! |  VL   | LVer  |  SL   |rsv|LNH|      DLID      | rsv5  |  PktLen    |    SLID    |
//! +-------+-------+-------+---+---+----------------+-------+------------+------------+
//! ```

use super::{WireError, be16, check_bits, check_len};

mod field {
    use crate::wire::Field;

    /// VL in bits 7..4, LVer in bits 3..0.
    pub const VL_LVER: usize = 0;
    /// SL in bits 7..4, reserved bits 3..2, LNH in bits 1..0.
    pub const SL_LNH: usize = 1;
    pub const DLID: Field = 2..4;
    /// Five reserved bits, then the 11-bit PktLen.
    pub const PKT_LEN: Field = 4..6;
    pub const SLID: Field = 6..8;

    pub const PKT_LEN_MASK: u16 = 0x07ff;
    pub const LNH_MASK: u8 = 0x03;
}

/// LRH.LNH, the link next header (IBTA §7.7.4): what follows the LRH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lnh {
    /// 0: raw packet, no transport headers and no ICRC.
    Raw,
    /// 1: raw IPv6 (IP non-IBA transport), no ICRC.
    Ipv6,
    /// 2: IBA local: a BTH follows.
    Local,
    /// 3: IBA global: a GRH, then a BTH, follows.
    Global,
}

impl Lnh {
    /// The two-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            Lnh::Raw => 0,
            Lnh::Ipv6 => 1,
            Lnh::Local => 2,
            Lnh::Global => 3,
        }
    }

    /// The LNH for the low two bits of `bits`.
    pub const fn from_bits(bits: u8) -> Lnh {
        match bits & field::LNH_MASK {
            0 => Lnh::Raw,
            1 => Lnh::Ipv6,
            2 => Lnh::Local,
            _ => Lnh::Global,
        }
    }
}

/// The local route header's fields (IBTA §7.7). Reserved bits are ignored when
/// parsed and written as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LrhRepr {
    /// Virtual lane, 4 bits (§7.7.1); VL15 carries subnet management.
    pub vl: u8,
    /// Link version, 4 bits (§7.7.2); 0 is the only version.
    pub lver: u8,
    /// Service level, 4 bits (§7.7.3).
    pub sl: u8,
    /// Link next header (§7.7.4).
    pub lnh: Lnh,
    /// Destination LID (§7.7.5).
    pub dlid: u16,
    /// Packet length in 4-byte words, 11 bits, from the first byte of the LRH to the
    /// last byte of the ICRC: everything but the VCRC (§7.7.8).
    pub pkt_len: u16,
    /// Source LID (§7.7.6).
    pub slid: u16,
}

impl LrhRepr {
    /// Length of the header in bytes.
    pub const LEN: usize = field::SLID.end;

    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<LrhRepr, WireError> {
        check_len(buf, Self::LEN)?;
        Ok(LrhRepr {
            vl: buf[field::VL_LVER] >> 4,
            lver: buf[field::VL_LVER] & 0x0f,
            sl: buf[field::SL_LNH] >> 4,
            lnh: Lnh::from_bits(buf[field::SL_LNH]),
            dlid: be16(buf, field::DLID),
            pkt_len: be16(buf, field::PKT_LEN) & field::PKT_LEN_MASK,
            slid: be16(buf, field::SLID),
        })
    }

    /// `Ok(())` if every value fits its field.
    pub fn check(&self) -> Result<(), WireError> {
        check_bits("LRH.VL", self.vl.into(), 4)?;
        check_bits("LRH.LVer", self.lver.into(), 4)?;
        check_bits("LRH.SL", self.sl.into(), 4)?;
        check_bits("LRH.PktLen", self.pkt_len.into(), 11)
    }

    /// Writes the header into the first [`LrhRepr::LEN`] bytes of `buf`; values wider
    /// than their field are cut to it ([`LrhRepr::check`] finds them first).
    ///
    /// # Panics
    /// If `buf` is shorter than [`LrhRepr::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::VL_LVER] = (self.vl << 4) | (self.lver & 0x0f);
        buf[field::SL_LNH] = (self.sl << 4) | self.lnh.bits();
        buf[field::DLID].copy_from_slice(&self.dlid.to_be_bytes());
        let pkt_len = self.pkt_len & field::PKT_LEN_MASK;
        buf[field::PKT_LEN].copy_from_slice(&pkt_len.to_be_bytes());
        buf[field::SLID].copy_from_slice(&self.slid.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VL 15, LVer 0, SL 3, LNH local, DLID 0x1234, PktLen 0x0123, SLID 0xBEEF.
    static BYTES: [u8; 8] = [0xf0, 0x32, 0x12, 0x34, 0x01, 0x23, 0xbe, 0xef];

    fn repr() -> LrhRepr {
        LrhRepr {
            vl: 15,
            lver: 0,
            sl: 3,
            lnh: Lnh::Local,
            dlid: 0x1234,
            pkt_len: 0x0123,
            slid: 0xbeef,
        }
    }

    #[test]
    fn test_parse() {
        assert_eq!(LrhRepr::parse(&BYTES), Ok(repr()));
    }

    #[test]
    fn test_emit() {
        let mut buf = [0xa5u8; 8];
        repr().emit(&mut buf);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_emit_leaves_bytes_past_the_header() {
        let mut buf = [0xa5u8; 10];
        repr().emit(&mut buf);
        assert_eq!(&buf[..8], &BYTES);
        assert_eq!(&buf[8..], &[0xa5, 0xa5]);
    }

    #[test]
    fn test_reserved_bits_are_ignored_and_written_as_zero() {
        let mut bytes = BYTES;
        bytes[1] |= 0x0c; // the two reserved bits after SL
        bytes[4] |= 0xf8; // the five reserved bits before PktLen
        assert_eq!(LrhRepr::parse(&bytes), Ok(repr()));
        let mut buf = [0xffu8; 8];
        repr().emit(&mut buf);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_every_lnh() {
        for bits in 0..4u8 {
            let mut bytes = BYTES;
            bytes[1] = (bytes[1] & 0xfc) | bits;
            let lrh = LrhRepr::parse(&bytes).unwrap();
            assert_eq!(lrh.lnh.bits(), bits);
            let mut out = [0xa5u8; 8];
            lrh.emit(&mut out);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn test_truncated() {
        for len in 0..8 {
            assert_eq!(
                LrhRepr::parse(&BYTES[..len]),
                Err(WireError::Truncated {
                    needed: 8,
                    got: len
                })
            );
        }
    }

    #[test]
    fn test_check() {
        assert_eq!(repr().check(), Ok(()));
        let wide = LrhRepr {
            pkt_len: 0x800,
            ..repr()
        };
        assert_eq!(
            wide.check(),
            Err(WireError::OutOfRange {
                field: "LRH.PktLen",
                value: 0x800
            })
        );
        let vl = LrhRepr { vl: 16, ..repr() };
        assert!(matches!(
            vl.check(),
            Err(WireError::OutOfRange {
                field: "LRH.VL",
                ..
            })
        ));
    }
}
