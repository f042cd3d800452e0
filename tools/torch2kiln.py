#!/usr/bin/python3
"""torch2kiln: converts a PyTorch module into a kiln .kir file, without going through ONNX.

The module is traced (torch.jit.trace in eval mode) and its graph inlined; each node then maps
onto kiln's TorchScript-like IR: aten ops one to one (aten::_convolution becomes aten::conv2d),
prim::Constant scalars and prim::ListConstruct lists become attributes of their consumer, and
prim::GetAttr chains name the module's tensors, which become weights (prim::Param) named by
their module path (layer1.0.conv1.weight). Sizes read from tensors (aten::size and the
arithmetic on them) are evaluated here, since a trace has static shapes, and any node whose
inputs are all known is folded to a constant. Ops with no kiln counterpart are all reported at
once, with a count each.

The .kir file (header, text IR, blob directory, 64-byte aligned data, checksum) is written
directly, following the layout documented in ir/kir.c, and can be checked by `kiln show`.

  torch2kiln.py MODULE_SPEC -o net.kir --input-shape 1,3,224,224 [--seed N] [--kiln PATH]
  MODULE_SPEC: package.module:callable or path/to/file.py:callable (returns an nn.Module)

Library use: convert(module, example_inputs, path) writes path and returns a ConvertResult.
Runs with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
"""

import argparse
import collections
import importlib
import importlib.util
import inspect
import math
import os
import re
import subprocess
import sys

import numpy as np
import torch

# ---- kiln types --------------------------------------------------------------------------

# torch dtype -> (kiln type name, .kir dtype code); the codes are fixed by ir/kir.c.
DTYPES = {
    torch.float32: ("Float", 0), torch.float16: ("Half", 1), torch.bfloat16: ("BFloat16", 2),
    torch.float64: ("Double", 3), torch.int8: ("Char", 4), torch.uint8: ("Byte", 5),
    torch.int32: ("Int", 6), torch.int64: ("Long", 7), torch.bool: ("Bool", 8),
}
SCALAR_TYPES = {  # TensorType.scalarType() -> torch dtype
    "Float": torch.float32, "Half": torch.float16, "BFloat16": torch.bfloat16,
    "Double": torch.float64, "Char": torch.int8, "Byte": torch.uint8, "Int": torch.int32,
    "Long": torch.int64, "Bool": torch.bool,
}
INLINE_MAX = 16  # constants with more elements go to a blob, as kiln's own writer does


class ConversionError(Exception):
    """A module kiln cannot represent; the message lists every problem found."""


def kiln_dtype(dtype, what):
    if dtype not in DTYPES:
        raise ConversionError(f"{what}: dtype {dtype} has no kiln counterpart")
    return DTYPES[dtype][0]


def type_str(dtype, shape):
    return f"{DTYPES[dtype][0]}({', '.join(str(int(d)) for d in shape)})"


def quote_name(name):
    """A value name as the text IR writes it: plain when it can be, else a quoted string."""
    if re.fullmatch(r"[A-Za-z0-9_.]+", name):
        return "%" + name
    out = []
    for ch in name:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '%"' + "".join(out) + '"'


def _as_dtype(v, dtype):
    """v rounded to dtype, as something == compares (bit patterns for half and bfloat16)."""
    if dtype == torch.float32:
        return np.float32(v)
    if dtype == torch.float16:
        return np.float16(np.float32(v)).view(np.uint16)
    if dtype == torch.bfloat16:
        u = int(np.float32(v).view(np.uint32))
        return (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
    return v


def fmt_float(v, dtype=torch.float64):
    """The float as kiln's printer spells it: the shortest %g that reads back to the same value
    of dtype, with '.0' added where it would read as an integer; inf, -inf, nan."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    with np.errstate(over="ignore"):  # a short spelling may round past the largest value
        want = _as_dtype(v, dtype)
        for prec in range(1, 18):
            text = "%.*g" % (prec, v)
            if _as_dtype(float(text), dtype) == want:
                break
    return text if any(c in text for c in ".eEin") else text + ".0"


class DTypeName(str):
    """A dtype attribute: written bare (Float), not as a string."""


def fmt_attr(v):
    if isinstance(v, DTypeName):
        return str(v)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_attr(x) for x in v) + "]"
    raise TypeError(f"attribute value {v!r}")


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


# ---- values while converting -------------------------------------------------------------

class IRValue:
    """A tensor that exists in the kiln graph: its IR name, dtype and shape."""

    def __init__(self, name, dtype, shape):
        self.name, self.dtype, self.shape = name, dtype, tuple(shape)


class ModuleRef:
    """A submodule reached through prim::GetAttr: its path and the Python object."""

    def __init__(self, path, obj):
        self.path, self.obj = path, obj


class WeightRef:
    """A module tensor reached through prim::GetAttr; it becomes a prim::Param at first use."""

    def __init__(self, path, tensor):
        self.path, self.tensor = path, tensor


class Poison:
    """The output of a node that could not be converted (its error is already recorded)."""


POISON = Poison()
UNMAPPED = object()  # what Converter.convert returns for an op with no kiln mapping


def is_known(v):
    """True for a value known while converting (a scalar, list, tensor constant, None...)."""
    if isinstance(v, (IRValue, ModuleRef, WeightRef, Poison)):
        return False
    if isinstance(v, (list, tuple)):
        return all(is_known(x) for x in v)
    return True


def op_base(name):
    """relu_ -> relu: an in-place op maps as its functional form (the trace already gives
    its result a new value)."""
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


# ---- the converter -----------------------------------------------------------------------

class Converter:
    def __init__(self, module):
        self.module = module
        self.lines = []            # node lines of the graph body
        self.weights = {}          # path -> (IRValue, tensor)
        self.weight_ids = {}       # id of a tensor -> path, so tied weights are stored once
        self.consts = []           # big constant tensors, referenced as {@n_weights + k}
        self.names = set()
        self.counter = 0
        self.unmapped = collections.Counter()
        self.first_seen = {}       # unmapped op kind -> where its first node is
        self.problems = []

    # -- names and emission --

    def fresh(self, hint=None):
        if hint and hint not in self.names:
            self.names.add(hint)
            return hint
        while True:
            self.counter += 1
            name = str(self.counter)
            if name not in self.names:
                self.names.add(name)
                return name

    def emit(self, op, inputs, attrs, dtype, shape):
        """Appends `%out : T = op[attrs](inputs)` and returns the new IRValue."""
        return self.emit_multi(op, inputs, attrs, [(dtype, shape)])[0]

    def emit_multi(self, op, inputs, attrs, types):
        """The same for a node with one output per (dtype, shape) in types."""
        outs = [IRValue(self.fresh(), dtype, shape) for dtype, shape in types]
        attr_text = ""
        if attrs:
            attr_text = "[" + ", ".join(f"{k}={fmt_attr(v)}" for k, v in attrs.items()) + "]"
        args = ", ".join(quote_name(v.name) for v in inputs)
        decls = ", ".join(f"{quote_name(o.name)} : {type_str(o.dtype, o.shape)}" for o in outs)
        self.lines.append(f"  {decls} = {op}{attr_text}({args})")
        return outs

    def weight(self, path, tensor):
        """The prim::Param for a module tensor, emitted at its first use."""
        key = id(tensor)
        if key in self.weight_ids:
            return self.weights[self.weight_ids[key]][0]
        t = tensor.detach()
        kiln_dtype(t.dtype, f"weight {path}")
        v = IRValue(self.fresh(path), t.dtype, t.shape)
        self.lines.append(f"  {quote_name(v.name)} : {type_str(t.dtype, t.shape)} = "
                          f"prim::Param[name={fmt_attr(path)}]()")
        self.weights[path] = (v, t)
        self.weight_ids[key] = path
        return v

    def constant(self, value, dtype=None):
        """A known value (tensor or number) as a prim::Constant node of the given dtype."""
        if isinstance(value, torch.Tensor):
            t = value.detach()
            if dtype is not None and t.dtype != dtype:
                t = t.to(dtype)
        else:
            if dtype is None:
                dtype = (torch.bool if isinstance(value, bool) else
                         torch.int64 if isinstance(value, int) else torch.float32)
            t = torch.tensor(value, dtype=dtype)
        kiln_dtype(t.dtype, "constant")
        t = t.contiguous()
        ty = type_str(t.dtype, t.shape)
        if t.numel() > INLINE_MAX:
            self.consts.append(t)
            body = f"{{@C{len(self.consts) - 1}@}}"  # the index is known once weights are
        else:
            flat = t.reshape(-1)
            if t.dtype == torch.bool:
                elems = ["true" if x else "false" for x in flat.tolist()]
            elif t.dtype.is_floating_point:
                elems = [fmt_float(x, t.dtype) for x in flat.double().tolist()]
            else:
                elems = [str(int(x)) for x in flat.tolist()]
            body = "{" + ", ".join(elems) + "}"
        out = IRValue(self.fresh(), t.dtype, t.shape)
        self.lines.append(f"  {quote_name(out.name)} : {ty} = prim::Constant[value={ty}{body}]()")
        return out

    def tensor(self, v, dtype=None):
        """v as an IR tensor: a known value becomes a constant; a cast is added if dtype asks."""
        if isinstance(v, IRValue):
            if dtype is not None and v.dtype != dtype:
                return self.emit("aten::to", [v], {"dtype": DTypeName(kiln_dtype(dtype, "cast"))},
                                 dtype, v.shape)
            return v
        if isinstance(v, (int, float, bool, torch.Tensor)):
            return self.constant(v, dtype)
        raise ConversionError(f"expected a tensor, got {type(v).__name__}")

    # -- the walk --

    def run(self, graph, example_inputs, input_names):
        env = {}
        params = list(graph.inputs())
        env[params[0].unique()] = ModuleRef("", self.module)
        graph_inputs = []
        for v, x, name in zip(params[1:], example_inputs, input_names):
            if not isinstance(x, torch.Tensor):
                raise ConversionError(f"input {name}: only tensor inputs are supported")
            kiln_dtype(x.dtype, f"input {name}")
            iv = IRValue(self.fresh(name), x.dtype, x.shape)
            env[v.unique()] = iv
            graph_inputs.append(iv)
        for node in graph.nodes():
            self.convert_node(node, env)
        if self.unmapped or self.problems:
            msg = []
            if self.unmapped:
                total = sum(self.unmapped.values())
                kinds = ", ".join(f"{k} (x{n})" for k, n in sorted(self.unmapped.items()))
                msg.append(f"{total} node(s) of {len(self.unmapped)} op kind(s) have no kiln "
                           f"mapping: {kinds}")
                msg.extend(f"  first {k}{self.first_seen[k]}" for k in sorted(self.unmapped))
            msg.extend(self.problems)
            raise ConversionError("\n".join(msg))
        outputs = []
        for v in graph.return_node().inputs():
            outputs.extend(self.flatten_output(env[v.unique()]))
        return graph_inputs, outputs

    def flatten_output(self, v):
        if isinstance(v, (list, tuple)):
            return [o for x in v for o in self.flatten_output(x)]
        if isinstance(v, (IRValue, WeightRef)):
            return [self.use_weights(v)]
        if isinstance(v, torch.Tensor):
            return [self.constant(v)]
        raise ConversionError(f"the module returns a {type(v).__name__}; only tensors (or "
                              f"tuples and lists of them) can be graph outputs")

    def where(self, node):
        scope = node.scopeName()
        src = node.sourceRange().split("\n")[0].strip() if hasattr(node, "sourceRange") else ""
        parts = [p for p in (scope and f"in {scope}", src) if p]
        return " (" + ", ".join(parts) + ")" if parts else ""

    def convert_node(self, node, env):
        kind = node.kind()
        ins = [env.get(v.unique(), POISON) for v in node.inputs()]
        outs = list(node.outputs())
        if any(isinstance(v, Poison) for v in ins):
            if kind.startswith("aten::") and not self.has_handler(kind):
                self.unmapped[kind] += 1  # still reported, though its inputs failed
                self.first_seen.setdefault(kind, self.where(node))
            for o in outs:
                env[o.unique()] = POISON
            return
        try:
            result = self.convert(node, kind, ins, outs)
            if result is UNMAPPED:
                self.unmapped[kind] += 1
                self.first_seen.setdefault(kind, self.where(node))
                result = [POISON] * len(outs)
            elif len(outs) == 1:  # a multi-output node gives a list, one value per output
                result = [result]
        except ConversionError as e:
            self.problems.append(f"{kind}{self.where(node)}: {e}")
            result = [POISON] * len(outs)
        for o, r in zip(outs, result):
            env[o.unique()] = r

    def out_type(self, out):
        """The dtype and shape the trace recorded for a node output, or None if unknown."""
        ty = out.type()
        if not isinstance(ty, torch._C.TensorType):
            return None
        st, sizes = ty.scalarType(), ty.sizes()
        if st is None or sizes is None or st not in SCALAR_TYPES:
            return None
        return SCALAR_TYPES[st], tuple(sizes)

    def convert(self, node, kind, ins, outs):
        """Returns the node's output value (or a list, one per output), or UNMAPPED."""
        if kind == "prim::Constant":
            return outs[0].toIValue()
        if kind == "prim::GetAttr":
            return self.get_attr(ins[0], node.s("name"))
        if kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            return list(ins)
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            seq = ins[0]
            if not isinstance(seq, (list, tuple)) or len(seq) != len(outs):
                raise ConversionError("unpacks a list whose length is not known")
            return list(seq)
        if kind in ("prim::NumToTensor", "aten::Int", "aten::Float", "aten::ScalarImplicit"):
            if isinstance(ins[0], IRValue):
                raise ConversionError("the value depends on the data of a tensor")
            v = ins[0]
            if isinstance(v, torch.Tensor):
                v = v.item()
            return int(v) if kind == "aten::Int" else float(v) if kind == "aten::Float" else v
        if kind == "aten::size":
            x = ins[0].tensor if isinstance(ins[0], WeightRef) else ins[0]
            if not isinstance(x, IRValue):
                return UNMAPPED if not isinstance(x, torch.Tensor) else (
                    list(x.shape) if len(ins) == 1 else x.shape[ins[1]])
            return list(x.shape) if len(ins) == 1 else int(x.shape[ins[1]])
        if kind == "aten::dim" and isinstance(ins[0], (IRValue, WeightRef)):
            return len(ins[0].shape if isinstance(ins[0], IRValue) else ins[0].tensor.shape)
        if not kind.startswith("aten::"):
            return UNMAPPED
        name = kind[len("aten::"):]
        if all(is_known(v) for v in ins):
            return self.fold(node, name, ins, outs)
        ins = [self.use_weights(v) for v in ins]
        op = op_base(name)
        handler = getattr(self, "op_" + op, None)
        if handler is None:
            if op in UNARY:
                return self.unary(op, ins, outs)
            if op in BINARY:
                return self.binary(op, ins, outs)
            return UNMAPPED
        return handler(ins, outs)

    def has_handler(self, kind):
        op = op_base(kind[len("aten::"):])
        return hasattr(self, "op_" + op) or op in UNARY or op in BINARY

    def get_attr(self, owner, name):
        if not isinstance(owner, ModuleRef):
            raise ConversionError(f"attribute {name} of something that is not a module")
        path = f"{owner.path}.{name}" if owner.path else name
        obj = getattr(owner.obj, name)
        if isinstance(obj, torch.nn.Module):
            return ModuleRef(path, obj)
        if isinstance(obj, torch.Tensor):
            return WeightRef(path, obj)
        return obj

    def use_weights(self, v):
        if isinstance(v, WeightRef):
            return self.weight(v.path, v.tensor)
        if isinstance(v, (list, tuple)):
            return [self.use_weights(x) for x in v]
        return v

    def fold(self, node, name, ins, outs):
        """Evaluates an aten op whose inputs are all known, with PyTorch itself; the node's
        schema says which arguments are keyword-only."""
        fn = getattr(torch.ops.aten, name, None)
        if fn is None:
            return UNMAPPED
        args, kwargs = list(ins), {}
        try:
            schema = torch._C.parse_schema(node.schema())
            kw = [a.name for a in schema.arguments if a.kwarg_only]
            n_pos = len(schema.arguments) - len(kw)
            if len(ins) == len(schema.arguments) and kw:
                args, kwargs = list(ins[:n_pos]), dict(zip(kw, ins[n_pos:]))
        except RuntimeError:  # no schema: call with the inputs as they are
            pass
        try:
            with torch.no_grad():
                r = fn(*args, **kwargs)
        except Exception as e:  # the op's own error, with what it was given
            raise ConversionError(f"cannot evaluate on known inputs: {e}") from None
        return list(r) if len(outs) > 1 else r

    # -- op helpers --

    def result(self, outs, i=0, like=None):
        t = self.out_type(outs[i])
        if t is None:
            if like is None:
                raise ConversionError("the trace recorded no shape for the output")
            return like.dtype, like.shape
        return t

    def simple(self, op, inputs, attrs, outs, like=None):
        dtype, shape = self.result(outs, like=like or inputs[0])
        return self.emit(op, inputs, attrs, dtype, shape)

    def unary(self, op, ins, outs):
        return self.simple("aten::" + op, [self.tensor(ins[0])], {}, outs)

    def binary(self, op, ins, outs):
        a, b = ins[0], ins[1]
        if op in ("add", "sub") and len(ins) > 2 and ins[2] != 1:
            raise ConversionError(f"alpha={ins[2]} is not supported (only 1)")
        if op == "div" and len(ins) > 2 and ins[2] is not None:
            raise ConversionError(f"rounding_mode={ins[2]!r} is not supported")
        dtype, shape = self.result(outs)
        operand = dtype
        if op in COMPARE:  # operands in their common type, the result Bool
            da = a.dtype if isinstance(a, IRValue) else None
            db = b.dtype if isinstance(b, IRValue) else None
            operand = torch.promote_types(da, db) if da and db else (da or db)
        return self.emit("aten::" + op, [self.tensor(a, operand), self.tensor(b, operand)], {},
                         dtype, shape)

    def op_rsub(self, ins, outs):
        """rsub(x, other, alpha) = other - alpha * x."""
        return self.binary("sub", [ins[1], ins[0]] + list(ins[2:]), outs)

    def alias(self, ins, outs):
        return ins[0]

    op_contiguous = op_clone = op_detach = alias

    def op_dropout(self, ins, outs):
        if ins[2]:
            raise ConversionError("dropout in training mode (the module must be in eval mode)")
        return ins[0]

    op_feature_dropout = op_alpha_dropout = op_dropout

    def op_linear(self, ins, outs):
        args = [self.tensor(ins[0]), self.tensor(ins[1])]
        if ins[2] is not None:
            args.append(self.tensor(ins[2]))
        return self.simple("aten::linear", args, {}, outs)

    def op_matmul(self, ins, outs):
        return self.simple("aten::matmul", [self.tensor(ins[0]), self.tensor(ins[1])], {}, outs)

    op_mm = op_bmm = op_matmul

    def conv(self, x, w, b, stride, padding, dilation, groups, outs):
        w = self.tensor(w)
        if len(w.shape) != 4:
            raise ConversionError(f"only 2-D convolution is supported (weight of rank "
                                  f"{len(w.shape)})")
        if isinstance(padding, str):
            raise ConversionError(f"padding={padding!r} is not supported; give the numbers")
        args = [self.tensor(x), w] + ([self.tensor(b)] if b is not None else [])
        return self.simple("aten::conv2d", args, {
            "stride": list(stride), "padding": list(padding), "dilation": list(dilation),
            "groups": int(groups)}, outs)

    def op__convolution(self, ins, outs):
        x, w, b, stride, padding, dilation, transposed, out_pad, groups = ins[:9]
        if transposed:
            raise ConversionError("transposed convolution is not supported")
        return self.conv(x, w, b, stride, padding, dilation, groups, outs)

    def op_conv2d(self, ins, outs):
        return self.conv(*ins[:7], outs)

    def op_batch_norm(self, ins, outs):
        x, w, b, mean, var, training, _momentum, eps = ins[:8]
        if training:
            raise ConversionError("batch norm in training mode (the module must be in eval mode)")
        x = self.tensor(x)
        c = x.shape[1]
        w = self.tensor(w if w is not None else torch.ones(c, dtype=x.dtype))
        b = self.tensor(b if b is not None else torch.zeros(c, dtype=x.dtype))
        if mean is None or var is None:
            raise ConversionError("batch norm without running statistics is not supported")
        return self.simple("aten::batch_norm", [x, w, b, self.tensor(mean), self.tensor(var)],
                           {"eps": float(eps)}, outs)

    def op_layer_norm(self, ins, outs):
        x, shape, w, b, eps = ins[:5]
        x = self.tensor(x)
        args = [x]
        if w is not None or b is not None:
            args.append(self.tensor(w if w is not None else torch.ones(shape, dtype=x.dtype)))
        if b is not None:
            args.append(self.tensor(b))
        return self.simple("aten::layer_norm", args,
                           {"normalized_shape": list(shape), "eps": float(eps)}, outs)

    def op_softmax(self, ins, outs, op="aten::softmax"):
        x = self.tensor(ins[0])
        if len(ins) > 2 and ins[2] is not None:  # dtype=: cast first, as PyTorch does
            x = self.tensor(x, self.result(outs)[0])
        return self.simple(op, [x], {"dim": int(ins[1])}, outs)

    def op_log_softmax(self, ins, outs):
        return self.op_softmax(ins, outs, "aten::log_softmax")

    def op_gelu(self, ins, outs):
        approx = ins[1] if len(ins) > 1 else "none"
        return self.simple("aten::gelu", [self.tensor(ins[0])], {"approximate": approx}, outs)

    def op_hardtanh(self, ins, outs):
        return self.simple("aten::hardtanh", [self.tensor(ins[0])],
                           {"min_val": float(ins[1]), "max_val": float(ins[2])}, outs)

    def op_clamp(self, ins, outs):
        attrs = {}
        for key, v in (("min", ins[1]), ("max", ins[2])):
            if isinstance(v, IRValue):
                raise ConversionError(f"clamp with a tensor {key} is not supported")
            if v is not None:
                attrs[key] = float(v.item() if isinstance(v, torch.Tensor) else v)
        return self.simple("aten::clamp", [self.tensor(ins[0])], attrs, outs)

    def op_leaky_relu(self, ins, outs):
        return self.simple("aten::leaky_relu", [self.tensor(ins[0])],
                           {"negative_slope": float(ins[1])}, outs)

    def op_max_pool2d(self, ins, outs):
        x, k, s, p, d, ceil = ins[:6]
        return self.simple("aten::max_pool2d", [self.tensor(x)], {
            "kernel_size": list(k), "stride": list(s) or list(k), "padding": list(p),
            "dilation": list(d), "ceil_mode": int(bool(ceil))}, outs)

    def op_avg_pool2d(self, ins, outs):
        x, k, s, p, ceil, count_pad, divisor = ins[:7]
        if divisor is not None:
            raise ConversionError("divisor_override is not supported")
        return self.simple("aten::avg_pool2d", [self.tensor(x)], {
            "kernel_size": list(k), "stride": list(s) or list(k), "padding": list(p),
            "ceil_mode": int(bool(ceil)), "count_include_pad": int(bool(count_pad))}, outs)

    def op_adaptive_avg_pool2d(self, ins, outs):
        return self.simple("aten::adaptive_avg_pool2d", [self.tensor(ins[0])],
                           {"output_size": list(ins[1])}, outs)

    def op_flatten(self, ins, outs):
        return self.simple("aten::flatten", [self.tensor(ins[0])],
                           {"start_dim": int(ins[1]), "end_dim": int(ins[2])}, outs)

    def op_reshape(self, ins, outs):
        x = self.tensor(ins[0])
        _, shape = self.result(outs)  # the traced shape: -1 already resolved
        return self.simple("aten::reshape", [x], {"shape": list(shape)}, outs)

    op_view = op_reshape

    def op_permute(self, ins, outs):
        return self.simple("aten::permute", [self.tensor(ins[0])], {"dims": list(ins[1])}, outs)

    def op_transpose(self, ins, outs):
        return self.simple("aten::transpose", [self.tensor(ins[0])],
                           {"dim0": int(ins[1]), "dim1": int(ins[2])}, outs)

    def op_t(self, ins, outs):
        x = self.tensor(ins[0])
        if len(x.shape) < 2:
            return x
        return self.simple("aten::transpose", [x], {"dim0": 0, "dim1": 1}, outs)

    def op_unsqueeze(self, ins, outs):
        return self.simple("aten::unsqueeze", [self.tensor(ins[0])], {"dim": int(ins[1])}, outs)

    def op_squeeze(self, ins, outs):
        attrs = {"dim": [int(ins[1])]} if len(ins) > 1 else {}
        return self.simple("aten::squeeze", [self.tensor(ins[0])], attrs, outs)

    def op_expand(self, ins, outs):
        _, shape = self.result(outs)
        return self.simple("aten::expand", [self.tensor(ins[0])], {"size": list(shape)}, outs)

    def op_cat(self, ins, outs):
        return self.simple("aten::cat", [self.tensor(t) for t in ins[0]], {"dim": int(ins[1])},
                           outs, like=None)

    def op_slice(self, ins, outs):
        x, dim, start, end, step = ins[:5]
        return self.simple("aten::slice", [self.tensor(x)], {
            "dim": int(dim), "start": 0 if start is None else int(start),
            "end": 2**63 - 1 if end is None else int(end), "step": int(step)}, outs)

    def op_select(self, ins, outs):
        x, dim, index = self.tensor(ins[0]), int(ins[1]), int(ins[2])
        d = dim % len(x.shape)
        index = index % x.shape[d]
        shape = list(x.shape)
        shape[d] = 1
        part = self.emit("aten::slice", [x], {"dim": d, "start": index, "end": index + 1,
                                             "step": 1}, x.dtype, shape)
        return self.simple("aten::squeeze", [part], {"dim": [d]}, outs)

    def split(self, x, sizes, dim):
        x = self.tensor(x)
        d = int(dim) % len(x.shape)
        types = []
        for n in sizes:
            shape = list(x.shape)
            shape[d] = n
            types.append((x.dtype, shape))
        return self.emit_multi("aten::split", [x], {"sizes": list(sizes), "dim": d}, types)

    def op_split(self, ins, outs):
        """split(x, size, dim), split_with_sizes(x, sizes, dim): a list of tensors."""
        x, size, dim = ins[:3]
        n = self.tensor(x).shape[int(dim)]
        if isinstance(size, (list, tuple)):
            sizes = [int(v) for v in size]
        else:
            size = int(size)
            if size <= 0:
                raise ConversionError(f"split size {size} must be positive")
            sizes = [min(size, n - i) for i in range(0, n, size)] or [0]
        return self.split(x, sizes, dim)

    op_split_with_sizes = op_unsafe_split = op_split

    def op_chunk(self, ins, outs):
        x, chunks, dim = self.tensor(ins[0]), int(ins[1]), int(ins[2])
        n = x.shape[dim]
        size = -(-n // chunks) if chunks > 0 else 0
        if size <= 0:
            raise ConversionError(f"chunks={chunks} must be positive")
        return self.split(x, [min(size, n - i) for i in range(0, n, size)] or [0], dim)

    op_unsafe_chunk = op_chunk

    def op_embedding(self, ins, outs):
        return self.simple("aten::embedding", [self.tensor(ins[0]), self.tensor(ins[1])], {},
                           outs)

    def reduce(self, op, ins, outs):
        """mean/sum(x, dims, keepdim, dtype=) or, over every dim, mean/sum(x, dtype=)."""
        x = self.tensor(ins[0])
        if len(ins) == 2:
            ins = [ins[0], None, False, ins[1]]
        dims = ins[1] if len(ins) > 1 else None
        attrs = {"dim": [] if dims is None else list(dims if isinstance(dims, (list, tuple))
                                                     else [dims])}
        attrs["keepdim"] = int(bool(ins[2])) if len(ins) > 2 else 0
        if len(ins) > 3 and ins[3] is not None:
            x = self.tensor(x, self.result(outs)[0])
        return self.simple(op, [x], attrs, outs)

    def op_mean(self, ins, outs):
        return self.reduce("aten::mean", ins, outs)

    def op_sum(self, ins, outs):
        return self.reduce("aten::sum", ins, outs)

    def op_prod(self, ins, outs):
        return self.reduce("aten::prod", ins, outs)

    def op_amax(self, ins, outs):
        return self.reduce("aten::amax", ins, outs)

    def op_amin(self, ins, outs):
        return self.reduce("aten::amin", ins, outs)

    def op_to(self, ins, outs):
        dtype, _ = self.result(outs)
        return self.tensor(ins[0], dtype)

    op_type_as = op_to

    def op_masked_fill(self, ins, outs):
        x = self.tensor(ins[0])
        fill = self.tensor(ins[2], x.dtype)
        return self.simple("aten::where", [self.tensor(ins[1]), fill, x], {}, outs, like=x)

    def op_where(self, ins, outs):
        dtype, _ = self.result(outs)
        return self.simple("aten::where", [self.tensor(ins[0], torch.bool),
                                           self.tensor(ins[1], dtype), self.tensor(ins[2], dtype)],
                           {}, outs)


UNARY = {"relu", "relu6", "sigmoid", "tanh", "silu", "hardsigmoid", "hardswish", "sqrt", "rsqrt",
         "reciprocal", "exp", "log", "erf", "neg", "abs", "sin", "cos", "floor", "ceil", "sign",
         "bitwise_not"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
BINARY = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder", "fmod"} | COMPARE


# ---- the .kir file -----------------------------------------------------------------------

MASK64 = (1 << 64) - 1


def kir_checksum(data):
    """ir/kir.c's checksum: a running 64-bit hash over the little-endian 8-byte words of data
    (zero padded), then over its length in bytes."""
    h = 0x6B696C6E2E6B6972
    k = 0x9E3779B97F4A7C15
    pad = (-len(data)) % 8
    words = np.frombuffer(bytes(data) + bytes(pad), dtype="<u8")
    step = 1 << 20
    for start in range(0, len(words), step):
        for w in words[start:start + step].tolist():
            h = ((h ^ w) * k) & MASK64
            h ^= h >> 29
    h = ((h ^ len(data)) * k) & MASK64
    return h ^ (h >> 29)


def align(n, a):
    return (n + a - 1) // a * a


def write_kir(path, text, blobs):
    """blobs: (name or "", tensor) in directory order: the weights, then the constants."""
    if sys.byteorder != "little":
        raise ConversionError(".kir files are written on little-endian hosts only")
    dir_parts = [len(blobs).to_bytes(8, "little")]
    datas, offset = [], 0
    for name, t in blobs:
        raw = tensor_bytes(t)
        nb = name.encode()
        entry = (DTYPES[t.dtype][1].to_bytes(4, "little") + t.dim().to_bytes(4, "little") +
                 len(nb).to_bytes(4, "little") + bytes(4) + offset.to_bytes(8, "little") +
                 len(raw).to_bytes(8, "little") +
                 b"".join(int(d).to_bytes(8, "little", signed=True) for d in t.shape) +
                 nb + bytes(align(len(nb), 8) - len(nb)))
        dir_parts.append(entry)
        datas.append(raw + bytes(align(len(raw), 64) - len(raw)))
        offset += align(len(raw), 64)
    directory = b"".join(dir_parts)
    text_b = text.encode()
    text_off = 256
    dir_off = align(text_off + len(text_b), 8)
    data_off = align(dir_off + len(directory), 64)
    body = b"".join([text_b, bytes(dir_off - text_off - len(text_b)), directory,
                     bytes(data_off - dir_off - len(directory))] + datas)
    head = (f"KILNIR 1 text={text_off}+{len(text_b)} dir={dir_off}+{len(directory)} "
            f"data={data_off}+{offset} sum=")
    header = (head + f"{kir_checksum(head.encode() + body):016x}").ljust(255) + "\n"
    if len(header) != 256:
        raise ConversionError("the sections are too large for the .kir header")
    tmp = f"{path}.tmp{os.getpid()}"  # written aside and renamed: never a half file at path
    try:
        with open(tmp, "wb") as f:
            f.write(header.encode())
            f.write(body)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ConversionError(f"{path}: cannot write: {e.strerror or e}") from None


# ---- the public entry point --------------------------------------------------------------

class ConvertResult:
    def __init__(self, text, input_names, output_names, weights, n_nodes):
        self.text, self.input_names, self.output_names = text, input_names, output_names
        self.weights, self.n_nodes = weights, n_nodes


def forward_arg_names(module, n):
    try:
        names = [p for p in inspect.signature(module.forward).parameters
                 if p not in ("self",)]
    except (TypeError, ValueError):
        names = []
    names = [re.sub(r"[^A-Za-z0-9_]", "_", x) for x in names[:n]]
    return names + [f"input{i}" for i in range(len(names), n)]


def convert(module, example_inputs, path, kiln=None):
    """Traces module (put in eval mode) on example_inputs (a tensor or a tuple of them), writes
    the kiln model to path as a .kir file, and checks it with `kiln show` when kiln (a path to
    the kiln binary) is given. Raises ConversionError naming every op or use kiln cannot
    represent. Returns a ConvertResult (text IR, input and output names, weight names)."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    module = module.eval()
    try:
        with torch.no_grad():
            traced = torch.jit.trace(module, example_inputs, check_trace=False)
    except Exception as e:  # the module's own failure on these inputs, as PyTorch words it
        first = str(e).strip().splitlines()
        raise ConversionError(f"tracing the module failed: {first[0] if first else e!r}") \
            from None
    graph = traced.graph.copy()
    torch._C._jit_pass_inline(graph)

    conv = Converter(module)
    input_names = forward_arg_names(module, len(example_inputs))
    graph_inputs, outputs = conv.run(graph, example_inputs, input_names)

    n_w = len(conv.weights)
    body = "\n".join(conv.lines)
    body, outputs = name_outputs(body, graph_inputs, outputs, conv)
    body = re.sub(r"\{@C(\d+)@\}", lambda m: f"{{@{n_w + int(m.group(1))}}}", body)
    header = "graph(" + ", ".join(f"{quote_name(v.name)} : {type_str(v.dtype, v.shape)}"
                                  for v in graph_inputs) + "):\n"
    text = (header + (body + "\n" if body else "") +
            "  return (" + ", ".join(quote_name(v.name) for v in outputs) + ")\n")
    blobs = [(p, t) for p, (_, t) in conv.weights.items()] + [("", t) for t in conv.consts]
    write_kir(path, text, blobs)
    if kiln:
        check_with_kiln(kiln, path)
    return ConvertResult(text, [v.name for v in graph_inputs], [v.name for v in outputs],
                         list(conv.weights), len(conv.lines))


def name_outputs(body, graph_inputs, outputs, conv):
    """Renames the graph outputs that are plain intermediate values to output (or output0,
    output1, ...), so that `kiln run -o output=y.npy` reads naturally."""
    fixed = {v.name for v in graph_inputs} | {v.name for v, _ in conv.weights.values()}
    renamed, seen = [], set()
    for i, v in enumerate(outputs):
        new = "output" if len(outputs) == 1 else f"output{i}"
        if (v.name in fixed or v.name in seen or not v.name.isdigit() or new in conv.names):
            seen.add(v.name)
            renamed.append(v)
            continue
        body = re.sub(r"%" + v.name + r"(?![A-Za-z0-9_.])", "%" + new, body)
        conv.names.add(new)
        seen.add(new)
        renamed.append(IRValue(new, v.dtype, v.shape))
    return body, renamed


def check_with_kiln(kiln, path):
    proc = subprocess.run([kiln, "show", path], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise ConversionError(f"{path}: `kiln show` rejects the written file (exit "
                              f"{proc.returncode}):\n{proc.stderr.strip()}")


# ---- the command line --------------------------------------------------------------------

def load_module(spec):
    """package.module:callable or path/to/file.py:callable; calls it to get the module."""
    if ":" not in spec:
        raise ConversionError(f"module spec {spec!r}: expected MODULE:CALLABLE, for example "
                              f"torchvision.models:resnet18 or model.py:make_model")
    where, attr = spec.rsplit(":", 1)
    try:
        if where.endswith(".py") or os.sep in where:
            if not os.path.isfile(where):
                raise ConversionError(f"module spec {spec!r}: no file {where}")
            name = "_torch2kiln_" + re.sub(r"\W", "_", os.path.basename(where)[:-3])
            ispec = importlib.util.spec_from_file_location(name, where)
            mod = importlib.util.module_from_spec(ispec)
            sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
            ispec.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
    except ImportError as e:
        raise ConversionError(f"module spec {spec!r}: cannot import {where}: {e}") from None
    fn = getattr(mod, attr, None)
    if fn is None:
        raise ConversionError(f"module spec {spec!r}: {where} has no attribute {attr}")
    module = fn if isinstance(fn, torch.nn.Module) else fn()
    if not isinstance(module, torch.nn.Module):
        raise ConversionError(f"module spec {spec!r}: {attr}() returned "
                              f"{type(module).__name__}, not a torch.nn.Module")
    return module


DTYPE_NAMES = {"float": torch.float32, "float32": torch.float32, "double": torch.float64,
               "half": torch.float16, "long": torch.int64, "int64": torch.int64,
               "int": torch.int32, "int32": torch.int32, "bool": torch.bool}


def parse_input_shape(text, gen, int_high):
    """"1,3,224,224" or "1,128:long": a random example input of that shape and dtype."""
    shape_text, _, dtype_text = text.partition(":")
    try:
        shape = [int(d) for d in shape_text.split(",") if d.strip()]
    except ValueError:
        raise ConversionError(f"--input-shape {text!r}: dims must be integers") from None
    if any(d < 0 for d in shape):
        raise ConversionError(f"--input-shape {text!r}: dims must not be negative")
    dtype = DTYPE_NAMES.get(dtype_text or "float")
    if dtype is None:
        raise ConversionError(f"--input-shape {text!r}: unknown dtype {dtype_text!r}; one of "
                              f"{', '.join(DTYPE_NAMES)}")
    if dtype.is_floating_point:
        return torch.randn(shape, generator=gen).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).to(torch.bool)
    return torch.randint(0, int_high, shape, generator=gen, dtype=dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="torch2kiln.py", description=__doc__.split("\n\n")[0],
        epilog="examples:\n"
               "  torch2kiln.py torchvision.models:resnet18 -o resnet18.kir "
               "--input-shape 1,3,224,224\n"
               "  torch2kiln.py model.py:make_model -o net.kir --input-shape 1,128:long "
               "--int-high 1000 --save-io io/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", metavar="MODULE_SPEC",
                        help="package.module:callable or path/to/file.py:callable returning "
                             "an nn.Module")
    parser.add_argument("-o", "--output", required=True, metavar="NET.kir",
                        help="the .kir file to write")
    parser.add_argument("--input-shape", action="append", default=[], metavar="DIMS[:DTYPE]",
                        help="shape (and dtype, default float) of a random example input, "
                             "once per forward() argument, e.g. 1,3,224,224 or 1,128:long")
    parser.add_argument("--int-high", type=int, default=2, metavar="N",
                        help="integer example inputs are drawn from [0, N) (default 2)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the module's random weights and the inputs (default 0)")
    parser.add_argument("--kiln", metavar="PATH", help="check the result with `PATH show`")
    parser.add_argument("--save-io", metavar="DIR",
                        help="save the example inputs (DIR/NAME.npy) and PyTorch's outputs "
                             "(DIR/NAME.npy, by the graph's output names)")
    args = parser.parse_args(argv)
    try:
        if not args.input_shape:
            raise ConversionError("give at least one --input-shape")
        torch.manual_seed(args.seed)
        module = load_module(args.module)
        gen = torch.Generator().manual_seed(args.seed)
        inputs = tuple(parse_input_shape(s, gen, args.int_high) for s in args.input_shape)
        try:
            result = convert(module, inputs, args.output, kiln=args.kiln)
        except ConversionError as e:
            raise ConversionError(f"{args.module}: {e}") from None
        if args.save_io:
            os.makedirs(args.save_io, exist_ok=True)
            with torch.no_grad():
                ys = module(*inputs)
            ys = [ys] if isinstance(ys, torch.Tensor) else list(ys)
            for name, x in zip(result.input_names, inputs):
                np.save(os.path.join(args.save_io, name + ".npy"), x.numpy())
            for name, y in zip(result.output_names, ys):
                np.save(os.path.join(args.save_io, name + ".npy"), y.detach().numpy())
    except ConversionError as e:
        print(f"torch2kiln: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {result.n_nodes} nodes, {len(result.weights)} weights, "
          f"inputs {', '.join(result.input_names)}, outputs {', '.join(result.output_names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
