using System.Runtime.InteropServices;
using Tandem.Internal.Native;
using static Tandem.Tests.Native.NativeLibraryFixture;

namespace Tandem.Tests.Native;

/// <summary>The C# mirrors of the C ABI structs agree with Rust's layouts, field by field.</summary>
public sealed unsafe class NativeLayoutTests
{
    private static readonly string[] StructNames = ["tandem_tensor_t", "tandem_tensor_mut_t", "tandem_param_t", "tandem_call_context_t", "tandem_buffer_t", "tandem_runtime_info_t", "tandem_slice_t", "tandem_slice_mut_t"];

    public static TheoryData<string> Structs() => new(StructNames);

    [Fact]
    public void LayoutTable_EveryRustStruct_HasACase()
    {
        var checkedNames = StructNames.ToHashSet();

        Assert.Equal(checkedNames, RustLayouts().Keys.ToHashSet());
    }

    [Theory]
    [MemberData(nameof(Structs))]
    public void LayoutTable_EveryStruct_MatchesCSharpMirror(string name)
    {
        var rust = RustLayouts()[name];
        var csharp = CSharpLayout(name);

        Assert.Equal(rust, csharp);
    }

    private static Dictionary<string, Dictionary<string, int>> RustLayouts()
    {
        NativeLibraryFixture.EnsureLoaded();
        var table = Marshal.PtrToStringUTF8(Lib.tandem_layout_table())!;
        var layouts = new Dictionary<string, Dictionary<string, int>>();
        foreach (var line in table.Split('\n'))
        {
            var parts = line.Split(' ');
            layouts[parts[0]] = parts.Skip(1).Select(p => p.Split('=')).ToDictionary(kv => kv[0], kv => int.Parse(kv[1]));
        }

        return layouts;
    }

    private static Dictionary<string, int> CSharpLayout(string name)
    {
        static Dictionary<string, int> Layout(int size, int align, params (string Field, int Offset)[] fields)
        {
            var d = new Dictionary<string, int> { ["size"] = size, ["align"] = align };
            foreach (var (field, offset) in fields)
            {
                d[field] = offset;
            }

            return d;
        }

        static int Offset<T>(T* s, void* field)
            where T : unmanaged => (int)((byte*)field - (byte*)s);

        NativeTensor t = default;
        NativeParam p = default;
        NativeCallContext c = default;
        NativeBuffer b = default;
        NativeRuntimeInfo r = default;
        NativeSlice sl = default;
        return name switch
        {
            "tandem_tensor_t" or "tandem_tensor_mut_t" => Layout(sizeof(NativeTensor), 8, ("data", Offset(&t, &t.Data)), ("byte_len", Offset(&t, &t.ByteLength)), ("shape", Offset(&t, &t.Shape)), ("rank", Offset(&t, &t.Rank)), ("dtype", Offset(&t, &t.DType))),
            "tandem_param_t" => Layout(sizeof(NativeParam), 8, ("kind", Offset(&p, &p.Kind)), ("reserved", Offset(&p, &p.Reserved)), ("int_value", Offset(&p, &p.IntValue)), ("float_value", Offset(&p, &p.FloatValue))),
            "tandem_call_context_t" => Layout(sizeof(NativeCallContext), 8, ("timeout_ns", Offset(&c, &c.TimeoutNs)), ("cancel", Offset(&c, &c.Cancel)), ("trace_id", Offset(&c, &c.TraceId)), ("span_id", Offset(&c, &c.SpanId)), ("flags", Offset(&c, &c.Flags)), ("reserved", Offset(&c, &c.Reserved))),
            "tandem_buffer_t" => Layout(sizeof(NativeBuffer), 8, ("data", Offset(&b, &b.Data)), ("len", Offset(&b, &b.Length)), ("capacity", Offset(&b, &b.Capacity))),
            "tandem_runtime_info_t" => Layout(sizeof(NativeRuntimeInfo), 4, ("abi_version", Offset(&r, &r.AbiVersion)), ("compute_threads", Offset(&r, &r.ComputeThreads)), ("max_pending", Offset(&r, &r.MaxPending)), ("isa", Offset(&r, &r.Isa))),
            "tandem_slice_t" or "tandem_slice_mut_t" => Layout(sizeof(NativeSlice), 8, ("data", Offset(&sl, &sl.Data)), ("byte_len", Offset(&sl, &sl.ByteLength))),
            _ => throw new ArgumentOutOfRangeException(nameof(name)),
        };
    }
}
