"""Index the standard instance-retrieval layouts (not in torchvision) into a `Layout`.

Also home of the types every real-data reader produces (`Item`, `Layout`) and of the one
missing-dataset error, so that `datasets.py` (which decodes, caches and registers tasks)
builds on this module and not the other way round.

Layouts, all under the data root given to `load_task`:

- ``holidays/``: INRIA Holidays, files ``NNNNxx.jpg`` anywhere below (the tars unpack into
  ``jpg/``). Group = the first four digits; the ``xx == 00`` image is the group's query. The
  database is every image (queries included; the metric ignores a query's own entry).
- ``ukbench/``: UKB, files ``ukbenchNNNNN.jpg`` anywhere below (``full/`` in the zip). Group =
  ``N // 4``; every image is a query and is in the database (the N-S score counts it).
- ``oxford5k/``, ``paris6k/``: the classic Oxford / Paris buildings: images anywhere below
  (Paris keeps per-landmark sub-folders), ground-truth files ``<landmark>_<n>_{query,good,ok,
  junk}.txt`` anywhere below. The query line is ``[oxc1_]<image> x1 y1 x2 y2``; the query image
  is cropped to that box. Positives = good + ok, junk = junk. Zero-byte images (Paris has
  some broken files) are left out of the database and of the ground truth.
- ``roxford5k/``, ``rparis6k/``: the revisited sets (revisitop's ``data/datasets/<name>/``):
  ``gnd_<name>.pkl`` and ``jpg/<image>.jpg``. Protocol "medium": positives = easy + hard,
  junk = junk; "hard": positives = hard, junk = junk + easy.

Conventions: `RetrievalTruth.positives[q]` never contains the query's own database index
(that is `query_in_db[q]`, -1 when the query is not in the database). The "train" split (for
fitting PCA-whitening) is the database without the query images (Holidays) or the whole
database (UKB, Oxford, Paris, where every image is a query or queries are few): the protocol
allows PCA "fitted on a held-out or database set, never on the queries alone"; no standard
disjoint set ships with these datasets.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..tasks import RetrievalTruth


class DatasetNotFound(FileNotFoundError):
    """A dataset folder or file is missing; the message says where it was looked for and how
    to get it."""


@dataclass(frozen=True)
class Item:
    """One image to decode: a file, optionally cropped to `box` = (x1, y1, x2, y2) pixels."""

    path: Path
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Layout:
    """What a reader found on disk, before any pixel is decoded.

    `splits[s]` is a list of `Item`s, or a uint8 array (N, H, W, 3) for datasets stored as
    arrays (CIFAR). Labels are per split, as in `TaskData`.
    """

    splits: dict[str, list[Item] | np.ndarray]
    labels: dict[str, np.ndarray]
    class_names: tuple[str, ...] = ()
    truth: RetrievalTruth | None = None
    notes: tuple[str, ...] = field(default=())


# --- where to get them -------------------------------------------------------------------

SOURCES = {
    "holidays": "INRIA Holidays (jpg1.tar.gz, jpg2.tar.gz) from "
    "https://lear.inrialpes.fr/people/jegou/data.php#holidays",
    "ukbench": "UKB (ukbench.zip) from https://archive.org/details/ukbench",
    "oxford5k": "oxbuild_images.tgz and gt_files_170407.tgz from "
    "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/",
    "paris6k": "paris_1.tgz, paris_2.tgz and paris_120310.tgz from "
    "https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/",
    "roxford5k": "revisitop's download script (https://github.com/filipradenovic/revisitop, "
    "python/download.py) or http://cmp.felk.cvut.cz/revisitop/data/datasets/roxford5k/",
    "rparis6k": "revisitop's download script (https://github.com/filipradenovic/revisitop, "
    "python/download.py) or http://cmp.felk.cvut.cz/revisitop/data/datasets/rparis6k/",
}


def not_found(dataset: str, looked_for: Path, expects: str) -> DatasetNotFound:
    return DatasetNotFound(
        f"{dataset} not found: looked for {looked_for} ({expects}). It is not in torchvision, "
        f"so download=True cannot fetch it: get {SOURCES[dataset]} and unpack it there."
    )


# --- small helpers -----------------------------------------------------------------------


def _images_by_pattern(folder: Path, pattern: re.Pattern[str]) -> dict[str, Path]:
    """file name -> path of every non-empty file below `folder` whose name matches."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if pattern.fullmatch(path.name) and path.is_file() and path.stat().st_size > 0:
            if path.name in found:
                raise ValueError(f"{path.name} appears twice: {found[path.name]} and {path}")
            found[path.name] = path
    return found


def _dataset_images(root: Path, name: str, pattern: re.Pattern[str], what: str) -> dict[str, Path]:
    """The files below `root / name` whose names match; not_found (naming `what`) if none."""
    folder = root / name
    files = _images_by_pattern(folder, pattern) if folder.is_dir() else {}
    if not files:
        raise not_found(name, folder, f"{what} anywhere below it")
    return files


def spread(n: int, k: int | None) -> np.ndarray:
    """`min(n, k)` indices spread evenly over range(n) (all of them for k=None), sorted."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def _as_index_arrays(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(sorted(x), dtype=np.int64) for x in lists)


# --- Holidays and UKB: groups of images ---------------------------------------------------

_HOLIDAYS = re.compile(r"(\d{4})(\d{2})\.jpe?g", re.IGNORECASE)
_UKB = re.compile(r"ukbench(\d{5})\.jpe?g", re.IGNORECASE)


def read_holidays(root: Path, limit: int | None = None) -> Layout:
    """INRIA Holidays; `limit` keeps that many groups (spread evenly over the group ids)."""
    files = _dataset_images(root, "holidays", _HOLIDAYS, "image files NNNNxx.jpg")
    groups: dict[str, list[str]] = {}
    for fname in files:  # sorted, so the 00 image comes first in its group
        groups.setdefault(_HOLIDAYS.fullmatch(fname).group(1), []).append(fname)
    with_query = [g for g, names in groups.items() if _HOLIDAYS.fullmatch(names[0]).group(2) == "00"]
    kept = [with_query[i] for i in spread(len(with_query), limit)]
    db_names = [name for g in kept for name in groups[g]]
    db_group = np.array([gi for gi, g in enumerate(kept) for _ in groups[g]], dtype=np.int64)
    db_index = {name: i for i, name in enumerate(db_names)}
    queries = [groups[g][0] for g in kept]
    q_db = np.array([db_index[q] for q in queries], dtype=np.int64)
    positives = [[db_index[n] for n in groups[g][1:]] for g in kept]
    is_query = np.zeros(len(db_names), dtype=bool)
    is_query[q_db] = True
    train = np.flatnonzero(~is_query)
    db_items = [Item(files[n]) for n in db_names]
    return Layout(
        splits={
            "train": [db_items[i] for i in train],
            "database": db_items,
            "query": [db_items[i] for i in q_db],
        },
        labels={"train": db_group[train], "database": db_group, "query": db_group[q_db]},
        class_names=tuple(kept),
        truth=RetrievalTruth(
            positives=_as_index_arrays(positives),
            junk=tuple(np.zeros(0, dtype=np.int64) for _ in kept),
            query_in_db=q_db,
        ),
        notes=(f"{len(groups) - len(with_query)} groups without a 00 query image skipped",)
        if len(with_query) < len(groups)
        else (),
    )


def read_ukbench(root: Path, limit: int | None = None) -> Layout:
    """UKB; `limit` keeps that many groups of 4 (spread evenly over the group ids)."""
    files = _dataset_images(root, "ukbench", _UKB, "image files ukbenchNNNNN.jpg")
    by_group: dict[int, list[str]] = {}
    for fname in files:
        by_group.setdefault(int(_UKB.fullmatch(fname).group(1)) // 4, []).append(fname)
    gids = sorted(by_group)
    kept = [gids[i] for i in spread(len(gids), limit)]
    names = [n for g in kept for n in by_group[g]]
    group = np.array([gi for gi, g in enumerate(kept) for _ in by_group[g]], dtype=np.int64)
    positives = [
        np.flatnonzero((group == group[i]) & (np.arange(len(names)) != i)) for i in range(len(names))
    ]
    items = [Item(files[n]) for n in names]
    return Layout(
        # one list object for all three: the cache stores it once
        splits={"train": items, "database": items, "query": items},
        labels={"train": group, "database": group, "query": group},
        class_names=tuple(f"{g:04d}" for g in kept),
        truth=RetrievalTruth(
            positives=tuple(p.astype(np.int64) for p in positives),
            junk=tuple(np.zeros(0, dtype=np.int64) for _ in names),
            query_in_db=np.arange(len(names), dtype=np.int64),
        ),
    )


# --- Oxford / Paris: landmark queries with good/ok/junk lists -----------------------------


@dataclass(frozen=True)
class _Query:
    landmark: str
    image: str  # image name without extension
    box: tuple[float, float, float, float]
    positives: frozenset[str]
    junk: frozenset[str]


def _landmark_layout(
    dataset: str, images: dict[str, Path], db_names: list[str], queries: list[_Query], limit: int | None
) -> Layout:
    """The common part of classic and revisited Oxford / Paris: select, index, label."""
    missing = sorted({q.image for q in queries} - images.keys())
    if missing:
        raise DatasetNotFound(
            f"{dataset}: {len(missing)} query images are missing (e.g. {missing[0]}.jpg); "
            f"get {SOURCES[dataset]}"
        )
    db_names = [n for n in db_names if n in images]
    relevant = set().union(*(q.positives | q.junk | {q.image} for q in queries))
    if limit is not None:
        others = [n for n in db_names if n not in relevant]
        extra = {others[i] for i in spread(len(others), max(limit - len(relevant), 0))}
        db_names = [n for n in db_names if n in relevant or n in extra]
    db_index = {n: i for i, n in enumerate(db_names)}
    landmarks = sorted({q.landmark for q in queries})
    lm_index = {lm: i for i, lm in enumerate(landmarks)}
    db_label = np.full(len(db_names), -1, dtype=np.int64)
    for q in queries:
        for n in q.positives:
            if n in db_index:
                db_label[db_index[n]] = lm_index[q.landmark]
    q_db = np.array([db_index.get(q.image, -1) for q in queries], dtype=np.int64)
    positives = [[db_index[n] for n in q.positives if n in db_index and n != q.image] for q in queries]
    junk = [[db_index[n] for n in q.junk if n in db_index and n != q.image] for q in queries]
    db_items = [Item(images[n]) for n in db_names]
    return Layout(
        splits={
            "train": db_items,
            "database": db_items,
            "query": [Item(images[q.image], q.box) for q in queries],
        },
        labels={
            "train": db_label,
            "database": db_label,
            "query": np.array([lm_index[q.landmark] for q in queries], dtype=np.int64),
        },
        class_names=tuple(landmarks),
        truth=RetrievalTruth(
            positives=_as_index_arrays(positives),
            junk=_as_index_arrays(junk),
            query_in_db=q_db,
        ),
    )


def _jpgs_by_stem(folder: Path) -> dict[str, Path]:
    found = _images_by_pattern(folder, re.compile(r".+\.jpe?g", re.IGNORECASE))
    return {Path(name).stem: path for name, path in found.items()}


def _read_names(path: Path) -> frozenset[str]:
    return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip())


def read_oxford_classic(root: Path, dataset: str, limit: int | None = None) -> Layout:
    """Classic Oxford 5k / Paris 6k. `limit` caps the database at max(limit, images relevant
    to some query): every query keeps all its positives and junk; distractors are spread."""
    folder = root / dataset
    gt_files = sorted(folder.rglob("*_query.txt")) if folder.is_dir() else []
    if not gt_files:
        raise not_found(dataset, folder, "ground-truth files <landmark>_<n>_query.txt anywhere below it")
    images = _jpgs_by_stem(folder)
    if not images:
        raise not_found(dataset, folder, "the .jpg images anywhere below it")
    queries = []
    for qfile in gt_files:
        base = qfile.name[: -len("_query.txt")]
        fields = qfile.read_text().split()
        if len(fields) != 5:
            raise ValueError(f"{qfile}: expected '<image> x1 y1 x2 y2', got {' '.join(fields)!r}")
        image = fields[0].removeprefix("oxc1_")
        box = tuple(float(v) for v in fields[1:])
        lists = {}
        for kind in ("good", "ok", "junk"):
            path = qfile.with_name(f"{base}_{kind}.txt")
            if not path.exists():
                raise DatasetNotFound(f"{dataset}: {path} is missing (every _query.txt needs it)")
            lists[kind] = _read_names(path)
        queries.append(_Query(base.rsplit("_", 1)[0], image, box, lists["good"] | lists["ok"], lists["junk"]))
    return _landmark_layout(dataset, images, sorted(images), queries, limit)


# Pickles hold code references; the ground-truth files are plain containers of lists and numpy
# arrays, so only what those need may be loaded (anything else is refused, not executed).
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only plain containers and numpy arrays are allowed"
        )


def load_plain_pickle(path: Path, encoding: str = "ASCII"):
    """Load a pickle of plain containers and numpy arrays (revisitop ground truth, CIFAR batches).

    These are data files from the datasets' publishers (trusted), but they are still read with
    an unpickler that refuses any class other than numpy's array reconstructors.
    """
    with open(path, "rb") as fh:
        return _ArraysOnlyUnpickler(fh, encoding=encoding).load()


REVISITED_PROTOCOLS = ("medium", "hard")


def read_revisited(root: Path, dataset: str, protocol: str = "medium", limit: int | None = None) -> Layout:
    """Revisited Oxford / Paris (``gnd_<dataset>.pkl`` + ``jpg/``), `protocol` medium or hard."""
    if protocol not in REVISITED_PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not one of {REVISITED_PROTOCOLS}")
    folder = root / dataset
    gnd_path = folder / f"gnd_{dataset}.pkl"
    if not gnd_path.is_file():
        raise not_found(dataset, gnd_path, "the revisited ground-truth pickle")
    if not (folder / "jpg").is_dir():
        raise not_found(dataset, folder / "jpg", "the images as jpg/<name>.jpg")
    cfg = load_plain_pickle(gnd_path)
    imlist, qimlist, gnd = list(cfg["imlist"]), list(cfg["qimlist"]), list(cfg["gnd"])
    if len(qimlist) != len(gnd):
        raise ValueError(f"{gnd_path}: {len(qimlist)} queries but {len(gnd)} ground-truth entries")
    images = _jpgs_by_stem(folder / "jpg")
    missing = [n for n in imlist if n not in images]
    if missing:
        raise DatasetNotFound(
            f"{dataset}: {len(missing)} of {len(imlist)} database images are missing from "
            f"{folder / 'jpg'} (e.g. {missing[0]}.jpg); get {SOURCES[dataset]}"
        )

    def names(key_lists: Sequence[str], g: dict) -> frozenset[str]:
        return frozenset(imlist[int(i)] for key in key_lists for i in np.asarray(g[key]).ravel())

    pos_keys, junk_keys = (
        (("easy", "hard"), ("junk",)) if protocol == "medium" else (("hard",), ("junk", "easy"))
    )
    queries = [
        _Query(
            landmark=q.rsplit("_", 1)[0],
            image=q,
            box=tuple(float(v) for v in np.asarray(g["bbx"]).ravel()[:4]),
            positives=names(pos_keys, g),
            junk=names(junk_keys, g),
        )
        for q, g in zip(qimlist, gnd, strict=True)
    ]
    return _landmark_layout(dataset, images, imlist, queries, limit)
