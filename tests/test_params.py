"""Notebook parameters: the check in the notebook, the YAML files, the papermill path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from transferlab import params
from transferlab.params import check_params, load_params

FIXTURES = Path(__file__).parent / "fixtures"


def test_check_params_returns_frozen_dataclass_with_defaults_and_tuples():
    p = check_params("01_width", {"profile": "smoke", "widths": ["tiny", "large"], "seeds": [3]})
    assert isinstance(p, params.WidthParams)
    assert p.widths == ("tiny", "large") and p.seeds == (3,) and p.tasks == ()
    assert p.output_dir == "" and p.data_root == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.profile = "full"


def test_check_params_ignores_ipython_names_modules_callables_and_previous_result():
    previous = check_params("05_layer", {})
    namespace = {
        "In": ["", "x = 1"],
        "Out": {},
        "get_ipython": lambda: None,
        "exit": object,
        "quit": object,
        "_": 3,
        "__name__": "__main__",
        "np": dataclasses,  # any module
        "check_params": check_params,
        "P": previous,
        "pooling": 2,
    }
    assert check_params("05_layer", namespace).pooling == 2


def test_unknown_parameter_names_parameter_value_notebook_and_valid_names():
    with pytest.raises(ValueError) as err:
        check_params("02_depth", {"detphs": [5, 7]})
    msg = str(err.value)
    assert "detphs=[5, 7]" in msg and "02_depth" in msg
    assert "depths: list[int]" in msg and "profile: str" in msg


@pytest.mark.parametrize(
    ("notebook", "name", "value", "expected"),
    [
        ("01_width", "widths", "tiny", "expected list[str]"),
        ("02_depth", "depths", [5, "7"], "'7' is of type str, expected int"),
        ("01_width", "seeds", [1, True], "True is a bool, expected int"),
        ("00_world", "n_gallery", 2.5, "expected int"),
        ("07_fine_tuning", "layer", 7, "expected str"),
    ],
)
def test_ill_typed_parameter(notebook, name, value, expected):
    with pytest.raises(ValueError) as err:
        check_params(notebook, {name: value})
    msg = str(err.value)
    assert f"{name}={value!r}" in msg and notebook in msg and expected in msg


def test_int_is_accepted_as_float():
    assert check_params("08_data_size", {"fractions": [1, 0.5]}).fractions == (1.0, 0.5)


@pytest.mark.parametrize(
    ("notebook", "values", "expected"),
    [
        ("01_width", {"widths": ["tiny", "huge"]}, "['huge']"),
        ("01_width", {"profile": "medium"}, "valid choices: ['smoke', 'quick', 'full', 'real']"),
        ("05_layer", {"pooling": 4}, "valid choices: [1, 2, 3]"),
        ("08_data_size", {"fractions": [0.5, 1.5]}, "in (0, 1]"),
        ("06_dim_reduction", {"dims": [0]}, ">= 1"),
    ],
)
def test_invalid_values_are_rejected_with_the_valid_ones(notebook, values, expected):
    with pytest.raises(ValueError, match="invalid value") as err:
        check_params(notebook, values)
    assert expected in str(err.value)


def test_unknown_notebook_lists_the_notebooks():
    with pytest.raises(ValueError, match="01_width"):
        check_params("01_widht", {})


def test_every_notebook_has_a_schema_with_the_common_parameters():
    common = {f.name for f in dataclasses.fields(params.CommonParams)}
    assert common == {"profile", "tasks", "seeds", "world_seed", "output_dir", "data_root", "weights"}
    for name in params.SCHEMAS:
        assert common <= {f.name for f in dataclasses.fields(params.schema(name))}
        params.schema(name)()  # the defaults pass their own checks


def _params_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_load_params_reads_and_validates_yaml(tmp_path):
    root = _params_dir(tmp_path, {"smoke/01_width.yaml": "widths: [tiny]\nseeds: [0, 1]\n"})
    assert load_params("smoke", "01_width", root) == {"widths": ["tiny"], "seeds": [0, 1]}
    assert load_params("smoke", "02_depth", root) == {}  # no file: the notebook's defaults


def test_load_params_unknown_profile_lists_folders(tmp_path):
    root = _params_dir(tmp_path, {"smoke/a.yaml": "", "quick/a.yaml": ""})
    with pytest.raises(ValueError, match=r"profile='fast' is not one of \['quick', 'smoke'\]"):
        load_params("fast", "01_width", root)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("widhts: [tiny]\n", "unknown parameter"),
        ("widths: tiny\n", "expected list[str]"),
        ("profile: quick\n", "sets profile='quick' inside the 'smoke' folder"),
        ("- tiny\n", "must hold a mapping"),
    ],
)
def test_load_params_bad_file_names_the_file(tmp_path, text, expected):
    root = _params_dir(tmp_path, {"smoke/01_width.yaml": text})
    with pytest.raises(ValueError) as err:
        load_params("smoke", "01_width", root)
    assert "01_width.yaml" in str(err.value) and expected in str(err.value)


def test_the_projects_parameter_files_are_valid():
    files = sorted(params.default_params_dir().glob("*/*.yaml"))
    if not files:
        pytest.skip("no parameter files in params/ yet")
    for path in files:
        load_params(path.parent.name, path.stem)


def test_unknown_parameter_through_papermill_reports_the_library_message(tmp_path):
    papermill = pytest.importorskip("papermill")
    from papermill.exceptions import PapermillExecutionError
    from transferlab.runner import resolve_kernel

    with pytest.raises(PapermillExecutionError) as err:
        papermill.execute_notebook(
            str(FIXTURES / "notebooks" / "00_world.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "smoke", "n_galery": 3},
            kernel_name=resolve_kernel(),
            language="python",
            progress_bar=False,
            cwd=str(tmp_path),
        )
    assert err.value.ename == "ValueError"
    assert "notebook 00_world: unknown parameter(s) n_galery=3" in err.value.evalue
    assert "n_gallery: int" in err.value.evalue


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    root = _params_dir(tmp_path, {"smoke/01_width.yaml": "seeds: [0]\nwidths: [tiny, small\n"})
    with pytest.raises(ValueError) as err:
        load_params("smoke", "01_width", root)
    msg = str(err.value)
    assert "01_width.yaml" in msg and "line 3" in msg and "not valid YAML" in msg


@pytest.mark.parametrize(
    ("notebook", "values", "expected"),
    [
        ("01_width", {"seeds": [-1]}, "parameter seeds=[-1] has invalid value(s) [-1]; each must be >= 0"),
        ("01_width", {"widths": []}, "parameter widths=[] is empty"),
        ("02_depth", {"depths": []}, "parameter depths=[] is empty"),
        ("03_early_stopping", {"layers": []}, "parameter layers=[] is empty"),
        ("08_data_size", {"fractions": []}, "parameter fractions=[] is empty"),
        ("01_width", {"widths": ["tiny", "tiny"]}, "repeats ['tiny']; give each value once"),
        ("05_layer", {"tasks": ["rooms", "birds", "rooms"]}, "repeats ['rooms']"),
    ],
)
def test_empty_negative_and_repeated_levels_are_refused(notebook, values, expected):
    with pytest.raises(ValueError) as err:
        params.validate(notebook, values)
    assert expected in str(err.value) and f"notebook {notebook}" in str(err.value)


def _ipython_namespace(history: list[str]) -> dict:
    """What a notebook's globals() holds after running `history` (IPython's In included)."""
    namespace: dict = {"In": ["", *history], "check_params": check_params}
    for source in history:
        exec(source, namespace)
    namespace.pop("__builtins__")
    return namespace


def test_rerun_in_the_same_kernel_reads_only_the_parameters_cell():
    cell = '# papermill parameters: plain values only\nprofile = "smoke"\nwidths = ["tiny"]\n'
    check = 'P = check_params("01_width", globals())'
    first = _ipython_namespace([cell, check, "table = [1, 2]\nheadline = object()"])
    # The user edits the parameters cell and runs all cells again in the same kernel.
    history = first["In"][1:] + [cell.replace('["tiny"]', '["small", "large"]'), check]
    namespace = {**first, **_ipython_namespace(history[-2:]), "In": ["", *history]}
    assert check_params("01_width", namespace).widths == ("small", "large")


def test_parameters_injected_after_the_parameters_cell_are_checked():
    cell = '# papermill parameters: plain values only\nprofile = "smoke"\n'
    injected = '# Parameters\nwidht = ["tiny"]\n'
    check = 'P = check_params("01_width", globals())'
    namespace = {**_ipython_namespace([cell, injected]), "In": ["", cell, injected, check]}
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) widht=\['tiny'\]"):
        check_params("01_width", namespace)


def test_world_seed_draws_another_world_of_the_same_profile():
    from transferlab import factors

    study = factors.study_for(check_params("05_layer", {"profile": "smoke", "world_seed": 3}))
    assert study.world.seed == 3 and study.world.size == 16
    assert factors.study_for(check_params("05_layer", {"profile": "smoke"})).world.seed == 0
    with pytest.raises(ValueError, match="world_seed=-1"):
        check_params("05_layer", {"world_seed": -1})
