using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Tandem.Server.Hosting;

/// <summary>
/// Adds /healthz, /readyz and /metrics to the OpenAPI document: they are
/// middleware-backed endpoints (health checks, the Prometheus exporter)
/// that the endpoint explorer does not describe on its own.
/// </summary>
internal sealed class OperationalPaths : IOpenApiDocumentTransformer
{
    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Paths ??= [];
        Add(document, "/healthz", "Liveness: 200 while the process serves requests", ("200", "Healthy"));
        Add(document, "/readyz", "Readiness: startup work done and every kernel served (per-kernel data in the body)", ("200", "Ready"), ("503", "Not ready yet, or a kernel has no backend"));
        Add(document, "/metrics", "Prometheus metrics (tandem_*, http_server_*)", ("200", "Metrics in the Prometheus text format"));
        return Task.CompletedTask;
    }

    private static void Add(OpenApiDocument document, string path, string summary, params (string Status, string Description)[] responses)
    {
        var operation = new OpenApiOperation
        {
            Summary = summary,
            Tags = new HashSet<OpenApiTagReference> { new("operations", document) },
            Responses = [],
        };
        foreach (var (status, description) in responses)
        {
            operation.Responses[status] = new OpenApiResponse { Description = description };
        }

        document.Paths[path] = new OpenApiPathItem { Operations = new() { [HttpMethod.Get] = operation } };
    }
}
