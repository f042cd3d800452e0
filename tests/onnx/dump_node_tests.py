#!/usr/bin/env python3
"""Writes the onnx package's backend node test cases to a folder for tests/onnx/conformance.

    .venv/bin/python tests/onnx/dump_node_tests.py OUT_DIR [--filter SUBSTR] [--link]
    build/tests/onnx/conformance OUT_DIR --report OUT.md

Each case becomes OUT_DIR/<case>/model.onnx and test_data_set_N/{input,output}_K.pb, with a
data.json where its tolerances differ from ONNX's defaults (rtol 1e-3, atol 1e-7), and
OUT_DIR/index.txt lists "case<TAB>op types<TAB>rtol<TAB>atol". onnx 1.17 ships the cases as
files, which are copied (or symlinked with --link); a version that builds them in memory
instead (TestCase.model set, no model_dir) has them serialized here with onnx.save and
SerializeToString.
"""

import argparse
import json
import os
import shutil
import sys

import onnx
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-7


def serialize_value(value, name, type_proto):
    """A test input or output as the proto its .pb file holds: a tensor, or a sequence or
    optional of them as the model's declared type says."""
    if type_proto is not None and type_proto.HasField("sequence_type"):
        return numpy_helper.from_list(list(value), name).SerializeToString()
    if type_proto is not None and type_proto.HasField("optional_type"):
        return numpy_helper.from_optional(value, name).SerializeToString()
    if isinstance(value, (list, tuple)):
        return numpy_helper.from_list(list(value), name).SerializeToString()
    return numpy_helper.from_array(value, name).SerializeToString()


def graph_inputs(model):
    """The model's real inputs: graph inputs that are not initializers (old-style models list
    initializers as inputs too)."""
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def write_in_memory_case(case, case_dir):
    os.makedirs(case_dir, exist_ok=True)
    model = case.model
    onnx.save(model, os.path.join(case_dir, "model.onnx"))
    inputs = graph_inputs(model)
    outputs = list(model.graph.output)
    for n, (ins, outs) in enumerate(case.data_sets or []):
        set_dir = os.path.join(case_dir, f"test_data_set_{n}")
        os.makedirs(set_dir, exist_ok=True)
        for kind, values, decls in (("input", ins, inputs), ("output", outs, outputs)):
            for k, value in enumerate(values):
                decl = decls[k] if k < len(decls) else None
                name = decl.name if decl is not None else f"{kind}_{k}"
                data = serialize_value(value, name, decl.type if decl is not None else None)
                with open(os.path.join(set_dir, f"{kind}_{k}.pb"), "wb") as f:
                    f.write(data)


def op_types(case_dir):
    model = onnx.load(os.path.join(case_dir, "model.onnx"), load_external_data=False)
    return ",".join(
        (n.domain + ":" if n.domain not in ("", "ai.onnx") else "") + n.op_type
        for n in model.graph.node
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--link", action="store_true",
                        help="symlink the package's case folders instead of copying them")
    args = parser.parse_args()

    cases = sorted(load_model_tests(kind="node"), key=lambda c: c.name)
    cases = [c for c in cases if args.filter in c.name]
    if not cases:
        sys.exit(f"dump_node_tests: no node test cases (onnx {onnx.__version__})")
    os.makedirs(args.out_dir, exist_ok=True)
    index = []
    for case in cases:
        case_dir = os.path.join(args.out_dir, case.name)
        if os.path.lexists(case_dir):
            if os.path.islink(case_dir) or not os.path.isdir(case_dir):
                os.remove(case_dir)
            else:
                shutil.rmtree(case_dir)
        if case.model_dir:
            if args.link:
                os.symlink(os.path.abspath(case.model_dir), case_dir)
            else:
                shutil.copytree(case.model_dir, case_dir)
        elif case.model is not None:
            write_in_memory_case(case, case_dir)
        else:
            print(f"dump_node_tests: {case.name}: neither files nor a model; skipped",
                  file=sys.stderr)
            continue
        rtol = getattr(case, "rtol", DEFAULT_RTOL)
        atol = getattr(case, "atol", DEFAULT_ATOL)
        json_path = os.path.join(case_dir, "data.json")
        if ((rtol, atol) != (DEFAULT_RTOL, DEFAULT_ATOL) and not os.path.exists(json_path)
                and not (args.link and case.model_dir)):
            with open(json_path, "w") as f:
                json.dump({"rtol": rtol, "atol": atol}, f)
        index.append(f"{case.name}\t{op_types(case_dir)}\t{rtol:g}\t{atol:g}\n")
    with open(os.path.join(args.out_dir, "index.txt"), "w") as f:
        f.writelines(index)
    print(f"dump_node_tests: {len(index)} cases from onnx {onnx.__version__} in {args.out_dir}")


if __name__ == "__main__":
    main()
