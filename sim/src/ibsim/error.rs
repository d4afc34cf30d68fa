//! The bridge's errors: small, typed, and each naming the process or step it came from.

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// What went wrong, and where.
#[derive(Debug)]
pub enum Error {
    /// More clients than ibsim's compile-time `IBSIM_MAX_CLIENTS` (10), counting OpenSM's own
    /// (reference ibsim-opensm.md §0.3 and §4).
    TooManyClients {
        /// Clients the request would attach, OpenSM included.
        requested: usize,
        /// ibsim's limit.
        max: usize,
    },
    /// The requested topology cannot be written as a netfile (bad or reserved node name, no
    /// ports); `what` names the offending item.
    Spec {
        /// The offending name or item.
        what: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An operating-system call failed during `step`.
    Io {
        /// The step, e.g. "spawn opensm" or "bind data socket".
        step: &'static str,
        /// Which process, port or path.
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// A process the fabric started exited while it was still needed.
    Exited {
        /// "ibsim" or "opensm".
        process: &'static str,
        /// The step that found it dead.
        step: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log, for diagnosis.
        log_tail: String,
    },
    /// A bounded wait ran out.
    Timeout {
        /// What was awaited.
        step: &'static str,
        /// Which process or port.
        context: String,
        /// How long it waited.
        waited: Duration,
    },
    /// ibsim answered a control request with ERROR (type 0): unknown node name, all ten slots
    /// taken, or a second `issm` client on one node (reference §1.3, CONNECT row).
    Refused {
        /// The control request.
        request: &'static str,
        /// The port (node id) that asked.
        port: String,
    },
    /// A control reply, a data message or a MAD did not have the documented layout.
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// ibsim returned our own MAD with status 110: it could not be delivered (no route, link
    /// down, nobody to take it). Real hardware would time out silently, so this is the
    /// simulator's "send timed out" (reference §0.6).
    Bounced {
        /// The port that sent it.
        port: String,
        /// Where it was going.
        dlid: u16,
        /// The destination QP.
        dqp: u32,
    },
    /// An SA GetTableResp fills the whole MAD. ibsim has no RMPP and cuts an answer longer than
    /// one MAD to its first 256 bytes (reference §0.7), and umad2sim then reports length 256, so
    /// a full answer cannot be told from a cut one: the query must be narrowed.
    SaAnswerTooLarge {
        /// The MAD length the SA's datagram claimed.
        length: u64,
        /// The record size (AttributeOffset), in bytes.
        record_bytes: usize,
    },
    /// Refused before sending: a MAD of a class OpenSM has not registered, sent to OpenSM's
    /// node, crashes OpenSM under umad2sim (reference §0.8).
    WouldCrashOpenSm {
        /// The management class.
        class: u8,
        /// OpenSM's LID.
        dlid: u16,
    },
    /// A GSI MAD (destination QP 1) must carry the well-known Q_Key 0x80010000. ibsim carries
    /// no Q_Key (reference §1.4), so the bridge checks it where hardware would.
    BadQKey {
        /// The Q_Key given.
        qkey: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooManyClients { requested, max } => write!(
                f,
                "ibsim takes at most {max} clients (OpenSM included); {requested} requested"
            ),
            Error::Spec { what, reason } => write!(f, "topology: {what:?}: {reason}"),
            Error::Io {
                step,
                context,
                source,
            } => write!(f, "{step} ({context}): {source}"),
            Error::Exited {
                process,
                step,
                status,
                log_tail,
            } => write!(
                f,
                "{process} exited ({status}) during {step}; log ends:\n{log_tail}"
            ),
            Error::Timeout {
                step,
                context,
                waited,
            } => write!(f, "{step} ({context}): no result after {waited:?}"),
            Error::Refused { request, port } => {
                write!(f, "ibsim refused {request} from port {port:?}")
            }
            Error::Malformed { what, detail } => write!(f, "malformed {what}: {detail}"),
            Error::Bounced { port, dlid, dqp } => write!(
                f,
                "MAD from {port:?} to LID {dlid:#x} QP {dqp:#x} was not delivered (status 110)"
            ),
            Error::SaAnswerTooLarge {
                length,
                record_bytes,
            } => write!(
                f,
                "SA GetTableResp fills the MAD (length {length}, {record_bytes}-byte records): \
                 ibsim has no RMPP and cuts longer answers, so it may be incomplete"
            ),
            Error::WouldCrashOpenSm { class, dlid } => write!(
                f,
                "refusing to send class {class:#04x} to OpenSM's LID {dlid:#x}: it would crash it"
            ),
            Error::BadQKey { qkey } => {
                write!(f, "Q_Key {qkey:#010x} to QP1; GSI needs 0x80010000")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// An [`Error::Io`] for `step` on `context`.
    pub(crate) fn io(step: &'static str, context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            step,
            context: context.into(),
            source,
        }
    }
}
