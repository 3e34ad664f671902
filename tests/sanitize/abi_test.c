/*
 * The C ABI of libtandem.so driven from C, built with clang
 * -fsanitize=address (AddressSanitizer + LeakSanitizer) by build/sanitize.sh.
 *
 * Every export is called with valid and invalid arguments; every error and
 * buffer the library hands out is released through the ABI's own free
 * functions, so LeakSanitizer's report at exit is empty exactly when the
 * library frees what it allocates (Rust's allocations go through malloc,
 * which ASan intercepts). libtandem.so itself is not instrumented: ASan sees
 * its heap (leaks, double frees, frees of foreign pointers, overflows of the
 * harness's buffers) but not out-of-bounds reads inside its own code.
 *
 * `abi_test --leak-on-purpose` skips one tandem_error_free and
 * `--double-free-on-purpose` frees a buffer's bytes twice: build/sanitize.sh runs both and
 * requires the sanitizer to report them, which proves it sees the library's
 * allocations and frees.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"

enum {
    CODE_CANCELLED = 1,
    CODE_UNKNOWN = 2,
    CODE_INVALID_ARGUMENT = 3,
    CODE_NOT_FOUND = 5,
    CODE_RESOURCE_EXHAUSTED = 8,
    CODE_UNIMPLEMENTED = 12,
    CODE_INTERNAL = 13,
};

static int failures;
static int checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* Takes ownership of `error`: it must be null. */
static void expect_ok(tandem_error_t *error, const char *what) {
    CHECK(error == NULL, "%s: code %d: %s", what, tandem_error_code(error), tandem_error_message(error));
    tandem_error_free(error);
}

/* Takes ownership of `error`: it must carry `code` and a message containing `needle`. */
static void expect_error(tandem_error_t *error, int code, const char *needle, const char *what) {
    CHECK(error != NULL, "%s: succeeded, expected code %d", what, code);
    if (error == NULL) return;
    const char *message = tandem_error_message(error);
    CHECK(tandem_error_code(error) == code, "%s: code %d (expected %d): %s", what, tandem_error_code(error), code,
          message);
    CHECK(message != NULL && strstr(message, needle) != NULL, "%s: message '%s' lacks '%s'", what, message, needle);
    tandem_error_free(error);
}

static const tandem_kernel_t *find(const char *name) {
    const tandem_kernel_t *kernel = NULL;
    expect_ok(tandem_kernel_find((const uint8_t *)name, strlen(name), &kernel), name);
    CHECK(kernel != NULL, "%s: no handle", name);
    return kernel;
}

static tandem_tensor_t tensor(const void *data, uint64_t byte_len, tandem_dtype_t dtype, uint32_t rank, int64_t d0,
                              int64_t d1) {
    tandem_tensor_t t = {data, byte_len, {d0, d1, 0, 0}, rank, dtype};
    return t;
}

static tandem_tensor_mut_t tensor_mut(void *data, uint64_t byte_len, tandem_dtype_t dtype, uint32_t rank, int64_t d0,
                                      int64_t d1) {
    tandem_tensor_mut_t t = {data, byte_len, {d0, d1, 0, 0}, rank, dtype};
    return t;
}

static tandem_param_t int_param(int64_t value) {
    tandem_param_t p = {TANDEM_PARAM_INT, 0, value, 0.0};
    return p;
}

/* ---- library, descriptors, runtime ---------------------------------- */

static void test_library(void) {
    CHECK(tandem_abi_version() >> 16 == 1, "ABI major %u", tandem_abi_version() >> 16);
    expect_ok(tandem_library_status(), "library status");

    tandem_buffer_t set = {0};
    expect_ok(tandem_kernels_describe(&set), "describe");
    CHECK(set.data != NULL && set.len > 0, "describe returned %llu bytes", (unsigned long long)set.len);
    CHECK(set.len <= set.capacity, "len %llu > capacity %llu", (unsigned long long)set.len,
          (unsigned long long)set.capacity);
    tandem_buffer_free(&set);
    CHECK(set.data == NULL && set.len == 0, "buffer not nulled by its free");
    tandem_buffer_free(&set); /* a second free is harmless */
    tandem_buffer_free(NULL);
    expect_error(tandem_kernels_describe(NULL), CODE_INVALID_ARGUMENT, "'out' is null", "describe(NULL)");

    tandem_runtime_info_t info;
    expect_ok(tandem_runtime_info(&info), "runtime info");
    CHECK(info.abi_version == tandem_abi_version(), "runtime abi %u", info.abi_version);
    CHECK(info.compute_threads == 2, "threads %u (TANDEM_THREADS=2)", info.compute_threads);
    CHECK(info.max_pending == 4, "max pending %u (TANDEM_MAX_PENDING=4)", info.max_pending);
    CHECK(info.isa >= 1 && info.isa <= 3, "isa %u", info.isa);
    /* build/sanitize.sh forces only paths this CPU runs, so the forced one must be in use. */
    const char *forced = getenv("TANDEM_ISA");
    const char *names[] = {"", "avx512", "avx2", "portable"};
    if (forced != NULL && *forced != '\0') {
        CHECK(info.isa >= 1 && info.isa <= 3 && strcmp(names[info.isa], forced) == 0, "TANDEM_ISA=%s but isa %u",
              forced, info.isa);
    }
    expect_error(tandem_runtime_info(NULL), CODE_INVALID_ARGUMENT, "'out' is null", "runtime info(NULL)");

    const char *layout = tandem_layout_table();
    CHECK(layout != NULL && strstr(layout, "tandem_tensor_t") != NULL, "layout table");

    uint32_t before = tandem_log_set_level(1);
    CHECK(tandem_log_set_level(before) == 1, "log level round trip");

    CHECK(tandem_error_code(NULL) == CODE_UNKNOWN, "code of null error");
    CHECK(strcmp(tandem_error_message(NULL), "no error") == 0, "message of null error");
    tandem_error_free(NULL);
}

static void test_find(void) {
    const char *names[] = {"similarity.topk", "montecarlo.european", "hash.blake3", "diagnostics.noop",
                           "diagnostics.panic"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const tandem_kernel_t *kernel = find(names[i]);
        expect_ok(tandem_kernel_warm_up(kernel), names[i]);
    }
    const tandem_kernel_t *kernel = NULL;
    expect_error(tandem_kernel_find((const uint8_t *)"similarity.nope", 15, &kernel), CODE_NOT_FOUND,
                 "similarity.topk", "unknown kernel lists the known ones");
    CHECK(kernel == NULL, "unknown kernel wrote a handle");
    expect_error(tandem_kernel_find((const uint8_t *)"hash.blake3", 11, NULL), CODE_INVALID_ARGUMENT, "'out' is null",
                 "find(out=NULL)");
    expect_error(tandem_kernel_find(NULL, 4, &kernel), CODE_INVALID_ARGUMENT, "'name' is null", "find(name=NULL)");
    const uint8_t not_utf8[] = {0xff, 0xfe};
    expect_error(tandem_kernel_find(not_utf8, 2, &kernel), CODE_INVALID_ARGUMENT, "UTF-8", "find(invalid UTF-8)");
    expect_error(tandem_kernel_find(NULL, 0, &kernel), CODE_NOT_FOUND, "unknown kernel ''", "find(empty name)");
    expect_error(tandem_kernel_warm_up(NULL), CODE_INVALID_ARGUMENT, "'kernel' is null", "warm_up(NULL)");
}

/* ---- diagnostics ------------------------------------------------------ */

static void test_noop_and_panic(void) {
    const tandem_kernel_t *noop = find("diagnostics.noop");
    uint8_t a[64] = {0}, b[3] = {1, 2, 3};
    tandem_tensor_t inputs[9];
    inputs[0] = tensor(a, sizeof a, TANDEM_DTYPE_U8, 1, 64, 0);
    inputs[1] = tensor(b, sizeof b, TANDEM_DTYPE_U8, 1, 3, 0);
    expect_ok(tandem_kernel_invoke(noop, NULL, inputs, 2, NULL, 0, NULL, 0, NULL), "noop");

    /* Null data with length 0 is a valid empty tensor. */
    tandem_tensor_t empty[2] = {tensor(NULL, 0, TANDEM_DTYPE_U8, 1, 0, 0), tensor(NULL, 0, TANDEM_DTYPE_U8, 1, 0, 0)};
    expect_ok(tandem_kernel_invoke(noop, NULL, empty, 2, NULL, 0, NULL, 0, NULL), "noop on empty tensors");

    tandem_tensor_t bad[2] = {inputs[0], inputs[1]};
    bad[0].data = NULL;
    expect_error(tandem_kernel_invoke(noop, NULL, bad, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT, "null",
                 "null data with a length");
    bad[0] = inputs[0];
    bad[0].dtype = TANDEM_DTYPE_F32;
    bad[0].shape[0] = 16;
    expect_error(tandem_kernel_invoke(noop, NULL, bad, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT, "u8",
                 "wrong dtype");
    bad[0] = inputs[0];
    bad[0].dtype = 99;
    expect_error(tandem_kernel_invoke(noop, NULL, bad, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT,
                 "unknown dtype code 99", "unknown dtype");
    bad[0] = inputs[0];
    bad[0].rank = 5;
    expect_error(tandem_kernel_invoke(noop, NULL, bad, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT, "rank 5",
                 "rank beyond the maximum");
    bad[0] = inputs[0];
    bad[0].shape[0] = 65;
    expect_error(tandem_kernel_invoke(noop, NULL, bad, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT, "",
                 "shape disagrees with byte length");
    bad[0] = inputs[0];
    bad[0].shape[0] = -1;
    expect_error(tandem_kernel_invoke(noop, NULL, bad, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT,
                 "negative size", "negative dimension");
    expect_error(tandem_kernel_invoke(noop, NULL, inputs, 1, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT, "",
                 "missing input");
    for (int i = 2; i < 9; i++) inputs[i] = inputs[1];
    expect_error(tandem_kernel_invoke(noop, NULL, inputs, 9, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT,
                 "9 inputs given", "too many inputs");
    expect_error(tandem_kernel_invoke(noop, NULL, NULL, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT,
                 "input array is null", "null input array");
    expect_error(tandem_kernel_invoke(NULL, NULL, inputs, 2, NULL, 0, NULL, 0, NULL), CODE_INVALID_ARGUMENT,
                 "'kernel' is null", "null kernel");

    /* A panic inside a kernel is INTERNAL with a correlation id, and the library keeps serving. */
    const tandem_kernel_t *panic = find("diagnostics.panic");
    for (int attempt = 0; attempt < 3; attempt++) {
        expect_error(tandem_kernel_invoke(panic, NULL, inputs, 1, NULL, 0, NULL, 0, NULL), CODE_INTERNAL,
                     "correlation id", "panicking kernel");
    }
    expect_ok(tandem_kernel_invoke(noop, NULL, inputs, 2, NULL, 0, NULL, 0, NULL), "noop after panics");
}

/* ---- hash.blake3: one-shot and streams -------------------------------- */

static int hex_equals(const uint8_t *bytes, size_t len, const char *hex) {
    char buffer[129];
    for (size_t i = 0; i < len && i < 64; i++) snprintf(buffer + 2 * i, 3, "%02x", bytes[i]);
    return strncmp(buffer, hex, 2 * len) == 0;
}

static tandem_error_t *blake3_once(const uint8_t *data, size_t len, uint8_t *out, size_t out_len) {
    tandem_tensor_t input = tensor(data, len, TANDEM_DTYPE_U8, 1, (int64_t)len, 0);
    tandem_tensor_mut_t output = tensor_mut(out, out_len, TANDEM_DTYPE_U8, 1, (int64_t)out_len, 0);
    return tandem_kernel_invoke(find("hash.blake3"), NULL, &input, 1, NULL, 0, &output, 1, NULL);
}

static void test_blake3(void) {
    /* The published BLAKE3 digest of the empty input. */
    const char *empty_digest = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
    uint8_t digest[32];
    expect_ok(blake3_once(NULL, 0, digest, 32), "blake3 of empty");
    CHECK(hex_equals(digest, 32, empty_digest), "blake3 of the empty input");

    /* 1 MiB + 1 byte: above the parallel threshold, hashed on the pool. */
    size_t len = (1u << 20) + 1;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i % 251);
    uint8_t once[64];
    expect_ok(blake3_once(data, len, once, sizeof once), "blake3 one-shot (XOF 64)");

    const tandem_kernel_t *kernel = find("hash.blake3");
    uint64_t handle = 0;
    expect_ok(tandem_stream_open(kernel, &handle), "stream open");
    CHECK(handle != 0, "stream handle 0");
    size_t chunks[] = {0, 1, 1023, 1024, 200000, 131072, 0};
    size_t offset = 0;
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        expect_ok(tandem_stream_update(handle, data + offset, chunks[i]), "stream update");
        offset += chunks[i];
    }
    expect_ok(tandem_stream_update(handle, data + offset, len - offset), "stream update (rest)");
    uint8_t streamed[64];
    expect_error(tandem_stream_update(handle, NULL, 5), CODE_INVALID_ARGUMENT, "'data' is null", "update(NULL, 5)");
    expect_ok(tandem_stream_update(handle, NULL, 0), "update(NULL, 0)");
    expect_error(tandem_stream_finalize(handle, NULL, 32), CODE_INVALID_ARGUMENT, "'out' is null",
                 "finalize(NULL)");
    expect_error(tandem_stream_finalize(handle, streamed, 0), CODE_INVALID_ARGUMENT, "1 to", "finalize(len 0)");
    expect_ok(tandem_stream_finalize(handle, streamed, sizeof streamed), "stream finalize");
    CHECK(memcmp(once, streamed, sizeof once) == 0, "streamed digest differs from one-shot");
    expect_ok(tandem_stream_free(handle), "stream free");
    expect_error(tandem_stream_free(handle), CODE_NOT_FOUND, "", "second stream free");
    expect_error(tandem_stream_update(handle, data, 1), CODE_NOT_FOUND, "", "update after free");
    expect_error(tandem_stream_update(0, NULL, 0), CODE_NOT_FOUND, "", "update of handle 0");

    /* Abandoned: opened and fed, freed without finalize. */
    expect_ok(tandem_stream_open(kernel, &handle), "stream open (abandoned)");
    expect_ok(tandem_stream_update(handle, data, 4096), "stream update (abandoned)");
    expect_ok(tandem_stream_free(handle), "abandoned stream free");

    expect_error(tandem_stream_open(find("diagnostics.noop"), &handle), CODE_UNIMPLEMENTED, "",
                 "stream of a non-streaming kernel");
    expect_error(tandem_stream_open(NULL, &handle), CODE_INVALID_ARGUMENT, "'kernel' is null", "stream_open(NULL)");
    expect_error(tandem_stream_open(kernel, NULL), CODE_INVALID_ARGUMENT, "'out' is null", "stream_open(out NULL)");

    uint8_t *too_long = malloc((1u << 20) + 1);
    expect_error(blake3_once(data, 16, too_long, (1u << 20) + 1), CODE_INVALID_ARGUMENT, "", "digest beyond 1 MiB");
    free(too_long);
    expect_error(blake3_once(data, 16, digest, 0), CODE_INVALID_ARGUMENT, "", "digest of 0 bytes");
    free(data);
}

/* ---- similarity.topk over a vector collection ------------------------- */

enum { ROWS = 300, DIM = 24, BATCH = 5, K = 7 };

static tandem_state_t *create_collection(const float *vectors, const int64_t *ids, int rows, tandem_error_t **error) {
    tandem_tensor_t tensors[2] = {
        tensor(vectors, (uint64_t)rows * DIM * sizeof(float), TANDEM_DTYPE_F32, 2, rows, DIM),
        ids ? tensor(ids, (uint64_t)rows * sizeof(int64_t), TANDEM_DTYPE_I64, 1, rows, 0)
            : tensor(NULL, 0, 0, 0, 0, 0),
    };
    tandem_state_t *state = NULL;
    *error = tandem_state_create((const uint8_t *)"vector_collection", 17, tensors, 2, &state);
    return state;
}

static tandem_error_t *topk(const tandem_state_t *state, const float *queries, int batch, int k, int metric,
                            int64_t *ids, float *scores) {
    tandem_tensor_t input = tensor(queries, (uint64_t)batch * DIM * sizeof(float), TANDEM_DTYPE_F32, 2, batch, DIM);
    tandem_param_t params[2] = {int_param(k), int_param(metric)};
    tandem_tensor_mut_t outputs[2] = {
        tensor_mut(ids, (uint64_t)batch * k * sizeof(int64_t), TANDEM_DTYPE_I64, 2, batch, k),
        tensor_mut(scores, (uint64_t)batch * k * sizeof(float), TANDEM_DTYPE_F32, 2, batch, k),
    };
    return tandem_kernel_invoke(find("similarity.topk"), state, &input, 1, params, 2, outputs, 2, NULL);
}

/* Brute-force dot-product top-k (ties to the lower id); integer data is exact. */
static void reference_topk(const float *vectors, const int64_t *ids, const float *query, int64_t *out_ids) {
    int taken[ROWS] = {0};
    for (int slot = 0; slot < K; slot++) {
        int best = -1;
        float best_score = 0;
        for (int row = 0; row < ROWS; row++) {
            if (taken[row]) continue;
            float score = 0;
            for (int d = 0; d < DIM; d++) score += vectors[row * DIM + d] * query[d];
            if (best < 0 || score > best_score || (score == best_score && ids[row] < ids[best])) {
                best = row;
                best_score = score;
            }
        }
        taken[best] = 1;
        out_ids[slot] = ids[best];
    }
}

static void test_topk(void) {
    float *vectors = malloc(sizeof(float) * ROWS * DIM);
    int64_t ids[ROWS];
    for (int i = 0; i < ROWS * DIM; i++) vectors[i] = (float)((i * 7919) % 7) - 3.0f;
    for (int i = 0; i < ROWS; i++) ids[i] = 1000 + (ROWS - i);
    float queries[BATCH * DIM];
    for (int i = 0; i < BATCH * DIM; i++) queries[i] = (float)((i * 104729) % 5) - 2.0f;

    tandem_error_t *error = NULL;
    tandem_state_t *state = create_collection(vectors, ids, ROWS, &error);
    expect_ok(error, "collection create");
    CHECK(tandem_state_size_bytes(state) >= sizeof(float) * ROWS * DIM, "state size %llu",
          (unsigned long long)tandem_state_size_bytes(state));
    CHECK(tandem_state_size_bytes(NULL) == 0, "size of null state");

    int64_t got_ids[BATCH * K];
    float scores[BATCH * K];
    expect_ok(topk(state, queries, BATCH, K, 0, got_ids, scores), "topk dot");
    for (int q = 0; q < BATCH; q++) {
        int64_t expected[K];
        reference_topk(vectors, ids, queries + q * DIM, expected);
        CHECK(memcmp(expected, got_ids + q * K, sizeof expected) == 0, "topk query %d differs from brute force", q);
    }
    for (int metric = 1; metric <= 2; metric++) {
        expect_ok(topk(state, queries, BATCH, K, metric, got_ids, scores), "topk cosine / l2");
    }

    /* Bad calls: each refused before the kernel runs, naming the problem. */
    expect_error(topk(NULL, queries, BATCH, K, 0, got_ids, scores), CODE_INVALID_ARGUMENT,
                 "needs a 'vector_collection' state", "topk without a state");
    expect_error(topk(state, queries, BATCH, 0, 0, got_ids, scores), CODE_INVALID_ARGUMENT, "'k'", "k = 0");
    expect_error(topk(state, queries, BATCH, K, 3, got_ids, scores), CODE_INVALID_ARGUMENT, "metric",
                 "metric out of range");
    float nan_queries[BATCH * DIM];
    memcpy(nan_queries, queries, sizeof queries);
    nan_queries[DIM + 3] = NAN;
    expect_error(topk(state, nan_queries, BATCH, K, 0, got_ids, scores), CODE_INVALID_ARGUMENT, "queries",
                 "NaN in a query");
    {
        tandem_tensor_t input = tensor(queries, sizeof(float) * DIM, TANDEM_DTYPE_F32, 2, 2, DIM / 2);
        tandem_param_t params[2] = {int_param(K), int_param(0)};
        tandem_tensor_mut_t outputs[2] = {tensor_mut(got_ids, 2 * K * 8, TANDEM_DTYPE_I64, 2, 2, K),
                                          tensor_mut(scores, 2 * K * 4, TANDEM_DTYPE_F32, 2, 2, K)};
        expect_error(tandem_kernel_invoke(find("similarity.topk"), state, &input, 1, params, 2, outputs, 2, NULL),
                     CODE_INVALID_ARGUMENT, "dimension", "query dimension differs from the collection's");
        outputs[1].data = (uint8_t *)got_ids + 8; /* scores written over the ids */
        outputs[1].byte_len = 2 * K * 4;
        input.shape[0] = 1;
        input.shape[1] = DIM;
        outputs[0].shape[0] = outputs[1].shape[0] = 1;
        outputs[0].byte_len = K * 8;
        outputs[1].byte_len = K * 4;
        expect_error(tandem_kernel_invoke(find("similarity.topk"), state, &input, 1, params, 2, outputs, 2, NULL),
                     CODE_INVALID_ARGUMENT, "overlaps", "overlapping outputs");
        tandem_param_t float_param = {TANDEM_PARAM_FLOAT, 0, 0, 2.5};
        tandem_param_t unknown_kind = {77, 0, 0, 0};
        params[0] = float_param;
        outputs[1] = tensor_mut(scores, K * 4, TANDEM_DTYPE_F32, 2, 1, K);
        expect_error(tandem_kernel_invoke(find("similarity.topk"), state, &input, 1, params, 2, outputs, 2, NULL),
                     CODE_INVALID_ARGUMENT, "'k'", "float given for an int parameter");
        params[0] = unknown_kind;
        expect_error(tandem_kernel_invoke(find("similarity.topk"), state, &input, 1, params, 2, outputs, 2, NULL),
                     CODE_INVALID_ARGUMENT, "unknown kind 77", "unknown parameter kind");
        expect_error(tandem_kernel_invoke(find("similarity.topk"), state, &input, 1, params, 1, outputs, 2, NULL),
                     CODE_INVALID_ARGUMENT, "", "missing parameter");
    }

    /* States: bad tensors and kinds. */
    float nan_vectors[4 * DIM] = {0};
    nan_vectors[5] = NAN;
    CHECK(create_collection(nan_vectors, NULL, 4, &error) == NULL, "NaN collection created");
    expect_error(error, CODE_INVALID_ARGUMENT, "vectors", "NaN in the collection");
    {
        tandem_tensor_t wrong[2] = {tensor(vectors, sizeof(float) * ROWS * DIM, TANDEM_DTYPE_F64, 2, ROWS / 2, DIM),
                                    tensor(NULL, 0, 0, 0, 0, 0)};
        tandem_state_t *out = NULL;
        expect_error(tandem_state_create((const uint8_t *)"vector_collection", 17, wrong, 2, &out),
                     CODE_INVALID_ARGUMENT, "f32", "collection of f64");
        CHECK(out == NULL, "failed create wrote a state");
        wrong[0] = tensor(vectors, sizeof(float) * DIM, TANDEM_DTYPE_F32, 1, DIM, 0);
        expect_error(tandem_state_create((const uint8_t *)"vector_collection", 17, wrong, 2, &out),
                     CODE_INVALID_ARGUMENT, "", "collection of rank 1");
        expect_error(tandem_state_create((const uint8_t *)"vector_collection", 17, wrong, 1, &out),
                     CODE_INVALID_ARGUMENT, "2 tensor(s)", "collection without its optional slot");
        int64_t short_ids[2] = {1, 2};
        tandem_tensor_t mismatched[2] = {tensor(vectors, sizeof(float) * 4 * DIM, TANDEM_DTYPE_F32, 2, 4, DIM),
                                         tensor(short_ids, sizeof short_ids, TANDEM_DTYPE_I64, 1, 2, 0)};
        expect_error(tandem_state_create((const uint8_t *)"vector_collection", 17, mismatched, 2, &out),
                     CODE_INVALID_ARGUMENT, "ids", "ids shorter than the rows");
        expect_error(tandem_state_create((const uint8_t *)"tree", 4, NULL, 0, &out), CODE_NOT_FOUND, "tree",
                     "unknown state kind");
        expect_error(tandem_state_create((const uint8_t *)"vector_collection", 17, NULL, 0, NULL),
                     CODE_INVALID_ARGUMENT, "'out' is null", "state_create(out NULL)");
        expect_error(tandem_state_create((const uint8_t *)"vector_collection", 17, NULL, 1, &out),
                     CODE_INVALID_ARGUMENT, "null", "null tensor array with a count");
    }
    tandem_state_free(state);
    tandem_state_free(NULL);
    free(vectors);
}

/* ---- montecarlo.european ---------------------------------------------- */

static tandem_error_t *price(const double *options, const int64_t *keys, int batch, int64_t paths,
                             const tandem_call_context_t *ctx, double *prices, double *stderrs) {
    tandem_tensor_t inputs[2] = {
        tensor(options, (uint64_t)batch * 6 * sizeof(double), TANDEM_DTYPE_F64, 2, batch, 6),
        tensor(keys, (uint64_t)batch * sizeof(int64_t), TANDEM_DTYPE_I64, 1, batch, 0),
    };
    tandem_param_t params[3] = {int_param(paths), int_param(42), int_param(1)};
    tandem_tensor_mut_t outputs[2] = {
        tensor_mut(prices, (uint64_t)batch * sizeof(double), TANDEM_DTYPE_F64, 1, batch, 0),
        tensor_mut(stderrs, (uint64_t)batch * sizeof(double), TANDEM_DTYPE_F64, 1, batch, 0),
    };
    return tandem_kernel_invoke(find("montecarlo.european"), NULL, inputs, 2, params, 3, outputs, 2, ctx);
}

static void test_montecarlo(void) {
    double options[3 * 6] = {100, 95, 0.01, 0.2, 1.0, 1, 100, 105, 0.02, 0.3, 0.5, 0, 50, 50, 0.0, 0.1, 2.0, 1};
    int64_t keys[3] = {0, 1, 2};
    double prices[3], stderrs[3], again[3];
    expect_ok(price(options, keys, 3, 20000, NULL, prices, stderrs), "price");
    for (int i = 0; i < 3; i++) {
        CHECK(isfinite(prices[i]) && prices[i] > 0 && stderrs[i] > 0, "row %d: price %f stderr %f", i, prices[i],
              stderrs[i]);
    }
    expect_ok(price(options, keys, 3, 20000, NULL, again, stderrs), "price again");
    CHECK(memcmp(prices, again, sizeof prices) == 0, "prices not bitwise repeatable");

    double bad[3 * 6];
    memcpy(bad, options, sizeof bad);
    bad[6 + 3] = NAN;
    expect_error(price(bad, keys, 3, 1000, NULL, prices, stderrs), CODE_INVALID_ARGUMENT, "row 1", "NaN volatility");
    memcpy(bad, options, sizeof bad);
    bad[5] = 2;
    expect_error(price(bad, keys, 3, 1000, NULL, prices, stderrs), CODE_INVALID_ARGUMENT, "'call'", "call = 2");
    memcpy(bad, options, sizeof bad);
    bad[12] = -1;
    expect_error(price(bad, keys, 3, 1000, NULL, prices, stderrs), CODE_INVALID_ARGUMENT, "negative", "negative spot");
    expect_error(price(options, keys, 3, 0, NULL, prices, stderrs), CODE_INVALID_ARGUMENT, "paths", "0 paths");
    expect_error(price(options, keys, 0, 1000, NULL, prices, stderrs), CODE_INVALID_ARGUMENT, "no rows",
                 "empty batch");
    {
        tandem_tensor_t inputs[2] = {tensor(options, 3 * 5 * sizeof(double), TANDEM_DTYPE_F64, 2, 3, 5),
                                     tensor(keys, sizeof keys, TANDEM_DTYPE_I64, 1, 3, 0)};
        tandem_param_t params[3] = {int_param(1000), int_param(42), int_param(0)};
        tandem_tensor_mut_t outputs[2] = {tensor_mut(prices, sizeof prices, TANDEM_DTYPE_F64, 1, 3, 0),
                                          tensor_mut(stderrs, sizeof stderrs, TANDEM_DTYPE_F64, 1, 3, 0)};
        expect_error(
            tandem_kernel_invoke(find("montecarlo.european"), NULL, inputs, 2, params, 3, outputs, 2, NULL),
            CODE_INVALID_ARGUMENT, "options", "rows of 5 fields");
        inputs[0] = tensor(options, sizeof options, TANDEM_DTYPE_F64, 2, 3, 6);
        inputs[1] = tensor(keys, 2 * sizeof(int64_t), TANDEM_DTYPE_I64, 1, 2, 0);
        expect_error(
            tandem_kernel_invoke(find("montecarlo.european"), NULL, inputs, 2, params, 3, outputs, 2, NULL),
            CODE_INVALID_ARGUMENT, "", "row_keys shorter than the batch");
    }

    /* A cancelled token stops the call with CANCELLED; the token outlives nothing it should not. */
    tandem_cancel_t *cancel = tandem_cancel_new();
    tandem_cancel_set(cancel);
    tandem_call_context_t ctx = {0, cancel, {1, 2, 3}, {4}, 0, 0};
    expect_error(price(options, keys, 3, 1000000, &ctx, prices, stderrs), CODE_CANCELLED, "cancelled",
                 "cancelled call");
    tandem_cancel_free(cancel);
    tandem_cancel_set(NULL);
    tandem_cancel_free(NULL);
}

/* ---- asynchronous submit ---------------------------------------------- */

struct completion {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int done;
    int entered;     /* callbacks that reached the gate */
    int gate_closed; /* gated callbacks wait while this is set */
    int codes[64];
};

static struct completion completion = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, {0}};

static void on_complete(void *user_data, tandem_error_t *error) {
    int slot = (int)(intptr_t)user_data;
    pthread_mutex_lock(&completion.lock);
    completion.codes[slot] = error ? tandem_error_code(error) : 0;
    completion.done++;
    pthread_cond_broadcast(&completion.changed);
    pthread_mutex_unlock(&completion.lock);
    tandem_error_free(error);
}

/* Holds its compute-pool thread until the gate opens (the ABI says callbacks
 * must not block; this one does on purpose, to fill the queue deterministically). */
static void on_complete_gated(void *user_data, tandem_error_t *error) {
    pthread_mutex_lock(&completion.lock);
    completion.entered++;
    pthread_cond_broadcast(&completion.changed);
    while (completion.gate_closed) pthread_cond_wait(&completion.changed, &completion.lock);
    pthread_mutex_unlock(&completion.lock);
    on_complete(user_data, error);
}

static void wait_for(int *counter, int target) {
    pthread_mutex_lock(&completion.lock);
    while (*counter < target) pthread_cond_wait(&completion.changed, &completion.lock);
    pthread_mutex_unlock(&completion.lock);
}

static void test_submit(void) {
    double options[2 * 6] = {100, 95, 0.01, 0.2, 1.0, 1, 100, 105, 0.02, 0.3, 0.5, 0};
    int64_t keys[2] = {0, 1};
    double prices[2], stderrs[2], sync_prices[2];
    expect_ok(price(options, keys, 2, 50000, NULL, sync_prices, stderrs), "price (sync reference)");

    float *vectors = malloc(sizeof(float) * ROWS * DIM);
    for (int i = 0; i < ROWS * DIM; i++) vectors[i] = (float)(i % 9);
    tandem_error_t *error = NULL;
    tandem_state_t *state = create_collection(vectors, NULL, ROWS, &error);
    expect_ok(error, "collection for submit");
    free(vectors); /* the state holds its own copy */
    float query[DIM];
    for (int d = 0; d < DIM; d++) query[d] = (float)d;
    int64_t ids[K];
    float scores[K];
    uint8_t panic_input[8] = {0};

    tandem_tensor_t mc_inputs[2] = {tensor(options, sizeof options, TANDEM_DTYPE_F64, 2, 2, 6),
                                    tensor(keys, sizeof keys, TANDEM_DTYPE_I64, 1, 2, 0)};
    tandem_param_t mc_params[3] = {int_param(50000), int_param(42), int_param(1)};
    tandem_tensor_mut_t mc_outputs[2] = {tensor_mut(prices, sizeof prices, TANDEM_DTYPE_F64, 1, 2, 0),
                                         tensor_mut(stderrs, sizeof stderrs, TANDEM_DTYPE_F64, 1, 2, 0)};
    tandem_tensor_t topk_input = tensor(query, sizeof query, TANDEM_DTYPE_F32, 2, 1, DIM);
    tandem_param_t topk_params[2] = {int_param(K), int_param(2)};
    tandem_tensor_mut_t topk_outputs[2] = {tensor_mut(ids, sizeof ids, TANDEM_DTYPE_I64, 2, 1, K),
                                           tensor_mut(scores, sizeof scores, TANDEM_DTYPE_F32, 2, 1, K)};
    tandem_tensor_t panic_tensor = tensor(panic_input, sizeof panic_input, TANDEM_DTYPE_U8, 1, 8, 0);
    tandem_tensor_t bad_topk_input = tensor(query, sizeof query, TANDEM_DTYPE_F32, 2, 1, DIM - 1);
    bad_topk_input.byte_len = sizeof(float) * (DIM - 1);

    expect_ok(tandem_kernel_submit(find("montecarlo.european"), NULL, mc_inputs, 2, mc_params, 3, mc_outputs, 2, NULL,
                                   on_complete, (void *)0),
              "submit montecarlo");
    expect_ok(tandem_kernel_submit(find("similarity.topk"), state, &topk_input, 1, topk_params, 2, topk_outputs, 2,
                                   NULL, on_complete, (void *)1),
              "submit topk");
    /* The handle may go while the call runs: the call holds its own reference. */
    tandem_state_free(state);
    expect_ok(tandem_kernel_submit(find("diagnostics.panic"), NULL, &panic_tensor, 1, NULL, 0, NULL, 0, NULL,
                                   on_complete, (void *)2),
              "submit panic");
    expect_ok(tandem_kernel_submit(find("similarity.topk"), NULL, &bad_topk_input, 1, topk_params, 2, topk_outputs,
                                   2, NULL, on_complete, (void *)3),
              "submit topk without a state");
    wait_for(&completion.done, 4);
    CHECK(completion.codes[0] == 0, "submitted montecarlo code %d", completion.codes[0]);
    CHECK(memcmp(prices, sync_prices, sizeof prices) == 0, "submitted prices differ from synchronous ones");
    CHECK(completion.codes[1] == 0, "submitted topk code %d", completion.codes[1]);
    CHECK(completion.codes[2] == CODE_INTERNAL, "submitted panic code %d", completion.codes[2]);
    CHECK(completion.codes[3] == CODE_INVALID_ARGUMENT, "submitted bad topk code %d", completion.codes[3]);

    /* Refused at submit: the callback never runs. */
    expect_error(tandem_kernel_submit(find("montecarlo.european"), NULL, mc_inputs, 2, mc_params, 3, mc_outputs, 2,
                                      NULL, NULL, NULL),
                 CODE_INVALID_ARGUMENT, "'callback' is null", "submit without a callback");
    expect_error(tandem_kernel_submit(NULL, NULL, mc_inputs, 2, mc_params, 3, mc_outputs, 2, NULL, on_complete, NULL),
                 CODE_INVALID_ARGUMENT, "'kernel' is null", "submit of a null kernel");
    expect_error(tandem_kernel_submit(find("montecarlo.european"), NULL, mc_inputs, 9, mc_params, 3, mc_outputs, 2,
                                      NULL, on_complete, NULL),
                 CODE_INVALID_ARGUMENT, "9 inputs given", "submit of too many inputs");

    /* A full queue: both pool threads held in gated callbacks, then
     * TANDEM_MAX_PENDING (4) queued calls, then one more is refused. */
    const tandem_kernel_t *noop = find("diagnostics.noop");
    tandem_tensor_t noop_inputs[2] = {tensor(NULL, 0, TANDEM_DTYPE_U8, 1, 0, 0), tensor(NULL, 0, TANDEM_DTYPE_U8, 1, 0, 0)};
    pthread_mutex_lock(&completion.lock);
    completion.gate_closed = 1;
    pthread_mutex_unlock(&completion.lock);
    for (int i = 0; i < 2; i++) {
        expect_ok(tandem_kernel_submit(noop, NULL, noop_inputs, 2, NULL, 0, NULL, 0, NULL, on_complete_gated,
                                       (void *)(intptr_t)(10 + i)),
                  "submit gated");
    }
    wait_for(&completion.entered, 2);
    for (int i = 0; i < 4; i++) {
        expect_ok(tandem_kernel_submit(noop, NULL, noop_inputs, 2, NULL, 0, NULL, 0, NULL, on_complete,
                                       (void *)(intptr_t)(20 + i)),
                  "submit queued");
    }
    expect_error(tandem_kernel_submit(noop, NULL, noop_inputs, 2, NULL, 0, NULL, 0, NULL, on_complete, (void *)30),
                 CODE_RESOURCE_EXHAUSTED, "queue is full", "submit beyond TANDEM_MAX_PENDING");
    pthread_mutex_lock(&completion.lock);
    completion.gate_closed = 0;
    pthread_cond_broadcast(&completion.changed);
    pthread_mutex_unlock(&completion.lock);
    wait_for(&completion.done, 4 + 2 + 4);
    for (int i = 10; i < 24; i++) CHECK(completion.codes[i] == 0, "queued call %d code %d", i, completion.codes[i]);
}

/* ---- streams bound ------------------------------------------------------ */

static void test_stream_limit(void) {
    const tandem_kernel_t *kernel = find("hash.blake3");
    uint64_t handles[8];
    for (int i = 0; i < 8; i++) expect_ok(tandem_stream_open(kernel, &handles[i]), "open up to TANDEM_MAX_STREAMS");
    uint64_t extra = 0;
    expect_error(tandem_stream_open(kernel, &extra), CODE_RESOURCE_EXHAUSTED, "TANDEM_MAX_STREAMS",
                 "open beyond TANDEM_MAX_STREAMS");
    for (int i = 0; i < 8; i++) expect_ok(tandem_stream_free(handles[i]), "free");
    expect_ok(tandem_stream_open(kernel, &extra), "open after freeing");
    expect_ok(tandem_stream_free(extra), "free");
}

int main(int argc, char **argv) {
    /* Read once, on the library's first use; set before any call. */
    setenv("TANDEM_TEST_KERNELS", "1", 1);
    setenv("TANDEM_THREADS", "2", 1);
    setenv("TANDEM_MAX_PENDING", "4", 1);
    setenv("TANDEM_MAX_STREAMS", "8", 1);

    if (argc > 1 && strcmp(argv[1], "--leak-on-purpose") == 0) {
        const tandem_kernel_t *kernel = NULL;
        tandem_error_t *leaked = tandem_kernel_find((const uint8_t *)"no.such.kernel", 14, &kernel);
        fprintf(stderr, "abi_test: leaking one tandem_error_t (code %d) on purpose\n", tandem_error_code(leaked));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--double-free-on-purpose") == 0) {
        /* A copy of a described buffer, so the free that nulls the original
         * cannot save the second free: Rust's free reaches ASan twice. */
        tandem_buffer_t set = {0};
        tandem_error_free(tandem_kernels_describe(&set));
        tandem_buffer_t copy = set;
        fprintf(stderr, "abi_test: freeing one tandem_buffer_t twice on purpose\n");
        tandem_buffer_free(&set);
        tandem_buffer_free(&copy);
        return 0;
    }

    test_library();
    test_find();
    test_noop_and_panic();
    test_blake3();
    test_topk();
    test_montecarlo();
    test_submit();
    test_stream_limit();

    printf("abi_test: %d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
