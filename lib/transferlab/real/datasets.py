"""Real target tasks: torchvision datasets, image folders and retrieval sets as `TaskData`.

`load_task(name, root)` reads a dataset already on disk under `root` (the folder you would
give torchvision's dataset classes; every dataset has its own sub-folder there), decodes its
images once into uint8 arrays of `image_size` x `image_size` and returns a `TaskData` with the
paper's group, distance rank and metric. Nothing is downloaded unless `download=True`.

Choices, documented once:
- **Reading.** Each adapter reads the on-disk layout that torchvision's class writes (same
  files, same label order) itself. That avoids torchvision's md5 checks of existing files
  (Flowers102, CIFAR), its side effects (Caltech101 creates folders) and private attributes,
  and lets the index (paths, labels) be built before any pixel is decoded. torchvision's class
  is used only to download (`download=True`).
- **Resizing.** The whole image is resized (squashed) to a square with bilinear filtering:
  no content is cut, so the 12 jitters of the classification pipeline (corners, centre, the
  whole image) see what the paper's pipeline saw ("the whole image resized to the size the
  network needs"); the aspect ratio is not kept. Oxford/Paris queries are first cropped to
  their box. EXIF orientation is not applied (as torchvision's loader; Holidays is known to
  contain rotated images).
- **Storage.** Decoded splits are stored as raw uint8 files under
  `transferlab.cache.default_root() / "real"` (or `cache_dir`) and returned as read-only
  `np.memmap`s, so memory stays bounded. A cache entry is keyed by the dataset name, image
  size and the list of source files with their sizes and modification times; it is written
  to a temporary folder and renamed into place, so a killed run leaves no partial entry.
- **Splits.** Classification: "train" and "test" (see each reader). Retrieval: "train",
  "database", "query" plus `truth` (see retrieval_layouts.py).
- **VOC 2007 labels** are an int8 (N, 20) matrix in VOCdevkit's own convention: 1 = present,
  -1 = absent, 0 = "difficult" (the class appears only in objects marked difficult). Turn it
  into {0, 1} labels and a difficult mask with `transferlab.metrics.voc_gt_split`; the VOC07
  AP then counts difficult examples as neither positive nor negative.
- **limit** (quick looks at a real set): classification keeps at most `limit` images per
  split, spread evenly over the dataset's order (so class-sorted sets keep every class);
  Holidays and UKB keep `limit` groups; Oxford/Paris keep every query and cap the database
  at max(limit, images relevant to some query).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from ..cache import default_root
from ..tasks import TaskData, TaskSpec
from .folders import SPEC_FILE, FolderTask, folder_tasks
from .retrieval_layouts import (
    SOURCES,
    DatasetNotFound,
    Item,
    Layout,
    load_plain_pickle,
    read_holidays,
    read_oxford_classic,
    read_revisited,
    read_ukbench,
    spread,
)

log = logging.getLogger(__name__)

# Bump when decoding changes its output (resizing, cropping): invalidates the image cache.
DECODE_VERSION = 2  # 2: images smaller than image_size are stored at their own size

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


# --- classification readers: root -> Layout ---------------------------------------------


def _items(paths: list[Path]) -> list[Item]:
    return [Item(Path(p)) for p in paths]


def _labels(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _read_voc2007(root: Path) -> Layout:
    """VOC 2007: "train" = trainval, "test" = test; labels from the XML annotations."""
    from xml.etree.ElementTree import parse  # trusted local annotation files

    base = root / "VOCdevkit" / "VOC2007"
    splits, labels = {}, {}
    for split, image_set in (("train", "trainval"), ("test", "test")):
        ids = (base / "ImageSets" / "Main" / f"{image_set}.txt").read_text().split()
        gt = np.full((len(ids), len(VOC_CLASSES)), -1, dtype=np.int8)
        for i, image_id in enumerate(ids):
            for obj in parse(base / "Annotations" / f"{image_id}.xml").getroot().iter("object"):
                c = VOC_CLASSES.index(obj.findtext("name").strip())
                difficult = int(obj.findtext("difficult", "0").strip() or 0)
                gt[i, c] = max(gt[i, c], 0 if difficult else 1)
        splits[split] = _items([base / "JPEGImages" / f"{i}.jpg" for i in ids])
        labels[split] = gt
    return Layout(splits, labels, VOC_CLASSES)


def _read_flowers102(root: Path) -> Layout:
    """Flowers 102: "train" = the official train + val sets, "test" = test."""
    from scipy.io import loadmat
    from torchvision.datasets import Flowers102

    base = root / "flowers-102"
    set_ids = loadmat(base / "setid.mat", squeeze_me=True)
    label_of = np.atleast_1d(loadmat(base / "imagelabels.mat", squeeze_me=True)["labels"]) - 1
    splits, labels = {}, {}
    for split, keys in (("train", ("trnid", "valid")), ("test", ("tstid",))):
        ids = [int(i) for k in keys for i in np.atleast_1d(set_ids[k])]
        splits[split] = _items([base / "jpg" / f"image_{i:05d}.jpg" for i in ids])
        labels[split] = _labels([int(label_of[i - 1]) for i in ids])
    return Layout(splits, labels, tuple(Flowers102.classes))


def _read_pets(root: Path) -> Layout:
    """Oxford-IIIT Pet: "train" = trainval, "test" = test; 37 breeds."""
    base = root / "oxford-iiit-pet"
    splits, labels, names = {}, {}, {}
    for split, fname in (("train", "trainval"), ("test", "test")):
        rows = [line.split() for line in (base / "annotations" / f"{fname}.txt").read_text().splitlines()]
        rows = [r for r in rows if r and not r[0].startswith("#")]
        splits[split] = _items([base / "images" / f"{r[0]}.jpg" for r in rows])
        labels[split] = _labels([int(r[1]) - 1 for r in rows])
        for r in rows:  # class names as torchvision spells them
            names[int(r[1]) - 1] = " ".join(p.title() for p in r[0].rsplit("_", 1)[0].split("_"))
    n = max(names) + 1
    return Layout(splits, labels, tuple(names.get(i, str(i)) for i in range(n)))


def _read_dtd(root: Path) -> Layout:
    """DTD, partition 1: "train" = train1 + val1, "test" = test1; 47 textures."""
    base = root / "dtd" / "dtd"
    files = {s: [f"{s}1.txt"] for s in ("train", "val", "test")}
    rows = {s: (base / "labels" / f[0]).read_text().split() for s, f in files.items()}
    classes = sorted({r.split("/")[0] for rs in rows.values() for r in rs})
    splits, labels = {}, {}
    for split, parts in (("train", ("train", "val")), ("test", ("test",))):
        rel = [r for p in parts for r in rows[p]]
        splits[split] = _items([base / "images" / r for r in rel])
        labels[split] = _labels([classes.index(r.split("/")[0]) for r in rel])
    return Layout(splits, labels, tuple(classes))


def _read_aircraft(root: Path) -> Layout:
    """FGVC-Aircraft, variant level: "train" = trainval, "test" = test; 100 variants."""
    data = root / "fgvc-aircraft-2013b" / "data"
    classes = [line.strip() for line in (data / "variants.txt").read_text().splitlines() if line.strip()]
    index = {c: i for i, c in enumerate(classes)}
    splits, labels = {}, {}
    for split, fname in (("train", "trainval"), ("test", "test")):
        lines = (data / f"images_variant_{fname}.txt").read_text().splitlines()
        rows = [line.strip().split(" ", 1) for line in lines if line.strip()]
        splits[split] = _items([data / "images" / f"{r[0]}.jpg" for r in rows])
        labels[split] = _labels([index[r[1]] for r in rows])
    return Layout(splits, labels, tuple(classes))


def _read_cars(root: Path) -> Layout:
    """Stanford Cars: "train" / "test" from the devkit annotations; 196 models."""
    from scipy.io import loadmat

    base = root / "stanford_cars"
    splits, labels = {}, {}
    for split, mat, folder in (
        ("train", base / "devkit" / "cars_train_annos.mat", base / "cars_train"),
        ("test", base / "cars_test_annos_withlabels.mat", base / "cars_test"),
    ):
        annos = np.atleast_1d(loadmat(mat, squeeze_me=True)["annotations"])
        splits[split] = _items([folder / str(a["fname"]) for a in annos])
        labels[split] = _labels([int(a["class"]) - 1 for a in annos])
    names = np.atleast_1d(loadmat(base / "devkit" / "cars_meta.mat", squeeze_me=True)["class_names"])
    return Layout(splits, labels, tuple(str(n) for n in names))


def _read_food101(root: Path) -> Layout:
    """Food-101: the official "train" / "test" lists; 101 dishes."""
    base = root / "food-101"
    splits, labels, classes = {}, {}, None
    for split in ("train", "test"):
        meta = json.loads((base / "meta" / f"{split}.json").read_text())
        classes = classes or sorted(meta)
        rel = [(c, r) for c in sorted(meta) for r in meta[c]]
        splits[split] = _items([base / "images" / f"{r}.jpg" for _, r in rel])
        labels[split] = _labels([classes.index(c) for c, _ in rel])
    return Layout(splits, labels, tuple(classes))


def _per_class_split(
    by_class: dict[str, list[Path]], n_train: int, n_test: int
) -> tuple[dict[str, list[Item]], dict[str, np.ndarray]]:
    """Per class (sorted files): the first min(n_train, n - 1) train, the next up to n_test test."""
    out = {"train": ([], []), "test": ([], [])}
    for label, cls in enumerate(sorted(by_class)):
        files = sorted(by_class[cls])
        k = min(n_train, len(files) - 1)
        for split, chosen in (("train", files[:k]), ("test", files[k : k + n_test])):
            out[split][0].extend(Item(p) for p in chosen)
            out[split][1].extend([label] * len(chosen))
    return {s: v[0] for s, v in out.items()}, {s: _labels(v[1]) for s, v in out.items()}


def _read_sun397(root: Path) -> Layout:
    """SUN397: the official partition 1 (Training_01.txt / Testing_01.txt from Partitions.zip,
    in SUN397/ or SUN397/Partitions/) if present, else per class the first 50 images (sorted
    by name) train and the next 50 test -- the same sizes as the official partitions."""
    base = root / "SUN397"
    classes = [c[3:].strip() for c in (base / "ClassName.txt").read_text().splitlines() if c.strip()]
    index = {c: i for i, c in enumerate(classes)}

    def label(rel: str) -> int:
        return index["/".join(Path(rel.strip("/")).parts[1:-1])]

    for part in (base, base / "Partitions"):
        if (part / "Training_01.txt").exists() and (part / "Testing_01.txt").exists():
            splits, labels = {}, {}
            for split, fname in (("train", "Training_01.txt"), ("test", "Testing_01.txt")):
                rel = (part / fname).read_text().split()
                splits[split] = _items([base / r.strip("/") for r in rel])
                labels[split] = _labels([label(r) for r in rel])
            return Layout(splits, labels, tuple(classes))
    by_class: dict[str, list[Path]] = {c: [] for c in classes}
    for path in base.rglob("sun_*.jpg"):
        by_class[classes[label(str(path.relative_to(base)))]].append(path)
    splits, labels = _per_class_split(by_class, 50, 50)
    # _per_class_split numbers classes in sorted order; keep ClassName.txt's order instead
    order = sorted(classes)
    for s in labels:
        labels[s] = _labels([index[order[i]] for i in labels[s]])
    return Layout(splits, labels, tuple(classes), notes=("SUN397: no Partitions files; 50/50 per class",))


def _read_caltech101(root: Path) -> Layout:
    """Caltech-101 (BACKGROUND_Google left out): per class the first 30 images (sorted by
    name) train and up to 50 of the rest test, the usual protocol."""
    base = root / "caltech101" / "101_ObjectCategories"
    by_class = {
        d.name: [p for p in d.iterdir() if p.suffix.lower() in IMG_EXTENSIONS]
        for d in base.iterdir()
        if d.is_dir() and d.name != "BACKGROUND_Google"
    }
    splits, labels = _per_class_split(by_class, 30, 50)
    return Layout(splits, labels, tuple(sorted(by_class)))


def _read_cifar(root: Path, hundred: bool) -> Layout:
    """CIFAR-10 / -100 python batches: "train" / "test" as shipped (fine labels for 100)."""
    folder, train, test, meta, key, names_key = (
        ("cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names")
        if hundred
        else (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            "batches.meta",
            "labels",
            "label_names",
        )
    )
    base = root / folder
    splits, labels = {}, {}
    for split, files in (("train", train), ("test", test)):
        entries = [load_plain_pickle(base / f, encoding="latin1") for f in files]
        data = np.concatenate([np.asarray(e["data"], dtype=np.uint8) for e in entries])
        splits[split] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels[split] = _labels([int(v) for e in entries for v in e[key]])
    names = load_plain_pickle(base / meta, encoding="latin1")[names_key]
    return Layout(splits, labels, tuple(str(n) for n in names))


def _read_image_folder(base: Path) -> Layout:
    """`base/train/<class>/<image>` and `base/test/<class>/<image>`; classes = train's folders."""
    classes = sorted(d.name for d in (base / "train").iterdir() if d.is_dir())
    if not classes:
        raise DatasetNotFound(f"{base / 'train'} has no class folders (expected train/<class>/<image>)")
    splits, labels = {}, {}
    for split in ("train", "test"):
        found = sorted(d.name for d in (base / split).iterdir() if d.is_dir())
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise ValueError(f"{base / split} has classes {unknown[:5]} that train/ does not have")
        rows = [
            (p, i)
            for i, c in enumerate(classes)
            if (base / split / c).is_dir()
            for p in sorted((base / split / c).rglob("*"))
            if p.suffix.lower() in IMG_EXTENSIONS and p.is_file()
        ]
        splits[split] = _items([p for p, _ in rows])
        labels[split] = _labels([i for _, i in rows])
    return Layout(splits, labels, tuple(classes))


# --- the registry --------------------------------------------------------------------------


# Scene datasets (Places-like images); the rest show objects.
_SCENE_TASKS = ("mit67", "sun397", "holidays", "oxford5k", "paris6k", "roxford5k", "rparis6k")


def _spec(name, group, kind, metric, analog, rank, n) -> TaskSpec:
    domain = "scene" if name in _SCENE_TASKS else "object"
    return TaskSpec(name, "target", group, kind, metric, analog, rank, n, domain)


@dataclass(frozen=True)
class _Entry:
    spec: TaskSpec
    required: tuple[str, ...]  # paths relative to root that must exist
    read: Callable[[Path, int | None], Layout]  # (root, limit) -> Layout
    how: str  # how to get the dataset, for the missing-dataset message
    fetch: Callable[[Path], None] | None = None  # downloads through torchvision
    folder: bool = False  # an image folder (train/<class>, test/<class>) under root/<name>


def _fetch(cls_name: str, *calls: dict) -> Callable[[Path], None]:
    def fetch(root: Path) -> None:
        import torchvision.datasets as tvd

        for kwargs in calls or ({},):
            getattr(tvd, cls_name)(str(root), download=True, **kwargs)

    return fetch


def _tv(name: str, spec: TaskSpec, required, read, cls_name: str, *calls: dict) -> _Entry:
    args = " and ".join(
        f"torchvision.datasets.{cls_name}(root, {''.join(f'{k}={v!r}, ' for k, v in c.items())}download=True)"
        for c in (calls or ({},))
    )
    how = f"Download it with load_task({name!r}, root, download=True), which runs {args}."
    return _Entry(spec, tuple(required), lambda root, limit: read(root), how, _fetch(cls_name, *calls))


def _folder_entry(spec: TaskSpec, sub: str) -> _Entry:
    how = (
        f"Arrange the images as {sub}/train/<class>/<image> and {sub}/test/<class>/<image> under "
        f"data_root, optionally with {sub}/{SPEC_FILE} (group, distance_rank, ...); any split "
        "conversion is yours to make and document."
    )
    required = (f"{sub}/train", f"{sub}/test")
    return _Entry(spec, required, lambda root, limit: _read_image_folder(root / sub), how,
                  folder=True)


def _retrieval_entry(spec: TaskSpec, dataset: str, required: tuple[str, ...], read) -> _Entry:
    how = (
        f"It is not in torchvision, so download=True cannot fetch it: get {SOURCES[dataset]} "
        "and unpack it there."
    )
    return _Entry(spec, required, read, how)


_FINE, _CLS, _RET = "fine-grained", "classification", "retrieval"
_SL, _ML = "single-label", "multi-label"

# distance_rank follows Table 6 / the world's ordering (VOC07 1 ... Holidays 13, UKB 14,
# Oxford and Paris 15 as the world's "landmarks"). Datasets the paper does not have sit with
# the paper task they resemble most, named in `analog`.
_REGISTRY: dict[str, _Entry] = {
    "voc2007": _tv(
        "voc2007",
        _spec("voc2007", _CLS, _ML, "voc07_map", "VOC07", 1, 20),
        (
            "VOCdevkit/VOC2007/ImageSets/Main/trainval.txt",
            "VOCdevkit/VOC2007/ImageSets/Main/test.txt",
            "VOCdevkit/VOC2007/Annotations",
            "VOCdevkit/VOC2007/JPEGImages",
        ),
        _read_voc2007,
        "VOCDetection",
        {"year": "2007", "image_set": "trainval"},
        {"year": "2007", "image_set": "test"},
    ),
    "caltech101": _tv(
        "caltech101",
        _spec("caltech101", _CLS, _SL, "mean_class_accuracy", "not in the paper; ranked with VOC07", 1, 101),
        ("caltech101/101_ObjectCategories",),
        _read_caltech101,
        "Caltech101",
    ),
    "cifar10": _tv(
        "cifar10",
        _spec("cifar10", _CLS, _SL, "accuracy", "not in the paper; ranked with VOC07", 1, 10),
        tuple(
            f"cifar-10-batches-py/{f}"
            for f in (
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
                "batches.meta",
            )
        ),
        partial(_read_cifar, hundred=False),
        "CIFAR10",
    ),
    "cifar100": _tv(
        "cifar100",
        _spec("cifar100", _CLS, _SL, "accuracy", "not in the paper; ranked with VOC07", 1, 100),
        ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
        partial(_read_cifar, hundred=True),
        "CIFAR100",
    ),
    "mit67": _folder_entry(_spec("mit67", _CLS, _SL, "accuracy", "MIT 67", 2, 67), "mit67"),
    "sun397": _tv(
        "sun397",
        _spec("sun397", _CLS, _SL, "accuracy", "SUN 397", 3, 397),
        ("SUN397/ClassName.txt",),
        _read_sun397,
        "SUN397",
    ),
    "dtd": _tv(
        "dtd",
        _spec("dtd", "attributes", _SL, "accuracy", "not in the paper; ranked with UIUC attributes", 5, 47),
        (
            "dtd/dtd/images",
            "dtd/dtd/labels/train1.txt",
            "dtd/dtd/labels/val1.txt",
            "dtd/dtd/labels/test1.txt",
        ),
        _read_dtd,
        "DTD",
    ),
    "oxford_pets": _tv(
        "oxford_pets",
        _spec("oxford_pets", _FINE, _SL, "mean_class_accuracy", "Oxford Pets", 7, 37),
        (
            "oxford-iiit-pet/images",
            "oxford-iiit-pet/annotations/trainval.txt",
            "oxford-iiit-pet/annotations/test.txt",
        ),
        _read_pets,
        "OxfordIIITPet",
    ),
    "cub200": _folder_entry(_spec("cub200", _FINE, _SL, "accuracy", "CUB", 8, 200), "cub200"),
    "fgvc_aircraft": _tv(
        "fgvc_aircraft",
        _spec(
            "fgvc_aircraft", _FINE, _SL, "mean_class_accuracy", "not in the paper; ranked with CUB", 8, 100
        ),
        (
            "fgvc-aircraft-2013b/data/images",
            "fgvc-aircraft-2013b/data/variants.txt",
            "fgvc-aircraft-2013b/data/images_variant_trainval.txt",
            "fgvc-aircraft-2013b/data/images_variant_test.txt",
        ),
        _read_aircraft,
        "FGVCAircraft",
    ),
    "stanford_cars": _tv(
        "stanford_cars",
        _spec("stanford_cars", _FINE, _SL, "accuracy", "not in the paper; ranked with CUB", 8, 196),
        (
            "stanford_cars/devkit/cars_meta.mat",
            "stanford_cars/devkit/cars_train_annos.mat",
            "stanford_cars/cars_train",
            "stanford_cars/cars_test_annos_withlabels.mat",
            "stanford_cars/cars_test",
        ),
        _read_cars,
        "StanfordCars",
        {"split": "train"},
        {"split": "test"},
    ),
    "flowers102": _tv(
        "flowers102",
        _spec("flowers102", _FINE, _SL, "mean_class_accuracy", "Flowers 102", 9, 102),
        ("flowers-102/jpg", "flowers-102/imagelabels.mat", "flowers-102/setid.mat"),
        _read_flowers102,
        "Flowers102",
    ),
    "food101": _tv(
        "food101",
        _spec("food101", _FINE, _SL, "accuracy", "not in the paper; ranked with Flowers 102", 9, 101),
        ("food-101/meta/train.json", "food-101/meta/test.json", "food-101/images"),
        _read_food101,
        "Food101",
    ),
    "stanford40": _folder_entry(
        _spec("stanford40", "compositional", _SL, "accuracy", "Stanford 40", 11, 40), "stanford40"
    ),
    "holidays": _retrieval_entry(
        _spec("holidays", _RET, "retrieval", "retrieval_map", "Holidays", 13, 500),
        "holidays",
        ("holidays",),
        lambda root, limit: read_holidays(root, limit),
    ),
    "ukbench": _retrieval_entry(
        _spec("ukbench", _RET, "retrieval", "ns_score", "UKB", 14, 2550),
        "ukbench",
        ("ukbench",),
        lambda root, limit: read_ukbench(root, limit),
    ),
}
for _name, _analog in (("oxford5k", "Oxford 5k"), ("paris6k", "Paris 6k")):
    _REGISTRY[_name] = _retrieval_entry(
        _spec(_name, _RET, "retrieval", "retrieval_map", _analog, 15, 11),
        _name,
        (_name,),
        partial(lambda root, limit, d: read_oxford_classic(root, d, limit), d=_name),
    )
    for _protocol in ("medium", "hard"):
        _d = f"r{_name}"
        _key = _d if _protocol == "medium" else f"{_d}_hard"
        _REGISTRY[_key] = _retrieval_entry(
            _spec(_key, _RET, "retrieval", "retrieval_map", f"{_analog} (revisited, {_protocol})", 15, 11),
            _d,
            (f"{_d}/gnd_{_d}.pkl", f"{_d}/jpg"),
            partial(lambda root, limit, d, p: read_revisited(root, d, p, limit), d=_d, p=_protocol),
        )

del _name, _analog, _protocol, _d, _key

REAL_TASKS: dict[str, TaskSpec] = {name: e.spec for name, e in _REGISTRY.items()}
"""Every known real dataset's identity card. `n_classes` is the full dataset's; a loaded task
reports what it found (fewer with `limit`). Your own image folders come on top (`tasks`)."""


def image_folders(root: str | os.PathLike) -> dict[str, FolderTask]:
    """The image-folder datasets under `root` (see transferlab.real.folders)."""
    known = {name: e.spec for name, e in _REGISTRY.items() if e.folder}
    return folder_tasks(Path(root).expanduser(), known, set(_REGISTRY) - set(known))


def tasks(root: str | os.PathLike) -> dict[str, TaskSpec]:
    """Every task `root` can name: the known datasets and the image folders found there."""
    return {**REAL_TASKS, **{n: f.spec for n, f in image_folders(root).items()}}


def available(root: str | os.PathLike) -> list[str]:
    """Names of the tasks whose files are present under `root` (existence checks only)."""
    root = Path(root).expanduser()
    folders = image_folders(root)
    known = [name for name, e in _REGISTRY.items() if all((root / r).exists() for r in e.required)]
    return known + [name for name in folders if name not in known]


def _entry(name: str, root: Path) -> _Entry:
    """The dataset `name` under `root`: an image folder found there, else a known dataset."""
    folders = image_folders(root)
    if name in folders:
        found = folders[name]
        entry = _REGISTRY.get(name) or _folder_entry(found.spec, name)
        return replace(entry, spec=found.spec)
    if name not in _REGISTRY:
        raise ValueError(
            f"name={name!r} is not a real task; valid names: {sorted(_REGISTRY)}, or an image "
            f"folder under {root} (found: {sorted(folders)}): {root}/<name>/train/<class>/<image>"
        )
    return _REGISTRY[name]


def _missing(name: str, entry: _Entry, root: Path) -> DatasetNotFound | None:
    for rel in entry.required:
        if not (root / rel).exists():
            layout = ", ".join(entry.required)
            return DatasetNotFound(
                f"{name} not found: looked for {root / rel} (the layout under {root} is: {layout}). "
                f"{entry.how}"
            )
    return None


# --- decoding and the image cache ---------------------------------------------------------


def decode(item: Item, size: int) -> np.ndarray:
    """One image file (cropped to its box, if any) as uint8 (size, size, 3), squashed."""
    from PIL import Image

    with Image.open(item.path) as im:
        w, h = im.size
        bw, bh = (item.box[2] - item.box[0], item.box[3] - item.box[1]) if item.box else (w, h)
        # JPEG can decode at 1/2, 1/4, 1/8 scale for free; keep at least `size` px in the box
        im.draft("RGB", (math.ceil(size * w / max(bw, 1)), math.ceil(size * h / max(bh, 1))))
        sx, sy = im.size[0] / w, im.size[1] / h
        im = im.convert("RGB")
        if item.box:
            x1, y1, x2, y2 = item.box
            box = (
                max(0, math.floor(x1 * sx)),
                max(0, math.floor(y1 * sy)),
                min(im.width, math.ceil(x2 * sx)),
                min(im.height, math.ceil(y2 * sy)),
            )
            if box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"{item.path}: box {item.box} is empty inside the {w}x{h} image")
            im = im.crop(box)
        return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """A uint8 (H, W, 3) image squashed to (size, size, 3), bilinear (as `decode`)."""
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))


def _split_fingerprint(src: list[Item] | np.ndarray, root: Path) -> list | str:
    if isinstance(src, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(src).tobytes()).hexdigest()
    out = []
    for it in src:
        st = it.path.stat()
        rel = os.path.relpath(it.path, root)
        out.append([rel, st.st_size, st.st_mtime_ns, list(it.box) if it.box else None])
    return out


def _cache_key(name: str, layout: Layout, root: Path, size: int) -> str:
    ident = {
        "name": name,
        "size": size,
        "decode": DECODE_VERSION,
        "splits": {s: _split_fingerprint(src, root) for s, src in layout.splits.items()},
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A text progress bar on stderr. Text, not a notebook widget: it shows in a terminal, in
    a notebook's output and in papermill's log of a batch run (a widget never reaches the
    log, so the console would sit still for minutes); at most one update every 2 s."""
    from tqdm import tqdm as text_bar

    return text_bar(total=total, desc=desc, disable=not enabled, file=sys.stderr,
                    mininterval=2.0, unit="img", dynamic_ncols=False)


def _side(item: Item, size: int) -> int:
    """The larger side of an image (of its box, if any), from its header only."""
    if item.box:
        return max(item.box[2] - item.box[0], item.box[3] - item.box[1])
    from PIL import Image

    try:
        with Image.open(item.path) as im:
            return max(im.size)
    except Exception:  # unreadable: decoding will say so, naming the file
        return size


def stored_side(layout: Layout, size: int) -> int:
    """The side images are stored at: `size`, or the largest image's side if every image is
    smaller (CIFAR's 32 px are not stored upscaled to 256 px: 3 kB instead of 197 kB each;
    the study upscales them batch by batch when the network reads them)."""
    largest = 1
    for src in layout.splits.values():
        if isinstance(src, np.ndarray):
            largest = max(largest, *src.shape[1:3]) if len(src) else largest
            continue
        for item in src:  # large-image datasets stop at the first image
            largest = max(largest, _side(item, size))
            if largest >= size:
                return size
    return min(size, largest)


def _open_entry(folder: Path) -> dict[str, np.ndarray] | None:
    """The cached splits as read-only memmaps, or None if the entry is absent or incomplete."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        size = int(manifest["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out = {}
    for split, (fname, n) in manifest["splits"].items():
        shape = (n, size, size, 3)
        if n == 0:
            out[split] = np.zeros(shape, dtype=np.uint8)
            continue
        path = folder / fname
        if not path.exists() or path.stat().st_size != math.prod(shape):
            return None
        out[split] = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
    return out


def _write_entry(folder: Path, layout: Layout, size: int, workers: int, progress: bool) -> None:
    """Decode every split into raw uint8 files in a temporary folder, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        manifest: dict[str, tuple[str, int]] = {}
        done: dict[Item, tuple[np.memmap, int]] = {}  # decoded once, copied for other splits
        written: list[tuple[list[Item] | np.ndarray, str]] = []
        for split, src in layout.splits.items():
            same = next((f for s, f in written if s is src or _same_items(s, src)), None)
            if same is not None:  # identical list (e.g. UKB's database == query): one file
                manifest[split] = (same, len(src))
                continue
            fname = f"{split}.u8"
            manifest[split] = (fname, len(src))
            written.append((src, fname))
            if len(src) == 0:
                continue
            mm = np.memmap(tmp / fname, dtype=np.uint8, mode="w+", shape=(len(src), size, size, 3))

            def fill(i: int, src=src, mm=mm) -> None:
                if isinstance(src, np.ndarray):
                    mm[i] = resize(src[i], size)
                elif src[i] in done:
                    other, j = done[src[i]]
                    mm[i] = other[j]
                else:
                    try:
                        mm[i] = decode(src[i], size)
                    except Exception as err:
                        raise ValueError(f"cannot decode {src[i].path}: {err}") from err

            with ThreadPoolExecutor(max_workers=workers) as ex:
                name = folder.name.rsplit("-", 1)[0]
                bar = progress_bar(len(src), f"decoding {name}/{split} at {size} px", progress)
                for _ in ex.map(fill, range(len(src))):
                    bar.update()
                bar.close()
            mm.flush()
            if not isinstance(src, np.ndarray):
                done.update({it: (mm, i) for i, it in enumerate(src) if it not in done})
        (tmp / "manifest.json").write_text(json.dumps({"size": size, "splits": manifest}))
        done.clear()
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same entry first: keep theirs
            if _open_entry(folder) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _same_items(a: list[Item] | np.ndarray, b: list[Item] | np.ndarray) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    return len(a) == len(b) and a == b


def materialize(
    name: str, layout: Layout, root: Path, size: int, cache_dir: Path, workers: int,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """The layout's images as uint8 (N, s, s, 3) memmaps, decoded once and cached; s is
    `size`, or less where every image is smaller (`stored_side`)."""
    folder = cache_dir / f"{name}-{_cache_key(name, layout, root, size)}"
    images = _open_entry(folder)
    if images is None:
        if folder.exists():  # a damaged entry (a file truncated by hand): rebuild it
            log.warning("rebuilding damaged image cache %s", folder)
            shutil.rmtree(folder)
        side = stored_side(layout, size)
        log.info("decoding %s at %d px into %s", name, side, folder)
        _write_entry(folder, layout, side, workers, progress)
        images = _open_entry(folder)
        if images is None:
            raise RuntimeError(f"image cache {folder} is unreadable right after writing it")
    return images


# --- the public entry point --------------------------------------------------------------


def _limit_classification(layout: Layout, limit: int | None) -> Layout:
    if limit is None:
        return layout
    keep = {s: spread(len(src), limit) for s, src in layout.splits.items()}
    return replace(
        layout,
        splits={
            s: src[keep[s]] if isinstance(src, np.ndarray) else [src[i] for i in keep[s]]
            for s, src in layout.splits.items()
        },
        labels={s: lab[keep[s]] for s, lab in layout.labels.items()},
    )


def index(name: str, root: str | os.PathLike, *, limit: int | None = None) -> Layout:
    """What `load_task` would load, before any pixel is decoded: image files and labels."""
    root = Path(root).expanduser()
    entry = _check_args(name, root, 256, limit, None, None)
    missing = _missing(name, entry, root)
    if missing is not None:
        raise missing
    layout = entry.read(root, limit)
    return layout if entry.spec.kind == "retrieval" else _limit_classification(layout, limit)


def _check_args(name, root: Path, image_size, limit, workers, spec) -> _Entry:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 16:
        raise ValueError(f"image_size={image_size!r} must be an int >= 16")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r} must be None or an int >= 1")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r} must be None or an int >= 1")
    entry = _entry(name, root)
    if spec is not None and (spec.kind != entry.spec.kind or spec.role != "target"):
        raise ValueError(
            f"spec={spec!r} must have role 'target' and kind {entry.spec.kind!r} (that of {name!r})"
        )
    return entry


def load_task(
    name: str,
    root: str | os.PathLike,
    *,
    image_size: int = 256,
    limit: int | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    spec: TaskSpec | None = None,
    progress: bool = False,
) -> TaskData:
    """A real dataset under `root` as a target `TaskData` (images uint8, possibly memmaps).

    name: one of `REAL_TASKS` or an image folder under root (`tasks(root)`). root: the data
    folder (as given to torchvision's classes; the retrieval sets live in root/holidays,
    root/ukbench, root/oxford5k, ...; an image folder in root/<name>/train/<class>/...,
    root/<name>/test/<class>/..., placed by root/<name>/transferlab.yaml). image_size: the
    side images are decoded to (squashed), or their own largest side where every image is
    smaller (`stored_side`). download: fetch a torchvision dataset that is missing (never
    anything else). cache_dir: where decoded images go (default
    `transferlab.cache.default_root() / "real"`). workers: decoding threads (default: CPU
    count, at most 8). spec: another identity card; its kind must match the dataset's.
    progress: a text progress bar while decoding.
    """
    root = Path(root).expanduser()
    entry = _check_args(name, root, image_size, limit, workers, spec)
    if download and entry.fetch and _missing(name, entry, root) is not None:
        log.info("downloading %s into %s", name, root)
        entry.fetch(root)
    layout = index(name, root, limit=limit)
    for note in layout.notes:
        log.info("%s: %s", name, note)
    cache = Path(cache_dir) if cache_dir is not None else default_root() / "real"
    n_workers = workers or min(8, os.cpu_count() or 1)
    images = materialize(name, layout, root, image_size, cache, n_workers, progress)
    n_classes = len(layout.class_names)
    return TaskData(
        spec=spec or replace(entry.spec, n_classes=n_classes),
        images=images,
        labels=dict(layout.labels),
        truth=layout.truth,
        class_names=tuple(layout.class_names),
    )
