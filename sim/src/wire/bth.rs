//! The base transport header, 12 bytes after the LRH (and GRH) of every IBA
//! transport packet (IBTA vol. 1 §9.2), and its opcodes (§9.2.1).
//!
//! ```text
//!  byte 0: OpCode   byte 1: SE | M | PadCnt (2) | TVer (4)   bytes 2-3: P_Key
//!  byte 4: resv8a   bytes 5-7: DestQP
//!  byte 8: A | resv7   bytes 9-11: PSN
//! ```

use core::fmt;

use super::ext::ExtKind;
use super::{WireError, be16, be24, check_bits, check_len, put_be24};

mod field {
    use crate::wire::Field;

    pub const OPCODE: usize = 0;
    /// SE in bit 7, M in bit 6, PadCnt in bits 5..4, TVer in bits 3..0.
    pub const FLAGS: usize = 1;
    pub const P_KEY: Field = 2..4;
    /// Reserved; switches may change it, so the ICRC does not cover it (§7.8.1).
    pub const RESV8A: usize = 4;
    pub const DEST_QP: Field = 5..8;
    /// AckReq in bit 7, seven reserved bits.
    pub const ACK_REQ: usize = 8;
    pub const PSN: Field = 9..12;

    pub const SE: u8 = 0x80;
    pub const MIG_REQ: u8 = 0x40;
    pub const A: u8 = 0x80;
}

/// Byte offset of BTH.resv8a within the BTH; the ICRC masks it (IBTA §7.8.1).
pub const RESV8A_OFFSET: usize = field::RESV8A;

/// A BTH opcode (IBTA §9.2.1): bits 7..5 the transport (000 RC, 011 UD), bits 4..0
/// the operation. Values with no constant here still round-trip through
/// [`BthRepr`]; [`Opcode::ext_kind`] says which this layer can build packets of.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opcode(pub u8);

impl Opcode {
    /// RC SEND First.
    pub const RC_SEND_FIRST: Opcode = Opcode(0x00);
    /// RC SEND Middle.
    pub const RC_SEND_MIDDLE: Opcode = Opcode(0x01);
    /// RC SEND Last.
    pub const RC_SEND_LAST: Opcode = Opcode(0x02);
    /// RC SEND Last with Immediate.
    pub const RC_SEND_LAST_IMM: Opcode = Opcode(0x03);
    /// RC SEND Only.
    pub const RC_SEND_ONLY: Opcode = Opcode(0x04);
    /// RC SEND Only with Immediate.
    pub const RC_SEND_ONLY_IMM: Opcode = Opcode(0x05);
    /// RC RDMA WRITE First.
    pub const RC_RDMA_WRITE_FIRST: Opcode = Opcode(0x06);
    /// RC RDMA WRITE Middle.
    pub const RC_RDMA_WRITE_MIDDLE: Opcode = Opcode(0x07);
    /// RC RDMA WRITE Last.
    pub const RC_RDMA_WRITE_LAST: Opcode = Opcode(0x08);
    /// RC RDMA WRITE Last with Immediate.
    pub const RC_RDMA_WRITE_LAST_IMM: Opcode = Opcode(0x09);
    /// RC RDMA WRITE Only.
    pub const RC_RDMA_WRITE_ONLY: Opcode = Opcode(0x0a);
    /// RC RDMA WRITE Only with Immediate.
    pub const RC_RDMA_WRITE_ONLY_IMM: Opcode = Opcode(0x0b);
    /// RC RDMA READ Request.
    pub const RC_RDMA_READ_REQUEST: Opcode = Opcode(0x0c);
    /// RC RDMA READ response First.
    pub const RC_RDMA_READ_RESPONSE_FIRST: Opcode = Opcode(0x0d);
    /// RC RDMA READ response Middle.
    pub const RC_RDMA_READ_RESPONSE_MIDDLE: Opcode = Opcode(0x0e);
    /// RC RDMA READ response Last.
    pub const RC_RDMA_READ_RESPONSE_LAST: Opcode = Opcode(0x0f);
    /// RC RDMA READ response Only.
    pub const RC_RDMA_READ_RESPONSE_ONLY: Opcode = Opcode(0x10);
    /// RC Acknowledge.
    pub const RC_ACKNOWLEDGE: Opcode = Opcode(0x11);
    /// UD SEND Only.
    pub const UD_SEND_ONLY: Opcode = Opcode(0x64);
    /// UD SEND Only with Immediate.
    pub const UD_SEND_ONLY_IMM: Opcode = Opcode(0x65);

    /// The extended transport headers packets with this opcode carry after the BTH,
    /// in order (IBTA §9.2.1 and the per-opcode header lists of §9.3), or `None` for
    /// an opcode this layer does not build or accept.
    pub const fn ext_kind(self) -> Option<ExtKind> {
        Some(match self.0 {
            // SEND First/Middle/Last/Only, RDMA WRITE Middle/Last, READ response Middle.
            0x00 | 0x01 | 0x02 | 0x04 | 0x07 | 0x08 | 0x0e => ExtKind::None,
            0x03 | 0x05 | 0x09 => ExtKind::Imm,
            0x06 | 0x0a | 0x0c => ExtKind::Reth,
            0x0b => ExtKind::RethImm,
            0x0d | 0x0f | 0x10 | 0x11 => ExtKind::Aeth,
            0x64 => ExtKind::Deth,
            0x65 => ExtKind::DethImm,
            _ => return None,
        })
    }

    /// Whether packets with this opcode may carry payload: all handled ones but
    /// ACKNOWLEDGE and RDMA READ Request, which end at their last header.
    pub const fn has_payload(self) -> bool {
        !matches!(self.0, 0x0c | 0x11)
    }

    /// The name IBTA gives the opcode, if this layer knows it.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "RC SEND_FIRST",
            0x01 => "RC SEND_MIDDLE",
            0x02 => "RC SEND_LAST",
            0x03 => "RC SEND_LAST_WITH_IMMEDIATE",
            0x04 => "RC SEND_ONLY",
            0x05 => "RC SEND_ONLY_WITH_IMMEDIATE",
            0x06 => "RC RDMA_WRITE_FIRST",
            0x07 => "RC RDMA_WRITE_MIDDLE",
            0x08 => "RC RDMA_WRITE_LAST",
            0x09 => "RC RDMA_WRITE_LAST_WITH_IMMEDIATE",
            0x0a => "RC RDMA_WRITE_ONLY",
            0x0b => "RC RDMA_WRITE_ONLY_WITH_IMMEDIATE",
            0x0c => "RC RDMA_READ_REQUEST",
            0x0d => "RC RDMA_READ_RESPONSE_FIRST",
            0x0e => "RC RDMA_READ_RESPONSE_MIDDLE",
            0x0f => "RC RDMA_READ_RESPONSE_LAST",
            0x10 => "RC RDMA_READ_RESPONSE_ONLY",
            0x11 => "RC ACKNOWLEDGE",
            0x64 => "UD SEND_ONLY",
            0x65 => "UD SEND_ONLY_WITH_IMMEDIATE",
            _ => return None,
        })
    }
}

impl fmt::Debug for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Opcode({:#04x} {name})", self.0),
            None => write!(f, "Opcode({:#04x})", self.0),
        }
    }
}

/// The base transport header's fields (IBTA §9.2). resv8a and resv7 are ignored when
/// parsed and written as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BthRepr {
    /// The operation (§9.2.1).
    pub opcode: Opcode,
    /// Solicited event (§9.2.2).
    pub se: bool,
    /// MigReq, path migration state (§9.2.3).
    pub mig_req: bool,
    /// Pad bytes after the payload to a 4-byte boundary, 2 bits (§9.2.4).
    pub pad_cnt: u8,
    /// Transport header version, 4 bits; 0 is the only version (§9.2.5).
    pub tver: u8,
    /// Partition key (§9.2.6).
    pub p_key: u16,
    /// Destination QP, 24 bits (§9.2.7).
    pub dest_qp: u32,
    /// AckReq: the responder is to acknowledge this packet (§9.2.8).
    pub ack_req: bool,
    /// Packet sequence number, 24 bits (§9.2.9).
    pub psn: u32,
}

impl BthRepr {
    /// Length of the header in bytes.
    pub const LEN: usize = field::PSN.end;

    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<BthRepr, WireError> {
        check_len(buf, Self::LEN)?;
        let flags = buf[field::FLAGS];
        Ok(BthRepr {
            opcode: Opcode(buf[field::OPCODE]),
            se: flags & field::SE != 0,
            mig_req: flags & field::MIG_REQ != 0,
            pad_cnt: (flags >> 4) & 0x03,
            tver: flags & 0x0f,
            p_key: be16(buf, field::P_KEY),
            dest_qp: be24(buf, field::DEST_QP),
            ack_req: buf[field::ACK_REQ] & field::A != 0,
            psn: be24(buf, field::PSN),
        })
    }

    /// `Ok(())` if every value fits its field.
    pub fn check(&self) -> Result<(), WireError> {
        check_bits("BTH.PadCnt", self.pad_cnt.into(), 2)?;
        check_bits("BTH.TVer", self.tver.into(), 4)?;
        check_bits("BTH.DestQP", self.dest_qp.into(), 24)?;
        check_bits("BTH.PSN", self.psn.into(), 24)
    }

    /// Writes the header into the first [`BthRepr::LEN`] bytes of `buf`; values wider
    /// than their field are cut to it ([`BthRepr::check`] finds them first).
    ///
    /// # Panics
    /// If `buf` is shorter than [`BthRepr::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::OPCODE] = self.opcode.0;
        let mut flags = ((self.pad_cnt & 0x03) << 4) | (self.tver & 0x0f);
        if self.se {
            flags |= field::SE;
        }
        if self.mig_req {
            flags |= field::MIG_REQ;
        }
        buf[field::FLAGS] = flags;
        buf[field::P_KEY].copy_from_slice(&self.p_key.to_be_bytes());
        buf[field::RESV8A] = 0;
        put_be24(buf, field::DEST_QP, self.dest_qp);
        buf[field::ACK_REQ] = if self.ack_req { field::A } else { 0 };
        put_be24(buf, field::PSN, self.psn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RC RDMA WRITE Only; SE, M; PadCnt 2; TVer 0; P_Key 0x8001; DestQP 0x000ABC;
    /// AckReq; PSN 0x123456.
    static BYTES: [u8; 12] = [
        0x0a, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x0a, 0xbc, 0x80, 0x12, 0x34, 0x56,
    ];

    fn repr() -> BthRepr {
        BthRepr {
            opcode: Opcode::RC_RDMA_WRITE_ONLY,
            se: true,
            mig_req: true,
            pad_cnt: 2,
            tver: 0,
            p_key: 0x8001,
            dest_qp: 0xabc,
            ack_req: true,
            psn: 0x12_3456,
        }
    }

    #[test]
    fn test_parse() {
        assert_eq!(BthRepr::parse(&BYTES), Ok(repr()));
    }

    #[test]
    fn test_emit() {
        let mut buf = [0xa5u8; 12];
        repr().emit(&mut buf);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_flags_one_at_a_time() {
        let quiet = BthRepr {
            se: false,
            mig_req: false,
            pad_cnt: 0,
            ack_req: false,
            ..repr()
        };
        let mut buf = [0xa5u8; 12];
        quiet.emit(&mut buf);
        assert_eq!((buf[1], buf[8]), (0x00, 0x00));
        for (r, byte, value) in [
            (BthRepr { se: true, ..quiet }, 1, 0x80),
            (
                BthRepr {
                    mig_req: true,
                    ..quiet
                },
                1,
                0x40,
            ),
            (
                BthRepr {
                    pad_cnt: 3,
                    ..quiet
                },
                1,
                0x30,
            ),
            (BthRepr { tver: 0xf, ..quiet }, 1, 0x0f),
            (
                BthRepr {
                    ack_req: true,
                    ..quiet
                },
                8,
                0x80,
            ),
        ] {
            r.emit(&mut buf);
            assert_eq!(buf[byte], value, "{r:?}");
            assert_eq!(BthRepr::parse(&buf), Ok(r));
        }
    }

    #[test]
    fn test_reserved_fields_are_ignored_and_written_as_zero() {
        let mut bytes = BYTES;
        bytes[4] = 0xff; // resv8a
        bytes[8] |= 0x7f; // resv7
        assert_eq!(BthRepr::parse(&bytes), Ok(repr()));
        let mut buf = [0xffu8; 12];
        repr().emit(&mut buf);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            BthRepr::parse(&BYTES[..11]),
            Err(WireError::Truncated {
                needed: 12,
                got: 11
            })
        );
    }

    #[test]
    fn test_check() {
        assert_eq!(repr().check(), Ok(()));
        let psn = BthRepr {
            psn: 1 << 24,
            ..repr()
        };
        assert!(matches!(
            psn.check(),
            Err(WireError::OutOfRange {
                field: "BTH.PSN",
                ..
            })
        ));
        let qp = BthRepr {
            dest_qp: 1 << 24,
            ..repr()
        };
        assert!(qp.check().is_err());
    }

    #[test]
    fn test_opcode_values_and_headers() {
        // IBTA §9.2.1: the values, and the extended headers each carries.
        let table = [
            (Opcode::RC_SEND_FIRST, 0x00, ExtKind::None, true),
            (Opcode::RC_SEND_MIDDLE, 0x01, ExtKind::None, true),
            (Opcode::RC_SEND_LAST, 0x02, ExtKind::None, true),
            (Opcode::RC_SEND_LAST_IMM, 0x03, ExtKind::Imm, true),
            (Opcode::RC_SEND_ONLY, 0x04, ExtKind::None, true),
            (Opcode::RC_SEND_ONLY_IMM, 0x05, ExtKind::Imm, true),
            (Opcode::RC_RDMA_WRITE_FIRST, 0x06, ExtKind::Reth, true),
            (Opcode::RC_RDMA_WRITE_MIDDLE, 0x07, ExtKind::None, true),
            (Opcode::RC_RDMA_WRITE_LAST, 0x08, ExtKind::None, true),
            (Opcode::RC_RDMA_WRITE_LAST_IMM, 0x09, ExtKind::Imm, true),
            (Opcode::RC_RDMA_WRITE_ONLY, 0x0a, ExtKind::Reth, true),
            (Opcode::RC_RDMA_WRITE_ONLY_IMM, 0x0b, ExtKind::RethImm, true),
            (Opcode::RC_RDMA_READ_REQUEST, 0x0c, ExtKind::Reth, false),
            (
                Opcode::RC_RDMA_READ_RESPONSE_FIRST,
                0x0d,
                ExtKind::Aeth,
                true,
            ),
            (
                Opcode::RC_RDMA_READ_RESPONSE_MIDDLE,
                0x0e,
                ExtKind::None,
                true,
            ),
            (
                Opcode::RC_RDMA_READ_RESPONSE_LAST,
                0x0f,
                ExtKind::Aeth,
                true,
            ),
            (
                Opcode::RC_RDMA_READ_RESPONSE_ONLY,
                0x10,
                ExtKind::Aeth,
                true,
            ),
            (Opcode::RC_ACKNOWLEDGE, 0x11, ExtKind::Aeth, false),
            (Opcode::UD_SEND_ONLY, 0x64, ExtKind::Deth, true),
            (Opcode::UD_SEND_ONLY_IMM, 0x65, ExtKind::DethImm, true),
        ];
        for (op, value, kind, payload) in table {
            assert_eq!(op.0, value);
            assert_eq!(op.ext_kind(), Some(kind), "{op:?}");
            assert_eq!(op.has_payload(), payload, "{op:?}");
            assert!(op.name().is_some());
        }
        let handled = (0..=255u8)
            .filter(|&v| Opcode(v).ext_kind().is_some())
            .count();
        assert_eq!(
            handled,
            table.len(),
            "no opcode outside the table is accepted"
        );
        // Atomics, invalidate, UC, RD, CNP are not handled.
        for v in [0x12, 0x13, 0x14, 0x16, 0x17, 0x20, 0x40, 0x80, 0x66] {
            assert_eq!(Opcode(v).ext_kind(), None);
        }
        assert_eq!(format!("{:?}", Opcode(0x64)), "Opcode(0x64 UD SEND_ONLY)");
        assert_eq!(format!("{:?}", Opcode(0x13)), "Opcode(0x13)");
    }
}
