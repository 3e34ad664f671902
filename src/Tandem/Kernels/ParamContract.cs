using Tandem.Contracts.V1;

namespace Tandem.Kernels;

/// <summary>How a parameter's value is read.</summary>
public enum ParamKind
{
    Int = 1,
    Float = 2,
    Bool = 3,
    /// <summary>An integer selecting one of <see cref="ParamContract.Choices"/> by index.</summary>
    Enum = 4,
}

/// <summary>A parameter of a kernel contract, with its inclusive range and default.</summary>
public sealed class ParamContract
{
    internal ParamContract(ParamSpec spec, int index)
    {
        Name = spec.Name;
        Index = index;
        Kind = (ParamKind)spec.Type;
        Min = spec.Min;
        Max = spec.Max;
        Default = spec.DefaultValue;
        Choices = [.. spec.Choices];
    }

    public string Name { get; }

    /// <summary>Position in call order.</summary>
    public int Index { get; }

    public ParamKind Kind { get; }

    public double Min { get; }

    public double Max { get; }

    /// <summary>The value a call that does not set the parameter gets.</summary>
    public double Default { get; }

    /// <summary>The names an <see cref="ParamKind.Enum"/> parameter selects from (empty for other kinds).</summary>
    public IReadOnlyList<string> Choices { get; }
}
