"""Comparing finished runs' claims: the check that a verdict is not luck."""

from __future__ import annotations

import pandas as pd
import pytest
from transferlab import report
from transferlab.__main__ import main
from transferlab.report import claim_statistic, compare_claims, markdown_table, read_claims


def claims(*rows: tuple[str, str, str, float, float, float]) -> pd.DataFrame:
    cols = ["paper_claim", "claim", "verdict", "statistic", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=cols).assign(evidence="...")


SEED_0 = claims(("", "no task is solvable from raw pixels", "reproduced", 0.0, None, None),
                ("width", "wider helps", "inconclusive", -0.38, -4.17, 3.43),
                ("source_task", "scenes for scenes", "reproduced", 2.52, 0.10, 4.89))
SEED_1 = claims(("width", "wider helps", "inconclusive", -2.18, -7.65, 3.05),
                ("source_task", "scenes for scenes", "inconclusive", 0.34, -1.94, 2.10))


def test_compare_claims_puts_each_claim_on_one_row_and_says_whether_verdicts_agree():
    table = compare_claims({"seed 0": SEED_0, "seed 1": SEED_1})
    assert list(table.columns) == ["claim", "seed 0", "seed 1", "same verdict"]
    rows = table.set_index("claim")
    assert rows.loc["width", "seed 0"] == "inconclusive -0.38 [-4.17, +3.43]"
    assert rows.loc["width", "same verdict"] == "yes"
    assert rows.loc["source_task", "seed 1"] == "inconclusive +0.34 [-1.94, +2.10]"
    assert rows.loc["source_task", "same verdict"] == "no"
    # A claim only one run has: its cell elsewhere is empty and nothing is compared.
    world = "(world check) no task is solvable from raw pixels"
    assert rows.loc[world, "seed 1"] == "" and rows.loc[world, "same verdict"] == ""
    # A world check's statistic counts failing tasks: a count, not a signed effect.
    assert rows.loc[world, "seed 0"] == "reproduced 0"


def test_a_claims_statistic_is_signed_and_a_world_checks_is_a_count():
    rows = claims(("", "a world check", "reproduced", 2.0, None, None),
                  ("layer", "a claim whose bootstrap gave no interval", "inconclusive", 0.233, None,
                   None),
                  ("depth", "a claim", "reproduced", 2.68, 0.16, 5.42),
                  ("", "a world check with an interval", "inconclusive", 0.56, 0.21, 0.82))
    assert [claim_statistic(r) for r in rows.itertuples()] == ["2", "+0.23",
                                                                "+2.68 [+0.16, +5.42]",
                                                                "+0.56 [+0.21, +0.82]"]
    # Read back from a claims.csv without NaN parsing, a missing bound is "": still a count.
    text = rows.astype(object).where(rows.notna(), "")
    assert [claim_statistic(r) for r in text.itertuples()][0] == "2"


def test_markdown_table_escapes_pipes():
    text = markdown_table(pd.DataFrame({"a": ["x | y"], "b": [1]}))
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x \\| y | 1 |"]


def test_read_claims_keeps_a_world_check_unnamed_and_refuses_what_it_cannot_match(tmp_path):
    SEED_0.to_csv(tmp_path / "claims.csv", index=False)
    table = read_claims(tmp_path)  # the profile folder: its claims.csv
    # Read back, the world check's empty paper_claim is "" (NaN would name it as a claim).
    assert table["paper_claim"].tolist() == ["", "width", "source_task"]
    assert compare_claims({"a": table, "b": table})["claim"].iloc[0].startswith("(world check)")
    with pytest.raises(FileNotFoundError, match="no claims table at .*nowhere"):
        read_claims(tmp_path / "nowhere")
    old = tmp_path / "old.csv"  # a run from before claims carried paper_claim
    SEED_0.drop(columns="paper_claim").to_csv(old, index=False)
    with pytest.raises(ValueError, match="no paper_claim column"):
        read_claims(old)


def test_compare_claims_refuses_a_run_that_has_one_claim_twice():
    with pytest.raises(ValueError, match="run 'b' has the claim 'width' twice"):
        compare_claims({"a": SEED_0, "b": pd.concat([SEED_1, SEED_1])})


def test_compare_command_labels_runs_and_fails_cleanly_on_a_missing_one(tmp_path, capsys):
    for name, table in (("a", SEED_0), ("b", SEED_1)):
        (tmp_path / name).mkdir()
        table.to_csv(tmp_path / name / "claims.csv", index=False)
    assert main(["compare", f"seed 0={tmp_path / 'a'}", f"seed 1={tmp_path / 'b'}",
                 "--markdown"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| claim | seed 0 | seed 1 | same verdict |"
    assert "| source_task | reproduced +2.52 [+0.10, +4.89] | inconclusive +0.34 [-1.94, +2.10]" \
        " | no |" in out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert plain[0].split()[:2] == ["claim", str(tmp_path / "a")]
    assert plain[-1] == "1 of 2 claims in more than one run have one verdict; differing: " \
        "source_task"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
    assert f"error: {tmp_path / 'missing'}: no claims table at" in capsys.readouterr().err
    assert main(["compare", f"x={tmp_path / 'a'}", f"x={tmp_path / 'b'}"]) == 2
    assert "the label 'x' names another run" in capsys.readouterr().err
    assert main(["compare", f"claim={tmp_path / 'a'}", str(tmp_path / "b")]) == 2
    assert "the label 'claim' names a column of the table" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "a")]) == 2
    assert "at least two runs" in capsys.readouterr().err
    # A folder whose name holds "=" is a path, not a label.
    odd = tmp_path / "seed=1"
    odd.mkdir()
    SEED_1.to_csv(odd / "claims.csv", index=False)
    assert main(["compare", str(tmp_path / "a"), str(odd), "--markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"| claim | {tmp_path / 'a'} | {odd} | same verdict |"


def test_the_index_links_a_notebooks_page_only_where_there_is_one(tmp_path):
    for name in ("01_width", "02_depth"):
        (tmp_path / name).mkdir()
        report.RunRecord(name, f"Title {name}", "ok", 1.0, "2026-12-07T00:00:00").save(
            tmp_path / name)
    (tmp_path / "01_width" / "01_width.html").write_text("<html></html>")
    records = report.collect(tmp_path, ["01_width", "02_depth"])
    page = report.write_index(tmp_path, "quick", records, "quick profile, worlds 0, 1 pooled")
    html = page.read_text()
    assert '<a href="01_width/01_width.html">Title 01_width</a>' in html
    assert "02_depth.html" not in html and "<h2>Title 02_depth</h2>" in html
    assert "<h1>transferlab: quick profile, worlds 0, 1 pooled</h1>" in html


def test_the_index_shows_the_headline_first_then_further_figures_captioned(tmp_path):
    folder = tmp_path / "05_layer"
    folder.mkdir()
    report.RunRecord("05_layer", "Layer", "ok", 1.0, "2026-12-07T00:00:00").save(folder)
    for name in ("uncertainty", "headline", "zzz"):
        (folder / f"{name}.png").write_bytes(b"\x89PNG" + name.encode())
    html = report.write_index(tmp_path, "quick", report.collect(tmp_path, ["05_layer"]),
                              "quick").read_text()
    alts = [f'alt="{n} figure of 05_layer"' for n in ("headline", "uncertainty", "zzz")]
    assert all(a in html for a in alts)
    assert html.index(alts[0]) < html.index(alts[1]) < html.index(alts[2])
    assert html.count("<figcaption>") == 1  # a name CAPTIONS does not know goes uncaptioned
    assert "Where the intervals come from" in html
