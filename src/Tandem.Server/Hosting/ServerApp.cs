using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Tandem.Server.Admin;
using Tandem.Server.Api;
using Tandem.Server.Collections;
using Tandem.Server.Dashboard;
using Tandem.Server.Demo;

namespace Tandem.Server.Hosting;

/// <summary>Composes the service: configuration, Tandem and its Remote pool, Kestrel limits, telemetry, and every endpoint.</summary>
internal static class ServerApp
{
    /// <summary>Bucket bounds (seconds) of http.server.request.duration: 50 µs to 10 s, as Tandem's duration histograms.</summary>
    private static readonly double[] HttpDurationBuckets =
    [
        0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075,
        0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
        0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
        0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
        1, 2.5, 5, 10,
    ];

    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        // The server's own defaults sit below every other source.
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                // The dashboard's hot-swap control needs it; it doubles native collection memory (docs/operations.md).
                ["Tandem:NativeHotSwap"] = "true",
                // No HTTP request holds a backend for longer than this (the library's default is 30 s).
                ["Tandem:CallTimeout"] = "00:00:10",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                // Failures are logged once, by ApiProblems, with their correlation id.
                ["Logging:LogLevel:Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware"] = "None",
            },
        });
        var server = builder.Configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? new ServerOptions();
        if (server.Workers > 0)
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Tandem:Backend"] = nameof(BackendKind.Remote),
                ["Tandem:Remote:WorkerCount"] = server.Workers.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
        }

        var binding = ServerBinding.Of(EffectiveUrls(builder.Configuration, server));
        if (binding.IsLoopbackOnly && string.IsNullOrEmpty(builder.Configuration["AllowedHosts"]))
        {
            // Against DNS rebinding: a page on another site that resolves its
            // name to 127.0.0.1 sends its own name as Host and gets 400.
            builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
            {
                InitialData = new Dictionary<string, string?> { ["AllowedHosts"] = ServerBinding.LoopbackHosts },
            });
        }

        var flags = new KernelFlags(builder.Configuration);
        ((IConfigurationBuilder)builder.Configuration).Add(flags);

        ConfigureKestrel(builder, server);
        ConfigureServices(builder, server, flags);
        builder.Services.AddSingleton(binding);
        // Ahead of ASP.NET Core's own host filtering filter, so it wraps it.
        builder.Services.Insert(0, ServiceDescriptor.Singleton<IStartupFilter, HostFilteringProblems>());
        builder.Services.Configure<Microsoft.AspNetCore.HostFiltering.HostFilteringOptions>(o => o.IncludeFailureMessage = false);
        ConfigureTelemetry(builder, server);

        var app = builder.Build();
        HostFilteringProblems.MarkPassed(app);
        app.UseExceptionHandler(new ExceptionHandlerOptions { ExceptionHandler = ApiProblems.HandleAsync });
        app.UseStatusCodePages(context => UnmatchedAsync(context.HttpContext));
        ReadOnlyAccess.Use(app, binding);
        MapEndpoints(app);
        return app;
    }

    /// <summary>ASP.NET Core's own --urls / ASPNETCORE_URLS win when given explicitly; otherwise Server:Urls.</summary>
    private static string EffectiveUrls(IConfiguration configuration, ServerOptions server) =>
        configuration[WebHostDefaults.ServerUrlsKey] is { Length: > 0 } urls ? urls : server.Urls;

    private static void ConfigureKestrel(WebApplicationBuilder builder, ServerOptions server)
    {
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.WebHost.UseUrls(server.Urls);
        }
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = server.Limits.MaxJsonBytes;
            kestrel.Limits.RequestHeadersTimeout = server.Limits.RequestHeadersTimeout;
            kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(server.Limits.MinBodyBytesPerSecond, server.Limits.MinBodyRateGracePeriod);
            kestrel.Limits.MaxConcurrentConnections = server.Limits.MaxConnections;
        });
    }

    private static void ConfigureServices(WebApplicationBuilder builder, ServerOptions server, KernelFlags flags)
    {
        var services = builder.Services;
        services.AddOptions<ServerOptions>().Bind(builder.Configuration.GetSection(ServerOptions.SectionName)).ValidateDataAnnotations().ValidateOnStart();
        services.AddTandem(builder.Configuration.GetSection(TandemOptions.SectionName));
        // The Remote client starts its workers as soon as it exists, so it is
        // registered only when workers are asked for (--workers, or a Remote
        // backend in configuration).
        if (server.Workers > 0 || UsesRemote(builder.Configuration))
        {
            services.AddTandemRemote(builder.Configuration.GetSection("Tandem:Remote"));
        }

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(flags);
        services.AddSingleton<AdminToken>();
        services.AddSingleton<AdminAccess>();
        services.AddSingleton<AdminOperations>();
        services.AddSingleton<CollectionBudget>();
        services.AddSingleton<CollectionCatalog>();
        services.AddSingleton<StartupState>();
        services.AddSingleton<DemoLoadControl>();
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<DashboardMetrics>();
        services.AddSingleton<DashboardFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<DashboardFeed>());
        services.AddHostedService<StartupWork>();
        services.AddHostedService<DemoLoadGenerator>();
        // Stopping drains the worker pool; give it its grace period.
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        services.AddProblemDetails();
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.Configure<JsonOptions>(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase);
        services.AddOpenApi(o => o.AddDocumentTransformer<OperationalPaths>());
        services.AddHealthChecks().AddCheck<ReadinessCheck>("tandem", tags: ["ready"]);
    }

    private static void ConfigureTelemetry(WebApplicationBuilder builder, ServerOptions server)
    {
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("tandem-server"))
            .WithMetrics(metrics => metrics
                .AddMeter(TandemTelemetryNames.Source, ServerMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                // ASP.NET Core advises buckets from 5 ms up; this service answers in
                // about a millisecond, so use the bounds Tandem's own durations have.
                .AddView("http.server.request.duration", new ExplicitBucketHistogramConfiguration { Boundaries = HttpDurationBuckets })
                .AddPrometheusExporter())
            .WithTracing(tracing => tracing
                .AddSource(TandemTelemetryNames.Source)
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !IsOperational(context.Request.Path)));
        if (server.OtlpEndpoint is { } endpoint)
        {
            telemetry.UseOtlpExporter(OpenTelemetry.Exporter.OtlpExportProtocol.Grpc, endpoint);
        }
        else if (!string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            telemetry.UseOtlpExporter();
        }
    }

    private static void MapEndpoints(WebApplication app)
    {
        CollectionsApi.Map(app);
        KernelsApi.Map(app);
        AdminApi.Map(app);
        DashboardApi.Map(app);
        app.MapOpenApi();
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteHealthAsync }).WithTags("operations");
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = WriteHealthAsync }).WithTags("operations");
        app.MapPrometheusScrapingEndpoint("/metrics");
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var entries = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description, data = e.Value.Data });
        return context.Response.WriteAsJsonAsync(new { status = report.Status.ToString(), entries }, RequestBodies.Json);
    }

    /// <summary>Problem details for requests no endpoint matched (404) or with a method it does not take (405).</summary>
    private static Task UnmatchedAsync(HttpContext context)
    {
        var (code, detail) = context.Response.StatusCode switch
        {
            404 => (TandemStatusCode.NotFound, $"no endpoint at {context.Request.Path}; the API is described at /openapi/v1.json"),
            405 => (TandemStatusCode.InvalidArgument, $"{context.Request.Method} is not allowed on {context.Request.Path}; the API is described at /openapi/v1.json"),
            // Routing refuses a content type an endpoint does not declare before the endpoint runs: say which ones it takes.
            415 => (TandemStatusCode.InvalidArgument, $"{context.Request.Method} {context.Request.Path} takes Content-Type {AcceptedContentTypes(context)}; the request says '{context.Request.ContentType ?? "(none)"}'"),
            var status => (TandemStatusCode.InvalidArgument, $"the request failed with HTTP {status}"),
        };
        return ApiProblems.Of(context, code, detail, context.Response.StatusCode).ExecuteAsync(context);
    }

    /// <summary>The content types the endpoints at this request's path and method declare (their Accepts metadata).</summary>
    private static string AcceptedContentTypes(HttpContext context)
    {
        var path = context.Request.Path;
        var method = context.Request.Method;
        var types = context.RequestServices.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods.Contains(method, StringComparer.OrdinalIgnoreCase) != false
                && new TemplateMatcher(new RouteTemplate(e.RoutePattern), []).TryMatch(path, []))
            .SelectMany(e => e.Metadata.GetMetadata<IAcceptsMetadata>()?.ContentTypes ?? [])
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToArray();
        return types.Length > 0 ? string.Join(" or ", types) : "other than this (see /openapi/v1.json)";
    }

    private static bool IsOperational(PathString path) =>
        path.StartsWithSegments("/dashboard") || path.StartsWithSegments("/metrics") || path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz");

    private static bool UsesRemote(IConfiguration configuration)
    {
        var tandem = configuration.GetSection(TandemOptions.SectionName);
        return IsRemote(tandem["Backend"]) || tandem.GetSection("Kernels").GetChildren().Any(kernel => IsRemote(kernel["Backend"]));

        static bool IsRemote(string? backend) => string.Equals(backend, nameof(BackendKind.Remote), StringComparison.OrdinalIgnoreCase);
    }
}
