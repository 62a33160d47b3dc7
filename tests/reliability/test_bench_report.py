"""docs/benchmarks.md: every figure beside its target, met or missed and by how much."""
from __future__ import annotations

import json

from bench.common import result
from bench.report import margin, write_report


def test_margins_for_lower_and_higher_is_better():
    assert margin(result("draft_p50", 650.0, "ms", 1000.0)).startswith("met, 350 ms to spare (35%)")
    assert margin(result("stall", 89.4, "ms", 50.0)) == "**MISSED** by 39.4 ms (79%)"
    assert margin(result("train", 0.05, "steps/s", 0.1, lower_is_better=False)) == "**MISSED** by 0.05 steps/s (50%)"
    assert margin(result("load", 12.0, "ms", None)) == "no target"


def test_report_table_lists_every_row_and_the_missed_ones(tmp_path):
    rows = [result("a_open_p50", 17.2, "ms", 150.0, p95_ms=44.4), result("b_stall", 89.4, "ms", 50.0, note="cold"),
            result("c_load", 120.0, "ms", None)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"updated": "2026-01-01T00:00:00", "results": rows}))
    text = write_report(results, tmp_path / "docs" / "benchmarks.md").read_text()
    assert "**1 of 2 targets met; 1 missed.**" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split(" | ")[0] for line in table] == ["| a_open_p50", "| b_stall", "| c_load"]
    assert "p95_ms 44.4" in table[0] and "MISSED** by 39.4 ms" in table[1]
    assert "## Missed targets" in text and "`b_stall`: 89.4 ms against 50 ms" in text


def test_issue_17_figures_have_their_own_section_beside_their_targets(tmp_path):
    rows = [result("cli_cold_draft_ratio", 2.1, "x", 1.2), result("workstation_peak_rss_full_flow", 1361.0, "MB", 1536.0),
            result("cli_import_floor_ratio", 1.0, "x", None), result("a_open_p50", 17.2, "ms", 150.0)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"updated": "2026-01-01T00:00:00", "results": rows}))
    text = write_report(results, tmp_path / "docs" / "benchmarks.md").read_text()
    section = text.split("## Ready when the radiologist is (issue 17)", 1)[1].split("\n## ", 1)[0]
    assert "other work may share" in section and "import torch, torchvision" in section  # how it was measured
    assert "(`cli_cold_draft_ratio`) | 2.1 x | 1.2 x | **MISSED** by 0.9 x (75%) |" in section
    assert "(`workstation_peak_rss_full_flow`) | 1,361 MB | 1,536 MB | met" in section
    assert "a_open_p50" not in section
    # the floor is what the models are built from: plain torch since timm and torchvision left the draft path
    assert "importing torch alone (what the models are built from; no torchvision package)" in section
    assert "timm" not in section
