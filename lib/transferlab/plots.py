"""The paper's figures and tables, drawn from a results table (results.py schema).

Every function is pure: it reads the table, returns a new Figure (or a DataFrame / Styler)
and never calls `plt.show()`. Figures are `PaperFigure`s made outside pyplot, so there is
nothing to close, and a notebook shows each one once, as a PNG, when it is a cell's result
(pyplot figures would show twice: as the result and again at the end of the cell).

Conventions used everywhere: tasks are ordered by `distance_rank` and coloured by group, one
fixed colour per group (GROUP_COLORS); tasks of one group differ by shade and marker. Seeds
are averaged (see `summarize`). When a plot mixes the N-S score (0..4) with percent metrics,
N-S scores are drawn times 25 so they share the 0..100 axis, and the task's label says so.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import results
from .tasks import METRICS

__all__ = [
    "GROUP_ORDER",
    "GROUP_COLORS",
    "VIEWS",
    "metric_max",
    "PaperFigure",
    "new_figure",
    "select_metric",
    "summarize",
    "levels_of",
    "task_order",
    "task_styles",
    "best_levels",
    "spearman",
    "factor_figure",
    "level_bars",
    "table",
    "styled_table",
    "error_reduction",
    "optimized_bars",
    "best_level_figure",
]

GROUP_ORDER = (
    "source",
    "classification",
    "attributes",
    "fine-grained",
    "compositional",
    "retrieval",
)
GROUP_COLORS = {
    "source": "#7f7f7f",
    "classification": "#1f77b4",
    "attributes": "#2ca02c",
    "fine-grained": "#ff7f0e",
    "compositional": "#9467bd",
    "retrieval": "#d62728",
}
_SPARE_COLORS = ("#8c564b", "#e377c2", "#bcbd22", "#17becf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_LINESTYLES = ("-", "--", "-.", ":")
VIEWS = ("raw", "relative")
GAIN_COLOR = "#cc5500"  # the paper's burnt orange for the gain of the optimized setting
NS_SCALE = 25.0  # N-S score 0..4 -> 0..100 when it shares an axis with percent metrics
Z95 = 1.959964


# ----------------------------------------------------------------------------- table helpers


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


def group_color(group: str) -> str:
    if group in GROUP_COLORS:
        return GROUP_COLORS[group]
    return _SPARE_COLORS[sum(map(ord, group)) % len(_SPARE_COLORS)]  # stable across runs


def _shade(color: str, k: int, n: int) -> tuple[float, float, float]:
    """The k-th of n shades of a colour: from a little darker to a little lighter."""
    rgb = np.array(mcolors.to_rgb(color))
    t = 0.0 if n == 1 else -0.25 + 0.65 * k / (n - 1)
    mixed = rgb + (1 - rgb) * t if t > 0 else rgb * (1 + t)
    return tuple(float(c) for c in np.clip(mixed, 0, 1))


def task_styles(df: pd.DataFrame) -> dict[str, dict]:
    """Colour, marker and line style of every task of the table (pass the full table so a
    task keeps its style when a plot shows a subset)."""
    order = task_order(df)
    styles = {}
    for group, tasks in order.groupby("group", sort=False):
        names = list(tasks["task"])
        for k, task in enumerate(names):
            styles[task] = {
                "color": _shade(group_color(group), k, len(names)),
                "marker": _MARKERS[k % len(_MARKERS)],
                "linestyle": _LINESTYLES[k % len(_LINESTYLES)],
                "group": group,
            }
    return styles


def _display_scale(summary: pd.DataFrame) -> pd.Series:
    """Per-row factor so that N-S scores share a percent axis when metrics are mixed."""
    metrics = set(summary["metric"])
    if "ns_score" in metrics and len(metrics) > 1:
        return summary["metric"].map(lambda m: NS_SCALE if m == "ns_score" else 1.0)
    return pd.Series(1.0, index=summary.index)


def _task_label(task: str, metric: str, mixed: bool) -> str:
    return f"{task} (N-S x25)" if mixed and metric == "ns_score" else task


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


# ----------------------------------------------------------------------------- drawing helpers


class PaperFigure(Figure):
    """A Figure that shows itself as a PNG in any notebook, with or without the inline
    backend (plain `Figure()` objects only show as text unless pyplot loaded that backend)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue()


def new_figure(figsize: tuple[float, float]) -> PaperFigure:
    """A figure outside pyplot's registry (nothing to close, shown once in a notebook)."""
    return PaperFigure(figsize=figsize, layout="constrained")


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.subplots()


def _grouped_legend(ax: Axes, handles: dict[str, list[tuple[Line2D, str]]]) -> None:
    """One legend column per group, its name in bold on top (columns padded to equal length)."""
    if not handles:
        return
    height = max(len(v) for v in handles.values()) + 1
    hs, labels, header_at = [], [], []
    for group, entries in handles.items():
        header_at.append(len(labels))
        hs.append(Line2D([], [], linestyle="none"))
        labels.append(group)
        for h, lab in entries:
            hs.append(h)
            labels.append(lab)
        for _ in range(height - 1 - len(entries)):
            hs.append(Line2D([], [], linestyle="none"))
            labels.append("")
    leg = ax.legend(
        hs,
        labels,
        ncol=len(handles),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        fontsize=8,
        frameon=False,
        handlelength=2.5,
        columnspacing=1.2,
    )
    texts = leg.get_texts()
    for i, group in zip(header_at, handles, strict=True):
        texts[i].set_fontweight("bold")
        texts[i].set_color(group_color(group))


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _group_labels(ax: Axes, xs: np.ndarray, groups: Sequence[str]) -> None:
    """Group names above the axes, centred on their tasks, with thin separators between."""
    groups = list(groups)
    start = 0
    for i in range(1, len(groups) + 1):
        if i == len(groups) or groups[i] != groups[start]:
            centre = (xs[start] + xs[i - 1]) / 2
            ax.text(
                centre,
                1.01,
                groups[start],
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                fontweight="bold",
                color=group_color(groups[start]),
            )
            if i < len(groups):
                ax.axvline((xs[i - 1] + xs[i]) / 2, color="0.8", lw=0.8, zorder=0)
            start = i


def _bar_positions(groups: Sequence[str], gap: float = 0.6) -> np.ndarray:
    """x positions of bars with a gap between groups."""
    xs, x = [], 0.0
    for i, g in enumerate(groups):
        if i and g != groups[i - 1]:
            x += gap
        xs.append(x)
        x += 1.0
    return np.array(xs)


def _ylabel(view: str, summary: pd.DataFrame) -> str:
    if view == "relative":
        return "score / best level's score"
    metrics = set(summary["metric"])
    if metrics == {"ns_score"}:
        return "N-S score (0-4)"
    return "score (%; N-S x25)" if "ns_score" in metrics else "score (%)"


# ----------------------------------------------------------------------------- figures


def factor_figure(
    df: pd.DataFrame,
    factor: str,
    view: str = "raw",
    tasks: Sequence[str] | None = None,
    metric: str | None = None,
    ax: Axes | None = None,
    highlight: str | None = None,
) -> Figure:
    """Figures 3-8 of the paper: one line per task across the factor's levels.

    `view="raw"`: scores with 95% bands; `"relative"`: each score over its task's best level.
    `tasks` restricts the lines (styles stay those of the full table); `highlight` shades one
    level. Draws into `ax` when given, and returns its figure.
    """
    summary = summarize(df, factor, metric=metric, tasks=tasks, view=view)
    levels = levels_of(df, factor)
    fig, ax = _new_axes(ax, (9, 6))
    if summary.empty:
        _empty(ax, "no tasks selected")
        return fig
    styles = task_styles(df[df["factor"] == factor])
    pos = {lvl: i for i, lvl in enumerate(levels)}
    scale = _display_scale(summary) if view == "raw" else pd.Series(1.0, index=summary.index)
    mixed = view == "raw" and bool((scale != 1.0).any())
    handles: dict[str, list] = {}
    for task, sub in summary.groupby("task", sort=False):
        st, s = styles[task], scale[sub.index]
        x = sub["level"].astype(str).map(pos).to_numpy(float)
        (line,) = ax.plot(
            x,
            sub["score"] * s,
            color=st["color"],
            marker=st["marker"],
            ls=st["linestyle"],
            lw=1.6,
            ms=5,
            label=task,
        )
        lo, hi = (sub["ci_low"] * s).to_numpy(float), (sub["ci_high"] * s).to_numpy(float)
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=st["color"], alpha=0.12, lw=0)
        label = _task_label(task, sub["metric"].iloc[0], mixed)
        handles.setdefault(st["group"], []).append((line, label))
    ax.set_xticks(range(len(levels)), levels)
    ax.set_xlim(-0.3, len(levels) - 0.7)
    if highlight is not None:
        _highlight(ax, levels, highlight)
    ax.set_xlabel(factor)
    ax.set_ylabel(_ylabel(view, summary))
    ax.set_title(f"{factor} ({view})")
    ax.grid(axis="y", alpha=0.3)
    ordered = dict(sorted(handles.items(), key=lambda kv: _group_key(kv[0])))
    _grouped_legend(ax, ordered)
    return fig


def _highlight(ax: Axes, levels: list[str], level: str) -> None:
    if level not in levels:
        raise ValueError(f"highlight={level!r} is not a level of this factor; valid: {levels}")
    i = levels.index(level)
    ax.axvspan(i - 0.35, i + 0.35, color="0.88", zorder=0)
    ax.get_xticklabels()[i].set_fontweight("bold")


def level_bars(
    df: pd.DataFrame,
    factor: str,
    level: str,
    view: str = "raw",
    tasks: Sequence[str] | None = None,
    metric: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Every task's score at one level of the factor, as bars coloured by group (with 95%
    error bars), tasks ordered by distance."""
    levels = levels_of(df, factor)
    if str(level) not in levels:
        raise ValueError(f"level={level!r} is not a level of factor {factor!r}; valid: {levels}")
    summary = summarize(df, factor, metric=metric, tasks=tasks, view=view)
    fig, ax = _new_axes(ax, (9, 4.5))
    at = summary[summary["level"].astype(str) == str(level)].reset_index(drop=True)
    if at.empty:
        _empty(ax, f"no scores at {factor}={level}")
        return fig
    styles = task_styles(df[df["factor"] == factor])
    scale = _display_scale(at) if view == "raw" else pd.Series(1.0, index=at.index)
    mixed = view == "raw" and bool((scale != 1.0).any())
    xs = _bar_positions(list(at["group"]))
    y = at["score"] * scale
    lo, hi = at["ci_low"] * scale, at["ci_high"] * scale
    err = np.vstack([(y - lo).clip(lower=0), (hi - y).clip(lower=0)])
    ax.bar(xs, y, color=[styles[t]["color"] for t in at["task"]], width=0.8)
    if np.isfinite(err).any():
        ax.errorbar(xs, y, yerr=np.nan_to_num(err), fmt="none", ecolor="0.2", lw=1, capsize=2)
    labels = [_task_label(t, m, mixed) for t, m in zip(at["task"], at["metric"], strict=True)]
    ax.set_xticks(xs, labels, rotation=60, ha="right", fontsize=8)
    _group_labels(ax, xs, list(at["group"]))
    ax.set_ylabel(_ylabel(view, at))
    ax.set_title(f"{factor} = {level} ({view})", pad=16)
    ax.grid(axis="y", alpha=0.3)
    return fig


def best_level_figure(
    df: pd.DataFrame, factor: str, metric: str | None = None, ax: Axes | None = None
) -> Figure:
    """The best level of the factor per task against the task's distance rank.

    Filled markers: the best level; hollow markers: levels within the best level's 95%
    interval (ties). The title gives the Spearman correlation of distance and best level.
    """
    summary = summarize(df, factor, metric=metric)
    levels = levels_of(df, factor)
    fig, ax = _new_axes(ax, (9, 4.5))
    best = best_levels(summary)
    if best.empty:
        _empty(ax, f"no scores for {factor}")
        return fig
    index_of = {i: k for k, i in enumerate(sorted(summary["level_index"].unique()))}
    pos = {lvl: k for k, lvl in enumerate(levels)}
    for _, row in best.iterrows():
        c = group_color(row["group"])
        tied = [index_of[i] for i in row["tied_level_indices"]]
        ax.scatter(
            [row["distance_rank"]] * len(tied),
            tied,
            s=40,
            facecolors="none",
            edgecolors=c,
            lw=1,
            zorder=2,
        )
        ax.scatter(row["distance_rank"], pos[str(row["best_level"])], s=70, color=c, zorder=3)
    rho = spearman(best["distance_rank"], best["best_level_index"])
    ax.set_yticks(range(len(levels)), levels)
    ax.set_ylim(-0.5, len(levels) - 0.5)
    xs = best["distance_rank"].to_numpy(float)
    ax.set_xticks(xs, best["task"], rotation=60, ha="right", fontsize=8)
    for tick, g in zip(ax.get_xticklabels(), best["group"], strict=True):
        tick.set_color(group_color(g))
    ax.set_xlabel("tasks by distance from the source")
    ax.set_ylabel(f"best {factor}")
    ax.set_title(f"best {factor} per task (Spearman rho(distance, best) = {rho:+.2f})")
    ax.grid(alpha=0.3)
    handles = [Patch(color=group_color(g), label=g) for g in dict.fromkeys(best["group"])]
    handles.append(Line2D([], [], marker="o", ls="none", mfc="none", mec="0.3", label="tied (95%)"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    return fig


# ----------------------------------------------------------------------------- tables


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


def styled_table(df: pd.DataFrame, factor: str, metric: str | None = None, precision: int = 1):
    """`table(df, factor)` as a pandas Styler with each column's best value in bold."""
    tab = table(df, factor, metric=metric)
    mask = best_mask(tab)
    return tab.style.format(precision=precision, na_rep="-").apply(
        lambda col: np.where(mask[col.name], "font-weight: bold", ""), axis=0
    )


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


def optimized_bars(std: pd.DataFrame, opt: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Figure 2 of the paper: per task, the standard score (bar in the task's group colour)
    with the gain of the optimized setting stacked on top (burnt orange; a loss is drawn
    hatched grey), the relative error reduction written above. N-S scores are drawn x25."""
    er = error_reduction(std, opt)
    fig, ax = _new_axes(ax, (10, 4.5))
    scale = er["metric"].map(lambda m: NS_SCALE if m == "ns_score" else 1.0)
    s, o = er["standard"] * scale, er["optimized"] * scale
    xs = _bar_positions(list(er["group"]))
    base = np.minimum(s, o)
    ax.bar(xs, base, color=[group_color(g) for g in er["group"]], width=0.8, alpha=0.6)
    gain, loss = (o - s).clip(lower=0), (s - o).clip(lower=0)
    ax.bar(xs, gain, bottom=base, color=GAIN_COLOR, width=0.8)
    if (loss > 0).any():
        ax.bar(xs, loss, bottom=base, color="none", edgecolor="0.4", hatch="///", width=0.8)
    for x, top, red in zip(xs, np.maximum(s, o), er["error_reduction"], strict=True):
        if np.isfinite(red):
            ax.text(x, top + 1, f"{100 * red:.0f}%", ha="center", va="bottom", fontsize=7)
    labels = [_task_label(t, m, True) for t, m in zip(er["task"], er["metric"], strict=True)]
    ax.set_xticks(xs, labels, rotation=60, ha="right", fontsize=8)
    _group_labels(ax, xs, list(er["group"]))
    ax.set_ylim(0, 125)
    ax.set_ylabel("score (%)")
    ax.set_title("standard vs optimized (labels: relative error reduction)", pad=16)
    handles = [
        Patch(color="0.6", alpha=0.6, label="standard (group colour)"),
        Patch(color=GAIN_COLOR, label="gain of optimized"),
    ]
    if (loss > 0).any():
        handles.append(
            Patch(facecolor="none", edgecolor="0.4", hatch="///", label="loss of optimized")
        )
    ax.legend(handles=handles, fontsize=8, loc="upper left", ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return fig
