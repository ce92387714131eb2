"""The one scoring path: PCA, the probe or retrieval, the metric, paired bootstrap replicates."""

import numpy as np
import pytest
from transferlab import scoring
from transferlab.pca import fit_pca
from transferlab.probes import ProbeConfig
from transferlab.tasks import RetrievalTruth, TaskData, TaskSpec


def _classification_task(rng, n_train=60, n_test=40, d=16):
    centers = rng.normal(size=(3, d)) * 2
    ytr, yte = np.arange(n_train) % 3, np.arange(n_test) % 3
    x = {"train": centers[ytr] + rng.normal(size=(n_train, d)),
         "test": centers[yte] + rng.normal(size=(n_test, d))}
    spec = TaskSpec(name="toy", role="target", group="classification", kind="single-label", metric="accuracy",
                    n_classes=3, analog="toy", distance_rank=1)
    return TaskData(spec, {"train": None, "test": None}, {"train": ytr, "test": yte}), x


def test_pca_projects_like_an_svd_of_the_training_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 10)) @ rng.normal(size=(10, 10))
    p = fit_pca(x, 4)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    reference = (x - mean) @ vt[:4].T
    np.testing.assert_allclose(np.abs(p.transform(x)), np.abs(reference), rtol=1e-4, atol=1e-4)
    # Centring the caller's own copy in place (memory) gives the same bits; without being
    # asked, the input is left alone.
    mine, before = x.copy(), x.copy()
    assert np.array_equal(p.transform(mine, overwrite_input=True), p.transform(x))
    assert np.array_equal(x, before) and not np.array_equal(mine, before)


def test_classification_score_is_the_probe_on_pca_of_train_and_the_same_resamples():
    rng = np.random.default_rng(1)
    data, x = _classification_task(rng)
    config = ProbeConfig(Cs=(1.0,), folds=2)
    full = scoring.score(data, x, config, n_boot=30, seed=3)
    reduced = scoring.score(data, x, config, n_boot=30, seed=3, pca_dim=2)
    assert full["score"] > 80  # three well separated classes
    assert full["ci_low"] <= full["score"] <= full["ci_high"]
    assert len(full["boot"]) == len(reduced["boot"]) == 30
    # the test resamples depend on the seed only: same seed, same resamples, so a
    # representation scored twice gives identical replicates
    again = scoring.score(data, x, config, n_boot=30, seed=3)
    assert again["boot"] == full["boot"]
    with pytest.raises(ValueError, match="dim=99"):
        scoring.score(data, x, config, n_boot=30, seed=3, pca_dim=99)


def test_retrieval_score_and_its_validation_score_on_separable_instances():
    rng = np.random.default_rng(2)
    instances = rng.normal(size=(10, 8)) * 3
    views = lambda idx: instances[idx] + 0.1 * rng.normal(size=(len(idx), 8))  # noqa: E731
    db_ids = np.repeat(np.arange(10), 2)
    x = {"train": views(db_ids), "database": views(db_ids), "query": views(np.arange(10))}
    truth = RetrievalTruth(tuple(np.flatnonzero(db_ids == q) for q in range(10)),
                           tuple(np.zeros(0, np.int64) for _ in range(10)), np.full(10, -1))
    spec = TaskSpec(name="toy_retrieval", role="target", group="retrieval", kind="retrieval",
                    metric="retrieval_map", n_classes=0, analog="toy", distance_rank=1)
    data = TaskData(spec, {"train": None, "database": None, "query": None}, {}, truth)
    # pairs of views of the train split's instances: image 2i and 2i + 1
    validation = RetrievalTruth(tuple(np.array([2 * i + 1]) for i in range(10)),
                                tuple(np.zeros(0, np.int64) for _ in range(10)),
                                np.arange(10) * 2)
    out = scoring.score(data, x, ProbeConfig(), n_boot=20, seed=0, validation=validation)
    assert out["score"] == pytest.approx(100.0)
    assert out["cv_score"] == pytest.approx(100.0)
    assert np.isnan(scoring.score(data, x, ProbeConfig(), n_boot=20)["cv_score"])
