using Microsoft.Extensions.Options;
using Tandem.Server.Api;
using Tandem.Server.Hosting;

namespace Tandem.Server.Collections;

/// <summary>
/// Bounds what collections may hold together: how many exist (or are being
/// created) and how many bytes of vectors and ids they keep. A creation
/// reserves its slot and bytes before it reads or allocates anything, grows
/// the reservation as its buffer grows, and either hands it to the catalog
/// entry (released when the collection is dropped) or releases it exactly
/// when it fails or its client leaves.
/// </summary>
internal sealed class CollectionBudget(IOptions<ServerOptions> options)
{
    private readonly object _gate = new();
    private readonly CollectionOptions _limits = options.Value.Collections;
    private int _count;
    private long _bytes;

    /// <summary>Collections that exist or are being created.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>Bytes held by collections and reserved by creations in progress.</summary>
    public long Bytes
    {
        get
        {
            lock (_gate)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Takes one collection slot and <paramref name="bytes"/>, or fails with 507 naming the limit that is full.</summary>
    public Reservation Reserve(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            if (_count >= _limits.MaxCount)
            {
                throw Refuse(RefusalReasons.CollectionCount, $"the server already holds its limit of {_limits.MaxCount} collections (Server:Collections:MaxCount); drop one (DELETE /collections/{{name}}) or raise the limit");
            }

            CheckBytes(bytes);
            _count++;
            _bytes += bytes;
        }

        return new Reservation(this, bytes);
    }

    private void Resize(Reservation reservation, long bytes)
    {
        lock (_gate)
        {
            if (bytes > reservation.Bytes)
            {
                CheckBytes(bytes - reservation.Bytes);
            }

            _bytes += bytes - reservation.Bytes;
            reservation.Bytes = bytes;
        }
    }

    private void Release(Reservation reservation)
    {
        lock (_gate)
        {
            _count--;
            _bytes -= reservation.Bytes;
            reservation.Bytes = 0;
        }
    }

    private void CheckBytes(long more)
    {
        if (more > _limits.MaxTotalBytes - _bytes)
        {
            throw Refuse(RefusalReasons.CollectionBytes, $"this collection needs {more} more bytes but collections may hold {_limits.MaxTotalBytes} bytes together (Server:Collections:MaxTotalBytes) and {_bytes} are in use; drop a collection (DELETE /collections/{{name}}) or raise the limit");
        }
    }

    private static HttpProblemException Refuse(string reason, string message) =>
        new(StatusCodes.Status507InsufficientStorage, TandemStatusCode.ResourceExhausted, message) { Reason = reason };

    /// <summary>One collection's slot and bytes; disposing it gives both back, once.</summary>
    internal sealed class Reservation(CollectionBudget budget, long bytes) : IDisposable
    {
        private int _released;

        /// <summary>The bytes reserved now.</summary>
        public long Bytes { get; internal set; } = bytes;

        /// <summary>Makes the reservation exactly <paramref name="bytes"/>: growing past the budget fails with 507 and keeps what was reserved.</summary>
        public void Resize(long bytes)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(bytes);
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
            budget.Resize(this, bytes);
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                budget.Release(this);
            }
        }
    }
}
