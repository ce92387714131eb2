"""The shape of the suite's ConvNets, without torch: widths, depths, layers and sizes.

Layout of a depth-5 network (input `input_size` px, e.g. 28 = crop of a 32 px image):

    conv1 5x5 -> pool1 2x2 -> conv2 5x5 -> pool2 2x2 -> conv3 3x3 -> conv4 3x3 -> conv5 3x3
    -> pool5 3x3/2 -> flatten -> fc6 -> fc7 -> fc8

Each `convK` is conv + BatchNorm + ReLU; pooling is a separate child (`pool1`, `pool2`,
`pool5`) so that a conv layer's representation is its post-ReLU map *before* pooling, as
Caffe's `convK` blob (in-place ReLU) is. `fc6`/`fc7` are (dropout +) Linear + ReLU, `fc8`
is dropout + Linear (the logits). Deeper networks insert more 3x3 conv layers into the first
two pooling stages, as VGG does; layers are numbered in order, so depth 13 runs conv1 .. conv13.

Widths follow the paper: each level has about twice the parameters of the one before,
mostly by halving the number of kernels and the FC7 neurons, with FC6 fixed across widths.

Everything here is arithmetic on `NetConfig`, so that configurations, cache keys and
layer checks load without torch (a warm notebook never imports it); `networks` builds
the torch modules from this plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTHS = ("tiny", "small", "medium", "large")
DEPTHS = (5, 7, 9, 11, 13)

# Per width: kernels of (conv1, conv2, conv3, conv4, conv5) and the FC7 size. Chosen so that
# params grow ~2x per level at 28 px with fc6=1024 (tests/test_networks.py checks 1.6-2.6).
_WIDTH_TABLE: dict[str, tuple[tuple[int, int, int, int, int], int]] = {
    "tiny": ((12, 24, 32, 32, 24), 256),
    "small": ((20, 40, 56, 56, 40), 512),
    "medium": ((32, 64, 96, 96, 64), 1024),
    "large": ((48, 96, 160, 160, 128), 2048),
}

# Per depth: number of conv layers in each of the three pooling stages. The paper's 13-conv
# network is VGG-16, whose layers laid over AlexNet's three resolutions (conv1 at 1/4 of the
# input, conv2 at 1/8, conv3-5 at 1/16) are (7, 3, 3): every layer it adds sits at the two
# higher resolutions, 3 to 1; the depths between interpolate. An earlier layout put them
# mostly into the 7x7 stage, (2, 4, 7), where a few 3x3 layers already see the whole image,
# to save compute: VGG's layout trains at 0.77x its images/s, and its depth-13 network is
# the better one on the source (BENCHMARKS.md, "Where depth's inserted layers sit").
_STAGES: dict[int, tuple[int, int, int]] = {
    5: (1, 1, 3),
    7: (2, 2, 3),
    9: (4, 2, 3),
    11: (5, 3, 3),
    13: (7, 3, 3),
}

FC6_DEFAULT = 1024
MIN_INPUT = 12  # smallest input for which pool5 still sees a >= 1x1 map


def crop_size(image_size: int) -> int:
    """The network input size for images of `image_size` px (Caffe crops 227 of 256)."""
    if image_size < 1:
        raise ValueError(f"image_size={image_size!r} must be a positive number of pixels")
    return max(1, round(image_size * 227 / 256))


@dataclass(frozen=True)
class NetConfig:
    """The architecture: width level, number of conv layers, classes, input size, FC6 size."""

    width: str = "medium"
    depth: int = 5
    n_classes: int = 100
    input_size: int = 28
    fc6: int = FC6_DEFAULT
    dropout: float = 0.25  # AlexNet used 0.5; measured to slow short CPU runs too much

    def __post_init__(self) -> None:
        if self.width not in WIDTHS:
            raise ValueError(f"width={self.width!r} is not one of {WIDTHS}")
        if isinstance(self.depth, bool) or self.depth not in DEPTHS:
            raise ValueError(f"depth={self.depth!r} is not one of {DEPTHS}")
        if int(self.n_classes) < 2:
            raise ValueError(f"n_classes={self.n_classes!r} must be >= 2")
        if int(self.input_size) < MIN_INPUT:
            raise ValueError(f"input_size={self.input_size!r} must be >= {MIN_INPUT} px")
        if int(self.fc6) < 1:
            raise ValueError(f"fc6={self.fc6!r} must be a positive number of units")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout!r} must be in [0, 1)")


@dataclass(frozen=True)
class ConvLayer:
    name: str
    c_in: int
    c_out: int
    kernel: int
    size: int  # spatial size of input and output (padding keeps it)
    pool: int  # 0: none after this layer; 2: 2x2 stride 2; 3: 3x3 stride 2
    inserted: bool = False  # a layer that depth adds to the depth-5 network


def conv_plan(cfg: NetConfig) -> list[ConvLayer]:
    (c1, c2, c3, c4, c5), _ = _WIDTH_TABLE[cfg.width]
    n1, n2, n3 = _STAGES[cfg.depth]
    # (channels, kernel, inserted) of every layer of each stage; the base layers keep
    # AlexNet's kernels, inserted layers are 3x3 with the stage's channel count.
    stage1 = [(c1, 5, False)] + [(c1, 3, True)] * (n1 - 1)
    stage2 = [(c2, 5, False)] + [(c2, 3, True)] * (n2 - 1)
    stage3 = ([(c3, 3, False)] + [(c3, 3, True)] * (n3 - 3)
              + [(c4, 3, False), (c5, 3, False)])
    plan: list[ConvLayer] = []
    c_in, size, k = 3, cfg.input_size, 0
    for layers, pool in ((stage1, 2), (stage2, 2), (stage3, 3)):
        for i, (c_out, kernel, inserted) in enumerate(layers):
            k += 1
            last = i == len(layers) - 1
            plan.append(ConvLayer(f"conv{k}", c_in, c_out, kernel, size, pool if last else 0,
                                  inserted))
            c_in = c_out
        size = _pooled(size, pool)
    return plan


def _pooled(size: int, pool: int) -> int:
    # pool1/pool2 are 2x2 stride 2 (ceil mode, so odd sizes keep their border); pool5 is
    # AlexNet's overlapping 3x3 stride 2.
    return math.ceil(size / 2) if pool == 2 else (size - 3) // 2 + 1


def layer_names(cfg: NetConfig) -> list[str]:
    """Representation layers in order: conv1 .. conv{depth}, fc6, fc7, fc8."""
    return [c.name for c in conv_plan(cfg)] + ["fc6", "fc7", "fc8"]


def check_layer(cfg: NetConfig, layer: str) -> str:
    """`layer` if the network has it, else ValueError listing the valid names."""
    valid = layer_names(cfg)
    if layer not in valid:
        raise ValueError(f"layer={layer!r} is not one of {valid}")
    return layer


def fc6_inputs(cfg: NetConfig) -> int:
    """Number of inputs of fc6: channels x pooled spatial size of the last conv map."""
    plan = conv_plan(cfg)
    side = _pooled(plan[-1].size, 3)
    return plan[-1].c_out * side * side


def fc7_size(cfg: NetConfig) -> int:
    return _WIDTH_TABLE[cfg.width][1]


def _fc_sizes(cfg: NetConfig) -> dict[str, tuple[int, int]]:
    """(inputs, outputs) of fc6, fc7 and fc8."""
    return {"fc6": (fc6_inputs(cfg), cfg.fc6), "fc7": (cfg.fc6, fc7_size(cfg)),
            "fc8": (fc7_size(cfg), cfg.n_classes)}


def output_shapes(cfg: NetConfig) -> dict[str, tuple[int, ...]]:
    """Per-image shape of every representation layer: (channels, side, side) or (units,)."""
    shapes: dict[str, tuple[int, ...]] = {c.name: (c.c_out, c.size, c.size)
                                          for c in conv_plan(cfg)}
    return shapes | {name: (n_out,) for name, (_, n_out) in _fc_sizes(cfg).items()}


def complexity(cfg: NetConfig) -> dict[str, int]:
    """Parameters and forward FLOPs per image.

    Convs have no bias (BatchNorm follows: 2 parameters per channel); linear layers have one.
    FLOPs count 2 per multiply-accumulate of conv and linear layers (BatchNorm, ReLU and
    pooling are ignored: they are a few percent and memory-bound). A training step costs
    about 3x the forward FLOPs (forward, gradient w.r.t. inputs, gradient w.r.t. weights).
    """
    macs = params = 0
    for c in conv_plan(cfg):
        weights = c.c_in * c.c_out * c.kernel * c.kernel
        macs += weights * c.size * c.size
        params += weights + 2 * c.c_out
    for n_in, n_out in _fc_sizes(cfg).values():
        macs += n_in * n_out
        params += n_in * n_out + n_out
    return {"params": int(params), "flops": int(2 * macs)}
