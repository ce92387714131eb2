"""The paper's metrics, matching the reference implementations (see protocol.md).

Low-level functions return fractions in [0, 1] (the N-S score in [0, 4]); the task-level
wrappers (`classification_score` here, `retrieval.evaluate_retrieval`) return percent.
Everything is numpy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CLASSIFICATION_METRICS = ("accuracy", "mean_class_accuracy", "voc07_map")

# MATLAB's `0:0.1:1` as VOCevalcls iterates it: colon fills from both ends (a + k*d for the
# first half, b - (n-k)*d for the second), so t(4) = 3*0.1 = 0.30000000000000004 and a recall
# of exactly 0.3 does not reach it. Kept bit-exact to match the reference numbers.
VOC07_THRESHOLDS = np.array([k * 0.1 if k <= 5 else 1.0 - (10 - k) * 0.1 for k in range(11)])


def _check_1d_pair(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must be 1-D of equal length; "
            f"got shapes {a.shape} and {b.shape}"
        )


def _difficult_mask(labels: np.ndarray, difficult: np.ndarray | None) -> np.ndarray:
    if difficult is None:
        return np.zeros(labels.shape, dtype=bool)
    difficult = np.asarray(difficult, dtype=bool)
    if difficult.shape != labels.shape:
        raise ValueError(
            f"difficult has shape {difficult.shape}, labels {labels.shape}: must match"
        )
    return difficult


def _binary(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    bad = np.setdiff1d(np.unique(labels), [0, 1])
    if bad.size:
        raise ValueError(
            f"{name} must be in {{0, 1}} (use voc_gt_split for VOC's {{1, 0, -1}}); "
            f"got values {bad[:5]}"
        )
    return labels.astype(bool)


def voc_gt_split(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VOC ground truth {1 positive, -1 negative, 0 difficult} -> (labels {0,1}, difficult)."""
    gt = np.asarray(gt)
    bad = np.setdiff1d(np.unique(gt), [-1, 0, 1])
    if bad.size:
        raise ValueError(f"gt must be in {{1, 0, -1}}; got values {bad[:5]}")
    return (gt == 1).astype(np.uint8), gt == 0


def voc07_ap(scores: np.ndarray, labels: np.ndarray, difficult: np.ndarray | None = None) -> float:
    """VOCdevkit VOCevalcls 11-point AP of one class, in [0, 1].

    `labels` in {0, 1}; `difficult` (optional bool mask) marks examples that count as neither
    positive nor negative. Ties keep input order (a stable sort of -scores, as MATLAB's `sort`).
    No positives -> NaN (VOCevalcls would return 0 through 0/0 recalls; callers skip the class).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = _binary(labels)
    _check_1d_pair(scores, labels, ("scores", "labels"))
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    keep = ~_difficult_mask(labels, difficult)
    # Dropping difficult rows is exact: in VOCevalcls they repeat the previous (rec, prec)
    # point or give 0/0 precision, which MATLAB's max ignores.
    scores, labels = scores[keep], labels[keep]
    npos = int(labels.sum())
    if npos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order])
    rank = np.arange(1, len(order) + 1)
    rec = tp / npos
    prec = tp / rank
    ap = 0.0
    for t in VOC07_THRESHOLDS:
        reached = prec[rec >= t]
        ap += (reached.max() if reached.size else 0.0) / 11
    return float(ap)


def voc07_map(scores: np.ndarray, labels: np.ndarray, difficult: np.ndarray | None = None) -> float:
    """Mean VOC07 11-point AP over classes (columns), in [0, 1].

    Classes without a (non-difficult) positive are skipped: their AP is undefined. NaN if no
    class has a positive (possible in a bootstrap resample).
    """
    scores, labels = _check_2d(scores, labels)
    diff = _difficult_mask(labels, difficult)
    aps = [voc07_ap(scores[:, c], labels[:, c], diff[:, c]) for c in range(scores.shape[1])]
    return _nanmean(aps)


def sklearn_map(
    scores: np.ndarray, labels: np.ndarray, difficult: np.ndarray | None = None
) -> float:
    """Mean of scikit-learn's `average_precision_score` over classes, in [0, 1].

    A different number from VOC07 AP (no interpolation, ties grouped): a second column only.
    Difficult examples are dropped; classes without positives are skipped.
    """
    scores, labels = _check_2d(scores, labels)
    diff = _difficult_mask(labels, difficult)
    aps = []
    for c in range(scores.shape[1]):
        keep = ~diff[:, c]
        y = labels[keep, c].astype(bool)
        aps.append(_sklearn_ap(y, scores[keep, c]) if y.any() else np.nan)
    return _nanmean(aps)


def _check_2d(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must be (N, C) of equal shape; "
            f"got {scores.shape} and {labels.shape}"
        )
    return scores, labels


def _nanmean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr[~np.isnan(arr)].mean()) if np.any(~np.isnan(arr)) else float("nan")


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Fraction of correct predictions, in [0, 1]."""
    pred, y = np.asarray(pred), np.asarray(y)
    _check_1d_pair(pred, y, ("pred", "y"))
    if y.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(pred == y))


def mean_class_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean over the classes present in `y` of the per-class recall, in [0, 1]."""
    pred, y = np.asarray(pred), np.asarray(y)
    _check_1d_pair(pred, y, ("pred", "y"))
    if y.size == 0:
        raise ValueError("mean_class_accuracy of an empty set is undefined")
    classes, inverse = np.unique(y, return_inverse=True)
    correct = np.bincount(inverse, weights=(pred == y), minlength=classes.size)
    return float(np.mean(correct / np.bincount(inverse, minlength=classes.size)))


def classification_score(metric: str, decision: np.ndarray, y: np.ndarray) -> float:
    """A classification task's score in percent (0..100).

    `decision` is the probe's output, (N, C), column j = class j: for single-label metrics the
    prediction is its argmax (a 1-D array is taken as predicted labels directly); for
    "voc07_map" the per-class scores, with `y` the (N, C) {0, 1} label matrix.
    """
    if metric not in CLASSIFICATION_METRICS:
        raise ValueError(f"metric={metric!r} is not one of {CLASSIFICATION_METRICS}")
    decision, y = np.asarray(decision), np.asarray(y)
    if metric == "voc07_map":
        return 100.0 * voc07_map(decision, y)
    if decision.ndim == 2:
        decision = decision.argmax(axis=1)
    fn = accuracy if metric == "accuracy" else mean_class_accuracy
    return 100.0 * fn(decision, y)


def trapezoid_ap(
    ranked_db_indices: np.ndarray,
    positives: np.ndarray,
    junk: np.ndarray,
    query_self: int = -1,
) -> float:
    """Retrieval AP as compute_ap.cpp (Oxford) / holidays_map.py, in [0, 1].

    Trapezoid rule over the ranked list starting from precision 1 at recall 0; junk entries are
    skipped and do not advance the rank; the query itself (`query_self` >= 0) is removed from
    both the list and the positives. Positives absent from the list add nothing (truncated
    lists). No positives -> NaN (AP undefined; `evaluate_retrieval` rejects such queries).
    """
    ranked = np.asarray(ranked_db_indices).ravel()
    positives = np.unique(np.asarray(positives).ravel())
    junk = np.asarray(junk).ravel()
    if query_self >= 0:
        positives = positives[positives != query_self]
    if positives.size == 0:
        return float("nan")
    kept = ranked[~np.isin(ranked, junk) & (ranked != query_self)]
    j = np.flatnonzero(np.isin(kept, positives)).astype(np.float64)  # 0-based ranks of hits
    k = np.arange(j.size, dtype=np.float64)  # hits before each one
    prec_left = np.where(j == 0, 1.0, k / np.maximum(j, 1.0))
    prec_right = (k + 1.0) / (j + 1.0)
    return float(np.sum(prec_left + prec_right) / (2.0 * positives.size))


def ns_score(ranked_db_indices_top4: np.ndarray, positives_including_self: np.ndarray) -> float:
    """UKB N-S score of one query: how many of its group's images are in the top 4 (0..4).

    Only the first 4 entries of the ranking are looked at; the query itself counts.
    """
    top = np.asarray(ranked_db_indices_top4).ravel()[:4]
    if top.size < 4:
        raise ValueError(f"ranked_db_indices_top4 needs at least 4 entries; got {top.size}")
    if np.unique(top).size != 4:
        raise ValueError(f"ranked_db_indices_top4 repeats an index: {top}")
    return float(np.isin(top, np.asarray(positives_including_self).ravel()).sum())


def bootstrap_replicates(
    stat_fn: Callable[[np.ndarray], float | np.ndarray],
    n: int,
    n_boot: int = 200,
    seed: int = 0,
    vectorized: bool = False,
) -> np.ndarray:
    """The statistic on `n_boot` resamples (with replacement) of `n` test items, (n_boot,).

    The resamples depend only on (n, n_boot, seed), so every level of a task, scored on the
    same test items with the same seed, gets the *same* resamples: replicate b of two levels
    is a paired draw, and their difference has the test-set noise of the difference only.
    `stat_fn(idx)` gets an index array of length n; with `vectorized=True` all draws at once,
    (n_boot, n), returning (n_boot,). NaN (a resample without positives) is kept.
    """
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be >= 1")
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    if vectorized:
        stats = np.asarray(stat_fn(idx), dtype=np.float64)
        if stats.shape != (n_boot,):
            raise ValueError(
                f"vectorized stat_fn returned shape {stats.shape}; expected ({n_boot},)"
            )
        return stats
    return np.array([stat_fn(row) for row in idx], dtype=np.float64)


def percentile_interval(replicates: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The (alpha/2, 1 - alpha/2) percentiles of the finite replicates; NaN if there are none."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} must be in (0, 1)")
    stats = np.asarray(replicates, dtype=np.float64)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_ci(
    stat_fn: Callable[[np.ndarray], float | np.ndarray],
    n: int,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    vectorized: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic over `n` test items (see
    `bootstrap_replicates`; NaN replicates are ignored)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} must be in (0, 1)")
    return percentile_interval(bootstrap_replicates(stat_fn, n, n_boot, seed, vectorized), alpha)


def logme(features: np.ndarray, targets: np.ndarray, iterations: int = 20) -> float:
    """LogME (You et al., 2021): the log marginal evidence per sample of a Bayesian linear
    model from `features` (N, D) to each target column, averaged over columns.

    `targets`: class labels (N,) (one-hot columns are made) or an (N, K) 0/1 label matrix.
    Higher means the features transfer more readily to the task; it needs no probe fit.
    """
    f = np.asarray(features, np.float64)
    y = np.asarray(targets)
    if y.ndim == 1:
        y = (y[:, None] == np.unique(y)[None, :]).astype(np.float64)
    y = y.astype(np.float64)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for k in range(y.shape[1]):
        proj = u.T @ y[:, k]
        rest = float(y[:, k] @ y[:, k] - proj @ proj)  # the part of y outside F's span
        alpha, beta = 1.0, 1.0
        for _ in range(iterations):
            gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
            m2 = float(np.sum((beta * s * proj / (alpha + beta * sigma)) ** 2))
            res = float(np.sum((proj * alpha / (alpha + beta * sigma)) ** 2)) + rest
            alpha = gamma / max(m2, 1e-12)
            beta = (n - gamma) / max(res, 1e-12)
        m2 = float(np.sum((beta * s * proj / (alpha + beta * sigma)) ** 2))
        res = float(np.sum((proj * alpha / (alpha + beta * sigma)) ** 2)) + rest
        log_det = float(np.sum(np.log(alpha + beta * sigma))) + (d - len(sigma)) * np.log(alpha)
        evidence = (n * np.log(beta) + d * np.log(alpha) - n * np.log(2 * np.pi)
                    - beta * res - alpha * m2 - log_det) / 2
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def _sklearn_ap(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score  # imported when used (start-up time)

    return float(average_precision_score(y, scores))
