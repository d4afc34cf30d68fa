//! The session's errors: small, `Copy`, and each says what, where and which value.

use core::fmt;

use crate::Error;
use crate::iu::IuType;
use crate::login::RejectReason;

/// A field of SRP_LOGIN_RSP whose value the initiator cannot work with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginField {
    /// MAX INITIATOR-TO-TARGET IU LENGTH (bytes 16..20): together with ours, below the
    /// 64 bytes an SRP_CMD with one direct descriptor needs.
    MaxItIuLen,
    /// MAX TARGET-TO-INITIATOR IU LENGTH (bytes 20..24): below the 36 bytes of an
    /// SRP_RSP.
    MaxTiIuLen,
    /// REQUEST LIMIT DELTA (bytes 4..8): zero initial credits, or more than
    /// `i32::MAX` (the field is a signed delta; reference §1.1).
    RequestLimit,
    /// SUPPORTED BUFFER FORMATS (bytes 24..26): the target names formats but not
    /// direct descriptors, which every one-segment command uses.
    BufferFormats,
}

/// Why a login did not produce a channel (reference §2.2 steps 5 and 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// The REP or REJ private data is not a well-formed SRP_LOGIN_RSP / _REJ.
    Wire(Error),
    /// The response or reject carries another tag than our request.
    TagMismatch {
        /// Our request's tag.
        expected: u64,
        /// The tag received.
        got: u64,
    },
    /// SRP_LOGIN_RSP accepted the login with a value we cannot use.
    Invalid {
        /// The field.
        field: LoginField,
        /// Its value (for [`LoginField::MaxItIuLen`], the smaller of ours and the
        /// target's).
        value: u32,
    },
    /// SRP_LOGIN_REJ with a reason no retry can help with (or the ladder ran out).
    Rejected(RejectReason),
}

impl From<Error> for LoginError {
    fn from(e: Error) -> Self {
        LoginError::Wire(e)
    }
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LoginError::Wire(e) => write!(f, "login: {e}"),
            LoginError::TagMismatch { expected, got } => {
                write!(f, "login: tag {got:#x}, request had {expected:#x}")
            }
            LoginError::Invalid { field, value } => {
                write!(f, "SRP_LOGIN_RSP: {field:?} {value} unusable")
            }
            LoginError::Rejected(reason) => {
                write!(f, "SRP_LOGIN_REJ: {reason:?} ({:#010x})", u32::from(reason))
            }
        }
    }
}

impl core::error::Error for LoginError {}

/// Why [`Session::start`](super::Session::start) or
/// [`Session::start_task_mgmt`](super::Session::start_task_mgmt) refused (reference
/// §2.3: a refused command is retried later, as SCSI "host busy").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// Not enough credits: a command needs two (one stays for task management), task
    /// management needs one.
    NoCredit {
        /// Credits at the time.
        credits: i64,
    },
    /// Every tag slot of this kind is in use.
    NoTag,
    /// The target logged the channel out (SRP_T_LOGOUT); reconnect first.
    LoggedOut,
    /// ABORT TASK for a tag that names no command in flight (it has completed).
    NotInFlight {
        /// The tag to abort.
        tag: u64,
    },
    /// The task-management IU did not fit the buffer given.
    Wire(Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StartError::NoCredit { credits } => write!(f, "no credit ({credits} left)"),
            StartError::NoTag => f.write_str("no free tag"),
            StartError::LoggedOut => f.write_str("channel logged out by the target"),
            StartError::NotInFlight { tag } => write!(f, "tag {tag:#x} is not in flight"),
            StartError::Wire(e) => write!(f, "SRP_TSK_MGMT: {e}"),
        }
    }
}

impl core::error::Error for StartError {}

/// Why [`Session::build_cmd`](super::Session::build_cmd) wrote no command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// The tag is not one [`Session::start`](super::Session::start) reserved and no
    /// IU has been built for yet (a task-management tag, a stale tag, a tag already
    /// used). Nothing is given back.
    NotReserved {
        /// The tag.
        tag: u64,
    },
    /// More than one segment, but the login did not grant indirect descriptors.
    IndirectNotNegotiated {
        /// Segments offered.
        segments: usize,
    },
    /// More segments than [`Negotiated::max_sg`](super::Negotiated::max_sg).
    TooManySegments {
        /// Segments offered.
        segments: usize,
        /// The most one command may carry.
        max: usize,
    },
    /// The SRP_CMD emitter refused (CDB over 16 bytes, segments without a direction,
    /// buffer too short, length overflow).
    Wire(Error),
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CmdError::NotReserved { tag } => write!(f, "tag {tag:#x} is not reserved"),
            CmdError::IndirectNotNegotiated { segments } => {
                write!(f, "{segments} segments need indirect descriptors")
            }
            CmdError::TooManySegments { segments, max } => {
                write!(f, "{segments} segments, at most {max} per command")
            }
            CmdError::Wire(e) => write!(f, "SRP_CMD: {e}"),
        }
    }
}

impl core::error::Error for CmdError {}

/// A received IU the session could not act on. The session stays usable; the error
/// is counted in [`Stats::errors`](super::Stats::errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// A zero-byte IU.
    Empty,
    /// The IU does not parse: shorter than its fixed part, or a length field reaching
    /// past the received bytes (see [`Error`]); or the reply did not fit `reply_buf`.
    Wire(Error),
    /// More bytes than the MAX TARGET-TO-INITIATOR IU LENGTH the target announced.
    IuTooLong {
        /// The IU.
        iu: IuType,
        /// Bytes received.
        len: usize,
        /// The negotiated maximum.
        max: u32,
    },
    /// An IU a target does not send on a logged-in channel: initiator IUs, login IUs
    /// and unknown opcodes.
    UnexpectedIu(IuType),
    /// SRP_RSP with a tag this session did not hand out, or one from an older
    /// generation of its slot (stale or forged). No command is completed.
    UnknownTag {
        /// The tag received.
        tag: u64,
    },
    /// SRP_RSP with the current tag of a slot that has no IU in flight (already
    /// completed or abandoned, or started and never built).
    NotInFlight {
        /// The tag received.
        tag: u64,
    },
    /// SRP_RSP whose sense data is longer than SCSI sense can be
    /// ([`MAX_SENSE_LEN`](super::MAX_SENSE_LEN)). The command stays in flight.
    SenseTooLong {
        /// The command's tag.
        tag: u64,
        /// SENSE DATA LIST LENGTH.
        len: usize,
    },
    /// SRP_RSP with both the UNDER and the OVER flag of one direction set. The command
    /// stays in flight.
    ResidualFlags {
        /// The command's tag.
        tag: u64,
        /// The flags byte (byte 18).
        flags: u8,
    },
}

impl From<Error> for SessionError {
    fn from(e: Error) -> Self {
        SessionError::Wire(e)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SessionError::Empty => f.write_str("empty IU"),
            SessionError::Wire(e) => e.fmt(f),
            SessionError::IuTooLong { iu, len, max } => {
                write!(f, "{iu:?}: {len} bytes, target announced at most {max}")
            }
            SessionError::UnexpectedIu(iu) => write!(f, "unexpected IU {iu:?}"),
            SessionError::UnknownTag { tag } => write!(f, "SRP_RSP: unknown tag {tag:#x}"),
            SessionError::NotInFlight { tag } => {
                write!(f, "SRP_RSP: tag {tag:#x} has nothing in flight")
            }
            SessionError::SenseTooLong { tag, len } => {
                write!(f, "SRP_RSP: tag {tag:#x}: {len} bytes of sense")
            }
            SessionError::ResidualFlags { tag, flags } => {
                write!(
                    f,
                    "SRP_RSP: tag {tag:#x}: flags {flags:#04x} over and under"
                )
            }
        }
    }
}

impl core::error::Error for SessionError {}
