#!/usr/bin/env python3
"""Compares the weights of two soma checkpoints (safetensors files), with the standard library
only, and exits 1 when they differ by more than allowed.

    scripts/compare-checkpoints.py A.safetensors B.safetensors              # bit for bit
    scripts/compare-checkpoints.py A B TOLERANCE [SHARE CAP]

With TOLERANCE alone every weight must agree within it. With SHARE and CAP, a share SHARE of
the weights (e.g. 0.001) may differ by more, up to CAP: Adam divides each gradient by its own
running size, so a weight whose gradient is at rounding level (a neuron that hardly ever spikes)
moves by up to the learning rate on rounding noise alone. Only the network's tensors are
compared (not the optimizer state a final.safetensors adds).
"""
import json
import struct
import sys
from array import array


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name.startswith("optimizer."):
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {info['dtype']}, not F32")
        lo, hi = info["data_offsets"]
        values = array("f")
        values.frombytes(body[lo:hi])
        if sys.byteorder != "little":
            values.byteswap()
        out[name] = (info["shape"], values)
    return out


def main():
    if len(sys.argv) not in (3, 4, 6):
        sys.exit(__doc__)
    a, b = read(sys.argv[1]), read(sys.argv[2])
    tolerance = float(sys.argv[3]) if len(sys.argv) >= 4 else 0.0
    share, cap = (float(sys.argv[4]), float(sys.argv[5])) if len(sys.argv) == 6 else (0.0, tolerance)
    if sorted(a) != sorted(b):
        sys.exit(f"different tensors: {sorted(a)} and {sorted(b)}")
    worst, where, beyond, total = 0.0, None, 0, 0
    for name in sorted(a):
        (sa, va), (sb, vb) = a[name], b[name]
        if sa != sb:
            sys.exit(f"{name}: shapes {sa} and {sb}")
        diffs = [abs(x - y) for x, y in zip(va, vb)]
        total += len(diffs)
        beyond += sum(d > tolerance for d in diffs)
        d = max(diffs, default=0.0)
        if d > worst or where is None:
            worst, where = d, name
    print(
        f"{total} weights: {beyond} differ by more than {tolerance:g}; the largest difference is"
        f" {worst:.3g} (in {where}); allowed: {share:g} of them, up to {cap:g}"
    )
    sys.exit(0 if beyond <= share * total and worst <= cap else 1)


if __name__ == "__main__":
    main()
