#!/usr/bin/env python3
"""Checks the conformance harness itself: builds small cases whose verdict is known (a right
answer, one within tolerance, a wrong value, a NaN in the wrong place, a wrong shape or dtype,
an unknown op, a file that is not a model, a data.json tolerance, a second data set that is
wrong, a Reshape whose shape is a graph input read at run time, with two data sets of other
shapes or of the same one) and asserts that `conformance --verbose` classifies each as
expected, the compiled path included (the Reshapes compile with their shape bound).

    .venv/bin/python tests/onnx/selftest.py BUILD/tests/onnx/conformance
"""

import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def neg_model(op="Neg", shape=(2, 3)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def reshape_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "g",
                              [x, shape], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def shape_of_symbolic_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [2])
    graph = helper.make_graph([helper.make_node("Shape", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def write_case(root, name, model, data_sets, data_json=None):
    case_dir = os.path.join(root, name)
    os.makedirs(case_dir)
    path = os.path.join(case_dir, "model.onnx")
    if isinstance(model, bytes):
        with open(path, "wb") as f:
            f.write(model)
    else:
        onnx.save(model, path)
    if data_json:
        with open(os.path.join(case_dir, "data.json"), "w") as f:
            f.write(data_json)
    for n, (inputs, outputs) in enumerate(data_sets):
        set_dir = os.path.join(case_dir, f"test_data_set_{n}")
        os.makedirs(set_dir)
        for kind, arrays in (("input", inputs), ("output", outputs)):
            for k, a in enumerate(arrays):
                with open(os.path.join(set_dir, f"{kind}_{k}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(a).SerializeToString())


def check_crashes(harness, root_cases):
    """A case that crashes or hangs is counted as crashed, the others still run, and the exit
    status is 1."""
    env = dict(os.environ, CONFORMANCE_SELFTEST_CRASH="test_neg_right",
               CONFORMANCE_SELFTEST_HANG="test_neg_infinity")
    with tempfile.TemporaryDirectory() as root:
        for name in ("test_neg_right", "test_neg_infinity", "test_neg_wrong_shape"):
            model, sets, data_json, _, _ = root_cases[name]
            write_case(root, name, model, sets, data_json)
        run = subprocess.run([harness, root, "--timeout", "1", "--jobs", "2"], env=env,
                             capture_output=True, text=True)
    want = ["crash       test_neg_infinity [Neg]: timed out after 1 s",
            "crash       test_neg_right [Neg]: ",
            "3 cases: 0 passed, 1 failed, 0 unsupported, 0 errors, 2 crashed"]
    missing = [w for w in want if w not in run.stdout]
    if missing or run.returncode != 1:
        print(f"selftest: crash check: exit {run.returncode}, output {run.stdout!r}, "
              f"missing {missing}")
        return 1
    return 0


def check_dump(harness):
    """dump_node_tests.py writes the package's test_neg* cases and the harness runs them."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dump_node_tests.py")
    with tempfile.TemporaryDirectory() as root:
        subprocess.run([sys.executable, script, root, "--filter", "test_neg"], check=True)
        with open(os.path.join(root, "index.txt")) as f:
            index = [line.split("\t") for line in f]
        run = subprocess.run([harness, root], capture_output=True, text=True)
    names = [row[0] for row in index]
    if "test_neg" not in names or any(row[1] != "Neg" for row in index):
        print(f"selftest: dump_node_tests.py wrote an unexpected index: {index}")
        return 1
    if not run.stdout.startswith(f"{len(names)} cases: "):
        print(f"selftest: the harness on the dumped cases printed {run.stdout!r}")
        return 1
    return 0


def main():
    harness = sys.argv[1]
    x = np.array([[1.0, -2.0, 3.5], [0.25, -0.5, 100.0]], dtype=np.float32)
    y = -x
    # name: (model, data sets, data.json, expected kind, expected text in the reason)
    cases = {}

    def case(name, model, sets, kind, text="", data_json=None):
        cases[name] = (model, sets, data_json, kind, text)

    case("test_neg_right", neg_model(), [([x], [y])], "pass")
    case("test_neg_within_rtol", neg_model(), [([x], [y * np.float32(1 + 5e-4)])], "pass")
    wrong = y.copy()
    wrong.flat[4] *= 1.01
    case("test_neg_wrong_value", neg_model(), [([x], [wrong])], "fail",
         "output 0: wrong value at index 4 (got 0.5, want 0.504999995); 1 of 6 differ")
    case("test_neg_loose_tolerance", neg_model(), [([x], [wrong])], "pass",
         data_json='{"rtol": 0.05, "atol": 1e-07}')
    x_nan = x.copy()
    x_nan.flat[1] = np.nan
    case("test_neg_nan_expected", neg_model(), [([x_nan], [-x_nan])], "pass")
    y_nan = y.copy()
    y_nan.flat[2] = np.nan
    case("test_neg_nan_misplaced", neg_model(), [([x], [y_nan])], "fail",
         "wrong value at index 2 (got -3.5, want nan)")
    x_inf = x.copy()
    x_inf.flat[0] = np.inf
    case("test_neg_infinity", neg_model(), [([x_inf], [-x_inf])], "pass")
    case("test_neg_infinity_sign", neg_model(), [([x_inf], [x_inf])], "fail",
         "wrong value at index 0 (got -inf, want inf)")
    case("test_neg_wrong_shape", neg_model(), [([x], [y.reshape(3, 2)])], "fail",
         "output 0: wrong shape: got [2, 3], want [3, 2]")
    case("test_neg_wrong_dtype", neg_model(), [([x], [y.astype(np.float64)])], "fail",
         "output 0: wrong dtype: got f32, want f64")
    case("test_neg_second_set_wrong", neg_model(), [([x], [y]), ([x], [wrong])], "fail",
         "test_data_set_1: output 0: wrong value at index 4")
    case("test_no_such_op", neg_model("NoSuchOp"), [([x], [y])], "unsupported", "NoSuchOp")
    case("test_not_a_model", b"\xff\xff\xff\xff this is not protobuf", [([x], [y])], "error",
         "import: ")

    # Reshape's shape is a graph input: read at run time (onnx::Deferred), each data set gets
    # its own output shape, with no --freeze-inputs.
    sets = [([x, np.array([3, 2], np.int64)], [x.reshape(3, 2)]),
            ([x, np.array([6, 1], np.int64)], [x.reshape(6, 1)])]
    case("test_reshape_runtime_shape", reshape_model(), sets, "pass")
    # The same with one shape for both data sets: one library, compiled with the shape bound.
    sets = [([x, np.array([3, 2], np.int64)], [x.reshape(3, 2)]),
            ([x * 2, np.array([3, 2], np.int64)], [(x * 2).reshape(3, 2)])]
    case("test_reshape_same_shape", reshape_model(), sets, "pass")
    # Shape of an input with a symbolic dim: the interpreter passes, but there is no value to
    # bind that would make it static, so the compiled path says why it is not compilable.
    case("test_shape_symbolic", shape_of_symbolic_model(), [([x], [np.array([2, 3], np.int64)])],
         "pass")

    with tempfile.TemporaryDirectory() as root:
        for name, (model, sets, data_json, _, _) in cases.items():
            write_case(root, name, model, sets, data_json)
        run = subprocess.run([harness, root, "--verbose", "--jobs", "2"],
                             capture_output=True, text=True)
    sys.stderr.write(run.stderr)
    print(run.stdout, end="")
    failures = 0
    if run.returncode != 0:
        print(f"selftest: the harness exited with {run.returncode}, want 0")
        failures += 1
    seen = {}
    for line in run.stdout.splitlines():
        m = re.match(r"(\w+) +(\S+) \[([^\]]*)\](?: \(inputs frozen: [^)]*\))?(?:: (.*))?$", line)
        if m:
            seen[m.group(2)] = (m.group(1), m.group(3), m.group(4) or "")
    for name, (_, _, _, kind, text) in cases.items():
        got = seen.get(name)
        if not got or got[0] != kind or text not in got[2]:
            print(f"selftest: {name}: got {got}, want {kind} with {text!r}")
            failures += 1
    if "(inputs frozen" in run.stdout:
        print("selftest: a case froze inputs without --freeze-inputs")
        failures += 1
    if seen.get("test_no_such_op", ("", "", ""))[1] != "NoSuchOp":
        print("selftest: test_no_such_op is not labelled with its op NoSuchOp")
        failures += 1
    want_summary = f"{len(cases)} cases: 8 passed, 6 failed, 1 unsupported, 1 errors, 0 crashed"
    if want_summary not in run.stdout:
        print(f"selftest: no summary line '{want_summary} ...'")
        failures += 1
    # The compiled path (where kiln has LLVM): the Reshape cases compile with `shape` bound at
    # compile time (kiln compile --bind), one library per data set only where the values differ.
    if "\ncompiled: " in run.stdout:
        want_compiled = [
            "compiled: pass           test_reshape_runtime_shape [Reshape] (bound: shape (a "
            "library per data set: 2))",
            "compiled: pass           test_reshape_same_shape [Reshape] (bound: shape)",
            "compiled: pass           test_neg_right [Neg]",
            "compiled: not compilable test_shape_symbolic [Shape]: shapes not static: "
            "onnx::Deferred Shape node: at run time: node (unnamed, output 'y') (Shape): input "
            "'x' has a dynamic shape",
            "compiled: 7 passed (2 of them with inputs bound at compile time), 0 failed, "
            "1 not compilable"]
        for want in want_compiled:
            if want not in run.stdout:
                print(f"selftest: no line '{want}'")
                failures += 1
        if "test_neg_right [Neg] (bound" in run.stdout:
            print("selftest: a case with static shapes was compiled with inputs bound")
            failures += 1
    failures += check_crashes(harness, root_cases=cases)
    failures += check_dump(harness)
    print(f"selftest: {len(cases)} cases checked, {failures} wrong")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
