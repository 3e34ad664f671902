using Tandem.Perf.Telemetry;

namespace Tandem.Perf.Targets;

/// <summary>One backend of one kernel under load: sends request number <c>sequence</c> and says how it ended.</summary>
internal interface IPerfTarget : IAsyncDisposable
{
    /// <summary>managed, native, remote or http.</summary>
    string Backend { get; }

    /// <summary>What is driven, for the report ("similarity.topk on 2 supervised workers over UDS").</summary>
    string Description { get; }

    /// <summary>Where the server-side split (queue, compute, batch sizes) comes from.</summary>
    IServerTelemetry Telemetry { get; }

    /// <summary>Sends one request; null when it succeeded, else its error code (INVALID_ARGUMENT, HTTP_502, ...). Never throws.</summary>
    ValueTask<string?> InvokeAsync(long sequence, CancellationToken cancellationToken);
}
