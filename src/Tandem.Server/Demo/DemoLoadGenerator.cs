using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Tandem.Server.Api;
using Tandem.Server.Hosting;

namespace Tandem.Server.Demo;

/// <summary>
/// The built-in demo load: a bounded number of concurrent HTTP clients, at
/// most a target rate, calling the service's own API over loopback — search
/// on the demo collection mostly, some pricing and hashing, and a few
/// deliberately invalid requests so errors show on the dashboard. Bounded in
/// concurrency and rate; started, stopped and resized through
/// <see cref="DemoLoadControl"/>.
/// </summary>
internal sealed class DemoLoadGenerator(
    IServer server,
    DemoLoadControl control,
    StartupState startup,
    IOptions<ServerOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<DemoLoadGenerator> logger) : BackgroundService
{
    private const int Bodies = 64;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await startup.Done.WaitAsync(stoppingToken);
            await Started(stoppingToken);
            await RunAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var baseAddress = LoopbackAddress();
        if (baseAddress is null)
        {
            return;
        }

        var requests = new RequestMix(options.Value.Demo);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        while (!stoppingToken.IsCancellationRequested)
        {
            // The signal first: a change between the two reads then wakes us at once.
            var changed = control.Changed;
            var settings = control.View;
            ServerLog.DemoLoad(logger, settings.Running ? "running" : "stopped", settings.Concurrency, settings.TargetPerSecond, baseAddress.ToString());
            if (!settings.Running)
            {
                await WaitAsync(changed, stoppingToken);
                continue;
            }

            using var round = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var tokens = Math.Max(1, settings.TargetPerSecond / 10);
            using var limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = tokens,
                TokensPerPeriod = tokens,
                ReplenishmentPeriod = TimeSpan.FromSeconds((double)tokens / settings.TargetPerSecond),
                QueueLimit = settings.Concurrency,
                AutoReplenishment = true,
            });
            var clients = new Task[settings.Concurrency];
            for (var i = 0; i < clients.Length; i++)
            {
                clients[i] = RunClientAsync(http, limiter, requests, i, round.Token);
            }

            await WaitAsync(changed, stoppingToken);
            await round.CancelAsync();
            await Task.WhenAll(clients);
        }
    }

    private async Task RunClientAsync(HttpClient http, RateLimiter limiter, RequestMix requests, int client, CancellationToken cancellationToken)
    {
        var random = new Random(client);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var lease = await limiter.AcquireAsync(1, cancellationToken);
                if (!lease.IsAcquired)
                {
                    continue;
                }

                using var request = requests.Next(random);
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                ServerLog.DemoRequestFailed(logger, e);
            }
        }
    }

    private static async Task WaitAsync(Task changed, CancellationToken stoppingToken)
    {
        try
        {
            await changed.WaitAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task Started(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken);
    }

    /// <summary>The first address the server listens on, with a wildcard host replaced by loopback.</summary>
    private Uri? LoopbackAddress()
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null || !Uri.TryCreate(address.Replace("://+", "://localhost").Replace("://*", "://localhost"), UriKind.Absolute, out var uri))
        {
            return null;
        }

        var host = uri.Host is "0.0.0.0" or "[::]" or "localhost" ? "127.0.0.1" : uri.Host;
        return new UriBuilder(uri) { Host = host }.Uri;
    }

    /// <summary>Pre-serialised request bodies, drawn at random: 75% search, 13% pricing, 10% hashing, the rest invalid.</summary>
    private sealed class RequestMix
    {
        private static readonly string[] Metrics = ["dot", "cosine", "l2"];
        private readonly string _collection;
        private readonly int _invalidPercent;
        private readonly string[] _searches = new string[Bodies];
        private readonly string[] _pricings = new string[Bodies];
        private readonly byte[] _hashInput;
        private readonly string _wrongDimension;

        public RequestMix(DemoOptions demo)
        {
            _collection = demo.Collection;
            _invalidPercent = demo.InvalidPercent;
            var random = new Random(42);
            for (var i = 0; i < Bodies; i++)
            {
                var count = 1 + (i % 4);
                var queries = DemoData.UnitVectors(count, demo.Dimension, seed: 1000 + i);
                var rows = new float[count][];
                for (var r = 0; r < count; r++)
                {
                    rows[r] = queries.AsSpan(r * demo.Dimension, demo.Dimension).ToArray();
                }

                _searches[i] = JsonSerializer.Serialize(new SearchRequest(null, rows, 10, Metrics[i % 3]), RequestBodies.Json);
                var options = new OptionRequest[4];
                for (var o = 0; o < options.Length; o++)
                {
                    options[o] = new OptionRequest(80 + random.Next(40), 100, 0.03, 0.1 + random.NextDouble() * 0.3, 0.25 + random.NextDouble(), o % 2 == 0 ? "call" : "put");
                }

                _pricings[i] = JsonSerializer.Serialize(new PricingRequest(options, 20_000, (ulong)i), RequestBodies.Json);
            }

            _hashInput = new byte[256 << 10];
            random.NextBytes(_hashInput);
            _wrongDimension = JsonSerializer.Serialize(new SearchRequest(new float[demo.Dimension + 1], null, 10, "dot"), RequestBodies.Json);
        }

        public HttpRequestMessage Next(Random random)
        {
            var draw = random.Next(100);
            if (draw < _invalidPercent)
            {
                return draw % 2 == 0
                    ? Json($"/collections/{_collection}/search", _wrongDimension)
                    : Json("/collections/no-such-collection/search", _searches[0]);
            }

            return ((draw - _invalidPercent) * 100 / Math.Max(1, 100 - _invalidPercent)) switch
            {
                < 75 => Json($"/collections/{_collection}/search", _searches[random.Next(Bodies)]),
                < 88 => Json("/pricing/european", _pricings[random.Next(Bodies)]),
                _ => new HttpRequestMessage(HttpMethod.Post, "/hash/blake3") { Content = new ByteArrayContent(_hashInput) { Headers = { ContentType = new MediaTypeHeaderValue("application/octet-stream") } } },
            };
        }

        private static HttpRequestMessage Json(string path, string body) =>
            new(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
    }
}
