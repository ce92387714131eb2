"""World generation throughput per task group, at a given resolution.

    python bench/bench_world.py [--size 32] [--n 4096] [--threads 2]

Prints a markdown table (images/s per task and per group). Generation is deterministic by
index, so the timing is of pure rendering (no cache involved).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import numpy as np
import torch
from transferlab.world import TASKS, generate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    generate("objects", "train", range(64), args.size)  # warm-up
    rows = []
    for task, spec in TASKS.items():
        split = "database" if spec.kind == "retrieval" else "train"
        n = args.n
        if spec.kind == "retrieval":
            n = min(n, 150)  # default retrieval layouts are small
        t0 = time.perf_counter()
        generate(task, split, np.arange(n), args.size)
        dt = time.perf_counter() - t0
        rows.append((spec.group, task, n / dt))
    print(f"World generation, {args.size} px, {args.threads} torch threads, "
          f"{platform.processor() or platform.machine()}, {date.today()}\n")
    print("| group | task | images/s |\n|---|---|---|")
    for group, task, rate in rows:
        print(f"| {group} | {task} | {rate:,.0f} |")
    print("\n| group | mean images/s |\n|---|---|")
    for group in dict.fromkeys(r[0] for r in rows):
        rates = [r[2] for r in rows if r[0] == group]
        print(f"| {group} | {np.mean(rates):,.0f} |")


if __name__ == "__main__":
    main()
