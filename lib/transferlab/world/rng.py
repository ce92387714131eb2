"""Counter-based randomness: every number is a pure function of (world seed, task, split, index).

An image's parameters never come from a shared running RNG, so image i of a split is the same
bytes whatever batch, range, order or machine it is generated in.
"""

from __future__ import annotations

import hashlib

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective avalanche on uint64."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def stream_key(*parts: object) -> int:
    """A 64-bit key for a named stream, e.g. stream_key(world_seed, "birds", "train")."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def uniforms(key: int, indices: np.ndarray, n: int) -> np.ndarray:
    """(len(indices), n) float64 uniforms in [0, 1), a pure function of (key, index, column)."""
    idx = np.asarray(indices, dtype=np.uint64)[:, None]
    col = np.arange(n, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        z = np.uint64(key) ^ (idx * _GOLDEN)
        z = _mix(_mix(z) + (col + np.uint64(1)) * _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class Draws:
    """Hands out named columns of per-image uniforms, so recipes read like sampling code."""

    _BLOCK = 64

    def __init__(self, key: int, indices: np.ndarray) -> None:
        self._key = key
        self._idx = np.asarray(indices, dtype=np.uint64)
        self._block = np.empty((len(self._idx), 0))
        self._next = 0

    def u(self, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        j = self._next % self._BLOCK
        if j == 0:  # columns come in blocks; block b is keyed by b, so draws stay pure
            block_key = int(_mix(np.uint64(self._key) + np.uint64(self._next // self._BLOCK + 1)))
            self._block = uniforms(block_key, self._idx, self._BLOCK)
        self._next += 1
        return lo + (hi - lo) * self._block[:, j]

    def integers(self, n: int) -> np.ndarray:
        return np.minimum((self.u() * n).astype(np.int64), n - 1)

    def bernoulli(self, p: float | np.ndarray) -> np.ndarray:
        return self.u() < p

    def normal(self, scale: float = 1.0) -> np.ndarray:
        # Box-Muller from two columns.
        u1, u2 = np.maximum(self.u(), 1e-12), self.u()
        return scale * np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
