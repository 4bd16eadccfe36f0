"""`export-posts`: drafted or approved posts in a layout scheduling tools import."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .calendar import calendar_path
from .errors import InputError
from .files import pretty_json
from .store import read_calendar

COLUMNS = ("date", "time", "timezone", "account", "text", "image_path", "status", "slot_id")
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


def _slot_statuses(tweet_file: Path, data: dict[str, Any]) -> dict[str, str]:
    """Current slot statuses from the calendar (approval happens there), if it exists."""
    out_dir = tweet_file.parent.parent
    path = calendar_path(out_dir, str(data.get("persona_key", "")), str(data.get("month", "")))
    if not path.exists():
        return {}
    return {slot.id: slot.status for slot in read_calendar(path).slots}


def read_posts(tweet_file: Path) -> list[Post]:
    """The posts of one tweet file, with their calendar status."""
    try:
        data = json.loads(tweet_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(tweet_file, f"not a tweet file: {exc}") from exc
    statuses = _slot_statuses(tweet_file, data)
    posts = []
    for tweet in data.get("tweets", []):
        when = datetime.fromisoformat(tweet["scheduled_at"])
        posts.append(Post(
            date=when.date().isoformat(), time=when.strftime("%H:%M"),
            timezone=str(data.get("timezone", "UTC")), account=f"@{data.get('handle', '')}",
            text=tweet["text"], image_path=tweet.get("image_path", ""),
            status=statuses.get(tweet["slot_id"], "drafted"), slot_id=tweet["slot_id"],
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
