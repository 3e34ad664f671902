using Tandem.Kernels;
using Tandem.Testing.Internal;

namespace Tandem.Testing;

/// <content>The tests the kit contributes, each run once per backend under test.</content>
public abstract partial class KernelContractTests
{
    /// <summary><see cref="CaseCount"/> random valid cases (the first of one row, the second of the most rows): each equals the managed twin's result.</summary>
    [Theory]
    [BackendData]
    public async Task RandomInputs_MatchTheManagedTwin(BackendKind backend)
    {
        for (var i = 0; i < CaseCount; i++)
        {
            await AssertMatchesManagedAsync(backend, DrawCase(Seed + i, RowsOfCase(i)));
        }
    }

    /// <summary>The result, the state and a stream report the backend under test: nothing fell back.</summary>
    [Theory]
    [BackendData]
    public async Task Results_ReportTheBackendUnderTest(BackendKind backend)
    {
        var @case = DrawCase(Seed);
        var invoker = await InvokerAsync(backend);
        using (var state = await CreateStateAsync(invoker, @case))
        {
            if (state is not null)
            {
                AssertBackend(backend, state.Backend, $"the '{state.Kind.Name}' state", @case);
            }

            var result = await invoker.InvokeAsync(@case.ToRequest(state));
            AssertBackend(backend, result.Backend, "the result", @case);
        }

        if (Contract.Flags.Streaming)
        {
            await using var stream = await invoker.OpenStreamAsync(Kernel);
            AssertBackend(backend, stream.Backend, "the stream", @case);
        }
    }

    /// <summary>For a batchable kernel: each row run alone, and the rows run as one batch in another order, equal that row of the batch.</summary>
    [Theory]
    [BackendData]
    public async Task RowsOneByOne_EqualOneBatch(BackendKind backend)
    {
        if (KernelCase.BatchSymbolOf(Contract) is null)
        {
            return;
        }

        var @case = DrawBatch();
        var invoker = await InvokerAsync(backend);
        using var state = await CreateStateAsync(invoker, @case);
        var batch = await invoker.InvokeAsync(@case.ToRequest(state));
        for (var row = 0L; row < @case.Rows; row++)
        {
            var single = await invoker.InvokeAsync(@case.SelectRows([row]).ToRequest(state));
            AssertRowsEqual(batch, [row], single, $"row {row} run alone on {backend}", @case);
        }

        var shuffled = Enumerable.Range(0, (int)@case.Rows).Select(r => (long)r).Reverse().ToArray();
        var reordered = await invoker.InvokeAsync(@case.SelectRows(shuffled).ToRequest(state));
        AssertRowsEqual(batch, shuffled, reordered, $"the rows in reverse order as one batch on {backend}", @case);
    }

    /// <summary>For a batchable kernel: single-row calls made at once (which the dispatcher merges into batches) equal the rows of one batch.</summary>
    [Theory]
    [BackendData]
    public async Task ConcurrentSingleRows_EqualOneBatch(BackendKind backend)
    {
        if (KernelCase.BatchSymbolOf(Contract) is null)
        {
            return;
        }

        var @case = DrawBatch();
        var invoker = await InvokerAsync(backend);
        using var state = await CreateStateAsync(invoker, @case);
        var batch = await invoker.InvokeAsync(@case.ToRequest(state));
        var rows = Enumerable.Range(0, (int)@case.Rows).Select(r => @case.SelectRows([r]).ToRequest(state)).ToArray();
        var singles = await Task.WhenAll(rows.Select(r => invoker.InvokeAsync(r).AsTask()));
        for (var row = 0; row < singles.Length; row++)
        {
            AssertBackend(backend, singles[row].Backend, $"concurrent row {row}", @case);
            AssertRowsEqual(batch, [row], singles[row], $"row {row} called concurrently with the others on {backend}", @case);
        }
    }

    /// <summary>
    /// Each symbol the inputs bind, and each output symbol, set to 0 in turn
    /// (the validator accepts empty tensors): the backend and the twin agree —
    /// both succeed with equal results, or both refuse with the same code,
    /// and a refusal is INVALID_ARGUMENT, never a crash.
    /// </summary>
    [Theory]
    [BackendData]
    public async Task EmptyDimensions_AgreeWithTheManagedTwin(BackendKind backend)
    {
        var symbols = Contract.Inputs.SelectMany(t => t.Shape).Where(d => d.IsSymbolic).Select(d => d.Symbol!)
            .Concat(Contract.OutputSymbols.Select(s => s.Name)).Distinct();
        var failures = new List<string>();
        foreach (var symbol in symbols)
        {
            var @case = DrawCase(Seed, new Dictionary<string, long> { [symbol] = 0 });
            var (expected, expectedError) = await TryRunAsync(BackendKind.Managed, @case);
            var (actual, actualError) = await TryRunAsync(backend, @case);
            var what = $"'{symbol}' = 0 ({@case})";
            if (actualError is not null && actualError is not TandemException { Code: TandemStatusCode.InvalidArgument })
            {
                failures.Add($"{what}: {backend} failed with {Describe(actualError)}; an empty input must be served or refused with INVALID_ARGUMENT");
            }
            else if (expected is not null && actual is not null)
            {
                if (actual.Backend != backend)
                {
                    failures.Add($"{what}: served by {actual.Backend}, not {backend}");
                }
                else if (KernelResultAssert.FirstDifference(expected, actual, ToleranceFor) is { } difference)
                {
                    failures.Add($"{what}: {difference}");
                }
            }
            else if ((expectedError as TandemException)?.Code != (actualError as TandemException)?.Code)
            {
                failures.Add($"{what}: the managed twin {(expectedError is null ? "succeeded" : $"failed with {Describe(expectedError)}")}, {backend} {(actualError is null ? "succeeded" : $"failed with {Describe(actualError)}")}");
            }
        }

        Assert.True(failures.Count == 0, $"{Kernel} on {backend} with empty dimensions:\n" + string.Join("\n", failures));
    }

    /// <summary>
    /// Every bad input of <see cref="InvalidInputs"/> is refused with its code
    /// (INVALID_ARGUMENT for those the descriptor implies) without crashing,
    /// and afterwards a valid call still equals the managed twin's.
    /// </summary>
    [Theory]
    [BackendData]
    public async Task InvalidInputs_AreRefused(BackendKind backend)
    {
        var valid = DrawCase(Seed);
        var invoker = await InvokerAsync(backend);
        var failures = new List<string>();
        var tried = 0;
        using (var state = await CreateStateAsync(invoker, valid))
        {
            foreach (var bad in InvalidInputs(valid))
            {
                tried++;
                try
                {
                    await bad.Attempt(invoker, state);
                    failures.Add($"{bad.Description}: accepted, expected {bad.ExpectedCode}");
                }
                catch (TandemException e) when (e.Code == bad.ExpectedCode)
                {
                }
                catch (Exception e)
                {
                    failures.Add($"{bad.Description}: expected TandemException {bad.ExpectedCode}, got {Describe(e)}");
                }
            }
        }

        Assert.True(failures.Count == 0, $"{Kernel} on {backend}: {failures.Count} of {tried} invalid inputs were not refused as expected (valid case {valid}):\n" + string.Join("\n", failures));
        await AssertMatchesManagedAsync(backend, valid);
    }

    /// <summary>
    /// For a streaming kernel: data appended in random chunks (an empty one
    /// among them) gives the result of one append, on the backend and on the
    /// managed twin, and both equal.
    /// </summary>
    [Theory]
    [BackendData]
    public async Task Stream_ChunkedAppends_EqualOneAppendAndTheManagedTwin(BackendKind backend)
    {
        if (!Contract.Flags.Streaming || Contract.Outputs.Count != 1)
        {
            return;
        }

        var random = new Random(Seed);
        var data = StreamData(random);
        var chunks = Chunks(data.Length, random);
        var outputBytes = StreamOutputBytes(random);
        var context = $"{Kernel} stream of {data.Length} bytes (seed {Seed}, chunks [{string.Join(", ", chunks.Select(c => c.End.Value - c.Start.Value))}], output {outputBytes} bytes)";
        var managedWhole = await StreamAsync(BackendKind.Managed, data, [new Range(0, data.Length)], outputBytes, context);
        var managedChunked = await StreamAsync(BackendKind.Managed, data, chunks, outputBytes, context);
        var whole = await StreamAsync(backend, data, [new Range(0, data.Length)], outputBytes, context);
        var chunked = await StreamAsync(backend, data, chunks, outputBytes, context);
        var output = Contract.Outputs[0];
        AssertStreamsEqual(managedWhole, managedChunked, output, $"{context}: the managed twin's chunked appends differ from one append");
        AssertStreamsEqual(whole, chunked, output, $"{context}: chunked appends on {backend} differ from one append");
        AssertStreamsEqual(managedWhole, whole, output, $"{context}: {backend} differs from the managed twin");
    }

    /// <summary>Case 0 has one row, case 1 the most; the others draw theirs.</summary>
    private Dictionary<string, long>? RowsOfCase(int i) =>
        KernelCase.BatchSymbolOf(Contract) is { } batch && i < 2
            ? new Dictionary<string, long> { [batch] = i == 0 ? 1 : Sizes.MaxRows }
            : null;

    /// <summary>A case of at least two rows.</summary>
    private KernelCase DrawBatch() =>
        DrawCase(Seed, new Dictionary<string, long> { [KernelCase.BatchSymbolOf(Contract)!] = new Random(Seed).Next(Math.Min(2, Sizes.MaxRows), Sizes.MaxRows + 1) });

    private async Task<(KernelResult? Result, Exception? Error)> TryRunAsync(BackendKind backend, KernelCase @case)
    {
        try
        {
            return (await RunAsync(backend, @case), null);
        }
        catch (Exception e) when (e is TandemException or ArgumentException or InvalidOperationException or OverflowException)
        {
            return (null, e);
        }
    }

    /// <summary>Fails unless the outputs of <paramref name="part"/> equal rows <paramref name="rows"/> of <paramref name="batch"/> (outputs not batched on axis 0 must equal whole).</summary>
    private void AssertRowsEqual(KernelResult batch, IReadOnlyList<long> rows, KernelResult part, string what, KernelCase @case)
    {
        var batchSymbol = KernelCase.BatchSymbolOf(Contract);
        for (var o = 0; o < Contract.Outputs.Count; o++)
        {
            var spec = Contract.Outputs[o];
            var whole = KernelResultAssert.OutputOf(batch, o);
            var expected = spec.Shape.Count > 0 && spec.Shape[0].Symbol == batchSymbol ? SelectRows(whole, rows) : whole;
            if (KernelResultAssert.FirstDifference(expected, KernelResultAssert.OutputOf(part, o), ToleranceFor(spec)) is { } difference)
            {
                Assert.Fail($"{Kernel}: {what} differs from the batch of {@case.Rows} rows, so the result of a row depends on its batch ({@case}; {Reproduce(@case)}):\n{difference}");
            }
        }
    }

    private static TensorData SelectRows(TensorData tensor, IReadOnlyList<long> rows)
    {
        var parts = rows.Select(r => tensor.Rows(r, 1)).ToArray();
        var rowLength = tensor.RowLength;
        var data = TensorData.NewArray(tensor.DType, rows.Count * rowLength);
        for (var r = 0; r < parts.Length; r++)
        {
            Array.Copy(parts[r].Data, 0, data, r * rowLength, rowLength);
        }

        var shape = tensor.Shape.ToArray();
        shape[0] = rows.Count;
        return tensor.With(shape, data);
    }

    /// <summary>The bytes a stream test appends: the first input of a drawn case when it is bytes, else random bytes.</summary>
    private byte[] StreamData(Random random)
    {
        var length = random.Next(1, Sizes.MaxStreamBytes + 1);
        if (Contract.Inputs.Count > 0 && Contract.Inputs[0] is { DType: TensorDType.U8, Shape: [{ IsSymbolic: true } dim] })
        {
            return (byte[])DrawCase(Seed, new Dictionary<string, long> { [dim.Symbol!] = length }).Inputs[0].Data;
        }

        var data = new byte[length];
        random.NextBytes(data);
        return data;
    }

    /// <summary>Random chunk boundaries over <paramref name="length"/> bytes, one chunk empty.</summary>
    private static Range[] Chunks(int length, Random random)
    {
        var chunks = new List<Range>();
        var start = 0;
        while (start < length)
        {
            var size = Math.Min(length - start, random.Next(1, Math.Max(2, length / 3)));
            chunks.Add(new Range(start, start + size));
            start += size;
        }

        chunks.Insert(random.Next(chunks.Count + 1), new Range(start, start));
        return [.. chunks];
    }

    /// <summary>The finalize buffer's length: the output's fixed size, or a drawn size of its output symbol.</summary>
    private int StreamOutputBytes(Random random)
    {
        var output = Contract.Outputs[0];
        var element = TensorData.ElementSize(output.DType);
        if (output.Shape.All(d => !d.IsSymbolic))
        {
            return (int)TensorData.ElementCount([.. output.Shape.Select(d => d.Size)]) * element;
        }

        var draw = new KernelDraw(Contract, random.Next(), Sizes, new Dictionary<string, long>());
        var elements = output.Shape.Select(d => d.IsSymbolic ? DrawSymbol(d.Symbol!, draw) : d.Size).Aggregate(1L, (a, b) => a * b);
        return (int)elements * element;
    }

    private async Task<byte[]> StreamAsync(BackendKind backend, byte[] data, IReadOnlyList<Range> chunks, int outputBytes, string context)
    {
        try
        {
            var invoker = await InvokerAsync(backend);
            await using var stream = await invoker.OpenStreamAsync(Kernel);
            AssertBackend(backend, stream.Backend, "the stream", DrawCase(Seed));
            foreach (var chunk in chunks)
            {
                await stream.AppendAsync(data.AsMemory(chunk));
            }

            var output = new byte[outputBytes];
            await stream.FinalizeAsync(output);
            return output;
        }
        catch (TandemException e)
        {
            Assert.Fail($"{context}: {Who(backend)} failed: {Describe(e)}");
            throw;
        }
    }

    private static void AssertStreamsEqual(byte[] expected, byte[] actual, TensorContract output, string context)
    {
        var shape = new long[] { expected.Length };
        if (KernelResultAssert.FirstDifference(new TensorData(output.Name, TensorDType.U8, shape, expected), new TensorData(output.Name, TensorDType.U8, [actual.Length], actual), Tolerance.Bitwise) is { } difference)
        {
            Assert.Fail($"{context}:\n{difference}");
        }
    }
}
