"""Table 6's staged search: factors combined per task, chosen on cv_score, never on test."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
from transferlab import factors, params
from transferlab.study import STANDARD, Study


def _cv(rep) -> float:
    """A made-up validation score with one best setting per stage, to be found in order."""
    return (10 * (rep.source == "hybrid") + 5 * (rep.layer == "fc7") + 3 * (rep.pca_dim == 256)
            + 2 * rep.spatial)


# What fine-tuning the chosen network does to its made-up scores: on the training split's
# cross-validation (flattered: the network has seen those images) and on the validation split.
FT_CV_GAIN, FT_VALIDATION_GAIN = 50.0, -1.0


@pytest.fixture
def study(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path))
    s = Study("smoke", progress=False)

    def fake_evaluate(rep, task, seed=0):
        # The test score is poisoned: a search that read it would pick the worst setting.
        cv = _cv(rep) + FT_CV_GAIN * (rep.finetune == "target")
        return {"score": 1000.0 - cv, "ci_low": 0.0, "ci_high": 0.0, "cv_score": cv, "boot": []}

    def fake_validation(rep, task, seed=0):
        return 60.0 + FT_VALIDATION_GAIN * (rep.finetune == "target")

    monkeypatch.setattr(s, "evaluate", fake_evaluate)
    monkeypatch.setattr(s, "validation_score", fake_validation)
    return s


def _run(study, tasks):
    p = params.validate("09_optimized", {"profile": "smoke", "tasks": list(tasks)})
    return factors.run_optimized(p, study)


def test_each_stage_keeps_the_best_by_cv_and_never_reads_test_scores(study):
    table = _run(study, ["rooms", "object_instances"])
    opt = table[(table.factor == "optimized") & (table.level == "optimized")].set_index("task")
    assert opt.loc["rooms", "representation"] == "hybrid/medium/d5/fc7/pca256"
    assert opt.loc["object_instances", "representation"] == "hybrid/medium/d5/fc7/pca256/spatial"
    std = table[(table.factor == "optimized") & (table.level == "standard")]
    assert set(std.representation) == {STANDARD.label()}


def test_fine_tuning_is_chosen_on_the_validation_split_not_on_the_training_split(
        study, monkeypatch):
    # Cross-validation on the split the network was fine-tuned on says fine-tune (+50); the
    # validation split says no (-1): the search keeps the network as it was.
    table = _run(study, ["rooms", "object_attributes"])
    opt = table[(table.factor == "optimized") & (table.level == "optimized")].set_index("task")
    assert opt.loc["rooms", "representation"] == "hybrid/medium/d5/fc7/pca256"
    search = table[table.factor == "optimized_search"]
    stage = search[search.level.str.startswith("finetune:")]
    assert set(stage.task) == {"rooms"}  # single-label only: no validation split elsewhere
    assert stage.cv_score.tolist() == [60.0, 59.0]  # the column it chose by: validation scores
    # The validation split says fine-tune: now it is chosen.
    monkeypatch.setattr(sys.modules[__name__], "FT_VALIDATION_GAIN", 1.0)
    table = _run(study, ["rooms"])
    opt = table[(table.factor == "optimized") & (table.level == "optimized")].iloc[0]
    assert opt.representation == "hybrid/medium/d5/fc7/pca256/ft:target"


def test_fine_tuning_is_not_offered_on_the_layer_it_replaces(study):
    offer = factors.OPTIMIZED_STAGES["finetune"]
    assert offer(study, "rooms", STANDARD) == [replace(STANDARD, finetune="target")]
    # fc8 of a fine-tuned network is a new head: the chosen PCA dimension may not even fit it
    assert offer(study, "rooms", replace(STANDARD, layer="fc8", pca_dim=64)) == []
    assert offer(study, "object_attributes", STANDARD) == []  # multi-label: no validation split


def test_stages_combine_factors_rather_than_change_one_at_a_time(study):
    table = _run(study, ["rooms"])
    search = table[table.factor == "optimized_search"]
    # The layer stage varies the network the first stage chose, not the standard one.
    layer_stage = search[search.level.str.startswith("layer:")]
    assert (layer_stage.representation.str.startswith("hybrid/")).all()
    assert len(search) > len(factors.OPTIMIZED_STAGES)


def test_choice_needs_cv_scores(study, monkeypatch):
    monkeypatch.setattr(study, "evaluate", lambda rep, task, seed=0: {
        "score": 50.0, "ci_low": 0.0, "ci_high": 0.0, "cv_score": np.nan, "boot": []})
    with pytest.raises(ValueError, match="cv_score"):
        _run(study, ["rooms"])


def test_pca_is_offered_only_below_the_representations_dimension(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path))
    s = Study("quick", progress=False)
    assert s.feature_dim(STANDARD) == 1024
    assert s.feature_dim(replace(STANDARD, layer="fc8")) == 100  # the objects source's classes
    assert s.feature_dim(replace(STANDARD, source="concat", layer="fc8")) == 140
    assert s.feature_dim(replace(STANDARD, layer="conv5", pooling=2)) == 64 * 4
    for rep in (replace(STANDARD, layer="fc8"), replace(STANDARD, layer="conv5", pooling=2)):
        offered = factors.OPTIMIZED_STAGES["pca"](s, "rooms", rep)
        assert offered and all(r.pca_dim < s.feature_dim(rep) for r in offered)
