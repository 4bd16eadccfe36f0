"""X (API v2) with OAuth 1.0a user context: v2 media upload + alt text, then `POST /2/tweets`.

Signed requests (oauthlib signs, httpx sends) rather than an SDK: tweepy 4.17 still uploads
media through v1.1, which X retired, and the v2 endpoints needed here are three JSON calls.
X's weighted length (textchecks.weighted_length: URLs 23, CJK 2) is checked before sending, and
every post carries `made_with_ai`, since every post and image we publish is generated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from oauthlib.oauth1 import Client as OAuth1Client

from ..store import Account
from ..textchecks import weighted_length
from .base import OutgoingPost, PlatformSpec, PublishedPost, normalize_text
from .http import send

NAME = "x"
REQUEST_TIMEOUT_S = 60.0
RECENT_POSTS = 20
# 401 is a refused account; X answers 403 to one refused post (duplicate content, policy).
X_REFUSED = frozenset({401})


class XPlatform:
    """One X account (an app's consumer key pair and the user's access token pair)."""

    def __init__(self, account: Account, secrets: dict[str, str], private_dir: Path) -> None:
        del private_dir  # OAuth 1.0a tokens do not expire: no session to keep
        self._base = account.api_base.rstrip("/")
        self._handle = account.handle.lstrip("@")
        self._oauth = OAuth1Client(
            secrets["consumer_key"], client_secret=secrets["consumer_secret"],
            resource_owner_key=secrets["access_token"],
            resource_owner_secret=secrets["access_token_secret"])
        self._http = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S)
        self._user: dict[str, Any] | None = None

    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    **kwargs: Any) -> Any:
        """A signed request (the query is signed; JSON and multipart bodies are not, per
        OAuth 1.0a)."""
        url = f"{self._base}{path}" + (f"?{urlencode(params)}" if params else "")
        signed_url, headers, _ = self._oauth.sign(url, http_method=method)
        return await send(self._http, NAME, method, signed_url, headers=headers,
                          refused=X_REFUSED, **kwargs)

    async def _upload(self, post: OutgoingPost) -> list[str]:
        media_ids = []
        for image in post.images:
            uploaded = await self._call(
                "POST", "/2/media/upload", data={"media_category": "tweet_image"},
                files={"media": (image.file_name, image.data, image.mime_type)})
            media_id = str(uploaded["data"]["id"])
            if image.alt_text:
                await self._call("POST", "/2/media/metadata", json={
                    "id": media_id, "metadata": {"alt_text": {"text": image.alt_text}}})
            media_ids.append(media_id)
        return media_ids

    async def publish(self, post: OutgoingPost) -> PublishedPost:
        """Upload the images (v2) with alt text, then create the post."""
        body: dict[str, Any] = {"text": post.text, "made_with_ai": post.generated}
        media_ids = await self._upload(post)
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        created = await self._call("POST", "/2/tweets", json=body)
        post_id = str(created["data"]["id"])
        return PublishedPost(post_id=post_id, url=await self._url(post_id))

    async def find(self, post: OutgoingPost) -> PublishedPost | None:
        """The post among the user's latest posts (`GET /2/users/:id/tweets`), by its text."""
        user = await self._me()
        listed = await self._call("GET", f"/2/users/{user['id']}/tweets",
                                  params={"max_results": RECENT_POSTS})
        wanted = normalize_text(post.text)
        for tweet in (listed or {}).get("data") or []:
            if normalize_text(str(tweet.get("text", ""))) == wanted:
                return PublishedPost(post_id=str(tweet["id"]),
                                     url=await self._url(str(tweet["id"])))
        return None

    async def _me(self) -> dict[str, Any]:
        if self._user is None:
            answer = await self._call("GET", "/2/users/me")
            self._user = dict(answer["data"])
        return self._user

    async def _url(self, post_id: str) -> str:
        handle = self._handle or str((await self._me()).get("username", "i"))
        return f"https://x.com/{handle}/status/{post_id}"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()


SPEC = PlatformSpec(
    name=NAME, open=XPlatform,
    secret_names=("consumer_key", "consumer_secret", "access_token", "access_token_secret"),
    text_limit=280, max_images=4, max_image_bytes=5 * 1024 * 1024, max_alt_chars=1000,
    measure=weighted_length, url_help="https://api.x.com",
)
