"""Wall time and peak memory of a whole study run: cold serial, cold on Dask, then warm.

    .venv/bin/python bench/bench_study.py                 # the quick profile, --workers 2
    .venv/bin/python bench/bench_study.py --profile smoke -- --only width   # args after -- go to `run`

Runs `python -m transferlab run --profile P --out <tmp>/out-<phase>` three times: "cold"
(--workers N) with a fresh TRANSFERLAB_CACHE, "warm" (--workers N) on the cache "cold"
filled, then "cold serial" (--workers 0) with another fresh cache. TRANSFERLAB_CACHE_LOG counts what each
phase computed (a warm run: nothing).
Memory: the peak RSS of the largest single process of the run (runner, kernel or worker),
the larger of getrusage(RUSAGE_CHILDREN) in a wrapper process per phase and, if psutil is
importable, the largest RSS of one process sampled every 0.2 s (the cache restarts a
process's peak count at each computation it logs, so the kernel's own peak undercounts);
plus the peaks of the summed RSS and summed PSS of the whole process tree, sampled alike.
Prints a markdown table and writes it to --md.
Other jobs share this machine, so compare phases within one run (the warm/cold ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(result: Path, cmd: list[str]) -> int:
    """Wrapper mode: run `cmd`, then record its wall time and its largest process's peak RSS."""
    start = time.perf_counter()
    rc = subprocess.run(cmd).returncode
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_mib = peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB
    result.write_text(json.dumps({"rc": rc, "wall_s": wall, "max_process_mib": peak_mib}))
    return rc


def _tree_mib(proc) -> tuple[float, float, float]:
    """Summed RSS, summed PSS and largest RSS (MiB) of a psutil process and its live
    descendants.

    RSS counts the pages of a shared library once per process that maps it: torch's ~230
    MiB of file-backed pages are counted by every worker. PSS divides each shared page among
    the processes that map it, so its sum is the memory the tree takes from the machine.
    """
    import psutil

    rss = pss = largest = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            info = p.memory_full_info()
        except psutil.Error:  # exited between listing and reading
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)  # PSS is Linux-only
        largest = max(largest, info.rss)
    return rss / 2**20, pss / 2**20, largest / 2**20


def measure(cmd: list[str], env: dict[str, str], result: Path) -> dict:
    """Run `cmd` in a wrapper process; wall time, exit status and memory peaks."""
    wrapper = [sys.executable, __file__, "--child", str(result), "--", *cmd]
    proc = subprocess.Popen(wrapper, env=env, cwd=REPO)
    tree_peak = tree_pss = None
    largest = 0.0
    try:
        import psutil

        handle, tree_peak, tree_pss = psutil.Process(proc.pid), 0.0, 0.0
        while proc.poll() is None:
            try:
                rss, pss, one = _tree_mib(handle)
            except psutil.Error:
                break
            tree_peak, tree_pss = max(tree_peak, rss), max(tree_pss, pss)
            largest = max(largest, one)
            time.sleep(0.2)
    except ImportError:
        pass
    proc.wait()
    out = json.loads(result.read_text())
    out["max_process_mib"] = max(out["max_process_mib"], largest)
    out["tree_peak_mib"] = tree_peak
    out["tree_peak_pss_mib"] = tree_pss
    return out


def _notebook_times(profile_dir: Path) -> dict[str, tuple[float, str]]:
    times = {}
    for status in sorted(profile_dir.glob("*/status.json")):
        rec = json.loads(status.read_text())
        times[rec["name"]] = (rec["seconds"], rec["status"])
    return times


def _fmt(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def table(profile: str, cmd_shown: str, runs: dict[str, dict], per_nb: dict) -> str:
    cold, warm, serial = runs["cold"], runs["warm"], runs["cold serial"]
    lines = [
        f"## Whole study, profile `{profile}`: wall time and peak memory",
        "",
        f"Command: `{cmd_shown}` (cold: empty TRANSFERLAB_CACHE; warm: the same cache again).",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}."
        f" Date: {date.today().isoformat()}. Script: `bench/bench_study.py`.",
        "",
        "| run | workers | exit | wall (s) | entries computed | largest process peak RSS (MiB) "
        "| process tree peak RSS (MiB) | process tree peak PSS (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase, r in runs.items():
        lines.append(
            f"| {phase} | {r['workers']} | {r['rc']} | {r['wall_s']:.1f} | {r['computed']} "
            f"| {_fmt(r['max_process_mib'])} | {_fmt(r['tree_peak_mib'])} "
            f"| {_fmt(r.get('tree_peak_pss_mib'))} |"
        )
    lines += ["", f"Cold serial / cold on {cold['workers']} workers: "
              f"{serial['wall_s'] / cold['wall_s']:.2f}x. Warm / cold wall time: "
              f"{warm['wall_s'] / cold['wall_s']:.2f}.", ""]
    lines += ["| notebook | cold (s) | warm (s) | status cold / warm |", "|---|---|---|---|"]
    for name in sorted(set(per_nb["cold"]) | set(per_nb["warm"])):
        c = per_nb["cold"].get(name, (float("nan"), "-"))
        w = per_nb["warm"].get(name, (float("nan"), "-"))
        lines.append(f"| {name} | {c[0]:.1f} | {w[0]:.1f} | {c[1]} / {w[1]} |")
    lines.append("")
    lines.append(
        "Largest process: the larger of getrusage(RUSAGE_CHILDREN).ru_maxrss of a wrapper and"
        " the largest one-process RSS sampled (runner, kernels and workers are separate"
        " processes; their sum at one instant is the tree column, psutil-sampled)."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(Path(argv[1]), argv[argv.index("--") + 1 :])
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--md", type=Path, default=REPO / "bench" / "bench_study.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers of the cold and "
                        "warm phases (default 2)")
    args = parser.parse_args(own)

    tmp = Path(tempfile.mkdtemp(prefix="bench_study_"))
    runs, per_nb = {}, {}
    # phase -> (cache folder, workers): the warm phase reuses what "cold" filled. The serial
    # run goes last: on a machine someone else is using, that makes the speed-up an
    # underestimate rather than an overestimate (the parallel phases met any load first).
    phases = {"cold": ("cache", args.workers), "warm": ("cache", args.workers),
              "cold serial": ("cache-serial", 0)}
    for phase, (cache, workers) in phases.items():
        out = tmp / f"out-{phase.replace(' ', '-')}"
        log = tmp / f"{phase.replace(' ', '-')}.log"
        env = dict(os.environ, TRANSFERLAB_CACHE=str(tmp / cache), TRANSFERLAB_CACHE_LOG=str(log))
        cmd = [sys.executable, "-m", "transferlab", "run", "--profile", args.profile]
        cmd += ["--out", str(out), "--workers", str(workers), *extra]
        print(f"== {phase}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        runs[phase] = measure(cmd, env, tmp / f"{phase.replace(' ', '-')}.json")
        runs[phase] |= {"workers": workers,
                        "computed": len(log.read_text().splitlines()) if log.exists() else 0}
        per_nb[phase] = _notebook_times(out / args.profile)
    shown = f"python -m transferlab run --profile {args.profile} --out <tmp> {' '.join(extra)}"
    md = table(args.profile, shown.strip(), runs, per_nb)
    print(md)
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text(md)
    print(f"written to {args.md}; temporary folder {tmp}", file=sys.stderr)
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r["rc"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
