"""HTTP answers mapped onto the PublishError tree, once for every adapter that speaks HTTP."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import (
    AccountRefusedError,
    PlatformUnavailableError,
    PostRejectedError,
    PublishError,
    RateLimitedError,
)
from .retry import reset_at_from_headers

REFUSED_STATUS_CODES = frozenset({401, 403})
# 408 (request timeout) and 409 (conflict while the server was busy) are worth another try.
RETRYABLE_STATUS_CODES = frozenset({408, 409})
MAX_REASON_CHARS = 300


def reason_of(body: Any) -> str:
    """The platform's own words from an error body (`detail`, `message`, `error`, …)."""
    if isinstance(body, Mapping):
        for key in ("detail", "message", "error_description", "error", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:MAX_REASON_CHARS]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return reason_of(errors[0])
    return str(body)[:MAX_REASON_CHARS]


def error_for_status(platform: str, status: int, headers: Mapping[str, str], body: Any, *,
                     refused: frozenset[int] = REFUSED_STATUS_CODES) -> PublishError:
    """The PublishError an HTTP status means: 429, 401/403, 5xx or a refusal of the post.

    `refused`: the statuses that turn the account away (X answers 403 to a duplicate or a
    policy refusal of one post, so it passes only 401).
    """
    reason = reason_of(body)
    if status == 429:
        return RateLimitedError(platform, reason,
                                reset_at=reset_at_from_headers(headers, now=time.time()))
    if status in refused:
        return AccountRefusedError(platform, reason, status_code=status)
    if status >= 500 or status in RETRYABLE_STATUS_CODES:
        return PlatformUnavailableError(platform, reason, status_code=status)
    return PostRejectedError(platform, reason, status_code=status)


async def send(client: httpx.AsyncClient, platform: str, method: str, url: str, *,
               refused: frozenset[int] = REFUSED_STATUS_CODES, **kwargs: Any) -> Any:
    """One request; its JSON answer, or the PublishError its status or failure means."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise PlatformUnavailableError(platform, f"{type(exc).__name__}: {exc}") from exc
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = response.text
    if response.status_code >= 400:
        raise error_for_status(platform, response.status_code, response.headers, body,
                               refused=refused)
    return body
