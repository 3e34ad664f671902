// A user's app consuming the Tandem packages (tests/packages/run.sh copies it
// into a fresh folder): hashes on Native and on one Remote worker, and exits
// 1 unless each ran on the backend asked for, from the files the packages
// put next to the app. args[0] is the expected BLAKE3 digest (hex).
using Microsoft.Extensions.DependencyInjection;
using Tandem;
using Tandem.Hashing;
using Tandem.Native;
using Tandem.Remote;

var data = "Tandem, consumed from its packages"u8.ToArray();
var expected = args[0];
var appDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

await using (var native = new ServiceCollection()
    .AddTandem(o => { o.Backend = BackendKind.Native; o.FallbackToManaged = false; })
    .BuildServiceProvider())
{
    var library = native.GetRequiredService<INativeLibraryAdmin>().Current;
    Require(library.Error is null, $"the native library did not load: {library.Error}");
    Require(Path.GetDirectoryName(library.Path) == appDirectory, $"libtandem.so was loaded from {library.Path}, not from {appDirectory}");
    RequireServing(native, BackendKind.Native);
    var digest = await native.GetRequiredService<IBlake3Hashing>().HashAsync(data, cancellationToken: timeout.Token);
    Require(Convert.ToHexStringLower(digest) == expected, $"Native digest {Convert.ToHexStringLower(digest)}, expected {expected}");
    Console.WriteLine($"native: {library.Path} ABI {library.AbiMajor}.{library.AbiMinor}, digest ok");
}

await using (var remote = new ServiceCollection()
    .AddTandem(o => { o.Backend = BackendKind.Remote; o.FallbackToManaged = false; })
    .AddTandemRemote(o => o.WorkerCount = 1)
    .BuildServiceProvider())
{
    var pool = remote.GetRequiredService<IWorkerPoolAdmin>();
    await pool.StartAsync(timeout.Token);
    var worker = pool.Workers.Single();
    var binary = File.ResolveLinkTarget($"/proc/{worker.ProcessId}/exe", returnFinalTarget: true)?.FullName;
    Require(binary == Path.Combine(appDirectory, "tandem-worker"), $"the worker runs {binary}, not the one next to the app");
    RequireServing(remote, BackendKind.Remote);
    var digest = await remote.GetRequiredService<IBlake3Hashing>().HashAsync(data, cancellationToken: timeout.Token);
    Require(Convert.ToHexStringLower(digest) == expected, $"Remote digest {Convert.ToHexStringLower(digest)}, expected {expected}");
    Require(pool.Workers.Single().Completed >= 1, "the worker completed no call: the digest came from another backend");
    Console.WriteLine($"remote: {binary} (pid {worker.ProcessId}, version {worker.Version}), digest ok");
}

static void RequireServing(IServiceProvider provider, BackendKind backend)
{
    var route = provider.GetRequiredService<IKernelRouting>().Routes.Single(r => r.Kernel == "hash.blake3");
    Require(route.Serving == backend, $"hash.blake3 is served by {route.Serving} ({route.Reason}), not {backend}");
}

static void Require(bool condition, string failure)
{
    if (!condition)
    {
        Console.Error.WriteLine($"consumer: {failure}");
        Environment.Exit(1);
    }
}
