using System.Diagnostics;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// Shared memory is used only with a worker that can read this client's
/// regions, detected when it joins (not configured): a worker that cannot
/// (here one whose --shm-dir is another directory, as a worker on another
/// host or in its own container would be) gets every tensor and state
/// inline, with the same answers.
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SharedMemoryDetectionTests
{
    private const int Dim = 16;

    [Fact]
    public async Task AWorkerThatCannotReadTheClientsRegions_GetsTensorsAndStatesInline_WithTheSameAnswers()
    {
        var dir = Directory.CreateTempSubdirectory("tandem-test-shm-");
        var elsewhere = Directory.CreateDirectory(Path.Combine(dir.FullName, "other-shm"));
        using var sharing = Start(Path.Combine(dir.FullName, "a.sock"));
        using var apart = Start(Path.Combine(dir.FullName, "b.sock"), "--shm-dir", elsewhere.FullName);
        try
        {
            // 3,000 x 16 floats (192 KB) and 1,100 queries (70 KB): both above the 64 KiB threshold.
            var vectors = TestData.Integers(3000, Dim, seed: 5);
            var queries = TestData.Integers(1100, Dim, seed: 6);
            var results = new List<Tandem.Similarity.TopKResult>();
            foreach (var (socket, shares) in new[] { (Path.Combine(dir.FullName, "a.sock"), true), (Path.Combine(dir.FullName, "b.sock"), false) })
            {
                await using var host = new RemoteTestHost(o => o.Endpoints.Add("unix:" + socket), tandem: t => t.Batching.Enabled = false);
                await host.StartAsync();
                var worker = Assert.Single(host.Client.Pool.Workers);
                Assert.Equal(shares, worker.SharesMemory);
                await host.Search.CreateCollectionAsync("c", vectors, Dim);
                var rentals = host.Client.Pool.SharedMemory.Rentals;
                results.Add(await host.Search.TopKAsync("c", queries, 5));
                if (shares)
                {
                    Assert.True(host.Client.Pool.SharedMemory.Rentals > rentals, "the sharing worker's call used a region");
                }
                else
                {
                    Assert.Equal(rentals, host.Client.Pool.SharedMemory.Rentals);
                    Assert.Empty(Directory.GetFiles(elsewhere.FullName));
                }
            }

            Assert.Equal(results[0].Ids, results[1].Ids);
            Assert.Equal(results[0].Scores, results[1].Scores);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static Worker Start(string socket, params string[] extra)
    {
        var info = new ProcessStartInfo(WorkerBinary.Path) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["--socket", socket, "--log-level", "error", "--grace", "1", .. extra])
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        var line = process.StandardOutput.ReadLine();
        Assert.Contains("listening", line ?? "(the worker exited)");
        return new Worker(process);
    }

    private sealed class Worker(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit();
            }

            process.Dispose();
        }
    }
}
