"""The plan: its units match what the notebooks compute, its keys what the Study stores."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
from dataclasses import replace

import pytest
from transferlab import factors, plan, runner
from transferlab import params as P
from transferlab.__main__ import main
from transferlab.cache import Cache
from transferlab.study import STANDARD, Study


def _plan(only, tmp_path, cache=None):
    jobs = runner.plan("smoke", only, tmp_path / "r")
    return jobs, plan.build(((j.name, P.validate(j.name, j.parameters)) for j in jobs), cache)


def test_plan_of_every_notebook_counts_units_per_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    _, units = _plan([], tmp_path)
    kinds = {k: sum(u.kind == k for u in units.units.values()) for k in plan.KINDS}
    # Every source network the notebooks train is one unit, however many notebooks use it.
    nets = {u.args for u in units.units.values() if u.kind == "network"}
    assert ("objects", "medium", 5, 1.0, 0) in nets and ("hybrid", "medium", 5, 1.0, 0) in nets
    assert kinds["network"] == len(nets) and kinds["score"] > kinds["features"] > kinds["network"]
    assert units.pending == set(units.units)  # a cold cache: everything to compute
    for u in units.units.values():  # dependencies come first
        assert all(list(units.units).index(d) < list(units.units).index(u.id) for d in u.deps)
    text = units.summary()
    assert text.splitlines()[0].split()[:4] == ["kind", "units", "stored", "to"]
    assert all(k in text for k in plan.KINDS)
    # Each kind scaled once by what it measured; a search's model reads its standard
    # features' unscaled model (scaled twice, it would weigh 4x more).
    search = next(u for u in units.units.values() if u.kind == "search")
    features = units.units[next(d for u in units.units.values() if u.id in search.deps
                                for d in u.deps if d.startswith("features:objects/medium/d5/fc6/p1/"))]
    retrieval = 4 if Study("smoke").task_spec(search.args[0]).kind == "retrieval" else 1
    model = features.cost_s / plan.COST_FACTOR["features"] * retrieval + 15 * plan.PROBE_SECONDS
    assert search.cost_s == pytest.approx(plan.COST_FACTOR["search"] * model)


def test_early_stopping_levels_from_the_profile_match_the_trained_network(tmp_path, one_thread):
    study = Study("smoke", cache=Cache(tmp_path), progress=False)
    planned = plan.planned_iterations(study)
    assert planned == study.checkpoint_iterations(0)
    params = P.validate("03_early_stopping", {"profile": "smoke"})
    assert factors.grids(params, study, planned) == factors.grids(params, study)


def test_predicted_keys_are_the_entries_the_study_writes(tmp_path, one_thread):
    """The plan's cache keys mirror Study's: a drift here would make warm runs recompute."""
    study = Study("smoke", cache=Cache(tmp_path), progress=False)
    reps = [STANDARD, replace(STANDARD, checkpoint=0), replace(STANDARD, layer="fc7", finetune="target"),
            replace(STANDARD, source="concat")]
    for rep in reps:
        study.evaluate(rep, "rooms", 0)
        assert study.cache.has_key("scores", plan.score_key(study, rep, "rooms", 0), "json"), rep
    spec = plan.StudySpec("smoke")
    builder = plan._Builder()
    builder.studies[spec] = study
    net = builder.units[builder.network(spec, study, STANDARD, "objects", 0)]
    assert net.key == study.network("objects").key


def test_warm_cache_leaves_nothing_pending(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    _, units = _plan(["07_fine_tuning"], tmp_path)
    for u in units.todo():
        plan.run_unit(u)
    _, again = _plan(["07_fine_tuning"], tmp_path)
    assert again.pending == set() and len(again.units) == len(units.units)


def test_a_warm_study_loads_no_network(tmp_path, monkeypatch, one_thread):
    """Scores, source top-1 and the network tables are keyed on the training run's key, so a
    warm notebook reads them without training or loading a single network."""
    from transferlab import training

    params = P.validate("01_width", {"profile": "smoke", "widths": ["medium"]})
    reps = [STANDARD, replace(STANDARD, checkpoint=0), replace(STANDARD, finetune="target")]
    cold = Study("smoke", cache=Cache(tmp_path), progress=False)
    scores = [cold.evaluate(rep, "rooms", 0) for rep in reps]
    table = factors.network_table(params, cold)

    def no_training(*args, **kwargs):
        raise AssertionError("a warm study loaded a network")

    monkeypatch.setattr(training, "train", no_training)
    warm = Study("smoke", cache=Cache(tmp_path), progress=False)
    assert [warm.evaluate(rep, "rooms", 0) for rep in reps] == scores
    assert factors.network_table(params, warm).equals(table)
    assert table["top-1 (%)"].notna().all() and (table["steps"] > 0).all()


def test_the_plan_runs_table_6s_search_to_its_end(tmp_path, monkeypatch, one_thread):
    """Each (task, seed) of 09_optimized is one `search` unit after its first stage; once the
    plan ran, the notebook's search reads every stage from the cache and computes nothing."""
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    jobs, units = _plan(["09_optimized"], tmp_path)
    params = P.validate("09_optimized", {**jobs[0].parameters, "tasks": ["rooms", "object_instances"]})
    units = plan.build([("09_optimized", params)])
    searches = [u for u in units.units.values() if u.kind == "search"]
    assert sorted(u.args for u in searches) == [("object_instances", 0), ("rooms", 0)]
    for u in searches:
        assert u.key and u.deps and all(units.units[d].kind == "score" for d in u.deps)
    for u in units.todo():
        plan.run_unit(u)
    assert plan.build([("09_optimized", params)]).pending == set()
    log = tmp_path / "computed.log"
    monkeypatch.setenv("TRANSFERLAB_CACHE_LOG", str(log))
    table = factors.run_optimized(params)
    assert not log.exists()  # nothing left for the notebook: every stage's scores are stored
    assert set(table[table.factor == "optimized"].task) == {"rooms", "object_instances"}
    stages = table[table.factor == "optimized_search"].level.str.split(":").str[0]
    assert set(stages) == set(factors.optimized_stages(Study("smoke", progress=False)))


def test_cli_plan_prints_and_computes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    assert main(["run", "--profile", "smoke", "--only", "width", "--out", str(tmp_path / "r"),
                 "--plan"]) == 0
    out = capsys.readouterr().out
    assert "network   todo   network:objects/tiny/d5/data1/seed0  key=" in out
    assert "plan of 1 notebooks, profile smoke:" in out and out.rstrip().splitlines()[-1].startswith("total")
    assert not (tmp_path / "r").exists()
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def _slow_entry(root: str, log: str) -> None:
    import os
    import time

    os.environ["TRANSFERLAB_CACHE_LOG"] = log
    Cache(root).get_or_compute("demo", {"x": 1}, lambda: (time.sleep(1.0), {"v": [1]})[1], "json")


def test_one_entry_is_computed_once_by_two_processes(tmp_path):
    log = tmp_path / "computed.log"
    procs = [mp.get_context("spawn").Process(target=_slow_entry, args=(str(tmp_path / "c"), str(log)))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().splitlines()) == 1
    assert Cache(tmp_path / "c").load("demo", {"x": 1}, "json") == {"v": [1]}


@pytest.mark.parametrize("bad", [{"workers": -1}, {"scheduler": "localhost:8786"}])
def test_cluster_config_names_the_bad_parameter(bad):
    from transferlab.parallel import ClusterConfig

    with pytest.raises(ValueError, match=next(iter(bad))):
        ClusterConfig(**bad)


def test_a_unit_hands_its_freed_memory_back_even_when_it_fails(monkeypatch):
    # A worker runs hundreds of units: what one frees must not stay resident for the next,
    # a failed one included (Dask retries it on the same worker).
    released = []
    monkeypatch.setattr(plan.compute, "release_memory", lambda: released.append(True))

    def fail(unit):
        raise MemoryError("a unit that fails")

    unit = plan.Unit("u", "scores", plan.StudySpec("smoke"), ())
    monkeypatch.setattr(plan, "_compute_unit", lambda unit: None)
    assert plan.run_unit(unit)[:2] == ("u", "scores")
    monkeypatch.setattr(plan, "_compute_unit", fail)
    with pytest.raises(MemoryError):
        plan.run_unit(unit)
    assert released == [True, True]


def test_release_memory_collects_garbage(monkeypatch):
    import gc

    collected = []
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(True) or 0)
    plan.compute.release_memory()
    assert collected == [True]


_FREEZE_SCRIPT = """
import gc, weakref
from transferlab import compute
compute.freeze_libraries()
frozen = gc.get_freeze_count()
class Node: pass
node = Node(); node.me = node; alive = weakref.ref(node); del node
compute.freeze_libraries()
assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)
compute.release_memory()
assert alive() is None, "a cycle made after the freeze was not collected"
print(frozen)
"""


def test_a_worker_freezes_its_libraries_once_and_still_collects_what_units_leave():
    # A worker's full collection after each unit would walk the libraries' ~300,000 objects
    # every time; they are frozen once, and a cycle made afterwards must still be collected.
    # In a subprocess: the freeze lasts as long as the process.
    out = subprocess.run([sys.executable, "-c", _FREEZE_SCRIPT], capture_output=True,
                         text=True, check=True)
    assert int(out.stdout) > 100_000


def test_the_cost_model_runs_at_the_precision_the_machine_trains_in(tmp_path, monkeypatch):
    """fp32 machines (no native bf16) train and extract slower: their estimates say so."""
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    costs = {}
    for policy in ("bf16", "fp32"):
        monkeypatch.setenv("TRANSFERLAB_PRECISION", policy)
        _, units = _plan(["05_layer"], tmp_path)
        costs[policy] = {u.id: (u.kind, u.cost_s) for u in units.units.values()}
    assert costs["bf16"].keys() == costs["fp32"].keys()  # the same units, priced differently
    ratio = plan.GFLOPS_PER_CORE["bf16"] / plan.GFLOPS_PER_CORE["fp32"]
    for uid, (kind, bf16) in costs["bf16"].items():
        if kind in ("network", "features"):
            assert costs["fp32"][uid][1] == pytest.approx(ratio * bf16), uid
        elif kind == "world":
            assert costs["fp32"][uid][1] == bf16, uid  # rendering has no precision


def test_a_network_a_stopped_run_left_half_trained_is_priced_at_the_steps_it_has_left(
        tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    cache = Cache(tmp_path / "cache")
    _, cold = _plan(["05_layer"], tmp_path, cache)
    net = next(u for u in cold.units.values() if u.kind == "network")
    steps = Study("smoke").backend.network_configs(*net.args)[1].steps
    (cache.root / "resume").mkdir(parents=True)
    torch.save({"iteration": steps // 4}, cache.root / "resume" / f"{net.key}.pt")
    _, resumed = _plan(["05_layer"], tmp_path, cache)
    assert resumed.units[net.id].cost_s == pytest.approx(net.cost_s * (1 - (steps // 4) / steps))
    others = [u for u in cold.units if u != net.id]
    assert all(resumed.units[u].cost_s == cold.units[u].cost_s for u in others)


def test_a_machine_that_ran_a_plan_prices_the_next_one_by_what_its_units_took(
        tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    cache = Cache(tmp_path / "cache")
    _, cold = _plan(["05_layer"], tmp_path, cache)
    assert cold.rates == {} and "priced by" not in cold.summary()  # nothing run here yet
    spec = plan.StudySpec("smoke")
    ran = plan.Plan({u.id: u for u in [plan.Unit("n1", "network", spec, (), cost_s=60.0),
                                       plan.Unit("n2", "network", spec, (), cost_s=40.0),
                                       plan.Unit("f", "features", spec, (), cost_s=10.0)]})
    # Its networks took 1.5x their price; its features 1 s, too little work to say anything.
    rates = plan.remember_rates(cache, ran, {"n1": 80.0, "n2": 70.0, "f": 1.0})
    assert rates == {"network": 1.5}
    _, warm = _plan(["05_layer"], tmp_path, cache)
    assert warm.rates == rates and "network x1.50" in warm.summary()
    for u in cold.units.values():
        scale = 1.5 if u.kind == "network" else 1.0
        assert warm.units[u.id].cost_s == pytest.approx(u.cost_s * scale), u.id
    # The next run is priced at 1.5x and takes 2x its price: the rate pools both runs' work,
    # (150 + 300) measured over (100 + 100) modelled seconds.
    ran.rates = rates
    ran.units = {uid: replace(u, cost_s=u.cost_s * 1.5) if u.kind == "network" else u
                 for uid, u in ran.units.items()}
    assert plan.remember_rates(cache, ran, {"n1": 180.0, "n2": 120.0})["network"] == 2.25
    # One small network at 4x its price moves the rate by its share of the work, not to 4x.
    small = plan.Plan({"n3": plan.Unit("n3", "network", spec, (), cost_s=22.5)},
                      rates={"network": 2.25})
    assert plan.remember_rates(cache, small, {"n3": 40.0})["network"] == pytest.approx(
        490 / 210, abs=1e-3)
    assert plan.measured_rates(cache) == {"network": pytest.approx(490 / 210, abs=1e-3)}
    # Totals hold the model before COST_FACTOR: a retuned factor reprices every run's work.
    monkeypatch.setitem(plan.COST_FACTOR, "network", 2 * plan.COST_FACTOR["network"])
    assert plan.measured_rates(cache)["network"] == pytest.approx(490 / 210 / 2, abs=1e-3)
    monkeypatch.undo()
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    # A file from before the totals holds bare rates: each counts as the least work that does,
    # below 1 as above it.
    (cache.root / plan.RATES_FILE).write_text(
        json.dumps({plan.machine(): {"network": 2.0, "features": 0.5}}))
    assert plan.measured_rates(cache) == {"network": 2.0, "features": 0.5}
    # Another machine's totals survive this one's entry being unreadable.
    other = {"measured_s": 100.0, "model_s": 10.0}
    (cache.root / plan.RATES_FILE).write_text(
        json.dumps({plan.machine(): ["torn"], "another CPU, fp32": {"network": other}}))
    assert plan.measured_rates(cache) == {}
    plan.remember_rates(cache, small, {"n3": 40.0})
    kept = json.loads((cache.root / plan.RATES_FILE).read_text())
    assert kept["another CPU, fp32"] == {"network": other}
    monkeypatch.setattr(plan, "machine", lambda: "a third CPU, fp32")
    assert plan.measured_rates(cache) == {}  # another machine starts from the model
    (cache.root / plan.RATES_FILE).write_text("{torn")
    assert plan.measured_rates(cache) == {}  # unreadable: the model stands, nothing fails
