"""A whole draft (bundle load, open, draft, sign, export every core format) never opens a
socket and never unpickles; a bundle with one changed byte is refused."""
from __future__ import annotations

import _pickle
import io
import json
import pickle
import shutil
import socket

import numpy as np
import pytest
import torch

from rrg_desk.app.session import Session
from rrg_desk.app.settings import AppSettings
from rrg_desk.inference.pipeline import DraftPipeline, DraftSettings
from rrg_desk.models.bundle import (
    BundleCorruptError, BundleError, BundleHashMismatchError, build_random_bundle, card_digest, load_bundle,
    sha256_file,
)
from rrg_desk.paths import samples_dir
from rrg_desk.store import Database

FORMATS = ["txt", "json", "fhir", "sr", "png"]


@pytest.fixture(scope="module")
def seed_bundle(tmp_path_factory):
    return build_random_bundle(tmp_path_factory.mktemp("bundles") / "tiny", size="tiny", seed=0)


@pytest.fixture
def bundle(seed_bundle, tmp_path):
    """A private copy: the pipeline's cache must not hide the load under test."""
    return shutil.copytree(seed_bundle, tmp_path / "bundle")


def _draft_sign_and_export(bundle_dir, folder) -> dict:
    db = Database.open(folder / "store.sqlite3")
    try:
        db.import_studies([samples_dir() / "study1"])
        session = Session(db, AppSettings(user_name="Dr Offline", auto_draft=False))
        uid = db.list_studies()[0].study_uid
        opened = session.open_study(uid)
        # threshold 0: every region gets a sentence, so the generator really runs
        settings = DraftSettings(beam_size=1, max_len=8, selector_threshold=0.0)
        draft = DraftPipeline(bundle_dir, device="cpu").draft(opened.study, settings)
        assert session.apply_draft(draft) and draft.regions and "generate" in draft.timings_ms
        # random weights may generate empty sentences: the radiologist writes the report
        session.edit("findings", "Heart size is normal. " + draft.findings_text)
        session.edit("impression", "No acute cardiopulmonary abnormality.")
        out = folder / "exports"
        out.mkdir()
        written = session.export(FORMATS, out)
        session.accept_all()
        session.sign(reviewed_flags=session.check_before_sign())
        written |= {f"signed-{k}": v for k, v in
                    session.export(FORMATS, out, anonymise=True, include_key_image=True).items()}
        assert all(path.stat().st_size > 0 for path in written.values())
        return written
    finally:
        db.close()


class _NoSocket:
    created: list = []

    def __init__(self, *args, **kwargs):
        _NoSocket.created.append(args)
        raise OSError("socket creation is forbidden in this test")


def test_a_whole_draft_creates_no_socket_at_all(bundle, tmp_path, monkeypatch):
    _NoSocket.created = []
    monkeypatch.setattr(socket, "socket", _NoSocket)
    for name in ("create_connection", "getaddrinfo", "gethostbyname", "socketpair"):
        monkeypatch.setattr(socket, name, _NoSocket)
    written = _draft_sign_and_export(bundle, tmp_path)
    assert len(written) == 2 * len(FORMATS)
    assert _NoSocket.created == []


def test_no_code_path_unpickles(bundle, tmp_path, monkeypatch):
    calls = []

    def refuse(name):
        def forbidden(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called: unpickling is forbidden")
        return forbidden

    for module, names in ((pickle, ("load", "loads", "Unpickler")), (_pickle, ("load", "loads", "Unpickler")),
                          (torch, ("load",)), (torch.serialization, ("load",))):
        for name in names:
            monkeypatch.setattr(module, name, refuse(f"{module.__name__}.{name}"))
    real_np_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: real_np_load(*a, **{**k, "allow_pickle": False}))
    load_bundle(bundle)  # the loader on its own, then the whole workflow (which loads it again)
    _draft_sign_and_export(bundle, tmp_path)
    assert calls == []


def test_a_pickled_checkpoint_in_place_of_safetensors_is_refused_unread(bundle, monkeypatch):
    """Even with a matching checksum a pickle is never opened: safetensors only."""
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, buffer)
    (bundle / "detector.safetensors").write_bytes(buffer.getvalue())
    card = json.loads((bundle / "card.json").read_text())
    card["components"]["detector"]["sha256"] = sha256_file(bundle / "detector.safetensors")
    card["integrity"] = {"sha256": card_digest(card)}  # a fully consistent forgery
    (bundle / "card.json").write_text(json.dumps(card))
    calls = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append("pickle.load"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append("torch.load"))
    with pytest.raises(BundleCorruptError):
        load_bundle(bundle)
    assert calls == []


WEIGHT_AND_TOKENIZER = ["detector.safetensors", "classifier.safetensors", "generator.safetensors", "tokenizer.json"]


@pytest.mark.parametrize("name", WEIGHT_AND_TOKENIZER)
@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_one_changed_byte_in_any_listed_file_is_refused(bundle, name, where):
    path = bundle / name
    data = bytearray(path.read_bytes())
    position = int(where * len(data)) if isinstance(where, float) else where
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleHashMismatchError) as caught:
        load_bundle(bundle)
    assert name in caught.value.user_message


@pytest.mark.parametrize("component", ["detector", "classifier", "generator", "tokenizer"])
def test_one_changed_byte_in_a_checksum_of_the_card_is_refused(bundle, component):
    card_path = bundle / "card.json"
    card = json.loads(card_path.read_text())
    holder = card["tokenizer"] if component == "tokenizer" else card["components"][component]
    text = card_path.read_text()
    digest = holder["sha256"]
    changed = digest[:10] + ("0" if digest[10] != "0" else "1") + digest[11:]
    card_path.write_text(text.replace(digest, changed))
    with pytest.raises(BundleHashMismatchError):
        load_bundle(bundle)


def test_a_changed_structural_byte_of_the_card_is_refused(bundle):
    card_path = bundle / "card.json"
    card_path.write_bytes(b"[" + card_path.read_bytes()[1:])
    with pytest.raises(BundleError):
        load_bundle(bundle)


def test_one_changed_byte_in_a_card_value_is_refused(bundle):
    card_path = bundle / "card.json"
    card = json.loads(card_path.read_text())
    card["preprocessing"]["mean"] = 0.6 if card["preprocessing"]["mean"] != 0.6 else 0.7
    card_path.write_text(json.dumps(card, indent=2))
    with pytest.raises(BundleError):
        load_bundle(bundle)
