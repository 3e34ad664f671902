using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Tandem.Internal.Kernels;
using Tandem.Internal.Telemetry;

namespace Tandem.Internal.Dispatch;

/// <summary>
/// Every asynchronous kernel call passes here: admission into the kernel's
/// bounded queue (full → RESOURCE_EXHAUSTED at once), dynamic batching for
/// batchable kernels, and a bound on the batches in flight per kernel.
/// What it keeps is bounded by the kernels and backends, not by the calls it
/// has seen: a batch queue lives only while calls wait in it.
/// </summary>
internal sealed class KernelDispatcher
{
    // Per kernel name, one admission per BackendKind; _byDescriptor finds them
    // without hashing the name, and forgets a descriptor nobody holds.
    private readonly ConcurrentDictionary<string, Admission[]> _admissions = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<Tandem.Contracts.V1.KernelDescriptor, Admission[]> _byDescriptor = new();
    private readonly ConcurrentDictionary<BatchKey, BatchQueue> _queues = new(BatchKey.Comparer);
    private readonly ConcurrentDictionary<BatchKey, BatchQueue>.AlternateLookup<BatchKey.Probe> _queuesByCall;
    private readonly TimeProvider _time;
    private readonly Func<TandemOptions> _options;
    private readonly TandemTelemetry _telemetry;
    private readonly Executor _execute;
    private readonly Func<BatchingOptions> _batching;
    private readonly Action<BatchQueue> _retire;

    /// <param name="execute">Runs one call or batch on a backend (resilience and fallback live there).</param>
    public KernelDispatcher(TimeProvider time, Func<TandemOptions> options, TandemTelemetry? telemetry = null, Executor? execute = null)
    {
        _time = time;
        _options = options;
        _telemetry = telemetry ?? new TandemTelemetry(null);
        _execute = execute ?? (static (backend, call, token) => backend.InvokeAsync(call, token));
        _queuesByCall = _queues.GetAlternateLookup<BatchKey.Probe>();
        _batching = () => _options().Batching;
        _retire = queue => _queues.TryRemove(new KeyValuePair<BatchKey, BatchQueue>(queue.Key, queue));
        _telemetry.ObserveDepth(() => Gauge(a => a.Count), () => Gauge(a => a.Gate.Running));
    }

    /// <summary>Runs a call or a merged batch on a backend.</summary>
    public delegate ValueTask Executor(IKernelBackend backend, KernelCall call, CancellationToken cancellationToken);

    public async ValueTask DispatchAsync(IKernelBackend backend, KernelCall call, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        using var span = TandemTelemetry.Source.StartActivity("tandem.call");
        span?.SetTag("tandem.kernel", call.Kernel);
        span?.SetTag("tandem.backend", TandemTelemetry.BackendName(backend.Kind));
        var code = TandemStatusCode.Ok;
        try
        {
            await AdmitAsync(backend, call, span?.Context ?? default, cancellationToken).ConfigureAwait(false);
        }
        catch (TandemException e)
        {
            code = e.Code;
            throw;
        }
        catch (Exception)
        {
            code = TandemStatusCode.Internal;
            throw;
        }
        finally
        {
            RecordCall(started, call.Kernel, backend.Kind, code);
            if (code != TandemStatusCode.Ok)
            {
                span?.SetStatus(ActivityStatusCode.Error, TandemTelemetry.CodeName(code));
            }
        }
    }

    /// <summary>Runs one short synchronous call that started at <c>started</c> (a <see cref="TimeProvider"/> timestamp) on an in-process backend.</summary>
    public delegate void SyncExecutor(IInProcessKernelBackend backend, KernelCall call, long started);

    /// <summary>
    /// A short synchronous call (a span hashed in place): admission and
    /// telemetry as for every call; no queue or batch, since the caller's
    /// thread is the one that runs it, in process. With no listener on the
    /// <c>Tandem</c> meter or activity source, it costs two counter updates
    /// and one clock read.
    /// </summary>
    public void Dispatch(IInProcessKernelBackend backend, KernelCall call, SyncExecutor execute)
    {
        var started = _time.GetTimestamp();
        using var span = TandemTelemetry.Source.StartActivity("tandem.call");
        span?.SetTag("tandem.kernel", call.Kernel);
        var code = TandemStatusCode.Ok;
        try
        {
            var admission = Admit(backend, call, _options().Batching.QueueLimit);
            try
            {
                execute(backend, call, started);
            }
            finally
            {
                admission.Leave();
            }
        }
        catch (TandemException e)
        {
            code = e.Code;
            throw;
        }
        finally
        {
            RecordCall(started, call.Kernel, backend.Kind, code);
        }
    }

    /// <summary>Admits a call into its kernel's bound, or refuses it at once with RESOURCE_EXHAUSTED; the caller leaves when done.</summary>
    private Admission Admit(IKernelBackend backend, KernelCall call, int limit)
    {
        var admission = AdmissionFor(call.Descriptor, backend.Kind);
        if (!admission.TryEnter(limit))
        {
            throw new TandemException(TandemStatusCode.ResourceExhausted, $"kernel '{call.Kernel}' already has {limit} calls waiting or running; retry later or raise Tandem:Batching:QueueLimit", call.Kernel, backend.Kind);
        }

        return admission;
    }

    /// <summary>
    /// The admission of a kernel on a backend: found by the descriptor's
    /// reference (no string hashing) and shared by every descriptor of that
    /// name, so the bound is per kernel whichever contract object a caller holds.
    /// </summary>
    private Admission AdmissionFor(Tandem.Contracts.V1.KernelDescriptor descriptor, BackendKind backend)
    {
        if (!_byDescriptor.TryGetValue(descriptor, out var admissions))
        {
            admissions = _byDescriptor.GetValue(descriptor, d => _admissions.GetOrAdd(d.Name, static _ => Admission.PerBackend()));
        }

        return admissions[(int)backend];
    }

    private void RecordCall(long started, string kernel, BackendKind backend, TandemStatusCode code)
    {
        if (!_telemetry.Calls.Enabled && !_telemetry.CallDuration.Enabled)
        {
            return;
        }

        var tags = new TagList { { "kernel", kernel }, { "backend", TandemTelemetry.BackendName(backend) }, { "code", TandemTelemetry.CodeName(code) } };
        _telemetry.Calls.Add(1, tags);
        _telemetry.CallDuration.Record(_time.GetElapsedTime(started).TotalSeconds, tags);
    }

    private async ValueTask AdmitAsync(IKernelBackend backend, KernelCall call, ActivityContext span, CancellationToken cancellationToken)
    {
        var current = _options();
        var settings = current.Batching;
        var admission = Admit(backend, call, settings.QueueLimit);
        try
        {
            if (!(current.For(call.Kernel)?.Batching ?? settings.Enabled) || !call.Descriptor.Flags.Batchable)
            {
                await RunUnbatchedAsync(admission.Gate, backend, call, settings, cancellationToken).ConfigureAwait(false);
                return;
            }

            var now = _time.GetTimestamp();
            long? deadline = current.CallTimeout is { } timeout ? Deadline(now, timeout) : null;
            var pending = new PendingCall(call, (int)call.InputDim(0, 0), now, deadline, span);
            pending.WatchCancellation(cancellationToken);
            Enqueue(new BatchKey.Probe(backend, call), admission.Gate, pending);
            await pending.Completion.ConfigureAwait(false);
        }
        finally
        {
            admission.Leave();
        }
    }

    private void Enqueue(BatchKey.Probe probe, InFlightGate gate, PendingCall pending)
    {
        while (true)
        {
            if (!_queuesByCall.TryGetValue(probe, out var queue))
            {
                var key = BatchKey.Of(probe);
                queue = _queues.GetOrAdd(key, new BatchQueue(key, gate, _time, _batching, _telemetry, _execute, _retire));
            }

            if (queue.TryEnqueue(pending))
            {
                return;
            }

            // It retired between the lookup and the enqueue: make sure it is
            // gone (its loop may not have removed it yet), then add a fresh one.
            _retire(queue);
        }
    }

    /// <summary>
    /// Batch queues in the dispatcher (for tests). A queue leaves before the
    /// calls it held complete, so this is 0 once they all have — unless some
    /// were cancelled while queued, whose queue leaves at its next batch.
    /// </summary>
    internal int QueueCount => _queues.Count;

    /// <summary>now + timeout in TimeProvider ticks, saturating instead of wrapping.</summary>
    private long Deadline(long now, TimeSpan timeout)
    {
        var ticks = timeout.TotalSeconds * _time.TimestampFrequency;
        return ticks >= long.MaxValue - (double)now ? long.MaxValue : now + (long)ticks;
    }

    /// <summary>Calls of this kernel admitted and not yet completed (for tests and gauges).</summary>
    public int Pending(string kernel, BackendKind backend) => _admissions.TryGetValue(kernel, out var a) ? a[(int)backend].Count : 0;

    private IEnumerable<Measurement<int>> Gauge(Func<Admission, int> value)
    {
        foreach (var (kernel, admissions) in _admissions)
        {
            for (var backend = 0; backend < admissions.Length; backend++)
            {
                if (admissions[backend].Used)
                {
                    yield return new Measurement<int>(value(admissions[backend]), new KeyValuePair<string, object?>("kernel", kernel), new KeyValuePair<string, object?>("backend", TandemTelemetry.BackendName((BackendKind)backend)));
                }
            }
        }
    }

    private async Task RunUnbatchedAsync(InFlightGate gate, IKernelBackend backend, KernelCall call, BatchingOptions settings, CancellationToken cancellationToken)
    {
        try
        {
            await gate.AcquireAsync(settings.MaxInFlight, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller while it waited to run", call.Kernel, backend.Kind);
        }

        var started = _time.GetTimestamp();
        try
        {
            await _execute(backend, call, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
            _telemetry.ComputeDuration.Record(_time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("kernel", call.Kernel));
        }
    }

    /// <summary>Admitted calls of one kernel on one backend, and its in-flight gate.</summary>
    private sealed class Admission
    {
        private int _count;
        private bool _used;

        public InFlightGate Gate { get; } = new();

        public int Count => Volatile.Read(ref _count);

        /// <summary>Whether a call was ever admitted here (only those are reported as gauges, as before).</summary>
        public bool Used => Volatile.Read(ref _used);

        /// <summary>One admission for each <see cref="BackendKind"/>, indexed by it.</summary>
        public static Admission[] PerBackend()
        {
            var admissions = new Admission[Enum.GetValues<BackendKind>().Length];
            for (var i = 0; i < admissions.Length; i++)
            {
                admissions[i] = new Admission();
            }

            return admissions;
        }

        public bool TryEnter(int limit)
        {
            if (!_used)
            {
                Volatile.Write(ref _used, true);
            }

            if (Interlocked.Increment(ref _count) <= limit)
            {
                return true;
            }

            Interlocked.Decrement(ref _count);
            return false;
        }

        public void Leave() => Interlocked.Decrement(ref _count);
    }
}
