using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Health.V1;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Remote;
using Tandem.Remote.Internal;
using Tandem.Remote.Internal.Transport.FastPath;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// Round trip of a tiny top-k (n = 1,000, dim = 64, k = 10, one query) at
/// concurrency 1, side by side in one run: the floor — a raw 64-byte
/// ping-pong between this process and a Rust echo process over a Unix socket
/// — then Native in process, Remote over the local fast path, Remote over
/// gRPC on a Unix socket, the same with a worker built from an earlier commit
/// (when <c>TANDEM_BASELINE_WORKER</c> names its binary: the "before" of a
/// change, measured in the same run), and Remote over TCP loopback; each
/// Remote row followed by bare calls on the same connection without Tandem's
/// client side. Prints p50, p99 and CPU time per call on each side.
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- roundtrip [calls]
/// </summary>
internal static class RoundTrip
{
    private const int Rows = 1_000;
    private const int Dim = 64;
    private const int K = 10;

    public static async Task RunAsync(string[] args)
    {
        var calls = args.Length > 1 && int.TryParse(args[1], out var n) ? n : 20_000;
        var warmup = Math.Max(calls / 10, 500);
        var random = new Random(5);
        var vectors = GaussianData.Create(random, Rows * Dim);
        var query = GaussianData.Create(random, Dim);
        Console.WriteLine($"roundtrip: similarity.topk n = {Rows:N0}, dim = {Dim}, k = {K}, 1 query, concurrency 1, {calls:N0} calls after {warmup:N0} warm-up, {Environment.ProcessorCount} cores");
        Console.WriteLine($"cpu: {MachineFacts.CpuModel()}; load average at start: {MachineFacts.LoadAverage()}");
        Console.WriteLine($"{"path",-44} {"p50 µs",9} {"p99 µs",9} {"client CPU µs/call",19} {"server CPU µs/call",19} {"pool items/call",16}");

        var floor = await FloorAsync(calls, warmup);
        Print("floor: raw 64 B ping-pong over UDS", floor);

        await using (var native = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = BackendKind.Native;
            o.FallbackToManaged = false;
            o.Batching.Enabled = false;
        }).BuildServiceProvider())
        {
            Print("Native (in process)", await FacadeAsync(native, vectors, query, calls, warmup, serverPid: null));
        }

        var baseline = Environment.GetEnvironmentVariable("TANDEM_BASELINE_WORKER");
        var paths = new List<(string Name, RemoteTransport Transport, RemoteFastPath FastPath, string? Worker)>
        {
            ("Remote, UDS fast path", RemoteTransport.UnixSocket, RemoteFastPath.Auto, null),
            ("Remote, UDS gRPC", RemoteTransport.UnixSocket, RemoteFastPath.Off, null),
        };
        if (baseline is { Length: > 0 })
        {
            // Auto: an older worker offers no fast path (and knows no --fast-path flag), so the client keeps gRPC.
            paths.Add(("Remote, UDS gRPC, baseline worker", RemoteTransport.UnixSocket, RemoteFastPath.Auto, baseline));
        }

        // Tandem's client with a worker that logs every call line (as supervised workers did before): what the per-call log costs.
        if (Environment.GetEnvironmentVariable("TANDEM_INFO_WORKER") is { Length: > 0 } logging)
        {
            paths.Add(("Remote, UDS fast path, worker at info", RemoteTransport.UnixSocket, RemoteFastPath.Auto, logging));
        }

        paths.Add(("Remote, TCP loopback (gRPC)", RemoteTransport.Tcp, RemoteFastPath.Auto, null));
        // The fast path again without Tandem:CallTimeout: what the per-call deadline costs.
        paths.Add((NoDeadline, RemoteTransport.UnixSocket, RemoteFastPath.Auto, null));
        foreach (var (name, transport, fastPath, workerPath) in paths)
        {
            // A latency test: with batching on, a lone call waits up to
            // MaxQueueDelay for batch-mates that never come.
            await using var remote = RemoteBench.Services(
                transport,
                workers: 1,
                configure: o =>
                {
                    o.FastPath = fastPath;
                    if (workerPath is not null)
                    {
                        o.WorkerPath = workerPath;
                    }
                },
                tandem: o =>
                {
                    o.Batching.Enabled = false;
                    if (name == NoDeadline)
                    {
                        o.CallTimeout = null;
                    }
                });
            var pid = await RemoteBench.StartAsync(remote);
            var worker = remote.GetRequiredService<RemoteClient>().Pool.Workers[0];
            var sample = await FacadeAsync(remote, vectors, query, calls, warmup, pid);
            Print(name, sample);
            Console.WriteLine($"  {name} p50 / floor p50 = {sample.P50 / floor.P50:F2}x");
            var invoke = await BareInvokeAsync(worker.Client, vectors, query);
            if (worker.FastPath is { } fast)
            {
                // The same connection without Tandem: one health check, then the hand-built top-k.
                var check = new HealthCheckRequest();
                Print("  bare fast-path Check", await MeasureAsync(calls, warmup, pid, async () => await fast.CallAsync(FastPathFrames.MethodCheck, check, HealthCheckResponse.Parser, null, default)));
                Print("  bare fast-path Invoke top-k", await MeasureAsync(calls, warmup, pid, async () => await fast.CallAsync(FastPathFrames.MethodInvoke, invoke, InvokeReply.Parser, null, default)));
                // Tandem's Remote backend as the dispatcher calls it (request from the pinned call, pick, copies back), without the dispatcher.
                Print("  RemoteKernelBackend alone, no dispatcher", await BackendDirectAsync(remote, vectors, query, calls, warmup, pid));
                continue;
            }

            // The same channel and worker without Tandem: one grpc-dotnet unary
            // call (Health.Check) — what the gRPC stack alone costs.
            Print("  bare grpc-dotnet Health.Check", await MeasureAsync(calls, warmup, pid, async () => await worker.Health.CheckAsync(new HealthCheckRequest())));
            // The same top-k as one hand-built Invoke: the worker's whole
            // path, without Tandem's client side (dispatch, pool, copies);
            // with the work estimate (inline on the worker's I/O thread) and without (the compute pool).
            Print("  bare grpc-dotnet Invoke top-k", await MeasureAsync(calls, warmup, pid, async () => await worker.Client.InvokeAsync(invoke)));
            Print("  RemoteKernelBackend alone, no dispatcher", await BackendDirectAsync(remote, vectors, query, calls, warmup, pid));
            var onPool = invoke.Clone();
            onPool.Work = 0;
            Print("  bare grpc-dotnet Invoke, no work estimate", await MeasureAsync(calls, warmup, pid, async () => await worker.Client.InvokeAsync(onPool)));

        }

        if (OperatingSystem.IsLinux() && Environment.UserName == "root")
        {
            await CrossHostAsync(vectors, query, calls, warmup, floor);
        }
        else
        {
            Console.WriteLine("(Remote over a veth link to another network namespace needs root: skipped)");
        }

        Console.WriteLine($"load average at end: {MachineFacts.LoadAverage()}");
        Console.WriteLine("targets: fast path p50 ≤ 2x the floor; gRPC (Remote, UDS gRPC) p50 ≤ 4x the floor");
    }

    /// <summary>
    /// The same tiny call to a worker on another "host": a network namespace
    /// reached over a veth pair, TCP with the shared token, as a pooled
    /// endpoint — the cross-host round trip without a physical network —
    /// in plaintext and with TLS (ECDSA P-256, TLS 1.3), and TLS on loopback
    /// for the cost of TLS alone.
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static async Task CrossHostAsync(float[] vectors, float[] query, int calls, int warmup, Sample floor)
    {
        const string Token = "roundtrip-benchmark-token-0123456789";
        await using var hosts = new Tandem.Tests.Shared.NetworkHosts();
        using var certs = new Tandem.Tests.Shared.TestCertificates();
        await hosts.AddAsync(1);
        var ca = certs.Ca("ca");
        var leaf = certs.Leaf("ca", "worker", [hosts.Address(1), "127.0.0.1"]);
        var tls = new[] { "--tls-cert", leaf.Cert, "--tls-key", leaf.Key };
        var tokenFile = Path.Combine(certs.Directory, "token");
        File.WriteAllText(tokenFile, Token);
        File.SetUnixFileMode(tokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var binary = RemoteBench.RepoFile("native/target/release/tandem-worker");
        var common = new[] { "--token-file", tokenFile, "--log-level", "warn" };
        var veth = $"{hosts.Address(1)}:50051";
        var vethTls = $"{hosts.Address(1)}:50052";
        var plain = hosts.Start(1, binary, ["--listen", veth, .. common]);
        var secure = hosts.Start(1, binary, ["--listen", vethTls, .. common, .. tls]);
        using var local = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(binary, ["--listen", "127.0.0.1:0", .. common, .. tls])
        {
            RedirectStandardOutput = true,
        })!;
        try
        {
            _ = await plain.StandardOutput.ReadLineAsync();
            _ = await secure.StandardOutput.ReadLineAsync();
            var loopback = System.Text.Json.JsonDocument.Parse((await local.StandardOutput.ReadLineAsync())!).RootElement.GetProperty("address").GetString();
            foreach (var (name, endpoint, pid) in new[]
            {
                ("Remote, TCP over veth (another netns)", $"http://{veth}", plain.Id),
                ("Remote, TLS over veth (another netns)", $"https://{vethTls}", secure.Id),
                ("Remote, TLS on loopback", $"https://{loopback}", local.Id),
            })
            {
                await using var remote = RemoteBench.Services(RemoteTransport.Tcp, workers: 1, configure: o =>
                {
                    o.Endpoints.Add(endpoint);
                    o.WorkerToken = Token;
                    o.Tls.CaCertificateFile = ca;
                }, tandem: o => o.Batching.Enabled = false);
                await remote.GetRequiredService<IWorkerPoolAdmin>().StartAsync();
                var worker = remote.GetRequiredService<RemoteClient>().Pool.Workers[0];
                var sample = await FacadeAsync(remote, vectors, query, calls, warmup, pid);
                Print(name, sample);
                Console.WriteLine($"  {name} p50 / floor p50 = {sample.P50 / floor.P50:F2}x");
                Print("  bare grpc-dotnet Health.Check", await MeasureAsync(calls, warmup, pid, async () => await worker.Health.CheckAsync(new HealthCheckRequest())));
                var invoke = await BareInvokeAsync(worker.Client, vectors, query);
                Print("  bare grpc-dotnet Invoke top-k", await MeasureAsync(calls, warmup, pid, async () => await worker.Client.InvokeAsync(invoke)));
            }
        }
        finally
        {
            local.Kill();
            await local.WaitForExitAsync();
        }
    }

    private static void Print(string name, Sample s) =>
        Console.WriteLine($"{name,-44} {s.P50,9:F1} {s.P99,9:F1} {s.ClientCpu,19:F1} {(s.ServerCpu is { } cpu ? cpu.ToString("F1") : "-"),19} {s.PoolItems,16:F2}");

    private static async Task<Sample> FacadeAsync(ServiceProvider services, float[] vectors, float[] query, int calls, int warmup, int? serverPid)
    {
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("tiny", vectors, Dim);
        return await MeasureAsync(calls, warmup, serverPid, async () => await search.TopKAsync("tiny", query, K));
    }

    /// <summary>The Remote backend called as the dispatcher calls it, without the dispatcher.</summary>
    private static async Task<Sample> BackendDirectAsync(ServiceProvider services, float[] vectors, float[] query, int calls, int warmup, int pid)
    {
        var backend = services.GetRequiredService<RemoteClient>().Backend;
        using var tensors = new KernelCall(KernelContracts.TopK).Input<float>(vectors, Rows, Dim).Absent();
        using var state = await backend.CreateStateAsync(KernelContracts.CollectionKind, tensors, default);
        var ids = new long[K];
        var scores = new float[K];
        return await MeasureAsync(calls, warmup, pid, async () =>
        {
            using var call = new KernelCall(KernelContracts.TopK) { State = state, Work = Rows * Dim };
            call.Input<float>(query, 1, Dim).Output(ids.AsMemory(), 1, K).Output(scores.AsMemory(), 1, K).Param(K).Param(0L);
            await backend.InvokeAsync(call, default);
        });
    }

    private static async Task<InvokeRequest> BareInvokeAsync(Accelerator.AcceleratorClient client, float[] vectors, float[] query)
    {
        var state = new CreateStateRequest { StateId = "bare-roundtrip", Kind = "vector_collection" };
        state.Tensors.Add(new Tensor { Dtype = DType.F32, Shape = { Rows, Dim }, InlineData = ByteString.CopyFrom(MemoryMarshal.AsBytes(vectors.AsSpan())) });
        await client.CreateStateAsync(state);
        var request = new InvokeRequest { Kernel = "similarity.topk", StateId = state.StateId };
        request.Inputs.Add(new Tensor { Dtype = DType.F32, Shape = { 1, Dim }, InlineData = ByteString.CopyFrom(MemoryMarshal.AsBytes(query.AsSpan())) });
        request.Params.Add(new ParamValue { IntValue = K });
        request.Params.Add(new ParamValue { IntValue = 0 });
        request.Outputs.Add(new OutputSpec { Dtype = DType.I64, Shape = { 1, K } });
        request.Outputs.Add(new OutputSpec { Dtype = DType.F32, Shape = { 1, K } });
        // What Tandem's client sends: the call's multiply-adds.
        request.Work = (ulong)(Rows * Dim);
        return request;
    }

    /// <summary>Ping-pongs 64 bytes with the Rust echo example over a Unix socket.</summary>
    private static async Task<Sample> FloorAsync(int calls, int warmup)
    {
        var dir = Directory.CreateTempSubdirectory("tandem-floor-");
        var socketPath = Path.Combine(dir.FullName, "echo.sock");
        using var echo = Process.Start(new ProcessStartInfo(RemoteBench.RepoFile("native/target/release/examples/uds_echo"), [socketPath, "64"])
        {
            RedirectStandardOutput = true,
        }) ?? throw new InvalidOperationException("uds_echo did not start; build it with 'cd native && cargo build --release --examples'");
        try
        {
            _ = await echo.StandardOutput.ReadLineAsync();
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
            var send = new byte[64];
            var receive = new byte[64];
            return await MeasureAsync(calls, warmup, echo.Id, async () =>
            {
                await socket.SendAsync(send, SocketFlags.None);
                var read = 0;
                while (read < receive.Length)
                {
                    read += await socket.ReceiveAsync(receive.AsMemory(read), SocketFlags.None);
                }
            });
        }
        finally
        {
            echo.Kill();
            await echo.WaitForExitAsync();
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Shortest warm-up: tiered compilation promotes hot methods only after a delay, so a count alone would measure unoptimised code.</summary>
    private static readonly TimeSpan MinWarmup = TimeSpan.FromSeconds(5);

    private const string NoDeadline = "Remote, UDS fast path, no CallTimeout";

    private static async Task<Sample> MeasureAsync(int calls, int warmup, int? serverPid, Func<Task> call)
    {
        var warming = Stopwatch.StartNew();
        for (var i = 0; i < warmup || warming.Elapsed < MinWarmup; i++)
        {
            await call();
        }

        var latencies = new double[calls];
        var self = Process.GetCurrentProcess();
        self.Refresh();
        var clientCpu = self.TotalProcessorTime;
        var serverCpu = serverPid is { } pid ? ProcessCpu(pid) : TimeSpan.Zero;
        // Thread-pool work items per call: each is a hand-off of the call's
        // continuation to another thread (a wake-up when the pool is idle).
        var items = ThreadPool.CompletedWorkItemCount;
        for (var i = 0; i < calls; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await call();
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        var poolItems = (double)(ThreadPool.CompletedWorkItemCount - items) / calls;
        self.Refresh();
        var clientPerCall = (self.TotalProcessorTime - clientCpu).TotalMicroseconds / calls;
        double? serverPerCall = serverPid is { } p ? (ProcessCpu(p) - serverCpu).TotalMicroseconds / calls : null;
        Array.Sort(latencies);
        return new Sample(Percentile(latencies, 0.50), Percentile(latencies, 0.99), clientPerCall, serverPerCall, poolItems);
    }

    /// <summary>User + system CPU of another process, from /proc (clock ticks of 10 ms).</summary>
    private static TimeSpan ProcessCpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11]) + long.Parse(fields[12]);
        return TimeSpan.FromMilliseconds(ticks * 10.0);
    }

    private static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

    private readonly record struct Sample(double P50, double P99, double ClientCpu, double? ServerCpu, double PoolItems);
}
