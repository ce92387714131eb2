import pytest
import torch
from torchvision.models.feature_extraction import get_graph_node_names
from transferlab import architecture as arch
from transferlab import networks as nw
from transferlab.architecture import DEPTHS, WIDTHS, NetConfig
from transferlab.features import graph_node_names

pytestmark = pytest.mark.usefixtures("one_thread")


def test_width_levels_roughly_double_params_with_fc6_fixed():
    params = [arch.complexity(NetConfig(width=w))["params"] for w in WIDTHS]
    ratios = [b / a for a, b in zip(params, params[1:], strict=False)]
    assert all(1.6 <= r <= 2.6 for r in ratios), ratios
    fc6 = {w: nw.build(NetConfig(width=w)).fc6[0].out_features for w in WIDTHS}
    assert set(fc6.values()) == {arch.FC6_DEFAULT}
    # the other layers do change with width
    assert len({arch.fc7_size(NetConfig(width=w)) for w in WIDTHS}) == len(WIDTHS)


def test_complexity_counts_match_the_built_network():
    cfg = NetConfig(width="small", depth=7, n_classes=10, input_size=20)
    net = nw.build(cfg)
    assert arch.complexity(cfg)["params"] == sum(p.numel() for p in net.parameters())
    # flops by hand for the head: 2 x (fc6_in*fc6 + fc6*fc7 + fc7*classes) is included
    head = 2 * (arch.fc6_inputs(cfg) * cfg.fc6 + cfg.fc6 * arch.fc7_size(cfg) + arch.fc7_size(cfg) * 10)
    assert arch.complexity(cfg)["flops"] > head


def test_medium_depth5_is_small_enough_for_cpu_training():
    c = arch.complexity(NetConfig())
    assert 1_000_000 <= c["params"] <= 2_500_000


@pytest.mark.parametrize("depth", DEPTHS)
def test_all_depths_build_and_run_at_test_size(depth):
    cfg = NetConfig(depth=depth, width="tiny", n_classes=7, input_size=16)
    net = nw.build(cfg).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 7)
    assert arch.layer_names(cfg) == [f"conv{i}" for i in range(1, depth + 1)] + ["fc6", "fc7", "fc8"]
    shapes = arch.output_shapes(cfg)
    assert list(shapes) == arch.layer_names(cfg)
    assert shapes["fc6"] == (cfg.fc6,)
    # the arithmetic agrees with a dry run of the built network
    x, ran = torch.zeros(1, 3, 16, 16), {}
    with torch.no_grad():
        for name, child in net.named_children():
            x = child(x)
            if name.startswith(("conv", "fc")):
                ran[name] = tuple(x.shape[1:])
    assert ran == shapes


def test_depth13_works_at_24_and_28_px():
    for size in (24, 28):
        cfg = NetConfig(depth=13, input_size=size)
        net = nw.build(cfg).eval()
        with torch.no_grad():
            assert net(torch.randn(1, 3, size, size)).shape == (1, 100)


def test_graph_node_names_are_the_layer_names():
    cfg = NetConfig(depth=9, width="tiny", input_size=16)
    net = nw.build(cfg)
    nodes = graph_node_names(net)
    for name in arch.layer_names(cfg):
        assert name in nodes
    # without our tracer settings the blocks still answer to truncated names
    assert "conv9.2" in get_graph_node_names(net)[1]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"width": "huge"}, "width='huge'"),
        ({"depth": 6}, "depth=6"),
        ({"n_classes": 1}, "n_classes=1"),
        ({"input_size": 4}, "input_size=4"),
        ({"dropout": 1.0}, "dropout=1.0"),
    ],
)
def test_bad_configs_fail_at_construction(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")) as err:
        NetConfig(**kwargs)
    if "width" in kwargs:
        assert "medium" in str(err.value)  # lists the valid choices
    if "depth" in kwargs:
        assert "13" in str(err.value)


def test_unknown_layer_name_is_a_clear_error():
    cfg = NetConfig(depth=5)
    assert arch.check_layer(cfg, "conv5") == "conv5"
    with pytest.raises(ValueError, match=r"layer='conv7'.*conv1.*fc8"):
        arch.check_layer(cfg, "conv7")


def test_crop_size_matches_caffe_ratio():
    assert arch.crop_size(256) == 227
    assert arch.crop_size(32) == 28
    assert arch.crop_size(24) == 21
    with pytest.raises(ValueError, match="image_size"):
        arch.crop_size(0)


def test_replace_head_changes_only_fc8():
    net = nw.build(NetConfig(width="tiny", input_size=16))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    nw.replace_head(net, 5)
    after = net.state_dict()
    assert after["fc8.1.weight"].shape == (5, arch.fc7_size(NetConfig(width="tiny")))
    for k, v in before.items():
        if not k.startswith("fc8"):
            assert torch.equal(v, after[k])


def test_inserted_layers_start_near_the_identity():
    import torch
    from transferlab.architecture import NetConfig, conv_plan
    from transferlab.networks import build

    cfg = NetConfig(depth=13, input_size=28)
    torch.manual_seed(0)
    net = build(cfg)
    plan = conv_plan(cfg)
    inserted = [c for c in plan if c.inserted]
    assert len(inserted) == 13 - 5 and all(c.c_in == c.c_out for c in inserted)
    for c in plan:
        w = getattr(net, c.name)[0].weight
        centre = w[:, :, c.kernel // 2, c.kernel // 2]
        if c.inserted:  # the identity plus a little noise
            assert torch.allclose(centre.diagonal(), torch.ones(c.c_out), atol=0.5)
            assert centre.diagonal().mean() > 0.8
        else:
            assert centre.diagonal().abs().mean() < 0.5


def test_depth_adds_layers_where_vgg_does():
    # VGG-16 over AlexNet's three resolutions is (7, 3, 3): a depth adds layers at the two
    # higher resolutions, never at the 7x7 stage where a few 3x3 layers see the whole image.
    for depth in DEPTHS:
        plan = arch.conv_plan(NetConfig(depth=depth))
        lowest = plan[-1].size
        assert all(c.size > lowest for c in plan if c.inserted), depth
        assert sum(c.inserted for c in plan) == depth - 5
    sizes = [c.size for c in arch.conv_plan(NetConfig(depth=13, input_size=28))]
    assert [sizes.count(s) for s in (28, 14, 7)] == [7, 3, 3]
