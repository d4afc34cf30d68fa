//! The DMA region: the one block of memory the driver and the device share, handed in
//! by the caller (the port's uncached extension or `DumpRegion`, or the simulator's
//! memory). This module is the only place in the crate that dereferences it.
//!
//! The region is physically contiguous: byte `o` is at physical address `phys + o`.
//! Accesses go through raw pointers only (no Rust reference to the memory is ever
//! formed), so the device may change any byte at any time without undefined behaviour;
//! ordering against the device is the caller's, with [`publish`] before a doorbell and
//! [`observe`] after seeing an ownership change.

use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};

use crate::hal::PhysAddr;

/// A range inside the DMA region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset from the start of the region.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Span {
    /// The sub-range `[at, at + len)` of this span, if it fits.
    pub fn sub(self, at: usize, len: usize) -> Option<Span> {
        let end = at.checked_add(len)?;
        (end <= self.len).then_some(Span {
            offset: self.offset + at,
            len,
        })
    }

    /// One past the last byte.
    pub fn end(self) -> usize {
        self.offset + self.len
    }
}

/// An access outside the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRegion {
    /// Offset asked for.
    pub offset: usize,
    /// Length asked for.
    pub len: usize,
    /// Length of the region.
    pub region: usize,
}

/// The shared memory.
#[derive(Debug)]
pub struct DmaRegion {
    base: NonNull<u8>,
    len: usize,
    phys: PhysAddr,
}

// SAFETY: the region is plain memory reached through raw pointers; moving the handle
// to another thread moves no reference. Concurrent use is the owner's to serialise
// (the miniport's port locks; the simulator is single-threaded).
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// Wraps `len` bytes at `base`, physically contiguous from `phys`.
    ///
    /// # Safety
    /// For as long as the value (or a clone made with [`DmaRegion::alias`]) exists,
    /// `base..base + len` must be valid for reads and writes, not be reached through
    /// Rust references, and be physically contiguous from `phys` as the device sees it.
    pub unsafe fn new(base: *mut u8, len: usize, phys: PhysAddr) -> Option<DmaRegion> {
        let base = NonNull::new(base)?;
        phys.checked_add(len as u64)?;
        Some(DmaRegion { base, len, phys })
    }

    /// A second handle on the same memory, for the other party (the simulator's device
    /// model). Both use raw accesses only, so the aliasing is sound; the caller keeps
    /// their accesses from interleaving (one thread).
    ///
    /// # Safety
    /// As for [`DmaRegion::new`], for the lifetime of both handles.
    pub unsafe fn alias(&self) -> DmaRegion {
        DmaRegion {
            base: self.base,
            len: self.len,
            phys: self.phys,
        }
    }

    /// Length of the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Physical address of the first byte.
    pub fn phys_base(&self) -> PhysAddr {
        self.phys
    }

    /// Physical address of byte `offset` (which may be one past the end).
    pub fn phys(&self, offset: usize) -> Option<PhysAddr> {
        (offset <= self.len).then(|| self.phys + offset as u64)
    }

    /// Physical address of `span`, which must lie wholly in the region.
    pub fn phys_span(&self, span: Span) -> Result<PhysAddr, OutOfRegion> {
        self.check(span.offset, span.len)?;
        Ok(self.phys + span.offset as u64)
    }

    /// The offset of `len` bytes at physical address `addr`, if they lie in the region.
    pub fn offset_of(&self, addr: PhysAddr, len: usize) -> Option<usize> {
        let offset = usize::try_from(addr.checked_sub(self.phys)?).ok()?;
        self.check(offset, len).ok().map(|()| offset)
    }

    /// Address of byte `offset`; only dereferenced after [`Self::check`].
    fn at(&self, offset: usize) -> *mut u8 {
        self.base.as_ptr().wrapping_add(offset)
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), OutOfRegion> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(OutOfRegion {
                offset,
                len,
                region: self.len,
            }),
        }
    }

    /// Copies bytes out of the region.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), OutOfRegion> {
        self.check(offset, out.len())?;
        // SAFETY: offset + out.len() <= len (checked), the region is valid for reads
        // (constructor contract) and `out` is a distinct Rust buffer.
        unsafe { core::ptr::copy_nonoverlapping(self.at(offset), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies bytes into the region.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfRegion> {
        self.check(offset, data.len())?;
        // SAFETY: as in `read`, for writes.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.at(offset), data.len()) };
        Ok(())
    }

    /// Sets `len` bytes to `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), OutOfRegion> {
        self.check(offset, len)?;
        // SAFETY: as in `write`.
        unsafe { core::ptr::write_bytes(self.at(offset), byte, len) };
        Ok(())
    }

    /// Reads one byte with a volatile access: for bytes the other party flips while we
    /// poll (ownership bits).
    pub fn read_u8_volatile(&self, offset: usize) -> Result<u8, OutOfRegion> {
        self.check(offset, 1)?;
        // SAFETY: offset < len (checked); a one-byte read is always aligned.
        Ok(unsafe { self.at(offset).read_volatile() })
    }

    /// Writes one byte with a volatile access.
    pub fn write_u8_volatile(&self, offset: usize, value: u8) -> Result<(), OutOfRegion> {
        self.check(offset, 1)?;
        // SAFETY: as in `read_u8_volatile`, for writes.
        unsafe { self.at(offset).write_volatile(value) };
        Ok(())
    }

    /// Reads a big-endian 32-bit value.
    pub fn read_be32(&self, offset: usize) -> Result<u32, OutOfRegion> {
        let mut b = [0u8; 4];
        self.read(offset, &mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Writes a big-endian 32-bit value.
    pub fn write_be32(&self, offset: usize, value: u32) -> Result<(), OutOfRegion> {
        self.write(offset, &value.to_be_bytes())
    }

    /// Reads a big-endian 64-bit value.
    pub fn read_be64(&self, offset: usize) -> Result<u64, OutOfRegion> {
        let mut b = [0u8; 8];
        self.read(offset, &mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    /// Writes a big-endian 64-bit value.
    pub fn write_be64(&self, offset: usize, value: u64) -> Result<(), OutOfRegion> {
        self.write(offset, &value.to_be_bytes())
    }
}

/// Makes every write to the region so far visible to the device before what follows
/// (a doorbell): a release fence.
pub fn publish() {
    fence(Ordering::SeqCst);
}

/// Orders reads of the region after an observed ownership change: an acquire fence.
pub fn observe() {
    fence(Ordering::Acquire);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn region(buf: &mut Vec<u8>) -> DmaRegion {
        // SAFETY: the test's buffer outlives the region and is not otherwise touched.
        unsafe { DmaRegion::new(buf.as_mut_ptr(), buf.len(), 0x10_0000) }.unwrap()
    }

    #[test]
    fn accesses_stay_inside_the_region() {
        let mut buf = std::vec![0u8; 64];
        let r = region(&mut buf);
        assert!(r.write_be32(60, 0xDEAD_BEEF).is_ok());
        assert_eq!(r.read_be32(60), Ok(0xDEAD_BEEF));
        assert_eq!(
            r.write_be32(61, 1),
            Err(OutOfRegion {
                offset: 61,
                len: 4,
                region: 64
            })
        );
        assert!(
            r.read_be64(usize::MAX - 2).is_err(),
            "no overflow on huge offsets"
        );
        assert!(r.fill(0, 65, 0).is_err());
        assert!(r.read_u8_volatile(64).is_err());
    }

    #[test]
    fn physical_addresses_map_both_ways() {
        let mut buf = std::vec![0u8; 4096];
        let r = region(&mut buf);
        assert_eq!(r.phys(0x100), Some(0x10_0100));
        assert_eq!(r.phys(4096), Some(0x10_1000));
        assert_eq!(r.phys(4097), None);
        assert_eq!(r.offset_of(0x10_0FF0, 16), Some(0xFF0));
        assert_eq!(r.offset_of(0x10_0FF0, 17), None);
        assert_eq!(r.offset_of(0x0F_FFFF, 1), None);
        assert_eq!(
            r.phys_span(Span {
                offset: 0xFF0,
                len: 16
            }),
            Ok(0x10_0FF0)
        );
        assert!(
            r.phys_span(Span {
                offset: 0xFF0,
                len: 17
            })
            .is_err()
        );
    }

    #[test]
    fn spans_nest_without_overflow() {
        let s = Span {
            offset: 4096,
            len: 1024,
        };
        assert_eq!(
            s.sub(512, 512),
            Some(Span {
                offset: 4608,
                len: 512
            })
        );
        assert_eq!(s.sub(513, 512), None);
        assert_eq!(s.sub(usize::MAX, 2), None);
    }
}
