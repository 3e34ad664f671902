//! Per-call context: cancellation, deadline and trace identity. Kernels call
//! [`CallContext::check`] between chunks of work.

use crate::error::{Code, KernelError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

type Hook = Box<dyn FnOnce() + Send>;

/// A cancellation flag shared between the caller and a running kernel. A
/// host that forwards the call elsewhere (the worker, into a kernel library
/// of its own) registers a hook that passes the cancellation on.
#[derive(Default)]
pub struct CancelFlag {
    cancelled: AtomicBool,
    hooks: Mutex<Vec<Hook>>,
}

impl std::fmt::Debug for CancelFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelFlag").field("cancelled", &self.is_cancelled()).finish()
    }
}

impl CancelFlag {
    /// Sets the flag and runs every hook once.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(|e| e.into_inner()));
        for hook in hooks {
            hook();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Runs `hook` when the flag is cancelled (at once if it already is).
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        let mut hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_cancelled() {
            drop(hooks);
            hook();
        } else {
            hooks.push(Box::new(hook));
        }
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
    /// A context with neither a cancel flag nor a deadline costs two
    /// comparisons (inlined: the boundary checks once before every call).
    #[inline]
    pub fn check(&self) -> Result<(), KernelError> {
        if self.cancel.is_none() && self.deadline.is_none() {
            return Ok(());
        }
        self.check_slow()
    }

    #[inline(never)]
    fn check_slow(&self) -> Result<(), KernelError> {
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
