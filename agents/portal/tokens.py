"""Portal access tokens: which token opens which customer's page.

The file named by the setting `portal_tokens` (SLAMON_PORTAL_TOKENS) maps each customer
to its token, to a file that holds it, or to a list of those (two tokens while one is
rotated out):

    customers:
      acme: {file: /run/secrets/slamon/portal-acme}   # relative paths: to this file
      globex: [{file: globex.token}, "a-token-being-rotated-out-xxxx"]

A token is at least 16 characters of letters, digits, '-', '_', '.' and '~' (what
`secrets.token_urlsafe()` makes; safe in a URL and a cookie), and belongs to one customer.
The file is read again every few seconds while requests come, so tokens rotate without a
restart; a bad file is logged and the last good tokens stay in force.
Tokens are compared with `hmac.compare_digest`, against every configured token, so the
time taken does not tell which customer (or how much of a token) matched. Token values
never appear in messages or reprs: problems name the file, line and customer only.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sla.errors import ProblemsError

__all__ = ["PortalTokens", "PortalTokensError", "Secret", "TokenSource", "load_tokens"]

logger = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
CHECK_SECONDS = 2.0
_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")


class PortalTokensError(ProblemsError):
    """An invalid tokens file; `problems` lists each one with its file, line and customer."""

    heading = "invalid portal tokens"


@dataclass(frozen=True, slots=True)
class Secret:
    """A token: its value is never shown by repr or str."""

    value: bytes

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class PortalTokens:
    """The configured (customer, token) pairs."""

    def __init__(self, pairs: Iterable[tuple[str, Secret]] = ()) -> None:
        self._pairs = tuple(pairs)

    @property
    def customers(self) -> frozenset[str]:
        return frozenset(customer for customer, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortalTokens) and self._pairs == other._pairs

    __hash__ = None  # type: ignore[assignment]

    def customer_for(self, token: str | None) -> str | None:
        """The customer whose token this is, or None; every pair is compared, always."""
        if not token:
            return None
        presented = token.encode("utf-8", "replace")
        found = None
        for customer, secret in self._pairs:
            if hmac.compare_digest(presented, secret.value) and found is None:
                found = customer
        return found


class TokenSource:
    """The tokens of a file, read again when it changes; a bad file keeps the last good ones.

    Without a file (`path` None) there are no tokens: every request is refused.
    """

    def __init__(self, path: Path | None, check_seconds: float = CHECK_SECONDS) -> None:
        self.path = path
        self.check_seconds = check_seconds
        self._tokens = PortalTokens()
        self._error: str | None = None
        self._checked = float("-inf")

    def current(self) -> PortalTokens:
        """The tokens in force; the file is looked at most every `check_seconds`."""
        now = time.monotonic()
        if self.path is None and self._checked == float("-inf"):
            self._checked = now
            logger.warning("portal: no tokens file (setting portal_tokens / "
                           "SLAMON_PORTAL_TOKENS): every portal request is refused")
        if self.path is not None and now - self._checked >= self.check_seconds:
            self._checked = now
            self._reload(self.path)
        return self._tokens

    def _reload(self, path: Path) -> None:
        """Read the file (and the token files it names) again; log only what changed."""
        try:
            tokens = load_tokens(path)
        except PortalTokensError as exc:
            if str(exc) != self._error:
                self._error = str(exc)
                kept = "keeping the last good tokens" if len(self._tokens) else "refusing all"
                logger.error("portal: %s\n  (%s)", exc, kept)
            return
        self._error = None
        if tokens != self._tokens:
            self._tokens = tokens
            logger.info("portal: tokens for %d customers from %s", len(tokens.customers), path)


def load_tokens(path: Path, *, read_files: bool = True) -> PortalTokens:
    """Read and check a tokens file; raise PortalTokensError with every problem.

    `read_files=False` checks the file alone (`slamon check-config`): a `{file: PATH}`
    entry is taken as written and the token file it names, a secret mounted where the
    worker runs, is not read; only the inline tokens are returned.
    """
    from agents.yamlfile import read_yaml_file

    try:
        document = read_yaml_file(path, PortalTokensError)
    except OSError as exc:
        raise PortalTokensError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    tree = document.tree
    customers = tree.get("customers") if isinstance(tree, Mapping) else None
    if not isinstance(customers, Mapping):
        raise PortalTokensError([f"{path}: expected a mapping `customers: {{CUSTOMER: TOKEN}}`"])
    problems: list[str] = []
    pairs: list[tuple[str, Secret]] = []
    for customer, value in customers.items():
        where = document.place(("customers", str(customer)))
        entries = value if isinstance(value, list) else [value]
        if not entries:
            problems.append(f"{where}: no token")
        for entry in entries:
            secret = _secret(entry, path.parent, where, problems, read_files)
            if secret is not None:
                pairs.append((str(customer), secret))
    _check_unique(pairs, path, problems)
    if problems:
        raise PortalTokensError(problems)
    return PortalTokens(pairs)


def _secret(entry: Any, base: Path, where: str, problems: list[str],
            read_files: bool) -> Secret | None:
    if isinstance(entry, Mapping) and set(entry) == {"file"} and isinstance(entry["file"], str):
        if not read_files:
            return None
        source = base / entry["file"]
        try:
            text = source.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{where}: cannot read token file {source}: {exc.strerror or exc}")
            return None
        where = f"{where}: token file {source}"
    elif isinstance(entry, str):
        text = entry
    else:
        problems.append(f"{where}: expected a token, {{file: PATH}} or a list of those")
        return None
    if len(text) < MIN_TOKEN_LENGTH or not _TOKEN.fullmatch(text):
        problems.append(f"{where}: a token needs at least {MIN_TOKEN_LENGTH} characters, "
                        "each a letter, a digit, '-', '_', '.' or '~'")
        return None
    return Secret(text.encode())


def _check_unique(pairs: list[tuple[str, Secret]], path: Path, problems: list[str]) -> None:
    owners: dict[bytes, str] = {}
    for customer, secret in pairs:
        other = owners.setdefault(secret.value, customer)
        if other != customer:
            problems.append(f"{path}: customers {other} and {customer} share a token")
