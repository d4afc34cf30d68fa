//! Command tags: a fixed table of `N` command slots plus one task-management slot.
//!
//! A wire tag (SRP IU bytes 8..16, echoed by the target; reference §1.1) carries the
//! slot index and the slot's generation, so that a stale tag (from a command that
//! completed and whose slot was reused) or a forged one names no command instead of
//! completing another. Layout of the 64-bit tag:
//!
//! | bits   | meaning                                                   |
//! |--------|-----------------------------------------------------------|
//! | 63     | task management (ib_srp sets a high bit too, reference §2.3) |
//! | 48..63 | zero                                                      |
//! | 16..48 | generation of the slot (32 bits, never 0)                 |
//! | 0..16  | slot index (0 for task management)                        |

/// Bit 63: the tag belongs to the task-management slot.
const TASK_MGMT_BIT: u64 = 1 << 63;
/// Bits that must be zero in every tag this session hands out.
const RESERVED_BITS: u64 = 0x7FFF_0000_0000_0000;
/// Slot index bits.
const SLOT_MASK: u64 = 0xFFFF;
/// Shift of the generation.
const GENERATION_SHIFT: u32 = 16;

/// Most command slots a session can have: the slot index is 16 bits.
pub const MAX_SLOTS: usize = 65_536;

/// A tag handed out by [`Session::start`](super::Session::start) or
/// [`Session::start_task_mgmt`](super::Session::start_task_mgmt): the value that goes
/// on the wire and comes back in the SRP_RSP (reference §1.1, §2.3).
///
/// Only the session makes tags; the caller keeps them to build the command, to abort
/// it and to match completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag(u64);

impl Tag {
    /// The 64-bit tag as carried in the IU.
    pub const fn wire(self) -> u64 {
        self.0
    }

    /// Whether this is the tag of a task-management request.
    pub const fn is_task_mgmt(self) -> bool {
        self.0 & TASK_MGMT_BIT != 0
    }

    fn new(task_mgmt: bool, slot: u16, generation: u32) -> Tag {
        let high = if task_mgmt { TASK_MGMT_BIT } else { 0 };
        Tag(high | (u64::from(generation) << GENERATION_SHIFT) | u64::from(slot))
    }
}

/// What a wire tag names, before it is checked against the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decoded {
    /// Command slot `slot`, generation `generation`.
    Command { slot: usize, generation: u32 },
    /// The task-management slot, generation `generation`.
    TaskMgmt { generation: u32 },
}

/// `None` for a tag this session cannot have made (reserved bits, generation 0, or a
/// task-management tag with a slot index).
fn decode(wire: u64) -> Option<Decoded> {
    if wire & RESERVED_BITS != 0 {
        return None;
    }
    let slot = usize::from(u16::try_from(wire & SLOT_MASK).ok()?);
    let generation = u32::try_from((wire >> GENERATION_SHIFT) & u64::from(u32::MAX)).ok()?;
    if generation == 0 {
        return None;
    }
    if wire & TASK_MGMT_BIT != 0 {
        (slot == 0).then_some(Decoded::TaskMgmt { generation })
    } else {
        Some(Decoded::Command { slot, generation })
    }
}

/// The state of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// No command.
    Free,
    /// Tag and credit taken by `start`; the IU is not built yet.
    Reserved {
        /// The caller's handle.
        user: u32,
    },
    /// The IU was built and handed to the caller to send; a response is due.
    InFlight {
        /// The caller's handle.
        user: u32,
        /// Its logical unit (for [`Tags::drain`] after a LUN reset).
        lun: [u8; 8],
    },
}

impl State {
    /// The caller's handle, for a slot in use.
    pub(super) fn user(self) -> Option<u32> {
        match self {
            State::Free => None,
            State::Reserved { user } | State::InFlight { user, .. } => Some(user),
        }
    }
}

/// One slot: its state and the generation of its current (or last) tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    generation: u32,
    pub(super) state: State,
}

impl Slot {
    const FREE: Slot = Slot {
        generation: 0,
        state: State::Free,
    };

    /// Takes the slot for `user` with a new generation (never 0: 0 marks no tag).
    fn take(&mut self, user: u32) -> u32 {
        self.generation = match self.generation.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        self.state = State::Reserved { user };
        self.generation
    }
}

/// Why a wire tag names no command the target may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Not a tag of this session, or of an older generation of its slot.
    Unknown,
    /// The slot and generation match but no IU is in flight (the slot is free, or its
    /// command was started and not yet built).
    NotInFlight,
}

/// The slot table.
#[derive(Debug)]
pub(super) struct Tags<const N: usize> {
    slots: [Slot; N],
    task_mgmt: Slot,
    /// Where the next search for a free slot starts (spreads reuse over all slots, so a
    /// late response meets a free slot rather than a reused one where possible).
    next: usize,
}

impl<const N: usize> Tags<N> {
    /// Rejects, at compile time, a table whose slot index would not fit 16 bits.
    const FITS: () = assert!(N <= MAX_SLOTS, "at most 65536 command slots");

    /// An empty table.
    pub(super) const fn new() -> Self {
        let () = Self::FITS;
        Tags {
            slots: [Slot::FREE; N],
            task_mgmt: Slot::FREE,
            next: 0,
        }
    }

    /// Takes a free command slot for `user`; `None` if all `N` are in use.
    pub(super) fn reserve(&mut self, user: u32) -> Option<Tag> {
        let start = if self.next < N { self.next } else { 0 };
        let index = (start..N)
            .chain(0..start)
            .find(|&i| self.slots.get(i).is_some_and(|s| s.state == State::Free))?;
        let slot = self.slots.get_mut(index)?;
        let index16 = u16::try_from(index).ok()?;
        let generation = slot.take(user);
        self.next = index.saturating_add(1);
        Some(Tag::new(false, index16, generation))
    }

    /// Takes the task-management slot for `user`; `None` if it is in use.
    pub(super) fn reserve_task_mgmt(&mut self, user: u32) -> Option<Tag> {
        if self.task_mgmt.state != State::Free {
            return None;
        }
        let generation = self.task_mgmt.take(user);
        Some(Tag::new(true, 0, generation))
    }

    /// The slot a wire tag names, if the tag carries the slot's current generation.
    fn slot_mut(&mut self, wire: u64) -> Result<&mut Slot, Lookup> {
        let (slot, generation) = match decode(wire).ok_or(Lookup::Unknown)? {
            Decoded::Command { slot, generation } => {
                (self.slots.get_mut(slot).ok_or(Lookup::Unknown)?, generation)
            }
            Decoded::TaskMgmt { generation } => (&mut self.task_mgmt, generation),
        };
        if slot.generation != generation {
            return Err(Lookup::Unknown);
        }
        Ok(slot)
    }

    /// The state of the slot `tag` names, if `tag` is its current tag.
    pub(super) fn state(&mut self, tag: Tag) -> Option<State> {
        self.slot_mut(tag.wire()).ok().map(|s| s.state)
    }

    /// Marks a reserved slot in flight with `lun`; `false` if `tag` is not reserved.
    pub(super) fn mark_in_flight(&mut self, tag: Tag, lun: [u8; 8]) -> bool {
        match self.slot_mut(tag.wire()) {
            Ok(slot) => match slot.state {
                State::Reserved { user } => {
                    slot.state = State::InFlight { user, lun };
                    true
                }
                State::Free | State::InFlight { .. } => false,
            },
            Err(_) => false,
        }
    }

    /// Frees the slot `tag` names if it is in use; returns its previous state.
    pub(super) fn release(&mut self, tag: Tag) -> Option<State> {
        let slot = self.slot_mut(tag.wire()).ok()?;
        let was = slot.state;
        slot.state = State::Free;
        (was != State::Free).then_some(was)
    }

    /// Whether a received wire tag names a slot with an IU in flight.
    pub(super) fn check_in_flight(&mut self, wire: u64) -> Result<(), Lookup> {
        match self.slot_mut(wire)?.state {
            State::InFlight { .. } => Ok(()),
            State::Free | State::Reserved { .. } => Err(Lookup::NotInFlight),
        }
    }

    /// Frees the in-flight slot a received wire tag names; returns its tag and user.
    pub(super) fn complete(&mut self, wire: u64) -> Result<(Tag, u32), Lookup> {
        let slot = self.slot_mut(wire)?;
        match slot.state {
            State::InFlight { user, .. } => {
                slot.state = State::Free;
                Ok((Tag(wire), user))
            }
            State::Free | State::Reserved { .. } => Err(Lookup::NotInFlight),
        }
    }

    /// Command slots in use (reserved or in flight).
    pub(super) fn outstanding(&self) -> usize {
        self.slots.iter().filter(|s| s.state != State::Free).count()
    }

    /// Whether the task-management slot is in use.
    pub(super) fn task_mgmt_busy(&self) -> bool {
        self.task_mgmt.state != State::Free
    }

    /// Frees slots as it is iterated: every slot in use (task management included)
    /// when `lun` is `None`, else the in-flight commands for `lun`.
    pub(super) fn drain(&mut self, lun: Option<[u8; 8]>) -> Drain<'_> {
        Drain {
            slots: self.slots.iter_mut(),
            task_mgmt: if lun.is_none() {
                Some(&mut self.task_mgmt)
            } else {
                None
            },
            lun,
        }
    }
}

/// The users of freed slots, from [`Session::drain`](super::Session::drain) or
/// [`Session::drain_lun`](super::Session::drain_lun). Slots are freed as the iterator
/// advances; dropping it frees the rest, so a partly consumed drain still leaves no
/// slot in use.
#[derive(Debug)]
pub struct Drain<'a> {
    slots: core::slice::IterMut<'a, Slot>,
    task_mgmt: Option<&'a mut Slot>,
    lun: Option<[u8; 8]>,
}

impl Iterator for Drain<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        for slot in self.slots.by_ref() {
            let matches = match (self.lun, slot.state) {
                (None, state) => state != State::Free,
                (Some(want), State::InFlight { lun, .. }) => lun == want,
                (Some(_), State::Free | State::Reserved { .. }) => false,
            };
            if matches {
                let user = slot.state.user();
                slot.state = State::Free;
                return user;
            }
        }
        let slot = self.task_mgmt.take()?;
        let user = slot.state.user();
        slot.state = State::Free;
        user
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_through_decode() {
        let t = Tag::new(false, 7, 3);
        assert_eq!(t.wire(), (3 << 16) | 7);
        assert_eq!(
            decode(t.wire()),
            Some(Decoded::Command {
                slot: 7,
                generation: 3
            })
        );
        let t = Tag::new(true, 0, u32::MAX);
        assert!(t.is_task_mgmt());
        assert_eq!(
            decode(t.wire()),
            Some(Decoded::TaskMgmt {
                generation: u32::MAX
            })
        );
        assert_eq!(decode(0), None, "generation 0 is never handed out");
        assert_eq!(decode(1 << 48 | 1 << 16), None, "reserved bits");
        assert_eq!(decode(TASK_MGMT_BIT | 1 << 16 | 1), None, "TM with a slot");
    }

    #[test]
    fn generation_skips_zero() {
        let mut s = Slot {
            generation: u32::MAX,
            state: State::Free,
        };
        assert_eq!(s.take(9), 1);
        assert_eq!(s.state, State::Reserved { user: 9 });
    }

    #[test]
    fn a_drain_dropped_early_still_frees_everything() {
        let mut t = Tags::<4>::new();
        for u in 0..4 {
            assert!(t.reserve(u).is_some());
        }
        assert!(t.reserve_task_mgmt(9).is_some());
        let mut d = t.drain(None);
        assert!(d.next().is_some());
        drop(d);
        assert_eq!(t.outstanding(), 0);
        assert!(!t.task_mgmt_busy());
    }
}
