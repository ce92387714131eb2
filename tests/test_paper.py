"""The paper's published numbers: internally consistent, and mapped onto the world's tasks."""

from __future__ import annotations

import numpy as np
import pytest
from transferlab import paper, world

TARGETS = {name: spec for name, spec in world.TASKS.items() if spec.role == "target"}


def test_table6_error_reductions_agree_with_its_scores():
    # A transcription slip in a score would show as a published reduction that does not
    # follow from the two scores (the paper rounds reductions to whole percent).
    t = paper.table6()
    assert len(t) == 17 and list(t.index[:3]) == ["VOC07", "MIT 67", "SUN 397"]
    implied = (t["deep_optimized"] - t["deep_standard"]) / (100 - t["deep_standard"])
    np.testing.assert_allclose(implied, t["error_reduction"], atol=0.01)
    assert (t["deep_optimized"] > t["deep_standard"]).all()  # "optimized" wins everywhere
    assert list(paper.figure2().columns) == [*paper.SCORE_COLUMNS, "group"]


def test_every_world_task_has_its_analog_in_table6():
    per_task = paper.by_task(paper.table6(), TARGETS)
    assert list(per_task.index) == list(TARGETS)
    landmarks = per_task.loc["landmarks"]  # Oxford 5k and Paris 6k, averaged
    assert landmarks["datasets"] == "Oxford 5k / Paris 6k"
    assert landmarks["deep_standard"] == pytest.approx((73.0 + 81.3) / 2)
    assert landmarks["pooling"] == "2x2"
    ukb = per_task.loc["object_instances"]  # N-S score back in its own 0..4 unit
    assert ukb["deep_standard"] == pytest.approx(93.0 / 25)
    assert ukb["error_reduction"] == pytest.approx(0.47)
    assert per_task.loc["rooms", "depth"] == 8 and per_task.loc["rooms", "source"] == "Hybrid"


def test_tables_3_4_5_use_the_worlds_level_names():
    t3 = paper.by_task(paper.table3(), TARGETS)
    assert list(t3.columns[2:6]) == ["objects", "scenes", "hybrid", "concat"]
    assert "scene_attributes" not in t3.index  # Table 3 has no SUN attributes column
    assert t3.loc["landmarks", "datasets"] == "Oxford 5k"
    assert t3.loc["rooms", "scenes"] > t3.loc["rooms", "objects"]  # Places helps MIT 67
    t4 = paper.by_task(paper.table4(), TARGETS)
    assert list(t4.index) == ["rooms", "birds", "flowers"] and (t4["on"] > t4["off"]).all()
    t5 = paper.table5()
    assert list(t5.index) == ["standard", "FT target", "FT target + extra"]
    assert t5["mean"].is_monotonic_increasing


def test_an_analog_the_paper_lacks_is_left_out():
    custom = {"mine": TARGETS["rooms"].__class__(**{**TARGETS["rooms"].as_dict(),
                                                   "name": "mine", "analog": "my folder"})}
    assert paper.by_task(paper.table6(), custom).empty
    assert paper.datasets_of("Oxford 5k / Paris 6k") == ("Oxford 5k", "Paris 6k")


def test_for_factor_and_compare_on_a_results_table():
    from test_plots import make_table

    src = make_table("source_task", lambda d, g, li, lv, t: 50 + li, half=0)
    published = paper.for_factor(src, "source_task")
    assert list(published.columns) == ["objects", "scenes", "hybrid", "concat"]
    assert published.loc["rooms", "scenes"] == 69.3
    assert paper.for_factor(src.assign(factor="width"), "width") is None  # Figure 3: no numbers
    both = paper.compare(src, "source_task")
    assert both.loc["rooms", ("scenes", "paper")] == 69.3
    assert both.loc["rooms", ("scenes", "ours")] == 51
    assert both.loc["rooms", ("", "analog")] == "MIT 67"
    with pytest.raises(ValueError, match="factor='width'"):
        paper.compare(src, "width")
    opt = make_table("optimized", lambda d, g, li, lv, t: 60 + 10 * li, half=0)
    std_opt = paper.for_factor(opt, "optimized")
    assert std_opt.loc["object_instances", "optimized"] == pytest.approx(96.3 / 25)
    t6 = paper.compare_table6(opt[opt.level == "standard"], opt[opt.level == "optimized"])
    assert t6.loc["breeds", ("error reduction", "paper")] == 0.45
    assert t6.loc["breeds", ("error reduction", "ours")] == pytest.approx(10 / 40)
