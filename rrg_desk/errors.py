"""The one base of every failure a person at the workstation (or the CLI) is told about.

It sits below all layers so imaging, models, store, pacs, inference, reports and app errors
share it, and the UI and CLI catch `UserFacingError` and show `user_message` without duck typing.
"""
from __future__ import annotations


class UserFacingError(Exception):
    """A failure worded for the radiologist or admin.

    `user_message` is the sentence shown in the UI and printed by the CLI; `detail` is the
    technical cause for the log (may be empty). Subclasses either pass the message to
    `__init__` or override the `user_message` property when it is built from fields.
    """

    def __init__(self, user_message: str = "", detail: str = "") -> None:
        self._user_message = user_message
        self.detail = detail
        shown = self.user_message
        super().__init__(f"{shown} ({detail})" if detail and detail not in shown else shown)

    @property
    def user_message(self) -> str:
        return self._user_message
