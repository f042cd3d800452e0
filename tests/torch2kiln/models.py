"""Small modules for the torch2kiln tests: factories for the command line's MODULE_SPEC
(models.py:make_...) and modules that must be refused with a clear error."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class TwoInputs(nn.Module):
    """Two inputs of different dtypes, sizes read from a tensor, a constant folded at
    conversion, a chunk and a tuple of outputs: the scalar and list plumbing of a trace."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.fc = nn.Linear(16, 8)
        self.register_buffer("scale", torch.linspace(0.5, 2.0, 8))

    def forward(self, ids, x):
        b, s = ids.shape
        h = self.emb(ids) + x.view(b, s, 16)
        y = torch.tanh(self.fc(h)) * self.scale - 0.25
        lo, hi = y.chunk(2, dim=-1)
        return torch.softmax(lo, dim=-1), hi.permute(0, 2, 1).reshape(b, -1).sum(dim=1)


class Reductions(nn.Module):
    """Reductions over all dims, some dims and one dim, with keepdim and dtype=; indexing;
    a comparison cast to float."""

    def forward(self, x):
        return (x.mean() + x.sum(dtype=torch.float64).float()
                + x.mean(dim=(0, 2), keepdim=True).sum() + torch.rsqrt(x.abs() + 1).amax(1).sum()
                + x.prod(2).amin() + x[:, 1].sum() + (x > 0.5).float().mean())


class Elementwise(nn.Module):
    """Scalar operands on either side, mixed dtypes (a Long tensor with a Float one), clamps,
    activations with parameters, where, masked_fill, pow, and a tensor buffer constant."""

    def __init__(self):
        super().__init__()
        self.register_buffer("offsets", torch.arange(6, dtype=torch.int64))

    def forward(self, x):
        a = F.leaky_relu(x, 0.2) + F.hardtanh(x, -0.5, 0.75) * 3 - torch.clamp(x, min=-0.1)
        b = torch.where(x > 0, x.pow(2), 1.5 - x) / (self.offsets + 1)
        c = x.masked_fill(x < -1, 0.25)
        return torch.log_softmax(a + b, dim=-1), torch.softmax(c, dim=0, dtype=torch.float64)


class ConvNet(nn.Module):
    """Convolutions without bias, grouped and dilated; batch and layer norms without affine
    parameters; average pooling with and without padding counted; cat, expand, flatten."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 8, 3, padding=2, dilation=2, bias=False)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4)
        self.bn = nn.BatchNorm2d(8, affine=False)
        self.ln = nn.LayerNorm(8, elementwise_affine=False)

    def forward(self, x):
        y = F.relu6(self.bn(self.c1(x)))
        z = self.c2(y)
        pooled = F.avg_pool2d(y, 3, 2, 1, count_include_pad=False)[..., :4, :4]
        p = torch.cat([F.avg_pool2d(y, 2), pooled], 1)
        q = p.mean(dim=(2, 3))
        g = self.ln(q[:, :8] + z.amax(dim=(2, 3))).unsqueeze(-1).expand(-1, -1, 3)
        return torch.flatten(g, 1)


class Spectral(nn.Module):
    """torch.fft has no kiln counterpart: conversion must fail, naming aten::fft_rfft x2."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9, 4)

    def forward(self, x):
        return self.fc(torch.fft.rfft(x).abs() + torch.fft.rfft(2 * x).abs())


class ScaledAdd(nn.Module):
    """torch.add with alpha=2 and a cumulative max: one refused use, one unmapped op."""

    def forward(self, x):
        y = torch.add(x, F.relu(x), alpha=2)
        return torch.cummax(y, dim=1)[0]


def make_mlp():
    return nn.Sequential(nn.Linear(12, 32), nn.GELU(), nn.Dropout(0.1), nn.Linear(32, 3),
                         nn.LogSoftmax(dim=-1))


def make_two_inputs():
    return TwoInputs()


def make_reductions():
    return Reductions()


def make_elementwise():
    return Elementwise()


def make_convnet():
    return ConvNet()


def make_spectral():
    return Spectral()


def make_scaled_add():
    return ScaledAdd()


def not_a_module():
    return 42
