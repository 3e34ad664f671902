using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tandem.Tests;

/// <summary>
/// Turns on the native fault-injection kernels before libtandem.so reads its
/// environment. .NET keeps its own copy of the environment on Unix, so the
/// variable is set with libc's setenv, where Rust can see it.
/// </summary>
internal static partial class TestEnvironment
{
    [ModuleInitializer]
    internal static void EnableTestKernels() => _ = setenv("TANDEM_TEST_KERNELS", "1", 1);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
