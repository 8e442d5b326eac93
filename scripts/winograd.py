#!/usr/bin/env python3
"""Derives Winograd F(m, 3) matrices for a set of interpolation points and measures their
float32 error, as used to choose Soma's F(4×4, 3×3) and F(5×5, 3×3) kernels
(Sources/SomaKernels/conv_kernels.inc.h).

For points a_0 … a_{n−2} and ∞ (n = m + 2): Aᵀ[i, j] = a_jⁱ (last column e_{m−1}), G[j, k] =
a_jᵏ / Π_{l≠j}(a_j − a_l) (last row e_2), and Bᵀ solves Aᵀ[(G g) ⊙ (Bᵀ d)] = the correlation
of d with g for every d and g. The script then checks the row-scaled matrices the C kernels
use (Bᵀ's rows multiplied to integers, G's rows divided by the same) and prints, per point
set, the largest and the rms float32 error of a 2-D tile against float64, relative to the
largest output.

Usage: python3 scripts/winograd.py   (needs numpy)
"""
import numpy as np


def matrices(m, points, r=3):
    n = m + r - 1
    assert len(points) == n - 1
    at = np.zeros((m, n))
    g = np.zeros((n, r))
    for j, a in enumerate(points):
        at[:, j] = [a**i for i in range(m)]
        f = np.prod([a - b for b in points if b != a])
        g[j] = [a**k / f for k in range(r)]
    at[m - 1, n - 1] = 1
    g[n - 1, r - 1] = 1
    # Bᵀ: Σ_j Aᵀ[i, j] G[j, k] Bᵀ[j, l] = [l == i + k] for all i, k, l; linear in Bᵀ.
    rows, rhs = [], []
    for i in range(m):
        for k in range(r):
            for l in range(n):
                row = np.zeros((n, n))
                row[:, l] = at[i, :] * g[:, k]
                rows.append(row.ravel())
                rhs.append(1.0 if l == i + k else 0.0)
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return at, g, sol.reshape(n, n)


def tile_error(at, g, bt, trials=2000, seed=0):
    m, n = at.shape
    r = g.shape[1]
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((trials, n, n))
    w = rng.standard_normal((trials, r, r))
    exact = np.zeros((trials, m, m))
    for i in range(m):
        for j in range(m):
            exact[:, i, j] = np.einsum("tab,tab->t", d[:, i:i + r, j:j + r], w)
    f = lambda x: x.astype(np.float32)
    u = f(g) @ f(w) @ f(g.T)
    v = f(bt) @ f(d) @ f(bt.T)
    y = (f(at) @ (u * v) @ f(at.T)).astype(np.float64)
    scale = np.abs(exact).max()
    return np.abs(y - exact).max() / scale, np.sqrt(((y - exact) ** 2).mean()) / scale


def exact_tile(at, g, bt):
    """Largest error of one float64 tile: the matrices must reproduce the correlation."""
    m, n = at.shape
    rng = np.random.default_rng(1)
    d, w = rng.standard_normal((n, n)), rng.standard_normal((3, 3))
    want = np.array([[np.sum(d[i:i + 3, j:j + 3] * w) for j in range(m)] for i in range(m)])
    return np.abs(at @ ((g @ w @ g.T) * (bt @ d @ bt.T)) @ at.T - want).max()


# The matrices in conv_kernels.inc.h (F(5×5): Bᵀ's rows scaled to integers, G's by the inverse).
KERNELS = {
    4: (
        [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
         [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
    5: (
        [[4, -8, -5, 10, 1, -2, 0], [0, 4, -4, -9, 1, 2, 0], [0, -4, 12, -7, -3, 2, 0],
         [0, 2, -3, -4, 3, 2, 0], [0, -2, 5, 0, -5, 2, 0], [0, 4, 0, -5, 0, 1, 0],
         [0, -4, 8, 5, -10, -1, 2]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [1 / 18, -1 / 18, 1 / 18],
         [1 / 72, 1 / 36, 1 / 18], [-1 / 120, 1 / 60, -1 / 30], [32 / 45, 16 / 45, 8 / 45],
         [0, 0, 1 / 2]],
        [[1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1 / 2, 0], [0, 1, 1, 4, 4, 1 / 4, 0],
         [0, 1, -1, 8, -8, 1 / 8, 0], [0, 1, 1, 16, 16, 1 / 16, 1]],
    ),
}

if __name__ == "__main__":
    for m, (bt, g, at) in KERNELS.items():
        at, g, bt = (np.array(x, dtype=np.float64) for x in (at, g, bt))
        err = exact_tile(at, g, bt)
        print(f"kernel F({m}×{m}, 3×3) matrices: float64 tile error {err:.1e}")
        assert err < 1e-10, "the kernel's matrices do not give the correlation"
    print("float32 error of one tile, relative to the largest output (largest, rms):")
    candidates = [
        (4, [0, 1, -1, 2, -2]),
        (5, [0, 1, -1, 2, -2, 0.5]),
        (5, [0, 1, -1, 0.5, -0.5, 2]),
        (5, [0, 1, -1, 2, -2, 3]),
        (6, [0, 1, -1, 2, -2, 0.5, -0.5]),
    ]
    for m, pts in candidates:
        big, rms = tile_error(*matrices(m, pts))
        print(f"  F({m}×{m}) points {pts} + ∞: {big:.1e}, {rms:.1e}")
