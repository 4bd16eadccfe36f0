"""Publishing on Bluesky, X and Postiz, each against a small stateful fake of its API on
127.0.0.1 (tests/publish_fakes.py) reached through the real client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from persona_foundry.publish import PublishSummary
from persona_foundry.store import Calendar, OutputLayout, update_calendar
from publish_fakes import BlueskyFake, Fault, PostizFake, XFake
from publish_folder import (
    BLUESKY_PASSWORD,
    POSTIZ_KEY,
    WORKER,
    X_SECRETS,
    add_account,
    assert_no_secret_written,
    make_folder,
    publish,
    set_secrets_in_env,
    slots,
)


@pytest.fixture(autouse=True)
def _secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    set_secrets_in_env(monkeypatch)


def test_bluesky_recompresses_an_oversized_image_keeps_alt_aspect_and_its_session(
        tmp_path: Path) -> None:
    fake = BlueskyFake("ava.bsky.test", BLUESKY_PASSWORD).start()
    try:
        layout = make_folder(tmp_path, 2, big_image=True)
        original = Path(slots(layout)[0].image_path or "")
        assert original.stat().st_size > 2_000_000
        add_account(layout, "bluesky", fake.base_url, handle="ava.bsky.test", language="fr")

        first = publish(layout)
        session_files = list(layout.private_dir.glob("bluesky-*.session"))
        layout_two = make_folder(tmp_path / "second", 1, image=False)
        layout_two.private_dir.mkdir(parents=True)
        os.replace(session_files[0], layout_two.private_dir / session_files[0].name)
        add_account(layout_two, "bluesky", fake.base_url, handle="ava.bsky.test")
        second = publish(layout_two)
    finally:
        fake.stop()

    assert [o.status for o in first.outcomes + second.outcomes] == ["posted"] * 3
    assert all(len(blob) <= 2_000_000 for blob, _ in fake.blobs) and len(fake.blobs) == 2
    image = fake.records[0]["value"]["embed"]["images"][0]
    assert image["alt"] == "a lighthouse at dusk, photo 0"
    assert (image["aspectRatio"]["width"], image["aspectRatio"]["height"]) == (1400, 1000)
    assert fake.records[0]["value"]["langs"] == ["fr"]
    assert fake.sessions_created == 1  # the second folder reused the saved session
    saved = layout_two.private_dir / session_files[0].name
    assert saved.stat().st_mode & 0o777 == 0o600
    assert layout.private_dir.stat().st_mode & 0o777 == 0o700
    assert (layout.private_dir / ".gitignore").read_text() == "*\n"  # never committed
    assert slots(layout)[0].publish and "bsky.app/profile/ava.bsky.test/post/" in str(
        slots(layout)[0].publish.url)
    assert_no_secret_written(layout)


def test_x_posts_with_v2_media_alt_text_and_made_with_ai_and_checks_weighted_length(
        tmp_path: Path) -> None:
    fake = XFake(X_SECRETS).start()
    try:
        layout = make_folder(tmp_path, 2)

        def too_long(calendar: Calendar) -> None:
            calendar.slots[1].text = "東京" * 80  # 160 characters, 320 by X's weighting

        update_calendar(layout.calendar_path("ava", "2026-12"), too_long)
        add_account(layout, "x", fake.base_url, handle="ava")
        summary = publish(layout)
    finally:
        fake.stop()

    assert [o.status for o in summary.outcomes] == ["posted", "rejected"]
    assert len(fake.tweets) == 1 and fake.tweets[0]["made_with_ai"] is True
    media_id = fake.tweets[0]["media"]["media_ids"][0]
    assert fake.media[media_id]["alt_text"] == "a lighthouse at dusk, photo 0"
    assert fake.media[media_id]["category"] == "tweet_image"
    assert "320" in (slots(layout)[1].failure or "")
    assert slots(layout)[0].publish and slots(layout)[0].publish.url == (
        f"https://x.com/ava/status/{fake.tweets[0]['id']}")
    assert_no_secret_written(layout)


def test_x_killed_after_send_is_found_not_resent(tmp_path: Path) -> None:
    fake = XFake(X_SECRETS).start()
    try:
        layout = make_folder(tmp_path, 5, image=False)
        add_account(layout, "x", fake.base_url, handle="ava")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        killed = subprocess.run([sys.executable, str(WORKER), str(layout.root), "3"], env=env,
                                capture_output=True, timeout=120, check=False)
        restarted = subprocess.run([sys.executable, str(WORKER), str(layout.root), "0"],
                                   env=env, capture_output=True, timeout=120, check=False)
    finally:
        fake.stop()
    assert killed.returncode == -signal.SIGKILL and restarted.returncode == 0
    assert sorted(t["text"] for t in fake.tweets) == sorted(s.text or "" for s in slots(layout))
    assert len(fake.tweets) == 5


def publish_one_post_on_x(tmp_path: Path, *faults: Fault
                          ) -> tuple[PublishSummary, XFake, OutputLayout]:
    """One text post published on a fake X that first answers with `faults`."""
    fake = XFake(X_SECRETS).start()
    fake.faults += faults
    try:
        layout = make_folder(tmp_path, 1, image=False)
        add_account(layout, "x", fake.base_url, handle="ava")
        return publish(layout), fake, layout
    finally:
        fake.stop()


def test_x_5xx_then_success_is_checked_before_the_retry(tmp_path: Path) -> None:
    summary, fake, _ = publish_one_post_on_x(
        tmp_path, Fault("POST", "/2/tweets", 503, body={"title": "Service Unavailable"}))
    assert [o.status for o in summary.outcomes] == ["posted"] and len(fake.tweets) == 1
    assert any(r.path == "/2/users/42/tweets" for r in fake.requests)  # asked before resending


def test_postiz_schedules_on_its_channel_and_keeps_to_its_hourly_budget(
        tmp_path: Path) -> None:
    fake = PostizFake(POSTIZ_KEY).start()
    try:
        layout = make_folder(tmp_path, 3, start=datetime.now(UTC) + timedelta(hours=1))
        # integrations + 2 × (upload, post) = 5 requests; the third post waits for the window.
        add_account(layout, "postiz", fake.base_url, native_schedule=True, requests_per_hour=5)
        summary = publish(layout)
    finally:
        fake.stop()
    assert [o.status for o in summary.outcomes] == ["scheduled", "scheduled", "deferred"]
    assert [s.status for s in slots(layout)] == ["posted", "posted", "approved"]
    assert len(fake.posts) == 2 and len(fake.uploads) == 2
    first = fake.posts[0]
    assert first["type"] == "schedule" and first["posts"][0]["integration"] == {"id": "chan-1"}
    assert first["posts"][0]["value"][0]["image"] == [
        {"id": "up-1", "path": "https://uploads.test/1.jpg"}]
    assert datetime.fromisoformat(first["date"]) == datetime.fromisoformat(
        slots(layout)[0].scheduled_at)
    assert summary.next_due is not None  # the watcher wakes when the budget frees
    assert all(r.headers["authorization"] == POSTIZ_KEY for r in fake.requests)
    assert_no_secret_written(layout)


def test_x_429_with_its_reset_header_waits_then_succeeds(tmp_path: Path) -> None:
    reset = int(time.time()) + 2
    summary, fake, _ = publish_one_post_on_x(
        tmp_path, Fault("POST", "/2/tweets", 429, {"x-rate-limit-reset": str(reset)},
                        {"title": "Too Many Requests"}))
    assert [o.status for o in summary.outcomes] == ["posted"] and len(fake.tweets) == 1
    assert time.time() >= reset


def test_bluesky_refusal_fails_the_post_and_an_uncertain_attempt_is_found_not_resent(
        tmp_path: Path) -> None:
    fake = BlueskyFake("ava.bsky.test", BLUESKY_PASSWORD).start()
    fake.faults.append(Fault("POST", "/xrpc/com.atproto.repo.createRecord", 400, body={
        "error": "InvalidRecord", "message": "Record/text must not be longer than 300"}))
    try:
        layout = make_folder(tmp_path, 3, image=False)
        add_account(layout, "bluesky", fake.base_url, handle="ava.bsky.test")
        first = publish(layout)

        def crash_left_it_uncertain(calendar: Calendar) -> None:
            slot = calendar.slots[1]  # already on the server, but the run "died" before saying
            slot.status = "publishing"
            slot.publish = None

        update_calendar(layout.calendar_path("ava", "2026-12"), crash_left_it_uncertain)
        second = publish(layout)
    finally:
        fake.stop()
    assert [o.status for o in first.outcomes] == ["rejected", "posted", "posted"]
    assert "must not be longer than 300" in (slots(layout)[0].failure or "")
    assert [o.status for o in second.outcomes] == ["found"]
    assert len(fake.records) == 2 and slots(layout)[1].status == "posted"


def test_a_refusal_after_a_5xx_leaves_the_attempt_uncertain_not_failed(tmp_path: Path) -> None:
    # The 503 may have posted; X's later 403 could be "duplicate content" of that very post.
    summary, _, layout = publish_one_post_on_x(
        tmp_path, Fault("POST", "/2/tweets", 503, body={"title": "Service Unavailable"}),
        Fault("POST", "/2/tweets", 403, body={"detail": "duplicate content"}))
    assert [o.status for o in summary.outcomes] == ["error"]
    assert slots(layout)[0].status == "publishing"  # the next run looks for it first


def test_x_requests_are_signed_with_the_users_secrets(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_TEST_X_ACCESS_TOKEN_SECRET", "a-wrong-secret")
    summary, fake, layout = publish_one_post_on_x(tmp_path)
    assert [o.status for o in summary.outcomes] == ["deferred"] and fake.tweets == []
    assert slots(layout)[0].status == "approved"
