"""Publishing against real local servers: mastodon-mock, and fakes of Bluesky, X and Postiz.

Every server runs on 127.0.0.1 and stores what it receives; no client is patched.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from mastodon import Mastodon
from mastodon_mock.config import SeedAccount, SeedConfig
from mastodon_mock.testing import MockServer
from PIL import Image

from persona_foundry.ledger import open_ledger
from persona_foundry.publish import PLATFORMS, Publisher, PublishSummary
from persona_foundry.store import (
    Account,
    Calendar,
    OutputLayout,
    PublishRecord,
    SecretRef,
    Slot,
    TweetFile,
    TweetRecord,
    create_calendar,
    read_calendar,
    read_tweet_file,
    save_tweet_file,
    update_accounts,
    update_calendar,
)
from publish_fakes import BlueskyFake, Fault, PostizFake, XFake

MASTODON_TOKEN = "mastodon-SECRET-token-7f3a9c"
BLUESKY_PASSWORD = "bsky-SECRET-app-pass-4d2e"
POSTIZ_KEY = "postiz-SECRET-key-91b0"
X_SECRETS = {"consumer_key": "x-ck-public-1", "consumer_secret": "x-SECRET-cs-5e6f",
             "access_token": "x-at-SECRET-7788", "access_token_secret": "x-SECRET-ats-99aa"}
ALL_SECRETS = (MASTODON_TOKEN, BLUESKY_PASSWORD, POSTIZ_KEY, *X_SECRETS.values())
ZONE = ZoneInfo("Europe/Paris")
WORKER = Path(__file__).parent / "publish_worker.py"


# --- the output folder -------------------------------------------------------------------


def _picture(path: Path, size: tuple[int, int] = (64, 48), *, noise: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if noise:
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(path)
    else:
        Image.new("RGB", size, (30, 90, 160)).save(path)


def make_folder(root: Path, count: int, *, start: datetime | None = None,
                image: bool = True, big_image: bool = False) -> OutputLayout:
    """An output folder with one persona whose `count` slots are approved, one hour apart."""
    layout = OutputLayout(root / "out")
    first = start or datetime.now(UTC) - timedelta(hours=count + 1)
    tweet_path = layout.tweets_dir / "ava_20261201_000000_000000.json"
    slots, records = [], []
    for number in range(count):
        slot_id = f"s{number:02d}"
        when = (first + timedelta(hours=number)).astimezone(ZONE).isoformat()
        text = f"Post {number}: the lighthouse keeps its watch tonight #sea{number}"
        picture = layout.images_for("ava") / f"{slot_id}.png"
        if image:
            _picture(picture, (1400, 1000) if big_image else (64, 48), noise=big_image)
        slots.append(Slot(id=slot_id, scheduled_at=when, pillar="sea", theme="lighthouses",
                          format="image" if image else "text", status="approved",
                          tweet_file=str(tweet_path), text=text,
                          image_path=str(picture) if image else None))
        records.append(TweetRecord(id=f"t{number}", slot_id=slot_id, scheduled_at=when,
                                   text=text, format="image" if image else "text",
                                   image_prompt=f"a lighthouse at dusk, photo {number}"))
    stamp = datetime.now(UTC).isoformat()
    create_calendar(layout.calendar_path("ava", "2026-12"), Calendar(
        persona="Ava", persona_key="ava", month="2026-12", timezone="Europe/Paris",
        themes=["sea"], events=[], slots=slots, created_at=stamp, updated_at=stamp))
    initial = TweetFile(persona="Ava", persona_key="ava", handle="ava", month="2026-12",
                        timezone="Europe/Paris", tweets=records)
    tweet_path.parent.mkdir(parents=True, exist_ok=True)
    save_tweet_file(tweet_path, lambda tweets: None, initial=initial)
    return layout


def add_account(layout: OutputLayout, platform: str, api_base: str, **fields: Any) -> None:
    secrets = {name: SecretRef(env=f"PF_TEST_{platform.upper()}_{name.upper()}")
               for name in PLATFORMS[platform].secret_names}
    account = Account(persona="ava", platform=platform, api_base=api_base, secrets=secrets,
                      **fields)
    update_accounts(layout.accounts_path, lambda accounts: accounts.put(account))


def publish(layout: OutputLayout, **options: Any) -> PublishSummary:
    ledger = open_ledger(layout.ledger_path)
    try:
        publisher = Publisher(layout, ledger, PLATFORMS, run_id="test")
        return asyncio.run(publisher.run_once(**options))
    finally:
        ledger.close()


def slots(layout: OutputLayout) -> list[Slot]:
    return read_calendar(layout.calendar_path("ava", "2026-12")).slots


def ledger_rows(layout: OutputLayout) -> list[tuple[str, str]]:
    with sqlite3.connect(layout.ledger_path) as db:
        return [(str(r[0]), str(r[1])) for r in
                db.execute("SELECT slot_id, status FROM publish_attempts ORDER BY id")]


@pytest.fixture(autouse=True)
def _secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_TEST_MASTODON_ACCESS_TOKEN", MASTODON_TOKEN)
    monkeypatch.setenv("PF_TEST_BLUESKY_APP_PASSWORD", BLUESKY_PASSWORD)
    monkeypatch.setenv("PF_TEST_POSTIZ_API_KEY", POSTIZ_KEY)
    for name, value in X_SECRETS.items():
        monkeypatch.setenv(f"PF_TEST_X_{name.upper()}", value)


@pytest.fixture
def mastodon() -> Iterator[MockServer]:
    seed = SeedConfig(accounts=[SeedAccount(username="ava", display_name="Ava",
                                            access_token=MASTODON_TOKEN)])
    with MockServer(seed=seed) as server:
        yield server


def statuses(server: MockServer) -> list[Any]:
    api = Mastodon(access_token=MASTODON_TOKEN, api_base_url=server.base_url)
    me = api.account_verify_credentials()
    return list(api.account_statuses(me["id"], limit=40))


def add_fault(server: MockServer, rule: dict[str, Any]) -> None:
    """mastodon-mock's fault injection: the next matching requests get this answer."""
    httpx.post(f"{server.base_url}/api/v1/_mock/faults", json=rule, timeout=10).raise_for_status()


def assert_no_secret_written(layout: OutputLayout) -> None:
    for path in layout.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in ALL_SECRETS:
                assert secret.encode() not in data, (path, secret)


# --- Mastodon (mastodon-mock) ------------------------------------------------------------


def test_thirty_posts_with_images_go_out_once_each_with_alt_text(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 30)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout)
    again = publish(layout)  # nothing left: a second run sends nothing

    posted = statuses(mastodon)
    assert len(posted) == 30 and summary.exit_code == 0 and again.outcomes == []
    assert all(len(s["media_attachments"]) == 1 for s in posted)
    assert {s["media_attachments"][0]["description"] for s in posted} == {
        f"a lighthouse at dusk, photo {n}" for n in range(30)}
    by_url = {s["url"] for s in posted}
    assert all(slot.status == "posted" and slot.publish and slot.publish.url in by_url
               for slot in slots(layout))
    records = read_tweet_file(layout.tweet_paths()[0]).tweets
    assert all(record.posted_url in by_url and record.posted_id for record in records)
    assert [status for _, status in ledger_rows(layout)].count("sending") == 30
    assert [status for _, status in ledger_rows(layout)].count("posted") == 30
    assert_no_secret_written(layout)


def test_killed_after_send_before_the_slot_update_then_restarted_posts_exactly_thirty(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 30)
    add_account(layout, "mastodon", mastodon.base_url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    killed = subprocess.run([sys.executable, str(WORKER), str(layout.root), "12"], env=env,
                            capture_output=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL
    uncertain = [slot for slot in slots(layout) if slot.status == "publishing"]
    assert len(uncertain) == 1 and len(statuses(mastodon)) == 12

    restarted = subprocess.run([sys.executable, str(WORKER), str(layout.root), "0"], env=env,
                               capture_output=True, timeout=120, check=False)
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    assert len(statuses(mastodon)) == 30
    assert all(slot.status == "posted" for slot in slots(layout))
    assert (uncertain[0].id, "found") in ledger_rows(layout)


def test_a_429_with_its_reset_two_seconds_ahead_waits_then_succeeds(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 2, image=False)
    add_account(layout, "mastodon", mastodon.base_url)
    reset = int(time.time()) + 2
    add_fault(mastodon, {"match": {"methods": ["POST"], "path": "/api/v1/statuses"},
                         "effect": {"type": "ratelimit", "headers": {
                             "X-RateLimit-Reset": str(reset), "Retry-After": "2"}},
                         "count": 1})

    summary = publish(layout)

    assert [o.status for o in summary.outcomes] == ["posted", "posted"]
    assert time.time() >= reset  # it waited for the reset rather than giving up
    assert len(statuses(mastodon)) == 2


def test_a_refused_post_fails_with_the_platforms_reason_and_the_rest_go_on(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 3, image=False)
    add_account(layout, "mastodon", mastodon.base_url)
    add_fault(mastodon, {"match": {"methods": ["POST"], "path": "/api/v1/statuses"},
                         "effect": {"type": "status", "status": 422, "body": {
                             "error": "Validation failed: Text contains a blocked word"}},
                         "count": 1})

    summary = publish(layout)

    first, *rest = slots(layout)
    assert first.status == "failed" and "blocked word" in (first.failure or "")
    assert [slot.status for slot in rest] == ["posted", "posted"]
    assert len(statuses(mastodon)) == 2 and summary.exit_code == 1


def test_skipped_unapproved_and_edited_posts_are_never_sent(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 4, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    def change(calendar: Calendar) -> None:
        calendar.slots[0].apply("skip")
        calendar.slots[1].apply("edit")  # edited after approval: needs approving again
        calendar.slots[2].status = "drafted"

    update_calendar(layout.calendar_path("ava", "2026-12"), change)
    publish(layout)

    assert [slot.status for slot in slots(layout)] == ["skipped", "drafted", "drafted",
                                                       "posted"]
    assert [s["content"] for s in statuses(mastodon)] == [
        "<p>Post 3: the lighthouse keeps its watch tonight #sea3</p>"]


def test_native_scheduling_hands_future_posts_to_mastodon_within_its_limits(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 3, image=False, start=datetime.now(UTC) + timedelta(hours=2))
    add_account(layout, "mastodon", mastodon.base_url, native_schedule=True)

    summary = publish(layout)

    assert [o.status for o in summary.outcomes] == ["scheduled"] * 3
    assert all(slot.publish and slot.publish.scheduled for slot in slots(layout))
    assert statuses(mastodon) == []  # held by the server until their time


# --- dry run and the watch loop ----------------------------------------------------------


def test_dry_run_says_what_goes_now_and_when_the_rest_goes(
        mastodon: MockServer, tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(minutes=90)
    layout = make_folder(tmp_path, 4, image=False, start=start)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout, dry_run=True)

    assert [o.slot_id for o in summary.outcomes] == ["s00", "s01"]
    assert [slot_id for _, slot_id, _ in summary.upcoming] == ["s02", "s03"]
    assert summary.next_due is not None and summary.next_due.tzinfo is not None
    assert statuses(mastodon) == [] and all(s.status == "approved" for s in slots(layout))


def test_through_treats_slots_up_to_that_day_as_due(mastodon: MockServer,
                                                    tmp_path: Path) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    layout = make_folder(tmp_path, 2, image=False, start=start)
    add_account(layout, "mastodon", mastodon.base_url)

    assert publish(layout).outcomes == []
    summary = publish(layout, through=start.astimezone(ZONE).date() + timedelta(days=1))

    assert [o.status for o in summary.outcomes] == ["posted", "posted"]


def _wait_for(predicate: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def test_watch_posts_at_the_slots_time_survives_a_restart_and_stops_on_sigterm(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 3, image=False, start=datetime.now(UTC) - timedelta(hours=1))
    path = layout.calendar_path("ava", "2026-12")

    def arrange(calendar: Calendar) -> None:
        calendar.slots[1].scheduled_at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        calendar.slots[2].scheduled_at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        calendar.slots[2].status = "drafted"  # approved only after the first watcher stopped

    update_calendar(path, arrange)
    add_account(layout, "mastodon", mastodon.base_url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "persona_foundry", "publish", str(layout.root), "--watch"]

    def run_watcher(until_posted: int) -> str:
        watcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            _wait_for(lambda: sum(s.status == "posted" for s in slots(layout)) == until_posted)
        finally:
            watcher.send_signal(signal.SIGTERM)
            _, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 0, err.decode()[-2000:]
        return err.decode()

    first = run_watcher(2)  # the one due now, then the one due 3 s later, after a sleep
    update_calendar(path, lambda calendar: calendar.move_slots(["s02"], "approve"))
    second = run_watcher(3)  # a restarted watcher takes up from the files

    assert "publisher stopped" in first and "publisher stopped" in second
    assert len(statuses(mastodon)) == 3


def test_the_watcher_sleeps_until_the_next_due_slot_at_most_five_minutes() -> None:
    from persona_foundry.publish.watch import MAX_WATCH_SLEEP_S, sleep_s
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert sleep_s(datetime(2026, 12, 1, 9, 0, 30, tzinfo=ZONE), now) == 30.0
    assert sleep_s(now + timedelta(days=1), now) == MAX_WATCH_SLEEP_S
    assert sleep_s(None, now) == MAX_WATCH_SLEEP_S
    assert sleep_s(now - timedelta(hours=1), now) == 0.0


# --- Bluesky, X, Postiz (fakes) ----------------------------------------------------------


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


def test_x_5xx_then_success_is_checked_before_the_retry(tmp_path: Path) -> None:
    fake = XFake(X_SECRETS).start()
    fake.faults.append(Fault("POST", "/2/tweets", 503, body={"title": "Service Unavailable"}))
    try:
        layout = make_folder(tmp_path, 1, image=False)
        add_account(layout, "x", fake.base_url, handle="ava")
        summary = publish(layout)
    finally:
        fake.stop()
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


def test_a_missing_secret_names_where_it_should_be_and_sends_nothing(
        mastodon: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PF_TEST_MASTODON_ACCESS_TOKEN")
    layout = make_folder(tmp_path, 1, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout)

    assert summary.exit_code == 1 and "PF_TEST_MASTODON_ACCESS_TOKEN" in summary.problems[0]
    assert statuses(mastodon) == [] and slots(layout)[0].status == "approved"


def test_x_429_with_its_reset_header_waits_then_succeeds(tmp_path: Path) -> None:
    fake = XFake(X_SECRETS).start()
    reset = int(time.time()) + 2
    fake.faults.append(Fault("POST", "/2/tweets", 429, {"x-rate-limit-reset": str(reset)},
                             {"title": "Too Many Requests"}))
    try:
        layout = make_folder(tmp_path, 1, image=False)
        add_account(layout, "x", fake.base_url, handle="ava")
        summary = publish(layout)
    finally:
        fake.stop()
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


def test_a_refused_token_sends_nothing_and_leaves_the_slots_approved(
        mastodon: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_TEST_MASTODON_ACCESS_TOKEN", "not-the-token")
    layout = make_folder(tmp_path, 2, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    summary = publish(layout)

    assert [o.status for o in summary.outcomes] == ["deferred"]  # the second is not tried
    assert [slot.status for slot in slots(layout)] == ["approved", "approved"]
    assert "stopped for this run" in summary.problems[0] and summary.exit_code == 1


def test_a_refusal_after_a_5xx_leaves_the_attempt_uncertain_not_failed(tmp_path: Path) -> None:
    fake = XFake(X_SECRETS).start()
    # The 503 may have posted; X's later 403 could be "duplicate content" of that very post.
    fake.faults += [Fault("POST", "/2/tweets", 503, body={"title": "Service Unavailable"}),
                    Fault("POST", "/2/tweets", 403, body={"detail": "duplicate content"})]
    try:
        layout = make_folder(tmp_path, 1, image=False)
        add_account(layout, "x", fake.base_url, handle="ava")
        summary = publish(layout)
    finally:
        fake.stop()
    assert [o.status for o in summary.outcomes] == ["error"]
    assert slots(layout)[0].status == "publishing"  # the next run looks for it first


def test_a_post_the_platform_scheduled_gets_its_live_url_once_it_is_out(
        mastodon: MockServer, tmp_path: Path) -> None:
    layout = make_folder(tmp_path, 1, image=False)
    add_account(layout, "mastodon", mastodon.base_url)

    def handed_to_the_scheduler(calendar: Calendar) -> None:
        slot = calendar.slots[0]
        slot.status = "posted"
        slot.publish = PublishRecord(platform="mastodon", post_id="sched-1", scheduled=True)

    update_calendar(layout.calendar_path("ava", "2026-12"), handed_to_the_scheduler)
    api = Mastodon(access_token=MASTODON_TOKEN, api_base_url=mastodon.base_url)
    live = api.status_post(slots(layout)[0].text)  # what the server did at the slot's time

    publish(layout)

    record = slots(layout)[0].publish
    assert record is not None and not record.scheduled
    assert (record.post_id, record.url) == (str(live["id"]), live["url"])
    assert read_tweet_file(layout.tweet_paths()[0]).tweets[0].posted_url == live["url"]


def test_x_requests_are_signed_with_the_users_secrets(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake = XFake(X_SECRETS).start()
    monkeypatch.setenv("PF_TEST_X_ACCESS_TOKEN_SECRET", "a-wrong-secret")
    try:
        layout = make_folder(tmp_path, 1, image=False)
        add_account(layout, "x", fake.base_url, handle="ava")
        summary = publish(layout)
    finally:
        fake.stop()
    assert [o.status for o in summary.outcomes] == ["deferred"] and fake.tweets == []
    assert slots(layout)[0].status == "approved"
