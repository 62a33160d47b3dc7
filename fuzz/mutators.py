"""Mutations of DICOM, PNG and JPEG bytes: generic (truncate, flip, insert, splice) and
format-aware (wrong VRs, huge declared lengths, absurd dimensions, wrong transfer syntax,
random bytes behind a DICOM preamble, PNG chunks with valid CRCs, JPEG frame headers).

Every mutator is `fn(rng, data) -> bytes`; `DICOM_MUTATORS` / `RASTER_MUTATORS` name them.
"""
from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass

_EXPLICIT_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
VRS = [b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB", b"OD",
       b"OF", b"OL", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"TM", b"UI", b"UL", b"UN", b"US",
       b"UT", b"\x00\x00", b"ZZ", b"ob", b"\xff\xff"]
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.5", "1.2.3.4.5.6.7",
    "", "garbage-not-a-uid", "1.2.840.10008.5.1.4.1.1.1",
]
# (group, element) -> absurd values, written as the element's bytes (VR kept)
ABSURD_VALUES = {
    (0x0028, 0x0010): [b"\x00\x00", b"\x01\x00", b"\xff\xff", b"\x00\x80"],  # Rows
    (0x0028, 0x0011): [b"\x00\x00", b"\x01\x00", b"\xff\xff", b"\x00\x80"],  # Columns
    (0x0028, 0x0100): [b"\x00\x00", b"\x01\x00", b"\x07\x00", b"\x0c\x00", b"\x20\x00", b"\x40\x00", b"\xff\xff"],
    (0x0028, 0x0101): [b"\x00\x00", b"\x20\x00", b"\x40\x00", b"\xff\xff"],  # Bits Stored
    (0x0028, 0x0102): [b"\x00\x00", b"\x3f\x00", b"\xff\xff"],  # High Bit
    (0x0028, 0x0002): [b"\x00\x00", b"\x03\x00", b"\x04\x00", b"\xff\xff"],  # Samples per Pixel
    (0x0028, 0x0103): [b"\x01\x00", b"\x02\x00", b"\xff\xff"],  # Pixel Representation
    (0x0028, 0x0008): [b"0 ", b"-1", b"99999999", b"2 ", b"ab"],  # Number of Frames
    (0x0028, 0x0004): [b"RGB ", b"YBR_FULL", b"PALETTE COLOR ", b"MONOCHROME3 ", b"\x00\x00"],
    (0x0028, 0x1053): [b"1e308 ", b"nan ", b"inf ", b"-0", b"0 ", b"1e-308"],  # Rescale Slope
    (0x0028, 0x1052): [b"-1e308", b"nan ", b"1e38"],  # Rescale Intercept
    (0x0028, 0x1050): [b"nan ", b"1e308 ", b"\\\\\\\\"],  # Window Center
    (0x0028, 0x1051): [b"0 ", b"-5", b"nan ", b"inf "],  # Window Width
    (0x0028, 0x0030): [b"0\\0 ", b"-1\\-1", b"nan\\inf ", b"1e400\\1"],  # Pixel Spacing
}


@dataclass(frozen=True)
class Element:
    offset: int  # of the tag
    group: int
    element: int
    vr: bytes | None  # None in implicit VR
    length_offset: int
    length_size: int  # 2 or 4
    value_offset: int
    length: int


def walk_elements(data: bytes, limit: int = 400) -> list[Element]:
    """Top-level elements of a little-endian data set (file meta explicit, then explicit or
    implicit as the first element suggests). Stops at the first undefined length or junk."""
    start = 132 if data[128:132] == b"DICM" else 0
    elements, pos = [], start
    while pos + 8 <= len(data) and len(elements) < limit:
        group, elem = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4:pos + 6]
        explicit = vr.isalpha() and vr.isupper()
        if explicit:
            if vr in _EXPLICIT_LONG_VRS:
                if pos + 12 > len(data):
                    break
                length_offset, size = pos + 8, 4
            else:
                length_offset, size = pos + 6, 2
        else:
            vr, length_offset, size = None, pos + 4, 4
        length = int.from_bytes(data[length_offset:length_offset + size], "little")
        value_offset = length_offset + size
        elements.append(Element(pos, group, elem, vr, length_offset, size, value_offset, length))
        if length == 0xFFFFFFFF or value_offset + length > len(data):
            break
        pos = value_offset + length
    return elements


def _replace(data: bytes, start: int, end: int, new: bytes) -> bytes:
    return data[:start] + new + data[end:]


# --- generic ------------------------------------------------------------------------------
def truncate(rng: random.Random, data: bytes) -> bytes:
    cut = rng.choice([rng.randrange(len(data) + 1), rng.randrange(min(len(data), 2048) + 1), len(data) - rng.randrange(1, 64)])
    return data[:max(cut, 0)]


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    if not out:
        return bytes(out)
    header = min(len(out), 4096)
    for _ in range(rng.randint(1, 16)):
        i = rng.randrange(header) if rng.random() < 0.75 else rng.randrange(len(out))
        out[i] = out[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return bytes(out)


def insert_or_delete(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(min(len(data), 4096) + 1)
    if rng.random() < 0.5:
        return _replace(data, i, i, rng.randbytes(rng.randint(1, 64)))
    return _replace(data, i, min(len(data), i + rng.randint(1, 64)), b"")


def splice(rng: random.Random, data: bytes, other: bytes) -> bytes:
    return data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]


# --- DICOM --------------------------------------------------------------------------------
def wrong_vr(rng: random.Random, data: bytes) -> bytes:
    explicit = [e for e in walk_elements(data) if e.vr is not None]
    if not explicit:
        return flip_bytes(rng, data)
    for e in rng.sample(explicit, k=min(len(explicit), rng.randint(1, 3))):
        data = _replace(data, e.offset + 4, e.offset + 6, rng.choice(VRS))
    return data


def huge_length(rng: random.Random, data: bytes) -> bytes:
    elements = walk_elements(data)
    if not elements:
        return flip_bytes(rng, data)
    pixel = [e for e in elements if (e.group, e.element) == (0x7FE0, 0x0010)]
    e = pixel[0] if pixel and rng.random() < 0.3 else rng.choice(elements)
    if e.length_size == 2:
        value = rng.choice([0xFFFF, 0xFFFE, len(data) & 0xFFFF, e.length + 1])
    else:
        value = rng.choice([0xFFFFFFFE, 0x7FFFFFFF, 0xFFFFFFF0, len(data) * 7, e.length + 1, e.length - 1,
                            0xFFFFFFFF])
    return _replace(data, e.length_offset, e.length_offset + e.length_size,
                    (value % (1 << (8 * e.length_size))).to_bytes(e.length_size, "little"))


def absurd_value(rng: random.Random, data: bytes) -> bytes:
    candidates = [e for e in walk_elements(data) if (e.group, e.element) in ABSURD_VALUES]
    if not candidates:
        return flip_bytes(rng, data)
    for e in rng.sample(candidates, k=min(len(candidates), rng.randint(1, 3))):
        value = rng.choice(ABSURD_VALUES[(e.group, e.element)])
        value += b" " * (len(value) % 2)
        new_len = len(value).to_bytes(e.length_size, "little")
        data = _replace(data, e.length_offset, e.value_offset + e.length, new_len + value)
        return data  # offsets move after a length change: one element per case keeps them valid
    return data


def wrong_transfer_syntax(rng: random.Random, data: bytes) -> bytes:
    syntax = [e for e in walk_elements(data) if (e.group, e.element) == (0x0002, 0x0010)]
    if not syntax:
        return random_after_preamble(rng, data)
    e = syntax[0]
    uid = rng.choice(TRANSFER_SYNTAXES).encode()
    uid += b"\x00" * (len(uid) % 2)
    return _replace(data, e.length_offset, e.value_offset + e.length, len(uid).to_bytes(e.length_size, "little") + uid)


def delete_element(rng: random.Random, data: bytes) -> bytes:
    elements = walk_elements(data)
    if not elements:
        return truncate(rng, data)
    e = rng.choice(elements)
    return _replace(data, e.offset, e.value_offset + min(e.length, len(data)), b"")


def random_after_preamble(rng: random.Random, data: bytes) -> bytes:
    body = rng.randbytes(rng.choice([0, 4, 8, 64, 512, 4096]))
    if rng.random() < 0.5:
        return b"\x00" * 128 + b"DICM" + body
    meta_end = next((e.value_offset + e.length for e in reversed(walk_elements(data)) if e.group == 0x0002), 132)
    return data[:meta_end] + body  # a valid file meta group, then junk


def deep_sequence(rng: random.Random, data: bytes) -> bytes:
    """Nested undefined-length sequences (recursion depth of the parser)."""
    depth = rng.choice([50, 500, 5000])
    opening = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    meta_end = next((e.value_offset + e.length for e in reversed(walk_elements(data)) if e.group == 0x0002), 132)
    return data[:meta_end] + opening * depth + closing * depth + data[meta_end:]


# --- PNG ----------------------------------------------------------------------------------
def _png_chunks(data: bytes) -> list[tuple[int, bytes, bytes]]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        chunks.append((pos, kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def png_header(rng: random.Random, data: bytes) -> bytes:
    """IHDR with absurd size, bit depth or colour type, with a valid CRC so it is parsed."""
    chunks = _png_chunks(data)
    if not chunks or chunks[0][1] != b"IHDR" or len(chunks[0][2]) != 13:
        return flip_bytes(rng, data)
    width, height, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][2])
    choice = rng.randrange(4)
    if choice == 0:
        width, height = rng.choice([(0, height), (width, 0), (65535, 65535), (2**31 - 1, 1), (10000, 10000),
                                    (1, 2**31 - 1), (width * 3, height)])
    elif choice == 1:
        depth = rng.choice([0, 1, 2, 3, 4, 7, 8, 16, 32, 255])
    elif choice == 2:
        colour = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 255])
    else:
        interlace, comp, filt = rng.choice([(2, comp, filt), (interlace, 1, filt), (interlace, comp, 9)])
    body = struct.pack(">IIBBBBB", width, height, depth, colour, comp, filt, interlace)
    start = chunks[0][0]
    return data[:start] + _chunk(b"IHDR", body) + data[start + 25:]


def png_chunk(rng: random.Random, data: bytes) -> bytes:
    """A chunk with a huge declared length, a corrupt IDAT with a valid CRC, or junk chunks."""
    chunks = _png_chunks(data)
    if not chunks:
        return flip_bytes(rng, data)
    choice = rng.randrange(3)
    if choice == 0:
        pos = rng.choice(chunks)[0]
        return data[:pos] + rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000000]).to_bytes(4, "big") + data[pos + 4:]
    if choice == 1:
        idats = [c for c in chunks if c[1] == b"IDAT"] or chunks
        pos, kind, body = rng.choice(idats)
        corrupt = bytearray(body or b"\x00")
        for _ in range(rng.randint(1, 8)):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        if rng.random() < 0.3:  # a zlib bomb-ish stream: many zeros, claiming a big image
            corrupt = bytearray(zlib.compress(b"\x00" * rng.choice([10**5, 10**6, 10**7]), 9))
        return data[:pos] + _chunk(kind, bytes(corrupt)) + data[pos + 12 + len(body):]
    junk = _chunk(rng.choice([b"tEXt", b"zTXt", b"iCCP", b"eXIf", b"acTL", b"fcTL", b"PLTE", b"tRNS", b"aBcD"]),
                  rng.randbytes(rng.randint(0, 200)))
    pos = rng.choice(chunks[1:] or chunks)[0]
    return data[:pos] + junk + data[pos:]


# --- JPEG ---------------------------------------------------------------------------------
def jpeg_frame(rng: random.Random, data: bytes) -> bytes:
    """The SOF frame header with absurd size, precision or component count."""
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        pos = data.find(marker)
        if pos >= 0 and pos + 10 <= len(data):
            break
    else:
        return flip_bytes(rng, data)
    out = bytearray(data)
    choice = rng.randrange(3)
    if choice == 0:
        height, width = rng.choice([(0, 64), (64, 0), (65535, 65535), (1, 65535), (20000, 20000)])
        out[pos + 5:pos + 9] = struct.pack(">HH", height, width)
    elif choice == 1:
        out[pos + 4] = rng.choice([0, 1, 12, 16, 255])
    else:
        out[pos + 9] = rng.choice([0, 2, 4, 255])
    return bytes(out)


def jpeg_segment(rng: random.Random, data: bytes) -> bytes:
    """Junk APPn / EXIF segments, or a marker segment with a wrong length."""
    if rng.random() < 0.5:
        body = rng.randbytes(rng.randint(0, 300))
        if rng.random() < 0.5:
            body = b"Exif\x00\x00" + rng.choice([b"II*\x00", b"MM\x00*"]) + body
        segment = bytes([0xFF, rng.choice([0xE0, 0xE1, 0xE2, 0xED, 0xFE, 0xDB, 0xC4, 0xDD])])
        segment += (len(body) + 2).to_bytes(2, "big")[-2:] + body
        return data[:2] + segment + data[2:]
    markers = [i for i in range(2, min(len(data) - 4, 4096)) if data[i] == 0xFF and data[i + 1] not in (0, 0xFF)]
    if not markers:
        return flip_bytes(rng, data)
    i = rng.choice(markers)
    return data[:i + 2] + rng.choice([b"\x00\x00", b"\x00\x01", b"\xff\xff", b"\x00\x02"]) + data[i + 4:]


def random_with_magic(rng: random.Random, data: bytes) -> bytes:
    magic = rng.choice([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0", data[:16]])
    return magic + rng.randbytes(rng.choice([0, 1, 16, 256, 4096]))


DICOM_MUTATORS = {
    "truncate": truncate, "flip_bytes": flip_bytes, "insert_delete": insert_or_delete, "wrong_vr": wrong_vr,
    "huge_length": huge_length, "absurd_value": absurd_value, "wrong_transfer_syntax": wrong_transfer_syntax,
    "delete_element": delete_element, "random_after_preamble": random_after_preamble,
    "deep_sequence": deep_sequence,
}
RASTER_MUTATORS = {
    "truncate": truncate, "flip_bytes": flip_bytes, "insert_delete": insert_or_delete, "png_header": png_header,
    "png_chunk": png_chunk, "jpeg_frame": jpeg_frame, "jpeg_segment": jpeg_segment,
    "random_with_magic": random_with_magic,
}
