"""Does a wider network specialise more to its source? FC6's class separation on the source.

    .venv/bin/python bench/bench_specialisation.py [--seeds 0 1] [--world-seed 0]

The paper explains width's claim by over-specialisation: a wider network's representation
fits the source classes more tightly, which helps the near tasks and costs the far ones. For
the quick profile's objects networks of each width (read from the study's cache, trained
once if absent): source top-1 on every 10th training image and on the test split, and the
share of FC6's variance that lies between the source classes on the test split (eta^2 =
trace of the between-class scatter / trace of the total scatter, on the study's
post-processed FC6, mean of the 12 jitters). Over-specialisation shows as a larger eta^2 and
a larger train - test gap for the wider network.
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_convergence import THREADS_HELP, print_table  # beside this script
from transferlab import compute, features, training
from transferlab.profiles import get_profile, with_world_seed
from transferlab.study import WorldBackend
from transferlab.world import load_split


def class_separation(x: np.ndarray, y: np.ndarray) -> float:
    """eta^2: the share of the total scatter of `x` (N, D) that lies between the classes `y`."""
    centred = x - x.mean(0)
    classes, counts = np.unique(y, return_counts=True)
    means = np.stack([centred[y == c].mean(0) for c in classes])
    return float((counts[:, None] * means**2).sum() / (centred**2).sum())


def measure(backend: WorldBackend, width: str, seed: int) -> dict:
    net = backend.network("objects", width, 5, seed=seed)
    model = net.model(None)
    train_x, train_y = load_split("objects", "train", backend.world, backend.cache)
    test_x, test_y = load_split("objects", "test", backend.world, backend.cache)
    fc6 = features.extract(model, test_x, ["fc6"], progress=False)["fc6"]
    return {"train": 100 * training.accuracy(model, train_x[::10], train_y[::10]),
            "test": 100 * training.accuracy(model, test_x, test_y),
            "eta2": class_separation(features.postprocess(fc6), test_y)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", nargs="+", default=["tiny", "small", "medium", "large"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--world-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help=THREADS_HELP)
    args = ap.parse_args()
    compute.configure_threads(args.threads)
    backend = WorldBackend(with_world_seed(get_profile("quick"), args.world_seed), progress=False)
    print_table(f"FC6 class separation on the objects source, world {args.world_seed}",
                ["seed", "width", "train top-1", "test top-1", "gap", "FC6 eta^2"])
    for seed in args.seeds:
        for width in args.widths:
            r = measure(backend, width, seed)
            print(f"| {seed} | {width} | {r['train']:.1f} | {r['test']:.1f} | "
                  f"{r['train'] - r['test']:.1f} | {r['eta2']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
