"""Writes reshape_input.onnx and its .npy files, the --bind fixtures of tests/cli/bind.sh,
next to this script.

    .venv/bin/python tests/cli/data/make_reshape_onnx.py

y = relu(reshape(x, shape)) at opset 17, with x Float(2, 3) and the shape a graph input
(Long(2)), so kiln imports the Reshape as onnx::Deferred (its output shape depends on the
value of `shape`) and compiles it only with `--bind shape=...`. shape_3x2.npy holds [3, 2],
shape_6x1.npy [6, 1], shape_3x2_i32.npy [3, 2] as int32 (a wrong dtype) and shape_3x2x1.npy
[3, 2, 1] (a wrong shape). With x_2x3.npy ([[1, -2, 3], [-4, 5, -6]]) y is [[1, 0], [3, 0], [5, 0]].
The outputs are committed; rerun this only when changing the fixture."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))

graph = helper.make_graph(
    [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="act"),
    ],
    "reshape_input",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
     helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="make_reshape_onnx.py")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, os.path.join(HERE, "reshape_input.onnx"))
np.save(os.path.join(HERE, "shape_3x2.npy"), np.array([3, 2], np.int64))
np.save(os.path.join(HERE, "shape_6x1.npy"), np.array([6, 1], np.int64))
np.save(os.path.join(HERE, "shape_3x2_i32.npy"), np.array([3, 2], np.int32))
np.save(os.path.join(HERE, "shape_3x2x1.npy"), np.array([3, 2, 1], np.int64))
