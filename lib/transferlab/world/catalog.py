"""The world's category universe, drawn once from the world seed.

30 superclasses (shape families: radial-Fourier contour, elongation, attached parts), 0-19
seen by the objects source and 20-29 novel; 5 subclasses each (texture family, frequency,
colour pair); 40 scene categories (band layout + which superclasses appear where).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .scene import N_HARMONICS, N_PARTS, TEXTURES

N_SUPER = 30
N_SOURCE_SUPER = 20
N_SUB = 5
N_SCENES = 40
N_BREED = 3


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all in [0, 1]; returns (..., 3)."""
    h = np.asarray(h) % 1.0
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([
        np.stack([v, t, p], -1), np.stack([q, v, p], -1), np.stack([p, v, t], -1),
        np.stack([p, q, v], -1), np.stack([t, p, v], -1), np.stack([v, p, q], -1),
    ], 0)
    return np.take_along_axis(table, i[None, ..., None].repeat(3, -1), 0)[0]


@dataclass(frozen=True)
class Catalog:
    coef: np.ndarray  # (N_SUPER, N_HARMONICS)
    phase: np.ndarray
    aspect: np.ndarray  # (N_SUPER,)
    part_on: np.ndarray  # (N_SUPER, N_PARTS)
    part_angle: np.ndarray
    part_size: np.ndarray
    sub_texture: np.ndarray  # (N_SUPER, N_SUB)
    sub_freq: np.ndarray
    sub_orient: np.ndarray
    sub_hue: np.ndarray  # (N_SUPER, N_SUB, 2) hues of the two colours
    sub_sat: np.ndarray
    sub_val: np.ndarray
    scene_bands: np.ndarray  # (N_SCENES,)
    scene_h: np.ndarray  # (N_SCENES, 2)
    scene_texture: np.ndarray  # (N_SCENES, 3)
    scene_freq: np.ndarray  # (N_SCENES, 3)
    scene_orient: np.ndarray
    scene_hue: np.ndarray  # (N_SCENES, 3)
    scene_sat: np.ndarray
    scene_val: np.ndarray
    scene_contrast: np.ndarray
    scene_objects: np.ndarray  # (N_SCENES, 2) source classes (superclass * N_SUB + subclass)
    scene_count: np.ndarray  # (N_SCENES, 2) min/max objects
    scene_obj_band: np.ndarray  # (N_SCENES,) where objects stand: 0 anywhere, 1 low, 2 high
    breed_hue: np.ndarray  # (N_SUPER, N_BREED, 2) new subclasses the objects source never sees
    breed_freq: np.ndarray  # (N_SUPER, N_BREED)
    breed_orient: np.ndarray


def _ring_pairs(world_seed: int, n: int, of: int) -> np.ndarray:
    """(n, 2): row i holds items i and i + 1 of a ring of n distinct items of range(of)."""
    ring = np.random.default_rng([world_seed, 20150101, 102]).permutation(of)[:n]
    return np.stack([ring, np.roll(ring, -1)], 1)


@lru_cache(maxsize=8)
def catalog(world_seed: int) -> Catalog:
    rng = np.random.default_rng([world_seed, 20150101])
    decay = np.array([1.0, 0.7, 0.5, 0.35])[:N_HARMONICS]
    coef = rng.uniform(0.0, 0.32, (N_SUPER, N_HARMONICS)) * decay
    # A few strongly lobed families (flower-like, star-like) among the superclasses.
    lobed = rng.random(N_SUPER) < 0.25
    coef[lobed, rng.integers(1, N_HARMONICS, lobed.sum())] += 0.25
    n_parts = rng.integers(0, N_PARTS + 1, N_SUPER)
    part_on = (np.arange(N_PARTS)[None, :] < n_parts[:, None]).astype(float)
    n_tex = len(TEXTURES)
    sub_texture = np.stack([rng.permutation(n_tex)[np.arange(N_SUB) % n_tex]
                            for _ in range(N_SUPER)])
    scene_hue = rng.random((N_SCENES, 3))
    return Catalog(
        coef=coef,
        phase=rng.uniform(0, 2 * np.pi, (N_SUPER, N_HARMONICS)),
        aspect=np.where(rng.random(N_SUPER) < 0.35, rng.uniform(1.5, 2.1, N_SUPER),
                        rng.uniform(1.0, 1.25, N_SUPER)),
        part_on=part_on,
        part_angle=rng.uniform(0, 2 * np.pi, (N_SUPER, N_PARTS)),
        part_size=rng.uniform(0.25, 0.45, (N_SUPER, N_PARTS)),
        sub_texture=sub_texture,
        sub_freq=rng.uniform(0.6, 1.4, (N_SUPER, N_SUB)),
        sub_orient=rng.uniform(0, np.pi, (N_SUPER, N_SUB)),
        sub_hue=rng.random((N_SUPER, N_SUB, 2)),
        sub_sat=rng.uniform(0.35, 0.9, (N_SUPER, N_SUB, 2)),
        sub_val=rng.uniform(0.35, 0.95, (N_SUPER, N_SUB, 2)),
        scene_bands=rng.integers(1, 4, N_SCENES),
        scene_h=np.sort(rng.uniform(0.25, 0.8, (N_SCENES, 2)), axis=1),
        scene_texture=rng.integers(0, n_tex, (N_SCENES, 3)),
        scene_freq=rng.uniform(2.0, 6.0, (N_SCENES, 3)),
        scene_orient=rng.uniform(0, np.pi, (N_SCENES, 3)),
        scene_hue=scene_hue,
        scene_sat=rng.uniform(0.1, 0.7, (N_SCENES, 3)),
        scene_val=rng.uniform(0.3, 0.9, (N_SCENES, 3)),
        scene_contrast=rng.uniform(0.1, 0.6, (N_SCENES, 3)),
        # Two source classes per scene, each shared with one neighbouring scene (a ring of 40
        # of the 100 classes): the objects that co-occur tell scenes apart, in the source's
        # own vocabulary, and an image showing one of them only is ambiguous.
        scene_objects=_ring_pairs(world_seed, N_SCENES, N_SOURCE_SUPER * N_SUB),
        scene_count=np.stack([np.sort(rng.integers(1, 5, 2)) for _ in range(N_SCENES)]),
        scene_obj_band=rng.integers(0, 3, N_SCENES),
        # Drawn last, so that adding them changed no other entry of the catalog. A breed of a
        # superclass: one base hue shifted by 0.07 per breed, one of three texture frequencies
        # (differences of the size of the source's own colour jitter: fine-grained).
        breed_hue=(rng.random((N_SUPER, 1, 2)) + 0.07 * np.arange(N_BREED)[None, :, None]),
        breed_freq=np.stack([rng.permutation([0.8, 1.0, 1.25]) for _ in range(N_SUPER)]),
        breed_orient=rng.uniform(0, np.pi, (N_SUPER, N_BREED)),
    )
