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

CONTROLS = ("groups", "tasks", "metric", "view", "level")
PRIMARY = "each task's own metric"


class Explorer:
    """Task/group selectors, a metric picker, a raw/relative toggle and a level control
    (layer: a layer picker; dim_reduction: a PCA-dimension slider; otherwise a level menu)
    over one factor of a results table. The level control highlights its level on the line
    plot and draws every task's bar at that level beside it.

    State a test can read: `figure` (the last Figure drawn), `last_data` (the summary it was
    drawn from), `redraws` (a counter), `error` (the last callback exception, or None).
    """

    def __init__(
        self,
        df: pd.DataFrame,
        factor: str,
        controls: Sequence[str] | None = None,
        figsize: tuple[float, float] = (13, 5.5),
    ) -> None:
        self.levels = plots.levels_of(df, factor)  # ValueError for an absent factor
        self.df, self.factor, self.figsize = df, factor, figsize
        sub = df[df["factor"] == factor]
        order = plots.task_order(sub)
        metrics = sorted(sub["metric"].unique())
        several = bool((sub.groupby("task")["metric"].nunique() > 1).any())
        self.controls = _check_controls(controls, several_metrics=several)
        groups = list(dict.fromkeys(order["group"]))
        self._group_of = dict(zip(order["task"], order["group"], strict=True))
        self.groups = widgets.SelectMultiple(
            options=groups, value=tuple(groups), rows=min(6, len(groups)), description="groups"
        )
        self.tasks = widgets.SelectMultiple(
            options=[(f"{t}  ({g})", t) for t, g in zip(order["task"], order["group"], strict=True)],
            value=tuple(order["task"]),
            rows=min(10, len(order)),
            description="tasks",
        )
        self.metric = widgets.Dropdown(options=[PRIMARY, *metrics], value=PRIMARY, description="metric")
        self.view = widgets.ToggleButtons(options=list(plots.VIEWS), value="raw", description="view")
        self.level = _level_control(factor, self.levels)
        self.output = widgets.Output()
        self.figure: Figure | None = None
        self.last_data: pd.DataFrame | None = None
        self.redraws = 0
        self.error: Exception | None = None
        for name in self.controls:
            getattr(self, name).observe(self._on_change, names="value")
        self.box = self._layout()
        self.redraw()

    # -- what is selected
    def selected_tasks(self) -> list[str]:
        """Tasks ticked in the task list whose group is ticked too, nearest first."""
        order = [value for _, value in self.tasks.options]
        chosen = set(self.tasks.value) if "tasks" in self.controls else set(order)
        if "groups" in self.controls:
            chosen = {t for t in chosen if self._group_of[t] in self.groups.value}
        return [t for t in order if t in chosen]

    def selected_metric(self) -> str | None:
        if "metric" not in self.controls or self.metric.value == PRIMARY:
            return None
        return self.metric.value

    def selected_view(self) -> str:
        return self.view.value if "view" in self.controls else "raw"

    # -- drawing
    def draw(self) -> Figure:
        """A new figure for the current selection, built only with plots.py functions."""
        tasks, metric, view = self.selected_tasks(), self.selected_metric(), self.selected_view()
        fig = plots.new_figure(self.figsize)
        if "level" not in self.controls:
            plots.factor_figure(self.df, self.factor, view, tasks, metric, ax=fig.subplots())
            return fig
        line_ax, bar_ax = fig.subplots(1, 2, width_ratios=(3, 2))
        level = str(self.level.value)
        plots.factor_figure(self.df, self.factor, view, tasks, metric, ax=line_ax, highlight=level)
        plots.level_bars(self.df, self.factor, level, view, tasks, metric, ax=bar_ax)
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
        self.redraw()

    def _layout(self) -> widgets.VBox:
        top = [getattr(self, n) for n in ("groups", "tasks") if n in self.controls]
        row = [getattr(self, n) for n in ("metric", "view", "level") if n in self.controls]
        parts = [widgets.HBox(top)] if top else []
        parts += [widgets.HBox(row)] if row else []
        return widgets.VBox([*parts, self.output])


def _check_controls(controls: Sequence[str] | None, several_metrics: bool) -> tuple[str, ...]:
    """The default leaves the metric picker out unless some task has several metrics."""
    if controls is None:
        return tuple(c for c in CONTROLS if c != "metric" or several_metrics)
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
