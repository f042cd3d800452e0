"""Compares kiln's output with PyTorch's, element by element, as numpy.allclose does:
|got - want| <= atol + rtol * |want|, with NaN equal only to NaN and shapes that must match.

  compare.py GOT.npy WANT.npy [--rtol R] [--atol A]

Prints the largest errors either way; exits 1 on a mismatch, 2 when a file cannot be read.
"""

import argparse
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("got")
    parser.add_argument("want")
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--atol", type=float, default=1e-4)
    args = parser.parse_args()
    try:
        got = np.load(args.got)
        want = np.load(args.want)
    except (OSError, ValueError) as e:
        print(f"compare: {e}", file=sys.stderr)
        return 2
    if got.shape != want.shape:
        print(f"compare: shape {got.shape} from kiln, {want.shape} from PyTorch", file=sys.stderr)
        return 1
    if got.dtype != want.dtype:
        print(f"compare: dtype {got.dtype} from kiln, {want.dtype} from PyTorch", file=sys.stderr)
        return 1
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    nan_differs = np.isnan(g) != np.isnan(w)
    with np.errstate(invalid="ignore"):
        err = np.abs(g - w)
        bad = (err > args.atol + args.rtol * np.abs(w)) & ~(np.isnan(g) & np.isnan(w))
    bad |= nan_differs
    finite = np.isfinite(err)
    max_abs = float(err[finite].max()) if finite.any() else 0.0
    rel = err / np.maximum(np.abs(w), 1e-30)
    max_rel = float(rel[finite].max()) if finite.any() else 0.0
    n_bad = int(bad.sum())
    print(f"compared {g.size} values {got.shape}: max abs error {max_abs:.3g}, "
          f"max rel error {max_rel:.3g}, |want| up to {float(np.nanmax(np.abs(w))):.3g}; "
          f"{n_bad} beyond rtol {args.rtol:g} atol {args.atol:g}")
    if n_bad:
        first = np.argwhere(bad)[:5]
        for idx in first:
            i = tuple(int(v) for v in idx)
            print(f"  at {i}: kiln {g[i]!r}, PyTorch {w[i]!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
