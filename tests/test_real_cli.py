"""README's "Run on real data", as a newcomer follows it: an image-folder dataset placed as told,
a state_dict checkpoint, `python -m transferlab run --profile real --data-root ... --weights ...`.

Offline: the run's processes (the CLI and its notebook kernels) get a sitecustomize that refuses
every non-loopback connection and torch.hub download.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import real_fixtures as F
import torch
import torchvision.models as tvm

ROOT = Path(__file__).resolve().parents[1]

OFFLINE = '''
import socket

def _refuse(address, *args, **kwargs):
    host = address[0] if isinstance(address, tuple) else str(address)
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"test: network access to {address!r} refused")

_connect = socket.socket.connect
def _guarded(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(address)
    return _connect(self, address)
socket.socket.connect = _guarded
'''


@pytest.fixture(scope="module")
def placed(tmp_path_factory) -> dict[str, Path]:
    """A new image-folder dataset laid out as README says, and a checkpoint (a state_dict)."""
    base = tmp_path_factory.mktemp("newcomer")
    birds = base / "data" / "my_birds"
    for split, n in (("train", 6), ("test", 3)):
        for c, cls in enumerate(("finch", "robin")):
            for k in range(n):
                F.jpg(birds / split / cls / f"{k}.jpg", F.color(3 * c), (48, 36))
    (birds / "transferlab.yaml").write_text(
        "group: fine-grained\ndistance_rank: 8\nmetric: mean_class_accuracy\nanalog: CUB\n")
    torch.manual_seed(0)
    torch.save(tvm.alexnet().state_dict(), base / "alexnet_birds.pth")
    (base / "offline").mkdir()
    (base / "offline" / "sitecustomize.py").write_text(OFFLINE)
    return {"base": base, "data": base / "data", "weights": base / "alexnet_birds.pth"}


def _run(placed: dict[str, Path], *args: str) -> subprocess.CompletedProcess:
    base = placed["base"]
    env = {**os.environ, "TRANSFERLAB_CACHE": str(base / "cache"), "TRANSFERLAB_THREADS": "1",
           "TORCH_HOME": str(base / "torch"),
           "PYTHONPATH": os.pathsep.join([str(base / "offline"), str(ROOT / "lib")])}
    env.pop("TRANSFERLAB_DATA", None)
    return subprocess.run(
        [sys.executable, "-m", "transferlab", "run", "--profile", "real",
         "--data-root", str(placed["data"]), "--weights", str(placed["weights"]),
         "--out", str(base / "reports"), "--workers", "0", *args],
        cwd=base, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_new_image_folder_runs_through_the_cli_with_bars_and_named_weights(placed):
    done = _run(placed, "--only", "layer", "dim_reduction")
    assert done.returncode == 0, done.stderr[-3000:]
    # progress bars reach papermill's console log: decoding, then features per split
    assert "decoding my_birds/train at 48 px: 100%" in done.stderr
    digest = hashlib.sha256(placed["weights"].read_bytes()).hexdigest()[:12]
    name = f"alexnet/alexnet_birds-{digest}"
    assert f"features my_birds/test {name}: 100%" in done.stderr
    for notebook, factor in (("05_layer", "layer"), ("06_dim_reduction", "dim_reduction")):
        table = pd.read_csv(placed["base"] / "reports" / "real" / notebook / "results.csv")
        assert (table.factor == factor).all() and set(table.task) == {"my_birds"}
        assert (table.weights == name).all()  # the checkpoint's name and digest, every row
        assert (table.group == "fine-grained").all() and (table.distance_rank == 8).all()
        assert (table.metric == "mean_class_accuracy").all() and table.score.notna().all()
    layer = pd.read_csv(placed["base"] / "reports" / "real" / "05_layer" / "results.csv")
    assert sorted(layer.level) == sorted(["conv1", "conv2", "conv3", "conv4", "conv5",
                                          "fc6", "fc7", "fc8"])
    # one flat colour per class: any layer of any network separates them
    assert (layer.score == 100).all()
