"""Errors a learner can hit: each says what happened and what to do next."""

from __future__ import annotations


class PlatformError(Exception):
    """Shown to the user as the message, then the hint; the command exits non-zero."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message
