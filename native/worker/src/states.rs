//! Named kernel states (vector collections), chosen by the client. States
//! are `Arc`s: a call holds its own reference, so dropping a state while a
//! call reads it is safe.

use crate::catalog::WorkerState;
use crate::grpc::{status, Code, Status};
use crate::pb::accelerator::StateInfo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Longest state id, in bytes.
pub const MAX_ID_LEN: usize = 256;

struct Entry {
    kind: String,
    size_bytes: u64,
    state: Arc<WorkerState>,
}

#[derive(Default)]
pub struct States {
    states: Mutex<HashMap<String, Entry>>,
}

fn poisoned() -> Status {
    status(Code::Internal, "the state table's lock was poisoned by an earlier failure")
}

pub fn check_id(id: &str) -> Result<(), Status> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(status(Code::InvalidArgument, format!("state_id must be 1 to {MAX_ID_LEN} bytes long")));
    }
    Ok(())
}

impl States {
    pub fn get(&self, id: &str) -> Result<Arc<WorkerState>, Status> {
        let states = self.states.lock().map_err(|_| poisoned())?;
        states
            .get(id)
            .map(|e| Arc::clone(&e.state))
            .ok_or_else(|| status(Code::NotFound, format!("no state has id '{id}'; create it first (CreateState)")))
    }

    pub fn contains(&self, id: &str) -> Result<bool, Status> {
        Ok(self.states.lock().map_err(|_| poisoned())?.contains_key(id))
    }

    pub fn insert(&self, id: &str, size_bytes: u64, state: WorkerState) -> Result<(), Status> {
        let mut states = self.states.lock().map_err(|_| poisoned())?;
        if states.contains_key(id) {
            return Err(already_exists(id));
        }
        states.insert(id.to_owned(), Entry { kind: state.kind.clone(), size_bytes, state: Arc::new(state) });
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<bool, Status> {
        Ok(self.states.lock().map_err(|_| poisoned())?.remove(id).is_some())
    }

    pub fn list(&self) -> Result<Vec<StateInfo>, Status> {
        let states = self.states.lock().map_err(|_| poisoned())?;
        let mut list: Vec<StateInfo> = states
            .iter()
            .map(|(id, e)| StateInfo { state_id: id.clone(), kind: e.kind.clone(), size_bytes: e.size_bytes })
            .collect();
        list.sort_by(|a, b| a.state_id.cmp(&b.state_id));
        Ok(list)
    }
}

pub fn already_exists(id: &str) -> Status {
    status(Code::AlreadyExists, format!("a state with id '{id}' already exists"))
}
