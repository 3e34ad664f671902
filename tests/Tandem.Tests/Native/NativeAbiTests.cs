using System.Text;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;
using static Tandem.Tests.Native.NativeLibraryFixture;

namespace Tandem.Tests.Native;

/// <summary>Bad calls straight through the C ABI get specific errors and never crash the host.</summary>
public sealed unsafe class NativeAbiTests
{
    public NativeAbiTests() => NativeLibraryFixture.EnsureLoaded();

    [Fact]
    public void AbiVersion_MajorIsTheOneThisBuildSpeaks()
    {
        Assert.Equal(KernelContracts.AbiMajor, Lib.tandem_abi_version() >> 16);
    }

    [Fact]
    public void KernelFind_UnknownName_NotFoundListingKnownKernels()
    {
        var error = Assert.Throws<TandemException>(() => Runtime.Find("similarity.nope"));
        Assert.Equal(TandemStatusCode.NotFound, error.Code);
        Assert.Contains("similarity.topk", error.Message);
    }

    [Fact]
    public void KernelInvoke_NullKernel_InvalidArgument()
    {
        var error = NativeErrors.Take(Lib, Lib.tandem_kernel_invoke(0, 0, null, 0, null, 0, null, 0, null), null)!;
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("'kernel' is null", error.Message);
    }

    [Fact]
    public void KernelInvoke_NullDataWithLength_InvalidArgument()
    {
        using var collection = SmallCollection(out var state);
        var inputs = stackalloc NativeTensor[1];
        inputs[0] = NativeTensor.Create((float*)null, 8, NativeDType.F32, 1, 8);

        var error = InvokeTopK(state, inputs, 1, k: 2, outputK: 2);

        Assert.Equal(TandemStatusCode.InvalidArgument, error!.Code);
        Assert.Contains("null", error.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void KernelInvoke_OutputBufferOfWrongLength_InvalidArgument(int outputK)
    {
        using var collection = SmallCollection(out var state);
        var query = new float[8];
        query[0] = 1;
        fixed (float* q = query)
        {
            var inputs = stackalloc NativeTensor[1];
            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, 1, 8);
            var error = InvokeTopK(state, inputs, 1, k: 2, outputK: outputK);
            Assert.Equal(TandemStatusCode.InvalidArgument, error!.Code);
            Assert.Contains("output 'ids'", error.Message);
        }
    }

    [Fact]
    public void KernelInvoke_BadHeaders_InvalidArgumentNamingTheProblem()
    {
        using var collection = SmallCollection(out var state);
        var query = new float[8];
        fixed (float* q = query)
        {
            var inputs = stackalloc NativeTensor[1];
            inputs[0] = NativeTensor.Create(q, 8, 99, 1, 8);
            Assert.Contains("unknown dtype code 99", InvokeTopK(state, inputs, 1, 2, 2)!.Message);

            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, 1, 8);
            inputs[0].Rank = 5;
            Assert.Contains("rank 5", InvokeTopK(state, inputs, 1, 2, 2)!.Message);

            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, -1, 8);
            Assert.Contains("negative size", InvokeTopK(state, inputs, 1, 2, 2)!.Message);

            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F64, 1, 4);
            Assert.Contains("must be f32", InvokeTopK(state, inputs, 1, 2, 2)!.Message);

            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, 1, 8);
            Assert.Contains("9 inputs given", InvokeTopK(state, inputs, 9, 2, 2)!.Message);
        }
    }

    [Fact]
    public void KernelInvoke_OutputsOverlapping_InvalidArgument()
    {
        using var collection = SmallCollection(out var state);
        var query = new float[8];
        query[0] = 1;
        var shared = new long[4];
        var topK = Runtime.Find(KernelContracts.SimilarityTopK);
        var parameters = stackalloc NativeParam[2];
        parameters[0] = NativeParam.Int(2);
        parameters[1] = NativeParam.Int(0);
        fixed (float* q = query)
        fixed (long* ids = shared)
        {
            var inputs = stackalloc NativeTensor[1];
            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, 1, 8);
            var outputs = stackalloc NativeTensor[2];
            outputs[0] = NativeTensor.Create(ids, 2, NativeDType.I64, 1, 2);
            // Scores written over the ids: refused before the kernel runs.
            outputs[1] = NativeTensor.Create((float*)(ids + 1), 2, NativeDType.F32, 1, 2);
            var error = NativeErrors.Take(Lib, Lib.tandem_kernel_invoke(topK, state, inputs, 1, parameters, 2, outputs, 2, null), null)!;
            Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
            Assert.Contains("overlaps", error.Message);
        }
    }

    [Fact]
    public void Streams_BadArgumentsThroughTheAbi_SpecificErrors()
    {
        var blake3 = Runtime.Find(KernelContracts.HashBlake3);
        ulong handle;
        Assert.Null(NativeErrors.Take(Lib, Lib.tandem_stream_open(blake3, &handle), null));
        Assert.Contains("'data' is null", NativeErrors.Take(Lib, Lib.tandem_stream_update(handle, null, 5), null)!.Message);
        Assert.Null(NativeErrors.Take(Lib, Lib.tandem_stream_update(handle, null, 0), null));
        Assert.Contains("'out' is null", NativeErrors.Take(Lib, Lib.tandem_stream_finalize(handle, null, 32), null)!.Message);
        var digest = new byte[32];
        fixed (byte* d = digest)
        {
            Assert.Equal(TandemStatusCode.InvalidArgument, NativeErrors.Take(Lib, Lib.tandem_stream_finalize(handle, d, 0), null)!.Code);
        }

        Assert.Null(NativeErrors.Take(Lib, Lib.tandem_stream_free(handle), null));
        Assert.Equal(TandemStatusCode.NotFound, NativeErrors.Take(Lib, Lib.tandem_stream_free(handle), null)!.Code);
        Assert.Equal(TandemStatusCode.NotFound, NativeErrors.Take(Lib, Lib.tandem_stream_update(0, null, 0), null)!.Code);
        var noop = Runtime.Find(KernelContracts.DiagnosticsNoop);
        Assert.Equal(TandemStatusCode.Unimplemented, NativeErrors.Take(Lib, Lib.tandem_stream_open(noop, &handle), null)!.Code);
        Assert.Equal(TandemStatusCode.InvalidArgument, NativeErrors.Take(Lib, Lib.tandem_stream_open(0, &handle), null)!.Code);
    }

    [Fact]
    public void KernelInvoke_WithoutState_InvalidArgument()
    {
        var query = new float[8];
        fixed (float* q = query)
        {
            var inputs = stackalloc NativeTensor[1];
            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, 1, 8);
            var error = InvokeTopK(0, inputs, 1, 2, 2);
            Assert.Contains("needs a 'vector_collection' state", error!.Message);
        }
    }

    [Fact]
    public void StateCreate_NullOutAndUnknownKind_SpecificErrors()
    {
        var kind = Encoding.UTF8.GetBytes("vector_collection");
        fixed (byte* k = kind)
        {
            Assert.Contains("'out' is null", NativeErrors.Take(Lib, Lib.tandem_state_create(k, (nuint)kind.Length, null, 0, null), null)!.Message);
        }

        var unknown = Encoding.UTF8.GetBytes("tree");
        nint state;
        fixed (byte* k = unknown)
        {
            var error = NativeErrors.Take(Lib, Lib.tandem_state_create(k, (nuint)unknown.Length, null, 0, &state), null)!;
            Assert.Equal(TandemStatusCode.NotFound, error.Code);
            Assert.Equal(0, state);
        }
    }

    [Fact]
    public void Frees_OfNullOrAlreadyFreed_AreHarmless()
    {
        Lib.tandem_error_free(0);
        Lib.tandem_state_free(0);
        Lib.tandem_cancel_free(0);
        Lib.tandem_buffer_free(null);
        NativeBuffer buffer;
        Assert.Equal(0, Lib.tandem_kernels_describe(&buffer));
        Lib.tandem_buffer_free(&buffer);
        Lib.tandem_buffer_free(&buffer);
        Assert.True(buffer.Data == null);
    }

    [Fact]
    public void KernelInvoke_PanicInsideKernel_InternalWithCorrelationIdAndLibraryKeepsServing()
    {
        var panic = Runtime.Find(KernelContracts.DiagnosticsPanic);
        var bytes = new byte[16];
        fixed (byte* b = bytes)
        {
            var inputs = stackalloc NativeTensor[1];
            inputs[0] = NativeTensor.Create(b, 16, NativeDType.U8, 16);
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var error = NativeErrors.Take(Lib, Lib.tandem_kernel_invoke(panic, 0, inputs, 1, null, 0, null, 0, null), KernelContracts.DiagnosticsPanic)!;
                Assert.Equal(TandemStatusCode.Internal, error.Code);
                Assert.NotNull(error.CorrelationId);
                Assert.DoesNotContain(".rs", error.Message);
            }
        }

        // Still serving: a real kernel call succeeds afterwards.
        using var collection = SmallCollection(out var state);
        var query = new float[8];
        query[1] = 1;
        fixed (float* q = query)
        {
            var inputs = stackalloc NativeTensor[1];
            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, 1, 8);
            Assert.Null(InvokeTopK(state, inputs, 1, 2, 2));
        }
    }

    [Fact]
    public void KernelSubmit_NullCallback_InvalidArgumentAndNoCallback()
    {
        var noop = Runtime.Find(KernelContracts.DiagnosticsNoop);
        var error = NativeErrors.Take(Lib, Lib.tandem_kernel_submit(noop, 0, null, 0, null, 0, null, 0, null, null, 0), null)!;
        Assert.Contains("'callback' is null", error.Message);
    }

    [Fact]
    public void KernelInvoke_DeadlineAlreadyPassed_DeadlineExceeded()
    {
        using var collection = SmallCollection(out var state);
        var query = new float[8];
        query[0] = 1;
        fixed (float* q = query)
        {
            var inputs = stackalloc NativeTensor[1];
            inputs[0] = NativeTensor.Create(q, 8, NativeDType.F32, 1, 8);
            var context = new NativeCallContext { TimeoutNs = 1 };
            var error = InvokeTopK(state, inputs, 1, 2, 2, &context)!;
            Assert.Equal(TandemStatusCode.DeadlineExceeded, error.Code);
            Assert.True(error.IsRetryable);
        }
    }

    [Fact]
    public void CheckAbi_DifferentMajor_FailedPreconditionNamingBothVersions()
    {
        Assert.Null(NativeRuntime.CheckAbi((1u << 16) | 7));
        var error = NativeRuntime.CheckAbi(2u << 16)!;
        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("ABI 2.0", error.Message);
        Assert.Contains("needs ABI 1.x", error.Message);
    }

    private static NativeStateHandle SmallCollection(out nint state)
    {
        var vectors = new float[4 * 8];
        for (var i = 0; i < vectors.Length; i++)
        {
            vectors[i] = i % 5;
        }

        var kind = Encoding.UTF8.GetBytes("vector_collection");
        var tensors = stackalloc NativeTensor[2];
        nint created;
        fixed (float* v = vectors)
        fixed (byte* k = kind)
        {
            tensors[0] = NativeTensor.Create(v, vectors.Length, NativeDType.F32, 4, 8);
            NativeErrors.ThrowIfError(Lib, Lib.tandem_state_create(k, (nuint)kind.Length, tensors, 2, &created), null);
        }

        state = created;
        return new NativeStateHandle(Lib, created);
    }

    private static TandemException? InvokeTopK(nint state, NativeTensor* inputs, int inputCount, int k, int outputK, NativeCallContext* context = null)
    {
        var topK = Runtime.Find(KernelContracts.SimilarityTopK);
        var ids = new long[outputK];
        var scores = new float[outputK];
        var parameters = stackalloc NativeParam[2];
        parameters[0] = NativeParam.Int(k);
        parameters[1] = NativeParam.Int(0);
        var outputs = stackalloc NativeTensor[2];
        fixed (long* i = ids)
        fixed (float* s = scores)
        {
            outputs[0] = NativeTensor.Create(i, outputK, NativeDType.I64, 1, outputK);
            outputs[1] = NativeTensor.Create(s, outputK, NativeDType.F32, 1, outputK);
            return NativeErrors.Take(Lib, Lib.tandem_kernel_invoke(topK, state, inputs, (nuint)inputCount, parameters, 2, outputs, 2, context), KernelContracts.SimilarityTopK);
        }
    }
}

/// <summary>Asynchronous submission through the C ABI.</summary>
public sealed class NativeSubmitTests
{
    public NativeSubmitTests() => NativeLibraryFixture.EnsureLoaded();

    [Fact]
    public async Task KernelSubmit_PanicInsideKernel_CompletesWithInternal()
    {
        var panic = new NativeKernel(Lib, KernelContracts.DiagnosticsPanic, Runtime.Find(KernelContracts.DiagnosticsPanic));
        var bytes = new byte[4];
        using var pin = bytes.AsMemory().Pin();
        var error = await Assert.ThrowsAsync<TandemException>(() => SubmitPanic(panic, pin).AsTask());
        Assert.Equal(TandemStatusCode.Internal, error.Code);
        Assert.Equal(BackendKind.Native, error.Backend);
    }

    private static unsafe ValueTask SubmitPanic(NativeKernel panic, System.Buffers.MemoryHandle pin)
    {
        Span<NativeTensor> inputs = stackalloc NativeTensor[1];
        inputs[0] = NativeTensor.Create((byte*)pin.Pointer, 4, NativeDType.U8, 4);
        var context = default(NativeCallContext);
        return panic.Submit(0, inputs, [], [], ref context);
    }
}
