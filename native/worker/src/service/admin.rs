//! `Describe`, the state and shared-memory RPCs, and `Drain`.

use super::tensors::decode_input;
use super::App;
use crate::admission::on_pool;
use crate::grpc::{status, Code, Status};
use crate::pb::accelerator::*;
use crate::states::{already_exists, check_id};
use std::sync::Arc;
use tandem_sdk::ABI_VERSION;

pub fn describe(app: &App) -> DescribeReply {
    DescribeReply {
        kernel_set: Some(app.catalog.kernel_set().clone()),
        worker_version: app.worker_version.clone(),
        abi_version: ABI_VERSION,
        compute_threads: tandem_sdk::pool::threads() as u32,
        max_concurrency: app.admission.max_concurrency as u32,
        max_queue: app.admission.max_queue as u32,
        max_message_bytes: app.config.max_message_bytes as u64,
        instance_id: app.instance_id.clone(),
        fast_path_socket: app.fast_path_socket.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        fast_path_version: if app.fast_path_socket.is_some() { u32::from(crate::fast::frame::VERSION) } else { 0 },
        state_repository: app.config.repository.is_some(),
    }
}

/// CreateState naming a stored state: loaded from the worker's repository
/// (the checksum verified on the compute pool), charged what its file's
/// tensors hold before anything is mapped.
async fn load_stored_state(
    app: &Arc<App>,
    req: CreateStateRequest,
    stored: StoredStateRef,
) -> Result<CreateStateReply, Status> {
    if !req.tensors.is_empty() {
        return Err(status(
            Code::InvalidArgument,
            "CreateState names a stored state and carries tensors; send one or the other",
        ));
    }
    let Some(root) = app.config.repository.clone() else {
        return Err(status(
            Code::FailedPrecondition,
            format!(
                "this worker has no state repository, so it cannot load stored state '{}'; start it with --repository DIR",
                stored.name.escape_debug()
            ),
        ));
    };
    let worker = Arc::clone(app);
    let (state, _) = on_pool(None, "CreateState", move || {
        let repository = tandem_sdk::repository::Repository::open(&root)?;
        let id = match stored.version {
            0 => repository.latest(&stored.name)?,
            v => tandem_sdk::repository::StateId { name: stored.name.clone(), version: v },
        };
        let declared = repository.manifest(&id)?.data_length;
        worker.states.check_room(declared).inspect_err(|_| worker.metrics.reject("states"))?;
        worker.catalog.load_state(&root, &req.kind, &id.name, id.version)
    })
    .await?;
    let size_bytes = state.size_bytes;
    app.states.insert(&req.state_id, size_bytes, state).inspect_err(|_| app.metrics.reject("states"))?;
    Ok(CreateStateReply { state_id: req.state_id, size_bytes })
}

pub async fn create_state(app: &Arc<App>, req: CreateStateRequest) -> Result<CreateStateReply, Status> {
    app.refuse_if_draining()?;
    check_id(&req.state_id)?;
    if app.states.contains(&req.state_id)? {
        return Err(already_exists(&req.state_id));
    }
    if let Some(stored) = req.stored.clone() {
        return load_stored_state(app, req, stored).await;
    }
    if req.tensors.len() > super::tensors::MAX_ITEMS {
        return Err(status(Code::InvalidArgument, "too many tensors"));
    }
    // Before anything is copied or built: the bytes the request declares.
    app.states
        .check_room(req.tensors.iter().map(declared_bytes).sum())
        .inspect_err(|_| app.metrics.reject("states"))?;
    let mut tensors = Vec::with_capacity(req.tensors.len());
    for (i, t) in req.tensors.iter().enumerate() {
        tensors.push(if t.dtype == 0 { None } else { Some(decode_input(t, &app.regions, &format!("tensor {i}"))?) });
    }
    // Trailing optional tensors may be left out entirely.
    let expected = app.catalog.state_kind(&req.kind).map(|k| k.tensors.len());
    if let Some(expected) = expected {
        while tensors.len() < expected {
            tensors.push(None);
        }
    }
    let size_bytes: u64 = tensors.iter().flatten().map(|t| t.bytes().len() as u64).sum();
    let kind = req.kind.clone();
    let catalog = Arc::clone(&app.catalog);
    let (state, _) = on_pool(None, "CreateState", move || {
        let views: Vec<_> = tensors.iter().map(|t| t.as_ref().map(|t| t.view())).collect();
        catalog.create_state(&kind, &views)
    })
    .await?;
    // The budget holds what the state keeps, which may be well above its
    // inputs (a collection pads rows to SIMD lanes and may generate ids:
    // up to 18x for dimension 1); the pre-check above could only see the
    // declared bytes.
    let size_bytes = size_bytes.max(state.size_bytes);
    app.states.insert(&req.state_id, size_bytes, state).inspect_err(|_| app.metrics.reject("states"))?;
    Ok(CreateStateReply { state_id: req.state_id, size_bytes })
}

pub fn drop_state(app: &App, req: DropStateRequest) -> Result<DropStateReply, Status> {
    Ok(DropStateReply { dropped: app.states.remove(&req.state_id)? })
}

pub fn list_states(app: &App) -> Result<ListStatesReply, Status> {
    Ok(ListStatesReply { states: app.states.list()? })
}

pub fn register_shared_memory(
    app: &App,
    req: RegisterSharedMemoryRequest,
) -> Result<RegisterSharedMemoryReply, Status> {
    app.regions.register(&req.name, &req.path, req.size).inspect_err(|e| {
        if e.code == Code::ResourceExhausted {
            app.metrics.reject("regions");
        }
    })?;
    crate::log::info("region registered", serde_json::json!({ "region": req.name, "size": req.size }));
    Ok(RegisterSharedMemoryReply {})
}

pub fn unregister_shared_memory(
    app: &App,
    req: UnregisterSharedMemoryRequest,
) -> Result<UnregisterSharedMemoryReply, Status> {
    Ok(UnregisterSharedMemoryReply { unregistered: app.regions.unregister(&req.name)? })
}

pub fn list_shared_memory(app: &App) -> Result<ListSharedMemoryReply, Status> {
    Ok(ListSharedMemoryReply { regions: app.regions.list()? })
}

pub fn drain(app: &App) -> DrainReply {
    let in_flight = app.lifecycle.in_flight() as u32;
    app.lifecycle.request_drain();
    DrainReply { in_flight }
}

/// The data bytes a request tensor declares (inline length or shared range length).
fn declared_bytes(t: &crate::pb::accelerator::Tensor) -> u64 {
    match &t.data {
        Some(crate::pb::accelerator::tensor::Data::InlineData(b)) => b.len() as u64,
        Some(crate::pb::accelerator::tensor::Data::Shared(r)) => r.length,
        None => 0,
    }
}
