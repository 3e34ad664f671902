using Tandem.Native;
using Tandem.Remote;
using Tandem.Server.Api;
using Tandem.Server.Demo;
using Tandem.Server.Hosting;

namespace Tandem.Server.Admin;

/// <summary>/admin: feature flags, workers, rolling upgrade, native hot swap and the demo load; token and loopback only.</summary>
internal static class AdminApi
{

    public static void Map(IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/admin").WithTags("admin").AddEndpointFilter<AdminAccess>()
            .ProducesProblem(401).ProducesProblem(403);
        admin.MapGet("/kernels", ListKernels).WithSummary("Each kernel's backend, acceleration flag and the backend serving it");
        admin.MapPut("/kernels/{kernel}", SetKernelAsync)
            .WithSummary("Sets a kernel's backend and/or acceleration; applies to new calls at once")
            .Accepts<KernelFlagsRequest>("application/json")
            .Produces<KernelFlagsResponse>().ProducesProblem(400).ProducesProblem(404);
        admin.MapGet("/workers", ListWorkers).WithSummary("The Remote pool's workers with their health and in-flight calls");
        admin.MapPost("/workers/{name}/restart", RestartWorker)
            .WithSummary("Replaces one supervised worker by a fresh process")
            .Produces<OperationResponse>(StatusCodes.Status202Accepted).ProducesProblem(404).ProducesProblem(409);
        admin.MapPost("/workers/upgrade", UpgradeAsync)
            .WithSummary("Rolls every supervised worker onto a new binary (or a new build id), one at a time, without failing a call")
            .Accepts<UpgradeRequest>("application/json")
            .Produces<OperationResponse>(StatusCodes.Status202Accepted).ProducesProblem(400).ProducesProblem(409);
        admin.MapGet("/native", Native).WithSummary("The native library serving in-process calls");
        admin.MapPost("/native/hot-swap", HotSwapAsync)
            .WithSummary("Loads a new libtandem.so beside the current one and switches calls to it atomically")
            .Accepts<HotSwapRequest>("application/json")
            .Produces<OperationResponse>(StatusCodes.Status202Accepted).ProducesProblem(400).ProducesProblem(409);
        admin.MapGet("/operations", (AdminOperations operations) => Results.Ok(operations.Recent)).WithSummary("Recent admin operations");
        admin.MapGet("/operations/{id}", (string id, AdminOperations operations) =>
            operations.Find(id) is { } found ? Results.Ok(found) : throw new TandemException(TandemStatusCode.NotFound, $"no admin operation '{id}'; GET /admin/operations lists the recent ones"))
            .WithSummary("One admin operation's state").ProducesProblem(404);
        admin.MapGet("/load", (DemoLoadControl load) => Results.Ok(load.View)).WithSummary("The demo load generator's settings");
        admin.MapPut("/load", SetLoadAsync)
            .WithSummary("Starts, stops or resizes the demo load generator")
            .Accepts<LoadRequest>("application/json")
            .Produces<LoadResponse>().ProducesProblem(400);
    }

    public static KernelFlagsResponse[] KernelViews(KernelFlags flags, IKernelRouting routing)
    {
        var routes = routing.Routes;
        var views = new KernelFlagsResponse[routes.Count];
        for (var i = 0; i < routes.Count; i++)
        {
            var route = routes[i];
            var (backend, acceleration) = flags.Of(route.Kernel);
            views[i] = new KernelFlagsResponse(route.Kernel, ApiProblems.BackendName(backend), acceleration, route.Serving is { } serving ? ApiProblems.BackendName(serving) : null, route.Reason);
        }

        return views;
    }

    public static WorkerResponse[] WorkerViews(IWorkerPoolAdmin? pool) =>
        pool is null ? [] : [.. pool.Workers.Select(w => new WorkerResponse(w.Name, w.Address, StatusName(w.Status), w.InFlight, w.Completed, w.Failed, w.Version, w.InstanceId, w.ProcessId))];

    public static NativeResponse NativeView(NativeLibraryInfo info) =>
        new(info.Generation, info.Path, $"{info.AbiMajor}.{info.AbiMinor}", info.LoadedAt, info.Error, info.Name, info.Version, info.Kernels);

    private static IResult ListKernels(KernelFlags flags, IKernelRouting routing) => Results.Ok(KernelViews(flags, routing));

    private static async Task<IResult> SetKernelAsync(string kernel, HttpContext context, KernelFlags flags, IKernelRouting routing, ILogger<KernelFlags> logger)
    {
        var kernels = routing.Routes.Select(r => r.Kernel).ToArray();
        if (!kernels.Contains(kernel))
        {
            throw new TandemException(TandemStatusCode.NotFound, $"no kernel named '{kernel}'; the kernels are {string.Join(", ", kernels)}");
        }

        var request = await RequestBodies.ReadJsonAsync<KernelFlagsRequest>(context, 64 << 10, """{"backend":"managed"} or {"acceleration":false}""");
        BackendKind? backend = request.Backend?.ToLowerInvariant() switch
        {
            null => null,
            "managed" => BackendKind.Managed,
            "native" => BackendKind.Native,
            "remote" => BackendKind.Remote,
            _ => throw new TandemException(TandemStatusCode.InvalidArgument, $"field 'backend' must be managed, native or remote, got '{request.Backend}'", kernel),
        };
        if (backend == BackendKind.Remote && context.RequestServices.GetService<IWorkerPoolAdmin>() is null)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, "there is no Remote worker pool in this server; start it with --workers N (Server:Workers) to run kernels on workers", kernel);
        }

        if (backend is null && request.Acceleration is null)
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, "send 'backend' (managed, native or remote) and/or 'acceleration' (true or false)", kernel);
        }

        var (now, acceleration) = flags.Set(kernel, backend, request.Acceleration);
        ServerLog.FlagsChanged(logger, kernel, ApiProblems.BackendName(now), acceleration);
        return Results.Ok(KernelViews(flags, routing).First(v => v.Kernel == kernel));
    }

    private static IResult ListWorkers(IServiceProvider services) => Results.Ok(WorkerViews(services.GetService<IWorkerPoolAdmin>()));

    private static IResult RestartWorker(string name, IServiceProvider services, AdminOperations operations)
    {
        var pool = RequirePool(services);
        if (!pool.Workers.Any(w => w.Name == name))
        {
            var names = string.Join(", ", pool.Workers.Select(w => w.Name));
            throw new TandemException(TandemStatusCode.NotFound, $"no worker named '{name}'; the workers are {(names.Length > 0 ? names : "(none yet)")}");
        }

        var operation = operations.Start("restart", $"restarting worker {name}", async ct =>
        {
            await pool.RestartAsync(name, ct);
            return $"worker {name} restarted";
        });
        return Results.Accepted($"/admin/operations/{operation.Id}", operation);
    }

    private static async Task<IResult> UpgradeAsync(HttpContext context, IServiceProvider services, AdminOperations operations)
    {
        var request = context.Request.ContentLength is 0 or null && context.Request.ContentType is null
            ? new UpgradeRequest()
            : await RequestBodies.ReadJsonAsync<UpgradeRequest>(context, 64 << 10, """{"workerPath":"/opt/tandem/tandem-worker"} or {}""");
        var pool = RequirePool(services);
        if (request.WorkerPath is { } path && !File.Exists(path))
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, $"field 'workerPath' names '{path}', which does not exist on the server");
        }

        var operation = operations.Start("rolling-upgrade", request.WorkerPath is null ? "rolling upgrade onto a new build id" : $"rolling upgrade onto {request.WorkerPath}", async ct =>
        {
            await pool.RollingUpgradeAsync(request.WorkerPath, ct);
            return $"every worker now runs {request.WorkerPath ?? "a new build id"}";
        });
        return Results.Accepted($"/admin/operations/{operation.Id}", operation);
    }

    /// <summary>libtandem.so's build at the top level (as before several libraries), every library in <c>libraries</c>.</summary>
    private static IResult Native(INativeLibraryAdmin native)
    {
        var current = NativeView(native.Current);
        return Results.Ok(new NativeLibrariesResponse(current.Generation, current.Path, current.Abi, current.LoadedAt, current.Error, [.. native.Libraries.Select(NativeView)]));
    }

    private static async Task<IResult> HotSwapAsync(HttpContext context, INativeLibraryAdmin native, AdminOperations operations)
    {
        var request = context.Request.ContentLength is 0 or null && context.Request.ContentType is null
            ? new HotSwapRequest()
            : await RequestBodies.ReadJsonAsync<HotSwapRequest>(context, 64 << 10, """{"libraryPath":"/opt/tandem/libtandem.so"}, {"library":"ewma","libraryPath":"/opt/kernels/libewma.so"} or {}""");
        var library = request.Library is null ? native.Current : native.Libraries.FirstOrDefault(l => l.Name == request.Library)
            ?? throw new TandemException(TandemStatusCode.NotFound, $"field 'library' names '{request.Library}', which is not loaded; the kernel libraries are {string.Join(", ", native.Libraries.Select(l => l.Name ?? l.Path))}");
        var path = request.LibraryPath ?? library.Path
            ?? throw new TandemException(TandemStatusCode.FailedPrecondition, "no native library is loaded to reload; send 'libraryPath'");
        if (!File.Exists(path))
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, $"field 'libraryPath' names '{path}', which does not exist on the server");
        }

        var operation = operations.Start("hot-swap", $"hot-swapping the native library to {path}", async ct =>
        {
            var now = request.Library is null ? await native.HotSwapAsync(path, ct) : await native.HotSwapAsync(request.Library, path, ct);
            return $"native library {now.Name} generation {now.Generation} serves from {now.Path}";
        });
        return Results.Accepted($"/admin/operations/{operation.Id}", operation);
    }

    private static async Task<IResult> SetLoadAsync(HttpContext context, DemoLoadControl load)
    {
        var request = await RequestBodies.ReadJsonAsync<LoadRequest>(context, 64 << 10, """{"running":true,"concurrency":4,"targetPerSecond":200}""");
        if (request.Concurrency is < 1 or > 64)
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, $"field 'concurrency' must be 1 to 64, got {request.Concurrency}");
        }

        if (request.TargetPerSecond is < 1 or > 10_000)
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, $"field 'targetPerSecond' must be 1 to 10000, got {request.TargetPerSecond}");
        }

        return Results.Ok(load.Set(request.Running, request.Concurrency, request.TargetPerSecond));
    }

    private static IWorkerPoolAdmin RequirePool(IServiceProvider services) =>
        services.GetService<IWorkerPoolAdmin>() is { } pool && (pool.Workers.Count > 0 || services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerOptions>>().Value.Workers > 0)
            ? pool
            : throw new TandemException(TandemStatusCode.FailedPrecondition, "there is no Remote worker pool; start the server with --workers N (Server:Workers) or configure Tandem:Backend Remote");

    private static string StatusName(WorkerStatus status) => status switch
    {
        WorkerStatus.Starting => "starting",
        WorkerStatus.Serving => "serving",
        WorkerStatus.NotServing => "notServing",
        WorkerStatus.Ejected => "ejected",
        _ => "retiring",
    };
}
