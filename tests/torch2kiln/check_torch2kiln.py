#!/usr/bin/python3
"""The torch2kiln tests, one case per run:

  check_torch2kiln.py KILN CASE SOURCE_ROOT WORK_DIR

mlp, resnet18, bert, gpt
                     the models of tests/models/torch/export_models.py (same seeds, random
                     weights, non-trivial norm statistics) converted with convert(), checked by
                     `kiln show`, run with `kiln run` and compared with PyTorch (rtol 1e-3,
                     atol 1e-4); the IR must hold the ops and weight names expected, and kiln
                     must save the loaded file back byte for byte
zoo                  five more torchvision classifiers on a 64x64 image, run and compared
ops                  small modules (models.py) with the rarer forms of ops: reductions with
                     dtype=, scalars on either side, mixed dtypes, grouped and dilated convs,
                     norms without affine parameters, pooling options
two_inputs           two inputs of two dtypes, a tuple of outputs, sizes read from tensors, a
                     buffer, a chunk (aten::split) and folded constants
cli                  the command line: a file spec and a torchvision spec, --seed (same seed,
                     same bytes), --save-io, --help, and bad specs refused
unmapped             a module using torch.fft fails with every unmapped op kind and its count,
                     a non-zero exit and no output file; refused uses are reported with the
                     unmapped ops; a damaged .kir is caught by the `kiln show` check
Exits 0 on success, 1 on any failed check (all checks of the case run), 77 without torch.
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree for the modules imported

try:
    import numpy as np
    import torch
    import torchvision  # noqa: F401 (the models need it)
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

KILN, CASE, ROOT, WORK = sys.argv[1:5]
HERE = os.path.join(ROOT, "tests", "torch2kiln")
TOOL = os.path.join(ROOT, "tools", "torch2kiln.py")
sys.path[:0] = [os.path.join(ROOT, "tools"), os.path.join(ROOT, "tests", "models", "torch"), HERE]
import torch2kiln  # noqa: E402
import models  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def work_dir():
    d = os.path.join(WORK, CASE)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def run(cmd):
    print("$ " + " ".join(cmd))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.stdout.strip():
        print(p.stdout.rstrip()[-3000:])
    if p.stderr.strip():
        print(p.stderr.rstrip()[-3000:])
    return p


def compare(got_path, want, what):
    if not check(os.path.isfile(got_path), f"{what}: kiln wrote {got_path}"):
        return
    got = np.load(got_path)
    want = np.asarray(want)
    if not check(got.shape == want.shape and got.dtype == want.dtype,
                 f"{what}: kiln gives {got.dtype}{list(got.shape)}, PyTorch "
                 f"{want.dtype}{list(want.shape)}"):
        return
    diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
    scale = float(np.linalg.norm(want.astype(np.float64))) if want.size else 0.0
    rel = float(np.linalg.norm(got.astype(np.float64) - want)) / scale if scale else 0.0
    check(np.allclose(got, want, rtol=1e-3, atol=1e-4) and rel < 1e-3,
          f"{what}: matches PyTorch (rtol 1e-3, atol 1e-4, relative norm error < 1e-3; max abs "
          f"diff {diff:.3g}, relative norm error {rel:.3g})")


def run_kiln(kir, inputs, outputs, d):
    """kiln run kir with inputs {name: array}, comparing each output {name: PyTorch array}."""
    cmd = [KILN, "run", kir]
    for name, x in inputs.items():
        path = os.path.join(d, f"in_{name}.npy")
        np.save(path, x)
        cmd += ["--input", f"{name}={path}"]
    for name in outputs:
        cmd += ["-o", f"{name}={os.path.join(d, f'out_{name}.npy')}"]
    p = run(cmd)
    if check(p.returncode == 0, f"kiln run {os.path.basename(kir)}: exit {p.returncode}"):
        for name, want in outputs.items():
            compare(os.path.join(d, f"out_{name}.npy"), want, f"output {name}")


def run_main(args):
    """torch2kiln.main in this process (no new Python and torch to start): (exit code, stdout,
    stderr)."""
    print("$ torch2kiln.py " + " ".join(args))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = torch2kiln.main(args)
        except SystemExit as e:  # argparse: --help, usage errors
            rc = e.code
    print(out.getvalue().rstrip() + err.getvalue().rstrip())
    return rc, out.getvalue(), err.getvalue()


def count(text, op):
    return sum(1 for line in text.splitlines() if f"= {op}[" in line or f"= {op}(" in line)


# ---- cases ----

def case_export_model(name, expect):
    """A model of export_models.py built exactly as it exports it."""
    import export_models as em
    build, make_input, _ = em.MODELS[name]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    model = build()
    with torch.no_grad():
        em.randomize_norms(model, gen)
    model.eval()
    x = make_input(gen)
    with torch.no_grad():
        y = model(x)
    d = work_dir()
    kir = os.path.join(d, name + ".kir")
    r = torch2kiln.convert(model, (x,), kir, kiln=KILN)
    print(r.text if len(r.text) < 4000 else r.text[:4000] + "...")
    check(os.path.isfile(kir), f"convert wrote {kir}")
    for op, n in expect.get("ops", {}).items():
        check(count(r.text, op) == n, f"{op} x{n} in the IR (found {count(r.text, op)})")
    for w in expect.get("weights", []):
        check(w in r.weights, f"weight {w} is a prim::Param of the graph")
    for line in expect.get("lines", []):
        check(line in r.text, f"the IR has `{line}`")
    check(r.input_names == [expect["input"]], f"input named {expect['input']} "
          f"(got {r.input_names})")
    run_kiln(kir, {r.input_names[0]: x.numpy()}, {r.output_names[0]: y.numpy()}, d)
    same_as_kiln_writer(kir, d)


def same_as_kiln_writer(kir, d):
    """kiln loads the file and saves it again unchanged (-O0 runs no pass): the bytes must be
    the ones torch2kiln wrote, so header, text, directory, padding and checksum all follow
    kiln's own writer."""
    again = os.path.join(d, "resaved.kir")
    p = run([KILN, "opt", kir, "-O0", "-o", again])
    if check(p.returncode == 0, f"kiln opt -O0 re-saves {os.path.basename(kir)}"):
        with open(kir, "rb") as f1, open(again, "rb") as f2:
            check(f1.read() == f2.read(), "kiln's writer gives the same bytes as torch2kiln")


def case_mlp():
    case_export_model("mlp", {
        "input": "x",
        "ops": {"aten::linear": 2, "aten::relu": 1, "prim::Param": 4},
        "weights": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
        "lines": ["%fc1.weight : Float(5, 10) = prim::Param[name=\"fc1.weight\"]()",
                  "%output : Float(1, 2) = aten::linear(%2, %fc2.weight, %fc2.bias)"]})


def case_resnet18():
    case_export_model("resnet18", {
        "input": "x",
        "ops": {"aten::conv2d": 20, "aten::batch_norm": 20, "aten::relu": 17, "aten::add": 8,
                "aten::max_pool2d": 1, "aten::adaptive_avg_pool2d": 1, "aten::flatten": 1,
                "aten::linear": 1, "prim::Param": 102},
        "weights": ["conv1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.running_var",
                    "layer2.0.downsample.0.weight", "fc.bias"],
        "lines": ["aten::conv2d[stride=[2, 2], padding=[3, 3], dilation=[1, 1], groups=1]"
                  "(%x, %conv1.weight)",
                  "aten::max_pool2d[kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], "
                  "dilation=[1, 1], ceil_mode=0]"]})


def case_bert():
    case_export_model("bert", {
        "input": "ids",
        "ops": {"aten::embedding": 2, "aten::layer_norm": 5, "aten::softmax": 2,
                "aten::matmul": 4, "aten::linear": 12, "aten::gelu": 2, "aten::reshape": 8,
                "aten::transpose": 10, "aten::arange": 0},
        "weights": ["tok.weight", "pos.weight", "layers.1.attn.q.weight", "layers.0.ln2.bias"],
        # the positions (arange, unsqueeze) are folded into one constant, a blob of the .kir
        "lines": ["Long(1, 128) = prim::Constant[value=Long(1, 128){@"]})


def case_gpt():
    case_export_model("gpt", {
        "input": "ids",
        # the causal mask buffer is sliced, negated and used by where; the LM head reuses the
        # token embedding (one weight, transposed)
        "ops": {"aten::where": 2, "aten::bitwise_not": 2, "aten::slice": 4,
                "aten::layer_norm": 5, "aten::softmax": 2, "aten::matmul": 5},
        "weights": ["tok.weight", "layers.0.attn.causal_mask", "ln_f.weight"],
        "lines": ["aten::transpose[dim0=0, dim1=1](%tok.weight)"]})


def case_zoo():
    """torchvision classifiers whose ops go beyond ResNet's (grouped and depthwise convs, relu6,
    silu, hardswish, sigmoid gates, chunk and cat, ceil-mode pooling, dropout), on a small image
    so the case stays quick."""
    import export_models as em
    d = work_dir()
    for name, kwargs in [("mobilenet_v2", {}), ("efficientnet_b0", {}),
                         ("shufflenet_v2_x0_5", {}), ("mobilenet_v3_small", {}),
                         ("googlenet", {"aux_logits": False, "init_weights": True})]:
        print(f"---- {name}")
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(1)
        model = getattr(torchvision.models, name)(weights=None, **kwargs)
        with torch.no_grad():
            em.randomize_norms(model, gen)
        model.eval()
        x = torch.randn(1, 3, 64, 64, generator=gen)
        with torch.no_grad():
            y = model(x)
        kir = os.path.join(d, name + ".kir")
        try:
            r = torch2kiln.convert(model, x, kir, kiln=KILN)
        except torch2kiln.ConversionError as e:
            check(False, f"{name}: conversion failed: {e}")
            continue
        check(count(r.text, "aten::conv2d") > 0, f"{name}: converted, with convolutions")
        run_kiln(kir, {"x": x.numpy()}, {"output": y.numpy()}, d)


def case_ops():
    """Small modules of models.py that use the rarer forms of ops: each converted, run and
    compared output by output."""
    d = work_dir()
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    for make, shape, expect in [
            (models.make_reductions, (2, 3, 4), ["aten::amax", "aten::prod", "aten::amin"]),
            (models.make_elementwise, (3, 6), ["aten::where", "aten::log_softmax",
                                               "aten::to[dtype=Double]"]),
            (models.make_convnet, (2, 4, 9, 9), ["groups=4", "dilation=[2, 2]",
                                                 "count_include_pad=0", "aten::cat"])]:
        print(f"---- {make.__name__}")
        model = make().eval()
        for m in model.modules():  # running statistics that are not 0 and 1
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
        x = torch.randn(*shape, generator=gen)
        with torch.no_grad():
            ys = model(x)
        ys = list(ys) if isinstance(ys, tuple) else [ys]
        kir = os.path.join(d, make.__name__ + ".kir")
        try:
            r = torch2kiln.convert(model, x, kir, kiln=KILN)
        except torch2kiln.ConversionError as e:
            check(False, f"{make.__name__}: conversion failed: {e}")
            continue
        for word in expect:
            check(word in r.text, f"{make.__name__}: the IR has {word}")
        run_kiln(kir, {r.input_names[0]: x.numpy()},
                 {name: y.numpy() for name, y in zip(r.output_names, ys)}, d)


def case_two_inputs():
    torch.manual_seed(7)
    model = models.make_two_inputs().eval()
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(0, 50, (3, 5), generator=gen)
    x = torch.randn(3, 80, generator=gen)
    with torch.no_grad():
        y0, y1 = model(ids, x)
    d = work_dir()
    kir = os.path.join(d, "two.kir")
    r = torch2kiln.convert(model, (ids, x), kir, kiln=KILN)
    print(r.text)
    check(r.input_names == ["ids", "x"], f"inputs ids, x (got {r.input_names})")
    check(r.output_names == ["output0", "output1"], f"outputs output0, output1 "
          f"(got {r.output_names})")
    check("graph(%ids : Long(3, 5), %x : Float(3, 80)):" in r.text, "typed graph inputs")
    check(count(r.text, "aten::split") == 1, "chunk became aten::split")
    check("scale" in r.weights, "the buffer is a weight")
    check(count(r.text, "aten::size") == 0, "sizes were evaluated at conversion")
    run_kiln(kir, {"ids": ids.numpy(), "x": x.numpy()},
             {"output0": y0.numpy(), "output1": y1.numpy()}, d)
    same_as_kiln_writer(kir, d)


def case_cli():
    d = work_dir()
    py = sys.executable
    rc, out, _ = run_main(["--help"])
    check(rc == 0 and "MODULE_SPEC" in out and "--input-shape" in out,
          "--help prints the usage and exits 0")

    # a file spec, with --save-io giving the input and PyTorch's output
    spec = os.path.join(HERE, "models.py") + ":make_mlp"
    kir = os.path.join(d, "mlp.kir")
    io_dir = os.path.join(d, "io")
    p = run([py, TOOL, spec, "-o", kir, "--input-shape", "4,12", "--seed", "5", "--kiln", KILN,
             "--save-io", io_dir])
    if check(p.returncode == 0, f"torch2kiln.py {spec}: exit {p.returncode}"):
        check("inputs input, outputs output" in p.stdout, "the summary names input and output")
        run_kiln(kir, {"input": np.load(os.path.join(io_dir, "input.npy"))},
                 {"output": np.load(os.path.join(io_dir, "output.npy"))}, d)
        with open(kir, "rb") as f:
            first = f.read()
        kir2 = os.path.join(d, "mlp2.kir")
        run_main([spec, "-o", kir2, "--input-shape", "4,12", "--seed", "5"])
        kir3 = os.path.join(d, "mlp3.kir")
        run_main([spec, "-o", kir3, "--input-shape", "4,12", "--seed", "6"])
        with open(kir2, "rb") as f2, open(kir3, "rb") as f3:
            check(f2.read() == first, "the same --seed writes the same bytes")
            check(f3.read() != first, "another --seed gives other weights")

    # the brief's own example: a torchvision constructor (a small image keeps it fast)
    kir = os.path.join(d, "resnet18.kir")
    io_dir = os.path.join(d, "io_resnet")
    p = run([py, TOOL, "torchvision.models:resnet18", "-o", kir, "--input-shape", "1,3,64,64",
             "--kiln", KILN, "--save-io", io_dir])
    if check(p.returncode == 0, f"torch2kiln.py torchvision.models:resnet18: exit {p.returncode}"):
        run_kiln(kir, {"x": np.load(os.path.join(io_dir, "x.npy"))},
                 {"output": np.load(os.path.join(io_dir, "output.npy"))}, d)

    # bad command lines: each refused with a message saying what is wrong
    bad = [
        ([os.path.join(HERE, "models.py") + ":not_a_module", "--input-shape", "1"],
         "not a torch.nn.Module"),
        ([os.path.join(HERE, "models.py") + ":no_such_factory", "--input-shape", "1"],
         "has no attribute"),
        ([os.path.join(d, "missing.py") + ":make", "--input-shape", "1"], "no file"),
        (["no_such_package_for_kiln:make", "--input-shape", "1"], "cannot import"),
        (["torchvision.models", "--input-shape", "1"], "expected MODULE:CALLABLE"),
        ([spec, "--input-shape", "4,x"], "dims must be integers"),
        ([spec, "--input-shape", "4,12:complex"], "unknown dtype"),
        ([spec], "at least one --input-shape"),
        ([spec, "--input-shape", "4,13"], "shapes cannot be multiplied"),
    ]
    for args, words in bad:
        out = os.path.join(d, "bad.kir")
        rc, _, err = run_main(args + ["-o", out])
        check(rc == 1 and "torch2kiln: error:" in err and words in err
              and "Traceback" not in err and not os.path.exists(out),
              f"{' '.join(args)}: exit 1 with `{words}` and no file")
    rc, _, err = run_main([spec, "--input-shape", "1,12", "-o", os.path.join(d, "no", "x.kir")])
    check(rc == 1 and "cannot write" in err and "Traceback" not in err,
          "an output path in a missing folder: exit 1 with `cannot write`")


def case_unmapped():
    d = work_dir()
    out = os.path.join(d, "fft.kir")
    p = run([sys.executable, TOOL, os.path.join(HERE, "models.py") + ":make_spectral", "-o", out,
             "--input-shape", "2,16", "--kiln", KILN])
    check(p.returncode != 0, f"a module using torch.fft: non-zero exit (got {p.returncode})")
    check("no kiln mapping" in p.stderr and "aten::fft_rfft (x2)" in p.stderr,
          "the error names aten::fft_rfft with its count")
    check("models.py(" in p.stderr, "the error says where the first one is")
    check("Traceback" not in p.stderr, "no Python traceback")
    check(not os.path.exists(out), "no .kir file is written")

    # a refused use (alpha=2) and an unmapped op in one module: both reported
    try:
        torch2kiln.convert(models.make_scaled_add(), torch.randn(2, 6), out)
        check(False, "ScaledAdd is refused")
    except torch2kiln.ConversionError as e:
        msg = str(e)
        print(msg)
        check("aten::cummax (x1)" in msg and "alpha=2" in msg,
              "both the unmapped aten::cummax and add's alpha=2 are reported")

    # the `kiln show` check catches a file kiln cannot load
    good = os.path.join(d, "mlp.kir")
    torch2kiln.convert(models.make_mlp(), torch.randn(1, 12), good, kiln=KILN)
    with open(good, "rb") as f:
        data = bytearray(f.read())
    data[-5] ^= 0x40  # a weight byte: only the checksum can tell
    with open(good, "wb") as f:
        f.write(data)
    try:
        torch2kiln.check_with_kiln(KILN, good)
        check(False, "a damaged .kir is rejected by the kiln check")
    except torch2kiln.ConversionError as e:
        print(e)
        check("kiln show" in str(e) and "checksum" in str(e),
              "a damaged .kir is rejected by the kiln check, naming the checksum")


CASES = {"mlp": case_mlp, "resnet18": case_resnet18, "bert": case_bert, "gpt": case_gpt,
         "zoo": case_zoo, "ops": case_ops, "two_inputs": case_two_inputs, "cli": case_cli,
         "unmapped": case_unmapped}

if CASE not in CASES:
    print(f"unknown case {CASE}; one of {', '.join(CASES)}", file=sys.stderr)
    sys.exit(2)
torch.set_num_threads(1)  # the test machines are shared
try:
    CASES[CASE]()
except torch2kiln.ConversionError as e:
    check(False, f"conversion failed: {e}")
print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
