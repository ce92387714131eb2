"""The paper's own published numbers (Azizpour et al. 2015), to show beside ours.

Transcribed from the paper (/work/shared/paper/): Table 3 (source task), Table 4
(fine-tuning), Table 5 (extra data) and Table 6 (Deep Standard vs. Deep Optimized; Figure 2
draws Table 6's first three rows). Every number is in percent as printed, UKB included (the
paper prints its N-S score x25); `by_task` converts to a world task's own metric.

Rows are the paper's datasets, named as the world's tasks name their analog
(`world.TASKS[t].analog`); an analog that stands for several datasets joins their names with
" / " ("Oxford 5k / Paris 6k"), and `by_task` averages them.

    paper.table6()                       # 17 datasets x (scores, error reduction, settings)
    paper.by_task(paper.table6(), specs) # one row per world task, in the task's metric
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

__all__ = ["DATASETS", "SOURCE_LEVELS", "table3", "table4", "table5", "table6", "figure2",
           "datasets_of", "by_task", "for_factor", "compare", "compare_table6", "table6_for"]

NS_SCALE = 25.0  # the paper prints UKB's N-S score (0..4) x25

# Table 6's columns, left to right (= Table 2's groups in distance order): dataset, group.
DATASETS: dict[str, str] = {
    "VOC07": "classification",
    "MIT 67": "classification",
    "SUN 397": "classification",
    "SUN attributes": "attributes",  # "SunAtt"
    "UIUC attributes": "attributes",  # "UIUC"
    "H3D": "attributes",
    "Oxford Pets": "fine-grained",  # "Pet"
    "CUB": "fine-grained",
    "Flowers 102": "fine-grained",  # "Flower"
    "VOC actions": "compositional",  # "VOCa."
    "Stanford 40": "compositional",  # "Act40" / "Stanf. Act40"
    "Visual Phrases": "compositional",  # "Phrase"
    "Holidays": "retrieval",  # "Holid."
    "UKB": "retrieval",  # N-S score x25
    "Oxford 5k": "retrieval",  # "Oxf."
    "Paris 6k": "retrieval",  # "Paris"
    "Sculptures 6k": "retrieval",  # "Scul."
}

# ------------------------------------------------------------------ Table 6 (and Figure 2)
# Table 6, "Final Results", one tuple per column of the table (left to right):
# (non-ConvNet state of the art, Deep Standard, Deep Optimized, Err. Reduction %) and the
# bottom half: Source Task, Network Width, Network Depth, Rep. Layer, PCA, Pooling.
_TABLE6 = {
    "VOC07": (71.1, 71.8, 80.7, 32, "ImageNet", "Medium", 16, "last", False, "none"),
    "MIT 67": (68.5, 64.9, 71.3, 18, "Hybrid", "Medium", 8, "last", False, "none"),
    "SUN 397": (37.5, 49.6, 56.0, 13, "Hybrid", "Medium", 8, "last", False, "none"),
    "SUN attributes": (87.5, 91.4, 92.5, 13, "Hybrid", "Medium", 8, "last", False, "none"),
    "UIUC attributes": (90.2, 90.6, 91.5, 10, "Hybrid", "Large", 8, "2nd last", False, "none"),
    "H3D": (69.1, 73.8, 74.6, 4, "ImageNet", "Medium", 16, "2nd last", False, "none"),
    "Oxford Pets": (59.2, 78.5, 88.1, 45, "ImageNet", "Medium", 16, "2nd last", False, "none"),
    "CUB": (62.7, 62.8, 67.1, 12, "ImageNet", "Medium", 16, "3rd last", False, "none"),
    "Flowers 102": (90.2, 90.5, 91.3, 8, "ImageNet", "Medium", 16, "3rd last", False, "none"),
    "VOC actions": (69.6, 69.2, 74.3, 17, "ImageNet", "Medium", 16, "3rd last", False, "none"),
    "Stanford 40": (45.7, 58.9, 66.4, 18, "ImageNet", "Medium", 16, "3rd last", False, "none"),
    "Visual Phrases": (41.5, 77.3, 82.3, 22, "ImageNet", "Medium", 16, "3rd last", False, "none"),
    "Holidays": (82.2, 86.2, 90.0, 28, "Hybrid", "Medium", 8, "4th last", True, "1x1"),
    "UKB": (89.4, 93.0, 96.3, 47, "ImageNet", "Medium", 8, "4th last", True, "1x1"),
    "Oxford 5k": (81.7, 73.0, 79.0, 22, "ImageNet", "Medium", 16, "4th last", True, "2x2"),
    "Paris 6k": (78.2, 81.3, 85.1, 20, "ImageNet", "Medium", 16, "4th last", True, "2x2"),
    "Sculptures 6k": (45.4, 53.7, 67.9, 31, "ImageNet", "Medium", 16, "4th last", True, "3x3"),
}
TABLE6_COLUMNS = ("non_convnet", "deep_standard", "deep_optimized", "error_reduction",
                  "source", "width", "depth", "layer", "pca", "pooling")
SCORE_COLUMNS = ("non_convnet", "deep_standard", "deep_optimized")

# ------------------------------------------------------------------ Table 3 (source task)
# Table 3, "Source Task", FC6; rows ImageNet, Places, Hybrid, Concat of the paper are the
# world's source_task levels objects, scenes, hybrid, concat (SOURCE_LEVELS). Table 3 has
# 12 of Table 6's datasets (no SUN attributes, VOC actions, Phrases, Holidays, Paris).
SOURCE_LEVELS = {"objects": "ImageNet", "scenes": "Places", "hybrid": "Hybrid", "concat": "Concat"}
_TABLE3 = {  # dataset: (ImageNet, Places, Hybrid, Concat)
    "VOC07": (71.6, 68.5, 72.7, 73.8),
    "MIT 67": (64.9, 69.3, 69.6, 70.8),
    "SUN 397": (49.6, 55.7, 56.0, 56.2),
    "H3D": (73.8, 68.0, 72.6, 74.2),
    "UIUC attributes": (90.4, 88.8, 90.2, 90.4),
    "Oxford Pets": (78.4, 49.9, 72.4, 75.6),
    "CUB": (62.7, 42.2, 58.3, 60.3),
    "Flowers 102": (90.5, 82.4, 89.4, 90.2),
    "Stanford 40": (58.9, 53.0, 58.2, 59.6),
    "Oxford 5k": (71.2, 70.0, 72.3, 72.1),
    "Sculptures 6k": (52.0, 44.2, 52.3, 54.0),
    "UKB": (93.0, 88.7, 92.2, 93.2),
}

# ------------------------------------------------------------------ Table 4 (fine-tuning)
# Table 4, "Fine-tuning": rows "Medium FC7" (our level "off") and "Medium FT" ("on").
_TABLE4 = {"MIT 67": (65.9, 66.3), "CUB": (62.9, 66.4), "Flowers 102": (90.4, 91.4)}

# ------------------------------------------------------------------ Table 5 (extra data)
# Table 5, "Additional data (fine-tuning)": VOC 2007 detection AP of three classes. Rows
# "ConvNet [13]", "ConvNet-FT VOC [13]", "ConvNet-FT VOC+CUB+Pet" are our extra_data levels
# "standard", "FT target", "FT target + extra" (the world runs it on breeds, not detection).
_TABLE5 = {
    "standard": (38.5, 51.4, 46.0),
    "FT target": (50.0, 60.7, 56.1),
    "FT target + extra": (51.3, 63.0, 57.2),
}


# the columns in a metric's unit
_SCORES = (*SCORE_COLUMNS, *SOURCE_LEVELS, "off", "on", "standard", "optimized")


def _indexed(rows: dict[str, tuple], columns: Iterable[str]) -> pd.DataFrame:
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(columns))
    df.index.name = "dataset"
    return df.assign(group=df.index.map(DATASETS))


def table6() -> pd.DataFrame:
    """Table 6 by dataset (Table 6's order): the three scores (%), the published relative
    error reduction (a fraction, like stats.error_reduction), the optimized settings, group."""
    df = _indexed(_TABLE6, TABLE6_COLUMNS)
    return df.assign(error_reduction=df["error_reduction"] / 100.0)


def figure2() -> pd.DataFrame:
    """What Figure 2 draws: Table 6's non-ConvNet, Deep Standard and Deep Optimized scores."""
    return table6()[[*SCORE_COLUMNS, "group"]]


def table3() -> pd.DataFrame:
    """Table 3 by dataset, columns the world's source_task levels (objects = ImageNet, ...)."""
    return _indexed(_TABLE3, SOURCE_LEVELS)


def table4() -> pd.DataFrame:
    """Table 4 by dataset, columns the world's fine_tuning levels ("off" = Medium FC7)."""
    return _indexed(_TABLE4, ("off", "on"))


def table5() -> pd.DataFrame:
    """Table 5 (VOC07 detection AP, %) by the world's extra_data level; "mean" of the classes."""
    df = pd.DataFrame.from_dict(_TABLE5, orient="index", columns=["bird", "cat", "dog"])
    df.index.name = "level"
    return df.assign(mean=df.mean(axis=1).round(2))


def datasets_of(analog: str) -> tuple[str, ...]:
    """The paper's datasets an analog stands for ("Oxford 5k / Paris 6k" -> two)."""
    return tuple(part.strip() for part in analog.split(" / "))


def by_task(published: pd.DataFrame, specs: dict) -> pd.DataFrame:
    """One row per task of `specs` (name -> TaskSpec) whose analog the table has: numbers
    averaged over the analog's datasets, text joined with " / ", scores in the task's own
    metric (N-S / 25). Columns add `analog` and `datasets` (those of the analog this table
    has: Table 3 has Oxford 5k, not Paris 6k); tasks without published numbers are left out."""
    rows = {}
    for name, spec in specs.items():
        names = [d for d in datasets_of(spec.analog) if d in published.index]
        if not names:
            continue
        part = published.loc[names]
        row = {c: _combine(part[c]) for c in published.columns}
        if spec.metric == "ns_score":  # every score column; error_reduction is a fraction
            row.update({c: row[c] / NS_SCALE for c in _SCORES if c in row})
        rows[name] = {"analog": spec.analog, "datasets": " / ".join(names), **row}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "task"
    return out


def _combine(values: pd.Series):
    """One dataset's value as is; several: the mean of numbers, distinct texts joined."""
    if values.nunique() == 1:
        return values.iloc[0]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return " / ".join(dict.fromkeys(map(str, values)))
    return float(values.mean())


# ------------------------------------------------------------------ beside our results

def _table6_levels() -> pd.DataFrame:
    """Table 6's two scores under the world's level names of the "optimized" factor."""
    t = table6()
    return t[["deep_standard", "deep_optimized", "group"]].set_axis(
        ["standard", "optimized", "group"], axis=1)


# The factors the paper gives per-level numbers for (Figures 3-8 give none in the text).
_PUBLISHED = {"source_task": table3, "fine_tuning": table4, "optimized": _table6_levels}
_INFO = ("analog", "datasets", "group")


def _world_specs() -> dict:
    from .world import TASKS  # the embedded world's task cards (imported only when needed)

    return dict(TASKS)


def for_factor(df: pd.DataFrame, factor: str, specs: dict | None = None) -> pd.DataFrame | None:
    """The paper's numbers for a factor's levels, task x level (the world's level names) in
    each task's metric, for the tasks of `df` whose analog the paper reports; None where
    the paper publishes no per-level numbers for the factor (Figures 3-8 give none)."""
    if factor not in _PUBLISHED:
        return None
    specs = _world_specs() if specs is None else specs
    tasks = dict.fromkeys(df.loc[df["factor"] == factor, "task"])
    per_task = by_task(_PUBLISHED[factor](), {t: specs[t] for t in tasks if t in specs})
    return per_task.drop(columns=[c for c in _INFO if c in per_task.columns])


def compare(df: pd.DataFrame, factor: str, specs: dict | None = None) -> pd.DataFrame:
    """Our seed means beside the paper's numbers: one row per task (distance order) with its
    analog, columns (level, "ours" | "paper"). Raises for a factor the paper gives no
    numbers for."""
    from .stats import summarize

    if factor not in _PUBLISHED:
        raise ValueError(f"factor={factor!r}: the paper publishes numbers for {list(_PUBLISHED)}")
    specs = _world_specs() if specs is None else specs
    ours = summarize(df, factor).pivot_table(index="task", columns="level", values="score",
                                             aggfunc="first", sort=False)
    theirs = for_factor(df, factor, specs)
    levels = [lvl for lvl in ours.columns if lvl in theirs.columns] if theirs is not None else []
    out = pd.concat({"ours": ours, "paper": theirs.reindex(index=ours.index, columns=levels)},
                    axis=1).swaplevel(axis=1)
    order = [(lvl, who) for lvl in ours.columns for who in ("ours", "paper") if (lvl, who) in out]
    out = out[order]
    out.insert(0, ("", "analog"), [getattr(specs.get(t), "analog", "") for t in out.index])
    return out


def compare_table6(std: pd.DataFrame, opt: pd.DataFrame, specs: dict | None = None) -> pd.DataFrame:
    """Table 6 beside ours: standard, optimized and relative error reduction, ours and the
    paper's for each task's analog, and the paper's non-ConvNet state of the art."""
    from .stats import error_reduction

    specs = _world_specs() if specs is None else specs
    ours = error_reduction(std, opt).set_index("task")
    theirs = by_task(table6(), {t: specs[t] for t in ours.index if t in specs}).reindex(ours.index)
    cols = {
        ("", "analog"): [getattr(specs.get(t), "analog", "") for t in ours.index],
        ("standard", "ours"): ours["standard"], ("standard", "paper"): theirs["deep_standard"],
        ("optimized", "ours"): ours["optimized"], ("optimized", "paper"): theirs["deep_optimized"],
        ("error reduction", "ours"): ours["error_reduction"],
        ("error reduction", "paper"): theirs["error_reduction"],
        ("non-ConvNet", "paper"): theirs["non_convnet"],
    }
    return pd.DataFrame(cols, index=ours.index)


def table6_for(df: pd.DataFrame, specs: dict | None = None) -> pd.DataFrame:
    """Table 6 by task for the tasks of a results table (what `plots.optimized_bars` takes)."""
    specs = _world_specs() if specs is None else specs
    tasks = dict.fromkeys(df["task"])
    return by_task(table6(), {t: specs[t] for t in tasks if t in specs})
