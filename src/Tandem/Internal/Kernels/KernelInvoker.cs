using System.Globalization;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;
using Tandem.Kernels;

namespace Tandem.Internal.Kernels;

/// <summary>
/// The <see cref="IKernelInvoker"/>: turns a <see cref="KernelRequest"/> into
/// a <see cref="KernelCall"/> (inputs pinned, outputs sized from the
/// contract's symbols, parameters in call order with their defaults) and runs
/// it through <see cref="KernelBackends.InvokeAsync"/>, the pipeline every
/// facade uses. Nothing here knows a kernel by name.
/// </summary>
internal sealed class KernelInvoker(KernelBackends backends) : IKernelInvoker
{
    /// <summary>The most dimensions a tensor crossing the boundary has.</summary>
    internal const int MaxRank = 4;

    private KernelCatalog Catalog => backends.Catalog;

    public IReadOnlyList<KernelContract> Kernels => Catalog.Contracts;

    public KernelContract GetContract(string kernel) => Catalog.Find(kernel ?? throw new ArgumentNullException(nameof(kernel)))
        ?? throw new TandemException(TandemStatusCode.NotFound, $"this host knows no kernel '{kernel}'; declare its library's contracts with AddKernelContracts", kernel);

    public async ValueTask<KernelResult> InvokeAsync(KernelRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var contract = GetContract(request.Kernel);
        var plan = contract.Plan;
        var name = contract.Name;
        if (request.Inputs.Count != contract.Inputs.Count)
        {
            throw TandemException.Invalid(name, $"kernel '{name}' takes {contract.Inputs.Count} input tensor(s), got {request.Inputs.Count}");
        }

        var state = CheckState(contract, request.State);
        var outputs = new Array[contract.Outputs.Count];
        var shapes = new long[contract.Outputs.Count][];
        var backend = state?.BackendImpl ?? backends.For(name, InputBytes(request));
        using (var call = new KernelCall(contract.Descriptor) { State = state?.Inner })
        {
            var work = 0L;
            foreach (var input in request.Inputs)
            {
                input.AddTo(call);
                work += input.ByteLength;
            }

            call.Work = work;
            SizeOutputs(plan, contract, request, state, call, outputs, shapes);
            AddParams(contract, request, call);
            await backends.InvokeAsync(backend, call, cancellationToken).ConfigureAwait(false);
        }

        return new KernelResult(contract, backend.Kind, outputs, shapes);
    }

    public ValueTask<TResult> InvokeAsync<TCall, TResult>(KernelContract contract, KernelState? state, TCall call, CancellationToken cancellationToken = default)
        where TCall : struct, IKernelCall<TResult>
    {
        ArgumentNullException.ThrowIfNull(contract);
        var kernelCall = Prepare<TCall, TResult>(contract, state, ref call, out var backend);
        return RunAsync<TCall, TResult>(backend, kernelCall, call, cancellationToken);
    }

    /// <summary>Builds the call of a typed facade synchronously (stack buffers, no request objects), so only the await needs a state machine.</summary>
    private KernelCall Prepare<TCall, TResult>(KernelContract contract, KernelState? state, ref TCall call, out IKernelBackend backend)
        where TCall : struct, IKernelCall<TResult>
    {
        var plan = contract.Plan;
        var name = contract.Name;
        var checkedState = CheckState(contract, state);
        var kernelCall = new KernelCall(contract.Descriptor) { State = checkedState?.Inner };
        try
        {
            Span<long> chosen = plan.Symbols.Length <= 16 ? stackalloc long[plan.Symbols.Length] : new long[plan.Symbols.Length];
            chosen.Fill(-1);
            var writer = new KernelCallWriter(kernelCall, plan, chosen);
            call.Write(ref writer);
            if (kernelCall.InputCount != contract.Inputs.Count)
            {
                throw TandemException.Invalid(name, $"kernel '{name}' takes {contract.Inputs.Count} input tensor(s), got {kernelCall.InputCount}");
            }

            if (kernelCall.ParamCount > contract.Params.Count)
            {
                throw TandemException.Invalid(name, $"kernel '{name}' takes {contract.Params.Count} parameter(s), got {kernelCall.ParamCount}");
            }

            for (var p = kernelCall.ParamCount; p < contract.Params.Count; p++)
            {
                var spec = contract.Params[p];
                _ = spec.Kind == ParamKind.Float ? kernelCall.Param(spec.Default) : kernelCall.Param((long)spec.Default);
            }

            Span<long> shapes = stackalloc long[NativeCallArgs.Capacity * MaxRank];
            ShapeOutputs(plan, contract, checkedState, kernelCall, chosen, shapes);
            var binder = new KernelOutputBinder(kernelCall, contract, shapes);
            call.BindOutputs(ref binder);
            if (kernelCall.OutputCount != contract.Outputs.Count)
            {
                throw new InvalidOperationException($"the call of '{name}' took {kernelCall.OutputCount} of its {contract.Outputs.Count} outputs");
            }

            kernelCall.Work = writer.InputBytes;
            backend = checkedState?.BackendImpl ?? backends.For(name, writer.InputBytes);
            return kernelCall;
        }
        catch
        {
            kernelCall.Dispose();
            throw;
        }
    }

    private async ValueTask<TResult> RunAsync<TCall, TResult>(IKernelBackend backend, KernelCall kernelCall, TCall call, CancellationToken cancellationToken)
        where TCall : struct, IKernelCall<TResult>
    {
        using (kernelCall)
        {
            await backends.InvokeAsync(backend, kernelCall, cancellationToken).ConfigureAwait(false);
        }

        return call.Result(backend.Kind);
    }

    public async ValueTask<KernelState> CreateStateAsync(string kind, IReadOnlyList<KernelTensor> tensors, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(tensors);
        var (contract, reader) = Catalog.StateKindAndReader(kind);
        var backend = backends.For(reader.Name);
        IKernelState state;
        Dictionary<string, long> symbols;
        using (var call = StateCall(reader, contract, tensors, out symbols))
        {
            try
            {
                state = await backend.CreateStateAsync(kind, call, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
            {
                throw new TandemException(TandemStatusCode.Cancelled, $"creating the '{kind}' state was cancelled by the caller; nothing was kept", reader.Name, backend.Kind, innerException: e);
            }
        }

        return new KernelState(contract, backend, state, symbols, Release);
    }

    /// <summary>
    /// The call that builds a state of <paramref name="contract"/> from
    /// <paramref name="tensors"/>, checked against the kind (count, dtypes,
    /// shapes, finite values); <paramref name="symbols"/> are the sizes they bind.
    /// </summary>
    internal static KernelCall StateCall(KernelContract reader, StateKindContract contract, IReadOnlyList<KernelTensor> tensors, out Dictionary<string, long> symbols)
    {
        symbols = CheckStateTensors(reader.Name, contract, tensors);
        var call = new KernelCall(reader.Descriptor);
        try
        {
            foreach (var tensor in tensors)
            {
                tensor.AddTo(call);
            }

            for (var i = 0; i < tensors.Count; i++)
            {
                if (contract.Tensors[i].FiniteOnly && call.HasInput(i) && FirstNonFinite(call, i) is var row and >= 0)
                {
                    throw TandemException.Invalid(reader.Name, $"tensor '{contract.Tensors[i].Name}' row {row} contains NaN or infinity");
                }
            }

            return call;
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    public async ValueTask<KernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken = default)
    {
        var contract = GetContract(kernel);
        if (!contract.Flags.Streaming || contract.Outputs.Count != 1)
        {
            throw new TandemException(TandemStatusCode.Unimplemented, $"kernel '{kernel}' has no streaming form (its contract lacks the 'streaming' flag)", kernel);
        }

        var backend = backends.For(kernel);
        var started = backends.Timestamp();
        IKernelStream stream;
        try
        {
            stream = await backend.OpenStreamAsync(kernel, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, $"opening a stream of '{kernel}' was cancelled by the caller", kernel, backend.Kind, innerException: e);
        }

        return new KernelStream(contract, backend.Kind, stream, code => backends.RecordStream(kernel, backend.Kind, started, code));
    }

    /// <summary>Refuses a finalize buffer whose length the streaming kernel's output shape does not allow.</summary>
    internal static void CheckStreamOutput(KernelContract contract, int length)
    {
        var output = contract.Outputs[0];
        if (FixedBytes(output) is { } bytes)
        {
            if (length != bytes)
            {
                throw TandemException.Invalid(contract.Name, $"output '{output.Name}' must be {bytes} bytes long, got {length}");
            }

            return;
        }

        var max = MaxOf(contract, output);
        if (length < 1 || (max > 0 && length > max))
        {
            throw TandemException.Invalid(contract.Name, max > 0
                ? $"output '{output.Name}' must be 1 to {max} bytes long, got {length}"
                : $"output '{output.Name}' must be at least 1 byte long, got {length}");
        }
    }

    /// <summary>The byte length of a streaming kernel's fixed-size output.</summary>
    internal static int FixedStreamOutput(KernelContract contract)
    {
        var output = contract.Outputs[0];
        return FixedBytes(output) is { } bytes
            ? (int)bytes
            : throw TandemException.Invalid(contract.Name, $"output '{output.Name}' has a size the caller chooses; pass a buffer of that size to FinalizeAsync");
    }

    internal void Release(IKernelState state)
    {
        backends.Cache.Invalidate(state);
        state.Dispose();
    }

    private static KernelState? CheckState(KernelContract contract, KernelState? state)
    {
        var name = contract.Name;
        if (contract.StateKind is not { } kind)
        {
            return state is null ? null : throw TandemException.Invalid(name, $"kernel '{name}' reads no state; leave KernelRequest.State null");
        }

        if (state is null)
        {
            throw TandemException.Invalid(name, $"kernel '{name}' reads a '{kind.Name}' state; set KernelRequest.State to one made by CreateStateAsync");
        }

        if (state.Kind.Name != kind.Name)
        {
            throw TandemException.Invalid(name, $"kernel '{name}' reads a '{kind.Name}' state, got a '{state.Kind.Name}' state");
        }

        return state.IsDisposed
            ? throw new TandemException(TandemStatusCode.NotFound, $"the '{kind.Name}' state was disposed before the call started", name)
            : state;
    }

    private static long InputBytes(KernelRequest request)
    {
        var bytes = 0L;
        foreach (var input in request.Inputs)
        {
            bytes += input.ByteLength;
        }

        return bytes;
    }

    /// <summary>
    /// Sizes every output from the symbols its inputs, its state and the
    /// caller bind, allocates it and adds it to the call.
    /// </summary>
    private static void SizeOutputs(Plan plan, KernelContract contract, KernelRequest request, KernelState? state, KernelCall call, Array[] outputs, long[][] shapes)
    {
        Span<long> chosen = plan.Symbols.Length <= 16 ? stackalloc long[plan.Symbols.Length] : new long[plan.Symbols.Length];
        chosen.Fill(-1);
        foreach (var (symbol, size) in request.OutputSymbols)
        {
            chosen[plan.CheckOutputSymbol(contract.Name, symbol, size)] = size;
        }

        Span<long> sized = stackalloc long[NativeCallArgs.Capacity * MaxRank];
        ShapeOutputs(plan, contract, state, call, chosen, sized);
        for (var o = 0; o < outputs.Length; o++)
        {
            var shape = sized.Slice(o * MaxRank, contract.Outputs[o].Shape.Count).ToArray();
            var elements = 1L;
            foreach (var size in shape)
            {
                elements *= size;
            }

            shapes[o] = shape;
            outputs[o] = AddOutput(call, contract.Outputs[o].DType, (int)elements, shape);
        }
    }

    /// <summary>
    /// Writes the shape of every output (<see cref="MaxRank"/> slots each)
    /// from the symbols the state, the inputs already in the call and the
    /// caller (<paramref name="chosen"/>, -1 when not given) bind. A symbol
    /// left unbound because an input has the wrong rank gets size 0: the
    /// contract check then names the input, which is the real problem.
    /// </summary>
    private static void ShapeOutputs(Plan plan, KernelContract contract, KernelState? state, KernelCall call, ReadOnlySpan<long> chosen, Span<long> shapes)
    {
        var name = contract.Name;
        Span<long> bound = plan.Symbols.Length <= 16 ? stackalloc long[plan.Symbols.Length] : new long[plan.Symbols.Length];
        bound.Fill(-1);
        if (state is not null)
        {
            // Only the symbols an output's shape uses matter here.
            for (var s = 0; s < plan.Symbols.Length; s++)
            {
                if (plan.InOutputs[s] && state.Symbols.TryGetValue(plan.Symbols[s], out var size))
                {
                    bound[s] = size;
                }
            }
        }

        for (var i = 0; i < plan.InputSymbols.Length && i < call.InputCount; i++)
        {
            var axes = plan.InputSymbols[i];
            if (call.InputRank(i) != axes.Length)
            {
                continue;
            }

            for (var axis = 0; axis < axes.Length; axis++)
            {
                if (axes[axis] >= 0 && bound[axes[axis]] < 0)
                {
                    bound[axes[axis]] = call.InputDim(i, axis);
                }
            }
        }

        for (var s = 0; s < chosen.Length; s++)
        {
            if (chosen[s] >= 0)
            {
                bound[s] = chosen[s];
            }
        }

        for (var o = 0; o < plan.OutputDims.Length; o++)
        {
            var spec = contract.Outputs[o];
            var dims = plan.OutputDims[o];
            var shape = shapes.Slice(o * MaxRank, dims.Length);
            var elements = 1L;
            for (var axis = 0; axis < dims.Length; axis++)
            {
                var (fixedSize, symbol) = dims[axis];
                if (symbol >= 0 && bound[symbol] < 0)
                {
                    if (plan.OutputSymbolMax[symbol] >= 0)
                    {
                        throw TandemException.Invalid(name, $"output '{spec.Name}' axis {axis} ('{plan.Symbols[symbol]}') is bound by no input; give its size with KernelRequest.OutputSymbol(\"{plan.Symbols[symbol]}\", size)");
                    }

                    bound[symbol] = 0;
                }

                shape[axis] = symbol >= 0 ? bound[symbol] : fixedSize;
                elements = shape[axis] == 0 || elements <= Array.MaxLength / shape[axis] ? elements * shape[axis] : long.MaxValue;
            }

            if (elements > Array.MaxLength)
            {
                throw TandemException.Invalid(name, $"output '{spec.Name}' would hold {string.Join(" × ", shape.ToArray())} elements, more than one array can; split the call");
            }
        }
    }

    private static Array AddOutput(KernelCall call, TensorDType dtype, int elements, long[] shape)
    {
        switch (dtype)
        {
            case TensorDType.U8:
                var bytes = new byte[elements];
                call.Output(bytes.AsMemory(), shape);
                return bytes;
            case TensorDType.I32:
                var ints = new int[elements];
                call.Output(ints.AsMemory(), shape);
                return ints;
            case TensorDType.I64:
                var longs = new long[elements];
                call.Output(longs.AsMemory(), shape);
                return longs;
            case TensorDType.F32:
                var floats = new float[elements];
                call.Output(floats.AsMemory(), shape);
                return floats;
            default:
                var doubles = new double[elements];
                call.Output(doubles.AsMemory(), shape);
                return doubles;
        }
    }

    /// <summary>Adds every parameter in call order: the request's value, else the default.</summary>
    private static void AddParams(KernelContract contract, KernelRequest request, KernelCall call)
    {
        var name = contract.Name;
        var declared = contract.Params;
        var given = request.Params;
        Span<int> chosen = declared.Count <= 16 ? stackalloc int[declared.Count] : new int[declared.Count];
        chosen.Fill(-1);
        for (var g = 0; g < given.Count; g++)
        {
            var index = given[g].Name is { } paramName ? IndexOfParam(declared, paramName) : given[g].Index;
            if (index < 0 || index >= declared.Count)
            {
                var which = given[g].Name is { } n ? $"'{n}'" : given[g].Index.ToString(CultureInfo.InvariantCulture);
                throw TandemException.Invalid(name, declared.Count == 0
                    ? $"kernel '{name}' takes no parameters, got parameter {which}"
                    : $"kernel '{name}' has no parameter {which}; it takes {string.Join(", ", declared.Select(p => p.Name))}");
            }

            chosen[index] = g;
        }

        for (var p = 0; p < declared.Count; p++)
        {
            var spec = declared[p];
            if (chosen[p] < 0)
            {
                _ = spec.Kind == ParamKind.Float ? call.Param(spec.Default) : call.Param((long)spec.Default);
                continue;
            }

            var value = given[chosen[p]];
            if (value.Choice is { } choice)
            {
                var index = spec.Kind == ParamKind.Enum ? IndexOfChoice(spec.Choices, choice) : -1;
                _ = index >= 0 ? call.Param(index) : throw TandemException.Invalid(name, spec.Kind == ParamKind.Enum
                    ? $"parameter '{spec.Name}' must be one of {string.Join(", ", spec.Choices)}, got '{choice}'"
                    : $"parameter '{spec.Name}' is {spec.Kind.ToString().ToLowerInvariant()}, not a choice; got '{choice}'");
            }
            else if (spec.Kind == ParamKind.Float)
            {
                call.Param(value.IsFloat ? value.FloatValue : value.IntValue);
            }
            else if (value.IsFloat && (value.FloatValue != Math.Floor(value.FloatValue) || !double.IsFinite(value.FloatValue)))
            {
                throw TandemException.Invalid(name, $"parameter '{spec.Name}' is {(spec.Kind == ParamKind.Int ? "an integer" : $"a {spec.Kind.ToString().ToLowerInvariant()}")}, got {value.FloatValue.ToString(CultureInfo.InvariantCulture)}");
            }
            else
            {
                call.Param(value.IsFloat ? (long)value.FloatValue : value.IntValue);
            }
        }
    }

    private static int IndexOfParam(IReadOnlyList<ParamContract> declared, string name)
    {
        for (var p = 0; p < declared.Count; p++)
        {
            if (declared[p].Name == name)
            {
                return p;
            }
        }

        return -1;
    }

    private static int IndexOfChoice(IReadOnlyList<string> choices, string choice)
    {
        for (var c = 0; c < choices.Count; c++)
        {
            if (choices[c] == choice)
            {
                return c;
            }
        }

        return -1;
    }

    /// <summary>Checks a state's creation tensors against its kind (the Rust registry checks them again); returns the symbols they bind.</summary>
    private static Dictionary<string, long> CheckStateTensors(string kernel, StateKindContract kind, IReadOnlyList<KernelTensor> tensors)
    {
        if (tensors.Count != kind.Tensors.Count)
        {
            throw TandemException.Invalid(kernel, $"state kind '{kind.Name}' is built from {kind.Tensors.Count} tensor(s) ({string.Join(", ", kind.Tensors)}), got {tensors.Count}");
        }

        var symbols = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < tensors.Count; i++)
        {
            var spec = kind.Tensors[i];
            var tensor = tensors[i] ?? throw new ArgumentException($"tensor {i} is null; use KernelTensor.Absent for an omitted one", nameof(tensors));
            if (tensor.DType is not { } dtype)
            {
                if (!kind.OptionalTensors.Contains(spec.Name))
                {
                    throw TandemException.Invalid(kernel, $"tensor '{spec.Name}' of state kind '{kind.Name}' is required");
                }

                continue;
            }

            if (dtype != spec.DType)
            {
                throw TandemException.Invalid(kernel, $"tensor '{spec.Name}' must be {Lower(spec.DType)}, got {Lower(dtype)}");
            }

            if (tensor.Shape.Count != spec.Shape.Count)
            {
                throw TandemException.Invalid(kernel, $"tensor '{spec.Name}' must have rank {spec.Shape.Count}, got rank {tensor.Shape.Count}");
            }

            var elements = 1L;
            for (var axis = 0; axis < spec.Shape.Count; axis++)
            {
                var size = tensor.Shape[axis];
                var dim = spec.Shape[axis];
                if (size < 0 || (!dim.IsSymbolic && dim.Size != size))
                {
                    throw TandemException.Invalid(kernel, $"tensor '{spec.Name}' axis {axis} must have size {dim}, got {size}");
                }

                if (dim.Symbol is { } symbol && !symbols.TryAdd(symbol, size) && symbols[symbol] != size)
                {
                    throw TandemException.Invalid(kernel, $"tensor '{spec.Name}' axis {axis} ('{symbol}') has size {size}, but another tensor set '{symbol}' = {symbols[symbol]}");
                }

                elements = size == 0 || elements <= long.MaxValue / size ? elements * size : long.MaxValue;
            }

            var needed = elements == long.MaxValue ? long.MaxValue : elements * ElementSize(dtype);
            if (tensor.ByteLength != needed)
            {
                throw TandemException.Invalid(kernel, $"tensor '{spec.Name}' has {tensor.ByteLength} bytes but its shape [{string.Join(", ", tensor.Shape)}] of {Lower(dtype)} needs {needed}");
            }
        }

        return symbols;
    }

    private static int FirstNonFinite(KernelCall call, int input)
    {
        var rowLength = 1L;
        for (var axis = 1; axis < call.InputRank(input); axis++)
        {
            rowLength *= call.InputDim(input, axis);
        }

        var row = (int)Math.Max(rowLength, 1);
        switch (call.InputDType(input))
        {
            case NativeDType.F32:
                return Validation.FirstNonFiniteRow(call.InputSpan<float>(input), row);
            case NativeDType.F64:
                var values = call.InputSpan<double>(input);
                for (var i = 0; i < values.Length; i++)
                {
                    if (!double.IsFinite(values[i]))
                    {
                        return i / row;
                    }
                }

                return -1;
            default:
                return -1;
        }
    }

    private static long? FixedBytes(TensorContract output)
    {
        var bytes = ElementSize(output.DType);
        foreach (var dim in output.Shape)
        {
            if (dim.IsSymbolic)
            {
                return null;
            }

            bytes *= dim.Size;
        }

        return bytes;
    }

    private static long MaxOf(KernelContract contract, TensorContract output)
    {
        foreach (var dim in output.Shape)
        {
            foreach (var symbol in contract.OutputSymbols)
            {
                if (symbol.Name == dim.Symbol)
                {
                    return symbol.Value;
                }
            }
        }

        return 0;
    }

    private static long ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.U8 => 1,
        TensorDType.I32 or TensorDType.F32 => 4,
        _ => 8,
    };

    private static string Lower(TensorDType dtype) => dtype.ToString().ToLowerInvariant();

    /// <summary>A contract reduced to symbol indices, computed once per contract.</summary>
    internal sealed class Plan
    {
        public Plan(KernelContract contract)
        {
            Contract = contract;
            var symbols = new List<string>();
            int Index(TensorDim dim)
            {
                if (dim.Symbol is not { } symbol)
                {
                    return -1;
                }

                var index = symbols.IndexOf(symbol);
                if (index < 0)
                {
                    symbols.Add(symbol);
                    index = symbols.Count - 1;
                }

                return index;
            }

            InputSymbols = [.. contract.Inputs.Select(t => t.Shape.Select(Index).ToArray())];
            OutputDims = [.. contract.Outputs.Select(t => t.Shape.Select(d => (d.Size, Index(d))).ToArray())];
            Symbols = [.. symbols];
            InOutputs = new bool[Symbols.Length];
            foreach (var dims in OutputDims)
            {
                foreach (var (_, symbol) in dims)
                {
                    if (symbol >= 0)
                    {
                        InOutputs[symbol] = true;
                    }
                }
            }

            OutputSymbolMax = new long[Symbols.Length];
            for (var s = 0; s < Symbols.Length; s++)
            {
                OutputSymbolMax[s] = -1;
                foreach (var symbol in contract.OutputSymbols)
                {
                    if (symbol.Name == Symbols[s])
                    {
                        OutputSymbolMax[s] = symbol.Value;
                    }
                }
            }
        }

        public string[] Symbols { get; }

        /// <summary>Per symbol: whether an output's shape uses it.</summary>
        public bool[] InOutputs { get; }

        /// <summary>Per input, per axis: the symbol's index, or -1 for a fixed size.</summary>
        public int[][] InputSymbols { get; }

        /// <summary>Per output, per axis: the fixed size and the symbol's index (-1 when fixed).</summary>
        public (long Fixed, int Symbol)[][] OutputDims { get; }

        /// <summary>Per symbol: the largest size a caller may choose (0: no bound), or -1 when inputs or the state bind it.</summary>
        public long[] OutputSymbolMax { get; }

        public KernelContract Contract { get; }

        /// <summary>Checks a caller-chosen output symbol's size; returns the symbol's index.</summary>
        public int CheckOutputSymbol(string kernel, string symbol, long size)
        {
            var s = Array.IndexOf(Symbols, symbol);
            if (s < 0 || OutputSymbolMax[s] < 0)
            {
                throw TandemException.Invalid(kernel, Contract.OutputSymbols.Count == 0
                    ? $"kernel '{kernel}' has no output symbol '{symbol}'; its outputs are sized by its inputs"
                    : $"kernel '{kernel}' has no output symbol '{symbol}'; it takes {string.Join(", ", Contract.OutputSymbols.Select(o => o.Name))}");
            }

            var max = OutputSymbolMax[s];
            return size < 0 || (max > 0 && size > max)
                ? throw TandemException.Invalid(kernel, $"output symbol '{symbol}' must be in [0, {(max > 0 ? max.ToString(CultureInfo.InvariantCulture) : "∞")}], got {size}")
                : s;
        }
    }
}
