using System.Collections.Concurrent;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Tandem.Server.Tests.Tracing;

/// <summary>
/// The trace context of an HTTP request reaches the Rust side: a search sent
/// with a traceparent runs on a real tandem-worker, whose per-call JSON log
/// line (forwarded to the server's log) carries the same trace id.
/// </summary>
public sealed class TraceIntoRustTests
{
    [Fact]
    public async Task Search_WithTraceparent_WorkerLogCarriesTheTraceId()
    {
        var lines = new LineCapture();
        await using var factory = new ServerFactory(new Dictionary<string, string?>
        {
            ["Server:Workers"] = "1",
            ["Logging:LogLevel:Tandem.Remote"] = "Debug",
        }).WithWebHostBuilder(builder => builder.ConfigureLogging(logging => logging.AddProvider(lines)));
        using var client = factory.CreateClient();
        var created = await client.PostAsJsonAsync("/collections", new { name = "traced", vectors = new[] { new[] { 1f, 0f }, new[] { 0f, 1f } } });
        created.EnsureSuccessStatusCode();
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/collections/traced/search")
        {
            Content = JsonContent.Create(new { query = new[] { 0.5f, 0.5f }, k = 1 }),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-00f067aa0ba902b7-01");

        var response = await client.SendAsync(request);

        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        Assert.Equal("remote", body.GetProperty("backend").GetString());
        var line = await lines.WaitForAsync(l => l.Contains(traceId, StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.StartsWith("Worker w0: ", line, StringComparison.Ordinal);
        Assert.Contains("similarity.topk", line, StringComparison.Ordinal);
    }

    /// <summary>Collects every log message and lets a test wait for one.</summary>
    private sealed class LineCapture : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _lines = new();
        private readonly SemaphoreSlim _added = new(0);

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public async Task<string> WaitForAsync(Func<string, bool> match, TimeSpan timeout)
        {
            using var deadline = new CancellationTokenSource(timeout);
            while (true)
            {
                if (_lines.FirstOrDefault(match) is { } found)
                {
                    return found;
                }

                await _added.WaitAsync(deadline.Token);
            }
        }

        public void Dispose()
        {
        }

        private sealed class Logger(LineCapture capture) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                capture._lines.Enqueue(formatter(state, exception));
                capture._added.Release();
            }
        }
    }
}
