"""Command line: `python -m transferlab run --profile quick`, `python -m transferlab pool
--profile quick --world-seeds 0 1`, `python -m transferlab compare reports/quick other/quick`
and `python -m transferlab tasks`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .params import PROFILES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m transferlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the notebooks of a profile into a report folder")
    run.add_argument("--profile", required=True, choices=PROFILES)
    run.add_argument(
        "--only", nargs="+", default=[], metavar="NAME", help="notebooks to run: 01_width or width"
    )
    run.add_argument("--out", default="reports", help="report folder (default: reports)")
    run.add_argument(
        "--kernel",
        default=None,
        help="Jupyter kernel name; it must run this interpreter "
        "(default: python3, else transferlab)",
    )
    run.add_argument("--notebooks", type=Path, help="notebook folder (default: notebooks/)")
    run.add_argument("--params", type=Path, help="parameter folder (default: params/)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no cell output")
    run.add_argument("--seeds", nargs="+", type=int, metavar="N",
                     help="training seeds of every notebook (default: the profile's)")
    run.add_argument("--world-seed", type=int, metavar="N",
                     help="draw another embedded world (same tasks and sizes; default 0)")
    run.add_argument("--data-root", help="real profile: the folder holding the datasets")
    run.add_argument("--weights", help="real profile: 'imagenet', a checkpoint file or a YAML "
                     "file naming one per source (see README, 'Run on real data')")
    run.add_argument("--workers", type=int, metavar="N",
                     help="Dask worker processes of the local cluster that computes the plan "
                     "first (default: one per core; 0: no Dask, each notebook computes what "
                     "it needs, one after the other)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="compute the plan on this existing Dask cluster (its workers must "
                     "see the cache folder)")
    run.add_argument("--plan", action="store_true",
                     help="print the expensive units the notebooks need (with dependencies "
                     "and cache keys) and their estimated cost per kind, then exit")

    pool = sub.add_parser(
        "pool", help="the paper's claims over several worlds' finished runs pooled (each "
        "world's tasks count as further tasks of their distance groups)")
    pool.add_argument("--profile", required=True, choices=[p for p in PROFILES if p != "real"])
    pool.add_argument("--world-seeds", required=True, nargs="+", type=int, metavar="N",
                      help="the worlds to pool (at least two), each run before with "
                      "`run --world-seed N` and the same --params and --seeds")
    pool.add_argument("--only", nargs="+", default=[], metavar="NAME",
                      help="notebooks to pool: 01_width or width (default: every notebook "
                      "with a paper claim)")
    pool.add_argument("--out", default="reports",
                      help="report folder (default: reports); the pooled run goes to "
                      "OUT/<profile>-worlds-<seeds>/")
    pool.add_argument("--notebooks", type=Path, help="notebook folder (default: notebooks/)")
    pool.add_argument("--params", type=Path, help="parameter folder (default: params/)")
    pool.add_argument("--seeds", nargs="+", type=int, metavar="N",
                      help="training seeds, as the runs were given them (default: the "
                      "profile's)")

    compare = sub.add_parser(
        "compare", help="the verdicts of finished runs side by side (another seed, world or "
        "machine: is a verdict luck?)")
    compare.add_argument("runs", nargs="+", metavar="RUN",
                         help="a run's profile folder (e.g. reports/quick) or its claims.csv; "
                         "LABEL=RUN names its column (default: the path as given; a label "
                         "holds no '=')")
    compare.add_argument("--markdown", action="store_true",
                         help="print a Markdown table only (no summary line)")

    tasks = sub.add_parser("tasks", help="list the world's tasks")
    tasks.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _run(args: argparse.Namespace) -> int:
    from .cache import CacheError
    from .runner import run_study

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # papermill logs the notebooks' output (log_output) at INFO.
    logging.getLogger("papermill").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        if args.plan:
            return _plan(args)
        records = run_study(
            args.profile,
            only=args.only,
            out=args.out,
            kernel=args.kernel,
            notebooks_dir=args.notebooks,
            params_dir=args.params,
            log_output=not args.quiet,
            progress_bar=not args.quiet,
            overrides=_overrides(args),
            workers=args.workers,
            scheduler=args.scheduler,
        )
    except (ValueError, CacheError, FileNotFoundError) as err:  # found before anything ran
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if any(r.status != "ok" for r in records) else 0


def _plan(args: argparse.Namespace) -> int:
    """Print every unit of the plan (kind, id, cache key, dependencies), then the summary."""
    from .compute import child_policy_env
    from .runner import exported, plan, study_plan

    with exported(child_policy_env()):  # the keys a run names; torch stays in the child
        jobs = plan(args.profile, args.only, args.out, args.notebooks, args.params,
                    _overrides(args))
        units = study_plan(jobs)
    for u in units.units.values():
        state = "todo" if u.id in units.pending else "stored" if u.key else "-"
        print(f"{u.kind:<9} {state:<6} {u.id}  key={u.key or '(after training)'}  "
              f"deps={','.join(u.deps) or '-'}")
    print(f"\nplan of {len(jobs)} notebooks, profile {args.profile}:")
    print(units.summary())
    return 0


def _overrides(args: argparse.Namespace) -> dict:
    """The parameters the command line sets for every notebook."""
    # Notebooks run with notebooks/ as their working directory: paths given relative to
    # where the command ran must be made absolute here.
    data_root = str(Path(args.data_root).expanduser().resolve()) if args.data_root else None
    weights = args.weights
    if weights and Path(weights).expanduser().is_file():
        weights = str(Path(weights).expanduser().resolve())
    given = {"seeds": args.seeds, "world_seed": args.world_seed, "data_root": data_root,
             "weights": weights}
    return {k: v for k, v in given.items() if v is not None}


def _pool(args: argparse.Namespace) -> int:
    from .cache import CacheError
    from .claims import as_table
    from .pooling import pool
    from .report import agreement, compare_claims

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    overrides = {"seeds": args.seeds} if args.seeds else {}
    try:
        folder, verdicts = pool(args.profile, args.world_seeds, only=args.only, out=args.out,
                                notebooks_dir=args.notebooks, params_dir=args.params,
                                overrides=overrides)
    except (ValueError, CacheError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = compare_claims({label: as_table(found) for label, found in verdicts.items()})
    _print_columns(table.to_dict("records"))
    print(f"\n{agreement(table)}\nreport: {folder / 'index.html'}")
    return 0


def _print_columns(rows: Sequence[dict]) -> None:
    """`rows` (dicts with the same keys) as left-aligned columns under a header line."""
    if rows:
        cols = list(rows[0])
        widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
        for row in [dict(zip(cols, cols, strict=True)), *rows]:
            print("  ".join(str(row[c]).ljust(widths[c]) for c in cols).rstrip())


def _labelled(given: str) -> tuple[str, Path]:
    """LABEL=RUN -> (LABEL, RUN); a bare RUN, or a path that exists '=' and all, labels itself."""
    label, sep, path = given.partition("=")
    if not sep or Path(given).exists():
        return given, Path(given)
    return label, Path(path)


def _compare(args: argparse.Namespace) -> int:
    """Read every run before printing anything, so that a bad argument leaves no half table."""
    from .report import COMPARE_COLUMNS, agreement, compare_claims, markdown_table, read_claims

    if len(args.runs) < 2:
        print("error: compare needs at least two runs", file=sys.stderr)
        return 2
    runs = {}
    for given in args.runs:
        label, path = _labelled(given)
        if label in runs or label in COMPARE_COLUMNS:
            taken = "another run" if label in runs else "a column of the table"
            print(f"error: {given}: the label {label!r} names {taken}; name it LABEL=RUN",
                  file=sys.stderr)
            return 2
        try:
            runs[label] = read_claims(path)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {given}: {err}", file=sys.stderr)
            return 2
    try:
        table = compare_claims(runs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.markdown:
        print(markdown_table(table))
        return 0
    _print_columns(table.to_dict("records"))
    print(f"\n{agreement(table)}")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from .world import TASKS  # lazily: the world is heavy and not needed by `run`

    rows = [spec.as_dict() for spec in TASKS.values()]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    _print_columns(rows)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _run, "pool": _pool, "compare": _compare, "tasks": _tasks}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
