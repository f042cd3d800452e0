"""Writes tiny.onnx, the ONNX fixture of tests/cli/onnx.sh, next to this script.

    .venv/bin/python tests/cli/data/make_onnx.py

y = relu(x @ W^T + b) as Gemm(transB=1) + Relu at opset 17, with x of shape (2, 2) so the
existing x_2x2.npy ([[1, -2], [3, -4]]) feeds it: y = [[1.5, 0, 0], [3.5, 0, 0]].
The output is committed; rerun this only when changing the fixture."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
B = np.array([0.5, 0.5, 0.5], dtype=np.float32)

graph = helper.make_graph(
    [
        helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], name="fc", transB=1),
        helper.make_node("Relu", ["h"], ["y"], name="act"),
    ],
    "tiny",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    [numpy_helper.from_array(W, "fc.weight"), numpy_helper.from_array(B, "fc.bias")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="make_onnx.py")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.onnx"))
