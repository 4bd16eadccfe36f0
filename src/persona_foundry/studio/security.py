"""Who may talk to the studio, and which files it may serve.

- Hosts: on loopback, only the names the studio was started for (a DNS-rebinding page cannot
  reach it); off loopback any name the machine is reached by, the token guarding it instead.
- Token: when one is set (always, off loopback), every request carries it: `?token=` once (it
  then lives in an HttpOnly, SameSite=Strict cookie), the cookie, or `Authorization: Bearer`.
- CSRF: every state-changing request carries the page's CSRF token (the `X-CSRF-Token` header
  htmx sends, or a `csrf` form field) and, when the browser sends one, an Origin of the studio.
- Files: `/files/…` serves only images inside the output folder, after resolving links.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..store import OutputLayout
from .cli import LOOPBACK_HOSTS

TOKEN_COOKIE = "pf_studio_token"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The largest change a page sends is a card's fields: far below this.
MAX_BODY_BYTES = 1_000_000
SERVED_SUFFIXES: dict[str, str] = {".png": "image/png", ".jpg": "image/jpeg",
                                   ".jpeg": "image/jpeg", ".webp": "image/webp"}
# No inline script and no eval anywhere: a text that slipped past escaping still cannot run.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")


@dataclass(frozen=True)
class Guard:
    """The studio's access rules: allowed hosts, the token (None: loopback only) and CSRF."""

    hosts: frozenset[str] | None  # None: any Host (off loopback, where the token is required)
    token: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def token_ok(self, request: Request) -> bool:
        """The request carries the token (or none is needed)."""
        if self.token is None:
            return True
        given = (request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
                 or request.headers.get("authorization", "").removeprefix("Bearer "))
        return hmac.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, headers: Headers, form_token: str | None) -> bool:
        """A state-changing request from the studio's own pages."""
        given = headers.get(CSRF_HEADER) or form_token or ""
        if not hmac.compare_digest(given.encode(), self.csrf.encode()):
            return False
        origin = headers.get("origin")
        return origin is None or urlsplit(origin).netloc == headers.get("host")

    def host_ok(self, headers: Headers) -> bool:
        """The Host header names the studio."""
        return self.hosts is None or headers.get("host", "") in self.hosts


class GuardMiddleware:
    """Applies the Guard to every HTTP request before any route sees it."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            await PlainTextResponse("request too large", 413)(scope, receive, send)
            return
        body = b"" if request.method in SAFE_METHODS else await request.body()
        refusal = await self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if self.guard.token is not None and "token" in request.query_params:
            # Trade the token in the address for a cookie, and drop it from the address bar.
            response = RedirectResponse(request.url.remove_query_params("token"), 303)
            response.set_cookie(TOKEN_COOKIE, self.guard.token, httponly=True,
                                samesite="strict")
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), _with_security_headers(send))

    async def _refusal(self, request: Request) -> Response | None:
        if not self.guard.host_ok(request.headers):
            return PlainTextResponse("unknown host", 400)
        if not self.guard.token_ok(request):
            return PlainTextResponse("a valid token is needed: open the address the studio "
                                     "printed", 401)
        if request.method in SAFE_METHODS:
            return None
        form_token = None
        if request.headers.get(CSRF_HEADER) is None:
            form = await request.form()  # parsed from the body read above
            value = form.get(CSRF_FIELD)
            form_token = value if isinstance(value, str) else None
        if not self.guard.csrf_ok(request.headers, form_token):
            return PlainTextResponse("refused: not sent from a studio page (CSRF)", 403)
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the route the body the guard already read, then the real one."""
    replayed = False

    async def replayed_receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed_receive


def _with_security_headers(send: Send) -> Send:
    """CSP, nosniff and a same-origin referrer policy. Not `no-referrer`: Chromium then sends
    `Origin: null` with the pages' own form posts, which the CSRF check must refuse."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"same-origin")]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def served_file(layout: OutputLayout, relative: str) -> Path | None:
    """The image at `relative` inside the output folder, or None for anything else.

    Refused: absolute paths, `..` or empty parts, backslashes, NUL, a suffix that is not an
    image's, and any path that leaves the folder once links are resolved.
    """
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    parts = PurePosixPath(relative).parts
    if relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return None
    candidate = layout.root.joinpath(*parts)
    if candidate.suffix.lower() not in SERVED_SUFFIXES or not layout.contains(candidate):
        return None
    return candidate.resolve() if candidate.is_file() else None


def host_names(host: str, port: int) -> frozenset[str] | None:
    """The Host header values the studio answers to (None: any, off loopback)."""
    if host not in LOOPBACK_HOSTS:
        return None
    names = {host, *LOOPBACK_HOSTS}
    return frozenset(f"[{name}]:{port}" if ":" in name else f"{name}:{port}" for name in names)
