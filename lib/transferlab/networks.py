"""The torch modules of the suite's ConvNets, built from `architecture`'s plan.

`architecture` holds the widths, depths, layer names and sizes (the paper's width and depth
factors) without torch; this module turns a `NetConfig` into an initialised `nn.Sequential`
whose children are named after the representation layers (conv1 .. conv{depth}, fc6, fc7,
fc8), with pooling as separate children so that a conv layer's representation is its
post-ReLU map before pooling, as Caffe's `convK` blob is.
"""

from __future__ import annotations

import torch
from torch import nn

from .architecture import NetConfig, conv_plan, fc6_inputs, fc7_size


class ConvBlock(nn.Sequential):
    """conv + BatchNorm + ReLU; the block's output is the layer's representation."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class FCBlock(nn.Sequential):
    """(dropout +) Linear (+ ReLU): dropout acts on the input, so the output is post-ReLU."""

    def __init__(self, n_in: int, n_out: int, dropout: float, relu: bool) -> None:
        layers: list[nn.Module] = []
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(n_in, n_out))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def build(cfg: NetConfig) -> nn.Module:
    """A freshly initialised network (uses torch's global RNG: seed it first)."""
    net = nn.Sequential()
    for c in conv_plan(cfg):
        net.add_module(c.name, ConvBlock(c.c_in, c.c_out, c.kernel))
        if c.pool == 2:
            net.add_module(f"pool{c.name[4:]}", nn.MaxPool2d(2, 2, ceil_mode=True))
        elif c.pool == 3:
            net.add_module(f"pool{c.name[4:]}", nn.MaxPool2d(3, 2))
    net.add_module("flatten", nn.Flatten())
    net.add_module("fc6", FCBlock(fc6_inputs(cfg), cfg.fc6, 0.0, relu=True))
    net.add_module("fc7", FCBlock(cfg.fc6, fc7_size(cfg), cfg.dropout, relu=True))
    net.add_module("fc8", FCBlock(fc7_size(cfg), cfg.n_classes, cfg.dropout, relu=False))
    _init(net)
    _init_logits(net.fc8)
    for c in conv_plan(cfg):
        if c.inserted:
            _init_identity(getattr(net, c.name)[0])
    net.input_size = cfg.input_size  # read by feature extraction and prediction
    return net


IDENTITY_NOISE = 0.1


def _init_identity(conv: nn.Conv2d) -> None:
    """An inserted layer starts as (nearly) the identity: a deeper network starts as the
    depth-5 one and learns what its extra layers add. VGG reached its depth by initialising
    deep nets from shallower ones; measured here (BENCHMARKS.md), depth 13 with He-initialised
    inserted layers converged 7-9 points below depth 5 on the source, with this init above it.
    """
    with torch.no_grad():
        noise = conv.weight.clone() * IDENTITY_NOISE
        nn.init.dirac_(conv.weight)
        conv.weight.add_(noise)


def _init(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            # He init (not AlexNet's N(0, 0.005)): short CPU runs cannot afford a slow start.
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _init_logits(head: nn.Module) -> None:
    # Small logits at the start: a near-uniform initial softmax.
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)


def replace_head(net: nn.Module, n_classes: int) -> nn.Module:
    """Swap fc8 for a freshly initialised one with `n_classes` outputs (in place)."""
    old = net.fc8
    linear = next(m for m in old if isinstance(m, nn.Linear))
    dropout = next((m.p for m in old if isinstance(m, nn.Dropout)), 0.0)
    head = FCBlock(linear.in_features, n_classes, dropout, relu=False)
    _init(head)
    _init_logits(head)
    net.fc8 = head
    return net


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
