using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

/// <summary>Turns owned tandem_error_t values into exceptions, freeing them.</summary>
internal static class NativeErrors
{
    /// <summary>Takes ownership of <paramref name="error"/>; null for success.</summary>
    public static TandemException? Take(nint error, string? kernel)
    {
        if (error == 0)
        {
            return null;
        }

        try
        {
            var code = (TandemStatusCode)NativeMethods.tandem_error_code(error);
            var message = Marshal.PtrToStringUTF8(NativeMethods.tandem_error_message(error)) ?? "unknown native error";
            return new TandemException(code, message, kernel, BackendKind.Native);
        }
        finally
        {
            NativeMethods.tandem_error_free(error);
        }
    }

    public static void ThrowIfError(nint error, string? kernel)
    {
        if (Take(error, kernel) is { } exception)
        {
            throw exception;
        }
    }
}
