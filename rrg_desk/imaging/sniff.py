"""Tell DICOM, PNG and JPEG apart by their first bytes, never by the file extension."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_DICOM_MAGIC_OFFSET = 128
_VALID_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
    b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
}
# Groups a preamble-less DICOM stream plausibly starts with: file meta, identifying, patient.
_FIRST_GROUPS = {0x0002, 0x0008, 0x0010}
_HEADER_BYTES = 132


class FileFormat(str, Enum):
    DICOM = "DICOM"
    PNG = "PNG"
    JPEG = "JPEG"


def sniff_format(path: Path) -> FileFormat | None:
    """The format the content declares, or None when it is none of ours. Raises OSError."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_BYTES)
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> FileFormat | None:
    if head.startswith(_PNG_MAGIC):
        return FileFormat.PNG
    if head.startswith(_JPEG_MAGIC):
        return FileFormat.JPEG
    if head[_DICOM_MAGIC_OFFSET:_DICOM_MAGIC_OFFSET + 4] == b"DICM":
        return FileFormat.DICOM
    if _looks_like_bare_dicom(head):
        return FileFormat.DICOM
    return None


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM data set written without the 128-byte preamble (old ACR-NEMA style files).

    Accept only a little-endian tag in an expected group followed by either a known explicit
    VR or a small implicit length, so random bytes rarely pass.
    """
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    if group not in _FIRST_GROUPS:
        return False
    if head[4:6] in _VALID_VRS:
        return True
    implicit_length = int.from_bytes(head[4:8], "little")
    return implicit_length < 1024
