"""Fills README.md's results section from a finished batch run (default: reports/quick).

    python tools/update_readme.py [reports/quick]

Writes the verdict of every claim (from claims.csv), the run's date and wall time (from each
notebook's status.json) and copies one headline figure to docs/, so the README shows numbers
that came from a run, never typed by hand.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
FIGURE = "05_layer"


def section(run: Path) -> str:
    claims = pd.read_csv(run / "claims.csv")
    status = [json.loads(p.read_text()) for p in sorted(run.glob("*/status.json"))]
    minutes = sum(s["seconds"] for s in status) / 60
    failed = [s["name"] for s in status if s["status"] != "ok"]
    counts = claims.verdict.value_counts()
    lines = [
        f"From the last `{run.name}` run ({max(s['finished'] for s in status)[:10]}, "
        f"{len(status)} notebooks, {minutes:.0f} min of notebook time in this run; cold and warm "
        "timings are in BENCHMARKS.md"
        + (f"; failed: {', '.join(failed)}" if failed else "") + "): "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("reproduced", "not reproduced", "inconclusive"))
        + ". Each verdict weighs the statistic against its 95% bootstrap interval (over tasks, "
        "seeds and test images); the evidence column gives the numbers.",
        "",
        "| notebook | claim | verdict | evidence |",
        "|---|---|---|---|",
    ]
    for row in claims.itertuples():
        evidence = str(row.evidence).replace("|", "/").replace("\n", " ")
        lines.append(f"| {row.notebook} | {row.claim} | **{row.verdict}** | {evidence} |")
    fig = run / FIGURE / "headline.png"
    if fig.exists():
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(fig, ROOT / "docs" / f"{run.name}_{FIGURE}.png")
        lines += ["", f"![Figure 6 on the embedded world ({run.name} profile)]"
                      f"(docs/{run.name}_{FIGURE}.png)"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    run = Path(argv[0]) if argv else ROOT / "reports" / "quick"
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START)
    _, tail = rest.split(END)
    readme.write_text(f"{head}{START}\n{section(run)}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
