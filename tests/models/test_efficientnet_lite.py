"""The plain-torch EfficientNet-Lite matches timm's tf_efficientnet_lite{0,1,2} (in_chans=1):
same state_dict keys, order and shapes (bundles and train/pretrained.py rely on both), and the
same outputs, including odd input sizes where TF "same" padding is asymmetric."""
import pytest
import torch

timm = pytest.importorskip("timm")

from rrg_desk.models.efficientnet_lite import EfficientNetLite, EfficientNetLiteFeatures  # noqa: E402


def _timm(name: str, features: bool) -> torch.nn.Module:
    if features:
        return timm.create_model(name, pretrained=False, in_chans=1, features_only=True, out_indices=(2, 3, 4))
    return timm.create_model(name, pretrained=False, in_chans=1, num_classes=0)


def _ours(name: str, features: bool) -> torch.nn.Module:
    return (EfficientNetLiteFeatures if features else EfficientNetLite).named(name)


def _randomise_norms(model: torch.nn.Module) -> None:
    """Non-trivial batch-norm statistics, so eps and the affine terms are exercised."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            shape = module.running_mean.shape
            module.running_mean.copy_(0.1 * torch.randn(shape, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(shape, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(shape, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(shape, generator=generator))


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"])
@pytest.mark.parametrize("features", [False, True])
def test_keys_order_and_shapes_match_timm(name, features):
    theirs, ours = _timm(name, features).state_dict(), _ours(name, features).state_dict()
    assert list(ours) == list(theirs)
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]


def test_feature_widths_and_pooled_width_match_timm():
    for name in ("tf_efficientnet_lite0", "tf_efficientnet_lite2"):
        assert _ours(name, True).feature_channels == _timm(name, True).feature_info.channels()
        assert _ours(name, False).num_features == _timm(name, False).num_features


@pytest.fixture(scope="module")
def lite0_pair():
    torch.manual_seed(0)
    theirs_full = _timm("tf_efficientnet_lite0", False)
    with torch.no_grad():
        _randomise_norms(theirs_full)
    weights = theirs_full.state_dict()
    theirs_features = _timm("tf_efficientnet_lite0", True)
    theirs_features.load_state_dict({k: weights[k] for k in theirs_features.state_dict()})
    ours_full, ours_features = _ours("tf_efficientnet_lite0", False), _ours("tf_efficientnet_lite0", True)
    ours_full.load_state_dict(weights, strict=True)
    ours_features.load_state_dict({k: weights[k] for k in ours_features.state_dict()}, strict=True)
    return [m.eval() for m in (theirs_full, theirs_features, ours_full, ours_features)]


@pytest.mark.parametrize("size", [256, 512, 250, 251])  # 251 x 257: odd both ways
def test_outputs_match_timm(lite0_pair, size):
    theirs_full, theirs_features, ours_full, ours_features = lite0_pair
    images = torch.randn(2, 1, size, size + 6, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        pooled_theirs, pooled_ours = theirs_full(images), ours_full(images)
        map_theirs, map_ours = theirs_full.forward_features(images), ours_full.forward_features(images)
        maps_theirs, maps_ours = theirs_features(images), ours_features(images)
    assert pooled_ours.shape == pooled_theirs.shape == (2, 1280)
    assert (pooled_ours - pooled_theirs).abs().max() < 1e-5
    assert (map_ours - map_theirs).abs().max() < 1e-5
    assert len(maps_ours) == len(maps_theirs) == 3
    for ours, theirs in zip(maps_ours, maps_theirs):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max() < 1e-5


def test_the_shipped_bundle_loads_strictly_into_the_plain_torch_backbones():
    from rrg_desk.models.bundle import load_bundle
    from rrg_desk.paths import default_bundle_dir

    bundle = load_bundle(default_bundle_dir())  # load_model(strict=True): every key and shape must match
    assert isinstance(bundle.classifier.backbone, EfficientNetLite)
    if bundle.detector.config.backbone != "mobilenet_v3_small":
        assert isinstance(bundle.detector.rcnn.backbone.body, EfficientNetLiteFeatures)


def test_a_fresh_model_starts_with_timms_weight_scale():
    """Trained from scratch (pretrained: false) it must start as timm's did: same init law."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    ours = EfficientNetLite.named("tf_efficientnet_lite0")
    theirs = timm.create_model("tf_efficientnet_lite0", pretrained=False, in_chans=1, num_classes=0)
    for (name, mine), (_, reference) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        if mine.is_floating_point() and mine.dim() == 4 and mine.numel() >= 5000:  # sample std is steady there
            assert mine.std().item() == pytest.approx(reference.std().item(), rel=0.15), name
    images = torch.randn(2, 1, 128, 128)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert ours(images).abs().mean().item() == pytest.approx(theirs(images).abs().mean().item(), rel=0.5)
