//! `InvokeStream`: a header, then data chunks (inline or shared-memory
//! references) fed one at a time into the kernel's stream (its
//! `tandem_sdk::KernelStream`) on the compute pool, so memory stays constant
//! whatever the stream's length.
//! HTTP/2 flow control is the backpressure: the next chunk is read only
//! after the previous one was hashed.
//!
//! A stream holds a compute slot only while one of its chunks (or its
//! finalize) runs, never while it waits for its client: an idle stream
//! keeps its kernel state and one of the `--max-open-streams` places, and
//! ends with DEADLINE_EXCEEDED after `--stream-idle-timeout` without data.

use super::tensors::{allocate_outputs, plan_outputs, Output};
use super::{App, Call};
use crate::admission::on_pool;
use crate::grpc::request::{decode, RequestMessages};
use crate::grpc::{status, Code, Status};
use crate::pb::accelerator::{stream_request::Part, InvokeReply, StreamRequest};
use bytes::Bytes;
use std::sync::Arc;
use tandem_sdk::descriptor::symbol;
use tandem_sdk::descriptor::KernelDescriptor;
use tandem_sdk::DType;

pub async fn invoke_stream(
    app: &Arc<App>,
    messages: &mut RequestMessages,
    call: &mut Call,
) -> Result<InvokeReply, Status> {
    app.refuse_if_draining()?;
    let _open = Arc::clone(&app.open_streams).try_acquire_owned().map_err(|_| {
        app.metrics.reject("streams");
        status(
            Code::ResourceExhausted,
            format!(
                "the worker has {} streaming calls open, its limit (--max-open-streams); finish one or retry later",
                app.config.max_open_streams
            ),
        )
    })?;
    let _open_gauge = OpenStreamGauge::inc(&app.metrics.open_streams);
    let first =
        messages.next().await?.ok_or_else(|| status(Code::InvalidArgument, "the stream carried no header message"))?;
    let header = match decode::<StreamRequest>(first)?.part {
        Some(Part::Header(header)) => header,
        _ => return Err(status(Code::InvalidArgument, "the first message of a stream must be its header")),
    };
    call.kernel.clone_from(&header.kernel);
    let (kernel, descriptor) = app.catalog.find(&header.kernel, header.kernel_version)?;
    let kernel = *kernel;
    if !descriptor.flags().streaming {
        return Err(status(
            Code::Unimplemented,
            format!("kernel '{}' does not stream; call Invoke instead", header.kernel),
        ));
    }
    if header.params.len() != descriptor.params.len() {
        return Err(status(
            Code::InvalidArgument,
            format!(
                "kernel '{}' takes {} parameter(s), got {}",
                header.kernel,
                descriptor.params.len(),
                header.params.len()
            ),
        ));
    }
    if header.outputs.len() != 1 || descriptor.outputs.len() != 1 {
        return Err(status(
            Code::InvalidArgument,
            format!("a stream of '{}' writes 1 output, got {}", header.kernel, header.outputs.len()),
        ));
    }
    let plan = plan_outputs(&header.outputs, &app.regions, app.config.max_message_bytes)?;
    check_stream_output(descriptor, plan[0].dtype, &plan[0].shape)?;

    // Refused at once when the worker is saturated, as a unary call would
    // be; the place is not kept while the stream waits for its chunks.
    drop(app.admission.admit().inspect_err(|_| app.metrics.reject("capacity"))?);
    let name = descriptor.name.clone();
    let mut stream = app.catalog.open_stream(&kernel)?;
    let mut bytes_hashed = 0u64;
    while let Some(message) = messages.next().await? {
        call.ctx.check()?;
        let chunk = match decode::<StreamRequest>(message)?.part {
            Some(Part::Data(data)) => Chunk::Inline(data),
            Some(Part::Shared(r)) => {
                // Copied out at once: the client may write the region at any time (crate::shm).
                let span = app.regions.resolve(&r, 1, "stream chunk")?;
                Chunk::Copied(super::tensors::AlignedBuf::copy_of_shared(&span)?)
            }
            Some(Part::Header(_)) => {
                return Err(status(Code::InvalidArgument, "a stream carries one header, at its start"))
            }
            None => return Err(status(Code::InvalidArgument, "a stream message carries no data")),
        };
        bytes_hashed += chunk.bytes().len() as u64;
        let (slot, queued) = app.admission.chunk_slot().await?;
        call.queue += queued;
        let (next, elapsed) = on_pool(Some(slot), &name, move || {
            stream.update(chunk.bytes())?;
            Ok(stream)
        })
        .await?;
        stream = next;
        call.compute += elapsed;
    }
    call.ctx.check()?;
    let (slot, queued) = app.admission.chunk_slot().await?;
    call.queue += queued;
    let (output, elapsed) = on_pool(Some(slot), &name, move || {
        let mut outputs = allocate_outputs(plan)?;
        let mut output: Output = outputs.pop().ok_or_else(|| status(Code::Internal, "missing output"))?;
        stream.finalize(output.view().bytes)?;
        Ok(output)
    })
    .await?;
    call.compute += elapsed;
    crate::log::event(
        crate::log::Level::Debug,
        "stream finished",
        serde_json::json!({ "kernel": call.kernel, "bytes": bytes_hashed }),
    );
    Ok(InvokeReply {
        outputs: vec![output.into_reply()],
        queue_micros: call.queue.as_micros() as u64,
        compute_micros: call.compute.as_micros() as u64,
        instance_id: app.instance_id.clone(),
    })
}

/// Checks a stream's output against the kernel's one output spec before
/// any data is read: dtype, rank, and the output symbol's declared maximum.
fn check_stream_output(descriptor: &KernelDescriptor, dtype: DType, shape: &[usize]) -> Result<(), Status> {
    let spec = &descriptor.outputs[0];
    if dtype as i32 != spec.dtype || shape.len() != spec.shape.len() {
        return Err(status(
            Code::InvalidArgument,
            format!("output '{}' of '{}' must match its descriptor's dtype and rank", spec.name, descriptor.name),
        ));
    }
    for (dim, &size) in spec.shape.iter().zip(shape) {
        let max = symbol(dim).and_then(|s| descriptor.output_symbols.iter().find(|o| o.name == s)).map(|o| o.max);
        if let Some(max) = max.filter(|&m| m > 0) {
            if size == 0 || size as i64 > max {
                return Err(status(
                    Code::InvalidArgument,
                    format!("output '{}' must be 1 to {max} long, got {size}", spec.name),
                ));
            }
        }
    }
    Ok(())
}

/// Counts an open stream until dropped, however the call ends.
struct OpenStreamGauge(prometheus::IntGauge);

impl OpenStreamGauge {
    fn inc(gauge: &prometheus::IntGauge) -> OpenStreamGauge {
        gauge.inc();
        OpenStreamGauge(gauge.clone())
    }
}

impl Drop for OpenStreamGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

enum Chunk {
    Inline(Bytes),
    Copied(super::tensors::AlignedBuf),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Inline(b) => b,
            Chunk::Copied(b) => b.bytes(),
        }
    }
}
