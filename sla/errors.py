"""Exceptions of the pure engine. Everything slamon raises derives from SlamonError."""

from __future__ import annotations

__all__ = ["SlamonError", "PolicyError", "InvalidEvent"]


class SlamonError(Exception):
    """Root of every error slamon raises on purpose."""


class PolicyError(SlamonError):
    """A policy file is invalid; `problems` lists every problem found, each with its place."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InvalidEvent(SlamonError):
    """A service event that cannot be applied; the message says why, for a person to read."""
