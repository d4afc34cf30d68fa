//! The configuration block embedded in the image ([`crate::bootcfg::block`]): a
//! `static` in a section of its own, `.fbcfg` (initialised, read-only, not
//! discardable), which a tool rewrites in the `.sys` file after linking. The driver
//! reads it with a volatile read, so the compiler cannot fold the value it was built
//! with into the code, and the reference keeps the linker from dropping it.

use crate::bootcfg::block;

#[used]
#[unsafe(link_section = ".fbcfg")]
static CONFIG_BLOCK: [u8; block::LEN] = block::UNCONFIGURED;

/// The block as the image file holds it.
pub fn read() -> [u8; block::LEN] {
    // SAFETY: CONFIG_BLOCK is an initialised, properly aligned static that nothing
    // writes at run time; the read is volatile only so that the bytes come from the
    // image rather than from the compiler's copy of the initialiser.
    unsafe { core::ptr::read_volatile(&raw const CONFIG_BLOCK) }
}
