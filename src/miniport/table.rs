//! The SRBs in flight: a fixed table in the device extension (no allocation) from the
//! initiator's `user` handle to the port's SRB.
//!
//! A handle is `generation << 8 | slot`: a completion for an SRB that already ended
//! (a stale handle) finds a different generation in the slot and is ignored rather
//! than completing the wrong SRB. Handles stay below
//! [`crate::initiator::INTERNAL`] (bit 31 clear), which the initiator keeps for its
//! own commands.

/// Bits of a handle that name the slot.
const SLOT_BITS: u32 = 8;
/// Generations wrap within 23 bits, so a handle never has bit 31 set.
const GENERATION_MASK: u32 = (1 << 23) - 1;

/// SRBs in flight, at most `N` (at most 256).
#[derive(Debug)]
pub struct SrbTable<P: Copy, const N: usize> {
    slots: [Option<(u32, P)>; N],
    generation: u32,
    len: usize,
}

impl<P: Copy, const N: usize> Default for SrbTable<P, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Copy, const N: usize> SrbTable<P, N> {
    const FITS: () = assert!(N > 0 && N <= 1 << SLOT_BITS);

    /// An empty table.
    pub const fn new() -> Self {
        let () = Self::FITS;
        SrbTable {
            slots: [None; N],
            generation: 0,
            len: 0,
        }
    }

    /// Keeps `srb`; its handle, or `None` when the table is full.
    pub fn insert(&mut self, srb: P) -> Option<u32> {
        let index = self.slots.iter().position(Option::is_none)?;
        self.generation = self.generation.wrapping_add(1) & GENERATION_MASK;
        let handle = self.generation << SLOT_BITS | index as u32;
        let slot = self.slots.get_mut(index)?;
        *slot = Some((handle, srb));
        self.len += 1;
        Some(handle)
    }

    /// Takes the SRB of `handle` out of the table; `None` for a handle that is not
    /// (or no longer) in it.
    pub fn take(&mut self, handle: u32) -> Option<P> {
        let index = (handle & ((1 << SLOT_BITS) - 1)) as usize;
        let slot = self.slots.get_mut(index)?;
        match *slot {
            Some((h, srb)) if h == handle => {
                *slot = None;
                self.len -= 1;
                Some(srb)
            }
            _ => None,
        }
    }

    /// SRBs in flight.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initiator::INTERNAL;

    #[test]
    fn handles_find_their_srb_once() {
        let mut t = SrbTable::<usize, 4>::new();
        let a = t.insert(0xA).unwrap();
        let b = t.insert(0xB).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.len(), 2);
        assert_eq!(t.take(b), Some(0xB));
        assert_eq!(t.take(b), None, "a handle ends once");
        assert_eq!(t.take(a), Some(0xA));
        assert!(t.is_empty());
    }

    #[test]
    fn a_full_table_refuses_and_a_stale_handle_finds_nothing() {
        let mut t = SrbTable::<u8, 2>::new();
        let a = t.insert(1).unwrap();
        t.insert(2).unwrap();
        assert_eq!(t.insert(3), None);
        assert_eq!(t.take(a), Some(1));
        // The slot is reused with a new generation: the old handle is stale.
        let c = t.insert(3).unwrap();
        assert_eq!(c & 0xFF, a & 0xFF);
        assert_eq!(t.take(a), None);
        assert_eq!(t.take(c), Some(3));
        assert_eq!(t.take(0xFFFF_FFFF), None);
    }

    #[test]
    fn handles_never_reach_the_initiators_own_range() {
        let mut t = SrbTable::<u8, 256>::new();
        for _ in 0..(GENERATION_MASK as usize + 10) {
            let h = t.insert(0).unwrap();
            assert!(h < INTERNAL, "{h:#x}");
            assert_eq!(t.take(h), Some(0));
        }
    }
}
