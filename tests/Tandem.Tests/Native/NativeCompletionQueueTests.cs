using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;
using static Tandem.Tests.Native.NativeLibraryFixture;

namespace Tandem.Tests.Native;

/// <summary>
/// Completions of submitted calls through <see cref="NativeCompletionQueue"/>:
/// each exactly once with its own outcome, never a continuation on a Rust
/// compute thread, never one completion waiting behind another's
/// continuation, a bounded queue, a drainer that stops on dispose.
/// </summary>
public sealed class NativeCompletionQueueTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    public NativeCompletionQueueTests() => EnsureLoaded();

    /// <summary>What a test call is made to end with.</summary>
    public enum Outcome
    {
        Success,
        InvalidInput,
        Panic,
        Cancelled,
        DeadlinePassed,
    }

    public static TheoryData<bool> Paths => new() { true, false };

    [Fact]
    public async Task Submit_100kCallsFrom64ConcurrentLoops_EachCompletesExactlyOnceWithItsOutcome()
    {
        using var queue = CreateSut();
        using var calls = new TestCalls();
        var wrong = new ConcurrentQueue<string>();
        var completed = 0;
        var loops = Enumerable.Range(0, 64).Select(loop => Task.Run(async () =>
        {
            for (var i = loop; i < 100_000; i += 64)
            {
                // Panics are rarer: each one is logged by the library.
                var outcome = (i % 1000) == 999 ? Outcome.Panic : (Outcome)(i % 5 == 2 ? 0 : i % 5);
                var code = await calls.RunAsync(outcome, queue);
                Interlocked.Increment(ref completed);
                if (code != TestCalls.Expected(outcome))
                {
                    wrong.Enqueue($"call {i} ({outcome}) ended {code}");
                }
            }
        })).ToArray();

        await Task.WhenAll(loops).WaitAsync(Bound);

        Assert.Empty(wrong);
        Assert.Equal(100_000, completed);
        // Each delivery gives its reservation back once: a lost or doubled one would show here.
        Assert.Equal(0, queue.Outstanding);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task Submit_AwaitedAtConcurrency1And64_NoContinuationRunsOnARustComputeThread(bool throughQueue)
    {
        using var queue = throughQueue ? CreateSut() : null;
        using var calls = new TestCalls();
        var threads = new ConcurrentDictionary<string, int>();
        foreach (var concurrency in new[] { 1, 64 })
        {
            var loops = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
            {
                for (var i = 0; i < 2000 / concurrency; i++)
                {
                    await calls.RunAsync(Outcome.Success, queue);
                    threads.AddOrUpdate(CurrentThreadName(), 1, (_, n) => n + 1);
                }
            })).ToArray();
            await Task.WhenAll(loops).WaitAsync(Bound);
        }

        // Rust names its pool's threads tandem-compute-N; the kernel sees them as its comm.
        Assert.DoesNotContain(threads.Keys, name => name.StartsWith("tandem-compute", StringComparison.Ordinal));
        Assert.NotEmpty(threads);
    }

    [Fact]
    public async Task Post_ContinuationOnTheDrainerWaitsForAnotherCall_ThatCallStillCompletes()
    {
        using var queue = CreateSut();
        using var calls = new TestCalls();
        var reached = false;
        for (var attempt = 0; attempt < 1000 && !reached; attempt++)
        {
            await calls.RunAsync(Outcome.Success, queue);
            if (Environment.CurrentManagedThreadId == queue.DrainerThreadId)
            {
                reached = true;
                // Sync over async on the drainer: with completions waiting behind
                // this continuation it would never return.
                Assert.Equal(TandemStatusCode.Ok, BlockOn(calls.RunAsync(Outcome.Success, queue).AsTask()));
            }
        }

        Assert.True(reached, "no continuation ran inline on the drainer in 1000 calls at concurrency 1");
        Assert.Equal(0, queue.Outstanding);
    }

    [Fact]
    public async Task Post_ContinuationOnTheDrainerBlocksWhileOthersComplete_TheOthersStillComplete()
    {
        using var queue = CreateSut();
        using var calls = new TestCalls();
        var reached = false;
        for (var attempt = 0; attempt < 1000 && !reached; attempt++)
        {
            await calls.RunAsync(Outcome.Success, queue);
            if (Environment.CurrentManagedThreadId == queue.DrainerThreadId)
            {
                reached = true;
                // Calls from elsewhere, some already queued behind this continuation when it blocks.
                var others = Task.Run(() => Task.WhenAll(Enumerable.Range(0, 64).Select(i => calls.RunAsync(i % 2 == 0 ? Outcome.Success : Outcome.InvalidInput, queue).AsTask())));
                Assert.True(BlockOn(others), "completions waited behind a blocked continuation on the drainer");
            }
        }

        Assert.True(reached, "no continuation ran inline on the drainer in 1000 calls at concurrency 1");
        // Once the blocked continuation returned, the drainer delivers again (the bypass is lifted).
        var back = false;
        for (var attempt = 0; attempt < 1000 && !back; attempt++)
        {
            await calls.RunAsync(Outcome.Success, queue);
            back = Environment.CurrentManagedThreadId == queue.DrainerThreadId;
        }

        Assert.True(back, "after the blocked continuation returned, no completion was delivered by the drainer in 1000 calls");
        Assert.Equal(0, queue.Outstanding);
    }

    [Fact]
    public async Task Submit_CapacityCallsOutstanding_ResourceExhaustedNamingTheLimit()
    {
        using var queue = new NativeCompletionQueue(capacity: 2, NativeCompletionQueue.DefaultSpin);
        using var calls = new TestCalls();
        Assert.Null(queue.TryReserve("test"));
        Assert.Null(queue.TryReserve("test"));

        var error = await Assert.ThrowsAsync<TandemException>(() => calls.SubmitAsync(Outcome.Success, queue).AsTask());

        Assert.Equal(TandemStatusCode.ResourceExhausted, error.Code);
        Assert.Contains("2 calls", error.Message);
        Assert.Contains(NativeCompletionQueue.CapacityVariable, error.Message);
        queue.Unreserve();
        Assert.Equal(TandemStatusCode.Ok, await calls.RunAsync(Outcome.Success, queue));
        queue.Unreserve();
        Assert.Equal(0, queue.Outstanding);
    }

    [Fact]
    public async Task Dispose_AfterCalls_StopsTheDrainerAndLaterCallsStillComplete()
    {
        var queue = CreateSut();
        using var calls = new TestCalls();
        Assert.Equal(TandemStatusCode.Ok, await calls.RunAsync(Outcome.Success, queue));
        Assert.True(queue.IsDraining);

        queue.Dispose();

        Assert.False(queue.IsDraining);
        Assert.Equal(TandemStatusCode.Cancelled, await calls.RunAsync(Outcome.Cancelled, queue).AsTask().WaitAsync(Bound));
        Assert.Equal(TandemStatusCode.Ok, await calls.RunAsync(Outcome.Success, queue).AsTask().WaitAsync(Bound));
        Assert.Equal(0, queue.Outstanding);
    }

    [Fact]
    public async Task Dispose_NeverStarted_CallsCompleteWithoutADrainer()
    {
        var queue = CreateSut();
        queue.Dispose();
        using var calls = new TestCalls();

        Assert.Equal(TandemStatusCode.InvalidArgument, await calls.RunAsync(Outcome.InvalidInput, queue).AsTask().WaitAsync(Bound));

        Assert.False(queue.IsDraining);
        Assert.Equal(0, queue.Outstanding);
    }

    [Fact]
    public async Task Submit_TwoLoadedCopiesOfTheLibraryThroughOneQueue_EachCallCompletesOnItsLibrary()
    {
        var directory = Directory.CreateTempSubdirectory("tandem-completions-");
        try
        {
            var copy = Path.Combine(directory.FullName, "libtandem.copy.so");
            File.Copy(Path.Combine(AppContext.BaseDirectory, NativeRuntime.LibraryFileName), copy);
            var second = NativeRuntime.Load(copy, KernelContracts.All, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            Assert.Null(second.LoadError);
            using var queue = CreateSut();
            using var first = new TestCalls();
            using var other = new TestCalls(second);
            // Errors are freed by the library that made them: a mix-up would corrupt a heap.
            var loops = Enumerable.Range(0, 16).Select(loop => Task.Run(async () =>
            {
                for (var i = 0; i < 500; i++)
                {
                    var calls = (i + loop) % 2 == 0 ? first : other;
                    var outcome = i % 3 == 0 ? Outcome.InvalidInput : Outcome.Success;
                    Assert.Equal(TestCalls.Expected(outcome), await calls.RunAsync(outcome, queue));
                }
            })).ToArray();

            await Task.WhenAll(loops).WaitAsync(Bound);

            Assert.Equal(0, queue.Outstanding);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>Waits synchronously, as sync-over-async user code would (bounded, so a deadlock fails the test).</summary>
    private static TandemStatusCode BlockOn(Task<TandemStatusCode> call)
    {
        Assert.True(call.Wait(Bound), "a completion waited behind a blocked continuation on the drainer");
        return call.Result;
    }

    /// <summary>Waits synchronously for many calls; true when all of them ended as made to.</summary>
    private static bool BlockOn(Task<TandemStatusCode[]> calls) =>
        calls.Wait(Bound) && calls.Result.Select((code, i) => code == (i % 2 == 0 ? TandemStatusCode.Ok : TandemStatusCode.InvalidArgument)).All(ok => ok);

    private static NativeCompletionQueue CreateSut() => new(NativeCompletionQueue.DefaultCapacity, NativeCompletionQueue.DefaultSpin);

    /// <summary>The OS name of this thread (what the kernel, and so Rust's pool, names it).</summary>
    private static string CurrentThreadName() => File.ReadAllText("/proc/thread-self/comm").TrimEnd('\n');

    /// <summary>Submits <c>diagnostics.noop</c> (or <c>diagnostics.panic</c>) with pinned inputs, made to end a given way.</summary>
    private sealed class TestCalls : IDisposable
    {
        private readonly NativeRuntime _runtime;
        private readonly NativeKernel _noop;
        private readonly NativeKernel _panic;
        private readonly NativeTensor[] _inputs;
        private readonly NativeTensor[] _wrongInputs;
        private readonly NativeCancelHandle _cancelled;

        public unsafe TestCalls(NativeRuntime? runtime = null)
        {
            _runtime = runtime ?? Runtime;
            _noop = _runtime.Kernel(KernelContracts.DiagnosticsNoop, out var refusal) ?? throw refusal!;
            _panic = new NativeKernel(_runtime.Binding, KernelContracts.DiagnosticsPanic, _runtime.Find(KernelContracts.DiagnosticsPanic));
            var bytes = GC.AllocateArray<byte>(64, pinned: true);
            var data = (byte*)Unsafe.AsPointer(ref bytes[0]);
            _inputs = [NativeTensor.Create(data, 32, NativeDType.U8, 32), NativeTensor.Create(data + 32, 32, NativeDType.U8, 32)];
            // An i32 tensor where u8 is declared: INVALID_ARGUMENT from the library's checks, on the compute thread.
            _wrongInputs = [NativeTensor.Create((int*)data, 8, NativeDType.I32, 8), _inputs[1]];
            _cancelled = new NativeCancelHandle(_runtime.Binding);
            _cancelled.Cancel();
        }

        public static TandemStatusCode Expected(Outcome outcome) => outcome switch
        {
            Outcome.Success => TandemStatusCode.Ok,
            Outcome.InvalidInput => TandemStatusCode.InvalidArgument,
            Outcome.Panic => TandemStatusCode.Internal,
            Outcome.Cancelled => TandemStatusCode.Cancelled,
            _ => TandemStatusCode.DeadlineExceeded,
        };

        /// <summary>Runs one call to completion and returns its status.</summary>
        public async ValueTask<TandemStatusCode> RunAsync(Outcome outcome, NativeCompletionQueue? queue)
        {
            try
            {
                await SubmitAsync(outcome, queue).ConfigureAwait(false);
                return TandemStatusCode.Ok;
            }
            catch (TandemException e)
            {
                return e.Code;
            }
        }

        public ValueTask SubmitAsync(Outcome outcome, NativeCompletionQueue? queue)
        {
            var context = new NativeCallContext
            {
                Cancel = outcome == Outcome.Cancelled ? _cancelled.DangerousGetHandle() : 0,
                // 1 ns: passed before the library checks it, ahead of the kernel.
                TimeoutNs = outcome == Outcome.DeadlinePassed ? 1UL : 0,
            };
            return outcome switch
            {
                Outcome.Panic => _panic.Submit(0, _inputs.AsSpan(0, 1), [], [], ref context, queue),
                Outcome.InvalidInput => _noop.Submit(0, _wrongInputs, [], [], ref context, queue),
                _ => _noop.Submit(0, _inputs, [], [], ref context, queue),
            };
        }

        public void Dispose() => _cancelled.Dispose();
    }
}
