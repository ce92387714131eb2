"""tools/refile_networks.py: a network trained under an older image-id format keeps its weights."""

import json
import sys
from dataclasses import asdict
from pathlib import Path

from transferlab import training
from transferlab.cache import Cache
from transferlab.study import WorldBackend
from transferlab.world import RECIPE_VERSIONS, RENDER_VERSION

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import refile_networks  # noqa: E402


def _old_format_entry(cache: Cache, backend: WorldBackend, world: dict) -> str:
    """Store a stand-in network under the key format of before 752de8c (the whole world)."""
    net_cfg, train_cfg = backend.network_configs("objects", "medium", 5, 1.0, 0)
    old_id = {"task": "objects", "world": world, "split": "train",
              "version": {"render": RENDER_VERSION, "objects": RECIPE_VERSIONS["objects"]}}
    config = training._run_config(net_cfg, train_cfg, old_id)
    cache.store("network", config, {"state": {}, "stand-in": True}, codec="torch")
    return training.run_key(net_cfg, train_cfg, old_id)


def test_a_network_filed_under_the_old_id_is_found_under_the_new_one(tmp_path, capsys):
    cache = Cache(tmp_path / "old")
    backend = WorldBackend("smoke", cache, progress=False)
    old_key = _old_format_entry(cache, backend, asdict(backend.world))
    new_key = backend.network_key("objects")
    assert old_key != new_key and not cache.has_key("network", new_key, "torch")

    assert refile_networks.main([str(tmp_path / "old"), str(tmp_path / "new")]) == 0
    assert "1 of 1 networks re-filed" in capsys.readouterr().out
    new = Cache(tmp_path / "new")
    assert new.has_key("network", new_key, "torch")
    manifest = json.loads((tmp_path / "new" / "network" / f"{new_key}.manifest.json").read_text())
    assert manifest["key"] == new_key and manifest["config"]["data"]["world"] == {
        "size": backend.world.size, "seed": backend.world.seed,
        "source_train_per_class": backend.world.source_train_per_class}


def test_a_network_already_under_the_new_key_is_left_alone(tmp_path):
    cache = Cache(tmp_path)
    backend = WorldBackend("smoke", cache, progress=False)
    _old_format_entry(cache, backend, asdict(backend.world))
    net_cfg, train_cfg = backend.network_configs("objects", "medium", 5, 1.0, 0)
    trained_since = {"state": {}, "trained since": True}  # e.g. retrained under the new key
    cache.store("network", training._run_config(net_cfg, train_cfg,
                                                backend.data_id("objects", "train")),
                trained_since, codec="torch")
    assert refile_networks.main([str(tmp_path)]) == 0
    stored = cache.load("network", training._run_config(net_cfg, train_cfg,
                                                        backend.data_id("objects", "train")),
                        codec="torch")  # its checksum still matches its payload
    assert stored["trained since"]


def test_an_old_id_that_lacks_a_size_the_new_one_needs_is_refused(tmp_path, capsys):
    cache = Cache(tmp_path)
    backend = WorldBackend("smoke", cache, progress=False)
    world = asdict(backend.world)
    del world["source_train_per_class"]  # which images trained it can no longer be told
    _old_format_entry(cache, backend, world)
    assert refile_networks.main([str(tmp_path)]) == 0
    assert "0 of 1 networks re-filed" in capsys.readouterr().out
    assert not cache.has_key("network", backend.network_key("objects"), "torch")


def test_a_folder_without_networks_is_named(tmp_path, capsys):
    assert refile_networks.main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
