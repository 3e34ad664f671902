//! Per-call context: cancellation, deadline and trace identity. Kernels call
//! [`CallContext::check`] between chunks of work.

use crate::error::{Code, KernelError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A cancellation flag shared between the caller and a running kernel.
#[derive(Debug, Default)]
pub struct CancelFlag(AtomicBool);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Clone, Debug, Default)]
pub struct CallContext {
    pub cancel: Option<Arc<CancelFlag>>,
    pub deadline: Option<Instant>,
    /// W3C trace id of the caller's span (all zero when there is none).
    pub trace_id: [u8; 16],
}

impl CallContext {
    /// Fails with CANCELLED or DEADLINE_EXCEEDED when the call should stop.
    pub fn check(&self) -> Result<(), KernelError> {
        if let Some(flag) = &self.cancel {
            if flag.is_cancelled() {
                return Err(KernelError::new(Code::Cancelled, "the call was cancelled by the caller"));
            }
        }
        if let Some(deadline) = self.deadline {
            if Instant::now() >= deadline {
                return Err(KernelError::new(Code::DeadlineExceeded, "the call's deadline passed while it ran"));
            }
        }
        Ok(())
    }

    /// The trace id as 32 lowercase hex digits, or `None` when unset.
    pub fn trace_id_hex(&self) -> Option<String> {
        if self.trace_id.iter().all(|b| *b == 0) {
            return None;
        }
        Some(self.trace_id.iter().map(|b| format!("{b:02x}")).collect())
    }
}
