"""The trainer's subcommands on the tiny config (seconds each): real data, tiny models."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rrg_desk.inference.pipeline import DraftPipeline
from rrg_desk.imaging import load_studies
from rrg_desk.models.bundle import load_bundle
from rrg_desk.paths import samples_dir
from train.cli import SUBCOMMANDS, get_args_parser, main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "train" / "configs" / "tiny.yaml")
DATA = ROOT.parent / "shared" / "data"

pytestmark = pytest.mark.skipif(not (DATA / "jsrt_scr").exists(), reason="../shared/data is not beside the repo")


def _args(out: Path, *extra: str) -> list[str]:
    return ["--config", TINY, "--device", "cpu", "--set", f"out_dir={out}", "--set", f"export.out={out / 'bundle'}",
            "--set", f"data.jsrt={DATA / 'jsrt_scr'}", "--set", f"data.covid={DATA / 'covid_cxr'}",
            "--set", f"data.text_corpora=[{DATA / 'iu_xray_reports' / 'annotation.json'}]",
            *[arg for kind, folder in (("nih", "nih_cxr14"), ("covid", "covid_cxr"), ("jsrt", "jsrt_scr"),
                                       ("tb", "tb_cxr"))
              for arg in ("--set", f"data.labelled.{kind}={DATA / folder}")], *extra]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-run")
    assert main(["all", *_args(out)]) == 0
    return out


def test_help_explains_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in text


def test_regions_subcommand_writes_every_region_for_every_image(tmp_path):
    assert main(["regions", *_args(tmp_path)]) == 0
    regions = json.loads((tmp_path / "regions.json").read_text())
    assert len(regions) == 222
    assert all(len(boxes) == 20 for boxes in regions.values())


def test_all_exports_a_bundle_the_app_loads_with_metrics_beside_baselines(tiny_run):
    bundle = tiny_run / "bundle"
    loaded = load_bundle(bundle)
    card = loaded.card
    metrics, training = card.records.metrics, card.records.training
    for system in ("model", "baseline_most_frequent", "baseline_nearest_neighbour"):
        assert set(metrics[system]["nlg"]) >= {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr", "METEOR"}
        assert "micro_f1" in metrics[system]["ce"]
    assert 0.0 <= metrics["detector"]["mean_iou"] <= 1.0
    assert training["config"]["tiny"] is True
    for run in ("detector", "refiner", "clip", "generator_pretrain", "region_heads", "generator"):
        assert (tiny_run / run / "curves.png").exists() and (tiny_run / run / "metrics.csv").exists()
    # the outline refiner: trained after the detector, its box weight chosen on validation, in the bundle
    choice = training["validation"]["refiner"]["box_weight"]
    assert set(choice["validation"]) == {"0.0", "1.0"} and choice["box_weight"] in (0.0, 1.0)
    assert loaded.detector.refiner is not None
    assert loaded.detector.config.refiner_box_weight == choice["box_weight"]
    # the classifier: mode, calibration and thresholds chosen on validation; the input gate
    assert card.classification.mode in ("head", "zero_shot", "ensemble")
    assert set(card.thresholds) == set(card.finding_names)
    assert 0.0 < card.input_check.p_chest <= 0.5
    # the feature probe: fitted on the training images, its weight (tiny: the only one offered) in the card
    assert training["feature_probe"]["used"] and card.classification.probe_weight == 0.5
    assert loaded.classifier.feature_probe is not None
    assert set(training["feature_probe"]["val_within_source_auc_by_l2"]) == {"1.0"}
    gate = training["input_gate"]
    assert gate["held_out_negatives"] > 100 and 0.0 <= gate["held_out_negatives_refused"] <= 1.0
    # evaluation on every labelled test split, and the drafts' truthfulness beside baselines
    assert {"nih", "covid_cxr"} <= set(metrics["classifier"]["groups"])
    drafts = metrics["drafts"]["groups"]["all"]
    assert {"drafts", "generator_alone", "classifier_alone", "template"} <= set(drafts)
    assert drafts["drafts"]["contradictions_per_draft"] == 0.0  # held to the classifier by construction
    studies, _ = load_studies([samples_dir() / "study2"])
    draft = DraftPipeline(bundle, device="cpu").draft(studies[0])
    assert draft.bundle_id == card.bundle_id and len(draft.findings) == 14


def test_evaluate_and_export_subcommands_on_their_own(tiny_run, tmp_path, capsys):
    other = tmp_path / "again"
    assert main(["export", *_args(tiny_run), "--bundle", str(other)]) == 0
    assert (other / "card.json").exists()
    assert main(["evaluate", *_args(tiny_run), "--bundle", str(other)]) == 0
    printed = capsys.readouterr().out
    assert "baseline_nearest_neighbour" in printed and "detector mean IoU" in printed


def test_unpack_retrains_only_the_classifier_and_records_the_rest_as_carried_over(tiny_run, tmp_path):
    parent = tiny_run / "bundle"
    out = tmp_path / "classifier-only"
    assert main(["unpack", *_args(out), "--bundle", str(parent)]) == 0
    assert main(["clip", *_args(out)]) == 0
    assert main(["export", *_args(out), "--bundle", str(out / "new")]) == 0
    before, after = load_bundle(parent), load_bundle(out / "new")
    for name in ("detector", "generator"):
        old, new = getattr(before, name).state_dict(), getattr(after, name).state_dict()
        assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old), name
    assert after.detector.refiner is not None
    assert after.detector.config.refiner_box_weight == before.detector.config.refiner_box_weight
    lineage = after.card.records.training["lineage"]
    assert lineage["retrained"] == ["classifier"]
    assert sorted(lineage["carried_over"]) == ["detector", "generator", "refiner", "region_heads"]
    assert all(before.card.bundle_id in text for text in lineage["carried_over"].values())
    validation = after.card.records.training["validation"]
    assert validation["detector"] == before.card.records.training["validation"]["detector"]
    assert validation["generator"] == before.card.records.training["validation"]["generator"]


def test_resume_after_interruption_reaches_the_same_weights(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    for out in (full, cut):
        (out).mkdir()
    assert main(["clip", *_args(full), "--set", "clip.loop.epochs=2"]) == 0
    assert main(["clip", *_args(cut), "--set", "clip.loop.epochs=2", "--set", "clip.loop.max_steps=1"]) == 0
    assert main(["clip", *_args(cut), "--set", "clip.loop.epochs=2", "--resume"]) == 0
    a, b = load_file(str(full / "clip" / "last.safetensors")), load_file(str(cut / "clip" / "last.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5)


def test_two_process_ddp_run_of_the_tiny_config(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), GLOO_SOCKET_IFNAME="lo")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "train", "detector", *_args(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "detector" / "log.jsonl").read_text().splitlines()]
    epochs = [row for row in log if row["kind"] == "epoch"]
    # 8 images / 2 ranks / batch 4 = 1 step per epoch on each rank; rank 0 alone logs
    assert len(epochs) == 1 and epochs[0]["step"] == 1
    assert (tmp_path / "detector" / "best.safetensors").exists()
