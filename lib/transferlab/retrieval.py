"""Instance retrieval as in the paper (section 5, after Jegou & Chum 2012).

Features are L2-normalized, projected by PCA with whitening fitted on held-out images (a
task's "train" split: other instances, never the queries), L2-normalized again, and ranked by
Euclidean distance. With spatial search each image is a stack of 30 sub-patch embeddings and
the distance of two images is the minimum over pairs of sub-patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics
from .pca import PCA, check_rows, fit_pca, fit_rows, image_rows, row_blocks
from .tasks import RetrievalTruth

RETRIEVAL_METRICS = ("retrieval_map", "ns_score")
# One block of spatial distances (temporaries: ~3x this). 16 MiB gives the same bits as 64 and
# was faster on a quick-profile retrieval split (the block stays in cache), with ~150 MiB less.
_CHUNK_BYTES = 16 * 2**20
_EMBED_ROWS = 4096  # rows embedded at a time: float64 temporaries of a block, not of a split


@dataclass(frozen=True)
class RetrievalConfig:
    """pca_dim: output dimension (None = all non-null components); whiten: scale each
    component to unit variance; spatial: compare 30 sub-patches per image."""

    pca_dim: int | None = None
    whiten: bool = True
    spatial: bool = False

    def __post_init__(self) -> None:
        if self.pca_dim is not None and self.pca_dim < 1:
            raise ValueError(f"pca_dim={self.pca_dim} must be >= 1 or None (full)")


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows (last axis) to unit length; zero rows stay zero."""
    norm = np.linalg.norm(X, axis=-1, keepdims=True)
    return X / np.maximum(norm, 1e-12)


def fit_whitening(X_fit: np.ndarray, dim: int | None = None, whiten: bool = True,
                  images: np.ndarray | None = None) -> PCA:
    """PCA (with whitening) of the L2-normalized rows of `X_fit`, (N, D) or (N, P, D).

    Fit it on held-out images, never on the queries. `dim` None keeps every non-null
    component (see `pca.fit_pca` for the rank, the eigenvalue floor and subsampling).
    `images`: fit on these images of `X_fit` only (indices on its first axis).
    """
    # Subsampled first: normalising rows commutes with choosing them, and a split's patch
    # features (36,000 rows of 2,048 at 32 px) need not be copied whole.
    rows = fit_rows(check_rows(X_fit, "X_fit"), images)
    X = rows.astype(np.float32, copy=np.may_share_memory(rows, X_fit))  # a copy of one's own
    return fit_pca(_l2_in_place(X), dim, whiten=whiten)


def embed(X: np.ndarray, whitening: PCA | None, images: np.ndarray | None = None) -> np.ndarray:
    """L2 -> PCA-whiten -> L2 on the last axis, float32. `whitening` None: L2 only.
    `images`: embed these images of `X` only (indices on its first axis), in that order.

    Computed in float64 a block of rows at a time: each row's result depends on that row
    alone, and a split's patch rows in float64 would be ~0.3 GB beside their float32 copy.
    """
    X = check_rows(X, "X")
    flat = X.reshape(-1, X.shape[-1])
    shape = X.shape[:-1] if images is None else (len(images), *X.shape[1:-1])
    rows = None if images is None else image_rows(images, len(flat) // len(X))
    n = len(flat) if rows is None else len(rows)
    dim = flat.shape[1] if whitening is None else whitening.dim
    out = np.empty((n, dim), dtype=np.float32)
    for r in range(0, n, _EMBED_ROWS):
        picked = flat[r : r + _EMBED_ROWS] if rows is None else flat[rows[r : r + _EMBED_ROWS]]
        block = _l2_in_place(picked.astype(np.float64))
        if whitening is not None:
            block = _l2_in_place(whitening.transform(block, overwrite_input=True))
        out[r : r + _EMBED_ROWS] = block
    return out.reshape(*shape, dim)


def _l2_in_place(X: np.ndarray) -> np.ndarray:
    """`l2_normalize` on a C-contiguous array of one's own, a block of rows at a time (the
    norm squares its input into a temporary as large as the block): patch stacks."""
    for block in row_blocks(X.reshape(-1, X.shape[-1])):
        block /= np.maximum(np.linalg.norm(block, axis=-1, keepdims=True), 1e-12)
    return X


def euclidean_distances(query_emb: np.ndarray, db_emb: np.ndarray) -> np.ndarray:
    """(Q, N) Euclidean distances between rows."""
    q = np.asarray(query_emb, dtype=np.float64)
    db = np.asarray(db_emb, dtype=np.float64)
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
        raise ValueError(f"need (Q, D) and (N, D) embeddings; got {q.shape} and {db.shape}")
    sq = (q * q).sum(1)[:, None] + (db * db).sum(1)[None, :] - 2.0 * (q @ db.T)
    return np.sqrt(np.maximum(sq, 0.0))


def rank(query_emb: np.ndarray, db_emb: np.ndarray) -> np.ndarray:
    """(Q, N) database indices, nearest first (ties by index)."""
    return np.argsort(euclidean_distances(query_emb, db_emb), axis=1, kind="stable")


def subpatch_boxes() -> np.ndarray:
    """The 30 sub-patches of spatial search, (30, 4) fractional (y0, x0, y1, x1).

    For k in 1..4: a k x k grid of square windows of side 2/(k+1) at stride 1/(k+1), i.e.
    1 window of area 1, 4 of 4/9, 9 of 4/16 and 16 of 4/25 of the image.
    """
    boxes = []
    for k in range(1, 5):
        side, step = 2.0 / (k + 1), 1.0 / (k + 1)
        for i in range(k):
            for j in range(k):
                boxes.append((i * step, j * step, i * step + side, j * step + side))
    return np.clip(np.array(boxes), 0.0, 1.0)


def spatial_distance(q_patches: np.ndarray, db_patches: np.ndarray) -> np.ndarray:
    """(Q, N): min over sub-patch pairs of the Euclidean distance, computed in memory-bounded
    blocks. q_patches (Q, P, D), db_patches (N, P', D)."""
    q = np.asarray(q_patches, dtype=np.float32)
    db = np.asarray(db_patches, dtype=np.float32)
    if q.ndim != 3 or db.ndim != 3 or q.shape[2] != db.shape[2]:
        raise ValueError(f"need (Q, P, D) and (N, P, D) patch embeddings; got {q.shape}, {db.shape}")
    (nq, pq, d), (nd, pd, _) = q.shape, db.shape
    qf, dbf = q.reshape(nq * pq, d), db.reshape(nd * pd, d)
    qn, dn = (qf * qf).sum(1), (dbf * dbf).sum(1)
    # block of qb queries x nb database images: qb*pq*nb*pd float32 values
    per_pair = pq * pd * 4
    nb = int(max(1, min(nd, _CHUNK_BYTES // per_pair)))
    qb = int(max(1, min(nq, _CHUNK_BYTES // (per_pair * nb))))
    out = np.empty((nq, nd), dtype=np.float64)
    for q0 in range(0, nq, qb):
        qs = slice(q0 * pq, min(nq, q0 + qb) * pq)
        for d0 in range(0, nd, nb):
            ds = slice(d0 * pd, min(nd, d0 + nb) * pd)
            sq = qn[qs, None] + dn[None, ds] - 2.0 * (qf[qs] @ dbf[ds].T)
            nqb, ndb = sq.shape[0] // pq, sq.shape[1] // pd
            best = sq.reshape(nqb, pq, ndb, pd).min(axis=(1, 3))
            out[q0 : q0 + nqb, d0 : d0 + ndb] = best
    return np.sqrt(np.maximum(out, 0.0))


def retrieval_distances(
    train: np.ndarray, database: np.ndarray, query: np.ndarray, config: RetrievalConfig
) -> np.ndarray:
    """(Q, N) distances of a retrieval task under `config`.

    Whitening is fitted on `train` only (held-out images), so neither the queries nor the
    database influence the embedding. With `config.spatial` the inputs are (N, 30, D) patch
    features in `subpatch_boxes()` order and the whitening is fitted on all train patches.
    """
    want = 3 if config.spatial else 2
    for name, arr in (("train", train), ("database", database), ("query", query)):
        if np.ndim(arr) != want:
            raise ValueError(
                f"{name} must be {'(N, P, D) patch' if config.spatial else '(N, D)'} features "
                f"with spatial={config.spatial}; got shape {np.shape(arr)}"
            )
    whitening = whitening_of(train, config)
    return embedded_distances(embed(query, whitening), embed(database, whitening), config)


def whitening_of(train: np.ndarray, config: RetrievalConfig,
                 images: np.ndarray | None = None) -> PCA | None:
    """The PCA `config` asks for, fitted on `train` (its `images` only, if given); None
    where it asks for neither whitening nor reduction (L2 only)."""
    if config.whiten or config.pca_dim is not None:
        return fit_whitening(train, config.pca_dim, whiten=config.whiten, images=images)
    return None


def embedded_distances(query: np.ndarray, database: np.ndarray,
                       config: RetrievalConfig) -> np.ndarray:
    """(Q, N) distances between embeddings (`embed`): image rows, or sub-patch stacks with
    `config.spatial`."""
    if config.spatial:
        return spatial_distance(query, database)
    return euclidean_distances(query, database)


def evaluate_retrieval(metric: str, dist: np.ndarray, truth: RetrievalTruth) -> tuple[float, np.ndarray]:
    """(score, per-query values) of a retrieval task from its (Q, N) distances.

    "retrieval_map": mean trapezoid AP in percent (the query itself ignored, junk skipped);
    every query needs a positive other than itself. "ns_score": mean UKB N-S score, 0..4, the
    query itself (truth.query_in_db) counting as one of its group.
    """
    if metric not in RETRIEVAL_METRICS:
        raise ValueError(f"metric={metric!r} is not one of {RETRIEVAL_METRICS}")
    dist = np.asarray(dist)
    nq = len(truth.positives)
    if dist.ndim != 2 or dist.shape[0] != nq:
        raise ValueError(f"dist must be (Q, N) with Q={nq} queries in truth; got {dist.shape}")
    if len(truth.junk) != nq or len(truth.query_in_db) != nq:
        raise ValueError("truth.positives, truth.junk and truth.query_in_db differ in length")
    if metric == "ns_score" and dist.shape[1] < 4:
        raise ValueError(f"ns_score needs a database of at least 4 images; got {dist.shape[1]}")
    order = np.argsort(dist, axis=1, kind="stable")
    self_idx = np.asarray(truth.query_in_db).astype(int)
    if metric == "retrieval_map":
        per = np.array(
            [
                100.0 * metrics.trapezoid_ap(order[q], truth.positives[q], truth.junk[q], self_idx[q])
                for q in range(nq)
            ]
        )
        empty = np.flatnonzero(np.isnan(per))
        if empty.size:
            raise ValueError(f"queries {empty[:10].tolist()} have no positives besides themselves")
    else:
        per = np.array(
            [metrics.ns_score(order[q, :4], _with_self(truth.positives[q], self_idx[q])) for q in range(nq)]
        )
    return float(per.mean()), per


def _with_self(positives: np.ndarray, self_idx: int) -> np.ndarray:
    positives = np.asarray(positives).ravel()
    return np.append(positives, self_idx) if self_idx >= 0 else positives
