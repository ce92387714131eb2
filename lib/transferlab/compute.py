"""How torch computes here: thread count and numeric precision, set deliberately.

The precision policy is measured, not guessed (bench/bench_training.py, bench_features.py):
on this machine's CPU (AVX-512 with native bf16) channels-last memory plus bfloat16 autocast
trains about 3x and extracts features about 4x faster than plain fp32 at equal accuracy, and
channels-last alone is about 2x faster than the default layout in fp32 too.
On a CPU without native bf16 instructions bf16 is emulated and slow, so the default falls back
to fp32 there. Override with $TRANSFERLAB_PRECISION = "bf16" | "fp32".

Precision changes the numbers a network produces, so `precision_id()` is part of every cache
key of trained networks and features.

torch is imported inside the functions that need it: a notebook that only reads the cache
never pays its import (about 1.2 s). Set $TRANSFERLAB_PRECISION and
$TRANSFERLAB_CHANNELS_LAST (`policy_env()`, as the runner does for its kernels and workers)
and even the cache keys are named without it. The runner itself asks a child interpreter
(`child_policy_env`): this torch build costs a process ~550 MiB resident on import.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

PRECISIONS = ("bf16", "fp32")
POLICY_VARS = ("TRANSFERLAB_PRECISION", "TRANSFERLAB_CHANNELS_LAST")  # what policy_env sets


def cpu_model() -> str:
    """The CPU's model name (Linux), else platform's description: what benchmarks name."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


_threads_set = False  # by configure_threads: ensure_threads then leaves the choice alone


def configure_threads(n: int | None = None) -> int:
    """Use `n` intra-op threads and one inter-op thread; returns n.

    Default: $TRANSFERLAB_THREADS, else all cores. Measured here: 2 threads train ~1.9x
    faster than 1 on an idle 2-core machine, but while another process keeps one core busy,
    2 threads collapse to 5-15 % of the 1-thread speed (oneDNN/OpenMP threads wait on each
    other at every op). So use 1 thread whenever other CPU jobs run alongside.
    """
    import torch
    cores = os.cpu_count() or 1
    if n is None:
        n = int(os.environ.get("TRANSFERLAB_THREADS", cores))
    n = int(n)
    if n < 1:
        raise ValueError(f"n={n!r} threads: must be >= 1 (this machine has {cores} cores)")
    torch.set_num_threads(n)
    # The inter-op pool can only be sized before it first runs; later calls fail harmlessly.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    global _threads_set
    _threads_set = True
    return n


def ensure_threads() -> None:
    """The default thread count, set once, before this process first computes with torch.

    Called by every function that computes (training, fine-tuning, feature extraction,
    rendering) rather than at start-up, so that reading the cache never imports torch; an
    earlier explicit `configure_threads(n)` is kept.
    """
    if not _threads_set:
        configure_threads()


TRAIN_THREADS = 1  # what a Dask worker has: see train_threads


def release_memory() -> None:
    """Collect garbage, then hand the C heap's free pages back to the OS (glibc's
    `malloc_trim`; elsewhere only the collection). A plan's worker lives through hundreds of
    units and glibc keeps what they freed; its resident memory then grows with every unit
    and raises the peak of the one after (the dynamic mmap threshold, left on for speed,
    puts even arrays of tens of MB on the heap)."""
    import gc

    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


# What a unit computes with that the library imports only where it computes (numpy, scipy
# and pandas come with `plan` itself; scikit-learn's SVM brings its metrics and model
# selection): imported before the freeze below, so that the collector skips them.
UNIT_LIBRARIES = ("torch", "torchvision.models.feature_extraction", "sklearn.svm")


@functools.cache
def freeze_libraries() -> None:
    """Import `UNIT_LIBRARIES`, then take every object alive in this process out of the
    cyclic collector's sight (`gc.freeze`); once per process.

    A plan's worker makes a full collection after every unit (`release_memory`), and one
    walks every tracked object: ~300,000 once these are imported, 0.17 s, about a tenth of a
    score unit. The libraries' objects live as long as the process, so walking them finds
    nothing; objects made later (the units' garbage, the networks a worker keeps) are
    collected as before.
    """
    import gc
    import importlib

    for name in UNIT_LIBRARIES:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, looked up once (finding libc runs `ldconfig`); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


@contextlib.contextmanager
def environ_restored(keys) -> Iterator[None]:
    """The variables `keys` of os.environ as they were (set, changed or absent) after the block."""
    before = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def train_threads() -> int:
    """Intra-op threads of every SGD run (training, fine-tuning): $TRANSFERLAB_TRAIN_THREADS, else 1.

    Fixed, not "all cores", because on CPU the reduction order of oneDNN's kernels depends on
    the thread count: the same fine-tune on 2 threads (a serial run) and on 1 (a Dask worker)
    moved a task's test score by up to 1.5 points (BENCHMARKS.md, "The whole grid on Dask").
    One thread is what a Dask worker has, so a network's numbers no longer depend on which
    path trained it; the serial path gives up ~1.9x on its training for that. Another count
    is part of the run's cache key (`training_id`), so its networks never mix with these.
    """
    env = os.environ.get("TRANSFERLAB_TRAIN_THREADS", str(TRAIN_THREADS))
    if not env.isdigit() or int(env) < 1:
        raise ValueError(f"TRANSFERLAB_TRAIN_THREADS={env!r}: must be an integer >= 1")
    return int(env)


@functools.cache
def _native_bf16() -> bool:
    import torch
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision() -> str:
    """The active precision policy: "bf16" (autocast) or "fp32"."""
    env = os.environ.get("TRANSFERLAB_PRECISION")
    if env:
        if env not in PRECISIONS:
            raise ValueError(f"TRANSFERLAB_PRECISION={env!r} is not one of {PRECISIONS}")
        return env
    return "bf16" if _native_bf16() else "fp32"


def use_channels_last() -> bool:
    """Whether models and inputs use channels-last memory ($TRANSFERLAB_CHANNELS_LAST=0|1).

    Measured ~2x faster for both fp32 and bf16 with oneDNN's convolutions; the layout does
    not change which numbers are computed beyond summation order.
    """
    env = os.environ.get("TRANSFERLAB_CHANNELS_LAST")
    if env:
        if env not in ("0", "1"):
            raise ValueError(f"TRANSFERLAB_CHANNELS_LAST={env!r} is not one of ('0', '1')")
        return env == "1"
    import torch

    return torch.backends.mkldnn.is_available()


@contextlib.contextmanager
def autocast_context(policy: str | None = None) -> Iterator[None]:
    """bfloat16 autocast on CPU under the bf16 policy; nothing under fp32."""
    import torch
    enabled = _check(policy) == "bf16"
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
        yield


def precision_id(policy: str | None = None) -> dict[str, str | bool]:
    """What goes into cache keys so that results of different precisions never mix."""
    return {"precision": _check(policy), "channels_last": use_channels_last()}


def training_id() -> dict[str, str | bool | int]:
    """What goes into the cache keys of SGD runs: the precision policy, and the thread count
    where it is not the default (keys of default runs stay as they were)."""
    n = train_threads()
    return precision_id() | ({"train_threads": n} if n != TRAIN_THREADS else {})


def policy_env() -> dict[str, str]:
    """The environment that fixes this process's precision policy for its child processes.

    The runner exports it to its notebook kernels: they name cache keys exactly as this
    process does, without importing torch to detect the CPU.
    """
    return dict(zip(POLICY_VARS, (precision(), "1" if use_channels_last() else "0"), strict=True))


def child_policy_env() -> dict[str, str]:
    """`policy_env()`, asked of a child interpreter unless this process's environment fixes it.

    The runner names every cache key of its plan with the policy and hands it to its kernels
    and workers, but computes nothing itself: importing torch to detect the CPU would keep
    ~550 MiB resident in it for the whole run (~290 MiB of it its own), beside the workers.
    """
    if all(os.environ.get(k) for k in POLICY_VARS):
        return policy_env()  # read from the environment: no torch
    lib = str(Path(__file__).resolve().parents[1])  # this transferlab, whatever the child's path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [lib, os.environ.get(
        "PYTHONPATH")]))}
    # -P: the working directory does not come first on the child's path (a transferlab/
    # folder there would shadow this one).
    done = subprocess.run([sys.executable, "-P", "-c", "import json; from transferlab.compute "
                           "import policy_env; print(json.dumps(policy_env()))"],
                          env=env, capture_output=True, text=True, timeout=300)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode != 0 and last.startswith("ValueError: "):  # e.g. $TRANSFERLAB_PRECISION
        raise ValueError(last.removeprefix("ValueError: "))
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the interpreter asked for the precision policy exited with "
                           f"{done.returncode}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def _check(policy: str | None) -> str:
    p = precision() if policy is None else policy
    if p not in PRECISIONS:
        raise ValueError(f"policy={p!r} is not one of {PRECISIONS}")
    return p
