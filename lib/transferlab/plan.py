"""The plan of a run: every expensive unit the selected notebooks will need, before any compute.

Units, in dependency order: `world` (one split of a task, rendered), `network` (a source
network with its snapshots), `finetune` (a network fine-tuned on a target task), `features`
(one network's features of every split of a task), `score` (one cell of a grid: probe or
retrieval score of a representation on a task and seed) and `search` (Table 6's staged search
on one task and seed, after its first stage's scores). They come from the notebooks' own grids
(`factors.grids`), so the plan computes exactly the cells the notebooks then read.

Each unit has a cache key where it is known before anything is trained (world splits,
networks, scores, searches; fine-tunes and features are keyed inside their own modules): a
unit whose entry is stored is not computed again, and a keyless unit only when something that
needs it is.
The cost model prices a unit from its arithmetic; a machine that ran a plan before keeps,
per kind, what its units took against that price (`remember_rates`), and later plans on it
are priced by that (`measured_rates`), so `--plan` and the progress bar's ETA learn the CPU.
Executing a unit (`run_unit`) builds the notebook's `Study` and calls it, so the cache,
not the plan, decides what is computed: a plan that missed a cell costs time, never results.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

from . import architecture, compute
from . import params as P
from .cache import Cache, atomic_write, config_key, default_root
from .study import FC_LAYERS, STANDARD, TUNED_MODES, Representation, Study
from .tasks import VALIDATION_SPLIT

KINDS = ("world", "network", "finetune", "features", "score", "search")
# The cache kind and codec of the units whose key is known before compute.
STORED = {"world": ("world", "arrays"), "network": ("network", "torch"), "score": ("scores", "json"),
          "search": ("search", "json")}
# Notebooks that show their source networks' table (factors.network_table).
NETWORK_TABLES = (P.WorldParams, P.WidthParams, P.DepthParams, P.SourceTaskParams, P.DataSizeParams)
# A unit's cost model: its arithmetic at one core's benchmarked rate under the precision
# policy the run uses (BENCHMARKS.md, "Training throughput", one core of the AVX-512 EPYC:
# bf16 training ~290 GFLOP/s, extraction alike; fp32 channels-last trained at 0.64x and
# extracted at 0.58x of bf16's rate; the world renders ~7,000 images of 32 px a second),
# which orders units within a kind ...
GFLOPS_PER_CORE = {"bf16": 250.0, "fp32": 150.0}
RENDER_SECONDS_PER_KPIXEL = 1.4e-4
PROBE_SECONDS = 0.3
JITTERS = 12
# ... times what a unit of its kind measured against that model on a Dask worker of this
# project's 2-core machine (one thread, beside a busy core), so that kinds weigh what they
# cost. Networks, searches and the world: the cache log of run G (the cold quick profile at
# `c4cd76e`, 2026-12-06, the first with workers at full speed: measured / modelled 0.69,
# 0.65 and 0.29 of the factors before, which run C's slowed workers had set); the others from
# runs C and D (their logs cannot separate a unit's own entries from those a search computes
# inside it). A kernel's data handling, the fine-tune's three rates scored on validation,
# Table 6's later stages (conv features at three poolings, a fine-tune): what the model
# leaves out. The scaled cost weighs the progress bar and is the unit's Dask priority (what
# is ready runs costliest first); `parallel.cost_report` prints the ratios of any run.
# Where a machine has run a plan before, its own ratios correct these (`measured_rates`).
COST_FACTOR = {"world": 4.6, "network": 1.9, "finetune": 6.0, "features": 4.0, "score": 2.5,
               "search": 7.1}


@dataclass(frozen=True)
class StudySpec:
    """What builds a notebook's `Study` on any machine (notebooks sharing it share units)."""

    profile: str
    world_seed: int = 0
    data_root: str = ""
    weights: str = ""
    tasks: tuple[str, ...] = ()  # the real profile's datasets; () for the embedded world

    @classmethod
    def of(cls, params) -> StudySpec:
        real = params.profile == "real"
        return cls(params.profile, params.world_seed, params.data_root, params.weights,
                   tuple(params.tasks) if real else ())

    def build(self) -> Study:
        from . import factors

        return factors.study_for(P.CommonParams(**asdict(self)), progress=False)


@dataclass(frozen=True)
class Unit:
    """One expensive, cached computation; `args` as `run_unit` takes them for its kind."""

    id: str
    kind: str
    spec: StudySpec
    args: tuple
    deps: tuple[str, ...] = ()
    key: str | None = None  # cache key, where known before compute
    cost_s: float = 0.0  # estimated seconds on one core (a worker's)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "key": self.key, "deps": list(self.deps),
                "cost_s": round(self.cost_s, 2)}


@dataclass
class Plan:
    """The units of a run in dependency order, and which of them are still to compute."""

    units: dict[str, Unit] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    rates: dict[str, float] = field(default_factory=dict)  # this machine's, applied per kind

    def todo(self) -> list[Unit]:
        return [u for u in self.units.values() if u.id in self.pending]

    def summary(self) -> str:
        """One line per kind: units, stored, to compute, estimated core-minutes to compute."""
        lines = [f"{'kind':<9} {'units':>6} {'stored':>7} {'to compute':>11} {'est. core-min':>14}"]
        for kind in KINDS:
            units = [u for u in self.units.values() if u.kind == kind]
            todo = [u for u in units if u.id in self.pending]
            stored = sum(u.key is not None and u.id not in self.pending for u in units)
            minutes = sum(u.cost_s for u in todo) / 60
            lines.append(f"{kind:<9} {len(units):>6} {stored:>7} {len(todo):>11} {minutes:>14.1f}")
        total = sum(u.cost_s for u in self.todo()) / 60
        lines.append(f"{'total':<9} {len(self.units):>6} {'':>7} {len(self.pending):>11} {total:>14.1f}")
        if self.rates:
            lines.append(f"priced by what units took on this machine ({machine()}) before: "
                         + ", ".join(f"{k} x{r:.2f}" for k, r in self.rates.items()))
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps([{**u.as_dict(), "pending": u.id in self.pending}
                           for u in self.units.values()], indent=1)


# ---------------------------------------------------------------- building


def build(notebooks: Iterable[tuple[str, Any]], cache: Cache | None = None) -> Plan:
    """The plan of (notebook name, checked parameters) pairs; nothing is computed."""
    builder = _Builder()
    for name, params in notebooks:
        builder.notebook(name, params)
    cache = cache or Cache()
    rates = {k: r for k, r in measured_rates(cache).items() if k in KINDS}
    # Scaled once built: a search's model reads its features unit's modelled cost.
    plan = Plan({uid: replace(u, cost_s=u.cost_s * COST_FACTOR[u.kind] * rates.get(u.kind, 1.0))
                 for uid, u in builder.units.items()}, rates=rates)
    plan.pending = _pending(plan, cache)
    _price_resumed(plan, cache, builder.steps)
    return plan


# ---------------------------------------------------------------- this machine's rates

RATES_FILE = "machine_rates.json"
# A kind's ratio is kept only from enough work that one unit's noise does not set it, and
# within bounds that no stuck or killed unit can push it past.
MIN_MEASURED_S = 30.0
RATE_BOUNDS = (0.1, 10.0)


def machine() -> str:
    """This machine as the cost model tells machines apart: CPU model and precision policy."""
    return f"{compute.cpu_model()}, {compute.precision()}"


def measured_rates(cache: Cache) -> dict[str, float]:
    """Per kind, this machine's measured / modelled seconds over every unit it has run, kinds
    with too little measured work left out ({} where it has run none: the modelled cost
    stands)."""
    return _rates(_totals_of(_every_machine(cache)))


def _rates(totals: dict[str, tuple[float, float]]) -> dict[str, float]:
    # Totals keep the model's arithmetic without COST_FACTOR, so a retuned factor applies to
    # every run's totals at once instead of mixing units.
    return {kind: round(min(max(took / (model * COST_FACTOR[kind]), RATE_BOUNDS[0]),
                            RATE_BOUNDS[1]), 3)
            for kind, (took, model) in totals.items()
            if kind in COST_FACTOR and took >= MIN_MEASURED_S and model > 0}


def _totals_of(every: dict) -> dict[str, tuple[float, float]]:
    """This machine's (measured seconds, modelled seconds before COST_FACTOR) per kind."""
    mine = every.get(machine(), {})
    totals = {}
    for kind, kept in mine.items() if isinstance(mine, dict) else ():
        try:
            if isinstance(kept, dict):
                took, model = float(kept["measured_s"]), float(kept["model_s"])
            else:  # a bare rate, as runs before the totals wrote: the least work that counts
                took = MIN_MEASURED_S
                model = MIN_MEASURED_S / (float(kept) * COST_FACTOR[kind])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):  # unreadable: the model stands
            continue
        if math.isfinite(took) and math.isfinite(model) and took >= 0 and model >= 0:
            totals[str(kind)] = (took, model)
    return totals


def _every_machine(cache: Cache) -> dict:
    try:
        every = json.loads((cache.root / RATES_FILE).read_text())
    except (OSError, ValueError):  # none yet, or a torn file: start over
        return {}
    return every if isinstance(every, dict) else {}


def remember_rates(cache: Cache, plan: Plan, seconds: dict[str, float]) -> dict[str, float]:
    """Add what the units of `plan` took (`seconds`, worker seconds by unit id) and what the
    model priced them at to this machine's totals, so the next plan here is priced by them.

    Rates are ratios of totals over every run, so each run counts by the work it measured:
    one small network does not reprice the large ones another run timed. The model's price
    is the plan's cost without this machine's rate it already held and without COST_FACTOR.
    Other machines' totals are kept as they are. Returns the rates the totals give.
    """
    every = _every_machine(cache)
    totals = _totals_of(every)
    for uid, s in seconds.items():
        unit = plan.units[uid]
        took, model = totals.get(unit.kind, (0.0, 0.0))
        price = unit.cost_s / plan.rates.get(unit.kind, 1.0) / COST_FACTOR[unit.kind]
        totals[unit.kind] = (took + s, model + price)
    every[machine()] = {kind: {"measured_s": round(took, 3), "model_s": round(model, 3)}
                        for kind, (took, model) in sorted(totals.items())}
    atomic_write(cache.root / RATES_FILE, json.dumps(every, indent=1, sort_keys=True).encode())
    return _rates(totals)


def _price_resumed(plan: Plan, cache: Cache, steps: dict[str, int]) -> None:
    """Price a network that a stopped run left half-trained at the steps it has still to go."""
    from . import training

    for uid in plan.pending:
        unit = plan.units[uid]
        done = training.resumed_iteration(cache, unit.key) if unit.kind == "network" else 0
        if done:
            left = max(0.0, 1.0 - done / steps[uid])
            plan.units[uid] = replace(unit, cost_s=unit.cost_s * left)


def _gflops() -> float:
    """One core's modelled rate under this machine's precision policy."""
    return GFLOPS_PER_CORE[compute.precision()]


def _pending(plan: Plan, cache: Cache) -> set[str]:
    """Units to compute: keyed ones not stored, keyless ones that something pending needs."""
    needed_by: dict[str, list[str]] = {}
    for u in plan.units.values():
        for d in u.deps:
            needed_by.setdefault(d, []).append(u.id)
    pending: set[str] = set()
    for u in reversed(list(plan.units.values())):  # dependents come after their dependencies
        if u.key is not None:
            if not cache.has_key(*_stored(u)):
                pending.add(u.id)
        elif any(d in pending for d in needed_by.get(u.id, ())):
            pending.add(u.id)
    return pending


def _stored(u: Unit) -> tuple[str, str, str]:
    kind, codec = STORED[u.kind]
    return kind, u.key, codec


def planned_iterations(study: Study) -> list[int] | None:
    """The snapshot iterations of every source network, where known without training."""
    return study.backend.planned_iterations() if study.backend.offers.trains_networks else None


class _Builder:
    def __init__(self) -> None:
        self.units: dict[str, Unit] = {}
        self.steps: dict[str, int] = {}  # a network unit's SGD steps, to price a resumed one
        self.studies: dict[StudySpec, Study] = {}

    def _add(self, unit: Unit) -> str:
        self.units.setdefault(unit.id, unit)
        return unit.id

    def notebook(self, name: str, params) -> None:
        from . import factors

        spec = StudySpec.of(params)
        study = self.studies.get(spec) or self.studies.setdefault(spec, spec.build())
        real = study.profile.name == "real"
        if type(params) in NETWORK_TABLES and not real:
            for seed in factors.seeds_for(study, params):
                for lv in factors.network_levels(params, study):
                    self.network(spec, study, lv.rep, lv.rep.source, seed)
        for grid in factors.grids(params, study, planned_iterations(study)):
            for seed in grid.seeds:
                for task in grid.tasks:
                    scores = [self.score(spec, study, lv.rep, task, seed) for lv in grid.levels]
                    if grid.factor == "optimized_search":  # the first stage of Table 6's search
                        self.search(spec, study, task, seed, scores)

    # -------------------------------------------------------------- one kind each

    def world(self, spec: StudySpec, study: Study, task: str, split: str) -> str:
        from .world import data_id

        uid = f"world:{task}/{split}{_tag(spec)}"
        if uid in self.units:  # asked for once per unit that reads the split
            return uid
        w = study.world
        n = w.split_size(task, split)
        return self._add(Unit(uid, "world", spec, (task, split),
                              key=config_key("world", data_id(task, w, split)),
                              cost_s=n * w.size ** 2 / 1000 * RENDER_SECONDS_PER_KPIXEL))

    def network(self, spec: StudySpec, study: Study, rep: Representation, source: str,
                seed: int) -> str | None:
        if study.profile.name == "real":
            return None  # torchvision's networks: trained elsewhere
        args = (source, rep.width, rep.depth, rep.fraction, seed)
        net_cfg, train_cfg = study.backend.network_configs(*args)
        flops = _flops(net_cfg)
        self.world(spec, study, source, "test")  # its top-1 in the notebooks' network tables
        uid = f"network:{source}/{rep.width}/d{rep.depth}/data{rep.fraction:g}/seed{seed}{_tag(spec)}"
        self.steps[uid] = train_cfg.steps
        return self._add(Unit(
            uid, "network", spec, args, (self.world(spec, study, source, "train"),),
            key=study.backend.network_key(*args),
            cost_s=3 * flops * train_cfg.steps * train_cfg.batch_size / 1e9 / _gflops()))

    def _model(self, spec: StudySpec, study: Study, rep: Representation, source: str,
               task: str, seed: int) -> str | None:
        """The unit that makes the weights behind `rep` for `task`: its network or fine-tune."""
        net = self.network(spec, study, rep, source, seed)
        if not rep.finetune:
            return net
        base = Representation(source=source, width=rep.width, depth=rep.depth,
                              fraction=rep.fraction, checkpoint=rep.checkpoint,
                              finetune=rep.finetune, finetune_lr=rep.finetune_lr)
        splits = ["train"] + (["extra"] if rep.finetune == "target+extra" else [])
        lrs = study.profile.finetune_lrs
        runs = 1  # fine-tunes, each scored on the validation split where a rate is chosen
        if (rep.finetune in TUNED_MODES and rep.finetune_lr is None and len(lrs) > 1
                and VALIDATION_SPLIT in _splits(task)):
            splits.append(VALIDATION_SPLIT)
            runs = len(lrs)
        deps = [net] + [self.world(spec, study, task, s) for s in splits]
        ft = study.profile.finetune
        flops = _flops(architecture.NetConfig(width=rep.width, depth=rep.depth,
                                          input_size=study.input_size))
        return self._add(Unit(f"finetune:{base.label()}/{task}/seed{seed}{_tag(spec)}", "finetune",
                              spec, (base, task, seed), tuple(d for d in deps if d),
                              cost_s=3 * flops * ft.steps * ft.batch_size * runs
                              / 1e9 / _gflops()))

    def features(self, spec: StudySpec, study: Study, rep: Representation, task: str,
                 seed: int) -> str:
        base = feature_rep(rep)
        sources = ("objects", "scenes") if rep.source == "concat" else (rep.source,)
        deps = [self._model(spec, study, base, s, task, seed) for s in sources]
        splits = [] if study.profile.name == "real" else _splits(task)  # real: its own loader
        deps += [self.world(spec, study, task, s) for s in splits]
        n = sum(study.world.split_size(task, s) for s in splits if s != VALIDATION_SPLIT)
        flops = _flops(architecture.NetConfig(width=rep.width, depth=rep.depth,
                                          input_size=study.input_size))
        return self._add(Unit(f"features:{base.label()}/p{base.pooling}/{task}/seed{seed}{_tag(spec)}",
                              "features",
                              spec, (base, task, seed), tuple(d for d in deps if d),
                              cost_s=len(sources) * JITTERS * n * flops / 1e9 / _gflops()))

    def score(self, spec: StudySpec, study: Study, rep: Representation, task: str,
              seed: int) -> str:
        deps = (self.features(spec, study, rep, task, seed),)
        return self._add(Unit(f"score:{rep.label()}/{task}/seed{seed}{_tag(spec)}", "score", spec,
                              (rep, task, seed), deps, key=score_key(study, rep, task, seed),
                              cost_s=PROBE_SECONDS))

    def search(self, spec: StudySpec, study: Study, task: str, seed: int,
               first_stage: list[str]) -> str:
        """Table 6's later stages on one task and seed: each starts from a choice made on the
        scores before it, so the whole search is one unit that runs after its first stage."""
        std_features = self.units[self.features(spec, study, STANDARD, task, seed)]
        retrieval = study.task_spec(task).kind == "retrieval"
        return self._add(Unit(f"search:{task}/seed{seed}{_tag(spec)}", "search", spec,
                              (task, seed), tuple(first_stage),
                              key=search_key(study, task, seed),
                              # the conv features of the chosen network (retrieval: at three
                              # poolings, and its sub-patches), then about 15 candidates' probes
                              cost_s=std_features.cost_s * (4 if retrieval else 1)
                              + 15 * PROBE_SECONDS))


def feature_rep(rep: Representation) -> Representation:
    """The representation whose features stand for `rep`'s: Study extracts every layer of the
    standard network in one entry per pooling, and the FC layers of any other network in
    one entry (Study._layers); PCA and spatial search work on those features."""
    plain = replace(rep, pca_dim=None, spatial=False)
    if replace(plain, layer="fc6", pooling=1) == STANDARD or plain.layer in FC_LAYERS:
        return replace(plain, layer="fc6")
    return plain


@lru_cache(maxsize=64)
def _flops(cfg: architecture.NetConfig) -> int:
    return architecture.complexity(cfg)["flops"]


def _tag(spec: StudySpec) -> str:
    """Units of another drawn world (or real data) apart from those of the default one."""
    return "" if spec == StudySpec(spec.profile) else f"@{abs(hash(spec)) % 10**8}"


def _splits(task: str) -> list[str]:
    """The splits loading the task renders (features are extracted on all but validation)."""
    from .world import splits_of

    return list(splits_of(task))


# ---------------------------------------------------------------- cache keys


def score_key(study: Study, rep: Representation, task: str, seed: int) -> str | None:
    """The cache key of `study.evaluate(rep, task, seed)`, or None where it needs weights."""
    if planned_iterations(study) is None:
        return None  # the snapshots (or a real network's input size) must be loaded first
    return config_key("scores", study.score_config(rep, task, seed))


def search_config(study: Study, task: str, seed: int) -> dict | None:
    """What keys the record that Table 6's search on (task, seed) ran to its end: its first
    stage's score keys name every network it can choose; the stages and PCA dimensions name
    what it searches."""
    from . import factors

    first = [score_key(study, lv.rep, task, seed) for lv in factors.first_stage_levels(study, task)]
    if None in first:
        return None
    return {"first_stage": first, "stages": list(factors.optimized_stages(study)),
            "dims": factors.OPTIMIZED_DIMS,
            "finetune": [asdict(study.profile.finetune), list(study.profile.finetune_lrs)]}


def search_key(study: Study, task: str, seed: int) -> str | None:
    config = search_config(study, task, seed)
    return None if config is None else config_key("search", config)


# ---------------------------------------------------------------- executing one unit


@lru_cache(maxsize=4)
def _study(spec: StudySpec, cache_root: str) -> Study:
    """One Study per process, spec and cache: networks and tasks loaded once per worker."""
    return spec.build()


def run_unit(unit: Unit) -> tuple[str, str, float]:
    """Compute one unit through its notebook's Study (and so through the cache); its id, its
    kind and the seconds it took here (what `parallel.execute` weighs the estimates against).

    The units it needs must be done (parallel.execute submits it only then): everything a
    unit reads comes from the cache.
    """
    compute.freeze_libraries()  # once per worker, before its first unit (not timed: not the unit's)
    start = time.perf_counter()
    try:
        _compute_unit(unit)
    finally:
        compute.release_memory()  # what the unit freed, before the worker's next unit
    return unit.id, unit.kind, time.perf_counter() - start


def _compute_unit(unit: Unit) -> None:
    study = _study(unit.spec, str(default_root()))
    if unit.kind == "world":
        from .world import load_split

        load_split(*unit.args, study.world, study.cache)
    elif unit.kind == "network":
        study.network(*unit.args)
    elif unit.kind == "finetune":
        rep, task, seed = unit.args
        study._model(rep, rep.source, task, seed)  # the fine-tuned weights, cached
    elif unit.kind == "features":
        study.split_features(*unit.args)
    elif unit.kind == "search":
        from . import factors
        from .progress import quiet

        with quiet():  # its many extractions would each report the whole search
            factors.recorded_search(study, *unit.args)
    else:
        study.evaluate(*unit.args)
