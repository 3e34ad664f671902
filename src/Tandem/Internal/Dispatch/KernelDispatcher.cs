using System.Collections.Concurrent;
using System.Text;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Dispatch;

/// <summary>
/// Every asynchronous kernel call passes here: admission into the kernel's
/// bounded queue (full → RESOURCE_EXHAUSTED at once), dynamic batching for
/// batchable kernels, and a bound on the batches in flight per kernel.
/// </summary>
internal sealed class KernelDispatcher(TimeProvider time, Func<TandemOptions> options)
{
    private readonly ConcurrentDictionary<(string Kernel, BackendKind Backend), Admission> _admissions = new();
    private readonly ConcurrentDictionary<BatchKey, BatchQueue> _queues = new();

    public async ValueTask DispatchAsync(IKernelBackend backend, KernelCall call, CancellationToken cancellationToken)
    {
        var current = options();
        var settings = current.Batching;
        var admission = _admissions.GetOrAdd((call.Kernel, backend.Kind), static _ => new Admission());
        if (!admission.TryEnter(settings.QueueLimit))
        {
            throw new TandemException(TandemStatusCode.ResourceExhausted, $"kernel '{call.Kernel}' already has {settings.QueueLimit} calls waiting or running; retry later or raise Tandem:Batching:QueueLimit", call.Kernel, backend.Kind);
        }

        try
        {
            if (!settings.Enabled || !call.Descriptor.Flags.Batchable)
            {
                await RunUnbatchedAsync(admission.Gate, backend, call, settings, cancellationToken).ConfigureAwait(false);
                return;
            }

            long? deadline = current.CallTimeout is { } timeout ? time.GetTimestamp() + (long)(timeout.TotalSeconds * time.TimestampFrequency) : null;
            var pending = new PendingCall(call, (int)call.InputDim(0, 0), time.GetTimestamp(), deadline);
            pending.WatchCancellation(cancellationToken);
            var queue = _queues.GetOrAdd(BatchKey.Of(backend, call), _ => new BatchQueue(backend, admission.Gate, time, () => options().Batching));
            queue.Enqueue(pending);
            await pending.Completion.ConfigureAwait(false);
        }
        finally
        {
            admission.Leave();
        }
    }

    /// <summary>Calls of this kernel admitted and not yet completed (for tests and gauges).</summary>
    public int Pending(string kernel, BackendKind backend) => _admissions.TryGetValue((kernel, backend), out var a) ? a.Count : 0;

    private static async Task RunUnbatchedAsync(InFlightGate gate, IKernelBackend backend, KernelCall call, BatchingOptions settings, CancellationToken cancellationToken)
    {
        try
        {
            await gate.AcquireAsync(settings.MaxInFlight, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller while it waited to run", call.Kernel, backend.Kind);
        }

        try
        {
            await backend.InvokeAsync(call, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Admitted calls of one kernel on one backend, and its in-flight gate.</summary>
    private sealed class Admission
    {
        private int _count;

        public InFlightGate Gate { get; } = new();

        public int Count => Volatile.Read(ref _count);

        public bool TryEnter(int limit)
        {
            if (Interlocked.Increment(ref _count) <= limit)
            {
                return true;
            }

            Interlocked.Decrement(ref _count);
            return false;
        }

        public void Leave() => Interlocked.Decrement(ref _count);
    }

    /// <summary>Calls with equal keys can share a batch: same backend, state, parameters and row shapes.</summary>
    private readonly record struct BatchKey(IKernelBackend Backend, object? State, string Signature)
    {
        public static BatchKey Of(IKernelBackend backend, KernelCall call)
        {
            var signature = new StringBuilder(call.Kernel);
            for (var p = 0; p < call.ParamCount; p++)
            {
                var param = call.Args.Params[p];
                signature.Append('|').Append(param.IntValue).Append(':').Append(BitConverter.DoubleToInt64Bits(param.FloatValue));
            }

            AppendRowShapes(signature, ref call.Args.Inputs, call.InputCount);
            AppendRowShapes(signature, ref call.Args.Outputs, call.OutputCount);
            return new BatchKey(backend, call.State, signature.ToString());
        }

        private static void AppendRowShapes(StringBuilder signature, ref Native.NativeTensorArray tensors, int count)
        {
            for (var i = 0; i < count; i++)
            {
                signature.Append('/').Append(tensors[i].DType);
                for (var axis = 1; axis < tensors[i].Rank; axis++)
                {
                    signature.Append('x').Append(tensors[i].Shape[axis]);
                }
            }
        }
    }
}
