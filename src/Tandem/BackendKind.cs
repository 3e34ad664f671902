namespace Tandem;

/// <summary>Where a kernel runs.</summary>
public enum BackendKind
{
    /// <summary>Pure C#: the fallback and the reference implementation.</summary>
    Managed = 0,

    /// <summary>The Rust library (libtandem.so) in process, through P/Invoke.</summary>
    Native = 1,
}
