"""Small DICOM (and PNG/JPEG) files with chosen attributes, written in code for tests.

Reusable by any test:

    from tests.fixtures_dicom import write_dicom, write_png, ramp
    path = write_dicom(tmp_path / "a.dcm", ramp(32, 48, 4095, np.uint16), view="PA")
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    PYDICOM_IMPLEMENTATION_UID,
    generate_uid,
)

CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
_UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def ramp(rows: int, columns: int, top: int, dtype=np.uint16, bottom: int = 0) -> np.ndarray:
    """A horizontal-and-vertical ramp from `bottom` to `top`: every pixel distinct-ish,
    so orientation and value errors show up in assertions."""
    grid = np.add.outer(np.arange(rows), np.arange(columns)).astype(np.float64)
    grid = bottom + grid / max(grid.max(), 1) * (top - bottom)
    return np.round(grid).astype(dtype)


def write_dicom(
    path: str | Path,
    pixels: np.ndarray,
    *,
    photometric: str | None = None,
    bits_stored: int | None = None,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | tuple[Sequence[float], Sequence[float]] | None = None,
    voi_lut: tuple[int, int, Sequence[int]] | None = None,
    pixel_representation: int | None = None,
    view: str | None = "PA",
    view_code: tuple[str, str, str] | None = None,
    series_description: str | None = None,
    spacing: tuple[float, float] | None = (0.7, 0.7),
    imager_spacing: tuple[float, float] | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    number_of_frames: int | None = None,
    samples_per_pixel: int | None = None,
    study_uid: str | None = None,
    sop_uid: str | None = None,
    patient_name: str = "TEST^PATIENT",
    modality: str = "CR",
    rows: int | None = None,
    columns: int | None = None,
    drop_pixel_data: bool = False,
    truncate: bool = False,
    preamble: bool = True,
    extra: dict | None = None,
    encoding_options: dict | None = None,
) -> Path:
    """Write `pixels` as a DICOM file and return its path.

    - pixels: HxW integer array (uint8/uint16/int16); HxWx3 uint8 for colour; FxHxW with
      `number_of_frames`. Bits Allocated follows the dtype, Pixel Representation its sign.
    - window: (center, width) or ([c1, c2], [w1, w2]) for multi-valued.
    - voi_lut: (first_input_value, output_bits, table) -> a VOI LUT Sequence item.
    - rescale: (slope, intercept).
    - view: View Position value, or None to omit; view_code: (value, scheme, meaning).
    - transfer_syntax: uncompressed, or RLE / JPEG-LS / JPEG 2000 (pydicom encoders),
      JPEG Baseline 8-bit (Pillow), or any other UID (the raw bytes get encapsulated, for
      "unsupported transfer syntax" tests).
    - encoding_options: passed to pydicom's compress (e.g. {"j2k_psnr": [80]} for lossy J2K).
    - rows/columns override the header after the pixels are set (zero-size, absurd sizes).
    - drop_pixel_data omits Pixel Data; truncate cuts the file inside Pixel Data;
      preamble=False writes a bare data set without preamble and file meta.
    """
    path = Path(path)
    pixels = np.ascontiguousarray(pixels)
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3 and not number_of_frames
    ds = Dataset()
    ds.SOPClassUID = CR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = "TEST-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20240102"
    ds.AccessionNumber = "ACC0001"
    ds.StudyDescription = "CHEST"
    ds.InstanceNumber = 1
    if series_description is not None:
        ds.SeriesDescription = series_description
    if view is not None:
        ds.ViewPosition = view
    if view_code is not None:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = view_code
        ds.ViewCodeSequence = [item]
    if spacing is not None:
        ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    if imager_spacing is not None:
        ds.ImagerPixelSpacing = [float(imager_spacing[0]), float(imager_spacing[1])]

    bits_allocated = pixels.dtype.itemsize * 8
    ds.SamplesPerPixel = samples_per_pixel or (3 if colour else 1)
    ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored or bits_allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = (
        pixel_representation if pixel_representation is not None else int(pixels.dtype.kind == "i")
    )
    if number_of_frames is not None:
        ds.NumberOfFrames = number_of_frames
    frame_shape = pixels.shape[1:] if number_of_frames else pixels.shape
    ds.Rows, ds.Columns = int(frame_shape[0]), int(frame_shape[1])
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        first, out_bits, table = voi_lut
        item = Dataset()
        item.add_new(0x00283002, "US", [len(table), first, out_bits])  # LUT Descriptor
        item.add_new(0x00283006, "US", [int(v) for v in table])  # LUT Data
        ds.VOILUTSequence = [item]
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)

    if not drop_pixel_data:
        _set_pixel_data(ds, pixels, UID(transfer_syntax), encoding_options or {})
    ds.file_meta = _file_meta(ds, UID(transfer_syntax))
    if rows is not None:
        ds.Rows = rows
    if columns is not None:
        ds.Columns = columns
    if preamble:
        # the encoding is given explicitly so unknown (private) syntaxes can be written too
        implicit = UID(transfer_syntax) == ImplicitVRLittleEndian
        ds.save_as(path, implicit_vr=implicit, little_endian=True, enforce_file_format=True)
    else:
        ds.file_meta = FileMetaDataset()
        ds.preamble = None
        ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=False)
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - max(len(data) // 4, 8)])
    return path


def _file_meta(ds: Dataset, transfer_syntax: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _set_pixel_data(ds: Dataset, pixels: np.ndarray, transfer_syntax: UID, options: dict) -> None:
    if transfer_syntax in _UNCOMPRESSED:
        ds.PixelData = pixels.tobytes()
        ds["PixelData"].VR = "OB" if pixels.dtype.itemsize == 1 else "OW"
    elif transfer_syntax == JPEGBaseline8Bit:
        ds.PixelData = encapsulate([_jpeg_bytes(pixels)])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    elif transfer_syntax.is_transfer_syntax and transfer_syntax.is_compressed and _has_encoder(transfer_syntax):
        ds.file_meta = _file_meta(ds, ExplicitVRLittleEndian)
        ds.compress(transfer_syntax, pixels, generate_instance_uid=False, **options)
    else:  # no encoder: wrap raw bytes so the file declares the syntax but nothing can read it
        ds.PixelData = encapsulate([pixels.tobytes()])
        ds["PixelData"].VR = "OB"


def _has_encoder(transfer_syntax: UID) -> bool:
    from pydicom.pixels import get_encoder

    try:
        return get_encoder(transfer_syntax).is_available
    except NotImplementedError:
        return False


def _jpeg_bytes(pixels: np.ndarray) -> bytes:
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise ValueError("JPEG Baseline fixtures take 8-bit greyscale HxW pixels")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_png(path: str | Path, pixels: np.ndarray) -> Path:
    """uint8 -> 8-bit greyscale PNG, uint16 -> 16-bit PNG, HxWx3 uint8 -> RGB PNG."""
    path = Path(path)
    if pixels.dtype == np.uint16:
        image = Image.fromarray(pixels.astype(np.uint16))
    else:
        image = Image.fromarray(pixels)
    image.save(path, format="PNG")
    return path


def write_jpeg(path: str | Path, pixels: np.ndarray, quality: int = 95) -> Path:
    path = Path(path)
    Image.fromarray(pixels).save(path, format="JPEG", quality=quality)
    return path
