"""The world card's measured distance and its check on one world, without the rest of the card.

    .venv/bin/python bench/bench_distance.py --world-seed 1 [--seed 0]

The world card (notebook 00) also trains the scenes and hybrid networks and the from-scratch
baselines; the measured distance needs only the standard network (objects, Medium, depth 5)
and its random initialisation (snapshot 0). This script trains or reads those through the
study's cache, scores both networks' FC6 on every task of the quick profile, and prints the
per-task measured distance (1 - gain) and `worldcard.distance_check`'s row: the Spearman
against the hand ordering, its paired bootstrap interval and verdict.
"""

from __future__ import annotations

import argparse

from bench_convergence import THREADS_HELP, print_table  # beside this script
from transferlab import compute, worldcard
from transferlab.profiles import get_profile, with_world_seed
from transferlab.study import Study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0, help="the networks' training seed")
    ap.add_argument("--threads", type=int, default=2, help=THREADS_HELP)
    args = ap.parse_args()
    compute.configure_threads(args.threads)
    study = Study(with_world_seed(get_profile("quick"), args.world_seed), progress=True)
    distance = worldcard.measured_distance(study, tuple(study.profile.tasks), (args.seed,))
    print_table(f"Measured distance, world {args.world_seed}, seed {args.seed}",
                ["rank", "task", "group", "random init fc6", "trained fc6", "measured distance"])
    for _, r in distance.iterrows():
        print(f"| {r['distance_rank']} | {r['task']} | {r['group']} | {r['random init fc6']:.1f} "
              f"| {r['trained fc6']:.1f} | {r['measured distance']:.3f} |")
    check = worldcard.distance_check(distance)
    print(f"\n{check['verdict']}: {check['evidence']}")


if __name__ == "__main__":
    main()
