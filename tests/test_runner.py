"""The runner and the report: a real papermill run over tiny fixture notebooks."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from transferlab import report, runner
from transferlab import results as results_schema

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
NOTEBOOKS = FIXTURES / "notebooks"
PARAMS = FIXTURES / "params"
EXTERNAL = re.compile(r"<script[^>]*\ssrc=[\"']?https?:|<link[^>]*\shref=[\"']?https?:", re.I)


# --- selection and planning: everything is checked before anything runs -----------------


def test_select_notebooks_by_full_or_short_name():
    nbs = runner.find_notebooks(NOTEBOOKS)
    assert [nb.stem for nb in nbs] == ["00_world", "01_width", "02_depth"]
    picked = runner.select_notebooks(nbs, ["depth", "00_world"])
    assert [nb.stem for nb in picked] == ["00_world", "02_depth"]
    assert runner.select_notebooks(nbs, []) == nbs


def test_unknown_notebook_name_fails_before_running(tmp_path):
    with pytest.raises(ValueError) as err:
        runner.run_study(
            "smoke",
            only=["width", "heigth"],
            out=tmp_path / "r",
            notebooks_dir=NOTEBOOKS,
            params_dir=PARAMS,
        )
    assert "['heigth']" in str(err.value) and "'01_width'" in str(err.value)
    assert not (tmp_path / "r").exists()


def test_bad_parameter_file_fails_before_running(tmp_path):
    params = tmp_path / "params"
    (params / "smoke").mkdir(parents=True)
    (params / "smoke" / "02_depth.yaml").write_text("depths: [5, deep]\n")
    with pytest.raises(ValueError, match="02_depth.yaml"):
        runner.run_study("smoke", out=tmp_path / "r", notebooks_dir=NOTEBOOKS, params_dir=params)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("notebook", "text", "expected"),
    [
        ("00_world", "tasks: [roomz]\n", "tasks ['roomz'] are not target tasks; valid tasks: ["),
        ("02_depth", "depths: [6]\n", "depth=6 is not one of"),
    ],
)
def test_unknown_task_or_level_fails_before_the_first_notebook(tmp_path, notebook, text, expected):
    params = tmp_path / "params"
    (params / "smoke").mkdir(parents=True)
    (params / "smoke" / f"{notebook}.yaml").write_text(text)
    with pytest.raises(ValueError) as err:
        runner.run_study("smoke", out=tmp_path / "r", notebooks_dir=NOTEBOOKS, params_dir=params)
    assert f"notebook {notebook}: " in str(err.value) and expected in str(err.value)
    assert not (tmp_path / "r").exists()


def test_plan_injects_profile_and_absolute_output_dir(tmp_path):
    jobs = runner.plan("smoke", ["width"], out=tmp_path / "r", notebooks_dir=NOTEBOOKS, params_dir=PARAMS)
    assert len(jobs) == 1
    out = Path(jobs[0].parameters["output_dir"])
    # The notebook writes into a hidden staging folder that replaces the report on success.
    assert jobs[0].folder == (tmp_path / "r" / "smoke" / "01_width").resolve()
    assert out.is_absolute() and out == jobs[0].folder.with_name(".01_width.new")
    assert jobs[0].parameters == {
        "widths": ["tiny", "small"],
        "profile": "smoke",
        "output_dir": str(out),
    }


# --- kernel resolution -------------------------------------------------------------------


def _kernelspec(root: Path, name: str, python: str) -> None:
    folder = root / "kernels" / name
    folder.mkdir(parents=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name,
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))


def test_default_kernel_runs_this_interpreter():
    name = runner.resolve_kernel()
    assert runner._same_interpreter(runner._spec_python(name))


def test_kernel_of_another_interpreter_is_refused(tmp_path, monkeypatch):
    _kernelspec(tmp_path, "elsewhere", "/nonexistent/env/bin/python")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with pytest.raises(ValueError, match="/nonexistent/env/bin/python"):
        runner.resolve_kernel("elsewhere")
    with pytest.raises(ValueError, match="not installed"):
        runner.resolve_kernel("no-such-kernel")


def test_shadowed_python3_falls_back_to_transferlab_kernel(tmp_path, monkeypatch):
    # A user-level python3 spec of another environment shadows this one's: skip it.
    _kernelspec(tmp_path, "python3", "/nonexistent/env/bin/python")
    _kernelspec(tmp_path, "transferlab", sys.executable)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert runner.resolve_kernel() == "transferlab"


# --- publish -----------------------------------------------------------------------------


def _results() -> pd.DataFrame:
    return results_schema.frame(
        [
            dict(
                factor="width",
                level="tiny",
                level_index=0,
                task="t",
                group="classification",
                distance_rank=1,
                metric="accuracy",
                score=50.0,
                seed=0,
            )
        ]
    )


def _claims(verdict: str = "reproduced") -> pd.DataFrame:
    return pd.DataFrame([dict(claim="c", factor="width", verdict=verdict, evidence="e")])


def test_publish_writes_the_three_files(tmp_path):
    fig, _ = plt.subplots()
    out = report.publish(str(tmp_path / "nb"), "01_width", _results(), _claims(), fig)
    plt.close(fig)
    assert sorted(p.name for p in out.iterdir()) == ["claims.csv", "headline.png", "results.csv"]
    assert (out / "headline.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(out / "claims.csv")["verdict"].tolist() == ["reproduced"]


def test_publish_writes_further_figures_and_tables_by_name(tmp_path):
    fig, more = plt.subplots()[0], plt.subplots()[0]
    spread = pd.DataFrame({"statistic": ["s"], "reach": [1.5]})
    out = report.publish(str(tmp_path / "nb"), "01_width", _results(), _claims(), fig,
                         figures={"uncertainty": more}, tables={"uncertainty": spread})
    assert sorted(p.name for p in out.iterdir()) == [
        "claims.csv", "headline.png", "results.csv", "uncertainty.csv", "uncertainty.png"]
    assert (out / "uncertainty.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(out / "uncertainty.csv").equals(spread)
    with pytest.raises(ValueError, match=r"named \['claims', 'headline'\]"):
        report.publish("", "01_width", _results(), _claims(), fig, figures={"headline": more},
                       tables={"claims": spread})
    with pytest.raises(ValueError, match="uncertainty=str must be a matplotlib Figure"):
        report.publish("", "01_width", _results(), _claims(), fig,
                       figures={"uncertainty": "u.png"})
    with pytest.raises(ValueError, match=r"tables\['u'\]=dict must be a DataFrame"):
        report.publish("", "01_width", _results(), _claims(), fig, tables={"u": {}})
    plt.close("all")


def test_publish_checks_even_when_writing_nothing(tmp_path):
    fig, _ = plt.subplots()
    assert report.publish("", "01_width", _results(), _claims(), fig) is None
    with pytest.raises(ValueError, match="'confirmed'.*'not reproduced'"):
        report.publish("", "01_width", _results(), _claims("confirmed"), fig)
    with pytest.raises(ValueError, match="lacks columns"):
        report.publish("", "01_width", _results().drop(columns="task"), _claims(), fig)
    with pytest.raises(ValueError, match="lacks columns \\['evidence'\\]"):
        report.publish("", "01_width", _results(), _claims().drop(columns="evidence"), fig)
    with pytest.raises(ValueError, match="matplotlib Figure"):
        report.publish("", "01_width", _results(), _claims(), "headline.png")
    plt.close(fig)


# --- a whole run over the fixtures: two notebooks pass, 02_depth fails ---------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    err = io.StringIO()
    records = runner.run_study(
        "smoke",
        out=out,
        notebooks_dir=NOTEBOOKS,
        params_dir=PARAMS,
        log_output=False,
        progress_bar=False,
        stderr=err,
    )
    return out / "smoke", records, err.getvalue()


def test_failing_notebook_is_named_and_the_others_still_run(study):
    _, records, stderr = study
    assert [(r.name, r.status) for r in records] == [
        ("00_world", "ok"),
        ("01_width", "ok"),
        ("02_depth", "failed"),
    ]
    failed = records[2]
    assert "In [5]" in failed.error and "RuntimeError: fixture failure in depth" in failed.error
    assert "FAILED 02_depth: cell In [5]" in stderr and "RuntimeError" in stderr


def test_every_notebook_gets_executed_copy_and_offline_html(study):
    folder, _, _ = study
    for name in ("00_world", "01_width", "02_depth"):
        page = (folder / name / f"{name}.html").read_text()
        assert (folder / name / f"{name}.ipynb").exists()
        assert not EXTERNAL.search(page), f"{name}.html loads something from the network"
        assert "# Parameters" not in page and "injected-parameters" not in page
        assert "check_params" not in page  # inputs hidden
    world = (folder / "00_world" / "00_world.html").read_text()
    assert "PUBLISHED smoke" in world and "data:image/png;base64" in world
    depth = (folder / "02_depth" / "02_depth.html").read_text()
    assert "before the failure" in depth and "fixture failure in depth" in depth
    assert "never reached" not in depth


def test_yaml_parameters_reach_the_notebooks(study):
    folder, _, _ = study
    world = pd.read_csv(folder / "00_world" / "results.csv", dtype={"level": str})
    assert set(world["level"]) == {"3"}  # n_gallery: 3 in fixtures/params/smoke/00_world.yaml
    width = pd.read_csv(folder / "01_width" / "results.csv")
    assert set(width["level"]) == {"tiny", "small"}


def test_combined_tables(study):
    folder, _, _ = study
    results = pd.read_csv(folder / "results.csv")
    assert list(results.columns) == list(results_schema.COLUMNS)
    assert results.groupby("factor").size().to_dict() == {"width": 4, "world": 2}
    claims = pd.read_csv(folder / "claims.csv")
    # The published columns first (a fixture's own "factor" column is kept after them).
    assert list(claims.columns) == [*report.CLAIM_COLUMNS, "factor", "notebook"]
    assert claims["notebook"].tolist() == ["00_world", "01_width"]
    assert claims["evidence"].tolist() == ["levels=1", "levels=2"]


def test_index_page(study):
    folder, _, _ = study
    page = (folder / "index.html").read_text()
    assert not EXTERNAL.search(page)
    for name, title in [
        ("00_world", "Fixture world card"),
        ("01_width", "Fixture width"),
        ("02_depth", "Fixture depth that fails"),
    ]:
        assert f'<a href="{name}/{name}.html">{title}</a>' in page
    assert page.count("data:image/png;base64,") == 2  # the two headline figures
    assert page.count('class="status ok"') == 2 and page.count('class="status failed"') == 1
    assert "fixture claim of 01_width" in page and ">reproduced<" in page
    assert "fixture failure in depth" in page
    assert re.search(r"00_world &middot; \d+\.\d s", page)
    # The page opens with every verdict, each linking to its notebook's section.
    verdicts = page.index('id="verdicts"')
    assert verdicts < page.index('<section id="00_world">') < page.index("data:image/png")
    table = page[verdicts : page.index('<section id="00_world">')]
    assert "fixture claim of 01_width" in table and '<a href="#01_width">' in table


def test_render_html_keeps_last_progress_state_and_drops_widgets(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    bar = [new_output("stream", name="stderr", text=f"\r{p:3d}%|bar|") for p in (0, 50, 100)]
    widget = new_output(
        "display_data",
        data={report.WIDGET_VIEW: {"model_id": "abc", "version_major": 2}, "text/plain": "HBox()"},
    )
    nb = new_notebook(cells=[new_code_cell("run()", outputs=[*bar, widget])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, tmp_path / "nb.ipynb")
    page = report.render_html(tmp_path / "nb.ipynb", tmp_path / "nb.html", "t").read_text()
    assert "100%|bar|" in page and " 50%|bar|" not in page
    assert "HBox()" not in page and "widget-state" not in page and "run()" not in page


def test_failed_rerun_keeps_the_previous_report(tmp_path):
    folder = tmp_path / "r" / "smoke" / "02_depth"
    folder.mkdir(parents=True)
    _results().to_csv(folder / "results.csv", index=False)
    good = (folder / "results.csv").read_text()
    report.RunRecord("02_depth", "Fixture depth", "ok", 1.0, "2026-12-01T00:00:00").save(folder)
    (records,) = runner.run_study("smoke", only=["depth"], out=tmp_path / "r", notebooks_dir=NOTEBOOKS,
                                  params_dir=PARAMS, log_output=False, progress_bar=False,
                                  stderr=io.StringIO())
    assert records.status == "failed" and "previous report kept" in records.error
    assert (folder / "results.csv").read_text() == good
    assert report.RunRecord.load(folder).status == "ok"
    failed = folder.with_name(".02_depth.failed")
    assert report.RunRecord.load(failed).status == "failed" and (failed / "02_depth.html").exists()
    assert not folder.with_name(".02_depth.new").exists()


def test_results_written_before_a_column_was_added_still_read(tmp_path):
    from transferlab import results as schema

    old = schema.empty().drop(columns=["weights"])
    path = tmp_path / "results.csv"
    old.to_csv(path, index=False)
    assert list(report._read_results(path).columns) == list(schema.validate(schema.empty()).columns)


def test_exported_sets_only_what_is_missing_and_restores_it(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")  # the user's own choice stands
    monkeypatch.delenv("TRANSFERLAB_CHANNELS_LAST", raising=False)
    with runner.exported({"TRANSFERLAB_PRECISION": "bf16", "TRANSFERLAB_CHANNELS_LAST": "1"}):
        assert os.environ["TRANSFERLAB_PRECISION"] == "fp32"
        assert os.environ["TRANSFERLAB_CHANNELS_LAST"] == "1"
    assert "TRANSFERLAB_CHANNELS_LAST" not in os.environ
    assert os.environ["TRANSFERLAB_PRECISION"] == "fp32"


_PLAN_SCRIPT = """
import json, sys
from pathlib import Path
from transferlab import compute, parallel, runner
with runner.exported(compute.child_policy_env()):
    units = runner.study_plan(runner.plan("smoke"))
    env = parallel.worker_env(Path("."))
print(json.dumps(["torch" in sys.modules, len(units.units), env["TRANSFERLAB_PRECISION"]]))
"""


def test_the_runner_plans_without_importing_torch(tmp_path, monkeypatch):
    """The runner holds the scheduler beside the workers for the whole run: this torch build
    would keep ~550 MiB resident in it. A child interpreter names the precision policy."""
    from transferlab import compute

    for var in compute.POLICY_VARS:  # the policy torch detects, in the child and here
        monkeypatch.delenv(var, raising=False)
    env = dict(os.environ)
    env["TRANSFERLAB_CACHE"] = str(tmp_path / "cache")
    done = subprocess.run([sys.executable, "-c", _PLAN_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    torch_imported, n_units, precision = json.loads(done.stdout.splitlines()[-1])
    assert not torch_imported and n_units > 0
    assert precision == compute.policy_env()["TRANSFERLAB_PRECISION"]  # what torch says here


def test_a_bad_precision_is_named_by_the_policy_child(monkeypatch):
    from transferlab import compute

    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp8")
    monkeypatch.delenv("TRANSFERLAB_CHANNELS_LAST", raising=False)
    with pytest.raises(ValueError, match="TRANSFERLAB_PRECISION='fp8'.*bf16"):
        compute.child_policy_env()
