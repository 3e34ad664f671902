//! `InvokeStream`: a header, then data chunks (inline or shared-memory
//! references) fed one at a time into an incremental BLAKE3 hasher on the
//! compute pool, so memory stays constant whatever the stream's length.
//! HTTP/2 flow control is the backpressure: the next chunk is read only
//! after the previous one was hashed.

use super::tensors::{allocate_outputs, plan_outputs, Output};
use super::{find_kernel, App, Call};
use crate::admission::on_pool;
use crate::grpc::request::{decode, RequestMessages};
use crate::grpc::{status, Code, Status};
use crate::pb::accelerator::{stream_request::Part, InvokeReply, StreamRequest};
use bytes::Bytes;
use std::sync::Arc;
use tandem_kernels::hashing::{check_output_len, update};
use tandem_kernels::DType;

pub async fn invoke_stream(
    app: &Arc<App>,
    messages: &mut RequestMessages,
    call: &mut Call,
) -> Result<InvokeReply, Status> {
    app.refuse_if_draining()?;
    let first =
        messages.next().await?.ok_or_else(|| status(Code::InvalidArgument, "the stream carried no header message"))?;
    let header = match decode::<StreamRequest>(first)?.part {
        Some(Part::Header(header)) => header,
        _ => return Err(status(Code::InvalidArgument, "the first message of a stream must be its header")),
    };
    call.kernel.clone_from(&header.kernel);
    let kernel = find_kernel(&header.kernel, header.kernel_version)?;
    if !kernel.streaming() {
        return Err(status(
            Code::Unimplemented,
            format!("kernel '{}' does not stream; call Invoke instead", header.kernel),
        ));
    }
    if header.params.len() != kernel.descriptor().params.len() {
        return Err(status(
            Code::InvalidArgument,
            format!(
                "kernel '{}' takes {} parameter(s), got {}",
                header.kernel,
                kernel.descriptor().params.len(),
                header.params.len()
            ),
        ));
    }
    if header.outputs.len() != 1 {
        return Err(status(
            Code::InvalidArgument,
            format!("a stream writes 1 output (digest), got {}", header.outputs.len()),
        ));
    }
    let plan = plan_outputs(&header.outputs, &app.regions, app.config.max_message_bytes)?;
    let digest = &plan[0];
    if digest.dtype != DType::U8 || digest.shape.len() != 1 {
        return Err(status(Code::InvalidArgument, "output 'digest' must be a u8 vector"));
    }
    check_output_len(digest.len)?;

    let ticket = app.admission.admit().inspect_err(|_| app.metrics.reject("capacity"))?;
    let (slot, queued) = app.admission.slot(ticket).await?;
    call.queue = queued;
    let mut hasher = Box::new(blake3::Hasher::new());
    let mut bytes_hashed = 0u64;
    while let Some(message) = messages.next().await? {
        call.ctx.check()?;
        let chunk = match decode::<StreamRequest>(message)?.part {
            Some(Part::Data(data)) => Chunk::Inline(data),
            Some(Part::Shared(r)) => Chunk::Shared(app.regions.resolve(&r, 1, "stream chunk")?),
            Some(Part::Header(_)) => {
                return Err(status(Code::InvalidArgument, "a stream carries one header, at its start"))
            }
            None => return Err(status(Code::InvalidArgument, "a stream message carries no data")),
        };
        bytes_hashed += chunk.bytes().len() as u64;
        let (next, elapsed) = on_pool(None, "hash.blake3", move || {
            update(&mut hasher, chunk.bytes());
            Ok(hasher)
        })
        .await?;
        hasher = next;
        call.compute += elapsed;
    }
    call.ctx.check()?;
    let (output, elapsed) = on_pool(Some(slot), "hash.blake3", move || {
        let mut outputs = allocate_outputs(plan)?;
        let mut output: Output = outputs.pop().ok_or_else(|| status(Code::Internal, "missing output"))?;
        hasher.finalize_xof().fill(output.view().bytes);
        Ok(output)
    })
    .await?;
    call.compute += elapsed;
    crate::log::event(
        crate::log::Level::Debug,
        "stream hashed",
        serde_json::json!({ "kernel": call.kernel, "bytes": bytes_hashed }),
    );
    Ok(InvokeReply {
        outputs: vec![output.into_reply()],
        queue_micros: call.queue.as_micros() as u64,
        compute_micros: call.compute.as_micros() as u64,
        instance_id: app.instance_id.clone(),
    })
}

enum Chunk {
    Inline(Bytes),
    Shared(crate::shm::Span),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Inline(b) => b,
            // SAFETY: bounds-checked by `resolve`; the stream writes nothing
            // to shared memory before its final digest, and the client owns
            // concurrent access to the range.
            Chunk::Shared(span) => unsafe { span.region.bytes(span.offset, span.len) },
        }
    }
}
