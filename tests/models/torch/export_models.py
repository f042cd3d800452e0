#!/usr/bin/python3
"""Exports the real models of the `models` suite with PyTorch, for kiln to import and run.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14; see
tools/setup.sh), not the venv: offline, random weights, a fixed seed per model, eval mode.
Each model lands in OUTDIR/<name>/ as model.onnx, input.npy and output.npy (what PyTorch
computes on that input), with a stamp holding a hash of this script and the torch version:
a model whose stamp matches is not exported again.

  export_models.py OUTDIR [--models mlp,resnet18,...] [--force]
  export_models.py OUTDIR --list-ops [--models ...]   # the ONNX op types each model uses

Exits 77 (skipped) when torch or torchvision cannot be imported.
"""

import argparse
import collections
import hashlib
import math
import os
import shutil
import sys
import warnings

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision.models
except ImportError as e:  # exit 77: what meson counts as a skipped test
    print(f"skipped: {sys.executable}: {e} (Debian's python3-torch and python3-torchvision; "
          "tools/setup.sh installs them)")
    sys.exit(77)

OPSET = 14  # torch 1.13 exports 13 and 14 well; 14 is the newest its exporter is tested at


# ---- the models ----

class MLP(nn.Module):
    """The two-layer MLP of kiln's examples: Linear(10, 5), ReLU, Linear(5, 2)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 5)
        self.fc2 = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head attention written op by op: projections, explicit matmuls, scale, softmax."""

    def __init__(self, d, heads, causal_len=0):
        super().__init__()
        self.heads = heads
        self.head_dim = d // heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        if causal_len:
            # 1 where a position may attend (itself and earlier), 0 above the diagonal
            mask = torch.tril(torch.ones(causal_len, causal_len, dtype=torch.bool))
            self.register_buffer("causal_mask", mask, persistent=False)
        else:
            self.causal_mask = None

    def split(self, t):  # (B, S, d) -> (B, H, S, dh)
        b, s, _ = t.shape
        return t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        if self.causal_mask is not None:
            scores = scores.masked_fill(~self.causal_mask[:s, :s], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, d)
        return self.out(ctx)


class FeedForward(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderLayer(nn.Module):
    """A BERT layer: post-LayerNorm residual blocks around attention and a GELU MLP."""

    def __init__(self, d, heads):
        super().__init__()
        self.attn = SelfAttention(d, heads)
        self.ln1 = nn.LayerNorm(d)
        self.mlp = FeedForward(d, 4 * d)
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x):
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class BertEncoder(nn.Module):
    """BERT-style encoder: token + position embeddings, LayerNorm, 2 layers, d=128, 2 heads."""

    def __init__(self, vocab=1000, seq=128, d=128, heads=2, layers=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        self.ln = nn.LayerNorm(d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads) for _ in range(layers))

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.ln(self.tok(ids) + self.pos(positions))
        for layer in self.layers:
            x = layer(x)
        return x


class DecoderLayer(nn.Module):
    """A GPT-2 layer: pre-LayerNorm, causal self-attention and a GELU MLP."""

    def __init__(self, d, heads, seq):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads, causal_len=seq)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = FeedForward(d, 4 * d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GptDecoder(nn.Module):
    """Small GPT-style decoder: embeddings, 2 causal layers, final LayerNorm, tied LM head."""

    def __init__(self, vocab=512, seq=64, d=128, heads=4, layers=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        self.layers = nn.ModuleList(DecoderLayer(d, heads, seq) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.tok(ids) + self.pos(positions)
        for layer in self.layers:
            x = layer(x)
        return torch.matmul(self.ln_f(x), self.tok.weight.t())  # logits (B, S, vocab)


def randomize_norms(model, gen):
    """Gives every norm layer non-trivial statistics and affine parameters, so that batch-norm
    folding and LayerNorm recognition are checked against numbers that are not 0s and 1s."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=gen))
        elif isinstance(m, nn.LayerNorm):
            n = m.normalized_shape[0]
            m.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=gen))


def image_input(gen):
    return torch.randn(1, 3, 224, 224, generator=gen)


def torchvision_model(name, **kwargs):
    return getattr(torchvision.models, name)(weights=None, **kwargs)


class AutoEncoder(torch.nn.Module):
    """A small convolutional autoencoder: the decoder uses ConvTranspose and Upsample."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.enc = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1),
                                 nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(),
                                 nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                 nn.Conv2d(8, 3, 3, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return self.dec(self.enc(x))


class SequenceClassifier(torch.nn.Module):
    """A 2-layer bidirectional LSTM over a batch-first sequence, then a linear head."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(16, 32, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = torch.nn.Linear(64, 4)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


# torch.onnx.export folds eval-mode batch norms into the convs before writing the model; with
# training=PRESERVE (the model still in eval mode) it writes them as BatchNormalization nodes
# (inference form), so kiln's own batch-norm folding gets a real model too.
KEEP_BATCH_NORM = {"training": torch.onnx.TrainingMode.PRESERVE}

# name -> (builds the model, builds its input from a generator, extra torch.onnx.export args)
MODELS = collections.OrderedDict([
    ("mlp", (MLP, lambda gen: torch.randn(1, 10, generator=gen), {})),
    ("resnet18", (lambda: torchvision_model("resnet18"), image_input, {})),
    ("resnet18_bn", (lambda: torchvision_model("resnet18"), image_input, KEEP_BATCH_NORM)),
    ("mobilenet_v2", (lambda: torchvision_model("mobilenet_v2"), image_input, {})),
    ("bert", (BertEncoder, lambda gen: torch.randint(0, 1000, (1, 128), generator=gen), {})),
    ("gpt", (GptDecoder, lambda gen: torch.randint(0, 512, (1, 64), generator=gen), {})),
    # the other torchvision classifier families, an autoencoder and an LSTM: every op they
    # export to must import and run
    ("efficientnet_b0", (lambda: torchvision_model("efficientnet_b0"), image_input, {})),
    ("densenet121", (lambda: torchvision_model("densenet121"), image_input, {})),
    ("squeezenet1_0", (lambda: torchvision_model("squeezenet1_0"), image_input, {})),
    ("shufflenet_v2", (lambda: torchvision_model("shufflenet_v2_x1_0"), image_input, {})),
    ("googlenet", (lambda: torchvision_model("googlenet", aux_logits=False, init_weights=True),
                   image_input, {})),
    ("convnext_tiny", (lambda: torchvision_model("convnext_tiny"), image_input, {})),
    ("mnasnet", (lambda: torchvision_model("mnasnet0_5"), image_input, {})),
    ("autoencoder", (AutoEncoder, lambda gen: torch.randn(1, 3, 32, 32, generator=gen), {})),
    ("lstm", (SequenceClassifier, lambda gen: torch.randn(2, 7, 16, generator=gen), {})),
])


# ---- export and cache ----

def script_stamp():
    with open(os.path.abspath(__file__), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return f"{digest} torch {torch.__version__} opset {OPSET}\n"


def is_current(folder, stamp):
    try:
        with open(os.path.join(folder, "stamp")) as f:
            if f.read() != stamp:
                return False
    except OSError:
        return False
    return all(os.path.isfile(os.path.join(folder, n))
               for n in ("model.onnx", "input.npy", "output.npy"))


def export(name, outdir, stamp):
    """Exports one model into outdir/name, written beside it first and renamed into place."""
    build, make_input, export_args = MODELS[name]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    model = build()
    with torch.no_grad():
        randomize_norms(model, gen)
    model.eval()
    x = make_input(gen)
    with torch.no_grad():
        y = model(x)

    final = os.path.join(outdir, name)
    tmp = os.path.join(outdir, f".{name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        with warnings.catch_warnings():
            # PRESERVE with constant folding warns about training-mode models; ours are in eval
            warnings.filterwarnings("ignore", message=".*constant folding be turned off.*")
            torch.onnx.export(model, (x,), os.path.join(tmp, "model.onnx"),
                              opset_version=OPSET, do_constant_folding=True,
                              input_names=["input"], output_names=["output"], **export_args)
        np.save(os.path.join(tmp, "input.npy"), x.numpy())
        np.save(os.path.join(tmp, "output.npy"), y.numpy())
        with open(os.path.join(tmp, "stamp"), "w") as f:
            f.write(stamp)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"exported {name}: input {tuple(x.shape)} {x.dtype}, output {tuple(y.shape)} -> "
          f"{final}/model.onnx")


# ---- --list-ops: a minimal protobuf reader (the onnx package is not in Debian's python) ----

def read_varint(buf, pos):
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def fields(buf):
    """Yields (field number, wire type, value) of one message; value is bytes for wire type 2."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def graph_op_types(graph, counts):
    # GraphProto.node = 1; NodeProto.op_type = 4, NodeProto.attribute = 5;
    # AttributeProto.g = 6, AttributeProto.graphs = 11 (If/Loop/Scan bodies)
    for number, wire, node in fields(graph):
        if number != 1 or wire != 2:
            continue
        for n2, w2, value in fields(node):
            if n2 == 4 and w2 == 2:
                counts[value.decode()] += 1
            elif n2 == 5 and w2 == 2:
                for n3, w3, sub in fields(value):
                    if n3 in (6, 11) and w3 == 2:
                        graph_op_types(sub, counts)


def model_op_types(path):
    with open(path, "rb") as f:
        model = f.read()
    counts = collections.Counter()
    for number, wire, value in fields(model):
        if number == 7 and wire == 2:  # ModelProto.graph
            graph_op_types(value, counts)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated, from: " + ", ".join(MODELS))
    parser.add_argument("--list-ops", action="store_true",
                        help="print the ONNX op types (with counts) each model uses")
    parser.add_argument("--force", action="store_true", help="export even if cached")
    args = parser.parse_args()

    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; known: {', '.join(MODELS)}")
    torch.set_num_threads(1)  # the test machines are shared; exports are small
    os.makedirs(args.outdir, exist_ok=True)
    stamp = script_stamp()
    for name in names:
        folder = os.path.join(args.outdir, name)
        if args.force or not is_current(folder, stamp):
            export(name, args.outdir, stamp)
        if args.list_ops:
            counts = model_op_types(os.path.join(folder, "model.onnx"))
            ops = " ".join(f"{op}x{n}" if n > 1 else op for op, n in sorted(counts.items()))
            print(f"{name}: {sum(counts.values())} nodes: {ops}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
