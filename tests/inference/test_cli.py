import json

import pytest

from rrg_desk.inference.cli import EXIT_BAD_BUNDLE, EXIT_BAD_INPUT, main
from rrg_desk.paths import samples_dir
from tests.inference.conftest import tampered_copy


def test_cli_writes_the_documented_json(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "draft.json"
    code = main([str(samples_dir() / "study1"), "--bundle", str(tiny_bundle), "--device", "cpu",
                 "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "FINDINGS:" in printed and "IMPRESSION:" in printed
    data = json.loads(out.read_text())
    assert isinstance(data["bundle"], str) and data["device"] == "cpu"
    for image in data["images"]:
        assert set(image) >= {"path", "view", "width", "height"}
        assert isinstance(image["width"], int) and isinstance(image["height"], int)
    for region in data["regions"]:
        assert set(region) >= {"name", "box", "score", "selected", "image"}
        assert len(region["box"]) == 4 and isinstance(region["selected"], bool)
        x0, y0, x1, y1 = region["box"]
        image = data["images"][region["image"]]
        assert x1 <= image["width"] + 1 and y1 <= image["height"] + 1
    assert len(data["findings"]) == 14
    assert all(0 <= f["probability"] <= 1 for f in data["findings"])
    assert all(set(s) >= {"text", "region"} for s in data["sentences"])
    assert set(data["report"]) == {"findings", "impression"}
    assert all(isinstance(v, float) for v in data["timings_ms"].values())


def test_cli_refuses_bad_input_in_one_line(tiny_bundle, tmp_path, capsys):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 128 + b"DICM" + b"\x01\x02" * 50)
    assert main([str(junk), "--bundle", str(tiny_bundle)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("rrg-desk draft:") and "\n" not in err
    assert main([str(tmp_path / "missing.dcm"), "--bundle", str(tiny_bundle)]) == EXIT_BAD_INPUT


def test_cli_refuses_a_missing_or_tampered_bundle(tiny_bundle, tmp_path, capsys):
    study = str(samples_dir() / "study1")
    assert main([study, "--bundle", str(tmp_path / "nothing")]) == EXIT_BAD_BUNDLE
    assert "no model bundle" in capsys.readouterr().err
    tampered = tampered_copy(tiny_bundle, tmp_path / "tampered", "generator.safetensors")
    assert main([study, "--bundle", str(tampered)]) == EXIT_BAD_BUNDLE
    err = capsys.readouterr().err.strip()
    assert err.startswith("rrg-desk draft:") and "\n" not in err


def test_the_workstation_drafts_the_text_the_cli_prints(tiny_bundle):
    """The workstation's default request (AppSettings -> Session.draft_request_settings) and
    `rrg-desk draft` without options resolve to the same generation settings and text."""
    from rrg_desk.app.settings import AppSettings
    from rrg_desk.imaging import load_studies
    from rrg_desk.inference.pipeline import DraftPipeline
    from rrg_desk.inference.request import DraftSettings
    from rrg_desk.paths import samples_dir

    studies, _errors = load_studies([samples_dir() / "study1"])
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    workstation = AppSettings().draft_settings()  # what the session sends
    cli = DraftSettings(beam_size=None, max_len=None, finding_heatmaps=True, draft_anyway=False)  # no options
    assert pipeline._generation(workstation) == pipeline._generation(cli)
    a, b = pipeline.draft(studies[0], workstation), pipeline.draft(studies[0], cli)
    assert (a.findings_text, a.impression_text) == (b.findings_text, b.impression_text)


@pytest.mark.parametrize("bundle", ["tiny", "default"])
def test_a_cli_draft_imports_only_what_drafting_needs(bundle, tiny_bundle, tmp_path):
    """No Qt, no plotting, no exporters, and neither transformers nor open_clip: the models are
    plain torch (checked in a fresh process, on the shipped bundle too: this one has imported
    everything). The shipped bundle's EfficientNet-Lite is plain torch too, so no timm either
    (the tiny bundle's test_efficientnet is a timm model)."""
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from rrg_desk.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "print('MODULES ' + json.dumps(sorted(sys.modules)))\n"
            "sys.exit(code)\n")
    bundle_args = ["--bundle", str(tiny_bundle)] if bundle == "tiny" else []  # else the CLI's default bundle
    proc = subprocess.run([sys.executable, "-c", code, "draft", str(samples_dir() / "study2"), *bundle_args,
                           "--device", "cpu", "--json", str(tmp_path / "draft.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set(json.loads(proc.stdout.split("MODULES ", 1)[1]))
    assert "torch" in modules and (tmp_path / "draft.json").is_file()
    for unwanted in ("transformers", "open_clip", "matplotlib", "PySide6", "shiboken6", "highdicom", "fhir",
                     "dicomweb_client", "keyring", "reportlab", "sklearn", "pandas", "rrg_desk.ui",
                     "rrg_desk.reports.export", "train", *(["timm"] if bundle == "default" else [])):
        assert not [m for m in modules if m == unwanted or m.startswith(unwanted + ".")], unwanted


def test_a_png_draft_never_imports_pydicom(tiny_bundle, tmp_path):
    """pydicom (~0.4 s of a cold start) is imported when a DICOM is read, not before."""
    import subprocess
    import sys

    import numpy as np
    import pydicom
    from PIL import Image

    pixels = pydicom.dcmread(samples_dir() / "study2" / "01_pa.dcm").pixel_array.astype(np.float32)
    pixels = 255 * (pixels - pixels.min()) / (pixels.max() - pixels.min())
    Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "chest_pa.png")
    code = ("import sys\n"
            "from rrg_desk.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "print('PYDICOM', 'pydicom' in sys.modules)\n"
            "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", code, "draft", str(tmp_path / "chest_pa.png"), "--bundle",
                           str(tiny_bundle), "--device", "cpu", "--draft-anyway"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "PYDICOM False" in proc.stdout
