"""Every notebook, run through papermill on the smoke profile, and what it wrote.

One batch run (the runner, as `make study` uses it) in a session fixture; the tests assert on
the reports, tables and verdicts it left behind. This is the end-to-end test of the study.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill as pm
import pytest
import yaml
from transferlab import factors, params, runner
from transferlab.claims import PAPER_CLAIMS
from transferlab.profiles import get_profile

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FACTOR_LEVELS = {"01_width": ("width", "widths"), "02_depth": ("depth", "depths"),
                 "04_source_task": ("source_task", "sources"),
                 "08_data_size": ("data_size", "fractions")}
VERDICTS = {"reproduced", "not reproduced", "inconclusive"}


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, smoke_cache):
    """One cold batch run of the smoke profile (its own cache, inherited by the kernels)."""
    out = tmp_path_factory.mktemp("reports")
    mp = pytest.MonkeyPatch()
    mp.setenv("TRANSFERLAB_CACHE", str(smoke_cache))
    try:
        records = runner.run_study("smoke", out=out, progress_bar=False, log_output=False)
    finally:
        mp.undo()
    return out / "smoke", {r.name: r for r in records}


def test_notebooks_are_generated_and_have_no_outputs():
    sys.path.insert(0, str(ROOT / "tools"))
    import make_notebooks

    for name, nb in make_notebooks.build().items():
        committed = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in nb.cells], (
            f"{name}.ipynb is stale: run python tools/make_notebooks.py")
        for cell in committed.cells:
            assert cell.get("outputs", []) == [] and cell.get("execution_count") is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_matches_the_library_schema(name):
    declared = pm.inspect_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"))
    schema = params.schema(name)
    assert set(declared) == set(schema.__dataclass_fields__)


def test_every_notebook_ran(smoke_run):
    folder, records = smoke_run
    assert sorted(records) == NOTEBOOKS
    failed = {n: r.error for n, r in records.items() if r.status != "ok"}
    assert not failed, failed
    index = (folder / "index.html").read_text()
    for name in NOTEBOOKS:
        assert name in index


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_results_cover_every_task_and_level(smoke_run, name):
    folder, _ = smoke_run
    table = pd.read_csv(folder / name / "results.csv")
    assert len(table) > 0 and table.score.notna().all()
    tasks = set(get_profile("smoke").tasks)
    if name == "07_fine_tuning":
        tasks = {t for t in tasks if t in ("rooms", "birds", "interactions")}
    source = table[table.group == "source"]
    table = table[table.group != "source"]
    if name == "03_early_stopping":  # each snapshot's top-1 on its source: convergence
        assert set(source.task) == {"objects"}
        assert source.groupby("factor").level_index.nunique().min() == table.level_index.nunique()
    if name != "08_data_size":
        assert set(table.task) == tasks
    if name in FACTOR_LEVELS:
        factor, field = FACTOR_LEVELS[name]
        given = params.schema(name)().__getattribute__(field)
        sub = table[table.factor == factor]
        assert sub.level_index.nunique() == len(given)
        for task in tasks:  # every level of every task
            assert sub[sub.task == task].level_index.nunique() == len(given)
    ci = table.dropna(subset=["ci_low"])
    assert (ci.ci_low <= ci.score + 1e-9).all() and (ci.score <= ci.ci_high + 1e-9).all()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_verdict_per_claim(smoke_run, name):
    folder, _ = smoke_run
    claims = pd.read_csv(folder / name / "claims.csv")
    assert len(claims) >= 1
    assert set(claims.verdict) <= VERDICTS
    assert claims.evidence.str.len().min() > 10


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n != "00_world"])
def test_each_claim_notebook_shows_where_its_intervals_come_from(smoke_run, name):
    folder, _ = smoke_run
    nb = nbformat.read(folder / name / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "claims.uncertainty(" in c.source)
    assert any("image/png" in out.get("data", {}) for out in cell.outputs)
    # Published beside the headline, so the run's index shows it too.
    spread = pd.read_csv(folder / name / "uncertainty.csv")
    own = set(pd.read_csv(folder / name / "claims.csv").paper_claim)
    assert len(spread) and set(spread.paper_claim) <= own
    assert (folder / name / "uncertainty.png").stat().st_size > 1000
    index = (folder / "index.html").read_text()
    section = index[index.index(f'<section id="{name}">'):]
    assert section.index("Where the intervals come from") < section.index("</section>")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_html_is_self_contained(smoke_run, name):
    folder, _ = smoke_run
    html = (folder / name / f"{name}.html").read_text()
    assert not re.search(r"<script[^>]+src=[\"']https?:", html)
    assert not re.search(r"<link[^>]+href=[\"']https?:", html)
    assert "data:image/png;base64" in html, "figures must be inline"
    assert "injected-parameters" not in html


def test_batch_tables_and_claims(smoke_run):
    folder, _ = smoke_run
    table = pd.read_csv(folder / "results.csv")
    assert {"factor", "level", "task", "score"} <= set(table.columns)
    assert {"world", "width", "depth", "layer", "optimized"} <= set(table.factor)
    claims = pd.read_csv(folder / "claims.csv", keep_default_na=False)
    assert list(claims.columns[:7]) == ["paper_claim", "claim", "verdict", "statistic", "ci_low",
                                        "ci_high", "evidence"]
    assert set(claims.paper_claim) - {""} == set(PAPER_CLAIMS)  # each of the nine, once
    assert (claims.paper_claim[claims.paper_claim != ""].value_counts() == 1).all()


def test_optimized_choices_are_made_on_training_data(smoke_run):
    folder, _ = smoke_run
    table = pd.read_csv(folder / "09_optimized" / "results.csv")
    search = table[table.factor == "optimized_search"]
    stages = list(factors.OPTIMIZED_STAGES)
    search = search.assign(stage=search.level.str.split(":").str[0])
    assert set(search.stage) <= set(stages) and "finetune" in set(search.stage)
    table = table[table.factor == "optimized"]
    assert set(table.level) == {"standard", "optimized"}
    for (task, seed), rows in table.groupby(["task", "seed"]):
        assert len(rows) == 2
        opt = rows.set_index("level").loc["optimized"]
        ran = search[(search.task == task) & (search.seed == seed)]
        last = ran[ran.stage == max(ran.stage, key=stages.index)]
        # the last stage's best by the score it chooses by (CV on train; fine-tuning: the
        # validation split), never by the test score
        assert opt.cv_score == last.cv_score.max()
        assert opt.representation in set(last.representation)


def test_fine_tuning_rates_were_chosen_on_validation_by_the_plan(smoke_run, smoke_cache,
                                                                 tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(smoke_cache))
    monkeypatch.setenv("TRANSFERLAB_CACHE_LOG", str(tmp_path / "computed.log"))
    p = params.validate("07_fine_tuning", {"profile": "smoke"})
    choices = factors.finetune_choices(p)
    assert not (tmp_path / "computed.log").exists()  # the run computed every rate's score
    assert set(choices.task) == {"rooms", "birds", "interactions"}
    for _, rows in choices.groupby(["task", "seed"]):
        assert sorted(rows["learning rate"]) == list(get_profile("smoke").finetune_lrs)
        assert rows.chosen.sum() == 1
        assert rows[rows.chosen]["validation score"].item() == rows["validation score"].max()


def test_a_serial_run_leaves_nothing_of_its_plan_to_compute(smoke_run, smoke_cache, tmp_path,
                                                           monkeypatch):
    """The batch run computed in the notebooks (no Dask): its cache must hold what the plan
    would have computed, Table 6's search records included, or `pool` would ask for a rerun.
    World splits aside: a notebook draws only those it reads."""
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(smoke_cache))
    units = runner.study_plan(runner.plan("smoke", out=tmp_path))
    assert [u.id for u in units.todo() if u.kind != "world"] == []


def test_pool_reads_two_worlds_runs_and_names_a_world_not_run(smoke_run, smoke_cache, tmp_path,
                                                             monkeypatch, capsys):
    from transferlab.__main__ import main

    monkeypatch.setenv("TRANSFERLAB_CACHE", str(smoke_cache))
    out = tmp_path / "reports"
    pool = ["pool", "--profile", "smoke", "--world-seeds", "0", "1", "--only", "layer",
            "--out", str(out)]
    assert main(pool) == 2  # world 1 was never run: named with its command, nothing written
    err = capsys.readouterr().err
    assert "world 1:" in err and "--world-seed 1 --only 05_layer" in err
    assert "world 0:" not in err and not out.exists()
    world1 = runner.run_study("smoke", only=["layer"], out=tmp_path / "world1",
                              overrides={"world_seed": 1}, progress_bar=False, log_output=False)
    assert [r.status for r in world1] == ["ok"]
    assert main(pool) == 0
    pooled = out / "smoke-worlds-0-1"
    single = pd.read_csv(smoke_run[0] / "05_layer" / "results.csv")
    table = pd.read_csv(pooled / "05_layer" / "results.csv")
    assert set(table.task) == {f"{t} (world {w})" for t in single.task for w in (0, 1)}
    own = table[table.task.str.endswith("(world 0)")]
    assert own.score.tolist() == single.score.tolist()  # world 0's scores, as its run left them
    verdicts = pd.read_csv(pooled / "claims.csv", keep_default_na=False)
    assert verdicts.paper_claim.tolist() == ["layer"]
    assert f"({2 * single.task.nunique()} tasks)" in verdicts.evidence[0]
    assert "Tasks of worlds 0, 1 pooled." in verdicts.evidence[0]
    assert "layer" in capsys.readouterr().out
    assert "05_layer" in (pooled / "index.html").read_text()
    assert (pooled / "05_layer" / "headline.png").stat().st_size > 1000  # per world and pooled
    spread = pd.read_csv(pooled / "05_layer" / "uncertainty.csv")
    assert spread.paper_claim.tolist() == ["layer"]  # the pooled interval, taken apart
    assert spread.value[0] == pytest.approx(verdicts.statistic[0])
    assert spread.ci_low[0] == pytest.approx(verdicts.ci_low[0])  # the verdict's own interval
    assert (pooled / "05_layer" / "uncertainty.png").stat().st_size > 1000
    assert 'alt="uncertainty figure of 05_layer"' in (pooled / "index.html").read_text()
    assert main(["compare", str(smoke_run[0]), str(pooled)]) == 0


# Runs every notebook's code cells, with the parameters the batch run gave them, in one fresh
# interpreter; prints the modules it imported that a cache reader should not need.
_WARM_SCRIPT = """
import sys
import nbformat
from transferlab import params
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    name = path.rsplit("/", 1)[-1][:-len(".ipynb")]
    values = params.load_params("smoke", name) | {"profile": "smoke", "output_dir": ""}
    scope = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(cell.source, scope)
            if "parameters" in cell.metadata.get("tags", []):
                scope.update(values)
print(sorted(m for m in ("torch", "torchvision") if m in sys.modules))
"""


def test_a_warm_notebook_never_imports_torch(smoke_run, smoke_cache):
    """Reading the cache costs no torch import (about 1.2 s of each kernel's start-up)."""
    from transferlab import compute

    env = {**os.environ, **compute.policy_env(), "TRANSFERLAB_CACHE": str(smoke_cache),
           "MPLBACKEND": "Agg"}
    paths = [str(ROOT / "notebooks" / f"{name}.ipynb") for name in NOTEBOOKS]
    done = subprocess.run([sys.executable, "-c", _WARM_SCRIPT, *paths], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]


def test_invalid_parameter_fails_with_the_library_message(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(ROOT / "notebooks" / "05_layer.ipynb"), str(tmp_path / "o.ipynb"),
                            parameters={"profile": "smoke", "poolling": 2},
                            cwd=str(ROOT / "notebooks"), kernel_name=runner.resolve_kernel(None),
                            progress_bar=False)
    assert "poolling" in str(err.value) and "pooling" in str(err.value)


def test_invalid_level_fails_before_any_compute(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(ROOT / "notebooks" / "01_width.ipynb"), str(tmp_path / "o.ipynb"),
                            parameters={"profile": "smoke", "widths": ["medium", "huge"]},
                            cwd=str(ROOT / "notebooks"), kernel_name=runner.resolve_kernel(None),
                            progress_bar=False)
    assert "huge" in str(err.value) and "tiny" in str(err.value)


def test_cli_lists_tasks_as_json():
    out = subprocess.run([sys.executable, "-m", "transferlab", "tasks", "--json"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    tasks = [json.loads(line) for line in out]
    assert len(tasks) == 19 and {"name", "role", "group", "kind", "metric", "analog",
                                 "distance_rank", "n_classes"} <= set(tasks[0])


def test_params_files_exist_for_every_profile_and_notebook():
    for profile in ("smoke", "quick", "full"):
        for name in NOTEBOOKS:
            path = ROOT / "params" / profile / f"{name}.yaml"
            assert path.exists(), path
            params.validate(name, yaml.safe_load(path.read_text()) or {})
