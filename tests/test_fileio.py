"""Atomic writes: the target is whole or untouched, and no temporary file is left behind."""
from __future__ import annotations

import pytest

from rrg_desk.fileio import replacing, write_bytes_atomic, write_text_atomic


def test_text_and_bytes_replace_the_old_content(tmp_path):
    target = tmp_path / "settings.json"
    target.write_text("old", encoding="utf-8")
    assert write_text_atomic(target, "névé\n") == target
    assert target.read_text(encoding="utf-8") == "névé\n"
    assert write_bytes_atomic(target, b"\x00\x01") == target and target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_newline_is_written_as_asked(tmp_path):
    target = write_text_atomic(tmp_path / "audit.csv", "a\r\nb\n", newline="")
    assert target.read_bytes() == b"a\r\nb\n"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old report")
    with pytest.raises(RuntimeError, match="painter failed"):
        with replacing(target) as tmp:
            tmp.write_bytes(b"half a rep")
            raise RuntimeError("painter failed")
    assert target.read_bytes() == b"old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_an_unencodable_text_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "macros.json"
    target.write_text("{}", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "\u2603 snowman", encoding="ascii")
    assert target.read_text(encoding="utf-8") == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["macros.json"]


def test_a_missing_folder_is_the_oserror_the_caller_words(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "gone" / "report.txt", b"text")
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_sits_beside_the_target_and_is_hidden(tmp_path):
    target = tmp_path / "image.dcm"
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".image.dcm-") and tmp.suffix == ".part"
        tmp.write_bytes(b"DICM")
    assert target.read_bytes() == b"DICM" and not tmp.exists()


def test_patient_data_is_private_and_model_files_follow_the_umask(tmp_path):
    import os

    from rrg_desk.fileio import _UMASK

    private = write_text_atomic(tmp_path / "report.txt", "findings")
    shared = write_text_atomic(tmp_path / "card.json", "{}", shared=True)
    assert private.stat().st_mode & 0o777 == 0o600
    assert shared.stat().st_mode & 0o777 == 0o666 & ~_UMASK
    assert os.umask(_UMASK) == _UMASK  # reading the umask at import left it as it was
