"""Mutations of a model bundle folder: changed bytes without a new checksum (must be refused),
changed weights/tokenizer WITH the card's checksum updated (so the safetensors parser and the
shape checks are reached), and damaged cards (wrong types, absurd sizes, path tricks, deep
nesting, broken JSON).

`mutate_bundle(rng, files) -> (kind, changed_files, must_refuse)`; `files` maps file name ->
bytes of the seed bundle; `changed_files` holds only the files that differ.
"""
from __future__ import annotations

import hashlib
import json
import random

from fuzz.mutators import flip_bytes, insert_or_delete, truncate

WEIGHT_FILES = ("detector.safetensors", "classifier.safetensors", "generator.safetensors")
_ODD_VALUES = [None, "", "x", -1, 0, 1, 10**12, 2**63, 1e308, float("nan"), [], {}, [1, 2], True, "../card.json"]
_ABSURD_SIZES = [0, -4, 3, 10**5, 10**7, 10**9]
_DTYPES = ["F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "XX", ""]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rehash(card: dict, name: str, data: bytes) -> None:
    for component in card.get("components", {}).values():
        if isinstance(component, dict) and component.get("file") == name:
            component["sha256"] = _sha(data)
    if isinstance(card.get("tokenizer"), dict) and card["tokenizer"].get("file") == name:
        card["tokenizer"]["sha256"] = _sha(data)


def _dump(card: dict) -> bytes:
    return json.dumps(card, indent=1).encode()


def _safetensors_header(rng: random.Random, data: bytes) -> bytes:
    """Change the JSON header: dtype, shape, offsets, or the declared header length."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    names = [k for k in header if k != "__metadata__"]
    choice = rng.randrange(5)
    if choice == 0:
        return rng.choice([2**63 - 1, 2**40, size + 1, size - 1, 0, len(data)]).to_bytes(8, "little") + data[8:]
    name = rng.choice(names)
    entry = header[name]
    if choice == 1:
        entry["dtype"] = rng.choice(_DTYPES)
    elif choice == 2:
        entry["shape"] = rng.choice([[], [0], [2**31, 2**31], [-1], [entry["shape"][0] if entry["shape"] else 1, 7],
                                     [10**9]])
    elif choice == 3:
        begin, end = entry["data_offsets"]
        entry["data_offsets"] = rng.choice([[end, begin], [begin, end + 4], [0, 2**62], [begin, begin], [-1, end]])
    else:
        header.pop(name)
    body = json.dumps(header, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    return len(body).to_bytes(8, "little") + body + data[8 + size:]


def _card_value(rng: random.Random, card: dict) -> str:
    """Set a random value anywhere in the card to an odd one; returns the path changed."""
    path, node = [], card
    while isinstance(node, (dict, list)) and node and (not path or rng.random() < 0.7):
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append(key)
        parent, node = node, node[key]
    if not path:
        return ""
    if rng.random() < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
        return "/".join(map(str, path)) + " deleted"
    is_size = isinstance(node, int) and not isinstance(node, bool)
    parent[path[-1]] = rng.choice(_ABSURD_SIZES if is_size and rng.random() < 0.7 else _ODD_VALUES)
    return "/".join(map(str, path))


def _card_config_size(rng: random.Random, card: dict) -> str:
    """An absurd integer in a component's config (memory/time of building the model)."""
    component = rng.choice(["detector", "classifier", "generator"])
    config = card["components"][component]["config"]
    ints = [k for k, v in config.items() if isinstance(v, int) and not isinstance(v, bool)]
    key = rng.choice(ints)
    config[key] = rng.choice(_ABSURD_SIZES + [config[key] * 2, config[key] + 1])
    return f"{component}.{key}={config[key]}"


def mutate_bundle(rng: random.Random, files: dict[str, bytes]) -> tuple[str, dict[str, bytes], bool]:
    card = json.loads(files["card.json"])
    kind = rng.choice(["flip_no_rehash", "truncate_no_rehash", "weights_rehash", "safetensors_header_rehash",
                       "tokenizer_rehash", "card_value", "card_config_size", "card_path", "card_bytes",
                       "card_deep_nesting", "card_hash_string"])
    if kind in ("flip_no_rehash", "truncate_no_rehash"):
        name = rng.choice([*WEIGHT_FILES, "tokenizer.json"])
        mutate = flip_bytes if kind == "flip_no_rehash" else truncate
        data = mutate(rng, files[name])
        if data == files[name]:
            data = files[name] + b"\x00"
        return f"{kind}:{name}", {name: data}, True
    if kind in ("weights_rehash", "safetensors_header_rehash", "tokenizer_rehash"):
        name = "tokenizer.json" if kind == "tokenizer_rehash" else rng.choice(WEIGHT_FILES)
        if kind == "safetensors_header_rehash":
            data = _safetensors_header(rng, files[name])
        else:
            data = rng.choice([flip_bytes, truncate, insert_or_delete])(rng, files[name])
        _rehash(card, name, data)
        return f"{kind}:{name}", {name: data, "card.json": _dump(card)}, False
    if kind == "card_value":
        where = _card_value(rng, card)
        return f"{kind}:{where}", {"card.json": _dump(card)}, False
    if kind == "card_config_size":
        where = _card_config_size(rng, card)
        return f"{kind}:{where}", {"card.json": _dump(card)}, False
    if kind == "card_path":
        target = rng.choice(["../card.json", "/etc/passwd", "sub/detector.safetensors", "..", ".", "",
                             "card.json", "tokenizer.json", "detector.safetensors\x00.txt"])
        component = rng.choice(["detector", "classifier", "generator", "tokenizer"])
        holder = card["tokenizer"] if component == "tokenizer" else card["components"][component]
        unchanged = holder["file"] == target
        holder["file"] = target
        return f"{kind}:{component}={target!r}", {"card.json": _dump(card)}, not unchanged
    if kind == "card_bytes":
        data = rng.choice([flip_bytes, truncate, insert_or_delete])(rng, files["card.json"])
        if rng.random() < 0.2:
            data = b"\xff\xfe" + data  # not UTF-8
        return kind, {"card.json": data}, False
    if kind == "card_deep_nesting":
        depth = rng.choice([100, 10_000, 200_000])
        card["training"] = "@@NEST@@"
        data = _dump(card).replace(b'"@@NEST@@"', b"[" * depth + b"]" * depth)
        return f"{kind}:{depth}", {"card.json": data}, False
    # a changed byte inside a checksum string must be refused
    name = rng.choice([*WEIGHT_FILES, "tokenizer.json"])
    holder = card["tokenizer"] if name == "tokenizer.json" else card["components"][name.split(".")[0]]
    digest = list(holder["sha256"])
    i = rng.randrange(len(digest))
    digest[i] = "0" if digest[i] != "0" else "1"
    holder["sha256"] = "".join(digest)
    return f"{kind}:{name}", {"card.json": _dump(card)}, True

