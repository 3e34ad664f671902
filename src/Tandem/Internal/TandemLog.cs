using Microsoft.Extensions.Logging;

namespace Tandem.Internal;

/// <summary>Tandem's log messages; event ids are stable.</summary>
internal static partial class TandemLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Loaded libtandem ABI {Major}.{Minor} with {Threads} compute threads ({Isa})")]
    public static partial void NativeLibraryLoaded(ILogger logger, uint major, uint minor, uint threads, string isa);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "The native backend is unavailable: {Reason}")]
    public static partial void NativeLibraryRefused(ILogger logger, string reason);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Kernel {Kernel} is refused on the native backend: {Difference}")]
    public static partial void KernelContractMismatch(ILogger logger, string kernel, string difference);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Kernel {Kernel} falls back from {From} to {To}: {Reason}")]
    public static partial void FallingBack(ILogger logger, string kernel, BackendKind from, BackendKind to, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "Call of {Kernel} fell back from {From} to {To} after {Code} (correlation id {CorrelationId})")]
    public static partial void FellBack(ILogger logger, string kernel, BackendKind from, BackendKind to, TandemStatusCode code, string? correlationId);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Hot-swapped the native library to generation {Generation} from {Path} (sha256 {Sha256}); {States} states rebuilt, generation {Previous} drains")]
    public static partial void NativeLibrarySwapped(ILogger logger, long generation, string path, string sha256, int states, long previous);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Hot swap of the native library from {Path} refused; the current library keeps serving: {Reason}")]
    public static partial void NativeLibrarySwapRefused(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Native library generation {Generation} drained: its states and streams are freed (its code stays mapped)")]
    public static partial void NativeGenerationDrained(ILogger logger, long generation);
}
