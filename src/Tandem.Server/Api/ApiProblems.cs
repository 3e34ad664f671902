using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Tandem.Server.Hosting;

namespace Tandem.Server.Api;

/// <summary>
/// Turns every failure into an RFC 7807 problem: the HTTP status for the
/// Tandem code, the code itself, and a correlation id that ties the response
/// to the server's log line (and, for kernel failures, to the native or
/// worker log).
/// </summary>
internal static class ApiProblems
{
    public const string ContentType = "application/problem+json";

    /// <summary>The HTTP status a Tandem code maps to.</summary>
    public static int StatusOf(TandemStatusCode code) => code switch
    {
        TandemStatusCode.InvalidArgument or TandemStatusCode.OutOfRange => StatusCodes.Status400BadRequest,
        TandemStatusCode.NotFound => StatusCodes.Status404NotFound,
        TandemStatusCode.AlreadyExists or TandemStatusCode.FailedPrecondition or TandemStatusCode.Aborted => StatusCodes.Status409Conflict,
        TandemStatusCode.ResourceExhausted => StatusCodes.Status429TooManyRequests,
        TandemStatusCode.Unavailable => StatusCodes.Status503ServiceUnavailable,
        TandemStatusCode.DeadlineExceeded => StatusCodes.Status504GatewayTimeout,
        TandemStatusCode.Unauthenticated => StatusCodes.Status401Unauthorized,
        TandemStatusCode.PermissionDenied => StatusCodes.Status403Forbidden,
        TandemStatusCode.Unimplemented => StatusCodes.Status501NotImplemented,
        TandemStatusCode.Cancelled => 499,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>
    /// The problem for a failed Tandem call: a refusal by a per-call limit
    /// (the descriptor's work bound) is 413, which no wait would change, rather
    /// than the 429 of a busy backend.
    /// </summary>
    public static IResult For(HttpContext context, TandemException exception) =>
        Write(context, exception.Code, exception.Message, exception.Backend, exception.CorrelationId,
            TandemStatusCodes.IsPerCallLimit(exception.Limit) ? StatusCodes.Status413PayloadTooLarge : null);

    /// <summary>A problem with a Tandem code and a message that tells the caller what to fix.</summary>
    public static IResult Of(HttpContext context, TandemStatusCode code, string detail, int? status = null) =>
        Write(context, code, detail, backend: null, correlationId: null, status);

    /// <summary>A problem for a request a limit refused; counted in <c>tandem.server.refusals</c> by <paramref name="reason"/>.</summary>
    public static IResult Refused(HttpContext context, string reason, TandemStatusCode code, string detail, int? status = null)
    {
        context.RequestServices.GetService<ServerMetrics>()?.Refused(reason);
        return Of(context, code, detail, status);
    }

    private static IResult Write(HttpContext context, TandemStatusCode code, string detail, BackendKind? backend, string? correlationId, int? status = null)
    {
        var httpStatus = status ?? StatusOf(code);
        var codeName = CodeName(code);
        correlationId ??= CorrelationId(context);
        // A body over its limit (413) or a full collection budget (507) is
        // refused again however long the client waits: no Retry-After.
        if (TandemStatusCodes.IsRetryable(code) && httpStatus is not (StatusCodes.Status413PayloadTooLarge or StatusCodes.Status507InsufficientStorage))
        {
            context.Response.Headers.RetryAfter = "1";
        }

        var services = context.RequestServices;
        services.GetService<ServerMetrics>()?.Problem(httpStatus, codeName, backend);
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Tandem.Server");
        // A full collection budget (507) is a flooding client's doing as often as not: Debug, counted in tandem.server.refusals.
        if (httpStatus >= 500 && httpStatus != StatusCodes.Status507InsufficientStorage)
        {
            ServerLog.ServerProblem(logger, context.Request.Method, context.Request.Path, httpStatus, codeName, correlationId, detail);
        }
        else
        {
            ServerLog.Problem(logger, context.Request.Method, context.Request.Path, httpStatus, codeName, correlationId, detail);
        }
        var extensions = new Dictionary<string, object?>
        {
            ["code"] = codeName,
            ["correlationId"] = correlationId,
        };
        if (backend is { } kind)
        {
            extensions["backend"] = BackendName(kind);
        }

        return Results.Problem(detail: detail, statusCode: httpStatus, title: TitleOf(httpStatus, codeName), type: $"urn:tandem:problem:{codeName.ToLowerInvariant().Replace('_', '-')}", instance: context.Request.Path, extensions: extensions);
    }

    /// <summary>The exception handler: maps what escaped an endpoint to a problem.</summary>
    public static async Task HandleAsync(HttpContext context)
    {
        var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
        if (context.RequestAborted.IsCancellationRequested)
        {
            // The client left (an upload that stopped midway, a closed tab): nobody reads an answer.
            context.Response.StatusCode = 499;
            return;
        }

        var result = error switch
        {
            TandemException tandem => For(context, tandem),
            HttpProblemException { Reason: { } reason } http => Refused(context, reason, http.Code, http.Message, http.Status),
            HttpProblemException http => Of(context, http.Code, http.Message, http.Status),
            BadHttpRequestException bad when bad.StatusCode == StatusCodes.Status413PayloadTooLarge =>
                Refused(context, RefusalReasons.BodyTooLarge, TandemStatusCode.ResourceExhausted, $"the request body is larger than this endpoint accepts ({LimitOf(context)}); see Server:Limits in docs/operations.md", StatusCodes.Status413PayloadTooLarge),
            BadHttpRequestException bad when bad.InnerException is JsonException json => MalformedJson(context, json),
            BadHttpRequestException bad => Of(context, TandemStatusCode.InvalidArgument, ReadableErrors.Binding(bad.Message) ?? $"the request could not be read: {bad.Message}", bad.StatusCode),
            JsonException json => MalformedJson(context, json),
            _ => Unexpected(context, error),
        };
        await result.ExecuteAsync(context);
    }

    public static IResult MalformedJson(HttpContext context, JsonException json)
    {
        var where = json.Path is { Length: > 0 } path ? $" at {path}" : string.Empty;
        var line = json.LineNumber is { } l ? $" (line {l + 1}, byte {json.BytePositionInLine + 1})" : string.Empty;
        return Of(context, TandemStatusCode.InvalidArgument, $"the body is not valid JSON for this endpoint{where}{line}: {ReadableErrors.Json(json)}");
    }

    private static IResult Unexpected(HttpContext context, Exception? error)
    {
        var correlationId = CorrelationId(context);
        ServerLog.Unexpected(context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Tandem.Server"), correlationId, error);
        return Write(context, TandemStatusCode.Internal, $"the server failed unexpectedly; the details are logged under correlation id {correlationId}", null, correlationId);
    }

    private static string CorrelationId(HttpContext context) =>
        Activity.Current is { } activity && activity.TraceId != default ? activity.TraceId.ToHexString() : context.TraceIdentifier;

    private static string LimitOf(HttpContext context) =>
        context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } limit ? $"{limit} bytes" : "its limit";

    private static string TitleOf(int status, string code) => status switch
    {
        400 => "Invalid request",
        401 => "Admin token required",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict",
        413 => "Request body too large",
        415 => "Unsupported content type",
        429 => "Too many requests",
        499 => "Request cancelled",
        503 => "No backend available",
        504 => "Deadline exceeded",
        507 => "Insufficient storage",
        _ => code,
    };

    public static string CodeName(TandemStatusCode code) => TandemTelemetryNames.Code(code);

    public static string BackendName(BackendKind backend) => TandemTelemetryNames.Backend(backend);
}
