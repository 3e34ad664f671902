using Microsoft.Extensions.Options;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;

namespace Tandem.Internal;

/// <summary>
/// Fails startup when the kernel libraries of <see cref="TandemOptions.KernelLibraries"/>
/// cannot serve together (<see cref="NativeLibrarySet.Problems"/>): one is
/// missing or not a Tandem library, or two publish the same name.
/// </summary>
internal sealed class KernelLibrariesValidator(KernelCatalog catalog) : IValidateOptions<TandemOptions>
{
    public ValidateOptionsResult Validate(string? name, TandemOptions options) =>
        NativeLibrarySet.Problems(options, catalog.Descriptors) is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
}
