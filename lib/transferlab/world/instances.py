"""Retrieval tasks: fixed instances (content) seen in several views.

An instance's content is drawn from a stream keyed by the instance id only, so a query and
its database views show the same instance; each view's pose, lighting and clutter come
from a stream keyed by the image index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import Catalog, hsv_to_rgb
from .recipes import background, category_object, clutter, nuisances, scene_of
from .rng import Draws
from .scene import ObjectSlot, Scene

UKB_CLASSES = np.array([[3, 1], [11, 2]])  # (superclass, subclass) of every object instance
HOLIDAY_CLASSES = np.array([[6, 0], [9, 3], [15, 1], [18, 4]])  # objects of every scene instance
# view kinds
QUERY, GOOD, JUNK, DISTRACTOR = 0, 1, 2, 3
FIT_OFFSET = 1_000_000  # instance ids of the PCA-fitting split: never in the database


@dataclass(frozen=True)
class Layout:
    """What every image of a retrieval split shows: instance id (-1: none) and view kind."""

    instance: np.ndarray
    kind: np.ndarray


@dataclass(frozen=True)
class RetrievalSizes:
    instances: int
    views: int  # database views per instance
    fit: int  # images of other instances for PCA-whitening
    distractors: int = 0
    junk: int = 0  # junk views per instance (landmarks)


def layout(task: str, split: str, sz: RetrievalSizes) -> Layout:
    inst = np.repeat(np.arange(sz.instances), sz.views)
    if split == "train":
        # Pairs of views of other instances: PCA-whitening is fitted on them, and they form
        # a small validation retrieval set (view 0 queries the rest) for choosing settings.
        n = max(1, sz.fit // 2)
        kinds = np.tile([QUERY, GOOD], n)
        return Layout(FIT_OFFSET + np.repeat(np.arange(n), 2), kinds)
    if task == "landmarks":
        if split == "query":
            return Layout(np.arange(sz.instances), np.full(sz.instances, QUERY))
        junk = np.repeat(np.arange(sz.instances), sz.junk)
        ids = np.concatenate([inst, junk, np.full(sz.distractors, -1)])
        kinds = np.concatenate([np.full(len(inst), GOOD), np.full(len(junk), JUNK),
                                np.full(sz.distractors, DISTRACTOR)])
        return Layout(ids, kinds)
    kinds = np.where(np.arange(len(inst)) % sz.views == 0, QUERY, GOOD)
    if split == "query":
        if task == "object_instances":  # UKB: every image is a query
            return Layout(inst, kinds)
        return Layout(inst[:: sz.views], kinds[:: sz.views])
    return Layout(inst, kinds)


def validation_truth(sz: RetrievalSizes):
    """The train split as a retrieval set: view 0 of each pair queries all train images."""
    n = max(1, sz.fit // 2)
    own = np.arange(n) * 2
    return [np.array([i + 1]) for i in own], [np.zeros(0, np.int64)] * n, own


def truth(task: str, sz: RetrievalSizes):
    """positives, junk and the query's own database index, per query."""
    db, q = layout(task, "database", sz), layout(task, "query", sz)
    positives, junk, self_idx = [], [], []
    for qi, inst in enumerate(q.instance):
        same = np.flatnonzero(db.instance == inst)
        if task == "landmarks":
            positives.append(same[db.kind[same] == GOOD])
            junk.append(same[db.kind[same] == JUNK])
            self_idx.append(-1)
        else:
            own = qi if task == "object_instances" else qi * sz.views
            self_idx.append(own)
            # UKB counts the query itself among its 4; Holidays-style mAP ignores it.
            positives.append(same if task == "object_instances" else same[same != own])
            junk.append(np.zeros(0, np.int64))
    return positives, junk, np.array(self_idx, np.int64)


def _view(v: Draws, sc: Scene, *, zoom=(0.9, 1.15), rot=0.25, shift=0.08, noise=(0.02, 0.05)):
    sc.zoom, sc.view_rot = v.u(*zoom), v.u(-rot, rot)
    sc.shift_x, sc.shift_y = v.u(-shift, shift), v.u(-shift, shift)
    return nuisances(v, sc, noise=noise, light=0.3)


def scene_instances(c: Draws, v: Draws, cat: Catalog, lay: Layout) -> Scene:
    """Holidays: one fixed scene seen under crop, zoom, rotation and lighting."""
    n = len(lay.instance)
    bg = background(c, n)
    # Every instance holds objects of the same few source classes: which objects a scene
    # holds (source content) says little, their exact arrangement and the background say
    # which scene it is.
    pick = [c.integers(len(HOLIDAY_CLASSES)) for _ in range(3)]
    objs = [category_object(c, cat, HOLIDAY_CLASSES[p, 0], HOLIDAY_CLASSES[p, 1],
                            radius=(0.1, 0.2), centre=(0.15, 0.85), present=c.bernoulli(0.8))
            for p in pick]
    return _view(v, scene_of(c, n, bg, objs), zoom=(1.0, 1.7), rot=0.45, shift=0.16)


def object_instances(c: Draws, v: Draws, cat: Catalog, lay: Layout) -> Scene:
    """UKB: a specific object among many of the same two source subclasses: the category
    says nothing, its own shape detail, texture phase and mark tell it apart."""
    n = len(lay.instance)
    pick = c.integers(len(UKB_CLASSES))
    sup, sub = UKB_CLASSES[pick, 0], UKB_CLASSES[pick, 1]
    o = category_object(c, cat, sup, sub, radius=(0.27, 0.33), jitter=1.0)
    o.coef = o.coef + np.stack([c.normal(0.08) * w for w in (0.0, 0.6, 1.0, 1.0)], 1)
    o.mark[:, 0] = 1 + c.integers(5)
    o.mark_u[:, 0], o.mark_v[:, 0] = c.u(-0.5, 0.5), c.u(-0.5, 0.5)
    o.mark_size[:, 0] = c.u(0.25, 0.35)
    o.mark_col[:, 0] = hsv_to_rgb(c.u(), c.u(0.3, 1), c.u(0.2, 1))
    # The view: pose, size and background change; the instance does not.
    o.rot = v.u(-np.pi, np.pi)
    o.cx, o.cy = v.u(0.35, 0.65), v.u(0.35, 0.65)
    o.radius = o.radius * v.u(0.8, 1.15)
    for col in (o.col_a, o.col_b):
        col *= (1 + v.normal(0.05))[:, None]
    sc = scene_of(v, n, background(v, n), clutter(v, cat, n, 1, 0.3) + [o])
    return nuisances(v, sc, light=0.3)


def landmarks(c: Draws, v: Draws, cat: Catalog, lay: Layout) -> Scene:
    """Oxford/Paris: a large unique structure, seen partially, small, or barely (junk)."""
    n = len(lay.instance)
    s = ObjectSlot.empty(n)
    s.present = (lay.instance >= 0).astype(float)
    s.coef = np.stack([c.u(0, 0.12) for _ in range(4)], 1)
    s.phase = np.stack([c.u(0, 6.3) for _ in range(4)], 1)
    s.aspect = c.u(1.0, 1.6)
    s.radius = np.full(n, 0.38)
    s.texture, s.freq, s.orient = c.integers(4).astype(float), c.u(1.5, 2.5), c.u(0, np.pi)
    s.col_a = hsv_to_rgb(c.u(), c.u(0.2, 0.6), c.u(0.5, 0.9))
    s.col_b = hsv_to_rgb(c.u(), c.u(0.2, 0.6), c.u(0.2, 0.5))
    for j in range(s.mark.shape[1]):  # "windows" and "towers": the structure's own marks
        s.mark[:, j] = 1 + c.integers(5)
        s.mark_u[:, j], s.mark_v[:, j] = c.u(-0.6, 0.6), c.u(-0.6, 0.6)
        s.mark_size[:, j] = c.u(0.12, 0.2)
        s.mark_col[:, j] = hsv_to_rgb(c.u(), c.u(0.5, 1), c.u(0.3, 1))
    s.rot = c.u(-0.2, 0.2)
    bg = background(c, n)
    sc = scene_of(v, n, bg, [s] + clutter(v, cat, n, 3, 0.7, radius=(0.06, 0.12)))
    kind = lay.kind
    small = v.bernoulli(0.5)
    zoom = np.select([kind == QUERY, small], [v.u(1.0, 1.15), v.u(0.45, 0.7)], v.u(1.3, 2.2))
    # Good views keep the structure's centre in frame; junk views keep only a sliver of it.
    off = np.where(kind == JUNK, v.u(0.42, 0.5), np.where(kind == QUERY, 0.03, v.u(0.0, 0.25)))
    ang = v.u(0, 2 * np.pi)
    sc = nuisances(v, sc, light=0.3, noise=(0.02, 0.05))
    sc.zoom, sc.view_rot = zoom, v.u(-0.15, 0.15)
    sc.shift_x, sc.shift_y = off * np.cos(ang), off * np.sin(ang)
    for o in sc.objects[1:]:  # clutter lives in the view, in view-independent world coords
        o.cx = 0.5 + (o.cx - 0.5) / zoom + sc.shift_x
        o.cy = 0.5 + (o.cy - 0.5) / zoom + sc.shift_y
        o.radius = o.radius / zoom
    return sc


def sculptures(c: Draws, v: Draws, cat: Catalog, lay: Layout) -> Scene:
    """Texture-less silhouettes: shape is all there is."""
    n = len(lay.instance)
    s = ObjectSlot.empty(n)
    s.present = np.ones(n)
    # Every harmonic at least 0.15: no instance is a near-ellipse that its neighbours
    # share (at 0-0.4, the standard FC6 sat 14 points above chance, below the floor).
    s.coef = np.stack([c.u(0.15, 0.55) * w for w in (1.0, 0.9, 0.7, 0.5)], 1)
    s.phase = np.stack([c.u(0, 6.3) for _ in range(4)], 1)
    s.part_on = np.stack([c.bernoulli(0.6), c.bernoulli(0.3)], 1).astype(float)
    s.part_angle = np.stack([c.u(0, 6.3), c.u(0, 6.3)], 1)
    s.part_size = np.stack([c.u(0.25, 0.45), c.u(0.25, 0.45)], 1)
    base_aspect = c.u(1.0, 1.7)
    grey = v.u(0.1, 0.3)
    s.col_a = s.col_b = np.stack([grey, grey, grey * 1.1], 1)
    s.aspect = base_aspect * (1 + v.normal(0.04))
    s.radius, s.rot = v.u(0.27, 0.34), v.u(-0.4, 0.4)
    s.cx, s.cy = v.u(0.4, 0.6), v.u(0.4, 0.6)
    bg = background(v, n, contrast=(0.0, 0.08))
    bg.col_a = bg.col_b = np.repeat(np.stack([v.u(0.6, 0.9)] * 3, 1)[:, None], 3, 1)
    return nuisances(v, scene_of(v, n, bg, [s]), light=0.3, noise=(0.02, 0.05))
