using System.Runtime.CompilerServices;

namespace Tandem.Internal.Native;

[InlineArray(4)]
internal struct NativeTensorArray
{
    private NativeTensor _element0;
}

[InlineArray(4)]
internal struct NativeParamArray
{
    private NativeParam _element0;
}

/// <summary>
/// The argument headers of one kernel call, by value, so an async method can
/// hold them across an await (the data they point to stays pinned by the
/// caller until the call completes).
/// </summary>
internal struct NativeCallArgs
{
    public NativeTensorArray Inputs;
    public int InputCount;
    public NativeTensorArray Outputs;
    public int OutputCount;
    public NativeParamArray Params;
    public int ParamCount;

    public const int Capacity = 4;

    /// <summary>Most axes of a tensor (tandem.h's TANDEM_MAX_RANK).</summary>
    public const int MaxRank = 4;

    public void AddInput(NativeTensor tensor)
    {
        EnsureRoom(InputCount, "inputs");
        Inputs[InputCount++] = tensor;
    }

    public void AddOutput(NativeTensor tensor)
    {
        EnsureRoom(OutputCount, "outputs");
        Outputs[OutputCount++] = tensor;
    }

    public void AddParam(NativeParam param)
    {
        EnsureRoom(ParamCount, "parameters");
        Params[ParamCount++] = param;
    }

    public static void EnsureRoom(int count, string what)
    {
        if (count >= Capacity)
        {
            throw new InvalidOperationException($"a kernel call takes at most {Capacity} {what}");
        }
    }
}
