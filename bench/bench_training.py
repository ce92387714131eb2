"""Training throughput on this CPU: img/s and GFLOP/s as a fraction of the measured peak.

    .venv/bin/python bench/bench_training.py [--threads 2] [--md bench/bench_torch.md]

In one run: the machine's fp32 and bf16 matmul peak (best of MKL/oneDNN GEMM and a oneDNN
1x1 convolution), then the real training loop (`training.run_loop`: augmentation, forward,
backward, SGD) of the Medium depth-5 network at 28 px in four modes (fp32 / bf16 autocast x
contiguous / channels-last), repeated in interleaved rounds because other jobs share the
cores; then accuracy of fp32 vs bf16 training on a learnable synthetic task (same seed), a
bitwise determinism check, and img/s of every width and depth in the default mode.

Training GFLOP/s = forward FLOPs per image (architecture.complexity) x 3 x img/s.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from transferlab import architecture, compute
from transferlab import networks as nw
from transferlab import training as tr
from transferlab.cache import Cache

MODES = (("fp32", "0"), ("fp32", "1"), ("bf16", "0"), ("bf16", "1"))


@contextlib.contextmanager
def mode(precision: str, channels_last: str) -> Iterator[None]:
    with compute.environ_restored(("TRANSFERLAB_PRECISION", "TRANSFERLAB_CHANNELS_LAST")):
        os.environ["TRANSFERLAB_PRECISION"] = precision
        os.environ["TRANSFERLAB_CHANNELS_LAST"] = channels_last
        yield


def mode_name(precision: str, channels_last: str) -> str:
    return f"{precision} {'channels-last' if channels_last == '1' else 'contiguous'}"


def _rate(fn, flops: float, min_seconds: float = 1.0) -> float:
    fn()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        fn()
        reps += 1
    return flops * reps / (time.perf_counter() - t0) / 1e9


def matmul_peaks(rounds: int = 2, seconds: float = 0.5) -> dict[str, dict[str, float]]:
    """Best GFLOP/s of GEMM (torch.mm) and 1x1 convs (oneDNN), per dtype, over shapes/rounds.

    Contention only ever lowers a measurement, so the best one is the estimate of the peak.
    """
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            mm = conv = 0.0
            for _ in range(rounds):
                for n in (1024, 2048):
                    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
                    mm = max(mm, _rate(lambda a=a, b=b: a @ b, 2 * n**3, seconds))
                for c in (256, 512):
                    x = torch.randn(64, c, 16, 16, dtype=dtype).contiguous(
                        memory_format=torch.channels_last)
                    w = torch.randn(c, c, 1, 1, dtype=dtype).contiguous(
                        memory_format=torch.channels_last)
                    conv = max(conv, _rate(lambda x=x, w=w: F.conv2d(x, w),
                                           2 * 64 * 256 * c * c, seconds))
            out[name] = {"mm": mm, "conv1x1": conv, "peak": max(mm, conv)}
    return out


def merge_peaks(a: dict, b: dict) -> dict:
    return {k: {m: max(a[k][m], b[k][m]) for m in a[k]} for k in a}


def synthetic_task(n: int, size: int, seed: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Oriented gratings in a disc on a noisy background; class = (orientation, frequency).

    Colour, phase, position, radius and noise are nuisances. Learnable but not trivial.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    theta = (labels % 5) * np.pi / 5 + rng.normal(0, 0.08, n)
    freq = np.where(labels < 5, 0.18, 0.32) * (1 + rng.normal(0, 0.05, n))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(size * 0.3, size * 0.7, (2, n))
    radius = rng.uniform(size * 0.2, size * 0.35, n)
    proj = (np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy)
    grating = np.sin(2 * np.pi * freq[:, None, None] * proj + rng.uniform(0, 6.3, n)[:, None, None])
    disc = ((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) < radius[:, None, None] ** 2
    colour = rng.uniform(60, 200, (n, 1, 1, 3))
    img = colour + 50 * (grating * disc)[..., None] + rng.normal(0, 35, (n, size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8), labels.astype(np.int64)


def loop_rate(net_cfg: architecture.NetConfig, images, labels, iterations: int) -> float:
    """img/s of `iterations` steps of the real training loop, after a short warm-up."""
    cfg = tr.TrainConfig(epochs=1, batch_size=128, n_checkpoints=0)
    plan = tr.make_plan(cfg, len(labels), net_cfg.input_size)
    torch.manual_seed(0)
    net = nw.build(net_cfg)
    warm = tr.make_plan(cfg, 128 * 3, net_cfg.input_size)
    tr.run_loop(net, warm, images[: 128 * 3], labels[: 128 * 3], progress=False)
    sub = iterations * 128
    plan = tr.make_plan(cfg, sub, net_cfg.input_size)
    t0 = time.perf_counter()
    tr.run_loop(net, plan, images[:sub], labels[:sub], progress=False)
    return sub / (time.perf_counter() - t0)


class Report:
    """Markdown lines printed as they come and optionally appended to a file at the end."""

    def __init__(self, title: str, script: str, threads: int, machine_extra: str = "") -> None:
        self.lines: list[str] = []
        self.emit(title)
        self.emit()
        self.emit(f"- command: `.venv/bin/python bench/{script} --threads {threads}`")
        self.emit(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} "
                  f"cores, torch {torch.__version__}, {threads} threads{machine_extra}; "
                  f"date {datetime.date.today()}")
        self.emit(f"- load average at start: {os.getloadavg()[0]:.2f} (other jobs share these cores)")
        self.emit()

    def emit(self, s: str = "") -> None:
        print(s, flush=True)
        self.lines.append(s)

    def save(self, path: str | None) -> None:
        self.emit(f"- load average at end: {os.getloadavg()[0]:.2f}")
        if path:
            with open(path, "a") as fh:
                fh.write("\n".join(self.lines) + "\n\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--accuracy-epochs", type=int, default=6)
    ap.add_argument("--md", default=None, help="write the markdown section here")
    args = ap.parse_args()
    threads = compute.configure_threads(args.threads)
    report = Report("### Training throughput (`bench/bench_training.py`)", "bench_training.py",
                    threads, f"; native bf16: {compute._native_bf16()}")
    emit = report.emit

    net_cfg = architecture.NetConfig()
    flops = architecture.complexity(net_cfg)["flops"]
    images, labels = synthetic_task(128 * args.iterations, 32, seed=0, k=100)
    rates: dict[tuple[str, str], list[float]] = {m: [] for m in MODES}
    peaks = matmul_peaks(rounds=1)
    for _ in range(args.rounds):  # peaks and modes interleaved: all see the same contention
        for m in MODES:
            with mode(*m):
                rates[m].append(loop_rate(net_cfg, images, labels, args.iterations))
        peaks = merge_peaks(peaks, matmul_peaks(rounds=1))
    emit(f"Peak (best over {args.rounds + 1} interleaved measurements):")
    emit()
    emit("| dtype | GEMM (torch.mm) GFLOP/s | oneDNN 1x1 conv GFLOP/s | peak used |")
    emit("|---|---|---|---|")
    for name, p in peaks.items():
        emit(f"| {name} | {p['mm']:.0f} | {p['conv1x1']:.0f} | {p['peak']:.0f} |")
    emit()
    base = max(rates[MODES[0]])
    emit(f"Medium depth-5 network, 28 px input, batch 128, {architecture.complexity(net_cfg)['params']:,} "
         f"params, {flops / 1e6:.1f} MFLOP/image forward; best (median) of {args.rounds} "
         "interleaved rounds:")
    emit()
    emit("| mode | img/s best | img/s median | speed-up vs fp32 contiguous | training GFLOP/s "
         "| % of peak |")
    emit("|---|---|---|---|---|---|")
    for m in MODES:
        best, med = max(rates[m]), statistics.median(rates[m])
        gf = best * 3 * flops / 1e9
        emit(f"| {mode_name(*m)} | {best:.0f} | {med:.0f} | {best / base:.2f}x | {gf:.0f} "
             f"| {100 * gf / peaks[m[0]]['peak']:.0f} % of {m[0]} |")
    emit()

    # accuracy equality and determinism
    train_x, train_y = synthetic_task(6000, 32, seed=1)
    test_x, test_y = synthetic_task(2000, 32, seed=2)
    cfg = tr.TrainConfig(epochs=args.accuracy_epochs, batch_size=128, lr=0.05, n_checkpoints=0)
    small = architecture.NetConfig(n_classes=10)
    acc, secs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in (("fp32", "1"), ("bf16", "1")):
            with mode(*m):
                run = tr.train(small, cfg, train_x, train_y, data_id={"bench": m[0]},
                               cache=Cache(tmp), progress=False)
                acc[m[0]] = tr.accuracy(run.model(), test_x, test_y)
                secs[m[0]] = run.log["seconds"]
                if m[0] == "bf16":
                    again = tr.train(small, cfg, train_x, train_y, data_id={"bench": "again"},
                                     cache=Cache(tmp), progress=False)
                    same = all(torch.equal(run.state[k], again.state[k]) for k in run.state)
    emit(f"Accuracy on a synthetic 10-class grating task (6,000 train / 2,000 test images, "
         f"{args.accuracy_epochs} epochs, same seed), channels-last:")
    emit()
    emit("| precision | test accuracy | training seconds |")
    emit("|---|---|---|")
    for p in ("fp32", "bf16"):
        emit(f"| {p} | {100 * acc[p]:.1f} % | {secs[p]:.1f} |")
    emit()
    emit(f"bf16 minus fp32: {100 * (acc['bf16'] - acc['fp32']):+.1f} points (one seed; the "
         f"binomial standard error of one accuracy here is "
         f"{100 * np.sqrt(acc['fp32'] * (1 - acc['fp32']) / len(test_y)):.1f} points). "
         f"Two bf16 runs with the same seed are bitwise identical: {same}.")
    emit()

    emit("Default mode, img/s per width (depth 5) and per depth (Medium), 28 px:")
    emit()
    emit("| network | params | MFLOP/image | img/s | GFLOP/s (x3) |")
    emit("|---|---|---|---|---|")
    grid = [architecture.NetConfig(width=w) for w in architecture.WIDTHS]
    grid += [architecture.NetConfig(depth=d) for d in architecture.DEPTHS if d != 5]
    for c in grid:
        cx = architecture.complexity(c)
        r = loop_rate(c, images, labels, max(5, args.iterations // 2))
        emit(f"| {c.width} / depth {c.depth} | {cx['params']:,} | {cx['flops'] / 1e6:.1f} | "
             f"{r:.0f} | {r * 3 * cx['flops'] / 1e9:.0f} |")
    emit()
    report.save(args.md)


if __name__ == "__main__":
    main()
