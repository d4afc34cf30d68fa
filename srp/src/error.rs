//! The wire error: what went wrong, in which IU, in which field, with the numbers.

use core::fmt;

use crate::iu::IuType;

/// A field named by an [`Error`], for the fields whose value can be rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// SRP_CMD CDB (more than 16 bytes offered to the emitter).
    Cdb,
    /// SRP_CMD ADDITIONAL CDB LENGTH (byte 31).
    AdditionalCdbLen,
    /// SRP_CMD BUFFER FORMATS (byte 5): a format this crate does not handle.
    BufferFormat,
    /// SRP_CMD DATA-OUT DESCRIPTOR COUNT (byte 6), or the DATA-OUT descriptors.
    DataOutDescriptors,
    /// SRP_CMD DATA-IN DESCRIPTOR COUNT (byte 7), or the DATA-IN descriptors.
    DataInDescriptors,
    /// Length of an indirect descriptor's table descriptor (bytes 12..16 of it).
    TableLength,
    /// The address of the inline descriptor table (the IU's address + 68) overflows.
    TableAddress,
    /// The sum of the segment lengths (the indirect TOTAL LENGTH) overflows 32 bits.
    TotalLength,
    /// Segments given for a command that has no data direction.
    DataDirection,
    /// SRP_RSP RESPONSE DATA LIST LENGTH (bytes 32..36), or response data given
    /// without RSPVALID.
    ResponseDataLen,
    /// SRP_RSP or SRP_AER_REQ SENSE DATA LIST LENGTH (bytes 28..32), or sense data
    /// given without SNSVALID.
    SenseDataLen,
}

/// An SRP wire error. Small and `Copy`; every variant says which IU it concerns.
///
/// Descriptors (which only travel inside SRP_CMD) report [`IuType::Cmd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Parsing: the buffer is shorter than the IU's fixed part.
    Truncated {
        /// The IU being parsed.
        iu: IuType,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// Parsing: byte 0 names another IU.
    WrongType {
        /// The IU the parser reads.
        expected: IuType,
        /// The type byte 0 names.
        got: IuType,
    },
    /// Parsing: a length or count field claims bytes beyond the end of the IU.
    LengthBeyondIu {
        /// The IU being parsed.
        iu: IuType,
        /// The length or count field.
        field: Field,
        /// Bytes the field implies (fixed part included).
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// A field value this crate cannot accept (parse or emit).
    Invalid {
        /// The IU concerned.
        iu: IuType,
        /// The field.
        field: Field,
        /// The offending value (a count, length or format, saturated to 32 bits).
        value: u32,
    },
    /// Emitting: the output buffer is shorter than the IU.
    BufferTooShort {
        /// The IU being emitted.
        iu: IuType,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// Emitting SRP_CMD: more segments than descriptors fit in an IU of this length
    /// (see [`crate::cmd::max_sg_entries`]).
    TooManySegments {
        /// Segments offered.
        segments: usize,
        /// Descriptors that fit.
        max: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { iu, needed, got } => {
                write!(f, "{iu:?}: truncated, {got} bytes of {needed}")
            }
            Error::WrongType { expected, got } => write!(f, "expected {expected:?}, got {got:?}"),
            Error::LengthBeyondIu {
                iu,
                field,
                needed,
                got,
            } => write!(f, "{iu:?}: {field:?} needs {needed} bytes, IU has {got}"),
            Error::Invalid { iu, field, value } => write!(f, "{iu:?}: {field:?} {value} invalid"),
            Error::BufferTooShort { iu, needed, got } => {
                write!(f, "{iu:?}: buffer of {got} bytes, IU needs {needed}")
            }
            Error::TooManySegments { segments, max } => {
                write!(f, "SRP_CMD: {segments} segments, at most {max} fit")
            }
        }
    }
}

impl core::error::Error for Error {}
