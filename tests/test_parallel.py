"""The plan on a real Dask LocalCluster (loopback only), smoke profile, against the serial path.

Width (a network per level) and fine-tuning (fine-tunes on top) cover every unit kind.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from transferlab import parallel, runner
from transferlab.__main__ import main
from transferlab.cache import Cache

pytestmark = pytest.mark.slow
ONLY = ["width", "fine_tuning"]
TABLES = ["results.csv", "claims.csv", "01_width/results.csv", "07_fine_tuning/claims.csv"]
EXPENSIVE = ("network", "finetune", "features", "scores")


@contextlib.contextmanager
def _env(tmp: Path):
    """A cache of its own, and a log of every entry computed (kind key pid seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_CACHE", str(tmp / "cache"))
        mp.setenv("TRANSFERLAB_CACHE_LOG", str(tmp / "computed.log"))
        mp.setenv("TRANSFERLAB_THREADS", "1")
        yield


def _run(tmp: Path, workers: int) -> Path:
    with _env(tmp):
        records = runner.run_study("smoke", ONLY, out=tmp / "r", log_output=False,
                                   progress_bar=False, stderr=io.StringIO(), workers=workers)
    assert [r.status for r in records] == ["ok", "ok"], [r.error for r in records]
    return tmp / "r" / "smoke"


def _computed(tmp: Path) -> list[tuple[str, str, int]]:
    rows = [line.split() for line in (tmp / "computed.log").read_text().splitlines()]
    assert all(len(row) == 5 and float(row[4]) > 0 for row in rows)  # ... seconds peak_mib
    return [(kind, key, int(pid)) for kind, key, pid, _, _ in rows]


def _same_tables(a: Path, b: Path) -> None:
    for name in TABLES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("serial"), workers=0)


def test_two_workers_give_the_serial_tables(serial, tmp_path):
    _same_tables(serial, _run(tmp_path, workers=2))
    done = _computed(tmp_path)
    assert max(Counter(key for _, key, _ in done).values()) == 1  # nothing computed twice
    # Only the two workers computed networks, features and scores: the notebooks read them.
    assert len({pid for kind, _, pid in done if kind in EXPENSIVE}) <= 2


def _waiter_on(path: Path) -> int | None:
    """The pid blocked on the flock of `path` (Linux /proc/locks: '->' marks a waiter)."""
    inode = os.stat(path).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "->" in parts and parts[-3].endswith(f":{inode}"):
            return int(parts[parts.index("->") + 4])
    return None


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_worker_killed_in_a_training_unit_still_gives_the_serial_tables(serial, tmp_path):
    # Hold the lock of one network's cache entry: the worker that takes its unit blocks in
    # it, inside the training unit; kill that worker by its PID, then let the retry train.
    with _env(tmp_path):
        units = runner.study_plan(runner.plan("smoke", ONLY, tmp_path / "r"))
    unit = next(u for u in units.units.values() if u.id == "network:objects/small/d5/data1/seed0")
    lock = tmp_path / "cache" / "locks" / "network" / f"{unit.key}.lock"
    lock.parent.mkdir(parents=True)
    held = open(lock, "a+b")  # noqa: SIM115 -- released by the killer thread
    fcntl.flock(held, fcntl.LOCK_EX)
    killed = []

    def killer() -> None:
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            pid = _waiter_on(lock)
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.1)
        time.sleep(0.5)
        held.close()  # releases the lock

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        out = _run(tmp_path, workers=2)
    finally:
        thread.join()
    assert killed and killed[0] != os.getpid()
    _same_tables(serial, out)
    trained = [key for kind, key, _ in _computed(tmp_path) if kind == "network"]
    assert trained.count(unit.key) == 1


def test_unreachable_scheduler_fails_fast_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    rc = main(["run", "--profile", "smoke", "--only", "width", "--out", str(tmp_path / "r"),
               "--quiet", "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert rc == 2 and time.perf_counter() - start < 10
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in capsys.readouterr().err
    assert not list((tmp_path / "cache").glob("network/*"))  # nothing computed
    assert not (tmp_path / "r" / "smoke" / "01_width").exists()


def test_two_concurrent_runners_train_each_network_once(tmp_path):
    with _env(tmp_path):
        env = dict(os.environ)
    cmd = [sys.executable, "-m", "transferlab", "run", "--profile", "smoke", "--only", "width",
           "--quiet"]
    procs = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"r{i}"), "--workers", str(w)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i, w in enumerate((1, 0))]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    trained = Counter(key for kind, key, _ in _computed(tmp_path) if kind == "network")
    assert len(trained) == 4 and set(trained.values()) == {1}  # smoke: four widths
    tables = [(tmp_path / f"r{i}/smoke/results.csv").read_bytes() for i in (0, 1)]
    assert tables[0] == tables[1]


class _Client:
    """Two workers: one reads the probe file, one (another machine) does not see it."""

    def run(self, fn, path):
        return {"tcp://10.0.0.1:1": fn(path), "tcp://10.0.0.2:1": fn(path + ".elsewhere")}


def _worker_malloc_env() -> tuple[str | None, str | None]:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_local_workers_keep_glibc_dynamic_mmap_threshold(tmp_path, monkeypatch):
    # Dask's default exports MALLOC_TRIM_THRESHOLD_=65536 to its workers, which made every
    # network train 1.6x slower there than in a plain process (bench/bench_cores.py).
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with parallel.connect(parallel.ClusterConfig(workers=1), tmp_path) as client:
        seen = list(client.run(_worker_malloc_env).values())
    assert seen == [(None, "1")]
    # and the nanny's variables do not stay in the runner for the kernels it starts next
    assert "OMP_NUM_THREADS" not in os.environ
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_cache_not_seen_by_a_worker_is_named(tmp_path):
    with pytest.raises(parallel.CacheNotShared, match=r"\['tcp://10.0.0.2:1'\] cannot read"):
        parallel.check_shared_cache(_Client(), tmp_path)
    assert not list(tmp_path.iterdir())  # the probe is removed
    assert Cache(tmp_path).root == tmp_path


def _execute_stubbed(monkeypatch, units: list, run_unit, **kwargs) -> parallel.Executed:
    """`parallel.execute` of `units` (all pending) on one in-process worker, each unit
    computed by the stub `run_unit`."""
    from distributed import Client
    from transferlab.plan import Plan

    monkeypatch.setattr(parallel, "run_unit", run_unit)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        return parallel.execute(Plan({u.id: u for u in units}, {u.id for u in units}), client,
                                **kwargs)


def _unit(uid: str, kind: str, cost_s: float, *deps: str):
    from transferlab.plan import StudySpec, Unit

    return Unit(uid, kind, StudySpec("smoke"), (), deps, cost_s=cost_s)


def _fails_on_b(unit):
    if unit.id == "b":
        raise RuntimeError("b broke")
    return unit.id, unit.kind, 0.0


def test_a_failed_unit_skips_only_what_needs_it(monkeypatch):
    """b fails: c (needs b) and d (needs c) are skipped and named; a and e run and are not."""
    units = [_unit("a", "world", 1), _unit("b", "network", 5, "a"), _unit("c", "features", 2, "b"),
             _unit("d", "score", 1, "c"), _unit("e", "score", 1, "a")]
    done = _execute_stubbed(monkeypatch, units, _fails_on_b, progress=False)
    failures = done.failures
    assert set(done.seconds) == {"a", "e"}  # what was computed, for the machine's rates
    assert len(failures) == 3 and failures[0].startswith("b: RuntimeError: b broke")
    assert sorted(failures[1:]) == ["c: skipped, it needs b", "d: skipped, it needs b"]


def _takes_twice_its_estimate(unit):
    return unit.id, unit.kind, 2 * unit.cost_s


def test_the_plan_reports_its_estimated_and_measured_core_minutes(monkeypatch):
    import io

    units = [_unit("a", "world", 60), _unit("b", "network", 120, "a"), _unit("c", "score", 30, "b")]
    out = io.StringIO()
    _execute_stubbed(monkeypatch, units, _takes_twice_its_estimate, progress=True, stderr=out)
    report = out.getvalue().split("plan computed")[1].splitlines()[1:]
    assert [line.split() for line in report] == [
        ["world", "1", "1.0", "/", "2.0", "(2.00x)"], ["network", "1", "2.0", "/", "4.0", "(2.00x)"],
        ["score", "1", "0.5", "/", "1.0", "(2.00x)"], ["total", "3", "3.5", "/", "7.0", "(2.00x)"]]


def _reports_half_then_waits(unit):
    from transferlab import progress

    progress.report(0.5)
    deadline = time.monotonic() + 10  # until the client has drawn it (an event's round trip)
    while not _SEEN and time.monotonic() < deadline:
        time.sleep(0.01)
    return unit.id, unit.kind, 0.0


_SEEN: list[float] = []


def test_the_plan_bar_moves_while_a_unit_runs(monkeypatch):
    """A network reports half its steps: the bar stands at half its cost before it ends."""
    monkeypatch.setattr(parallel, "PROGRESS_EVERY_S", 0.0)
    draw = parallel._PlanBar.progress

    def seen(self, event):
        draw(self, event)
        _SEEN.append(self.bar.n)

    monkeypatch.setattr(parallel._PlanBar, "progress", seen)
    _SEEN.clear()
    _execute_stubbed(monkeypatch, [_unit("net", "network", 100)], _reports_half_then_waits,
                     progress=True, stderr=io.StringIO())
    assert _SEEN == [pytest.approx(50.0)]


_STARTED: list[str] = []


def _records_its_start(unit):
    _STARTED.append(unit.id)
    return unit.id, unit.kind, 0.0


def test_units_ready_together_start_costliest_first(monkeypatch):
    """One idle worker, three networks ready at once: the largest must not wait its turn."""
    units = [_unit("world", "world", 1)] + [_unit(name, "network", cost, "world")
                                            for name, cost in (("small", 10), ("large", 50),
                                                               ("medium", 20))]
    _STARTED.clear()
    _execute_stubbed(monkeypatch, units, _records_its_start, progress=False)
    assert _STARTED == ["world", "large", "medium", "small"]
