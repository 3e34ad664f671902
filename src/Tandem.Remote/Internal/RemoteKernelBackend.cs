using Google.Protobuf;
using Grpc.Core;
using Tandem.Contracts.V1;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;
using Tandem.Remote.Internal.Pool;
using Tandem.Remote.Internal.SharedMemory;

namespace Tandem.Remote.Internal;

/// <summary>
/// Runs kernel calls on the worker pool: tensors below the threshold travel
/// inline, larger ones through a pooled shared-memory region (outputs are
/// written there by the worker and copied back); an idempotent call that
/// fails with UNAVAILABLE, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED is sent
/// to another worker. Every operation is asynchronous, the caller's
/// cancellation reaching the wait for the workers' start, state replication
/// and stream writes.
/// </summary>
internal sealed class RemoteKernelBackend(RemoteClient client, Func<TandemOptions> tandemOptions) : IKernelBackend, IKernelRefusals, IStoredStateBackend
{
    public BackendKind Kind => BackendKind.Remote;

    public TandemException? Refusal(string kernel) => Pool.Refusal(kernel);

    private WorkerPool Pool => client.Pool;

    // No synchronous Invoke: KernelBackends runs synchronous calls in process, as waiting here would block a thread on I/O.

    public async ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
    {
        await StartAsync(call.Kernel, cancellationToken).ConfigureAwait(false);
        ThrowIfRefused(call.Kernel);
        var options = Pool.Options();
        var stateId = StateId(call);
        // Built per worker: large tensors in shared memory for a worker that
        // reads this client's regions, inline for one on another host.
        MappedRegion? region = null;
        InvokeRequest? request = null;
        var builtShared = false;
        var succeeded = false;
        try
        {
            var attempts = call.Descriptor.Flags.Idempotent ? 1 + options.RetriesOnOtherWorkers : 1;
            List<WorkerConnection>? tried = null;
            InvokeReply reply;
            for (var attempt = 1; ; attempt++)
            {
                var worker = Pool.Pick(stateId, tried)
                    ?? throw Pool.NoWorkerServing(call.Kernel, tried is null ? "no remote worker is serving" : "no other remote worker is serving");
                // A failed attempt with a region dropped both, so a region is never left behind here.
                if (request is null || builtShared != worker.SharesMemory)
                {
                    var threshold = worker.SharesMemory ? options.SharedMemoryThresholdBytes : int.MaxValue;
                    region = Lease(call, threshold);
                    request = BuildRequest(call, stateId, region, threshold);
                    builtShared = worker.SharesMemory;
                }

                try
                {
                    if (region is not null)
                    {
                        await Pool.EnsureRegisteredAsync(worker, region, cancellationToken).ConfigureAwait(false);
                    }

                    reply = await worker.InvokeAsync(request, Deadline(options), cancellationToken).ConfigureAwait(false);
                    worker.Succeeded();
                    break;
                }
                catch (RpcException e)
                {
                    var error = RemoteErrors.FromCall(e, call.Kernel, worker.Name, DeadlineSetting(options), cancellationToken);
                    worker.Failed(error.Code);
                    if (attempt >= attempts || !error.IsRetryable || cancellationToken.IsCancellationRequested)
                    {
                        throw error;
                    }

                    (tried ??= []).Add(worker);
                    if (region is not null)
                    {
                        // The failed worker may still write its outputs there
                        // (a stopped process resumes): the next attempt gets a fresh region.
                        Discard(region);
                        region = null;
                        request = null;
                    }
                }
                catch
                {
                    worker.Failed(TandemStatusCode.Internal);
                    throw;
                }
            }

            CopyOutputs(call, reply, region);
            succeeded = true;
        }
        finally
        {
            if (region is not null)
            {
                if (succeeded)
                {
                    Pool.SharedMemory.Return(region);
                }
                else
                {
                    Discard(region);
                }
            }
        }
    }

    public async ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken)
    {
        await BeforeStateAsync(tensors.Kernel, cancellationToken).ConfigureAwait(false);
        return await ReplicateAsync(RemoteState.Copy(Pool, kind, tensors, Pool.Options().SharedMemoryThresholdBytes), tensors.Kernel, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<bool> CanLoadStoredAsync(string kernel, CancellationToken cancellationToken)
    {
        await StartAsync(kernel, cancellationToken).ConfigureAwait(false);
        var serving = Pool.Workers.Where(w => w.Routable).ToList();
        return serving.Count > 0 && serving.All(w => w.Description?.StateRepository == true);
    }

    public async ValueTask<IKernelState> LoadStoredAsync(string kind, KernelDescriptor creator, string name, long version, long sizeBytes, Func<IInProcessKernelBackend, IKernelState> rebuild, CancellationToken cancellationToken)
    {
        await BeforeStateAsync(creator.Name, cancellationToken).ConfigureAwait(false);
        return await ReplicateAsync(RemoteState.FromStored(Pool, kind, creator, name, version, sizeBytes, rebuild), creator.Name, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask BeforeStateAsync(string kernel, CancellationToken cancellationToken)
    {
        await StartAsync(kernel, cancellationToken).ConfigureAwait(false);
        ThrowIfRefused(kernel);
        // A state no worker holds would exist nowhere until one joins; refuse it instead.
        if (!Pool.Workers.Any(w => w.Routable))
        {
            throw Pool.NoWorkerServing(kernel, "no remote worker is serving, so the state was not created");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            throw Cancelled(kernel, "before the state was created", null);
        }
    }

    /// <summary>Creates <paramref name="state"/> on every worker; on failure or cancellation it is dropped again.</summary>
    private async ValueTask<IKernelState> ReplicateAsync(RemoteState state, string kernel, CancellationToken cancellationToken)
    {
        try
        {
            await Pool.CreateEverywhereAsync(state, cancellationToken).ConfigureAwait(false);
            return state;
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            state.Dispose();
            throw Cancelled(kernel, "while the state was replicated; it was dropped again", e);
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    public async ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken)
    {
        await StartAsync(kernel, cancellationToken).ConfigureAwait(false);
        ThrowIfRefused(kernel);
        if (cancellationToken.IsCancellationRequested)
        {
            throw Cancelled(kernel, "before the stream was opened", null);
        }

        return new RemoteStream(Pool, kernel, Deadline(Pool.Options()));
    }

    /// <summary>Waits for the workers' start without holding a thread; cancelling ends the wait, not the start.</summary>
    private async ValueTask StartAsync(string kernel, CancellationToken cancellationToken)
    {
        try
        {
            await client.EnsureStartedAsync(kernel, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw Cancelled(kernel, "while the remote workers were starting", e);
        }
    }

    internal static TandemException Cancelled(string kernel, string when, Exception? innerException) =>
        new(TandemStatusCode.Cancelled, $"the call was cancelled by the caller {when}", kernel, BackendKind.Remote, innerException: innerException);

    /// <summary>Never reuses a region a failed call may still write to.</summary>
    private void Discard(MappedRegion region) => Pool.SharedMemory.Discard(region);

    private void ThrowIfRefused(string kernel)
    {
        if (Pool.Refusal(kernel) is { } refusal)
        {
            throw refusal;
        }
    }

    internal static Metadata? Headers()
    {
        var traceParent = WorkerConnection.TraceParent();
        return traceParent is null ? null : new Metadata { { "traceparent", traceParent } };
    }

    private DateTime? Deadline(RemoteOptions options) =>
        (options.CallDeadline ?? tandemOptions().CallTimeout) is { } timeout ? DateTime.UtcNow + timeout : null;

    /// <summary>Where a worker attempt's deadline came from, as a DEADLINE_EXCEEDED message names it.</summary>
    private string DeadlineSetting(RemoteOptions options) => options.CallDeadline is { } own
        ? $"Tandem:Remote:CallDeadline ({own.TotalMilliseconds:0.###} ms)"
        : tandemOptions().CallTimeout is { } timeout
            ? $"Tandem:CallTimeout ({timeout.TotalMilliseconds:0.###} ms)"
            : "the call's deadline";

    private static string StateId(KernelCall call) => call.State switch
    {
        null => "",
        RemoteState { IsDisposed: false } remote => remote.Id,
        RemoteState => throw new TandemException(TandemStatusCode.NotFound, "the state (collection) was dropped before the call started", call.Kernel, BackendKind.Remote),
        _ => throw new TandemException(TandemStatusCode.FailedPrecondition, $"a {call.State.Backend} state cannot be used on the Remote backend", call.Kernel, BackendKind.Remote),
    };

    /// <summary>A region large enough for every tensor at or above the threshold, or null.</summary>
    private MappedRegion? Lease(KernelCall call, int threshold)
    {
        ref var args = ref call.Args;
        long bytes = 0;
        for (var i = 0; i < args.InputCount; i++)
        {
            bytes += args.Inputs[i].ByteLength >= (ulong)threshold ? RemoteState.Align((long)args.Inputs[i].ByteLength) : 0;
        }

        for (var i = 0; i < args.OutputCount; i++)
        {
            bytes += args.Outputs[i].ByteLength >= (ulong)threshold ? RemoteState.Align((long)args.Outputs[i].ByteLength) : 0;
        }

        return bytes == 0 ? null : Pool.SharedMemory.Rent(bytes);
    }

    private static unsafe InvokeRequest BuildRequest(KernelCall call, string stateId, MappedRegion? region, int threshold)
    {
        ref var args = ref call.Args;
        // The work estimate lets the worker run a tiny call on its I/O thread (--inline-work-threshold).
        var request = new InvokeRequest { Kernel = call.Kernel, KernelVersion = call.Descriptor.Version, StateId = stateId, Work = call.Work > 0 ? (ulong)call.Work : 0 };
        long offset = 0;
        for (var i = 0; i < args.InputCount; i++)
        {
            var t = args.Inputs[i];
            var tensor = new Tensor { Dtype = (DType)t.DType };
            AddShape(tensor.Shape, t);
            var data = new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteLength));
            if (region is not null && t.ByteLength >= (ulong)threshold)
            {
                data.CopyTo(region.Slice(offset, data.Length));
                tensor.Shared = new SharedMemoryRef { Region = region.Name, Offset = (ulong)offset, Length = t.ByteLength };
                offset += RemoteState.Align(data.Length);
            }
            else
            {
                tensor.InlineData = ByteString.CopyFrom(data);
            }

            request.Inputs.Add(tensor);
        }

        for (var i = 0; i < args.OutputCount; i++)
        {
            var t = args.Outputs[i];
            var spec = new OutputSpec { Dtype = (DType)t.DType };
            AddShape(spec.Shape, t);
            if (region is not null && t.ByteLength >= (ulong)threshold)
            {
                spec.Shared = new SharedMemoryRef { Region = region.Name, Offset = (ulong)offset, Length = t.ByteLength };
                offset += RemoteState.Align((long)t.ByteLength);
            }

            request.Outputs.Add(spec);
        }

        for (var i = 0; i < args.ParamCount; i++)
        {
            var p = args.Params[i];
            request.Params.Add(p.Kind == NativeParam.KindFloat ? new ParamValue { FloatValue = p.FloatValue } : new ParamValue { IntValue = p.IntValue });
        }

        return request;
    }

    private static void AddShape(Google.Protobuf.Collections.RepeatedField<long> shape, in NativeTensor tensor)
    {
        for (var axis = 0; axis < tensor.Rank; axis++)
        {
            shape.Add(tensor.Shape[axis]);
        }
    }

    private static unsafe void CopyOutputs(KernelCall call, InvokeReply reply, MappedRegion? region)
    {
        ref var args = ref call.Args;
        if (reply.Outputs.Count != args.OutputCount)
        {
            throw new TandemException(TandemStatusCode.Internal, $"the worker returned {reply.Outputs.Count} outputs, expected {args.OutputCount}", call.Kernel, BackendKind.Remote);
        }

        for (var i = 0; i < args.OutputCount; i++)
        {
            var target = new Span<byte>(args.Outputs[i].Data, checked((int)args.Outputs[i].ByteLength));
            var output = reply.Outputs[i];
            ReadOnlySpan<byte> source = output.DataCase switch
            {
                Tensor.DataOneofCase.InlineData => output.InlineData.Span,
                Tensor.DataOneofCase.Shared when region is not null && output.Shared.Region == region.Name => region.Slice((long)output.Shared.Offset, (long)output.Shared.Length),
                _ => throw new TandemException(TandemStatusCode.Internal, $"the worker returned output {i} in an unexpected place", call.Kernel, BackendKind.Remote),
            };
            if (source.Length != target.Length)
            {
                throw new TandemException(TandemStatusCode.Internal, $"the worker returned {source.Length} bytes for output {i}, expected {target.Length}", call.Kernel, BackendKind.Remote);
            }

            source.CopyTo(target);
        }
    }
}
