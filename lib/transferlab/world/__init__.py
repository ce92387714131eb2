"""The embedded world: a procedural stand-in for ImageNet, Places and the 16 target tasks.

    >>> from transferlab.world import TASKS, WorldConfig, generate, load_task
    >>> images, labels = generate("birds", "train", range(8), size=32, seed=0)
    >>> data = load_task("birds", WorldConfig(size=32))          # cached on disk

Image i of split s of task t at world seed w is the same bytes whatever batch or range it
is generated in: every random number is a pure function of (w, t, s, i).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from ..cache import Cache
from ..tasks import VALIDATION_SPLIT, RetrievalTruth, TaskData, TaskSpec
from . import instances, recipes
from .catalog import N_BREED, N_SCENES, N_SOURCE_SUPER, N_SUB, catalog
from .rng import Draws, stream_key

RENDER_VERSION = 2  # bump when rendering changes what any image shows
MIN_SIZE = 16
MAX_SIZE = 256
CLASSIFICATION_SPLITS = ("train", "test")
RETRIEVAL_SPLITS = ("train", "database", "query")
# More labelled images of a task, for fine-tuning with extra data (the paper's Table 5: Pets
# with ImageNet's images of the same breeds); not part of load_task.
EXTRA_SPLITS = {"breeds": "extra"}
EXTRA_FACTOR = 4  # an extra split holds this many times the train split
_CHUNK = 1024


# Tasks whose images are scenes (the analogs of Places-like datasets); the rest show objects.
SCENE_TASKS = ("scenes", "rooms", "scene_categories", "scene_attributes", "scene_instances",
               "landmarks")


def _spec(name, role, group, kind, metric, analog, rank, n) -> TaskSpec:
    domain = "scene" if name in SCENE_TASKS else "object"
    return TaskSpec(name, role, group, kind, metric, analog, rank, n, domain)


_N_OBJ = N_SOURCE_SUPER * N_SUB
TASKS: dict[str, TaskSpec] = {
    s.name: s
    for s in [
        _spec("objects", "source", "source", "single-label", "accuracy", "ImageNet", 0, _N_OBJ),
        _spec("scenes", "source", "source", "single-label", "accuracy", "Places", 0, N_SCENES),
        _spec("hybrid", "source", "source", "single-label", "accuracy", "Hybrid", 0,
              _N_OBJ + N_SCENES),
        _spec("objects_in_clutter", "target", "classification", "multi-label", "voc07_map",
              "VOC07", 1, len(recipes.CLUTTER_CLASSES)),
        _spec("rooms", "target", "classification", "single-label", "accuracy", "MIT 67", 2,
              recipes.N_ROOMS),
        _spec("scene_categories", "target", "classification", "single-label", "accuracy",
              "SUN 397", 3, recipes.N_SCENE_TARGET),
        _spec("scene_attributes", "target", "attributes", "multi-label", "voc07_map",
              "SUN attributes", 4, len(recipes.SCENE_ATTRIBUTES)),
        _spec("object_attributes", "target", "attributes", "multi-label", "voc07_map",
              "UIUC attributes", 5, len(recipes.OBJECT_ATTRIBUTES)),
        _spec("part_attributes", "target", "attributes", "multi-label", "voc07_map", "H3D", 6,
              len(recipes.PART_ATTRIBUTES)),
        _spec("breeds", "target", "fine-grained", "single-label", "mean_class_accuracy",
              "Oxford Pets", 7, len(recipes.BREED_SUPERS) * N_BREED),
        _spec("birds", "target", "fine-grained", "single-label", "accuracy", "CUB", 8,
              recipes.N_BIRDS),
        _spec("flowers", "target", "fine-grained", "single-label", "mean_class_accuracy",
              "Flowers 102", 9, recipes.N_FLOWERS),
        _spec("actions", "target", "compositional", "multi-label", "voc07_map", "VOC actions", 10,
              len(recipes.RELATIONS)),
        _spec("interactions", "target", "compositional", "single-label", "accuracy",
              "Stanford 40", 11, len(recipes.INTERACTION_OBJECTS) * len(recipes.RELATIONS)),
        _spec("phrases", "target", "compositional", "multi-label", "voc07_map", "Visual Phrases",
              12, len(recipes.PHRASE_LABELS)),
        _spec("scene_instances", "target", "retrieval", "retrieval", "retrieval_map", "Holidays",
              13, 0),
        _spec("object_instances", "target", "retrieval", "retrieval", "ns_score", "UKB", 14, 0),
        _spec("landmarks", "target", "retrieval", "retrieval", "retrieval_map", "Oxford 5k / Paris 6k",
              15, 0),
        _spec("sculptures", "target", "retrieval", "retrieval", "retrieval_map", "Sculptures 6k", 16,
              0),
    ]
}
# Why each target sits at its rank. The principle: a source network's later layers become
# invariant to what its source task treats as nuisance, so a near task's label is a function
# of source-class content, a far task's of what the source ignores or averages away.
RANK_REASONS: dict[str, str] = {
    "objects_in_clutter": "labels are which source superclasses are present, at the source's "
                          "scale: source content",
    "rooms": "a room type is a pair of the scenes source's categories: which source "
             "classes co-occur, at a coarser grain than the scenes source labels",
    "scene_categories": "twenty of the scenes source's own categories, new images: which "
                        "source objects co-occur on a shared layout",
    "scene_attributes": "which coarse groups of source objects a scene holds, clutter, "
                        "object size and light: source content at a coarser grain",
    "object_attributes": "texture, colour and shape of novel categories: appearance the source "
                         "sees but never labels",
    "part_attributes": "small local marks on one category: detail the source averages away "
                       "(legible only at higher resolution)",
    "breeds": "new subclasses of four source superclasses: a shape the source knows, told "
              "apart by hue and texture frequency it never labelled",
    "birds": "subtypes of a novel superclass that differ only by small local marks",
    "flowers": "subtypes of a novel lobed superclass that differ by petal count and close "
               "shades of one hue: finer than what the source labels",
    "actions": "the relation between an actor and an object: an arrangement the source ignores",
    "interactions": "(object, relation) classes: the same objects in several classes",
    "phrases": "specific object pairs in specific arrangements against the same objects alone",
    "scene_instances": "one fixed arrangement of the same few objects on one background, "
                       "under crop, zoom, rotation and light: instance, not category",
    "object_instances": "one specific object among many of the same two source subclasses: "
                        "only its own shape detail, texture phase and mark tell it apart",
    "landmarks": "a large unique structure seen partially or small, among distractors",
    "sculptures": "texture-less silhouettes: shape is all there is",
}
# Bump a task's number when its recipe changes what its images show: its images and every
# network, feature and score made from them are recomputed, and only those.
RECIPE_VERSIONS: dict[str, int] = {t: 0 for t in TASKS} | {
    "objects_in_clutter": 1,  # objects at the source's scale (they were half of it)
    "part_attributes": 3,  # marks legible at 32 px (1), about 8 px (2), on a plain body (3)
    "breeds": 3,  # new subclasses of four source superclasses (1), finer differences (2),
    # catalog draws after the scene sets changed (3)
    # scene categories share layouts in fours and are told apart by their objects, at
    # nearly the source's scale (the scenes source saturated on layout alone)
    # (1); a scene's own layout on half of its images only, objects at 0.16-0.24, two
    # source classes per scene shared with its neighbours (6); rooms are pairs of the
    # scenes source's categories 20-39 (7); layout on 40 % of the images (8: the scenes
    # source was at 85 %, the top of the band where AlexNet sat on ImageNet)
    "scenes": 8, "scene_categories": 8, "scene_attributes": 8, "rooms": 8,
    "objects": 1,  # objects at scales 0.16-0.34 (they were 0.22-0.34)
    "scene_instances": 2,  # stronger changes of view (1), objects of four classes only (2)
    "flowers": 2,  # petal count x close hues (were colour and texture: the source's own cues)
    "birds": 2,  # legible marks (1), larger, on a plain body (2)
    "actions": 1, "interactions": 1,  # actor and object in frame, relation legible
    "object_instances": 1,  # instances of two subclasses, told apart by their own detail
    "sculptures": 2,  # stronger shape detail, smaller view rotation (1); every harmonic
    # at least 0.15 (2)
}
SOURCES = tuple(n for n, s in TASKS.items() if s.role == "source")
TARGETS = tuple(n for n, s in TASKS.items() if s.role == "target")

_RECIPES = {
    "objects": recipes.objects_source, "scenes": recipes.scenes_source,
    "hybrid": recipes.hybrid_source, "objects_in_clutter": recipes.objects_in_clutter,
    "rooms": recipes.rooms, "scene_categories": recipes.scene_categories,
    "scene_attributes": recipes.scene_attributes, "object_attributes": recipes.object_attributes,
    "part_attributes": recipes.part_attributes, "breeds": recipes.breeds, "birds": recipes.birds,
    "flowers": recipes.flowers, "actions": recipes.actions, "interactions": recipes.interactions,
    "phrases": recipes.phrases,
}
_INSTANCE_RECIPES = {
    "scene_instances": instances.scene_instances, "object_instances": instances.object_instances,
    "landmarks": instances.landmarks, "sculptures": instances.sculptures,
}


def data_id(task: str, config: WorldConfig, split: str | None = None) -> dict:
    """What identifies a task's images (one split, or all of them) in every cache key: the
    world's resolution and seed, the sizes this task's splits are drawn with, and the versions
    of the renderer and of the recipes behind them.

    Only the sizes of this task's split (of all its splits when `split` is None): an image is
    drawn from its index, so a larger target test split leaves the source images, and the
    networks trained on them, under their keys, and so does a larger source test split.
    """
    spec = check_task(task)
    deps = ("objects", "scenes", "hybrid") if task == "hybrid" else (task,)
    version = {"render": RENDER_VERSION, **{t: RECIPE_VERSIONS[t] for t in deps}}
    if spec.kind == "retrieval":  # one layout places every split's instances
        sizes = asdict(config.retrieval_sizes(task))
    else:
        fields = {f for s, names in _SPLIT_SIZES[spec.role].items() if split in (None, s)
                  for f in names}
        sizes = {f: getattr(config, f) for f in sorted(fields)}
    world = {"size": config.size, "seed": config.seed, **sizes}
    out = {"task": task, "world": world, "version": version}
    return out if split is None else {**out, "split": split}


# The WorldConfig fields that size each split of a classification task, by role.
_SPLIT_SIZES = {
    "source": {"train": ("source_train_per_class",), "test": ("source_test_per_class",)},
    "target": {"train": ("target_train_per_class",), "extra": ("target_train_per_class",),
               "test": ("target_test",), VALIDATION_SPLIT: ("target_test",)},
}


@dataclass(frozen=True)
class WorldConfig:
    """Resolution and split sizes of the world; a profile chooses them."""

    size: int = 32
    seed: int = 0
    source_train_per_class: int = 60
    source_test_per_class: int = 10
    target_train_per_class: int = 15  # single-label; multi-label: this x number of labels
    target_test: int = 600
    retrieval_instances: int = 50
    retrieval_fit: int = 500
    landmark_distractors: int = 100

    def __post_init__(self) -> None:
        check_size(self.size)
        for name in ("source_train_per_class", "source_test_per_class", "target_train_per_class",
                     "target_test", "retrieval_instances", "retrieval_fit"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"WorldConfig.{name}={value!r} must be a positive integer")

    def split_size(self, task: str, split: str) -> int:
        check_split(task, split)
        spec = TASKS[task]
        if spec.kind == "retrieval":
            return len(instances.layout(task, split, self.retrieval_sizes(task)).instance)
        if spec.role == "source":
            per = self.source_train_per_class if split == "train" else self.source_test_per_class
            return per * spec.n_classes
        if split in ("test", VALIDATION_SPLIT):
            return self.target_test
        train = self.target_train_per_class * spec.n_classes
        return EXTRA_FACTOR * train if split == "extra" else train

    def retrieval_sizes(self, task: str) -> instances.RetrievalSizes:
        views = {"scene_instances": 3, "object_instances": 4, "landmarks": 3, "sculptures": 3}[task]
        # Landmarks: fewer instances (each with distractors), but enough queries to score.
        n = self.retrieval_instances if task != "landmarks" else max(5, self.retrieval_instances // 2)
        return instances.RetrievalSizes(
            instances=n, views=views, fit=self.retrieval_fit,
            distractors=self.landmark_distractors if task == "landmarks" else 0,
            junk=2 if task == "landmarks" else 0,
        )


def check_task(task: str) -> TaskSpec:
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"task={task!r} is not a task of the world; valid tasks: {list(TASKS)}")
    return TASKS[task]


def splits_of(task: str) -> tuple[str, ...]:
    """The splits `load_task` holds: a single-label target also has a validation split."""
    spec = check_task(task)
    if spec.kind == "retrieval":
        return RETRIEVAL_SPLITS
    validated = spec.kind == "single-label" and spec.role == "target"
    return CLASSIFICATION_SPLITS + ((VALIDATION_SPLIT,) if validated else ())


def check_split(task: str, split: str) -> None:
    valid = splits_of(task) + ((EXTRA_SPLITS[task],) if task in EXTRA_SPLITS else ())
    if split not in valid:
        raise ValueError(f"split={split!r} is not a split of task {task!r}; valid splits: {valid}")


def check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size={size!r} must be an integer in [{MIN_SIZE}, {MAX_SIZE}] pixels")


def _indices(indices: Iterable[int]) -> np.ndarray:
    idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-d sequence of integers, got {idx.dtype} {idx.shape}")
    if idx.size and idx.min() < 0:
        raise ValueError(f"indices must be >= 0; got negative index {int(idx.min())}")
    return idx.astype(np.int64)


def generate(task: str, split: str, indices: Iterable[int], size: int = 32, seed: int = 0,
             config: WorldConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, size, size, 3) uint8 and labels of images `indices` of a task's split.

    Labels: class index (single-label), 0/1 matrix (multi-label), instance id (retrieval,
    -1 for distractors). Retrieval splits are laid out by `config` (default sizes otherwise),
    and their indices must lie inside the split.
    """
    from .render import render

    check_split(task, split)
    check_size(size)
    idx = _indices(indices)
    cat = catalog(seed)
    spec = TASKS[task]
    images = np.empty((len(idx), size, size, 3), np.uint8)
    labels = []
    for start in range(0, len(idx), _CHUNK):
        chunk = idx[start:start + _CHUNK]
        if spec.kind == "retrieval":
            cfg = config or WorldConfig(size=size, seed=seed)
            full = instances.layout(task, split, cfg.retrieval_sizes(task))
            if chunk.size and chunk.max() >= len(full.instance):
                raise ValueError(f"index {int(chunk.max())} is outside split {split!r} of "
                                 f"{task!r}, which has {len(full.instance)} images")
            lay = instances.Layout(full.instance[chunk], full.kind[chunk])
            # Distractors (instance -1) each get content of their own, keyed past every instance.
            content_ids = np.where(lay.instance >= 0, lay.instance, 2 * instances.FIT_OFFSET + chunk)
            content = Draws(stream_key(seed, task, "content"), content_ids)
            view_split = "database" if split == "query" and task != "landmarks" else split
            if split == "query" and task != "landmarks":
                # A query is a database image: same view stream, at its database index.
                db = instances.layout(task, "database", cfg.retrieval_sizes(task))
                views = cfg.retrieval_sizes(task).views
                step = 1 if task == "object_instances" else views
                view_idx = chunk * step
                assert np.array_equal(db.instance[view_idx], lay.instance)
            else:
                view_idx = chunk
            view = Draws(stream_key(seed, task, view_split, "view"), view_idx)
            scene = _INSTANCE_RECIPES[task](content, view, cat, lay)
            y = lay.instance
        else:
            draws = Draws(stream_key(seed, task, split), chunk)
            scene, y = _RECIPES[task](draws, recipes.Ctx(cat, len(chunk), chunk))
        images[start:start + len(chunk)] = render(scene, size)
        labels.append(np.asarray(y))
    if not labels:
        shape = (0, spec.n_classes) if spec.kind == "multi-label" else (0,)
        return images, np.zeros(shape, np.int64)
    y = np.concatenate(labels)
    return images, (y.astype(np.uint8) if spec.kind == "multi-label" else y.astype(np.int64))


def load_split(task: str, split: str, config: WorldConfig, cache: Cache | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """A whole split, generated once and cached on disk as uint8 arrays."""
    check_split(task, split)
    cache = cache or Cache()
    n = config.split_size(task, split)
    key = data_id(task, config, split)

    def compute() -> dict:
        x, y = generate(task, split, np.arange(n), config.size, config.seed, config)
        return {"images": x, "labels": y}

    out = cache.get_or_compute("world", key, compute)
    return out["images"], out["labels"]


def validation_truth(task: str, config: WorldConfig) -> RetrievalTruth:
    """Ground truth of a retrieval task's train split used as a validation retrieval set."""
    pos, junk, own = instances.validation_truth(config.retrieval_sizes(check_task(task).name))
    return RetrievalTruth(tuple(pos), tuple(junk), own)


def load_task(task: str, config: WorldConfig, cache: Cache | None = None) -> TaskData:
    """Every split of a task (cached), with retrieval ground truth where it applies."""
    spec = check_task(task)
    data = {s: load_split(task, s, config, cache) for s in splits_of(task)}
    truth = None
    if spec.kind == "retrieval":
        pos, junk, own = instances.truth(task, config.retrieval_sizes(task))
        truth = RetrievalTruth(tuple(pos), tuple(junk), own)
    return TaskData(spec, {s: d[0] for s, d in data.items()}, {s: d[1] for s, d in data.items()},
                    truth)
