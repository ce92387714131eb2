"""What a scene is: the per-image description the recipes fill and the renderer draws.

Arrays over a batch of images (one row per image): the background, object slots (shape,
texture, colours, parts and marks, pose) and the view (zoom, rotation, shift, light, noise,
occluder). Plain numpy, so the world's recipes and catalog load without torch; `render`
draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

N_PARTS = 2
N_MARKS = 3
N_HARMONICS = 4  # radial Fourier terms k = 2..5
TEXTURES = ("stripes", "checks", "dots", "waves")
MARKS = ("none", "disc", "ring", "square", "bar", "cross")


def _zeros(n: int, *shape: int) -> np.ndarray:
    return np.zeros((n, *shape), dtype=np.float64)


@dataclass
class ObjectSlot:
    """One object per image of the batch (absent where `present` is 0)."""

    present: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray  # fraction of the world's side
    rot: np.ndarray  # radians
    aspect: np.ndarray  # >= 1 elongates along the object's u axis
    coef: np.ndarray  # (n, N_HARMONICS) radial Fourier amplitudes
    phase: np.ndarray  # (n, N_HARMONICS)
    texture: np.ndarray  # index into TEXTURES
    freq: np.ndarray  # cycles per object radius
    orient: np.ndarray
    tphase: np.ndarray
    col_a: np.ndarray  # (n, 3) in [0, 1]
    col_b: np.ndarray  # (n, 3)
    part_on: np.ndarray  # (n, N_PARTS)
    part_angle: np.ndarray  # (n, N_PARTS)
    part_size: np.ndarray  # (n, N_PARTS) fraction of radius
    mark: np.ndarray  # (n, N_MARKS) index into MARKS
    mark_u: np.ndarray  # (n, N_MARKS) object-frame position, fraction of radius
    mark_v: np.ndarray
    mark_size: np.ndarray  # (n, N_MARKS) fraction of radius
    mark_col: np.ndarray  # (n, N_MARKS, 3)

    @classmethod
    def empty(cls, n: int) -> ObjectSlot:
        return cls(
            present=_zeros(n), cx=_zeros(n) + 0.5, cy=_zeros(n) + 0.5, radius=_zeros(n) + 0.2,
            rot=_zeros(n), aspect=_zeros(n) + 1, coef=_zeros(n, N_HARMONICS),
            phase=_zeros(n, N_HARMONICS), texture=_zeros(n), freq=_zeros(n) + 2,
            orient=_zeros(n), tphase=_zeros(n), col_a=_zeros(n, 3) + 0.5, col_b=_zeros(n, 3) + 0.5,
            part_on=_zeros(n, N_PARTS), part_angle=_zeros(n, N_PARTS),
            part_size=_zeros(n, N_PARTS) + 0.3, mark=_zeros(n, N_MARKS),
            mark_u=_zeros(n, N_MARKS), mark_v=_zeros(n, N_MARKS),
            mark_size=_zeros(n, N_MARKS) + 0.2, mark_col=_zeros(n, N_MARKS, 3),
        )


@dataclass
class Background:
    """Up to three horizontal bands (sky / wall / floor), each with its own texture."""

    n_bands: np.ndarray  # 1..3
    h1: np.ndarray  # band boundaries in world y
    h2: np.ndarray
    tilt: np.ndarray
    col_a: np.ndarray  # (n, 3 bands, 3)
    col_b: np.ndarray
    texture: np.ndarray  # (n, 3)
    freq: np.ndarray  # (n, 3) cycles per world side
    orient: np.ndarray  # (n, 3)
    contrast: np.ndarray  # (n, 3)
    blotch: np.ndarray  # (n,) strength of low-frequency colour noise

    @classmethod
    def empty(cls, n: int) -> Background:
        return cls(
            n_bands=_zeros(n) + 1, h1=_zeros(n) + 0.4, h2=_zeros(n) + 0.7, tilt=_zeros(n),
            col_a=_zeros(n, 3, 3) + 0.5, col_b=_zeros(n, 3, 3) + 0.5, texture=_zeros(n, 3),
            freq=_zeros(n, 3) + 4, orient=_zeros(n, 3), contrast=_zeros(n, 3), blotch=_zeros(n),
        )


@dataclass
class Scene:
    """A batch of scenes: background, object slots (painted in order), view and nuisances."""

    background: Background
    objects: list[ObjectSlot]
    zoom: np.ndarray
    view_rot: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray
    light: np.ndarray  # (n, 3): gain, x-gradient, y-gradient
    noise: np.ndarray  # (n,) pixel noise std
    noise_pick: np.ndarray  # (n, 3) uniforms choosing the noise field and its offset
    occluder: np.ndarray = field(default=None)  # (n, 5): on, x0, y0, x1, y1 (image coords)
    occluder_col: np.ndarray = field(default=None)  # (n, 3)

    @classmethod
    def empty(cls, n: int) -> Scene:
        return cls(
            background=Background.empty(n), objects=[], zoom=_zeros(n) + 1, view_rot=_zeros(n),
            shift_x=_zeros(n), shift_y=_zeros(n), light=np.tile([1.0, 0.0, 0.0], (n, 1)),
            noise=_zeros(n), noise_pick=_zeros(n, 3), occluder=_zeros(n, 5),
            occluder_col=_zeros(n, 3),
        )


def object_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(ObjectSlot))
