using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Tandem.Server.Api;
using Tandem.Server.Hosting;

namespace Tandem.Server.Admin;

/// <summary>The admin token: configured (Server:Admin:Token), or generated at startup and printed once.</summary>
internal sealed class AdminToken
{
    public AdminToken(IOptions<ServerOptions> options)
    {
        Generated = options.Value.Admin.Token is null;
        Value = options.Value.Admin.Token ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
    }

    public string Value { get; }

    public bool Generated { get; }

    public bool Matches(string candidate) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(candidate), Encoding.UTF8.GetBytes(Value));
}

/// <summary>
/// Guards /admin/*: loopback callers only (unless Server:Admin:AllowRemote),
/// and a bearer token. Missing token → 401; wrong token → 401 with
/// error="invalid_token" (RFC 6750); non-loopback caller → 403.
/// </summary>
internal sealed class AdminAccess(AdminToken token, IOptions<ServerOptions> options, ILogger<AdminAccess> logger) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        var remote = context.Connection.RemoteIpAddress;
        // No address means an in-memory or Unix-socket caller: local by construction.
        if (!options.Value.Admin.AllowRemote && remote is not null && !IPAddress.IsLoopback(remote))
        {
            return Refuse(context, TandemStatusCode.PermissionDenied, $"admin endpoints accept loopback callers only, and this call came from {remote}; set Server:Admin:AllowRemote to accept others");
        }

        if (CheckToken(context, token, "admin endpoints change or show the service's state") is { } refusal)
        {
            ServerLog.AdminRefused(logger, context.Request.Method, context.Request.Path, "no or wrong admin token");
            return refusal;
        }

        return await next(invocation);
    }

    /// <summary>
    /// The 401 problem for a request without the right bearer token (null when
    /// it has it); <paramref name="why"/> says why this endpoint needs it.
    /// Missing token → plain challenge; wrong token → error="invalid_token" (RFC 6750).
    /// </summary>
    public static IResult? CheckToken(HttpContext context, AdminToken token, string why)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"tandem-admin\"";
            return ApiProblems.Of(context, TandemStatusCode.Unauthenticated, $"{why}, so it needs the admin token: send 'Authorization: Bearer <token>' (the token is Server:Admin:Token, or the one printed at startup)");
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || !token.Matches(header["Bearer ".Length..].Trim()))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"tandem-admin\", error=\"invalid_token\"";
            return ApiProblems.Of(context, TandemStatusCode.Unauthenticated, "the admin token is wrong: send 'Authorization: Bearer <token>' with Server:Admin:Token or the token printed at startup");
        }

        return null;
    }

    private IResult Refuse(HttpContext context, TandemStatusCode code, string reason)
    {
        ServerLog.AdminRefused(logger, context.Request.Method, context.Request.Path, reason);
        return ApiProblems.Of(context, code, reason);
    }
}
