"""Plots and tables from synthetic results tables (also home of the table builder that
test_claims.py and test_explore.py import)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from transferlab import plots, results  # noqa: E402

# 16 tasks in 5 groups, nearest first (names and metrics as in world.md)
TASKS = [
    ("objects_in_clutter", "classification", "voc07_map"),
    ("rooms", "classification", "accuracy"),
    ("scenes", "classification", "accuracy"),
    ("scene_attributes", "attributes", "voc07_map"),
    ("object_attributes", "attributes", "voc07_map"),
    ("part_attributes", "attributes", "voc07_map"),
    ("breeds", "fine-grained", "mean_class_accuracy"),
    ("birds", "fine-grained", "accuracy"),
    ("flowers", "fine-grained", "mean_class_accuracy"),
    ("actions", "compositional", "voc07_map"),
    ("interactions", "compositional", "accuracy"),
    ("phrases", "compositional", "voc07_map"),
    ("scene_instances", "retrieval", "retrieval_map"),
    ("object_instances", "retrieval", "ns_score"),
    ("landmarks", "retrieval", "retrieval_map"),
    ("sculptures", "retrieval", "retrieval_map"),
]
LEVELS = {
    "width": ["tiny", "small", "medium", "large"],
    "depth": ["5", "7", "9", "11", "13"],
    "early_stopping": ["1000", "3000", "10000", "30000", "100000"],
    "source_task": ["objects", "scenes", "hybrid", "concat"],
    "layer": ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"],
    "dim_reduction": ["1", "2", "4", "8", "16", "32", "64", "full"],
    "fine_tuning": ["off", "on"],
    "data_size": ["0.125", "0.25", "0.5", "1"],
    "optimized": ["standard", "optimized"],
}


def make_table(factor, score, n_seeds=1, half=1.0, tasks=None, levels=None, rng=0):
    """A results table for `factor`: score(distance_rank, group, level_index, level, task) in
    percent (N-S tasks get it / 25), per-seed noise of sd `half`/2, bootstrap CI +-half."""
    rng = np.random.default_rng(rng)
    rows = []
    for d, (task, group, metric) in enumerate(TASKS, start=1):
        if tasks is not None and task not in tasks:
            continue
        for li, level in enumerate(levels or LEVELS[factor]):
            for seed in range(n_seeds):
                s = score(d, group, li, level, task) + rng.normal(0, half / 2)
                k = 25.0 if metric == "ns_score" else 1.0
                rows.append(
                    dict(
                        factor=factor,
                        level=level,
                        level_index=li,
                        task=task,
                        group=group,
                        distance_rank=d,
                        metric=metric,
                        score=s / k,
                        ci_low=(s - half) / k,
                        ci_high=(s + half) / k,
                        cv_score=np.nan,
                        seed=seed,
                        representation=f"{factor}/{level}",
                    )
                )
    return results.frame(rows)


def _width_score(d, group, li, level, task):
    return 60 + 2 * li - 0.4 * d * li + 0.5 * d


@pytest.fixture(scope="module")
def width():
    return make_table("width", _width_score, n_seeds=3)


def _lines(fig):
    """Every task's line across the panels, by label (the paper's lines are "_paper")."""
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    return {line.get_label().split(" (")[0]: line for line in lines
            if not line.get_label().startswith("_")}


def _panels(fig):
    """The group panels of a factor figure: title -> axes (the spare "how to read" cell has none)."""
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def test_factor_figure_raw_one_line_per_task_with_seed_means(width):
    fig = plots.factor_figure(width, "width")
    assert isinstance(fig, Figure)
    lines = _lines(fig)
    assert set(lines) == {t for t, _, _ in TASKS}
    y = lines["rooms"].get_ydata()
    expected = width[width.task == "rooms"].groupby("level_index")["score"].mean().to_numpy()
    np.testing.assert_allclose(y, expected)
    ns = lines["object_instances"].get_ydata()  # N-S x25 on the shared percent axis
    expected_ns = width[width.task == "object_instances"].groupby("level_index")["score"].mean()
    np.testing.assert_allclose(ns, 25 * expected_ns.to_numpy())
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == LEVELS["width"]


def test_factor_figure_relative_peaks_at_one_and_subset_keeps_styles(width):
    full = _lines(plots.factor_figure(width, "width"))
    fig = plots.factor_figure(width, "width", view="relative", tasks=["sculptures", "rooms"])
    lines = _lines(fig)
    assert set(lines) == {"sculptures", "rooms"}
    for line in lines.values():
        assert np.nanmax(line.get_ydata()) <= 1.0 + 1e-9
        assert np.nanmax(line.get_ydata()) > 0.98
    assert lines["rooms"].get_color() == full["rooms"].get_color()
    assert list(_panels(fig)) == ["classification", "retrieval"]  # only the groups selected


def test_one_panel_per_group_in_table2_order_tasks_by_distance(width):
    fig = plots.factor_figure(width, "width")
    panels = _panels(fig)
    assert list(panels) == ["classification", "attributes", "fine-grained", "compositional",
                            "retrieval"]
    for group, ax in panels.items():
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert [t.split(" ")[0] for t in legend] == [t for t, g, _ in TASKS if g == group]
    assert len(fig.axes) == 6 and not fig.axes[5].get_title()  # 2 x 3, the spare explains
    assert "Bands" in fig.axes[5].texts[0].get_text()


def test_relative_view_stays_readable_with_a_noisy_low_scoring_task(width):
    noisy = width.copy()
    birds = noisy["task"] == "birds"
    noisy.loc[birds, "score"] = 5.0 + noisy.loc[birds, "level_index"]
    noisy.loc[birds, "ci_low"] = 0.0
    noisy.loc[birds, "ci_high"] = noisy.loc[birds, "score"] + 8  # ratio up to (8 + 8) / 8 = 2
    fig = plots.factor_figure(noisy, "width", view="relative")
    for group, ax in _panels(fig).items():
        low, high = ax.get_ylim()
        assert high <= 1.1, group
        assert not ax.collections or all(  # no filled band; interval bars end inside the panel
            np.nanmax(seg[:, 1]) <= high + 1e-9 for c in ax.collections for seg in c.get_segments())
    others = _panels(fig)["classification"].get_ylim()
    assert others[0] > 0.5  # the noisy task does not stretch the other panels


def test_published_numbers_drawn_beside_ours(width):
    src = make_table("source_task", lambda d, g, li, lv, t: 50 + li)
    published = pd.DataFrame({"objects": [64.9], "scenes": [69.3]}, index=["rooms"])
    fig = plots.factor_figure(src, "source_task", published=published)
    ax = _panels(fig)["classification"]
    paper_lines = [line for line in ax.get_lines() if line.get_label() == "_paper"]
    assert len(paper_lines) == 1
    np.testing.assert_allclose(paper_lines[0].get_ydata(), [64.9, 69.3])
    assert ax.get_ylim()[1] >= 69.3  # the panel's range includes the paper's numbers
    rel = plots.factor_figure(src, "source_task", view="relative", published=published)
    (line,) = [ln for ln in _panels(rel)["classification"].get_lines() if ln.get_label() == "_paper"]
    np.testing.assert_allclose(line.get_ydata(), [64.9 / 69.3, 1.0])


def test_group_colours_fixed_and_tasks_of_a_group_distinct(width):
    styles = plots.task_styles(width)
    retrieval = [s["color"] for s in styles.values() if s["group"] == "retrieval"]
    assert len(set(retrieval)) == 4
    base = np.array(matplotlib.colors.to_rgb(plots.GROUP_COLORS["retrieval"]))
    for c in retrieval:  # shades of the group colour: the dominant channel stays dominant
        assert np.argmax(c) == np.argmax(base)


def test_factor_figure_draws_into_a_subfigure_and_highlights(width):
    fig = Figure()
    top, _ = fig.subfigures(2, 1)
    out = plots.factor_figure(width, "width", into=top, highlight="medium")
    assert out is fig and len(_lines(fig)) == 16
    for ax in _panels(fig).values():
        assert len(ax.patches) >= 1  # the highlight band
        bold = [t.get_text() for t in ax.get_xticklabels() if t.get_fontweight() == "bold"]
        assert bold == ["medium"]
    with pytest.raises(ValueError, match="highlight='huge'"):
        plots.factor_figure(width, "width", highlight="huge")


def test_bad_arguments_name_the_value(width):
    with pytest.raises(ValueError, match="view='log'"):
        plots.factor_figure(width, "width", view="log")
    with pytest.raises(ValueError, match="factor='depth'"):
        plots.factor_figure(width, "depth")
    with pytest.raises(ValueError, match="nosuchtask"):
        plots.factor_figure(width, "width", tasks=["nosuchtask"])
    with pytest.raises(ValueError, match="metric='top5'"):
        plots.table(width, "width", metric="top5")


def test_summarize_seed_interval_widens_with_seed_spread():
    tight = make_table("depth", lambda d, g, li, lv, t: 50.0, n_seeds=4, half=1.0, rng=1)
    spread = tight.copy()
    spread["score"] = spread["score"] + (spread["seed"] - 1.5) * 5  # add seed-to-seed spread
    a = plots.summarize(tight, "depth")
    b = plots.summarize(spread, "depth")
    assert (b["ci_high"] - b["ci_low"]).mean() > (a["ci_high"] - a["ci_low"]).mean() + 3
    assert (a["n_seeds"] == 4).all()


def test_summarize_refuses_duplicate_settings(width):
    doubled = pd.concat([width, width.assign(representation="other")])
    with pytest.raises(ValueError, match="representation"):
        plots.summarize(doubled, "width")


def test_table_rows_levels_columns_by_distance_and_bold_best(width):
    tab = plots.table(width, "width")
    assert list(tab.index) == LEVELS["width"]
    assert list(tab.columns.get_level_values("task")) == [t for t, _, _ in TASKS]
    assert tab.columns.get_level_values("group")[0] == "classification"
    means = width[(width.task == "breeds")].groupby("level")["score"].mean()
    assert tab[("fine-grained", "breeds")]["small"] == pytest.approx(means["small"])
    mask = plots.best_mask(tab)
    assert mask.sum().min() >= 1
    assert mask[("classification", "objects_in_clutter")]["large"]  # near: wider is better
    assert mask[("retrieval", "sculptures")]["tiny"]  # far: 2 - 0.4*16 < 0 per width step
    html = plots.styled_table(width, "width").to_html()
    css = html.split("</style>")[0]
    bold = set(re.findall(r"_row(\d+)_col(\d+)", css))
    expected = {(str(r), str(c)) for r, c in zip(*np.nonzero(mask.to_numpy()), strict=True)}
    assert bold == expected and "font-weight: bold" in css


def test_error_reduction_uses_each_metrics_ceiling():
    std = make_table("optimized", lambda d, g, li, lv, t: 80.0, levels=["standard"], half=0)
    opt = make_table("optimized", lambda d, g, li, lv, t: 90.0, levels=["optimized"], half=0)
    er = plots.error_reduction(std, opt)
    assert len(er) == 16
    np.testing.assert_allclose(er["error_reduction"], 0.5)  # (20 - 10) / 20 and (0.8 - 0.4) / 0.8
    ns = er[er.metric == "ns_score"].iloc[0]
    assert ns["err_standard"] == pytest.approx(4 - 3.2)
    fig = plots.optimized_bars(std, opt)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("50%") == 16
    assert "retrieval" in texts


def test_optimized_bars_with_the_papers_figure_2_below():
    from transferlab import paper, world

    std = make_table("optimized", lambda d, g, li, lv, t: 80.0, levels=["standard"], half=0)
    opt = make_table("optimized", lambda d, g, li, lv, t: 90.0, levels=["optimized"], half=0)
    published = paper.by_task(paper.table6(), world.TASKS)
    fig = plots.optimized_bars(std, opt, published=published)
    assert len(fig.axes) == 2
    theirs = fig.axes[1]
    labels = [t.get_text() for t in theirs.get_xticklabels()]
    assert labels[0] == "objects_in_clutter (VOC07)"
    heights = [p.get_height() for p in theirs.patches[:16]]  # the standard bars
    assert heights[0] == pytest.approx(71.8) and heights[1] == pytest.approx(64.9)
    assert "45%" in [t.get_text() for t in theirs.texts]  # Oxford Pets' published reduction
    assert "scenes" not in published.index and np.isnan(heights[2])  # no analog: no bar


def test_error_reduction_refuses_two_settings_per_task(width):
    with pytest.raises(ValueError, match="several settings"):
        plots.error_reduction(width, width)


def test_best_level_figure_marks_best_layer_per_task():
    def score(d, g, li, lv, t):  # best layer index falls with distance: 7 near .. 2 far
        best = 7 - (d - 1) // 3
        return 70 - 3 * abs(li - best)

    df = make_table("layer", score, half=0.5)
    best = plots.best_levels(plots.summarize(df, "layer"))
    assert list(best["best_level_index"]) == [7 - (d - 1) // 3 for d in range(1, 17)]
    fig = plots.best_level_figure(df, "layer")
    assert "-0.9" in fig.axes[0].get_title() or "-1.0" in fig.axes[0].get_title()


def test_level_bars_one_bar_per_task_at_level(width):
    fig = plots.level_bars(width, "width", "medium", tasks=["rooms", "birds", "sculptures"])
    bars = fig.axes[0].patches
    assert len(bars) == 3
    got = bars[0].get_height()
    assert got == pytest.approx(width.query("task=='rooms' and level=='medium'")["score"].mean())
    with pytest.raises(ValueError, match="level='huge'"):
        plots.level_bars(width, "width", "huge")


def test_figures_show_as_png_in_notebooks_without_pyplot(width):
    fig = plots.factor_figure(width, "width")
    assert fig._repr_png_().startswith(b"\x89PNG")
    assert not matplotlib.pyplot.get_fignums()  # nothing left open in pyplot


def test_empty_selection_draws_a_message_not_an_error(width):
    fig = plots.factor_figure(width, "width", tasks=[])
    assert "no tasks selected" in [t.get_text() for t in fig.axes[0].texts]


@pytest.mark.parametrize("factor", sorted(LEVELS))
def test_every_factor_draws_with_seeds_and_subsets(factor):
    df = make_table(factor, lambda d, g, li, lv, t: 50 + 4 * li + d / 4, n_seeds=2)
    fig = plots.factor_figure(df, factor, view="relative", tasks=["rooms", "landmarks"])
    assert set(_lines(fig)) == {"rooms", "landmarks"}
    assert list(plots.table(df, factor).index) == LEVELS[factor]
    best = plots.best_levels(plots.summarize(df, factor))
    assert (best["best_level"] == LEVELS[factor][-1]).all()  # scores rise with level_index
    plots.best_level_figure(df, factor)
    plots.level_bars(df, factor, LEVELS[factor][0])


def test_claims_forest_draws_a_panel_per_statistic_and_a_row_per_run():
    from transferlab.claims import Measured, Verdict

    def run(value, verdict, ci=1.0):
        stats = (Measured("near gain", value, value - ci, value + ci, 0.0, "points"),
                 Measured("near - retrieval", -value, -value - ci, -value + ci, 0.0, "points"))
        return [Verdict("width", "c", verdict, -value, -value - ci, -value + ci, "e", stats),
                Verdict("early_stopping", "c", verdict, value, np.nan, np.nan, "e",
                        (Measured("final - best", value, np.nan, np.nan, -1.0, "points"),))]

    fig = plots.claims_forest({"world 2": run(0.5, "inconclusive"),
                               "world 3": run(2.0, "not reproduced"),
                               "pooled": run(1.2, "inconclusive", ci=0.5)})
    axes = fig.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == [
        "width: near gain (points)", "width: near - retrieval (points)",
        "early_stopping: final - best (points)"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [
        "world 2: inconclusive", "world 3: not reproduced", "pooled: inconclusive"]
    colors = [ln.get_color() for ln in axes[1].get_lines() if ln.get_marker() == "o"]
    # near - retrieval: world 2's interval crosses 0, world 3's and pooled's lie below it
    assert colors == [plots.SUPPORT_COLORS[k] for k in ("both", "opposite", "opposite")]
    dashed = [ln for ln in axes[2].get_lines() if ln.get_linestyle() == "--"]
    assert dashed[0].get_xdata()[0] == -1.0
    with pytest.raises(ValueError, match="no statistic"):
        plots.claims_forest({"a": []})


def test_uncertainty_figure_draws_each_source_against_the_distance_to_the_bound():
    from transferlab.claims import UNCERTAINTY_COLUMNS

    def row(claim, value, threshold, reach, tasks_x, seeds=np.nan):
        return dict(paper_claim=claim, statistic="s", unit="points", value=value,
                    threshold=threshold, ci_low=value - reach, ci_high=value + reach,
                    reach=reach, reach_images=0.5, reach_tasks=reach - 0.2, reach_seeds=seeds,
                    share_images=0.1, share_tasks=0.9, share_seeds=np.nan, tasks_x=tasks_x)

    spread = pd.DataFrame([row("depth", 2.0, 0.0, 2.5, 1.56),
                           row("early_stopping", 0.5, -1.0, 1.0, 0.44, seeds=0.3),
                           row("width", -1.0, 0.0, 3.0, np.nan)], columns=UNCERTAINTY_COLUMNS)
    fig = plots.uncertainty_figure(spread)
    axes = fig.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == [
        "depth: s (points); needs ~1.6x the tasks per group (projection)",
        "early_stopping: s (points); clears its bound with the present tasks",
        "width: s (points); the estimate lies on the other side of its bound"]
    widths = sorted(p.get_width() for p in axes[1].patches)
    assert widths == pytest.approx([0.3, 0.5, 0.8, 1.0])  # seeds, images, tasks, the interval
    assert "not measured (one seed)" in [t.get_text().strip() for t in axes[0].texts]
    dashed = [ln.get_xdata()[0] for ax in axes for ln in ax.get_lines()]
    assert dashed == [2.0, 1.5, 0.0]  # the estimate's distance above its bound
    empty = plots.uncertainty_figure(spread.head(0)).get_axes()[0]
    assert "no statistic" in empty.texts[0].get_text()
