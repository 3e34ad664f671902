using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

// Blittable mirrors of the structs in native/sdk/include/tandem.h. Layouts
// are asserted against tandem_layout_table() by NativeLayoutTests.

[InlineArray(4)]
internal struct NativeShape
{
    private long _element0;
}

[InlineArray(16)]
internal struct TraceIdBytes
{
    private byte _element0;
}

[InlineArray(8)]
internal struct SpanIdBytes
{
    private byte _element0;
}

/// <summary>tandem_tensor_t and tandem_tensor_mut_t (same layout).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeTensor
{
    public void* Data;
    public ulong ByteLength;
    public NativeShape Shape;
    public uint Rank;
    public uint DType;

    public static NativeTensor Create<T>(T* data, int length, uint dtype, long dim0)
        where T : unmanaged
    {
        var tensor = new NativeTensor { Data = data, ByteLength = (ulong)length * (ulong)sizeof(T), Rank = 1, DType = dtype };
        tensor.Shape[0] = dim0;
        return tensor;
    }

    public static NativeTensor Create<T>(T* data, int length, uint dtype, long dim0, long dim1)
        where T : unmanaged
    {
        var tensor = new NativeTensor { Data = data, ByteLength = (ulong)length * (ulong)sizeof(T), Rank = 2, DType = dtype };
        tensor.Shape[0] = dim0;
        tensor.Shape[1] = dim1;
        return tensor;
    }
}

/// <summary>tandem_slice_t and tandem_slice_mut_t (same layout): one buffer of a prepared call's repeat.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeSlice
{
    public void* Data;
    public ulong ByteLength;
}

/// <summary>tandem_param_t.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeParam
{
    public const uint KindInt = 1;
    public const uint KindFloat = 2;

    public uint Kind;
    public uint Reserved;
    public long IntValue;
    public double FloatValue;

    public static NativeParam Int(long value) => new() { Kind = KindInt, IntValue = value };
}

/// <summary>tandem_call_context_t.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeCallContext
{
    public ulong TimeoutNs;
    public nint Cancel;
    public TraceIdBytes TraceId;
    public SpanIdBytes SpanId;
    public uint Flags;
    public uint Reserved;
}

/// <summary>tandem_buffer_t.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeBuffer
{
    public byte* Data;
    public ulong Length;
    public ulong Capacity;
}

/// <summary>tandem_runtime_info_t.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeRuntimeInfo
{
    public uint AbiVersion;
    public uint ComputeThreads;
    public uint MaxPending;
    public uint Isa;
}

/// <summary>Element type codes (tandem.v1.DType).</summary>
internal static class NativeDType
{
    public const uint U8 = 1;
    public const uint I32 = 2;
    public const uint I64 = 3;
    public const uint F32 = 4;
    public const uint F64 = 5;
}
