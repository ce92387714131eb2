"""The nine claims on synthetic tables built so that each claim holds, fails, or is noise,
and the paired bootstrap that weighs them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from transferlab import claims, metrics, results

# (task, group, domain, metric, single-label)
TASKS = [
    ("objects_in_clutter", "classification", "object", "voc07_map", False),
    ("rooms", "classification", "scene", "accuracy", True),
    ("scene_categories", "classification", "scene", "accuracy", True),
    ("scene_attributes", "attributes", "scene", "voc07_map", False),
    ("object_attributes", "attributes", "object", "voc07_map", False),
    ("breeds", "fine-grained", "object", "mean_class_accuracy", True),
    ("birds", "fine-grained", "object", "accuracy", True),
    ("flowers", "fine-grained", "object", "mean_class_accuracy", True),
    ("actions", "compositional", "object", "voc07_map", False),
    ("interactions", "compositional", "object", "accuracy", True),
    ("phrases", "compositional", "object", "voc07_map", False),
    ("scene_instances", "retrieval", "scene", "retrieval_map", False),
    ("object_instances", "retrieval", "object", "ns_score", False),
    ("landmarks", "retrieval", "scene", "retrieval_map", False),
    ("sculptures", "retrieval", "object", "retrieval_map", False),
]
DIMS = [2 ** k for k in range(11)]  # 1 .. 1024
LEVELS = {
    "width": ["tiny", "small", "medium", "large"],
    "depth": ["5", "7", "9", "11", "13"],
    "early_stopping": ["25", "50", "100", "200", "300", "350", "400"],
    "source_task": ["objects", "scenes", "hybrid", "concat"],
    "layer": ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"],
    "dim_reduction": [str(d) for d in DIMS[:-1]] + ["1024 (full)"],
    "fine_tuning": ["off", "on"],
    "data_size": ["0.125", "0.25", "0.5", "1"],
    "optimized": ["standard", "optimized"],
}
NEAR, FAR = ("classification", "attributes"), ("compositional", "retrieval")
N_BOOT = 200


def make_table(factor, score, test_sd=0.5, cell_sd=0.0, rep_sd=0.0, n_seeds=1, cv=None,
               single_label=False, seed=0, tasks=None):
    """A results table with paired replicates: `score(group, domain, li, level, task)` in points;
    each (task, seed) has one test-set noise draw per replicate, shared by all its levels
    (sd `test_sd`); `cell_sd` adds independent noise to each cell's point, `rep_sd` to each
    cell's replicates (a measurement that pairing does not help). `cv(group, li, level)`
    gives cv_score (default: NaN)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d, (task, group, domain, metric, single) in enumerate(TASKS, start=1):
        if (single_label and not single) or (tasks is not None and task not in tasks):
            continue
        k = 25.0 if metric == "ns_score" else 1.0
        for s in range(n_seeds):
            common = rng.normal(0, test_sd, N_BOOT)
            for li, level in enumerate(LEVELS[factor]):
                point = score(group, domain, li, level, task) + rng.normal(0, cell_sd)
                boot = point + common - common.mean() + rng.normal(0, rep_sd, N_BOOT)
                rows.append(dict(
                    factor=factor, level=level, level_index=li, task=task, group=group,
                    domain=domain, distance_rank=d, metric=metric, score=point / k,
                    ci_low=np.percentile(boot, 2.5) / k, ci_high=np.percentile(boot, 97.5) / k,
                    cv_score=np.nan if cv is None else cv(group, li, level) / k, seed=s,
                    representation=f"{factor}/{level}", boot=tuple(boot / k)))
    return results.frame(rows)


def source_table(top1):
    """Source rows of early stopping: the objects network's top-1 at each snapshot."""
    return results.frame([dict(factor="early_stopping", level=lv, level_index=i, task="objects",
                               group="source", domain="object", distance_rank=0,
                               metric="accuracy", score=acc, seed=0)
                          for i, (lv, acc) in enumerate(zip(LEVELS["early_stopping"], top1,
                                                            strict=True))])


def _noise(seed):
    rng = np.random.default_rng(seed)
    return lambda g, dom, li, lv, t: 60 + rng.normal(0, 0.3)


def _near(g):
    return g in NEAR


def _sat(dim, at):  # saturates at log2(dim) == at
    return 50 + 20 * min(np.log2(dim), at) / at


def _dims(lv):
    return int(lv.split()[0])


PLATEAU = [20, 40, 55, 62, 64, 64.5, 64.8]


def _width(sign):
    def score(g, dom, li, lv, t):
        gain = 4 if _near(g) else -2 if g == "retrieval" else 1
        return 60 + sign * (lv == "large") * (gain if sign > 0 else 4)
    return score


def _sources(sign):
    def score(g, dom, li, lv, t):
        scene_task = g == "classification" and dom == "scene"
        return 60 + sign * (5 * (lv == "scenes" and scene_task) + 5 * (lv == "objects" and not _near(g))
                            + 3 * (lv == "concat"))
    return score


def _layers(near_peak, far_peak):
    def score(g, dom, li, lv, t):
        return 70 - 3 * abs(li - (near_peak if _near(g) else far_peak if g in FAR else 4))
    return score


def _pca(near_at, compositional_at, retrieval_best):
    def score(g, dom, li, lv, t):
        if g == "retrieval":
            return _sat(_dims(lv), 8) + 3 * (_dims(lv) == retrieval_best)
        return _sat(_dims(lv), near_at if _near(g) else compositional_at if g == "compositional" else 5)
    return score


SCENARIOS = {
    # factor: (holds, fails, make_table options)
    "width": (_width(+1), _width(-1), {}),
    "depth": (lambda g, dom, li, lv, t: 60 + 2 * li * (g != "retrieval"),
              lambda g, dom, li, lv, t: 60 - 2 * li, {}),
    "early_stopping": (lambda g, dom, li, lv, t: 50 + 4 * min(li, 5),
                       lambda g, dom, li, lv, t: 60 - 4 * abs(li - 2),
                       {"cv": lambda g, li, lv: 50 + li}),
    "source_task": (_sources(+1), _sources(-1), {}),
    "layer": (_layers(6, 2), _layers(2, 6), {}),
    "dim_reduction": (_pca(3, 9, 256), _pca(9, 3, 1024),
                      {"cv": lambda g, li, lv: _sat(_dims(lv), 8) + 3 * (_dims(lv) == 256)}),
    "fine_tuning": (lambda g, dom, li, lv, t: 60 + (lv == "on") * (4 if g == "classification" else 12),
                    lambda g, dom, li, lv, t: 60 - (lv == "on") * 4, {"single_label": True}),
    "data_size": (lambda g, dom, li, lv, t: 60 + 2 * li, lambda g, dom, li, lv, t: 60 - 2 * li, {}),
    "optimized": (lambda g, dom, li, lv, t: 70 + 5 * li, lambda g, dom, li, lv, t: 70 - 5 * li, {}),
}


def _with_source(factor, table, top1=PLATEAU):
    return pd.concat([table, source_table(top1)], ignore_index=True) if factor == "early_stopping" else table


def _check(factor, score, **options):
    table = _with_source(factor, make_table(factor, score, **options))
    return claims.check(factor, table, seed=0)


def test_every_paper_claim_is_registered_once_with_its_factor():
    assert claims.PAPER_CLAIMS == ("width", "depth", "early_stopping", "source_task", "layer",
                                   "dim_reduction", "fine_tuning", "data_size", "optimized")
    assert set(SCENARIOS) == set(claims.PAPER_CLAIMS)
    for key, claim in claims.CLAIMS.items():
        assert claim.paper_claim == key and claim.statistics and claim.text and claim.source


@pytest.mark.parametrize("factor", sorted(SCENARIOS))
def test_each_claim_reaches_each_verdict_on_a_table_built_for_it(factor):
    holds, fails, options = SCENARIOS[factor]
    got = _check(factor, holds, **options)
    assert got.verdict == "reproduced", got.evidence
    assert got.ci_low <= got.statistic <= got.ci_high
    assert f"{got.statistic:+.2f}" in got.evidence and "paired bootstrap" in got.evidence
    got = _check(factor, fails, **options)
    assert got.verdict == "not reproduced", got.evidence
    noise = {**options, "test_sd": 2.0, "rep_sd": 6.0}
    if "cv" in options:
        noise["cv"] = lambda g, li, lv: 0.0 * li  # no information: the first candidate
    got = _check(factor, _noise(1), **noise)
    assert got.verdict == "inconclusive", got.evidence


def test_paired_bootstrap_excludes_zero_where_an_unpaired_one_would_not():
    # Two levels differ by exactly 1 point on every task; the test set's noise (sd 5) is the
    # same draw for both levels, as it is when both are scored on the same test images.
    def score(g, dom, li, lv, t):
        return 60 + (lv == "1")

    table = make_table("data_size", score, test_sd=5.0)
    paired = claims.check("data_size", table)
    assert paired.statistic == pytest.approx(1.0)
    assert paired.ci_low > 0 and paired.verdict == "reproduced"
    unpaired = claims.check("data_size", results.without_replicates(table))
    assert unpaired.ci_low < 0 < unpaired.ci_high and unpaired.verdict == "inconclusive"
    assert "unpaired fallback" in unpaired.evidence


def test_interval_is_centred_on_the_estimate():
    table = make_table("depth", SCENARIOS["depth"][0], test_sd=3.0, cell_sd=1.0, seed=4)
    v = claims.check("depth", table)
    centre = (v.ci_low + v.ci_high) / 2
    assert abs(centre - v.statistic) < 0.25 * (v.ci_high - v.ci_low)


def test_bootstrap_replicates_resample_the_same_test_items_for_every_level():
    a = np.random.default_rng(0).random(300)
    ra = metrics.bootstrap_replicates(lambda idx: a[idx].mean(), len(a), n_boot=50, seed=3)
    rb = metrics.bootstrap_replicates(lambda idx: (a[idx] + 1).mean(), len(a), n_boot=50, seed=3)
    np.testing.assert_allclose(rb - ra, 1.0)
    assert metrics.percentile_interval(ra) == metrics.bootstrap_ci(
        lambda idx: a[idx].mean(), len(a), n_boot=50, seed=3)


def test_early_stopping_is_inconclusive_unless_the_source_network_converged():
    holds, _, options = SCENARIOS["early_stopping"]
    table = make_table("early_stopping", holds, **options)
    still_learning = [20, 30, 40, 50, 55, 60, 66]
    v = claims.check("early_stopping", _with_source("early_stopping", table, still_learning))
    assert v.ci_low > -1 and v.verdict == "inconclusive"
    assert "has not converged" in v.evidence and "60.0 and 66.0" in v.evidence
    v = claims.check("early_stopping", table)  # no source rows at all
    assert v.verdict == "inconclusive" and "convergence is unknown" in v.evidence


def test_early_stopping_chooses_the_earlier_snapshot_by_cv_never_by_test():
    # On test, snapshot 1 beats the final network by 10 points; CV points to snapshot 5,
    # which equals the final network: the statistic is 0, not -10.
    def score(g, dom, li, lv, t):
        return 60 + 10 * (li == 1)

    table = make_table("early_stopping", score, cv=lambda g, li, lv: 50 + (li == 5))
    v = claims.check("early_stopping", _with_source("early_stopping", table))
    assert v.statistic == pytest.approx(0.0) and v.verdict == "reproduced"


def test_optimized_needs_nearly_every_task():
    def score(g, dom, li, lv, t):  # a large gain on 3 tasks, a small loss on 12
        return 60 + li * (15 if t in ("rooms", "birds", "phrases") else -0.5)

    v = claims.check("optimized", make_table("optimized", score, test_sd=0.1))
    assert v.statistic > 0 and v.ci_low > 0 and v.verdict == "inconclusive"
    assert "on 3 of 15 tasks" in v.evidence


def test_scene_tasks_are_found_by_domain_not_by_name():
    holds = SCENARIOS["source_task"][0]
    table = make_table("source_task", holds)
    table["task"] = table["task"].str.replace("rooms", "kitchens").str.replace("scene_", "place_")
    v = claims.check("source_task", table)
    assert v.verdict == "reproduced", v.evidence
    table["domain"] = "object"  # no scene task left
    v = claims.check("source_task", table)
    assert v.verdict == "inconclusive" and "no scene classification task" in v.evidence


def test_missing_data_is_inconclusive_with_a_reason():
    width = make_table("width", SCENARIOS["width"][0], tasks=["rooms", "birds", "actions"])
    v = claims.check("width", width)
    assert v.verdict == "inconclusive" and "no retrieval task" in v.evidence
    assert np.isnan(v.statistic)
    v = claims.check("depth", width)
    assert v.verdict == "inconclusive" and "no rows for factor 'depth'" in v.evidence
    no_cv = make_table("dim_reduction", SCENARIOS["dim_reduction"][0])
    v = claims.check("dim_reduction", no_cv)
    assert v.verdict == "inconclusive" and "without looking at test scores" in v.evidence


def test_ns_score_is_put_on_the_percent_scale():
    only_ukb = make_table("data_size", lambda g, dom, li, lv, t: 60 + 2 * li,
                          tasks=["object_instances"])
    assert (only_ukb["metric"] == "ns_score").all() and only_ukb["score"].max() < 4
    assert claims.check("data_size", only_ukb).statistic == pytest.approx(6.0)


def test_verdicts_table_has_the_published_columns_and_is_deterministic():
    table = make_table("width", _noise(3), rep_sd=3)
    a = claims.verdicts(table)
    assert list(a.columns) == list(claims.COLUMNS) == ["paper_claim", "claim", "verdict",
                                                       "statistic", "ci_low", "ci_high",
                                                       "evidence"]
    assert list(a["paper_claim"]) == ["width"]
    pd.testing.assert_frame_equal(a, claims.verdicts(table))
    with pytest.raises(ValueError, match="paper_claim='depth_hurts'"):
        claims.check("depth_hurts", table)
    with pytest.raises(ValueError, match="n_boot=5"):
        claims.check("width", table, n_boot=5)


def test_a_claim_reads_its_own_layer_where_the_factor_has_several():
    holds, _, options = SCENARIOS["early_stopping"]
    fc6 = _with_source("early_stopping", make_table("early_stopping", holds, **options))
    fc6 = results.without_replicates(fc6).assign(layer="fc6")
    # FC7 rows where stopping early would win by far: the FC6 claim must not read them
    final = (fc6.level_index == fc6.level_index.max()) & (fc6.group != "source")
    fc7 = fc6.assign(layer="fc7", score=fc6.score.where(~final, 0.0),
                     ci_low=fc6.ci_low.where(~final, 0.0), ci_high=fc6.ci_high.where(~final, 0.0))
    assert claims.check("early_stopping", fc6).verdict == "reproduced"
    both = pd.concat([fc6, fc7], ignore_index=True)
    assert claims.check("early_stopping", both) == claims.check("early_stopping", fc6)
    assert claims.check("early_stopping", fc7).verdict == "not reproduced"


def test_tables_of_the_old_schema_get_their_layer_column():
    old = results.without_replicates(make_table("early_stopping", SCENARIOS["early_stopping"][0]))
    old = old.drop(columns="layer").assign(
        factor="early_stopping:fc7", representation="objects/medium/d5/fc7/ckpt3")
    upgraded = results.validate(old)
    assert set(upgraded.factor) == {"early_stopping"} and set(upgraded.layer) == {"fc7"}


def test_no_layer_reads_back_from_csv_as_no_layer(tmp_path):
    table = results.frame([dict(factor="world", level="chance", level_index=0, layer="",
                                task="rooms", group="classification", distance_rank=2,
                                metric="accuracy", seed=0, score=10.0)])
    table.to_csv(tmp_path / "results.csv", index=False)
    back = results.validate(pd.read_csv(tmp_path / "results.csv"))
    assert back.layer.tolist() == [""]


def test_saturation_dimension_is_read_between_the_scored_powers_of_two():
    """PCA's saturation dimension: the first scored dimension reaching 95 % of the full score
    overstates a crossing that lies between two powers of two; the interpolated estimate
    finds it where the straight segment crosses (here 95 at log2 = 4.5, between 16 and 32)."""
    dims = np.array([4, 8, 16, 32, 64])
    scores = np.array([[50.0, 70.0, 90.0, 100.0, 100.0],   # crosses 95 halfway from 16 to 32
                       [96.0, 97.0, 98.0, 99.0, 100.0],    # already there at the smallest
                       [10.0, 20.0, 30.0, 40.0, 100.0]])   # only the full dimension
    full = scores[:, -1]
    grid = claims.saturation_log2(scores, dims, full)
    between = claims.saturation_log2(scores, dims, full, interpolate=True)
    np.testing.assert_allclose(grid, [5.0, 2.0, 6.0])
    np.testing.assert_allclose(between, [4.5, 2.0, 5.0 + 55 / 60])
    assert np.isnan(claims.saturation_log2(scores[:1], dims, np.array([200.0]))).all()


@pytest.mark.parametrize("factor", ["width", "depth", "data_size"])
def test_a_one_seed_claim_between_networks_says_its_interval_leaves_out_their_draw(factor):
    holds = SCENARIOS[factor][0]
    one = claims.check(factor, make_table(factor, holds))
    assert "One network per level" in one.evidence and "--seeds 0 1 2" in one.evidence
    three = make_table(factor, holds, n_seeds=3)
    got = claims.check(factor, three)
    assert "3 seed(s)" in got.evidence and "One network per level" not in got.evidence
    # a real run's pretrained network is one draw whatever the seeds (they move probe folds)
    pretrained = claims.check(factor, three.assign(weights="alexnet/IMAGENET1K_V1"))
    assert "One network per level" in pretrained.evidence
    # a claim whose levels are not networks trained per level says nothing of it
    fine = claims.check("layer", make_table("layer", SCENARIOS["layer"][0]))
    assert "One network per level" not in fine.evidence


def _spread_gain(task_sd, seed=0):
    """Data size gains 2 points on average; each task's gain is off by a fixed draw (sd
    `task_sd`), the same at every seed and test resample: a difference between tasks."""
    offsets = dict(zip([t[0] for t in TASKS], np.random.default_rng(seed).normal(0, task_sd,
                                                                                  len(TASKS)),
                       strict=True))
    return lambda g, dom, li, lv, t: 60 + li * (2 + offsets[t]) / 3


def test_uncertainty_names_the_source_that_sets_an_interval():
    tasks = claims.uncertainty(make_table("data_size", _spread_gain(4.0), test_sd=0.2))
    images = claims.uncertainty(make_table("data_size", _spread_gain(0.0), test_sd=0.2,
                                           rep_sd=3.0))
    for spread, wide in ((tasks, "tasks"), (images, "images")):
        row = spread.iloc[0]
        assert row["paper_claim"] == "data_size" and row[f"share_{wide}"] > 0.8
        assert np.isnan(row["reach_seeds"]) and np.isnan(row["share_seeds"])  # one seed
    assert images.iloc[0]["reach_tasks"] == pytest.approx(0.0, abs=1e-9)  # every task gains 2


def test_uncertainty_measures_the_seeds_where_there_are_several():
    table = make_table("data_size", _spread_gain(0.0), test_sd=0.2, n_seeds=3)
    # Each seed's all-data network is off by its own draw on every task: the networks' draw.
    shift = table["seed"].map({0: -2.0, 1: 0.5, 2: 2.5}).where(table["level"] == "1", 0.0)
    table = table.assign(score=table["score"] + shift, ci_low=table["ci_low"] + shift,
                         ci_high=table["ci_high"] + shift,
                         boot=[tuple(np.add(b, d)) for b, d in zip(table["boot"], shift,
                                                                   strict=True)])
    row = claims.uncertainty(table).iloc[0]
    assert row["reach_seeds"] > row["reach_images"] and row["share_seeds"] > 0.5


def test_uncertainty_reports_the_interval_the_verdict_weighs():
    table = _with_source("source_task", make_table("source_task", _sources(+1), test_sd=3.0,
                                                   cell_sd=1.0, seed=2))
    spread = claims.uncertainty(table, "source_task")
    found = claims.check("source_task", table)
    assert list(spread["statistic"]) == [m.name for m in found.measured]
    np.testing.assert_array_equal(spread["ci_low"], [m.ci_low for m in found.measured])
    np.testing.assert_array_equal(spread["ci_high"], [m.ci_high for m in found.measured])
    assert claims.uncertainty(table, "width").empty  # no width rows: no statistic to split


@pytest.mark.parametrize("margin, reach, seeds, expected", [
    (2.0, 2.0, 0.0, 1.0),  # the interval just reaches the bound
    (1.0, 2.0, 0.0, 4.0),  # it reaches twice as far: four times the tasks
    (2.0, 1.0, 0.0, 0.25),  # it clears the bound already
    (2.0, 3.0, 1.0, 8 / 3),  # the seeds' part does not shrink with more tasks
    (1.0, 2.0, 1.5, np.inf),  # the seeds alone reach past the bound
    (-1.0, 2.0, 0.0, np.nan),  # on the other side: more tasks would not bring it over
])
def test_tasks_multiplier_projects_the_tasks_an_interval_needs(margin, reach, seeds, expected):
    got = claims.tasks_multiplier(margin, reach, seeds)
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)


def test_the_projection_agrees_with_the_verdict_on_the_present_tasks():
    for factor, (holds, _, options) in SCENARIOS.items():
        table = _with_source(factor, make_table(factor, holds, test_sd=2.0, cell_sd=1.5,
                                                **options))
        found = {m.name: m for m in claims.check(factor, table).measured}
        spread = claims.uncertainty(table, factor)
        assert sorted(spread["statistic"]) == sorted(found)
        for _, row in spread.iterrows():
            clears = found[row["statistic"]].support == "claimed"
            assert clears == (row["tasks_x"] <= 1), (factor, row["statistic"])


def test_layer_drops_are_the_per_task_values_the_layer_claim_averages():
    table = make_table("layer", SCENARIOS["layer"][0])
    drops = claims.layer_drops(table)
    assert drops.task.tolist() == [t[0] for t in TASKS]  # nearest first
    near_task = drops.set_index("task").loc["rooms"]  # peaks at fc7 (index 6), 3 points above fc8
    assert near_task["best layer"] == "fc7" and near_task["last layer"] == "fc8"
    assert near_task["drop"] == pytest.approx((near_task.best - near_task["last"]) / near_task.best)
    assert drops.set_index("task").loc["actions", "best layer"] == "conv3"  # far: peaks early
    mean = drops.groupby("group")["drop"].mean()
    far_minus_near = (drops[drops.group.isin(FAR)]["drop"].mean()
                      - drops[drops.group.isin(NEAR)]["drop"].mean())
    assert far_minus_near == pytest.approx(claims.check("layer", table).statistic)
    assert mean["compositional"] > mean["classification"]
    assert drops.attrs["spearman"] > 0.5  # the drop grows with the hand ordering's distance
    with pytest.raises(ValueError, match="no rows for factor 'layer'"):
        claims.layer_drops(make_table("depth", SCENARIOS["depth"][0]))
