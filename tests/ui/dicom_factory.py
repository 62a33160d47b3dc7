"""Viewer test images: a ramp with an orientation marker, written by tests.fixtures_dicom."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from tests.fixtures_dicom import write_dicom


def ramp_pixels(rows: int, cols: int, max_value: int = 4095) -> np.ndarray:
    """A left-to-right ramp 0..max with a bright square in the top-left quadrant.

    The ramp makes window changes visible everywhere; the square reveals a flipped or
    rotated display.
    """
    ramp = np.linspace(0, max_value, cols, dtype=np.float64)[None, :].repeat(rows, axis=0)
    ramp[rows // 8: rows // 4, cols // 8: cols // 4] = max_value
    return ramp.astype(np.uint16)


def write_test_dicom(path: Path, *, rows: int = 256, cols: int = 200, view: str = "PA",
                     study_uid: str | None = None, patient_name: str = "DOE^JANE",
                     patient_id: str = "P123", window: tuple[float, float] | None = (2048.0, 4096.0),
                     spacing: float = 0.175, pixels: np.ndarray | None = None) -> Path:
    """A 12-bit DX radiograph (stored in 16 bits) with the metadata the strip shows."""
    pixels = ramp_pixels(rows, cols) if pixels is None else pixels.astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_dicom(path, pixels, bits_stored=12, window=window, view=view, study_uid=study_uid,
                       spacing=(spacing, spacing), patient_name=patient_name, modality="DX",
                       extra={"PatientID": patient_id, "StudyDescription": "CHEST 2 VIEWS"})


def write_test_study(folder: Path, **kwargs) -> list[Path]:
    """A PA + lateral pair sharing one Study Instance UID."""
    study_uid = generate_uid()
    return [write_test_dicom(folder / "pa.dcm", view="PA", study_uid=study_uid, **kwargs),
            write_test_dicom(folder / "lat.dcm", view="LL", study_uid=study_uid, **kwargs)]
