#!/usr/bin/env python3
"""Writes the committed seed corpora under native/fuzz/corpus/<target>/.

Run it again after changing a harness's input format (python3 make_seeds.py);
libFuzzer grows its own corpus from these under native/fuzz/target/corpus/.
Each seed is a small valid or nearly valid input, so the fuzzer starts from
the paths real callers take. The byte layouts are the harnesses' own: see
tandem_worker::fuzzing and native/fuzz/src/abi.rs.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(bytes(data))


# --- protobuf, by hand (no generated Python code needed) -------------------
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + payload
    return key + varint(len(payload)) + payload


def string(number, text):
    return field(number, 2, text.encode() if isinstance(text, str) else text)


def packed(number, values):
    return field(number, 2, b"".join(varint(v) for v in values))


def tensor(dtype, shape, data=None, shared=None):
    out = field(1, 0, dtype) + packed(2, shape)
    if data is not None:
        out += string(3, data)
    if shared is not None:
        out += field(4, 2, shared)
    return out


def shared_ref(region, offset, length):
    return string(1, region) + field(2, 0, offset) + field(3, 0, length)


def int_param(v):
    return field(1, 0, v)


def float_param(v):
    return field(2, 1, struct.pack("<d", v))


def output_spec(dtype, shape, shared=None):
    out = field(1, 0, dtype) + packed(2, shape)
    if shared is not None:
        out += field(3, 2, shared)
    return out


def invoke(kernel, inputs=(), params=(), outputs=(), version=0, state=""):
    out = string(1, kernel)
    if version:
        out += field(2, 0, version)
    if state:
        out += string(3, state)
    for t in inputs:
        out += field(4, 2, t)
    for p in params:
        out += field(5, 2, p)
    for o in outputs:
        out += field(6, 2, o)
    return out


# --- metadata: selector byte (0 timeout, 1 traceparent, 2 grpc-message) ----
for i, value in enumerate(["250m", "99999999S", "1H", "7u", "0n", "5", "1.5S", "123456789S"]):
    write("metadata", f"timeout-{i}", b"\x00" + value.encode())
for i, value in enumerate([
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
]):
    write("metadata", f"traceparent-{i}", b"\x01" + value.encode())
for i, value in enumerate(["plain text", "100% ok", "naïve\n", "%4", "%zz%41"]):
    write("metadata", f"message-{i}", b"\x02" + value.encode())


# --- grpc_framing: limit byte, chunk byte, body -----------------------------
def frame(payload, flag=0, length=None):
    return bytes([flag]) + struct.pack(">I", len(payload) if length is None else length) + payload


write("grpc_framing", "one", [64, 3] + list(frame(b"hello")))
write("grpc_framing", "two-and-empty", [64, 1] + list(frame(b"hello") + frame(b"")))
write("grpc_framing", "compressed", [64, 7] + list(frame(b"hello", flag=1)))
write("grpc_framing", "bad-flag", [64, 7] + list(frame(b"hello", flag=2)))
write("grpc_framing", "oversize", [1, 2] + list(frame(b"hello")))
write("grpc_framing", "truncated", [64, 2] + list(frame(b"hel", length=5)))
# Limit 1 << 18: announced lengths beyond the 64 KiB receive-budget threshold.
write("grpc_framing", "budget", [128 + 64, 5] + list(frame(b"xx", length=200_000)))
write("grpc_framing", "short-prefix", [64, 1, 0, 0, 0])

# --- requests: selector byte (see tandem_worker::fuzzing::requests) ---------
U8, I32, I64, F32, F64 = 1, 2, 3, 4, 5
options_row = struct.pack("<6d", 100.0, 100.0, 0.05, 0.2, 1.0, 1.0)
requests = {
    "invoke-noop": invoke("diagnostics.noop", [tensor(U8, [3], b"abc"), tensor(U8, [0])]),
    "invoke-blake3": invoke("hash.blake3", [tensor(U8, [5], b"hello")], [int_param(32)], [output_spec(U8, [32])]),
    "invoke-montecarlo": invoke(
        "montecarlo.european",
        [tensor(F64, [1, 6], options_row), tensor(I64, [1], struct.pack("<q", 7))],
        [int_param(1000), int_param(1), int_param(0)],
        [output_spec(F64, [1]), output_spec(F64, [1])],
    ),
    "invoke-topk-no-state": invoke(
        "similarity.topk",
        [tensor(F32, [1, 2], struct.pack("<2f", 1.0, 0.0))],
        [int_param(1), int_param(0)],
        [output_spec(I64, [1, 1]), output_spec(F32, [1, 1])],
        state="c",
    ),
    "invoke-shared": invoke("diagnostics.noop", [tensor(U8, [4], shared=shared_ref("r", 0, 4)), tensor(U8, [0])]),
    "invoke-bad-version": invoke("diagnostics.noop", version=99),
    "invoke-float-param": invoke("montecarlo.european", params=[float_param(float("nan"))]),
}
for name, body in requests.items():
    write("requests", name, b"\x00" + body)
write("requests", "stream-header", b"\x01" + field(1, 2, string(1, "hash.blake3") + field(4, 2, output_spec(U8, [32]))))
write("requests", "stream-data", b"\x01" + string(2, b"chunk"))
write("requests", "stream-shared", b"\x01" + field(3, 2, shared_ref("r", 8, 16)))
vectors = struct.pack("<4f", 1.0, 0.0, 0.0, 1.0)
write("requests", "create-state", b"\x02" + string(1, "c") + string(2, "vector_collection")
      + field(3, 2, tensor(F32, [2, 2], vectors)) + field(3, 2, tensor(I64, [2], struct.pack("<2q", 10, 11))))
write("requests", "create-state-omitted", b"\x02" + string(1, "c") + string(2, "vector_collection")
      + field(3, 2, tensor(F32, [1, 2], vectors[:8])) + field(3, 2, tensor(0, [])))
write("requests", "drop-state", b"\x03" + string(1, "c"))
write("requests", "register-shm", b"\x05" + string(1, "r") + string(2, "/dev/shm/x") + field(3, 0, 4096))
write("requests", "unregister-shm", b"\x06" + string(1, "r"))
write("requests", "health", b"\x0a" + string(1, "tandem.v1.Accelerator"))
write("requests", "stream-header-direct", b"\x0b" + string(1, "hash.blake3") + field(3, 2, int_param(32)))


# --- abi: see native/fuzz/src/abi.rs for the layout --------------------------
def abi_tensor(dtype, rank, dims, len_mode=0, flags=0):
    dims = list(dims) + [0] * (4 - len(dims))
    return bytes([dtype, rank] + dims + [len_mode, flags])


def abi_call(mode, pick, inputs, outputs, params, fills):
    body = bytes([mode, pick, 0, len(inputs)]) + b"".join(inputs) + b"".join(fills[0])
    body += bytes([len(outputs)]) + b"".join(outputs) + b"".join(fills[1])
    body += bytes([len(params)]) + b"".join(params)
    return body + b"\x00\x00"


def abi_int(v):
    return bytes([1, v + 8, 0, 0])


# Kernel picks index the library's kernels in Describe order; seeds try each.
for pick in range(4):
    write("abi", f"invoke-u8-pair-{pick}", abi_call(
        0, pick, [abi_tensor(U8, 1, [5]), abi_tensor(U8, 1, [0])], [], [], ([b"hello", b""], [])))
    write("abi", f"submit-u8-{pick}", abi_call(
        1, pick, [abi_tensor(U8, 1, [5])], [abi_tensor(U8, 1, [8])], [abi_int(32)], ([b"hello"], [b""])))
    write("abi", f"invoke-f64-{pick}", abi_call(
        0, pick, [abi_tensor(F64, 2, [1, 6]), abi_tensor(I64, 1, [1])],
        [abi_tensor(F64, 1, [1]), abi_tensor(F64, 1, [1])], [abi_int(100), abi_int(1), abi_int(0)],
        ([options_row, struct.pack("<q", 7)], [b"", b""])))
write("abi", "overlap", abi_call(
    0, 0, [abi_tensor(U8, 1, [8])], [abi_tensor(U8, 1, [8], flags=0xc0)], [], ([b"12345678"], [b""])))
write("abi", "misaligned", abi_call(
    0, 1, [abi_tensor(F64, 2, [1, 6], flags=0x30)], [], [], ([options_row], [])))
write("abi", "null-data", abi_call(0, 2, [abi_tensor(U8, 1, [4], flags=0x0f)], [], [], ([b""], [])))
write("abi", "too-many", abi_call(0, 3, [abi_tensor(U8, 1, [1])] * 9, [], [], ([b"x"] * 9, [])))
write("abi", "raw-name", bytes([0, 0xf3]) + b"no.such.kernel")
write("abi", "bad-utf8", bytes([0, 0xf1, 0xff, 0xfe]))
# State: kind pick 0, hint 0, two tensors (f32 [2,2] vectors, i64 [2] ids), then topk.
state = bytes([2, 0, 0, 2]) + abi_tensor(F32, 2, [2, 2]) + abi_tensor(I64, 1, [2]) + vectors + struct.pack("<2q", 1, 2)
for pick in range(4):
    write("abi", f"state-then-{pick}", state + abi_call(0, pick, [abi_tensor(F32, 2, [1, 2])],
          [abi_tensor(I64, 2, [1, 1]), abi_tensor(F32, 2, [1, 1])], [abi_int(1), abi_int(0)],
          ([struct.pack("<2f", 1.0, 0.0)], [b"", b""]))[1:])
# Streams: open, update "hello", finalize 32 bytes, update after, free twice.
for pick in range(4):
    write("abi", f"stream-{pick}", bytes([3, pick, 4, 0, 5]) + b"hello" + bytes([2, 32, 1, 0, 3]))
write("abi", "stream-forged", bytes([3, 2, 2, 0xe0]) + struct.pack("<Q", 12345) + bytes([0]) + bytes([3]))

for target in ("abi", "grpc_framing", "metadata", "requests"):
    os.makedirs(os.path.join(HERE, "regressions", target), exist_ok=True)
    keep = os.path.join(HERE, "regressions", target, ".gitkeep")
    open(keep, "a").close()
print("seeds written:", sum(len(os.listdir(os.path.join(HERE, "corpus", t))) for t in os.listdir(os.path.join(HERE, "corpus"))))
