import numpy as np
import pytest
import torch
from transferlab import architecture as arch
from transferlab import features as ft
from transferlab import networks as nw
from transferlab import progress
from transferlab.cache import Cache
from transferlab.training import to_input

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = arch.NetConfig(width="tiny", depth=5, n_classes=6, input_size=14)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = nw.build(CFG)
    # non-trivial BatchNorm statistics, so that folding them is exercised
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)


@pytest.fixture
def fp32(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")


def test_twelve_jitters_and_their_geometry():
    boxes = ft.jitter_boxes(32, 28)
    assert len(boxes) == len(ft.JITTERS) == 12
    top, left, size, mirror = boxes.T
    assert mirror.tolist() == [0] * 6 + [1] * 6
    assert (boxes[6:, :3] == boxes[:6, :3]).all()  # mirrors of the same 6 windows
    corners = {(t, x) for t, x, _ in boxes[:4, :3]}
    assert corners == {(0, 0), (0, 4), (4, 0), (4, 4)}
    assert tuple(boxes[ft.JITTERS.index("centre"), :3]) == (2, 2, 28)
    assert tuple(boxes[ft.JITTERS.index("whole"), :3]) == (0, 0, 32)
    assert (size[[0, 1, 2, 3, 4]] == 28).all()
    with pytest.raises(ValueError, match="crop=40"):
        ft.jitter_boxes(32, 40)


@pytest.mark.parametrize("pooling", [1, 2, 3])
def test_pooling_sets_conv_dims_and_leaves_fc_alone(model, images, pooling):
    out = ft.extract(model, images, ["conv2", "conv5", "fc6", "fc8"], pooling=pooling,
                     jitter=False, progress=False)
    shapes = arch.output_shapes(CFG)
    assert out["conv2"].shape == (20, shapes["conv2"][0] * pooling**2)
    assert out["conv5"].shape == (20, shapes["conv5"][0] * pooling**2)
    assert out["fc6"].shape == (20, CFG.fc6)
    assert out["fc8"].shape == (20, 6)
    assert all(v.dtype == np.float32 for v in out.values())


def test_extraction_reports_its_progress_by_batch(model, images):
    got: list[float] = []
    with progress.reporting_to(got.append):
        ft.extract(model, images, ["fc6"], jitter=False, batch_size=8, progress=False)
        with progress.span(0.5, 1.0):
            ft.extract_patches(model, images, "conv5", np.array([[0, 0, 1, 1.0]]),
                               batch_size=16, progress=False)
    assert got == pytest.approx([8 / 20, 16 / 20, 1.0, 0.5 + 0.5 * 16 / 20, 1.0])


def test_bad_pooling_and_unknown_layer_are_clear_errors(model, images):
    with pytest.raises(ValueError, match=r"pooling=4 is not one of \(1, 2, 3\)"):
        ft.extract(model, images, ["conv1"], pooling=4, progress=False)
    with pytest.raises(ValueError, match=r"\['conv9'\].*fc6"):
        ft.extract(model, images, ["fc6", "conv9"], progress=False)
    with pytest.raises(ValueError, match="uint8"):
        ft.extract(model, images.astype(np.float32), ["fc6"], progress=False)
    with pytest.raises(ValueError, match="name one node twice"):
        ft.extract(model, images, {"a": "fc6", "b": "fc6"}, progress=False)


def test_features_are_the_mean_over_the_12_jitters(model, images, fp32):
    got = ft.extract(model, images, ["fc7", "conv3"], pooling=2, progress=False)
    fx = ft._extractor(model, {"fc7": "fc7", "conv3": "conv3"})
    pixels = torch.from_numpy(images)
    sums = {"fc7": 0.0, "conv3": 0.0}
    with torch.no_grad():
        for top, left, size, mirror in ft.jitter_boxes(16, 14).tolist():
            crop = pixels[:, top : top + size, left : left + size]
            crop = crop.flip(2) if mirror else crop
            x = torch.nn.functional.interpolate(
                to_input(crop), size=(14, 14), mode="bilinear", antialias=True
            ) if size != 14 else to_input(crop)
            out = fx(x)
            sums["fc7"] = sums["fc7"] + out["fc7"].numpy()
            conv = torch.nn.functional.adaptive_max_pool2d(out["conv3"], 2).flatten(1)
            sums["conv3"] = sums["conv3"] + conv.numpy()
    np.testing.assert_allclose(got["fc7"], sums["fc7"] / 12, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["conv3"], sums["conv3"] / 12, rtol=1e-4, atol=1e-5)


def test_folded_batchnorm_matches_the_model(model, images, fp32):
    x = to_input(torch.from_numpy(images[:, 1:15, 1:15]))
    with torch.no_grad():
        want = model(x).numpy()
    got = ft.extract(model, images, ["fc8"], jitter=False, progress=False)["fc8"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_jittered_features_are_mirror_invariant(model, images, fp32):
    a = ft.extract(model, images, ["fc6"], progress=False)["fc6"]
    b = ft.extract(model, images[:, :, ::-1].copy(), ["fc6"], progress=False)["fc6"]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    c = ft.extract(model, images, ["fc6"], jitter=False, progress=False)["fc6"]
    assert not np.allclose(a, c, atol=1e-3)  # the jitter mean is not the centre crop


def test_layer_mapping_renames_outputs(model, images):
    by_list = ft.extract(model, images, ["fc6"], jitter=False, progress=False)
    by_map = ft.extract(model, images, {"standard": "fc6"}, jitter=False, progress=False)
    assert list(by_map) == ["standard"]
    np.testing.assert_array_equal(by_map["standard"], by_list["fc6"])


def test_batch_size_does_not_change_features(model, images):
    a = ft.extract(model, images, ["conv4"], batch_size=7, progress=False)["conv4"]
    b = ft.extract(model, images, ["conv4"], batch_size=64, progress=False)["conv4"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_patches_shape_and_centre_box_equals_centre_crop(model, images, fp32):
    boxes = np.array([[1 / 16, 1 / 16, 15 / 16, 15 / 16], [0, 0, 0.5, 0.5], [0, 0, 1, 1]])
    out = ft.extract_patches(model, images, "conv5", boxes, pooling=2, progress=False)
    assert out.shape == (20, 3, arch.output_shapes(CFG)["conv5"][0] * 4)
    centre = ft.extract(model, images, ["conv5"], pooling=2, jitter=False, progress=False)
    np.testing.assert_allclose(out[:, 0], centre["conv5"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[:, 1], out[:, 0])
    with pytest.raises(ValueError, match="boxes"):
        ft.extract_patches(model, images, "conv5", np.array([[0.5, 0, 0.2, 1]]), progress=False)


def test_postprocess_is_l2_then_signed_sqrt():
    x = np.array([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0]])
    y = ft.postprocess(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[0], [np.sqrt(0.6), -np.sqrt(0.8), 0.0], rtol=1e-6)
    np.testing.assert_array_equal(y[1], 0.0)  # no NaN for an all-zero feature
    np.testing.assert_allclose(np.sign(y) * y**2, x / np.linalg.norm(x, axis=1, keepdims=True)
                               .clip(1e-12), atol=1e-6)


def test_postprocess_gives_the_formulas_bits_and_leaves_its_input_alone(monkeypatch):
    x = np.random.default_rng(3).normal(size=(50, 6, 9)).astype(np.float32)
    x[0, 0] = 0.0
    x[1, 1, :4] = -0.0
    before = x.copy()
    unit = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(1e-12))
    want = np.sign(unit) * np.sqrt(np.abs(unit))
    got = ft.postprocess(x)
    assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()  # -0.0 included
    assert np.array_equal(x, before) and got is not x
    monkeypatch.setattr(ft, "_ROWS", 7)  # blocks of rows, not whole arrays: the same bits
    assert ft.postprocess(x).tobytes() == want.tobytes()
    mine = x.copy()
    assert ft.postprocess(mine, in_place=True) is mine and mine.tobytes() == want.tobytes()
    for bad in (x.astype(np.float64), x[:, ::2], np.asfortranarray(x[0])):
        with pytest.raises(ValueError, match="in_place"):
            ft.postprocess(bad, in_place=True)


def test_concat_side_by_side():
    a, b = np.ones((4, 3)), np.zeros((4, 2))
    c = ft.concat(a, b)
    assert c.shape == (4, 5) and c.dtype == np.float32
    np.testing.assert_array_equal(c[:, :3], 1)
    with pytest.raises(ValueError, match="cannot concatenate"):
        ft.concat(a, np.zeros((3, 2)))


def test_cached_features_hit_and_key_on_pooling(tmp_path, model, images, monkeypatch):
    cache = Cache(tmp_path)
    args = ({"network": "test"}, lambda: model, images, {"data": "x"}, ["conv5", "fc6"])
    first = ft.features(*args, pooling=1, cache=cache, jitter=False, progress=False)
    real = ft.extract
    monkeypatch.setattr(ft, "extract", lambda *a, **k: pytest.fail("extracted again"))
    again = ft.features(*args, pooling=1, cache=cache, jitter=False, progress=False)
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])
    monkeypatch.setattr(ft, "extract", real)
    pooled = ft.features(*args, pooling=2, cache=cache, jitter=False, progress=False)
    assert pooled["conv5"].shape[1] == 4 * first["conv5"].shape[1]


def test_torchvision_style_node_names(images):
    import torchvision

    torch.manual_seed(0)
    alex = torchvision.models.alexnet(num_classes=5).eval()
    big = np.random.default_rng(1).integers(0, 256, (2, 72, 72, 3), dtype=np.uint8)
    out = ft.extract(alex, big, {"fc6": "classifier.2", "conv5": "features.11"}, pooling=3,
                     jitter=False, input_size=64, progress=False)
    assert out["fc6"].shape == (2, 4096) and out["conv5"].shape == (2, 256 * 9)
