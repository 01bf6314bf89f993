"""Exceptions of the pure engine. Everything slamon raises derives from SlamonError."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SlamonError", "ProblemsError", "PolicyError", "InvalidEvent"]


class SlamonError(Exception):
    """Root of every error slamon raises on purpose."""


class ProblemsError(SlamonError):
    """Invalid input with a list of `problems`, each naming its place (`file:line: path: ...`).

    The message is the problems one per line, under `heading` when a subclass sets one.
    """

    heading: str | None = None

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        if self.heading is None:
            super().__init__("\n".join(self.problems))
        else:
            super().__init__(f"{self.heading}:\n  " + "\n  ".join(self.problems))


class PolicyError(ProblemsError):
    """A policy file is invalid; `problems` lists every problem found, each with its place."""


class InvalidEvent(SlamonError):
    """A service event that cannot be applied; the message says why, for a person to read."""
