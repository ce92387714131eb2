"""What does the objects source network read? Its errors on the source's test split.

    .venv/bin/python bench/bench_source_cues.py [--widths medium large] [--steps 3000]

A source class is (superclass: a shape family) x (subclass: texture and two colours). For
each network (the quick profile's, read from the study's cache or trained once), the share
of test images misclassified within the right superclass (shape read, appearance confused)
and across superclasses, and how close in hue the wrong class is to the right one against
a random class. Errors across superclasses towards classes of similar hue mean the network
tells classes apart by colour and texture more than by shape.
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_convergence import THREADS_HELP, print_table, quick_backend  # beside this script
from transferlab import compute, training
from transferlab.study import WorldBackend
from transferlab.world import N_SUB, catalog, load_split


def _hue_gap(cat, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest of the two colours' hue distances (on the hue circle) of classes a and b."""
    d = np.abs(cat.sub_hue[a // N_SUB, a % N_SUB] - cat.sub_hue[b // N_SUB, b % N_SUB]) % 1
    return np.minimum(d, 1 - d).max(1)


def errors(backend: WorldBackend, width: str, depth: int) -> dict[str, float]:
    x, y = load_split("objects", "test", backend.world, backend.cache)
    net = backend.network("objects", width, depth)
    pred = training.predict(net.model(None), x).argmax(1)
    wrong = pred != y
    within = wrong & (pred // N_SUB == y // N_SUB)
    cat = catalog(backend.world.seed)
    other = np.random.default_rng(0).integers(0, int(y.max()) + 1, int(wrong.sum()))
    return {"top1": 100 * (1 - wrong.mean()), "within": 100 * within.mean(),
            "across": 100 * (wrong & ~within).mean(),
            "hue_wrong": float(np.median(_hue_gap(cat, y[wrong], pred[wrong]))),
            "hue_random": float(np.median(_hue_gap(cat, y[wrong], other)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", nargs="+", default=["medium", "large"])
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None, help="default: the quick profile's")
    ap.add_argument("--threads", type=int, default=2, help=THREADS_HELP)
    args = ap.parse_args()
    compute.configure_threads(args.threads)
    backend = quick_backend(args.steps)
    steps = backend.profile.train.steps
    print_table(f"Errors of the objects network on its test split ({steps} steps)",
                ["width", "top-1", "errors within the superclass", "errors across superclasses",
                 "median hue gap to the predicted class", "to a random class"])
    for width in args.widths:
        e = errors(backend, width, args.depth)
        print(f"| {width} | {e['top1']:.1f} | {e['within']:.1f} | {e['across']:.1f} | "
              f"{e['hue_wrong']:.3f} | {e['hue_random']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
