using Microsoft.Extensions.Options;

namespace Tandem.Internal;

/// <summary>Checks what data annotations cannot express; failures name the option.</summary>
internal sealed class TandemOptionsValidator : IValidateOptions<TandemOptions>
{
    public ValidateOptionsResult Validate(string? name, TandemOptions options)
    {
        var failures = new List<string>();
        if (options.CallTimeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            failures.Add($"Tandem:CallTimeout must be positive or null, got {timeout}.");
        }

        if (options.Batching.MaxQueueDelay < TimeSpan.Zero)
        {
            failures.Add($"Tandem:Batching:MaxQueueDelay must not be negative, got {options.Batching.MaxQueueDelay}.");
        }

        foreach (var preferred in options.Batching.PreferredBatchRows)
        {
            if (preferred < 1 || preferred > options.Batching.MaxBatchRows)
            {
                failures.Add($"Tandem:Batching:PreferredBatchRows entries must be in [1, MaxBatchRows = {options.Batching.MaxBatchRows}], got {preferred}.");
            }
        }

        var resilience = options.Resilience;
        if (resilience.RetryBaseDelay < TimeSpan.Zero)
        {
            failures.Add($"Tandem:Resilience:RetryBaseDelay must not be negative, got {resilience.RetryBaseDelay}.");
        }

        if (resilience.BreakerSamplingDuration < TimeSpan.FromMilliseconds(500) || resilience.BreakerBreakDuration < TimeSpan.FromMilliseconds(500))
        {
            failures.Add("Tandem:Resilience:BreakerSamplingDuration and BreakerBreakDuration must be at least 500 ms.");
        }

        if (resilience.Timeout is { } total && total <= TimeSpan.Zero)
        {
            failures.Add($"Tandem:Resilience:Timeout must be positive or null, got {total}.");
        }

        if (options.NativeLibraryPath is { } path && !File.Exists(path))
        {
            failures.Add($"Tandem:NativeLibraryPath '{path}' does not exist.");
        }

        foreach (var (kernel, kernelOptions) in options.Kernels)
        {
            if (kernelOptions.ManagedBelowBytes < 0)
            {
                failures.Add($"Tandem:Kernels:{kernel}:ManagedBelowBytes must not be negative, got {kernelOptions.ManagedBelowBytes}.");
            }
        }

        if (options.KernelLibraries.Count > Native.KernelLibraryLocator.MaxLibraries)
        {
            failures.Add($"Tandem:KernelLibraries lists {options.KernelLibraries.Count} libraries; at most {Native.KernelLibraryLocator.MaxLibraries} may be loaded in one process.");
        }

        foreach (var library in options.KernelLibraries)
        {
            if (string.IsNullOrWhiteSpace(library))
            {
                failures.Add("Tandem:KernelLibraries entries must be a path or a library name, got an empty one.");
            }
            else if (options.KernelLibraries.Count(l => l == library) > 1)
            {
                failures.Add($"Tandem:KernelLibraries lists '{library}' more than once.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
