using Tandem.Server.Api;
using Tandem.Server.Hosting;

namespace Tandem.Server.Admin;

/// <summary>
/// Puts the read-only endpoints that show the service's insides
/// (<c>/metrics</c>, <c>/dashboard/*</c>, <c>/openapi/*</c>) behind the admin
/// token when the server listens off loopback; on loopback they stay open.
/// /healthz and /readyz stay open either way, for probes.
/// </summary>
internal static class ReadOnlyAccess
{
    public static bool Guards(PathString path) =>
        path.StartsWithSegments("/metrics") || path.StartsWithSegments("/dashboard") || path.StartsWithSegments("/openapi");

    public static void Use(WebApplication app, ServerBinding binding)
    {
        if (binding.IsLoopbackOnly)
        {
            return;
        }

        app.Use(async (context, next) =>
        {
            if (Guards(context.Request.Path)
                && AdminAccess.CheckToken(context, context.RequestServices.GetRequiredService<AdminToken>(), $"{context.Request.Path} shows the service's internals and the server listens off loopback ({binding.Urls})") is { } refusal)
            {
                context.RequestServices.GetService<ServerMetrics>()?.Refused(RefusalReasons.ReadOnlyToken);
                await refusal.ExecuteAsync(context);
                return;
            }

            await next(context);
        });
    }
}
