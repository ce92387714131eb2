"""The one cache: content addressing, atomic checksummed entries, corrupt entries recomputed."""

from pathlib import Path

import numpy as np
import pytest
import torch
from transferlab.cache import Cache, CorruptEntry, config_key


def test_key_depends_on_every_config_value_and_not_on_order():
    a = config_key("features", {"layer": "fc6", "pooling": 1, "data": {"task": "birds"}})
    b = config_key("features", {"pooling": 1, "data": {"task": "birds"}, "layer": "fc6"})
    c = config_key("features", {"layer": "fc6", "pooling": 2, "data": {"task": "birds"}})
    d = config_key("network", {"layer": "fc6", "pooling": 1, "data": {"task": "birds"}})
    assert a == b and len({a, c, d}) == 3


def test_unhashable_config_value_is_refused():
    with pytest.raises(TypeError, match="not hashable"):
        config_key("x", {"array": object()})


def test_second_request_is_served_from_the_cache(tmp_path):
    cache, calls = Cache(tmp_path), []

    def compute():
        calls.append(1)
        return {"x": np.arange(5.0)}

    first = cache.get_or_compute("features", {"k": 1}, compute)
    second = cache.get_or_compute("features", {"k": 1}, compute)
    assert len(calls) == 1 and np.array_equal(first["x"], second["x"])


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "no_manifest"])
def test_corrupt_entry_is_detected_and_recomputed(tmp_path, damage):
    cache = Cache(tmp_path)
    cache.store("features", {"k": 1}, {"x": np.arange(1000.0)})
    payload = next((tmp_path / "features").glob("*.npz"))
    manifest = next((tmp_path / "features").glob("*.manifest.json"))
    if damage == "truncate":
        payload.write_bytes(payload.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(payload.read_bytes())
        data[-10] ^= 0xFF
        payload.write_bytes(bytes(data))
    elif damage == "manifest":
        manifest.write_text("{not json")
    else:
        manifest.unlink()
    if damage != "no_manifest":
        with pytest.raises(CorruptEntry):
            cache.load("features", {"k": 1})
    value = cache.get_or_compute("features", {"k": 1}, lambda: {"x": np.ones(3)})
    assert np.array_equal(value["x"], np.ones(3)), "a damaged entry must never be used"
    assert np.array_equal(cache.load("features", {"k": 1})["x"], np.ones(3))


class Arbitrary:
    """Stands for any pickled object that is not tensors and plain containers."""


def test_torch_entries_load_weights_only(tmp_path):
    cache = Cache(tmp_path)
    cache.store("network", {"k": 1}, {"w": torch.ones(2)}, codec="torch")
    assert torch.equal(cache.load("network", {"k": 1}, codec="torch")["w"], torch.ones(2))
    # An entry holding an arbitrary object is refused by weights_only loading.
    cache.store("network", {"k": 2}, {"obj": Arbitrary()}, codec="torch")
    with pytest.raises(CorruptEntry):
        cache.load("network", {"k": 2}, codec="torch")


def test_unknown_codec_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="arrays"):
        Cache(tmp_path).store("x", {}, {}, codec="pickle")


def test_no_temporary_files_are_left_behind(tmp_path):
    Cache(tmp_path).store("features", {"k": 1}, {"x": np.zeros(3)})
    assert not list((tmp_path / "features").glob("*.tmp"))


def _can_reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _can_reset_peak(), reason="Linux restarts a process's peak count")
def test_the_log_gives_each_entry_its_own_peak_memory(tmp_path, monkeypatch):
    log = tmp_path / "computed.log"
    monkeypatch.setenv("TRANSFERLAB_CACHE_LOG", str(log))
    cache = Cache(tmp_path / "cache")

    def big() -> dict:
        x = np.ones(400 * 2**20 // 8)  # touched: 400 MiB resident, returned when freed
        return {"s": np.array([x.sum()])}

    def small() -> dict:
        return {"s": np.zeros(1)}

    def big_then_small_inside() -> dict:
        big()
        return cache.get_or_compute("small_inside", {"k": 1}, small)

    def big_inside() -> dict:
        return cache.get_or_compute("big_inside", {"k": 1}, big)

    cache.get_or_compute("big", {"k": 1}, big)
    cache.get_or_compute("small", {"k": 1}, small)
    cache.get_or_compute("outer", {"k": 1}, big_then_small_inside)
    cache.get_or_compute("around_big", {"k": 1}, big_inside)
    peaks = {line.split()[0]: float(line.split()[4]) for line in log.read_text().splitlines()}
    # Counted from the process's start, "small" would inherit "big"'s peak; an entry inside
    # another, the outer's peak before it; an entry around another, none of the inner's.
    assert peaks["small"] < peaks["big"] - 300
    assert peaks["small_inside"] < peaks["outer"] - 300
    assert peaks["outer"] > peaks["small"] + 300
    assert peaks["around_big"] >= peaks["big_inside"] > peaks["small"] + 300
