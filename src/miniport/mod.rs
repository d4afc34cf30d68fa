//! The miniport's side of each port callback, in safe code: the port module
//! (`port::entry`) only turns the port's pointers into these values and back.
//!
//! * [`srb`]: an SRB's fields → what to do; an [`Outcome`] → what goes back.
//! * [`table`]: the SRBs in flight, by the initiator's `user` handle.
//! * [`segments`]: a data buffer → physically contiguous segments.
//! * [`hal`]: the access layer's `Hal` over BAR0, the port's stall and a clock.
//! * Here: [`start_io`] (one SRB handed to the initiator), [`wait_until_ready`] (the
//!   loader's and the dump stack's bounded wait for the disk), and [`Scheduler`] (the
//!   port timer that drives the initiator when nothing else does).
//!
//! The initiator is reached through [`Engine`], which [`Initiator`] implements over
//! the image's [`hal::PortHal`]; tests drive these functions with a model engine.

pub mod hal;
pub mod segments;
pub mod srb;
pub mod table;

use fabboot_hca::Mmio;

use crate::pci::ConfigAccess;

use crate::initiator::{Host, Initiator, Refused, Request, Segment, State, TAGS};
use crate::port::abi::{SRB_STATUS_BUSY, SRB_STATUS_NO_DEVICE, SRB_STATUS_SUCCESS};
use hal::{PortHal, Stall};
use srb::{Action, SrbFields};
use table::SrbTable;

/// SRBs the miniport can hold at once: one per command tag, and one LUN reset.
pub const SRB_SLOTS: usize = TAGS + 1;

/// How often the port's timer polls the initiator while something is under way and
/// no interrupt will say so (no device interrupts armed).
pub const POLL_INTERVAL_US: u64 = 1_000;

/// How often it polls while something is under way with interrupts armed: a safety
/// net for a message that never arrives (an interrupt the port did not connect).
pub const SAFETY_POLL_US: u64 = 100_000;

/// Longest single stall of [`wait_until_ready`]: how late a reply that arrives during
/// a stall is seen.
pub const WAIT_STEP_US: u32 = 1_000;

/// How long the loader and the dump stack wait for the disk ([`wait_until_ready`]):
/// the initiator's own limits (30 s for the port to become ACTIVE, three SA rounds,
/// the CM's retries) end sooner when the fabric or target is missing; this bound
/// ends a wait that would otherwise go on reconnecting.
pub const READY_WAIT_US: u64 = 60_000_000;

/// The initiator as the port callbacks use it.
pub trait Engine {
    /// Where it stands.
    fn state(&self) -> State;
    /// The time at the start of a port callback (reads the clock source once).
    fn tick(&self) -> u64;
    /// Busy-waits (the port's stall).
    fn stall_us(&self, us: u32);
    /// [`Initiator::poll`].
    fn poll(&mut self, now_us: u64, host: &mut impl Host) -> Option<u64>;
    /// [`Initiator::submit`].
    fn submit(
        &mut self,
        now_us: u64,
        req: &Request<'_>,
        segments: impl IntoIterator<Item = Segment>,
        host: &mut impl Host,
    ) -> Result<(), Refused>;
    /// [`Initiator::reset_lun`].
    fn reset_lun(
        &mut self,
        now_us: u64,
        user: u32,
        lun: u8,
        host: &mut impl Host,
    ) -> Result<(), Refused>;
}

impl<B: Mmio, S: Stall, C: ConfigAccess> Engine for Initiator<PortHal<B, S, C>> {
    fn state(&self) -> State {
        Initiator::state(self)
    }
    fn tick(&self) -> u64 {
        self.hal().tick()
    }
    fn stall_us(&self, us: u32) {
        fabboot_hca::hal::Hal::stall_us(self.hal(), us)
    }
    fn poll(&mut self, now_us: u64, host: &mut impl Host) -> Option<u64> {
        Initiator::poll(self, now_us, host)
    }
    fn submit(
        &mut self,
        now_us: u64,
        req: &Request<'_>,
        segments: impl IntoIterator<Item = Segment>,
        host: &mut impl Host,
    ) -> Result<(), Refused> {
        Initiator::submit(self, now_us, req, segments, host)
    }
    fn reset_lun(
        &mut self,
        now_us: u64,
        user: u32,
        lun: u8,
        host: &mut impl Host,
    ) -> Result<(), Refused> {
        Initiator::reset_lun(self, now_us, user, lun, host)
    }
}

/// The port as the initiator's [`Host`], with the table of SRBs in flight (its
/// `complete` takes the SRB out of the table and hands it back to the port).
pub trait Port<P: Copy>: Host {
    /// The SRBs in flight.
    fn srbs(&mut self) -> &mut SrbTable<P, SRB_SLOTS>;
}

/// What became of an SRB handed to [`start_io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// The initiator has it (or has already completed it through [`Host::complete`]);
    /// the caller must not touch the SRB again.
    Pending,
    /// The caller completes it now with this `SRB_STATUS_*` (no data moved).
    Done(u8),
}

/// `HwStartIo`: hands one SRB to the initiator.
///
/// Until the initiator is ready (the port is coming up, the target is being reached,
/// or the channel is being rebuilt), SCSI commands and resets of LUNs the target may
/// still present are answered `SRB_STATUS_BUSY`, which makes the port send them again
/// later: never a failure while the target may still come. Once the initiator has
/// given up ([`State::Failed`]), commands find no device. A LUN reset while no command
/// is on the target has nothing to reset and succeeds.
pub fn start_io<E: Engine, P: Copy, H: Port<P>>(
    engine: &mut E,
    now_us: u64,
    fields: &SrbFields,
    srb: P,
    segments: impl IntoIterator<Item = Segment>,
    port: &mut H,
) -> Started {
    let action = srb::classify(fields);
    let state = engine.state();
    match (action, state) {
        (Action::Complete(status), _) => Started::Done(status),
        (Action::Execute { .. }, State::Failed) => Started::Done(SRB_STATUS_NO_DEVICE),
        (Action::ResetLun, State::Ready) | (Action::Execute { .. }, State::Ready) => {
            let Some(user) = port.srbs().insert(srb) else {
                return Started::Done(SRB_STATUS_BUSY);
            };
            let sent = match action {
                Action::Execute { dir } => {
                    let req = fields.request(user, dir);
                    engine.submit(now_us, &req, segments, port)
                }
                _ => engine.reset_lun(now_us, user, fields.lun, port),
            };
            match sent {
                Ok(()) => Started::Pending,
                Err(Refused::Busy) => {
                    let _ = port.srbs().take(user);
                    Started::Done(SRB_STATUS_BUSY)
                }
            }
        }
        (Action::ResetLun, _) => Started::Done(SRB_STATUS_SUCCESS),
        (Action::Execute { .. }, _) => Started::Done(SRB_STATUS_BUSY),
    }
}

/// A number for [`State`] in event details: 1 port wait, 2 path, 3 connect, 4
/// discover, 5 ready, 6 back-off, 7 failed.
pub fn state_code(state: State) -> u16 {
    match state {
        State::PortWait => 1,
        State::Path => 2,
        State::Connect => 3,
        State::Discover => 4,
        State::Ready => 5,
        State::Backoff => 6,
        State::Failed => 7,
    }
}

/// Why [`wait_until_ready`] ended without a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The initiator gave up (its own event says why).
    Failed,
    /// `bound_us` passed; where the initiator stood.
    TimedOut(State),
}

/// Drives the initiator with polls and stalls until it is ready, it gives up, or
/// `bound_us` of its time passes: the loader and the dump stack have no interrupt and
/// no timer, and send their first SRB as soon as `HwFindAdapter`/`HwInitialize`
/// return. Each round reads the clock once, polls, and stalls until the initiator's
/// next deadline, at most [`WAIT_STEP_US`] (replies arrive without telling). Time
/// advances by the stalls even without a device clock, so the wait always ends.
pub fn wait_until_ready<E: Engine>(
    engine: &mut E,
    host: &mut impl Host,
    bound_us: u64,
) -> Result<(), WaitError> {
    let start = engine.tick();
    loop {
        let now = engine.tick();
        let wake = engine.poll(now, host);
        match engine.state() {
            State::Ready => return Ok(()),
            State::Failed => return Err(WaitError::Failed),
            state if now.saturating_sub(start) >= bound_us => {
                return Err(WaitError::TimedOut(state));
            }
            _ => {}
        }
        let step = wake.map_or(u64::from(WAIT_STEP_US), |w| w.saturating_sub(now));
        let step = u32::try_from(step)
            .unwrap_or(WAIT_STEP_US)
            .clamp(1, WAIT_STEP_US);
        engine.stall_us(step);
    }
}

/// What to ask of the port's timer (`RequestTimerCall`: one timer per adapter, a new
/// request replaces the old, 0 µs cancels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerRequest {
    /// Call back in this many microseconds.
    Arm(u32),
    /// Cancel the pending call.
    Cancel,
}

/// Keeps the port's one timer on the initiator's next deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scheduler {
    armed_for: Option<u64>,
}

impl Scheduler {
    /// Nothing armed.
    pub const fn new() -> Scheduler {
        Scheduler { armed_for: None }
    }

    /// The timer called back (it is one-shot).
    pub fn fired(&mut self) {
        self.armed_for = None;
    }

    /// After a poll at `now_us` that asked to run again at `wake` (and with the port
    /// to be polled every `poll_every` µs, when set): the timer request to make, if
    /// anything changes.
    pub fn plan(
        &mut self,
        now_us: u64,
        wake: Option<u64>,
        poll_every: Option<u64>,
    ) -> Option<TimerRequest> {
        let polled = poll_every.map(|p| now_us.saturating_add(p.max(1)));
        let due = match (wake, polled) {
            (Some(w), Some(p)) => Some(w.min(p)),
            (w, p) => w.or(p),
        };
        match due {
            None => self.armed_for.take().map(|_| TimerRequest::Cancel),
            Some(t) if self.armed_for == Some(t) => None,
            Some(t) => {
                self.armed_for = Some(t);
                let delay = t.saturating_sub(now_us).max(1);
                Some(TimerRequest::Arm(u32::try_from(delay).unwrap_or(u32::MAX)))
            }
        }
    }
}

/// How often to poll without being asked, while the initiator is on its way to the
/// target or commands are in flight: every [`POLL_INTERVAL_US`] when no device
/// interrupt will announce what arrives, every [`SAFETY_POLL_US`] when one will.
/// `None` when idle and ready (a request's `HwStartIo` polls first) or failed.
pub fn poll_interval(state: State, in_flight: usize, interrupts: bool) -> Option<u64> {
    match state {
        State::Failed => None,
        State::Ready if in_flight == 0 => None,
        _ if interrupts => Some(SAFETY_POLL_US),
        _ => Some(POLL_INTERVAL_US),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::initiator::Outcome;
    use crate::port::abi::*;
    use core::cell::Cell;
    use fabboot_srp::cmd::DataDir;
    use std::vec::Vec;

    /// A model of the initiator: a state, a clock advanced by stalls, and requests
    /// that complete on a later poll (or at once, or are refused, as set).
    struct Model {
        state: State,
        now: Cell<u64>,
        ticks: Cell<usize>,
        polls: usize,
        ready_at: Option<u64>,
        refuse: bool,
        complete_at_once: bool,
        pending: Vec<(u32, Outcome)>,
        submitted: Vec<(u32, u8, DataDir, u32, Vec<Segment>)>,
        resets: Vec<(u32, u8)>,
    }

    impl Model {
        fn new(state: State) -> Model {
            Model {
                state,
                now: Cell::new(0),
                ticks: Cell::new(0),
                polls: 0,
                ready_at: None,
                refuse: false,
                complete_at_once: false,
                pending: Vec::new(),
                submitted: Vec::new(),
                resets: Vec::new(),
            }
        }
    }

    impl Engine for Model {
        fn state(&self) -> State {
            self.state
        }
        fn tick(&self) -> u64 {
            self.ticks.set(self.ticks.get() + 1);
            self.now.get()
        }
        fn stall_us(&self, us: u32) {
            self.now.set(self.now.get() + u64::from(us));
        }
        fn poll(&mut self, now_us: u64, host: &mut impl Host) -> Option<u64> {
            self.polls += 1;
            if self.ready_at.is_some_and(|t| now_us >= t) {
                self.state = State::Ready;
            }
            for (user, o) in self.pending.drain(..) {
                host.complete(user, &o);
            }
            self.ready_at.filter(|&t| t > now_us)
        }
        fn submit(
            &mut self,
            _now_us: u64,
            req: &Request<'_>,
            segments: impl IntoIterator<Item = Segment>,
            host: &mut impl Host,
        ) -> Result<(), Refused> {
            if self.refuse {
                return Err(Refused::Busy);
            }
            let segs: Vec<Segment> = segments.into_iter().collect();
            self.submitted
                .push((req.user, req.lun, req.dir, req.transfer_len, segs));
            let o = Outcome {
                transferred: req.transfer_len,
                ..Outcome::status(SRB_STATUS_SUCCESS)
            };
            if self.complete_at_once {
                host.complete(req.user, &o);
            } else {
                self.pending.push((req.user, o));
            }
            Ok(())
        }
        fn reset_lun(
            &mut self,
            _now_us: u64,
            user: u32,
            lun: u8,
            _host: &mut impl Host,
        ) -> Result<(), Refused> {
            if self.refuse {
                return Err(Refused::Busy);
            }
            self.resets.push((user, lun));
            self.pending
                .push((user, Outcome::status(SRB_STATUS_SUCCESS)));
            Ok(())
        }
    }

    /// A model port: SRBs are numbers; completions are recorded with the SRB.
    #[derive(Default)]
    struct ModelPort {
        srbs: SrbTable<u32, SRB_SLOTS>,
        completed: Vec<(u32, Outcome)>,
        events: Vec<Event>,
    }

    impl Host for ModelPort {
        fn complete(&mut self, user: u32, outcome: &Outcome) {
            if let Some(srb) = self.srbs.take(user) {
                self.completed.push((srb, *outcome));
            }
        }
        fn log(&mut self, event: Event) {
            self.events.push(event);
        }
    }

    impl Port<u32> for ModelPort {
        fn srbs(&mut self) -> &mut SrbTable<u32, SRB_SLOTS> {
            &mut self.srbs
        }
    }

    fn read(lun: u8) -> SrbFields {
        SrbFields {
            function: SRB_FUNCTION_EXECUTE_SCSI,
            path_id: 0,
            target: 0,
            lun,
            cdb_len: 10,
            cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            flags: SRB_FLAGS_DATA_IN,
            transfer_len: 512,
        }
    }

    const SEG: [Segment; 1] = [Segment {
        phys: 0x8000,
        len: 512,
    }];

    #[test]
    fn a_command_reaches_the_initiator_and_comes_back_to_its_srb() {
        let mut e = Model::new(State::Ready);
        let mut port = ModelPort::default();
        assert_eq!(
            start_io(&mut e, 0, &read(2), 0x51, SEG, &mut port),
            Started::Pending
        );
        let (user, lun, dir, len, segs) = e.submitted[0].clone();
        assert_eq!(
            (lun, dir, len, segs.as_slice()),
            (2, DataDir::In, 512, &SEG[..])
        );
        assert!(user < crate::initiator::INTERNAL);
        assert_eq!(port.srbs.len(), 1);
        e.poll(1, &mut port);
        assert_eq!(port.completed.len(), 1);
        assert_eq!(port.completed[0].0, 0x51);
        assert!(port.srbs.is_empty());
    }

    #[test]
    fn a_command_completed_during_submit_is_not_completed_twice() {
        let mut e = Model::new(State::Ready);
        e.complete_at_once = true;
        let mut port = ModelPort::default();
        assert_eq!(
            start_io(&mut e, 0, &read(0), 9, SEG, &mut port),
            Started::Pending
        );
        assert_eq!(port.completed.len(), 1);
        assert!(port.srbs.is_empty());
    }

    #[test]
    fn busy_until_ready_no_device_once_failed() {
        for state in [
            State::PortWait,
            State::Path,
            State::Connect,
            State::Discover,
            State::Backoff,
        ] {
            let mut e = Model::new(state);
            let mut port = ModelPort::default();
            assert_eq!(
                start_io(&mut e, 0, &read(0), 1, SEG, &mut port),
                Started::Done(SRB_STATUS_BUSY),
                "{state:?}"
            );
            let reset = SrbFields {
                function: SRB_FUNCTION_RESET_LOGICAL_UNIT,
                ..read(0)
            };
            assert_eq!(
                start_io(&mut e, 0, &reset, 2, SEG, &mut port),
                Started::Done(SRB_STATUS_SUCCESS)
            );
            assert!(e.submitted.is_empty() && port.srbs.is_empty());
        }
        let mut e = Model::new(State::Failed);
        let mut port = ModelPort::default();
        assert_eq!(
            start_io(&mut e, 0, &read(0), 1, SEG, &mut port),
            Started::Done(SRB_STATUS_NO_DEVICE)
        );
    }

    #[test]
    fn a_refused_request_is_busy_and_leaves_no_trace() {
        let mut e = Model::new(State::Ready);
        e.refuse = true;
        let mut port = ModelPort::default();
        assert_eq!(
            start_io(&mut e, 0, &read(0), 1, SEG, &mut port),
            Started::Done(SRB_STATUS_BUSY)
        );
        assert!(port.srbs.is_empty());
        // A full table is busy too, before the initiator is asked.
        let mut e = Model::new(State::Ready);
        for i in 0..SRB_SLOTS as u32 {
            assert_eq!(
                start_io(&mut e, 0, &read(0), i, SEG, &mut port),
                Started::Pending
            );
        }
        assert_eq!(
            start_io(&mut e, 0, &read(0), 99, SEG, &mut port),
            Started::Done(SRB_STATUS_BUSY)
        );
        assert_eq!(e.submitted.len(), SRB_SLOTS);
    }

    #[test]
    fn resets_go_to_the_initiator_and_other_functions_are_answered() {
        let mut e = Model::new(State::Ready);
        let mut port = ModelPort::default();
        for f in [SRB_FUNCTION_RESET_LOGICAL_UNIT, SRB_FUNCTION_RESET_DEVICE] {
            let srb = SrbFields {
                function: f,
                ..read(3)
            };
            assert_eq!(
                start_io(&mut e, 0, &srb, 5, [], &mut port),
                Started::Pending
            );
        }
        assert_eq!(e.resets.iter().map(|r| r.1).collect::<Vec<_>>(), [3, 3]);
        e.poll(0, &mut port);
        assert_eq!(port.completed.len(), 2);
        let flush = SrbFields {
            function: SRB_FUNCTION_FLUSH,
            ..read(0)
        };
        assert_eq!(
            start_io(&mut e, 0, &flush, 6, [], &mut port),
            Started::Done(SRB_STATUS_SUCCESS)
        );
        let other_target = SrbFields {
            target: 4,
            ..read(0)
        };
        assert_eq!(
            start_io(
                &mut Model::new(State::Connect),
                0,
                &other_target,
                7,
                [],
                &mut port
            ),
            Started::Done(SRB_STATUS_SELECTION_TIMEOUT)
        );
    }

    #[test]
    fn waiting_for_the_disk_polls_and_stalls_until_ready() {
        let mut e = Model::new(State::PortWait);
        e.ready_at = Some(25_500);
        let mut port = ModelPort::default();
        assert_eq!(wait_until_ready(&mut e, &mut port, 1_000_000), Ok(()));
        assert!(e.now.get() >= 25_500 && e.now.get() < 25_500 + u64::from(WAIT_STEP_US));
        assert!(e.polls <= 27 && e.polls >= 26, "{} polls", e.polls);
        assert_eq!(e.ticks.get(), e.polls + 1, "one clock read per round");
    }

    #[test]
    fn waiting_is_bounded_and_says_where_it_stopped() {
        let mut e = Model::new(State::Connect);
        let mut port = ModelPort::default();
        assert_eq!(
            wait_until_ready(&mut e, &mut port, 50_000),
            Err(WaitError::TimedOut(State::Connect))
        );
        assert!(e.now.get() >= 50_000 && e.now.get() <= 50_000 + u64::from(WAIT_STEP_US));
        let mut failed = Model::new(State::Failed);
        assert_eq!(
            wait_until_ready(&mut failed, &mut port, 50_000),
            Err(WaitError::Failed)
        );
        assert_eq!(failed.polls, 1);
        assert_eq!(state_code(State::Connect), 3);
    }

    #[test]
    fn the_timer_follows_the_next_deadline_and_polls_when_asked() {
        let mut s = Scheduler::new();
        assert_eq!(s.plan(100, None, None), None, "nothing armed, nothing due");
        assert_eq!(
            s.plan(100, Some(5_100), None),
            Some(TimerRequest::Arm(5_000))
        );
        assert_eq!(s.plan(200, Some(5_100), None), None, "already armed for it");
        assert_eq!(
            s.plan(200, Some(5_100), Some(POLL_INTERVAL_US)),
            Some(TimerRequest::Arm(1_000))
        );
        assert_eq!(s.plan(300, None, None), Some(TimerRequest::Cancel));
        assert_eq!(s.plan(300, None, None), None);
        assert_eq!(
            s.plan(300, Some(10), None),
            Some(TimerRequest::Arm(1)),
            "overdue"
        );
        s.fired();
        assert_eq!(s.plan(400, Some(10), None), Some(TimerRequest::Arm(1)));
        assert_eq!(
            s.plan(400, Some(u64::MAX), None),
            Some(TimerRequest::Arm(u32::MAX))
        );
    }

    #[test]
    fn polling_only_while_something_is_under_way_and_rarely_with_interrupts() {
        assert_eq!(poll_interval(State::Ready, 0, false), None);
        assert_eq!(
            poll_interval(State::Ready, 1, false),
            Some(POLL_INTERVAL_US)
        );
        assert_eq!(
            poll_interval(State::Connect, 0, false),
            Some(POLL_INTERVAL_US)
        );
        assert_eq!(poll_interval(State::Connect, 0, true), Some(SAFETY_POLL_US));
        assert_eq!(poll_interval(State::Ready, 2, true), Some(SAFETY_POLL_US));
        assert_eq!(poll_interval(State::Ready, 0, true), None);
        assert_eq!(poll_interval(State::Failed, 3, false), None);
    }
}
