//! A whole IBA transport packet: LRH, optional GRH, BTH, extended headers, payload,
//! pad, ICRC and VCRC (IBTA vol. 1 §5.3 for the layout, §7.7.8 PktLen, §8.3.1
//! PayLen, §9.2.4 PadCnt, §7.8 CRCs).

use super::crc::{self, ICRC_LEN, VCRC_LEN};
use super::grh::{GrhRepr, NXT_HDR_IBA};
use super::{BthRepr, ExtHeaders, Lnh, LrhRepr, WireError, check_len};

/// The most LRH.PktLen can express, in 4-byte words.
const MAX_PKT_WORDS: usize = 0x7ff;

/// A local (LRH, BTH) or global (LRH, GRH, BTH) packet.
///
/// [`IbPacket::encode`] derives the length fields from the contents: LRH.LNH from
/// whether there is a GRH, LRH.PktLen, GRH.PayLen and BTH.PadCnt. The values in
/// `lrh`, `grh` and `bth` for those are ignored; [`IbPacket::sealed`] returns the
/// packet with them filled in, as [`IbPacket::decode`] would return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IbPacket {
    /// Local route header.
    pub lrh: LrhRepr,
    /// Global route header, for a global packet.
    pub grh: Option<GrhRepr>,
    /// Base transport header.
    pub bth: BthRepr,
    /// The extended headers `bth.opcode` carries.
    pub ext: ExtHeaders,
    /// The payload, without pad bytes.
    pub payload: Vec<u8>,
}

impl IbPacket {
    /// Bytes of headers: LRH, GRH if any, BTH and extended headers.
    pub fn header_len(&self) -> usize {
        let grh = if self.grh.is_some() { GrhRepr::LEN } else { 0 };
        LrhRepr::LEN + grh + BthRepr::LEN + self.ext.len()
    }

    /// Pad bytes after the payload, to a 4-byte boundary (§9.2.4).
    pub fn pad_len(&self) -> usize {
        self.payload.len().wrapping_neg() % 4
    }

    /// Bytes of the encoded packet, VCRC included.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len() + self.pad_len() + ICRC_LEN + VCRC_LEN
    }

    /// The packet with LNH, PktLen, PayLen and PadCnt set from its contents, after
    /// checking that the extended headers match the opcode and every value fits.
    pub fn sealed(&self) -> Result<IbPacket, WireError> {
        let (lrh, grh, bth) = self.sealed_headers()?;
        Ok(IbPacket {
            lrh,
            grh,
            bth,
            ext: self.ext,
            payload: self.payload.clone(),
        })
    }

    fn sealed_headers(&self) -> Result<(LrhRepr, Option<GrhRepr>, BthRepr), WireError> {
        let opcode = self.bth.opcode;
        let kind = opcode
            .ext_kind()
            .ok_or(WireError::UnsupportedOpcode(opcode.0))?;
        if kind != self.ext.kind() {
            return Err(WireError::ExtMismatch { opcode: opcode.0 });
        }
        if !opcode.has_payload() && !self.payload.is_empty() {
            return Err(WireError::UnexpectedPayload {
                opcode: opcode.0,
                len: self.payload.len(),
            });
        }
        self.lrh.check()?;
        self.bth.check()?;
        self.ext.check()?;
        if let Some(grh) = &self.grh {
            grh.check()?;
        }

        let through_icrc = self.buffer_len() - VCRC_LEN;
        let words = through_icrc / 4;
        if words > MAX_PKT_WORDS {
            return Err(WireError::TooLong { len: through_icrc });
        }
        let lrh = LrhRepr {
            lnh: if self.grh.is_some() {
                Lnh::Global
            } else {
                Lnh::Local
            },
            pkt_len: words as u16,
            ..self.lrh
        };
        // A global packet's header_len() counts the GRH, so this does not underflow,
        // and it fits: fewer than 2047 * 4 bytes.
        let grh = self.grh.map(|g| GrhRepr {
            pay_len: (through_icrc - LrhRepr::LEN - GrhRepr::LEN) as u16,
            ..g
        });
        let bth = BthRepr {
            pad_cnt: self.pad_len() as u8,
            ..self.bth
        };
        Ok((lrh, grh, bth))
    }

    /// The packet's bytes, LRH through VCRC, with the length fields, pad bytes (zero)
    /// and both CRCs computed.
    ///
    /// Errors: an opcode this layer does not handle, extended headers that are not
    /// the opcode's, payload on an opcode that carries none, a value too wide for its
    /// field, or more than 2047 words.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let (lrh, grh, bth) = self.sealed_headers()?;
        let mut buf = vec![0u8; self.buffer_len()];
        lrh.emit(&mut buf);
        let mut at = LrhRepr::LEN;
        if let Some(grh) = &grh {
            grh.emit(&mut buf[at..]);
            at += GrhRepr::LEN;
        }
        bth.emit(&mut buf[at..]);
        at += BthRepr::LEN;
        self.ext.emit(&mut buf[at..]);
        at += self.ext.len();
        buf[at..at + self.payload.len()].copy_from_slice(&self.payload);

        let icrc_at = buf.len() - VCRC_LEN - ICRC_LEN;
        let icrc = crc::icrc(&buf[..icrc_at])?;
        buf[icrc_at..icrc_at + ICRC_LEN].copy_from_slice(&icrc.to_le_bytes());
        let vcrc_at = buf.len() - VCRC_LEN;
        let vcrc = crc::vcrc(&buf[..vcrc_at]);
        buf[vcrc_at..].copy_from_slice(&vcrc.to_le_bytes());
        Ok(buf)
    }

    /// Reads a whole packet, LRH through VCRC, as a receiving port would: the length
    /// must be the one LRH.PktLen gives, the VCRC and then the ICRC must be right,
    /// and the headers must be those of an IBA local or global packet with an opcode
    /// this layer handles. Never panics.
    pub fn decode(buf: &[u8]) -> Result<IbPacket, WireError> {
        let lrh = LrhRepr::parse(buf)?;
        if lrh.lver != 0 {
            return Err(WireError::UnsupportedVersion {
                field: "LVer",
                version: lrh.lver,
            });
        }
        let global = match lrh.lnh {
            Lnh::Local => false,
            Lnh::Global => true,
            other => return Err(WireError::UnsupportedLnh(other.bits())),
        };
        if usize::from(lrh.pkt_len) * 4 + VCRC_LEN != buf.len() {
            return Err(WireError::BadPktLen {
                pkt_len: lrh.pkt_len,
                buf_len: buf.len(),
            });
        }
        let grh_len = if global { GrhRepr::LEN } else { 0 };
        check_len(
            buf,
            LrhRepr::LEN + grh_len + BthRepr::LEN + ICRC_LEN + VCRC_LEN,
        )?;

        let vcrc_at = buf.len() - VCRC_LEN;
        let found = u16::from_le_bytes([buf[vcrc_at], buf[vcrc_at + 1]]);
        let computed = crc::vcrc(&buf[..vcrc_at]);
        if found != computed {
            return Err(WireError::BadVcrc { computed, found });
        }
        let icrc_at = vcrc_at - ICRC_LEN;
        let mut icrc = [0u8; ICRC_LEN];
        icrc.copy_from_slice(&buf[icrc_at..vcrc_at]);
        let found = u32::from_le_bytes(icrc);
        let computed = crc::icrc(&buf[..icrc_at])?;
        if found != computed {
            return Err(WireError::BadIcrc { computed, found });
        }

        let mut at = LrhRepr::LEN;
        let grh = if global {
            let grh = GrhRepr::parse(&buf[at..])?;
            if grh.nxt_hdr != NXT_HDR_IBA {
                return Err(WireError::UnsupportedNextHeader(grh.nxt_hdr));
            }
            let expected = buf.len() - VCRC_LEN - LrhRepr::LEN - GrhRepr::LEN;
            if usize::from(grh.pay_len) != expected {
                return Err(WireError::BadPayLen {
                    pay_len: grh.pay_len,
                    expected,
                });
            }
            at += GrhRepr::LEN;
            Some(grh)
        } else {
            None
        };
        let bth = BthRepr::parse(&buf[at..icrc_at])?;
        if bth.tver != 0 {
            return Err(WireError::UnsupportedVersion {
                field: "TVer",
                version: bth.tver,
            });
        }
        at += BthRepr::LEN;
        let kind = bth
            .opcode
            .ext_kind()
            .ok_or(WireError::UnsupportedOpcode(bth.opcode.0))?;
        let ext = ExtHeaders::parse(kind, &buf[at..icrc_at])?;
        at += kind.len();

        let rest = &buf[at..icrc_at];
        if !bth.opcode.has_payload() && !rest.is_empty() {
            return Err(WireError::UnexpectedPayload {
                opcode: bth.opcode.0,
                len: rest.len(),
            });
        }
        let payload_len = rest
            .len()
            .checked_sub(usize::from(bth.pad_cnt))
            .ok_or(WireError::BadPadCnt(bth.pad_cnt))?;
        Ok(IbPacket {
            lrh,
            grh,
            bth,
            ext,
            payload: rest[..payload_len].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::crc::{icrc, vcrc};
    use crate::wire::{AethRepr, DethRepr, Gid, ImmDt, Opcode, RethRepr};

    // Whole packets built outside this crate, field by field from IBTA vol. 1 with
    // Python's struct module; ICRC by zlib.crc32 over the masked copy, VCRC by
    // python3-crcmod (see crc.rs). Both CRCs go on the wire little-endian.

    /// Local UD SEND Only: VL 3, SL 5, DLID 0x11, SLID 0x22, PktLen 10; SE clear,
    /// M clear, PadCnt 3, P_Key 0xFFFF, DestQP 0x123, AckReq set (meaningless on
    /// UD, but a bit all the same), PSN 7; Q_Key 0x80010000, SrcQP 0x45; payload
    /// DE AD BE EF 42.
    const LOCAL_UD: [u8; 42] = [
        0x30, 0x52, 0x00, 0x11, 0x00, 0x0a, 0x00, 0x22, // LRH
        0x64, 0x30, 0xff, 0xff, 0x00, 0x00, 0x01, 0x23, 0x80, 0x00, 0x00, 0x07, // BTH
        0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x45, // DETH
        0xde, 0xad, 0xbe, 0xef, 0x42, 0x00, 0x00, 0x00, // payload, pad
        0x00, 0x00, 0x00, 0x00, // ICRC (computed by the test that uses it)
        0x00, 0x00, // VCRC
    ];

    /// [`LOCAL_UD`] as the Python generator produced it. The generator wrote the
    /// BTH flags byte as SE set (0xB0) and AckReq clear; this fixture is that packet.
    const LOCAL_UD_PY: [u8; 42] = [
        0x30, 0x52, 0x00, 0x11, 0x00, 0x0a, 0x00, 0x22, // LRH
        0x64, 0xb0, 0xff, 0xff, 0x00, 0x00, 0x01, 0x23, 0x00, 0x00, 0x00, 0x07, // BTH
        0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x45, // DETH
        0xde, 0xad, 0xbe, 0xef, 0x42, 0x00, 0x00, 0x00, // payload, pad
        0xe1, 0x61, 0x9e, 0x92, // ICRC 0x929E61E1
        0xe8, 0xce, // VCRC 0xCEE8
    ];

    fn local_ud() -> IbPacket {
        IbPacket {
            lrh: LrhRepr {
                vl: 3,
                lver: 0,
                sl: 5,
                lnh: Lnh::Local,
                dlid: 0x11,
                pkt_len: 10,
                slid: 0x22,
            },
            grh: None,
            bth: BthRepr {
                opcode: Opcode::UD_SEND_ONLY,
                se: true,
                mig_req: false,
                pad_cnt: 3,
                tver: 0,
                p_key: 0xffff,
                dest_qp: 0x123,
                ack_req: false,
                psn: 7,
            },
            ext: ExtHeaders::Deth(DethRepr {
                q_key: 0x8001_0000,
                src_qp: 0x45,
            }),
            payload: vec![0xde, 0xad, 0xbe, 0xef, 0x42],
        }
    }

    /// Global RC RDMA WRITE Only: VL 0, SL 2, DLID 4, SLID 3, PktLen 22; GRH TClass
    /// 0x5A, FlowLabel 0x12345, PayLen 40, HopLmt 64, SGID fe80::2:c903:0:1111, DGID
    /// fe80::2:c903:0:2222; BTH M set, P_Key 0x8001, DestQP 0xABC, AckReq, PSN
    /// 0x123456; RETH VA 0x7F0012345000, R_Key 0xABCD, DMALen 8; payload 01..08.
    const GLOBAL_WRITE: [u8; 90] = [
        0x00, 0x23, 0x00, 0x04, 0x00, 0x16, 0x00, 0x03, // LRH
        0x65, 0xa1, 0x23, 0x45, 0x00, 0x28, 0x1b, 0x40, // GRH
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc9, 0x03, 0x00, 0x00, 0x11,
        0x11, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc9, 0x03, 0x00, 0x00,
        0x22, 0x22, // SGID, DGID
        0x0a, 0x40, 0x80, 0x01, 0x00, 0x00, 0x0a, 0xbc, 0x80, 0x12, 0x34, 0x56, // BTH
        0x00, 0x00, 0x7f, 0x00, 0x12, 0x34, 0x50, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x00, 0x00, 0x00,
        0x08, // RETH
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // payload
        0x92, 0xb9, 0x84, 0x25, // ICRC 0x2584B992
        0xb9, 0xed, // VCRC 0xEDB9
    ];

    fn global_write() -> IbPacket {
        IbPacket {
            lrh: LrhRepr {
                vl: 0,
                lver: 0,
                sl: 2,
                lnh: Lnh::Global,
                dlid: 4,
                pkt_len: 22,
                slid: 3,
            },
            grh: Some(GrhRepr {
                tclass: 0x5a,
                flow_label: 0x12345,
                pay_len: 40,
                nxt_hdr: NXT_HDR_IBA,
                hop_lmt: 64,
                sgid: Gid::new(0xfe80_0000_0000_0000, 0x0002_c903_0000_1111),
                dgid: Gid::new(0xfe80_0000_0000_0000, 0x0002_c903_0000_2222),
            }),
            bth: BthRepr {
                opcode: Opcode::RC_RDMA_WRITE_ONLY,
                se: false,
                mig_req: true,
                pad_cnt: 0,
                tver: 0,
                p_key: 0x8001,
                dest_qp: 0xabc,
                ack_req: true,
                psn: 0x12_3456,
            },
            ext: ExtHeaders::Reth(RethRepr {
                va: 0x0000_7f00_1234_5000,
                r_key: 0xabcd,
                dma_len: 8,
            }),
            payload: (1..=8).collect(),
        }
    }

    /// Sets `p`'s VCRC to match its bytes (a link that recomputes it).
    fn fix_vcrc(p: &mut [u8]) {
        let at = p.len() - 2;
        let v = vcrc(&p[..at]);
        p[at..].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets `p`'s ICRC and VCRC to match its bytes.
    fn fix_crcs(p: &mut [u8]) {
        let at = p.len() - 6;
        if let Ok(i) = icrc(&p[..at]) {
            p[at..at + 4].copy_from_slice(&i.to_le_bytes());
        }
        fix_vcrc(p);
    }

    #[test]
    fn test_encode_matches_independent_bytes() {
        assert_eq!(local_ud().encode(), Ok(LOCAL_UD_PY.to_vec()));
        assert_eq!(global_write().encode(), Ok(GLOBAL_WRITE.to_vec()));
    }

    #[test]
    fn test_decode_independent_bytes() {
        assert_eq!(IbPacket::decode(&LOCAL_UD_PY), Ok(local_ud()));
        assert_eq!(IbPacket::decode(&GLOBAL_WRITE), Ok(global_write()));
    }

    #[test]
    fn test_ack_req_bit_on_its_own() {
        // LOCAL_UD differs from the Python packet in SE (clear) and AckReq (set).
        let mut p = LOCAL_UD;
        fix_crcs(&mut p);
        let decoded = IbPacket::decode(&p).unwrap();
        assert!(!decoded.bth.se && decoded.bth.ack_req);
        let mut expected = local_ud();
        expected.bth.se = false;
        expected.bth.ack_req = true;
        assert_eq!(decoded, expected);
        assert_eq!(expected.encode(), Ok(p.to_vec()));
    }

    #[test]
    fn test_encode_computes_length_fields() {
        let mut p = global_write();
        p.lrh.pkt_len = 0;
        p.lrh.lnh = Lnh::Raw;
        p.bth.pad_cnt = 3;
        if let Some(g) = &mut p.grh {
            g.pay_len = 9999;
        }
        assert_eq!(p.encode(), Ok(GLOBAL_WRITE.to_vec()));
        assert_eq!(p.sealed(), Ok(global_write()));
    }

    #[test]
    fn test_every_payload_length_round_trips() {
        for len in 0..=9 {
            let mut p = local_ud();
            p.payload = (0..len).map(|i| 0xa0 | i).collect();
            let bytes = p.encode().unwrap();
            assert_eq!(bytes.len(), p.buffer_len());
            assert_eq!(
                bytes.len() % 4,
                2,
                "header + payload + pad + ICRC are whole words"
            );
            let sealed = p.sealed().unwrap();
            assert_eq!(
                usize::from(sealed.bth.pad_cnt),
                (4 - usize::from(len) % 4) % 4
            );
            assert_eq!(usize::from(sealed.lrh.pkt_len) * 4 + 2, bytes.len());
            assert_eq!(IbPacket::decode(&bytes), Ok(sealed));
        }
    }

    fn rc(opcode: Opcode, ext: ExtHeaders, payload: Vec<u8>) -> IbPacket {
        let mut p = global_write();
        p.grh = None;
        p.bth.opcode = opcode;
        p.ext = ext;
        p.payload = payload;
        p
    }

    #[test]
    fn test_every_header_combination_round_trips() {
        let reth = RethRepr {
            va: 0x1000,
            r_key: 0x77,
            dma_len: 512,
        };
        let aeth = AethRepr {
            syndrome: AethRepr::SYNDROME_ACK_NO_CREDIT,
            msn: 0xab_cdef,
        };
        let deth = DethRepr {
            q_key: 0x8001_0000,
            src_qp: 1,
        };
        let imm = ImmDt(0x0102_0304);
        for p in [
            rc(Opcode::RC_SEND_ONLY, ExtHeaders::None, vec![1, 2, 3]),
            rc(Opcode::RC_SEND_ONLY_IMM, ExtHeaders::Imm(imm), vec![4; 64]),
            rc(
                Opcode::RC_RDMA_WRITE_ONLY_IMM,
                ExtHeaders::RethImm(reth, imm),
                vec![5; 6],
            ),
            rc(Opcode::RC_RDMA_READ_REQUEST, ExtHeaders::Reth(reth), vec![]),
            rc(
                Opcode::RC_RDMA_READ_RESPONSE_ONLY,
                ExtHeaders::Aeth(aeth),
                vec![6; 512],
            ),
            rc(
                Opcode::RC_RDMA_READ_RESPONSE_MIDDLE,
                ExtHeaders::None,
                vec![7; 256],
            ),
            rc(Opcode::RC_ACKNOWLEDGE, ExtHeaders::Aeth(aeth), vec![]),
            rc(
                Opcode::UD_SEND_ONLY_IMM,
                ExtHeaders::DethImm(deth, imm),
                vec![8; 256],
            ),
        ] {
            let bytes = p.encode().unwrap();
            assert_eq!(
                IbPacket::decode(&bytes),
                Ok(p.sealed().unwrap()),
                "{:?}",
                p.bth.opcode
            );
        }
    }

    #[test]
    fn test_encode_refuses_inconsistent_packets() {
        let reth = RethRepr {
            va: 0,
            r_key: 0,
            dma_len: 0,
        };
        assert_eq!(
            rc(Opcode::RC_SEND_ONLY, ExtHeaders::Reth(reth), vec![]).encode(),
            Err(WireError::ExtMismatch { opcode: 0x04 })
        );
        assert_eq!(
            rc(Opcode(0x13), ExtHeaders::None, vec![]).encode(),
            Err(WireError::UnsupportedOpcode(0x13))
        );
        let aeth = AethRepr {
            syndrome: 0,
            msn: 0,
        };
        assert_eq!(
            rc(Opcode::RC_ACKNOWLEDGE, ExtHeaders::Aeth(aeth), vec![0]).encode(),
            Err(WireError::UnexpectedPayload {
                opcode: 0x11,
                len: 1
            })
        );
        let mut p = local_ud();
        p.bth.psn = 1 << 24;
        assert!(matches!(
            p.encode(),
            Err(WireError::OutOfRange {
                field: "BTH.PSN",
                ..
            })
        ));
        let mut p = local_ud();
        p.payload = vec![0; 2047 * 4];
        assert!(matches!(p.encode(), Err(WireError::TooLong { .. })));
        // The largest packet PktLen can express still encodes.
        p.payload = vec![0; 2047 * 4 - p.header_len() - 4];
        let bytes = p.encode().unwrap();
        assert_eq!(bytes.len(), 2047 * 4 + 2);
        assert_eq!(
            IbPacket::decode(&bytes).map(|d| d.payload.len()),
            Ok(p.payload.len())
        );
    }

    #[test]
    fn test_decode_checks_crcs() {
        // A flipped payload bit: the VCRC catches it first.
        let mut p = LOCAL_UD_PY;
        p[30] ^= 0x01;
        assert_eq!(
            IbPacket::decode(&p),
            Err(WireError::BadVcrc {
                computed: vcrc(&p[..40]),
                found: 0xcee8
            })
        );
        // Recompute the VCRC, as a link would after corrupting in a switch: the
        // ICRC catches it.
        fix_vcrc(&mut p);
        assert!(matches!(
            IbPacket::decode(&p),
            Err(WireError::BadIcrc {
                found: 0x929e_61e1,
                ..
            })
        ));
        // A switch changing the VL recomputes only the VCRC; the ICRC still holds.
        let mut p = LOCAL_UD_PY;
        p[0] = 0xf0;
        fix_vcrc(&mut p);
        assert_eq!(IbPacket::decode(&p).map(|d| d.lrh.vl), Ok(15));
        // So does a router changing TClass, FlowLabel and HopLmt, and rebuilding the LRH.
        let mut p = GLOBAL_WRITE;
        p[0] = 0x10;
        p[1] = 0x43;
        p[2..4].copy_from_slice(&[0x00, 0x09]);
        p[6..8].copy_from_slice(&[0x00, 0x08]);
        p[8..12].copy_from_slice(&[0x60, 0x00, 0x00, 0x01]);
        p[15] = 63;
        fix_vcrc(&mut p);
        let d = IbPacket::decode(&p).unwrap();
        let g = d.grh.unwrap();
        assert_eq!((d.lrh.dlid, d.lrh.slid, d.lrh.sl, d.lrh.vl), (9, 8, 4, 1));
        assert_eq!((g.tclass, g.flow_label, g.hop_lmt), (0, 1, 63));
    }

    #[test]
    fn test_decode_checks_structure() {
        let check = |mutate: &dyn Fn(&mut Vec<u8>), want: WireError| {
            let mut p = GLOBAL_WRITE.to_vec();
            mutate(&mut p);
            fix_crcs(&mut p);
            assert_eq!(IbPacket::decode(&p), Err(want));
        };
        check(
            &|p| p[0] |= 0x01,
            WireError::UnsupportedVersion {
                field: "LVer",
                version: 1,
            },
        );
        check(&|p| p[1] &= 0xfc, WireError::UnsupportedLnh(0));
        check(
            &|p| p[5] = 0x17,
            WireError::BadPktLen {
                pkt_len: 0x17,
                buf_len: 90,
            },
        );
        check(
            &|p| p[8] = 0x45,
            WireError::UnsupportedVersion {
                field: "IPVer",
                version: 4,
            },
        );
        check(&|p| p[14] = 0x3b, WireError::UnsupportedNextHeader(0x3b));
        check(
            &|p| p[13] = 0x29,
            WireError::BadPayLen {
                pay_len: 0x29,
                expected: 40,
            },
        );
        check(
            &|p| p[49] |= 0x01,
            WireError::UnsupportedVersion {
                field: "TVer",
                version: 1,
            },
        );
        check(&|p| p[48] = 0x14, WireError::UnsupportedOpcode(0x14));
        // READ request: RETH and then nothing, but 8 bytes of payload follow.
        check(
            &|p| p[48] = 0x0c,
            WireError::UnexpectedPayload {
                opcode: 0x0c,
                len: 8,
            },
        );
        // ACKNOWLEDGE: AETH and then nothing, but 20 bytes follow.
        check(
            &|p| p[48] = 0x11,
            WireError::UnexpectedPayload {
                opcode: 0x11,
                len: 20,
            },
        );

        // PadCnt larger than what follows the headers.
        let mut p = rc(Opcode::RC_SEND_ONLY, ExtHeaders::None, vec![])
            .encode()
            .unwrap();
        p[9] |= 0x30;
        fix_crcs(&mut p);
        assert_eq!(IbPacket::decode(&p), Err(WireError::BadPadCnt(3)));
    }

    #[test]
    fn test_decode_truncated_packets() {
        for bytes in [&LOCAL_UD_PY[..], &GLOBAL_WRITE[..]] {
            for len in 0..bytes.len() {
                assert!(IbPacket::decode(&bytes[..len]).is_err(), "{len} bytes");
            }
            // Cut at a word boundary with PktLen, PayLen and the CRCs made to agree:
            // either refused, or a shorter packet of the same kind.
            let original = IbPacket::decode(bytes).unwrap();
            for len in (0..bytes.len() - 6).filter(|l| l % 4 == 0) {
                let mut p = bytes[..len].to_vec();
                p.extend_from_slice(&[0; 6]);
                if len >= 8 {
                    p[4..6].copy_from_slice(&((len / 4 + 1) as u16).to_be_bytes());
                }
                if len >= 48 && p[1] & 3 == 3 {
                    p[12..14].copy_from_slice(&((len + 4 - 48) as u16).to_be_bytes());
                }
                fix_crcs(&mut p);
                match IbPacket::decode(&p) {
                    Ok(d) => {
                        assert_eq!(d.bth.opcode, original.bth.opcode);
                        assert!(d.payload.len() < original.payload.len(), "{len}");
                    }
                    Err(e) => assert!(len < original.header_len() + 4, "{len}: {e}"),
                }
            }
        }
    }

    /// xorshift64*, so the test needs no crate and runs the same every time.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn test_decode_never_panics_on_random_input() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for round in 0..20_000 {
            let len = (rng.next() % 200) as usize;
            let mut p = rng.bytes(len);
            if round % 2 == 1 && p.len() >= 8 {
                // Make the length and CRCs agree so the parsers past them run too,
                // with LVer 0, an IBA LNH and often a handled opcode.
                p[0] &= 0xf0;
                p[1] |= 0x02;
                let words = ((p.len() - 2) / 4) as u16;
                p.truncate(usize::from(words) * 4 + 2);
                p[4..6].copy_from_slice(&words.to_be_bytes());
                let bth = if p[1] & 1 == 1 { 48 } else { 8 };
                if p.len() > bth + 1 {
                    p[bth] = [0x04, 0x0a, 0x0c, 0x10, 0x11, 0x64, 0x65][(rng.next() % 7) as usize];
                    p[bth + 1] &= 0xf0;
                }
                if bth == 48 && p.len() >= 50 {
                    p[8] = 0x60 | (p[8] & 0x0f);
                    p[14] = NXT_HDR_IBA;
                    let pay_len = (p.len() - 2 - 48) as u16;
                    p[12..14].copy_from_slice(&pay_len.to_be_bytes());
                }
                if p.len() >= 6 {
                    fix_crcs(&mut p);
                }
            }
            if let Ok(d) = IbPacket::decode(&p) {
                accepted += 1;
                // Anything accepted encodes back to the same bytes, but for reserved
                // bits and pad contents, which the decoder ignores.
                let again = d.encode().unwrap();
                assert_eq!(again.len(), p.len());
                assert_eq!(IbPacket::decode(&again), Ok(d));
            }
        }
        assert!(
            accepted > 100,
            "the fixed-up half reaches the end: {accepted}"
        );
    }
}
