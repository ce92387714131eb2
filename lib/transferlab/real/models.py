"""Real networks: torchvision classifiers, ImageNet-pretrained or from a checkpoint file.

`load_model(arch, weights)` returns a `RealModel`: an eval-mode module that takes float
images in [0, 1], shape (N, 3, H, W), and applies ImageNet mean/std normalization itself,
plus the map from the paper's layer names to the module's feature-extraction node names:
`create_feature_extractor(model.module, return_nodes=model.return_nodes)` (torchvision's
`feature_extraction`) gives every layer at once, keyed by the paper's names.

Layer names:
- AlexNet and VGG (the depth study: alexnet 5, vgg11 8, vgg13 10, vgg16 13, vgg19 16 conv
  layers): ``conv1 .. convN, fc6, fc7, fc8``, each the output *after* its ReLU, as Caffe's
  in-place ReLU leaves its blob; fc8 is the logits. The standard representation is fc6.
- Any other torchvision classifier: ``fc8`` = the logits (the last Linear layer), ``fc7`` =
  that layer's input (the pooled features or the head's last hidden layer); its standard
  representation (`RealModel.standard_layer`) is fc7. Networks without a Linear head
  (SqueezeNet) expose only ``fc8`` = the output.

All in-place activations are switched off, so a returned feature is never overwritten by a
later layer. Nothing is downloaded unless `allow_download=True`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

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
        """node name -> public name, as `create_feature_extractor` wants it."""
        return {node: name for name, node in self.layers.items()}


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


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state dict: a plain one, or wrapped as {"state_dict": ...}."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights={str(path)!r} holds no state dict (a dict of tensors)")
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
        with _weights_only_hub():
            return get_model(arch, weights=enum), f"{arch}/{enum.name}"
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
        raise ValueError(f"weights={str(path)!r} does not fit arch={arch!r}: {err}") from err
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


def _generic_layers(module: Normalized, input_size: int) -> tuple[dict[str, str], str]:
    """fc8 = the last Linear's output, fc7 = its input (found by shape, one small forward)."""
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    names = get_graph_node_names(module)[1]

    def module_at(node: str) -> nn.Module | None:
        try:
            return module.get_submodule(node)
        except AttributeError:
            return None

    linear_nodes = [i for i, n in enumerate(names) if isinstance(module_at(n), nn.Linear)]
    if not linear_nodes:
        return {"fc8": names[-1]}, "fc8"
    last = linear_nodes[-1]
    head = module_at(names[last])
    before = [n for n in reversed(names[max(0, last - 8) : last]) if n != "x"]
    before = [n for n in before if not isinstance(module_at(n), (nn.Dropout, nn.Identity))]
    extractor = create_feature_extractor(module, return_nodes=before)
    with torch.no_grad():
        out = extractor(torch.zeros(1, 3, input_size, input_size))
    for node in before:
        value = out[node]
        if isinstance(value, torch.Tensor) and tuple(value.shape) == (1, head.in_features):
            return {"fc7": node, "fc8": names[last]}, "fc7"
    raise ValueError(f"cannot find the input of {names[last]} among nodes {before}")


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
        layers, standard = _generic_layers(module, input_size)
    return RealModel(module, layers, input_size, name, standard)
