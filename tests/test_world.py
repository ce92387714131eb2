"""The embedded world: determinism by index, shapes, labels, ground truth, errors, no network."""

import socket
from dataclasses import replace

import numpy as np
import pytest
from transferlab.cache import Cache
from transferlab.world import (
    MIN_SIZE,
    SOURCES,
    TARGETS,
    TASKS,
    WorldConfig,
    generate,
    load_split,
    load_task,
    splits_of,
)

SMALL = WorldConfig(size=16, source_train_per_class=1, source_test_per_class=1,
                    target_train_per_class=2, target_test=20, retrieval_instances=6,
                    retrieval_fit=10, landmark_distractors=4)


def _split(task):
    return "database" if TASKS[task].kind == "retrieval" else "train"


@pytest.mark.parametrize("task", list(TASKS))
def test_same_bytes_whatever_the_batching(task):
    split = _split(task)
    whole, y_whole = generate(task, split, range(12), size=16, seed=3, config=SMALL)
    parts = [generate(task, split, r, size=16, seed=3, config=SMALL) for r in ([5, 6, 7], range(5),
                                                                              range(8, 12))]
    x = np.concatenate([parts[1][0], parts[0][0], parts[2][0]])
    y = np.concatenate([parts[1][1], parts[0][1], parts[2][1]])
    assert np.array_equal(x, whole) and np.array_equal(y, y_whole)
    single, _ = generate(task, split, [9], size=16, seed=3, config=SMALL)
    assert np.array_equal(single[0], whole[9])
    other_seed, _ = generate(task, split, range(12), size=16, seed=4, config=SMALL)
    assert not np.array_equal(other_seed, whole)


@pytest.mark.parametrize("task", list(TASKS))
def test_shapes_dtypes_and_label_ranges(task):
    spec = TASKS[task]
    x, y = generate(task, _split(task), range(12), size=24, seed=0, config=SMALL)
    assert x.shape == (12, 24, 24, 3) and x.dtype == np.uint8
    assert x.std() > 10, "images should not be flat"
    if spec.kind == "single-label":
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() < spec.n_classes
    elif spec.kind == "multi-label":
        assert y.shape == (12, spec.n_classes) and set(np.unique(y)) <= {0, 1}
    else:
        assert y.dtype == np.int64


@pytest.mark.parametrize("task", [t for t in TARGETS if TASKS[t].kind == "multi-label"])
def test_multilabel_tasks_have_images_with_several_labels(task):
    _, y = generate(task, "train", range(200), size=16, seed=0)
    assert (y.sum(1) >= 2).any()
    assert (y.mean(0) > 0.02).all(), f"every label of {task} should occur"


@pytest.mark.parametrize("task", [t for t in TARGETS if TASKS[t].kind == "retrieval"])
def test_retrieval_ground_truth_is_consistent(task, tmp_path):
    data = load_task(task, SMALL, Cache(tmp_path))
    truth = data.truth
    n_db = len(data.images["database"])
    assert len(truth.positives) == len(data.images["query"]) > 0
    for q, pos in enumerate(truth.positives):
        own = truth.query_in_db[q]
        assert len(pos) >= 1 and pos.max() < n_db
        assert not (len(pos) == 1 and pos[0] == own), "a query must not be its own only positive"
        assert set(pos).isdisjoint(truth.junk[q])
        if own >= 0:  # the query is the database image it claims to be
            assert np.array_equal(data.images["query"][q], data.images["database"][own])
    # PCA-whitening images show other instances than the database
    assert set(data.labels["train"]).isdisjoint(set(data.labels["database"]))


def test_single_label_splits_are_balanced():
    _, y = generate("birds", "train", range(150), size=16)
    assert np.bincount(y).min() == np.bincount(y).max() == 10


def test_splits_differ():
    a, _ = generate("birds", "train", range(4), size=16)
    b, _ = generate("birds", "test", range(4), size=16)
    assert not np.array_equal(a, b)


def test_load_split_is_cached(tmp_path):
    cache = Cache(tmp_path)
    x1, y1 = load_split("breeds", "test", SMALL, cache)
    files = sorted(p.name for p in (tmp_path / "world").iterdir())
    x2, y2 = load_split("breeds", "test", SMALL, cache)
    assert np.array_equal(x1, x2) and files == sorted(p.name for p in (tmp_path / "world").iterdir())
    assert len(x1) == SMALL.target_test


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: generate("dogs", "train", [0]), "valid tasks"),
        (lambda: generate("birds", "validation", [0]), "valid splits"),
        (lambda: generate("landmarks", "train_set", [0]), "valid splits"),
        (lambda: generate("birds", "train", [0], size=MIN_SIZE - 1), "size=15"),
        (lambda: generate("birds", "train", [3, -1]), "negative index -1"),
        (lambda: WorldConfig(target_test=0), "target_test=0"),
    ],
)
def test_bad_input_names_the_value_and_the_choices(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        generate("dogs", "train", [0])
    assert "'dogs'" in str(err.value) and "birds" in str(err.value)


def test_every_group_and_source_is_present():
    groups = {TASKS[t].group for t in TARGETS}
    assert groups == {"classification", "attributes", "fine-grained", "compositional", "retrieval"}
    assert SOURCES == ("objects", "scenes", "hybrid")
    assert sorted(TASKS[t].distance_rank for t in TARGETS) == list(range(1, 17))


def test_generation_never_opens_a_network_connection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the embedded world tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for task in TASKS:
        generate(task, _split(task), range(3), size=16, config=SMALL)


def test_no_task_is_solvable_from_raw_pixels(tmp_path):
    """A linear probe on raw pixels stays clearly below saturation on every target task."""
    from transferlab import worldcard
    from transferlab.profiles import get_profile, with_overrides
    from transferlab.study import Study

    world = WorldConfig(size=24, target_train_per_class=8, target_test=120,
                        retrieval_instances=12, retrieval_fit=40, landmark_distractors=12)
    study = Study(with_overrides(get_profile("smoke"), world=world), Cache(tmp_path), progress=False)
    for task in TARGETS:
        score = worldcard.raw_pixel_score(study, task)["score"]
        top = 4.0 if TASKS[task].metric == "ns_score" else 100.0
        assert score < 0.9 * top, f"{task}: raw pixels score {score:.1f} of {top:g}"
        assert score > worldcard.chance(study.task(task)) - 0.05 * top, task


def test_a_recipe_change_renews_only_what_is_made_from_that_task(monkeypatch):
    from transferlab import world

    before = {t: world.data_id(t, SMALL, "train") for t in ("objects", "breeds", "hybrid")}
    monkeypatch.setitem(world.RECIPE_VERSIONS, "objects", world.RECIPE_VERSIONS["objects"] + 1)
    after = {t: world.data_id(t, SMALL, "train") for t in before}
    assert after["objects"] != before["objects"]
    assert after["hybrid"] != before["hybrid"]  # the hybrid source shows the objects source
    assert after["breeds"] == before["breeds"]


def test_a_task_key_names_only_the_sizes_its_own_images_depend_on():
    from transferlab import world

    tasks = ("objects", "hybrid", "birds", "object_attributes", "landmarks", "object_instances")
    ids = {t: world.data_id(t, SMALL) for t in tasks}  # a whole task: every split's sizes

    def changed(**sizes) -> set[str]:
        bigger = replace(SMALL, **sizes)
        return {t for t in tasks if world.data_id(t, bigger) != ids[t]}

    assert changed(target_test=SMALL.target_test + 1) == {"birds", "object_attributes"}
    assert changed(source_train_per_class=2) == {"objects", "hybrid"}
    assert changed(source_test_per_class=2) == {"objects", "hybrid"}
    # A source network's key holds its train split's id: no other size retrains it.
    train = world.data_id("objects", SMALL, "train")
    for field in ("source_test_per_class", "target_test", "target_train_per_class",
                  "retrieval_instances"):
        bigger = replace(SMALL, **{field: getattr(SMALL, field) * 2 + 1})
        assert world.data_id("objects", bigger, "train") == train, field
    assert changed(retrieval_instances=SMALL.retrieval_instances * 2) == {"landmarks",
                                                                          "object_instances"}
    assert changed(landmark_distractors=SMALL.landmark_distractors + 1) == {"landmarks"}
    assert changed(size=SMALL.size * 2) == set(tasks)
    assert changed(seed=SMALL.seed + 1) == set(tasks)


@pytest.mark.parametrize("field", [f for f in WorldConfig.__dataclass_fields__
                                   if f not in ("size", "seed")])
def test_a_split_keeps_its_key_only_if_it_keeps_its_size(field):
    from transferlab import world

    bigger = replace(SMALL, **{field: getattr(SMALL, field) * 2 + 1})
    for task in world.TASKS:
        for split in splits_of(task) + ((world.EXTRA_SPLITS[task],)
                                        if task in world.EXTRA_SPLITS else ()):
            if world.data_id(task, bigger, split) == world.data_id(task, SMALL, split):
                assert bigger.split_size(task, split) == SMALL.split_size(task, split), \
                    (field, task, split)


def test_single_label_targets_have_a_validation_split_of_their_own():
    assert splits_of("birds") == ("train", "test", "val")
    assert splits_of("object_attributes") == ("train", "test")  # multi-label: CV on train
    assert splits_of("objects") == ("train", "test")  # a source
    val, y = generate("birds", "val", range(30), size=16)
    test, _ = generate("birds", "test", range(30), size=16)
    assert not np.array_equal(val, test) and sorted(set(y)) == list(range(TASKS["birds"].n_classes))
    assert SMALL.split_size("birds", "val") == SMALL.split_size("birds", "test")


def test_breeds_have_an_extra_split_of_the_same_classes():
    x, y = generate("breeds", "extra", range(24), size=16)
    assert sorted(set(y)) == list(range(TASKS["breeds"].n_classes))
    train, _ = generate("breeds", "train", range(24), size=16)
    assert not np.array_equal(x, train)
    assert SMALL.split_size("breeds", "extra") == 4 * SMALL.split_size("breeds", "train")
    with pytest.raises(ValueError, match="valid splits"):
        generate("birds", "extra", [0])


@pytest.mark.parametrize("task", ["actions", "interactions"])
def test_actor_and_object_stand_in_frame(task):
    """A relation can only be seen when both its actor and its object are in the image."""
    from transferlab.world import recipes
    from transferlab.world.catalog import catalog
    from transferlab.world.rng import Draws, stream_key

    idx = np.arange(400)
    scene, _ = getattr(recipes, task)(Draws(stream_key(0, task, "train"), idx),
                                      recipes.Ctx(catalog(0), len(idx), idx))
    for o in scene.objects[1:]:  # the first slot is clutter, anywhere by design
        on = o.present > 0
        reach = o.radius * np.maximum(o.aspect, 1.0)
        inside = (o.cx - 0.5 * reach >= 0) & (o.cx + 0.5 * reach <= 1) \
            & (o.cy - 0.5 * reach >= 0) & (o.cy + 0.5 * reach <= 1)
        assert inside[on].mean() > 0.97


def test_world_card_checks_fail_on_the_task_that_breaks_them():
    import pandas as pd
    from transferlab import worldcard
    from transferlab.world import TASKS

    def rows(task, standard, scratch):
        spec = TASKS[task]
        base = {"factor": "world", "task": task, "group": spec.group, "domain": spec.domain,
                "distance_rank": spec.distance_rank, "metric": spec.metric, "seed": 0,
                "representation": "", "cv_score": np.nan}
        scores = {"chance": 10.0, "raw pixels": 20.0, "standard fc6": standard,
                  "scratch fc6": scratch}
        return [{**base, "level": lv, "level_index": i, "score": v, "ci_low": v - 2,
                 "ci_high": v + 2} for i, (lv, v) in enumerate(scores.items())]

    good = rows("rooms", 60.0, 40.0) + rows("birds", 50.0, 30.0)
    checks = worldcard.world_claims(pd.DataFrame(good)).set_index("claim")
    assert (checks.verdict == "reproduced").all()
    worse = rows("rooms", 60.0, 40.0) + rows("birds", 50.0, 55.0)  # scratch beats transfer
    checks = worldcard.world_claims(pd.DataFrame(worse))
    transfer = checks[checks.claim.str.contains("from scratch")].iloc[0]
    assert transfer.verdict == "not reproduced" and transfer.statistic == 1
    assert "birds" in transfer.evidence
    saturated = rows("rooms", 99.0, 40.0)
    fc6 = worldcard.world_claims(pd.DataFrame(saturated))
    assert fc6[fc6.claim.str.contains("15 points")].iloc[0].verdict == "not reproduced"


def test_the_measured_distance_check_is_judged_by_its_interval():
    import pandas as pd
    from transferlab import report, worldcard

    groups = ["near"] * 6 + ["mid"] * 6 + ["far"] * 6
    rank = np.arange(1, 19)
    rng = np.random.default_rng(0)

    def check(measured, group=groups):
        d = pd.DataFrame({"task": [f"t{r}" for r in rank], "group": group,
                          "distance_rank": rank, "measured distance": measured})
        return worldcard.distance_check(d)  # no attrs needed: it ranks what it is given

    follows = check(rank + rng.normal(0, 1.5, len(rank)))
    assert follows["verdict"] == "reproduced"
    assert worldcard.DISTANCE_AGREEMENT <= follows["ci_low"] < follows["statistic"]
    assert follows["ci_high"] < 1  # a real interval, not a replicate of one ordering
    # A moderate agreement whose interval straddles the bar: inconclusive, whatever its point.
    loose = check(rank + rng.normal(0, 6, len(rank)))
    assert loose["verdict"] == "inconclusive"
    assert loose["ci_low"] < worldcard.DISTANCE_AGREEMENT < loose["ci_high"]
    # Near tasks measured far and far ones near: wholly below the bar; the worst are named.
    swapped = np.r_[rank[12:], rank[6:12], rank[:6]].astype(float)
    fails = check(swapped)
    assert fails["verdict"] == "not reproduced" and fails["ci_high"] < 0
    assert "t1 (rank 1, measured farther)" in fails["evidence"]
    assert "[" in report.claim_statistic(pd.Series(fails))  # printed with its interval
    # One task per group leaves nothing to resample; a task not measured is left out.
    alone = check(rank.astype(float), group=[f"g{r}" for r in rank])
    assert alone["verdict"] == "inconclusive" and np.isnan(alone["ci_low"])
    assert "no interval" in alone["evidence"]
    # Each task's test images resampled too (paired replicates): an ordering that resampling
    # tasks alone cannot shake has an interval once its tasks' scores are noisy.
    exact = pd.DataFrame({"task": [f"t{r}" for r in rank], "group": groups,
                          "distance_rank": rank, "measured distance": rank.astype(float)})
    assert worldcard.distance_check(exact)["ci_low"] == pytest.approx(1.0)
    exact.attrs["replicates"] = {f"t{r}": r + rng.normal(0, 4, 200) for r in rank}
    noisy = worldcard.distance_check(exact)
    assert noisy["statistic"] == pytest.approx(1.0) and noisy["ci_low"] < 0.95
    assert "test images and tasks within groups resampled" in noisy["evidence"]
    missing = rank + rng.normal(0, 1.5, len(rank))
    missing[3] = np.nan
    partial = check(missing)
    assert "over 17 tasks" in partial["evidence"] and "t4 " not in partial["evidence"]


def test_source_accuracy_is_computed_once_per_snapshot(tmp_path, monkeypatch):
    from transferlab import training
    from transferlab.study import STANDARD, Study

    study = Study("smoke", Cache(tmp_path), progress=False)
    first = study.source_accuracy("objects", STANDARD)
    early = study.source_accuracy("objects", replace(STANDARD, checkpoint=0))
    assert 0 <= first <= 100 and 0 <= early <= 100

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a cached top-1 was evaluated again")

    monkeypatch.setattr(training, "accuracy", no_evaluation)
    again = Study("smoke", Cache(tmp_path), progress=False)  # a new process would do the same
    assert again.source_accuracy("objects", STANDARD) == first
    assert again.source_accuracy("objects", replace(STANDARD, checkpoint=0)) == early


def test_world_card_describes_the_seeds_it_is_given(tmp_path):
    """`run --seeds 1` makes a card of seed 1's networks: its scores, its measured distance
    and the plan's units all follow the notebook's seeds (they were seed 0's whatever the
    seeds, beside a network table of seed 1)."""
    from transferlab import factors, worldcard
    from transferlab.params import check_params
    from transferlab.study import STANDARD, Study

    params = check_params("00_world", {"profile": "smoke", "tasks": ["rooms"], "seeds": [1]})
    study = Study("smoke", Cache(tmp_path), progress=False)
    seeds = factors.seeds_for(study, params)
    assert seeds == (1,)
    assert {g.seeds for g in factors.grids(params, study)} == {(1,)}
    table = worldcard.baselines(study, ("rooms",), seeds)
    standard = table[table.level == "standard fc6"]
    assert standard.seed.tolist() == [1]
    score = study.evaluate(STANDARD, "rooms", 1)["score"]
    assert standard.score.iloc[0] == score
    assert score != study.evaluate(STANDARD, "rooms", 0)["score"]  # seeds do differ here
    distance = worldcard.measured_distance(study, ("rooms",), seeds)
    assert distance["trained fc6"].iloc[0] == score
    # Two seeds: one card row per task, its scores the mean of the seeds'.
    both = worldcard.baselines(study, ("rooms",), (0, 1))
    card = worldcard.card(both)
    assert len(card) == 1
    assert card["standard fc6"].iloc[0] == round(
        (score + study.evaluate(STANDARD, "rooms", 0)["score"]) / 2, 2)
    assert len(worldcard.world_claims(both)) == 3
