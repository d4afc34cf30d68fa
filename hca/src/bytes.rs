//! Byte copies with no panic path, for everything the driver images link.
//!
//! Why they exist: a panic site that formats an integer links core's precompiled
//! formatting code (`Formatter::pad_integral` and `str::count::do_count_chars`), which
//! is built with SSE2, and the i686 images must hold no x87/MMX/SSE instruction (NTLDR
//! and the 32-bit kernel do not save that state for a driver; `cargo xtask
//! check-images` rejects it). Two ordinary idioms are such sites:
//! - `<[u8]>::copy_from_slice`: at opt-level "s" it stays a call to core's
//!   `copy_from_slice_impl`, whose length-mismatch path formats both lengths; a
//!   length check in front of it does not remove the call;
//! - `buf[a..b]` with bounds the compiler cannot prove: `slice_index_fail` formats the
//!   range.
//!
//! The helpers here reach their bytes through `get`/`get_mut` and copy with an element
//! loop over zipped slices, which LLVM turns into `memcpy` with nothing to panic. Each
//! says what it did (copied or not, how many bytes, `None` when out of range), so a
//! caller turns a miss that its input can cause into its own typed error and ignores
//! one that cannot happen.

/// Copies `src` into `dst` if both are the same length; returns whether it copied
/// (`dst` is left untouched otherwise).
#[inline]
pub fn copy(dst: &mut [u8], src: &[u8]) -> bool {
    if dst.len() != src.len() {
        return false;
    }
    copy_prefix(dst, src);
    true
}

/// Copies as many bytes as both hold: the first `n = min(dst.len(), src.len())` bytes
/// of `src` to the start of `dst`. Returns `n`.
#[inline]
pub fn copy_prefix(dst: &mut [u8], src: &[u8]) -> usize {
    let n = dst.len().min(src.len());
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
    n
}

/// Copies `src` into `buf` at byte `at`; returns whether it fit (`buf` is left
/// untouched otherwise, also when `at + src.len()` overflows).
#[inline]
pub fn put(buf: &mut [u8], at: usize, src: &[u8]) -> bool {
    let Some(end) = at.checked_add(src.len()) else {
        return false;
    };
    match buf.get_mut(at..end) {
        Some(dst) => copy(dst, src),
        None => false,
    }
}

/// The `N` bytes of `buf` at byte `at`, or `None` if they are not all inside `buf`
/// (also when `at + N` overflows).
#[inline]
pub fn read<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    buf.get(at..end).and_then(|s| <[u8; N]>::try_from(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_takes_equal_lengths_only() {
        let mut dst = [0u8; 4];
        assert!(copy(&mut dst, &[1, 2, 3, 4]));
        assert_eq!(dst, [1, 2, 3, 4]);
        assert!(!copy(&mut dst, &[9, 9, 9]), "shorter source");
        assert!(!copy(&mut dst, &[9; 5]), "longer source");
        assert_eq!(dst, [1, 2, 3, 4], "a refused copy writes nothing");
        assert!(copy(&mut [], &[]));
    }

    #[test]
    fn copy_prefix_copies_what_both_hold() {
        let mut dst = [0u8; 4];
        assert_eq!(copy_prefix(&mut dst, &[1, 2]), 2, "shorter source");
        assert_eq!(dst, [1, 2, 0, 0]);
        assert_eq!(
            copy_prefix(&mut dst, &[5, 6, 7, 8, 9, 10]),
            4,
            "longer source"
        );
        assert_eq!(dst, [5, 6, 7, 8]);
        assert_eq!(copy_prefix(&mut dst[..0], &[1]), 0, "empty destination");
        assert_eq!(copy_prefix(&mut dst, &[]), 0, "empty source");
        assert_eq!(dst, [5, 6, 7, 8]);
    }

    #[test]
    fn put_writes_inside_the_buffer_only() {
        let mut buf = [0u8; 8];
        assert!(put(&mut buf, 2, &[1, 2, 3]));
        assert_eq!(buf, [0, 0, 1, 2, 3, 0, 0, 0]);
        assert!(put(&mut buf, 6, &[7, 8]), "up to the end");
        assert_eq!(buf, [0, 0, 1, 2, 3, 0, 7, 8]);
        assert!(!put(&mut buf, 7, &[5, 5]), "past the end");
        assert!(!put(&mut buf, 9, &[]), "start past the end");
        assert!(put(&mut buf, 8, &[]), "nothing at the end");
        assert!(!put(&mut buf, usize::MAX, &[1]), "at + len overflows");
        assert_eq!(buf, [0, 0, 1, 2, 3, 0, 7, 8], "refused puts write nothing");
    }

    #[test]
    fn read_returns_whole_arrays_only() {
        let buf = [1u8, 2, 3, 4, 5];
        assert_eq!(read::<2>(&buf, 1), Some([2, 3]));
        assert_eq!(read::<5>(&buf, 0), Some(buf));
        assert_eq!(read::<0>(&buf, 5), Some([]));
        assert_eq!(read::<2>(&buf, 4), None, "past the end");
        assert_eq!(read::<1>(&buf, 6), None, "start past the end");
        assert_eq!(read::<4>(&buf, usize::MAX - 1), None, "at + N overflows");
    }
}
