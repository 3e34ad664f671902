using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Tandem.Native;
using Tandem.Remote;

namespace Tandem.Server.Hosting;

/// <summary>
/// /readyz: startup work done (pool started, demo collection loaded and
/// warm), and every kernel has a backend serving it — with a Remote kernel,
/// at least one worker serving.
/// </summary>
internal sealed class ReadinessCheck(StartupState startup, IKernelRouting routing, INativeLibraryAdmin native, IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>();
        if (!startup.IsDone)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("starting: loading the worker pool and demo collection", data: data));
        }

        if (startup.Failure is { } failure)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"startup failed: {failure}", data: data));
        }

        var problems = new List<string>();
        var needsWorkers = false;
        foreach (var route in routing.Routes)
        {
            data[route.Kernel] = route.Serving is { } serving ? TandemTelemetryNames.Backend(serving) : "none";
            if (route.Serving is null)
            {
                problems.Add($"{route.Kernel}: no backend can serve it ({route.Reason})");
            }

            needsWorkers |= route.Serving == BackendKind.Remote;
        }

        if (needsWorkers)
        {
            var workers = services.GetService<IWorkerPoolAdmin>()?.Workers ?? [];
            var serving = workers.Count(w => w.Status == WorkerStatus.Serving);
            data["workersServing"] = serving;
            if (serving == 0)
            {
                problems.Add("no Remote worker is serving");
            }
        }

        data["nativeGeneration"] = native.Current.Generation;
        return Task.FromResult(problems.Count == 0
            ? HealthCheckResult.Healthy("ready", data)
            : HealthCheckResult.Unhealthy(string.Join("; ", problems), data: data));
    }
}
