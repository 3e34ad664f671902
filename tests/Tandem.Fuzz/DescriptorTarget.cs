using Google.Protobuf;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Kernels;

namespace Tandem.Fuzz;

/// <summary>
/// The descriptor decoder: bytes as an encoded <c>tandem.v1.KernelSet</c>
/// through <see cref="KernelContractSet.Parse(ReadOnlySpan{byte})"/>
/// (FormatException is its refusal), then every contract property, and the
/// check the native host makes when it attaches a library: each reference
/// contract against the decoded descriptor of the same name, both ways.
/// </summary>
internal sealed class DescriptorTarget : IFuzzTarget
{
    public string Name => "descriptor";

    public void Run(byte[] input)
    {
        KernelContractSet set;
        try
        {
            set = KernelContractSet.Parse(input);
        }
        catch (FormatException)
        {
            return;
        }

        foreach (var contract in set.Kernels)
        {
            if (!ReferenceEquals(set[contract.Name], contract) && set.Kernels.Count(k => k.Name == contract.Name) == 1)
            {
                throw new InvalidOperationException($"lookup of '{contract.Name}' returned another contract");
            }

            if (contract.Hash.Length != 32 || !contract.Hash.All(char.IsAsciiHexDigitLower))
            {
                throw new InvalidOperationException($"hash '{contract.Hash}' is not 16 bytes of lowercase hex");
            }

            _ = (contract.Version, contract.Summary, contract.Library, contract.Flags, contract.StateKind?.Name);
            foreach (var tensor in contract.Inputs.Concat(contract.Outputs))
            {
                _ = (tensor.Name, tensor.DType, tensor.Shape.Count, tensor.FiniteOnly);
            }

            foreach (var param in contract.Params)
            {
                _ = param.Name;
            }

            _ = (contract.Limits.Count, contract.OutputSymbols.Count);
        }

        foreach (var kind in set.StateKinds)
        {
            _ = (kind.Name, kind.Tensors.Count, kind.OptionalTensors.Count);
        }

        var decoded = KernelSet.Parser.ParseFrom(input);
        foreach (var expected in KernelContracts.All)
        {
            var actual = decoded.Kernels.LastOrDefault(k => k.Name == expected.Name);
            _ = KernelContracts.Difference(expected, actual);
            if (actual is not null)
            {
                _ = KernelContracts.Difference(actual, expected);
                _ = KernelContracts.HashOf(actual, decoded);
            }
        }

        // Encoding normalises once (proto3 drops a field equal to its
        // default, and -0.0 counts as 0, as prost does on the Rust side:
        // regressions/descriptor/negative-zero-default), and is stable after that.
        var normalised = KernelSet.Parser.ParseFrom(decoded.ToByteArray());
        if (!KernelSet.Parser.ParseFrom(normalised.ToByteArray()).Equals(normalised))
        {
            throw new InvalidOperationException("the KernelSet does not round-trip");
        }
    }
}
