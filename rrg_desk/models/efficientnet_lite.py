"""EfficientNet-Lite 0/1/2 in plain torch, a drop-in for timm's ``tf_efficientnet_lite{0,1,2}``
built with ``in_chans=1``: same parameter and buffer names, shapes and order (so bundles
saved from timm load strictly and ``train/pretrained.py`` maps ImageNet weights in order),
same numerics (TensorFlow "same" padding, BatchNorm eps 1e-3, ReLU6, no squeeze-excite).

Why: importing timm costs a cold CLI draft ~0.7 s (its __init__ imports every model family
and huggingface_hub); the shipped bundles only need these three networks.

Two forms, as timm builds them:
- ``EfficientNetLite`` (``num_classes=0``): ``forward`` -> pooled [B, 1280];
  ``forward_features`` -> the last feature map; ``forward_head`` pools it.
- ``EfficientNetLiteFeatures`` (``features_only=True, out_indices=(2, 3, 4)``): ``forward``
  -> the stride 8/16/32 maps; same keys minus ``conv_head`` and ``bn2`` (and minus the stages after
  the last returned one, for a shallower cut such as the outline refiner's strides 2/4/8).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS_TF = 1e-3  # TensorFlow's BatchNorm epsilon, which the tf_ weights were trained with


@dataclass(frozen=True)
class StageSpec:
    """One stage of the base (lite0) architecture."""

    kind: str          # "ds" depthwise-separable, "ir" inverted residual
    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int


# timm's _gen_efficientnet_lite arch_def: ds_r1_k3_s1_e1_c16, ir_r2_k3_s2_e6_c24, ...
LITE_STAGES = (
    StageSpec("ds", 1, 3, 1, 1, 16),
    StageSpec("ir", 2, 3, 2, 6, 24),
    StageSpec("ir", 2, 5, 2, 6, 40),
    StageSpec("ir", 3, 3, 2, 6, 80),
    StageSpec("ir", 3, 5, 1, 6, 112),
    StageSpec("ir", 4, 5, 2, 6, 192),
    StageSpec("ir", 1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class EfficientNetLiteConfig:
    width_multiplier: float = 1.0
    depth_multiplier: float = 1.0
    in_channels: int = 1
    stem_channels: int = 32      # lite fixes stem and head widths (not scaled)
    head_channels: int = 1280
    feature_stages: tuple[int, ...] = (2, 4, 6)  # blocks ending at strides 8, 16, 32 (timm out_indices 2, 3, 4)


# timm's (width, depth) multipliers per variant
LITE_VARIANTS = {
    "tf_efficientnet_lite0": EfficientNetLiteConfig(1.0, 1.0),
    "tf_efficientnet_lite1": EfficientNetLiteConfig(1.0, 1.1),
    "tf_efficientnet_lite2": EfficientNetLiteConfig(1.1, 1.2),
}


def is_efficientnet_lite(name: str) -> bool:
    return name in LITE_VARIANTS


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """timm's channel rounding: nearest multiple of `divisor`, never more than 10% below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def scaled_repeats(stage_index: int, repeats: int, depth_multiplier: float) -> int:
    """Lite keeps the first and last stage at one block (timm's fix_first_last); others ceil."""
    if stage_index in (0, len(LITE_STAGES) - 1):
        return repeats
    return int(math.ceil(repeats * depth_multiplier))


class SameConv2d(nn.Conv2d):
    """Conv with TensorFlow "same" padding computed from the input size (timm's Conv2dSame):
    for stride 2 the extra pixel goes bottom/right, so odd sizes match TF exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in ((x.shape[-1], self.kernel_size[1], self.stride[1]),
                                     (x.shape[-2], self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Stride 1 "same" is a fixed symmetric pad (a plain Conv2d, as timm builds it); stride 2
    depends on the input size."""
    if stride == 1:
        return nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2, groups=groups, bias=False)
    return SameConv2d(in_channels, out_channels, kernel_size, stride, groups=groups, bias=False)


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm then optional ReLU6, one module so the keys stay ``bn1.weight`` as in timm."""

    def __init__(self, channels: int, activate: bool = True):
        super().__init__(channels, eps=BN_EPS_TF)
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return F.relu6(x) if self.activate else x


class DepthwiseSeparableConv(nn.Module):
    """dw kxk -> BN+ReLU6 -> pw 1x1 -> BN (the first stage)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.conv_dw = conv(in_channels, in_channels, kernel_size, stride, groups=in_channels)
        self.bn1 = BatchNormAct2d(in_channels)
        self.conv_pw = conv(in_channels, out_channels, 1)
        self.bn2 = BatchNormAct2d(out_channels, activate=False)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return out + x if self.has_skip else out


class InvertedResidual(nn.Module):
    """pw expand -> BN+ReLU6 -> dw kxk -> BN+ReLU6 -> pw project -> BN, + skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int):
        super().__init__()
        mid_channels = make_divisible(in_channels * expand_ratio)
        self.conv_pw = conv(in_channels, mid_channels, 1)
        self.bn1 = BatchNormAct2d(mid_channels)
        self.conv_dw = conv(mid_channels, mid_channels, kernel_size, stride, groups=mid_channels)
        self.bn2 = BatchNormAct2d(mid_channels)
        self.conv_pwl = conv(mid_channels, out_channels, 1)
        self.bn3 = BatchNormAct2d(out_channels, activate=False)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        out = self.bn3(self.conv_pwl(out))
        return out + x if self.has_skip else out


def build_blocks(config: EfficientNetLiteConfig) -> tuple[nn.Sequential, list[int]]:
    """The seven stages (``blocks.{stage}.{block}``) and each stage's output width."""
    stages, widths, in_channels = [], [], config.stem_channels
    for index, spec in enumerate(LITE_STAGES):
        out_channels = make_divisible(spec.out_channels * config.width_multiplier)
        blocks = []
        for repeat in range(scaled_repeats(index, spec.repeats, config.depth_multiplier)):
            stride = spec.stride if repeat == 0 else 1  # only a stage's first block downsamples
            if spec.kind == "ds":
                blocks.append(DepthwiseSeparableConv(in_channels, out_channels, spec.kernel_size, stride))
            else:
                blocks.append(InvertedResidual(in_channels, out_channels, spec.kernel_size, stride,
                                               spec.expand_ratio))
            in_channels = out_channels
        stages.append(nn.Sequential(*blocks))
        widths.append(out_channels)
    return nn.Sequential(*stages), widths


def _config(name: str) -> EfficientNetLiteConfig:
    if name not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite {name!r}; known: {sorted(LITE_VARIANTS)}")
    return LITE_VARIANTS[name]


def init_like_tensorflow(module: nn.Module) -> None:
    """timm's (and TensorFlow's) EfficientNet initialisation: convolutions normal with std
    sqrt(2 / fan_out) (fan_out per group), batch norm 1 and 0. Training from scratch
    (pretrained: false) starts where it did with timm; PyTorch's default init gives features
    two orders of magnitude smaller, on which the input gate's logistic fit ran away."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class EfficientNetLite(nn.Module):
    """Classifier form without a classifier: forward -> pooled features [B, head_channels]."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__()
        self.conv_stem = conv(config.in_channels, config.stem_channels, 3, stride=2)
        self.bn1 = BatchNormAct2d(config.stem_channels)
        self.blocks, widths = build_blocks(config)
        self.conv_head = conv(widths[-1], config.head_channels, 1)
        self.bn2 = BatchNormAct2d(config.head_channels)
        self.num_features = config.head_channels
        init_like_tensorflow(self)

    @classmethod
    def named(cls, name: str) -> EfficientNetLite:
        return cls(_config(name))

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.bn1(self.conv_stem(images)))
        return self.bn2(self.conv_head(x))

    def forward_head(self, feature_map: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(feature_map, 1).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))


class EfficientNetLiteFeatures(nn.Module):
    """Feature form: forward -> [stride 8, 16, 32 maps]; ``feature_channels`` their widths."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__()
        self.conv_stem = conv(config.in_channels, config.stem_channels, 3, stride=2)
        self.bn1 = BatchNormAct2d(config.stem_channels)
        blocks, widths = build_blocks(config)
        self.blocks = blocks[:max(config.feature_stages) + 1]  # stages after the last feature map are unused
        self.feature_stages = config.feature_stages
        self.feature_channels = [widths[i] for i in config.feature_stages]
        init_like_tensorflow(self)

    @classmethod
    def named(cls, name: str, feature_stages: tuple[int, ...] | None = None) -> EfficientNetLiteFeatures:
        """feature_stages: the stages whose outputs are returned (default strides 8, 16, 32; stage 0
        ends at stride 2, 1 at 4, 2 at 8); the network stops at the last of them."""
        config = _config(name)
        return cls(replace(config, feature_stages=tuple(feature_stages)) if feature_stages else config)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x, features = self.bn1(self.conv_stem(images)), []
        for index, stage in enumerate(self.blocks):
            x = stage(x)
            if index in self.feature_stages:
                features.append(x)
        return features
