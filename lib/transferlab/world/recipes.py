"""How each task's images are drawn: scene descriptions and labels from per-image uniforms.

A recipe gets `Draws` (counter-based uniforms for the requested indices) and returns a
`Scene` batch plus labels. Nuisances everywhere: pose, colour jitter, lighting, background
texture, clutter, occlusion and pixel noise, so no task is solvable from one pixel statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import (
    N_BREED,
    N_SCENES,
    N_SOURCE_SUPER,
    N_SUB,
    Catalog,
    hsv_to_rgb,
)
from .rng import Draws
from .scene import N_MARKS, TEXTURES, Background, ObjectSlot, Scene


@dataclass(frozen=True)
class Ctx:
    cat: Catalog
    n: int
    indices: np.ndarray


# ---------------------------------------------------------------- building blocks


def colours(d: Draws, hue, sat, val, jitter: float) -> np.ndarray:
    h = hue + d.normal(0.04 * jitter)
    s = np.clip(sat + d.normal(0.08 * jitter), 0, 1)
    v = np.clip(val + d.normal(0.08 * jitter), 0.05, 1)
    return hsv_to_rgb(h, s, v)


def nuisances(d: Draws, scene: Scene, *, noise=(0.02, 0.06), light=0.25, occlude=0.0) -> Scene:
    n = len(scene.zoom)
    scene.light = np.stack([d.u(1 - light, 1 + light * 0.6), d.u(-light, light),
                            d.u(-light, light)], 1)
    scene.noise = d.u(*noise)
    scene.noise_pick = np.stack([d.u(), d.u(), d.u()], 1)
    on = d.bernoulli(occlude)
    x0, y0 = d.u(0, 0.8), d.u(0, 0.8)
    w, h = d.u(0.1, 0.35), d.u(0.1, 0.35)
    scene.occluder = np.stack([on.astype(float), x0, y0, x0 + w, y0 + h], 1)
    scene.occluder_col = hsv_to_rgb(d.u(), d.u(0, 0.5), d.u(0.2, 0.9))
    assert scene.occluder.shape == (n, 5)
    return scene


def background(d: Draws, n: int, *, cat: Catalog | None = None, scene_id=None,
               jitter: float = 1.0, contrast=(0.05, 0.35)) -> Background:
    """A random band layout, or the layout of scene categories `scene_id` (with jitter)."""
    bg = Background.empty(n)
    if scene_id is None:
        bg.n_bands = 1 + d.integers(3)
        h1, h2 = d.u(0.25, 0.6), d.u(0.55, 0.85)
        hue = np.stack([d.u(), d.u(), d.u()], 1)
        sat = np.stack([d.u(0.05, 0.6) for _ in range(3)], 1)
        val = np.stack([d.u(0.3, 0.9) for _ in range(3)], 1)
        tex = np.stack([d.integers(len(TEXTURES)) for _ in range(3)], 1)
        freq = np.stack([d.u(2, 6) for _ in range(3)], 1)
        orient = np.stack([d.u(0, np.pi) for _ in range(3)], 1)
        con = np.stack([d.u(*contrast) for _ in range(3)], 1)
    else:
        s = scene_id
        bg.n_bands = cat.scene_bands[s].astype(float)
        h1 = cat.scene_h[s, 0] + d.normal(0.04 * jitter)
        h2 = cat.scene_h[s, 1] + d.normal(0.04 * jitter)
        hue = cat.scene_hue[s] + np.stack([d.normal(0.03 * jitter) for _ in range(3)], 1)
        sat, val = cat.scene_sat[s], cat.scene_val[s]
        tex, freq = cat.scene_texture[s], cat.scene_freq[s] * (1 + 0.1 * jitter * d.normal())[:, None]
        orient = cat.scene_orient[s] + 0.2 * jitter * d.normal()[:, None]
        con = cat.scene_contrast[s]
    bg.h1, bg.h2, bg.tilt = h1, np.maximum(h2, h1 + 0.1), d.normal(0.1)
    bg.col_a = hsv_to_rgb(hue, sat, val)
    bg.col_b = hsv_to_rgb(hue + 0.05, sat * 0.7, val * 0.75)
    bg.texture, bg.freq, bg.orient, bg.contrast = tex.astype(float), freq, orient, con
    bg.blotch = d.u(0.0, 0.15)
    return bg


def category_object(d: Draws, cat: Catalog, sup, sub, *, radius=(0.22, 0.34), centre=(0.3, 0.7),
                    rot: float = np.pi, jitter: float = 1.0, present=None) -> ObjectSlot:
    """An instance of category (superclass, subclass) with pose and appearance noise."""
    n = len(sup)
    o = ObjectSlot.empty(n)
    o.present = np.ones(n) if present is None else present.astype(float)
    o.cx, o.cy = d.u(*centre), d.u(*centre)
    o.radius = d.u(*radius)
    o.rot = d.u(-rot, rot)
    o.aspect = cat.aspect[sup] * (1 + d.normal(0.06 * jitter))
    o.coef = cat.coef[sup] * (1 + 0.25 * jitter * d.normal()[:, None])
    o.phase = cat.phase[sup] + d.normal(0.15 * jitter)[:, None]
    o.part_on, o.part_angle = cat.part_on[sup], cat.part_angle[sup] + d.normal(0.1)[:, None]
    o.part_size = cat.part_size[sup] * (1 + d.normal(0.08)[:, None])
    o.texture = cat.sub_texture[sup, sub].astype(float)
    o.freq = cat.sub_freq[sup, sub] * (1 + d.normal(0.1 * jitter))
    o.orient = cat.sub_orient[sup, sub] + d.normal(0.25 * jitter)
    o.tphase = d.u(0, 2 * np.pi)
    o.col_a = colours(d, cat.sub_hue[sup, sub, 0], cat.sub_sat[sup, sub, 0],
                      cat.sub_val[sup, sub, 0], jitter)
    o.col_b = colours(d, cat.sub_hue[sup, sub, 1], cat.sub_sat[sup, sub, 1],
                      cat.sub_val[sup, sub, 1], jitter)
    return o


def clutter(d: Draws, cat: Catalog, n: int, k: int, p: float, *, radius=(0.06, 0.12),
            exclude=()) -> list:
    """Up to k small distractor objects of random source categories.

    `exclude`: superclasses a task labels, which clutter must not show unlabelled.
    """
    allowed = np.setdiff1d(np.arange(N_SOURCE_SUPER), np.asarray(exclude, dtype=int))
    return [category_object(d, cat, allowed[d.integers(len(allowed))], d.integers(N_SUB),
                            radius=radius, centre=(0.05, 0.95), present=d.bernoulli(p))
            for _ in range(k)]


def scene_of(d: Draws, n: int, bg: Background, objects: list) -> Scene:
    sc = Scene.empty(n)
    sc.background, sc.objects = bg, objects
    return sc


def set_view(d: Draws, sc: Scene, *, zoom=(1.0, 1.0), rot: float = 0.0, shift: float = 0.0):
    sc.zoom, sc.view_rot = d.u(*zoom), d.u(-rot, rot)
    sc.shift_x, sc.shift_y = d.u(-shift, shift), d.u(-shift, shift)
    return sc


def balanced(ctx: Ctx, n_classes: int) -> np.ndarray:
    """Single-label classes cycle with the index: balanced splits, labels a pure function of i."""
    return (ctx.indices % n_classes).astype(np.int64)


# ---------------------------------------------------------------- sources


def objects_source(d: Draws, ctx: Ctx):
    y = balanced(ctx, N_SOURCE_SUPER * N_SUB)
    # Objects at many scales, as ImageNet's are: down to the size they have in scenes, so
    # that what the source learns about an object holds where scenes show it.
    obj = category_object(d, ctx.cat, y // N_SUB, y % N_SUB, radius=(0.16, 0.34), jitter=1.4)
    sc = scene_of(d, ctx.n, background(d, ctx.n), clutter(d, ctx.cat, ctx.n, 2, 0.5) + [obj])
    return nuisances(d, sc, occlude=0.3, noise=(0.03, 0.08)), y


def _scene_objects(d: Draws, cat: Catalog, s: np.ndarray, n: int,
                   k: int = 4) -> tuple[list, list]:
    """Up to k objects of scene categories `s` and, per slot, their superclasses."""
    count = cat.scene_count[s, 0] + d.integers(4) % (cat.scene_count[s, 1] - cat.scene_count[s, 0] + 1)
    band = cat.scene_obj_band[s]
    objs, sups = [], []
    for j in range(k):
        cls = cat.scene_objects[s, d.integers(cat.scene_objects.shape[1])]
        sup = cls // N_SUB
        sups.append(sup)
        # Within the source's object scales (0.16-0.34), so that the objects network reads
        # which objects a scene holds: scene content is source content.
        o = category_object(d, cat, sup, cls % N_SUB, radius=(0.16, 0.24),
                            centre=(0.2, 0.8), present=j < count)
        o.cy = np.where(band == 1, d.u(0.6, 0.9), np.where(band == 2, d.u(0.1, 0.4), o.cy))
        objs.append(o)
    return objs, sups


SCENES_PER_LAYOUT = 4
LAYOUT_SHOWN = 0.4  # share of a scene's images on its own layout (the others: any background)


def _weak_layout(d: Draws, ctx: Ctx, layout: np.ndarray) -> Background:
    """The layout of scene categories `layout` on LAYOUT_SHOWN of the images, any background
    on the rest: a scene's layout is a cue, its objects are the label. Background colour and
    texture statistics are what an untrained network reads best, so a scene task decided by
    its layout would be near to no source at all."""
    own = background(d, ctx.n, cat=ctx.cat, scene_id=layout, jitter=1.5)
    other = background(d, ctx.n)
    return pick_per_image(d.bernoulli(LAYOUT_SHOWN), own, other)


def scenes_source(d: Draws, ctx: Ctx, n_scenes: int = N_SCENES):
    """Scene categories: a background layout shared by SCENES_PER_LAYOUT categories, told
    apart by the source objects that co-occur in them (and where they stand)."""
    y = balanced(ctx, n_scenes)
    return scene_images(d, ctx, y), y


def scene_images(d: Draws, ctx: Ctx, scene: np.ndarray) -> Scene:
    """Images of scene categories `scene` (one per image)."""
    layout = (scene // SCENES_PER_LAYOUT) * SCENES_PER_LAYOUT
    bg = _weak_layout(d, ctx, layout)
    sc = scene_of(d, ctx.n, bg, _scene_objects(d, ctx.cat, scene, ctx.n)[0]
                  + clutter(d, ctx.cat, ctx.n, 1, 0.4))
    return nuisances(d, set_view(d, sc, zoom=(1.0, 1.3), shift=0.08), occlude=0.2)


def hybrid_source(d: Draws, ctx: Ctx):
    """The union label set: objects classes first, then scene classes."""
    n_obj = N_SOURCE_SUPER * N_SUB
    y = balanced(ctx, n_obj + N_SCENES)
    is_obj = y < n_obj
    imgs_o, _ = objects_source(d, Ctx(ctx.cat, ctx.n, y))
    imgs_s, _ = scenes_source(d, Ctx(ctx.cat, ctx.n, np.maximum(y - n_obj, 0)))
    return merge_scenes(is_obj, imgs_o, imgs_s), y


def pick_per_image(pick_a: np.ndarray, a, b):
    """Per image, every field of dataclass batch `a` where pick_a, else of `b`."""
    out = type(a).empty(len(pick_a))
    for f in out.__dataclass_fields__:
        x, y = getattr(a, f), getattr(b, f)
        setattr(out, f, np.where(pick_a.reshape(-1, *([1] * (np.ndim(x) - 1))), x, y))
    return out


def merge_scenes(pick_a: np.ndarray, a: Scene, b: Scene) -> Scene:
    """Per image, scene a where pick_a else scene b (slot lists padded to equal length)."""

    def sel(x, y):
        m = pick_a.reshape(-1, *([1] * (np.ndim(x) - 1)))
        return np.where(m, x, y)

    def merge_dc(x, y):
        return pick_per_image(pick_a, x, y)

    n = len(pick_a)
    pad = max(len(a.objects), len(b.objects))
    objs_a = a.objects + [ObjectSlot.empty(n) for _ in range(pad - len(a.objects))]
    objs_b = b.objects + [ObjectSlot.empty(n) for _ in range(pad - len(b.objects))]
    out = Scene.empty(n)
    for f in out.__dataclass_fields__:
        if f == "background":
            out.background = merge_dc(a.background, b.background)
        elif f == "objects":
            out.objects = [merge_dc(x, y) for x, y in zip(objs_a, objs_b, strict=True)]
        else:
            setattr(out, f, sel(getattr(a, f), getattr(b, f)))
    return out


# ---------------------------------------------------------------- classification group

CLUTTER_CLASSES = np.arange(10)  # the source superclasses labelled in "objects in clutter"


def objects_in_clutter(d: Draws, ctx: Ctx):
    n, k = ctx.n, len(CLUTTER_CLASSES)
    count = 1 + d.integers(2)
    objs, labels = [], np.zeros((n, k), np.uint8)
    for j in range(2):
        cls = d.integers(k)
        present = j < count
        # The source's own object scale (its radius is 0.22-0.34): the task is the source's
        # content, several objects at once.
        o = category_object(d, ctx.cat, CLUTTER_CLASSES[cls], d.integers(N_SUB),
                            radius=(0.18, 0.28), centre=(0.25, 0.75), present=present)
        labels[np.arange(n)[present], cls[present]] = 1
        objs.append(o)
    sc = scene_of(d, n, background(d, n),
                  clutter(d, ctx.cat, n, 2, 0.5, exclude=CLUTTER_CLASSES) + objs)
    return nuisances(d, sc, occlude=0.2), labels


def rooms(d: Draws, ctx: Ctx):
    """Room types: pairs of the scenes source's categories that scene_categories leaves
    out (20-39), new images: a coarser label over the scenes source's own content."""
    y = balanced(ctx, N_ROOMS)
    scene = N_SCENE_TARGET + 2 * y + d.integers(2)
    return scene_images(d, ctx, scene), y


N_SCENE_TARGET = 20


N_ROOMS = 10


def scene_categories(d: Draws, ctx: Ctx):
    """Twenty of the scenes source's categories, new images, fewer of them."""
    return scenes_source(d, ctx, n_scenes=N_SCENE_TARGET)


# ---------------------------------------------------------------- attributes

# Coarse groups of the source's superclasses (five each): which kinds of source objects a
# scene holds is source content at a coarser grain than the source's own labels.
OBJECT_GROUPS = 4
SCENE_ATTRIBUTES = ("cluttered", "dark", "big_object") + tuple(
    f"has_group{g}" for g in range(OBJECT_GROUPS))


def scene_attributes(d: Draws, ctx: Ctx):
    n, cat = ctx.n, ctx.cat
    s = d.integers(N_SCENES)
    bg = _weak_layout(d, ctx, s)
    many = d.bernoulli(0.4)
    objs, sups = _scene_objects(d, cat, s, n)
    for j, o in enumerate(objs):
        o.present = np.where(many, 1.0, (j < 1) * 1.0)
    big = d.bernoulli(0.3)
    objs[0].radius = np.where(big, d.u(0.26, 0.34), objs[0].radius)
    sc = nuisances(d, set_view(d, scene_of(d, n, bg, objs), zoom=(1.0, 1.2), shift=0.05))
    dark = d.bernoulli(0.35)
    sc.light[:, 0] = np.where(dark, d.u(0.35, 0.55), d.u(0.85, 1.15))
    group = N_SOURCE_SUPER // OBJECT_GROUPS
    has = [np.any([(o.present > 0) & (sup // group == g) for o, sup in zip(objs, sups,
                                                                           strict=True)], axis=0)
           for g in range(OBJECT_GROUPS)]
    labels = np.stack([many, dark, big, *has], 1).astype(np.uint8)
    return sc, labels


OBJECT_ATTRIBUTES = ("striped", "checked", "dotted", "wavy", "red", "green", "blue", "elongated",
                     "has_part", "lobed")


def object_attributes(d: Draws, ctx: Ctx):
    """Attributes of *novel* categories (superclasses 20-29), appearance drawn per image."""
    n, cat = ctx.n, ctx.cat
    sup = 20 + d.integers(10)
    o = category_object(d, cat, sup, d.integers(N_SUB), radius=(0.24, 0.34))
    tex = d.integers(len(TEXTURES))
    hue_bin = d.integers(3)  # red, green, blue families
    hue = hue_bin / 3 + d.u(-0.06, 0.06)
    o.texture, o.freq = tex.astype(float), d.u(0.7, 1.3)
    o.col_a = hsv_to_rgb(hue, d.u(0.6, 1.0), d.u(0.6, 1.0))
    o.col_b = hsv_to_rgb(hue, d.u(0.3, 0.6), d.u(0.25, 0.45))
    elongated = d.bernoulli(0.4)
    o.aspect = np.where(elongated, d.u(1.7, 2.2), d.u(1.0, 1.2))
    has_part = d.bernoulli(0.4)
    o.part_on = np.stack([has_part, has_part & d.bernoulli(0.5)], 1).astype(float)
    o.part_angle = np.stack([d.u(0, 2 * np.pi), d.u(0, 2 * np.pi)], 1)
    lobed = d.bernoulli(0.4)
    o.coef = np.where(lobed[:, None], o.coef * 0.3 + np.eye(4)[d.integers(3) + 1] * 0.3,
                      o.coef * 0.4)
    sc = scene_of(d, n, background(d, n, contrast=(0.0, 0.2)), clutter(d, cat, n, 1, 0.4) + [o])
    labels = np.concatenate([np.eye(4)[tex], np.eye(3)[hue_bin],
                             np.stack([elongated, has_part, lobed], 1)], 1).astype(np.uint8)
    return nuisances(d, sc), labels


PERSON = 22
PART_ATTRIBUTES = ("hat", "glasses", "belt", "shoes", "bag")
# object-frame (u along the body, v across) positions and mark shapes of each part
_PARTS = {"hat": (-1.0, 0.0, 3), "glasses": (-0.55, 0.0, 2), "belt": (0.1, 0.0, 4),
          "shoes": (0.9, 0.0, 1), "bag": (0.2, 0.75, 5)}


def part_attributes(d: Draws, ctx: Ctx):
    """Small local marks on one upright, elongated category."""
    n, cat = ctx.n, ctx.cat
    # Radius x aspect keeps the whole body (hat to shoes) in frame.
    o = category_object(d, cat, np.full(n, PERSON), d.integers(N_SUB), radius=(0.22, 0.26),
                        rot=0.3, centre=(0.42, 0.58))
    o.rot = o.rot + np.pi / 2  # u axis points down the image: upright
    # A plain body: the marks, not the body's texture, are what varies.
    o.col_b = o.col_a * 0.85
    o.aspect = d.u(1.7, 2.0)
    o.part_on = np.zeros_like(o.part_on)
    on = np.stack([d.bernoulli(0.4) for _ in PART_ATTRIBUTES], 1)
    # Each image shows up to N_MARKS of its parts (the first ones drawn).
    order = np.argsort(~on, axis=1, kind="stable")[:, :N_MARKS]
    shown = np.take_along_axis(on, order, 1)
    on = np.zeros_like(on)
    np.put_along_axis(on, order, shown, 1)
    spec = np.array([_PARTS[p] for p in PART_ATTRIBUTES])
    o.mark = np.where(shown, spec[order, 2], 0).astype(float)
    o.mark_u = spec[order, 0] * o.aspect[:, None]
    o.mark_v = spec[order, 1]
    # About 8 px across at 32 px, and in saturated bright colours: small, but legible.
    o.mark_size = d.u(0.55, 0.65)[:, None] * np.ones((n, N_MARKS))
    o.mark_col = np.stack([hsv_to_rgb(d.u(), d.u(0.7, 1), d.u(0.75, 1)) for _ in range(N_MARKS)], 1)
    sc = scene_of(d, n, background(d, n), clutter(d, cat, n, 1, 0.4) + [o])
    return nuisances(d, sc, occlude=0.1), on.astype(np.uint8)


# ---------------------------------------------------------------- fine-grained

BREED_SUPERS = np.arange(4)  # source superclasses whose new subclasses are the "breeds"


def breeds(d: Draws, ctx: Ctx):
    """New subclasses of four source superclasses: a shape the source knows, told apart by a
    hue shift and texture frequency the source never labelled (Catalog.breed_*)."""
    cat = ctx.cat
    y = balanced(ctx, len(BREED_SUPERS) * N_BREED)
    sup, b = BREED_SUPERS[y // N_BREED], y % N_BREED
    o = category_object(d, cat, sup, np.zeros(ctx.n, int), radius=(0.26, 0.36))
    o.texture = cat.sub_texture[sup, 0].astype(float)
    o.freq = cat.breed_freq[sup, b] * (1 + d.normal(0.06))
    o.orient = cat.breed_orient[sup, b] + d.normal(0.2)
    o.col_a = colours(d, cat.breed_hue[sup, b, 0], 0.75, 0.85, 1.0)
    o.col_b = colours(d, cat.breed_hue[sup, b, 1], 0.55, 0.45, 1.0)
    sc = scene_of(d, ctx.n, background(d, ctx.n), clutter(d, ctx.cat, ctx.n, 1, 0.3) + [o])
    return nuisances(d, sc, occlude=0.15), y


N_BIRDS, N_FLOWERS = 15, 15
BIRD, FLOWER = 20, 21


def birds(d: Draws, ctx: Ctx):
    """A novel superclass whose subtypes differ by small local marks (type, colour, place)."""
    n = ctx.n
    y = balanced(ctx, N_BIRDS)
    o = category_object(d, ctx.cat, np.full(n, BIRD), np.zeros(n, int), radius=(0.28, 0.38))
    mark_type = 1 + (y % 5)
    mark_place = (y // 5) % 3
    o.mark = np.stack([mark_type, np.zeros(n), np.zeros(n)], 1).astype(float)
    place_u = np.array([-0.6, 0.0, 0.5])[mark_place]
    place_v = np.array([0.0, 0.45, -0.3])[mark_place]
    o.mark_u = np.stack([place_u * o.aspect, place_u, place_u], 1)
    o.mark_v = np.stack([place_v, place_v, place_v], 1)
    o.mark_size = np.stack([d.u(0.45, 0.55)] * 3, 1)  # about 8 px across at 32 px
    o.col_b = o.col_a * 0.85  # a plain body: the mark is what tells subtypes apart
    hue = np.array([0.0, 0.6, 0.15])[(y * 7 // 5) % 3]
    o.mark_col = np.repeat(hsv_to_rgb(hue + d.u(-0.04, 0.04), d.u(0.8, 1), d.u(0.8, 1))[:, None],
                           3, 1)
    sc = scene_of(d, n, background(d, n), clutter(d, ctx.cat, n, 1, 0.3) + [o])
    return nuisances(d, sc, occlude=0.1), y


FLOWER_LOBES = 3  # subtypes: lobe count (3, 4 or 5 petals) x one of five close hues


def flowers(d: Draws, ctx: Ctx):
    """A novel lobed superclass whose subtypes differ by their number of petals and a hue
    within one narrow range: shape detail and colour shades below the source's categories
    (its subclasses differ by texture and by far larger colour differences)."""
    n = ctx.n
    y = balanced(ctx, N_FLOWERS)
    o = category_object(d, ctx.cat, np.full(n, FLOWER), np.zeros(n, int), radius=(0.26, 0.38))
    lobes = y % FLOWER_LOBES
    o.coef = np.eye(4)[lobes + 1] * 0.35 * (1 + d.normal(0.1))[:, None]
    o.aspect = np.ones(n)
    hue = 0.55 + 0.07 * (y // FLOWER_LOBES)
    o.texture, o.freq = d.integers(len(TEXTURES)).astype(float), d.u(0.9, 1.3)
    o.col_a = colours(d, hue, 0.8, 0.9, 1.0)
    o.col_b = colours(d, hue + 0.1, 0.6, 0.5, 1.0)
    sc = scene_of(d, n, background(d, n), clutter(d, ctx.cat, n, 1, 0.3) + [o])
    return nuisances(d, sc, occlude=0.1), y


# ---------------------------------------------------------------- compositional

ACTOR = 24
RELATIONS = ("on", "under", "beside", "holding")


def _actor_and_object(d: Draws, cat: Catalog, n: int, relation: np.ndarray, obj_sup: np.ndarray,
                      *, present=None, scale: float = 1.0, side=None):
    """An upright actor and an object placed by `relation` (index into RELATIONS); `side`
    (+1 right, -1 left) of a side-by-side object, random when None."""
    # Sizes and offsets keep the actor and its object in frame: the relation must be seen.
    actor = category_object(d, cat, np.full(n, ACTOR), np.zeros(n, int), radius=(0.13, 0.15),
                            rot=0.15, centre=(0.44, 0.56), present=present)
    actor.radius = actor.radius * scale
    actor.rot = actor.rot + np.pi / 2
    actor.aspect = np.full(n, 1.4)
    obj = category_object(d, cat, obj_sup, d.integers(N_SUB), radius=(0.12, 0.14), present=present)
    obj.radius = obj.radius * scale
    obj.radius = np.where(relation == 3, obj.radius * 0.75, obj.radius)
    r, ro = actor.radius, obj.radius
    coin = np.where(d.bernoulli(0.5), 1.0, -1.0)
    side = coin if side is None else np.where(np.isnan(side), coin, side)
    reach = 1.25 * r + ro  # the actor's half-length (1.4 r) plus the object's radius, touching
    dx = np.select([relation == 0, relation == 1, relation == 2], [0, 0, side * (r + ro + 0.01)],
                   side * 0.9 * r)
    dy = np.select([relation == 0, relation == 1, relation == 2], [-reach, reach, 0.0], 0.3 * r)
    obj.cx, obj.cy = actor.cx + dx, actor.cy + dy
    return actor, obj


def actions(d: Draws, ctx: Ctx):
    """The label is the relation between an actor and an object; 1-2 pairs per image."""
    n = ctx.n
    labels = np.zeros((n, len(RELATIONS)), np.uint8)
    slots = []
    two = d.bernoulli(0.35)
    for j in range(2):
        rel = d.integers(len(RELATIONS))
        present = np.ones(n, bool) if j == 0 else two
        # With two pairs, a side-by-side object stands towards the middle, in frame.
        inward = np.where(two, -1.0 if j else 1.0, np.nan)
        a, o = _actor_and_object(d, ctx.cat, n, rel, d.integers(N_SOURCE_SUPER), present=present,
                                 scale=np.where(two, 0.75, 1.0), side=inward)
        # With two pairs, the first stands on the left half and the second on the right.
        offset = np.where(two, (0.28 if j else -0.22) + 0.5 - a.cx, 0.0) * 0.8
        for s in (a, o):
            s.cx = s.cx + offset
        labels[np.arange(n)[present], rel[present]] = 1
        slots += [a, o]
    sc = scene_of(d, n, background(d, n), clutter(d, ctx.cat, n, 1, 0.4) + slots)
    return nuisances(d, sc), labels


INTERACTION_OBJECTS = np.array([5, 6, 7])


def interactions(d: Draws, ctx: Ctx):
    """(object, relation) classes: the same objects appear in several classes."""
    n = ctx.n
    y = balanced(ctx, len(INTERACTION_OBJECTS) * len(RELATIONS))
    rel, obj = y % len(RELATIONS), INTERACTION_OBJECTS[y // len(RELATIONS)]
    a, o = _actor_and_object(d, ctx.cat, n, rel, obj)
    # A bystander object that takes part in no relation.
    other = clutter(d, ctx.cat, n, 1, 0.5, radius=(0.07, 0.1), exclude=INTERACTION_OBJECTS)
    sc = scene_of(d, n, background(d, n), other + [a, o])
    return nuisances(d, sc), y


PHRASE_OBJECTS = np.array([8, 9, 12, 13])
PHRASES = ((0, 1, 0), (2, 3, 2), (1, 2, 1), (3, 0, 0))  # (a, b, relation of a to b)
PHRASE_LABELS = tuple(f"has_{i}" for i in range(4)) + ("0_on_1", "2_beside_3", "1_under_2",
                                                       "3_on_0")


def phrases(d: Draws, ctx: Ctx):
    """Specific object pairs in specific arrangements vs. the same objects alone."""
    n, cat = ctx.n, ctx.cat
    labels = np.zeros((n, 8), np.uint8)
    which = d.integers(len(PHRASES))
    as_phrase = d.bernoulli(0.5)
    a_idx = np.array([p[0] for p in PHRASES])[which]
    b_idx = np.array([p[1] for p in PHRASES])[which]
    rel = np.array([p[2] for p in PHRASES])[which]
    a = category_object(d, cat, PHRASE_OBJECTS[a_idx], d.integers(N_SUB), radius=(0.12, 0.16),
                        centre=(0.3, 0.7))
    b = category_object(d, cat, PHRASE_OBJECTS[b_idx], d.integers(N_SUB), radius=(0.12, 0.16))
    r = a.radius
    dx = np.select([rel == 0, rel == 1], [0, 0], 2.3 * r)
    dy = np.select([rel == 0, rel == 1], [2.2 * r, -2.2 * r], 0)
    # A "phrase" places b at its relation to a; otherwise b stands somewhere unrelated.
    far = d.u(0.3, 0.45) * np.where(d.bernoulli(0.5), 1, -1)
    b.cx = np.where(as_phrase, a.cx + dx, np.clip(a.cx + far, 0.1, 0.9))
    b.cy = np.where(as_phrase, a.cy + dy, np.clip(1 - a.cy + d.u(-0.1, 0.1), 0.1, 0.9))
    rows = np.arange(n)
    labels[rows, a_idx] = 1
    labels[rows, b_idx] = 1
    labels[rows[as_phrase], 4 + which[as_phrase]] = 1
    sc = scene_of(d, n, background(d, n), clutter(d, cat, n, 2, 0.4, exclude=PHRASE_OBJECTS) + [a, b])
    return nuisances(d, sc), labels
