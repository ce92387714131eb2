import dataclasses

import pytest
import torch
from synthetic import colour_task
from transferlab import finetune as fn
from transferlab import training as tr
from transferlab.architecture import NetConfig
from transferlab.cache import Cache

pytestmark = pytest.mark.usefixtures("one_thread")

SOURCE = NetConfig(width="tiny", depth=5, n_classes=4, input_size=14)


@pytest.fixture(scope="module")
def source_state(tmp_path_factory):
    images, labels = colour_task(256, 4, seed=0)
    cfg = tr.TrainConfig(epochs=2, batch_size=32, lr=0.02, n_checkpoints=0)
    run = tr.train(SOURCE, cfg, images, labels, data_id={"src": 0},
                   cache=Cache(tmp_path_factory.mktemp("src")), progress=False)
    return run.state


def test_finetune_config_is_validated_and_lower_lr_than_source():
    assert fn.FinetuneConfig().lr < tr.TrainConfig().lr
    with pytest.raises(ValueError, match="head_lr_mult=0"):
        fn.FinetuneConfig(head_lr_mult=0)
    with pytest.raises(ValueError, match="schedule='poly'"):
        fn.FinetuneConfig(schedule="poly")


def test_finetune_replaces_fc8_and_improves_train_accuracy(tmp_path, source_state):
    # target: 3 classes told apart by colours partly unseen by the source
    images, labels = colour_task(320, 5, seed=3)
    keep = labels >= 2
    images, labels = images[keep], labels[keep] - 2
    cfg = fn.FinetuneConfig(epochs=4, batch_size=32, lr=0.01)
    state = fn.finetune(SOURCE, source_state, images, labels, 3, cfg, data_id={"tgt": 0},
                        cache=Cache(tmp_path), progress=False)
    target_cfg = dataclasses.replace(SOURCE, n_classes=3)
    assert state["fc8.1.weight"].shape[0] == 3 and state["fc8.1.bias"].shape == (3,)
    tuned = tr.load(target_cfg, state)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untuned = tr.load(target_cfg, {**source_state, **_fresh_head(3)})
    before = tr.accuracy(untuned, images, labels)
    after = tr.accuracy(tuned, images, labels)
    assert after > 0.8 and after > before + 0.2, (before, after)
    # the body moved too, but stayed near the source (low learning rate)
    diff = (state["conv1.0.weight"] - source_state["conv1.0.weight"]).norm()
    assert 0 < diff < 0.5 * source_state["conv1.0.weight"].norm()


def _fresh_head(n_classes: int) -> dict:
    from transferlab.networks import build, replace_head

    net = replace_head(build(SOURCE), n_classes)
    return {k: v for k, v in net.state_dict().items() if k.startswith("fc8")}


def test_finetune_is_cached_and_extra_data_changes_the_result(tmp_path, source_state,
                                                              monkeypatch):
    images, labels = colour_task(64, 4, seed=4)
    extra = colour_task(64, 4, seed=5)
    cfg = fn.FinetuneConfig(epochs=1, batch_size=16)
    cache = Cache(tmp_path)
    plain = fn.finetune(SOURCE, source_state, images, labels, 4, cfg, data_id={"tgt": 1},
                        cache=cache, progress=False)
    with_extra = fn.finetune(SOURCE, source_state, images, labels, 4, cfg, extra=extra,
                             data_id={"tgt": 1, "extra": "seed5"}, cache=cache, progress=False)
    assert not torch.equal(plain["fc8.1.weight"], with_extra["fc8.1.weight"])
    monkeypatch.setattr(fn, "run_loop", lambda *a, **k: pytest.fail("fine-tuned again"))
    again = fn.finetune(SOURCE, source_state, images, labels, 4, cfg, data_id={"tgt": 1},
                        cache=cache, progress=False)
    assert all(torch.equal(plain[k], again[k]) for k in plain)


def test_bad_target_data_fails_before_training(tmp_path, source_state, monkeypatch):
    images, labels = colour_task(32, 4, seed=6)
    cfg = fn.FinetuneConfig(epochs=1)
    monkeypatch.setattr(fn, "run_loop", lambda *a, **k: pytest.fail("trained on bad data"))
    with pytest.raises(ValueError, match="n_classes=3"):
        fn.finetune(SOURCE, source_state, images, labels, 3, cfg, data_id={}, cache=Cache(tmp_path),
                    progress=False)
    with pytest.raises(ValueError, match="n_classes=1"):
        fn.finetune(SOURCE, source_state, images, labels * 0, 1, cfg, data_id={},
                    cache=Cache(tmp_path), progress=False)
    bad_extra = (images, labels + 10)
    with pytest.raises(ValueError, match="labels span"):
        fn.finetune(SOURCE, source_state, images, labels, 4, cfg, extra=bad_extra, data_id={},
                    cache=Cache(tmp_path), progress=False)


def test_finetune_runs_its_steps_with_frozen_batchnorm_statistics(tmp_path, source_state):
    images, labels = colour_task(40, 4, seed=5)  # a small target: 40 images, batch 16
    cfg = fn.FinetuneConfig(steps=12, batch_size=16, lr=0.01)
    assert cfg.frozen_bn
    state = fn.finetune(SOURCE, source_state, images, labels, 4, cfg, data_id={"tgt": 1},
                        cache=Cache(tmp_path), progress=False)
    stats = [k for k in state if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(state[k], source_state[k]) for k in stats)
    affine = [k for k in state if k.endswith("weight") and k.replace("weight", "running_mean") in state]
    assert any(not torch.equal(state[k], source_state[k]) for k in affine)  # BN weights learn
    moving = fn.FinetuneConfig(steps=12, batch_size=16, lr=0.01, frozen_bn=False)
    free = fn.finetune(SOURCE, source_state, images, labels, 4, moving, data_id={"tgt": 1},
                       cache=Cache(tmp_path), progress=False)
    assert any(not torch.equal(free[k], source_state[k]) for k in stats)
    plan = tr.make_plan(cfg, len(labels), SOURCE.input_size)
    assert plan.total == 12 > 2 * plan.iters_per_epoch  # steps, not epochs


def test_snapshots_at_fractions_of_training():
    cfg = tr.TrainConfig(steps=1500, snapshots=(1 / 16, 0.5, 7 / 8, 1.0))
    assert cfg.snapshot_iterations(1500) == [94, 750, 1312, 1500]
    with pytest.raises(ValueError, match="fractions \\[1.5\\]"):
        tr.TrainConfig(snapshots=(0.5, 1.5))
    with pytest.raises(ValueError, match="steps=0"):
        tr.TrainConfig(steps=0)


def test_snapshot_zero_keeps_the_random_initialisation(tmp_path):
    images, labels = colour_task(64, 4, seed=1)
    cfg = tr.TrainConfig(steps=6, batch_size=16, lr=0.02, snapshots=(0.0, 0.5, 1.0))
    assert cfg.snapshot_iterations(6) == [0, 3, 6]
    run = tr.train(SOURCE, cfg, images, labels, data_id={"init": 0}, cache=Cache(tmp_path),
                   progress=False)
    torch.manual_seed(cfg.seed)  # the training run builds its network under this seed
    from transferlab.networks import build

    init = build(SOURCE).state_dict()
    assert all(torch.equal(run.checkpoints[0][k], init[k]) for k in init)
    assert not all(torch.equal(run.checkpoints[0][k], run.state[k]) for k in init)


def test_multi_label_targets_train_one_sigmoid_per_label(tmp_path, source_state):
    images, labels = colour_task(96, 4, seed=2)
    multi = (labels[:, None] == torch.arange(3).numpy()[None, :]).astype("uint8")
    multi[::3, 2] = 1  # images with two labels
    cfg = fn.FinetuneConfig(steps=30, batch_size=32, lr=0.02, head_lr_mult=1.0, frozen_bn=False)
    state = fn.finetune(SOURCE, source_state, images, multi, 3, cfg, data_id={"multi": 0},
                        cache=Cache(tmp_path), progress=False)
    model = tr.load(dataclasses.replace(SOURCE, n_classes=3), state)
    logits = tr.predict(model, images)
    assert logits.shape == (96, 3)
    # It learnt: the labels' logits are higher where the label is on than where it is off.
    assert all(logits[multi[:, k] == 1, k].mean() > logits[multi[:, k] == 0, k].mean()
               for k in range(3))
    with pytest.raises(ValueError, match="0/1"):
        fn.finetune(SOURCE, source_state, images, multi * 2, 3, cfg, data_id={"multi": 1},
                    cache=Cache(tmp_path), progress=False)
