"""Feature-extraction throughput with 12 jitters, and fp32 vs bf16 feature quality.

    .venv/bin/python bench/bench_features.py [--threads 2] [--md bench/bench_torch.md]

In one run: the fp32/bf16 matmul peak (as bench_training.py), then `features.extract` of
the Medium depth-5 network (32 px images, 28 px crops, 12 jitters) for all 8 layers at once
and for fc6 alone, in four modes (fp32 / bf16 autocast x contiguous / channels-last),
interleaved rounds; then a briefly trained network's fc6 features in fp32 and bf16: their
relative difference and the accuracy of a linear SVM (LinearSVC, C=1) on each.

Extraction GFLOP/s = forward FLOPs per image up to the deepest requested layer x 12 x img/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import (  # noqa: E402
    MODES,
    Report,
    matmul_peaks,
    merge_peaks,
    mode,
    mode_name,
    synthetic_task,
)
from transferlab import architecture as arch  # noqa: E402
from transferlab import compute  # noqa: E402
from transferlab import features as ft  # noqa: E402
from transferlab import networks as nw  # noqa: E402
from transferlab import training as tr  # noqa: E402
from transferlab.cache import Cache  # noqa: E402


def flops_up_to_fc6(cfg: arch.NetConfig) -> int:
    full = arch.complexity(cfg)["flops"]
    return full - 2 * (cfg.fc6 * arch.fc7_size(cfg) + arch.fc7_size(cfg) * cfg.n_classes)


def extract_rate(model, images, layers, batch_size: int) -> float:
    ft.extract(model, images[:batch_size], layers, batch_size=batch_size, progress=False)
    t0 = time.perf_counter()
    ft.extract(model, images, layers, batch_size=batch_size, progress=False)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--md", default=None)
    args = ap.parse_args()
    threads = compute.configure_threads(args.threads)
    report = Report("### Feature extraction throughput (`bench/bench_features.py`)",
                    "bench_features.py", threads)
    emit = report.emit

    cfg = arch.NetConfig()
    torch.manual_seed(0)
    model = nw.build(cfg).eval()
    images, _ = synthetic_task(args.images, 32, seed=0)
    cases = {"all 8 layers": (arch.layer_names(cfg), arch.complexity(cfg)["flops"]),
             "fc6 only": (["fc6"], flops_up_to_fc6(cfg))}
    rates: dict[tuple, list[float]] = {(m, c): [] for m in MODES for c in cases}
    peaks = matmul_peaks(rounds=1)
    for _ in range(args.rounds):  # peaks and modes interleaved: all see the same contention
        for m in MODES:
            with mode(*m):
                for c, (layers, _) in cases.items():
                    rates[(m, c)].append(extract_rate(model, images, layers, args.batch_size))
        peaks = merge_peaks(peaks, matmul_peaks(rounds=1))
    emit(f"Peak in this run (best of {args.rounds + 1} interleaved measurements of GEMM and "
         f"oneDNN 1x1 conv): fp32 {peaks['fp32']['peak']:.0f} GFLOP/s, bf16 "
         f"{peaks['bf16']['peak']:.0f} GFLOP/s.")
    emit()
    emit(f"Medium depth-5, {args.images} images of 32 px, 12 jitters of 28 px, batch "
         f"{args.batch_size}; best (median) of {args.rounds} interleaved rounds:")
    emit()
    emit("| mode | layers | img/s best | img/s median | speed-up vs fp32 contiguous | GFLOP/s "
         "| % of peak |")
    emit("|---|---|---|---|---|---|---|")
    for c, (_, flops) in cases.items():
        base = max(rates[(MODES[0], c)])
        for m in MODES:
            best, med = max(rates[(m, c)]), statistics.median(rates[(m, c)])
            gf = best * 12 * flops / 1e9
            emit(f"| {mode_name(*m)} | {c} | {best:.0f} | {med:.0f} | {best / base:.2f}x "
                 f"| {gf:.0f} | {100 * gf / peaks[m[0]]['peak']:.0f} % of {m[0]} |")
    emit()

    # fp32 vs bf16 features of a trained network: difference and linear-probe accuracy
    train_x, train_y = synthetic_task(4000, 32, seed=1)
    test_x, test_y = synthetic_task(1500, 32, seed=2)
    small = arch.NetConfig(n_classes=10)
    with tempfile.TemporaryDirectory() as tmp:
        run = tr.train(small, tr.TrainConfig(epochs=4, n_checkpoints=0), train_x, train_y,
                       data_id={"bench": "features"}, cache=Cache(tmp), progress=False)
    net = run.model()
    probe_train, probe_test = slice(0, 1000), slice(0, 1500)
    feats, acc = {}, {}
    for p in ("fp32", "bf16"):
        with mode(p, "1"):
            a = ft.extract(net, train_x[probe_train], ["fc6"], progress=False)["fc6"]
            b = ft.extract(net, test_x[probe_test], ["fc6"], progress=False)["fc6"]
        feats[p] = b
        svm = LinearSVC(C=1.0, dual="auto").fit(ft.postprocess(a), train_y[probe_train])
        acc[p] = float(np.mean(svm.predict(ft.postprocess(b)) == test_y[probe_test]))
    rel = np.linalg.norm(feats["bf16"] - feats["fp32"]) / np.linalg.norm(feats["fp32"])
    emit("fc6 features of a network trained 4 epochs on the synthetic grating task; linear SVM "
         "trained on 1,000 images, tested on 1,500:")
    emit()
    emit("| precision | SVM test accuracy |")
    emit("|---|---|")
    for p in ("fp32", "bf16"):
        emit(f"| {p} | {100 * acc[p]:.1f} % |")
    emit()
    emit(f"Relative L2 difference of bf16 vs fp32 features: {rel:.4f}; accuracy difference "
         f"{100 * (acc['bf16'] - acc['fp32']):+.1f} points.")
    emit()
    report.save(args.md)


if __name__ == "__main__":
    main()
