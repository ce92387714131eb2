"""The explore widgets, driven headlessly: set a widget's value, watch the figure change."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from test_plots import TASKS, make_table  # noqa: E402
from transferlab import explore, plots  # noqa: E402


def _score(d, g, li, lv, t):
    return 50 + 3 * li - 0.2 * d * li


@pytest.fixture()
def dimred():
    return make_table("dim_reduction", _score)


def _line_labels(ex):
    """Task lines of every group panel, in drawing order (panel by panel, nearest first)."""
    return [line.get_label().split(" (")[0] for ax in ex.figure.axes[:-1]
            for line in ax.get_lines() if not line.get_label().startswith("_")]


def _bars(ex):
    return ex.figure.axes[-1]  # the level's bars, below the panels


def test_explore_returns_a_box_that_draws_every_task(dimred):
    box = explore.explore(dimred, "dim_reduction")
    assert isinstance(box, widgets.VBox)
    ex = box.explorer
    assert ex.redraws == 1 and ex.error is None
    assert _line_labels(ex) == [t for t, _, _ in TASKS]
    assert isinstance(ex.level, widgets.SelectionSlider)
    assert ex.output.outputs[0]["data"]["image/png"]  # drawn into the Output widget


def test_setting_the_task_selector_changes_the_drawn_lines(dimred):
    ex = explore.explore(dimred, "dim_reduction").explorer
    ex.tasks.value = ("birds", "rooms")
    assert ex.redraws == 2
    assert _line_labels(ex) == ["rooms", "birds"]  # nearest first
    assert set(ex.last_data["task"]) == {"rooms", "birds"}



def test_group_filter_narrows_the_task_list(dimred):
    ex = explore.explore(dimred, "dim_reduction").explorer
    ex.tasks.value = ("rooms", "birds", "landmarks")
    ex.groups.value = ("fine-grained", "retrieval")
    assert ex.redraws == 3  # one redraw for the group change, not one per widget it touches
    listed = [t for _, t in ex.tasks.options]
    assert listed == [t for t, g, _ in TASKS if g in ("fine-grained", "retrieval")]
    assert ex.tasks.value == ("birds", "landmarks")  # ticks kept where still listed
    assert _line_labels(ex) == ["birds", "landmarks"]
    ex.groups.value = ("fine-grained", "retrieval", "compositional")  # a newly ticked group
    assert set(ex.tasks.value) == {"birds", "landmarks", "actions", "interactions", "phrases"}
    assert _line_labels(ex) == ["birds", "actions", "interactions", "phrases", "landmarks"]


def test_view_toggle_switches_to_relative(dimred):
    ex = explore.explore(dimred, "dim_reduction").explorer
    raw_max = max(np.nanmax(line.get_ydata()) for line in ex.figure.axes[0].get_lines())
    ex.view.value = "relative"
    rel_max = max(np.nanmax(line.get_ydata()) for ax in ex.figure.axes[:-1]
                  for line in ax.get_lines() if not line.get_label().startswith("_"))
    assert raw_max > 50 and rel_max == pytest.approx(1.0)


def test_pca_slider_draws_bars_at_that_dimension(dimred):
    ex = explore.explore(dimred, "dim_reduction").explorer
    bars = _bars(ex).patches
    assert len(bars) == 16
    ex.level.value = "4"
    heights = [b.get_height() for b in _bars(ex).patches]
    at = dimred[dimred.level == "4"].set_index("task")
    expected = [
        at.loc[t, "score"] * (25 if m == "ns_score" else 1) for t, _, m in TASKS
    ]  # N-S x25 beside percent metrics
    np.testing.assert_allclose(heights, expected)
    assert "= 4" in _bars(ex).get_title()


def test_layer_picker_highlights_the_layer():
    df = make_table("layer", lambda d, g, li, lv, t: 60 + li)
    ex = explore.explore(df, "layer").explorer
    assert isinstance(ex.level, widgets.Dropdown) and ex.level.value == "fc6"
    ex.level.value = "conv3"
    for panel in ex.figure.axes[:-1]:
        if panel.get_title():  # the group panels, not the spare "how to read" cell
            bold = [t.get_text() for t in panel.get_xticklabels() if t.get_fontweight() == "bold"]
            assert bold == ["conv3"]


def test_metric_picker_narrows_to_the_tasks_scored_with_it(dimred):
    only = make_table("dim_reduction", _score, tasks=["rooms", "birds"])  # both: accuracy
    assert "metric" not in explore.explore(only, "dim_reduction").explorer.controls
    ex = explore.explore(dimred, "dim_reduction").explorer
    assert "metric" in ex.controls  # the world's tasks use five metrics
    ex.metric.value = "voc07_map"
    assert set(ex.last_data["metric"]) == {"voc07_map"}
    assert _line_labels(ex) == [t for t, _, m in TASKS if m == "voc07_map"]
    second = dimred.assign(metric="sklearn_ap", score=dimred["score"] - 10)
    ex = explore.explore(pd.concat([dimred, second], ignore_index=True), "dim_reduction").explorer
    ex.metric.value = "sklearn_ap"  # a second metric of every task
    rooms = ex.figure.axes[0].get_lines()[1]
    assert rooms.get_label() == "rooms"
    expected = second[second.task == "rooms"].sort_values("level_index")["score"]
    np.testing.assert_allclose(rooms.get_ydata(), expected)


def test_paper_switch_only_with_published_numbers(dimred):
    assert "paper" not in explore.explore(dimred, "dim_reduction").explorer.controls
    published = pd.DataFrame({"1": [10.0], "2": [20.0]}, index=["rooms"])
    ex = explore.explore(dimred, "dim_reduction", published=published).explorer
    assert "paper" in ex.controls

    def paper_lines():
        return [ln for ax in ex.figure.axes for ln in ax.get_lines() if ln.get_label() == "_paper"]

    assert len(paper_lines()) == 1
    ex.paper.value = False
    assert paper_lines() == [] and ex.redraws == 2


def test_a_failing_callback_reports_and_does_not_raise(dimred, monkeypatch):
    ex = explore.explore(dimred, "dim_reduction").explorer

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(plots, "level_bars", broken)
    ex.level.value = "8"  # must not raise
    assert isinstance(ex.error, RuntimeError) and ex.redraws == 1
    assert "boom" in ex.output.outputs[-1]["text"]
    monkeypatch.undo()
    ex.level.value = "16"
    assert ex.error is None and ex.redraws == 2


def test_controls_subset_and_bad_arguments(dimred):
    ex = explore.explore(dimred, "dim_reduction", controls=["view"]).explorer
    assert ex.controls == ("view",)
    assert len(ex.figure.axes) == 6  # five group panels and the spare, no level bars
    assert sum(1 for ax in ex.figure.axes for ln in ax.get_lines() if ln.get_label()[0] != "_") == 16
    with pytest.raises(ValueError, match="controls=\\['zoom'\\]"):
        explore.explore(dimred, "dim_reduction", controls=["zoom"])
    with pytest.raises(ValueError, match="factor='width'"):
        explore.explore(dimred, "width")


def test_batch_modules_do_not_import_widgets():
    code = "import sys, transferlab.plots, transferlab.claims; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
