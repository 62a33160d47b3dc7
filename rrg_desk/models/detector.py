"""Anatomical region detector: torchvision Faster R-CNN with an FPN, plus organ outlines.

Backbones: MobileNetV3-small from scratch (``backbone="mobilenet_v3_small"``, the first
bundles) or an EfficientNet-Lite (``tf_efficientnet_lite0``..., plain torch with timm's names;
other timm names also work) that the trainer starts from ImageNet weights; its batch-norm
statistics stay frozen (detection batches are tiny).

Outlines (Mask R-CNN style): for the regions in ``mask_regions`` (the five SCR organs) a small
mask head predicts a ``mask_size``^2 probability map inside the region's box. It is trained on
the ground-truth boxes (slightly jittered, as proposals are); ``outline_box_weight`` moves those
regions' boxes towards the tight box of their predicted outline (1 = the outline's box). An
optional outline refiner (``rrg_desk/models/outline_refiner.py``, attached by the trainer) then
takes a closer look: it segments a crop around each of those boxes at the input's pixel scale;
its outlines replace the mask head's and the boxes move ``refiner_box_weight`` towards theirs.

Input convention: images are *normalised* single-channel float tensors [B, 1, H, W]
(``(pixel/255 - mean) / std`` with mean/std from the bundle card's preprocessing section);
the caller normalises, the detector does not (its internal transform has mean 0, std 1).
The caller also resizes so the longest side is ``config.image_size``; the internal transform
then keeps the size (min_size = max_size = image_size never upscales such an image).

Classes: one per anatomical region in ``region_names[:-1]`` plus background; the last name,
``whole_image``, is not learned but is always the full frame (score 1).

``detect()`` follows RGRG: for every image and region class, the single best box (or, with
``box_fusion_top_k`` > 1, the score-weighted mean of the best proposals' boxes), its score,
and a region feature vector pooled (MultiScaleRoIAlign + the box head) from the FPN on the
*returned* box; regions the detector did not find get score 0 and a prior box (the mean
training box relative to the frame, a buffer the trainer sets with ``set_prior_boxes``).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


from rrg_desk.models.config import ConfigDict
from rrg_desk.models.efficientnet_lite import EfficientNetLiteFeatures, is_efficientnet_lite
from rrg_desk.models.outline_refiner import OutlineRefiner, OutlineRefinerConfig
from rrg_desk.models.rcnn import (AnchorGenerator, FasterRCNN, FastRCNNPredictor, FeaturePyramidNetwork,
                                  RCNNTransform, RegionProposalNetwork, RoIHeads, RPNHead, TwoMLPHead)
from rrg_desk.models.rcnn_ops import (MultiScaleRoIAlign, clip_boxes_to_image, paste_masks, resize_boxes,
                                      roi_align)
from rrg_desk.models.region_heads import RegionHeads, RegionHeadsConfig
from rrg_desk.models.regions import REGION_NAMES, SCR_ORGANS, TYPICAL_RELATIVE_BOXES, WHOLE_IMAGE


@dataclass
class DetectorConfig(ConfigDict):
    region_names: list[str] = field(default_factory=lambda: list(REGION_NAMES))
    image_size: int = 512  # longest side the caller resizes to
    backbone: str = "mobilenet_v3_small"  # or a timm EfficientNet-Lite, e.g. "tf_efficientnet_lite0"
    width_mult: float = 1.0  # MobileNetV3-small width multiplier
    bn_momentum: float = 0.1  # torchvision's MobileNet uses 0.01, too slow for short from-scratch runs
    fpn_channels: int = 64
    roi_output_size: int = 7
    representation_size: int = 256  # box-head width = region feature dim
    anchor_sizes: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # per FPN level
    aspect_ratios: list[float] = field(default_factory=lambda: [0.33, 0.5, 1.0, 2.0, 3.0])  # h / w
    rpn_pre_nms_top_n_train: int = 1000
    rpn_post_nms_top_n_train: int = 500
    rpn_pre_nms_top_n_test: int = 500
    rpn_post_nms_top_n_test: int = 150
    box_batch_size_per_image: int = 256
    min_detection_score: float = 0.25  # below: "not detected", the prior box is used
    grid_size: int = 8  # global image tokens = grid_size**2 pooled cells of the top FPN level
    heads_hidden: int = 128
    heads_dropout: float = 0.1
    mask_regions: list[str] = field(default_factory=list)  # regions with an outline (the SCR organs)
    mask_size: int = 28  # mask head output per box (RoIAlign at half of it, as Mask R-CNN)
    mask_channels: int = 64
    mask_layers: int = 4
    mask_box_jitter: float = 0.05  # training: box sides move by up to this share of the box size
    # inference-only box refinements (no retraining): each region's box is the score-weighted mean
    # of its top-k proposals' regressed boxes (those scoring >= min_share x the best; 1 = RGRG's single best)
    box_fusion_top_k: int = 1
    box_fusion_min_share: float = 0.3
    outline_box_weight: float = 0.0  # mask regions' boxes move this far towards their outline's tight box
    # a closer look at the mask regions (OutlineRefinerConfig as a dict; the trainer attaches it): its
    # outlines replace the mask head's, and the boxes move refiner_box_weight towards their tight boxes
    refiner: dict | None = None
    refiner_box_weight: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> "DetectorConfig":
        data = dict(data)
        if "boxes_from_masks" in data:  # cards before outline_box_weight: true was the outline's box
            data.setdefault("outline_box_weight", 1.0 if data.pop("boxes_from_masks") else 0.0)
        return super().from_dict(data)

    def __post_init__(self) -> None:
        if not self.region_names or self.region_names[-1] != WHOLE_IMAGE:
            raise ValueError(f"region_names must end with {WHOLE_IMAGE!r}")
        unknown = [r for r in self.mask_regions if r not in self.region_names[:-1]]
        if unknown:
            raise ValueError(f"mask_regions {unknown} are not detector regions")
        if self.mask_size % 2:
            raise ValueError("mask_size must be even (the head upsamples RoIAlign output by 2)")
        if self.box_fusion_top_k < 1 or not 0.0 < self.box_fusion_min_share <= 1.0:
            raise ValueError("box_fusion_top_k must be >= 1 and box_fusion_min_share in (0, 1]")
        if not 0.0 <= self.outline_box_weight <= 1.0 or not 0.0 <= self.refiner_box_weight <= 1.0:
            raise ValueError("outline_box_weight and refiner_box_weight must be in [0, 1]")
        if self.refiner is not None and list(self.refiner.get("regions", ())) != list(self.mask_regions):
            raise ValueError("the outline refiner's regions must be the mask regions, in the same order")
        if len(self.anchor_sizes) != 4:
            raise ValueError("anchor_sizes needs one size per FPN level (4: strides 8, 16, 32, 64)")

    @classmethod
    def tiny(cls, outlines: bool = False) -> "DetectorConfig":
        """Milliseconds per forward: for tests only (outlines: a small mask head for the SCR organs)."""
        masks = dict(mask_regions=list(SCR_ORGANS), mask_size=8, mask_channels=8, mask_layers=1) if outlines else {}
        return cls(image_size=64, width_mult=0.25, fpn_channels=16, roi_output_size=3,
                   representation_size=32, anchor_sizes=[8, 16, 32, 64], aspect_ratios=[0.5, 1.0, 2.0],
                   rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50,
                   rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
                   box_batch_size_per_image=64, grid_size=2, heads_hidden=16, heads_dropout=0.0, **masks)

    @property
    def num_regions(self) -> int:
        return len(self.region_names)

    @property
    def num_classes(self) -> int:
        """Faster R-CNN classes: background + every region except whole_image."""
        return len(self.region_names)

    @property
    def feature_dim(self) -> int:
        return self.representation_size

    @property
    def mask_indices(self) -> list[int]:
        """Region indices (into region_names) of the mask regions, in mask_regions order."""
        return [self.region_names.index(r) for r in self.mask_regions]

    @property
    def image_token_dim(self) -> int:
        return self.fpn_channels

    @property
    def num_image_tokens(self) -> int:
        return self.grid_size ** 2




@dataclass
class RegionDetections:
    """detect() output; R = len(region_names) in that order, boxes in input pixel coordinates."""
    boxes: torch.Tensor  # [B, R, 4] x0, y0, x1, y1
    scores: torch.Tensor  # [B, R] 0 when not detected (prior box used); 1 for whole_image
    detected: torch.Tensor  # [B, R] bool
    features: torch.Tensor  # [B, R, D] region features (D = representation_size)
    image_tokens: torch.Tensor  # [B, G, C] global tokens (G = grid_size**2, C = fpn_channels)
    selector_logits: torch.Tensor  # [B, R] "this region gets a sentence"
    abnormal_logits: torch.Tensor  # [B, R] "this region is abnormal"
    # [B, M, S, S] outline probabilities inside the boxes of config.mask_regions (M may be 0)
    masks: torch.Tensor | None = None

    def found_boxes(self, region_names, index: int = 0) -> dict[str, list[float]]:
        """{region name: box} of image `index`, only the regions detected (no fall-back boxes)."""
        found, boxes = self.detected[index].tolist(), self.boxes[index].tolist()
        return {name: box for name, box, ok in zip(region_names, boxes, found) if ok}


class TimmBackboneWithFPN(nn.Module):
    """A CNN's stride-8/16/32 features (one input channel; timm's layout) + FPN; batch norm
    frozen at the statistics it starts from (ImageNet's, loaded by the trainer into ``body``)."""

    def __init__(self, name: str, out_channels: int):
        super().__init__()
        self.body, channels = _feature_body(name)
        self.fpn = FeaturePyramidNetwork(channels, out_channels)
        self.out_channels = out_channels
        for module in self._norms():
            for param in module.parameters():
                param.requires_grad = False

    def _norms(self):
        return [m for m in self.body.modules() if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> "TimmBackboneWithFPN":
        super().train(mode)
        for module in self._norms():  # batches of 4 images would ruin ImageNet's statistics
            module.eval()
        return self

    def forward(self, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(images))))


def _feature_body(name: str) -> tuple[nn.Module, list[int]]:
    """The stride-8/16/32 feature extractor and its widths. EfficientNet-Lite 0/1/2 are plain
    torch with timm's key names (a draft never imports timm); other names are timm's."""
    if is_efficientnet_lite(name):
        body = EfficientNetLiteFeatures.named(name)
        return body, body.feature_channels
    import timm

    body = timm.create_model(name, pretrained=False, in_chans=1, features_only=True, out_indices=(2, 3, 4))
    return body, body.feature_info.channels()


def _build_backbone(config: DetectorConfig) -> nn.Module:
    if config.backbone != "mobilenet_v3_small":
        return TimmBackboneWithFPN(config.backbone, config.fpn_channels)
    return _mobilenet_backbone(config)


def _mobilenet_backbone(config: DetectorConfig) -> "MobileNetWithFPN":
    """MobileNetV3-small features (random init, 1-channel stem) + FPN on strides 8, 16, 32 (the
    first bundles' backbone; only it imports torchvision)."""
    from torchvision.models import mobilenet_v3_small

    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=config.bn_momentum)
    features = mobilenet_v3_small(weights=None, width_mult=config.width_mult, norm_layer=norm_layer).features
    features = features[:-1]  # drop the final 1x1 expansion conv (576 ch): FPN does not need it
    stem = features[0][0]
    features[0][0] = nn.Conv2d(1, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False)
    nn.init.kaiming_normal_(features[0][0].weight, mode="fan_out")  # as torchvision inits MobileNet convs
    # Each stage ends just before the next stride-2 block (torchvision marks those `_is_cn`).
    downsamplers = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
    stage_ends = [i - 1 for i in downsamplers] + [len(features) - 1]
    # downsamplers: strides 4, 8, 16, 32 -> stage ends at strides 2, 4, 8, 16, 32; keep the last 3.
    return MobileNetWithFPN(features, stage_ends[-3:], config.fpn_channels)


class MobileNetWithFPN(nn.Module):
    """The blocks up to the last returned one (as ``body.<index>``) and an FPN on the outputs of the
    returned blocks, under torchvision's BackboneWithFPN names."""

    def __init__(self, features: nn.Sequential, returned: list[int], out_channels: int):
        super().__init__()
        self.body = nn.ModuleDict((str(i), features[i]) for i in range(returned[-1] + 1))
        self.returned = [str(i) for i in returned]
        self.fpn = FeaturePyramidNetwork([features[i].out_channels for i in returned], out_channels)
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        outputs, x = OrderedDict(), images
        for name, block in self.body.items():
            x = block(x)
            if name in self.returned:
                outputs[str(self.returned.index(name))] = x
        return self.fpn(outputs)


class MaskHead(nn.Module):
    """Mask R-CNN's mask branch, CPU-sized: RoIAlign (mask_size/2)^2 -> convs -> 2x up -> one
    logit map per mask region [N, M, mask_size, mask_size]."""

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=config.mask_size // 2,
                                       sampling_ratio=2)
        layers, width = [], config.fpn_channels
        for _ in range(config.mask_layers):
            layers += [nn.Conv2d(width, config.mask_channels, 3, padding=1), nn.ReLU(inplace=True)]
            width = config.mask_channels
        self.convs = nn.Sequential(*layers)
        self.upsample = nn.Sequential(nn.ConvTranspose2d(width, width, 2, stride=2), nn.ReLU(inplace=True))
        self.logits = nn.Conv2d(width, len(config.mask_regions), 1)

    def forward(self, features, boxes: list[torch.Tensor], image_sizes) -> torch.Tensor:
        return self.logits(self.upsample(self.convs(self.pool(features, boxes, image_sizes))))


class RegionDetector(nn.Module):
    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        backbone = _build_backbone(config)
        anchors = AnchorGenerator(sizes=tuple((s,) for s in config.anchor_sizes),
                                  aspect_ratios=(tuple(config.aspect_ratios),) * len(config.anchor_sizes))
        roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=config.roi_output_size,
                                      sampling_ratio=2)
        # created in torchvision's order (box head, predictor, then the RPN head): same seed, same weights
        box_head = TwoMLPHead(config.fpn_channels * config.roi_output_size ** 2, config.representation_size)
        box_predictor = FastRCNNPredictor(config.representation_size, config.num_classes)
        rpn = RegionProposalNetwork(
            anchors, RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0]),
            pre_nms_top_n={"training": config.rpn_pre_nms_top_n_train, "testing": config.rpn_pre_nms_top_n_test},
            post_nms_top_n={"training": config.rpn_post_nms_top_n_train, "testing": config.rpn_post_nms_top_n_test})
        self.rcnn = FasterRCNN(
            backbone,
            RCNNTransform(config.image_size, config.image_size, image_mean=[0.0], image_std=[1.0]),  # inputs arrive normalised
            rpn, RoIHeads(roi_pool, box_head, box_predictor, config.box_batch_size_per_image))
        self.heads = RegionHeads(RegionHeadsConfig(feature_dim=config.representation_size,
                                                   num_regions=config.num_regions,
                                                   hidden_dim=config.heads_hidden,
                                                   dropout=config.heads_dropout))
        self.mask_head = MaskHead(config) if config.mask_regions else None
        self.refiner = None
        if config.refiner is not None:
            self.attach_refiner(OutlineRefiner(OutlineRefinerConfig.from_dict(dict(config.refiner))),
                                config.refiner_box_weight)
        priors = torch.tensor([TYPICAL_RELATIVE_BOXES.get(name, (0.0, 0.0, 1.0, 1.0))
                               for name in config.region_names], dtype=torch.float32)
        self.register_buffer("prior_boxes", priors)  # [R, 4] relative to the frame

    def attach_refiner(self, refiner: OutlineRefiner, box_weight: float) -> None:
        """Carry `refiner` (and its config, so the bundle rebuilds it) and follow its outline boxes
        by `box_weight` from now on."""
        if list(refiner.config.regions) != list(self.config.mask_regions):
            raise ValueError("the outline refiner's regions must be the mask regions, in the same order")
        if not 0.0 <= box_weight <= 1.0:
            raise ValueError("refiner_box_weight must be in [0, 1]")
        self.refiner = refiner
        self.config.refiner = refiner.config.to_dict()
        self.config.refiner_box_weight = float(box_weight)

    # --- training -------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        """Train mode: images [B, 1, H, W] + targets (torchvision style: "boxes" [N, 4] in input
        pixels, "labels" [N] int64 = region index + 1; with mask regions also "masks" [M, H, W]
        in mask_regions order, all-zero for an organ the image lacks) -> loss dict.
        Eval mode: detect(images)."""
        if not self.training:
            return self.detect(images)
        if targets is None:
            raise ValueError("training mode needs targets")
        rcnn = self.rcnn
        box_targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        image_list, box_targets = rcnn.transform(list(images), box_targets)
        features = rcnn.backbone(image_list.tensors)
        proposals, losses = rcnn.rpn(image_list, features, box_targets)
        box_losses = rcnn.roi_heads(features, proposals, image_list.image_sizes, box_targets)
        losses = {**losses, **box_losses}
        if self.mask_head is not None:
            if any("masks" not in t for t in targets):
                raise ValueError("a detector with mask_regions needs targets with masks")
            losses["loss_mask"] = self._mask_loss(features, targets, image_list.image_sizes)
        return losses

    def _mask_loss(self, features, targets, image_sizes) -> torch.Tensor:
        """BCE of the mask head on jittered ground-truth boxes of the mask regions the image has
        (target masks cut from the full-frame masks by RoIAlign, as Mask R-CNN's)."""
        size = self.config.mask_size
        labels = torch.tensor(self.config.mask_indices, device=targets[0]["labels"].device) + 1
        boxes, channels, wanted = [], [], []
        for target, image_size in zip(targets, image_sizes):
            rows = [int((target["labels"] == label).nonzero()[0]) if (target["labels"] == label).any() else -1
                    for label in labels]
            present = [(m, r) for m, r in enumerate(rows) if r >= 0 and target["masks"][m].any()]
            if not present:
                boxes.append(target["boxes"].new_zeros(0, 4))
                continue
            box = jitter_boxes(target["boxes"][[r for _m, r in present]], self.config.mask_box_jitter, image_size)
            wanted.append(mask_targets(target["masks"][[m for m, _r in present]], box, size))
            channels += [m for m, _r in present]
            boxes.append(box)
        if not channels:
            return sum(p.sum() for p in self.mask_head.parameters()) * 0.0
        logits = self.mask_head(features, boxes, image_sizes)  # [N, M, S, S]
        chosen = logits[torch.arange(len(channels)), torch.tensor(channels, device=logits.device)]
        return F.binary_cross_entropy_with_logits(chosen, torch.cat(wanted))

    def region_targets(self, boxes_by_name: dict[str, tuple[float, float, float, float]],
                       device: torch.device | str | None = None,
                       masks_by_name: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """One training target from {region name: box} (and {mask region: [H, W] mask} when the
        detector has mask regions); whole_image and unknown names are skipped."""
        names = [n for n in self.config.region_names[:-1] if n in boxes_by_name]
        boxes = torch.tensor([boxes_by_name[n] for n in names], dtype=torch.float32, device=device)
        labels = torch.tensor([self.config.region_names.index(n) + 1 for n in names],
                              dtype=torch.int64, device=device)
        target = {"boxes": boxes.reshape(-1, 4), "labels": labels}
        if self.config.mask_regions:
            masks_by_name = masks_by_name or {}
            shape = next(iter(masks_by_name.values())).shape if masks_by_name else (1, 1)
            target["masks"] = torch.stack([masks_by_name.get(n, torch.zeros(shape)).to(torch.uint8)
                                           for n in self.config.mask_regions]).to(device)
        return target

    @torch.no_grad()
    def set_prior_boxes(self, relative_boxes: torch.Tensor) -> None:
        """relative_boxes [R, 4] in [0, 1] (the mean training box per region)."""
        if relative_boxes.shape != self.prior_boxes.shape:
            raise ValueError(f"expected {tuple(self.prior_boxes.shape)}, got {tuple(relative_boxes.shape)}")
        self.prior_boxes.copy_(relative_boxes.clamp(0.0, 1.0))

    def region_features(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Features for given boxes (e.g. ground truth, to train the heads or the generator):
        images [B, 1, H, W], boxes [B, R, 4] in input pixels -> [B, R, D]."""
        image_list, _ = self.rcnn.transform(list(images))
        features = self.rcnn.backbone(image_list.tensors)
        scaled = [resize_boxes(b, images.shape[-2:], size) for b, size in zip(boxes, image_list.image_sizes)]
        return self._pool(features, scaled, image_list.image_sizes)

    # --- inference ------------------------------------------------------------------------
    def detect(self, images: torch.Tensor) -> RegionDetections:
        """images [B, 1, H, W] normalised -> RegionDetections (see the class docstring). Eval mode."""
        if self.training:
            raise RuntimeError("detect() needs eval mode (call .eval() first)")
        original_size = images.shape[-2:]
        image_list, _ = self.rcnn.transform(list(images))
        features = self.rcnn.backbone(image_list.tensors)  # OrderedDict of [B, C, h, w]
        proposals, _ = self.rcnn.rpn(image_list, features)  # list of [N_i, 4]
        best_boxes, best_scores = self._best_box_per_class(features, proposals, image_list.image_sizes)
        boxes, scores, detected = [], [], []
        for b_boxes, b_scores, size in zip(best_boxes, best_scores, image_list.image_sizes):
            height, width = size
            scale = b_boxes.new_tensor([width, height, width, height])
            found = b_scores >= self.config.min_detection_score
            prior = self.prior_boxes[:-1] * scale
            region_boxes = torch.where(found[:, None], b_boxes, prior)
            frame = b_boxes.new_tensor([[0.0, 0.0, width, height]])  # whole_image
            boxes.append(torch.cat([region_boxes, frame]))  # [R, 4]
            scores.append(torch.cat([torch.where(found, b_scores, torch.zeros_like(b_scores)),
                                     b_scores.new_ones(1)]))
            detected.append(torch.cat([found, found.new_ones(1)]))
        masks = self._masks(features, boxes, detected, image_list.image_sizes)
        if self.refiner is not None:
            masks = self._refined_masks(image_list.tensors, boxes, detected, image_list.image_sizes)
        region_features = self._pool(features, boxes, image_list.image_sizes)  # [B, R, D]
        selector_logits, abnormal_logits = self.heads(region_features)
        out_boxes = torch.stack([resize_boxes(b, size, original_size)
                                 for b, size in zip(boxes, image_list.image_sizes)])
        return RegionDetections(boxes=out_boxes, scores=torch.stack(scores), detected=torch.stack(detected),
                                features=region_features, image_tokens=self._image_tokens(features),
                                selector_logits=selector_logits, abnormal_logits=abnormal_logits, masks=masks)

    def _masks(self, features, boxes: list[torch.Tensor], detected: list[torch.Tensor], image_sizes
               ) -> torch.Tensor:
        """[B, M, S, S] mask probabilities in the mask regions' boxes; with outline_box_weight > 0
        the detected mask regions' boxes (in `boxes`, changed in place) move that far towards their
        outlines' tight boxes (two estimates of one box whose errors partly cancel)."""
        config = self.config
        indices = config.mask_indices
        if self.mask_head is None:
            return features["0"].new_zeros(len(boxes), 0, config.mask_size, config.mask_size)
        masks = self._mask_probabilities(features, boxes, image_sizes)
        weight = config.outline_box_weight
        if weight == 0.0:
            return masks
        for b, (height, width) in enumerate(image_sizes):
            pasted = paste_masks(masks[b], boxes[b][indices], height, width) >= 0.5
            for m, region in enumerate(indices):
                tight = _tight_box(pasted[m])
                if detected[b][region] and tight is not None:
                    boxes[b][region] = weight * tight + (1.0 - weight) * boxes[b][region]
        if self.refiner is not None:  # its outlines replace these: no second mask-head pass
            return masks
        return self._mask_probabilities(features, boxes, image_sizes)  # relative to the new boxes

    def _refined_masks(self, images: torch.Tensor, boxes: list[torch.Tensor], detected: list[torch.Tensor],
                       image_sizes) -> torch.Tensor:
        """The refiner's outlines of the mask regions resampled into their boxes [B, M, S, S]; the
        detected mask regions' boxes (in `boxes`, changed in place) first move refiner_box_weight
        towards the tight boxes of those outlines."""
        indices, weight = self.config.mask_indices, self.config.refiner_box_weight
        out = []
        for b, (height, width) in enumerate(image_sizes):
            image = images[b, :, :height, :width]  # without the batch's padding: outlines stay in the image
            outlines = self.refiner.outlines(image, boxes[b][indices])  # [M, H, W] in the frame
            for m, region in enumerate(indices):
                tight = _tight_box(outlines[m] >= 0.5)
                if weight and detected[b][region] and tight is not None:
                    boxes[b][region] = weight * tight + (1.0 - weight) * boxes[b][region]
            out.append(mask_targets(outlines, boxes[b][indices], self.config.mask_size))
        return torch.stack(out)

    def _mask_probabilities(self, features, boxes: list[torch.Tensor], image_sizes) -> torch.Tensor:
        indices = self.config.mask_indices
        logits = self.mask_head(features, [b[indices] for b in boxes], image_sizes)
        logits = logits.reshape(len(boxes), len(indices), len(indices), *logits.shape[-2:])
        own = torch.arange(len(indices), device=logits.device)
        return logits[:, own, own].sigmoid()  # [B, M, S, S]: each box's own region channel

    def _best_box_per_class(self, features, proposals, image_sizes):
        """RGRG's selection: per image and class, the proposal scoring highest for that class,
        regressed with that class's deltas (fused with the next best, see _fused_boxes).
        Returns lists of [R-1, 4] boxes and [R-1] scores."""
        roi_heads = self.rcnn.roi_heads
        pooled = roi_heads.box_head(roi_heads.box_roi_pool(features, proposals, image_sizes))
        class_logits, box_regression = roi_heads.box_predictor(pooled)  # [N, C], [N, C*4]
        decoded = roi_heads.box_coder.decode(box_regression, proposals)  # [N, C, 4]
        probabilities = F.softmax(class_logits, dim=-1)
        counts = [len(p) for p in proposals]
        best_boxes, best_scores = [], []
        for boxes, probs, size in zip(decoded.split(counts), probabilities.split(counts), image_sizes):
            boxes = clip_boxes_to_image(boxes, size)[:, 1:]  # drop background: [N, R-1, 4]
            probs = probs[:, 1:]  # [N, R-1]
            classes = torch.arange(probs.shape[1], device=probs.device)
            if probs.shape[0] == 0:  # no proposals at all
                best_boxes.append(boxes.new_zeros(len(classes), 4))
                best_scores.append(probs.new_zeros(len(classes)))
                continue
            best = probs.argmax(dim=0)
            best_boxes.append(self._fused_boxes(boxes, probs) if self.config.box_fusion_top_k > 1
                              else boxes[best, classes])
            best_scores.append(probs[best, classes])
        return best_boxes, best_scores

    def _fused_boxes(self, boxes: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """boxes [N, C, 4], probs [N, C] -> [C, 4]: per class, the score-weighted mean of the
        top-k proposals' boxes among those scoring at least min_share x the class's best."""
        top = probs.topk(min(self.config.box_fusion_top_k, probs.shape[0]), dim=0)  # [k, C]
        weights = top.values * (top.values >= self.config.box_fusion_min_share * top.values[:1])
        chosen = boxes[top.indices, torch.arange(probs.shape[1], device=probs.device)]  # [k, C, 4]
        return (chosen * weights[..., None]).sum(0) / weights.sum(0).clamp_min(1e-12)[:, None]

    def _pool(self, features, boxes: list[torch.Tensor], image_sizes) -> torch.Tensor:
        """RoIAlign + box head on boxes (transformed-image pixels) -> [B, R, D]."""
        roi_heads = self.rcnn.roi_heads
        pooled = roi_heads.box_head(roi_heads.box_roi_pool(features, boxes, image_sizes))  # [B*R, D]
        return pooled.reshape(len(boxes), -1, pooled.shape[-1])

    def _image_tokens(self, features: "OrderedDict[str, torch.Tensor]") -> torch.Tensor:
        """Top FPN level (stride 32) pooled to grid_size x grid_size -> [B, G, C]."""
        grid = F.adaptive_avg_pool2d(features["2"], self.config.grid_size)  # [B, C, g, g]
        return grid.flatten(2).transpose(1, 2)


def mask_targets(masks: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Full-frame masks [K, H, W] and one box each [K, 4] -> each mask cut out of its own box and
    resampled to [K, size, size] (RoIAlign with the mask's own index, as Mask R-CNN's targets)."""
    rois = torch.cat([torch.arange(len(boxes), dtype=boxes.dtype, device=boxes.device)[:, None], boxes], dim=1)
    return roi_align(masks.float()[:, None], rois, size, 1.0, sampling_ratio=-1)[:, 0].clamp(0, 1)


def jitter_boxes(boxes: torch.Tensor, share: float, image_size) -> torch.Tensor:
    """Each side moved by up to `share` of the box's width/height (proposal-like boxes)."""
    if share <= 0:
        return boxes
    size = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, dim=1)
    moved = boxes + (torch.rand_like(boxes) * 2 - 1) * share * size
    return clip_boxes_to_image(moved, image_size)


def _tight_box(mask: torch.Tensor) -> torch.Tensor | None:
    """[H, W] bool -> the tight box x0, y0, x1, y1 (pixel edges) or None when empty."""
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    if len(rows) == 0:
        return None
    return torch.stack([cols[0, 0], rows[0, 0], cols[-1, 0] + 1, rows[-1, 0] + 1]).to(torch.float32)


def mean_relative_boxes(samples, region_names=REGION_NAMES) -> torch.Tensor:
    """Priors for set_prior_boxes: samples = iterable of ({region name: box in pixels}, (width,
    height)) -> [R, 4] mean box relative to the frame; regions never seen get the full frame."""
    sums = torch.zeros(len(region_names), 4, dtype=torch.float64)
    counts = torch.zeros(len(region_names), dtype=torch.float64)
    for boxes_by_name, (width, height) in samples:
        scale = torch.tensor([width, height, width, height], dtype=torch.float64)
        for index, name in enumerate(region_names):
            if name in boxes_by_name:
                sums[index] += torch.tensor(boxes_by_name[name], dtype=torch.float64) / scale
                counts[index] += 1
    full_frame = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    means = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], full_frame)
    return means.float()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe_size(module: nn.Module) -> str:
    """'2.61M params, 10.4 MB fp32' (for logs and the model card)."""
    n = count_parameters(module)
    return f"{n / 1e6:.2f}M params, {n * 4 / 2 ** 20:.1f} MB fp32"


__all__ = ["DetectorConfig", "RegionDetector", "RegionDetections", "count_parameters", "describe_size",
           "mask_targets", "mean_relative_boxes", "paste_masks"]
