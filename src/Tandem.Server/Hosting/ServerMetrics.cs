using System.Diagnostics.Metrics;
using Tandem.Server.Collections;

namespace Tandem.Server.Hosting;

/// <summary>
/// The server's own meter, <c>Tandem.Server</c>: problems answered (by
/// status, code and backend), requests refused by a limit (by reason), and
/// what collections hold against their budget.
/// </summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "Tandem.Server";
    public const string ProblemsName = "tandem.server.problems";
    public const string RefusalsName = "tandem.server.refusals";
    public const string CollectionsName = "tandem.server.collections";
    public const string CollectionBytesName = "tandem.server.collections.bytes";

    private readonly Counter<long> _problems;
    private readonly Counter<long> _refusals;

    public ServerMetrics(IMeterFactory meterFactory, CollectionBudget budget)
    {
        var meter = meterFactory.Create(MeterName);
        _problems = meter.CreateCounter<long>(ProblemsName, "{response}", "Error responses (problem details), by HTTP status, Tandem code and backend.");
        _refusals = meter.CreateCounter<long>(RefusalsName, "{request}", "Requests refused by a limit, by reason (body_too_large, collections_count, collections_bytes, host, read_only_token).");
        meter.CreateObservableGauge(CollectionsName, () => budget.Count, "{collection}", "Collections that exist or are being created (limit Server:Collections:MaxCount).");
        meter.CreateObservableGauge(CollectionBytesName, () => budget.Bytes, "By", "Bytes collections hold or have reserved (limit Server:Collections:MaxTotalBytes).");
    }

    public void Problem(int status, string code, BackendKind? backend) =>
        _problems.Add(
            1,
            new KeyValuePair<string, object?>("status", status),
            new KeyValuePair<string, object?>("code", code),
            new KeyValuePair<string, object?>("backend", backend is { } kind ? TandemTelemetryNames.Backend(kind) : "none"));

    public void Refused(string reason) => _refusals.Add(1, new KeyValuePair<string, object?>("reason", reason));
}

/// <summary>The <c>reason</c> of <c>tandem.server.refusals</c>.</summary>
internal static class RefusalReasons
{
    /// <summary>A request body over its endpoint's limit (413).</summary>
    public const string BodyTooLarge = "body_too_large";

    /// <summary>Server:Collections:MaxCount reached (507).</summary>
    public const string CollectionCount = "collections_count";

    /// <summary>Server:Collections:MaxTotalBytes reached (507).</summary>
    public const string CollectionBytes = "collections_bytes";

    /// <summary>A Host header not in AllowedHosts (400).</summary>
    public const string Host = "host";

    /// <summary>A read-only endpoint asked for without the admin token while the server listens off loopback (401).</summary>
    public const string ReadOnlyToken = "read_only_token";
}
