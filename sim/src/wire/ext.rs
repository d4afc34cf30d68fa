//! The extended transport headers that follow the BTH (IBTA vol. 1 §9.3): DETH for
//! datagrams, RETH for RDMA requests, AETH for acknowledgements and READ responses,
//! and ImmDt, immediate data. Which of them a packet carries is fixed by its opcode
//! ([`super::Opcode::ext_kind`]).

use super::{WireError, be24, be32, be64, check_bits, check_len, put_be24};

mod field {
    use crate::wire::Field;

    // DETH
    pub const Q_KEY: Field = 0..4;
    /// One reserved byte, then the 24-bit source QP.
    pub const SRC_QP: Field = 5..8;

    // RETH
    pub const VA: Field = 0..8;
    pub const R_KEY: Field = 8..12;
    pub const DMA_LEN: Field = 12..16;

    // AETH
    pub const SYNDROME: usize = 0;
    pub const MSN: Field = 1..4;

    // ImmDt
    pub const IMM: Field = 0..4;
}

/// Datagram extended transport header, 8 bytes (IBTA §9.3): carried by UD packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DethRepr {
    /// Queue key the destination QP checks; QP1, the GSI, uses 0x8001_0000.
    pub q_key: u32,
    /// Source QP, 24 bits.
    pub src_qp: u32,
}

impl DethRepr {
    /// Length of the header in bytes.
    pub const LEN: usize = field::SRC_QP.end;

    /// Reads the header at the start of `buf`; the reserved byte is ignored.
    pub fn parse(buf: &[u8]) -> Result<DethRepr, WireError> {
        check_len(buf, Self::LEN)?;
        Ok(DethRepr {
            q_key: be32(buf, field::Q_KEY),
            src_qp: be24(buf, field::SRC_QP),
        })
    }

    /// `Ok(())` if every value fits its field.
    pub fn check(&self) -> Result<(), WireError> {
        check_bits("DETH.SrcQP", self.src_qp.into(), 24)
    }

    /// Writes the header into the first [`DethRepr::LEN`] bytes of `buf`, the
    /// reserved byte as zero.
    ///
    /// # Panics
    /// If `buf` is shorter than [`DethRepr::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::Q_KEY].copy_from_slice(&self.q_key.to_be_bytes());
        buf[field::Q_KEY.end] = 0;
        put_be24(buf, field::SRC_QP, self.src_qp);
    }
}

/// RDMA extended transport header, 16 bytes (IBTA §9.3): the remote buffer of an RDMA
/// WRITE (first or only packet) or READ request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RethRepr {
    /// Virtual address of the remote buffer.
    pub va: u64,
    /// Remote key of the memory region.
    pub r_key: u32,
    /// Length of the whole transfer in bytes.
    pub dma_len: u32,
}

impl RethRepr {
    /// Length of the header in bytes.
    pub const LEN: usize = field::DMA_LEN.end;

    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<RethRepr, WireError> {
        check_len(buf, Self::LEN)?;
        Ok(RethRepr {
            va: be64(buf, field::VA),
            r_key: be32(buf, field::R_KEY),
            dma_len: be32(buf, field::DMA_LEN),
        })
    }

    /// Writes the header into the first [`RethRepr::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`RethRepr::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::VA].copy_from_slice(&self.va.to_be_bytes());
        buf[field::R_KEY].copy_from_slice(&self.r_key.to_be_bytes());
        buf[field::DMA_LEN].copy_from_slice(&self.dma_len.to_be_bytes());
    }
}

/// What an AETH syndrome says (IBTA §9.3, AETH): bits 6..5 select the kind, bits 4..0
/// its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// 00: ACK; the value is the credit count (0x1F: no credits advertised).
    Ack {
        /// Credit count code.
        credit: u8,
    },
    /// 01: RNR NAK; the value is the RNR timer code.
    RnrNak {
        /// Minimum RNR NAK timer code.
        timer: u8,
    },
    /// 11: NAK; the value is the NAK code (0 PSN sequence error, 1 invalid request,
    /// 2 remote access error, 3 remote operational error, 4 invalid RD request).
    Nak {
        /// NAK code.
        code: u8,
    },
    /// 10: reserved.
    Reserved(u8),
}

/// ACK extended transport header, 4 bytes (IBTA §9.3): in ACKNOWLEDGE packets and the
/// first, last and only packets of an RDMA READ response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AethRepr {
    /// Syndrome: kind and value ([`AethRepr::kind`]).
    pub syndrome: u8,
    /// Message sequence number, 24 bits: messages the responder has completed.
    pub msn: u32,
}

impl AethRepr {
    /// Length of the header in bytes.
    pub const LEN: usize = field::MSN.end;

    /// Syndrome of an ACK that advertises no end-to-end credits (credit code 0x1F).
    pub const SYNDROME_ACK_NO_CREDIT: u8 = 0x1f;

    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<AethRepr, WireError> {
        check_len(buf, Self::LEN)?;
        Ok(AethRepr {
            syndrome: buf[field::SYNDROME],
            msn: be24(buf, field::MSN),
        })
    }

    /// `Ok(())` if every value fits its field.
    pub fn check(&self) -> Result<(), WireError> {
        check_bits("AETH.MSN", self.msn.into(), 24)
    }

    /// What the syndrome says.
    pub const fn kind(&self) -> AckKind {
        let value = self.syndrome & 0x1f;
        match (self.syndrome >> 5) & 0x03 {
            0 => AckKind::Ack { credit: value },
            1 => AckKind::RnrNak { timer: value },
            3 => AckKind::Nak { code: value },
            _ => AckKind::Reserved(value),
        }
    }

    /// Writes the header into the first [`AethRepr::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`AethRepr::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::SYNDROME] = self.syndrome;
        put_be24(buf, field::MSN, self.msn);
    }
}

/// Immediate data, 4 bytes (IBTA §9.3): handed to the receiver in its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImmDt(pub u32);

impl ImmDt {
    /// Length of the header in bytes.
    pub const LEN: usize = field::IMM.end;

    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<ImmDt, WireError> {
        check_len(buf, Self::LEN)?;
        Ok(ImmDt(be32(buf, field::IMM)))
    }

    /// Writes the header into the first [`ImmDt::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`ImmDt::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::IMM].copy_from_slice(&self.0.to_be_bytes());
    }
}

/// Which extended headers follow the BTH, in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtKind {
    /// None.
    None,
    /// DETH.
    Deth,
    /// DETH, ImmDt.
    DethImm,
    /// RETH.
    Reth,
    /// RETH, ImmDt.
    RethImm,
    /// AETH.
    Aeth,
    /// ImmDt.
    Imm,
}

impl ExtKind {
    /// Their length in bytes.
    pub const fn len(self) -> usize {
        match self {
            ExtKind::None => 0,
            ExtKind::Deth => DethRepr::LEN,
            ExtKind::DethImm => DethRepr::LEN + ImmDt::LEN,
            ExtKind::Reth => RethRepr::LEN,
            ExtKind::RethImm => RethRepr::LEN + ImmDt::LEN,
            ExtKind::Aeth => AethRepr::LEN,
            ExtKind::Imm => ImmDt::LEN,
        }
    }

    /// Whether there are none.
    pub const fn is_empty(self) -> bool {
        matches!(self, ExtKind::None)
    }
}

/// The extended headers of one packet, in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtHeaders {
    /// None (RC SEND, RDMA WRITE Middle/Last, READ response Middle).
    None,
    /// UD SEND Only.
    Deth(DethRepr),
    /// UD SEND Only with Immediate.
    DethImm(DethRepr, ImmDt),
    /// RDMA WRITE First/Only, RDMA READ Request.
    Reth(RethRepr),
    /// RDMA WRITE Only with Immediate.
    RethImm(RethRepr, ImmDt),
    /// ACKNOWLEDGE, RDMA READ response First/Last/Only.
    Aeth(AethRepr),
    /// SEND Last/Only with Immediate, RDMA WRITE Last with Immediate.
    Imm(ImmDt),
}

impl ExtHeaders {
    /// Which headers these are.
    pub const fn kind(&self) -> ExtKind {
        match self {
            ExtHeaders::None => ExtKind::None,
            ExtHeaders::Deth(_) => ExtKind::Deth,
            ExtHeaders::DethImm(..) => ExtKind::DethImm,
            ExtHeaders::Reth(_) => ExtKind::Reth,
            ExtHeaders::RethImm(..) => ExtKind::RethImm,
            ExtHeaders::Aeth(_) => ExtKind::Aeth,
            ExtHeaders::Imm(_) => ExtKind::Imm,
        }
    }

    /// Their length in bytes.
    pub const fn len(&self) -> usize {
        self.kind().len()
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.kind().is_empty()
    }

    /// Reads headers of `kind` from the start of `buf`.
    pub fn parse(kind: ExtKind, buf: &[u8]) -> Result<ExtHeaders, WireError> {
        check_len(buf, kind.len())?;
        Ok(match kind {
            ExtKind::None => ExtHeaders::None,
            ExtKind::Deth => ExtHeaders::Deth(DethRepr::parse(buf)?),
            ExtKind::DethImm => {
                ExtHeaders::DethImm(DethRepr::parse(buf)?, ImmDt::parse(&buf[DethRepr::LEN..])?)
            }
            ExtKind::Reth => ExtHeaders::Reth(RethRepr::parse(buf)?),
            ExtKind::RethImm => {
                ExtHeaders::RethImm(RethRepr::parse(buf)?, ImmDt::parse(&buf[RethRepr::LEN..])?)
            }
            ExtKind::Aeth => ExtHeaders::Aeth(AethRepr::parse(buf)?),
            ExtKind::Imm => ExtHeaders::Imm(ImmDt::parse(buf)?),
        })
    }

    /// `Ok(())` if every value fits its field.
    pub fn check(&self) -> Result<(), WireError> {
        match self {
            ExtHeaders::Deth(d) | ExtHeaders::DethImm(d, _) => d.check(),
            ExtHeaders::Aeth(a) => a.check(),
            ExtHeaders::None | ExtHeaders::Reth(_) | ExtHeaders::RethImm(..) => Ok(()),
            ExtHeaders::Imm(_) => Ok(()),
        }
    }

    /// Writes the headers into the first [`ExtHeaders::len`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`ExtHeaders::len`].
    pub fn emit(&self, buf: &mut [u8]) {
        match self {
            ExtHeaders::None => {}
            ExtHeaders::Deth(d) => d.emit(buf),
            ExtHeaders::DethImm(d, i) => {
                d.emit(buf);
                i.emit(&mut buf[DethRepr::LEN..]);
            }
            ExtHeaders::Reth(r) => r.emit(buf),
            ExtHeaders::RethImm(r, i) => {
                r.emit(buf);
                i.emit(&mut buf[RethRepr::LEN..]);
            }
            ExtHeaders::Aeth(a) => a.emit(buf),
            ExtHeaders::Imm(i) => i.emit(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q_Key 0x80010000, reserved, SrcQP 0x000001.
    static DETH: [u8; 8] = [0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
    /// VA 0x00007F0012345000, R_Key 0x0000ABCD, DMALen 4096.
    static RETH: [u8; 16] = [
        0x00, 0x00, 0x7f, 0x00, 0x12, 0x34, 0x50, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x00, 0x00, 0x10,
        0x00,
    ];
    /// Syndrome 0x1F (ACK, no credits), MSN 0x000102.
    static AETH: [u8; 4] = [0x1f, 0x00, 0x01, 0x02];
    static IMM: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

    const DETH_REPR: DethRepr = DethRepr {
        q_key: 0x8001_0000,
        src_qp: 1,
    };
    const RETH_REPR: RethRepr = RethRepr {
        va: 0x0000_7f00_1234_5000,
        r_key: 0xabcd,
        dma_len: 4096,
    };
    const AETH_REPR: AethRepr = AethRepr {
        syndrome: AethRepr::SYNDROME_ACK_NO_CREDIT,
        msn: 0x102,
    };

    #[test]
    fn test_deth() {
        assert_eq!(DethRepr::parse(&DETH), Ok(DETH_REPR));
        let mut buf = [0xa5u8; 8];
        DETH_REPR.emit(&mut buf);
        assert_eq!(buf, DETH);
        let mut reserved = DETH;
        reserved[4] = 0xff;
        assert_eq!(DethRepr::parse(&reserved), Ok(DETH_REPR));
        assert!(
            DethRepr {
                src_qp: 1 << 24,
                ..DETH_REPR
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn test_reth() {
        assert_eq!(RethRepr::parse(&RETH), Ok(RETH_REPR));
        let mut buf = [0xa5u8; 16];
        RETH_REPR.emit(&mut buf);
        assert_eq!(buf, RETH);
    }

    #[test]
    fn test_aeth() {
        assert_eq!(AethRepr::parse(&AETH), Ok(AETH_REPR));
        let mut buf = [0xa5u8; 4];
        AETH_REPR.emit(&mut buf);
        assert_eq!(buf, AETH);
        assert!(
            AethRepr {
                msn: 1 << 24,
                ..AETH_REPR
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn test_aeth_kinds() {
        let kind = |syndrome| AethRepr { syndrome, msn: 0 }.kind();
        assert_eq!(kind(0x1f), AckKind::Ack { credit: 0x1f });
        assert_eq!(kind(0x00), AckKind::Ack { credit: 0 });
        assert_eq!(kind(0x2e), AckKind::RnrNak { timer: 0x0e });
        assert_eq!(kind(0x60), AckKind::Nak { code: 0 });
        assert_eq!(kind(0x62), AckKind::Nak { code: 2 });
        assert_eq!(kind(0x41), AckKind::Reserved(1));
    }

    #[test]
    fn test_immdt() {
        assert_eq!(ImmDt::parse(&IMM), Ok(ImmDt(0xdead_beef)));
        let mut buf = [0xa5u8; 4];
        ImmDt(0xdead_beef).emit(&mut buf);
        assert_eq!(buf, IMM);
    }

    #[test]
    fn test_combined_headers_in_wire_order() {
        let mut deth_imm = [0xa5u8; 12];
        let ext = ExtHeaders::DethImm(DETH_REPR, ImmDt(0xdead_beef));
        ext.emit(&mut deth_imm);
        assert_eq!(&deth_imm[..8], &DETH);
        assert_eq!(&deth_imm[8..], &IMM);
        assert_eq!(ExtHeaders::parse(ExtKind::DethImm, &deth_imm), Ok(ext));

        let mut reth_imm = [0xa5u8; 21];
        let ext = ExtHeaders::RethImm(RETH_REPR, ImmDt(0xdead_beef));
        ext.emit(&mut reth_imm);
        assert_eq!(&reth_imm[..16], &RETH);
        assert_eq!(&reth_imm[16..20], &IMM);
        assert_eq!(reth_imm[20], 0xa5, "nothing written past the headers");
        assert_eq!(ExtHeaders::parse(ExtKind::RethImm, &reth_imm), Ok(ext));
    }

    #[test]
    fn test_lengths() {
        for (ext, len) in [
            (ExtHeaders::None, 0),
            (ExtHeaders::Deth(DETH_REPR), 8),
            (ExtHeaders::DethImm(DETH_REPR, ImmDt(0)), 12),
            (ExtHeaders::Reth(RETH_REPR), 16),
            (ExtHeaders::RethImm(RETH_REPR, ImmDt(0)), 20),
            (ExtHeaders::Aeth(AETH_REPR), 4),
            (ExtHeaders::Imm(ImmDt(0)), 4),
        ] {
            assert_eq!(ext.len(), len, "{ext:?}");
            assert_eq!(ext.kind().len(), len);
            assert_eq!(
                ExtHeaders::parse(ext.kind(), &[0u8; 20][..len]).map(|e| e.kind()),
                Ok(ext.kind())
            );
            if len > 0 {
                assert_eq!(
                    ExtHeaders::parse(ext.kind(), &[0u8; 20][..len - 1]),
                    Err(WireError::Truncated {
                        needed: len,
                        got: len - 1
                    })
                );
            }
        }
    }
}
