"""Executing a plan (transferlab.plan) on Dask distributed: a local cluster or an existing one.

Local: a `LocalCluster` of single-threaded worker processes, one per core (torch and
scikit-learn then never fight over threads), loopback only. Existing: `--scheduler
tcp://HOST:PORT`, unreachable within `CONNECT_TIMEOUT_S` -> an error naming the address,
before anything is computed. Every worker must see the cache folder: a probe file written
by the runner is read back on every worker first.

Each unit is one Dask task, submitted once the units it needs are done, the costliest first;
a worker that dies mid-unit has its task run again elsewhere (Dask's rescheduling), and the
cache's lock per key keeps two workers (or two runners) from computing one entry twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from . import compute
from .plan import KINDS, Plan, Unit, run_unit
from .progress import reporting_to

CONNECT_TIMEOUT_S = 5
# Exceptions of a unit are retried too (a worker short of memory, a flaky shared disk).
RETRIES = 2
# A running unit's progress (transferlab.progress) travels to the client as Dask events on
# this topic, at most once per PROGRESS_EVERY_S per unit.
PROGRESS_TOPIC = "transferlab-progress"
PROGRESS_EVERY_S = 2.0


class SchedulerUnreachable(ValueError):
    """The Dask scheduler of --scheduler did not answer."""


class CacheNotShared(ValueError):
    """Some worker cannot read the cache folder the runner writes."""


@dataclass(frozen=True)
class ClusterConfig:
    """Where the plan runs: `workers` local processes, or the cluster at `scheduler`."""

    workers: int | None = None  # None: one per core
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"workers={self.workers!r} must be >= 0 (0: serial, no Dask)")
        if self.scheduler is not None and "://" not in self.scheduler:
            raise ValueError(f"scheduler={self.scheduler!r} must be an address like "
                             "tcp://HOST:8786")

    @property
    def serial(self) -> bool:
        return self.scheduler is None and self.workers == 0

    def n_local(self) -> int:
        return self.workers if self.workers is not None else cores()


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


# What Dask's nanny exports before it spawns a local worker: its default
# (`distributed.nanny.pre-spawn-environ`) less MALLOC_TRIM_THRESHOLD_=65536. Setting that
# variable at all turns off glibc's dynamic mmap threshold, so every training step's
# activation buffers were mapped, faulted in and unmapped again: a network trained 1.6x
# slower in a worker than in a plain process (bench/bench_cores.py, BENCHMARKS.md).
PRE_SPAWN_ENV = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
# Every variable a nanny writes into the environment of the process that starts it (its
# pre-spawn variables, under Dask's default or ours, and the PYTHONHASHSEED it pins).
NANNY_WRITES = (*PRE_SPAWN_ENV, "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


def worker_env(cache_root: Path) -> dict[str, str]:
    """Environment of local workers: one thread each, the runner's cache and precision policy
    (the keys the plan named are the keys they compute; workers started by hand need
    $TRANSFERLAB_PRECISION and $TRANSFERLAB_CHANNELS_LAST exported alike, README)."""
    return {"TRANSFERLAB_THREADS": "1", **{k: str(v) for k, v in PRE_SPAWN_ENV.items()},
            "TRANSFERLAB_CACHE": str(cache_root), **compute.policy_env()}


@contextlib.contextmanager
def connect(config: ClusterConfig, cache_root: Path, stderr: TextIO | None = None) -> Iterator:
    """A Dask `Client` of the configured cluster, closed (local cluster included) on exit."""
    from distributed import Client, LocalCluster

    stderr = stderr or sys.stderr
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise SchedulerUnreachable(
                f"cannot reach the Dask scheduler at {config.scheduler} (--scheduler) within "
                f"{CONNECT_TIMEOUT_S} s: {err}. Start one with `dask scheduler` and workers with "
                f"`dask worker {config.scheduler}`, or drop --scheduler for a local cluster"
            ) from None
        with client:
            check_shared_cache(client, cache_root)
            yield client
        return
    import dask

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO: every connection
    # The nanny writes its pre-spawn variables into this process's environment too; put back
    # what was there, so that the notebook kernels started afterwards do not inherit them.
    with compute.environ_restored(NANNY_WRITES):
        with dask.config.set({"distributed.nanny.pre-spawn-environ": PRE_SPAWN_ENV}):
            cluster = LocalCluster(n_workers=config.n_local(), threads_per_worker=1,
                                   processes=True, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0",
                                   silence_logs=logging.ERROR, env=worker_env(cache_root))
        with cluster, Client(cluster) as client:
            print(f"Dask: {config.n_local()} local workers; dashboard "
                  f"{cluster.dashboard_link}", file=stderr)
            yield client


def check_shared_cache(client, cache_root: Path) -> None:
    """Every worker reads back a probe file the runner wrote into the cache folder."""
    token = uuid.uuid4().hex
    probe = Path(cache_root) / f".probe-shared-{token}"
    probe.write_text(token)
    try:
        seen = client.run(_read_probe, str(probe))
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(w for w, text in seen.items() if text != token)
    if blind:
        raise CacheNotShared(
            f"workers {blind} cannot read the cache folder {cache_root}: every worker must see "
            "it at the same path (a shared file system; set TRANSFERLAB_CACHE on the runner "
            "and the workers to that path)")


def _read_probe(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as err:
        return f"unreadable: {err}"


def run_reporting(unit: Unit) -> tuple[str, str, float]:
    """`run_unit` on a Dask worker, what it reports of its progress sent to the client."""
    from distributed import get_worker

    worker, last = get_worker(), -float("inf")

    def forward(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S:
            last = now
            worker.log_event(PROGRESS_TOPIC, {"unit": unit.id, "fraction": fraction})

    with reporting_to(forward):
        return run_unit(unit)


class _PlanBar:
    """The plan's bar, weighted by estimated cost: the finished units' whole cost plus each
    running unit's reported share of its own. Moved from two threads (the loop that collects
    finished units, the client's event handler), so under one lock; never moves back (a unit
    retried elsewhere starts its share again)."""

    def __init__(self, bar, todo: dict[str, Unit]) -> None:
        self.bar, self.todo, self.lock = bar, todo, threading.Lock()
        self.finished: set[str] = set()
        self.finished_cost = 0.0
        self.running: dict[str, float] = {}
        self.total = Counter(u.kind for u in todo.values())
        self.done: Counter = Counter()

    def progress(self, event: tuple) -> None:
        """A worker's event (timestamp, {"unit", "fraction"}) on PROGRESS_TOPIC."""
        msg = event[1]
        with self.lock:
            if msg["unit"] in self.todo and msg["unit"] not in self.finished:
                self.running[msg["unit"]] = float(msg["fraction"])
                self._draw()

    def finish(self, uid: str) -> None:
        with self.lock:
            self.finished.add(uid)
            self.finished_cost += self.todo[uid].cost_s
            self.running.pop(uid, None)
            self.done[self.todo[uid].kind] += 1
            self.bar.set_postfix_str("units " + " ".join(
                f"{k} {self.done[k]}/{self.total[k]}" for k in KINDS if self.total[k]),
                refresh=False)
            self._draw()

    def _draw(self) -> None:
        value = self.finished_cost + sum(f * self.todo[u].cost_s
                                         for u, f in self.running.items())
        if value > self.bar.n:
            self.bar.update(value - self.bar.n)


@dataclass(frozen=True)
class Executed:
    """What `execute` did: the units that failed (with why), and the worker seconds of each
    unit it computed."""

    failures: list[str]
    seconds: dict[str, float]


def execute(plan: Plan, client, progress: bool = True, stderr: TextIO | None = None) -> Executed:
    """Compute the plan's pending units on the cluster of `client`; what failed (one line
    each) and the worker seconds of what was computed.

    A unit is submitted once the units it needs are done, the costliest first (a unit's
    priority is its estimated cost): the networks start at once and in parallel, and no
    worker idles while one trains them in a row. (Handing Dask the dependencies as futures
    would keep a network on the worker that rendered its images, the others idle.)
    A unit that fails (after its retries) is reported and its dependents are skipped; the
    notebooks then compute (and report) what is missing. With `progress`, a bar weighted by
    each unit's estimated cost moves as units finish and as running ones report their own
    progress (a network's SGD steps), and the run ends with `cost_report`: what each kind was
    estimated to cost and what it took.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    todo = {u.id: u for u in plan.todo()}
    waiting = {u.id: {d for d in u.deps if d in todo} for u in todo.values()}
    dependents: dict[str, list[str]] = {}
    for uid, deps in waiting.items():
        for d in deps:
            dependents.setdefault(d, []).append(uid)
    running = as_completed()

    def submit(ids: Iterable[str]) -> None:
        # Costliest first, here too: a unit sent to an idle worker starts at once, before the
        # scheduler sees the priorities of those sent after it (the width notebook's four
        # networks became ready together, and the largest started last, after two others).
        for uid in sorted(ids, key=lambda u: -todo[u].cost_s):
            running.add(client.submit(run_reporting, todo[uid], key=uid, pure=False,
                                      retries=RETRIES, priority=round(todo[uid].cost_s)))

    spent: dict[str, float] = {}  # worker seconds of each unit computed
    failures: list[str] = []
    # The bar advances by each unit's estimated cost, not by one per unit: a network trains
    # for minutes, a score takes a second, so only a weighted bar gives an honest ETA.
    bar = tqdm(total=sum(u.cost_s for u in todo.values()) or 1.0, desc="plan",
               disable=not progress, file=stderr,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")
    plan_bar = _PlanBar(bar, todo)
    finish = plan_bar.finish

    with bar, _subscribed(client, PROGRESS_TOPIC, plan_bar.progress if progress else None):
        first = [uid for uid, deps in waiting.items() if not deps]
        for uid in first:
            del waiting[uid]
        submit(first)
        for fut in running:
            uid = fut.key
            finish(uid)
            if fut.status != "finished":  # an error after its retries, or cancelled
                why = (f"{type(fut.exception()).__name__}: {fut.exception()}"
                       if fut.status == "error" else fut.status)
                failures.append(f"{uid}: {why}")
                for skipped in sorted(_descendants(uid, dependents) & waiting.keys()):
                    del waiting[skipped]
                    failures.append(f"{skipped}: skipped, it needs {uid}")
                    finish(skipped)
                continue
            spent[uid] = fut.result()[2]
            ready = []
            for dep in dependents.get(uid, ()):
                if dep in waiting:
                    waiting[dep].discard(uid)
                    if not waiting[dep]:
                        del waiting[dep]
                        ready.append(dep)
            submit(ready)
    if progress:
        print(cost_report((todo[uid], s) for uid, s in spent.items()), file=stderr or sys.stderr)
    return Executed(failures, spent)


@contextlib.contextmanager
def _subscribed(client, topic: str, handler) -> Iterator[None]:
    """`handler` receives the topic's events inside the block (None: nothing subscribed); the
    topic is left at the end, so no late event reaches a bar that is closed."""
    if handler is None:
        yield
        return
    client.subscribe_topic(topic, handler)
    try:
        yield
    finally:
        client.unsubscribe_topic(topic)


def cost_report(computed: Iterable[tuple[Unit, float]]) -> str:
    """Per kind: units computed, their estimated and measured core-minutes (worker seconds).

    The estimates weigh the progress bar: where a kind's ratio is far from 1 on a machine,
    its ETA was off by as much. A unit that computes entries of other kinds inside (a
    search: features and scores) counts under its own kind, as it is estimated; a unit
    retried after a lost worker counts its last attempt.
    """
    rows: dict[str, list[float]] = {}  # kind -> [units, estimated, measured]
    for u, seconds in computed:
        row = rows.setdefault(u.kind, [0, 0.0, 0.0])
        row[0] += 1
        row[1] += u.cost_s / 60
        row[2] += seconds / 60
    by_kind = [(k, rows[k]) for k in KINDS if k in rows]
    total = [sum(r[i] for _, r in by_kind) for i in range(3)]
    lines = ["plan computed (kind, units, worker core-minutes estimated / measured):"]
    for kind, (n, est, meas) in [*by_kind, ("total", total)]:
        ratio = f"  ({meas / est:.2f}x)" if est else ""
        lines.append(f"  {kind:<9} {n:>5}  {est:8.1f} / {meas:8.1f}{ratio}")
    return "\n".join(lines)


def _descendants(uid: str, dependents: dict[str, list[str]]) -> set[str]:
    """Every unit that needs `uid`, directly or through others."""
    out: set[str] = set()
    stack = list(dependents.get(uid, ()))
    while stack:
        d = stack.pop()
        if d not in out:
            out.add(d)
            stack.extend(dependents.get(d, ()))
    return out
