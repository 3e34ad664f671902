using Microsoft.Extensions.Options;
using Tandem.Server.Collections;
using Tandem.Similarity;

namespace Tandem.Server.Api;

/// <summary>/collections: create (JSON, raw f32, .npy), list, describe, drop, and search.</summary>
internal static class CollectionsApi
{
    private const string Kernel = "similarity.topk";
    private const string CreateExample = """{"name":"docs","vectors":[[0.1,0.2],[0.3,0.4]]}""";
    private const string SearchExample = """{"query":[0.1,0.2],"k":10,"metric":"cosine"}""";

    public static void Map(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/collections").WithTags("collections");
        group.MapGet("/", List).WithSummary("Lists the collections");
        group.MapPost("/", CreateFromJsonAsync)
            .WithSummary("Creates a collection from JSON")
            .Accepts<CreateCollectionRequest>("application/json")
            .Produces<CollectionResponse>(StatusCodes.Status201Created)
            .ProducesProblem(400).ProducesProblem(409).ProducesProblem(413).ProducesProblem(415).ProducesProblem(507);
        group.MapPut("/{name}", UploadAsync)
            .WithSummary("Creates a collection from a binary upload")
            .WithDescription("Content-Type application/octet-stream: raw little-endian f32 rows, with ?dimension=N. Content-Type application/x-npy: a NumPy .npy file holding a 2-D float32 or float64 array in C order.")
            .Accepts<Stream>("application/octet-stream", "application/x-npy")
            .Produces<CollectionResponse>(StatusCodes.Status201Created)
            .ProducesProblem(400).ProducesProblem(409).ProducesProblem(413).ProducesProblem(415).ProducesProblem(507);
        group.MapGet("/{name}", Find).WithSummary("Describes a collection").ProducesProblem(404);
        group.MapDelete("/{name}", Drop).WithSummary("Drops a collection").Produces(StatusCodes.Status204NoContent).ProducesProblem(404);
        group.MapPost("/{name}/search", SearchAsync)
            .WithSummary("Top-k search by dot product, cosine similarity or squared L2 distance")
            .Accepts<SearchRequest>("application/json")
            .Produces<SearchResponse>()
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(413).ProducesProblem(415).ProducesProblem(429).ProducesProblem(503).ProducesProblem(504);
    }

    private static IResult List(CollectionCatalog catalog) =>
        Results.Ok(catalog.Entries.Select(Describe).ToArray());

    private static IResult Find(string name, CollectionCatalog catalog) =>
        catalog.TryGet(name, out var entry)
            ? Results.Ok(Describe(entry))
            : throw NotFound(name);

    private static IResult Drop(string name, CollectionCatalog catalog) =>
        catalog.Drop(name) ? Results.NoContent() : throw NotFound(name);

    private static async Task<IResult> CreateFromJsonAsync(HttpContext context, CollectionCatalog catalog, CollectionBudget budget, IOptions<ServerOptions> options)
    {
        // The slot is taken before the body is read, so a flood of creations is refused without parsing any.
        var reservation = budget.Reserve(0);
        CreateCollectionRequest request;
        float[] values;
        int dimension;
        try
        {
            request = await RequestBodies.ReadJsonAsync<CreateCollectionRequest>(context, options.Value.Limits.MaxJsonBytes, CreateExample);
            if (request.Name is null)
            {
                throw Invalid($"field 'name' is required, for example {CreateExample}");
            }

            (values, dimension) = Flatten(request.Vectors, "vectors");
        }
        catch
        {
            reservation.Dispose();
            throw;
        }

        var entry = await catalog.CreateAsync(request.Name, values, dimension, request.Ids, reservation, context.RequestAborted);
        return Results.Created($"/collections/{entry.Name}", Describe(entry));
    }

    internal static async Task<IResult> UploadAsync(string name, int? dimension, HttpContext context, CollectionCatalog catalog, CollectionBudget budget, IOptions<ServerOptions> options)
    {
        // Everything the URL and headers decide is checked before the body is touched.
        CollectionCatalog.ValidateName(name);
        var mediaType = context.Request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        if (mediaType is not ("application/octet-stream" or "application/x-npy"))
        {
            throw new HttpProblemException(
                StatusCodes.Status415UnsupportedMediaType,
                TandemStatusCode.InvalidArgument,
                $"PUT /collections/{{name}} takes Content-Type application/octet-stream (raw little-endian f32 with ?dimension=N) or application/x-npy (a .npy file); the request says '{context.Request.ContentType ?? "(none)"}'. For JSON use POST /collections.");
        }

        var isNpy = mediaType == "application/x-npy";
        if (!isNpy && dimension is null)
        {
            throw Invalid("query parameter 'dimension' is required with application/octet-stream: the number of f32 components per vector, for example ?dimension=384");
        }

        if (!isNpy && dimension <= 0)
        {
            throw Invalid($"query parameter 'dimension' must be a positive number of components per vector, got {dimension}");
        }

        catalog.CheckAvailable(name);
        var maxBytes = options.Value.Limits.MaxUploadBytes;
        var body = RequestBodies.Limit(context, maxBytes);
        var reservation = budget.Reserve(0);
        UploadedVectors upload;
        try
        {
            upload = isNpy
                ? await VectorUploads.ReadNpyAsync(body, maxBytes, reservation, context.RequestAborted)
                : await VectorUploads.ReadRawAsync(body, context.Request.ContentLength, dimension!.Value, reservation, context.RequestAborted);
        }
        catch
        {
            reservation.Dispose();
            throw;
        }

        var entry = await catalog.CreateAsync(name, upload.Values, upload.Dimension, null, reservation, context.RequestAborted);
        return Results.Created($"/collections/{entry.Name}", Describe(entry));
    }

    private static async Task<IResult> SearchAsync(string name, HttpContext context, CollectionCatalog catalog, IOptions<ServerOptions> options)
    {
        var request = await RequestBodies.ReadJsonAsync<SearchRequest>(context, options.Value.Limits.MaxJsonBytes, SearchExample);
        if ((request.Query is null) == (request.Queries is null))
        {
            throw Invalid($"send exactly one of 'query' (one vector) or 'queries' (a list of vectors), for example {SearchExample}");
        }

        var metric = ParseMetric(request.Metric);
        if (!catalog.TryGet(name, out var entry))
        {
            throw NotFound(name);
        }

        float[] queries;
        if (request.Query is { } single)
        {
            CheckDimension(single, entry.Dimension, "query");
            queries = single;
        }
        else
        {
            var (values, dimension) = Flatten(request.Queries, "queries");
            if (dimension != entry.Dimension)
            {
                throw Invalid($"field 'queries' has vectors of dimension {dimension}, but collection '{name}' has dimension {entry.Dimension}");
            }

            queries = values;
        }

        var result = await catalog.SearchAsync(name, queries, request.K, metric, context.RequestAborted);
        var hits = new SearchHits[result.BatchSize];
        for (var q = 0; q < hits.Length; q++)
        {
            hits[q] = new SearchHits(result.IdsOf(q).ToArray(), result.ScoresOf(q).ToArray());
        }

        return Results.Ok(new SearchResponse(ApiProblems.BackendName(result.Backend), MetricName(metric), result.K, hits));
    }

    private static CollectionResponse Describe(CatalogEntry entry) =>
        new(entry.Name, entry.Count, entry.Dimension, ApiProblems.BackendName(entry.Backend), entry.SizeBytes, entry.CreatedAt);

    /// <summary>Rows of equal length into one row-major array.</summary>
    private static (float[] Values, int Dimension) Flatten(float[][]? rows, string field)
    {
        if (rows is null || rows.Length == 0)
        {
            throw Invalid($"field '{field}' must hold at least one vector");
        }

        var dimension = rows[0]?.Length ?? 0;
        if (dimension == 0)
        {
            throw Invalid($"field '{field}' row 0 is empty; vectors need at least one component");
        }

        if ((long)rows.Length * dimension > Array.MaxLength)
        {
            throw Invalid($"field '{field}' holds too many values ({rows.Length} × {dimension}); split it");
        }

        var values = new float[rows.Length * dimension];
        for (var i = 0; i < rows.Length; i++)
        {
            var row = rows[i];
            if (row is null || row.Length != dimension)
            {
                throw Invalid($"field '{field}' row {i} has {row?.Length ?? 0} values but row 0 has {dimension}; all vectors need the same dimension");
            }

            row.CopyTo(values, i * dimension);
        }

        return (values, dimension);
    }

    private static void CheckDimension(float[] query, int dimension, string field)
    {
        if (query.Length != dimension)
        {
            throw Invalid($"field '{field}' has {query.Length} values, but the collection has dimension {dimension}");
        }
    }

    private static SimilarityMetric ParseMetric(string? metric) => metric?.ToLowerInvariant() switch
    {
        null or "dot" => SimilarityMetric.Dot,
        "cosine" => SimilarityMetric.Cosine,
        "l2" => SimilarityMetric.L2,
        _ => throw Invalid($"field 'metric' must be dot, cosine or l2, got '{metric}'"),
    };

    private static string MetricName(SimilarityMetric metric) => metric switch
    {
        SimilarityMetric.Cosine => "cosine",
        SimilarityMetric.L2 => "l2",
        _ => "dot",
    };

    private static TandemException Invalid(string message) => new(TandemStatusCode.InvalidArgument, message, Kernel);

    private static TandemException NotFound(string name) =>
        new(TandemStatusCode.NotFound, $"no collection named '{name}'; list them with GET /collections", Kernel);
}
