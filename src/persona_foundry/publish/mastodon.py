"""Mastodon through Mastodon.py: media with alt text, then the status with an Idempotency-Key.

Mastodon.py is synchronous; each call runs in a worker thread so the publisher's loop stays
async. Its own rate-limit handling is set to `throw`, so a 429 reaches the publisher's one
retry layer (publish/retry.py) with the reset time the client parsed from the headers.

Mastodon.py is imported when an account is opened, not with this module: every CLI command
imports the platform registry, and only `publish` needs the client.
"""

from __future__ import annotations

import asyncio
import html
import io
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    AccountRefusedError,
    PlatformUnavailableError,
    PostRejectedError,
    RateLimitedError,
)
from ..store import Account
from .base import NativeSchedule, OutgoingPost, PlatformSpec, PublishedPost, normalize_text

if TYPE_CHECKING:
    from mastodon import MastodonAPIError

NAME = "mastodon"
REQUEST_TIMEOUT_S = 60.0
RECENT_POSTS = 40  # the most a page of account statuses holds
# Mastodon.py signals 403 as a plain MastodonAPIError; its status code is the second argument.
REFUSED_STATUS_CODES = frozenset({401, 403})
_TAG = re.compile(r"<[^>]+>")
T = TypeVar("T")


def _plain(content: str) -> str:
    """A status's HTML content as the text that was posted (tags dropped, entities decoded)."""
    return html.unescape(_TAG.sub(" ", content.replace("</p><p>", "\n\n")))


def _status_code(exc: MastodonAPIError) -> int | None:
    code = exc.args[1] if len(exc.args) > 1 else None
    return code if isinstance(code, int) else None


class MastodonPlatform:
    """One Mastodon account."""

    def __init__(self, account: Account, secrets: dict[str, str], private_dir: Path) -> None:
        del private_dir  # a token needs no session state
        from mastodon import Mastodon

        self._base = account.api_base.rstrip("/")
        self._api = Mastodon(access_token=secrets["access_token"], api_base_url=self._base,
                             ratelimit_method="throw", request_timeout=REQUEST_TIMEOUT_S)

    async def _call(self, function: Callable[[], T]) -> T:
        """Run one Mastodon.py call in a thread, its failures mapped onto the PublishError tree."""
        from mastodon import (
            MastodonAPIError,
            MastodonNetworkError,
            MastodonRatelimitError,
            MastodonServerError,
            MastodonUnauthorizedError,
        )

        try:
            return await asyncio.to_thread(function)
        except MastodonRatelimitError as exc:
            reset = self._api.ratelimit_reset
            raise RateLimitedError(NAME, str(exc),
                                   reset_at=float(reset) if reset else None) from exc
        except (MastodonServerError, MastodonNetworkError) as exc:
            raise PlatformUnavailableError(NAME, str(exc)) from exc
        except MastodonUnauthorizedError as exc:
            raise AccountRefusedError(NAME, str(exc.args[-1]), status_code=401) from exc
        except MastodonAPIError as exc:
            code = _status_code(exc)
            kind = AccountRefusedError if code in REFUSED_STATUS_CODES else PostRejectedError
            raise kind(NAME, str(exc.args[-1]), status_code=code) from exc

    async def publish(self, post: OutgoingPost) -> PublishedPost:
        """Upload each image with its alt text, then post the status (or schedule it)."""
        media_ids = [(await self._call(partial(
            self._api.media_post, io.BytesIO(image.data), mime_type=image.mime_type,
            description=image.alt_text, file_name=image.file_name)))["id"]
            for image in post.images]
        status = await self._call(lambda: self._api.status_post(
            post.text, media_ids=media_ids or None, language=post.language,
            idempotency_key=post.idempotency_key, scheduled_at=post.schedule_for))
        if "scheduled_at" in status and "params" in status:
            return PublishedPost(post_id=str(status["id"]), url="", scheduled=True)
        return PublishedPost(post_id=str(status["id"]), url=str(status.get("url") or
                                                               status.get("uri") or ""))

    async def find(self, post: OutgoingPost) -> PublishedPost | None:
        """The post among the account's recent statuses or its scheduled ones, by its text."""
        wanted = normalize_text(post.text)
        me = await self._call(self._api.account_verify_credentials)
        statuses: list[Any] = await self._call(
            lambda: self._api.account_statuses(me["id"], limit=RECENT_POSTS))
        for status in statuses:
            if normalize_text(_plain(str(status.get("content") or ""))) == wanted:
                return PublishedPost(post_id=str(status["id"]),
                                     url=str(status.get("url") or status.get("uri") or ""))
        scheduled: list[Any] = await self._call(self._api.scheduled_statuses)
        for pending in scheduled:
            if normalize_text(str((pending.get("params") or {}).get("text") or "")) == wanted:
                return PublishedPost(post_id=str(pending["id"]), url="", scheduled=True)
        return None

    async def aclose(self) -> None:
        """Mastodon.py keeps no connection worth closing."""


SPEC = PlatformSpec(
    name=NAME, open=MastodonPlatform, secret_names=("access_token",), text_limit=500,
    max_images=4, max_image_bytes=16 * 1024 * 1024, max_alt_chars=1500,
    # Mastodon publishes at once anything under 5 minutes ahead; 300 pending and 50 a day are
    # its server-side limits on scheduled statuses.
    native_schedule=NativeSchedule(min_lead_s=300, max_pending=300, max_per_day=50),
    url_help="https://mastodon.social",
)
