"""The study: representations x tasks -> one tidy results table.

A `Representation` names everything the paper varies: the source network (source task,
width, depth, source-data fraction, checkpoint), the layer and its pooling, PCA, spatial
search for retrieval, and fine-tuning. `Study` trains or loads the networks, extracts and
caches features, scores each task with the paper's probes and metrics, and returns rows
in the results schema (transferlab.results) with bootstrap intervals on the test split
and cross-validated scores on the training split (for Table 6's choices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import compute, features, metrics, networks, results, retrieval, training
from .cache import Cache
from .finetune import finetune
from .probes import LinearProbe
from .profiles import Profile, get_profile
from .tasks import RetrievalTruth, TaskData
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
# "scratch": the same network trained on the target's own training split from its random
# initialisation (snapshot 0), every layer at the source's learning rate: the baseline that
# tells what transfer adds over learning the task alone.
FT_MODES = (None, "target", "target+extra", "scratch")
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

    def __post_init__(self) -> None:
        if self.source not in REPRESENTATION_SOURCES:
            raise ValueError(f"source={self.source!r} is not one of {REPRESENTATION_SOURCES}")
        if self.width not in networks.WIDTHS:
            raise ValueError(f"width={self.width!r} is not one of {networks.WIDTHS}")
        if isinstance(self.depth, bool) or self.depth not in networks.DEPTHS:
            raise ValueError(f"depth={self.depth!r} is not one of {networks.DEPTHS}")
        if isinstance(self.fraction, bool) or not 0 < self.fraction <= 1:
            raise ValueError(f"fraction={self.fraction!r} must be in (0, 1]")
        object.__setattr__(self, "fraction", float(self.fraction))  # 1 and 1.0: one cache key
        if self.checkpoint is not None and (isinstance(self.checkpoint, bool)
                                            or not isinstance(self.checkpoint, int)
                                            or self.checkpoint < 0):
            raise ValueError(f"checkpoint={self.checkpoint!r} must be None or a snapshot index >= 0")
        networks.check_layer(networks.NetConfig(depth=self.depth), self.layer)
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
        return "/".join(parts)


STANDARD = Representation()


@dataclass(frozen=True)
class Level:
    """One level of a factor: its label, its position on the axis, its representation."""

    label: str
    index: int
    rep: Representation


def check_tasks(tasks: Sequence[str], allowed: Sequence[str] = TARGETS) -> tuple[str, ...]:
    if isinstance(tasks, str):
        raise ValueError(f"tasks={tasks!r} must be a list of task names, not a string")
    bad = [t for t in tasks if t not in allowed]
    if bad:
        raise ValueError(f"tasks {bad} are not target tasks; valid tasks: {list(allowed)}")
    return tuple(tasks)


class Study:
    """Trains, extracts, probes and scores, all through one cache."""

    def __init__(self, profile: Profile | str = "quick", cache: Cache | None = None,
                 progress: bool = True) -> None:
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.cache = cache if cache is not None else Cache()
        self.progress = progress
        self._models: dict = {}
        self._networks: dict = {}
        self._tasks: dict[str, TaskData] = {}
        compute.configure_threads()

    @property
    def world(self) -> WorldConfig:
        return self.profile.world

    def check_tasks(self, tasks: Sequence[str]) -> tuple[str, ...]:
        return check_tasks(tasks)

    def task_spec(self, name: str):
        return TASKS[name]

    def default_tasks(self) -> tuple[str, ...]:
        return self.profile.tasks

    def check(self, rep: Representation) -> None:
        """Fail before any compute if `rep` cannot be produced (world: checked at construction)."""

    def feature_dim(self, rep: Representation = STANDARD) -> int:
        return networks.NetConfig(width=rep.width, depth=rep.depth).fc6

    @cached_property
    def input_size(self) -> int:
        return networks.crop_size(self.world.size)

    # ------------------------------------------------------------------ data and networks

    def task(self, name: str) -> TaskData:
        if name not in self._tasks:
            self._tasks[name] = load_task(name, self.world, self.cache)
        return self._tasks[name]

    def network(self, source: str, width: str = "medium", depth: int = 5, fraction: float = 1.0,
                seed: int = 0) -> training.TrainedNet:
        """The source network, trained once and then loaded from the cache (once per Study)."""
        key = (source, width, depth, fraction, seed)
        if key not in self._networks:
            self._networks[key] = self._train(source, width, depth, fraction, seed)
        return self._networks[key]

    def _train(self, source: str, width: str, depth: int, fraction: float,
               seed: int) -> training.TrainedNet:
        images, labels = load_split(source, "train", self.world, self.cache)
        net_cfg = networks.NetConfig(width=width, depth=depth, n_classes=TASKS[source].n_classes,
                                     input_size=self.input_size)
        train_cfg = replace(self.profile.train, seed=seed, data_fraction=fraction)
        return training.train(net_cfg, train_cfg, images, labels,
                              data_id=data_id(source, self.world, "train"), cache=self.cache,
                              progress=self.progress)

    def source_accuracy(self, source: str, rep: Representation = STANDARD, seed: int = 0) -> float:
        """Top-1 accuracy (%) of a source network on its own test split."""
        net = self.network(source, rep.width, rep.depth, rep.fraction, seed)
        x, y = load_split(source, "test", self.world, self.cache)
        return 100 * training.accuracy(net.model(self._iteration(net, rep.checkpoint)), x, y)

    @staticmethod
    def _iteration(net: training.TrainedNet, checkpoint: int | None) -> int | None:
        if checkpoint is None:
            return None
        its = sorted(net.checkpoints)
        if not 0 <= checkpoint < len(its):
            raise ValueError(f"checkpoint={checkpoint!r} must be in 0..{len(its) - 1} "
                             f"(the network has {len(its)} snapshots: iterations {its})")
        # The last snapshot is the final network: same weights, same cache entries.
        return None if checkpoint == len(its) - 1 else its[checkpoint]

    def checkpoint_iterations(self, seed: int = 0, rep: Representation = STANDARD) -> list[int]:
        net = self.network(rep.source, rep.width, rep.depth, rep.fraction, seed)
        return sorted(net.checkpoints)

    def _model(self, rep: Representation, source: str, task: str, seed: int):
        """(model_id, model) of the network behind `rep` (fine-tuned on `task` if asked)."""
        net = self.network(source, rep.width, rep.depth, rep.fraction, seed)
        iteration = self._iteration(net, rep.checkpoint)
        # The training run's own cache key identifies the weights (configs, data, code).
        model_id = {"network": net.key, "iteration": iteration}
        if rep.finetune:
            model_id = {**model_id, "finetune": rep.finetune, "task": task,
                        "ft": asdict(self.profile.finetune)}
        key = repr(sorted(model_id.items(), key=lambda kv: kv[0]))
        if key not in self._models:
            if rep.finetune:
                self._models = {}  # fine-tuned models are per task: keep one at a time
                model = self._finetuned(net, rep, task, seed)
            else:
                model = net.model(iteration)
            self._models[key] = model
        return model_id, self._models[key]

    def _finetuned(self, net: training.TrainedNet, rep: Representation, task: str, seed: int):
        spec = TASKS[task]
        x, y = self.task(task).split("train")
        cfg = replace(self.profile.finetune, seed=seed)
        if rep.finetune == "scratch":
            if spec.kind == "retrieval":
                raise ValueError(f"training from scratch needs training labels; {task!r} is "
                                 "a retrieval task")
            if 0 not in net.checkpoints:
                raise Unavailable("training from scratch starts from the network's random "
                                  "initialisation: the profile keeps no snapshot at step 0")
            cfg = replace(cfg, lr=self.profile.train.lr, head_lr_mult=1.0, frozen_bn=False)
            state = finetune(net.net_cfg, net.checkpoints[0], x, trainable_labels(y),
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

    @staticmethod
    def _layers(rep: Representation) -> tuple[str, ...]:
        """Layers to extract in one forward pass; entries are shared across notebooks.

        The standard network gives every layer (the layer notebook and Table 6 both need its
        conv layers); other networks give their FC layers plus the one asked for.
        """
        order = networks.layer_names(networks.NetConfig(depth=rep.depth))
        network_is_standard = replace(rep, layer="fc6", pooling=1, pca_dim=None,
                                      spatial=False) == STANDARD
        if network_is_standard:
            return tuple(order)
        wanted = set(FC_LAYERS) | {rep.layer}
        return tuple(layer for layer in order if layer in wanted)

    def raw_features(self, rep: Representation, task: str, split: str, seed: int) -> np.ndarray:
        """Jitter-averaged features of one split at `rep.layer` (before post-processing)."""
        sources = ("objects", "scenes") if rep.source == "concat" else (rep.source,)
        parts = []
        for source in sources:
            model_id, model = self._model(rep, source, task, seed)
            images, _ = self.task(task).split(split)
            feats = features.features(model_id, model, images,
                                      data_id(task, self.world, split),
                                      self._layers(rep), rep.pooling, self.cache,
                                      progress=False)
            parts.append(features.postprocess(feats[rep.layer]))
        return parts[0] if len(parts) == 1 else features.concat(*parts)

    def split_features(self, rep: Representation, task: str, seed: int) -> dict[str, np.ndarray]:
        """Post-processed features of every split of a task."""
        return {s: self.raw_features(rep, task, s, seed)
                for s in self.task(task).images}

    # ------------------------------------------------------------------ scoring

    def evaluate(self, rep: Representation, task: str, seed: int = 0) -> dict[str, float]:
        """score, bootstrap interval (test split) and cross-validated score (train split).

        Cached (kind "scores"): a warm re-run of a notebook fits no probe again.
        """
        key = {**self._score_id(rep, task, seed), "rep": asdict(rep), "seed": seed,
               "probe": asdict(replace(self.profile.probe, seed=seed)),
               "n_boot": self.profile.n_boot}
        return self.cache.get_or_compute("scores", key, lambda: self._evaluate(rep, task, seed),
                                         codec="json")

    def _score_id(self, rep: Representation, task: str, seed: int) -> dict:
        """What identifies the inputs of a score: the networks' weights and the task's data."""
        sources = ("objects", "scenes") if rep.source == "concat" else (rep.source,)
        return {"models": [self._model(rep, s, task, seed)[0] for s in sources],
                **data_id(task, self.world)}

    def _evaluate(self, rep: Representation, task: str, seed: int) -> dict[str, float]:
        data = self.task(task)
        feats = self.split_features(rep, task, seed)
        if data.spec.kind == "retrieval":
            return self._evaluate_retrieval(rep, data, feats, seed)
        return self._evaluate_classification(rep, data, feats, seed)

    def _evaluate_classification(self, rep, data: TaskData, feats, seed):
        spec = data.spec
        xtr, xte = feats["train"], feats["test"]
        ytr, yte = data.labels["train"], data.labels["test"]
        if rep.pca_dim:
            xtr, xte = _pca(xtr, xte, rep.pca_dim)
        probe = LinearProbe(spec.kind, spec.metric, replace(self.profile.probe, seed=seed))
        probe.fit(xtr, trainable_labels(ytr))
        dec = probe.decision(xte)
        score = _score(spec.metric, dec, yte)
        boot = metrics.bootstrap_replicates(lambda idx: _score(spec.metric, dec[idx], yte[idx]),
                                            len(yte), n_boot=self.profile.n_boot, seed=seed)
        return _scored(score, boot, probe.cv_score_)

    def _evaluate_retrieval(self, rep, data: TaskData, feats, seed):
        spec = data.spec
        if rep.spatial:  # every image is its 30 sub-patches; whitening is fitted on train patches
            feats = {s: self._patches(rep, data, s, seed) for s in data.images}
        white = retrieval.fit_whitening(_rows(feats["train"]), rep.pca_dim)
        q, db = _embed(feats["query"], white), _embed(feats["database"], white)
        dist = _distances(q, db)
        score, per_query = retrieval.evaluate_retrieval(spec.metric, dist, data.truth)
        boot = metrics.bootstrap_replicates(lambda idx: np.nanmean(per_query[idx], axis=1),
                                            len(per_query), n_boot=self.profile.n_boot,
                                            seed=seed, vectorized=True)
        truth = self._validation_truth(data)
        cv = float("nan") if truth is None else validation_score(feats["train"], truth, rep.pca_dim)
        return _scored(score, boot, cv)

    def _validation_truth(self, data: TaskData) -> RetrievalTruth | None:
        """The train split as a retrieval set (pairs of views of other instances)."""
        return validation_truth(data.spec.name, self.world)

    def _patches(self, rep, data: TaskData, split: str, seed: int) -> np.ndarray:
        """Post-processed features (N, 30, D) of the spatial-search sub-patches of a split."""
        model_id, model = self._model(rep, rep.source, data.spec.name, seed)
        images, _ = data.split(split)
        key = {"model": model_id, **data_id(data.spec.name, self.world, split),
               "layer": rep.layer, "pooling": rep.pooling, "compute": compute.precision_id()}
        boxes = retrieval.subpatch_boxes()
        out = self.cache.get_or_compute(
            "patches", key,
            lambda: {"x": features.extract_patches(model, images, rep.layer, boxes,
                                                   pooling=rep.pooling, progress=False)})
        x = out["x"]
        n, p, d = x.shape
        return features.postprocess(x.reshape(n * p, d)).reshape(n, p, d)

    # ------------------------------------------------------------------ grids

    def run(self, factor: str, levels: Sequence[Level], tasks: Sequence[str] | None = None,
            seeds: Sequence[int] = ()) -> pd.DataFrame:
        """Score every (level, task, seed); one results row each (tasks=None: the defaults).

        Every level and task is checked before any computation starts.
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
                         "task": task, "group": spec.group, "domain": spec.domain,
                         "distance_rank": spec.distance_rank,
                         "metric": spec.metric, "seed": seed,
                         "representation": lv.rep.label(), **out})
        return results.frame(rows)


def _scored(score: float, boot: np.ndarray, cv: float) -> dict:
    """One cell's outcome: test score, its 95% interval and replicates, and the CV score.

    `boot` are the score on the bootstrap resamples of the test items, the same resamples
    for every level of the task (claims pair levels through them).
    """
    lo, hi = metrics.percentile_interval(boot)
    return {"score": score, "ci_low": lo, "ci_high": hi, "cv_score": cv,
            "boot": [float(b) for b in boot]}


def trainable_labels(y: np.ndarray) -> np.ndarray:
    """Labels a probe trains on: VOC's int8 {1, 0 = difficult, -1} become {1, 0}."""
    return (y == 1).astype(np.uint8) if y.dtype == np.int8 else y


def _score(metric: str, decision: np.ndarray, y: np.ndarray) -> float:
    """The task's metric; VOC-style int8 labels mark difficult images, which count as neither."""
    if y.dtype == np.int8:
        labels, difficult = metrics.voc_gt_split(y)
        return 100.0 * metrics.voc07_map(decision, labels, difficult)
    return metrics.classification_score(metric, decision, y)


def _rows(x: np.ndarray) -> np.ndarray:
    """Feature rows for fitting whitening: images, or every sub-patch of every image."""
    return x.reshape(-1, x.shape[-1])


def _embed(x: np.ndarray, white) -> np.ndarray:
    """L2 -> PCA-whitening -> L2 of image features (N, D) or sub-patch features (N, P, D)."""
    return retrieval.embed(_rows(x), white).reshape(*x.shape[:-1], -1)


def _distances(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Euclidean distances; with sub-patches, the minimum over pairs of patches."""
    if q.ndim == 3:
        return retrieval.spatial_distance(q, db)
    return retrieval.euclidean_distances(q, db)


def validation_score(x: np.ndarray, truth, pca_dim: int | None) -> float:
    """Two-fold retrieval mAP (%) on the train split's pairs of views of other instances.

    Whitening fitted on the very images it embeds makes them equidistant (n < d), so each
    half of the pairs is scored with whitening fitted on the other half. `x` holds image
    features (N, D) or sub-patch features (N, P, D). For every retrieval task, N-S included,
    this is a mAP: it only ranks one task's candidate settings against each other.
    """
    own = truth.query_in_db
    halves = np.array_split(np.arange(len(own)), 2)
    scores = []
    for fit, held in (halves, halves[::-1]):
        fit_rows = np.concatenate([[own[q], truth.positives[q][0]] for q in fit])
        rows = np.concatenate([[own[q], truth.positives[q][0]] for q in held])
        white = retrieval.fit_whitening(_rows(x[fit_rows]), pca_dim)
        emb = _embed(x[rows], white)
        sub = RetrievalTruth(tuple(np.array([2 * i + 1]) for i in range(len(held))),
                             tuple(np.zeros(0, np.int64) for _ in held),
                             np.arange(len(held)) * 2)
        dist = _distances(emb[sub.query_in_db], emb)
        scores.append(retrieval.evaluate_retrieval("retrieval_map", dist, sub)[0])
    return float(np.mean(scores))


def _pca(xtr: np.ndarray, xte: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Project onto the top `dim` principal directions of the training split."""
    mean = xtr.mean(0)
    _, _, vt = np.linalg.svd(xtr - mean, full_matrices=False)
    basis = vt[: min(dim, vt.shape[0])].T
    return (xtr - mean) @ basis, (xte - mean) @ basis
