"""Crash-safety campaign: SIGKILL the scripted session (fuzz/crash_child.py) at random moments
while it autosaves, signs, exports and imports; after every kill check that

- the database passes PRAGMA integrity_check (and foreign_key_check);
- every signed report the child saw returned is there, unchanged (id, sha256, text), and
  every stored signed report still matches its checksum;
- the latest autosaved draft of each study is in the database (the last confirmed text, or
  the one being saved at the kill) and a restarted Session restores it as "recovered";
- every export file present is complete (parses); only hidden temporary files may remain.

    run_crash_campaign(iterations, workdir, seed=0, max_delay_s=0.8) -> dict
"""
from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a line cut by the kill: the action it announced did not complete
            continue
    return events


def _interrupted(run_events: list[dict]) -> str:
    last = run_events[-1] if run_events else None
    return last["action"] if last and last["event"] == "begin" else "between actions"


def check_integrity(db_path: Path) -> list[str]:
    conn = sqlite3.connect(str(db_path))
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        foreign = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    problems = [] if result == ["ok"] else [f"integrity_check: {result[:5]}"]
    if foreign:
        problems.append(f"foreign_key_check: {foreign[:5]}")
    return problems


def check_signed(db, events: list[dict]) -> tuple[list[str], int]:
    """Every confirmed signature present and unchanged; every stored one verifies."""
    problems, confirmed = [], 0
    by_study: dict[str, dict[int, object]] = {}
    for event in events:
        if event["event"] != "signed":
            continue
        confirmed += 1
        uid = event["study"]
        if uid not in by_study:
            by_study[uid] = {r.id: r for r in db.signed_reports(uid)}
        stored = by_study[uid].get(event["report_id"])
        if stored is None:
            problems.append(f"signed report {event['report_id']} of {uid} LOST")
            continue
        same_text = (stored.addendum_text == event.get("text") if event["kind"] == "addendum" else
                     (stored.findings_text, stored.impression_text) == (event["findings"], event["impression"]))
        if stored.sha256 != event["sha256"] or stored.kind != event["kind"] or not same_text:
            problems.append(f"signed report {event['report_id']} of {uid} ALTERED")
    for record in db.list_studies():
        for report in db.signed_reports(record.study_uid):
            if not report.verify():
                problems.append(f"signed report {report.id} fails its checksum")
    return problems, confirmed


def check_drafts(db_path: Path, run_events: list[dict]) -> tuple[list[str], int, float]:
    """The latest autosave of each study of the killed run is stored and restored on restart."""
    from rrg_desk.app.session import Session
    from rrg_desk.app.settings import AppSettings
    from rrg_desk.store import Database

    expected: dict[str, set[str]] = {}
    for event in run_events:  # the confirmed text, plus a save that was in flight at the kill
        if event["event"] == "autosaved":
            expected[event["study"]] = {event["text"]}
        elif event["event"] == "begin" and event.get("action") == "autosave":
            expected.setdefault(event["study"], set()).add(event["text"])
    problems, restored, seconds = [], 0, 0.0
    start = time.perf_counter()
    db = Database.open(db_path)
    try:
        session = Session(db, AppSettings(user_name="checker", auto_draft=False))
        recoverable = set(db.unsaved_recovery())
        confirmed = {e["study"]: e["text"] for e in run_events if e["event"] == "autosaved"}
        for uid, texts in expected.items():
            if db.is_signed(uid):
                continue  # signing turned the draft into the signed report
            stored = db.load_draft(uid)
            text = stored.findings_text() if stored is not None else None
            if text not in texts:
                if uid in confirmed or text is not None:
                    problems.append(f"draft of {uid}: stored {str(text)[:60]!r}, expected one of "
                                    f"{[t[:60] for t in texts]}")
                continue
            if uid not in recoverable:
                problems.append(f"draft of {uid} not offered for recovery after the kill")
        last = next((e["study"] for e in reversed(run_events) if e["event"] == "autosaved"
                     and not db.is_signed(e["study"])), None)
        if last is not None:
            opened = session.open_study(last)
            if not opened.recovered or session.document.findings_text() not in expected[last]:
                problems.append(f"Session did not restore the draft of {last} (recovered={opened.recovered})")
            restored = 1
        seconds = time.perf_counter() - start
        db.mark_clean_shutdown()
    finally:
        db.close()
    return problems, restored, seconds


def check_exports(folder: Path) -> tuple[list[str], int, int]:
    import pydicom
    from PIL import Image

    problems, checked, leftovers = [], 0, 0
    for path in folder.iterdir():
        if path.name.startswith("."):
            leftovers += 1  # a temporary file the kill left behind; never a report file
            continue
        checked += 1
        try:
            if path.name.endswith(".json"):
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".dcm":
                pydicom.dcmread(path).ContentSequence
            elif path.suffix == ".png":
                with Image.open(path) as image:
                    image.load()
            elif path.suffix == ".txt" and "FINDINGS" not in path.read_text(encoding="utf-8"):
                raise ValueError("no FINDINGS section")
        except Exception as exc:  # noqa: BLE001 - any unreadable export is the finding
            problems.append(f"export {path.name} incomplete: {type(exc).__name__}: {exc}")
    return problems, checked, leftovers


def prepare(workdir: Path) -> dict[str, Path]:
    from rrg_desk.paths import samples_dir
    from rrg_desk.store import Database

    paths = {name: workdir / name for name in ("exports", "imports")}
    for folder in paths.values():
        folder.mkdir(parents=True, exist_ok=True)
    paths["db"] = workdir / "crash.sqlite3"
    paths["events"] = workdir / "events.jsonl"
    with Database.open(paths["db"]) as db:
        db.import_studies([samples_dir()])
        db.mark_clean_shutdown()
    return paths


def run_crash_campaign(iterations: int, workdir: Path, seed: int = 0, max_delay_s: float = 0.8,
                       progress: bool = False) -> dict:
    from rrg_desk.store import Database

    paths = prepare(workdir)
    rng = random.Random(seed)
    failures, interrupted = [], Counter()
    confirmed_signed = drafts_restored = exports_checked = leftovers = 0
    recovery_seconds = []
    started = time.time()
    for iteration in range(iterations):
        run = seed * 100_000 + iteration
        child = subprocess.Popen([sys.executable, "-m", "fuzz.crash_child", str(paths["db"]), str(paths["events"]),
                                  str(paths["exports"]), str(paths["imports"]), str(run)],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if child.stdout.readline().strip() != "ready":
            child.kill()
            failures.append({"iteration": iteration, "problems": [f"child did not start: {child.stderr.read()[-500:]}"]})
            continue
        time.sleep(rng.uniform(0.01, max_delay_s))
        child.kill()  # SIGKILL, our own child
        child.wait(timeout=30)
        early_exit = child.returncode != -9
        events = _events(paths["events"])
        run_events = [e for e in events if e.get("run") == run]
        interrupted[_interrupted(run_events)] += 1
        problems = check_integrity(paths["db"])
        if early_exit:
            problems.append(f"child exited by itself ({child.returncode}): {child.stderr.read()[-500:]}")
        draft_problems, restored, seconds = check_drafts(paths["db"], run_events)  # the restart
        problems += draft_problems
        with Database.open(paths["db"]) as db:
            signed_problems, confirmed = check_signed(db, events)
            db.mark_clean_shutdown()  # the parent's own look is not a crash
        problems += signed_problems
        export_problems, checked, left = check_exports(paths["exports"])
        problems += export_problems
        confirmed_signed, drafts_restored = confirmed, drafts_restored + restored
        exports_checked, leftovers = checked, left
        recovery_seconds.append(seconds)
        if problems:
            failures.append({"iteration": iteration, "interrupted": _interrupted(run_events), "problems": problems})
        if progress and (iteration + 1) % 25 == 0:
            print(f"  crash: {iteration + 1}/{iterations} kills, {len(failures)} failing", flush=True)
    events = _events(paths["events"])
    return {
        "iterations": iterations, "failures": len(failures), "failure_examples": failures[:20],
        "interrupted_actions": dict(interrupted),
        "events": dict(Counter(e["event"] for e in events if e["event"] != "begin")),
        "export_failures": dict(Counter(e["message"][:120] for e in events if e["event"] == "export_failed")),
        "signed_reports_confirmed_and_verified": confirmed_signed,
        "drafts_restored_by_session": drafts_restored,
        "export_files_checked": exports_checked, "temporary_files_left_by_kills": leftovers,
        "max_restart_check_seconds": round(max(recovery_seconds, default=0.0), 3),
        "wall_seconds": round(time.time() - started, 1),
    }
