"""Linear probes: the paper's SVM set-up, checked against plain scikit-learn on small data."""

from itertools import combinations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold
from sklearn.multiclass import OneVsOneClassifier
from sklearn.svm import LinearSVC
from transferlab import probes
from transferlab.metrics import accuracy
from transferlab.probes import LinearProbe, ProbeConfig

TIGHT = dict(tol=1e-10, max_iter=100_000)


def clusters(n_per_class, k, d, sep, seed):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * sep / np.sqrt(d)
    y = np.repeat(np.arange(k), n_per_class)
    X = means[y] + rng.normal(size=(y.size, d)) / np.sqrt(d)
    return X.astype(np.float32), y


def multilabel(n, k, d, seed):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, k)) < 0.3).astype(np.uint8)
    Y[0], Y[1] = 1, 0  # every column has a positive and a negative
    X = Y @ rng.normal(size=(k, d)) * 1.5 / np.sqrt(d) + rng.normal(size=(n, d)) / np.sqrt(d)
    return X.astype(np.float32), Y


def reference_svm(X, y, C):
    svc = LinearSVC(C=C, dual=True, random_state=0, **TIGHT).fit(X, y)
    return svc.coef_[0], svc.intercept_[0]


# ---- structure: one-vs-one for single-label, one-vs-all for multi-label ------------------------


@pytest.mark.parametrize("d", [120, 12])  # span path (rows <= features) and primal path
def test_single_label_is_one_vs_one_and_each_pair_sees_only_its_classes(d):
    X, y = clusters(15, 4, d, sep=3.0, seed=0)
    probe = LinearProbe("single-label", config=ProbeConfig(Cs=(0.1, 1.0), **TIGHT)).fit(X, y)
    assert probe.strategy_ == "ovo"
    assert probe.pairs_ == list(combinations(range(4), 2))
    assert probe.coef_.shape == (6, d) and probe.intercept_.shape == (6,)
    for s, (i, j) in enumerate(probe.pairs_):
        rows = (y == i) | (y == j)
        w, b = reference_svm(X[rows], np.where(y[rows] == j, 1, -1), probe.best_C_)
        np.testing.assert_allclose(probe.coef_[s], w, rtol=1e-3, atol=1e-4)
        assert probe.intercept_[s] == pytest.approx(b, rel=1e-3, abs=1e-4)


def test_multi_label_is_one_vs_all():
    X, Y = multilabel(60, 3, 100, seed=1)
    probe = LinearProbe("multi-label", config=ProbeConfig(Cs=(0.3,), **TIGHT)).fit(X, Y)
    assert probe.strategy_ == "ovr" and probe.pairs_ == []
    assert probe.coef_.shape == (3, 100)
    for k in range(3):
        w, b = reference_svm(X, np.where(Y[:, k] == 1, 1, -1), 0.3)
        np.testing.assert_allclose(probe.coef_[k], w, rtol=1e-3, atol=1e-4)
        assert probe.intercept_[k] == pytest.approx(b, rel=1e-3, abs=1e-4)
    np.testing.assert_allclose(probe.decision(X), X @ probe.coef_.T + probe.intercept_, rtol=1e-5)
    assert probe.predict(X).shape == (60, 3)


def test_votes_and_tie_breaking_match_sklearn_one_vs_one():
    X, y = clusters(15, 5, 80, sep=1.5, seed=2)  # overlapping: ties in votes happen
    Xt, yt = clusters(15, 5, 80, sep=1.5, seed=3)
    probe = LinearProbe("single-label", config=ProbeConfig(Cs=(1.0,), **TIGHT)).fit(X, y)
    ref = OneVsOneClassifier(LinearSVC(C=1.0, dual=True, random_state=0, **TIGHT)).fit(X, y)
    np.testing.assert_allclose(probe.decision(Xt), ref.decision_function(Xt), atol=1e-4)
    np.testing.assert_array_equal(probe.predict(Xt), ref.predict(Xt))
    assert accuracy(probe.predict(Xt), yt) < 1.0  # the case is not trivial


def test_span_path_handles_duplicate_rows_and_both_batching_modes(monkeypatch):
    X, y = clusters(10, 3, 90, sep=2.0, seed=4)
    X = np.vstack([X, X[:5]])  # duplicates make the Gram matrix singular
    y = np.concatenate([y, y[:5]])
    cfg = ProbeConfig(Cs=(0.5,), **TIGHT)
    batched = LinearProbe("single-label", config=cfg).fit(X, y)
    monkeypatch.setattr(probes, "_BATCH_NNZ", 10)  # every pair solved alone
    alone = LinearProbe("single-label", config=cfg).fit(X, y)
    np.testing.assert_allclose(batched.coef_, alone.coef_, rtol=1e-3, atol=1e-4)
    rows = (y == 0) | (y == 1)
    w, _ = reference_svm(X[rows], np.where(y[rows] == 1, 1, -1), 0.5)
    np.testing.assert_allclose(batched.coef_[0], w, rtol=1e-3, atol=1e-4)


# ---- C selection uses the training rows only ----------------------------------------------------


def test_cv_scores_are_stratified_folds_of_the_training_rows():
    X, y = clusters(12, 3, 60, sep=1.2, seed=5)
    cfg = ProbeConfig(Cs=(0.01, 1.0), folds=4, seed=7, **TIGHT)
    probe = LinearProbe("single-label", config=cfg).fit(X, y)
    folds = StratifiedKFold(4, shuffle=True, random_state=7).split(X, y)
    expected = {C: [] for C in cfg.Cs}
    for tr, te in folds:
        for C in cfg.Cs:
            ref = OneVsOneClassifier(LinearSVC(C=C, dual=True, random_state=0, **TIGHT))
            expected[C].append(100 * accuracy(ref.fit(X[tr], y[tr]).predict(X[te]), y[te]))
    for C in cfg.Cs:
        assert probe.cv_scores_[C] == pytest.approx(np.mean(expected[C]))
    assert probe.best_C_ == max(cfg.Cs, key=lambda C: (np.mean(expected[C]), -C))
    assert probe.cv_score_ == pytest.approx(probe.cv_scores_[probe.best_C_])


def test_fit_depends_on_training_rows_only_and_is_deterministic():
    X, y = clusters(12, 3, 60, sep=1.2, seed=6)
    cfg = ProbeConfig(Cs=(0.01, 0.1, 1.0))
    a = LinearProbe("single-label", config=cfg).fit(X, y)
    b = LinearProbe("single-label", config=cfg).fit(X.copy(), y.copy())
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.cv_scores_ == b.cv_scores_
    # a training row changed: the CV scores move (they are computed from training rows)
    X2 = X.copy()
    X2[:6] = -X2[:6]
    c = LinearProbe("single-label", config=cfg).fit(X2, y)
    assert c.cv_scores_ != a.cv_scores_


def test_well_above_chance_on_separable_data():
    X, y = clusters(20, 4, 100, sep=4.0, seed=8)
    Xt, yt = clusters(20, 4, 100, sep=4.0, seed=8)
    Xt = Xt + np.random.default_rng(9).normal(size=Xt.shape).astype(np.float32) * 0.05
    probe = LinearProbe("single-label", metric="mean_class_accuracy").fit(X, y)
    assert accuracy(probe.predict(Xt), yt) > 0.9  # chance is 0.25
    assert probe.cv_score_ > 90


# ---- input validation ---------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="kind='retrieval'.*single-label"):
        LinearProbe("retrieval")
    with pytest.raises(ValueError, match="metric='voc07_map'.*accuracy"):
        LinearProbe("single-label", metric="voc07_map")
    with pytest.raises(ValueError, match="Cs"):
        ProbeConfig(Cs=(0.0, 1.0))
    with pytest.raises(ValueError, match="folds"):
        ProbeConfig(folds=1)
    X, y = clusters(8, 3, 20, sep=2.0, seed=10)
    single = LinearProbe("single-label")
    with pytest.raises(ValueError, match="1-D integer"):
        single.fit(X, np.eye(3, dtype=np.uint8)[y])
    with pytest.raises(ValueError, match="every class"):
        single.fit(X, np.where(y == 1, 2, y))
    with pytest.raises(ValueError, match="rows"):
        single.fit(X[:-1], y)
    X_nan = X.copy()
    X_nan[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        single.fit(X_nan, y)
    with pytest.raises(ValueError, match="not fitted"):
        single.decision(X)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        LinearProbe("multi-label").fit(X, y)
    Y = np.eye(3, dtype=np.uint8)[y]
    Y[:, 2] = 0
    with pytest.raises(ValueError, match=r"columns \[2\]"):
        LinearProbe("multi-label").fit(X, Y)
    fitted = LinearProbe("single-label", config=ProbeConfig(Cs=(1.0,))).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.decision(X[:, :5])
