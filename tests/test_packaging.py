"""The set-up files agree with each other: environment.yml lists what pyproject.toml does."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge calls some packages differently (its dask includes distributed: no extras)
CONDA_NAMES = {"torch": "pytorch", "dask[distributed]": "dask"}


def _name_and_spec(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)\s*(.*)$", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_name_and_spec(r) for r in project["dependencies"]
                  + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {}
    for dep in conda:
        name, spec = _name_and_spec(dep)
        listed[name] = spec.replace("=", "==", 1) if re.match(r"^=[^=]", spec) else spec
    assert "-e ." in pip, "environment.yml must install this package with pip"
    assert listed.pop("python") == "==3.11"
    listed.pop("pip")
    expected = {CONDA_NAMES.get(k, k): v for k, v in wanted.items()}
    assert listed == expected


def test_torch_is_pinned_exactly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
