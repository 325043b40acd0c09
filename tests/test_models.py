"""Networks: every registered config builds and runs; click disks, points, attention, gradients, pretrained loading."""

import logging

import pytest
import torch

from iseg.clicks import Click
from iseg.models import ISModel, ModelConfig, build_model, clicks_to_points, list_models, load_model_config
from iseg.models.attention import ClickAttention, gather_at_clicks
from iseg.models.click_encoder import click_disks
from iseg.models.hrnet import HRNet
from iseg.checksum import sha256_of, verify_sha256
from iseg.models.pretrained import MOBILENET_V2_SHA256, mobilenet_v2_imagenet_path

torch.set_num_threads(1)


def empty_points(batch: int, slots: int) -> torch.Tensor:
    return torch.full((batch, 2 * slots, 3), -1.0)


@pytest.fixture(scope="module")
def tiny() -> ISModel:
    torch.manual_seed(0)
    return build_model("ifpn_tiny")


def test_registry_lists_the_paper_and_cpu_configs():
    assert {"ifpn_hrnet18", "ritm_hrnet18", "ifpn_lite", "ifpn_tiny"} <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_every_config_builds_and_runs_at_an_odd_size(name):
    model = build_model(name).eval()
    points = empty_points(1, 2)
    points[0, 0] = torch.tensor([0.0, 130.0, 0.0])  # positive on the top-right corner
    points[0, 2] = torch.tensor([96.0, 0.0, 1.0])   # negative on the bottom-left corner
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 97, 131), points, torch.zeros(1, 1, 97, 131))
    for key in ("instances", "instances_aux"):
        assert out[key].shape == (1, 1, 97, 131)
        assert out[key].dtype == torch.float32
        assert torch.isfinite(out[key]).all()


def test_paper_sizes_and_ifpn_additions():
    ifpn = build_model("ifpn_hrnet18")
    ritm = build_model("ritm_hrnet18")
    assert ifpn.backbone.feature_channels == (18, 36, 72, 144)
    assert ifpn.attention.query.out_channels == 3 * 90 and ifpn.attention.value.out_channels == 3 * 270
    assert ifpn.half_fuse[0][0].in_channels == 270 + 64 and ifpn.half_fuse[1][0].out_channels == 270
    assert ifpn.head.pre[0].out_channels == 128  # OCR width 64
    assert ritm.attention is None and not ritm.config.low_level
    extra = sum(p.numel() for p in ifpn.parameters()) - sum(p.numel() for p in ritm.parameters())
    assert 1.5e6 < extra < 2.5e6  # ~2 M extra parameters (ifpn.md)


def test_hrnet_parameter_names_follow_the_official_checkpoints():
    keys = HRNet(18).state_dict().keys()
    for key in ("conv1.weight", "bn2.running_mean", "layer1.0.downsample.0.weight", "layer1.3.conv3.weight",
                "transition1.0.0.weight", "transition1.1.0.0.weight", "transition3.3.0.1.weight",
                "stage2.0.branches.1.3.conv2.weight", "stage3.3.fuse_layers.0.2.0.weight",
                "stage4.2.fuse_layers.3.0.2.0.weight", "stage4.2.fuse_layers.3.0.1.1.running_var"):
        assert key in keys


def test_config_round_trip_overrides_and_errors(tmp_path):
    config = load_model_config("ifpn_tiny")
    assert config.name == "ifpn_tiny" and ModelConfig.from_dict(config.to_dict()) == config
    assert build_model("ifpn_tiny", ocr_width=4).head.pre[0].out_channels == 8
    path = tmp_path / "mine.yaml"
    path.write_text("backbone: hrnet\nhrnet_width: 4\nhrnet_stem_width: 8\nhrnet_stage1_blocks: 1\n"
                    "hrnet_blocks: 1\nhrnet_modules: [1, 1, 1]\nclick_attention: false\nlow_level: false\n")
    assert build_model(path).config.name == "mine"
    with pytest.raises(ValueError, match="unknown model 'nope'.*ifpn_lite"):
        build_model("nope")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['ocr_widht'\]"):
        build_model("ifpn_tiny", ocr_widht=3)
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        build_model("ifpn_tiny", backbone="resnet")


def test_click_disks_radius_5():
    points = empty_points(1, 2)
    points[0, 0] = torch.tensor([20.0, 30.0, 0.0])  # positive, interior
    points[0, 2] = torch.tensor([0.0, 0.0, 1.0])    # negative, corner
    disks = click_disks(points, (40, 50), radius=5)
    assert disks.shape == (1, 2, 40, 50)
    assert disks[0, 0].sum() == 81  # lattice points with dr^2 + dc^2 <= 25
    assert disks[0, 0, 20, 35] == 1 and disks[0, 0, 24, 33] == 1 and disks[0, 0, 24, 34] == 0
    assert disks[0, 1].sum() == 26  # the quarter disk inside the image, axes included
    assert click_disks(empty_points(2, 3), (7, 9), radius=5).sum() == 0


def test_clicks_to_points_layout():
    clicks = [Click(1, 2, True), Click(3, 4, False), Click(5, 6, True)]
    points = clicks_to_points([clicks, []])
    assert points.shape == (2, 4, 3)
    assert points[0].tolist() == [[1, 2, 0], [5, 6, 2], [3, 4, 1], [-1, -1, -1]]
    assert (points[1] == -1).all()
    assert clicks_to_points([clicks], slots=24).shape == (1, 48, 3)
    with pytest.raises(ValueError, match="do not fit in 1 slots"):
        clicks_to_points([clicks], slots=1)


def test_gather_uses_coordinates_divided_by_stride():
    features = torch.arange(2 * 5 * 6, dtype=torch.float32).view(1, 2, 5, 6)
    points = torch.tensor([[[9.0, 23.0, 0.0], [-1.0, -1.0, -1.0]]])
    gathered, valid = gather_at_clicks(features, points, stride=4)
    assert gathered[0, :, 0].tolist() == [features[0, 0, 2, 5].item(), features[0, 1, 2, 5].item()]
    assert valid.tolist() == [[True, False]]


def attention_with_gamma(channels: int = 6) -> ClickAttention:
    torch.manual_seed(0)
    module = ClickAttention(channels, channels, heads=3, dim=4).eval()
    with torch.no_grad():
        module.gamma.fill_(0.7)
    return module


def test_attention_without_clicks_is_the_identity_path():
    module = attention_with_gamma()
    x = torch.randn(2, 6, 9, 11)
    with torch.no_grad():
        out = module(x, x, empty_points(2, 24), stride=4)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, module.out(x))


def test_attention_with_one_click_adds_the_click_value_everywhere():
    module = attention_with_gamma()
    x = torch.randn(1, 6, 9, 11)
    points = empty_points(1, 2)
    points[0, 1] = torch.tensor([13.0, 42.0, 0.0])  # -> feature pixel (3, 10)
    with torch.no_grad():
        out = module(x, x, points, stride=4)
        value = module.value(x[0, :, 3, 10].view(1, 6, 1)).view(3, 6)
        expected = module.out(x + (0.7 * value).mean(0).view(1, 6, 1, 1))
    assert torch.allclose(out, expected, atol=1e-5)


def test_attention_with_48_clicks_and_border_clicks():
    module = attention_with_gamma()
    x = torch.randn(2, 6, 9, 11)
    points = torch.stack([torch.randint(0, 36, (2, 48)), torch.randint(0, 44, (2, 48)), torch.zeros(2, 48)], -1).float()
    points[0, :4, :2] = torch.tensor([[0.0, 0.0], [35.0, 43.0], [0.0, 43.0], [35.0, 0.0]])
    points[1, 5, :2] = torch.tensor([40.0, 50.0])  # past the map: clamped to the border pixel
    with torch.no_grad():
        out = module(x, x, points, stride=4)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_model_forward_with_zero_one_and_48_clicks(tiny):
    tiny.eval()
    image, prev = torch.rand(1, 3, 45, 61), torch.zeros(1, 1, 45, 61)
    full = torch.stack([torch.randint(0, 45, (1, 48)), torch.randint(0, 61, (1, 48)), torch.arange(48)[None]], -1)
    for points in (empty_points(1, 24), clicks_to_points([[Click(0, 60, True)]]), full.float()):
        with torch.inference_mode():
            out = tiny(image, points, prev)["instances"]
        assert out.shape == (1, 1, 45, 61) and torch.isfinite(out).all()


def test_gradients_reach_every_trainable_parameter(tiny):
    tiny.train()
    with torch.no_grad():
        for module in (tiny.attention, tiny.half_attention):
            module.gamma.fill_(0.5)  # at gamma = 0 the q/k/v projections get no gradient by design
    tiny.zero_grad()
    points = clicks_to_points([[Click(10, 12, True), Click(30, 40, False)], [Click(5, 50, True)]], slots=3)
    prev = torch.rand(2, 1, 41, 57)
    out = tiny(torch.rand(2, 3, 41, 57), points, prev)
    (out["instances"].sigmoid().mean() + out["instances_aux"].sigmoid().mean()).backward()
    dead = [n for n, p in tiny.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


def test_param_groups_split_backbone_and_heads(tiny):
    groups = tiny.param_groups(lr=5e-4, backbone_lr_mult=0.1)
    assert [g["name"] for g in groups] == ["backbone", "heads"]
    assert groups[0]["lr"] == pytest.approx(5e-5) and groups[1]["lr"] == pytest.approx(5e-4)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in tiny.parameters())
    backbone_ids = {id(p) for p in groups[0]["params"]}
    assert id(tiny.attention.gamma) in backbone_ids and id(tiny.half_fuse[0][0].weight) in backbone_ids
    assert id(tiny.click_encoder.scale) not in backbone_ids and id(tiny.head.classifier.weight) not in backbone_ids


def test_sha256_verification(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match=f"sha256 {sha256_of(path)}, expected {MOBILENET_V2_SHA256}"):
        verify_sha256(path, MOBILENET_V2_SHA256)
    with pytest.raises(FileNotFoundError, match="missing.pth is missing"):
        verify_sha256(tmp_path / "missing.pth", MOBILENET_V2_SHA256)
    assert sha256_of(mobilenet_v2_imagenet_path()) == MOBILENET_V2_SHA256


def test_lite_starts_from_imagenet_mobilenet():
    import torchvision

    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(mobilenet_v2_imagenet_path(), weights_only=True))
    model = build_model("ifpn_lite")
    assert torch.equal(model.backbone.stem_layer[0].weight, reference.features[0][0].weight)
    assert torch.equal(model.backbone.stages[3][-1].conv[2].weight, reference.features[17].conv[2].weight)


def test_hrnet_pretrained_path_reports_missing_and_unexpected_keys(tmp_path, caplog):
    source = HRNet(4, 8, 1, 1, (1, 1, 1))
    state = source.state_dict()
    del state["conv1.weight"]
    state["incre_modules.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "hrnet.pth")
    with caplog.at_level(logging.INFO):
        loaded = HRNet(4, 8, 1, 1, (1, 1, 1), pretrained=str(tmp_path / "hrnet.pth"))
    assert "1 missing ['conv1.weight'], 1 unexpected ['incre_modules.0.weight']" in caplog.text
    assert torch.equal(loaded.stage4[0].branches[3][0].conv1.weight, source.stage4[0].branches[3][0].conv1.weight)
    with caplog.at_level(logging.INFO):
        HRNet(4, 8, 1, 1, (1, 1, 1))
    assert "starts from scratch" in caplog.text
    with pytest.raises(ValueError, match="no HRNet ImageNet weights ship"):
        HRNet(4, 8, 1, 1, (1, 1, 1), pretrained="imagenet")
    with pytest.raises(FileNotFoundError, match="nope.pth do not exist"):
        HRNet(4, 8, 1, 1, (1, 1, 1), pretrained=str(tmp_path / "nope.pth"))


def test_fold_batchnorm_keeps_outputs_and_the_original(tiny):
    from iseg.models.layers import fold_batchnorm

    tiny.eval()
    with torch.no_grad():
        for module in tiny.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    folded = fold_batchnorm(tiny)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.half_fuse.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in tiny.half_fuse.modules())
    points = clicks_to_points([[Click(10, 12, True), Click(30, 40, False)]])
    image, prev = torch.rand(1, 3, 41, 57), torch.rand(1, 1, 41, 57)
    with torch.inference_mode():
        assert torch.allclose(folded(image, points, prev)["instances"], tiny(image, points, prev)["instances"],
                              atol=1e-4)
