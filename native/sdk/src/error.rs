//! One error taxonomy on every boundary: the gRPC status codes, same numbers.

use std::fmt;

/// gRPC status codes (same numbers in the C ABI, the worker and C#).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The code with this gRPC number; UNKNOWN for a number outside 0..=16.
    pub fn from_raw(raw: i32) -> Code {
        const ALL: [Code; 17] = [
            Code::Ok,
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Unauthenticated,
        ];
        usize::try_from(raw).ok().and_then(|i| ALL.get(i).copied()).unwrap_or(Code::Unknown)
    }

    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

/// A failed call: a code and a message meant for the caller (no paths, no
/// Rust type names, no backtraces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError {
    pub code: Code,
    pub message: String,
}

impl KernelError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// The named limit that refused the call: the `(limit NAME)` a budget's
    /// message carries (C# reads the same marker as `TandemException.Limit`),
    /// so it survives the C ABI and the wire, where only code and message
    /// travel. `None` when no limit is named.
    pub fn limit(&self) -> Option<&str> {
        let start = self.message.find("(limit ")? + "(limit ".len();
        let len = self.message[start..].find(')')?;
        let name = &self.message[start..start + len];
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'));
        valid.then_some(name)
    }

    /// Whether a descriptor's work bound refused the call
    /// ([`crate::validate::WORK_LIMIT`]): the same call is refused on every
    /// worker, so it is counted apart and never retried elsewhere.
    pub fn is_work_refusal(&self) -> bool {
        self.code == Code::ResourceExhausted && self.limit() == Some(crate::validate::WORK_LIMIT)
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for KernelError {}

#[cfg(test)]
mod tests {
    use super::{Code, KernelError};

    #[test]
    fn limit_reads_the_marker_a_budget_names() {
        let work = KernelError::new(
            Code::ResourceExhausted,
            "kernel 'k' asks for 12 units of work (n 12); at most 10 per call (limit max_work_per_call); split the call",
        );
        assert_eq!(work.limit(), Some("max_work_per_call"));
        assert!(work.is_work_refusal());
        let queue = KernelError::new(Code::ResourceExhausted, "queue is full (limit --max-queue)");
        assert_eq!(queue.limit(), Some("--max-queue"));
        assert!(!queue.is_work_refusal());
        assert_eq!(KernelError::invalid("(limit max_work_per_call)").limit(), Some("max_work_per_call"));
        assert!(!KernelError::invalid("(limit max_work_per_call)").is_work_refusal());
        for message in ["no limit here", "(limit )", "(limit two words)", "(limit unterminated"] {
            assert_eq!(KernelError::invalid(message).limit(), None, "{message}");
        }
    }

    #[test]
    fn from_raw_inverts_the_numbers() {
        for raw in 0..=16 {
            assert_eq!(Code::from_raw(raw) as i32, raw);
        }
        assert_eq!(Code::from_raw(-1), Code::Unknown);
        assert_eq!(Code::from_raw(17), Code::Unknown);
    }
}
