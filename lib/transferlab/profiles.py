"""Profiles: how big a run is. One place that sizes the world, the training and the probes.

smoke: tests and CI (seconds per notebook). quick: the default study (minutes on 2 cores).
full: higher resolution and more seeds (a GPU or a long CPU run). real: torchvision data and
pretrained networks (see transferlab.real).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .finetune import FinetuneConfig
from .probes import ProbeConfig
from .training import TrainConfig
from .world import TARGETS, WorldConfig

# One task per group: what the smoke profile runs.
ONE_PER_GROUP = ("rooms", "object_attributes", "birds", "interactions", "object_instances")


# Source training by steps: each network trains for the steps that bring the standard one to
# its plateau, with Caffe's step schedule (x0.1 at 1/2 and 3/4), so the last snapshots lie
# on the plateau of *that* schedule. That criterion alone is weak: the decay flattens any
# length, so lengths are compared (BENCHMARKS.md, "Across training lengths" and "Twice as
# long again"). Medium at 32 px: 71.8 % top-1 after 1,500 steps, 78.7 % after 3,000, 83.4 %
# after 6,000 (train 94.0 %), 87.3 % after 12,000: still learning, but above the 55-85 % band
# the issue asks for (the source task is too easy to meet both), so the quick profile trains
# for 6,000, inside the band. Snapshots for early stopping:
# fractions; 0 is the random initialisation (the world card's measured distance starts from it).
# Fine-tuning's learning rates: the default and 2.5x either side, all well below the source's
# 0.03 ("set to be less than the initial learning rate", section 3.2.3): a near task keeps its
# features with the lowest, a far one moves them with the highest.
FINETUNE_LRS = (0.002, 0.005, 0.0125)
SNAPSHOTS = (0.0, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4, 7 / 8, 1.0)


@dataclass(frozen=True)
class Profile:
    name: str
    world: WorldConfig
    train: TrainConfig
    finetune: FinetuneConfig
    probe: ProbeConfig
    tasks: tuple[str, ...]  # the default target tasks of every notebook
    seeds: tuple[int, ...] = (0,)
    n_boot: int = 200
    batch_size: int = 256  # feature extraction
    options: dict = field(default_factory=dict)
    # Learning rates a fine-tune chooses among on the task's validation split (Study.tuned);
    # fewer than two: `finetune.lr` as it is.
    finetune_lrs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        bad = [lr for lr in self.finetune_lrs
               if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0]
        if bad:
            raise ValueError(f"finetune_lrs {bad} must be learning rates > 0")
        object.__setattr__(self, "finetune_lrs", tuple(sorted(float(lr) for lr in self.finetune_lrs)))


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        world=WorldConfig(size=16, source_train_per_class=4, source_test_per_class=1,
                          target_train_per_class=3, target_test=40, retrieval_instances=6,
                          retrieval_fit=16, landmark_distractors=6),
        train=TrainConfig(steps=8, batch_size=64, schedule="step", snapshots=(0.0, 0.25, 0.5, 1.0)),
        finetune=FinetuneConfig(steps=4, batch_size=32, lr=0.005),
        probe=ProbeConfig(Cs=(0.1, 1.0), folds=2),
        tasks=ONE_PER_GROUP,
        n_boot=20,
        finetune_lrs=(0.002, 0.0125),  # two: the choice runs in the tests, cheaply
    ),
    "quick": Profile(
        name="quick",
        # 200 images per source class: 6,000 steps of 128 see each image ~38 times (Medium:
        # top-1 94 % on train against 83.4 % on test); 1,200 retrieval
        # images to fit whitening, so that FC6's full 1,024 dimensions are full rank.
        # 1,000 test images per task and 90 retrieval instances (were 400 and 60), so that each
        # score is measured more precisely (BENCHMARKS.md, "More test images per task"); 12
        # training images per class: the small target sets the paper transfers to.
        world=WorldConfig(size=32, source_train_per_class=200, source_test_per_class=20,
                          target_train_per_class=12, target_test=1000, retrieval_instances=90,
                          retrieval_fit=1200, landmark_distractors=100),
        train=TrainConfig(steps=6000, batch_size=128, schedule="step", snapshots=SNAPSHOTS),
        # >= 100 steps whatever the target's size, backbone at lr, new head 10x, BN frozen;
        # lr chosen per task on its validation split among FINETUNE_LRS.
        finetune=FinetuneConfig(steps=150, batch_size=64, lr=0.005),
        probe=ProbeConfig(),
        # Every factor on all 16 tasks: a claim compares groups of tasks, and a group of one
        # or two tasks leaves its bootstrap over tasks nothing to resample. Features and
        # probes cost little beside training (which does not depend on the task count).
        tasks=TARGETS,
        n_boot=200,
        finetune_lrs=FINETUNE_LRS,
    ),
    "full": Profile(
        name="full",
        world=WorldConfig(size=64, source_train_per_class=300, source_test_per_class=30,
                          target_train_per_class=30, target_test=2000, retrieval_instances=200,
                          retrieval_fit=2000, landmark_distractors=500),
        train=TrainConfig(steps=6000, batch_size=128, schedule="step", snapshots=SNAPSHOTS),
        finetune=FinetuneConfig(steps=400, batch_size=64, lr=0.005),
        probe=ProbeConfig(),
        tasks=TARGETS,
        seeds=(0, 1, 2),
        n_boot=1000,
        finetune_lrs=FINETUNE_LRS,
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


def with_world_seed(profile: Profile, seed: int) -> Profile:
    """Another draw of the profile's world: the same tasks and sizes, world seed `seed`."""
    if seed == profile.world.seed:
        return profile
    return replace(profile, world=replace(profile.world, seed=seed))
