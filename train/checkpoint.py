"""Checkpoints without pickle: tensors go to safetensors, everything else to JSON.

A checkpoint is a folder `step-000123/` holding `tensors.safetensors` and `state.json`;
the file `latest` names the newest complete one and is replaced atomically, so a run
killed mid-write resumes from the previous checkpoint.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rrg_desk.fileio import write_text_atomic

_TENSOR_TAG = "__tensor__"
_TUPLE_TAG = "__tuple__"


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace tensors in a nested structure by references into `tensors`."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "root"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR_TAG: key}
    if isinstance(obj, np.ndarray):
        return _flatten(torch.from_numpy(np.ascontiguousarray(obj)), tensors, prefix)
    if isinstance(obj, dict):
        # JSON keys are strings; optimizer state uses int keys, so remember the key type.
        return {"__dict__": [[_key_to_json(k), _flatten(v, tensors, f"{prefix}/{k}")]
                             for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE_TAG: [_flatten(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a value of type {type(obj).__name__} at {prefix}")


def _key_to_json(key: Any) -> Any:
    if isinstance(key, (int, str)):
        return key
    raise TypeError(f"checkpoint dict keys must be int or str, got {type(key).__name__}")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR_TAG in obj:
            return tensors[obj[_TENSOR_TAG]]
        if _TUPLE_TAG in obj:
            return tuple(_unflatten(v, tensors) for v in obj[_TUPLE_TAG])
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": list(np.random.get_state())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write `state` as checkpoint `step`, point `latest` at it, keep the newest `keep`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"step-{step:07d}"
    tmp = run_dir / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, tensors, "")
    save_file(tensors, str(tmp / "tensors.safetensors"))
    (tmp / "state.json").write_text(json.dumps(skeleton))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    write_text_atomic(run_dir / "latest", final.name, shared=True)
    old = sorted(p for p in run_dir.glob("step-*") if p.is_dir())[:-keep]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / "latest"
    if not pointer.exists():
        return None
    path = Path(run_dir) / pointer.read_text().strip()
    return path if (path / "state.json").exists() else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    tensors = load_file(str(Path(path) / "tensors.safetensors"), device=str(map_location))
    skeleton = json.loads((Path(path) / "state.json").read_text())
    return _unflatten(skeleton, tensors)
