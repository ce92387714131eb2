"""The study: representations x tasks -> one tidy results table.

A `Representation` names everything the paper varies: the source network (source task,
width, depth, source-data fraction, checkpoint), the layer and its pooling, PCA, spatial
search for retrieval, and fine-tuning. `Study` trains or loads the networks, extracts and
caches features, scores each task with the paper's probes and metrics, and returns rows
in the results schema (transferlab.results) with bootstrap intervals on the test split
and cross-validated scores on the training split (for Table 6's choices).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import architecture, compute, features, results, retrieval, scoring, training
from .cache import Cache
from .finetune import FinetuneConfig, finetune
from .profiles import Profile, get_profile
from .progress import part as progress_part
from .progress import span as progress_span
from .tasks import VALIDATION_SPLIT, RetrievalTruth, TaskData, TaskSpec
from .world import (
    EXTRA_SPLITS,
    SOURCES,
    TARGETS,
    TASKS,
    WorldConfig,
    data_id,
    load_split,
    load_task,
    validation_truth,
)

REPRESENTATION_SOURCES = SOURCES + ("concat",)


# How many trained networks (each with every snapshot's weights) and models a backend keeps
# in memory: a plan's worker meets every network, and with all of them kept the quick
# profile's process tree peaked at 5.6 GiB; reloading one from the cache is quick.
KEEP_NETWORKS = 3  # concat reads two at once
KEEP_MODELS = 4


def _keep(store: OrderedDict, key: Any, value: Any, keep: int) -> None:
    """Add `value` to an insertion-ordered store, dropping the oldest beyond `keep`."""
    store[key] = value
    while len(store) > keep:
        store.popitem(last=False)


def scored_splits(data: TaskData) -> list[str]:
    """The splits a score reads: all but the validation split (Table 6's choice of
    fine-tuning reads that one, through `Study.validation_score`)."""
    return [s for s in data.images if s != VALIDATION_SPLIT]
# "scratch": the same network trained on the target's own training split from its random
# initialisation (snapshot 0), every layer at the source's learning rate: the baseline that
# tells what transfer adds over learning the task alone.
FT_MODES = (None, "target", "target+extra", "scratch")
# The fine-tunes whose learning rate is chosen on the validation split (scratch training
# takes the source's).
TUNED_MODES = ("target", "target+extra")
FC_LAYERS = ("fc6", "fc7", "fc8")


class Unavailable(ValueError):
    """A level this study's backend cannot produce (e.g. other widths of torchvision's AlexNet).

    A bad request for the one who asked for it; for a batch run of every notebook, the
    sign that a notebook does not apply to this profile (the runner skips it and says why).
    """


@dataclass(frozen=True)
class Representation:
    """One point of the paper's factor space. Defaults are the paper's Deep Standard."""

    source: str = "objects"
    width: str = "medium"
    depth: int = 5
    fraction: float = 1.0
    checkpoint: int | None = None  # index into the log-spaced snapshots; None = final
    layer: str = "fc6"
    pooling: int = 1
    pca_dim: int | None = None
    spatial: bool = False
    finetune: str | None = None
    # The fine-tune's learning rate; None: chosen on the task's validation split among the
    # profile's `finetune_lrs` (Study.tuned), or the profile's own where it offers no choice.
    finetune_lr: float | None = None

    def __post_init__(self) -> None:
        if self.source not in REPRESENTATION_SOURCES:
            raise ValueError(f"source={self.source!r} is not one of {REPRESENTATION_SOURCES}")
        if self.width not in architecture.WIDTHS:
            raise ValueError(f"width={self.width!r} is not one of {architecture.WIDTHS}")
        if isinstance(self.depth, bool) or self.depth not in architecture.DEPTHS:
            raise ValueError(f"depth={self.depth!r} is not one of {architecture.DEPTHS}")
        if isinstance(self.fraction, bool) or not 0 < self.fraction <= 1:
            raise ValueError(f"fraction={self.fraction!r} must be in (0, 1]")
        object.__setattr__(self, "fraction", float(self.fraction))  # 1 and 1.0: one cache key
        if self.checkpoint is not None and (isinstance(self.checkpoint, bool)
                                            or not isinstance(self.checkpoint, int)
                                            or self.checkpoint < 0):
            raise ValueError(f"checkpoint={self.checkpoint!r} must be None or a snapshot index >= 0")
        architecture.check_layer(architecture.NetConfig(depth=self.depth), self.layer)
        if self.pooling not in (1, 2, 3):
            raise ValueError(f"pooling={self.pooling!r} is not one of (1, 2, 3)")
        if self.pca_dim is not None and (isinstance(self.pca_dim, bool)
                                         or not isinstance(self.pca_dim, int) or self.pca_dim < 1):
            raise ValueError(f"pca_dim={self.pca_dim!r} must be a positive integer or None")
        if self.spatial and self.source == "concat":
            raise ValueError("spatial=True is not supported with source='concat'; "
                             f"use one of {SOURCES}")
        if self.finetune not in FT_MODES:
            raise ValueError(f"finetune={self.finetune!r} is not one of {FT_MODES}")
        if self.finetune_lr is not None and (
                self.finetune not in TUNED_MODES or isinstance(self.finetune_lr, bool)
                or not isinstance(self.finetune_lr, (int, float)) or not self.finetune_lr > 0):
            raise ValueError(f"finetune_lr={self.finetune_lr!r} must be None or a learning rate "
                             f"> 0 with finetune in {TUNED_MODES}")

    @property
    def sources(self) -> tuple[str, ...]:
        """The source networks whose features make this representation (concat: two)."""
        return ("objects", "scenes") if self.source == "concat" else (self.source,)

    def label(self) -> str:
        parts = [self.source, self.width, f"d{self.depth}", self.layer]
        if self.fraction != 1:
            parts.append(f"data{self.fraction:g}")
        if self.checkpoint is not None:
            parts.append(f"ckpt{self.checkpoint}")
        if self.layer.startswith("conv"):
            parts.append(f"pool{self.pooling}")
        if self.pca_dim:
            parts.append(f"pca{self.pca_dim}")
        if self.spatial:
            parts.append("spatial")
        if self.finetune:
            parts.append(f"ft:{self.finetune}")
        if self.finetune_lr:
            parts.append(f"lr{self.finetune_lr:g}")
        return "/".join(parts)

    def key(self) -> dict:
        """What names this representation in a cache key: its fields, less those added since
        the cache was made while they are unset (so that older entries stay valid)."""
        values = asdict(self)
        if values["finetune_lr"] is None:
            del values["finetune_lr"]
        return values


STANDARD = Representation()
# The world card's baselines: the standard network at its random initialisation (snapshot
# 0), and the same network trained from scratch on the target's own training split.
RANDOM_INIT = replace(STANDARD, checkpoint=0)
SCRATCH = replace(STANDARD, finetune="scratch")


@dataclass(frozen=True)
class Level:
    """One level of a factor: its label, its position on the axis, its representation."""

    label: str
    index: int
    rep: Representation


def depth_levels(depths: Sequence[int], base: Representation = STANDARD) -> list[Level]:
    """The depth factor's levels: `base` at each depth (a backend's own `Representation`
    subclass when its depths are not the world's)."""
    return [Level(str(d), int(d), replace(base, depth=int(d))) for d in depths]


def extraction_layers(order: Sequence[str], layer: str, standard: bool) -> tuple[str, ...]:
    """Layers to extract in one forward pass; entries are shared across notebooks.

    The standard network gives every layer (the layer notebook and Table 6 both need its
    conv layers); other networks give their FC layers plus the one asked for.
    """
    wanted = set(FC_LAYERS) | {layer}
    return tuple(name for name in order if standard or name in wanted)


def check_tasks(tasks: Sequence[str], allowed: Sequence[str] = TARGETS) -> tuple[str, ...]:
    if isinstance(tasks, str):
        raise ValueError(f"tasks={tasks!r} must be a list of task names, not a string")
    bad = [t for t in tasks if t not in allowed]
    if bad:
        raise ValueError(f"tasks {bad} are not target tasks; valid tasks: {list(allowed)}")
    return tuple(tasks)


# A stage of Table 6's search: (study, task, setting so far) -> its variations.
Stage = Callable[["Study", str, Representation], list[Representation]]


@dataclass(frozen=True)
class Offers:
    """What a backend can do beyond scoring representations of its networks.

    trains_networks: its source networks are trained here (steps, top-1, the network tables);
    finetunes: it can fine-tune a network on a target task (Tables 4 and 5, scratch);
    world_card: its tasks are the embedded world's (galleries, raw pixels, rank reasons).
    """

    trains_networks: bool
    finetunes: bool
    world_card: bool


class Backend(Protocol):
    """Where a `Study`'s tasks and networks come from: the embedded world (`WorldBackend`) or
    torchvision (`transferlab.real.study.RealBackend`). `Study` does the rest -- post-process,
    probe or retrieval, metric, bootstrap, the cache of scores and the results rows.

    A level it cannot produce raises `Unavailable` from `check` (before any compute).
    `data_id` and `model_id` (the id `model` returns with the network) are what identify
    scores and sub-patch features in cache keys, so they must change whenever the images or
    the weights do; `model_id` is asked first, so a warm run need not load any network.
    """

    profile: Profile
    cache: Cache
    progress: bool
    offers: Offers

    # tasks
    def check_tasks(self, tasks: Sequence[str]) -> tuple[str, ...]: ...
    def default_tasks(self) -> tuple[str, ...]: ...
    def task_spec(self, name: str) -> TaskSpec: ...
    def task(self, name: str) -> TaskData: ...
    def data_id(self, task: str, split: str | None = None) -> dict: ...
    def validation_truth(self, task: str) -> RetrievalTruth | None: ...

    # networks
    def check(self, rep: Representation) -> None: ...
    def model_id(self, rep: Representation, source: str, task: str, seed: int) -> dict: ...
    def model(self, rep: Representation, source: str, task: str, seed: int) -> tuple[dict, Any]: ...
    def source_accuracy(self, source: str, rep: Representation, seed: int) -> float: ...
    def checkpoint_iterations(self, seed: int, rep: Representation) -> list[int]: ...
    def weights_name(self, rep: Representation) -> str | None: ...

    # features (raw: before post-processing)
    def feature_dim(self, rep: Representation) -> int: ...
    def features(self, rep: Representation, source: str, task: str, split: str,
                 seed: int) -> np.ndarray: ...
    def patches(self, rep: Representation, task: str, split: str, seed: int,
                boxes: np.ndarray) -> np.ndarray: ...

    # the factor levels it offers
    def depth_levels(self, depths: Sequence[int]) -> list[Level]: ...
    def optimized_stages(self, paper: dict[str, Stage]) -> dict[str, Stage]: ...


def representation_dim(rep: Representation, n_classes: int, input_size: int) -> int:
    """Dimension of one source network's features at `rep.layer` (before PCA)."""
    cfg = architecture.NetConfig(width=rep.width, depth=rep.depth, n_classes=n_classes,
                             input_size=input_size)
    units = architecture.output_shapes(cfg)[rep.layer][0]
    return units * rep.pooling ** 2 if rep.layer.startswith("conv") else units


class Study:
    """Scores representations of a backend's networks on its tasks, all through one cache.

    `backend`: a `Backend`, or a profile (name) of the embedded world (`WorldBackend`).
    """

    def __init__(self, backend: Backend | Profile | str = "quick", cache: Cache | None = None,
                 progress: bool = True) -> None:
        if isinstance(backend, (str, Profile)):
            backend = WorldBackend(backend, cache=cache, progress=progress)
        elif cache is not None:
            raise ValueError("cache= is for a profile name; a backend brings its own cache")
        self.backend = backend

    @property
    def profile(self) -> Profile:
        return self.backend.profile

    @property
    def cache(self) -> Cache:
        return self.backend.cache

    @property
    def progress(self) -> bool:
        return self.backend.progress

    # The embedded world's own (WorldBackend): its config, input size and trained networks,
    # which the world card, the plan and the notebooks' network tables read.
    @property
    def world(self) -> WorldConfig:
        return self.backend.world

    @property
    def input_size(self) -> int:
        return self.backend.input_size

    def network(self, source: str, width: str = "medium", depth: int = 5, fraction: float = 1.0,
                seed: int = 0) -> training.TrainedNet:
        return self.backend.network(source, width, depth, fraction, seed)

    # ------------------------------------------------------------------ the backend's

    def check_tasks(self, tasks: Sequence[str]) -> tuple[str, ...]:
        return self.backend.check_tasks(tasks)

    def default_tasks(self) -> tuple[str, ...]:
        return self.backend.default_tasks()

    def task_spec(self, name: str) -> TaskSpec:
        return self.backend.task_spec(name)

    def task(self, name: str) -> TaskData:
        return self.backend.task(name)

    def check(self, rep: Representation) -> None:
        """Fail before any compute if the backend cannot produce `rep`."""
        self.backend.check(rep)

    def feature_dim(self, rep: Representation = STANDARD) -> int:
        return self.backend.feature_dim(rep)

    def source_accuracy(self, source: str, rep: Representation = STANDARD, seed: int = 0) -> float:
        """Top-1 accuracy (%) of a source network on its own test split (NaN: unknown)."""
        return self.backend.source_accuracy(source, rep, seed)

    def checkpoint_iterations(self, seed: int = 0, rep: Representation = STANDARD) -> list[int]:
        return self.backend.checkpoint_iterations(seed, rep)

    def _model(self, rep: Representation, source: str, task: str, seed: int) -> tuple[dict, Any]:
        """(model_id, model) behind `rep` for one source (the plan runs fine-tunes through it)."""
        return self.backend.model(self.tuned(rep, task, seed), source, task, seed)

    def tuned(self, rep: Representation, task: str, seed: int = 0) -> Representation:
        """`rep` with its fine-tune's learning rate set: the best of the profile's
        `finetune_lrs` on the task's validation split (the probe fitted on the training split,
        as for the test score), the lowest on a tie. The paper: fine-tuning "with careful
        selection of parameters ... is always at least marginally helpful" (section 3.2.3).
        `rep` as it is where nothing is to choose: no fine-tune to tune, its rate already set,
        fewer than two rates offered, or no validation split."""
        lrs = self.profile.finetune_lrs
        if (rep.finetune not in TUNED_MODES or rep.finetune_lr is not None or len(lrs) < 2
                or VALIDATION_SPLIT not in self.task(task).images):
            return rep
        candidates = [replace(rep, finetune_lr=lr) for lr in lrs]
        scores = []
        for i, c in enumerate(candidates):
            with progress_part(i, len(candidates)):  # one fine-tune per rate
                scores.append(self.validation_score(c, task, seed))
        return candidates[int(np.argmax(scores))]

    # ------------------------------------------------------------------ features

    def raw_features(self, rep: Representation, task: str, split: str, seed: int) -> np.ndarray:
        """Jitter-averaged features of one split at `rep.layer`, post-processed per source
        (concat: the two sources side by side)."""
        rep = self.tuned(rep, task, seed)
        parts = []
        for i, source in enumerate(rep.sources):
            with progress_part(i, len(rep.sources)):  # concat: one extraction per source
                parts.append(features.postprocess(
                    self.backend.features(rep, source, task, split, seed)))
        return parts[0] if len(parts) == 1 else features.concat(*parts)

    def split_features(self, rep: Representation, task: str, seed: int) -> dict[str, np.ndarray]:
        """Post-processed features of every scored split of a task (not the validation one);
        progress is reported by images, across the splits."""
        data = self.task(task)
        splits = scored_splits(data)
        sizes = [len(data.images[s]) for s in splits]
        total, done, out = max(sum(sizes), 1), 0, {}
        for split, size in zip(splits, sizes, strict=True):
            with progress_span(done / total, (done + size) / total):
                out[split] = self.raw_features(rep, task, split, seed)
            done += size
        return out

    def _patches(self, rep: Representation, data: TaskData, split: str,
                 seed: int) -> np.ndarray:
        """Post-processed features (N, 30, D) of the spatial-search sub-patches of a split."""
        task = data.spec.name
        rep = self.tuned(rep, task, seed)
        model_id = self.backend.model_id(rep, rep.source, task, seed)
        key = {"model": model_id, **self.backend.data_id(task, split),
               "layer": rep.layer, "pooling": rep.pooling, "compute": compute.precision_id()}
        boxes = retrieval.subpatch_boxes()
        x = self.cache.get_or_compute(
            "patches", key,
            lambda: {"x": self.backend.patches(rep, task, split, seed, boxes)})["x"]
        return features.postprocess(x, in_place=True)  # the cache's copy, ours alone

    # ------------------------------------------------------------------ scoring

    def evaluate(self, rep: Representation, task: str, seed: int = 0) -> dict[str, float]:
        """score, bootstrap interval (test split) and cross-validated score (train split).

        Cached (kind "scores"): a warm re-run of a notebook fits no probe again.
        """
        return self.cache.get_or_compute("scores", self.score_config(rep, task, seed),
                                         lambda: self._evaluate(rep, task, seed), codec="json")

    def score_config(self, rep: Representation, task: str, seed: int) -> dict:
        """What a score's cache key is made of: the weights behind `rep` (named, not loaded),
        the task's data, the representation, the probe and the bootstrap."""
        return {"models": [self.backend.model_id(rep, s, task, seed) for s in rep.sources],
                **self.backend.data_id(task), "rep": rep.key(), "seed": seed,
                "probe": asdict(replace(self.profile.probe, seed=seed)),
                "n_boot": self.profile.n_boot}

    def _evaluate(self, rep: Representation, task: str, seed: int) -> dict[str, float]:
        data = self.task(task)
        if rep.spatial:  # every image is its 30 sub-patches; whitening is fitted on train patches
            x = {s: self._patches(rep, data, s, seed) for s in scored_splits(data)}
        else:
            x = self.split_features(rep, task, seed)
        return scoring.score(data, x, self.profile.probe, self.profile.n_boot, seed, rep.pca_dim,
                             self.validation_truth(task))

    def validation_score(self, rep: Representation, task: str, seed: int = 0) -> float:
        """Score of `rep` on the task's validation split, the probe fitted on the training
        split as for the test score: what Table 6's search chooses fine-tuning by. NaN where
        the task has no validation split. Cached (kind "scores", keyed as `evaluate` plus the
        split scored)."""
        if VALIDATION_SPLIT not in self.task(task).images:
            return float("nan")
        rep = self.tuned(rep, task, seed)
        config = {**self.score_config(rep, task, seed), "scored_split": VALIDATION_SPLIT}
        return self.cache.get_or_compute("scores", config, lambda: self._validate(rep, task, seed),
                                         codec="json")["score"]

    def _validate(self, rep: Representation, task: str, seed: int) -> dict[str, float]:
        data = self.task(task)
        held_out = TaskData(data.spec, {"train": data.images["train"],
                                        "test": data.images[VALIDATION_SPLIT]},
                            {"train": data.labels["train"], "test": data.labels[VALIDATION_SPLIT]})
        x = {"train": self.raw_features(rep, task, "train", seed),
             "test": self.raw_features(rep, task, VALIDATION_SPLIT, seed)}
        return scoring.score(held_out, x, self.profile.probe, self.profile.n_boot, seed,
                             rep.pca_dim)

    def validation_truth(self, task: str) -> RetrievalTruth | None:
        """A retrieval task's validation set (its train split's pairs of views), asked of the
        backend; None for a classification task, whose probe cross-validates on its own."""
        if self.task_spec(task).kind != "retrieval":
            return None
        return self.backend.validation_truth(task)

    # ------------------------------------------------------------------ grids

    def run(self, factor: str, levels: Sequence[Level], tasks: Sequence[str] | None = None,
            seeds: Sequence[int] = ()) -> pd.DataFrame:
        """Score every (level, task, seed); one results row each (tasks=None: the defaults).

        Every level and task is checked before any computation starts. Rows name the
        weights behind their level where the backend does (the `weights` column).
        """
        tasks = self.check_tasks(self.default_tasks() if tasks is None else tasks)
        if not tasks:
            raise ValueError(f"no tasks to run for factor {factor!r}")
        seeds = tuple(seeds or self.profile.seeds)
        for lv in levels:
            self.check(lv.rep)
        rows = []
        jobs = [(lv, t, s) for s in seeds for lv in levels for t in tasks]
        bar = tqdm(jobs, desc=f"{factor}", disable=not self.progress, unit="eval")
        for lv, task, seed in bar:
            bar.set_postfix_str(f"{lv.label} | {task}")
            out = self.evaluate(lv.rep, task, seed)
            spec = self.task_spec(task)
            rows.append({"factor": factor, "level": lv.label, "level_index": lv.index,
                         "layer": lv.rep.layer, "task": task, "group": spec.group, "domain": spec.domain,
                         "distance_rank": spec.distance_rank,
                         "metric": spec.metric, "seed": seed,
                         "representation": lv.rep.label(), **out})
        table = results.frame(rows)
        names = {lv.label: self.backend.weights_name(lv.rep) for lv in levels}
        if any(name is not None for name in names.values()):
            table = results.validate(table.assign(weights=table.level.map(names)))
        return table


class WorldBackend:
    """The embedded world: tasks rendered from a profile's `WorldConfig`, source networks
    trained on its source tasks (and fine-tuned on its targets), all cached."""

    offers = Offers(trains_networks=True, finetunes=True, world_card=True)

    def __init__(self, profile: Profile | str = "quick", cache: Cache | None = None,
                 progress: bool = True) -> None:
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.cache = cache if cache is not None else Cache()
        self.progress = progress
        # Networks (every snapshot's weights) and models are kept for reuse, a few at a time:
        # a worker of the plan meets every network, and loading one from the cache is quick.
        self._models: OrderedDict = OrderedDict()
        self._networks: OrderedDict = OrderedDict()
        self._network_keys: dict[tuple, str] = {}
        self._tasks: dict[str, TaskData] = {}

    @property
    def world(self) -> WorldConfig:
        return self.profile.world

    @cached_property
    def input_size(self) -> int:
        return architecture.crop_size(self.world.size)

    # ------------------------------------------------------------------ tasks

    def check_tasks(self, tasks: Sequence[str]) -> tuple[str, ...]:
        return check_tasks(tasks)

    def default_tasks(self) -> tuple[str, ...]:
        return self.profile.tasks

    def task_spec(self, name: str) -> TaskSpec:
        return TASKS[name]

    def task(self, name: str) -> TaskData:
        if name not in self._tasks:
            self._tasks[name] = load_task(name, self.world, self.cache)
        return self._tasks[name]

    def data_id(self, task: str, split: str | None = None) -> dict:
        return data_id(task, self.world, split)

    def validation_truth(self, task: str) -> RetrievalTruth | None:
        """The train split as a retrieval set (pairs of views of other instances)."""
        return validation_truth(task, self.world)

    # ------------------------------------------------------------------ networks

    def check(self, rep: Representation) -> None:
        """Nothing to check: `Representation` admits only levels the world can train."""

    def network(self, source: str, width: str = "medium", depth: int = 5, fraction: float = 1.0,
                seed: int = 0) -> training.TrainedNet:
        """The source network, trained once and then loaded from the cache (once per backend)."""
        key = (source, width, depth, fraction, seed)
        if key not in self._networks:
            images, labels = load_split(source, "train", self.world, self.cache)
            net_cfg, train_cfg = self.network_configs(source, width, depth, fraction, seed)
            _keep(self._networks, key, training.train(
                net_cfg, train_cfg, images, labels, data_id=data_id(source, self.world, "train"),
                cache=self.cache, progress=self.progress), KEEP_NETWORKS)
        self._networks.move_to_end(key)
        return self._networks[key]

    def network_configs(self, source: str, width: str, depth: int, fraction: float,
                        seed: int) -> tuple[architecture.NetConfig, training.TrainConfig]:
        """The architecture and training of a source network (the profile's, at this level)."""
        net_cfg = architecture.NetConfig(width=width, depth=depth, n_classes=TASKS[source].n_classes,
                                     input_size=self.input_size)
        return net_cfg, replace(self.profile.train, seed=seed, data_fraction=fraction)

    def network_key(self, source: str, width: str = "medium", depth: int = 5,
                    fraction: float = 1.0, seed: int = 0) -> str:
        """The cache key of a source network's training run, known before it is trained: what
        names its weights in the keys of its features and scores (so a warm run loads none)."""
        args = (source, width, depth, fraction, seed)
        if args not in self._network_keys:  # every score's key asks for it
            net_cfg, train_cfg = self.network_configs(*args)
            self._network_keys[args] = training.run_key(net_cfg, train_cfg,
                                                        data_id(source, self.world, "train"))
        return self._network_keys[args]

    def planned_iterations(self) -> list[int] | None:
        """The snapshot iterations of every source network, known without training when the
        profile trains by steps (None: only a trained network knows them)."""
        train = self.profile.train
        return None if train.steps is None else train.snapshot_iterations(train.steps)

    def network_log(self, source: str, rep: Representation = STANDARD, seed: int = 0) -> dict:
        """A source network's snapshot iterations and training log (steps, seconds), cached
        apart from its weights so that the network tables load no network on a warm run."""
        def compute() -> dict:
            net = self.network(source, rep.width, rep.depth, rep.fraction, seed)
            return {"iterations": sorted(net.checkpoints), "log": net.log}

        key = {"network": self.network_key(source, rep.width, rep.depth, rep.fraction, seed)}
        return self.cache.get_or_compute("network_log", key, compute, codec="json")

    def source_accuracy(self, source: str, rep: Representation = STANDARD, seed: int = 0) -> float:
        """Top-1 (%) on the source's test split; cached (the network tables of every notebook
        that trains a network per level read it on each run)."""
        model_id = self.model_id(replace(rep, finetune=None), source, source, seed)

        def compute() -> dict:
            net = self.network(source, rep.width, rep.depth, rep.fraction, seed)
            x, y = load_split(source, "test", self.world, self.cache)
            return {"top1": 100 * training.accuracy(net.model(model_id["iteration"]), x, y)}

        key = {**model_id, **data_id(source, self.world, "test")}
        # its own kind: a small evaluation the notebooks make, not one of the plan's units
        return self.cache.get_or_compute("source_top1", key, compute, codec="json")["top1"]

    @staticmethod
    def _iteration(its: Sequence[int], checkpoint: int | None) -> int | None:
        if checkpoint is None:
            return None
        if not 0 <= checkpoint < len(its):
            raise ValueError(f"checkpoint={checkpoint!r} must be in 0..{len(its) - 1} "
                             f"(the network has {len(its)} snapshots: iterations {list(its)})")
        # The last snapshot is the final network: same weights, same cache entries.
        return None if checkpoint == len(its) - 1 else its[checkpoint]

    def checkpoint_iterations(self, seed: int = 0, rep: Representation = STANDARD) -> list[int]:
        planned = self.planned_iterations()
        if planned is not None:
            return planned
        return self.network_log(rep.source, rep, seed)["iterations"]

    def weights_name(self, rep: Representation) -> None:
        return None  # the world's own networks: results keep the schema's default

    def model_id(self, rep: Representation, source: str, task: str, seed: int) -> dict:
        """What names the weights behind `rep` for `source`: the training run's own cache key
        (configs, data, code), the snapshot, and the fine-tune if any. No network is loaded."""
        its = self.checkpoint_iterations(seed, replace(rep, source=source))
        model_id = {"network": self.network_key(source, rep.width, rep.depth, rep.fraction, seed),
                    "iteration": self._iteration(its, rep.checkpoint)}
        if rep.finetune:
            model_id |= {"finetune": rep.finetune, "task": task,
                         "ft": asdict(self._finetune_config(rep))}
            if rep.finetune in TUNED_MODES and rep.finetune_lr is None and len(
                    self.profile.finetune_lrs) > 1:
                model_id["lr_chosen_from"] = list(self.profile.finetune_lrs)  # Study.tuned
        return model_id

    def _finetune_config(self, rep: Representation) -> FinetuneConfig:
        if rep.finetune_lr is None:
            return self.profile.finetune
        return replace(self.profile.finetune, lr=rep.finetune_lr)

    def model(self, rep: Representation, source: str, task: str, seed: int):
        """(model_id, model) of the network behind `rep` (fine-tuned on `task` if asked)."""
        model_id = self.model_id(rep, source, task, seed)
        key = repr(sorted(model_id.items(), key=lambda kv: kv[0]))
        if key not in self._models:
            net = self.network(source, rep.width, rep.depth, rep.fraction, seed)
            if rep.finetune:
                model = self._finetuned(net, rep, task, seed)
            else:
                model = net.model(model_id["iteration"])
            _keep(self._models, key, model, KEEP_MODELS)
        self._models.move_to_end(key)
        return model_id, self._models[key]

    def _finetuned(self, net: training.TrainedNet, rep: Representation, task: str, seed: int):
        spec = TASKS[task]
        x, y = self.task(task).split("train")
        cfg = replace(self._finetune_config(rep), seed=seed)
        if rep.finetune == "scratch":
            if spec.kind == "retrieval":
                raise ValueError(f"training from scratch needs training labels; {task!r} is "
                                 "a retrieval task")
            if 0 not in net.checkpoints:
                raise Unavailable("training from scratch starts from the network's random "
                                  "initialisation: the profile keeps no snapshot at step 0")
            cfg = replace(cfg, lr=self.profile.train.lr, head_lr_mult=1.0, frozen_bn=False)
            state = finetune(net.net_cfg, net.checkpoints[0], x, scoring.trainable_labels(y),
                             spec.n_classes, cfg, data_id={**data_id(task, self.world),
                                                           "extra": None},
                             cache=self.cache, progress=self.progress)
            return training.load(replace(net.net_cfg, n_classes=spec.n_classes), state)
        if spec.kind != "single-label":
            raise ValueError(f"fine-tuning is for single-label tasks; {task!r} is {spec.kind}")
        extra = None
        if rep.finetune == "target+extra":
            if task not in EXTRA_SPLITS:
                raise ValueError(f"no extra data is defined for {task!r}; tasks with extra data: "
                                 f"{list(EXTRA_SPLITS)}")
            extra = load_split(task, EXTRA_SPLITS[task], self.world, self.cache)
        state = finetune(net.net_cfg, net.state, x, y, spec.n_classes, cfg, extra=extra,
                         data_id={**data_id(task, self.world), "extra": rep.finetune},
                         cache=self.cache, progress=self.progress)
        ft_cfg = replace(net.net_cfg, n_classes=spec.n_classes)
        return training.load(ft_cfg, state)

    # ------------------------------------------------------------------ features

    def feature_dim(self, rep: Representation = STANDARD) -> int:
        """Dimension of `rep`'s features: a conv layer's channels x its pooling grid, an FC
        layer's units (fc8: the source's classes), summed over concatenated sources."""
        return sum(representation_dim(rep, TASKS[s].n_classes, self.input_size)
                   for s in rep.sources)

    def features(self, rep: Representation, source: str, task: str, split: str,
                 seed: int) -> np.ndarray:
        """Raw jitter-averaged features at `rep.layer` (one cache entry per network, split
        and pooling holds every layer `extraction_layers` names)."""
        model_id = self.model_id(rep, source, task, seed)
        images, _ = self.task(task).split(split)
        order = architecture.layer_names(architecture.NetConfig(depth=rep.depth))
        standard = replace(rep, layer="fc6", pooling=1, pca_dim=None, spatial=False) == STANDARD
        feats = features.features(model_id, lambda: self.model(rep, source, task, seed)[1],
                                  images, data_id(task, self.world, split),
                                  extraction_layers(order, rep.layer, standard), rep.pooling,
                                  self.cache, progress=False)
        return feats[rep.layer]

    def patches(self, rep: Representation, task: str, split: str, seed: int,
                boxes: np.ndarray) -> np.ndarray:
        _, model = self.model(rep, rep.source, task, seed)
        images, _ = self.task(task).split(split)
        return features.extract_patches(model, images, rep.layer, boxes, pooling=rep.pooling,
                                        progress=False)

    # ------------------------------------------------------------------ factor levels

    def depth_levels(self, depths: Sequence[int]) -> list[Level]:
        return depth_levels(depths)

    def optimized_stages(self, paper: dict[str, Stage]) -> dict[str, Stage]:
        return paper  # every factor's levels can be trained: the paper's staged search
