"""The "explore" section of every notebook: widgets that re-draw from a results table.

Callbacks only re-draw from the table they were given, with the same plots.py functions the
batch cells call directly; nothing is recomputed. A failing callback prints its error into
the widget's output and never raises, so a notebook run by papermill cannot fail here (and
the batch path never depends on this module).

    box = explore(df, "layer")          # display(box) in a notebook
    ex = box.explorer                   # the pieces, for tests and scripting
    ex.tasks.value = ("rooms", "birds") # -> ex.redraws += 1, ex.figure, ex.last_data change
"""

from __future__ import annotations

import io
import traceback
from collections.abc import Sequence

import ipywidgets as widgets
import pandas as pd
from IPython.display import Image
from matplotlib.figure import Figure

from . import plots

__all__ = ["CONTROLS", "Explorer", "explore"]

CONTROLS = ("groups", "tasks", "metric", "view", "level", "paper")
PRIMARY = "each task's own metric"


class Explorer:
    """Task/group selectors, a metric picker, a raw/relative toggle, a level control
    (layer: a layer picker; dim_reduction: a PCA-dimension slider; otherwise a level menu)
    and, given `published` (task x level, `paper.for_factor`), a switch for the paper's
    numbers, over one factor of a results table. The figure: one panel per task group
    (plots.factor_figure) with the level highlighted, and every task's bar at that level below.

    The group filter narrows the task list to the ticked groups (ticks of tasks still listed
    are kept; a newly ticked group comes with all its tasks). The metric picker shows each
    task's own metric, or one metric and the tasks scored with it.

    State a test can read: `figure` (the last Figure drawn), `last_data` (the summary it was
    drawn from), `redraws` (a counter), `error` (the last callback exception, or None).
    """

    def __init__(
        self,
        df: pd.DataFrame,
        factor: str,
        controls: Sequence[str] | None = None,
        figsize: tuple[float, float] = (13, 9.5),
        published: pd.DataFrame | None = None,
    ) -> None:
        self.levels = plots.levels_of(df, factor)  # ValueError for an absent factor
        self.df, self.factor, self.figsize, self.published = df, factor, figsize, published
        sub = df[df["factor"] == factor]
        order = plots.task_order(sub)
        metrics = sorted(sub["metric"].unique())
        self._metrics_of = sub.groupby("task")["metric"].unique().map(set).to_dict()
        self.controls = _check_controls(controls, n_metrics=len(metrics), published=published)
        groups = list(dict.fromkeys(order["group"]))
        self._order = list(order["task"])
        self._group_of = dict(zip(order["task"], order["group"], strict=True))
        self.groups = widgets.SelectMultiple(
            options=groups, value=tuple(groups), rows=min(6, len(groups)), description="groups"
        )
        self.tasks = widgets.SelectMultiple(
            options=self._task_options(groups), value=tuple(self._order),
            rows=min(10, len(order)), description="tasks",
        )
        self.metric = widgets.Dropdown(options=[PRIMARY, *metrics], value=PRIMARY, description="metric")
        self.view = widgets.ToggleButtons(options=list(plots.VIEWS), value="raw", description="view")
        self.level = _level_control(factor, self.levels)
        self.paper = widgets.Checkbox(value=True, description="the paper's numbers")
        self.output = widgets.Output()
        self._syncing = False
        self.figure: Figure | None = None
        self.last_data: pd.DataFrame | None = None
        self.redraws = 0
        self.error: Exception | None = None
        for name in self.controls:  # the group filter redraws through _narrow_tasks
            handler = self._narrow_tasks if name == "groups" else self._on_change
            getattr(self, name).observe(handler, names="value")
        self.box = self._layout()
        self.redraw()

    # -- what is selected
    def _task_options(self, groups: Sequence[str]) -> list[tuple[str, str]]:
        return [(f"{t}  ({self._group_of[t]})", t) for t in self._order if self._group_of[t] in groups]

    def selected_tasks(self) -> list[str]:
        """Tasks ticked in the task list (only the ticked groups' are listed) that have the
        picked metric, nearest first."""
        listed = [value for _, value in self.tasks.options]
        chosen = set(self.tasks.value) if "tasks" in self.controls else set(listed)
        metric = self.selected_metric()
        if metric is not None:
            chosen = {t for t in chosen if metric in self._metrics_of[t]}
        return [t for t in listed if t in chosen]

    def selected_metric(self) -> str | None:
        if "metric" not in self.controls or self.metric.value == PRIMARY:
            return None
        return self.metric.value

    def selected_view(self) -> str:
        return self.view.value if "view" in self.controls else "raw"

    def selected_published(self) -> pd.DataFrame | None:
        return self.published if "paper" in self.controls and self.paper.value else None

    # -- drawing
    def draw(self) -> Figure:
        """A new figure for the current selection, built only with plots.py functions."""
        tasks, metric, view = self.selected_tasks(), self.selected_metric(), self.selected_view()
        fig = plots.new_figure(self.figsize)
        published = self.selected_published()
        if "level" not in self.controls:
            plots.factor_figure(self.df, self.factor, view, tasks, metric, into=fig,
                                published=published)
            return fig
        panels, bars = fig.subfigures(2, 1, height_ratios=(2, 1))
        level = str(self.level.value)
        plots.factor_figure(self.df, self.factor, view, tasks, metric, into=panels,
                            highlight=level, published=published)
        plots.level_bars(self.df, self.factor, level, view, tasks, metric, ax=bars.subplots())
        return fig

    def redraw(self) -> None:
        """Draw into the output widget; on failure show the error there instead of raising."""
        try:
            fig = self.draw()
            self.last_data = plots.summarize(
                self.df, self.factor, self.selected_metric(), self.selected_tasks(), self.selected_view()
            )
            self.figure = fig
            self.error = None
            self.redraws += 1
            self.output.outputs = ()
            self.output.append_display_data(Image(data=_png(fig), format="png"))
        except Exception as exc:  # noqa: BLE001  (a callback must never fail the notebook)
            self.error = exc
            self.output.outputs = ()
            self.output.append_stderr("explore: could not redraw:\n" + traceback.format_exc())

    def _on_change(self, change: dict) -> None:
        if not self._syncing:
            self.redraw()

    def _narrow_tasks(self, change: dict) -> None:
        """List only the ticked groups' tasks; keep the ticks of tasks still listed and tick
        every task of a newly ticked group. Then one redraw (not one per widget change)."""
        added = set(change["new"]) - set(change["old"] or ())
        kept = set(self.tasks.value)
        options = self._task_options(change["new"])
        value = tuple(t for _, t in options if t in kept or self._group_of[t] in added)
        self._syncing = True
        try:
            self.tasks.options = options
            self.tasks.value = value
        finally:
            self._syncing = False
        self.redraw()

    def _layout(self) -> widgets.VBox:
        top = [getattr(self, n) for n in ("groups", "tasks") if n in self.controls]
        row = [getattr(self, n) for n in ("metric", "view", "level", "paper") if n in self.controls]
        parts = [widgets.HBox(top)] if top else []
        parts += [widgets.HBox(row)] if row else []
        return widgets.VBox([*parts, self.output])


def _check_controls(controls: Sequence[str] | None, n_metrics: int,
                    published: pd.DataFrame | None) -> tuple[str, ...]:
    """The default leaves out what cannot change the figure: the metric picker when the table
    has one metric, the paper's switch when there are no published numbers."""
    if controls is None:
        absent = {"metric"} if n_metrics < 2 else set()
        absent |= {"paper"} if published is None or published.empty else set()
        return tuple(c for c in CONTROLS if c not in absent)
    if isinstance(controls, str):
        controls = (controls,)
    bad = [c for c in controls if c not in CONTROLS]
    if bad:
        raise ValueError(f"controls={bad} are not controls; valid: {list(CONTROLS)}")
    return tuple(c for c in CONTROLS if c in controls)


def _level_control(factor: str, levels: list[str]) -> widgets.ValueWidget:
    if factor == "dim_reduction":
        return widgets.SelectionSlider(
            options=levels, value=levels[-1], description="PCA dim", continuous_update=False
        )
    if factor == "layer":
        default = "fc6" if "fc6" in levels else levels[-1]
        return widgets.Dropdown(options=levels, value=default, description="layer")
    return widgets.Dropdown(options=levels, value=levels[0], description=factor[:12])


def _png(fig: Figure) -> bytes:
    # PNG bytes render the same in every frontend and backend (no inline backend needed)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def explore(df: pd.DataFrame, factor: str, controls: Sequence[str] | None = None, **options) -> widgets.VBox:
    """The explore widgets for `factor` (see Explorer); the box's `.explorer` holds the
    pieces. `controls` picks among CONTROLS (default: all that apply)."""
    explorer = Explorer(df, factor, controls=controls, **options)
    explorer.box.explorer = explorer
    return explorer.box
