using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Tandem.Native;
using Tandem.Remote;

namespace Tandem.Server.Hosting;

/// <summary>
/// /readyz: startup work done (pool started, demo collection loaded and
/// warm; degraded if it failed), and every kernel has a backend serving it — with a Remote kernel,
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

        // A failed demo setup leaves a service that still serves every
        // kernel: ready, but degraded, with the reason (Degraded answers 200).
        var degraded = startup.Failure is { } failure ? $"startup work failed: {failure}" : null;

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
        return Task.FromResult(problems.Count > 0 ? HealthCheckResult.Unhealthy(string.Join("; ", problems), data: data)
            : degraded is not null ? HealthCheckResult.Degraded(degraded, data: data)
            : HealthCheckResult.Healthy("ready", data));
    }
}
