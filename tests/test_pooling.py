"""Pooling worlds: each world's tasks count as tasks of their own in the claims' bootstrap."""

from __future__ import annotations

import pandas as pd
import pytest
from test_claims import PLATEAU, SCENARIOS, make_table, source_table
from transferlab import claims, pooling
from transferlab.__main__ import main


def _depth_gain(gain):
    return lambda g, dom, li, lv, t: 60 + gain * (lv == "13")


def test_a_pooled_table_names_each_worlds_tasks_apart_and_keeps_replicates():
    a = make_table("depth", _depth_gain(1.0), seed=1)
    b = make_table("depth", _depth_gain(1.0), seed=2)
    table = pooling.pooled_table({2: a, 3: b})
    assert len(table) == len(a) + len(b)
    assert set(table["task"]) == ({f"{t} (world 2)" for t in a["task"]}
                                  | {f"{t} (world 3)" for t in b["task"]})
    assert table["boot"].map(len).eq(len(a["boot"].iloc[0])).all()


def test_pooling_two_worlds_averages_them_and_narrows_the_interval():
    # Per-task effects spread by 3 points around +1: one world's 11 non-retrieval tasks leave
    # the mean's interval wide; two worlds' 22 narrow it by about 1/sqrt(2).
    worlds = {w: make_table("depth", _depth_gain(1.0), cell_sd=3.0, seed=10 + w)
              for w in (0, 1)}
    alone = {w: claims.check("depth", t) for w, t in worlds.items()}
    pooled = claims.check("depth", pooling.pooled_table(worlds))
    assert pooled.statistic == pytest.approx(sum(v.statistic for v in alone.values()) / 2)
    width = pooled.ci_high - pooled.ci_low
    assert width < 0.85 * min(v.ci_high - v.ci_low for v in alone.values())
    n_tasks = worlds[0]["task"].nunique()
    assert f"({2 * n_tasks} tasks)" in pooled.evidence


def test_pooling_refuses_one_world_or_worlds_of_different_seeds():
    a = make_table("depth", _depth_gain(1.0))
    with pytest.raises(ValueError, match="at least 2 worlds"):
        pooling.pooled_table({0: a})
    with pytest.raises(ValueError, match="different training seeds"):
        pooling.pooled_table({0: a, 1: make_table("depth", _depth_gain(1.0), n_seeds=2)})


def test_early_stopping_needs_every_worlds_source_network_converged():
    holds, _, options = SCENARIOS["early_stopping"]

    def world(top1, seed):
        return pd.concat([make_table("early_stopping", holds, seed=seed, **options),
                          source_table(top1)], ignore_index=True)

    both = pooling.pooled_table({2: world(PLATEAU, 1), 3: world(PLATEAU, 2)})
    assert claims.check("early_stopping", both).verdict == "reproduced"
    still_learning = [20, 30, 40, 50, 55, 60, 66]
    one = pooling.pooled_table({2: world(PLATEAU, 1), 3: world(still_learning, 2)})
    v = claims.check("early_stopping", one)
    assert v.verdict == "inconclusive"
    assert "objects (world 3) network has not converged" in v.evidence


def test_pooled_verdicts_name_the_worlds():
    worlds = {w: make_table("depth", _depth_gain(3.0), seed=w) for w in (4, 5)}
    found = pooling.pooled_verdicts(pooling.pooled_table(worlds), (4, 5))
    assert [v.paper_claim for v in found] == ["depth"] and found[0].verdict == "reproduced"
    assert found[0].evidence.endswith("Tasks of worlds 4, 5 pooled.")


def test_every_notebook_of_a_paper_claim_is_pooled():
    assert {name.split("_", 1)[1] for name in pooling.RUNS} == {
        c.factor for c in claims.CLAIMS.values()}


def test_the_folder_of_a_pooled_run_does_not_depend_on_the_order_of_the_worlds():
    assert pooling.folder_name("quick", (3, 2)) == pooling.folder_name("quick", (2, 3)) \
        == "quick-worlds-2-3"


def test_the_real_profile_has_no_worlds_to_pool(tmp_path):
    with pytest.raises(ValueError, match="profile='real'"):
        pooling.pool("real", (0, 1), out=tmp_path)


@pytest.mark.parametrize("seeds", [["1"], ["1", "1"], ["-1", "2"]])
def test_pool_refuses_fewer_than_two_different_worlds(seeds, tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["pool", "--profile", "smoke", "--world-seeds", *seeds, "--out", str(out)]) == 2
    assert "world_seeds=" in capsys.readouterr().err and not out.exists()


def test_pool_with_no_notebook_of_a_paper_claim_is_refused(tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["pool", "--profile", "smoke", "--world-seeds", "0", "1", "--only", "world",
                 "--out", str(out)]) == 2
    assert "names no notebook with a paper claim" in capsys.readouterr().err
    assert not out.exists()
