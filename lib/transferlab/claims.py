"""The paper's claims (Table 1 and section 3) and their check against a results table.

Each claim is reduced to one statistic over tasks: a mean over tasks of a per-task effect
(in points of percent; N-S scores are taken x25 so that 0..4 maps onto 0..100), or a Spearman
correlation between a per-task quantity and the task's distance rank. Its 95% interval comes
from a bootstrap that resamples, per replicate,
  - the tasks (with replacement), when the claim is about tasks in general,
  - the seeds (whole seed columns, since one training seed serves every task), and
  - each cell's test-set noise: a normal draw with the sd implied by its ci_low/ci_high
    (added once per cell, not divided by the number of seeds: the seeds share test images).

Verdict, with the claimed effect oriented to be positive (s = direction * (x - threshold)):
  reproduced      the interval lies entirely on the claimed side (and, for "nearly all"
                  claims, at least 75% of the tasks show the effect);
  not reproduced  the interval lies entirely on the other side, or it excludes an effect of
                  `min_effect` (0.5 points; 0.2 for a correlation) on the claimed side;
  inconclusive    otherwise, or when the data the claim needs are missing (with the reason).
Where a claim needs "the best of several levels", the level is chosen by `cv_score` when
every candidate has one, else by the other tasks (leave one task out), never by the task's
own test score, which would favour whichever side the noise happens to help.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from . import plots

__all__ = ["Claim", "Verdict", "CLAIMS", "VERDICTS", "check", "verdicts", "claims_for"]

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
NEARLY_ALL = 0.75  # share of tasks that must show the effect for "nearly all tasks" claims
NEAR_GROUPS = ("classification", "attributes")
FAR_GROUPS = ("retrieval",)
DISTANT_GROUPS = ("fine-grained", "compositional", "retrieval")
SCENE_TASK = re.compile(r"room|scene|indoor|sun|mit|places", re.IGNORECASE)
LEVEL_ALIASES = {
    "objects": ("objects", "imagenet", "object"),
    "scenes": ("scenes", "places", "places365", "scene"),
    "hybrid": ("hybrid",),
    "concat": ("concat", "concatenated", "late_fusion"),
    "off": ("off", "no", "false", "frozen"),
    "on": ("on", "yes", "true", "fine-tuned", "finetuned"),
    "standard": ("standard", "deep standard", "std"),
    "optimized": ("optimized", "optimised", "deep optimized", "opt"),
}
Z95 = 1.959964


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: `key` names it, `source` says where the paper makes it."""

    key: str
    factor: str
    text: str
    source: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one claim; `statistic` with its 95% interval [ci_low, ci_high]."""

    claim: str
    factor: str
    verdict: str
    evidence: str
    statistic: float
    ci_low: float
    ci_high: float

    def __str__(self) -> str:
        text = CLAIMS[self.claim].text if self.claim in CLAIMS else self.claim
        return f"[{self.verdict.upper()}] {text}\n    {self.evidence}"


_CLAIM_LIST = (
    Claim(
        "width_near",
        "width",
        "Wider networks help the tasks nearest the source: the widest network beats the next widest there.",
        "Table 1; section 3.1.1, Figure 3",
    ),
    Claim(
        "width_far",
        "width",
        "Distant (retrieval) tasks suffer from over-parametrisation: a "
        "moderately wide network beats the widest.",
        "Table 1; section 3.1.1, Figure 3",
    ),
    Claim(
        "width_trend",
        "width",
        "The gain of the widest network over the next widest shrinks "
        "as the task's distance from the source grows.",
        "Table 1; Figure 3",
    ),
    Claim(
        "depth_helps",
        "depth",
        "Deeper networks help nearly all tasks: the deepest network beats the shallowest.",
        "Table 1; section 3.1.1, Figure 4",
    ),
    Claim(
        "early_stopping_dont",
        "early_stopping",
        "Don't stop early: the final checkpoint is "
        "as good as (within 1 point) or better than every earlier one for nearly all tasks.",
        "Table 1; section 3.1.2, Figure 5",
    ),
    Claim(
        "source_scenes_for_scenes",
        "source_task",
        "A scene source helps scene tasks: the "
        "scenes network beats the objects network on the scene classification tasks.",
        "section 3.1.3, Table 3",
    ),
    Claim(
        "source_objects_far",
        "source_task",
        "An object source generalises better to distant "
        "tasks: the objects network beats the scenes network on fine-grained, compositional "
        "and retrieval tasks.",
        "section 3.1.3, Table 3",
    ),
    Claim(
        "source_concat_hybrid",
        "source_task",
        "Late fusion beats the hybrid network: concat >= hybrid, concat ahead on average.",
        "section 3.1.3, Table 3",
    ),
    Claim(
        "layer_trend",
        "layer",
        "The best layer moves earlier as distance grows: the rank "
        "correlation of distance and best-layer index is negative.",
        "Table 1; section 3.2.1, Figure 6",
    ),
    Claim(
        "dimred_saturation",
        "dim_reduction",
        "Saturation comes later for distant tasks: the "
        "PCA dimension reaching 95% of the task's gain grows with distance.",
        "Table 1; section 3.2.2, Figure 8",
    ),
    Claim(
        "dimred_retrieval",
        "dim_reduction",
        "Retrieval benefits from PCA: a reduced dimension beats the full representation on retrieval tasks.",
        "Table 1; section 3.2.2",
    ),
    Claim(
        "finetune_helps",
        "fine_tuning",
        "Fine-tuning helps nearly all tasks.",
        "Table 1; section 3.2.3, Table 4",
    ),
    Claim(
        "finetune_gain_distance",
        "fine_tuning",
        "The gain of fine-tuning grows with the task's distance from the source.",
        "section 3.2.3, Table 4",
    ),
    Claim(
        "data_more_helps",
        "data_size",
        "More source data helps nearly all tasks: the full source set beats the smallest fraction.",
        "section 3.2.4, Table 7 (supp.)",
    ),
    Claim(
        "optimized_reduces_error",
        "optimized",
        "Optimizing the factors reduces the error of the standard representation on nearly every task.",
        "section 4, Table 6, Figure 2",
    ),
)
CLAIMS: dict[str, Claim] = {c.key: c for c in _CLAIM_LIST}


class _Missing(Exception):
    """The data a claim needs are not in the table (the message says which)."""


# ----------------------------------------------------------------------------- the data grid


@dataclass(frozen=True)
class _Grid:
    """One factor's scores as arrays: tasks (nearest first) x levels (by index) x seeds."""

    tasks: tuple[str, ...]
    groups: np.ndarray
    distance: np.ndarray
    levels: tuple[str, ...]
    scores: np.ndarray  # (T, L, S), percent units, NaN where missing
    sd: np.ndarray  # (T, L) test-set sd from the bootstrap interval, 0 where unknown
    cv: np.ndarray  # (T, L) mean cv_score (percent units), NaN where absent

    @property
    def mean(self) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(self.scores, axis=2)

    @property
    def n_seeds(self) -> int:
        return self.scores.shape[2]

    def subset(self, keep: np.ndarray) -> _Grid:
        keep = np.asarray(keep, bool)
        return replace(
            self,
            tasks=tuple(np.array(self.tasks)[keep]),
            groups=self.groups[keep],
            distance=self.distance[keep],
            scores=self.scores[keep],
            sd=self.sd[keep],
            cv=self.cv[keep],
        )

    def in_groups(self, groups: tuple[str, ...], what: str) -> _Grid:
        keep = np.isin(self.groups, groups)
        if not keep.any():
            raise _Missing(f"no {what} tasks (groups {list(groups)}) in the table")
        return self.subset(keep)


def _grid(df: pd.DataFrame, factor: str) -> _Grid:
    sub = df[(df["factor"] == factor) & (df["group"] != "source")]  # claims are about target tasks
    if sub.empty:
        present = sorted(df["factor"].unique())
        raise _Missing(f"the table has no rows for factor {factor!r} (present: {present})")
    sub = plots.select_metric(sub, None)
    plots.summarize(sub, factor)  # raises on duplicate settings and clashing level indices
    levels = plots.levels_of(sub, factor)
    order = plots.task_order(sub)
    seeds = sorted(sub["seed"].unique())
    ti = {t: i for i, t in enumerate(order["task"])}
    li = {lvl: i for i, lvl in enumerate(levels)}
    si = {s: i for i, s in enumerate(seeds)}
    scale = np.where(sub["metric"] == "ns_score", plots.NS_SCALE, 1.0)
    t, lv = sub["task"].map(ti).to_numpy(), sub["level"].astype(str).map(li).to_numpy()
    scores = np.full((len(ti), len(li), len(si)), np.nan)
    scores[t, lv, sub["seed"].map(si).to_numpy()] = sub["score"].to_numpy() * scale
    sd = np.zeros((len(ti), len(li)))
    cv = np.full((len(ti), len(li)), np.nan)
    cells = (
        sub.assign(
            _t=t,
            _l=lv,
            _sd=(sub["ci_high"] - sub["ci_low"]) * scale / (2 * Z95),
            _cv=sub["cv_score"] * scale,
        )
        .groupby(["_t", "_l"])[["_sd", "_cv"]]
        .mean()
    )
    idx = (cells.index.get_level_values(0), cells.index.get_level_values(1))
    sd[idx] = np.nan_to_num(cells["_sd"].to_numpy())
    cv[idx] = cells["_cv"].to_numpy()
    return _Grid(
        tasks=tuple(order["task"]),
        groups=order["group"].to_numpy(),
        distance=order["distance_rank"].to_numpy(float),
        levels=tuple(levels),
        scores=scores,
        sd=sd,
        cv=cv,
    )


def _level(grid: _Grid, name: str, fallback: str | None = None) -> int:
    """Index of the level called `name` (or an alias); `fallback` "first"/"last" by index."""
    names = [lvl.lower() for lvl in grid.levels]
    for alias in LEVEL_ALIASES.get(name, (name,)):
        if alias in names:
            return names.index(alias)
    if fallback == "first" and len(names) >= 2:
        return 0
    if fallback == "last" and len(names) >= 2:
        return len(names) - 1
    raise _Missing(f"level {name!r} is absent (levels: {list(grid.levels)})")


# ----------------------------------------------------------------------------- the test


@dataclass(frozen=True)
class _Test:
    """A claim as a statistic: `per_task(M, idx)` gives one value per task of the score
    matrix M (tasks idx of the grid); `aggregate` makes them one number."""

    grid: _Grid
    per_task: Callable[[np.ndarray, np.ndarray], np.ndarray]
    aggregate: str  # "mean" (over tasks) or "spearman" (with distance rank)
    measure: str
    unit: str = "points"
    direction: int = +1
    threshold: float = 0.0
    min_effect: float = 0.5
    nearly_all: bool = False
    note: str = ""


def _statistic(test: _Test, m: np.ndarray, idx: np.ndarray) -> float:
    v = test.per_task(m, idx)
    if test.aggregate == "spearman":
        return plots.spearman(test.grid.distance[idx], v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _replicates(grid: _Grid, n_boot: int, rng: np.random.Generator):
    """Score matrices with seeds and test-set noise resampled, and resampled task indices."""
    n_tasks, _, n_seeds = grid.scores.shape
    cols = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        seeded = np.nanmean(grid.scores[:, :, cols], axis=3).transpose(2, 0, 1)  # (B, T, L)
    seeded = np.where(np.isnan(seeded), grid.mean[None], seeded)
    noisy = seeded + rng.standard_normal(seeded.shape) * grid.sd[None]
    tasks = rng.integers(0, n_tasks, size=(n_boot, n_tasks))
    return noisy, tasks


def _evaluate(claim: Claim, test: _Test, n_boot: int, seed: int) -> Verdict:
    grid = test.grid
    all_idx = np.arange(len(grid.tasks))
    values = test.per_task(grid.mean, all_idx)
    n_valid = int(np.isfinite(values).sum())
    need = 3 if test.aggregate == "spearman" else 1
    if n_valid < need:
        raise _Missing(f"{test.measure}: {n_valid} task(s) with data, need {need}")
    point = _statistic(test, grid.mean, all_idx)
    if not np.isfinite(point):
        raise _Missing(f"{test.measure} is undefined (constant values across tasks)")
    noisy, tasks = _replicates(grid, n_boot, np.random.default_rng(seed))
    reps = np.array([_statistic(test, noisy[b][tasks[b]], tasks[b]) for b in range(n_boot)])
    reps = reps[np.isfinite(reps)]
    lo, hi = np.percentile(reps, [2.5, 97.5]) if len(reps) >= 20 else (np.nan, np.nan)
    verdict, why = _decide(test, point, lo, hi, values)
    sign = ">" if test.direction > 0 else "<"
    evidence = (
        f"{test.measure} = {point:+.2f} [95% CI {lo:+.2f}, {hi:+.2f}]"
        f"{' ' + test.unit if test.unit else ''}, claimed "
        f"{sign} {test.threshold:g}; {_count(test, values)}; bootstrap over tasks, "
        f"{grid.n_seeds} seed(s) and test-set intervals ({len(reps)} replicates). {why}"
        + (f" {test.note}" if test.note else "")
    )
    return Verdict(claim.key, claim.factor, verdict, evidence, float(point), float(lo), float(hi))


def _count(test: _Test, values: np.ndarray) -> str:
    ok = np.isfinite(values)
    if test.aggregate == "spearman":
        return f"{ok.sum()} tasks"
    side = test.direction * (values[ok] - test.threshold) > 0
    return f"effect on the claimed side for {side.sum()} of {ok.sum()} tasks"


def _decide(test: _Test, point: float, lo: float, hi: float, values: np.ndarray):
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive", "Too few valid bootstrap replicates for an interval."
    d = test.direction
    s_lo, s_hi = (d * (x - test.threshold) for x in (lo, hi))
    s_lo, s_hi = min(s_lo, s_hi), max(s_lo, s_hi)
    if s_lo > 0:
        ok = np.isfinite(values)
        share = float(np.mean(d * (values[ok] - test.threshold) > 0))
        if test.nearly_all and share < NEARLY_ALL:
            return "inconclusive", (
                f"The interval supports the claim on average, but only {share:.0%} of tasks "
                f"show it (claim: nearly all, >= {NEARLY_ALL:.0%})."
            )
        return "reproduced", "The interval lies on the claimed side."
    if s_hi < 0:
        return "not reproduced", "The interval lies on the opposite side."
    if s_hi < test.min_effect:
        return "not reproduced", (
            f"The interval excludes an effect of {test.min_effect:g} {test.unit} or more on "
            "the claimed side: any effect is negligible."
        )
    return "inconclusive", "The interval includes both the claimed effect and its absence."


# ----------------------------------------------------------------------------- helpers


def _diff(a: int, b: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda m, idx: m[:, a] - m[:, b]


def _select(grid: _Grid, m: np.ndarray, idx: np.ndarray, cands: list[int]) -> np.ndarray:
    """Per task, the column (of `cands`) chosen without the task's own test score: by
    cv_score when all candidates have one, else by the mean centred score of the other
    tasks (rows of the same task, as a bootstrap may repeat them, do not count)."""
    cands = np.asarray(cands)
    cv = grid.cv[idx][:, cands]
    if np.isfinite(cv).all():
        return cands[np.argmax(cv, axis=1)]
    sub = m[:, cands]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centred = sub - np.nanmean(sub, axis=1, keepdims=True)
    have = np.isfinite(centred).astype(float)
    values = np.nan_to_num(centred)
    same = (idx[:, None] == idx[None, :]).astype(float)
    n_other = have.sum(axis=0)[None] - same @ have
    others = (values.sum(axis=0)[None] - same @ values) / np.where(n_other > 0, n_other, np.nan)
    own = np.where(np.isnan(sub), -np.inf, sub)
    others = np.where(np.isnan(sub), -np.inf, np.where(np.isnan(others), own, others))
    return cands[np.argmax(others, axis=1)]


def _selection_note(grid: _Grid, cands: list[int], what: str) -> str:
    if np.isfinite(grid.cv[:, cands]).all():
        return f"The {what} is chosen per task by cv_score."
    return f"The {what} is chosen per task by the other tasks' scores (no cv_score)."


def _best_index(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = np.full(len(m), np.nan)
    ok = np.isfinite(m).any(axis=1)
    out[ok] = np.nanargmax(np.where(np.isnan(m[ok]), -np.inf, m[ok]), axis=1)
    return out


def _saturation(fraction: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Index of the first level reaching `fraction` of the task's range (min to max)."""

    def per_task(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin(m, axis=1), np.nanmax(m, axis=1)
        reached = m >= (lo + fraction * (hi - lo))[:, None]
        out = np.argmax(reached, axis=1).astype(float)
        out[~np.isfinite(hi) | (hi == lo)] = np.nan
        return out

    return per_task


def _two_levels(grid: _Grid, a: int, b: int) -> _Grid:
    """Tasks that have both levels a and b."""
    keep = np.isfinite(grid.mean[:, a]) & np.isfinite(grid.mean[:, b])
    if not keep.any():
        raise _Missing(f"no task has both levels {grid.levels[a]!r} and {grid.levels[b]!r}")
    return grid.subset(keep)


# ----------------------------------------------------------------------------- the claims


def _width_top(grid: _Grid) -> tuple[int, int, str]:
    if len(grid.levels) < 2:
        raise _Missing(f"width needs 2 levels, has {list(grid.levels)}")
    n = len(grid.levels)
    return n - 1, n - 2, f"{grid.levels[-1]} - {grid.levels[-2]}"


def _t_width_near(grid: _Grid) -> _Test:
    top, nxt, name = _width_top(grid)
    near = grid.in_groups(NEAR_GROUPS, "near")
    return _Test(near, _diff(top, nxt), "mean", f"mean gain ({name}) on near tasks")


def _t_width_far(grid: _Grid) -> _Test:
    top, nxt, name = _width_top(grid)
    far = grid.in_groups(FAR_GROUPS, "far")
    return _Test(far, _diff(top, nxt), "mean", f"mean gain ({name}) on far tasks", direction=-1)


def _t_width_trend(grid: _Grid) -> _Test:
    top, nxt, name = _width_top(grid)
    return _Test(
        grid,
        _diff(top, nxt),
        "spearman",
        f"Spearman rho(distance, {name})",
        unit="",
        direction=-1,
        min_effect=0.2,
    )


def _t_ends(grid: _Grid, what: str) -> _Test:
    if len(grid.levels) < 2:
        raise _Missing(f"{what} needs 2 levels, has {list(grid.levels)}")
    name = f"{grid.levels[-1]} - {grid.levels[0]}"
    return _Test(_two_levels(grid, -1, 0), _diff(-1, 0), "mean", f"mean gain ({name})", nearly_all=True)


def _t_early_stopping(grid: _Grid, tolerance: float) -> _Test:
    if len(grid.levels) < 2:
        raise _Missing(f"early stopping needs 2 checkpoints, has {list(grid.levels)}")
    final, earlier = len(grid.levels) - 1, list(range(len(grid.levels) - 1))

    def per_task(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
        best = _select(grid, m, idx, earlier)
        return m[:, final] - m[np.arange(len(m)), best]

    return _Test(
        grid,
        per_task,
        "mean",
        "mean (final - best earlier checkpoint)",
        threshold=-tolerance,
        min_effect=0.0,
        nearly_all=True,
        note=_selection_note(grid, earlier, "best earlier checkpoint"),
    )


def _t_scenes_for_scenes(grid: _Grid) -> _Test:
    sc, ob = _level(grid, "scenes"), _level(grid, "objects")
    keep = (grid.groups == "classification") & np.array([bool(SCENE_TASK.search(t)) for t in grid.tasks])
    if not keep.any():
        raise _Missing(
            f"no scene classification task (classification group, name matching {SCENE_TASK.pattern!r})"
        )
    sub = grid.subset(keep)
    return _Test(sub, _diff(sc, ob), "mean", f"mean gain (scenes - objects) on {[str(t) for t in sub.tasks]}")


def _t_objects_far(grid: _Grid) -> _Test:
    ob, sc = _level(grid, "objects"), _level(grid, "scenes")
    far = grid.in_groups(DISTANT_GROUPS, "distant")
    return _Test(far, _diff(ob, sc), "mean", "mean gain (objects - scenes) on distant tasks")


def _t_concat_hybrid(grid: _Grid) -> _Test:
    co, hy = _level(grid, "concat"), _level(grid, "hybrid")
    return _Test(_two_levels(grid, co, hy), _diff(co, hy), "mean", "mean (concat - hybrid)")


def _t_layer(grid: _Grid) -> _Test:
    return _Test(
        grid,
        _best_index,
        "spearman",
        "Spearman rho(distance, best-layer index)",
        unit="",
        direction=-1,
        min_effect=0.2,
    )


def _t_dimred_saturation(grid: _Grid, fraction: float) -> _Test:
    return _Test(
        grid,
        _saturation(fraction),
        "spearman",
        f"Spearman rho(distance, first dimension reaching {fraction:.0%} of the gain)",
        unit="",
        min_effect=0.2,
    )


def _t_dimred_retrieval(grid: _Grid) -> _Test:
    full = _level(grid, "full", fallback="last")
    reduced = [i for i in range(len(grid.levels)) if i != full]
    retr = grid.in_groups(FAR_GROUPS, "retrieval")

    def per_task(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
        best = _select(retr, m, idx, reduced)
        return m[np.arange(len(m)), best] - m[:, full]

    return _Test(
        retr,
        per_task,
        "mean",
        f"mean (best reduced - {grid.levels[full]}) on retrieval tasks",
        note=_selection_note(retr, reduced, "reduced dimension"),
    )


def _t_finetune(grid: _Grid, trend: bool) -> _Test:
    on, off = _level(grid, "on", fallback="last"), _level(grid, "off", fallback="first")
    sub = _two_levels(grid, on, off)
    if trend:
        return _Test(
            sub,
            _diff(on, off),
            "spearman",
            "Spearman rho(distance, on - off)",
            unit="",
            min_effect=0.2,
        )
    return _Test(sub, _diff(on, off), "mean", "mean gain (on - off)", nearly_all=True)


def _t_optimized(grid: _Grid) -> _Test:
    opt, std = _level(grid, "optimized", fallback="last"), _level(grid, "standard", "first")

    def per_task(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
        err_std, err_opt = 100.0 - m[:, std], 100.0 - m[:, opt]
        return (err_std - err_opt) / np.where(err_std > 0, err_std, np.nan)

    return _Test(
        _two_levels(grid, opt, std),
        per_task,
        "mean",
        "mean relative error reduction",
        unit="",
        min_effect=0.02,
        nearly_all=True,
    )


def _tests(key: str, grid: _Grid, tolerance: float, saturation: float) -> _Test:
    build = {
        "width_near": lambda: _t_width_near(grid),
        "width_far": lambda: _t_width_far(grid),
        "width_trend": lambda: _t_width_trend(grid),
        "depth_helps": lambda: _t_ends(grid, "depth"),
        "early_stopping_dont": lambda: _t_early_stopping(grid, tolerance),
        "source_scenes_for_scenes": lambda: _t_scenes_for_scenes(grid),
        "source_objects_far": lambda: _t_objects_far(grid),
        "source_concat_hybrid": lambda: _t_concat_hybrid(grid),
        "layer_trend": lambda: _t_layer(grid),
        "dimred_saturation": lambda: _t_dimred_saturation(grid, saturation),
        "dimred_retrieval": lambda: _t_dimred_retrieval(grid),
        "finetune_helps": lambda: _t_finetune(grid, trend=False),
        "finetune_gain_distance": lambda: _t_finetune(grid, trend=True),
        "data_more_helps": lambda: _t_ends(grid, "data size"),
        "optimized_reduces_error": lambda: _t_optimized(grid),
    }
    return build[key]()


# ----------------------------------------------------------------------------- public API


def claims_for(factor: str) -> list[Claim]:
    """The registered claims about `factor`."""
    factors = sorted({c.factor for c in CLAIMS.values()})
    if factor not in factors:
        raise ValueError(f"factor={factor!r} has no claims; valid: {factors}")
    return [c for c in CLAIMS.values() if c.factor == factor]


def check(
    claim_key: str,
    df: pd.DataFrame,
    n_boot: int = 2000,
    seed: int = 0,
    tolerance: float = 1.0,
    saturation: float = 0.95,
) -> Verdict:
    """Check one claim against a results table (see the module docstring for the rules).

    `tolerance`: points the final checkpoint may trail an earlier one and still count as
    "as good" (early stopping). `saturation`: share of a task's gain that defines its
    saturation dimension. Missing data give an "inconclusive" verdict with the reason.
    """
    if claim_key not in CLAIMS:
        raise ValueError(f"claim_key={claim_key!r} is not a claim; valid: {sorted(CLAIMS)}")
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot} is too few for a 95% interval; use >= 100")
    if not 0 < saturation <= 1:
        raise ValueError(f"saturation={saturation} must be in (0, 1]")
    claim = CLAIMS[claim_key]
    try:
        test = _tests(claim_key, _grid(df, claim.factor), tolerance, saturation)
        return _evaluate(claim, test, n_boot, seed)
    except _Missing as missing:
        nan = float("nan")
        return Verdict(claim.key, claim.factor, "inconclusive", f"Missing data: {missing}.", nan, nan, nan)


def verdicts(df: pd.DataFrame, factor: str, **options) -> pd.DataFrame:
    """All claims about `factor` checked against `df`, one row each (columns: claim, factor,
    verdict, evidence, statistic, ci_low, ci_high); `options` go to `check`."""
    rows = [asdict(check(c.key, df, **options)) for c in claims_for(factor)]
    return pd.DataFrame(
        rows, columns=["claim", "factor", "verdict", "evidence", "statistic", "ci_low", "ci_high"]
    )
