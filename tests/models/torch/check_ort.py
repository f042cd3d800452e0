"""Checks a model that `kiln export` wrote: onnx.checker accepts it (full check, with shape
inference) and ONNX Runtime, run on the test input, gives PyTorch's output within tolerance.
Run with the venv's Python (onnx and onnxruntime; tools/setup.sh).

  check_ort.py MODEL.onnx INPUT.npy WANT.npy [--rtol R] [--atol A]

Exits 0 when both hold, 1 when either fails, 77 when onnx or onnxruntime is not installed.
"""

import argparse
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("input")
    parser.add_argument("want")
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--atol", type=float, default=1e-4)
    args = parser.parse_args()
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        print(f"check_ort: {e}", file=sys.stderr)
        return 77

    try:
        onnx.checker.check_model(args.model, full_check=True)
    except Exception as e:  # the checker raises several types; any of them is a failure
        print(f"check_ort: onnx.checker rejects {args.model}: {e}", file=sys.stderr)
        return 1
    print(f"onnx.checker accepts {args.model}")

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # not the warnings about initializers no node uses
    try:
        session = onnxruntime.InferenceSession(args.model, options,
                                               providers=["CPUExecutionProvider"])
        x = np.load(args.input)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception as e:
        print(f"check_ort: ONNX Runtime cannot run {args.model}: {e}", file=sys.stderr)
        return 1
    want = np.load(args.want)
    if got.shape != want.shape or got.dtype != want.dtype:
        print(f"check_ort: ONNX Runtime gives {got.dtype} {got.shape}, PyTorch "
              f"{want.dtype} {want.shape}", file=sys.stderr)
        return 1
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = int((err > args.atol + args.rtol * np.abs(want.astype(np.float64))).sum())
    print(f"ONNX Runtime on the export: max abs error {float(err.max()):.3g} against PyTorch; "
          f"{bad} of {want.size} beyond rtol {args.rtol:g} atol {args.atol:g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
