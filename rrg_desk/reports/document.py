"""The editable report: FINDINGS and IMPRESSION as sentences that remember who wrote them.

A model sentence stays "unreviewed" until the radiologist accepts it or edits it. The editor
feeds typed text back through `replace_section_text`, which re-splits the section and keeps
each sentence's provenance when its text survives (unchanged, moved, or edited in place).
`to_dict()` leaves the Draft out on purpose: autosave writes the document on every pause in
typing, and the draft (with its heatmaps) is stored once, separately.
"""
from __future__ import annotations

import difflib
import re
import uuid
from dataclasses import dataclass, field

from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.draft import Draft, Sentence, SentenceOrigin
from rrg_desk.reports.region_lexicon import primary_region
from rrg_desk.reports.text import split_sentences

DOCUMENT_FORMAT_VERSION = 1
SECTIONS = ("findings", "impression")
# free-text header sections of the printed report, before the findings (rrg_desk/reports/clinical.py
# fills them from the DICOM header; the radiologist edits them)
CLINICAL_SECTIONS = ("indication", "technique", "comparison")
# An edited model sentence keeps its identity (and region link) when it still resembles
# the model's wording this much; below, it counts as a new radiologist sentence.
_SAME_SENTENCE_SIMILARITY = 0.5
_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019-][A-Za-z0-9]+)*")


class DocumentError(ValueError):
    """Unknown section or sentence id, or a malformed serialised document."""


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class ReportSentence:
    text: str
    origin: SentenceOrigin = SentenceOrigin.RADIOLOGIST
    region: str | None = None  # region name the sentence describes (links text and overlay)
    model_text: str | None = None  # what the model wrote, for model sentences
    accepted: bool = False
    id: str = field(default_factory=_new_id)
    draft_index: int | None = None  # index in Draft.sentences (its heatmap), model sentences only

    def __post_init__(self) -> None:
        try:
            self.origin = SentenceOrigin(self.origin)
        except ValueError:
            raise DocumentError(f"origin must be one of {', '.join(SentenceOrigin)}, got {self.origin!r}") from None

    @property
    def edited(self) -> bool:
        return self.origin == SentenceOrigin.MODEL and self.text != self.model_text

    @property
    def unreviewed(self) -> bool:
        """Model text the radiologist has neither accepted nor changed."""
        return self.origin == SentenceOrigin.MODEL and not self.accepted and not self.edited

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "origin": self.origin, "region": self.region,
                "model_text": self.model_text, "accepted": self.accepted, "draft_index": self.draft_index}

    @classmethod
    def from_dict(cls, d: dict) -> "ReportSentence":
        try:
            return cls(text=str(d["text"]), origin=str(d.get("origin", SentenceOrigin.RADIOLOGIST)),
                       region=d.get("region"), model_text=d.get("model_text"),
                       accepted=bool(d.get("accepted", False)), id=str(d.get("id") or _new_id()),
                       draft_index=d.get("draft_index"))
        except (KeyError, TypeError) as exc:
            raise DocumentError(f"malformed report sentence: {exc!r}") from exc


def normalise_model_sentence(text: str) -> str:
    """Model output as a report sentence: trimmed, capitalised, ending with a full stop.

    Why: sentences are joined with spaces and re-split on every edit; an unterminated
    sentence would merge with the next one and lose its provenance."""
    text = " ".join(text.split())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return text


@dataclass
class ReportDocument:
    study_uid: str
    findings: list[ReportSentence] = field(default_factory=list)
    impression: list[ReportSentence] = field(default_factory=list)
    bundle_id: str = ""
    draft: Draft | None = None
    clinical: dict[str, str] = field(default_factory=dict)  # CLINICAL_SECTIONS -> text

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_draft(cls, draft: Draft) -> "ReportDocument":
        findings: list[ReportSentence] = []
        for index, sentence in enumerate(draft.sentences):
            for piece in split_sentences(normalise_model_sentence(sentence.text)):
                findings.append(ReportSentence(text=piece, origin=SentenceOrigin.MODEL, region=sentence.region,
                                               model_text=piece, accepted=sentence.accepted,
                                               draft_index=index))
        impression = [ReportSentence(text=piece, origin=SentenceOrigin.MODEL, region=None, model_text=piece)
                      for piece in split_sentences(normalise_model_sentence(draft.impression_text))]
        return cls(study_uid=draft.study_uid, findings=findings, impression=impression,
                   bundle_id=draft.bundle_id, draft=draft)

    # --- reading ------------------------------------------------------------------------
    def section(self, name: str) -> list[ReportSentence]:
        if name == "findings":
            return self.findings
        if name == "impression":
            return self.impression
        raise DocumentError(f"unknown section {name!r}; expected one of {SECTIONS}")

    def sentences(self) -> list[ReportSentence]:
        return [*self.findings, *self.impression]

    def sentence(self, sentence_id: str) -> ReportSentence:
        for sentence in self.sentences():
            if sentence.id == sentence_id:
                return sentence
        raise DocumentError(f"no sentence with id {sentence_id!r}")

    def section_of(self, sentence_id: str) -> str:
        for name in SECTIONS:
            if any(s.id == sentence_id for s in self.section(name)):
                return name
        raise DocumentError(f"no sentence with id {sentence_id!r}")

    def findings_text(self) -> str:
        return " ".join(s.text for s in self.findings)

    def impression_text(self) -> str:
        return " ".join(s.text for s in self.impression)

    def is_empty(self) -> bool:
        return not any(s.text.strip() for s in self.sentences())

    def word_count(self) -> int:
        return sum(len(_WORD.findall(s.text)) for s in self.sentences())

    def unreviewed_model_sentences(self) -> list[ReportSentence]:
        return [s for s in self.sentences() if s.unreviewed]

    def reviewed_by_radiologist(self) -> bool:
        """The radiologist wrote, accepted or edited something: their text outranks a new model
        draft, and the study counts as in progress."""
        return any(s.origin == SentenceOrigin.RADIOLOGIST or s.accepted or s.edited for s in self.sentences())

    def sentences_for_region(self, region: str) -> list[ReportSentence]:
        """Sentences describing `region`, for "click a region, scroll to its sentence"."""
        return [s for s in self.sentences() if s.region == region]

    def draft_sentence(self, sentence_id: str) -> Sentence | None:
        """The model's Sentence behind a report sentence (its heatmap), if any."""
        sentence = self.sentence(sentence_id)
        if self.draft is None or sentence.draft_index is None:
            return None
        if 0 <= sentence.draft_index < len(self.draft.sentences):
            return self.draft.sentences[sentence.draft_index]
        return None

    # --- review -------------------------------------------------------------------------
    def accept(self, sentence_id: str) -> None:
        self.sentence(sentence_id).accepted = True

    def reject(self, sentence_id: str) -> None:
        section = self.section(self.section_of(sentence_id))
        section[:] = [s for s in section if s.id != sentence_id]

    def accept_all(self) -> list[str]:
        """Accept every unreviewed model sentence; returns the ids accepted."""
        accepted = []
        for sentence in self.unreviewed_model_sentences():
            sentence.accepted = True
            accepted.append(sentence.id)
        return accepted

    # --- editing ------------------------------------------------------------------------
    def add_sentence(self, section: str, sentence: ReportSentence, index: int | None = None) -> None:
        sentences = self.section(section)
        if index is None:
            sentences.append(sentence)
        else:
            sentences.insert(index, sentence)

    def replace_section_text(self, section: str, text: str) -> None:
        """Take the editor's text for a section, keeping provenance where the text survives.

        Unchanged sentences keep their identity, even when moved. A sentence typed over a
        model sentence that still resembles it stays that model sentence, now edited; any
        other new or changed sentence is the radiologist's.
        """
        old = self.section(section)
        new_texts = split_sentences(text)
        matcher = difflib.SequenceMatcher(a=[s.text for s in old], b=new_texts, autojunk=False)
        result: list[ReportSentence | None] = [None] * len(new_texts)
        used: set[str] = set()
        pending: list[tuple[int, list[ReportSentence]]] = []  # (new index, candidates)
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            if tag == "equal":
                for offset in range(b1 - b0):
                    result[b0 + offset] = old[a0 + offset]
                    used.add(old[a0 + offset].id)
            elif tag in ("replace", "insert"):
                for offset in range(b1 - b0):
                    pending.append((b0 + offset, old[a0:a1]))
        by_text: dict[str, list[ReportSentence]] = {}
        for sentence in old:
            if sentence.id not in used:
                by_text.setdefault(sentence.text, []).append(sentence)
        # moved sentences first: an exact text match anywhere in the section
        for index, _ in pending:
            candidates = [s for s in by_text.get(new_texts[index], []) if s.id not in used]
            if candidates:
                result[index] = candidates[0]
                used.add(candidates[0].id)
        # then in-place edits of the sentences they replaced
        for index, replaced in pending:
            if result[index] is not None:
                continue
            result[index] = self._edited_or_new(new_texts[index], replaced, used)
        self.section(section)[:] = [s for s in result if s is not None]

    @staticmethod
    def _edited_or_new(text: str, replaced: list[ReportSentence], used: set[str]) -> ReportSentence:
        best, best_ratio = None, 0.0
        for sentence in replaced:
            if sentence.id in used:
                continue
            is_model = sentence.origin == SentenceOrigin.MODEL
            reference = sentence.model_text if is_model and sentence.model_text else sentence.text
            ratio = difflib.SequenceMatcher(a=reference.lower(), b=text.lower(), autojunk=False).ratio()
            if ratio > best_ratio:
                best, best_ratio = sentence, ratio
        if best is not None and best_ratio >= _SAME_SENTENCE_SIMILARITY:
            used.add(best.id)
            best.text = text
            return best
        region = primary_region(text)
        return ReportSentence(text=text, origin=SentenceOrigin.RADIOLOGIST,
                              region=None if region == WHOLE_IMAGE else region)

    # --- clinical header sections (indication, technique, comparison) --------------------
    def clinical_text(self, name: str) -> str:
        if name not in CLINICAL_SECTIONS:
            raise DocumentError(f"unknown section {name!r}; expected one of {CLINICAL_SECTIONS}")
        return self.clinical.get(name, "")

    def set_clinical_text(self, name: str, text: str) -> None:
        self.clinical_text(name)  # validates the name
        self.clinical[name] = " ".join(text.split())

    # --- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = {"format_version": DOCUMENT_FORMAT_VERSION, "study_uid": self.study_uid,
                "bundle_id": self.bundle_id,
                "findings": [s.to_dict() for s in self.findings],
                "impression": [s.to_dict() for s in self.impression]}
        clinical = {name: self.clinical[name] for name in CLINICAL_SECTIONS if name in self.clinical}
        if clinical:
            data["clinical"] = clinical
        return data

    @classmethod
    def from_dict(cls, d: dict, draft: Draft | None = None) -> "ReportDocument":
        version = d.get("format_version", DOCUMENT_FORMAT_VERSION)
        if version != DOCUMENT_FORMAT_VERSION:
            raise DocumentError(f"unknown report document format_version {version!r}")
        try:
            return cls(study_uid=str(d["study_uid"]), bundle_id=str(d.get("bundle_id", "")),
                       findings=[ReportSentence.from_dict(s) for s in d.get("findings", [])],
                       impression=[ReportSentence.from_dict(s) for s in d.get("impression", [])],
                       draft=draft,
                       clinical={name: str(text) for name, text in dict(d.get("clinical") or {}).items()
                                 if name in CLINICAL_SECTIONS})
        except (KeyError, TypeError) as exc:
            raise DocumentError(f"malformed report document: {exc!r}") from exc
