"""What a long computation reports of its progress, and to whom."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from synthetic import colour_task
from transferlab import progress
from transferlab import training as tr
from transferlab.architecture import NetConfig
from transferlab.cache import Cache


def test_reports_reach_the_installed_sink_only_inside_its_block():
    got: list[float] = []
    progress.report(0.3)  # no sink: nothing happens
    with progress.reporting_to(got.append):
        progress.report(0.25)
        progress.report(1.5)  # clipped
        progress.report(-1)
    progress.report(0.9)
    assert got == [0.25, 1.0, 0.0]


def test_parts_map_onto_their_share_of_the_whole():
    got: list[float] = []
    with progress.reporting_to(got.append):
        for i in range(3):
            with progress.part(i, 3):
                progress.report(0.5)
                progress.report(1.0)
    assert got == pytest.approx([1 / 6, 1 / 3, 1 / 2, 2 / 3, 5 / 6, 1.0])
    with progress.part(0, 2):  # no sink: no-op
        progress.report(0.5)
    with pytest.raises(ValueError, match=r"part\(i=2, n=2\)"):
        with progress.part(2, 2):
            pass


def test_a_span_maps_onto_any_share_of_the_whole():
    got: list[float] = []
    with progress.reporting_to(got.append):
        with progress.span(0.2, 0.6):
            progress.report(0.5)
            with progress.part(1, 2):  # spans nest: the second half of [0.2, 0.6]
                progress.report(1.0)
    assert got == pytest.approx([0.4, 0.6])
    with pytest.raises(ValueError, match=r"span\(start=0.7, stop=0.3\)"):
        with progress.span(0.7, 0.3):
            pass


@pytest.mark.usefixtures("one_thread")
def test_sgd_reports_its_steps_even_without_a_bar(tmp_path):
    images, labels = colour_task(192)
    net = NetConfig(width="tiny", depth=5, n_classes=4, input_size=14)
    cfg = tr.TrainConfig(epochs=2, batch_size=32, lr=0.02, n_checkpoints=4)  # 12 steps
    got: list[float] = []
    with progress.reporting_to(got.append):
        tr.train(net, cfg, images, labels, data_id={"t": 1}, cache=Cache(tmp_path),
                 progress=False)
    assert got == pytest.approx([10 / 12, 1.0])


def test_a_tasks_features_report_across_its_splits_by_their_images(tmp_path, monkeypatch):
    from transferlab.study import STANDARD, Study, scored_splits

    study = Study("smoke", cache=Cache(tmp_path), progress=False)

    def extract(self, rep, source, task, split, seed):  # one extraction, reporting its whole
        progress.report(0.5)
        progress.report(1.0)
        return np.ones((len(self.task(task).images[split]), 3), np.float32)

    monkeypatch.setattr(type(study.backend), "features", extract)
    data = study.task("rooms")
    sizes = [len(data.images[s]) for s in scored_splits(data)]
    assert len(sizes) >= 2 and len(set(sizes)) > 1  # unequal splits, so equal parts would differ
    ends = np.cumsum(sizes) / sum(sizes)
    starts = ends - np.array(sizes) / sum(sizes)
    got: list[float] = []
    with progress.reporting_to(got.append):
        out = study.split_features(STANDARD, "rooms", 0)
    assert list(out) == scored_splits(data)
    assert [len(v) for v in out.values()] == sizes
    assert got == pytest.approx([x for a, b in zip(starts, ends, strict=True)
                                 for x in (a + (b - a) / 2, b)])
    # Concat extracts once per source: each source reports onto its half of the split's share.
    got.clear()
    with progress.reporting_to(got.append):
        study.split_features(replace(STANDARD, source="concat"), "rooms", 0)
    assert got == sorted(got) and got[-1] == pytest.approx(1.0) and len(got) == 4 * len(sizes)


def test_a_quiet_block_reports_nothing():
    got: list[float] = []
    with progress.reporting_to(got.append):
        with progress.quiet():
            progress.report(0.5)
        progress.report(1.0)
    assert got == [1.0]
