"""`Study` and the factor grids over a tiny fake backend: no training, no world rendering.

The fake's features are a fixed function of the labels, the layer and the source, so these
tests check what `Study` itself does -- the one scoring path, its cache, its checks before
compute, the weights column -- and what the factor grids ask of a backend.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np
import pytest
from transferlab import factors, features
from transferlab import params as P
from transferlab.cache import Cache
from transferlab.probes import ProbeConfig
from transferlab.profiles import get_profile
from transferlab.real.study import RealBackend
from transferlab.study import (
    STANDARD,
    Backend,
    Level,
    Offers,
    Study,
    Unavailable,
    WorldBackend,
    depth_levels,
)
from transferlab.tasks import RetrievalTruth, TaskData, TaskSpec

DIM = 16
N_PATCHES = 3


def _spec(name: str, kind: str, metric: str, group: str, n_classes: int) -> TaskSpec:
    return TaskSpec(name, "target", group, kind, metric, "fake", 1, n_classes)


SPECS = {"blobs": _spec("blobs", "single-label", "accuracy", "classification", 2),
         "pairs": _spec("pairs", "retrieval", "retrieval_map", "retrieval", 6)}


def _blobs() -> TaskData:
    y = np.tile([0, 1], 12)
    images = {s: np.zeros((len(y), 1, 1, 3), np.uint8) for s in ("train", "test", "val")}
    return TaskData(SPECS["blobs"], images, {"train": y, "test": y.copy(), "val": y[:10].copy()})


def _pairs() -> TaskData:
    # database: 6 instances x 2 views; queries: the first view of each; train: 8 other pairs
    db, train = np.repeat(np.arange(6), 2), np.repeat(np.arange(6, 14), 2)
    query = np.arange(6)
    truth = RetrievalTruth(tuple(np.array([2 * i + 1]) for i in range(6)),
                           tuple(np.zeros(0, np.int64) for _ in range(6)), 2 * np.arange(6))
    labels = {"train": train, "database": db, "query": query}
    images = {s: np.zeros((len(y), 1, 1, 3), np.uint8) for s, y in labels.items()}
    return TaskData(SPECS["pairs"], images, labels, truth=truth)


class FakeBackend:
    """Features: a one-hot of the label (fc6 clean, fc8 noisier), plus a source offset."""

    def __init__(self, cache: Cache, offers: Offers | None = None,
                 weights: str | None = None) -> None:
        smoke = get_profile("smoke")
        self.profile = replace(smoke, name="fake", tasks=("blobs", "pairs"), seeds=(0,),
                               n_boot=20, probe=ProbeConfig(Cs=(1.0,), folds=2))
        self.cache, self.progress = cache, False
        self.offers = offers or Offers(trains_networks=False, finetunes=False, world_card=False)
        self.weights, self.version = weights, 1
        self.calls: list[tuple] = []
        self._tasks = {"blobs": _blobs(), "pairs": _pairs()}

    def check_tasks(self, tasks):
        bad = [t for t in tasks if t not in SPECS]
        if bad:
            raise ValueError(f"tasks {bad} are not fake tasks; valid tasks: {sorted(SPECS)}")
        return tuple(tasks)

    def default_tasks(self):
        return self.profile.tasks

    def task_spec(self, name):
        return SPECS[name]

    def task(self, name):
        return self._tasks[name]

    def data_id(self, task, split=None):
        return {"fake": task, "split": split, "version": self.version}

    def validation_truth(self, task):
        y = self._tasks[task].labels["train"]
        firsts = np.arange(0, len(y), 2)
        return RetrievalTruth(tuple(np.array([i + 1]) for i in firsts),
                              tuple(np.zeros(0, np.int64) for _ in firsts), firsts)

    def check(self, rep):
        if rep.width != "medium":
            raise Unavailable(f"width={rep.width!r}: the fake backend has medium networks only")

    def model_id(self, rep, source, task, seed):
        return {"fake": source, "depth": rep.depth}

    def model(self, rep, source, task, seed):
        return self.model_id(rep, source, task, seed), None

    def source_accuracy(self, source, rep, seed):
        return float("nan")

    def checkpoint_iterations(self, seed, rep):
        return [0, 10, 100]

    def weights_name(self, rep):
        return None if self.weights is None else f"{self.weights}/{rep.source}"

    def feature_dim(self, rep):
        return DIM

    def _x(self, rep, source, y):
        rng = np.random.default_rng([len(y), int(rep.layer[-1]), len(source)])
        clean = np.eye(DIM, dtype=np.float32)[y % DIM] + 0.5
        noise = {"6": 0.05, "7": 0.3}.get(rep.layer[-1], 1.0)
        return clean + noise * rng.standard_normal(clean.shape).astype(np.float32) + len(source)

    def features(self, rep, source, task, split, seed):
        self.calls.append(("features", rep.layer, source, task, split))
        return self._x(rep, source, self._tasks[task].labels[split])

    def patches(self, rep, task, split, seed, boxes):
        self.calls.append(("patches", rep.layer, task, split))
        x = self._x(rep, rep.source, self._tasks[task].labels[split])
        return np.repeat(x[:, None], N_PATCHES, axis=1)

    def depth_levels(self, depths):
        return [Level(f"d{d}", i, STANDARD) for i, d in enumerate(depths)]

    def optimized_stages(self, paper):
        return {"only": lambda study, task, rep: [replace(rep, layer="fc7")]}


@pytest.fixture
def fake(tmp_path):
    return FakeBackend(Cache(tmp_path))


def _layers(*names):
    return [Level(n, i, replace(STANDARD, layer=n)) for i, n in enumerate(names)]


# ---------------------------------------------------------------- the protocol


@pytest.mark.parametrize("backend", [WorldBackend, RealBackend, FakeBackend])
def test_backends_implement_the_protocol(backend):
    wanted = {n for n, v in vars(Backend).items()
              if inspect.isfunction(v) and not n.startswith("_")}
    have = {n for n in wanted if inspect.isfunction(getattr(backend, n, None))}
    assert have == wanted
    for name in wanted:  # the same parameters, so Study can call any backend alike
        ours = list(inspect.signature(getattr(Backend, name)).parameters)
        assert list(inspect.signature(getattr(backend, name)).parameters) == ours, name


def test_a_profile_name_builds_the_world_backend(tmp_path):
    study = Study("smoke", cache=Cache(tmp_path))
    assert isinstance(study.backend, WorldBackend) and study.profile.name == "smoke"
    assert study.world is study.profile.world
    with pytest.raises(ValueError, match="cache="):
        Study(FakeBackend(Cache(tmp_path)), cache=Cache(tmp_path))


# ---------------------------------------------------------------- the scoring path


def test_run_scores_every_level_task_and_seed(fake):
    table = Study(fake).run("layer", _layers("fc6", "fc8"), ["blobs", "pairs"])
    assert len(table) == 4 and set(table.task) == {"blobs", "pairs"}
    assert (table.weights == "embedded").all()  # the fake names no weights
    assert list(table.layer) == list(table.level)  # the layer: its own column, whatever the factor
    blobs = table[table.task == "blobs"].set_index("level")
    assert blobs.score["fc6"] == 100.0  # clean one-hot features: a perfect probe
    assert blobs.ci_low["fc6"] <= blobs.score["fc6"] <= blobs.ci_high["fc6"]
    assert table.cv_score.notna().all()  # retrieval too: the backend's validation truth
    assert (table.score.between(0, 100)).all()


def test_scores_are_cached_by_the_backends_data_and_model_ids(fake):
    study = Study(fake)
    first = study.evaluate(STANDARD, "blobs")
    n = len(fake.calls)
    assert study.evaluate(STANDARD, "blobs") == first and len(fake.calls) == n
    fake.version = 2  # new images: a new score entry
    study.evaluate(STANDARD, "blobs")
    assert len(fake.calls) > n


def test_the_validation_split_is_scored_only_when_asked(fake):
    study = Study(fake)
    study.evaluate(STANDARD, "blobs")
    assert {c[4] for c in fake.calls} == {"train", "test"}  # a score never reads it
    assert study.validation_score(STANDARD, "blobs") == 100.0  # clean features, 10 images
    assert {c[4] for c in fake.calls} == {"train", "test", "val"}
    n = len(fake.calls)
    assert study.validation_score(STANDARD, "blobs") == 100.0 and len(fake.calls) == n  # cached
    assert np.isnan(study.validation_score(STANDARD, "pairs"))  # no validation split


class TunableFake(FakeBackend):
    """Fine-tunes whose features are clean on train and validation at lr 0.01 only, and
    clean on test at lr 0.1 only: a choice that read the test split would take 0.1."""

    def __init__(self, cache: Cache) -> None:
        super().__init__(cache, Offers(trains_networks=False, finetunes=True, world_card=False))
        self.profile = replace(self.profile, finetune_lrs=(0.1, 0.001, 0.01))

    def model_id(self, rep, source, task, seed):
        return {**super().model_id(rep, source, task, seed), "lr": rep.finetune_lr}

    def features(self, rep, source, task, split, seed):
        self.calls.append(("features", rep.finetune_lr, source, task, split))
        x = self._x(rep, source, self._tasks[task].labels[split])
        best = 0.1 if split == "test" else 0.01
        noise = 0.0 if rep.finetune_lr in (None, best) else 3.0
        return x + noise * np.random.default_rng(len(x)).standard_normal(x.shape).astype(x.dtype)


def test_a_fine_tunes_learning_rate_is_chosen_on_the_validation_split_only(tmp_path):
    backend = TunableFake(Cache(tmp_path))
    study = Study(backend)
    on = replace(STANDARD, finetune="target")
    assert study.tuned(on, "blobs") == replace(on, finetune_lr=0.01)
    assert "test" not in {c[4] for c in backend.calls}  # the choice never read the test split
    assert {c[1] for c in backend.calls} == {0.001, 0.01, 0.1}  # every rate was tried
    backend.calls.clear()
    study.evaluate(on, "blobs")
    assert {c[1] for c in backend.calls if c[4] == "test"} == {0.01}  # scored as chosen
    assert study.validation_score(on, "blobs") == study.validation_score(
        replace(on, finetune_lr=0.01), "blobs")
    # Nothing to choose: no fine-tune, a rate already set, no validation split.
    for rep, task in [(STANDARD, "blobs"), (replace(on, finetune_lr=0.1), "blobs"),
                      (on, "pairs")]:
        assert study.tuned(rep, task) is rep
    assert study.tuned(replace(on, finetune="scratch"), "blobs").finetune_lr is None


def test_a_representation_checks_its_learning_rate_and_keeps_older_cache_keys():
    on = replace(STANDARD, finetune="target")
    assert replace(on, finetune_lr=0.01).label().endswith("/ft:target/lr0.01")
    for bad in (0, -1e-3, True, "0.01"):
        with pytest.raises(ValueError, match="finetune_lr"):
            replace(on, finetune_lr=bad)
    with pytest.raises(ValueError, match="finetune_lr"):
        replace(STANDARD, finetune_lr=0.01)  # a rate without a fine-tune
    with pytest.raises(ValueError, match="finetune_lr"):
        replace(on, finetune="scratch", finetune_lr=0.01)  # scratch takes the source's rate
    # A field added after a cache was made is left out of keys while unset.
    assert "finetune_lr" not in STANDARD.key() and on.key()["finetune"] == "target"
    assert replace(on, finetune_lr=0.01).key()["finetune_lr"] == 0.01
    with pytest.raises(ValueError, match="finetune_lrs"):
        replace(get_profile("smoke"), finetune_lrs=(0.01, 0.0))


def test_concat_postprocesses_each_source_then_joins_them(fake):
    study = Study(fake)
    x = study.raw_features(replace(STANDARD, source="concat"), "blobs", "train", 0)
    one = study.raw_features(STANDARD, "blobs", "train", 0)
    assert x.shape == (len(one), 2 * DIM)
    assert {c[2] for c in fake.calls if c[0] == "features"} == {"objects", "scenes"}
    raw = fake.features(STANDARD, "objects", "blobs", "train", 0)
    np.testing.assert_array_equal(one, features.postprocess(raw))  # L2 + signed sqrt
    np.testing.assert_array_equal(x[:, :DIM], one)


def test_spatial_search_reads_the_backends_patches_once(fake):
    study = Study(fake)
    rep = replace(STANDARD, spatial=True)
    out = study.evaluate(rep, "pairs")
    patches = [c for c in fake.calls if c[0] == "patches"]
    assert {c[3] for c in patches} == {"train", "database", "query"} and out["score"] > 50
    Study(fake).evaluate(replace(rep, pca_dim=4), "pairs")  # same patches, other PCA
    assert len([c for c in fake.calls if c[0] == "patches"]) == len(patches)


def test_every_level_is_checked_before_any_compute(fake):
    levels = _layers("fc6") + [Level("large", 1, replace(STANDARD, width="large"))]
    with pytest.raises(Unavailable, match="width='large'"):
        Study(fake).run("width", levels, ["blobs"])
    assert fake.calls == []
    with pytest.raises(ValueError, match="valid tasks"):
        Study(fake).run("layer", _layers("fc6"), ["nope"])


def test_rows_name_the_weights_where_the_backend_does(tmp_path):
    fake = FakeBackend(Cache(tmp_path), weights="fakenet")
    table = Study(fake).run("source_task", [Level("o", 0, STANDARD)], ["blobs"])
    assert table.weights.tolist() == ["fakenet/objects"]


# ---------------------------------------------------------------- the factor grids


def _grids(notebook, fake, **values):
    return factors.grids(P.validate(notebook, {"profile": "smoke", **values}), Study(fake))


def test_grids_take_their_levels_from_the_backend(fake):
    (depth,) = _grids("02_depth", fake, depths=[5, 9], tasks=["blobs"])
    assert [lv.label for lv in depth.levels] == ["d5", "d9"] and depth.tasks == ("blobs",)
    # no fine-tuning here: data size without Table 5's extra-data grid
    assert [g.factor for g in _grids("08_data_size", fake, tasks=["blobs"])] == ["data_size"]
    (search,) = _grids("09_optimized", fake, tasks=["pairs"])
    assert [lv.rep.layer for lv in search.levels] == ["fc6", "fc7"]
    stops = _grids("03_early_stopping", fake, tasks=["blobs"], layers=["fc6"])
    assert [lv.label for lv in stops[0].levels] == ["0", "10", "100"]
    assert stops[0].levels[-1].rep.checkpoint is None  # the last snapshot is the final network


def test_grids_with_a_backend_that_finetunes(tmp_path):
    fake = FakeBackend(Cache(tmp_path), Offers(True, finetunes=True, world_card=True))
    grids = _grids("08_data_size", fake, tasks=["blobs"])
    assert [g.factor for g in grids] == ["data_size", "extra_data"]


def test_default_tasks_and_kinds_come_from_the_backend(fake):
    (layer,) = _grids("05_layer", fake, layers=["fc6"])
    assert layer.tasks == ("blobs", "pairs")
    (ft,) = _grids("07_fine_tuning", fake)
    assert ft.tasks == ("blobs",)  # single-label only


def test_run_optimized_and_network_table_on_the_fake(fake):
    p = P.validate("09_optimized", {"profile": "smoke", "tasks": ["blobs"]})
    table = factors.run_optimized(p, Study(fake))
    chosen = table[(table.factor == "optimized") & (table.level == "optimized")]
    assert len(chosen) == 1 and chosen.representation.iloc[0].endswith("fc6")  # fc6 is cleaner
    assert factors.network_table(P.validate("01_width", {"profile": "smoke"}), Study(fake)).empty


def test_depth_levels_are_one_function_for_every_backend():
    assert factors.depth_levels is depth_levels
    assert [lv.rep.depth for lv in depth_levels([5, 7])] == [5, 7]


def test_the_world_backend_keeps_a_few_networks_in_memory(tmp_path, monkeypatch):
    from transferlab import study as study_mod

    trained = []
    monkeypatch.setattr(study_mod.training, "train",
                        lambda *a, **k: trained.append(object()) or trained[-1])
    backend = WorldBackend("smoke", cache=Cache(tmp_path), progress=False)
    first = backend.network("objects", "tiny")
    assert backend.network("objects", "tiny") is first and len(trained) == 1  # kept
    for width in ("small", "medium", "large"):
        backend.network("objects", width)
    assert len(backend._networks) == study_mod.KEEP_NETWORKS  # the oldest went
    backend.network("objects", "tiny")
    assert len(trained) == 5  # loaded again (from the cache, in a real run)
