using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Tandem.Server;

/// <summary>Options of Tandem.Server (configuration section <c>Server</c>); validated at startup.</summary>
internal sealed class ServerOptions
{
    public const string SectionName = "Server";

    /// <summary>
    /// Where the service listens. Loopback by default: the admin endpoints
    /// share this listener and refuse non-loopback callers unless
    /// <see cref="AdminOptions.AllowRemote"/> is on.
    /// </summary>
    /// <value>The default is <c>http://127.0.0.1:5080</c>.</value>
    [Required]
    public string Urls { get; set; } = "http://127.0.0.1:5080";

    /// <summary>
    /// Supervised tandem-worker processes to run kernels on (the Remote
    /// backend); 0 runs them in process on the native library. Sets
    /// <c>Tandem:Backend</c> to Remote and <c>Tandem:Remote:WorkerCount</c>.
    /// </summary>
    /// <value>The default is 0.</value>
    [Range(0, 64)]
    public int Workers { get; set; }

    /// <summary>
    /// OTLP endpoint traces and metrics are exported to (for example
    /// <c>http://127.0.0.1:4317</c>); null exports only when the standard
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable is set.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public Uri? OtlpEndpoint { get; set; }

    [ValidateObjectMembers]
    public AdminOptions Admin { get; set; } = new();

    [ValidateObjectMembers]
    public LimitOptions Limits { get; set; } = new();

    [ValidateObjectMembers]
    public CollectionOptions Collections { get; set; } = new();

    [ValidateObjectMembers]
    public DemoOptions Demo { get; set; } = new();

    [ValidateObjectMembers]
    public DashboardOptions Dashboard { get; set; } = new();
}

/// <summary>The admin endpoints (<c>/admin/*</c>).</summary>
internal sealed class AdminOptions
{
    /// <summary>Bearer token the admin endpoints require; null generates one at startup and prints it.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [MinLength(16)]
    public string? Token { get; set; }

    /// <summary>Whether admin calls from non-loopback addresses are accepted (with the token).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool AllowRemote { get; set; }
}

/// <summary>Request size and timing limits, enforced per endpoint and by Kestrel.</summary>
internal sealed class LimitOptions
{
    /// <summary>Largest JSON request body (collections from JSON, search, pricing, admin).</summary>
    /// <value>The default is 32 MiB.</value>
    [Range(1024L, long.MaxValue)]
    public long MaxJsonBytes { get; set; } = 32L << 20;

    /// <summary>
    /// Largest binary collection upload (raw f32 or .npy), per request: a
    /// larger declared Content-Length or .npy shape is refused (413) before
    /// anything is allocated, and a chunked body as soon as it passes it.
    /// </summary>
    /// <value>The default is 1 GiB.</value>
    [Range(1024L, long.MaxValue)]
    public long MaxUploadBytes { get; set; } = 1L << 30;

    /// <summary>Largest body <c>POST /hash/blake3</c> accepts; null means no limit (memory stays constant whatever the size).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1L, long.MaxValue)]
    public long? MaxHashBytes { get; set; }

    /// <summary>Time a client has to send all request headers (slow-loris protection).</summary>
    /// <value>The default is 10 seconds.</value>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Slowest request body accepted after a grace period of <see cref="MinBodyRateGracePeriod"/>, in bytes per second.</summary>
    /// <value>The default is 240 bytes per second.</value>
    [Range(1.0, double.MaxValue)]
    public double MinBodyBytesPerSecond { get; set; } = 240;

    /// <summary>How long a request body may be slower than <see cref="MinBodyBytesPerSecond"/>.</summary>
    /// <value>The default is 5 seconds.</value>
    public TimeSpan MinBodyRateGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Most concurrent connections; null means no limit.</summary>
    /// <value>The default is 1024.</value>
    [Range(1L, long.MaxValue)]
    public long? MaxConnections { get; set; } = 1024;
}

/// <summary>What all collections may hold together (<c>Server:Collections</c>); a creation past either limit is refused with 507.</summary>
internal sealed class CollectionOptions
{
    /// <summary>Most collections that may exist (or be being created) at once.</summary>
    /// <value>The default is 1,000.</value>
    [Range(1, int.MaxValue)]
    public int MaxCount { get; set; } = 1_000;

    /// <summary>Most bytes of vectors (4 per f32 component) and ids (8 each) all collections may hold together, uploads in progress included.</summary>
    /// <value>The default is 4 GiB.</value>
    [Range(1024L, long.MaxValue)]
    public long MaxTotalBytes { get; set; } = 4L << 30;

    /// <summary>
    /// With a state repository, how often the catalog re-reads it: a
    /// collection another server sharing the repository created is served
    /// here, and one it dropped is dropped here, within this interval (plus
    /// the time to load it).
    /// </summary>
    /// <value>The default is 2 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan RepositorySyncInterval { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>The demo: a collection loaded at startup and a built-in load generator.</summary>
internal sealed class DemoOptions
{
    /// <summary>Whether the demo collection is created at startup (<c>--demo</c> turns it and the load on).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool Enabled { get; set; }

    /// <summary>Name of the demo collection.</summary>
    /// <value>The default is <c>demo</c>.</value>
    [Required]
    public string Collection { get; set; } = "demo";

    /// <summary>Vectors in the demo collection (seeded random unit vectors).</summary>
    /// <value>The default is 100,000.</value>
    [Range(1, 10_000_000)]
    public int Vectors { get; set; } = 100_000;

    /// <summary>Components per demo vector.</summary>
    /// <value>The default is 128.</value>
    [Range(1, 4096)]
    public int Dimension { get; set; } = 128;

    /// <summary>Whether the load generator runs from startup (when <see cref="Enabled"/>); the dashboard starts and stops it.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Load { get; set; } = true;

    /// <summary>Concurrent requests the load generator keeps in flight at most.</summary>
    /// <value>The default is 4.</value>
    [Range(1, 64)]
    public int Concurrency { get; set; } = 4;

    /// <summary>Requests per second the load generator sends at most.</summary>
    /// <value>The default is 200.</value>
    [Range(1, 10_000)]
    public int TargetPerSecond { get; set; } = 200;

    /// <summary>Share of generated requests that are deliberately invalid (to show errors on the dashboard), in percent.</summary>
    /// <value>The default is 2.</value>
    [Range(0, 100)]
    public int InvalidPercent { get; set; } = 2;
}

/// <summary>The live dashboard at <c>/</c>.</summary>
internal sealed class DashboardOptions
{
    /// <summary>How often the dashboard's figures are computed and pushed to browsers.</summary>
    /// <value>The default is 1 second.</value>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);
}
