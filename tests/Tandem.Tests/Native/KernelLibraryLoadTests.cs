using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;

namespace Tandem.Tests.Native;

/// <summary>
/// Attaching a kernel library: what the SDK and the host refuse, each with a
/// FAILED_PRECONDITION that names the library, never a crash. The fixture
/// library (native/fixtures) breaks itself as TANDEM_FIXTURE_MODE says, when
/// it registers: each test loads its own copy, so each registers afresh.
/// </summary>
[Collection(Tandem.Tests.Kernels.FixtureLibraryCollection.Name)]
public sealed partial class KernelLibraryLoadTests : IDisposable
{
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("tandem-load-");

    public void Dispose() => _directory.Delete(recursive: true);

    [Theory]
    [InlineData("panic", "'tandem-fixture-kernels' panicked while registering its kernels: the fixture library panics in its registration on purpose")]
    [InlineData("duplicate-tensor", "kernel library 'tandem-fixture-kernels' is invalid: kernel 'fixture.broken' declares tensor 'x' twice")]
    [InlineData("unknown-symbol", "kernel 'fixture.broken': output symbol 'm' is bound by no input or state tensor")]
    [InlineData("min-above-max", "kernel 'fixture.broken': parameter 'count' has min 10 > max 1")]
    [InlineData("streaming-without-stream", "kernel 'fixture.bytesum' is marked streaming but has no stream implementation")]
    public void Load_LibraryTheSdkRefuses_FailedPreconditionNamingLibraryAndKernel(string mode, string reason)
    {
        var runtime = LoadFixture(mode);

        Assert.NotNull(runtime.LoadError);
        Assert.Equal(TandemStatusCode.FailedPrecondition, runtime.LoadError.Code);
        Assert.Contains(reason, runtime.LoadError.Message);
        Assert.DoesNotContain(_directory.FullName, runtime.LoadError.Message);
    }

    [Fact]
    public void Load_WellFormedLibrary_PublishesItsOwnKernelsAndStateKinds()
    {
        var runtime = LoadFixture(mode: "");

        Assert.Null(runtime.LoadError);
        Assert.Equal("tandem-fixture-kernels", runtime.KernelSet!.LibraryName);
        Assert.Equal(["fixture.scale", "fixture.lookup", "fixture.bytesum"], runtime.KernelSet.Kernels.Select(k => k.Name));
        Assert.Equal(["fixture.table"], runtime.KernelSet.StateKinds.Select(k => k.Name));
        Assert.All(runtime.KernelSet.Kernels, k => Assert.Equal(k.Hash, KernelContracts.HashOf(k, runtime.KernelSet)));
    }

    [Fact]
    public void Load_LibraryWithoutTheReferenceKernels_RefusesEachByName()
    {
        var runtime = LoadFixture(mode: "");

        Assert.Null(runtime.Kernel(KernelContracts.SimilarityTopK, out var refusal));
        Assert.Equal(TandemStatusCode.FailedPrecondition, refusal!.Code);
        Assert.Contains("has no kernel 'similarity.topk'", refusal.Message);
    }

    [Fact]
    public void Load_FileThatIsNotATandemLibrary_FailedPrecondition()
    {
        // libc is a shared library without tandem_abi_version.
        var runtime = NativeRuntime.Load("libc.so.6", KernelContracts.All, NullLogger.Instance);

        Assert.Equal(TandemStatusCode.FailedPrecondition, runtime.LoadError!.Code);
        Assert.Contains("could not be loaded (EntryPointNotFoundException)", runtime.LoadError.Message);
        Assert.Contains("not a Tandem kernel library", runtime.LoadError.Message);
    }

    [Fact]
    public void Load_FileThatIsNotASharedLibrary_FailedPrecondition()
    {
        var path = Path.Combine(_directory.FullName, "not-a-library.so");
        File.WriteAllText(path, "this is text, not ELF");

        var runtime = NativeRuntime.Load(path, KernelContracts.All, NullLogger.Instance);

        Assert.Equal(TandemStatusCode.FailedPrecondition, runtime.LoadError!.Code);
        Assert.Contains("could not be loaded", runtime.LoadError.Message);
    }

    [Fact]
    public void Load_PathThatCannotBeReadAsAFile_FailedPrecondition()
    {
        // A directory cannot be read as a library by anyone, root included
        // (file modes do not stop root, which CI runs as).
        var path = Directory.CreateDirectory(Path.Combine(_directory.FullName, "unreadable.so")).FullName;

        var runtime = NativeRuntime.Load(path, KernelContracts.All, NullLogger.Instance);

        Assert.Equal(TandemStatusCode.FailedPrecondition, runtime.LoadError!.Code);
        Assert.Contains("could not be loaded", runtime.LoadError.Message);
    }

    [Fact]
    public void Load_MissingFile_FailedPrecondition()
    {
        var runtime = NativeRuntime.Load(Path.Combine(_directory.FullName, "missing.so"), KernelContracts.All, NullLogger.Instance);

        Assert.Equal(TandemStatusCode.FailedPrecondition, runtime.LoadError!.Code);
        Assert.Contains("could not be loaded", runtime.LoadError.Message);
    }

    private NativeRuntime LoadFixture(string mode)
    {
        var copy = Path.Combine(_directory.FullName, $"libtandem_fixture_kernels.{(mode.Length > 0 ? mode : "plain")}.so");
        File.Copy(FixturePath, copy);
        _ = setenv("TANDEM_FIXTURE_MODE", mode, 1);
        try
        {
            // Registration runs on the library's first call, inside Load.
            return NativeRuntime.Load(copy, KernelContracts.All, NullLogger.Instance);
        }
        finally
        {
            _ = unsetenv("TANDEM_FIXTURE_MODE");
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unsetenv(string name);
}
