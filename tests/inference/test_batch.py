"""`rrg-desk draft --each PATH... --jsonl OUT`: one study per image, one JSON line per file."""
import json
import re

import pytest
from PIL import Image

from rrg_desk.imaging import apply_window, read_image
from rrg_desk.imaging.input_check import InputRefusal
from rrg_desk.inference.cli import EXIT_BAD_BUNDLE, EXIT_BAD_INPUT, EXIT_FAILED, main
from rrg_desk.inference.pipeline import DraftPipeline
from rrg_desk.paths import samples_dir
from tests.inference.conftest import tampered_copy

_SAMPLES = sorted(samples_dir().glob("study*/*.dcm"))


def _png(path, index):
    """A real radiograph (a sample DICOM) saved as PNG, so input checks on content pass."""
    image = read_image(_SAMPLES[index % len(_SAMPLES)])
    Image.fromarray(apply_window(image.pixels, image.display_window())).save(path)
    return path


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(paths, bundle, out, *extra):
    return main(["--each", *map(str, paths), "--jsonl", str(out), "--bundle", str(bundle), "--device", "cpu",
                 *extra])


@pytest.fixture
def worklist(tmp_path):
    """a.png, b_corrupt.png (PNG magic, then garbage), c.png: sorted, the bad one in the middle."""
    folder = tmp_path / "worklist"
    folder.mkdir()
    _png(folder / "c.png", 2)
    (folder / "b_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    _png(folder / "a.png", 1)
    return folder


def test_each_drafts_every_image_in_order_and_refuses_the_bad_one(tiny_bundle, worklist, tmp_path, capsys):
    out = tmp_path / "out" / "drafts.jsonl"
    assert _run([worklist], tiny_bundle, out) == 0
    lines = _lines(out)
    assert [line["path"] if "error" in line else line["images"][0]["path"] for line in lines] == [
        str(worklist / "a.png"), str(worklist / "b_corrupt.png"), str(worklist / "c.png")]
    good, bad = [lines[0], lines[2]], lines[1]
    assert set(bad) == {"path", "error"}
    assert bad["error"].startswith("b_corrupt.png:") and "\n" not in bad["error"]
    for line in good:
        assert len(line["images"]) == 1
        assert line["images"][0]["width"] == Image.open(line["images"][0]["path"]).width
        assert len(line["findings"]) == 14
        assert all(0 <= f["probability"] <= 1 and 0 <= f["threshold"] <= 1 for f in line["findings"])
        assert set(line["report"]) == {"findings", "impression"} and line["device"] == "cpu"
    # each PNG is its own study, not one study per folder
    assert lines[0]["study_uid"] != lines[2]["study_uid"]
    summary = capsys.readouterr().out.strip()
    assert re.fullmatch(rf"drafted 2 of 3 images \(1 refused\) in [\d.]+ s, [\d.]+ s per image after the first "
                        rf"-> {re.escape(str(out))}", summary), summary


def test_each_is_deterministic_over_folders_and_named_files(tiny_bundle, worklist, tmp_path):
    (worklist / "b_corrupt.png").unlink()
    (worklist / "notes.txt").write_text("not an image")  # skipped in a folder walk, like the workstation
    sub = worklist / "sub"
    sub.mkdir()
    _png(sub / "d.png", 3)
    extra = _png(tmp_path / "extra.png", 4)
    missing = tmp_path / "missing.png"
    out = tmp_path / "drafts.jsonl"
    # the named file comes first because it is named first; a file named twice is drafted once
    assert _run([extra, worklist, missing, worklist / "a.png"], tiny_bundle, out) == 0
    lines = _lines(out)
    assert [line.get("path") or line["images"][0]["path"] for line in lines] == [
        str(extra), str(worklist / "a.png"), str(worklist / "c.png"), str(sub / "d.png"), str(missing)]
    assert "error" in lines[-1] and lines[-1]["error"].startswith("missing.png:")


def test_each_refusing_every_file_exits_non_zero(tiny_bundle, tmp_path, capsys):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 128 + b"DICM" + b"\x01\x02" * 50)
    text = tmp_path / "scan.png"
    text.write_text("this is not an image")
    out = tmp_path / "drafts.jsonl"
    assert _run([junk, text], tiny_bundle, out) == EXIT_BAD_INPUT
    lines = _lines(out)
    assert [line["path"] for line in lines] == [str(junk), str(text)]
    assert all(set(line) == {"path", "error"} for line in lines)
    assert "drafted 0 of 2 images (2 refused)" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run([empty], tiny_bundle, tmp_path / "none.jsonl") == EXIT_BAD_INPUT
    assert "no DICOM, PNG or JPEG image found" in capsys.readouterr().err


def test_each_with_a_bad_bundle_fails_in_one_line_before_drafting(tiny_bundle, worklist, tmp_path, capsys):
    out = tmp_path / "drafts.jsonl"
    assert _run([worklist], tmp_path / "nothing", out) == EXIT_BAD_BUNDLE
    err = capsys.readouterr().err.strip()
    assert err.startswith("rrg-desk draft:") and "no model bundle" in err and "\n" not in err
    tampered = tampered_copy(tiny_bundle, tmp_path / "tampered", "detector.safetensors")
    assert _run([worklist], tampered, out) == EXIT_BAD_BUNDLE
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("rrg-desk draft:") and "\n" not in err and "Traceback" not in err
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--each", "x.png"], "--each needs --jsonl"),
    (["x.png", "--jsonl", "out.jsonl"], "--jsonl needs --each"),
    (["--each", "x.png", "--jsonl", "out.jsonl", "--json", "out.json"], "--json and --each cannot be combined"),
])
def test_option_conflicts_are_refused(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.json").exists()


def test_typed_refusals_and_unexpected_failures_do_not_stop_the_run(tiny_bundle, worklist, tmp_path, monkeypatch,
                                                                    capsys):
    (worklist / "b_corrupt.png").unlink()
    _png(worklist / "d.png", 4)
    out = tmp_path / "drafts.jsonl"
    real_draft = DraftPipeline.draft
    seen_on_disk = []

    def draft(self, study, settings, *args, **kwargs):
        name = study.images[0].source_path.name
        seen_on_disk.append(len(out.read_text().splitlines()))  # earlier lines are already flushed
        if name == "a.png":
            raise InputRefusal(study.images[0].source_path)  # any UserFacingError is a refusal
        if name == "c.png":
            raise RuntimeError("boom\nsecond line")
        return real_draft(self, study, settings, *args, **kwargs)

    monkeypatch.setattr(DraftPipeline, "draft", draft)
    assert _run([worklist], tiny_bundle, out) == EXIT_FAILED
    lines = _lines(out)
    assert seen_on_disk == [0, 1, 2]
    assert lines[0] == {"path": str(worklist / "a.png"), "error": "a.png: this does not look like a chest radiograph."}
    assert lines[1]["path"] == str(worklist / "c.png") and lines[1]["error"] == (
        "unexpected error (RuntimeError): boom second line")
    assert lines[2]["images"][0]["path"] == str(worklist / "d.png")
    assert "drafted 1 of 3 images (1 refused, 1 failed)" in capsys.readouterr().out


def test_the_output_file_is_never_an_input(worklist):
    from rrg_desk.inference.batch import batch_files

    out = worklist / "drafts.jsonl"  # a previous run's output left in the worklist folder
    out.write_text('{"path": "x", "error": "y"}\n')
    assert batch_files([worklist], exclude=out) == [
        worklist / "a.png", worklist / "b_corrupt.png", worklist / "c.png"]
    assert out in batch_files([worklist])  # without the exclusion it would be read (and refused)


def test_each_loads_the_models_once_for_all_images(tiny_bundle, worklist, tmp_path, monkeypatch):
    import rrg_desk.inference.pipeline as pipeline_module

    loads = []
    real = pipeline_module.load_bundle
    monkeypatch.setattr(pipeline_module, "load_bundle", lambda *args, **kwargs: loads.append(args) or real(*args,
                                                                                                      **kwargs))
    pipeline_module.forget_cached_bundles()  # nothing loaded by an earlier test
    out = tmp_path / "drafts.jsonl"
    _run([worklist, worklist / "a.png"], tiny_bundle, out)
    assert sum("error" not in line for line in _lines(out)) == 2
    assert len(loads) == 1
