"""Training datasets on tiny layouts generated in tmp_path (plus the shared data when present)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rrg_desk.models.card import Preprocessing
from rrg_desk.models.regions import REGION_NAMES, WHOLE_IMAGE
from train.data import (
    CovidCxrDataset, CsvReportDataset, JsrtRegionDataset, MissingImagesError, R2GenDataset,
    covid_view, pairing_statistics, region_label, region_sentence_pairs, report_corpus, study_region_pairs,
)

SPEC = Preprocessing(image_size=32, mean=0.5, std=0.25)
SHARED = Path("/work/shared/data")


def _png(path: Path, value: int, size=(40, 60)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full(size, value, dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _r2gen_layout(root: Path, with_all_images: bool = True) -> Path:
    annotation = {
        "train": [
            {"id": "s1", "report": "The heart is normal. Small left pleural effusion.", "split": "train",
             "image_path": ["s1/0.png", "s1/1.png"]},
            {"id": "s2", "report": "No pneumothorax. The lungs are clear.", "split": "train",
             "image_path": ["s2/0.png", "s2/1.png"]},
        ],
        "val": [{"id": "s3", "report": "Right lower lobe pneumonia.", "split": "val", "image_path": ["s3/0.png"]}],
        "test": [],
    }
    (root / "annotation.json").write_text(json.dumps(annotation))
    for entry in annotation["train"] + annotation["val"]:
        for k, rel in enumerate(entry["image_path"]):
            if with_all_images or rel != "s2/1.png":
                _png(root / "images" / rel, 200 + k * 40)
    return root


def test_r2gen_reads_studies_with_several_images(tmp_path):
    dataset = R2GenDataset(_r2gen_layout(tmp_path), "train", SPEC)
    assert len(dataset) == 2
    item = dataset[0]
    assert item["id"] == "s1" and item["images"].shape == (2, 1, 32, 32)
    assert item["views"] == ["frontal", "lateral"]
    # an 8-bit PNG is shown over 0..255, so grey 200 -> 200/255, then (x - 0.5) / 0.25
    assert torch.isclose(item["images"][0, 0, 16, 16], torch.tensor((200 / 255 - 0.5) / 0.25), atol=1e-5)
    assert R2GenDataset(tmp_path, "val", SPEC, report_transform=str.upper)[0]["report"] == "RIGHT LOWER LOBE PNEUMONIA."


def test_r2gen_reports_missing_images_clearly(tmp_path):
    root = _r2gen_layout(tmp_path, with_all_images=False)
    with pytest.raises(MissingImagesError, match=r"1 of 4 image files .* missing") as info:
        R2GenDataset(root, "train", SPEC)
    assert info.value.missing == [("s2", root / "images" / "s2" / "1.png")]
    assert [e["id"] for e in R2GenDataset(root, "train", SPEC, missing="skip").entries] == ["s1"]
    kept = R2GenDataset(root, "train", SPEC, missing="ignore")
    assert len(kept) == 2 and kept[1]["images"].shape[0] == 1


def test_r2gen_refuses_unknown_split(tmp_path):
    with pytest.raises(ValueError):
        R2GenDataset(_r2gen_layout(tmp_path), "dev", SPEC)


def test_size_and_normalisation_come_from_the_spec(tmp_path):
    spec = Preprocessing.from_card({"image_size": 16, "mean": 0.4, "std": 0.2})
    item = R2GenDataset(_r2gen_layout(tmp_path), "val", spec)[0]
    assert item["images"].shape == (1, 1, 16, 16)
    assert -2.0 - 1e-5 <= float(item["images"].min()) and float(item["images"].max()) <= 3.0 + 1e-5  # (x - 0.4) / 0.2
    with pytest.raises(ValueError):
        Preprocessing(16, 0.5, 0.0)


@pytest.mark.parametrize(("field", "view"), [("PA", "frontal"), ("AP Supine", "frontal"), ("AP", "frontal"),
                                             ("L", "lateral"), ("", "unknown"), ("?", "unknown")])
def test_covid_views(field, view):
    assert covid_view(field) == view


def test_covid_layout_with_view_field_and_note_cleaning(tmp_path):
    entries = [{"id": "c1", "report": "Fever.Chest radiograph shows opacities (arrow).", "image_path": ["c1/0.png"],
                "view": "AP Supine", "finding": "COVID-19", "license": "CC BY", "split": "train"},
               {"id": "c2", "report": "Cough.", "image_path": ["c2/0.png"], "view": "L", "finding": "", "split": "train"}]
    (tmp_path / "annotation.json").write_text(json.dumps({"train": entries, "val": [], "test": []}))
    for e in entries:
        _png(tmp_path / "images" / e["image_path"][0], 180)
    dataset = CovidCxrDataset(tmp_path, "train", SPEC)
    assert dataset[0]["views"] == ["frontal"] and dataset[1]["views"] == ["lateral"]
    assert dataset[0]["report"] == "Fever. Chest radiograph shows opacities."
    assert dataset[0]["finding"] == "COVID-19" and dataset[0]["license"] == "CC BY"
    assert [e["id"] for e in CovidCxrDataset(tmp_path, "train", SPEC, views=("frontal",)).entries] == ["c1"]


def _csv(path: Path, rows: list[dict], columns=("image_path", "report", "split")) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_dataset(tmp_path):
    _png(tmp_path / "img" / "a.png", 150)
    _png(tmp_path / "img" / "b.png", 250)
    path = _csv(tmp_path / "pairs.csv", [{"image_path": "img/a.png", "report": "No effusion.", "split": "train"},
                                        {"image_path": "img/b.png", "report": "Cardiomegaly.", "split": "test"}])
    dataset = CsvReportDataset(path, SPEC, split="test")
    assert len(dataset) == 1 and dataset[0]["report"] == "Cardiomegaly."
    assert dataset[0]["image"].shape == (1, 32, 32)
    assert len(CsvReportDataset(path, SPEC)) == 2


def test_csv_dataset_errors(tmp_path):
    bad = _csv(tmp_path / "bad.csv", [{"image_path": "x.png"}], columns=("image_path",))
    with pytest.raises(ValueError, match="report"):
        CsvReportDataset(bad, SPEC)
    missing = _csv(tmp_path / "m.csv", [{"image_path": "nope.png", "report": "x", "split": "train"}])
    with pytest.raises(FileNotFoundError, match="1 image"):
        CsvReportDataset(missing, SPEC)


def _jsrt_layout(root: Path) -> Path:
    """A 64x64 cartoon: lungs either side of a heart, clavicles on top (patient right = image left)."""
    shapes = {"right_lung": (8, 6, 28, 56), "left_lung": (36, 6, 56, 56), "heart": (24, 34, 44, 54),
              "right_clavicle": (10, 6, 30, 10), "left_clavicle": (34, 6, 54, 10)}
    for organ, (x0, y0, x1, y1) in shapes.items():
        mask = np.zeros((64, 64), np.uint8)
        mask[y0:y1, x0:x1] = 255
        (root / "masks" / organ).mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(root / "masks" / organ / "JPCLN001.png")
    _png(root / "images" / "JPCLN001.png", 220, size=(64, 64))
    boxes = {"JPCLN001": {organ: list(box) for organ, box in shapes.items()}}
    (root / "boxes.json").write_text(json.dumps({"size": [64, 64], "boxes": boxes}))
    (root / "split.json").write_text(json.dumps({"train": ["JPCLN001"], "val": [], "test": []}))
    return root


def test_jsrt_region_boxes_from_masks(tmp_path):
    dataset = JsrtRegionDataset(_jsrt_layout(tmp_path), "train", SPEC)
    item = dataset[0]
    assert item["region_names"] == list(REGION_NAMES)
    assert item["labels"].tolist() == [region_label(r) for r in REGION_NAMES] and min(item["labels"]) == 1
    heart = item["boxes"][REGION_NAMES.index("heart")]
    assert torch.allclose(heart, torch.tensor([24, 34, 44, 54]) * 0.5)  # 64 px -> 32 px
    whole = item["boxes"][REGION_NAMES.index(WHOLE_IMAGE)]
    assert torch.allclose(whole, torch.tensor([0.0, 0.0, 32.0, 32.0]))
    assert item["has_nodule"]


def test_jsrt_organ_boxes_without_masks(tmp_path):
    item = JsrtRegionDataset(_jsrt_layout(tmp_path), "train", SPEC, from_masks=False)[0]
    assert item["region_names"] == ["right_lung", "left_lung", "heart", "right_clavicle", "left_clavicle"]


@pytest.mark.skipif(not (SHARED / "jsrt_scr").exists(), reason="shared JSRT data not present")
def test_jsrt_real_image_gives_nested_regions():
    item = JsrtRegionDataset(SHARED / "jsrt_scr", "val", SPEC)[0]
    boxes = dict(zip(item["region_names"], item["boxes"]))
    lung, zone = boxes["right_lung"], boxes["right_lower_zone"]
    assert zone[0] >= lung[0] - 1e-4 and zone[2] <= lung[2] + 1e-4 and zone[3] <= lung[3] + 1e-4


def test_report_corpus_and_pairing(tmp_path):
    annotation = _r2gen_layout(tmp_path) / "annotation.json"
    assert report_corpus(annotation) == ["The heart is normal. Small left pleural effusion.",
                                         "No pneumothorax. The lungs are clear."]
    assert report_corpus(annotation, splits=("train", "val"), transform=str.lower)[-1] == "right lower lobe pneumonia."
    assert region_sentence_pairs("The heart is normal. Small left pleural effusion. No pneumothorax.") == [
        ("heart", "The heart is normal."), ("left_costophrenic_angle", "Small left pleural effusion."),
        (WHOLE_IMAGE, "No pneumothorax.")]
    assert region_sentence_pairs("The lungs are clear.", mode="all") == [
        ("right_lung", "The lungs are clear."), ("left_lung", "The lungs are clear.")]
    stats = pairing_statistics(study_region_pairs(annotation))
    assert stats["pairs"] == 5 and stats["per_region"][WHOLE_IMAGE] == 1
    assert stats["whole_image_fraction"] == pytest.approx(1 / 5)


def test_training_and_the_app_feed_the_models_identical_inputs(tmp_path):
    """One preprocessing path: a trainer tensor equals what the app's pipeline computes."""
    import torch

    from rrg_desk.imaging import read_image
    from rrg_desk.inference.pipeline import DraftPipeline
    from rrg_desk.models.bundle import build_random_bundle
    from rrg_desk.paths import samples_dir
    from train.data.preprocess import load_image_tensor

    bundle = build_random_bundle(tmp_path / "b", size="tiny")
    pipeline = DraftPipeline(bundle, device="cpu")
    path = sorted((samples_dir() / "study3").glob("*.dcm"))[0]
    trained_on, _size = load_image_tensor(path, pipeline.bundle.preprocessing)
    torch.testing.assert_close(trained_on[None], pipeline._prepare(read_image(path)).tensor)


def test_report_clues_are_the_findings_the_report_states():
    """The generator's training clues (TRRG): what the report asserts, not what it denies."""
    from rrg_desk.models.findings import FINDING_NAMES
    from train.tasks.generator_task import report_clues

    clues = report_clues("There is a small right pleural effusion. No pneumothorax. The heart size is normal.")
    positive = {name for name, value in zip(FINDING_NAMES, clues.tolist()) if value == 1.0}
    assert positive == {"Pleural Effusion"}
    assert set(clues.tolist()) <= {0.0, 1.0}
    normal = report_clues("The lungs are clear. No pleural effusion or pneumothorax.")
    assert {n for n, v in zip(FINDING_NAMES, normal.tolist()) if v} <= {"No Finding"}


def test_a_labelled_image_is_paired_only_with_a_report_whose_findings_agree():
    import numpy as np

    from train.data.finding_labels import LabelledImage, label_vector, nih_labels
    from train.tasks.generator_task import agreeing_report, stated_findings

    texts = ["The lungs are clear. No pleural effusion.", "There is a small right pleural effusion.",
             "Mild cardiomegaly. Small left pleural effusion."]
    reports = [(stated_findings(t), t) for t in texts]
    rng = np.random.default_rng(0)

    def image(labels: str) -> LabelledImage:
        values, mask = label_vector(nih_labels(labels))
        return LabelledImage(Path("x.jpg"), values, mask, "nih:test", "train", "1", "PA")

    assert agreeing_report(image("No Finding"), reports, rng) == texts[0]
    assert agreeing_report(image("Effusion"), reports, rng) == texts[1]
    assert agreeing_report(image("Cardiomegaly|Effusion"), reports, rng) == texts[2]
    assert agreeing_report(image("Pneumothorax"), reports, rng) is None
