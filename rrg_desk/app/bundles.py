"""Installed model bundles, Qt-free: list them with their cards, switch the active one, and
draft one study with two bundles to compare them.

Bundles live in resources/models/* (shipped) and in <user data>/bundles/* (fine-tunes made
on this site: `python -m train finetune` writes there by default). Listing reads each card
with rrg_desk.models.card.read_card (JSON, no torch), so the admin view opens instantly and
refuses what loading would refuse; drafting imports the pipeline lazily. The active bundle is AppSettings.bundle_dir; the UI applies a new value the way it
applies any settings change (DraftWorker.configure), so the next draft uses it.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from rrg_desk.app.settings import AppSettings
from rrg_desk.inference.request import DraftSettings
from rrg_desk.models.card import CARD_FILE, BundleCard, BundleError, ParentBundle, read_card
from rrg_desk.paths import resources_dir, user_data_dir

log = logging.getLogger(__name__)

SHIPPED, LOCAL = "shipped", "local"


def user_bundles_dir() -> Path:
    return user_data_dir() / "bundles"


def bundle_roots() -> list[tuple[Path, str]]:
    return [(resources_dir() / "models", SHIPPED), (user_bundles_dir(), LOCAL)]


@dataclass(frozen=True)
class BundleInfo:
    folder: Path
    source: str  # SHIPPED | LOCAL
    card: BundleCard | None  # None: the card cannot be read (`problem` says why)
    problem: str = ""  # why it cannot be used ("" when the card looks complete)

    @property
    def bundle_id(self) -> str:
        return self.card.bundle_id if self.card is not None else f"({self.folder.name})"

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def created(self) -> str:
        return self.card.created if self.card is not None else ""

    @property
    def parent(self) -> ParentBundle | None:
        return self.card.parent if self.card is not None else None

    @property
    def _training(self) -> dict:
        return self.card.records.training if self.card is not None else {}

    @property
    def _metrics(self) -> dict:
        return self.card.records.metrics if self.card is not None else {}

    @property
    def trained_on(self) -> str:
        """One line: the data the weights saw (a fine-tune names its local data and parent's)."""
        training = self._training
        data = training.get("data")
        if training.get("kind") == "finetune" and isinstance(data, dict):
            parts = "+".join(training.get("trained", []))
            return f"fine-tuned ({parts}) on {data.get('local', '?')} [{data.get('layout', '?')}]"
        if isinstance(data, dict):
            named = [f"{key}: {Path(str(value)).name}" for key, value in data.items()
                     if isinstance(value, str) and value]
            return ", ".join(named) or "?"
        return str(training.get("note", "")) or "unknown"

    def metrics(self) -> dict[str, float | None]:
        """Headline metrics of the card (test metrics, or a fine-tune's local validation)."""
        metrics = self._metrics
        model = metrics.get("model") if isinstance(metrics.get("model"), dict) else {}
        nlg, ce = model.get("nlg", {}) or {}, model.get("ce", {}) or {}
        return {"BLEU-4": nlg.get("BLEU-4"), "CIDEr": nlg.get("CIDEr"), "CE micro F1": ce.get("micro_f1"),
                "classifier mean AUC": _classifier_mean_auc(metrics),
                "detector mean IoU": (metrics.get("detector") or {}).get("mean_iou")}

    @property
    def metrics_scope(self) -> str:
        return str(self._metrics.get("split", ""))

    def describe(self) -> str:
        """The card in words, for the admin view's details pane."""
        lines = [f"Bundle {self.bundle_id} ({self.source}) in {self.folder}", f"Created: {self.created or '?'}",
                 f"Trained on: {self.trained_on}"]
        if self.parent:
            lines.append(f"Parent: {self.parent.bundle_id} ({self.parent.folder})")
        scope = f" on {self.metrics_scope}" if self.metrics_scope else ""
        values = [f"{k} {v:.3f}" for k, v in self.metrics().items() if isinstance(v, (int, float))]
        lines.append(f"Metrics{scope}: " + (", ".join(values) if values else "none recorded"))
        evaluation = self.card.records.finetune_evaluation if self.card is not None else None
        if evaluation is not None:
            for side in ("parent", "child"):
                scores = (evaluation.get(side) or {}).get("model", {})
                nlg, ce = scores.get("nlg", {}), scores.get("ce", {})
                lines.append(f"  {side}: BLEU-4 {_fmt(nlg.get('BLEU-4'))}, CIDEr {_fmt(nlg.get('CIDEr'))}, "
                             f"CE micro F1 {_fmt(ce.get('micro_f1'))}")
        if self.problem:
            lines.append(f"Cannot be used: {self.problem}")
        return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"


def read_bundle_info(folder: str | Path, source: str = LOCAL) -> BundleInfo:
    """The card of `folder` (JSON only: the weights are neither read nor hashed); a card that
    would not load, or a file it lists that is absent, becomes `problem`."""
    folder = Path(folder)
    try:
        card = read_card(folder)
    except BundleError as exc:
        return BundleInfo(folder, source, None, exc.user_message)
    files = [entry.file for entry in card.components.values()] + [card.tokenizer.file]
    absent = [name for name in files if not (folder / name).is_file()]
    problem = f"The model bundle is incomplete: {', '.join(absent)} missing." if absent else ""
    return BundleInfo(folder, source, card, problem)


def bundle_problem(folder: str | Path) -> str:
    """Why `folder` is not a usable model bundle, in words; "" when it looks fine, or when no
    folder is given (drafting is off until one is chosen)."""
    if not str(folder).strip():
        return ""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return f"The folder {folder} does not exist."
    return read_bundle_info(folder).problem


def list_bundles(roots: list[tuple[Path, str]] | None = None) -> list[BundleInfo]:
    """Every folder with a card.json under the roots, newest first within each root."""
    found: list[BundleInfo] = []
    for root, source in roots if roots is not None else bundle_roots():
        if not root.is_dir():
            continue
        infos = [read_bundle_info(folder, source) for folder in root.iterdir()
                 if folder.is_dir() and not folder.name.startswith(".") and (folder / CARD_FILE).exists()]
        found += sorted(infos, key=lambda info: info.created, reverse=True)
    return found


def is_active(info: BundleInfo, settings: AppSettings) -> bool:
    return bool(settings.bundle_dir) and _same(info.folder, Path(settings.bundle_dir))


def _same(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return False


def with_active_bundle(settings: AppSettings, info: BundleInfo) -> AppSettings:
    """A copy of `settings` that drafts with `info` (refused when the bundle is unusable)."""
    if info.problem:
        raise ValueError(f"{info.folder} cannot be used: {info.problem}")
    return dataclasses.replace(settings, bundle_dir=str(info.folder))


def compare_drafts(study, folders: list[str | Path], device: str = "auto", cancel=None) -> list:
    """Draft `study` with each bundle (in order) -> list of Draft. Runs the models: call it
    from a worker thread."""
    from rrg_desk.inference.pipeline import DraftPipeline

    settings = DraftSettings(finding_heatmaps=False)
    return [DraftPipeline(folder, device).draft(study, settings, cancel=cancel) for folder in folders]


def draft_summary(draft) -> str:
    """A draft as text for a side-by-side view: findings, impression, positive findings."""
    positive = [f"{f.name} {f.probability:.2f}" for f in draft.findings if f.positive]
    others = [f"{f.name} {f.probability:.2f}" for f in sorted(draft.findings, key=lambda f: -f.probability)
              if not f.positive][:3]
    return "\n".join([f"Bundle {draft.bundle_id}", "", "FINDINGS:", draft.findings_text or "(none)", "",
                      "IMPRESSION:", draft.impression_text or "(none)", "",
                      "Positive findings: " + (", ".join(positive) or "none"),
                      "Most likely others: " + (", ".join(others) or "-")])


def _classifier_mean_auc(metrics: dict) -> float | None:
    """The NIH test mean AUC over the goal findings (train/classifier_evaluation.py), else the
    mean of an older card's per-finding `classifier_auc`."""
    groups = (metrics.get("classifier") or {}).get("groups") if isinstance(metrics.get("classifier"), dict) else None
    if isinstance(groups, dict):
        value = ((groups.get("nih") or {}).get("model") or {}).get("goal_mean_auc")
        return float(value) if isinstance(value, (int, float)) else None
    aucs = [v for v in (metrics.get("classifier_auc") or {}).values() if isinstance(v, (int, float))]
    return sum(aucs) / len(aucs) if aucs else None
