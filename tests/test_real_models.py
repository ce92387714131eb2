"""Real networks: weights from a file or the hub cache, Caffe layer names, no network."""

from __future__ import annotations

import os
import pickle
import socket
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm
import torchvision.models._api as tv_api
from torchvision.models.feature_extraction import create_feature_extractor
from transferlab.real import DEPTH_ARCHS, WeightsNotFound, load_model
from transferlab.real.models import hub_weights_path


def _refuse(*args, **kwargs):
    raise AssertionError("a test tried to reach the network")


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    torch.set_num_threads(2)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))  # an empty hub cache per test
    yield
    torch.hub.set_dir(old)


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory) -> tuple[Path, dict]:
    """A randomly initialised torchvision AlexNet's state dict, saved as a checkpoint."""
    torch.manual_seed(1)
    sd = tvm.alexnet().state_dict()
    path = tmp_path_factory.mktemp("weights") / "alexnet_random.pth"
    torch.save(sd, path)
    return path, sd


def features(model, x):
    fx = create_feature_extractor(model.module, return_nodes=model.return_nodes)
    with torch.no_grad():
        return fx(x)


def test_alexnet_from_a_file_has_caffe_layers(alexnet_file):
    path, sd = alexnet_file
    model = load_model("alexnet", path)
    assert not model.module.training and model.input_size == 224 and model.standard_layer == "fc6"
    assert model.name.startswith("alexnet/alexnet_random-")
    for key, value in sd.items():
        assert torch.equal(model.module.net.state_dict()[key], value)
    assert list(model.layers) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert model.layers["conv1"] == "net.features.1" and model.layers["fc8"] == "net.classifier.6"
    x = torch.rand(2, 3, 64, 64)  # AdaptiveAvgPool lets small inputs through
    out = features(model, x)
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "conv1": (2, 64, 15, 15),
        "conv2": (2, 192, 7, 7),
        "conv3": (2, 384, 3, 3),
        "conv4": (2, 256, 3, 3),
        "conv5": (2, 256, 3, 3),
        "fc6": (2, 4096),
        "fc7": (2, 4096),
        "fc8": (2, 1000),
    }
    for name in ("conv1", "conv5", "fc6", "fc7"):  # post-ReLU, as Caffe's in-place ReLU
        assert out[name].min() >= 0
    assert out["fc8"].min() < 0  # logits
    # the module normalizes [0, 1] input itself
    ref = tvm.alexnet()
    ref.load_state_dict(sd)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = ref.eval()((x - mean) / std)
    torch.testing.assert_close(out["fc8"], expected)
    # conv1 is what the first conv + ReLU make of the normalized input: not overwritten later
    with torch.no_grad():
        conv1 = torch.relu(ref.features[0]((x - mean) / std))
    torch.testing.assert_close(out["conv1"], conv1)


def test_vgg11_random_init_layers_and_seed():
    model = load_model("vgg11", None, seed=3)
    assert DEPTH_ARCHS["vgg11"] == 8
    assert [k for k in model.layers if k.startswith("conv")] == [f"conv{i}" for i in range(1, 9)]
    out = features(model, torch.rand(1, 3, 32, 32))
    assert out["conv1"].shape == (1, 64, 32, 32) and out["conv8"].shape == (1, 512, 2, 2)
    assert out["fc6"].shape == (1, 4096) and out["fc8"].shape == (1, 1000)
    assert model.name == "vgg11/random-seed3"


def test_random_init_is_seeded():
    w = load_model("alexnet", None, seed=3).module.net.features[0].weight
    assert torch.equal(w, load_model("alexnet", None, seed=3).module.net.features[0].weight)
    assert not torch.equal(w, load_model("alexnet", None, seed=4).module.net.features[0].weight)


def test_imagenet_weights_come_from_the_hub_cache_only(alexnet_file):
    path, sd = alexnet_file
    target = hub_weights_path("alexnet")
    assert target.name == "alexnet-owt-7be5be79.pth" and target.parent.parent == Path(torch.hub.get_dir())
    with pytest.raises(WeightsNotFound) as err:
        load_model("alexnet")
    msg = str(err.value)
    assert str(target) in msg and "allow_download=True" in msg and "TORCH_HOME" in msg
    target.parent.mkdir(parents=True)
    torch.save({"features.0.weight": Path("/")}, target)  # not plain tensors: refused
    loader = tv_api.load_state_dict_from_url
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_model("alexnet")
    assert tv_api.load_state_dict_from_url is loader  # torchvision's loader is restored
    target.unlink()  # the refused file
    os.link(path, target)  # as if downloaded earlier (a link: the file is AlexNet-sized)
    model = load_model("alexnet", "imagenet")
    assert model.name == "alexnet/IMAGENET1K_V1"
    assert torch.equal(model.module.net.classifier[6].weight, sd["classifier.6.weight"])


def test_allow_download_fetches_into_the_hub_cache(alexnet_file, monkeypatch):
    path, sd = alexnet_file
    fetched = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        fetched.append(url)
        os.link(path, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = load_model("alexnet", "imagenet", allow_download=True)
    assert fetched == [tvm.AlexNet_Weights.DEFAULT.url]
    assert hub_weights_path("alexnet").exists()
    assert torch.equal(model.module.net.features[0].weight, sd["features.0.weight"])


def test_places_style_checkpoint_with_other_classes(tmp_path):
    torch.manual_seed(2)
    net = tvm.resnet18(num_classes=365)
    wrapped = {
        "epoch": 90,
        "arch": "resnet18",
        "best_prec1": 54.7,
        "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
    }
    path = tmp_path / "resnet18_places365.pth.tar"
    torch.save(wrapped, path)
    model = load_model("resnet18", path)
    assert model.standard_layer == "fc6"
    out = features(model, torch.rand(2, 3, 64, 64))
    assert out["fc6"].shape == (2, 512) and out["fc8"].shape == (2, 365)
    assert torch.equal(model.module.net.fc.weight, net.fc.weight)


def test_other_classifier_exposes_penultimate_and_logits():
    model = load_model("mobilenet_v3_small", None)
    out = features(model, torch.rand(1, 3, 64, 64))
    assert out["fc6"].shape == (1, 576)  # the pooled trunk, the head's input
    assert out["fc7"].shape == (1, 1024) and out["fc8"].shape == (1, 1000)
    head = model.module.net.classifier[3]
    torch.testing.assert_close(head(out["fc7"]), out["fc8"])
    assert [out[f"conv{k}"].shape[-1] for k in range(1, 6)] == [32, 16, 8, 4, 2]  # strides 2..32


def test_resnet_layers_are_its_stages_and_pooled_penultimate():
    """conv1 = the stem, conv2..conv5 = ResNet's conv2_x..conv5_x stage outputs (not a tensor
    inside a block that the shortcut bypasses), fc6 = fc7 = the pooled 2048-d penultimate."""
    model = load_model("resnet50", None)
    assert model.layers == {
        "conv1": "net.relu", "conv2": "net.layer1.2.relu_2", "conv3": "net.layer2.3.relu_2",
        "conv4": "net.layer3.5.relu_2", "conv5": "net.layer4.2.relu_2",
        "fc6": "net.flatten", "fc7": "net.flatten", "fc8": "net.fc"}
    assert model.unique_nodes(["conv5", "fc6", "fc7"]) == (
        {"conv5": "net.layer4.2.relu_2", "fc6": "net.flatten"}, {"fc7": "fc6"})
    out = features(model, torch.rand(1, 3, 224, 224))
    assert out["conv2"].shape == (1, 256, 56, 56) and out["fc6"].shape == (1, 2048)


@pytest.mark.parametrize("arch, present", [
    ("densenet121", [f"conv{k}" for k in range(1, 6)] + ["fc6", "fc7", "fc8"]),
    ("convnext_tiny", [f"conv{k}" for k in range(1, 6)] + ["fc6", "fc7", "fc8"]),  # 4x4 stem
    ("vit_b_16", ["conv4", "fc6", "fc7", "fc8"]),  # patch embedding only, then tokens
])
def test_other_families_name_what_they_have(arch, present):
    model = load_model(arch, None)
    assert list(model.layers) == present and model.standard_layer == "fc6"


def test_errors(tmp_path, alexnet_file):
    with pytest.raises(ValueError, match="arch='alexnet2' is not a torchvision classifier; valid: .*vgg16"):
        load_model("alexnet2")
    with pytest.raises(FileNotFoundError, match="neither 'imagenet', None, nor an existing"):
        load_model("alexnet", tmp_path / "nothing.pth")
    with pytest.raises(ValueError, match="does not fit arch='vgg11'"):
        load_model("vgg11", alexnet_file[0])
    bad = tmp_path / "list.pth"
    torch.save([1, 2], bad)
    with pytest.raises(ValueError, match=r"holds a list, not a state_dict.*"
                                         r"torch.save\(model.state_dict\(\), path\)"):
        load_model("alexnet", bad)


def test_a_pickled_whole_model_is_refused_with_how_to_save_a_state_dict(tmp_path):
    whole = tmp_path / "whole_model.pth"
    torch.save(tvm.alexnet(), whole)  # the model object, not its state_dict
    with pytest.raises(ValueError) as err:
        load_model("alexnet", whole)
    msg = str(err.value)
    assert f"weights={str(whole)!r} is not a state_dict" in msg and "a whole model" in msg
    assert "torchvision.models.alexnet.AlexNet" in msg and "weights_only` set to `False" not in msg
    assert "torch.save(model.state_dict(), path)" in msg
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable torch checkpoint"):
        load_model("alexnet", tmp_path / "text.pth")


def test_a_checkpoint_of_another_architecture_says_how_to_name_it(alexnet_file, tmp_path):
    path = tmp_path / "resnet18_mine.pth"
    torch.save(tvm.resnet18().state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit arch='alexnet'.*`arch: resnet50` and "
                                         r"`objects: resnet18_mine.pth`"):
        load_model("alexnet", path)


def test_allow_download_offline_says_what_to_place_where(monkeypatch):
    import urllib.error

    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFound) as err:
        load_model("alexnet", "imagenet", allow_download=True)
    msg = str(err.value)
    assert "downloading ImageNet weights for alexnet" in msg and "failed" in msg
    assert tvm.AlexNet_Weights.DEFAULT.url in msg and str(hub_weights_path("alexnet")) in msg
    assert "name resolution" in msg and "TORCH_HOME" in msg
