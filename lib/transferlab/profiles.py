"""Profiles: how big a run is. One place that sizes the world, the training and the probes.

smoke: tests and CI (seconds per notebook). quick: the default study (minutes on 2 cores).
full: higher resolution and more seeds (a GPU or a long CPU run). real: torchvision data and
pretrained networks (see transferlab.real).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .probes import ProbeConfig
from .training import TrainConfig
from .world import TARGETS, WorldConfig

# One task per group: what the smoke profile runs.
ONE_PER_GROUP = ("rooms", "object_attributes", "birds", "interactions", "object_instances")
# At least one task per group and two far (retrieval) ones: what the quick profile runs for
# the factors that need a new network per level (width, depth, early stopping, data size).
SUBSET = ("objects_in_clutter", "rooms", "object_attributes", "breeds", "birds", "interactions",
          "object_instances", "sculptures")


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int = 6
    lr: float = 0.01


@dataclass(frozen=True)
class Profile:
    name: str
    world: WorldConfig
    train: TrainConfig
    finetune: FinetuneSettings
    probe: ProbeConfig
    tasks: tuple[str, ...]  # the default target tasks of every notebook
    network_tasks: tuple[str, ...] = ()  # default tasks of network-per-level factors (() = tasks)
    seeds: tuple[int, ...] = (0,)
    n_boot: int = 200
    batch_size: int = 256  # feature extraction
    options: dict = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        world=WorldConfig(size=16, source_train_per_class=4, source_test_per_class=1,
                          target_train_per_class=3, target_test=40, retrieval_instances=6,
                          retrieval_fit=16, landmark_distractors=6),
        train=TrainConfig(epochs=1, batch_size=64, n_checkpoints=3),
        finetune=FinetuneSettings(epochs=1, lr=0.01),
        probe=ProbeConfig(Cs=(0.1, 1.0), folds=2),
        tasks=ONE_PER_GROUP,
        n_boot=20,
    ),
    "quick": Profile(
        name="quick",
        world=WorldConfig(size=32, source_train_per_class=60, source_test_per_class=10,
                          target_train_per_class=12, target_test=400, retrieval_instances=60,
                          retrieval_fit=300, landmark_distractors=100),
        train=TrainConfig(epochs=6, batch_size=128, n_checkpoints=5),
        finetune=FinetuneSettings(epochs=6, lr=0.01),
        probe=ProbeConfig(),
        tasks=TARGETS,
        network_tasks=SUBSET,
        n_boot=200,
    ),
    "full": Profile(
        name="full",
        world=WorldConfig(size=64, source_train_per_class=300, source_test_per_class=30,
                          target_train_per_class=30, target_test=2000, retrieval_instances=200,
                          retrieval_fit=2000, landmark_distractors=500),
        train=TrainConfig(epochs=30, batch_size=128, n_checkpoints=10),
        finetune=FinetuneSettings(epochs=15, lr=0.005),
        probe=ProbeConfig(),
        tasks=TARGETS,
        seeds=(0, 1, 2),
        n_boot=1000,
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        valid = list(PROFILES) + ["real"]
        if name == "real":
            raise ValueError("profile='real' runs on torchvision data: use transferlab.real")
        raise ValueError(f"profile={name!r} is not one of {valid}")
    return PROFILES[name]


def with_overrides(profile: Profile, **changes) -> Profile:
    return replace(profile, **changes)
