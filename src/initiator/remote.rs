//! How the target reaches a request's data buffer: the one function that turns a
//! scatter-gather list into SRP memory descriptors (SRP r16a §6.9.2–§6.9.3).
//!
//! Today every descriptor names the physical address under one physical-address
//! memory key with remote read and write rights (what iPXE and Linux's "unsafe global
//! rkey" do): the target can reach any host memory for as long as the channel is up.
//! Per-I/O registration (a key scoped to the request's pages, invalidated when it
//! completes) replaces this function alone; the session logic does not change.

use fabboot_srp::desc::DirectDesc;

use super::request::Segment;

/// Why a scatter-gather list cannot be described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescribeError {
    /// More segments than descriptors allowed.
    TooManySegments {
        /// Segments offered.
        got: usize,
        /// Descriptors allowed.
        max: usize,
    },
    /// A segment of zero bytes.
    EmptySegment {
        /// Its index.
        index: usize,
    },
    /// A segment whose end lies beyond the 64-bit address space.
    AddressOverflow {
        /// Its index.
        index: usize,
    },
}

/// Writes one descriptor per segment into `out` (whose length is the most the
/// channel allows); returns how many.
pub fn describe(
    segments: impl IntoIterator<Item = Segment>,
    rkey: u32,
    out: &mut [DirectDesc],
) -> Result<usize, DescribeError> {
    let max = out.len();
    let mut n = 0usize;
    for (index, s) in segments.into_iter().enumerate() {
        if s.len == 0 {
            return Err(DescribeError::EmptySegment { index });
        }
        if s.phys.checked_add(u64::from(s.len)).is_none() {
            return Err(DescribeError::AddressOverflow { index });
        }
        let Some(slot) = out.get_mut(index) else {
            return Err(DescribeError::TooManySegments {
                got: index.saturating_add(1),
                max,
            });
        };
        *slot = DirectDesc {
            va: s.phys,
            rkey,
            len: s.len,
        };
        n = index.saturating_add(1);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_descriptor_per_segment_under_the_key() {
        let mut out = [DirectDesc {
            va: 0,
            rkey: 0,
            len: 0,
        }; 4];
        let segs = [
            Segment {
                phys: 0x1000,
                len: 512,
            },
            Segment {
                phys: 0x9000,
                len: 4096,
            },
        ];
        assert_eq!(describe(segs, 0x42, &mut out), Ok(2));
        assert_eq!(
            out[1],
            DirectDesc {
                va: 0x9000,
                rkey: 0x42,
                len: 4096
            }
        );
        assert_eq!(
            describe([segs[0]; 5], 1, &mut out),
            Err(DescribeError::TooManySegments { got: 5, max: 4 })
        );
        let empty = Segment { phys: 0, len: 0 };
        assert_eq!(
            describe([segs[0], empty], 1, &mut out),
            Err(DescribeError::EmptySegment { index: 1 })
        );
        let wrap = Segment {
            phys: u64::MAX - 10,
            len: 512,
        };
        assert_eq!(
            describe([wrap], 1, &mut out),
            Err(DescribeError::AddressOverflow { index: 0 })
        );
    }
}
