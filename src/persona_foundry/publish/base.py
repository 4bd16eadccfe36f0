"""What every platform adapter offers and declares: one protocol, one spec per platform.

The publisher (publisher.py) never branches on a platform's name: what differs — how many
images, how big, how text is counted, which secrets, whether the platform can schedule a post
itself — is declared in the adapter's `PlatformSpec`, and sending is the `Platform` protocol.

Adapters raise only the errors of the PublishError tree: `PostRejectedError` (a 4xx other than
429: this post will never go), `RateLimitedError` (429, with the platform's reset time) and
`PlatformUnavailableError` (5xx, timeouts, dropped connections: the post may have gone out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ..store import Account


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to upload: bytes within the platform's size limit, its alt text and shape."""

    data: bytes
    mime_type: str
    file_name: str
    width: int
    height: int
    alt_text: str


@dataclass(frozen=True)
class OutgoingPost:
    """One post as it will be sent (the same for every attempt of its slot)."""

    persona: str
    slot_id: str
    text: str
    scheduled_at: datetime
    idempotency_key: str
    language: str
    images: tuple[PreparedImage, ...] = ()
    generated: bool = True  # every post and image we publish was written or rendered by a model
    # Set when the post is handed to the platform's own scheduler (ahead of its time).
    schedule_for: datetime | None = None


@dataclass(frozen=True)
class PublishedPost:
    """The platform's answer: its id for the post and where people can see it."""

    post_id: str
    url: str
    scheduled: bool = False


@dataclass(frozen=True)
class NativeSchedule:
    """A platform that can hold posts and publish them at their time itself."""

    min_lead_s: float  # the platform publishes at once (or refuses) anything sooner
    max_pending: int | None = None  # posts it will hold at once
    max_per_day: int | None = None  # posts it will hold for one day


class Platform(Protocol):
    """One logged-in platform account."""

    async def publish(self, post: OutgoingPost) -> PublishedPost:
        """Upload the post's images (with alt text) and publish it, or raise a PublishError."""
        ...

    async def find(self, post: OutgoingPost) -> PublishedPost | None:
        """The post if the account already has it (recent posts, matched by key or text)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


# Opens an account: (account, its resolved secrets by name, the output folder's private dir).
PlatformOpener = Callable[[Account, dict[str, str], Path], Platform]


def _length(text: str) -> int:
    return len(text)


@dataclass(frozen=True)
class PlatformSpec:
    """What a platform needs and allows; the registry (publish/__init__.py) maps names to these."""

    name: str
    open: PlatformOpener
    secret_names: tuple[str, ...]  # the first is the one `accounts add --token-env` names
    text_limit: int
    max_images: int
    max_image_bytes: int
    max_alt_chars: int
    measure: Callable[[str], int] = field(default=_length)  # how the platform counts text
    native_schedule: NativeSchedule | None = None
    schedule_by_default: bool = False  # `accounts add` turns native scheduling on by default
    url_help: str = ""

    def text_problem(self, text: str) -> str | None:
        """Why the platform would refuse this text, before anything is sent."""
        length = self.measure(text)
        if not text.strip():
            return "the post is empty"
        if length > self.text_limit:
            return f"{self.name} counts {length} characters, over its limit of {self.text_limit}"
        return None


def normalize_text(text: str) -> str:
    """Text as compared across platforms that re-render it (whitespace folded)."""
    return " ".join(text.split())
