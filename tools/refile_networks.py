"""Re-files the source networks of a cache made before a change to `world.data_id`'s keys.

    python tools/refile_networks.py OLD_CACHE [NEW_CACHE]

A network's cache key holds the id of its source's training images. When the id's format
changes and the images do not (an image is a function of the world seed, task, split and
index), the trained network is still right but its key is not, and a run would retrain it
(about two worker-hours for the quick profile's ten networks on 2 cores). This tool
recomputes each stored network's key with the current `data_id` and files the same payload
under it (hard-linked where it can be; NEW_CACHE defaults to OLD_CACHE). It refuses an
entry whose stored key does not match its own config under the current code (another code
or library version: a retraining is due), and one whose old id lacks a size the new id
needs. Features and scores are not re-filed: they recompute in minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from transferlab.cache import atomic_write, config_key
from transferlab.world import WorldConfig, data_id

WORLD_FIELDS = {f.name for f in fields(WorldConfig)}


def refiled_config(config: dict) -> dict | None:
    """The network's config with its data id in the current format; None if the old id
    lacks a size the current one names (it cannot be told which images trained it)."""
    old = config["data"]
    given = {k: v for k, v in old["world"].items() if k in WORLD_FIELDS}
    new = data_id(old["task"], WorldConfig(**given), old.get("split"))
    if not set(new["world"]) <= set(given) or new["version"] != old["version"]:
        return None
    return {**config, "data": new}


def refile(old_root: Path, new_root: Path) -> list[tuple[str, str | None]]:
    """(old key, new key or None where refused) for every network under `old_root`."""
    out = []
    (new_root / "network").mkdir(parents=True, exist_ok=True)
    for manifest in sorted((old_root / "network").glob("*.manifest.json")):
        meta = json.loads(manifest.read_text())
        current = config_key("network", meta["config"]) == meta["key"]
        config = refiled_config(meta["config"]) if current else None
        if config is None:
            out.append((meta["key"], None))
            continue
        key = config_key("network", config)
        target = new_root / "network" / f"{key}.pt"
        manifest_path = new_root / "network" / f"{key}.manifest.json"
        if not manifest_path.exists():  # else filed already (or trained since): left alone
            target.unlink(missing_ok=True)  # a payload without its manifest is unfinished
            _link_or_copy(old_root / "network" / f"{meta['key']}.pt", target)
            atomic_write(manifest_path,
                         json.dumps({**meta, "key": key, "config": config}, indent=1).encode())
        out.append((meta["key"], key))
    return out


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, target)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    old_root = Path(argv[0])
    if not (old_root / "network").is_dir():
        print(f"OLD_CACHE={old_root} holds no network/ folder", file=sys.stderr)
        return 2
    moved = refile(old_root, Path(argv[-1]))
    for old, new in moved:
        print(f"{old} -> {new or 'refused (other code version, or an id lacking a size)'}")
    print(f"{sum(new is not None for _, new in moved)} of {len(moved)} networks re-filed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
