using System.Globalization;
using System.Text;
using Tandem.Contracts.V1;

namespace Tandem.Generator;

/// <summary>
/// Writes the typed async facades of a library: per kernel a class over
/// <c>IKernelInvoker</c> (typed inputs, dimensions, parameters, state and
/// output-symbol sizes in; a typed result out; <c>OpenAsync</c> for a
/// streaming kernel), per state kind a <c>CreateAsync</c> over its tensors,
/// and one <c>AddNAME()</c> registration (which, for a public library other
/// than libtandem.so, also loads the library in process). The code uses Tandem's public API
/// only, fully qualified, so it compiles in any namespace of a user's project.
/// </summary>
internal static class FacadeWriter
{
    private const string K = "global::Tandem.Kernels.";
    private const string Ct = "global::System.Threading.CancellationToken";

    public static void Write(StringBuilder w, KernelSet set, GeneratorOptions options)
    {
        var access = options.Public ? "public" : "internal";
        foreach (var d in set.Kernels)
        {
            WriteKernel(w, d, options, access);
        }

        foreach (var kind in set.StateKinds)
        {
            WriteStateKind(w, set, kind, options, access);
        }

        WriteRegistration(w, set, options, access);
    }

    /// <summary>The argument of one symbolic dimension: given by the caller, or derived from a tensor's length.</summary>
    private sealed record Symbol(string Name, string Local, string? DerivedFrom, string DerivedDivisor);

    private static void WriteKernel(StringBuilder w, KernelDescriptor d, GeneratorOptions options, string access)
    {
        var pascal = Identifier.Pascal(d.Name);
        var type = pascal + "Kernel";
        var result = pascal + "Result";
        var constants = $"{options.ClassName}.{pascal}";
        var parameterName = ParameterNames();

        // Arguments, in order: state, each input followed by the dimensions
        // its length cannot tell, required output sizes, parameters
        // (defaults from the descriptor), optional output sizes, token.
        var args = new List<string>();
        var docs = new List<string>();
        var fields = new List<(string Type, string Name)>();
        var body = new StringBuilder();
        string? stateLocal = null;
        if (d.StateKind.Length > 0)
        {
            stateLocal = parameterName(d.StateKind);
            args.Add($"{K}KernelState {stateLocal}");
            docs.Add(Param(stateLocal, $"The '{d.StateKind}' state the kernel reads (from {Identifier.Pascal(d.StateKind)}StateKind.CreateAsync)."));
        }

        var symbols = new Dictionary<string, Symbol>(StringComparer.Ordinal);
        var inputs = new List<(TensorSpec Spec, string Local)>();
        foreach (var input in d.Inputs)
        {
            var local = parameterName(input.Name);
            inputs.Add((input, local));
            args.Add($"global::System.ReadOnlyMemory<{ClrType(input.Dtype)}> {local}");
            docs.Add(Param(local, $"Input '{input.Name}', {Tensor(input)}, row-major; read in place until the call completes."));
            fields.Add(($"global::System.ReadOnlyMemory<{ClrType(input.Dtype)}>", local));
            AddDims(input, local, symbols, parameterName, args, docs, fields);
        }

        var outputSymbols = d.OutputSymbols.ToList();
        var optionalSizes = new List<(OutputSymbol Symbol, string Local, ParamSpec Param)>();
        var sizeLocals = new List<(string Symbol, string Local)>();
        foreach (var symbol in outputSymbols)
        {
            var same = d.Params.FirstOrDefault(p => p.Name == symbol.Name && p.Type == ParamType.Int);
            var local = parameterName(same is not null ? symbol.Name + "_size" : symbol.Name);
            sizeLocals.Add((symbol.Name, local));
            fields.Add(("long", local));
            if (same is not null)
            {
                optionalSizes.Add((symbol, local, same));
                continue;
            }

            args.Add($"long {local}");
            docs.Add(Param(local, $"Size of output dimension '{symbol.Name}' (in [0, {(symbol.Max > 0 ? symbol.Max.ToString(CultureInfo.InvariantCulture) : "∞")}]){Described(symbol.Description)}."));
        }

        var paramLocals = new List<(ParamSpec Spec, string Local)>();
        foreach (var p in d.Params)
        {
            var local = parameterName(p.Name);
            paramLocals.Add((p, local));
            var name = Identifier.Pascal(p.Name);
            switch (p.Type)
            {
                case ParamType.Enum:
                    var choice = p.DefaultValue >= 0 && p.DefaultValue < p.Choices.Count ? Identifier.Pascal(p.Choices[(int)p.DefaultValue]) : "0";
                    args.Add($"{constants}.Params.{name} {local} = {constants}.Params.{name}.{choice}");
                    docs.Add(Param(local, $"Parameter '{p.Name}': one of {string.Join(", ", p.Choices)}; default {(p.DefaultValue >= 0 && p.DefaultValue < p.Choices.Count ? p.Choices[(int)p.DefaultValue] : "?")}."));
                    fields.Add(("long", local));
                    break;
                case ParamType.Float:
                    args.Add($"double {local} = {ContractWriter.Float(p.DefaultValue)}");
                    docs.Add(Param(local, $"Parameter '{p.Name}': a float in [{ContractWriter.Float(p.Min)}, {ContractWriter.Float(p.Max)}]; default {ContractWriter.Float(p.DefaultValue)}."));
                    fields.Add(("double", local));
                    break;
                case ParamType.Bool:
                    args.Add($"bool {local} = {(p.DefaultValue != 0 ? "true" : "false")}");
                    docs.Add(Param(local, $"Parameter '{p.Name}'; default {(p.DefaultValue != 0 ? "true" : "false")}."));
                    fields.Add(("bool", local));
                    break;
                default:
                    args.Add($"long {local} = {ContractWriter.Int(p.DefaultValue)}");
                    docs.Add(Param(local, $"Parameter '{p.Name}': an integer in [{ContractWriter.Int(p.Min)}, {ContractWriter.Int(p.Max)}]; default {ContractWriter.Int(p.DefaultValue)}."));
                    fields.Add(("long", local));
                    break;
            }
        }

        foreach (var (symbol, local, same) in optionalSizes)
        {
            var paramLocal = paramLocals.First(p => p.Spec == same).Local;
            args.Add($"long? {local} = null");
            docs.Add(Param(local, $"Size of output dimension '{symbol.Name}' (in [0, {symbol.Max}]){Described(symbol.Description)}; null: the value of parameter '{same.Name}' ({paramLocal})."));
            body.Append(CultureInfo.InvariantCulture, $"        var {local}Given = {local} ?? {paramLocal};\n");
        }

        args.Add($"{Ct} cancellationToken = default");
        docs.Add(Param("cancellationToken", "Cancels the call."));

        // Result: one property per output, one per symbol of the outputs' shapes.
        var outputs = d.Outputs.Select(o => (Spec: o, Property: Identifier.Pascal(o.Name))).ToList();
        var resultNames = new HashSet<string>(outputs.Select(o => o.Property), StringComparer.Ordinal) { "Backend" };
        var resultDims = new List<(string Symbol, string Property, int Output, int Axis)>();
        for (var o = 0; o < d.Outputs.Count; o++)
        {
            for (var axis = 0; axis < d.Outputs[o].Shape.Count; axis++)
            {
                var dim = d.Outputs[o].Shape[axis];
                if (dim.KindCase == Dim.KindOneofCase.Symbol && resultDims.All(r => r.Symbol != dim.Symbol))
                {
                    var property = Identifier.Pascal(dim.Symbol);
                    while (!resultNames.Add(property))
                    {
                        property += "Size";
                    }

                    resultDims.Add((dim.Symbol, property, o, axis));
                }
            }
        }

        WriteResult(w, d, result, outputs, resultDims, access);

        w.Append(CultureInfo.InvariantCulture, $"\n/// <summary>Typed facade of kernel '{Identifier.Xml(d.Name)}' v{d.Version}{(d.Summary.Length > 0 ? ": " + Identifier.Xml(d.Summary) : "")}</summary>\n");
        w.Append("/// <remarks>Calls take the whole pipeline (validation against the contract, cache, batching, resilience, fallback, telemetry) through <see cref=\"global::Tandem.Kernels.IKernelInvoker\"/>; out-of-range parameters fail with INVALID_ARGUMENT naming them. Register it with the library's registration extension, or construct it over the host's invoker.</remarks>\n");
        w.Append(CultureInfo.InvariantCulture, $"{access} sealed class {type}\n{{\n");
        w.Append(CultureInfo.InvariantCulture, $"    private readonly {K}IKernelInvoker _invoker;\n    private readonly {K}KernelContract _contract;\n\n");
        w.Append(CultureInfo.InvariantCulture, $"    /// <summary>A facade over <paramref name=\"invoker\"/>.</summary>\n");
        w.Append("    /// <param name=\"invoker\">The host's invoker.</param>\n");
        w.Append("    /// <exception cref=\"global::Tandem.TandemException\">NOT_FOUND when the host does not know the kernel; FAILED_PRECONDITION when it knows another contract than this code was generated from.</exception>\n");
        w.Append(CultureInfo.InvariantCulture, $"    public {type}({K}IKernelInvoker invoker)\n    {{\n");
        w.Append("        global::System.ArgumentNullException.ThrowIfNull(invoker);\n");
        w.Append("        _invoker = invoker;\n");
        w.Append(CultureInfo.InvariantCulture, $"        _contract = invoker.GetContract({constants}.Name);\n");
        w.Append(CultureInfo.InvariantCulture, $"        if (_contract.Hash != {constants}.Hash)\n        {{\n");
        w.Append(CultureInfo.InvariantCulture, $"            throw new global::Tandem.TandemException(global::Tandem.TandemStatusCode.FailedPrecondition, $\"the host knows '{{{constants}.Name}}' with descriptor hash {{_contract.Hash}}; this facade was generated from {{{constants}.Hash}}: regenerate it\", {constants}.Name);\n        }}\n    }}\n\n");
        w.Append("    /// <summary>The kernel's contract, as the host knows it.</summary>\n");
        w.Append(CultureInfo.InvariantCulture, $"    public {K}KernelContract Contract => _contract;\n\n");

        w.Append(CultureInfo.InvariantCulture, $"    /// <summary>Runs one call of '{Identifier.Xml(d.Name)}'; outputs are allocated from the contract's shapes.</summary>\n");
        foreach (var doc in docs)
        {
            w.Append("    ").Append(doc).Append('\n');
        }

        w.Append(CultureInfo.InvariantCulture, $"    /// <returns>The outputs, their dimensions and the backend that served the call.</returns>\n");
        w.Append("    /// <exception cref=\"global::Tandem.TandemException\">INVALID_ARGUMENT naming the tensor, parameter or dimension at fault; any failure of the backend.</exception>\n");
        w.Append(CultureInfo.InvariantCulture, $"    public global::System.Threading.Tasks.ValueTask<{result}> InvokeAsync({string.Join(", ", args)})\n    {{\n");
        foreach (var (spec, local) in inputs)
        {
            foreach (var symbol in symbols.Values.Where(s => s.DerivedFrom == local))
            {
                if (symbol.DerivedDivisor == "1")
                {
                    body.Append(CultureInfo.InvariantCulture, $"        var {symbol.Local} = (long){local}.Length;\n");
                    continue;
                }

                body.Append(CultureInfo.InvariantCulture, $"        var {symbol.Local}Row = {symbol.DerivedDivisor};\n");
                body.Append(CultureInfo.InvariantCulture, $"        if ({symbol.Local}Row <= 0 || {local}.Length % {symbol.Local}Row != 0)\n        {{\n");
                body.Append(CultureInfo.InvariantCulture, $"            throw new global::Tandem.TandemException(global::Tandem.TandemStatusCode.InvalidArgument, $\"tensor '{spec.Name}' holds {{{local}.Length}} values, which is not a whole number of rows of {{{symbol.Local}Row}}\", {constants}.Name);\n        }}\n\n");
                body.Append(CultureInfo.InvariantCulture, $"        var {symbol.Local} = {local}.Length / {symbol.Local}Row;\n");
            }
        }

        w.Append(body);
        var callArgs = fields.Select(f => f.Name switch
        {
            _ when optionalSizes.Any(o => o.Local == f.Name) => f.Name + "Given",
            _ when paramLocals.Any(p => p.Local == f.Name && p.Spec.Type == ParamType.Enum) => $"(long){f.Name}",
            _ => f.Name,
        });
        w.Append(CultureInfo.InvariantCulture, $"        return _invoker.InvokeAsync<Call, {result}>(_contract, {stateLocal ?? "null"}, new Call({string.Join(", ", callArgs)}), cancellationToken);\n    }}\n");

        if (d.Flags?.Streaming == true)
        {
            w.Append(CultureInfo.InvariantCulture, $"\n    /// <summary>Opens a stream of '{Identifier.Xml(d.Name)}': append chunks, then finalize once.</summary>\n");
            w.Append("    /// <param name=\"cancellationToken\">Cancels opening the stream.</param>\n");
            w.Append("    /// <returns>The open stream; dispose it when done.</returns>\n");
            w.Append(CultureInfo.InvariantCulture, $"    public global::System.Threading.Tasks.ValueTask<{K}KernelStream> OpenAsync({Ct} cancellationToken = default) => _invoker.OpenStreamAsync({constants}.Name, cancellationToken);\n");
        }

        WriteCall(w, d, result, fields, inputs, symbols, sizeLocals, paramLocals, outputs, resultDims);
        w.Append("}\n");
    }

    /// <summary>
    /// Dimensions of one input: a symbol already known is reused; of the new
    /// ones, all but the first become arguments and the first is derived
    /// from the data's length (the batch axis of a row-major tensor).
    /// </summary>
    private static void AddDims(TensorSpec input, string local, Dictionary<string, Symbol> symbols, Func<string, string> newLocal, List<string> args, List<string> docs, List<(string Type, string Name)> fields)
    {
        var fresh = input.Shape.Where(x => x.KindCase == Dim.KindOneofCase.Symbol && !symbols.ContainsKey(x.Symbol)).Select(x => x.Symbol).Distinct().ToList();
        for (var i = 1; i < fresh.Count; i++)
        {
            var dim = newLocal(fresh[i]);
            symbols[fresh[i]] = new Symbol(fresh[i], dim, null, "");
            args.Add($"long {dim}");
            docs.Add(Param(dim, $"Size of dimension '{fresh[i]}'."));
            fields.Add(("long", dim));
        }

        if (fresh.Count > 0)
        {
            var derived = fresh[0];
            var divisor = string.Join(" * ", input.Shape.Where(x => x.KindCase != Dim.KindOneofCase.Symbol || x.Symbol != derived)
                .Select(x => x.KindCase == Dim.KindOneofCase.Fixed ? x.Fixed.ToString(CultureInfo.InvariantCulture) + "L" : symbols[x.Symbol].Local));
            var dim = newLocal(derived);
            symbols[derived] = new Symbol(derived, dim, local, divisor.Length > 0 ? divisor : "1");
            fields.Add(("long", dim));
        }
    }

    private static void WriteCall(StringBuilder w, KernelDescriptor d, string result, List<(string Type, string Name)> fields, List<(TensorSpec Spec, string Local)> inputs, Dictionary<string, Symbol> symbols, List<(string Symbol, string Local)> sizes, List<(ParamSpec Spec, string Local)> parameters, List<(TensorSpec Spec, string Property)> outputs, List<(string Symbol, string Property, int Output, int Axis)> dims)
    {
        string Field(string local) => "_" + local.TrimStart('@');
        w.Append(CultureInfo.InvariantCulture, $"\n    private struct Call : {K}IKernelCall<{result}>\n    {{\n");
        foreach (var (type, name) in fields)
        {
            w.Append(CultureInfo.InvariantCulture, $"        private readonly {type} {Field(name)};\n");
        }

        foreach (var (spec, property) in outputs)
        {
            w.Append(CultureInfo.InvariantCulture, $"        private {ClrType(spec.Dtype)}[]? _out{property};\n");
        }

        foreach (var dim in dims)
        {
            w.Append(CultureInfo.InvariantCulture, $"        private long _dim{dim.Property};\n");
        }

        w.Append(CultureInfo.InvariantCulture, $"\n        public Call({string.Join(", ", fields.Select(f => $"{f.Type} {f.Name}"))})\n        {{\n");
        foreach (var (_, name) in fields)
        {
            w.Append(CultureInfo.InvariantCulture, $"            {Field(name)} = {name};\n");
        }

        w.Append("        }\n\n");
        w.Append(CultureInfo.InvariantCulture, $"        public readonly void Write(ref {K}KernelCallWriter writer)\n        {{\n");
        foreach (var (spec, local) in inputs)
        {
            var shape = spec.Shape.Select(x => x.KindCase == Dim.KindOneofCase.Fixed ? x.Fixed.ToString(CultureInfo.InvariantCulture) + "L" : Field(symbols[x.Symbol].Local));
            w.Append(CultureInfo.InvariantCulture, $"            writer.Input({Field(local)}{string.Concat(shape.Select(s => ", " + s))});\n");
        }

        foreach (var (_, local) in parameters)
        {
            w.Append(CultureInfo.InvariantCulture, $"            writer.Param({Field(local)});\n");
        }

        foreach (var (symbol, local) in sizes)
        {
            w.Append(CultureInfo.InvariantCulture, $"            writer.OutputSymbol({Identifier.Literal(symbol)}, {Field(local)});\n");
        }

        w.Append("        }\n\n");
        w.Append(CultureInfo.InvariantCulture, $"        public void BindOutputs(ref {K}KernelOutputBinder binder)\n        {{\n");
        for (var o = 0; o < outputs.Count; o++)
        {
            w.Append(CultureInfo.InvariantCulture, $"            _out{outputs[o].Property} = binder.Output<{ClrType(outputs[o].Spec.Dtype)}>({o});\n");
        }

        foreach (var dim in dims)
        {
            w.Append(CultureInfo.InvariantCulture, $"            _dim{dim.Property} = binder.Dim({dim.Output}, {dim.Axis});\n");
        }

        w.Append("        }\n\n");
        var resultArgs = outputs.Select(o => $"_out{o.Property}!").Concat(dims.Select(x => $"_dim{x.Property}")).Append("backend");
        w.Append(CultureInfo.InvariantCulture, $"        public readonly {result} Result(global::Tandem.BackendKind backend) => new({string.Join(", ", resultArgs)});\n    }}\n");
    }

    private static void WriteResult(StringBuilder w, KernelDescriptor d, string result, List<(TensorSpec Spec, string Property)> outputs, List<(string Symbol, string Property, int Output, int Axis)> dims, string access)
    {
        w.Append(CultureInfo.InvariantCulture, $"\n/// <summary>The outputs of one call of '{Identifier.Xml(d.Name)}': {Identifier.Xml(d.Outputs.Count > 0 ? string.Join(", ", d.Outputs.Select(o => o.Name + " " + Tensor(o))) : "none")}.</summary>\n");
        w.Append(CultureInfo.InvariantCulture, $"{access} readonly struct {result}\n{{\n");
        var parameters = outputs.Select(o => $"{ClrType(o.Spec.Dtype)}[] {Identifier.Camel(o.Property)}").Concat(dims.Select(x => $"long {Identifier.Camel(x.Property)}")).Append("global::Tandem.BackendKind backend");
        w.Append(CultureInfo.InvariantCulture, $"    internal {result}({string.Join(", ", parameters)})\n    {{\n");
        foreach (var (_, property) in outputs)
        {
            w.Append(CultureInfo.InvariantCulture, $"        {property} = {Identifier.Camel(property)};\n");
        }

        foreach (var dim in dims)
        {
            w.Append(CultureInfo.InvariantCulture, $"        {dim.Property} = {Identifier.Camel(dim.Property)};\n");
        }

        w.Append("        Backend = backend;\n    }\n");
        foreach (var (spec, property) in outputs)
        {
            w.Append(CultureInfo.InvariantCulture, $"\n    /// <summary>Output '{Identifier.Xml(spec.Name)}', {Identifier.Xml(Tensor(spec))}, row-major.</summary>\n");
            w.Append(CultureInfo.InvariantCulture, $"    public global::System.ReadOnlyMemory<{ClrType(spec.Dtype)}> {property} {{ get; }}\n");
        }

        foreach (var dim in dims)
        {
            w.Append(CultureInfo.InvariantCulture, $"\n    /// <summary>Size of dimension '{Identifier.Xml(dim.Symbol)}' of the outputs.</summary>\n");
            w.Append(CultureInfo.InvariantCulture, $"    public long {dim.Property} {{ get; }}\n");
        }

        w.Append("\n    /// <summary>The backend the call was routed to (a fallback, when one happened, is counted in <c>tandem.fallbacks</c>).</summary>\n");
        w.Append("    public global::Tandem.BackendKind Backend { get; }\n}\n");
    }

    /// <summary>A namer of a method's parameters: camel case, unique (a clash gets "Value" appended), never cancellationToken.</summary>
    private static Func<string, string> ParameterNames()
    {
        var used = new HashSet<string>(StringComparer.Ordinal) { "cancellationToken" };
        return name =>
        {
            var local = Identifier.Camel(name);
            while (!used.Add(local.TrimStart('@')))
            {
                local += "Value";
            }

            return local;
        };
    }

    private static void WriteStateKind(StringBuilder w, KernelSet set, StateKindDescriptor kind, GeneratorOptions options, string access)
    {
        var type = Identifier.Pascal(kind.Name) + "StateKind";
        var parameterName = ParameterNames();

        var required = new List<string>();
        var optional = new List<string>();
        var docs = new List<string>();
        var symbols = new Dictionary<string, Symbol>(StringComparer.Ordinal);
        var body = new StringBuilder();
        var tensors = new List<string>();
        foreach (var tensor in kind.Tensors)
        {
            var local = parameterName(tensor.Name);
            var isOptional = kind.OptionalTensors.Contains(tensor.Name);
            var memory = $"global::System.ReadOnlyMemory<{ClrType(tensor.Dtype)}>";
            (isOptional ? optional : required).Add(isOptional ? $"{memory}? {local} = null" : $"{memory} {local}");
            docs.Add(Param(local, $"Tensor '{tensor.Name}', {Tensor(tensor)}, row-major{(isOptional ? "; null to omit it" : "")}; copied into the state."));
            var dimArgs = new List<string>();
            var unusedFields = new List<(string, string)>();
            AddDims(tensor, local, symbols, parameterName, dimArgs, docs, unusedFields);
            required.AddRange(dimArgs);
            var data = isOptional ? $"{local}.GetValueOrDefault()" : local;
            foreach (var symbol in symbols.Values.Where(s => s.DerivedFrom == local))
            {
                body.Append(symbol.DerivedDivisor == "1"
                    ? $"        var {symbol.Local} = (long){data}.Length;\n"
                    : $"        var {symbol.Local} = {symbol.DerivedDivisor} > 0 ? {data}.Length / ({symbol.DerivedDivisor}) : 0L;\n");
            }

            var shape = string.Concat(tensor.Shape.Select(x => ", " + (x.KindCase == Dim.KindOneofCase.Fixed ? x.Fixed.ToString(CultureInfo.InvariantCulture) + "L" : symbols[x.Symbol].Local)));
            tensors.Add(isOptional
                ? $"{local} is {{ }} {local}Data ? {K}KernelTensor.Of({local}Data{shape}) : {K}KernelTensor.Absent"
                : $"{K}KernelTensor.Of({local}{shape})");
        }

        docs.Add(Param("cancellationToken", "Cancels the creation; nothing is kept."));
        var readers = set.Kernels.Where(k => k.StateKind == kind.Name).Select(k => k.Name).ToList();
        w.Append(CultureInfo.InvariantCulture, $"\n/// <summary>Builds states of kind '{Identifier.Xml(kind.Name)}'{(readers.Count > 0 ? ", read by " + Identifier.Xml(string.Join(", ", readers)) : "")}.</summary>\n");
        w.Append(CultureInfo.InvariantCulture, $"{access} sealed class {type}\n{{\n");
        w.Append(CultureInfo.InvariantCulture, $"    private readonly {K}IKernelInvoker _invoker;\n\n");
        w.Append("    /// <summary>A factory over <paramref name=\"invoker\"/>.</summary>\n    /// <param name=\"invoker\">The host's invoker.</param>\n");
        w.Append(CultureInfo.InvariantCulture, $"    public {type}({K}IKernelInvoker invoker)\n    {{\n        global::System.ArgumentNullException.ThrowIfNull(invoker);\n        _invoker = invoker;\n    }}\n\n");
        w.Append(CultureInfo.InvariantCulture, $"    /// <summary>Builds a '{Identifier.Xml(kind.Name)}' state on the backend serving the kernels that read it; dispose it to release it.</summary>\n");
        foreach (var doc in docs)
        {
            w.Append("    ").Append(doc).Append('\n');
        }

        w.Append("    /// <returns>The state, to pass to the kernels that read it.</returns>\n");
        w.Append("    /// <exception cref=\"global::Tandem.TandemException\">INVALID_ARGUMENT naming the tensor at fault; any failure of the backend.</exception>\n");
        var args = required.Concat(optional).Append($"{Ct} cancellationToken = default");
        w.Append(CultureInfo.InvariantCulture, $"    public global::System.Threading.Tasks.ValueTask<{K}KernelState> CreateAsync({string.Join(", ", args)})\n    {{\n");
        w.Append(body);
        w.Append(CultureInfo.InvariantCulture, $"        return _invoker.CreateStateAsync({options.ClassName}.StateKinds.{Identifier.Pascal(kind.Name)}.Name, new {K}KernelTensor[]\n        {{\n");
        foreach (var tensor in tensors)
        {
            w.Append(CultureInfo.InvariantCulture, $"            {tensor},\n");
        }

        w.Append("        }, cancellationToken);\n    }\n}\n");
    }

    private static void WriteRegistration(StringBuilder w, KernelSet set, GeneratorOptions options, string access)
    {
        var di = "global::Microsoft.Extensions.DependencyInjection";
        var library = options.Public ? options.KernelLibraryName(set.LibraryName) : null;
        w.Append(CultureInfo.InvariantCulture, $"\n/// <summary>Registers the typed facades of kernel library '{Identifier.Xml(set.LibraryName)}'.</summary>\n");
        w.Append(CultureInfo.InvariantCulture, $"{access} static class {options.ClassName}ServiceCollectionExtensions\n{{\n");
        w.Append(options.Public
            ? library is null
                ? "    /// <summary>Declares the library's contracts (AddKernelContracts) and registers its facades as singletons.</summary>\n"
                : "    /// <summary>Declares the library's contracts (AddKernelContracts), loads it in process beside libtandem.so (AddKernelLibrary) and registers its facades as singletons. Register the managed twins yourself (AddManagedKernel).</summary>\n"
            : "    /// <summary>Registers the library's facades as singletons (its contracts are the host's own).</summary>\n");
        w.Append("    /// <param name=\"services\">The services of a host that calls AddTandem.</param>\n");
        if (library is not null)
        {
            w.Append("    /// <param name=\"library\">The library to load in process: a name found next to the app (the default, the file this code was generated from) or a path; null loads none (the kernels are served by workers or twins only).</param>\n");
        }

        w.Append("    /// <returns><paramref name=\"services\"/>.</returns>\n");
        var parameters = library is null ? "" : $", string? library = {Identifier.Literal(library)}";
        w.Append(CultureInfo.InvariantCulture, $"    public static {di}.IServiceCollection Add{options.ClassName}(this {di}.IServiceCollection services{parameters})\n    {{\n");
        w.Append("        global::System.ArgumentNullException.ThrowIfNull(services);\n");
        if (options.Public)
        {
            w.Append(CultureInfo.InvariantCulture, $"        {di}.TandemServiceCollectionExtensions.AddKernelContracts(services, {options.ClassName}.Contracts);\n");
        }

        if (library is not null)
        {
            w.Append(CultureInfo.InvariantCulture, $"        if (library is not null)\n        {{\n            {di}.TandemServiceCollectionExtensions.AddKernelLibrary(services, library);\n        }}\n\n");
        }

        foreach (var name in set.Kernels.Select(k => Identifier.Pascal(k.Name) + "Kernel").Concat(set.StateKinds.Select(k => Identifier.Pascal(k.Name) + "StateKind")))
        {
            w.Append(CultureInfo.InvariantCulture, $"        {di}.Extensions.ServiceCollectionDescriptorExtensions.TryAddSingleton<{name}>(services);\n");
        }

        w.Append("        return services;\n    }\n}\n");
    }

    private static string Param(string local, string text) => $"/// <param name=\"{local.TrimStart('@')}\">{Identifier.Xml(text)}</param>";

    private static string Described(string description) => description.Length > 0 ? ": " + description : "";

    private static string ClrType(DType dtype) => dtype switch
    {
        DType.U8 => "byte",
        DType.I32 => "int",
        DType.I64 => "long",
        DType.F32 => "float",
        DType.F64 => "double",
        _ => throw new GeneratorException($"dtype {dtype} has no C# element type"),
    };

    private static string Tensor(TensorSpec t)
    {
        var dims = string.Join(", ", t.Shape.Select(d => d.KindCase == Dim.KindOneofCase.Fixed ? d.Fixed.ToString(CultureInfo.InvariantCulture) : d.Symbol));
        return $"{t.Dtype.ToString().ToLowerInvariant()}[{dims}]{(t.FiniteOnly ? " (finite)" : "")}";
    }
}
