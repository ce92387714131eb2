"""The real profile through the study and a notebook: tiny fake datasets, a random AlexNet."""

from __future__ import annotations

import hashlib
import io
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import papermill as pm
import pytest
import real_fixtures as F
import torch
import torchvision.models as tvm
import yaml
from scipy.io import savemat
from torchvision.datasets import Flowers102
from torchvision.models.feature_extraction import create_feature_extractor
from transferlab import factors, features, params, results, runner
from transferlab.cache import Cache
from transferlab.real import DatasetNotFound, WeightsNotFound
from transferlab.real.study import (
    REAL_DEPTHS,
    RealRepresentation,
    RealStudy,
    RealWeights,
    depth_levels,
    optimized_candidates,
    real_layers,
)
from transferlab.study import STANDARD

ROOT = Path(__file__).resolve().parents[1]
LAYERS = real_layers(5)
FLOWER_CLASSES = (1, 5, 102)  # 1-based, as imagelabels.mat; not contiguous on purpose
VOC_CLASSES = ("cat", "dog", "car", "person")


def _refuse(*args, **kwargs):
    raise AssertionError("a test tried to reach the network")


@pytest.fixture(autouse=True)
def no_network(monkeypatch, env):
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """An empty cache and hub cache for this module; the notebook kernel inherits them."""
    base = tmp_path_factory.mktemp("env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_CACHE", str(base / "cache"))
        mp.setenv("TRANSFERLAB_THREADS", "1")
        mp.setenv("TORCH_HOME", str(base / "torch"))  # no ImageNet weights in this hub cache
        mp.delenv("TRANSFERLAB_DATA", raising=False)
        old = torch.hub.get_dir()
        torch.hub.set_dir(str(base / "torch" / "hub"))  # set_dir outranks TORCH_HOME
        yield base
        torch.hub.set_dir(old)


# ---------------------------------------------------------------- fake datasets


def write_flowers(root: Path) -> None:
    """flowers-102/ with 3 classes: 6 train (trnid + valid) and 3 test images each, one
    colour per class."""
    base = root / "flowers-102"
    labels, sets = [], {"trnid": [], "valid": [], "tstid": []}
    for c, cls in enumerate(FLOWER_CLASSES):
        for k in range(9):
            i = len(labels) + 1
            labels.append(cls)
            F.jpg(base / "jpg" / f"image_{i:05d}.jpg", F.color(3 * c))
            sets["trnid" if k < 4 else "valid" if k < 6 else "tstid"].append(i)
    savemat(base / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(base / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in sets.items()})


def write_voc(root: Path, n_trainval: int = 12, n_test: int = 8) -> None:
    """VOCdevkit/VOC2007 with 4 classes, one or two objects per image, some difficult."""
    base = root / "VOCdevkit" / "VOC2007"
    rng = np.random.default_rng(0)
    ids = [f"{i:06d}" for i in range(1, n_trainval + n_test + 1)]
    for image_set, part in (("trainval", ids[:n_trainval]), ("test", ids[n_trainval:])):
        (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (base / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(part) + "\n")
    (base / "Annotations").mkdir(parents=True, exist_ok=True)
    for k, image_id in enumerate(ids):
        classes = [VOC_CLASSES[k % 4]] + ([VOC_CLASSES[(k + 1) % 4]] if k % 3 == 0 else [])
        objs = "".join(
            f"<object><name>{c}</name><difficult>{int(rng.random() < 0.15)}</difficult></object>"
            for c in classes
        )
        (base / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{objs}</annotation>")
        F.jpg(base / "JPEGImages" / f"{image_id}.jpg", F.color(k % 4))


def write_holidays(root: Path, groups: int = 5) -> None:
    """holidays/jpg: groups of 3 identical images (the 00 one is the query)."""
    for g in range(groups):
        for k in range(3):
            F.jpg(root / "holidays" / "jpg" / f"{1000 + g}{k:02d}.jpg", F.color(5 * g))


def write_ukbench(root: Path, groups: int = 4) -> None:
    """ukbench/full: groups of 4 identical images."""
    for i in range(4 * groups):
        F.jpg(root / "ukbench" / "full" / f"ukbench{i:05d}.jpg", F.color(5 * (i // 4) + 1))


TASKS = ("voc2007", "flowers102", "holidays", "ukbench")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_voc(root)
    write_flowers(root)
    write_holidays(root)
    write_ukbench(root)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A randomly initialised torchvision AlexNet, saved as a checkpoint."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "alexnet_random.pth"
    torch.save(tvm.alexnet().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def scores(env, data_root, weights) -> dict[str, dict[str, float]]:
    """The standard representation (AlexNet FC6) evaluated on every task, in this process."""
    study = RealStudy(data_root, str(weights), progress=False)
    return {task: study.evaluate(STANDARD, task) for task in TASKS}


# ---------------------------------------------------------------- the study


def test_evaluate_classification_and_retrieval(scores):
    for task, out in scores.items():
        assert np.isfinite(out["score"]), task
        assert out["ci_low"] <= out["score"] + 1e-9 <= out["ci_high"] + 2e-9, task
    # one colour per class / instance: identical images, so the pipeline must be perfect
    assert scores["flowers102"]["score"] == pytest.approx(100.0)
    assert scores["holidays"]["score"] == pytest.approx(100.0)
    assert scores["ukbench"]["score"] == pytest.approx(4.0)  # N-S score, the query counts
    assert np.isfinite(scores["holidays"]["cv_score"]) and np.isfinite(scores["ukbench"]["cv_score"])
    assert 0 <= scores["voc2007"]["score"] <= 100 and np.isfinite(scores["voc2007"]["cv_score"])


def test_labels_are_made_trainable(env, data_root, weights):
    study = RealStudy(data_root, str(weights), progress=False)
    flowers = study.task("flowers102")
    assert flowers.spec.n_classes == 3 and set(flowers.labels["train"]) == {0, 1, 2}
    assert flowers.class_names == tuple(Flowers102.classes[c - 1] for c in FLOWER_CLASSES)
    voc = study.task("voc2007")  # 4 of VOC's 20 classes present: the other 16 left out
    assert voc.labels["train"].shape[1] == 4 and voc.labels["train"].dtype == np.int8
    assert (voc.labels["test"] == 0).any()  # difficult marks survive for the VOC07 AP


def test_features_come_from_the_cache(scores, data_root, weights, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("features were recomputed")

    monkeypatch.setattr(features, "extract", refuse)
    study = RealStudy(data_root, str(weights), progress=False)
    again = {task: study.evaluate(STANDARD, task) for task in TASKS}
    assert again == scores
    # every layer of the standard network came out of the same pass
    for layer in ("conv3", "fc8"):
        x = study.raw_features(replace(STANDARD, layer=layer), "ukbench", "query", 0)
        assert x.shape == (16, {"conv3": 384, "fc8": 1000}[layer])


def test_features_match_a_direct_forward_of_the_normalized_image(scores, data_root, weights):
    """RealModel normalizes itself and wants [0, 1] input: the study must feed it pixels / 255.
    The images are one flat colour, so all 12 jitters equal the plain 224 px crop."""
    study = RealStudy(data_root, str(weights), progress=False)
    model = study.model(STANDARD, "objects")
    stored = study.task("ukbench").images["query"]
    assert stored.shape[1:] == (40, 40, 3)  # 40 x 30 px files: kept small, not at 256 px
    image = study.view(stored[:1], model)[0]
    assert image.shape == (256, 256, 3)
    x = torch.from_numpy(np.array(image[:224, :224], np.float32) / 255).permute(2, 0, 1)[None]
    fx = create_feature_extractor(model.module, return_nodes=model.return_nodes)
    with torch.no_grad():
        direct = features.postprocess(fx(x)["fc6"].numpy())[0]
    ours = study.raw_features(STANDARD, "ukbench", "query", 0)[0]
    cosine = ours @ direct / np.linalg.norm(ours) / np.linalg.norm(direct)
    assert cosine > 0.999  # bf16 autocast vs fp32; pixels in 0..255 would give ~0.7


def test_concat_and_sources_from_a_mapping_file(scores, data_root, weights, tmp_path):
    mapping = tmp_path / "weights.yaml"
    mapping.write_text(yaml.safe_dump({"objects": str(weights), "scenes": str(weights),
                                       "fractions": {0.5: str(weights)}}))
    study = RealStudy(data_root, str(mapping), progress=False)
    both = study.raw_features(replace(STANDARD, source="concat"), "ukbench", "query", 0)
    one = study.raw_features(STANDARD, "ukbench", "query", 0)
    np.testing.assert_array_equal(both, np.concatenate([one, one], axis=1))
    assert study.resolve(replace(STANDARD, fraction=0.5), "objects") == ("alexnet", str(weights))
    with pytest.raises(ValueError, match="hybrid alexnet checkpoint.*places"):
        study.check(replace(STANDARD, source="hybrid"))
    with pytest.raises(ValueError, match=r"fraction=0\.25 has no checkpoint \(given: \[0\.5\]\)"):
        study.check(replace(STANDARD, fraction=0.25))


def test_table6_candidates_and_feature_dims(scores, data_root, weights, tmp_path):
    mapping = tmp_path / "weights.yaml"
    mapping.write_text(yaml.safe_dump({"objects": str(weights), "scenes": str(weights)}))
    study = RealStudy(data_root, str(mapping), progress=False)
    flowers = optimized_candidates(study, "flowers102")
    holidays = optimized_candidates(study, "holidays")
    assert replace(STANDARD, source="concat") in flowers and replace(STANDARD, depth=13) in flowers
    assert all(c.layer.startswith("fc") and not c.pca_dim for c in flowers)
    assert {c.pooling for c in holidays if c.layer == "conv5"} == {1, 2, 3}
    assert any(c.pca_dim for c in holidays) and not any(c.spatial for c in holidays)
    assert not any(c.source == "hybrid" for c in holidays)  # no hybrid weights given
    assert study.feature_dim() == 4096
    assert study.feature_dim(replace(STANDARD, layer="conv5", pooling=2)) == 256 * 4
    assert study.feature_dim(replace(STANDARD, source="concat")) == 2 * 4096


def test_factors_that_need_imagenet_training_fail_clearly(env, data_root, weights):
    study = RealStudy(data_root, str(weights), progress=False)
    with pytest.raises(ValueError, match="width='large'.*not available on the real profile"):
        study.run("width", factors.width_levels(["medium", "large"]))
    with pytest.raises(ValueError, match="snapshots"):
        factors.early_stopping_levels(study, "fc6")
    with pytest.raises(ValueError, match="data-size factor needs AlexNets trained on ImageNet"):
        study.run("data_size", factors.data_size_levels([0.5, 1.0]))
    with pytest.raises(ValueError, match="fine-tuning torchvision networks is not implemented"):
        study.check(replace(STANDARD, finetune="target"))
    # VGG-16's ImageNet weights are not in this hub cache: said before any compute
    with pytest.raises(WeightsNotFound, match="vgg16.*allow_download=True"):
        study.run("depth", depth_levels([5, 13]))


def test_real_depths_and_layers():
    levels = depth_levels(sorted(REAL_DEPTHS))
    assert [lv.label for lv in levels] == ["5", "8", "10", "13", "16"]
    assert levels[-1].rep.depth == 16 and levels[-1].rep.label() == "objects/medium/d16/fc6"
    assert RealRepresentation(depth=16, layer="conv16").layer == "conv16"
    with pytest.raises(ValueError, match="depth=0 must be an integer >= 1"):
        RealRepresentation(depth=0)
    with pytest.raises(ValueError, match="layer='conv9' is not one of"):
        RealRepresentation(depth=8, layer="conv9")
    with pytest.raises(ValueError, match="pooling=4"):
        RealRepresentation(depth=16, pooling=4)


def test_weights_parameter(weights, tmp_path):
    assert RealWeights.parse("") == RealWeights() == RealWeights.parse("imagenet")
    assert RealWeights.parse(str(weights)).objects == str(weights)
    (tmp_path / "s.pth").write_bytes(b"x")
    mapping = tmp_path / "w.yml"
    mapping.write_text("snapshots: {100: s.pth, 10: s.pth}\n")  # relative to the file
    parsed = RealWeights.parse(mapping)
    assert parsed.snapshots == ((10, str(tmp_path / "s.pth")), (100, str(tmp_path / "s.pth")))
    for text, match in (("scnes: s.pth", "unknown keys"), ("fractions: {2: s.pth}", "in \\(0, 1\\]"),
                        ("scenes: nothere.pth", "scenes='nothere.pth' is not a file")):
        mapping.write_text(text)
        with pytest.raises(ValueError, match=match):
            RealWeights.parse(mapping)
    with pytest.raises(ValueError, match="weights='/no/such.pth' is neither"):
        RealWeights.parse("/no/such.pth")


def test_missing_data_is_said_clearly(env, tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFound, match=r"flowers102 not found: looked for .*flowers-102"):
        RealStudy(tmp_path, tasks=("flowers102",))
    study = RealStudy(tmp_path, progress=False)
    with pytest.raises(ValueError, match="no real dataset found under data_root"):
        study.run("layer", factors.layer_levels(["fc6"]))
    with pytest.raises(ValueError, match=r"tasks \['birds'\] are not real tasks"):
        study.check_tasks(["birds"])
    with pytest.raises(ValueError, match="data_root='/no/such/folder' is not a folder"):
        RealStudy("/no/such/folder")
    p = params.validate("05_layer", {"profile": "real"})
    with pytest.raises(ValueError, match="needs data_root"):
        factors.study_for(p)
    monkeypatch.setenv("TRANSFERLAB_DATA", str(tmp_path))
    assert isinstance(factors.study_for(p), RealStudy)


def test_real_params_files_validate():
    names = sorted(params.SCHEMAS)
    for name in names:
        path = ROOT / "params" / "real" / f"{name}.yaml"
        assert path.exists(), path
        assert path.read_text().lstrip().startswith("#"), f"{path} explains its choices"
        params.load_params("real", name)
    assert params.load_params("real", "02_depth")["depths"] == [5, 13]


# ---------------------------------------------------------------- the notebook


@pytest.mark.slow
def test_layer_notebook_runs_on_the_real_profile(scores, data_root, weights, tmp_path):
    out = tmp_path / "05_layer"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "05_layer.ipynb"), str(tmp_path / "05_layer.ipynb"),
        parameters={"profile": "real", "data_root": str(data_root), "weights": str(weights),
                    "output_dir": str(out)},
        cwd=str(ROOT / "notebooks"), kernel_name=runner.resolve_kernel(None), progress_bar=False)
    table = pd.read_csv(out / "results.csv")
    assert set(table.task) == set(TASKS)  # tasks=[]: every dataset under data_root
    for task in TASKS:
        assert sorted(table[table.task == task].level) == sorted(LAYERS), task
    assert table.score.notna().all() and (table.factor == "layer").all()
    # the kernel read the features this process cached: the same FC6 scores
    fc6 = table[table.level == "fc6"].set_index("task").score
    for task in TASKS:
        assert fc6[task] == pytest.approx(scores[task]["score"])
    assert table.representation.str.startswith("objects/medium/d5/").all()
    assert len(pd.read_csv(out / "claims.csv")) >= 1


def test_batch_run_skips_what_the_real_backend_cannot_do_and_refuses_it_by_name(
        env, data_root, weights, tmp_path):
    from transferlab import runner

    err = io.StringIO()
    overrides = {"data_root": str(data_root), "weights": str(weights)}
    jobs = runner.plan("real", out=tmp_path / "r", overrides=overrides, stderr=err)
    names = [job.name for job in jobs]
    assert "05_layer" in names and "09_optimized" in names
    for name in ("00_world", "01_width", "03_early_stopping", "07_fine_tuning"):
        assert name not in names and f"skipping {name}: " in err.getvalue()
    assert all(job.parameters["weights"] == str(weights) for job in jobs)
    with pytest.raises(ValueError, match="notebook 01_width: width='tiny'"):
        runner.plan("real", only=["width"], out=tmp_path / "r", overrides=overrides)
    with pytest.raises(ValueError, match="needs data_root"):
        runner.plan("real", only=["layer"], out=tmp_path / "r")


# ---------------------------------------------------------------- any torchvision network


def test_depth_levels_name_architectures_of_the_weights_file(env, data_root, weights, tmp_path):
    study = RealStudy(data_root, str(weights), progress=False)
    with pytest.raises(ValueError, match=r"depth=7 has no network here; depth levels .*"
                                         r"\{5: 'alexnet', 8: 'vgg11'.*depths: \{18: resnet18"):
        study.check(RealRepresentation(depth=7))
    mapping = tmp_path / "w.yaml"
    mapping.write_text(f"objects: {weights}\ndepths: {{18: resnet18, 50: resnet50}}\n")
    parsed = RealWeights.parse(mapping)
    assert parsed.depth_archs() == {5: "alexnet", 18: "resnet18", 50: "resnet50"}
    study = RealStudy(data_root, str(mapping), progress=False)
    levels = depth_levels([5, 18])
    assert study.resolve(levels[1].rep, "objects") == ("resnet18", "imagenet")
    assert study.resolve(levels[0].rep, "objects") == ("alexnet", str(weights))
    with pytest.raises(WeightsNotFound, match="resnet18 .*allow_download=True"):
        study.check(levels[1].rep)  # not in this hub cache: said before any compute
    for text, match in (("depths: {18: resnet19}", r"depths\[18\]='resnet19' is not a torchvision"),
                        ("depths: [resnet18]", "depths must map a depth level"),
                        ("arch: alexnett", "arch='alexnett' is not a torchvision classifier"),
                        ("arch: [x", "is not valid YAML")):
        mapping.write_text(text)
        with pytest.raises(ValueError, match=match):
            RealWeights.parse(mapping)
    assert RealWeights.parse("resnet50") == RealWeights(arch="resnet50")


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory) -> Path:
    """A random ResNet-18 checkpoint and the weights file that names its architecture."""
    folder = tmp_path_factory.mktemp("resnet")
    torch.manual_seed(0)
    torch.save(tvm.resnet18(num_classes=10).state_dict(), folder / "resnet18_mine.pth")
    (folder / "weights.yaml").write_text("arch: resnet18\nobjects: resnet18_mine.pth\n")
    return folder / "weights.yaml"


def test_a_resnet_runs_the_layer_and_source_notebooks_levels(env, data_root, resnet_weights):
    study = RealStudy(data_root, str(resnet_weights), tasks=("flowers102",), progress=False)
    table = study.run("layer", factors.layer_levels([]))
    assert list(table.level) == LAYERS and table.score.notna().all()
    assert table.weights.str.fullmatch(r"resnet18/resnet18_mine-[0-9a-f]{12}").all()
    fc6, fc7 = (study.raw_features(replace(STANDARD, layer=n), "flowers102", "test", 0)
                for n in ("fc6", "fc7"))
    assert fc6.shape == (9, 512)
    np.testing.assert_array_equal(fc6, fc7)  # one Linear head: the same pooled penultimate
    assert study.feature_dim() == 512
    assert study.feature_dim(replace(STANDARD, layer="conv4", pooling=2)) == 256 * 4
    with pytest.raises(ValueError, match="scenes resnet18 checkpoint"):
        study.check(replace(STANDARD, source="scenes"))


def test_results_name_the_weights(scores, data_root, weights):
    study = RealStudy(data_root, str(weights), tasks=("flowers102",), progress=False)
    table = study.run("layer", factors.layer_levels(["fc6", "fc7"]))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    assert set(table.weights) == {f"alexnet/alexnet_random-{digest}"}
    assert list(results.without_replicates(table).columns)[-1] == "weights"


def test_progress_bars_on_decoding_and_features(env, data_root, weights, tmp_path, capfd):
    study = RealStudy(data_root, str(weights), tasks=("ukbench",), progress=True,
                      image_cache=tmp_path / "images", cache=Cache(tmp_path / "cache"))
    study.raw_features(replace(STANDARD, layer="conv2"), "ukbench", "query", 0)
    err = capfd.readouterr().err
    assert "decoding ukbench/train at 40 px: 100%" in err  # database and query: the same files
    assert "features ukbench/query alexnet/alexnet_random-" in err and "16/16" in err


def test_a_features_unit_reports_its_chunks_in_order(env, data_root, weights, tmp_path,
                                                     monkeypatch):
    from transferlab import progress
    from transferlab.real import study as real_study

    monkeypatch.setattr(real_study, "CHUNK", 5)  # 16 database images: chunks of 5, 5, 5, 1
    study = RealStudy(data_root, str(weights), tasks=("ukbench",), progress=False,
                      image_cache=tmp_path / "images", cache=Cache(tmp_path / "cache"))
    got: list[float] = []
    with progress.reporting_to(got.append):
        study.raw_features(STANDARD, "ukbench", "database", 0)
    # Each chunk's extraction reports its own whole, mapped onto the chunk's share.
    assert got == pytest.approx([5 / 16, 10 / 16, 15 / 16, 1.0])
