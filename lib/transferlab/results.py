"""The one results schema: a tidy table, one row per (factor, level, task, seed, metric).

Every notebook, plot, claim check and report reads and writes this table.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

COLUMNS: dict[str, str] = {
    "factor": "object",  # width, depth, early_stopping, source_task, layer, dim_reduction, ...
    "level": "object",  # the factor's level, as text ("medium", "fc6", "256", ...)
    "level_index": "int64",  # the level's position on the factor's axis (for ordering, trends)
    "task": "object",
    "group": "object",
    "domain": "object",  # "object" or "scene" (tasks.DOMAINS)
    "distance_rank": "int64",
    "metric": "object",
    "score": "float64",  # on the test split, in the metric's natural unit (% or N-S 0..4)
    "ci_low": "float64",  # bootstrap 95% interval over test images
    "ci_high": "float64",
    "cv_score": "float64",  # cross-validated score on the training split (NaN if not computed)
    "seed": "int64",
    "representation": "object",  # e.g. "objects/medium/d5/fc6/p1"
    "weights": "object",  # which weights made the features: "embedded" (the world's own
    # networks) or, on the real profile, arch/weights, e.g. "alexnet/IMAGENET1K_V1"
}

# Filled in where a table lacks them (tables written before the column existed, by hand).
DEFAULTS = {"weights": "embedded"}


# Optional, in memory only (never in results.csv): each cell's score on the bootstrap
# resamples of its test items, the same resamples for every level of a task (a tuple).
REPLICATES = "boot"


def empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


def frame(rows: Iterable[dict]) -> pd.DataFrame:
    """A validated results table from row dicts (missing optional values become NaN)."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return empty()
    for col in ("ci_low", "ci_high", "cv_score"):
        if col not in df:
            df[col] = np.nan
    if "representation" not in df:
        df["representation"] = ""
    if "domain" not in df:
        df["domain"] = "object"
    return validate(df)


def validate(df: pd.DataFrame) -> pd.DataFrame:
    """Check the columns and cast them to the schema's types (replicates, if any, kept)."""
    df = df.assign(**{c: v for c, v in DEFAULTS.items() if c not in df.columns})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"results table lacks columns {missing}; the schema is {list(COLUMNS)}")
    out = df[list(COLUMNS)].astype(COLUMNS)
    if REPLICATES in df.columns:
        out[REPLICATES] = [tuple(v) if isinstance(v, list | tuple | np.ndarray) else ()
                           for v in df[REPLICATES]]
    return out.reset_index(drop=True)


def without_replicates(df: pd.DataFrame) -> pd.DataFrame:
    """The table as results.csv holds it."""
    return df.drop(columns=[REPLICATES], errors="ignore")


def relative_to_best(df: pd.DataFrame) -> pd.DataFrame:
    """Adds `relative`: each score divided by the best level's score of its (factor, task, seed)."""
    out = df.copy()
    best = out.groupby(["factor", "task", "seed", "metric"])["score"].transform("max")
    out["relative"] = out["score"] / best.replace(0, np.nan)
    return out
