"""Files and folders -> studies: DICOM grouped by Study Instance UID, a PNG/JPEG folder is
one study. Unreadable files are returned as errors, never raised."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from rrg_desk.imaging.errors import ImageReadError, UnreadableFileError
from rrg_desk.imaging.reader import read_image
from rrg_desk.imaging.types import Study, ViewPosition, XrayImage

log = logging.getLogger(__name__)

# Skipped silently while walking a folder (still read, and refused, when named explicitly).
_NOT_IMAGE_SUFFIXES = {
    ".txt", ".json", ".md", ".csv", ".tsv", ".xml", ".html", ".htm", ".pdf", ".doc",
    ".docx", ".rtf", ".py", ".yaml", ".yml", ".ini", ".cfg", ".log", ".zip", ".gz", ".tgz",
    ".tar", ".7z", ".exe", ".dll", ".so", ".db", ".sqlite", ".lnk", ".url",
}
_NOT_IMAGE_NAMES = {"dicomdir", "thumbs.db", "desktop.ini"}  # DICOMDIR is an index, no pixels
_VIEW_ORDER = {ViewPosition.PA: 0, ViewPosition.AP: 0, ViewPosition.UNKNOWN: 1, ViewPosition.LATERAL: 2}


def load_studies(paths: Iterable[str | Path]) -> tuple[list[Study], list[ImageReadError]]:
    """Read every image under `paths` (files and/or folders, walked recursively).

    Studies come back in the order they were first met, each with its images ordered
    frontal first, then unknown views, then lateral.
    """
    groups: dict[str, list[XrayImage]] = {}
    sources: dict[str, Path] = {}
    errors: list[ImageReadError] = []
    seen_files: set[Path] = set()
    seen_instances: set[str] = set()
    for file_path in _candidate_files(paths, errors):
        resolved = file_path.resolve()
        if resolved in seen_files:
            continue
        seen_files.add(resolved)
        try:
            image = read_image(file_path)
        except ImageReadError as error:
            log.info("skipped %s: %s", file_path, error.user_message)
            errors.append(error)
            continue
        if image.sop_instance_uid:
            if image.sop_instance_uid in seen_instances:
                log.info("skipped %s: same SOP Instance UID as an earlier file", file_path)
                continue
            seen_instances.add(image.sop_instance_uid)
        if not image.study_uid:  # PNG/JPEG, or a DICOM without the UID: the folder is the study
            image.study_uid = folder_study_uid(file_path.parent)
        groups.setdefault(image.study_uid, []).append(image)
        sources.setdefault(image.study_uid, file_path.parent)
    studies = [_make_study(uid, images, sources[uid]) for uid, images in groups.items()]
    return studies, errors


def folder_study_uid(folder: Path) -> str:
    """A stable DICOM-style UID for a folder of PNG/JPEG files (same folder -> same UID)."""
    # "2.25." + a 128-bit integer is the UUID-derived UID form of PS3.5 B.2
    digest = hashlib.sha256(f"rrg-desk-folder-study:{folder.resolve()}".encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def walk_image_files(folder: str | Path) -> list[Path]:
    """The files under `folder` that load_studies would read, recursively, in path order
    (hidden entries and obvious non-images such as .txt skipped, symlink loops followed once)."""
    return list(_walk(Path(folder), visited=set()))


def _candidate_files(paths: Iterable[str | Path], errors: list[ImageReadError]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from _walk(path, visited=set())
        elif path.exists():
            yield path  # named explicitly: read it whatever its name, so a refusal is reported
        else:
            errors.append(UnreadableFileError(path, "not found"))


def _walk(folder: Path, visited: set[Path]) -> Iterator[Path]:
    resolved = folder.resolve()
    if resolved in visited:  # a symlink loop
        return
    visited.add(resolved)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        log.warning("cannot list %s: %s", folder, exc)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, visited)
        elif entry.is_file() and not _obviously_not_an_image(entry):
            yield entry


def _obviously_not_an_image(path: Path) -> bool:
    return path.suffix.lower() in _NOT_IMAGE_SUFFIXES or path.name.lower() in _NOT_IMAGE_NAMES


def _make_study(study_uid: str, images: list[XrayImage], source: Path) -> Study:
    images = sorted(images, key=_image_order)
    first = images[0]
    return Study(
        study_uid=study_uid,
        images=images,
        patient=first.patient,
        study_date=first.study_date,
        accession_number=first.accession_number,
        description=first.study_description,
        source=source,
    )


def _image_order(image: XrayImage) -> tuple[int, int, str]:
    try:
        instance = int(image.metadata.get("InstanceNumber", ""))
    except ValueError:
        instance = 0
    return (_VIEW_ORDER[image.view], instance, str(image.source_path or ""))
