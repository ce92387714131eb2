"""The paper's claims over several embedded worlds pooled: `python -m transferlab pool`.

A world (`run --world-seed N`) is a fresh draw of every task's recipe: new classes,
instances, images, and source networks trained on them. One world gives each distance group
two to four tasks, and the paper's effects are about one standard error of a mean over so
few (BENCHMARKS.md, "More test images per task"), so a single world's verdicts at their bounds
change from one world to the next. Pooling W worlds gives every group W times the tasks.

The claims are `transferlab.claims`' own, unchanged, on one table that holds every world:
there a task of world w is a task of its own, named "birds (world w)", so the bootstrap
resamples tasks within each distance group across all worlds, seeds as whole units, and
each task's test images paired across its levels. The intervals are conditional on each
world's source networks, as a single world's are on its own: the tasks of one world share
them, and with one training seed nothing resamples them. A world's own checks (its card,
00_world) stay per world and are not pooled.

Pooling computes nothing expensive: every world must have been run first (same profile,
parameters and seeds); a world lacking a network, score or Table 6 search is named, with
the command that computes it, before any table is read.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TextIO

import pandas as pd

from . import claims, factors, plots, report
from . import params as params_mod
from .runner import (
    Job,
    default_notebooks_dir,
    find_notebooks,
    plan,
    replace_folder,
    select_notebooks,
    staging_folder,
    study_plan,
)

# The notebooks with a paper claim, and the entry point whose table their claims read.
RUNS: dict[str, Callable[..., pd.DataFrame]] = {
    "01_width": factors.run_width,
    "02_depth": factors.run_depth,
    "03_early_stopping": factors.run_early_stopping,
    "04_source_task": factors.run_source_task,
    "05_layer": factors.run_layer,
    "06_dim_reduction": factors.run_dim_reduction,
    "07_fine_tuning": factors.run_fine_tuning,
    "08_data_size": factors.run_data_size,
    "09_optimized": factors.run_optimized,
}


def world_task(task: str, world_seed: int) -> str:
    """A task's name in a pooled table: "birds (world 2)"."""
    return f"{task} (world {world_seed})"


def pooled_table(tables: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """One results table from each world's table of one factor (world seed -> table), every
    task (source tasks included) renamed `world_task`; replicates are kept."""
    if len(tables) < 2:
        raise ValueError(f"pooling needs tables of at least 2 worlds, got {sorted(tables)}")
    seeds = {w: sorted(set(t["seed"])) for w, t in tables.items()}
    if len({tuple(s) for s in seeds.values()}) > 1:
        raise ValueError(f"the worlds' tables hold different training seeds {seeds}: pool "
                         "runs made with the same --seeds")
    return pd.concat([t.assign(task=[world_task(x, w) for x in t["task"]])
                      for w, t in tables.items()], ignore_index=True)


def pooled_verdicts(table: pd.DataFrame, world_seeds: Sequence[int]) -> list[claims.Verdict]:
    """The paper's claims on a pooled table (`claims.checked`), the evidence naming the worlds."""
    worlds = ", ".join(str(w) for w in world_seeds)
    return [replace(v, evidence=f"{v.evidence} Tasks of worlds {worlds} pooled.")
            for v in claims.checked(table)]


def folder_name(profile: str, world_seeds: Sequence[int]) -> str:
    """The report folder of a pooled run: quick-worlds-2-3 (seeds in increasing order)."""
    return f"{profile}-worlds-" + "-".join(str(w) for w in sorted(world_seeds))


def _check_seeds(world_seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(int(w) for w in world_seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"world_seeds={list(world_seeds)}: pooling needs at least two "
                         "different world seeds, each >= 0")
    return tuple(sorted(seeds))


def _world_jobs(profile: str, only: Sequence[str], world_seeds: Sequence[int], out: Path,
                notebooks_dir: Path, params_dir: Path | None, overrides: Mapping,
                stderr: TextIO) -> dict[int, list[Job]]:
    """Each world's jobs of the notebooks with a paper claim, every request checked."""
    if profile == "real":
        raise ValueError("profile='real' has one dataset per task, no worlds to pool; pool "
                         "the embedded profiles (smoke, quick, full)")
    if "world_seed" in overrides:
        raise ValueError("world_seed is set per world by pooling; give the worlds as "
                         "world_seeds")
    chosen = select_notebooks(find_notebooks(notebooks_dir), only)
    wanted = [nb.stem for nb in chosen if nb.stem in RUNS]
    if not wanted:
        raise ValueError(f"--only {list(only)} names no notebook with a paper claim; those "
                         f"are {list(RUNS)}")
    return {w: plan(profile, wanted, out, notebooks_dir, params_dir,
                    {**overrides, "world_seed": w}, stderr)
            for w in world_seeds}


def _missing(jobs: Mapping[int, list[Job]], profile: str, overrides: Mapping,
             params_dir: Path | None, notebooks_dir: Path) -> str:
    """"" if every world's networks, scores and searches are in the cache, else what each
    world lacks and the command that computes it (into a report folder of its own)."""
    lines = []
    for w, world_jobs in jobs.items():
        # A world split is cheap to draw again (the whole world: a core-minute), and a run on
        # --workers 0 draws only the splits its notebooks read, fewer than the plan lists.
        units = study_plan(world_jobs)
        needed = [u for u in units.units.values() if u.kind != "world"]
        pending = [u for u in needed if u.id in units.pending]
        if not pending:
            continue
        given = "".join(
            f" {flag} {value}" for flag, value in (
                ("--seeds", " ".join(map(str, overrides.get("seeds") or ()))),
                ("--params", params_dir or ""),
                ("--notebooks", notebooks_dir if notebooks_dir != default_notebooks_dir()
                 else ""))
            if value)
        names = " ".join(j.name for j in world_jobs)
        lines.append(f"world {w}: {len(pending)} of its {len(needed)} expensive units (networks, "
                     f"features, scores, searches) not computed; run: python -m transferlab "
                     f"run --profile {profile} --world-seed {w} --only {names}{given} "
                     f"--out reports-world{w}")
    return "\n".join(lines)


def pool(
    profile: str,
    world_seeds: Sequence[int],
    only: Sequence[str] = (),
    out: Path | str = "reports",
    notebooks_dir: Path | None = None,
    params_dir: Path | None = None,
    overrides: Mapping | None = None,
    stderr: TextIO | None = None,
) -> tuple[Path, dict[str, list[claims.Verdict]]]:
    """Pool the finished runs of `world_seeds` into out/<profile>-worlds-.../: per notebook
    its pooled results.csv and claims.csv, a headline figure (every statistic per world and
    pooled, `plots.claims_forest`), where the pooled intervals come from (uncertainty.csv and
    .png, `claims.uncertainty`), and the run's claims.csv and index.html (which
    `python -m transferlab compare` reads). Returns the folder and the paper claims' verdicts
    of each world alone ("world 2", ...) and pooled ("pooled").

    Raises ValueError (or CacheError) before reading any table, on a bad request or a world
    not run yet. A notebook's folder is replaced only once its pooled outputs are written.
    """
    stderr = stderr or sys.stderr
    seeds = _check_seeds(world_seeds)
    overrides = dict(overrides or {})
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    out = Path(out)
    jobs = _world_jobs(profile, only, seeds, out, notebooks_dir, params_dir, overrides, stderr)
    missing = _missing(jobs, profile, overrides, params_dir, notebooks_dir)
    if missing:
        raise ValueError("pooling reads finished runs only:\n" + missing)
    folder = out.resolve() / folder_name(profile, seeds)
    by_run: dict[str, list[claims.Verdict]] = {}
    for i, first in enumerate(jobs[seeds[0]]):
        start = time.perf_counter()
        print(f"{first.name}: pooling worlds {', '.join(map(str, seeds))}", file=stderr)
        tables, runs = {}, {}
        for w in seeds:  # everything is in the cache: no progress bars
            checked = params_mod.validate(first.name, jobs[w][i].parameters)
            tables[w] = RUNS[first.name](checked, factors.study_for(checked, progress=False))
            runs[f"world {w}"] = claims.checked(tables[w])
        table = pooled_table(tables)
        runs["pooled"] = pooled_verdicts(table, seeds)
        for label, found in runs.items():
            by_run.setdefault(label, []).extend(found)
        target = folder / first.name
        staging = staging_folder(target)
        shutil.rmtree(staging, ignore_errors=True)
        spread = claims.uncertainty(table)
        report.publish(str(staging), first.name, table, claims.as_table(runs["pooled"]),
                       plots.claims_forest(runs),
                       figures={"uncertainty": plots.uncertainty_figure(spread)},
                       tables={"uncertainty": spread})
        report.RunRecord(
            name=first.name, title=f"{report.notebook_title(first.notebook)} (worlds pooled)",
            status="ok", seconds=round(time.perf_counter() - start, 1),
            finished=datetime.now().isoformat(timespec="seconds")).save(staging)
        replace_folder(target, staging)
    records = report.collect(folder, list(RUNS))  # with notebooks pooled here before
    report.write_tables(folder, records)
    report.write_index(folder, profile, records,
                       f"{profile} profile, worlds {', '.join(map(str, seeds))} pooled")
    return folder, by_run
