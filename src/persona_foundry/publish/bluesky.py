"""Bluesky through `atproto`: images (≤ 4, ≤ 2,000,000 bytes) with alt text and aspect ratio,
language tags, and the login session kept between runs.

createSession is limited (about 100 a day in practice), so the session string is saved in the
output folder's private state (mode 0600; never in git, the ledger or a log) and reused; atproto
refreshes it when its access token nears expiry and the new one is saved again.

atproto (about 1.5 s to import) is imported when an account is opened, not with this module:
every CLI command imports the platform registry, and only `publish` needs the client.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PlatformUnavailableError, PublishError
from ..files import safe_slug
from ..store import Account
from .base import OutgoingPost, PlatformSpec, PublishedPost, normalize_text
from .http import error_for_status

if TYPE_CHECKING:
    from atproto_client.client.session import Session, SessionEvent
    from atproto_client.exceptions import RequestErrorBase

NAME = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
RECENT_POSTS = 50
SESSION_FILE_MODE = 0o600
DEFAULT_WEB_BASE = "https://bsky.app"


def _error(exc: RequestErrorBase) -> PublishError:
    """atproto's exception as ours, by the HTTP status when a response arrived."""
    from atproto_client.exceptions import NetworkError

    response = exc.response
    if response is None or (isinstance(exc, NetworkError) and response.status_code == 502):
        return PlatformUnavailableError(NAME, f"{type(exc).__name__}: {exc}")
    return error_for_status(NAME, response.status_code, dict(response.headers or {}),
                            _content(response.content))


def _content(content: Any) -> Any:
    error = getattr(content, "error", None)
    if error is not None:
        return {"error": error, "message": getattr(content, "message", None) or error}
    return content


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, atomically (mkstemp creates it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temp, SESSION_FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class BlueskyPlatform:
    """One Bluesky account (its handle logs in with an app password)."""

    def __init__(self, account: Account, secrets: dict[str, str], private_dir: Path) -> None:
        from atproto import AsyncClient
        from atproto_client.exceptions import RequestErrorBase

        self._errors = RequestErrorBase
        self._account, self._password = account, secrets["app_password"]
        self._client = AsyncClient(base_url=account.api_base)
        self._session_path = private_dir / f"bluesky-{safe_slug(account.handle)}.session"
        self._session: Session | None = None
        self._web = str((account.model_extra or {}).get("web_base") or DEFAULT_WEB_BASE)
        self._client.on_session_change(self._save_session)

    async def _save_session(self, event: SessionEvent, session: Session) -> None:
        del event
        self._session = session
        write_private(self._session_path, session.encode().encode("utf-8"))

    async def _login(self) -> Session:
        """The saved session when there is one, else createSession (once, then saved)."""
        if self._session is not None:
            return self._session
        try:
            if self._session_path.is_file():
                saved = self._session_path.read_text(encoding="utf-8").strip()
                await self._client.login(session_string=saved, fetch_bsky_profile=False)
            else:
                await self._client.login(self._account.handle, self._password,
                                         fetch_bsky_profile=False)
        except self._errors as exc:
            raise _error(exc) from exc
        if self._session is None:
            raise PlatformUnavailableError(NAME, "login gave no session")
        return self._session

    async def publish(self, post: OutgoingPost) -> PublishedPost:
        """Upload each image blob, then create the post record with alt texts and langs."""
        from atproto import models

        session = await self._login()
        try:
            embed = None
            if post.images:
                images = []
                for image in post.images:
                    blob = await self._client.upload_blob(image.data)
                    images.append(models.AppBskyEmbedImages.Image(
                        alt=image.alt_text, image=blob.blob,
                        aspect_ratio=models.AppBskyEmbedDefs.AspectRatio(
                            width=image.width, height=image.height)))
                embed = models.AppBskyEmbedImages.Main(images=images)
            record = models.AppBskyFeedPost.Record(
                text=post.text, created_at=datetime.now(UTC).isoformat(),
                langs=[post.language], embed=embed)
            created = await self._client.app.bsky.feed.post.create(session.did, record)
        except self._errors as exc:
            raise _error(exc) from exc
        return PublishedPost(post_id=created.uri, url=self._web_url(session, created.uri))

    async def find(self, post: OutgoingPost) -> PublishedPost | None:
        """The post among the account's latest records (listRecords), by its text."""
        session = await self._login()
        try:
            listed = await self._client.com.atproto.repo.list_records(
                {"repo": session.did, "collection": POST_COLLECTION, "limit": RECENT_POSTS})
        except self._errors as exc:
            raise _error(exc) from exc
        wanted = normalize_text(post.text)
        for record in listed.records:
            text = getattr(record.value, "text", None)
            if text is not None and normalize_text(str(text)) == wanted:
                return PublishedPost(post_id=record.uri, url=self._web_url(session, record.uri))
        return None

    def _web_url(self, session: Session, uri: str) -> str:
        return f"{self._web.rstrip('/')}/profile/{session.handle}/post/{uri.rsplit('/', 1)[-1]}"

    async def aclose(self) -> None:
        """Close the client's HTTP connections."""
        await self._client.request.close()


SPEC = PlatformSpec(
    name=NAME, open=BlueskyPlatform, secret_names=("app_password",), text_limit=300,
    max_images=4, max_image_bytes=2_000_000, max_alt_chars=2000,
    url_help="https://bsky.social",
)
