"""Metrics against hand-computed values and literal transcriptions of the reference code."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from transferlab import metrics as M


def voc_evalcls_literal(confidence, gt):
    """VOCevalcls.m line by line (gt in {1, 0 difficult, -1}); MATLAB's max ignores NaN."""
    si = np.argsort(-confidence, kind="stable")
    tp = np.cumsum(gt[si] > 0)
    fp = np.cumsum(gt[si] < 0)
    rec = tp / np.sum(gt > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = tp / (fp + tp)
    ap = 0.0
    for t in M.VOC07_THRESHOLDS:
        p = prec[rec >= t]
        p = p[~np.isnan(p)]
        ap += (p.max() if p.size else 0.0) / 11
    return ap


def compute_ap_literal(pos, amb, ranked):
    """compute_ap.cpp line by line."""
    old_recall, old_precision, ap, intersect, j = 0.0, 1.0, 0.0, 0, 0
    for item in ranked:
        if item in amb:
            continue
        if item in pos:
            intersect += 1
        recall = intersect / len(pos)
        precision = intersect / (j + 1.0)
        ap += (recall - old_recall) * ((old_precision + precision) / 2.0)
        old_recall, old_precision = recall, precision
        j += 1
    return ap


# ---- VOC07 11-point AP ---------------------------------------------------------------------


def test_voc07_ap_hand_cases():
    assert M.voc07_ap(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0])) == pytest.approx(1.0)
    assert M.voc07_ap(np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 1, 0, 1])) == pytest.approx(0.5)
    # rec=[.5,.5,1], prec=[1,.5,2/3]: 6 thresholds at 1, 5 at 2/3
    assert M.voc07_ap(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx(28 / 33)


def test_voc07_ap_ties_keep_input_order():
    # MATLAB's sort is stable: a tied negative listed first ranks first
    assert M.voc07_ap(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    assert M.voc07_ap(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(1.0)


def test_voc07_ap_difficult_counts_as_neither():
    scores = np.array([0.9, 0.8, 0.7])
    labels, difficult = M.voc_gt_split(np.array([1, 0, 1]))
    assert M.voc07_ap(scores, labels, difficult) == pytest.approx(1.0)
    # the same row as a negative costs precision
    assert M.voc07_ap(scores, np.array([1, 0, 1])) == pytest.approx(28 / 33)
    # a difficult example ranked first gives 0/0 precision in VOCevalcls, ignored
    assert M.voc07_ap(scores, np.array([0, 1, 0]), np.array([True, False, False])) == pytest.approx(
        1
    )


def test_voc07_ap_matlab_threshold_at_recall_point_three():
    # 10 positives: 3 hits, 7 misses, 7 hits. Recall exactly 0.3 does not reach MATLAB's
    # t = 0.30000000000000004, so only 3 thresholds get precision 1.
    labels = np.array([1] * 3 + [0] * 7 + [1] * 7)
    scores = -np.arange(labels.size, dtype=float)
    assert M.voc07_ap(scores, labels) == pytest.approx((3 + 8 * 10 / 17) / 11)


def test_voc07_ap_matches_literal_vocevalcls_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(5, 60))
        gt = rng.choice([-1, 0, 1], size=n, p=[0.6, 0.1, 0.3])
        gt[0] = 1
        conf = np.round(rng.normal(size=n), 1)  # rounding creates ties
        labels, difficult = M.voc_gt_split(gt)
        assert M.voc07_ap(conf, labels, difficult) == pytest.approx(voc_evalcls_literal(conf, gt))


def test_voc07_no_positives_is_nan_and_skipped_in_map():
    assert np.isnan(M.voc07_ap(np.array([0.3, 0.2]), np.array([0, 0])))
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    labels = np.array([[1, 0], [0, 0], [1, 0]])
    assert M.voc07_map(scores, labels) == pytest.approx(28 / 33)
    assert np.isnan(M.voc07_map(scores, np.zeros_like(labels)))


def test_voc07_rejects_bad_labels_and_shapes():
    with pytest.raises(ValueError, match="labels"):
        M.voc07_ap(np.array([0.1, 0.2]), np.array([1, -1]))
    with pytest.raises(ValueError, match="shapes"):
        M.voc07_ap(np.array([0.1, 0.2]), np.array([1, 0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        M.voc07_ap(np.array([np.nan, 0.2]), np.array([1, 0]))


def test_sklearn_map_is_the_uninterpolated_number():
    scores = np.array([[0.9], [0.8], [0.7]])
    labels = np.array([[1], [0], [1]])
    assert M.sklearn_map(scores, labels) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert M.sklearn_map(scores, labels) != pytest.approx(M.voc07_map(scores, labels))
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=(40, 3)), rng.integers(0, 2, size=(40, 3))
    expected = np.mean([average_precision_score(y[:, c], s[:, c]) for c in range(3)])
    assert M.sklearn_map(s, y) == pytest.approx(expected)
    diff = np.zeros((3, 1), bool)
    diff[1] = True
    assert M.sklearn_map(scores, labels, diff) == pytest.approx(1.0)


# ---- accuracies and the task-level wrapper -----------------------------------------------


def test_accuracy_and_mean_class_accuracy():
    y = np.array([0, 0, 0, 1])
    pred = np.array([0, 0, 0, 0])
    assert M.accuracy(pred, y) == pytest.approx(0.75)
    assert M.mean_class_accuracy(pred, y) == pytest.approx(0.5)
    # a class only predicted, never true, does not enter the mean
    assert M.mean_class_accuracy(np.array([2, 0, 0, 1]), y) == pytest.approx((2 / 3 + 1) / 2)


def test_classification_score_percent_and_decision_forms():
    y = np.array([0, 1, 2, 2])
    votes = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 2], [2, 0, 1]], dtype=float)
    assert M.classification_score("accuracy", votes, y) == pytest.approx(75.0)
    assert M.classification_score("accuracy", votes.argmax(1), y) == pytest.approx(75.0)
    assert M.classification_score("mean_class_accuracy", votes, y) == pytest.approx(100 * 2.5 / 3)
    ml_scores = np.array([[0.9, 0.1], [0.8, 0.9], [0.7, 0.3]])
    ml_y = np.array([[1, 0], [0, 1], [1, 0]])
    assert M.classification_score("voc07_map", ml_scores, ml_y) == pytest.approx(
        100 * (28 / 33 + 1) / 2
    )
    with pytest.raises(ValueError, match="metric='top5'.*accuracy"):
        M.classification_score("top5", votes, y)


# ---- retrieval AP (trapezoid) and N-S -----------------------------------------------------


def test_trapezoid_ap_hand_cases():
    assert M.trapezoid_ap(np.array([5, 3, 7, 1]), np.array([3, 1]), np.array([])) == pytest.approx(
        1 / 3
    )
    assert M.trapezoid_ap(np.array([3, 5, 1]), np.array([3, 1]), np.array([])) == pytest.approx(
        19 / 24
    )
    assert M.trapezoid_ap(np.array([1, 3, 5]), np.array([3, 1]), np.array([])) == pytest.approx(1)


def test_trapezoid_ap_junk_is_skipped_without_advancing_rank():
    ranked = np.array([9, 3, 8, 5, 1])
    assert M.trapezoid_ap(ranked, np.array([3, 1]), np.array([9, 8])) == pytest.approx(19 / 24)
    assert M.trapezoid_ap(ranked, np.array([3, 1]), np.array([])) < 19 / 24


def test_trapezoid_ap_ignores_the_query_itself():
    ranked = np.array([0, 3, 5, 1])
    ap = M.trapezoid_ap(ranked, np.array([0, 3, 1]), np.array([]), query_self=0)
    assert ap == pytest.approx(19 / 24)
    # query listed mid-ranking: removed, the rest close up
    ap_mid = M.trapezoid_ap(np.array([3, 0, 1, 5]), np.array([3, 1]), np.array([]), query_self=0)
    assert ap_mid == pytest.approx(1.0)


def test_trapezoid_ap_no_positives_and_truncated_list():
    assert np.isnan(M.trapezoid_ap(np.array([1, 2]), np.array([]), np.array([])))
    assert np.isnan(M.trapezoid_ap(np.array([0, 2]), np.array([0]), np.array([]), query_self=0))
    # a positive never retrieved adds no area
    assert M.trapezoid_ap(np.array([3]), np.array([3, 1]), np.array([])) == pytest.approx(0.5)


def test_trapezoid_ap_matches_literal_compute_ap_on_random_lists():
    rng = np.random.default_rng(2)
    for _ in range(30):
        n = int(rng.integers(5, 50))
        ranked = rng.permutation(n)
        pos = rng.choice(n, size=int(rng.integers(1, 6)), replace=False)
        rest = np.setdiff1d(np.arange(n), pos)
        junk = rng.choice(rest, size=min(3, rest.size), replace=False)
        expected = compute_ap_literal(set(pos.tolist()), set(junk.tolist()), ranked.tolist())
        assert M.trapezoid_ap(ranked, pos, junk) == pytest.approx(expected)


def test_ns_score_edge_cases():
    group = np.array([0, 1, 2, 3])
    assert M.ns_score(np.array([3, 0, 2, 1]), group) == 4
    assert M.ns_score(np.array([0, 9, 8, 7]), group) == 1
    assert M.ns_score(np.array([9, 8, 7, 6]), group) == 0
    assert M.ns_score(np.array([9, 8, 7, 6, 0, 1]), group) == 0  # only the top 4 count
    with pytest.raises(ValueError, match="at least 4"):
        M.ns_score(np.array([0, 1, 2]), group)
    with pytest.raises(ValueError, match="repeats"):
        M.ns_score(np.array([0, 0, 1, 2]), group)


# ---- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_ci_vectorized_equals_loop_and_is_deterministic():
    rng = np.random.default_rng(3)
    correct = (rng.random(400) < 0.5).astype(float)
    loop = M.bootstrap_ci(lambda idx: correct[idx].mean(), n=400, seed=7)
    vec = M.bootstrap_ci(lambda idx: correct[idx].mean(axis=1), n=400, seed=7, vectorized=True)
    assert loop == pytest.approx(vec)
    assert M.bootstrap_ci(lambda idx: correct[idx].mean(), n=400, seed=7) == loop
    low, high = loop
    assert low < correct.mean() < high
    # binomial SE at p=.5, n=400 is .025: a 95% interval is about .1 wide
    assert 0.07 < high - low < 0.13


def test_bootstrap_ci_constant_and_bad_args():
    assert M.bootstrap_ci(lambda idx: 3.0, n=10) == (3.0, 3.0)
    with pytest.raises(ValueError, match="alpha"):
        M.bootstrap_ci(lambda idx: 0.0, n=10, alpha=1.5)
    with pytest.raises(ValueError, match="n=0"):
        M.bootstrap_ci(lambda idx: 0.0, n=0)
    with pytest.raises(ValueError, match="shape"):
        M.bootstrap_ci(lambda idx: idx.mean(), n=10, vectorized=True)


def test_logme_prefers_features_that_carry_the_labels():
    from transferlab.metrics import logme

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    informative = rng.normal(0, 1, (200, 32)) + 3 * np.eye(32)[labels]
    noise = rng.normal(0, 1, (200, 32))
    assert logme(informative, labels) > logme(noise, labels) + 0.1
    multi = (rng.random((200, 3)) < 0.5).astype(int)
    assert np.isfinite(logme(noise, multi))
    wide = rng.normal(0, 1, (50, 300))  # more dimensions than samples
    assert np.isfinite(logme(wide, labels[:50]))
