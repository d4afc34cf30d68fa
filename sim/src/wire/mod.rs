//! InfiniBand packets on the wire, as the simulated fabric carries them, and a pcap
//! writer so that every packet can be read with tshark.
//!
//! Layout follows smoltcp's wire layer: each header has a private `field` module of
//! byte ranges and bit masks, and a `Repr` (the values the simulator works with) with
//! `parse(&[u8])`, `emit(&mut [u8])` and a `LEN` constant. [`IbPacket`] puts the
//! headers together into a whole packet and computes the lengths and both CRCs.
//!
//! | Header | Length | IBTA vol. 1 | Module |
//! |---|---|---|---|
//! | LRH, local route header | 8 | §7.7 | [`lrh`] |
//! | GRH, global route header | 40 | §8.3 | [`grh`] |
//! | BTH, base transport header | 12 | §9.2 | [`bth`] |
//! | DETH, RETH, AETH, ImmDt | 8, 16, 4, 4 | §9.3 | [`ext`] |
//! | ICRC, VCRC | 4, 2 | §7.8 | [`crc`] |
//!
//! Panic contract (the parsers face whatever a fabric model or a fault injector hands
//! them):
//! - `Repr::parse` and [`IbPacket::decode`] never panic, on any input.
//! - `Repr::emit` panics only if the buffer is shorter than `LEN` (a `# Panics`
//!   section says so); it writes every byte of the header, reserved fields as zero.
//! - [`IbPacket::encode`] never panics; values that do not fit their fields are an
//!   error, not silently truncated.

pub mod bth;
pub mod crc;
pub mod ext;
pub mod grh;
pub mod lrh;
pub mod packet;
pub mod pcap;

use core::fmt;
use core::ops::Range;

pub use bth::{BthRepr, Opcode};
pub use ext::{AckKind, AethRepr, DethRepr, ExtHeaders, ExtKind, ImmDt, RethRepr};
pub use grh::{Gid, GrhRepr};
pub use lrh::{Lnh, LrhRepr};
pub use packet::IbPacket;
pub use pcap::{LINKTYPE_INFINIBAND, PcapWriter, TimeResolution};

/// A field's byte range within its header.
type Field = Range<usize>;

/// Why bytes are not a packet this layer accepts, or why a packet cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the header (or packet) does.
    Truncated {
        /// Bytes the header or packet needs.
        needed: usize,
        /// Bytes there are.
        got: usize,
    },
    /// LRH.PktLen (in 4-byte words, LRH through ICRC) disagrees with the buffer
    /// length less the 2-byte VCRC (IBTA §7.7.8).
    BadPktLen {
        /// The PktLen field.
        pkt_len: u16,
        /// The length of the buffer.
        buf_len: usize,
    },
    /// LRH.LNH names a raw packet (0: raw, 1: IPv6 non-IBA), which carries no BTH
    /// and no ICRC (IBTA §7.7.4); only IBA local (2) and global (3) are handled.
    UnsupportedLnh(u8),
    /// A version field this layer does not implement: LRH.LVer or BTH.TVer other
    /// than 0, or GRH.IPVer other than 6.
    UnsupportedVersion {
        /// "LVer", "TVer" or "IPVer".
        field: &'static str,
        /// The value found.
        version: u8,
    },
    /// GRH.NxtHdr is not 0x1B, the IBA transport (IBTA §8.3.1).
    UnsupportedNextHeader(u8),
    /// GRH.PayLen disagrees with the bytes after the GRH up to and including the
    /// ICRC (IBTA §8.3.1).
    BadPayLen {
        /// The PayLen field.
        pay_len: u16,
        /// What the packet's length implies.
        expected: usize,
    },
    /// A BTH opcode this layer does not implement (atomics, invalidate, UC, RD,
    /// XRC, CNP, manufacturer-specific).
    UnsupportedOpcode(u8),
    /// BTH.PadCnt is larger than the bytes after the headers.
    BadPadCnt(u8),
    /// The opcode carries no payload (ACKNOWLEDGE, RDMA READ request), yet bytes
    /// follow its headers.
    UnexpectedPayload {
        /// The BTH opcode.
        opcode: u8,
        /// Payload plus pad bytes found.
        len: usize,
    },
    /// The extended headers given to [`IbPacket::encode`] are not the ones the
    /// opcode carries (IBTA §9.2.1; see [`Opcode::ext_kind`]).
    ExtMismatch {
        /// The BTH opcode.
        opcode: u8,
    },
    /// A value does not fit its field.
    OutOfRange {
        /// The field's name as IBTA spells it.
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// The packet would need more than the 2047 words LRH.PktLen can express.
    TooLong {
        /// Bytes from the LRH through the ICRC.
        len: usize,
    },
    /// The ICRC in the packet is not the one its invariant fields give (IBTA §7.8.1).
    BadIcrc {
        /// The ICRC computed over the packet.
        computed: u32,
        /// The ICRC the packet carries.
        found: u32,
    },
    /// The VCRC in the packet is not the one its bytes give (IBTA §7.8.2).
    BadVcrc {
        /// The VCRC computed over the packet.
        computed: u16,
        /// The VCRC the packet carries.
        found: u16,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::Truncated { needed, got } => {
                write!(f, "truncated: {got} bytes where {needed} are needed")
            }
            WireError::BadPktLen { pkt_len, buf_len } => write!(
                f,
                "LRH.PktLen {pkt_len} words does not match a {buf_len}-byte packet"
            ),
            WireError::UnsupportedLnh(lnh) => write!(f, "LRH.LNH {lnh} (raw packet) not handled"),
            WireError::UnsupportedVersion { field, version } => {
                write!(f, "{field} {version} not supported")
            }
            WireError::UnsupportedNextHeader(n) => {
                write!(f, "GRH.NxtHdr {n:#04x} is not the IBA transport (0x1b)")
            }
            WireError::BadPayLen { pay_len, expected } => {
                write!(f, "GRH.PayLen {pay_len} where the packet gives {expected}")
            }
            WireError::UnsupportedOpcode(op) => write!(f, "BTH opcode {op:#04x} not handled"),
            WireError::BadPadCnt(pad) => write!(f, "BTH.PadCnt {pad} exceeds the payload"),
            WireError::UnexpectedPayload { opcode, len } => {
                write!(
                    f,
                    "opcode {opcode:#04x} carries no payload, found {len} bytes"
                )
            }
            WireError::ExtMismatch { opcode } => {
                write!(f, "extended headers do not match opcode {opcode:#04x}")
            }
            WireError::OutOfRange { field, value } => {
                write!(f, "{value:#x} does not fit {field}")
            }
            WireError::TooLong { len } => {
                write!(f, "{len} bytes exceed the 2047 words of LRH.PktLen")
            }
            WireError::BadIcrc { computed, found } => {
                write!(f, "ICRC {found:#010x}, computed {computed:#010x}")
            }
            WireError::BadVcrc { computed, found } => {
                write!(f, "VCRC {found:#06x}, computed {computed:#06x}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// `Ok(())` if `buf` holds at least `needed` bytes.
fn check_len(buf: &[u8], needed: usize) -> Result<(), WireError> {
    if buf.len() < needed {
        Err(WireError::Truncated {
            needed,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// `Ok(())` if `value` fits in `bits` bits.
fn check_bits(field: &'static str, value: u64, bits: u32) -> Result<(), WireError> {
    if bits < 64 && value >> bits != 0 {
        Err(WireError::OutOfRange { field, value })
    } else {
        Ok(())
    }
}

/// Big-endian 16-bit value at `f` (callers have checked the length).
fn be16(buf: &[u8], f: Field) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&buf[f]);
    u16::from_be_bytes(b)
}

/// Big-endian 24-bit value at `f` (three bytes).
fn be24(buf: &[u8], f: Field) -> u32 {
    let mut b = [0u8; 4];
    b[1..].copy_from_slice(&buf[f]);
    u32::from_be_bytes(b)
}

/// Big-endian 32-bit value at `f`.
fn be32(buf: &[u8], f: Field) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[f]);
    u32::from_be_bytes(b)
}

/// Big-endian 64-bit value at `f`.
fn be64(buf: &[u8], f: Field) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[f]);
    u64::from_be_bytes(b)
}

/// Writes the low 24 bits of `v` big-endian into the three bytes at `f`.
fn put_be24(buf: &mut [u8], f: Field, v: u32) {
    buf[f].copy_from_slice(&v.to_be_bytes()[1..]);
}
