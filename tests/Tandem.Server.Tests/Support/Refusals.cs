using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace Tandem.Server.Tests.Support;

/// <summary>Counts tandem.server.refusals by reason, from one server's meter only (tests run in parallel in one process).</summary>
internal sealed class Refusals : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _counts = [];

    public Refusals(IServiceProvider services)
    {
        var factory = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Name == "tandem.server.refusals")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "reason")
                {
                    lock (_counts)
                    {
                        _counts[(string)tag.Value!] = this[(string)tag.Value!] + value;
                    }
                }
            }
        });
        _listener.Start();
    }

    public long this[string reason]
    {
        get
        {
            lock (_counts)
            {
                return _counts.GetValueOrDefault(reason);
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
