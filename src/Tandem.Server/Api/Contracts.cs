namespace Tandem.Server.Api;

// The HTTP API's request and response bodies (JSON, camelCase). Requests
// reject unknown members, so a misspelt field is an error, not a default.

/// <summary>POST /collections: a collection from JSON.</summary>
/// <param name="Name">1 to 128 letters, digits, '.', '_' or '-'.</param>
/// <param name="Vectors">Rows of equal length; all values finite.</param>
/// <param name="Ids">Optional unique id per row; without them a row's id is its index.</param>
internal sealed record CreateCollectionRequest(string? Name, float[][]? Vectors, long[]? Ids);

/// <summary>A collection as the API describes it.</summary>
internal sealed record CollectionResponse(string Name, int Count, int Dimension, string Backend, long SizeBytes, DateTimeOffset CreatedAt);

/// <summary>POST /collections/{name}/search: one query or many.</summary>
/// <param name="Query">One query vector (or use <paramref name="Queries"/>).</param>
/// <param name="Queries">Several query vectors, answered in order.</param>
/// <param name="K">Hits per query, 1 to 4096 (fewer when the collection is smaller).</param>
/// <param name="Metric">dot (default), cosine or l2.</param>
internal sealed record SearchRequest(float[]? Query, float[][]? Queries, int K = 10, string? Metric = null);

/// <summary>The hits of one query, best first.</summary>
internal sealed record SearchHits(long[] Ids, float[] Scores);

internal sealed record SearchResponse(string Backend, string Metric, int K, SearchHits[] Results);

/// <summary>One European option.</summary>
/// <param name="Kind">call or put.</param>
internal sealed record OptionRequest(double Spot, double Strike, double Rate, double Volatility, double Maturity, string? Kind);

/// <summary>POST /pricing/european.</summary>
/// <param name="Paths">Monte Carlo paths per option, 1 to 10^9.</param>
/// <param name="Seed">Seed of the counter-based generator: the same request gives the same prices.</param>
internal sealed record PricingRequest(OptionRequest[]? Options, long Paths = 100_000, ulong Seed = 0, bool Antithetic = false);

internal sealed record PricingResponse(string Backend, double[] Prices, double[] StandardErrors);

internal sealed record HashResponse(string Algorithm, string Digest, long Bytes, int OutputLength, string Backend);

/// <summary>PUT /admin/kernels/{kernel}: either field may be left out.</summary>
/// <param name="Backend">managed, native or remote; null leaves it.</param>
/// <param name="Acceleration">false runs the kernel on Managed whatever its backend; null leaves it.</param>
internal sealed record KernelFlagsRequest(string? Backend = null, bool? Acceleration = null);

/// <summary>A kernel's flags and the backend its new calls run on.</summary>
internal sealed record KernelFlagsResponse(string Kernel, string Backend, bool Acceleration, string? Serving, string? Reason);

/// <summary>POST /admin/workers/upgrade: the new worker binary, or null for the same one under a new build id.</summary>
internal sealed record UpgradeRequest(string? WorkerPath = null);

/// <summary>POST /admin/native/hot-swap: the new libtandem.so, or null to reload the current file.</summary>
internal sealed record HotSwapRequest(string? LibraryPath = null, string? Library = null);

internal sealed record NativeResponse(long Generation, string? Path, string Abi, DateTimeOffset LoadedAt, string? Error, string? Name = null, string? Version = null, IReadOnlyList<string>? Kernels = null);

internal sealed record NativeLibrariesResponse(long Generation, string? Path, string Abi, DateTimeOffset LoadedAt, string? Error, IReadOnlyList<NativeResponse> Libraries);

internal sealed record WorkerResponse(string Name, string Address, string Status, int InFlight, long Completed, long Failed, string? Version, string? InstanceId, int? ProcessId);

/// <summary>PUT /admin/load: the demo load generator.</summary>
internal sealed record LoadRequest(bool? Running = null, int? Concurrency = null, int? TargetPerSecond = null);

internal sealed record LoadResponse(bool Running, int Concurrency, int TargetPerSecond);

/// <summary>An admin operation that runs in the background (restart, upgrade, hot swap).</summary>
internal sealed record OperationResponse(string Id, string Kind, string State, string? Message, DateTimeOffset StartedAt, DateTimeOffset? EndedAt);
