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
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .stats import (
    GROUP_ORDER,
    NS_SCALE,
    VIEWS,
    _group_key,
    best_levels,
    best_mask,
    error_reduction,
    levels_of,
    metric_max,
    select_metric,
    spearman,
    summarize,
    table,
    task_order,
)

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
    "claims_forest",
    "uncertainty_figure",
]

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
GAIN_COLOR = "#cc5500"  # the paper's burnt orange for the gain of the optimized setting


# ----------------------------------------------------------------------------- styles


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
    into: Figure | SubFigure | None = None,
    highlight: str | None = None,
    published: pd.DataFrame | None = None,
) -> Figure:
    """Figures 3-8 of the paper: one panel per task group (Table 2's groups, left to right,
    top to bottom), one line per task across the factor's levels, tasks in distance order.

    `view="raw"`: scores with 95% bands, each panel on its own scale; `"relative"`: each score
    over its task's best level, bands clipped to the panel (a low-scoring task's ratio is
    noisy, and its band must not hide the other lines). `tasks` restricts the lines (styles
    stay those of the full table); `highlight` shades one level; `published` (task x level,
    e.g. `paper.for_factor`) adds the paper's numbers for each task's analog as hollow
    diamonds on dotted lines. Draws into `into` (a figure or subfigure) when given.
    """
    summary = summarize(df, factor, metric=metric, tasks=tasks, view=view)
    levels = levels_of(df, factor)
    if highlight is not None and highlight not in levels:
        raise ValueError(f"highlight={highlight!r} is not a level of this factor; valid: {levels}")
    groups = sorted(dict.fromkeys(summary["group"]), key=_group_key)
    fig = into if into is not None else new_figure(_panels_size(len(groups)))
    if summary.empty:
        _empty(fig.subplots(), "no tasks selected")
        return fig.figure
    styles = task_styles(df[df["factor"] == factor])
    axes = _panel_axes(fig, len(groups))
    # one scale for the whole figure, so every panel agrees with the title's unit
    scale = _display_scale(summary) if view == "raw" else pd.Series(1.0, index=summary.index)
    for ax, group in zip(axes, groups, strict=False):
        sub = summary[summary["group"] == group]
        _group_panel(ax, sub, scale[sub.index], levels, styles, view,
                     _published_rows(published, sub, view))
        if highlight is not None:
            _highlight(ax, levels, highlight)
    for ax in axes[len(groups):]:
        _how_to_read(ax, view, published is not None)
    fig.suptitle(f"{factor} ({view}): {_ylabel(view, summary)}", fontsize=11)
    return fig.figure


def _panels_size(n: int) -> tuple[float, float]:
    cols, rows = _grid_shape(n)
    return (4.3 * cols, 3.3 * rows + 0.4)


def _grid_shape(n: int) -> tuple[int, int]:
    """Columns and rows of n panels: one row up to three, else rows of three."""
    cols = max(1, min(n, 3))
    return cols, -(-max(n, 1) // cols)


def _panel_axes(fig: Figure | SubFigure, n: int) -> list[Axes]:
    cols, rows = _grid_shape(n)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    return list(axes)


def _group_panel(
    ax: Axes,
    sub: pd.DataFrame,
    scale: pd.Series,
    levels: list[str],
    styles: dict[str, dict],
    view: str,
    published: pd.DataFrame | None,
) -> None:
    """One group's tasks: a line with its band per task, the paper's analog beside it."""
    group = sub["group"].iloc[0]
    mixed = bool((scale != 1.0).any())
    pos = {lvl: i for i, lvl in enumerate(levels)}
    lo_lim, hi_lim = _panel_limits(sub, scale, view, published)
    n = sub["task"].nunique()
    for j, (task, rows) in enumerate(sub.groupby("task", sort=False)):
        st, k = styles[task], scale[rows.index]
        x = rows["level"].astype(str).map(pos).to_numpy(float)
        label = _task_label(task, rows["metric"].iloc[0], mixed)
        y = (rows["score"] * k).to_numpy(float)
        ax.plot(x, y, color=st["color"], marker=st["marker"], ls=st["linestyle"],
                lw=1.6, ms=5, label=label)
        lo = np.clip((rows["ci_low"] * k).to_numpy(float), lo_lim, hi_lim)
        hi = np.clip((rows["ci_high"] * k).to_numpy(float), lo_lim, hi_lim)
        if np.isfinite(lo).any():
            _interval(ax, x, y, (lo, hi), view, st["color"], dx=0.08 * (j - (n - 1) / 2))
        if published is not None and task in published.index:
            _published_line(ax, published.loc[task], pos, st, float(k.iloc[0]))
    ax.set_ylim(lo_lim, hi_lim)
    ax.set_xticks(range(len(levels)), levels, fontsize=8,
                  rotation=45 if max(map(len, levels)) > 4 else 0)
    ax.set_xlim(-0.3, len(levels) - 0.7)
    ax.set_title(group, color=group_color(group), fontweight="bold", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)


def _interval(ax: Axes, x: np.ndarray, y: np.ndarray, band: tuple[np.ndarray, np.ndarray],
              view: str, color, dx: float) -> None:
    """Raw: a band. Relative: thin dodged bars, because a low-scoring task's ratio is noisy
    and its band would paint over every other line of the panel."""
    lo, hi = band
    if view == "raw":
        ax.fill_between(x, lo, hi, color=color, alpha=0.12, lw=0)
        return
    err = np.nan_to_num(np.vstack([y - lo, hi - y]).clip(0))
    ax.errorbar(x + dx, y, yerr=err, fmt="none", ecolor=color, elinewidth=1, capsize=2, alpha=0.7)


def _panel_limits(sub: pd.DataFrame, scale: pd.Series, view: str,
                  published: pd.DataFrame | None) -> tuple[float, float]:
    """y range of a panel: the lines and the paper's numbers with a margin. Raw: the bands
    too, within the metric's range. Relative: up to a little above 1 (intervals clipped)."""
    y = (sub["score"] * scale).to_numpy(float)
    if published is not None and not published.empty:
        k = scale.groupby(sub["task"]).first().reindex(published.index).fillna(1.0)
        y = np.r_[y, published.mul(k, axis=0).to_numpy(float).ravel()]
    if view == "relative":
        low = float(np.nanmin(y))
        pad = max(0.02, 0.1 * (1.0 - low))
        return max(0.0, low - pad), 1.0 + pad
    top = float((sub["metric"].map(metric_max) * scale).max())
    lo = np.nanmin(np.r_[y, (sub["ci_low"] * scale).to_numpy(float)])
    hi = np.nanmax(np.r_[y, (sub["ci_high"] * scale).to_numpy(float)])
    pad = max(0.5, 0.05 * (hi - lo))
    return max(0.0, lo - pad), min(top * 1.02, hi + pad)


def _published_rows(published: pd.DataFrame | None, sub: pd.DataFrame,
                    view: str) -> pd.DataFrame | None:
    """The paper's numbers of this panel's tasks, as the view shows them (relative: over the
    task's best published level)."""
    if published is None:
        return None
    rows = published.reindex([t for t in dict.fromkeys(sub["task"]) if t in published.index])
    rows = rows.apply(pd.to_numeric, errors="coerce")
    if view == "relative":
        rows = rows.div(rows.max(axis=1), axis=0)
    return rows


def _published_line(ax: Axes, row: pd.Series, pos: dict[str, int], st: dict, k: float) -> None:
    known = [(pos[str(lvl)], v) for lvl, v in row.items() if str(lvl) in pos and np.isfinite(v)]
    if not known:
        return
    x, y = zip(*known, strict=True)
    ax.plot(x, np.array(y) * k, color=st["color"], marker="D", mfc="white", ls=":", lw=1.2,
            ms=5, label="_paper")


def _how_to_read(ax: Axes, view: str, published: bool) -> None:
    """The spare panel of the grid explains the marks instead of staying blank."""
    ax.axis("off")
    lines = ["Lines: our scores (mean over seeds)", "Bands: 95% bootstrap intervals"]
    if view == "relative":
        lines[1] = "Bars: 95% bootstrap intervals (clipped)"
        lines.append("Relative: score / the task's best level")
    handles = [Line2D([], [], color="0.3", marker="o", label="ours")]
    if published:
        lines.append("Diamonds, dotted: the paper's number\nfor the task's analog dataset")
        handles.append(Line2D([], [], color="0.3", marker="D", mfc="white", ls=":", label="paper"))
    ax.text(0.02, 0.95, "\n".join(lines), va="top", fontsize=8, transform=ax.transAxes)
    ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=False)


def _highlight(ax: Axes, levels: list[str], level: str) -> None:
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


def styled_table(df: pd.DataFrame, factor: str, metric: str | None = None, precision: int = 1):
    """`table(df, factor)` as a pandas Styler with each column's best value in bold."""
    tab = table(df, factor, metric=metric)
    mask = best_mask(tab)
    return tab.style.format(precision=precision, na_rep="-").apply(
        lambda col: np.where(mask[col.name], "font-weight: bold", ""), axis=0
    )


def optimized_bars(std: pd.DataFrame, opt: pd.DataFrame,
                   published: pd.DataFrame | None = None) -> Figure:
    """Figure 2 of the paper: per task, the standard score (bar in the task's group colour)
    with the gain of the optimized setting stacked on top (burnt orange; a loss is drawn
    hatched grey), the relative error reduction written above. N-S scores are drawn x25.

    `published` (`paper.by_task(paper.table6(), ...)`) adds a second panel below: the
    paper's Figure 2 for each task's analog, same order, its non-ConvNet state of the art
    as a violet tick."""
    er = error_reduction(std, opt)
    rows = 1 if published is None else 2
    fig = new_figure((10, 4.5 * rows))
    axes = fig.subplots(rows, 1, squeeze=False).ravel()
    _gain_bars(axes[0], er, "ours: standard vs optimized (labels: relative error reduction)")
    if published is not None:
        theirs = _published_er(er, published)
        _gain_bars(axes[1], theirs, "the paper (Table 6) for each task's analog dataset")
        _state_of_the_art(axes[1], theirs)
    return fig


def _published_er(er: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 6 rows in error_reduction's columns, in our tasks' order."""
    cols = {"deep_standard": "standard", "deep_optimized": "optimized", "non_convnet": "sota"}
    pub = published.rename(columns=cols).reindex(er["task"])
    out = er[["task", "group", "metric"]].reset_index(drop=True)
    for c in ("standard", "optimized", "sota", "error_reduction"):
        out[c] = pub[c].to_numpy(float)
    out["task"] = [f"{t} ({a})" for t, a in zip(out["task"], pub["analog"].fillna("-"), strict=True)]
    return out


def _gain_bars(ax: Axes, er: pd.DataFrame, title: str) -> None:
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
        if np.isfinite(red) and np.isfinite(top):
            ax.text(x, top + 1, f"{100 * red:.0f}%", ha="center", va="bottom", fontsize=7)
    labels = [_task_label(t, m, True) for t, m in zip(er["task"], er["metric"], strict=True)]
    ax.set_xticks(xs, labels, rotation=60, ha="right", fontsize=8)
    _group_labels(ax, xs, list(er["group"]))
    ax.set_ylim(0, 125)
    ax.set_ylabel("score (%)")
    ax.set_title(title, pad=16)
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


SOTA_COLOR = "#8a2be2"  # the paper's violet for the non-ConvNet state of the art


def _state_of_the_art(ax: Axes, theirs: pd.DataFrame) -> None:
    xs = _bar_positions(list(theirs["group"]))
    scale = theirs["metric"].map(lambda m: NS_SCALE if m == "ns_score" else 1.0)
    ax.scatter(xs, theirs["sota"] * scale, marker="_", s=250, lw=2.5, color=SOTA_COLOR, zorder=3)
    handles = [*ax.get_legend().legend_handles,
               Line2D([], [], marker="_", ms=12, mew=2.5, ls="none", color=SOTA_COLOR,
                      label="non-ConvNet state of the art")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", ncol=4, frameon=False)


SUPPORT_COLORS = {"claimed": "#2a9d4b", "opposite": "#c0392b", "both": "#d4a017"}
_SUPPORT_TEXT = {"claimed": "interval on the claimed side", "opposite": "on the other side",
                 "both": "across the bound"}


def claims_forest(runs: Mapping[str, Sequence]) -> Figure:
    """Every statistic of every paper claim with its 95 % interval, one row per run (e.g. each
    world alone, then the worlds pooled), the claimed bound dashed; one panel per statistic,
    titled with its claim, name and unit. A row is coloured by where its interval lies
    (claimed side, other side, across the bound) and labelled with its run and the claim's
    verdict there. `runs`: label -> `transferlab.claims.Verdict`s (`claims.checked`)."""
    labels = list(runs)
    panels: dict[tuple[str, str], dict[str, tuple]] = {}  # (claim, statistic) -> label -> ...
    for label, found in runs.items():
        for v in found:
            for m in v.measured:
                panels.setdefault((v.paper_claim, m.name), {})[label] = (v.verdict, m)
    if not panels:
        raise ValueError(f"the runs {labels} measured no statistic of a paper claim")
    fig = new_figure((7.5, 0.32 * len(labels) * len(panels) + 0.75 * len(panels) + 0.4))
    axes = fig.subplots(len(panels), 1, squeeze=False).ravel()
    for ax, ((claim, name), by_run) in zip(axes, panels.items(), strict=True):
        ys = np.arange(len(labels))[::-1]
        ticks = []
        for y, label in zip(ys, labels, strict=True):
            verdict, m = by_run.get(label, ("", None))
            ticks.append(f"{label}: {verdict}" if verdict else f"{label}: -")
            if m is None or not np.isfinite(m.value):
                continue
            color = SUPPORT_COLORS.get(m.support, "0.5")
            if np.isfinite(m.ci_low) and np.isfinite(m.ci_high):
                ax.plot([m.ci_low, m.ci_high], [y, y], color=color, lw=2.5,
                        solid_capstyle="butt")
            ax.plot(m.value, y, "o", color=color, ms=6)
        bound = next(m.threshold for _, m in by_run.values())
        ax.axvline(bound, color="0.3", ls="--", lw=1)
        ax.set_yticks(ys, ticks, fontsize=8)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        unit = next(m.unit for _, m in by_run.values())
        ax.set_title(f"{claim}: {name}" + (f" ({unit})" if unit else ""), fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color=c, marker="o", lw=2.5, label=_SUPPORT_TEXT[k])
               for k, c in SUPPORT_COLORS.items()]
    handles.append(Line2D([], [], color="0.3", ls="--", lw=1, label="claimed bound"))
    fig.legend(handles=handles, fontsize=7, loc="outside upper center", frameon=False, ncol=4)
    return fig


_SOURCE_BARS = (("reach", "the interval", "0.35"), ("reach_images", "test images", "#4c72b0"),
                ("reach_tasks", "tasks", "#dd8452"), ("reach_seeds", "seeds", "#55a868"))


def uncertainty_figure(spread: pd.DataFrame) -> Figure:
    """Where each claim statistic's interval comes from (`transferlab.claims.uncertainty`):
    one panel per statistic, a bar per source for how far the 95 % interval reaches below
    the estimate with only that source resampled, and the interval's own reach; the dashed
    line is the estimate's distance above its bound. An interval clears the bound where its
    bar ends before the line. The title gives the projected tasks per group (`tasks_x`)."""
    if spread.empty:  # e.g. a task subset without the groups a claim compares
        fig = new_figure((7.5, 1.0))
        _empty(fig.subplots(), "no statistic of a paper claim could be measured on this table")
        return fig
    fig = new_figure((7.5, 1.25 * len(spread) + 0.5))
    axes = fig.subplots(len(spread), 1, squeeze=False).ravel()
    ys = np.arange(len(_SOURCE_BARS))[::-1]
    for ax, (_, row) in zip(axes, spread.iterrows(), strict=True):
        for y, (col, _, color) in zip(ys, _SOURCE_BARS, strict=True):
            if np.isfinite(row[col]):
                ax.barh(y, max(row[col], 0.0), color=color, height=0.7)
            else:
                ax.text(0, y, " not measured (one seed)" if col == "reach_seeds"
                        else " not measured", va="center", fontsize=7, color="0.4")
        margin = row["value"] - row["threshold"]
        ax.axvline(max(margin, 0.0), color="0.2", ls="--", lw=1)
        ax.set_yticks(ys, [label for _, label, _ in _SOURCE_BARS], fontsize=8)
        ax.set_ylim(-0.6, len(_SOURCE_BARS) - 0.4)  # the lowest row's note clear of the axis
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
        unit = f" ({row['unit']})" if row["unit"] else ""
        k = row["tasks_x"]
        needs = ("; the estimate lies on the other side of its bound" if margin <= 0 else
                 "; the seeds alone reach past the bound" if np.isinf(k) else
                 "; clears its bound with the present tasks" if k <= 1 else
                 f"; needs ~{k:.1f}x the tasks per group (projection)" if np.isfinite(k)
                 else "")
        ax.set_title(f"{row['paper_claim']}: {row['statistic']}{unit}{needs}", fontsize=8,
                     loc="left")
    handles = [Line2D([], [], color="0.2", ls="--", lw=1, label="estimate - claimed bound")]
    fig.legend(handles=handles, fontsize=7, loc="outside upper center", frameon=False)
    fig.supxlabel("how far the 95 % interval reaches below the estimate", fontsize=8)
    return fig
