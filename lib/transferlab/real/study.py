"""The study on real data: torchvision datasets and pretrained networks, same notebooks.

`RealBackend` is a `study.Backend` whose tasks come from `transferlab.real.load_task`
(datasets already on disk under `data_root`) and whose networks are torchvision classifiers
(`transferlab.real.load_model`) instead of networks trained on the embedded world. Everything
after the features -- probes, retrieval, metrics, bootstrap, results rows -- is `Study`'s;
`RealStudy` is the `Study` over this backend.

How the paper's factors map onto pretrained networks:

- **the network**: AlexNet by default; any torchvision classifier with `arch:` in the
  weights file (or `weights=resnet50`: its ImageNet weights). Its layers carry the paper's
  names (`transferlab.real.models`: conv1..conv5 = stage outputs, fc6 = pooled penultimate).
- **depth**: a level is a number naming an architecture, each with torchvision's ImageNet
  weights: by default 5 alexnet, 8 vgg11, 10 vgg13, 13 vgg16, 16 vgg19 (`REAL_DEPTHS`, conv
  layers); `depths: {18: resnet18, 50: resnet50, 101: resnet101}` in the weights file
  compares any list of architectures instead. Depth 5 is always the standard network. These
  are not the world's depths (5, 7, ..., 13), which `Representation` checks, so levels of
  other depths are `RealRepresentation`s (`depth_levels`).
- **source**: "objects" = ImageNet (torchvision's weights, or an `objects` checkpoint);
  "scenes" and "hybrid" = a user's checkpoint of the same architecture (e.g. Places365's
  alexnet_places365.pth.tar); "concat" = objects and scenes features side by side.
- **source-data size** and **early stopping** need AlexNets trained on part of ImageNet, or
  snapshots of its training; torchvision ships only final weights, so they come from user
  checkpoints (`fractions`, `snapshots` of the weights mapping file) or fail with a clear
  error. **Width** (AlexNets of other widths) and **fine-tuning** are not available here.

The `weights` parameter (`RealWeights.parse`): "" or "imagenet" (torchvision's ImageNet
weights, from the torch hub cache; nothing is downloaded), an architecture name (its ImageNet
weights), a checkpoint file (a state_dict of the objects AlexNet), or a .yaml / .json file
mapping any of::

    arch: alexnet                         # any torchvision classifier; the checkpoints' too
    objects: imagenet                     # or a checkpoint of the objects network
    depths: {5: alexnet, 13: vgg16}       # depth factor: level -> architecture (ImageNet)
    scenes: alexnet_places365.pth.tar     # paths relative to this file
    hybrid: hybrid_alexnet.pth
    fractions: {0.125: a1.pth, 0.25: a2.pth, 0.5: a3.pth}   # data size: AlexNet per fraction
    snapshots: {1000: s1.pth, 10000: s2.pth, 450000: s3.pth} # early stopping: iteration -> AlexNet

Images are decoded once at `image_size` (256; smaller images at their own size) and the
networks read 224 px (the 224/256 ratio of Caffe's 227/256 is kept at other sizes and input
sizes: Inception's 299 px come from 342 px images); images stored smaller than that are
upscaled batch by batch as the network reads them; the 12 jitters are the base pipeline's.
Features are cached in the one Cache, keyed by the network's identity (arch + weights name or
file digest) and the decoded images' cache entry (dataset, size, source files). Decoding and
feature extraction show text progress bars (they reach papermill's log of a batch run).

Every results row names its weights (`weights` column: e.g. "alexnet/IMAGENET1K_V1" or
"alexnet/pets_ft-3f2a9c1b02de", the checkpoint's file name and digest).

Protocol notes: a real retrieval task's validation score (the `cv_score` Table 6 picks by)
uses pairs of images of one instance from its "train" split, which for these datasets is the
database without the queries (Holidays) or the whole database (UKB, Oxford, Paris): no
disjoint validation set ships with them, so those choices see database images. With `limit`,
classes missing from a task's training split are left out (their test images too, with a
warning) so that the probe can train.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import yaml

from .. import compute, features
from ..cache import Cache
from ..finetune import FinetuneConfig
from ..probes import ProbeConfig
from ..profiles import Profile
from ..progress import span as progress_span
from ..study import (
    STANDARD,
    Level,
    Offers,
    Representation,
    Stage,
    Study,
    Unavailable,
    extraction_layers,
)
from ..study import (
    depth_levels as _depth_levels,
)
from ..tasks import RetrievalTruth, TaskData, TaskSpec
from ..training import TrainConfig
from ..world import WorldConfig
from .datasets import available, index, load_task, progress_bar, resize
from .datasets import tasks as real_tasks
from .models import (
    DEPTH_ARCHS,
    RealModel,
    WeightsNotFound,
    architectures,
    hub_weights_path,
    load_model,
)

log = logging.getLogger(__name__)

REAL_DEPTHS: dict[int, str] = {depth: arch for arch, depth in DEPTH_ARCHS.items()}
STANDARD_ARCH = REAL_DEPTHS[STANDARD.depth]  # AlexNet: the paper's Deep Standard
WEIGHT_KEYS = ("arch", "objects", "depths", "scenes", "hybrid", "fractions", "snapshots")
GENERIC_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
CHUNK = 128  # images upscaled and extracted at a time (bounded memory, a moving progress bar)
MAPPING_SUFFIXES = (".yaml", ".yml", ".json")
MIN_IMAGE_SIZE = 96  # AlexNet's last pooling needs a >= 3x3 conv5 map: input >= 63 px
MAX_MODELS = 2  # networks kept in memory (concat needs two); VGG-19 alone is ~550 MB

# Sizes of a real run. tasks=(): the notebooks' default tasks are the datasets found under
# data_root (RealBackend.default_tasks), which the profile cannot know.
REAL_PROFILE = Profile(
    name="real",
    world=WorldConfig(),  # unused: the tasks are datasets under data_root
    train=TrainConfig(),  # unused: nothing is trained
    finetune=FinetuneConfig(),
    probe=ProbeConfig(),  # the paper's 4-fold cross-validation of C
    tasks=(),
    seeds=(0,),  # pretrained networks: a seed only moves probe folds and the bootstrap
    n_boot=1000,
    batch_size=32,  # VGG at 224 px: activations of 32 images fit a few GB
)


# ------------------------------------------------------------------ representations


def real_layers(depth: int) -> list[str]:
    """Layer names of the torchvision network with `depth` conv layers, in order."""
    return [f"conv{i}" for i in range(1, arch_depth(depth) + 1)] + ["fc6", "fc7", "fc8"]


def arch_layers(arch: str) -> list[str]:
    """The paper's layer names an architecture can have (AlexNet / VGG: every conv layer;
    others: their five stages; `RealModel.layers` says which a network really has)."""
    return real_layers(DEPTH_ARCHS[arch]) if arch in DEPTH_ARCHS else list(GENERIC_LAYERS)


def arch_depth(depth: int) -> int:
    if isinstance(depth, bool) or depth not in REAL_DEPTHS:
        raise ValueError(
            f"depth={depth!r} has no torchvision network; real depths (conv layers -> "
            f"architecture): {REAL_DEPTHS}"
        )
    return int(depth)


def arch_for(depth: int) -> str:
    """The torchvision architecture with `depth` conv layers."""
    return REAL_DEPTHS[arch_depth(depth)]


def _values(rep: Representation) -> dict:
    return {f.name: getattr(rep, f.name) for f in fields(Representation)}


@dataclass(frozen=True)
class RealRepresentation(Representation):
    """A `Representation` whose depth names a torchvision network (`REAL_DEPTHS`, or the
    study's `depths:`), not the world's; every other field follows `Representation`'s own
    checks. The study says whether it has a network of that depth (`RealBackend.check`)."""

    def __post_init__(self) -> None:
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"depth={self.depth!r} must be an integer >= 1")
        valid = real_layers(self.depth) if self.depth in REAL_DEPTHS else list(GENERIC_LAYERS)
        if self.layer not in valid:
            raise ValueError(f"layer={self.layer!r} is not one of {valid} (depth {self.depth})")
        Representation(**{**_values(self), "depth": STANDARD.depth, "layer": STANDARD.layer})


def as_real(rep: Representation) -> RealRepresentation:
    return rep if isinstance(rep, RealRepresentation) else RealRepresentation(**_values(rep))


def depth_levels(depths: Sequence[int]) -> list[Level]:
    """The depth factor's levels on torchvision networks (by default 5, 8, 10, 13, 16 conv
    layers; the weights file's `depths:` names others)."""
    return _depth_levels(depths, as_real(STANDARD))


# ------------------------------------------------------------------ weights


def _file(value: object, key: str, base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"weights: {key}={value!r} must be a checkpoint path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ValueError(f"weights: {key}={value!r} is not a file (looked for {path})")
    return str(path)


def _levels(value: object, key: str, base: Path, number: type) -> tuple:
    if not isinstance(value, Mapping):
        raise ValueError(f"weights: {key} must map a level to a checkpoint path, got {value!r}")
    out = []
    for level, path in value.items():
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            raise ValueError(f"weights: {key} level {level!r} must be a number")
        if number is int and level != int(level):
            raise ValueError(f"weights: {key} level {level!r} must be an iteration (an integer)")
        if number is float and not 0 < level <= 1:
            raise ValueError(f"weights: {key} level {level!r} must be a fraction in (0, 1]")
        out.append((number(level), _file(path, f"{key}[{level}]", base)))
    return tuple(sorted(out))


def _arch(value: object, key: str) -> str:
    valid = architectures()
    if value not in valid:
        raise ValueError(f"weights: {key}={value!r} is not a torchvision classifier; valid: {valid}")
    return str(value)


def _depths(value: object) -> tuple[tuple[int, str], ...]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"weights: depths must map a depth level to an architecture, e.g. "
                         f"{{18: resnet18, 50: resnet50}}; got {value!r}")
    out = []
    for level, arch in value.items():
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise ValueError(f"weights: depths level {level!r} must be an integer >= 1")
        out.append((level, _arch(arch, f"depths[{level}]")))
    return tuple(sorted(out))


@dataclass(frozen=True)
class RealWeights:
    """Which weights stand behind each source and level (see the module docstring)."""

    arch: str = STANDARD_ARCH  # the standard network's architecture (and its checkpoints')
    objects: str = "imagenet"
    depths: tuple[tuple[int, str], ...] = ()  # (depth level, architecture); () = REAL_DEPTHS
    scenes: str | None = None
    hybrid: str | None = None
    fractions: tuple[tuple[float, str], ...] = ()  # (fraction of ImageNet, AlexNet checkpoint)
    snapshots: tuple[tuple[int, str], ...] = ()  # (training iteration, AlexNet checkpoint)

    @classmethod
    def parse(cls, weights: str | os.PathLike) -> RealWeights:
        """From the `weights` parameter: "" / "imagenet", an architecture name, a checkpoint,
        or a mapping file."""
        text = str(weights)
        if text in ("", "imagenet"):
            return cls()
        if text in architectures():
            return cls(arch=text)
        path = Path(text).expanduser()
        if path.suffix.lower() not in MAPPING_SUFFIXES:
            if not path.is_file():
                raise ValueError(
                    f"weights={text!r} is neither 'imagenet', a torchvision architecture (e.g. "
                    f"'resnet50'), an existing checkpoint file, nor a mapping file "
                    f"({', '.join(MAPPING_SUFFIXES)})"
                )
            return cls(objects=str(path))
        if not path.is_file():
            raise ValueError(f"weights={text!r}: the mapping file does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"weights={text!r} is not valid YAML: {err}") from err
        if not isinstance(values, Mapping):
            raise ValueError(f"weights={text!r} must hold a mapping with keys {WEIGHT_KEYS}")
        unknown = sorted(set(values) - set(WEIGHT_KEYS))
        if unknown:
            raise ValueError(f"weights={text!r} has unknown keys {unknown}; valid: {WEIGHT_KEYS}")
        base = path.parent
        objects = values.get("objects", "imagenet")
        return cls(
            arch=_arch(values["arch"], "arch") if "arch" in values else STANDARD_ARCH,
            objects="imagenet" if objects == "imagenet" else _file(objects, "objects", base),
            depths=_depths(values["depths"]) if "depths" in values else (),
            scenes=_file(values["scenes"], "scenes", base) if "scenes" in values else None,
            hybrid=_file(values["hybrid"], "hybrid", base) if "hybrid" in values else None,
            fractions=_levels(values.get("fractions", {}), "fractions", base, float),
            snapshots=_levels(values.get("snapshots", {}), "snapshots", base, int),
        )

    def depth_archs(self) -> dict[int, str]:
        """Depth level -> architecture: `depths`, else REAL_DEPTHS; the standard depth (5)
        is always the standard network."""
        return {**dict(self.depths or tuple(REAL_DEPTHS.items())), STANDARD.depth: self.arch}

    def weights_of(self, arch: str) -> str:
        """What stands behind `arch` as the objects network: `objects` for the standard
        architecture, torchvision's ImageNet weights for any other."""
        return self.objects if arch == self.arch else "imagenet"


def _need_training(factor: str, key: str, example: str) -> str:
    return (
        f"the {factor} factor needs AlexNets trained on ImageNet for it, which torchvision does "
        f"not ship: train them, then give their checkpoints in a weights mapping file "
        f"(weights=<file>.yaml) under `{key}:`, e.g. {example}"
    )


# ------------------------------------------------------------------ data


def _images_id(images: np.ndarray) -> str:
    """Identity of decoded images: their image-cache file (its folder is named by dataset,
    size and the source files' fingerprint), else a hash of the pixels."""
    if isinstance(images, np.memmap) and images.filename:
        path = Path(images.filename)
        return f"{path.parent.name}/{path.name}"
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:24]


def _probe_ready(data: TaskData) -> tuple[TaskData, np.ndarray | None]:
    """Labels a linear probe can train on, and the test rows kept (None: all).

    Single-label: classes renumbered to those in the training split (test images of other
    classes dropped). Multi-label: labels without a positive and a negative in training
    dropped. A full dataset passes unchanged; a `limit`ed one may not.
    """
    kind = data.spec.kind
    if kind == "multi-label":
        ytr = data.labels["train"]
        cols = np.flatnonzero((ytr == 1).any(0) & (ytr != 1).any(0))
        if len(cols) == ytr.shape[1]:
            return data, None
        log.warning("%s: labels %s have no positive or no negative training image: left out",
                    data.spec.name, sorted(set(range(ytr.shape[1])) - set(cols.tolist())))
        names = tuple(data.class_names[c] for c in cols) if data.class_names else ()
        return replace(data, labels={s: y[:, cols] for s, y in data.labels.items()},
                       class_names=names), None
    if kind != "single-label":
        return data, None
    ytr, yte = data.labels["train"], data.labels["test"]
    classes = np.unique(ytr)
    seen = np.isin(yte, classes)
    if np.array_equal(classes, np.arange(len(classes))) and seen.all():
        return data, None
    keep = np.flatnonzero(seen)
    if len(keep) < len(yte):
        log.warning("%s: %d test images of classes absent from training left out",
                    data.spec.name, len(yte) - len(keep))
    names = tuple(data.class_names[c] for c in classes) if data.class_names else ()
    images = dict(data.images)
    if len(keep) < len(yte):
        images["test"] = np.asarray(data.images["test"][keep])
    labels = {"train": np.searchsorted(classes, ytr), "test": np.searchsorted(classes, yte[keep])}
    data = replace(data, images=images, labels=labels, class_names=names,
                   spec=replace(data.spec, n_classes=len(classes)))
    return data, (keep if len(keep) < len(yte) else None)


def validation_truth(labels: np.ndarray) -> RetrievalTruth | None:
    """The train split as a validation retrieval set: for each instance with two or more
    images, its first image queries and its second is the positive (None: < 2 such pairs)."""
    pairs = []
    for group in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == group)
        if len(rows) >= 2:
            pairs.append(rows[:2])
    if len(pairs) < 2:
        return None
    return RetrievalTruth(tuple(np.array([b]) for _, b in pairs),
                          tuple(np.zeros(0, np.int64) for _ in pairs),
                          np.array([a for a, _ in pairs], dtype=np.int64))


# ------------------------------------------------------------------ the study


class RealBackend:
    """The `study.Backend` of datasets under `data_root` with torchvision networks.

    tasks: the default tasks of `run` (empty: every real dataset found under data_root).
    image_size: side of the decoded images (networks read image_size * 224/256 px).
    limit: at most this many images per split (classification) or groups (retrieval), for
    quick looks. image_cache: where decoded images go (default: the cache root's real/).
    """

    def __init__(
        self,
        data_root: str | os.PathLike,
        weights: RealWeights | str = "imagenet",
        *,
        tasks: Sequence[str] = (),
        image_size: int = 256,
        limit: int | None = None,
        profile: Profile = REAL_PROFILE,
        cache: Cache | None = None,
        progress: bool = True,
        image_cache: str | os.PathLike | None = None,
    ) -> None:
        root = Path(data_root).expanduser()
        if not str(data_root) or not root.is_dir():
            raise ValueError(f"data_root={str(data_root)!r} is not a folder: it must hold the "
                             f"datasets (see transferlab.real.load_task)")
        if isinstance(image_size, bool) or not isinstance(image_size, int) \
                or image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size={image_size!r} must be an int >= {MIN_IMAGE_SIZE}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise ValueError(f"limit={limit!r} must be None or an int >= 1")
        self.profile, self.progress = profile, progress
        self.cache = cache if cache is not None else Cache()
        self._tasks: dict[str, TaskData] = {}
        self.data_root = root
        self.weights = weights if isinstance(weights, RealWeights) else RealWeights.parse(weights)
        self.image_size, self.limit = image_size, limit
        self.image_cache = Path(image_cache) if image_cache is not None else None
        self._default_tasks = self.check_tasks(tasks) if tasks else ()
        self._data_ids: dict[str, dict[str, dict]] = {}
        self._real_models: OrderedDict[tuple[str, str], RealModel] = OrderedDict()

    # Pretrained networks: nothing is trained or fine-tuned here, and the tasks are datasets.
    offers = Offers(trains_networks=False, finetunes=False, world_card=False)

    # ------------------------------------------------------------------ tasks

    def check_tasks(self, tasks: Sequence[str]) -> tuple[str, ...]:
        """`tasks` if each is a real task present under data_root, else a clear error."""
        if isinstance(tasks, str):
            raise ValueError(f"tasks={tasks!r} must be a list of task names, not a string")
        known = real_tasks(self.data_root)
        bad = [t for t in tasks if t not in known]
        if bad:
            raise ValueError(f"tasks {bad} are not real tasks; valid tasks: {sorted(known)} "
                             f"(image folders are {self.data_root}/<name>/train/<class>/<image>)")
        present = set(available(self.data_root))
        for task in tasks:
            if task not in present:
                index(task, self.data_root)  # raises DatasetNotFound: where it looked, how to get it
        return tuple(tasks)

    def default_tasks(self) -> tuple[str, ...]:
        """The tasks given at construction, else every real dataset under data_root."""
        if self._default_tasks:
            return self._default_tasks
        found = tuple(available(self.data_root))
        if not found:
            raise ValueError(
                f"no real dataset found under data_root={str(self.data_root)!r}; each has its own "
                f"folder there (flowers-102/, VOCdevkit/, holidays/, or your image folder "
                f"<name>/train/<class>/<image>): see README, 'Run on real data'. Known datasets: "
                f"{sorted(real_tasks(self.data_root))}"
            )
        return found

    def task_spec(self, name: str) -> TaskSpec:
        """The identity card of a real task (group, distance rank, metric, kind)."""
        if name in self._tasks:
            return self._tasks[name].spec
        known = real_tasks(self.data_root)
        if name not in known:
            raise ValueError(f"task={name!r} is not a real task; valid tasks: {sorted(known)}")
        return known[name]

    def task(self, name: str) -> TaskData:
        if name not in self._tasks:
            self.check_tasks((name,))
            data = load_task(name, self.data_root, image_size=self.image_size, limit=self.limit,
                             cache_dir=self.image_cache, progress=self.progress)
            ids = {s: {"images": _images_id(x)} for s, x in data.images.items()}
            data, kept = _probe_ready(data)
            if kept is not None:
                ids["test"]["rows"] = hashlib.sha256(kept.tobytes()).hexdigest()[:16]
            self._data_ids[name], self._tasks[name] = ids, data
        return self._tasks[name]

    def data_id(self, task: str, split: str | None = None) -> dict:
        """The decoded images' identity (and the test rows kept), of one split or all."""
        self.task(task)  # decodes (or finds) the images and records their ids
        if split is None:
            return {"task": task, "data": self._data_ids[task]}
        return {"data": self._data_ids[task][split]}

    def validation_truth(self, task: str) -> RetrievalTruth | None:
        """Pairs within the train split (real datasets ship no held-out instances)."""
        return validation_truth(self.task(task).labels["train"])

    # ------------------------------------------------------------------ networks

    def source_accuracy(self, source: str, rep: Representation = STANDARD, seed: int = 0) -> float:
        """NaN: a real network's source accuracy needs the ImageNet / Places validation sets,
        which the real tasks do not include."""
        return float("nan")

    def checkpoint_iterations(self, seed: int = 0, rep: Representation = STANDARD) -> list[int]:
        """Training iterations of the early-stopping snapshots given in the weights file."""
        if not self.weights.snapshots:
            raise Unavailable(_need_training("early-stopping", "snapshots",
                                            "snapshots: {1000: s1.pth, 450000: final.pth}"))
        return [it for it, _ in self.weights.snapshots]

    def arch_for(self, depth: int) -> str:
        """The architecture of the depth level `depth` (see RealWeights.depth_archs)."""
        archs = self.weights.depth_archs()
        if depth not in archs:
            raise Unavailable(
                f"depth={depth!r} has no network here; depth levels (-> architecture): {archs}. "
                f"Compare other architectures with a weights file: depths: {{18: resnet18, "
                f"50: resnet50}}")
        return archs[depth]

    def resolve(self, rep: Representation, source: str) -> tuple[str, str]:
        """(architecture, weights) behind `rep` for one source (concat has two); a clear
        ValueError when the real profile cannot produce it."""
        if rep.finetune:
            raise Unavailable(f"finetune={rep.finetune!r}: fine-tuning torchvision networks is not "
                             "implemented; the fine-tuning factor runs on the world profiles")
        if rep.width != STANDARD.width:
            raise Unavailable(
                f"width={rep.width!r}: torchvision has one width per architecture; the width "
                "factor needs AlexNets of other widths trained on ImageNet, whose shapes differ "
                "from torchvision's, so it is not available on the real profile (it runs on the "
                "world profiles)"
            )
        arch = self.arch_for(rep.depth)
        valid = arch_layers(arch)
        if rep.layer not in valid:
            raise ValueError(f"layer={rep.layer!r} is not one of {valid} ({arch})")
        if rep.spatial and rep.source == "concat":
            raise ValueError("spatial search with the concat representation is not supported")
        standard = self.weights.arch
        trained = rep.fraction != 1 or rep.checkpoint is not None
        if trained and (source != "objects" or rep.depth != STANDARD.depth):
            raise ValueError(f"source-data size and early stopping use the objects {standard} "
                             f"(depth 5); got source={source!r}, depth={rep.depth}")
        if rep.fraction != 1:
            given = dict(self.weights.fractions)
            if rep.fraction not in given:
                raise Unavailable(f"fraction={rep.fraction:g} has no checkpoint (given: "
                                 f"{sorted(given)}); " + _need_training(
                                     "data-size", "fractions", "fractions: {0.5: half.pth}"))
            return arch, given[rep.fraction]
        if rep.checkpoint is not None:
            snaps = self.checkpoint_iterations()
            if not 0 <= rep.checkpoint < len(snaps):
                raise ValueError(f"checkpoint={rep.checkpoint!r} must index one of "
                                 f"{len(snaps)} snapshots")
            return arch, self.weights.snapshots[rep.checkpoint][1]
        if source == "objects":
            return arch, self.weights.weights_of(arch)
        path = getattr(self.weights, source, None)
        if path is None:
            raise Unavailable(
                f"source={source!r} needs a {source} {standard} checkpoint: give weights=<file>.yaml "
                f"with `{source}: <path>` (e.g. Places365's alexnet_places365.pth.tar from "
                f"http://places2.csail.mit.edu/models_places365/)"
            )
        if rep.depth != STANDARD.depth:
            raise ValueError(f"source={source!r} is a {standard} (depth 5); got depth={rep.depth}")
        return arch, path

    def check(self, rep: Representation) -> None:
        """Everything `rep` needs exists (weights files, ImageNet weights in the hub cache,
        the layer in the network)."""
        for source in rep.sources:
            arch, weights = self.resolve(rep, source)
            if weights == "imagenet" and not hub_weights_path(arch).exists():
                raise WeightsNotFound(
                    f"ImageNet weights for {arch} are not on this machine: looked for "
                    f"{hub_weights_path(arch)} (the torch hub cache; set TORCH_HOME to move it). "
                    f"Fetch them once with transferlab.real.load_model({arch!r}, 'imagenet', "
                    f"allow_download=True), or give weights=<checkpoint>."
                )
            if arch not in DEPTH_ARCHS:  # which stages a network has shows once it is built
                layers = list(self.load(rep, source).layers)
                if rep.layer not in layers:
                    raise Unavailable(f"layer={rep.layer!r}: {arch} has no such layer; its "
                                      f"layers: {layers}")

    def load(self, rep: Representation, source: str) -> RealModel:
        """The network behind `rep` for `source`, loaded once (the last few stay in memory)."""
        key = self.resolve(rep, source)
        if key in self._real_models:
            self._real_models.move_to_end(key)
        else:
            while len(self._real_models) >= MAX_MODELS:
                self._real_models.popitem(last=False)
            self._real_models[key] = load_model(*key)
        return self._real_models[key]

    def model_id(self, rep: Representation, source: str, task: str, seed: int) -> dict:
        """The weights' name and input sizes (the same for every task and seed)."""
        return self._model_id(self.load(rep, source))

    def model(self, rep: Representation, source: str, task: str,
              seed: int) -> tuple[dict, RealModel]:
        """(model_id, network) behind `rep` for `source`; the same for every task and seed."""
        model = self.load(rep, source)
        return self._model_id(model), model

    def weights_name(self, rep: Representation) -> str:
        """Which weights produced `rep`'s features, for the results' `weights` column."""
        return " + ".join(self.load(rep, s).name for s in rep.sources)

    def feature_dim(self, rep: Representation = STANDARD) -> int:
        """Dimension of `rep`'s raw feature (4096 for AlexNet's FC6), from one blank image."""
        self.check(rep)
        dims = 0
        for source in rep.sources:
            model = self.load(rep, source)
            blank = np.zeros((1, self._view_side(model), self._view_side(model), 3), np.uint8)
            kwargs = {k: v for k, v in self._extract_kwargs(model).items() if k != "input_size"}
            x = features.extract(model.module, blank, {rep.layer: model.layers[rep.layer]},
                                 pooling=rep.pooling, jitter=False, input_size=self._side(model),
                                 progress=False, **kwargs)
            dims += x[rep.layer].shape[1]
        return dims

    def _side(self, model: RealModel) -> int:
        """The network's input side: its own at image_size 256, scaled with image_size."""
        return round(self.image_size * model.input_size / 256)

    def _view_side(self, model: RealModel) -> int:
        """The side of the images the jitters crop `_side` from (the 256/224 ratio)."""
        return max(self._side(model), round(self._side(model) * 256 / 224))

    def _model_id(self, model: RealModel) -> dict:
        return {"real": model.name, "input_size": self._side(model),
                "view": self._view_side(model)}

    def _extract_kwargs(self, model: RealModel) -> dict:
        # RealModel normalizes itself and wants [0, 1] input: pixels / 255
        return {"input_size": self._side(model), "mean": 0.0, "std": 255.0,
                "batch_size": self.profile.batch_size}

    # ------------------------------------------------------------------ features

    @staticmethod
    def _is_standard(rep: Representation, source: str) -> bool:
        return (source == "objects" and rep.depth == STANDARD.depth and rep.fraction == 1
                and rep.checkpoint is None)

    def view(self, images: np.ndarray, model: RealModel) -> np.ndarray:
        """`images` at the side the network's jitters crop from: stored images that are
        smaller (or larger) are resized as in decoding; the rest pass as they are."""
        side = self._view_side(model)
        if images.shape[1] == side:
            return images
        return np.stack([resize(np.asarray(img), side) for img in images]) if len(images) \
            else np.zeros((0, side, side, 3), np.uint8)

    def _chunked(self, images: np.ndarray, model: RealModel, desc: str, compute) -> list:
        """`compute` on CHUNK images at a time, at the network's view side, with a bar."""
        out = []
        with progress_bar(len(images), desc, self.progress) as bar:
            for s in range(0, len(images), CHUNK):
                # Each chunk's extraction reports its own whole: map it onto its share.
                with progress_span(s / len(images), min(s + CHUNK, len(images)) / len(images)):
                    out.append(compute(self.view(images[s : s + CHUNK], model)))
                bar.update(min(CHUNK, len(images) - s))
        return out

    def _features(self, model: RealModel, task: str, split: str, names: list[str],
                  pooling: int) -> dict[str, np.ndarray]:
        """Raw features of one split at `names` (one pass; a node under two names, as
        ResNet's fc6 and fc7, is computed once), cached as `features.features` would."""
        nodes, aliases = model.unique_nodes(names)
        kwargs = self._extract_kwargs(model)
        key = {"model": self._model_id(model), "data": self._data_ids[task][split],
               "layers": nodes, "pooling": pooling, "jitter": True,
               "extract": {k: v for k, v in kwargs.items() if k != "batch_size"},
               "compute": compute.precision_id()}
        images = self.task(task).images[split]

        def run() -> dict[str, np.ndarray]:
            parts = self._chunked(
                images, model, f"features {task}/{split} {model.name}",
                lambda x: features.extract(model.module, x, nodes, pooling=pooling,
                                           progress=False, **kwargs))
            return {n: np.concatenate([p[n] for p in parts]) if parts
                    else np.zeros((0, 0), np.float32) for n in nodes}

        feats = self.cache.get_or_compute("features", key, run, codec="arrays")
        return {**feats, **{alias: feats[name] for alias, name in aliases.items()}}

    def features(self, rep: Representation, source: str, task: str, split: str,
                 seed: int) -> np.ndarray:
        """Raw jitter-averaged features of one split at `rep.layer` (see `extraction_layers`)."""
        self.task(task)
        model = self.load(rep, source)
        names = list(extraction_layers(model.layers, rep.layer, self._is_standard(rep, source)))
        return self._features(model, task, split, names, rep.pooling)[rep.layer]

    def patches(self, rep: Representation, task: str, split: str, seed: int,
                boxes: np.ndarray) -> np.ndarray:
        """Raw features (N, P, D) of the sub-patches `boxes` of each image of a split."""
        model = self.load(rep, rep.source)
        kwargs = self._extract_kwargs(model)
        node = model.layers[rep.layer]
        parts = self._chunked(
            self.task(task).images[split], model, f"patches {task}/{split} {model.name}",
            lambda x: features.extract_patches(model.module, x, node, boxes,
                                               pooling=rep.pooling, progress=False, **kwargs))
        return np.concatenate(parts)

    # ------------------------------------------------------------------ factor levels

    def depth_levels(self, depths: Sequence[int]) -> list[Level]:
        return depth_levels(depths)

    def optimized_stages(self, paper: dict[str, Stage]) -> dict[str, Stage]:
        # torchvision's networks offer one-factor changes of the standard only.
        return {"candidates": lambda study, task, rep: optimized_candidates(study, task)}


class RealStudy(Study):
    """A `Study` over a `RealBackend` (same arguments); its weights, `resolve`, `model` and
    `view` are the backend's."""

    def __init__(self, data_root: str | os.PathLike, weights: RealWeights | str = "imagenet",
                 **kwargs) -> None:
        super().__init__(RealBackend(data_root, weights, **kwargs))

    @classmethod
    def from_params(cls, params, progress: bool = True) -> RealStudy:
        """The study of a notebook's checked parameters (data_root, weights, tasks).

        An empty data_root means $TRANSFERLAB_DATA; empty weights, torchvision's ImageNet ones.
        """
        root = params.data_root or os.environ.get("TRANSFERLAB_DATA", "")
        if not root:
            raise ValueError("profile='real' needs data_root (or $TRANSFERLAB_DATA): the folder "
                             "holding the datasets, e.g. data_root=/data with /data/flowers-102")
        return cls(root, params.weights or "imagenet", tasks=params.tasks, progress=progress)

    @property
    def weights(self) -> RealWeights:
        return self.backend.weights

    def resolve(self, rep: Representation, source: str) -> tuple[str, str]:
        return self.backend.resolve(rep, source)

    def model(self, rep: Representation, source: str) -> RealModel:
        return self.backend.load(rep, source)

    def view(self, images: np.ndarray, model: RealModel) -> np.ndarray:
        return self.backend.view(images, model)


def study_from_params(params, progress: bool = True) -> RealStudy:
    """The real profile's entry in `transferlab.backends.REGISTERED`."""
    return RealStudy.from_params(params, progress=progress)


# ------------------------------------------------------------------ Table 6


def optimized_candidates(study: Study, task: str) -> list[Representation]:
    """Table 6's candidate settings on the real profile, one factor away from the standard.

    Sources whose weights were given (hybrid, concat with scenes), VGG-16 (the table's depth
    16), the last layers (FC8 .. FC6, and conv5 for retrieval, pooled 1x1 / 2x2 / 3x3 as the
    table's retrieval columns), PCA for retrieval, spatial search for the landmark sets.
    """
    kind = study.task_spec(task).kind
    weights = study.backend.weights
    cands: list[Representation] = []
    if weights.hybrid:
        cands.append(replace(STANDARD, source="hybrid"))
    if weights.scenes:
        cands.append(replace(STANDARD, source="concat"))
    cands.append(replace(STANDARD, depth=13))
    cands += [replace(STANDARD, layer=layer) for layer in ("fc7", "fc8")]
    if kind == "retrieval":
        cands += [replace(STANDARD, layer="conv5", pooling=p) for p in (1, 2, 3)]
        cands += [replace(STANDARD, pca_dim=d) for d in (128, 256, 512)]
        if study.task_spec(task).distance_rank >= 15:  # Oxford / Paris: partial views
            cands.append(replace(STANDARD, spatial=True))
    return cands
