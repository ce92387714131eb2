"""Vectorised rendering: a batch of scene descriptions -> a batch of uint8 images.

Everything is array code over (batch, H, W) grids: signed-distance and polar-radius masks,
analytic textures, soft alpha compositing. Scenes (`scene.Scene`) are described in "world"
coordinates (the unit square); a per-image view transform (zoom, rotation, shift) maps pixels
into that world, so the same scene can be seen from several views (retrieval instances).
Imported only when something is rendered (`world.generate`), so torch loads only then.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import compute
from .scene import N_HARMONICS, N_MARKS, N_PARTS, Background, ObjectSlot, Scene


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _b(a: np.ndarray, extra: int = 2) -> torch.Tensor:
    """(n, ...) -> broadcastable against (n, H, W) grids."""
    t = _t(a)
    return t.reshape(t.shape[0], *([1] * extra), *t.shape[1:])


def texture(p: torch.Tensor, q: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """Analytic texture in [0, 1] on oriented coordinates already scaled to cycles."""
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
    key = (size, seed)
    if key not in _NOISE_BANKS:
        gen = torch.Generator().manual_seed(seed)
        _NOISE_BANKS[key] = torch.randn(count, size, size, generator=gen)
    return _NOISE_BANKS[key]


def _pick_noise(pick: np.ndarray, size: int) -> torch.Tensor:
    bank = noise_bank(size)
    b = torch.as_tensor((pick[:, 0] * len(bank)).astype(np.int64)).clamp_max(len(bank) - 1)
    dy = torch.as_tensor((pick[:, 1] * size).astype(np.int64))
    dx = torch.as_tensor((pick[:, 2] * size).astype(np.int64))
    r = torch.arange(size)
    rows = (r[None, :] + dy[:, None]) % size
    cols = (r[None, :] + dx[:, None]) % size
    return bank[b[:, None, None], rows[:, :, None], cols[:, None, :]]


def _world_grid(scene: Scene, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    py, px = c[None, :, None], c[None, None, :]
    z, r = _b(scene.zoom), _b(scene.view_rot)
    cos, sin = torch.cos(r), torch.sin(r)
    wx = 0.5 + (cos * px - sin * py) / z + _b(scene.shift_x)
    wy = 0.5 + (sin * px + cos * py) / z + _b(scene.shift_y)
    return wx, wy


def _paint_background(bg: Background, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
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
