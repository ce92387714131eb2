"""What this machine's cores give to one and to two processes: the ceiling of a parallel run.

    .venv/bin/python bench/bench_cores.py [--seconds 20] [--rounds 3] [--md FILE]

`run --workers 2` trains each network on one thread in each of two worker processes; the
serial path trains on one thread alone (`compute.train_threads`: the bits must not depend on
the path) and extracts features on two. So the speed-up a local cluster can give a
training-bound study is bounded by how much work two single-threaded processes side by side
do, against one alone. On a machine whose two vCPUs share a physical core, or its memory
bandwidth, that is well under 2x. This script measures it with the study's own training loop
(`training.run_loop`, Medium depth 5, 28 px, batch 128, the default precision policy):

- one process, one thread, alone;
- two such processes at once (started on the same instant; each reports its own img/s);
- one process, two threads, alone (what the serial path's feature extraction uses).

With `--dask`, also two tasks on a local cluster of two single-threaded workers: one made
with Dask's default environment, one as `run --workers 2` makes it (`parallel.connect`).
Dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536 by default, which trained 1.6x slower.

Rounds are interleaved because the machine is shared; the table gives the median and best.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def train_rate(threads: int, seconds: float, start_at: float, n_images: int) -> float:
    """img/s of training for `seconds` from the instant `start_at`."""
    sys.path.insert(0, str(HERE))
    from bench_training import synthetic_task
    from transferlab import architecture, compute
    from transferlab import networks as nw
    from transferlab import training as tr

    # What every SGD run of the study does: deterministic algorithms, train_threads threads.
    os.environ["TRANSFERLAB_TRAIN_THREADS"] = str(threads)
    compute.configure_threads(threads)
    import torch

    net_cfg = architecture.NetConfig()
    images, labels = synthetic_task(n_images, 32, seed=0, k=100)

    def plan(seed: int):  # 8 steps of 128 images drawn from all of them, as training draws
        cfg = tr.TrainConfig(steps=8, batch_size=128, n_checkpoints=0, seed=seed)
        return tr.make_plan(cfg, len(labels), net_cfg.input_size)

    torch.manual_seed(0)
    net = nw.build(net_cfg)
    with tr.deterministic():
        tr.run_loop(net, plan(0), images, labels, progress=False)  # warm-up: oneDNN's kernels
        time.sleep(max(0.0, start_at - time.time()))
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            done += 8 * 128
            tr.run_loop(net, plan(done), images, labels, progress=False)
        return done / (time.perf_counter() - t0)


def on_dask(n_workers: int, seconds: float, n_images: int, runner: bool) -> list[float]:
    """img/s of each of `n_workers` tasks training at once on a local cluster of
    single-threaded workers: the runner's (`parallel.connect`) or one with Dask's defaults."""
    import tempfile

    from distributed import Client, LocalCluster
    from transferlab import compute, parallel

    # Dask's nanny writes its pre-spawn variables into this process's environment too.
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        stack.enter_context(compute.environ_restored(parallel.NANNY_WRITES))
        if runner:
            client = stack.enter_context(
                parallel.connect(parallel.ClusterConfig(workers=n_workers), Path(tmp)))
        else:
            cluster = stack.enter_context(LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, env=parallel.worker_env(Path(tmp))))
            client = stack.enter_context(Client(cluster))
        start_at = time.time() + 20.0
        futures = [client.submit(train_rate, 1, seconds, start_at, n_images, pure=False,
                                 workers=[w]) for w in list(client.scheduler_info()["workers"])]
        return client.gather(futures)


def launch(n_procs: int, threads: int, seconds: float, n_images: int) -> list[float]:
    """img/s of each of `n_procs` processes training at once on `threads` threads each."""
    start_at = time.time() + 15.0  # imports and warm-up of every child first
    cmd = [sys.executable, __file__, "--child", "--threads", str(threads),
           "--seconds", str(seconds), "--start-at", str(start_at), "--images", str(n_images)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(n_procs)]
    rates = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"child exited with {p.returncode}")
        rates.append(json.loads(out.strip().splitlines()[-1])["img_s"])
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=1024,
                    help="training images each process cycles through (the quick profile's "
                    "objects source has 20,000: memory traffic, not only arithmetic)")
    ap.add_argument("--dask", action="store_true",
                    help="also two tasks on a local cluster of two single-threaded workers, "
                    "as `run --workers 2` makes it and with Dask's default environment")
    ap.add_argument("--md", type=Path, default=None, help="append the markdown section here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps({"img_s": train_rate(args.threads, args.seconds, args.start_at,
                                              args.images)}))
        return 0

    setups = {"1 process x 1 thread": (1, 1), "2 processes x 1 thread": (2, 1),
              "1 process x 2 threads": (1, 2)}
    if args.dask:
        setups |= {"2 Dask workers x 1 thread, Dask's defaults": (2, "dask"),
                   "2 Dask workers x 1 thread, as `run --workers 2`": (2, "runner")}
    totals: dict[str, list[float]] = {name: [] for name in setups}
    each: dict[str, list[float]] = {name: [] for name in setups}
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, (n_procs, threads) in setups.items():
            if threads in ("dask", "runner"):
                rates = on_dask(n_procs, args.seconds, args.images, threads == "runner")
            else:
                rates = launch(n_procs, threads, args.seconds, args.images)
            totals[name].append(sum(rates))
            each[name].extend(rates)
            print(f"{name}: {' + '.join(f'{r:.0f}' for r in rates)} img/s", flush=True)
    alone = statistics.median(totals["1 process x 1 thread"])
    lines = [
        "| setting | img/s per process, median | img/s in all, median (best) | against 1 x 1 |",
        "|---|---|---|---|",
    ]
    for name in setups:
        med = statistics.median(totals[name])
        lines.append(f"| {name} | {statistics.median(each[name]):.0f} | {med:.0f} "
                     f"({max(totals[name]):.0f}) | {med / alone:.2f}x |")
    head = (f"Command: `.venv/bin/python bench/bench_cores.py --seconds {args.seconds:g} "
            f"--rounds {args.rounds} --images {args.images}{' --dask' * args.dask}`; "
            f"{platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores; {datetime.date.today()}; load average {load0:.2f} at "
            f"start, {os.getloadavg()[0]:.2f} at end. Medium depth-5 training loop, "
            f"{args.seconds:g} s per measurement, {args.rounds} interleaved rounds.")
    text = head + "\n\n" + "\n".join(lines) + "\n"
    print("\n" + text)
    if args.md:
        with args.md.open("a") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
