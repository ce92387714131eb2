"""The paper's nine claims, each a fixed statistic with a paired-bootstrap interval.

Defined once, before any tuning, in `CLAIMS` (one entry per claim: the paper's claim, the
factor it reads, its text, where the paper makes it, its statistics with their claimed side).
Groups by distance: near = classification + attributes, mid = fine-grained, far =
compositional + retrieval. Points are the task's metric in percent (N-S scores x 25).

The interval of a statistic is the 2.5 and 97.5 percentiles of its value over bootstrap
replicates; replicate b
  - resamples the tasks with replacement *within each group* (so every group keeps its size),
  - resamples the seeds with replacement (whole seeds: one training seed serves every task),
  - takes each cell's score on the b-th resample of its task's test items, which is the same
    resample for every level of the task (transferlab.study keys the resamples on the task's
    test set and the seed): differences between levels keep only their own noise (paired).
A table without replicates (e.g. read back from results.csv) falls back to independent normal
noise with each cell's interval: unpaired, wider; the evidence says so.

Verdict: *reproduced* when the interval of every statistic of the claim lies on its claimed
side (and the claim's own condition holds, e.g. "the network converged"); *not reproduced*
when one lies wholly on the other side; else *inconclusive*, also when the table lacks what
the claim needs (the evidence says what). Where a claim needs "the best of several levels"
(early stopping, PCA for retrieval), the level is chosen per task by `cv_score`, the
cross-validated score on the training split, never by the test score.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from . import results
from .stats import NS_SCALE, Z95, group_rows, levels_of, resample_within, select_metric, spearman, task_order

__all__ = ["Claim", "Statistic", "CLAIMS", "PAPER_CLAIMS", "VERDICTS", "COLUMNS", "check",
           "verdicts", "checked", "as_table", "claims_for", "Verdict", "Measured",
           "saturation_log2", "SOURCES", "uncertainty", "tasks_multiplier", "layer_drops"]

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
COLUMNS = ("paper_claim", "claim", "verdict", "statistic", "ci_low", "ci_high", "evidence")
NEAR = ("classification", "attributes")
MID = ("fine-grained",)
FAR = ("compositional", "retrieval")
NEARLY_ALL = 0.75  # share of tasks that must improve for "on nearly every task"
CONVERGED = 1.0  # points: the source top-1 of the last two snapshots differ by less
SOURCES = ("images", "tasks", "seeds")  # what a bootstrap replicate resamples


class _Missing(Exception):
    """The data a claim needs are not in the table (the message says which)."""


# ----------------------------------------------------------------------------- the cells


@dataclass(frozen=True)
class Cells:
    """One factor's scores on target tasks, tasks x levels (seeds averaged), in points.

    A bootstrap replicate is a `Cells` too: its rows are the resampled tasks.
    """

    tasks: tuple[str, ...]
    groups: np.ndarray
    domains: np.ndarray
    levels: tuple[str, ...]
    m: np.ndarray  # (T, L) score in points, NaN where missing
    cv: np.ndarray  # (T, L) cross-validated score on the training split, NaN where absent

    def col(self, name: str) -> int:
        """The column of level `name`."""
        if name not in self.levels:
            raise _Missing(f"level {name!r} is absent (levels: {list(self.levels)})")
        return self.levels.index(name)

    def subset(self, rows: np.ndarray) -> Cells:
        """The cells of the tasks in `rows` (a mask or indices; repeats allowed)."""
        return Cells(tuple(np.array(self.tasks)[rows]), self.groups[rows], self.domains[rows],
                     self.levels, self.m[rows], self.cv[rows])

    def rows(self, groups: tuple[str, ...] | None = None, domain: str | None = None,
             exclude: tuple[str, ...] = ()) -> np.ndarray:
        keep = np.ones(len(self.tasks), bool) if groups is None else np.isin(self.groups, groups)
        if domain is not None:
            keep &= self.domains == domain
        return keep & ~np.isin(self.groups, exclude)


def _mean(values: np.ndarray, rows: np.ndarray, what: str) -> float:
    """Mean of `values` over `rows` (NaN tasks dropped); _Missing if no task is there."""
    v = values[rows]
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise _Missing(f"no {what} task has the levels this claim compares")
    return float(v.mean())


def _by_cv(c: Cells, candidates: list[int]) -> np.ndarray:
    """Per task, the candidate column with the best cv_score (chosen without test scores)."""
    cv = c.cv[:, candidates]
    if not np.isfinite(cv).any(axis=1).all():
        raise _Missing("a task lacks cv_score for the candidate levels, so no level can be "
                       "chosen without looking at test scores")
    return np.asarray(candidates)[np.nanargmax(np.where(np.isnan(cv), -np.inf, cv), axis=1)]


def _dims(levels: tuple[str, ...]) -> np.ndarray:
    """PCA dimensions from level labels ("32", "1024 (full)")."""
    try:
        return np.array([int(str(lv).split()[0]) for lv in levels])
    except ValueError:
        raise _Missing(f"dimension levels {list(levels)} are not numbers") from None


# ----------------------------------------------------------------------------- the statistics


def _width_near(c: Cells) -> float:
    gain = c.m[:, c.col("large")] - c.m[:, c.col("medium")]
    return _mean(gain, c.rows(NEAR), "near")


def _width_near_minus_retrieval(c: Cells) -> float:
    gain = c.m[:, c.col("large")] - c.m[:, c.col("medium")]
    return _mean(gain, c.rows(NEAR), "near") - _mean(gain, c.rows(("retrieval",)), "retrieval")


def _depth(c: Cells) -> float:
    return _mean(c.m[:, -1] - c.m[:, 0], c.rows(exclude=("retrieval",)), "non-retrieval")


def _early_stopping(c: Cells) -> float:
    final = len(c.levels) - 1
    if final < 1:
        raise _Missing(f"early stopping needs 2 snapshots, has {list(c.levels)}")
    best = _by_cv(c, list(range(final)))
    return _mean(c.m[:, final] - c.m[np.arange(len(c.m)), best], c.rows(), "")


def _scenes_on_scene_tasks(c: Cells) -> float:
    gain = c.m[:, c.col("scenes")] - c.m[:, c.col("objects")]
    return _mean(gain, c.rows(("classification",), domain="scene"), "scene classification")


def _objects_on_distant_tasks(c: Cells) -> float:
    gain = c.m[:, c.col("objects")] - c.m[:, c.col("scenes")]
    return _mean(gain, c.rows(MID + FAR), "fine-grained, compositional or retrieval")


def _concat_minus_hybrid(c: Cells) -> float:
    return _mean(c.m[:, c.col("concat")] - c.m[:, c.col("hybrid")], c.rows(), "")


def _last_layer(c: Cells) -> int:
    return c.col("fc8") if "fc8" in c.levels else len(c.levels) - 1


def _drops(c: Cells) -> np.ndarray:
    """Per task, the drop from its best layer to its last FC layer, as a fraction of the best."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nanmax(c.m, axis=1)
    return (best - c.m[:, _last_layer(c)]) / np.where(best > 0, best, np.nan)


def _layer_drop(c: Cells) -> float:
    drop = _drops(c)
    return _mean(drop, c.rows(FAR), "far") - _mean(drop, c.rows(NEAR), "near")


def _full_column(c: Cells) -> int:
    marked = [i for i, lv in enumerate(c.levels) if "full" in str(lv)]
    return marked[0] if marked else int(np.argmax(_dims(c.levels)))


def _pca_for_retrieval(c: Cells) -> float:
    full = _full_column(c)
    reduced = [i for i in range(len(c.levels)) if i != full]
    if not reduced:
        raise _Missing("no reduced dimension among the levels")
    rows = c.rows(("retrieval",))
    if not rows.any():
        raise _Missing("no retrieval task in the table")
    sub = c.subset(rows)
    best = _by_cv(sub, reduced)
    return _mean(sub.m[np.arange(len(sub.m)), best] - sub.m[:, full], sub.rows(), "retrieval")


def saturation_log2(scores: np.ndarray, dims: np.ndarray, full: np.ndarray,
                    interpolate: bool = False) -> np.ndarray:
    """Per row of `scores` (tasks x dimensions), log2 of the dimension where the score first
    reaches 95 % of `full`: the first scored dimension that does, or (`interpolate`) the first
    crossing of the curve drawn as straight segments in log2 dimension between scored ones.
    Where the smallest dimension already reaches it, its log2; where none does, NaN."""
    order = np.argsort(dims)
    x, y = np.log2(dims[order].astype(float)), scores[:, order]
    target = 0.95 * np.asarray(full, dtype=float).reshape(-1)[:, None]
    reached = y >= target
    k = np.argmax(reached, axis=1)  # first dimension at or above the target
    out = np.where(reached.any(axis=1), x[k], np.nan)
    if interpolate:
        rows = np.flatnonzero(reached.any(axis=1) & (k > 0))
        lo, hi = k[rows] - 1, k[rows]
        y0, y1 = y[rows, lo], y[rows, hi]
        share = (target[rows, 0] - y0) / (y1 - y0)  # y0 < target <= y1, so y1 > y0
        out[rows] = x[lo] + share * (x[hi] - x[lo])
    return out


def _saturation_later_far(c: Cells) -> float:
    # Interpolated: the first scored dimension overstates the crossing by up to 1 log2 unit
    # and moves the statistic in steps (BENCHMARKS.md, "A continuous estimate of PCA's
    # saturation dimension", bench/bench_saturation.py: RMSE 0.33 against 0.68 log2).
    log_dim = saturation_log2(c.m, _dims(c.levels), c.m[:, _full_column(c)], interpolate=True)
    return (_mean(log_dim, c.rows(("compositional",)), "compositional")
            - _mean(log_dim, c.rows(NEAR), "near"))


def _error_reduction(c: Cells, on: str, off: str) -> np.ndarray:
    before, after = c.m[:, c.col(off)], c.m[:, c.col(on)]
    return (after - before) / np.where(before < 100, 100 - before, np.nan)


def _finetune(c: Cells) -> float:
    return _mean(_error_reduction(c, "on", "off"), c.rows(), "")


def _finetune_distant_minus_classification(c: Cells) -> float:
    r = _error_reduction(c, "on", "off")
    return (_mean(r, c.rows(("fine-grained", "compositional")), "fine-grained or compositional")
            - _mean(r, c.rows(("classification",)), "classification"))


def _data_size(c: Cells) -> float:
    return _mean(c.m[:, c.col("1")] - c.m[:, c.col("0.125")], c.rows(), "")


def _optimized(c: Cells) -> float:
    return _mean(_error_reduction(c, "optimized", "standard"), c.rows(), "")


# ----------------------------------------------------------------------------- conditions


def _source_converged(source: pd.DataFrame) -> str:
    """"" if every source network's top-1 at its last two snapshots differ by < CONVERGED
    (one network per source task: a table pooling worlds holds one per world)."""
    if source.empty:
        return "the table has no source accuracy per snapshot, so convergence is unknown"
    for task, rows in source.groupby("task", sort=False):
        acc = rows.groupby("level_index")["score"].mean().sort_index().dropna()
        if len(acc) < 2:
            return f"one snapshot only of {task}: convergence is unknown"
        last, before = float(acc.iloc[-1]), float(acc.iloc[-2])
        if abs(last - before) >= CONVERGED:
            return (f"the {task} network has not converged: its top-1 at the last two "
                    f"snapshots is {before:.1f} and {last:.1f} % (plateau: within "
                    f"{CONVERGED:g} point)")
    return ""


def _nearly_every_task(c: Cells) -> str:
    r = _error_reduction(c, "optimized", "standard")
    ok = np.isfinite(r)
    share = float(np.mean(r[ok] > 0)) if ok.any() else 0.0
    if share < NEARLY_ALL:
        return (f"the error falls on {int((r[ok] > 0).sum())} of {int(ok.sum())} tasks "
                f"({share:.0%}; the claim says nearly every task, >= {NEARLY_ALL:.0%})")
    return ""


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Statistic:
    """A number computed from a factor's cells; the claim says `side * value > threshold`."""

    name: str
    fn: Callable[[Cells], float]
    threshold: float = 0.0
    unit: str = "points"


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims: what it says, where, and the statistics that test it.

    `condition(cells, source_rows)` returns "" or why the claim cannot be reproduced even with
    every interval on the claimed side (the verdict is then at best inconclusive).
    """

    paper_claim: str
    factor: str
    text: str
    source: str
    statistics: tuple[Statistic, ...]
    condition: Callable[[Cells, pd.DataFrame], str] | None = None
    layer: str | None = None  # where the factor has rows at several layers, the one it reads
    # True where the levels are networks trained one per level: with one training of each,
    # the interval cannot hold how much a level moves from one training to the next
    # (BENCHMARKS.md, "How much of a verdict is the network drawn?").
    networks_per_level: bool = False


_CLAIM_LIST = (
    Claim("width", "width",
          "Wider networks help the tasks nearest the source, and less so the retrieval tasks.",
          "Table 1; section 3.1.1, Figure 3",
          (Statistic("mean near (large - medium)", _width_near),
           Statistic("near (large - medium) - retrieval (large - medium)",
                     _width_near_minus_retrieval)),
          networks_per_level=True),
    Claim("depth", "depth",
          "Deeper networks help: the deepest beats the shallowest on the non-retrieval tasks.",
          "Table 1; section 3.1.1, Figure 4",
          (Statistic("mean non-retrieval (deepest - shallowest)", _depth),),
          networks_per_level=True),
    Claim("early_stopping", "early_stopping",
          "Don't stop early: the final network is within 1 point of, or better than, the best "
          "earlier snapshot (chosen by cross-validation).",
          "Table 1; section 3.1.2, Figure 5",
          (Statistic("mean (final - best earlier snapshot by CV)", _early_stopping,
                     threshold=-1.0),),
          condition=lambda c, source: _source_converged(source), layer="fc6"),
    Claim("source_task", "source_task",
          "A scene source helps scene tasks; an object source transfers better to fine-grained, "
          "compositional and retrieval tasks; late fusion (concat) beats the hybrid network.",
          "section 3.1.3, Table 3",
          (Statistic("mean scene classification (scenes - objects)", _scenes_on_scene_tasks),
           Statistic("mean fine-grained, compositional, retrieval (objects - scenes)",
                     _objects_on_distant_tasks),
           Statistic("mean (concat - hybrid)", _concat_minus_hybrid))),
    Claim("layer", "layer",
          "The farther the task, the earlier its best layer: the drop from the best layer to the "
          "last FC layer is larger on far tasks than on near ones.",
          "Table 1; section 3.2.1, Figure 6",
          (Statistic("far - near of (best layer - fc8) / best layer", _layer_drop, unit=""),)),
    Claim("dim_reduction", "dim_reduction",
          "PCA helps retrieval, and the farther the task, the more dimensions it needs before "
          "its score saturates.",
          "Table 1; section 3.2.2, Figure 8",
          (Statistic("retrieval: mean (best reduced dimension by CV - full)", _pca_for_retrieval),
           Statistic("log2 dimension reaching 95% of full (interpolated): compositional - near",
                     _saturation_later_far, unit="log2 dims"))),
    Claim("fine_tuning", "fine_tuning",
          "Fine-tuning reduces the error, and more so on tasks far from the source.",
          "Table 1; section 3.2.3, Table 4",
          (Statistic("mean relative error reduction (on - off) / (100 - off)", _finetune,
                     unit=""),
           Statistic("its mean on fine-grained + compositional - on classification",
                     _finetune_distant_minus_classification, unit=""))),
    Claim("data_size", "data_size",
          "More source data helps: the network trained on all source images beats the one "
          "trained on 1/8 of them.",
          "section 3.2.4, Table 7 (supp.)",
          (Statistic("mean (all source data - 1/8)", _data_size),),
          networks_per_level=True),
    Claim("optimized", "optimized",
          "Setting the factors per task (Deep Optimized) reduces the error of Deep Standard on "
          "nearly every task.",
          "section 4, Table 6, Figure 2",
          (Statistic("mean relative error reduction (optimized vs standard)", _optimized,
                     unit=""),),
          condition=lambda c, source: _nearly_every_task(c)),
)
CLAIMS: dict[str, Claim] = {c.paper_claim: c for c in _CLAIM_LIST}
PAPER_CLAIMS = tuple(CLAIMS)


# ----------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class _Grid:
    """Point scores (T, L, S), bootstrap replicates (T, L, S, B) or None, cv (T, L)."""

    cells: Cells
    points: np.ndarray
    boot: np.ndarray | None
    sd: np.ndarray  # (T, L, S) test-set sd from the interval (the unpaired fallback)
    source: pd.DataFrame  # the factor's rows of source tasks (source accuracy per snapshot)
    # trainings of each level's network the seeds hold: one per seed for the world's own
    # networks, one in all for pretrained weights (a real run's seeds move probe folds only)
    trainings: int


def _grid(df: pd.DataFrame, factor: str, layer: str | None = None) -> _Grid:
    rows = df[df["factor"] == factor]
    if rows.empty:
        present = sorted(df["factor"].unique())
        raise _Missing(f"the table has no rows for factor {factor!r} (present: {present})")
    if layer is not None and rows["layer"].nunique() > 1:  # e.g. early stopping at FC6 and FC7
        rows = rows[rows["layer"] == layer]
        if rows.empty:
            raise _Missing(f"factor {factor!r} has no rows at layer {layer!r}")
    source = rows[rows["group"] == "source"]
    sub = select_metric(rows[rows["group"] != "source"], None)
    if sub.empty:
        raise _Missing(f"no target task has rows for factor {factor!r}")
    levels = tuple(levels_of(sub, factor))
    order = task_order(sub)
    seeds = sorted(sub["seed"].unique())
    ti = {t: i for i, t in enumerate(order["task"])}
    li = {lv: i for i, lv in enumerate(levels)}
    si = {s: i for i, s in enumerate(seeds)}
    t = sub["task"].map(ti).to_numpy()
    lv = sub["level"].astype(str).map(li).to_numpy()
    s = sub["seed"].map(si).to_numpy()
    scale = np.where(sub["metric"] == "ns_score", NS_SCALE, 1.0)
    shape = (len(ti), len(li), len(si))
    points, sd = np.full(shape, np.nan), np.zeros(shape)
    points[t, lv, s] = sub["score"].to_numpy() * scale
    sd[t, lv, s] = np.nan_to_num((sub["ci_high"] - sub["ci_low"]).to_numpy() * scale / (2 * Z95))
    boot = _replicate_array(sub, (t, lv, s), shape, scale)
    cv = np.full(shape, np.nan)
    cv[t, lv, s] = sub["cv_score"].to_numpy() * scale
    domains = sub.drop_duplicates("task").set_index("task")["domain"] \
        if "domain" in sub else pd.Series("object", index=order["task"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cells = Cells(tuple(order["task"]), order["group"].to_numpy(),
                      domains.reindex(order["task"]).fillna("object").to_numpy(), levels,
                      np.nanmean(points, axis=2), np.nanmean(cv, axis=2))
    trainings = len(seeds) if (sub["weights"] == results.EMBEDDED).all() else 1
    return _Grid(cells, points, boot, sd, source, trainings)


def _replicate_array(sub: pd.DataFrame, where: tuple, shape: tuple, scale: np.ndarray):
    """(T, L, S, B) replicates when every cell has the same number B of them, else None."""
    if results.REPLICATES not in sub:
        return None
    reps = list(sub[results.REPLICATES])
    sizes = {len(r) for r in reps}
    if len(sizes) != 1 or 0 in sizes:
        return None
    out = np.full((*shape, sizes.pop()), np.nan)
    out[where] = np.asarray(reps, float) * scale[:, None]
    return out


def _replicates(grid: _Grid, n_boot: int, rng: np.random.Generator,
                sources: tuple[str, ...] = SOURCES):
    """Replicate Cells: tasks resampled within groups, seeds resampled, paired test noise;
    a source left out of `sources` stays at its point values (see `uncertainty`)."""
    c = grid.cells
    groups = group_rows(c.groups)
    n_seeds = grid.points.shape[2]
    for b in range(n_boot):
        rows = resample_within(groups, rng) if "tasks" in sources else np.concatenate(groups)
        cols = rng.integers(0, n_seeds, n_seeds) if "seeds" in sources else np.arange(n_seeds)
        if "images" not in sources:
            values = grid.points[:, :, cols]
        elif grid.boot is not None:
            values = grid.boot[:, :, cols, b % grid.boot.shape[3]]
        else:
            values = grid.points[:, :, cols] + rng.standard_normal(
                (*grid.points.shape[:2], n_seeds)) * grid.sd[:, :, cols]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(values, axis=2)
        yield replace(c, m=m).subset(rows)


# ----------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Measured:
    """One statistic of a claim as measured: its value, 95 % interval, bound and unit."""

    name: str
    value: float
    ci_low: float
    ci_high: float
    threshold: float
    unit: str

    @property
    def support(self) -> str:
        """"claimed", "opposite", "both" or "unknown": where the interval lies."""
        return _support(self.ci_low, self.ci_high, self.threshold)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim; `statistic` [ci_low, ci_high] is the deciding statistic,
    `measured` every statistic of the claim (not a column of claims.csv: the evidence says it)."""

    paper_claim: str
    claim: str
    verdict: str
    statistic: float
    ci_low: float
    ci_high: float
    evidence: str
    measured: tuple[Measured, ...] = ()

    def as_row(self) -> dict:
        return {c: getattr(self, c) for c in COLUMNS}


def _interval(stat: Statistic, grid: _Grid, n_boot: int, seed: int,
              sources: tuple[str, ...] = SOURCES) -> tuple[float, float, int]:
    values = []
    for cells in _replicates(grid, n_boot, np.random.default_rng(seed), sources):
        try:
            values.append(stat.fn(cells))
        except _Missing:
            values.append(np.nan)
    reps = np.asarray(values, float)
    reps = reps[np.isfinite(reps)]
    if len(reps) < min(20, n_boot):
        return np.nan, np.nan, len(reps)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(lo), float(hi), len(reps)


def _check_n_boot(n_boot: int | None) -> None:
    if n_boot is not None and n_boot < 20:
        raise ValueError(f"n_boot={n_boot} is too few for a 95% interval; use >= 20")


def _claim_grid(claim: Claim, df: pd.DataFrame, n_boot: int | None) -> tuple[_Grid, int]:
    """The claim's grid and its number of replicates (default: as many as the cells carry)."""
    grid = _grid(results.validate(df), claim.factor, claim.layer)
    return grid, n_boot or (grid.boot.shape[3] if grid.boot is not None else 1000)


def interval_verdict(lo: float, hi: float, threshold: float) -> str:
    """One statistic's verdict by the claims' rule: reproduced when its 95 % interval lies
    above `threshold`, not reproduced when below, else (or without an interval) inconclusive."""
    return {"claimed": "reproduced", "opposite": "not reproduced"}.get(
        _support(lo, hi, threshold), "inconclusive")


def _support(lo: float, hi: float, threshold: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "unknown"
    if lo > threshold:
        return "claimed"
    if hi < threshold:
        return "opposite"
    return "both"


ONE_DRAW = (" One network per level: the interval leaves out how much a level's score moves "
            "from one training of its network to the next (BENCHMARKS.md, \"How much of a "
            "verdict is the network drawn?\"); on the embedded world, three training seeds "
            "(--seeds 0 1 2) include it.")


def check(paper_claim: str, df: pd.DataFrame, n_boot: int | None = None, seed: int = 0) -> Verdict:
    """Check one claim against a results table (see the module docstring for the rules).

    n_boot: replicates (default: as many as the cells carry, else 1000).
    """
    if paper_claim not in CLAIMS:
        raise ValueError(f"paper_claim={paper_claim!r} is not one of {list(PAPER_CLAIMS)}")
    _check_n_boot(n_boot)
    claim = CLAIMS[paper_claim]
    nan = float("nan")
    try:
        grid, n = _claim_grid(claim, df, n_boot)
        measured = []
        for stat in claim.statistics:
            point = stat.fn(grid.cells)
            lo, hi, n_valid = _interval(stat, grid, n, seed)
            measured.append(Measured(stat.name, point, lo, hi, stat.threshold, stat.unit))
    except _Missing as missing:
        return Verdict(paper_claim, claim.text, "inconclusive", nan, nan, nan,
                       f"Missing data: {missing}.")
    supports = [m.support for m in measured]
    unmet = claim.condition(grid.cells, grid.source) if claim.condition else ""
    if "opposite" in supports:
        verdict = "not reproduced"
    elif all(s == "claimed" for s in supports) and not unmet:
        verdict = "reproduced"
    else:
        verdict = "inconclusive"
    deciding = min(measured, key=lambda m: m.ci_low - m.threshold if np.isfinite(m.ci_low)
                   else -np.inf)
    pairing = ("paired bootstrap over test images" if grid.boot is not None
               else "unpaired fallback (no replicates in the table)")
    parts = [f"{m.name} = {m.value:+.2f} [{m.ci_low:+.2f}, {m.ci_high:+.2f}]"
             f"{' ' + m.unit if m.unit else ''}, claimed > {m.threshold:g}" for m in measured]
    evidence = (
        "; ".join(parts) + f". 95% intervals: {n} replicates, {pairing}, tasks resampled within "
        f"groups ({len(grid.cells.tasks)} tasks), {grid.points.shape[2]} seed(s)."
        + (f" Not reproduced as stated: {unmet}." if unmet else "")
        + (ONE_DRAW if claim.networks_per_level and grid.trainings == 1 else "")
    )
    return Verdict(paper_claim, claim.text, verdict, float(deciding.value), deciding.ci_low,
                   deciding.ci_high, evidence, tuple(measured))


# ----------------------------------------------------------------------------- what narrows it

UNCERTAINTY_COLUMNS = ("paper_claim", "statistic", "unit", "value", "threshold", "ci_low",
                       "ci_high", "reach", *(f"reach_{s}" for s in SOURCES),
                       *(f"share_{s}" for s in SOURCES), "tasks_x")


def tasks_multiplier(margin: float, reach: float, reach_seeds: float = 0.0) -> float:
    """How many times the tasks per group a statistic needs for its 95 % interval to clear
    its bound: a projection, not a result. It assumes the value stays `margin` above the
    bound and the interval's reach below the value (`reach`) shrinks as 1/sqrt(tasks),
    except its seeds' part (`reach_seeds`, added in squares), which more tasks leave as it
    is (one network serves every task): each new task brings its own test images and its
    own draw of what the group's tasks share.

    1 or less: the present tasks suffice (the interval already clears the bound); inf: the
    seeds alone reach past the bound; NaN: the value lies on the other side of the bound
    (more tasks would only confirm that), or a term is unknown.
    """
    if not all(np.isfinite(t) for t in (margin, reach, reach_seeds)) or margin <= 0:
        return float("nan")
    room = margin**2 - reach_seeds**2
    if room <= 0:
        return float("inf")
    return float(max(reach**2 - reach_seeds**2, 0.0) / room)


def uncertainty(df: pd.DataFrame, factor: str | None = None, n_boot: int | None = None,
                seed: int = 0) -> pd.DataFrame:
    """Where each claim statistic's 95 % interval comes from, one row per statistic.

    Every claim says its statistic lies above a bound, so what decides a verdict is how far
    the interval reaches below the estimate: `reach` = value - ci_low, with `ci_low`
    and `ci_high` the interval `check` reports. `reach_images`, `reach_tasks` and
    `reach_seeds` are the same for the bootstrap with only that source resampled and the
    others held at their point values: the test images (paired across levels), the tasks
    within each group, the training seeds. They need not add up to `reach` in squares: a
    task's observed score holds its test images' noise, so the tasks' term already carries
    some of it, and the bootstrap that resamples both counts it again. A source the table
    cannot measure is NaN: the seeds with one seed (a
    level's networks are then one draw, which no interval holds), the tasks where every
    group has a single task. `share_*` is each source's part of their summed squares.
    `tasks_x` is `tasks_multiplier` of the statistic (a projection, not a result; one seed
    counts as no seed term). Claims of `factor` (None: every claim whose factor the table
    holds); a claim whose data are missing has no rows (its verdict says what is missing).
    """
    _check_n_boot(n_boot)
    rows = []
    for claim in _wanted(df, factor):
        try:
            grid, n = _claim_grid(claim, df, n_boot)
        except _Missing:
            continue
        measurable = {"images": True, "seeds": grid.points.shape[2] > 1,
                      "tasks": np.unique(grid.cells.groups, return_counts=True)[1].max() > 1}
        for stat in claim.statistics:
            try:
                value = stat.fn(grid.cells)
            except _Missing:
                continue
            lo, hi, _ = _interval(stat, grid, n, seed)
            reach = {s: value - _interval(stat, grid, n, seed, (s,))[0] if measurable[s]
                     else np.nan for s in SOURCES}
            total = np.nansum([r**2 for r in reach.values()])
            rows.append({
                "paper_claim": claim.paper_claim, "statistic": stat.name, "unit": stat.unit,
                "value": value, "threshold": stat.threshold, "ci_low": lo, "ci_high": hi,
                "reach": value - lo, **{f"reach_{s}": r for s, r in reach.items()},
                **{f"share_{s}": r**2 / total if total > 0 else np.nan
                   for s, r in reach.items()},
                "tasks_x": tasks_multiplier(value - stat.threshold, value - lo,
                                            np.nan_to_num(reach["seeds"])),
            })
    return pd.DataFrame(rows, columns=list(UNCERTAINTY_COLUMNS))


def layer_drops(df: pd.DataFrame) -> pd.DataFrame:
    """Per target task, what the layer claim averages within each group: the drop from the
    task's best layer to its last FC layer, as a fraction of the best (seeds averaged).

    Columns task, group, distance_rank, best layer, best, last layer, last, drop; nearest
    task first. `attrs["spearman"]` is the drop's rank correlation with the hand ordering:
    a description beside the claim, whose statistic stays far - near of the group means.
    Raises ValueError if the table holds no layer rows of a target task.
    """
    try:
        c = _claim_grid(CLAIMS["layer"], df, None)[0].cells
    except _Missing as err:
        raise ValueError(str(err)) from None
    best = np.argmax(np.where(np.isnan(c.m), -np.inf, c.m), axis=1)
    last = _last_layer(c)
    ranks = df.drop_duplicates("task").set_index("task")["distance_rank"]
    out = pd.DataFrame({
        "task": c.tasks, "group": c.groups, "distance_rank": ranks.reindex(c.tasks).to_numpy(),
        "best layer": np.asarray(c.levels)[best], "best": c.m[np.arange(len(c.tasks)), best],
        "last layer": c.levels[last], "last": c.m[:, last], "drop": _drops(c)})
    out.attrs["spearman"] = spearman(out["distance_rank"], out["drop"])
    return out


def claims_for(factor: str) -> list[Claim]:
    """The registered claims that read `factor` (none for a factor the paper makes no claim on)."""
    return [c for c in CLAIMS.values() if c.factor == factor]


def checked(df: pd.DataFrame, factor: str | None = None, **options) -> list[Verdict]:
    """`check` of each claim reading `factor` (None: every claim whose factor is in `df`);
    `options` go to `check`."""
    return [check(c.paper_claim, df, **options) for c in _wanted(df, factor)]


def _wanted(df: pd.DataFrame, factor: str | None) -> list[Claim]:
    return claims_for(factor) if factor is not None else [
        c for c in CLAIMS.values() if c.factor in set(df["factor"])]


def as_table(found: list[Verdict]) -> pd.DataFrame:
    """Verdicts as the claims table: one row each, columns COLUMNS."""
    return pd.DataFrame([v.as_row() for v in found], columns=list(COLUMNS))


def verdicts(df: pd.DataFrame, factor: str | None = None, **options) -> pd.DataFrame:
    """The claims table of `checked(df, factor, **options)`."""
    return as_table(checked(df, factor, **options))
