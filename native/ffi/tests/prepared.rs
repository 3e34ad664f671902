//! Prepared calls through the C ABI of libtandem (`tandem_kernel_prepare`,
//! `tandem_prepared_invoke`, `tandem_prepared_free`): the same results as an
//! unprepared call, bit for bit, and every argument a repeat can get wrong
//! refused with the code and message an unprepared call would give.

mod common;

use common::{find, ok, take, tensor, tensor_mut};
use std::ptr::{null, null_mut};
use tandem::*;

fn int(value: i64) -> tandem_param_t {
    tandem_param_t { kind: TANDEM_PARAM_INT, reserved: 0, int_value: value, float_value: 0.0 }
}

/// Two at-the-money calls, priced with `paths` paths.
struct Pricing {
    options: Vec<f64>,
    keys: Vec<i64>,
    params: [tandem_param_t; 3],
}

impl Pricing {
    fn new(paths: i64) -> Pricing {
        Pricing {
            options: [100.0, 100.0, 0.01, 0.2, 1.0, 1.0, 90.0, 100.0, 0.02, 0.3, 0.5, 0.0].to_vec(),
            keys: vec![0, 1],
            params: [int(paths), int(7), int(0)],
        }
    }

    fn inputs(&self) -> [tandem_tensor_t; 2] {
        [tensor(&self.options, &[2, 6], TANDEM_DTYPE_F64), tensor(&self.keys, &[2], TANDEM_DTYPE_I64)]
    }

    fn prepare(&self) -> Result<*mut tandem_prepared_t, (i32, String)> {
        let (mut price, mut stderr) = ([0f64; 2], [0f64; 2]);
        let outputs = [tensor_mut(&mut price, &[2], TANDEM_DTYPE_F64), tensor_mut(&mut stderr, &[2], TANDEM_DTYPE_F64)];
        let inputs = self.inputs();
        let mut prepared = null_mut();
        // SAFETY: live arrays and buffers for the call; `prepared` is writable.
        let error = unsafe {
            tandem_kernel_prepare(
                find("montecarlo.european"),
                inputs.as_ptr(),
                2,
                self.params.as_ptr(),
                3,
                outputs.as_ptr(),
                2,
                &mut prepared,
            )
        };
        match take(error) {
            None => Ok(prepared),
            Some(refusal) => {
                assert!(prepared.is_null(), "a refused preparation wrote a handle");
                Err(refusal)
            }
        }
    }

    /// Prices through the unprepared entry point.
    fn unprepared(&self) -> [f64; 4] {
        let (mut price, mut stderr) = ([0f64; 2], [0f64; 2]);
        let outputs = [tensor_mut(&mut price, &[2], TANDEM_DTYPE_F64), tensor_mut(&mut stderr, &[2], TANDEM_DTYPE_F64)];
        let inputs = self.inputs();
        // SAFETY: live arrays and buffers for the call.
        ok(unsafe {
            tandem_kernel_invoke(
                find("montecarlo.european"),
                null(),
                inputs.as_ptr(),
                2,
                self.params.as_ptr(),
                3,
                outputs.as_ptr(),
                2,
                null(),
            )
        });
        [price[0], price[1], stderr[0], stderr[1]]
    }
}

fn slice<T>(data: &[T]) -> tandem_slice_t {
    tandem_slice_t { data: data.as_ptr().cast(), byte_len: std::mem::size_of_val(data) as u64 }
}

fn slice_mut<T>(data: &mut [T]) -> tandem_slice_mut_t {
    tandem_slice_mut_t { data: data.as_mut_ptr().cast(), byte_len: std::mem::size_of_val(data) as u64 }
}

/// Invokes a prepared call with these buffers, at the prepared row count.
fn invoke(
    prepared: *const tandem_prepared_t,
    state: *const tandem_state_t,
    inputs: &[tandem_slice_t],
    outputs: &[tandem_slice_mut_t],
) -> Option<(i32, String)> {
    invoke_rows(prepared, state, TANDEM_ROWS_AS_PREPARED, inputs, outputs)
}

fn invoke_rows(
    prepared: *const tandem_prepared_t,
    state: *const tandem_state_t,
    rows: u64,
    inputs: &[tandem_slice_t],
    outputs: &[tandem_slice_mut_t],
) -> Option<(i32, String)> {
    // SAFETY: the buffers are live for the call or deliberately wrong in
    // ways the library must refuse before touching them.
    take(unsafe {
        tandem_prepared_invoke(
            prepared,
            state,
            rows,
            inputs.as_ptr(),
            inputs.len(),
            outputs.as_ptr(),
            outputs.len(),
            null(),
        )
    })
}

#[test]
fn a_prepared_call_gives_the_unprepared_result_bit_for_bit_on_new_data() {
    let mut pricing = Pricing::new(20_000);
    let prepared = pricing.prepare().unwrap();
    for spot in [100.0, 120.0, 80.0] {
        pricing.options[0] = spot;
        let expected = pricing.unprepared();
        let (mut price, mut stderr) = ([0f64; 2], [0f64; 2]);
        let got = invoke(
            prepared,
            null(),
            &[slice(&pricing.options), slice(&pricing.keys)],
            &[slice_mut(&mut price), slice_mut(&mut stderr)],
        );
        assert_eq!(got, None);
        assert_eq!([price[0], price[1], stderr[0], stderr[1]].map(f64::to_bits), expected.map(f64::to_bits));
    }
    // SAFETY: from tandem_kernel_prepare, freed once; null is ignored.
    unsafe {
        tandem_prepared_free(prepared);
        tandem_prepared_free(null_mut());
    }
}

#[test]
fn preparation_refuses_what_an_invoke_would_with_the_same_message() {
    let over = Pricing::new(10_000_000_000);
    let (code, message) = over.prepare().unwrap_err();
    assert_eq!(code, 3, "{message}"); // the paths parameter's range comes before the work bound
    assert!(message.contains("paths"), "{message}");
    let mut wide = Pricing::new(1_000);
    wide.keys.push(2);
    let inputs = [tensor(&wide.options, &[2, 6], TANDEM_DTYPE_F64), tensor(&wide.keys, &[3], TANDEM_DTYPE_I64)];
    let mut prepared = null_mut();
    // SAFETY: live arrays; no outputs.
    let error = unsafe {
        tandem_kernel_prepare(
            find("montecarlo.european"),
            inputs.as_ptr(),
            2,
            wide.params.as_ptr(),
            3,
            null(),
            0,
            &mut prepared,
        )
    };
    let (code, message) = take(error).unwrap();
    assert_eq!(code, 3, "{message}");
    assert!(prepared.is_null());
    // SAFETY: null kernel and null out are refused before anything is read.
    let (code, _) =
        take(unsafe { tandem_kernel_prepare(null(), null(), 0, null(), 0, null(), 0, &mut prepared) }).unwrap();
    assert_eq!(code, 3);
    let (code, message) =
        take(unsafe { tandem_kernel_prepare(find("diagnostics.noop"), null(), 0, null(), 0, null(), 0, null_mut()) })
            .unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("'out' is null"), "{message}");
}

#[test]
fn a_repeat_with_wrong_counts_lengths_null_data_or_overlaps_is_refused_and_nothing_is_written() {
    let pricing = Pricing::new(1_000);
    let prepared = pricing.prepare().unwrap();
    let (mut price, mut stderr) = ([-1f64; 2], [-1f64; 2]);
    let inputs = [slice(&pricing.options), slice(&pricing.keys)];
    let outputs = [slice_mut(&mut price), slice_mut(&mut stderr)];
    let refused = |inputs: &[tandem_slice_t], outputs: &[tandem_slice_mut_t], expected: &str| {
        let (code, message) = invoke(prepared, null(), inputs, outputs).expect(expected);
        assert_eq!(code, 3, "{message}");
        assert!(message.contains(expected), "{message}");
    };

    refused(&inputs[..1], &outputs, "takes 2 input(s) and 2 output(s), got 1 and 2");
    refused(&[inputs[0], slice(&pricing.keys[..1])], &outputs, "input 1 ('row_keys') of the prepared call of kernel 'montecarlo.european' is 8 bytes; its prepared shape needs 16");
    refused(
        &[inputs[0], tandem_slice_t { data: null(), byte_len: 16 }],
        &outputs,
        "input 1 data is null but its length is 16",
    );
    refused(&inputs, &[outputs[0], tandem_slice_mut_t { data: null_mut(), byte_len: 16 }], "output 1 data is null");
    refused(&inputs, &[outputs[0], outputs[0]], "output 0 overlaps output 1");
    refused(
        &inputs,
        &[tandem_slice_mut_t { data: inputs[0].data.cast_mut(), byte_len: 16 }, outputs[1]],
        "output 0 overlaps input 0",
    );
    refused(
        &[inputs[0], tandem_slice_t { data: inputs[1].data, byte_len: u64::MAX }],
        &outputs,
        "output 0 overlaps input 1",
    );

    // SAFETY: a null array with a non-zero count is refused before it is read.
    let (code, message) = take(unsafe {
        tandem_prepared_invoke(prepared, null(), TANDEM_ROWS_AS_PREPARED, null(), 2, outputs.as_ptr(), 2, null())
    })
    .unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("the input array is null but its count is 2"), "{message}");
    let (code, _) = invoke(null(), null(), &inputs, &outputs).unwrap();
    assert_eq!(code, 3);
    assert_eq!([price, stderr], [[-1.0; 2]; 2], "a refused call wrote its outputs");
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}

#[test]
fn a_batchable_prepared_call_takes_another_row_count_within_the_work_bound() {
    let pricing = Pricing::new(1_000_000);
    let prepared = pricing.prepare().unwrap();
    // SAFETY: a live prepared call.
    assert_eq!(unsafe { tandem_prepared_varies_rows(prepared) }, 1);
    // Three rows: the first two as prepared, and one more.
    let mut options = pricing.options.clone();
    options.extend_from_slice(&[110.0, 100.0, 0.01, 0.25, 2.0, 1.0]);
    let keys = [0i64, 1, 2];
    let (mut price, mut stderr) = ([0f64; 3], [0f64; 3]);
    let got = invoke_rows(
        prepared,
        null(),
        3,
        &[slice(&options), slice(&keys)],
        &[slice_mut(&mut price), slice_mut(&mut stderr)],
    );
    assert_eq!(got, None);
    let expected = pricing.unprepared();
    assert_eq!([price[0], price[1]].map(f64::to_bits), [expected[0], expected[1]].map(f64::to_bits));
    assert!(price[2] > 0.0);

    // Zero rows reach the kernel, which has its own rule for an empty batch.
    let (code, message) = invoke_rows(
        prepared,
        null(),
        0,
        &[slice::<f64>(&[]), slice::<i64>(&[])],
        &[slice_mut::<f64>(&mut []), slice_mut::<f64>(&mut [])],
    )
    .unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("holds no rows"), "{message}");

    // 10^4 rows × 10^6 paths = 10^10 is the bound; one more row is over it.
    let rows = 10_001u64;
    let (code, message) = invoke_rows(
        prepared,
        null(),
        rows,
        &[slice(&options), slice(&keys)],
        &[slice_mut(&mut price), slice_mut(&mut stderr)],
    )
    .unwrap();
    assert_eq!(code, 8, "{message}");
    assert!(message.contains("(limit max_work_per_call)"), "{message}");

    // A row count whose lengths would overflow is refused, not wrapped.
    let (code, message) = invoke_rows(
        prepared,
        null(),
        u64::MAX - 1,
        &[slice(&options), slice(&keys)],
        &[slice_mut(&mut price), slice_mut(&mut stderr)],
    )
    .unwrap();
    assert!(code == 3 || code == 8, "{code}: {message}");

    // Lengths must match the row count given.
    let (code, message) = invoke_rows(
        prepared,
        null(),
        3,
        &[slice(&pricing.options), slice(&keys)],
        &[slice_mut(&mut price), slice_mut(&mut stderr)],
    )
    .unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("input 0 ('options')") && message.contains("needs 144"), "{message}");
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}

#[test]
fn a_prepared_call_of_a_kernel_that_is_not_batchable_keeps_its_shapes() {
    let (a, b) = ([1u8; 8], [2u8; 4]);
    let inputs = [tensor(&a, &[8], TANDEM_DTYPE_U8), tensor(&b, &[4], TANDEM_DTYPE_U8)];
    let mut prepared = null_mut();
    // SAFETY: live arrays and out pointer.
    ok(unsafe {
        tandem_kernel_prepare(find("diagnostics.noop"), inputs.as_ptr(), 2, null(), 0, null(), 0, &mut prepared)
    });
    assert_eq!(invoke(prepared, null(), &[slice(&a), slice(&b)], &[]), None);
    // SAFETY: a live prepared call, and null.
    assert_eq!(unsafe { (tandem_prepared_varies_rows(prepared), tandem_prepared_varies_rows(null())) }, (0, 0));
    let (code, message) = invoke_rows(prepared, null(), 8, &[slice(&a), slice(&b)], &[]).unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("is not batchable"), "{message}");
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}

/// A 4-row, 2-dimensional collection and a prepared top-1 search over it.
fn collection() -> *mut tandem_state_t {
    let vectors = [1f32, 0.0, 0.0, 1.0, -1.0, 0.0, 0.5, 0.5];
    let ids = [10i64, 11, 12, 13];
    let tensors = [tensor(&vectors, &[4, 2], TANDEM_DTYPE_F32), tensor(&ids, &[4], TANDEM_DTYPE_I64)];
    let kind = "vector_collection";
    let mut state = null_mut();
    // SAFETY: live tensors and out pointer.
    ok(unsafe { tandem_state_create(kind.as_ptr(), kind.len(), tensors.as_ptr(), 2, &mut state) });
    state
}

#[test]
fn a_prepared_search_checks_its_state_and_finite_inputs_on_every_repeat() {
    let state = collection();
    let mut query = [1f32, 0.0];
    let (mut ids, mut scores) = ([0i64; 1], [0f32; 1]);
    let inputs = [tensor(&query, &[1, 2], TANDEM_DTYPE_F32)];
    let outputs = [tensor_mut(&mut ids, &[1, 1], TANDEM_DTYPE_I64), tensor_mut(&mut scores, &[1, 1], TANDEM_DTYPE_F32)];
    let params = [int(1), int(0)];
    let mut prepared = null_mut();
    // SAFETY: live arrays and buffers for the call.
    ok(unsafe {
        tandem_kernel_prepare(
            find("similarity.topk"),
            inputs.as_ptr(),
            1,
            params.as_ptr(),
            2,
            outputs.as_ptr(),
            2,
            &mut prepared,
        )
    });
    let outs = [slice_mut(&mut ids), slice_mut(&mut scores)];
    for (q, expected) in [([0.0f32, 1.0], 11i64), ([-1.0, 0.1], 12)] {
        query = q;
        assert_eq!(invoke(prepared, state, &[slice(&query)], &outs), None);
        // SAFETY: the call has returned; `outs` points at `ids`.
        assert_eq!(unsafe { *outs[0].data.cast::<i64>() }, expected);
    }
    let (code, message) = invoke(prepared, null(), &[slice(&query)], &outs).unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("needs a 'vector_collection' state"), "{message}");
    query = [f32::NAN, 0.0];
    let (code, message) = invoke(prepared, state, &[slice(&query)], &outs).unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("queries"), "{message}");
    // SAFETY: each freed once, after every call returned.
    unsafe {
        tandem_prepared_free(prepared);
        tandem_state_free(state);
    }
}

#[test]
fn one_prepared_call_serves_many_threads_at_once() {
    let pricing = Pricing::new(5_000);
    let expected = pricing.unprepared();
    let prepared = pricing.prepare().unwrap() as usize;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let pricing = &pricing;
            scope.spawn(move || {
                for _ in 0..50 {
                    let (mut price, mut stderr) = ([0f64; 2], [0f64; 2]);
                    let got = invoke(
                        prepared as *const tandem_prepared_t,
                        null(),
                        &[slice(&pricing.options), slice(&pricing.keys)],
                        &[slice_mut(&mut price), slice_mut(&mut stderr)],
                    );
                    assert_eq!(got, None);
                    assert_eq!([price[0], price[1], stderr[0], stderr[1]], expected);
                }
            });
        }
    });
    // SAFETY: from tandem_kernel_prepare, freed once after every thread joined.
    unsafe { tandem_prepared_free(prepared as *mut tandem_prepared_t) };
}

/// A prepared `diagnostics.noop` over two 8-byte inputs.
fn prepared_noop(a: &[u8; 8], b: &[u8; 8]) -> *mut tandem_prepared_t {
    let inputs = [tensor(a, &[8], TANDEM_DTYPE_U8), tensor(b, &[8], TANDEM_DTYPE_U8)];
    let mut prepared = null_mut();
    // SAFETY: live arrays and out pointer.
    ok(unsafe {
        tandem_kernel_prepare(find("diagnostics.noop"), inputs.as_ptr(), 2, null(), 0, null(), 0, &mut prepared)
    });
    prepared
}

fn context(timeout_ns: u64, cancel: *const tandem_cancel_t, trace: u8) -> tandem_call_context_t {
    tandem_call_context_t { timeout_ns, cancel, trace_id: [trace; 16], span_id: [0; 8], flags: 0, reserved: 0 }
}

/// A call's outcome: `None`, or the refusal's code and message.
type Outcome = Option<(i32, String)>;

/// Both entry points with this context: (unprepared, prepared) outcomes.
fn noop_with(ctx: &tandem_call_context_t) -> (Outcome, Outcome) {
    let (a, b) = ([1u8; 8], [2u8; 8]);
    let prepared = prepared_noop(&a, &b);
    let inputs = [tensor(&a, &[8], TANDEM_DTYPE_U8), tensor(&b, &[8], TANDEM_DTYPE_U8)];
    let slices = [slice(&a), slice(&b)];
    // SAFETY: live arrays, buffers and context for the calls; freed once after both returned.
    unsafe {
        let unprepared =
            take(tandem_kernel_invoke(find("diagnostics.noop"), null(), inputs.as_ptr(), 2, null(), 0, null(), 0, ctx));
        let repeated =
            take(tandem_prepared_invoke(prepared, null(), TANDEM_ROWS_AS_PREPARED, slices.as_ptr(), 2, null(), 0, ctx));
        tandem_prepared_free(prepared);
        (unprepared, repeated)
    }
}

#[test]
fn a_repeat_honours_its_context_as_an_unprepared_call_does() {
    // A context with only a trace id, or a deadline far away, runs.
    assert_eq!(noop_with(&context(0, null(), 0xab)), (None, None));
    assert_eq!(noop_with(&context(3_600_000_000_000, null(), 0)), (None, None));
    // A cancelled token refuses the call before the kernel runs, on both paths alike.
    let token = tandem_cancel_new();
    // SAFETY: a live token.
    unsafe { tandem_cancel_set(token) };
    let (unprepared, repeated) = noop_with(&context(0, token, 0));
    assert_eq!(repeated, unprepared);
    let (code, message) = repeated.unwrap();
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("cancelled by the caller"), "{message}");
    // SAFETY: freed once, after every call using it returned.
    unsafe { tandem_cancel_free(token) };
    // A deadline of 1 ns has passed by the time the call checks it (a clock
    // read later), so the kernel never runs: DEADLINE_EXCEEDED, as unprepared.
    let (unprepared, repeated) = noop_with(&context(1, null(), 0));
    assert_eq!(repeated, unprepared);
    let (code, message) = repeated.unwrap();
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("deadline passed"), "{message}");
}

#[test]
fn a_stateless_repeat_ignores_a_state_as_an_unprepared_call_does() {
    let state = collection();
    let (a, b) = ([1u8; 8], [2u8; 8]);
    let prepared = prepared_noop(&a, &b);
    let inputs = [tensor(&a, &[8], TANDEM_DTYPE_U8), tensor(&b, &[8], TANDEM_DTYPE_U8)];
    // SAFETY: live kernel, state, arrays and buffers for the call.
    let unprepared = take(unsafe {
        tandem_kernel_invoke(find("diagnostics.noop"), state, inputs.as_ptr(), 2, null(), 0, null(), 0, null())
    });
    assert_eq!(unprepared, None);
    assert_eq!(invoke(prepared, state, &[slice(&a), slice(&b)], &[]), None);
    // SAFETY: each freed once, after every call returned.
    unsafe {
        tandem_prepared_free(prepared);
        tandem_state_free(state);
    }
}

#[test]
fn a_repeat_with_per_call_logging_on_gives_the_same_outcomes() {
    let (a, b) = ([1u8; 8], [2u8; 8]);
    let prepared = prepared_noop(&a, &b);
    let before = tandem::log::tandem_log_set_level(1);
    let ran = invoke(prepared, null(), &[slice(&a), slice(&b)], &[]);
    let refused = invoke(prepared, null(), &[slice(&a)], &[]);
    tandem::log::tandem_log_set_level(before);
    assert_eq!(ran, None);
    let (code, message) = refused.unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("takes 2 input(s) and 0 output(s), got 1 and 0"), "{message}");
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}

#[test]
fn a_repeat_whose_array_is_null_or_too_long_is_refused_by_the_checked_path() {
    let (a, b) = ([1u8; 8], [2u8; 8]);
    let prepared = prepared_noop(&a, &b);
    let slices = [slice(&a); 9];
    // SAFETY: a null array with a count, and an array of 9 slices: both refused before the data is read.
    let (null_array, too_many) = unsafe {
        (
            take(tandem_prepared_invoke(prepared, null(), TANDEM_ROWS_AS_PREPARED, null(), 2, null(), 0, null())),
            take(tandem_prepared_invoke(
                prepared,
                null(),
                TANDEM_ROWS_AS_PREPARED,
                slices.as_ptr(),
                9,
                null(),
                0,
                null(),
            )),
        )
    };
    let (code, message) = null_array.unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("the input array is null but its count is 2"), "{message}");
    let (code, message) = too_many.unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("9 inputs given; at most 8 are supported"), "{message}");
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}

#[test]
fn a_batch_of_the_prepared_row_count_runs_as_the_prepared_call_with_the_same_refusals() {
    let pricing = Pricing::new(20_000);
    let prepared = pricing.prepare().unwrap();
    let expected = pricing.unprepared();
    let (mut price, mut stderr) = ([0f64; 2], [0f64; 2]);
    // Two rows, given as a row count rather than TANDEM_ROWS_AS_PREPARED (what the .NET host passes).
    let got = invoke_rows(
        prepared,
        null(),
        2,
        &[slice(&pricing.options), slice(&pricing.keys)],
        &[slice_mut(&mut price), slice_mut(&mut stderr)],
    );
    assert_eq!(got, None);
    assert_eq!([price[0], price[1], stderr[0], stderr[1]].map(f64::to_bits), expected.map(f64::to_bits));
    let (code, message) = invoke_rows(
        prepared,
        null(),
        2,
        &[slice(&pricing.options), slice(&pricing.keys[..1])],
        &[slice_mut(&mut price), slice_mut(&mut stderr)],
    )
    .unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("input 1 ('row_keys') of the prepared call of kernel 'montecarlo.european' is 8 bytes; its prepared shape needs 16"), "{message}");
    let (code, message) = invoke_rows(
        prepared,
        null(),
        2,
        &[slice(&pricing.options), slice(&pricing.keys)],
        &[slice_mut(&mut price), slice_mut(&mut price)],
    )
    .unwrap();
    assert_eq!(code, 3);
    assert!(message.contains("output 0 overlaps output 1"), "{message}");
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}
