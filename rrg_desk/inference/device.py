"""Device choice: CUDA when present, else the CPU; a setting overrides."""
from __future__ import annotations

import torch

from rrg_desk.errors import UserFacingError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceUnavailableError(UserFacingError, RuntimeError):
    """The device setting cannot be used on this machine (still a RuntimeError)."""


def choose_device(setting: str = "auto") -> torch.device:
    setting = (setting or "auto").lower()
    if setting not in DEVICE_CHOICES:
        raise DeviceUnavailableError(f"Unknown device '{setting}'; choose one of {', '.join(DEVICE_CHOICES)}.")
    if setting == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("CUDA was requested but no CUDA GPU is available on this machine; "
                                     "use device 'auto' or 'cpu'.")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)
