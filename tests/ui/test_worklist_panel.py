"""The paging worklist on a synthetic store of 1,000 studies: queries run on the worklist's
own thread (the GUI thread returns at once), pages arrive in the store's order as the view
scrolls, a refresh keeps the rows loaded, the selection and the scroll position, search and
sort are answered by the store, stale answers are dropped, PACS statuses come with each page.
How long anything takes is measured by bench/bench_worklist.py, not here."""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from rrg_desk.pacs.outbox import DeliveryStatus
from rrg_desk.store import Database, WorklistQuery
from rrg_desk.ui.worklist_panel import PAGE_SIZE, STATUS_COLUMN, WorklistPanel
from tests.store.synthetic import synthetic_store_fixtures
from tests.ui.conftest import show_widget

STUDIES = 1_000
synthetic_path, db = synthetic_store_fixtures(STUDIES, audit_per_study=4)


class RecordingSource:
    """The store's reader, noting the thread and query of every call; `gate` holds calls back."""

    def __init__(self, db: Database) -> None:
        self.reader = db.worklist_reader()
        self.threads: list[threading.Thread] = []
        self.queries: list[tuple[WorklistQuery, int, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.closed = False

    def page(self, query, offset, limit, count):
        self.threads.append(threading.current_thread())
        self.queries.append((query, offset, limit))
        assert self.gate.wait(30)
        return self.reader.page(query, offset, limit, count)

    def close(self) -> None:
        self.closed = True
        self.reader.close()


@pytest.fixture
def source(db):
    return RecordingSource(db)


@pytest.fixture
def make_panel(qtbot, source):
    """Panels on `source` (PACS statuses from `pacs_status`, if given), shown; shut down at the end."""
    made = []

    def make(pacs_status=None) -> WorklistPanel:
        widget = show_widget(qtbot, WorklistPanel(lambda: source, pacs_status), (900, 600))
        made.append(widget)
        return widget

    yield make
    source.gate.set()
    for widget in made:
        widget.shutdown()


@pytest.fixture
def panel(make_panel):
    return make_panel()


def refreshed(qtbot, panel: WorklistPanel) -> None:
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.refresh()


def worklist_order(db: Database, search: str = "") -> list[str]:
    return [r.study_uid for r in db.list_studies(search, order_by="worklist", descending=False)]


def test_queries_run_on_the_worklist_thread(qtbot, panel, source, db):
    refreshed(qtbot, panel)
    assert source.threads and all(t is not threading.main_thread() for t in source.threads)
    assert panel.visible_uids() == worklist_order(db)[:PAGE_SIZE]
    assert panel.count_label.text() == "1,000 studies"
    first = panel.model.record(0)
    assert first.status not in ("signed", "amended")  # studies still to report come first


def test_refresh_returns_before_the_store_answers(qtbot, panel, source, db):
    source.gate.clear()  # the store is slow: the GUI thread must not wait for it
    panel.refresh()
    assert panel.model.rowCount() == 0
    qtbot.waitUntil(lambda: len(source.queries) == 1, timeout=5_000)  # the query is running...
    assert panel.model.rowCount() == 0  # ...and the GUI thread is here, free
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        source.gate.set()
    assert panel.visible_uids() == worklist_order(db)[:PAGE_SIZE]


def test_scrolling_loads_the_next_pages_in_order(qtbot, panel, source, db):
    refreshed(qtbot, panel)
    assert panel.model.canFetchMore()
    with qtbot.waitSignal(panel.pageAppended, timeout=10_000):
        panel.table.scrollToBottom()  # the view asks the model for more (fetchMore)
    assert panel.model.rowCount() == 2 * PAGE_SIZE
    assert source.queries[-1][1:] == (PAGE_SIZE, PAGE_SIZE)  # offset, limit: the next page only
    assert panel.visible_uids() == worklist_order(db)[:2 * PAGE_SIZE]
    while panel.model.canFetchMore():
        with qtbot.waitSignal(panel.pageAppended, timeout=10_000):
            panel.model.fetchMore()
    assert panel.visible_uids() == worklist_order(db) and not panel.model.canFetchMore()


def test_a_refresh_keeps_rows_selection_and_scroll(qtbot, panel, source, db):
    refreshed(qtbot, panel)
    with qtbot.waitSignal(panel.pageAppended, timeout=10_000):
        panel.model.fetchMore()
    chosen = panel.uid_at(300)
    panel.table.selectRow(300)
    panel.table.scrollTo(panel.model.index(300, 0))
    scroll = panel.table.verticalScrollBar().value()
    assert scroll > 0
    top = panel.uid_at(0)
    db.set_status(top, "signed")  # signed elsewhere: it leaves the top of the worklist
    refreshed(qtbot, panel)
    assert source.queries[-1][1:] == (0, 2 * PAGE_SIZE)  # everything shown, in one query
    assert panel.model.rowCount() == 2 * PAGE_SIZE and panel.uid_at(0) != top
    assert panel.visible_uids() == worklist_order(db)[:2 * PAGE_SIZE]
    selected = panel.table.selectionModel().selectedRows()
    assert [panel.uid_at(i.row()) for i in selected] == [chosen]
    assert panel.table.verticalScrollBar().value() == scroll
    waiting = panel.model.record(5)  # still to report: drafted <-> in progress keeps its place
    new_status = "drafted" if waiting.status == "in_progress" else "in_progress"
    db.set_status(waiting.study_uid, new_status)
    resets = []
    panel.model.modelReset.connect(lambda: resets.append(1))
    refreshed(qtbot, panel)
    assert panel.model.record(5).status == new_status and resets == []  # updated in place


def test_search_and_sort_are_answered_by_the_store(qtbot, panel, source, db):
    refreshed(qtbot, panel)
    patient_id = panel.model.record(3).patient_id
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.search.setText(patient_id.lower())  # after the typing pause
    assert panel.visible_uids() == worklist_order(db, patient_id) != []
    assert source.queries[-1][0].search == patient_id.lower()
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.search.setText("chest pa and")
    assert panel.visible_uids() == worklist_order(db, "chest pa and")[:PAGE_SIZE]
    assert panel.count_label.text() == f"{len(worklist_order(db, 'chest pa and')):,} studies"
    panel.search.clear()
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # a click on Patient
    names = [r.study_uid for r in db.list_studies(order_by="patient_name", descending=False, limit=PAGE_SIZE)]
    assert panel.visible_uids() == names
    asked = len(source.queries)
    panel.table.horizontalHeader().setSortIndicator(6, Qt.SortOrder.AscendingOrder)  # PACS: not a store column
    assert panel.table.horizontalHeader().sortIndicatorSection() == 0 and len(source.queries) == asked
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.table.horizontalHeader().setSortIndicator(STATUS_COLUMN, Qt.SortOrder.AscendingOrder)
    assert panel.visible_uids() == worklist_order(db)[:PAGE_SIZE]


def test_an_answer_to_an_older_question_is_not_shown(qtbot, panel, source, db):
    refreshed(qtbot, panel)
    shown = []
    panel.model.modelReset.connect(lambda: shown.append(panel.visible_uids()))
    source.gate.clear()
    panel.search.setText("PID")
    panel.refresh()  # asks for "PID"; blocked in the store
    qtbot.waitUntil(lambda: source.queries[-1][0].search == "PID", timeout=5_000)
    panel.search.setText("portable")
    panel.refresh()  # folded into one more query once "PID" answers
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        source.gate.set()
    assert [q[0].search for q in source.queries[-2:]] == ["PID", "portable"]
    assert shown == [worklist_order(db, "portable")[:PAGE_SIZE]]  # "PID" rows never appeared
    assert panel.visible_uids() == worklist_order(db, "portable")[:PAGE_SIZE]


def test_pacs_statuses_come_with_each_page(qtbot, make_panel, db):
    asked = []

    def statuses(uids):
        asked.append((threading.current_thread(), list(uids)))
        return {uid: DeliveryStatus("failed", "pacs", "connection refused") for uid in uids[:2]}

    panel = make_panel(statuses)
    refreshed(qtbot, panel)
    assert asked[-1][0] is not threading.main_thread()
    assert asked[-1][1] == panel.visible_uids()
    assert panel.model.pacs_label(panel.uid_at(0)) == "Failed: connection refused"
    assert panel.model.index(1, 6).data() == "Failed: connection refused"
    assert panel.model.index(2, 6).data() == ""
    with qtbot.waitSignal(panel.pageAppended, timeout=10_000):
        panel.model.fetchMore()
    assert asked[-1][1] == panel.visible_uids()[PAGE_SIZE:]  # only the new page's studies
    assert panel.model.index(PAGE_SIZE, 6).data() == "Failed: connection refused"


def test_shutdown_closes_the_reader_and_stops_querying(qtbot, panel, source):
    refreshed(qtbot, panel)
    asked = len(source.queries)
    panel.shutdown()
    assert source.closed
    panel.refresh()
    assert len(source.queries) == asked
