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
    """A DICOM data set written without the 128-byte preamble and file meta header (old
    ACR-NEMA style files, some exporters' minimal data sets).

    Accepted when it starts with a little-endian element in an expected group followed by a
    known explicit VR or a small implicit length (the old rule), or when it starts with two
    or more well-formed elements in ascending tag order in any standard group (a data set
    holding only image elements, e.g. Rows, Columns, Pixel Data). Random bytes rarely pass.
    """
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    if group in _FIRST_GROUPS:
        if head[4:6] in _VALID_VRS:
            return True
        if int.from_bytes(head[4:8], "little") < 1024:
            return True
    return any(_well_formed_elements(head, explicit) >= 2 for explicit in (True, False))


_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_UNDEFINED_LENGTH = 0xFFFFFFFF


def _well_formed_elements(head: bytes, explicit: bool) -> int:
    """How many elements parse from the start of `head` (little endian, ascending standard tags;
    an element whose value runs past the bytes read counts and ends the walk)."""
    offset, count, previous = 0, 0, -1
    while offset + 8 <= len(head):
        group, element = int.from_bytes(head[offset:offset + 2], "little"), int.from_bytes(head[offset + 2:offset + 4],
                                                                                          "little")
        tag = (group << 16) | element
        if group % 2 or not (0x0002 <= group <= 0x7FE0) or tag <= previous:
            return count
        if explicit:
            vr = head[offset + 4:offset + 6]
            if vr not in _VALID_VRS:
                return count
            if vr in _LONG_VRS:
                if offset + 12 > len(head) or head[offset + 6:offset + 8] != b"\0\0":
                    return count
                length, value_at = int.from_bytes(head[offset + 8:offset + 12], "little"), offset + 12
            else:
                length, value_at = int.from_bytes(head[offset + 6:offset + 8], "little"), offset + 8
        else:
            length, value_at = int.from_bytes(head[offset + 4:offset + 8], "little"), offset + 8
            if length != _UNDEFINED_LENGTH and length >= 1 << 24:
                return count
        count += 1
        if length == _UNDEFINED_LENGTH or value_at + length >= len(head):
            return count
        offset, previous = value_at + length, tag
    return count
