"""The one scoring path: post-processed features -> PCA -> probe or retrieval -> metric.

Every score of the study goes through `score`: the cells of every factor (transferlab.study,
on either backend) and the world card's raw-pixel baseline. Features come in post-processed
(`features.postprocess`: L2, signed square root), one array per split of the task.

A cell's outcome is its test score, the score on bootstrap resamples of the test items (the
same resamples for every representation of a task, so that claims can pair levels), their
95% interval, and a score cross-validated on the training split (for choices made without
the test split: Table 6, early stopping, PCA for retrieval).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from . import metrics, retrieval
from .pca import fit_pca
from .probes import LinearProbe, ProbeConfig
from .tasks import RetrievalTruth, TaskData


def score(data: TaskData, x: Mapping[str, np.ndarray], probe: ProbeConfig, n_boot: int,
          seed: int = 0, pca_dim: int | None = None,
          validation: RetrievalTruth | None = None) -> dict:
    """Score features `x` (split -> (N, D), or (N, 30, D) sub-patches for spatial search) on
    the task `data`: {score, ci_low, ci_high, cv_score, boot}.

    Classification: a linear probe (`probe`, its seed set to `seed`) on the train split, PCA
    to `pca_dim` fitted there first. Retrieval: PCA-whitening fitted on the train split
    (other instances), Euclidean ranking; `validation` (pairs of views among the train
    split's instances) gives its cross-validated score, NaN without it.
    """
    if data.spec.kind == "retrieval":
        return _retrieval(data, x, n_boot, seed, pca_dim, validation)
    return _classification(data, x, replace(probe, seed=seed), n_boot, seed, pca_dim)


def _classification(data: TaskData, x: Mapping[str, np.ndarray], probe: ProbeConfig,
                    n_boot: int, seed: int, pca_dim: int | None) -> dict:
    spec = data.spec
    xtr, xte = x["train"], x["test"]
    ytr, yte = data.labels["train"], data.labels["test"]
    if pca_dim:
        pca = fit_pca(xtr, pca_dim)
        xtr, xte = pca.transform(xtr), pca.transform(xte)
    fitted = LinearProbe(spec.kind, spec.metric, probe).fit(xtr, trainable_labels(ytr))
    dec = fitted.decision(xte)
    boot = metrics.bootstrap_replicates(lambda idx: _metric(spec.metric, dec[idx], yte[idx]),
                                        len(yte), n_boot=n_boot, seed=seed)
    return _scored(_metric(spec.metric, dec, yte), boot, fitted.cv_score_)


def _retrieval(data: TaskData, x: Mapping[str, np.ndarray], n_boot: int, seed: int,
               pca_dim: int | None, validation: RetrievalTruth | None) -> dict:
    config = retrieval.RetrievalConfig(pca_dim=pca_dim, spatial=x["train"].ndim == 3)
    dist = retrieval.retrieval_distances(x["train"], x["database"], x["query"], config)
    value, per_query = retrieval.evaluate_retrieval(data.spec.metric, dist, data.truth)
    boot = metrics.bootstrap_replicates(lambda idx: np.nanmean(per_query[idx], axis=1),
                                        len(per_query), n_boot=n_boot, seed=seed, vectorized=True)
    cv = float("nan") if validation is None else validation_score(x["train"], validation, config)
    return _scored(value, boot, cv)


def validation_score(x: np.ndarray, truth: RetrievalTruth,
                     config: retrieval.RetrievalConfig) -> float:
    """Two-fold retrieval mAP (%) on the train split's pairs of views of other instances.

    Whitening fitted on the very images it embeds makes them equidistant (n < d), so each
    half of the pairs is scored with whitening fitted on the other half. `x` holds image
    features (N, D) or sub-patch features (N, P, D). For every retrieval task, N-S included,
    this is a mAP: it only ranks one task's candidate settings against each other.
    """
    own = truth.query_in_db

    def views(pairs: np.ndarray) -> np.ndarray:  # each pair's two images, side by side
        return np.concatenate([[own[q], truth.positives[q][0]] for q in pairs])

    halves = np.array_split(np.arange(len(own)), 2)
    scores = []
    for fit, held in (halves, halves[::-1]):
        # Images picked by index as each step reads them: a copy of a split's sub-patch
        # features per half (~140 MB at 2,048 dimensions) is not needed.
        fit_images, held_images = views(fit), views(held)
        pairs = RetrievalTruth(tuple(np.array([2 * i + 1]) for i in range(len(held))),
                               tuple(np.zeros(0, np.int64) for _ in held),
                               np.arange(len(held)) * 2)
        emb = retrieval.embed(x, retrieval.whitening_of(x, config, fit_images), held_images)
        dist = retrieval.embedded_distances(emb[pairs.query_in_db], emb, config)
        scores.append(retrieval.evaluate_retrieval("retrieval_map", dist, pairs)[0])
    return float(np.mean(scores))


def trainable_labels(y: np.ndarray) -> np.ndarray:
    """Labels a probe trains on: VOC's int8 {1, 0 = difficult, -1} become {1, 0}."""
    return (y == 1).astype(np.uint8) if y.dtype == np.int8 else y


def _metric(metric: str, decision: np.ndarray, y: np.ndarray) -> float:
    """The task's metric; VOC-style int8 labels mark difficult images, which count as neither."""
    if y.dtype == np.int8:
        labels, difficult = metrics.voc_gt_split(y)
        return 100.0 * metrics.voc07_map(decision, labels, difficult)
    return metrics.classification_score(metric, decision, y)


def _scored(value: float, boot: np.ndarray, cv: float) -> dict:
    lo, hi = metrics.percentile_interval(boot)
    return {"score": value, "ci_low": lo, "ci_high": hi, "cv_score": cv,
            "boot": [float(b) for b in boot]}
