"""Vectorised rendering: a batch of scene descriptions -> a batch of uint8 images.

Everything is array code over (batch, H, W) grids: signed-distance and polar-radius masks,
analytic textures, soft alpha compositing. Scenes are described in "world" coordinates
(the unit square); a per-image view transform (zoom, rotation, shift) maps pixels into
that world, so the same scene can be seen from several views (retrieval instances).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from .. import compute

if TYPE_CHECKING:  # torch is imported where it computes: configs and keys load without it
    import torch

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


def _t(a: np.ndarray) -> torch.Tensor:
    import torch
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _b(a: np.ndarray, extra: int = 2) -> torch.Tensor:
    """(n, ...) -> broadcastable against (n, H, W) grids."""
    t = _t(a)
    return t.reshape(t.shape[0], *([1] * extra), *t.shape[1:])


def texture(p: torch.Tensor, q: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """Analytic texture in [0, 1] on oriented coordinates already scaled to cycles."""
    import torch
    sp, sq = torch.sin(p), torch.sin(q)
    stripes = 0.5 + 0.5 * sp
    checks = 0.5 + 0.5 * torch.tanh(4 * sp * sq)
    dots = torch.sigmoid(8 * (torch.cos(p) * torch.cos(q) - 0.45))
    waves = 0.5 + 0.5 * torch.sin(p + 1.5 * sq)
    out = torch.where(kind == 0, stripes, checks)
    out = torch.where(kind == 2, dots, out)
    return torch.where(kind == 3, waves, out)


_NOISE_BANKS: dict[tuple[int, int], torch.Tensor] = {}


def noise_bank(size: int, seed: int = 1234, count: int = 32) -> torch.Tensor:
    """Fixed white-noise fields; images pick one and a cyclic offset (cheap, deterministic)."""
    import torch
    key = (size, seed)
    if key not in _NOISE_BANKS:
        gen = torch.Generator().manual_seed(seed)
        _NOISE_BANKS[key] = torch.randn(count, size, size, generator=gen)
    return _NOISE_BANKS[key]


def _pick_noise(pick: np.ndarray, size: int) -> torch.Tensor:
    import torch
    bank = noise_bank(size)
    b = torch.as_tensor((pick[:, 0] * len(bank)).astype(np.int64)).clamp_max(len(bank) - 1)
    dy = torch.as_tensor((pick[:, 1] * size).astype(np.int64))
    dx = torch.as_tensor((pick[:, 2] * size).astype(np.int64))
    r = torch.arange(size)
    rows = (r[None, :] + dy[:, None]) % size
    cols = (r[None, :] + dx[:, None]) % size
    return bank[b[:, None, None], rows[:, :, None], cols[:, None, :]]


def _world_grid(scene: Scene, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    py, px = c[None, :, None], c[None, None, :]
    z, r = _b(scene.zoom), _b(scene.view_rot)
    cos, sin = torch.cos(r), torch.sin(r)
    wx = 0.5 + (cos * px - sin * py) / z + _b(scene.shift_x)
    wy = 0.5 + (sin * px + cos * py) / z + _b(scene.shift_y)
    return wx, wy


def _paint_background(bg: Background, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
    import torch
    n = wx.shape[0]
    yy = wy + _b(bg.tilt) * (wx - 0.5)
    band = (yy > _b(bg.h1)).float() * (_b(bg.n_bands) >= 2).float()
    band = band + (yy > _b(bg.h2)).float() * (_b(bg.n_bands) >= 3).float()
    band = band.long()  # 0 = top band
    out = torch.zeros(n, wx.shape[1], wx.shape[2], 3)
    for k in range(3):
        o = _b(bg.orient[:, k])
        f = _b(bg.freq[:, k]) * 2 * np.pi
        p = (wx * torch.cos(o) + wy * torch.sin(o)) * f
        q = (-wx * torch.sin(o) + wy * torch.cos(o)) * f
        t = texture(p, q, _b(bg.texture[:, k]))
        t = 0.5 + _b(bg.contrast[:, k]) * (t - 0.5)
        col = _b(bg.col_a[:, k], 2) * t[..., None] + _b(bg.col_b[:, k], 2) * (1 - t[..., None])
        out = torch.where((band == k)[..., None], col, out)
    # Low-frequency blotches: two broad sinusoids per image, so flat regions are not flat.
    blot = torch.sin(wx * 5.1 + wy * 2.3 + _b(bg.h1) * 40) * torch.sin(wy * 4.7 - wx * 1.9)
    return out * (1 + _b(bg.blotch)[..., None] * blot[..., None])


def _object_mask(
    obj: ObjectSlot, wx: torch.Tensor, wy: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft mask of one object slot and its object-frame coordinates (in radius units)."""
    import torch
    rot = _b(obj.rot)
    cos, sin = torch.cos(rot), torch.sin(rot)
    dx, dy = wx - _b(obj.cx), wy - _b(obj.cy)
    rad = _b(obj.radius)
    u = (dx * cos + dy * sin) / rad
    v = (-dx * sin + dy * cos) / rad
    ua = u / _b(obj.aspect)
    r = torch.sqrt(ua * ua + v * v) + 1e-6
    c1, s1 = ua / r, v / r
    # cos/sin of k*theta by recurrence: no atan2, no per-k trig on the grid.
    ck, sk = c1 * c1 - s1 * s1, 2 * s1 * c1
    boundary = torch.ones_like(r)
    coef, phase = _t(obj.coef), _t(obj.phase)
    for k in range(N_HARMONICS):
        a = coef[:, k].reshape(-1, 1, 1)
        cp, sp = torch.cos(phase[:, k]).reshape(-1, 1, 1), torch.sin(phase[:, k]).reshape(-1, 1, 1)
        boundary = boundary + a * (ck * cp - sk * sp)
        ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
    # Edge softness of about one pixel, in radius units.
    edge = (rad * size).clamp_min(1.0)
    mask = torch.sigmoid((boundary - r) * edge * 1.5)
    for j in range(N_PARTS):
        ang = _b(obj.part_angle[:, j])
        pu, pv = torch.cos(ang) * 1.05, torch.sin(ang) * 1.05
        ps = _b(obj.part_size[:, j])
        d = torch.sqrt((u - pu) ** 2 + (v - pv) ** 2)
        part = torch.sigmoid((ps - d) * edge * 1.5) * _b(obj.part_on[:, j])
        mask = torch.maximum(mask, part)
    return mask * _b(obj.present), u, v, edge


def _mark_mask(kind: torch.Tensor, du: torch.Tensor, dv: torch.Tensor, s: torch.Tensor,
               sharp: torch.Tensor) -> torch.Tensor:
    import torch
    d = torch.sqrt(du * du + dv * dv)
    au, av = du.abs(), dv.abs()
    disc = s - d
    ring = 0.3 * s - (d - s).abs()
    square = s - torch.maximum(au, av)
    bar = torch.minimum(0.35 * s - av, 1.6 * s - au)
    cross = torch.maximum(torch.minimum(0.3 * s - au, 1.3 * s - av),
                          torch.minimum(0.3 * s - av, 1.3 * s - au))
    sdf = torch.where(kind == 1, disc, ring)
    sdf = torch.where(kind == 3, square, sdf)
    sdf = torch.where(kind == 4, bar, sdf)
    sdf = torch.where(kind == 5, cross, sdf)
    return torch.sigmoid(sdf * sharp * 1.5) * (kind > 0).float()


def _paint_object(img: torch.Tensor, obj: ObjectSlot, wx: torch.Tensor, wy: torch.Tensor,
                  size: int) -> torch.Tensor:
    import torch
    mask, u, v, edge = _object_mask(obj, wx, wy, size)
    o = _b(obj.orient)
    f = _b(obj.freq) * 2 * np.pi
    p = (u * torch.cos(o) + v * torch.sin(o)) * f + _b(obj.tphase)
    q = (-u * torch.sin(o) + v * torch.cos(o)) * f
    t = texture(p, q, _b(obj.texture))[..., None]
    col = _b(obj.col_a, 2) * t + _b(obj.col_b, 2) * (1 - t)
    for j in range(N_MARKS):
        kind = _b(obj.mark[:, j])
        if not bool((kind > 0).any()):
            continue
        mm = _mark_mask(kind, u - _b(obj.mark_u[:, j]), v - _b(obj.mark_v[:, j]),
                        _b(obj.mark_size[:, j]), edge)[..., None]
        col = col * (1 - mm) + _b(obj.mark_col[:, j], 2) * mm
    m = mask[..., None]
    return img * (1 - m) + col * m


def render(scene: Scene, size: int) -> np.ndarray:
    """Render a batch of scenes to uint8 images of shape (n, size, size, 3)."""
    import torch

    compute.ensure_threads()
    wx, wy = _world_grid(scene, size)
    img = _paint_background(scene.background, wx, wy)
    for obj in scene.objects:
        if obj.present.any():
            img = _paint_object(img, obj, wx, wy, size)
    if scene.occluder is not None and scene.occluder[:, 0].any():
        c = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        oc = _t(scene.occluder)
        inside = (
            (c[None, None, :] > oc[:, 1, None, None]) & (c[None, None, :] < oc[:, 3, None, None])
            & (c[None, :, None] > oc[:, 2, None, None]) & (c[None, :, None] < oc[:, 4, None, None])
            & (oc[:, 0, None, None] > 0)
        )[..., None]
        img = torch.where(inside, _b(scene.occluder_col, 2), img)
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    light = _t(scene.light)
    gain = (light[:, 0, None, None] + light[:, 1, None, None] * c[None, None, :]
            + light[:, 2, None, None] * c[None, :, None])
    img = img * gain[..., None]
    if scene.noise.any():
        img = img + _pick_noise(scene.noise_pick, size)[..., None] * _b(scene.noise, 3)
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def object_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(ObjectSlot))
