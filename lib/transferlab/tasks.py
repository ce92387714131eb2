"""What a task is: its identity card (TaskSpec) and its data (TaskData).

Both the embedded world and the real-data adapters produce these, so everything
downstream (features, probes, retrieval, study) sees one interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROLES = ("source", "target")
KINDS = ("single-label", "multi-label", "retrieval")
METRICS = ("accuracy", "mean_class_accuracy", "voc07_map", "retrieval_map", "ns_score")
GROUPS = ("source", "classification", "attributes", "fine-grained", "compositional", "retrieval")
DOMAINS = ("object", "scene")  # what the images are of: which source task a task resembles


@dataclass(frozen=True)
class TaskSpec:
    """The identity card of a task: what it is, how it is scored, how far from the source."""

    name: str
    role: str  # "source" | "target"
    group: str  # one of GROUPS
    kind: str  # one of KINDS
    metric: str  # one of METRICS
    analog: str  # the paper's dataset this task stands in for
    distance_rank: int  # 0 for sources; 1 (nearest) .. 16 (farthest) for targets
    n_classes: int  # classes, attributes, or retrieval instances
    domain: str = "object"  # one of DOMAINS: scene tasks are the analogs of MIT 67, SUN, ...

    def __post_init__(self) -> None:
        checks = (("role", ROLES), ("kind", KINDS), ("metric", METRICS), ("group", GROUPS),
                  ("domain", DOMAINS))
        for attr, valid in checks:
            if getattr(self, attr) not in valid:
                raise ValueError(f"{attr}={getattr(self, attr)!r} is not one of {valid}")

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True)
class RetrievalTruth:
    """Ground truth of a retrieval task, in database indices, one entry per query.

    `query_in_db[q]` is the database index of query q itself (-1 if it is not in the
    database): ignored by mAP, counted by the N-S score (as in UKB).
    """

    positives: tuple[np.ndarray, ...]
    junk: tuple[np.ndarray, ...]
    query_in_db: np.ndarray


# A held-out split of a single-label target task, drawn like its training split, where a
# backend can make one: what Table 6's search scores fine-tuning on (the fine-tuned network
# has seen the whole training split, so a cross-validated score there would flatter it; test
# images are never used to choose). No score is reported on it.
VALIDATION_SPLIT = "val"


@dataclass(frozen=True)
class TaskData:
    """The images and labels of one task.

    Classification tasks have splits "train" and "test" (single-label targets of the embedded
    world also `VALIDATION_SPLIT`). Retrieval tasks have "train"
    (images of *other* instances, for fitting PCA-whitening), "database" and "query",
    plus `truth`. Images are uint8 arrays (N, H, W, 3). Labels: int64 (N,) for
    single-label, uint8 (N, n_classes) for multi-label, instance id (N,) for retrieval.
    """

    spec: TaskSpec
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    truth: RetrievalTruth | None = None
    class_names: tuple[str, ...] = field(default=())

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.images:
            raise KeyError(f"split={name!r} is not one of {sorted(self.images)} for task {self.spec.name!r}")
        return self.images[name], self.labels[name]
