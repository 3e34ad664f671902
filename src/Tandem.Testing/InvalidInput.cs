using Tandem.Kernels;

namespace Tandem.Testing;

/// <summary>
/// One input the kernel must refuse: a description for the failure message,
/// the attempt (a call, a state's creation or a stream's finalize), and the
/// status code the refusal must carry.
/// </summary>
public sealed class InvalidInput
{
    /// <param name="description">What is wrong, as a failure message names it ("'x' holds NaN").</param>
    /// <param name="attempt">Makes the attempt on the host's invoker; gets a valid state of the kernel's kind (null when it reads none).</param>
    /// <param name="expectedCode">The code of the <see cref="TandemException"/> the attempt must throw.</param>
    public InvalidInput(string description, Func<IKernelInvoker, KernelState?, Task> attempt, TandemStatusCode expectedCode = TandemStatusCode.InvalidArgument)
    {
        ArgumentException.ThrowIfNullOrEmpty(description);
        ArgumentNullException.ThrowIfNull(attempt);
        Description = description;
        Attempt = attempt;
        ExpectedCode = expectedCode;
    }

    /// <summary>What is wrong.</summary>
    public string Description { get; }

    /// <summary>The attempt, given the invoker and a valid state (or null).</summary>
    public Func<IKernelInvoker, KernelState?, Task> Attempt { get; }

    /// <summary>The code the refusal must carry.</summary>
    public TandemStatusCode ExpectedCode { get; }

    /// <summary>A call of <paramref name="request"/> (built for the valid state it is given) that must be refused with INVALID_ARGUMENT.</summary>
    public static InvalidInput Call(string description, Func<KernelState?, KernelRequest> request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return new InvalidInput(description, (invoker, state) => invoker.InvokeAsync(request(state)).AsTask());
    }

    /// <inheritdoc/>
    public override string ToString() => Description;
}
