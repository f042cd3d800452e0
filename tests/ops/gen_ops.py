#!/usr/bin/env python3
"""Writes the per-op conformance cases: inputs and expected outputs as .npy in tests/ops/data/
and the manifest tests/ops/cases.txt, read by tests/ops/test_ops.c.

Run from the repository root with numpy only (no PyTorch):  python3 tests/ops/gen_ops.py
The output was generated with numpy 2.4 and is deterministic (fixed seed, no timestamps).
References are computed in float64 with plain numpy loops and einsum, written the way PyTorch
defines each op, then rounded once to the output dtype.

Manifest line format (one case per line, '#' starts a comment line):
  NAME OP [ATTRS] in=FILE,FILE,... out=FILE,... rtol=R atol=A
ATTRS is the text-IR attribute list (ir/text.h syntax) between brackets, "[]" when empty.
in= lists the graph inputs in order, except for prim::Param and prim::Constant, whose single
in= file is the weight (bound to the Param's name) or the value attribute, not a graph input.
Values compare as |got - want| <= atol + rtol * |want|; integers and bools must be equal.
"""
import math
import os
import shutil

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
rng = np.random.default_rng(20240601)
lines = []

IR_DTYPE = {np.float32: "Float", np.float16: "Half", np.float64: "Double", np.int8: "Char",
            np.uint8: "Byte", np.int32: "Int", np.int64: "Long", np.bool_: "Bool"}


def fmt_attr(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, type):
        return IR_DTYPE[v]
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_attr(x) for x in v) + "]"
    raise TypeError(v)


def case(name, op, attrs, inputs, outputs, rtol=1e-5, atol=1e-6):
    ins = []
    for i, x in enumerate(inputs):
        f = "%s.in%d.npy" % (name, i)
        np.save(os.path.join(DATA, f), np.array(x, order="C"))  # keeps rank 0
        ins.append(f)
    outs = []
    for i, y in enumerate(outputs):
        f = "%s.out%d.npy" % (name, i)
        np.save(os.path.join(DATA, f), np.array(y, order="C"))
        outs.append(f)
    a = "[" + ", ".join("%s=%s" % (k, fmt_attr(v)) for k, v in attrs.items()) + "]"
    lines.append("%s %s %s in=%s out=%s rtol=%g atol=%g" %
                 (name, op, a, ",".join(ins), ",".join(outs), rtol, atol))


def rand(*shape, dtype=np.float32, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def f64(x):
    return np.asarray(x, dtype=np.float64)


# ---- reference implementations (float64) -----------------------------------------------------

def conv2d(x, w, b, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1):
    x, w = f64(x), f64(w)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + pad[0] + pad[2], wd + pad[1] + pad[3]))
    xp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    ho = (xp.shape[2] - (dil[0] * (kh - 1) + 1)) // stride[0] + 1
    wo = (xp.shape[3] - (dil[1] * (kw - 1) + 1)) // stride[1] + 1
    y = np.zeros((n, o, ho, wo))
    og = o // groups
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dil[0]:i * dil[0] + stride[0] * (ho - 1) + 1:stride[0],
                           j * dil[1]:j * dil[1] + stride[1] * (wo - 1) + 1:stride[1]]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    if b is not None:
        y += f64(b)[None, :, None, None]
    return y


def pool_out(size, k, s, p0, p1, d, ceil):
    span = d * (k - 1) + 1
    num = size + p0 + p1 - span
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p0:  # the last window must start inside the input
        out -= 1
    return out


def pool2d(x, kind, k, s=None, pad=(0, 0, 0, 0), dil=(1, 1), ceil=False, include_pad=True):
    x = f64(x)
    s = s or k
    n, c, h, w = x.shape
    ho = pool_out(h, k[0], s[0], pad[0], pad[2], dil[0], ceil)
    wo = pool_out(w, k[1], s[1], pad[1], pad[3], dil[1], ceil)
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            if kind == "max":
                rows = [i * s[0] - pad[0] + a * dil[0] for a in range(k[0])]
                cols = [j * s[1] - pad[1] + b * dil[1] for b in range(k[1])]
                rows = [r for r in rows if 0 <= r < h]
                cols = [q for q in cols if 0 <= q < w]
                y[:, :, i, j] = x[:, :, rows][:, :, :, cols].max(axis=(2, 3))
            else:
                h0 = i * s[0] - pad[0]
                w0 = j * s[1] - pad[1]
                h1 = min(h0 + k[0], h + pad[2])
                w1 = min(w0 + k[1], w + pad[3])
                count = (h1 - h0) * (w1 - w0)
                h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
                if not include_pad:
                    count = (h1 - h0) * (w1 - w0)
                y[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / count
    return y


def adaptive_avg(x, ho, wo):
    x = f64(x)
    n, c, h, w = x.shape
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            h0, h1 = (i * h) // ho, -(-((i + 1) * h) // ho)
            w0, w1 = (j * w) // wo, -(-((j + 1) * w) // wo)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


erf = np.vectorize(math.erf)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def hardsigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


UNARY = {
    "relu": (lambda x: np.maximum(x, 0.0), {}),
    "relu6": (lambda x: np.clip(x, 0.0, 6.0), {}),
    "hardtanh": (lambda x: np.clip(x, -1.0, 1.0), {}),
    "sigmoid": (sigmoid, {}),
    "hardsigmoid": (hardsigmoid, {}),
    "hardswish": (lambda x: x * hardsigmoid(x), {}),
    "tanh": (np.tanh, {}),
    "gelu": (lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))), {}),
    "silu": (lambda x: x * sigmoid(x), {}),
    "sqrt": (np.sqrt, {"positive": True}),
    "rsqrt": (lambda x: 1.0 / np.sqrt(x), {"positive": True}),
    "reciprocal": (lambda x: 1.0 / x, {"positive": True}),
    "exp": (np.exp, {}),
    "log": (np.log, {"positive": True}),
    "erf": (erf, {}),
    "neg": (lambda x: -x, {}),
    "abs": (np.abs, {}),
    "leaky_relu": (lambda x: np.where(x >= 0, x, 0.01 * x), {}),
}


def gen_unary():
    for name, (fn, opts) in UNARY.items():
        lo = 0.1 if opts.get("positive") else -7.0
        x = rand(3, 5, lo=lo, hi=7.0)
        case("unary_" + name, "aten::" + name, {}, [x], [fn(f64(x)).astype(np.float32)])
    x = rand(2, 6, lo=-3, hi=3)
    case("unary_hardtanh_attrs", "aten::hardtanh", {"min_val": -0.5, "max_val": 2.0}, [x],
         [np.clip(f64(x), -0.5, 2.0).astype(np.float32)])
    case("unary_clamp_both", "aten::clamp", {"min": -1.0, "max": 0.5}, [x],
         [np.clip(f64(x), -1.0, 0.5).astype(np.float32)])
    case("unary_clamp_min", "aten::clamp", {"min": 0.25}, [x],
         [np.maximum(f64(x), 0.25).astype(np.float32)])
    case("unary_leaky_relu_slope", "aten::leaky_relu", {"negative_slope": 0.2}, [x],
         [np.where(x >= 0, f64(x), 0.2 * f64(x)).astype(np.float32)])
    t = f64(x)
    gt = 0.5 * t * (1 + np.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t ** 3)))
    case("unary_gelu_tanh", "aten::gelu", {"approximate": "tanh"}, [x], [gt.astype(np.float32)])
    case("unary_dropout", "aten::dropout", {"p": 0.3}, [x], [x])
    # other dtypes: f64 and f16 floats, exact integer paths
    xd = rand(4, 3, dtype=np.float64)
    case("unary_tanh_f64", "aten::tanh", {}, [xd], [np.tanh(xd)], rtol=1e-12, atol=1e-14)
    xh = rand(4, 3, dtype=np.float16)
    case("unary_sigmoid_f16", "aten::sigmoid", {}, [xh], [sigmoid(f64(xh)).astype(np.float16)],
         rtol=1e-3, atol=1e-3)
    xi = rng.integers(-50, 50, size=(7,)).astype(np.int64)
    case("unary_neg_i64", "aten::neg", {}, [xi], [-xi])
    xi32 = rng.integers(-50, 50, size=(2, 4)).astype(np.int32)
    case("unary_abs_i32", "aten::abs", {}, [xi32], [np.abs(xi32)])
    case("unary_relu_i32", "aten::relu", {}, [xi32], [np.maximum(xi32, 0)])


def gen_cast():
    x = rand(3, 4, lo=-5, hi=5)
    x[0, 0], x[0, 1] = 0.0, -0.0
    for dt in (np.int32, np.int64, np.float64, np.float16, np.bool_, np.int8):
        name = "cast_f32_" + np.dtype(dt).name
        case(name, "aten::to", {"dtype": dt}, [x], [x.astype(dt)])
    xi = rng.integers(-300, 300, size=(2, 5)).astype(np.int64)
    case("cast_i64_f32", "aten::to", {"dtype": np.float32}, [xi], [xi.astype(np.float32)])
    case("cast_i64_i32", "aten::to", {"dtype": np.int32}, [xi], [xi.astype(np.int32)])
    case("cast_i64_u8", "aten::to", {"dtype": np.uint8}, [xi], [xi.astype(np.uint8)])
    b = rng.integers(0, 2, size=(6,)).astype(np.bool_)
    case("cast_bool_f32", "aten::to", {"dtype": np.float32}, [b], [b.astype(np.float32)])
    u = rng.integers(0, 255, size=(6,)).astype(np.uint8)
    case("cast_u8_i64", "aten::to", {"dtype": np.int64}, [u], [u.astype(np.int64)])
    d = rand(5, dtype=np.float64)
    case("cast_f64_f32", "aten::to", {"dtype": np.float32}, [d], [d.astype(np.float32)])


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum,
}
COMPARE = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
           "gt": np.greater, "ge": np.greater_equal}


def gen_binary():
    shapes = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 5)), ((2, 1, 3), (4, 1)), ((), (3, 2))]
    for name, fn in BINARY.items():
        for k, (sa, sb) in enumerate(shapes):
            a = rand(*sa)
            b = rand(*sb, lo=0.5, hi=2.0) if name == "div" else rand(*sb)
            case("binary_%s_%d" % (name, k), "aten::" + name, {}, [a, b],
                 [fn(f64(a), f64(b)).astype(np.float32)])
    a, b = rand(3, 4, lo=0.1, hi=3), rand(4, lo=-2, hi=2)
    case("binary_pow", "aten::pow", {}, [a, b], [np.power(f64(a), f64(b)).astype(np.float32)])
    a = rng.integers(-20, 20, size=(3, 4)).astype(np.int64)
    b = rng.integers(1, 6, size=(4,)).astype(np.int64) * rng.choice([-1, 1], size=(4,))
    case("binary_add_i64", "aten::add", {}, [a, b], [a + b])
    case("binary_mul_i64", "aten::mul", {}, [a, b], [a * b])
    case("binary_div_i64", "aten::div", {}, [a, b], [np.trunc(a / b).astype(np.int64)])
    ai = a.astype(np.int32)
    case("binary_sub_i32", "aten::sub", {}, [ai, b.astype(np.int32)], [ai - b.astype(np.int32)])
    case("binary_pow_i64", "aten::pow", {}, [a, np.abs(b)], [a ** np.abs(b)])
    ad, bd = rand(2, 3, dtype=np.float64), rand(3, dtype=np.float64)
    case("binary_mul_f64", "aten::mul", {}, [ad, bd], [ad * bd], rtol=1e-14, atol=0)
    ah, bh = rand(2, 3, dtype=np.float16), rand(1, 3, dtype=np.float16)
    case("binary_add_f16", "aten::add", {}, [ah, bh], [(f64(ah) + f64(bh)).astype(np.float16)],
         rtol=1e-3, atol=1e-3)
    for name, fn in COMPARE.items():
        a = rng.integers(-2, 3, size=(3, 4)).astype(np.float32)
        b = rng.integers(-2, 3, size=(4,)).astype(np.float32)
        case("compare_" + name, "aten::" + name, {}, [a, b], [fn(a, b)])
        ai, bi = a.astype(np.int64), b.reshape(4, 1)[:3].astype(np.int64)
        case("compare_%s_i64" % name, "aten::" + name, {}, [ai, bi], [fn(ai, bi)])
    c = rng.integers(0, 2, size=(3, 1)).astype(np.bool_)
    a, b = rand(4), rand(3, 4)
    case("where_f32", "aten::where", {}, [c, a, b], [np.where(c, a, b)])
    ai, bi = rng.integers(-9, 9, size=(2, 1, 4)).astype(np.int32), np.array(7, dtype=np.int32)
    case("where_i32", "aten::where", {}, [c, ai, bi], [np.where(c, ai, bi)])


def gen_products():
    x, w, b = rand(4, 6), rand(5, 6), rand(5)
    case("linear_bias", "aten::linear", {}, [x, w, b], [(f64(x) @ f64(w).T + f64(b)).astype(np.float32)])
    x3 = rand(2, 3, 6)
    case("linear_3d_nobias", "aten::linear", {}, [x3, w], [(f64(x3) @ f64(w).T).astype(np.float32)])
    xm = rand(2, 10, 6)  # 20 rows: the transpose + gemm strategy
    case("linear_many_rows", "aten::linear", {}, [xm, w, b],
         [(f64(xm) @ f64(w).T + f64(b)).astype(np.float32)])
    xd, wd = rand(3, 4, dtype=np.float64), rand(2, 4, dtype=np.float64)
    case("linear_f64", "aten::linear", {}, [xd, wd], [xd @ wd.T], rtol=1e-12, atol=1e-12)
    pairs = [((3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)), ((2, 3, 4), (4, 2)),
             ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4,))]
    for k, (sa, sb) in enumerate(pairs):
        a, b = rand(*sa), rand(*sb)
        case("matmul_%d" % k, "aten::matmul", {}, [a, b], [np.matmul(f64(a), f64(b)).astype(np.float32)])


def gen_conv():
    def one(name, attrs, cin, cout, hw, k, bias=True, dtype=np.float32, **kw):
        groups = kw.get("groups", 1)
        x = rand(2, cin, hw[0], hw[1], dtype=dtype)
        w = rand(cout, cin // groups, k[0], k[1], dtype=dtype)
        b = rand(cout, dtype=dtype) if bias else None
        y = conv2d(x, w, b, **kw).astype(dtype)
        tol = (1e-5, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)
        case(name, "aten::conv2d", attrs, [x, w] + ([b] if bias else []), [y], rtol=tol[0], atol=tol[1])

    one("conv2d_basic", {}, 3, 4, (6, 5), (3, 3))
    one("conv2d_nobias", {}, 3, 4, (6, 5), (3, 3), bias=False)
    one("conv2d_stride2_pad1", {"stride": [2, 2], "padding": [1, 1]}, 3, 4, (7, 8), (3, 3),
        stride=(2, 2), pad=(1, 1, 1, 1))
    one("conv2d_pad4", {"padding": [1, 0, 2, 1]}, 2, 3, (5, 5), (3, 2), pad=(1, 0, 2, 1))
    one("conv2d_dilation", {"dilation": [2, 1], "padding": [2, 1]}, 2, 3, (7, 6), (3, 3),
        dil=(2, 1), pad=(2, 1, 2, 1))
    one("conv2d_groups", {"groups": 2}, 4, 6, (5, 5), (3, 3), groups=2)
    one("conv2d_depthwise", {"groups": 4, "padding": [1, 1]}, 4, 4, (6, 6), (3, 3), groups=4,
        pad=(1, 1, 1, 1))
    one("conv2d_depthwise_mult", {"groups": 3, "stride": [2, 1]}, 3, 6, (6, 6), (3, 3), groups=3,
        stride=(2, 1))
    one("conv2d_pointwise", {}, 5, 3, (4, 4), (1, 1))
    one("conv2d_all", {"stride": [2, 3], "padding": [1, 2], "dilation": [2, 2], "groups": 2}, 4, 2,
        (9, 10), (3, 2), stride=(2, 3), pad=(1, 2, 1, 2), dil=(2, 2), groups=2)
    one("conv2d_f64", {"padding": [1, 1]}, 2, 2, (4, 4), (3, 3), dtype=np.float64, pad=(1, 1, 1, 1))


def gen_norm():
    x = rand(2, 3, 4, 5)
    w, b, m, v = rand(3), rand(3), rand(3), rand(3, lo=0.5, hi=2.0)
    def bn(eps):
        sh = (1, 3, 1, 1)
        return ((f64(x) - f64(m).reshape(sh)) / np.sqrt(f64(v).reshape(sh) + eps) *
                f64(w).reshape(sh) + f64(b).reshape(sh)).astype(np.float32)
    case("batch_norm", "aten::batch_norm", {}, [x, w, b, m, v], [bn(1e-5)])
    case("batch_norm_eps", "aten::batch_norm", {"eps": 0.1}, [x, w, b, m, v], [bn(0.1)])
    x2 = rand(3, 2, 2, 3)
    case("batch_norm_2d", "aten::batch_norm", {}, [x2[:, :, 0, 0].copy(), w[:2], b[:2], m[:2], v[:2]],
         [((f64(x2[:, :, 0, 0]) - f64(m[:2])) / np.sqrt(f64(v[:2]) + 1e-5) * f64(w[:2]) +
           f64(b[:2])).astype(np.float32)])

    def ln(x, nd, w=None, b=None, eps=1e-5):
        axes = tuple(range(x.ndim - nd, x.ndim))
        t = f64(x)
        mu = t.mean(axis=axes, keepdims=True)
        var = ((t - mu) ** 2).mean(axis=axes, keepdims=True)
        y = (t - mu) / np.sqrt(var + eps)
        if w is not None:
            y = y * f64(w)
        if b is not None:
            y = y + f64(b)
        return y.astype(np.float32)
    x = rand(2, 3, 8)
    lw, lb = rand(8), rand(8)
    case("layer_norm", "aten::layer_norm", {"normalized_shape": [8]}, [x, lw, lb], [ln(x, 1, lw, lb)])
    case("layer_norm_noaffine", "aten::layer_norm", {"normalized_shape": [8], "eps": 0.001}, [x],
         [ln(x, 1, eps=1e-3)])
    lw2 = rand(3, 8)
    case("layer_norm_2d_weight", "aten::layer_norm", {"normalized_shape": [3, 8]}, [x, lw2],
         [ln(x, 2, lw2)])

    def softmax(x, dim, log):
        t = f64(x)
        e = np.exp(t - t.max(axis=dim, keepdims=True))
        s = e / e.sum(axis=dim, keepdims=True)
        return (np.log(s) if log else s).astype(x.dtype)
    x = rand(2, 3, 5, lo=-5, hi=5)
    for dim in (-1, 1, 0):
        case("softmax_dim%d" % dim, "aten::softmax", {"dim": dim}, [x], [softmax(x, dim, False)])
        case("log_softmax_dim%d" % dim, "aten::log_softmax", {"dim": dim}, [x], [softmax(x, dim, True)])
    xd = rand(3, 4, dtype=np.float64)
    case("softmax_f64", "aten::softmax", {"dim": 1}, [xd], [softmax(xd, 1, False)], rtol=1e-12, atol=1e-14)


def gen_pool():
    x = rand(2, 3, 7, 8)
    def mp(name, attrs, **kw):
        case(name, "aten::max_pool2d", attrs, [x], [pool2d(x, "max", **kw).astype(np.float32)])
    def ap(name, attrs, **kw):
        case(name, "aten::avg_pool2d", attrs, [x], [pool2d(x, "avg", **kw).astype(np.float32)])
    mp("max_pool2d_k2", {"kernel_size": [2, 2]}, k=(2, 2))
    mp("max_pool2d_k3s2p1", {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]},
       k=(3, 3), s=(2, 2), pad=(1, 1, 1, 1))
    mp("max_pool2d_ceil", {"kernel_size": [3, 3], "stride": [2, 2], "ceil_mode": 1},
       k=(3, 3), s=(2, 2), ceil=True)
    mp("max_pool2d_dilation", {"kernel_size": [2, 3], "stride": [1, 2], "dilation": [2, 1]},
       k=(2, 3), s=(1, 2), dil=(2, 1))
    mp("max_pool2d_ceil_pad", {"kernel_size": [2, 2], "stride": [2, 2], "padding": [1, 1],
                               "ceil_mode": 1}, k=(2, 2), s=(2, 2), pad=(1, 1, 1, 1), ceil=True)
    ap("avg_pool2d_k2", {"kernel_size": [2, 2]}, k=(2, 2))
    ap("avg_pool2d_k3s2p1", {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]},
       k=(3, 3), s=(2, 2), pad=(1, 1, 1, 1))
    ap("avg_pool2d_exclude_pad", {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1],
                                  "count_include_pad": 0},
       k=(3, 3), s=(2, 2), pad=(1, 1, 1, 1), include_pad=False)
    ap("avg_pool2d_ceil", {"kernel_size": [3, 3], "stride": [2, 2], "ceil_mode": 1},
       k=(3, 3), s=(2, 2), ceil=True)
    ap("avg_pool2d_ceil_pad_exclude", {"kernel_size": [3, 2], "stride": [2, 2], "padding": [1, 1],
                                       "ceil_mode": 1, "count_include_pad": 0},
       k=(3, 2), s=(2, 2), pad=(1, 1, 1, 1), ceil=True, include_pad=False)
    for ho, wo in ((3, 2), (1, 1), (7, 8), (4, 5)):
        case("adaptive_avg_pool2d_%dx%d" % (ho, wo), "aten::adaptive_avg_pool2d",
             {"output_size": [ho, wo]}, [x], [adaptive_avg(x, ho, wo).astype(np.float32)])


def gen_movement():
    x = rand(2, 3, 4)
    case("reshape", "aten::reshape", {"shape": [4, -1]}, [x], [x.reshape(4, -1)])
    case("flatten", "aten::flatten", {"start_dim": 1}, [x], [x.reshape(2, 12)])
    case("flatten_default", "aten::flatten", {}, [x], [x.reshape(-1)])
    s = rand(2, 1, 3, 1)
    case("squeeze_all", "aten::squeeze", {}, [s], [s.squeeze()])
    case("squeeze_dim", "aten::squeeze", {"dim": [-1]}, [s], [s.squeeze(-1)])
    case("unsqueeze", "aten::unsqueeze", {"dim": -1}, [x], [x[..., None]])
    case("transpose", "aten::transpose", {"dim0": 0, "dim1": 2}, [x], [x.transpose(2, 1, 0)])
    case("permute", "aten::permute", {"dims": [1, 2, 0]}, [x], [x.transpose(1, 2, 0)])
    xi = rng.integers(0, 100, size=(2, 3, 4, 5)).astype(np.int64)
    case("permute_i64_4d", "aten::permute", {"dims": [0, 2, 3, 1]}, [xi], [xi.transpose(0, 2, 3, 1)])
    e = rand(3, 1)
    case("expand", "aten::expand", {"size": [2, 3, 4]}, [e], [np.broadcast_to(e, (2, 3, 4))])
    case("expand_keep", "aten::expand", {"size": [-1, 5]}, [e], [np.broadcast_to(e, (3, 5))])
    a, b, c = rand(2, 1, 4), rand(2, 3, 4), rand(2, 2, 4)
    case("cat_dim1", "aten::cat", {"dim": 1}, [a, b, c], [np.concatenate([a, b, c], axis=1)])
    case("cat_neg", "aten::cat", {"dim": -1}, [b, b], [np.concatenate([b, b], axis=-1)])
    case("cat_default", "aten::cat", {}, [b, b[:1]], [np.concatenate([b, b[:1]], axis=0)])
    y = rand(2, 6, 3)
    case("split_dim1", "aten::split", {"sizes": [1, 3, 2], "dim": 1}, [y],
         [y[:, :1], y[:, 1:4], y[:, 4:]])
    case("split_default", "aten::split", {"sizes": [1, 1]}, [y], [y[:1], y[1:]])
    z = rand(4, 7)
    case("slice_step2", "aten::slice", {"dim": 1, "start": 1, "end": 6, "step": 2}, [z], [z[:, 1:6:2]])
    case("slice_neg_step", "aten::slice", {"dim": 1, "start": -2, "end": 0, "step": -2}, [z],
         [z[:, -2:0:-2]])
    case("slice_neg_step_full", "aten::slice", {"dim": 0, "start": -1, "end": -100, "step": -1},
         [z], [z[-1:-100:-1]])
    case("slice_neg_step_default_empty", "aten::slice", {"dim": 0, "step": -1}, [z], [z[0:2**62:-1]])
    case("slice_neg_bounds", "aten::slice", {"dim": -1, "start": -5, "end": -1}, [z], [z[:, -5:-1]])
    case("slice_clamped", "aten::slice", {"start": 2, "end": 100}, [z], [z[2:100]])
    p = rand(2, 3, 4)
    def pad(x, pairs, value=0.0):  # pairs from dim 0, negative crops
        y = x
        for d, (lo, hi) in enumerate(pairs):
            if lo < 0:
                y = np.take(y, range(-lo, y.shape[d]), axis=d)
            if hi < 0:
                y = np.take(y, range(0, y.shape[d] + hi), axis=d)
            widths = [(0, 0)] * x.ndim
            widths[d] = (max(lo, 0), max(hi, 0))
            y = np.pad(y, widths, constant_values=value)
        return y
    case("constant_pad_last", "aten::constant_pad_nd", {"pad": [1, 2]}, [p], [pad(p, [(0, 0), (0, 0), (1, 2)])])
    case("constant_pad_two_dims", "aten::constant_pad_nd", {"pad": [0, 1, 2, 0], "value": -1.5}, [p],
         [pad(p, [(0, 0), (2, 0), (0, 1)], -1.5)])
    case("constant_pad_crop", "aten::constant_pad_nd", {"pad": [-1, 1, 1, -1]}, [p],
         [pad(p, [(0, 0), (1, -1), (-1, 1)])])
    table = rand(10, 4)
    idx = np.array([[1, 0, 9], [3, 3, 2]], dtype=np.int64)
    case("embedding", "aten::embedding", {}, [table, idx], [table[idx]])
    idx32 = np.array([4, 1, 1], dtype=np.int32)
    case("embedding_i32", "aten::embedding", {}, [table, idx32], [table[idx32]])
    sel = np.array([2, 0], dtype=np.int64)
    case("index_select", "aten::index_select", {"dim": 1}, [table, sel], [table[:, sel]])
    case("index_select_dim0", "aten::index_select", {"dim": 0}, [p, sel[1:]], [p[sel[1:]]])
    gi = np.array([[-1, 0], [1, -3]], dtype=np.int64)
    case("gather_axis1_neg", "onnx::Gather", {"axis": 1}, [p, gi], [np.take(p, gi, axis=1)])
    gi0 = np.array([1, -2], dtype=np.int32)
    case("gather_default_axis", "onnx::Gather", {}, [p, gi0], [np.take(p, gi0, axis=0)])
    gs = np.array(-1, dtype=np.int64)
    case("gather_scalar_index", "onnx::Gather", {"axis": 2}, [p, gs], [np.take(p, gs, axis=2)])


def gen_reduce():
    x = rand(2, 3, 4)
    red = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min}
    for name, fn in red.items():
        case("%s_all" % name, "aten::" + name, {}, [x], [np.asarray(fn(f64(x))).astype(np.float32)])
        case("%s_dim1" % name, "aten::" + name, {"dim": [1]}, [x],
             [fn(f64(x), axis=1).astype(np.float32)])
        case("%s_dims_keepdim" % name, "aten::" + name, {"dim": [0, -1], "keepdim": 1}, [x],
             [fn(f64(x), axis=(0, 2), keepdims=True).astype(np.float32)])
    xi = rng.integers(-100, 100, size=(3, 4)).astype(np.int32)
    case("sum_i32", "aten::sum", {"dim": [0]}, [xi], [xi.astype(np.int64).sum(axis=0)])
    case("amax_i32_keepdim", "aten::amax", {"dim": [1], "keepdim": 1}, [xi], [xi.max(axis=1, keepdims=True)])
    case("sum_empty_dims", "aten::sum", {"dim": []}, [x], [np.asarray(f64(x).sum()).astype(np.float32)])


def gen_structure():
    w = rand(3, 4)
    case("param", "prim::Param", {"name": "fc1.weight"}, [w], [w])
    wi = rng.integers(-5, 5, size=(2, 2)).astype(np.int64)
    case("param_i64", "prim::Param", {"name": "table"}, [wi], [wi])
    c = rand(5)
    case("constant", "prim::Constant", {}, [c], [c])


def gen_attention():
    # Its own generator, so these cases leave every earlier case's data as it was.
    arng = np.random.default_rng(20261125)

    def r(*shape, dtype=np.float32):
        return arng.uniform(-1.0, 1.0, size=shape).astype(dtype)

    def sdpa(q, k, v, mask=None, scale=None, causal=False):
        q, k, v = f64(q), f64(k), f64(v)
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
        if mask is not None:
            s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + f64(mask)
        if causal:
            L, S = s.shape[-2:]
            s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return np.matmul(e / e.sum(axis=-1, keepdims=True), v)
    q, k, v = r(2, 3, 4, 8), r(2, 3, 5, 8), r(2, 3, 5, 6)
    case("attention", "aten::scaled_dot_product_attention", {}, [q, k, v],
         [sdpa(q, k, v).astype(np.float32)])
    m = r(4, 5) * 2.0
    case("attention_mask_scale", "aten::scaled_dot_product_attention", {"scale": 0.5},
         [q, k, v, m], [sdpa(q, k, v, m, scale=0.5).astype(np.float32)])
    qc = r(2, 3, 5, 8)
    case("attention_causal", "aten::scaled_dot_product_attention", {"is_causal": 1}, [qc, k, v],
         [sdpa(qc, k, v, causal=True).astype(np.float32)])
    mb = arng.integers(0, 2, size=(2, 1, 4, 5)).astype(np.bool_)
    mb[..., 0] = True  # every query keeps a key, so no row is nan
    case("attention_bool_mask", "aten::scaled_dot_product_attention", {}, [q, k, v, mb],
         [sdpa(q, k, v, mb).astype(np.float32)])
    kb, vb = r(1, 5, 8), r(5, 6)  # batch dims broadcast against q's
    case("attention_broadcast", "aten::scaled_dot_product_attention", {}, [q, kb, vb],
         [sdpa(q, kb, vb).astype(np.float32)])
    qd, kd, vd = r(3, 4, dtype=np.float64), r(6, 4, dtype=np.float64), r(6, 2, dtype=np.float64)
    case("attention_f64", "aten::scaled_dot_product_attention", {}, [qd, kd, vd], [sdpa(qd, kd, vd)],
         rtol=1e-12, atol=1e-14)

# ---- recurrent (issue 4) ----------------------------------------------------------------------

def rnn_reference(kind, x, w, r, b=None, seq_lens=None, h0=None, c0=None, p=None,
                  direction="forward", layout=0, acts=None, alphas=(), clip=None, lbr=0,
                  input_forget=0):
    """ONNX RNN/GRU/LSTM in float64, vectorized over the batch: returns (Y, Y_h[, Y_c])."""
    def act(name, alpha):
        return {"Tanh": np.tanh, "Sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
                "Relu": lambda v: np.maximum(v, 0.0),
                "LeakyRelu": lambda v: np.where(v >= 0, v, alpha * v)}[name]
    x, w, r = f64(x), f64(w), f64(r)
    if layout:
        x = x.transpose(1, 0, 2)
    T, B, _ = x.shape
    D, GH, _ = w.shape
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    H = GH // G
    b = np.zeros((D, 2 * GH)) if b is None else f64(b)
    lens = np.full(B, T) if seq_lens is None else np.asarray(seq_lens)
    if h0 is None:
        h0 = np.zeros((D, B, H))
    elif layout:
        h0 = f64(h0).transpose(1, 0, 2)
    if c0 is None:
        c0 = np.zeros((D, B, H))
    elif layout:
        c0 = f64(c0).transpose(1, 0, 2)
    p = np.zeros((D, 3 * H)) if p is None else f64(p)
    per = {"RNN": 1, "GRU": 2, "LSTM": 3}[kind]
    acts = acts or {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"],
                    "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[kind]
    cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
    Y = np.zeros((T, D, B, H))
    Yh = np.zeros((D, B, H))
    Yc = np.zeros((D, B, H))
    for d in range(D):
        names = acts[d * per:(d + 1) * per] if len(acts) > per else acts
        al = list(alphas[d * per:(d + 1) * per]) if len(alphas) > per else list(alphas)
        fns = [act(n, al[i] if i < len(al) else 0.01) for i, n in enumerate(names)]
        rev = direction == "reverse" or (direction == "bidirectional" and d == 1)
        Wx, Rh = w[d], r[d]
        Wb, Rb = b[d, :GH], b[d, GH:]
        h, c = f64(h0[d]).copy(), f64(c0[d]).copy()
        for s in range(T):
            # a row whose sequence is over keeps its state; time index per row
            t = np.where(rev, lens - 1 - s, s)
            live = s < lens
            xt = x[np.clip(t, 0, T - 1), np.arange(B)]
            gx = xt @ Wx.T + Wb
            if kind == "RNN":
                hn = fns[0](cl(gx + h @ Rh.T + Rb))
                cn = c
            elif kind == "GRU":
                gh = h @ Rh[:2 * H].T + Rb[:2 * H]
                z = fns[0](cl(gx[:, :H] + gh[:, :H]))
                rr = fns[0](cl(gx[:, H:2 * H] + gh[:, H:]))
                if lbr:
                    hh = rr * (h @ Rh[2 * H:].T + Rb[2 * H:])
                else:
                    hh = (rr * h) @ Rh[2 * H:].T + Rb[2 * H:]
                cand = fns[1](cl(gx[:, 2 * H:] + hh))
                hn = (1 - z) * cand + z * h
                cn = c
            else:
                g = gx + h @ Rh.T + Rb
                i = fns[0](cl(g[:, :H] + p[d, :H] * c))
                f = 1 - i if input_forget else fns[0](cl(g[:, 2 * H:3 * H] + p[d, 2 * H:] * c))
                cn = f * c + i * fns[1](cl(g[:, 3 * H:]))
                o = fns[0](cl(g[:, H:2 * H] + p[d, H:2 * H] * cn))
                hn = o * fns[2](cn)
            h = np.where(live[:, None], hn, h)
            c = np.where(live[:, None], cn, c)
            for bi in range(B):
                if live[bi]:
                    Y[t[bi], d, bi] = h[bi]
        Yh[d], Yc[d] = h, c
    if layout:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return (Y, Yh, Yc) if kind == "LSTM" else (Y, Yh)


def gen_rnn():
    # Its own generator, so these cases leave every earlier case's data as it was.
    nr = np.random.default_rng(20261126)

    def r(*shape, dtype=np.float32):
        return nr.uniform(-0.6, 0.6, size=shape).astype(dtype)

    def emit(name, kind, attrs, ins, dtype=np.float32, **kw):
        ref = [None if v.size == 0 else v for v in ins]  # size-0 placeholders are omitted
        outs = rnn_reference(kind, *ref, **kw)
        tol = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
        case(name, "onnx::" + kind, attrs, [v for v in ins if v is not None],
             [o.astype(dtype) for o in outs], **tol)

    none_f, none_i = np.zeros(0, np.float32), np.zeros(0, np.int32)
    T, B, I, H = 4, 3, 5, 6
    x = r(T, B, I)
    emit("rnn_forward", "RNN", {"hidden_size": H}, [x, r(1, H, I), r(1, H, H), r(1, 2 * H)])
    lens = np.array([4, 2, 3], np.int32)
    # B omitted before given inputs: the size-0 placeholder; reverse with lengths and a state
    emit("rnn_reverse_lens", "RNN", {"hidden_size": H, "direction": "reverse"},
         [x, r(1, H, I), r(1, H, H), none_f, lens, r(1, B, H)], direction="reverse")
    wa, ra = r(2, H, I), r(2, H, H)
    emit("rnn_bidir_leaky", "RNN",
         {"hidden_size": H, "direction": "bidirectional", "activations": ["LeakyRelu", "Tanh"],
          "activation_alpha": [0.25]},
         [x, wa, ra], direction="bidirectional", acts=["LeakyRelu", "Tanh"], alphas=[0.25, 0.0])

    g3 = 3 * H
    emit("gru_forward", "GRU", {"hidden_size": H}, [x, r(1, g3, I), r(1, g3, H), r(1, 2 * g3)])
    gi = [x, r(2, g3, I), r(2, g3, H), r(2, 2 * g3), lens, r(2, B, H)]
    emit("gru_bidir_lens", "GRU", {"hidden_size": H, "direction": "bidirectional"}, gi,
         direction="bidirectional")
    xb = r(B, T, I)
    gl = [xb, r(1, g3, I), r(1, g3, H), r(1, 2 * g3), none_i, r(B, 1, H)]
    emit("gru_lbr_layout1", "GRU", {"hidden_size": H, "linear_before_reset": 1, "layout": 1},
         gl, layout=1, lbr=1)

    g4 = 4 * H
    emit("lstm_forward", "LSTM", {"hidden_size": H}, [x, r(1, g4, I), r(1, g4, H), r(1, 2 * g4)])
    li = [x, r(2, g4, I), r(2, g4, H), r(2, 2 * g4), lens, r(2, B, H), r(2, B, H), r(2, 3 * H)]
    emit("lstm_bidir_full", "LSTM", {"hidden_size": H, "direction": "bidirectional", "clip": 0.5},
         li, direction="bidirectional", clip=0.5)
    ll = [xb, r(1, g4, I), r(1, g4, H), none_f, none_i, r(B, 1, H), r(B, 1, H)]
    emit("lstm_layout1_input_forget", "LSTM",
         {"hidden_size": H, "layout": 1, "input_forget": 1, "direction": "reverse"},
         ll, layout=1, input_forget=1, direction="reverse")
    xd = r(T, B, I, dtype=np.float64)
    emit("lstm_f64", "LSTM", {"hidden_size": H},
         [xd, r(1, g4, I, dtype=np.float64), r(1, g4, H, dtype=np.float64)], dtype=np.float64)


# ---- elementwise math (issue 4) ------------------------------------------------------------

def gen_math():
    """Trigonometric and hyperbolic functions, floor/ceil/round (half to even)/sign, remainder
    (divisor's sign), fmod (dividend's sign) and shifts. Own generator, so cases added elsewhere
    do not change these inputs."""
    mr = np.random.default_rng(4001)

    def mrand(*shape, dtype=np.float32, lo=-3.0, hi=3.0):
        return mr.uniform(lo, hi, size=shape).astype(dtype)

    domains = {"sin": (np.sin, -7, 7), "cos": (np.cos, -7, 7), "tan": (np.tan, -1.4, 1.4),
               "asin": (np.arcsin, -0.95, 0.95), "acos": (np.arccos, -0.95, 0.95),
               "atan": (np.arctan, -5, 5), "sinh": (np.sinh, -3, 3), "cosh": (np.cosh, -3, 3),
               "asinh": (np.arcsinh, -5, 5), "acosh": (np.arccosh, 1.05, 6),
               "atanh": (np.arctanh, -0.95, 0.95)}
    for name, (fn, lo, hi) in domains.items():
        x = mrand(3, 5, lo=lo, hi=hi)
        case("math_" + name, "aten::" + name, {}, [x], [fn(f64(x)).astype(np.float32)])
    xd = mrand(4, 3, dtype=np.float64, lo=-0.9, hi=0.9)
    case("math_atanh_f64", "aten::atanh", {}, [xd], [np.arctanh(xd)], rtol=1e-12, atol=1e-14)
    xh = mrand(2, 5, dtype=np.float16)
    case("math_cos_f16", "aten::cos", {}, [xh], [np.cos(f64(xh)).astype(np.float16)],
         rtol=1e-3, atol=1e-3)
    # rounding: ties at every half, both signs, plus random values
    ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -3.5, 0.0, -0.0], dtype=np.float32)
    x = np.concatenate([ties, mrand(10, lo=-6, hi=6)]).reshape(4, 5)
    case("math_floor", "aten::floor", {}, [x], [np.floor(x)])
    case("math_ceil", "aten::ceil", {}, [x], [np.ceil(x)])
    case("math_round", "aten::round", {}, [x], [np.round(x)])  # numpy: half to even
    xd = x.astype(np.float64) + 1e-9 * (x == 2.5)  # just above a tie rounds up
    case("math_round_f64", "aten::round", {}, [xd], [np.round(xd)], rtol=0, atol=0)
    case("math_floor_f16", "aten::floor", {}, [x.astype(np.float16)],
         [np.floor(x).astype(np.float16)], rtol=0, atol=0)
    case("math_sign", "aten::sign", {}, [x], [np.sign(x)])
    xi = mr.integers(-5, 6, size=(3, 4)).astype(np.int64)
    case("math_sign_i64", "aten::sign", {}, [xi], [np.sign(xi)])
    xi8 = mr.integers(-128, 128, size=(9,)).astype(np.int8)
    case("math_sign_i8", "aten::sign", {}, [xi8], [np.sign(xi8)])
    # remainder and fmod: mixed signs, broadcasting
    a, b = mrand(3, 4, lo=-10, hi=10), mrand(4, lo=0.5, hi=4) * np.array([1, -1, 1, -1], np.float32)
    case("math_remainder", "aten::remainder", {}, [a, b],
         [np.mod(f64(a), f64(b)).astype(np.float32)])
    case("math_fmod", "aten::fmod", {}, [a, b], [np.fmod(f64(a), f64(b)).astype(np.float32)])
    ad, bd = mrand(2, 3, dtype=np.float64, lo=-9, hi=9), np.float64(-2.5)
    case("math_remainder_f64", "aten::remainder", {}, [ad, bd], [np.mod(ad, bd)],
         rtol=1e-12, atol=1e-14)
    ai = mr.integers(-20, 21, size=(3, 4)).astype(np.int64)
    bi = np.array([3, -3, 7, -1], dtype=np.int64)
    case("math_remainder_i64", "aten::remainder", {}, [ai, bi], [np.mod(ai, bi)])
    case("math_fmod_i64", "aten::fmod", {}, [ai, bi], [np.fmod(ai, bi)])
    a32, b32 = ai.astype(np.int32), bi.reshape(4, 1)[:3].astype(np.int32)
    case("math_remainder_i32", "aten::remainder", {}, [a32, b32], [np.mod(a32, b32)])
    a8 = mr.integers(-128, 128, size=(2, 5)).astype(np.int8)
    b8 = np.array([5, -5, 2, -7, 127], dtype=np.int8)
    case("math_fmod_i8", "aten::fmod", {}, [a8, b8], [np.fmod(a8, b8)])
    # shifts: wrap at the dtype's width; a shift of the width or more (or negative) gives 0,
    # or -1 for a negative value shifted right
    def shl(x, n, bits):
        r = np.where((n >= 0) & (n < bits), np.left_shift(x.astype(np.int64), np.clip(n, 0, 63)), 0)
        return r.astype(x.dtype)  # wraps like the C store
    def shr(x, n, bits):
        big = np.where(x < 0, -1, 0)
        r = np.where((n >= 0) & (n < bits), np.right_shift(x.astype(np.int64), np.clip(n, 0, 63)),
                     big)
        return r.astype(x.dtype)
    u = mr.integers(0, 256, size=(2, 6)).astype(np.uint8)
    n = np.array([0, 1, 3, 7, 8, 9], dtype=np.uint8)
    case("math_shl_u8", "aten::bitwise_left_shift", {}, [u, n], [shl(u, n.astype(np.int64), 8)])
    case("math_shr_u8", "aten::bitwise_right_shift", {}, [u, n], [shr(u, n.astype(np.int64), 8)])
    v = mr.integers(-1000, 1000, size=(3, 5)).astype(np.int32)
    m = np.array([0, 2, 31, 32, 40], dtype=np.int32)
    case("math_shr_i32", "aten::bitwise_right_shift", {}, [v, m], [shr(v, m.astype(np.int64), 32)])
    w = mr.integers(-1000, 1000, size=(5,)).astype(np.int64)
    k = np.array([1, 10, 62, 64, -1], dtype=np.int64)
    case("math_shl_i64", "aten::bitwise_left_shift", {}, [w, k], [shl(w, k, 64)])


# ---- resize and grid sample (issue 4) ---------------------------------------------------------
# Written from the ONNX Resize and GridSample specifications as direct sums: each output value is
# the sum over the input positions a filter reaches of the product of per-dim weights.

def resize_coord(coord, o, n_in, n_out, s, roi0=0.0, roi1=1.0):
    w = s * n_in
    if coord == "align_corners":
        return 0.0 if w == 1 else o * (n_in - 1) / (w - 1)
    if coord == "asymmetric":
        return o / s
    if coord == "tf_crop_and_resize":
        x = (roi1 - roi0) * (n_in - 1) / 2 if w == 1 else o * (roi1 - roi0) * (n_in - 1) / (w - 1)
        return x + roi0 * (n_in - 1)
    if coord == "pytorch_half_pixel":
        return -0.5 if w == 1 else (o + 0.5) / s - 0.5
    if coord == "half_pixel_symmetric":
        return n_in / 2 * (1 - n_out / w) + (o + 0.5) / s - 0.5
    return (o + 0.5) / s - 0.5


def resize_weights(n_in, n_out, s, mode, coord, nearest="round_prefer_floor", a=-0.75,
                   exclude=False, antialias=False, roi=(0.0, 1.0)):
    """(n_out, n_in) matrix of weights, and which outputs fall outside (tf_crop_and_resize)."""
    m = np.zeros((n_out, n_in))
    outside = np.zeros(n_out, dtype=bool)
    for o in range(n_out):
        x = resize_coord(coord, o, n_in, n_out, s, roi[0], roi[1])
        if coord == "tf_crop_and_resize" and not (0 <= x <= n_in - 1):
            outside[o] = True
        if mode == "nearest":
            f = math.floor(x)
            frac = x - f
            if frac == 0:
                j = f
            elif nearest == "floor":
                j = f
            elif nearest == "ceil":
                j = f + 1
            elif nearest == "round_prefer_ceil":
                j = f + (frac >= 0.5)
            else:
                j = f + (frac > 0.5)
            m[o, min(max(j, 0), n_in - 1)] = 1
            continue
        reach = 1.0 if mode == "linear" else 2.0
        k = min(s, 1.0) if antialias else 1.0
        taps = {}
        for j in range(math.floor(x - reach / k) - 1, math.ceil(x + reach / k) + 2):
            t = abs(j - x) * k
            if mode == "linear":
                wt = max(0.0, 1 - t)
            elif t <= 1:
                wt = (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
            elif t < 2:
                wt = a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
            else:
                wt = 0.0
            if exclude and not (0 <= j < n_in):
                wt = 0.0
            taps[j] = wt
        total = sum(taps.values())
        for j, wt in taps.items():
            if antialias or exclude:
                wt /= total
            m[o, min(max(j, 0), n_in - 1)] += wt
    return m, outside


def resize_ref(x, sizes, scales=None, extrapolation=0.0, roi=None, **kw):
    y = f64(x)
    masks = []
    for d, n_out in enumerate(sizes):
        n_in = x.shape[d]
        s = scales[d] if scales else n_out / n_in
        r = (roi[d], roi[len(sizes) + d]) if roi else (0.0, 1.0)
        m, outside = resize_weights(n_in, n_out, s, roi=r, **kw)
        y = np.moveaxis(np.tensordot(m, np.moveaxis(y, d, 0), axes=1), 0, d)
        masks.append(outside)
    for d, outside in enumerate(masks):
        idx = [slice(None)] * len(sizes)
        idx[d] = outside
        y[tuple(idx)] = extrapolation
    return y.astype(x.dtype)


def grid_sample_ref(x, grid, mode="linear", padding="zeros", align=False):
    dtype = x.dtype
    x, grid = f64(x), f64(grid)
    n, c = x.shape[:2]
    dims = x.shape[2:]
    k = len(dims)
    out = np.zeros((n, c) + grid.shape[1:-1])

    def reflect(v, lo, hi):
        span = hi - lo
        while v < lo or v > hi:
            v = 2 * lo - v if v < lo else 2 * hi - v
        return v

    def fetch(b, idx):
        pos = []
        for d, i in enumerate(idx):
            if padding == "zeros" and not (0 <= i < dims[d]):
                return np.zeros(c)
            if padding == "reflection":
                lo, hi = (0.0, dims[d] - 1.0) if align else (-0.5, dims[d] - 0.5)
                i = int(reflect(float(i), lo, hi))
            pos.append(min(max(i, 0), dims[d] - 1))
        return x[(b, slice(None)) + tuple(pos)]

    for b in range(n):
        for p in np.ndindex(*grid.shape[1:-1]):
            g = grid[(b,) + p][::-1]
            coords, weights = [], []
            for d in range(k):
                L = dims[d]
                u = float(np.float32((g[d] + 1) / 2 * (L - 1) if align else ((g[d] + 1) * L - 1) / 2))
                lo, hi = (0.0, L - 1.0) if align else (-0.5, L - 0.5)
                if mode == "nearest":
                    u = float(np.rint(u))
                if u < lo or u > hi:
                    if padding == "border":
                        u = min(max(u, 0.0), L - 1.0)
                    elif padding == "reflection":
                        u = reflect(u, lo, hi)
                if mode == "nearest":
                    coords.append([int(u)])
                    weights.append([1.0])
                    continue
                f = math.floor(u)
                t = u - f
                if mode == "linear":
                    coords.append([f, f + 1])
                    weights.append([1 - t, t])
                else:
                    a = -0.75
                    ws = []
                    for j in range(-1, 3):
                        z = abs(j - t)
                        ws.append((a + 2) * z ** 3 - (a + 3) * z ** 2 + 1 if z <= 1 else
                                  a * z ** 3 - 5 * a * z ** 2 + 8 * a * z - 4 * a)
                    coords.append([f - 1, f, f + 1, f + 2])
                    weights.append(ws)
            acc = np.zeros(c)
            for combo in np.ndindex(*[len(cs) for cs in coords]):
                wt = np.prod([weights[d][combo[d]] for d in range(k)])
                acc += wt * fetch(b, [coords[d][combo[d]] for d in range(k)])
            out[(b, slice(None)) + p] = acc
    return out.astype(dtype)


def gen_resize():
    rr = np.random.default_rng(404)  # its own stream: the cases above keep their data

    def r(*shape):
        return rr.uniform(-2.0, 2.0, size=shape).astype(np.float32)

    x = r(1, 2, 3, 5)
    case("resize_nearest_half_pixel", "onnx::Resize", {"size": [1, 2, 7, 4]}, [x],
         [resize_ref(x, [1, 2, 7, 4], mode="nearest", coord="half_pixel")])
    x = r(1, 1, 3, 3)
    sc = [1.0, 1.0, 1.7, 0.6]
    case("resize_nearest_ceil_asymmetric", "onnx::Resize",
         {"size": [1, 1, 5, 1], "scales": sc, "coordinate_transformation_mode": "asymmetric",
          "nearest_mode": "ceil"}, [x],
         [resize_ref(x, [1, 1, 5, 1], scales=sc, mode="nearest", coord="asymmetric",
                     nearest="ceil")])
    x = r(2, 3, 4)
    case("resize_linear_half_pixel", "onnx::Resize", {"size": [2, 5, 7], "mode": "linear"}, [x],
         [resize_ref(x, [2, 5, 7], mode="linear", coord="half_pixel")])
    x = r(1, 1, 4, 4)
    case("resize_cubic_align_corners_exclude", "onnx::Resize",
         {"size": [1, 1, 6, 3], "mode": "cubic", "coordinate_transformation_mode": "align_corners",
          "cubic_coeff_a": -0.5, "exclude_outside": 1}, [x],
         [resize_ref(x, [1, 1, 6, 3], mode="cubic", coord="align_corners", a=-0.5, exclude=True)])
    x = r(1, 1, 8, 9)
    case("resize_linear_antialias_down", "onnx::Resize",
         {"size": [1, 1, 3, 4], "mode": "linear",
          "coordinate_transformation_mode": "pytorch_half_pixel", "antialias": 1}, [x],
         [resize_ref(x, [1, 1, 3, 4], mode="linear", coord="pytorch_half_pixel", antialias=True)])
    x = r(1, 1, 8, 7)
    case("resize_cubic_antialias_symmetric", "onnx::Resize",
         {"size": [1, 1, 3, 10], "scales": [1.0, 1.0, 0.4, 1.5], "mode": "cubic",
          "coordinate_transformation_mode": "half_pixel_symmetric", "antialias": 1}, [x],
         [resize_ref(x, [1, 1, 3, 10], scales=[1.0, 1.0, 0.4, 1.5], mode="cubic",
                     coord="half_pixel_symmetric", antialias=True)])
    x = r(1, 1, 5, 5)
    roi = [0.0, 0.0, 0.2, -0.3, 1.0, 1.0, 0.9, 0.6]
    case("resize_tf_crop_extrapolate", "onnx::Resize",
         {"size": [1, 1, 3, 4], "roi": roi, "mode": "linear",
          "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 7.0},
         [x], [resize_ref(x, [1, 1, 3, 4], roi=roi, extrapolation=7.0, mode="linear",
                          coord="tf_crop_and_resize")])

    x = r(2, 3, 4, 5)
    g = rr.uniform(-1.2, 1.2, size=(2, 3, 2, 2)).astype(np.float32)
    case("grid_sample_linear_zeros", "onnx::GridSample", {}, [x, g], [grid_sample_ref(x, g)])
    case("grid_sample_nearest_border_align", "onnx::GridSample",
         {"mode": "nearest", "padding_mode": "border", "align_corners": 1}, [x, g],
         [grid_sample_ref(x, g, "nearest", "border", True)])
    case("grid_sample_cubic_reflection", "onnx::GridSample",
         {"mode": "cubic", "padding_mode": "reflection"}, [x, g],
         [grid_sample_ref(x, g, "cubic", "reflection")])
    x = r(1, 2, 3, 4, 3)
    g = rr.uniform(-1.3, 1.3, size=(1, 2, 2, 3, 3)).astype(np.float32)
    case("grid_sample_3d_linear_reflection_align", "onnx::GridSample",
         {"padding_mode": "reflection", "align_corners": 1}, [x, g],
         [grid_sample_ref(x, g, "linear", "reflection", True)])


# ---- reductions and indexing (issue 4) ----------------------------------------------------------

def scatter_ref(data, dim, index, src, reduce="none"):
    out = np.array(data, copy=True)
    for pos in np.ndindex(*index.shape):
        at = list(pos)
        i = int(index[pos])
        at[dim] = i + data.shape[dim] if i < 0 else i
        at = tuple(at)
        v = src[pos]
        if reduce == "none":
            out[at] = v
        elif reduce == "add":
            out[at] += v
        elif reduce == "mul":
            out[at] *= v
        elif reduce == "max":
            out[at] = max(out[at], v)
        else:
            out[at] = min(out[at], v)
    return out


def scatter_nd_ref(data, indices, updates, reduce="none"):
    out = np.array(data, copy=True)
    for pos in np.ndindex(*indices.shape[:-1]):
        at = tuple(int(i) for i in indices[pos])
        if reduce == "none":
            out[at] = updates[pos]
        elif reduce == "add":
            out[at] += updates[pos]
        else:
            out[at] *= updates[pos]
    return out


def gather_nd_ref(data, indices, batch_dims=0):
    bshape = indices.shape[:batch_dims]
    k = indices.shape[-1]
    out = np.empty(indices.shape[:-1] + data.shape[batch_dims + k:], dtype=data.dtype)
    for b in np.ndindex(*bshape):
        for pos in np.ndindex(*indices.shape[batch_dims:-1]):
            at = b + tuple(int(i) for i in indices[b + pos])
            out[b + pos] = data[at]
    return out


def gen_index():
    rr = np.random.default_rng(4404)  # its own stream: other families' data stay as they are

    def r(*shape, lo=-2.0, hi=2.0):
        return rr.uniform(lo, hi, size=shape).astype(np.float32)

    x = r(3, 4, 5, lo=0.5, hi=1.5)
    case("prod_dims_keepdim", "aten::prod", {"dim": [0, -1], "keepdim": 1}, [x],
         [np.prod(f64(x), axis=(0, 2), keepdims=True).astype(np.float32)])
    xi = rr.integers(-3, 4, size=(2, 3, 4)).astype(np.int32)
    case("prod_i32_all", "aten::prod", {}, [xi], [np.prod(xi.astype(np.int64))])
    e = np.zeros((2, 0, 3), dtype=np.float32)
    case("prod_empty_dim", "aten::prod", {"dim": [1]}, [e], [np.ones((2, 3), np.float32)])
    case("amax_empty_dim", "aten::amax", {"dim": [1]}, [e],
         [np.full((2, 3), -np.inf, np.float32)])

    x = r(3, 4, 5)
    case("cumsum_dim1", "aten::cumsum", {"dim": 1}, [x],
         [np.cumsum(f64(x), axis=1).astype(np.float32)])
    rev = np.flip(np.cumsum(np.flip(f64(x), 2), axis=2), 2)
    case("cumsum_exclusive_reverse", "aten::cumsum", {"dim": -1, "exclusive": 1, "reverse": 1},
         [x], [(rev - f64(x)).astype(np.float32)], atol=1e-5)
    xl = rr.integers(-50, 50, size=(4, 3)).astype(np.int64)
    case("cumsum_i64_exclusive", "aten::cumsum", {"dim": 0, "exclusive": 1}, [xl],
         [np.cumsum(xl, axis=0) - xl])

    data = r(4, 5)
    index = np.array([[1, -1, 0], [3, 2, 1]], dtype=np.int64)  # -1: the last row
    src = r(3, 4)
    for red in ["none", "add", "mul", "max", "min"]:
        attrs = {"dim": 0} if red == "none" else {"dim": 0, "reduce": red}
        case("scatter_dim0_" + red, "aten::scatter", attrs, [data, index, src],
             [scatter_ref(f64(data), 0, index, f64(src), red).astype(np.float32)])
    di = rr.integers(-9, 9, size=(3, 4)).astype(np.int32)
    ii = np.array([[0, 0, 3], [2, 2, 2]], dtype=np.int32)
    si = rr.integers(-9, 9, size=(2, 3)).astype(np.int32)
    case("scatter_dim1_i32_add_dup", "aten::scatter", {"dim": -1, "reduce": "add"}, [di, ii, si],
         [scatter_ref(di, 1, ii, si, "add")])

    data = r(4, 3, 2)
    idx = np.array([[1], [3], [1]], dtype=np.int64)
    upd = r(3, 3, 2)
    case("scatter_nd_rows_add_dup", "onnx::ScatterND", {"reduction": "add"}, [data, idx, upd],
         [scatter_nd_ref(f64(data), idx, f64(upd), "add").astype(np.float32)])
    idx2 = np.array([[0, 2], [3, 1]], dtype=np.int64)
    upd2 = r(2, 2)
    case("scatter_nd_pairs", "onnx::ScatterND", {}, [data, idx2, upd2],
         [scatter_nd_ref(data, idx2, upd2)])
    case("scatter_nd_pairs_mul", "onnx::ScatterND", {"reduction": "mul"}, [data, idx2, upd2],
         [scatter_nd_ref(f64(data), idx2, f64(upd2), "mul").astype(np.float32)])

    data = r(3, 4, 5)
    gi = np.array([[[0, 1], [2, 3]], [[1, 0], [2, -1]]], dtype=np.int64)
    case("gather_nd_pairs", "onnx::GatherND", {}, [data, gi],
         [gather_nd_ref(data, np.where(gi < 0, gi + 4, gi))])
    gb = np.array([[1], [3], [0]], dtype=np.int32)
    case("gather_nd_batch1", "onnx::GatherND", {"batch_dims": 1}, [data, gb],
         [gather_nd_ref(data, gb, 1)])
    dint = rr.integers(-9, 9, size=(2, 3)).astype(np.int32)
    gfull = np.array([[1, 2], [0, 0]], dtype=np.int64)
    case("gather_nd_i32_scalars", "onnx::GatherND", {}, [dint, gfull], [gather_nd_ref(dint, gfull)])


# ---- bitwise (issue 4) -------------------------------------------------------------------
# and, or, xor, not: numpy's bitwise ops on the same dtypes (two's complement), Bool logical.

def gen_bitwise():
    br = np.random.default_rng(4405)  # its own stream: other families' data stay as they are
    a = br.integers(-1000, 1000, size=(3, 4)).astype(np.int32)
    b = br.integers(-1000, 1000, size=(4,)).astype(np.int32)  # broadcasts over rows
    case("bitwise_and_i32", "aten::bitwise_and", {}, [a, b], [np.bitwise_and(a, b)])
    case("bitwise_or_i32", "aten::bitwise_or", {}, [a, b], [np.bitwise_or(a, b)])
    case("bitwise_xor_i32", "aten::bitwise_xor", {}, [a, b], [np.bitwise_xor(a, b)])
    u = br.integers(0, 256, size=(2, 5)).astype(np.uint8)
    v = br.integers(0, 256, size=(2, 1)).astype(np.uint8)
    case("bitwise_and_u8", "aten::bitwise_and", {}, [u, v], [np.bitwise_and(u, v)])
    case("bitwise_xor_u8", "aten::bitwise_xor", {}, [u, v], [np.bitwise_xor(u, v)])
    w = np.concatenate([br.integers(-2**62, 2**62, size=(4,)),
                        [np.iinfo(np.int64).min, -1]]).astype(np.int64)
    z = np.int64(-(2**40) + 12345)  # rank 0
    case("bitwise_or_i64", "aten::bitwise_or", {}, [w, z], [np.bitwise_or(w, z)])
    p = br.integers(0, 2, size=(2, 3)).astype(bool)
    q = br.integers(0, 2, size=(1, 3)).astype(bool)
    case("bitwise_and_bool", "aten::bitwise_and", {}, [p, q], [np.logical_and(p, q)])
    case("bitwise_or_bool", "aten::bitwise_or", {}, [p, q], [np.logical_or(p, q)])
    case("bitwise_xor_bool", "aten::bitwise_xor", {}, [p, q], [np.logical_xor(p, q)])
    case("bitwise_not_i32", "aten::bitwise_not", {}, [a], [np.bitwise_not(a)])
    case("bitwise_not_u8", "aten::bitwise_not", {}, [u], [np.bitwise_not(u)])
    i8 = br.integers(-128, 128, size=(7,)).astype(np.int8)
    case("bitwise_not_i8", "aten::bitwise_not", {}, [i8], [np.bitwise_not(i8)])
    case("bitwise_not_i64", "aten::bitwise_not", {}, [w], [np.bitwise_not(w)])
    case("bitwise_not_bool", "aten::bitwise_not", {}, [p], [np.logical_not(p)])


def main():
    if os.path.isdir(DATA):
        shutil.rmtree(DATA)
    os.makedirs(DATA)
    gen_unary()
    gen_cast()
    gen_binary()
    gen_products()
    gen_conv()
    gen_norm()
    gen_pool()
    gen_movement()
    gen_reduce()
    gen_structure()
    gen_attention()
    gen_rnn()  # recurrent (issue 4)
    gen_math()  # elementwise math (issue 4)
    gen_resize()  # resize and grid sample (issue 4)
    gen_index()  # reductions and indexing (issue 4)
    gen_bitwise()  # bitwise (issue 4)
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write("# Generated by tests/ops/gen_ops.py; do not edit. Format: see that script.\n")
        f.write("# NAME OP [ATTRS] in=FILES out=FILES rtol=R atol=A\n")
        for line in lines:
            f.write(line + "\n")
    print("%d cases" % len(lines))


if __name__ == "__main__":
    main()
