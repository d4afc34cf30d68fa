//! The global route header, 40 bytes after the LRH when LRH.LNH is IBA global
//! (IBTA vol. 1 §8.3). It has the shape of an IPv6 header; GIDs have the shape of
//! IPv6 addresses (a 64-bit subnet prefix and a 64-bit interface ID, the port GUID).
//!
//! ```text
//!  bytes 0-3: IPVer (4) | TClass (8) | FlowLabel (20)
//!  bytes 4-5: PayLen   byte 6: NxtHdr   byte 7: HopLmt
//!  bytes 8-23: SGID    bytes 24-39: DGID
//! ```

use core::fmt;
use std::net::Ipv6Addr;

use super::{WireError, be16, be32, check_bits, check_len};

mod field {
    use crate::wire::Field;

    /// IPVer in bits 31..28, TClass in bits 27..20, FlowLabel in bits 19..0.
    pub const VER_TCLASS_FLOW: Field = 0..4;
    pub const PAY_LEN: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LMT: usize = 7;
    pub const SGID: Field = 8..24;
    pub const DGID: Field = 24..40;

    pub const FLOW_LABEL_MASK: u32 = 0x000f_ffff;
}

/// GRH.IPVer: the only version IBA defines (§8.3.1).
pub const IP_VERSION: u8 = 6;

/// GRH.NxtHdr for an IBA transport header (a BTH) next (§8.3.1).
pub const NXT_HDR_IBA: u8 = 0x1b;

/// A global identifier: 128 bits, subnet prefix first (IBTA §4.1.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gid(pub [u8; 16]);

impl Gid {
    /// The GID with subnet `prefix` and interface ID `guid`.
    pub const fn new(prefix: u64, guid: u64) -> Gid {
        let p = prefix.to_be_bytes();
        let g = guid.to_be_bytes();
        Gid([
            p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], g[0], g[1], g[2], g[3], g[4], g[5],
            g[6], g[7],
        ])
    }

    /// The subnet prefix, the upper 64 bits.
    pub fn prefix(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// The interface ID, the lower 64 bits (a port GUID).
    pub fn guid(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[8..]);
        u64::from_be_bytes(b)
    }
}

/// IPv6 notation, as tshark shows GIDs.
impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Ipv6Addr::from(self.0), f)
    }
}

impl fmt::Debug for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gid({self})")
    }
}

/// The global route header's fields (IBTA §8.3). IPVer is always 6: parsing rejects
/// anything else and emitting writes 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrhRepr {
    /// Traffic class (§8.3.1), 8 bits; a router may change it.
    pub tclass: u8,
    /// Flow label, 20 bits; a router may change it.
    pub flow_label: u32,
    /// Bytes after the GRH up to and including the ICRC (the pad bytes count).
    pub pay_len: u16,
    /// Next header: [`NXT_HDR_IBA`] when a BTH follows.
    pub nxt_hdr: u8,
    /// Hop limit; each router decrements it.
    pub hop_lmt: u8,
    /// Source GID.
    pub sgid: Gid,
    /// Destination GID.
    pub dgid: Gid,
}

impl GrhRepr {
    /// Length of the header in bytes.
    pub const LEN: usize = field::DGID.end;

    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<GrhRepr, WireError> {
        check_len(buf, Self::LEN)?;
        let word = be32(buf, field::VER_TCLASS_FLOW);
        let version = (word >> 28) as u8;
        if version != IP_VERSION {
            return Err(WireError::UnsupportedVersion {
                field: "IPVer",
                version,
            });
        }
        let mut sgid = Gid::default();
        sgid.0.copy_from_slice(&buf[field::SGID]);
        let mut dgid = Gid::default();
        dgid.0.copy_from_slice(&buf[field::DGID]);
        Ok(GrhRepr {
            tclass: (word >> 20) as u8,
            flow_label: word & field::FLOW_LABEL_MASK,
            pay_len: be16(buf, field::PAY_LEN),
            nxt_hdr: buf[field::NXT_HDR],
            hop_lmt: buf[field::HOP_LMT],
            sgid,
            dgid,
        })
    }

    /// `Ok(())` if every value fits its field.
    pub fn check(&self) -> Result<(), WireError> {
        check_bits("GRH.FlowLabel", self.flow_label.into(), 20)
    }

    /// Writes the header into the first [`GrhRepr::LEN`] bytes of `buf`; a flow label
    /// wider than 20 bits is cut to them ([`GrhRepr::check`] finds it first).
    ///
    /// # Panics
    /// If `buf` is shorter than [`GrhRepr::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        let word = (u32::from(IP_VERSION) << 28)
            | (u32::from(self.tclass) << 20)
            | (self.flow_label & field::FLOW_LABEL_MASK);
        buf[field::VER_TCLASS_FLOW].copy_from_slice(&word.to_be_bytes());
        buf[field::PAY_LEN].copy_from_slice(&self.pay_len.to_be_bytes());
        buf[field::NXT_HDR] = self.nxt_hdr;
        buf[field::HOP_LMT] = self.hop_lmt;
        buf[field::SGID].copy_from_slice(&self.sgid.0);
        buf[field::DGID].copy_from_slice(&self.dgid.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPVer 6, TClass 0x5A, FlowLabel 0x12345, PayLen 40, NxtHdr 0x1B, HopLmt 64,
    /// SGID fe80::2:c903:0:1111, DGID fe80::2:c903:0:2222.
    static BYTES: [u8; 40] = [
        0x65, 0xa1, 0x23, 0x45, 0x00, 0x28, 0x1b, 0x40, // IPVer..HopLmt
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // SGID prefix
        0x00, 0x02, 0xc9, 0x03, 0x00, 0x00, 0x11, 0x11, // SGID GUID
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // DGID prefix
        0x00, 0x02, 0xc9, 0x03, 0x00, 0x00, 0x22, 0x22, // DGID GUID
    ];

    fn repr() -> GrhRepr {
        GrhRepr {
            tclass: 0x5a,
            flow_label: 0x12345,
            pay_len: 40,
            nxt_hdr: NXT_HDR_IBA,
            hop_lmt: 64,
            sgid: Gid::new(0xfe80_0000_0000_0000, 0x0002_c903_0000_1111),
            dgid: Gid::new(0xfe80_0000_0000_0000, 0x0002_c903_0000_2222),
        }
    }

    #[test]
    fn test_parse() {
        assert_eq!(GrhRepr::parse(&BYTES), Ok(repr()));
    }

    #[test]
    fn test_emit() {
        let mut buf = [0xa5u8; 40];
        repr().emit(&mut buf);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_gid_parts_and_notation() {
        let gid = repr().dgid;
        assert_eq!(gid.prefix(), 0xfe80_0000_0000_0000);
        assert_eq!(gid.guid(), 0x0002_c903_0000_2222);
        assert_eq!(gid.to_string(), "fe80::2:c903:0:2222");
    }

    #[test]
    fn test_ip_version_other_than_6_is_rejected() {
        let mut bytes = BYTES;
        bytes[0] = 0x45;
        assert_eq!(
            GrhRepr::parse(&bytes),
            Err(WireError::UnsupportedVersion {
                field: "IPVer",
                version: 4
            })
        );
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            GrhRepr::parse(&BYTES[..39]),
            Err(WireError::Truncated {
                needed: 40,
                got: 39
            })
        );
    }

    #[test]
    fn test_check() {
        assert_eq!(repr().check(), Ok(()));
        let wide = GrhRepr {
            flow_label: 0x10_0000,
            ..repr()
        };
        assert!(wide.check().is_err());
    }
}
