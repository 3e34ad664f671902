#!/usr/bin/env python3
"""Writes the committed seed corpora under tests/Tandem.Fuzz/corpus/<target>/.

descriptor: the reference kernels' encoded KernelSet (as the generated
contracts embed it), plus small hand-made sets; npy: .npy files as
numpy.save writes them (versions 1.0, 2.0, float32/float64) and near
misses; raw: dimension and Content-Length bytes (see UploadTargets.cs)
before little-endian f32 rows. Run again after changing an input layout.
"""
import base64
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(bytes(data))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def ld(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


generated = open(os.path.join(ROOT, "src/Tandem/Internal/Contracts/Generated/ReferenceKernels.g.cs")).read()
blobs = re.findall(r'FromBase64String\(\s*"([^"]+)"', generated)
for i, blob in enumerate(blobs):
    write("descriptor", f"reference-{i}", base64.b64decode(blob))
write("descriptor", "empty", b"")
write("descriptor", "one-bare-kernel", ld(2, ld(1, b"k")))
write("descriptor", "duplicate-kernel", ld(2, ld(1, b"k")) + ld(2, ld(1, b"k")))
write("descriptor", "state-kind-ref", ld(2, ld(1, b"k") + ld(8, b"s")) + ld(3, ld(1, b"s")))


def npy(descr, shape, data, version=1, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")")
    prefix = 10 if version == 1 else 12
    pad = (64 - (prefix + len(header) + 1) % 64) % 64
    header = (header + " " * pad + "\n").encode()
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + data


f4 = struct.pack("<4f", 1, 2, 3, 4)
f8 = struct.pack("<4d", 1, 2, 3, 4)
for chunk in (0, 3, 16):
    write("npy", f"f4-2x2-read{chunk + 1}", bytes([chunk]) + npy("<f4", (2, 2), f4))
write("npy", "f8-2x2", b"\x00" + npy("<f8", (2, 2), f8))
write("npy", "v2-f4", b"\x05" + npy("<f4", (1, 4), f4, version=2))
write("npy", "v3-f4", b"\x05" + npy("<f4", (4, 1), f4, version=3))
write("npy", "fortran", b"\x00" + npy("<f4", (2, 2), f4, fortran=True))
write("npy", "big-endian", b"\x00" + npy(">f4", (2, 2), f4))
write("npy", "one-d", b"\x00" + npy("<f4", (4,), f4))
write("npy", "truncated", b"\x00" + npy("<f4", (2, 2), f4)[:-3])
write("npy", "trailing", b"\x00" + npy("<f4", (2, 2), f4) + b"\x00")
write("npy", "huge-shape", b"\x00" + npy("<f4", (10 ** 12, 10 ** 6), b""))
write("npy", "empty-rows", b"\x00" + npy("<f4", (0, 4), b""))
write("npy", "not-npy", b"\x00" + b"PK\x03\x04 not an npy file")

rows = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
write("raw", "dim3-exact", bytes([5, 1]) + rows)
write("raw", "dim2-chunked", bytes([4, 0]) + rows)
write("raw", "dim3-declared-more", bytes([5, 2]) + rows)
write("raw", "dim3-declared-less", bytes([5, 3]) + rows)
write("raw", "dim4-partial-row", bytes([6, 1]) + rows)
write("raw", "dim0", bytes([2, 1]) + rows)
write("raw", "empty", bytes([5, 1]))
for target in ("descriptor", "npy", "raw"):
    os.makedirs(os.path.join(HERE, "regressions", target), exist_ok=True)
    open(os.path.join(HERE, "regressions", target, ".gitkeep"), "a").close()
