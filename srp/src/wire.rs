//! Byte helpers shared by the IU modules (private).
//!
//! Panic contract, as in smoltcp's `wire`: every IU parser first takes a prefix of its
//! fixed length with [`fixed`] (a typed error if the buffer is shorter or byte 0 is the
//! wrong type), and every emitter first takes a prefix with [`out`] (a typed error if
//! the buffer is shorter). The field readers and writers below use `get`, never
//! indexing, so a field range outside the prefix cannot panic: a reader would yield
//! zero and a writer would write nothing. Every field range of every IU lies inside
//! its fixed length (`LEN` is derived from the last field's end), and the byte
//! fixtures in `tests/fixtures.rs` read and write every field, so neither fallback is
//! reachable.
//!
//! All multi-byte SRP fields are big-endian (reference §1).

use core::ops::Range;

use crate::Error;
use crate::iu::IuType;

/// The bytes of `f` in `b` as an array (zeros if `f` is out of range or not `N` long).
pub(crate) fn array<const N: usize>(b: &[u8], f: Range<usize>) -> [u8; N] {
    b.get(f)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

/// Byte `at` of `b` (zero if out of range).
pub(crate) fn u8_at(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Big-endian `u16` at `f`.
pub(crate) fn u16_at(b: &[u8], f: Range<usize>) -> u16 {
    u16::from_be_bytes(array(b, f))
}

/// Big-endian `u32` at `f`.
pub(crate) fn u32_at(b: &[u8], f: Range<usize>) -> u32 {
    u32::from_be_bytes(array(b, f))
}

/// Big-endian `u64` at `f`.
pub(crate) fn u64_at(b: &[u8], f: Range<usize>) -> u64 {
    u64::from_be_bytes(array(b, f))
}

/// Copies `v` into `f` of `b` (nothing if `f` is out of range or not `v.len()` long).
pub(crate) fn put(b: &mut [u8], f: Range<usize>, v: &[u8]) {
    if let Some(dst) = b.get_mut(f)
        && dst.len() == v.len()
    {
        dst.copy_from_slice(v);
    }
}

/// Writes byte `v` at `at` (nothing if out of range).
pub(crate) fn put_u8(b: &mut [u8], at: usize, v: u8) {
    if let Some(dst) = b.get_mut(at) {
        *dst = v;
    }
}

/// The first `len` bytes of `buf`, after checking that there are that many and that
/// byte 0 names `iu`.
pub(crate) fn fixed(buf: &[u8], iu: IuType, len: usize) -> Result<&[u8], Error> {
    let b = buf.get(..len).ok_or(Error::Truncated {
        iu,
        needed: len,
        got: buf.len(),
    })?;
    let got = IuType::from(u8_at(b, 0));
    if got != iu {
        return Err(Error::WrongType { expected: iu, got });
    }
    Ok(b)
}

/// The first `len` bytes of `buf`, zeroed, with byte 0 set to `iu`: what every emitter
/// starts from, so reserved bytes go out as zero.
pub(crate) fn out(buf: &mut [u8], iu: IuType, len: usize) -> Result<&mut [u8], Error> {
    let got = buf.len();
    let b = buf.get_mut(..len).ok_or(Error::BufferTooShort {
        iu,
        needed: len,
        got,
    })?;
    b.fill(0);
    put_u8(b, 0, u8::from(iu));
    Ok(b)
}

/// A length field read from the wire, as `usize` (saturating on a 16-bit target,
/// which this crate does not build for; the caller's bounds check then fails).
pub(crate) fn wire_len(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
