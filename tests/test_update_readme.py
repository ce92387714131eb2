"""tools/update_readme.py names the parameters a run was given apart from its profile's own."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import update_readme  # noqa: E402


def test_parameter_changes_name_what_the_run_set_apart_from_the_profile(tmp_path):
    ran = ["01_width", "05_layer"]
    given = tmp_path / "params" / "quick"
    given.mkdir(parents=True)
    (given / "01_width.yaml").write_text("widths: [medium, large]\n")

    changes = update_readme.parameter_changes("quick", ran, tmp_path / "params")

    # 05_layer has no file in either folder; 01_width's widths differ from params/quick's.
    assert changes == ["01_width widths=[medium, large]"]
    assert update_readme.parameter_changes("quick", ran, ROOT / "params") == []
