"""Benchmark: LinearProbe vs. a VISSL-style SVM sweep and vs. a naive scikit-learn set-up.

Same synthetic-but-realistic features for all (ReLU features of a latent class structure,
L2 + signed square root as upstream): a 40-class single-label task (30 train / 30 test
images per class) and a 20-label multi-label task (1200 / 1200 images), 2048-d.

- ours: LinearProbe with its default ProbeConfig (5 values of C, 4-fold CV, OvO / OvR).
- vissl: per class one-vs-rest LinearSVC (scikit-learn defaults), 10 values of C over the same
  range, 4-fold CV by average precision per class, a final fit for every C (as VISSL's
  SVMTrainer does), per-class best C; single-label prediction = argmax of the class scores.
- naive: the paper's protocol written plainly with scikit-learn: GridSearchCV over ours' C grid
  of OneVsOneClassifier / OneVsRestClassifier(LinearSVC) -- the same SVMs as ours.

Run: .venv/bin/python bench/bench_probes.py [--quick]. Prints a markdown table. Timings on a
shared machine are noisy: read the ratios (measured in one run), not the absolute seconds.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.svm import LinearSVC
from transferlab.metrics import classification_score, mean_class_accuracy
from transferlab.probes import LinearProbe, ProbeConfig

VISSL_CS = tuple(np.logspace(-3, 1, 10))  # 10 values over ours' range 1e-3 .. 10


def postprocess(F: np.ndarray) -> np.ndarray:
    F = F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)
    return (np.sign(F) * np.sqrt(np.abs(F))).astype(np.float32)


def _relu_features(z: np.ndarray, W: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return postprocess(np.maximum(z @ W + 0.5 * rng.normal(size=(len(z), W.shape[1])) - 0.3, 0))


def single_label_task(n_classes=40, per_class=30, d=2048, latent=128, noise=3.5, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(latent, d)) / np.sqrt(latent)
    mu = rng.normal(size=(n_classes, latent))

    def draw():
        y = np.repeat(np.arange(n_classes), per_class)
        return _relu_features(mu[y] + noise * rng.normal(size=(y.size, latent)), W, rng), y

    return draw(), draw()


def multi_label_task(n_labels=20, n=1200, d=2048, latent=128, noise=5.0, seed=1):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(latent, d)) / np.sqrt(latent)
    mu = rng.normal(size=(n_labels, latent))

    def draw():
        Y = (rng.random((n, n_labels)) < 0.08).astype(np.uint8)
        Y[np.arange(n), rng.integers(0, n_labels, n)] = 1
        return _relu_features(Y @ mu + noise * rng.normal(size=(n, latent)), W, rng), Y

    return draw(), draw()


def vissl_sweep(X, Y, Cs=VISSL_CS, folds=4):
    """Per-class OvR LinearSVC, CV average precision per (class, C), per-class best C."""
    models = []
    for k in range(Y.shape[1]):
        y = np.where(Y[:, k] == 1, 1, -1)
        best = (-np.inf, None)
        for C in Cs:
            clf = LinearSVC(C=C, random_state=0)
            ap = cross_val_score(clf, X, y, cv=folds, scoring="average_precision").mean()
            clf.fit(X, y)  # VISSL trains the final model for every C, then picks
            best = max(best, (ap, clf), key=lambda t: t[0])
        models.append(best[1])
    return lambda Xt: np.stack([m.decision_function(Xt) for m in models], axis=1)


def naive_protocol(X, y, kind, Cs, folds=4, seed=0):
    """The same protocol as LinearProbe, written plainly with scikit-learn."""
    if kind == "single-label":
        est = OneVsOneClassifier(LinearSVC(random_state=seed))
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        scoring = "accuracy"
    else:
        est = OneVsRestClassifier(LinearSVC(random_state=seed))
        cv = KFold(folds, shuffle=True, random_state=seed)
        scoring = make_scorer(
            lambda yt, s: classification_score("voc07_map", s, yt), response_method="decision_function"
        )
    grid = GridSearchCV(est, {"estimator__C": list(Cs)}, cv=cv, scoring=scoring, n_jobs=1)
    return grid.fit(X, y)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def run(quick: bool) -> list[dict]:
    rows = []
    sl = single_label_task(n_classes=10 if quick else 40)
    ml = multi_label_task(n=400 if quick else 1200)
    cfg = ProbeConfig()
    for kind, ((Xtr, ytr), (Xte, yte)) in (("single-label", sl), ("multi-label", ml)):
        metric = "accuracy" if kind == "single-label" else "voc07_map"
        probe, t_ours = timed(lambda: LinearProbe(kind, config=cfg).fit(Xtr, ytr))  # noqa: B023
        ours = classification_score(metric, probe.decision(Xte), yte)
        naive, t_naive = timed(lambda: naive_protocol(Xtr, ytr, kind, cfg.Cs))  # noqa: B023
        if kind == "single-label":
            naive_score = classification_score(metric, naive.predict(Xte), yte)
            Ytr = np.eye(ytr.max() + 1, dtype=np.uint8)[ytr]
        else:
            naive_score = classification_score(metric, naive.decision_function(Xte), yte)
            Ytr = ytr
        vissl, t_vissl = timed(lambda: vissl_sweep(Xtr, Ytr))  # noqa: B023
        vissl_score = classification_score(metric, vissl(Xte), yte)
        extra = {}
        if kind == "single-label":
            extra = {
                "ours_mca": 100 * mean_class_accuracy(probe.predict(Xte), yte),
                "vissl_mca": 100 * mean_class_accuracy(vissl(Xte).argmax(1), yte),
            }
        rows.append(
            dict(
                task=kind,
                shape=f"{Xtr.shape[0]}x{Xtr.shape[1]}",
                metric=metric,
                t_ours=t_ours,
                t_naive=t_naive,
                t_vissl=t_vissl,
                ours=ours,
                naive=naive_score,
                vissl=vissl_score,
                best_C=probe.best_C_,
                naive_C=naive.best_params_["estimator__C"],
                cv=probe.cv_score_,
                naive_cv=100 * naive.best_score_ if kind == "single-label" else naive.best_score_,
                **extra,
            )
        )
    return rows


def markdown(rows: list[dict]) -> str:
    head = (
        "| task (train N x D) | metric | ours s | naive s | VISSL-style s | VISSL / ours "
        "| naive / ours | test: ours | naive | VISSL-style | C: ours / naive |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['task']} ({r['shape']}) | {r['metric']} | {r['t_ours']:.1f} | {r['t_naive']:.1f} "
            f"| {r['t_vissl']:.1f} | **{r['t_vissl'] / r['t_ours']:.1f}x** "
            f"| {r['t_naive'] / r['t_ours']:.1f}x | {r['ours']:.1f} | {r['naive']:.1f} "
            f"| {r['vissl']:.1f} | {r['best_C']:g} / {r['naive_C']:g} |"
        )
    for r in rows:
        if "ours_mca" in r:
            lines.append(
                f"\n{r['task']}: mean class accuracy ours {r['ours_mca']:.1f}, "
                f"VISSL-style {r['vissl_mca']:.1f}; CV score of chosen C ours {r['cv']:.1f}, "
                f"naive {r['naive_cv']:.1f}"
            )
        else:
            lines.append(f"\n{r['task']}: CV score of chosen C ours {r['cv']:.1f}, naive {r['naive_cv']:.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small tasks (a smoke run)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(
        f"# bench_probes on {platform.node()} ({platform.processor() or platform.machine()}), "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print(markdown(run(args.quick)))


if __name__ == "__main__":
    main()
