//! `Invoke`: admission first (before outputs are allocated or inputs
//! copied), then the kernel on the compute pool; and the start-up warm-up
//! that runs every kernel once through the same path.

use super::tensors::{allocate_outputs, check_overlaps, decode_inputs, decode_params, plan_outputs, Input, Output};
use super::{find_kernel, App, Call};
use crate::admission::on_pool;
use crate::grpc::Status;
use crate::pb::accelerator::{param_value, tensor, InvokeReply, InvokeRequest, OutputSpec, ParamValue, Tensor};
use bytes::Bytes;
use std::sync::Arc;
use tandem_kernels::{registry, CallContext, DType, State, TensorMut, TensorRef};

pub async fn invoke(app: &Arc<App>, req: InvokeRequest, call: &mut Call) -> Result<InvokeReply, Status> {
    app.refuse_if_draining()?;
    let state = if req.state_id.is_empty() { None } else { Some(app.states.get(&req.state_id)?) };
    invoke_with_state(app, req, state, call).await
}

async fn invoke_with_state(
    app: &Arc<App>,
    req: InvokeRequest,
    state: Option<Arc<State>>,
    call: &mut Call,
) -> Result<InvokeReply, Status> {
    call.kernel.clone_from(&req.kernel);
    let kernel = find_kernel(&req.kernel, req.kernel_version)?;
    let ticket = app.admission.admit().inspect_err(|_| app.metrics.reject("capacity"))?;
    let inputs = decode_inputs(&req.inputs, &app.regions, "input")?;
    let params = decode_params(&req.params)?;
    let plan = plan_outputs(&req.outputs, &app.regions, app.config.max_message_bytes)?;
    drop(req);
    let (slot, queued) = app.admission.slot(ticket).await?;
    call.queue = queued;
    call.ctx.check()?;
    let ctx = call.ctx.clone();
    let (outputs, compute) = on_pool(Some(slot), &kernel.descriptor().name, move || {
        let mut outputs = allocate_outputs(plan)?;
        check_overlaps(&inputs, &outputs)?;
        let views: Vec<TensorRef<'_>> = inputs.iter().map(Input::view).collect();
        let mut out_views: Vec<TensorMut<'_>> = outputs.iter_mut().map(Output::view).collect();
        registry().invoke(kernel, state.as_deref(), &views, &params, &mut out_views, &ctx)?;
        drop(out_views);
        Ok(outputs)
    })
    .await?;
    call.compute = compute;
    Ok(InvokeReply {
        outputs: outputs.into_iter().map(Output::into_reply).collect(),
        queue_micros: call.queue.as_micros() as u64,
        compute_micros: compute.as_micros() as u64,
        instance_id: app.instance_id.clone(),
    })
}

fn inline<T: Copy>(dtype: DType, shape: &[i64], values: &[T], to_le: impl Fn(T) -> Vec<u8>) -> Tensor {
    let bytes: Vec<u8> = values.iter().flat_map(|v| to_le(*v)).collect();
    Tensor { dtype: dtype as i32, shape: shape.to_vec(), data: Some(tensor::Data::InlineData(Bytes::from(bytes))) }
}

fn out(dtype: DType, shape: &[i64]) -> OutputSpec {
    OutputSpec { dtype: dtype as i32, shape: shape.to_vec(), shared: None }
}

fn int(v: i64) -> ParamValue {
    ParamValue { value: Some(param_value::Value::IntValue(v)) }
}

type WarmUpCall = (InvokeRequest, Option<Arc<State>>);

/// A tiny call of `kernel`, with the state it needs; `None` for kernels that
/// are not warmed up (fault injection).
fn warm_up_call(kernel: &str) -> Result<Option<WarmUpCall>, Status> {
    let f32s = |v: f32| v.to_le_bytes().to_vec();
    let mut req = InvokeRequest { kernel: kernel.to_owned(), ..Default::default() };
    let mut state = None;
    match kernel {
        tandem_kernels::similarity::KERNEL_NAME => {
            let vectors = [1.0f32, 0.0, 0.0, 1.0, 0.5, 0.5, -1.0, 0.0];
            let bytes: Vec<u8> = vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
            let view = TensorRef { dtype: DType::F32, shape: &[4, 2], bytes: &bytes };
            let aligned = super::tensors::AlignedBuf::copy_of(view.bytes)?;
            let view = TensorRef { bytes: aligned.bytes(), ..view };
            state = Some(Arc::new(
                registry().create_state(tandem_kernels::similarity::COLLECTION_KIND, &[Some(view), None])?,
            ));
            req.inputs = vec![inline(DType::F32, &[1, 2], &[1.0f32, 0.25], f32s)];
            req.params = vec![int(2), int(0)];
            req.outputs = vec![out(DType::I64, &[1, 2]), out(DType::F32, &[1, 2])];
        }
        tandem_kernels::montecarlo::KERNEL_NAME => {
            let option = [100.0f64, 100.0, 0.01, 0.2, 1.0, 1.0];
            req.inputs = vec![
                inline(DType::F64, &[1, 6], &option, |v: f64| v.to_le_bytes().to_vec()),
                inline(DType::I64, &[1], &[0i64], |v: i64| v.to_le_bytes().to_vec()),
            ];
            req.params = vec![int(64), int(1), int(0)];
            req.outputs = vec![out(DType::F64, &[1]), out(DType::F64, &[1])];
        }
        tandem_kernels::hashing::KERNEL_NAME => {
            req.inputs = vec![inline(DType::U8, &[3], b"abc", |v: u8| vec![v])];
            req.outputs = vec![out(DType::U8, &[32])];
        }
        tandem_kernels::diagnostics::Noop::NAME => {
            req.inputs =
                vec![inline(DType::U8, &[1], &[0u8], |v: u8| vec![v]), inline(DType::U8, &[0], &[], |v: u8| vec![v])];
        }
        _ => return Ok(None),
    }
    Ok(Some((req, state)))
}

/// Runs every kernel once with tiny inputs, so the first real call finds
/// its code paths, pool threads and allocations warm.
pub async fn warm_up(app: &Arc<App>) -> Result<(), Status> {
    let names: Vec<String> = registry().kernels().map(|k| k.descriptor().name.clone()).collect();
    for name in names {
        let Some((req, state)) = warm_up_call(&name)? else { continue };
        let mut call = Call::new("warm-up", CallContext::default());
        invoke_with_state(app, req, state, &mut call).await?;
    }
    Ok(())
}
