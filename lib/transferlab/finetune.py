"""Fine-tuning a source network on a target task (section 3.2.3, Tables 4 and 5).

The source network's fc8 is replaced by a fresh layer with the target's classes; all layers
are then trained on the target training split with a learning rate lower than the source's
(the new layer learns `head_lr_mult` times faster, as in Caffe's fine-tuning recipe).
Optional `extra` images from another task (Table 5) join the training data; their labels
must already be in the target's label space.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import compute
from .architecture import NetConfig
from .cache import Cache
from .training import (
    SCHEDULES,
    StateDict,
    check_data,
    check_loop_config,
    deterministic,
    make_plan,
    run_loop,
    state_digest,
)

if TYPE_CHECKING:  # torch is imported where it computes: configs and keys load without it
    import torch

__all__ = ["FinetuneConfig", "finetune", "SCHEDULES"]


@dataclass(frozen=True)
class FinetuneConfig:
    """SGD from the source weights; `lr` should be well below the source's (0.03 default).

    `steps` (when given) fixes the number of iterations whatever the target's size, so a
    small target set still moves the representation; the backbone learns at `lr`, the new
    head `head_lr_mult` times faster; `frozen_bn` keeps BatchNorm's source statistics.
    """

    epochs: int = 10
    steps: int | None = None
    batch_size: int = 64
    lr: float = 0.005
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup: float = 0.0
    seed: int = 0
    augment: bool = True
    frozen_bn: bool = True

    def __post_init__(self) -> None:
        check_loop_config(self)
        if not self.head_lr_mult > 0:
            raise ValueError(f"head_lr_mult={self.head_lr_mult!r} must be > 0")


def finetune(
    net_cfg: NetConfig,
    state: Mapping[str, torch.Tensor],
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: FinetuneConfig,
    *,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    data_id: Mapping[str, Any],
    cache: Cache | None = None,
    progress: bool = True,
) -> StateDict:
    """Fine-tuned weights (fc8 has `n_classes` outputs), cached (kind "finetune").

    Load them with `training.load(dataclasses.replace(net_cfg, n_classes=n_classes), ...)`.
    The key holds a digest of the source weights, so `data_id` need only name the target
    data (and the extra data, if any).
    """
    import torch

    from .networks import build, replace_head
    target_cfg = dataclasses.replace(net_cfg, n_classes=n_classes)  # validates n_classes
    check_data(target_cfg, images, labels)
    if extra is not None:
        check_data(target_cfg, extra[0], extra[1])
        if extra[0].shape[1:] != images.shape[1:]:
            raise ValueError(
                f"extra images {extra[0].shape[1:]} differ in size from images {images.shape[1:]}"
            )
        images = np.concatenate([images, extra[0]])
        labels = np.concatenate([np.asarray(labels), np.asarray(extra[1])])
    cache = cache if cache is not None else Cache()
    key = {
        "net": net_cfg,
        "source": state_digest(state),
        "n_classes": n_classes,
        "finetune": cfg,
        "data": dict(data_id),
        "extra": extra is not None,
        "compute": compute.training_id(),
    }

    def run() -> dict[str, Any]:
        with deterministic(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            net = build(net_cfg)
            net.load_state_dict(state)
            replace_head(net, n_classes)
            plan = make_plan(cfg, len(labels), net_cfg.input_size)
            out = run_loop(net, plan, images, labels, lr_mults={"fc8.": cfg.head_lr_mult},
                           progress=progress, desc="finetune", frozen_bn=cfg.frozen_bn)
        return {"state": out["state"], "log": out["log"]}

    return cache.get_or_compute("finetune", key, run, codec="torch")["state"]
