"""What every ingest shares: the user-facing error of a run that cannot start."""

from __future__ import annotations


class UserFacingError(RuntimeError):
    """An input problem the user can fix (bad path, unknown format, bad window): one line and a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint
