//! The two packet CRCs (IBTA vol. 1 §7.8).
//!
//! - **ICRC**, invariant CRC, 4 bytes after the payload and pad (§7.8.1): the CRC-32
//!   of IEEE 802.3 (polynomial 0x04C11DB7, register preset to ones, the bits of each
//!   byte taken least significant first, remainder complemented) over the packet from
//!   the first LRH byte to the last pad byte, with the fields a switch or router may
//!   change replaced by ones:
//!   - always BTH.resv8a;
//!   - local packet (LNH 2): LRH.VL;
//!   - global packet (LNH 3): the whole LRH (routers rebuild it), and GRH.TClass,
//!     GRH.FlowLabel and GRH.HopLmt.
//! - **VCRC**, variant CRC, the last 2 bytes (§7.8.2): the same procedure with the
//!   16-bit polynomial 0x100B (x^16 + x^12 + x^3 + x + 1), preset to ones, over every
//!   byte of the packet before it, ICRC included; each link recomputes it.
//!
//! Both go on the wire highest-order remainder term first, in bit 0 of the first byte,
//! as the 802.3 FCS does: with the bit-reflected computation here that is the value's
//! little-endian bytes ([`icrc`]`(..).to_le_bytes()`, [`vcrc`]`(..).to_le_bytes()`).

use super::bth::{self, BthRepr};
use super::grh::GrhRepr;
use super::lrh::{Lnh, LrhRepr};
use super::{WireError, check_len};

/// Length of the ICRC field in bytes.
pub const ICRC_LEN: usize = 4;
/// Length of the VCRC field in bytes.
pub const VCRC_LEN: usize = 2;

/// 0x04C11DB7 with its bits reversed, for the least-significant-bit-first register.
const POLY32_REFLECTED: u32 = 0xedb8_8320;
/// 0x100B with its bits reversed.
const POLY16_REFLECTED: u16 = 0xd008;

const TABLE32: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = i as u32;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 1 != 0 {
                (r >> 1) ^ POLY32_REFLECTED
            } else {
                r >> 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
};

const TABLE16: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = i as u16;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 1 != 0 {
                (r >> 1) ^ POLY16_REFLECTED
            } else {
                r >> 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
};

/// A running ICRC-style CRC-32.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Crc32 {
    /// The register preset to ones.
    pub const fn new() -> Crc32 {
        Crc32(u32::MAX)
    }

    /// Takes in `data`.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 >> 8) ^ TABLE32[usize::from((self.0 as u8) ^ b)];
        }
    }

    /// The complemented remainder.
    pub const fn finish(&self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Crc32 {
        Crc32::new()
    }
}

/// A running VCRC-style CRC-16.
#[derive(Clone, Copy, Debug)]
pub struct Crc16(u16);

impl Crc16 {
    /// The register preset to ones.
    pub const fn new() -> Crc16 {
        Crc16(u16::MAX)
    }

    /// Takes in `data`.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 >> 8) ^ TABLE16[usize::from((self.0 as u8) ^ b)];
        }
    }

    /// The complemented remainder.
    pub const fn finish(&self) -> u16 {
        !self.0
    }
}

impl Default for Crc16 {
    fn default() -> Crc16 {
        Crc16::new()
    }
}

/// The CRC-32 of `data` (the same function as the 802.3 FCS and zlib's `crc32`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(data);
    c.finish()
}

/// The VCRC function of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    let mut c = Crc16::new();
    c.update(data);
    c.finish()
}

/// The largest header prefix [`icrc`] masks: LRH, GRH and BTH.
const MASKED_MAX: usize = LrhRepr::LEN + GrhRepr::LEN + BthRepr::LEN;

/// The ICRC of `packet`, which runs from the first LRH byte to the last pad byte (no
/// ICRC, no VCRC). The LNH in the LRH tells where the GRH and BTH are.
///
/// Errors: a raw packet (LNH 0 or 1, which has no ICRC), or one too short for its
/// LRH, GRH and BTH.
pub fn icrc(packet: &[u8]) -> Result<u32, WireError> {
    check_len(packet, LrhRepr::LEN)?;
    let lnh = Lnh::from_bits(packet[1]);
    let headers = match lnh {
        Lnh::Local => LrhRepr::LEN + BthRepr::LEN,
        Lnh::Global => MASKED_MAX,
        Lnh::Raw | Lnh::Ipv6 => return Err(WireError::UnsupportedLnh(lnh.bits())),
    };
    check_len(packet, headers)?;
    let mut masked = [0u8; MASKED_MAX];
    let masked = &mut masked[..headers];
    masked.copy_from_slice(&packet[..headers]);
    let bth_at = headers - BthRepr::LEN;
    if lnh == Lnh::Global {
        masked[..LrhRepr::LEN].fill(0xff);
        let grh = &mut masked[LrhRepr::LEN..];
        grh[0] |= 0x0f; // TClass, high nibble (IPVer stays)
        grh[1] = 0xff; // TClass low nibble, FlowLabel high nibble
        grh[2] = 0xff; // FlowLabel
        grh[3] = 0xff; // FlowLabel
        grh[7] = 0xff; // HopLmt
    } else {
        masked[0] |= 0xf0; // VL
    }
    masked[bth_at + bth::RESV8A_OFFSET] = 0xff;

    let mut c = Crc32::new();
    c.update(masked);
    c.update(&packet[headers..]);
    Ok(c.finish())
}

/// The VCRC of `bytes`: every byte of a packet before its VCRC, ICRC included.
pub fn vcrc(bytes: &[u8]) -> u16 {
    crc16(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers computed outside this crate: CRC-32 with Python's
    // `zlib.crc32`; CRC-16 with python3-crcmod,
    // `crcmod.mkCrcFun(0x1100B, initCrc=0, rev=True, xorOut=0xFFFF)` (crcmod's
    // initCrc is the preset XORed with xorOut, so this is a preset of ones).

    #[test]
    fn test_check_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc16(b"123456789"), 0x0a3d);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn test_incremental_equals_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for split in [0, 1, 7, 500, 999, 1000] {
            let mut c = Crc32::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), crc32(&data));
            let mut c = Crc16::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), crc16(&data));
        }
    }

    /// A local UD SEND Only, LRH through pad (see `packet::tests::LOCAL_UD`): VL 3,
    /// SL 5, DLID 0x11, PktLen 10, SLID 0x22; QP 0x123, PSN 7, Q_Key 0x80010000,
    /// SrcQP 0x45; payload DE AD BE EF 42 and three pad bytes.
    const LOCAL: [u8; 36] = [
        0x30, 0x52, 0x00, 0x11, 0x00, 0x0a, 0x00, 0x22, // LRH
        0x64, 0xb0, 0xff, 0xff, 0x00, 0x00, 0x01, 0x23, 0x00, 0x00, 0x00, 0x07, // BTH
        0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x45, // DETH
        0xde, 0xad, 0xbe, 0xef, 0x42, 0x00, 0x00, 0x00, // payload, pad
    ];
    /// zlib.crc32 of LOCAL with byte 0 | 0xF0 and byte 12 = 0xFF.
    const LOCAL_ICRC: u32 = 0x929e_61e1;

    #[test]
    fn test_icrc_local_known_answer() {
        assert_eq!(icrc(&LOCAL), Ok(LOCAL_ICRC));
    }

    #[test]
    fn test_icrc_local_masks_exactly_vl_and_resv8a() {
        let mut p = LOCAL;
        p[0] = 0xf0 | (p[0] & 0x0f); // VL 15
        p[12] = 0x5a; // resv8a
        assert_eq!(icrc(&p), Ok(LOCAL_ICRC));
        // Every other bit of every byte counts, LVer and SL included.
        for byte in 0..LOCAL.len() {
            for bit in 0..8 {
                if (byte == 0 && bit >= 4) || byte == 12 {
                    continue;
                }
                let mut p = LOCAL;
                p[byte] ^= 1 << bit;
                if byte == 1 && bit < 2 {
                    continue; // LNH: no longer a local packet
                }
                assert_ne!(icrc(&p), Ok(LOCAL_ICRC), "byte {byte} bit {bit}");
            }
        }
    }

    /// A global RC RDMA WRITE Only (see `packet::tests::GLOBAL_WRITE`), LRH through
    /// payload: TClass 0x5A, FlowLabel 0x12345, HopLmt 64, 8 bytes of payload.
    const GLOBAL: [u8; 84] = [
        0x00, 0x23, 0x00, 0x04, 0x00, 0x16, 0x00, 0x03, // LRH
        0x65, 0xa1, 0x23, 0x45, 0x00, 0x28, 0x1b, 0x40, // GRH
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc9, 0x03, 0x00, 0x00, 0x11,
        0x11, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc9, 0x03, 0x00, 0x00,
        0x22, 0x22, // SGID, DGID
        0x0a, 0x40, 0x80, 0x01, 0x00, 0x00, 0x0a, 0xbc, 0x80, 0x12, 0x34, 0x56, // BTH
        0x00, 0x00, 0x7f, 0x00, 0x12, 0x34, 0x50, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x00, 0x00, 0x00,
        0x08, // RETH
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // payload
    ];
    /// zlib.crc32 of GLOBAL with bytes 0..8 = 0xFF, byte 8 | 0x0F, bytes 9..12 =
    /// 0xFF, byte 15 = 0xFF and byte 52 = 0xFF.
    const GLOBAL_ICRC: u32 = 0x2584_b992;

    #[test]
    fn test_icrc_global_known_answer() {
        assert_eq!(icrc(&GLOBAL), Ok(GLOBAL_ICRC));
    }

    #[test]
    fn test_icrc_global_masks_lrh_tclass_flow_label_hop_limit_resv8a() {
        let mut p = GLOBAL;
        p[0] = 0x70; // VL
        p[1] = 0xf3; // SL (LNH stays global)
        p[2..8].copy_from_slice(&[0xaa; 6]); // DLID, PktLen, SLID
        p[8] = 0x60; // TClass high nibble
        p[9..12].copy_from_slice(&[0x00, 0x00, 0x00]); // TClass low nibble, FlowLabel
        p[15] = 1; // HopLmt
        p[52] = 0x77; // resv8a
        assert_eq!(icrc(&p), Ok(GLOBAL_ICRC));
        for (byte, what) in [
            (8, "IPVer"),
            (12, "PayLen"),
            (14, "NxtHdr"),
            (16, "SGID"),
            (47, "DGID"),
            (48, "OpCode"),
            (53, "DestQP"),
            (83, "payload"),
        ] {
            let mut p = GLOBAL;
            p[byte] ^= 0x80;
            assert_ne!(icrc(&p), Ok(GLOBAL_ICRC), "{what} is covered");
        }
    }

    #[test]
    fn test_icrc_needs_an_iba_packet() {
        let mut raw = LOCAL;
        raw[1] &= !0x03;
        assert_eq!(icrc(&raw), Err(WireError::UnsupportedLnh(0)));
        raw[1] |= 1;
        assert_eq!(icrc(&raw), Err(WireError::UnsupportedLnh(1)));
        assert_eq!(
            icrc(&LOCAL[..19]),
            Err(WireError::Truncated {
                needed: 20,
                got: 19
            })
        );
        assert_eq!(
            icrc(&GLOBAL[..59]),
            Err(WireError::Truncated {
                needed: 60,
                got: 59
            })
        );
        assert_eq!(icrc(&[]), Err(WireError::Truncated { needed: 8, got: 0 }));
    }

    #[test]
    fn test_vcrc_known_answers() {
        // crcmod over LOCAL + LOCAL_ICRC (little-endian), and the same for GLOBAL.
        let mut local = LOCAL.to_vec();
        local.extend_from_slice(&LOCAL_ICRC.to_le_bytes());
        assert_eq!(vcrc(&local), 0xcee8);
        let mut global = GLOBAL.to_vec();
        global.extend_from_slice(&GLOBAL_ICRC.to_le_bytes());
        assert_eq!(vcrc(&global), 0xedb9);
    }
}
