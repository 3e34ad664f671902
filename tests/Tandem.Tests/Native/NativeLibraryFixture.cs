using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;

namespace Tandem.Tests.Native;

/// <summary>Loads libtandem.so once for tests that call it directly.</summary>
internal static class NativeLibraryFixture
{
    private static readonly Lazy<NativeRuntime> Loaded = new(() => NativeRuntime.Load(null, KernelContracts.All, NullLogger.Instance));

    /// <summary>The library next to the tests, checked.</summary>
    public static NativeRuntime Runtime => EnsureLoaded();

    /// <summary>Its exports.</summary>
    public static NativeLibraryBinding Lib => EnsureLoaded().Binding;

    public static NativeRuntime EnsureLoaded()
    {
        var runtime = Loaded.Value;
        Assert.Null(runtime.LoadError);
        return runtime;
    }
}
