using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;
using Tandem.Tests.Remote;

namespace Tandem.Tests.Hashing;

/// <summary>The <c>hash.blake3</c> contract, run against every backend.</summary>
public abstract class Blake3ContractTests : BackendContractTests<IBlake3Hashing>
{

    public static TheoryData<int, string> Vectors()
    {
        var data = new TheoryData<int, string>();
        foreach (var line in File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "data", "blake3_vectors.txt")))
        {
            if (line.Length > 0 && line[0] != '#')
            {
                var parts = line.Split(' ');
                data.Add(int.Parse(parts[0]), parts[1]);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public async Task Hash_PublishedVector_MatchesDefaultAndExtendedOutput(int length, string expectedHex)
    {
        var input = Enumerable.Range(0, length).Select(i => (byte)(i % 251)).ToArray();

        Assert.Equal(expectedHex[..64], Convert.ToHexStringLower(Sut.Hash(input)));
        Assert.Equal(expectedHex, Convert.ToHexStringLower(Sut.Hash(input, expectedHex.Length / 2)));
        Assert.Equal(expectedHex, Convert.ToHexStringLower(await Sut.HashAsync(input, expectedHex.Length / 2)));
        await using var stream = await Sut.OpenStreamAsync();
        await stream.AppendAsync(input.AsMemory(0, length / 2));
        await stream.AppendAsync(ReadOnlyMemory<byte>.Empty);
        await stream.AppendAsync(input.AsMemory(length / 2));
        Assert.Equal(expectedHex, Convert.ToHexStringLower(await stream.FinalizeAsync(expectedHex.Length / 2)));
        Assert.Equal(Backend, stream.Backend);
    }

    [Fact]
    public async Task AppendAsync_AnyChunking_SameDigest()
    {
        var random = new Random(17);
        var data = new byte[300_000];
        random.NextBytes(data);
        var expected = Sut.Hash(data, 48);
        for (var trial = 0; trial < 40; trial++)
        {
            await using var stream = await Sut.OpenStreamAsync();
            var offset = 0;
            while (offset < data.Length)
            {
                // Mostly small, sometimes empty, sometimes large chunks.
                var size = random.Next(4) switch { 0 => 0, 1 => random.Next(1, 70), 2 => random.Next(1, 5000), _ => random.Next(1, 200_000) };
                size = Math.Min(size, data.Length - offset);
                await stream.AppendAsync(data.AsMemory(offset, size));
                offset += size;
            }

            Assert.Equal(expected, await stream.FinalizeAsync(48));
        }
    }

    [Fact]
    public void Append_SynchronousStream_RunsInProcessWithAnyChunking()
    {
        var random = new Random(18);
        var data = new byte[300_000];
        random.NextBytes(data);
        using var stream = Sut.OpenStream();
        for (var offset = 0; offset < data.Length;)
        {
            var size = Math.Min(random.Next(0, 70_000), data.Length - offset);
            stream.Append(data.AsSpan(offset, size));
            offset += size;
        }

        Assert.Equal(Sut.Hash(data, 48), stream.Finalize(48));
        // Nothing synchronous waits on a worker: a kernel routed to Remote streams in process.
        Assert.Equal(Backend == BackendKind.Remote ? BackendKind.Native : Backend, stream.Backend);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1025)]
    [InlineData(3 * 1024 * 1024 + 7)]
    [InlineData(64 * 1024 * 1024)]
    public async Task HashAsync_RandomFile_EqualsB3sum(int size)
    {
        using var file = new TempFile(size, seed: size);

        await using var stream = File.OpenRead(file.Path);
        var digest = await Sut.HashAsync(stream);

        Assert.Equal(B3sum(file.Path), Convert.ToHexStringLower(digest));
    }

    [Fact]
    public async Task HashAsync_OneGibibyteFile_EqualsB3sumWithExtendedOutput()
    {
        using var file = new TempFile(1 << 30, seed: 1);

        await using var stream = File.OpenRead(file.Path);
        var digest = await Sut.HashAsync(stream, 64);

        Assert.Equal(B3sum(file.Path, 64), Convert.ToHexStringLower(digest));
    }

    [Fact]
    public void Stream_Misuse_SpecificErrorsAndNoCorruption()
    {
        var stream = Sut.OpenStream();
        stream.Append("abc"u8);
        Assert.Equal(TandemStatusCode.InvalidArgument, Assert.Throws<TandemException>(() => stream.Finalize(0)).Code);
        var digest = stream.Finalize();
        Assert.Equal(Sut.Hash("abc"u8), digest);

        Assert.Equal(TandemStatusCode.FailedPrecondition, Assert.Throws<TandemException>(() => stream.Append("more"u8)).Code);
        Assert.Equal(TandemStatusCode.FailedPrecondition, Assert.Throws<TandemException>(() => stream.Finalize()).Code);
        stream.Dispose();
        stream.Dispose();
        Assert.Equal(TandemStatusCode.NotFound, Assert.Throws<TandemException>(() => stream.Append("x"u8)).Code);
    }

    [Fact]
    public async Task StreamAsync_Misuse_SpecificErrorsAndNoCorruption()
    {
        var stream = await Sut.OpenStreamAsync();
        await stream.AppendAsync("abc"u8.ToArray());
        Assert.Equal(TandemStatusCode.InvalidArgument, (await Assert.ThrowsAsync<TandemException>(() => stream.FinalizeAsync(0).AsTask())).Code);
        var digest = await stream.FinalizeAsync();
        Assert.Equal(Sut.Hash("abc"u8), digest);

        Assert.Equal(TandemStatusCode.FailedPrecondition, (await Assert.ThrowsAsync<TandemException>(() => stream.AppendAsync("more"u8.ToArray()).AsTask())).Code);
        Assert.Equal(TandemStatusCode.FailedPrecondition, (await Assert.ThrowsAsync<TandemException>(() => stream.FinalizeAsync().AsTask())).Code);
        await stream.DisposeAsync();
        await stream.DisposeAsync();
        Assert.Equal(TandemStatusCode.NotFound, (await Assert.ThrowsAsync<TandemException>(() => stream.AppendAsync("x"u8.ToArray()).AsTask())).Code);
    }

    [Fact]
    public async Task StreamAsync_CancelledToken_CompletesWithCancelled()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        var opening = await Assert.ThrowsAsync<TandemException>(() => Sut.OpenStreamAsync(cts.Token).AsTask());
        await using var stream = await Sut.OpenStreamAsync();
        // Larger than a remote stream holds back, so it would go to a worker.
        var appending = await Assert.ThrowsAsync<TandemException>(() => stream.AppendAsync(new byte[(1 << 20) + 1], cts.Token).AsTask());
        var finalizing = await Assert.ThrowsAsync<TandemException>(() => stream.FinalizeAsync(cancellationToken: cts.Token).AsTask());

        Assert.Equal(TandemStatusCode.Cancelled, opening.Code);
        Assert.Equal(TandemStatusCode.Cancelled, appending.Code);
        Assert.Equal(TandemStatusCode.Cancelled, finalizing.Code);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData((1 << 20) + 1)]
    public void Hash_OutputLengthOutOfRange_InvalidArgument(int length)
    {
        var error = Assert.Throws<TandemException>(() => Sut.Hash("x"u8, length));
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("1 to 1048576", error.Message);
    }

    [Theory]
    [InlineData(0, 32)]
    [InlineData(64, 32)]
    [InlineData(1025, 7)]
    [InlineData(300_000, 131)]
    public void Hash_IntoDestination_SameDigestAsTheArrayOverloadAndNothingElseWritten(int length, int outputLength)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        var buffer = new byte[outputLength + 2];
        buffer.AsSpan().Fill(0xAA);

        Sut.Hash(data, buffer.AsSpan(1, outputLength));

        Assert.Equal(Sut.Hash(data, outputLength), buffer[1..^1]);
        Assert.Equal(0xAA, buffer[0]);
        Assert.Equal(0xAA, buffer[^1]);
    }

    [Fact]
    public void Hash_IntoDestination_BadLengthOrOverlapRefusedAndTheNextCallIsRight()
    {
        var data = new byte[256];
        new Random(5).NextBytes(data);
        var expected = Sut.Hash(data.AsSpan(0, 128));

        var empty = Assert.Throws<TandemException>(() => Sut.Hash(data, Span<byte>.Empty));
        var tooLong = Assert.Throws<TandemException>(() => Sut.Hash(data, new byte[(1 << 20) + 1]));
        var overlap = Assert.Throws<TandemException>(() => Sut.Hash(data.AsSpan(0, 128), data.AsSpan(100, 32)));

        Assert.Equal(TandemStatusCode.InvalidArgument, empty.Code);
        Assert.Contains("1 to 1048576", empty.Message);
        Assert.Equal(TandemStatusCode.InvalidArgument, tooLong.Code);
        Assert.Equal(TandemStatusCode.InvalidArgument, overlap.Code);
        Assert.Contains("overlaps", overlap.Message);
        // A refused call leaves the reused call object clean for the next one on this thread.
        var digest = new byte[32];
        Sut.Hash(data.AsSpan(0, 128), digest);
        Assert.Equal(expected, digest);
    }

    [Fact]
    public async Task Hash_ManyThreadsAtOnce_EachDigestItsOwn()
    {
        var inputs = Enumerable.Range(0, 64).Select(i => Enumerable.Range(0, 1 + (i * 37)).Select(b => (byte)(b ^ i)).ToArray()).ToArray();
        var expected = inputs.Select(input => Sut.Hash(input)).ToArray();

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            var mismatches = 0;
            var digest = new byte[32];
            for (var round = 0; round < 200; round++)
            {
                var i = (round * 7 + t) % inputs.Length;
                Sut.Hash(inputs[i], digest);
                mismatches += digest.AsSpan().SequenceEqual(expected[i]) ? 0 : 1;
                mismatches += Sut.Hash(inputs[i]).AsSpan().SequenceEqual(expected[i]) ? 0 : 1;
            }

            return mismatches;
        })));

        Assert.All(results, mismatches => Assert.Equal(0, mismatches));
    }

    [Fact]
    public void Hash_MaximumExtendedOutput_PrefixIsTheDefaultDigest()
    {
        var full = Sut.Hash("tandem"u8, 1 << 20);
        Assert.Equal(Sut.Hash("tandem"u8), full[..32]);
    }

    [Fact]
    public async Task HashAsync_Cancelled_CompletesWithCancelled()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        using var stream = new MemoryStream(new byte[4 << 20]);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.HashAsync(stream, cancellationToken: cts.Token).AsTask());
        Assert.Equal(TandemStatusCode.Cancelled, error.Code);
    }

    [Fact]
    public async Task HashAsync_MemoryCancelled_CompletesWithCancelled()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.HashAsync(new byte[1 << 20], cancellationToken: cts.Token).AsTask());

        Assert.Equal(TandemStatusCode.Cancelled, error.Code);
    }

    [Fact]
    public async Task OpenStreamAsync_ManyConcurrentStreams_Independent()
    {
        var tasks = Enumerable.Range(0, 64).Select(async i =>
        {
            await using var stream = await Sut.OpenStreamAsync();
            var data = Enumerable.Range(0, 10_000 + i).Select(b => (byte)(b * i)).ToArray();
            for (var offset = 0; offset < data.Length; offset += 997)
            {
                await stream.AppendAsync(data.AsMemory(offset, Math.Min(997, data.Length - offset)));
            }

            Assert.Equal(Sut.Hash(data), await stream.FinalizeAsync());
        });
        await Task.WhenAll(tasks);
    }

    private static string B3sum(string path, int length = 32)
    {
        using var process = Process.Start(new ProcessStartInfo("b3sum", ["--no-names", "--length", length.ToString(), path]) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        return output;
    }

    /// <summary>A file of seeded random bytes, deleted on disposal.</summary>
    private sealed class TempFile : IDisposable
    {
        public TempFile(long size, int seed)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"tandem-b3-{Guid.NewGuid():N}.bin");
            var random = new Random(seed);
            var buffer = new byte[1 << 20];
            using var file = File.Create(Path);
            for (var written = 0L; written < size; written += buffer.Length)
            {
                random.NextBytes(buffer);
                file.Write(buffer, 0, (int)Math.Min(buffer.Length, size - written));
            }
        }

        public string Path { get; }

        public void Dispose() => File.Delete(Path);
    }
}

public sealed class ManagedBlake3ContractTests : Blake3ContractTests
{
    protected override BackendKind Backend => BackendKind.Managed;
}

public sealed class NativeBlake3ContractTests : Blake3ContractTests
{
    protected override BackendKind Backend => BackendKind.Native;
}

[Collection(RemoteWorkersCollection.Name)]
public sealed class RemoteBlake3ContractTests : Blake3ContractTests
{
    protected override BackendKind Backend => BackendKind.Remote;

    protected override void AddBackend(IServiceCollection services) => RemoteWorkersFixture.Current!.AddRemote(services);

    [Fact]
    public async Task Append_SynchronousOnARemoteStream_FailedPreconditionAndTheStreamStillWorks()
    {
        await using var stream = await Sut.OpenStreamAsync();

        var append = Assert.Throws<TandemException>(() => stream.Append("abc"u8));
        var finalize = Assert.Throws<TandemException>(() => stream.Finalize());

        Assert.Equal(TandemStatusCode.FailedPrecondition, append.Code);
        Assert.Contains("AppendAsync", append.Message);
        Assert.Equal(TandemStatusCode.FailedPrecondition, finalize.Code);
        Assert.Contains("FinalizeAsync", finalize.Message);
        await stream.AppendAsync("abc"u8.ToArray());
        Assert.Equal(Sut.Hash("abc"u8), await stream.FinalizeAsync());
    }

    [Fact]
    public async Task AppendAsync_LongerThanWhatIsHeldBack_SameDigestAsInProcess()
    {
        var data = new byte[(3 << 20) + 7];
        new Random(19).NextBytes(data);
        await using var stream = await Sut.OpenStreamAsync();

        for (var offset = 0; offset < data.Length; offset += 700_001)
        {
            await stream.AppendAsync(data.AsMemory(offset, Math.Min(700_001, data.Length - offset)));
        }

        Assert.Equal(Sut.Hash(data), await stream.FinalizeAsync());
    }
}
