//! The SA PathRecord client: one SubnAdmGet(PathRecord) from our port to the target's
//! port, retried until the SA answers (IBTA vol. 1 §15.2–§15.4; reference
//! `srp-cm-sa-dm.md` §1.5 "How ib_srp queries a path", §2.2 step 1).
//!
//! A sans-I/O state machine: it owns no clock, no buffer and no queue. The caller
//! passes the time (`now_us`) and a 256-byte buffer to [`PathClient::poll`], sends the
//! MAD it writes from QP1 to the SM LID (QPN 1, Q_Key 0x80010000), and offers every
//! MAD it receives on QP1 to [`PathClient::on_mad`].
//!
//! # Timing
//!
//! - Each attempt waits [`PathClient::attempt_timeout_us`]:
//!   2 × 4.096 µs × 2^SubnetTimeOut, clamped to [1 ms, 2 s]. ib_srp waits 1 s once;
//!   we wait about as long per attempt and retry.
//! - After a timeout or a BUSY answer the next attempt waits a back-off first. Before
//!   retry `n` (1 for the first retry) the base is `d = min(T × 2^(n−1), 4 s)`, with `T`
//!   the attempt timeout. The back-off is `d + j`, with `j` drawn uniformly from
//!   `0..=d/4` by a xorshift32 seeded by the caller, so that initiators booted together
//!   do not retry in step.
//! - Every attempt carries its own TID: the caller's base TID with its low byte
//!   replaced by the attempt number (0, 1, ...). Late replies to earlier attempts are
//!   not accepted.

use super::Error;
use super::Gid;
use super::ib_time_us;
use super::mad::{MadHeader, attr, class, method};
use super::sa::{PathQuery, PathRecord, PathReply, SaStatus};

/// Shortest attempt timeout, µs.
pub const MIN_ATTEMPT_TIMEOUT_US: u64 = 1_000;
/// Longest attempt timeout, µs.
pub const MAX_ATTEMPT_TIMEOUT_US: u64 = 2_000_000;
/// Cap on the back-off base `d` (the jitter may add a quarter on top), µs.
pub const MAX_BACKOFF_US: u64 = 4_000_000;

/// Mask of the TID bits that number the attempt.
const ATTEMPT_MASK: u64 = 0xFF;

/// What to ask the SA (reference §1.5; the query itself is [`PathQuery`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathParams {
    /// Our port's GID (PathRecord SGID).
    pub sgid: Gid,
    /// The target port's GID (PathRecord DGID).
    pub dgid: Gid,
    /// The partition (PathRecord P_Key).
    pub pkey: u16,
    /// The target's service ID, when the query should carry it.
    pub service_id: Option<u64>,
    /// PortInfo SubnetTimeOut (IBTA vol. 1 §14.2.5.6), 5 bits; higher bits ignored.
    pub subnet_timeout: u8,
    /// Gets sent at most (e.g. 8); 0 counts as 1.
    pub max_attempts: u8,
}

/// Why the query failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// No usable answer to any of `attempts` Gets; the last one timed out.
    Timeout {
        /// Gets sent.
        attempts: u8,
    },
    /// The SA answered BUSY (MAD status bit 0, IBTA vol. 1 §13.4.7) to the last of
    /// `attempts` Gets.
    Busy {
        /// Gets sent.
        attempts: u8,
    },
    /// The SA answered with an error status other than BUSY and ERR_NO_RECORDS (the
    /// raw MAD status word, IBTA vol. 1 §13.4.7 and §15.2.1.1 Table 184).
    Status {
        /// The MAD status word.
        status: u16,
    },
    /// ERR_NO_RECORDS (status 0x0300): the SA knows no path between the two GIDs in
    /// this partition.
    NoRecord,
    /// The Get could not be written (cannot happen with a 256-byte buffer; kept typed).
    Emit(Error),
}

/// Counters of what the client saw (reference §1.5; for diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Gets sent.
    pub sent: u32,
    /// PathRecord GetResps carrying the current attempt's TID.
    pub replies: u32,
    /// Of those, BUSY answers.
    pub busy: u32,
    /// Of those, answers that could not be used (malformed, or a record for other
    /// GIDs); the attempt keeps waiting.
    pub ignored: u32,
    /// PathRecord GetResps carrying the TID of an earlier attempt (late replies).
    pub stale: u32,
    /// Attempts that timed out.
    pub timeouts: u32,
}

/// What the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// `out` holds a SubnAdmGet(PathRecord): send it to the SM LID, QPN 1, Q_Key
    /// 0x80010000 (reference §1.5 "How the SA MAD is addressed").
    Send,
    /// Nothing to do before `until_us` unless a MAD arrives.
    Wait {
        /// The next deadline.
        until_us: u64,
    },
    /// The SA's record, as it stands (MTU, rate, SL, packet lifetime, DLID, P_Key...).
    Done(PathRecord),
    /// The query failed for good.
    Failed(PathError),
}

/// Where the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The next poll sends an attempt.
    Ready,
    /// An attempt with `tid` is out until `deadline`.
    Waiting { deadline: u64, tid: u64 },
    /// Backing off until `until`.
    Backoff { until: u64 },
    /// Finished with a record.
    Done(PathRecord),
    /// Finished with an error.
    Failed(PathError),
}

/// Why an attempt ended without a record.
#[derive(Clone, Copy)]
enum Miss {
    Timeout,
    Busy,
}

/// The SA PathRecord client (IBTA vol. 1 §15.4; reference §1.5, §2.2 step 1): a Copy
/// state machine, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathClient {
    params: PathParams,
    tid_base: u64,
    rng: u32,
    attempts: u8,
    timeout_us: u64,
    phase: Phase,
    stats: PathStats,
}

impl PathClient {
    /// A client that sends its first Get on the first [`poll`](Self::poll). `tid` is
    /// the caller's base TID (its low byte is replaced by the attempt number); `seed`
    /// seeds the back-off jitter.
    pub fn new(params: PathParams, tid: u64, seed: u32) -> Self {
        let timeout_us = ib_time_us(params.subnet_timeout & 0x1F)
            .saturating_mul(2)
            .clamp(MIN_ATTEMPT_TIMEOUT_US, MAX_ATTEMPT_TIMEOUT_US);
        PathClient {
            params,
            tid_base: tid & !ATTEMPT_MASK,
            rng: if seed == 0 { 0x9E37_79B9 } else { seed },
            attempts: 0,
            timeout_us,
            phase: Phase::Ready,
            stats: PathStats::default(),
        }
    }

    /// How long each attempt waits for its answer, µs (see the module docs).
    pub fn attempt_timeout_us(&self) -> u64 {
        self.timeout_us
    }

    /// Gets sent so far.
    pub fn attempts(&self) -> u8 {
        self.attempts
    }

    /// The counters.
    pub fn stats(&self) -> PathStats {
        self.stats
    }

    fn max_attempts(&self) -> u8 {
        self.params.max_attempts.max(1)
    }

    /// Drives the client at time `now_us`: writes the next Get into `out` and returns
    /// [`PathStep::Send`], or says how long to wait, or gives the outcome (again on
    /// every later call).
    pub fn poll(&mut self, now_us: u64, out: &mut [u8; 256]) -> PathStep {
        if let Phase::Waiting { deadline, .. } = self.phase
            && now_us >= deadline
        {
            self.stats.timeouts = self.stats.timeouts.saturating_add(1);
            self.miss(now_us, Miss::Timeout);
        }
        match self.phase {
            Phase::Ready => self.send(now_us, out),
            Phase::Backoff { until } if now_us >= until => self.send(now_us, out),
            Phase::Backoff { until } => PathStep::Wait { until_us: until },
            Phase::Waiting { deadline, .. } => PathStep::Wait { until_us: deadline },
            Phase::Done(rec) => PathStep::Done(rec),
            Phase::Failed(e) => PathStep::Failed(e),
        }
    }

    /// Offers a MAD received on QP1. Returns true when it was the reply to the current
    /// attempt (class SA, method GetResp, attribute PathRecord, the attempt's TID) and
    /// has been consumed, whether or not it was usable; false for anything else,
    /// late replies to earlier attempts included. Call [`poll`](Self::poll) after a
    /// true return to learn the outcome.
    ///
    /// - BUSY (status bit 0) retries after a back-off, or fails with
    ///   [`PathError::Busy`] when the attempts are used up.
    /// - ERR_NO_RECORDS fails with [`PathError::NoRecord`]; any other non-zero status
    ///   with [`PathError::Status`].
    /// - A reply that does not parse, or whose record names other GIDs than asked, is
    ///   counted in [`PathStats::ignored`]; the attempt keeps waiting.
    pub fn on_mad(&mut self, now_us: u64, mad: &[u8]) -> bool {
        let Ok(hdr) = MadHeader::parse(mad) else {
            return false;
        };
        if hdr.mgmt_class != class::SUBN_ADM
            || hdr.method != method::GET_RESP
            || hdr.attr_id != attr::PATH_RECORD
        {
            return false;
        }
        let current = match self.phase {
            Phase::Waiting { tid, .. } => Some(tid),
            _ => None,
        };
        if current != Some(hdr.tid) {
            if self.is_earlier_tid(hdr.tid) {
                self.stats.stale = self.stats.stale.saturating_add(1);
            }
            return false;
        }
        self.stats.replies = self.stats.replies.saturating_add(1);
        let reply = match PathReply::parse(mad) {
            Ok(r) => r,
            Err(_) => {
                self.stats.ignored = self.stats.ignored.saturating_add(1);
                return true;
            }
        };
        let status = u16::from(reply.status);
        if status & 0x0001 != 0 {
            self.stats.busy = self.stats.busy.saturating_add(1);
            self.miss(now_us, Miss::Busy);
            return true;
        }
        self.phase = match (reply.status, reply.record) {
            (SaStatus::Ok, Some(rec))
                if rec.sgid == self.params.sgid && rec.dgid == self.params.dgid =>
            {
                Phase::Done(rec)
            }
            (SaStatus::Ok, _) => {
                self.stats.ignored = self.stats.ignored.saturating_add(1);
                return true;
            }
            (SaStatus::NoRecords, _) => Phase::Failed(PathError::NoRecord),
            _ => Phase::Failed(PathError::Status { status }),
        };
        true
    }

    /// Whether `tid` is one of ours from an attempt already sent.
    fn is_earlier_tid(&self, tid: u64) -> bool {
        tid & !ATTEMPT_MASK == self.tid_base && (tid & ATTEMPT_MASK) < u64::from(self.attempts)
    }

    fn send(&mut self, now_us: u64, out: &mut [u8; 256]) -> PathStep {
        let query = PathQuery {
            sgid: self.params.sgid,
            dgid: self.params.dgid,
            pkey: self.params.pkey,
            service_id: self.params.service_id,
        };
        let tid = self.tid_base | u64::from(self.attempts);
        if let Err(e) = query.emit(tid, out) {
            self.phase = Phase::Failed(PathError::Emit(e));
            return PathStep::Failed(PathError::Emit(e));
        }
        self.attempts = self.attempts.saturating_add(1);
        self.stats.sent = self.stats.sent.saturating_add(1);
        self.phase = Phase::Waiting {
            deadline: now_us.saturating_add(self.timeout_us),
            tid,
        };
        PathStep::Send
    }

    /// The current attempt ended without a record: back off, or fail when every
    /// attempt is used.
    fn miss(&mut self, now_us: u64, why: Miss) {
        let attempts = self.attempts;
        self.phase = if attempts >= self.max_attempts() {
            Phase::Failed(match why {
                Miss::Timeout => PathError::Timeout { attempts },
                Miss::Busy => PathError::Busy { attempts },
            })
        } else {
            Phase::Backoff {
                until: now_us.saturating_add(self.backoff_us(attempts)),
            }
        };
    }

    /// The back-off before retry `retry` (1 for the first), module docs "Timing".
    fn backoff_us(&mut self, retry: u8) -> u64 {
        let shift = u32::from(retry.saturating_sub(1)).min(32);
        let base = self
            .timeout_us
            .saturating_mul(1u64 << shift)
            .min(MAX_BACKOFF_US);
        let span = (base / 4).saturating_add(1);
        let jitter = u64::from(self.next_random()).checked_rem(span).unwrap_or(0);
        base.saturating_add(jitter)
    }

    /// xorshift32 (Marsaglia, shifts 13/17/5).
    fn next_random(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod test {
    use super::*;

    fn params(subnet_timeout: u8) -> PathParams {
        PathParams {
            sgid: [1; 16],
            dgid: [2; 16],
            pkey: 0xFFFF,
            service_id: None,
            subnet_timeout,
            max_attempts: 3,
        }
    }

    #[test]
    fn attempt_timeout_is_clamped() {
        assert_eq!(
            PathClient::new(params(0), 0, 1).attempt_timeout_us(),
            MIN_ATTEMPT_TIMEOUT_US
        );
        assert_eq!(
            PathClient::new(params(31), 0, 1).attempt_timeout_us(),
            MAX_ATTEMPT_TIMEOUT_US
        );
        // 2 × 4.096 µs × 2^12 = 33.55 ms, rounded up per IB time value.
        assert_eq!(
            PathClient::new(params(12), 0, 1).attempt_timeout_us(),
            33_556
        );
    }

    #[test]
    fn zero_attempts_still_sends_once() {
        let mut c = PathClient::new(
            PathParams {
                max_attempts: 0,
                ..params(0)
            },
            0,
            1,
        );
        let mut out = [0u8; 256];
        assert_eq!(c.poll(0, &mut out), PathStep::Send);
        assert_eq!(
            c.poll(1_000, &mut out),
            PathStep::Failed(PathError::Timeout { attempts: 1 })
        );
    }
}
