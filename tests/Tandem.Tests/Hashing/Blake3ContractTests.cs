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
    public void Hash_PublishedVector_MatchesDefaultAndExtendedOutput(int length, string expectedHex)
    {
        var input = Enumerable.Range(0, length).Select(i => (byte)(i % 251)).ToArray();

        Assert.Equal(expectedHex[..64], Convert.ToHexStringLower(Sut.Hash(input)));
        Assert.Equal(expectedHex, Convert.ToHexStringLower(Sut.Hash(input, expectedHex.Length / 2)));
        using var stream = Sut.OpenStream();
        stream.Append(input.AsSpan(0, length / 2));
        stream.Append([]);
        stream.Append(input.AsSpan(length / 2));
        Assert.Equal(expectedHex, Convert.ToHexStringLower(stream.Finalize(expectedHex.Length / 2)));
        Assert.Equal(Backend, stream.Backend);
    }

    [Fact]
    public void Append_AnyChunking_SameDigest()
    {
        var random = new Random(17);
        var data = new byte[300_000];
        random.NextBytes(data);
        var expected = Sut.Hash(data, 48);
        for (var trial = 0; trial < 40; trial++)
        {
            using var stream = Sut.OpenStream();
            var offset = 0;
            while (offset < data.Length)
            {
                // Mostly small, sometimes empty, sometimes large chunks.
                var size = random.Next(4) switch { 0 => 0, 1 => random.Next(1, 70), 2 => random.Next(1, 5000), _ => random.Next(1, 200_000) };
                size = Math.Min(size, data.Length - offset);
                stream.Append(data.AsSpan(offset, size));
                offset += size;
            }

            Assert.Equal(expected, stream.Finalize(48));
        }
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
    public async Task OpenStream_ManyConcurrentStreams_Independent()
    {
        var tasks = Enumerable.Range(0, 64).Select(i => Task.Run(() =>
        {
            using var stream = Sut.OpenStream();
            var data = Enumerable.Range(0, 10_000 + i).Select(b => (byte)(b * i)).ToArray();
            for (var offset = 0; offset < data.Length; offset += 997)
            {
                stream.Append(data.AsSpan(offset, Math.Min(997, data.Length - offset)));
            }

            Assert.Equal(Sut.Hash(data), stream.Finalize());
        }));
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
}
