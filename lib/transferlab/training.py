"""Training a network on a source task, cached, resumable and deterministic.

`train()` is content-addressed through the one cache (kind "network"): the key is the network
config, the training config, the caller's `data_id` and the precision policy. While it runs,
a resume checkpoint (model, optimizer, RNG state, iteration, log-spaced snapshots so far) is
written atomically every `resume_every` iterations under `cache.root/resume/<key>.pt`; a
killed run called again continues from there and reaches the same weights as an
uninterrupted one, because data order and augmentation are functions of (seed, epoch) and
(seed, iteration), not of a running RNG.

Determinism holds for a fixed thread count (oneDNN may split reductions differently for
another count); the key does not include threads.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from . import compute
from .architecture import NetConfig, crop_size
from .cache import Cache, CorruptEntry, atomic_write, config_key
from .progress import report as report_progress

if TYPE_CHECKING:  # torch is imported where it computes: configs and keys load without it
    import torch
    from torch import nn

SCHEDULES = ("cosine", "step", "constant")

# Inputs are scaled to about [-2, 2]; BatchNorm after conv1 absorbs any per-channel offset.
PIXEL_MEAN = 127.5
PIXEL_STD = 63.75
# torchvision's ImageNet normalisation in pixel units, for pretrained torchvision models.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

StateDict = dict[str, "torch.Tensor"]
LOG_BLOCK = 20  # iterations per logged mean loss


@dataclass(frozen=True)
class TrainConfig:
    """SGD training of a network from scratch on a source task.

    `data_fraction` keeps the first fraction of a class-stratified permutation (seeded by
    `seed`), so smaller fractions are subsets of larger ones.

    Length: `steps` SGD iterations when given (what the profiles use: a network is trained
    for a number of steps chosen to reach its plateau, whatever the data size), else `epochs`
    passes over the data. Snapshots for the early-stopping factor: at the fractions of
    training in `snapshots` when given, else `n_checkpoints` log-spaced iterations (the last
    one is the final network).
    """

    epochs: int = 10
    steps: int | None = None
    batch_size: int = 128
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup: float = 0.05  # fraction of iterations with a linear learning-rate ramp
    seed: int = 0
    data_fraction: float = 1.0
    n_checkpoints: int = 8
    snapshots: tuple[float, ...] = ()
    augment: bool = True  # random crop to the input size + mirror; else centre crop

    def __post_init__(self) -> None:
        check_loop_config(self)
        if not 0.0 < self.data_fraction <= 1.0:
            raise ValueError(f"data_fraction={self.data_fraction!r} must be in (0, 1]")
        if self.n_checkpoints < 0:
            raise ValueError(f"n_checkpoints={self.n_checkpoints!r} must be >= 0")
        bad = [f for f in self.snapshots if not 0.0 <= f <= 1.0]
        if bad:
            raise ValueError(f"snapshots={self.snapshots!r}: fractions {bad} are not in [0, 1]")

    def snapshot_iterations(self, total: int) -> list[int]:
        """The iterations (of `total`) whose weights are kept, the final one included.

        Fraction 0 keeps the initial weights: the random-initialised network, the baseline
        against which the world card measures how much source training helps each task.
        """
        if self.snapshots:
            return sorted({0 if f == 0 else max(1, round(f * total)) for f in self.snapshots}
                          | {total})
        return checkpoint_iterations(total, self.n_checkpoints)


def check_loop_config(cfg: Any) -> None:
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"schedule={cfg.schedule!r} is not one of {SCHEDULES}")
    for name in ("epochs", "batch_size", "steps"):
        value = getattr(cfg, name)
        if name == "steps" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    if not cfg.lr > 0:
        raise ValueError(f"lr={cfg.lr!r} must be > 0")
    if not 0.0 <= cfg.momentum < 1.0:
        raise ValueError(f"momentum={cfg.momentum!r} must be in [0, 1)")
    if cfg.weight_decay < 0:
        raise ValueError(f"weight_decay={cfg.weight_decay!r} must be >= 0")
    if not 0.0 <= cfg.warmup < 1.0:
        raise ValueError(f"warmup={cfg.warmup!r} must be in [0, 1)")


class TrainingInterrupted(RuntimeError):
    """Raised by the `stop_after_iterations` test hook, as if the process had been killed."""


class Snapshots(Mapping[int, StateDict]):
    """A training run's snapshots by iteration: the final weights held, the earlier ones read
    from the run's cache entry when asked.

    Only early stopping and training from scratch read earlier snapshots, once per model; a
    worker that keeps a few networks would otherwise hold eight spare copies of each. Each
    read loads the whole entry (0.2 s for the largest quick network) and returns a new copy.
    """

    def __init__(self, iterations: Sequence[int], final: int, state: StateDict,
                 read: Callable[[], Mapping[int, StateDict]]) -> None:
        self._iterations = tuple(sorted({*iterations, final}))
        self._final, self._state, self._read = final, state, read

    def __getitem__(self, iteration: int) -> StateDict:
        if iteration == self._final:
            return self._state
        if iteration not in self._iterations:
            raise KeyError(iteration)
        return self._read()[iteration]

    def __iter__(self) -> Iterator[int]:
        return iter(self._iterations)

    def __len__(self) -> int:
        return len(self._iterations)

    def __contains__(self, iteration: object) -> bool:
        return iteration in self._iterations

    def __repr__(self) -> str:
        return f"Snapshots({list(self._iterations)}, final={self._final})"


@dataclass(frozen=True)
class TrainedNet:
    """Final weights, log-spaced snapshots (iteration -> state, final included; the earlier
    ones read from the cache when asked, see `Snapshots`) and a log.

    `key` is the cache key of the training run: a stable id for feature cache keys.
    """

    net_cfg: NetConfig
    state: StateDict
    checkpoints: Mapping[int, StateDict]
    log: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def model(self, iteration: int | None = None) -> nn.Module:
        """The network in eval mode, at `iteration` (a key of `checkpoints`) or final."""
        if iteration is None:
            return load(self.net_cfg, self.state)
        if iteration not in self.checkpoints:
            raise ValueError(f"iteration={iteration!r} is not one of {sorted(self.checkpoints)}")
        return load(self.net_cfg, self.checkpoints[iteration])


def load(net_cfg: NetConfig, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """A network with `state` loaded, in eval mode, in the active memory layout."""
    import torch

    from .networks import build
    net = build(net_cfg)
    net.load_state_dict(state)
    if compute.use_channels_last():
        net = net.to(memory_format=torch.channels_last)
    return net.eval()


# ----------------------------------------------------------------------------- public entry


def train(
    net_cfg: NetConfig,
    train_cfg: TrainConfig,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    data_id: Mapping[str, Any],
    cache: Cache | None = None,
    progress: bool = True,
    resume_every: int = 200,
    stop_after_iterations: int | None = None,
) -> TrainedNet:
    """Train (or load from the cache) a network on `images` (N,H,W,3) uint8, `labels` (N,).

    `data_id` is a JSON-able dict identifying the data; it goes into the cache key with the
    configs, so two different data sets must never share one.
    """
    check_data(net_cfg, images, labels)
    if resume_every < 1:
        raise ValueError(f"resume_every={resume_every!r} must be >= 1")
    cache = cache if cache is not None else Cache()
    key_cfg = _run_config(net_cfg, train_cfg, data_id)
    key = config_key("network", key_cfg)
    resume_path = _resume_path(cache, key)

    def run() -> dict[str, Any]:
        return _fit(
            net_cfg, train_cfg, images, labels, resume_path, resume_every,
            stop_after_iterations, progress,
        )

    payload = cache.get_or_compute("network", key_cfg, run, codec="torch")
    resume_path.unlink(missing_ok=True)
    checkpoints = Snapshots([int(k) for k in payload["checkpoints"]],
                            int(payload["log"]["iterations"]), payload["state"],
                            functools.partial(_stored_snapshots, cache, key_cfg))
    return TrainedNet(net_cfg, payload["state"], checkpoints, payload["log"], key)


def _stored_snapshots(cache: Cache, key_cfg: Mapping[str, Any]) -> dict[int, StateDict]:
    # Not get_or_compute: a closure that could retrain would keep the source images alive.
    try:
        payload = cache.load("network", key_cfg, codec="torch")
    except (KeyError, CorruptEntry) as err:
        raise RuntimeError(
            f"the cache entry of network {config_key('network', key_cfg)} under {cache.root} "
            f"went missing or corrupt after it was loaded ({err.args[0] if err.args else err}); "
            "run again to retrain it"
        ) from err
    return {int(k): v for k, v in payload["checkpoints"].items()}


def _run_config(net_cfg: NetConfig, train_cfg: TrainConfig, data_id: Mapping[str, Any]) -> dict:
    return {"net": net_cfg, "train": train_cfg, "data": dict(data_id),
            "compute": compute.training_id()}


def run_key(net_cfg: NetConfig, train_cfg: TrainConfig, data_id: Mapping[str, Any]) -> str:
    """The cache key `train` stores this run under (`TrainedNet.key`), without training."""
    return config_key("network", _run_config(net_cfg, train_cfg, data_id))


def check_data(net_cfg: NetConfig, images: np.ndarray, labels: np.ndarray) -> None:
    """ValueError unless images are (N,S,S,3) uint8 with S >= input size and labels fit."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError(f"images must be a uint8 numpy array, got {_describe(images)}")
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must have shape (N, S, S, 3), got {images.shape}")
    if images.shape[1] < net_cfg.input_size:
        raise ValueError(
            f"images of {images.shape[1]} px are smaller than input_size={net_cfg.input_size}"
        )
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape == (len(images), net_cfg.n_classes):
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("multi-label targets (N, n_classes) must be 0/1")
        return
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"labels must have shape ({len(images)},) or ({len(images)}, "
                         f"n_classes={net_cfg.n_classes}), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if len(labels) < 2:
        raise ValueError(f"need at least 2 training images, got {len(labels)}")
    if labels.min() < 0 or labels.max() >= net_cfg.n_classes:
        raise ValueError(
            f"labels span [{labels.min()}, {labels.max()}], outside [0, n_classes="
            f"{net_cfg.n_classes})"
        )


def _describe(x: Any) -> str:
    return f"{type(x).__name__} of dtype {getattr(x, 'dtype', '?')}"


# ----------------------------------------------------------------------------- data


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the first `fraction` of each class under a seeded permutation.

    Every class keeps at least one image; for a fixed seed, smaller fractions are subsets
    of larger ones.
    """
    if fraction >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, 0xDA7A])
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        keep.append(idx[: max(1, math.ceil(fraction * len(idx)))])
    return np.sort(np.concatenate(keep))


def to_input(
    batch_nhwc: torch.Tensor,
    mean: float | Sequence[float] = PIXEL_MEAN,
    std: float | Sequence[float] = PIXEL_STD,
) -> torch.Tensor:
    """uint8 (B,H,W,3) -> normalised float (B,3,H,W) in the active memory layout.

    `mean`/`std` are in pixel units (0..255), a scalar or one value per RGB channel.
    """
    import torch
    x = batch_nhwc.permute(0, 3, 1, 2).to(torch.float32)  # keeps NHWC strides: channels-last
    if isinstance(mean, (int, float)) and isinstance(std, (int, float)):
        x = x.sub_(mean).div_(std)
    else:
        x = x.sub_(torch.tensor(mean).view(1, 3, 1, 1)).div_(torch.tensor(std).view(1, 3, 1, 1))
    if not compute.use_channels_last():
        x = x.contiguous()
    return x


def crop_batch(
    images: torch.Tensor, idx: np.ndarray, top: np.ndarray, left: np.ndarray,
    flip: np.ndarray, size: int,
) -> torch.Tensor:
    """Crops of `size` px at (top, left), mirrored where `flip`, in one gather: (B,size,size,3)."""
    import torch
    ar = np.arange(size)
    rows = top[:, None] + ar
    cols = left[:, None] + np.where(flip[:, None], size - 1 - ar, ar)
    return images[
        torch.from_numpy(idx[:, None, None]),
        torch.from_numpy(rows[:, :, None]),
        torch.from_numpy(cols[:, None, :]),
    ]


@dataclass(frozen=True)
class Plan:
    """What the loop needs from a TrainConfig or FinetuneConfig, plus derived sizes."""

    cfg: Any
    n: int
    input_size: int
    iters_per_epoch: int

    @property
    def total(self) -> int:
        steps = self.cfg.steps
        return steps if steps is not None else self.cfg.epochs * self.iters_per_epoch

    @property
    def batch(self) -> int:
        return min(self.cfg.batch_size, self.n)


def make_plan(cfg: Any, n: int, input_size: int) -> Plan:
    return Plan(cfg, n, input_size, max(1, n // min(cfg.batch_size, n)))


def batch_indices(plan: Plan, it: int) -> np.ndarray:
    """Images of iteration `it` (0-based): a slice of the seeded permutation of its epoch."""
    epoch, b = divmod(it, plan.iters_per_epoch)
    perm = np.random.default_rng([plan.cfg.seed, 0xE90C, epoch]).permutation(plan.n)
    return perm[b * plan.batch : (b + 1) * plan.batch]


def _augment(plan: Plan, it: int, count: int, image_size: int) -> tuple[np.ndarray, ...]:
    slack = image_size - plan.input_size
    if not plan.cfg.augment:
        centre = np.full(count, slack // 2)
        return centre, centre, np.zeros(count, bool)
    rng = np.random.default_rng([plan.cfg.seed, 0xA06, it])
    top = rng.integers(0, slack + 1, count)
    left = rng.integers(0, slack + 1, count)
    return top, left, rng.random(count) < 0.5


def learning_rate(cfg: Any, it: int, total: int) -> float:
    """Learning rate at iteration `it` of `total`: linear warm-up, then the schedule."""
    warm = int(cfg.warmup * total)
    if it < warm:
        return cfg.lr * (it + 1) / warm
    t = (it - warm) / max(1, total - warm)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.schedule == "step":  # Caffe-style: x0.1 at half and three quarters
        return cfg.lr * (0.1 ** ((t >= 0.5) + (t >= 0.75)))
    return cfg.lr


def checkpoint_iterations(total: int, n: int) -> list[int]:
    """`n` log-spaced iterations in [1, total] (fewer when they coincide), total included."""
    if n <= 0:
        return []
    return sorted({int(round(v)) for v in np.geomspace(1, total, n)} | {total})


# ----------------------------------------------------------------------------- the loop


def _param_groups(net: nn.Module, lr_mults: Mapping[str, float], weight_decay: float) -> list:
    # No weight decay on BatchNorm parameters and biases (a standard choice, not Caffe's).
    groups: dict[tuple[float, float], list] = {}
    for name, p in net.named_parameters():
        mult = next((m for prefix, m in lr_mults.items() if name.startswith(prefix)), 1.0)
        decay = weight_decay if p.ndim > 1 else 0.0
        groups.setdefault((mult, decay), []).append(p)
    return [{"params": ps, "lr_mult": m, "weight_decay": d} for (m, d), ps in groups.items()]


def _snapshot(net: nn.Module) -> StateDict:
    return {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}


def run_loop(
    net: nn.Module,
    plan: Plan,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    lr_mults: Mapping[str, float] | None = None,
    keep: Sequence[int] = (),
    resume_path: Path | None = None,
    resume_every: int = 200,
    stop_after_iterations: int | None = None,
    progress: bool = True,
    desc: str = "train",
    frozen_bn: bool = False,
) -> dict[str, Any]:
    """SGD over `plan`; returns {"state", "checkpoints" (iterations in `keep`), "log"}.

    The caller seeds torch before building `net`; dropout draws from torch's global RNG,
    which is saved in resume checkpoints and restored. `frozen_bn`: BatchNorm layers keep
    their running statistics (eval mode) while their affine weights still learn, as when
    fine-tuning on a target set too small to re-estimate them.
    """
    import torch
    from torch import nn

    compute.ensure_threads()
    cfg = plan.cfg
    if compute.use_channels_last():
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        _param_groups(net, lr_mults or {}, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum
    )
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    # (N,) class labels: softmax cross-entropy; (N, K) 0/1 labels: one sigmoid per label.
    multi_label = np.ndim(labels) == 2
    targets = torch.from_numpy(np.asarray(labels, dtype=np.float32 if multi_label else np.int64))
    loss_fn = (nn.functional.binary_cross_entropy_with_logits if multi_label
               else nn.functional.cross_entropy)
    start, checkpoints, log = 0, {}, {"block_loss": [], "block_end": [], "seconds": 0.0}
    if resume_path is not None and resume_path.exists():
        start, checkpoints, log = _restore(resume_path, net, opt)

    keep_set = set(keep)
    if start == 0 and 0 in keep_set:
        checkpoints[0] = _snapshot(net)
    bar = tqdm(total=plan.total, initial=start, desc=desc, disable=not progress, leave=False)
    block: list[float] = log.pop("open_block", [])
    seconds_before, t0 = log["seconds"], time.perf_counter()
    net.train()
    if frozen_bn:
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    for it in range(start, plan.total):
        lr = learning_rate(cfg, it, plan.total)
        for group in opt.param_groups:
            group["lr"] = lr * group["lr_mult"]
        idx = batch_indices(plan, it)
        top, left, flip = _augment(plan, it, len(idx), images.shape[1])
        x = to_input(crop_batch(pixels, idx, top, left, flip, plan.input_size))
        with compute.autocast_context():
            logits = net(x)
        loss = loss_fn(logits.float(), targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = it + 1
        block.append(loss.item())
        if done in keep_set and done != plan.total:
            checkpoints[done] = _snapshot(net)
        if done % LOG_BLOCK == 0 or done == plan.total:
            log["block_loss"].append(float(np.mean(block)))
            log["block_end"].append(done)
            block = []
        if done % 10 == 0 or done == plan.total:
            # of this run's work: a resumed run is priced at the steps it had left (`plan`)
            report_progress((done - start) / (plan.total - start))
        if progress and (done % 10 == 0 or done == plan.total):
            rate = (done - start) * plan.batch / max(1e-9, time.perf_counter() - t0)
            bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{rate:.0f}", refresh=False)
        bar.update(1)
        if resume_path is not None and done % resume_every == 0 and done != plan.total:
            log["seconds"] = seconds_before + time.perf_counter() - t0
            _save_resume(resume_path, done, net, opt, checkpoints, {**log, "open_block": block})
        if stop_after_iterations is not None and done >= stop_after_iterations:
            bar.close()
            raise TrainingInterrupted(f"stopped after iteration {done} (test hook)")
    bar.close()
    elapsed = time.perf_counter() - t0
    log.update(
        iterations=plan.total,
        batch_size=plan.batch,
        n_train=plan.n,
        resumed_from=start,
        seconds=seconds_before + elapsed,
        # speed of this session only (a resumed run did part of the work earlier)
        images_per_s=(plan.total - start) * plan.batch / max(1e-9, elapsed),
    )
    return {"state": _snapshot(net), "checkpoints": checkpoints, "log": log}


def _save_resume(path: Path, it: int, net: nn.Module, opt: torch.optim.Optimizer,
                 checkpoints: dict[int, StateDict], log: dict[str, Any]) -> None:
    import torch
    buf = io.BytesIO()
    torch.save(
        {
            "iteration": it,
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "checkpoints": {str(k): v for k, v in checkpoints.items()},
            "log": log,
        },
        buf,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())


def _resume_path(cache: Cache, key: str) -> Path:
    return cache.root / "resume" / f"{key}.pt"


def resumed_iteration(cache: Cache, key: str) -> int:
    """The SGD steps a stopped run of network `key` left in its resume checkpoint (0: none)."""
    path = _resume_path(cache, key)
    if not path.exists():
        return 0  # without importing torch: the runner plans without it
    import torch

    try:  # mmap: reads the step count without the weights
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["iteration"])
    except Exception:  # unreadable: `_restore` will start over
        return 0


def _restore(path: Path, net: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, dict, dict]:
    import torch
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
    except Exception:  # an unreadable resume file only costs the work it held
        path.unlink(missing_ok=True)
        return 0, {}, {"block_loss": [], "block_end": [], "seconds": 0.0}
    checkpoints = {int(k): v for k, v in saved["checkpoints"].items()}
    return int(saved["iteration"]), checkpoints, saved["log"]


def _fit(
    net_cfg: NetConfig,
    cfg: TrainConfig,
    images: np.ndarray,
    labels: np.ndarray,
    resume_path: Path,
    resume_every: int,
    stop_after_iterations: int | None,
    progress: bool,
) -> dict[str, Any]:
    import torch

    from .networks import build
    subset = stratified_subset(np.asarray(labels), cfg.data_fraction, cfg.seed)
    images, labels = images[subset], np.asarray(labels)[subset]
    plan = make_plan(cfg, len(subset), net_cfg.input_size)
    with deterministic(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build(net_cfg)
        return run_loop(
            net, plan, images, labels,
            keep=cfg.snapshot_iterations(plan.total),
            resume_path=resume_path, resume_every=resume_every,
            stop_after_iterations=stop_after_iterations, progress=progress,
            desc=f"train {net_cfg.width}/d{net_cfg.depth}",
        )


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic algorithms on (warn-only where none exists) and the SGD thread count
    (`compute.train_threads`), both restored afterwards."""
    import torch
    compute.ensure_threads()  # first, so that it cannot override the count set below later
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory,
              torch.get_num_threads())
    torch.use_deterministic_algorithms(True, warn_only=True)
    # NaN-filling every torch.empty is a debugging aid that cost ~10 % of a step here.
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.set_num_threads(compute.train_threads())
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = before[2]
        torch.set_num_threads(before[3])


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (first 24 hex) of a state dict's names, shapes and values, for cache keys."""
    import torch
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:24]


# ----------------------------------------------------------------------------- evaluation


def predict(model: nn.Module, images: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """Logits (N, n_classes) float32 of centre crops, in eval mode, no augmentation."""
    import torch

    compute.ensure_threads()
    size = _input_size_of(model, images.shape[1])
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    offset = (images.shape[1] - size) // 2
    out = []
    model.eval()
    with torch.no_grad(), compute.autocast_context():
        for s in range(0, len(images), batch_size):
            idx = np.arange(s, min(s + batch_size, len(images)))
            zeros = np.full(len(idx), offset)
            x = to_input(crop_batch(pixels, idx, zeros, zeros, np.zeros(len(idx), bool), size))
            out.append(model(x).float().numpy())
    return np.concatenate(out)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of centre crops."""
    return float(np.mean(predict(model, images).argmax(1) == np.asarray(labels)))


def _input_size_of(model: nn.Module, image_size: int) -> int:
    # Our networks carry their input size; for others assume Caffe's 227/256 crop.
    return getattr(model, "input_size", None) or crop_size(image_size)
