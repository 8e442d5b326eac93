#!/usr/bin/env python3
"""Writes the small seed corpora in Fuzz/Corpus (hand-made files, NumPy's np.save and the
safetensors fixture that Tests/SomaDataTests reads). Run from the repository root; the output
is committed, so this only needs to run again when a seed should change."""
import base64, gzip, io, json, os, re, struct

try:
    import numpy as np
except ImportError:
    np = None

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


# The reliability issue's reproducer: dimensions 2^32-1, 2^32-1, 0 and no data.
repro = bytes.fromhex("00000803ffffffffffffffff00000000")
labels = idx([10], bytes(range(10)))
images = idx([2, 3, 4], bytes(range(24)))
for name, data in [("labels", labels), ("images", images), ("empty", idx([0, 28, 28], b"")),
                   ("reproducer", repro)]:
    put("FuzzIDX", name + ".idx", data)
    put("FuzzIDX", name + ".idx.gz", gz(data))

put("FuzzGzip", "text.gz", gz(b"hello, soma " * 20))
put("FuzzGzip", "two-members.gz", gz(b"first member\n") + gz(b"second member\n"))
put("FuzzGzip", "empty.gz", gz(b""))
put("FuzzGzip", "zeros.gz", gz(bytes(4096)))
put("FuzzGzip", "reproducer.gz", gz(repro))


def safetensors(header, data):
    h = header.encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


fixture = open(os.path.join(os.path.dirname(root), "..", "Tests", "SomaDataTests",
                            "SafeTensorsTests.swift")).read()
b64 = re.search(r'let pythonSafetensors = """\n(.*?)"""', fixture, re.S).group(1)
python_file = base64.b64decode(re.sub(r"[\s\\]", "", b64))
put("FuzzSafeTensors", "python.safetensors", python_file)
put("FuzzSafeTensors", "one.safetensors", safetensors(
    '{"__metadata__":{"hidden":"100"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
    struct.pack("<2f", 1.5, -2.0)))
put("FuzzSafeTensors", "empty.safetensors", safetensors("{}", b""))
put("FuzzSafeTensors", "zero-dim.safetensors", safetensors(
    '{"a":{"dtype":"F64","shape":[],"data_offsets":[0,8]},'
    '"b":{"dtype":"F32","shape":[0,4],"data_offsets":[8,8]}}', struct.pack("<d", 3.0)))

if np is not None:
    for name, arr in [("f4", np.arange(6, dtype=np.float32).reshape(2, 3)),
                      ("f8", np.array([1.0, -0.0, np.inf])),
                      ("scalar", np.array(2.5, dtype=np.float32)),
                      ("empty", np.zeros((0, 3), np.float32))]:
        buf = io.BytesIO()
        np.save(buf, arr)
        put("FuzzNPY", name + ".npy", buf.getvalue())
# Version 2.0 and a Python 2 style header, by hand.
h2 = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"
h2 += b" " * ((64 - (12 + len(h2) + 1) % 64) % 64) + b"\n"
put("FuzzNPY", "v2.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(h2)) + h2
    + struct.pack("<f", 7.0))
h1 = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1L, 2L), }"
h1 += b" " * ((64 - (10 + len(h1) + 1) % 64) % 64) + b"\n"
put("FuzzNPY", "py2.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h1)) + h1
    + struct.pack("<2d", 1.0, 2.0))

for i, text in enumerate([
        python_file[8:8 + struct.unpack("<Q", python_file[:8])[0]].decode(),
        '{"a": [1, -0, 2.5e-3, 1E+2, true, false, null], "b": {"c": "\\u00e9\\ud83d\\ude00"}}',
        '[[[[[[[[[[]]]]]]]]]]', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', "-12345678901234567890",
        '{"x": 1, "x": 2}', "1e999"]):
    put("FuzzJSON", "seed%d.json" % i, text.encode())

# Checkpoints: soma's metadata over safetensors, in both formats soma reads (a 6-3-10 spytorch
# network, small weights); the fuzzer mutates the metadata JSON and the tensor table.
def checkpoint(meta, tensors):
    header = {"__metadata__": meta}
    data = b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, sort_keys=True)
    return safetensors(text, data)


w1 = [((i * 7) % 11 - 5) * 0.1 for i in range(3 * 6)]
w2 = [((i * 5) % 7 - 3) * 0.1 for i in range(10 * 3)]
put("FuzzCheckpoint", "format1.safetensors", checkpoint(
    {"format": "soma-checkpoint-1", "model": "mlp", "inputs": "6", "hidden": "3",
     "outputs": "10", "time_steps": "4", "surrogate": "S2NN", "tau_syn": "0.005",
     "tau_mem": "0.01", "encoder": "latency"},
    {"hidden.weight": ([3, 6], w1), "readout.weight": ([10, 3], w2)}))
layers = json.dumps([
    {"bias": False, "inputs": 6, "outputs": 3, "type": "Linear"},
    {"alpha": 0.8187307530779818, "beta": 0.9048374180359595, "reset": "zero",
     "surrogate": "S2NN:alpha=4.0,beta=1.0,epsilon=1e-08", "threshold": 1, "type": "CUBALIF"},
    {"bias": False, "inputs": 3, "outputs": 10, "type": "Linear"},
    {"alpha": 0.8187307530779818, "beta": 0.9048374180359595, "type": "LeakyIntegrator"}],
    sort_keys=True, separators=(",", ":"))
put("FuzzCheckpoint", "format2.safetensors", checkpoint(
    {"format": "soma-checkpoint-2", "model": "spytorch", "layers": layers,
     "loss": "maxMembraneNLL", "time_steps": "4", "encoder": "latency", "inputs": "6",
     "outputs": "10", "hidden": "3", "surrogate": "S2NN:alpha=4.0,beta=1.0,epsilon=1e-08"},
    {"0.weight": ([3, 6], w1), "2.weight": ([10, 3], w2)}))

# NIR (HDF5): the small files of SomaNIRTests' fixtures (make_nir_fixtures.py writes them with
# the nir package), each under fuzz.sh's 64 KiB input limit: a Norse LIF/LI chain, an snnTorch
# Leaky chain, a Conv2d/LIF/AvgPool2d/Flatten/Affine graph (whose input_shape is off by one, so
# a mutation away from importing), a LIF that lacks its tau, and FuzzNIR's finds, which HDF5
# 1.10 read past its buffer: an integer type 91 bytes wide and a chunk shorter than its shape.
fixtures = os.path.join(os.path.dirname(root), "..", "Tests", "SomaNIRTests", "Fixtures")
for src, name in [("norse_lifbox.nir", "norse.nir"), ("snntorch_leaky.nir", "snntorch.nir"),
                  ("bad/conv_input_shape.nir", "conv.nir"),
                  ("bad/missing_field.nir", "missing-field.nir"),
                  ("bad/wide_integer.nir", "wide-integer.nir"),
                  ("bad/short_chunk.nir", "short-chunk.nir")]:
    with open(os.path.join(fixtures, src), "rb") as f:
        put("FuzzNIR", name, f.read())
