from __future__ import annotations

import json

import pytest

from rrg_desk.reports.labeler import NEGATIVE, POSITIVE, label_report
from rrg_desk.reports.templates import DEFAULT_MACROS, NORMAL_CHEST_TEMPLATE, MacroError, MacroStore


def test_normal_template_reads_as_normal_to_the_labeler():
    labels = label_report(NORMAL_CHEST_TEMPLATE.findings + " " + NORMAL_CHEST_TEMPLATE.impression)
    assert labels["No Finding"] == POSITIVE
    assert labels["Pleural Effusion"] == NEGATIVE and labels["Pneumothorax"] == NEGATIVE
    assert not any(v == POSITIVE for k, v in labels.items() if k != "No Finding")


def test_defaults_without_a_file(tmp_path):
    store = MacroStore(tmp_path / "macros.json")
    assert store.get("NFD") == "No acute cardiopulmonary abnormality."
    assert store.names() == sorted(DEFAULT_MACROS)


def test_default_path_is_in_the_user_data_folder(isolated_user_data):
    assert MacroStore().path.parent == isolated_user_data


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "sub" / "macros.json"
    store = MacroStore(path)
    store.set("eff", "Small left pleural effusion.")
    store.remove("cmp")
    store.save()
    assert json.loads(path.read_text())["eff"] == "Small left pleural effusion."
    again = MacroStore(path)
    assert again.get("eff") == "Small left pleural effusion." and again.get("cmp") is None
    assert not list(path.parent.glob(".macros-*"))  # no temporary left behind


def test_invalid_macros_are_refused(tmp_path):
    store = MacroStore(tmp_path / "m.json")
    with pytest.raises(MacroError):
        store.set("two words", "x")
    with pytest.raises(MacroError):
        store.set("ok", "   ")


def test_damaged_file_falls_back_to_defaults(tmp_path):
    path = tmp_path / "macros.json"
    path.write_text("{not json")
    assert MacroStore(path).get("nfd") == DEFAULT_MACROS["nfd"]
    path.write_text("[1, 2]")
    assert MacroStore(path).items() == DEFAULT_MACROS
