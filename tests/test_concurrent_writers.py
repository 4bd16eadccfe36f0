"""Done-when test of the store: several processes write one persona-month at once (images
attached, slots approved and skipped, a second `tweets` run) and nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from openai_server import FakeOpenAIServer, Reply
from persona_foundry.store import OutputLayout, read_calendar, read_tweet_file
from stage_replies import content_reply, schema_name
from test_tweets import MONTH, env, make_cards, run_tweets

TESTS = Path(__file__).parent
FIRST_RUN_POSTS = 12
SECOND_RUN_POSTS = 10
WORKER_TIMEOUT_S = 180


def slow_posts(body: dict[str, Any]) -> Reply:
    """Posts a little slowly, so the second run is still writing while the others do."""
    reply = content_reply(body)
    return Reply(reply.content, delay_s=0.3) if schema_name(body) == "tweets" else reply


def _worker(*args: str) -> subprocess.Popen[bytes]:
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(TESTS / "store_worker.py"), *args],
                            env=child_env)


def test_two_commands_on_one_month_lose_nothing(start_server, make_image, tmp_path: Path) -> None:
    server: FakeOpenAIServer = start_server(slow_posts)
    out = tmp_path / "out"
    (card,) = make_cards(server, make_image, out, "ava")
    first = run_tweets(server, [card], out, count=FIRST_RUN_POSTS)
    layout = OutputLayout(out)
    first_file = first.personas[0].tweet_file
    assert first_file is not None and first.made == FIRST_RUN_POSTS
    calendar_file = layout.calendar_path("ava", MONTH)
    drafted = [slot for slot in read_calendar(calendar_file).slots if slot.status == "drafted"]
    image_ids = {r.slot_id for r in read_tweet_file(first_file).tweets if r.format == "image"}
    assert image_ids  # the month has image posts to attach to
    moves = {slot.id: "approved" if n % 2 else "skipped" for n, slot in enumerate(drafted)}

    # At once: `images` attaching (again and again), `calendar --approve/--skip`, `tweets`.
    stop = tmp_path / "stop"
    images = _worker("images", str(first_file), str(out), str(stop))
    calendar = _worker("moves", str(calendar_file),
                       *(f"{status}:{slot_id}" for slot_id, status in moves.items()))
    second = subprocess.run(
        [sys.executable, "-m", "persona_foundry", "tweets", str(card), "--month", MONTH,
         "--count", str(SECOND_RUN_POSTS), "--per-call", "2", "--out", str(out)],
        env={**os.environ, **env(server), "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert calendar.wait(timeout=WORKER_TIMEOUT_S) == 0
    stop.touch()
    assert images.wait(timeout=WORKER_TIMEOUT_S) == 0

    # Every image path, every status change and every post is in the files.
    slots = {slot.id: slot for slot in read_calendar(calendar_file).slots}
    posts = {record.slot_id: record for record in read_tweet_file(first_file).tweets}
    assert len(posts) == FIRST_RUN_POSTS
    for slot_id, status in moves.items():
        assert slots[slot_id].status == status
        assert slots[slot_id].text == posts[slot_id].text
    for slot_id in image_ids:
        assert posts[slot_id].image_path and slots[slot_id].image_path == posts[slot_id].image_path
    (second_file,) = [path for path in layout.tweet_paths("ava") if path != first_file]
    later = read_tweet_file(second_file).tweets
    assert len(later) == SECOND_RUN_POSTS
    for record in later:
        slot = slots[record.slot_id]
        assert (slot.status, slot.text, slot.tweet_file) == ("drafted", record.text,
                                                             str(second_file))
