#!/usr/bin/env python3
"""Writes the malformed ONNX corpus of tests/onnx/malformed and its cases.txt.

Each file is a model broken in one way (the wire format, the sizes, external data paths, the
graph's structure, the attributes); cases.txt lists it with the status code and a message
substring kiln's importer must give. run_onnx_malformed.c checks each, truncates the valid
models at every offset, and builds the symlink case itself in a temporary folder.
Rerun with  .venv/bin/python tests/onnx/malformed/make_malformed.py  and commit the output."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
F = TensorProto.FLOAT
cases = []


def model_of(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def write(name, data, code, substring):
    if not isinstance(data, bytes):
        data = data.SerializeToString()
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    cases.append((name, code, substring))


def relu_model():
    return model_of([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [2, 3])],
                    [vi("y", [2, 3])])


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire, payload):
    if wire == 2:
        return varint(number << 3 | 2) + varint(len(payload)) + payload
    return varint(number << 3 | wire) + payload


def external_model(location, offset=None, length=None, dims=(4,)):
    t = TensorProto(name="w", data_type=F, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location)]
    if offset is not None:
        entries.append(("offset", str(offset)))
    if length is not None:
        entries.append(("length", str(length)))
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    return model_of([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", list(dims))],
                    [vi("y", list(dims))], [t])


def main():
    valid = relu_model()
    write("valid_relu.onnx", valid, "ok", "")
    valid_bytes = valid.SerializeToString()
    # valid models with more structure, so that every prefix meets more of the reader: an
    # initializer, two nodes, and an If whose branches read an outer value
    write("valid_two_nodes.onnx",
          model_of([helper.make_node("Add", ["x", "w"], ["a"], name="add"),
                    helper.make_node("Relu", ["a"], ["y"], name="r")],
                   [vi("x", [2, 3])], [vi("y", [2, 3])],
                   [numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")]),
          "ok", "")
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [vi("t", [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", [2])])
    write("valid_if.onnx",
          model_of([helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g,
                                     else_branch=else_g)],
                   [vi("c", [], TensorProto.BOOL), vi("x", [2])], [vi("y", [2])]),
          "ok", "")

    # -- the wire format --
    for cut in (1, len(valid_bytes) // 3, len(valid_bytes) // 2, len(valid_bytes) - 1):
        write(f"truncated_{cut}.onnx", valid_bytes[:cut], "format", "malformed protobuf")
    # ModelProto.graph (7) as a varint instead of a length-delimited message
    write("wrong_wire_type.onnx", field(1, 0, varint(8)) + field(7, 0, varint(5)), "format",
          "field graph has wire type 0, expected 2")
    # a length prefix that claims more bytes than the file has
    write("length_past_end.onnx", field(1, 0, varint(8)) + varint(7 << 3 | 2) + varint(1000)
          + b"\x0a\x00", "format", "length prefix of 1000 bytes runs past the end")
    write("group_wire_type.onnx", field(1, 0, varint(8)) + varint(100 << 3 | 3), "format",
          "wire type 3, 4, 6 or 7")
    write("not_protobuf.onnx", b"this is not an onnx model\n", "format", "malformed protobuf")
    # ir_version as an 11-byte varint (protobuf allows at most 10)
    write("overlong_varint.onnx", field(1, 0, b"\xff" * 10 + b"\x01"), "format",
          "a varint is longer than 10 bytes")
    # a field tag cut off in the middle
    write("tag_past_end.onnx", field(1, 0, varint(8)) + b"\xba", "format",
          "a field tag runs past the end")
    # graph -> node -> attribute -> graph ... 200 levels: refused before unpacking
    inner = b""
    for _ in range(200):
        attr = field(1, 2, b"g") + field(6, 2, inner)      # AttributeProto{name, g}
        node = field(4, 2, b"If") + field(5, 2, attr)      # NodeProto{op_type, attribute}
        inner = field(1, 2, node)                          # GraphProto{node}
    write("nesting_bomb.onnx", field(1, 0, varint(8)) + field(7, 2, inner), "limit",
          "nested more than 64 deep")
    # 40 well-formed If nodes, each in the then-branch of the one before: the protobuf depth
    # limit refuses it here; test_limits raises that limit and meets max_subgraph_depth (32)
    # (written by hand: python's protobuf refuses to build messages this deep)
    def vi_bytes(name, shape, dtype=F):
        return vi(name, shape, dtype).SerializeToString()

    def leaf(out):
        return field(1, 2, field(1, 2, b"x") + field(2, 2, out.encode()) + field(4, 2, b"Relu")) \
            + field(2, 2, b"leaf") + field(12, 2, vi_bytes(out, [2]))

    def graph_attr(name, g):
        return field(1, 2, name) + field(6, 2, g) + field(20, 0, varint(5))
    b = leaf("y0")
    for i in range(40):
        node = (field(1, 2, b"c") + field(2, 2, f"y{i + 1}".encode()) +
                field(3, 2, f"if{i}".encode()) + field(4, 2, b"If") +
                field(5, 2, graph_attr(b"then_branch", b)) +
                field(5, 2, graph_attr(b"else_branch", leaf(f"e{i}"))))
        last = i == 39
        b = (field(1, 2, node) + field(2, 2, b"g" if last else f"b{i}".encode()) +
             (field(11, 2, vi_bytes("c", [], TensorProto.BOOL)) + field(11, 2, vi_bytes("x", [2]))
              if last else b"") + field(12, 2, vi_bytes(f"y{i + 1}", [2])))
    nested = (field(1, 0, varint(8)) + field(7, 2, b) +
              field(8, 2, field(1, 2, b"") + field(2, 0, varint(17))))
    write("if_nesting_40.onnx", nested, "limit", "nested more than 64 deep")

    # -- sizes --
    m = relu_model()
    t = numpy_helper.from_array(np.zeros((2, 3), np.float32), "w")
    t.raw_data = t.raw_data[:10]
    m.graph.initializer.append(t)
    write("raw_data_short.onnx", m, "format", "raw_data has 10 bytes but its dims and type (Float) need 24")
    m = relu_model()
    t = TensorProto(name="w", data_type=F, dims=[1 << 40, 1 << 40], raw_data=b"\0" * 4)
    m.graph.initializer.append(t)
    write("dims_overflow.onnx", m, "format", "product overflows")
    m = relu_model()
    m.graph.initializer.append(TensorProto(name="w", data_type=F, dims=[65536, 65536],
                                           raw_data=b"\0" * 4))
    write("dims_int32_overflow.onnx", m, "format", "need 17179869184")
    m = relu_model()
    m.graph.initializer.append(TensorProto(name="w", data_type=F, dims=[1000000, 1000000],
                                           raw_data=b"\0" * 4))
    write("huge_shape.onnx", m, "format", "need 4000000000000")
    m = relu_model()
    m.graph.initializer.append(TensorProto(name="w", data_type=F, dims=[1000000, 1000000]))
    write("huge_shape_no_data.onnx", m, "format",
          "float_data holds 0 elements but the dims need 1000000000000")
    write("constant_of_shape_tb.onnx",
          model_of([helper.make_node("ConstantOfShape", ["s"], ["y"], name="cos")], [],
                   [vi("y", [1000000, 1000000])],
                   [numpy_helper.from_array(np.array([1000000, 1000000], np.int64), "s")]),
          "limit", "node 'cos' (ConstantOfShape): the shape is negative or too large")
    m = relu_model()
    m.graph.initializer.append(TensorProto(name="w", data_type=F, dims=[4], float_data=[1, 2, 3]))
    write("typed_count.onnx", m, "format", "float_data holds 3 elements but the dims need 4")
    m = relu_model()
    m.graph.initializer.append(TensorProto(name="w", data_type=F, dims=[-3], float_data=[]))
    write("negative_dim.onnx", m, "format", "dims are negative")
    m = relu_model()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -2
    write("negative_input_dim.onnx", m, "format", "dim 0 is negative")

    # -- data types --
    m = relu_model()
    m.graph.initializer.append(TensorProto(name="w", data_type=99, dims=[1], raw_data=b"\0"))
    write("unknown_dtype.onnx", m, "format", "unknown data type 99")
    m = relu_model()
    m.graph.input[0].type.tensor_type.elem_type = 77
    write("unknown_input_dtype.onnx", m, "format", "unknown data type 77")
    m = relu_model()
    m.graph.initializer.append(TensorProto(name="w", data_type=TensorProto.STRING, dims=[1],
                                           string_data=[b"a"]))
    write("string_tensor.onnx", m, "unsupported", "data type STRING (8) is not supported")

    # -- external data --
    with open(os.path.join(HERE, "small.bin"), "wb") as f:
        f.write(b"\0" * 8)
    write("external_dotdot.onnx", external_model("../x"), "invalid", "has a '..' component")
    write("external_absolute.onnx", external_model("/etc/passwd"), "invalid",
          "'/etc/passwd' is an absolute path")
    write("external_inner_dotdot.onnx", external_model("a/../../x"), "invalid",
          "'a/../../x' has a '..' component")
    write("external_past_end.onnx", external_model("small.bin", offset=4), "format",
          "runs past the file's end")
    write("external_length.onnx", external_model("small.bin", length=8), "format",
          "length 8 does not match the 16 bytes")
    write("external_missing.onnx", external_model("no_such.bin"), "io", "no_such.bin")
    write("external_bad_offset.onnx", external_model("small.bin", offset="-4"), "format",
          "offset '-4' is not a non-negative integer")
    # used by the runner with a symlink passwd_link.bin -> /etc/passwd made in a temp folder
    write("external_symlink.onnx", external_model("passwd_link.bin", length=16), "skip",
          "outside the model's folder")

    # -- graph structure --
    write("cycle.onnx", model_of([helper.make_node("Relu", ["b"], ["a"], name="n1"),
                                  helper.make_node("Relu", ["a"], ["b"], name="n2")],
                                 [vi("x", [2])], [vi("b", [2])]),
          "format", "defined by a later node (a cycle")
    write("undefined_input.onnx", model_of([helper.make_node("Add", ["x", "ghost"], ["y"],
                                                             name="adder")],
                                           [vi("x", [2])], [vi("y", [2])]),
          "format", "node 'adder' (Add) input 1 'ghost' is not defined")
    write("defined_twice.onnx", model_of([helper.make_node("Relu", ["x"], ["y"], name="a"),
                                          helper.make_node("Neg", ["x"], ["y"], name="b")],
                                         [vi("x", [2])], [vi("y", [2])]),
          "format", "output 'y' is defined twice")
    write("undefined_output.onnx", model_of([helper.make_node("Relu", ["x"], ["y"])],
                                            [vi("x", [2])], [vi("z", [2])]),
          "format", "graph output 'z' is not defined")
    m = relu_model()
    m.ClearField("graph")
    write("no_graph.onnx", m, "format", "the model has no graph")
    write("opset_too_old.onnx", model_of([helper.make_node("Relu", ["x"], ["y"])],
                                         [vi("x", [2])], [vi("y", [2])], opset=5),
          "unsupported", "opset 5 of the default domain")

    # -- attributes and ops --
    write("missing_attr_cast.onnx", model_of([helper.make_node("Cast", ["x"], ["y"], name="c")],
                                             [vi("x", [2])], [vi("y", [2])]),
          "format", "node 'c' (Cast): missing required attribute 'to'")
    write("missing_attr_concat.onnx",
          model_of([helper.make_node("Concat", ["x", "x"], ["y"], name="cat")],
                   [vi("x", [2])], [vi("y", [4])]),
          "format", "node 'cat' (Concat): missing required attribute 'axis'")
    # found by fuzz_onnx: a node with fewer inputs than its op reads (the message named a
    # missing input by reading past the end of the input list)
    write("reshape_one_input.onnx",
          model_of([helper.make_node("Reshape", ["x"], ["y"], name="rs")],
                   [vi("x", [2, 3])], [vi("y", [6])]),
          "format", "node 'rs' (Reshape): input 1 is missing")
    # found by fuzz_compile: Gather with one input; the mapping read its second input from an
    # uninitialized slot past the node's input list
    write("gather_one_input.onnx",
          model_of([helper.make_node("Gather", ["x"], ["y"], name="ga")],
                   [vi("x", [2, 3])], [vi("y", None)]),
          "invalid", "node 'ga' (Gather): a required input is missing")
    # found by fuzz_compile: auto_pad SAME divided the spatial size by a zero stride
    write("conv_same_stride_zero.onnx",
          model_of([helper.make_node("Conv", ["x", "w"], ["y"], name="cv", auto_pad="SAME_UPPER",
                                     strides=[0, 1])],
                   [vi("x", [1, 1, 4, 4]), vi("w", [1, 1, 3, 3])], [vi("y", None)]),
          "invalid", "node 'cv' (Conv): auto_pad SAME_UPPER: strides, dilations and the kernel "
          "size must be positive")
    # found by fuzz_onnx: Trilu built its mask with a loop over rows, so a zero-column input
    # of 10^12 rows hung the import
    write("trilu_zero_dim.onnx",
          model_of([helper.make_node("Trilu", ["x"], ["y"], name="tri")],
                   [vi("x", [1000000000000, 0])], [vi("y", [1000000000000, 0])]),
          "ok", "")
    # found by fuzz_onnx: a graph input without a name reached the name table as NULL
    m = relu_model()
    m.graph.input[0].ClearField("name")
    write("input_without_name.onnx", m, "format", "the main graph: graph input 0 has no name")
    # found by fuzz_onnx: DepthToSpace multiplied huge dims by the blocksize unchecked
    write("depth_to_space_overflow.onnx",
          model_of([helper.make_node("DepthToSpace", ["x"], ["y"], name="d2s", blocksize=2)],
                   [vi("x", [1, 4, 1 << 62, 1])], [vi("y", None)]),
          "limit", "node 'd2s' (DepthToSpace): blocksize 2 overflows the output shape")
    # found by fuzz_onnx: an empty ints attribute (opset 9 Slice) was copied from NULL
    sl = helper.make_node("Slice", ["x"], ["y"], name="sl", ends=[0])
    sl.attribute.append(helper.make_attribute("starts", [], attr_type=onnx.AttributeProto.INTS))
    write("slice_empty_starts.onnx", model_of([sl], [vi("x", [4])], [vi("y", None)], opset=9),
          "invalid", "node 'sl' (Slice): starts, ends, axes and steps differ in length")
    write("cast_unknown_type.onnx",
          model_of([helper.make_node("Cast", ["x"], ["y"], name="c", to=123)],
                   [vi("x", [2])], [vi("y", [2])]),
          "format", "attribute to: unknown data type 123")
    write("dynamic_reshape.onnx",
          model_of([helper.make_node("Shape", ["s"], ["shape"]),
                    helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                   [vi("x", [2, 3]), vi("s", [2], TensorProto.INT64)], [vi("y", [3, 2])]),
          "ok", "")  # the shape is read at run time (onnx::Deferred)
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c2"]),
                              helper.make_node("Identity", ["v"], ["v2"]),
                              helper.make_node("Identity", ["v"], ["scan"])], "body",
                             [vi("i", [], TensorProto.INT64), vi("c", [], TensorProto.BOOL),
                              vi("v", [2])],
                             [vi("c2", [], TensorProto.BOOL), vi("v2", [2]), vi("scan", [2])])
    loop = model_of([helper.make_node("Loop", ["m", "", "x"], ["y", "ys"], name="lp", body=body)],
                    [vi("x", [2])], [vi("y", [2])],
                    [numpy_helper.from_array(np.array(3, np.int64), "m")])
    write("loop_scan_outputs.onnx", loop, "unsupported",
          "node 'lp' (Loop): the body has 3 outputs for 1 carried values: scan outputs")
    write("scan.onnx", model_of([helper.make_node("Scan", ["x"], ["y"], name="sc", body=body,
                                                  num_scan_inputs=1)],
                                [vi("x", [2])], [vi("y", [2])]),
          "unsupported", "Scan (opset 17) in node 'sc'")
    write("conv3d.onnx",
          model_of([helper.make_node("Conv", ["x", "w"], ["y"], name="c3")],
                   [vi("x", [1, 1, 4, 4, 4]), vi("w", [1, 1, 2, 2, 2])], [vi("y", None)]),
          "unsupported", "node 'c3' (Conv): only 1-D and 2-D convolution")
    write("shape_mismatch.onnx",
          model_of([helper.make_node("MatMul", ["x", "x"], ["y"], name="mm")],
                   [vi("x", [2, 3])], [vi("y", [2, 3])]),
          "invalid", "node 'mm' (MatMul): ")

    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write("# file<TAB>expected code (ok, format, unsupported, invalid, limit, io, skip)"
                "<TAB>message substring\n")
        f.write("# written by make_malformed.py; do not edit by hand\n")
        for name, code, sub in cases:
            f.write(f"{name}\t{code}\t{sub}\n")
    print(f"{len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
