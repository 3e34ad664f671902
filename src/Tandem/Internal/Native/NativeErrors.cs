using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

/// <summary>Turns owned tandem_error_t values into exceptions, freeing them through the library that made them.</summary>
internal static unsafe class NativeErrors
{
    /// <summary>Takes ownership of <paramref name="error"/>; null for success.</summary>
    public static TandemException? Take(NativeLibraryBinding library, nint error, string? kernel)
    {
        if (error == 0)
        {
            return null;
        }

        try
        {
            var code = (TandemStatusCode)library.tandem_error_code(error);
            var message = Marshal.PtrToStringUTF8(library.tandem_error_message(error)) ?? "unknown native error";
            return new TandemException(code, message, kernel, BackendKind.Native);
        }
        finally
        {
            library.tandem_error_free(error);
        }
    }

    /// <summary>Throws the error's <see cref="TandemException"/> (freeing it); does nothing, inline, for success.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ThrowIfError(NativeLibraryBinding library, nint error, string? kernel)
    {
        if (error != 0)
        {
            Throw(library, error, kernel);
        }
    }

    // Out of line: Take's try/finally would otherwise keep every successful call from inlining the check.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(NativeLibraryBinding library, nint error, string? kernel) => throw Take(library, error, kernel)!;
}
