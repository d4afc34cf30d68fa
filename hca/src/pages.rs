//! Firmware pages: the plan's pool, which pages firmware holds, and the MANAGE_PAGES
//! commands that give and take them (reference/mlx5.md §C.5). Firmware may return
//! pages in any order, so ownership is a bitmap, and a returned page that is not one
//! of ours is an error, never memory we start using.

use crate::bytes;
use crate::cmdif::{CmdError, CmdIf, header, opcode};
use crate::dma::{DmaRegion, Span};
use crate::hal::Hal;
use crate::ifc::cmd::{manage_pages_in, manage_pages_out};
use crate::plan::PAGE;

/// Pages per MANAGE_PAGES command: one mailbox block's worth (as iPXE does), so the
/// command's buffer stays small enough for a kernel stack.
pub const PAGES_PER_COMMAND: usize = 62;
/// Largest pool the bitmap tracks (4 MiB of firmware pages).
pub const MAX_POOL_PAGES: usize = 1024;

/// Why pages could not be given or taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// Firmware asked for more pages than the pool has free.
    NotEnough {
        /// Pages firmware holds plus those asked for.
        asked: usize,
        /// Pages in the pool.
        reserved: usize,
    },
    /// Firmware returned a page this driver never gave it.
    Foreign {
        /// Its physical address.
        addr: u64,
    },
    /// A command failed.
    Cmd(CmdError),
}

impl From<crate::dma::OutOfRegion> for PageError {
    fn from(e: crate::dma::OutOfRegion) -> Self {
        PageError::Cmd(CmdError::Dma(e))
    }
}

impl From<CmdError> for PageError {
    fn from(e: CmdError) -> Self {
        PageError::Cmd(e)
    }
}

/// The pool of firmware pages and which of them firmware holds.
#[derive(Debug)]
pub struct PagePool {
    span: Span,
    pages: usize,
    held: [u64; MAX_POOL_PAGES / 64],
    count: usize,
}

impl PagePool {
    /// The pool over `span` (whole pages; at most [`MAX_POOL_PAGES`] are used).
    pub fn new(span: Span) -> PagePool {
        PagePool {
            span,
            pages: (span.len / PAGE).min(MAX_POOL_PAGES),
            held: [0; MAX_POOL_PAGES / 64],
            count: 0,
        }
    }

    /// Pages in the pool.
    pub fn capacity(&self) -> usize {
        self.pages
    }

    /// Pages firmware holds.
    pub fn held(&self) -> usize {
        self.count
    }

    fn is_held(&self, i: usize) -> bool {
        self.held
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: usize, held: bool) {
        if let Some(w) = self.held.get_mut(i / 64) {
            if held {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// Gives `count` free pages to firmware; if the pool cannot, tells firmware so
    /// (MANAGE_PAGES "cannot give", as the PRM asks) and fails.
    pub fn give<H: Hal>(
        &mut self,
        cmd: &mut CmdIf,
        hal: &H,
        dma: &DmaRegion,
        count: usize,
    ) -> Result<(), PageError> {
        if self.count + count > self.pages {
            let _ = cmd.exec_short(hal, dma, opcode::MANAGE_PAGES, 0, None);
            return Err(PageError::NotEnough {
                asked: self.count + count,
                reserved: self.pages,
            });
        }
        let mut input = [0u8; 16 + 8 * PAGES_PER_COMMAND];
        let mut next = 0;
        let mut left = count;
        while left > 0 {
            let n = left.min(PAGES_PER_COMMAND);
            let len = manage_pages_in::PAS.byte() + 8 * n;
            let max = input.len();
            let buf = input.get_mut(..len).ok_or(CmdError::TooLong {
                opcode: opcode::MANAGE_PAGES,
                len,
                max,
            })?;
            buf.fill(0);
            header(buf, opcode::MANAGE_PAGES, 1);
            manage_pages_in::INPUT_NUM_ENTRIES.set(buf, n as u64);
            let mut chosen = [0usize; PAGES_PER_COMMAND];
            for (slot, c) in chosen.iter_mut().take(n).enumerate() {
                while self.is_held(next) {
                    next += 1;
                }
                *c = next;
                next += 1;
                let addr = dma.phys_span(Span {
                    offset: self.span.offset + *c * PAGE,
                    len: PAGE,
                })?;
                let at = manage_pages_in::PAS.byte() + 8 * slot;
                bytes::put(buf, at, &addr.to_be_bytes()); // slot < n: inside `buf`
            }
            cmd.exec(hal, dma, buf, &mut [0u8; 16])?;
            for &c in chosen.iter().take(n) {
                self.set(c, true);
            }
            self.count += n;
            left -= n;
        }
        Ok(())
    }

    /// Takes back up to `count` pages; each returned page must be one firmware holds
    /// from this pool. Returns how many came back.
    pub fn take<H: Hal>(
        &mut self,
        cmd: &mut CmdIf,
        hal: &H,
        dma: &DmaRegion,
        count: usize,
    ) -> Result<usize, PageError> {
        let mut input = [0u8; 16];
        let mut out = [0u8; 16 + 8 * PAGES_PER_COMMAND];
        let mut taken = 0;
        while taken < count {
            let want = (count - taken).min(PAGES_PER_COMMAND);
            header(&mut input, opcode::MANAGE_PAGES, 2);
            manage_pages_in::INPUT_NUM_ENTRIES.set(&mut input, want as u64);
            let len = manage_pages_out::PAS.byte() + 8 * want;
            let max = out.len();
            let output = out.get_mut(..len).ok_or(CmdError::TooLong {
                opcode: opcode::MANAGE_PAGES,
                len,
                max,
            })?;
            cmd.exec(hal, dma, &input, output)?;
            let got = (manage_pages_out::OUTPUT_NUM_ENTRIES.get(&out) as usize).min(want);
            for i in 0..got {
                let at = manage_pages_out::PAS.byte() + 8 * i;
                let addr = u64::from_be_bytes(bytes::read(&out, at).unwrap_or([0xFF; 8]));
                let index = dma
                    .offset_of(addr, PAGE)
                    .and_then(|o| o.checked_sub(self.span.offset))
                    .filter(|o| o % PAGE == 0)
                    .map(|o| o / PAGE)
                    .filter(|&i| i < self.pages && self.is_held(i))
                    .ok_or(PageError::Foreign { addr })?;
                self.set(index, false);
                self.count -= 1;
            }
            taken += got;
            if got == 0 {
                break;
            }
        }
        Ok(taken)
    }
}
