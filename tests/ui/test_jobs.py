"""The UI's one background-job runner: work runs in the pool, every callback on the GUI
thread, a failure arrives as one line for the user, a cancelled job is never heard from,
and shutdown drops the queued jobs and waits for the running one."""
from __future__ import annotations

import threading
import warnings

import pytest

from rrg_desk.errors import UserFacingError
from rrg_desk.ui.jobs import JobRunner, failure_message


class _Recorder:
    """Notes the thread of every callback and what it received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, bool]] = []

    def __getattr__(self, kind: str):
        return lambda *args: self.calls.append((kind, args, threading.current_thread() is threading.main_thread()))


@pytest.fixture
def runner(qtbot):
    jobs = JobRunner(max_threads=1)
    yield jobs
    jobs.shutdown(5_000)


def test_work_runs_in_the_pool_and_callbacks_on_the_gui_thread(qtbot, runner):
    seen, recorder = [], _Recorder()

    def work(job):
        seen.append(threading.current_thread())
        job.report(1, 2)
        return "done"

    job = runner.start(work, recorder.finished, recorder.failed, on_progress=recorder.progressed)
    assert runner.is_running(job)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5_000)
    assert seen and seen[0] is not threading.main_thread()
    assert recorder.calls == [("progressed", (1, 2), True), ("finished", ("done",), True)]


def test_a_user_facing_error_arrives_as_its_message(qtbot, runner):
    recorder = _Recorder()

    def work(_job):
        raise UserFacingError("The PACS cannot be reached.", detail="timeout")

    runner.start(work, recorder.finished, recorder.failed)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5_000)
    assert recorder.calls == [("failed", ("The PACS cannot be reached.",), True)]


def test_a_bug_arrives_as_its_type_and_text_and_is_logged(caplog):
    with caplog.at_level("ERROR", logger="rrg_desk.ui.jobs"):
        message = failure_message(KeyError("uid"))
    assert message == "KeyError: 'uid'"
    assert caplog.records and caplog.records[0].exc_info is not None


def test_a_cancelled_job_is_never_heard_from(qtbot, runner):
    gate, started, recorder = threading.Event(), threading.Event(), _Recorder()
    runner.start(lambda _job: gate.wait(5), recorder.first)  # holds the one thread
    queued = runner.start(lambda _job: "never", recorder.queued)
    queued.cancel()  # before it starts: it never runs

    def until_cancelled(job):
        started.set()
        while not job.is_cancelled():  # a long job checks between its stages
            gate.wait(0.01)
        return "late"

    running = runner.start(until_cancelled, recorder.running)
    gate.set()
    assert started.wait(5)
    running.cancel()  # while it runs: its late result is dropped
    qtbot.waitUntil(lambda: not runner.busy, timeout=5_000)
    assert [kind for kind, _args, _gui in recorder.calls] == ["first"]


def test_shutdown_drops_queued_jobs_and_waits_for_the_running_one(qtbot):
    runner = JobRunner(max_threads=1)
    gate, started, ran = threading.Event(), threading.Event(), []

    def first(_job):
        started.set()
        return gate.wait(5) and ran.append("running")

    runner.start(first, lambda _result: ran.append("callback"))
    runner.start(lambda _job: ran.append("queued"), lambda _result: ran.append("callback"))
    assert started.wait(5)  # on a loaded machine the pool thread may pick the first job up late
    threading.Timer(0.1, gate.set).start()
    assert runner.shutdown(5_000)
    qtbot.wait(20)  # a late delivery would arrive now
    assert ran == ["running"] and not runner.busy


def test_jobs_leave_the_warnings_machinery_alone(qtbot, runner):
    """Unlike superqt's workers, a job does not swap the process-wide warnings state."""
    show, filters = warnings.showwarning, list(warnings.filters)
    during = []
    gate = threading.Event()
    runner.start(lambda _job: gate.wait(5), lambda _result: None)
    during.append((warnings.showwarning, list(warnings.filters)))
    gate.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5_000)
    assert during == [(show, filters)] and warnings.showwarning is show and warnings.filters == filters
