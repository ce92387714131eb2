"""Fills README.md's results section from a finished batch run (default: reports/quick).

    python tools/update_readme.py [reports/quick] [--commit REV] [--params DIR]

(--commit: the commit the run was made from, when it is not HEAD, e.g. a frozen worktree;
--params: the parameter folder the run was given, if not the profile's own, so that the
README names every parameter the run set apart from the profile's.)

Writes the verdict of every claim (from claims.csv), the run's date and wall time (from each
notebook's status.json) and copies one headline figure to docs/, so the README shows numbers
that came from a run, never typed by hand.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from transferlab import params as params_mod
from transferlab.compute import cpu_model
from transferlab.report import claim_label, claim_statistic, read_claims

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
FIGURE = "05_layer"


def commit() -> str:
    import subprocess

    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def parameter_changes(profile: str, notebooks: Iterable[str], params_dir: Path) -> list[str]:
    """`notebook name=value` for each parameter that `params_dir` sets apart from the
    profile's own parameter files (`params/<profile>`), over `notebooks`."""
    changes = []
    for name in notebooks:
        given, own = (asdict(params_mod.validate(name, params_mod.load_params(profile, name, d)))
                      for d in (params_dir, None))
        changes += [f"{name} {k}={_shown(given[k])}" for k in given if given[k] != own[k]]
    return changes


def _shown(value: object) -> str:
    """A value as a parameter file writes it: a list as [a, b]."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def section(run: Path, rev: str | None = None, params_dir: Path | None = None) -> str:
    claims = read_claims(run)
    status = [json.loads(p.read_text()) for p in sorted(run.glob("*/status.json"))]
    minutes = sum(s["seconds"] for s in status) / 60
    failed = [s["name"] for s in status if s["status"] != "ok"]
    given = "" if params_dir is None else f"; run with `--params {params_dir}`: " + (
        ", ".join(parameter_changes(run.name, [s["name"] for s in status], params_dir))
        or "the same values")
    paper = claims[claims["paper_claim"] != ""]
    counts = paper.verdict.value_counts()
    lines = [
        f"From the last `{run.name}` run ({max(s['finished'] for s in status)[:10]}, commit "
        f"`{rev or commit()}`, {cpu_model()}, {len(status)} notebooks, {minutes:.0f} min of notebook "
        "time; cold and warm timings are in BENCHMARKS.md"
        + (f"; failed: {', '.join(failed)}" if failed else "") + given + "). The paper's nine claims: "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("reproduced", "not reproduced", "inconclusive"))
        + ". Each statistic is fixed in `transferlab.claims`; its 95% interval comes from a "
        "paired bootstrap (the same test images across a task's levels, tasks resampled within "
        "groups, seeds resampled); the evidence gives every statistic of a claim.",
        "",
        "| paper claim | claim | verdict | statistic [95% CI] | evidence |",
        "|---|---|---|---|---|",
    ]
    for row in claims.itertuples():
        evidence = str(row.evidence).replace("|", "/").replace("\n", " ")
        lines.append(f"| {claim_label(row)} | {row.claim} | **{row.verdict}** "
                     f"| {claim_statistic(row)} | {evidence} |")
    fig = run / FIGURE / "headline.png"
    if fig.exists():
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(fig, ROOT / "docs" / f"{run.name}_{FIGURE}.png")
        lines += ["", f"![Figure 6 on the embedded world ({run.name} profile)]"
                      f"(docs/{run.name}_{FIGURE}.png)"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, default=ROOT / "reports" / "quick")
    parser.add_argument("--commit", help="the commit the run was made from (default: HEAD)")
    parser.add_argument("--params", type=Path,
                        help="the run's parameter folder, if not the profile's own")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START)
    _, tail = rest.split(END)
    readme.write_text(f"{head}{START}\n{section(args.run, args.commit, args.params)}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
