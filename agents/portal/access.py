"""Who a portal request is: the token it presents, where it came, and whose it is.

One rule for every portal route: a request presents a token in `Authorization: Bearer
TOKEN` (the API), a `?token=` query parameter (a link) or the session cookie, in that
order. No token, or one nobody holds: 401. A token on another customer's page: 403.
The token travels in `Access` only to be moved into the cookie; its repr hides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["COOKIE", "Access", "Source", "read_access", "session_cookie"]

COOKIE = "slamon_portal"
Source = Literal["header", "query", "cookie", "none"]


class Request(Protocol):
    """What this module reads of an aiohttp request."""

    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def query(self) -> Mapping[str, str]: ...
    @property
    def cookies(self) -> Mapping[str, str]: ...
    @property
    def secure(self) -> bool: ...


class Holders(Protocol):
    """The tokens in force (`agents.portal.tokens.PortalTokens`)."""

    def customer_for(self, token: str | None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Access:
    """A request's token (never shown), where it came from and the customer who holds it."""

    token: str | None = field(repr=False)
    source: Source
    holder: str | None

    def refusal(self, customer: str | None = None) -> Literal[401, 403] | None:
        """401 if the token opens no page, 403 if not `customer`'s, None if it may pass."""
        if self.token is None or self.holder is None:
            return 401
        if customer is not None and self.holder != customer:
            return 403
        return None


def read_access(request: Request, tokens: Holders) -> Access:
    """The token `request` presents (header, then query, then cookie) and its holder."""
    token, source = _presented(request)
    return Access(token, source, tokens.customer_for(token))


def _presented(request: Request) -> tuple[str | None, Source]:
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), "header"
    if request.query.get("token"):
        return request.query["token"], "query"
    if request.cookies.get(COOKIE):
        return request.cookies[COOKIE], "cookie"
    return None, "none"


def session_cookie(request: Request, token: str) -> str:
    """The session cookie; `Secure` when the request came over HTTPS (or a proxy says so)."""
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    flags = "; Path=/portal; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return f"{COOKIE}={token}{flags}"
