using Microsoft.Extensions.Options;
using Tandem.Internal.Kernels;

namespace Tandem.Internal;

/// <summary>Fails startup when a managed twin or declared contract is refused (<see cref="KernelCatalog.Problems"/>).</summary>
internal sealed class KernelCatalogValidator(KernelCatalog catalog) : IValidateOptions<TandemOptions>
{
    public ValidateOptionsResult Validate(string? name, TandemOptions options) =>
        catalog.Problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(catalog.Problems);
}
