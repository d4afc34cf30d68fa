//! A request's data buffer as physically contiguous segments, the way each port gives
//! it: storport as a scatter-gather list (`StorPortGetScatterGatherList`, the only
//! way to reach a READ/WRITE buffer, which has no CPU mapping), scsiport one run at a
//! time (`ScsiPortGetPhysicalAddress` on the buffer's virtual address: the physical
//! address and how many bytes are contiguous from it).
//!
//! Both are lazy iterators: the initiator stops pulling at one more segment than the
//! channel allows, so a buffer broken into too many pieces costs at most that many
//! port calls.

use crate::initiator::Segment;

/// Walks a buffer of `len` bytes: `run(offset)` gives the physical address of byte
/// `offset` and the contiguous bytes from there (scsiport's
/// `ScsiPortGetPhysicalAddress`). Runs longer than the rest of the buffer are cut;
/// a run of 0 bytes, or none, ends the walk (the request then falls short of its
/// length and is refused).
#[derive(Debug)]
pub struct BufferWalk<F> {
    run: F,
    offset: u32,
    len: u32,
}

impl<F: FnMut(u32) -> Option<(u64, u32)>> BufferWalk<F> {
    /// A walk over `len` bytes.
    pub fn new(len: u32, run: F) -> Self {
        BufferWalk {
            run,
            offset: 0,
            len,
        }
    }
}

impl<F: FnMut(u32) -> Option<(u64, u32)>> Iterator for BufferWalk<F> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        let left = self.len.checked_sub(self.offset).filter(|&l| l > 0)?;
        let (phys, contiguous) = (self.run)(self.offset)?;
        let len = contiguous.min(left);
        if len == 0 {
            self.offset = self.len;
            return None;
        }
        self.offset += len;
        Some(Segment { phys, len })
    }
}

/// The first `len` bytes of `segments` (a scatter-gather list may describe more than
/// the transfer: storport's elements cover whole buffers).
pub fn clip(
    segments: impl IntoIterator<Item = Segment>,
    len: u32,
) -> impl Iterator<Item = Segment> {
    let mut left = len;
    segments.into_iter().map_while(move |s| {
        let take = s.len.min(left);
        if take == 0 {
            return None;
        }
        left -= take;
        Some(Segment {
            phys: s.phys,
            len: take,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn a_buffer_is_walked_page_by_page_and_the_last_run_is_cut() {
        // A buffer starting 0x200 into a page, each page somewhere else.
        let pages = [0x10_0000u64, 0x30_0000, 0x20_0000];
        let mut calls = 0;
        let segs: Vec<Segment> = BufferWalk::new(0x2000, |offset| {
            calls += 1;
            let at = 0x200 + offset;
            let page = pages[(at / 0x1000) as usize];
            Some((page + u64::from(at % 0x1000), 0x1000 - at % 0x1000 + 0x5000))
        })
        .collect();
        // The port says runs go on past the page: taken as given, cut at the end.
        assert_eq!(
            segs,
            [Segment {
                phys: 0x10_0200,
                len: 0x2000
            }]
        );
        assert_eq!(calls, 1);

        let segs: Vec<Segment> = BufferWalk::new(0x2000, |offset| {
            let at = 0x200 + offset;
            let page = pages[(at / 0x1000) as usize];
            Some((page + u64::from(at % 0x1000), 0x1000 - at % 0x1000))
        })
        .collect();
        assert_eq!(
            segs,
            [
                Segment {
                    phys: 0x10_0200,
                    len: 0xE00
                },
                Segment {
                    phys: 0x30_0000,
                    len: 0x1000
                },
                Segment {
                    phys: 0x20_0000,
                    len: 0x200
                },
            ]
        );
    }

    #[test]
    fn a_port_that_gives_nothing_ends_the_walk() {
        assert_eq!(BufferWalk::new(4096, |_| None).count(), 0);
        let mut n = 0;
        let segs: Vec<Segment> = BufferWalk::new(4096, |o| {
            n += 1;
            (o == 0).then_some((0x1000, 512)).or(Some((0x9000, 0)))
        })
        .collect();
        assert_eq!(segs.len(), 1);
        assert_eq!(n, 2, "no call after a zero-length run");
        assert_eq!(BufferWalk::new(0, |_| Some((0, 1))).count(), 0);
    }

    #[test]
    fn clip_keeps_the_transfer_length() {
        let list = [
            Segment {
                phys: 0x1000,
                len: 0x1000,
            },
            Segment {
                phys: 0x8000,
                len: 0x1000,
            },
            Segment {
                phys: 0x4000,
                len: 0x1000,
            },
        ];
        let c: Vec<Segment> = clip(list, 0x1800).collect();
        assert_eq!(
            c,
            [
                list[0],
                Segment {
                    phys: 0x8000,
                    len: 0x800
                }
            ]
        );
        assert_eq!(clip(list, 0x4000).count(), 3);
        assert_eq!(clip(list, 0).count(), 0);
    }
}
