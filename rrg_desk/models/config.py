"""JSON round trip shared by every model config (the card stores them as plain dicts)."""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

T = TypeVar("T", bound="ConfigDict")


class ConfigDict:
    """Mixin for @dataclass configs: `to_dict()` and a strict `from_dict()` that refuses
    unknown keys (a card from another version must not be half-understood)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        unknown = set(data) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**data)
