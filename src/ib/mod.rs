//! InfiniBand management wire formats: the MAD common header, SMPs for MAD_IFC,
//! PortInfo and the P_Key table, the SA header and PathRecord, and the CM messages an
//! SRP initiator sends and receives.
//!
//! Facts come from IBTA vol. 1 (§13.4 MAD, §14.2.5.6 PortInfo, §14.2.5.7 P_KeyTable,
//! §15.2 SA, §12.6–§12.7 CM) as summarised in `reference/srp-cm-sa-dm.md` §1.3–§1.5.
//! Every multi-byte field is big-endian.
//!
//! Each structure follows the smoltcp wire pattern: a private `field` module of byte
//! offsets (ranges for multi-byte fields, a single index for bytes holding bit fields),
//! and a `Repr` with `LEN`, `parse(&[u8]) -> Result<Repr, Error>` and
//! `emit(&self, &mut [u8]) -> Result<(), Error>`.
//!
//! # Panic contract
//!
//! Nothing in this module panics, on any input:
//! - `parse` reads only through checked accessors; a short buffer is
//!   [`Error::Truncated`], a value the structure cannot hold is [`Error::Field`].
//! - `emit` writes the whole structure (reserved bytes as zero) into the first `LEN`
//!   bytes of the buffer, or returns an error without a partial promise: a value wider
//!   than its field is [`Error::Field`], never silently cut.
//! - No allocation, no `unsafe` (forbidden here), no fallible indexing (denied by lint).
#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::fmt;
use core::ops::Range;

use fabboot_hca::bytes;

pub mod cm;
pub mod connect;
pub mod mad;
pub mod node_info;
pub mod path;
pub mod port_info;
pub mod sa;

/// A 128-bit GID (subnet prefix followed by the port GUID), in wire order.
pub type Gid = [u8; 16];

/// What went wrong while reading or writing a wire structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The buffer holds `got` bytes; the structure needs `need`.
    Truncated {
        /// The structure being read or written ("CM REQ", "PathRecord", ...).
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// A field holds a value the structure cannot carry (emit: wider than the field;
    /// parse: a value the format rules out, e.g. an ARI length above 72).
    Field {
        /// The structure.
        what: &'static str,
        /// The field, named as in IBTA vol. 1.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
    /// The MAD is not the one expected (class, method or attribute differ).
    Unexpected {
        /// What was expected ("SA PathRecord GetResp", ...).
        what: &'static str,
        /// The header field that differs.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// A variable-length part (private data, ARI) is longer than its room.
    TooLong {
        /// The structure.
        what: &'static str,
        /// The part.
        field: &'static str,
        /// Room in bytes.
        max: usize,
        /// Bytes offered.
        got: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { what, need, got } => {
                write!(f, "{what}: {got} bytes, {need} needed")
            }
            Error::Field { what, field, value } => {
                write!(f, "{what}: {field} = {value:#x} does not fit")
            }
            Error::Unexpected { what, field, value } => {
                write!(f, "expected {what}: {field} is {value:#x}")
            }
            Error::TooLong {
                what,
                field,
                max,
                got,
            } => write!(f, "{what}: {field} of {got} bytes exceeds {max}"),
        }
    }
}

/// An IB time value in microseconds: 4.096 µs × 2^`code`, rounded up, saturating at
/// `u64::MAX` (IBTA vol. 1 §14.2.5.6 SubnetTimeOut, §15.2.5.16 PacketLifeTime, §12.6.5
/// CM response timeouts and Local ACK Timeout; reference §1.4 "IB time values").
pub fn ib_time_us(code: u8) -> u64 {
    1u64.checked_shl(code.into())
        .and_then(|p| p.checked_mul(4096))
        .map_or(u64::MAX, |ns| ns.div_ceil(1000))
}

/// Range check for a field `width` bits wide.
fn fits(what: &'static str, field: &'static str, value: u64, width: u32) -> Result<(), Error> {
    if value.checked_shr(width).unwrap_or(0) == 0 {
        Ok(())
    } else {
        Err(Error::Field { what, field, value })
    }
}

/// Checked reads from a buffer already known to be at least `len` long.
struct Rd<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    fn new(buf: &'a [u8], what: &'static str, len: usize) -> Result<Self, Error> {
        match buf.get(..len) {
            Some(buf) => Ok(Rd { buf, what }),
            None => Err(Error::Truncated {
                what,
                need: len,
                got: buf.len(),
            }),
        }
    }

    fn bytes(&self, f: Range<usize>) -> Result<&'a [u8], Error> {
        let end = f.end;
        self.buf.get(f).ok_or(Error::Truncated {
            what: self.what,
            need: end,
            got: self.buf.len(),
        })
    }

    fn arr<const N: usize>(&self, f: Range<usize>) -> Result<[u8; N], Error> {
        let end = f.end;
        self.bytes(f)?.try_into().map_err(|_| Error::Truncated {
            what: self.what,
            need: end,
            got: self.buf.len(),
        })
    }

    fn u8(&self, at: usize) -> Result<u8, Error> {
        self.buf.get(at).copied().ok_or(Error::Truncated {
            what: self.what,
            need: at.saturating_add(1),
            got: self.buf.len(),
        })
    }

    fn u16(&self, f: Range<usize>) -> Result<u16, Error> {
        self.arr(f).map(u16::from_be_bytes)
    }

    fn u24(&self, f: Range<usize>) -> Result<u32, Error> {
        let [a, b, c] = self.arr(f)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    fn u32(&self, f: Range<usize>) -> Result<u32, Error> {
        self.arr(f).map(u32::from_be_bytes)
    }

    fn u64(&self, f: Range<usize>) -> Result<u64, Error> {
        self.arr(f).map(u64::from_be_bytes)
    }
}

/// Checked writes; `new` zeroes the structure's `len` bytes first, so reserved bytes
/// are always written.
struct Wr<'a> {
    buf: &'a mut [u8],
    what: &'static str,
}

impl<'a> Wr<'a> {
    fn new(buf: &'a mut [u8], what: &'static str, len: usize) -> Result<Self, Error> {
        let got = buf.len();
        match buf.get_mut(..len) {
            Some(buf) => {
                buf.fill(0);
                Ok(Wr { buf, what })
            }
            None => Err(Error::Truncated {
                what,
                need: len,
                got,
            }),
        }
    }

    fn bytes(&mut self, f: Range<usize>, v: &[u8]) -> Result<(), Error> {
        let (end, room) = (f.end, f.len());
        let got = self.buf.len();
        let dst = self.buf.get_mut(f).ok_or(Error::Truncated {
            what: self.what,
            need: end,
            got,
        })?;
        if bytes::put(dst, 0, v) {
            Ok(())
        } else {
            Err(Error::TooLong {
                what: self.what,
                field: "bytes",
                max: room,
                got: v.len(),
            })
        }
    }

    fn u8(&mut self, at: usize, v: u8) -> Result<(), Error> {
        let got = self.buf.len();
        let dst = self.buf.get_mut(at).ok_or(Error::Truncated {
            what: self.what,
            need: at.saturating_add(1),
            got,
        })?;
        *dst = v;
        Ok(())
    }

    fn u16(&mut self, f: Range<usize>, v: u16) -> Result<(), Error> {
        self.bytes(f, &v.to_be_bytes())
    }

    /// Writes the low 24 bits of `v`, which must fit.
    fn u24(&mut self, field: &'static str, f: Range<usize>, v: u32) -> Result<(), Error> {
        fits(self.what, field, v.into(), 24)?;
        let [_, a, b, c] = v.to_be_bytes();
        self.bytes(f, &[a, b, c])
    }

    fn u32(&mut self, f: Range<usize>, v: u32) -> Result<(), Error> {
        self.bytes(f, &v.to_be_bytes())
    }

    fn u64(&mut self, f: Range<usize>, v: u64) -> Result<(), Error> {
        self.bytes(f, &v.to_be_bytes())
    }

    /// Copies `v` into `f`; the rest of `f` stays zero. Too long is [`Error::TooLong`].
    fn private(&mut self, field: &'static str, f: Range<usize>, v: &[u8]) -> Result<(), Error> {
        if v.len() > f.len() {
            return Err(Error::TooLong {
                what: self.what,
                field,
                max: f.len(),
                got: v.len(),
            });
        }
        self.bytes(f, v)
    }
}

/// Packs `value` into the bits `shift..shift + width` of a byte after a range check.
fn pack(
    what: &'static str,
    field: &'static str,
    value: u8,
    shift: u32,
    width: u32,
) -> Result<u8, Error> {
    fits(what, field, value.into(), width)?;
    Ok(value.checked_shl(shift).unwrap_or(0))
}

/// Bits `shift..shift + width` of `byte`.
fn unpack(byte: u8, shift: u32, width: u32) -> u8 {
    let mask = u8::MAX.checked_shr(8u32.saturating_sub(width)).unwrap_or(0);
    byte.checked_shr(shift).unwrap_or(0) & mask
}

/// An enum over a protocol number that keeps values it does not name (`Unknown`), so
/// parsing never fails on a new code and every value round-trips.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $($(#[$vmeta:meta])* $variant:ident = $value:expr,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this module does not name, kept as received.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(raw: $ty) -> Self {
                match raw {
                    $(v if v == $value => $name::$variant,)+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $($name::$variant => $value,)+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
use open_enum;

open_enum! {
    /// Path MTU code (IBTA vol. 1 §14.2.5.6 NeighborMTU / MTUCap, §15.2.5.16 PathRecord
    /// MTU, §12.6.5 REQ Path Packet Payload MTU).
    pub enum Mtu(u8) {
        /// 256 bytes.
        Mtu256 = 1,
        /// 512 bytes.
        Mtu512 = 2,
        /// 1024 bytes.
        Mtu1024 = 3,
        /// 2048 bytes.
        Mtu2048 = 4,
        /// 4096 bytes.
        Mtu4096 = 5,
    }
}

impl Mtu {
    /// The payload size in bytes, if the code names one.
    pub fn bytes(self) -> Option<u32> {
        match self {
            Mtu::Mtu256 => Some(256),
            Mtu::Mtu512 => Some(512),
            Mtu::Mtu1024 => Some(1024),
            Mtu::Mtu2048 => Some(2048),
            Mtu::Mtu4096 => Some(4096),
            Mtu::Unknown(_) => None,
        }
    }
}

impl Default for Mtu {
    /// Code 0: no MTU given (a query field left open).
    fn default() -> Self {
        Mtu::Unknown(0)
    }
}
