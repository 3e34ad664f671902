using Microsoft.AspNetCore.HostFiltering;
using Microsoft.Extensions.Options;
using Tandem.Server.Api;

namespace Tandem.Server.Hosting;

/// <summary>
/// Turns ASP.NET Core host filtering's bare 400 (a Host header not in
/// <c>AllowedHosts</c>) into a problem that names the header and the option.
/// Registered ahead of every other startup filter, so it wraps host filtering;
/// the service's own pipeline marks each request that got past it.
/// </summary>
internal sealed class HostFilteringProblems : IStartupFilter
{
    private const string PastHostFiltering = "tandem.past-host-filtering";

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(async (context, inner) =>
        {
            await inner(context);
            if (context.Response.StatusCode == StatusCodes.Status400BadRequest && !context.Response.HasStarted && !context.Items.ContainsKey(PastHostFiltering))
            {
                var allowed = context.RequestServices.GetRequiredService<IOptionsMonitor<HostFilteringOptions>>().CurrentValue.AllowedHosts;
                context.RequestServices.GetService<ServerMetrics>()?.Refused(RefusalReasons.Host);
                await ApiProblems.Of(context, TandemStatusCode.InvalidArgument, $"this server does not answer to Host '{context.Request.Host}'; it answers to {string.Join(", ", allowed)} (AllowedHosts; against DNS rebinding). Use one of those names, or set AllowedHosts").ExecuteAsync(context);
            }
        });
        next(app);
    };

    /// <summary>The first middleware of the service's own pipeline: the request passed host filtering.</summary>
    public static void MarkPassed(IApplicationBuilder app) => app.Use((context, next) =>
    {
        context.Items[PastHostFiltering] = true;
        return next(context);
    });
}
