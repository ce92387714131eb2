"""How well the plan's cost estimates (transferlab.plan) match what a cold run measured.

    python tools/calibrate_plan.py RUN.log -- --profile quick [the run's other arguments]

RUN.log is the $TRANSFERLAB_CACHE_LOG of a cold run (`kind key pid seconds peak_mib`, one
line per computed entry); the arguments after `--` are that run's, from which the plan is
built again (nothing is computed). Per plan kind: units, estimated and measured core-minutes
and their ratio. Units are matched to log lines by cache key where the plan knows the key
(world, network, score, search; a search's seconds include the features and scores it
computed inside); features and fine-tunes by kind, so their measured side also counts the
entries computed inside a search or a fine-tune's choice of rate. Prints a markdown table:
the ratios are what the plan's constants are calibrated by.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path

from transferlab.__main__ import _overrides, _parser
from transferlab.plan import KINDS, Plan
from transferlab.runner import plan, study_plan

LOG_KIND = {"world": "world", "network": "network", "finetune": "finetune",
            "features": "features", "scores": "score", "search": "search"}


def read_log(path: Path) -> dict[str, list[tuple[str, float]]]:
    """Plan kind -> (cache key, seconds) of every logged entry of that kind."""
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        kind, key, _pid, seconds, *_ = line.split()
        if kind in LOG_KIND:
            out[LOG_KIND[kind]].append((key, float(seconds)))
    return out


def compare(units: Plan, logged: dict[str, list[tuple[str, float]]]) -> list[dict]:
    """One row per kind: estimated and measured seconds, matched as the module says."""
    rows = []
    for kind in KINDS:
        of_kind = [u for u in units.units.values() if u.kind == kind]
        if not of_kind:
            continue
        seconds = dict(logged.get(kind, []))
        if all(u.key for u in of_kind):
            matched = [u for u in of_kind if u.key in seconds]
            est = sum(u.cost_s for u in matched)
            meas = sum(seconds[u.key] for u in matched)
            ratios = [seconds[u.key] / u.cost_s for u in matched if u.cost_s > 0]
            how = f"by key, {len(matched)} of {len(of_kind)}"
        else:
            est = sum(u.cost_s for u in of_kind)
            meas = sum(seconds.values())
            ratios = []
            how = f"by kind, {len(logged.get(kind, []))} log entries"
        rows.append({"kind": kind, "units": len(of_kind), "matched": how,
                     "est_min": est / 60, "meas_min": meas / 60,
                     "ratio": meas / est if est else float("nan"),
                     "spread": (min(ratios), statistics.median(ratios), max(ratios))
                     if ratios else None})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| kind | units | matched | estimated core-min | measured core-min "
             "| measured / estimated | per unit: min / median / max |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = "-" if r["spread"] is None else " / ".join(f"{x:.2f}" for x in r["spread"])
        lines.append(f"| {r['kind']} | {r['units']} | {r['matched']} | {r['est_min']:.1f} "
                     f"| {r['meas_min']:.1f} | {r['ratio']:.2f} | {spread} |")
    est, meas = sum(r["est_min"] for r in rows), sum(r["meas_min"] for r in rows)
    lines.append(f"| total | | | {est:.1f} | {meas:.1f} | {meas / est:.2f} | |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    log, run_args = Path(argv[0]), argv[2:]
    args = _parser().parse_args(["run", *run_args])
    jobs = plan(args.profile, args.only, args.out, args.notebooks, args.params, _overrides(args))
    print(table(compare(study_plan(jobs), read_log(log))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
