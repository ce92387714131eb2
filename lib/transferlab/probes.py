"""Linear SVM probes as in the paper (section 5): liblinear through scikit-learn's LinearSVC.

Single-label tasks: one-vs-one SVMs and voting (ties broken by summed confidence, as
scikit-learn's OneVsOneClassifier). Multi-label tasks: one-vs-all SVMs. C is chosen by k-fold
cross-validation on the training rows only, one C shared by all the binary SVMs of a task,
maximizing the task's metric (mean over folds).

Why it is fast: a linear SVM's weights lie in the span of its training rows (plus the bias
feature), so when a binary problem has fewer rows m than features, we hand liblinear the
m x r coordinates of the rows in an orthonormal basis of that span (r <= m) instead of the
m x d rows. The optimization problem is the same (same Gram matrix, same objective, the bias
regularized as liblinear's intercept_scaling=1 does), only cheaper: each pairwise problem
becomes ~60 x 60 instead of ~60 x 2048. All bases come from one Gram matrix of the training
split, computed once per fit; the d-dimensional weights are formed only at the end.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.linalg
import scipy.sparse
from threadpoolctl import threadpool_limits

from . import metrics

KINDS = ("single-label", "multi-label")
METRICS_BY_KIND = {
    "single-label": ("accuracy", "mean_class_accuracy"),
    "multi-label": ("voc07_map",),
}
_EIG_RTOL = 1e-10  # eigenvalues below this fraction of the largest carry no training data
_BATCH_NNZ = 2_000_000  # span entries per joint liblinear problem (memory ~ 12 bytes each)
_CHOL_RTOL = 1e-4  # a Cholesky pivot this small means near-duplicate rows: use the eigenbasis


@dataclass(frozen=True)
class ProbeConfig:
    """How a probe is trained. `Cs` is the grid cross-validated over (sorted; ties -> smaller C)."""

    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    folds: int = 4
    seed: int = 0
    tol: float = 1e-4  # liblinear's default stopping tolerance
    max_iter: int = 1000

    def __post_init__(self) -> None:
        if not self.Cs or any(not (c > 0 and np.isfinite(c)) for c in self.Cs):
            raise ValueError(f"Cs={self.Cs!r} must be a non-empty tuple of positive numbers")
        if self.folds < 2:
            raise ValueError(f"folds={self.folds} must be >= 2")
        if not self.tol > 0:
            raise ValueError(f"tol={self.tol} must be > 0")
        if self.max_iter < 1:
            raise ValueError(f"max_iter={self.max_iter} must be >= 1")


class LinearProbe:
    """A linear SVM probe for one task.

    kind: "single-label" (Y: int labels 0..K-1, every class present in training) or
    "multi-label" (Y: (N, K) in {0, 1}, every label with a positive and a negative).
    metric: the task's metric used to choose C; default "accuracy" / "voc07_map".

    After `fit`: best_C_, cv_score_ (CV score of best_C_, in percent), cv_scores_ ({C: score}),
    strategy_ ("ovo" | "ovr"), pairs_ (ovo: the (i, j) class pair of each SVM, j positive),
    coef_ (n_svms, d), intercept_ (n_svms,), n_classes_.
    """

    def __init__(self, kind: str, metric: str | None = None, config: ProbeConfig = ProbeConfig()):
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not one of {KINDS}")
        valid = METRICS_BY_KIND[kind]
        metric = valid[0] if metric is None else metric
        if metric not in valid:
            raise ValueError(f"metric={metric!r} is not valid for kind={kind!r}; choose from {valid}")
        if not isinstance(config, ProbeConfig):
            raise ValueError(f"config must be a ProbeConfig, got {type(config).__name__}")
        self.kind, self.metric, self.config = kind, metric, config

    # ---- public API -----------------------------------------------------------------------

    def fit(self, X: np.ndarray, Y: np.ndarray) -> LinearProbe:
        """Choose C by cross-validation on (X, Y), then train on all of it."""
        X, Y = self._check_xy(X, Y)
        cfg = self.config
        Cs = tuple(sorted(cfg.Cs))
        backend = _backend(X)
        targets = self._binary_problems(Y)
        folds = self._folds(Y)
        scores = np.zeros((len(folds), len(Cs)))
        with threadpool_limits(1):  # many tiny BLAS/LAPACK calls: threads only add overhead
            for f, (tr, te) in enumerate(folds):
                scores[f] = self._cv_fold(backend, targets, tr, te, Cs, Y)
        mean = scores.mean(axis=0)
        best = int(np.argmax(mean))  # first maximum: the smallest C among ties
        self.cv_scores_ = dict(zip(Cs, mean.tolist(), strict=True))
        self.best_C_, self.cv_score_ = Cs[best], float(mean[best])
        with threadpool_limits(1):
            final = backend.fit_many(targets, (Cs[best],), cfg)
            W = np.stack([backend.weights(m[0]) for m in final])
        self.coef_, self.intercept_ = W[:, :-1].astype(np.float32), W[:, -1].astype(np.float32)
        self.n_features_in_ = X.shape[1]
        return self

    def decision(self, X: np.ndarray) -> np.ndarray:
        """(N, K) scores: ovo votes plus a tie-breaking confidence in (-1/3, 1/3); ovr SVM scores."""
        if not hasattr(self, "coef_"):
            raise ValueError("this LinearProbe is not fitted yet: call fit(X, Y) first")
        X = _as_features(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; the probe was fit on {self.n_features_in_}")
        return self._combine(X @ self.coef_.T + self.intercept_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Single-label: class index (N,). Multi-label: (N, K) uint8, positive where score > 0."""
        d = self.decision(X)
        if self.kind == "single-label":
            return d.argmax(axis=1)
        return (d > 0).astype(np.uint8)

    # ---- internals ------------------------------------------------------------------------

    def _check_xy(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X, Y = _as_features(X), np.asarray(Y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        if self.kind == "single-label":
            if Y.ndim != 1 or not np.issubdtype(Y.dtype, np.integer):
                raise ValueError(f"single-label Y must be 1-D integer class indices; got {Y.dtype} {Y.shape}")
            present = np.unique(Y)
            if present.size < 2 or not np.array_equal(present, np.arange(present.size)):
                raise ValueError(
                    f"single-label Y must hold every class 0..K-1 (K >= 2); got classes {present}"
                )
            if np.bincount(Y).min() < self.config.folds:
                warnings.warn(
                    f"a class has fewer than folds={self.config.folds} training examples",
                    stacklevel=2,
                )
            self.n_classes_ = int(present.size)
            self.strategy_ = "ovo"
            self.pairs_ = list(combinations(range(self.n_classes_), 2))
        else:
            if Y.ndim != 2 or not np.isin(Y, (0, 1)).all():
                raise ValueError(f"multi-label Y must be (N, K) in {{0, 1}}; got {Y.dtype} {Y.shape}")
            pos = Y.sum(axis=0)
            bad = np.flatnonzero((pos == 0) | (pos == Y.shape[0]))
            if bad.size:
                raise ValueError(f"multi-label Y columns {bad.tolist()} lack positives or negatives")
            self.n_classes_ = Y.shape[1]
            self.strategy_ = "ovr"
            self.pairs_ = []
        if X.shape[0] < self.config.folds:
            raise ValueError(f"{X.shape[0]} training rows cannot make folds={self.config.folds}")
        return X, Y

    def _cv_fold(self, backend, targets, tr, te, Cs, Y) -> np.ndarray:
        """The task metric on held-out rows `te` of the SVMs trained on rows `tr`, per C."""
        problems = []
        for rows, yb in targets:
            sub = np.intersect1d(rows, tr, assume_unique=True)
            problems.append((sub, yb[np.searchsorted(rows, sub)]))
        models = backend.fit_many(problems, Cs, self.config)
        dec = np.zeros((len(Cs), te.size, len(targets)))
        for t, per_c in enumerate(models):
            for c, model in enumerate(per_c):
                dec[c, :, t] = backend.decide(te, model)
        return np.array([self._score(self._combine(dec[c]), Y[te]) for c in range(len(Cs))])

    def _binary_problems(self, Y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rows, labels in {-1, 1}) of each binary SVM; rows sorted."""
        if self.strategy_ == "ovr":
            rows = np.arange(Y.shape[0])
            return [(rows, np.where(Y[:, k] == 1, 1, -1)) for k in range(self.n_classes_)]
        out = []
        for i, j in self.pairs_:
            rows = np.flatnonzero((Y == i) | (Y == j))
            out.append((rows, np.where(Y[rows] == j, 1, -1)))
        return out

    def _folds(self, Y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        # scikit-learn is imported where a probe is fitted: a notebook that reads cached
        # scores does not pay its import time
        from sklearn.model_selection import KFold, StratifiedKFold

        cfg = self.config
        if self.kind == "single-label":
            splitter = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
        else:
            splitter = KFold(cfg.folds, shuffle=True, random_state=cfg.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # rare classes: warned about in fit
            return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(len(Y)), Y)]

    def _combine(self, svm_scores: np.ndarray) -> np.ndarray:
        if self.strategy_ == "ovr":
            return svm_scores
        return _ovo_votes(svm_scores, self.pairs_, self.n_classes_)

    def _score(self, decision: np.ndarray, y: np.ndarray) -> float:
        return metrics.classification_score(self.metric, decision, y)


def _ovo_votes(conf: np.ndarray, pairs: list[tuple[int, int]], k: int) -> np.ndarray:
    """Votes plus sum of confidences squashed into (-1/3, 1/3), as OneVsOneClassifier."""
    i, j = np.array(pairs).T
    n = conf.shape[0]
    votes = np.zeros((n, k))
    sums = np.zeros((n, k))
    pos = conf > 0
    np.add.at(votes.T, j, pos.T.astype(float))
    np.add.at(votes.T, i, (~pos).T.astype(float))
    np.add.at(sums.T, j, conf.T)
    np.add.at(sums.T, i, -conf.T)
    return votes + sums / (3 * (np.abs(sums) + 1))


def _as_features(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty (N, D) feature matrix; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf")
    return X.astype(np.float32, copy=False)


def _liblinear(Z, y: np.ndarray, C: float, cfg: ProbeConfig) -> np.ndarray:
    """liblinear squared-hinge L2 SVM without its own intercept (the bias is a column of Z)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    svc = LinearSVC(
        C=C,
        loss="squared_hinge",
        dual=Z.shape[0] <= Z.shape[1],  # dual coordinate descent when rows <= features
        fit_intercept=False,
        tol=cfg.tol,
        max_iter=cfg.max_iter,
        random_state=cfg.seed,
    )
    with warnings.catch_warnings():
        # large C on hard data may stop at max_iter; its CV score says whether that matters
        warnings.simplefilter("ignore", ConvergenceWarning)
        svc.fit(Z, y)
    return svc.coef_[0].astype(np.float64)


def _span_basis(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Z, T) with Z Z^T = G (row coordinates in an orthonormal basis of the rows' span) and
    T mapping a solution beta in those coordinates to dual-like weights: w = Xa.T @ (T @ beta).

    Cholesky (G = L L^T: Z = L, T = L^-T) when G is well conditioned, else an eigenbasis that
    drops the null space (duplicate rows).
    """
    try:
        L = np.linalg.cholesky(G)
        diag = np.diag(L)
        if diag.min() > _CHOL_RTOL * diag.max():
            T = scipy.linalg.solve_triangular(L, np.eye(len(G)), lower=True, trans="T")
            return L, T
    except np.linalg.LinAlgError:
        pass
    lam, U = np.linalg.eigh(G)
    keep = lam > _EIG_RTOL * lam[-1]
    U, root = U[:, keep], np.sqrt(lam[keep])
    return U * root, U / root


def _block_diagonal(blocks: list[np.ndarray]) -> scipy.sparse.csr_matrix:
    """Dense blocks on the diagonal of one sparse matrix, structural zeros dropped."""
    rows, cols, vals = [], [], []
    r0 = c0 = 0
    for B in blocks:
        i, j = np.nonzero(B)
        rows.append(i + r0)
        cols.append(j + c0)
        vals.append(B[i, j])
        r0, c0 = r0 + B.shape[0], c0 + B.shape[1]
    coo = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
    return scipy.sparse.csr_matrix(coo, shape=(r0, c0))


class _Backend:
    """Fits binary SVMs on row subsets of the training set and scores other training rows.

    A model is a float (a constant SVM, for a CV fold holding one class only) or backend data.
    """

    def __init__(self, Xa: np.ndarray):
        self.Xa = Xa

    def fit_many(self, problems, Cs, cfg) -> list[list]:
        """models[t][c] for problem t = (rows, y in {-1, 1}) and C = Cs[c]."""
        models: list[list] = [[float(y[0])] * len(Cs) for _, y in problems]
        live = [t for t, (_, y) in enumerate(problems) if np.any(y != y[0])]
        self._fit_live(problems, live, Cs, cfg, models)
        return models

    def decide(self, rows: np.ndarray, model) -> np.ndarray:
        if isinstance(model, float):
            return np.full(rows.size, model)
        return self._decide(rows, model)

    def weights(self, model) -> np.ndarray:
        if isinstance(model, float):
            w = np.zeros(self.Xa.shape[1])
            w[-1] = model
            return w
        return self._weights(model)


class _SpanBackend(_Backend):
    """Rows fewer than features: solve each SVM in the span of its rows (one Gram matrix).

    Small problems (one-vs-one pairs) are solved together: their span coordinates are the
    diagonal blocks of one sparse problem, whose objective is the sum of theirs, so one
    liblinear call per C replaces hundreds (the per-call overhead dominated).
    """

    def __init__(self, Xa: np.ndarray):
        super().__init__(Xa)
        self.G = Xa @ Xa.T
        self._basis_rows = np.empty(0, dtype=np.intp)
        self._basis: tuple[np.ndarray, np.ndarray] | None = None
        self._basis_csr: scipy.sparse.csr_matrix | None = None

    def _span(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # one-vs-all SVMs of a fold share their rows: reuse the last basis
        if self._basis is None or not np.array_equal(rows, self._basis_rows):
            self._basis_rows, self._basis = rows, _span_basis(self.G[np.ix_(rows, rows)])
            self._basis_csr = None
        return self._basis

    def _span_csr(self, rows: np.ndarray) -> scipy.sparse.csr_matrix:
        # sparse, so that liblinear skips the zero half of a Cholesky factor
        self._span(rows)
        if self._basis_csr is None:
            self._basis_csr = scipy.sparse.csr_matrix(self._basis[0])
        return self._basis_csr

    def _fit_live(self, problems, live, Cs, cfg, models) -> None:
        for batch in _batches([problems[t][0].size for t in live], _BATCH_NNZ):
            ts = [live[b] for b in batch]
            bases = [self._span(problems[t][0]) for t in ts]
            if len(ts) == 1:
                Z = self._span_csr(problems[ts[0]][0])
            else:
                Z = _block_diagonal([z for z, _ in bases])
            y = np.concatenate([problems[t][1] for t in ts])
            ends = np.cumsum([z.shape[1] for z, _ in bases])[:-1]
            for c, C in enumerate(Cs):
                betas = np.split(_liblinear(Z, y, C, cfg), ends)
                for t, (_, T), beta in zip(ts, bases, betas, strict=True):
                    models[t][c] = (problems[t][0], T @ beta)

    def _decide(self, rows, model):
        sub, alpha = model
        return self.G[np.ix_(rows, sub)] @ alpha

    def _weights(self, model):
        sub, alpha = model
        return self.Xa[sub].T @ alpha


class _PrimalBackend(_Backend):
    """Rows at least as many as features: plain liblinear on the rows with a bias column."""

    def _fit_live(self, problems, live, Cs, cfg, models) -> None:
        for t in live:
            rows, y = problems[t]
            for c, C in enumerate(Cs):
                models[t][c] = _liblinear(self.Xa[rows], y, C, cfg)

    def _decide(self, rows, w):
        return self.Xa[rows] @ w

    def _weights(self, w):
        return w


def _batches(sizes: list[int], budget: int) -> list[list[int]]:
    """Consecutive groups of small problems whose span blocks (m x m) fit the budget; a problem
    over a tenth of the budget is solved alone (it amortizes liblinear's overhead itself)."""
    out: list[list[int]] = []
    used = budget
    for i, m in enumerate(sizes):
        if used + m * m > budget or m * m > budget // 10:
            out.append([])
            used = 0
        out[-1].append(i)
        used += m * m
    return out


def _backend(X: np.ndarray) -> _Backend:
    Xa = np.hstack([X.astype(np.float64), np.ones((X.shape[0], 1))])  # liblinear's bias feature
    return _SpanBackend(Xa) if X.shape[0] <= Xa.shape[1] else _PrimalBackend(Xa)
