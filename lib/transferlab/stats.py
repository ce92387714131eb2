"""Table statistics of a results table: per-level summaries, task order, rank correlation,
best levels, the paper's tables and Table 6's error reduction. Pure pandas / numpy: the
claims (transferlab.claims) and the drawing (transferlab.plots) both build on these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import results
from .tasks import METRICS

VIEWS = ("raw", "relative")  # a score as measured, or relative to the task's best level
GROUP_ORDER = (
    "source",
    "classification",
    "attributes",
    "fine-grained",
    "compositional",
    "retrieval",
)
NS_SCALE = 25.0  # N-S score 0..4 -> 0..100 when it shares an axis with percent metrics
Z95 = 1.959964


def metric_max(metric: str) -> float:
    """The best possible score of a metric: 4 for the N-S score, 100 for percent metrics."""
    return 4.0 if metric == "ns_score" else 100.0


def _check_factor(df: pd.DataFrame, factor: str) -> pd.DataFrame:
    results.validate(df.head(0))  # names the missing columns if the table is not a results table
    present = sorted(df["factor"].unique())
    if factor not in present:
        raise ValueError(f"factor={factor!r} is not in the results table; present: {present}")
    return df[df["factor"] == factor]


def _primary_metrics(df: pd.DataFrame) -> dict[str, str]:
    """Each task's main metric: the first of tasks.METRICS it has, else its first alphabetically."""
    rank = {m: i for i, m in enumerate(METRICS)}
    out = {}
    for task, metrics in df.groupby("task")["metric"].unique().items():
        out[task] = sorted(metrics, key=lambda m: (rank.get(m, len(rank)), m))[0]
    return out


def select_metric(df: pd.DataFrame, metric: str | None) -> pd.DataFrame:
    """The rows of one metric, or of each task's primary metric when `metric` is None."""
    if metric is None:
        primary = _primary_metrics(df)
        return df[df["metric"] == df["task"].map(primary)]
    present = sorted(df["metric"].unique())
    if metric not in present:
        raise ValueError(f"metric={metric!r} is not in the results table; present: {present}")
    return df[df["metric"] == metric]


def _select_tasks(df: pd.DataFrame, tasks: Sequence[str] | None) -> pd.DataFrame:
    if tasks is None:
        return df
    if isinstance(tasks, str):
        tasks = [tasks]
    valid = set(df["task"])
    unknown = [t for t in tasks if t not in valid]
    if unknown:
        raise ValueError(f"tasks={unknown} are not in the results table; valid: {sorted(valid)}")
    return df[df["task"].isin(list(tasks))]


def levels_of(df: pd.DataFrame, factor: str) -> list[str]:
    """The factor's level names, ordered by level_index."""
    sub = _check_factor(df, factor)
    pairs = sub[["level_index", "level"]].drop_duplicates()
    clash = pairs[pairs.duplicated("level_index", keep=False)]
    if not clash.empty:
        raise ValueError(
            f"factor={factor!r}: level_index {sorted(set(clash['level_index']))} names several "
            f"levels {sorted(set(clash['level']))}; each level needs its own index"
        )
    return list(pairs.sort_values("level_index")["level"].astype(str))


def _aggregate_seeds(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over seeds, with a 95% interval that keeps both sources of noise.

    One seed: the row's own bootstrap interval. Several seeds: mean +- sqrt((1.96 sd)^2 / n +
    hw^2), hw the mean bootstrap half-width. The test-set term is not divided by n because the
    seeds are usually scored on the same test images, so that noise does not average out.
    """
    g = df.groupby(keys, sort=False, dropna=False)
    out = g.agg(
        score=("score", "mean"),
        seed_sd=("score", "std"),
        n_seeds=("seed", "nunique"),
        n_rows=("seed", "size"),
        ci_low=("ci_low", "mean"),
        ci_high=("ci_high", "mean"),
        cv_score=("cv_score", "mean"),
    ).reset_index()
    dup = out[out["n_rows"] > out["n_seeds"]]
    if not dup.empty:
        first = dup.iloc[0]
        raise ValueError(
            f"several rows for one (level, task, seed, metric), e.g. level={first['level']!r} "
            f"task={first['task']!r}: they differ in another column (representation?); filter "
            "the table to one row per seed first"
        )
    hw = ((out["ci_high"] - out["ci_low"]) / 2).fillna(0.0)
    multi = out["n_seeds"] > 1
    half = np.sqrt((Z95 * out["seed_sd"].fillna(0.0)) ** 2 / out["n_seeds"] + hw**2)
    out.loc[multi, "ci_low"] = out.loc[multi, "score"] - half[multi]
    out.loc[multi, "ci_high"] = out.loc[multi, "score"] + half[multi]
    return out.drop(columns="n_rows")


def summarize(
    df: pd.DataFrame,
    factor: str,
    metric: str | None = None,
    tasks: Sequence[str] | None = None,
    view: str = "raw",
) -> pd.DataFrame:
    """One row per (level, task): mean over seeds of the task's metric, with a 95% interval.

    `metric=None` takes each task's primary metric. `view="relative"` divides each seed's
    scores (and intervals) by that seed's best level first (results.relative_to_best).
    Columns: level, level_index, task, group, distance_rank, metric, score, ci_low, ci_high,
    cv_score, seed_sd, n_seeds; sorted by distance_rank then level_index.
    """
    if view not in VIEWS:
        raise ValueError(f"view={view!r} is not one of {VIEWS}")
    sub = _select_tasks(select_metric(_check_factor(df, factor), metric), tasks)
    levels_of(sub if not sub.empty else df, factor)  # fails early on clashing level indices
    if view == "relative" and not sub.empty:
        rel = results.relative_to_best(sub)
        scale = rel["relative"] / rel["score"].replace(0, np.nan)
        sub = rel.assign(
            score=rel["relative"], ci_low=rel["ci_low"] * scale, ci_high=rel["ci_high"] * scale
        )
    keys = ["level", "level_index", "task", "group", "distance_rank", "metric"]
    if sub.empty:
        cols = keys + ["score", "seed_sd", "n_seeds", "ci_low", "ci_high", "cv_score"]
        return pd.DataFrame(columns=cols)
    out = _aggregate_seeds(sub, keys)
    return out.sort_values(["distance_rank", "level_index"]).reset_index(drop=True)


def _group_key(group: str) -> tuple[int, str]:
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), group)


def task_order(df: pd.DataFrame) -> pd.DataFrame:
    """Tasks (task, group, distance_rank), nearest first; ties broken by group order then name."""
    tasks = df[["task", "group", "distance_rank"]].drop_duplicates("task")
    key = tasks["group"].map(lambda g: _group_key(g)[0])
    tasks = tasks.assign(_g=key).sort_values(["distance_rank", "_g", "task"])
    return tasks.drop(columns="_g").reset_index(drop=True)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    rx = pd.Series(x[ok]).rank().to_numpy()
    ry = pd.Series(y[ok]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def group_rows(groups: Sequence[str]) -> list[np.ndarray]:
    """The row indices of each group, groups in order of first appearance."""
    groups = np.asarray(groups)
    return [np.flatnonzero(groups == g) for g in dict.fromkeys(groups.tolist())]


def resample_within(members: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One bootstrap draw of rows: each group's rows drawn with replacement, its size kept."""
    return np.concatenate([rng.choice(m, len(m)) for m in members])


def spearman_interval(x: np.ndarray, y: np.ndarray, groups: Sequence[str], n_boot: int = 2000,
                      seed: int = 0, y_replicates: np.ndarray | None = None
                      ) -> tuple[float, float]:
    """95 % percentile interval of `spearman(x, y)` over replicates that resample tasks (the
    rows) with replacement within each of `groups`, so every replicate keeps each distance
    group's share of tasks. With `y_replicates` (rows x R: y on each bootstrap replicate of
    the test images), replicate b also reads column b, so the test images are resampled too
    (R replicates). NaN where no group has two tasks and no test images are resampled."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    members = group_rows(groups)
    if y_replicates is not None:
        y_replicates = np.asarray(y_replicates, float)
        n_boot = y_replicates.shape[1]
    elif all(len(m) < 2 for m in members):
        return float("nan"), float("nan")
    reps = []
    for b in range(n_boot):
        rows = resample_within(members, rng)
        yb = y if y_replicates is None else y_replicates[:, b]
        reps.append(spearman(x[rows], yb[rows]))
    reps = np.asarray(reps)
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        return float("nan"), float("nan")
    return float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))


def best_levels(summary: pd.DataFrame) -> pd.DataFrame:
    """Per task: the best level (highest mean score) and the levels whose score is within the
    best level's 95% interval (statistically tied). Ordered by distance."""
    rows = []
    for task, sub in summary.dropna(subset=["score"]).groupby("task", sort=False):
        best = sub.loc[sub["score"].idxmax()]
        floor = best["ci_low"] if np.isfinite(best["ci_low"]) else best["score"]
        tied = sub[sub["score"] >= floor]
        rows.append(
            {
                "task": task,
                "group": best["group"],
                "distance_rank": best["distance_rank"],
                "best_level": best["level"],
                "best_level_index": int(best["level_index"]),
                "best_score": best["score"],
                "tied_level_indices": tuple(int(i) for i in tied["level_index"]),
            }
        )
    if not rows:
        cols = ["task", "group", "distance_rank", "best_level", "best_level_index", "best_score"]
        return pd.DataFrame(columns=cols + ["tied_level_indices"])
    return pd.DataFrame(rows).sort_values("distance_rank").reset_index(drop=True)


def table(df: pd.DataFrame, factor: str, metric: str | None = None) -> pd.DataFrame:
    """Tables 3/4 of the paper: rows are the factor's levels (by level_index), columns the
    tasks ordered by distance under a (group, task) MultiIndex; values are seed means in each
    metric's own unit."""
    summary = summarize(df, factor, metric=metric)
    levels = levels_of(df, factor)
    if summary.empty:
        return pd.DataFrame(index=pd.Index(levels, name=factor))
    order = task_order(summary)
    wide = summary.pivot_table(index="level", columns="task", values="score", aggfunc="first")
    wide = wide.reindex(index=[lvl for lvl in levels if lvl in wide.index], columns=order["task"])
    wide.columns = pd.MultiIndex.from_arrays(
        [order["group"], order["task"]], names=["group", "task"]
    )
    wide.index.name = factor
    return wide


def best_mask(tab: pd.DataFrame) -> pd.DataFrame:
    """True where a cell is its column's best (ties all True)."""
    return tab.eq(tab.max(axis=0), axis=1) & tab.notna()


def _per_task(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Seed mean of each task's primary metric (any factor/level: the table holds one setting)."""
    df = results.validate(df)
    if df.empty:
        raise ValueError(f"{name} is an empty results table")
    sub = select_metric(df, None)
    keys = ["task", "group", "distance_rank", "metric"]
    counts = sub.groupby(keys + ["seed"]).size()
    if (counts > 1).any():
        task = counts[counts > 1].index[0][0]
        raise ValueError(
            f"{name} holds several settings for task {task!r}: pass one row per task and seed"
        )
    return sub.groupby(keys, sort=False)["score"].mean().reset_index()


def error_reduction(std: pd.DataFrame, opt: pd.DataFrame) -> pd.DataFrame:
    """Table 6's relative error reduction per task: (err_std - err_opt) / err_std, with err =
    100 - score for percent metrics and 4 - score for the N-S score.

    `std` and `opt` are results tables holding one setting each (seeds are averaged). Columns:
    task, group, distance_rank, metric, standard, optimized, err_standard, err_optimized,
    error_reduction; tasks in both tables only, nearest first.
    """
    s, o = _per_task(std, "std"), _per_task(opt, "opt")
    both = s.merge(o[["task", "metric", "score"]], on=["task", "metric"], suffixes=("_s", "_o"))
    if both.empty:
        raise ValueError(
            f"std and opt share no (task, metric): std has {sorted(s['task'])}, "
            f"opt has {sorted(o['task'])}"
        )
    top = both["metric"].map(metric_max)
    out = both.rename(columns={"score_s": "standard", "score_o": "optimized"})
    out["err_standard"] = top - out["standard"]
    out["err_optimized"] = top - out["optimized"]
    out["error_reduction"] = (out["err_standard"] - out["err_optimized"]) / out[
        "err_standard"
    ].where(out["err_standard"] > 0)
    return out.sort_values("distance_rank").reset_index(drop=True)
