//! Packet sequence numbers: 24 bits that wrap from 0xFFFFFF to 0 (IBTA vol. 1 §9.5,
//! BTH.PSN in §9.2.9).
//!
//! Two ways to compare them:
//! - the responder's, [`diff`]: a signed distance in [-2^23, 2^23), so that a PSN in
//!   the half behind the expected one is a duplicate and one in the half ahead is out
//!   of sequence (§9.7.5);
//! - the requester's, [`sub`]: the unsigned distance forward from a base (its oldest
//!   unacknowledged PSN), valid for any span below 2^24.

/// The bits a PSN has.
pub const PSN_MASK: u32 = 0x00ff_ffff;

/// `psn + n`, wrapped to 24 bits.
pub const fn add(psn: u32, n: u32) -> u32 {
    psn.wrapping_add(n) & PSN_MASK
}

/// How far `b` must go forward to reach `a`, wrapped to 24 bits: `a - b mod 2^24`.
pub const fn sub(a: u32, b: u32) -> u32 {
    a.wrapping_sub(b) & PSN_MASK
}

/// The signed distance from `b` to `a`: negative if `a` lies in the 2^23 PSNs behind
/// `b`, positive if in the 2^23 - 1 PSNs ahead of it (§9.7.5).
pub const fn diff(a: u32, b: u32) -> i32 {
    // Sign-extend the 24-bit difference: move it to the top and shift back.
    ((a.wrapping_sub(b) << 8) as i32) >> 8
}

/// Whether `a` comes before `b` in the responder's sense.
pub const fn before(a: u32, b: u32) -> bool {
    diff(a, b) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_add_wraps_at_24_bits() {
        assert_eq!(add(0xff_fffe, 1), 0xff_ffff);
        assert_eq!(add(0xff_ffff, 1), 0);
        assert_eq!(add(0xff_fff0, 0x20), 0x10);
        // Bits above the 24 are never kept, whatever comes in.
        assert_eq!(add(0xff00_0001, 0), 1);
    }

    #[test]
    fn test_sub_is_forward_distance() {
        assert_eq!(sub(5, 3), 2);
        assert_eq!(sub(2, 0xff_fffe), 4);
        assert_eq!(sub(3, 5), 0xff_fffe);
        assert_eq!(sub(7, 7), 0);
    }

    #[test]
    fn test_diff_is_signed_across_the_wrap() {
        assert_eq!(diff(1, 0xff_ffff), 2);
        assert_eq!(diff(0xff_ffff, 1), -2);
        assert_eq!(diff(0, 0), 0);
        // The half-way point: 2^23 behind is behind, 2^23 - 1 ahead is ahead.
        assert_eq!(diff(0, 0x80_0000), -0x80_0000);
        assert_eq!(diff(0x7f_ffff, 0), 0x7f_ffff);
        assert!(before(0xff_fff0, 0x10));
        assert!(!before(0x10, 0xff_fff0));
        assert!(!before(9, 9));
    }
}
