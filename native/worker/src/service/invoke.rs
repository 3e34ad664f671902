//! `Invoke`: admission first (before outputs are allocated or inputs
//! copied), then the kernel on the compute pool — or, for a call its client
//! estimated below `--inline-work-threshold`, right here on the I/O thread;
//! and the start-up warm-up that runs every kernel's own
//! (descriptor-derived) warm-up on the pool.

use super::tensors::{
    allocate_outputs, check_overlaps, decode_inputs, decode_params, plan_outputs, reserve_outputs, Input, Output,
};
use super::{App, Call};
use crate::admission::{inline, on_pool};
use crate::catalog::WorkerState;
use crate::grpc::Status;
use crate::pb::accelerator::{InvokeReply, InvokeRequest};
use std::sync::Arc;
use tandem_sdk::{TensorMut, TensorRef};

pub async fn invoke(app: &Arc<App>, req: InvokeRequest, call: &mut Call) -> Result<InvokeReply, Status> {
    app.refuse_if_draining()?;
    let state = if req.state_id.is_empty() { None } else { Some(app.states.get(&req.state_id)?) };
    invoke_with_state(app, req, state, call).await
}

async fn invoke_with_state(
    app: &Arc<App>,
    req: InvokeRequest,
    state: Option<Arc<WorkerState>>,
    call: &mut Call,
) -> Result<InvokeReply, Status> {
    call.kernel.clone_from(&req.kernel);
    let (kernel, descriptor) = app.catalog.find(&req.kernel, req.kernel_version)?;
    let (kernel, name) = (*kernel, descriptor.name.clone());
    let catalog = Arc::clone(&app.catalog);
    let ticket = app.admission.admit().inspect_err(|_| app.metrics.reject("capacity"))?;
    let inputs = decode_inputs(&req.inputs, &app.regions, "input")?;
    let params = decode_params(&req.params)?;
    let plan = plan_outputs(&req.outputs, &app.regions, app.config.max_message_bytes)?;
    let tiny = req.work > 0 && req.work < app.config.inline_work_threshold;
    drop(req);
    let (slot, queued) = app.admission.slot(ticket).await?;
    call.queue = queued;
    call.ctx.check()?;
    let ctx = call.ctx.clone();
    let job = move || {
        let mut outputs = allocate_outputs(plan)?;
        check_overlaps(&inputs, &outputs)?;
        reserve_outputs(&mut outputs)?;
        let views: Vec<TensorRef<'_>> = inputs.iter().map(Input::view).collect();
        let mut out_views: Vec<TensorMut<'_>> = outputs.iter_mut().map(Output::view).collect();
        catalog.invoke(&kernel, state.as_deref(), &views, &params, &mut out_views, &ctx)?;
        drop(out_views);
        // Into the client's shared ranges, still on the thread that ran the kernel.
        outputs.iter_mut().for_each(Output::publish);
        Ok(outputs)
    };
    let done = if tiny { inline(slot, &name, job) } else { on_pool(Some(slot), &name, job).await };
    let (outputs, compute) = done.inspect_err(|err| {
        if err.is_work_refusal() {
            app.metrics.reject("work");
        }
    })?;
    call.compute = compute;
    Ok(InvokeReply {
        outputs: outputs.into_iter().map(Output::into_reply).collect(),
        queue_micros: call.queue.as_micros() as u64,
        compute_micros: compute.as_micros() as u64,
        instance_id: app.instance_id.clone(),
    })
}

/// Runs every kernel's warm-up (derived from its descriptor unless the kernel
/// supplies its own) on the compute pool, so the first real call finds its
/// code paths, pool threads and allocations warm. A kernel whose warm-up
/// fails is logged and the others still run.
pub async fn warm_up(app: &Arc<App>) -> Result<(), Status> {
    let mut first_error = None;
    for (name, kernel) in app.catalog.kernel_refs() {
        let (kernel, catalog) = (*kernel, Arc::clone(&app.catalog));
        if let Err(err) = on_pool(None, &name, move || catalog.warm_up(&kernel)).await {
            crate::log::warn(
                "warm-up of a kernel failed",
                serde_json::json!({ "kernel": name, "code": err.code.name(), "message": err.message }),
            );
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}
