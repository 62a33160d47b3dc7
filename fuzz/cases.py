"""Fuzz cases: made deterministically from (target, seed, index), run, and judged.

A case passes when it ends in our typed error (ImageReadError / BundleError) or a correct
result (a finite float32 2-D image; a loaded bundle, unless the mutation must be refused).
"""
from __future__ import annotations

import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fuzz.bundle_mutators import mutate_bundle
from fuzz.mutators import DICOM_MUTATORS, RASTER_MUTATORS, splice
from fuzz.seeds import Seed, build_seed_bundle, dicom_seeds, raster_seeds

log = logging.getLogger(__name__)

TARGETS = ("dicom", "raster", "bundle")
PASSING = ("image", "typed_error", "loaded", "refused")


@dataclass
class Case:
    target: str
    index: int
    kind: str
    seed_name: str
    payload: bytes | dict[str, bytes]
    must_refuse: bool = False


@dataclass
class Corpus:
    dicom: list[Seed]
    raster: list[Seed]
    bundle_folder: Path
    bundle_files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def build(cls, workdir: Path) -> "Corpus":
        folder = build_seed_bundle(workdir / "seed-bundle")
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        return cls(dicom_seeds(), raster_seeds(), folder, files)


def make_case(corpus: Corpus, target: str, seed: int, index: int) -> Case:
    rng = random.Random(f"{seed}:{target}:{index}")
    if target == "bundle":
        kind, changed, must_refuse = mutate_bundle(rng, corpus.bundle_files)
        return Case(target, index, kind, "tiny-bundle", changed, must_refuse)
    seeds = corpus.dicom if target == "dicom" else corpus.raster
    mutators = DICOM_MUTATORS if target == "dicom" else RASTER_MUTATORS
    # the real samples are large: pick them less often than the small synthetic seeds
    small = [s for s in seeds if len(s.data) < 100_000] or seeds
    base = rng.choice(seeds) if rng.random() < 0.2 else rng.choice(small)
    kind = rng.choice([*mutators, "splice", "stacked"])
    data = base.data
    if kind == "splice":
        data = splice(rng, data, rng.choice(seeds).data)
    elif kind == "stacked":  # several mutations in a row
        for _ in range(rng.randint(2, 4)):
            data = mutators[rng.choice(list(mutators))](rng, data)
    else:
        data = mutators[kind](rng, data)
    return Case(target, index, kind, base.name, data)


def materialise(case: Case, corpus: Corpus, workdir: Path) -> Path:
    """Write the case where the code under test will read it; returns that path."""
    if case.target != "bundle":
        path = workdir / f"case-{case.target}.bin"
        path.write_bytes(case.payload)
        return path
    folder = workdir / "case-bundle"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in corpus.bundle_files:
        if name not in case.payload:
            os.link(corpus.bundle_folder / name, folder / name)  # unchanged: read-only use
    for name, data in case.payload.items():
        (folder / name).write_bytes(data)
    return folder


def execute(case: Case, path: Path) -> dict:
    """Run the code under test on the materialised case and judge the outcome."""
    start = time.perf_counter()
    try:
        verdict = _run_image(path) if case.target != "bundle" else _run_bundle(path, case.must_refuse)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - anything untyped (even a Rust panic) is the finding
        verdict = {"outcome": "unexpected_exception", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    verdict["seconds"] = time.perf_counter() - start
    return verdict


def _run_image(path: Path) -> dict:
    from rrg_desk.imaging import ImageReadError, XrayImage, read_image

    try:
        image = read_image(path)
    except ImageReadError as error:
        if not isinstance(error.user_message, str) or not error.user_message.strip():
            return {"outcome": "bad_message", "error": type(error).__name__}
        return {"outcome": "typed_error", "error": type(error).__name__}
    pixels = getattr(image, "pixels", None)
    problems = []
    if not isinstance(image, XrayImage) or not isinstance(pixels, np.ndarray):
        problems.append("not an XrayImage")
    elif pixels.dtype != np.float32 or pixels.ndim != 2 or pixels.size == 0:
        problems.append(f"pixels {pixels.dtype} {pixels.shape}")
    elif not np.isfinite(pixels).all():
        problems.append("non-finite pixel values")
    if problems:
        return {"outcome": "invalid_image", "error": "; ".join(problems)}
    return {"outcome": "image", "shape": list(pixels.shape)}


def _run_bundle(folder: Path, must_refuse: bool) -> dict:
    from rrg_desk.models.bundle import BundleError, load_bundle

    try:
        bundle = load_bundle(folder, device="cpu")
    except BundleError as error:
        if not error.user_message.strip():
            return {"outcome": "bad_message", "error": type(error).__name__}
        return {"outcome": "refused", "error": type(error).__name__}
    if must_refuse:
        return {"outcome": "accepted_tampered", "error": f"loaded {bundle.bundle_id} although it must be refused"}
    return {"outcome": "loaded"}
