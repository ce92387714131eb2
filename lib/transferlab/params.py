"""The parameters of each notebook: one frozen dataclass per notebook, checked on entry.

A notebook's `parameters` cell holds plain values; the cell after it calls
`P = check_params("01_width", globals())`. papermill injects an unknown parameter with only
a warning, so the check here is what turns a typo (`-p widht ...`) into an error.
Parameter files `params/<profile>/<notebook>.yaml` are validated by the same code.

List parameters are stored as tuples, so the returned instance is truly immutable.
Value-level checks that need the world (is this task name known?) belong to the study code;
fields may carry simple `choices` / `valid` checks in their metadata, applied here.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PROFILES = ("smoke", "quick", "full", "real")
WIDTHS = ("tiny", "small", "medium", "large")
SOURCES = ("objects", "scenes", "hybrid", "concat")
POOLINGS = (1, 2, 3)

# Names IPython puts in a notebook's namespace that are not parameters.
IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit"})


def default_params_dir() -> Path:
    """`params/` of the source checkout."""
    return Path(__file__).resolve().parents[2] / "params"


def _choices(default: Any, choices: tuple, nonempty: bool = False) -> Any:
    """A field whose value (or each element of a list value) must be one of `choices`.

    nonempty: a list that may not be empty (the levels of a factor).
    """
    return field(default=default, metadata={"choices": choices, "nonempty": nonempty})


def _valid(default: Any, check: Callable[[Any], bool], text: str, nonempty: bool = False) -> Any:
    """A field whose value (or each element of a list value) must pass `check` (`text` says how)."""
    return field(default=default, metadata={"valid": (check, text), "nonempty": nonempty})


@dataclass(frozen=True)
class CommonParams:
    """Parameters every notebook accepts."""

    profile: str = _choices("quick", PROFILES)
    tasks: tuple[str, ...] = ()  # empty: the profile's default tasks
    seeds: tuple[int, ...] = _valid((), lambda v: v >= 0, ">= 0")  # empty: the profile's seeds
    world_seed: int = _valid(0, lambda v: v >= 0, ">= 0")  # which embedded world is drawn
    output_dir: str = ""  # empty: write nothing
    data_root: str = ""  # real profile: dataset root (empty: default location)
    weights: str = ""  # real profile: network weights (empty: default location)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class WorldParams(CommonParams):
    n_gallery: int = _valid(8, lambda v: v >= 0, ">= 0")


@dataclass(frozen=True)
class WidthParams(CommonParams):
    widths: tuple[str, ...] = _choices(WIDTHS, WIDTHS, nonempty=True)


@dataclass(frozen=True)
class DepthParams(CommonParams):
    depths: tuple[int, ...] = _valid((5, 7, 9, 11, 13), lambda v: v >= 1, ">= 1", nonempty=True)


@dataclass(frozen=True)
class EarlyStoppingParams(CommonParams):
    layers: tuple[str, ...] = field(default=("fc6", "fc7"), metadata={"nonempty": True})


@dataclass(frozen=True)
class SourceTaskParams(CommonParams):
    sources: tuple[str, ...] = _choices(SOURCES, SOURCES, nonempty=True)


@dataclass(frozen=True)
class LayerParams(CommonParams):
    layers: tuple[str, ...] = ()  # empty: every layer
    pooling: int = _choices(1, POOLINGS)


@dataclass(frozen=True)
class DimReductionParams(CommonParams):
    dims: tuple[int, ...] = _valid((), lambda v: v >= 1, ">= 1")  # empty: powers of 2 up to full


@dataclass(frozen=True)
class FineTuningParams(CommonParams):
    layer: str = "fc7"


@dataclass(frozen=True)
class DataSizeParams(CommonParams):
    fractions: tuple[float, ...] = _valid(
        (0.125, 0.25, 0.5, 1.0), lambda v: 0 < v <= 1, "in (0, 1]", nonempty=True
    )


@dataclass(frozen=True)
class OptimizedParams(CommonParams):
    pass


SCHEMAS: dict[str, type[CommonParams]] = {
    "00_world": WorldParams,
    "01_width": WidthParams,
    "02_depth": DepthParams,
    "03_early_stopping": EarlyStoppingParams,
    "04_source_task": SourceTaskParams,
    "05_layer": LayerParams,
    "06_dim_reduction": DimReductionParams,
    "07_fine_tuning": FineTuningParams,
    "08_data_size": DataSizeParams,
    "09_optimized": OptimizedParams,
}


def schema(notebook: str) -> type[CommonParams]:
    """The parameter dataclass of `notebook` (e.g. "01_width")."""
    if notebook not in SCHEMAS:
        raise ValueError(f"notebook={notebook!r} is not one of {list(SCHEMAS)}")
    return SCHEMAS[notebook]


def _type_name(tp: Any) -> str:
    """The type as a notebook spells it: tuple[str, ...] is a list[str] there."""
    if typing.get_origin(tp) is tuple:
        return f"list[{typing.get_args(tp)[0].__name__}]"
    return tp.__name__


def signature(notebook: str) -> str:
    """`name: type` of every parameter of `notebook`, for error messages."""
    hints = typing.get_type_hints(schema(notebook))
    return ", ".join(f"{f.name}: {_type_name(hints[f.name])}" for f in fields(schema(notebook)))


def _scalar(value: Any, tp: type) -> Any:
    """`value` as `tp`, or raise TypeError. A bool is no int here; an int is a fine float."""
    if isinstance(value, bool) and tp is not bool:
        raise TypeError(f"{value!r} is a bool, expected {tp.__name__}")
    if tp is float and isinstance(value, int):
        return float(value)
    if isinstance(value, tp):
        return value
    raise TypeError(f"{value!r} is of type {type(value).__name__}, expected {tp.__name__}")


def _coerce(value: Any, tp: Any) -> Any:
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"it is of type {type(value).__name__}, expected {_type_name(tp)}")
        return tuple(_scalar(v, typing.get_args(tp)[0]) for v in value)
    return _scalar(value, tp)


def _check_value(notebook: str, f: Any, value: Any, shown: Any) -> None:
    items = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple):
        if not value and f.metadata.get("nonempty"):
            raise ValueError(
                f"notebook {notebook}: parameter {f.name}=[] is empty; give at least one level "
                f"(default: {list(f.default)})"
            )
        repeated = sorted({v for v in value if value.count(v) > 1}, key=str)
        if repeated:
            raise ValueError(
                f"notebook {notebook}: parameter {f.name}={shown!r} repeats {repeated}; "
                "give each value once"
            )
    choices = f.metadata.get("choices")
    if choices is not None:
        bad = [v for v in items if v not in choices]
        if bad:
            raise ValueError(
                f"notebook {notebook}: parameter {f.name}={shown!r} has invalid value(s) {bad}; "
                f"valid choices: {list(choices)}"
            )
    if "valid" in f.metadata:
        check, text = f.metadata["valid"]
        bad = [v for v in items if not check(v)]
        if bad:
            raise ValueError(
                f"notebook {notebook}: parameter {f.name}={shown!r} has invalid value(s) {bad}; "
                f"each must be {text}"
            )


def validate(notebook: str, values: Mapping[str, Any]) -> CommonParams:
    """The parameters of `notebook` from `values`; missing ones take their defaults.

    Raises ValueError on an unknown name, a wrongly typed value or an invalid choice,
    naming the parameter, its value, the notebook and the valid parameters.
    """
    cls = schema(notebook)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        shown = ", ".join(f"{k}={values[k]!r}" for k in unknown)
        raise ValueError(
            f"notebook {notebook}: unknown parameter(s) {shown}; "
            f"valid parameters: {signature(notebook)}"
        )
    kwargs = {}
    for name, value in values.items():
        try:
            kwargs[name] = _coerce(value, hints[name])
        except TypeError as err:
            raise ValueError(
                f"notebook {notebook}: parameter {name}={value!r} has the wrong type ({err}); "
                f"valid parameters: {signature(notebook)}"
            ) from None
        _check_value(notebook, known[name], kwargs[name], value)
    return cls(**kwargs)


def _is_parameter(name: str, value: Any) -> bool:
    """Whether a namespace entry is a candidate parameter (IPython's own names are not)."""
    if name.startswith("_") or name in IPYTHON_NAMES:
        return False
    if isinstance(value, types.ModuleType | CommonParams) or callable(value):
        return False
    return True


# The first line of every notebook's parameters cell (written by tools/make_notebooks.py).
PARAMETERS_MARKER = "# papermill parameters"


def _assigned_names(source: str) -> list[str]:
    """The names a cell assigns at top level (`a = 1`, `a: int = 1`, `a = b = 1`)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _parameter_names(history: Sequence[str]) -> list[str] | None:
    """Names assigned by the last parameters cell run and the cells after it (papermill's).

    `history` is IPython's `In`, whose last entry is the cell running now (the one calling
    check_params), so it is not read; None when no parameters cell is in the history.
    """
    earlier = history[:-1]
    starts = [i for i, src in enumerate(earlier) if src.lstrip().startswith(PARAMETERS_MARKER)]
    if not starts:
        return None
    return [name for src in earlier[starts[-1] :] for name in _assigned_names(src)]


def check_params(notebook: str, namespace: Mapping[str, Any]) -> CommonParams:
    """The checked parameters of `notebook` from its namespace (pass `globals()`).

    In IPython the parameters are the names the last run of the parameters cell (and
    papermill's injected cell after it) assigned, so a rerun in the same kernel does not
    see the previous run's variables. Elsewhere every non-IPython, non-module,
    non-callable name in the namespace must be a parameter.
    """
    history = namespace.get("In")
    names = _parameter_names(history) if isinstance(history, list) else None
    if names is None:
        values = {k: v for k, v in namespace.items() if _is_parameter(k, v)}
    else:
        values = {k: namespace[k] for k in names if k in namespace}
    return validate(notebook, values)


def profiles(params_dir: Path | None = None) -> list[str]:
    """The profiles that have a folder in `params_dir`."""
    root = Path(params_dir) if params_dir is not None else default_params_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _read_yaml(path: Path) -> Any:
    """The YAML document in `path`; a syntax error names the file and its line."""
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(err, "problem", None) or str(err)
        raise ValueError(f"{path}: {where}: not valid YAML ({problem})") from None


def load_params(profile: str, notebook: str, params_dir: Path | None = None) -> dict[str, Any]:
    """The validated parameters of `params/<profile>/<notebook>.yaml`, as plain values.

    A profile folder without a file for `notebook` gives {} (the notebook's defaults).
    """
    root = Path(params_dir) if params_dir is not None else default_params_dir()
    known = profiles(root)
    if profile not in known:
        raise ValueError(f"profile={profile!r} is not one of {known} (the folders in {root})")
    path = root / profile / f"{notebook}.yaml"
    schema(notebook)
    if not path.exists():
        return {}
    values = _read_yaml(path)
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of parameter names to values")
    if values.get("profile", profile) != profile:
        raise ValueError(f"{path} sets profile={values['profile']!r} inside the {profile!r} folder")
    try:
        validate(notebook, values)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return values
