"""Run every benchmark of bench/, one after the other, each in its own process.

    .venv/bin/python bench/run_all.py [--only world probes] [--list]

Each benchmark prints its own markdown table; copy the figures into BENCHMARKS.md with the
command, the CPU and the date they print. They run one at a time because they time the same
two cores. The exit status is the number of benchmarks that failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def benchmarks() -> dict[str, Path]:
    """Every `bench_<name>.py` beside this file, by name."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(BENCH.glob("bench_*.py"))}


def main(argv: list[str] | None = None) -> int:
    found = benchmarks()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=[], choices=sorted(found), metavar="NAME",
                        help=f"benchmarks to run, of {sorted(found)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(found))
        return 0
    failed = []
    for name in args.only or list(found):
        print(f"\n## {name}: {found[name].name}\n", flush=True)
        start = time.perf_counter()
        rc = subprocess.run([sys.executable, str(found[name])]).returncode
        print(f"\n({name}: exit {rc}, {time.perf_counter() - start:.0f} s)", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
