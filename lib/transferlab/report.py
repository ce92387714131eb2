"""What a run leaves behind: each notebook's tables and figure, its HTML, and the index page.

`publish` is called at the end of every notebook (it is imported inside the kernel, so it
stays light). The rest is used by the runner after each notebook: `render_html` turns an
executed notebook into a self-contained page (inputs hidden, no CDN scripts), and
`write_index` / `write_tables` summarise every notebook of a profile folder.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import results as results_schema
from .claims import COLUMNS as CLAIM_COLUMNS
from .claims import VERDICTS

STATUS_FILE = "status.json"
WORLD_CHECK = "(world check)"  # what names a check of the world's own, which has no paper claim
COMPARE_COLUMNS = ("claim", "same verdict")  # compare_claims' columns around one per run
# What the index says under a figure `publish` wrote beside the headline, by its name.
CAPTIONS = {
    "uncertainty": "Where the intervals come from (transferlab.claims.uncertainty, also in "
    "uncertainty.csv): per statistic, how far its 95 % interval reaches below the estimate "
    "with only the test images, only the tasks within each group, or only the training "
    "seeds resampled, beside the interval's own reach; the dashed line is the estimate's "
    "distance above its claimed bound. Where worlds are pooled, each world brings its own "
    "tasks, so the projected tasks per group read as times the worlds pooled.",
}

# The lab template loads require.js, MathJax, Mermaid and the widget renderer from CDNs.
# None of them is needed to read a report, and a report must open offline: drop them.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
# Cells that only set parameters: invisible with inputs hidden, so drop their empty frames.
HIDDEN_TAGS = ("parameters", "injected-parameters")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def validate_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table in CLAIM_COLUMNS order (as transferlab.claims writes it).

    claim, verdict and evidence are required and verdicts must be known; a table without
    paper_claim (a check of the world's own) or without a statistic gets "" / NaN there.
    """
    missing = [c for c in ("claim", "verdict", "evidence") if c not in claims.columns]
    if missing:
        raise ValueError(f"claims table lacks columns {missing}; it needs {list(CLAIM_COLUMNS)}")
    bad = sorted(set(claims["verdict"]) - set(VERDICTS))
    if bad:
        raise ValueError(f"claims verdict(s) {bad} are not one of {list(VERDICTS)}")
    defaults = {"paper_claim": "", "statistic": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    claims = claims.assign(**{c: v for c, v in defaults.items() if c not in claims.columns})
    extra = [c for c in claims.columns if c not in CLAIM_COLUMNS]
    return claims[list(CLAIM_COLUMNS) + extra].reset_index(drop=True)


def publish(
    output_dir: str,
    name: str,
    results: pd.DataFrame,
    claims: pd.DataFrame,
    headline: Any,
    figures: Mapping[str, Any] | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> Path | None:
    """Check a notebook's outputs; write results.csv, claims.csv, headline.png to `output_dir`.

    `results` follows transferlab.results; `claims` has columns claim, factor, verdict,
    evidence; `headline` is a matplotlib Figure. `figures` and `tables` are further outputs
    by name, written as <name>.png and <name>.csv; the index shows the figures after the
    headline (captioned where `CAPTIONS` knows the name). With output_dir == "" the outputs
    are still checked (so an interactive run catches what a batch run would) but nothing is
    written, and None is returned.
    """
    from matplotlib.figure import Figure

    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be the notebook's name, e.g. '01_width'")
    table = results_schema.validate(results)
    claims = validate_claims(claims)
    figures, tables = dict(figures or {}), dict(tables or {})
    taken = sorted(figures.keys() & {"headline"} | tables.keys() & {"results", "claims"})
    if taken:
        raise ValueError(f"figures/tables named {taken}: those names are publish's own files")
    figures = {"headline": headline, **figures}
    for key, fig in figures.items():
        if not isinstance(fig, Figure):
            raise ValueError(f"{key}={type(fig).__name__} must be a matplotlib Figure")
    for key, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"tables[{key!r}]={type(frame).__name__} must be a DataFrame")
    if output_dir == "":
        return None
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_schema.without_replicates(table).to_csv(out / "results.csv", index=False)
    claims.to_csv(out / "claims.csv", index=False)
    for key, frame in tables.items():
        frame.to_csv(out / f"{key}.csv", index=False)
    for key, fig in figures.items():
        fig.savefig(out / f"{key}.png", dpi=110, bbox_inches="tight")
    return out


def _drop_widgets(nb: Any) -> None:
    """Remove widget views and their state: without a live kernel they show nothing."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)


def render_html(notebook: Path, html_path: Path, title: str) -> Path:
    """Render an executed notebook to one self-contained HTML page.

    Inputs and parameter cells are hidden, figures are inline PNGs, progress bars keep
    only their last state, widget outputs are dropped and nothing loads from a CDN (so
    LaTeX in markdown shows as source: MathJax would need the network).
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor, TagRemovePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    _drop_widgets(nb)
    quiet = logging.getLogger("transferlab.report.nbconvert")
    quiet.setLevel(logging.ERROR)  # its only warning here: PNG outputs carry no alt text
    exporter = HTMLExporter(
        extra_loaders=[DictLoader({"transferlab_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="transferlab_offline.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        log=quiet,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags=set(HIDDEN_TAGS), enabled=True), enabled=True
    )
    # Merges a progress bar's \r-separated updates into its final line.
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    html_path.write_text(body, encoding="utf-8")
    return html_path


def notebook_title(notebook: Path) -> str:
    """The first markdown heading of a notebook, else its file name."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return notebook.stem


@dataclass(frozen=True)
class RunRecord:
    """How one notebook's run went; saved as status.json next to its outputs."""

    name: str
    title: str
    status: str  # "ok" | "failed"
    seconds: float
    finished: str  # ISO time
    error: str = ""  # one line: the failing cell and the exception

    def save(self, folder: Path) -> None:
        (folder / STATUS_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder: Path) -> RunRecord | None:
        path = folder / STATUS_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


def collect(profile_dir: Path, names: Sequence[str]) -> list[RunRecord]:
    """The records of those `names` that have been run into `profile_dir`, in order."""
    records = (RunRecord.load(profile_dir / n) for n in names)
    return [r for r in records if r is not None]


def _read_results(path: Path) -> pd.DataFrame:
    # Text columns stay text ("3" is a level, not a number) and empty text stays "".
    text = {c: str for c, t in results_schema.COLUMNS.items() if t == "object"}
    table = pd.read_csv(path, dtype=text)
    present = [c for c in text if c in table]  # a table from before a column was added
    table[present] = table[present].fillna("")
    return results_schema.validate(table)


def write_tables(profile_dir: Path, records: Sequence[RunRecord]) -> tuple[Path, Path]:
    """Concatenate the notebooks' results.csv and claims.csv (the latter with `notebook`)."""
    results, claims = [], []
    for rec in records:
        folder = profile_dir / rec.name
        if (folder / "results.csv").exists():
            results.append(_read_results(folder / "results.csv"))
        if (folder / "claims.csv").exists():
            claims.append(load_claims(folder / "claims.csv").assign(notebook=rec.name))
    all_results = pd.concat(results, ignore_index=True) if results else results_schema.empty()
    all_claims = (
        pd.concat(claims, ignore_index=True)
        if claims
        else pd.DataFrame(columns=[*CLAIM_COLUMNS, "notebook"])
    )
    paths = profile_dir / "results.csv", profile_dir / "claims.csv"
    all_results.to_csv(paths[0], index=False)
    all_claims.to_csv(paths[1], index=False)
    return paths


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
section { border-top: 1px solid #ccc; padding: 1em 0; }
img { max-width: 100%; }
figure { margin: 0.5em 0; }
figcaption { font-size: 0.85em; color: #555; max-width: 60em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
.status { font-weight: bold; padding: 0.1em 0.5em; border-radius: 3px; }
.ok, .reproduced { background: #d7f5dd; }
.failed, .not-reproduced { background: #fadada; }
.inconclusive { background: #f7efc8; }
.error { font-family: monospace; white-space: pre-wrap; background: #fdf0f0; padding: 0.5em; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _section(profile_dir: Path, rec: RunRecord) -> str:
    folder = profile_dir / rec.name
    page = folder / f"{rec.name}.html"  # a pooled run's folders hold no notebook
    title = (f'<a href="{_e(rec.name)}/{_e(rec.name)}.html">{_e(rec.title)}</a>'
             if page.exists() else _e(rec.title))
    parts = [
        f'<section id="{_e(rec.name)}"><h2>{title}</h2>',
        f'<p><span class="status {_e(rec.status)}">{_e(rec.status)}</span> '
        f"{_e(rec.name)} &middot; {rec.seconds:.1f} s &middot; finished {_e(rec.finished)}</p>",
    ]
    if rec.error:
        parts.append(f'<div class="error">{_e(rec.error)}</div>')
    pngs = sorted(folder.glob("*.png"), key=lambda p: (p.stem != "headline", p.stem))
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        alt = f"{png.stem} figure of {rec.name}"
        caption = (f"<figcaption>{_e(CAPTIONS[png.stem])}</figcaption>"
                   if png.stem in CAPTIONS else "")
        parts.append(f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}">'
                     f"{caption}</figure>")
    if (folder / "claims.csv").exists():
        claims = load_claims(folder / "claims.csv")
        rows = "".join(
            f'<tr><td>{_e(c.claim)}</td><td class="{_e(c.verdict).replace(" ", "-")}">'
            f"{_e(c.verdict)}</td><td>{_e(c.evidence)}</td></tr>"
            for c in claims.itertuples()
        )
        parts.append(
            f"<table><tr><th>claim</th><th>verdict</th><th>evidence</th></tr>{rows}</table>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def format_interval(statistic: Any, ci_low: Any, ci_high: Any) -> str:
    """"+1.23 [+0.10, +2.40]" (or the statistic alone, or "", where values are missing)."""
    def num(x: Any) -> str:
        try:
            return "" if pd.isna(float(x)) else f"{float(x):+.2f}"
        except (TypeError, ValueError):
            return ""

    if not num(ci_low):
        return num(statistic)
    return f"{num(statistic)} [{num(ci_low)}, {num(ci_high)}]"


def claim_label(row: Any) -> str:
    """What names a claims row in a table: its paper claim, or WORLD_CHECK for a check of the
    world's own."""
    return row.paper_claim or WORLD_CHECK


def claim_statistic(row: Any) -> str:
    """A claims row's statistic as the tables print it: a paper claim's signed statistic and
    interval; a world check's statistic, the number of tasks failing it, as a count ("0"),
    unless it comes with an interval (the measured distance's Spearman)."""
    interval = format_interval(row.statistic, row.ci_low, row.ci_high)
    # Bounds read back from a csv may be "" or NaN: an interval is one that prints.
    if row.paper_claim or interval != format_interval(row.statistic, None, None):
        return interval
    try:
        count = float(row.statistic)
    except (TypeError, ValueError):
        return ""
    return "" if pd.isna(count) else f"{count:g}"


def load_claims(path: Path, named: bool = False) -> pd.DataFrame:
    """One claims.csv, validated. Empty cells stay "" (`keep_default_na=False`): a world
    check's empty paper_claim must not become NaN, which is truthy and so would name it.

    `named`: refuse a table from before claims carried `paper_claim`, whose rows could be
    matched to no other run's (a comparison would silently compare nothing).
    """
    table = pd.read_csv(path, keep_default_na=False)
    if named and "paper_claim" not in table.columns:
        raise ValueError(f"the claims table at {path} has no paper_claim column: it comes from "
                         "a run older than the paper's named claims; run it again")
    return validate_claims(table)


def read_claims(run: Path) -> pd.DataFrame:
    """The claims of a finished run, to compare with another's: `run` is its profile folder
    (e.g. reports/quick, whose claims.csv gathers every notebook's) or a claims.csv itself."""
    path = Path(run)
    path = path / "claims.csv" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no claims table at {path}: give a run's profile folder "
                                "(e.g. reports/quick) or its claims.csv")
    return load_claims(path, named=True)


def compare_claims(runs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The verdicts of several runs side by side: one row per claim, one column per run.

    A claim is named by its paper_claim, or for the world's own checks by WORLD_CHECK and its
    text; a run's cell is its verdict and statistic [95% CI] ("" where the run lacks the
    claim). `same verdict` says whether every run that has the claim gives it one verdict
    ("" where only one run has it): whether a verdict survives another seed, world or machine.
    """
    key_col, same_col = COMPARE_COLUMNS
    cells: dict[str, dict[str, tuple[str, str]]] = {}  # claim -> run -> (verdict, cell)
    for label, claims in runs.items():
        for c in validate_claims(claims).itertuples():
            key = c.paper_claim or f"{claim_label(c)} {c.claim}"
            if label in cells.get(key, {}):
                raise ValueError(f"run {label!r} has the claim {key!r} twice")
            cell = f"{c.verdict} {claim_statistic(c)}".strip()
            cells.setdefault(key, {})[label] = (c.verdict, cell)
    rows = []
    for key, by_run in cells.items():
        verdicts = {verdict for verdict, _ in by_run.values()}
        same = "" if len(by_run) < 2 else "yes" if len(verdicts) == 1 else "no"
        rows.append({key_col: key, **{label: by_run.get(label, ("", ""))[1] for label in runs},
                     same_col: same})
    return pd.DataFrame(rows, columns=[key_col, *runs, same_col])


def agreement(compared: pd.DataFrame) -> str:
    """One line under a `compare_claims` table: how many claims that more than one run has
    keep one verdict, and which do not."""
    key_col, same_col = COMPARE_COLUMNS
    shared = compared[compared[same_col] != ""]
    differ = shared.loc[shared[same_col] == "no", key_col].tolist()
    return (f"{len(shared) - len(differ)} of {len(shared)} claims in more than one run have one "
            "verdict" + (f"; differing: {', '.join(differ)}" if differ else ""))


def markdown_table(frame: pd.DataFrame) -> str:
    """`frame` as a Markdown table to paste into notes and READMEs: its index left out, "|"
    in a cell escaped (it would end the cell)."""
    def row(values: Sequence[Any]) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    lines = [row(frame.columns), "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + [row(r) for r in frame.itertuples(index=False)])


def _verdict_table(profile_dir: Path, records: Sequence[RunRecord]) -> str:
    """Every verdict of the run first: claim, verdict, statistic and interval, a link."""
    rows = []
    for rec in records:
        path = profile_dir / rec.name / "claims.csv"
        if not path.exists():
            continue
        for c in load_claims(path).itertuples():
            link = f'<a href="#{_e(rec.name)}">{_e(rec.name)}</a>'
            rows.append(
                f"<tr><td>{_e(claim_label(c))}</td><td>{_e(c.claim)}</td>"
                f'<td class="{_e(c.verdict).replace(" ", "-")}">{_e(c.verdict)}</td>'
                f"<td>{_e(claim_statistic(c))}</td>"
                f"<td>{link}</td></tr>"
            )
    if not rows:
        return ""
    return (
        '<section id="verdicts"><h2>Verdicts</h2><table><tr><th>paper claim</th><th>claim</th>'
        "<th>verdict</th><th>statistic [95% CI]</th><th>notebook</th></tr>"
        + "".join(rows) + "</table></section>\n"
    )


def write_index(profile_dir: Path, profile: str, records: Sequence[RunRecord],
                what: str = "") -> Path:
    """The profile's index.html: per notebook its title, status, time, figure and verdicts.
    `what` names the run (default: "<profile> profile")."""
    failed = sum(r.status != "ok" for r in records)
    now = datetime.now().isoformat(timespec="seconds")
    what = _e(what or f"{profile} profile")
    head = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>transferlab: {what}</title><style>{_CSS}</style></head><body>"
        f"<h1>transferlab: {what}</h1>"
        f"<p>{len(records)} notebooks, {failed} failed &middot; index written {now} &middot; "
        f'tables: <a href="results.csv">results.csv</a>, <a href="claims.csv">claims.csv</a></p>'
    )
    body = _verdict_table(profile_dir, records) + "\n".join(
        _section(profile_dir, r) for r in records)
    path = profile_dir / "index.html"
    path.write_text(f"{head}\n{body}\n</body></html>\n", encoding="utf-8")
    return path
