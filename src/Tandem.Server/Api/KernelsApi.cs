using Microsoft.Extensions.Options;
using Tandem.Hashing;
using Tandem.Pricing;

namespace Tandem.Server.Api;

/// <summary>The stateless kernels over HTTP: option pricing and BLAKE3 hashing of a streamed body.</summary>
internal static class KernelsApi
{
    private const string PricingExample = """{"options":[{"spot":100,"strike":105,"rate":0.03,"volatility":0.2,"maturity":1,"kind":"call"}],"paths":100000,"seed":42}""";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/pricing/european", PriceAsync)
            .WithTags("pricing")
            .WithSummary("Monte Carlo prices and standard errors of European options")
            .Accepts<PricingRequest>("application/json")
            .Produces<PricingResponse>()
            .ProducesProblem(400).ProducesProblem(413).ProducesProblem(415).ProducesProblem(429).ProducesProblem(503).ProducesProblem(504);
        app.MapPost("/hash/blake3", HashAsync)
            .WithTags("hashing")
            .WithSummary("BLAKE3 digest of the request body, streamed")
            .WithDescription("Content-Type application/octet-stream; the body is hashed as it arrives, in constant memory. ?length=N asks for N output bytes (1 to 1048576, default 32).")
            .Accepts<Stream>("application/octet-stream")
            .Produces<HashResponse>()
            .ProducesProblem(400).ProducesProblem(413).ProducesProblem(429).ProducesProblem(503);
    }

    private static async Task<IResult> PriceAsync(HttpContext context, IOptionPricing pricing, IOptions<ServerOptions> options)
    {
        var request = await RequestBodies.ReadJsonAsync<PricingRequest>(context, options.Value.Limits.MaxJsonBytes, PricingExample);
        if (request.Options is not { Length: > 0 } rows)
        {
            throw Invalid($"field 'options' must hold at least one option, for example {PricingExample}");
        }

        var parsed = new EuropeanOption[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var row = rows[i] ?? throw Invalid($"field 'options' entry {i} is null");
            var kind = row.Kind?.ToLowerInvariant() switch
            {
                "call" => OptionKind.Call,
                "put" => OptionKind.Put,
                _ => throw Invalid($"field 'options' entry {i} has kind '{row.Kind}'; use call or put"),
            };
            parsed[i] = new EuropeanOption(row.Spot, row.Strike, row.Rate, row.Volatility, row.Maturity, kind);
        }

        if (request.Paths is < 1 or > MonteCarloSettings.MaxPaths)
        {
            throw Invalid($"field 'paths' must be 1 to {MonteCarloSettings.MaxPaths}, got {request.Paths}");
        }

        var settings = new MonteCarloSettings { Paths = request.Paths, Seed = request.Seed, Antithetic = request.Antithetic };
        var prices = await pricing.PriceEuropeanAsync(parsed, settings, context.RequestAborted);
        return Results.Ok(new PricingResponse(ApiProblems.BackendName(prices.Backend), prices.Prices, prices.StandardErrors));
    }

    private static async Task<IResult> HashAsync(HttpContext context, IBlake3Hashing hashing, IKernelRouting routing, IOptions<ServerOptions> options, int length = 32)
    {
        if (length is < 1 or > IBlake3Hashing.MaxOutputLength)
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, $"query parameter 'length' must be 1 to {IBlake3Hashing.MaxOutputLength} output bytes, got {length}", "hash.blake3");
        }

        var body = RequestBodies.Limit(context, options.Value.Limits.MaxHashBytes);
        var digest = await hashing.HashAsync(body, length, context.RequestAborted);
        var backend = routing.Routes.FirstOrDefault(r => r.Kernel == "hash.blake3")?.Serving ?? BackendKind.Managed;
        return Results.Ok(new HashResponse("blake3", Convert.ToHexStringLower(digest), body.BytesRead, length, ApiProblems.BackendName(backend)));
    }

    private static TandemException Invalid(string message) => new(TandemStatusCode.InvalidArgument, message, "montecarlo.european");
}
