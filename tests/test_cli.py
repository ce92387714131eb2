"""The command line: exit statuses, --only, and the tasks listing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from transferlab.__main__ import main

FIXTURES = Path(__file__).parent / "fixtures"
# --workers 0: the fixture notebooks compute nothing, so no plan to compute on Dask first.
ARGS = ["--notebooks", str(FIXTURES / "notebooks"), "--params", str(FIXTURES / "params"), "--quiet",
        "--workers", "0"]


def test_run_only_passing_then_failing_notebook(tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["run", "--profile", "smoke", "--only", "width", "--out", str(out), *ARGS]) == 0
    assert main(["run", "--profile", "smoke", "--only", "02_depth", "--out", str(out), *ARGS]) == 1
    assert "FAILED 02_depth" in capsys.readouterr().err
    # The index keeps the notebook of the earlier run next to the one just run.
    page = (out / "smoke" / "index.html").read_text()
    assert "Fixture width" in page and "Fixture depth that fails" in page
    assert "Fixture world card" not in page  # never run into this folder


def test_bad_request_exits_2_before_running(tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["run", "--profile", "smoke", "--only", "nope", "--out", str(out), *ARGS]) == 2
    assert "valid names: ['00_world', '01_width', '02_depth']" in capsys.readouterr().err
    assert (
        main(["run", "--profile", "smoke", "--kernel", "no-such-kernel", "--out", str(out), *ARGS])
        == 2
    )
    assert "not installed" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_profile_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as err:
        main(["run", "--profile", "fast"])
    assert err.value.code == 2 and "invalid choice: 'fast'" in capsys.readouterr().err


def test_module_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "transferlab", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--profile" in done.stdout and "--only" in done.stdout


def test_tasks_json_lists_every_task(capsys):
    if importlib.util.find_spec("transferlab.world") is None:
        pytest.skip("transferlab.world does not exist yet")
    from transferlab.world import TASKS

    assert main(["tasks", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["name"] for r in rows] == list(TASKS)
    assert rows == [spec.as_dict() for spec in TASKS.values()]
    assert main(["tasks"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == len(TASKS) + 1 and table[0].split()[0] == "name"


def test_params_file_that_does_not_parse_exits_2_naming_file_and_line(tmp_path, capsys):
    params = tmp_path / "params"
    (params / "smoke").mkdir(parents=True)
    (params / "smoke" / "01_width.yaml").write_text("widths: [tiny\n")
    out = tmp_path / "reports"
    args = ["--notebooks", str(FIXTURES / "notebooks"), "--params", str(params), "--quiet"]
    assert main(["run", "--profile", "smoke", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert "01_width.yaml: line 2" in err and "not valid YAML" in err and "Traceback" not in err
    assert not out.exists()


def test_unwritable_cache_exits_2_naming_the_path_and_the_variable(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(blocker / "cache"))
    out = tmp_path / "reports"
    assert main(["run", "--profile", "smoke", "--out", str(out), *ARGS]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the cache at {blocker / 'cache'}" in err and "TRANSFERLAB_CACHE" in err
    assert not out.exists()


def test_relative_data_root_and_weights_file_become_absolute(tmp_path, monkeypatch):
    from transferlab.__main__ import _overrides, _parser

    (tmp_path / "data").mkdir()
    (tmp_path / "net.pth").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    args = _parser().parse_args(["run", "--profile", "real", "--data-root", "data",
                                 "--weights", "net.pth"])
    got = _overrides(args)
    assert got["data_root"] == str(tmp_path / "data")
    assert got["weights"] == str(tmp_path / "net.pth")
    named = _parser().parse_args(["run", "--profile", "real", "--weights", "imagenet"])
    assert _overrides(named)["weights"] == "imagenet"  # a name, not a file: left as given
