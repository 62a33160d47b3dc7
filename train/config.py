"""YAML configs: `train/configs/default.yaml` merged under a user's file, plus --set overrides."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict:
    """"clip.loop.epochs=3" -> {"clip": {"loop": {"epochs": 3}}} (value parsed as YAML)."""
    if "=" not in text:
        raise ValueError(f"--set expects KEY=VALUE, got {text!r}")
    dotted, raw = text.split("=", 1)
    value: Any = yaml.safe_load(raw)
    for key in reversed(dotted.strip().split(".")):
        value = {key: value}
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    config = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    if path is not None:
        user = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(user, dict):
            raise ValueError(f"{path}: a config is a YAML mapping")
        config = deep_merge(config, user)
    for text in overrides or []:
        config = deep_merge(config, parse_override(text))
    return config
