"""Postiz's public API, for users who already schedule through Postiz.

`POST /public/v1/upload` for each image, then `POST /public/v1/posts` with `type: schedule` and
the slot's time: Postiz holds the post and publishes it on the channel (an integration, from
`GET /public/v1/integrations`). Postiz allows only tens of requests an hour per key, so the
adapter keeps a rolling one-hour budget: posts are handed over ahead of their time in batches
that fit it, and a request that would pass it waits (a local 429) instead of being refused.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ..errors import ConfigurationError, RateLimitedError
from ..store import Account
from .base import NativeSchedule, OutgoingPost, PlatformSpec, PublishedPost, normalize_text
from .http import send

NAME = "postiz"
REQUEST_TIMEOUT_S = 60.0
DEFAULT_REQUESTS_PER_HOUR = 30  # Postiz's documented default (API_LIMIT on self-hosted)
WINDOW_S = 3600.0
FIND_WINDOW = timedelta(days=1)


class RequestBudget:
    """A rolling window of requests: `take()` or a RateLimitedError saying when one frees."""

    def __init__(self, per_window: int, *, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.per_window, self.window_s, self._clock = per_window, window_s, clock
        self._sent: deque[float] = deque()

    def take(self) -> None:
        """Count one request now, or raise when the window is full (nothing is sent)."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()
        if len(self._sent) >= self.per_window:
            raise RateLimitedError(NAME, f"{self.per_window} requests an hour spent",
                                   reset_at=self._sent[0] + self.window_s, status_code=None)
        self._sent.append(now)


class PostizPlatform:
    """One Postiz channel (integration) reached with a Postiz API key."""

    def __init__(self, account: Account, secrets: dict[str, str], private_dir: Path) -> None:
        del private_dir
        extra = account.model_extra or {}
        self._base = f"{account.api_base.rstrip('/')}/public/v1"
        self._account = account
        self._http = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S,
                                       headers={"Authorization": secrets["api_key"]})
        self._budget = RequestBudget(int(extra.get("requests_per_hour")
                                         or DEFAULT_REQUESTS_PER_HOUR))
        self._integration: dict[str, Any] | None = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        self._budget.take()
        return await send(self._http, NAME, method, f"{self._base}{path}", **kwargs)

    async def _channel(self) -> dict[str, Any]:
        """The integration to post to: the account's `channel` id, or its only one."""
        if self._integration is not None:
            return self._integration
        listed = await self._call("GET", "/integrations")
        channels = [c for c in listed or [] if not c.get("disabled")]
        wanted = self._account.channel
        matches = [c for c in channels if wanted in (c.get("id"), c.get("name"))] if wanted \
            else channels
        if len(matches) != 1:
            names = ", ".join(f"{c.get('id')} ({c.get('name')})" for c in channels)
            raise ConfigurationError(f"{self._account.label}: set `channel` to one of the "
                                     f"Postiz integrations: {names or 'none'}")
        self._integration = dict(matches[0])
        return self._integration

    async def publish(self, post: OutgoingPost) -> PublishedPost:
        """Upload the images, then schedule the post for its slot's time on the channel."""
        channel = await self._channel()
        images = []
        for image in post.images:
            uploaded = await self._call("POST", "/upload", files={
                "file": (image.file_name, image.data, image.mime_type)})
            images.append({"id": uploaded["id"], "path": uploaded["path"]})
        when = max(post.schedule_for or post.scheduled_at, datetime.now(UTC))
        created = await self._call("POST", "/posts", json={
            "type": "schedule", "date": when.astimezone(UTC).isoformat(),
            "shortLink": False, "tags": [],
            "posts": [{"integration": {"id": channel["id"]},
                       "value": [{"content": post.text, "image": images}],
                       "settings": {"__type": channel.get("identifier", "")}}],
        })
        first = created[0] if isinstance(created, list) and created else created
        post_id = str(first.get("postId") or first.get("id"))
        return PublishedPost(post_id=post_id, url="", scheduled=True)

    async def find(self, post: OutgoingPost) -> PublishedPost | None:
        """The post among Postiz's posts around its time, by its content."""
        when = post.schedule_for or post.scheduled_at
        listed = await self._call("GET", "/posts", params={
            "startDate": (when - FIND_WINDOW).astimezone(UTC).isoformat(),
            "endDate": (max(when, datetime.now(UTC)) + FIND_WINDOW).astimezone(UTC).isoformat()})
        wanted = normalize_text(post.text)
        posts = listed.get("posts", []) if isinstance(listed, dict) else listed or []
        for found in posts:
            if normalize_text(str(found.get("content", ""))) == wanted:
                return PublishedPost(post_id=str(found["id"]), url="", scheduled=True)
        return None

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()


SPEC = PlatformSpec(
    name=NAME, open=PostizPlatform, secret_names=("api_key",), text_limit=5000,
    max_images=4, max_image_bytes=10 * 1024 * 1024, max_alt_chars=1000,
    # Postiz is a scheduler: every post is handed over ahead, a minute at least.
    native_schedule=NativeSchedule(min_lead_s=60), schedule_by_default=True,
    url_help="https://api.postiz.com",
)
