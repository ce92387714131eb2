"""Does width help the near tasks once their linear probes have more training images?

    .venv/bin/python bench/bench_probe_data.py [--per-class 12 60] [--widths medium large]

The width claim's first statistic is the mean over the near tasks (classification and
attributes) of (large - medium) FC6 score. The quick profile trains each target's probe on
12 images per class (per label for multi-label tasks), where the probe's own variance may
hide a small difference between representations. This bench scores the quick profile's
objects networks (read from the study's cache, or trained once) on the same test splits with
probes trained on the first N images per class of each task's training stream (the quick
split is the first 12: the same images, so that row is the study's own), through the
study's scoring path, and reports the statistic with its paired bootstrap interval over
test images (tasks not resampled).
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_convergence import THREADS_HELP, print_table  # beside this script
from transferlab import compute, features, scoring
from transferlab.claims import NEAR
from transferlab.study import Study
from transferlab.tasks import TaskData
from transferlab.world import generate


def fc6(study: Study, width: str, images: np.ndarray) -> np.ndarray:
    """Post-processed, jitter-averaged FC6 of the objects network of `width`."""
    model = study.network("objects", width).model(None)
    raw = features.extract(model, images, ["fc6"], pooling=1, progress=False)["fc6"]
    return features.postprocess(raw)


def task_scores(study: Study, task: str, per_class: int, widths: list[str]) -> dict:
    """{width: scoring.score result} with a training split of `per_class` images per class."""
    spec, data = study.task_spec(task), study.task(task)
    n = per_class * spec.n_classes
    w = study.world
    train_x, train_y = generate(task, "train", range(n), w.size, w.seed, w)
    held = TaskData(spec, {"train": train_x, "test": data.images["test"]},
                    {"train": train_y, "test": data.labels["test"]})
    out = {}
    for width in widths:
        x = {"train": fc6(study, width, train_x), "test": fc6(study, width, data.images["test"])}
        out[width] = scoring.score(held, x, study.profile.probe, study.profile.n_boot, 0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, nargs="+", default=[12, 60])
    ap.add_argument("--widths", nargs=2, default=["medium", "large"])
    ap.add_argument("--threads", type=int, default=2, help=THREADS_HELP)
    args = ap.parse_args()
    compute.configure_threads(args.threads)
    study = Study("quick", progress=False)
    near = [t for t in study.default_tasks() if study.task_spec(t).group in NEAR]
    narrow, wide = args.widths
    print_table(f"Near tasks, FC6 of the objects networks ({wide} - {narrow}), quick profile",
                ["images per class", *near, "mean [95 % paired interval]"])
    for per_class in args.per_class:
        cells, gains, boots = [], [], []
        for task in near:
            s = task_scores(study, task, per_class, [narrow, wide])
            cells.append(f"{s[narrow]['score']:.1f} -> {s[wide]['score']:.1f}")
            gains.append(s[wide]["score"] - s[narrow]["score"])
            boots.append(np.asarray(s[wide]["boot"]) - np.asarray(s[narrow]["boot"]))
        gain = float(np.mean(gains))
        lo, hi = np.nanpercentile(np.mean(boots, axis=0), [2.5, 97.5])
        print(f"| {per_class} | {' | '.join(cells)} | {gain:+.2f} [{lo:+.2f}, {hi:+.2f}] |",
              flush=True)


if __name__ == "__main__":
    main()
