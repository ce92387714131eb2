"""The one results schema: a tidy table, one row per (factor, level, task, seed, metric).

Every notebook, plot, claim check and report reads and writes this table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

COLUMNS: dict[str, str] = {
    "factor": "object",  # width, depth, early_stopping, source_task, layer, dim_reduction, ...
    "level": "object",  # the factor's level, as text ("medium", "fc6", "256", ...)
    "level_index": "int64",  # the level's position on the factor's axis (for ordering, trends)
    "layer": "object",  # the representation's layer ("fc6", "conv3", ...); "" for baselines
    # that are no network's layer (chance, raw pixels)
    "task": "object",
    "group": "object",
    "domain": "object",  # "object" or "scene" (tasks.DOMAINS)
    "distance_rank": "int64",
    "metric": "object",
    "score": "float64",  # on the test split, in the metric's natural unit (% or N-S 0..4)
    "ci_low": "float64",  # bootstrap 95% interval over test images
    "ci_high": "float64",
    "cv_score": "float64",  # what Table 6 chooses by: cross-validated on the training split
    # (NaN if not computed); in its fine-tuning stage, the score on the validation split
    "seed": "int64",
    "representation": "object",  # e.g. "objects/medium/d5/fc6/p1"
    "weights": "object",  # which weights made the features: "embedded" (the world's own
    # networks) or, on the real profile, arch/weights, e.g. "alexnet/IMAGENET1K_V1"
}

# Filled in where a table lacks them (tables written before the column existed, by hand).
EMBEDDED = "embedded"  # `weights` of the world's own networks, which each seed trains anew
DEFAULTS = {"weights": EMBEDDED}


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
    df = _upgrade(df.assign(**{c: v for c, v in DEFAULTS.items() if c not in df.columns}))
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"results table lacks columns {missing}; the schema is {list(COLUMNS)}")
    out = df[list(COLUMNS)].astype(COLUMNS)
    out["layer"] = out["layer"].fillna("")  # "" (no layer) reads back from a CSV as NaN
    if REPLICATES in df.columns:
        out[REPLICATES] = [tuple(v) if isinstance(v, list | tuple | np.ndarray) else ()
                           for v in df[REPLICATES]]
    return out.reset_index(drop=True)


def layer_of(representation: str) -> str:
    """The layer named in a representation label ("objects/medium/d5/fc7/ckpt3" -> "fc7")."""
    found = _LAYER.search(str(representation))
    return found.group(1) if found else ""


_LAYER = re.compile(r"(?:^|/)(conv\d+|pool\d+|fc\d+)(?:/|$)")


def _upgrade(df: pd.DataFrame) -> pd.DataFrame:
    """Tables written before the `layer` column: the layer from the representation label, and
    factors once named "factor:layer" (early stopping at FC7) split into the two columns."""
    if "layer" in df.columns or "factor" not in df.columns:
        return df
    named = df["factor"].astype(str).str.partition(":")
    layer = df.get("representation", pd.Series("", index=df.index)).map(layer_of)
    return df.assign(factor=named[0], layer=named[2].where(named[2] != "", layer))


def without_replicates(df: pd.DataFrame) -> pd.DataFrame:
    """The table as results.csv holds it."""
    return df.drop(columns=[REPLICATES], errors="ignore")


def relative_to_best(df: pd.DataFrame) -> pd.DataFrame:
    """Adds `relative`: each score divided by the best level's score of its (factor, task, seed)."""
    out = df.copy()
    best = out.groupby(["factor", "task", "seed", "metric"])["score"].transform("max")
    out["relative"] = out["score"] / best.replace(0, np.nan)
    return out
