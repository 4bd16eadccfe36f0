"""Publishing: approved posts go out on schedule, with their images, exactly once.

One adapter per platform behind one protocol (`base.Platform`, declared by a `PlatformSpec`),
a registry of them (`registry.PLATFORMS`) and the exactly-once loop (`publisher.Publisher`).
"""

from .base import OutgoingPost, Platform, PlatformSpec, PreparedImage, PublishedPost
from .publisher import Publisher, PublishOutcome, PublishSummary, publisher_lock
from .registry import PLATFORMS

__all__ = [
    "PLATFORMS",
    "OutgoingPost",
    "Platform",
    "PlatformSpec",
    "PreparedImage",
    "PublishOutcome",
    "PublishSummary",
    "PublishedPost",
    "Publisher",
    "publisher_lock",
]
