"""The admin view of model bundles: cards and parents, make active (the worker is
reconfigured), compare two bundles on the open study, export signed reports for training."""
from __future__ import annotations

import json
import shutil

import pytest
from PySide6.QtCore import Qt

from rrg_desk.app.bundles import LOCAL, list_bundles, read_bundle_info, user_bundles_dir, with_active_bundle
from rrg_desk.app.settings import AppSettings
from rrg_desk.imaging import load_studies
from rrg_desk.paths import samples_dir
from rrg_desk.ui.bundles_dialog import BundlesDialog
from tests.store.test_export import exported, store  # noqa: F401  (fixtures)
from tests.train.test_finetune import finetuned  # noqa: F401  (fixture)


@pytest.fixture
def installed(finetuned):  # noqa: F811
    """The parent and its fine-tuned child installed in this test's user bundles folder."""
    parent, child, _ = finetuned
    root = user_bundles_dir()
    return shutil.copytree(parent, root / "parent"), shutil.copytree(child, root / "child")


def info_of(dialog: BundlesDialog, folder):
    return next(b for b in dialog.bundles if b.folder == folder)


def test_listing_reads_cards_parent_and_metrics(installed):
    parent, child = installed
    bundles = list_bundles()
    assert {b.folder for b in bundles} >= {parent, child}
    child_info = read_bundle_info(child, LOCAL)
    parent_id = json.loads((parent / "card.json").read_text())["bundle_id"]
    assert child_info.parent.bundle_id == parent_id and not child_info.problem
    assert "fine-tuned (generator)" in child_info.trained_on
    assert child_info.metrics_scope == "local val"
    assert isinstance(child_info.metrics()["BLEU-4"], float)
    (child / "generator.safetensors").unlink()
    broken = read_bundle_info(child, LOCAL)
    assert "generator.safetensors" in broken.problem
    with pytest.raises(ValueError):
        with_active_bundle(AppSettings(), broken)


def test_table_shows_cards_and_marks_the_active_bundle(qtbot, installed):
    parent, child = installed
    dialog = BundlesDialog(AppSettings(bundle_dir=str(parent)))
    qtbot.addWidget(dialog)
    rows = {dialog.table.item(r, 0).text(): r for r in range(dialog.table.rowCount())}
    child_row = rows[info_of(dialog, child).bundle_id]
    parent_row = rows[info_of(dialog, parent).bundle_id]
    assert dialog.table.item(parent_row, 1).text() == "✔" and dialog.table.item(child_row, 1).text() == ""
    assert dialog.table.item(child_row, 5).text() == info_of(dialog, parent).bundle_id
    dialog.select(info_of(dialog, child))
    assert "Parent:" in dialog.details.toPlainText() and "parent: BLEU-4" in dialog.details.toPlainText()


def test_make_active_reconfigures_the_draft_worker(qtbot, window, installed):
    _parent, child = installed
    dialog = window.open_bundles_dialog()
    assert window.commands["bundles"] in window.menuBar().actions()[1].menu().actions()  # under Edit
    dialog.select(info_of(dialog, child))
    with qtbot.waitSignal(dialog.activeBundleRequested):
        qtbot.mouseClick(dialog.activate_button, Qt.MouseButton.LeftButton)
    assert window.app_settings.bundle_dir == str(child)
    assert window.worker.bundle_dir == child  # the next draft uses it
    assert AppSettings.load().bundle_dir == str(child)
    dialog.close()


def test_compare_drafts_the_open_study_with_both_bundles(qtbot, installed):
    parent, child = installed
    studies, _ = load_studies([samples_dir() / "study2"])
    dialog = BundlesDialog(AppSettings(bundle_dir=str(parent), device="cpu"), study_provider=lambda: studies[0])
    qtbot.addWidget(dialog)
    dialog.select(info_of(dialog, parent), info_of(dialog, child))
    with qtbot.waitSignal(dialog.compared, timeout=60_000) as blocker:
        qtbot.mouseClick(dialog.compare_button, Qt.MouseButton.LeftButton)
    drafts = blocker.args[0]
    ids = [json.loads((folder / "card.json").read_text())["bundle_id"] for folder in dialog.compare_pair()]
    assert [d.bundle_id for d in drafts] == ids and set(dialog.compare_pair()) == {parent, child}
    assert ids[0] in dialog.left_draft.toPlainText() and ids[1] in dialog.right_draft.toPlainText()
    assert "FINDINGS:" in dialog.right_draft.toPlainText()
    qtbot.waitUntil(lambda: not dialog.comparing)


def test_compare_without_a_study_says_so(qtbot, installed):
    dialog = BundlesDialog(AppSettings(bundle_dir=str(installed[0])))
    qtbot.addWidget(dialog)
    dialog.select(dialog.bundles[0])
    dialog.compare_selected()
    assert "Open a study first" in dialog.status.text()


def test_export_signed_reports_runs_export_store(qtbot, store, tmp_path):  # noqa: F811
    dialog = BundlesDialog(AppSettings(), db_path=store)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.exportFinished, timeout=90_000) as blocker:
        assert dialog.start_export(tmp_path / "out", deidentify=True)
        assert not dialog.export_button.isEnabled()
    summary = blocker.args[0]
    assert summary.studies == 7 and summary.deidentified
    annotation = json.loads((tmp_path / "out" / "annotation.json").read_text())
    assert sum(len(v) for v in annotation.values()) == 7
    assert "Exported. " in dialog.status.text() and "region boxes" in dialog.status.text()
    qtbot.waitUntil(dialog.export_button.isEnabled)


def test_export_failure_is_shown_in_the_dialog(qtbot, tmp_path):
    dialog = BundlesDialog(AppSettings(), db_path=tmp_path / "missing.sqlite3")
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.exportFailed, timeout=30_000) as blocker:
        assert dialog.start_export(tmp_path / "out")
    assert "No workstation database" in blocker.args[0]
    assert dialog.status.text().startswith("Export failed. No workstation database")
    qtbot.waitUntil(dialog.export_button.isEnabled)
