"""The ONNX export round trip: a traced C program, exported by `kiln export` and run by ONNX
Runtime, must compute what the program computed eagerly.

For each define-by-run example (tools/examples: mlp, cnn, transformer) this runs the built
executable into a fresh folder (it writes NAME.kir, NAME_input.npy, NAME_output.npy), exports
NAME.kir at each opset given, checks the model with onnx.checker (full check, with shape
inference), runs it in onnxruntime on NAME_input.npy and compares with NAME_output.npy
(rtol 1e-4, atol 1e-5). With --ops-test it also runs the op-family cases of
tests/unit/test_onnx_export.c (which dumps them) through onnxruntime against kiln's outputs.

    python3 ort_roundtrip.py --kiln build/tools/kiln --venv .venv \\
        --example mlp=build/tools/examples/mlp [--example ...] [--opset 17 --opset 20]

It needs onnx and onnxruntime: run by a Python that lacks them, it re-runs itself with the
--venv's Python; where that has none either it exits 77 (meson's "skipped")."""
import argparse
import os
import subprocess
import sys
import tempfile

SKIP = 77


def ensure_runtime(venv):
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        return
    except ImportError as e:
        missing = str(e)
    venv_python = os.path.join(venv, "bin", "python") if venv else ""
    if venv_python and os.path.exists(venv_python) and \
            os.path.realpath(sys.executable) != os.path.realpath(venv_python) and \
            not os.environ.get("KL_ORT_ROUNDTRIP_REEXEC"):
        os.environ["KL_ORT_ROUNDTRIP_REEXEC"] = "1"
        os.execv(venv_python, [venv_python] + sys.argv)
    print(f"SKIP: onnx/onnxruntime not available ({missing}); run tools/setup.sh for {venv or '.venv'}")
    sys.exit(SKIP)


def run_one(kiln, name, exe, opset, tmp):
    import numpy as np
    import onnx
    import onnxruntime as ort

    out_dir = os.path.join(tmp, name)
    os.makedirs(out_dir, exist_ok=True)
    kir = os.path.join(out_dir, name + ".kir")
    if not os.path.exists(kir):
        subprocess.run([exe, out_dir], check=True, stdout=subprocess.DEVNULL)
    path = os.path.join(out_dir, f"{name}_opset{opset}.onnx")
    r = subprocess.run([kiln, "export", kir, "-o", path, "--opset", str(opset)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"kiln export failed ({r.returncode}): {r.stderr.strip()}"
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the checker raises several exception types
        return f"onnx.checker: {e}"
    if model.producer_name != "kiln" or [o.version for o in model.opset_import if not o.domain] != [opset]:
        return f"producer {model.producer_name!r}, opsets {model.opset_import}"
    typed = {vi.name for vi in list(model.graph.value_info) + list(model.graph.output)}
    if not typed:
        return "no value_info"
    x = np.load(os.path.join(out_dir, name + "_input.npy"))
    want = np.load(os.path.join(out_dir, name + "_output.npy"))
    opts = ort.SessionOptions()
    # Graph rewrites would compare ORT's fused kernels, not the exported graph.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        return f"expected one graph input, the export has {len(inputs)}"
    (got,) = sess.run(None, {inputs[0].name: x})
    if got.shape != want.shape:
        return f"output shape {got.shape}, eager {want.shape}"
    if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        err = np.abs(got.astype(np.float64) - want)
        return f"max abs error {err.max():.3g} beyond rtol 1e-4, atol 1e-5"
    n_nodes = len(model.graph.node)
    print(f"ok   {name} opset {opset}: {n_nodes} ONNX nodes, "
          f"max abs error {np.abs(got.astype(np.float64) - want).max():.3g}")
    return None


def run_ops(exe, tmp):
    """The op-family cases of test_onnx_export, dumped by it, through ONNX Runtime."""
    import glob

    import numpy as np
    import onnx
    import onnxruntime as ort

    dump = os.path.join(tmp, "ops")
    os.makedirs(dump, exist_ok=True)
    env = dict(os.environ, KL_ONNX_EXPORT_DUMP=dump)
    r = subprocess.run([exe], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {exe} exited {r.returncode}: {r.stderr[-2000:]}")
        return 1
    failures = 0
    models = sorted(glob.glob(os.path.join(dump, "*.onnx")))
    for path in models:
        case = os.path.basename(path)[:-len(".onnx")]
        why = None
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            feeds = {}
            for i, vi in enumerate(sess.get_inputs()):
                feeds[vi.name] = np.load(os.path.join(dump, f"{case}_in{i}.npy"))
            outs = sess.run(None, feeds)
            for k, got in enumerate(outs):
                want = np.load(os.path.join(dump, f"{case}_out{k}.npy"))
                if got.shape != want.shape or got.dtype != want.dtype:
                    why = f"output {k}: {got.dtype}{got.shape}, kiln {want.dtype}{want.shape}"
                elif not np.allclose(got, want, rtol=1e-4, atol=1e-5, equal_nan=True):
                    err = np.abs(got.astype(np.float64) - want.astype(np.float64)).max()
                    why = f"output {k}: max abs error {err:.3g}"
                if why:
                    break
        except Exception as e:  # the checker and ORT raise several exception types
            why = f"{type(e).__name__}: {str(e)[:500]}"
        if why:
            failures += 1
            print(f"FAIL ops {case}: {why}")
        else:
            print(f"ok   ops {case}")
    if not models:
        print(f"FAIL {exe} dumped no models")
        return 1
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--venv", default="")
    ap.add_argument("--example", action="append", default=[], metavar="NAME=EXE")
    ap.add_argument("--opset", action="append", type=int, default=[])
    ap.add_argument("--ops-test", default="", metavar="EXE",
                    help="test_onnx_export: run its op-family cases through ONNX Runtime too")
    args = ap.parse_args()
    ensure_runtime(args.venv)
    opsets = args.opset or [17, 13, 20]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="kiln-ort-") as tmp:
        if args.ops_test:
            failures += run_ops(args.ops_test, tmp)
        for spec in args.example:
            name, _, exe = spec.partition("=")
            for opset in opsets:
                why = run_one(args.kiln, name, exe, opset, tmp)
                if why:
                    failures += 1
                    print(f"FAIL {name} opset {opset}: {why}")
    if not args.example and not args.ops_test:
        print("no --example or --ops-test given")
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
