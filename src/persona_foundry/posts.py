"""`export-posts`: drafted or approved posts in a layout scheduling tools import."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .files import pretty_json
from .store import OutputLayout, Slot, TweetFile, read_calendar, read_tweet_file

COLUMNS = ("date", "time", "timezone", "account", "text", "image_path", "status", "slot_id",
           "post_id", "post_url")
EXPORTABLE = ("drafted", "approved")


@dataclass(frozen=True)
class Post:
    """One row of an export."""

    date: str
    time: str
    timezone: str
    account: str
    text: str
    image_path: str
    status: str
    slot_id: str
    post_id: str = ""  # the platform's id and URL once the publisher posted it
    post_url: str = ""


def _calendar_slots(tweet_file: Path, data: TweetFile) -> dict[str, Slot]:
    """Current slots from the calendar (approval and publishing happen there), if it exists."""
    path = OutputLayout.of_file(tweet_file).calendar_path(data.persona_key, data.month)
    if not path.exists():
        return {}
    return {slot.id: slot for slot in read_calendar(path).slots}


def read_posts(tweet_file: Path) -> list[Post]:
    """The posts of one tweet file, with their calendar status."""
    data = read_tweet_file(tweet_file)
    slots = _calendar_slots(tweet_file, data)
    posts = []
    for tweet in data.tweets:
        when = datetime.fromisoformat(tweet.scheduled_at)
        slot = slots.get(tweet.slot_id)
        published = slot.publish if slot is not None else None
        posts.append(Post(
            date=when.date().isoformat(), time=when.strftime("%H:%M"), timezone=data.timezone,
            account=f"@{data.handle}", text=tweet.text, image_path=tweet.image_path or "",
            status=slot.status if slot is not None else "drafted", slot_id=tweet.slot_id,
            post_id=(published.post_id if published else None) or tweet.posted_id or "",
            post_url=(published.url if published else None) or tweet.posted_url or "",
        ))
    return posts


def render_posts(posts: list[Post], fmt: str) -> str:
    """CSV (header row, one post per row) or a JSON array."""
    rows = [post.__dict__ for post in sorted(posts, key=lambda p: (p.date, p.time, p.account))]
    if fmt == "json":
        return pretty_json(rows).decode("utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
