//! BAR0 as the port mapped it: volatile 32-bit register access for [`fabboot_hca::Mmio`].
//! mlx5 registers are big-endian (reference/mlx5.md conventions); values are converted
//! here so the access layer sees host-order numbers.

use core::ptr::NonNull;

use fabboot_hca::Mmio;

/// A mapping of the HCA's BAR0 made by `*PortGetDeviceBase`.
#[derive(Debug)]
pub struct MappedBar {
    base: NonNull<u8>,
    len: usize,
}

impl MappedBar {
    /// Wraps a mapping; `None` for a null base.
    ///
    /// # Safety
    /// `base` is null or the start of `len` bytes of device memory mapped by the port for
    /// this adapter, valid until the driver unmaps it, and accessed only through this value.
    pub unsafe fn new(base: *mut u8, len: usize) -> Option<MappedBar> {
        NonNull::new(base).map(|base| MappedBar { base, len })
    }

    /// The mapped address, to unmap it.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The register at `offset` when it lies inside the mapping and is 4-byte aligned.
    fn register(&self, offset: usize) -> Option<NonNull<u32>> {
        let end = offset.checked_add(4)?;
        if end > self.len || !offset.is_multiple_of(4) {
            return None;
        }
        // SAFETY: offset + 4 <= len, so the result stays inside the mapping.
        Some(unsafe { self.base.add(offset) }.cast())
    }
}

impl Mmio for MappedBar {
    fn read32(&self, offset: usize) -> u32 {
        match self.register(offset) {
            // SAFETY: an aligned register inside the mapping (see `new`); device memory
            // must be read with a volatile access of the register's width.
            Some(reg) => u32::from_be(unsafe { reg.as_ptr().read_volatile() }),
            None => u32::MAX,
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        if let Some(reg) = self.register(offset) {
            // SAFETY: as in `read32`.
            unsafe { reg.as_ptr().write_volatile(value.to_be()) }
        }
    }
}
