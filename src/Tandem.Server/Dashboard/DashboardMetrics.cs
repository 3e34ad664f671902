using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Tandem.Server.Hosting;

namespace Tandem.Server.Dashboard;

/// <summary>
/// Listens to Tandem's meter, the server's own and ASP.NET Core's HTTP
/// duration (of this service provider only) and folds each measurement into
/// the current interval's window; <see cref="Rotate"/> closes the window and
/// returns it for a snapshot. The callbacks are a dictionary lookup and an
/// interlocked add, cheap enough for every call.
/// </summary>
internal sealed class DashboardMetrics : IDisposable
{
    public const int BatchWindows = 10;

    private static readonly string[] ApiRoutes = ["/collections", "/pricing", "/hash"];
    private readonly MeterListener _listener = new();
    private readonly IMeterFactory _scope;
    private readonly ConcurrentDictionary<(string Backend, string Code), StrongBox<long>> _errorTotals = new();
    private readonly ConcurrentDictionary<(string Kernel, string From, string To, string Reason), StrongBox<long>> _fallbackTotals = new();
    private Window _current = new();

    public DashboardMetrics(IMeterFactory scope)
    {
        _scope = scope;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, _scope) && IsWatched(instrument))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>(OnLong);
        _listener.SetMeasurementEventCallback<double>(OnDouble);
        _listener.Start();
    }

    /// <summary>Failures since start by (backend, code).</summary>
    public IReadOnlyDictionary<(string Backend, string Code), StrongBox<long>> ErrorTotals => _errorTotals;

    public IReadOnlyDictionary<(string Kernel, string From, string To, string Reason), StrongBox<long>> FallbackTotals => _fallbackTotals;

    /// <summary>Closes the current window and opens the next.</summary>
    public Window Rotate() => Interlocked.Exchange(ref _current, new Window());

    private static bool IsWatched(Instrument instrument) => instrument.Name switch
    {
        TandemTelemetryNames.Calls or TandemTelemetryNames.Fallbacks or TandemTelemetryNames.CallDuration
            or TandemTelemetryNames.QueueDuration or TandemTelemetryNames.ComputeDuration or TandemTelemetryNames.BatchSize => instrument.Meter.Name == TandemTelemetryNames.Source,
        ServerMetrics.ProblemsName => instrument.Meter.Name == ServerMetrics.MeterName,
        "http.server.request.duration" => instrument.Meter.Name == "Microsoft.AspNetCore.Hosting",
        _ => false,
    };

    private void OnLong(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        var window = _current;
        switch (instrument.Name)
        {
            case TandemTelemetryNames.Calls:
                var kernel = Tag(tags, "kernel");
                var backend = Tag(tags, "backend");
                var code = Tag(tags, "code");
                Add(window.Calls, (kernel, backend, code), value);
                if (code != "OK")
                {
                    Add(window.Errors, (backend, code), value);
                    Add(_errorTotals, (backend, code), value);
                }

                break;
            case TandemTelemetryNames.Fallbacks:
                var key = (Tag(tags, "kernel"), Tag(tags, "from"), Tag(tags, "to"), Tag(tags, "reason"));
                Add(window.Fallbacks, key, value);
                Add(_fallbackTotals, key, value);
                break;
            case TandemTelemetryNames.BatchSize:
                var buckets = window.BatchSizes.GetOrAdd(Tag(tags, "kernel"), static _ => new long[BatchBuckets.Length + 1]);
                Interlocked.Increment(ref buckets[BatchBucket(value)]);
                break;
            case ServerMetrics.ProblemsName when Tag(tags, "backend") == "none":
                // Refused before reaching a backend (invalid input, unknown
                // names, auth); failures from a backend are counted by tandem.calls.
                var problem = ("request", Tag(tags, "code"));
                Add(window.Errors, problem, value);
                Add(_errorTotals, problem, value);
                break;
        }
    }

    private void OnDouble(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        var window = _current;
        var milliseconds = value * 1000;
        switch (instrument.Name)
        {
            case TandemTelemetryNames.CallDuration:
                window.CallLatency.GetOrAdd(Tag(tags, "kernel"), static _ => new LatencyHistogram()).Record(milliseconds);
                break;
            case TandemTelemetryNames.QueueDuration:
                window.Queue.GetOrAdd(Tag(tags, "kernel"), static _ => new LatencyHistogram()).Record(milliseconds);
                break;
            case TandemTelemetryNames.ComputeDuration:
                window.Compute.GetOrAdd(Tag(tags, "kernel"), static _ => new LatencyHistogram()).Record(milliseconds);
                break;
            case "http.server.request.duration" when IsApiRoute(Tag(tags, "http.route")):
                window.Http.Record(milliseconds);
                break;
        }
    }

    /// <summary>Upper bounds of the batch-size buckets; one more bucket holds the rest.</summary>
    public static readonly long[] BatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

    private static int BatchBucket(long rows)
    {
        for (var i = 0; i < BatchBuckets.Length; i++)
        {
            if (rows <= BatchBuckets[i])
            {
                return i;
            }
        }

        return BatchBuckets.Length;
    }

    private static bool IsApiRoute(string route)
    {
        foreach (var prefix in ApiRoutes)
        {
            if (route.StartsWith(prefix, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static string Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string name)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == name)
            {
                return tag.Value?.ToString() ?? string.Empty;
            }
        }

        return string.Empty;
    }

    private static void Add<TKey>(ConcurrentDictionary<TKey, StrongBox<long>> counters, TKey key, long value)
        where TKey : notnull =>
        Interlocked.Add(ref counters.GetOrAdd(key, static _ => new StrongBox<long>()).Value, value);

    public void Dispose() => _listener.Dispose();

    /// <summary>The measurements of one interval.</summary>
    internal sealed class Window
    {
        public ConcurrentDictionary<(string Kernel, string Backend, string Code), StrongBox<long>> Calls { get; } = new();

        public ConcurrentDictionary<(string Backend, string Code), StrongBox<long>> Errors { get; } = new();

        public ConcurrentDictionary<(string Kernel, string From, string To, string Reason), StrongBox<long>> Fallbacks { get; } = new();

        public ConcurrentDictionary<string, LatencyHistogram> CallLatency { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, LatencyHistogram> Queue { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, LatencyHistogram> Compute { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, long[]> BatchSizes { get; } = new(StringComparer.Ordinal);

        public LatencyHistogram Http { get; } = new();
    }
}
