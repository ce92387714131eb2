"""Your own image-folder datasets under data_root, each placed by a small file beside it.

Layout (one folder per dataset, directly under data_root; the folder's name is the task's)::

    data_root/
      my_birds/
        transferlab.yaml          # optional: where the task sits (below)
        train/<class>/<image>     # .jpg .png .bmp .webp ...
        test/<class>/<image>

`transferlab.yaml` (every key optional; the defaults are those of a generic object
classification task, the nearest group to the source)::

    group: fine-grained           # one of FOLDER_GROUPS
    distance_rank: 8              # 1 (nearest the source) .. 16 (farthest); sets the task order
    kind: single-label            # one of FOLDER_KINDS
    metric: mean_class_accuracy   # one of FOLDER_METRICS
    domain: object                # "object" or "scene": which source it resembles
    analog: CUB                   # free text: the paper's dataset it stands in for

A folder of a known image-folder dataset (mit67, cub200, stanford40) takes that dataset's
place unless its file says otherwise. A notebook selects these tasks by name in `tasks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ..tasks import DOMAINS, TaskSpec

SPEC_FILE = "transferlab.yaml"
FOLDER_GROUPS = ("classification", "attributes", "fine-grained", "compositional")
FOLDER_KINDS = ("single-label",)  # class folders give one label per image
FOLDER_METRICS = ("accuracy", "mean_class_accuracy")
RANKS = range(1, 17)
DEFAULTS = {"group": "classification", "distance_rank": 2, "kind": "single-label",
            "metric": "accuracy", "domain": "object", "analog": "your image folder"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class FolderTask:
    """An image-folder dataset found under data_root: its folder and identity card."""

    path: Path
    spec: TaskSpec


def _choice(file: Path, key: str, value: object, valid: tuple) -> object:
    if value not in valid:
        raise ValueError(f"{file}: {key}={value!r} is not valid; valid choices: {list(valid)}")
    return value


def _rank(file: Path, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in RANKS:
        raise ValueError(f"{file}: distance_rank={value!r} must be an integer from "
                         f"{RANKS.start} (nearest the source) to {RANKS.stop - 1} (farthest)")
    return value


def read_spec(folder: Path, default: TaskSpec | None = None) -> TaskSpec:
    """The identity card of the image folder `folder` (its name is the task's name):
    `default` (or DEFAULTS) updated by `folder/transferlab.yaml`, every value checked."""
    file = folder / SPEC_FILE
    values: Mapping = {}
    if file.exists():
        try:
            values = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{file} is not valid YAML: {err}") from err
        if not isinstance(values, Mapping):
            raise ValueError(f"{file} must hold a mapping of keys {list(DEFAULTS)}, "
                             f"got {type(values).__name__}")
        unknown = sorted(set(map(str, values)) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"{file}: unknown keys {unknown}; valid keys: {list(DEFAULTS)}")
    base = default.as_dict() if default is not None else DEFAULTS
    merged = {k: values.get(k, base[k]) for k in DEFAULTS}
    if not isinstance(merged["analog"], str):
        raise ValueError(f"{file}: analog={merged['analog']!r} must be text")
    return TaskSpec(
        name=folder.name, role="target",
        group=_choice(file, "group", merged["group"], FOLDER_GROUPS),
        kind=_choice(file, "kind", merged["kind"], FOLDER_KINDS),
        metric=_choice(file, "metric", merged["metric"], FOLDER_METRICS),
        analog=merged["analog"], distance_rank=_rank(file, merged["distance_rank"]),
        n_classes=0, domain=_choice(file, "domain", merged["domain"], DOMAINS))


def check_legacy(root: Path) -> None:
    """Refuse the old layout (one image folder directly in data_root) with what to do."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        raise ValueError(
            f"data_root={str(root)!r} holds train/ and test/ directly: an image-folder dataset "
            f"now sits in a folder of its own under data_root, named as its task. Move them: "
            f"mkdir {root}/my_task && mv {root}/train {root}/test {root}/my_task/, optionally add "
            f"{root}/my_task/{SPEC_FILE} (group, distance_rank, metric; see README, 'Run on "
            f"real data'), and ask for tasks: [my_task]"
        )


def folder_tasks(root: Path, known: Mapping[str, TaskSpec], reserved: set[str]) -> dict[str, FolderTask]:
    """Every image-folder dataset under `root`: a sub-folder with train/ and test/.

    known: specs of named image-folder datasets (their defaults). reserved: names of the
    other real tasks, which a folder may not take.
    """
    if not root.is_dir():
        return {}
    check_legacy(root)
    found: dict[str, FolderTask] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        has_splits = (folder / "train").is_dir() and (folder / "test").is_dir()
        if not has_splits:
            if (folder / SPEC_FILE).exists():
                raise ValueError(f"{folder / SPEC_FILE} describes an image-folder dataset, but "
                                 f"{folder} lacks train/<class>/<image> and test/<class>/<image>")
            continue
        if not _NAME.match(folder.name):
            raise ValueError(f"{folder}: a task name must be letters, digits, '_', '-' or '.'; "
                             "rename the folder")
        if folder.name in reserved:
            raise ValueError(f"{folder}: {folder.name!r} is the name of a real dataset with its "
                             f"own layout; rename the folder")
        spec = read_spec(folder, known.get(folder.name))
        found[folder.name] = FolderTask(folder, replace(spec, n_classes=_count(folder)))
    return found


def _count(folder: Path) -> int:
    return sum(1 for d in (folder / "train").iterdir() if d.is_dir())
