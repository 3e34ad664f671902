//! Open state kinds: long-lived data a kernel reads, such as a vector
//! collection. A library declares its own kinds by implementing
//! [`StateKind`]; Tandem itself lists none.

use crate::descriptor::StateKindDescriptor;
use crate::error::KernelError;
use crate::repository::StoredState;
use crate::tensor::TensorRef;
use std::any::Any;
use std::sync::Arc;

/// A kind of state: its descriptor (the tensors it is built from) and its
/// constructor. The tensors are validated against the descriptor before
/// `create` runs; `None` is an omitted optional tensor.
pub trait StateKind: Send + Sync + 'static {
    type State: Send + Sync + 'static;

    fn descriptor(&self) -> StateKindDescriptor;

    /// Builds the state from borrowed tensors (copy what you keep).
    fn create(&self, tensors: &[Option<TensorRef<'_>>]) -> Result<Self::State, KernelError>;

    /// Bytes the state holds, reported to hosts and counted against their budgets.
    fn size_bytes(&self, state: &Self::State) -> usize;

    /// Builds the state from the tensors of a verified repository file
    /// (`stored`, mapped read-only), already checked against the kind's
    /// descriptor. A kind whose state can read the file's pages in place
    /// keeps views of them ([`StoredState::share`]: the mapping lives as long
    /// as the views) instead of copying; the default copies, as
    /// [`StateKind::create`] does.
    fn load(&self, tensors: &[Option<TensorRef<'_>>], stored: &Arc<StoredState>) -> Result<Self::State, KernelError> {
        let _ = stored;
        self.create(tensors)
    }
}

/// A state of any kind, as the host holds it.
pub struct State {
    kind: String,
    size_bytes: usize,
    value: Box<dyn Any + Send + Sync>,
}

impl State {
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// The state as its kind's own type.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("kind", &self.kind).field("size_bytes", &self.size_bytes).finish()
    }
}

/// A [`StateKind`] with its state type erased, as a library stores it.
pub(crate) trait ErasedStateKind: Send + Sync {
    fn create(&self, name: &str, tensors: &[Option<TensorRef<'_>>]) -> Result<State, KernelError>;
    fn load(
        &self,
        name: &str,
        tensors: &[Option<TensorRef<'_>>],
        stored: &Arc<StoredState>,
    ) -> Result<State, KernelError>;
}

impl<K: StateKind> ErasedStateKind for K {
    fn create(&self, name: &str, tensors: &[Option<TensorRef<'_>>]) -> Result<State, KernelError> {
        let value = StateKind::create(self, tensors)?;
        let size_bytes = self.size_bytes(&value);
        Ok(State { kind: name.to_owned(), size_bytes, value: Box::new(value) })
    }

    fn load(
        &self,
        name: &str,
        tensors: &[Option<TensorRef<'_>>],
        stored: &Arc<StoredState>,
    ) -> Result<State, KernelError> {
        let value = StateKind::load(self, tensors, stored)?;
        let size_bytes = self.size_bytes(&value);
        Ok(State { kind: name.to_owned(), size_bytes, value: Box::new(value) })
    }
}
