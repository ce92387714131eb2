"""Are the source networks converged? Source top-1 after training for different lengths.

    .venv/bin/python bench/bench_convergence.py --steps 1500 3000 --widths medium large

Each network is the quick profile's (objects source, 32 px world, step schedule x0.1 at 1/2
and 3/4), trained for each number of steps through the study's own cache, so a length the
profile uses is read back, not retrained. Within one length the step decay makes the last
snapshots agree whatever the length (the profile's plateau check); only a longer run says
whether more training would still pay. Prints test top-1 at the last three snapshots, train
top-1 (every 10th training image, centre crop) and training seconds.
"""

from __future__ import annotations

import argparse
import datetime
from dataclasses import replace

from transferlab import compute, training
from transferlab.profiles import get_profile, with_overrides
from transferlab.study import STANDARD, WorldBackend
from transferlab.world import load_split

# SGD ignores --threads: it always runs on compute.train_threads() (1 by default).
THREADS_HELP = "torch threads outside SGD (training and fine-tuning use compute.train_threads())"


def print_table(title: str, columns: list[str]) -> None:
    """A result's title (with the CPU and the date: timings and rounding depend on both) and
    the header of its markdown table; the rows follow as they are measured."""
    print(f"{title}, {compute.cpu_model()}, {datetime.date.today()}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))

def quick_backend(steps: int | None = None) -> WorldBackend:
    """The quick profile's world and networks, trained for `steps` (default: the profile's)."""
    quick = get_profile("quick")
    return WorldBackend(with_overrides(quick, train=replace(quick.train,
                                                            steps=steps or quick.train.steps)))


def measure(steps: int, width: str, depth: int, source: str = "objects", seed: int = 0) -> dict:
    backend = quick_backend(steps)
    rep = replace(STANDARD, width=width, depth=depth)
    its = backend.checkpoint_iterations(seed, rep)
    test = {it: backend.source_accuracy(source, replace(rep, checkpoint=i), seed)
            for i, it in enumerate(its) if i >= len(its) - 3}
    net = backend.network(source, width, depth, seed=seed)
    x, y = load_split(source, "train", backend.world, backend.cache)
    train = 100 * training.accuracy(net.model(None), x[::10], y[::10])
    return {"steps": steps, "width": width, "depth": depth, "test": test, "train": train,
            "seconds": backend.network_log(source, rep, seed)["log"]["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1500, 3000])
    ap.add_argument("--widths", nargs="+", default=["medium", "large"])
    ap.add_argument("--depths", type=int, nargs="+", default=[5])
    ap.add_argument("--threads", type=int, default=2, help=THREADS_HELP)
    ap.add_argument("--seed", type=int, default=0, help="training seed of every network")
    args = ap.parse_args()
    compute.configure_threads(args.threads)
    print_table(f"Source top-1 by training length, training seed {args.seed}",
                ["steps", "width", "depth", "test top-1 at the last 3 snapshots", "train top-1",
                 "s"])
    for steps in args.steps:
        for width in args.widths:
            for depth in args.depths:
                r = measure(steps, width, depth, seed=args.seed)
                snaps = ", ".join(f"{it}: {acc:.1f}" for it, acc in r["test"].items())
                print(f"| {steps} | {width} | {depth} | {snaps} | {r['train']:.1f} | "
                      f"{r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
