"""The one PCA of the study: dimensionality reduction (Figure 8) and retrieval whitening.

`fit_pca` fits on the rows it is given, as they are; callers decide what the rows are
(retrieval L2-normalizes them first, see `retrieval.fit_whitening`). Fitted on a training
split only, then applied to every split with `PCA.transform`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.linalg

_NULL_RTOL = 1e-10  # eigenvalues below this fraction of the largest are the null space: dropped
_WHITEN_RTOL = 1e-5  # floor (fraction of the largest) under eigenvalues before 1/sqrt
_MAX_FIT_ROWS = 20_000  # PCA fit rows beyond this add little and cost memory (N x D floats)
# Rows worked at a time where a whole array's temporary would be large (a split's sub-patch
# features). The covariance's accumulation order follows it: changing it changes bits.
BLOCK_ROWS = 4096


@dataclass(frozen=True, eq=False)
class PCA:
    """x -> (x - mean) @ components.T * scale on the last axis. Fitted by `fit_pca`."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D), rows orthonormal, by decreasing variance
    scale: np.ndarray  # (k,): 1/sqrt(eigenvalue) when whitening, else ones

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def truncate(self, dim: int) -> PCA:
        """The first `dim` components: equal to fitting with `dim`, without refitting (a PCA
        dimension sweep fits once at full size)."""
        if not 1 <= dim <= self.dim:
            raise ValueError(f"dim={dim} must be in 1..{self.dim}")
        return PCA(self.mean, self.components[:dim], self.scale[:dim])

    def transform(self, X: np.ndarray, *, overwrite_input: bool = False) -> np.ndarray:
        """Rows (last axis) of (N, D) or (N, P, D) projected, float64. `overwrite_input`: a
        float64 `X` of the caller's own is centred in place (a retrieval split's patch rows
        are ~0.3 GB in float64), not copied."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"X has {X.shape[-1]} features; the PCA was fit on {self.mean.shape[0]}")
        if overwrite_input and X.flags.writeable:
            X -= self.mean
        else:
            X = X - self.mean
        out = X @ self.components.T
        out *= self.scale
        return out


def fit_pca(X_fit: np.ndarray, dim: int | None = None, whiten: bool = False) -> PCA:
    """PCA of the rows of `X_fit`, (N, D) or (N, P, D) (every sub-patch a row).

    `dim` None keeps every non-null component; fewer than `dim` come back when the fit set has
    lower rank (see `.dim`). With `whiten`, each component is scaled to unit variance, the
    eigenvalues floored at 1e-5 of the largest so that whitening cannot blow up noise. More
    than 20,000 rows are subsampled evenly.
    """
    X = fit_rows(check_rows(X_fit, "X_fit"))
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X_fit has {n} rows; PCA needs at least 2")
    if dim is not None and not 1 <= dim <= d:
        raise ValueError(f"dim={dim} must be in 1..{d} (the feature dimension) or None")
    X = X.astype(np.float32, copy=False)  # only read: centred a block at a time
    mean = X.mean(axis=0, dtype=np.float64)
    k = min(d, n) if dim is None else min(dim, d, n)
    lam, vecs = _top_eigh(X, mean.astype(np.float32), k)
    keep = lam > _NULL_RTOL * lam[0]
    lam, vecs = lam[keep], vecs[:, keep]
    if whiten:
        scale = 1.0 / np.sqrt(np.maximum(lam, _WHITEN_RTOL * lam[0]))
    else:
        scale = np.ones_like(lam)
    return PCA(mean=mean, components=vecs.T.copy(), scale=scale)


def fit_rows(X: np.ndarray, images: np.ndarray | None = None) -> np.ndarray:
    """The rows a PCA is fitted on: every row of (N, D) or (N, P, D), evenly subsampled to
    at most 20,000 (a view where no subsampling is needed). `images`: the rows of these
    images (indices on the first axis) only, gathered in one copy. Row-wise steps before the
    fit can run on these rows alone."""
    flat = X.reshape(-1, np.shape(X)[-1])
    if images is None:
        if len(flat) <= _MAX_FIT_ROWS:
            return flat
        rows = np.arange(len(flat))
    else:
        rows = image_rows(images, len(flat) // len(X))
    if len(rows) > _MAX_FIT_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, _MAX_FIT_ROWS).round().astype(int)]
    return flat[rows]


def image_rows(images: np.ndarray, per_image: int) -> np.ndarray:
    """Indices of the flattened rows of `images` when each image holds `per_image` rows
    (its sub-patches), image by image."""
    images = np.asarray(images, dtype=np.int64)
    return (images[:, None] * per_image + np.arange(per_image)).ravel()


def row_blocks(rows: np.ndarray) -> Iterator[np.ndarray]:
    """Views of `BLOCK_ROWS` consecutive rows of a 2-d array, in order."""
    return (rows[r : r + BLOCK_ROWS] for r in range(0, len(rows), BLOCK_ROWS))


def check_rows(X: np.ndarray, name: str) -> np.ndarray:
    """`X` as an array of finite (N, D) or (N, P, D) feature rows, else a ValueError naming it."""
    X = np.asarray(X)
    if X.ndim < 2 or X.size == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) or (N, P, D) array; got {X.shape}")
    flat = X.reshape(-1, X.shape[-1])  # the mask of a whole split's sub-patches is ~70 MB
    if not all(np.isfinite(block).all() for block in row_blocks(flat)):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def _top_eigh(X: np.ndarray, mean: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k eigenpairs (decreasing) of the covariance of the rows of `X` less `mean`, via
    the smaller of the covariance (D x D) and the Gram matrix (N x N)."""
    n, d = X.shape
    if d <= n:  # centred and accumulated in float64 a few thousand rows at a time (memory)
        small = np.zeros((d, d))
        for block in row_blocks(X):
            chunk = (block - mean).astype(np.float64)
            small += chunk.T @ chunk
    else:
        Xc = (X - mean).astype(np.float64)
        small = Xc @ Xc.T
    m = small.shape[0]
    lam, U = scipy.linalg.eigh(small, subset_by_index=[m - k, m - 1])
    lam, U = lam[::-1].clip(min=0) / n, U[:, ::-1]
    if d <= n:
        return lam, U
    # Gram eigenvectors u -> covariance eigenvectors Xc^T u / sqrt(n * lam)
    with np.errstate(divide="ignore", invalid="ignore"):
        V = (Xc.T @ U) / np.sqrt(lam * n)
    return lam, np.nan_to_num(V)
