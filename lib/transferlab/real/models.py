"""Real networks: torchvision classifiers, ImageNet-pretrained or from a checkpoint file.

`load_model(arch, weights)` returns a `RealModel`: an eval-mode module that takes float
images in [0, 1], shape (N, 3, H, W), and applies ImageNet mean/std normalization itself,
plus the map from the paper's layer names to the module's feature-extraction node names:
`create_feature_extractor(model.module, return_nodes=model.return_nodes)` (torchvision's
`feature_extraction`) gives every layer at once, keyed by the paper's names.

Layer names (the paper's, so every notebook's levels mean something on any network):
- AlexNet and VGG (the depth study: alexnet 5, vgg11 8, vgg13 10, vgg16 13, vgg19 16 conv
  layers): ``conv1 .. convN, fc6, fc7, fc8``, each the output *after* its ReLU, as Caffe's
  in-place ReLU leaves its blob; fc8 is the logits. The standard representation is fc6.
- Any other torchvision classifier (`generic_layers`): ``conv1 .. conv5`` = the last
  output at each of the five downsampling stages (strides 2, 4, 8, 16, 32 of the input;
  for a ResNet exactly its conv1 and conv2_x .. conv5_x stages, post-ReLU); ``fc6`` = the
  globally pooled trunk (the head's input, e.g. ResNet-50's 2048-d pooled penultimate) and
  the standard representation; ``fc7`` = the input of the last Linear layer (the head's last
  hidden layer; the same node as fc6 when the head is a single Linear, as in ResNet);
  ``fc8`` = the logits. A stage the network does not have is left out (a ViT has no conv
  stages after its patch embedding; ConvNeXt's stem starts at stride 4, so its conv1 is the
  stem's output); `RealModel.layers` lists what is there.

All in-place activations are switched off, so a returned feature is never overwritten by a
later layer. Nothing is downloaded unless `allow_download=True`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

DEPTH_ARCHS = {"alexnet": 5, "vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsNotFound(FileNotFoundError):
    """Pretrained weights are not on this machine (and downloading was not allowed)."""


@dataclass
class RealModel:
    """A network ready for feature extraction on [0, 1] images."""

    module: nn.Module  # eval mode; normalizes its input
    layers: dict[str, str]  # public layer name -> feature-extraction node name
    input_size: int  # the side the network was trained at (224 for AlexNet / VGG)
    name: str  # arch and weights identity, e.g. "alexnet/IMAGENET1K_V1"
    standard_layer: str = "fc6"  # the layer the paper's "Deep Standard" reads

    @property
    def return_nodes(self) -> dict[str, str]:
        """node name -> public name, as `create_feature_extractor` wants it; a node with two
        names (ResNet's fc6 and fc7) under the first."""
        return {node: name for name, node in reversed(self.layers.items())}

    def unique_nodes(self, names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """({name: node} with each node once, {other name: the name its node is under})."""
        first: dict[str, str] = {}
        for name in names:
            first.setdefault(self.layers[name], name)
        kept = {name: node for node, name in first.items()}
        return kept, {n: first[self.layers[n]] for n in names if n not in kept}


class Normalized(nn.Module):
    """Applies ImageNet mean/std to a [0, 1] image batch, then runs `net`."""

    def __init__(self, net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def architectures() -> list[str]:
    """Every torchvision classification architecture name."""
    import torchvision.models as tvm

    return tvm.list_models(module=tvm)


# --- weights -------------------------------------------------------------------------------


def hub_weights_path(arch: str) -> Path:
    """Where torch.hub keeps (or would keep) `arch`'s default ImageNet weights."""
    from torchvision.models import get_model_weights

    url = get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


@contextlib.contextmanager
def _weights_only_hub():
    """torchvision's builders load hub weights with `weights_only=False`; route that one call
    through `weights_only=True` (the builders' per-model fixes, e.g. DenseNet's key renames,
    still apply because the builder itself does the loading)."""
    import torchvision.models._api as api

    original = api.load_state_dict_from_url

    def safe(url, *args, **kwargs):
        kwargs["weights_only"] = True
        return original(url, *args, **kwargs)

    api.load_state_dict_from_url = safe
    try:
        yield
    finally:
        api.load_state_dict_from_url = original


def _strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # DataParallel inserts "module." (Places365's AlexNet even inside: "features.module.0")
    sd = {re.sub(r"(^|\.)module\.", r"\1", k): v for k, v in sd.items()}
    if sd and all(k.startswith("net.") or k in ("mean", "std") for k in sd):  # a RealModel's own
        sd = {k[4:]: v for k, v in sd.items() if k.startswith("net.")}
    return sd


STATE_DICT_HINT = (
    "A checkpoint must hold a state_dict (a dict of tensors), optionally as "
    "{'state_dict': ...}: save one with torch.save(model.state_dict(), path)"
)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state dict: a plain one, or wrapped as {"state_dict": ...}.

    Read with `weights_only=True`: a checkpoint is data, never code to run.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found is None:  # not a pickle at all
            raise ValueError(f"weights={str(path)!r} is not a readable torch checkpoint. "
                             f"{STATE_DICT_HINT}") from err
        # a pickled whole model: unpickling its class could run code, so it is not loaded
        raise ValueError(
            f"weights={str(path)!r} is not a state_dict: it pickles a Python object "
            f"({found.group(1)}; a whole model?), which is not loaded because unpickling can run "
            f"code. {STATE_DICT_HINT}"
        ) from err
    except (RuntimeError, EOFError) as err:  # a truncated or damaged file
        raise ValueError(f"weights={str(path)!r} is not a readable torch checkpoint ({err}). "
                         f"{STATE_DICT_HINT}") from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights={str(path)!r} holds a {type(obj).__name__}, not a state_dict. "
                         f"{STATE_DICT_HINT}")
    return _strip_prefixes(obj)


def _fit_heads(net: nn.Module, sd: dict[str, torch.Tensor]) -> list[str]:
    """Rebuild Linear layers whose shape differs in `sd` (e.g. 365 Places classes)."""
    changed = []
    for name, mod in list(net.named_modules()):
        w = sd.get(f"{name}.weight")
        if isinstance(mod, nn.Linear) and w is not None and w.shape != mod.weight.shape:
            parent_name, _, child = name.rpartition(".")
            parent = net.get_submodule(parent_name) if parent_name else net
            setattr(parent, child, nn.Linear(w.shape[1], w.shape[0], bias=f"{name}.bias" in sd))
            changed.append(f"{name}: {tuple(mod.weight.shape)} -> {tuple(w.shape)}")
    return changed


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:12]


def _build(arch: str, weights, allow_download: bool, seed: int) -> tuple[nn.Module, str]:
    from torchvision.models import get_model, get_model_weights

    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return get_model(arch, weights=None), f"{arch}/random-seed{seed}"
    if isinstance(weights, str) and weights == "imagenet":
        enum = get_model_weights(arch).DEFAULT
        path = hub_weights_path(arch)
        if not path.exists() and not allow_download:
            raise WeightsNotFound(
                f"ImageNet weights for {arch} ({enum}) are not on this machine: looked for {path} "
                f"(the torch hub cache, torch.hub.get_dir()/checkpoints; set TORCH_HOME to move it). "
                f"Download them with load_model({arch!r}, 'imagenet', allow_download=True), "
                f"or put the file from {enum.url} there."
            )
        try:
            with _weights_only_hub():
                return get_model(arch, weights=enum), f"{arch}/{enum.name}"
        except (URLError, OSError) as err:
            if path.exists():
                raise
            raise WeightsNotFound(
                f"downloading ImageNet weights for {arch} ({enum}) failed: {err}. Without a "
                f"network, fetch {enum.url} elsewhere and place it at {path} (the torch hub "
                f"cache, torch.hub.get_dir()/checkpoints; set TORCH_HOME to move it), or give "
                f"weights=<a state_dict checkpoint>."
            ) from err
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights={str(weights)!r} is neither 'imagenet', None, nor an existing checkpoint file"
        )
    sd = read_state_dict(path)
    net = get_model(arch, weights=None)
    _fit_heads(net, sd)
    try:
        net.load_state_dict(sd)
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or [str(err)]
        raise ValueError(
            f"weights={str(path)!r} does not fit arch={arch!r} ({first[0].strip()[:300]}). If it "
            f"is another torchvision architecture, name it in a weights file (weights=<file>.yaml "
            f"with `arch: resnet50` and `objects: {path.name}`)"
        ) from err
    return net, f"{arch}/{path.stem}-{_file_digest(path)}"


# --- layer names -----------------------------------------------------------------------------


def caffe_layers(net: nn.Module, prefix: str = "net.") -> dict[str, str]:
    """conv1..convN, fc6.. of an AlexNet / VGG: each weight layer's post-ReLU node."""
    layers: dict[str, str] = {}
    for part, kind, first, name in (
        ("features", nn.Conv2d, 1, "conv"),
        ("classifier", nn.Linear, 6, "fc"),
    ):
        count, pending = first - 1, None
        for idx, mod in getattr(net, part).named_children():
            node = f"{prefix}{part}.{idx}"
            if isinstance(mod, kind):
                count += 1
                pending = f"{name}{count}"
                layers[pending] = node
            elif isinstance(mod, nn.ReLU) and pending:
                layers[pending] = node
                pending = None
    return layers


def _module_at(module: nn.Module, node: str) -> nn.Module | None:
    try:
        return module.get_submodule(node)
    except AttributeError:
        return None


def _probe(module: nn.Module, nodes: list[str], input_size: int) -> tuple[dict[str, tuple], set[str]]:
    """The output shape of every node for one blank image (non-tensor outputs left out), and
    the nodes every path from the input to the output goes through (`_cut_nodes`)."""
    from torchvision.models.feature_extraction import create_feature_extractor

    extractor = create_feature_extractor(module, return_nodes=nodes)
    with torch.no_grad():
        out = extractor(torch.zeros(1, 3, input_size, input_size))
    shapes = {n: tuple(v.shape) for n, v in out.items() if isinstance(v, torch.Tensor)}
    return shapes, _cut_nodes(extractor.graph)


def _cut_nodes(graph) -> set[str]:
    """Returned nodes that no data edge jumps over in topological order: the tensors all
    the information passes through, i.e. a stage's output rather than a tensor inside a
    block that a residual or parallel branch bypasses. Constants (class tokens, buffers)
    carry no data from the image and are ignored."""
    nodes = list(graph.nodes)
    output = next(n for n in nodes if n.op == "output")
    public = {fx: name for name, fx in output.args[0].items()}
    pos = {n: i for i, n in enumerate(nodes)}
    live: set = set()
    for n in nodes:
        if n.op == "placeholder" or any(a in live for a in n.all_input_nodes):
            live.add(n)
    jumps = np.zeros(len(nodes) + 1, np.int64)
    for w in nodes:
        for u in w.all_input_nodes if w.op != "output" else ():
            if u in live and pos[w] - pos[u] > 1:
                jumps[pos[u] + 1] += 1
                jumps[pos[w]] -= 1
    crossed = np.cumsum(jumps)
    return {public[n] for i, n in enumerate(nodes) if n in public and crossed[i] == 0}


def _stage_nodes(shapes: dict[str, tuple], cuts: set[str], order: list[str],
                 input_size: int) -> dict[str, str]:
    """conv1..conv5: the output of each downsampling stage (stride 2**k, k = 1..5; strides
    bucketed by log2, so Inception's odd 299 px sizes land right): the last square NCHW map
    of the stage that all information passes through (else its last map). Without a
    stride-2 stage (ConvNeXt's 4x4 stem), conv1 is the first map of the shallowest stage."""
    by_stage: dict[int, list[str]] = {}
    for node in order:
        shape = shapes.get(node)
        if shape is None or len(shape) != 4 or shape[2] != shape[3] or shape[2] <= 1:
            continue  # not a spatial map (Swin's NHWC tokens, 1x1 SE gates)
        stage = round(math.log2(input_size / shape[2]))
        if 1 <= stage <= 5:
            by_stage.setdefault(stage, []).append(node)
    layers = {}
    for k, nodes in sorted(by_stage.items()):
        layers[f"conv{k}"] = next((n for n in reversed(nodes) if n in cuts), nodes[-1])
    if by_stage and "conv1" not in layers:
        first = by_stage[min(by_stage)]
        if first[0] != layers[f"conv{min(by_stage)}"]:
            layers["conv1"] = first[0]
    return dict(sorted(layers.items(), key=lambda kv: int(kv[0][4:])))


def generic_layers(module: Normalized, input_size: int) -> tuple[dict[str, str], str]:
    """Layer map of any torchvision classifier (see the module docstring), from its traced
    graph and the shapes of one blank forward; returns (layers, standard layer)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    order = [n for n in get_graph_node_names(module)[1] if n != "x"]
    shapes, cuts = _probe(module, order, input_size)
    linear = [i for i, n in enumerate(order) if isinstance(_module_at(module, n), nn.Linear)]
    if not linear:  # e.g. SqueezeNet's conv head: only the output is a representation
        layers = _stage_nodes(shapes, cuts, order, input_size)
        return {**layers, "fc8": order[-1]}, "fc8"
    last = linear[-1]
    head = _module_at(module, order[last])
    skip = (nn.Dropout, nn.Identity)
    fc7 = next((n for n in reversed(order[:last]) if shapes.get(n) == (1, head.in_features)
                and not isinstance(_module_at(module, n), skip)), None)
    if fc7 is None:
        raise ValueError(f"cannot find the input of {order[last]} (in_features "
                         f"{head.in_features}) among the nodes before it")
    spatial = [i for i, n in enumerate(order[:last]) if len(shapes.get(n, ())) == 4]
    after = order[spatial[-1] + 1 : last] if spatial else order[:last]
    fc6 = next((n for n in after if len(shapes.get(n, ())) == 2
                and not isinstance(_module_at(module, n), skip)), fc7)
    trunk = order[: order.index(fc6)]
    layers = _stage_nodes(shapes, cuts, trunk, input_size)
    return {**layers, "fc6": fc6, "fc7": fc7, "fc8": order[last]}, "fc6"


# --- the public entry point ----------------------------------------------------------------


def load_model(
    arch: str,
    weights: str | os.PathLike | None = "imagenet",
    *,
    allow_download: bool = False,
    seed: int = 0,
) -> RealModel:
    """A torchvision classifier wrapped for feature extraction on [0, 1] images.

    arch: "alexnet", "vgg11", "vgg13", "vgg16", "vgg19" (the depth study) or any name in
    `torchvision.models.list_models(module=torchvision.models)`. weights: "imagenet" (the
    default weights, from the torch hub cache; downloaded only with allow_download=True), a
    checkpoint path (a state dict, optionally inside {"state_dict": ...}, "module." prefixes
    allowed; Linear heads are resized to the checkpoint's class count), or None (random
    init from `seed`).
    """
    valid = architectures()
    if arch not in valid:
        raise ValueError(f"arch={arch!r} is not a torchvision classifier; valid: {valid}")
    from torchvision.models import get_model_weights

    transforms = get_model_weights(arch).DEFAULT.transforms()
    net, name = _build(arch, weights, allow_download, seed)
    for mod in net.modules():  # a later in-place op would overwrite an extracted feature
        if hasattr(mod, "inplace"):
            mod.inplace = False
    module = Normalized(net, tuple(transforms.mean), tuple(transforms.std)).eval()
    input_size = int(transforms.crop_size[0])
    from torchvision.models import VGG, AlexNet

    if isinstance(net, (AlexNet, VGG)):
        layers, standard = caffe_layers(net), "fc6"
    else:
        layers, standard = generic_layers(module, input_size)
    return RealModel(module, layers, input_size, name, standard)
