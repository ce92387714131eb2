"""The paper's factors as grids of representations, and one entry point per notebook.

Each `run_*` takes a notebook's checked parameters (transferlab.params), builds its grid,
runs it through one `Study` and returns the tidy results table. Levels are validated before
any training starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from . import architecture, report, results
from . import params as P
from .backends import study_for  # noqa: F401 (public: notebooks call factors.study_for)
from .claims import CONVERGED
from .study import (  # noqa: F401 (depth_levels: public here, the world's depth factor)
    FC_LAYERS,
    RANDOM_INIT,
    SCRATCH,
    STANDARD,
    Level,
    Representation,
    Stage,
    Study,
    Unavailable,
    depth_levels,
)
from .tasks import VALIDATION_SPLIT

FACTORS = ("width", "depth", "early_stopping", "source_task", "layer", "dim_reduction",
           "fine_tuning", "data_size")


def tasks_for(study: Study, params, kinds: Sequence[str] | None = None) -> tuple[str, ...]:
    """The notebook's tasks: as given, else the profile's default."""
    tasks = study.check_tasks(params.tasks or study.profile.tasks or study.default_tasks())
    if kinds is not None:
        kept = tuple(t for t in tasks if study.task_spec(t).kind in kinds)
        if not kept:
            raise ValueError(f"tasks={list(tasks)} has no task of kind {list(kinds)}; "
                             "this notebook runs only those")
        tasks = kept
    return tasks


@dataclass(frozen=True)
class Grid:
    """One `Study.run` of a notebook: its factor, levels, tasks and seeds."""

    factor: str
    levels: tuple[Level, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]

    def run(self, study: Study) -> pd.DataFrame:
        return study.run(self.factor, self.levels, self.tasks, self.seeds)


def seeds_for(study: Study, params) -> tuple[int, ...]:
    """The training seeds a notebook runs: its `seeds` parameter, else the profile's."""
    return tuple(params.seeds or study.profile.seeds)


def _make(study: Study, params, factor: str, levels: Sequence[Level], **kw) -> Grid:
    return Grid(factor, tuple(levels), tasks_for(study, params, **kw), seeds_for(study, params))


# ---------------------------------------------------------------- learning factors


def width_levels(widths: Sequence[str]) -> list[Level]:
    return [Level(w, architecture.WIDTHS.index(w), replace(STANDARD, width=w)) for w in widths]


def source_levels(sources: Sequence[str]) -> list[Level]:
    return [Level(s, i, replace(STANDARD, source=s)) for i, s in enumerate(sources)]


def data_size_levels(fractions: Sequence[float]) -> list[Level]:
    return [Level(f"{f:g}", i, replace(STANDARD, fraction=float(f)))
            for i, f in enumerate(sorted(fractions))]


def early_stopping_levels(study: Study, layer: str, seed: int = 0,
                          iterations: Sequence[int] | None = None) -> list[Level]:
    """One level per log-spaced snapshot; the last is the final network (checkpoint=None),
    so it shares its features with every other notebook's standard network. `iterations`:
    the snapshots' iterations if known without training (the plan), else the network's."""
    its = list(iterations) if iterations is not None else study.checkpoint_iterations(seed)
    return [Level(str(it), i, replace(STANDARD, layer=layer,
                                      checkpoint=None if i == len(its) - 1 else i))
            for i, it in enumerate(its)]


def _run_grids(params, study: Study | None) -> pd.DataFrame:
    study = study or study_for(params)
    return pd.concat([g.run(study) for g in grids(params, study)], ignore_index=True)


def run_width(params, study: Study | None = None) -> pd.DataFrame:
    return _run_grids(params, study)


def run_depth(params, study: Study | None = None) -> pd.DataFrame:
    return _run_grids(params, study)


def run_source_task(params, study: Study | None = None) -> pd.DataFrame:
    return _run_grids(params, study)


def run_data_size(params, study: Study | None = None) -> pd.DataFrame:
    """Figure 7 (factor "data_size") and Table 5 (factor "extra_data", on breeds) in one table."""
    return _run_grids(params, study)


def run_early_stopping(params, study: Study | None = None) -> pd.DataFrame:
    """Every snapshot at every layer of `params.layers` (the `layer` column tells them apart),
    and each snapshot's top-1 on its source task."""
    study = study or study_for(params)
    tables = []
    for g in grids(params, study):
        tables.append(g.run(study))
        tables.append(source_rows(study, g.factor, g.levels, g.seeds))
    return pd.concat(tables, ignore_index=True)


def source_rows(study: Study, factor: str, levels: Sequence[Level],
                seeds: Sequence[int]) -> pd.DataFrame:
    """Each level's network scored on its own source task (top-1 on the source test split):
    beside the transfer results, it shows whether the source training converged."""
    rows = []
    for seed in seeds:
        for lv in levels:
            rows.append({"factor": factor, "level": lv.label, "level_index": lv.index,
                         "layer": lv.rep.layer, "task": lv.rep.source, "group": "source", "domain": "object",
                         "distance_rank": 0, "metric": "accuracy", "seed": seed,
                         "representation": lv.rep.label(),
                         "score": study.source_accuracy(lv.rep.source, lv.rep, seed)})
    return results.frame(rows)


# ---------------------------------------------------------------- post-learning factors


def layer_levels(layers: Sequence[str], pooling: int = 1) -> list[Level]:
    order = architecture.layer_names(architecture.NetConfig())
    layers = list(layers) or order
    for layer in layers:
        architecture.check_layer(architecture.NetConfig(), layer)
    return [Level(layer, order.index(layer), replace(STANDARD, layer=layer, pooling=pooling))
            for layer in sorted(layers, key=order.index)]


def run_layer(params, study: Study | None = None) -> pd.DataFrame:
    return _run_grids(params, study)


def dim_levels(dims: Sequence[int], full: int) -> list[Level]:
    dims = sorted(set(int(d) for d in dims)) if dims else [2 ** k for k in range(0, 20)
                                                              if 2 ** k < full] + [full]
    bad = [d for d in dims if d > full]
    if bad:
        raise ValueError(f"dims {bad} exceed the representation's dimension {full}")
    return [Level(str(d) if d < full else f"{d} (full)", i,
                  replace(STANDARD, pca_dim=None if d >= full else d))
            for i, d in enumerate(dims)]


def run_dim_reduction(params, study: Study | None = None) -> pd.DataFrame:
    return _run_grids(params, study)


def fine_tuning_levels(layer: str) -> list[Level]:
    architecture.check_layer(architecture.NetConfig(), layer)
    base = replace(STANDARD, layer=layer)
    return [Level("off", 0, base), Level("on", 1, replace(base, finetune="target"))]


def run_fine_tuning(params, study: Study | None = None) -> pd.DataFrame:
    """Table 4: the representation at `layer` before and after fine-tuning (single-label tasks)."""
    return _run_grids(params, study)


def finetune_choices(params, study: Study | None = None) -> pd.DataFrame:
    """Each task's fine-tuning learning rates and their validation scores: the rate chosen
    (`Study.tuned`) is the one the fine-tuning table scores on test. Empty where the backend
    does not fine-tune or the profile offers a single rate."""
    study = study or study_for(params, progress=False)
    lrs = study.profile.finetune_lrs
    columns = ["task", "learning rate", "validation score", "chosen"]
    if not study.backend.offers.finetunes or len(lrs) < 2:
        return pd.DataFrame(columns=columns)
    on = replace(STANDARD, layer=params.layer, finetune="target")
    rows = []
    for seed in seeds_for(study, params):
        for task in tasks_for(study, params, kinds=("single-label",)):
            chosen = study.tuned(on, task, seed).finetune_lr
            rows += [{"task": task, "seed": seed, "learning rate": lr,
                      "validation score": round(study.validation_score(
                          replace(on, finetune_lr=lr), task, seed), 2),
                      "chosen": lr == chosen} for lr in lrs]
    return pd.DataFrame(rows)


def run_extra_data(params, study: Study | None = None) -> pd.DataFrame:
    """Table 5: fine-tuning with extra labelled data of the same classes from another source.

    Defined on the breeds task (the Oxford Pets analog) whatever `params.tasks` says: its
    extra data are four times as many images of the same breeds (world.EXTRA_SPLITS).
    """
    study = study or study_for(params)
    if not study.backend.offers.finetunes:
        return results.empty()  # Table 5 fine-tunes the world's breeds task
    return _extra_data_grid(study, params).run(study)


def _extra_data_grid(study: Study, params) -> Grid:
    base = replace(STANDARD, layer="fc7")
    levels = [Level("standard", 0, base), Level("FT target", 1, replace(base, finetune="target")),
              Level("FT target + extra", 2, replace(base, finetune="target+extra"))]
    return Grid("extra_data", tuple(levels), ("breeds",), seeds_for(study, params))


# ---------------------------------------------------------------- each notebook's grids

# The factor each notebook's `LEVELS` entry is run under.
_FACTOR_OF = {P.WidthParams: "width", P.DepthParams: "depth", P.SourceTaskParams: "source_task",
              P.LayerParams: "layer", P.DimReductionParams: "dim_reduction",
              P.DataSizeParams: "data_size"}


def grids(params, study: Study, iterations: Sequence[int] | None = None) -> list[Grid]:
    """The `Study.run` calls of a notebook, in its order, from its checked parameters.

    The `run_*` functions run these grids and the plan (transferlab.plan) computes their
    cells ahead, so the two cannot drift apart. Nothing is computed here except, for early
    stopping without `iterations` (the snapshots' iterations), the network that has them.
    00_world scores the standard representation of each task (worldcard.baselines);
    09_optimized: the first stage of Table 6's search (the rest depends on its scores).
    """
    kind = type(params)
    if kind is P.EarlyStoppingParams:
        return _early_stopping_grids(params, study, iterations)
    if kind is P.WorldParams:
        # worldcard.baselines and worldcard.measured_distance: the standard network, its
        # random initialisation, and the network trained from scratch (classification only).
        tasks = tasks_for(study, params)
        classification = tuple(t for t in tasks if study.task_spec(t).kind != "retrieval")
        both = (Level("standard fc6", 2, STANDARD),
                Level("random init fc6", 4, RANDOM_INIT))
        seeds = seeds_for(study, params)
        out = [Grid("world", both, tasks, seeds)]
        if classification:
            scratch = Level("scratch fc6", 3, SCRATCH)
            out.append(Grid("world", (scratch,), classification, seeds))
        return out
    if kind is P.OptimizedParams:
        return [Grid("optimized_search", tuple(first_stage_levels(study, t)), (t,),
                     seeds_for(study, params))
                for t in tasks_for(study, params)]
    if kind is P.FineTuningParams:
        return [_make(study, params, "fine_tuning", fine_tuning_levels(params.layer),
                      kinds=("single-label",))]
    out = [_make(study, params, _FACTOR_OF[kind], LEVELS[kind](params, study))]
    if kind is P.DataSizeParams and study.backend.offers.finetunes:
        out.append(_extra_data_grid(study, params))
    return out


def _early_stopping_grids(params, study: Study, iterations: Sequence[int] | None) -> list[Grid]:
    for layer in params.layers:
        architecture.check_layer(architecture.NetConfig(), layer)
    tasks_for(study, params)  # bad task names fail before training
    seed = seeds_for(study, params)[0]
    return [_make(study, params, "early_stopping",
                  early_stopping_levels(study, layer, seed, iterations))
            for layer in params.layers]


def first_stage_levels(study: Study, task: str) -> list[Level]:
    """The levels of Table 6's first search stage (from Deep Standard), as run_optimized
    builds them; the later stages start from a choice by CV score, so only the notebook
    knows them."""
    stage, offer = next(iter(optimized_stages(study).items()))
    return _stage_levels(study, task, stage, offer, STANDARD)


def _stage_levels(study: Study, task: str, stage: str, offer: Stage,
                  current: Representation) -> list[Level]:
    """A search stage's levels: the setting chosen so far first, then its variations."""
    cands = [current] + [c for c in offer(study, task, current) if c != current]
    return [Level(f"{stage}: {c.label()}", i, c) for i, c in enumerate(cands)]


# ---------------------------------------------------------------- Table 6

# Table 6's search sets the factors one stage at a time, in the order the paper's sections
# take them (the network, then the layer and its pooling, then PCA, then spatial search, then
# fine-tuning): each stage offers variations of the setting chosen so far, and the best by
# cross-validated score on the training split (never the test score) carries to the next
# stage. Fine-tuning is chosen on the task's validation split instead: the fine-tuned network
# has seen the whole training split, where a cross-validated score would flatter it.


def _network_stage(study: Study, task: str, rep: Representation) -> list[Representation]:
    return ([replace(rep, source=s) for s in ("scenes", "hybrid", "concat")]
            + [replace(rep, width="large"), replace(rep, depth=max(architecture.DEPTHS))])


def _layer_stage(study: Study, task: str, rep: Representation) -> list[Representation]:
    order = architecture.layer_names(architecture.NetConfig(depth=rep.depth))
    convs = [layer for layer in order if layer.startswith("conv")][-3:]
    poolings = (1, 2, 3) if study.task_spec(task).kind == "retrieval" else (1,)
    return ([replace(rep, layer=layer, pooling=p) for layer in convs for p in poolings]
            + [replace(rep, layer=layer, pooling=1) for layer in FC_LAYERS])


def _pca_stage(study: Study, task: str, rep: Representation) -> list[Representation]:
    full = study.feature_dim(rep)
    dims = [d for d in OPTIMIZED_DIMS if d < full]
    return [replace(rep, pca_dim=d) for d in dims]


def _spatial_stage(study: Study, task: str, rep: Representation) -> list[Representation]:
    if study.task_spec(task).kind != "retrieval" or rep.source == "concat":
        return []
    return [replace(rep, spatial=True)]


def _finetune_stage(study: Study, task: str, rep: Representation) -> list[Representation]:
    """The chosen network fine-tuned on the task ("where available": a backend that
    fine-tunes, a single-label task with a validation split to choose on, and a chosen layer
    below fc8, which fine-tuning replaces by a new head of the task's classes)."""
    if (not study.backend.offers.finetunes or rep.layer == "fc8"
            or VALIDATION_SPLIT not in study.task(task).images):
        return []
    return [replace(rep, finetune="target")]


OPTIMIZED_DIMS = (64, 128, 256, 512)
OPTIMIZED_STAGES: dict[str, Stage] = {"network": _network_stage, "layer": _layer_stage,
                                      "pca": _pca_stage, "spatial": _spatial_stage,
                                      "finetune": _finetune_stage}
VALIDATED_STAGES = ("finetune",)  # chosen on the validation split, not by CV on train


def optimized_stages(study: Study) -> dict[str, Stage]:
    """The stages the study's backend can run (the world: all of the paper's)."""
    return study.backend.optimized_stages(OPTIMIZED_STAGES)


def choose_by_cv(candidates: pd.DataFrame) -> pd.Series:
    """The candidate row with the best cross-validated score; ties go to the earlier level
    (the setting chosen so far comes first). Reads `cv_score` only, never `score`."""
    cv = candidates.groupby("level_index", sort=True)["cv_score"].mean()
    if cv.isna().all():
        raise ValueError("no candidate has a cv_score, so none can be chosen without test scores")
    best = cv.fillna(-np.inf).idxmax()
    return candidates[candidates.level_index == best].iloc[0]


def search(study: Study, task: str, seed: int) -> tuple[pd.Series, pd.Series, list[pd.DataFrame]]:
    """Table 6's staged search on one task and seed: (Deep Standard's row, the chosen
    setting's row, the table of each stage's candidates). Each stage of `optimized_stages`
    scores the setting chosen so far and its variations (factor "optimized_search", one level
    per candidate, `stage` in the level label) and keeps the best by `choose_by_cv`."""
    current, std, searched = STANDARD, None, []
    for stage, offer in optimized_stages(study).items():
        levels = _stage_levels(study, task, stage, offer, current)
        validated = stage in VALIDATED_STAGES
        if validated and len(levels) == 1:
            continue  # nothing offered: no candidate to score on the validation split
        table = study.run("optimized_search", levels, (task,), (seed,))
        if validated:
            # The column the choice reads holds, for this stage, the validation split's score.
            table["cv_score"] = [study.validation_score(levels[int(i)].rep, task, seed)
                                 for i in table.level_index]
        searched.append(table)
        if std is None:
            std = table[table.level_index == 0].iloc[0]
        chosen = choose_by_cv(table)
        current = levels[int(chosen.level_index)].rep
    return std, chosen, searched


def recorded_search(study: Study, task: str, seed: int):
    """`search`, and the record that it ran to its end filed in the cache (the plan's search
    unit), so that a run on Dask and one without it leave the same cache behind."""
    from .plan import search_config

    found = []

    def record() -> dict:
        found.append(search(study, task, seed))  # its scores go to the cache
        return {"chosen": found[0][1].representation}

    config = search_config(study, task, seed)
    if config is not None:  # else nothing to key it on (real networks): scores are cached
        study.cache.get_or_compute("search", config, record, codec="json")
    return found[0] if found else search(study, task, seed)


def run_optimized(params, study: Study | None = None) -> pd.DataFrame:
    """Deep Standard vs. Deep Optimized, the factors combined per task on the training split.

    Per task and seed, `search` chooses a setting by cross-validation; only the final
    choice's test score is reported (factor "optimized": level "standard" and level
    "optimized"), with every candidate's row (factor "optimized_search").
    """
    study = study or study_for(params)
    tasks = tasks_for(study, params)
    rows, searched = [], []
    for seed in seeds_for(study, params):
        for task in tasks:
            std, chosen, tables = recorded_search(study, task, seed)
            searched += tables
            for label, idx, row in (("standard", 0, std), ("optimized", 1, chosen)):
                rows.append({**row.to_dict(), "factor": "optimized", "level": label,
                             "level_index": idx, "seed": seed})
    return pd.concat([results.frame(rows), *searched], ignore_index=True)


def chosen_settings(optimized: pd.DataFrame) -> pd.DataFrame:
    """Table 6's bottom half: the representation chosen for each task."""
    opt = optimized[optimized.level == "optimized"]
    return (opt.sort_values("distance_rank")
            .pivot_table(index="task", columns="seed", values="representation", aggfunc="first")
            .reindex(opt.sort_values("distance_rank").task.unique()))


# ---------------------------------------------------------------- checking a request


def check_request(notebook: str, params) -> None:
    """Fail now, before any training, if `params` of `notebook` cannot be run.

    Checks what the parameter schema cannot: task names against the profile's tasks (and
    data_root for the real profile), and every factor level against the networks the study
    can build. Costs no compute; the batch runner calls it for every notebook first.
    """
    study = study_for(params, progress=False)
    if notebook == "00_world" and not study.backend.offers.world_card:
        raise Unavailable("the world card describes the embedded world's tasks (galleries, "
                          f"raw-pixel baselines); profile {study.profile.name!r} has none")
    tasks_for(study, params)
    if notebook == "07_fine_tuning":
        tasks_for(study, params, kinds=("single-label",))
    build = CHECKED_LEVELS.get(type(params))
    for lv in build(params, study) if build else ():
        study.check(lv.rep)


# The levels each notebook's factor builds from its parameters, without training anything.
LEVELS: dict[type, Callable[[Any, Study], list[Level]]] = {
    P.WidthParams: lambda p, s: width_levels(p.widths),
    P.DepthParams: lambda p, s: s.backend.depth_levels(p.depths),
    P.SourceTaskParams: lambda p, s: source_levels(p.sources),
    P.LayerParams: lambda p, s: layer_levels(p.layers, p.pooling),
    P.DimReductionParams: lambda p, s: dim_levels(p.dims, s.feature_dim()),
    P.DataSizeParams: lambda p, s: data_size_levels(p.fractions),
}
# What check_request asks the backend about: the levels above, and for the factors whose
# levels need a trained network first, a stand-in with the same requirement
# (checkpoint=0: does the backend have snapshots at all; finetune: can it fine-tune).
CHECKED_LEVELS = {
    **LEVELS,
    P.EarlyStoppingParams: lambda p, s: [Level(layer, 0, replace(STANDARD, layer=layer,
                                                                 checkpoint=0))
                                         for layer in p.layers],
    P.FineTuningParams: lambda p, s: [Level(p.layer, 0, replace(STANDARD, layer=p.layer,
                                                                finetune="target"))],
}


# ---------------------------------------------------------------- tables beside the figures


def complexity_table(widths: Sequence[str] = ("medium",), depths: Sequence[int] = (5,)) -> pd.DataFrame:
    """Parameters and FLOPs per image of each network of a grid."""
    rows = []
    for w in widths:
        for d in depths:
            c = architecture.complexity(architecture.NetConfig(width=w, depth=int(d)))
            rows.append({"width": w, "depth": int(d), "params (M)": c["params"] / 1e6,
                         "MFLOPs / image": c["flops"] / 1e6})
    return pd.DataFrame(rows)


def network_levels(params, study: Study) -> list[Level]:
    """The levels of a notebook's factor that each stand on a source network of their own
    (other notebooks: the standard network of each source)."""
    if type(params) in (P.WidthParams, P.DepthParams, P.DataSizeParams):
        return LEVELS[type(params)](params, study)
    sources = getattr(params, "sources", ("objects", "scenes", "hybrid"))
    return source_levels([s for s in sources if s != "concat"])


def network_table(params, study: Study | None = None) -> pd.DataFrame:
    """Every source network behind the notebook's levels: SGD steps, training seconds and
    top-1 on its source's test split at the last two snapshots (converged: within 1 point)."""
    study = study or study_for(params, progress=False)
    if not study.backend.offers.trains_networks:  # e.g. torchvision's: trained elsewhere
        return pd.DataFrame(columns=["level", "network", "steps", "seconds", "top-1 (%)"])
    rows = []
    for seed in seeds_for(study, params):
        for lv in network_levels(params, study):
            rep = lv.rep
            net = study.backend.network_log(rep.source, rep, seed)  # loads no network when warm
            its, log = net["iterations"], net["log"]
            last = study.source_accuracy(rep.source, rep, seed)
            before = study.source_accuracy(rep.source, replace(rep, checkpoint=len(its) - 2),
                                           seed) if len(its) > 1 else float("nan")
            rows.append({"level": lv.label, "seed": seed, "network": rep.label(),
                         "steps": int(log.get("iterations", its[-1])),
                         "seconds": round(float(log.get("seconds", float("nan"))), 1),
                         "top-1 (%)": round(last, 1),
                         f"top-1 at step {its[-2] if len(its) > 1 else '-'} (%)": round(before, 1),
                         "converged": bool(abs(last - before) < CONVERGED)})
    return pd.DataFrame(rows)


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's claims about the factors in `table`, checked (transferlab.claims)."""
    from . import claims

    return claims.verdicts(table)


def claims_summary(params, own: pd.DataFrame | None = None, name: str = "09_optimized"):
    """Verdicts of every notebook of a run, in notebook order, as a table that shows all text.

    In a batch run, the claims.csv of the sibling report folders of `params.output_dir`;
    run interactively (no output_dir), those of the last batch run of the profile in
    reports/<profile>/. `own` (this notebook's verdicts) replaces its own folder's table.
    """
    from pathlib import Path

    from .runner import REPO

    folder = Path(params.output_dir) if params.output_dir else REPO / "reports" / params.profile / name
    rows = []
    for path in sorted(folder.parent.glob("*/claims.csv")):
        notebook = path.parent.name
        if notebook.startswith(".") or notebook == name:  # staging folders; this notebook
            continue
        rows.append(report.load_claims(path).assign(notebook=notebook))
    if own is not None:
        rows.append(own.assign(notebook=name))
    columns = ["notebook", "paper_claim", "claim", "verdict", "statistic", "ci_low", "ci_high",
               "evidence"]
    out = pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)
    return out.style.hide(axis="index")
