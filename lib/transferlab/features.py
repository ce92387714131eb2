"""Features of images at chosen layers of a network (section 5 of the paper).

An image's feature is the mean over 12 jitters (4 corner crops, the centre crop, the whole
image resized to the input size, and the mirrors of all 6) of the layer's output. Conv maps
are max-pooled onto a 1x1, 2x2 or 3x3 grid and flattened (channel-major); FC outputs are
taken as they are (post-ReLU for fc6/fc7, logits for fc8).

Layers are read with torchvision's `create_feature_extractor`, all requested layers in one
forward pass per jitter; the graph is pruned after the last requested layer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from . import compute
from .architecture import crop_size
from .cache import Cache
from .progress import report as report_progress
from .training import PIXEL_MEAN, PIXEL_STD, to_input

if TYPE_CHECKING:  # torch is imported where it computes: configs and keys load without it
    import torch
    from torch import nn

POOLINGS = (1, 2, 3)
JITTERS = (
    "top_left", "top_right", "bottom_left", "bottom_right", "centre", "whole",
    "top_left_mirror", "top_right_mirror", "bottom_left_mirror", "bottom_right_mirror",
    "centre_mirror", "whole_mirror",
)


def _tracer() -> dict:
    """Our blocks are leaves of the traced graph, so their node names are exactly conv1 .. fc8."""
    from .networks import ConvBlock, FCBlock

    return {"leaf_modules": [ConvBlock, FCBlock]}


def jitter_boxes(image_size: int, crop: int) -> np.ndarray:
    """Geometry of the 12 jitters, in the order of JITTERS: int rows (top, left, size, mirror).

    A box of `size` == image_size is the whole image (resized to `crop`); the others are
    `crop` x `crop` pixel windows.
    """
    if not 1 <= crop <= image_size:
        raise ValueError(f"crop={crop!r} must be in [1, image_size={image_size}]")
    far, mid = image_size - crop, (image_size - crop) // 2
    base = [(0, 0, crop), (0, far, crop), (far, 0, crop), (far, far, crop), (mid, mid, crop),
            (0, 0, image_size)]
    rows = [(*b, 0) for b in base] + [(*b, 1) for b in base]
    return np.array(rows, dtype=np.int64)


def graph_node_names(model: nn.Module) -> list[str]:
    """Node names that `extract` accepts for `model` (eval graph)."""
    # imported here: torchvision (and the torch._dynamo it pulls in) costs seconds at import,
    # which a notebook reading cached features should not pay
    from torchvision.models.feature_extraction import get_graph_node_names

    return get_graph_node_names(model, tracer_kwargs=_tracer())[1]


def _node_map(layers: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(layers, str):
        layers = [layers]
    nodes = dict(layers) if isinstance(layers, Mapping) else {name: name for name in layers}
    if not nodes:
        raise ValueError("layers is empty: name at least one layer")
    if len(set(nodes.values())) != len(nodes):
        raise ValueError(f"layers {nodes} name one node twice: give each node one name")
    return nodes


def _extractor(model: nn.Module, nodes: Mapping[str, str]) -> nn.Module:
    valid = set(graph_node_names(model))
    bad = [n for n in nodes.values() if n not in valid]
    if bad:
        raise ValueError(f"layers {bad} are not nodes of the model; valid: {sorted(valid)}")
    from torchvision.models.feature_extraction import create_feature_extractor

    # create_feature_extractor wants node -> output name
    fx = create_feature_extractor(
        _inference_copy(model), {node: public for public, node in nodes.items()},
        tracer_kwargs=_tracer(),
    )
    return fx.eval()


def _inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy with every Conv2d -> BatchNorm2d pair of a Sequential folded.

    Folding saves a full pass over each conv map (measured ~10 % of extraction time); the
    BatchNorm becomes an Identity, so node names do not change.
    """
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    model = copy.deepcopy(model).eval()
    for parent in model.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                parent._modules[b] = nn.Identity()
    if compute.use_channels_last():
        model = model.to(memory_format=torch.channels_last)
    return model


def _check(images: np.ndarray, pooling: int) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is not one of {POOLINGS}")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[3] != 3:
        raise ValueError(
            f"images must be a uint8 array (N, H, W, 3), got {getattr(images, 'shape', images)!r}"
        )


def _vectorize(t: torch.Tensor, pooling: int) -> torch.Tensor:
    import torch.nn.functional as F
    if t.ndim == 4:  # conv map: spatial max pooling onto a grid, then channel-major flatten
        # (pooling before the cast to float32 is exact: a max of bf16 values is one of them)
        t = F.adaptive_max_pool2d(t, pooling).contiguous()
    return t.float().flatten(1)


def _window(pixels: torch.Tensor, top: int, left: int, height: int, width: int,
            size: int, mirror: bool, mean: Any, std: Any) -> torch.Tensor:
    import torch.nn.functional as F
    crop = pixels[:, top : top + height, left : left + width]
    if mirror:
        crop = crop.flip(2)
    x = to_input(crop, mean, std)
    if (height, width) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    return x


def extract(
    model: nn.Module,
    images: np.ndarray,
    layers: Sequence[str] | Mapping[str, str],
    *,
    pooling: int = 1,
    jitter: bool = True,
    batch_size: int = 256,
    input_size: int | None = None,
    mean: float | Sequence[float] = PIXEL_MEAN,
    std: float | Sequence[float] = PIXEL_STD,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Raw features {public name: (N, D) float32}, the mean over the 12 jitters.

    `layers` is a list of node names, or a mapping public name -> node name (e.g.
    {"fc6": "classifier.2"} for torchvision's AlexNet). Without `jitter`, the centre crop
    only. `input_size` defaults to the model's own (our networks) or Caffe's 227/256 crop.
    """
    import torch

    compute.ensure_threads()
    _check(images, pooling)
    nodes = _node_map(layers)
    size = _input_size(model, images.shape[1], input_size)
    boxes = jitter_boxes(images.shape[1], size)
    if not jitter:
        boxes = boxes[[JITTERS.index("centre")]]
    fx = _extractor(model, nodes)
    out: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(images), desc="features", disable=not progress, leave=False)
    with torch.no_grad(), compute.autocast_context():
        for s in range(0, len(images), batch_size):
            # A copy: images may be a read-only memmap, which torch cannot wrap.
            pixels = torch.from_numpy(np.array(images[s : s + batch_size]))
            acc: dict[str, torch.Tensor] = {}
            for top, left, side, mirror in boxes.tolist():
                x = _window(pixels, top, left, side, side, size, bool(mirror), mean, std)
                for name, t in fx(x).items():
                    v = _vectorize(t, pooling)
                    acc[name] = acc[name] + v if name in acc else v
            for name, v in acc.items():
                if name not in out:
                    out[name] = np.empty((len(images), v.shape[1]), np.float32)
                out[name][s : s + len(pixels)] = (v / len(boxes)).numpy()
            bar.update(len(pixels))
            report_progress((s + len(pixels)) / len(images))
    bar.close()
    return {name: out[name] for name in nodes}


def extract_patches(
    model: nn.Module,
    images: np.ndarray,
    layer: str,
    boxes: np.ndarray,
    *,
    pooling: int = 1,
    batch_size: int = 256,
    input_size: int | None = None,
    mean: float | Sequence[float] = PIXEL_MEAN,
    std: float | Sequence[float] = PIXEL_STD,
    progress: bool = True,
) -> np.ndarray:
    """Features (N, P, D) float32 of P sub-patches per image, no jitter.

    `boxes` (P, 4) are fractional (y0, x0, y1, x1) in [0, 1] (see `retrieval.subpatch_boxes`); each is
    cropped (rounded to whole pixels, at least 1) and resized to the input size. `layer`
    is a node name.
    """
    import torch

    compute.ensure_threads()
    _check(images, pooling)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) == 0:
        raise ValueError(f"boxes must have shape (P, 4), got {boxes.shape}")
    if (boxes < 0).any() or (boxes > 1).any() or (boxes[:, 2:] <= boxes[:, :2]).any():
        raise ValueError("boxes must be (y0, x0, y1, x1) fractions with 0 <= y0 < y1 <= 1")
    image_size = images.shape[1]
    size = _input_size(model, image_size, input_size)
    pix = np.rint(boxes * image_size).astype(int)
    pix[:, 2:] = np.maximum(pix[:, 2:], pix[:, :2] + 1)
    fx = _extractor(model, {layer: layer})
    out: np.ndarray | None = None
    bar = tqdm(total=len(images), desc="patches", disable=not progress, leave=False)
    with torch.no_grad(), compute.autocast_context():
        for s in range(0, len(images), batch_size):
            # A copy: images may be a read-only memmap, which torch cannot wrap.
            pixels = torch.from_numpy(np.array(images[s : s + batch_size]))
            for p, (y0, x0, y1, x1) in enumerate(pix.tolist()):
                x = _window(pixels, y0, x0, y1 - y0, x1 - x0, size, False, mean, std)
                v = _vectorize(fx(x)[layer], pooling).numpy()
                if out is None:
                    out = np.empty((len(images), len(pix), v.shape[1]), np.float32)
                out[s : s + len(pixels), p] = v
            bar.update(len(pixels))
            report_progress((s + len(pixels)) / len(images))
    bar.close()
    assert out is not None
    return out


def _input_size(model: nn.Module, image_size: int, input_size: int | None) -> int:
    size = input_size or getattr(model, "input_size", None) or crop_size(image_size)
    if size > image_size:
        raise ValueError(f"input_size={size} is larger than the images ({image_size} px)")
    return int(size)


def postprocess(x: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """L2-normalise along the last axis, then signed square root (float32).

    A new array, or `x` itself with `in_place` (a float32 array of one's own). Worked a block
    of rows at a time: spatial search's patch features of a split are ~300 MB, and the
    expression `sign(x) * sqrt(abs(x))` held five of them at once. Each row's values are
    the expression's, bit for bit (every step is within a row).
    """
    if in_place and (not isinstance(x, np.ndarray) or x.dtype != np.float32
                     or not x.flags.c_contiguous or not x.flags.writeable):
        raise ValueError("in_place=True needs a writeable, C-contiguous float32 array")
    out = x if in_place else np.array(x, dtype=np.float32)
    rows = out.reshape(-1, out.shape[-1])  # a view: C-contiguous
    for block in (rows[r : r + _ROWS] for r in range(0, len(rows), _ROWS)):
        block /= np.maximum(np.linalg.norm(block, axis=-1, keepdims=True), np.float32(1e-12))
        negative = block < 0  # not signbit: -0.0 comes out as 0.0, as sign(x) * ... gave
        np.sqrt(np.abs(block, out=block), out=block)
        np.negative(block, out=block, where=negative)
    return out


_ROWS = 4096  # rows postprocessed at a time


def concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two representations of the same images side by side (the paper's Concat source)."""
    if a.shape[:-1] != b.shape[:-1]:
        raise ValueError(f"cannot concatenate features of shapes {a.shape} and {b.shape}")
    return np.concatenate([a, b], axis=-1).astype(np.float32, copy=False)


def features(
    model_id: Mapping[str, Any],
    load_model: Callable[[], nn.Module],
    images: np.ndarray,
    data_id: Mapping[str, Any],
    layers: Sequence[str] | Mapping[str, str],
    pooling: int = 1,
    cache: Cache | None = None,
    *,
    jitter: bool = True,
    progress: bool = True,
    **extract_kwargs: Any,
) -> dict[str, np.ndarray]:
    """`extract`, through the cache (kind "features").

    The key is (model_id, data_id, layers, pooling, jitter, precision, any extra extract
    arguments but batch size and progress); `model_id` must identify the weights, e.g.
    {"network": trained.key, "iteration": it}. `load_model` returns the network; it is
    called only when the features are not in the cache (a cache reader loads no weights).
    """
    _check(images, pooling)
    nodes = _node_map(layers)
    cache = cache if cache is not None else Cache()
    extra = {k: v for k, v in extract_kwargs.items() if k != "batch_size"}
    key = {
        "model": dict(model_id),
        "data": dict(data_id),
        "layers": nodes,
        "pooling": pooling,
        "jitter": jitter,
        "extract": extra,
        "compute": compute.precision_id(),
    }
    return cache.get_or_compute(
        "features",
        key,
        lambda: extract(load_model(), images, nodes, pooling=pooling, jitter=jitter, progress=progress,
                        **extract_kwargs),
        codec="arrays",
    )
