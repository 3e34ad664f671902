using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;

namespace Tandem.Tests.Native;

/// <summary>Loads libtandem.so once for tests that call it directly.</summary>
internal static class NativeLibraryFixture
{
    private static readonly Lazy<NativeRuntime> Runtime = new(() => NativeRuntime.Load(null, KernelContracts.All, NullLogger.Instance));

    public static NativeRuntime EnsureLoaded()
    {
        var runtime = Runtime.Value;
        Assert.Null(runtime.LoadError);
        return runtime;
    }
}
