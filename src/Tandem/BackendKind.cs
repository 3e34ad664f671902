namespace Tandem;

/// <summary>Where a kernel runs.</summary>
public enum BackendKind
{
    /// <summary>Pure C#: the fallback and the reference implementation.</summary>
    Managed = 0,

    /// <summary>The Rust library (libtandem.so) in process, through P/Invoke.</summary>
    Native = 1,

    /// <summary>
    /// Rust worker processes over gRPC (the Tandem.Remote package's
    /// <c>AddTandemRemote</c>); falls back to Native, then Managed.
    /// </summary>
    Remote = 2,
}
