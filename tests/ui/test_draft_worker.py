"""The model worker: drafts off the GUI thread with progress, cancel, errors, dropped results."""
from __future__ import annotations

import threading

import pytest

from rrg_desk.imaging import load_studies
from rrg_desk.inference.pipeline import STAGES, DraftSettings
from rrg_desk.ui.draft_worker import DraftWorker

ALL_REGIONS = DraftSettings(selector_threshold=0.0)  # the random tiny model then writes a sentence


@pytest.fixture
def worker(qtbot, tiny_bundle):
    handle = DraftWorker()
    handle.configure(tiny_bundle, "cpu")
    yield handle
    handle.shutdown()


@pytest.fixture(scope="module")
def study(sample_study_dir):
    studies, errors = load_studies([sample_study_dir])
    assert not errors
    return studies[0]


def test_draft_runs_off_the_gui_thread_with_progress(worker, qtbot, study, monkeypatch):
    import rrg_desk.inference.pipeline as pipeline_module

    threads, stages = [], []
    real = pipeline_module.DraftPipeline.draft
    monkeypatch.setattr(pipeline_module.DraftPipeline, "draft",
                        lambda self, *a, **k: threads.append(threading.current_thread()) or real(self, *a, **k))
    worker.progressed.connect(lambda rid, stage, i, n: stages.append(stage))
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        request_id = worker.request_draft(study, ALL_REGIONS)
    assert blocker.args[0] == request_id
    draft = blocker.args[1]
    assert draft.study_uid == study.study_uid and draft.sentences and len(draft.findings) == 14
    assert threads and threads[0] is not threading.main_thread()
    assert stages == list(STAGES)
    assert not worker.is_busy()


def test_a_newer_request_drops_the_older_result(worker, qtbot, study):
    seen = []
    worker.finished.connect(lambda rid, draft: seen.append(rid))
    first = worker.request_draft(study, ALL_REGIONS)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        second = worker.request_draft(study, ALL_REGIONS)
    assert blocker.args[0] == second and seen == [second]
    assert first != second


def test_cancel_reports_cancelled_and_no_result(worker, qtbot, study):
    finished = []
    worker.finished.connect(lambda *args: finished.append(args))
    with qtbot.waitSignal(worker.cancelled, timeout=60_000) as blocker:
        request_id = worker.request_draft(study, ALL_REGIONS)
        worker.cancel()
    assert blocker.args == [request_id]
    worker.shutdown()  # drains the thread: a late result would have arrived by now
    qtbot.wait(10)
    assert finished == []


def test_a_bad_bundle_fails_with_a_readable_message(qtbot, tmp_path, study):
    worker = DraftWorker()
    worker.configure(tmp_path / "not-a-bundle", "cpu")
    try:
        with qtbot.waitSignal(worker.failed, timeout=30_000) as blocker:
            worker.request_draft(study)
        assert "bundle" in blocker.args[1].lower() and "Traceback" not in blocker.args[1]
    finally:
        worker.shutdown()


def test_no_bundle_configured_says_where_to_set_it(qtbot, study):
    worker = DraftWorker()
    try:
        with qtbot.waitSignal(worker.failed, timeout=30_000) as blocker:
            worker.request_draft(study)
        assert "Settings" in blocker.args[1]
    finally:
        worker.shutdown()


def test_describe_region_and_finding_heatmap(worker, qtbot, study):
    with qtbot.waitSignal(worker.regionDescribed, timeout=60_000) as blocker:
        worker.request_describe(study, (40.0, 40.0, 200.0, 300.0), ALL_REGIONS)
    sentence = blocker.args[1]
    assert sentence.region and sentence.heatmap is not None
    with qtbot.waitSignal(worker.heatmapReady, timeout=60_000) as blocker:
        worker.request_heatmap(study.frontal, "Cardiomegaly")
    assert blocker.args[1] == "Cardiomegaly" and blocker.args[2].ndim == 2
