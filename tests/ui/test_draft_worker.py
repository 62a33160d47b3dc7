"""The model worker: drafts in the inference child process with progress, cancel, errors,
dropped results; warm start, requests queued while the models load, switching bundles."""
from __future__ import annotations

import os

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


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory):
    """A second tiny bundle (another id): switching to it makes the child load models again."""
    from rrg_desk.models.bundle import build_random_bundle

    return build_random_bundle(tmp_path_factory.mktemp("bundles") / "other", size="tiny", seed=3)


@pytest.fixture(scope="module")
def study(sample_study_dir):
    studies, errors = load_studies([sample_study_dir])
    assert not errors
    return studies[0]


def test_draft_runs_in_the_inference_process_with_progress(worker, qtbot, study):
    stages = []
    worker.progressed.connect(lambda rid, stage, i, n: stages.append(stage))
    with qtbot.waitSignal(worker.finished, timeout=120_000) as blocker:
        request_id = worker.request_draft(study, ALL_REGIONS)
    assert blocker.args[0] == request_id
    draft = blocker.args[1]
    assert draft.study_uid == study.study_uid and draft.sentences and len(draft.findings) == 14
    assert worker.child_pid is not None and worker.child_pid != os.getpid()  # not in the GUI process
    assert stages == list(STAGES)
    assert not worker.is_busy() and worker.models_ready()


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
    worker.finished.connect(lambda rid, draft: finished.append(rid))
    with qtbot.waitSignal(worker.cancelled, timeout=60_000) as blocker:
        request_id = worker.request_draft(study, ALL_REGIONS)
        worker.cancel()
    assert blocker.args == [request_id] and not worker.is_busy()
    with qtbot.waitSignal(worker.finished, timeout=120_000) as blocker:  # answered in order: the
        later = worker.request_draft(study, ALL_REGIONS)  # cancelled one's late answer came first
    assert finished == [later]


def test_a_bad_bundle_fails_with_a_readable_message(qtbot, tmp_path, study):
    worker = DraftWorker()
    worker.configure(tmp_path / "not-a-bundle", "cpu")
    try:
        with qtbot.waitSignal(worker.failed, timeout=120_000) as blocker:
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


def test_a_draft_asked_for_while_the_models_load_waits_and_runs_when_ready(worker, qtbot, study, other_bundle):
    worker.configure(other_bundle, "cpu")  # models this process has not loaded yet
    events = []
    worker.modelsStateChanged.connect(lambda state, text: events.append(state))
    worker.finished.connect(lambda rid, draft: events.append("draft"))
    worker.warm_up()
    assert worker.models_state == "loading"
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        worker.request_draft(study, ALL_REGIONS)  # queued behind the loading, not refused
    assert events[-2:] == ["ready", "draft"]


def test_switching_bundles_warms_the_new_one(worker, qtbot, other_bundle):
    import json

    worker.warm_up()
    qtbot.waitUntil(worker.models_ready, timeout=120_000)
    with qtbot.waitSignal(worker.modelsStateChanged, timeout=10_000,
                          check_params_cb=lambda state, text: state == "loading"):
        worker.configure(other_bundle, "cpu")  # as Settings or Make active do
    qtbot.waitUntil(worker.models_ready, timeout=120_000)
    bundle_id = json.loads((other_bundle / "card.json").read_text())["bundle_id"]
    assert bundle_id in worker.models_tooltip


def test_warming_a_folder_without_a_bundle_starts_nothing(qtbot, tmp_path):
    worker = DraftWorker()
    try:
        worker.configure(tmp_path, "cpu")
        worker.warm_up()
        assert worker.models_state == "failed" and "card.json" in worker.models_tooltip
    finally:
        worker.shutdown()
