"""The seed corpus the mutators start from: real sample DICOMs plus small files written here
in every encoding the readers support (so mutations reach every decoder), and a tiny bundle."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000,
    JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless, PYDICOM_IMPLEMENTATION_UID, generate_uid,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"
_CR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes


def _ramp(rows: int, columns: int, top: int, dtype) -> np.ndarray:
    grid = np.add.outer(np.arange(rows), np.arange(columns)).astype(np.float64)
    return np.round(grid / max(grid.max(), 1) * top).astype(dtype)


def _dicom(pixels: np.ndarray, syntax: UID = ExplicitVRLittleEndian, photometric: str = "MONOCHROME2",
           preamble: bool = True, **attributes) -> bytes:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = _CR_STORAGE, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "CR", "FUZZ^SEED", "FUZZ-1"
    ds.PatientBirthDate, ds.StudyDate, ds.ViewPosition = "19700101", "20240102", "PA"
    ds.PixelSpacing = [0.7, 0.7]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = attributes.pop("BitsStored", ds.BitsAllocated)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    ds.Rows, ds.Columns = pixels.shape
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    if syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        ds.PixelData = pixels.tobytes()
        ds["PixelData"].VR = "OB" if pixels.dtype.itemsize == 1 else "OW"
    elif syntax == JPEGBaseline8Bit:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
    else:
        options = {"j2k_cr": [20]} if syntax == JPEG2000 else {}
        ds.compress(syntax, pixels, generate_instance_uid=False, **options)
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    if preamble:
        ds.save_as(out, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True, enforce_file_format=True)
    else:
        ds.file_meta, ds.preamble = FileMetaDataset(), None
        ds.save_as(out, implicit_vr=False, little_endian=True, enforce_file_format=False)
    return out.getvalue()


def dicom_seeds() -> list[Seed]:
    seeds = [Seed(f"sample-{p.parent.name}-{p.stem}", p.read_bytes()) for p in sorted(SAMPLES.glob("*/*.dcm"))]
    u16, u8 = _ramp(48, 40, 4095, np.uint16), _ramp(40, 48, 255, np.uint8)
    voi = Dataset()
    voi.add_new(0x00283002, "US", [256, 0, 8])
    voi.add_new(0x00283006, "US", list(range(256)))
    made = {
        "explicit-u16-window": _dicom(u16, BitsStored=12, WindowCenter="2048", WindowWidth="4096",
                                      RescaleSlope="1", RescaleIntercept="-1024"),
        "implicit-u8": _dicom(u8, ImplicitVRLittleEndian),
        "mono1-voilut": _dicom(u8, photometric="MONOCHROME1", VOILUTSequence=[voi]),
        "signed-i16": _dicom(_ramp(32, 32, 2000, np.int16) - 1000, RescaleSlope="2"),
        "no-preamble": _dicom(u8, preamble=False),
        "deflated": _dicom(u16, DeflatedExplicitVRLittleEndian),
        "jpeg-baseline": _dicom(u8, JPEGBaseline8Bit),
        "rle": _dicom(u16, RLELossless),
        "jpeg-ls": _dicom(u16, JPEGLSLossless),
        "j2k-lossless": _dicom(u16, JPEG2000Lossless),
        "j2k": _dicom(u8, JPEG2000),
    }
    return seeds + [Seed(name, data) for name, data in made.items()]


def _raster(array: np.ndarray, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt, **options)
    return out.getvalue()


def raster_seeds() -> list[Seed]:
    grey = _ramp(64, 48, 255, np.uint8)
    rgb_grey = np.repeat(grey[..., None], 3, axis=2)
    colour = np.stack([grey, grey[::-1], np.full_like(grey, 40)], axis=2)
    palette = Image.fromarray(grey).convert("P")
    palette_png = io.BytesIO()
    palette.save(palette_png, format="PNG")
    one_bit = io.BytesIO()
    Image.fromarray(grey > 128).save(one_bit, format="PNG")
    la = io.BytesIO()
    Image.fromarray(grey).convert("LA").save(la, format="PNG")
    return [
        Seed("png-l8", _raster(grey, "PNG")),
        Seed("png-i16", _raster(_ramp(64, 48, 65535, np.uint16), "PNG")),
        Seed("png-rgb-grey", _raster(rgb_grey, "PNG")),
        Seed("png-rgb-colour", _raster(colour, "PNG")),
        Seed("png-palette", palette_png.getvalue()),
        Seed("png-1bit", one_bit.getvalue()),
        Seed("png-la", la.getvalue()),
        Seed("png-interlaced", _interlaced_png(grey)),
        Seed("jpeg-l8", _raster(grey, "JPEG", quality=90)),
        Seed("jpeg-progressive", _raster(grey, "JPEG", quality=80, progressive=True)),
        Seed("jpeg-rgb", _raster(rgb_grey, "JPEG", quality=90)),
        Seed("jpeg-cmyk", _cmyk_jpeg(grey)),
        Seed("jpeg-exif-rotated", _exif_jpeg(grey)),
    ]


def _interlaced_png(grey: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(grey).save(out, format="PNG", interlace=1)
    return out.getvalue()


def _cmyk_jpeg(grey: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(grey).convert("CMYK").save(out, format="JPEG")
    return out.getvalue()


def _exif_jpeg(grey: np.ndarray) -> bytes:
    image = Image.fromarray(grey)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def build_seed_bundle(folder: Path) -> Path:
    """A tiny random bundle (the loader's seed); built once per campaign."""
    from rrg_desk.models.bundle import build_random_bundle

    if (folder / "card.json").exists():
        return folder
    return build_random_bundle(folder, size="tiny", seed=0)
