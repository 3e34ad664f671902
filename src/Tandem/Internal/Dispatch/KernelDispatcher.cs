using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
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
    private readonly ConcurrentDictionary<(string Kernel, BackendKind Backend), Admission> _admissions = new();
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

    /// <summary>
    /// A short synchronous call (a span hashed in place): admission and
    /// telemetry as for every call; no queue or batch, since the caller's
    /// thread is the one that runs it, in process.
    /// </summary>
    public void Dispatch(IInProcessKernelBackend backend, KernelCall call, Action<IInProcessKernelBackend, KernelCall> execute)
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
                execute(backend, call);
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
        var admission = _admissions.GetOrAdd((call.Kernel, backend.Kind), static _ => new Admission());
        if (!admission.TryEnter(limit))
        {
            throw new TandemException(TandemStatusCode.ResourceExhausted, $"kernel '{call.Kernel}' already has {limit} calls waiting or running; retry later or raise Tandem:Batching:QueueLimit", call.Kernel, backend.Kind);
        }

        return admission;
    }

    private void RecordCall(long started, string kernel, BackendKind backend, TandemStatusCode code)
    {
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
    public int Pending(string kernel, BackendKind backend) => _admissions.TryGetValue((kernel, backend), out var a) ? a.Count : 0;

    private IEnumerable<Measurement<int>> Gauge(Func<Admission, int> value)
    {
        foreach (var ((kernel, backend), admission) in _admissions)
        {
            yield return new Measurement<int>(value(admission), new KeyValuePair<string, object?>("kernel", kernel), new KeyValuePair<string, object?>("backend", TandemTelemetry.BackendName(backend)));
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
}
