"""`rrg-desk --selftest` un-frozen (part of `make test`): the same end-to-end run the frozen
app does, with every module the spec excludes blocked, so a wrong exclusion fails here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrg_desk.cli import main as cli_main
from rrg_desk.models.bundle import build_random_bundle
from rrg_desk.selftest import EXIT_BAD_SETUP, SelftestFailure, check_exports
from tests.packaging.helpers import ROOT, load_packaging_script


# Runs the CLI with the excluded modules unfindable, as they are in the frozen app. A file, not
# `-c`: the inference child (multiprocessing, spawn) runs its top level again, so the excluded
# modules are unfindable there too, where torch and the models are imported.
BLOCKING_RUNNER = """
import importlib.abc, json, sys
BLOCKED = tuple(json.loads(sys.argv[1]))

def blocked(name):
    return any(name == b or name.startswith(b + ".") for b in BLOCKED)

class Hide(importlib.abc.MetaPathFinder):
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        if blocked(name):
            return None
        find = getattr(self.inner, "find_spec", None)
        return find(name, path, target) if find else None
    def find_distributions(self, *args, **kwargs):
        find = getattr(self.inner, "find_distributions", None)
        return find(*args, **kwargs) if find else []
    def invalidate_caches(self):
        getattr(self.inner, "invalidate_caches", lambda: None)()

sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
if __name__ == "__main__":
    from rrg_desk.cli import main
    code = main(sys.argv[2:])
    leaked = sorted(m for m in sys.modules if blocked(m))
    print("LEAKED", json.dumps(leaked))
    sys.exit(code)
"""


@pytest.fixture(scope="module")
def selftest_run(tmp_path_factory):
    """One un-frozen selftest with a tiny bundle, exports kept, excluded modules blocked."""
    root = tmp_path_factory.mktemp("selftest")
    bundle = build_random_bundle(root / "bundle", size="tiny")
    keep, user_data = root / "exports", root / "user-data"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    env["RRG_DESK_DATA_DIR"] = str(user_data)  # the selftest must not write here
    blocked = json.dumps(load_packaging_script("manifest").EXCLUDES)
    runner = root / "blocking_runner.py"
    runner.write_text(BLOCKING_RUNNER)
    proc = subprocess.run([sys.executable, str(runner), blocked, "--selftest", "--bundle", str(bundle),
                           "--device", "cpu", "--keep", str(keep)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc, keep, user_data


def test_selftest_drafts_exports_and_checks_every_format(selftest_run):
    proc, keep, user_data = selftest_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("LEAKED")]
    assert len(lines) == 1 and lines[0].startswith("rrg-desk selftest: OK study1"), proc.stdout
    assert "txt json fhir sr png pdf" in lines[0] and lines[0].endswith(f"; kept in {keep.resolve()}")
    suffixes = sorted(p.name.split(".", 1)[1] for p in keep.iterdir())
    assert suffixes == sorted(["txt", "json", "fhir.json", "sr.dcm", "png", "pdf"])
    report_file = next(p for p in keep.iterdir() if p.name.endswith(".json") and not p.name.endswith(".fhir.json"))
    report = json.loads(report_file.read_text())
    assert report["status"] == "draft" and report["model"]["bundle_id"].startswith("rrg-")
    assert not user_data.exists() or not any(user_data.iterdir())  # the user's data folder is untouched


def test_selftest_needs_none_of_the_excluded_modules(selftest_run):
    proc, _keep, _user_data = selftest_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    leaked = json.loads(proc.stdout.split("LEAKED", 1)[1].strip())
    assert leaked == []


def _kept_exports(keep: Path, into: Path) -> dict[str, Path]:
    shutil.copytree(keep, into)
    by_suffix = {"txt": ".txt", "fhir": ".fhir.json", "sr": ".sr.dcm", "png": ".png", "pdf": ".pdf"}
    written = {fmt: next(p for p in into.iterdir() if p.name.endswith(suffix)) for fmt, suffix in by_suffix.items()}
    written["json"] = next(p for p in into.iterdir() if p.name.endswith(".json") and not p.name.endswith(".fhir.json"))
    return written


def _expected(written: dict[str, Path]) -> dict:
    report = json.loads(written["json"].read_text())
    from PIL import Image

    with Image.open(written["png"]) as image:
        size = image.size
    return dict(findings_text=report["findings"], study_uid=report["study"]["study_instance_uid"],
                bundle_id=report["model"]["bundle_id"], frontal_size=size)


def test_the_checks_accept_the_real_exports(selftest_run, tmp_path):
    proc, keep, _user_data = selftest_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = _kept_exports(keep, tmp_path / "exports")
    check_exports(written, **_expected(written))  # the files the selftest wrote pass its own checks


def _truncate_pdf(written):
    data = written["pdf"].read_bytes()
    written["pdf"].write_bytes(data[: len(data) // 2])  # disk full half-way


def _sr_of_another_study(written):
    import pydicom

    sr = pydicom.dcmread(written["sr"])
    sr.StudyInstanceUID = "1.2.3.4"
    sr.save_as(written["sr"])


def _fhir_missing_key_image(written):
    report = json.loads(written["fhir"].read_text())
    report["presentedForm"] = [f for f in report["presentedForm"] if f["contentType"] != "image/png"]
    written["fhir"].write_text(json.dumps(report))


@pytest.mark.parametrize("damage, stage", [
    (_truncate_pdf, "check:pdf"),
    (_sr_of_another_study, "check:sr: wrong study UID"),
    (_fhir_missing_key_image, "check:fhir: no PNG key image"),
    (lambda written: written["png"].write_bytes(b"\x89PNG broken"), "check:png: unreadable"),
    (lambda written: written.pop("txt").unlink(), "not written: txt"),
])
def test_the_checks_catch_a_damaged_export(selftest_run, tmp_path, damage, stage):
    proc, keep, _user_data = selftest_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = _kept_exports(keep, tmp_path / "exports")
    expected = _expected(written)
    damage(written)
    with pytest.raises(SelftestFailure, match=stage):
        check_exports(written, **expected)


def test_selftest_without_a_model_bundle_fails_with_a_reason(tmp_path, capsys):
    code = cli_main(["--selftest", "--bundle", str(tmp_path / "no-bundle")])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_SETUP
    assert "rrg-desk selftest: FAILED at setup: no model bundle" in captured.err
    assert captured.out == ""


def test_the_spec_leaves_out_transformers_and_open_clip():
    """The models are plain torch (issue 17); the selftest above runs with both blocked."""
    manifest = load_packaging_script("manifest")
    assert {"transformers", "open_clip"} <= set(manifest.EXCLUDES)
    assert not [m for m in manifest.LAZY_IMPORTS if m.split(".")[0] in ("transformers", "open_clip")]


@pytest.mark.parametrize("make_bad", ["file", "read_only"])
def test_keep_folder_that_cannot_be_used_is_refused_before_anything_runs(tmp_path, make_bad):
    from rrg_desk.selftest import prepare_keep_dir

    if make_bad == "file":
        target = tmp_path / "exports"
        target.write_text("not a folder")
        expected = "is a file"
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores folder permissions")
        parent = tmp_path / "locked"
        parent.mkdir()
        parent.chmod(0o500)
        target, expected = parent / "exports", "cannot be written"
    with pytest.raises(SelftestFailure) as caught:
        prepare_keep_dir(target)
    assert caught.value.code == EXIT_BAD_SETUP and caught.value.stage == "setup" and expected in caught.value.message
    nested = prepare_keep_dir(tmp_path / "new" / "exports")  # created, parents too
    assert nested.is_dir() and nested.is_absolute()
