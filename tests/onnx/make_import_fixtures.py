#!/usr/bin/env python3
"""Writes the small ONNX models that tests/unit/test_onnx_import.c imports and runs.

Each model NAME goes to tests/onnx/fixtures/NAME.onnx with its inputs NAME.in<i>.npy and the
outputs ONNX Runtime computes for them, NAME.out<i>.npy (ONNX Runtime is the reference, so a
mapping kiln gets wrong fails the test). Models cover the op mappings with their opset
variants, symbols, If, Loop, functions and external data. Fixed seed; rerun with
    .venv/bin/python tests/onnx/make_import_fixtures.py
and commit the folder. Needs onnx and onnxruntime (the venv of tools/setup.sh)."""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
rng = np.random.default_rng(20261125)
F = TensorProto.FLOAT
I64 = TensorProto.INT64


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def ints(name, values):
    return init(name, np.array(values, dtype=np.int64))


def save(name, graph, inputs, opset=17, functions=(), check=True):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              functions=list(functions), producer_name="kiln-fixtures")
    model.ir_version = 8
    path = os.path.join(OUT, name + ".onnx")
    onnx.save(model, path)
    if check:
        onnx.checker.check_model(path)  # by path, so external data resolves next to it
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    outputs = sess.run(None, feed)
    for i, x in enumerate(inputs):
        np.save(os.path.join(OUT, f"{name}.in{i}.npy"), x)
    for i, y in enumerate(outputs):
        np.save(os.path.join(OUT, f"{name}.out{i}.npy"), y)
    print(f"{name}: {len(graph.node)} nodes, {len(inputs)} inputs, {len(outputs)} outputs")


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def mlp():
    # Gemm with transB=1 (linear + bias), Gemm transB=0 with alpha/beta and a 2-D C,
    # Relu, LeakyRelu, Softmax at opset 11 (coerced to 2-D at axis 1).
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "c2"], ["g"], name="fc2", alpha=0.5, beta=2.0),
        helper.make_node("LeakyRelu", ["g"], ["l"], name="leaky", alpha=0.2),
        helper.make_node("Softmax", ["l"], ["y"], name="softmax"),
    ]
    # b1 is also listed as a graph input (as older exporters did): it stays a parameter.
    g = helper.make_graph(nodes, "mlp", [vi("x", F, [2, 4]), vi("b1", F, [5])],
                          [vi("y", F, [2, 3])],
                          [init("w1", rand(5, 4)), init("b1", rand(5)), init("w2", rand(5, 3)),
                           init("c2", rand(2, 3))])
    save("mlp", g, [rand(2, 4)], opset=11)


def cnn():
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn",
                         epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[1, 1],
                         pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["a", "w2"], ["c2"], name="dw", group=4, pads=[1, 0, 1, 0],
                         dilations=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["y"], axis=1),
    ]
    g = helper.make_graph(nodes, "cnn", [vi("x", F, [1, 3, 13, 13])], [vi("y", F, [1, 4])],
                          [init("w", rand(4, 3, 3, 3)), init("b", rand(4)), init("s", rand(4)),
                           init("bb", rand(4)), init("m", rand(4)),
                           init("v", np.abs(rand(4)) + 0.5), init("w2", rand(4, 1, 3, 3))])
    save("cnn", g, [rand(1, 3, 13, 13)], opset=13)


def shapes():
    # Opset 13 forms: axes and splits as inputs, Slice with inputs and a negative step.
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),           # (2, 3, 4) -> (2, 0=3, -1)
        helper.make_node("Transpose", ["r"], ["t"], perm=[2, 0, 1]),  # (4, 2, 3)
        helper.make_node("Unsqueeze", ["t", "uax"], ["u"]),           # (1, 4, 2, 1, 3)
        helper.make_node("Squeeze", ["u", "sax"], ["s"]),             # (4, 2, 3)
        helper.make_node("Split", ["s", "splits"], ["s0", "s1"], axis=0),  # (1,2,3), (3,2,3)
        helper.make_node("Concat", ["s1", "s0"], ["cat"], axis=0),    # (4, 2, 3)
        helper.make_node("Slice", ["cat", "st", "en", "ax", "sp"], ["sl"]),  # rows 3..1 step -2
        helper.make_node("Gather", ["sl", "idx"], ["ga"], axis=2),    # (2, 2, 2)
        helper.make_node("Expand", ["ga", "eshape"], ["ex"]),         # (3, 2, 2, 2)
        helper.make_node("Pad", ["ex", "pads", "pv"], ["pd"], mode="constant"),
        helper.make_node("Shape", ["pd"], ["shp"]),
        helper.make_node("ConstantOfShape", ["shp"], ["zeros"],
                         value=numpy_helper.from_array(np.array([0.25], np.float32))),
        helper.make_node("Add", ["pd", "zeros"], ["y"]),
        helper.make_node("Range", ["r0", "r1", "r2"], ["y2"]),
        helper.make_node("Size", ["x"], ["y3"]),
    ]
    g = helper.make_graph(
        nodes, "shapes", [vi("x", F, [2, 3, 4])],
        [vi("y", F, [3, 3, 4, 3]), vi("y2", I64, [3]), vi("y3", I64, [])],
        [ints("shape", [2, 0, -1]), ints("uax", [0, -2]), ints("sax", [0, 3]),
         ints("splits", [1, 3]), ints("st", [3]), ints("en", [-10]), ints("ax", [0]),
         ints("sp", [-2]), ints("idx", [2, 0]), ints("eshape", [3, 1, 1, 1]),
         ints("pads", [0, 1, 0, 0, 0, 0, 2, 1]), init("pv", np.array(1.5, np.float32)),
         ints("r0", 2), ints("r1", 11), ints("r2", 3)])
    save("shapes", g, [rand(2, 3, 4)], opset=13)


def opset9():
    # The attribute forms of older opsets: Slice, Squeeze, Unsqueeze, Split, Pad, Clip,
    # Softmax coerced to 2-D, ReduceMean with axes.
    nodes = [
        helper.make_node("Slice", ["x"], ["sl"], starts=[1, 0], ends=[3, 100], axes=[1, 2]),
        helper.make_node("Unsqueeze", ["sl"], ["u"], axes=[0]),
        helper.make_node("Squeeze", ["u"], ["sq"], axes=[0]),
        helper.make_node("Split", ["sq"], ["a", "b"], axis=2, split=[1, 3]),
        helper.make_node("Pad", ["b"], ["p"], pads=[0, 1, 0, 0, 0, 1], value=-1.0),
        helper.make_node("Clip", ["p"], ["cl"], min=-0.5, max=0.7),
        helper.make_node("Softmax", ["cl"], ["sm"], axis=1),
        helper.make_node("ReduceMean", ["sm"], ["y"], axes=[2], keepdims=0),
        helper.make_node("Sigmoid", ["a"], ["y2"]),
    ]
    g = helper.make_graph(nodes, "opset9", [vi("x", F, [2, 4, 4])],
                          [vi("y", F, [2, 3]), vi("y2", F, [2, 2, 1])])
    save("opset9", g, [rand(2, 4, 4)], opset=9)


def reduce():
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
        helper.make_node("ReduceMax", ["x"], ["m"], axes=[0, 2]),
        helper.make_node("ReduceMin", ["x"], ["n"], keepdims=0),
        helper.make_node("ReduceSum", ["x", "none"], ["same"], noop_with_empty_axes=1),
        helper.make_node("Sub", ["s", "n"], ["y0"]),
        helper.make_node("Max", ["m", "m2", "m3"], ["y1"]),
        helper.make_node("Mul", ["same", "x"], ["y2"]),
    ]
    g = helper.make_graph(nodes, "reduce", [vi("x", F, [3, 4, 5])],
                          [vi("y0", F, [3, 5]), vi("y1", F, [1, 4, 1]), vi("y2", F, [3, 4, 5])],
                          [ints("axes", [1]), ints("none", np.zeros(0)),
                           init("m2", rand(1, 4, 1)), init("m3", rand(4, 1))])
    save("reduce", g, [rand(3, 4, 5)], opset=13)


def transformer():
    # Opset 20: LayerNormalization, Gelu (both approximations), MatMul, Div, Pow, Sqrt, Erf,
    # Where with Less, Cast, HardSigmoid (generic and PyTorch's), HardSwish, Tanh.
    nodes = [
        helper.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["ln", "w"], ["mm"]),
        helper.make_node("Gelu", ["mm"], ["ge"]),
        helper.make_node("Gelu", ["mm"], ["gt"], approximate="tanh"),
        helper.make_node("Less", ["ge", "zero"], ["neg"]),
        helper.make_node("Where", ["neg", "gt", "ge"], ["wh"]),
        helper.make_node("Pow", ["wh", "two"], ["sq"]),
        helper.make_node("Sqrt", ["sq"], ["abs"]),
        helper.make_node("Erf", ["abs"], ["er"]),
        helper.make_node("HardSigmoid", ["er"], ["hs"], alpha=0.3, beta=0.4),
        helper.make_node("HardSigmoid", ["hs"], ["hs2"], alpha=1.0 / 6, beta=0.5),
        helper.make_node("HardSwish", ["hs2"], ["hw"]),
        helper.make_node("Tanh", ["hw"], ["y"]),
        helper.make_node("Cast", ["neg"], ["y2"], to=TensorProto.INT32),
        helper.make_node("LogSoftmax", ["mm"], ["y3"], axis=1),
    ]
    g = helper.make_graph(nodes, "transformer", [vi("x", F, [2, 3, 8])],
                          [vi("y", F, [2, 3, 6]), vi("y2", TensorProto.INT32, [2, 3, 6]),
                           vi("y3", F, [2, 3, 6])],
                          [init("g", rand(8)), init("b", rand(8)), init("w", rand(8, 6)),
                           init("zero", np.array(0, np.float32)),
                           init("two", np.array(2, np.int64))])
    save("transformer", g, [rand(2, 3, 8)], opset=20)


def symbolic():
    # dim_param N becomes a symbol; Reshape's 0 copies the symbolic dim.
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Reshape", ["h", "shape"], ["r"]),
        helper.make_node("Relu", ["r"], ["y"]),
    ]
    g = helper.make_graph(nodes, "symbolic", [vi("x", F, ["N", 4])], [vi("y", F, ["N", 2, 3])],
                          [init("w", rand(4, 6)), ints("shape", [0, 2, 3])])
    save("symbolic", g, [rand(5, 4)], opset=14)


def control_flow():
    # If whose branches read outer values; Loop with a trip count, a condition the body reads
    # and recomputes, and one carried value.
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["t"])], "then", [],
                               [vi("t", F, [3])])
    else_g = helper.make_graph([helper.make_node("Sub", ["x", "k"], ["e"])], "else", [],
                               [vi("e", F, [3])])
    body = helper.make_graph(
        [helper.make_node("Add", ["v_in", "k"], ["v_out"]),
         helper.make_node("ReduceSum", ["v_out"], ["total"], keepdims=0),
         helper.make_node("Less", ["total", "limit"], ["below"]),
         helper.make_node("Identity", ["cond_in"], ["still"]),
         helper.make_node("Equal", ["still", "below"], ["cond_out"])],
        "body", [vi("i", I64, []), vi("cond_in", TensorProto.BOOL, []), vi("v_in", F, [3])],
        [vi("cond_out", TensorProto.BOOL, []), vi("v_out", F, [3])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["sx"], keepdims=0),
        helper.make_node("Greater", ["sx", "zero"], ["pos"]),
        helper.make_node("If", ["pos"], ["y"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trips", "yes", "x"], ["y2"], body=body),
    ]
    g = helper.make_graph(nodes, "control", [vi("x", F, [3])], [vi("y", F, [3]), vi("y2", F, [3])],
                          [init("k", np.array([1.0, 2.0, 3.0], np.float32)),
                           init("zero", np.array(0, np.float32)),
                           init("trips", np.array(10, np.int64)),
                           init("yes", np.array(True)),
                           init("limit", np.array(20, np.float32))])
    save("control_flow", g, [np.array([0.5, -0.25, 1.0], np.float32)], opset=13)


def function():
    # A model-local function with an attribute reference, called twice with different alphas.
    leaky = helper.make_node("LeakyRelu", ["prod"], ["out"])
    ref = onnx.AttributeProto(name="alpha", ref_attr_name="alpha", type=onnx.AttributeProto.FLOAT)
    leaky.attribute.append(ref)
    fn = helper.make_function(
        "kiln.test", "ScaledRelu", ["a", "b"], ["out"],
        [helper.make_node("Mul", ["a", "b"], ["prod"]), leaky],
        [helper.make_opsetid("", 17)], attributes=["alpha"])
    nodes = [
        helper.make_node("ScaledRelu", ["x", "s"], ["h"], domain="kiln.test", name="call1",
                         alpha=0.5),
        helper.make_node("ScaledRelu", ["h", "s"], ["y"], domain="kiln.test", name="call2",
                         alpha=0.1),
    ]
    g = helper.make_graph(nodes, "function", [vi("x", F, [2, 3])], [vi("y", F, [2, 3])],
                          [init("s", rand(3))])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("kiln.test", 1)],
                              functions=[fn])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(OUT, "function.onnx")
    onnx.save(model, path)
    x = rand(2, 3)
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.save(os.path.join(OUT, "function.in0.npy"), x)
    np.save(os.path.join(OUT, "function.out0.npy"), y)
    print("function: 2 calls")


def external():
    # One initializer in an external file next to the model, at an offset.
    w = rand(3, 3)
    data = b"\0" * 16 + w.tobytes()
    with open(os.path.join(OUT, "external.bin"), "wb") as f:
        f.write(data)
    t = onnx.TensorProto(name="w", data_type=F, dims=[3, 3])
    t.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", "external.bin"), ("offset", "16"), ("length", str(w.nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "external",
                          [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], [t])
    save("external", g, [rand(2, 3)], opset=13)


def composite():
    # Ops kiln builds from several IR ops: ConvTranspose (stride 2, pads, output_padding),
    # Resize nearest with constant scales, Tile, DepthToSpace, InstanceNormalization, Elu,
    # PRelu, a 1-D Conv, MaxPool with pads beyond half the kernel, LpPool, Trilu, and a
    # Shape -> Gather -> Concat -> Reshape chain that import evaluates to a constant shape.
    nodes = [
        helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["ct"], strides=[2, 2],
                         pads=[1, 0, 0, 1], output_padding=[1, 0]),
        helper.make_node("Resize", ["ct", "", "scales"], ["rs"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("InstanceNormalization", ["rs", "is", "ib"], ["inn"], epsilon=1e-4),
        helper.make_node("Elu", ["inn"], ["el"], alpha=0.7),
        helper.make_node("PRelu", ["el", "slope"], ["pr"]),
        helper.make_node("MaxPool", ["pr"], ["mp"], kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("LpPool", ["mp"], ["lp"], kernel_shape=[2, 2], p=2),
        helper.make_node("Tile", ["lp", "reps"], ["tl"]),
        helper.make_node("DepthToSpace", ["tl", ], ["ds"], blocksize=2, mode="CRD"),
        helper.make_node("Trilu", ["ds"], ["tr"], upper=0),
        helper.make_node("Shape", ["tr"], ["shp"]),
        helper.make_node("Gather", ["shp", "first"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["tr", "newshape"], ["flat"]),
        helper.make_node("Unsqueeze", ["flat", "ax1"], ["f3"]),
        helper.make_node("Conv", ["f3", "w1"], ["y"], pads=[1, 1]),
    ]
    g = helper.make_graph(
        nodes, "composite", [vi("x", F, [1, 4, 3, 3])], [vi("y", F, None)],
        [init("wt", rand(4, 2, 3, 3)), init("bt", rand(2)),
         init("scales", np.array([1, 1, 2, 2], np.float32)),
         init("is", rand(2)), init("ib", rand(2)), init("slope", rand(2, 1, 1)),
         ints("reps", [1, 2, 1, 1]), ints("first", [0]), ints("minus1", [-1]),
         ints("ax1", [1]), init("w1", rand(3, 1, 3))])
    save("composite", g, [rand(1, 4, 3, 3)], opset=18, check=False)


def bound():
    # Shapes fed as graph inputs, as ONNX's node tests do: kiln imports them only when they are
    # bound to constants (kl_onnx_import_file_bound).
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("ReduceSum", ["r", "axes"], ["y"], keepdims=0)]
    g = helper.make_graph(nodes, "bound", [vi("x", F, [2, 6]), vi("shape", I64, [3]),
                                          vi("axes", I64, [1])], [vi("y", F, [3, 2])])
    save("bound", g, [rand(2, 6), np.array([3, 2, 2], np.int64), np.array([2], np.int64)],
         opset=13)


def unsupported():
    # Two unsupported ops and one of another domain: all must be reported at once.
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="ok"),
        helper.make_node("Det", ["r"], ["c"], name="first_bad"),
        helper.make_node("Multinomial", ["c"], ["e"], name="second_bad", sample_size=2),
        helper.make_node("Foo", ["e"], ["y"], domain="com.example", name="third_bad"),
    ]
    g = helper.make_graph(nodes, "unsupported", [vi("x", F, [2, 2])], [vi("y", F, [2, 2])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("com.example", 1)])
    onnx.save(model, os.path.join(OUT, "unsupported.onnx"))
    print("unsupported: written without reference outputs")


def einsum():
    # Einsum (issue 4), written at import as diagonals, sums, permutes and batched matmuls:
    # "..." with broadcasting, the implicit output, a diagonal, three operands at once.
    er = np.random.default_rng(4404)  # its own stream: the other fixtures stay as they are

    def r(*shape):
        return er.standard_normal(shape).astype(np.float32)

    nodes = [
        helper.make_node("Einsum", ["x", "a"], ["e1"], equation="...ij,jk->...ik"),
        helper.make_node("Einsum", ["e1", "b"], ["e2"], equation="bik,k"),
        helper.make_node("Einsum", ["c"], ["e3"], equation="ii->i"),
        helper.make_node("Einsum", ["e2", "e3", "x"], ["e4"], equation="bi,i,bjk->kj"),
        helper.make_node("Einsum", ["x", "d"], ["e5"], equation="... j, ...j -> ..."),
    ]
    g = helper.make_graph(nodes, "einsum", [vi("x", F, [2, 3, 4])],
                          [vi("e2", F, [2, 3]), vi("e4", F, [4, 3]), vi("e5", F, [2, 3])],
                          [init("a", r(4, 5)), init("b", r(5)), init("c", r(3, 3)),
                           init("d", r(1, 3, 4))])
    save("einsum", g, [r(2, 3, 4)], opset=13)


def main():
    os.makedirs(OUT, exist_ok=True)
    for make in (mlp, cnn, shapes, opset9, reduce, transformer, symbolic, control_flow,
                 function, external, composite, bound, unsupported,
                 einsum):  # einsum: issue 4
        make()
    return 0


if __name__ == "__main__":
    sys.exit(main())
