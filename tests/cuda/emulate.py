#!/usr/bin/env python3
"""Runs a model's generated CUDA kernels on the CPU and compares them with the interpreter.

    python3 emulate.py KILN MODEL [-O LEVEL] [--rtol R] [--atol A]
    python3 emulate.py KILN --example EXE [-O LEVEL] ...   (EXE: a tools/examples program; the
                                                           model is what it traces)

There is no GPU where kiln is developed, so this is how the kernels' arithmetic and index math
are checked: `kiln compile --target cuda` runs with $KILN_CUDA_KEEP_SOURCE, which keeps the CUDA
source, the launch table and the weights; the source is compiled as C++ with cuda_emu.h (a CPU
stand-in for the CUDA features the kernels use) and a driver that runs the launches in order on
host buffers laid out as the device's (inputs, outputs, workspace, weights). Random inputs (fixed
seed) go through both this and `kiln run` (the reference interpreter); every output must agree
within rtol and atol (default 1e-4 both, strict FP32). Exit 0 when all agree, 1 when not, 77
(skip) when numpy or a C++ compiler is missing. What this cannot check: timing, the driver API,
NVRTC's own code generation (the real device run is tests/cuda/run_on_device.sh)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("numpy is missing: skipping")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"Float": np.float32, "Double": np.float64, "Bool": np.bool_, "Long": np.int64,
          "Int": np.int32, "Char": np.int8, "Byte": np.uint8}


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        return 2
    kiln, model = args[0], args[1]
    level, rtol, atol = "2", 1e-4, 1e-4
    i = 2
    while i + 1 < len(args):
        if args[i] == "-O":
            level = args[i + 1]
        elif args[i] == "--rtol":
            rtol = float(args[i + 1])
        elif args[i] == "--atol":
            atol = float(args[i + 1])
        i += 2
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if not cxx:
        print("no C++ compiler: skipping")
        return 77
    tmp = tempfile.mkdtemp(prefix="kiln-emu-")
    try:
        if model == "--example":
            exe = args[2]
            subprocess.run([exe, tmp], check=True, capture_output=True)
            model = os.path.join(tmp, os.path.basename(exe) + ".kir")
            i = 3
            while i + 1 < len(args):
                if args[i] == "-O":
                    level = args[i + 1]
                i += 2
        return run(kiln, model, level, rtol, atol, cxx, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(kiln, model, level, rtol, atol, cxx, tmp):
    text = subprocess.run([kiln, "show", model], check=True, capture_output=True,
                          text=True).stdout
    lines = text.splitlines()
    head = lines[0]
    rets = [r.strip().lstrip("%") for r in
            re.search(r"return \((.*)\)\s*$", [l for l in lines if "return (" in l][-1])
            .group(1).split(",")]
    rng = np.random.default_rng(11)
    run_args, inputs = [], []
    for k, (name, ty, dims) in enumerate(
            re.findall(r'%("(?:[^"\\]|\\.)*"|[\w.]+) : (\w+)\(([^)]*)\)', head)):
        shape = [int(d) for d in dims.split(",") if d.strip()]
        if ty not in DTYPES:
            print("input %s: dtype %s is not emulated: skipping" % (name, ty))
            return 77
        if ty in ("Float", "Double"):
            a = rng.standard_normal(shape).astype(DTYPES[ty])
            if name == "rv":  # a variance
                a = np.abs(a) + 0.5
        elif ty == "Bool":
            a = rng.random(shape) < 0.7
            if a.ndim >= 2:
                a[..., 0] = True  # no fully masked attention row
        else:
            a = rng.integers(0, 4, shape).astype(DTYPES[ty])
        path = os.path.join(tmp, "in%d.npy" % k)
        np.save(path, a)
        inputs.append(a)
        run_args += ["--input", "%s=%s" % (name, path)]
    for k, r in enumerate(rets):
        run_args += ["-o", "%s=%s" % (r, os.path.join(tmp, "expected%d.npy" % k))]
    subprocess.run([kiln, "run", model] + run_args, check=True, capture_output=True)
    expected = [np.load(os.path.join(tmp, "expected%d.npy" % k)) for k in range(len(rets))]

    keep = os.path.join(tmp, "k.cu")
    env = dict(os.environ, KILN_CUDA_KEEP_SOURCE=keep)
    subprocess.run([kiln, "compile", model, "-O" + level, "--target", "cuda", "-o",
                    os.path.join(tmp, "libk.so"), "--name", "k"], check=True, env=env)
    src = open(keep).read()
    src = src.replace("extern __shared__ float sc[];", "float *sc = emu_dyn_shared;")
    with open(keep, "w") as f:
        f.write(src)
    table = open(keep + ".launches").read().splitlines()
    ws = int(table[0].split()[1])
    sigs = dict(re.findall(r"void __launch_bounds__\(1024\) (k\d+)\(([^)]*)\)", src))
    bodies = {}
    for m in re.finditer(r"void __launch_bounds__\(1024\) (k\d+)\(", src):
        end = src.find("\n}\n", m.end())
        bodies[m.group(1)] = src[m.end():end]

    drv = ['#include "cuda_emu.h"', '#include "k.cu"', "", "int main(int argc, char **argv) {"]
    drv.append("  (void)argc;")
    drv.append("  static unsigned char *in[64], *out[64];")
    drv.append("  unsigned char *ws = (unsigned char *)calloc(%d + 1, 1);" % ws)
    drv.append("  FILE *f; long n;")
    drv.append("  f = fopen(argv[1], \"rb\"); fseek(f, 0, SEEK_END); n = ftell(f); "
               "fseek(f, 0, SEEK_SET);")
    drv.append("  unsigned char *wt = (unsigned char *)malloc(n + 1); "
               "if (fread(wt, 1, n, f) != (size_t)n) return 3; fclose(f);")
    for k, a in enumerate(inputs):
        a.tofile(os.path.join(tmp, "in%d.bin" % k))
        drv.append("  in[%d] = (unsigned char *)malloc(%d + 1);" % (k, a.nbytes))
        drv.append("  f = fopen(\"%s\", \"rb\"); if (fread(in[%d], 1, %d, f) != %d) return 3; "
                   "fclose(f);" % (os.path.join(tmp, "in%d.bin" % k), k, a.nbytes, a.nbytes))
    for k, e in enumerate(expected):
        drv.append("  out[%d] = (unsigned char *)calloc(%d + 1, 1);" % (k, e.nbytes))
    for line in table[1:]:
        p = line.split()
        kname = p[0]
        gx, gy, gz, bx, by = (int(v) for v in p[1:6])
        ptrs = []
        for a in p[9:]:
            kind, idx, off = (int(v) for v in a.split(":"))
            base = ["in[%d]" % idx, "out[%d]" % idx, "ws", "wt"][kind]
            ptrs.append("(void *)(%s + %d)" % (base, off))
        params = [q.strip() for q in sigs[kname].split(",") if q.strip()]
        casts = ", ".join("(%s)a[%d]" % (re.sub(r"\s*p\d+$", "", q), j)
                          for j, q in enumerate(params))
        sync = any(w in bodies[kname] for w in ("__syncthreads", "k_block_reduce", "__shared__"))
        drv.append("  { void *a[] = {%s}; emu_launch([](void **a) { %s(%s); }, %s, %d, %d, %d, "
                   "%d, %d, a); }" % (", ".join(ptrs) or "0", kname, casts,
                                      "true" if sync else "false", gx, gy, gz, bx, by))
    for k, e in enumerate(expected):
        drv.append("  f = fopen(\"%s\", \"wb\"); fwrite(out[%d], 1, %d, f); fclose(f);"
                   % (os.path.join(tmp, "out%d.bin" % k), k, e.nbytes))
    drv.append("  return 0;\n}")
    with open(os.path.join(tmp, "drv.cpp"), "w") as f:
        f.write("\n".join(drv) + "\n")
    exe = os.path.join(tmp, "drv")
    subprocess.run([cxx, "-std=c++17", "-O2", "-w", "-pthread", "-I", HERE, "-I", tmp, "-o", exe,
                    os.path.join(tmp, "drv.cpp"), "-lm"], check=True)
    subprocess.run([exe, keep + ".weights"], check=True)
    bad = 0
    for k, e in enumerate(expected):
        got = np.fromfile(os.path.join(tmp, "out%d.bin" % k), dtype=e.dtype).reshape(e.shape)
        if e.dtype.kind == "f":
            err = np.abs(got.astype(np.float64) - e.astype(np.float64))
            ok = (err <= atol + rtol * np.abs(e.astype(np.float64))) | (np.isnan(got) & np.isnan(e))
            n_bad = int((~ok).sum())
            print("%s output %d (%s): max abs error %.3g, %d of %d beyond rtol %g atol %g: %s"
                  % (os.path.basename(model), k, rets[k], float(err.max()) if err.size else 0.0,
                     n_bad, e.size, rtol, atol, "FAIL" if n_bad else "ok"))
        else:
            n_bad = int((got != e).sum())
            print("%s output %d (%s): %d of %d differ: %s"
                  % (os.path.basename(model), k, rets[k], n_bad, e.size,
                     "FAIL" if n_bad else "ok"))
        bad += n_bad
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
