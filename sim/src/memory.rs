//! Host memory for the simulated machine: the block the driver gets as its DMA region
//! (as a port driver's uncached extension) and the device model reaches by physical
//! address. The only `unsafe` of the simulator lives here.

use std::alloc::{Layout, alloc_zeroed, dealloc};

use fabboot_hca::dma::DmaRegion;
use fabboot_hca::hal::PhysAddr;

/// A zeroed, 4 KiB-aligned block at a chosen physical address.
#[derive(Debug)]
pub struct HostMemory {
    ptr: *mut u8,
    layout: Layout,
    phys: PhysAddr,
}

impl HostMemory {
    /// Allocates `len` bytes (rounded up to 4 KiB) that the device sees at `phys`.
    pub fn new(len: usize, phys: PhysAddr) -> HostMemory {
        assert!(
            phys.is_multiple_of(4096),
            "physical base must be page aligned"
        );
        let layout = Layout::from_size_align(len.next_multiple_of(4096).max(4096), 4096)
            .expect("a valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of host memory");
        HostMemory { ptr, layout, phys }
    }

    /// A handle for the driver (or the device model: each gets its own).
    pub fn region(&self) -> DmaRegion {
        // SAFETY: the block lives as long as `self` (callers drop regions first: they
        // are owned by the harness alongside this value), is reached through raw
        // pointers only, and is "physically contiguous" by construction.
        unsafe { DmaRegion::new(self.ptr, self.layout.size(), self.phys) }
            .expect("a non-null block")
    }

    /// The host address of `len` bytes at `offset`, for mapping the block into an
    /// emulated CPU's address space; `None` when the range is not inside the block.
    pub fn host_ptr(&self, offset: usize, len: usize) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        // `wrapping_add` keeps this safe code: the offset is checked to be in bounds.
        (end <= self.layout.size()).then(|| self.ptr.wrapping_add(offset))
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Whether the block is empty (never).
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}
