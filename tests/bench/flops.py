#!/usr/bin/env python3
"""Counts the floating-point work of an ONNX model, for the benchmark's GFLOP/s column.

Only the ops that dominate the models benchmarked are counted, each multiply-add as 2 flops:
Conv (N x Cout x output pixels x Cin/group x kernel), Gemm (M x N x K) and MatMul (the
broadcast batch x M x N x K). Shapes come from ONNX shape inference, so batch 1 models with
static shapes are counted exactly; a node whose shapes cannot be inferred is reported in
`unknown` rather than guessed.

  flops.py MODEL.onnx      # prints {"flops": ..., "by_op": {...}, "unknown": [...]} as JSON
"""

import json
import math
import sys

import onnx
import onnx.shape_inference


def _shapes(model):
    """Maps every value name with a fully static shape to that shape (a list of ints)."""
    shapes = {}
    g = model.graph
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if all(d is not None for d in dims):
            shapes[vi.name] = dims
    return shapes


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def count(path):
    model = onnx.load(path)
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as e:  # a model shape inference rejects is counted as far as it goes
        print(f"flops.py: {path}: shape inference failed: {e}", file=sys.stderr)
    shapes = _shapes(model)
    by_op, unknown = {}, []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        ins = [shapes.get(n) for n in node.input[:2]]
        out = shapes.get(node.output[0])
        macs = None
        if node.op_type == "Conv" and ins[1] is not None and out is not None:
            # W is (Cout, Cin/group, k...); the output is (N, Cout, spatial...)
            macs = math.prod(out) * math.prod(ins[1][1:])
        elif node.op_type == "Gemm" and None not in ins:
            a, b = ins
            m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
            n = b[0] if _attr(node, "transB", 0) else b[1]
            macs = m * n * k
        elif node.op_type == "MatMul" and None not in ins and out is not None:
            a, b = ins
            k = a[-1] if len(a) >= 1 else 1
            macs = math.prod(out) * k  # every output element is one length-K dot product
        if macs is None:
            unknown.append(node.name or node.output[0])
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + 2 * macs
    return {"flops": sum(by_op.values()), "by_op": by_op, "unknown": unknown}


def main():
    if len(sys.argv) != 2:
        print("usage: flops.py MODEL.onnx", file=sys.stderr)
        return 2
    print(json.dumps(count(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
