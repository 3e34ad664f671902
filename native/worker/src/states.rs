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

/// The states one worker holds, bounded in number and bytes (`--max-states`,
/// `--max-state-bytes`): a client cannot make the worker hold more.
pub struct States {
    states: Mutex<Table>,
    max_count: usize,
    max_bytes: u64,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    bytes: u64,
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
    pub fn new(max_count: usize, max_bytes: u64) -> States {
        States { states: Mutex::new(Table::default()), max_count, max_bytes }
    }

    /// Refuses, before any work, a state of `bytes` that would not fit.
    pub fn check_room(&self, bytes: u64) -> Result<(), Status> {
        let states = self.states.lock().map_err(|_| poisoned())?;
        self.room(&states, bytes)
    }

    fn room(&self, table: &Table, bytes: u64) -> Result<(), Status> {
        if table.entries.len() >= self.max_count {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "the worker holds {} states, its limit (--max-states {}); drop one (DropState) first",
                    table.entries.len(),
                    self.max_count
                ),
            ));
        }
        if table.bytes.saturating_add(bytes) > self.max_bytes {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "a state of {bytes} bytes does not fit: the worker holds {} bytes of states and its limit is {} (--max-state-bytes); drop states first",
                    table.bytes, self.max_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Number and bytes of the states held.
    pub fn usage(&self) -> Result<(usize, u64), Status> {
        let states = self.states.lock().map_err(|_| poisoned())?;
        Ok((states.entries.len(), states.bytes))
    }

    pub fn get(&self, id: &str) -> Result<Arc<WorkerState>, Status> {
        let states = self.states.lock().map_err(|_| poisoned())?;
        states
            .entries
            .get(id)
            .map(|e| Arc::clone(&e.state))
            .ok_or_else(|| status(Code::NotFound, format!("no state has id '{id}'; create it first (CreateState)")))
    }

    pub fn contains(&self, id: &str) -> Result<bool, Status> {
        Ok(self.states.lock().map_err(|_| poisoned())?.entries.contains_key(id))
    }

    pub fn insert(&self, id: &str, size_bytes: u64, state: WorkerState) -> Result<(), Status> {
        let mut states = self.states.lock().map_err(|_| poisoned())?;
        if states.entries.contains_key(id) {
            return Err(already_exists(id));
        }
        // Checked again under the lock: concurrent creations passed `check_room` together.
        self.room(&states, size_bytes)?;
        states.bytes += size_bytes;
        states.entries.insert(id.to_owned(), Entry { kind: state.kind.clone(), size_bytes, state: Arc::new(state) });
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<bool, Status> {
        let mut states = self.states.lock().map_err(|_| poisoned())?;
        let removed = states.entries.remove(id);
        if let Some(entry) = &removed {
            states.bytes -= entry.size_bytes;
        }
        Ok(removed.is_some())
    }

    pub fn list(&self) -> Result<Vec<StateInfo>, Status> {
        let states = self.states.lock().map_err(|_| poisoned())?;
        let mut list: Vec<StateInfo> = states
            .entries
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> WorkerState {
        WorkerState { library: 0, kind: "bytes".into(), size_bytes: 0, value: Box::new(()) }
    }

    #[test]
    fn refuses_states_beyond_the_count_and_byte_limits_until_one_is_dropped() {
        let states = States::new(2, 100);
        states.insert("a", 60, state()).unwrap();
        let too_big = states.insert("b", 41, state()).unwrap_err();
        assert_eq!(too_big.code, Code::ResourceExhausted);
        assert!(
            too_big.message.contains("holds 60 bytes of states and its limit is 100 (--max-state-bytes)"),
            "{}",
            too_big.message
        );
        states.insert("b", 40, state()).unwrap();
        let too_many = states.check_room(0).unwrap_err();
        assert!(too_many.message.contains("holds 2 states, its limit (--max-states 2)"), "{}", too_many.message);
        assert!(states.remove("a").unwrap());
        assert_eq!(states.usage().unwrap(), (1, 40));
        states.insert("c", 60, state()).unwrap();
        assert_eq!(states.usage().unwrap(), (2, 100));
    }
}
