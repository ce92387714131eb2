import numpy as np
import pytest
import torch
from synthetic import colour_task
from transferlab import progress
from transferlab import training as tr
from transferlab.architecture import NetConfig
from transferlab.cache import Cache

pytestmark = pytest.mark.usefixtures("one_thread")

NET = NetConfig(width="tiny", depth=5, n_classes=4, input_size=14)
FAST = tr.TrainConfig(epochs=2, batch_size=32, lr=0.02, n_checkpoints=4)


@pytest.fixture(scope="module")
def data():
    return colour_task(192)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"schedule": "linear"}, "schedule='linear'.*cosine"),
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"data_fraction": 0.0}, "data_fraction=0.0"),
        ({"data_fraction": 1.5}, "data_fraction=1.5"),
        ({"n_checkpoints": -1}, "n_checkpoints=-1"),
    ],
)
def test_bad_train_config_fails_at_construction(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        tr.TrainConfig(**kwargs)


def test_bad_data_fails_before_any_training(tmp_path, data, monkeypatch):
    images, labels = data
    monkeypatch.setattr(tr, "_fit", lambda *a, **k: pytest.fail("trained on bad data"))
    cache = Cache(tmp_path)
    cases = [
        (images, labels + 4, "labels span"),  # label 7 >= n_classes=4
        (images.astype(np.float32), labels, "uint8"),
        (images[:, :, :12], labels, r"shape \(N, S, S, 3\)"),
        (images[:, :12, :12], labels, "smaller than input_size=14"),
        (images, labels[:-1], "labels must have shape"),
    ]
    for imgs, labs, needle in cases:
        with pytest.raises(ValueError, match=needle):
            tr.train(NET, FAST, imgs, labs, data_id={"t": 0}, cache=cache, progress=False)


def test_resume_after_kill_equals_uninterrupted_run(tmp_path, data):
    images, labels = data
    full = tr.train(NET, FAST, images, labels, data_id={"t": 1}, cache=Cache(tmp_path / "a"),
                    progress=False)
    cache = Cache(tmp_path / "b")
    with pytest.raises(tr.TrainingInterrupted):
        tr.train(NET, FAST, images, labels, data_id={"t": 1}, cache=cache, progress=False,
                 resume_every=4, stop_after_iterations=7)
    resume_files = list((cache.root / "resume").glob("*.pt"))
    assert len(resume_files) == 1  # iteration 4 was saved; 5-7 are lost, as in a kill
    saved = torch.load(resume_files[0], weights_only=True)
    assert saved["iteration"] == 4
    assert tr.resumed_iteration(cache, resume_files[0].stem) == 4  # what the plan prices
    assert tr.resumed_iteration(cache, "0" * 24) == 0
    reported: list[float] = []
    with progress.reporting_to(reported.append):
        resumed = tr.train(NET, FAST, images, labels, data_id={"t": 1}, cache=cache,
                           progress=False, resume_every=4)
    # Fractions of the 8 steps this run had left (12 in all): at step 10, then at the end.
    assert reported == pytest.approx([6 / 8, 1.0])
    assert resumed.log["resumed_from"] == 4 and full.log["resumed_from"] == 0
    assert _same(full.state, resumed.state)
    assert full.checkpoints.keys() == resumed.checkpoints.keys()
    for it in full.checkpoints:
        assert _same(full.checkpoints[it], resumed.checkpoints[it])
    assert full.log["block_loss"] == resumed.log["block_loss"]
    assert not list((cache.root / "resume").glob("*.pt"))  # cleaned up after success


def test_second_identical_request_loads_from_cache(tmp_path, data, monkeypatch):
    images, labels = data
    cache = Cache(tmp_path)
    first = tr.train(NET, FAST, images, labels, data_id={"t": 2}, cache=cache, progress=False)
    monkeypatch.setattr(tr, "_fit", lambda *a, **k: pytest.fail("trained again"))
    second = tr.train(NET, FAST, images, labels, data_id={"t": 2}, cache=cache, progress=False)
    assert _same(first.state, second.state)
    assert first.key == second.key
    # another data_id is another network
    with pytest.raises(pytest.fail.Exception):
        tr.train(NET, FAST, images, labels, data_id={"t": 3}, cache=cache, progress=False)


def test_corrupt_cache_entry_is_recomputed(tmp_path, data, monkeypatch):
    images, labels = data
    cache = Cache(tmp_path)
    first = tr.train(NET, FAST, images, labels, data_id={"t": 4}, cache=cache, progress=False)
    (payload,) = (cache.root / "network").glob("*.pt")
    payload.write_bytes(payload.read_bytes()[: payload.stat().st_size // 2])
    calls = []
    real_fit = tr._fit
    monkeypatch.setattr(tr, "_fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    again = tr.train(NET, FAST, images, labels, data_id={"t": 4}, cache=cache, progress=False)
    assert calls == [1]
    assert _same(first.state, again.state)  # deterministic: the same weights again


def test_seed_changes_the_weights(tmp_path, data):
    images, labels = data
    a = tr.train(NET, FAST, images, labels, data_id={"t": 5}, cache=Cache(tmp_path),
                 progress=False)
    cfg = tr.TrainConfig(**{**FAST.__dict__, "seed": 1})
    b = tr.train(NET, cfg, images, labels, data_id={"t": 5}, cache=Cache(tmp_path),
                 progress=False)
    assert not torch.equal(a.state["conv1.0.weight"], b.state["conv1.0.weight"])


def test_checkpoints_are_log_spaced_and_loadable(tmp_path, data):
    images, labels = data
    run = tr.train(NET, FAST, images, labels, data_id={"t": 6}, cache=Cache(tmp_path),
                   progress=False)
    total = 2 * (192 // 32)
    assert run.log["iterations"] == total
    its = sorted(run.checkpoints)
    assert its == tr.checkpoint_iterations(total, 4) and its[0] == 1 and its[-1] == total
    gaps = np.diff(np.log(its))
    assert gaps.max() < 2 * gaps.min() + 0.5  # roughly even in log space
    assert _same(run.checkpoints[total], run.state)
    early = run.model(1)
    assert not early.training
    with pytest.raises(ValueError, match="iteration=3 is not one of"):
        run.model(3)


def test_earlier_snapshots_are_read_from_the_cache_not_held(tmp_path, data):
    images, labels = data
    cache = Cache(tmp_path)
    run = tr.train(NET, FAST, images, labels, data_id={"t": 7}, cache=cache, progress=False)
    stored = torch.load(next((cache.root / "network").glob("*.pt")), weights_only=True)
    first, middle = sorted(run.checkpoints)[:2]
    assert _same(run.checkpoints[first], stored["checkpoints"][first])
    assert _same(run.checkpoints[middle], stored["checkpoints"][middle])
    assert not _same(run.checkpoints[first], run.checkpoints[middle])
    with pytest.raises(KeyError):
        run.checkpoints[first + 1000]
    for entry in (cache.root / "network").iterdir():
        entry.unlink()
    assert _same(run.checkpoints[run.log["iterations"]], run.state)  # the final one is held
    assert first in run.checkpoints and len(run.checkpoints) == 4
    with pytest.raises(RuntimeError, match=f"network {run.key} .* run again"):
        run.checkpoints[first]


def test_training_learns_an_easy_task(tmp_path):
    images, labels = colour_task(384, seed=1)
    test_images, test_labels = colour_task(256, seed=2)
    cfg = tr.TrainConfig(epochs=4, batch_size=32, lr=0.02, n_checkpoints=0)
    run = tr.train(NET, cfg, images, labels, data_id={"t": 7}, cache=Cache(tmp_path),
                   progress=False)
    assert run.log["block_loss"][-1] < run.log["block_loss"][0]
    assert tr.accuracy(run.model(), test_images, test_labels) > 0.6  # chance is 0.25
    assert run.log["images_per_s"] > 0


def test_stratified_subset_is_nested_and_keeps_class_balance():
    labels = np.repeat(np.arange(5), [40, 40, 40, 40, 8])
    half = tr.stratified_subset(labels, 0.5, seed=0)
    quarter = tr.stratified_subset(labels, 0.25, seed=0)
    assert set(quarter) <= set(half)
    assert np.bincount(labels[half]).tolist() == [20, 20, 20, 20, 4]
    assert np.bincount(labels[quarter]).tolist() == [10, 10, 10, 10, 2]
    assert not np.array_equal(tr.stratified_subset(labels, 0.5, seed=1), half)
    assert len(tr.stratified_subset(labels, 1.0, seed=0)) == len(labels)


def test_data_fraction_trains_on_fewer_images(tmp_path, data):
    images, labels = data
    cfg = tr.TrainConfig(epochs=1, batch_size=16, data_fraction=0.25, n_checkpoints=0)
    run = tr.train(NET, cfg, images, labels, data_id={"t": 8}, cache=Cache(tmp_path),
                   progress=False)
    assert run.log["n_train"] == len(tr.stratified_subset(labels, 0.25, seed=0))
    assert run.log["n_train"] < len(labels) // 3


def test_crop_batch_crops_and_mirrors():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 10, 10, 3), dtype=np.uint8)
    idx, top, left = np.array([2, 0]), np.array([1, 3]), np.array([2, 0])
    flip = np.array([False, True])
    out = tr.crop_batch(torch.from_numpy(images), idx, top, left, flip, 6).numpy()
    np.testing.assert_array_equal(out[0], images[2, 1:7, 2:8])
    np.testing.assert_array_equal(out[1], images[0, 3:9, 0:6][:, ::-1])


def test_learning_rate_schedules():
    cos = tr.TrainConfig(lr=0.1, warmup=0.1)
    assert tr.learning_rate(cos, 0, 100) == pytest.approx(0.01)
    assert tr.learning_rate(cos, 10, 100) == pytest.approx(0.1)
    assert tr.learning_rate(cos, 99, 100) < 0.001
    step = tr.TrainConfig(lr=0.1, warmup=0.0, schedule="step")
    assert [tr.learning_rate(step, i, 100) for i in (0, 60, 90)] == pytest.approx(
        [0.1, 0.01, 0.001]
    )


def test_the_default_thread_count_never_overrides_an_explicit_one(monkeypatch):
    from transferlab import compute

    before = torch.get_num_threads()
    monkeypatch.setattr(compute, "_threads_set", False)
    monkeypatch.setenv("TRANSFERLAB_THREADS", "2")
    try:
        compute.ensure_threads()  # nothing chosen yet: the default
        assert torch.get_num_threads() == 2
        compute.configure_threads(1)
        compute.ensure_threads()  # an explicit choice stands
        assert torch.get_num_threads() == 1
    finally:
        compute.configure_threads(before)


def test_a_network_does_not_depend_on_the_thread_count_of_its_process(tmp_path, data):
    # A serial run computes on all cores, a Dask worker on one: the same run key must give
    # the same bits on both (oneDNN's reductions differ between 1 and 2 threads).
    from transferlab import compute

    images, labels = data
    states = []
    try:
        for n in (2, 1):
            compute.configure_threads(n)
            states.append(tr.train(NET, FAST, images, labels, data_id={"t": 1},
                                   cache=Cache(tmp_path / str(n)), progress=False).state)
            assert torch.get_num_threads() == n  # restored after training
    finally:
        compute.configure_threads(1)
    assert _same(*states)


def test_another_training_thread_count_is_its_own_cache_key(monkeypatch):
    config = (NET, FAST, {"t": 1})
    default = tr.run_key(*config)
    monkeypatch.setenv("TRANSFERLAB_TRAIN_THREADS", "1")
    assert tr.run_key(*config) == default  # the default's keys are as they were
    monkeypatch.setenv("TRANSFERLAB_TRAIN_THREADS", "2")
    assert tr.run_key(*config) != default
    monkeypatch.setenv("TRANSFERLAB_TRAIN_THREADS", "all")
    with pytest.raises(ValueError, match="TRANSFERLAB_TRAIN_THREADS='all'.*integer >= 1"):
        tr.run_key(*config)


def test_policy_env_names_the_active_policy(monkeypatch):
    from transferlab import compute

    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")
    monkeypatch.setenv("TRANSFERLAB_CHANNELS_LAST", "0")
    assert compute.policy_env() == {"TRANSFERLAB_PRECISION": "fp32",
                                    "TRANSFERLAB_CHANNELS_LAST": "0"}
    assert compute.precision_id() == {"precision": "fp32", "channels_last": False}


def test_compute_policy_is_explicit_and_validated(monkeypatch):
    from transferlab import compute

    before = torch.get_num_threads()
    try:
        assert compute.configure_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="n=0 threads"):
        compute.configure_threads(0)
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp16")
    with pytest.raises(ValueError, match=r"TRANSFERLAB_PRECISION='fp16'.*bf16"):
        compute.precision()
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")
    monkeypatch.setenv("TRANSFERLAB_CHANNELS_LAST", "0")
    assert compute.precision_id() == {"precision": "fp32", "channels_last": False}
    with compute.autocast_context():
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "bf16")
    with compute.autocast_context():
        assert torch.is_autocast_enabled("cpu")


def test_precision_is_part_of_the_cache_key(tmp_path, data, monkeypatch):
    images, labels = data
    cache = Cache(tmp_path)
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")
    a = tr.train(NET, FAST, images, labels, data_id={"t": 9}, cache=cache, progress=False)
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "bf16")
    b = tr.train(NET, FAST, images, labels, data_id={"t": 9}, cache=cache, progress=False)
    assert a.key != b.key
    assert not torch.equal(a.state["conv1.0.weight"], b.state["conv1.0.weight"])
