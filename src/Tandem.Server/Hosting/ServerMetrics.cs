using System.Diagnostics.Metrics;

namespace Tandem.Server.Hosting;

/// <summary>The server's own meter, <c>Tandem.Server</c>: problems answered, by status, code and backend.</summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "Tandem.Server";
    public const string ProblemsName = "tandem.server.problems";

    private readonly Counter<long> _problems;

    public ServerMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _problems = meter.CreateCounter<long>(ProblemsName, "{response}", "Error responses (problem details), by HTTP status, Tandem code and backend.");
    }

    public void Problem(int status, string code, BackendKind? backend) =>
        _problems.Add(
            1,
            new KeyValuePair<string, object?>("status", status),
            new KeyValuePair<string, object?>("code", code),
            new KeyValuePair<string, object?>("backend", backend is { } kind ? TandemTelemetryNames.Backend(kind) : "none"));
}
