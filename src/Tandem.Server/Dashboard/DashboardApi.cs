using System.Reflection;

namespace Tandem.Server.Dashboard;

/// <summary>The dashboard page and its assets (built from npm at build time and embedded), the snapshot, and the live SSE feed.</summary>
internal static class DashboardApi
{
    private static readonly (string Path, string Resource, string ContentType)[] Assets =
    [
        ("/", "dashboard/index.html", "text/html; charset=utf-8"),
        ("/dashboard.js", "dashboard/dashboard.js", "text/javascript; charset=utf-8"),
        ("/dashboard.css", "dashboard/dashboard.css", "text/css; charset=utf-8"),
    ];

    public static void Map(IEndpointRouteBuilder app)
    {
        foreach (var (path, resource, contentType) in Assets)
        {
            var content = Load(resource);
            app.MapGet(path, (HttpContext context) =>
            {
                context.Response.Headers.CacheControl = "no-cache";
                context.Response.Headers.XContentTypeOptions = "nosniff";
                return content is null
                    ? Results.Problem(statusCode: 500, title: "Dashboard not built", detail: $"the dashboard asset {resource} is missing from this build; build with npm available (see docs/operations.md)")
                    : Results.Bytes(content, contentType);
            }).ExcludeFromDescription();
        }

        app.MapGet("/dashboard/snapshot", (DashboardFeed feed) => Results.Bytes(feed.Latest.Json, "application/json"))
            .WithTags("dashboard").WithSummary("The latest dashboard snapshot (what /dashboard/events pushes every interval)");
        app.MapGet("/dashboard/events", StreamAsync)
            .WithTags("dashboard").WithSummary("Server-sent events: one 'snapshot' event per interval");
    }

    private static async Task StreamAsync(HttpContext context, DashboardFeed feed, IHostApplicationLifetime lifetime)
    {
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        try
        {
            await response.WriteAsync("retry: 2000\n\n", ending.Token);
            var next = feed.Next;
            await WriteAsync(response, feed.Latest.Json, ending.Token);
            while (true)
            {
                await next.WaitAsync(ending.Token);
                next = feed.Next;
                await WriteAsync(response, feed.Latest.Json, ending.Token);
            }
        }
        catch (OperationCanceledException) when (ending.IsCancellationRequested)
        {
            // The browser left or the server is stopping: end the stream quietly.
        }
    }

    private static async Task WriteAsync(HttpResponse response, byte[] json, CancellationToken cancellationToken)
    {
        await response.Body.WriteAsync("event: snapshot\ndata: "u8.ToArray(), cancellationToken);
        await response.Body.WriteAsync(json, cancellationToken);
        await response.Body.WriteAsync("\n\n"u8.ToArray(), cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    private static byte[]? Load(string resource)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource);
        if (stream is null)
        {
            return null;
        }

        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
