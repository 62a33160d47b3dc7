"""DICOM file -> XrayImage: checks before decoding, Modality LUT, VOI, MONOCHROME1.

Display values (`XrayImage.pixels`, float32):
- the Modality LUT is applied (Rescale Slope/Intercept or a Modality LUT Sequence), so
  values are in the modality's units;
- a VOI LUT Sequence, when present, is applied too, because a (often non-linear) vendor
  LUT cannot be expressed as a window; `default_window` then spans the LUT's whole output
  range, so the default display is exactly the vendor's. Otherwise the first Window
  Center/Width pair becomes `default_window` and the pixels keep their full dynamic range;
- MONOCHROME1 is inverted as `K - value`, K being the sum of the lowest and highest
  representable value, so bone is white and values stay in their nominal range; the
  file's window centre is mirrored the same way.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from rrg_desk.imaging.errors import (
    ColorImageError,
    CorruptPixelDataError,
    DecoderFailedError,
    EmptyImageError,
    MAX_PIXELS,
    ImageTooLargeError,
    MissingPixelDataError,
    MultiFrameError,
    NotAnImageError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from rrg_desk.imaging.types import PatientInfo, ViewPosition, Window, XrayImage
from rrg_desk.imaging.views import view_from_codes, view_from_position_value, view_from_text

log = logging.getLogger(__name__)

_GREYSCALE = ("MONOCHROME1", "MONOCHROME2")
_DEFER_BYTES = 1 << 20
_SUPPORTED_BITS_ALLOCATED = (1, 8, 16, 32)
_METADATA_KEYWORDS = (
    "Manufacturer", "ManufacturerModelName", "InstitutionName", "BodyPartExamined",
    "ViewPosition", "PatientOrientation", "SeriesDescription", "ProtocolName",
    "SeriesNumber", "InstanceNumber", "AcquisitionDate", "ContentDate", "PatientAge",
    "PhotometricInterpretation", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth", "VOILUTFunction",
    "KVP", "Exposure", "ImageComments", "SOPClassUID",
    # the request, for the printed report's indication (rrg_desk/reports/clinical.py)
    "ReasonForStudy", "ReasonForTheRequestedProcedure", "AdmittingDiagnosesDescription", "AdditionalPatientHistory",
    "RequestedProcedureDescription",
)


def read_dicom(path: Path) -> XrayImage:
    """Read one single-frame greyscale DICOM image. Raises ImageReadError subclasses;
    other exceptions from pydicom are mapped by the caller (reader.read_image)."""
    # pydicom warns about every non-conformance (also lazily, on element access); those
    # warnings are not ours to raise, only to log
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _read_dicom(path)
        finally:
            for warning in caught:
                log.debug("%s: pydicom: %s", path.name, warning.message)


def _read_dicom(path: Path) -> XrayImage:
    ds = _read_dataset(path)
    _check_displayable(ds, path)
    stored = _decode_pixels(ds, path)
    pixels, window, voi_lut_applied = _display_values(stored, ds)
    if not np.isfinite(pixels).all():  # e.g. an absurd Rescale Intercept overflowing float32
        raise CorruptPixelDataError(path, "rescaled pixel values are out of range")
    metadata = _metadata(ds)
    metadata["VOILUTApplied"] = "yes" if voi_lut_applied else "no"
    metadata["TransferSyntax"] = _transfer_syntax(ds).name
    return XrayImage(
        pixels=pixels,
        view=_view_position(ds),
        pixel_spacing_mm=_pixel_spacing(ds),
        default_window=window,
        source_path=path,
        source_format="DICOM",
        bits_stored=int(_optional(ds, "BitsStored") or _optional(ds, "BitsAllocated") or 8),
        patient=PatientInfo(
            name=_text(ds, "PatientName"),
            patient_id=_text(ds, "PatientID"),
            birth_date=_text(ds, "PatientBirthDate"),
            sex=_text(ds, "PatientSex"),
        ),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_date=_text(ds, "StudyDate"),
        accession_number=_text(ds, "AccessionNumber"),
        study_description=_text(ds, "StudyDescription"),
        modality=_text(ds, "Modality"),
        metadata=metadata,
    )


def _read_dataset(path: Path) -> Dataset:
    # large values (Pixel Data) are read only when accessed, i.e. after the header checks
    ds = pydicom.dcmread(path, force=True, defer_size=_DEFER_BYTES)
    if len(ds) == 0:
        raise CorruptPixelDataError(path, "no readable DICOM elements")
    return ds


def _check_displayable(ds: Dataset, path: Path) -> None:
    """Every refusal that can be decided from the header, before any pixel is decoded."""
    has_pixels = "PixelData" in ds
    if not has_pixels:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise UnsupportedImageError(path, "floating-point pixel data")
        modality = _text(ds, "Modality")
        raise MissingPixelDataError(path, f"modality {modality}" if modality else "")
    frames = _int_or_none(_optional(ds, "NumberOfFrames"))
    if frames is not None and frames > 1:
        raise MultiFrameError(path, f"{frames} frames")
    samples = _int_or_none(_optional(ds, "SamplesPerPixel"))
    photometric = _text(ds, "PhotometricInterpretation").upper()
    if (samples is not None and samples != 1) or (photometric and photometric not in _GREYSCALE):
        detail = f"{samples} samples per pixel" if samples not in (None, 1) else photometric
        raise ColorImageError(path, detail)
    rows, columns = _int_or_none(_optional(ds, "Rows")), _int_or_none(_optional(ds, "Columns"))
    if rows is None or columns is None:
        raise CorruptPixelDataError(path, "image size (Rows/Columns) missing")
    if rows <= 0 or columns <= 0:
        raise EmptyImageError(path, f"{rows} x {columns}")
    if rows * columns > MAX_PIXELS:
        raise ImageTooLargeError(path, f"{columns} x {rows} pixels declared")
    bits_allocated = _int_or_none(_optional(ds, "BitsAllocated"))
    if bits_allocated not in _SUPPORTED_BITS_ALLOCATED:
        raise UnsupportedImageError(path, f"Bits Allocated {bits_allocated}")


def _transfer_syntax(ds: Dataset) -> UID:
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax:
        return UID(str(tsyntax))
    # no file meta (preamble-less file): trust the encoding the parser found
    implicit, _little = ds.original_encoding
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _decode_pixels(ds: Dataset, path: Path) -> np.ndarray:
    tsyntax = _transfer_syntax(ds)
    if not tsyntax.is_transfer_syntax:
        raise UnsupportedTransferSyntaxError(path, f"unknown transfer syntax {tsyntax}")
    if tsyntax.is_compressed:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            raise UnsupportedTransferSyntaxError(path, tsyntax.name) from None
        if not decoder.is_available:
            raise UnsupportedTransferSyntaxError(path, f"{tsyntax.name}: no decoder installed")
    ds.file_meta.TransferSyntaxUID = tsyntax
    try:
        stored = ds.pixel_array
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - pylibjpeg-rle panics with a BaseException on junk
        log.info("%s: pixel decoding failed: %s", path.name, exc)
        if tsyntax.is_compressed:
            raise DecoderFailedError(path, tsyntax.name) from exc
        raise CorruptPixelDataError(path) from exc
    expected = (int(ds.Rows), int(ds.Columns))
    if stored.shape != expected:
        raise CorruptPixelDataError(path, f"decoded shape {stored.shape}, header says {expected}")
    return stored


def _display_values(stored: np.ndarray, ds: Dataset) -> tuple[np.ndarray, Window | None, bool]:
    modality_values = apply_modality_lut(stored, ds)
    values = np.asarray(modality_values, dtype=np.float32)
    lo, hi = _modality_range(ds, values)
    window: Window | None = None
    voi_lut_applied = False
    voi_lut = _first_voi_lut(ds)
    if voi_lut is not None:
        values = _apply_voi_lut(modality_values, voi_lut, ds)
        lo, hi = 0.0, float(2 ** _lut_output_bits(voi_lut) - 1)
        window = Window(center=(lo + hi) / 2.0, width=hi - lo)
        voi_lut_applied = True
    else:
        window = _first_window(ds)
    if _text(ds, "PhotometricInterpretation").upper() == "MONOCHROME1":
        mirror = lo + hi
        values = np.subtract(np.float32(mirror), values, dtype=np.float32)
        if window is not None:
            window = Window(center=mirror - window.center, width=window.width)
    return np.ascontiguousarray(values, dtype=np.float32), window, voi_lut_applied


def _modality_range(ds: Dataset, values: np.ndarray) -> tuple[float, float]:
    """Lowest and highest value the modality output can take (not what this image uses)."""
    if "ModalityLUTSequence" in ds:
        return float(values.min()), float(values.max())
    bits = int(_optional(ds, "BitsStored") or _optional(ds, "BitsAllocated") or 16)
    signed = _int_or_none(_optional(ds, "PixelRepresentation")) == 1
    stored_lo, stored_hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    slope = _float_or(_optional(ds, "RescaleSlope"), 1.0)
    intercept = _float_or(_optional(ds, "RescaleIntercept"), 0.0)
    ends = sorted((stored_lo * slope + intercept, stored_hi * slope + intercept))
    return ends[0], ends[1]


def _first_voi_lut(ds: Dataset) -> Dataset | None:
    sequence = _optional(ds, "VOILUTSequence")
    if not sequence:
        return None
    item = sequence[0]
    if "LUTDescriptor" not in item or "LUTData" not in item:
        return None
    return item


def _apply_voi_lut(values: np.ndarray, item: Dataset, ds: Dataset) -> np.ndarray:
    """PS3.3 C.11.2.1.1: inputs below the first mapped value take the first entry, above
    the last take the last. (Done here, not with pydicom's apply_voi, whose 8-bit-LUT path
    indexes through a uint8 array and wraps inputs above 255.)"""
    entries, first_mapped, _bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536  # 0 means 2^16 entries
    if first_mapped >= 32768 and _int_or_none(_optional(ds, "PixelRepresentation")) == 1:
        first_mapped -= 65536  # US/SS ambiguity: a signed image's first value is signed
    element = item["LUTData"]
    if element.VR == "OW" or isinstance(element.value, (bytes, bytearray)):
        little = _transfer_syntax(ds).is_little_endian if _transfer_syntax(ds).is_transfer_syntax else True
        table = np.frombuffer(element.value, dtype="<u2" if little else ">u2")
    else:
        table = np.asarray(list(element.value), dtype=np.int64)
    table = table[:entries].astype(np.float32)
    index = np.clip(np.rint(values) - first_mapped, 0, len(table) - 1).astype(np.intp)
    return table[index]


def _lut_output_bits(item: Dataset) -> int:
    bits = int(item.LUTDescriptor[2])
    return bits if 1 <= bits <= 16 else 16


def _first_window(ds: Dataset) -> Window | None:
    center = _first_value(_optional(ds, "WindowCenter"))
    width = _first_value(_optional(ds, "WindowWidth"))
    if center is None or width is None or not width > 0:
        return None
    return Window(center=center, width=width)


def _first_value(value: Any) -> float | None:
    """Multi-valued Window Center/Width: the first pair is the default (PS3.3 C.11.2)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
    return _float_or(value, None)


def _view_position(ds: Dataset) -> ViewPosition:
    view = view_from_position_value(_text(ds, "ViewPosition"))
    if view is not ViewPosition.UNKNOWN:
        return view
    codes = []
    for item in _optional(ds, "ViewCodeSequence") or []:
        codes.append((str(item.get("CodeValue", "") or ""), str(item.get("CodeMeaning", "") or "")))
    view = view_from_codes(codes)
    if view is not ViewPosition.UNKNOWN:
        return view
    return view_from_text(
        _text(ds, "SeriesDescription"), _text(ds, "ProtocolName"), _text(ds, "AcquisitionDeviceProcessingDescription")
    )


def _pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """Pixel Spacing (at the patient) when given, else Imager Pixel Spacing (at the detector)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _optional(ds, keyword)
        try:
            row, column = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row > 0 and column > 0 and np.isfinite(row) and np.isfinite(column):
            return (row, column)
    return None


def _metadata(ds: Dataset) -> dict[str, str]:
    metadata = {}
    for keyword in _METADATA_KEYWORDS:
        value = _optional(ds, keyword)
        if value not in (None, ""):
            metadata[keyword] = str(value)
    return metadata


def _optional(ds: Dataset, keyword: str) -> Any:
    """An element's value, or None when absent or unparseable (bad VR, garbage bytes)."""
    try:
        return ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed optional field must not refuse the image
        log.debug("unreadable element %s", keyword)
        return None


def _text(ds: Dataset, keyword: str) -> str:
    value = _optional(ds, keyword)
    return "" if value is None else str(value).strip()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float_or(value: Any, default: float | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default
