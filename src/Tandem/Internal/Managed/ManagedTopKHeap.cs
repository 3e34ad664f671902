namespace Tandem.Internal.Managed;

/// <summary>
/// Keeps the best k hits under one total order: higher key first, then lower
/// id. The root is the worst kept hit. NaN keys rank last.
/// </summary>
internal sealed class ManagedTopKHeap(int k)
{
    private readonly float[] _keys = new float[k];
    private readonly long[] _ids = new long[k];

    public int Count { get; private set; }

    /// <summary>Key a candidate must reach once the heap is full.</summary>
    public float Threshold => Count < k ? float.NegativeInfinity : _keys[0];

    public static bool Better(float keyA, long idA, float keyB, long idB) => keyA > keyB || (keyA == keyB && idA < idB);

    public void Offer(float key, long id)
    {
        // `!(key < threshold)` also admits NaN (ranked last), so a query
        // always gets exactly k hits.
        if (!(key < Threshold))
        {
            Push(float.IsNaN(key) ? float.NegativeInfinity : key, id);
        }
    }

    private void Push(float key, long id)
    {
        if (Count < k)
        {
            _keys[Count] = key;
            _ids[Count] = id;
            SiftUp(Count++);
        }
        else if (k > 0 && Better(key, id, _keys[0], _ids[0]))
        {
            _keys[0] = key;
            _ids[0] = id;
            SiftDown(0);
        }
    }

    public void CopyTo(List<(float Key, long Id)> hits)
    {
        for (var i = 0; i < Count; i++)
        {
            hits.Add((_keys[i], _ids[i]));
        }
    }

    private void SiftUp(int i)
    {
        while (i > 0)
        {
            var parent = (i - 1) / 2;
            if (!Better(_keys[parent], _ids[parent], _keys[i], _ids[i]))
            {
                return;
            }

            Swap(parent, i);
            i = parent;
        }
    }

    private void SiftDown(int i)
    {
        while (true)
        {
            int left = (2 * i) + 1, right = left + 1, worst = i;
            if (left < Count && Better(_keys[worst], _ids[worst], _keys[left], _ids[left]))
            {
                worst = left;
            }

            if (right < Count && Better(_keys[worst], _ids[worst], _keys[right], _ids[right]))
            {
                worst = right;
            }

            if (worst == i)
            {
                return;
            }

            Swap(i, worst);
            i = worst;
        }
    }

    private void Swap(int a, int b)
    {
        (_keys[a], _keys[b]) = (_keys[b], _keys[a]);
        (_ids[a], _ids[b]) = (_ids[b], _ids[a]);
    }
}
